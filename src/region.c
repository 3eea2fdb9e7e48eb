/*
 * region.c - memory the program owns, handed to the page allocator.
 *
 * slab_add_region(base, len) is how a kernel or firmware gives libslab
 * its memory (and how any program may give it a static array).  The
 * region is cut at page boundaries and at ARENA_SIZE windows; each
 * window's part becomes an arena of its own.  The arenas' descriptors are
 * carved from the region too, ARENA_META_USED bytes each at successive
 * ARENA_META_SIZE boundaries (page_arena() needs that alignment) from the
 * region's start, so that a window the region covers whole stays one
 * top-order block apart from descriptors of a later window that fall in
 * it.  All the region's other pages go to the buddy allocator, which
 * never merges a block across the region's edge (pages outside it never
 * become free) and never gives a region's arena back.  Descriptors of
 * pages outside the region exist, marked PG_FOREIGN, so a pointer near
 * the region is known for what it is.
 *
 * Invariants: a window holds at most one arena, so a region touching a
 * window that holds one already (an earlier region, an arena of the page
 * source) is refused whole, with a report, and nothing of it is touched;
 * so is a region too small for its descriptors and a page besides.
 */
#include "internal.h"

static slab_lock_t region_lock = SLAB_LOCK_INIT;

static size_t reject(void *base, size_t len, int err, const char *why)
{
    slab_reportf(SLAB_ERR_INVALID_ARG, "slab_add_region", NULL, NULL, base, len,
                 "[%p, +%zu): %s; not added", base, len, why);
    errno = err;
    return 0;
}

/* Give pages [from, to) of window w's arena a to the buddy allocator,
 * less those the descriptors [meta, meta + n * ARENA_META_SIZE) use. */
static void add_pages(struct slab_arena *a, uintptr_t from, uintptr_t to, uintptr_t meta,
                      size_t n)
{
    uintptr_t w = (uintptr_t)a->base;
    for (size_t i = 0; i < n && from < to; i++) {
        uintptr_t m = meta + i * ARENA_META_SIZE, m_end = m + ARENA_META_USED;
        if (m_end <= from || m >= to)
            continue;
        if (m > from)
            buddy_add_pages(a, (from - w) >> PAGE_SHIFT, (m - w) >> PAGE_SHIFT);
        from = m_end;
    }
    if (from < to)
        buddy_add_pages(a, (from - w) >> PAGE_SHIFT, (to - w) >> PAGE_SHIFT);
}

size_t slab_add_region(void *base, size_t len)
{
    uintptr_t b = (uintptr_t)base;
    if (!base || !len || b + len < b)
        return reject(base, len, EINVAL, "not a region");
    cache_boot();
    uintptr_t from = (b + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
    uintptr_t to = (b + len) & ~(uintptr_t)(PAGE_SIZE - 1);
    if (from >= to)
        return reject(base, len, EINVAL, "no whole page in it");
    uintptr_t w0 = from & ~(uintptr_t)(ARENA_SIZE - 1);
    size_t windows = (size_t)((to - 1 - w0) / ARENA_SIZE) + 1;
    uintptr_t meta = (from + ARENA_META_SIZE - 1) & ~(uintptr_t)(ARENA_META_SIZE - 1);
    size_t meta_pages = (ARENA_META_USED >> PAGE_SHIFT) * windows;
    if (meta < from || meta + (windows - 1) * ARENA_META_SIZE + ARENA_META_USED > to ||
        ((to - from) >> PAGE_SHIFT) <= meta_pages)
        return reject(base, len, EINVAL, "too small for its page descriptors and a page");

    slab_lock(&region_lock);
    for (size_t i = 0; i < windows; i++) {
        if (map_entry((void *)(w0 + i * ARENA_SIZE))) {
            slab_unlock(&region_lock);
            return reject(base, len, EEXIST, "a window of it holds libslab memory already");
        }
    }
    size_t added = 0;
    for (size_t i = 0; i < windows; i++) {
        uintptr_t w = w0 + i * ARENA_SIZE;
        uintptr_t lo = w > from ? w : from, hi = to - w > ARENA_SIZE ? w + ARENA_SIZE : to;
        struct slab_arena *a = (struct slab_arena *)(meta + i * ARENA_META_SIZE);
        memset(a, 0, ARENA_META_USED);
        for (size_t k = 0; k < ARENA_PAGES; k++)
            a->pages[k].kind = PG_FOREIGN;
        a->base = (char *)w;
        a->region = true;
        a->meta_bytes = ARENA_META_USED;
        if (!map_set((void *)w, ARENA_SIZE, a)) {
            /* the windows before stay added: they are whole arenas */
            slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, (void *)w, 0,
                         "no room in the arena map for the window at %p; the region "
                         "is added up to it", (void *)w);
            errno = ENOMEM;
            break;
        }
        buddy_link_region(a);
        add_pages(a, lo, hi, meta, windows);
        added += a->own_pages << PAGE_SHIFT;
    }
    slab_unlock(&region_lock);
    return added;
}
