/*
 * slab.c - one slab: its layout, its objects and its free bitmap.
 *
 * A slab is a buddy block of 2^order pages, aligned to its size, whose
 * head page descriptor (PG_SLAB) records the cache, the first object and
 * the number of objects in use; later pages are PG_TAIL and point at the
 * head.  Layout of a slab of `objs` objects:
 *
 *   | colour | obj 0 | obj 1 | ... | obj objs-1 | leftover | bitmap? |
 *
 * Free objects are tracked by a bitmap (1 = free) that lives in the head
 * descriptor when objs <= 64 and at the end of the slab otherwise, never
 * in an object: a freed object keeps every byte its constructor wrote,
 * and a double free is a set bit.  The colour is a multiple of
 * colour_step (a cache line, or the alignment when larger) taken from the
 * leftover space, so successive slabs put their objects on different
 * cache lines (Bonwick's slab colouring).
 *
 * The order is the smallest for which the slab wastes at most 1/8 of
 * itself (leftover plus bitmap).  The constructor runs for every object
 * when a slab is created, the destructor when it is released.
 */
#include "internal.h"

#include "annotate.h"


static size_t map_words_for(size_t objs) { return objs > 64 ? (objs + 63) / 64 : 0; }

bool slab_layout_compute(struct slab_layout *l, size_t size, size_t align)
{
    size_t stride = (size + align - 1) & ~(align - 1);
    for (unsigned order = 0; order <= MAX_SLAB_ORDER; order++) {
        size_t bytes = PAGE_SIZE << order;
        /* Objects plus one bit each must fit; start near the answer. */
        size_t objs = bytes / stride;
        if (objs > 64)
            objs = (bytes * 8) / (stride * 8 + 1);
        while (objs > 0 && objs * stride + map_words_for(objs) * 8 > bytes)
            objs--;
        while (objs * stride + stride + map_words_for(objs + 1) * 8 <= bytes)
            objs++;
        if (objs == 0 || objs > UINT32_MAX)
            continue;
        size_t words = map_words_for(objs);
        size_t leftover = bytes - objs * stride - words * 8;
        if (leftover * 8 > bytes)
            continue;
        *l = (struct slab_layout){0}; /* no debug geometry (debug_layout adds it) */
        l->stride = stride;
        l->recip = (((uint64_t)1 << 32) + stride - 1) / stride;
        l->order = order;
        l->objs = (unsigned)objs;
        l->map_words = (unsigned)words;
        l->colour_step = align > SLAB_CACHE_LINE ? align : SLAB_CACHE_LINE;
        l->colours = (unsigned)(leftover / l->colour_step) + 1;
        return true;
    }
    return false;
}

static void set_tails(struct slab_page *s, unsigned order, unsigned kind)
{
    for (size_t i = 1; i < ((size_t)1 << order); i++) {
        s[i].head = kind == PG_TAIL ? s : NULL;
        s[i].slot_id = s->slot_id;
        page_set_kind(&s[i], kind);
    }
}

struct slab_page *slab_create(struct slab_cache *c, unsigned colour, bool *ctor_failed)
{
    const struct slab_layout *l = &c->layout;
    *ctor_failed = false;
    struct slab_page *s = buddy_alloc(l->order, PG_SLAB);
    if (!s)
        return NULL;
    char *base = page_address(s);
    s->cache = c;
    s->s_mem = base + (size_t)colour * l->colour_step + l->red_left;
    s->inuse = 0;
    s->hint = 0;
    s->slot_id = (uint16_t)c->id;
    s->list = SL_FREE;
    s->map = l->map_words ? (uint64_t *)(base + (PAGE_SIZE << l->order)) - l->map_words
                          : &s->inline_map;
    size_t words = l->map_words ? l->map_words : 1;
    for (size_t w = 0; w < words; w++)
        s->map[w] = ~(uint64_t)0;
    if (l->objs % 64)
        s->map[words - 1] = ((uint64_t)1 << (l->objs % 64)) - 1;
    set_tails(s, l->order, PG_TAIL);
    if (c->flags & SLAB_DEBUG_FLAGS)
        debug_slab_init(c, s);

    if (c->ctor) {
        for (size_t i = 0; i < l->objs; i++) {
            if (c->ctor(s->s_mem + i * l->stride, c->arg) == 0)
                continue;
            /* Undo: destroy what was built, give the pages back. */
            while (c->dtor && i-- > 0)
                c->dtor(s->s_mem + i * l->stride, c->arg);
            set_tails(s, l->order, PG_NONE);
            buddy_free(s, l->order);
            *ctor_failed = true;
            errno = ENOMEM;
            return NULL;
        }
    }
    annotate_slab_new(c, s);
    return s;
}

void slab_release(struct slab_cache *c, struct slab_page *s)
{
    const struct slab_layout *l = &c->layout;
    annotate_expose(page_address(s), PAGE_SIZE << l->order);
    if (c->dtor)
        for (size_t i = 0; i < l->objs; i++)
            c->dtor(s->s_mem + i * l->stride, c->arg);
    set_tails(s, l->order, PG_NONE);
    buddy_free(s, l->order);
}

#define CORRUPT(...)                                                          \
    (problems++, slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", c, NULL,       \
                              __VA_ARGS__))

size_t slab_verify_one(const struct slab_cache *c, struct slab_page *s)
{
    const struct slab_layout *l = &c->layout;
    size_t problems = 0;
    char *base = page_address(s);
    if (page_kind(s) != PG_SLAB || s->cache != c)
        return CORRUPT(base, 0, "slab %p does not belong to this cache", (void *)base), problems;
    if (s->order != l->order)
        CORRUPT(base, 0, "slab %p has order %u, cache uses %u", (void *)base, s->order, l->order);
    for (size_t i = 1; i < ((size_t)1 << l->order); i++)
        if (page_kind(&s[i]) != PG_TAIL || s[i].head != s)
            CORRUPT(base, i, "slab %p: page %zu is not a tail of it", (void *)base, i);
    size_t colour_off = (size_t)(s->s_mem - base) - l->red_left;
    if (colour_off % l->colour_step || colour_off / l->colour_step >= l->colours)
        CORRUPT(base, colour_off, "slab %p: first object at bad offset %zu", (void *)base, colour_off);
    size_t free_objs = 0, words = l->map_words ? l->map_words : 1;
    for (size_t w = 0; w < words; w++)
        free_objs += (size_t)__builtin_popcountll(s->map[w]);
    if (l->objs % 64 && (s->map[words - 1] >> (l->objs % 64)))
        CORRUPT(base, 0, "slab %p: bitmap marks objects beyond the last", (void *)base);
    for (size_t w = 0; w < s->hint && w < words; w++)
        if (s->map[w])
            CORRUPT(base, w, "slab %p: free object below the search hint", (void *)base);
    if (free_objs + s->inuse != l->objs)
        CORRUPT(base, s->inuse, "slab %p: %u in use but %zu of %u free", (void *)base, s->inuse,
                free_objs, l->objs);
    return problems;
}
