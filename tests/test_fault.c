/*
 * test_fault.c - running out of memory anywhere, by fault injection.
 *
 * The options fault_every (every Nth request for pages fails),
 * fault_one_in (each fails with probability 1/N) and fault_seed make
 * libslab's own requests for pages fail as if the page source had run
 * dry.  A failed request takes the real path: the reclaim callbacks run,
 * the allocator reaps and retries once (itself a request), then the call
 * returns NULL with errno ENOMEM.
 *
 * One fixed workload (three caches, one constructed, objects, a bulk
 * allocation, slab_malloc from 8 B to 3 MiB, page runs and huge
 * mappings, realloc growing and shrinking, calloc, aligned allocation,
 * page blocks, frees along the way) runs under every kind of fault:
 * every Kth request, every request during one call alone or from one
 * call on, random failures with several seeds, and four threads at once.
 * Each run must give NULL only with ENOMEM, keep the old block of a
 * failed realloc intact, leave nothing allocated after a failed bulk
 * allocation, and, once everything is freed, leave the heap verified and
 * the memory in use where it was, with every constructed object
 * destroyed and nothing reported.  The same seed fails the same calls
 * and reclaims in the same ones.  The options and the SLAB_FAULT_*
 * environment variables are checked first, the reclaim callbacks last.
 * Two more tests keep bugs found here fixed: a 64-bit SLAB_FAULT_SEED,
 * and reclaim callbacks read with their argument while another thread
 * changes them.
 */
#include "slab_test.h"

#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Options                                                              */

/* The options in force when a test started, put back by its teardown
 * even if it fails half-way. */
static slab_options_t saved_options;

static int setup(void **state)
{
    slab_get_options(&saved_options);
    return test_setup(state);
}

static int teardown(void **state)
{
    slab_set_options(&saved_options);
    return test_teardown(state);
}

/* Change only the fault options (the count and sequence start again). */
static void set_faults(unsigned every, unsigned one_in, uint64_t seed)
{
    slab_options_t o;
    slab_get_options(&o);
    o.fault_every = every;
    o.fault_one_in = one_in;
    o.fault_seed = seed;
    if (slab_set_options(&o) != 0)
        thread_fail("slab_set_options failed");
}

static void no_automatic_reap(void)
{
    slab_options_t o;
    slab_get_options(&o);
    o.reap_interval_ms = 0;
    assert_int_equal(slab_set_options(&o), 0);
}

static slab_memory_info_t memory(void)
{
    slab_memory_info_t mi;
    memset(&mi, 0, sizeof mi);
    assert_int_equal(slab_memory_info(&mi), 0);
    return mi;
}

/* ------------------------------------------------------------------ */
/* Test 1: the options, their effect, the environment                  */

static void test_options(void **state)
{
    (void)state;
    slab_options_t saved, o, back;
    slab_get_options(&saved);

    /* set values read back; nothing else changes */
    o = saved;
    o.fault_every = 7;
    o.fault_one_in = 13;
    o.fault_seed = 0x0123456789abcdefULL;
    assert_int_equal(slab_set_options(&o), 0);
    memset(&back, 0x5a, sizeof back);
    slab_get_options(&back);
    assert_int_equal(back.fault_every, 7);
    assert_int_equal(back.fault_one_in, 13);
    assert_true(back.fault_seed == 0x0123456789abcdefULL);
    assert_int_equal(back.magazines, saved.magazines);
    assert_int_equal(back.reap_interval_ms, saved.reap_interval_ms);
    assert_int_equal(back.depot_bytes, saved.depot_bytes);
    assert_int_equal(back.debug_abort, saved.debug_abort);
    assert_int_equal(slab_set_options(&saved), 0);
    slab_get_options(&back);
    assert_int_equal(back.fault_every, saved.fault_every);
    assert_int_equal(back.fault_one_in, saved.fault_one_in);
    assert_true(back.fault_seed == saved.fault_seed);

    /* a cache made while memory is plentiful, its first object later */
#ifndef SLAB_BACKEND_SLOB
    slab_cache_t *c = slab_cache_create("fault-first", 128, 0, 0, NULL, NULL, NULL);
#else
    /* (SLOB serves small objects from free units of the pages it holds:
     * an object larger than a page needs a block of its own) */
    slab_cache_t *c = slab_cache_create("fault-first", 2 * SLAB_PAGE_SIZE, 0, 0, NULL, NULL,
                                        NULL);
#endif
    assert_non_null(c);
    slab_memory_info_t before = memory();

    /* every request fails */
    set_faults(1, 0, 0);
    errno = 0;
    assert_null(slab_pages_alloc(0));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_pages_alloc(SLAB_MAX_ORDER));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_malloc((size_t)8 << 20));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(slab_malloc(100000)); /* a page run */
    assert_int_equal(errno, ENOMEM);
#ifndef SLAB_BACKEND_SLOB
    errno = 0;
    assert_null(slab_malloc(1700)); /* a size class not used before */
    assert_int_equal(errno, ENOMEM);
#endif
    errno = 0;
    assert_null(slab_cache_alloc(c));
    assert_int_equal(errno, ENOMEM);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.allocations, 0);
    void *ptrs[4];
    errno = 0;
    assert_int_equal(slab_cache_alloc_bulk(c, 4, ptrs), 0);
    assert_int_equal(errno, ENOMEM);
    slab_memory_info_t during = memory();
    assert_int_equal(during.in_use_bytes, before.in_use_bytes);
    assert_verify_clean();
    expect_no_error();

    /* off again: the same calls succeed */
    set_faults(0, 0, 0);
    void *pg = slab_pages_alloc(0);
    assert_non_null(pg);
    void *huge = slab_malloc((size_t)8 << 20);
    assert_non_null(huge);
    memset(huge, 0x11, 4096);
    ((char *)huge)[((size_t)8 << 20) - 1] = 0x22;
    void *small = slab_malloc(1700);
    assert_non_null(small);
    memset(small, 0x33, 1700);
    void *obj = slab_cache_alloc(c);
    assert_non_null(obj);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 1);
    slab_cache_free(c, obj);
    slab_free(small);
    slab_free(huge);
    slab_pages_free(pg, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    slab_memory_info_t after = memory();
    assert_int_equal(after.in_use_bytes, before.in_use_bytes);
    assert_int_equal(after.object_bytes, before.object_bytes);
    assert_verify_clean();
    expect_no_error();
    assert_int_equal(slab_set_options(&saved), 0);
}

