/*
 * slob.c - the SLOB backend: simple list of blocks, behind the same API
 * (built with -DSLAB_BACKEND=slob instead of slab.c, cache.c, kmalloc.c,
 * depot.c, tcache.c, debug.c, live.c, verify.c, fork.c, annotate.c).
 *
 * After Linux's mm/slob.c.  Single pages from the buddy allocator are
 * carved into units of SLOB_UNIT = 2 bytes (an int16_t): a 4 KiB page has
 * 2048 units, so any offset, size or negated offset fits the unit itself,
 * and a block never wastes more than one byte to rounding.  Alignment is
 * not bought with a bigger unit: the fit skips the units before the first
 * suitably aligned position of a free block and leaves them free (any
 * power of two up to a page), which is what makes one-unit free blocks
 * exist at all.
 *
 * Free blocks live in the free memory itself, in address order:
 *     a block of n >= 2 units:  unit[0] = n,  unit[1] = offset of the next
 *     a block of one unit:      unit[0] = -(offset of the next)
 * where offsets count units from the page start and SLOB_PAGE_UNITS means
 * "no next".  The descriptor (struct slab_page, PG_SLOB) holds the units
 * free, the offset of the first free block and the list the page is on.
 * A page with free units sits on one of three lists, chosen by the size
 * of the request that made it: below 256 B, below 1024 B, up to a page.
 * Allocation is first fit, page by page along the list; the page that
 * satisfied a request moves to the front of its list.  A free inserts the
 * block in address order and merges it with the free blocks just before
 * and after; a page wholly free goes back to the buddy allocator at once.
 *
 * Invariants, under slob_lock (checked by slab_verify):
 *   - a PG_SLOB page is on list page->list iff units_free > 0;
 *   - its free blocks are in increasing address order, inside the page,
 *     never adjacent (adjacent blocks are merged), and their sizes sum
 *     to units_free; units_free < SLOB_PAGE_UNITS (else it is released).
 *
 * slab_malloc() blocks up to SLOB_KM_MAX bytes carry a 16-byte header in
 * front (as Linux's SLOB kmalloc does): the usable size and a check word
 * derived from the address, cleared on free.  16 bytes keep every block
 * 16-aligned; the check word lets slab_free() and slab_usable_size() tell
 * a block start from anything else in a page.  Larger requests are whole
 * buddy blocks (PG_RUN, kmalloc's runs) or, above SLAB_HUGE_THRESHOLD,
 * mappings of their own (huge.c).
 *
 * Caches are thin descriptors (name, size, align, ctor, dtor, counters)
 * over the same pages; their objects carry no header.  Objects larger
 * than a page are buddy blocks of their own (PG_SLOB_BIG, owner recorded).
 *
 * Where the API means something else here:
 *   - constructed state: the constructor runs on every allocation and the
 *     destructor on every free (no lock held), so an object handed out is
 *     always constructed, but a freed object does not stay constructed:
 *     its memory is free memory, shared with every cache and slab_malloc;
 *   - slab_owner() is NULL for objects up to a page: pages are shared by
 *     every cache and nothing records which object is whose (the exact
 *     cache for objects larger than a page).  So slab_free() of a cache
 *     object is reported (use slab_cache_free()), and a free to the wrong
 *     cache is caught only when it is evidently wrong: a slab_malloc
 *     block, another cache's large object, a cache with no live object;
 *   - bad frees caught: pointers not in libslab's memory, not aligned or
 *     not fitting the cache's object, inside free memory (double free),
 *     and for slab_malloc blocks anything that is not a block start.  Not
 *     caught, as in Linux's SLOB: a pointer into a live object of a cache
 *     that is aligned as its objects are (nothing records where objects
 *     start); such a free damages the heap;
 *   - no size classes: slab_size_class_count() is 0, slab_kmalloc_cache()
 *     NULL; small slab_malloc blocks belong to no cache, so slab_info_print
 *     lists caches only and slab_memory_info counts those blocks in
 *     slab_bytes (the SLOB pages), not object_bytes;
 *   - per-cache figures: stride is the size rounded to the alignment and
 *     objs_per_slab what a page would hold; the slab figures are 0 (a
 *     cache has no pages of its own) but for objects larger than a page
 *     (one block each, grown and reaped with each); total_objs is
 *     active_objs; shrink releases nothing (empty pages are released at
 *     once) and returns 0;
 *   - slab-backend-only features: the debug flags (F Z P U T L) are
 *     accepted and ignored, as Linux's SLOB did (slab_cache_stats() shows
 *     the flags in force, without them), and SLAB_DEBUG is reported and
 *     ignored; slab_stats_live(1) fails with ENOSYS and a report; the
 *     magazine and depot options are accepted and have no effect (every
 *     call takes the one lock); there are no fork handlers (a fork while
 *     another thread is inside libslab leaves the child's lock taken),
 *     hence no libslab-malloc.so in this build.
 *
 * Locks: slob_lock over the lists, the pages and the cache counters; the
 * cache list's lock around it (cache_walk); buddy_lock inside both.
 * Constructors, destructors and reclaim callbacks run with none held.
 */
