/*
 * debug.c - debug caches: red zones, poison, call stacks, leak reports,
 * and the SLAB_DEBUG switch that turns them on from the environment.
 *
 * A debug cache has no magazines, so every allocation and free reaches
 * the slab layer (cache.c), which calls in here under the cache lock for
 * each object and reports what was found once the lock is dropped.  Its
 * objects sit in larger slots:
 *
 *   | left zone | object (size) | right zone | alloc stack | free stack | req |
 *     red_left    0              size         track_off                  size_off
 *
 * (offsets from the object's start; each part only with its switch).  The
 * slab's s_mem points at the first object, not at its slot, so the slab
 * layer's index arithmetic is the same for every cache.  Invariants, for
 * every object of a debug cache, between calls:
 *   - Z: live, both zones hold RED_LIVE (the right one from the size
 *     asked for, in a kmalloc class); free, they hold RED_FREE (the right
 *     one from the object's size);
 *   - P without constructor: free, the object holds POISON_FREE bytes
 *     ending in POISON_END;
 *   - U: the stacks are those of the last allocation and free, or zero.
 * A free that finds a zone damaged still frees (the damage is reported);
 * an allocation that finds poison or a zone damaged still hands the
 * object out, repaired.  F checks the slab's bitmap before each use.
 *
 * Memory checkers (annotate.h) see a free object's whole slot, and a live
 * object's zones and stacks, as inaccessible: the code here opens what it
 * reads or writes and closes it again (slot_open/slot_close).
 */
#define _GNU_SOURCE
#include "internal.h"

#include "annotate.h"

#if SLAB_HOSTED
#include <execinfo.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define RED_LIVE 0xcc   /* Linux's SLUB_RED_ACTIVE */
#define RED_FREE 0xbb   /* SLUB_RED_INACTIVE */
#define POISON_FREE 0x6b
#define POISON_END 0xa5
#define POISON_NEW 0x5a /* a new object of a cache without constructor */

SLAB_LOCAL_DEFINE(struct api_call, slab__call);

/* ---- SLAB_DEBUG ---- */

#define MAX_RULES 32
struct rule {
    slab_flags_t flags;
    bool prefix;
    char name[SLAB_NAME_MAX];
};
/* Written once, before any cache exists (options are read at first use). */
static struct rule rules[MAX_RULES];
static unsigned nr_rules;
static slab_flags_t default_flags;
static bool env_active;

static void parse_error(const char *spec, const char *what, size_t len, const char *start)
{
    slab_reportf(SLAB_ERR_INVALID_ARG, "SLAB_DEBUG", NULL, NULL, NULL, 0,
                 "%s '%.*s' in \"%s\"; skipped", what, (int)len, start, spec);
}

static slab_flags_t parse_letters(const char *spec, const char *p, size_t len)
{
    if (len == 0 || (len == 1 && p[0] == '1'))
        return SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
    if (len == 1 && (p[0] == '-' || p[0] == '0'))
        return 0;
    slab_flags_t f = 0;
    for (size_t i = 0; i < len; i++) {
        switch (p[i] | 0x20) { /* either case */
        case 'f': f |= SLAB_CONSISTENCY_CHECKS; break;
        case 'z': f |= SLAB_RED_ZONE; break;
        case 'p': f |= SLAB_POISON; break;
        case 'u': f |= SLAB_STORE_USER; break;
        case 't': f |= SLAB_TRACE; break;
        case 'l': f |= SLAB_LEAK_AT_EXIT; break;
        default: parse_error(spec, "unknown switch", 1, p + i); break;
        }
    }
    return f;
}

void debug_parse(const char *spec)
{
    if (!spec)
        return;
    env_active = true;
    const char *block = spec;
    for (;;) {
        size_t blen = strcspn(block, ";");
        size_t llen = strcspn(block, ",;");
        slab_flags_t f = parse_letters(spec, block, llen);
        const char *p = block + llen;
        bool named = false;
        while (p < block + blen) { /* at a ',' */
            p++;
            size_t nlen = strcspn(p, ",;");
            if (nlen == 0 || nlen >= SLAB_NAME_MAX + (p[nlen - 1] == '*')) {
                parse_error(spec, nlen ? "cache name too long" : "empty cache name", nlen, p);
            } else if (nr_rules == MAX_RULES) {
                parse_error(spec, "too many cache names from", nlen, p);
            } else {
                struct rule *r = &rules[nr_rules++];
                r->flags = f;
                r->prefix = p[nlen - 1] == '*';
                memcpy(r->name, p, nlen - r->prefix);
                r->name[nlen - r->prefix] = '\0';
            }
            named = true;
            p += nlen;
        }
        if (!named)
            default_flags = f;
        if (!block[blen])
            break;
        block += blen + 1;
    }
    if (!default_flags && !nr_rules)
        env_active = false;
}

