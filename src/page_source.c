/*
 * page_source.c - where memory comes from: the only boundary to the OS.
 *
 * The default source maps anonymous memory with mmap, aligned to any
 * power of two by over-mapping and trimming, and decommits with
 * madvise(MADV_DONTNEED).  A program (or a test) may install its own
 * source; each arena keeps a copy of the source it came from, so memory
 * always goes back where it was taken, whatever is current by then.  A
 * freestanding build's default source has nothing to give: its memory
 * comes from the host's regions (region.c).
 */
#include "internal.h"

#if SLAB_HOSTED
#include <sys/mman.h>

static void *mmap_map(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    if (align <= PAGE_SIZE) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    size_t span = size + align - PAGE_SIZE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *aligned = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (aligned > p)
        munmap(p, (size_t)(aligned - p));
    char *end = aligned + size;
    if (p + span > end)
        munmap(end, (size_t)(p + span - end));
    return aligned;
}

static void mmap_unmap(void *ctx, void *addr, size_t size)
{
    (void)ctx;
    munmap(addr, size);
}

static void mmap_decommit(void *ctx, void *addr, size_t size)
{
    (void)ctx;
    madvise(addr, size, MADV_DONTNEED);
}

#define DEFAULT_SOURCE {.map = mmap_map, .unmap = mmap_unmap, .decommit = mmap_decommit}
#else
/* Freestanding: no memory but what the host gives, by slab_add_region()
 * or by a page source of its own. */
static void *none_map(void *ctx, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    return NULL;
}

static void none_unmap(void *ctx, void *addr, size_t size) { (void)ctx, (void)addr, (void)size; }

#define DEFAULT_SOURCE {.map = none_map, .unmap = none_unmap}
#endif

static const slab_page_source_t default_source = DEFAULT_SOURCE;
static slab_lock_t source_lock = SLAB_LOCK_INIT;
static slab_page_source_t current = DEFAULT_SOURCE;

const slab_page_source_t *slab_default_page_source(void)
{
    return &default_source;
}

void slab_set_page_source(const slab_page_source_t *src)
{
    if (src && (!src->map || !src->unmap)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, src, 0,
                     "page source lacks map or unmap; source not changed");
        errno = EINVAL;
        return;
    }
    slab_lock(&source_lock);
    current = src ? *src : default_source;
    slab_unlock(&source_lock);
}

void page_source_get(slab_page_source_t *out)
{
    slab_lock(&source_lock);
    *out = current;
    slab_unlock(&source_lock);
}

void page_source_fork_prepare(void) { slab_lock(&source_lock); }
void page_source_fork_parent(void) { slab_unlock(&source_lock); }
