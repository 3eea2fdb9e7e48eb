/*
 * bench/bench_cache.c - owns the allocation benchmark: nanoseconds per
 * alloc+free pair for a libslab cache (its normal, locked entry points)
 * against malloc/free of the same size, in three workloads:
 *
 *   hot_lifo_64     allocate one 64-byte object, free it, repeat
 *   batch_1000_64   allocate 1000 64-byte objects, free them in a random
 *                   order (precomputed permutations, shuffled before timing)
 *   ctor_256_mutex  a 256-byte zeroed payload plus an initialised pthread
 *                   mutex, one at a time: the cache's constructor does that
 *                   work once per object; the malloc side does malloc +
 *                   memset + pthread_mutex_init and pthread_mutex_destroy +
 *                   free on every pair
 *
 * Each figure is the best of 3 repetitions of ~0.3 s (CLOCK_MONOTONIC).
 * One line per workload per allocator, key=value, starting "result":
 *
 *   result workload=hot_lifo_64 allocator=libslab ns_per_pair=9.87 ...
 *   result workload=hot_lifo_64 allocator=malloc malloc=glibc ns_per_pair=...
 *
 * The malloc in use is whatever LD_PRELOAD supplies; its name is taken from
 * --label or found with dladdr().  bench/run.sh compares several.
 *
 * Options: --smoke (tiny fixed run, no timing claims; for the test suite),
 * --label NAME, --time SECONDS (per repetition), --reps N.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slab.h>

#define SMALL_SIZE 64
#define BATCH 1000
#define NPERM 64
#define CTOR_PAYLOAD 256

/* Keep the compiler from dropping or merging allocations: the pointer is
 * "used" and memory is "clobbered" at this point. */
static inline void keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_cache: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---------------------------------------------------------------- */
/* State shared by the workloads                                      */

struct ctor_obj {
    pthread_mutex_t lock;
    unsigned char payload[CTOR_PAYLOAD];
};

static uint64_t ctor_calls, dtor_calls;

static int ctor_obj_ctor(void *obj, void *arg)
{
    (void)arg;
    struct ctor_obj *o = obj;
    memset(o->payload, 0, sizeof o->payload);
    if (pthread_mutex_init(&o->lock, NULL) != 0)
        return -1;
    ctor_calls++;
    return 0;
}

static void ctor_obj_dtor(void *obj, void *arg)
{
    (void)arg;
    struct ctor_obj *o = obj;
    pthread_mutex_destroy(&o->lock);
    dtor_calls++;
}

static slab_cache_t *small_cache, *ctor_cache;
static void *ptrs[BATCH];
static uint16_t perms[NPERM][BATCH];

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    /* xorshift64*: fixed seed, so every run frees in the same orders. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static void make_perms(void)
{
    for (unsigned p = 0; p < NPERM; p++) {
        for (unsigned i = 0; i < BATCH; i++)
            perms[p][i] = (uint16_t)i;
        for (unsigned i = BATCH - 1; i > 0; i--) { /* Fisher-Yates */
            unsigned j = (unsigned)(rng_next() % (i + 1));
            uint16_t t = perms[p][i];
            perms[p][i] = perms[p][j];
            perms[p][j] = t;
        }
    }
}

/* ---------------------------------------------------------------- */
/* Workloads: each runs `units` units of work (a unit is one pair, or one */
/* batch of BATCH pairs).                                               */

static void slab_hot(uint64_t units)
{
    for (uint64_t i = 0; i < units; i++) {
        void *p = slab_cache_alloc(small_cache);
        if (__builtin_expect(p == NULL, 0))
            die("slab_cache_alloc");
        keep(p);
        slab_cache_free(small_cache, p);
    }
}

static void malloc_hot(uint64_t units)
{
    for (uint64_t i = 0; i < units; i++) {
        void *p = malloc(SMALL_SIZE);
        if (__builtin_expect(p == NULL, 0))
            die("malloc");
        keep(p);
        free(p);
    }
}

