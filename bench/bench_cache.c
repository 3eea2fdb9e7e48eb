/*
 * bench/bench_cache.c - owns the allocation benchmark: nanoseconds per
 * alloc+free pair for a libslab cache (its public entry points, with the
 * per-thread magazines on as by default) against malloc/free of the same
 * size, in these workloads:
 *
 *   hot_lifo_64           allocate one 64-byte object, free it, repeat
 *   batch_1000_64         allocate 1000 64-byte objects, free them in a
 *                         random order (precomputed permutations, shuffled
 *                         before timing)
 *   ctor_256_mutex        a 256-byte zeroed payload plus an initialised
 *                         pthread mutex, one at a time: the cache's
 *                         constructor does that work once per object; the
 *                         malloc side does malloc + memset +
 *                         pthread_mutex_init and pthread_mutex_destroy +
 *                         free on every pair
 *   2t_own_hot_lifo_64    2 threads, each running hot_lifo_64 on its own
 *                         objects at the same time
 *   2t_own_batch_1000_64  2 threads, each running batch_1000_64 on its own
 *                         objects (its own pointer array, the same shared
 *                         read-only permutations) at the same time
 *   2t_prodcons_64        2 threads: a producer allocates 64-byte objects,
 *                         writes a sequence number into each and passes it
 *                         through a lock-free single-producer/single-consumer
 *                         ring of 1024 slots to a consumer, which checks the
 *                         number and frees the object (every free is of an
 *                         object another thread allocated).  The ring
 *                         indices are published every 32 items (and when
 *                         the ring is full or the run ends) on both sides.
 *
 * A 2-thread figure is aggregate: total pairs of both threads / wall time
 * from the moment both threads are released by a barrier until the later
 * one finishes (thread creation and exit are not timed).  With perfect
 * scaling 2t_own_* is half its single-thread workload's figure; bench/run.sh
 * reports that as a scaling ratio.  For 2t_prodcons_64 a pair is one object
 * produced and consumed; the same hand-off without any allocation (objects
 * taken round-robin from a static pool) is measured too and printed as a
 * "baseline" line, the part of the figure that is the ring's and not the
 * allocator's.
 *
 * Measurement: each figure is the best of --reps (3) repetitions of
 * ~--time (0.3 s) each (CLOCK_MONOTONIC), after a calibration that doubles
 * the work until one run takes 1/10 of that and doubles as the warm-up; every
 * allocator gets exactly the same calibration, warm-up, code and order
 * (libslab first, then malloc, workload by workload).  Multi-threaded runs
 * start fresh threads for every run, for every allocator alike.  Nothing is
 * pinned: CPU affinity could be set identically for every allocator, but on
 * a small machine shared with other work it would tie a thread to a busy CPU;
 * the scheduler is left to place threads.  No allocator is tuned (no mallopt,
 * no MALLOC_CONF and the like).  Every allocated pointer passes through an
 * empty asm statement that "uses" it and clobbers memory, so the compiler
 * can neither drop nor merge allocations.  Waiting on the ring spins with a
 * pause instruction for a while, then yields the CPU.
 *
 * One line per workload per allocator, key=value, starting "result":
 *
 *   result workload=hot_lifo_64 allocator=libslab ns_per_pair=9.87 ...
 *   result workload=hot_lifo_64 allocator=malloc malloc=glibc ns_per_pair=...
 *
 * Every line carries vcsw_pk, the process's voluntary context switches (a
 * thread blocking, e.g. on a contended lock) per 1000 pairs over the whole
 * measurement, calibration included.  2-thread lines also carry threads=2, the 2t_own ones base=<single-thread
 * workload>; the 2t_prodcons ones the ring waits per 1000 items of the last
 * repetition (ring_full_pk: producer found the ring full, ring_empty_pk:
 * consumer found it empty).  libslab lines carry its magazine counters over
 * the whole measurement, per 1000 allocations: slab-layer refills
 * (refill_pk), depot magazine exchanges (depot_xchg_pk) and frees that had
 * to bypass the magazines (free_miss_pk), and the magazine size at the end.
 *
 * The malloc in use is whatever LD_PRELOAD supplies; its name is taken from
 * --label or found with dladdr().  bench/run.sh compares several.
 *
 * Options: --smoke (tiny fixed run of every workload, no timing claims; for
 * the test suite), --label NAME, --time SECONDS (per repetition), --reps N,
 * --only WORKLOAD[,WORKLOAD...] (those workloads only, in the order above;
 * repeatable), --libslab-only (no malloc figures: libslab's line, and
 * 2t_prodcons_64's ring baseline, per workload).  bench/debug_cost.sh uses
 * the last two.
 *
 * A header line per cache gives its flags as libslab reports them, so a
 * run under SLAB_DEBUG shows which debug switches were in force:
 *
 *   # cache bench64: flags=0x00000d00 debug=FZP magazines=0
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <slab.h>

#define SMALL_SIZE 64
#define BATCH 1000
#define NPERM 64
#define CTOR_PAYLOAD 256
#define NTHREADS 2
#define RING_SLOTS 1024 /* a power of two */
#define HANDOFF 32      /* items between publications of a ring index */
#define SPINS_BEFORE_YIELD 128

