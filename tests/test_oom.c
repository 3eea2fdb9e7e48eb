/*
 * test_oom.c - running out of memory at every point a workload maps some.
 *
 * A counting page source wraps the default one: it records every live
 * mapping, the bytes outstanding, and fails from its k-th map() on when
 * asked (memory stays short: libslab's reclaim-and-retry must not get
 * round it).  For k = 1, 2, 3, ... a workload (two caches, one with a
 * constructor, enough objects for several arenas, plus large page
 * blocks) runs with maps failing from the k-th on.  Every NULL must carry ENOMEM, the
 * heap must verify, and after everything is freed the source must hold
 * exactly what it held before.  The loop ends with the first run whose
 * maps all succeed.
 */
#include "slab_test.h"

/* ------------------------------------------------------------------ */
/* The counting page source                                             */

#define MAX_MAPPINGS 4096

struct mapping {
    uintptr_t addr;
    size_t size;
};

struct counting_source {
    size_t maps, unmaps, decommits;
    size_t failures;       /* maps refused */
    size_t fail_at;        /* refuse maps from this number on (0: never) */
    size_t outstanding;    /* bytes mapped and not unmapped */
    size_t bad_unmaps;     /* unmap of something this source did not map */
    size_t bad_decommits;  /* decommit outside a live mapping */
    size_t bad_args;       /* bad size/alignment, wrong ctx, misaligned result */
    size_t nlive;
    struct mapping live[MAX_MAPPINGS];
};

static const slab_page_source_t *def_source;

static void *counting_map(void *ctx, size_t size, size_t align)
{
    struct counting_source *s = ctx;
    s->maps++;
    if (size == 0 || size % SLAB_PAGE_SIZE != 0 || align < SLAB_PAGE_SIZE ||
        (align & (align - 1)) != 0)
        s->bad_args++;
    if (s->fail_at && s->maps >= s->fail_at) {
        s->failures++;
        return NULL;
    }
    void *p = def_source->map(def_source->ctx, size, align);
    if (!p)
        return NULL;
    if ((uintptr_t)p % align != 0)
        s->bad_args++;
    if (s->nlive == MAX_MAPPINGS) {
        s->bad_args++;
        def_source->unmap(def_source->ctx, p, size);
        return NULL;
    }
    s->live[s->nlive].addr = (uintptr_t)p;
    s->live[s->nlive].size = size;
    s->nlive++;
    s->outstanding += size;
    return p;
}

static void counting_unmap(void *ctx, void *addr, size_t size)
{
    struct counting_source *s = ctx;
    s->unmaps++;
    for (size_t i = 0; i < s->nlive; i++) {
        if (s->live[i].addr == (uintptr_t)addr && s->live[i].size == size) {
            s->live[i] = s->live[--s->nlive];
            s->outstanding -= size;
            def_source->unmap(def_source->ctx, addr, size);
            return;
        }
    }
    s->bad_unmaps++; /* not ours: leave it alone */
}

static void counting_decommit(void *ctx, void *addr, size_t size)
{
    struct counting_source *s = ctx;
    s->decommits++;
    uintptr_t a = (uintptr_t)addr;
    for (size_t i = 0; i < s->nlive; i++) {
        if (a >= s->live[i].addr && a + size <= s->live[i].addr + s->live[i].size) {
            if (def_source->decommit)
                def_source->decommit(def_source->ctx, addr, size);
            return;
        }
    }
    s->bad_decommits++;
}

static void install(struct counting_source *s)
{
    slab_page_source_t src = {
        .map = counting_map,
        .unmap = counting_unmap,
        .decommit = counting_decommit,
        .ctx = s,
    };
    slab_set_page_source(&src);
}

static void assert_source_clean(const struct counting_source *s)
{
    assert_int_equal(s->bad_unmaps, 0);
    assert_int_equal(s->bad_decommits, 0);
    assert_int_equal(s->bad_args, 0);
}

static struct counting_source src_main, src_other;

static int group_setup(void **state)
{
    (void)state;
    def_source = slab_default_page_source();
    if (!def_source || !def_source->map || !def_source->unmap)
        return -1;
    install(&src_main);
    test_take_reserve();
    return 0;
}


/* ------------------------------------------------------------------ */
/* The workload                                                         */

#define SMALL_SIZE 200
#define BIG_SIZE 60000
#define N_SMALL 3000
#define N_BIG 150 /* about 9 MiB: slabs over more than two arenas */
#define N_PAGES 6

static const unsigned page_orders[N_PAGES] = {SLAB_MAX_ORDER, 9, 6, SLAB_MAX_ORDER, 8, 3};

struct workload {
    slab_cache_t *small, *big;
    void *s[N_SMALL];
    void *b[N_BIG];
    void *pages[N_PAGES];
    size_t nulls;           /* allocations that failed */
    size_t bad_errno;       /* ... without errno ENOMEM */
    size_t first_fail_step; /* where the first failure struck */
};

