/*
 * slab_test.h - helpers shared by the libslab tests (header only).
 *
 *   - an error hook that records every report (kind, function, cache,
 *     owner, pointer, count, message; for debug caches the object, the
 *     offset and the call stacks) so a test can assert what was
 *     reported, and that nothing else was; the first reports one by one
 *     and a count of each kind;
 *   - buddy accounting: pages in use, and a check of the invariants that
 *     slab_buddy_info() must always satisfy;
 *   - every free page of the buddy allocator held, so that the next
 *     page has to come from the page source, and given back;
 *   - a page source over another that refuses while told to;
 *   - options for a whole file: no magazines, no automatic reap;
 *   - a small deterministic random number generator;
 *   - the iteration scale read from SLAB_TEST_SCALE;
 *   - cache statistics, and the fixtures the files share;
 *   - failures seen by other threads, reported in the main one;
 *   - object patterns for the stress tests;
 *   - what memcheck and AddressSanitizer are told where a test does on
 *     purpose what they would rightly flag.
 */
#ifndef SLAB_TEST_H
#define SLAB_TEST_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <slab.h>

#ifdef SLAB_TEST_FREESTANDING
/* The freestanding library's errno is its own (<slab/host.h>). */
#include <slab/host.h>
#include "freestanding_host.h"
#undef errno
#define errno slab_errno
#endif

/* ------------------------------------------------------------------ */
/* Error capture                                                        */

#define TEST_ERR_KINDS 32
#define TEST_ERR_HISTORY 16

/* One report as the hook saw it. */
typedef struct test_error_entry {
    slab_error_kind_t kind;
    int has_function, has_cache, has_owner;
    char function[64];
    char cache[64];
    char owner[64];
    const void *ptr;
    size_t n;
    const void *object;
    long offset;
    int has_alloc, has_free;
    unsigned alloc_depth, free_depth;
    const void *alloc_pc0, *free_pc0;
    unsigned long alloc_thread, free_thread;
    uint64_t alloc_when_ms, free_when_ms;
    char message[256];
} test_error_entry_t;

typedef struct test_error_log {
    unsigned count;          /* reports since the last reset */
    unsigned bad_arg;        /* reports that came with the wrong hook arg */
    /* the last report, copied */
    slab_error_kind_t kind;
    int has_function, has_cache, has_owner;
    char function[128];
    char cache[128];
    char owner[128];
    const void *ptr;
    size_t n;
    char message[1024];
    /* debug caches: the object, the offset of the damage, and what was
     * known of its last allocation and free (stack depth, innermost pc,
     * thread, time) */
    const void *object;
    long offset;
    int has_alloc, has_free;
    unsigned alloc_depth, free_depth;
    const void *alloc_pc0, *free_pc0;
    unsigned long alloc_thread, free_thread;
    uint64_t alloc_when_ms, free_when_ms;
    /* reports per kind since the last reset (kinds beyond the table are
     * counted in kinds[0]) */
    unsigned kinds[TEST_ERR_KINDS];
    /* the first TEST_ERR_HISTORY reports since the last reset, in order
     * (count may be larger; entries beyond are not kept) */
    test_error_entry_t entries[TEST_ERR_HISTORY];
} test_error_log_t;

static test_error_log_t test_err;
static pthread_mutex_t test_err_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void test_copy_str(char *dst, size_t cap, const char *src, int *has)
{
    *has = src != NULL;
    if (src) {
        strncpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
    } else {
        dst[0] = '\0';
    }
}

/* What a report says of one call stack (SLAB_STORE_USER). */
static inline void test_copy_stack(const slab_stack_t *st, int *has, unsigned *depth,
                                   const void **pc0, unsigned long *thread, uint64_t *when)
{
    *has = st != NULL;
    *depth = st ? st->depth : 0;
    *pc0 = st && st->depth > 0 ? st->pc[0] : NULL;
    *thread = st ? st->thread : 0;
    *when = st ? st->when_ms : 0;
}

