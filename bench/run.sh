#!/usr/bin/env bash
# bench/run.sh - owns the malloc comparison: builds bench_cache in Release
# mode (in build-bench/, if needed), runs it once with glibc's malloc and
# once each with jemalloc, mimalloc and tcmalloc preloaded, and prints one
# table of ns per alloc+free pair with the ratio malloc/libslab.
#
# Usage: bash bench/run.sh [extra bench_cache options, e.g. --time 0.5]
# Environment: BENCH_BUILD_DIR (default build-bench), JOBS (default 2).
# A preload library that is not installed is reported and its column left
# out; scripts/deps.sh installs all of them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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

ok_names=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    lib=${libs[$i]}
    out=$tmp/$name.out
    if [ -z "$lib" ]; then
        echo "run.sh: running $bin with glibc malloc" >&2
        if ! "$bin" --label "$name" "$@" >"$out"; then
            echo "run.sh: bench_cache failed with glibc malloc" >&2
            cat "$out" >&2
            exit 1
        fi
    else
        echo "run.sh: running $bin with LD_PRELOAD=$lib" >&2
        if ! LD_PRELOAD=$lib "$bin" --label "$name" "$@" >"$out"; then
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
done

# The machine: CPU model and core count.
cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$cpu" ] || cpu=$(uname -m)
cores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || nproc)
online=$(nproc 2>/dev/null || echo "$cores")
echo
echo "machine: $cpu, $cores cores ($online usable), Linux $(uname -r), $(cc --version 2>/dev/null | head -1)"

awk -v order="${ok_names[*]}" '
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
    if (a == "libslab") { n = ++ns[w]; slab[w, n] = v }
    else                { m[w, $1] = v }
}
function median(w,   n, i, j, t, x) {
    n = ns[w]
    for (i = 1; i <= n; i++) x[i] = slab[w, i]
    for (i = 2; i <= n; i++)           # insertion sort, n is tiny
        for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
    if (n % 2) return x[(n + 1) / 2]
    return (x[n / 2] + x[n / 2 + 1]) / 2
}
END {
    k = split(order, runs, " ")
    printf "%-16s %9s", "workload", "libslab"
    for (r = 1; r <= k; r++) printf " %9s %7s", runs[r], "ratio"
    printf "\n"
    for (i = 1; i <= nw; i++) {
        w = wl[i]; med = median(w)
        printf "%-16s %9.2f", w, med
        for (r = 1; r <= k; r++) {
            if ((w, runs[r]) in m)
                printf " %9.2f %6.2fx", m[w, runs[r]], (med > 0 ? m[w, runs[r]] / med : 0)
            else
                printf " %9s %7s", "-", "-"
        }
        printf "\n"
    }
    printf "\nns per alloc+free pair (best of 3 repetitions each); ratio = malloc ns / libslab ns,\n"
    printf "above 1 means libslab is faster.  libslab is the median of its %d runs:", k
    for (i = 1; i <= nw; i++) {
        printf " %s", wl[i]
        for (j = 1; j <= ns[wl[i]]; j++) printf "%s%.2f", (j == 1 ? " " : "/"), slab[wl[i], j]
        if (i < nw) printf ";"
    }
    printf "\n"
}' "$tmp/all"