static void slab_batch(uint64_t units)
{
    for (uint64_t b = 0; b < units; b++) {
        const uint16_t *perm = perms[b % NPERM];
        for (unsigned i = 0; i < BATCH; i++) {
            void *p = slab_cache_alloc(small_cache);
            if (__builtin_expect(p == NULL, 0))
                die("slab_cache_alloc");
            keep(p);
            ptrs[i] = p;
        }
        for (unsigned i = 0; i < BATCH; i++)
            slab_cache_free(small_cache, ptrs[perm[i]]);
    }
}

static void malloc_batch(uint64_t units)
{
    for (uint64_t b = 0; b < units; b++) {
        const uint16_t *perm = perms[b % NPERM];
        for (unsigned i = 0; i < BATCH; i++) {
            void *p = malloc(SMALL_SIZE);
            if (__builtin_expect(p == NULL, 0))
                die("malloc");
            keep(p);
            ptrs[i] = p;
        }
        for (unsigned i = 0; i < BATCH; i++)
            free(ptrs[perm[i]]);
    }
}

static void slab_ctor(uint64_t units)
{
    for (uint64_t i = 0; i < units; i++) {
        struct ctor_obj *o = slab_cache_alloc(ctor_cache);
        if (__builtin_expect(o == NULL, 0))
            die("slab_cache_alloc");
        keep(o);
        slab_cache_free(ctor_cache, o);
    }
}

static void malloc_ctor(uint64_t units)
{
    for (uint64_t i = 0; i < units; i++) {
        struct ctor_obj *o = malloc(sizeof *o);
        if (__builtin_expect(o == NULL, 0))
            die("malloc");
        memset(o->payload, 0, sizeof o->payload);
        pthread_mutex_init(&o->lock, NULL);
        keep(o);
        pthread_mutex_destroy(&o->lock);
        free(o);
    }
}

/* ---------------------------------------------------------------- */
/* Timing                                                               */

static double target_ns = 0.3e9;
static int reps = 3;
static int smoke;

struct result {
    double ns_per_pair;
    uint64_t pairs; /* per repetition */
};

static struct result measure(void (*fn)(uint64_t), uint64_t pairs_per_unit)
{
    struct result r = {0, 0};
    uint64_t units;

    if (smoke) {
        units = pairs_per_unit > 1 ? 5 : 5000;
        double t0 = now_ns();
        fn(units);
        double t1 = now_ns();
        r.pairs = units * pairs_per_unit;
        r.ns_per_pair = (t1 - t0) / (double)r.pairs;
        return r;
    }

    /* Calibrate (and warm up): double until a run takes >= 1/10 target. */
    units = pairs_per_unit > 1 ? 1 : 1000;
    double elapsed;
    for (;;) {
        double t0 = now_ns();
        fn(units);
        elapsed = now_ns() - t0;
        if (elapsed >= target_ns / 10 || units > (UINT64_MAX >> 2))
            break;
        units *= 2;
    }
    double scaled = (double)units * target_ns / (elapsed > 1 ? elapsed : 1);
    units = scaled < 1 ? 1 : (uint64_t)scaled;

    r.ns_per_pair = 0;
    for (int i = 0; i < reps; i++) {
        double t0 = now_ns();
        fn(units);
        double ns = (now_ns() - t0) / (double)(units * pairs_per_unit);
        if (i == 0 || ns < r.ns_per_pair)
            r.ns_per_pair = ns;
    }
    r.pairs = units * pairs_per_unit;
    return r;
}

/* ---------------------------------------------------------------- */