static inline void test_error_hook(const slab_error_t *e, void *arg)
{
    pthread_mutex_lock(&test_err_lock);
    test_err.count++;
    if (arg != &test_err)
        test_err.bad_arg++;
    test_err.kind = e->kind;
    test_copy_str(test_err.function, sizeof test_err.function, e->function,
                  &test_err.has_function);
    test_copy_str(test_err.cache, sizeof test_err.cache, e->cache, &test_err.has_cache);
    test_copy_str(test_err.owner, sizeof test_err.owner, e->owner, &test_err.has_owner);
    test_err.ptr = e->ptr;
    test_err.n = e->count;
    if (e->message) {
        strncpy(test_err.message, e->message, sizeof test_err.message - 1);
        test_err.message[sizeof test_err.message - 1] = '\0';
    } else {
        test_err.message[0] = '\0';
    }
    test_err.object = e->object;
    test_err.offset = e->offset;
    test_copy_stack(e->alloc, &test_err.has_alloc, &test_err.alloc_depth, &test_err.alloc_pc0,
                    &test_err.alloc_thread, &test_err.alloc_when_ms);
    test_copy_stack(e->free, &test_err.has_free, &test_err.free_depth, &test_err.free_pc0,
                    &test_err.free_thread, &test_err.free_when_ms);
    unsigned k = (unsigned)e->kind;
    test_err.kinds[k < TEST_ERR_KINDS ? k : 0]++;
    if (test_err.count <= TEST_ERR_HISTORY) {
        test_error_entry_t *t = &test_err.entries[test_err.count - 1];
        t->kind = e->kind;
        test_copy_str(t->function, sizeof t->function, e->function, &t->has_function);
        test_copy_str(t->cache, sizeof t->cache, e->cache, &t->has_cache);
        test_copy_str(t->owner, sizeof t->owner, e->owner, &t->has_owner);
        t->ptr = e->ptr;
        t->n = e->count;
        t->object = e->object;
        t->offset = e->offset;
        test_copy_stack(e->alloc, &t->has_alloc, &t->alloc_depth, &t->alloc_pc0,
                        &t->alloc_thread, &t->alloc_when_ms);
        test_copy_stack(e->free, &t->has_free, &t->free_depth, &t->free_pc0, &t->free_thread,
                        &t->free_when_ms);
        int unused;
        test_copy_str(t->message, sizeof t->message, e->message, &unused);
    }
    pthread_mutex_unlock(&test_err_lock);
}

static inline void test_errors_reset(void)
{
    pthread_mutex_lock(&test_err_lock);
    memset(&test_err, 0, sizeof test_err);
    pthread_mutex_unlock(&test_err_lock);
}

static inline void test_errors_install(void)
{
    test_errors_reset();
    slab_set_error_hook(test_error_hook, &test_err);
}

static inline unsigned test_errors_count(void)
{
    pthread_mutex_lock(&test_err_lock);
    unsigned n = test_err.count;
    pthread_mutex_unlock(&test_err_lock);
    return n;
}

/* Exactly one report since the last reset, of `kind`; then reset. */
#define expect_one_error(kind_)                                                   \
    do {                                                                          \
        if (test_err.count != 1)                                                  \
            fail_msg("expected exactly one %s report, got %u (last: %s)",        \
                     slab_error_kind_name(kind_), test_err.count,                 \
                     test_err.count ? test_err.message : "none");                 \
        if (test_err.kind != (kind_))                                             \
            fail_msg("expected a %s report, got %s: %s",                          \
                     slab_error_kind_name(kind_),                                 \
                     slab_error_kind_name(test_err.kind), test_err.message);      \
        assert_int_equal(test_err.bad_arg, 0);                                    \
        assert_true(test_err.has_function);                                       \
        assert_true(test_err.message[0] != '\0');                                 \
    } while (0)

#define expect_no_error()                                                         \
    do {                                                                          \
        if (test_err.count != 0)                                                  \
            fail_msg("expected no report, got %u (last: %s: %s)", test_err.count, \
                     slab_error_kind_name(test_err.kind), test_err.message);      \
    } while (0)