#include "slob.h"

#define SLOB_CACHE_MAGIC 0x51ab5106u
#define KM_MAGIC 0x6b6d616c6c6f6321ull
#define NO_BLOCK SLOB_PAGE_UNITS

static slab_lock_t slob_lock = SLAB_LOCK_INIT;
static struct slab_page *lists[SLOB_LISTS];


/* ---- the encoding of free blocks ---- */

static inline slob_t *page_units(const struct slab_page *pg)
{
    return (slob_t *)page_address(pg);
}

static inline unsigned blk_size(const slob_t *b, unsigned off)
{
    return b[off] > 0 ? (unsigned)b[off] : 1;
}

static inline unsigned blk_next(const slob_t *b, unsigned off)
{
    return b[off] > 0 ? (unsigned)b[off + 1] : (unsigned)-b[off];
}

static inline void blk_set(slob_t *b, unsigned off, unsigned size, unsigned next)
{
    if (size > 1) {
        b[off] = (slob_t)size;
        b[off + 1] = (slob_t)next;
    } else {
        b[off] = (slob_t)-(int)next;
    }
}

/* Point the free block before (prev, or the descriptor) at next. */
static inline void link_after(struct slab_page *pg, slob_t *b, unsigned prev, unsigned next)
{
    if (prev == NO_BLOCK)
        pg->first_free = (uint16_t)next;
    else
        blk_set(b, prev, blk_size(b, prev), next);
}

static inline unsigned units_of(size_t bytes)
{
    unsigned u = (unsigned)((bytes + SLOB_UNIT - 1) / SLOB_UNIT);
    return u ? u : 1;
}

static inline unsigned list_for(size_t bytes)
{
    return bytes < SLOB_BREAK_SMALL ? SLOB_LIST_SMALL
           : bytes < SLOB_BREAK_MEDIUM ? SLOB_LIST_MEDIUM : SLOB_LIST_LARGE;
}

/* ---- one page ---- */

/* First fit in one page: `units` units whose address plus `off` bytes is
 * aligned to `align`; NULL if no free block has room. */
static void *page_alloc(struct slab_page *pg, unsigned units, size_t align, size_t off)
{
    slob_t *b = page_units(pg);
    unsigned prev = NO_BLOCK;
    for (unsigned cur = pg->first_free; cur < SLOB_PAGE_UNITS;) {
        unsigned avail = blk_size(b, cur), next = blk_next(b, cur);
        unsigned skip = 0;
        if (align > SLOB_UNIT) {
            uintptr_t a = (uintptr_t)(b + cur) + off;
            skip = (unsigned)((((a + align - 1) & ~(uintptr_t)(align - 1)) - a) / SLOB_UNIT);
        }
        if (avail >= skip + units) {
            if (skip) { /* the units before the aligned start stay free */
                blk_set(b, cur, skip, cur + skip);
                prev = cur;
                cur += skip;
                avail -= skip;
            }
            if (avail == units) {
                link_after(pg, b, prev, next);
            } else {
                blk_set(b, cur + units, avail - units, next);
                link_after(pg, b, prev, cur + units);
            }
            pg->units_free -= units;
            return b + cur;
        }
        if (next <= cur)
            break; /* a damaged list: slab_verify() says so */
        prev = cur;
        cur = next;
    }
    return NULL;
}

/* Give units [off, off + units) back, merged with the free neighbours.
 * False, changing nothing, if they overlap free memory. */
static bool page_free(struct slab_page *pg, unsigned off, unsigned units)
{
    slob_t *b = page_units(pg);
    unsigned prev = NO_BLOCK, cur = pg->first_free;
    while (cur < off) {
        unsigned next = blk_next(b, cur);
        if (next <= cur)
            return false;
        prev = cur;
        cur = next;
    }
    if (cur < off + units || (prev != NO_BLOCK && prev + blk_size(b, prev) > off))
        return false;
    unsigned size = units, next = cur;
    if (cur < SLOB_PAGE_UNITS && off + units == cur) {
        size += blk_size(b, cur);
        next = blk_next(b, cur);
    }
    if (prev != NO_BLOCK && prev + blk_size(b, prev) == off) {
        blk_set(b, prev, blk_size(b, prev) + size, next);
    } else {
        blk_set(b, off, size, next);
        link_after(pg, b, prev, off);
    }
    pg->units_free += units;
    return true;
}

/* Is unit off inside a free block of the page? */
static bool page_is_free(const struct slab_page *pg, unsigned off)
{
    const slob_t *b = page_units(pg);
    for (unsigned cur = pg->first_free; cur <= off && cur < SLOB_PAGE_UNITS;) {
        if (off < cur + blk_size(b, cur))
            return true;
        unsigned next = blk_next(b, cur);
        if (next <= cur)
            break;
        cur = next;
    }
    return false;
}

/* ---- the lists ---- */

static void list_del(struct slab_page *pg) { dlist_del(lists[pg->list], pg); }
static void list_push(struct slab_page *pg) { dlist_push(lists[pg->list], pg); }

/* After units went back to pg: list it again if it was full, release it
 * if it is now wholly free.  Under slob_lock. */
