#!/usr/bin/env bash
# scripts/deps.sh - owns the system packages that building, testing,
# the examples and the benchmarks need, on Debian 12 (bookworm).
#
#   build-essential cmake pkg-config  compiler, build system, .pc files
#   libcmocka-dev                     the unit-test framework
#   clang libclang-rt-14-dev          the clang build, and clang's sanitizer
#                                     runtimes (only recommended by clang,
#                                     so --no-install-recommends drops them)
#   valgrind libc6-dbg                the valgrind build (memcheck needs
#                                     glibc's symbols)
#   libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4
#                                     mallocs bench/run.sh compares against
#   gnuplot-nox                       bench/plot.sh's charts (gnuplot with the
#                                     pngcairo terminal, no X11 or Qt)
#   util-linux                        setarch, for ThreadSanitizer on
#                                     kernels with high mmap randomisation
#   python3 libpython3.11-testsuite sqlite3 redis-server redis-tools git
#                                     the programs tests/programs/ runs on
#                                     the preloaded malloc replacement, and
#                                     the python3 regression suite it runs
#                                     (gcc comes with build-essential)
#
# Runs as root, or through sudo otherwise.  When every package is already
# installed it does nothing (no apt-get at all), so repeated runs are fast.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libcmocka-dev
    clang libclang-rt-14-dev
    valgrind libc6-dbg
    libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4
    gnuplot-nox
    util-linux
    python3 libpython3.11-testsuite sqlite3 redis-server redis-tools git
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != installed ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#packages[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

# Confirm that everything asked for is there now.
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != installed ]; then
        echo "deps: $p is still not installed" >&2
        exit 1
    fi
done
echo "deps: done"
