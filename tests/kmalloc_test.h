/*
 * kmalloc_test.h - helpers shared by the tests of general-purpose
 * allocation: test_kmalloc.c (slab_malloc() and friends) and test_malloc.c
 * (the same blocks through the C library's names).  Header only, on top of
 * slab_test.h.
 *
 *   - KiB and MiB, and the bytes of the page run that serves a size;
 *   - fill() and assert_filled(): a block's content, byte by byte;
 *   - mapped_bytes_in(): how much of an address range is mapped;
 *   - aligned_problem(): what is wrong with a block just returned for an
 *     alignment, and aligned_failures, which collects such problems so
 *     that a test sees every one before it fails;
 *   - the thread stress: a random size from a table of bands, blocks
 *     that carry a checkable pattern (put_block, check_block,
 *     check_moved), and run_stress(), NWORKERS threads that malloc,
 *     calloc, realloc and free random sizes through a struct heap and
 *     check every block they touch.
 */
#ifndef KMALLOC_TEST_H
#define KMALLOC_TEST_H

#include <fcntl.h>
#include <unistd.h>

#include "slab_test.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* A run is a whole buddy block: a power of two of pages. */
static inline size_t run_round(size_t n)
{
    size_t bytes = SLAB_PAGE_SIZE;
    while (bytes < n)
        bytes <<= 1;
    return bytes;
}

/* ------------------------------------------------------------------ */
/* Block content                                                        */

/* Byte i of a block filled with `seed`. */
static inline unsigned char fill_byte(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131u) ^ (i >> 9) ^ seed);
}

static inline void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = fill_byte(i, seed);
}

#define assert_filled(p_, n_, seed_)                                             \
    do {                                                                         \
        const unsigned char *c_ = (const unsigned char *)(p_);                   \
        size_t n__ = (n_);                                                       \
        for (size_t i_ = 0; i_ < n__; i_++)                                      \
            if (c_[i_] != fill_byte(i_, (seed_)))                                \
                fail_msg("%p: byte %zu of %zu is %#x, expected %#x", (void *)c_, \
                         i_, n__, c_[i_], fill_byte(i_, (seed_)));               \
    } while (0)

/* ------------------------------------------------------------------ */
/* Mappings                                                             */

/* Bytes of [lo, hi) covered by mappings listed in /proc/self/maps, or
 * (size_t)-1 if it cannot be read.  No allocation: a static buffer. */