static struct workload w;

struct big_obj {
    uint64_t magic;
    unsigned char rest[BIG_SIZE - 8];
};
#define BIG_MAGIC 0xB16B16B16B16B16BULL

static size_t big_ctor_ok, big_dtor, big_bad_dtor;

static int big_ctor(void *obj, void *arg)
{
    (void)arg;
    ((struct big_obj *)obj)->magic = BIG_MAGIC;
    big_ctor_ok++;
    return 0;
}

static void big_dtor_fn(void *obj, void *arg)
{
    (void)arg;
    if (((struct big_obj *)obj)->magic != BIG_MAGIC)
        big_bad_dtor++;
    big_dtor++;
}

static void note_null(size_t step)
{
    if (errno != ENOMEM)
        w.bad_errno++;
    if (w.nulls++ == 0) {
        w.first_fail_step = step;
        /* right after the failure the heap is consistent */
        assert_verify_clean();
    }
}

static void run_workload(void)
{
    memset(&w, 0, sizeof w);
    size_t step = 0;

    errno = 0;
    w.small = slab_cache_create("oom-small", SMALL_SIZE, 0, 0, NULL, NULL, NULL);
    if (!w.small)
        note_null(step);
    step++;
    errno = 0;
    w.big = slab_cache_create("oom-big", BIG_SIZE, 0, 0, big_ctor, big_dtor_fn, NULL);
    if (!w.big)
        note_null(step);
    step++;

    size_t nb = 0, np = 0;
    for (size_t i = 0; i < N_SMALL; i++) {
        if (w.small) {
            errno = 0;
            w.s[i] = slab_cache_alloc(w.small);
            if (!w.s[i])
                note_null(step);
            else
                memset(w.s[i], (int)(i & 0xff), SMALL_SIZE);
            step++;
        }
        if (i % 20 == 0 && nb < N_BIG && w.big) {
            errno = 0;
            w.b[nb] = slab_cache_alloc(w.big);
            if (!w.b[nb])
                note_null(step);
            else if (((struct big_obj *)w.b[nb])->magic != BIG_MAGIC)
                fail_msg("big object %p not constructed", w.b[nb]);
            nb++;
            step++;
        }
        if (i % 500 == 250 && np < N_PAGES) {
            errno = 0;
            w.pages[np] = slab_pages_alloc(page_orders[np]);
            if (!w.pages[np])
                note_null(step);
            else
                memset(w.pages[np], 0x77, SLAB_PAGE_SIZE);
            np++;
            step++;
        }
    }
    assert_int_equal(np, N_PAGES);
    assert_verify_clean();
}

static void free_workload(void)
{
    for (size_t i = 0; i < N_SMALL; i++) {
        if (w.s[i]) {
            const unsigned char *p = w.s[i];
            if (p[0] != (unsigned char)(i & 0xff) || p[SMALL_SIZE - 1] != (unsigned char)(i & 0xff))
                fail_msg("small object %zu corrupted", i);
            slab_cache_free(w.small, w.s[i]);
        }
    }
    for (size_t i = 0; i < N_BIG; i++)
        if (w.b[i])
            slab_cache_free(w.big, w.b[i]);
    for (size_t i = 0; i < N_PAGES; i++)
        if (w.pages[i])
            slab_pages_free(w.pages[i], page_orders[i]);
    if (w.small)
        assert_int_equal(slab_cache_destroy(w.small), 0);
    if (w.big)
        assert_int_equal(slab_cache_destroy(w.big), 0);
    assert_int_equal(big_ctor_ok, big_dtor);
    assert_int_equal(big_bad_dtor, 0);
}

