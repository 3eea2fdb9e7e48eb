#!/usr/bin/env bash
# bench/run.sh - owns the malloc comparison: builds bench_cache in Release
# mode (in build-bench/, if needed), runs it once with glibc's malloc and
# once each with jemalloc, mimalloc and tcmalloc preloaded, and prints one
# table of ns per alloc+free pair with the ratio malloc/libslab, a table of
# 2-thread scaling, and the machine and load it ran on.  libslab runs in
# every one of those processes; its figure is the median of those runs.
#
# It also writes a CSV, one row per workload per allocator (libslab first):
#
#   workload,allocator,ns_per_pair,ratio_vs_libslab,machine
#
# where ratio_vs_libslab = allocator ns / libslab ns (1 for libslab; above 1
# means libslab is faster) and machine is the line printed above the table
# (CPU, CPUs, kernel, compiler, build type, load average), quoted.  The raw
# output of every bench_cache run goes next to it, as <csv minus .csv>.raw.txt.
#
# Usage: bash bench/run.sh [--csv PATH] [extra bench_cache options, e.g.
#        --time 0.5 or --reps 5]
#   --csv PATH   where the CSV goes (default bench/results/latest.csv; a
#                relative PATH is taken from the current directory)
# Environment: BENCH_BUILD_DIR (default build-bench), JOBS (default 2).
# A preload library that is not installed is reported and its column left
# out; scripts/deps.sh installs all of them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
csv=$root/bench/results/latest.csv
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --csv)
            [ $# -ge 2 ] || { echo "run.sh: --csv needs a path" >&2; exit 2; }
            csv=$2
            shift
            ;;
        --csv=*) csv=${1#--csv=} ;;
        *) args+=("$1") ;;
    esac
    shift
done
case $csv in
    /*) ;;
    *) csv=$PWD/$csv ;;
esac
case $csv in
    *.csv) raw=${csv%.csv}.raw.txt ;;
    *) raw=$csv.raw.txt ;;
esac
mkdir -p "$(dirname "$csv")"

cd "$root"
build=${BENCH_BUILD_DIR:-build-bench}
jobs=${JOBS:-2}

if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "run.sh: configuring $build (Release)" >&2
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLAB_BUILD_TESTS=OFF >&2
fi
cmake --build "$build" -j"$jobs" --target bench_cache >&2
bin=$build/bench/bench_cache
[ -x "$bin" ] || { echo "run.sh: $bin was not built" >&2; exit 1; }

# The path of shared object $2 from Debian package $1, or a glob match.
find_lib() {
    local pkg=$1 so=$2 path f
    path=$(dpkg -L "$pkg" 2>/dev/null | grep -m1 "/$so\$" || true)
    if [ -z "$path" ] || [ ! -e "$path" ]; then
        path=
        for f in /usr/lib/*/"$so" /usr/lib/"$so" /lib/*/"$so" \
                 /usr/local/lib/"$so" /usr/local/lib/*/"$so"; do
            if [ -e "$f" ]; then path=$f; break; fi
        done
    fi
    printf '%s' "$path"
}

names=(glibc)
libs=("")
for spec in jemalloc:libjemalloc2:libjemalloc.so.2 \
            mimalloc:libmimalloc2.0:libmimalloc.so.2 \
            tcmalloc:libtcmalloc-minimal4:libtcmalloc_minimal.so.4; do
    IFS=: read -r name pkg so <<<"$spec"
    lib=$(find_lib "$pkg" "$so")
    if [ -n "$lib" ]; then
        names+=("$name")
        libs+=("$lib")
    else
        echo "run.sh: $so not found (Debian package $pkg): skipping the $name column" >&2
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Load before and after: other work on the machine skews every figure, the
# 2-thread ones most (two busy threads need two idle CPUs).
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

