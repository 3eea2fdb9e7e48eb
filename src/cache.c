/*
 * cache.c - object caches: slab lists, growth, release and the API.
 *
 * A cache holds slabs of one layout on three lists: partial (some objects
 * free), full (none free) and free (all free).  Allocation takes from a
 * partial slab first, then a free one, and only then grows the cache by
 * one slab, with the cache lock dropped while pages are found and
 * constructors run.  A free that empties a slab moves it to the free
 * list; beyond keep_free free slabs, slabs go back to the buddy
 * allocator (destructors run) outside the lock.
 *
 * Above the slabs sits the magazine layer (tcache.c, depot.c): the
 * inline fast paths of slab_cache_alloc()/slab_cache_free() below pop and
 * push a per-thread magazine; everything else reaches the slab layer in
 * batches.  Caches with debug flags, and caches created while magazines
 * are off, have no per-thread slot and check every free here.
 *
 * Invariants, under c->lock (checked by slab_verify):
 *   - a slab is on the list its inuse count says: partial 0 < inuse < objs,
 *     full inuse == objs, free inuse == 0;
 *   - active == sum of inuse, total == objs * number of slabs;
 *   - every object handed out is the start of an object whose bit is 0.
 *
 * The allocation and free paths work on batches (cache_alloc_batch,
 * cache_free_batch) so that a per-thread magazine layer can sit on top and
 * refill or drain in one lock round trip.  Cache descriptors are
 * themselves objects of a cache (cache_cache), as in Bonwick's design:
 * libslab never calls malloc.
 */
#include "internal.h"

#include "annotate.h"

#if SLAB_HOSTED
#include <time.h>
#endif

/* Free slabs a cache keeps before giving pages back: at least two, and as
 * many as fit in 64 KiB, so that small slabs do not churn constructors. */
#define KEEP_FREE_MIN 2
#define KEEP_FREE_PAGES 16

static struct slab_cache cache_cache = {
    .id = TC_NO_ID,
    .lock = SLAB_LOCK_INIT,
    .depot = {.lock = SLAB_LOCK_INIT},
    .name = "slab_cache",
    .size = sizeof(struct slab_cache),
    .align = SLAB_CACHE_LINE,
    .flags = CACHE_INTERNAL,
    .keep_free = 0, /* with every cache destroyed, every page goes back */
};
static slab_once_t boot_once = SLAB_ONCE_INIT;

/* libslab's own caches in static storage (made at boot, never
 * destroyed): they are caches too, though not objects of cache_cache. */
#define MAX_INTERNAL 16
static struct slab_cache *internal_caches[MAX_INTERNAL];
static unsigned nr_internal;

static void boot(void)
{
    annotate_boot();
    slab_layout_compute(&cache_cache.layout, cache_cache.size, cache_cache.align);
    caches_link(&cache_cache);
    depot_boot();
    tcache_boot();
    huge_boot();
    fork_boot();
}

/* Boot once; then register the exit report, outside pthread_once: atexit()
 * may allocate, and so come back here through malloc. */
static void boot_all(void)
{
    slab_once(&boot_once, boot);
    stats_boot();
    live_boot();
}

void cache_boot(void)
{
    boot_all();
}

/* ---- moving slabs between lists ---- */

static inline void slab_move(struct slab_cache *c, struct slab_page *s, unsigned to)
{
    if (s->list == to)
        return;
    page_list_del(&c->lists[s->list], s);
    s->list = (uint8_t)to;
    page_list_push(&c->lists[to], s);
}

static inline unsigned list_for(const struct slab_cache *c, const struct slab_page *s)
{
    if (s->inuse == 0)
        return SL_FREE;
    return s->inuse == c->layout.objs ? SL_FULL : SL_PARTIAL;
}

/* Take free slabs off the free list beyond `keep`, chaining them through
 * ->next for slab_release_chain() once the lock is dropped. */
