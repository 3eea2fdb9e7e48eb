/*
 * test_magazine.c - the magazine layer: per-thread magazines, the depot,
 * reaping, memory pressure, threads and fork.
 *
 * Covers exact hit/miss/exchange counts for known sequences, LIFO reuse of
 * constructed objects, a destroyed cache's slot reused by a new cache,
 * destruction while other threads (alive or exited) hold objects in their
 * magazines, thread exit, cross-thread frees under stress with a reaper,
 * consistency while a refill grows a cache, fork() with busy threads,
 * working-set reaping, reclaim callbacks under memory pressure, bulk
 * allocation, debug caches and the options.
 *
 * Every cache here runs with magazines (the file turns them on whatever
 * the environment says, and turns the automatic reap off so that the
 * counters are deterministic; the tests that need reaping call
 * slab_reap() themselves).  What the tests rely on is the algorithm as
 * documented, not the code:
 *
 *   - a thread has per cache a loaded and a previous magazine of
 *     magazine_size rounds (63 for objects up to 256 B, 31 up to 1 KiB,
 *     15 up to 4 KiB, 7 above; larger when the depot is contended, which
 *     one thread alone never makes it), batchcount = magazine_size / 2 + 1;
 *   - alloc: pop the loaded magazine; if empty, swap with a full
 *     previous; else trade the empty previous for a full magazine of the
 *     depot (a depot exchange); else refill the loaded magazine with
 *     batchcount objects from the slab layer (an alloc miss);
 *   - free: push; if full, swap with an empty previous; else trade the
 *     full previous for an empty magazine from the depot (allocated if the
 *     depot has none; a depot exchange when a full one is handed in);
 *     only if no magazine can be had, free to the slab layer (a free miss);
 *   - thread exit, cache destruction and fork's child bring magazines home;
 *   - slab_reap() frees the depot magazines not needed during the last
 *     interval, releases the free slabs of idle caches and decommits the
 *     dirty free buddy blocks;
 *   - memory pressure runs the reclaim callbacks, reaps and retries once.
 *
 * SLAB_TEST_SCALE scales the iteration counts of the stress tests.
 */
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "slab_test.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* The options as the library started with them (read before main() sets
 * its own), for the options test. */
static slab_options_t initial_options;

static void set_options(int magazines, unsigned reap_interval_ms)
{
    slab_options_t o = {.magazines = magazines, .reap_interval_ms = reap_interval_ms};
    assert_int_equal(slab_set_options(&o), 0);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* Failures seen by other threads (cmocka asserts only in the main one)  */


/* ------------------------------------------------------------------ */
/* Helper threads that stay alive between jobs                          */

/*
 * A helper runs the jobs the main thread posts, one at a time, and
 * otherwise waits on its condition variable, touching nothing: the main
 * thread may destroy a cache the helper used while it waits (a mutex
 * hand-off orders everything the helper did before the main thread's
 * next step).  helper_stop() lets the thread exit.
 */
struct helper {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned posted, done;
    int quit;
    void (*job)(struct helper *h);
    int id;
    void *arg;
};

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->done == h->posted && !h->quit)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->done == h->posted)
            break; /* quit with nothing pending */
        void (*job)(struct helper *) = h->job;
        pthread_mutex_unlock(&h->lock);
        job(h);
        pthread_mutex_lock(&h->lock);
        h->done++;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void helper_start(struct helper *h, int id, void *arg)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->id = id;
    h->arg = arg;
    assert_int_equal(pthread_create(&h->tid, NULL, helper_main, h), 0);
}

