/*
 * test_kmalloc.c - general-purpose allocation: slab_malloc(), slab_free(),
 * slab_calloc(), slab_realloc(), slab_aligned_alloc(), slab_usable_size(),
 * the size classes, and the kmalloc family of <slab/linux.h>.
 *
 * Covers the class table (count, sizes, rounding waste, which class serves
 * each size 1..32768, the "kmalloc-..." caches), alignment of every kind
 * of block and of slab_aligned_alloc() for every power of two up to
 * 16 MiB, page runs and huge mappings (usable sizes, pages and mappings
 * given back), calloc zeroing and overflow, every realloc path (in a
 * class, class to class, to and from runs and huge mappings, growing a
 * run in place, failure leaving the block intact), misuse reported
 * through the error hook with nothing lost, objects of user caches freed
 * with slab_free(), the Linux names (ZERO_SIZE_PTR, ksize, krealloc with
 * __GFP_ZERO, kstrdup...), running out of memory with a page source that
 * refuses, and threads allocating, checking and freeing random sizes,
 * including frees from a thread other than the allocating one.
 *
 * A pass-through page source is installed for the whole file so that a
 * test can make it refuse, and the automatic reap is off so that page
 * counts are exact.  SLAB_TEST_SCALE scales the thread tests.
 */
#include "kmalloc_test.h"

#include <slab/linux.h>

static size_t page_round(size_t n)
{
    return (n + SLAB_PAGE_SIZE - 1) & ~(SLAB_PAGE_SIZE - 1);
}

/* The page source: the default one, refusing while told to. */
static test_fail_source_t fsrc;

