/*
 * fuzz_api.c - libFuzzer target: the public API against a model.
 *
 * The input is a sequence of operations (one byte picks the operation,
 * the bytes after it its arguments; a short input reads as zeros):
 * caches created with a few sizes, alignments and flags, constructors
 * that write a header and destructors that check it, constructors that
 * fail now and then; cache allocation, free, bulk allocation and free,
 * shrink and destroy; slab_malloc, slab_calloc, slab_realloc,
 * slab_aligned_alloc, slab_free, slab_usable_size; blocks of pages;
 * slab_reap and slab_verify; reclaim callbacks that free objects of
 * their cache; fault injection (options.fault_one_in, fault_every) with
 * a seed from the input; other options; and misuse that must be reported
 * and ignored.
 *
 * The model holds every live object (sorted by address) with the bytes
 * it asked for and a tag.  Each object is filled with a pattern made
 * from its tag when it is handed out (objects above 4 KiB: both ends and
 * a word per page) and checked when it is freed or reallocated, so an
 * object handed out twice or overlapping another shows up, as does a
 * lost constructor header.  Every allocation is checked for alignment,
 * usable size and overlap with the live objects.  NULL is accepted only
 * with errno ENOMEM while faults are injected (or from a cache whose
 * constructor fails on purpose); a reclaim callback may run only then.
 * Misuse must give exactly the report expected and change nothing: the
 * caches' live counts stay those of the model, and no other report is
 * ever made.
 *
 * Inputs are independent: each ends by freeing every object, destroying
 * its caches (0 now, and every constructed object destructed), restoring
 * the options, and checking slab_verify() == 0 and that the bytes
 * slab_memory_info() counts in use are back where the input started.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slab.h>

/* ------------------------------------------------------------------ */
/* Checks                                                               */

