/*
 * reap.c - giving memory back: working-set reaping and memory pressure.
 *
 * slab_reap() runs the three steps top-down: each depot frees the
 * magazines it did not need during the last interval (its working set,
 * Bonwick & Adams), which returns their objects to the slab layer; each
 * cache then gives back free slabs (all of them if it allocated nothing
 * from its slabs since the last reap, else those beyond its keep limit);
 * and the buddy allocator decommits its dirty free blocks, so the
 * resident set falls.
 *
 * No thread is started for this: reap_tick(), called on the magazine
 * layer's slow paths, runs slab_reap() once per interval (one thread
 * wins the interval with a compare-and-swap).  When the page source
 * fails, reap_for_memory() calls the caches' reclaim callbacks, empties
 * the calling thread's magazines and reaps everything before the
 * allocation is retried.  reap_tick() is also where the statistics
 * publisher of SLAB_STATS_LIVE starts (live.c): a slow path, no lock held.
 */
#include "internal.h"

#if SLAB_HOSTED
#include <time.h>
#endif

#define TICKS_PER_CLOCK_READ 64

static uint64_t next_reap_ns;
static SLAB_LOCAL_DEFINE(unsigned, tick);
static SLAB_LOCAL_DEFINE(bool, reclaiming);

static void reap_one(struct slab_cache *c, void *arg)
{
    size_t *released = arg;
    *released += depot_reap(c, false);
    *released += cache_reap_slabs(c, false);
}

size_t slab_reap(void)
{
    size_t released = 0;
    cache_for_each(reap_one, &released);
    buddy_reap(0);
    return released;
}

uint64_t clock_now_ns(void)
{
#if SLAB_HOSTED
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return host_clock_ns();
#endif
}

void reap_tick(void)
{
    if (!SLAB_LOCAL(reclaiming))
        live_tick(); /* SLAB_STATS_LIVE: the publisher starts here */
    if (++SLAB_LOCAL(tick) % TICKS_PER_CLOCK_READ || SLAB_LOCAL(reclaiming))
        return;
    unsigned interval = options_reap_interval_ms();
    if (!interval)
        return;
    uint64_t now = clock_now_ns();
    uint64_t next = __atomic_load_n(&next_reap_ns, __ATOMIC_RELAXED);
    if (now < next)
        return;
    uint64_t later = now + (uint64_t)interval * 1000000u;
    if (!__atomic_compare_exchange_n(&next_reap_ns, &next, later, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return; /* another thread reaps this interval */
    if (next != 0) /* the first tick only starts the clock */
        slab_reap();
}

/* Under pressure, every magazine in the depots and every free slab goes
 * back (other threads' own magazines stay: only their owners may touch
 * them; the calling thread's go to the depots first). */
static void reap_all(struct slab_cache *c, void *arg)
{
    size_t *released = arg;
    *released += depot_reap(c, true);
    *released += cache_reap_slabs(c, true);
}

struct reclaim_call {
    void (*fn)(void *arg);
    void *arg;
};

#define RECLAIM_BATCH 32

struct reclaim_batch {
    size_t skip, seen, n;
    struct reclaim_call calls[RECLAIM_BATCH];
};

static void collect_reclaim(struct slab_cache *c, void *arg)
{
    struct reclaim_batch *b = arg;
    /* fn and arg change together under the cache lock */
    slab_lock(&c->lock);
    struct reclaim_call call = {c->reclaim, c->reclaim_arg};
    slab_unlock(&c->lock);
    if (!call.fn)
        return;
    if (b->seen++ >= b->skip && b->n < RECLAIM_BATCH)
        b->calls[b->n++] = call;
}

bool reap_for_memory(void)
{
    if (SLAB_LOCAL(reclaiming))
        return false; /* a reclaim callback ran out of memory itself */
    SLAB_LOCAL(reclaiming) = true;
    /* The callbacks run with no libslab lock held, so they may free and
     * allocate; they are gathered a batch at a time. */
    struct reclaim_batch b = {0};
    do {
        b.seen = b.n = 0;
        cache_for_each(collect_reclaim, &b);
        for (size_t i = 0; i < b.n; i++)
            b.calls[i].fn(b.calls[i].arg);
        b.skip += b.n;
    } while (b.n == RECLAIM_BATCH);
    reap_everything();
    SLAB_LOCAL(reclaiming) = false;
    return true;
}

size_t reap_everything(void)
{
    tcache_flush_self_idle();
    size_t released = 0;
    cache_for_each(reap_all, &released);
    return released + buddy_reap(0);
}