static int group_setup(void **state)
{
#ifdef SLAB_TEST_FREESTANDING
    const slab_page_source_t *under = &freestanding_host_pool; /* the default has nothing */
#else
    const slab_page_source_t *under = slab_default_page_source();
#endif
    if (!test_fail_source_install(&fsrc, under))
        return -1;
    return test_group_setup(state);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* libslab's own names, for the helpers of kmalloc_test.h. */
static const struct heap slab_heap = {
    .malloc_fn = slab_malloc,
    .calloc_fn = slab_calloc,
    .realloc_fn = slab_realloc,
    .free_fn = slab_free,
    .usable_fn = slab_usable_size,
    .usable_name = "slab_usable_size",
};

#define assert_all(p_, from_, to_, byte_)                                        \
    do {                                                                         \
        const unsigned char *c_ = (const unsigned char *)(p_);                   \
        for (size_t i_ = (from_); i_ < (size_t)(to_); i_++)                      \
            if (c_[i_] != (unsigned char)(byte_))                                \
                fail_msg("%p: byte %zu is %#x, expected %#x", (void *)c_, i_,    \
                         c_[i_], (unsigned)(unsigned char)(byte_));              \
    } while (0)

/* The smallest class of at least n bytes (0 above the largest). */
static size_t class_for(size_t n)
{
    for (size_t i = 0; i < slab_size_class_count(); i++)
        if (slab_size_class(i) >= n)
            return slab_size_class(i);
    return 0;
}

/* Shrink every size class's cache: slabs with nothing allocated go back
 * to the buddy allocator, so page counts reflect only live blocks. */
static void shrink_classes(void)
{
    for (size_t i = 0; i < slab_size_class_count(); i++) {
        slab_cache_t *c = slab_kmalloc_cache(slab_size_class(i));
        if (c)
            slab_cache_shrink(c);
    }
}

/* Pages in use once the classes are shrunk and the heap reaped: what
 * a test that runs out of memory must be back to at its end. */
static size_t quiet_used_pages(void)
{
    shrink_classes();
    slab_reap();
    return test_used_pages();
}

static void assert_back_to_quiet(size_t used0)
{
    shrink_classes();
    assert_int_equal(test_used_pages(), used0);
    expect_no_error();
    assert_verify_clean();
}

/* slab_usable_size(slab_malloc(100)): its class, 112; SLOB has no
 * classes and gives what was asked for (rounded to its 2-byte unit). */
#ifdef SLAB_BACKEND_SLOB
#define USABLE_100 100
#else
#define USABLE_100 112
#endif

/* Out of memory: every free page held and the page source refusing. */
struct starved {
    test_held_pages_t held;
    size_t refused0;
};

static void starve(struct starved *s)
{
    test_take_all_free_pages(&s->held, TEST_MAX_HELD);
    atomic_store(&fsrc.failing, 1);
    s->refused0 = atomic_load(&fsrc.refused);
}

/* While starved: the call that returned q (errno 0 before it) failed
 * with ENOMEM.  A block instead fails the test, with the source mapping
 * again for the tests after it. */
static void assert_starved_failure(const void *q, const char *call, size_t size)
{
    if (q) {
        atomic_store(&fsrc.failing, 0);
        fail_msg("%s, %zu bytes: %p with no free page and the page source refusing", call,
                 size, q);
    }
    assert_int_equal(errno, ENOMEM);
}

/* The source did refuse; from now on it maps again (the pages stay held
 * until test_give_back_pages()). */
static void stop_starving(struct starved *s)
{
    assert_true(atomic_load(&fsrc.refused) > s->refused0);
    atomic_store(&fsrc.failing, 0);
}

/* ------------------------------------------------------------------ */
/* Size classes                                                         */

static void test_size_classes(void **state)
{
    (void)state;
    skip_on_slob("no size classes (slab_size_class_count() is 0)");
    size_t n = slab_size_class_count();
    assert_int_equal(n, 41);
    assert_int_equal(slab_size_class(0), 8);
    assert_int_equal(slab_size_class(n - 1), 32768);
    assert_int_equal(slab_size_class(n - 1), SLAB_KMALLOC_MAX_SIZE);
    assert_int_equal(slab_size_class(n), 0);
    assert_int_equal(slab_size_class(1000), 0);
    assert_int_equal(slab_size_class(SIZE_MAX), 0);

    /* exactly as documented: 8, 16, every 16 B to 128, then four per
     * power of two */
    size_t expect[41], k = 0;
    expect[k++] = 8;
    for (size_t s = 16; s <= 128; s += 16)
        expect[k++] = s;
    for (unsigned p = 7; p <= 14; p++)
        for (size_t j = 1; j <= 4; j++)
            expect[k++] = ((size_t)1 << p) + (j << (p - 2));
    assert_int_equal(k, 41);
    for (size_t i = 0; i < n; i++) {
        if (slab_size_class(i) != expect[i])
            fail_msg("class %zu is %zu, expected %zu", i, slab_size_class(i), expect[i]);
        if (i > 0)
            assert_true(slab_size_class(i) > slab_size_class(i - 1));
    }

    /* every size is served by the smallest class that holds it */
    size_t ci = 0;
    for (size_t size = 1; size <= SLAB_KMALLOC_MAX_SIZE; size++) {
        while (slab_size_class(ci) < size)
            ci++;
        size_t cls = slab_size_class(ci);
        if (size > 128) {
            if ((cls - size) * 5 >= cls) /* waste below 20 % */
                fail_msg("size %zu: class %zu wastes %zu bytes (>= 20%%)", size, cls,
                         cls - size);
        } else if (cls - size > 15) {
            fail_msg("size %zu: class %zu wastes %zu bytes (> 15)", size, cls, cls - size);
        }
        unsigned char *p = slab_malloc(size);
        if (!p)
            fail_msg("slab_malloc(%zu) failed", size);
        size_t u = slab_usable_size(p);
        if (u != cls)
            fail_msg("slab_malloc(%zu): usable size %zu, expected class %zu", size, u, cls);
        p[0] = 1;
        p[u - 1] = 2;
        slab_free(p);
    }

    /* size 0: a unique minimal object */
    void *a = slab_malloc(0), *b = slab_malloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(slab_usable_size(a), 8);
    slab_free(a);
    slab_free(b);
    expect_no_error();
    assert_verify_clean();
}

static void test_kmalloc_caches(void **state)
{
    (void)state;
    for (size_t i = 0; i < slab_size_class_count(); i++) {
        size_t cls = slab_size_class(i);
        slab_cache_t *c = slab_kmalloc_cache(cls);
        assert_non_null(c);
        assert_int_equal(slab_cache_object_size(c), cls);
        const char *name = slab_cache_name(c);
        assert_non_null(name);
        if (strncmp(name, "kmalloc-", 8) != 0)
            fail_msg("class %zu: cache named \"%s\"", cls, name);
        /* the suffix is the size, in bytes or in KiB ("kmalloc-1k") */
        char *end;
        unsigned long long v = strtoull(name + 8, &end, 10);
        if (*end == 'k' && end[1] == '\0')
            v *= 1024;
        else if (*end != '\0')
            fail_msg("cache name \"%s\" does not end in a size", name);
        if (v != cls)
            fail_msg("cache \"%s\" holds %zu-byte objects", name, cls);
        /* every size of the class maps to the same cache */
        size_t lo = i ? slab_size_class(i - 1) + 1 : 0;
        for (size_t s = lo; s <= cls; s++)
            if (slab_kmalloc_cache(s) != c)
                fail_msg("slab_kmalloc_cache(%zu) is not the cache of class %zu", s, cls);
        void *p = slab_malloc(cls);
        assert_non_null(p);
        assert_owner(p, c);
        slab_free(p);
    }
    assert_null(slab_kmalloc_cache(SLAB_KMALLOC_MAX_SIZE + 1));
    assert_null(slab_kmalloc_cache(1 * MiB));
    assert_null(slab_kmalloc_cache(SIZE_MAX));
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Alignment                                                            */

/* Several blocks of s bytes: 16-aligned (8 up to 8 bytes), and whole
 * pages above the classes. */
static void check_malloc_alignment(size_t s)
{
    enum { PER = 3 };
    size_t want = s <= 8 ? 8 : 16;
    void *p[PER];
    for (int i = 0; i < PER; i++) {
        p[i] = slab_malloc(s);
        assert_non_null(p[i]);
        if ((uintptr_t)p[i] % want)
            fail_msg("slab_malloc(%zu) = %p, not %zu-aligned", s, p[i], want);
        if (s > SLAB_KMALLOC_MAX_SIZE && (uintptr_t)p[i] % SLAB_PAGE_SIZE)
            fail_msg("slab_malloc(%zu) = %p, not page-aligned", s, p[i]);
    }
    for (int i = 0; i < PER; i++)
        slab_free(p[i]);
}

static void test_malloc_alignment(void **state)
{
    (void)state;
    static const size_t big[] = {32769, 40000, 65536, 100000, 2 * MiB, 2 * MiB + 1, 5 * MiB};
    /* every size up to a page, a spread up to the largest class, runs and
     * huge mappings */
    for (size_t s = 0; s <= 4096; s++)
        check_malloc_alignment(s);
    for (size_t s = 4097; s <= SLAB_KMALLOC_MAX_SIZE; s += 99)
        check_malloc_alignment(s);
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        check_malloc_alignment(big[i]);

    /* power-of-two classes are naturally aligned, for many objects (more
     * than one slab's worth, so colouring is exercised) */
    enum { MANY = 80 };
    void *v[MANY];
    for (size_t cls = 8; cls <= SLAB_KMALLOC_MAX_SIZE; cls *= 2) {
        for (int i = 0; i < MANY; i++) {
            v[i] = slab_malloc(cls);
            assert_non_null(v[i]);
            if ((uintptr_t)v[i] % cls)
                fail_msg("object %d of class %zu at %p is not naturally aligned", i, cls,
                         v[i]);
        }
        for (int i = 0; i < MANY; i++)
            slab_free(v[i]);
    }
    expect_no_error();
}

static void test_aligned_alloc(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 4096, 40000, 3 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    struct aligned_failures bad = {0};
    for (unsigned shift = 0; shift <= 24; shift++) {
        size_t align = (size_t)1 << shift;
        for (size_t k = 0; k < NS; k++) {
            size_t size = sizes[k], u = 0;
            uint64_t before[64];
            class_allocations(before);
            errno = 0;
            void *p = slab_aligned_alloc(align, size);
            const char *why = aligned_problem(p, align, size, before, &slab_heap, &u);
            if (why) {
                note_aligned_failure(&bad, "slab_aligned_alloc", align, size, p, why);
                continue;
            }
            memset(p, 0xa5, u);
            assert_all(p, u - 1, u, 0xa5);
            slab_free(p);
        }
    }
    assert_no_aligned_failures(&bad);
    expect_no_error();
    assert_verify_clean();
}

static void test_aligned_alloc_invalid(void **state)
{
    (void)state;
    static const size_t bad[] = {3, 24, 48, 4095, 4097, 3 * MiB, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(slab_aligned_alloc(bad[i], 10));
        assert_int_equal(errno, EINVAL);
        expect_one_error(SLAB_ERR_INVALID_ARG);
        assert_string_equal(test_err.function, "slab_aligned_alloc");
        test_errors_reset();
    }
    /* 0 (like any value below 8) means 8 */
    void *p = slab_aligned_alloc(0, 10);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 8, 0);
    slab_free(p);
    /* a valid but impossible alignment: out of memory, not a crash */
    errno = 0;
    assert_null(slab_aligned_alloc((size_t)1 << 62, 10));
    assert_int_equal(errno, ENOMEM);
    expect_no_error();
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* Page runs and huge mappings                                          */

static void test_large_runs(void **state)
{
    (void)state;
    static const size_t sizes[] = {SLAB_KMALLOC_MAX_SIZE + 1, 40000, 65536, 100000,
                                   1 * MiB, SLAB_HUGE_THRESHOLD - 1, SLAB_HUGE_THRESHOLD};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i], pages = run_round(size) / SLAB_PAGE_SIZE;
        /* once so that an arena with room exists */
        slab_free(slab_malloc(size));
        slab_buddy_info_t before = test_buddy();
        unsigned char *p = slab_malloc(size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
        assert_int_equal(slab_usable_size(p), run_round(size));
        assert_null(slab_owner(p)); /* not a slab object */
        slab_buddy_info_t during = test_buddy();
        assert_int_equal(during.arenas, before.arenas);
        /* exactly the run's buddy block is taken */
        assert_int_equal(before.free_pages - during.free_pages, pages);
        memset(p, 0x5a, run_round(size));
        assert_all(p, 0, 1, 0x5a);
        assert_all(p, run_round(size) - 1, run_round(size), 0x5a);
        slab_free(p);
        slab_buddy_info_t after = test_buddy();
        test_check_buddy_consistent(&after);
        assert_int_equal(after.free_pages, before.free_pages);
        assert_int_equal(after.arenas, before.arenas);
    }
    expect_no_error();
    assert_verify_clean();
}

static void test_huge(void **state)
{
    (void)state;
    static const size_t sizes[] = {SLAB_HUGE_THRESHOLD + 1, 3 * MiB, 10 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i], bytes = page_round(size);
        size_t used = test_used_pages();
        unsigned char *p = slab_malloc(size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
        assert_int_equal(slab_usable_size(p), bytes);
        assert_null(slab_owner(p));
        size_t m = mapped_bytes_in((uintptr_t)p, (uintptr_t)p + bytes);
        if (m != (size_t)-1)
            assert_int_equal(m, bytes);
        memset(p, 0x3c, bytes);
        assert_all(p, bytes - 1, bytes, 0x3c);
        slab_free(p);
        /* the mapping is gone ... */
        m = mapped_bytes_in((uintptr_t)p, (uintptr_t)p + bytes);
        if (m == (size_t)-1)
            print_message("/proc/self/maps unreadable: mapping not checked\n");
        else
            assert_int_equal(m, 0);
        /* ... and libslab no longer knows the address */
        expect_no_error();
        assert_int_equal(slab_usable_size(p), 0);
        expect_one_error(SLAB_ERR_FOREIGN);
        test_errors_reset();
        assert_int_equal(test_used_pages(), used);
    }
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* calloc                                                               */

static void test_calloc_zeroes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 24, 1000, 4096, 30000, 40000, 100000,
                                   SLAB_HUGE_THRESHOLD, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        unsigned char *p = slab_malloc(size);
        assert_non_null(p);
        memset(p, 0xee, slab_usable_size(p));
        slab_free(p);
        unsigned char *q = slab_calloc(1, size);
        assert_non_null(q);
        assert_true(slab_usable_size(q) >= size);
        assert_all(q, 0, size, 0);
        memset(q, 0xee, size);
        slab_free(q);
        /* the same bytes as n * size */
        if (size % 8 == 0) {
            q = slab_calloc(size / 8, 8);
            assert_non_null(q);
            assert_all(q, 0, size, 0);
            slab_free(q);
        }
    }
    void *z = slab_calloc(0, 10), *z2 = slab_calloc(10, 0);
    assert_non_null(z);
    assert_non_null(z2);
    slab_free(z);
    slab_free(z2);

    static const size_t ov[][2] = {
        {SIZE_MAX / 2, 3}, {3, SIZE_MAX / 2}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32}};
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        assert_null(slab_calloc(ov[i][0], ov[i][1]));
        assert_int_equal(errno, ENOMEM);
    }
    /* no overflow, but more than can exist */
    errno = 0;
    assert_null(slab_calloc(1, SIZE_MAX - 4096));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_malloc(SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    expect_no_error();
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* realloc                                                              */

static void test_realloc_null_and_zero(void **state)
{
    (void)state;
    /* NULL: as slab_malloc */
    void *p = slab_realloc(NULL, 100);
    assert_non_null(p);
    assert_int_equal(slab_usable_size(p), USABLE_100);
    assert_int_equal((uintptr_t)p % 16, 0);
    slab_free(p);
    p = slab_realloc(NULL, 50000);
    assert_non_null(p);
    assert_int_equal(slab_usable_size(p), run_round(50000));
    slab_free(p);

    /* size 0 frees and returns NULL: a class object ... */
#ifndef SLAB_BACKEND_SLOB
    slab_cache_t *c = slab_kmalloc_cache(200);
    p = slab_malloc(200);
    assert_non_null(p);
    slab_cache_stats_t st0 = test_stats(c);
    assert_null(slab_realloc(p, 0));
    slab_cache_stats_t st1 = test_stats(c);
    assert_int_equal(st1.frees, st0.frees + 1);
    assert_int_equal(st1.active_objs + 1, st0.active_objs);
#else
    /* (SLOB: a block of no cache; freed, a second free is reported) */
    p = slab_malloc(200);
    assert_non_null(p);
    assert_null(slab_realloc(p, 0));
    expect_no_error();
    slab_free(p);
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
#endif

    /* ... a run ... */
    slab_free(slab_malloc(50000));
    size_t used = test_used_pages();
    p = slab_malloc(50000);
    assert_non_null(p);
    assert_int_equal(test_used_pages(), used + run_round(50000) / SLAB_PAGE_SIZE);
    assert_null(slab_realloc(p, 0));
    assert_int_equal(test_used_pages(), used);

    /* ... and a huge mapping */
    p = slab_malloc(3 * MiB);
    assert_non_null(p);
    assert_null(slab_realloc(p, 0));
    expect_no_error();
    assert_int_equal(slab_usable_size(p), 0);
    expect_one_error(SLAB_ERR_FOREIGN);
    test_errors_reset();
    assert_verify_clean();
}

/* Resize p from `from` to `to` bytes: the content up to the smaller size
 * survives; the new block is filled again, for the next step. */
static void *resize(void *p, size_t from, size_t to, unsigned seed)
{
    void *q = slab_realloc(p, to);
    if (!q)
        fail_msg("slab_realloc(%p, %zu) failed", p, to);
    assert_filled(q, from < to ? from : to, seed);
    size_t u = slab_usable_size(q);
    if (u < to)
        fail_msg("slab_realloc(%zu -> %zu): usable size %zu", from, to, u);
    fill(q, to, seed + 1);
    return q;
}

static void test_realloc_paths(void **state)
{
    (void)state;
    unsigned seed = 7;

    /* in the class: the same pointer, growing or shrinking */
    unsigned char *p = slab_malloc(100);
    assert_non_null(p);
    fill(p, 100, seed);
#ifndef SLAB_BACKEND_SLOB
    assert_ptr_equal(slab_realloc(p, 112), p);
#endif
    assert_ptr_equal(slab_realloc(p, 97), p);
    assert_ptr_equal(slab_realloc(p, 100), p);
    assert_filled(p, 97, seed);
    fill(p, 100, seed); /* bytes past 97 went with the shrink (memcheck holds to that) */
#ifndef SLAB_BACKEND_SLOB
    /* a user block of 8 bytes grows within class 8, not beyond */
    void *e = slab_malloc(3);
    assert_non_null(e);
    assert_ptr_equal(slab_realloc(e, 8), e);
    slab_free(e);
#endif

    /* every path, each step checking the content */
    static const size_t steps[] = {
        100,                                /* class */
        1000,                               /* class -> class */
        40,                                 /* class -> smaller class */
        30000,                              /* class -> largest classes */
        50000,                              /* class -> run */
        200000,                             /* run -> run */
        60000,                              /* run shrinks */
        3 * MiB,                            /* run -> huge */
        5 * MiB,                            /* huge -> larger huge */
        4 * MiB,                            /* huge shrinks a little */
        SLAB_HUGE_THRESHOLD + 1,            /* huge shrinks more */
        1 * MiB,                            /* huge -> run */
        10 * MiB,                           /* run -> huge */
        5000,                               /* huge -> class */
        SLAB_HUGE_THRESHOLD,                /* class -> the largest run */
        1,                                  /* run -> class */
    };
    size_t from = 100;
    for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
        p = resize(p, from, steps[i], seed);
        seed++;
        from = steps[i];
    }
    slab_free(p);
    expect_no_error();
    assert_verify_clean();
}

