#!/usr/bin/env bash
# bench/debug_cost.sh - owns the measurement of what debug mode costs:
#
# 1. Debug off: does the fast path pay anything for debug mode being there?
#    It builds, in Release mode, libslab's benchmarks for
#      base          the tree before debug mode (git revision --base, default
#                    c28704b), exported with `git archive` into a scratch
#                    directory;
#      head          the current tree (the working tree, uncommitted changes
#                    included);
#      head_noannot  the current tree with -DSLAB_ANNOTATE=OFF, when its
#                    CMakeLists.txt has that option (memory-checker
#                    annotations compiled out);
#    and runs them in alternation, ROUNDS rounds (default 15), the order of
#    the builds rotated from round to round (base head, head base, ... with
#    two builds), on the single-thread fast-path workloads:
#      hot_lifo_64, batch_1000_64  bench_cache --only ... --libslab-only:
#                    ns per slab_cache_alloc + slab_cache_free pair, best of
#                    --reps (100) repetitions of --time (0.005 s) in each
#                    process.  Many short repetitions, because the best of
#                    them is a run that no other work on the machine
#                    interrupted: with a load average of 4 on 2 CPUs the
#                    best of 100 x 5 ms repeats within about 2 %, the best
#                    of 3 x 0.3 s (bench/run.sh's) within about 40 %;
#      random_small  bench_malloc random_small with the build's
#                    libslab-malloc.so preloaded: wall time of the run
#                    (malloc/calloc/free through the drop-in malloc), best
#                    of MALLOC_REPS (2) runs per round, the builds'
#                    runs interleaved;
#      random_small_cpu  the CPU time (user + system) of the same runs, best
#                    of them: it leaves out the time the process waited
#                    for a CPU, so on a loaded machine it is the steadier
#                    of the two.
#    Every build runs the same benchmark source, the current tree's
#    bench/bench_cache.c (copied over the base's, whose copy predates
#    --only), and the same bench_malloc binary (it does not link libslab;
#    only the preloaded library differs): what differs between builds is
#    the library alone.
#    Reported per workload and build: the median over the rounds and the
#    median absolute deviation (MAD) of the rounds from it, the run-to-run
#    noise of that build.  Per comparison (head - base, head_noannot - base,
#    head - head_noannot), the differences of the pairs measured in the same
#    round: their median (ns, or ms, and % of the second build's median), a
#    distribution-free interval for that median (the k-th smallest and
#    largest difference, coverage >= 95 %: with 15 rounds the 4th and the
#    12th), in how many rounds the first build was slower, a two-sided sign test
#    on that count, and a verdict: "distinguishable" when the sign test gives
#    p <= 0.05 (the first build slower, or faster, in more of the rounds than
#    the run-to-run noise would make it; as a rule the interval then leaves
#    out 0), otherwise "not distinguishable from the run-to-run noise".  The
#    noise (the larger of the two builds' MADs) is printed beside it for
#    scale: a difference smaller than the spread between rounds can still be
#    consistent, since both builds of a round share the load of the moment.
#    Each comparison is a test of its own: over the 4 workloads and up to 3
#    comparisons, one p <= 0.05 by chance alone is not unlikely; run again
#    before reading much into a single one.  With fewer than 6 rounds no
#    count can reach p <= 0.05, so the verdict is then always "not
#    distinguishable".  --base HEAD (or any revision with the same library)
#    makes it an A/A test: two builds of the same code, whose differences
#    are the noise and the build's own effects (paths, code placement).
#
# 2. Debug on, head build only, DEBUG_ROUNDS rounds (default 3), the modes in
#    rotated order within each round:
#      bench_cache hot_lifo_64, batch_1000_64 and ctor_256_mutex with
#      SLAB_DEBUG=<F|FZP|FZPU>,bench64,bench_ctor (its two caches), against
#      the same runs without SLAB_DEBUG: ns per pair and the ratio to debug
#      off (medians over the rounds).  Each run's header must show the
#      switches in force on both caches (bench_cache prints every cache's
#      flags), or the script stops.  A debug cache has no magazines, so the
#      runs are also made with SLAB_MAGAZINES=0 and no debug ("nomag"): the
#      part of the cost that is the slab layer's, not the checks'.
#      bench_malloc random_small (--scale DEBUG_MALLOC_SCALE, 0.25) through
#      the drop-in malloc with SLAB_DEBUG=FZP (every size class) against
#      debug off (and nomag) at the same scale: time and ratio.  A short run with SLAB_STATS=json first checks that
#      the size classes really got F, Z and P.
#
# 3. It prints the tables with the machine line (as bench/run.sh describes
#    the machine: CPU, CPUs, kernel, compiler, build type, and the load
#    average at start and end) and writes a CSV (default
#    bench/results/debug-cost.csv):
#
#      measure,build,workload,value,unit,machine
#
#    measure  median      part 1: median over the rounds (build base,
#                         head, head_noannot)
#             mad         part 1: run-to-run noise of that build (same units)
#             diff        median paired difference (build "head-base" etc.)
#             diff_pct    that difference in % of the second build's median
#             diff_low, diff_high  the interval for it (6 rounds or more)
#             slower      rounds in which the first build was slower (unit
#                         rounds_of_N; rounds with no difference left out)
#             sign_p      two-sided sign-test p-value of that count
#             verdict     1 distinguishable from the noise, 0 not
#             debug_median part 2: median over the rounds (build head for
#                         debug off, head+nomag, head+F, head+FZP,
#                         head+FZPU; random_small: head, head+nomag,
#                         head+FZP)
#             debug_ratio debug on / debug off, medians (unit x)
#    unit     ns_per_pair (bench_cache), ms (bench_malloc random_small and
#             random_small_cpu)
#    machine  the machine line, quoted
#
#    Every benchmark's raw output goes next to the CSV, as
#    <csv minus .csv>.raw.txt.
#
# Usage: bash bench/debug_cost.sh [--base REV] [--csv PATH] [--time SECONDS]
#        [--reps N] [--no-debug-on] [--no-debug-off]
#   --base REV      the tree before debug mode (default c28704b); it must be
#                   in the repository: a shallow clone lacks it (git fetch
#                   --unshallow), and the script stops saying so
#   --csv PATH      where the CSV goes (relative to the current directory)
#   --time SECONDS  bench_cache --time, per repetition (default 0.005)
#   --reps N        bench_cache --reps (default 100)
#   --no-debug-off  skip part 1 (no base build)
#   --no-debug-on   skip part 2
# Environment: ROUNDS (default 15), DEBUG_ROUNDS (default 3), MALLOC_REPS
# (default 2), MALLOC_SCALE (bench_malloc --scale in part 1, default 1),
# DEBUG_MALLOC_SCALE (--scale in part 2, default 0.25: FZP makes every call
# about 15 times slower),
# DEBUG_COST_BUILD_DIR (default
# build-debug-cost; one build directory per build in it, and the exported
# base tree), JOBS (default 2).  Every SLAB_* variable of the caller's
# environment is removed first (a SLAB_DEBUG or SLAB_MAGAZINES left set
# would change what is measured).  A default run took 1 min 49 s on 2 CPUs,
# builds included, at a load average of about 2.5; more load, or the
# third build, makes it longer.  Not part of ctest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_rev=c28704b
csv=$root/bench/results/debug-cost.csv
btime=0.005
breps=100
do_off=1
do_on=1
die() { echo "debug_cost.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --base)
            [ $# -ge 2 ] || die "--base needs a revision"
            base_rev=$2
            shift
            ;;
        --base=*) base_rev=${1#--base=} ;;
        --csv)
            [ $# -ge 2 ] || die "--csv needs a path"
            csv=$2
            shift
            ;;
        --csv=*) csv=${1#--csv=} ;;
        --time)
            [ $# -ge 2 ] || die "--time needs a number of seconds"
            btime=$2
            shift
            ;;
        --time=*) btime=${1#--time=} ;;
        --reps)
            [ $# -ge 2 ] || die "--reps needs a number"
            breps=$2
            shift
            ;;
        --reps=*) breps=${1#--reps=} ;;
        --no-debug-off) do_off=0 ;;
        --no-debug-on) do_on=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "debug_cost.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$do_off" = 1 ] || [ "$do_on" = 1 ] || { echo "debug_cost.sh: --no-debug-off and --no-debug-on leave nothing to run" >&2; exit 2; }
