/*
 * depot.c - magazines and each cache's depot of them.
 *
 * A magazine is an array of object pointers (rounds) with a capacity of
 * 7..255; magazines come from internal caches, one per capacity, which
 * themselves run without magazines.  A cache's depot keeps whole
 * magazines under its own lock: a list of full ones and a list of empty
 * ones (Bonwick & Adams, 2001).  Threads trade with it only when both of
 * their magazines are empty (alloc) or full (free), so the depot lock is
 * taken once per magazine's worth of operations.
 *
 * Invariants, under d->lock:
 *   - every magazine on the full list holds `size` objects, every one on
 *     the empty list none (so a magazine need not count its rounds);
 *   - min_full/min_empty are the fewest magazines each list held since the
 *     last working-set update: that many were not needed during the
 *     interval, and reaping may free them.
 *
 * The depot keeps at most max_full_objs objects in full magazines (the
 * depot_bytes option, 128 KiB worth by default); a full magazine beyond that is emptied into the slab
 * layer at once, as Linux SLAB's shared array spills into its slabs, so a
 * program that frees most of its memory gives it back without waiting
 * for a reap.
 *
 * The depot's magazine size starts from the object size and grows one
 * step each time threads have found the depot lock held CONTENTION_LIMIT
 * times within a reap interval (illumos's rule, applied at once rather
 * than at the next reap), up to a ceiling set by the object size (255
 * rounds for objects up to 256 B, 31 above 4 KiB).
 */
#include "internal.h"

#include "annotate.h"


static const unsigned mag_rounds[MAG_SIZES] = {7, 15, 31, 63, 127, 255};
static struct slab_cache mag_caches[MAG_SIZES];

/* The magazine every slot starts with: no room, no rounds. */
struct magazine empty_magazine;

#define CONTENTION_LIMIT 16

void depot_boot(void)
{
    static const char *const names[MAG_SIZES] = {
        "slab_magazine_7", "slab_magazine_15", "slab_magazine_31",
        "slab_magazine_63", "slab_magazine_127", "slab_magazine_255",
    };
    for (unsigned i = 0; i < MAG_SIZES; i++)
        cache_create_internal(&mag_caches[i], names[i],
                              sizeof(struct magazine) + mag_rounds[i] * sizeof(void *), 8);
}

/* 0..3 from large objects to small, like Linux SLAB's limits: fewer
 * rounds for larger objects. */
static unsigned size_band(size_t object_size)
{
    if (object_size > 4096)
        return 0;
    if (object_size > 1024)
        return 1;
    if (object_size > 256)
        return 2;
    return 3;
}

/* Start at 7, 15, 31 or 63 rounds by object size. */
unsigned depot_initial_size(size_t object_size)
{
    return size_band(object_size);
}

/* Growth stops where a full magazine would cache a lot of memory: 255
 * rounds up to 256 B, 127 up to 1 KiB, 63 up to 4 KiB, else 31. */
unsigned depot_max_size(size_t object_size)
{
    return size_band(object_size) + 2;
}

/* At least one magazine always fits: the check lets the first in. */
size_t depot_max_full_objs(size_t object_size, size_t bytes)
{
    return bytes ? bytes / (object_size ? object_size : 1) : SIZE_MAX;
}

unsigned magazine_rounds(unsigned size_index)
{
    return mag_rounds[size_index];
}

struct magazine *magazine_alloc(unsigned size_index)
{
    struct magazine *m;
    if (cache_alloc_batch(&mag_caches[size_index], (void **)&m, 1) != 1)
        return NULL;
    m->next = NULL;
    m->size = (uint16_t)mag_rounds[size_index];
    m->size_index = size_index;
    return m;
}

void magazine_free(struct magazine *m)
{
    cache_free_batch(&mag_caches[m->size_index], (void *const *)&m, 1);
}

/* Give a magazine's first `rounds` objects back to the slab layer and
 * free it. */
static void magazine_destroy(struct slab_cache *c, struct magazine *m, unsigned rounds)
{
    if (rounds)
        cache_free_batch(c, m->objs, rounds);
    annotate_forget(m->objs, rounds);
    magazine_free(m);
}

/* Take the depot lock, counting contention; a depot contended
 * CONTENTION_LIMIT times moves to the next magazine size at once (bigger
 * magazines, fewer trips here), up to the ceiling. */
static void depot_lock(struct slab_cache *c)
{
    struct depot *d = &c->depot;
    if (slab_trylock(&d->lock))
        return;
    slab_lock(&d->lock);
    if (++d->contention > CONTENTION_LIMIT && d->size_index < d->max_index) {
        d->size_index++;
        d->contention = 0;
    }
}

static void push(struct magazine **list, size_t *n, struct magazine *m)
{
    m->next = *list;
    *list = m;
    (*n)++;
}

static struct magazine *pop(struct magazine **list, size_t *n, size_t *min)
{
    struct magazine *m = *list;
    if (!m)
        return NULL;
    *list = m->next;
    m->next = NULL;
    if (--(*n) < *min)
        *min = *n;
    return m;
}