/* A run grows and shrinks in place while the pages after it are free. */
static void test_realloc_run_in_place(void **state)
{
    (void)state;
    slab_free(slab_malloc(40000)); /* an arena with room */
    size_t used = test_used_pages();
    unsigned char *p = slab_malloc(40000); /* a whole 16-page block */
    assert_non_null(p);
    assert_int_equal(test_used_pages(), used + 16);
    assert_int_equal(slab_usable_size(p), 65536);
    fill(p, 65536, 1);

    /* within the run */
    assert_ptr_equal(slab_realloc(p, 65536), p);
    assert_int_equal(test_used_pages(), used + 16);
    /* shrinking gives the pages past the new size back */
    assert_ptr_equal(slab_realloc(p, 36865), p);
    assert_int_equal(slab_usable_size(p), 40960);
    assert_int_equal(test_used_pages(), used + 10);
    assert_filled(p, 36865, 1);
    fill(p, 40960, 1);

    /* one more page: the page after the run is free */
    unsigned char *q = slab_realloc(p, 40960 + 100);
    assert_non_null(q);
    assert_filled(q, 40960, 1);
    if (q != p)
        fail_msg("growing a run by a page moved it from %p to %p though the next page "
                 "was free", (void *)p, (void *)q);
    assert_int_equal(slab_usable_size(p), 45056);
    assert_int_equal(test_used_pages(), used + 11);
    fill(p, 45056, 2);

    /* to the end of the block it was cut from */
    assert_ptr_equal(slab_realloc(p, 65536), p);
    assert_int_equal(slab_usable_size(p), 65536);
    assert_int_equal(test_used_pages(), used + 16);
    assert_filled(p, 45056, 2);
    fill(p, 65536, 3);

    /* shrinking gives the tail back at once */
    assert_ptr_equal(slab_realloc(p, 33000), p);
    assert_int_equal(slab_usable_size(p), 36864);
    assert_int_equal(test_used_pages(), used + 9);
    assert_filled(p, 33000, 3);

    /* beyond the block: in place or moved, the content follows */
    q = slab_realloc(p, 100000);
    assert_non_null(q);
    assert_filled(q, 33000, 3);
    slab_free(q);
    expect_no_error();
    assert_verify_clean();
}

