/*
 * tcache.c - per-thread magazines: the lock-free layer above the slabs.
 *
 * Each thread has, per cache it touches, a slot (Linux's array_cache)
 * holding a loaded and a previous magazine.  slab_cache_alloc() pops
 * from the loaded magazine and slab_cache_free() pushes onto it without
 * a lock or an atomic read-modify-write (the fast paths are inline in
 * cache.c).  The slow paths here follow Bonwick & Adams:
 *
 *   alloc, loaded empty:  previous full?  swap them.  Otherwise trade the
 *                         empty previous for a full magazine from the
 *                         depot; if it has none, fill the loaded magazine
 *                         with a batch from the slab layer.
 *   free, loaded full:    previous empty?  swap them.  Otherwise trade the
 *                         full previous for an empty magazine from the
 *                         depot (allocated if need be); if none can be had,
 *                         free to the slab layer directly.
 *
 * So the previous magazine is always full or empty, and the depot only
 * ever sees full or empty magazines.
 *
 * Slots live in chunks of 64 (one per 64 cache ids), reached from the
 * thread's static TLS; a thread's state is on a global list so that
 * cache destruction, statistics, fork and thread exit can reach it.
 * Another thread reads or empties a slot only under tc_lock and only
 * while its owner does not use that cache (cache destruction requires
 * it, as in Linux; statistics read only the counters, with relaxed
 * atomics).  A thread's slots go back to the depots when it exits,
 * through a thread-specific-data destructor, whether or not it calls
 * libslab again.  A slow path takes the magazines out of its slot and
 * marks the slot busy until it puts them back, so that code it runs on
 * the same thread (reclaim callbacks, constructors, destructors) finds an
 * empty slot it must not use, the reap under memory pressure leaves the
 * slot alone, and the child of a fork() can tell a slot caught mid-change
 * rather than return a magazine twice.
 *
 * Freestanding builds have no threads to speak of: there, each CPU (the
 * host's cpu() hook) has the state a thread has here, and it never exits.
 */
#include "internal.h"

#include "annotate.h"


SLAB_LOCAL_DEFINE(struct tcache, slab__tc);

static slab_lock_t tc_lock = SLAB_LOCK_INIT;
static struct tcache *tc_list;
#if SLAB_HOSTED
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;
#endif
static struct slab_cache chunk_cache_storage;
static struct slab_cache *const chunk_cache = &chunk_cache_storage;

/* Cache ids: which slot of every thread a cache uses.  Under tc_lock. */
static uint64_t id_map[TC_CHUNKS];

#if SLAB_HOSTED
static void tcache_exit(void *arg);

static void tc_boot(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tcache_exit) == 0;
}
#endif

void tcache_boot(void)
{
    cache_create_internal(chunk_cache, "slab_tcache_chunk",
                                        TC_CHUNK * sizeof(struct mag_slot),
                                        _Alignof(struct mag_slot));
}

unsigned tcache_id_alloc(void)
{
    unsigned id = TC_NO_ID;
    slab_lock(&tc_lock);
    for (unsigned w = TC_RESERVED / 64; w < TC_CHUNKS; w++) {
        if (~id_map[w]) {
            unsigned bit = (unsigned)__builtin_ctzll(~id_map[w]);
            id_map[w] |= (uint64_t)1 << bit;
            id = w * 64 + bit;
            break;
        }
    }
    slab_unlock(&tc_lock);
    return id;
}

static void id_free_locked(unsigned id)
{
    if (id != TC_NO_ID)
        id_map[id / 64] &= ~((uint64_t)1 << (id % 64));
}

static void slot_reset(struct mag_slot *s)
{
    s->loaded = s->prev = &empty_magazine;
    s->rounds = s->size = 0;
    s->prev_full = 0;
}

static void counter_add(uint64_t *total, uint64_t *slot_counter)
{
    *total += __atomic_load_n(slot_counter, __ATOMIC_RELAXED);
    __atomic_store_n(slot_counter, 0, __ATOMIC_RELAXED);
}