#define ALWAYS_INLINE inline __attribute__((always_inline))

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

static void die_rc(const char *what, int rc)
{
    errno = rc;
    die(what);
}

/* ---------------------------------------------------------------- */
/* State shared by the workloads                                      */

struct ctor_obj {
    pthread_mutex_t lock;
    unsigned char payload[CTOR_PAYLOAD];
};

/* Only the main thread allocates from the constructed cache. */
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
/* The 64-byte object loops, shared by the 1- and 2-thread workloads so */
/* that the scaling ratio compares the same code.  `slab` is a constant */
/* at every call site: each caller gets its own specialised copy.       */

static ALWAYS_INLINE void *small_alloc(int slab)
{
    void *p = slab ? slab_cache_alloc(small_cache) : malloc(SMALL_SIZE);
    if (__builtin_expect(p == NULL, 0))
        die(slab ? "slab_cache_alloc" : "malloc");
    keep(p);
    return p;
}

static ALWAYS_INLINE void small_free(int slab, void *p)
{
    if (slab)
        slab_cache_free(small_cache, p);
    else
        free(p);
}

static ALWAYS_INLINE void hot_loop(int slab, uint64_t units)
{
    for (uint64_t i = 0; i < units; i++) {
        void *p = small_alloc(slab);
        small_free(slab, p);
    }
}

static ALWAYS_INLINE void batch_loop(int slab, uint64_t units, void **v)
{
    for (uint64_t b = 0; b < units; b++) {
        const uint16_t *perm = perms[b % NPERM];
        for (unsigned i = 0; i < BATCH; i++)
            v[i] = small_alloc(slab);
        for (unsigned i = 0; i < BATCH; i++)
            small_free(slab, v[perm[i]]);
    }
}

/* ---------------------------------------------------------------- */
/* Single-thread workloads: each runs `units` units of work (a unit is */
/* one pair, or one batch of BATCH pairs) and returns the elapsed ns.  */

static double slab_hot(uint64_t units)
{
    double t0 = now_ns();
    hot_loop(1, units);
    return now_ns() - t0;
}

static double malloc_hot(uint64_t units)
{
    double t0 = now_ns();
    hot_loop(0, units);
    return now_ns() - t0;
}

static double slab_batch(uint64_t units)
{
    double t0 = now_ns();
    batch_loop(1, units, ptrs);
    return now_ns() - t0;
}

static double malloc_batch(uint64_t units)
{
    double t0 = now_ns();
    batch_loop(0, units, ptrs);
    return now_ns() - t0;
}

