/*
 * internal.h - the shapes shared by libslab's layers.
 *
 * Memory comes in arenas of SLAB_ARENA_SIZE bytes, aligned to their size.
 * Each arena has an out-of-line array of page descriptors (struct
 * slab_page, one per 4 KiB page, like Linux's struct page), kept in a
 * separate mapping aligned to its own power-of-two size, so that
 *
 *     address -> arena            (arena map: two loads, see arena.c)
 *     arena   -> page descriptor  (index by page number)
 *     page descriptor -> arena    (mask the descriptor's address)
 *
 * are all O(1) and no header ever sits in front of an object.
 *
 * A page descriptor is in exactly one of these states (page->kind):
 *   PG_NONE  not the head of any block (inside a free or allocated block)
 *   PG_FREE  heads a free buddy block of 2^order pages, on free_area[order]
 *   PG_PAGES heads a block handed out by slab_pages_alloc()
 *   PG_SLAB  heads a slab: cache, first object, free bitmap, list links
 *   PG_TAIL  a later page of a slab; page->head points at the PG_SLAB page
 */
#ifndef SLAB_INTERNAL_H
#define SLAB_INTERNAL_H

#include <slab.h>
#include <stdbool.h>
#include <stdint.h>

#include "lock.h"

#define PAGE_SHIFT SLAB_PAGE_SHIFT
#define PAGE_SIZE SLAB_PAGE_SIZE
#define MAX_ORDER SLAB_MAX_ORDER
#define ARENA_SHIFT (PAGE_SHIFT + MAX_ORDER)
#define ARENA_SIZE SLAB_ARENA_SIZE
#define ARENA_PAGES ((size_t)1 << MAX_ORDER)
#define MAX_SLAB_ORDER MAX_ORDER

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum page_kind { PG_NONE = 0, PG_FREE, PG_PAGES, PG_SLAB, PG_TAIL };

/* Which cache list a slab is on. */
enum slab_list { SL_PARTIAL = 0, SL_FULL, SL_FREE, SL_NR };

struct slab_page {
    struct slab_page *next, *prev; /* free_area[] or a cache's slab list */
    union {
        struct slab_page *head;    /* PG_TAIL: the slab's first page */
        struct slab_cache *cache;  /* PG_SLAB: the owning cache */
    };
    char *s_mem;                   /* PG_SLAB: first object */
    uint64_t *map;                 /* PG_SLAB: free bitmap, 1 = free */
    uint64_t inline_map;           /* PG_SLAB: the bitmap when objs <= 64 */
    uint32_t inuse;                /* PG_SLAB: objects handed out */
    uint16_t hint;                 /* PG_SLAB: no free bit in words < hint */
    uint8_t order;                 /* PG_FREE/PG_PAGES/PG_SLAB: block order */
    uint8_t kind;                  /* enum page_kind */
    uint8_t list;                  /* PG_SLAB: enum slab_list */
};

/* `kind` is read without the buddy lock when the buddy allocator looks at
 * a neighbouring block, so it is accessed atomically (relaxed). */
static inline unsigned page_kind(const struct slab_page *p)
{
    return __atomic_load_n(&p->kind, __ATOMIC_RELAXED);
}

static inline void page_set_kind(struct slab_page *p, unsigned kind)
{
    __atomic_store_n(&p->kind, (uint8_t)kind, __ATOMIC_RELAXED);
}

/* A doubly linked list of page descriptors, NULL-terminated. */
struct page_list {
    struct slab_page *first;
    size_t count;
};

static inline void page_list_push(struct page_list *l, struct slab_page *p)
{
    p->prev = NULL;
    p->next = l->first;
    if (l->first)
        l->first->prev = p;
    l->first = p;
    l->count++;
}

static inline void page_list_del(struct page_list *l, struct slab_page *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    l->count--;
}

/* ---- arena.c: arenas, their descriptors and the address map ---- */

struct slab_arena {
    char *base;                        /* ARENA_SIZE bytes, aligned */
    slab_page_source_t source;         /* where base and this came from */
    struct slab_arena *next, *prev;    /* all arenas (buddy.c's list) */
    size_t free_pages;                 /* pages free in the buddy allocator */
    bool decommitted;                  /* wholly free and given back */
    struct slab_page pages[ARENA_PAGES];
};

struct slab_arena *arena_create(const slab_page_source_t *src);
void arena_destroy(struct slab_arena *a);
struct slab_arena *arena_of(const void *addr);

/* The descriptor mapping's size and alignment: a power of two. */
#define ARENA_META_SIZE ((size_t)128 << 10)
_Static_assert(sizeof(struct slab_arena) <= ARENA_META_SIZE, "arena metadata");

static inline struct slab_arena *page_arena(const struct slab_page *p)
{
    return (struct slab_arena *)((uintptr_t)p & ~(uintptr_t)(ARENA_META_SIZE - 1));
}

static inline size_t page_index(const struct slab_page *p)
{
    return (size_t)(p - page_arena(p)->pages);
}

static inline char *page_address(const struct slab_page *p)
{
    return page_arena(p)->base + (page_index(p) << PAGE_SHIFT);
}