/* Reports of `kind` since the last reset. */
static inline unsigned test_errors_of_kind(slab_error_kind_t kind)
{
    unsigned k = (unsigned)kind;
    pthread_mutex_lock(&test_err_lock);
    unsigned n = test_err.kinds[k < TEST_ERR_KINDS ? k : 0];
    pthread_mutex_unlock(&test_err_lock);
    return n;
}

/* Report i (0 = the first) since the last reset; fails the test when
 * there were not that many, or it was not kept. */
static inline const test_error_entry_t *test_error_nth(unsigned i)
{
    if (i >= test_err.count || i >= TEST_ERR_HISTORY)
        fail_msg("report %u asked for; %u reported (%u kept)", i, test_err.count,
                 (unsigned)TEST_ERR_HISTORY);
    return &test_err.entries[i];
}

/* Exactly one report since the last reset, of `kind`, made by API entry
 * `function` against cache `cache_` about object `object_`, the damage
 * at `offset_` from its start (debug caches).  The log is left as it is,
 * for the caller to check the stacks and reset. */
#define expect_debug_error(kind_, function_, cache_, object_, offset_)             \
    do {                                                                          \
        expect_one_error(kind_);                                                  \
        if (strcmp(test_err.function, (function_)) != 0)                          \
            fail_msg("%s reported by '%s', want '%s': %s",                        \
                     slab_error_kind_name(kind_), test_err.function, (function_), \
                     test_err.message);                                           \
        if (!test_err.has_cache || strcmp(test_err.cache, (cache_)) != 0)         \
            fail_msg("%s reported against cache '%s', want '%s': %s",             \
                     slab_error_kind_name(kind_),                                 \
                     test_err.has_cache ? test_err.cache : "(none)", (cache_),    \
                     test_err.message);                                           \
        if (test_err.object != (const void *)(object_))                           \
            fail_msg("%s about object %p, want %p: %s", slab_error_kind_name(kind_), \
                     test_err.object, (const void *)(object_), test_err.message);  \
        if (test_err.offset != (long)(offset_))                                   \
            fail_msg("%s at offset %ld, want %ld: %s", slab_error_kind_name(kind_), \
                     test_err.offset, (long)(offset_), test_err.message);         \
    } while (0)

/* slab_verify() finds nothing; otherwise fail with its last report. */
#define assert_verify_clean()                                                     \
    do {                                                                          \
        size_t problems_ = slab_verify();                                         \
        if (problems_ != 0)                                                       \
            fail_msg("slab_verify() found %zu problem(s); last: %s", problems_,   \
                     test_err.message);                                           \
    } while (0)

/* ------------------------------------------------------------------ */
/* Buddy accounting                                                     */

static inline slab_buddy_info_t test_buddy(void)
{
    slab_buddy_info_t bi;
    memset(&bi, 0xa5, sizeof bi);
    slab_buddy_info(&bi);
    return bi;
}

/* Pages of all arenas that are not free in the buddy allocator. */
static inline size_t test_used_pages(void)
{
    slab_buddy_info_t bi = test_buddy();
    return bi.total_pages - bi.free_pages;
}

/* The invariants slab_buddy_info() must satisfy at any quiet moment. */
static inline void test_check_buddy_consistent(const slab_buddy_info_t *bi)
{
    size_t sum = 0;
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        sum += bi->nr_free[o] << o;
    assert_int_equal(sum, bi->free_pages);
    assert_true(bi->free_pages <= bi->total_pages);
#ifdef SLAB_TEST_FREESTANDING
    /* the arenas of a region hold its pages only, less their descriptors */
    assert_true(bi->total_pages <= bi->arenas << SLAB_MAX_ORDER);
    assert_true(bi->mapped_bytes >= bi->total_pages * SLAB_PAGE_SIZE);
#else
    assert_int_equal(bi->total_pages, bi->arenas << SLAB_MAX_ORDER);
    assert_true(bi->mapped_bytes >= bi->arenas * SLAB_ARENA_SIZE);
#endif
}