static double slab_ctor(uint64_t units)
{
    double t0 = now_ns();
    for (uint64_t i = 0; i < units; i++) {
        struct ctor_obj *o = slab_cache_alloc(ctor_cache);
        if (__builtin_expect(o == NULL, 0))
            die("slab_cache_alloc");
        keep(o);
        slab_cache_free(ctor_cache, o);
    }
    return now_ns() - t0;
}

static double malloc_ctor(uint64_t units)
{
    double t0 = now_ns();
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
    return now_ns() - t0;
}

/* ---------------------------------------------------------------- */
/* Threads                                                              */

/* One worker thread: its start barrier, its work, its own start and end. */
struct worker {
    _Alignas(64) pthread_barrier_t *start;
    void (*fn)(struct worker *);
    uint64_t units;
    double t0, t1;
    int index;
    void *ctx;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    w->t0 = now_ns();
    w->fn(w);
    w->t1 = now_ns();
    return NULL;
}

/* Start NTHREADS fresh threads running fn, released together by a
 * barrier; each records its own start and end.  Returns the wall time from
 * the earliest start to the latest end (thread creation and exit, where
 * allocators set up and tear down per-thread state, are left out alike). */
static double run_threads(void (*fn)(struct worker *), uint64_t units, void *ctx)
{
    static struct worker w[NTHREADS];
    pthread_t tid[NTHREADS];
    pthread_barrier_t start;
    int rc = pthread_barrier_init(&start, NULL, NTHREADS);
    if (rc)
        die_rc("pthread_barrier_init", rc);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].start = &start;
        w[i].fn = fn;
        w[i].units = units;
        w[i].t0 = w[i].t1 = 0;
        w[i].index = i;
        w[i].ctx = ctx;
        rc = pthread_create(&tid[i], NULL, worker_main, &w[i]);
        if (rc)
            die_rc("pthread_create", rc);
    }
    for (int i = 0; i < NTHREADS; i++) {
        rc = pthread_join(tid[i], NULL);
        if (rc)
            die_rc("pthread_join", rc);
    }
    pthread_barrier_destroy(&start);
    double t0 = w[0].t0, t1 = w[0].t1;
    for (int i = 1; i < NTHREADS; i++) {
        if (w[i].t0 < t0)
            t0 = w[i].t0;
        if (w[i].t1 > t1)
            t1 = w[i].t1;
    }
    return t1 - t0;
}

static ALWAYS_INLINE void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Wait a little: spin first, then give the CPU away (the two threads may
 * share one CPU, and under valgrind they always do). */
static void backoff(unsigned *spins)
{
    if (++*spins < SPINS_BEFORE_YIELD)
        cpu_relax();
    else
        sched_yield();
}

/* ---- 2t_own: every thread its own objects ---- */

struct own_ctx {
    _Alignas(64) void *v[BATCH];
};
static struct own_ctx own_ctx[NTHREADS];

static void own_slab_hot(struct worker *w) { hot_loop(1, w->units); }
static void own_malloc_hot(struct worker *w) { hot_loop(0, w->units); }
static void own_slab_batch(struct worker *w) { batch_loop(1, w->units, own_ctx[w->index].v); }
static void own_malloc_batch(struct worker *w) { batch_loop(0, w->units, own_ctx[w->index].v); }

/* `units` per thread. */
static double slab_2t_hot(uint64_t units) { return run_threads(own_slab_hot, units, NULL); }
static double malloc_2t_hot(uint64_t units) { return run_threads(own_malloc_hot, units, NULL); }
static double slab_2t_batch(uint64_t units) { return run_threads(own_slab_batch, units, NULL); }
static double malloc_2t_batch(uint64_t units) { return run_threads(own_malloc_batch, units, NULL); }

/* ---- 2t_prodcons: a single-producer/single-consumer ring ---- */

enum pc_source { PC_SLAB, PC_MALLOC, PC_POOL };

