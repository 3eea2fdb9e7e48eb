/*
 * kmalloc.c - general-purpose allocation: size classes, page runs and
 * huge mappings, behind one free() that needs no size.
 *
 *   size <= KM_MAX (32 KiB)        the class's cache (kmalloc.h), through
 *                                  the magazine layer
 *   size <= SLAB_HUGE_THRESHOLD    a run of whole pages from the buddy
 *                                  allocator (buddy.c), its head page
 *                                  descriptor PG_RUN with the page count
 *   larger                         a mapping of its own (huge.c)
 *
 * A class's cache is aligned to the largest power of two dividing its
 * size (at most a page), so power-of-two classes are naturally aligned
 * and an aligned request is met by the first class at least as large
 * whose alignment is enough; larger alignments use runs (buddy blocks are
 * aligned to their size) or huge mappings.
 *
 * Here live the slow paths: making a class's cache on first use, runs
 * and huge mappings, checked frees of everything that is not a slab
 * object, realloc, calloc and aligned allocation.  Out of memory gives
 * NULL with errno ENOMEM after the reclaim callbacks and a reap have had
 * their chance; misuse is reported and changes nothing.
 */
#include "kmalloc.h"


static struct slab_cache *km_caches[KM_CLASSES]; /* published with release */
static slab_lock_t km_lock = SLAB_LOCK_INIT; /* creating a class's cache */

void kmalloc_fork_prepare(void) { slab_lock(&km_lock); }
void kmalloc_fork_parent(void) { slab_unlock(&km_lock); }

static size_t class_size(unsigned i)
{
    if (i <= 8)
        return i == 0 ? 8 : (size_t)16 * i;
    unsigned k = 7 + (i - 9) / 4, j = (i - 9) % 4 + 1;
    return ((size_t)1 << k) + ((size_t)j << (k - 2));
}

/* The largest power of two dividing the class size, at most a page. */
static size_t class_align(unsigned i)
{
    size_t sz = class_size(i), a = sz & -sz;
    return a < PAGE_SIZE ? a : PAGE_SIZE;
}

/* The cache of class i, made on first use; NULL (ENOMEM) if it cannot be. */
static struct slab_cache *class_cache(unsigned i)
{
    struct slab_cache *c = __atomic_load_n(&km_caches[i], __ATOMIC_ACQUIRE);
    if (c)
        return c;
    /* Inside a slab_cache_foreach() callback this thread holds the cache
     * list's lock, which creation needs after km_lock: fail instead. */
    if (cache_walking())
        return NULL;
    slab_lock(&km_lock);
    c = km_caches[i];
    if (!c) {
        static const char *const names[KM_CLASSES] = {
            "kmalloc-8", "kmalloc-16", "kmalloc-32", "kmalloc-48", "kmalloc-64",
            "kmalloc-80", "kmalloc-96", "kmalloc-112", "kmalloc-128", "kmalloc-160",
            "kmalloc-192", "kmalloc-224", "kmalloc-256", "kmalloc-320", "kmalloc-384",
            "kmalloc-448", "kmalloc-512", "kmalloc-640", "kmalloc-768", "kmalloc-896",
            "kmalloc-1k", "kmalloc-1280", "kmalloc-1536", "kmalloc-1792", "kmalloc-2k",
            "kmalloc-2560", "kmalloc-3k", "kmalloc-3584", "kmalloc-4k", "kmalloc-5k",
            "kmalloc-6k", "kmalloc-7k", "kmalloc-8k", "kmalloc-10k", "kmalloc-12k",
            "kmalloc-14k", "kmalloc-16k", "kmalloc-20k", "kmalloc-24k", "kmalloc-28k",
            "kmalloc-32k",
        };
        c = cache_create(names[i], class_size(i), class_align(i), CACHE_KMALLOC, NULL, NULL,
                         NULL, i);
        if (c)
            __atomic_store_n(&km_caches[i], c, __ATOMIC_RELEASE);
    }
    slab_unlock(&km_lock);
    return c;
}

/* ---- runs and huge mappings ---- */

static unsigned log2_floor(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }

static void *large_alloc_once(size_t n, size_t align)
{
    if (n > SLAB_HUGE_THRESHOLD || align > SLAB_HUGE_THRESHOLD) {
        struct huge *h = huge_alloc(n, align);
        return h ? h->base : NULL;
    }
    size_t pages = n ? (n + PAGE_SIZE - 1) >> PAGE_SHIFT : 1;
    unsigned align_order = align > PAGE_SIZE ? log2_floor(align) - PAGE_SHIFT : 0;
    struct slab_page *p = buddy_alloc_run(pages, align_order);
    return p ? page_address(p) : NULL;
}

/* n bytes (any size) aligned to align (a power of two, at least a page
 * or n above KM_MAX), retried once after reclaim. */