static struct slab_page *trim_free_locked(struct slab_cache *c, size_t keep)
{
    struct slab_page *chain = NULL;
    while (c->lists[SL_FREE].count > keep) {
        struct slab_page *s = c->lists[SL_FREE].first;
        page_list_del(&c->lists[SL_FREE], s);
        s->next = chain;
        chain = s;
        c->reaped++;
        c->total -= c->layout.objs;
    }
    return chain;
}

static size_t release_chain(struct slab_cache *c, struct slab_page *chain)
{
    size_t n = 0;
    while (chain) {
        struct slab_page *next = chain->next;
        slab_release(c, chain);
        chain = next;
        n++;
    }
    return n;
}

/* ---- the slab layer's allocation and free, in batches ---- */

size_t cache_alloc_batch(struct slab_cache *c, void **out, size_t n)
{
    size_t got = 0;
    struct debug_call dc;
    bool debug = unlikely(c->flags & SLAB_DEBUG_FLAGS);
    if (debug)
        debug_begin(c, &dc, "slab_cache_alloc");
    slab_lock(&c->lock);
    while (got < n) {
        struct slab_page *s = c->lists[SL_PARTIAL].first;
        if (!s)
            s = c->lists[SL_FREE].first;
        if (!s) {
            unsigned colour = c->colour_next;
            c->colour_next = (colour + 1) % c->layout.colours;
            slab_unlock(&c->lock);
            bool ctor_failed;
            int saved = errno;
            s = slab_create(c, colour, &ctor_failed);
            if (!s && !ctor_failed && reap_for_memory())
                s = slab_create(c, colour, &ctor_failed); /* once more */
            slab_lock(&c->lock);
            if (!s) {
                c->ctor_failures += ctor_failed;
                break;
            }
            errno = saved;
            c->grown++;
            c->total += c->layout.objs;
            page_list_push(&c->lists[SL_FREE], s);
            continue;
        }
        size_t before = got;
        while (got < n && s->inuse < c->layout.objs) {
            out[got] = slab_take(c, s);
            if (debug)
                debug_alloc_locked(c, s, out[got], &dc);
            got++;
        }
        slab_move(c, s, list_for(c, s));
        /* Counted before the lock may be dropped to grow. */
        c->active += got - before;
        c->allocs += got - before;
        if (c->active > c->high_mark)
            c->high_mark = c->active;
    }
    if (debug)
        c->errors += dc.nerr;
    slab_unlock(&c->lock);
    if (debug)
        debug_end(c, &dc);
    return got;
}

/* Find the slab of `p` for a free to `c`: NULL and *err filled in if p is
 * not a live object of c (or, with F, if its slab's bitmap is damaged).
 * *err is written only then: the drain of a magazine pays nothing for it. */
static struct slab_page *free_target(struct slab_cache *c, const void *p, size_t *idx,
                                     struct obj_error *err)
{
    struct slab_page *pg = addr_to_page(p);
    struct slab_page *s = pg && page_kind(pg) == PG_TAIL ? pg->head : pg;
    slab_error_kind_t kind;
    long i = -1;
    if (!s || page_kind(s) != PG_SLAB)
        kind = SLAB_ERR_FOREIGN;
    else if (s->cache != c)
        kind = SLAB_ERR_WRONG_CACHE;
    else if (unlikely(c->flags & SLAB_CONSISTENCY_CHECKS) && !debug_slab_ok(c, s))
        kind = SLAB_ERR_CORRUPT;
    else if ((i = slab_obj_index(c, s, p)) < 0)
        kind = SLAB_ERR_INTERIOR;
    else if (slab_is_free(s, (size_t)i))
        kind = SLAB_ERR_DOUBLE_FREE;
    else {
        *idx = (size_t)i;
        return s;
    }
    memset(err, 0, offsetof(struct obj_error, alloc));
    err->kind = kind;
    err->ptr = p;
    if (kind == SLAB_ERR_WRONG_CACHE) {
        err->owner = s->cache;
        err->object = p;
    } else if (kind == SLAB_ERR_CORRUPT) {
        err->object = p;
        err->offset = s->inuse;
    } else if (kind != SLAB_ERR_FOREIGN && (c->flags & SLAB_DEBUG_FLAGS)) {
        debug_error_object(c, s, err); /* the object it is in, and its stacks */
    }
    return NULL;
}