static void page_freed(struct slab_page *pg, unsigned units)
{
    if (pg->units_free == units)
        list_push(pg);
    if (pg->units_free == SLOB_PAGE_UNITS) {
        list_del(pg);
        buddy_free(pg, 0);
    }
}

static void *list_alloc(unsigned l, unsigned units, size_t align, size_t off)
{
    for (struct slab_page *pg = lists[l]; pg; pg = pg->next) {
        if (pg->units_free < units)
            continue;
        void *p = page_alloc(pg, units, align, off);
        if (!p)
            continue;
        list_del(pg);
        if (pg->units_free)
            list_push(pg); /* the next search starts here, as Linux's does */
        return p;
    }
    return NULL;
}

/* A buddy block for us; when the source fails, the reclaim callbacks and
 * a reap run and the request is tried once more. */
static struct slab_page *pages_get(unsigned order, unsigned kind)
{
    cache_boot();
    reap_tick();
    struct slab_page *pg = buddy_alloc(order, kind);
    if (!pg && reap_for_memory())
        pg = buddy_alloc(order, kind);
    if (!pg)
        errno = ENOMEM;
    return pg;
}

/* `bytes` from the SLOB pages, aligned as page_alloc() says; counted as
 * an object of c (when not NULL) under the same lock. */
static void *slob_alloc(size_t bytes, size_t align, size_t off, struct slab_cache *c)
{
    unsigned units = units_of(bytes), l = list_for(bytes);
    slab_lock(&slob_lock);
    void *p = list_alloc(l, units, align, off);
    if (!p) {
        slab_unlock(&slob_lock);
        struct slab_page *pg = pages_get(0, PG_SLOB);
        if (!pg)
            return NULL;
        slob_t *b = page_units(pg);
        blk_set(b, 0, SLOB_PAGE_UNITS, SLOB_PAGE_UNITS);
        slab_lock(&slob_lock);
        pg->list = (uint8_t)l;
        pg->first_free = 0;
        pg->units_free = SLOB_PAGE_UNITS;
        p = page_alloc(pg, units, align, off); /* a whole page: callers make it fit */
        if (pg->units_free)
            list_push(pg);
    }
    if (c && p) {
        c->allocs++;
        if (++c->active > c->high_mark)
            c->high_mark = c->active;
    }
    slab_unlock(&slob_lock);
    return p;
}

/* Units [p, p + units) of a SLOB page back; false if not possible. */
static bool slob_free_locked(struct slab_page *pg, const void *p, unsigned units)
{
    unsigned off = (unsigned)(((uintptr_t)p - (uintptr_t)page_address(pg)) / SLOB_UNIT);
    if (!page_free(pg, off, units))
        return false;
    page_freed(pg, units);
    return true;
}

/* ---- boot and the list of caches ---- */

static slab_lock_t boot_lock = SLAB_LOCK_INIT;
static int booted;
/* The descriptors of the program's caches are objects of this one. */
static struct slab_cache cache_cache;

void cache_boot(void)
{
    if (!__atomic_load_n(&booted, __ATOMIC_ACQUIRE)) {
        slab_lock(&boot_lock);
        if (!booted) {
            cache_create_internal(&cache_cache, "slab_cache", sizeof(struct slab_cache),
                                  _Alignof(struct slab_cache));
            huge_boot();
            __atomic_store_n(&booted, 1, __ATOMIC_RELEASE);
        }
        slab_unlock(&boot_lock);
    }
    stats_boot();
}

/* libslab's own caches (huge.c's), in static storage. */
#define MAX_INTERNAL 4
static struct slab_cache *internal_caches[MAX_INTERNAL];
static unsigned nr_internal;

/* Is c a cache that exists?  Descriptors live in SLOB pages (or in
 * static storage, for libslab's own), so the address is looked up
 * before the descriptor is read. */
bool cache_is_live(const struct slab_cache *c)
{
    if (!c)
        return false;
    for (unsigned i = 0; i < __atomic_load_n(&nr_internal, __ATOMIC_ACQUIRE); i++)
        if (c == internal_caches[i])
            return true;
    struct slab_page *pg = addr_to_page(c);
    if (!pg || page_kind(pg) != PG_SLOB)
        return false;
    return __atomic_load_n(&c->magic, __ATOMIC_ACQUIRE) == SLOB_CACHE_MAGIC;
}

static void cache_init(struct slab_cache *c, const char *name, size_t size, size_t align,
                       slab_flags_t flags)
{
    memset(c, 0, sizeof *c);
    slab_lock_init(&c->lock);
    c->size = size;
    c->align = align;
    c->units = units_of(size);
    c->flags = flags;
    for (size_t i = 0; name[i] && i < sizeof c->name - 1; i++)
        c->name[i] = name[i];
    __atomic_store_n(&c->magic, SLOB_CACHE_MAGIC, __ATOMIC_RELEASE);
}

