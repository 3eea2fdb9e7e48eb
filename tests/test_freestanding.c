/*
 * test_freestanding.c - what the freestanding build adds: the host's
 * hooks, regions, running out of a region and coming back, per-CPU
 * magazines under threads, reports to the host, slab_info_write.
 *
 * Built against libslab-freestanding.a with freestanding_host.c as the
 * host (a static array as memory; see there).  The cache and kmalloc API
 * suites run on the same library as fs_test_cache and fs_test_kmalloc.
 */
#include "slab_test.h"

#include <slab/host.h>
#include <slab/linux.h>

#include "freestanding_host.h"

/* ---- the hooks ---- */

static void test_hooks_used(void **state)
{
    (void)state;
    unsigned long locks = freestanding_host_calls(FS_LOCK);
    unsigned long cpus = freestanding_host_calls(FS_CPU);
    void *p = kmalloc(100, GFP_KERNEL);
    assert_non_null(p);
    kfree(p);
    slab_cache_t *c = slab_cache_create("hooks", 48, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_true(freestanding_host_calls(FS_LOCK) > locks);
    assert_true(freestanding_host_calls(FS_CPU) > cpus);
    expect_no_error();
}

static void noop_lock(unsigned *w, void *ctx) { (void)w, (void)ctx; }
static bool noop_trylock(unsigned *w, void *ctx) { (void)w, (void)ctx; return true; }

static void test_set_host_misuse(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(slab_set_host(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    slab_host_t half = {.lock = noop_lock}; /* no unlock, no trylock */
    assert_int_equal(slab_set_host(&half), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    /* the host's hooks are in force already: a second set is refused */
    slab_host_t whole = {.lock = noop_lock, .unlock = noop_lock, .trylock = noop_trylock};
    assert_int_equal(slab_set_host(&whole), -1);
    assert_int_equal(errno, EBUSY);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    /* and the library still works on the host's locks */
    void *p = slab_malloc(10);
    assert_non_null(p);
    slab_free(p);
}

/* ---- regions ---- */

static char small_ram[64 << 10] __attribute__((aligned(4096)));

static void test_region_misuse(void **state)
{
    (void)state;
    slab_buddy_info_t before = test_buddy();
    errno = 0;
    assert_int_equal(slab_add_region(NULL, 1 << 20), 0);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    assert_int_equal(slab_add_region(small_ram, 0), 0);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    assert_int_equal(slab_add_region((void *)(uintptr_t)-4096, 8192), 0); /* wraps */
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    assert_int_equal(slab_add_region(small_ram + 1, 4096), 0); /* no whole page */
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    /* 64 KiB: no room for the descriptors (about 68 KiB) */
    assert_int_equal(slab_add_region(small_ram, sizeof small_ram), 0);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    /* the machine's memory again: its windows hold arenas already */
    size_t len;
    char *ram = freestanding_host_ram(&len);
    assert_int_equal(slab_add_region(ram, len), 0);
    assert_int_equal(errno, EEXIST);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    /* nothing changed */
    slab_buddy_info_t after = test_buddy();
    assert_int_equal(after.arenas, before.arenas);
    assert_int_equal(after.total_pages, before.total_pages);
    assert_int_equal(after.free_pages, before.free_pages);
    assert_int_equal(slab_verify(), 0);
}

static void test_region_accounting(void **state)
{
    (void)state;
    size_t len;
    (void)freestanding_host_ram(&len);
    const slab_buddy_info_t *first = freestanding_host_initial();
    /* every page of the region is the buddy allocator's but for the
     * descriptors (one set per window) and the page cut at each end */
    size_t region_pages = len / SLAB_PAGE_SIZE - 2;
    assert_true(first->total_pages < region_pages);
    assert_true(first->total_pages > region_pages - first->arenas * (80 << 10) / SLAB_PAGE_SIZE);
    slab_memory_info_t m;
    assert_int_equal(slab_memory_info(&m), 0);
    assert_true(m.metadata_bytes >= first->arenas * (64 << 10));
    assert_true(m.metadata_bytes < first->arenas * (80 << 10) + (16 << 20));
    /* a pointer just before the region is not libslab's */
    char *ram = freestanding_host_ram(&len);
    assert_null(slab_owner(ram));
    slab_free(ram + 64);
    expect_one_error(SLAB_ERR_FOREIGN);
}

/* Region only (no page source): fill it with objects and with kmalloc,
 * get NULL and ENOMEM, free everything, and get it all again. */
static size_t fill(slab_cache_t *c, void **objs, size_t max, size_t kbytes)
{
    size_t n = 0;
    while (n < max) {
        void *p = c ? slab_cache_alloc(c) : slab_malloc(kbytes);
        if (!p)
            break;
        memset(p, 0x5a, c ? 1024 : kbytes);
        objs[n++] = p;
    }
    return n;
}

static void test_exhaust_region(void **state)
{
    (void)state;
    static void *objs[1 << 17];
    size_t used0 = test_used_pages();
    slab_set_page_source(NULL); /* the default: nothing but the region */
    slab_cache_t *c = slab_cache_create("fill", 1024, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    for (int round = 0; round < 2; round++) {
        size_t n = fill(c, objs, sizeof objs / sizeof objs[0], 0);
        assert_true(n > 1000);
        assert_true(n < sizeof objs / sizeof objs[0]);
        errno = 0;
        assert_null(slab_cache_alloc(c));
        assert_int_equal(errno, ENOMEM);
        /* kmalloc is out of memory too, large and small */
        assert_null(slab_malloc(1 << 20));
        for (size_t i = 0; i < n; i++)
            slab_cache_free(c, objs[i]);
        static size_t first_n;
        if (round == 0)
            first_n = n;
        else
            assert_int_equal(n, first_n); /* nothing was lost */
    }
    assert_int_equal(slab_cache_destroy(c), 0);
    size_t n = fill(NULL, objs, sizeof objs / sizeof objs[0], 3000);
    assert_true(n > 1000);
    assert_null(slab_malloc(3000));
    for (size_t i = 0; i < n; i++)
        slab_free(objs[i]);
#ifndef SLAB_BACKEND_SLOB
    /* this CPU's magazines and the depot give their objects back */
    slab_cache_shrink(slab_kmalloc_cache(3000));
#endif
    slab_reap();
    /* every page is back (the reap may have freed some of the library's
     * reserve as well) */
    assert_true(test_used_pages() <= used0);
    slab_buddy_info_t bi = test_buddy();
    test_check_buddy_consistent(&bi);
    assert_int_equal(slab_verify(), 0);
    expect_no_error();
    slab_set_page_source(&freestanding_host_pool);
}

/* ---- per-CPU magazines: every thread a CPU ---- */

#define THREADS 8
#define ROUNDS 20000

static slab_cache_t *shared_cache;
static void *handoff[THREADS][64];
static bool handoff_cache[THREADS][64];
static atomic_int failures;

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t seed = id * 7919 + 1;
    void *mine[64] = {0};
    bool from_cache[64] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned k = (unsigned)(seed >> 33) % 64;
        if (mine[k]) {
            if (*(uint32_t *)mine[k] != id)
                atomic_fetch_add(&failures, 1);
            if (from_cache[k])
                slab_cache_free(shared_cache, mine[k]);
            else
                kfree(mine[k]);
            mine[k] = NULL;
        } else {
            from_cache[k] = seed & (1ull << 20);
            mine[k] = from_cache[k] ? slab_cache_alloc(shared_cache)
                                    : kmalloc(16 + (seed >> 40) % 2000, GFP_KERNEL);
            if (!mine[k])
                atomic_fetch_add(&failures, 1);
            else
                *(uint32_t *)mine[k] = id;
        }
    }
    /* what is left goes to the next thread to free: frees from another CPU */
    memcpy(handoff[(id + 1) % THREADS], mine, sizeof mine);
    memcpy(handoff_cache[(id + 1) % THREADS], from_cache, sizeof from_cache);
    return NULL;
}

static void test_percpu_threads(void **state)
{
    (void)state;
    slab_options_t o;
    slab_get_options(&o);
    assert_int_equal(o.magazines, 1);
    shared_cache = slab_cache_create("percpu", 96, 0, 0, NULL, NULL, NULL);
    assert_non_null(shared_cache);
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned k = 0; k < 64; k++)
            if (handoff[i][k]) {
                if (handoff_cache[i][k])
                    slab_cache_free(shared_cache, handoff[i][k]);
                else
                    kfree(handoff[i][k]);
            }
    slab_cache_stats_t st = test_stats(shared_cache);
    assert_int_equal(st.active_objs, 0);
#ifndef SLAB_BACKEND_SLOB
    assert_true(st.alloc_hit > 0); /* the CPUs' magazines were used */
#endif
    assert_int_equal(slab_cache_destroy(shared_cache), 0);
    assert_int_equal(slab_verify(), 0);
    expect_no_error();
}

/* ---- output ---- */

struct text {
    char buf[1 << 16];
    size_t len;
};

static void collect(const char *text, size_t len, void *arg)
{
    struct text *t = arg;
    if (t->len + len < sizeof t->buf) {
        memcpy(t->buf + t->len, text, len);
        t->len += len;
        t->buf[t->len] = '\0';
    }
}

static void test_info_write(void **state)
{
    (void)state;
    static struct text t;
    slab_cache_t *c = slab_cache_create("shown", 200, 0, 0, NULL, NULL, NULL);
    void *p = slab_cache_alloc(c);
    assert_int_equal(slab_info_write(collect, &t), 0);
    assert_non_null(strstr(t.buf, "slabinfo - version: 2.1\n"));
    assert_non_null(strstr(t.buf, "\nshown "));
    assert_non_null(strstr(t.buf, "Node 0, zone  libslab "));
    slab_cache_free(c, p);
    slab_cache_destroy(c);
    errno = 0;
    assert_int_equal(slab_info_write(NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
}

static void test_reports_reach_host(void **state)
{
    (void)state;
    slab_set_error_hook(NULL, NULL); /* the host's report hook then */
    unsigned long before = freestanding_host_calls(FS_REPORT);
    static char not_ours[64];
    slab_free(not_ours);
    assert_true(freestanding_host_calls(FS_REPORT) > before);
}

static void test_stats_live(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(slab_stats_live(1), -1);
    assert_int_equal(errno, ENOSYS);
    assert_int_equal(slab_stats_live(0), 0);
    assert_int_equal(slab_stats_live(2), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
}

int main(void)
{
    test_no_automatic_reap();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hooks_used, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_set_host_misuse, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_region_misuse, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_region_accounting, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_exhaust_region, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_percpu_threads, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_info_write, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_reports_reach_host, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_stats_live, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
