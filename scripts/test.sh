#!/usr/bin/env bash
# scripts/test.sh - owns the full check of the project: every build
# configuration the project supports, each followed by its test suite.
#
#   a  gcc        build/           gcc build, ctest
#   b  install    (scratch dir)    cmake --install, then scripts/consumer/
#                                  built with find_package(libslab) and with
#                                  cc $(pkg-config --cflags --libs libslab)
#   c  clang      build-clang/     clang with -Werror, ctest
#   d  asan       build-asan/      -DSLAB_SANITIZE=address,undefined, ctest
#   e  tsan       build-tsan/      clang, -DSLAB_SANITIZE=thread, ctest
#                                  (under setarch -R when the kernel's mmap
#                                  randomisation defeats ThreadSanitizer)
#   f  valgrind   build-valgrind/  -DSLAB_VALGRIND=ON, ctest
#   g  fuzz       build-fuzz/      clang, -DSLAB_FUZZ=ON: fuzz/fuzz_api (libFuzzer,
#                                  ASan + UBSan) for FUZZ_SECONDS from the seeds
#                                  in fuzz/corpus/, then ctest -L fuzz
#   h  slob       build-slob/      -DSLAB_BACKEND=slob (the SLOB backend, src/slob.c),
#                                  ctest: the API tests, test_slob, the freestanding
#                                  library on SLOB (fs_*) and bench_footprint
#
# Usage: bash scripts/test.sh [--quick] [--only a,c,...]
#   --quick      stage a only
#   --only LIST  the stages named (letters or names, comma-separated)
# Environment: JOBS (build jobs, default 2), CTEST_JOBS (default 2),
# CTEST_TIMEOUT (seconds per test without its own timeout, default 900;
# CTEST_TIMEOUT_VALGRIND for stage f, default 1800), TSAN_SETARCH=1 (run
# the ThreadSanitizer tests under setarch -R without probing first),
# FUZZ_SECONDS (stage g's fuzzing time, default 60).
#
# Every stage runs even when an earlier one failed; the exit status is
# non-zero if any failed, and the last line is "N passed, N failed".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-2}
CTEST_TIMEOUT=${CTEST_TIMEOUT:-900}

all_stages=(a b c d e f g h)
selected=("${all_stages[@]}")
while [ $# -gt 0 ]; do
    case $1 in
        --quick) selected=(a) ;;
        --only)
            [ $# -ge 2 ] || { echo "test.sh: --only needs a list" >&2; exit 2; }
            IFS=, read -r -a selected <<<"$2"
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) echo "test.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

stage_title() {
    case $1 in
        a) echo "gcc build + ctest (build/)" ;;
        b) echo "install check: find_package and pkg-config consumers" ;;
        c) echo "clang -Werror build + ctest (build-clang/)" ;;
        d) echo "AddressSanitizer + UBSan build + ctest (build-asan/)" ;;
        e) echo "ThreadSanitizer build + ctest (build-tsan/)" ;;
        f) echo "valgrind build + ctest under memcheck (build-valgrind/)" ;;
        g) echo "libFuzzer run + ctest -L fuzz (build-fuzz/)" ;;
        h) echo "SLOB backend build + ctest (build-slob/)" ;;
    esac
}

stage_letter() {
    case $1 in
        a | gcc) echo a ;;
        b | install) echo b ;;
        c | clang) echo c ;;
        d | asan) echo d ;;
        e | tsan) echo e ;;
        f | valgrind) echo f ;;
        g | fuzz) echo g ;;
        h | slob) echo h ;;
        *) echo "test.sh: unknown stage: $1" >&2; return 1 ;;
    esac
}

# ---------------------------------------------------------------------
# Helpers (run inside each stage's subshell, under set -euo pipefail)

configure() { # DIR CMAKE-ARGS...
    local dir=$1
    shift
    echo "+ cmake -S . -B $dir $*"
    cmake -S . -B "$dir" "$@"
}

build() { # DIR
    echo "+ cmake --build $1 -j$JOBS"
    cmake --build "$1" -j"$JOBS"
}

# CTEST_PREFIX, if set, is a command ctest runs under (e.g. setarch).
# The pass/fail counts of the stage's last ctest run go to $stage_counts
# for the closing line.
run_ctest() { # DIR [extra ctest args]
    local dir=$1 log rc
    shift
    log=$(mktemp)
    echo "+ ${CTEST_PREFIX:+$CTEST_PREFIX }ctest --test-dir $dir --output-on-failure -j$CTEST_JOBS $*"
    set +e
    # shellcheck disable=SC2086
    ${CTEST_PREFIX:-} ctest --test-dir "$dir" --output-on-failure --no-tests=error \
        -j"$CTEST_JOBS" --timeout "$CTEST_TIMEOUT" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    # "100% tests passed, 0 tests failed out of 7"
    sed -n 's/.* tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$log" |
        tail -n1 | while read -r f t; do echo "$((t - f)) $f" >"$stage_counts"; done
    rm -f "$log"
    return "$rc"
}

