/*
 * buddy.c - the page allocator: a binary buddy system over arenas.
 *
 * Free blocks of 2^order pages (order 0..MAX_ORDER) sit on free_area[order];
 * a block is always aligned to its own size within its arena, so its
 * buddy is found by flipping bit `order` of its page index.  Allocation
 * takes the smallest free block that fits and splits it, pushing the
 * upper halves onto the lower orders; freeing merges with the buddy for
 * as long as the buddy is a free block of the same order.
 *
 * Invariants (checked by buddy_verify):
 *   - a descriptor is PG_FREE iff it heads a block on free_area[its order];
 *   - no free block has a free buddy of the same order (all merged);
 *   - each arena's free_pages is the sum of its free blocks;
 *   - a top-order free block is a wholly free arena.  At most one such
 *     arena, plus one per eight arenas in use, is kept (see
 *     release_spares_locked); any other goes back to its source at once;
 *   - a free block marked clean has been decommitted since it was last
 *     used (a free decommits blocks left dirty for PURGE_DELAY_MS;
 *     buddy_reap decommits every dirty block at once);
 *   - dirty_pages is the sum of the free blocks not marked clean;
 *   - run_pages is the sum of the page counts of PG_RUN blocks, and
 *     block_pages of the sizes of PG_PAGES blocks (for statistics).
 *
 * Runs (kmalloc's page-granular allocations) start as a whole buddy block,
 * as Linux's kmalloc_large does: the pages a program does not touch cost
 * address space, not memory, and keeping the block whole keeps the heap
 * from fragmenting into tails too short for the next large request (an
 * earlier version gave tails back at once, as alloc_pages_exact does, and
 * needed twice the arenas for mixed large sizes).  A run can shrink in
 * place (realloc), giving its tail back as the fewest aligned blocks, and
 * grow in place when the pages after it are free.
 *
 * All state here is under buddy_lock.  New arenas come from the page
 * source current at the time.  Arenas over a program's region (region.c)
 * hold only the region's pages: the others never become free blocks, so
 * no block ever merges across the region's edge, and they are never
 * given back.
 */
#include "internal.h"

#include "annotate.h"


/* Dirty free pages are decommitted once they have stayed free for
 * PURGE_DELAY_MS: memory a program reuses soon is never given back (no
 * page faults), memory it stopped using is, whatever the block size.
 * Frees look for such blocks at most every PURGE_INTERVAL_MS. */
#define PURGE_DELAY_MS 250u
#define PURGE_INTERVAL_MS 25u

static slab_lock_t buddy_lock = SLAB_LOCK_INIT;
/* Free blocks by order, dirty ([0]) and clean ([1]) apart: allocation
 * reuses dirty pages first (no page faults), a purge takes dirty ones. */
static struct page_list free_area[MAX_ORDER + 1][2];
static struct slab_arena *arenas;
static size_t nr_arenas;
/* Sums over the arenas of own_pages and meta_bytes, and of the part of
 * meta_bytes that descriptors occupy. */
static size_t total_pages, meta_bytes, meta_resident;

static void arena_link(struct slab_arena *a)
{
    dlist_push(arenas, a);
    nr_arenas++;
    total_pages += a->own_pages;
    meta_bytes += a->meta_bytes;
    meta_resident += a->region ? a->meta_bytes : ARENA_META_USED;
}

static void arena_unlink(struct slab_arena *a)
{
    dlist_del(arenas, a);
    nr_arenas--;
    total_pages -= a->own_pages;
    meta_bytes -= a->meta_bytes;
    meta_resident -= a->region ? a->meta_bytes : ARENA_META_USED;
}

/* Pages in free blocks not marked clean: what a purge could give back. */
static size_t dirty_pages;
static uint32_t last_purge_ms;
/* Pages handed out as kmalloc runs and as slab_pages_alloc() blocks. */
static size_t run_pages, block_pages;

static void free_block_push(struct slab_page *p, unsigned order, bool clean)
{
    if (!clean)
        dirty_pages += (size_t)1 << order;
    p->order = (uint8_t)order;
    p->clean = clean;
    page_set_kind(p, PG_FREE);
    page_list_push(&free_area[order][clean], p);
}