static inline size_t mapped_bytes_in(uintptr_t lo, uintptr_t hi)
{
#ifdef SLAB_TEST_FREESTANDING
    /* the host's page source hands out parts of an array that stays */
    (void)lo, (void)hi;
    return (size_t)-1;
#endif
    static char maps_buf[1 << 20];
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        return (size_t)-1;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, maps_buf + len, sizeof maps_buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    maps_buf[len] = '\0';
    size_t covered = 0;
    for (char *line = maps_buf; line && *line;) {
        unsigned long long a, b;
        if (sscanf(line, "%llx-%llx", &a, &b) == 2) {
            uintptr_t s = (uintptr_t)a > lo ? (uintptr_t)a : lo;
            uintptr_t e = (uintptr_t)b < hi ? (uintptr_t)b : hi;
            if (s < e)
                covered += e - s;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return covered;
}

/* ------------------------------------------------------------------ */
/* The interface under test                                             */

/* The malloc family a test goes through: libslab's own names, or the C
 * library's. */
struct heap {
    void *(*malloc_fn)(size_t);
    void *(*calloc_fn)(size_t, size_t);
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
    size_t (*usable_fn)(const void *);
    const char *usable_name; /* for messages: "slab_usable_size", ... */
};

/* ------------------------------------------------------------------ */
/* Aligned allocation                                                   */

/* Objects handed out by each size class so far. */
static inline void class_allocations(uint64_t *out)
{
    for (size_t i = 0; i < slab_size_class_count(); i++)
        out[i] = test_stats(slab_kmalloc_cache(slab_size_class(i))).allocations;
}

/* Why p, just returned for (align, size), is not a block of its own, or
 * NULL if it is one: it must be aligned (to 8 at least), have a usable
 * size of at least `size` on which slab_usable_size() and the heap's own
 * usable size agree, and be mapped all through.  `before` holds
 * class_allocations() from just before the call: a block that is a class
 * object must be one that class has just handed out, not one that was
 * free (or someone else's). */
static inline const char *aligned_problem(void *p, size_t align, size_t size,
                                          const uint64_t *before, const struct heap *heap,
                                          size_t *usable)
{
    static char why[320];
    if (!p)
        return "NULL";
    if ((uintptr_t)p % (align < 8 ? 8 : align))
        return "misaligned";
    test_errors_reset();
    size_t u = slab_usable_size(p);
    *usable = u;
    if (test_err.count) {
        snprintf(why, sizeof why, "slab_usable_size reports: %.250s", test_err.message);
        test_errors_reset();
        return why;
    }
    size_t hu = heap->usable_fn(p);
    if (u < size || u == 0 || hu != u) {
        snprintf(why, sizeof why, "usable size %zu (%s %zu)", u, heap->usable_name, hu);
        return why;
    }
    slab_cache_t *c = slab_owner(p);
    if (c) {
        const char *name = slab_cache_name(c);
        if (strncmp(name, "kmalloc-", 8) != 0) {
            snprintf(why, sizeof why, "is an object of cache \"%s\" (usable %zu)", name, u);
            return why;
        }
        size_t i = 0;
        while (slab_size_class(i) != slab_cache_object_size(c))
            i++;
        uint64_t now = test_stats(c).allocations;
        if (now != before[i] + 1) {
            snprintf(why, sizeof why, "is an object of %s, which handed out %llu objects "
                     "in the call, not 1", name, (unsigned long long)(now - before[i]));
            return why;
        }
    }
    size_t m = mapped_bytes_in((uintptr_t)p, (uintptr_t)p + u);
    if (m != (size_t)-1 && m != u) {
        snprintf(why, sizeof why, "only %zu of its %zu usable bytes are mapped", m, u);
        return why;
    }
    return NULL;
}

/* Bad aligned allocations, each printed as it is found; the test fails
 * at the end with the count and the first.  A bad block is neither
 * written to nor freed: it may not be ours. */
struct aligned_failures {
    unsigned bad;
    char first[512];
};

static inline void note_aligned_failure(struct aligned_failures *f, const char *fn,
                                        size_t align, size_t size, const void *p,
                                        const char *why)
{
    print_message("%s(%zu, %zu) = %p: %s\n", fn, align, size, p, why);
    if (!f->bad++)
        snprintf(f->first, sizeof f->first, "%s(%zu, %zu) = %p: %s", fn, align, size, p, why);
}

static inline void assert_no_aligned_failures(const struct aligned_failures *f)
{
    if (f->bad)
        fail_msg("%u bad aligned allocations; first: %s", f->bad, f->first);
}

/* ------------------------------------------------------------------ */
/* Random sizes                                                         */

/* pick = r % 1000 chooses the first band with pick < below; the size is
 * base + (r >> 10) % span.  The last band has below = 1000. */
struct size_band {
    unsigned below;
    size_t base, span;
};

static inline size_t random_size(uint64_t *rng, const struct size_band *bands)
{
    uint64_t r = test_rand(rng);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    while (pick >= bands->below)
        bands++;
    return bands->base + (size_t)(r % bands->span);
}

/* ------------------------------------------------------------------ */
/* Blocks with a pattern                                                */

/* Blocks of 16 bytes and more carry test_put_pattern() over their first
 * PATTERN_MAX bytes (the checks stay cheap under the sanitizers and
 * valgrind) and their own address in their last 8 bytes; smaller ones a
 * byte derived from their address. */
#define PATTERN_MAX 512

static inline void put_block(void *p, size_t n)
{
    if (n >= 16) {
        test_put_pattern(p, n < PATTERN_MAX ? n : PATTERN_MAX, 0);
        if (n >= PATTERN_MAX + 8) {
            uint64_t a = (uint64_t)(uintptr_t)p;
            memcpy((char *)p + n - 8, &a, 8);
        }
    } else {
        memset(p, (int)(((uintptr_t)p >> 3) & 0xff), n);
    }
}

/* 1 if the block put_block() wrote is intact; else a thread failure. */
static inline int check_block(const void *p, size_t n, int who)
{
    if (n >= 16) {
        if (!test_check_pattern(p, n < PATTERN_MAX ? n : PATTERN_MAX, 0, who))
            return 0;
        uint64_t a;
        if (n >= PATTERN_MAX + 8) {
            memcpy(&a, (const char *)p + n - 8, 8);
            if (a != (uint64_t)(uintptr_t)p) {
                thread_fail("block %p (%zu bytes) of thread %d: its end overwritten", p, n,
                            who);
                return 0;
            }
        }
        return 1;
    }
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(((uintptr_t)p >> 3) & 0xff)) {
            thread_fail("small block %p (%zu bytes) of thread %d overwritten", p, n, who);
            return 0;
        }
    return 1;
}

/* After p (n bytes, pattern) moved to q: the address field still names
 * p, the rest is intact up to m bytes. */
static inline int check_moved(const void *q, const void *p, size_t n, size_t m, int who)
{
    if (n < 16 || m < 16)
        return 1;
    const unsigned char *c = q;
    uint64_t addr, tag;
    memcpy(&addr, c, 8);
    memcpy(&tag, c + 8, 8);
    if (addr != (uint64_t)(uintptr_t)p) {
        thread_fail("thread %d: realloc %p (%zu) -> %p (%zu) lost the content", who, p, n, q,
                    m);
        return 0;
    }
    size_t end = n < m ? n : m;
    if (end > PATTERN_MAX)
        end = PATTERN_MAX;
    for (size_t i = 16; i < end; i++)
        if (c[i] != (unsigned char)(tag & 0xff)) {
            thread_fail("thread %d: realloc %p -> %p: byte %zu changed", who, p, q, i);
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Threads allocating, checking and freeing random sizes                */

#define NWORKERS 4
#define MAX_SLOTS 64

/* What the threads of run_stress() do.  Each draws r: slot r % slots,
 * op (r >> 8) % ops.  An empty slot gets a block, from calloc for op 0
 * (checked zero at both ends) and malloc for the others; an occupied
 * one is checked, then reallocated for op 1 (the content follows) and
 * freed for the others.  Every new block is aligned to 16 (8 up to 8
 * bytes) and has a usable size of at least what was asked. */
struct stress {
    const struct heap *heap;
    const struct size_band *sizes;
    unsigned slots; /* at most MAX_SLOTS */
    unsigned ops;
    uint64_t seed; /* thread i starts from seed * (i + seed_offset) */
    int seed_offset;
};

struct worker {
    pthread_t tid;
    int id;
    size_t iters;
    const struct stress *stress;
};

static inline void *stress_worker(void *arg)
{
    struct worker *w = arg;
    const struct stress *st = w->stress;
    const struct heap *h = st->heap;
    uint64_t rng = st->seed * (uint64_t)(w->id + st->seed_offset);
    void *ptr[MAX_SLOTS] = {0};
    size_t size[MAX_SLOTS] = {0};
    for (size_t it = 0; it < w->iters; it++) {
        uint64_t r = test_rand(&rng);
        unsigned s = (unsigned)(r % st->slots);
        unsigned op = (unsigned)((r >> 8) % st->ops);
        if (!ptr[s]) {
            size_t n = random_size(&rng, st->sizes);
            void *p = (op == 0) ? h->calloc_fn(1, n) : h->malloc_fn(n);
            if (!p) {
                thread_fail("thread %d: allocation of %zu bytes failed", w->id, n);
                break;
            }
            if ((uintptr_t)p % (n <= 8 ? 8 : 16) || h->usable_fn(p) < n) {
                thread_fail("thread %d: %zu bytes at %p (usable %zu)", w->id, n, p,
                            h->usable_fn(p));
                break;
            }
            if (op == 0 && (((unsigned char *)p)[0] != 0 || ((unsigned char *)p)[n - 1] != 0)) {
                thread_fail("thread %d: calloc(1, %zu) not zeroed", w->id, n);
                break;
            }
            put_block(p, n);
            ptr[s] = p;
            size[s] = n;
        } else if (op == 1) {
            if (!check_block(ptr[s], size[s], w->id))
                break;
            size_t n = random_size(&rng, st->sizes);
            void *q = h->realloc_fn(ptr[s], n);
            if (!q) {
                thread_fail("thread %d: realloc to %zu bytes failed", w->id, n);
                break;
            }
            if (!check_moved(q, ptr[s], size[s], n, w->id))
                break;
            put_block(q, n);
            ptr[s] = q;
            size[s] = n;
        } else {
            if (!check_block(ptr[s], size[s], w->id))
                break;
            h->free_fn(ptr[s]);
            ptr[s] = NULL;
        }
    }
    for (unsigned s = 0; s < MAX_SLOTS; s++)
        if (ptr[s]) {
            check_block(ptr[s], size[s], w->id);
            h->free_fn(ptr[s]);
        }
    return NULL;
}

/* NWORKERS threads of stress_worker, `iters` steps each; no thread
 * failure. */
static inline void run_stress(const struct stress *st, size_t iters)
{
    assert_true(st->slots >= 1 && st->slots <= MAX_SLOTS);
    struct worker wk[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        wk[i] = (struct worker){.id = i, .iters = iters, .stress = st};
        assert_int_equal(pthread_create(&wk[i].tid, NULL, stress_worker, &wk[i]), 0);
    }
    for (int i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_join(wk[i].tid, NULL), 0);
    assert_no_thread_failures();
}

#endif /* KMALLOC_TEST_H */