# ---------------------------------------------------------------------
# Stages

stage_a() {
    configure build -DCMAKE_C_COMPILER=gcc
    build build
    run_ctest build
}

stage_b() {
    [ -f build/CMakeCache.txt ] || { configure build -DCMAKE_C_COMPILER=gcc; }
    build build
    # Not local: the EXIT trap of this stage's subshell removes it.
    install_prefix=$(mktemp -d "${TMPDIR:-/tmp}/libslab-install.XXXXXX")
    trap 'rm -rf "$install_prefix"' EXIT
    local prefix=$install_prefix
    echo "+ cmake --install build --prefix $prefix"
    cmake --install build --prefix "$prefix"

    echo "--- installed files"
    (cd "$prefix" && find . -type f -o -type l | sort)
    local f
    for f in include/slab.h include/slab/linux.h; do
        [ -f "$prefix/$f" ] || { echo "missing installed header $f" >&2; return 1; }
    done

    echo "--- CMake consumer: find_package(libslab)"
    echo "+ cmake -S scripts/consumer -B $prefix/consumer-build -DCMAKE_PREFIX_PATH=$prefix"
    cmake -S scripts/consumer -B "$prefix/consumer-build" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    build "$prefix/consumer-build"
    echo "+ consumer (libslab::slab)"
    "$prefix/consumer-build/consumer"
    echo "+ consumer_static (libslab::slab_static)"
    "$prefix/consumer-build/consumer_static"

    echo "--- pkg-config consumer"
    local pc pcdir libdir cflags libs
    pc=$(find "$prefix" -name libslab.pc | head -n1)
    [ -n "$pc" ] || { echo "libslab.pc was not installed" >&2; return 1; }
    pcdir=$(dirname "$pc")
    cflags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags libslab)
    libs=$(PKG_CONFIG_PATH=$pcdir pkg-config --libs libslab)
    libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir libslab)
    echo "pkg-config: libslab $(PKG_CONFIG_PATH=$pcdir pkg-config --modversion libslab): $cflags $libs"
    case $libdir in
        "$prefix"/*) ;;
        *)
            echo "libslab.pc installed under $prefix points at $libdir:" \
                "its prefix was fixed at configure time, so the package does not" \
                "follow cmake --install --prefix (a prefix relative to \${pcfiledir}" \
                "would)" >&2
            return 1
            ;;
    esac
    # Word splitting of the flags is intended.
    # shellcheck disable=SC2086
    echo "+ cc scripts/consumer/consumer.c $cflags $libs -Wl,-rpath,$libdir"
    # shellcheck disable=SC2086
    cc -std=c11 -Wall -Wextra -Werror scripts/consumer/consumer.c $cflags $libs \
        -Wl,-rpath,"$libdir" -o "$prefix/consumer-pc"
    echo "+ consumer-pc"
    "$prefix/consumer-pc"
    echo "1 0" >"$stage_counts"
}

stage_c() {
    # The real-program tests (tests/programs/) run once, in stage a.
    configure build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_C_FLAGS=-Werror -DSLAB_PROGRAM_TESTS=OFF
    build build-clang
    run_ctest build-clang
}

stage_d() {
    configure build-asan -DCMAKE_C_COMPILER=gcc -DSLAB_SANITIZE=address,undefined
    build build-asan
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:detect_stack_use_after_return=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_ctest build-asan
}

# Whether a ThreadSanitizer program starts here, as is or under setarch -R.
# Prints the wrapper to use ("" or "setarch ARCH -R"); fails if neither works.
tsan_wrapper() {
    local dir=$1 cc=$2 probe out
    probe=$dir/tsan-probe
    mkdir -p "$dir"
    printf '%s\n' '#include <pthread.h>' \
        'static int x; static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;' \
        'static void *f(void *a) { pthread_mutex_lock(&m); x++; pthread_mutex_unlock(&m); return a; }' \
        'int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); f(0); pthread_join(t, 0); return x != 2; }' \
        >"$probe.c"
    "$cc" -fsanitize=thread -g -O1 "$probe.c" -o "$probe" -pthread >&2
    if out=$("$probe" 2>&1); then
        echo ""
        return 0
    fi
    echo "tsan probe failed as is: $out" >&2
    if out=$(setarch "$(uname -m)" -R "$probe" 2>&1); then
        echo "tsan probe works under setarch -R (kernel mmap randomisation: $(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?') bits)" >&2
        echo "setarch $(uname -m) -R"
        return 0
    fi
    echo "tsan probe fails under setarch -R too: $out" >&2
    return 1
}

stage_e() {
    local cc=clang wrapper log rc
    configure build-tsan -DCMAKE_C_COMPILER=$cc -DSLAB_SANITIZE=thread
    build build-tsan
    if [ -n "${TSAN_SETARCH:-}" ]; then # force it, e.g. TSAN_SETARCH=1
        wrapper="setarch $(uname -m) -R"
    else
        wrapper=$(tsan_wrapper build-tsan "$cc")
    fi
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    log=build-tsan/ctest.log
    set +e
    CTEST_PREFIX=$wrapper run_ctest build-tsan 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ] && [ -z "$wrapper" ] &&
        grep -q -e 'unexpected memory mapping' -e 'FATAL: ThreadSanitizer' "$log"; then
        echo "ThreadSanitizer could not map its shadow memory: running again under setarch -R"
        CTEST_PREFIX="setarch $(uname -m) -R" run_ctest build-tsan
        return
    fi
    return "$rc"
}

stage_f() {
    configure build-valgrind -DCMAKE_C_COMPILER=gcc -DSLAB_VALGRIND=ON
    build build-valgrind
    CTEST_TIMEOUT=${CTEST_TIMEOUT_VALGRIND:-1800} run_ctest build-valgrind
}

stage_g() {
    local dir=build-fuzz seconds=${FUZZ_SECONDS:-60} rc=0
    configure $dir -DCMAKE_C_COMPILER=clang -DSLAB_FUZZ=ON -DSLAB_BUILD_TESTS=OFF \
        -DSLAB_BUILD_BENCH=OFF -DSLAB_BUILD_EXAMPLES=OFF
    build $dir
    [ -x $dir/fuzz/fuzz_api ] || { echo "fuzz_api was not built (is clang installed?)" >&2; return 1; }
    # New inputs go to the work directory, crashes next to it; the seeds
    # in fuzz/corpus/ are only read.
    mkdir -p $dir/fuzz/corpus-work
    echo "+ $dir/fuzz/fuzz_api -max_total_time=$seconds $dir/fuzz/corpus-work fuzz/corpus"
    set +e
    "$dir/fuzz/fuzz_api" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$dir/fuzz/" "$dir/fuzz/corpus-work" fuzz/corpus 2>&1 |
        grep -v -e '^#[0-9]*.*\(NEW\|REDUCE\) ' -e 'NEW_FUNC'
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || echo "fuzz_api failed (exit $rc): the input is in $dir/fuzz/ (crash-*)" >&2
    run_ctest $dir -L fuzz || rc=1
    return "$rc"
}

stage_h() {
    configure build-slob -DSLAB_BACKEND=slob
    build build-slob
    run_ctest build-slob
}

# ---------------------------------------------------------------------

stage_ids=()
for s in "${selected[@]}"; do
    stage_ids+=("$(stage_letter "$s")")
done

echo "libslab test run: stages ${stage_ids[*]} in $root"
echo "tools: $(gcc --version | head -n1); $(clang --version 2>/dev/null | head -n1 || echo 'clang: not found');" \
    "$(cmake --version | head -n1); $(valgrind --version 2>/dev/null || echo 'valgrind: not found')"

results=()
passed=0
failed=0
counts_file=$(mktemp)
trap 'rm -f "$counts_file"' EXIT
for id in "${stage_ids[@]}"; do
    title=$(stage_title "$id")
    printf '\n==================== stage %s: %s ====================\n' "$id" "$title"
    t0=$(date +%s)
    stage_counts=$counts_file.$id
    rm -f "$stage_counts"
    set +e
    (
        set -euo pipefail
        "stage_$id"
    )
    rc=$?
    set -e
    dt=$(($(date +%s) - t0))
    # A stage that failed before any test ran counts as one failed test.
    if [ -s "$stage_counts" ]; then
        cat "$stage_counts" >>"$counts_file"
    fi
    if [ "$rc" -ne 0 ] && ! grep -qv ' 0$' "$stage_counts" 2>/dev/null; then
        echo "0 1" >>"$counts_file"
    fi
    rm -f "$stage_counts"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        verdict=PASS
    else
        failed=$((failed + 1))
        verdict="FAIL (exit $rc)"
    fi
    printf -- '-------------------- stage %s: %s in %ds --------------------\n' "$id" "$verdict" "$dt"
    results+=("$(printf '  %s  %-58s %-14s %5ds' "$id" "$title" "$verdict" "$dt")")
done

# The closing line counts tests: every ctest test of every stage, plus one
# check for each stage that runs no ctest (the install check) or that
# failed before its tests could run.
tests_passed=0
tests_failed=0
while read -r p f; do
    tests_passed=$((tests_passed + p))
    tests_failed=$((tests_failed + f))
done <"$counts_file"
printf '\nsummary (stages):\n'
printf '%s\n' "${results[@]}"
printf 'stages: %d passed, %d failed\n' "$passed" "$failed"
printf '%d passed, %d failed\n' "$tests_passed" "$tests_failed"
[ "$failed" -eq 0 ]