/*
 * The environment, read by a fresh process: this program run again with
 * --env-child EVERY ONE_IN SEED and SLAB_FAULT_* set (or not).  The child
 * checks that slab_get_options() shows the values, and that they act:
 * with EVERY alone, exactly every EVERY-th slab_pages_alloc() fails from
 * the first call on; with ONE_IN, the failures follow the seed (the same
 * as after slab_set_options() with the same values, which restarts the
 * sequence).  It exits 0, or with a line on stderr and a code saying
 * what went wrong.
 */
static unsigned child_reports;

static void child_hook(const slab_error_t *e, void *arg)
{
    (void)arg;
    child_reports++;
    fprintf(stderr, "env child: report: %s\n", e->message ? e->message : "?");
}

#define CHILD_PROBES 64

static void child_probe(unsigned char *out)
{
    void *p[CHILD_PROBES];
    for (unsigned i = 0; i < CHILD_PROBES; i++) {
        errno = 0;
        p[i] = slab_pages_alloc(0);
        out[i] = p[i] == NULL;
        if (!p[i] && errno != ENOMEM)
            out[i] = 2;
    }
    /* freed after all the requests: a free makes no request */
    for (unsigned i = 0; i < CHILD_PROBES; i++)
        slab_pages_free(p[i], 0);
}

static int env_child(char **argv)
{
    unsigned long every = strtoul(argv[2], NULL, 10);
    unsigned long one_in = strtoul(argv[3], NULL, 10);
    unsigned long long seed = strtoull(argv[4], NULL, 10);
    slab_set_error_hook(child_hook, NULL);
    slab_options_t o;
    memset(&o, 0xa5, sizeof o);
    slab_get_options(&o);
    if (child_reports) {
        fprintf(stderr, "env child: the environment was reported as bad\n");
        return 10;
    }
    if (o.fault_every != every || o.fault_one_in != one_in || o.fault_seed != seed) {
        fprintf(stderr, "env child: options %u %u %llu, expected %lu %lu %llu\n",
                o.fault_every, o.fault_one_in, (unsigned long long)o.fault_seed, every,
                one_in, seed);
        return 11;
    }
    unsigned char first[CHILD_PROBES], again[CHILD_PROBES];
    child_probe(first);
    unsigned fails = 0;
    for (unsigned i = 0; i < CHILD_PROBES; i++) {
        if (first[i] == 2) {
            fprintf(stderr, "env child: a failure without ENOMEM\n");
            return 12;
        }
        fails += first[i];
    }
    if (every && !one_in) {
        for (unsigned i = 0; i < CHILD_PROBES; i++) {
            if (first[i] != ((i + 1) % every == 0)) {
                fprintf(stderr, "env child: request %u %s with SLAB_FAULT_EVERY=%lu\n", i + 1,
                        first[i] ? "failed" : "succeeded", every);
                return 13;
            }
        }
    }
    if (!every && !one_in && fails) {
        fprintf(stderr, "env child: %u failures with fault injection off\n", fails);
        return 14;
    }
    if (one_in) {
        if (fails == 0 || fails == CHILD_PROBES) {
            fprintf(stderr, "env child: %u of %u requests failed with SLAB_FAULT_ONE_IN=%lu\n",
                    fails, CHILD_PROBES, one_in);
            return 15;
        }
        /* the same options set again restart the same sequence */
        if (slab_set_options(&o) != 0)
            return 16;
        child_probe(again);
        if (memcmp(first, again, sizeof first) != 0) {
            fprintf(stderr, "env child: the sequence from the environment differs from the "
                            "one slab_set_options() restarts with the same seed\n");
            return 17;
        }
    }
    if (slab_verify() != 0 || child_reports)
        return 18;
    return 0;
}

