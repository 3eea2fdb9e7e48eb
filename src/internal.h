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
 *   PG_RUN   heads a run of run_pages pages handed out by kmalloc
 *   PG_SLAB  heads a slab: cache, first object, free bitmap, list links
 *   PG_TAIL  a later page of a slab; page->head points at the PG_SLAB page
 *   PG_FOREIGN  not the arena's: outside the region it was made over, or
 *            holding descriptors (region.c)
 *   PG_SLOB  (SLOB backend) a page carved into units: units_free, first_free,
 *            list (which of the three size lists), list links
 *   PG_SLOB_BIG (SLOB backend) a cache object larger than a page: a buddy
 *            block of 2^order pages, page->cache its cache
 */
#ifndef SLAB_INTERNAL_H
#define SLAB_INTERNAL_H

#include <slab.h>
#include <stdbool.h>
#include <stdint.h>

#include "lock.h"
#include "platform.h"

#define PAGE_SHIFT SLAB_PAGE_SHIFT
#define PAGE_SIZE SLAB_PAGE_SIZE
#define MAX_ORDER SLAB_MAX_ORDER
#define ARENA_SHIFT (PAGE_SHIFT + MAX_ORDER)
#define ARENA_SIZE SLAB_ARENA_SIZE
#define ARENA_PAGES ((size_t)1 << MAX_ORDER)
#define MAX_SLAB_ORDER MAX_ORDER

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum page_kind {
    PG_NONE = 0, PG_FREE, PG_PAGES, PG_SLAB, PG_TAIL, PG_RUN, PG_FOREIGN, PG_SLOB, PG_SLOB_BIG
};

/* Which cache list a slab is on. */
enum slab_list { SL_PARTIAL = 0, SL_FULL, SL_FREE, SL_NR };