static void report_free_error(const struct slab_cache *c, const char *function,
                              const struct obj_error *e)
{
    switch (e->kind) {
    case SLAB_ERR_FOREIGN:
        report_object(function, c, e, 0, "%p is not an object of any cache; ignored", e->ptr);
        break;
    case SLAB_ERR_WRONG_CACHE:
        report_object(function, c, e, 0, "%p belongs to cache '%s', not to this one; ignored",
                      e->ptr, e->owner->name);
        break;
    case SLAB_ERR_INTERIOR:
        report_object(function, c, e, 0, "%p is not the start of an object; ignored", e->ptr);
        break;
    case SLAB_ERR_CORRUPT:
        report_object(function, c, e, 0,
                      "the slab of %p: its bitmap disagrees with its count of %ld objects in "
                      "use (metadata overwritten?); not freed", e->ptr, e->offset);
        break;
    default:
        report_object(function, c, e, 0, "double free of %p; ignored", e->ptr);
        break;
    }
}

size_t cache_free_batch(struct slab_cache *c, void *const *objs, size_t n)
{
    enum { MAX_REPORTS = 8 };
    struct obj_error errs[MAX_REPORTS];
    size_t nerr = 0, freed = 0;
    struct debug_call dc;
    bool debug = unlikely(c->flags & SLAB_DEBUG_FLAGS);
    if (debug)
        debug_begin(c, &dc, "slab_cache_free");
    slab_lock(&c->lock);
    for (size_t k = 0; k < n; k++) {
        size_t idx;
        struct obj_error spare; /* errors beyond MAX_REPORTS are counted only */
        struct obj_error *e = nerr < MAX_REPORTS ? &errs[nerr] : &spare;
        struct slab_page *s = free_target(c, objs[k], &idx, e);
        if (!s) {
            c->errors++;
            if (nerr < MAX_REPORTS)
                nerr++;
            continue;
        }
        if (debug)
            debug_free_locked(c, objs[k], &dc);
        slab_put(s, idx);
        slab_move(c, s, list_for(c, s));
        freed++;
    }
    c->active -= freed;
    c->frees += freed;
    if (debug)
        c->errors += dc.nerr;
    struct slab_page *chain = trim_free_locked(c, c->keep_free);
    slab_unlock(&c->lock);
    release_chain(c, chain);
    const char *function = debug ? dc.function : "slab_cache_free";
    for (size_t k = 0; k < nerr; k++)
        report_free_error(c, function, &errs[k]);
    if (debug)
        debug_end(c, &dc);
    return freed;
}

/* ---- the API ---- */

/* Fill in a descriptor; the caller publishes it on the list of caches. */
static void cache_init(struct slab_cache *c, const char *name, size_t size, size_t align,
                       slab_flags_t flags, const struct slab_layout *layout, unsigned id)
{
    memset(c, 0, sizeof *c);
    slab_lock_init(&c->lock);
    slab_lock_init(&c->depot.lock);
    c->id = id;
    c->layout = *layout;
    c->size = size;
    c->align = align;
    c->flags = flags;
    c->keep_free = (KEEP_FREE_PAGES >> layout->order) > KEEP_FREE_MIN
                       ? (KEEP_FREE_PAGES >> layout->order) : KEEP_FREE_MIN;
    c->depot.size_index = depot_initial_size(size);
    c->depot.max_index = depot_max_size(size);
    c->depot.max_full_objs = depot_max_full_objs(layout->stride, options_depot_bytes());
    strncpy(c->name, name, sizeof c->name - 1);
}

