/*
 * region.c - memory the program owns, handed to the page allocator.
 *
 * slab_add_region(base, len) is how a kernel or firmware gives libslab
 * its memory (and how any program may give it a static array).  The
 * region is cut at page boundaries and at ARENA_SIZE windows; each
 * window's part becomes an arena of its own whose descriptors are carved
 * from the region itself: ARENA_META_USED bytes at an address aligned to
 * ARENA_META_SIZE, as page_arena() needs.  The region's other pages go
 * to the buddy allocator, which never merges a block across the region's
 * edge (pages outside it never become free) and never gives a region's
 * arena back.  Descriptors of pages outside the region exist, zeroed (not
 * ours, kind PG_NONE), so that a pointer near the region finds nothing.
 *
 * Invariants: a window holds at most one arena, so a window already
 * holding one (an arena of the page source's, or an earlier region) is
 * refused, with a report; nothing of a refused window is touched.
 */
#include "internal.h"

static slab_lock_t region_lock = SLAB_LOCK_INIT;

/* Make an arena over [from, to) of the window at w (page-aligned, inside
 * it); returns the bytes of pages given to the buddy allocator. */
static size_t add_window(uintptr_t w, uintptr_t from, uintptr_t to)
{
    if (map_entry((void *)w)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, "slab_add_region", NULL, NULL, (void *)from, 0,
                     "the %zu KiB window at %p already holds an arena; "
                     "[%p, %p) not added", (size_t)ARENA_SIZE >> 10, (void *)w,
                     (void *)from, (void *)to);
        errno = EEXIST;
        return 0;
    }
    uintptr_t meta = (from + ARENA_META_SIZE - 1) & ~(uintptr_t)(ARENA_META_SIZE - 1);
    size_t first = (from - w) >> PAGE_SHIFT, end = (to - w) >> PAGE_SHIFT;
    size_t meta_first = (meta - w) >> PAGE_SHIFT;
    size_t meta_end = meta_first + (ARENA_META_USED >> PAGE_SHIFT);
    if (meta < from || meta_end > end || meta_end - meta_first >= end - first) {
        slab_reportf(SLAB_ERR_INVALID_ARG, "slab_add_region", NULL, NULL, (void *)from, 0,
                     "[%p, %p) has no room for its page descriptors (%zu KiB at a "
                     "%zu KiB boundary) and pages besides; not added", (void *)from,
                     (void *)to, (size_t)ARENA_META_USED >> 10, (size_t)ARENA_META_SIZE >> 10);
        errno = EINVAL;
        return 0;
    }
    struct slab_arena *a = (struct slab_arena *)meta;
    memset(a, 0, ARENA_META_USED);
    a->base = (char *)w;
    a->region = true;
    a->own_pages = end - first - (meta_end - meta_first);
    a->meta_bytes = ARENA_META_USED;
    if (!map_set((void *)w, ARENA_SIZE, a)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, "slab_add_region", NULL, NULL, (void *)from, 0,
                     "no room in the arena map for the window at %p; not added", (void *)w);
        errno = ENOMEM;
        return 0;
    }
    buddy_add_region(a, first, end, meta_first, meta_end);
    return a->own_pages << PAGE_SHIFT;
}

size_t slab_add_region(void *base, size_t len)
{
    uintptr_t b = (uintptr_t)base;
    if (!base || !len || b + len < b) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, base, len,
                     "[%p, +%zu) is not a region; not added", base, len);
        errno = EINVAL;
        return 0;
    }
    cache_boot();
    uintptr_t from = (b + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
    uintptr_t to = (b + len) & ~(uintptr_t)(PAGE_SIZE - 1);
    if (from >= to) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, base, len,
                     "[%p, +%zu) holds no whole page; not added", base, len);
        errno = EINVAL;
        return 0;
    }
    size_t added = 0;
    int err = 0;
    slab_lock(&region_lock);
    for (uintptr_t w = from & ~(uintptr_t)(ARENA_SIZE - 1); from < to; w += ARENA_SIZE) {
        uintptr_t end = w + ARENA_SIZE < to && w + ARENA_SIZE > w ? w + ARENA_SIZE : to;
        size_t n = add_window(w, from, end);
        if (!n)
            err = errno;
        added += n;
        from = end;
    }
    slab_unlock(&region_lock);
    if (!added)
        errno = err ? err : EINVAL;
    return added;
}
