/*
 * arena.c - arenas and the map from any address to its arena.
 *
 * An arena is ARENA_SIZE bytes of pages, aligned to ARENA_SIZE, plus a
 * separate mapping (ARENA_META_SIZE, aligned to its size) holding struct
 * slab_arena with one page descriptor per page.  Keeping descriptors out
 * of line keeps the whole arena usable as one top-order buddy block and
 * keeps allocator metadata away from program writes.
 *
 * The arena map is a two-level radix table indexed by the address bits
 * above ARENA_SHIFT.  Lookups are lock-free (acquire loads) and safe for
 * any address at all: a pointer libslab never handed out finds no arena.
 * Entries change only under the buddy allocator's lock; second-level
 * nodes are never freed, so a lookup never touches unmapped metadata
 * for a live object.
 */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#if UINTPTR_MAX > 0xFFFFFFFFu
#define ADDR_BITS 48 /* user-space virtual addresses on 64-bit machines */
#else
#define ADDR_BITS 32
#endif
#define L2_BITS ((ADDR_BITS - ARENA_SHIFT) / 2)
#define L1_BITS (ADDR_BITS - ARENA_SHIFT - L2_BITS)
#define L2_BYTES (sizeof(_Atomic(struct slab_arena *)) << L2_BITS)

typedef _Atomic(struct slab_arena *) arena_slot_t;

static _Atomic(arena_slot_t *) arena_map[(size_t)1 << L1_BITS];

static inline size_t l1_index(uintptr_t a) { return a >> (ARENA_SHIFT + L2_BITS); }
static inline size_t l2_index(uintptr_t a)
{
    return (a >> ARENA_SHIFT) & (((size_t)1 << L2_BITS) - 1);
}

struct slab_arena *arena_of(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
#if ADDR_BITS < 32 || UINTPTR_MAX > 0xFFFFFFFFu
    if (a >> ADDR_BITS)
        return NULL;
#endif
    arena_slot_t *l2 = atomic_load_explicit(&arena_map[l1_index(a)], memory_order_acquire);
    if (!l2)
        return NULL;
    return atomic_load_explicit(&l2[l2_index(a)], memory_order_acquire);
}

/* Point the map entry for `base` at `a` (NULL clears).  Caller holds the
 * buddy lock.  Fails only when a second-level node cannot be mapped. */
static bool arena_map_set(char *base, struct slab_arena *a)
{
    uintptr_t b = (uintptr_t)base;
    arena_slot_t *l2 = atomic_load_explicit(&arena_map[l1_index(b)], memory_order_relaxed);
    if (!l2) {
        if (!a)
            return true;
        /* Nodes come from the default source: they are never given back,
         * so they must not belong to a source that may go away. */
        const slab_page_source_t *def = slab_default_page_source();
        l2 = def->map(def->ctx, L2_BYTES, PAGE_SIZE);
        if (!l2)
            return false;
        atomic_store_explicit(&arena_map[l1_index(b)], l2, memory_order_release);
    }
    atomic_store_explicit(&l2[l2_index(b)], a, memory_order_release);
    return true;
}

struct slab_arena *arena_create(const slab_page_source_t *src)
{
    char *base = src->map(src->ctx, ARENA_SIZE, ARENA_SIZE);
    if (!base) {
        errno = ENOMEM;
        return NULL;
    }
    struct slab_arena *a = src->map(src->ctx, ARENA_META_SIZE, ARENA_META_SIZE);
    if (!a) {
        src->unmap(src->ctx, base, ARENA_SIZE);
        errno = ENOMEM;
        return NULL;
    }
    /* Sources promise zeroed memory, but a descriptor array that is not
     * zero would be silently fatal: make sure. */
    memset(a, 0, sizeof *a);
    a->base = base;
    a->source = *src;
    if (((uintptr_t)base & (ARENA_SIZE - 1)) || ((uintptr_t)a & (ARENA_META_SIZE - 1)) ||
        !arena_map_set(base, a)) {
        src->unmap(src->ctx, a, ARENA_META_SIZE);
        src->unmap(src->ctx, base, ARENA_SIZE);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

void arena_destroy(struct slab_arena *a)
{
    slab_page_source_t src = a->source;
    char *base = a->base;
    arena_map_set(base, NULL);
    src.unmap(src.ctx, base, ARENA_SIZE);
    src.unmap(src.ctx, a, ARENA_META_SIZE);
}