slab_flags_t debug_flags_for(const char *name)
{
    slab_flags_t f = default_flags;
    for (unsigned i = 0; i < nr_rules; i++) {
        const struct rule *r = &rules[i];
        bool match = r->prefix ? strncmp(name, r->name, strlen(r->name)) == 0
                               : strcmp(name, r->name) == 0;
        if (match)
            f = r->flags; /* the last block naming it wins */
    }
    return f;
}

bool debug_env_active(void) { return env_active; }

/* ---- geometry ---- */

#define ROUND_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))

struct tracks {
    slab_stack_t alloc, free;
};

bool debug_layout(struct slab_layout *l, size_t size, size_t align, slab_flags_t flags)
{
    if (!(flags & SLAB_DEBUG_FLAGS))
        return slab_layout_compute(l, size, align);
    size_t red_left = 0, right_end = size, track_off = 0, size_off = 0;
    if (flags & SLAB_RED_ZONE) {
        red_left = align > 8 ? align : 8;
        right_end = ROUND_UP(size, 8) + 8;
    }
    size_t end = ROUND_UP(right_end, 8);
    if (flags & SLAB_STORE_USER) {
        track_off = end;
        end += sizeof(struct tracks);
    }
    if ((flags & SLAB_RED_ZONE) && (flags & CACHE_KMALLOC)) {
        size_off = end;
        end += 8;
    }
    if (!slab_layout_compute(l, red_left + end, align))
        return false;
    l->red_left = (uint32_t)red_left;
    l->right_end = (uint32_t)right_end;
    l->track_off = (uint32_t)track_off;
    l->size_off = (uint32_t)size_off;
    return true;
}

static inline struct tracks *tracks_of(const struct slab_cache *c, const void *obj)
{
    return (struct tracks *)((char *)obj + c->layout.track_off);
}

/* The slot of obj from its left zone to its end, or (live objects) all of
 * it but the `used` bytes the program holds, made accessible to memory
 * checkers and inaccessible again. */
static void slot_open(const struct slab_cache *c, const void *obj, size_t used)
{
    const struct slab_layout *l = &c->layout;
    const char *o = obj;
    annotate_expose(o - l->red_left, l->red_left);
    annotate_expose(o + used, l->stride - l->red_left - used);
}

static void slot_close(const struct slab_cache *c, const void *obj, size_t used)
{
    const struct slab_layout *l = &c->layout;
    const char *o = obj;
    annotate_hide(o - l->red_left, l->red_left);
    annotate_hide(o + used, l->stride - l->red_left - used);
}

/* The field lies outside the object: the checkers see it inaccessible. */
size_t debug_usable(const struct slab_cache *c, const void *obj)
{
    const uint32_t *f = (const uint32_t *)((const char *)obj + c->layout.size_off);
    annotate_expose(f, 8); /* the 8 bytes layout reserves, a whole ASan granule */
    size_t used = *f;
    annotate_hide(f, 8);
    return used;
}

/* ---- call stacks ---- */

static SLAB_LOCAL_DEFINE(bool, in_capture);
static uint64_t start_ns;

/* The stack of this call, from the program's frame that called libslab
 * (slab__call.caller) outwards; if that frame is not found, from the
 * caller of the debug code.  backtrace() may allocate on its first use:
 * an allocation it makes is not tracked (in_capture). */
