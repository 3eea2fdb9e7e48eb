/*
 * annotate.c - owns what valgrind's memcheck and AddressSanitizer are
 * told about libslab's memory, so that they see the objects libslab
 * recycles as a malloc would have them seen: allocated while the program
 * holds them, freed (inaccessible, with the stacks of their allocation
 * and free in memcheck's reports) once it gave them back, leaked when it
 * lost them.  Memcheck hears client requests (MALLOCLIKE_BLOCK,
 * FREELIKE_BLOCK, RESIZEINPLACE_BLOCK, MAKE_MEM_*) when slab__annotate
 * was set at boot (RUNNING_ON_VALGRIND); ASan builds poison and unpoison
 * shadow memory always.  Built with SLAB_NO_ANNOTATE, this file is empty.
 *
 * Invariants, as the tools see them:
 *   - An object or block the program holds is a heap block of the size
 *     it asked for: a cache's object size (defined when the cache has a
 *     constructor, the object's state being constructed; undefined
 *     otherwise), a kmalloc request's bytes (undefined; calloc defines
 *     them by zeroing, or a huge mapping by being fresh).
 *   - In a slab of a cache that is not libslab's own, every byte no held
 *     object covers is inaccessible: free objects (also those waiting in
 *     magazines), the padding of each object to its stride, the colour
 *     offset and the leftover.  The free bitmap at a slab's end is not.
 *     So for a kmalloc block, the bytes from its request size to its
 *     usable size are inaccessible (until slab_usable_size() tells the
 *     program all of them are its own), and the first inaccessible byte
 *     tells the block's size: realloc needs no header (annotate_km_size;
 *     a program that makes part of its own block inaccessible misleads
 *     it).
 *   - A block is declared freed before libslab can hand it out again
 *     (on a magazine fast path just after the push: only the pushing
 *     thread could pop it, and it is still in the free call), and
 *     allocated only after libslab handed it out.
 *   - libslab's own caches (CACHE_INTERNAL: cache descriptors,
 *     magazines, tcache chunks, huge descriptors) are never annotated.
 *   - Whoever takes a block from the buddy allocator gets it accessible
 *     (buddy_alloc: undefined); libslab makes memory accessible and
 *     defined again before it reads it or gives it away (a slab before
 *     its destructors run, an arena or a huge mapping before it goes
 *     back to the page source), so ASan never keeps poison on memory
 *     that is unmapped and mapped again by someone else.
 *   - No word memcheck's leak checker scans still points at an object
 *     the program holds, so a lost object is "definitely lost": a pop
 *     leaves the object's pointer in its magazine above the rounds, and
 *     it is cleared there, and magazines emptied into the slab layer
 *     have their arrays made undefined (memcheck does not follow
 *     undefined words).  Two pointers stay: a slab's s_mem points at its
 *     first object and a huge mapping's descriptor at the mapping, so
 *     those two, when lost, show as "still reachable".
 *
 * Double frees are told once: where the slab layer checks every free (a
 * cache without magazines) by libslab's report, where it does not (the
 * magazine fast path trusts the pointer) by memcheck's "Invalid free".
 * Pointers that are no object (foreign, interior, another cache's) are
 * never annotated: libslab reports them, and the memory they point at is
 * not libslab's to poison.
 */
#include "annotate.h"

#include "kmalloc.h"

#ifndef SLAB_NO_ANNOTATE

#ifndef SLAB_HAVE_MEMCHECK_H
#define SLAB_HAVE_MEMCHECK_H 0
#endif
#if SLAB_HAVE_MEMCHECK_H
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
#if SLAB_ASAN
#include <sanitizer/asan_interface.h>
#endif

int slab__annotate;

void annotate_boot(void)
{
    __atomic_store_n(&slab__annotate, RUNNING_ON_VALGRIND ? 1 : 0, __ATOMIC_RELAXED);
}

static inline bool on_valgrind(void)
{
    return SLAB_HAVE_MEMCHECK_H && __atomic_load_n(&slab__annotate, __ATOMIC_RELAXED);
}

/* ---- the tools' primitives ---- */

/* A memcheck client request (a statement), when running under valgrind. */
#if SLAB_HAVE_MEMCHECK_H
#define MEMCHECK(request)                                                     \
    do {                                                                      \
        if (on_valgrind()) {                                                  \
            request;                                                          \
        }                                                                     \
    } while (0)
#else
#define MEMCHECK(request) ((void)0)
#endif

static void asan_poison(const void *p, size_t n)
{
#if SLAB_ASAN
    if (n)
        ASAN_POISON_MEMORY_REGION(p, n);
#else
    (void)p, (void)n;
#endif
}

