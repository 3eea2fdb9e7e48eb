/*
 * caches.c - what every cache has, whichever backend made it (cache.c or
 * slob.c): the list of all caches, the walks over it, the checks of a
 * cache handle (each backend says what a live cache is: cache_is_live),
 * the bulk calls and the reclaim callback, and the checks and rules of
 * slab_cache_create()'s arguments.
 *
 * Caches are linked at creation and unlinked at destruction under
 * caches_lock.  A walk calls back with the lock held: it is the one
 * libslab lock held across the program's code (slab_cache_foreach()
 * callbacks), so a walk nested in another on the same thread (walk_depth)
 * does not take it again, and the backends refuse to create or destroy a
 * cache from inside a walk (cache_walking()).  Each backend gives
 * cache_stats_fill(), from which the snapshots are taken.
 */
#include "internal.h"

static slab_lock_t caches_lock = SLAB_LOCK_INIT;
static struct slab_cache *caches;
/* Walks this thread (CPU) is inside: while non-zero it holds caches_lock. */
static SLAB_LOCAL_DEFINE(unsigned, walk_depth);

bool cache_walking(void) { return SLAB_LOCAL(walk_depth) != 0; }

void caches_link(struct slab_cache *c)
{
    slab_lock(&caches_lock);
    dlist_push(caches, c);
    slab_unlock(&caches_lock);
}

void caches_unlink(struct slab_cache *c)
{
    slab_lock(&caches_lock);
    dlist_del(caches, c);
    slab_unlock(&caches_lock);
}

struct slab_cache *caches_lock_all(void)
{
    slab_lock(&caches_lock);
    return caches;
}

struct slab_cache *caches_first(void) { return caches; }

void caches_unlock_all(void) { slab_unlock(&caches_lock); }

int cache_walk(int (*fn)(struct slab_cache *c, void *arg), void *arg,
               const struct timespec *deadline)
{
    cache_boot();
    bool nested = SLAB_LOCAL(walk_depth) != 0; /* the lock is this thread's already */
    if (!nested && !slab_lock_until(&caches_lock, deadline)) {
        errno = ETIMEDOUT;
        return -1;
    }
    SLAB_LOCAL(walk_depth)++;
    int ret = 0;
    for (struct slab_cache *c = caches; c && !ret; c = c->next)
        ret = fn(c, arg);
    SLAB_LOCAL(walk_depth)--;
    if (!nested)
        slab_unlock(&caches_lock);
    return ret;
}

struct for_each_call {
    void (*fn)(struct slab_cache *c, void *arg);
    void *arg;
};

static int for_each_one(struct slab_cache *c, void *arg)
{
    struct for_each_call *call = arg;
    call->fn(c, call->arg);
    return 0;
}

void cache_for_each(void (*fn)(struct slab_cache *c, void *arg), void *arg)
{
    struct for_each_call call = {fn, arg};
    cache_walk(for_each_one, &call, NULL);
}

struct foreach_call {
    int (*fn)(const slab_cache_t *c, void *arg);
    void *arg;
};

static int foreach_one(struct slab_cache *c, void *arg)
{
    struct foreach_call *call = arg;
    return call->fn(c, call->arg);
}

int slab_cache_foreach(int (*fn)(const slab_cache_t *c, void *arg), void *arg)
{
    if (!fn) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0, "NULL callback");
        errno = EINVAL;
        return -1;
    }
    struct foreach_call call = {fn, arg};
    return cache_walk(foreach_one, &call, NULL);
}

struct snapshot_walk {
    struct cache_snapshot *out;
    size_t skip, max, seen, n;
};

static int snapshot_one(struct slab_cache *c, void *arg)
{
    struct snapshot_walk *w = arg;
    if (w->seen++ < w->skip || w->n >= w->max)
        return 0;
    struct cache_snapshot *e = &w->out[w->n++];
    cache_stats_fill(c, &e->st);
    memcpy(e->name, c->name, sizeof e->name);
    e->name[sizeof e->name - 1] = '\0';
    e->st.name = e->name;
    return 0;
}

