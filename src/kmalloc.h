/*
 * kmalloc.h - the inline fast paths of general-purpose allocation, shared
 * by the kmalloc API (kmalloc.c) and the malloc front (malloc.c).
 *
 * Size classes (KM_CLASSES of them, 8 B to SLAB_KMALLOC_MAX_SIZE):
 *   8, 16, then every 16 B up to 128, then four per power of two:
 *   2^k + j * 2^(k-2) for j = 1..4, k = 7..14 (160, 192, 224, 256, 320...).
 * km_index() maps a request to its class with no table and no loop.
 * Each class is a cache made on first use (kmalloc.c), whose per-thread
 * slot is slot i of chunk 0 for class i: malloc goes from the size to its
 * magazine with no cache pointer, no lock and no once-flag.
 *
 * Free finds what it frees from the address alone: the arena map gives
 * the arena (or a huge mapping), the page descriptor gives the slab and
 * its cache, or a run.  Objects go back through the owning cache's
 * magazine fast path, which trusts the pointer as Linux's kfree does;
 * everything else (runs, huge mappings, pointers that are not ours) goes
 * through km_free_slow(), which checks.
 */
#ifndef SLAB_KMALLOC_H
#define SLAB_KMALLOC_H

#include "internal.h"

#include "annotate.h"

#define KM_CLASSES 41
#define KM_MAX SLAB_KMALLOC_MAX_SIZE

_Static_assert(KM_CLASSES <= TC_RESERVED, "class i uses slot id i");

/* The class serving n bytes, n <= KM_MAX (0 counts as 8). */
static inline unsigned km_index(size_t n)
{
    if (n <= 128)
        return n <= 16 ? (n > 8) : (unsigned)((n + 15) >> 4);
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    return 4 * k - 23 + (unsigned)((n - 1) >> (k - 2));
}

/* caller: the program's return address, where a debug cache's call
 * stacks start. */
void *km_alloc_slow(size_t n, void *caller);
void km_free_slow(void *p, void *entry, const char *function);
/* The slow path of km_free() below for a slab object. */
void km_free_miss(struct slab_cache *c, void *p, const char *function, void *caller);

#define KM_ALLOC_FAST(n)                                                      \
    do {                                                                      \
        if (likely((n) <= KM_MAX)) {                                          \
            void *p_ = slot_alloc_fast(tcache_slot_id(km_index(n)));          \
            if (likely(p_ != NULL))                                           \
                return annotate_km_alloc(p_, (n));                            \
        }                                                                     \
    } while (0)

/* Class i's slot is slot i of chunk 0: no cache pointer is needed until
 * the slow path (an empty slot, as every slot starts, sends it there). */
static inline __attribute__((always_inline)) void *km_alloc(size_t n)
{
    KM_ALLOC_FAST(n);
    return km_alloc_slow(n, CALLER);
}

/* The same, inside libslab's own functions, with the program's return
 * address passed down. */
static inline void *km_alloc_at(size_t n, void *caller)
{
    KM_ALLOC_FAST(n);
    return km_alloc_slow(n, caller);
}

/* The slab page heading the slab that holds p, given p's arena entry,
 * or NULL when p is not in a slab. */
static inline struct slab_page *km_slab_of(const void *p, void *entry)
{
    if (unlikely(!entry || ((uintptr_t)entry & MAP_HUGE)))
        return NULL;
    struct slab_arena *a = entry;
    struct slab_page *pg = &a->pages[((uintptr_t)p & (ARENA_SIZE - 1)) >> PAGE_SHIFT];
    unsigned kind = page_kind(pg);
    if (kind == PG_TAIL)
        return pg->head;
    return kind == PG_SLAB ? pg : NULL;
}

/* Every page of a slab carries its cache's slot id, so the magazine is
 * found from the page descriptor without touching the cache. */
static inline __attribute__((always_inline)) void km_free(void *p, const char *function)
{
    void *entry = map_entry(p);
    if (likely(entry && !((uintptr_t)entry & MAP_HUGE))) {
        struct slab_arena *a = entry;
        struct slab_page *pg = &a->pages[((uintptr_t)p & (ARENA_SIZE - 1)) >> PAGE_SHIFT];
        unsigned kind = page_kind(pg);
        if (likely(kind == PG_SLAB || kind == PG_TAIL)) {
            if (likely(slot_free_fast(tcache_slot_id(pg->slot_id), p)))
                return annotate_km_free(p); /* only this thread can take it back yet */
            km_free_miss(kind == PG_TAIL ? pg->head->cache : pg->cache, p, function, CALLER);
            return;
        }
    }
    km_free_slow(p, entry, function);
}

size_t km_usable_slow(const void *p, void *entry, const char *function);

static inline size_t km_usable(const void *p, const char *function)
{
    void *entry = map_entry(p);
    struct slab_page *s = km_slab_of(p, entry);
    size_t usable = likely(s != NULL) ? cache_usable(s->cache, p) : km_usable_slow(p, entry, function);
    annotate_km_grant(p, usable);
    return usable;
}

void *km_calloc(size_t n, size_t size, void *caller);
void *km_realloc(void *p, size_t size, const char *function, void *caller);
/* align: a power of two. */
void *km_aligned(size_t align, size_t size, void *caller);

#endif /* SLAB_KMALLOC_H */