void cache_create_internal(struct slab_cache *c, const char *name, size_t size, size_t align)
{
    cache_init(c, name, size, align, CACHE_INTERNAL);
    if (nr_internal < MAX_INTERNAL) { /* boot only, under boot_lock */
        internal_caches[nr_internal] = c;
        __atomic_store_n(&nr_internal, nr_internal + 1, __ATOMIC_RELEASE);
    }
    caches_link(c);
}

/* ---- cache objects ---- */

static bool big_object(const struct slab_cache *c) { return c->size > PAGE_SIZE; }

static unsigned order_of(size_t bytes)
{
    unsigned o = 0;
    while ((PAGE_SIZE << o) < bytes)
        o++;
    return o;
}

/* An object of c, not constructed yet; NULL with errno ENOMEM. */
static void *obj_alloc(struct slab_cache *c)
{
    if (!big_object(c))
        return slob_alloc(c->size, c->align, 0, c);
    struct slab_page *pg = pages_get(order_of(c->size), PG_SLOB_BIG);
    if (!pg)
        return NULL;
    slab_lock(&slob_lock);
    pg->cache = c;
    c->allocs++;
    if (++c->active > c->high_mark)
        c->high_mark = c->active;
    slab_unlock(&slob_lock);
    return page_address(pg);
}

/* What is wrong with freeing p to c, under slob_lock: 0 if nothing. */
struct bad_free {
    slab_error_kind_t kind;
    const struct slab_cache *owner;
    const char *why;
};

static bool km_header_ok(const struct slab_page *pg, const void *p);

static bool obj_check_locked(struct slab_cache *c, const void *p, struct slab_page *pg,
                             struct bad_free *e)
{
    unsigned kind = pg ? page_kind(pg) : PG_NONE;
    uintptr_t in_page = (uintptr_t)p & (PAGE_SIZE - 1);
    if (!pg) {
        *e = (struct bad_free){SLAB_ERR_FOREIGN, NULL, "was not allocated by libslab"};
    } else if (kind == PG_FREE) {
        *e = (struct bad_free){SLAB_ERR_DOUBLE_FREE, NULL, "is in free pages (freed already?)"};
    } else if (kind == PG_SLOB_BIG) {
        if (in_page || page_address(pg) != p)
            *e = (struct bad_free){SLAB_ERR_INTERIOR, pg->cache, "is not the start of an object"};
        else if (pg->cache != c)
            *e = (struct bad_free){SLAB_ERR_WRONG_CACHE, pg->cache, "belongs to another cache"};
        else
            return true;
    } else if (kind != PG_SLOB || big_object(c)) {
        *e = (struct bad_free){kind == PG_SLOB ? SLAB_ERR_WRONG_CACHE : SLAB_ERR_FOREIGN, NULL,
                               "is not an object of this cache"};
    } else if ((uintptr_t)p % c->align || in_page + c->units * SLOB_UNIT > PAGE_SIZE) {
        *e = (struct bad_free){SLAB_ERR_INTERIOR, NULL, "is not the start of an object"};
    } else if (page_is_free(pg, (unsigned)(in_page / SLOB_UNIT)) ||
               page_is_free(pg, (unsigned)(in_page / SLOB_UNIT) + c->units - 1)) {
        *e = (struct bad_free){SLAB_ERR_DOUBLE_FREE, NULL, "is free memory (freed already?)"};
    } else if (km_header_ok(pg, p)) {
        *e = (struct bad_free){SLAB_ERR_WRONG_CACHE, NULL,
                               "is a slab_malloc() block; free it with slab_free()"};
    } else if (c->active == 0) {
        *e = (struct bad_free){SLAB_ERR_WRONG_CACHE, NULL,
                               "cannot be an object of a cache with no live object"};
    } else {
        return true;
    }
    c->errors++;
    return false;
}

static void report_bad_free(const char *function, const struct slab_cache *c, const void *p,
                            const struct bad_free *e)
{
    slab_reportf(e->kind, function, c, e->owner, p, 0, "%p %s; ignored", p, e->why);
}

/* Free p to c after checking it; runs the destructor.  Reports misuse. */
static void obj_free(struct slab_cache *c, void *p, const char *function)
{
    struct slab_page *pg = addr_to_page(p);
    struct bad_free e;
    slab_lock(&slob_lock);
    bool ok = obj_check_locked(c, p, pg, &e);
    slab_unlock(&slob_lock);
    if (!ok) {
        report_bad_free(function, c, p, &e);
        return;
    }
    if (c->dtor)
        c->dtor(p, c->arg);
    slab_lock(&slob_lock);
    if (big_object(c)) {
        ok = page_kind(pg) == PG_SLOB_BIG && pg->cache == c;
        if (ok)
            buddy_free(pg, pg->order);
    } else {
        ok = page_kind(pg) == PG_SLOB && slob_free_locked(pg, p, (unsigned)c->units);
    }
    if (ok) {
        c->active--;
        c->frees++;
    } else {
        c->errors++;
    }
    slab_unlock(&slob_lock);
    if (!ok) /* another thread freed it meanwhile */
        slab_reportf(SLAB_ERR_DOUBLE_FREE, function, c, NULL, p, 0,
                     "%p was freed twice at once; ignored", p);
}