/* Run the child with the given variables (NULL: unset); its exit code. */
static int run_env_child(const char *every, const char *one_in, const char *seed,
                         const char *want_every, const char *want_one_in,
                         const char *want_seed)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *names[3] = {"SLAB_FAULT_EVERY", "SLAB_FAULT_ONE_IN", "SLAB_FAULT_SEED"};
        const char *values[3] = {every, one_in, seed};
        for (int i = 0; i < 3; i++) {
            if (values[i])
                setenv(names[i], values[i], 1);
            else
                unsetenv(names[i]);
        }
        execl(test_self_path, "test_fault", "--env-child", want_every, want_one_in, want_seed,
              (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_environment(void **state)
{
    (void)state;
    assert_int_equal(run_env_child(NULL, NULL, NULL, "0", "0", "0"), 0);
    assert_int_equal(run_env_child("3", NULL, NULL, "3", "0", "0"), 0);
    assert_int_equal(run_env_child("1", NULL, NULL, "1", "0", "0"), 0);
    assert_int_equal(run_env_child(NULL, "4", "99", "0", "4", "99"), 0);
    assert_int_equal(run_env_child("5", "9", "4000000000", "5", "9", "4000000000"), 0);
    assert_int_equal(run_env_child("0", "0", "7", "0", "0", "7"), 0);
}

/* The seed is 64 bits wide (slab_options_t.fault_seed is a uint64_t), in
 * the environment too. */
static void test_environment_seed_64(void **state)
{
    (void)state;
    assert_int_equal(run_env_child(NULL, "4", "18446744073709551557", "0", "4",
                                   "18446744073709551557"),
                     0);
    assert_int_equal(run_env_child(NULL, "4", "4294967296", "0", "4", "4294967296"), 0);
}

/* ------------------------------------------------------------------ */
/* The workload                                                         */

#define N_OBJS 48
#define N_BULK 40
#define MAX_STEPS 512
#define MAX_BLOCKS 64
#define CTOR_MAGIC 0xC0C0C0C0DEADBEEFULL

/* The object sizes of the three caches: cache 1's objects are
 * constructed, cache 2's take a slab (eight pages) each. */
static const size_t cache_size[3] = {24, 200, 30000};

enum { BLK_MALLOC, BLK_PAGES };

struct block {
    void *p;
    size_t size;   /* bytes asked for (pages: the block's bytes) */
    unsigned order;
    int kind;
    unsigned char tag;
};

struct wl {
    int id;
    slab_cache_t *cache[3];
    void *obj[3][N_OBJS];
    void *bulk[N_BULK];
    int have_bulk;
    struct block blk[MAX_BLOCKS];
    size_t nblk;
    /* the constructed cache: objects built and destroyed, destroyed
     * objects that were not intact; the reclaim callback's calls */
    atomic_long ctors, dtors, bad_dtors, reclaims;
    /* steps (calls that may fail), failures, failures without ENOMEM */
    unsigned steps, nulls, bad_errno;
    /* per step: 1 failed, 2 the reclaim callbacks ran during it */
    unsigned char record[MAX_STEPS];
    /* main thread only: steps [outage_from, outage_to) run with every
     * request failing (-1: none) */
    long outage_from, outage_to;
    /* register wl_reclaim on the first cache */
    int with_reclaim;
};

static int obj_ctor(void *obj, void *arg)
{
    struct wl *w = arg;
    uint64_t m = CTOR_MAGIC ^ (uint64_t)(uintptr_t)obj;
    memcpy(obj, &m, 8);
    atomic_fetch_add(&w->ctors, 1);
    return 0;
}

static void obj_dtor(void *obj, void *arg)
{
    struct wl *w = arg;
    uint64_t m;
    memcpy(&m, obj, 8);
    if (m != (CTOR_MAGIC ^ (uint64_t)(uintptr_t)obj))
        atomic_fetch_add(&w->bad_dtors, 1);
    atomic_fetch_add(&w->dtors, 1);
}

static void wl_reclaim(void *arg)
{
    struct wl *w = arg;
    atomic_fetch_add(&w->reclaims, 1);
}

/* The pattern: byte i of a block with tag t, written in the first and
 * last PAT bytes of it (all of a small one). */
#define PAT 512

static inline unsigned char pat(unsigned char tag, size_t i)
{
    return (unsigned char)(tag + i * 7 + (i >> 8));
}

static void fill(void *p, size_t size, unsigned char tag, size_t from)
{
    unsigned char *b = p;
    size_t head = size < PAT ? size : PAT;
    for (size_t i = from; i < head; i++)
        b[i] = pat(tag, i);
    for (size_t i = size - head > from ? size - head : from; i < size; i++)
        b[i] = pat(tag, i);
}

/* The pattern of a block of `size` bytes, below `limit`. */
static int intact(const void *p, size_t size, unsigned char tag, size_t from, size_t limit)
{
    const unsigned char *b = p;
    size_t head = size < PAT ? size : PAT;
    size_t end = size < limit ? size : limit;
    for (size_t i = from; i < head && i < end; i++)
        if (b[i] != pat(tag, i))
            return 0;
    for (size_t i = size - head > from ? size - head : from; i < end; i++)
        if (b[i] != pat(tag, i))
            return 0;
    return 1;
}

/* Cache objects: the constructed ones keep their first 8 bytes. */
static size_t obj_from(int c) { return c == 1 ? 8 : 0; }

static unsigned char obj_tag(const struct wl *w, int c, size_t i)
{
    return (unsigned char)(w->id * 31 + c * 11 + i);
}

static void step_begin(struct wl *w)
{
    if (w->outage_from >= 0) {
        if ((long)w->steps == w->outage_from)
            set_faults(1, 0, 0);
        else if ((long)w->steps == w->outage_to)
            set_faults(0, 0, 0);
    }
    errno = 0;
}

/* One call done: count it, and check errno when it failed. */
static int step_end(struct wl *w, int ok, long reclaims_before, const char *what)
{
    int err = errno;
    unsigned s = w->steps++;
    unsigned char rec = 0;
    if (atomic_load(&w->reclaims) != reclaims_before)
        rec |= 2;
    if (!ok) {
        rec |= 1;
        w->nulls++;
        if (err != ENOMEM) {
            w->bad_errno++;
            thread_fail("workload %d step %u (%s) failed with errno %d, not ENOMEM", w->id, s,
                        what, err);
        }
    }
    if (s < MAX_STEPS)
        w->record[s] = rec;
    return ok;
}

#define STEP(w, ok_expr, what)                                                     \
    ({                                                                            \
        step_begin(w);                                                            \
        long rb_ = atomic_load(&(w)->reclaims);                                   \
        int ok_ = (ok_expr);                                                      \
        step_end(w, ok_, rb_, what);                                              \
    })

static struct block *new_block(struct wl *w)
{
    if (w->nblk == MAX_BLOCKS) {
        thread_fail("workload %d: too many blocks", w->id);
        return NULL;
    }
    struct block *b = &w->blk[w->nblk++];
    memset(b, 0, sizeof *b);
    return b;
}

static void check_block(struct wl *w, const struct block *b, const char *when)
{
    if (!intact(b->p, b->size, b->tag, 0, b->size))
        thread_fail("workload %d: block %p of %zu bytes corrupted %s", w->id, b->p, b->size,
                    when);
}

static void free_block(struct wl *w, struct block *b)
{
    if (!b->p)
        return;
    check_block(w, b, "before its free");
    if (b->kind == BLK_PAGES)
        slab_pages_free(b->p, b->order);
    else
        slab_free(b->p);
    b->p = NULL;
}

/* slab_malloc, slab_calloc or slab_aligned_alloc of one block. */
enum { A_MALLOC, A_CALLOC, A_ALIGNED };

static void alloc_block(struct wl *w, int how, size_t size, size_t align)
{
    struct block *b = new_block(w);
    if (!b)
        return;
    b->size = size;
    b->tag = (unsigned char)(w->nblk * 13 + w->id);
    b->kind = BLK_MALLOC;
    void *p = NULL;
    switch (how) {
    case A_MALLOC:
        STEP(w, (p = slab_malloc(size)) != NULL, "slab_malloc");
        break;
    case A_CALLOC:
        /* in two factors, so that the product is what is checked */
        STEP(w, (p = slab_calloc(size / 8, 8)) != NULL, "slab_calloc");
        break;
    default:
        STEP(w, (p = slab_aligned_alloc(align, size)) != NULL, "slab_aligned_alloc");
        break;
    }
    if (!p)
        return;
    if (how == A_CALLOC) {
        const unsigned char *z = p;
        size_t head = size < PAT ? size : PAT;
        for (size_t i = 0; i < head; i++)
            if (z[i] || z[size - 1 - i]) {
                thread_fail("workload %d: slab_calloc(%zu) not zeroed", w->id, size);
                break;
            }
    }
    if (how == A_ALIGNED && ((uintptr_t)p & (align - 1)))
        thread_fail("workload %d: slab_aligned_alloc(%zu) gave %p", w->id, align, p);
    if (slab_usable_size(p) < size)
        thread_fail("workload %d: %zu usable bytes at %p, %zu asked for", w->id,
                    slab_usable_size(p), p, size);
    b->p = p;
    fill(p, size, b->tag, 0);
}

/* A block resized along `sizes`: a failed step leaves it as it was. */
static void realloc_chain(struct wl *w, size_t first, const size_t *sizes, size_t n)
{
    alloc_block(w, A_MALLOC, first, 0);
    struct block *b = &w->blk[w->nblk - 1];
    if (!b->p)
        return;
    for (size_t k = 0; k < n; k++) {
        void *q = NULL;
        STEP(w, (q = slab_realloc(b->p, sizes[k])) != NULL, "slab_realloc");
        if (!q) {
            /* the old block stays whole and usable */
            check_block(w, b, "after a failed slab_realloc");
            continue;
        }
        if (!intact(q, b->size, b->tag, 0, sizes[k]))
            thread_fail("workload %d: slab_realloc(%zu -> %zu) lost the contents", w->id,
                        b->size, sizes[k]);
        b->p = q;
        b->size = sizes[k];
        b->tag = (unsigned char)(b->tag + 1);
        fill(q, b->size, b->tag, 0);
    }
}

static void free_obj(struct wl *w, int c, size_t i)
{
    void *p = w->obj[c][i];
    if (!p)
        return;
    if (!intact(p, cache_size[c], obj_tag(w, c, i), obj_from(c), cache_size[c]))
        thread_fail("workload %d: object %zu of cache %d corrupted", w->id, i, c);
    slab_cache_free(w->cache[c], p);
    w->obj[c][i] = NULL;
}

static void check_constructed(struct wl *w, void *p)
{
    uint64_t m;
    memcpy(&m, p, 8);
    if (m != (CTOR_MAGIC ^ (uint64_t)(uintptr_t)p))
        thread_fail("workload %d: object %p handed out not constructed", w->id, p);
}

static void wl_init(struct wl *w, int id)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->outage_from = w->outage_to = -1;
    w->with_reclaim = 1;
}

/* The workload, under whatever faults are set; everything it holds at
 * the end is in *w, for wl_release(). */
static void wl_run(struct wl *w)
{
    static const slab_flags_t flags[3] = {0, 0, SLAB_HWCACHE_ALIGN};
    for (int c = 0; c < 3; c++) {
        char name[32];
        snprintf(name, sizeof name, "fault-%d-%c", w->id, 'a' + c);
        STEP(w, (w->cache[c] = slab_cache_create(name, cache_size[c], 0, flags[c],
                                                  c == 1 ? obj_ctor : NULL,
                                                  c == 1 ? obj_dtor : NULL, w)) != NULL,
             "slab_cache_create");
    }
    if (w->with_reclaim && w->cache[0] &&
        slab_cache_set_reclaim(w->cache[0], wl_reclaim, w) != 0)
        thread_fail("workload %d: slab_cache_set_reclaim failed", w->id);

    /* objects, a third of them freed again along the way */
    for (size_t i = 0; i < N_OBJS; i++) {
        for (int c = 0; c < 3; c++) {
            if (!w->cache[c])
                continue;
            void *p = NULL;
            STEP(w, (p = slab_cache_alloc(w->cache[c])) != NULL, "slab_cache_alloc");
            if (!p)
                continue;
            if (slab_owner(p) != test_owner_of(w->cache[c]))
                thread_fail("workload %d: object %p not of its cache", w->id, p);
            if (c == 1)
                check_constructed(w, p);
            w->obj[c][i] = p;
            fill(p, cache_size[c], obj_tag(w, c, i), obj_from(c));
        }
        if (i % 3 == 2)
            for (int c = 0; c < 3; c++)
                free_obj(w, c, i - 1);
    }

    /* all or nothing */
    if (w->cache[1]) {
        slab_cache_stats_t before, after;
        slab_cache_stats(w->cache[1], &before);
        size_t got = 0;
        STEP(w, (got = slab_cache_alloc_bulk(w->cache[1], N_BULK, w->bulk)) != 0,
             "slab_cache_alloc_bulk");
        slab_cache_stats(w->cache[1], &after);
        if (got == 0 && after.active_objs != before.active_objs)
            thread_fail("workload %d: a failed slab_cache_alloc_bulk left %zu objects "
                        "allocated", w->id, after.active_objs - before.active_objs);
        if (got != 0 && got != N_BULK)
            thread_fail("workload %d: slab_cache_alloc_bulk gave %zu of %d", w->id, got,
                        N_BULK);
        if (got != 0 && after.active_objs != before.active_objs + N_BULK)
            thread_fail("workload %d: slab_cache_alloc_bulk: %zu active, %zu before", w->id,
                        after.active_objs, before.active_objs);
        w->have_bulk = got == N_BULK;
        for (size_t k = 0; w->have_bulk && k < N_BULK; k++) {
            check_constructed(w, w->bulk[k]);
            fill(w->bulk[k], cache_size[1], (unsigned char)(0x40 + k), 8);
        }
    }

    /* every kind of slab_malloc: classes, runs, a huge mapping */
    static const size_t sizes[] = {8,    16,    24,    100,   500,   1000,  4096,
                                   10000, 32768, 40000, 65536, (size_t)3 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        alloc_block(w, A_MALLOC, sizes[k], 0);
    static const size_t runs[] = {36000, 49152, 81920, 131072, 200000, 524288, 1 << 20,
                                  (size_t)2 << 20, ((size_t)2 << 20) + 1};
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++)
        alloc_block(w, A_MALLOC, runs[k], 0);
    alloc_block(w, A_CALLOC, 240, 0);
    alloc_block(w, A_CALLOC, 10000, 0);
    alloc_block(w, A_CALLOC, 72000, 0);
    alloc_block(w, A_CALLOC, ((size_t)2 << 20) + 64, 0);
    alloc_block(w, A_ALIGNED, 100, 64);
    alloc_block(w, A_ALIGNED, 5000, 4096);
    alloc_block(w, A_ALIGNED, 100, 8192);
    alloc_block(w, A_ALIGNED, 70000, 65536);

    /* page blocks: no retry behind them */
    static const unsigned orders[] = {0, 2, 1, 5, 3, SLAB_MAX_ORDER};
    for (size_t k = 0; k < sizeof orders / sizeof *orders; k++) {
        struct block *b = new_block(w);
        if (!b)
            break;
        b->kind = BLK_PAGES;
        b->order = orders[k];
        b->size = SLAB_PAGE_SIZE << orders[k];
        b->tag = (unsigned char)(0x90 + k);
        STEP(w, (b->p = slab_pages_alloc(orders[k])) != NULL, "slab_pages_alloc");
        if (b->p)
            fill(b->p, b->size, b->tag, 0);
    }

    /* growing and shrinking: between classes, into a run, a run in place
     * (shrunk, then grown into its own tail), back to classes; a huge
     * mapping moved to a larger one, shrunk in place, moved to a run */
    static const size_t chain1[] = {3000, 50000, 40000, 45000, 20000, 10, 700};
    realloc_chain(w, 50, chain1, sizeof chain1 / sizeof *chain1);
    static const size_t chain2[] = {(size_t)3 << 20, ((size_t)5 << 19) + 1, 100000, 120000};
    realloc_chain(w, ((size_t)2 << 20) + 1, chain2, sizeof chain2 / sizeof *chain2);

    /* frees under faults: every other block, half the objects, the bulk */
    for (size_t k = 0; k < w->nblk; k += 2)
        free_block(w, &w->blk[k]);
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N_OBJS; i += 2)
            free_obj(w, c, i);
    if (w->have_bulk) {
        for (size_t k = 0; k < N_BULK; k++)
            if (!intact(w->bulk[k], cache_size[1], (unsigned char)(0x40 + k), 8,
                        cache_size[1]))
                thread_fail("workload %d: bulk object %zu corrupted", w->id, k);
        slab_cache_free_bulk(w->cache[1], N_BULK, w->bulk);
        w->have_bulk = 0;
    }

    /* and allocation again, into what was freed */
    for (size_t k = 0; k < 4; k++)
        alloc_block(w, A_MALLOC, 64 + 700 * k, 0);
    for (size_t i = 0; i < N_OBJS; i += 4) {
        for (int c = 0; c < 3; c++) {
            if (!w->cache[c] || w->obj[c][i])
                continue;
            void *p = NULL;
            STEP(w, (p = slab_cache_alloc(w->cache[c])) != NULL, "slab_cache_alloc");
            if (!p)
                continue;
            if (c == 1)
                check_constructed(w, p);
            w->obj[c][i] = p;
            fill(p, cache_size[c], obj_tag(w, c, i), obj_from(c));
        }
    }
}