struct ring {
    _Alignas(64) atomic_size_t head; /* next item to consume; consumer writes */
    _Alignas(64) atomic_size_t tail; /* next item to produce; producer writes */
    /* Slots are plain: a slot is written before the release store of tail
     * that publishes it and read after the acquire load that sees it; it is
     * written again only after the consumer's release of head past it. */
    _Alignas(64) void *slot[RING_SLOTS];
    _Alignas(64) uint64_t items;
    uint64_t full_waits;  /* producer: ring full (producer side only) */
    _Alignas(64) uint64_t empty_waits; /* consumer: ring empty (consumer side only) */
    int bad;              /* consumer: a sequence number was wrong */
};

static struct ring ring;

/* The no-allocation baseline hands out these, round robin: object i is
 * reused only after the consumer has released item i - RING_SLOTS. */
static struct pool_obj {
    _Alignas(64) uint64_t words[SMALL_SIZE / sizeof(uint64_t)];
} pool[RING_SLOTS];

static ALWAYS_INLINE void producer_loop(struct ring *q, enum pc_source src)
{
    const uint64_t n = q->items;
    size_t tail = 0, head = 0, published = 0;
    uint64_t waits = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (tail - head == RING_SLOTS) {
            head = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail - head == RING_SLOTS) {
                if (published != tail) { /* let the consumer see everything */
                    atomic_store_explicit(&q->tail, tail, memory_order_release);
                    published = tail;
                }
                waits++;
                unsigned spins = 0;
                do
                    backoff(&spins);
                while (tail - (head = atomic_load_explicit(&q->head, memory_order_acquire)) ==
                       RING_SLOTS);
            }
        }
        void *p;
        if (src == PC_POOL)
            p = &pool[tail & (RING_SLOTS - 1)];
        else
            p = small_alloc(src == PC_SLAB);
        *(uint64_t *)p = i;
        q->slot[tail & (RING_SLOTS - 1)] = p;
        tail++;
        if (tail - published >= HANDOFF) {
            atomic_store_explicit(&q->tail, tail, memory_order_release);
            published = tail;
        }
    }
    atomic_store_explicit(&q->tail, tail, memory_order_release);
    q->full_waits = waits;
}

static ALWAYS_INLINE void consumer_loop(struct ring *q, enum pc_source src)
{
    const uint64_t n = q->items;
    size_t head = 0, tail = 0;
    uint64_t waits = 0;
    int bad = 0;
    while (head < n) {
        if (head == tail) {
            tail = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head == tail) {
                waits++;
                unsigned spins = 0;
                do
                    backoff(&spins);
                while ((tail = atomic_load_explicit(&q->tail, memory_order_acquire)) == head);
            }
        }
        while (head != tail) {
            void *p = q->slot[head & (RING_SLOTS - 1)];
            bad |= *(const uint64_t *)p != (uint64_t)head;
            if (src != PC_POOL)
                small_free(src == PC_SLAB, p);
            head++;
            if ((head & (HANDOFF - 1)) == 0)
                atomic_store_explicit(&q->head, head, memory_order_release);
        }
        atomic_store_explicit(&q->head, head, memory_order_release);
    }
    q->empty_waits = waits;
    q->bad = bad;
}

static void pc_slab(struct worker *w)
{
    if (w->index == 0)
        producer_loop(w->ctx, PC_SLAB);
    else
        consumer_loop(w->ctx, PC_SLAB);
}

static void pc_malloc(struct worker *w)
{
    if (w->index == 0)
        producer_loop(w->ctx, PC_MALLOC);
    else
        consumer_loop(w->ctx, PC_MALLOC);
}

static void pc_pool(struct worker *w)
{
    if (w->index == 0)
        producer_loop(w->ctx, PC_POOL);
    else
        consumer_loop(w->ctx, PC_POOL);
}