static void free_block_del(struct slab_page *p)
{
    if (!p->clean)
        dirty_pages -= (size_t)1 << p->order;
    page_list_del(&free_area[p->order][p->clean], p);
}

static size_t free_blocks(unsigned order)
{
    return free_area[order][0].count + free_area[order][1].count;
}

/* Give a free block's pages back to the source (they stay mapped). */
static size_t decommit_block(struct slab_page *p)
{
    struct slab_arena *a = page_arena(p);
    if (p->clean || !a->source.decommit)
        return 0;
    unsigned order = p->order;
    free_block_del(p);
    a->source.decommit(a->source.ctx, page_address(p), PAGE_SIZE << order);
    free_block_push(p, order, true);
    return (size_t)1 << order;
}

static bool grow_locked(void)
{
    slab_page_source_t src;
    page_source_get(&src);
    struct slab_arena *a = arena_create(&src);
    if (!a)
        return false;
    a->own_pages = ARENA_PAGES;
    a->meta_bytes = ARENA_META_SIZE;
    arena_link(a);
    a->free_pages = ARENA_PAGES;
    free_block_push(&a->pages[0], MAX_ORDER, true);
    return true;
}

struct slab_page *buddy_alloc(unsigned order, unsigned kind)
{
    if (order > MAX_ORDER) {
        errno = EINVAL;
        return NULL;
    }
    if (unlikely(fault_inject())) {
        errno = ENOMEM;
        return NULL;
    }
    slab_lock(&buddy_lock);
    /* The smallest block that fits (splitting less keeps large blocks
     * whole); of that order, a dirty one first: its pages are resident. */
    unsigned o = order;
    while (o <= MAX_ORDER && !free_blocks(o))
        o++;
    if (o > MAX_ORDER) {
        if (!grow_locked()) {
            slab_unlock(&buddy_lock);
            errno = ENOMEM;
            return NULL;
        }
        o = MAX_ORDER;
    }
    struct slab_page *p = free_area[o][0].first ? free_area[o][0].first : free_area[o][1].first;
    free_block_del(p);
    struct slab_arena *a = page_arena(p);
    a->free_pages -= (size_t)1 << order;
    while (o > order) {
        o--;
        free_block_push(p + ((size_t)1 << o), o, p->clean);
        p[(size_t)1 << o].freed_ms = p->freed_ms;
    }
    p->order = (uint8_t)order;
    page_set_kind(p, kind);
    if (kind == PG_RUN)
        run_pages += (size_t)1 << order; /* a run starts as the whole block */
    else if (kind == PG_PAGES)
        block_pages += (size_t)1 << order;
    slab_unlock(&buddy_lock);
    annotate_pages(page_address(p), PAGE_SIZE << order);
    return p;
}

/* Decommit dirty blocks of min_order and up that became free at or
 * before `cutoff` (ms, wrapping).  Returns the pages decommitted. */
static size_t purge_locked(unsigned min_order, uint32_t cutoff)
{
    size_t pages = 0;
    for (unsigned o = min_order; o <= MAX_ORDER; o++) {
        for (struct slab_page *p = free_area[o][0].first, *next; p; p = next) {
            next = p->next;
            if ((int32_t)(cutoff - p->freed_ms) >= 0)
                pages += decommit_block(p);
        }
    }
    return pages;
}

static uint32_t now_ms(void) { return (uint32_t)(clock_now_ns() / 1000000u); }

/* Wholly free arenas kept mapped for reuse: one, and one more per eight
 * arenas in use, so that a large heap whose use swings by a few arenas
 * does not unmap and fault them in again and again.  They stay dirty
 * until the purge decommits them like any other free block; any beyond
 * that number go back to their source at once (clean ones first). */
static struct slab_page *spare_block(void)
{
    for (int clean = 1; clean >= 0; clean--)
        for (struct slab_page *b = free_area[MAX_ORDER][clean].first; b; b = b->next)
            if (!page_arena(b)->region) /* a region is the program's to keep */
                return b;
    return NULL;
}

static void release_spares_locked(void)
{
    while (free_blocks(MAX_ORDER) > 1 + (nr_arenas - free_blocks(MAX_ORDER)) / 8) {
        struct slab_page *b = spare_block();
        if (!b)
            break;
        free_block_del(b);
        struct slab_arena *a = page_arena(b);
        arena_unlink(a);
        arena_destroy(a);
    }
}