/* With faults off: free everything (checking it), destroy the caches. */
static void wl_release(struct wl *w)
{
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N_OBJS; i++)
            free_obj(w, c, i);
    for (size_t k = 0; k < w->nblk; k++)
        free_block(w, &w->blk[k]);
    w->nblk = 0;
    for (int c = 0; c < 3; c++) {
        if (!w->cache[c])
            continue;
        slab_cache_stats_t st;
        memset(&st, 0, sizeof st);
        if (slab_cache_stats(w->cache[c], &st) != 0 || st.active_objs != 0)
            thread_fail("workload %d: cache %d has %zu objects with everything freed",
                        w->id, c, st.active_objs);
        if (slab_cache_destroy(w->cache[c]) != 0)
            thread_fail("workload %d: cache %d not destroyed (errno %d)", w->id, c, errno);
        w->cache[c] = NULL;
    }
    long built = atomic_load(&w->ctors), destroyed = atomic_load(&w->dtors);
    if (built != destroyed)
        thread_fail("workload %d: %ld objects constructed, %ld destroyed", w->id, built,
                    destroyed);
    if (atomic_load(&w->bad_dtors))
        thread_fail("workload %d: %ld objects destroyed in a bad state", w->id,
                    atomic_load(&w->bad_dtors));
}