/* Out of memory: the block is untouched and still freeable. */
static void test_realloc_failure(void **state)
{
    (void)state;
    size_t used0 = quiet_used_pages();
    unsigned char *p = slab_malloc(40000);
    assert_non_null(p);
    /* the whole run is the program's once it was told so (memory
     * checkers hold it to the 40000 bytes asked for until then) */
    assert_int_equal(slab_usable_size(p), 65536);
    fill(p, 65536, 9);
    struct starved st;
    starve(&st);

    static const size_t sizes[] = {65536 + 1, 1 * MiB + 4096, SLAB_HUGE_THRESHOLD, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        assert_starved_failure(slab_realloc(p, sizes[i]), "slab_realloc of a run", sizes[i]);
        assert_int_equal(slab_usable_size(p), 65536);
        assert_filled(p, 65536, 9);
        assert_verify_clean();
    }
    stop_starving(&st);
    test_give_back_pages(&st.held);

    /* with memory back, the same block grows */
    unsigned char *q = slab_realloc(p, 1 * MiB + 4096);
    assert_non_null(q);
    assert_filled(q, 40960, 9);
    slab_free(q);
    assert_back_to_quiet(used0);
}

/* ------------------------------------------------------------------ */
/* Misuse                                                               */

/* One report of `kind` from `fn` about `ptr`, and nothing else. */
#define expect_report(kind_, fn_, ptr_)                                          \
    do {                                                                         \
        expect_one_error(kind_);                                                 \
        assert_string_equal(test_err.function, (fn_));                           \
        assert_ptr_equal(test_err.ptr, (ptr_));                                  \
        test_errors_reset();                                                     \
    } while (0)