/* Empty one slot into its cache's depot and fold its counters in.
 * Caller holds tc_lock; the slot's owner is not using the cache. */
static void slot_flush(struct mag_slot *s)
{
    struct slab_cache *c = s->cache;
    if (!c)
        return;
    struct magazine *loaded = s->loaded, *prev = s->prev;
    unsigned rounds = s->rounds, prev_rounds = s->prev_full ? prev->size : 0;
    slot_reset(s);
    depot_return(c, loaded, rounds);
    depot_return(c, prev, prev_rounds);
    struct depot *d = &c->depot;
    slab_lock(&d->lock);
    counter_add(&d->alloc_hit, &s->alloc_hit);
    counter_add(&d->alloc_miss, &s->alloc_miss);
    counter_add(&d->free_hit, &s->free_hit);
    counter_add(&d->free_miss, &s->free_miss);
    slab_unlock(&d->lock);
    __atomic_store_n(&s->cache, NULL, __ATOMIC_RELAXED);
}

static struct mag_slot *chunk_of(struct tcache *t, unsigned id)
{
    return __atomic_load_n(&t->chunk[id / TC_CHUNK], __ATOMIC_ACQUIRE);
}

/* Flush every slot of a thread and free its chunks.  Under tc_lock.  A
 * chunk is unhooked before its slots are flushed, so destructors run by
 * the flush that free objects find no slot and go to the slab layer.
 * With skip_busy (the child of fork), a slot that its vanished owner was
 * changing is left alone: what it held is lost to the child, but nothing
 * is returned twice. */
static void tcache_flush_locked(struct tcache *t, bool skip_busy)
{
    for (unsigned i = 0; i < TC_CHUNKS; i++) {
        struct mag_slot *chunk = chunk_of(t, i * TC_CHUNK);
        if (!chunk)
            continue;
        __atomic_store_n(&t->chunk[i], NULL, __ATOMIC_RELEASE);
        bool keep_chunk = false;
        for (unsigned k = 0; k < TC_CHUNK; k++) {
            if (skip_busy && chunk[k].busy)
                keep_chunk = true; /* may still be referenced: leave it */
            else
                slot_flush(&chunk[k]);
        }
        if (!keep_chunk && chunk != t->slots0)
            cache_free_batch(chunk_cache, (void *const *)&chunk, 1);
    }
}

#if SLAB_HOSTED
static void tcache_exit(void *arg)
{
    struct tcache *t = arg;
    /* Frees from destructors run by the flush, or by later TSD destructors
     * of this thread, go straight to the slab layer. */
    t->state = TC_DEAD;
    slab_lock(&tc_lock);
    tcache_flush_locked(t, false);
    dlist_del(tc_list, t);
    slab_unlock(&tc_lock);
}
#endif

/* Put t on the list of live thread (or CPU) states.  A thread's goes off
 * it when the thread exits; a CPU's stays. */
static bool tcache_register(struct tcache *t)
{
#if SLAB_HOSTED
    pthread_once(&tc_once, tc_boot);
    if (!tc_key_ok || pthread_setspecific(tc_key, t) != 0) {
        t->state = TC_DEAD;
        return false;
    }
#endif
    for (unsigned k = 0; k < TC_CHUNK; k++)
        slot_reset(&t->slots0[k]);
    slab_lock(&tc_lock);
    t->chunk[0] = t->slots0;
    dlist_push(tc_list, t);
    slab_unlock(&tc_lock);
    t->state = TC_LIVE;
    return true;
}

/* This thread's slot for c, created on first use; NULL if c runs without
 * magazines or memory for the slot cannot be had. */