size_t cache_alloc_batch(struct slab_cache *c, void **out, size_t n)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!(out[i] = obj_alloc(c)))
            break;
    return i;
}

size_t cache_free_batch(struct slab_cache *c, void *const *objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (objs[i])
            obj_free(c, objs[i], "slab_cache_free");
    return n;
}

/* ---- the cache API ---- */

slab_cache_t *slab_cache_create(const char *name, size_t size, size_t align,
                                slab_flags_t flags, slab_ctor_t ctor, slab_dtor_t dtor,
                                void *arg)
{
    if (flags & ~CACHE_KNOWN_FLAGS)
        return cache_create_fail(name, flags, EINVAL, "unknown flags");
    if (!cache_create_check(name, size, &align, flags))
        return NULL;
    cache_boot();
    struct slab_cache *c = obj_alloc(&cache_cache);
    if (!c)
        return cache_create_fail(name, flags, ENOMEM, "out of memory for the cache descriptor");
    cache_init(c, name, size, align, flags & ~SLAB_DEBUG_FLAGS);
    c->ctor = ctor;
    c->dtor = dtor;
    c->arg = arg;
    caches_link(c);
    return c;
}

void *slab_cache_alloc(slab_cache_t *c)
{
    if (!cache_check(c, __func__))
        return NULL;
    void *p = obj_alloc(c);
    if (p && c->ctor && c->ctor(p, c->arg) != 0) {
        slab_lock(&slob_lock);
        if (big_object(c))
            buddy_free(addr_to_page(p), order_of(c->size));
        else
            slob_free_locked(addr_to_page(p), p, (unsigned)c->units);
        c->active--;
        c->allocs--;
        c->ctor_failures++;
        slab_unlock(&slob_lock);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

void slab_cache_free(slab_cache_t *c, void *obj)
{
    if (!obj)
        return;
    if (!c) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, obj, 0,
                     "NULL cache for %p; ignored", obj);
        return;
    }
    if (cache_check(c, __func__))
        obj_free(c, obj, __func__);
}

/* A cache keeps no free pages of its own: nothing to give back. */
size_t slab_cache_shrink(slab_cache_t *c)
{
    cache_check(c, __func__);
    return 0;
}

int slab_cache_destroy(slab_cache_t *c)
{
    if (!cache_check(c, __func__))
        return -1;
    if (c->flags & CACHE_INTERNAL) {
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
    slab_lock(&slob_lock);
    size_t live = c->active;
    if (live)
        c->errors++;
    else
        __atomic_store_n(&c->magic, 0, __ATOMIC_RELEASE);
    slab_unlock(&slob_lock);
    if (!live)
        caches_unlink(c);
    if (live) {
        slab_reportf(SLAB_ERR_BUSY, __func__, c, NULL, c, live,
                     "still has %zu live object%s; not destroyed", live, live == 1 ? "" : "s");
        errno = EBUSY;
        return -1;
    }
    slab_lock_fini(&c->lock);
    slab_lock(&slob_lock);
    slob_free_locked(addr_to_page(c), c, (unsigned)cache_cache.units);
    cache_cache.active--;
    cache_cache.frees++;
    slab_unlock(&slob_lock);
    return 0;
}

const char *slab_cache_name(const slab_cache_t *c) { return c ? c->name : NULL; }
size_t slab_cache_object_size(const slab_cache_t *c) { return c ? c->size : 0; }

slab_cache_t *slab_owner(const void *ptr)
{
    struct slab_page *pg = addr_to_page(ptr);
    if (!pg)
        return NULL;
    /* a large object's later pages are PG_NONE: find the block's head */
    struct slab_arena *a = page_arena(pg);
    for (size_t i = page_index(pg), o = 0; o <= MAX_ORDER; o++, i &= ~((size_t)1 << (o - 1))) {
        struct slab_page *h = &a->pages[i];
        unsigned k = page_kind(h);
        if (k == PG_SLOB_BIG && h->order >= o)
            return h->cache;
        if (k != PG_NONE)
            return NULL;
    }
    return NULL;
}

void cache_stats_fill(struct slab_cache *c, slab_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    slab_lock(&slob_lock);
    out->name = c->name;
    out->object_size = c->size;
    out->align = c->align;
    out->stride = (c->size + c->align - 1) & ~(c->align - 1);
    if (big_object(c)) {
        out->objs_per_slab = 1;
        out->pages_per_slab = (size_t)1 << order_of(c->size);
        out->active_slabs = out->total_slabs = out->full_slabs = c->active;
        out->grown = c->allocs; /* a block of its own for each object */
        out->reaped = c->frees;
    } else {
        out->objs_per_slab = PAGE_SIZE / out->stride;
        out->pages_per_slab = 1;
    }
    out->active_objs = out->total_objs = c->active;
    out->allocations = c->allocs;
    out->frees = c->frees;
    out->high_mark = c->high_mark;
    out->errors = c->errors;
    out->ctor_failures = c->ctor_failures;
    out->flags = c->flags & ~CACHE_INTERNAL;
    out->internal = (c->flags & CACHE_INTERNAL) != 0;
    slab_unlock(&slob_lock);
}

int slab_cache_stats(const slab_cache_t *cc, slab_cache_stats_t *out)
{
    if (!out) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0,
                     "NULL statistics buffer");
        errno = EINVAL;
        return -1;
    }
    if (!cache_check(cc, __func__))
        return -1;
    cache_stats_fill((struct slab_cache *)cc, out);
    return 0;
}


