#!/usr/bin/env bash
# tests/programs/git.sh - owns the git real-program test: git builds and
# maintains a repository of a few thousand small files, once with glibc's
# malloc and once with the library given as $1 preloaded (every git
# process, including the ones git spawns: pack-objects, repack,
# upload-pack, index-pack...).
#
# The workload: git init; 4000 files in 200 nested directories; git add,
# git commit; git log --stat; then a second tree (a fifth of the files
# changed, some deleted, a directory renamed, new files): git add, git
# commit, git log --stat, git diff -M --stat, git grep; git gc, git fsck
# --full --strict, git count-objects; git clone --no-local (a real pack
# transfer) and git fsck of the clone; git archive.  Author, committer and
# dates are fixed, so the commit ids must be the same in both runs.
#
# It checks that
#   - every git command exits 0 in both runs;
#   - both runs produce the same commit and tree ids, the same log --stat
#     (and its wc), diff, grep, ls-files, clone HEAD, archive and stderr;
#   - fsck reports nothing, gc left every object packed in one pack, the
#     work tree is clean and the clone has the same HEAD;
#   - the preload was real: the dynamic linker's binding log (LD_DEBUG)
#     shows malloc bound to the library in the git processes, and no
#     process bound any of the malloc family (malloc free calloc realloc
#     aligned_alloc memalign posix_memalign pvalloc valloc
#     malloc_usable_size) elsewhere.
#
# Usage: bash tests/programs/git.sh PRELOAD-LIBRARY
#   PRELOAD-LIBRARY ""  runs glibc against glibc (checks the script itself)
# Exit status: 0 pass, 1 fail (one line "git: FAIL: reason" on stderr),
# 2 usage, 77 skipped (git is not installed).
set -euo pipefail

name=git
# From lib.sh: fail and skip, the traps, the argument as lib, setup,
# check_bindings and same.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

git=$(command -v git) || skip "git is not installed (Debian package git)"

setup # $tmp, and lib made absolute and seen to preload

# The two trees, made once (no git involved): 4000 files of 1 to 40 lines
# in d00..d39/s0..s4/, then a copy with every 5th file changed, every 50th
# deleted, d05 renamed to d05-moved and 100 new files in d40/.
export LC_ALL=C
mkdir -p "$tmp"/tree1/d{00..39}/s{0..4}
awk -v root="$tmp/tree1" 'BEGIN {
    for (d = 0; d < 40; d++) for (s = 0; s < 5; s++) for (f = 0; f < 20; f++) {
        rel = sprintf("d%02d/s%d/f%03d.txt", d, s, f)
        path = root "/" rel
        n = 1 + (d * 7 + s * 3 + f) % 40
        for (i = 0; i < n; i++)
            printf "%s line %d: %d %s\n", rel, i, ((d * 1000 + s * 100 + f) * (i + 1)) % 9973,
                substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + (i * 7 + f) % 36) > path
        close(path)
    }
}'
cp -R "$tmp/tree1" "$tmp/tree2"
(
    cd "$tmp/tree2"
    i=0
    for f in d*/s*/f*.txt; do
        i=$((i + 1))
        if [ $((i % 50)) -eq 0 ]; then
            rm "$f"
        elif [ $((i % 5)) -eq 0 ]; then
            printf 'changed %d\n' "$i" >>"$f"
        fi
    done
    mv d05 d05-moved
    mkdir -p d40/new
    for i in $(seq 100); do printf 'new file %d\n%s\n' "$i" "$(seq "$i")" >"d40/new/n$i.txt"; done
)

# The identity and dates of the commits, and nothing from this machine's
# git configuration.
export GIT_AUTHOR_NAME="Test Author" GIT_AUTHOR_EMAIL=author@example.org
export GIT_COMMITTER_NAME="Test Committer" GIT_COMMITTER_EMAIL=committer@example.org
export GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat GIT_TERMINAL_PROMPT=0
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CEILING_DIRECTORIES

