/*
 * huge.c - allocations too large for the buddy allocator's runs: each is
 * a mapping of its own from the page source, given back on free.
 *
 * A huge mapping starts on an ARENA_SIZE boundary (or a larger requested
 * alignment), so every ARENA_SIZE of address space it covers belongs to
 * it alone; the arena map points each of them at the mapping's
 * descriptor, tagged with MAP_HUGE.  That keeps "address -> owner" O(1)
 * for every allocation, with no header in front of the memory.
 *
 * Invariants: a descriptor is in the map for exactly the granules of its
 * mapping, from huge_alloc() until huge_free(); `bytes` is a multiple of
 * the page size.  The counters are atomic and only for statistics.
 */
#include "internal.h"

#include "annotate.h"


static struct slab_cache huge_cache;
static uint64_t huge_count, huge_bytes;

void huge_boot(void)
{
    cache_create_internal(&huge_cache, "slab_huge", sizeof(struct huge), 8);
}

struct huge *huge_alloc(size_t size, size_t align)
{
    size_t bytes = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (bytes == 0)
        bytes = PAGE_SIZE; /* size 0 (or an overflow, caught below) */
    if (bytes < size) {
        errno = ENOMEM;
        return NULL;
    }
    cache_boot();
    if (unlikely(fault_inject())) {
        errno = ENOMEM;
        return NULL;
    }
    struct huge *h;
    if (cache_alloc_batch(&huge_cache, (void **)&h, 1) != 1)
        return NULL;
    slab_page_source_t src;
    page_source_get(&src);
    char *base = src.map(src.ctx, bytes, align > ARENA_SIZE ? align : ARENA_SIZE);
    if (!base || ((uintptr_t)base & (ARENA_SIZE - 1)) ||
        !map_set(base, bytes, (void *)((uintptr_t)h | MAP_HUGE))) {
        if (base)
            src.unmap(src.ctx, base, bytes);
        cache_free_batch(&huge_cache, (void *const *)&h, 1);
        errno = ENOMEM;
        return NULL;
    }
    h->base = base;
    h->bytes = bytes;
    h->source = src;
    __atomic_fetch_add(&huge_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&huge_bytes, bytes, __ATOMIC_RELAXED);
    return h;
}

void huge_free(struct huge *h)
{
    slab_page_source_t src = h->source;
    char *base = h->base;
    size_t bytes = h->bytes;
    map_set(base, bytes, NULL);
    annotate_expose(base, bytes);
    src.unmap(src.ctx, base, bytes);
    cache_free_batch(&huge_cache, (void *const *)&h, 1);
    __atomic_fetch_sub(&huge_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&huge_bytes, bytes, __ATOMIC_RELAXED);
}

void huge_info(size_t *count, size_t *bytes)
{
    *count = __atomic_load_n(&huge_count, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&huge_bytes, __ATOMIC_RELAXED);
}