/*
 * Pages in use that the current test did not allocate: the library keeps
 * some for itself once caches have been used (cache descriptors live in a
 * cache of their own, which may keep a free slab).  test_take_reserve()
 * creates and destroys one cache so that this reserve exists, then
 * records the pages in use; test_baseline() records them again at the
 * start of a test, so that a test checks only what it did itself.
 */
static size_t test_reserve;

/* For the files that test the slab layer itself (exact slab counts,
 * every free checked): caches created from now on have no per-thread
 * magazines.  The magazine layer has tests of its own. */
static inline void test_slab_layer_only(void)
{
    slab_options_t o;
    slab_get_options(&o);
    o.magazines = 0;
    slab_set_options(&o);
}

/* For the files that count pages exactly: no automatic reap. */
static inline void test_no_automatic_reap(void)
{
    slab_options_t o;
    slab_get_options(&o);
    o.reap_interval_ms = 0;
    slab_set_options(&o);
}

static inline void test_baseline(void)
{
    test_reserve = test_used_pages();
}

static inline void test_take_reserve(void)
{
    slab_cache_t *c = slab_cache_create("warm-up", 64, 0, 0, NULL, NULL, NULL);
    if (c) {
        void *p = slab_cache_alloc(c);
        if (p)
            slab_cache_free(c, p);
        slab_cache_destroy(c);
    }
    test_baseline();
}

/* Everything is free: all memory coalesced back into whole arenas, and at
 * most the one spare arena is still mapped.  This is the strict form: no
 * page may stay in use. */
static inline void test_check_buddy_strictly_free(void)
{
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    if (bi.free_pages != bi.total_pages)
        fail_msg("%zu of %zu pages still in use with everything freed",
                 bi.total_pages - bi.free_pages, bi.total_pages);
#ifdef SLAB_TEST_FREESTANDING
    /* the region's blocks are as they were when it was added */
    const slab_buddy_info_t *first = freestanding_host_initial();
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        if (bi.nr_free[o] != first->nr_free[o])
            fail_msg("nr_free[%u] = %zu with everything free, %zu at the start", o,
                     bi.nr_free[o], first->nr_free[o]);
    assert_int_equal(bi.arenas, first->arenas);
#else
    for (unsigned o = 0; o < SLAB_MAX_ORDER; o++)
        if (bi.nr_free[o] != 0)
            fail_msg("nr_free[%u] = %zu with everything free", o, bi.nr_free[o]);
    assert_int_equal(bi.nr_free[SLAB_MAX_ORDER], bi.arenas);
    if (bi.arenas > 1)
        fail_msg("%zu fully free arenas stay mapped (at most one spare)", bi.arenas);
#endif
}

/* Everything the test allocated is free: the pages in use are back to the
 * baseline, and at most one wholly free arena is kept.  With nothing in
 * use at the baseline this is the strict check. */
static inline void test_check_buddy_all_free(void)
{
    if (test_reserve == 0) {
        test_check_buddy_strictly_free();
        return;
    }
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    if (bi.total_pages - bi.free_pages != test_reserve)
        fail_msg("%zu pages in use with everything freed; %zu were in use before",
                 bi.total_pages - bi.free_pages, test_reserve);
    if (bi.nr_free[SLAB_MAX_ORDER] > 1)
        fail_msg("%zu fully free arenas stay mapped (at most one spare)",
                 bi.nr_free[SLAB_MAX_ORDER]);
}

static inline int test_buddy_equal(const slab_buddy_info_t *a, const slab_buddy_info_t *b)
{
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        if (a->nr_free[o] != b->nr_free[o])
            return 0;
    return a->arenas == b->arenas && a->free_pages == b->free_pages &&
           a->total_pages == b->total_pages && a->mapped_bytes == b->mapped_bytes;
}

