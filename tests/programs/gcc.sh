#!/usr/bin/env bash
# tests/programs/gcc.sh - owns the gcc real-program test: gcc compiles,
# assembles and links one C program (wordstat, written below: a growing
# chained hash table, merge sort, a binary heap, 300k generated words),
# once with glibc's malloc and once with the library given as $1
# preloaded.  LD_PRELOAD is inherited, so under the preload every process
# gcc spawns runs on the library: cc1, as, collect2 and ld.  The compiled
# program then runs the same way (it mallocs, reallocs and frees a lot).
#
# It checks that
#   - every step exits 0 in both runs, and gcc's diagnostics are the same;
#   - the object file (-O2 -g), the assembly (-O3 -funroll-loops) and the
#     linked executable are byte-identical between the runs (cmp);
#   - the program prints exactly the same output in both runs, and the
#     checksums this script expects;
#   - the preload was real: the dynamic linker's binding log (LD_DEBUG)
#     shows malloc bound to the library in gcc, cc1, as, collect2, ld and
#     the program, and no process bound any of the malloc family (malloc
#     free calloc realloc aligned_alloc memalign posix_memalign pvalloc
#     valloc malloc_usable_size) elsewhere.
#
# Usage: bash tests/programs/gcc.sh PRELOAD-LIBRARY
#   PRELOAD-LIBRARY ""  runs glibc against glibc (checks the script itself)
# Exit status: 0 pass, 1 fail (one line "gcc: FAIL: reason" on stderr),
# 2 usage, 77 skipped (gcc is not installed).
set -euo pipefail

name=gcc
# From lib.sh: fail and skip, the traps, the argument as lib, setup,
# check_bindings and same.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gcc=$(command -v gcc) || skip "gcc is not installed (Debian package gcc, from build-essential)"

setup # $tmp, and lib made absolute and seen to preload

cat >"$tmp/prog.c" <<'EOF'
/* wordstat: a deterministic workload of hashing, sorting and heaps.
 * Generates a pseudo-random text, counts its words in a chained hash table
 * that grows, sorts the words by count and by name, keeps the top words in
 * a binary heap, builds bigram statistics and prints checksums of it all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small PRNG (xorshift64*), so the output never changes ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* ---- a growable byte buffer ---- */
struct buf {
    char *data;
    size_t len, cap;
};

static void buf_putc(struct buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->data = xrealloc(b->data, b->cap);
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    while (*s)
        buf_putc(b, *s++);
}

/* ---- the hash table: separate chaining, doubles at load 1 ---- */
struct entry {
    struct entry *next;
    char *key;
    uint64_t hash;
    long count;
    long first_pos;
};