rounds=${ROUNDS:-15}
mreps=${MALLOC_REPS:-2}
drounds=${DEBUG_ROUNDS:-3}
mscale=${MALLOC_SCALE:-1}
dmscale=${DEBUG_MALLOC_SCALE:-0.25}
jobs=${JOBS:-2}
case $rounds in ''|*[!0-9]*) die "ROUNDS must be a whole number (got '$rounds')" ;; esac
case $drounds in ''|*[!0-9]*) die "DEBUG_ROUNDS must be a whole number (got '$drounds')" ;; esac
case $mreps in ''|*[!0-9]*) die "MALLOC_REPS must be a whole number (got '$mreps')" ;; esac
case $breps in ''|*[!0-9]*) die "--reps must be a whole number (got '$breps')" ;; esac
[ "$mreps" -ge 1 ] || die "MALLOC_REPS must be at least 1"
[ "$breps" -ge 1 ] || die "--reps must be at least 1"
[ "$rounds" -ge 2 ] || die "ROUNDS must be at least 2"
[ "$drounds" -ge 1 ] || die "DEBUG_ROUNDS must be at least 1"
awk -v t="$btime" 'BEGIN { exit !(t + 0 >= 0.001) }' || die "--time must be at least 0.001 s"
case $csv in
    /*) ;;
    *) csv=$PWD/$csv ;;
esac
case $csv in
    *.csv) raw=${csv%.csv}.raw.txt ;;
    *) raw=$csv.raw.txt ;;
esac

# The caller's libslab settings would change what is measured.
for v in $(compgen -e | grep '^SLAB_' || true); do
    echo "debug_cost.sh: note: $v was set in the environment; unset for the runs" >&2
    unset "$v"
done

cd "$root"
bdir=${DEBUG_COST_BUILD_DIR:-build-debug-cost}
case $bdir in
    /*) ;;
    *) bdir=$root/$bdir ;;
esac

# ---------------------------------------------------------------------
# The trees

git -C "$root" rev-parse --git-dir >/dev/null 2>&1 ||
    die "$root is not a git repository: the base tree (--base $base_rev) comes from its history"
head_id=$(git -C "$root" rev-parse --short HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- src include CMakeLists.txt cmake bench 2>/dev/null)" ]; then
    head_id="$head_id with uncommitted changes"
fi

base_full=
if [ "$do_off" = 1 ]; then
    if ! base_full=$(git -C "$root" rev-parse --verify --quiet "$base_rev^{commit}"); then
        msg="revision '$base_rev' (the tree before debug mode, --base) is not in this repository"
        if [ "$(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
            msg="$msg: it is a shallow clone; run 'git fetch --unshallow', or give --base a revision it has"
        else
            msg="$msg; give --base a revision it has"
        fi
        die "$msg (or run with --no-debug-off for the debug-on figures alone)"
    fi
    base_id=$(git -C "$root" rev-parse --short "$base_full")
fi
if [ "$do_on" = 1 ] && ! grep -q SLAB_DEBUG_FLAGS "$root/include/slab.h"; then
    die "this tree has no debug mode (no SLAB_DEBUG_FLAGS in include/slab.h): nothing to measure with debug on; use --no-debug-on"
fi

annotate=0
if grep -q SLAB_ANNOTATE "$root/CMakeLists.txt"; then
    annotate=1
fi

mkdir -p "$bdir" "$(dirname "$csv")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Build targets $3... of source tree $1 in build directory $2 (Release),
# with the cmake options in the array cmake_extra.
build_tree() {
    local src=$1 dir=$2 log
    shift 2
    log=$dir.log
    echo "debug_cost.sh: building $(basename "$dir") (${*}) in $dir" >&2
    if ! { cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSLAB_BUILD_TESTS=OFF \
               -DSLAB_BUILD_EXAMPLES=OFF ${cmake_extra[@]+"${cmake_extra[@]}"} &&
           cmake --build "$dir" -j"$jobs" --target "$@"; } >"$log" 2>&1; then
        echo "debug_cost.sh: building $(basename "$dir") failed; the end of $log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
}

builds=()     # names, in the order of the tables
declare -A cache_bin malloc_lib
if [ "$do_off" = 1 ]; then
    # The base tree, exported once per revision; the benchmark source is
    # the current tree's, so that only the library differs.
    bsrc=$bdir/src-$base_full
    if [ ! -f "$bsrc/CMakeLists.txt" ]; then
        echo "debug_cost.sh: exporting $base_id into $bsrc (git archive)" >&2
        rm -rf "$bsrc" "$bsrc.part"
        mkdir -p "$bsrc.part"
        git -C "$root" archive --format=tar "$base_full" | tar -x -C "$bsrc.part"
        mv "$bsrc.part" "$bsrc"
    fi
    [ -f "$bsrc/bench/CMakeLists.txt" ] || die "the base tree $base_id has no bench/ directory"
    cmp -s "$root/bench/bench_cache.c" "$bsrc/bench/bench_cache.c" ||
        cp "$root/bench/bench_cache.c" "$bsrc/bench/bench_cache.c"
    cmake_extra=()
    bbuild=$bdir/base-$base_full   # one per revision: cmake ties it to its source
    build_tree "$bsrc" "$bbuild" bench_cache slab_malloc
    builds+=(base)
    cache_bin[base]=$bbuild/bench/bench_cache
    malloc_lib[base]=$bbuild/libslab-malloc.so
fi
cmake_extra=()
[ "$annotate" = 0 ] || cmake_extra=(-DSLAB_ANNOTATE=ON)
build_tree "$root" "$bdir/head" bench_cache bench_malloc slab_malloc
builds+=(head)
cache_bin[head]=$bdir/head/bench/bench_cache
malloc_lib[head]=$bdir/head/libslab-malloc.so
mbin=$bdir/head/bench/bench_malloc
if [ "$do_off" = 1 ] && [ "$annotate" = 1 ]; then
    cmake_extra=(-DSLAB_ANNOTATE=OFF)
    build_tree "$root" "$bdir/head_noannot" bench_cache slab_malloc
    builds+=(head_noannot)
    cache_bin[head_noannot]=$bdir/head_noannot/bench/bench_cache
    malloc_lib[head_noannot]=$bdir/head_noannot/libslab-malloc.so
fi
for b in "${builds[@]}"; do
    [ -x "${cache_bin[$b]}" ] || die "${cache_bin[$b]} was not built"
    [ -e "${malloc_lib[$b]}" ] || die "${malloc_lib[$b]} was not built"
done
[ -x "$mbin" ] || die "$mbin was not built"

# ---------------------------------------------------------------------
# Running

: >"$raw"
data=$tmp/data       # lines: part build round workload value
: >"$data"
mtimeout=600         # s per bench_malloc run: a hang stops the script, not the machine

# run_cache PART ROUND LABEL BUILD "VAR=VALUE or empty" WORKLOADS EXPECT
# BUILD's bench_cache, with that variable in its environment, its libslab
# figures into $data as "PART LABEL ROUND WORKLOAD NS"; EXPECT is what both
# of its caches must show: "debug=<switches> magazines=<0|1>" (debug=- for
# none).
run_cache() {
    local part=$1 r=$2 label=$3 b=$4 dbg=$5 wl=$6 expect=$7 out=$tmp/c.out env=()
    [ -z "$dbg" ] || env=("$dbg")
    if ! env ${env[@]+"${env[@]}"} "${cache_bin[$b]}" --only "$wl" --libslab-only \
            --time "$btime" --reps "$breps" --label "$b" >"$out" 2>"$out.err"; then
        cat "$out" "$out.err" >&2
        die "bench_cache failed (build $b${dbg:+, $dbg})"
    fi
    { echo "== bench_cache build=$b round=$r${dbg:+ $dbg}"; cat "$out" "$out.err"; } >>"$raw"
    # A base libslab has no flags in its statistics: its header says debug=-.
    local c got
    for c in bench64 bench_ctor; do
        got=$(sed -n "s/^# cache $c: .*\(debug=[^ ]* magazines=[01]\).*/\1/p" "$out")
        [ "$got" = "$expect" ] ||
            die "bench_cache build $b${dbg:+ with $dbg}: cache $c shows '${got:-nothing}', expected '$expect'"
    done
    awk -v p="$part" -v b="$label" -v r="$r" '
        $1 == "result" && / allocator=libslab / {
            w = ""; ns = ""
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^workload=/) w = substr($i, 10)
                if ($i ~ /^ns_per_pair=/) ns = substr($i, 13)
            }
            print p, b, r, w, ns
        }' "$out" >>"$data"
    if [ -z "$first_out" ]; then
        first_out=$tmp/first.out
        cp "$out" "$first_out"
    fi
}