/* After a release: nothing lost, nothing reported. */
static void check_nothing_lost(const slab_memory_info_t *before, const char *what, long k)
{
    assert_no_thread_failures();
    assert_verify_clean();
    slab_memory_info_t now = memory();
    if (now.in_use_bytes != before->in_use_bytes || now.object_bytes != before->object_bytes)
        fail_msg("%s %ld: %zu bytes in use (%zu in objects) with everything freed; %zu "
                 "(%zu) before", what, k, now.in_use_bytes, now.object_bytes,
                 before->in_use_bytes, before->object_bytes);
    if (test_errors_count() != 0)
        fail_msg("%s %ld: %u reports, last: %s", what, k, test_errors_count(),
                 test_err.message);
}

/* One whole run under the fault options set by the caller, then the
 * release (with faults off, or still on: a free and a destroy need no
 * memory) and the checks. */
static void run_once(struct wl *w, const char *what, long k, int release_under_faults)
{
    slab_memory_info_t before = memory();
    wl_run(w);
    if (!release_under_faults)
        set_faults(0, 0, 0);
    assert_no_thread_failures();
    assert_verify_clean(); /* consistent before anything is given back */
    wl_release(w);
    set_faults(0, 0, 0);
    check_nothing_lost(&before, what, k);
}

/* With faults off, the whole workload succeeds; its number of steps. */
static unsigned clean_run(void)
{
    static struct wl w;
    wl_init(&w, 0);
    set_faults(0, 0, 0);
    run_once(&w, "clean run", 0, 0);
    assert_int_equal(w.nulls, 0);
    assert_true(w.steps < MAX_STEPS);
    return w.steps;
}

/* ------------------------------------------------------------------ */
/* Test 2: every Kth request fails; every request fails during one     */
/* call, or from one call on                                            */

