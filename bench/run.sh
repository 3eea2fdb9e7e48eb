#!/usr/bin/env bash
# bench/run.sh - owns the malloc comparisons, two benchmarks in one run:
#
# 1. bench_cache: builds it in Release mode (in build-bench/, if needed),
#    runs it once with glibc's malloc and once each with jemalloc, mimalloc
#    and tcmalloc preloaded, and prints one table of ns per alloc+free pair
#    with the ratio malloc/libslab, a table of 2-thread scaling, and the
#    machine and load it ran on.  libslab runs in every one of those
#    processes; its figure is the median of those runs.
#
#    It also writes a CSV, one row per workload per allocator (libslab first):
#
#      workload,allocator,ns_per_pair,ratio_vs_libslab,machine
#
#    where ratio_vs_libslab = allocator ns / libslab ns (1 for libslab; above
#    1 means libslab is faster) and machine is the line printed above the
#    table (CPU, CPUs, kernel, compiler, build type, load average), quoted.
#    The raw output of every bench_cache run goes next to it, as
#    <csv minus .csv>.raw.txt.
#
# 2. bench_malloc: whole-program workloads (random_small, random_large,
#    larson, grow_shrink, realloc_chain; see bench/bench_malloc.c) with
#    glibc's malloc, jemalloc, mimalloc, tcmalloc and libslab's malloc
#    replacement, each preloaded (libslab: $build/libslab-malloc.so, built
#    here with `cmake --build $build --target slab_malloc`; a tree without
#    that target gets a note and no libslab column).  Every workload and
#    allocator runs in a fresh process, 3 times, the repetitions interleaved
#    across allocators; the best run by time counts, with the peak and final
#    RSS of that same run.  It prints a table of time (ms) and peak RSS
#    (MiB) with the ratios allocator/libslab (above 1: libslab is faster or
#    smaller), geometric means over the workloads, and libslab's geomeans
#    against mimalloc's with the project's target (time <= mimalloc's, peak
#    RSS <= 1.2 x mimalloc's).  Its CSV is a second file next to the first,
#    named malloc-<first's name> (default bench/results/malloc-latest.csv):
#
#      workload,allocator,time_s,peak_rss_kb,final_rss_kb,ratio_time,ratio_rss,machine
#
#    ratio_time and ratio_rss are allocator / libslab (empty without a
#    libslab column); the raw output is malloc-<first's name minus .csv>.raw.txt.
#
# 3. When gnuplot is installed, bench/plot.sh draws both CSVs as PNG charts
#    (bench/charts/ by default, else next to the CSV).
#
# Usage: bash bench/run.sh [--csv PATH] [--cache-only | --malloc-only]
#        [--malloc-scale X] [extra bench_cache options, e.g. --time 0.5 or
#        --reps 5]
#   --csv PATH        where the bench_cache CSV goes (default
#                     bench/results/latest.csv; a relative PATH is taken from
#                     the current directory); the malloc CSV goes beside it
#   --cache-only      run bench_cache only
#   --malloc-only     run bench_malloc only
#   --malloc-scale X  bench_malloc --scale X (operation counts times X)
# Environment: BENCH_BUILD_DIR (default build-bench), JOBS (default 2).
# A preload library that is not installed is reported and its column left
# out; scripts/deps.sh installs all of them.  The whole run takes about 2
# minutes on 2 CPUs (plus the build).  bench_malloc runs under timeout(1),
# 120 s per run: a hung allocator loses its figure, not the whole run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
csv=$root/bench/results/latest.csv
args=()
do_cache=1
do_malloc=1
malloc_scale=1
while [ $# -gt 0 ]; do
    case $1 in
        --csv)
            [ $# -ge 2 ] || { echo "run.sh: --csv needs a path" >&2; exit 2; }
            csv=$2
            shift
            ;;
        --csv=*) csv=${1#--csv=} ;;
        --cache-only) do_malloc=0 ;;
        --malloc-only) do_cache=0 ;;
        --malloc-scale)
            [ $# -ge 2 ] || { echo "run.sh: --malloc-scale needs a number" >&2; exit 2; }
            malloc_scale=$2
            shift
            ;;
        --malloc-scale=*) malloc_scale=${1#--malloc-scale=} ;;
        *) args+=("$1") ;;
    esac
    shift
done
if [ "$do_cache" = 0 ] && [ "$do_malloc" = 0 ]; then
    echo "run.sh: --cache-only and --malloc-only together leave nothing to run" >&2
    exit 2
