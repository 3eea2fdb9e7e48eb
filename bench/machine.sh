# shellcheck shell=bash
# bench/machine.sh - owns the one description of the machine a benchmark
# ran on, sourced by bench/run.sh and bench/debug_cost.sh.
#
# machine_info OUTPUT BUILD-DIR sets $machine: CPU model, CPUs (usable,
# threads per core, hypervisor), kernel, the compiler that built the
# benchmark (it reports itself in "# compiler:" of its output file OUTPUT)
# and the build type of BUILD-DIR's CMake cache.
machine_info() {
    local cpu cores online tpc hyp compiler btype
    cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
    [ -n "$cpu" ] || cpu=$(uname -m)
    cores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || nproc)
    online=$(nproc 2>/dev/null || echo "$cores")
    tpc=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p' || true)
    hyp=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' || true)
    compiler=$(sed -n 's/^# compiler: //p' "$1" 2>/dev/null | head -1)
    [ -n "$compiler" ] || compiler=$(cc --version 2>/dev/null | head -1)
    btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$2/CMakeCache.txt" 2>/dev/null || true)
    # shellcheck disable=SC2034 # read by the scripts that source this
    machine="$cpu, $cores CPUs ($online usable${tpc:+, $tpc thread(s) per core}${hyp:+, $hyp guest}), Linux $(uname -r), $compiler${btype:+ $btype}"
}
