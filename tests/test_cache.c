/*
 * test_cache.c - object caches: slab_cache_create() and everything above
 * the page allocator.
 *
 * Covers argument checking, object placement (no overlap, alignment,
 * objects inside their slab), SLAB_HWCACHE_ALIGN, constructor and
 * destructor semantics (constructed state survives free), the 1/8 waste
 * bound for every object size, slab colouring, shrinking, slab_owner(),
 * exact statistics, destroying a busy cache, every kind of bad free, and a
 * constructor that fails.
 */
#include "slab_test.h"



static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

static size_t slab_bytes_of(const slab_cache_stats_t *st)
{
    return st->pages_per_slab * SLAB_PAGE_SIZE;
}

static uintptr_t slab_base(const void *p, size_t slab_bytes)
{
    return (uintptr_t)p & ~(uintptr_t)(slab_bytes - 1);
}

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Every field but the error counter. */
static void assert_stats_same(const slab_cache_stats_t *a, const slab_cache_stats_t *b)
{
    assert_int_equal(a->object_size, b->object_size);
    assert_int_equal(a->stride, b->stride);
    assert_int_equal(a->align, b->align);
    assert_int_equal(a->objs_per_slab, b->objs_per_slab);
    assert_int_equal(a->pages_per_slab, b->pages_per_slab);
    assert_int_equal(a->colours, b->colours);
    assert_int_equal(a->active_objs, b->active_objs);
    assert_int_equal(a->total_objs, b->total_objs);
    assert_int_equal(a->active_slabs, b->active_slabs);
    assert_int_equal(a->total_slabs, b->total_slabs);
    assert_int_equal(a->partial_slabs, b->partial_slabs);
    assert_int_equal(a->full_slabs, b->full_slabs);
    assert_int_equal(a->free_slabs, b->free_slabs);
    assert_int_equal(a->allocations, b->allocations);
    assert_int_equal(a->frees, b->frees);
    assert_int_equal(a->high_mark, b->high_mark);
    assert_int_equal(a->grown, b->grown);
    assert_int_equal(a->reaped, b->reaped);
    assert_int_equal(a->ctor_failures, b->ctor_failures);
}

/* The relations between the counters that always hold. */
static void assert_stats_coherent(const slab_cache_stats_t *st)
{
#ifdef SLAB_BACKEND_SLOB
    /* SLOB: a cache has no slabs of its own (objects larger than a page
     * are a block each); every object it counts is handed out */
    assert_int_equal(st->total_objs, st->active_objs);
    if (st->object_size <= SLAB_PAGE_SIZE)
        assert_int_equal(st->total_slabs, 0);
    else
        assert_int_equal(st->total_slabs, st->active_objs);
#else
    assert_int_equal(st->total_objs, st->total_slabs * st->objs_per_slab);
    assert_true(st->active_objs <= st->total_objs);
#endif
    assert_int_equal(st->active_slabs, st->partial_slabs + st->full_slabs);
    assert_int_equal(st->total_slabs, st->active_slabs + st->free_slabs);
    assert_true(st->active_objs <= st->high_mark);
    assert_int_equal(st->allocations - st->frees, st->active_objs);
    assert_int_equal(st->grown - st->reaped, st->total_slabs);
}

/* ------------------------------------------------------------------ */
/* Creation                                                             */

static void expect_create_einval(const char *what, const char *name, size_t size,
                                 size_t align, slab_flags_t flags)
{
    test_errors_reset();
    errno = 0;
    slab_cache_t *c = slab_cache_create(name, size, align, flags, NULL, NULL, NULL);
    if (c) {
        slab_cache_destroy(c);
        fail_msg("slab_cache_create accepted %s", what);
    }
    if (errno != EINVAL)
        fail_msg("slab_cache_create with %s: errno %d, want EINVAL", what, errno);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
}

static void test_create_invalid(void **state)
{
    (void)state;
    size_t used = test_used_pages();
    expect_create_einval("a NULL name", NULL, 64, 0, 0);
    expect_create_einval("size 0", "zero", 0, 0, 0);
    expect_create_einval("size above the maximum", "huge", SLAB_MAX_OBJECT_SIZE + 1, 0, 0);
    expect_create_einval("size SIZE_MAX", "huger", SIZE_MAX, 0, 0);
    expect_create_einval("alignment 3", "a3", 64, 3, 0);
    expect_create_einval("alignment 24", "a24", 64, 24, 0);
    expect_create_einval("alignment 4095", "a4095", 64, 4095, 0);
    expect_create_einval("alignment above a page", "a8192", 64, 2 * SLAB_PAGE_SIZE, 0);
    expect_create_einval("alignment SIZE_MAX", "amax", 64, SIZE_MAX, 0);
    expect_create_einval("unknown flag 0x1", "f1", 64, 0, 0x1U);
    expect_create_einval("unknown flag 0x80000000", "f2", 64, 0, 0x80000000U);
    expect_create_einval("a known flag plus an unknown one", "f3", 64, 0,
                         SLAB_HWCACHE_ALIGN | 0x4U);
    assert_int_equal(test_used_pages(), used);
    assert_verify_clean();
}

