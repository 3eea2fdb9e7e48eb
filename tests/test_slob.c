/*
 * test_slob.c - the SLOB backend's own tests (built with
 * -DSLAB_BACKEND=slob only): the encoding of free blocks inside free
 * memory (one-unit blocks hold the negated offset of the next, longer
 * ones their size and that offset), coalescing with both neighbours, the
 * three lists by request size, pages going back to the buddy allocator
 * once empty, large requests straight from the buddy allocator, running
 * out of memory and recovering, constructors and destructors per
 * allocation, the misuse SLOB can tell, slab_verify() finding a damaged
 * free block, and four threads at once.
 *
 * The page-level checks read the free list through slob_page_info()
 * (src/slob.h), never memory directly.  Every test starts from a state
 * where the large list is empty (every page of it given back), so the
 * first large request of a test takes a fresh page.
 */
#include "slab_test.h"

#include "slob.h"

#define UNIT ((unsigned)SLOB_UNIT)
#define PAGE_UNITS ((unsigned)SLOB_PAGE_UNITS)

static unsigned unit_of(const void *p)
{
    return (unsigned)(((uintptr_t)p & (SLAB_PAGE_SIZE - 1)) / UNIT);
}

static struct slob_page_info page_info(const void *p)
{
    struct slob_page_info info;
    if (slob_page_info(p, &info) != 0)
        fail_msg("%p is not in a SLOB page", p);
    return info;
}

static void assert_not_slob_page(const void *p)
{
    struct slob_page_info info;
    errno = 0;
    assert_int_equal(slob_page_info(p, &info), -1);
    assert_int_equal(errno, EINVAL);
}

static void assert_block(const struct slob_page_info *in, unsigned i, unsigned off,
                         unsigned units)
{
    if (i >= in->nblocks)
        fail_msg("free block %u asked for; the page has %u", i, in->nblocks);
    if (in->blocks[i].off != off || in->blocks[i].units != units)
        fail_msg("free block %u is %u units at unit %u, want %u at %u", i,
                 in->blocks[i].units, in->blocks[i].off, units, off);
}

/* The encoding of free block i: a one-unit block holds -(next), a longer
 * one its size and next. */
static void assert_encoded(const struct slob_page_info *in, unsigned i, unsigned next)
{
    const struct slob_block_info *b = &in->blocks[i];
    if (b->units == 1) {
        assert_int_equal(b->raw[0], -(int)next);
    } else {
        assert_int_equal(b->raw[0], (int)b->units);
        assert_int_equal(b->raw[1], (int)next);
    }
}

static void assert_large_list_empty(void)
{
    size_t n[SLOB_LISTS];
    slob_list_pages(n);
    if (n[SLOB_LIST_LARGE] != 0)
        fail_msg("%zu pages on the large list at the start of a test", n[SLOB_LIST_LARGE]);
}

/* ------------------------------------------------------------------ */
/* The encoding                                                         */