/* ---- slab_malloc and friends ---- */

struct km_hdr {
    uint64_t usable;  /* bytes usable after the header */
    uint64_t check;   /* km_check(), 0 once freed */
};
_Static_assert(sizeof(struct km_hdr) == SLOB_KM_HDR, "kmalloc header");

static inline uint64_t km_check(const void *obj, uint64_t usable)
{
    return ((uint64_t)(uintptr_t)obj * 0x9e3779b97f4a7c15ull) ^ usable ^ KM_MAGIC;
}

/* The 16 bytes before p, as they are.  When p is not a slab_malloc
 * block they may be a neighbouring object that its owner is writing
 * right now: the copy is only compared with the check word (a torn one
 * fails the check), so that read is no race with meaning, and
 * ThreadSanitizer is told not to watch it. */
__attribute__((no_sanitize("thread")))
static struct km_hdr km_header_peek(const void *p)
{
    const volatile uint64_t *w = (const volatile uint64_t *)p - 2;
    return (struct km_hdr){w[0], w[1]};
}

/* Is p the start of a live slab_malloc block of the SLOB page pg? */
static bool km_header_ok(const struct slab_page *pg, const void *p)
{
    uintptr_t in_page = (uintptr_t)p & (PAGE_SIZE - 1);
    if (in_page < SLOB_KM_HDR || in_page % SLOB_KM_HDR)
        return false;
    struct km_hdr h = km_header_peek(p);
    if (h.check != km_check(p, h.usable) || in_page + h.usable > PAGE_SIZE)
        return false;
    return !page_is_free(pg, (unsigned)((in_page - SLOB_KM_HDR) / SLOB_UNIT));
}

static void *km_small(size_t size, size_t align)
{
    size_t bytes = SLOB_KM_HDR + (size ? size : 1);
    char *b = slob_alloc(bytes, align, SLOB_KM_HDR, NULL);
    if (!b)
        return NULL;
    struct km_hdr *h = (struct km_hdr *)b;
    h->usable = units_of(bytes) * SLOB_UNIT - SLOB_KM_HDR;
    h->check = km_check(h + 1, h->usable);
    return h + 1;
}

/* Whole pages: a run from the buddy allocator, or a mapping of its own. */
static void *km_large_once(size_t size, size_t align)
{
    if (size > SLAB_HUGE_THRESHOLD || align > SLAB_HUGE_THRESHOLD) {
        struct huge *h = huge_alloc(size, align);
        return h ? h->base : NULL;
    }
    size_t pages = size ? (size + PAGE_SIZE - 1) >> PAGE_SHIFT : 1;
    struct slab_page *pg = buddy_alloc_run(pages, align > PAGE_SIZE ? order_of(align) : 0);
    return pg ? page_address(pg) : NULL;
}

static void *km_large(size_t size, size_t align)
{
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    cache_boot();
    reap_tick();
    void *p = km_large_once(size, align);
    if (!p && reap_for_memory())
        p = km_large_once(size, align);
    if (!p)
        errno = ENOMEM;
    return p;
}

/* The smallest alignment is 16: every block is one header past a
 * 16-aligned start. */
static void *km_alloc(size_t size, size_t align)
{
    if (align < SLOB_KM_HDR)
        align = SLOB_KM_HDR;
    if (size <= SLOB_KM_MAX && align < PAGE_SIZE && size + align <= PAGE_SIZE)
        return km_small(size, align);
    return km_large(size, align > PAGE_SIZE ? align : PAGE_SIZE);
}

enum km_kind { KM_BAD, KM_SMALL, KM_RUN, KM_HUGE };

struct km_block {
    enum km_kind kind;
    struct slab_page *page;  /* KM_SMALL: the SLOB page; KM_RUN: the run head */
    struct huge *huge;
    size_t usable;
};