static void asan_unpoison(const void *p, size_t n)
{
#if SLAB_ASAN
    if (n)
        ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    (void)p, (void)n;
#endif
}

static void mem_noaccess(const void *p, size_t n)
{
    MEMCHECK((void)VALGRIND_MAKE_MEM_NOACCESS(p, n));
    asan_poison(p, n);
}

static void mem_undefined(const void *p, size_t n)
{
    MEMCHECK((void)VALGRIND_MAKE_MEM_UNDEFINED(p, n));
    asan_unpoison(p, n);
}

static void mem_defined(const void *p, size_t n)
{
    MEMCHECK((void)VALGRIND_MAKE_MEM_DEFINED(p, n));
    asan_unpoison(p, n);
}

static void block_alloc(const void *p, size_t n, bool defined)
{
    MEMCHECK(VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, defined));
    asan_unpoison(p, n);
}

/* Free a block; `usable` bytes at p go inaccessible (memcheck knows the
 * block's size itself). */
static void block_free(const void *p, size_t usable)
{
    MEMCHECK(VALGRIND_FREELIKE_BLOCK(p, 0));
    asan_poison(p, usable);
}

/* The block at p changes from `from` to `to` bytes in place: memcheck
 * keeps what the common part held, makes a grown part undefined and a
 * shrunk part inaccessible.  It resizes nothing to 0 bytes (malloc(0)
 * from a class's slow path): that block is freed and made anew. */
static void block_resize(const void *p, size_t from, size_t to)
{
    if (to == 0) {
        block_free(p, from);
        block_alloc(p, 0, false);
        return;
    }
    MEMCHECK(VALGRIND_RESIZEINPLACE_BLOCK(p, from, to, 0));
    if (to > from)
        asan_unpoison(p, to);
    else
        asan_poison((const char *)p + to, from - to);
}

/* Is the byte at p accessible?  Memcheck's GET_VBITS fails with 3, and
 * reports nothing, when it is not. */
static bool memcheck_accessible(const void *p)
{
#if SLAB_HAVE_MEMCHECK_H
    unsigned char vbits;
    return VALGRIND_GET_VBITS(p, &vbits, 1) != 3;
#else
    (void)p;
    return true;
#endif
}

/* ---- which block a pointer is ---- */

struct block {
    const struct slab_cache *cache; /* a slab object's cache, else NULL */
    struct slab_page *slab;
    size_t idx;                     /* the object's index in its slab */
    size_t usable;
};

/* p is the start of an object of c (*b: its slab, index and size). */
static bool object_of(const struct slab_cache *c, const void *p, struct block *b)
{
    struct slab_page *pg = addr_to_page(p);
    if (!pg)
        return false;
    struct slab_page *s = page_kind(pg) == PG_TAIL ? pg->head : pg;
    if (!s || page_kind(s) != PG_SLAB || s->cache != c || (c->flags & CACHE_INTERNAL))
        return false;
    long i = slab_obj_index(c, s, p);
    if (i < 0)
        return false;
    b->cache = c;
    b->slab = s;
    b->idx = (size_t)i;
    b->usable = c->size;
    return true;
}

/* p is something kmalloc's free would take: an object of any cache but
 * libslab's own, the start of a run, or the start of a huge mapping. */
static bool km_block(const void *p, struct block *b)
{
    void *entry = map_entry(p);
    if (!entry)
        return false;
    struct huge *h = huge_of_entry(entry);
    if (h) {
        b->cache = NULL;
        b->usable = h->bytes;
        return p == h->base;
    }
    struct slab_page *s = km_slab_of(p, entry);
    if (s)
        return object_of(s->cache, p, b);
    struct slab_arena *a = entry;
    struct slab_page *pg = &a->pages[((uintptr_t)p & (ARENA_SIZE - 1)) >> PAGE_SHIFT];
    b->cache = NULL;
    b->usable = (size_t)pg->run_pages << PAGE_SHIFT;
    return page_kind(pg) == PG_RUN && ((uintptr_t)p & (PAGE_SIZE - 1)) == 0;
}

/* Where the slab layer checks every free (no magazines), it reports a
 * double free itself, and with F refuses any free from a slab whose
 * bitmap is damaged: the tools are not told of a free that will not
 * happen. */