struct slab_page {
    struct slab_page *next, *prev; /* free_area[] or a cache's slab list */
    union {
        struct slab_page *head;    /* PG_TAIL: the slab's first page */
        struct slab_cache *cache;  /* PG_SLAB, PG_SLOB_BIG: the owning cache */
    };
    char *s_mem;                   /* PG_SLAB: first object */
    uint64_t *map;                 /* PG_SLAB: free bitmap, 1 = free */
    uint64_t inline_map;           /* PG_SLAB: the bitmap when objs <= 64 */
    union {
        uint32_t inuse;            /* PG_SLAB: objects handed out */
        uint32_t run_pages;        /* PG_RUN: pages in the run */
        uint32_t freed_ms;         /* PG_FREE, dirty: when it was freed */
        uint32_t units_free;       /* PG_SLOB: free units in the page */
    };
    union {
        uint16_t hint;             /* PG_SLAB: no free bit in words < hint */
        uint16_t first_free;       /* PG_SLOB: unit offset of the first free
                                      block, or the page's units: none */
    };
    uint8_t order;                 /* PG_FREE/PG_PAGES/PG_SLAB/PG_SLOB_BIG: block order */
    uint8_t kind;                  /* enum page_kind */
    uint8_t list;                  /* PG_SLAB: enum slab_list; PG_SLOB: size list */
    uint8_t clean;                 /* PG_FREE: pages given back to the source */
    uint16_t slot_id;              /* PG_SLAB/PG_TAIL: the cache's slot id */
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

/* Intrusive doubly linked lists, NULL-terminated, of any struct with
 * `next` and `prev` members (page descriptors, caches, arenas, threads). */
#define dlist_push(head, n)                                                   \
    do {                                                                      \
        (n)->prev = NULL;                                                     \
        (n)->next = (head);                                                   \
        if (head)                                                             \
            (head)->prev = (n);                                               \
        (head) = (n);                                                         \
    } while (0)

#define dlist_del(head, n)                                                    \
    do {                                                                      \
        if ((n)->prev)                                                        \
            (n)->prev->next = (n)->next;                                      \
        else                                                                  \
            (head) = (n)->next;                                               \
        if ((n)->next)                                                        \
            (n)->next->prev = (n)->prev;                                      \
        (n)->next = (n)->prev = NULL;                                         \
    } while (0)

/* A list of page descriptors with its length. */
struct page_list {
    struct slab_page *first;
    size_t count;
};

static inline void page_list_push(struct page_list *l, struct slab_page *p)
{
    dlist_push(l->first, p);
    l->count++;
}

static inline void page_list_del(struct page_list *l, struct slab_page *p)
{
    dlist_del(l->first, p);
    l->count--;
}

/* ---- arena.c: arenas, their descriptors and the address map ---- */

struct slab_arena {
    char *base;                        /* ARENA_SIZE bytes, aligned */
    slab_page_source_t source;         /* where base and this came from */
    struct slab_arena *next, *prev;    /* all arenas (buddy.c's list) */
    size_t free_pages;                 /* pages free in the buddy allocator */
    size_t own_pages;                  /* pages the buddy allocator manages */
    size_t meta_bytes;                 /* what these descriptors cost */
    bool region;                       /* over a program's region: kept */
    struct slab_page pages[ARENA_PAGES];
};

struct slab_arena *arena_create(const slab_page_source_t *src);
void arena_destroy(struct slab_arena *a);
/* The bytes of an arena's descriptor mapping that descriptors occupy. */
#define ARENA_META_USED ((sizeof(struct slab_arena) + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1))

/* The arena map (arena.c): one entry per ARENA_SIZE of address space, a
 * struct slab_arena pointer or, with the low bit set, a struct huge
 * pointer (kmalloc.c's large mappings).  Entries change under map_lock. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define ADDR_BITS 48 /* user-space virtual addresses on 64-bit machines */
#else
#define ADDR_BITS 32
#endif
#define MAP_L2_BITS ((ADDR_BITS - ARENA_SHIFT) / 2)
#define MAP_L1_BITS (ADDR_BITS - ARENA_SHIFT - MAP_L2_BITS)
#define MAP_HUGE 1u

typedef void *map_slot_t; /* accessed with __atomic builtins only */

#if !SLAB_HOSTED
/* Freestanding: a short table instead of the radix map, for the few
 * arenas a host's regions make (no memory to allocate map nodes from). */
#ifndef SLAB_MAP_TABLE
#define SLAB_MAP_TABLE 64 /* windows ever mapped: regions' and huge mappings' */
#endif
#define MAP_TABLE SLAB_MAP_TABLE
struct map_pair {
    uintptr_t key;    /* the window's base (ARENA_SIZE-aligned) | 1; 0: unused */
    map_slot_t entry;
};
extern struct map_pair slab__map_table[MAP_TABLE];

static inline void *map_entry(const void *addr)
{
    uintptr_t key = ((uintptr_t)addr & ~(uintptr_t)(ARENA_SIZE - 1)) | 1;
    for (unsigned i = 0; i < MAP_TABLE; i++) {
        uintptr_t b = __atomic_load_n(&slab__map_table[i].key, __ATOMIC_ACQUIRE);
        if (b == key)
            return __atomic_load_n(&slab__map_table[i].entry, __ATOMIC_ACQUIRE);
        if (!b)
            break;
    }
    return NULL;
}
#else
extern map_slot_t *slab__arena_map[(size_t)1 << MAP_L1_BITS];

/* The map entry covering addr: NULL, an arena, or a tagged huge mapping.
 * Lock-free and safe for any address. */
static inline void *map_entry(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
#if UINTPTR_MAX > 0xFFFFFFFFu
    if (a >> ADDR_BITS)
        return NULL;
#endif
    map_slot_t *l2 = __atomic_load_n(&slab__arena_map[a >> (ARENA_SHIFT + MAP_L2_BITS)],
                                     __ATOMIC_ACQUIRE);
    if (!l2)
        return NULL;
    return __atomic_load_n(&l2[(a >> ARENA_SHIFT) & (((size_t)1 << MAP_L2_BITS) - 1)],
                           __ATOMIC_ACQUIRE);
}
#endif

/* Point the entries of [base, base+size) at `entry` (NULL clears); base
 * is ARENA_SIZE-aligned.  False when a map node cannot be had. */
bool map_set(void *base, size_t size, void *entry);
/* Bytes of second-level map nodes mapped (never given back). */
size_t map_bytes(void);
void map_fork_prepare(void);
void map_fork_parent(void);

/* The arena holding addr, or NULL. */
static inline struct slab_arena *arena_of(const void *addr)
{
    void *e = map_entry(addr);
    return ((uintptr_t)e & MAP_HUGE) ? NULL : (struct slab_arena *)e;
}

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

/* ---- huge.c: allocations mapped one by one from the page source ---- */

struct huge {
    char *base;                 /* ARENA_SIZE-aligned (or more) */
    size_t bytes;               /* mapped, a multiple of the page size */
    slab_page_source_t source;  /* where it goes back */
};

void huge_boot(void);
/* A mapping of at least size bytes aligned to max(align, ARENA_SIZE),
 * registered in the arena map; NULL with errno ENOMEM. */
struct huge *huge_alloc(size_t size, size_t align);
void huge_free(struct huge *h);
void huge_info(size_t *count, size_t *bytes);

static inline struct huge *huge_of_entry(void *entry)
{
    return ((uintptr_t)entry & MAP_HUGE) ? (struct huge *)((uintptr_t)entry & ~(uintptr_t)MAP_HUGE)
                                         : NULL;
}

/* ---- page_source.c ---- */

void page_source_get(slab_page_source_t *out);
void page_source_fork_prepare(void);
void page_source_fork_parent(void);

/* ---- buddy.c: the page allocator ---- */

/* Allocate a block of 2^order pages whose head descriptor is marked
 * `kind`.  NULL with errno ENOMEM when the page source fails. */
struct slab_page *buddy_alloc(unsigned order, unsigned kind);
/* Free a block whose head the caller owns; pages other than the head must
 * already be PG_NONE. */
void buddy_free(struct slab_page *head, unsigned order);
/* A run of `pages` pages (1..ARENA_PAGES) whose first page is aligned to
 * 2^align_order pages, head marked PG_RUN; the rest of the buddy block it
 * was cut from is freed at once.  NULL with errno ENOMEM. */
struct slab_page *buddy_alloc_run(size_t pages, unsigned align_order);
void buddy_free_run(struct slab_page *head);
/* Give back the pages of a run beyond its first `pages`. */
void buddy_shrink_run(struct slab_page *head, size_t pages);
/* Extend a run in place to `pages` if the pages after it are free. */
bool buddy_grow_run(struct slab_page *head, size_t pages);
/* An arena made over a program's region (region.c): link it, then give
 * it its pages, [first, end) at a time; the others are not its to use. */
void buddy_link_region(struct slab_arena *a);
void buddy_add_pages(struct slab_arena *a, size_t first, size_t end);
size_t buddy_verify(void);
/* Decommit free blocks of at least `min_order` not yet given back.
 * Returns the pages decommitted. */
size_t buddy_reap(unsigned min_order);
void buddy_fork_prepare(void);
void buddy_fork_parent(void);

/* realloc in place, for either backend's kmalloc: a run keeps a new size
 * that still needs a run (above small_max, the largest size served from
 * objects, up to SLAB_HUGE_THRESHOLD) if it has the pages or can grow
 * into free ones after it; a huge mapping keeps a size that is still
 * huge, fits, and uses at least half of it. */
static inline bool run_keeps(struct slab_page *run, size_t size, size_t small_max)
{
    if (size <= small_max || size > SLAB_HUGE_THRESHOLD)
        return false;
    size_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
    return pages <= run->run_pages || buddy_grow_run(run, pages);
}

static inline bool huge_keeps(const struct huge *h, size_t size)
{
    return size > SLAB_HUGE_THRESHOLD && size <= h->bytes && size >= h->bytes / 2;
}

/* The buddy allocator's figures for slab_memory_info(), under its lock. */
struct buddy_memory {
    slab_buddy_info_t info;
    size_t dirty_pages;     /* free pages not decommitted */
    size_t run_pages;       /* pages in kmalloc runs */
    size_t block_pages;     /* pages in slab_pages_alloc() blocks */
    size_t meta_bytes;      /* descriptor mappings and region descriptors */
    size_t meta_resident;   /* the part of them descriptors occupy */
};
void buddy_memory(struct buddy_memory *out);

/* ---- slab.c: one slab's layout, objects and bitmap ---- */

struct slab_layout {
    size_t stride;          /* bytes between objects */
    unsigned order;         /* slab = 2^order pages */
    unsigned objs;          /* objects per slab */
    unsigned map_words;     /* bitmap words; on-slab when objs > 64 */
    unsigned colours;       /* number of colour offsets */
    size_t colour_step;     /* bytes between colour offsets */
    uint64_t recip;         /* ceil(2^32 / stride): division by multiplying */
    /* debug caches (debug.c); all 0 otherwise.  Offsets from an object's
     * start: each object sits red_left bytes into its stride-sized slot */
    uint32_t red_left;      /* Z: left red zone, before the object */
    uint32_t right_end;     /* Z: the right red zone ends here */
    uint32_t track_off;     /* U: the object's alloc and free stacks */
    uint32_t size_off;      /* Z in a kmalloc class: the size asked for */
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

/* ---- depot.c: magazines and the depot ---- */

#define MAG_SIZES 6

/* How many objects a magazine holds is not in the magazine: in the depot
 * it is implied by the list (full or empty), in a thread's slot it sits in
 * the slot, so that the fast path touches one line of metadata. */
struct magazine {
    struct magazine *next;  /* depot list */
    uint16_t size;          /* capacity */
    uint8_t size_index;     /* which magazine cache it came from */
    void *objs[];
};

/* The shared magazine with no room: every new slot starts with it. */
extern struct magazine empty_magazine;


struct depot {
    slab_lock_t lock;
    struct magazine *full, *empty;
    size_t nfull, nempty;
    size_t min_full, min_empty;    /* working set: fewest since last update */
    unsigned size_index;           /* magazine size now in use */
    unsigned max_index;            /* the largest it may grow to */
    size_t max_full_objs;          /* objects full magazines may hold */
    uint64_t exchanges, contention;
    uint64_t overflows;            /* full magazines emptied into slabs */
    /* counters of slots that were flushed (thread exit, destroy) */
    uint64_t alloc_hit, alloc_miss, free_hit, free_miss;
    /* allocations and frees that bypassed magazines (atomic) */
    uint64_t direct_allocs, direct_frees;
};

void depot_boot(void);
unsigned depot_initial_size(size_t object_size);
unsigned depot_max_size(size_t object_size);
/* Objects full magazines may hold in a depot of `bytes` (0: no limit). */
size_t depot_max_full_objs(size_t object_size, size_t bytes);
unsigned magazine_rounds(unsigned size_index);
void magazine_free(struct magazine *m);
struct magazine *depot_exchange_full(struct slab_cache *c, struct magazine *give);
struct magazine *depot_exchange_empty(struct slab_cache *c, struct magazine *give);
struct magazine *depot_new_empty(struct slab_cache *c);
/* Take back a slot's magazine holding `rounds` objects. */
void depot_return(struct slab_cache *c, struct magazine *m, unsigned rounds);
size_t depot_reap(struct slab_cache *c, bool all);

/* ---- tcache.c: per-thread magazine slots ---- */

#define TC_CHUNK 64
#define TC_CHUNKS 64
#define TC_NO_ID (TC_CHUNK * TC_CHUNKS) /* chunk[TC_CHUNKS] is always NULL */
/* Ids below TC_RESERVED (chunk 0) belong to the kmalloc size classes, class
 * i having id i, so malloc finds its slot from the size alone. */
#define TC_RESERVED TC_CHUNK

struct mag_slot {
    struct magazine *loaded;
    uint32_t rounds;        /* objects in loaded */
    uint16_t size;          /* loaded->size */
    uint8_t prev_full;      /* prev is always full or empty */
    uint8_t busy;           /* a slow path is changing the slot (fork) */
    struct magazine *prev;
    struct slab_cache *cache;
    /* written by the owning thread only, read by statistics (relaxed) */
    uint64_t alloc_hit, alloc_miss, free_hit, free_miss;
} __attribute__((aligned(64)));

enum { TC_NEW = 0, TC_LIVE, TC_DEAD };

struct tcache {
    /* chunk 0 (the kmalloc classes) sits in the thread's static TLS: its
     * slots' addresses are known without a load */
    struct mag_slot slots0[TC_CHUNK];
    struct mag_slot *chunk[TC_CHUNKS + 1];  /* chunk[0] == slots0 once live */
    struct tcache *next, *prev;
    int state;
};

SLAB_LOCAL_DECLARE(struct tcache, slab__tc);

struct mag_stats {
    uint64_t alloc_hit, alloc_miss, free_hit, free_miss;
};

static inline void counter_inc(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void tcache_boot(void);
/* A free slot id at or above TC_RESERVED, or TC_NO_ID. */
unsigned tcache_id_alloc(void);
void tcache_id_release(struct slab_cache *c);
void *tcache_alloc_slow(struct slab_cache *c);
void tcache_free_slow(struct slab_cache *c, void *obj);
void tcache_flush_cache(struct slab_cache *c);
void tcache_flush_self(struct slab_cache *c);
void tcache_flush_self_idle(void);
void tcache_stats(struct slab_cache *c, struct mag_stats *m);
void tcache_fork_prepare(void);
void tcache_fork_parent(void);
/* In the child: other threads' magazines go back to the depots. */
void tcache_fork_child(void);

/* ---- fault.c: fault injection (options.fault_*) ---- */

/* True when this request for pages should fail as if the page source
 * had.  One relaxed load when fault injection is off. */
bool fault_inject(void);
/* The options changed: start the sequence again. */
void fault_reset(void);

/* ---- reap.c ---- */

/* A coarse monotonic clock (a few ms of resolution, cheap to read). */
uint64_t clock_now_ns(void);
/* Called on slow paths: runs slab_reap() when the interval has passed. */
void reap_tick(void);
/* Give back all that can be: the calling thread's idle magazines, every
 * depot magazine, every free slab, every dirty free page.  Returns
 * magazines, slabs and pages released. */
size_t reap_everything(void);
/* Page source failed: run reclaim callbacks and reap; true if worth retrying. */
bool reap_for_memory(void);

/* ---- options.c ---- */

bool options_magazines(void);
unsigned options_reap_interval_ms(void);
size_t options_depot_bytes(void);
bool options_debug_abort(void);
void options_fault(unsigned *every, unsigned *one_in, uint64_t *seed);
/* SLAB_STATS: 0 off, 1 text, 2 JSON. */
enum { STATS_OFF = 0, STATS_TEXT, STATS_JSON };
int options_stats(void);
/* SLAB_STATS_LIVE (0/1) and SLAB_STATS_LIVE_MS (refresh period, ms). */
int options_stats_live(void);
unsigned options_stats_live_ms(void);

/* ---- cache.c (slob.c in the SLOB backend) ---- */

#ifdef SLAB_BACKEND_SLOB
/* A SLOB cache is a thin descriptor: objects live in the pages shared by
 * every cache (slob.c); counters are under slob.c's lock, reclaim and
 * reclaim_arg under `lock` (reap.c reads them). */
struct slab_cache {
    uint32_t magic;                   /* SLOB_CACHE_MAGIC while it exists */
    slab_lock_t lock;
    size_t size, align;
    size_t units;                     /* SLOB units an object takes */
    slab_flags_t flags;
    slab_ctor_t ctor;
    slab_dtor_t dtor;
    void *arg;
    size_t active;                    /* objects handed out */
    size_t high_mark;
    uint64_t allocs, frees, errors, ctor_failures;
    void (*reclaim)(void *arg);       /* called under memory pressure */
    void *reclaim_arg;
    struct slab_cache *next, *prev;   /* all caches */
    char name[SLAB_NAME_MAX];
};
#else
struct slab_cache {
    unsigned id;                      /* per-thread slot, or TC_NO_ID */
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
    uint64_t allocs_at_reap;          /* allocs when last reaped */
    void (*reclaim)(void *arg);       /* called under memory pressure */
    void *reclaim_arg;
    struct slab_cache *next, *prev;   /* all caches */
    char name[SLAB_NAME_MAX];
    struct depot depot __attribute__((aligned(64)));
};

/* This thread's slot of id `id`, or NULL (no magazines yet, or TC_NO_ID). */
static inline struct mag_slot *tcache_slot_id(unsigned id)
{
    if (id < TC_RESERVED)
        return &SLAB_LOCAL(slab__tc).slots0[id]; /* all zero until the thread registers */
    struct mag_slot *chunk = SLAB_LOCAL(slab__tc).chunk[id / TC_CHUNK];
    return chunk ? &chunk[id % TC_CHUNK] : NULL;
}

static inline struct mag_slot *tcache_slot(const struct slab_cache *c)
{
    return tcache_slot_id(c->id);
}

/* The magazine fast paths (Bonwick & Adams): pop from, or push onto, this
 * thread's loaded magazine for c.  No lock, no atomic read-modify-write,
 * one line of metadata.  NULL / false send the caller to the slow path
 * (tcache_alloc_slow / tcache_free_slow). */
static inline void *slot_alloc_fast(struct mag_slot *s)
{
    if (likely(s != NULL)) {
        unsigned r = s->rounds;
        if (likely(r != 0)) {
            s->rounds = r - 1;
            counter_inc(&s->alloc_hit);
            return s->loaded->objs[r - 1];
        }
    }
    return NULL;
}

static inline bool slot_free_fast(struct mag_slot *s, void *obj)
{
    if (likely(s != NULL)) {
        unsigned r = s->rounds;
        if (likely(r < s->size)) {
            s->loaded->objs[r] = obj;
            /* release: a fork() between the two stores must not let the
             * child see a round it was not given */
            __atomic_store_n(&s->rounds, r + 1, __ATOMIC_RELEASE);
            counter_inc(&s->free_hit);
            return true;
        }
    }
    return false;
}

static inline void *cache_alloc_fast(const struct slab_cache *c)
{
    return slot_alloc_fast(tcache_slot(c));
}

static inline bool cache_free_fast(const struct slab_cache *c, void *obj)
{
    return slot_free_fast(tcache_slot(c), obj);
}

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
 * An offset within a slab is below 2^22, so off * recip >> 32 is exactly
 * off / stride when off is a multiple of stride (and then q * stride ==
 * off), and no q passes that check when it is not. */
static inline long slab_obj_index(const struct slab_cache *c, const struct slab_page *s,
                                  const void *p)
{
    const struct slab_layout *l = &c->layout;
    if ((const char *)p < s->s_mem)
        return -1;
    size_t off = (size_t)((const char *)p - s->s_mem);
    if (off >= (size_t)l->objs * l->stride)
        return -1;
    size_t q = (size_t)(((uint64_t)off * l->recip) >> 32);
    if (q * l->stride != off)
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

#endif /* SLAB_BACKEND_SLOB */

/* The slab layer's paths, in batches: the magazine layer's refill and
 * drain.  alloc returns how many objects it stored (fewer on ENOMEM). */
size_t cache_alloc_batch(struct slab_cache *c, void **out, size_t n);
size_t cache_free_batch(struct slab_cache *c, void *const *objs, size_t n);
/* Set up a cache for libslab's own use (static storage, no magazines, no
 * constructor, no free slab kept). */
void cache_create_internal(struct slab_cache *c, const char *name, size_t size, size_t align);
/* slab_cache_create() with the slot id chosen: TC_NO_ID for none, or a
 * reserved id; anything else picks a free id. */
#define CACHE_ID_AUTO (TC_NO_ID + 1)
slab_cache_t *cache_create(const char *name, size_t size, size_t align, slab_flags_t flags,
                           slab_ctor_t ctor, slab_dtor_t dtor, void *arg, unsigned id);
/* Give back the free slabs of a cache that allocated nothing since the
 * last call (or of any cache, with `all`), and trim the others to their
 * keep limit.  Returns slabs released. */
size_t cache_reap_slabs(struct slab_cache *c, bool all);
void cache_fork_prepare(void);
void cache_fork_parent(void);

/* ---- fork.c (hosted only: a freestanding host has no fork) ---- */

#if SLAB_HOSTED
void fork_boot(void);
#else
static inline void fork_boot(void) {}
#endif

/* Set up libslab's internal caches, once (every API entry does it). */
void cache_boot(void);
/* An internal flag: the cache is a kmalloc size class. */
#define CACHE_KMALLOC 0x80000000U
/* An internal flag: one of libslab's own caches (cache_create_internal). */
#define CACHE_INTERNAL 0x40000000U
void kmalloc_fork_prepare(void);
void kmalloc_fork_parent(void);

/* ---- caches.c: the list of caches and what every backend's share ---- */

/* The flags slab_cache_create() knows, and the alignment without one. */
#define CACHE_KNOWN_FLAGS (SLAB_DEBUG_FLAGS | SLAB_HWCACHE_ALIGN | SLAB_PANIC)
#define CACHE_DEFAULT_ALIGN 8
/* slab_cache_create() fails: report misuse (not ENOMEM), stop for
 * SLAB_PANIC, set errno; returns NULL. */
slab_cache_t *cache_create_fail(const char *name, slab_flags_t flags, int err, const char *why);
/* Check slab_cache_create()'s name, size and *align (failing as above),
 * then set *align to the alignment in force (default, SLAB_HWCACHE_ALIGN). */
bool cache_create_check(const char *name, size_t size, size_t *align, slab_flags_t flags);
/* Is c a cache that exists?  From the backend (cache.c or slob.c);
 * safe for any pointer. */
bool cache_is_live(const struct slab_cache *c);
/* cache_is_live(c), or a report as `function` and errno EINVAL. */
bool cache_check(const slab_cache_t *c, const char *function);
/* Link and unlink a cache on the list of all caches. */
void caches_link(struct slab_cache *c);
void caches_unlink(struct slab_cache *c);
/* Take the list's lock (fork), returning the newest cache; the first
 * cache while it is held; give the lock back. */
struct slab_cache *caches_lock_all(void);
struct slab_cache *caches_first(void);
void caches_unlock_all(void);
/* Walk all caches under the cache-list lock. */
void cache_for_each(void (*fn)(struct slab_cache *c, void *arg), void *arg);
/* Walk all caches (newest first) under the cache-list lock until fn
 * returns non-zero; returns that, or 0.  A walk nested in another on the
 * same thread does not take the lock again.  With a deadline (absolute,
 * CLOCK_REALTIME), gives up with -1 and errno ETIMEDOUT when the lock
 * is not had by then. */
struct timespec;
int cache_walk(int (*fn)(struct slab_cache *c, void *arg), void *arg,
               const struct timespec *deadline);
/* True while this thread is inside a walk (holds the cache-list lock). */
bool cache_walking(void);

/* A cache's figures, from its backend (cache.c or slob.c). */
void cache_stats_fill(struct slab_cache *c, slab_cache_stats_t *out);

/* One cache's figures with its name copied, so that they stay valid
 * whatever happens to the cache afterwards; st.name points at name. */
struct cache_snapshot {
    slab_cache_stats_t st;
    char name[SLAB_NAME_MAX];
};
/* The figures of the caches from the `skip`-th (newest first) on, at most
 * `max` of them, into out[]; returns how many caches there are in all,
 * or (size_t)-1 with errno ETIMEDOUT (deadline as for cache_walk).  The
 * one place a whole-process view (text, JSON, a live view) takes its
 * per-cache figures from. */
size_t cache_snapshot(struct cache_snapshot *out, size_t skip, size_t max,
                      const struct timespec *deadline);

/* ---- stats.c ---- */

/* Register the exit report if SLAB_STATS asks for it; once, cheap after. */
void stats_boot(void);
/* slab_memory_info() with a deadline for the cache-list lock (as
 * cache_walk): 0, or -1 with errno ETIMEDOUT. */
int stats_memory_info(slab_memory_info_t *out, const struct timespec *deadline);

/* ---- live.c: the statistics published for slabtop ---- */

/* Called on slow paths with no lock held: starts publishing when
 * SLAB_STATS_LIVE asks for it (one relaxed load when there is nothing
 * to do). */
/* The library's boot once has completed (called after it).  Freestanding
 * builds publish nothing (no shared memory). */
#if SLAB_HOSTED
void live_tick(void);
void live_boot(void);
#else
static inline void live_tick(void) {}
static inline void live_boot(void) {}
#endif
/* In the child of fork(): forget the parent's object and thread. */
void live_fork_child(void);

/* ---- debug.c: red zones, poison, call stacks, leaks, SLAB_DEBUG ---- */

/* What the API call on a slow path was: set before the slab layer is
 * reached, read (and cleared) by the debug checks for their reports. */
struct api_call {
    const char *function;
    void *caller;           /* return address into the program */
    size_t request;         /* slab_malloc: the size asked for */
};
SLAB_LOCAL_DECLARE(struct api_call, slab__call);

/* The program's return address, in an inline fast path or an API
 * function: evaluated on the slow path only (where it is written), so the
 * fast paths spend nothing on it. */
#define CALLER __builtin_return_address(0)

static inline void api_note(const char *function, void *caller)
{
    SLAB_LOCAL(slab__call) = (struct api_call){function, caller, 0};
}

/* A misuse or damage found, with what the report needs, copied under the
 * cache lock and reported once it is dropped. */
struct obj_error {
    slab_error_kind_t kind;
    const void *ptr;
    const struct slab_cache *owner;  /* SLAB_ERR_WRONG_CACHE */
    const void *object;              /* the object concerned, or NULL */
    long offset;                     /* of ptr or of the damage */
    bool has_alloc, has_free;
    slab_stack_t alloc, free;
};

/* One allocation or free by a debug cache: begin (no lock held: takes
 * the call stack), the locked checks per object, end (no lock: reports). */
#define DEBUG_MAX_ERRORS 4
struct debug_call {
    const char *function;
    size_t request;
    slab_stack_t now;
    unsigned nerr;
    struct obj_error err[DEBUG_MAX_ERRORS];
};

/* SLAB_DEBUG from the environment (options.c reads it once). */
void debug_parse(const char *spec);
/* The switches SLAB_DEBUG gives the cache called `name`. */
slab_flags_t debug_flags_for(const char *name);
/* Whether SLAB_DEBUG asked for anything (cache-less errors then abort). */
bool debug_env_active(void);
/* A cache's layout with its debug geometry: false if no slab order fits. */
bool debug_layout(struct slab_layout *l, size_t size, size_t align, slab_flags_t flags);
void debug_slab_init(const struct slab_cache *c, struct slab_page *s);
void debug_begin(const struct slab_cache *c, struct debug_call *dc, const char *function);
void debug_alloc_locked(struct slab_cache *c, struct slab_page *s, void *obj,
                        struct debug_call *dc);
/* Before obj is marked free (free_target has found it live). */
void debug_free_locked(struct slab_cache *c, void *obj, struct debug_call *dc);
void debug_end(const struct slab_cache *c, struct debug_call *dc);
/* F: the slab's bitmap agrees with its count. */
bool debug_slab_ok(const struct slab_cache *c, const struct slab_page *s);
/* Fill in the object, offset and stacks of an error about p in slab s. */
void debug_error_object(const struct slab_cache *c, const struct slab_page *s,
                        struct obj_error *e);
/* slab_verify(): every object's zones and poison, reported; under c->lock. */
size_t debug_verify_slab(struct slab_cache *c, struct slab_page *s);
/* Live objects of a debug cache, grouped by call site, as SLAB_ERR_LEAK
 * reports (function: "slab_cache_destroy" or "exit").  No lock held. */
size_t debug_report_leaks(struct slab_cache *c, const char *function);
/* L: report the leaks of SLAB_LEAK_AT_EXIT caches at exit (registered once). */
void debug_leaks_at_exit(void);
/* The size asked for, kept after a live object of a Z kmalloc class. */
size_t debug_usable(const struct slab_cache *c, const void *obj);
#ifndef SLAB_BACKEND_SLOB
/* The size usable at obj: what was asked for in a Z kmalloc class. */
static inline size_t cache_usable(const struct slab_cache *c, const void *obj)
{
    if (likely(!c->layout.size_off))
        return c->size;
    return debug_usable(c, obj);
}
#endif

/* ---- format.c: printf without the C library ---- */

int slab_vformat(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int slab_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- host.c (freestanding): the host's hooks ---- */

/* Hand one formatted line to the host's report hook, if any. */
void host_report(const char *line);
/* The host's clock in ns, or 0 if it gave none. */
uint64_t host_clock_ns(void);

/* ---- report.c ---- */

void slab_report(const slab_error_t *err);
/* Report an error about an object (debug caches: object, offset, stacks). */
void report_object(const char *function, const struct slab_cache *c, const struct obj_error *e,
                   size_t count, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* One line (or a few), formatted on the stack and written with write(2)
 * on stderr (freestanding: handed to the host's report hook): no stdio
 * buffer, no malloc. */
void report_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* While set, this thread's reports never abort (slab_verify). */
SLAB_LOCAL_DECLARE(bool, report_no_abort);
void report_fork_prepare(void);
void report_fork_parent(void);
void slab_reportf(slab_error_kind_t kind, const char *function,
                  const struct slab_cache *cache, const struct slab_cache *owner,
                  const void *ptr, size_t count, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif /* SLAB_INTERNAL_H */