/* Classify p, reporting (as `function`) anything that cannot be freed. */
static struct km_block km_lookup(const void *p, const char *function)
{
    struct km_block b = {KM_BAD, NULL, NULL, 0};
    void *entry = map_entry(p);
    struct huge *h = huge_of_entry(entry);
    if (!entry) {
        slab_reportf(SLAB_ERR_FOREIGN, function, NULL, NULL, p, 0,
                     "%p was not allocated by libslab; ignored", p);
        return b;
    }
    if (h) {
        if (p == h->base)
            b = (struct km_block){KM_HUGE, NULL, h, h->bytes};
        else
            slab_reportf(SLAB_ERR_INTERIOR, function, NULL, NULL, p, 0,
                         "%p is inside the %zu-byte allocation at %p; ignored", p, h->bytes,
                         (void *)h->base);
        return b;
    }
    struct slab_page *pg = addr_to_page(p);
    slab_lock(&slob_lock);
    unsigned kind = page_kind(pg);
    bool start = ((uintptr_t)p & (PAGE_SIZE - 1)) == 0;
    bool in_free = kind == PG_SLOB &&
                   page_is_free(pg, (unsigned)(((uintptr_t)p & (PAGE_SIZE - 1)) / SLOB_UNIT));
    if (kind == PG_SLOB && km_header_ok(pg, p))
        b = (struct km_block){KM_SMALL, pg, NULL, ((const struct km_hdr *)p - 1)->usable};
    else if (kind == PG_RUN && start)
        b = (struct km_block){KM_RUN, pg, NULL, (size_t)pg->run_pages << PAGE_SHIFT};
    slab_unlock(&slob_lock);
    if (b.kind != KM_BAD)
        return b;
    if (kind == PG_FOREIGN)
        slab_reportf(SLAB_ERR_FOREIGN, function, NULL, NULL, p, 0,
                     "%p was not allocated by libslab (beside a region); ignored", p);
    else if (kind == PG_FREE || in_free)
        slab_reportf(SLAB_ERR_DOUBLE_FREE, function, NULL, NULL, p, 0,
                     "%p is in free memory (freed already?); ignored", p);
    else if (kind == PG_PAGES)
        slab_reportf(SLAB_ERR_BAD_PAGES, function, NULL, NULL, p, 0,
                     "%p is a block from slab_pages_alloc(); free it with slab_pages_free(); "
                     "ignored", p);
    else if (kind == PG_SLOB || kind == PG_SLOB_BIG)
        slab_reportf(SLAB_ERR_INTERIOR, function, NULL, NULL, p, 0,
                     "%p is not the start of a slab_malloc() block (inside one, or a cache's "
                     "object: free those with slab_cache_free()); ignored", p);
    else
        slab_reportf(SLAB_ERR_INTERIOR, function, NULL, NULL, p, 0,
                     "%p is not the start of an allocation (inside one, or freed already); "
                     "ignored", p);
    return b;
}

static void km_release(void *p, const struct km_block *b)
{
    if (b->kind == KM_SMALL) {
        struct km_hdr *h = (struct km_hdr *)p - 1;
        slab_lock(&slob_lock);
        bool ok = page_kind(b->page) == PG_SLOB && h->check == km_check(p, h->usable);
        if (ok) {
            unsigned units = units_of(SLOB_KM_HDR + h->usable);
            h->check = 0;
            ok = slob_free_locked(b->page, h, units);
        }
        slab_unlock(&slob_lock);
        if (!ok)
            slab_reportf(SLAB_ERR_DOUBLE_FREE, "slab_free", NULL, NULL, p, 0,
                         "%p was freed twice at once; ignored", p);
    } else if (b->kind == KM_RUN) {
        buddy_free_run(b->page);
    } else if (b->kind == KM_HUGE) {
        huge_free(b->huge);
    }
}

/* As Linux's SLOB kmalloc: a power-of-two size is naturally aligned. */
void *slab_malloc(size_t size)
{
    size_t align = size && !(size & (size - 1)) && size > SLOB_KM_HDR ? size : SLOB_KM_HDR;
    return km_alloc(size, align < PAGE_SIZE ? align : PAGE_SIZE);
}

void slab_free(void *ptr)
{
    if (!ptr)
        return;
    int saved = errno;
    struct km_block b = km_lookup(ptr, __func__);
    km_release(ptr, &b);
    errno = saved;
}

void *slab_calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = slab_malloc(bytes);
    if (p && bytes <= SLAB_HUGE_THRESHOLD) /* a huge mapping is zeroed already */
        memset(p, 0, bytes);
    return p;
}

static bool fits_in_place(const struct km_block *b, size_t size)
{
    switch (b->kind) {
    case KM_SMALL:
        return size <= b->usable;
    case KM_RUN:
        return run_keeps(b->page, size, SLOB_KM_MAX);
    case KM_HUGE:
        return huge_keeps(b->huge, size);
    default:
        return false;
    }
}

void *slab_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return slab_malloc(size);
    if (size == 0) {
        slab_free(ptr);
        return NULL;
    }
    struct km_block b = km_lookup(ptr, __func__);
    if (b.kind == KM_BAD) {
        errno = EINVAL;
        return NULL;
    }
    if (fits_in_place(&b, size)) {
        size_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
        if (b.kind == KM_RUN && pages < b.page->run_pages)
            buddy_shrink_run(b.page, pages);
        return ptr;
    }
    void *q = slab_malloc(size);
    if (!q)
        return NULL;
    memcpy(q, ptr, b.usable < size ? b.usable : size);
    km_release(ptr, &b);
    return q;
}

void *slab_aligned_alloc(size_t align, size_t size)
{
    if (align & (align - 1)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, align,
                     "alignment %zu is not a power of two", align);
        errno = EINVAL;
        return NULL;
    }
    return km_alloc(size, align);
}

size_t slab_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    return km_lookup(ptr, __func__).usable;
}

/* SLOB has no size classes (Linux's had none either). */
size_t slab_size_class_count(void) { return 0; }
size_t slab_size_class(size_t index) { (void)index; return 0; }
slab_cache_t *slab_kmalloc_cache(size_t size) { (void)size; return NULL; }