static struct mag_slot *slot_get(struct slab_cache *c)
{
    struct tcache *t = &SLAB_LOCAL(slab__tc);
    if (c->id == TC_NO_ID || t->state == TC_DEAD)
        return NULL;
    if (t->state == TC_NEW && !tcache_register(t))
        return NULL;
    struct mag_slot *chunk = t->chunk[c->id / TC_CHUNK];
    if (!chunk) {
        if (cache_alloc_batch(chunk_cache, (void **)&chunk, 1) != 1)
            return NULL;
        for (unsigned k = 0; k < TC_CHUNK; k++) {
            memset(&chunk[k], 0, sizeof chunk[k]);
            slot_reset(&chunk[k]);
        }
        /* A reclaim callback run while the chunk was allocated may have
         * made one already (freeing objects of a cache in it): that one
         * stays, with what its slots hold. */
        slab_lock(&tc_lock); /* ordered against a concurrent flush */
        struct mag_slot *had = t->chunk[c->id / TC_CHUNK];
        if (!had)
            __atomic_store_n(&t->chunk[c->id / TC_CHUNK], chunk, __ATOMIC_RELEASE);
        slab_unlock(&tc_lock);
        if (had) {
            cache_free_batch(chunk_cache, (void *const *)&chunk, 1);
            chunk = had;
        }
    }
    struct mag_slot *s = &chunk[c->id % TC_CHUNK];
    if (s->cache != c)
        __atomic_store_n(&s->cache, c, __ATOMIC_RELAXED);
    return s;
}

static inline void *pop(struct mag_slot *s)
{
    s->rounds--;
    return s->loaded->objs[s->rounds];
}

static inline void push(struct mag_slot *s, void *obj)
{
    unsigned r = s->rounds;
    s->loaded->objs[r] = obj;
    __atomic_store_n(&s->rounds, r + 1, __ATOMIC_RELEASE); /* see slab_cache_free */
}

/* Make m the loaded magazine, holding `rounds` objects. */
static inline void load(struct mag_slot *s, struct magazine *m, unsigned rounds)
{
    s->loaded = m;
    s->size = m->size;
    s->rounds = rounds;
}

/* Exchange loaded and previous: the previous one is full (alloc) or empty
 * (free), and the loaded one becomes the opposite. */
static inline void swap(struct mag_slot *s)
{
    struct magazine *old = s->loaded;
    bool old_full = s->rounds == s->size;
    load(s, s->prev, s->prev_full ? s->prev->size : 0);
    s->prev = old;
    s->prev_full = old_full && old != &empty_magazine;
}

/* Straight to the slab layer.  Caches without magazines count there; a
 * cache with magazines counts what bypassed them (a slot could not be had). */
static void *alloc_direct(struct slab_cache *c)
{
    void *obj;
    if (cache_alloc_batch(c, &obj, 1) != 1)
        return NULL;
    if (c->id != TC_NO_ID)
        __atomic_fetch_add(&c->depot.direct_allocs, 1, __ATOMIC_RELAXED);
    return obj;
}

/*
 * A slow path takes the slot's magazines out of it and works on its own
 * copy `w`, leaving the slot empty and marked busy until it puts them
 * back.  What it calls may run the program's code on this thread: a
 * reclaim callback when memory is short (growing the cache, allocating a
 * magazine), a constructor or destructor.  That code may allocate and
 * free objects of the same cache: the empty slot sends them to the slow
 * path, which finds the slot busy and goes to the slab layer; and the
 * reap that follows the callbacks leaves a busy slot alone.  So no one
 * but the slow path touches its magazines, and no one writes into the
 * one it is filling.  fork() may copy the process at any moment: the
 * child leaves a busy slot alone (what the slow path held is lost to the
 * child, nothing is returned twice).
 */