static void fail(const char *cond, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_api: check failed: %s: ", cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond))                                                          \
            fail(#cond, __VA_ARGS__);                                         \
    } while (0)

/* ------------------------------------------------------------------ */
/* Input                                                                */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t u16(struct in *in)
{
    uint16_t lo = u8(in);
    return (uint16_t)(lo | (uint16_t)u8(in) << 8);
}

static uint32_t u32(struct in *in)
{
    uint32_t lo = u16(in);
    return lo | (uint32_t)u16(in) << 16;
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

static unsigned reports, expected_reports;
static slab_error_kind_t last_kind;
static size_t last_count;
static char last_message[256];

/* Leak reports (a debug cache destroyed with live objects: one per call
 * site, before the cache-busy report) are counted apart. */
static size_t leaked_objects;

static void hook(const slab_error_t *e, void *arg)
{
    (void)arg;
    if (e->kind == SLAB_ERR_LEAK) {
        leaked_objects += e->count;
        return;
    }
    reports++;
    last_kind = e->kind;
    last_count = e->count;
    snprintf(last_message, sizeof last_message, "%s: %s", e->function ? e->function : "?",
             e->message ? e->message : "?");
}

/* The call just made reported exactly one `kind` (or `kind2`). */
static void expect_report(const char *what, slab_error_kind_t kind, slab_error_kind_t kind2)
{
    CHECK(reports == expected_reports + 1, "%s: %u reports, expected one %s (last: %s)", what,
          reports - expected_reports, slab_error_kind_name(kind), last_message);
    CHECK(last_kind == kind || last_kind == kind2, "%s: reported %s, expected %s: %s", what,
          slab_error_kind_name(last_kind), slab_error_kind_name(kind), last_message);
    expected_reports++;
}

static void expect_no_new_report(const char *what)
{
    CHECK(reports == expected_reports, "%s: unexpected report: %s", what, last_message);
}

/* ------------------------------------------------------------------ */
/* Patterns                                                             */

/* The pattern loops are most of the time an input takes, and their
 * comparisons tell the fuzzer nothing: no coverage for them. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

#define FULL_FILL 4096 /* objects up to this are filled whole */
#define EDGE 2048      /* larger ones: both ends and a word per page */

NO_COVERAGE static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

enum { FILL, CHECK_TAG, CHECK_ZERO };

/* Fill, or check, bytes [from, to) of p with tag's pattern (or zeros):
 * byte `off` is byte off % 8 (little-endian) of a word made from the tag
 * and off / 8.  Returns the first offset that differs + 1, or 0. */
NO_COVERAGE static size_t span(unsigned char *p, size_t from, size_t to, uint64_t tag, int mode)
{
    for (size_t off = from; off < to;) {
        uint64_t v = mode == CHECK_ZERO ? 0 : mix(tag * 0x100000001b3ULL + (off >> 3));
        size_t end = (off | 7) + 1;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if ((off & 7) == 0 && end <= to) { /* a whole word */
            uint64_t w;
            if (mode == FILL) {
                memcpy(p + off, &v, 8);
            } else {
                memcpy(&w, p + off, 8);
                if (w != v) /* which byte: the first that differs */
                    return off + (size_t)__builtin_ctzll(w ^ v) / 8 + 1;
            }
            off = end;
            continue;
        }
#endif
        if (end > to)
            end = to;
        for (; off < end; off++) {
            unsigned char b = (unsigned char)(v >> (8 * (off & 7)));
            if (mode == FILL)
                p[off] = b;
            else if (p[off] != b)
                return off + 1;
        }
    }
    return 0;
}

/* The parts of an object of `size` bytes the pattern covers, from `hdr`
 * on and below `limit`. */
static size_t walk(void *obj, size_t size, size_t hdr, size_t limit, uint64_t tag, int mode)
{
    unsigned char *p = obj;
    if (limit > size)
        limit = size;
    size_t bad;
    if (size <= FULL_FILL)
        return hdr < limit ? span(p, hdr, limit, tag, mode) : 0;
    size_t a = EDGE < limit ? EDGE : limit;
    if (hdr < a && (bad = span(p, hdr, a, tag, mode)))
        return bad;
    for (size_t off = 4096; off + 8 <= size - EDGE && off + 8 <= limit; off += 4096)
        if ((bad = span(p, off, off + 8, tag, mode)))
            return bad;
    size_t b = size - EDGE > hdr ? size - EDGE : hdr;
    if (b < limit && (bad = span(p, b, limit, tag, mode)))
        return bad;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The model                                                            */

enum kind { K_MALLOC, K_CACHE, K_PAGES };

struct obj {
    uintptr_t addr;
    size_t size;     /* bytes asked for (a cache's object size; pages: the block) */
    uint64_t tag;
    uint8_t kind;
    int8_t cache;    /* K_CACHE: index in caches[] */
    uint8_t order;   /* K_PAGES */
    uint8_t hdr;     /* bytes at the start that the constructor owns */
};

#define MAX_LIVE 512
#define MAX_LIVE_BYTES ((size_t)48 << 20)
#define MAX_HUGE 3
static struct obj live[MAX_LIVE]; /* sorted by address */
static size_t nlive, live_bytes, nhuge;
static uint64_t next_tag;

#define MAX_CACHES 6
#define CTOR_HDR 16

struct mcache {
    slab_cache_t *c;
    size_t size, align;  /* align: what every object must be aligned to */
    int magazines;       /* has per-thread magazines (frees unchecked) */
    int debug;           /* has debug flags (leaks reported at destroy) */
    int ctor, dtor;
    unsigned fail_every; /* the constructor fails every Nth call (0: never) */
    unsigned long ctor_calls, ctor_ok, dtor_calls;
    unsigned serial;
    unsigned hdr;
    size_t nlive;
    unsigned reclaim_n;  /* objects its reclaim callback frees (0: none set) */
};

static struct mcache caches[MAX_CACHES];
static unsigned cache_serial;
static int faults_on, callbacks_on;
static unsigned long reclaim_calls;
/* The object a call is working on: reclaim callbacks leave it alone. */
static uintptr_t pinned;

static size_t obj_len(const struct obj *o) { return o->size ? o->size : 1; }

/* The index of the first live object at or above addr. */
static size_t lower_bound(uintptr_t addr)
{
    size_t lo = 0, hi = nlive;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (live[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct obj *find(const void *p)
{
    size_t i = lower_bound((uintptr_t)p);
    return i < nlive && live[i].addr == (uintptr_t)p ? &live[i] : NULL;
}

static int is_huge(const struct obj *o)
{
    return o->kind == K_MALLOC && o->size > SLAB_HUGE_THRESHOLD;
}

static void hdr_fill(const struct mcache *mc, unsigned char *p)
{
    for (unsigned i = 0; i < mc->hdr; i++)
        p[i] = (unsigned char)(mc->serial * 37 + i * 11 + 5);
}

NO_COVERAGE static int hdr_ok(const struct mcache *mc, const unsigned char *p)
{
    for (unsigned i = 0; i < mc->hdr; i++)
        if (p[i] != (unsigned char)(mc->serial * 37 + i * 11 + 5))
            return 0;
    return 1;
}

/* Check an object's pattern and constructor header. */
static void check_obj(const struct obj *o, const char *what)
{
    size_t bad = walk((void *)o->addr, o->size, o->hdr, o->size, o->tag, CHECK_TAG);
    CHECK(bad == 0, "%s: object %p (%zu bytes, tag %llu) overwritten at byte %zu", what,
          (void *)o->addr, o->size, (unsigned long long)o->tag, bad - 1);
    if (o->kind == K_CACHE)
        CHECK(hdr_ok(&caches[o->cache], (const unsigned char *)o->addr),
              "%s: object %p of cache %d lost its constructed header", what, (void *)o->addr,
              o->cache);
}

/* Take a new object into the model: no overlap with any live one; then
 * fill it.  Returns its record (valid until the model changes). */
static struct obj *add(void *p, size_t size, enum kind kind, int cache, unsigned order,
                       const char *what)
{
    CHECK(nlive < MAX_LIVE, "%s: too many objects", what);
    struct obj o = {(uintptr_t)p, size, ++next_tag, (uint8_t)kind, (int8_t)cache,
                    (uint8_t)order, 0};
    if (kind == K_CACHE)
        o.hdr = (uint8_t)caches[cache].hdr;
    size_t i = lower_bound(o.addr);
    CHECK(i == nlive || live[i].addr >= o.addr + obj_len(&o),
          "%s: %p (%zu bytes) overlaps the live object at %p (%zu bytes)", what, p, size,
          (void *)live[i].addr, live[i].size);
    CHECK(i == 0 || live[i - 1].addr + obj_len(&live[i - 1]) <= o.addr,
          "%s: %p (%zu bytes) overlaps the live object at %p (%zu bytes)", what, p, size,
          (void *)live[i - 1].addr, live[i - 1].size);
    memmove(&live[i + 1], &live[i], (nlive - i) * sizeof live[0]);
    live[i] = o;
    nlive++;
    live_bytes += size;
    if (is_huge(&o))
        nhuge++;
    if (kind == K_CACHE)
        caches[cache].nlive++;
    walk(p, size, o.hdr, size, o.tag, FILL);
    return &live[i];
}

/* Forget an object. */
static void forget(struct obj *o)
{
    size_t i = (size_t)(o - live);
    live_bytes -= o->size;
    if (is_huge(o))
        nhuge--;
    if (o->kind == K_CACHE)
        caches[o->cache].nlive--;
    memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof live[0]);
    nlive--;
}

/* Check and forget an object (before it is freed). */
static void drop(struct obj *o, const char *what)
{
    check_obj(o, what);
    forget(o);
}

/* The k-th live object (k taken modulo their number) that `want` accepts. */
static struct obj *pick(uint16_t k, int (*want)(const struct obj *, const void *), const void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < nlive; i++)
        n += want(&live[i], arg);
    if (!n)
        return NULL;
    k = (uint16_t)(k % n);
    for (size_t i = 0; i < nlive; i++)
        if (want(&live[i], arg) && k-- == 0)
            return &live[i];
    return NULL;
}

static int any_obj(const struct obj *o, const void *arg)
{
    (void)o;
    (void)arg;
    return 1;
}
static int malloc_obj(const struct obj *o, const void *arg) { (void)arg; return o->kind == K_MALLOC; }
/* An object in a slab (a cache's, or a size class's). */
static int slab_obj(const struct obj *o, const void *arg)
{
    (void)arg;
    return o->kind == K_CACHE || (o->kind == K_MALLOC && slab_owner((void *)o->addr) != NULL);
}
/* A page run or a huge mapping of slab_malloc. */
static int big_obj(const struct obj *o, const void *arg)
{
    (void)arg;
    return o->kind == K_MALLOC && slab_owner((void *)o->addr) == NULL;
}
static int pages_obj(const struct obj *o, const void *arg) { (void)arg; return o->kind == K_PAGES; }
static int realloc_obj(const struct obj *o, const void *arg)
{
    (void)arg;
    return o->kind == K_MALLOC || o->kind == K_CACHE;
}
static int of_cache(const struct obj *o, const void *arg)
{
    return o->kind == K_CACHE && &caches[o->cache] == arg;
}
static int reclaimable(const struct obj *o, const void *arg)
{
    return of_cache(o, arg) && o->addr != pinned;
}
static int not_of_cache(const struct obj *o, const void *arg)
{
    return slab_obj(o, NULL) && !of_cache(o, arg);
}

static struct mcache *pick_cache(struct in *in)
{
    unsigned k = u8(in), n = 0;
    for (unsigned i = 0; i < MAX_CACHES; i++)
        n += caches[i].c != NULL;
    if (!n)
        return NULL;
    k %= n;
    for (unsigned i = 0; i < MAX_CACHES; i++)
        if (caches[i].c && k-- == 0)
            return &caches[i];
    return NULL;
}

static int cache_index(const struct mcache *mc) { return (int)(mc - caches); }

/* No room in the model for another object: the allocation is not made. */
static int model_full(void) { return nlive >= MAX_LIVE; }

/* The caches' live counts are the model's (one thread: exact). */
static void check_counts(const char *what)
{
    for (unsigned i = 0; i < MAX_CACHES; i++) {
        if (!caches[i].c)
            continue;
        slab_cache_stats_t st;
        CHECK(slab_cache_stats(caches[i].c, &st) == 0, "%s: stats of cache %u", what, i);
        CHECK(st.active_objs == caches[i].nlive, "%s: cache %u has %zu objects out, the model %zu",
              what, i, st.active_objs, caches[i].nlive);
    }
}

/* A NULL from an allocation: only ENOMEM, and only when memory can be
 * short (faults injected, or a constructor that fails on purpose). */
static void check_null(int err, int may_fail, const char *what)
{
    CHECK(err == ENOMEM, "%s: NULL with errno %d", what, err);
    CHECK(may_fail, "%s: NULL (ENOMEM) with no fault injected", what);
}

static void check_align(const void *p, size_t align, const char *what)
{
    CHECK(((uintptr_t)p & (align - 1)) == 0, "%s: %p is not aligned to %zu", what, p, align);
}

/* The alignment slab_malloc promises for n bytes. */
static size_t malloc_align(size_t n) { return n <= 8 ? 8 : 16; }

/* ------------------------------------------------------------------ */
/* Constructors, destructors, reclaim callbacks                         */

static int ctor(void *obj, void *arg)
{
    struct mcache *mc = arg;
    mc->ctor_calls++;
    if (mc->fail_every && mc->ctor_calls % mc->fail_every == 0)
        return -1;
    hdr_fill(mc, obj);
    mc->ctor_ok++;
    return 0;
}

static void dtor(void *obj, void *arg)
{
    struct mcache *mc = arg;
    mc->dtor_calls++;
    if (mc->ctor)
        CHECK(hdr_ok(mc, obj), "destructor of cache %d: %p is not as constructed",
              cache_index(mc), obj);
}

static void reclaim(void *arg)
{
    struct mcache *mc = arg;
    CHECK(faults_on, "a reclaim callback ran with no fault injected");
    reclaim_calls++;
    if (!callbacks_on)
        return;
    for (unsigned n = 0; n < mc->reclaim_n; n++) {
        struct obj *o = pick((uint16_t)n, reclaimable, mc);
        if (!o)
            break;
        void *p = (void *)o->addr;
        drop(o, "reclaim");
        slab_cache_free(mc->c, p);
    }
}

/* ------------------------------------------------------------------ */
/* Sizes                                                                */

static size_t pick_size(struct in *in)
{
    uint8_t m = u8(in);
    uint16_t v = u16(in);
    static const size_t edges[] = {0, 1, 8, 9, 16, 17, 128, 129, 4096, 4097, 32767, 32768,
                                   32769, 65536, SLAB_HUGE_THRESHOLD, SLAB_HUGE_THRESHOLD + 1};
    size_t n;
    switch (m % 16) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        n = v % 257;
        break;
    case 8: case 9: case 10:
        n = v % 4097;
        break;
    case 11: case 12:
        n = v % (SLAB_KMALLOC_MAX_SIZE + 1);
        break;
    case 13:
        n = edges[v % (sizeof edges / sizeof edges[0])];
        break;
    case 14:
        n = SLAB_KMALLOC_MAX_SIZE + 1 + (size_t)v * 24;
        break;
    default:
        n = SLAB_HUGE_THRESHOLD + 1 + (size_t)(v % 4) * 700000;
        break;
    }
    if (n > SLAB_HUGE_THRESHOLD && nhuge >= MAX_HUGE)
        n = v % 257;
    if (live_bytes + n > MAX_LIVE_BYTES)
        n = v % 257;
    return n;
}

/* ------------------------------------------------------------------ */
/* Operations                                                           */

static void op_create(struct in *in)
{
    static const size_t sizes[] = {1, 8, 13, 24, 64, 96, 100, 192,
                                   256, 500, 1024, 3000, 4096, 5000, 8192, 70000};
    static const size_t aligns[] = {0, 0, 8, 16, 32, 64, 128, 4096};
    size_t size = sizes[u8(in) % 16], align = aligns[u8(in) % 8];
    uint8_t f = u8(in);
    unsigned fail_every = 2 + u8(in) % 24;
    struct mcache *mc = NULL;
    for (unsigned i = 0; i < MAX_CACHES && !mc; i++)
        if (!caches[i].c)
            mc = &caches[i];
    if (!mc)
        return;
    memset(mc, 0, sizeof *mc);
    mc->serial = ++cache_serial;
    slab_flags_t flags = 0;
    if (f & 1)
        flags |= SLAB_HWCACHE_ALIGN;
    if (f & 2)
        flags |= SLAB_CONSISTENCY_CHECKS;
    if (f & 64)
        flags |= SLAB_RED_ZONE | SLAB_POISON;
    mc->ctor = (f & 8) != 0;
    mc->dtor = (f & 16) != 0;
    if (mc->ctor && (f & 32))
        mc->fail_every = fail_every;
    mc->hdr = mc->ctor ? (unsigned)(size < CTOR_HDR ? size : CTOR_HDR) : 0;
    slab_options_t o, saved;
    slab_get_options(&saved);
    o = saved;
    if (f & 4) { /* created while magazines are off: it never has them */
        o.magazines = 0;
        slab_set_options(&o);
    }
    char name[SLAB_NAME_MAX];
    snprintf(name, sizeof name, "fuzz-%u", mc->serial);
    errno = 0;
    slab_cache_t *c = slab_cache_create(name, size, align, flags, mc->ctor ? ctor : NULL,
                                        mc->dtor ? dtor : NULL, mc);
    int err = errno;
    if (f & 4)
        slab_set_options(&saved); /* restarts the fault sequence: as the input says */
    if (!c) {
        check_null(err, faults_on, "slab_cache_create");
        return;
    }
    mc->c = c;
    mc->size = size;
    mc->magazines = saved.magazines && !(f & 4) && !(flags & SLAB_DEBUG_FLAGS);
    mc->debug = (flags & SLAB_DEBUG_FLAGS) != 0;
    size_t a = align ? align : 8;
    if (flags & SLAB_HWCACHE_ALIGN) {
        size_t r = SLAB_CACHE_LINE;
        while (size <= r / 2 && r > 8)
            r /= 2;
        if (r > a)
            a = r;
    }
    mc->align = a;
    slab_cache_stats_t st;
    CHECK(slab_cache_stats(c, &st) == 0, "stats of a new cache");
    CHECK(st.object_size == size && st.align == a, "cache of %zu aligned to %zu: stats say %zu, %zu",
          size, a, st.object_size, st.align);
    CHECK((st.magazine_size != 0) == mc->magazines, "cache %d: magazines %zu, expected %s",
          cache_index(mc), st.magazine_size, mc->magazines ? "some" : "none");
}

/* A new object of mc: aligned, constructed, disjoint from the others. */
static void took_cache_obj(struct mcache *mc, void *p, const char *what)
{
    check_align(p, mc->align, what);
    CHECK(slab_owner(p) == mc->c, "%s: %p is not owned by its cache", what, p);
    if (mc->ctor)
        CHECK(hdr_ok(mc, p), "%s: %p of cache %d is not constructed", what, p, cache_index(mc));
    add(p, mc->size, K_CACHE, cache_index(mc), 0, what);
}

static void op_cache_alloc(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    if (!mc || model_full())
        return;
    errno = 0;
    void *p = slab_cache_alloc(mc->c);
    int err = errno;
    if (!p) {
        check_null(err, faults_on || mc->fail_every, "slab_cache_alloc");
        return;
    }
    took_cache_obj(mc, p, "slab_cache_alloc");
}

static void op_cache_free(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    uint16_t k = u16(in);
    if (!mc)
        return;
    struct obj *o = pick(k, of_cache, mc);
    if (!o)
        return;
    void *p = (void *)o->addr;
    drop(o, "slab_cache_free");
    slab_cache_free(mc->c, p);
}

#define MAX_BULK 64

static void op_cache_alloc_bulk(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    size_t n = u8(in) % MAX_BULK;
    if (!mc || nlive + n > MAX_LIVE)
        return;
    void *ptrs[MAX_BULK];
    memset(ptrs, 0, sizeof ptrs);
    errno = 0;
    size_t got = slab_cache_alloc_bulk(mc->c, n, ptrs);
    int err = errno;
    if (got == 0 && n != 0) {
        check_null(err, faults_on || mc->fail_every, "slab_cache_alloc_bulk");
        check_counts("slab_cache_alloc_bulk: all or nothing");
        return;
    }
    CHECK(got == n, "slab_cache_alloc_bulk(%zu) gave %zu", n, got);
    for (size_t i = 0; i < n; i++) {
        CHECK(ptrs[i] != NULL, "slab_cache_alloc_bulk: entry %zu is NULL", i);
        took_cache_obj(mc, ptrs[i], "slab_cache_alloc_bulk");
    }
}

static void op_cache_free_bulk(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    size_t n = u8(in) % MAX_BULK;
    uint8_t holes = u8(in);
    if (!mc)
        return;
    void *ptrs[MAX_BULK];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (holes & (1u << (i % 8))) {
            ptrs[k++] = NULL; /* skipped */
            continue;
        }
        struct obj *o = pick((uint16_t)(i * 7), of_cache, mc);
        if (!o)
            break;
        ptrs[k++] = (void *)o->addr;
        drop(o, "slab_cache_free_bulk");
    }
    slab_cache_free_bulk(mc->c, k, ptrs);
}

static void op_cache_shrink(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    if (!mc)
        return;
    slab_cache_shrink(mc->c);
    check_counts("slab_cache_shrink");
}

/* The cache is gone: every object it ever constructed was destructed
 * (`st`: its figures just before).  Without a constructor, every object
 * of every slab it grew. */
static void destroyed(struct mcache *mc, const slab_cache_stats_t *st, const char *what)
{
    if (mc->dtor) {
        unsigned long made = mc->ctor ? mc->ctor_ok : (unsigned long)(st->grown * st->objs_per_slab);
        CHECK(made == mc->dtor_calls, "%s: cache %d: %lu objects constructed, %lu destructed",
              what, cache_index(mc), made, mc->dtor_calls);
    }
    memset(mc, 0, sizeof *mc);
}

static void op_cache_destroy(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    if (!mc)
        return;
    slab_cache_stats_t st;
    CHECK(slab_cache_stats(mc->c, &st) == 0, "slab_cache_stats");
    errno = 0;
    leaked_objects = 0;
    int r = slab_cache_destroy(mc->c);
    int err = errno;
    CHECK(leaked_objects == (mc->debug ? mc->nlive : 0),
          "slab_cache_destroy: %zu objects reported leaked, the model %zu live%s", leaked_objects,
          mc->nlive, mc->debug ? "" : " (no debug flags: none expected)");
    if (mc->nlive) { /* misuse: reported, the cache stays as it was */
        CHECK(r == -1 && err == EBUSY, "slab_cache_destroy with %zu live: %d, errno %d",
              mc->nlive, r, err);
        expect_report("slab_cache_destroy with live objects", SLAB_ERR_BUSY, SLAB_ERR_BUSY);
        CHECK(last_count == mc->nlive, "slab_cache_destroy: reported %zu live, the model %zu",
              last_count, mc->nlive);
        check_counts("slab_cache_destroy refused");
        return;
    }
    CHECK(r == 0, "slab_cache_destroy of an empty cache: %d, errno %d", r, err);
    destroyed(mc, &st, "slab_cache_destroy");
}

static void took_malloc(void *p, size_t n, size_t align, const char *what)
{
    check_align(p, align, what);
    size_t u = slab_usable_size(p);
    CHECK(u >= n, "%s: usable size %zu below the %zu bytes asked for", what, u, n);
    add(p, n, K_MALLOC, -1, 0, what);
}

static void op_malloc(struct in *in)
{
    size_t n = pick_size(in);
    if (model_full())
        return;
    errno = 0;
    void *p = slab_malloc(n);
    int err = errno;
    if (!p) {
        check_null(err, faults_on, "slab_malloc");
        return;
    }
    took_malloc(p, n, malloc_align(n), "slab_malloc");
}

static void op_calloc(struct in *in)
{
    uint8_t m = u8(in);
    size_t count = 1 + u8(in) % 16, size = pick_size(in) / count;
    int overflow = m % 16 == 0; /* or beyond PTRDIFF_MAX: ENOMEM either way */
    if (overflow) {
        count = SIZE_MAX / 4 + (m >> 4);
        size = 4 + (m & 3);
    }
    if (model_full())
        return;
    errno = 0;
    void *p = slab_calloc(count, size);
    int err = errno;
    if (overflow) {
        CHECK(!p && err == ENOMEM, "slab_calloc(%zu, %zu) overflows: %p, errno %d", count, size,
              p, err);
        return;
    }
    if (!p) {
        check_null(err, faults_on, "slab_calloc");
        return;
    }
    size_t n = count * size, bad = walk(p, n, 0, n, 0, CHECK_ZERO);
    CHECK(bad == 0, "slab_calloc(%zu, %zu): byte %zu is not zero", count, size, bad - 1);
    took_malloc(p, n, malloc_align(n), "slab_calloc");
}

static void op_realloc(struct in *in)
{
    uint8_t m = u8(in);
    uint16_t k = u16(in);
    size_t n = pick_size(in);
    /* a cache's object too: it goes back to its cache if it moves */
    struct obj *o = m % 8 == 0 ? NULL : pick(k, m & 64 ? realloc_obj : malloc_obj, NULL);
    if (m % 8 == 1)
        n = 0; /* frees */
    if (!o && model_full())
        return;
    void *old = o ? (void *)o->addr : NULL;
    struct obj before;
    if (o) {
        check_obj(o, "slab_realloc");
        before = *o;
        if (live_bytes - o->size + n > MAX_LIVE_BYTES)
            n = o->size;
        if (n > SLAB_HUGE_THRESHOLD && nhuge >= MAX_HUGE && !is_huge(o))
            n = 64;
    }
    errno = 0;
    pinned = (uintptr_t)old;
    void *p = slab_realloc(old, n);
    int err = errno;
    pinned = 0;
    if (!old) {
        if (!p) {
            check_null(err, faults_on, "slab_realloc(NULL)");
            return;
        }
        took_malloc(p, n, malloc_align(n), "slab_realloc(NULL)");
        return;
    }
    /* a reclaim callback may have changed the model: look old up again */
    o = find(old);
    CHECK(o && o->tag == before.tag, "slab_realloc: the model lost %p", old);
    if (n == 0) {
        CHECK(p == NULL, "slab_realloc(p, 0) returned %p", p);
        forget(o); /* freed; it was intact before */
        return;
    }
    if (!p) {
        check_null(err, faults_on, "slab_realloc");
        check_obj(o, "slab_realloc failed: the old object must be untouched");
        return;
    }
    /* the contents up to the smaller size moved with it */
    size_t keep = before.size < n ? before.size : n;
    size_t bad = walk(p, before.size, before.hdr, keep, before.tag, CHECK_TAG);
    CHECK(bad == 0, "slab_realloc %p (%zu) -> %p (%zu): byte %zu not kept", old, before.size, p,
          n, bad - 1);
    if (before.kind == K_CACHE && p == old) { /* kept in place: still the cache's */
        CHECK(n <= before.size, "slab_realloc kept %p (%zu bytes) for %zu bytes", p,
              before.size, n);
        check_obj(o, "slab_realloc in place");
        return;
    }
    forget(o);
    took_malloc(p, n, malloc_align(n), "slab_realloc");
}

static void op_aligned(struct in *in)
{
    uint8_t a = u8(in);
    size_t n = pick_size(in);
    size_t align = (size_t)1 << (a % 23);
    if (align > SLAB_HUGE_THRESHOLD) { /* a mapping of its own, whatever the size */
        if (nhuge >= MAX_HUGE || live_bytes + 2 * align > MAX_LIVE_BYTES)
            align = 64;
        else if (n <= SLAB_HUGE_THRESHOLD)
            n = SLAB_HUGE_THRESHOLD + 1; /* so that the model counts it as one */
    }
    if (model_full())
        return;
    errno = 0;
    void *p = slab_aligned_alloc(align, n);
    int err = errno;
    if (!p) {
        check_null(err, faults_on, "slab_aligned_alloc");
        return;
    }
    took_malloc(p, n, align < 8 ? 8 : align, "slab_aligned_alloc");
}

static void op_free(struct in *in)
{
    uint8_t m = u8(in);
    uint16_t k = u16(in);
    struct obj *o = pick(k, any_obj, NULL);
    if (!o)
        return;
    struct obj c = *o;
    drop(o, "free");
    void *p = (void *)c.addr;
    if (c.kind == K_PAGES)
        slab_pages_free(p, c.order);
    else if (c.kind == K_CACHE && (m & 1))
        slab_cache_free(caches[c.cache].c, p);
    else
        slab_free(p); /* a cache's object goes back to its cache */
}

static void op_usable(struct in *in)
{
    struct obj *o = pick(u16(in), any_obj, NULL);
    if (!o || o->kind == K_PAGES)
        return;
    size_t u = slab_usable_size((void *)o->addr);
    if (o->kind == K_CACHE)
        CHECK(u == o->size, "slab_usable_size of a cache object: %zu, object size %zu", u, o->size);
    else
        CHECK(u >= o->size, "slab_usable_size %zu below %zu", u, o->size);
    expect_no_new_report("slab_usable_size");
}

static void op_pages(struct in *in)
{
    uint8_t m = u8(in);
    if (m & 1) {
        struct obj *o = pick(u16(in), pages_obj, NULL);
        if (!o)
            return;
        struct obj c = *o;
        drop(o, "slab_pages_free");
        slab_pages_free((void *)c.addr, c.order);
        return;
    }
    unsigned order = (m >> 1) % 5;
    if (model_full() || live_bytes + (4096u << order) > MAX_LIVE_BYTES)
        return;
    errno = 0;
    void *p = slab_pages_alloc(order);
    int err = errno;
    if (!p) {
        check_null(err, faults_on, "slab_pages_alloc");
        return;
    }
    check_align(p, (size_t)4096 << order, "slab_pages_alloc");
    add(p, (size_t)4096 << order, K_PAGES, -1, order, "slab_pages_alloc");
}

static void check_all(const char *what)
{
    for (size_t i = 0; i < nlive; i++)
        check_obj(&live[i], what);
}

static void verify(const char *what)
{
    size_t problems = slab_verify();
    CHECK(problems == 0, "%s: slab_verify() found %zu problems (last: %s)", what, problems,
          last_message);
}

static void op_faults(struct in *in)
{
    uint8_t m = u8(in), n = u8(in);
    uint32_t seed = u32(in);
    slab_options_t o;
    slab_get_options(&o);
    o.fault_every = o.fault_one_in = 0;
    o.fault_seed = seed;
    switch (m % 4) {
    case 1:
        o.fault_one_in = 2 + n % 40;
        break;
    case 2:
        o.fault_every = 1 + n % 16;
        break;
    case 3:
        o.fault_one_in = 2 + n % 8;
        o.fault_every = 3 + n % 5;
        break;
    default:
        break;
    }
    CHECK(slab_set_options(&o) == 0, "slab_set_options");
    faults_on = o.fault_every || o.fault_one_in;
}

static void op_options(struct in *in)
{
    static const size_t depot[] = {0, 1, 4096, (size_t)128 << 10};
    uint8_t m = u8(in);
    slab_options_t o;
    slab_get_options(&o);
    o.depot_bytes = depot[m % 4];
    /* the automatic reap every millisecond, now and then */
    o.reap_interval_ms = (m >> 2) % 8 == 0 ? 1 : 0;
    CHECK(slab_set_options(&o) == 0, "slab_set_options");
}

static void op_reclaim(struct in *in)
{
    struct mcache *mc = pick_cache(in);
    uint8_t n = u8(in);
    if (!mc)
        return;
    mc->reclaim_n = n % 5 == 0 ? 0 : n % 5 == 4 ? MAX_LIVE : (unsigned)(n % 5) * 4;
    CHECK(slab_cache_set_reclaim(mc->c, mc->reclaim_n ? reclaim : NULL, mc) == 0,
          "slab_cache_set_reclaim");
}

/* Misuse: reported once, ignored; nothing changes. */
static void op_misuse(struct in *in)
{
    uint8_t m = u8(in);
    uint16_t k = u16(in);
    char local[64];
    memset(local, 0x5c, sizeof local);
    void *stack = local + 8;
    /* frees to a cache without magazines are checked */
    struct mcache *nomags[MAX_CACHES], *nomag = NULL;
    unsigned nn = 0;
    for (unsigned i = 0; i < MAX_CACHES; i++)
        if (caches[i].c && !caches[i].magazines)
            nomags[nn++] = &caches[i];
    if (nn)
        nomag = nomags[k % nn];
    struct obj *o;
    switch (m % 14) {
    case 0: /* inside a page run or a huge mapping */
        if (!(o = pick(k, big_obj, NULL)) || o->size < 8192)
            return;
        slab_free((char *)o->addr + (m & 16 ? 4096 : 16));
        expect_report("slab_free inside a run", SLAB_ERR_INTERIOR, SLAB_ERR_INTERIOR);
        check_obj(o, "slab_free inside a run");
        CHECK(slab_usable_size((void *)o->addr) >= o->size, "the run shrank");
        break;
    case 1:
        slab_free(stack);
        expect_report("slab_free of a stack address", SLAB_ERR_FOREIGN, SLAB_ERR_FOREIGN);
        break;
    case 2:
        CHECK(slab_usable_size(stack) == 0, "slab_usable_size of a stack address");
        expect_report("slab_usable_size of a stack address", SLAB_ERR_FOREIGN, SLAB_ERR_FOREIGN);
        break;
    case 3: /* not the start of a slab object */
        if (!(o = pick(k, slab_obj, NULL)))
            return;
        CHECK(slab_usable_size((char *)o->addr + 1) == 0, "slab_usable_size inside an object");
        expect_report("slab_usable_size inside an object", SLAB_ERR_INTERIOR, SLAB_ERR_INTERIOR);
        break;
    case 4: /* another cache's object, to a cache without magazines */
        if (!nomag || !(o = pick(k, not_of_cache, nomag)))
            return;
        slab_cache_free(nomag->c, (void *)o->addr);
        expect_report("slab_cache_free to the wrong cache", SLAB_ERR_WRONG_CACHE,
                      SLAB_ERR_WRONG_CACHE);
        check_obj(o, "slab_cache_free to the wrong cache");
        break;
    case 5: /* inside its own object, or foreign, to a cache without magazines */
        if (!nomag)
            return;
        if ((o = pick(k, of_cache, nomag)) && !(m & 16)) {
            slab_cache_free(nomag->c, (char *)o->addr + 1);
            expect_report("slab_cache_free inside an object", SLAB_ERR_INTERIOR,
                          SLAB_ERR_INTERIOR);
            check_obj(o, "slab_cache_free inside an object");
        } else {
            slab_cache_free(nomag->c, stack);
            expect_report("slab_cache_free of a stack address", SLAB_ERR_FOREIGN,
                          SLAB_ERR_FOREIGN);
        }
        break;
    case 6: { /* a double free in a cache without magazines */
        if (!nomag || model_full())
            return;
        errno = 0;
        void *p = slab_cache_alloc(nomag->c);
        int err = errno;
        if (!p) {
            check_null(err, faults_on || nomag->fail_every, "slab_cache_alloc");
            return;
        }
        took_cache_obj(nomag, p, "slab_cache_alloc");
        drop(find(p), "slab_cache_free");
        slab_cache_free(nomag->c, p);
        expect_no_new_report("slab_cache_free");
        slab_cache_free(nomag->c, p);
        /* its slab may have gone back to the pages already: then foreign */
        expect_report("double free", SLAB_ERR_DOUBLE_FREE, SLAB_ERR_FOREIGN);
        break;
    }
    case 7: { /* bad arguments to slab_cache_create */
        static const struct { size_t size, align; slab_flags_t flags; int null_name; } bad[] = {
            {0, 0, 0, 0}, {64, 0, 0, 1}, {SLAB_MAX_OBJECT_SIZE + 1, 0, 0, 0},
            {64, 3, 0, 0}, {64, 8192, 0, 0}, {64, 0, 0x4, 0},
        };
        unsigned i = k % 6;
        errno = 0;
        slab_cache_t *c = slab_cache_create(bad[i].null_name ? NULL : "fuzz-bad", bad[i].size,
                                            bad[i].align, bad[i].flags, NULL, NULL, NULL);
        CHECK(!c && errno == EINVAL, "slab_cache_create with bad argument %u: %p, errno %d", i,
              (void *)c, errno);
        expect_report("slab_cache_create", SLAB_ERR_INVALID_ARG, SLAB_ERR_INVALID_ARG);
        break;
    }
    case 8: { /* an alignment that is not a power of two */
        static const size_t bad[] = {3, 24, 48, 96, 100, 4097, 12288, (size_t)3 << 20};
        errno = 0;
        void *p = slab_aligned_alloc(bad[k % 8], 64);
        CHECK(!p && errno == EINVAL, "slab_aligned_alloc with a bad alignment: %p, errno %d", p,
              errno);
        expect_report("slab_aligned_alloc", SLAB_ERR_INVALID_ARG, SLAB_ERR_INVALID_ARG);
        break;
    }
    case 9: /* realloc of a pointer that is not an allocation */
        errno = 0;
        if ((m & 32) && (o = pick(k, slab_obj, NULL))) {
            char *inside = (char *)o->addr + ((m & 16) && o->size > 8 ? 8 : 1);
            CHECK(slab_realloc(inside, 1 + (size_t)(k % 300)) == NULL && errno == EINVAL,
                  "slab_realloc inside an object");
            expect_report("slab_realloc inside an object", SLAB_ERR_INTERIOR, SLAB_ERR_INTERIOR);
            check_obj(o, "slab_realloc inside an object");
        } else if ((o = pick(k, big_obj, NULL)) && o->size >= 8192 && (m & 16)) {
            CHECK(slab_realloc((char *)o->addr + 4096, 100) == NULL && errno == EINVAL,
                  "slab_realloc inside a run");
            expect_report("slab_realloc inside a run", SLAB_ERR_INTERIOR, SLAB_ERR_INTERIOR);
            check_obj(o, "slab_realloc inside a run");
        } else {
            CHECK(slab_realloc(stack, 100) == NULL && errno == EINVAL,
                  "slab_realloc of a stack address");
            expect_report("slab_realloc of a stack address", SLAB_ERR_FOREIGN, SLAB_ERR_FOREIGN);
        }
        break;
    case 10: /* blocks of pages freed wrongly */
        if ((o = pick(k, pages_obj, NULL)) && (m & 16)) {
            slab_pages_free((void *)o->addr, o->order + 1);
            expect_report("slab_pages_free with the wrong order", SLAB_ERR_BAD_PAGES,
                          SLAB_ERR_BAD_PAGES);
            check_obj(o, "slab_pages_free with the wrong order");
        } else if ((o = pick(k, slab_obj, NULL))) {
            slab_pages_free((void *)o->addr, 0);
            expect_report("slab_pages_free of an object", SLAB_ERR_BAD_PAGES, SLAB_ERR_BAD_PAGES);
            check_obj(o, "slab_pages_free of an object");
        } else {
            slab_pages_free(stack, 0);
            expect_report("slab_pages_free of a stack address", SLAB_ERR_FOREIGN,
                          SLAB_ERR_FOREIGN);
        }
        break;
    case 11: /* a block of pages to slab_free */
        if (!(o = pick(k, pages_obj, NULL)))
            return;
        slab_free((void *)o->addr);
        expect_report("slab_free of a block of pages", SLAB_ERR_BAD_PAGES, SLAB_ERR_BAD_PAGES);
        check_obj(o, "slab_free of a block of pages");
        break;
    case 12: { /* bad arguments: not a cache, NULL arrays, a size class, an order */
        slab_cache_stats_t st;
        slab_cache_t *km = slab_kmalloc_cache(64);
        const char *what = "";
        int ok = 0;
        errno = 0;
        switch (k % 7) {
        case 0:
            what = "slab_cache_stats of a stack address";
            ok = slab_cache_stats((const slab_cache_t *)stack, &st) == -1 && errno == EINVAL;
            break;
        case 1:
            what = "slab_cache_alloc(NULL)";
            ok = slab_cache_alloc(NULL) == NULL && errno == EINVAL;
            break;
        case 2:
            what = "slab_cache_stats with no buffer";
            ok = slab_cache_stats(km, NULL) == -1 && errno == EINVAL;
            break;
        case 3:
            what = "slab_cache_alloc_bulk into NULL";
            ok = slab_cache_alloc_bulk(km, 3, NULL) == 0 && errno == EINVAL;
            break;
        case 4:
            what = "slab_cache_free_bulk from NULL";
            slab_cache_free_bulk(km, 2, NULL);
            ok = 1;
            break;
        case 5:
            what = "slab_cache_destroy of a size class";
            ok = slab_cache_destroy(km) == -1 && errno == EINVAL;
            break;
        default:
            what = "slab_pages_alloc above the largest order";
            ok = slab_pages_alloc(SLAB_MAX_ORDER + 1 + k % 5) == NULL && errno == EINVAL;
            break;
        }
        CHECK(ok, "%s: errno %d", what, errno);
        expect_report(what, SLAB_ERR_INVALID_ARG, SLAB_ERR_INVALID_ARG);
        break;
    }
    default: /* a NULL cache for a live object */
        if (!(o = pick(k, slab_obj, NULL)))
            return;
        slab_cache_free(NULL, (void *)o->addr);
        expect_report("slab_cache_free(NULL, p)", SLAB_ERR_INVALID_ARG, SLAB_ERR_INVALID_ARG);
        check_obj(o, "slab_cache_free(NULL, p)");
        break;
    }
    check_counts("misuse");
    for (size_t i = 0; i < sizeof local; i++)
        CHECK((unsigned char)local[i] == 0x5c, "misuse wrote to the stack at %zu", i);
}

/* ------------------------------------------------------------------ */
/* One input                                                            */

static slab_options_t start_options;
static slab_memory_info_t start_mem;
/* FUZZ_API_TRACE=1 in the environment: a line per operation on stderr. */
static int trace;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *t = getenv("FUZZ_API_TRACE");
    trace = t && *t && *t != '0';
    slab_set_error_hook(hook, NULL);
    /* Every size class made now, with magazines, so that no input decides
     * for the inputs after it whether a class has them. */
    slab_options_t o;
    slab_get_options(&o);
    o.magazines = 1;
    o.reap_interval_ms = 0;
    o.debug_abort = 0; /* misuse in a debug cache is reported, not fatal */
    o.fault_every = o.fault_one_in = 0;
    slab_set_options(&o);
    for (size_t i = 0; i < slab_size_class_count(); i++)
        CHECK(slab_kmalloc_cache(slab_size_class(i)) != NULL, "size class %zu", i);
    return 0;
}

static void end_input(void)
{
    callbacks_on = 0;
    /* the options as they were: faults off, before anything is freed */
    CHECK(slab_set_options(&start_options) == 0, "slab_set_options");
    faults_on = 0;
    check_all("end of input");
    while (nlive) {
        struct obj c = live[nlive - 1];
        drop(&live[nlive - 1], "end of input");
        if (c.kind == K_PAGES)
            slab_pages_free((void *)c.addr, c.order);
        else if (c.kind == K_CACHE)
            slab_cache_free(caches[c.cache].c, (void *)c.addr);
        else
            slab_free((void *)c.addr);
    }
    for (unsigned i = 0; i < MAX_CACHES; i++) {
        if (!caches[i].c)
            continue;
        slab_cache_stats_t st;
        CHECK(slab_cache_stats(caches[i].c, &st) == 0, "slab_cache_stats");
        errno = 0;
        int r = slab_cache_destroy(caches[i].c);
        CHECK(r == 0, "end of input: slab_cache_destroy of cache %u: %d, errno %d (%s)", i, r,
              errno, last_message);
        destroyed(&caches[i], &st, "end of input");
    }
    expect_no_new_report("end of input");
    verify("end of input");
    slab_options_t o;
    slab_get_options(&o);
    CHECK(o.magazines == start_options.magazines &&
              o.reap_interval_ms == start_options.reap_interval_ms &&
              o.depot_bytes == start_options.depot_bytes &&
              o.debug_abort == start_options.debug_abort &&
              o.fault_every == start_options.fault_every &&
              o.fault_one_in == start_options.fault_one_in &&
              o.fault_seed == start_options.fault_seed,
          "the options were not restored");
    slab_memory_info_t mi;
    CHECK(slab_memory_info(&mi) == 0, "slab_memory_info");
    CHECK(mi.object_bytes == start_mem.object_bytes,
          "object_bytes %zu with everything freed, %zu at the start", mi.object_bytes,
          start_mem.object_bytes);
    CHECK(mi.run_bytes == start_mem.run_bytes && mi.pages_bytes == start_mem.pages_bytes &&
              mi.huge_bytes == start_mem.huge_bytes,
          "runs %zu, pages %zu, huge %zu bytes with everything freed; %zu, %zu, %zu at the start",
          mi.run_bytes, mi.pages_bytes, mi.huge_bytes, start_mem.run_bytes, start_mem.pages_bytes,
          start_mem.huge_bytes);
    expect_no_new_report("end of input");
    if (trace)
        fprintf(stderr, "end: mapped %zu (arenas %zu, metadata %zu, huge %zu), resident %zu, "
                "free %zu (dirty %zu), slabs %zu\n", mi.mapped_bytes, mi.arena_bytes,
                mi.metadata_bytes, mi.huge_bytes, mi.resident_bytes, mi.free_bytes,
                mi.free_dirty_bytes, mi.slab_bytes);
    reports = expected_reports = 0;
}

enum {
    OP_CREATE, OP_CACHE_ALLOC, OP_CACHE_FREE, OP_ALLOC_BULK, OP_FREE_BULK, OP_SHRINK,
    OP_DESTROY, OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_ALIGNED, OP_FREE, OP_USABLE, OP_REAP,
    OP_VERIFY, OP_MISUSE, OP_FAULTS, OP_OPTIONS, OP_RECLAIM, OP_PAGES, OP_CHECK_ALL,
};

/* Allocations and frees are the most frequent. */
static const uint8_t op_table[32] = {
    OP_CREATE, OP_CREATE, OP_CACHE_ALLOC, OP_CACHE_ALLOC, OP_CACHE_ALLOC, OP_CACHE_FREE,
    OP_CACHE_FREE, OP_ALLOC_BULK, OP_FREE_BULK, OP_SHRINK, OP_DESTROY, OP_MALLOC, OP_MALLOC,
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC, OP_ALIGNED, OP_FREE, OP_FREE, OP_FREE,
    OP_USABLE, OP_REAP, OP_VERIFY, OP_MISUSE, OP_MISUSE, OP_FAULTS, OP_OPTIONS, OP_RECLAIM,
    OP_PAGES, OP_CHECK_ALL, OP_MALLOC,
};

static const char *const op_names[] = {
    "create", "cache_alloc", "cache_free", "alloc_bulk", "free_bulk", "shrink", "destroy",
    "malloc", "calloc", "realloc", "aligned", "free", "usable", "reap", "verify", "misuse",
    "faults", "options", "reclaim", "pages", "check_all",
};

#define MAX_OPS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    slab_get_options(&start_options);
    CHECK(slab_memory_info(&start_mem) == 0, "slab_memory_info");
    reports = expected_reports = 0;
    callbacks_on = 1;
    faults_on = 0;
    for (unsigned ops = 0; in.n && ops < MAX_OPS; ops++) {
        uint8_t op = op_table[u8(&in) % 32];
        switch (op) {
        case OP_CREATE: op_create(&in); break;
        case OP_CACHE_ALLOC: op_cache_alloc(&in); break;
        case OP_CACHE_FREE: op_cache_free(&in); break;
        case OP_ALLOC_BULK: op_cache_alloc_bulk(&in); break;
        case OP_FREE_BULK: op_cache_free_bulk(&in); break;
        case OP_SHRINK: op_cache_shrink(&in); break;
        case OP_DESTROY: op_cache_destroy(&in); break;
        case OP_MALLOC: op_malloc(&in); break;
        case OP_CALLOC: op_calloc(&in); break;
        case OP_REALLOC: op_realloc(&in); break;
        case OP_ALIGNED: op_aligned(&in); break;
        case OP_FREE: op_free(&in); break;
        case OP_USABLE: op_usable(&in); break;
        case OP_REAP: slab_reap(); break;
        case OP_VERIFY: verify("slab_verify"); break;
        case OP_MISUSE: op_misuse(&in); break;
        case OP_FAULTS: op_faults(&in); break;
        case OP_OPTIONS: op_options(&in); break;
        case OP_RECLAIM: op_reclaim(&in); break;
        case OP_PAGES: op_pages(&in); break;
        default: check_all("check"); break;
        }
        expect_no_new_report("operation");
        if (trace)
            fprintf(stderr, "%4u %-11s live %3zu (%zu bytes), caches %u%u%u%u%u%u, faults %d, "
                    "reports %u, reclaims %lu\n", ops, op_names[op], nlive, live_bytes,
                    caches[0].c != NULL, caches[1].c != NULL, caches[2].c != NULL,
                    caches[3].c != NULL, caches[4].c != NULL, caches[5].c != NULL, faults_on,
                    reports, reclaim_calls);
    }
    end_input();
    return 0;
}