void cache_create_internal(struct slab_cache *c, const char *name, size_t size, size_t align)
{
    struct slab_layout layout;
    slab_layout_compute(&layout, size, align);
    cache_init(c, name, size, align, 0, &layout, TC_NO_ID);
    c->keep_free = 0; /* with every cache destroyed, every page goes back */
    c->flags = CACHE_INTERNAL;
    if (nr_internal < MAX_INTERNAL) /* boot only: no lock needed */
        internal_caches[nr_internal++] = c;
    caches_link(c);
}

slab_cache_t *cache_create(const char *name, size_t size, size_t align, slab_flags_t flags,
                           slab_ctor_t ctor, slab_dtor_t dtor, void *arg, unsigned id)
{
    if (!cache_create_check(name, size, &align, flags))
        return NULL;
    bool magazines = options_magazines(); /* reads the environment, SLAB_DEBUG too */
    flags |= debug_flags_for(name);
    struct slab_layout layout;
    if (!debug_layout(&layout, size, align, flags))
        return cache_create_fail(name, flags, EINVAL, "no slab order keeps waste under 1/8");

    boot_all();
    struct slab_cache *c;
    if (cache_alloc_batch(&cache_cache, (void **)&c, 1) != 1)
        return cache_create_fail(name, flags, ENOMEM, "out of memory for the cache descriptor");
    if (!magazines || (flags & SLAB_DEBUG_FLAGS))
        id = TC_NO_ID;
    else if (id == CACHE_ID_AUTO)
        id = tcache_id_alloc();
    cache_init(c, name, size, align, flags, &layout, id);
    c->ctor = ctor;
    c->dtor = dtor;
    c->arg = arg;
    caches_link(c);
    if (flags & SLAB_LEAK_AT_EXIT)
        debug_leaks_at_exit();
    return c;
}

slab_cache_t *slab_cache_create(const char *name, size_t size, size_t align,
                                slab_flags_t flags, slab_ctor_t ctor, slab_dtor_t dtor,
                                void *arg)
{
    if (flags & ~CACHE_KNOWN_FLAGS)
        return cache_create_fail(name, flags, EINVAL, "unknown flags");
    return cache_create(name, size, align, flags, ctor, dtor, arg, CACHE_ID_AUTO);
}

/* Is c a cache that exists (a live object of cache_cache)? */
bool cache_is_live(const slab_cache_t *c)
{
    if (c == &cache_cache)
        return true;
    boot_all();
    for (unsigned i = 0; i < nr_internal; i++)
        if (c == internal_caches[i])
            return true;
    slab_lock(&cache_cache.lock);
    size_t idx;
    struct obj_error e;
    bool live = free_target(&cache_cache, c, &idx, &e) != NULL;
    slab_unlock(&cache_cache.lock);
    return live;
}

/* The slow paths, given the program's return address (debug caches'
 * call stacks start there). */
static __attribute__((noinline)) void *cache_alloc_miss(struct slab_cache *c, void *caller)
{
    if (!c) {
        cache_check(c, "slab_cache_alloc");
        return NULL;
    }
    api_note("slab_cache_alloc", caller);
    return tcache_alloc_slow(c);
}

static __attribute__((noinline)) void cache_free_miss(struct slab_cache *c, void *obj,
                                                      void *caller)
{
    if (!c) {
        slab_reportf(SLAB_ERR_INVALID_ARG, "slab_cache_free", NULL, NULL, obj, 0,
                     "NULL cache for %p; ignored", obj);
        return;
    }
    api_note("slab_cache_free", caller);
    tcache_free_slow(c, obj);
}

/* The fast paths; everything else, a NULL cache too, is the miss's. */
void *slab_cache_alloc(slab_cache_t *c)
{
    void *obj = likely(c != NULL) ? cache_alloc_fast(c) : NULL;
    if (likely(obj != NULL))
        return annotate_cache_alloc(c, obj);
    return cache_alloc_miss(c, CALLER);
}