/* ------------------------------------------------------------------ */
/* Holding every free page                                              */

/* Every free page of the buddy allocator, held as page blocks, so that
 * any further page has to come from the page source. */
#define TEST_MAX_HELD 256

typedef struct test_held_pages {
    void *p[TEST_MAX_HELD];
    unsigned order[TEST_MAX_HELD];
    size_t n;
} test_held_pages_t;

/* Take them, the largest blocks first, in at most `max` blocks
 * (max <= TEST_MAX_HELD); more fails the test. */
static inline void test_take_all_free_pages(test_held_pages_t *h, size_t max)
{
    assert_true(max <= TEST_MAX_HELD);
    h->n = 0;
    for (;;) {
        slab_buddy_info_t bi = test_buddy();
        if (bi.free_pages == 0)
            break;
        unsigned o = SLAB_MAX_ORDER;
        while (bi.nr_free[o] == 0)
            o--;
        assert_true(h->n < max);
        h->p[h->n] = slab_pages_alloc(o);
        assert_non_null(h->p[h->n]);
        h->order[h->n++] = o;
    }
}

/* Free them again, the last taken first. */
static inline void test_give_back_pages(test_held_pages_t *h)
{
    while (h->n > 0) {
        h->n--;
        slab_pages_free(h->p[h->n], h->order[h->n]);
    }
}

/* ------------------------------------------------------------------ */
/* Randomness and scale                                                 */

static inline uint64_t test_rand(uint64_t *state)
{
    /* xorshift64* */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* SLAB_TEST_SCALE multiplies the iteration counts (default 1). */
static inline double test_scale(void)
{
    const char *s = getenv("SLAB_TEST_SCALE");
    double v = s ? atof(s) : 1.0;
    if (!(v > 0.0))
        v = 1.0;
    if (v < 0.01)
        v = 0.01;
    return v;
}

static inline size_t test_scaled(size_t n)
{
    double v = (double)n * test_scale();
    return v < 1.0 ? 1 : (size_t)v;
}

static inline slab_cache_stats_t test_stats(const slab_cache_t *c)
{
    slab_cache_stats_t st;
    memset(&st, 0, sizeof st);
    assert_int_equal(slab_cache_stats(c, &st), 0);
    return st;
}

/* ------------------------------------------------------------------ */
/* The backend                                                          */

/* slab_owner(p) for an object p of cache c: c.  The SLOB backend
 * (SLAB_BACKEND_SLOB) shares its pages among all caches and knows the
 * owner of objects larger than a page only: NULL for the others. */
static inline slab_cache_t *test_owner_of(const slab_cache_t *c)
{
#ifdef SLAB_BACKEND_SLOB
    if (slab_cache_object_size(c) <= SLAB_PAGE_SIZE)
        return NULL;
#endif
    return (slab_cache_t *)c;
}
#define assert_owner(p_, c_) assert_ptr_equal(slab_owner(p_), test_owner_of(c_))

/* Skip the rest of a test whose subject is a feature of the slab backend
 * alone, saying why (cmocka prints the test as skipped, never passed). */
#ifdef SLAB_BACKEND_SLOB
#define skip_on_slob(why_)                                                        \
    do {                                                                          \
        print_message("skipped on SLOB: %s\n", (why_));                          \
        skip();                                                                   \
    } while (0)
#else
#define skip_on_slob(why_) ((void)0)
#endif

/* ------------------------------------------------------------------ */
/* A page source that passes through to another, or refuses             */

typedef struct test_fail_source {
    atomic_int failing;               /* refuse every map() while set */
    atomic_size_t refused;            /* maps refused */
    const slab_page_source_t *under;  /* where the others go */
} test_fail_source_t;

static inline void *test_fail_map(void *ctx, size_t size, size_t align)
{
    test_fail_source_t *s = ctx;
    if (atomic_load(&s->failing)) {
        atomic_fetch_add(&s->refused, 1);
        return NULL;
    }
    return s->under->map(s->under->ctx, size, align);
}

static inline void test_fail_unmap(void *ctx, void *addr, size_t size)
{
    test_fail_source_t *s = ctx;
    s->under->unmap(s->under->ctx, addr, size);
}

static inline void test_fail_decommit(void *ctx, void *addr, size_t size)
{
    test_fail_source_t *s = ctx;
    if (s->under->decommit)
        s->under->decommit(s->under->ctx, addr, size);
}

/* Make s, over `under`, the page source; false if under cannot serve. */
static inline bool test_fail_source_install(test_fail_source_t *s,
                                            const slab_page_source_t *under)
{
    if (!under || !under->map || !under->unmap)
        return false;
    s->under = under;
    slab_page_source_t src = {.map = test_fail_map, .unmap = test_fail_unmap,
                              .decommit = test_fail_decommit, .ctx = s};
    slab_set_page_source(&src);
    return true;
}

/* ------------------------------------------------------------------ */
/* Fixtures shared by the test files                                    */

/* Once per file: make the library's own reserve exist (see above). */
static inline int test_group_setup(void **state)
{
    (void)state;
    test_take_reserve();
    return 0;
}

/* Each test: capture reports, and count pages from here. */
static inline int test_setup(void **state)
{
    (void)state;
    test_errors_install();
    test_baseline();
    return 0;
}

static inline int test_teardown(void **state)
{
    (void)state;
    slab_set_error_hook(NULL, NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Failures seen by other threads (cmocka asserts only in the main one)  */

static atomic_ulong test_thread_failures;
static pthread_mutex_t test_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char test_first_failure[256];

static inline void thread_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void thread_fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&test_thread_failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&test_fail_lock);
        vsnprintf(test_first_failure, sizeof test_first_failure, fmt, ap);
        pthread_mutex_unlock(&test_fail_lock);
        va_end(ap);
    }
}