static bool checked_double_free(const struct block *b)
{
    const struct slab_cache *c = b->cache;
    if (!c || c->id != TC_NO_ID)
        return false;
    struct slab_cache *mc = (struct slab_cache *)c;
    slab_lock(&mc->lock);
    bool refused = page_kind(b->slab) == PG_SLAB &&
                   (slab_is_free(b->slab, b->idx) ||
                    ((c->flags & SLAB_CONSISTENCY_CHECKS) && !debug_slab_ok(c, b->slab)));
    slab_unlock(&mc->lock);
    return refused;
}

/* A pop leaves the object's pointer in the magazine, just above the
 * rounds, where memcheck's leak checker would take it for a reference:
 * clear that entry of this thread's slot (no entry above the rounds is
 * read before a push writes it, so whatever it held, nothing changes). */
static void clear_popped(unsigned slot_id)
{
    if (!on_valgrind())
        return;
    struct mag_slot *s = tcache_slot_id(slot_id);
    if (s && s->rounds < s->size)
        s->loaded->objs[s->rounds] = NULL;
}

/* The API calls reach the functions below by a tail call (no stack
 * frame on the fast paths), so in memcheck's stacks of an allocation or
 * a free these are the innermost frames of libslab's, right above the
 * program's call.  No tail call out of them either: they stay in sight. */
#define STAY_IN_STACK() __asm__ volatile("" ::: "memory")

/* ---- objects of caches ---- */

void *annotate_cache_alloc_(const struct slab_cache *c, void *p)
{
    if (!p || (c->flags & CACHE_INTERNAL))
        return p;
    block_alloc(p, c->size, c->ctor != NULL);
    clear_popped(c->id);
    return p;
}

void annotate_cache_free_(const struct slab_cache *c, void *p)
{
    struct block b;
    if (!p || !object_of(c, p, &b) || checked_double_free(&b))
        return;
    block_free(p, c->size);
    STAY_IN_STACK();
}

/* ---- kmalloc ---- */

void *annotate_km_alloc_(void *p, size_t n)
{
    struct block b;
    if (!p || !km_block(p, &b))
        return p;
    if (n > b.usable)
        n = b.usable;
    mem_noaccess((char *)p + n, b.usable - n); /* the rest of the class or run */
    block_alloc(p, n, false);
    if (b.cache)
        clear_popped(b.cache->id);
    return p;
}

void annotate_km_free_(void *p)
{
    struct block b;
    if (!p || !km_block(p, &b) || checked_double_free(&b))
        return;
    block_free(p, b.usable);
    STAY_IN_STACK();
}

/* The block's size as the tools know it: where its first inaccessible
 * byte is, the bytes after it up to `usable` being inaccessible too (see
 * the invariants).  Memcheck is asked byte by byte, in a binary search. */
size_t annotate_km_size_(const void *p, size_t usable)
{
#if SLAB_ASAN
    const char *bad = __asan_region_is_poisoned((void *)p, usable);
    if (bad)
        return (size_t)(bad - (const char *)p);
#endif
    if (!on_valgrind())
        return usable;
    size_t lo = 0, hi = usable; /* [0, lo) accessible; hi inaccessible or the end */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcheck_accessible((const char *)p + mid))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void annotate_km_resize_(void *p, size_t old_usable, size_t n)
{
    struct block b;
    if (!p || !km_block(p, &b))
        return;
    size_t from = annotate_km_size_(p, old_usable);
    block_resize(p, from, n);
    size_t end = b.usable > old_usable ? b.usable : old_usable;
    mem_noaccess((char *)p + n, end - n); /* up to the end of the run, as before */
}

void annotate_km_grant_(const void *p, size_t usable)
{
    struct block b;
    if (!km_block(p, &b)) /* malloc_usable_size() does not check */
        return;
    size_t have = annotate_km_size_(p, usable);
    if (have < usable)
        block_resize(p, have, usable);
}

/* ---- pages and slabs ---- */

void annotate_pages_(void *p, size_t n)
{
    mem_undefined(p, n);
}

void annotate_slab_new_(const struct slab_cache *c, struct slab_page *s)
{
    if (c->flags & CACHE_INTERNAL)
        return;
    const struct slab_layout *l = &c->layout;
    mem_noaccess(page_address(s), (PAGE_SIZE << l->order) - (size_t)l->map_words * 8);
}

void annotate_expose_(const void *p, size_t n)
{
    mem_defined(p, n);
}

void annotate_hide_(const void *p, size_t n)
{
    mem_noaccess(p, n);
}

void annotate_forget_(void *const *objs, size_t n)
{
    MEMCHECK((void)VALGRIND_MAKE_MEM_UNDEFINED(objs, n * sizeof *objs));
}

#endif /* SLAB_NO_ANNOTATE */
