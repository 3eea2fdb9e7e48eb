/*
 * test_threads.c - caches and the page allocator shared between threads.
 *
 * Six threads allocate and free objects of three shared caches (one with
 * a constructor and destructor) and pass objects to each other through a
 * small mutex-protected exchange, so many objects are freed by a thread
 * other than the one that allocated them.  Every object carries a pattern
 * (its address and a unique tag) written on allocation and checked on
 * free: an object handed out twice, or overlapping another, is caught.
 * A second test has threads create and destroy private caches and take
 * page blocks concurrently.
 *
 * SLAB_TEST_SCALE scales the iteration counts.
 */
#include <stdatomic.h>
#include <time.h>

#include "slab_test.h"

#define NTHREADS 6
#define NCACHES 3
#define LOCAL_MAX 64
#define XCHG_CAP 128

static const size_t sizes[NCACHES] = {24, 200, 1500};
static slab_cache_t *caches[NCACHES];

/* ------------------------------------------------------------------ */
/* Failures seen by worker threads (cmocka asserts only in the main one) */


/* ------------------------------------------------------------------ */
/* The constructed cache                                                */

#define CTOR_MAGIC 0x0B1EC7C0DE0B1EC7ULL
static atomic_ulong ctor_calls, dtor_calls, bad_dtor;

static int obj_ctor(void *obj, void *arg)
{
    if (arg != &ctor_calls)
        thread_fail("constructor got arg %p", arg);
    *(uint64_t *)obj = CTOR_MAGIC;
    atomic_fetch_add(&ctor_calls, 1);
    return 0;
}

static void obj_dtor(void *obj, void *arg)
{
    (void)arg;
    if (*(uint64_t *)obj != CTOR_MAGIC)
        atomic_fetch_add(&bad_dtor, 1);
    atomic_fetch_add(&dtor_calls, 1);
}

/* ------------------------------------------------------------------ */
/* Patterns: [magic (constructed cache only)] address, tag, fill bytes   */


static size_t pattern_offset(int ci)
{
    return ci == 1 ? sizeof(uint64_t) : 0;
}

static void put_pattern(int ci, void *obj)
{
    test_put_pattern(obj, sizes[ci], pattern_offset(ci));
}