: >"$tmp/all"
: >"$raw"
ok_names=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    lib=${libs[$i]}
    out=$tmp/$name.out
    if [ -z "$lib" ]; then
        echo "run.sh: running $bin with glibc malloc" >&2
        if ! "$bin" --label "$name" ${args[@]+"${args[@]}"} >"$out"; then
            echo "run.sh: bench_cache failed with glibc malloc" >&2
            cat "$out" >&2
            exit 1
        fi
    else
        echo "run.sh: running $bin with LD_PRELOAD=$lib" >&2
        if ! LD_PRELOAD=$lib "$bin" --label "$name" ${args[@]+"${args[@]}"} >"$out"; then
            echo "run.sh: bench_cache failed with $name preloaded: skipping its column" >&2
            continue
        fi
        # dladdr(malloc) in the benchmark says which library malloc came from.
        if ! grep -q "^# bench_cache: .* from .*$(basename "$lib" | sed 's/\.so.*//')" "$out"; then
            echo "run.sh: warning: $name preload did not replace malloc:" >&2
            grep '^# bench_cache' "$out" >&2 || true
        fi
    fi
    ok_names+=("$name")
    sed "s/^/$name /" "$out" >>"$tmp/all"
    { echo "== $name${lib:+ (preloaded)}"; cat "$out"; } >>"$raw"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# The machine: CPU model, CPUs, kernel, the compiler that built the
# benchmark (it reports itself) and the build type.
cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$cpu" ] || cpu=$(uname -m)
cores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || nproc)
online=$(nproc 2>/dev/null || echo "$cores")
tpc=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p' || true)
hyp=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' || true)
compiler=$(sed -n 's/^# compiler: //p' "$tmp/${ok_names[0]}.out" | head -1)
[ -n "$compiler" ] || compiler=$(cc --version 2>/dev/null | head -1)
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
magazines=$(sed -n 's/^# libslab: magazines=//p' "$tmp/${ok_names[0]}.out" | head -1)
machine="$cpu, $cores CPUs ($online usable${tpc:+, $tpc thread(s) per core}${hyp:+, $hyp guest}), Linux $(uname -r), $compiler${btype:+ $btype}"
loadline="load average (1/5/15 min) $load_start at start, $load_end at end"

echo
echo "machine: $machine"
echo "$loadline; libslab magazines ${magazines:-?}"
echo