/* `units` items in all. */
static double run_pc(void (*fn)(struct worker *), uint64_t units)
{
    atomic_store_explicit(&ring.head, 0, memory_order_relaxed);
    atomic_store_explicit(&ring.tail, 0, memory_order_relaxed);
    ring.items = units;
    ring.full_waits = ring.empty_waits = 0;
    ring.bad = 0;
    double ns = run_threads(fn, units, &ring);
    if (ring.bad) {
        fprintf(stderr, "bench_cache: 2t_prodcons: the consumer saw a wrong sequence number\n");
        exit(1);
    }
    return ns;
}

static double slab_2t_pc(uint64_t units) { return run_pc(pc_slab, units); }
static double malloc_2t_pc(uint64_t units) { return run_pc(pc_malloc, units); }
static double pool_2t_pc(uint64_t units) { return run_pc(pc_pool, units); }

/* ---------------------------------------------------------------- */
/* Timing                                                               */

static double target_ns = 0.3e9;
static int reps = 3;
static int smoke;

struct result {
    double ns_per_pair;
    uint64_t pairs;       /* per repetition */
    uint64_t all_pairs;   /* in calibration and every repetition */
    double vcsw_pk;       /* voluntary context switches per 1000 pairs */
};

static long voluntary_switches(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) /* every thread, exited ones too */
        return 0;
    return ru.ru_nvcsw;
}

/* fn(units) runs units units of pairs_per_unit pairs and returns the ns
 * they took.  calib_units: where calibration starts; smoke_units: the
 * whole of a --smoke run. */