# run_malloc PART ROUND LABEL BUILD "VAR=VALUE or empty" SCALE: bench_malloc
# random_small --scale SCALE with BUILD's libslab-malloc.so (and that
# variable), its wall and CPU times (ms) into $data as
# "PART LABEL ROUND random_small MS" and "PART LABEL ROUND random_small_cpu MS".
run_malloc() {
    local part=$1 r=$2 label=$3 b=$4 dbg=$5 scale=$6 out=$tmp/m.out env=(LD_PRELOAD="${malloc_lib[$4]}") rc
    [ -z "$dbg" ] || env+=("$dbg")
    if timeout "$mtimeout" env "${env[@]}" "$mbin" random_small --scale "$scale" \
            --label "$b" >"$out" 2>"$out.err"; then
        rc=0
    else
        rc=$?
    fi
    { echo "== bench_malloc random_small build=$b round=$r${dbg:+ $dbg}, exit $rc"; cat "$out" "$out.err"; } >>"$raw"
    if [ "$rc" != 0 ] || ! grep -q '^result ' "$out"; then
        tail -n 20 "$out" "$out.err" >&2
        die "bench_malloc random_small failed with build $b's libslab-malloc.so${dbg:+ and $dbg} (exit $rc)"
    fi
    grep -q "^# bench_malloc: .* from .*libslab-malloc" "$out" ||
        die "bench_malloc: the preload of ${malloc_lib[$b]} did not replace malloc: $(grep '^# bench_malloc' "$out")"
    awk -v p="$part" -v b="$label" -v r="$r" '
        $1 == "result" {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^time_s=/) t = substr($i, 8)
                if ($i ~ /^cpu_s=/) c = substr($i, 7)
            }
            printf "%s %s %s random_small %.3f\n", p, b, r, t * 1000
            printf "%s %s %s random_small_cpu %.3f\n", p, b, r, c * 1000
        }' "$out" >>"$data"
}