static int check_pattern(int ci, const void *obj)
{
    if (!test_check_pattern(obj, sizes[ci], pattern_offset(ci), ci))
        return 0;
    if (ci == 1 && *(const uint64_t *)obj != CTOR_MAGIC) {
        thread_fail("constructed object %p lost its magic", obj);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The exchange                                                         */

struct item {
    void *obj;
    int ci;
};

static struct {
    pthread_mutex_t lock;
    struct item items[XCHG_CAP];
    size_t count;
} xchg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int xchg_put(struct item it)
{
    int ok = 0;
    pthread_mutex_lock(&xchg.lock);
    if (xchg.count < XCHG_CAP) {
        xchg.items[xchg.count++] = it;
        ok = 1;
    }
    pthread_mutex_unlock(&xchg.lock);
    return ok;
}

static int xchg_take(struct item *it, uint64_t r)
{
    int ok = 0;
    pthread_mutex_lock(&xchg.lock);
    if (xchg.count > 0) {
        size_t i = (size_t)(r % xchg.count);
        *it = xchg.items[i];
        xchg.items[i] = xchg.items[--xchg.count];
        ok = 1;
    }
    pthread_mutex_unlock(&xchg.lock);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Shared caches                                                        */

struct worker {
    pthread_t tid;
    int id;
    size_t iters;
    size_t allocs, frees, foreign_frees, passed;
};

static void free_item(struct item it)
{
    if (check_pattern(it.ci, it.obj)) {
        if (slab_owner(it.obj) != test_owner_of(caches[it.ci]))
            thread_fail("slab_owner(%p) is not cache %d", it.obj, it.ci);
        /* scribble so a stale second hand-out would be noticed */
        memset((unsigned char *)it.obj + pattern_offset(it.ci), 0xEE, 16);
    }
    slab_cache_free(caches[it.ci], it.obj);
}

static void *shared_worker(void *arg)
{
    struct worker *wk = arg;
    struct item local[LOCAL_MAX];
    size_t nlocal = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(wk->id + 1);

    for (size_t it = 0; it < wk->iters && atomic_load(&test_thread_failures) == 0; it++) {
        uint64_t r = test_rand(&rng);
        switch (r % 8) {
        case 0:
        case 1:
        case 2:
            if (nlocal < LOCAL_MAX) {
                int ci = (int)((r >> 8) % NCACHES);
                void *p = slab_cache_alloc(caches[ci]);
                if (!p) {
                    thread_fail("thread %d: alloc from cache %d failed (errno %d)", wk->id,
                                ci, errno);
                    break;
                }
                if (ci == 1 && *(uint64_t *)p != CTOR_MAGIC)
                    thread_fail("thread %d: object %p not constructed", wk->id, p);
                put_pattern(ci, p);
                local[nlocal].obj = p;
                local[nlocal].ci = ci;
                nlocal++;
                wk->allocs++;
            }
            break;
        case 3:
        case 4:
            if (nlocal > 0) {
                size_t i = (size_t)((r >> 8) % nlocal);
                free_item(local[i]);
                local[i] = local[--nlocal];
                wk->frees++;
            }
            break;
        case 5:
            if (nlocal > 0) {
                size_t i = (size_t)((r >> 8) % nlocal);
                if (xchg_put(local[i])) {
                    local[i] = local[--nlocal];
                    wk->passed++;
                }
            }
            break;
        case 6: {
            struct item itm;
            if (xchg_take(&itm, r >> 8)) {
                free_item(itm);
                wk->foreign_frees++;
            }
            break;
        }
        case 7: {
            struct item itm;
            if (nlocal < LOCAL_MAX && xchg_take(&itm, r >> 8)) {
                if (check_pattern(itm.ci, itm.obj))
                    local[nlocal++] = itm;
            }
            break;
        }
        }
    }
    while (nlocal > 0)
        free_item(local[--nlocal]);
    return NULL;
}

/* Checks the heap while the workers run: it must never see a problem. */
static atomic_int workers_done;
static atomic_ulong verify_runs, verify_problems;

static void *verifier(void *arg)
{
    (void)arg;
    while (!atomic_load(&workers_done)) {
        size_t n = slab_verify();
        atomic_fetch_add(&verify_runs, 1);
        if (n)
            atomic_fetch_add(&verify_problems, n);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_shared_caches(void **state)
{
    (void)state;
    test_errors_install();
    test_baseline();
    caches[0] = slab_cache_create("mt-small", sizes[0], 0, 0, NULL, NULL, NULL);
    caches[1] = slab_cache_create("mt-ctor", sizes[1], 0, 0, obj_ctor, obj_dtor, &ctor_calls);
    caches[2] = slab_cache_create("mt-large", sizes[2], 0, SLAB_HWCACHE_ALIGN, NULL, NULL, NULL);
    for (int i = 0; i < NCACHES; i++)
        assert_non_null(caches[i]);

    struct worker wk[NTHREADS];
    memset(wk, 0, sizeof wk);
    size_t iters = test_scaled(150000);
    for (int i = 0; i < NTHREADS; i++) {
        wk[i].id = i;
        wk[i].iters = iters;
        assert_int_equal(pthread_create(&wk[i].tid, NULL, shared_worker, &wk[i]), 0);
    }
    pthread_t vt;
    assert_int_equal(pthread_create(&vt, NULL, verifier, NULL), 0);
    size_t allocs = 0, frees = 0, foreign = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(wk[i].tid, NULL), 0);
        allocs += wk[i].allocs;
        frees += wk[i].frees;
        foreign += wk[i].foreign_frees;
    }
    atomic_store(&workers_done, 1);
    assert_int_equal(pthread_join(vt, NULL), 0);
    assert_true(atomic_load(&verify_runs) >= 1);
    if (atomic_load(&verify_problems))
        fail_msg("slab_verify() found %lu problems while threads were running (%s)",
                 (unsigned long)atomic_load(&verify_problems), test_err.message);
    /* drain what is left in the exchange */
    struct item itm;
    while (xchg_take(&itm, 0)) {
        free_item(itm);
        foreign++;
    }
    assert_no_thread_failures();
    assert_true(allocs >= iters); /* the work really happened */
    assert_true(foreign >= allocs / 20);
    assert_true(frees > 0 && frees + foreign <= allocs);
    assert_int_equal(test_errors_count(), 0);

    uint64_t total_allocs = 0;
    for (int i = 0; i < NCACHES; i++) {
        slab_cache_stats_t st = test_stats(caches[i]);
        assert_int_equal(st.active_objs, 0);
        assert_int_equal(st.allocations, st.frees);
        assert_int_equal(st.errors, 0);
        total_allocs += st.allocations;
    }
    assert_int_equal(total_allocs, allocs);
    assert_verify_clean();
    slab_cache_stats_t st = test_stats(caches[1]);
    assert_int_equal(atomic_load(&ctor_calls) - atomic_load(&dtor_calls), st.total_objs);
    for (int i = 0; i < NCACHES; i++)
        assert_int_equal(slab_cache_destroy(caches[i]), 0);
    assert_int_equal(atomic_load(&ctor_calls), atomic_load(&dtor_calls));
    assert_int_equal(atomic_load(&bad_dtor), 0);
    assert_int_equal(test_errors_count(), 0);
    test_check_buddy_all_free();
    slab_set_error_hook(NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Private caches and page blocks, concurrently                         */

struct block {
    uint64_t *p;
    unsigned order;
    uint64_t seed;
};

static void *private_worker(void *arg)
{
    struct worker *wk = arg;
    uint64_t rng = 0xD1B54A32D192ED03ULL * (uint64_t)(wk->id + 7);
    struct block blocks[8];
    size_t nblocks = 0;
    void *objs[200];

    for (size_t round = 0; round < wk->iters && atomic_load(&test_thread_failures) == 0; round++) {
        char name[SLAB_NAME_MAX];
        snprintf(name, sizeof name, "priv-%d-%zu", wk->id, round);
        size_t size = 16 + (size_t)(test_rand(&rng) % 4000);
        slab_cache_t *c = slab_cache_create(name, size, 0, 0, NULL, NULL, NULL);
        if (!c) {
            thread_fail("thread %d: create(%zu) failed", wk->id, size);
            break;
        }
        size_t n = 50 + (size_t)(test_rand(&rng) % 150);
        for (size_t i = 0; i < n; i++) {
            objs[i] = slab_cache_alloc(c);
            if (!objs[i]) {
                thread_fail("thread %d: alloc failed", wk->id);
                n = i;
                break;
            }
            memset(objs[i], (int)(i & 0xff), size);
            if (i % 16 == 0) {
                /* a page block now and then */
                if (nblocks == 8 || (nblocks > 0 && (test_rand(&rng) & 1))) {
                    struct block *b = &blocks[--nblocks];
                    size_t words = (SLAB_PAGE_SIZE << b->order) / 8;
                    for (size_t j = 0; j < words; j++)
                        if (b->p[j] != b->seed + j) {
                            thread_fail("thread %d: page block %p corrupted", wk->id,
                                        (void *)b->p);
                            break;
                        }
                    slab_pages_free(b->p, b->order);
                } else {
                    struct block *b = &blocks[nblocks];
                    b->order = (unsigned)(test_rand(&rng) % 6);
                    b->p = slab_pages_alloc(b->order);
                    if (!b->p) {
                        thread_fail("thread %d: pages_alloc failed", wk->id);
                        continue;
                    }
                    b->seed = test_rand(&rng);
                    size_t words = (SLAB_PAGE_SIZE << b->order) / 8;
                    for (size_t j = 0; j < words; j++)
                        b->p[j] = b->seed + j;
                    nblocks++;
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = objs[i];
            if (p[0] != (unsigned char)(i & 0xff) || p[size - 1] != (unsigned char)(i & 0xff))
                thread_fail("thread %d: object %zu of %s corrupted", wk->id, i, name);
            if (slab_owner(p) != test_owner_of(c))
                thread_fail("thread %d: slab_owner of an object of %s is wrong", wk->id, name);
            slab_cache_free(c, objs[i]);
        }
        if (slab_cache_destroy(c) != 0)
            thread_fail("thread %d: destroy of %s failed", wk->id, name);
        wk->allocs += n;
    }
    while (nblocks > 0) {
        struct block *b = &blocks[--nblocks];
        slab_pages_free(b->p, b->order);
    }
    return NULL;
}

static void test_private_caches_and_pages(void **state)
{
    (void)state;
    test_errors_install();
    test_baseline();
    struct worker wk[NTHREADS];
    memset(wk, 0, sizeof wk);
    size_t rounds = test_scaled(200);
    for (int i = 0; i < NTHREADS; i++) {
        wk[i].id = i;
        wk[i].iters = rounds;
        assert_int_equal(pthread_create(&wk[i].tid, NULL, private_worker, &wk[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(wk[i].tid, NULL), 0);
    assert_no_thread_failures();
    assert_int_equal(test_errors_count(), 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_true(wk[i].allocs >= 50 * rounds);
    assert_verify_clean();
    test_check_buddy_all_free();
    slab_set_error_hook(NULL, NULL);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_caches),
        cmocka_unit_test(test_private_caches_and_pages),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