MACHINE="$machine; $loadline" CSV="$csv" awk -v order="${ok_names[*]}" '
function kv(field,   i, a) {
    for (i = 3; i <= NF; i++) {
        split($i, a, "=")
        if (a[1] == field) return substr($i, length(a[1]) + 2)
    }
    return ""
}
$2 == "result" {
    w = kv("workload"); a = kv("allocator"); v = kv("ns_per_pair") + 0
    if (!(w in seen)) { seen[w] = 1; wl[++nw] = w }
    b = kv("base"); if (b != "") base[w] = b
    if (kv("ring_empty_pk") != "")
        waits[w, (a == "libslab" ? "libslab/" : "") $1] = sprintf("%.1f/%.1f", kv("ring_full_pk"), kv("ring_empty_pk"))
    if (kv("reps") != "") reps = kv("reps")
    if (a == "libslab") { n = ++ns[w]; slab[w, n] = v; vcs[w, n] = kv("vcsw_pk") + 0 }
    else                { m[w, $1] = v; vcm[w, $1] = kv("vcsw_pk") + 0 }
    if (kv("threads") != "") mt[w] = 1
}
$2 == "baseline" {
    w = kv("workload"); n = ++nb[w]; bl[w, n] = kv("ns_per_pair") + 0
    if (!(w in bseen)) { bseen[w] = 1; bwl[++nbw] = w }
}
function median_of(arr, w, n,   i, j, t, x) {
    for (i = 1; i <= n; i++) x[i] = arr[w, i]
    for (i = 2; i <= n; i++)           # insertion sort, n is tiny
        for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
    if (n % 2) return x[(n + 1) / 2]
    return (x[n / 2] + x[n / 2 + 1]) / 2
}
function median(w) { return median_of(slab, w, ns[w]) }
function csvq(s) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
END {
    k = split(order, runs, " ")
    csv = ENVIRON["CSV"]; mach = csvq(ENVIRON["MACHINE"])
    print "workload,allocator,ns_per_pair,ratio_vs_libslab,machine" > csv

    printf "%-22s %9s", "workload", "libslab"
    for (r = 1; r <= k; r++) printf " %9s %7s", runs[r], "ratio"
    printf "\n"
    for (i = 1; i <= nw; i++) {
        w = wl[i]; med = median(w)
        printf "%-22s %9.2f", w, med
        printf "%s,libslab,%.3f,%.3f,%s\n", w, med, 1, mach > csv
        for (r = 1; r <= k; r++) {
            if ((w, runs[r]) in m) {
                ratio = med > 0 ? m[w, runs[r]] / med : 0
                printf " %9.2f %6.2fx", m[w, runs[r]], ratio
                printf "%s,%s,%.3f,%.3f,%s\n", w, runs[r], m[w, runs[r]], ratio, mach > csv
            } else
                printf " %9s %7s", "-", "-"
        }
        printf "\n"
    }
    close(csv)
    printf "\nns per alloc+free pair (best of %s repetitions each); ratio = malloc ns / libslab ns,\n", reps
    printf "above 1 means libslab is faster.  2t_* figures are aggregate: pairs of both threads\n"
    printf "per wall-clock ns.  libslab is the median of its %d runs (one per malloc process):\n", k
    for (i = 1; i <= nw; i++) {
        printf "  %-22s", wl[i]
        for (j = 1; j <= ns[wl[i]]; j++) printf "%s%.2f", (j == 1 ? " " : "/"), slab[wl[i], j]
        printf "\n"
    }

    ns2 = 0
    for (i = 1; i <= nw; i++) if (wl[i] in base) ns2++
    if (ns2) {
        printf "\nscaling, 2 threads vs 1: throughput 2t / throughput 1t = ns(1t) / ns(2t, aggregate);\n"
        printf "2.00 is perfect, 1.00 means the second thread added nothing\n"
        printf "%-22s %9s", "workload", "libslab"
        for (r = 1; r <= k; r++) printf " %9s", runs[r]
        printf "\n"
        for (i = 1; i <= nw; i++) {
            w = wl[i]
            if (!(w in base)) continue
            b = base[w]
            printf "%-22s", w
            if (ns[b] && median(w) > 0) printf " %9.2f", median(b) / median(w)
            else printf " %9s", "-"
            for (r = 1; r <= k; r++) {
                if (((w, runs[r]) in m) && ((b, runs[r]) in m) && m[w, runs[r]] > 0)
                    printf " %9.2f", m[b, runs[r]] / m[w, runs[r]]
                else
                    printf " %9s", "-"
            }
            printf "   (vs %s)\n", b
        }
    }

    nmt = 0
    for (i = 1; i <= nw; i++) if (wl[i] in mt) nmt++
    if (nmt) {
        printf "\nblocking in the 2-thread runs: voluntary context switches per 1000 pairs (a thread\n"
        printf "going to sleep, e.g. on a contended mutex), whole measurement; libslab: median\n"
        printf "%-22s %9s", "workload", "libslab"
        for (r = 1; r <= k; r++) printf " %9s", runs[r]
        printf "\n"
        for (i = 1; i <= nw; i++) {
            w = wl[i]
            if (!(w in mt)) continue
            printf "%-22s %9.4f", w, median_of(vcs, w, ns[w])
            for (r = 1; r <= k; r++)
                if ((w, runs[r]) in vcm) printf " %9.4f", vcm[w, runs[r]]
                else printf " %9s", "-"
            printf "\n"
        }
    }

    for (i = 1; i <= nbw; i++) {
        w = bwl[i]
        printf "\n%s: the ring hand-off alone (same threads and ring, objects from a static\n", w
        printf "pool, no allocator) takes %.2f ns per item (median; runs", median_of(bl, w, nb[w])
        for (j = 1; j <= nb[w]; j++) printf "%s%.2f", (j == 1 ? " " : "/"), bl[w, j]
        printf ").\nRing waits per 1000 items (producer found it full / consumer found it empty):\n "
        for (r = 1; r <= k; r++)
            if ((w, "libslab/" runs[r]) in waits) printf " libslab(in %s) %s;", runs[r], waits[w, "libslab/" runs[r]]
        printf "\n "
        for (r = 1; r <= k; r++)
            if ((w, runs[r]) in waits) printf " %s %s;", runs[r], waits[w, runs[r]]
        printf "\n"
    }
}' "$tmp/all"
echo
echo "CSV: $csv"
echo "raw output: $raw"
