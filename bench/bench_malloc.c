/*
 * bench/bench_malloc.c - owns the malloc benchmark: whole-program workloads
 * that call only the standard malloc family (malloc, calloc, realloc, free),
 * so that whatever allocator LD_PRELOAD brings (glibc's when none) is the
 * one measured.  libslab is not linked in; bench/run.sh preloads its malloc
 * replacement (libslab-malloc.so) like jemalloc, mimalloc and tcmalloc.
 *
 * Usage: bench_malloc WORKLOAD [--scale X] [--threads N] [--smoke] [--label NAME]
 *        bench_malloc --all [same options]      (every workload, one process)
 *
 * One workload per invocation (a fresh process per figure); it prints
 *
 *   # bench_malloc: malloc=<name> from <library that defines malloc>
 *   # compiler: ...
 *   result workload=W allocator=NAME time_s=T ops=N ns_per_op=X peak_rss_kb=P
 *          final_rss_kb=F threads=K cpu_s=C scale=S [smoke=1] [workload's own
 *          fields]
 *
 * (the result is one line).  time_s is wall-clock time (CLOCK_MONOTONIC) of
 * the whole workload: filling, the main loop and freeing everything,
 * except grow_shrink's sleep.  ops counts the malloc-family calls made
 * (each malloc, calloc, realloc and free is one), ns_per_op = time / ops.
 * peak_rss_kb is getrusage(RUSAGE_SELF).ru_maxrss at the end (the whole
 * process, so with --all it is the peak of every workload so far);
 * final_rss_kb is the resident set from /proc/self/statm at the end, after
 * the frees (grow_shrink: see below).  The benchmark's own bookkeeping
 * arrays are allocated before the clock starts and count in the RSS the
 * same for every allocator.  cpu_s is the process's user + system CPU time
 * over the workload (with time_s it shows how much of a 2-thread run was
 * spent waiting, e.g. for a CPU that other work held).
 *
 * Every workload draws from a fixed-seed xorshift64* generator, so every
 * allocator sees the same sequence of requests (larson's interleaving of
 * its two threads is up to the scheduler).  "Log-uniform" sizes are drawn
 * by octave: an octave [2^k, 2^(k+1)) uniformly among the range's octaves,
 * then a size uniformly inside it.  Blocks carry a tag byte at their first
 * and last position, checked before the block is freed: a benchmark run
 * also catches an allocator that hands out overlapping blocks.  Any check
 * failing stops the program with a message and exit status 1.
 *
 * Operation counts below are at --scale 1, where each workload takes
 * about 0.3 to 2 s with glibc's malloc on a 2-CPU machine.
 *
 *   random_small   a pool of 20000 slots (empty at the start); each of 6M
 *                  steps picks a slot at random, frees its block, allocates
 *                  a new one of 8..4095 B (log-uniform), one allocation in 8
 *                  by calloc (whose first and last bytes are checked to be
 *                  zero), and writes its first and last byte.
 *   random_large   the same with 1000 slots, 1M steps and 8 B..1 MiB-1
 *                  (log-uniform), malloc only; one byte is written in every
 *                  4 KiB of the block (and the last byte), so that the pages
 *                  of a large block are really used and count in the RSS as
 *                  they would in a program that fills its buffers.
 *   larson         --threads (2) threads, a server-like hand-off after
 *                  Larson & Krishnan: each thread fills 8192 slots, then in
 *                  each of 6M steps replaces a random slot's block with one
 *                  of 16..1024 B (uniform).  Every 1024 steps a thread sends
 *                  the blocks it allocated since its last exchange and still
 *                  holds to the next thread's inbox (a ring of 8192 blocks
 *                  under a mutex), and takes as many from its own inbox into
 *                  the slots they leave.  A received block is never sent on,
 *                  so it is freed by a thread that did not allocate it.  A
 *                  thread that finds the next inbox full waits for room,
 *                  freeing whatever arrives in its own inbox meanwhile; this
 *                  keeps the threads within about 8 exchanges of each other,
 *                  so the share of remote frees does not depend on how the
 *                  scheduler runs them (about 94 % with 2 threads;
 *                  remote_free_pct on the result line; 0 with --threads 1,
 *                  where the thread hands its blocks to itself).  When a
 *                  thread has finished, blocks for it stay with their
 *                  sender; inbox leftovers are freed by the main thread.
 *   grow_shrink    24 rounds of: allocate blocks of 16 B..64 KiB-1
 *                  (log-uniform, one byte written per 4 KiB and the last)
 *                  until 256 MiB are live, read the RSS (the largest such
 *                  reading is live_peak_rss_kb), then free 90 % of the live
 *                  blocks, chosen at random; the 10 % kept stay live into
 *                  the next round, which grows over the holes they leave.
 *                  After the last round: sleep 50 ms (some allocators give
 *                  memory back lazily or from a background thread; the
 *                  sleep is not timed), read the RSS (after_sleep_rss_kb),
 *                  allocate and free a batch of 256 blocks (allocators that
 *                  return memory from their slow paths get the chance), and
 *                  read the RSS again: that is final_rss_kb, with the 10 %
 *                  still live (live_kb).  Then everything is freed (timed).
 *   realloc_chain  64 buffers grown together, round robin, by realloc in
 *                  steps of 16..64 B (uniform) from 1 B to 64 KiB, then
 *                  shrunk the same way back to 1 B; 12 such rounds.  Every
 *                  neighbour is growing too, so the allocator cannot always
 *                  grow in place (moved_pct: the reallocs that moved the
 *                  block).  Each byte holds a pattern of its buffer and
 *                  offset, written when the byte first becomes part of the
 *                  buffer; after every realloc the first and the last byte
 *                  kept are checked, and the whole of every buffer at the
 *                  top and bottom of each round.
 *
 * --scale X multiplies the operation counts (steps; rounds for grow_shrink
 * and realloc_chain, rounded, at least 1).  --smoke runs every workload
 * tiny (a few thousand operations, 4 MiB for grow_shrink) with no timing
 * claims, for the test suite.  --label NAME overrides the allocator name
 * found with dladdr().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

static int smoke;
static double scale = 1.0;
static int nthreads = 2;

/* ---------------------------------------------------------------- */
/* Helpers                                                            */

