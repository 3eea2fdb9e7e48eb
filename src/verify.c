/*
 * verify.c - slab_verify(): check every invariant libslab keeps.
 *
 * The buddy allocator checks its free lists and arenas (buddy_verify);
 * here each cache's lists are walked under its lock: every slab is on the
 * list its use count says, its bitmap agrees with that count, and the
 * cache's active and total counts are the sums over its slabs; in debug
 * caches every object's red zones and every free object's poison are
 * checked too (debug.c).  Each problem is reported (SLAB_ERR_CORRUPT,
 * SLAB_ERR_REDZONE, SLAB_ERR_POISON) and none aborts; the count is
 * returned.
 */
#include "internal.h"

static const char *const list_name[SL_NR] = {"partial", "full", "free"};

static void verify_cache(struct slab_cache *c, void *arg)
{
    size_t *problems = arg;
    size_t before = *problems;
    slab_lock(&c->lock);
    size_t active = 0, slabs = 0;
    for (unsigned l = 0; l < SL_NR; l++) {
        size_t n = 0;
        for (struct slab_page *s = c->lists[l].first; s; s = s->next, n++) {
            *problems += slab_verify_one(c, s);
            if (c->flags & SLAB_DEBUG_FLAGS)
                *problems += debug_verify_slab(c, s);
            unsigned want = s->inuse == 0 ? SL_FREE
                            : s->inuse == c->layout.objs ? SL_FULL : SL_PARTIAL;
            if (s->list != l || want != l) {
                (*problems)++;
                slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", c, NULL, page_address(s), l,
                             "slab %p with %u of %u in use is on the %s list",
                             (void *)page_address(s), s->inuse, c->layout.objs, list_name[l]);
            }
            active += s->inuse;
        }
        if (n != c->lists[l].count) {
            (*problems)++;
            slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", c, NULL, NULL, n,
                         "%s list holds %zu slabs, counted %zu", list_name[l], n,
                         c->lists[l].count);
        }
        slabs += n;
    }
    if (active != c->active || slabs * c->layout.objs != c->total) {
        (*problems)++;
        slab_reportf(SLAB_ERR_CORRUPT, "slab_verify", c, NULL, NULL, active,
                     "counts %zu active / %zu total objects, slabs hold %zu / %zu", c->active,
                     c->total, active, slabs * c->layout.objs);
    }
    c->errors += *problems - before;
    slab_unlock(&c->lock);
}

size_t slab_verify(void)
{
    bool nested = SLAB_LOCAL(report_no_abort);
    SLAB_LOCAL(report_no_abort) = true; /* verify reports; it never aborts */
    size_t problems = buddy_verify();
    cache_for_each(verify_cache, &problems);
    SLAB_LOCAL(report_no_abort) = nested;
    return problems;
}