void slab_cache_free(slab_cache_t *c, void *obj)
{
    if (unlikely(!obj))
        return;
    if (likely(c != NULL) && likely(cache_free_fast(c, obj)))
        return annotate_cache_free(c, obj); /* only this thread can take it back yet */
    cache_free_miss(c, obj, CALLER);
}

size_t cache_reap_slabs(struct slab_cache *c, bool all)
{
    slab_lock(&c->lock);
    bool idle = all || c->allocs == c->allocs_at_reap;
    c->allocs_at_reap = c->allocs;
    struct slab_page *chain = trim_free_locked(c, idle ? 0 : c->keep_free);
    slab_unlock(&c->lock);
    return release_chain(c, chain);
}

size_t slab_cache_shrink(slab_cache_t *c)
{
    if (!cache_check(c, __func__))
        return 0;
    slab_lock(&c->lock);
    uint64_t reaped_before = c->reaped;
    slab_unlock(&c->lock);
    /* Objects cached in magazines are free: return them first (slabs
     * they empty may be released on the way). */
    tcache_flush_self(c);
    depot_reap(c, true);
    slab_lock(&c->lock);
    struct slab_page *chain = trim_free_locked(c, 0);
    size_t released = (size_t)(c->reaped - reaped_before);
    slab_unlock(&c->lock);
    release_chain(c, chain);
    return released;
}

int slab_cache_destroy(slab_cache_t *c)
{
    if (!cache_check(c, __func__))
        return -1;
    if (c == &cache_cache || (c->flags & (CACHE_KMALLOC | CACHE_INTERNAL))) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, c, NULL, c, 0,
                     "libslab's own caches cannot be destroyed");
        errno = EINVAL;
        return -1;
    }
    if (cache_walking()) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, c, NULL, c, 0,
                     "called from a slab_cache_foreach() callback; not destroyed");
        errno = EDEADLK;
        return -1;
    }
    /* Objects in magazines are free: bring them home first. */
    tcache_flush_cache(c);
    depot_reap(c, true);
    slab_lock(&c->lock);
    size_t live = c->active;
    if (live) {
        c->errors++;
        slab_unlock(&c->lock);
        if (c->flags & SLAB_DEBUG_FLAGS)
            debug_report_leaks(c, __func__);
        slab_reportf(SLAB_ERR_BUSY, __func__, c, NULL, c, live,
                     "still has %zu live object%s; not destroyed", live,
                     live == 1 ? "" : "s");
        errno = EBUSY;
        return -1;
    }
    struct slab_page *chain = trim_free_locked(c, 0);
    slab_unlock(&c->lock);
    release_chain(c, chain);
    caches_unlink(c);
    tcache_id_release(c);
    slab_lock_fini(&c->lock);
    slab_lock_fini(&c->depot.lock);
    cache_free_batch(&cache_cache, (void **)&c, 1);
    return 0;
}

const char *slab_cache_name(const slab_cache_t *c)
{
    return c ? c->name : NULL;
}

size_t slab_cache_object_size(const slab_cache_t *c)
{
    return c ? c->size : 0;
}

slab_cache_t *slab_owner(const void *ptr)
{
    struct slab_page *pg = addr_to_page(ptr);
    if (!pg)
        return NULL;
    struct slab_page *s = page_kind(pg) == PG_TAIL ? pg->head : pg;
    return page_kind(s) == PG_SLAB ? s->cache : NULL;
}

/* The figures of a live cache.  Locks: tc_lock, then the depot's, then
 * the cache's, one at a time; the caller may hold caches_lock. */