/* Free a block whose pages were in use: the merged block is dirty. */
static void buddy_free_locked(struct slab_page *p, unsigned order)
{
    struct slab_arena *a = page_arena(p);
    size_t idx = (size_t)(p - a->pages);
    page_set_kind(p, PG_NONE);
    a->free_pages += (size_t)1 << order;
    while (order < MAX_ORDER) {
        struct slab_page *b = &a->pages[idx ^ ((size_t)1 << order)];
        if (page_kind(b) != PG_FREE || b->order != order)
            break;
        free_block_del(b);
        page_set_kind(b, PG_NONE);
        idx &= ~((size_t)1 << order);
        order++;
    }
    struct slab_page *head = &a->pages[idx];
    free_block_push(head, order, false);
    uint32_t now = now_ms();
    head->freed_ms = now;
    if (order == MAX_ORDER)
        release_spares_locked();
    if (now - last_purge_ms >= PURGE_INTERVAL_MS) {
        last_purge_ms = now;
        purge_locked(0, now - PURGE_DELAY_MS);
    }
}

/* ---- runs: blocks of any number of pages, for kmalloc ---- */

/* The order of the largest aligned block that starts at page idx and
 * ends at or before page end. */
static unsigned fit_order(size_t idx, size_t end)
{
    unsigned o = 0;
    while (o < MAX_ORDER && !(idx & ((size_t)1 << o)) && idx + ((size_t)2 << o) <= end)
        o++;
    return o;
}

/* Free pages [idx, end) of arena a (all PG_NONE but possibly the first),
 * as the fewest aligned blocks; each merges with its free buddies.  The
 * arena may be gone afterwards, when this completes it. */
static void free_range_locked(struct slab_arena *a, size_t idx, size_t end)
{
    while (idx < end) {
        unsigned o = fit_order(idx, end);
        size_t next = idx + ((size_t)1 << o);
        bool last = next >= end;
        buddy_free_locked(&a->pages[idx], o);
        if (last)
            break;
        idx = next;
    }
}

static unsigned order_for(size_t pages)
{
    unsigned o = 0;
    while (((size_t)1 << o) < pages)
        o++;
    return o;
}

void buddy_free_run(struct slab_page *head)
{
    struct slab_arena *a = page_arena(head);
    size_t idx = page_index(head);
    slab_lock(&buddy_lock);
    run_pages -= head->run_pages;
    free_range_locked(a, idx, idx + head->run_pages);
    slab_unlock(&buddy_lock);
}

void buddy_shrink_run(struct slab_page *head, size_t pages)
{
    size_t idx = page_index(head);
    slab_lock(&buddy_lock);
    if (pages && pages < head->run_pages) {
        size_t end = idx + head->run_pages;
        run_pages -= head->run_pages - pages;
        head->run_pages = (uint32_t)pages;
        free_range_locked(page_arena(head), idx + pages, end);
    }
    slab_unlock(&buddy_lock);
}

/* The free block holding page idx of arena a, or NULL. */
static struct slab_page *free_block_at(struct slab_arena *a, size_t idx)
{
    for (unsigned o = 0; o <= MAX_ORDER; o++) {
        struct slab_page *h = &a->pages[idx & ~(((size_t)1 << o) - 1)];
        if (page_kind(h) == PG_FREE && h->order == o)
            return h;
    }
    return NULL;
}

/* Push the pages [idx, end) of a block just taken off its list back as
 * free blocks.  They cannot merge: each one's buddy lies in the block. */
static void push_range_locked(struct slab_arena *a, size_t idx, size_t end, bool clean,
                              uint32_t freed_ms)
{
    while (idx < end) {
        unsigned o = fit_order(idx, end);
        free_block_push(&a->pages[idx], o, clean);
        a->pages[idx].freed_ms = freed_ms;
        idx += (size_t)1 << o;
    }
}

/* Are pages [from, end) of arena a all inside free blocks? */
static bool range_free_locked(struct slab_arena *a, size_t from, size_t end)
{
    for (size_t q = from; q < end;) {
        struct slab_page *b = free_block_at(a, q);
        if (!b)
            return false;
        q = page_index(b) + ((size_t)1 << b->order);
    }
    return true;
}