static void test_create_edges(void **state)
{
    (void)state;
    /* the extremes that are allowed */
    slab_cache_t *c = slab_cache_create("max", SLAB_MAX_OBJECT_SIZE, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(slab_cache_object_size(c), SLAB_MAX_OBJECT_SIZE);
    assert_int_equal(slab_cache_destroy(c), 0);
    c = slab_cache_create("page-aligned", 100, SLAB_PAGE_SIZE, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(test_stats(c).align, SLAB_PAGE_SIZE);
    assert_int_equal(slab_cache_destroy(c), 0);
    c = slab_cache_create("one-byte", 1, 1, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(slab_cache_destroy(c), 0);

    /* align 0 means 8 */
    c = slab_cache_create("align0", 20, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.align, 8);
    assert_int_equal(st.stride, 24);
    assert_int_equal(st.object_size, 20);
    assert_int_equal(slab_cache_destroy(c), 0);

    /* every known flag is accepted */
    const slab_flags_t known[] = {SLAB_CONSISTENCY_CHECKS, SLAB_RED_ZONE, SLAB_POISON,
                                  SLAB_HWCACHE_ALIGN, SLAB_STORE_USER, SLAB_PANIC};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        errno = 0;
        c = slab_cache_create("flagged", 64, 0, known[i], NULL, NULL, NULL);
        if (!c)
            fail_msg("flag 0x%x refused (errno %d)", known[i], errno);
        void *p = slab_cache_alloc(c);
        assert_non_null(p);
        assert_owner(p, c);
        slab_cache_free(c, p);
        assert_int_equal(slab_cache_destroy(c), 0);
    }

    /* the name is copied, and truncated to SLAB_NAME_MAX - 1 bytes */
    char name[80];
    strcpy(name, "copied");
    c = slab_cache_create(name, 32, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    strcpy(name, "changed");
    assert_string_equal(slab_cache_name(c), "copied");
    assert_string_equal(test_stats(c).name, "copied");
    assert_int_equal(slab_cache_destroy(c), 0);
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    c = slab_cache_create(name, 32, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(strlen(slab_cache_name(c)), SLAB_NAME_MAX - 1);
    assert_memory_equal(slab_cache_name(c), name, SLAB_NAME_MAX - 1);
    assert_int_equal(slab_cache_destroy(c), 0);

    /* NULL cache arguments */
    test_errors_reset();
    errno = 0;
    assert_null(slab_cache_alloc(NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(test_err.count, 1);
    assert_int_equal(test_err.kind, SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    errno = 0;
    assert_int_equal(slab_cache_destroy(NULL), -1);
    assert_int_equal(errno, EINVAL);
    test_errors_reset();
    assert_int_equal(slab_cache_object_size(NULL), 0);

    /* freeing NULL is a no-op, not an error */
    c = slab_cache_create("null-free", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    void *p = slab_cache_alloc(c);
    assert_non_null(p);
    slab_cache_stats_t before = test_stats(c);
    test_errors_reset();
    slab_cache_free(c, NULL);
    expect_no_error();
    slab_cache_stats_t after = test_stats(c);
    assert_stats_same(&before, &after);
    assert_int_equal(after.errors, before.errors);
    slab_cache_free(c, p);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_error_kind_names(void **state)
{
    (void)state;
    const char *names[SLAB_ERR_CORRUPT + 1];
    for (int k = SLAB_ERR_INVALID_ARG; k <= SLAB_ERR_CORRUPT; k++) {
        names[k] = slab_error_kind_name((slab_error_kind_t)k);
        assert_non_null(names[k]);
        assert_true(names[k][0] != '\0');
        for (int j = SLAB_ERR_INVALID_ARG; j < k; j++)
            assert_string_not_equal(names[j], names[k]);
    }
}

/* ------------------------------------------------------------------ */
/* Placement: no overlap, alignment, objects inside their slab          */

static void check_layout(size_t size, size_t align, slab_flags_t flags)
{
    char name[SLAB_NAME_MAX];
    snprintf(name, sizeof name, "lay-%zu-%zu", size, align);
    slab_cache_t *c = slab_cache_create(name, size, align, flags, NULL, NULL, NULL);
    if (!c)
        fail_msg("create(%zu, align %zu) failed: errno %d", size, align, errno);
    slab_cache_stats_t st = test_stats(c);
    size_t want_align = align ? align : 8;
    if (flags & SLAB_HWCACHE_ALIGN && size > 32 && want_align < 64)
        want_align = 64;
    if (st.align < want_align || (st.align & (st.align - 1)) != 0)
        fail_msg("%s: stats align %zu, want >= %zu", name, st.align, want_align);
    assert_int_equal(st.stride, round_up(size, st.align));
    assert_true(st.objs_per_slab >= 1);
    size_t sb = slab_bytes_of(&st);
    assert_true(st.objs_per_slab * st.stride <= sb);

    size_t n = 3 * st.objs_per_slab + 1;
    uintptr_t *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = slab_cache_alloc(c);
        if (!p)
            fail_msg("%s: allocation %zu failed: errno %d", name, i, errno);
        if ((uintptr_t)p % want_align != 0)
            fail_msg("%s: object %p is not aligned to %zu", name, (void *)p, want_align);
        if (slab_base(p, sb) != slab_base(p + size - 1, sb))
            fail_msg("%s: object %p crosses the end of its slab", name, (void *)p);
        assert_owner(p, c);
        assert_owner(p + size - 1, c);
        if (size <= 8192) {
            memset(p, (int)(i & 0xff), size);
        } else {
            memset(p, (int)(i & 0xff), 64);
            memset(p + size - 64, (int)(i & 0xff), 64);
        }
        a[i] = (uintptr_t)p;
    }
    /* contents survive all the later allocations */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)a[i];
        size_t len = size <= 8192 ? size : 64;
        for (size_t j = 0; j < len; j++)
            if (p[j] != (unsigned char)(i & 0xff) || p[size - 1 - j] != (unsigned char)(i & 0xff))
                fail_msg("%s: object %zu at %p overwritten", name, i, (const void *)p);
    }
    st = test_stats(c);
    assert_int_equal(st.active_objs, n);
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(st.total_slabs, 4);
#endif
    assert_stats_coherent(&st);

    /* free in allocation order, then check ranges sorted */
    for (size_t i = 0; i < n; i++)
        slab_cache_free(c, (void *)a[i]);
    qsort(a, n, sizeof *a, cmp_uptr);
    size_t slabs = 1;
    for (size_t i = 1; i < n; i++) {
        if (a[i - 1] + size > a[i])
            fail_msg("%s: objects %#lx and %#lx overlap", name, (unsigned long)a[i - 1],
                     (unsigned long)a[i]);
        if (slab_base((void *)a[i], sb) != slab_base((void *)a[i - 1], sb))
            slabs++;
    }
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(slabs, 4);
#else
    (void)slabs; /* pages are shared: objects of one cache need not fill them */
#endif
    free(a);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
}

static void test_layout_many(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 3, 7, 8, 13, 24, 33, 63, 64, 65, 100, 127, 129,
                            250, 500, 1000, 1500, 3000, 4095, 4096, 4097, 10000,
                            65539, 100000, SLAB_MAX_OBJECT_SIZE};
    const size_t aligns[] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++)
            check_layout(sizes[i], aligns[j], 0);
    assert_verify_clean();
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_hwcache_align(void **state)
{
    (void)state;
    const size_t sizes[] = {8, 16, 24, 32, 33, 40, 48, 64, 65, 100, 200, 1000, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        slab_cache_t *c = slab_cache_create("hw", sizes[i], 0, SLAB_HWCACHE_ALIGN,
                                            NULL, NULL, NULL);
        assert_non_null(c);
        slab_cache_stats_t st = test_stats(c);
        if (sizes[i] > 32)
            assert_true(st.align >= SLAB_CACHE_LINE);
        else
            assert_true(st.align >= 8);
        assert_int_equal(slab_cache_destroy(c), 0);
        check_layout(sizes[i], 0, SLAB_HWCACHE_ALIGN);
    }
    /* a larger explicit alignment wins */
    slab_cache_t *c = slab_cache_create("hw256", 100, 256, SLAB_HWCACHE_ALIGN,
                                        NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(test_stats(c).align, 256);
    assert_int_equal(slab_cache_destroy(c), 0);
    check_layout(100, 256, SLAB_HWCACHE_ALIGN);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Constructors and destructors                                         */

#define CTOR_MAGIC 0xC0FFEE00C0FFEE00ULL
#define DEAD_MAGIC 0xDEADDEADDEADDEADULL

struct cobj {
    uint64_t magic;
    uint64_t serial; /* which successful construction made this */
    uint64_t user;   /* the test's own state */
    unsigned char pad[40];
};

struct counters {
    size_t ctor_calls; /* every call, failed or not */
    size_t ctor_ok;
    size_t dtor_calls;
    size_t fail_at;    /* the ctor call number that fails (0: none) */
    size_t bad_arg;    /* calls with an unexpected arg */
    size_t bad_dtor;   /* destructor saw an object not in constructed state */
};

static struct counters kc;

static int count_ctor(void *obj, void *arg)
{
    struct cobj *o = obj;
    if (arg != &kc)
        kc.bad_arg++;
    kc.ctor_calls++;
    if (kc.fail_at && kc.ctor_calls == kc.fail_at)
        return -1;
    kc.ctor_ok++;
    o->magic = CTOR_MAGIC;
    o->serial = kc.ctor_ok;
    o->user = 0;
    return 0;
}

static void count_dtor(void *obj, void *arg)
{
    struct cobj *o = obj;
    if (arg != &kc)
        kc.bad_arg++;
    kc.dtor_calls++;
    if (o->magic != CTOR_MAGIC)
        kc.bad_dtor++;
    o->magic = DEAD_MAGIC;
}

static void assert_ctor_balance(slab_cache_t *c)
{
    slab_cache_stats_t st = test_stats(c);
    if (kc.ctor_ok - kc.dtor_calls != st.total_objs)
        fail_msg("%zu constructed, %zu destroyed, but %zu objects in slabs", kc.ctor_ok,
                 kc.dtor_calls, st.total_objs);
    assert_int_equal(kc.bad_arg, 0);
    assert_int_equal(kc.bad_dtor, 0);
}

static void test_ctor_state_survives(void **state)
{
    (void)state;
    skip_on_slob("objects are constructed on every allocation, not once per slab (test_slob checks that contract)");
    memset(&kc, 0, sizeof kc);
    slab_cache_t *c = slab_cache_create("ctor", sizeof(struct cobj), 0, 0, count_ctor,
                                        count_dtor, &kc);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    size_t k = st.objs_per_slab;
    assert_true(k >= 2);

    /* the first allocation constructs its whole slab, once */
    struct cobj *first = slab_cache_alloc(c);
    assert_non_null(first);
    assert_int_equal(kc.ctor_ok, k);
    assert_int_equal(first->magic, CTOR_MAGIC);

    size_t n = 2 * k + 5;
    struct cobj **objs = calloc(n, sizeof *objs);
    assert_non_null(objs);
    objs[0] = first;
    for (size_t i = 1; i < n; i++) {
        objs[i] = slab_cache_alloc(c);
        assert_non_null(objs[i]);
        assert_int_equal(objs[i]->magic, CTOR_MAGIC);
        assert_int_equal(objs[i]->user, 0);
    }
    st = test_stats(c);
    assert_int_equal(kc.ctor_ok, st.total_objs);
    assert_int_equal(st.total_objs, 3 * k);
    assert_int_equal(kc.dtor_calls, 0);
    /* each object constructed exactly once: serials are distinct */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            assert_true(objs[i]->serial != objs[j]->serial);

    /* the test changes each object's state, then frees every other one */
    for (size_t i = 0; i < n; i++)
        objs[i]->user = 0x5500000000000000ULL | (uint64_t)(uintptr_t)objs[i];
    size_t nfreed = 0;
    struct cobj **freed = calloc(n, sizeof *freed);
    assert_non_null(freed);
    for (size_t i = 0; i < n; i += 2) {
        freed[nfreed++] = objs[i];
        slab_cache_free(c, objs[i]);
        objs[i] = NULL;
    }
    size_t ctor_before = kc.ctor_ok;

    /* reallocating gets those objects back, in the state the test left */
    for (size_t i = 0; i < n; i += 2) {
        struct cobj *o = slab_cache_alloc(c);
        assert_non_null(o);
        int was_freed = 0;
        for (size_t j = 0; j < nfreed; j++)
            was_freed |= freed[j] == o;
        if (!was_freed)
            fail_msg("reallocation handed out %p, not one of the freed objects", (void *)o);
        assert_int_equal(o->magic, CTOR_MAGIC);
        if (o->user != (0x5500000000000000ULL | (uint64_t)(uintptr_t)o))
            fail_msg("object %p lost its state across free/alloc: user %#llx", (void *)o,
                     (unsigned long long)o->user);
        objs[i] = o;
    }
    assert_int_equal(kc.ctor_ok, ctor_before);
    assert_int_equal(kc.dtor_calls, 0);
    assert_ctor_balance(c);

    for (size_t i = 0; i < n; i++)
        slab_cache_free(c, objs[i]);
    assert_ctor_balance(c);
    slab_cache_shrink(c);
    assert_int_equal(test_stats(c).total_objs, 0);
    assert_int_equal(kc.dtor_calls, kc.ctor_ok);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(kc.dtor_calls, kc.ctor_ok);
    assert_int_equal(kc.ctor_calls, kc.ctor_ok);
    free(objs);
    free(freed);
    expect_no_error();
}

static void test_dtor_on_release(void **state)
{
    (void)state;
    skip_on_slob("destructors run on every free, not when a slab is released (test_slob checks that contract)");
    memset(&kc, 0, sizeof kc);
    slab_cache_t *c = slab_cache_create("dtor", sizeof(struct cobj), 0, 0, count_ctor,
                                        count_dtor, &kc);
    assert_non_null(c);
    size_t k = test_stats(c).objs_per_slab;
    size_t n = 4 * k;
    struct cobj **objs = calloc(n, sizeof *objs);
    assert_non_null(objs);
    for (size_t i = 0; i < n; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    assert_int_equal(kc.ctor_ok, n);

    /* free two whole slabs' worth: released now or kept free, the balance
     * holds either way */
    for (size_t i = 0; i < 2 * k; i++)
        slab_cache_free(c, objs[i]);
    assert_ctor_balance(c);
    slab_cache_stats_t st = test_stats(c);
    size_t dtor_before = kc.dtor_calls;
    size_t released = slab_cache_shrink(c);
    assert_int_equal(released, st.free_slabs);
    assert_int_equal(kc.dtor_calls, dtor_before + released * k);
    assert_ctor_balance(c);
    assert_int_equal(test_stats(c).total_objs, 2 * k);

    /* destroy runs the destructor for every remaining object */
    for (size_t i = 2 * k; i < n; i++)
        slab_cache_free(c, objs[i]);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(kc.dtor_calls, kc.ctor_ok);
    assert_int_equal(kc.bad_dtor, 0);
    assert_int_equal(kc.bad_arg, 0);
    free(objs);
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_ctor_failure(void **state)
{
    (void)state;
    skip_on_slob("constructors run per allocation, not per slab (test_slob checks a failing constructor)");
    memset(&kc, 0, sizeof kc);
    slab_cache_t *c = slab_cache_create("failing-ctor", sizeof(struct cobj), 0, 0,
                                        count_ctor, count_dtor, &kc);
    assert_non_null(c);
    size_t base_used = test_used_pages(); /* with the cache's descriptor */
    size_t k = test_stats(c).objs_per_slab;
    assert_true(k > 5);

    /* the 5th construction of the first slab fails */
    kc.fail_at = 5;
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(kc.ctor_calls, 5);
    assert_int_equal(kc.ctor_ok, 4);
    assert_int_equal(kc.dtor_calls, 4); /* the 4 constructed ones, not the failed one */
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.ctor_failures, 1);
    assert_int_equal(st.total_objs, 0);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.allocations, 0);
    assert_int_equal(test_used_pages(), base_used);
    assert_verify_clean();

    /* the constructor works again: so does allocation */
    struct cobj **objs = calloc(k + 1, sizeof *objs);
    assert_non_null(objs);
    objs[0] = slab_cache_alloc(c);
    assert_non_null(objs[0]);
    assert_int_equal(objs[0]->magic, CTOR_MAGIC);
    assert_ctor_balance(c);
    for (size_t i = 1; i < k; i++) {
        objs[i] = slab_cache_alloc(c);
        assert_non_null(objs[i]);
    }
    st = test_stats(c);
    assert_int_equal(st.full_slabs, 1);
    size_t used_one_slab = test_used_pages();

    /* a failure while growing a second slab leaves the first intact */
    kc.fail_at = kc.ctor_calls + 3;
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    assert_ctor_balance(c);
    st = test_stats(c);
    assert_int_equal(st.ctor_failures, 2);
    assert_int_equal(st.total_slabs, 1);
    assert_int_equal(st.active_objs, k);
    assert_int_equal(test_used_pages(), used_one_slab);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(objs[i]->magic, CTOR_MAGIC);
    assert_verify_clean();

    objs[k] = slab_cache_alloc(c);
    assert_non_null(objs[k]);
    assert_ctor_balance(c);
    for (size_t i = 0; i <= k; i++)
        slab_cache_free(c, objs[i]);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(kc.ctor_ok, kc.dtor_calls);
    free(objs);
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Waste                                                                */

static void check_geometry(const slab_cache_stats_t *st, size_t size, size_t align)
{
    size_t sb = slab_bytes_of(st);
    if (st->object_size != size || st->align != align ||
        st->stride != round_up(size, align))
        fail_msg("size %zu align %zu: stats say size %zu align %zu stride %zu", size, align,
                 st->object_size, st->align, st->stride);
    if (st->pages_per_slab == 0 || (st->pages_per_slab & (st->pages_per_slab - 1)) != 0 ||
        st->pages_per_slab > ((size_t)1 << SLAB_MAX_ORDER))
        fail_msg("size %zu: %zu pages per slab", size, st->pages_per_slab);
    if (st->objs_per_slab == 0 || st->objs_per_slab * st->stride > sb)
        fail_msg("size %zu: %zu objects of stride %zu in a slab of %zu bytes", size,
                 st->objs_per_slab, st->stride, sb);
    size_t waste = sb - st->objs_per_slab * st->stride;
    if (waste * 8 > sb)
        fail_msg("size %zu align %zu: %zu of %zu bytes wasted per slab (> 1/8)", size,
                 align, waste, sb);
    size_t unit = align > 64 ? align : 64;
    if (st->colours == 0 || (st->colours - 1) * unit > waste)
        fail_msg("size %zu: %zu colours but only %zu bytes left over", size, st->colours,
                 waste);
}

static void test_waste_every_size(void **state)
{
    (void)state;
    skip_on_slob("no slabs: the 1/8 waste bound and slab orders are the slab backend's");
    for (size_t size = 8; size <= SLAB_MAX_OBJECT_SIZE; size++) {
        slab_cache_t *c = slab_cache_create("waste", size, 0, 0, NULL, NULL, NULL);
        if (!c)
            fail_msg("create(%zu) failed: errno %d", size, errno);
        slab_cache_stats_t st;
        assert_int_equal(slab_cache_stats(c, &st), 0);
        check_geometry(&st, size, 8);
        if (slab_cache_destroy(c) != 0)
            fail_msg("destroy of the size-%zu cache failed", size);
    }
    expect_no_error();
}

static void test_waste_aligned_and_alloc(void **state)
{
    (void)state;
    skip_on_slob("no slabs: the 1/8 waste bound and slab orders are the slab backend's");
    for (size_t align = 16; align <= SLAB_PAGE_SIZE; align *= 2) {
        for (size_t size = 1; size <= SLAB_MAX_OBJECT_SIZE; size += 1021) {
            slab_cache_t *c = slab_cache_create("waste-al", size, align, 0, NULL, NULL, NULL);
            assert_non_null(c);
            slab_cache_stats_t st = test_stats(c);
            check_geometry(&st, size, align);
            assert_int_equal(slab_cache_destroy(c), 0);
        }
    }

    /* one object for a sample of sizes: powers of two, their neighbours,
     * and a stride through the whole range */
    size_t sample[256], ns = 0;
    for (size_t p = 8; p <= SLAB_MAX_OBJECT_SIZE; p *= 2) {
        sample[ns++] = p - 1;
        sample[ns++] = p;
        if (p + 1 <= SLAB_MAX_OBJECT_SIZE)
            sample[ns++] = p + 1;
    }
    for (size_t s = 8; s <= SLAB_MAX_OBJECT_SIZE && ns < 256; s += 4099)
        sample[ns++] = s;
    for (size_t i = 0; i < ns; i++) {
        size_t size = sample[i];
        slab_cache_t *c = slab_cache_create("sample", size, 0, 0, NULL, NULL, NULL);
        assert_non_null(c);
        unsigned char *p = slab_cache_alloc(c);
        if (!p)
            fail_msg("size %zu: allocation failed: errno %d", size, errno);
        assert_int_equal((uintptr_t)p % 8, 0);
        assert_owner(p, c);
        assert_owner(p + size - 1, c);
        memset(p, 0x3c, size);
        slab_cache_stats_t st = test_stats(c);
        check_geometry(&st, size, 8);
        assert_int_equal(st.active_objs, 1);
        assert_int_equal(st.total_slabs, 1);
        slab_cache_free(c, p);
        assert_int_equal(slab_cache_destroy(c), 0);
    }
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Colouring                                                            */

static void check_colouring(size_t size, size_t align)
{
    slab_cache_t *c = slab_cache_create("colour", size, align, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    size_t sb = slab_bytes_of(&st), k = st.objs_per_slab;
    size_t unit = st.align > 64 ? st.align : 64;
    size_t ncol = st.colours;
    assert_true(ncol > 1);

    size_t nslabs = 2 * ncol + 2;
    size_t n = nslabs * k;
    uintptr_t *objs = malloc(n * sizeof *objs);
    uintptr_t *bases = malloc(nslabs * sizeof *bases);
    size_t *lowest = malloc(nslabs * sizeof *lowest);
    assert_non_null(objs);
    assert_non_null(bases);
    assert_non_null(lowest);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = slab_cache_alloc(c);
        assert_non_null(p);
        objs[i] = (uintptr_t)p;
        uintptr_t b = slab_base(p, sb);
        size_t off = (uintptr_t)p & (sb - 1);
        size_t s;
        for (s = 0; s < seen; s++)
            if (bases[s] == b)
                break;
        if (s == seen) {
            assert_true(seen < nslabs);
            bases[seen] = b;
            lowest[seen] = off;
            seen++;
        } else if (off < lowest[s]) {
            lowest[s] = off;
        }
    }
    assert_int_equal(seen, nslabs);

    for (size_t s = 0; s < nslabs; s++) {
        if (lowest[s] % unit != 0 || lowest[s] >= ncol * unit)
            fail_msg("size %zu: slab %zu starts its objects at offset %zu (unit %zu, %zu "
                     "colours)", size, s, lowest[s], unit, ncol);
        assert_true(lowest[s] + k * st.stride <= sb);
        if (s > 0) {
            if (lowest[s] == lowest[s - 1])
                fail_msg("size %zu: slabs %zu and %zu have the same colour %zu", size,
                         s - 1, s, lowest[s]);
            size_t next = (lowest[s - 1] + unit) % (ncol * unit);
            if (lowest[s] != next)
                fail_msg("size %zu: slab %zu has colour %zu after %zu; want %zu", size, s,
                         lowest[s], lowest[s - 1], next);
        }
    }
    /* every one of the colours is used within any ncol successive slabs */
    for (size_t col = 0; col < ncol; col++) {
        int found = 0;
        for (size_t s = 0; s < ncol; s++)
            found |= lowest[s] == col * unit;
        if (!found)
            fail_msg("size %zu: colour %zu never used", size, col * unit);
    }
    /* objects of a slab are laid out at colour + i * stride */
    for (size_t i = 0; i < n; i++) {
        size_t off = objs[i] & (sb - 1);
        for (size_t s = 0; s < nslabs; s++)
            if (bases[s] == slab_base((void *)objs[i], sb))
                assert_int_equal((off - lowest[s]) % st.stride, 0);
    }
    for (size_t i = 0; i < n; i++)
        slab_cache_free(c, (void *)objs[i]);
    free(objs);
    free(bases);
    free(lowest);
    assert_int_equal(slab_cache_destroy(c), 0);
}

static void test_colouring(void **state)
{
    (void)state;
    skip_on_slob("no slab colouring");
    /* sizes whose slabs have at least two cache lines left over */
    const size_t sizes[] = {300, 200, 700, 1000, 1200, 2500, 96 * 3 + 8};
    size_t tested = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        slab_cache_t *c = slab_cache_create("probe", sizes[i], 0, 0, NULL, NULL, NULL);
        assert_non_null(c);
        slab_cache_stats_t st = test_stats(c);
        size_t left = slab_bytes_of(&st) - st.objs_per_slab * st.stride;
        assert_int_equal(slab_cache_destroy(c), 0);
        if (left >= 3 * 64) {
            if (st.colours < 2)
                fail_msg("size %zu: %zu bytes left over per slab but %zu colour", sizes[i],
                         left, st.colours);
        }
        if (st.colours > 1) {
            check_colouring(sizes[i], 0);
            tested++;
        }
    }
    assert_true(tested >= 2);
    /* with an alignment above the cache line the unit is the alignment */
    slab_cache_t *c = slab_cache_create("probe", 200, 128, 0, NULL, NULL, NULL);
    assert_non_null(c);
    size_t cols = test_stats(c).colours;
    assert_int_equal(slab_cache_destroy(c), 0);
    if (cols > 1)
        check_colouring(200, 128);
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Shrinking                                                            */

static void test_shrink(void **state)
{
    (void)state;
    skip_on_slob("no free slabs are kept: a SLOB page goes back to the buddy allocator once empty (test_slob checks page release)");
    slab_cache_t *c = slab_cache_create("shrinker", 256, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    size_t k = st.objs_per_slab, pps = st.pages_per_slab;
    size_t n = 3 * k + 1;
    void **objs = calloc(n, sizeof *objs);
    assert_non_null(objs);
    for (size_t i = 0; i < n; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));

    /* a shrink with no free slab releases nothing */
    size_t used = test_used_pages();
    assert_int_equal(slab_cache_shrink(c), 0);
    assert_int_equal(test_used_pages(), used);

    /* free the first three slabs entirely; keep the last object */
    for (size_t i = 0; i < 3 * k; i++)
        slab_cache_free(c, objs[i]);
    st = test_stats(c);
    assert_stats_coherent(&st);
    size_t nfree = st.free_slabs;
    uint64_t reaped = st.reaped;
    assert_true(nfree >= 1); /* a few free slabs are kept for reuse */
    assert_int_equal(nfree + reaped, 3);
    used = test_used_pages();

    size_t released = slab_cache_shrink(c);
    assert_int_equal(released, nfree);
    assert_int_equal(test_used_pages(), used - released * pps);
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.free_slabs, 0);
    assert_int_equal(st.reaped, reaped + released);
    assert_int_equal(st.total_slabs, 1);
    assert_int_equal(st.partial_slabs, 1);
    assert_int_equal(st.active_objs, 1);
    assert_int_equal(slab_cache_shrink(c), 0);

    /* the partial slab survives shrinking, with its object */
    assert_owner(objs[3 * k], c);
    slab_cache_free(c, objs[3 * k]);
    st = test_stats(c);
    used = test_used_pages();
    released = slab_cache_shrink(c);
    assert_int_equal(released, st.free_slabs);
    assert_int_equal(test_used_pages(), used - released * pps);
    assert_int_equal(test_stats(c).total_slabs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    free(objs);
    assert_verify_clean();
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* slab_owner                                                           */

static int global_object;

static void test_owner(void **state)
{
    (void)state;
    slab_cache_t *a = slab_cache_create("owner-a", 100, 0, 0, NULL, NULL, NULL);
    slab_cache_t *b = slab_cache_create("owner-b", 5000, 0, 0, NULL, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    unsigned char *pa[50], *pb[10];
    for (int i = 0; i < 50; i++) {
        pa[i] = slab_cache_alloc(a);
        assert_non_null(pa[i]);
    }
    for (int i = 0; i < 10; i++) {
        pb[i] = slab_cache_alloc(b);
        assert_non_null(pb[i]);
    }
    for (int i = 0; i < 50; i++) {
        assert_owner(pa[i], a);
        assert_owner(pa[i] + 1, a);
        assert_owner(pa[i] + 50, a);
        assert_owner(pa[i] + 99, a);
    }
    for (int i = 0; i < 10; i++) {
        assert_owner(pb[i], b);
        assert_owner(pb[i] + 4096, b);
        assert_owner(pb[i] + 4999, b);
    }
    /* a free object still lies in a slab of its cache */
    slab_cache_free(a, pa[49]);
    assert_owner(pa[49], a);

    int local = 0;
    void *heap = malloc(64);
    assert_non_null(heap);
    assert_null(slab_owner(&local));
    assert_null(slab_owner(heap));
    assert_null(slab_owner(&global_object));
    assert_null(slab_owner(NULL));
    assert_null(slab_owner((void *)(uintptr_t)test_owner));
    free(heap);
    unsigned char *pages = slab_pages_alloc(1);
    assert_non_null(pages);
    assert_null(slab_owner(pages));
    assert_null(slab_owner(pages + 5000));
    slab_pages_free(pages, 1);

    for (int i = 0; i < 49; i++)
        slab_cache_free(a, pa[i]);
    for (int i = 0; i < 10; i++)
        slab_cache_free(b, pb[i]);
    assert_int_equal(slab_cache_destroy(a), 0);
    assert_int_equal(slab_cache_destroy(b), 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Statistics                                                           */

static void test_stats_exact(void **state)
{
    (void)state;
    skip_on_slob("the slab list figures are the slab backend's (test_slob checks SLOB's counters)");
    slab_cache_t *c = slab_cache_create("stats-exact", 128, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    assert_string_equal(st.name, "stats-exact");
    assert_int_equal(st.object_size, 128);
    assert_int_equal(st.stride, 128);
    assert_int_equal(st.align, 8);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.total_objs, 0);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.allocations, 0);
    assert_int_equal(st.frees, 0);
    assert_int_equal(st.high_mark, 0);
    assert_int_equal(st.grown, 0);
    assert_int_equal(st.reaped, 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.ctor_failures, 0);
    size_t k = st.objs_per_slab, sb = slab_bytes_of(&st);
    assert_true(k >= 4);

    size_t n = 2 * k + 3;
    void **objs = calloc(n + 1, sizeof *objs);
    assert_non_null(objs);
    for (size_t i = 0; i < n; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.active_objs, n);
    assert_int_equal(st.total_objs, 3 * k);
    assert_int_equal(st.total_slabs, 3);
    assert_int_equal(st.active_slabs, 3);
    assert_int_equal(st.full_slabs, 2);
    assert_int_equal(st.partial_slabs, 1);
    assert_int_equal(st.free_slabs, 0);
    assert_int_equal(st.allocations, n);
    assert_int_equal(st.frees, 0);
    assert_int_equal(st.high_mark, n);
    assert_int_equal(st.grown, 3);
    assert_int_equal(st.reaped, 0);

    /* the first k objects filled the first slab */
    for (size_t i = 1; i < k; i++)
        assert_int_equal(slab_base(objs[i], sb), slab_base(objs[0], sb));
    assert_true(slab_base(objs[k], sb) != slab_base(objs[0], sb));
    uintptr_t slab2 = slab_base(objs[k], sb), slab3 = slab_base(objs[2 * k], sb);

    /* empty the first slab */
    for (size_t i = 0; i < k; i++)
        slab_cache_free(c, objs[i]);
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.active_objs, k + 3);
    assert_int_equal(st.frees, k);
    assert_int_equal(st.allocations, n);
    assert_int_equal(st.high_mark, n);
    assert_int_equal(st.full_slabs, 1);
    assert_int_equal(st.partial_slabs, 1);
    assert_int_equal(st.free_slabs + st.reaped, 1);
    size_t free_slabs = st.free_slabs;

    /* one free in the full slab makes it partial */
    slab_cache_free(c, objs[k]);
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.full_slabs, 0);
    assert_int_equal(st.partial_slabs, 2);
    assert_int_equal(st.free_slabs, free_slabs);
    assert_int_equal(st.active_objs, k + 2);
    assert_int_equal(st.frees, k + 1);

    /* an allocation is served from a partial slab, not the free one */
    void *x = slab_cache_alloc(c);
    assert_non_null(x);
    assert_true(slab_base(x, sb) == slab2 || slab_base(x, sb) == slab3);
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.allocations, n + 1);
    assert_int_equal(st.active_objs, k + 3);
    assert_int_equal(st.high_mark, n);
    assert_int_equal(st.grown, 3);
    assert_int_equal(st.free_slabs, free_slabs);
    assert_int_equal(st.full_slabs + st.partial_slabs, 2);

    /* the high mark follows a new peak */
    size_t extra = n - (k + 3) + 2;
    void **more = calloc(extra, sizeof *more);
    assert_non_null(more);
    for (size_t i = 0; i < extra; i++)
        assert_non_null(more[i] = slab_cache_alloc(c));
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.active_objs, n + 2);
    assert_int_equal(st.high_mark, n + 2);
    assert_int_equal(st.allocations, n + 1 + extra);
    assert_int_equal(st.errors, 0);

    slab_cache_free(c, x);
    for (size_t i = k + 1; i < n; i++)
        slab_cache_free(c, objs[i]);
    for (size_t i = 0; i < extra; i++)
        slab_cache_free(c, more[i]);
    st = test_stats(c);
    assert_stats_coherent(&st);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.allocations, st.frees);
    assert_int_equal(st.frees, n + 1 + extra);
    assert_int_equal(st.full_slabs + st.partial_slabs, 0);
    assert_int_equal(st.high_mark, n + 2);
    assert_int_equal(slab_cache_destroy(c), 0);
    free(objs);
    free(more);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Destroying a busy cache                                              */

static void test_destroy_busy(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("busy-cache", 72, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    void *objs[38];
    for (int i = 0; i < 37; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    slab_cache_stats_t before = test_stats(c);

    test_errors_reset();
    errno = 0;
    assert_int_equal(slab_cache_destroy(c), -1);
    assert_int_equal(errno, EBUSY);
    expect_one_error(SLAB_ERR_BUSY);
    assert_int_equal(test_err.n, 37);
    assert_true(test_err.has_cache);
    assert_string_equal(test_err.cache, "busy-cache");
    if (!strstr(test_err.message, "busy-cache") || !strstr(test_err.message, "37"))
        fail_msg("BUSY message does not name the cache and the count: %s", test_err.message);
    test_errors_reset();

    /* the cache is as it was and still works */
    slab_cache_stats_t after = test_stats(c);
    assert_stats_same(&before, &after);
    assert_verify_clean();
    assert_string_equal(slab_cache_name(c), "busy-cache");
    for (int i = 0; i < 37; i++)
        assert_owner(objs[i], c);
    assert_non_null(objs[37] = slab_cache_alloc(c));
    memset(objs[37], 1, 72);
    for (int i = 0; i < 38; i++)
        slab_cache_free(c, objs[i]);
    assert_int_equal(test_stats(c).active_objs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Bad frees                                                            */

/* Free `ptr` to `c`, expect one report of `kind` about `ptr` naming `c`,
 * with no change to c or to `other` (but c's error counter). */
static void bad_free(slab_cache_t *c, void *ptr, slab_error_kind_t kind,
                     slab_cache_t *other)
{
    slab_cache_stats_t b1 = test_stats(c), b2 = test_stats(other);
    slab_buddy_info_t bb = test_buddy();
    test_errors_reset();
    slab_cache_free(c, ptr);
    expect_one_error(kind);
    if (test_err.ptr != ptr)
        fail_msg("report about %p names %p", ptr, test_err.ptr);
    assert_true(test_err.has_cache);
    assert_string_equal(test_err.cache, slab_cache_name(c));
    if (!strstr(test_err.function, "slab_cache_free"))
        fail_msg("report names function '%s', not slab_cache_free", test_err.function);
    test_errors_reset();
    slab_cache_stats_t a1 = test_stats(c), a2 = test_stats(other);
    assert_stats_same(&b1, &a1);
    assert_stats_same(&b2, &a2);
    assert_int_equal(a1.errors, b1.errors + 1);
    slab_buddy_info_t ba = test_buddy();
    assert_true(test_buddy_equal(&bb, &ba));
    assert_verify_clean();
}

static char static_buffer[256];

static void test_bad_frees(void **state)
{
    (void)state;
    slab_cache_t *a = slab_cache_create("alpha", 96, 0, 0, NULL, NULL, NULL);
    slab_cache_t *b = slab_cache_create("beta", 96, 0, 0, NULL, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    unsigned char *a1 = slab_cache_alloc(a), *a2 = slab_cache_alloc(a);
    unsigned char *b1 = slab_cache_alloc(b);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(b1);
    memset(a1, 0xa1, 96);
    memset(b1, 0xb1, 96);

    /* foreign pointers */
    char on_stack[96];
    memset(on_stack, 0, sizeof on_stack);
    bad_free(a, on_stack, SLAB_ERR_FOREIGN, b);
    void *heap = malloc(96);
    assert_non_null(heap);
    bad_free(a, heap, SLAB_ERR_FOREIGN, b);
    free(heap);
    bad_free(a, static_buffer, SLAB_ERR_FOREIGN, b);

    /* interior pointers (SLOB tells those not aligned for the cache only:
     * nothing records where its objects start) */
    bad_free(a, a1 + 1, SLAB_ERR_INTERIOR, b);
#ifndef SLAB_BACKEND_SLOB
    bad_free(a, a1 + 8, SLAB_ERR_INTERIOR, b);
    bad_free(a, a1 + 48, SLAB_ERR_INTERIOR, b);
#endif
    bad_free(a, a1 + 95, SLAB_ERR_INTERIOR, b);

    /* double free (a1 keeps the slab in use) */
    slab_cache_free(a, a2);
    expect_no_error();
    bad_free(a, a2, SLAB_ERR_DOUBLE_FREE, b);
    bad_free(a, a2, SLAB_ERR_DOUBLE_FREE, b);

#ifndef SLAB_BACKEND_SLOB
    /* the wrong cache: `cache` is the one given, `owner` the real one */
    bad_free(b, a1, SLAB_ERR_WRONG_CACHE, a);
    {
        slab_cache_stats_t before = test_stats(b);
        test_errors_reset();
        slab_cache_free(b, a1);
        expect_one_error(SLAB_ERR_WRONG_CACHE);
        assert_string_equal(test_err.cache, "beta");
        assert_true(test_err.has_owner);
        assert_string_equal(test_err.owner, "alpha");
        assert_ptr_equal(test_err.ptr, a1);
        slab_cache_stats_t after = test_stats(b);
        assert_int_equal(after.errors, before.errors + 1);
        test_errors_reset();
    }
    bad_free(a, b1, SLAB_ERR_WRONG_CACHE, b);
#else
    /* SLOB cannot tell which cache an object up to a page belongs to; a
     * slab_malloc() block is evidently no object of any cache */
    {
        void *km = slab_malloc(96);
        assert_non_null(km);
        bad_free(a, km, SLAB_ERR_WRONG_CACHE, b);
        slab_free(km);
    }
#endif
    /* a page block from the page allocator is no object */
    void *pg = slab_pages_alloc(0);
    assert_non_null(pg);
    {
        slab_cache_stats_t before = test_stats(a);
        test_errors_reset();
        slab_cache_free(a, pg);
        assert_int_equal(test_err.count, 1);
        assert_ptr_equal(test_err.ptr, pg);
        slab_cache_stats_t after = test_stats(a);
        assert_stats_same(&before, &after);
        test_errors_reset();
    }
    slab_pages_free(pg, 0);

    /* a NULL cache */
    {
        slab_cache_stats_t before = test_stats(a);
        test_errors_reset();
        slab_cache_free(NULL, a1);
        expect_one_error(SLAB_ERR_INVALID_ARG);
        test_errors_reset();
        slab_cache_stats_t after = test_stats(a);
        assert_stats_same(&before, &after);
    }

    /* nothing was lost: the objects are intact, live and free normally */
    for (int i = 0; i < 96; i++) {
        assert_int_equal(a1[i], 0xa1);
        assert_int_equal(b1[i], 0xb1);
    }
    assert_owner(a1, a);
    assert_owner(b1, b);
    assert_int_equal(test_stats(a).active_objs, 1);
    assert_int_equal(test_stats(b).active_objs, 1);
    slab_cache_free(a, a1);
    slab_cache_free(b, b1);
    expect_no_error();
    assert_int_equal(test_stats(a).active_objs, 0);
    assert_int_equal(test_stats(b).active_objs, 0);
    assert_verify_clean();
    assert_int_equal(slab_cache_destroy(a), 0);
    assert_int_equal(slab_cache_destroy(b), 0);
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Handles that are not caches                                          */

static void test_stale_cache_handle(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("short-lived", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(slab_cache_destroy(c), 0);
    size_t used = test_used_pages();

    /* destroying it again is reported, not a crash or a double free */
    test_errors_reset();
    errno = 0;
    assert_int_equal(slab_cache_destroy(c), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    /* nor is a pointer that was never a cache */
    char not_a_cache[256];
    memset(not_a_cache, 0, sizeof not_a_cache);
    slab_cache_stats_t st;
    errno = 0;
    assert_int_equal(slab_cache_stats((slab_cache_t *)(void *)not_a_cache, &st), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    errno = 0;
    assert_int_equal(slab_cache_destroy((slab_cache_t *)(void *)not_a_cache), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    assert_int_equal(test_used_pages(), used);
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* Nothing held back                                                    */

/* With every object freed and every cache destroyed, all pages are back
 * in the buddy allocator, coalesced into whole arenas, and at most one
 * (spare) arena stays mapped: nothing else keeps pages. */
static void test_destroy_returns_all_pages(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("last", 1000, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    void *p = slab_cache_alloc(c);
    assert_non_null(p);
    slab_cache_free(c, p);
    assert_int_equal(slab_cache_destroy(c), 0);
    test_check_buddy_strictly_free();
    assert_verify_clean();
}

int main(void)
{
    test_slab_layer_only();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_invalid, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_create_edges, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_error_kind_names, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_layout_many, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_hwcache_align, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_ctor_state_survives, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_dtor_on_release, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_ctor_failure, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_waste_every_size, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_waste_aligned_and_alloc, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_colouring, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_shrink, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_owner, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_stats_exact, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_busy, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_stale_cache_handle, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_returns_all_pages, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