static void fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench_malloc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Resident set in KiB from /proc/self/statm, read without stdio (which
 * would allocate). */
static long rss_kb(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strchr(buf, ' ');
    if (!p)
        return -1;
    long pages = strtol(p + 1, NULL, 10);
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* User + system CPU seconds of the whole process so far. */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss; /* KiB on Linux */
}

struct rng {
    uint64_t s;
};

/* xorshift64*: fixed seeds, the same sequence for every allocator. */
static inline uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* A number in [0, n) from the high half of r, n < 2^32: a multiply and a
 * shift instead of a division, which would cost as much as a fast
 * allocator's malloc. */
static inline uint64_t below(uint64_t r, uint64_t n)
{
    return ((r >> 32) * n) >> 32;
}

/* Log-uniform by octave: an octave k in [lo, hi) from the high half of r,
 * then uniform in [2^k, 2^(k+1)) from its low bits (k < 32). */
static inline size_t size_octaves(uint64_t r, unsigned lo, unsigned hi)
{
    unsigned k = lo + (unsigned)below(r, hi - lo);
    return ((size_t)1 << k) | (size_t)(r & (((uint64_t)1 << k) - 1));
}

static inline unsigned char tag_of(size_t slot, size_t size)
{
    return (unsigned char)(slot * 151u + size * 7u + 1u);
}

/* Write the tag at the first and last byte and, if `pages`, one byte in
 * every 4 KiB between. */
static inline void touch(unsigned char *p, size_t size, unsigned char tag, int pages)
{
    p[0] = tag;
    if (pages)
        for (size_t off = PAGE; off < size; off += PAGE)
            p[off] = tag;
    p[size - 1] = tag;
}