/* The heap still serves every kind of block. */
static void assert_heap_works(void)
{
    static const size_t sizes[] = {10, 3000, 50000, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = slab_malloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0x11, sizes[i]);
        slab_free(p);
    }
    expect_no_error();
    assert_verify_clean();
}

static void test_misuse_foreign(void **state)
{
    (void)state;
    size_t used = test_used_pages();
    char on_stack[64];
    slab_free(on_stack);
    expect_report(SLAB_ERR_FOREIGN, "slab_free", on_stack);
    assert_int_equal(slab_usable_size(on_stack), 0);
    expect_report(SLAB_ERR_FOREIGN, "slab_usable_size", on_stack);

    void *g = malloc(64); /* the C library's */
    assert_non_null(g);
    slab_free(g);
    expect_report(SLAB_ERR_FOREIGN, "slab_free", g);
    errno = 0;
    assert_null(slab_realloc(g, 128));
    assert_int_equal(errno, EINVAL);
    expect_report(SLAB_ERR_FOREIGN, "slab_realloc", g);
    free(g);

    static int global;
    slab_free(&global);
    expect_report(SLAB_ERR_FOREIGN, "slab_free", &global);
    assert_int_equal(test_used_pages(), used);
    assert_heap_works();
}

static void test_misuse_interior(void **state)
{
    (void)state;
    /* a run */
    unsigned char *r = slab_malloc(40000);
    assert_non_null(r);
    assert_int_equal(slab_usable_size(r), 65536); /* the run is the program's */
    fill(r, 40960, 4);
    size_t used = test_used_pages();
    slab_free(r + 4096);
    expect_report(SLAB_ERR_INTERIOR, "slab_free", r + 4096);
    slab_free(r + 100);
    expect_report(SLAB_ERR_INTERIOR, "slab_free", r + 100);
    slab_free(r + 40960 - 1);
    expect_report(SLAB_ERR_INTERIOR, "slab_free", r + 40960 - 1);
    assert_int_equal(slab_usable_size(r + 8192), 0);
    expect_report(SLAB_ERR_INTERIOR, "slab_usable_size", r + 8192);
    errno = 0;
    assert_null(slab_realloc(r + 4096, 100000));
    assert_int_equal(errno, EINVAL);
    expect_report(SLAB_ERR_INTERIOR, "slab_realloc", r + 4096);
    assert_int_equal(test_used_pages(), used);
    assert_int_equal(slab_usable_size(r), 65536);
    assert_filled(r, 40960, 4);
    assert_verify_clean();
    slab_free(r);

    /* a huge mapping */
    unsigned char *h = slab_malloc(3 * MiB);
    assert_non_null(h);
    fill(h, 3 * MiB, 5);
    slab_free(h + 1);
    expect_report(SLAB_ERR_INTERIOR, "slab_free", h + 1);
    slab_free(h + 2 * MiB);
    expect_report(SLAB_ERR_INTERIOR, "slab_free", h + 2 * MiB);
    assert_int_equal(slab_usable_size(h + 4096), 0);
    expect_report(SLAB_ERR_INTERIOR, "slab_usable_size", h + 4096);
    errno = 0;
    assert_null(slab_realloc(h + 64, 10));
    assert_int_equal(errno, EINVAL);
    expect_report(SLAB_ERR_INTERIOR, "slab_realloc", h + 64);
    assert_int_equal(slab_usable_size(h), 3 * MiB);
    assert_filled(h, 3 * MiB, 5);
    slab_free(h);

    /* a slab object: slab_usable_size and slab_realloc check that it
     * starts an object (a realloc that took o + 16 for the object would
     * hand it to the magazines, and out again, overlapping o's neighbours) */
    unsigned char *o = slab_malloc(100);
    assert_non_null(o);
    fill(o, 100, 6);
    assert_int_equal(slab_usable_size(o + 8), 0);
    expect_report(SLAB_ERR_INTERIOR, "slab_usable_size", o + 8);
    assert_int_equal(slab_usable_size(o + 1), 0);
    expect_report(SLAB_ERR_INTERIOR, "slab_usable_size", o + 1);
    static const size_t to[] = {8, 100, 112, 200, 5000, 100000};
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
        errno = 0;
        assert_null(slab_realloc(o + 16, to[i]));
        assert_int_equal(errno, EINVAL);
        expect_report(SLAB_ERR_INTERIOR, "slab_realloc", o + 16);
    }
    assert_int_equal(slab_usable_size(o), USABLE_100);
    assert_filled(o, 100, 6);
    assert_verify_clean();
    slab_free(o);
    assert_heap_works();
}