size_t cache_snapshot(struct cache_snapshot *out, size_t skip, size_t max,
                      const struct timespec *deadline)
{
    struct snapshot_walk w = {out, skip, max, 0, 0};
    if (cache_walk(snapshot_one, &w, deadline) < 0)
        return (size_t)-1;
    return w.seen;
}

/* ---- checks and calls every backend shares ---- */

bool cache_check(const slab_cache_t *c, const char *function)
{
    if (c && cache_is_live(c))
        return true;
    slab_reportf(SLAB_ERR_INVALID_ARG, function, NULL, NULL, c, 0,
                 "%p is not a cache", (const void *)c);
    errno = EINVAL;
    return false;
}

static bool check_ptrs(void **ptrs, size_t n, const char *function)
{
    if (ptrs || n == 0)
        return true;
    slab_reportf(SLAB_ERR_INVALID_ARG, function, NULL, NULL, NULL, n,
                 "NULL array for %zu objects", n);
    errno = EINVAL;
    return false;
}

size_t slab_cache_alloc_bulk(slab_cache_t *c, size_t n, void **ptrs)
{
    if (!check_ptrs(ptrs, n, __func__) || !cache_check(c, __func__))
        return 0;
    size_t i = 0;
    for (; i < n; i++) {
        ptrs[i] = slab_cache_alloc(c);
        if (!ptrs[i])
            break;
    }
    if (i == n)
        return n;
    slab_cache_free_bulk(c, i, ptrs); /* all or nothing */
    errno = ENOMEM;
    return 0;
}

void slab_cache_free_bulk(slab_cache_t *c, size_t n, void **ptrs)
{
    if (!check_ptrs(ptrs, n, __func__))
        return;
    for (size_t i = 0; i < n; i++)
        slab_cache_free(c, ptrs[i]);
}

int slab_cache_set_reclaim(slab_cache_t *c, void (*fn)(void *arg), void *arg)
{
    if (!cache_check(c, __func__))
        return -1;
    slab_lock(&c->lock);
    c->reclaim = fn;
    c->reclaim_arg = arg;
    slab_unlock(&c->lock);
    return 0;
}

/* ---- slab_cache_create()'s arguments ---- */

slab_cache_t *cache_create_fail(const char *name, slab_flags_t flags, int err, const char *why)
{
    if (err == EINVAL || err == EDEADLK) /* misuse is reported; running out of memory is not */
        slab_reportf(SLAB_ERR_INVALID_ARG, "slab_cache_create", NULL, NULL, NULL, 0,
                     "cache '%s': %s", name ? name : "(null)", why);
    if (flags & SLAB_PANIC)
        abort();
    errno = err;
    return NULL;
}

bool cache_create_check(const char *name, size_t size, size_t *align, slab_flags_t flags)
{
    const char *why = NULL;
    int err = EINVAL;
    if (!name)
        why = "the name is NULL";
    else if (size == 0)
        why = "object size is 0";
    else if (size > SLAB_MAX_OBJECT_SIZE)
        why = "object size is above SLAB_MAX_OBJECT_SIZE";
    else if (*align & (*align - 1))
        why = "alignment is not a power of two";
    else if (*align > PAGE_SIZE)
        why = "alignment is above the page size";
    else if (cache_walking())
        why = "called from a slab_cache_foreach() callback; not created", err = EDEADLK;
    if (why) {
        cache_create_fail(name, flags, err, why);
        return false;
    }
    if (*align == 0)
        *align = CACHE_DEFAULT_ALIGN;
    if (flags & SLAB_HWCACHE_ALIGN) {
        /* Linux's rule: a line, or the smallest fraction of one that the
         * object still needs more than half of. */
        size_t ralign = SLAB_CACHE_LINE;
        while (size <= ralign / 2 && ralign > CACHE_DEFAULT_ALIGN)
            ralign /= 2;
        if (ralign > *align)
            *align = ralign;
    }
    return true;
}