/* Take pages [from, end), all free, out of the blocks holding them; what
 * else those blocks held stays free. */
static void range_take_locked(struct slab_arena *a, size_t from, size_t end)
{
    for (size_t q = from; q < end;) {
        struct slab_page *b = free_block_at(a, q);
        size_t bidx = page_index(b), bend = bidx + ((size_t)1 << b->order);
        bool clean = b->clean;
        uint32_t freed_ms = b->freed_ms;
        free_block_del(b);
        page_set_kind(b, PG_NONE);
        a->free_pages -= bend - bidx;
        push_range_locked(a, bidx, q, clean, freed_ms);
        size_t upto = bend < end ? bend : end;
        push_range_locked(a, upto, bend, clean, freed_ms);
        a->free_pages += (q - bidx) + (bend - upto);
        q = upto;
    }
}

bool buddy_grow_run(struct slab_page *head, size_t pages)
{
    struct slab_arena *a = page_arena(head);
    size_t idx = page_index(head), end = idx + pages;
    if (end > ARENA_PAGES)
        return false;
    slab_lock(&buddy_lock);
    bool ok = range_free_locked(a, idx + head->run_pages, end);
    if (ok) {
        range_take_locked(a, idx + head->run_pages, end);
        run_pages += pages - head->run_pages;
        head->run_pages = (uint32_t)pages;
    }
    slab_unlock(&buddy_lock);
    return ok;
}

struct slab_page *buddy_alloc_run(size_t pages, unsigned align_order)
{
    unsigned order = order_for(pages);
    if (align_order > order)
        order = align_order;
    if (pages == 0 || order > MAX_ORDER) {
        errno = EINVAL;
        return NULL;
    }
    struct slab_page *p = buddy_alloc(order, PG_RUN);
    if (p)
        p->run_pages = (uint32_t)1 << order;
    return p;
}

size_t buddy_reap(unsigned min_order)
{
    slab_lock(&buddy_lock);
    size_t pages = purge_locked(min_order, now_ms());
    slab_unlock(&buddy_lock);
    return pages;
}

void buddy_link_region(struct slab_arena *a)
{
    slab_lock(&buddy_lock);
    arena_link(a);
    slab_unlock(&buddy_lock);
}

void buddy_add_pages(struct slab_arena *a, size_t first, size_t end)
{
    slab_lock(&buddy_lock);
    a->own_pages += end - first;
    total_pages += end - first;
    for (size_t k = first; k < end; k++)
        page_set_kind(&a->pages[k], PG_NONE);
    free_range_locked(a, first, end);
    slab_unlock(&buddy_lock);
}

void buddy_fork_prepare(void) { slab_lock(&buddy_lock); }
void buddy_fork_parent(void) { slab_unlock(&buddy_lock); }

void buddy_free(struct slab_page *head, unsigned order)
{
    slab_lock(&buddy_lock);
    buddy_free_locked(head, order);
    slab_unlock(&buddy_lock);
}

void *slab_pages_alloc(unsigned order)
{
    if (order > MAX_ORDER) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, order,
                     "order %u is above the largest order %u", order, MAX_ORDER);
        errno = EINVAL;
        return NULL;
    }
    struct slab_page *p = buddy_alloc(order, PG_PAGES);
    return p ? page_address(p) : NULL;
}

void slab_pages_free(void *ptr, unsigned order)
{
    if (!ptr)
        return;
    struct slab_page *p = addr_to_page(ptr);
    if (!p) {
        slab_reportf(SLAB_ERR_FOREIGN, __func__, NULL, NULL, ptr, 0,
                     "%p was not allocated by libslab; ignored", ptr);
        return;
    }
    slab_lock(&buddy_lock);
    bool ok = ((uintptr_t)ptr & (PAGE_SIZE - 1)) == 0 && page_kind(p) == PG_PAGES;
    unsigned held = p->order;
    if (ok && held == order) {
        block_pages -= (size_t)1 << order;
        buddy_free_locked(p, order);
    }
    slab_unlock(&buddy_lock);
    if (!ok)
        slab_reportf(SLAB_ERR_BAD_PAGES, __func__, NULL, NULL, ptr, 0,
                     "%p is not the start of a block from slab_pages_alloc() "
                     "(free already, or inside a block or a slab); ignored", ptr);
    else if (held != order)
        slab_reportf(SLAB_ERR_BAD_PAGES, __func__, NULL, NULL, ptr, order,
                     "%p is a block of order %u, freed as order %u; ignored",
                     ptr, held, order);
}