static void test_misuse_double_free(void **state)
{
    (void)state;
    slab_free(slab_malloc(40000));
    size_t used = test_used_pages();
    void *r = slab_malloc(40000);
    assert_non_null(r);
    slab_free(r);
    assert_int_equal(test_used_pages(), used);
    expect_no_error();
    slab_free(r);
    /* freed pages: either they head a free block, or they were merged
     * into one that starts earlier */
    assert_int_equal(test_err.count, 1);
    if (test_err.kind != SLAB_ERR_DOUBLE_FREE && test_err.kind != SLAB_ERR_INTERIOR)
        fail_msg("double free of a run reported as %s", slab_error_kind_name(test_err.kind));
    print_message("double free of a run: reported as %s\n",
                  slab_error_kind_name(test_err.kind));
    assert_ptr_equal(test_err.ptr, r);
    test_errors_reset();
    assert_int_equal(test_used_pages(), used);
    assert_verify_clean();

    /* a huge mapping, once gone, is a pointer libslab does not know */
    void *h = slab_malloc(3 * MiB);
    assert_non_null(h);
    slab_free(h);
    slab_free(h);
    expect_report(SLAB_ERR_FOREIGN, "slab_free", h);
    assert_int_equal(test_used_pages(), used);
    assert_heap_works();
}

static void test_misuse_pages(void **state)
{
    (void)state;
    void *b = slab_pages_alloc(2);
    assert_non_null(b);
    memset(b, 0x42, 4 * SLAB_PAGE_SIZE);
    size_t used = test_used_pages();
    slab_free(b);
    expect_report(SLAB_ERR_BAD_PAGES, "slab_free", b);
    assert_int_equal(slab_usable_size(b), 0);
    expect_report(SLAB_ERR_BAD_PAGES, "slab_usable_size", b);
    errno = 0;
    assert_null(slab_realloc(b, 100));
    assert_int_equal(errno, EINVAL);
    expect_report(SLAB_ERR_BAD_PAGES, "slab_realloc", b);
    /* still allocated, still its owner's */
    assert_int_equal(test_used_pages(), used);
    assert_all(b, 0, 4 * SLAB_PAGE_SIZE, 0x42);
    assert_verify_clean();
    slab_pages_free(b, 2);
    expect_no_error();
    assert_int_equal(test_used_pages(), used - 4);
    assert_heap_works();
}

/* ------------------------------------------------------------------ */
/* Objects of user caches                                               */