static const char *malloc_name(const char *label, const char **path)
{
    Dl_info info;
    void *fp;
    void *(*m)(size_t) = malloc;
    memcpy(&fp, &m, sizeof fp);
    *path = "unknown";
    if (dladdr(fp, &info) && info.dli_fname)
        *path = info.dli_fname;
    if (label)
        return label;
    if (strstr(*path, "jemalloc"))
        return "jemalloc";
    if (strstr(*path, "mimalloc"))
        return "mimalloc";
    if (strstr(*path, "tcmalloc"))
        return "tcmalloc";
    if (strstr(*path, "libc.so") || strstr(*path, "libc-"))
        return "glibc";
    return "malloc";
}

static void report(const char *workload, const char *allocator,
                   const char *mname, struct result r)
{
    printf("result workload=%s allocator=%s", workload, allocator);
    if (mname)
        printf(" malloc=%s", mname);
    printf(" ns_per_pair=%.3f pairs=%" PRIu64 " reps=%d%s\n", r.ns_per_pair,
           r.pairs, smoke ? 1 : reps, smoke ? " smoke=1" : "");
    fflush(stdout);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--smoke] [--label NAME] [--time SECONDS] [--reps N]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *label = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (!strcmp(argv[i], "--time") && i + 1 < argc)
            target_ns = strtod(argv[++i], NULL) * 1e9;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            usage(argv[0]);
    }
    if (target_ns < 1e6 || reps < 1)
        usage(argv[0]);

    const char *mpath;
    const char *mname = malloc_name(label, &mpath);
    printf("# bench_cache: malloc=%s from %s; best of %d x %.2f s per figure\n",
           mname, mpath, smoke ? 1 : reps, smoke ? 0.0 : target_ns / 1e9);

    make_perms();
    small_cache = slab_cache_create("bench64", SMALL_SIZE, 0, 0, NULL, NULL, NULL);
    if (!small_cache)
        die("slab_cache_create(bench64)");
    ctor_cache = slab_cache_create("bench_ctor", sizeof(struct ctor_obj),
                                   _Alignof(struct ctor_obj), 0, ctor_obj_ctor,
                                   ctor_obj_dtor, NULL);
    if (!ctor_cache)
        die("slab_cache_create(bench_ctor)");

    report("hot_lifo_64", "libslab", NULL, measure(slab_hot, 1));
    report("hot_lifo_64", "malloc", mname, measure(malloc_hot, 1));
    report("batch_1000_64", "libslab", NULL, measure(slab_batch, BATCH));
    report("batch_1000_64", "malloc", mname, measure(malloc_batch, BATCH));
    struct result rs = measure(slab_ctor, 1);
    report("ctor_256_mutex", "libslab", NULL, rs);
    report("ctor_256_mutex", "malloc", mname, measure(malloc_ctor, 1));

    int failed = 0;
    slab_cache_stats_t st;
    if (slab_cache_stats(ctor_cache, &st) == 0) {
        printf("# ctor_256_mutex: %" PRIu64 " cache allocations, %" PRIu64
               " constructor calls\n",
               st.allocations, ctor_calls);
        if (ctor_calls == 0 || ctor_calls >= st.allocations) {
            fprintf(stderr, "bench_cache: constructor ran %" PRIu64
                    " times for %" PRIu64 " allocations\n",
                    ctor_calls, st.allocations);
            failed = 1;
        }
    } else {
        fprintf(stderr, "bench_cache: slab_cache_stats failed\n");
        failed = 1;
    }

    slab_cache_shrink(small_cache);
    slab_cache_shrink(ctor_cache);
    if (slab_cache_destroy(small_cache) != 0) {
        fprintf(stderr, "bench_cache: slab_cache_destroy(bench64) failed\n");
        failed = 1;
    }
    if (slab_cache_destroy(ctor_cache) != 0) {
        fprintf(stderr, "bench_cache: slab_cache_destroy(bench_ctor) failed\n");
        failed = 1;
    }
    if (dtor_calls != ctor_calls) {
        fprintf(stderr, "bench_cache: %" PRIu64 " constructor calls but %" PRIu64
                " destructor calls\n", ctor_calls, dtor_calls);
        failed = 1;
    }
    return failed;
}