static void *large_alloc(size_t n, size_t align)
{
    if (n > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    cache_boot(); /* fork handlers, before any lock is taken */
    void *p = large_alloc_once(n, align);
    if (!p && reap_for_memory())
        p = large_alloc_once(n, align);
    if (!p)
        errno = ENOMEM;
    return annotate_km_alloc(p, n);
}

void km_free_miss(struct slab_cache *c, void *p, const char *function, void *caller)
{
    api_note(function, caller);
    tcache_free_slow(c, p);
}

void *km_alloc_slow(size_t n, void *caller)
{
    api_note("slab_malloc", caller);
    SLAB_LOCAL(slab__call).request = n;
    if (n > KM_MAX)
        return large_alloc(n, PAGE_SIZE);
    struct slab_cache *c = class_cache(km_index(n));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = cache_alloc_fast(c);
    if (p)
        return annotate_km_alloc(p, n);
    p = tcache_alloc_slow(c); /* told as an object of c->size bytes: now n */
    annotate_km_resize(p, c->size, n);
    return p;
}

/* ---- what a pointer is ---- */

enum km_kind { KM_FOREIGN, KM_OBJECT, KM_RUN, KM_HUGE, KM_BAD };

struct km_block {
    enum km_kind kind;
    struct slab_page *page;  /* KM_OBJECT: slab head; KM_RUN: run head */
    struct huge *huge;       /* KM_HUGE */
    size_t usable;           /* bytes usable from p */
};

/* Classify p, reporting (as `function`) anything that cannot be freed. */
static struct km_block km_lookup(const void *p, void *entry, const char *function)
{
    struct km_block b = {KM_BAD, NULL, NULL, 0};
    struct huge *h = huge_of_entry(entry);
    if (!entry) {
        slab_reportf(SLAB_ERR_FOREIGN, function, NULL, NULL, p, 0,
                     "%p was not allocated by libslab; ignored", p);
        b.kind = KM_FOREIGN;
        return b;
    }
    if (h) {
        if (p == h->base) {
            b.kind = KM_HUGE;
            b.huge = h;
            b.usable = h->bytes;
        } else {
            slab_reportf(SLAB_ERR_INTERIOR, function, NULL, NULL, p, 0,
                         "%p is inside the %zu-byte allocation at %p; ignored", p, h->bytes,
                         (void *)h->base);
        }
        return b;
    }
    struct slab_page *s = km_slab_of(p, entry);
    if (s) {
        if (slab_obj_index(s->cache, s, p) < 0) {
            slab_reportf(SLAB_ERR_INTERIOR, function, s->cache, NULL, p, 0,
                         "%p is not the start of an object; ignored", p);
            return b;
        }
        b.kind = KM_OBJECT;
        b.page = s;
        b.usable = cache_usable(s->cache, p);
        return b;
    }
    struct slab_arena *a = entry;
    struct slab_page *pg = &a->pages[((uintptr_t)p & (ARENA_SIZE - 1)) >> PAGE_SHIFT];
    unsigned kind = page_kind(pg);
    if (kind == PG_RUN && ((uintptr_t)p & (PAGE_SIZE - 1)) == 0) {
        b.kind = KM_RUN;
        b.page = pg;
        b.usable = (size_t)pg->run_pages << PAGE_SHIFT;
    } else if (kind == PG_FOREIGN) {
        slab_reportf(SLAB_ERR_FOREIGN, function, NULL, NULL, p, 0,
                     "%p was not allocated by libslab (beside a region); ignored", p);
        b.kind = KM_FOREIGN;
    } else if (kind == PG_FREE) {
        slab_reportf(SLAB_ERR_DOUBLE_FREE, function, NULL, NULL, p, 0,
                     "%p is in free pages (freed already?); ignored", p);
    } else if (kind == PG_PAGES) {
        slab_reportf(SLAB_ERR_BAD_PAGES, function, NULL, NULL, p, 0,
                     "%p is a block from slab_pages_alloc(); free it with slab_pages_free(); "
                     "ignored", p);
    } else {
        slab_reportf(SLAB_ERR_INTERIOR, function, NULL, NULL, p, 0,
                     "%p is not the start of an allocation (inside one, or freed already); "
                     "ignored", p);
    }
    return b;
}

static void km_release(void *p, const struct km_block *b)
{
    if (b->kind == KM_OBJECT) {
        struct slab_cache *c = b->page->cache;
        if (cache_free_fast(c, p))
            annotate_km_free(p); /* only this thread can take it back yet */
        else
            tcache_free_slow(c, p);
    } else if (b->kind == KM_RUN) {
        annotate_km_free(p);
        buddy_free_run(b->page);
    } else if (b->kind == KM_HUGE) {
        annotate_km_free(p);
        huge_free(b->huge);
    }
}

void km_free_slow(void *p, void *entry, const char *function)
{
    if (!p)
        return;
    int saved = errno; /* free() leaves errno alone */
    struct km_block b = km_lookup(p, entry, function);
    km_release(p, &b);
    errno = saved;
}

size_t km_usable_slow(const void *p, void *entry, const char *function)
{
    if (!p)
        return 0;
    return km_lookup(p, entry, function).usable;
}

/* ---- calloc, realloc, aligned ---- */

void *km_calloc(size_t n, size_t size, void *caller)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = km_alloc_at(bytes, caller);
    /* A huge mapping is fresh from the page source, which zeroes. */
    if (p && bytes <= SLAB_HUGE_THRESHOLD)
        memset(p, 0, bytes);
    else
        annotate_defined(p, bytes);
    return p;
}

