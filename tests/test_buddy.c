/*
 * test_buddy.c - the page allocator: slab_pages_alloc()/slab_pages_free().
 *
 * A randomized run against a model of the live blocks checks that blocks
 * never overlap, are aligned to their size, keep their contents, and that
 * the per-order free counts always add up; freeing everything must coalesce
 * all memory back into whole arenas with at most one spare kept mapped.
 * Misuse (bad order, wrong order on free, foreign, interior and double
 * frees) must be reported through the error hook and change nothing.
 */
#include "slab_test.h"

#define BLOCK_BYTES(order) (SLAB_PAGE_SIZE << (order))

/* ------------------------------------------------------------------ */
/* Patterns                                                             */

static void fill_block(void *p, unsigned order, uint64_t seed)
{
    uint64_t *w = p;
    size_t n = BLOCK_BYTES(order) / sizeof *w;
    for (size_t i = 0; i < n; i++)
        w[i] = seed + i * 0x9E3779B97F4A7C15ULL;
}

static void check_block(const void *p, unsigned order, uint64_t seed)
{
    const uint64_t *w = p;
    size_t n = BLOCK_BYTES(order) / sizeof *w;
    for (size_t i = 0; i < n; i++)
        if (w[i] != seed + i * 0x9E3779B97F4A7C15ULL)
            fail_msg("block %p (order %u) corrupted at byte %zu", p, order,
                     i * sizeof *w);
}


/* ------------------------------------------------------------------ */
/* Randomized alloc/free against a model                                */

#define MAX_LIVE 256
#define MAX_LIVE_BYTES ((size_t)48 << 20)

struct live_block {
    unsigned char *p;
    unsigned order;
    uint64_t seed;
};

static void check_no_overlap(const struct live_block *live, size_t n,
                             const unsigned char *p, unsigned order)
{
    uintptr_t a0 = (uintptr_t)p, a1 = a0 + BLOCK_BYTES(order);
    for (size_t i = 0; i < n; i++) {
        uintptr_t b0 = (uintptr_t)live[i].p, b1 = b0 + BLOCK_BYTES(live[i].order);
        if (a0 < b1 && b0 < a1)
            fail_msg("new block %p order %u overlaps live block %p order %u",
                     (void *)p, order, (void *)live[i].p, live[i].order);
    }
}

static void check_accounting(size_t expect_used)
{
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    if (bi.total_pages - bi.free_pages != expect_used)
        fail_msg("buddy says %zu pages in use, the model says %zu",
                 bi.total_pages - bi.free_pages, expect_used);
}