static void test_every_kth(void **state)
{
    (void)state;
    slab_options_t saved;
    slab_get_options(&saved);
    clean_run(); /* the size classes exist */

    static struct wl w;
    unsigned long total_nulls = 0, total_reclaims = 0;
    for (unsigned k = 1; k <= 60; k++) {
        wl_init(&w, 1);
        set_faults(k, 0, 0);
        run_once(&w, "fault_every", k, 0);
        if (w.bad_errno)
            fail_msg("fault_every=%u: %u failures without ENOMEM", k, w.bad_errno);
        if (k == 1 && w.nulls == 0)
            fail_msg("fault_every=1 and no call failed");
        /* The workload asks for pages more than 60 times, so every K
         * refuses some request: a call that failed, or one whose request
         * was refused, reclaimed and retried (with K > 1 the retry is not
         * refused, so most calls get their memory in the end). */
        if (w.nulls == 0 && atomic_load(&w.reclaims) == 0)
            fail_msg("fault_every=%u: no request was refused", k);
        total_nulls += w.nulls;
        total_reclaims += (unsigned long)atomic_load(&w.reclaims);
    }
    print_message("fault_every 1..60: %lu failed calls, %lu reclaims\n", total_nulls,
                  total_reclaims);

    clean_run();
    assert_int_equal(slab_set_options(&saved), 0);
}

/* The steps to try: all, or every few under a small SLAB_TEST_SCALE. */
static unsigned step_stride(void)
{
    double s = test_scale();
    return s >= 1.0 ? 1 : (unsigned)(1.0 / s + 0.5);
}

static void test_outage_at_each_call(void **state)
{
    (void)state;
    slab_options_t saved;
    slab_get_options(&saved);
    unsigned steps = clean_run();
    unsigned stride = step_stride();

    static struct wl w;
    unsigned failed_alone = 0, failed_from = 0;
    for (unsigned s = 0; s < steps; s += stride) {
        /* every request fails during call s alone */
        wl_init(&w, 2);
        w.outage_from = s;
        w.outage_to = s + 1;
        set_faults(0, 0, 0);
        run_once(&w, "outage at call", s, 0);
        if (w.nulls > 1 || (w.nulls == 1 && !(w.record[s] & 1)))
            fail_msg("outage at call %u: %u calls failed (call %u %s)", s, w.nulls, s,
                     (w.record[s] & 1) ? "among them" : "not among them");
        failed_alone += w.nulls;

        /* every request fails from call s on, through the frees and
         * destroys at the end */
        wl_init(&w, 3);
        w.outage_from = s;
        w.outage_to = -1;
        set_faults(0, 0, 0);
        run_once(&w, "outage from call", s, 1);
        for (unsigned t = 0; t < s && t < MAX_STEPS; t++)
            if (w.record[t] & 1)
                fail_msg("outage from call %u: call %u before it failed", s, t);
        failed_from += w.nulls != 0;
    }
    print_message("%u calls: %u failed when out of memory alone, %u runs failed from a "
                  "call on\n", steps, failed_alone, failed_from);
    /* most calls are served from magazines and slabs that have room
     * and need no pages; those of page blocks, runs and huge mappings,
     * and the first objects of a cache, always do */
    assert_true(failed_alone >= 12 / stride);
    assert_true(failed_from >= steps / stride / 2);

    clean_run();
    assert_int_equal(slab_set_options(&saved), 0);
}

/* ------------------------------------------------------------------ */
/* Test 3: random failures, repeatable by seed                         */

/* Give back every free object and slab of every cache, so that the next
 * run starts from the same state: program caches and size classes
 * first (their magazines go back to libslab's magazine caches), then
 * libslab's own, which are the oldest. */
#define MAX_LISTED 256

struct cache_list {
    size_t n;
    slab_cache_t *c[MAX_LISTED];
};

static int list_cache(const slab_cache_t *c, void *arg)
{
    struct cache_list *l = arg;
    if (l->n < MAX_LISTED)
        l->c[l->n++] = (slab_cache_t *)c;
    return 0;
}

static void quiesce(void)
{
    static struct cache_list l;
    l.n = 0;
    assert_int_equal(slab_cache_foreach(list_cache, &l), 0);
    assert_true(l.n < MAX_LISTED);
    for (size_t i = 0; i < l.n; i++)
        slab_cache_shrink(l.c[i]);
}

static void test_random(void **state)
{
    (void)state;
    slab_options_t saved;
    slab_get_options(&saved);
    no_automatic_reap(); /* a reap between runs would change what they request */
    clean_run();

    static const unsigned one_in[] = {3, 4, 6, 10, 20};
    static const uint64_t seeds[] = {1, 42, 0x9e3779b97f4a7c15ULL};
    /* SLAB_TEST_SCALE above 1 adds seeds */
    size_t nseeds = test_scaled(3);
    static struct wl a, b;
    unsigned long nulls = 0, reclaimed = 0;
    for (size_t i = 0; i < sizeof one_in / sizeof *one_in; i++) {
        for (size_t j = 0; j < nseeds; j++) {
            long k = (long)(i * 1000 + j);
            uint64_t seed = j < 3 ? seeds[j] : 0x5eed0000ULL + j;
            wl_init(&a, 4);
            quiesce();
            set_faults(0, one_in[i], seed);
            run_once(&a, "fault_one_in run", k, 0);

            wl_init(&b, 4);
            quiesce();
            set_faults(0, one_in[i], seed);
            run_once(&b, "fault_one_in repeat", k, 0);

            if (a.bad_errno || b.bad_errno)
                fail_msg("fault_one_in=%u: failures without ENOMEM", one_in[i]);
            if (a.steps != b.steps || a.nulls != b.nulls ||
                memcmp(a.record, b.record, sizeof a.record) != 0) {
                unsigned t = 0;
                while (t < MAX_STEPS && a.record[t] == b.record[t])
                    t++;
                fail_msg("fault_one_in=%u seed %#llx: two runs differ (%u and %u calls, %u "
                         "and %u failed; first difference at call %u: %d, %d)",
                         one_in[i], (unsigned long long)seed, a.steps, b.steps, a.nulls,
                         b.nulls, t, t < MAX_STEPS ? a.record[t] : -1,
                         t < MAX_STEPS ? b.record[t] : -1);
            }
            nulls += a.nulls;
            for (unsigned t = 0; t < a.steps && t < MAX_STEPS; t++)
                reclaimed += (a.record[t] & 2) != 0;
        }
    }
    print_message("fault_one_in: %lu failed calls, %lu calls reclaimed and retried\n", nulls,
                  reclaimed);
    assert_true(nulls > 0);
    assert_true(reclaimed > 0);

    /* another seed, another sequence */
    wl_init(&a, 4);
    quiesce();
    set_faults(0, 3, 1);
    run_once(&a, "seed 1", 0, 0);
    wl_init(&b, 4);
    quiesce();
    set_faults(0, 3, 2);
    run_once(&b, "seed 2", 0, 0);
    assert_true(memcmp(a.record, b.record, sizeof a.record) != 0);

    clean_run();
    assert_int_equal(slab_set_options(&saved), 0);
}

