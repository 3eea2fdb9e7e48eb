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
 * above ARENA_SHIFT.  Lookups (map_entry in internal.h) are lock-free
 * (acquire loads) and safe for any address at all: a pointer libslab
 * never handed out finds nothing.  Entries change only under map_lock;
 * second-level nodes are never freed, so a lookup never touches unmapped
 * metadata.  Besides arenas, the map records kmalloc's huge mappings
 * (tagged entries, one per ARENA_SIZE the mapping covers).  A freestanding
 * build, with no memory to make map nodes from, keeps a short table of
 * windows instead: a host has a few regions, not thousands of arenas.
 */
#include "internal.h"

#include "annotate.h"


static slab_lock_t map_lock = SLAB_LOCK_INIT;

void map_fork_prepare(void) { slab_lock(&map_lock); }
void map_fork_parent(void) { slab_unlock(&map_lock); }

#if !SLAB_HOSTED
/* Freestanding: a table of (window, entry) pairs, filled from the front.
 * An entry set to NULL keeps its pair (a pair is never reused for a
 * different window), so a lookup stops at the first unused pair.  The
 * key is the window's base with the low bit set: the window at address 0
 * is a window like any other. */
struct map_pair slab__map_table[MAP_TABLE];

size_t map_bytes(void) { return 0; }

static struct map_pair *map_pair(uintptr_t w, bool create)
{
    for (unsigned i = 0; i < MAP_TABLE; i++) {
        struct map_pair *p = &slab__map_table[i];
        if (p->key == (w | 1))
            return p;
        if (!p->key) {
            if (!create)
                return NULL;
            p->entry = NULL;
            __atomic_store_n(&p->key, w | 1, __ATOMIC_RELEASE);
            return p;
        }
    }
    return NULL;
}

bool map_set(void *base, size_t size, void *entry)
{
    uintptr_t b = (uintptr_t)base, end = b + size;
    slab_lock(&map_lock);
    size_t free_pairs = 0;
    for (unsigned i = 0; i < MAP_TABLE; i++)
        free_pairs += !slab__map_table[i].key;
    size_t need = 0;
    for (uintptr_t g = b; entry && g < end; g += ARENA_SIZE)
        need += !map_pair(g, false);
    if (need > free_pairs) {
        slab_unlock(&map_lock);
        return false;
    }
    for (uintptr_t g = b; g < end; g += ARENA_SIZE) {
        struct map_pair *p = map_pair(g, entry != NULL);
        if (p)
            __atomic_store_n(&p->entry, entry, __ATOMIC_RELEASE);
    }
    slab_unlock(&map_lock);
    return true;
}
#else
#define L2_BYTES (sizeof(map_slot_t) << MAP_L2_BITS)

map_slot_t *slab__arena_map[(size_t)1 << MAP_L1_BITS];
static size_t nodes_mapped; /* second-level nodes: statistics only */

static map_slot_t *map_node(uintptr_t b, bool create)
{
    size_t i1 = b >> (ARENA_SHIFT + MAP_L2_BITS);
    map_slot_t *l2 = __atomic_load_n(&slab__arena_map[i1], __ATOMIC_RELAXED);
    if (l2 || !create)
        return l2;
    /* Nodes come from the default source: they are never given back,
     * so they must not belong to a source that may go away. */
    const slab_page_source_t *def = slab_default_page_source();
    l2 = def->map(def->ctx, L2_BYTES, PAGE_SIZE);
    if (l2) {
        __atomic_store_n(&slab__arena_map[i1], l2, __ATOMIC_RELEASE);
        __atomic_fetch_add(&nodes_mapped, 1, __ATOMIC_RELAXED);
    }
    return l2;
}

size_t map_bytes(void)
{
    return __atomic_load_n(&nodes_mapped, __ATOMIC_RELAXED) * L2_BYTES;
}

bool map_set(void *base, size_t size, void *entry)
{
    uintptr_t b = (uintptr_t)base, end = b + size;
    slab_lock(&map_lock);
    /* Make every node first, so that a failure changes nothing. */
    for (uintptr_t g = b; entry && g < end; g += ARENA_SIZE) {
        if (!map_node(g, true)) {
            slab_unlock(&map_lock);
            return false;
        }
    }
    for (uintptr_t g = b; g < end; g += ARENA_SIZE) {
        map_slot_t *l2 = map_node(g, false);
        if (l2)
            __atomic_store_n(&l2[(g >> ARENA_SHIFT) & (((size_t)1 << MAP_L2_BITS) - 1)], entry,
                             __ATOMIC_RELEASE);
    }
    slab_unlock(&map_lock);
    return true;
}
#endif

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
        !map_set(base, ARENA_SIZE, a)) {
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
    map_set(base, ARENA_SIZE, NULL);
    annotate_expose(base, ARENA_SIZE);
    src.unmap(src.ctx, base, ARENA_SIZE);
    src.unmap(src.ctx, a, ARENA_META_SIZE);
}