static void test_user_cache_objects(void **state)
{
    (void)state;
    skip_on_slob("slab_free() cannot take a cache's object: SLOB does not know which cache owns it (reported instead; test_slob checks that)");
    slab_cache_t *c = slab_cache_create("km-user", 200, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    unsigned char *p = slab_cache_alloc(c);
    assert_non_null(p);
    assert_int_equal(slab_usable_size(p), 200);
    slab_cache_stats_t st0 = test_stats(c);
    assert_int_equal(st0.active_objs, 1);
    slab_free(p);
    slab_cache_stats_t st1 = test_stats(c);
    assert_int_equal(st1.frees, st0.frees + 1);
    assert_int_equal(st1.active_objs, 0);

    /* realloc keeps it while it fits, and moves it to a class after */
    p = slab_cache_alloc(c);
    assert_non_null(p);
    fill(p, 200, 6);
    assert_ptr_equal(slab_realloc(p, 150), p);
    assert_ptr_equal(slab_realloc(p, 200), p);
    assert_filled(p, 150, 6);
    fill(p, 200, 6); /* bytes past 150 went with the shrink (memcheck holds to that) */
    unsigned char *q = slab_realloc(p, 500);
    assert_non_null(q);
    assert_true(q != p);
    assert_filled(q, 200, 6);
    assert_ptr_equal(slab_owner(q), slab_kmalloc_cache(500));
    slab_cache_stats_t st2 = test_stats(c);
    assert_int_equal(st2.active_objs, 0);
    assert_int_equal(st2.frees, st1.frees + 1);
    slab_free(q);

    /* nothing of it is left anywhere */
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* The Linux names                                                      */

static void test_linux_names(void **state)
{
    (void)state;
    assert_ptr_equal(kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
    assert_ptr_equal(kzalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
    assert_ptr_equal(kcalloc(0, 8, GFP_KERNEL), ZERO_SIZE_PTR);
    kfree(ZERO_SIZE_PTR);
    kfree(NULL);
    assert_int_equal(ksize(ZERO_SIZE_PTR), 0);
    assert_int_equal(ksize(NULL), 0);
    expect_no_error();

    char *p = kmalloc(100, GFP_KERNEL);
    assert_non_null(p);
    assert_int_equal(ksize(p), USABLE_100);
    kfree(p);
    p = kmalloc(40000, GFP_ATOMIC);
    assert_non_null(p);
    assert_int_equal(ksize(p), 65536);
    kfree(p);

    /* zeroing, on memory that was dirty */
    static const size_t zs[] = {300, 5000, 40000};
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        p = kmalloc(zs[i], GFP_KERNEL);
        assert_non_null(p);
        memset(p, 0xff, ksize(p));
        kfree(p);
        p = kzalloc(zs[i], GFP_KERNEL);
        assert_non_null(p);
        assert_all(p, 0, zs[i], 0);
        memset(p, 0xff, ksize(p));
        kfree(p);
        p = kmalloc(zs[i], GFP_KERNEL | __GFP_ZERO);
        assert_non_null(p);
        assert_all(p, 0, zs[i], 0);
        memset(p, 0xff, ksize(p));
        kfree(p);
        p = kcalloc(zs[i] / 4, 4, GFP_KERNEL);
        assert_non_null(p);
        assert_all(p, 0, zs[i], 0);
        kfree(p);
    }

    /* arrays */
    assert_null(kcalloc(SIZE_MAX / 2, 3, GFP_KERNEL));
    assert_null(kmalloc_array(SIZE_MAX / 2, 3, GFP_KERNEL));
    assert_null(kmalloc_array(3, SIZE_MAX / 2, GFP_KERNEL));
    p = kmalloc_array(10, 20, GFP_KERNEL);
    assert_non_null(p);
    assert_true(ksize(p) >= 200);
    kfree(p);

    /* krealloc */
    p = krealloc(NULL, 10, GFP_KERNEL);
    assert_non_null(p);
    strcpy(p, "krealloc");
    p = krealloc(p, 5000, GFP_KERNEL);
    assert_non_null(p);
    assert_string_equal(p, "krealloc");
    slab_free(slab_malloc(50000));
    size_t used = test_used_pages();
    p = krealloc(p, 50000, GFP_KERNEL);
    assert_non_null(p);
    assert_string_equal(p, "krealloc");
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(test_used_pages(), used + run_round(50000) / SLAB_PAGE_SIZE);
#else
    /* (SLOB: 5000 bytes were a run of their own: grown in place to the
     * 13 pages needed, or moved to a new run and given back) */
    {
        size_t now = test_used_pages(), had = run_round(5000) / SLAB_PAGE_SIZE;
        if (now != used - had + 13 && now != used - had + run_round(50000) / SLAB_PAGE_SIZE)
            fail_msg("%zu pages in use after krealloc to 50000, %zu before", now, used);
    }
    used -= run_round(5000) / SLAB_PAGE_SIZE;
#endif
    assert_ptr_equal(krealloc(p, 0, GFP_KERNEL), ZERO_SIZE_PTR);
    assert_int_equal(test_used_pages(), used); /* freed */
    p = krealloc(ZERO_SIZE_PTR, 20, GFP_KERNEL);
    assert_non_null(p);
    assert_true(p != ZERO_SIZE_PTR);
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(ksize(p), 32);
#else
    assert_int_equal(ksize(p), 20);
#endif
    kfree(p);

    /* strings and copies */
    char *s = kstrdup("kernel string", GFP_KERNEL);
    assert_non_null(s);
    assert_string_equal(s, "kernel string");
    assert_true(ksize(s) >= 14);
    kfree(s);
    assert_null(kstrdup(NULL, GFP_KERNEL));
    unsigned char src[3000];
    fill(src, sizeof src, 8);
    unsigned char *d = kmemdup(src, sizeof src, GFP_KERNEL);
    assert_non_null(d);
    assert_true(d != src);
    assert_memory_equal(d, src, sizeof src);
    kfree(d);

    /* kmalloc_index: the class serving a size */
#ifdef SLAB_BACKEND_SLOB
    /* (SLOB: no classes, none serves any size) */
    (void)class_for;
    assert_int_equal(kmalloc_index(1), -1);
    assert_int_equal(kmalloc_index(4096), -1);
#else
    assert_int_equal(kmalloc_index(0), 0);
    assert_int_equal(kmalloc_index(1), 0);
    assert_int_equal(kmalloc_index(8), 0);
    assert_int_equal(kmalloc_index(9), 1);
    assert_int_equal(kmalloc_index(16), 1);
    assert_int_equal(kmalloc_index(17), 2);
    assert_int_equal(kmalloc_index(128), 8);
    assert_int_equal(kmalloc_index(129), 9);
    assert_int_equal(kmalloc_index(4096), 28);
    assert_int_equal(kmalloc_index(KMALLOC_MAX_CACHE_SIZE), 40);
    assert_int_equal(kmalloc_index(KMALLOC_MAX_CACHE_SIZE + 1), -1);
    for (size_t n = 1; n <= KMALLOC_MAX_CACHE_SIZE; n += 97)
        assert_int_equal(slab_size_class((size_t)kmalloc_index(n)), class_for(n));
#endif
    expect_no_error();
    assert_verify_clean();
}

/* krealloc with __GFP_ZERO: everything past what the caller had is zero. */
static void test_krealloc_gfp_zero(void **state)
{
    (void)state;
    /* the whole old block is kept, the new tail is zero */
    char *dirty = kmalloc(200, GFP_KERNEL);
    assert_non_null(dirty);
    memset(dirty, 0xff, ksize(dirty));
    kfree(dirty); /* the next 200-byte object is likely this one */
    unsigned char *p = kmalloc(16, GFP_KERNEL);
    assert_non_null(p);
    memset(p, 0xaa, 16);
    p = krealloc(p, 200, GFP_KERNEL | __GFP_ZERO);
    assert_non_null(p);
    assert_all(p, 0, 16, 0xaa);
    assert_all(p, 16, 200, 0);
    memset(p, 0xff, ksize(p));
    kfree(p);

    /* the same for runs */
    dirty = kmalloc(100000, GFP_KERNEL);
    assert_non_null(dirty);
    memset(dirty, 0xff, ksize(dirty));
    kfree(dirty);
    p = kmalloc(40000, GFP_KERNEL);
    assert_non_null(p);
    memset(p, 0xaa, ksize(p));
    size_t old = ksize(p);
    p = krealloc(p, 100000, GFP_KERNEL | __GFP_ZERO);
    assert_non_null(p);
    assert_all(p, 0, old, 0xaa);
    assert_all(p, old, 100000, 0);
    kfree(p);

    expect_no_error();
}

/* The kernel's rule for krealloc(): an allocation made with __GFP_ZERO
 * and resized with __GFP_ZERO every time reads as zero wherever the
 * caller did not write, however it grows, in place or not.  (In the
 * kernel, kzalloc() zeroes the whole object, ksize() bytes, and krealloc()
 * copies all of them.) */
static void test_krealloc_gfp_zero_kernel_rule(void **state)
{
    (void)state;
    char *dirty;
    unsigned char *p;
    static const size_t first[] = {10, 100, 33000};
    static const size_t then[] = {16, 112, 40960};   /* the same class or run */
    static const size_t grown[] = {100, 1000, 60000}; /* a bigger one */
    unsigned bad = 0;
    for (size_t i = 0; i < 3; i++) {
        dirty = kmalloc(first[i], GFP_KERNEL);
        assert_non_null(dirty);
        memset(dirty, 0xff, ksize(dirty));
        kfree(dirty);
        dirty = kmalloc(grown[i], GFP_KERNEL);
        assert_non_null(dirty);
        memset(dirty, 0xff, ksize(dirty));
        kfree(dirty);
        p = kzalloc(first[i], GFP_KERNEL);
        assert_non_null(p);
        memset(p, 0x77, first[i]);
        for (int step = 0; step < 2; step++) {
            size_t to = step ? grown[i] : then[i];
            p = krealloc(p, to, GFP_KERNEL | __GFP_ZERO);
            assert_non_null(p);
            assert_all(p, 0, first[i], 0x77);
            size_t nonzero = 0, at = 0;
            for (size_t b = to; b-- > first[i];)
                if (p[b] != 0) {
                    nonzero++;
                    at = b;
                }
            if (nonzero) {
                print_message("kzalloc(%zu), krealloc(p, %zu, __GFP_ZERO): %zu bytes of "
                              "[%zu, %zu) not zero, the first at %zu (ksize %zu)\n",
                              first[i], to, nonzero, first[i], to, at, ksize(p));
                bad++;
            }
        }
        kfree(p);
    }
    if (bad)
        fail_msg("%u of 6 krealloc(__GFP_ZERO) calls left old bytes past what the caller "
                 "wrote", bad);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                        */

static void test_out_of_memory(void **state)
{
    (void)state;
    size_t used0 = quiet_used_pages();
    struct starved st;
    starve(&st);

    /* a class with no slab left needs a new one; a run; a huge mapping
     * (SLOB: small requests may still fit the free units of its pages in
     * use, so only the sizes that need new pages; test_slob starves it) */
#ifndef SLAB_BACKEND_SLOB
    static const size_t sizes[] = {30000, 1000, 100, 100000, SLAB_HUGE_THRESHOLD,
                                   3 * MiB};
#else
    static const size_t sizes[] = {30000, 100000, SLAB_HUGE_THRESHOLD, 3 * MiB};
#endif
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        assert_starved_failure(slab_malloc(sizes[i]), "slab_malloc", sizes[i]);
        errno = 0;
        assert_starved_failure(slab_calloc(1, sizes[i]), "slab_calloc", sizes[i]);
        assert_verify_clean();
    }
    errno = 0;
    assert_null(slab_aligned_alloc(64 * KiB, 10));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_aligned_alloc(4 * MiB, 10));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_realloc(NULL, 100000));
    assert_int_equal(errno, ENOMEM);
#ifndef SLAB_BACKEND_SLOB
    assert_null(kmalloc(2000, GFP_KERNEL));
#endif
    assert_null(kzalloc(50000, GFP_KERNEL));
    stop_starving(&st);
    assert_verify_clean();

    /* memory is back: everything works */
    test_give_back_pages(&st.held);
    void *ok[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ok[i] = slab_malloc(sizes[i]);
        assert_non_null(ok[i]);
        memset(ok[i], 0x99, sizes[i]);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        slab_free(ok[i]);
    /* and nothing leaked */
    assert_back_to_quiet(used0);
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */

/* pick (of 1000): 60 % up to 256 bytes, 25 % up to a page, 13 % up to
 * the largest class, 1.9 % runs, 0.1 % huge mappings */
static const struct size_band kmalloc_sizes[] = {
    {600, 1, 256},
    {850, 257, 4096 - 256},
    {980, 4097, SLAB_KMALLOC_MAX_SIZE - 4096},
    {999, SLAB_KMALLOC_MAX_SIZE + 1, 256 * KiB},
    {1000, SLAB_HUGE_THRESHOLD + 1, MiB},
};

static void test_threads_random(void **state)
{
    (void)state;
    static const struct stress st = {
        .heap = &slab_heap,
        .sizes = kmalloc_sizes,
        .slots = 64,
        .ops = 8,
        .seed = 0x9E3779B97F4A7C15ULL,
        .seed_offset = 1,
    };
    run_stress(&st, test_scaled(20000));
    expect_no_error();
    assert_verify_clean();
}

/* One thread allocates, the other frees: every free is cross-thread. */
#define QCAP 256
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *p[QCAP];
    size_t n[QCAP];
    size_t head, count;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void queue_put(void *p, size_t n)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.count == QCAP)
        pthread_cond_wait(&queue.cond, &queue.lock);
    size_t i = (queue.head + queue.count) % QCAP;
    queue.p[i] = p;
    queue.n[i] = n;
    queue.count++;
    pthread_cond_broadcast(&queue.cond);
    pthread_mutex_unlock(&queue.lock);
}

static void *queue_take(size_t *n)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.count == 0)
        pthread_cond_wait(&queue.cond, &queue.lock);
    void *p = queue.p[queue.head];
    *n = queue.n[queue.head];
    queue.head = (queue.head + 1) % QCAP;
    queue.count--;
    pthread_cond_broadcast(&queue.cond);
    pthread_mutex_unlock(&queue.lock);
    return p;
}