fi
case $csv in
    /*) ;;
    *) csv=$PWD/$csv ;;
esac
case $csv in
    *.csv) raw=${csv%.csv}.raw.txt ;;
    *) raw=$csv.raw.txt ;;
esac
mcsv=$(dirname "$csv")/malloc-$(basename "$csv")
case $mcsv in
    *.csv) mraw=${mcsv%.csv}.raw.txt ;;
    *) mraw=$mcsv.raw.txt ;;
esac
mkdir -p "$(dirname "$csv")"

cd "$root"
build=${BENCH_BUILD_DIR:-build-bench}
jobs=${JOBS:-2}

# Configured every time (quick): a tree made before a target was added
# would not know it otherwise.
echo "run.sh: configuring $build (Release)" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLAB_BUILD_TESTS=OFF >&2
targets=()
[ "$do_cache" = 0 ] || targets+=(bench_cache)
[ "$do_malloc" = 0 ] || targets+=(bench_malloc)
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >&2
bin=$build/bench/bench_cache
mbin=$build/bench/bench_malloc
if [ "$do_cache" = 1 ]; then
    [ -x "$bin" ] || { echo "run.sh: $bin was not built" >&2; exit 1; }
fi
if [ "$do_malloc" = 1 ]; then
    [ -x "$mbin" ] || { echo "run.sh: $mbin was not built" >&2; exit 1; }
fi

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

# shellcheck source=bench/machine.sh
source "$root/bench/machine.sh"

# ---------------------------------------------------------------------
# 1. bench_cache

cache_bench() {
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

    machine_info "$tmp/${ok_names[0]}.out" "$build"
    magazines=$(sed -n 's/^# libslab: magazines=//p' "$tmp/${ok_names[0]}.out" | head -1)
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
}
# ---------------------------------------------------------------------
# 2. bench_malloc

mworkloads=(random_small random_large larson grow_shrink realloc_chain)
mreps=3
mtimeout=120 # seconds per run: a hung allocator loses its cell, not the run

malloc_bench() {
    local mnames=() mlibs=() failed=() pre=() slab_lib="" log i name lib rep w rc out err tag
    local load_start load_end loadline first=""

    # libslab's malloc replacement, if this tree has it.
    log=$tmp/slab_malloc.log
    echo "run.sh: building slab_malloc (libslab-malloc.so)" >&2
    if cmake --build "$build" -j"$jobs" --target slab_malloc >"$log" 2>&1; then
        case $build in
            /*) slab_lib=$build/libslab-malloc.so ;;
            *) slab_lib=$root/$build/libslab-malloc.so ;;
        esac
        if [ ! -e "$slab_lib" ]; then
            echo "run.sh: slab_malloc was built but $slab_lib is not there: the libslab column is skipped" >&2
            slab_lib=""
        fi
    elif grep -qiE "no rule to make target|unknown target" "$log"; then
        echo "run.sh: no slab_malloc target in this tree (libslab's malloc is not there yet): the libslab column is skipped" >&2
    else
        echo "run.sh: building slab_malloc failed: the libslab column is skipped; the end of its log:" >&2
        tail -n 20 "$log" >&2
    fi
    if [ -n "$slab_lib" ]; then
        mnames+=(libslab)
        mlibs+=("$slab_lib")
    fi
    for i in "${!names[@]}"; do
        mnames+=("${names[$i]}")
        mlibs+=("${libs[$i]}")
    done

    load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
    : >"$tmp/mall"
    : >"$mraw"
    out=$tmp/m.out
    err=$tmp/m.err
    # Repetitions outermost, so that a stretch of load on the machine falls
    # on every allocator alike.
    for rep in $(seq 1 "$mreps"); do
        for w in "${mworkloads[@]}"; do
            echo "run.sh: bench_malloc $w, run $rep of $mreps: ${mnames[*]}" >&2
            for i in "${!mnames[@]}"; do
                name=${mnames[$i]}
                lib=${mlibs[$i]}
                case " ${failed[*]-} " in *" $name/$w "*) continue ;; esac
                pre=()
                [ -z "$lib" ] || pre=(LD_PRELOAD="$lib")
                if timeout "$mtimeout" env ${pre[@]+"${pre[@]}"} "$mbin" "$w" \
                        --label "$name" --scale "$malloc_scale" >"$out" 2>"$err"; then
                    rc=0
                else
                    rc=$?
                fi
                { echo "== $name $w run $rep${lib:+ (LD_PRELOAD=$lib)}, exit $rc"; cat "$out" "$err"; } >>"$mraw"
                if [ "$rc" != 0 ] || ! grep -q '^result ' "$out"; then
                    if [ "$rc" = 124 ]; then rc="timed out after ${mtimeout} s"; else rc="exit $rc"; fi
                    if [ -z "$lib" ]; then
                        echo "run.sh: bench_malloc $w failed with glibc malloc ($rc):" >&2
                        cat "$out" "$err" >&2
                        exit 1
                    fi
                    echo "run.sh: bench_malloc $w failed with $name preloaded ($rc): no $name figure for $w" >&2
                    tail -n 5 "$err" >&2
                    failed+=("$name/$w")
                    continue
                fi
                if [ -n "$lib" ] && [ "$rep" = 1 ]; then
                    # dladdr(malloc) in the benchmark says which library malloc came from.
                    tag=$(basename "$lib" | sed 's/\.so.*//')
                    if ! grep -q "^# bench_malloc: .* from .*$tag" "$out"; then
                        echo "run.sh: warning: $name preload did not replace malloc for $w:" >&2
                        grep '^# bench_malloc' "$out" >&2 || true
                    fi
                fi
                [ -n "$first" ] || { first=$tmp/m.first; cp "$out" "$first"; }
                grep '^result ' "$out" | sed "s/^/$name /" >>"$tmp/mall"
            done
        done
    done
    load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

    machine_info "$first" "$build"
    loadline="load average (1/5/15 min) $load_start at start, $load_end at end"
    echo
    echo "bench_malloc: whole-program workloads, each allocator in fresh processes"
    echo "machine: $machine"
    echo "$loadline"
    echo

    MACHINE="$machine; $loadline" CSV="$mcsv" awk -v order="${mnames[*]}" \
        -v workloads="${mworkloads[*]}" -v failed="${failed[*]-}" -v reps="$mreps" '
    function kv(field,   i, a) {
        for (i = 3; i <= NF; i++) {
            split($i, a, "=")
            if (a[1] == field) return substr($i, length(a[1]) + 2)
        }
        return ""
    }
    $2 == "result" {
        w = kv("workload"); a = $1; t = kv("time_s") + 0
        if (!((w, a) in best) || t < best[w, a]) {
            best[w, a] = t; peak[w, a] = kv("peak_rss_kb") + 0; fin[w, a] = kv("final_rss_kb") + 0
        }
    }
    function ok(w, a) { return ((w, a) in best) && !((a "/" w) in bad) }
    function missing(a,   i, s) {
        s = ""
        for (i = 1; i <= nw; i++) if (!ok(wl[i], a)) s = s (s == "" ? "" : ", ") wl[i]
        return s
    }
    function complete(a,   i) {
        for (i = 1; i <= nw; i++) if (!ok(wl[i], a)) return 0
        return 1
    }
    # Geometric mean over the workloads of time (s) or peak RSS (KiB).
    function gmean(arr, a,   i, s) {
        s = 0
        for (i = 1; i <= nw; i++) s += log(arr[wl[i], a])
        return exp(s / nw)
    }
    function csvq(s) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
    # One table row: label, metric, and per allocator the value (time in ms
    # or RSS in MiB from v[] scaled by f) and the ratio to libslab.
    function row(label, metric, v, f, has,   r, a, x) {
        printf "%-14s %-9s", label, metric
        for (r = 1; r <= k; r++) {
            a = al[r]
            if (a == "libslab") {
                if (has[a]) printf " %9.1f", v[a] * f; else printf " %9s", "-"
                continue
            }
            if (has[a]) printf " %9.1f", v[a] * f; else printf " %9s", "-"
            if (has[a] && has["libslab"] && v["libslab"] > 0) printf " %6.2fx", v[a] / v["libslab"]
            else printf " %7s", "-"
        }
        printf "\n"
    }
    END {
        nw = split(workloads, wl, " ")
        nf = split(failed, fl, " "); for (i = 1; i <= nf; i++) bad[fl[i]] = 1
        # Columns: libslab first, measured or not.
        k = 0; al[++k] = "libslab"
        n = split(order, tmp, " ")
        for (i = 1; i <= n; i++) {
            measured[tmp[i]] = 1
            if (tmp[i] != "libslab") al[++k] = tmp[i]
        }

        printf "%-14s %-9s %9s", "workload", "metric", "libslab"
        for (r = 2; r <= k; r++) printf " %9s %7s", al[r], "ratio"
        printf "\n"
        for (i = 1; i <= nw; i++) {
            w = wl[i]
            delete tv; delete pv; delete has
            for (r = 1; r <= k; r++) {
                a = al[r]
                if (ok(w, a)) { has[a] = 1; tv[a] = best[w, a]; pv[a] = peak[w, a] }
            }
            row(w, "time ms", tv, 1000, has)
            row("", "peak MiB", pv, 1 / 1024, has)
        }
        delete tv; delete pv; delete has
        for (r = 1; r <= k; r++) {
            a = al[r]
            if (complete(a)) { has[a] = 1; tv[a] = gmean(best, a); pv[a] = gmean(peak, a) }
        }
        row("geomean", "time ms", tv, 1000, has)
        row("", "peak MiB", pv, 1 / 1024, has)

        printf "\nbest of %d runs by time (peak RSS from that same run); ratio = allocator / libslab,\n", reps
        printf "above 1 means libslab is faster (time) or smaller (peak RSS).  Geomean over the %d\n", nw
        printf "workloads, for allocators with a figure for every one.\n"

        printf "\nfinal RSS (MiB) at the end of the same runs, after the frees (grow_shrink: with 10%% still live)\n"
        printf "%-14s", "workload"
        for (r = 1; r <= k; r++) printf " %9s", al[r]
        printf "\n"
        for (i = 1; i <= nw; i++) {
            printf "%-14s", wl[i]
            for (r = 1; r <= k; r++)
                if (ok(wl[i], al[r])) printf " %9.1f", fin[wl[i], al[r]] / 1024
                else printf " %9s", "-"
            printf "\n"
        }

        printf "\n"
        tgt = "target (libslab geomean time <= mimalloc, peak RSS <= 1.2 x mimalloc): not evaluated"
        if (!measured["libslab"])
            printf "%s, libslab was not measured\n", tgt
        else if (!has["libslab"])
            printf "%s, libslab failed %s\n", tgt, missing("libslab")
        else if (!has["mimalloc"])
            printf "%s, mimalloc %s\n", tgt, measured["mimalloc"] ? "failed " missing("mimalloc") : "was not measured"
        else {
            rt = tv["libslab"] / tv["mimalloc"]; rr = pv["libslab"] / pv["mimalloc"]
            printf "libslab against mimalloc (geomean over %d workloads): time %.2fx mimalloc%ss, peak RSS %.2fx mimalloc%ss\n", nw, rt, "\047", rr, "\047"
            printf "target time <= 1.00x: %s; target peak RSS <= 1.20x: %s\n",
                   rt <= 1.0 ? "met" : "NOT met", rr <= 1.2 ? "met" : "NOT met"
        }

        csv = ENVIRON["CSV"]; mach = csvq(ENVIRON["MACHINE"])
        print "workload,allocator,time_s,peak_rss_kb,final_rss_kb,ratio_time,ratio_rss,machine" > csv
        for (i = 1; i <= nw; i++) {
            w = wl[i]
            for (r = 1; r <= k; r++) {
                a = al[r]
                if (!ok(w, a)) continue
                rt = rr = ""
                if (ok(w, "libslab") && best[w, "libslab"] > 0 && peak[w, "libslab"] > 0) {
                    rt = sprintf("%.3f", best[w, a] / best[w, "libslab"])
                    rr = sprintf("%.3f", peak[w, a] / peak[w, "libslab"])
                }
                printf "%s,%s,%.6f,%d,%d,%s,%s,%s\n", w, a, best[w, a], peak[w, a], fin[w, a], rt, rr, mach > csv
            }
        }
        close(csv)
    }' "$tmp/mall"
    echo
    echo "CSV: $mcsv"
    echo "raw output: $mraw"
}

