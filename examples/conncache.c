/*
 * examples/conncache.c - owns the "connection cache" example: a cache of
 * constructed connection records (mutex, fd, counters, 512-byte buffer)
 * opened and closed in waves over a steady population of connections, then
 * the cache's figures from slab_cache_stats() and the buddy allocator's
 * free lists from slab_buddy_info(), showing that constructors run once per
 * object and not once per allocation.
 *
 * Build with the project (target `conncache`) and run ./conncache
 * [rounds [connections-per-wave]].  Exit status 0 means every check held.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slab.h>

#define CONN_BUF_SIZE 512

/* One connection.  Its constructed state is: mutex initialised, fd -1,
 * counters zero, buffer cleared.  Code that closes a connection puts it
 * back in that state before freeing it, so the next user gets it ready
 * made (Bonwick's rule for object caches). */
struct conn {
    pthread_mutex_t lock;
    int fd;
    uint32_t generation; /* how many times this record has been opened */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t requests;
    size_t buf_used;
    char buf[CONN_BUF_SIZE];
};

struct ctor_counts {
    uint64_t ctor_calls;
    uint64_t dtor_calls;
    uint64_t ctor_errors;
};

static int conn_ctor(void *obj, void *arg)
{
    struct conn *c = obj;
    struct ctor_counts *counts = arg;

    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        counts->ctor_errors++;
        return -1;
    }
    c->fd = -1;
    c->generation = 0;
    c->bytes_in = c->bytes_out = c->requests = 0;
    c->buf_used = 0;
    memset(c->buf, 0, sizeof c->buf);
    counts->ctor_calls++;
    return 0;
}

static void conn_dtor(void *obj, void *arg)
{
    struct conn *c = obj;
    struct ctor_counts *counts = arg;

    pthread_mutex_destroy(&c->lock);
    counts->dtor_calls++;
}

static int failures;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "conncache: check failed: %s: ", #cond);          \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* "Open" a connection: take a constructed record from the cache. */
static struct conn *conn_open(slab_cache_t *cache, int fd)
{
    struct conn *c = slab_cache_alloc(cache);
    if (!c)
        return NULL;
    /* A record comes back constructed: no init needed, only a check. */
    if (c->fd != -1 || c->buf_used != 0 || c->requests != 0) {
        fprintf(stderr, "conncache: record %p not in constructed state\n",
                (void *)c);
        failures++;
    }
    c->fd = fd;
    c->generation++;
    return c;
}

/* Serve one request on a connection: lock, write into the buffer. */
static void conn_serve(struct conn *c, unsigned request)
{
    pthread_mutex_lock(&c->lock);
    int n = snprintf(c->buf + c->buf_used, sizeof c->buf - c->buf_used,
                     "fd=%d gen=%" PRIu32 " req=%u;", c->fd, c->generation,
                     request);
    if (n > 0 && (size_t)n < sizeof c->buf - c->buf_used)
        c->buf_used += (size_t)n;
    c->bytes_in += 64;
    c->bytes_out += (uint64_t)(n > 0 ? n : 0);
    c->requests++;
    pthread_mutex_unlock(&c->lock);
}

/* "Close" a connection: put the record back in its constructed state (only
 * the bytes written need clearing) and return it to the cache. */
static void conn_close(slab_cache_t *cache, struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    memset(c->buf, 0, c->buf_used);
    c->buf_used = 0;
    c->fd = -1;
    c->bytes_in = c->bytes_out = c->requests = 0;
    pthread_mutex_unlock(&c->lock);
    slab_cache_free(cache, c);
}

static void print_stats(const slab_cache_stats_t *st,
                        const struct ctor_counts *counts)
{
    printf("cache \"%s\"\n", st->name ? st->name : "?");
    printf("  object size          %zu bytes (stride %zu, align %zu)\n",
           st->object_size, st->stride, st->align);
    printf("  objects per slab     %zu\n", st->objs_per_slab);
    printf("  pages per slab       %zu\n", st->pages_per_slab);
    printf("  colours              %zu\n", st->colours);
    printf("  active/total objs    %zu / %zu\n", st->active_objs,
           st->total_objs);
    printf("  active/total slabs   %zu / %zu  (partial %zu, full %zu, free %zu)\n",
           st->active_slabs, st->total_slabs, st->partial_slabs,
           st->full_slabs, st->free_slabs);
    printf("  allocations          %" PRIu64 "\n", st->allocations);
    printf("  frees                %" PRIu64 "\n", st->frees);
    printf("  high mark            %zu objects\n", st->high_mark);
    printf("  slabs grown          %" PRIu64 "\n", st->grown);
    printf("  slabs reaped         %" PRIu64 "\n", st->reaped);
    printf("  errors               %" PRIu64 "\n", st->errors);
    printf("  magazines            %zu rounds, batch %zu; alloc hit/miss %" PRIu64 "/%" PRIu64
           ", free hit/miss %" PRIu64 "/%" PRIu64 "\n",
           st->magazine_size, st->batchcount, st->alloc_hit, st->alloc_miss, st->free_hit,
           st->free_miss);
    printf("  depot                %zu full, %zu empty magazines; %" PRIu64
           " exchanges; %zu objects cached in magazines\n",
           st->depot_full, st->depot_empty, st->depot_exchanges, st->magazine_objs);
    printf("  constructor calls    %" PRIu64 "\n", counts->ctor_calls);
    printf("  destructor calls     %" PRIu64 "\n", counts->dtor_calls);
    if (counts->ctor_calls > 0)
        printf("  allocations per constructor call  %.1f\n",
               (double)st->allocations / (double)counts->ctor_calls);
}