void cache_stats_fill(struct slab_cache *c, slab_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    struct mag_stats ms;
    tcache_stats(c, &ms);
    struct depot *d = &c->depot;
    slab_lock(&d->lock);
    uint64_t alloc_hit = ms.alloc_hit + d->alloc_hit, alloc_miss = ms.alloc_miss + d->alloc_miss;
    uint64_t free_hit = ms.free_hit + d->free_hit, free_miss = ms.free_miss + d->free_miss;
    uint64_t direct_allocs = __atomic_load_n(&d->direct_allocs, __ATOMIC_RELAXED);
    uint64_t direct_frees = __atomic_load_n(&d->direct_frees, __ATOMIC_RELAXED);
    out->depot_exchanges = d->exchanges;
    out->depot_full = d->nfull;
    out->depot_empty = d->nempty;
    out->depot_overflows = d->overflows;
    for (const struct magazine *m = d->full; m; m = m->next)
        out->depot_objs += m->size;
    if (c->id != TC_NO_ID) {
        out->magazine_size = magazine_rounds(d->size_index);
        out->batchcount = out->magazine_size / 2 + 1;
        out->depot_limit = d->max_full_objs == SIZE_MAX ? 0 : d->max_full_objs;
    }
    slab_unlock(&d->lock);
    out->alloc_hit = alloc_hit;
    out->alloc_miss = alloc_miss;
    out->free_hit = free_hit;
    out->free_miss = free_miss;
    uint64_t allocs = alloc_hit + alloc_miss + direct_allocs;
    uint64_t frees = free_hit + free_miss + direct_frees;
    slab_lock(&c->lock);
    if (c->id == TC_NO_ID) { /* every call reached the slab layer */
        allocs = c->allocs;
        frees = c->frees;
    }
    out->name = c->name;
    out->object_size = c->size;
    out->stride = c->layout.stride;
    out->align = c->align;
    out->objs_per_slab = c->layout.objs;
    out->pages_per_slab = (size_t)1 << c->layout.order;
    out->colours = c->layout.colours;
    /* Handed to the program: what it took minus what it gave back.  Exact
     * when no other thread is allocating meanwhile. */
    out->active_objs = allocs > frees ? (size_t)(allocs - frees) : 0;
    out->magazine_objs = c->active > out->active_objs ? c->active - out->active_objs : 0;
    out->total_objs = c->total;
    out->partial_slabs = c->lists[SL_PARTIAL].count;
    out->full_slabs = c->lists[SL_FULL].count;
    out->free_slabs = c->lists[SL_FREE].count;
    out->active_slabs = out->partial_slabs + out->full_slabs;
    out->total_slabs = out->active_slabs + out->free_slabs;
    out->allocations = allocs;
    out->frees = frees;
    out->high_mark = c->high_mark;
    out->grown = c->grown;
    out->reaped = c->reaped;
    out->errors = c->errors;
    out->ctor_failures = c->ctor_failures;
    out->flags = c->flags & ~(CACHE_KMALLOC | CACHE_INTERNAL);
    out->internal = (c->flags & CACHE_INTERNAL) != 0;
    slab_unlock(&c->lock);
}

int slab_cache_stats(const slab_cache_t *cc, slab_cache_stats_t *out)
{
    if (!out || !cache_check(cc, __func__)) {
        if (!out)
            slab_reportf(SLAB_ERR_INVALID_ARG, __func__, cc, NULL, NULL, 0,
                         "NULL statistics buffer");
        errno = EINVAL;
        return -1;
    }
    cache_stats_fill((struct slab_cache *)cc, out);
    return 0;
}


/* ---- fork: every lock, in the library's nesting order ---- */

void cache_fork_prepare(void)
{
    slab_once(&boot_once, boot);
    struct slab_cache *first = caches_lock_all();
    tcache_fork_prepare();
    for (struct slab_cache *c = first; c; c = c->next) {
        slab_lock(&c->depot.lock);
        slab_lock(&c->lock);
    }
}

void cache_fork_parent(void)
{
    for (struct slab_cache *c = caches_first(); c; c = c->next) {
        slab_unlock(&c->lock);
        slab_unlock(&c->depot.lock);
    }
    tcache_fork_parent();
    caches_unlock_all();
}