/* The descriptor of the page holding addr, or NULL if not ours. */
static inline struct slab_page *addr_to_page(const void *addr)
{
    struct slab_arena *a = arena_of(addr);
    if (!a)
        return NULL;
    return &a->pages[((uintptr_t)addr - (uintptr_t)a->base) >> PAGE_SHIFT];
}

/* ---- page_source.c ---- */

void page_source_get(slab_page_source_t *out);

/* ---- buddy.c: the page allocator ---- */

/* Allocate a block of 2^order pages whose head descriptor is marked
 * `kind`.  NULL with errno ENOMEM when the page source fails. */
struct slab_page *buddy_alloc(unsigned order, unsigned kind);
/* Free a block whose head the caller owns; pages other than the head must
 * already be PG_NONE. */
void buddy_free(struct slab_page *head, unsigned order);
size_t buddy_verify(void);

/* ---- slab.c: one slab's layout, objects and bitmap ---- */

struct slab_layout {
    size_t stride;          /* bytes between objects */
    unsigned order;         /* slab = 2^order pages */
    unsigned objs;          /* objects per slab */
    unsigned map_words;     /* bitmap words; on-slab when objs > 64 */
    unsigned colours;       /* number of colour offsets */
    size_t colour_step;     /* bytes between colour offsets */
};

bool slab_layout_compute(struct slab_layout *l, size_t size, size_t align);
/* A new slab with every object constructed, or NULL with errno ENOMEM
 * (*ctor_failed tells whether the constructor refused). */
struct slab_page *slab_create(struct slab_cache *c, unsigned colour, bool *ctor_failed);
/* Destruct every object and give the pages back; all objects are free. */
void slab_release(struct slab_cache *c, struct slab_page *s);
size_t slab_verify_one(const struct slab_cache *c, struct slab_page *s);
/* The small, hot operations on one slab (slab_take, slab_put,
 * slab_obj_index, slab_is_free) follow struct slab_cache below. */

/* ---- cache.c ---- */

struct slab_cache {
    slab_lock_t lock;
    struct page_list lists[SL_NR];    /* partial, full, free slabs */
    struct slab_layout layout;
    size_t size, align;
    slab_flags_t flags;
    slab_ctor_t ctor;
    slab_dtor_t dtor;
    void *arg;
    unsigned colour_next;
    size_t keep_free;                 /* free slabs kept before release */
    size_t active;                    /* objects handed out */
    size_t total;                     /* objects in all slabs */
    size_t high_mark;
    uint64_t allocs, frees, grown, reaped, errors, ctor_failures;
    struct slab_cache *next, *prev;   /* all caches */
    char name[SLAB_NAME_MAX];
};

/* Take the lowest free object of a slab that has one. */
static inline void *slab_take(const struct slab_cache *c, struct slab_page *s)
{
    uint64_t *map = s->map;
    size_t w = s->hint;
    while (!map[w])
        w++;
    unsigned bit = (unsigned)__builtin_ctzll(map[w]);
    map[w] &= map[w] - 1;
    s->hint = (uint16_t)w;
    s->inuse++;
    return s->s_mem + (w * 64 + bit) * c->layout.stride;
}

/* The object index of p in slab s, or -1 if p is not an object start.
 * Offsets within a slab fit in 32 bits, and 32-bit division is cheap. */
static inline long slab_obj_index(const struct slab_cache *c, const struct slab_page *s,
                                  const void *p)
{
    const struct slab_layout *l = &c->layout;
    if ((const char *)p < s->s_mem)
        return -1;
    size_t off = (size_t)((const char *)p - s->s_mem);
    if (off >= (size_t)l->objs * l->stride)
        return -1;
    uint32_t q = (uint32_t)off / (uint32_t)l->stride;
    if ((uint32_t)off - q * (uint32_t)l->stride)
        return -1;
    return (long)q;
}

static inline bool slab_is_free(const struct slab_page *s, size_t idx)
{
    return (s->map[idx / 64] >> (idx % 64)) & 1;
}

/* Mark object idx free again. */
static inline void slab_put(struct slab_page *s, size_t idx)
{
    s->map[idx / 64] |= (uint64_t)1 << (idx % 64);
    if (idx / 64 < s->hint)
        s->hint = (uint16_t)(idx / 64);
    s->inuse--;
}

/* The slab layer's paths, in batches: the magazine layer's refill and
 * drain.  alloc returns how many objects it stored (fewer on ENOMEM). */
size_t cache_alloc_batch(struct slab_cache *c, void **out, size_t n);
void cache_free_batch(struct slab_cache *c, void *const *objs, size_t n);

/* Walk all caches under the cache-list lock. */
void cache_for_each(void (*fn)(struct slab_cache *c, void *arg), void *arg);

/* ---- report.c ---- */

void slab_report(const slab_error_t *err);
void slab_reportf(slab_error_kind_t kind, const char *function,
                  const struct slab_cache *cache, const struct slab_cache *owner,
                  const void *ptr, size_t count, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif /* SLAB_INTERNAL_H */