if [ "$do_cache" = 1 ]; then
    cache_bench
fi
if [ "$do_malloc" = 1 ]; then
    [ "$do_cache" = 0 ] || echo
    malloc_bench
fi

# Charts of the CSVs just written (bench/plot.sh): in bench/charts/, or
# beside the CSV when --csv put it elsewhere.  A plotting failure is
# reported but does not fail the run: the tables and CSVs are complete.
plot_out=$root/bench/charts
[ "$csv" = "$root/bench/results/latest.csv" ] || plot_out=$(dirname "$csv")
plot_mode=()
[ "$do_cache" = 1 ] || plot_mode=(--malloc-only)
[ "$do_malloc" = 1 ] || plot_mode=(--cache-only)
echo
if command -v gnuplot >/dev/null 2>&1; then
    bash "$root/bench/plot.sh" --csv "$csv" --out "$plot_out" ${plot_mode[@]+"${plot_mode[@]}"} ||
        echo "run.sh: bench/plot.sh failed; the CSVs above are complete" >&2
elif [ "$plot_out" = "$root/bench/charts" ]; then
    echo "charts: install gnuplot (apt-get install gnuplot-nox, or bash scripts/deps.sh), then run: bash bench/plot.sh${plot_mode[*]:+ ${plot_mode[*]}}"
else
    echo "charts: install gnuplot (apt-get install gnuplot-nox, or bash scripts/deps.sh), then run: bash bench/plot.sh --csv $csv --out $plot_out${plot_mode[*]:+ ${plot_mode[*]}}"
fi