struct table {
    struct entry **slots;
    size_t nslots, nentries, resizes;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static void table_init(struct table *t, size_t nslots)
{
    t->slots = calloc(nslots, sizeof *t->slots);
    if (!t->slots)
        exit(2);
    t->nslots = nslots;
    t->nentries = 0;
    t->resizes = 0;
}

static void table_grow(struct table *t)
{
    size_t n = t->nslots * 2, i;
    struct entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        exit(2);
    for (i = 0; i < t->nslots; i++) {
        struct entry *e = t->slots[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    t->resizes++;
}

static struct entry *table_add(struct table *t, const char *key, long pos)
{
    uint64_t h = hash_str(key);
    struct entry *e;
    for (e = t->slots[h & (t->nslots - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) {
            e->count++;
            return e;
        }
    if (t->nentries >= t->nslots)
        table_grow(t);
    e = xmalloc(sizeof *e);
    e->key = xstrdup(key);
    e->hash = h;
    e->count = 1;
    e->first_pos = pos;
    e->next = t->slots[h & (t->nslots - 1)];
    t->slots[h & (t->nslots - 1)] = e;
    t->nentries++;
    return e;
}

static size_t table_longest_chain(const struct table *t)
{
    size_t i, best = 0;
    for (i = 0; i < t->nslots; i++) {
        size_t n = 0;
        const struct entry *e;
        for (e = t->slots[i]; e; e = e->next)
            n++;
        if (n > best)
            best = n;
    }
    return best;
}

static void table_free(struct table *t)
{
    size_t i;
    for (i = 0; i < t->nslots; i++) {
        struct entry *e = t->slots[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(t->slots);
}

/* ---- merge sort of entry pointers, stable ---- */
typedef int (*cmp_fn)(const struct entry *, const struct entry *);

static void merge_sort(struct entry **a, struct entry **tmp, size_t n, cmp_fn cmp)
{
    size_t mid = n / 2, i = 0, j = mid, k = 0;
    if (n < 2)
        return;
    merge_sort(a, tmp, mid, cmp);
    merge_sort(a + mid, tmp, n - mid, cmp);
    while (i < mid && j < n)
        tmp[k++] = cmp(a[j], a[i]) < 0 ? a[j++] : a[i++];
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static int by_count_desc(const struct entry *x, const struct entry *y)
{
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int by_name(const struct entry *x, const struct entry *y)
{
    return strcmp(x->key, y->key);
}

static int by_first_pos(const struct entry *x, const struct entry *y)
{
    return (x->first_pos > y->first_pos) - (x->first_pos < y->first_pos);
}

/* ---- a binary min-heap keeping the K longest words ---- */
struct heap {
    struct entry **items;
    size_t len, cap;
};

static int heap_less(const struct entry *x, const struct entry *y)
{
    size_t lx = strlen(x->key), ly = strlen(y->key);
    if (lx != ly)
        return lx < ly;
    return strcmp(x->key, y->key) > 0;
}

static void heap_sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->len && heap_less(h->items[l], h->items[m]))
            m = l;
        if (r < h->len && heap_less(h->items[r], h->items[m]))
            m = r;
        if (m == i)
            return;
        struct entry *t = h->items[i];
        h->items[i] = h->items[m];
        h->items[m] = t;
        i = m;
    }
}

static void heap_offer(struct heap *h, struct entry *e)
{
    if (h->len < h->cap) {
        size_t i = h->len++;
        h->items[i] = e;
        while (i > 0 && heap_less(h->items[i], h->items[(i - 1) / 2])) {
            struct entry *t = h->items[i];
            h->items[i] = h->items[(i - 1) / 2];
            h->items[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (heap_less(h->items[0], e)) {
        h->items[0] = e;
        heap_sift_down(h, 0);
    }
}

/* ---- text generation: words from syllables, Zipf-like repetition ---- */
static const char *const syllables[] = {
    "ka", "lo", "mi", "ten", "ra", "su", "vek", "no", "di", "pha",
    "qua", "zel", "or", "in", "te", "bu", "sha", "gor", "li", "em",
};

static void make_word(char *w, unsigned seed)
{
    unsigned n = 1 + seed % 4;
    w[0] = '\0';
    while (n--) {
        strcat(w, syllables[seed % 20]);
        seed = seed / 20 + seed * 7 + 3;
    }
}

static char *generate_text(long nwords)
{
    struct buf b = {0};
    char w[64];
    long i;
    for (i = 0; i < nwords; i++) {
        unsigned r = rng_below(1000);
        unsigned id = r < 500 ? rng_below(50) : r < 900 ? rng_below(2000) : rng_below(60000);
        make_word(w, id * 2654435761u);
        if (i)
            buf_putc(&b, (i % 17) ? ' ' : '\n');
        buf_puts(&b, w);
    }
    return b.data;
}

int main(int argc, char **argv)
{
    long nwords = argc > 1 ? atol(argv[1]) : 200000, pos = 0;
    char *text = generate_text(nwords), *save = NULL, *tok;
    struct table words, bigrams;
    struct heap heap;
    struct entry **all, **tmp, *e;
    char prev[64] = "", pair[160];
    size_t i, n;
    uint64_t checksum = 0;

    table_init(&words, 16);
    table_init(&bigrams, 16);
    printf("text: %zu bytes, %ld words\n", strlen(text), nwords);
    for (tok = strtok_r(text, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        table_add(&words, tok, pos++);
        if (prev[0]) {
            snprintf(pair, sizeof pair, "%s+%s", prev, tok);
            table_add(&bigrams, pair, pos);
        }
        snprintf(prev, sizeof prev, "%s", tok);
    }
    printf("distinct words: %zu (%zu slots, %zu resizes, longest chain %zu)\n",
           words.nentries, words.nslots, words.resizes, table_longest_chain(&words));
    printf("distinct bigrams: %zu (%zu slots, %zu resizes)\n",
           bigrams.nentries, bigrams.nslots, bigrams.resizes);

    n = words.nentries;
    all = xmalloc(n * sizeof *all);
    tmp = xmalloc(n * sizeof *tmp);
    for (i = 0, n = 0; i < words.nslots; i++)
        for (e = words.slots[i]; e; e = e->next)
            all[n++] = e;

    merge_sort(all, tmp, n, by_count_desc);
    printf("most frequent:\n");
    for (i = 0; i < 10 && i < n; i++)
        printf("  %2zu. %-16s %6ld\n", i + 1, all[i]->key, all[i]->count);

    merge_sort(all, tmp, n, by_name);
    printf("first and last by name: %s .. %s\n", all[0]->key, all[n - 1]->key);
    for (i = 0; i < n; i++)
        checksum = checksum * 31 + all[i]->hash + (uint64_t)all[i]->count;
    printf("name-order checksum: %016llx\n", (unsigned long long)checksum);

    merge_sort(all, tmp, n, by_first_pos);
    printf("first seen: %s %s %s, last new word at %ld\n", all[0]->key, all[1]->key,
           all[2]->key, all[n - 1]->first_pos);

    heap.cap = 8;
    heap.len = 0;
    heap.items = xmalloc(heap.cap * sizeof *heap.items);
    for (i = 0; i < n; i++)
        heap_offer(&heap, all[i]);
    merge_sort(heap.items, tmp, heap.len, by_name);
    printf("longest words:");
    for (i = 0; i < heap.len; i++)
        printf(" %s(%zu)", heap.items[i]->key, strlen(heap.items[i]->key));
    printf("\n");

    free(all);
    free(tmp);
    n = bigrams.nentries;
    all = xmalloc(n * sizeof *all);
    tmp = xmalloc(n * sizeof *tmp);
    for (i = 0, n = 0; i < bigrams.nslots; i++)
        for (e = bigrams.slots[i]; e; e = e->next)
            all[n++] = e;
    merge_sort(all, tmp, n, by_count_desc);
    printf("top bigrams: %s x%ld, %s x%ld, %s x%ld\n", all[0]->key, all[0]->count,
           all[1]->key, all[1]->count, all[2]->key, all[2]->count);
    for (checksum = 0, i = 0; i < n; i++)
        checksum ^= all[i]->hash * (uint64_t)(i + 1);
    printf("bigram checksum: %016llx\n", (unsigned long long)checksum);

    free(heap.items);
    free(all);
    free(tmp);
    table_free(&words);
    table_free(&bigrams);
    free(text);
    return 0;
}
EOF

# One run in $tmp/MODE: compile, assemble, link, run.
run() { # MODE (glibc or preload)
    local mode=$1 dir=$tmp/$1 rc
    local -a pre=()
    preload_prefix "$mode" "$dir"
    cp "$tmp/prog.c" "$dir/prog.c"
    cd "$dir"
    step() { # WHAT OUTPUT CMD...
        local what=$1 out=$2
        shift 2
        rc=0
        timeout -k 5 60 "${pre[@]}" "$@" >"$out" 2>>gcc.err || rc=$?
        echo "$what $rc" >>status
        [ "$rc" -ne 124 ] || fail "$what ($mode) did not finish within 60 s"
        [ "$rc" -eq 0 ] || { tail -n 5 gcc.err >&2; fail "$what ($mode) exited with status $rc"; }
    }
    : >gcc.err
    step "gcc -c" /dev/null "$gcc" -std=gnu11 -O2 -g -Wall -Wextra -fdebug-prefix-map="$dir"=. \
        -c prog.c -o prog.o
    step "gcc -S" /dev/null "$gcc" -std=gnu11 -O3 -funroll-loops -Wall -Wextra -S prog.c -o prog.s
    step "gcc (link)" /dev/null "$gcc" -O2 prog.o -o prog
    step "the compiled program" prog.out ./prog 300000
    cd "$tmp"
}

run glibc
run preload
same "$tmp/glibc/status" "$tmp/preload/status" "the exit statuses"
same "$tmp/glibc/gcc.err" "$tmp/preload/gcc.err" "gcc's diagnostics"
for f in prog.o prog.s prog; do
    cmp -s "$tmp/glibc/$f" "$tmp/preload/$f" ||
        fail "$f differs between glibc and the preload ($(cmp "$tmp/glibc/$f" "$tmp/preload/$f" 2>&1 | head -n1))"
done
same "$tmp/glibc/prog.out" "$tmp/preload/prog.out" "the compiled program's output"

# What the program must print, whatever the allocator.
out=$tmp/preload/prog.out
grep -qx 'text: 2065436 bytes, 300000 words' "$out" || fail "unexpected text size: $(head -n1 "$out")"
grep -qx 'name-order checksum: 0860b804f199255f' "$out" ||
    fail "unexpected word checksum: $(grep 'name-order' "$out" || echo 'no checksum line')"
grep -qx 'bigram checksum: 9719a791f5c7c419' "$out" ||
    fail "unexpected bigram checksum: $(grep 'bigram checksum' "$out" || echo 'no checksum line')"

if [ -n "$lib" ]; then
    check_bindings "$tmp/preload/ld" gcc:3 cc1:2 as:1 collect2:1 ld:1 prog:1
else
    echo "$name: no preload library given: glibc against glibc"
fi
echo "$name: PASS (prog.o, prog.s and the executable identical; $(wc -l <"$out") lines of output identical) in ${SECONDS}s"