static void test_encoding(void **state)
{
    (void)state;
    assert_large_list_empty();
    /* 1030 bytes are 515 units; the next object, 8-aligned, starts at
     * unit 516 and leaves a one-unit block at 515 */
    slab_cache_t *c = slab_cache_create("enc", 1030, 8, 0, NULL, NULL, NULL);
    assert_non_null(c);
    char *x1 = slab_cache_alloc(c), *x2 = slab_cache_alloc(c);
    assert_non_null(x1);
    assert_non_null(x2);
    assert_int_equal(unit_of(x1), 0);
    assert_int_equal(unit_of(x2), 516);
    assert_ptr_equal(page_info(x2).page, page_info(x1).page);

    struct slob_page_info in = page_info(x1);
    assert_int_equal(in.list, SLOB_LIST_LARGE);
    assert_true(in.listed);
    assert_int_equal(in.nblocks, 2);
    assert_block(&in, 0, 515, 1);
    assert_block(&in, 1, 1031, PAGE_UNITS - 1031);
    assert_encoded(&in, 0, 1031);        /* raw[0] == -1031 */
    assert_encoded(&in, 1, PAGE_UNITS);  /* size, then "no next" */
    assert_int_equal(in.units_free, 1 + PAGE_UNITS - 1031);

    /* x1 merges with the one-unit block after it */
    slab_cache_free(c, x1);
    in = page_info(x2);
    assert_int_equal(in.nblocks, 2);
    assert_block(&in, 0, 0, 516);
    assert_encoded(&in, 0, 1031);
    assert_int_equal(in.units_free, 516 + PAGE_UNITS - 1031);

    /* x2 was the last: the page goes back to the buddy allocator */
    void *page = in.page;
    slab_cache_free(c, x2);
    assert_not_slob_page(page);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* Four 1024-byte objects fill a page; free a, c, then b: one block. */
static void test_coalescing(void **state)
{
    (void)state;
    assert_large_list_empty();
    slab_cache_t *c = slab_cache_create("coalesce", 1024, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    char *o[4];
    for (int i = 0; i < 4; i++) {
        assert_non_null(o[i] = slab_cache_alloc(c));
        assert_int_equal(unit_of(o[i]), (unsigned)i * 512);
    }
    struct slob_page_info in = page_info(o[0]);
    assert_int_equal(in.units_free, 0);
    assert_false(in.listed); /* a full page is on no list */
    assert_int_equal(in.nblocks, 0);

    slab_cache_free(c, o[0]);
    in = page_info(o[3]);
    assert_true(in.listed);
    assert_int_equal(in.nblocks, 1);
    assert_block(&in, 0, 0, 512);
    assert_encoded(&in, 0, PAGE_UNITS);

    slab_cache_free(c, o[2]);
    in = page_info(o[3]);
    assert_int_equal(in.nblocks, 2);
    assert_block(&in, 0, 0, 512);
    assert_block(&in, 1, 1024, 512);
    assert_encoded(&in, 0, 1024); /* address order: a links to c */
    assert_encoded(&in, 1, PAGE_UNITS);

    slab_cache_free(c, o[1]); /* b joins the blocks before and after it */
    in = page_info(o[3]);
    assert_int_equal(in.nblocks, 1);
    assert_block(&in, 0, 0, 1536);
    assert_encoded(&in, 0, PAGE_UNITS);
    assert_int_equal(in.units_free, 1536);
    assert_verify_clean();

    /* freed memory is used again, first fit from the page's start */
    char *again = slab_cache_alloc(c);
    assert_ptr_equal(again, o[0]);
    slab_cache_free(c, again);
    slab_cache_free(c, o[3]);
    assert_not_slob_page(o[3]);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* The three lists                                                      */

static void test_three_lists(void **state)
{
    (void)state;
    assert_large_list_empty();
    /* slab_malloc sizes count their 16-byte header: 116, 516, 2016 */
    char *s = slab_malloc(100), *m = slab_malloc(500), *l = slab_malloc(2000);
    assert_non_null(s);
    assert_non_null(m);
    assert_non_null(l);
    assert_int_equal(page_info(s).list, SLOB_LIST_SMALL);
    assert_int_equal(page_info(m).list, SLOB_LIST_MEDIUM);
    assert_int_equal(page_info(l).list, SLOB_LIST_LARGE);
    assert_int_equal(slab_usable_size(s), 100);
    assert_int_equal(slab_usable_size(m), 500);
    assert_int_equal(slab_usable_size(l), 2000);

    /* cache objects by their size alone */
    slab_cache_t *cs = slab_cache_create("small", 200, 0, 0, NULL, NULL, NULL);
    slab_cache_t *cm = slab_cache_create("medium", 1000, 0, 0, NULL, NULL, NULL);
    slab_cache_t *cl = slab_cache_create("large", 1024, 0, 0, NULL, NULL, NULL);
    void *os = slab_cache_alloc(cs), *om = slab_cache_alloc(cm), *ol = slab_cache_alloc(cl);
    assert_int_equal(page_info(os).list, SLOB_LIST_SMALL);
    assert_int_equal(page_info(om).list, SLOB_LIST_MEDIUM);
    assert_int_equal(page_info(ol).list, SLOB_LIST_LARGE);
    /* the 1024-byte object shares the 2016-byte block's page */
    assert_ptr_equal(page_info(ol).page, page_info(l).page);
    slab_cache_free(cs, os);
    slab_cache_free(cm, om);
    slab_cache_free(cl, ol);
    slab_free(s);
    slab_free(m);
    slab_free(l);
    assert_int_equal(slab_cache_destroy(cs), 0);
    assert_int_equal(slab_cache_destroy(cm), 0);
    assert_int_equal(slab_cache_destroy(cl), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* Pages back to the buddy allocator; large requests                    */

static void test_page_release(void **state)
{
    (void)state;
    size_t used0 = test_used_pages();
    slab_memory_info_t m0;
    assert_int_equal(slab_memory_info(&m0), 0);
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        assert_non_null(p[i] = slab_malloc(40 + (size_t)(i % 7) * 30));
        memset(p[i], i & 0xff, 40);
    }
    size_t used = test_used_pages();
    assert_true(used > used0 + 20); /* 2000 blocks of 56 to 236 bytes */
    slab_memory_info_t m1;
    assert_int_equal(slab_memory_info(&m1), 0);
    assert_int_equal(m1.slab_bytes - m0.slab_bytes, (used - used0) * SLAB_PAGE_SIZE);
    assert_verify_clean();
    /* every other block: pages stay, half free */
    for (int i = 0; i < N; i += 2)
        slab_free(p[i]);
    assert_int_equal(test_used_pages(), used);
    assert_verify_clean();
    for (int i = 1; i < N; i += 2) {
        for (size_t b = 0; b < 40; b++)
            if (((unsigned char *)p[i])[b] != (unsigned char)(i & 0xff))
                fail_msg("block %d overwritten at byte %zu", i, b);
        slab_free(p[i]);
    }
    /* every page is back, visible in the buddy and memory figures */
    assert_int_equal(test_used_pages(), used0);
    slab_memory_info_t m2;
    assert_int_equal(slab_memory_info(&m2), 0);
    assert_int_equal(m2.slab_bytes, m0.slab_bytes);
    assert_int_equal(m2.free_bytes, m0.free_bytes);
    expect_no_error();
    assert_verify_clean();
}

static void test_large_requests(void **state)
{
    (void)state;
    size_t used0 = test_used_pages();
    slab_memory_info_t m0;
    assert_int_equal(slab_memory_info(&m0), 0);

    /* more than fits a page with its header: whole buddy blocks */
    char *a = slab_malloc(SLOB_KM_MAX + 1), *b = slab_malloc(5000), *c = slab_malloc(40000);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal((uintptr_t)a % SLAB_PAGE_SIZE, 0);
    assert_int_equal((uintptr_t)b % SLAB_PAGE_SIZE, 0);
    assert_not_slob_page(a);
    assert_int_equal(slab_usable_size(a), SLAB_PAGE_SIZE);
    assert_int_equal(slab_usable_size(b), 2 * SLAB_PAGE_SIZE);
    assert_int_equal(slab_usable_size(c), 16 * SLAB_PAGE_SIZE);
    assert_int_equal(test_used_pages(), used0 + 1 + 2 + 16);
    slab_memory_info_t m1;
    assert_int_equal(slab_memory_info(&m1), 0);
    assert_int_equal(m1.run_bytes - m0.run_bytes, 19 * SLAB_PAGE_SIZE);
    /* the largest that fits does not */
    char *fit = slab_malloc(SLOB_KM_MAX);
    assert_non_null(fit);
    assert_int_equal(page_info(fit).list, SLOB_LIST_LARGE);
    slab_free(fit);

    /* cache objects above a page: a block each, owner known */
    slab_cache_t *big = slab_cache_create("big", 3 * SLAB_PAGE_SIZE, 0, 0, NULL, NULL, NULL);
    assert_non_null(big);
    size_t used1 = test_used_pages(); /* with the cache's descriptor */
    char *o = slab_cache_alloc(big);
    assert_non_null(o);
    assert_int_equal((uintptr_t)o % SLAB_PAGE_SIZE, 0);
    assert_ptr_equal(slab_owner(o), big);
    assert_ptr_equal(slab_owner(o + 3 * SLAB_PAGE_SIZE - 1), big);
    assert_int_equal(test_used_pages(), used1 + 4);
    slab_cache_stats_t st = test_stats(big);
    assert_int_equal(st.pages_per_slab, 4);
    assert_int_equal(st.total_slabs, 1);
    slab_cache_free(big, o);
    slab_cache_free(big, o); /* the block is free pages now */
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    assert_int_equal(slab_cache_destroy(big), 0);

    slab_free(a);
    slab_free(b);
    slab_free(c);
    assert_int_equal(test_used_pages(), used0);
    expect_no_error();
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                        */

/* The page source: the default one, refusing while told to. */
static test_fail_source_t fsrc;

static void test_out_of_memory(void **state)
{
    (void)state;
    size_t used0 = test_used_pages();
    /* on the small list, as the 100-byte blocks below */
    slab_cache_t *c = slab_cache_create("oom", 100, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    test_held_pages_t held;
    test_take_all_free_pages(&held, TEST_MAX_HELD);
    atomic_store(&fsrc.failing, 1);
    size_t refused0 = atomic_load(&fsrc.refused);

    /* fill what the SLOB pages in use still hold, then fail */
    enum { MAX = 4096 };
    static void *p[MAX];
    size_t n = 0;
    errno = 0;
    while (n < MAX && (p[n] = slab_malloc(100)) != NULL)
        n++;
    assert_true(n < MAX);
    assert_int_equal(errno, ENOMEM);
    assert_true(atomic_load(&fsrc.refused) > refused0);
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_malloc(3000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_malloc(10000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_calloc(1, 100));
    assert_int_equal(errno, ENOMEM);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.allocations, 0);
    assert_verify_clean();

    /* a free makes room again, with the source still refusing */
    if (n > 0) {
        slab_free(p[--n]);
        assert_non_null(p[n] = slab_malloc(100));
        n++;
    }
    for (size_t i = 0; i < n; i++)
        slab_free(p[i]);
    void *o = slab_cache_alloc(c); /* the freed units serve the cache too */
    assert_non_null(o);
    slab_cache_free(c, o);

    atomic_store(&fsrc.failing, 0);
    test_give_back_pages(&held);
    assert_non_null(o = slab_cache_alloc(c));
    slab_cache_free(c, o);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(test_used_pages(), used0);
    expect_no_error();
    assert_verify_clean();
}

/* ------------------------------------------------------------------ */
/* Constructors, counters, misuse                                       */

struct ctor_count {
    unsigned ctors, dtors, fail_at;
};

static int count_ctor(void *obj, void *arg)
{
    struct ctor_count *k = arg;
    if (++k->ctors == k->fail_at)
        return -1;
    memset(obj, 0x5c, 64);
    return 0;
}

static void count_dtor(void *obj, void *arg)
{
    struct ctor_count *k = arg;
    for (int i = 0; i < 64; i++)
        if (((unsigned char *)obj)[i] != 0x5c)
            fail_msg("destructor of %p: byte %d not as constructed", obj, i);
    k->dtors++;
}

static void test_ctor_per_allocation(void **state)
{
    (void)state;
    size_t used0 = test_used_pages();
    struct ctor_count k = {0};
    slab_cache_t *c = slab_cache_create("ctor", 64, 0, 0, count_ctor, count_dtor, &k);
    assert_non_null(c);
    void *o[10];
    for (int i = 0; i < 10; i++) {
        assert_non_null(o[i] = slab_cache_alloc(c));
        assert_int_equal(((unsigned char *)o[i])[63], 0x5c); /* handed out constructed */
    }
    assert_int_equal(k.ctors, 10);
    for (int i = 0; i < 10; i++)
        slab_cache_free(c, o[i]);
    assert_int_equal(k.dtors, 10);
    assert_non_null(o[0] = slab_cache_alloc(c));
    assert_int_equal(k.ctors, 11); /* again, on every allocation */
    slab_cache_free(c, o[0]);
    assert_int_equal(k.dtors, 11);

    /* a constructor that fails: NULL, ENOMEM, nothing kept */
    k.fail_at = k.ctors + 1;
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(k.dtors, 11);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.ctor_failures, 1);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.allocations, 11);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(test_used_pages(), used0);
    expect_no_error();
    assert_verify_clean();
}

static void test_counters(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("count", 100, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.stride, 104);
    assert_int_equal(st.objs_per_slab, SLAB_PAGE_SIZE / 104);
    assert_int_equal(st.total_slabs, 0);
    static void *o[200];
    for (int i = 0; i < 200; i++)
        assert_non_null(o[i] = slab_cache_alloc(c));
    for (int i = 0; i < 150; i++)
        slab_cache_free(c, o[i]);
    st = test_stats(c);
    assert_int_equal(st.allocations, 200);
    assert_int_equal(st.frees, 150);
    assert_int_equal(st.active_objs, 50);
    assert_int_equal(st.total_objs, 50);
    assert_int_equal(st.high_mark, 200);
    assert_int_equal(st.errors, 0);
    slab_cache_free(c, o[0]);
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    st = test_stats(c);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.frees, 150);
    for (int i = 150; i < 200; i++)
        slab_cache_free(c, o[i]);
    assert_int_equal(slab_cache_shrink(c), 0); /* nothing kept to release */
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

static void test_misuse(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("misuse", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    char *o = slab_cache_alloc(c), *keep = slab_cache_alloc(c);
    char *k = slab_malloc(64), *k2 = slab_malloc(64);
    assert_non_null(o);
    assert_non_null(keep);
    assert_non_null(k);
    assert_non_null(k2);
    memset(k, 0x11, 64);
    size_t used = test_used_pages();

    /* slab_free of a cache's object: SLOB cannot tell whose it is */
    slab_free(o);
    expect_one_error(SLAB_ERR_INTERIOR);
    test_errors_reset();
    assert_null(slab_owner(o));
    assert_int_equal(slab_usable_size(o), 0);
    expect_one_error(SLAB_ERR_INTERIOR);
    test_errors_reset();
    /* a slab_malloc block to a cache */
    slab_cache_free(c, k);
    expect_one_error(SLAB_ERR_WRONG_CACHE);
    test_errors_reset();
    /* interior and misaligned pointers */
    slab_free(k + 16);
    expect_one_error(SLAB_ERR_INTERIOR);
    test_errors_reset();
    slab_cache_free(c, o + 4);
    expect_one_error(SLAB_ERR_INTERIOR);
    test_errors_reset();
    /* double frees, while the page lives on */
    slab_free(k2);
    slab_free(k2);
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    slab_cache_free(c, o);
    slab_cache_free(c, o);
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    /* a stale cache handle, and a pointer that is none */
    slab_cache_t *gone = slab_cache_create("gone", 32, 0, 0, NULL, NULL, NULL);
    assert_int_equal(slab_cache_destroy(gone), 0);
    errno = 0;
    assert_null(slab_cache_alloc(gone));
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    /* nothing lost */
    assert_int_equal(test_used_pages(), used);
    for (int i = 0; i < 64; i++)
        assert_int_equal((unsigned char)k[i], 0x11);
    assert_verify_clean();
    slab_free(k);
    slab_cache_free(c, keep);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* Features of the slab backend alone answer with a clear error. */
static void test_slab_only_features(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(slab_stats_live(1), -1);
    assert_int_equal(errno, ENOSYS);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    assert_int_equal(slab_stats_live(0), 0);
    expect_no_error();
    assert_int_equal(slab_size_class_count(), 0);
    assert_null(slab_kmalloc_cache(64));
    /* debug flags are accepted and ignored, as Linux's SLOB did */
    slab_cache_t *c = slab_cache_create("dbg", 64, 0, SLAB_RED_ZONE | SLAB_POISON, NULL, NULL,
                                        NULL);
    assert_non_null(c);
    assert_int_equal(test_stats(c).flags & SLAB_DEBUG_FLAGS, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* slab_verify() reads the encoding: a free block written to is found. */
static void test_verify_finds_damage(void **state)
{
    (void)state;
    assert_large_list_empty();
    slab_cache_t *c = slab_cache_create("damage", 1024, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    char *a = slab_cache_alloc(c), *b = slab_cache_alloc(c);
    assert_non_null(a);
    assert_non_null(b);
    slab_cache_free(c, a);
    assert_verify_clean();
    slob_t saved[2];
    memcpy(saved, a, sizeof saved);
    memset(a, 0x7f, sizeof saved); /* a write after free over size and link */
    test_errors_reset();
    assert_true(slab_verify() > 0);
    assert_true(test_errors_of_kind(SLAB_ERR_CORRUPT) > 0);
    test_errors_reset();
    memcpy(a, saved, sizeof saved);
    assert_verify_clean();
    slab_cache_free(c, b);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */

#define THREADS 4

struct worker {
    pthread_t tid;
    int id;
    slab_cache_t *caches[2];
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1);
    enum { SLOTS = 64 };
    void *p[SLOTS] = {0};
    size_t n[SLOTS] = {0};
    int kind[SLOTS] = {0};
    size_t iters = test_scaled(20000);
    for (size_t it = 0; it < iters; it++) {
        uint64_t r = test_rand(&rng);
        unsigned s = (unsigned)(r % SLOTS);
        if (p[s]) {
            if (kind[s] == 0) {
                if (!test_check_pattern(p[s], n[s], 0, w->id))
                    break;
                slab_free(p[s]);
            } else {
                slab_cache_t *c = w->caches[kind[s] - 1];
                if (!test_check_pattern(p[s], n[s], 0, w->id))
                    break;
                slab_cache_free(c, p[s]);
            }
            p[s] = NULL;
            continue;
        }
        kind[s] = (int)((r >> 8) % 3);
        if (kind[s] == 0) {
            n[s] = 16 + (size_t)((r >> 16) % 3000);
            p[s] = slab_malloc(n[s]);
        } else {
            slab_cache_t *c = w->caches[kind[s] - 1];
            n[s] = slab_cache_object_size(c);
            p[s] = slab_cache_alloc(c);
        }
        if (!p[s]) {
            thread_fail("thread %d: allocation of %zu bytes failed", w->id, n[s]);
            break;
        }
        test_put_pattern(p[s], n[s], 0);
    }
    for (unsigned s = 0; s < SLOTS; s++)
        if (p[s]) {
            if (kind[s] == 0)
                slab_free(p[s]);
            else
                slab_cache_free(w->caches[kind[s] - 1], p[s]);
        }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    size_t used0 = test_used_pages();
    slab_cache_t *c1 = slab_cache_create("thr-40", 40, 0, 0, NULL, NULL, NULL);
    slab_cache_t *c2 = slab_cache_create("thr-700", 700, 16, 0, NULL, NULL, NULL);
    assert_non_null(c1);
    assert_non_null(c2);
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.id = i, .caches = {c1, c2}};
        assert_int_equal(pthread_create(&w[i].tid, NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
    assert_no_thread_failures();
    assert_int_equal(test_stats(c1).active_objs, 0);
    assert_int_equal(test_stats(c2).active_objs, 0);
    assert_verify_clean();
    assert_int_equal(slab_cache_destroy(c1), 0);
    assert_int_equal(slab_cache_destroy(c2), 0);
    assert_int_equal(test_used_pages(), used0);
    expect_no_error();
}

static int teardown(void **state)
{
    atomic_store(&fsrc.failing, 0); /* after a failed test too */
    return test_teardown(state);
}

static int group_setup(void **state)
{
    if (!test_fail_source_install(&fsrc, slab_default_page_source()))
        return -1;
    return test_group_setup(state);
}

int main(void)
{
    test_no_automatic_reap();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_encoding, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalescing, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_lists, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_release, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_requests, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctor_per_allocation, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_slab_only_features, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_finds_damage, test_setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, test_setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