/* ------------------------------------------------------------------ */
/* Test 4: four threads at once                                        */

#define N_THREADS 4
#define SHARED_RESERVE 64

static struct wl thread_wl[N_THREADS];
static pthread_barrier_t start_line;

/* One reclaim callback for all the threads, registered before they start
 * (see test_set_reclaim_race for why not by the threads themselves): it
 * frees an object of a shared reserve on each call, from whichever
 * thread ran out of memory. */
static struct shared_reserve {
    pthread_mutex_t lock;
    slab_cache_t *cache;
    void *obj[SHARED_RESERVE];
    size_t n;
    atomic_long calls;
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void shared_reclaim(void *arg)
{
    struct shared_reserve *r = arg;
    if (r != &shared) {
        thread_fail("shared reclaim callback called with %p", arg);
        return;
    }
    atomic_fetch_add(&r->calls, 1);
    pthread_mutex_lock(&r->lock);
    void *p = r->n ? r->obj[--r->n] : NULL;
    pthread_mutex_unlock(&r->lock);
    slab_cache_free(r->cache, p);
}

static void *thread_main(void *arg)
{
    struct wl *w = arg;
    pthread_barrier_wait(&start_line);
    wl_run(w);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    slab_options_t saved;
    slab_get_options(&saved);
    clean_run();
    slab_memory_info_t before = memory();
    shared.cache = slab_cache_create("fault-shared", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(shared.cache);
    assert_int_equal(slab_cache_set_reclaim(shared.cache, shared_reclaim, &shared), 0);

    static const unsigned one_in[] = {3, 5, 8, 12, 2};
    size_t rounds = test_scaled(4); /* more with SLAB_TEST_SCALE */
    unsigned long nulls = 0;
    for (size_t r = 0; r < rounds; r++) {
        for (int t = 0; t < N_THREADS; t++) {
            wl_init(&thread_wl[t], 10 + t);
            thread_wl[t].with_reclaim = 0;
        }
        while (shared.n < SHARED_RESERVE) {
            shared.obj[shared.n] = slab_cache_alloc(shared.cache);
            assert_non_null(shared.obj[shared.n]);
            shared.n++;
        }
        slab_memory_info_t expect = memory();
        assert_int_equal(pthread_barrier_init(&start_line, NULL, N_THREADS), 0);
        set_faults(0, one_in[r % 5], 1000 + r);
        pthread_t tid[N_THREADS];
        for (int t = 0; t < N_THREADS; t++)
            assert_int_equal(pthread_create(&tid[t], NULL, thread_main, &thread_wl[t]), 0);
        for (int t = 0; t < N_THREADS; t++)
            assert_int_equal(pthread_join(tid[t], NULL), 0);
        pthread_barrier_destroy(&start_line);
        set_faults(0, 0, 0);
        assert_no_thread_failures();
        assert_verify_clean();
        /* the threads are gone: their objects are freed here, by another
         * thread, and their caches destroyed */
        for (int t = 0; t < N_THREADS; t++) {
            wl_release(&thread_wl[t]);
            nulls += thread_wl[t].nulls;
        }
        /* all as before, but for what the callbacks freed of the reserve */
        expect.in_use_bytes -= (SHARED_RESERVE - shared.n) * 64;
        expect.object_bytes -= (SHARED_RESERVE - shared.n) * 64;
        check_nothing_lost(&expect, "threads, round", (long)r);
    }
    long calls = atomic_load(&shared.calls);
    print_message("%d threads: %lu failed calls, %ld reclaim calls\n", N_THREADS, nulls,
                  calls);
    assert_true(calls > 0);

    while (shared.n > 0)
        slab_cache_free(shared.cache, shared.obj[--shared.n]);
    assert_int_equal(slab_cache_set_reclaim(shared.cache, NULL, NULL), 0);
    assert_int_equal(slab_cache_destroy(shared.cache), 0);
    check_nothing_lost(&before, "threads", 0);
    clean_run();
    assert_int_equal(slab_set_options(&saved), 0);
}

/* ------------------------------------------------------------------ */
/* Test 5: reclaim callbacks                                           */

/* A cache holding a reserve that its reclaim callback gives back, and a
 * callback that tries to allocate itself. */
struct reserve {
    slab_cache_t *cache;
    void *obj[16];
    size_t n;
    unsigned calls;
    int allocate;           /* the callback also asks for a page run */
    unsigned inner_nulls;   /* ... and it failed */
    unsigned inner_bad_errno;
};

static void give_back(void *arg)
{
    struct reserve *r = arg;
    r->calls++;
    while (r->n > 0)
        slab_cache_free(r->cache, r->obj[--r->n]);
    if (r->allocate) {
        errno = 0;
        void *p = slab_malloc(65536);
        if (!p) {
            r->inner_nulls++;
            r->inner_bad_errno += errno != ENOMEM;
        }
        slab_free(p);
    }
}

static void fill_reserve(struct reserve *r)
{
    while (r->n < 16) {
        r->obj[r->n] = slab_cache_alloc(r->cache);
        assert_non_null(r->obj[r->n]);
        r->n++;
    }
}

static void test_reclaim(void **state)
{
    (void)state;
    slab_options_t saved, o;
    slab_get_options(&saved);
    clean_run();
    slab_memory_info_t before = memory();

    /* without magazines, so that a free makes no request for pages and
     * each allocation below makes exactly one */
    o = saved;
    o.magazines = 0;
    assert_int_equal(slab_set_options(&o), 0);
    static struct reserve r;
    memset(&r, 0, sizeof r);
    r.cache = slab_cache_create("fault-reserve", 256, 0, 0, NULL, NULL, NULL);
    assert_non_null(r.cache);
    /* objects of 480 KiB: every one is a slab of its own */
    slab_cache_t *big = slab_cache_create("fault-big", 480 << 10, 0, 0, NULL, NULL, NULL);
    assert_non_null(big);
    assert_int_equal(test_stats(big).objs_per_slab, 1);
    assert_int_equal(slab_set_options(&saved), 0);
    assert_int_equal(slab_cache_set_reclaim(r.cache, give_back, &r), 0);
    fill_reserve(&r);

    /* every request fails: the callback runs once, the retry fails too */
    set_faults(1, 0, 0);
    errno = 0;
    assert_null(slab_malloc(65536));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.n, 0);
    assert_int_equal(test_stats(r.cache).active_objs, 0);
    errno = 0;
    assert_null(slab_cache_alloc(big));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(r.calls, 2);
    /* slab_pages_alloc() does not retry */
    assert_null(slab_pages_alloc(0));
    assert_int_equal(r.calls, 2);
    set_faults(0, 0, 0);
    fill_reserve(&r);

    /* every second request fails: the failure runs the callback, and
     * the retry, not faulted, succeeds */
    void *runs[8];
    for (unsigned i = 0; i < 8; i += 2) {
        set_faults(2, 0, 0); /* the count starts again */
        unsigned calls = r.calls;
        runs[i] = slab_malloc(65536); /* request 1 */
        assert_non_null(runs[i]);
        assert_int_equal(r.calls, calls);
        assert_int_equal(r.n, 16);
        runs[i + 1] = slab_malloc(65536); /* request 2 refused, 3 its retry */
        assert_non_null(runs[i + 1]);
        assert_int_equal(r.calls, calls + 1);
        assert_int_equal(r.n, 0);
        set_faults(0, 0, 0);
        fill_reserve(&r);
    }
    for (unsigned i = 0; i < 8; i++)
        slab_free(runs[i]);

    /* a new slab for a cache: the same path */
    r.calls = 0;
    set_faults(2, 0, 0);
    void *x = slab_cache_alloc(big); /* request 1 */
    assert_non_null(x);
    assert_int_equal(r.calls, 0);
    void *y = slab_cache_alloc(big); /* request 2 refused, 3 its retry */
    assert_non_null(y);
    assert_int_equal(r.calls, 1);
    assert_int_equal(test_stats(big).active_objs, 2);
    set_faults(0, 0, 0);
    slab_cache_free(big, x);
    slab_cache_free(big, y);

    /* a callback that allocates: its own request fails without a nested
     * reclaim, and the outer call still gets its retry */
    fill_reserve(&r);
    r.calls = 0;
    r.allocate = 1;
    set_faults(1, 0, 0);
    errno = 0;
    assert_null(slab_malloc(65536));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.inner_nulls, 1);
    assert_int_equal(r.inner_bad_errno, 0);
    set_faults(0, 0, 0);
    r.allocate = 0;