# The names in $@ rotated left by $1 (mod their count).
rotate() {
    local k=$1 n i
    shift
    n=$#
    local a=("$@")
    for ((i = 0; i < n; i++)); do printf '%s\n' "${a[$(((i + k) % n))]}"; done
}

first_out=
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
t_start=$(date +%s)

if [ "$do_off" = 1 ]; then
    for ((r = 1; r <= rounds; r++)); do
        mapfile -t order < <(rotate $((r - 1)) "${builds[@]}")
        echo "debug_cost.sh: debug off, round $r of $rounds: ${order[*]}" >&2
        for b in "${order[@]}"; do
            run_cache off "$r" "$b" "$b" "" hot_lifo_64,batch_1000_64 "debug=- magazines=1"
        done
        for ((k = 1; k <= mreps; k++)); do
            for b in "${order[@]}"; do
                run_malloc off "$r" "$b" "$b" "" "$mscale"
            done
        done
    done
fi

modes=(nomag F FZP FZPU)
if [ "$do_on" = 1 ]; then
    # The drop-in malloc's size classes must really take SLAB_DEBUG=FZP
    # (F|Z|P = 0xd00 in every kmalloc cache's flags).
    if ! SLAB_DEBUG=FZP SLAB_STATS=json LD_PRELOAD="${malloc_lib[head]}" "$mbin" random_small \
            --smoke >/dev/null 2>"$tmp/json"; then
        die "bench_malloc --smoke with SLAB_DEBUG=FZP failed: $(tail -n 5 "$tmp/json")"
    fi
    if ! grep -o '"name":"kmalloc-[^}]*' "$tmp/json" | awk '
            { n++; f = $0; sub(/.*"flags":/, "", f); sub(/[^0-9].*/, "", f)
              if (int(f / 256) % 2 != 1 || int(f / 1024) % 4 != 3) bad++ }
            END { exit !(n > 0 && bad == 0) }'; then
        die "with SLAB_DEBUG=FZP the drop-in malloc's size classes do not all show F, Z and P in SLAB_STATS=json"
    fi
    allmodes=(- "${modes[@]}")
    cw=hot_lifo_64,batch_1000_64,ctor_256_mutex
    for ((r = 1; r <= drounds; r++)); do
        mapfile -t order < <(rotate $((r - 1)) "${allmodes[@]}")
        echo "debug_cost.sh: debug on, round $r of $drounds: ${order[*]}" >&2
        for m in "${order[@]}"; do
            case $m in
                -) run_cache on "$r" head head "" $cw "debug=- magazines=1" ;;
                nomag) run_cache on "$r" head+nomag head SLAB_MAGAZINES=0 $cw "debug=- magazines=0" ;;
                *) run_cache on "$r" "head+$m" head "SLAB_DEBUG=$m,bench64,bench_ctor" $cw \
                       "debug=$m magazines=0" ;;
            esac
        done
        mapfile -t order < <(rotate $((r - 1)) - nomag FZP)
        for m in "${order[@]}"; do
            case $m in
                -) run_malloc on "$r" head head "" "$dmscale" ;;
                nomag) run_malloc on "$r" head+nomag head SLAB_MAGAZINES=0 "$dmscale" ;;
                *) run_malloc on "$r" "head+$m" head "SLAB_DEBUG=$m" "$dmscale" ;;
            esac
        done
    done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