static void test_random_model(void **state)
{
    (void)state;
    static struct live_block live[MAX_LIVE];
    size_t nlive = 0, live_pages = 0, live_bytes = 0;
    size_t base_used = test_used_pages();
    uint64_t rng = 0x1234567887654321ULL;
    size_t iters = test_scaled(12000);
    size_t allocs = 0, frees = 0, big = 0;

    for (size_t it = 0; it < iters; it++) {
        uint64_t r = test_rand(&rng);
        int do_alloc = nlive == 0 || (nlive < MAX_LIVE && (r & 1023) < 560);
        if (do_alloc) {
            unsigned order;
            if (((r >> 10) & 15) == 0)
                order = 7 + (unsigned)((r >> 14) % 4); /* 7..10 */
            else
                order = (unsigned)((r >> 14) % 7); /* 0..6 */
            if (live_bytes + BLOCK_BYTES(order) > MAX_LIVE_BYTES)
                do_alloc = 0;
            else {
                errno = 0;
                unsigned char *p = slab_pages_alloc(order);
                if (!p)
                    fail_msg("slab_pages_alloc(%u) failed: errno %d", order, errno);
                if (((uintptr_t)p & (BLOCK_BYTES(order) - 1)) != 0)
                    fail_msg("block %p of order %u is not aligned to its size",
                             (void *)p, order);
                check_no_overlap(live, nlive, p, order);
                live[nlive].p = p;
                live[nlive].order = order;
                live[nlive].seed = test_rand(&rng);
                fill_block(p, order, live[nlive].seed);
                nlive++;
                live_pages += (size_t)1 << order;
                live_bytes += BLOCK_BYTES(order);
                allocs++;
                big += order >= 7;
            }
        }
        if (!do_alloc) {
            size_t i = (size_t)(test_rand(&rng) % nlive);
            check_block(live[i].p, live[i].order, live[i].seed);
            slab_pages_free(live[i].p, live[i].order);
            live_pages -= (size_t)1 << live[i].order;
            live_bytes -= BLOCK_BYTES(live[i].order);
            live[i] = live[--nlive];
            frees++;
        }
        check_accounting(base_used + live_pages);
        if (it % 500 == 0)
            assert_verify_clean();
    }
    assert_true(allocs > iters / 3);
    assert_true(frees > iters / 3);
    assert_true(big > 0);

    /* Every surviving block still holds its pattern; free them all. */
    while (nlive > 0) {
        nlive--;
        check_block(live[nlive].p, live[nlive].order, live[nlive].seed);
        slab_pages_free(live[nlive].p, live[nlive].order);
    }
    check_accounting(base_used);
    assert_verify_clean();
    if (base_used == 0)
        test_check_buddy_all_free();
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Splitting and coalescing, exactly                                    */

static void test_split_and_coalesce(void **state)
{
    (void)state;
    test_check_buddy_strictly_free();
    slab_buddy_info_t before = test_buddy();

    unsigned char *p = slab_pages_alloc(0);
    assert_non_null(p);
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    /* One top-order block was split all the way down: one free block
     * remains at every order below the top. */
    assert_int_equal(bi.arenas, before.arenas ? before.arenas : 1);
    for (unsigned o = 0; o < SLAB_MAX_ORDER; o++)
        if (bi.nr_free[o] != 1)
            fail_msg("after one order-0 allocation nr_free[%u] = %zu, want 1", o,
                     bi.nr_free[o]);
    assert_int_equal(bi.nr_free[SLAB_MAX_ORDER], bi.arenas - 1);
    assert_int_equal(bi.free_pages, bi.total_pages - 1);

    /* The only free order-0 block is p's buddy. */
    unsigned char *q = slab_pages_alloc(0);
    assert_non_null(q);
    assert_ptr_equal((void *)((uintptr_t)p ^ SLAB_PAGE_SIZE), q);
    bi = test_buddy();
    assert_int_equal(bi.nr_free[0], 0);

    /* An order-1 block now comes from the order-1 free list. */
    unsigned char *r = slab_pages_alloc(1);
    assert_non_null(r);
    assert_int_equal((uintptr_t)r & ~(SLAB_ARENA_SIZE - 1),
                     (uintptr_t)p & ~(SLAB_ARENA_SIZE - 1));
    bi = test_buddy();
    assert_int_equal(bi.nr_free[1], 0);
    assert_int_equal(bi.free_pages, bi.total_pages - 4);

    slab_pages_free(q, 0);
    slab_pages_free(r, 1);
    slab_pages_free(p, 0);
    test_check_buddy_all_free();
    assert_verify_clean();
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Whole arenas and the one-spare rule                                  */

static void test_arenas_and_spare(void **state)
{
    (void)state;
    enum { N = 4 };
    unsigned char *a[N];
    for (int i = 0; i < N; i++) {
        a[i] = slab_pages_alloc(SLAB_MAX_ORDER);
        assert_non_null(a[i]);
        assert_int_equal((uintptr_t)a[i] & (SLAB_ARENA_SIZE - 1), 0);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(a[i], a[j]);
        /* the whole block is usable */
        a[i][0] = 1;
        a[i][SLAB_ARENA_SIZE - 1] = 2;
    }
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    assert_true(bi.arenas >= N);
    assert_true(bi.mapped_bytes >= N * SLAB_ARENA_SIZE);
    size_t mapped_full = bi.mapped_bytes;

    for (int i = 0; i < N; i++)
        slab_pages_free(a[i], SLAB_MAX_ORDER);
    test_check_buddy_all_free();
    bi = test_buddy();
    assert_int_equal(bi.arenas, 1);
    assert_true(bi.mapped_bytes < mapped_full);

    /* The spare is reused: allocating a top-order block maps nothing new. */
    size_t mapped = bi.mapped_bytes;
    unsigned char *p = slab_pages_alloc(SLAB_MAX_ORDER);
    assert_non_null(p);
    bi = test_buddy();
    assert_int_equal(bi.arenas, 1);
    assert_int_equal(bi.mapped_bytes, mapped);
    assert_int_equal(bi.free_pages, 0);
    slab_pages_free(p, SLAB_MAX_ORDER);
    test_check_buddy_all_free();
    assert_verify_clean();
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Misuse                                                               */

static void test_bad_order_alloc(void **state)
{
    (void)state;
    slab_buddy_info_t before = test_buddy();
    unsigned bad[] = {SLAB_MAX_ORDER + 1, SLAB_MAX_ORDER + 7, 64, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_errors_reset();
        errno = 0;
        assert_null(slab_pages_alloc(bad[i]));
        assert_int_equal(errno, EINVAL);
        expect_one_error(SLAB_ERR_INVALID_ARG);
        slab_buddy_info_t after = test_buddy();
        assert_true(test_buddy_equal(&before, &after));
    }
    test_errors_reset();
}

/* Free `ptr` with `order`, expecting one report of `kind` and no change. */
static void misfree(void *ptr, unsigned order, slab_error_kind_t kind)
{
    slab_buddy_info_t before = test_buddy();
    test_errors_reset();
    slab_pages_free(ptr, order);
    expect_one_error(kind);
    if (test_err.ptr != ptr)
        fail_msg("report about %p names %p", ptr, test_err.ptr);
    if (!strstr(test_err.function, "slab_pages_free"))
        fail_msg("report names function '%s', not slab_pages_free", test_err.function);
    slab_buddy_info_t after = test_buddy();
    if (!test_buddy_equal(&before, &after))
        fail_msg("slab_pages_free(%p, %u) was reported but changed the buddy state",
                 ptr, order);
    assert_verify_clean();
    test_errors_reset();
}

static void test_free_wrong_order(void **state)
{
    (void)state;
    unsigned char *keep = slab_pages_alloc(0);
    assert_non_null(keep);
    unsigned char *p = slab_pages_alloc(3);
    assert_non_null(p);
    fill_block(p, 3, 77);

    misfree(p, 0, SLAB_ERR_BAD_PAGES);
    misfree(p, 2, SLAB_ERR_BAD_PAGES);
    misfree(p, 4, SLAB_ERR_BAD_PAGES);
    misfree(p, SLAB_MAX_ORDER, SLAB_ERR_BAD_PAGES);

    /* An order above the maximum is reported too (as a bad argument or as
     * a bad block), and changes nothing. */
    slab_buddy_info_t before = test_buddy();
    test_errors_reset();
    slab_pages_free(p, SLAB_MAX_ORDER + 1);
    assert_int_equal(test_err.count, 1);
    assert_true(test_err.kind == SLAB_ERR_BAD_PAGES ||
                test_err.kind == SLAB_ERR_INVALID_ARG);
    slab_buddy_info_t after = test_buddy();
    assert_true(test_buddy_equal(&before, &after));
    test_errors_reset();

    /* Nothing was lost: the block is intact, still allocated, and frees
     * with its right order. */
    check_block(p, 3, 77);
    fill_block(p, 3, 78);
    unsigned char *other = slab_pages_alloc(3);
    assert_non_null(other);
    assert_true(other + BLOCK_BYTES(3) <= p || p + BLOCK_BYTES(3) <= other);
    check_block(p, 3, 78);
    slab_pages_free(other, 3);
    slab_pages_free(p, 3);
    slab_pages_free(keep, 0);
    expect_no_error();
    test_check_buddy_all_free();
    assert_verify_clean();
}

static void test_free_foreign(void **state)
{
    (void)state;
    unsigned char *keep = slab_pages_alloc(2);
    assert_non_null(keep);

    char on_stack[64];
    memset(on_stack, 0, sizeof on_stack);
    misfree(on_stack, 0, SLAB_ERR_FOREIGN);

    void *heap = malloc(100);
    assert_non_null(heap);
    misfree(heap, 0, SLAB_ERR_FOREIGN);
    free(heap);

    void *aligned = aligned_alloc(SLAB_PAGE_SIZE, SLAB_PAGE_SIZE * 4);
    assert_non_null(aligned);
    misfree(aligned, 0, SLAB_ERR_FOREIGN);
    misfree(aligned, 2, SLAB_ERR_FOREIGN);
    free(aligned);

    static char in_data[8192];
    misfree(in_data, 0, SLAB_ERR_FOREIGN);

    slab_pages_free(keep, 2);
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_free_interior(void **state)
{
    (void)state;
    unsigned char *p = slab_pages_alloc(2);
    assert_non_null(p);
    fill_block(p, 2, 5);

    misfree(p + SLAB_PAGE_SIZE, 0, SLAB_ERR_BAD_PAGES);
    misfree(p + SLAB_PAGE_SIZE, 2, SLAB_ERR_BAD_PAGES);
    misfree(p + 2 * SLAB_PAGE_SIZE, 1, SLAB_ERR_BAD_PAGES);
    misfree(p + 1, 2, SLAB_ERR_BAD_PAGES);
    misfree(p + SLAB_PAGE_SIZE * 4 - 8, 0, SLAB_ERR_BAD_PAGES);

    check_block(p, 2, 5);
    slab_pages_free(p, 2);
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_double_free(void **state)
{
    (void)state;
    /* keep the arena in use so the freed block stays inside a mapped arena */
    unsigned char *keep = slab_pages_alloc(0);
    assert_non_null(keep);
    unsigned char *p = slab_pages_alloc(2);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p & ~(SLAB_ARENA_SIZE - 1),
                     (uintptr_t)keep & ~(SLAB_ARENA_SIZE - 1));
    size_t used = test_used_pages();

    slab_pages_free(p, 2);
    expect_no_error();
    assert_int_equal(test_used_pages(), used - 4);

    misfree(p, 2, SLAB_ERR_BAD_PAGES);
    misfree(p, 0, SLAB_ERR_BAD_PAGES);
    misfree(p, 3, SLAB_ERR_BAD_PAGES);
    assert_int_equal(test_used_pages(), used - 4);

    /* a freed page inside a free block that has coalesced upwards */
    misfree((void *)((uintptr_t)keep ^ (SLAB_PAGE_SIZE * 8)), 0, SLAB_ERR_BAD_PAGES);

    /* the heap is still usable: the block can be had again */
    unsigned char *again = slab_pages_alloc(2);
    assert_non_null(again);
    fill_block(again, 2, 9);
    check_block(again, 2, 9);
    slab_pages_free(again, 2);
    slab_pages_free(keep, 0);

    /* a double free of a page of a wholly free (spare) arena */
    misfree(keep, 0, test_buddy().arenas ? SLAB_ERR_BAD_PAGES : SLAB_ERR_FOREIGN);
    expect_no_error();
    test_check_buddy_all_free();
}

/* The pages of a slab belong to its cache, not to slab_pages_free(). */
static void test_free_slab_pages(void **state)
{
    (void)state;
    test_take_reserve();
    slab_cache_t *c = slab_cache_create("pages-of-a-slab", 256, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    unsigned char *obj = slab_cache_alloc(c);
    assert_non_null(obj);
    slab_cache_stats_t st = test_stats(c);
    size_t slab_bytes = st.pages_per_slab * SLAB_PAGE_SIZE;
    unsigned order = 0;
    while ((SLAB_PAGE_SIZE << order) < slab_bytes)
        order++;
    unsigned char *base = (unsigned char *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes - 1));

    slab_buddy_info_t before = test_buddy();
    test_errors_reset();
    slab_pages_free(base, order);
    assert_int_equal(test_err.count, 1);
    assert_true(test_err.kind == SLAB_ERR_BAD_PAGES || test_err.kind == SLAB_ERR_FOREIGN);
    slab_buddy_info_t after = test_buddy();
    assert_true(test_buddy_equal(&before, &after));
    test_errors_reset();

    /* the object is still live and its cache intact */
    assert_owner(obj, c);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 1);
    assert_verify_clean();
    slab_cache_free(c, obj);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    test_check_buddy_all_free();
}

int main(void)
{
    test_slab_layer_only();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_model, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_split_and_coalesce, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_arenas_and_spare, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_order_alloc, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_free_wrong_order, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_free_foreign, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_free_interior, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_double_free, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_free_slab_pages, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