/*
 * Trade for allocation: hand in `give` (an empty magazine, or
 * &empty_magazine) and take a full one, or NULL if the depot has none
 * (then `give` stays with the caller).
 */
struct magazine *depot_exchange_full(struct slab_cache *c, struct magazine *give)
{
    struct depot *d = &c->depot;
    struct magazine *stale = NULL;
    depot_lock(c);
    struct magazine *full = pop(&d->full, &d->nfull, &d->min_full);
    if (full) {
        d->exchanges++;
        if (give != &empty_magazine) {
            if (give->size_index == d->size_index)
                push(&d->empty, &d->nempty, give);
            else
                stale = give;
        }
    }
    slab_unlock(&d->lock);
    if (stale)
        magazine_free(stale);
    return full;
}

/*
 * Trade for free: hand in `give` (a full magazine, or &empty_magazine) and
 * take an empty one of the depot's current size, allocating one if the
 * depot has none.  NULL when no magazine can be had (`give` stays).
 */
struct magazine *depot_exchange_empty(struct slab_cache *c, struct magazine *give)
{
    struct depot *d = &c->depot;
    struct magazine *stale = NULL, *empty;
    depot_lock(c);
    if (give != &empty_magazine && d->nfull && (d->nfull + 1) * give->size > d->max_full_objs) {
        /* The depot holds enough: the objects go back to their slabs (and
         * from there, beyond each cache's few free slabs, to the buddy
         * allocator), and the magazine comes back empty. */
        bool reuse = give->size_index == d->size_index;
        d->overflows++;
        slab_unlock(&d->lock);
        cache_free_batch(c, give->objs, give->size);
        annotate_forget(give->objs, give->size);
        if (reuse)
            return give;
        magazine_free(give);
        give = &empty_magazine;
        depot_lock(c);
    }
    for (;;) {
        empty = pop(&d->empty, &d->nempty, &d->min_empty);
        if (!empty || empty->size_index == d->size_index)
            break;
        empty->next = stale; /* a size no longer used: free it */
        stale = empty;
    }
    unsigned want = d->size_index;
    if (empty && give != &empty_magazine) { /* the common case: one trip */
        d->exchanges++;
        push(&d->full, &d->nfull, give);
        give = &empty_magazine;
    }
    slab_unlock(&d->lock);
    while (stale) {
        struct magazine *next = stale->next;
        magazine_free(stale);
        stale = next;
    }
    if (!empty) {
        empty = magazine_alloc(want);
        if (!empty)
            return NULL;
    }
    if (give != &empty_magazine) {
        depot_lock(c);
        d->exchanges++;
        push(&d->full, &d->nfull, give);
        slab_unlock(&d->lock);
    }
    return empty;
}

/* An empty magazine for a slot that has none yet (or NULL). */
struct magazine *depot_new_empty(struct slab_cache *c)
{
    return depot_exchange_empty(c, &empty_magazine);
}

/* Accept a magazine holding `rounds` objects from a slot being flushed:
 * a full or empty one is kept, a partly filled one gives its objects to
 * the slab layer and is kept empty. */
void depot_return(struct slab_cache *c, struct magazine *m, unsigned rounds)
{
    struct depot *d = &c->depot;
    if (m == &empty_magazine)
        return;
    if (rounds != 0 && rounds != m->size) {
        cache_free_batch(c, m->objs, rounds);
        annotate_forget(m->objs, rounds);
        rounds = 0;
    }
    depot_lock(c);
    bool keep = rounds != 0 || m->size_index == d->size_index;
    if (rounds)
        push(&d->full, &d->nfull, m);
    else if (keep)
        push(&d->empty, &d->nempty, m);
    slab_unlock(&d->lock);
    if (!keep)
        magazine_free(m);
}

/*
 * End a working-set interval: magazines that stayed unused for the whole
 * interval (min_full full ones, min_empty empty ones) are freed, their
 * objects going back to the slab layer; with `all`, every magazine is.
 * Also grows the magazine size if the depot was contended.  Returns the
 * number of magazines freed.
 */
size_t depot_reap(struct slab_cache *c, bool all)
{
    struct depot *d = &c->depot;
    struct magazine *full = NULL, *empty = NULL;
    size_t freed = 0;
    slab_lock(&d->lock);
    size_t nf = all ? d->nfull : d->min_full;
    size_t ne = all ? d->nempty : d->min_empty;
    for (size_t i = 0; i < nf; i++) {
        struct magazine *m = pop(&d->full, &d->nfull, &d->min_full);
        m->next = full;
        full = m;
    }
    for (size_t i = 0; i < ne; i++) {
        struct magazine *m = pop(&d->empty, &d->nempty, &d->min_empty);
        m->next = empty;
        empty = m;
    }
    d->min_full = d->nfull;
    d->min_empty = d->nempty;
    d->contention = 0;
    slab_unlock(&d->lock);
    for (struct magazine *next; full; full = next, freed++) {
        next = full->next;
        magazine_destroy(c, full, full->size);
    }
    for (struct magazine *next; empty; empty = next, freed++) {
        next = empty->next;
        magazine_destroy(c, empty, 0);
    }
    return freed;
}