static void test_fail_every_map(void **state)
{
    (void)state;
    struct counting_source *s = &src_main;

    /* Warm up: one clean run leaves the one spare arena mapped. */
    size_t maps0 = s->maps;
    run_workload();
    assert_int_equal(w.nulls, 0);
    free_workload();
    size_t maps_per_run = s->maps - maps0;
    assert_true(maps_per_run >= 3); /* several arenas were needed */
    test_check_buddy_all_free();
    slab_buddy_info_t base_bi = test_buddy();
    size_t base_outstanding = s->outstanding;
    size_t base_nlive = s->nlive;
    /* the arena holding the library's reserve, and at most one spare */
    assert_true(base_bi.arenas >= 1 && base_bi.arenas <= 1 + (test_reserve > 0));
    assert_true(base_outstanding >= SLAB_ARENA_SIZE);
    assert_source_clean(s);
    expect_no_error();

    size_t runs_with_failure = 0;
    size_t k;
    for (k = 1; k < 1000; k++) {
        size_t failures0 = s->failures;
        s->fail_at = s->maps + k;
        run_workload();
        s->fail_at = 0;
        int source_failed = s->failures != failures0;
        if (source_failed) {
            runs_with_failure++;
            if (w.nulls == 0)
                fail_msg("k=%zu: the page source failed but no allocation did", k);
        } else {
            assert_int_equal(w.nulls, 0);
        }
        if (w.bad_errno)
            fail_msg("k=%zu: %zu failed allocations without errno ENOMEM", k, w.bad_errno);
        assert_verify_clean();

        /* nothing leaked: all back to the baseline */
        free_workload();
        assert_verify_clean();
        test_check_buddy_all_free();
        slab_buddy_info_t bi = test_buddy();
        if (!test_buddy_equal(&bi, &base_bi))
            fail_msg("k=%zu: buddy state differs from the baseline (%zu arenas, %zu "
                     "mapped bytes; baseline %zu, %zu)", k, bi.arenas, bi.mapped_bytes,
                     base_bi.arenas, base_bi.mapped_bytes);
        if (s->outstanding != base_outstanding || s->nlive != base_nlive)
            fail_msg("k=%zu: the page source holds %zu bytes in %zu mappings, baseline "
                     "%zu in %zu", k, s->outstanding, s->nlive, base_outstanding,
                     base_nlive);
        assert_source_clean(s);
        expect_no_error();
        if (!source_failed)
            break;
    }
    assert_true(k < 1000);
    print_message("%zu runs with a refused map; a clean run maps %zu times\n",
                  runs_with_failure, maps_per_run);
    assert_true(runs_with_failure >= 3);
    assert_int_equal(runs_with_failure, k - 1);
}

/* A failing map seen directly by the page allocator and by a cache. */
static void test_direct_failures(void **state)
{
    (void)state;
    struct counting_source *s = &src_main;
    test_check_buddy_all_free();

    /* a cache made while memory is plentiful */
    slab_cache_t *c = slab_cache_create("oom-direct", 512, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);

    /* take every free page (in at most 64 blocks): each further
     * allocation needs a new map */
    test_held_pages_t held;
    test_take_all_free_pages(&held, 64);
    size_t maps0 = s->maps;
    slab_buddy_info_t before = test_buddy();
    assert_int_equal(before.free_pages, 0);

    s->fail_at = s->maps + 1;
    errno = 0;
    assert_null(slab_pages_alloc(SLAB_MAX_ORDER));
    assert_int_equal(errno, ENOMEM);
    s->fail_at = 0;
    slab_buddy_info_t after = test_buddy();
    assert_true(test_buddy_equal(&before, &after));
    assert_verify_clean();

    s->fail_at = s->maps + 1;
    errno = 0;
    assert_null(slab_pages_alloc(0));
    assert_int_equal(errno, ENOMEM);
    s->fail_at = 0;
    after = test_buddy();
    assert_true(test_buddy_equal(&before, &after));

    assert_int_equal(s->maps, maps0 + 2); /* no retries behind our back */

    /* a cache whose first slab cannot get pages */
    s->fail_at = s->maps + 1;
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    s->fail_at = 0;
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.allocations, 0);
    assert_verify_clean();

    /* with memory back, everything works */
    void *obj = slab_cache_alloc(c);
    assert_non_null(obj);
    void *pg = slab_pages_alloc(0);
    assert_non_null(pg);
    slab_pages_free(pg, 0);
    slab_cache_free(c, obj);
    assert_int_equal(slab_cache_destroy(c), 0);
    test_give_back_pages(&held);
    test_check_buddy_all_free();
    assert_source_clean(s);
    expect_no_error();
}

/* Memory goes back to the source it came from. */
static void test_switch_source(void **state)
{
    (void)state;
    struct counting_source *a = &src_main, *b = &src_other;
    test_check_buddy_all_free();
    size_t base_total = a->outstanding + b->outstanding;

    void *blocks[5];
    for (int i = 0; i < 3; i++) {
        blocks[i] = slab_pages_alloc(SLAB_MAX_ORDER);
        assert_non_null(blocks[i]);
    }
    size_t a_maps = a->maps;
    install(b);
    for (int i = 3; i < 5; i++) {
        blocks[i] = slab_pages_alloc(SLAB_MAX_ORDER);
        assert_non_null(blocks[i]);
    }
    assert_int_equal(a->maps, a_maps);
    assert_true(b->maps >= 2);
    install(a);
    for (int i = 0; i < 5; i++)
        slab_pages_free(blocks[i], SLAB_MAX_ORDER);
    test_check_buddy_all_free();
    assert_source_clean(a);
    assert_source_clean(b);
    assert_true(b->unmaps >= 1);
    assert_int_equal(a->outstanding + b->outstanding, base_total);
    expect_no_error();
}

int main(void)
{
    test_slab_layer_only();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fail_every_map, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_direct_failures, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_switch_source, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