static void buddy_info_locked(slab_buddy_info_t *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned o = 0; o <= MAX_ORDER; o++) {
        out->nr_free[o] = free_blocks(o);
        out->free_pages += free_blocks(o) << o;
    }
    out->arenas = nr_arenas;
    out->total_pages = total_pages;
    out->mapped_bytes = total_pages * PAGE_SIZE + meta_bytes;
}

void slab_buddy_info(slab_buddy_info_t *out)
{
    if (!out)
        return;
    slab_lock(&buddy_lock);
    buddy_info_locked(out);
    slab_unlock(&buddy_lock);
}

void buddy_memory(struct buddy_memory *out)
{
    slab_lock(&buddy_lock);
    buddy_info_locked(&out->info);
    out->dirty_pages = dirty_pages;
    out->run_pages = run_pages;
    out->block_pages = block_pages;
    out->meta_bytes = meta_bytes;
    out->meta_resident = meta_resident;
    slab_unlock(&buddy_lock);
}

#define CORRUPT(...)                                                          \
    (problems++, slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", NULL, NULL,    \
                              __VA_ARGS__))

size_t buddy_verify(void)
{
    size_t problems = 0;
    slab_lock(&buddy_lock);
    size_t listed = 0;
    size_t dirty = 0;
    for (unsigned o = 0; o <= MAX_ORDER; o++)
    for (unsigned clean = 0; clean < 2; clean++) {
        size_t n = 0;
        for (struct slab_page *p = free_area[o][clean].first; p; p = p->next, n++) {
            size_t idx = page_index(p);
            if (p->clean != clean)
                CORRUPT(page_address(p), o, "buddy: block on the %s order-%u list is marked %s",
                        clean ? "clean" : "dirty", o, p->clean ? "clean" : "dirty");
            dirty += clean ? 0 : (size_t)1 << o;
            if (page_kind(p) != PG_FREE || p->order != o)
                CORRUPT(page_address(p), o, "buddy: block on order-%u list has kind %u order %u",
                        o, page_kind(p), p->order);
            if (idx & (((size_t)1 << o) - 1))
                CORRUPT(page_address(p), o, "buddy: order-%u block at page %zu is misaligned", o, idx);
            if (o < MAX_ORDER) {
                struct slab_page *b = &page_arena(p)->pages[idx ^ ((size_t)1 << o)];
                if (page_kind(b) == PG_FREE && b->order == o)
                    CORRUPT(page_address(p), o, "buddy: order-%u block and its buddy are both free", o);
            }
        }
        if (n != free_area[o][clean].count)
            CORRUPT(NULL, o, "buddy: order-%u list holds %zu blocks, counted %zu", o, n,
                    free_area[o][clean].count);
        listed += n;
    }
    size_t heads = 0, arenas_seen = 0;
    if (dirty != dirty_pages)
        CORRUPT(NULL, dirty, "buddy: %zu dirty free pages counted as %zu", dirty, dirty_pages);
    for (struct slab_arena *a = arenas; a; a = a->next, arenas_seen++) {
        size_t free_pages = 0;
        for (size_t i = 0; i < ARENA_PAGES; i++) {
            if (page_kind(&a->pages[i]) == PG_FREE) {
                heads++;
                free_pages += (size_t)1 << a->pages[i].order;
            }
        }
        if (free_pages != a->free_pages)
            CORRUPT(a->base, 0, "buddy: arena %p counts %zu free pages, holds %zu",
                    (void *)a->base, a->free_pages, free_pages);
        if (arena_of(a->base) != a)
            CORRUPT(a->base, 0, "buddy: arena %p is not in the arena map", (void *)a->base);
    }
    if (heads != listed)
        CORRUPT(NULL, 0, "buddy: %zu free block heads, %zu on free lists", heads, listed);
    if (arenas_seen != nr_arenas)
        CORRUPT(NULL, 0, "buddy: %zu arenas listed, %zu counted", arenas_seen, nr_arenas);
    slab_unlock(&buddy_lock);
    return problems;
}