static void print_buddyinfo(const char *when)
{
    slab_buddy_info_t bi;
    memset(&bi, 0, sizeof bi);
    slab_buddy_info(&bi);

    printf("buddy allocator %s (free blocks per order, as /proc/buddyinfo)\n",
           when);
    printf("%-22s", "");
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        printf(" %6u", o);
    printf("\n");
    printf("%-22s", "Node 0, zone  libslab");
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        printf(" %6zu", bi.nr_free[o]);
    printf("\n");
    printf("  arenas %zu, free pages %zu of %zu, mapped %zu KiB\n", bi.arenas,
           bi.free_pages, bi.total_pages, bi.mapped_bytes / 1024);
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static size_t rng_below(size_t n)
{
    /* xorshift64*, fixed seed: every run closes the same connections. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (size_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 11) % n;
}

/* Open `n` connections, appending them to live[]. */
static size_t open_wave(slab_cache_t *cache, struct conn **live, size_t nlive,
                        size_t n, int *next_fd, uint64_t *opened)
{
    for (size_t i = 0; i < n; i++) {
        struct conn *c = conn_open(cache, (*next_fd)++);
        if (!c) {
            fprintf(stderr, "conncache: slab_cache_alloc: %s\n",
                    strerror(errno));
            failures++;
            break;
        }
        live[nlive++] = c;
        (*opened)++;
    }
    return nlive;
}

/* Close `n` connections picked at random among the live ones. */
static size_t close_random(slab_cache_t *cache, struct conn **live,
                           size_t nlive, size_t n)
{
    while (n-- > 0 && nlive > 0) {
        size_t j = rng_below(nlive);
        conn_close(cache, live[j]);
        live[j] = live[--nlive];
    }
    return nlive;
}

int main(int argc, char **argv)
{
    unsigned rounds = 12;
    size_t wave = 10000;
    if (argc > 1)
        rounds = (unsigned)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        wave = (size_t)strtoul(argv[2], NULL, 10);
    if (rounds == 0 || wave == 0 || wave > 10000000) {
        fprintf(stderr, "usage: %s [rounds [connections-per-wave]]\n", argv[0]);
        return 2;
    }

    struct ctor_counts counts = {0, 0, 0};
    slab_cache_t *cache =
        slab_cache_create("conn", sizeof(struct conn), _Alignof(struct conn),
                          SLAB_HWCACHE_ALIGN, conn_ctor, conn_dtor, &counts);
    if (!cache) {
        fprintf(stderr, "conncache: slab_cache_create: %s\n", strerror(errno));
        return 1;
    }

    /* A server holds `wave` established connections.  Each round a wave of
     * `wave` new ones arrives, everything open is served, and then `wave`
     * connections, picked at random, close again. */
    struct conn **live = calloc(2 * wave, sizeof *live);
    if (!live) {
        fprintf(stderr, "conncache: out of memory\n");
        slab_cache_destroy(cache);
        return 1;
    }
    size_t nlive = 0;
    int next_fd = 3;
    uint64_t opened = 0, served = 0;

    nlive = open_wave(cache, live, nlive, wave, &next_fd, &opened);
    for (unsigned r = 0; r < rounds; r++) {
        nlive = open_wave(cache, live, nlive, wave, &next_fd, &opened);
        for (unsigned req = 0; req < 2; req++)
            for (size_t i = 0; i < nlive; i++) {
                conn_serve(live[i], req);
                served++;
            }
        nlive = close_random(cache, live, nlive, wave);
    }

    printf("libslab conncache: %zu established connections, %u waves of %zu"
           " opening and %zu closing; %" PRIu64 " opened, %" PRIu64
           " requests served\n\n",
           wave, rounds, wave, wave, opened, served);

    slab_cache_stats_t live_st;
    memset(&live_st, 0, sizeof live_st);
    if (slab_cache_stats(cache, &live_st) != 0) {
        fprintf(stderr, "conncache: slab_cache_stats: %s\n", strerror(errno));
        failures++;
    }
    printf("with %zu connections open:\n", nlive);
    print_stats(&live_st, &counts);
    printf("\n");
    CHECK(live_st.active_objs == nlive, "active objects %zu != open %zu",
          live_st.active_objs, nlive);

    /* Shut down: every connection closes. */
    nlive = close_random(cache, live, nlive, nlive);
    free(live);

    slab_cache_stats_t st;
    memset(&st, 0, sizeof st);
    if (slab_cache_stats(cache, &st) != 0) {
        fprintf(stderr, "conncache: slab_cache_stats: %s\n", strerror(errno));
        failures++;
    }
    printf("after closing every connection: active objs %zu, total objs %zu,"
           " slabs %zu (free %zu), grown %" PRIu64 ", reaped %" PRIu64
           ", allocations %" PRIu64 ", frees %" PRIu64
           ", constructor calls %" PRIu64 ", destructor calls %" PRIu64 "\n\n",
           st.active_objs, st.total_objs, st.total_slabs, st.free_slabs,
           st.grown, st.reaped, st.allocations, st.frees, counts.ctor_calls,
           counts.dtor_calls);
    print_buddyinfo("before shrink");
    printf("\n");

    CHECK(st.allocations == opened, "allocations %" PRIu64 " != opened %" PRIu64,
          st.allocations, opened);
    CHECK(st.frees == opened, "frees %" PRIu64 " != opened %" PRIu64, st.frees,
          opened);
    CHECK(st.active_objs == 0, "%zu objects still active", st.active_objs);
    CHECK(st.high_mark >= wave, "high mark %zu below one wave (%zu)",
          st.high_mark, wave);
#ifdef SLAB_BACKEND_SLOB
    /* SLOB constructs an object on every allocation (and destructs it on
     * every free): its memory is shared with every other cache. */
    CHECK(counts.ctor_calls == st.allocations,
          "constructor ran %" PRIu64 " times for %" PRIu64 " allocations",
          counts.ctor_calls, st.allocations);
    CHECK(counts.ctor_errors == 0, "%" PRIu64 " constructor errors",
          counts.ctor_errors);
#else
    /* Objects are constructed when their slab is made (or, at the latest,
     * on first use) and never again while the slab lives. */
    CHECK(counts.ctor_calls >= st.high_mark &&
              counts.ctor_calls <= st.grown * (uint64_t)st.objs_per_slab,
          "constructor ran %" PRIu64 " times for %" PRIu64
          " slabs of %zu objects (high mark %zu)",
          counts.ctor_calls, st.grown, st.objs_per_slab, st.high_mark);
    CHECK(counts.ctor_errors == 0, "%" PRIu64 " constructor errors",
          counts.ctor_errors);
    if (rounds >= 4)
        CHECK(2 * counts.ctor_calls < st.allocations,
              "constructor calls (%" PRIu64 ") not well below allocations (%" PRIu64 ")",
              counts.ctor_calls, st.allocations);
#endif

    size_t released = slab_cache_shrink(cache);
    printf("slab_cache_shrink released %zu slab%s\n", released,
           released == 1 ? "" : "s");
    slab_cache_stats_t after;
    memset(&after, 0, sizeof after);
    if (slab_cache_stats(cache, &after) != 0) {
        fprintf(stderr, "conncache: slab_cache_stats: %s\n", strerror(errno));
        failures++;
    }
    printf("  after shrink: total slabs %zu, total objs %zu, grown %" PRIu64
           ", reaped %" PRIu64 ", destructor calls %" PRIu64 "\n",
           after.total_slabs, after.total_objs, after.grown, after.reaped,
           counts.dtor_calls);
    CHECK(released == st.total_slabs, "shrink released %zu of %zu slabs",
          released, st.total_slabs);
    CHECK(after.total_slabs == 0 && after.total_objs == 0,
          "%zu slabs / %zu objects left after shrink", after.total_slabs,
          after.total_objs);
    CHECK(after.reaped == after.grown, "reaped %" PRIu64 " != grown %" PRIu64,
          after.reaped, after.grown);
    CHECK(counts.dtor_calls == counts.ctor_calls,
          "destructor calls %" PRIu64 " != constructor calls %" PRIu64,
          counts.dtor_calls, counts.ctor_calls);
    printf("\n");
    print_buddyinfo("after shrink");
    printf("\n");

    size_t problems = slab_verify();
    CHECK(problems == 0, "slab_verify found %zu problems", problems);

    int rc = slab_cache_destroy(cache);
    CHECK(rc == 0, "slab_cache_destroy returned %d (%s)", rc, strerror(errno));
    printf("slab_cache_destroy: %s\n", rc == 0 ? "ok" : "FAILED");

    if (failures) {
        printf("conncache: %d check%s FAILED\n", failures,
               failures == 1 ? "" : "s");
        return 1;
    }
    printf("conncache: all checks passed (%" PRIu64 " allocations, %" PRIu64
           " constructor calls)\n",
           st.allocations, counts.ctor_calls);
    return 0;
}