# One run in $tmp/MODE: each step's stdout in its own file, the stderr of
# all of them in err, every exit status in status.
run() { # MODE (glibc or preload)
    local mode=$1 dir=$tmp/$1
    local -a pre=()
    mkdir -p "$dir/home"
    preload_prefix "$mode" "$dir"
    export HOME=$dir/home XDG_CONFIG_HOME=$dir/home/.config
    step() { # OUTPUT GIT-ARGS...
        local out=$1 rc=0
        shift
        echo "## git $*" >>"$dir/err"
        (cd "$dir/repo" && timeout -k 5 60 "${pre[@]}" "$git" "$@") >"$dir/$out" 2>>"$dir/err" || rc=$?
        echo "git $*: $rc" >>"$dir/status"
        [ "$rc" -ne 124 ] || fail "git $* ($mode) did not finish within 60 s"
        [ "$rc" -eq 0 ] || { tail -n 5 "$dir/err" >&2; fail "git $* ($mode) exited with status $rc"; }
    }
    mkdir "$dir/repo"
    step init.out init -q -b main .
    step config.out config gc.auto 0
    step config.out config gc.autoDetach false
    cp -R "$tmp/tree1/." "$dir/repo/"
    step add1.out add -A
    GIT_AUTHOR_DATE="@1700000000 +0000" GIT_COMMITTER_DATE="@1700000000 +0000" \
        step commit1.out commit -q -m "first tree: 4000 files"
    step ids1.out rev-parse HEAD 'HEAD^{tree}'
    step files1.out ls-files
    step log1.out log --stat
    find "$dir/repo" -mindepth 1 -maxdepth 1 -name 'd*' -exec rm -rf {} +
    cp -R "$tmp/tree2/." "$dir/repo/"
    step add2.out add -A
    GIT_AUTHOR_DATE="@1700086400 +0100" GIT_COMMITTER_DATE="@1700090000 +0100" \
        step commit2.out commit -q -m "second tree: changes, deletions, a rename, new files"
    step ids2.out rev-parse HEAD 'HEAD^{tree}' 'HEAD~1'
    step files2.out ls-files
    step log2.out log --stat
    step diff.out diff -M --stat HEAD~1 HEAD
    step grep.out grep -c 'line 7:' HEAD
    step gc.out gc --quiet
    step fsck.out fsck --full --strict --no-progress
    step count.out count-objects -v
    step status.out status --porcelain
    step clone.out clone -q --no-local . ../clone
    step clone-ids.out -C ../clone rev-parse HEAD
    step clone-fsck.out -C ../clone fsck --full --strict --no-progress
    step archive.tar archive --format=tar HEAD
    wc <"$dir/log2.out" >"$dir/log2.wc"
}

run glibc
run preload
same "$tmp/glibc/status" "$tmp/preload/status" "the exit statuses"
for f in ids1 files1 log1 ids2 files2 log2 diff grep fsck status clone-ids clone-fsck; do
    same "$tmp/glibc/$f.out" "$tmp/preload/$f.out" "the output of step $f"
done
grep -v '^size' "$tmp/glibc/count.out" >"$tmp/glibc/count.objects"
grep -v '^size' "$tmp/preload/count.out" >"$tmp/preload/count.objects"
same "$tmp/glibc/count.objects" "$tmp/preload/count.objects" "the object counts after git gc"
same "$tmp/glibc/log2.wc" "$tmp/preload/log2.wc" "git log --stat | wc"
cmp -s "$tmp/glibc/archive.tar" "$tmp/preload/archive.tar" || fail "git archive's tar differs between glibc and the preload"
same "$tmp/glibc/err" "$tmp/preload/err" "git's stderr"

# What git must have done, whatever the allocator.
p=$tmp/preload
[ "$(wc -l <"$p/files1.out")" -eq 4000 ] || fail "the first commit has $(wc -l <"$p/files1.out") files, not 4000"
[ "$(wc -l <"$p/files2.out")" -eq 4020 ] || fail "the second commit has $(wc -l <"$p/files2.out") files, not 4020"
[ "$(sed -n 3p "$p/ids2.out")" = "$(sed -n 1p "$p/ids1.out")" ] || fail "HEAD~1 is not the first commit"
[ "$(sed -n 1p "$p/clone-ids.out")" = "$(sed -n 1p "$p/ids2.out")" ] || fail "the clone's HEAD is not the repository's"
[ ! -s "$p/fsck.out" ] || fail "git fsck reported: $(head -n1 "$p/fsck.out")"
[ ! -s "$p/clone-fsck.out" ] || fail "git fsck of the clone reported: $(head -n1 "$p/clone-fsck.out")"
[ ! -s "$p/status.out" ] || fail "the work tree is not clean after the commits: $(head -n1 "$p/status.out")"
grep -qx 'count: 0' "$p/count.out" || fail "git gc left loose objects: $(grep '^count' "$p/count.out")"
grep -qx 'packs: 1' "$p/count.out" || fail "git gc did not leave exactly one pack: $(grep '^packs' "$p/count.out")"
grep -q '{d05 => d05-moved}/' "$p/diff.out" || fail "git diff -M found no rename of d05 to d05-moved"
grep -q '^ 4000 files changed' "$p/log1.out" || fail "git log --stat does not show the 4000 files of the first commit"
if grep -qv '^## ' "$p/err"; then
    fail "git wrote to stderr: $(grep -v '^## ' "$p/err" | head -n1)"
fi

if [ -n "$lib" ]; then
    check_bindings "$p/ld" git:20
else
    echo "$name: no preload library given: glibc against glibc"
fi
echo "$name: PASS (commits $(sed -n 1p "$p/ids1.out" | cut -c1-12) and $(sed -n 1p "$p/ids2.out" | cut -c1-12)" \
    "identical; git log --stat | wc: $(tr -s ' ' <"$p/log2.wc" | sed 's/^ //')) in ${SECONDS}s"