/* Can b keep serving `size` bytes where it is? */
static bool fits_in_place(const struct km_block *b, size_t size)
{
    switch (b->kind) {
    case KM_OBJECT: {
        const struct slab_cache *c = b->page->cache;
        if (size > c->size || (c->flags & SLAB_DEBUG_FLAGS)) /* debug: always a new object */
            return false;
        /* a class keeps what it would be asked for; other caches keep
         * anything that fits */
        return !(c->flags & CACHE_KMALLOC) || km_index(size) == km_index(c->size);
    }
    case KM_RUN:
        return run_keeps(b->page, size, KM_MAX);
    case KM_HUGE:
        return huge_keeps(b->huge, size);
    default:
        return false;
    }
}

void *km_realloc(void *p, size_t size, const char *function, void *caller)
{
    if (!p)
        return km_alloc_at(size, caller);
    if (size == 0) {
        km_free(p, function);
        return NULL;
    }
    void *entry = map_entry(p);
    struct km_block b = km_lookup(p, entry, function);
    if (b.kind == KM_FOREIGN || b.kind == KM_BAD) {
        errno = EINVAL;
        return NULL;
    }
    if (fits_in_place(&b, size)) {
        /* an object of a cache made by slab_cache_create() stays all the
         * cache's; a kmalloc block is what was asked for */
        if (b.kind != KM_OBJECT || (b.page->cache->flags & CACHE_KMALLOC))
            annotate_km_resize(p, b.usable, size);
        /* A run gives back the pages it no longer needs only now: they
         * are another thread's at once, and the checkers have heard. */
        size_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
        if (b.kind == KM_RUN && pages < b.page->run_pages)
            buddy_shrink_run(b.page, pages);
        return p;
    }
    void *q = km_alloc_at(size, caller);
    if (!q)
        return NULL;
    size_t have = annotate_km_size(p, b.usable); /* usable, unless a tool says less */
    memcpy(q, p, have < size ? have : size);
    api_note(function, caller);
    km_release(p, &b);
    return q;
}

void *km_aligned(size_t align, size_t size, void *caller)
{
    if (align <= 16)
        return km_alloc_at(align > 8 && size < 16 ? 16 : size, caller);
    if (align <= PAGE_SIZE && size <= KM_MAX) {
        unsigned i = km_index(size);
        while (class_align(i) < align)
            i++;
        return km_alloc_at(class_size(i), caller);
    }
    return large_alloc(size, align > PAGE_SIZE ? align : PAGE_SIZE);
}

/* ---- the API ---- */

void *slab_malloc(size_t size) { return km_alloc(size); }
void slab_free(void *ptr)
{
    if (ptr)
        km_free(ptr, __func__);
}
void *slab_calloc(size_t n, size_t size) { return km_calloc(n, size, CALLER); }
void *slab_realloc(void *ptr, size_t size) { return km_realloc(ptr, size, __func__, CALLER); }
/* Unlike the fast paths, this checks that a slab pointer starts an object. */
size_t slab_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    void *entry = map_entry(ptr);
    struct slab_page *s = km_slab_of(ptr, entry);
    if (s && slab_obj_index(s->cache, s, ptr) < 0) {
        slab_reportf(SLAB_ERR_INTERIOR, __func__, s->cache, NULL, ptr, 0,
                     "%p is not the start of an object", ptr);
        return 0;
    }
    size_t usable = s ? cache_usable(s->cache, ptr) : km_usable_slow(ptr, entry, __func__);
    annotate_km_grant(ptr, usable);
    return usable;
}

void *slab_aligned_alloc(size_t align, size_t size)
{
    if (align & (align - 1)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, align,
                     "alignment %zu is not a power of two", align);
        errno = EINVAL;
        return NULL;
    }
    return km_aligned(align, size, CALLER);
}

size_t slab_size_class_count(void) { return KM_CLASSES; }
size_t slab_size_class(size_t index) { return index < KM_CLASSES ? class_size((unsigned)index) : 0; }

slab_cache_t *slab_kmalloc_cache(size_t size)
{
    return size <= KM_MAX ? class_cache(km_index(size)) : NULL;
}