static struct result measure(double (*fn)(uint64_t), uint64_t pairs_per_unit,
                             uint64_t calib_units, uint64_t smoke_units)
{
    struct result r = {0, 0, 0, 0};
    uint64_t units;
    long vcsw0 = voluntary_switches();

    if (smoke) {
        units = smoke_units;
        double ns = fn(units);
        r.pairs = r.all_pairs = units * pairs_per_unit;
        r.ns_per_pair = ns / (double)r.pairs;
        r.vcsw_pk = 1000.0 * (double)(voluntary_switches() - vcsw0) / (double)r.all_pairs;
        return r;
    }

    /* Calibrate (and warm up): double until a run takes >= 1/10 target. */
    units = calib_units;
    double elapsed;
    for (;;) {
        elapsed = fn(units);
        r.all_pairs += units * pairs_per_unit;
        if (elapsed >= target_ns / 10 || units > (UINT64_MAX >> 2))
            break;
        units *= 2;
    }
    double scaled = (double)units * target_ns / (elapsed > 1 ? elapsed : 1);
    units = scaled < 1 ? 1 : (uint64_t)scaled;

    r.ns_per_pair = 0;
    for (int i = 0; i < reps; i++) {
        double ns = fn(units) / (double)(units * pairs_per_unit);
        r.all_pairs += units * pairs_per_unit;
        if (i == 0 || ns < r.ns_per_pair)
            r.ns_per_pair = ns;
    }
    r.pairs = units * pairs_per_unit;
    r.vcsw_pk = 1000.0 * (double)(voluntary_switches() - vcsw0) / (double)r.all_pairs;
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

static void report_start(const char *kind, const char *workload, const char *allocator,
                         const char *mname, struct result r)
{
    printf("%s workload=%s allocator=%s", kind, workload, allocator);
    if (mname)
        printf(" malloc=%s", mname);
    printf(" ns_per_pair=%.3f pairs=%" PRIu64 " reps=%d%s vcsw_pk=%.4f", r.ns_per_pair,
           r.pairs, smoke ? 1 : reps, smoke ? " smoke=1" : "", r.vcsw_pk);
}

static double per_k(uint64_t n, uint64_t of)
{
    return of ? 1000.0 * (double)n / (double)of : 0.0;
}

struct workload {
    const char *name;
    const char *base; /* the single-thread workload a 2t_own one scales */
    double (*slab_fn)(uint64_t);
    double (*malloc_fn)(uint64_t);
    slab_cache_t **cache; /* the cache libslab uses */
    uint64_t pairs_per_unit, calib_units, smoke_units;
    int threads;
    int prodcons;
};

static const struct workload workloads[] = {
    {"hot_lifo_64", NULL, slab_hot, malloc_hot, &small_cache, 1, 1000, 5000, 1, 0},
    {"batch_1000_64", NULL, slab_batch, malloc_batch, &small_cache, BATCH, 1, 5, 1, 0},
    {"ctor_256_mutex", NULL, slab_ctor, malloc_ctor, &ctor_cache, 1, 1000, 5000, 1, 0},
    {"2t_own_hot_lifo_64", "hot_lifo_64", slab_2t_hot, malloc_2t_hot, &small_cache,
     NTHREADS, 1000, 2500, NTHREADS, 0},
    {"2t_own_batch_1000_64", "batch_1000_64", slab_2t_batch, malloc_2t_batch, &small_cache,
     NTHREADS * BATCH, 1, 3, NTHREADS, 0},
    {"2t_prodcons_64", NULL, slab_2t_pc, malloc_2t_pc, &small_cache, 1, 4096, 5000,
     NTHREADS, 1},
};

/* The fields of a result line that describe the workload itself. */
static void report_workload(const struct workload *wl)
{
    if (wl->threads > 1)
        printf(" threads=%d", wl->threads);
    if (wl->base)
        printf(" base=%s", wl->base);
    if (wl->prodcons)
        printf(" ring_full_pk=%.3f ring_empty_pk=%.3f",
               per_k(ring.full_waits, ring.items), per_k(ring.empty_waits, ring.items));
}

static int libslab_only;

static void run_workload(const struct workload *wl, const char *mname)
{
    slab_cache_stats_t s0, s1;
    int have = slab_cache_stats(*wl->cache, &s0) == 0;
    struct result r = measure(wl->slab_fn, wl->pairs_per_unit, wl->calib_units,
                              wl->smoke_units);
    have = have && slab_cache_stats(*wl->cache, &s1) == 0;
    report_start("result", wl->name, "libslab", NULL, r);
    report_workload(wl);
    if (have) {
        uint64_t allocs = s1.allocations - s0.allocations;
        printf(" refill_pk=%.3f depot_xchg_pk=%.3f free_miss_pk=%.3f magazine_size=%zu",
               per_k(s1.alloc_miss - s0.alloc_miss, allocs),
               per_k(s1.depot_exchanges - s0.depot_exchanges, allocs),
               per_k(s1.free_miss - s0.free_miss, allocs), s1.magazine_size);
    }
    printf("\n");
    fflush(stdout);

    if (!libslab_only) {
        r = measure(wl->malloc_fn, wl->pairs_per_unit, wl->calib_units, wl->smoke_units);
        report_start("result", wl->name, "malloc", mname, r);
        report_workload(wl);
        printf("\n");
        fflush(stdout);
    }

    if (wl->prodcons) { /* the ring alone: the same hand-off, no allocator */
        r = measure(pool_2t_pc, 1, wl->calib_units, wl->smoke_units);
        report_start("baseline", wl->name, "none", NULL, r);
        printf(" threads=%d what=ring_only ring_full_pk=%.3f ring_empty_pk=%.3f\n",
               wl->threads, per_k(ring.full_waits, ring.items),
               per_k(ring.empty_waits, ring.items));
        fflush(stdout);
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--smoke] [--label NAME] [--time SECONDS] [--reps N]\n"
            "       [--only WORKLOAD[,WORKLOAD...]] [--libslab-only]\n",
            argv0);
    exit(2);
}

#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* --only: mark the workloads named in a comma-separated list. */
static void select_workloads(const char *list, unsigned char *chosen, const char *argv0)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        size_t i;
        for (i = 0; i < NWORKLOADS; i++)
            if (strlen(workloads[i].name) == len && !strncmp(workloads[i].name, p, len))
                break;
        if (i == NWORKLOADS) {
            fprintf(stderr, "bench_cache: --only: no workload '%.*s'; the workloads are:",
                    (int)len, p);
            for (i = 0; i < NWORKLOADS; i++)
                fprintf(stderr, " %s", workloads[i].name);
            fprintf(stderr, "\n");
            usage(argv0);
        }
        chosen[i] = 1;
        if (!p[len])
            break;
        p += len + 1;
    }
}