elapsed=$(($(date +%s) - t_start))

# shellcheck source=bench/machine.sh
source "$root/bench/machine.sh"
machine_info "$first_out" "$bdir/head"
loadline="load average (1/5/15 min) $load_start at start, $load_end at end"

# ---------------------------------------------------------------------
# Report

echo
echo "debug_cost: libslab's fast path with debug mode off and on"
echo "head: $head_id${base_full:+; base: $base_id (--base $base_rev)}"
echo "machine: $machine"
echo "$loadline; measured in ${elapsed} s"
echo

comparisons=""
if [ "$do_off" = 1 ]; then
    comparisons="head:base"
    if [ "$annotate" = 1 ]; then
        comparisons="$comparisons head_noannot:base head:head_noannot"
    fi
fi

MACHINE="$machine; $loadline" CSV="$csv" awk -v builds="${builds[*]}" \
    -v comparisons="$comparisons" -v modes="${modes[*]}" -v rounds="$rounds" \
    -v drounds="$drounds" -v btime="$btime" -v breps="$breps" -v mreps="$mreps" -v dmscale="$dmscale" \
    -v do_off="$do_off" -v do_on="$do_on" '
function sort(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
}
function median(a, n,   b, i) {
    if (n == 0) return ""
    for (i = 1; i <= n; i++) b[i] = a[i]
    sort(b, n)
    return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
function abs(x) { return x < 0 ? -x : x }
# Median absolute deviation from the median.
function mad(a, n,   m, d, i) {
    m = median(a, n)
    for (i = 1; i <= n; i++) d[i] = abs(a[i] - m)
    return median(d, n)
}
# Two-sided sign test: k of n nonzero differences positive.
function sign_p(k, n,   lo, i, c, s) {
    if (n == 0) return 1
    lo = k < n - k ? k : n - k
    s = 0; c = 1
    for (i = 0; i <= lo; i++) {
        s += c
        c = c * (n - i) / (i + 1)
    }
    s = 2 * s / 2 ^ n
    return s > 1 ? 1 : s
}
function unit(w) { return w ~ /^random_small/ ? "ms" : "ns_per_pair" }
# The sorted a[1..n] into s[1..n].
function sorted(a, n, s,   i) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    sort(s, n)
}
# Distribution-free interval for the median of d[1..n] (sign test): the
# k-th smallest and k-th largest, k the largest with 2 P(Bin(n, 1/2) < k)
# <= 0.05.  Sets lo, hi, cover (the coverage in %); returns 0 when n is too
# small for any such interval.
function median_interval(d, n,   s, k, c, cum, i) {
    cum = 0; c = 1; k = 0
    for (i = 0; i < n; i++) {
        cum += c / 2 ^ n
        if (2 * cum > 0.05) break
        k = i + 1
        c = c * (n - i) / (i + 1)
    }
    if (k == 0) return 0
    sorted(d, n, s)
    lo = s[k]; hi = s[n - k + 1]
    cum = 0; c = 1
    for (i = 0; i < k; i++) { cum += c / 2 ^ n; c = c * (n - i) / (i + 1) }
    cover = 100 * (1 - 2 * cum)
    return 1
}
function csvq(s) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
function row(measure, build, w, v, u) {
    printf "%s,%s,%s,%s,%s,%s\n", measure, build, w, v, u, mach > csv
}
# The rounds of part p, build b, workload w into arr; returns the count.
function series(p, b, w, arr,   r, n) {
    n = 0
    for (r = 1; r <= maxr[p]; r++) if ((p, b, r, w) in v) arr[++n] = v[p, b, r, w]
    return n
}
{
    # Several runs of one build in one round (MALLOC_REPS): the best.
    if (!(($1, $2, $3, $4) in v) || $5 + 0 < v[$1, $2, $3, $4] + 0) v[$1, $2, $3, $4] = $5
    if ($3 > maxr[$1]) maxr[$1] = $3
    if (!(($1, $4) in seenw)) { seenw[$1, $4] = 1; wl[$1, ++nw[$1]] = $4 }
}
END {
    csv = ENVIRON["CSV"]; mach = csvq(ENVIRON["MACHINE"])
    print "measure,build,workload,value,unit,machine" > csv
    nb = split(builds, bl, " ")
    if (do_off) {
        printf "1. debug off: the fast path of each build, median of %d rounds (MAD: median absolute\n", rounds
        printf "   deviation of the rounds, the run-to-run noise); hot_lifo_64 and batch_1000_64 in ns\n"
        printf "   per alloc+free pair (bench_cache, best of %d x %s s per process); random_small in ms,\n", breps, btime
        printf "   wall and CPU (user + system) time of the run, each the best of %d runs per round\n", mreps
        printf "   (bench_malloc, LD_PRELOAD of the build%ss libslab-malloc.so)\n\n", "\047"
        printf "%-16s %-13s %9s %8s   %s\n", "workload", "build", "median", "MAD", "rounds"
        for (i = 1; i <= nw["off"]; i++) {
            w = wl["off", i]
            for (j = 1; j <= nb; j++) {
                b = bl[j]
                delete a; n = series("off", b, w, a)
                if (!n) continue
                med[b, w] = median(a, n); dev[b, w] = mad(a, n)
                s = ""
                for (k = 1; k <= n; k++) s = s (k > 1 ? " " : "") sprintf(w ~ /^random_small/ ? "%.0f" : "%.2f", a[k])
                printf "%-16s %-13s %9.2f %8.2f   %s\n", (j == 1 ? w : ""), b, med[b, w], dev[b, w], s
                row("median", b, w, sprintf("%.3f", med[b, w]), unit(w))
                row("mad", b, w, sprintf("%.3f", dev[b, w]), unit(w))
            }
        }
        nc = split(comparisons, cl, " ")
        printf "\npaired differences, first build - second, in the same round; interval: for the median\n"
        printf "difference, distribution-free (sign test), coverage >= 95%%; noise: the larger MAD of the two\n"
        printf "%-16s %-18s %8s %7s %19s %10s %6s %7s  %s\n", "workload", "comparison", "median", "%", "interval", "1st slower", "sign p", "noise", "distinguishable"
        for (i = 1; i <= nw["off"]; i++) {
            w = wl["off", i]
            u = w ~ /^random_small/ ? "ms" : "ns"
            for (c = 1; c <= nc; c++) {
                split(cl[c], pr, ":"); x = pr[1]; y = pr[2]
                delete d; n = 0; pos = 0; nz = 0
                for (r = 1; r <= maxr["off"]; r++)
                    if ((("off", x, r, w) in v) && (("off", y, r, w) in v)) {
                        d[++n] = v["off", x, r, w] - v["off", y, r, w]
                        if (d[n] != 0) { nz++; if (d[n] > 0) pos++ }
                    }
                if (!n) continue
                md = median(d, n)
                pct = med[y, w] > 0 ? 100 * md / med[y, w] : 0
                p = sign_p(pos, nz)
                noise = dev[x, w] > dev[y, w] ? dev[x, w] : dev[y, w]
                dist = (p <= 0.05)
                have_iv = median_interval(d, n)
                iv = have_iv ? sprintf("[%+.2f, %+.2f]", lo, hi) : "-"
                cmp = x "-" y
                printf "%-16s %-18s %+8.2f %+6.1f%% %19s %5d of %-2d %6.3f %7.2f  %s\n", (c == 1 ? w : ""), cmp, md, pct, iv, pos, nz, p, noise, dist ? "YES: " x " " (md > 0 ? "slower" : "faster") : "no"
                row("diff", cmp, w, sprintf("%.3f", md), unit(w))
                row("diff_pct", cmp, w, sprintf("%.2f", pct), "%")
                if (have_iv) {
                    row("diff_low", cmp, w, sprintf("%.3f", lo), unit(w))
                    row("diff_high", cmp, w, sprintf("%.3f", hi), unit(w))
                }
                row("slower", cmp, w, pos, "rounds_of_" nz)
                row("sign_p", cmp, w, sprintf("%.4f", p), "p")
                row("verdict", cmp, w, dist, "1_distinguishable")
                if (dist)
                    verdict = sprintf("DISTINGUISHABLE from the run-to-run noise: %s is %s%s", x, md > 0 ? "slower" : "faster", abs(md) < noise ? " (by less than the spread between rounds, but in too many rounds for chance)" : "")
                else
                    verdict = "not distinguishable from the run-to-run noise"
                verd[++nv] = sprintf("verdict %s, %s: %s; median difference %+.2f %s (%+.1f%%)%s, %s slower in %d of %d rounds (sign test p = %.3f), noise %.2f %s", w, cmp, verdict, md, u, pct, have_iv ? sprintf(", %.0f%% interval [%+.2f, %+.2f] %s", cover, lo, hi, u) : "", x, pos, nz, p, noise, u)
            }
        }
        printf "\n"
        for (i = 1; i <= nv; i++) print verd[i]
        printf "(distinguishable: the first build slower, or faster, in so many of the rounds that the\n"
        printf "sign test gives p <= 0.05, i.e. more often than the run-to-run noise would make it%s)\n", rounds < 6 ? "; with fewer\nthan 6 rounds the sign test cannot reach 0.05 and there is no interval" : ""
        printf "\n"
    }
    if (do_on) {
        nm = split(modes, ml, " ")
        printf "2. debug on (head build), median of %d rounds: SLAB_DEBUG=<switches>,bench64,bench_ctor for\n", drounds
        printf "   bench_cache (ns per pair), SLAB_DEBUG=FZP for every size class of the drop-in malloc\n"
        printf "   (random_small --scale %s, ms); ratio = figure / debug off.", dmscale
        printf "  nomag: no debug, SLAB_MAGAZINES=0, the\n"
        printf "   magazine-less path that every debug cache takes, without the checks\n\n"
        printf "%-16s %9s", "workload", "off"
        for (k = 1; k <= nm; k++) printf " %10s %7s", ml[k], "ratio"
        printf "\n"
        for (i = 1; i <= nw["on"]; i++) {
            w = wl["on", i]
            delete a; n = series("on", "head", w, a)
            if (!n) continue
            off = median(a, n)
            printf "%-16s %9.2f", w, off
            row("debug_median", "head", w, sprintf("%.3f", off), unit(w))
            for (k = 1; k <= nm; k++) {
                b = "head+" ml[k]
                delete a; n = series("on", b, w, a)
                if (!n) { printf " %10s %7s", "-", "-"; continue }
                m = median(a, n)
                ratio = off > 0 ? m / off : 0
                printf " %10.2f %6.1fx", m, ratio
                row("debug_median", b, w, sprintf("%.3f", m), unit(w))
                row("debug_ratio", b, w, sprintf("%.3f", ratio), "x")
            }
            printf "\n"
        }
        printf "\n"
    }
    close(csv)
}' "$data"
echo "CSV: $csv"
echo "raw output: $raw"