static inline void check_tag(const char *workload, const unsigned char *p, size_t size,
                             unsigned char tag)
{
    if (p[0] != tag || p[size - 1] != tag)
        fail("%s: block %p of %zu bytes was overwritten (tag %#x, found %#x and %#x)",
             workload, (const void *)p, size, tag, p[0], p[size - 1]);
}

static uint64_t scaled(uint64_t base)
{
    double v = (double)base * scale;
    return v < 1 ? 1 : (uint64_t)(v + 0.5);
}

/* What a workload reports. */
struct run {
    double ns;          /* timed wall clock */
    uint64_t ops;       /* malloc-family calls */
    long final_rss_kb;  /* -1: read at the end by the caller */
    int threads;
    char extra[256];    /* " key=value ..." */
};

static void extra(struct run *r, const char *fmt, ...)
{
    size_t used = strlen(r->extra);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->extra + used, sizeof r->extra - used, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- */
/* random_small, random_large                                          */

struct slot {
    unsigned char *p;
    size_t size;
};

static void random_pool(struct run *r, const char *name, size_t nslots, uint64_t steps,
                        unsigned lo, unsigned hi, int use_calloc, int pages, uint64_t seed)
{
    struct slot *slot = calloc(nslots, sizeof *slot);
    if (!slot)
        fail("%s: no memory for %zu slots", name, nslots);
    struct rng rng = {seed};
    uint64_t ops = 0;

    double t0 = now_ns();
    for (uint64_t i = 0; i < steps; i++) {
        size_t j = (size_t)below(rng_next(&rng), nslots);
        uint64_t x = rng_next(&rng);
        size_t size = size_octaves(x, lo, hi);
        if (slot[j].p) {
            check_tag(name, slot[j].p, slot[j].size, tag_of(j, slot[j].size));
            free(slot[j].p);
            ops++;
        }
        unsigned char *p;
        if (use_calloc && (x >> 61) == 0) { /* 1 in 8 */
            p = calloc(1, size);
            if (p && (p[0] != 0 || p[size - 1] != 0))
                fail("%s: calloc(1, %zu) returned memory that is not zeroed", name, size);
        } else {
            p = malloc(size);
        }
        ops++;
        if (!p)
            fail("%s: out of memory allocating %zu bytes", name, size);
        touch(p, size, tag_of(j, size), pages);
        slot[j].p = p;
        slot[j].size = size;
    }
    for (size_t j = 0; j < nslots; j++) {
        if (slot[j].p) {
            check_tag(name, slot[j].p, slot[j].size, tag_of(j, slot[j].size));
            free(slot[j].p);
            ops++;
        }
    }
    r->ns = now_ns() - t0;
    r->ops = ops;
    extra(r, " slots=%zu steps=%" PRIu64, nslots, steps);
    free(slot);
}

static void w_random_small(struct run *r)
{
    /* 8..4095 B, calloc for 1 in 8, first and last byte written */
    random_pool(r, "random_small", smoke ? 1000 : 20000, scaled(smoke ? 5000 : 6000000),
                3, 12, 1, 0, 0x9e3779b97f4a7c15ULL);
}

static void w_random_large(struct run *r)
{
    /* 8 B..1 MiB-1, malloc only, a byte written in every page */
    random_pool(r, "random_large", smoke ? 100 : 1000, scaled(smoke ? 1000 : 1000000),
                3, 20, 0, 1, 0xd1b54a32d192ed03ULL);
}

/* ---------------------------------------------------------------- */
/* larson                                                               */

#define L_SLOTS 8192u   /* per thread, a power of two */
#define L_PERIOD 1024u  /* steps between exchanges */
#define L_INBOX (8 * L_PERIOD)
#define L_MIN 16u
#define L_MAX 1024u

/* --smoke uses fewer slots and a shorter period, so that a few thousand
 * steps still replace blocks and hand them off. */
static size_t l_slots = L_SLOTS, l_period = L_PERIOD;

/* A thread's inbox: a ring of blocks other threads allocated.  Every inbox
 * is under l_lock; l_room is broadcast whenever an inbox gets room (or its
 * owner finishes).  Nobody waits for blocks to arrive, only for room. */
struct inbox {
    size_t head, n;
    int done; /* its thread takes nothing more */
    struct slot item[L_INBOX];
};

struct lthread {
    pthread_t tid;
    unsigned index;
    uint64_t steps;
    struct rng rng;
    uint64_t ops, allocs, frees, remote_frees, sent, received, waits;
    struct slot slot[L_SLOTS];
    unsigned char mine[L_SLOTS];    /* allocated by this thread */
    uint32_t log[L_PERIOD];         /* slots filled since the last exchange */
    uint32_t vacant[L_PERIOD];      /* slots emptied by this exchange */
    struct slot send[L_PERIOD];
    struct slot drop[L_INBOX];      /* taken from the inbox while waiting */
};

static struct inbox *l_inbox;
static struct lthread *l_thread;
static pthread_barrier_t l_start;
static pthread_mutex_t l_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t l_room = PTHREAD_COND_INITIALIZER;

/* Tags for larson do not depend on the slot: blocks move between slots. */
static inline unsigned char ltag(size_t size) { return tag_of(0, size); }

static void l_free_block(struct lthread *t, struct slot s, int remote)
{
    check_tag("larson", s.p, s.size, ltag(s.size));
    free(s.p);
    t->ops++;
    t->frees++;
    t->remote_frees += remote != 0;
}

static void l_free(struct lthread *t, size_t j)
{
    l_free_block(t, t->slot[j], !t->mine[j]);
    t->slot[j].p = NULL;
}

/* Send the blocks this thread allocated since the last exchange and still
 * holds to the next thread, then take at most as many from its own inbox
 * into the slots they left.  While the next thread's inbox is full, wait
 * for room, freeing whatever arrives in this thread's own inbox meanwhile
 * (so two threads never wait for each other).  A finished thread's inbox
 * takes nothing: the blocks go back to their slots here. */
static void l_exchange(struct lthread *t, size_t nlog)
{
    struct inbox *out = &l_inbox[(t->index + 1) % (unsigned)nthreads];
    struct inbox *in = &l_inbox[t->index];
    size_t ns = 0;

    for (size_t k = 0; k < nlog; k++) { /* a slot filled twice is logged twice */
        uint32_t j = t->log[k];
        if (t->mine[j] && t->slot[j].p) {
            t->send[ns] = t->slot[j];
            t->vacant[ns++] = j;
            t->slot[j].p = NULL;
        }
    }

    size_t got = 0, sent = 0;
    pthread_mutex_lock(&l_lock);
    for (;;) {
        while (sent < ns && out->n < L_INBOX) {
            out->item[(out->head + out->n) % L_INBOX] = t->send[sent++];
            out->n++;
        }
        if (sent == ns || out->done)
            break;
        size_t nd = 0;
        for (; in->n > 0; in->n--, in->head = (in->head + 1) % L_INBOX)
            t->drop[nd++] = in->item[in->head];
        if (nd) {
            pthread_cond_broadcast(&l_room);
            pthread_mutex_unlock(&l_lock);
            for (size_t k = 0; k < nd; k++)
                l_free_block(t, t->drop[k], 1);
            pthread_mutex_lock(&l_lock);
        } else {
            t->waits++;
            pthread_cond_wait(&l_room, &l_lock);
        }
    }
    while (got < sent && in->n > 0) {
        uint32_t j = t->vacant[got++];
        t->slot[j] = in->item[in->head];
        t->mine[j] = 0;
        in->head = (in->head + 1) % L_INBOX;
        in->n--;
    }
    if (got)
        pthread_cond_broadcast(&l_room);
    pthread_mutex_unlock(&l_lock);
    /* Not sent (the next thread has finished): back where they were, in
     * slots that received nothing since got <= sent. */
    for (size_t k = sent; k < ns; k++)
        t->slot[t->vacant[k]] = t->send[k];
    t->sent += sent;
    t->received += got;
}

static void *larson_main(void *arg)
{
    struct lthread *t = arg;
    size_t nlog = 0;
    pthread_barrier_wait(&l_start);
    for (size_t j = 0; j < l_slots; j++) {
        size_t size = L_MIN + (size_t)((rng_next(&t->rng) >> 32) % (L_MAX - L_MIN + 1));
        unsigned char *p = malloc(size);
        t->ops++;
        t->allocs++;
        if (!p)
            fail("larson: out of memory allocating %zu bytes", size);
        touch(p, size, ltag(size), 0);
        t->slot[j].p = p;
        t->slot[j].size = size;
        t->mine[j] = 1;
    }
    for (uint64_t i = 0; i < t->steps; i++) {
        uint64_t x = rng_next(&t->rng);
        size_t j = (size_t)(x & (l_slots - 1));
        size_t size = L_MIN + (size_t)((x >> 32) % (L_MAX - L_MIN + 1));
        if (t->slot[j].p)
            l_free(t, j);
        unsigned char *p = malloc(size);
        t->ops++;
        t->allocs++;
        if (!p)
            fail("larson: out of memory allocating %zu bytes", size);
        touch(p, size, ltag(size), 0);
        t->slot[j].p = p;
        t->slot[j].size = size;
        t->mine[j] = 1;
        t->log[nlog++] = (uint32_t)j;
        if (nlog == l_period) {
            l_exchange(t, nlog);
            nlog = 0;
        }
    }
    pthread_mutex_lock(&l_lock);
    l_inbox[t->index].done = 1;
    pthread_cond_broadcast(&l_room);
    pthread_mutex_unlock(&l_lock);
    for (size_t j = 0; j < l_slots; j++)
        if (t->slot[j].p)
            l_free(t, j);
    return NULL;
}

static void w_larson(struct run *r)
{
    unsigned n = (unsigned)nthreads;
    uint64_t steps = scaled(smoke ? 3000 : 6000000);
    l_slots = smoke ? 512 : L_SLOTS;
    l_period = smoke ? 64 : L_PERIOD;
    l_inbox = calloc(n, sizeof *l_inbox);
    l_thread = calloc(n, sizeof *l_thread);
    if (!l_inbox || !l_thread)
        fail("larson: no memory for %u threads' state", n);
    int rc = pthread_barrier_init(&l_start, NULL, n + 1);
    if (rc)
        fail("larson: pthread_barrier_init: %s", strerror(rc));
    for (unsigned i = 0; i < n; i++) {
        l_thread[i].index = i;
        l_thread[i].steps = steps;
        l_thread[i].rng.s = 0x2545f4914f6cdd1dULL * (2 * i + 1) ^ 0x632be59bd9b4e019ULL;
    }
    for (unsigned i = 0; i < n; i++) {
        rc = pthread_create(&l_thread[i].tid, NULL, larson_main, &l_thread[i]);
        if (rc)
            fail("larson: pthread_create: %s", strerror(rc));
    }
    pthread_barrier_wait(&l_start);
    double t0 = now_ns();
    uint64_t ops = 0, allocs = 0, frees = 0, remote = 0, sent = 0, received = 0, waits = 0;
    for (unsigned i = 0; i < n; i++) {
        rc = pthread_join(l_thread[i].tid, NULL);
        if (rc)
            fail("larson: pthread_join: %s", strerror(rc));
        ops += l_thread[i].ops;
        allocs += l_thread[i].allocs;
        frees += l_thread[i].frees;
        remote += l_thread[i].remote_frees;
        sent += l_thread[i].sent;
        received += l_thread[i].received;
        waits += l_thread[i].waits;
    }
    /* Blocks still in an inbox: freed here, by a thread that did not
     * allocate them. */
    for (unsigned i = 0; i < n; i++) {
        struct inbox *in = &l_inbox[i];
        for (; in->n > 0; in->n--, in->head = (in->head + 1) % L_INBOX) {
            struct slot *s = &in->item[in->head];
            check_tag("larson", s->p, s->size, ltag(s->size));
            free(s->p);
            ops++;
            frees++;
            remote++;
        }
    }
    r->ns = now_ns() - t0;
    if (allocs != frees)
        fail("larson: %" PRIu64 " blocks allocated but %" PRIu64 " freed", allocs, frees);
    r->ops = ops;
    r->threads = (int)n;
    if (n == 1) /* a single thread hands its blocks to itself */
        remote = 0;
    extra(r, " steps_per_thread=%" PRIu64 " remote_free_pct=%.1f handed_off=%" PRIu64
             " taken=%" PRIu64 " waits=%" PRIu64,
          steps, frees ? 100.0 * (double)remote / (double)frees : 0.0, sent, received, waits);
    pthread_barrier_destroy(&l_start);
    free(l_thread);
    free(l_inbox);
}

/* ---------------------------------------------------------------- */
/* grow_shrink                                                          */

static void w_grow_shrink(struct run *r)
{
    const size_t target = smoke ? (size_t)4 << 20 : (size_t)256 << 20;
    const unsigned lo = 4, hi = 16;            /* 16 B .. 64 KiB - 1 */
    const uint64_t rounds = scaled(smoke ? 2 : 24);
    const size_t batch = smoke ? 64 : 256;
    /* The mean size is about 1.5 * (2^16 - 2^4) / 12 = 8190 B; the live
     * count stays near target / 8190, far below this. */
    const size_t cap = 4 * (target / 8190) + 4096;
    struct slot *b = calloc(cap, sizeof *b);
    struct slot *tmp = calloc(batch, sizeof *tmp);
    if (!b || !tmp)
        fail("grow_shrink: no memory for the bookkeeping");
    struct rng rng = {0xbf58476d1ce4e5b9ULL};
    uint64_t ops = 0;
    size_t n = 0, live = 0;
    long live_peak = 0;

    double t0 = now_ns();
    for (uint64_t round = 0; round < rounds; round++) {
        while (live < target) {
            if (n == cap)
                fail("grow_shrink: more than %zu blocks live", cap);
            size_t size = size_octaves(rng_next(&rng), lo, hi);
            unsigned char *p = malloc(size);
            ops++;
            if (!p)
                fail("grow_shrink: out of memory at %zu MiB live", live >> 20);
            touch(p, size, tag_of(0, size), 1);
            b[n].p = p;
            b[n].size = size;
            n++;
            live += size;
        }
        long rss = rss_kb();
        if (rss > live_peak)
            live_peak = rss;
        /* Free 90 %, chosen at random (a partial Fisher-Yates shuffle puts
         * the victims first), keep the rest at the front. */
        size_t nfree = n - n / 10;
        for (size_t i = 0; i < nfree; i++) {
            size_t j = i + (size_t)below(rng_next(&rng), n - i);
            struct slot s = b[j];
            b[j] = b[i];
            check_tag("grow_shrink", s.p, s.size, tag_of(0, s.size));
            free(s.p);
            ops++;
            live -= s.size;
        }
        memmove(b, b + nfree, (n - nfree) * sizeof *b);
        n -= nfree;
    }
    double t1 = now_ns();

    struct timespec nap = {0, 50 * 1000 * 1000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
        ;
    long after_sleep = rss_kb();

    double t2 = now_ns();
    for (size_t i = 0; i < batch; i++) {
        size_t size = size_octaves(rng_next(&rng), lo, hi);
        tmp[i].p = malloc(size);
        ops++;
        if (!tmp[i].p)
            fail("grow_shrink: out of memory in the final batch");
        tmp[i].size = size;
        touch(tmp[i].p, size, tag_of(1, size), 1);
    }
    for (size_t i = 0; i < batch; i++) {
        check_tag("grow_shrink", tmp[i].p, tmp[i].size, tag_of(1, tmp[i].size));
        free(tmp[i].p);
        ops++;
    }
    r->final_rss_kb = rss_kb();
    size_t kept = live;
    for (size_t i = 0; i < n; i++) {
        check_tag("grow_shrink", b[i].p, b[i].size, tag_of(0, b[i].size));
        free(b[i].p);
        ops++;
    }
    r->ns = (t1 - t0) + (now_ns() - t2);
    r->ops = ops;
    extra(r, " rounds=%" PRIu64 " target_kb=%zu live_peak_rss_kb=%ld after_sleep_rss_kb=%ld"
             " live_kb=%zu", rounds, target >> 10, live_peak, after_sleep, kept >> 10);
    free(tmp);
    free(b);
}

/* ---------------------------------------------------------------- */
/* realloc_chain                                                        */

#define RC_BUFS 64
#define RC_MAX ((size_t)64 << 10)

static inline unsigned char rc_pattern(size_t buf, size_t off)
{
    return (unsigned char)(off * 7u + (off >> 8) * 3u + buf * 29u + 5u);
}

static void rc_check(size_t buf, const unsigned char *p, size_t off)
{
    if (p[off] != rc_pattern(buf, off))
        fail("realloc_chain: buffer %zu lost its content at offset %zu (%#x, expected %#x)",
             buf, off, p[off], rc_pattern(buf, off));
}

static void rc_check_all(size_t buf, const unsigned char *p, size_t len)
{
    for (size_t off = 0; off < len; off++)
        if (p[off] != rc_pattern(buf, off))
            rc_check(buf, p, off);
}

static void w_realloc_chain(struct run *r)
{
    const size_t max = smoke ? (size_t)4 << 10 : RC_MAX;
    const size_t nbuf = smoke ? 8 : RC_BUFS;
    const uint64_t rounds = scaled(smoke ? 1 : 12);
    struct slot *b = calloc(nbuf, sizeof *b);
    if (!b)
        fail("realloc_chain: no memory for the bookkeeping");
    struct rng rng = {0x94d049bb133111ebULL};
    uint64_t ops = 0, moved = 0;

    double t0 = now_ns();
    for (size_t i = 0; i < nbuf; i++) {
        b[i].p = malloc(1);
        ops++;
        if (!b[i].p)
            fail("realloc_chain: out of memory");
        b[i].p[0] = rc_pattern(i, 0);
        b[i].size = 1;
    }
    for (uint64_t round = 0; round < rounds; round++) {
        /* Grow, round robin, until every buffer is at max. */
        for (size_t busy = nbuf; busy > 0;) {
            busy = 0;
            for (size_t i = 0; i < nbuf; i++) {
                size_t old = b[i].size;
                if (old >= max)
                    continue;
                size_t len = old + 16 + (size_t)(rng_next(&rng) % 49);
                if (len > max)
                    len = max;
                unsigned char *p = realloc(b[i].p, len);
                ops++;
                if (!p)
                    fail("realloc_chain: out of memory growing to %zu bytes", len);
                moved += p != b[i].p;
                rc_check(i, p, 0);
                rc_check(i, p, old - 1);
                for (size_t off = old; off < len; off++)
                    p[off] = rc_pattern(i, off);
                b[i].p = p;
                b[i].size = len;
                busy += len < max;
            }
        }
        for (size_t i = 0; i < nbuf; i++)
            rc_check_all(i, b[i].p, b[i].size);
        /* Shrink, round robin, until every buffer is at 1 byte. */
        for (size_t busy = nbuf; busy > 0;) {
            busy = 0;
            for (size_t i = 0; i < nbuf; i++) {
                size_t old = b[i].size;
                if (old <= 1)
                    continue;
                size_t step = 16 + (size_t)(rng_next(&rng) % 49);
                size_t len = old > step + 1 ? old - step : 1;
                unsigned char *p = realloc(b[i].p, len);
                ops++;
                if (!p)
                    fail("realloc_chain: realloc failed shrinking to %zu bytes", len);
                moved += p != b[i].p;
                rc_check(i, p, 0);
                rc_check(i, p, len - 1);
                b[i].p = p;
                b[i].size = len;
                busy += len > 1;
            }
        }
        for (size_t i = 0; i < nbuf; i++)
            rc_check_all(i, b[i].p, b[i].size);
    }
    for (size_t i = 0; i < nbuf; i++) {
        free(b[i].p);
        ops++;
    }
    r->ns = now_ns() - t0;
    r->ops = ops;
    extra(r, " buffers=%zu max_bytes=%zu rounds=%" PRIu64 " moved_pct=%.1f", nbuf, max, rounds,
          100.0 * (double)moved / (double)(ops - 2 * nbuf));
    free(b);
}

/* ---------------------------------------------------------------- */

struct workload {
    const char *name;
    void (*fn)(struct run *);
};

static const struct workload workloads[] = {
    {"random_small", w_random_small},
    {"random_large", w_random_large},
    {"larson", w_larson},
    {"grow_shrink", w_grow_shrink},
    {"realloc_chain", w_realloc_chain},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* The library malloc comes from: the first definition in lookup order,
 * which is the preloaded one if any. */
static const char *malloc_name(const char *label, const char **path)
{
    Dl_info info;
    void *fp = dlsym(RTLD_DEFAULT, "malloc");
    if (!fp) {
        void *(*m)(size_t) = malloc;
        memcpy(&fp, &m, sizeof fp);
    }
    *path = "unknown";
    if (dladdr(fp, &info) && info.dli_fname)
        *path = info.dli_fname;
    if (label)
        return label;
    if (strstr(*path, "slab-malloc") || strstr(*path, "slab_malloc"))
        return "libslab";
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

static void run_one(const struct workload *w, const char *mname)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.final_rss_kb = -1;
    r.threads = 1;
    double cpu0 = cpu_s();
    w->fn(&r);
    double cpu = cpu_s() - cpu0;
    long final = r.final_rss_kb >= 0 ? r.final_rss_kb : rss_kb();
    long peak = peak_rss_kb();
    printf("result workload=%s allocator=%s time_s=%.6f ops=%" PRIu64 " ns_per_op=%.3f"
           " peak_rss_kb=%ld final_rss_kb=%ld threads=%d cpu_s=%.3f scale=%g%s%s\n",
           w->name, mname, r.ns / 1e9, r.ops, r.ops ? r.ns / (double)r.ops : 0.0, peak, final,
           r.threads, cpu, scale, smoke ? " smoke=1" : "", r.extra);
    fflush(stdout);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s WORKLOAD|--all [--scale X] [--threads N] [--smoke] [--label NAME]\n"
            "workloads:",
            argv0);
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fputc('\n', stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *label = NULL, *which = NULL;
    int all = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--all"))
            all = 1;
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (argv[i][0] != '-' && !which)
            which = argv[i];
        else
            usage(argv[0]);
    }
    if (all == (which != NULL) || !(scale > 0 && scale <= 1e6) || nthreads < 1 ||
        nthreads > 256)
        usage(argv[0]);
    const struct workload *w = NULL;
    if (which) {
        for (size_t i = 0; i < NWORKLOADS; i++)
            if (!strcmp(which, workloads[i].name))
                w = &workloads[i];
        if (!w) {
            fprintf(stderr, "bench_malloc: unknown workload %s\n", which);
            usage(argv[0]);
        }
    }

    const char *mpath;
    const char *mname = malloc_name(label, &mpath);
    printf("# bench_malloc: malloc=%s from %s\n", mname, mpath);
#if defined(__clang__)
    printf("# compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("# compiler: gcc %s\n", __VERSION__);
#else
    printf("# compiler: unknown\n");
#endif
    fflush(stdout);

    if (w)
        run_one(w, mname);
    else
        for (size_t i = 0; i < NWORKLOADS; i++)
            run_one(&workloads[i], mname);
    return 0;
}