static inline void slot_take(struct mag_slot *s, struct mag_slot *w)
{
    __atomic_store_n(&s->busy, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    w->loaded = s->loaded;
    w->rounds = s->rounds;
    w->size = s->size;
    w->prev = s->prev;
    w->prev_full = s->prev_full;
    w->alloc_hit = w->alloc_miss = w->free_hit = w->free_miss = 0;
    slot_reset(s);
}

static inline void counter_add_n(uint64_t *c, uint64_t n)
{
    if (n)
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Put the magazines back (a shrink from a callback may have flushed the
 * empty slot and unhooked it from c meanwhile). */
static inline void slot_put(struct mag_slot *s, const struct mag_slot *w, struct slab_cache *c)
{
    s->loaded = w->loaded;
    s->size = w->size;
    s->prev = w->prev;
    s->prev_full = w->prev_full;
    s->rounds = w->rounds;
    counter_add_n(&s->alloc_hit, w->alloc_hit);
    counter_add_n(&s->alloc_miss, w->alloc_miss);
    counter_add_n(&s->free_hit, w->free_hit);
    counter_add_n(&s->free_miss, w->free_miss);
    if (s->cache != c)
        __atomic_store_n(&s->cache, c, __ATOMIC_RELAXED);
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

static void *alloc_slow(struct slab_cache *c, struct mag_slot *s);
static void free_slow(struct slab_cache *c, struct mag_slot *s, void *obj);

void *tcache_alloc_slow(struct slab_cache *c)
{
    struct mag_slot *s = slot_get(c);
    if (!s || s->busy) /* busy: called from inside this slot's slow path */
        return annotate_cache_alloc(c, alloc_direct(c));
    reap_tick();
    struct mag_slot w;
    slot_take(s, &w);
    void *obj = alloc_slow(c, &w);
    slot_put(s, &w, c);
    return annotate_cache_alloc(c, obj);
}

void tcache_free_slow(struct slab_cache *c, void *obj)
{
    annotate_cache_free(c, obj);
    struct mag_slot *s = slot_get(c);
    if (!s || s->busy) {
        if (cache_free_batch(c, &obj, 1) && c->id != TC_NO_ID)
            __atomic_fetch_add(&c->depot.direct_frees, 1, __ATOMIC_RELAXED);
        return;
    }
    reap_tick();
    struct mag_slot w;
    slot_take(s, &w);
    free_slow(c, &w, obj);
    slot_put(s, &w, c);
}

static void *alloc_slow(struct slab_cache *c, struct mag_slot *s)
{
    if (s->rounds) { /* the slot was only just made */
        counter_inc(&s->alloc_hit);
        return pop(s);
    }
    if (s->prev_full) {
        swap(s);
        counter_inc(&s->alloc_hit);
        return pop(s);
    }
    /* Both empty: trade the previous one for a full magazine. */
    struct magazine *full = depot_exchange_full(c, s->prev);
    if (full) {
        s->prev = s->loaded;
        s->prev_full = 0;
        load(s, full, full->size);
        counter_inc(&s->alloc_hit);
        return pop(s);
    }
    /* The depot is dry: fill the loaded magazine from the slab layer. */
    if (s->loaded == &empty_magazine) {
        struct magazine *m = depot_new_empty(c);
        if (!m)
            return alloc_direct(c);
        load(s, m, 0);
    }
    size_t want = s->size / 2 + 1; /* batchcount */
    size_t got = cache_alloc_batch(c, s->loaded->objs, want);
    if (got == 0)
        return NULL; /* errno set by the slab layer */
    s->rounds = (uint32_t)got;
    counter_inc(&s->alloc_miss);
    return pop(s);
}

static void free_slow(struct slab_cache *c, struct mag_slot *s, void *obj)
{
    if (s->rounds < s->size) { /* the slot was only just made */
        push(s, obj);
        counter_inc(&s->free_hit);
        return;
    }
    if (s->prev != &empty_magazine && !s->prev_full) {
        swap(s);
        push(s, obj);
        counter_inc(&s->free_hit);
        return;
    }
    /* Both full: trade the previous one for an empty magazine. */
    struct magazine *empty = depot_exchange_empty(c, s->prev_full ? s->prev : &empty_magazine);
    if (!empty) {
        if (cache_free_batch(c, &obj, 1))
            counter_inc(&s->free_miss);
        return;
    }
    s->prev = s->loaded;
    s->prev_full = s->loaded != &empty_magazine;
    load(s, empty, 0);
    push(s, obj);
    counter_inc(&s->free_hit);
}

/* Empty every thread's slot for c into the depot (cache destruction: no
 * thread may be using c). */
void tcache_flush_cache(struct slab_cache *c)
{
    if (c->id == TC_NO_ID)
        return;
    slab_lock(&tc_lock);
    for (struct tcache *t = tc_list; t; t = t->next) {
        struct mag_slot *chunk = chunk_of(t, c->id);
        if (chunk && __atomic_load_n(&chunk[c->id % TC_CHUNK].cache, __ATOMIC_RELAXED) == c)
            slot_flush(&chunk[c->id % TC_CHUNK]);
    }
    slab_unlock(&tc_lock);
}

/* Empty the calling thread's slot for c (shrink, reap of this thread). */
void tcache_flush_self(struct slab_cache *c)
{
    struct tcache *t = &SLAB_LOCAL(slab__tc);
    if (c->id == TC_NO_ID || t->state != TC_LIVE)
        return;
    slab_lock(&tc_lock);
    struct mag_slot *chunk = t->chunk[c->id / TC_CHUNK];
    if (chunk && chunk[c->id % TC_CHUNK].cache == c)
        slot_flush(&chunk[c->id % TC_CHUNK]);
    slab_unlock(&tc_lock);
}

/* Memory is short: empty every slot of the calling thread into the depots,
 * but for a slot a slow path of this thread is changing right now. */
void tcache_flush_self_idle(void)
{
    struct tcache *t = &SLAB_LOCAL(slab__tc);
    if (t->state != TC_LIVE)
        return;
    slab_lock(&tc_lock);
    for (unsigned i = 0; i < TC_CHUNKS; i++) {
        struct mag_slot *chunk = t->chunk[i];
        for (unsigned k = 0; chunk && k < TC_CHUNK; k++)
            if (!chunk[k].busy)
                slot_flush(&chunk[k]);
    }
    slab_unlock(&tc_lock);
}

void tcache_id_release(struct slab_cache *c)
{
    slab_lock(&tc_lock);
    id_free_locked(c->id);
    slab_unlock(&tc_lock);
    c->id = TC_NO_ID;
}

/* Sum the live threads' counters for c into *m (their magazines are not
 * read: only their owners may touch them). */
void tcache_stats(struct slab_cache *c, struct mag_stats *m)
{
    memset(m, 0, sizeof *m);
    if (c->id == TC_NO_ID)
        return;
    slab_lock(&tc_lock);
    for (struct tcache *t = tc_list; t; t = t->next) {
        struct mag_slot *chunk = chunk_of(t, c->id);
        if (!chunk)
            continue;
        struct mag_slot *s = &chunk[c->id % TC_CHUNK];
        if (__atomic_load_n(&s->cache, __ATOMIC_RELAXED) != c)
            continue;
        m->alloc_hit += __atomic_load_n(&s->alloc_hit, __ATOMIC_RELAXED);
        m->alloc_miss += __atomic_load_n(&s->alloc_miss, __ATOMIC_RELAXED);
        m->free_hit += __atomic_load_n(&s->free_hit, __ATOMIC_RELAXED);
        m->free_miss += __atomic_load_n(&s->free_miss, __ATOMIC_RELAXED);
    }
    slab_unlock(&tc_lock);
}

/* ---- fork: the child keeps only the forking thread ---- */

void tcache_fork_prepare(void) { slab_lock(&tc_lock); }
void tcache_fork_parent(void) { slab_unlock(&tc_lock); }

void tcache_fork_child(void)
{
    /* The other threads are gone: their magazines go back to the depots. */
    slab_lock(&tc_lock);
    struct tcache *t = tc_list;
    while (t) {
        struct tcache *next = t->next;
        if (t != &SLAB_LOCAL(slab__tc)) {
            tcache_flush_locked(t, true);
            dlist_del(tc_list, t);
        }
        t = next;
    }
    slab_unlock(&tc_lock);
}