static void capture(slab_stack_t *st, void *caller)
{
    memset(st, 0, sizeof *st);
    if (SLAB_LOCAL(in_capture))
        return;
    SLAB_LOCAL(in_capture) = true;
#if SLAB_HOSTED
    void *pcs[SLAB_STACK_DEPTH + 24];
    int n = backtrace(pcs, (int)(sizeof pcs / sizeof pcs[0]));
    int first = n > 3 ? 3 : n;
    for (int i = 0; i < n; i++)
        if (caller && pcs[i] == caller) {
            first = i;
            break;
        }
    for (int i = first; i < n && st->depth < SLAB_STACK_DEPTH; i++)
        st->pc[st->depth++] = pcs[i];
    st->thread = (unsigned long)syscall(SYS_gettid);
#else
    /* No unwinder: the program's call site alone, and the CPU. */
    st->pc[0] = caller ? caller : __builtin_return_address(0);
    st->depth = 1;
    st->thread = slab__cpu();
#endif
    uint64_t now = clock_now_ns();
    uint64_t t0 = __atomic_load_n(&start_ns, __ATOMIC_RELAXED);
    if (!t0) {
        __atomic_compare_exchange_n(&start_ns, &t0, now, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
        t0 = __atomic_load_n(&start_ns, __ATOMIC_RELAXED);
    }
    st->when_ms = (now - t0) / 1000000;
    SLAB_LOCAL(in_capture) = false;
}

void debug_begin(const struct slab_cache *c, struct debug_call *dc, const char *function)
{
    dc->function = SLAB_LOCAL(slab__call).function ? SLAB_LOCAL(slab__call).function : function;
    dc->request = SLAB_LOCAL(slab__call).request;
    dc->nerr = 0;
    if (c->flags & SLAB_STORE_USER)
        capture(&dc->now, SLAB_LOCAL(slab__call).caller);
    SLAB_LOCAL(slab__call) = (struct api_call){0};
}

/* ---- checks ---- */

/* The first byte of [p, p+n) that is not b, or NULL. */
static const unsigned char *first_not(const void *p, size_t n, unsigned char b)
{
    const unsigned char *q = p;
    for (size_t i = 0; i < n; i++)
        if (q[i] != b)
            return q + i;
    return NULL;
}

static struct obj_error *add_error(struct debug_call *dc, slab_error_kind_t kind)
{
    if (dc->nerr == DEBUG_MAX_ERRORS)
        return NULL;
    struct obj_error *e = &dc->err[dc->nerr++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    return e;
}

static void copy_tracks(const struct slab_cache *c, const void *obj, struct obj_error *e)
{
    if (!(c->flags & SLAB_STORE_USER))
        return;
    const struct tracks *t = tracks_of(c, obj);
    e->alloc = t->alloc;
    e->free = t->free;
    e->has_alloc = t->alloc.depth != 0;
    e->has_free = t->free.depth != 0;
}

static void object_error(const struct slab_cache *c, struct debug_call *dc,
                         slab_error_kind_t kind, const void *obj, long offset)
{
    struct obj_error *e = add_error(dc, kind);
    if (!e)
        return;
    e->ptr = (const char *)obj + offset;
    e->object = obj;
    e->offset = offset;
    copy_tracks(c, obj, e);
}

/* The zones of obj hold `b` (the right one from `from`); if not, *bad is
 * the offset of the first damaged byte. */
static bool zones_ok(const struct slab_cache *c, void *obj, size_t from, unsigned char b,
                     long *bad)
{
    const struct slab_layout *l = &c->layout;
    char *o = obj;
    const unsigned char *x = first_not(o - l->red_left, l->red_left, b);
    if (!x && from < l->right_end)
        x = first_not(o + from, l->right_end - from, b);
    if (!x)
        return true;
    *bad = (long)((const char *)x - o);
    return false;
}

static void set_zones(const struct slab_cache *c, void *obj, size_t from, unsigned char b)
{
    const struct slab_layout *l = &c->layout;
    char *o = obj;
    memset(o - l->red_left, b, l->red_left);
    if (from < l->right_end)
        memset(o + from, b, l->right_end - from);
}

static bool poisoned(const struct slab_cache *c)
{
    return (c->flags & SLAB_POISON) && !c->ctor;
}

static void poison_free(const struct slab_cache *c, void *obj)
{
    memset(obj, POISON_FREE, c->size - 1);
    ((unsigned char *)obj)[c->size - 1] = POISON_END;
}

/* The first byte of a free object that is not poison, or -1. */
static long poison_damage(const struct slab_cache *c, const void *obj)
{
    const unsigned char *x = first_not(obj, c->size - 1, POISON_FREE);
    if (x)
        return (long)(x - (const unsigned char *)obj);
    if (((const unsigned char *)obj)[c->size - 1] != POISON_END)
        return (long)c->size - 1;
    return -1;
}

bool debug_slab_ok(const struct slab_cache *c, const struct slab_page *s)
{
    const struct slab_layout *l = &c->layout;
    size_t words = l->map_words ? l->map_words : 1, free_objs = 0;
    for (size_t w = 0; w < words; w++)
        free_objs += (size_t)__builtin_popcountll(s->map[w]);
    return free_objs + s->inuse == l->objs &&
           !(l->objs % 64 && (s->map[words - 1] >> (l->objs % 64)));
}

static void slab_error(struct debug_call *dc, const struct slab_page *s, const void *obj)
{
    struct obj_error *e = add_error(dc, SLAB_ERR_CORRUPT);
    if (e) {
        e->ptr = page_address(s);
        e->object = obj;
        e->offset = s->inuse;
    }
}

/* T: one line on stderr per allocation and free. */
static void trace(const struct slab_cache *c, const char *what, const void *obj, size_t bytes)
{
    if (bytes)
        report_line("libslab: trace: cache '%s': %s %p (%zu bytes)\n", c->name, what, obj, bytes);
    else
        report_line("libslab: trace: cache '%s': %s %p\n", c->name, what, obj);
}

void debug_slab_init(const struct slab_cache *c, struct slab_page *s)
{
    const struct slab_layout *l = &c->layout;
    for (size_t i = 0; i < l->objs; i++) {
        char *obj = s->s_mem + i * l->stride;
        set_zones(c, obj, c->size, RED_FREE);
        if (poisoned(c))
            poison_free(c, obj);
        if (l->track_off)
            memset(tracks_of(c, obj), 0, sizeof(struct tracks));
        if (l->size_off)
            *(uint32_t *)(obj + l->size_off) = 0;
    }
}

void debug_alloc_locked(struct slab_cache *c, struct slab_page *s, void *obj,
                        struct debug_call *dc)
{
    const struct slab_layout *l = &c->layout;
    long bad;
    slot_open(c, obj, 0); /* a free object: all of it */
    if ((c->flags & SLAB_CONSISTENCY_CHECKS) && !debug_slab_ok(c, s))
        slab_error(dc, s, obj);
    if ((c->flags & SLAB_RED_ZONE) && !zones_ok(c, obj, c->size, RED_FREE, &bad))
        object_error(c, dc, SLAB_ERR_REDZONE, obj, bad);
    if (poisoned(c) && (bad = poison_damage(c, obj)) >= 0)
        object_error(c, dc, SLAB_ERR_POISON, obj, bad);
    size_t used = c->size;
    if (l->size_off) {
        used = dc->request && dc->request < c->size ? dc->request : c->size;
        *(uint32_t *)((char *)obj + l->size_off) = (uint32_t)used;
    }
    if (c->flags & SLAB_RED_ZONE)
        set_zones(c, obj, used, RED_LIVE);
    if (poisoned(c))
        memset(obj, POISON_NEW, used);
    if (l->track_off)
        tracks_of(c, obj)->alloc = dc->now;
    if (c->flags & SLAB_TRACE)
        trace(c, "alloc", obj, used);
    slot_close(c, obj, 0); /* the caller tells the checkers it is allocated */
}

void debug_free_locked(struct slab_cache *c, void *obj, struct debug_call *dc)
{
    const struct slab_layout *l = &c->layout;
    long bad;
    slot_open(c, obj, 0); /* already told free to the checkers */
    size_t used = cache_usable(c, obj);
    if ((c->flags & SLAB_RED_ZONE) && !zones_ok(c, obj, used, RED_LIVE, &bad))
        object_error(c, dc, SLAB_ERR_REDZONE, obj, bad);
    if (l->track_off)
        tracks_of(c, obj)->free = dc->now;
    if (c->flags & SLAB_RED_ZONE)
        set_zones(c, obj, c->size, RED_FREE);
    if (poisoned(c))
        poison_free(c, obj);
    if (c->flags & SLAB_TRACE)
        trace(c, "free", obj, 0);
    slot_close(c, obj, 0);
}

void debug_error_object(const struct slab_cache *c, const struct slab_page *s,
                        struct obj_error *e)
{
    const struct slab_layout *l = &c->layout;
    const char *slot0 = s->s_mem - l->red_left;
    if ((const char *)e->ptr < slot0)
        return;
    size_t i = (size_t)((const char *)e->ptr - slot0) / l->stride;
    if (i >= l->objs)
        return;
    const char *obj = s->s_mem + i * l->stride;
    e->object = obj;
    e->offset = (long)((const char *)e->ptr - obj);
    size_t used = slab_is_free(s, i) ? 0 : cache_usable(c, obj);
    slot_open(c, obj, used);
    copy_tracks(c, obj, e);
    slot_close(c, obj, used);
}

static const char *kind_verb(slab_error_kind_t kind)
{
    switch (kind) {
    case SLAB_ERR_REDZONE: return "red zone overwritten";
    case SLAB_ERR_POISON: return "free object written to (write after free)";
    default: return slab_error_kind_name(kind);
    }
}

void debug_end(const struct slab_cache *c, struct debug_call *dc)
{
    for (unsigned i = 0; i < dc->nerr; i++) {
        const struct obj_error *e = &dc->err[i];
        if (e->kind == SLAB_ERR_CORRUPT)
            report_object(dc->function, c, e, 0,
                          "slab %p: its bitmap disagrees with its count of %ld objects in use "
                          "(metadata overwritten?)", e->ptr, e->offset);
        else
            report_object(dc->function, c, e, 0, "%s at offset %ld of object %p",
                          kind_verb(e->kind), e->offset, e->object);
    }
    dc->nerr = 0;
}

/* ---- slab_verify ---- */

size_t debug_verify_slab(struct slab_cache *c, struct slab_page *s)
{
    const struct slab_layout *l = &c->layout;
    if (!(c->flags & (SLAB_RED_ZONE | SLAB_POISON)))
        return 0;
    size_t problems = 0;
    for (size_t i = 0; i < l->objs; i++) {
        char *obj = s->s_mem + i * l->stride;
        bool free_obj = slab_is_free(s, i);
        struct debug_call dc = {.function = "slab_verify"};
        long bad;
        size_t used = free_obj ? 0 : cache_usable(c, obj);
        slot_open(c, obj, used);
        if ((c->flags & SLAB_RED_ZONE) &&
            !zones_ok(c, obj, free_obj ? c->size : used, free_obj ? RED_FREE : RED_LIVE, &bad))
            object_error(c, &dc, SLAB_ERR_REDZONE, obj, bad);
        if (free_obj && poisoned(c) && (bad = poison_damage(c, obj)) >= 0)
            object_error(c, &dc, SLAB_ERR_POISON, obj, bad);
        slot_close(c, obj, used);
        problems += dc.nerr;
        debug_end(c, &dc);
    }
    return problems;
}

/* ---- leaks ---- */

#define LEAK_GROUPS 16
struct leak_group {
    size_t count;
    struct obj_error e; /* the first object of the group */
};

struct leak_walk {
    struct leak_group g[LEAK_GROUPS];
    unsigned n;
    size_t total, other;
};

static void leak_add(const struct slab_cache *c, const void *obj, struct leak_walk *w)
{
    w->total++;
    size_t used = cache_usable(c, obj);
    slot_open(c, obj, used);
    const void *site = c->layout.track_off ? tracks_of(c, obj)->alloc.pc[0] : NULL;
    struct leak_group *g = NULL;
    for (unsigned i = 0; i < w->n && !g; i++)
        if (w->g[i].e.alloc.pc[0] == site)
            g = &w->g[i];
    if (g) {
        g->count++;
    } else if (w->n == LEAK_GROUPS) {
        w->other++;
    } else {
        g = &w->g[w->n++];
        memset(g, 0, sizeof *g);
        g->count = 1;
        g->e.kind = SLAB_ERR_LEAK;
        g->e.ptr = g->e.object = obj;
        copy_tracks(c, obj, &g->e);
    }
    slot_close(c, obj, used);
}

size_t debug_report_leaks(struct slab_cache *c, const char *function)
{
    struct leak_walk walk, *w = &walk;
    w->n = 0;
    w->total = w->other = 0;
    slab_lock(&c->lock);
    for (unsigned li = SL_PARTIAL; li <= SL_FULL; li++)
        for (struct slab_page *s = c->lists[li].first; s; s = s->next)
            for (size_t i = 0; i < c->layout.objs; i++)
                if (!slab_is_free(s, i))
                    leak_add(c, s->s_mem + i * c->layout.stride, w);
    slab_unlock(&c->lock);
    for (unsigned i = 0; i < w->n; i++) {
        const struct leak_group *g = &w->g[i];
        report_object(function, c, &g->e, g->count,
                      "%zu object%s leaked (of %zu live), allocated at the same call site; "
                      "first %p", g->count, g->count == 1 ? "" : "s", w->total, g->e.object);
    }
    if (w->other)
        slab_reportf(SLAB_ERR_LEAK, function, c, NULL, NULL, w->other,
                     "%zu more objects leaked from other call sites", w->other);
    return w->total;
}

static void exit_leaks(struct slab_cache *c, void *arg)
{
    (void)arg;
    if (c->flags & SLAB_LEAK_AT_EXIT)
        debug_report_leaks(c, "exit");
}

static void leak_report_at_exit(void)
{
    cache_for_each(exit_leaks, NULL);
}

static void register_exit(void)
{
#if SLAB_HOSTED
    atexit(leak_report_at_exit);
#else
    (void)leak_report_at_exit; /* no exit to report at */
#endif
}

void debug_leaks_at_exit(void)
{
    static slab_once_t once = SLAB_ONCE_INIT;
    slab_once(&once, register_exit);
}