static void helper_post(struct helper *h, void (*job)(struct helper *))
{
    pthread_mutex_lock(&h->lock);
    while (h->done != h->posted)
        pthread_cond_wait(&h->cond, &h->lock);
    h->job = job;
    h->posted++;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void helper_wait(struct helper *h)
{
    pthread_mutex_lock(&h->lock);
    while (h->done != h->posted)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static void helper_run(struct helper *h, void (*job)(struct helper *))
{
    helper_post(h, job);
    helper_wait(h);
}

/* Let the helper exit (its thread-exit hook runs) and join it. */
static void helper_stop(struct helper *h)
{
    pthread_mutex_lock(&h->lock);
    h->quit = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    assert_int_equal(pthread_join(h->tid, NULL), 0);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* The n objects of `size` bytes at ptrs[] are distinct and disjoint;
 * returns 0 or the index (in sorted order) of the first clash. */
static size_t first_overlap(void **ptrs, size_t n, size_t size)
{
    void **s = malloc(n * sizeof *s);
    assert_non_null(s);
    memcpy(s, ptrs, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_ptr);
    size_t bad = 0;
    for (size_t i = 1; i < n && !bad; i++)
        if ((uintptr_t)s[i] - (uintptr_t)s[i - 1] < size)
            bad = i;
    free(s);
    return bad;
}

static void assert_disjoint(void **ptrs, size_t n, size_t size)
{
    size_t bad = first_overlap(ptrs, n, size);
    if (bad)
        fail_msg("%zu objects of %zu bytes: two of them overlap or are the same", n, size);
}

/* Every figure of the magazine layer a test can predict exactly. */
struct mag_expect {
    uint64_t allocations, frees;
    uint64_t alloc_hit, alloc_miss, free_hit, free_miss, exchanges;
    size_t depot_full, depot_empty, active, magazine_objs;
};

static void check_counters(const slab_cache_t *c, const char *when, struct mag_expect e)
{
    slab_cache_stats_t st = test_stats(c);
    if (st.allocations != e.allocations || st.frees != e.frees || st.alloc_hit != e.alloc_hit ||
        st.alloc_miss != e.alloc_miss || st.free_hit != e.free_hit ||
        st.free_miss != e.free_miss || st.depot_exchanges != e.exchanges ||
        st.depot_full != e.depot_full || st.depot_empty != e.depot_empty ||
        st.active_objs != e.active || st.magazine_objs != e.magazine_objs)
        fail_msg("cache '%s', %s:\n"
                 "   expected allocations %llu frees %llu alloc_hit %llu alloc_miss %llu "
                 "free_hit %llu free_miss %llu exchanges %llu depot %zu full/%zu empty "
                 "active %zu magazine_objs %zu\n"
                 "   observed allocations %llu frees %llu alloc_hit %llu alloc_miss %llu "
                 "free_hit %llu free_miss %llu exchanges %llu depot %zu full/%zu empty "
                 "active %zu magazine_objs %zu",
                 st.name, when, (unsigned long long)e.allocations,
                 (unsigned long long)e.frees, (unsigned long long)e.alloc_hit,
                 (unsigned long long)e.alloc_miss, (unsigned long long)e.free_hit,
                 (unsigned long long)e.free_miss, (unsigned long long)e.exchanges,
                 e.depot_full, e.depot_empty, e.active, e.magazine_objs,
                 (unsigned long long)st.allocations, (unsigned long long)st.frees,
                 (unsigned long long)st.alloc_hit, (unsigned long long)st.alloc_miss,
                 (unsigned long long)st.free_hit, (unsigned long long)st.free_miss,
                 (unsigned long long)st.depot_exchanges, st.depot_full, st.depot_empty,
                 st.active_objs, st.magazine_objs);
}

/* ------------------------------------------------------------------ */
/* A page source that refuses to map while `fail` is set                */

static atomic_int src_fail;
static atomic_ulong src_refused;

static void *failing_map(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    if (atomic_load(&src_fail)) {
        atomic_fetch_add(&src_refused, 1);
        return NULL;
    }
    const slab_page_source_t *d = slab_default_page_source();
    return d->map(d->ctx, size, align);
}

static void failing_unmap(void *ctx, void *addr, size_t size)
{
    (void)ctx;
    const slab_page_source_t *d = slab_default_page_source();
    d->unmap(d->ctx, addr, size);
}

static void failing_decommit(void *ctx, void *addr, size_t size)
{
    (void)ctx;
    const slab_page_source_t *d = slab_default_page_source();
    if (d->decommit)
        d->decommit(d->ctx, addr, size);
}

static void install_failing_source(void)
{
    slab_page_source_t s = {
        .map = failing_map,
        .unmap = failing_unmap,
        .decommit = failing_decommit,
        .ctx = NULL,
    };
    atomic_store(&src_fail, 0);
    slab_set_page_source(&s);
}

/* With the source refusing, take every free page of the buddy allocator
 * (chained through their first word), so that the next slab any cache
 * needs must come from the source. */
static void *exhaust_pages(size_t *count)
{
    void *chain = NULL, *p;
    size_t n = 0;
    while ((p = slab_pages_alloc(0)) != NULL) {
        *(void **)p = chain;
        chain = p;
        n++;
    }
    if (count)
        *count = n;
    return chain;
}

static void release_pages(void *chain)
{
    while (chain) {
        void *next = *(void **)chain;
        slab_pages_free(chain, 0);
        chain = next;
    }
}

/* Wait for a child process for at most timeout_ms; a child still running
 * then is killed.  Returns 1 if it finished by itself (status in *status). */
static int wait_child(pid_t pid, long timeout_ms, int *status)
{
    for (long waited = 0; waited < timeout_ms; waited += 5) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 1;
        if (got < 0)
            return 0;
        sleep_us(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */


static int setup(void **state)
{
    (void)state;
    atomic_store(&test_thread_failures, 0);
    test_first_failure[0] = '\0';
    test_errors_install();
    /* Whatever an earlier failed test left in depots or free slabs goes
     * now, not in the middle of a test that reaps. */
    slab_reap();
    slab_reap();
    test_baseline();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* whatever a failed test left behind: memory is available again */
    atomic_store(&src_fail, 0);
    slab_set_page_source(NULL);
    slab_set_error_hook(NULL, NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* 1. Exact counters, one thread                                        */

/*
 * For a fresh cache with magazine size M and batch B = M/2 + 1, and one
 * thread doing N allocations, then N frees, then N allocations again:
 *
 *   allocations: a miss every time the loaded magazine is empty (nothing
 *     else is: the previous magazine is the initial empty one and the depot
 *     holds nothing), so misses = ceil(N/B), hits = N - misses; the slab
 *     layer has handed out S = B * misses objects, S - N of them still in
 *     the loaded magazine (magazine_objs).
 *   frees: the loaded magazine takes M - (S - N) more; each time it is full
 *     a new magazine is loaded and the full one becomes the previous one.
 *     The first time there is no previous one to hand in; every later time
 *     the full previous one goes to the depot: with R = N - (M - (S - N))
 *     frees left over, k = ceil(R/M) slow paths, k - 1 exchanges and k - 1
 *     full magazines in the depot.  All frees are hits, magazine_objs = S.
 *   allocations again: served by the loaded magazine, the full previous
 *     one (a swap) and then the depot, one exchange per full magazine taken,
 *     each handing an empty magazine in.  Nothing reaches the slab layer.
 */
struct seq_case {
    size_t size, n;
    /* after N allocations */
    uint64_t a_hit, a_miss;
    size_t a_mag;
    /* after N frees */
    uint64_t f_exch;
    size_t f_full, f_mag;
    /* after N allocations again */
    uint64_t r_hit, r_exch;
    size_t r_full, r_empty, r_mag;
};

static const struct seq_case seq_cases[] = {
    /* 64 B: M 63, B 32 */
    {64, 1, 0, 1, 31, 0, 0, 32, 1, 0, 0, 0, 31},
    {64, 32, 31, 1, 0, 0, 0, 32, 63, 0, 0, 0, 0},
    {64, 33, 31, 2, 31, 0, 0, 64, 64, 0, 0, 0, 31},
    {64, 63, 61, 2, 1, 0, 0, 64, 124, 0, 0, 0, 1},
    {64, 64, 62, 2, 0, 0, 0, 64, 126, 0, 0, 0, 0},
    /* S 128, R 65: k 2 */
    {64, 100, 96, 4, 28, 1, 1, 128, 196, 2, 0, 1, 28},
    /* S 224, R 161: k 3 */
    {64, 200, 193, 7, 24, 2, 2, 224, 393, 4, 0, 2, 24},
    /* S 512, R 449: k 8 */
    {64, 500, 484, 16, 12, 7, 7, 512, 984, 14, 0, 7, 12},
    /* 300 B: M 31, B 16.  S 112, R 88: k 3 */
    {300, 100, 93, 7, 12, 2, 2, 112, 193, 4, 0, 2, 12},
    /* 2000 B: M 15, B 8.  S 104, R 89: k 6 */
    {2000, 100, 87, 13, 4, 5, 5, 104, 187, 10, 0, 5, 4},
    /* 5000 B: M 7, B 4.  S 12, R 5: k 1;  S 32, R 25: k 4 */
    {5000, 10, 7, 3, 2, 0, 0, 12, 17, 0, 0, 0, 2},
    {5000, 30, 22, 8, 2, 3, 3, 32, 52, 6, 0, 3, 2},
};

static void test_counters_exact(void **state)
{
    (void)state;
    static void *objs[512];
    for (size_t k = 0; k < sizeof seq_cases / sizeof seq_cases[0]; k++) {
        const struct seq_case *t = &seq_cases[k];
        char when[96];
        slab_cache_t *c = slab_cache_create("exact", t->size, 0, 0, NULL, NULL, NULL);
        assert_non_null(c);
        slab_cache_stats_t st = test_stats(c);
        size_t batch = st.batchcount;
        assert_int_equal(batch, st.magazine_size / 2 + 1);
        size_t slab_out = batch * t->a_miss; /* S */
        check_counters(c, "fresh", (struct mag_expect){0});

        for (size_t i = 0; i < t->n; i++) {
            objs[i] = slab_cache_alloc(c);
            assert_non_null(objs[i]);
        }
        snprintf(when, sizeof when, "size %zu: after %zu allocations", t->size, t->n);
        check_counters(c, when,
                       (struct mag_expect){.allocations = t->n,
                                           .alloc_hit = t->a_hit,
                                           .alloc_miss = t->a_miss,
                                           .active = t->n,
                                           .magazine_objs = t->a_mag});
        st = test_stats(c);
        assert_int_equal(st.high_mark, slab_out);
        assert_int_equal(slab_out, t->f_mag);

        for (size_t i = 0; i < t->n; i++)
            slab_cache_free(c, objs[i]);
        snprintf(when, sizeof when, "size %zu: after %zu allocations and frees", t->size, t->n);
        check_counters(c, when,
                       (struct mag_expect){.allocations = t->n,
                                           .frees = t->n,
                                           .alloc_hit = t->a_hit,
                                           .alloc_miss = t->a_miss,
                                           .free_hit = t->n,
                                           .exchanges = t->f_exch,
                                           .depot_full = t->f_full,
                                           .magazine_objs = t->f_mag});

        for (size_t i = 0; i < t->n; i++) {
            objs[i] = slab_cache_alloc(c);
            assert_non_null(objs[i]);
        }
        snprintf(when, sizeof when, "size %zu: after %zu allocations again", t->size, t->n);
        check_counters(c, when,
                       (struct mag_expect){.allocations = 2 * t->n,
                                           .frees = t->n,
                                           .alloc_hit = t->r_hit,
                                           .alloc_miss = t->a_miss,
                                           .free_hit = t->n,
                                           .exchanges = t->r_exch,
                                           .depot_full = t->r_full,
                                           .depot_empty = t->r_empty,
                                           .active = t->n,
                                           .magazine_objs = t->r_mag});
        st = test_stats(c);
        assert_int_equal(st.high_mark, slab_out); /* the slab layer was not needed */
        assert_int_equal(st.grown * st.objs_per_slab, st.total_objs);

        for (size_t i = 0; i < t->n; i++)
            slab_cache_free(c, objs[i]);
        /* Shrink empties the depot and this thread's magazines into the
         * slab layer and releases every slab; the counters stay. */
        slab_cache_stats_t before = test_stats(c);
        assert_int_equal(before.active_objs, 0);
        assert_int_equal(before.magazine_objs, slab_out);
        assert_true(slab_cache_shrink(c) >= 1);
        snprintf(when, sizeof when, "size %zu: after shrink", t->size);
        check_counters(c, when,
                       (struct mag_expect){.allocations = before.allocations,
                                           .frees = before.frees,
                                           .alloc_hit = before.alloc_hit,
                                           .alloc_miss = before.alloc_miss,
                                           .free_hit = before.free_hit,
                                           .free_miss = before.free_miss,
                                           .exchanges = before.depot_exchanges});
        st = test_stats(c);
        assert_int_equal(st.total_slabs, 0);
        assert_int_equal(st.total_objs, 0);
        assert_int_equal(slab_cache_destroy(c), 0);
    }
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* Magazine size and batch count from the object size. */
static void test_magazine_size_by_object_size(void **state)
{
    (void)state;
    static const struct {
        size_t size, mag;
    } cases[] = {
        {8, 63},     {64, 63},    {256, 63},   {257, 31},  {300, 31},  {1024, 31},
        {1025, 15},  {2000, 15},  {4096, 15},  {4097, 7},  {5000, 7},  {65536, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slab_cache_t *c = slab_cache_create("mag-size", cases[i].size, 0, 0, NULL, NULL, NULL);
        assert_non_null(c);
        slab_cache_stats_t st = test_stats(c);
        if (st.magazine_size != cases[i].mag || st.batchcount != cases[i].mag / 2 + 1)
            fail_msg("object size %zu: magazine_size %zu batchcount %zu, expected %zu and %zu",
                     cases[i].size, st.magazine_size, st.batchcount, cases[i].mag,
                     cases[i].mag / 2 + 1);
        /* one refill is a batch */
        void *p = slab_cache_alloc(c);
        assert_non_null(p);
        st = test_stats(c);
        assert_int_equal(st.alloc_miss, 1);
        assert_int_equal(st.magazine_objs, cases[i].mag / 2);
        slab_cache_free(c, p);
        assert_int_equal(slab_cache_destroy(c), 0);
    }
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 2. LIFO reuse and constructed state                                  */

#define OBJ_MAGIC 0x6D6167617A696E65ULL

struct cobj {
    uint64_t magic;
    uint64_t state;
    unsigned char pad[48];
};

static atomic_ulong c_ctor, c_dtor, c_bad_dtor;

static int cobj_ctor(void *obj, void *arg)
{
    if (arg != &c_ctor)
        thread_fail("constructor got arg %p", arg);
    struct cobj *o = obj;
    o->magic = OBJ_MAGIC;
    o->state = 0;
    atomic_fetch_add(&c_ctor, 1);
    return 0;
}

static void cobj_dtor(void *obj, void *arg)
{
    (void)arg;
    if (((struct cobj *)obj)->magic != OBJ_MAGIC)
        atomic_fetch_add(&c_bad_dtor, 1);
    atomic_fetch_add(&c_dtor, 1);
}

static void reset_ctor_counts(void)
{
    atomic_store(&c_ctor, 0);
    atomic_store(&c_dtor, 0);
    atomic_store(&c_bad_dtor, 0);
}

static void test_lifo_constructed_state(void **state)
{
    (void)state;
    reset_ctor_counts();
    slab_cache_t *c = slab_cache_create("lifo", sizeof(struct cobj), 0, 0, cobj_ctor, cobj_dtor,
                                        &c_ctor);
    assert_non_null(c);

    struct cobj *p = slab_cache_alloc(c);
    assert_non_null(p);
    assert_true(p->magic == OBJ_MAGIC);
    assert_true(p->state == 0);
    p->state = 0xABCDEF;
    slab_cache_free(c, p);
    struct cobj *q = slab_cache_alloc(c);
    assert_ptr_equal(q, p); /* the last object freed comes back first */
    assert_true(q->magic == OBJ_MAGIC);
    assert_true(q->state == 0xABCDEF); /* not constructed again */
    slab_cache_free(c, q);

    /* A stack across magazine boundaries, the previous magazine and the
     * depot: N frees then N allocations give the objects back in reverse
     * order, each with the state the program left in it. */
    enum { N = 200, ROUNDS = 3 };
    static struct cobj *a[N], *b[N];
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < N; i++) {
            a[i] = slab_cache_alloc(c);
            assert_non_null(a[i]);
            assert_true(a[i]->magic == OBJ_MAGIC);
            a[i]->state = 1000 * (uint64_t)(round + 1) + i;
        }
        assert_disjoint((void **)a, N, sizeof(struct cobj));
        for (size_t i = 0; i < N; i++)
            slab_cache_free(c, a[i]);
        for (size_t i = 0; i < N; i++) {
            b[i] = slab_cache_alloc(c);
            assert_non_null(b[i]);
            if (b[i] != a[N - 1 - i])
                fail_msg("round %d: allocation %zu returned %p, expected %p (freed %zu-th last)",
                         round, i, (void *)b[i], (void *)a[N - 1 - i], i);
            if (b[i]->magic != OBJ_MAGIC || b[i]->state != 1000 * (uint64_t)(round + 1) + N - 1 - i)
                fail_msg("round %d: object %p lost its state (magic %#llx state %llu)", round,
                         (void *)b[i], (unsigned long long)b[i]->magic,
                         (unsigned long long)b[i]->state);
        }
        for (size_t i = 0; i < N; i++)
            slab_cache_free(c, b[i]);
    }

    /* The constructor ran once per object the slab layer ever built, and
     * no slab was released (no destructor ran). */
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(atomic_load(&c_ctor), st.total_objs);
    assert_int_equal(atomic_load(&c_dtor), 0);
    assert_int_equal(st.reaped, 0);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(atomic_load(&c_dtor), atomic_load(&c_ctor));
    assert_int_equal(atomic_load(&c_bad_dtor), 0);
    assert_no_thread_failures();
    expect_no_error();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 3. A destroyed cache's slot reused by a new cache                    */

enum { REUSE_N = 100 };

struct reuse_data {
    slab_cache_t *cache;
    void *objs[REUSE_N];
};

static void job_alloc_then_free(struct helper *h)
{
    struct reuse_data *d = h->arg;
    for (size_t i = 0; i < REUSE_N; i++) {
        d->objs[i] = slab_cache_alloc(d->cache);
        if (!d->objs[i]) {
            thread_fail("helper %d: allocation failed", h->id);
            return;
        }
        memset(d->objs[i], 0xA0 + h->id, slab_cache_object_size(d->cache));
    }
    for (size_t i = 0; i < REUSE_N; i++)
        slab_cache_free(d->cache, d->objs[i]);
}

static void job_alloc_keep(struct helper *h)
{
    struct reuse_data *d = h->arg;
    for (size_t i = 0; i < REUSE_N; i++) {
        d->objs[i] = slab_cache_alloc(d->cache);
        if (!d->objs[i])
            thread_fail("helper %d: allocation failed", h->id);
    }
}

static void job_free_kept(struct helper *h)
{
    struct reuse_data *d = h->arg;
    for (size_t i = 0; i < REUSE_N; i++)
        slab_cache_free(d->cache, d->objs[i]);
}

static void test_cache_id_reuse(void **state)
{
    (void)state;
    struct reuse_data hd, md;
    struct helper h;
    helper_start(&h, 1, &hd);

    /* A: used by the helper and by this thread, so both have A's objects
     * in their magazines when it is destroyed. */
    slab_cache_t *a = slab_cache_create("reuse-A", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(a);
    hd.cache = md.cache = a;
    helper_run(&h, job_alloc_then_free);
    for (size_t i = 0; i < REUSE_N; i++) {
        md.objs[i] = slab_cache_alloc(a);
        assert_non_null(md.objs[i]);
        memset(md.objs[i], 0xA0, 64);
    }
    for (size_t i = 0; i < REUSE_N; i++)
        slab_cache_free(a, md.objs[i]);
    /* The helper took 4 batches of 32 and gave one full magazine to the
     * depot while freeing; this thread's first allocation took that one
     * (63), the other 37 needed 2 batches. */
    slab_cache_stats_t st = test_stats(a);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.alloc_miss, 4 + 2);
    assert_int_equal(st.magazine_objs, 128 + 64);
    assert_int_equal(slab_cache_destroy(a), 0); /* the helper waits, alive */

    /* B, created next, is likely to get A's slot in every thread. */
    slab_cache_t *b = slab_cache_create("reuse-B", 256, 0, 0, NULL, NULL, NULL);
    assert_non_null(b);
    check_counters(b, "fresh cache after a destroyed one", (struct mag_expect){0});
    st = test_stats(b);
    assert_int_equal(st.magazine_size, 63);
    assert_int_equal(st.total_objs, 0);

    hd.cache = md.cache = b;
    helper_run(&h, job_alloc_keep);
    assert_no_thread_failures();
    for (size_t i = 0; i < REUSE_N; i++) {
        md.objs[i] = slab_cache_alloc(b);
        assert_non_null(md.objs[i]);
    }
    static void *all[2 * REUSE_N];
    memcpy(all, hd.objs, sizeof hd.objs);
    memcpy(all + REUSE_N, md.objs, sizeof md.objs);
    for (size_t i = 0; i < 2 * REUSE_N; i++) {
        if (slab_owner(all[i]) != b)
            fail_msg("object %zu (%p) from B is owned by %s", i, all[i],
                     slab_owner(all[i]) ? slab_cache_name(slab_owner(all[i])) : "nothing");
        memset(all[i], (int)(i & 0xff), 256);
    }
    assert_disjoint(all, 2 * REUSE_N, 256);
    for (size_t i = 0; i < 2 * REUSE_N; i++) {
        const unsigned char *p = all[i];
        for (size_t k = 0; k < 256; k++)
            if (p[k] != (unsigned char)(i & 0xff))
                fail_msg("object %zu of B overwritten at byte %zu", i, k);
    }
    st = test_stats(b);
    assert_int_equal(st.allocations, 2 * REUSE_N);
    assert_int_equal(st.alloc_miss, 2 * 4); /* ceil(100 / 32) per thread */
    assert_int_equal(st.active_objs, 2 * REUSE_N);

    helper_run(&h, job_free_kept);
    for (size_t i = 0; i < REUSE_N; i++)
        slab_cache_free(b, md.objs[i]);
    /* Anything that is not an object of B in a magazine would be reported
     * when destroy gives the magazines back to the slab layer. */
    assert_int_equal(slab_cache_destroy(b), 0);
    expect_no_error();
    helper_stop(&h);
    assert_no_thread_failures();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 4. Destroy after other threads freed objects into their magazines    */

enum { DT_THREADS = 4, DT_OBJS = 300 };

struct dt_data {
    slab_cache_t *cache;
    struct cobj *objs[DT_OBJS];
    struct dt_data *next; /* whose objects this thread frees */
    struct cobj *held;    /* one object kept back (variant c) */
};

static void job_dt_alloc(struct helper *h)
{
    struct dt_data *d = h->arg;
    for (size_t i = 0; i < DT_OBJS; i++) {
        d->objs[i] = slab_cache_alloc(d->cache);
        if (!d->objs[i] || d->objs[i]->magic != OBJ_MAGIC) {
            thread_fail("helper %d: allocation %zu failed or not constructed", h->id, i);
            return;
        }
        d->objs[i]->state = (uint64_t)h->id << 32 | i;
    }
}

/* Free the objects another helper allocated (they go into this thread's
 * magazines). */
static void job_dt_free_next(struct helper *h)
{
    struct dt_data *d = h->arg, *n = d->next;
    for (size_t i = 0; i < DT_OBJS; i++) {
        if (!n->objs[i])
            continue;
        if ((n->objs[i]->state & 0xffffffffu) != i)
            thread_fail("helper %d: object %zu of its neighbour corrupted", h->id, i);
        slab_cache_free(d->cache, n->objs[i]);
        n->objs[i] = NULL;
    }
}

static void job_dt_hold_one(struct helper *h)
{
    struct dt_data *d = h->arg;
    d->held = slab_cache_alloc(d->cache);
    if (!d->held)
        thread_fail("helper %d: allocation failed", h->id);
}

static void job_dt_free_held(struct helper *h)
{
    struct dt_data *d = h->arg;
    slab_cache_free(d->cache, d->held);
    d->held = NULL;
}

static void dt_setup(struct helper *h, struct dt_data *d, slab_cache_t *c)
{
    for (int i = 0; i < DT_THREADS; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].cache = c;
        d[i].next = &d[(i + 1) % DT_THREADS];
        helper_start(&h[i], i, &d[i]);
    }
}

static void dt_all(struct helper *h, void (*job)(struct helper *))
{
    for (int i = 0; i < DT_THREADS; i++)
        helper_post(&h[i], job);
    for (int i = 0; i < DT_THREADS; i++)
        helper_wait(&h[i]);
}

/* (a) the threads have exited */
static void test_destroy_after_threads_exited(void **state)
{
    (void)state;
    reset_ctor_counts();
    slab_cache_t *c = slab_cache_create("dt-exited", sizeof(struct cobj), 0, 0, cobj_ctor,
                                        cobj_dtor, &c_ctor);
    assert_non_null(c);
    struct helper h[DT_THREADS];
    struct dt_data d[DT_THREADS];
    dt_setup(h, d, c);
    dt_all(h, job_dt_alloc);
    dt_all(h, job_dt_free_next);
    for (int i = 0; i < DT_THREADS; i++)
        helper_stop(&h[i]);
    assert_no_thread_failures();

    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.allocations, DT_THREADS * DT_OBJS);
    assert_int_equal(st.frees, DT_THREADS * DT_OBJS);
    assert_int_equal(st.active_objs, 0);
    assert_true(st.magazine_objs > 0);              /* the objects came home... */
    assert_true(st.depot_full > 0);                 /* ...into the depot */
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(atomic_load(&c_dtor), atomic_load(&c_ctor));
    assert_int_equal(atomic_load(&c_bad_dtor), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* (b) the threads are alive, idle, with objects in their magazines */
static void test_destroy_with_idle_threads(void **state)
{
    (void)state;
    reset_ctor_counts();
    slab_cache_t *c = slab_cache_create("dt-idle", sizeof(struct cobj), 0, 0, cobj_ctor,
                                        cobj_dtor, &c_ctor);
    assert_non_null(c);
    struct helper h[DT_THREADS];
    struct dt_data d[DT_THREADS];
    dt_setup(h, d, c);
    dt_all(h, job_dt_alloc);
    dt_all(h, job_dt_free_next);
    assert_no_thread_failures();

    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.allocations, DT_THREADS * DT_OBJS);
    assert_int_equal(st.active_objs, 0);
    /* Every object out of the slab layer is cached in a magazine. */
    assert_true(st.magazine_objs >= DT_THREADS * DT_OBJS);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(atomic_load(&c_dtor), atomic_load(&c_ctor));
    expect_no_error();
    assert_verify_clean();
    /* The helpers exit after the cache is gone and never touch it again. */
    for (int i = 0; i < DT_THREADS; i++)
        helper_stop(&h[i]);
    assert_int_equal(atomic_load(&c_bad_dtor), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* (c) one object still held: EBUSY, count 1, and the cache stays usable */
static void test_destroy_busy_then_usable(void **state)
{
    (void)state;
    reset_ctor_counts();
    slab_cache_t *c = slab_cache_create("dt-busy", sizeof(struct cobj), 0, 0, cobj_ctor,
                                        cobj_dtor, &c_ctor);
    assert_non_null(c);
    struct helper h[DT_THREADS];
    struct dt_data d[DT_THREADS];
    dt_setup(h, d, c);
    dt_all(h, job_dt_alloc);
    dt_all(h, job_dt_free_next);
    helper_run(&h[2], job_dt_hold_one);
    assert_no_thread_failures();

    errno = 0;
    assert_int_equal(slab_cache_destroy(c), -1);
    assert_int_equal(errno, EBUSY);
    expect_one_error(SLAB_ERR_BUSY);
    assert_int_equal(test_err.n, 1);
    assert_string_equal(test_err.cache, "dt-busy");
    test_errors_reset();

    /* Nothing was lost and the magazines were all brought home. */
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.active_objs, 1);
    assert_int_equal(st.allocations, DT_THREADS * DT_OBJS + 1);
    assert_int_equal(st.frees, DT_THREADS * DT_OBJS);
    assert_int_equal(st.magazine_objs, 0);
    assert_int_equal(st.depot_full, 0);
    assert_int_equal(st.depot_empty, 0);
    assert_verify_clean();

    /* Still usable, by every thread. */
    dt_all(h, job_dt_alloc);
    dt_all(h, job_dt_free_next);
    struct cobj *p = slab_cache_alloc(c);
    assert_non_null(p);
    assert_true(p->magic == OBJ_MAGIC);
    slab_cache_free(c, p);
    helper_run(&h[2], job_dt_free_held);
    assert_no_thread_failures();
    st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.allocations, st.frees);

    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    for (int i = 0; i < DT_THREADS; i++)
        helper_stop(&h[i]);
    assert_int_equal(atomic_load(&c_dtor), atomic_load(&c_ctor));
    assert_int_equal(atomic_load(&c_bad_dtor), 0);
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 5. Thread exit returns the thread's magazines                        */

struct exit_data {
    slab_cache_t *cache;
    size_t n;
};

static void *alloc_free_and_exit(void *arg)
{
    struct exit_data *d = arg;
    void **objs = calloc(d->n, sizeof *objs);
    if (!objs) {
        thread_fail("calloc");
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        objs[i] = slab_cache_alloc(d->cache);
        if (!objs[i])
            thread_fail("allocation %zu failed", i);
    }
    for (size_t i = 0; i < d->n; i++)
        slab_cache_free(d->cache, objs[i]);
    free(objs);
    return NULL; /* no further call into the library */
}

static void test_thread_exit_returns_magazines(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("exit", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    struct exit_data d = {c, 1000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alloc_free_and_exit, &d), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_no_thread_failures();

    /*
     * Before the exit (see test_counters_exact): 32 misses (S = 1024), 968
     * hits; the frees overflow the loaded magazine 16 times, 15 full
     * magazines go to the depot, the loaded one holds 16 and the previous
     * one is full.  At exit the full one joins the depot and the partly
     * filled one gives its 16 objects to the slab layer and stays as an
     * empty magazine: 16 full (1008 objects), 1 empty.
     */
    check_counters(c, "after the thread exited",
                   (struct mag_expect){.allocations = 1000,
                                       .frees = 1000,
                                       .alloc_hit = 968,
                                       .alloc_miss = 32,
                                       .free_hit = 1000,
                                       .exchanges = 15,
                                       .depot_full = 16,
                                       .depot_empty = 1,
                                       .magazine_objs = 16 * 63});
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.magazine_objs, st.depot_full * st.magazine_size);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 6. Cross-thread frees with more threads than cores, and a reaper     */

/*
 * Four producer/consumer pairs: each producer hands objects through its
 * pair's ring to the consumer, which checks and frees them (so they go
 * into the consumer's magazines, not the allocator's); every thread also
 * allocates and frees locally and passes objects through a shared ring.
 * Three caches (48 B with a constructor, 300 B, 5000 B: magazines of 63,
 * 31 and 7 rounds to start with).  Every object carries its address and
 * a tag-derived fill, checked before it is freed.  Meanwhile another
 * thread runs slab_reap() in a loop (and slab_verify() now and then).
 */

enum { XS_PAIRS = 4, XS_THREADS = 2 * XS_PAIRS, XS_CACHES = 3, XS_RING = 64, XS_LOCAL = 48 };

static const size_t xs_sizes[XS_CACHES] = {48, 300, 5000};
static slab_cache_t *xs_caches[XS_CACHES];

struct xs_item {
    void *obj;
    int ci;
};

struct xs_ring {
    pthread_mutex_t lock;
    struct xs_item items[XS_RING];
    size_t head, count;
};

static struct xs_ring xs_rings[XS_PAIRS];
static struct xs_ring xs_shared;

static int ring_put(struct xs_ring *r, struct xs_item it)
{
    int ok = 0;
    pthread_mutex_lock(&r->lock);
    if (r->count < XS_RING) {
        r->items[(r->head + r->count) % XS_RING] = it;
        r->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static int ring_take(struct xs_ring *r, struct xs_item *it)
{
    int ok = 0;
    pthread_mutex_lock(&r->lock);
    if (r->count > 0) {
        *it = r->items[r->head];
        r->head = (r->head + 1) % XS_RING;
        r->count--;
        ok = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

/* [magic (cache 0, constructed)] address, tag, fill */
static size_t xs_off(int ci) { return ci == 0 ? 8 : 0; }

static void xs_put_pattern(int ci, void *obj)
{
    test_put_pattern(obj, xs_sizes[ci], xs_off(ci));
}

static int xs_check_pattern(int ci, const void *obj)
{
    if (!test_check_pattern(obj, xs_sizes[ci], xs_off(ci), ci))
        return 0;
    if (ci == 0 && *(const uint64_t *)obj != OBJ_MAGIC) {
        thread_fail("constructed object %p lost its magic", obj);
        return 0;
    }
    return 1;
}

static void xs_free(struct xs_item it)
{
    if (xs_check_pattern(it.ci, it.obj)) {
        if (slab_owner(it.obj) != xs_caches[it.ci])
            thread_fail("slab_owner(%p) is not cache %d", it.obj, it.ci);
        memset((unsigned char *)it.obj + xs_off(it.ci), 0xEE, 16);
    }
    slab_cache_free(xs_caches[it.ci], it.obj);
}

static int xs_alloc(int ci, struct xs_item *it)
{
    void *p = slab_cache_alloc(xs_caches[ci]);
    if (!p) {
        thread_fail("allocation from cache %d failed (errno %d)", ci, errno);
        return 0;
    }
    if (ci == 0 && *(uint64_t *)p != OBJ_MAGIC)
        thread_fail("object %p not constructed", p);
    xs_put_pattern(ci, p);
    it->obj = p;
    it->ci = ci;
    return 1;
}

static int xs_ctor(void *obj, void *arg)
{
    (void)arg;
    *(uint64_t *)obj = OBJ_MAGIC;
    atomic_fetch_add(&c_ctor, 1);
    return 0;
}

static void xs_dtor(void *obj, void *arg)
{
    (void)arg;
    if (*(uint64_t *)obj != OBJ_MAGIC)
        atomic_fetch_add(&c_bad_dtor, 1);
    atomic_fetch_add(&c_dtor, 1);
}

struct xs_worker {
    pthread_t tid;
    int id, producer;
    size_t iters;
    size_t allocs, frees, cross_frees;
};

static void *xs_worker_main(void *arg)
{
    struct xs_worker *w = arg;
    struct xs_ring *ring = &xs_rings[w->id / 2];
    struct xs_item local[XS_LOCAL], it;
    size_t nlocal = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 11);
    for (size_t n = 0; n < w->iters && atomic_load(&test_thread_failures) == 0; n++) {
        uint64_t r = test_rand(&rng);
        int ci = (int)((r >> 16) % XS_CACHES);
        switch (r % 8) {
        case 0:
        case 1:
        case 2:
            if (w->producer) { /* hand an object to the consumer */
                if (!xs_alloc(ci, &it))
                    break;
                w->allocs++;
                if (!ring_put(ring, it)) {
                    xs_free(it);
                    w->frees++;
                }
            } else if (ring_take(ring, &it)) { /* free what the producer made */
                xs_free(it);
                w->cross_frees++;
            }
            break;
        case 3:
        case 4:
            if (nlocal < XS_LOCAL && xs_alloc(ci, &local[nlocal])) {
                nlocal++;
                w->allocs++;
            }
            break;
        case 5:
            if (nlocal > 0) {
                size_t i = (size_t)((r >> 24) % nlocal);
                xs_free(local[i]);
                local[i] = local[--nlocal];
                w->frees++;
            }
            break;
        case 6:
            if (nlocal > 0) {
                size_t i = (size_t)((r >> 24) % nlocal);
                if (ring_put(&xs_shared, local[i]))
                    local[i] = local[--nlocal];
            }
            break;
        case 7:
            if (ring_take(&xs_shared, &it)) {
                xs_free(it);
                w->cross_frees++;
            }
            break;
        }
    }
    while (nlocal > 0) {
        xs_free(local[--nlocal]);
        w->frees++;
    }
    return NULL;
}

static atomic_int xs_done;
static atomic_ulong xs_reaps, xs_verify_problems;

static void *xs_reaper(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!atomic_load(&xs_done)) {
        slab_reap();
        if (++n % 8 == 0) {
            size_t p = slab_verify();
            if (p)
                atomic_fetch_add(&xs_verify_problems, p);
        }
        atomic_fetch_add(&xs_reaps, 1);
        sleep_us(200);
    }
    return NULL;
}

static void test_cross_thread_stress_with_reaper(void **state)
{
    (void)state;
    reset_ctor_counts();
    atomic_store(&xs_done, 0);
    atomic_store(&xs_reaps, 0);
    atomic_store(&xs_verify_problems, 0);
    for (int i = 0; i < XS_PAIRS; i++) {
        memset(&xs_rings[i], 0, sizeof xs_rings[i]);
        pthread_mutex_init(&xs_rings[i].lock, NULL);
    }
    memset(&xs_shared, 0, sizeof xs_shared);
    pthread_mutex_init(&xs_shared.lock, NULL);
    xs_caches[0] = slab_cache_create("xs-ctor", xs_sizes[0], 0, 0, xs_ctor,
                                     xs_dtor, NULL);
    xs_caches[1] = slab_cache_create("xs-mid", xs_sizes[1], 0, 0, NULL, NULL, NULL);
    xs_caches[2] = slab_cache_create("xs-large", xs_sizes[2], 0, 0, NULL, NULL, NULL);
    for (int i = 0; i < XS_CACHES; i++)
        assert_non_null(xs_caches[i]);

    struct xs_worker w[XS_THREADS];
    memset(w, 0, sizeof w);
    size_t iters = test_scaled(50000);
    pthread_t reaper;
    assert_int_equal(pthread_create(&reaper, NULL, xs_reaper, NULL), 0);
    for (int i = 0; i < XS_THREADS; i++) {
        w[i].id = i;
        w[i].producer = i % 2 == 0;
        w[i].iters = iters;
        assert_int_equal(pthread_create(&w[i].tid, NULL, xs_worker_main, &w[i]), 0);
    }
    size_t allocs = 0, frees = 0, cross = 0;
    for (int i = 0; i < XS_THREADS; i++) {
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
        allocs += w[i].allocs;
        frees += w[i].frees;
        cross += w[i].cross_frees;
    }
    atomic_store(&xs_done, 1);
    assert_int_equal(pthread_join(reaper, NULL), 0);
    struct xs_item it;
    for (int i = 0; i < XS_PAIRS; i++)
        while (ring_take(&xs_rings[i], &it)) {
            xs_free(it);
            cross++;
        }
    while (ring_take(&xs_shared, &it)) {
        xs_free(it);
        cross++;
    }
    assert_no_thread_failures();
    /* slab_verify() reports what it finds: kept to be checked last */
    unsigned long verify_problems = atomic_load(&xs_verify_problems);
    static char verify_report[sizeof test_err.message];
    memcpy(verify_report, test_err.message, sizeof verify_report);
    unsigned reports = test_errors_count();
    test_errors_reset();
    assert_true(atomic_load(&xs_reaps) >= 1);
    assert_int_equal(frees + cross, allocs);
    assert_true(cross >= allocs / 10); /* many objects changed threads */

    uint64_t total = 0;
    for (int i = 0; i < XS_CACHES; i++) {
        slab_cache_stats_t st = test_stats(xs_caches[i]);
        assert_int_equal(st.active_objs, 0);
        assert_int_equal(st.allocations, st.frees);
        assert_int_equal(st.errors, verify_problems ? st.errors : 0);
        total += st.allocations;
    }
    assert_int_equal(total, allocs);
    assert_verify_clean();
    slab_cache_stats_t st = test_stats(xs_caches[0]);
    assert_int_equal(atomic_load(&c_ctor) - atomic_load(&c_dtor), st.total_objs);
    for (int i = 0; i < XS_CACHES; i++)
        assert_int_equal(slab_cache_destroy(xs_caches[i]), 0);
    assert_int_equal(atomic_load(&c_ctor), atomic_load(&c_dtor));
    assert_int_equal(atomic_load(&c_bad_dtor), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
    for (int i = 0; i < XS_PAIRS; i++)
        pthread_mutex_destroy(&xs_rings[i].lock);
    pthread_mutex_destroy(&xs_shared.lock);
    if (verify_problems)
        fail_msg("slab_verify() found %lu problems while threads ran (%s)", verify_problems,
                 verify_report);
    if (reports)
        fail_msg("%u reports while threads ran; last: %s", reports, verify_report);
}

/*
 * A refill is a batch: when the slabs a cache has run out in the middle
 * of one, the cache grows with its lock dropped (constructors run with no
 * lock held).  Another thread looking at the cache meanwhile must still
 * find it consistent.  Objects of 100 B: about 40 to a slab, batches of
 * 32, so the second refill takes the last few objects of the first slab
 * and then grows; a constructor that waits for the main thread holds the helper
 * right there while the main thread runs slab_verify() and reads stats.
 */
static atomic_int gate_armed, gate_blocked, gate_open;

static int gated_ctor(void *obj, void *arg)
{
    (void)arg;
    memset(obj, 0, 100);
    int one = 1;
    if (atomic_compare_exchange_strong(&gate_armed, &one, 0)) {
        atomic_store(&gate_blocked, 1);
        while (!atomic_load(&gate_open))
            sleep_us(100);
    }
    return 0;
}

static struct {
    slab_cache_t *cache;
    void *objs[33];
    size_t n;
} grow;

static void job_grow_alloc(struct helper *h)
{
    (void)h;
    void *p = slab_cache_alloc(grow.cache);
    if (!p)
        thread_fail("allocation failed");
    grow.objs[grow.n++] = p;
}

static void job_grow_alloc_32(struct helper *h)
{
    for (int i = 0; i < 32; i++)
        job_grow_alloc(h);
}

static void job_grow_free(struct helper *h)
{
    (void)h;
    while (grow.n > 0)
        slab_cache_free(grow.cache, grow.objs[--grow.n]);
}

static void test_verify_during_refill_growth(void **state)
{
    (void)state;
    atomic_store(&gate_armed, 0);
    atomic_store(&gate_blocked, 0);
    atomic_store(&gate_open, 0);
    grow.cache = slab_cache_create("refill-grow", 100, 0, 0, gated_ctor, NULL, NULL);
    grow.n = 0;
    assert_non_null(grow.cache);
    slab_cache_stats_t st = test_stats(grow.cache);
    assert_int_equal(st.batchcount, 32);
    /* the second batch of 32 ends beyond the first slab */
    assert_true(st.objs_per_slab > 32 && st.objs_per_slab < 64);
    struct helper h;
    helper_start(&h, 1, NULL);
    helper_run(&h, job_grow_alloc_32); /* one refill: 32 of the first slab's objects */
    st = test_stats(grow.cache);
    assert_int_equal(st.total_slabs, 1);
    assert_int_equal(st.alloc_miss, 1);

    atomic_store(&gate_armed, 1);
    helper_post(&h, job_grow_alloc); /* refill: 8 taken, then the cache grows */
    while (!atomic_load(&gate_blocked))
        sleep_us(100);
    size_t problems = slab_verify();
    unsigned reports = test_errors_count();
    static char last[sizeof test_err.message];
    memcpy(last, test_err.message, sizeof last);
    atomic_store(&gate_open, 1);
    helper_wait(&h);
    assert_no_thread_failures();
    helper_run(&h, job_grow_free);
    helper_stop(&h);
    st = test_stats(grow.cache);
    assert_int_equal(st.active_objs, 0);
    uint64_t errors = st.errors;
    assert_int_equal(slab_cache_destroy(grow.cache), 0);
    if (problems != 0 || reports != 0)
        fail_msg("slab_verify() found %zu problem(s) while another thread's refill was growing "
                 "the cache (%u report(s), last: %s); the cache now counts %llu error(s)",
                 problems, reports, last, (unsigned long long)errors);
    assert_int_equal(errors, 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 7. fork() while other threads allocate and free                      */

/*
 * Worker threads allocate and free bursts of objects of two shared caches
 * and of a private one each, and keep a few objects for a while.  Objects
 * of 5000 B have 7-round magazines, so a thread trades with the depot
 * every few operations (the shared caches' magazines grow when their
 * depots are contended; the private ones stay small).  For every
 * fork one worker is stopped where it happens to be by a signal (the
 * child inherits it frozen at that point, like any thread at a fork), and
 * another thread forks.  The child checks its heap: slab_verify(), sane
 * statistics, many objects of the shared caches all distinct, and a new
 * cache created, used and destroyed.
 */
enum { FK_WORKERS = 3, FK_SHARED = 2, FK_CACHES = FK_SHARED + FK_WORKERS, FK_HOLD = 8,
       FK_BURST = 24, FK_CHILD_MAX = 4096 };

/* shared large, shared small, then one private cache per worker */
static const size_t fk_sizes[FK_CACHES] = {5000, 64, 5000, 5000, 5000};
static slab_cache_t *fk_caches[FK_CACHES];
static atomic_int fk_stop;
static atomic_ulong fk_ops;
/* The stop handshake, with pipes: read and write may be called from a
 * signal handler, and a blocked reader costs nothing (under valgrind too). */
static int fk_paused_pipe[2], fk_release_pipe[2];

struct fk_worker {
    pthread_t tid;
    int id;
    size_t allocs;
};

static void fk_pause_handler(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 'p';
    (void)!write(fk_paused_pipe[1], &c, 1);
    while (read(fk_release_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    errno = saved;
}

/* Wait for a byte on fd for at most timeout_ms: 1 if one came. */
static int pipe_wait(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    while ((rc = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    char c;
    return rc == 1 && read(fd, &c, 1) == 1;
}

static void *fk_worker_main(void *arg)
{
    struct fk_worker *w = arg;
    uint64_t rng = 0xD1B54A32D192ED03ULL * (uint64_t)(w->id + 3);
    uint64_t *burst[FK_BURST], *held[FK_HOLD] = {0};
    int held_ci[FK_HOLD] = {0};
    while (!atomic_load(&fk_stop) && atomic_load(&test_thread_failures) == 0) {
        uint64_t r = test_rand(&rng);
        int ci = r % 4 < 2 ? FK_SHARED + w->id : (int)(r % 4 - 2);
        size_t n = 1 + (size_t)((r >> 8) % FK_BURST);
        for (size_t i = 0; i < n; i++) {
            burst[i] = slab_cache_alloc(fk_caches[ci]);
            if (!burst[i]) {
                thread_fail("fork worker %d: allocation failed", w->id);
                n = i;
                break;
            }
            burst[i][0] = (uint64_t)(uintptr_t)burst[i];
            burst[i][fk_sizes[ci] / 8 - 1] = ~(uint64_t)(uintptr_t)burst[i];
            w->allocs++;
        }
        size_t k = (size_t)((r >> 20) % FK_HOLD);
        if (n > 0) { /* keep one for a while, give back the one kept before */
            uint64_t *old = held[k];
            int old_ci = held_ci[k];
            held[k] = burst[--n];
            held_ci[k] = ci;
            if (old)
                slab_cache_free(fk_caches[old_ci], old);
        }
        while (n > 0) {
            uint64_t *p = burst[--n];
            if (p[0] != (uint64_t)(uintptr_t)p || p[fk_sizes[ci] / 8 - 1] != ~(uint64_t)(uintptr_t)p)
                thread_fail("fork worker %d: object %p overwritten", w->id, (void *)p);
            slab_cache_free(fk_caches[ci], p);
        }
        /* let the others run: under valgrind a thread that never blocks
         * can starve the rest */
        if (atomic_fetch_add(&fk_ops, 1) % 16 == 0 && RUNNING_ON_VALGRIND)
            sched_yield();
    }
    for (int k = 0; k < FK_HOLD; k++)
        if (held[k])
            slab_cache_free(fk_caches[held_ci[k]], held[k]);
    return NULL;
}

/* The child: report and exit with a code naming the failed check. */
static void child_fail(int code, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        (void)!write(STDERR_FILENO, "fork child: ", 12);
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)!write(STDERR_FILENO, "\n", 1);
    }
    _exit(code);
}

static void *child_objs[FK_CHILD_MAX];

static void fork_child_checks(void)
{
    test_fork_child_of_threads();
    /* a crash in the child is the child's, not a test failure to catch */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    size_t problems = slab_verify();
    if (problems)
        child_fail(2, "slab_verify() found %zu problems right after fork (%s)", problems,
                   test_err.message);
    for (int ci = 0; ci < FK_CACHES; ci++) {
        slab_cache_t *c = fk_caches[ci];
        slab_cache_stats_t st;
        if (slab_cache_stats(c, &st) != 0)
            child_fail(3, "stats of %s failed", slab_cache_name(c));
        const char *why = st.frees > st.allocations                ? "frees > allocations"
                          : st.active_objs > st.total_objs         ? "active > total"
                          : st.magazine_objs > st.total_objs       ? "magazine_objs > total"
                          : st.total_objs != st.total_slabs * st.objs_per_slab
                              ? "total_objs != total_slabs * objs_per_slab"
                          : st.depot_full + st.depot_empty > st.total_objs
                              ? "more magazines in the depot than objects"
                              : NULL;
        if (why)
            child_fail(3, "%s: insane stats (%s): allocations %llu frees %llu active %zu "
                          "magazine_objs %zu total %zu (%zu slabs of %zu) depot %zu/%zu "
                          "magazine_size %zu",
                       st.name, why, (unsigned long long)st.allocations,
                       (unsigned long long)st.frees, st.active_objs, st.magazine_objs,
                       st.total_objs, st.total_slabs, st.objs_per_slab, st.depot_full,
                       st.depot_empty, st.magazine_size);
        /* Take everything the magazines hold and more: no object twice. */
        size_t n = (st.depot_full + st.depot_empty + 4) * st.magazine_size + 300;
        if (n > FK_CHILD_MAX)
            n = FK_CHILD_MAX;
        for (size_t i = 0; i < n; i++) {
            child_objs[i] = slab_cache_alloc(c);
            if (!child_objs[i])
                child_fail(4, "%s: allocation %zu of %zu failed", st.name, i, n);
            if (slab_owner(child_objs[i]) != c)
                child_fail(4, "%s: allocation %zu is not owned by the cache", st.name, i);
            memset(child_objs[i], 0, fk_sizes[ci]);
            *(size_t *)child_objs[i] = i;
            ((size_t *)child_objs[i])[fk_sizes[ci] / sizeof(size_t) - 1] = i;
        }
        for (size_t i = 0; i < n; i++) {
            const size_t *p = child_objs[i];
            if (p[0] != i || p[fk_sizes[ci] / sizeof(size_t) - 1] != i)
                child_fail(5, "%s: object %zu of %zu (%p) handed out twice or overlapping",
                           st.name, i, n, child_objs[i]);
        }
        if (first_overlap(child_objs, n, fk_sizes[ci]))
            child_fail(5, "%s: %zu allocations overlap", st.name, n);
        for (size_t i = 0; i < n; i++)
            slab_cache_free(c, child_objs[i]);
        slab_cache_shrink(c);
        if (slab_cache_stats(c, &st) != 0 || st.depot_full || st.depot_empty)
            child_fail(6, "%s: depot not empty after shrink (%zu/%zu)", st.name, st.depot_full,
                       st.depot_empty);
    }
    /* A new cache works and can be destroyed. */
    slab_cache_t *k = slab_cache_create("fork-child", 128, 0, 0, NULL, NULL, NULL);
    if (!k)
        child_fail(7, "create in the child failed");
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 1000; i++) {
            child_objs[i] = slab_cache_alloc(k);
            if (!child_objs[i])
                child_fail(7, "allocation from the new cache failed");
            memset(child_objs[i], (int)i, 128);
        }
        if (first_overlap(child_objs, 1000, 128))
            child_fail(7, "allocations of the new cache overlap");
        for (size_t i = 0; i < 1000; i++)
            slab_cache_free(k, child_objs[i]);
    }
    if (slab_cache_destroy(k) != 0)
        child_fail(8, "destroying the new cache failed (errno %d)", errno);
    problems = slab_verify();
    if (problems)
        child_fail(9, "slab_verify() found %zu problems at the end (%s)", problems,
                   test_err.message);
    if (test_errors_count())
        child_fail(10, "%u reports in the child; last: %s", test_errors_count(), test_err.message);
    _exit(0);
}

/* The thread that forks (the main thread only directs). */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go, done, quit;
    pid_t pid;
    int err;
} forker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0};

static void *forker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&forker.lock);
    for (;;) {
        while (!forker.go && !forker.quit)
            pthread_cond_wait(&forker.cond, &forker.lock);
        if (forker.quit)
            break;
        forker.go = 0;
        pthread_mutex_unlock(&forker.lock);
        pid_t pid = fork();
        if (pid == 0)
            fork_child_checks(); /* never returns */
        int err = errno;
        pthread_mutex_lock(&forker.lock);
        forker.pid = pid;
        forker.err = err;
        forker.done = 1;
        pthread_cond_broadcast(&forker.cond);
    }
    pthread_mutex_unlock(&forker.lock);
    return NULL;
}

/* Ask for a fork; 1 if it completed within timeout_ms. */
static int forker_wait(long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&forker.lock);
    while (!forker.done && rc == 0)
        rc = pthread_cond_timedwait(&forker.cond, &forker.lock, &until);
    int done = forker.done;
    pthread_mutex_unlock(&forker.lock);
    return done;
}

static void test_fork_with_threads(void **state)
{
    (void)state;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fk_pause_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old_sa), 0);
    atomic_store(&fk_stop, 0);
    assert_int_equal(pipe(fk_paused_pipe), 0);
    assert_int_equal(pipe(fk_release_pipe), 0);
    static const char *const names[FK_CACHES] = {"fork-large", "fork-small", "fork-own-0",
                                                  "fork-own-1", "fork-own-2"};
    for (int i = 0; i < FK_CACHES; i++) {
        fk_caches[i] = slab_cache_create(names[i], fk_sizes[i], 0, 0, NULL, NULL, NULL);
        assert_non_null(fk_caches[i]);
    }
    struct fk_worker w[FK_WORKERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < FK_WORKERS; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&w[i].tid, NULL, fk_worker_main, &w[i]), 0);
    }
    pthread_t ft;
    forker.quit = forker.go = forker.done = 0;
    assert_int_equal(pthread_create(&ft, NULL, forker_main, NULL), 0);

    /* under valgrind every child is slow to check and to exit */
    size_t forks = test_scaled(RUNNING_ON_VALGRIND ? 6 : 40);
    if (forks < 4)
        forks = 4;
    size_t paused_forks = 0;
    char failed[256] = "";
    for (size_t f = 0; f < forks && !failed[0]; f++) {
        /* let the workers get going */
        unsigned long ops = atomic_load(&fk_ops);
        for (int spin = 0; spin < 100 && atomic_load(&fk_ops) < ops + 50; spin++)
            sleep_us(1000);
        int victim = (int)(f % FK_WORKERS);
        int paused = 0, signalled = pthread_kill(w[victim].tid, SIGUSR1) == 0;
        if (signalled)
            paused = pipe_wait(fk_paused_pipe[0], 10000);
        pthread_mutex_lock(&forker.lock);
        forker.done = 0;
        forker.go = 1;
        pthread_cond_broadcast(&forker.cond);
        pthread_mutex_unlock(&forker.lock);
        /* If the stopped worker holds a lock the fork needs, the fork waits
         * for it: let the worker go on. */
        int forked_while_paused = forker_wait(200) && paused;
        char go = 'g';
        if (signalled)
            (void)!write(fk_release_pipe[1], &go, 1);
        if (signalled && !paused)
            paused = pipe_wait(fk_paused_pipe[0], 10000); /* it stops and goes at once */
        if (!forker_wait(120000)) {
            snprintf(failed, sizeof failed, "fork %zu never completed", f);
            break;
        }
        paused_forks += forked_while_paused;
        pid_t pid = forker.pid;
        int status = 0;
        if (pid <= 0)
            snprintf(failed, sizeof failed, "fork %zu failed (errno %d)", f, forker.err);
        else if (!wait_child(pid, 30000, &status))
            snprintf(failed, sizeof failed,
                     "fork %zu (worker %d %s): the child hung (killed after 30 s)", f, victim,
                     forked_while_paused ? "stopped" : "running");
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            snprintf(failed, sizeof failed, "fork %zu (worker %d %s): the child %s %d", f,
                     victim, forked_while_paused ? "stopped" : "running",
                     WIFEXITED(status) ? "exited with" : "was killed by signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    pthread_mutex_lock(&forker.lock);
    forker.quit = 1;
    pthread_cond_broadcast(&forker.cond);
    pthread_mutex_unlock(&forker.lock);
    assert_int_equal(pthread_join(ft, NULL), 0);
    atomic_store(&fk_stop, 1);
    for (int i = 0; i < FK_WORKERS; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
    assert_int_equal(sigaction(SIGUSR1, &old_sa, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(fk_paused_pipe[i]);
        close(fk_release_pipe[i]);
    }
    if (failed[0]) {
        for (int i = 0; i < FK_CACHES; i++)
            slab_cache_destroy(fk_caches[i]);
        fail_msg("%s", failed);
    }
    assert_no_thread_failures();
    assert_true(paused_forks >= 1);

    /* The parent's heap is intact. */
    expect_no_error();
    assert_verify_clean();
    for (int i = 0; i < FK_CACHES; i++) {
        slab_cache_stats_t st = test_stats(fk_caches[i]);
        assert_int_equal(st.active_objs, 0);
        assert_int_equal(st.allocations, st.frees);
        assert_int_equal(slab_cache_destroy(fk_caches[i]), 0);
    }
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 8. Working-set reaping                                               */

static int page_resident(const void *page)
{
    unsigned char v = 0;
    if (mincore((void *)page, SLAB_PAGE_SIZE, &v) != 0)
        return -1;
    return v & 1;
}

struct fill_data {
    slab_cache_t *cache;
    size_t n;
    void **objs; /* optional: where the objects were */
};

static void *fill_depot_and_exit(void *arg)
{
    struct fill_data *d = arg;
    void **objs = d->objs ? d->objs : calloc(d->n, sizeof *objs);
    if (!objs) {
        thread_fail("calloc");
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        objs[i] = slab_cache_alloc(d->cache);
        if (!objs[i]) {
            thread_fail("allocation %zu failed", i);
            return NULL;
        }
        memset(objs[i], 0x5A, slab_cache_object_size(d->cache));
    }
    for (size_t i = 0; i < d->n; i++)
        slab_cache_free(d->cache, objs[i]);
    if (!d->objs)
        free(objs);
    return NULL;
}

static void fill_from_thread(slab_cache_t *c, size_t n, void **objs)
{
    struct fill_data d = {c, n, objs};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fill_depot_and_exit, &d), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_no_thread_failures();
}

/*
 * With the depot limited to 4 KiB (64 objects of 64 B), a thread that
 * frees 5000 objects leaves at most one magazine's worth beyond the limit
 * in the depot: every other full magazine it hands in is emptied into the
 * slabs at once (counted as an overflow), so the slabs come back free
 * without any reap.  Caches created before the limit changed keep theirs.
 */
static void test_depot_limit(void **state)
{
    (void)state;
    slab_options_t o, saved;
    slab_get_options(&saved);
    o = saved;
    o.depot_bytes = 4096;
    assert_int_equal(slab_set_options(&o), 0);
    slab_cache_t *c = slab_cache_create("depot-limit", 64, 0, 0, NULL, NULL, NULL);
    assert_int_equal(slab_set_options(&saved), 0);
    assert_non_null(c);

    fill_from_thread(c, 5000, NULL);
    slab_cache_stats_t st = test_stats(c);
    size_t rounds = st.magazine_size;
    assert_true(st.depot_full * rounds <= 64 + rounds);
    assert_true(st.depot_overflows >= (5000 - 64 - 2 * rounds) / rounds);
    assert_int_equal(st.active_objs, 0);
    /* slabs in use hold only what the magazines cache; of the free ones
     * the cache keeps its 16 (64 KiB) and gives the rest back */
    assert_true(st.active_slabs <= (st.magazine_objs + 63) / 64 + 2);
    assert_true(st.free_slabs <= 16);
    assert_true(st.reaped > 0);
    assert_int_equal(slab_verify(), 0);
    assert_int_equal(slab_cache_destroy(c), 0);
}

/*
 * A thread allocates 5000 objects of 64 B, frees them and exits: the
 * depot holds 79 full magazines (5024 objects left the slab layer in 157
 * batches; 47 of them were in the partly filled loaded magazine, given
 * back at exit) and 1 empty one.  The first slab_reap() ends the interval
 * in which the depot was filled: it never held fewer than 0 magazines, so
 * it frees none.  The second one, with no activity since, frees all of
 * them; the cache allocated nothing from its slabs in between, so it is
 * idle and gives back every free slab; the buddy allocator decommits the
 * dirty free blocks.
 */
static void test_reap_idle_depot(void **state)
{
    (void)state;
    enum { N = 5000 };
    slab_cache_t *c = slab_cache_create("reap-idle", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    void **objs = calloc(N, sizeof *objs);
    assert_non_null(objs);
    fill_from_thread(c, N, objs);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.depot_full, 79);
    assert_int_equal(st.depot_empty, 1);
    assert_int_equal(st.magazine_objs, 79 * 63);
    assert_int_equal(st.active_objs, 0);
    size_t slabs = st.total_slabs;
    size_t slab_pages = slabs * st.pages_per_slab;
    assert_true(slabs >= N / st.objs_per_slab);

    /* The pages that held the objects were written, so they are resident. */
    size_t npages = 0;
    static const void *pages[N];
    for (size_t i = 0; i < N; i++) {
        const void *pg = (const void *)((uintptr_t)objs[i] & ~(uintptr_t)(SLAB_PAGE_SIZE - 1));
        if (npages == 0 || pages[npages - 1] != pg) {
            size_t k = 0;
            while (k < npages && pages[k] != pg)
                k++;
            if (k == npages)
                pages[npages++] = pg;
        }
    }
    free(objs);
    size_t resident_before = 0;
    for (size_t i = 0; i < npages; i++)
        resident_before += page_resident(pages[i]) == 1;
    assert_int_equal(resident_before, npages);

    size_t used_before = test_used_pages();
    slab_reap();
    st = test_stats(c);
    assert_int_equal(st.depot_full, 79); /* used during the interval */
    assert_int_equal(st.depot_empty, 1);

    slab_reap();
    st = test_stats(c);
    if (st.depot_full != 0 || st.depot_empty != 0)
        fail_msg("two reaps with no activity between left %zu full and %zu empty magazines",
                 st.depot_full, st.depot_empty);
    assert_int_equal(st.magazine_objs, 0);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.allocations, N);
    assert_int_equal(st.frees, N);
    size_t used_after = test_used_pages();
    if (used_after + slab_pages > used_before)
        fail_msg("pages in use went from %zu to %zu; the cache's %zu slab pages were released",
                 used_before, used_after, slab_pages);
    size_t resident_after = 0;
    for (size_t i = 0; i < npages; i++)
        resident_after += page_resident(pages[i]) == 1;
    /* Released slabs coalesce into blocks of 64 KiB and more, which the
     * reap decommits: at least one such block's worth is gone. */
    if (resident_after + 16 > npages)
        fail_msg("%zu of the %zu pages that held the objects are still resident", resident_after,
                 npages);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/*
 * A cache in steady use keeps its working set.  The depot starts as above
 * (79 full, 1 empty) and one reap ends that interval.  Then, each
 * interval, this thread allocates 300 objects and frees them, and reaps:
 *
 *   interval 1: this thread's slot is fresh, so the 300 allocations take
 *     5 full magazines from the depot (79 -> 74, the fewest it held), the
 *     frees give 3 back (77).  The reap frees the 74 not needed and the 1
 *     empty one never taken: 3 full, 0 empty remain, and the 2 magazines
 *     of this thread (full) hold the rest of the 315 objects.
 *   later intervals: the 300 allocations need the 2 magazines of the
 *     thread and the 3 of the depot (its count falls to 0), the frees fill
 *     them again.  The reap frees nothing: 3 full again, and not one
 *     allocation in these intervals needs the slab layer.
 *
 * Without activity, one more reap frees the 3 (unused for a whole
 * interval).
 */
static void test_reap_keeps_working_set(void **state)
{
    (void)state;
    enum { N = 300, INTERVALS = 6 };
    static void *objs[N];
    slab_cache_t *c = slab_cache_create("working-set", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    fill_from_thread(c, 5000, NULL);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.depot_full, 79);
    assert_int_equal(st.depot_empty, 1);
    slab_reap();
    st = test_stats(c);
    assert_int_equal(st.depot_full, 79);
    uint64_t misses = st.alloc_miss;

    for (int it = 0; it < INTERVALS; it++) {
        for (size_t i = 0; i < N; i++) {
            objs[i] = slab_cache_alloc(c);
            assert_non_null(objs[i]);
        }
        for (size_t i = 0; i < N; i++)
            slab_cache_free(c, objs[i]);
        st = test_stats(c);
        if (st.alloc_miss != misses)
            fail_msg("interval %d: %llu allocations reached the slab layer; the working set was "
                     "not kept",
                     it, (unsigned long long)(st.alloc_miss - misses));
        assert_int_equal(st.free_miss, 0);
        if (it == 0) {
            assert_int_equal(st.depot_full, 77);
            assert_int_equal(st.depot_empty, 1);
        }
        slab_reap();
        st = test_stats(c);
        if (st.depot_full != 3 || st.depot_empty != 0)
            fail_msg("interval %d: after the reap the depot holds %zu full and %zu empty "
                     "magazines, expected 3 and 0",
                     it, st.depot_full, st.depot_empty);
        assert_int_equal(st.magazine_objs, 5 * 63);
        assert_int_equal(st.active_objs, 0);
    }
    slab_reap();
    st = test_stats(c);
    assert_int_equal(st.depot_full, 0);
    assert_int_equal(st.depot_empty, 0);
    assert_int_equal(st.magazine_objs, 2 * 63); /* this thread's two */
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 9. Reclaim callbacks under memory pressure                           */

enum { RC_MAX = 1024 };

static struct {
    slab_cache_t *cache;
    void *objs[RC_MAX];
    size_t n;
    atomic_int calls;
} reserve;

static void free_reserve(void *arg)
{
    if (arg != &reserve)
        thread_fail("reclaim callback got arg %p", arg);
    atomic_fetch_add(&reserve.calls, 1);
    for (size_t i = 0; i < reserve.n; i++)
        slab_cache_free(reserve.cache, reserve.objs[i]);
    reserve.n = 0;
}

/* Allocate every object of `slabs` slabs of a fresh cache. */
static void take_reserve(slab_cache_t *r, size_t slabs)
{
    slab_cache_stats_t st = test_stats(r);
    size_t n = slabs * st.objs_per_slab;
    assert_true(n <= RC_MAX);
    /* whole batches, so that no object of these slabs stays in a magazine */
    assert_int_equal(n % st.batchcount, 0);
    reserve.cache = r;
    reserve.n = n;
    atomic_store(&reserve.calls, 0);
    for (size_t i = 0; i < n; i++) {
        reserve.objs[i] = slab_cache_alloc(r);
        assert_non_null(reserve.objs[i]);
    }
    st = test_stats(r);
    assert_int_equal(st.total_slabs, slabs);
    assert_int_equal(st.full_slabs, slabs);
    assert_int_equal(st.magazine_objs, 0);
}

/* Use up every object of the slabs a cache has, so that its next
 * allocation needs a new slab.  Returns how many objects it took. */
static size_t fill_cache(slab_cache_t *c, void **objs, size_t max)
{
    size_t n = 0;
    slab_cache_stats_t st = test_stats(c);
    do {
        assert_true(n < max);
        objs[n] = slab_cache_alloc(c);
        assert_non_null(objs[n]);
        n++;
        st = test_stats(c);
    } while (st.magazine_objs != 0 || st.partial_slabs != 0 || st.free_slabs != 0);
    return n;
}

/*
 * Cache x has used up its only slab; cache r holds a reserve: every object
 * of `slabs` whole slabs.  With the page source refusing and every free
 * page of the buddy allocator taken, x's next allocation needs a page: the
 * reclaim callback frees the reserve (on this thread), the reap gives those
 * slabs back and the retry must succeed.
 */
static void reclaim_case(size_t slabs)
{
    static void *xobjs[256];
    install_failing_source();
    slab_cache_t *r = slab_cache_create("reserve", 64, 0, 0, NULL, NULL, NULL);
    slab_cache_t *x = slab_cache_create("needs-slab", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(r);
    assert_non_null(x);
    take_reserve(r, slabs);
    size_t nx = fill_cache(x, xobjs, 256);
    assert_int_equal(slab_cache_set_reclaim(r, free_reserve, &reserve), 0);

    atomic_store(&src_fail, 1);
    size_t taken;
    void *pages = exhaust_pages(&taken);
    assert_true(taken > 0);
    assert_int_equal(test_buddy().free_pages, 0);
    unsigned long refused = atomic_load(&src_refused);

    errno = 0;
    void *p = slab_cache_alloc(x);
    int err = errno;
    assert_true(atomic_load(&src_refused) > refused);
    assert_int_equal(atomic_load(&reserve.calls), 1);
    assert_int_equal(reserve.n, 0);
    if (!p) {
        slab_cache_stats_t rs = test_stats(r);
        char msg[400];
        snprintf(msg, sizeof msg,
                 "allocation failed (errno %d) after the reclaim callback freed %zu whole "
                 "slab(s) of 'reserve' on this thread: it still has %zu slabs (%zu free), %zu "
                 "objects cached in magazines, depot %zu full/%zu empty",
                 err, slabs, rs.total_slabs, rs.free_slabs, rs.magazine_objs, rs.depot_full,
                 rs.depot_empty);
        atomic_store(&src_fail, 0);
        release_pages(pages);
        for (size_t i = 0; i < nx; i++)
            slab_cache_free(x, xobjs[i]);
        slab_cache_destroy(x);
        slab_cache_destroy(r);
        fail_msg("%s", msg);
    }
    assert_ptr_equal(slab_owner(p), x);
    slab_cache_free(x, p);
    assert_verify_clean();

    atomic_store(&src_fail, 0);
    release_pages(pages);
    for (size_t i = 0; i < nx; i++)
        slab_cache_free(x, xobjs[i]);
    assert_int_equal(slab_cache_destroy(x), 0);
    assert_int_equal(slab_cache_destroy(r), 0);
    slab_set_page_source(NULL);
    assert_no_thread_failures();
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

static void test_reclaim_under_pressure(void **state)
{
    (void)state;
    reclaim_case(4);
}

/* A reserve of one slab: its objects fit in the allocating thread's own
 * magazines, where the callback's frees put them. */
static void test_reclaim_under_pressure_small_reserve(void **state)
{
    (void)state;
    reclaim_case(1);
}

/* The same allocation with no callback: nothing can be had, NULL/ENOMEM,
 * and the heap is consistent. */
static void test_no_reclaim_enomem(void **state)
{
    (void)state;
    static void *zobjs[256];
    install_failing_source();
    slab_cache_t *z = slab_cache_create("no-reclaim", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(z);
    size_t nz = fill_cache(z, zobjs, 256);
    slab_reap(); /* nothing left that a reap could give back */
    slab_reap();
    atomic_store(&src_fail, 1);
    void *pages = exhaust_pages(NULL);
    slab_cache_stats_t before = test_stats(z);

    errno = 0;
    void *p = slab_cache_alloc(z);
    assert_null(p);
    assert_int_equal(errno, ENOMEM);
    assert_verify_clean();
    slab_cache_stats_t st = test_stats(z);
    assert_int_equal(st.active_objs, before.active_objs);
    assert_int_equal(st.allocations, before.allocations);
    expect_no_error(); /* running out of memory is not misuse */

    atomic_store(&src_fail, 0);
    release_pages(pages);
    p = slab_cache_alloc(z); /* memory is back */
    assert_non_null(p);
    slab_cache_free(z, p);
    for (size_t i = 0; i < nz; i++)
        slab_cache_free(z, zobjs[i]);
    assert_int_equal(slab_cache_destroy(z), 0);
    slab_set_page_source(NULL);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/*
 * A reclaim callback frees objects (as documented); the automatic reap is
 * due meanwhile, so one of those frees' slow paths runs it.  That must
 * not hang.  Run in a child process so that a hang is seen as one.
 */
static int reclaim_reap_due_child(void)
{
    enum { RESERVE = 1000 };
    slab_options_t o = {.magazines = 1, .reap_interval_ms = 1}; /* reap every millisecond */
    if (slab_set_options(&o) != 0)
        return 1;
    install_failing_source();
    slab_cache_t *r = slab_cache_create("reserve-large", 5000, 0, 0, NULL, NULL, NULL);
    slab_cache_t *x = slab_cache_create("needs-slab", 64, 0, 0, NULL, NULL, NULL);
    static void *xobjs[256];
    if (!r || !x)
        return 2;
    reserve.cache = r;
    reserve.n = 0;
    atomic_store(&reserve.calls, 0);
    /* 1000 allocations with 7-round magazines: 250 slow paths, which
     * start the reap clock. */
    for (size_t i = 0; i < RESERVE; i++) {
        reserve.objs[i] = slab_cache_alloc(r);
        if (!reserve.objs[i])
            return 3;
        reserve.n++;
    }
    size_t nx = 0;
    slab_cache_stats_t st;
    do {
        xobjs[nx] = slab_cache_alloc(x);
        if (!xobjs[nx++] || nx == 256)
            return 4;
        slab_cache_stats(x, &st);
    } while (st.magazine_objs || st.partial_slabs || st.free_slabs);
    slab_cache_set_reclaim(r, free_reserve, &reserve);
    sleep_us(20000); /* the reap is due */
    atomic_store(&src_fail, 1);
    void *pages = exhaust_pages(NULL);
    /* The callback's 1000 frees take more than 64 slow paths. */
    void *p = slab_cache_alloc(x);
    if (atomic_load(&reserve.calls) != 1)
        return 5;
    atomic_store(&src_fail, 0);
    release_pages(pages);
    if (p)
        slab_cache_free(x, p);
    if (slab_verify() != 0)
        return 6;
    for (size_t i = 0; i < nx; i++) /* no leak for memcheck to report */
        slab_cache_free(x, xobjs[i]);
    return 0;
}

static void test_reclaim_callback_frees_with_reap_due(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(reclaim_reap_due_child());
    int status = 0;
    if (!wait_child(pid, 30000, &status))
        fail_msg("the allocation hung: a reclaim callback's frees ran the due reap, which "
                 "never returned");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child %s %d", WIFEXITED(status) ? "exited with" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/*
 * The reclaim callback frees objects of the very cache whose magazine is
 * being refilled, on the refilling thread: a cache of 4096-byte objects
 * (one per slab, so every object needs a page of its own), objects held
 * for the callback, the page source refusing and every free page taken.
 * The next refill runs out of pages; the callback frees the held objects
 * into this thread's slot for the cache (through its fast and slow paths)
 * and the reap after it empties the thread's magazines, all while the
 * refill is in progress.  Allocation goes on until memory runs out, and
 * once more after that.  Every allocation must give an object of the
 * cache that no one else holds, or NULL with ENOMEM; nothing may be lost.
 */
static int held(void *const *objs, size_t n, const void *p)
{
    for (size_t i = 0; i < n; i++)
        if (objs[i] == p)
            return 1;
    return 0;
}

static void test_reclaim_frees_into_refilling_slot(void **state)
{
    (void)state;
    enum { SIZE = 4096, HOLD = 64, ROUNDS = 3, KEEP = RC_MAX };
    static void *kept[KEEP];
    install_failing_source();
    slab_cache_t *c = slab_cache_create("refill-reclaim", SIZE, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    reserve.cache = c;
    reserve.n = 0;
    atomic_store(&reserve.calls, 0);
    assert_int_equal(slab_cache_set_reclaim(c, free_reserve, &reserve), 0);
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < HOLD; i++) {
            void *p = slab_cache_alloc(c);
            assert_non_null(p);
            memset(p, 0x11, SIZE);
            reserve.objs[reserve.n++] = p;
        }
        int calls = atomic_load(&reserve.calls);
        atomic_store(&src_fail, 1);
        void *pages = exhaust_pages(NULL);
        /* until memory runs out, and once more */
        size_t nkept = 0, nulls = 0;
        char why[200] = "";
        while (nulls < 2 && !why[0]) {
            errno = 0;
            void *p = slab_cache_alloc(c);
            int err = errno;
            if (!p) {
                if (err != ENOMEM)
                    snprintf(why, sizeof why, "NULL with errno %d after %zu objects", err,
                             nkept);
                nulls++;
            } else if (slab_owner(p) != c || slab_usable_size(p) != SIZE) {
                snprintf(why, sizeof why, "%p is not an object of the cache", p);
            } else if (held(kept, nkept, p) || held(reserve.objs, reserve.n, p)) {
                snprintf(why, sizeof why, "%p was handed out twice", p);
            } else if (nkept == KEEP) {
                snprintf(why, sizeof why, "more than %d objects with no memory", KEEP);
            } else {
                memset(p, (int)(nkept & 0xff), SIZE);
                kept[nkept++] = p;
            }
        }
        atomic_store(&src_fail, 0);
        release_pages(pages);
        if (why[0])
            fail_msg("round %d: %s (the callback ran %d times)", round, why,
                     atomic_load(&reserve.calls));
        assert_true(atomic_load(&reserve.calls) > calls);
        assert_int_equal(reserve.n, 0);
        assert_true(nkept >= HOLD); /* the pages of the objects the callback freed */
        for (size_t i = 0; i < nkept; i++) {
            const unsigned char *q = kept[i];
            for (size_t k = 0; k < SIZE; k++)
                if (q[k] != (unsigned char)(i & 0xff))
                    fail_msg("round %d: object %zu (%p) overwritten at byte %zu", round, i,
                             kept[i], k);
        }
        for (size_t i = 0; i < nkept; i++)
            slab_cache_free(c, kept[i]);
        assert_int_equal(test_stats(c).active_objs, 0);
        assert_verify_clean();
    }
    assert_int_equal(slab_cache_destroy(c), 0); /* nothing leaked */
    slab_set_page_source(NULL);
    assert_no_thread_failures();
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/*
 * The same on a thread's first use of a cache: making the thread's block
 * of slots runs out of pages, and the reclaim callback frees objects of a
 * cache whose slot is in the block being made (on that thread, which has
 * no block yet, so the frees make one of their own once the callback's
 * first frees have given pages back).  One block must win, the other go
 * back: nothing may stay allocated once the thread has exited.
 */
struct first_use {
    slab_cache_t *x;
    void *p;
    int err;
};

static void job_first_use_alloc(struct helper *h)
{
    struct first_use *f = h->arg;
    errno = 0;
    f->p = slab_cache_alloc(f->x);
    f->err = errno;
    if (f->p)
        slab_cache_free(f->x, f->p);
}

static void test_reclaim_frees_while_slots_are_made(void **state)
{
    (void)state;
    enum { SIZE = 4096, HOLD = 48 };
    install_failing_source();
    slab_cache_t *r = slab_cache_create("first-use-reserve", SIZE, 0, 0, NULL, NULL, NULL);
    slab_cache_t *x = slab_cache_create("first-use", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(r);
    assert_non_null(x);
    reserve.cache = r;
    reserve.n = 0;
    atomic_store(&reserve.calls, 0);
    for (size_t i = 0; i < HOLD; i++) {
        reserve.objs[i] = slab_cache_alloc(r);
        assert_non_null(reserve.objs[i]);
        reserve.n++;
    }
    assert_int_equal(slab_cache_set_reclaim(r, free_reserve, &reserve), 0);
    struct first_use f = {x, NULL, 0};
    struct helper h;
    helper_start(&h, 1, &f);
    atomic_store(&src_fail, 1);
    void *pages = exhaust_pages(NULL);
    helper_run(&h, job_first_use_alloc);
    atomic_store(&src_fail, 0);
    release_pages(pages);
    helper_stop(&h);
    assert_no_thread_failures();
    assert_int_equal(atomic_load(&reserve.calls), 1);
    assert_int_equal(reserve.n, 0);
    if (!f.p)
        assert_int_equal(f.err, ENOMEM);
    assert_int_equal(test_stats(r).active_objs, 0);
    assert_int_equal(slab_cache_destroy(r), 0);
    assert_int_equal(slab_cache_destroy(x), 0);
    slab_set_page_source(NULL);
    expect_no_error();
    assert_verify_clean();
    slab_reap();
    test_check_buddy_all_free(); /* no block of slots left behind */
}

/* ------------------------------------------------------------------ */
/* 10. Bulk allocation                                                  */

static void test_bulk(void **state)
{
    (void)state;
    enum { N = 500 };
    static void *ptrs[N];
    slab_cache_t *c = slab_cache_create("bulk", 96, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    for (int round = 0; round < 3; round++) {
        memset(ptrs, 0, sizeof ptrs);
        assert_int_equal(slab_cache_alloc_bulk(c, N, ptrs), N);
        for (size_t i = 0; i < N; i++) {
            assert_non_null(ptrs[i]);
            assert_ptr_equal(slab_owner(ptrs[i]), c);
            memset(ptrs[i], (int)i, 96);
        }
        assert_disjoint(ptrs, N, 96);
        slab_cache_stats_t st = test_stats(c);
        assert_int_equal(st.active_objs, N);
        assert_int_equal(st.allocations, (uint64_t)(round + 1) * N);
        slab_cache_free_bulk(c, N, ptrs);
        st = test_stats(c);
        assert_int_equal(st.active_objs, 0);
        assert_int_equal(st.frees, (uint64_t)(round + 1) * N);
    }
    /* NULL entries are skipped */
    void *two[3] = {slab_cache_alloc(c), NULL, slab_cache_alloc(c)};
    slab_cache_free_bulk(c, 3, two);
    assert_int_equal(test_stats(c).active_objs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

static void test_bulk_enomem_all_or_nothing(void **state)
{
    (void)state;
    enum { N = 300 };
    static void *yobjs[256], *ptrs[N];
    install_failing_source();
    slab_cache_t *y = slab_cache_create("bulk-oom", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(y);
    size_t ny = fill_cache(y, yobjs, 256);
    /* a few objects in this thread's magazine: the bulk takes them first */
    for (size_t i = 0; i < 10; i++)
        slab_cache_free(y, yobjs[--ny]);
    slab_reap();
    slab_reap();
    atomic_store(&src_fail, 1);
    void *pages = exhaust_pages(NULL);
    slab_cache_stats_t before = test_stats(y);
    assert_int_equal(before.active_objs, ny);

    errno = 0;
    memset(ptrs, 0, sizeof ptrs);
    assert_int_equal(slab_cache_alloc_bulk(y, N, ptrs), 0);
    assert_int_equal(errno, ENOMEM);
    slab_cache_stats_t st = test_stats(y);
    assert_int_equal(st.active_objs, before.active_objs); /* nothing leaked */
    assert_int_equal(st.allocations - before.allocations, st.frees - before.frees);
    assert_true(st.allocations - before.allocations >= 10); /* some were taken, then given back */
    assert_verify_clean();
    expect_no_error();

    atomic_store(&src_fail, 0);
    release_pages(pages);
    assert_int_equal(slab_cache_alloc_bulk(y, N, ptrs), N);
    slab_cache_free_bulk(y, N, ptrs);
    for (size_t i = 0; i < ny; i++)
        slab_cache_free(y, yobjs[i]);
    assert_int_equal(slab_cache_destroy(y), 0); /* nothing leaked */
    slab_set_page_source(NULL);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

static void test_bulk_misuse(void **state)
{
    (void)state;
    void *ptrs[4] = {0};
    slab_cache_t *c = slab_cache_create("bulk-misuse", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);

    errno = 0;
    assert_int_equal(slab_cache_alloc_bulk(NULL, 4, ptrs), 0);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    assert_string_equal(test_err.function, "slab_cache_alloc_bulk");
    test_errors_reset();

    errno = 0;
    assert_int_equal(slab_cache_alloc_bulk(c, 4, NULL), 0);
    if (test_err.count != 1 || test_err.kind != SLAB_ERR_INVALID_ARG)
        fail_msg("slab_cache_alloc_bulk(cache, 4, NULL) returned 0 with %u report(s) (errno %d); "
                 "expected one invalid-argument report",
                 test_err.count, errno);
    assert_int_equal(errno, EINVAL);
    test_errors_reset();

    errno = 0;
    slab_cache_free_bulk(c, 4, NULL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    assert_int_equal(errno, EINVAL);
    test_errors_reset();
    /* a NULL cache: every object is reported and ignored, nothing lost */
    void *two[2] = {slab_cache_alloc(c), slab_cache_alloc(c)};
    slab_cache_free_bulk(NULL, 2, two);
    assert_int_equal(test_errors_count(), 2);
    assert_int_equal(test_err.kind, SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    assert_int_equal(test_stats(c).active_objs, 2);
    slab_cache_free_bulk(c, 2, two);

    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.allocations, 2);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* 11. Debug flags: no magazines, every free checked                    */

static void test_debug_flags_bypass_magazines(void **state)
{
    (void)state;
    static const slab_flags_t flags[] = {SLAB_CONSISTENCY_CHECKS, SLAB_RED_ZONE, SLAB_POISON,
                                         SLAB_STORE_USER};
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        slab_cache_t *c = slab_cache_create("debug", 64, 0, flags[k], NULL, NULL, NULL);
        assert_non_null(c);
        slab_cache_stats_t st = test_stats(c);
        assert_int_equal(st.magazine_size, 0);
        assert_int_equal(st.batchcount, 0);

        void *p = slab_cache_alloc(c);
        assert_non_null(p);
        st = test_stats(c);
        assert_int_equal(st.active_objs, 1);
        assert_int_equal(st.magazine_objs, 0); /* one object out, not a batch */
        slab_cache_free(c, p);
        expect_no_error();
        slab_cache_free(c, p); /* caught at once */
        expect_one_error(SLAB_ERR_DOUBLE_FREE);
        assert_ptr_equal(test_err.ptr, p);
        assert_string_equal(test_err.cache, "debug");
        test_errors_reset();
        slab_cache_free(c, (char *)p + 8);
        expect_one_error(SLAB_ERR_INTERIOR);
        test_errors_reset();

        st = test_stats(c);
        assert_int_equal(st.allocations, 1);
        assert_int_equal(st.frees, 1);
        assert_int_equal(st.active_objs, 0);
        assert_int_equal(st.errors, 2);
        assert_int_equal(st.alloc_hit + st.alloc_miss + st.free_hit + st.free_miss, 0);
        assert_int_equal(st.depot_full + st.depot_empty + st.depot_exchanges, 0);
        assert_int_equal(slab_cache_destroy(c), 0);
    }
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* ------------------------------------------------------------------ */
/* 12. Options                                                          */

static unsigned long env_or(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end ? dflt : x;
}

static void test_options(void **state)
{
    (void)state;
    /* The defaults, unless the environment changed them. */
    assert_int_equal(initial_options.magazines, env_or("SLAB_MAGAZINES", 1) != 0);
    assert_int_equal(initial_options.reap_interval_ms, env_or("SLAB_REAP_INTERVAL", 15000));
    assert_int_equal(initial_options.depot_bytes, env_or("SLAB_DEPOT_BYTES", 128 * 1024));

    slab_options_t o;
    memset(&o, 0xff, sizeof o);
    slab_get_options(&o);
    assert_int_equal(o.magazines, 1); /* as main() set them */
    assert_int_equal(o.reap_interval_ms, 0);

    errno = 0;
    assert_int_equal(slab_set_options(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    slab_get_options(&o); /* unchanged */
    assert_int_equal(o.magazines, 1);
    assert_int_equal(o.reap_interval_ms, 0);

    /* Magazines off applies to caches created from then on. */
    slab_cache_t *with = slab_cache_create("with-magazines", 64, 0, 0, NULL, NULL, NULL);
    set_options(0, 0);
    slab_get_options(&o);
    assert_int_equal(o.magazines, 0);
    slab_cache_t *without = slab_cache_create("no-magazines", 64, 0, 0, NULL, NULL, NULL);
    set_options(1, 0);
    assert_non_null(with);
    assert_non_null(without);
    assert_int_equal(test_stats(with).magazine_size, 63);
    slab_cache_stats_t st = test_stats(without);
    assert_int_equal(st.magazine_size, 0);
    assert_int_equal(st.batchcount, 0);

    void *p = slab_cache_alloc(without);
    assert_non_null(p);
    st = test_stats(without);
    assert_int_equal(st.active_objs, 1);
    assert_int_equal(st.magazine_objs, 0);
    assert_int_equal(st.allocations, 1);
    slab_cache_free(without, p);
    slab_cache_free(without, p); /* every free is checked */
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    st = test_stats(without);
    assert_int_equal(st.frees, 1);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.alloc_hit + st.alloc_miss + st.free_hit + st.free_miss, 0);

    p = slab_cache_alloc(with);
    assert_non_null(p);
    slab_cache_free(with, p);
    assert_int_equal(test_stats(with).alloc_miss, 1);
    assert_int_equal(slab_cache_destroy(with), 0);
    assert_int_equal(slab_cache_destroy(without), 0);
    expect_no_error();
    assert_verify_clean();
    test_check_buddy_all_free();
}

/* The automatic reap: with a short interval, the slow paths of a busy
 * cache run slab_reap() by themselves, and an idle cache's depot and
 * slabs go back within a few intervals (no thread of libslab's own). */
static void test_automatic_reap(void **state)
{
    (void)state;
    enum { N = 5000, BUSY = 1000 };
    slab_options_t o;
    slab_get_options(&o);
    o.reap_interval_ms = 20;
    assert_int_equal(slab_set_options(&o), 0);
    slab_cache_t *idle = slab_cache_create("auto-reap-idle", 64, 0, 0, NULL, NULL, NULL);
    slab_cache_t *busy = slab_cache_create("auto-reap-busy", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(idle);
    assert_non_null(busy);
    void **objs = calloc(N, sizeof *objs);
    assert_non_null(objs);
    fill_from_thread(idle, N, objs);
    free(objs);
    assert_true(test_stats(idle).depot_full > 0);

    void *b[BUSY];
    slab_cache_stats_t st = test_stats(idle);
    for (int round = 0; round < 400 && (st.depot_full || st.total_slabs); round++) {
        for (int i = 0; i < BUSY; i++)
            b[i] = slab_cache_alloc(busy);
        for (int i = 0; i < BUSY; i++)
            slab_cache_free(busy, b[i]);
        sleep_us(5000);
        st = test_stats(idle);
    }
    o.reap_interval_ms = 0;
    slab_set_options(&o);
    if (st.depot_full || st.depot_empty || st.total_slabs)
        fail_msg("after 2 s of busy slow paths with a 20 ms interval the idle cache still "
                 "holds %zu full and %zu empty magazines and %zu slabs",
                 st.depot_full, st.depot_empty, st.total_slabs);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(slab_cache_destroy(idle), 0);
    assert_int_equal(slab_cache_destroy(busy), 0);
    expect_no_error();
    assert_verify_clean();
}

int main(int argc, char **argv)
{
    /* an optional argument runs only the tests whose names match it */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    slab_get_options(&initial_options);
    /* Magazines on whatever the environment says; no automatic reap, so
     * that every figure is deterministic. */
    slab_options_t o = {.magazines = 1, .reap_interval_ms = 0};
    slab_set_options(&o);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counters_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depot_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_magazine_size_by_object_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifo_constructed_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_id_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_after_threads_exited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_idle_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_busy_then_usable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_exit_returns_magazines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_thread_stress_with_reaper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_during_refill_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_with_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_idle_depot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_automatic_reap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_keeps_working_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_under_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_under_pressure_small_reserve, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_reclaim_enomem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_callback_frees_with_reap_due, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_frees_into_refilling_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_frees_while_slots_are_made, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_enomem_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_flags_bypass_magazines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