static void *producer(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = 0xC0FFEE;
    for (size_t i = 0; i < w->iters; i++) {
        size_t n = random_size(&rng, kmalloc_sizes);
        if (n > SLAB_HUGE_THRESHOLD)
            n = 100; /* the pair tests objects and runs */
        void *p = slab_malloc(n);
        if (!p) {
            thread_fail("producer: slab_malloc(%zu) failed", n);
            break;
        }
        put_block(p, n);
        queue_put(p, n);
    }
    queue_put(NULL, 0);
    return NULL;
}

static void *consumer(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        size_t n;
        void *p = queue_take(&n);
        if (!p)
            break;
        check_block(p, n, w->id);
        slab_free(p);
    }
    return NULL;
}

static void test_threads_cross_free(void **state)
{
    (void)state;
    struct worker prod = {.id = 10, .iters = test_scaled(30000)};
    struct worker cons = {.id = 11};
    assert_int_equal(pthread_create(&cons.tid, NULL, consumer, &cons), 0);
    assert_int_equal(pthread_create(&prod.tid, NULL, producer, &prod), 0);
    assert_int_equal(pthread_join(prod.tid, NULL), 0);
    assert_int_equal(pthread_join(cons.tid, NULL), 0);
    assert_no_thread_failures();
    expect_no_error();
    assert_verify_clean();
    assert_heap_works();
}

int main(void)
{
    /* No automatic reap: the tests count pages exactly. */
    test_no_automatic_reap();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_size_classes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kmalloc_caches, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_malloc_alignment, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_aligned_alloc, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_aligned_alloc_invalid, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_large_runs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_huge, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_calloc_zeroes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_realloc_null_and_zero, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_realloc_paths, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_realloc_run_in_place, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_realloc_failure, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_foreign, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_interior, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_double_free, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_pages, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_user_cache_objects, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_linux_names, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_krealloc_gfp_zero, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_krealloc_gfp_zero_kernel_rule, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_threads_random, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_threads_cross_free, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