    assert_verify_clean();
    fill_reserve(&r);
    while (r.n > 0)
        slab_cache_free(r.cache, r.obj[--r.n]);
    assert_int_equal(slab_cache_destroy(r.cache), 0);
    assert_int_equal(slab_cache_destroy(big), 0);
    check_nothing_lost(&before, "reclaim", 0);
    expect_no_error();
    assert_int_equal(slab_set_options(&saved), 0);
}

/*
 * A reclaim callback changed while another thread runs out of memory:
 * the callback and its argument are read as the pair they were set as,
 * and a removed callback is never called as NULL.  (Before the reader
 * took the cache's lock, it paired a new callback with an old argument,
 * and ThreadSanitizer reported the race at once.)
 */
static int race_token_a, race_token_b;
static atomic_long race_calls, race_mismatches;

static void race_fn_a(void *arg)
{
    atomic_fetch_add(&race_calls, 1);
    if (arg != &race_token_a)
        atomic_fetch_add(&race_mismatches, 1);
}

static void race_fn_b(void *arg)
{
    atomic_fetch_add(&race_calls, 1);
    if (arg != &race_token_b)
        atomic_fetch_add(&race_mismatches, 1);
}

struct race {
    slab_cache_t *cache;
    atomic_int stop;
};

static void *race_setter(void *arg)
{
    struct race *r = arg;
    for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
        if (i % 3 == 0)
            slab_cache_set_reclaim(r->cache, race_fn_a, &race_token_a);
        else if (i % 3 == 1)
            slab_cache_set_reclaim(r->cache, race_fn_b, &race_token_b);
        else
            slab_cache_set_reclaim(r->cache, NULL, NULL);
    }
    return NULL;
}

static void test_set_reclaim_race(void **state)
{
    (void)state;
    slab_options_t saved;
    slab_get_options(&saved);
    clean_run();
    slab_memory_info_t before = memory();
    static struct race r;
    r.cache = slab_cache_create("fault-race", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(r.cache);
    atomic_store(&r.stop, 0);
    set_faults(1, 0, 0);
    pthread_t setter;
    assert_int_equal(pthread_create(&setter, NULL, race_setter, &r), 0);
    size_t rounds = test_scaled(20000);
    for (size_t i = 0; i < rounds && atomic_load(&race_mismatches) == 0; i++) {
        errno = 0;
        void *p = slab_malloc(65536); /* refused, reclaimed, refused again */
        if (p || errno != ENOMEM)
            thread_fail("slab_malloc with every request failing gave %p, errno %d", p, errno);
        slab_free(p);
    }
    atomic_store(&r.stop, 1);
    assert_int_equal(pthread_join(setter, NULL), 0);
    set_faults(0, 0, 0);
    print_message("%ld reclaim calls, %ld with another callback's argument\n",
                  atomic_load(&race_calls), atomic_load(&race_mismatches));
    assert_int_equal(slab_cache_set_reclaim(r.cache, NULL, NULL), 0);
    assert_int_equal(slab_cache_destroy(r.cache), 0);
    assert_int_equal(atomic_load(&race_mismatches), 0);
    check_nothing_lost(&before, "set_reclaim race", 0);
    assert_int_equal(slab_set_options(&saved), 0);
}

int main(int argc, char **argv)
{
    if (argc > 4 && strcmp(argv[1], "--env-child") == 0)
        return env_child(argv);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (test_find_self("test_fault") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_seed_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_kth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_at_each_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_reclaim_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