/* One header line per cache: its flags as libslab reports them (with
 * SLAB_DEBUG's switches added) and whether it has magazines. */
static void report_cache(slab_cache_t *c, const char *name)
{
    slab_cache_stats_t st;
    if (slab_cache_stats(c, &st) != 0)
        return;
#ifdef SLAB_DEBUG_FLAGS
    static const struct {
        slab_flags_t flag;
        char letter;
    } sw[] = {{SLAB_CONSISTENCY_CHECKS, 'F'}, {SLAB_RED_ZONE, 'Z'}, {SLAB_POISON, 'P'},
              {SLAB_STORE_USER, 'U'},         {SLAB_TRACE, 'T'},    {SLAB_LEAK_AT_EXIT, 'L'}};
    char letters[sizeof sw / sizeof sw[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++)
        if (st.flags & sw[i].flag)
            letters[n++] = sw[i].letter;
    letters[n] = '\0';
    printf("# cache %s: flags=0x%08x debug=%s magazines=%d\n", name, (unsigned)st.flags,
           n ? letters : "-", st.magazine_size > 0);
#else /* a libslab from before debug mode: no flags in the statistics */
    printf("# cache %s: debug=- magazines=%d\n", name, st.magazine_size > 0);
#endif
}

int main(int argc, char **argv)
{
    const char *label = NULL;
    unsigned char chosen[NWORKLOADS] = {0};
    int only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (!strcmp(argv[i], "--time") && i + 1 < argc)
            target_ns = strtod(argv[++i], NULL) * 1e9;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            select_workloads(argv[++i], chosen, argv[0]);
            only = 1;
        } else if (!strcmp(argv[i], "--libslab-only"))
            libslab_only = 1;
        else
            usage(argv[0]);
    }
    if (target_ns < 1e6 || reps < 1)
        usage(argv[0]);

    const char *mpath;
    const char *mname = malloc_name(label, &mpath);
    printf("# bench_cache: malloc=%s from %s; best of %d x %.2f s per figure\n",
           mname, mpath, smoke ? 1 : reps, smoke ? 0.0 : target_ns / 1e9);
#if defined(__clang__)
    printf("# compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("# compiler: gcc %s\n", __VERSION__);
#else
    printf("# compiler: unknown\n");
#endif
    {
        slab_options_t o;
        slab_get_options(&o);
        printf("# libslab: magazines=%s\n", o.magazines ? "on" : "off");
    }

    make_perms();
    small_cache = slab_cache_create("bench64", SMALL_SIZE, 0, 0, NULL, NULL, NULL);
    if (!small_cache)
        die("slab_cache_create(bench64)");
    ctor_cache = slab_cache_create("bench_ctor", sizeof(struct ctor_obj),
                                   _Alignof(struct ctor_obj), 0, ctor_obj_ctor,
                                   ctor_obj_dtor, NULL);
    if (!ctor_cache)
        die("slab_cache_create(bench_ctor)");

    report_cache(small_cache, "bench64");
    report_cache(ctor_cache, "bench_ctor");
    fflush(stdout);

    int ran_ctor = 0;
    for (size_t i = 0; i < NWORKLOADS; i++) {
        if (only && !chosen[i])
            continue;
        run_workload(&workloads[i], mname);
        ran_ctor |= workloads[i].cache == &ctor_cache;
    }

    int failed = 0;
    slab_cache_stats_t st;
    if (!ran_ctor) {
        /* the constructed cache was not used: nothing to check */
    } else if (slab_cache_stats(ctor_cache, &st) == 0) {
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

    /* The worker threads have exited: their magazines are in the depots. */
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