static inline void assert_no_thread_failures(void)
{
    if (atomic_load(&test_thread_failures) != 0)
        fail_msg("%lu failures in threads; first: %s",
                 (unsigned long)atomic_load(&test_thread_failures), test_first_failure);
}

/* ------------------------------------------------------------------ */
/* Object patterns for the stress tests                                 */

/* Bytes [off, size) of an object hold its own address, a unique tag and
 * the tag's low byte to the end: an object handed out twice, or written
 * by someone else, no longer checks. */
static atomic_ulong test_next_tag;

static inline void test_put_pattern(void *obj, size_t size, size_t off)
{
    unsigned char *p = obj;
    uint64_t tag = atomic_fetch_add(&test_next_tag, 1) + 1;
    uint64_t addr = (uint64_t)(uintptr_t)obj;
    memcpy(p + off, &addr, 8);
    memcpy(p + off + 8, &tag, 8);
    memset(p + off + 16, (int)(tag & 0xff), size - off - 16);
}

/* 1 if the pattern is intact; else a thread failure naming cache `ci`. */
static inline int test_check_pattern(const void *obj, size_t size, size_t off, int ci)
{
    const unsigned char *p = obj;
    uint64_t addr, tag;
    memcpy(&addr, p + off, 8);
    memcpy(&tag, p + off + 8, 8);
    if (addr != (uint64_t)(uintptr_t)obj) {
        thread_fail("object %p of cache %d holds address %#llx", obj, ci,
                    (unsigned long long)addr);
        return 0;
    }
    for (size_t i = off + 16; i < size; i++)
        if (p[i] != (unsigned char)(tag & 0xff)) {
            thread_fail("object %p of cache %d (tag %llu) overwritten at byte %zu", obj, ci,
                        (unsigned long long)tag, i);
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Memory checkers                                                      */

/* libslab tells valgrind's memcheck and AddressSanitizer which of its
 * objects the program holds (src/annotate.c), so they flag what the
 * tests below do on purpose; these say it is meant. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TEST_HAVE_MEMCHECK_H 1
#endif
#endif

/* The n bytes at p hold what the test checks for: a new object of a
 * cache without a constructor is undefined to memcheck, though libslab
 * hands it out with what its last holder left in it. */
static inline void test_mem_defined(const void *p, size_t n)
{
#ifdef TEST_HAVE_MEMCHECK_H
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#else
    (void)p, (void)n;
#endif
}

/* AddressSanitizer, in builds made with it (-DSLAB_SANITIZE=address). */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

/* What libslab tells the checkers, in this build: AddressSanitizer's
 * shadow always in an ASan build, memcheck whenever the program runs
 * under valgrind, unless the build has annotations off (cmake
 * -DSLAB_ANNOTATE=OFF defines SLAB_NO_ANNOTATE for every target, the
 * tests too; SLAB_HAVE_MEMCHECK_H says whether libslab was built with
 * memcheck's requests).  Where libslab says nothing, the tests must not
 * either: memory they hid would be hidden from libslab's own reads. */
#if !defined(SLAB_NO_ANNOTATE) && defined(TEST_ASAN)
#include <sanitizer/asan_interface.h>
#define TEST_ANNOTATE_ASAN 1
#endif
#if !defined(SLAB_NO_ANNOTATE) && defined(TEST_HAVE_MEMCHECK_H) && defined(SLAB_HAVE_MEMCHECK_H)
#define TEST_ANNOTATE_MEMCHECK 1
#endif

/* The n bytes at p are not the program's (a red zone, the stacks a debug
 * cache keeps after an object, a free object), and the checkers see them
 * as inaccessible, but the test reads or writes them on purpose, to see
 * what libslab's own checks make of it: open them to the checkers
 * (defined, to memcheck), and close them again with test_hide() before
 * libslab looks, so that what the test observes is libslab's report,
 * not the checker's.
 *
 * Expose and hide a region as a whole, as libslab lays it out (a whole
 * red zone, a whole free object), never one byte of it: AddressSanitizer
 * keeps one shadow byte per 8 bytes, which can say "the first k bytes are
 * addressable" but not "the first k are not", so hiding the last byte
 * of a zone that ends where an object starts would leave the rest of the
 * zone open. */
static inline void test_expose(const void *p, size_t n)
{
#ifdef TEST_ANNOTATE_ASAN
    __asan_unpoison_memory_region(p, n);
#endif
#ifdef TEST_ANNOTATE_MEMCHECK
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
    (void)p, (void)n;
}

/* The n bytes at p, opened by test_expose(), are inaccessible again. */
static inline void test_hide(const void *p, size_t n)
{
#ifdef TEST_ANNOTATE_ASAN
    __asan_poison_memory_region(p, n);
#endif
#ifdef TEST_ANNOTATE_MEMCHECK
    (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
    (void)p, (void)n;
}

/* In a child of fork() whose parent had other threads allocating: what
 * those threads held (on their stacks, in their registers) is lost to
 * the child, and memcheck says so when the child exits.  Not the child's
 * doing: the losses are still listed, but are not errors. */
static inline void test_fork_child_of_threads(void)
{
#ifdef TEST_HAVE_MEMCHECK_H
    VALGRIND_CLO_CHANGE("--errors-for-leak-kinds=none");
#endif
}


/* ------------------------------------------------------------------ */
/* The test program's own path, for child processes that run it again   */

/* Read by test_find_self() at the start of main(): under valgrind, a
 * child's /proc/self/exe would be valgrind itself, while readlink() in
 * the parent is answered with the program's path. */
static char test_self_path[4096];

/* Fill test_self_path: 0, or -1 with a line on stderr naming `prog`. */
static inline int test_find_self(const char *prog)
{
    ssize_t len = readlink("/proc/self/exe", test_self_path, sizeof test_self_path - 1);
    if (len <= 0) {
        fprintf(stderr, "%s: cannot find its own path (/proc/self/exe)\n", prog);
        return -1;
    }
    test_self_path[len] = '\0';
    return 0;
}

#endif /* SLAB_TEST_H */