/* ---- what reap.c, options.c and report.c ask of a backend ---- */

/* No depot, no magazines, no free pages kept per cache. */
size_t depot_reap(struct slab_cache *c, bool all) { (void)c, (void)all; return 0; }
size_t cache_reap_slabs(struct slab_cache *c, bool all) { (void)c, (void)all; return 0; }
void tcache_flush_self_idle(void) {}
#if SLAB_HOSTED
void live_tick(void) {}
#endif

void debug_parse(const char *spec)
{
    if (spec && *spec && !(spec[0] == '0' && !spec[1]) && !(spec[0] == '-' && !spec[1]))
        slab_reportf(SLAB_ERR_INVALID_ARG, "SLAB_DEBUG", NULL, NULL, NULL, 0,
                     "debug mode needs the slab backend (this is SLOB); ignored");
}

bool debug_env_active(void) { return false; }

#if SLAB_HOSTED /* host.c has the freestanding one */
int slab_stats_live(int on)
{
    if (on == 0)
        return 0;
    if (on != 1) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, (size_t)on,
                     "%d is neither 0 nor 1", on);
        errno = EINVAL;
        return -1;
    }
    slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0,
                 "live statistics need the slab backend (this is SLOB)");
    errno = ENOSYS;
    return -1;
}
#endif

/* ---- checking ---- */

#define CORRUPT(ptr, ...)                                                            \
    (problems++, slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", NULL, NULL, (ptr), 0, \
                              __VA_ARGS__))

static size_t verify_page(const struct slab_page *pg, unsigned l)
{
    size_t problems = 0;
    void *addr = page_address(pg);
    if (page_kind(pg) != PG_SLOB || pg->list != l)
        CORRUPT(addr, "slob: page on list %u has kind %u, list %u", l, page_kind(pg), pg->list);
    const slob_t *b = page_units(pg);
    unsigned sum = 0, end = 0;
    bool first = true;
    for (unsigned cur = pg->first_free; cur < SLOB_PAGE_UNITS;) {
        if (b[cur] == 0 || b[cur] > (slob_t)SLOB_PAGE_UNITS) {
            CORRUPT(addr, "slob: free block at unit %u encodes %d", cur, b[cur]);
            break;
        }
        unsigned size = blk_size(b, cur), next = blk_next(b, cur);
        if (!first && cur == end)
            CORRUPT(addr, "slob: free blocks at unit %u not merged with the one before", cur);
        if (cur + size > SLOB_PAGE_UNITS || next < cur + size || next > SLOB_PAGE_UNITS) {
            CORRUPT(addr, "slob: free block at unit %u (%u units) links to %u", cur, size, next);
            break;
        }
        sum += size;
        end = cur + size;
        first = false;
        cur = next;
    }
    if (sum != pg->units_free || sum == 0 || sum >= SLOB_PAGE_UNITS)
        CORRUPT(addr, "slob: page counts %u free units, its free blocks hold %u",
                (unsigned)pg->units_free, sum);
    return problems;
}

size_t slab_verify(void)
{
    size_t problems = 0;
    SLAB_LOCAL(report_no_abort) = true;
    slab_lock(&slob_lock);
    for (unsigned l = 0; l < SLOB_LISTS; l++)
        for (struct slab_page *pg = lists[l]; pg; pg = pg->next)
            problems += verify_page(pg, l);
    slab_unlock(&slob_lock);
    problems += buddy_verify();
    SLAB_LOCAL(report_no_abort) = false;
    return problems;
}

/* ---- the debugging interface (slob.h) ---- */

int slob_page_info(const void *addr, struct slob_page_info *out)
{
    struct slab_page *pg = addr_to_page(addr);
    slab_lock(&slob_lock);
    if (!pg || page_kind(pg) != PG_SLOB) {
        slab_unlock(&slob_lock);
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->page = page_address(pg);
    out->list = pg->list;
    out->units_free = pg->units_free;
    for (struct slab_page *q = lists[pg->list]; q; q = q->next)
        if (q == pg)
            out->listed = true;
    const slob_t *b = page_units(pg);
    for (unsigned cur = pg->first_free; cur < SLOB_PAGE_UNITS; out->nblocks++) {
        if (out->nblocks < SLOB_INFO_BLOCKS) {
            struct slob_block_info *bi = &out->blocks[out->nblocks];
            bi->off = cur;
            bi->units = blk_size(b, cur);
            bi->raw[0] = b[cur];
            bi->raw[1] = bi->units > 1 ? b[cur + 1] : 0;
        }
        unsigned next = blk_next(b, cur);
        if (next <= cur)
            break;
        cur = next;
    }
    slab_unlock(&slob_lock);
    return 0;
}

void slob_list_pages(size_t out[SLOB_LISTS])
{
    slab_lock(&slob_lock);
    for (unsigned l = 0; l < SLOB_LISTS; l++) {
        out[l] = 0;
        for (struct slab_page *pg = lists[l]; pg; pg = pg->next)
            out[l]++;
    }
    slab_unlock(&slob_lock);
}
