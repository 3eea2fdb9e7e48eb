/*
 * annotate.h - what libslab tells memory checkers about the memory it
 * hands out and takes back: valgrind's memcheck (client requests, from
 * the moment libslab finds itself running under valgrind) and
 * AddressSanitizer (shadow poisoning, in builds made with it).  The work
 * is in annotate.c; here are the calls, each one test of a flag when no
 * tool is watching (memcheck: one load and a branch not taken) and
 * nothing at all in builds with SLAB_NO_ANNOTATE (cmake -DSLAB_ANNOTATE=OFF).
 *
 * Call them where memory changes hands: an allocation once the object
 * is taken, a free before another thread could take the object (on a
 * magazine fast path that is right after the push, since only the
 * pushing thread can pop it, and the call is then a tail call: the fast
 * paths keep no stack frame for it):
 *   annotate_cache_alloc/free   the fast paths of slab_cache_alloc() and
 *                               slab_cache_free(), and tcache's slow paths
 *   annotate_km_alloc/free      kmalloc's objects, runs and huge mappings
 *   annotate_km_resize          realloc in place
 *   annotate_km_size            bytes of a kmalloc block the tools let the
 *                               program use (realloc copies that much)
 *   annotate_km_grant           slab_usable_size(): all of it is usable
 *   annotate_pages              a block leaves the buddy allocator
 *   annotate_slab_new           a new slab: no object is handed out yet
 *   annotate_expose             libslab takes memory back to read it or
 *                               to give it away (destructors, unmapping)
 *   annotate_hide               ... and is done with it
 *   annotate_forget             an array of object pointers that libslab
 *                               will not read again (leak checking)
 */
#ifndef SLAB_ANNOTATE_H
#define SLAB_ANNOTATE_H

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifndef SLAB_ASAN
#define SLAB_ASAN 0
#endif

#ifdef SLAB_NO_ANNOTATE
#define annotate_on() false
static inline void annotate_boot(void) {}
#else
void annotate_boot(void);
/* Non-zero while running under valgrind; set once, at boot.  Hidden, so
 * that reading it is one load, not two through the GOT. */
extern int slab__annotate __attribute__((visibility("hidden")));
#define annotate_on() \
    (SLAB_ASAN || unlikely(__atomic_load_n(&slab__annotate, __ATOMIC_RELAXED) != 0))
#endif

void *annotate_cache_alloc_(const struct slab_cache *c, void *p);
void annotate_cache_free_(const struct slab_cache *c, void *p);
void *annotate_km_alloc_(void *p, size_t n);
void annotate_km_free_(void *p);
void annotate_km_resize_(void *p, size_t old_usable, size_t n);
size_t annotate_km_size_(const void *p, size_t usable);
void annotate_km_grant_(const void *p, size_t usable);
void annotate_pages_(void *p, size_t n);
void annotate_slab_new_(const struct slab_cache *c, struct slab_page *s);
void annotate_expose_(const void *p, size_t n);
void annotate_hide_(const void *p, size_t n);
void annotate_forget_(void *const *objs, size_t n);

/* An object of c handed out (NULL: nothing): the tools see a block of
 * c->size bytes, defined when c has a constructor.  Returns p, so that
 * `return annotate_cache_alloc(c, p);` is a tail call. */
static inline void *annotate_cache_alloc(const struct slab_cache *c, void *p)
{
    return annotate_on() ? annotate_cache_alloc_(c, p) : p;
}

/* p goes back to c (on a magazine fast path: has just gone, into this
 * thread's magazine): freed, if it is an object of c that the program
 * held (anything else is libslab's to report). */
static inline void annotate_cache_free(const struct slab_cache *c, void *p)
{
    if (annotate_on())
        annotate_cache_free_(c, p);
}

/* A kmalloc block of n bytes handed out (NULL: nothing); returns p. */
static inline void *annotate_km_alloc(void *p, size_t n)
{
    return annotate_on() ? annotate_km_alloc_(p, n) : p;
}

/* p, a kmalloc block or any cache's object, is freed (as above). */
static inline void annotate_km_free(void *p)
{
    if (annotate_on())
        annotate_km_free_(p);
}

/* p now serves n bytes in place; old_usable is what it could hold before. */
static inline void annotate_km_resize(void *p, size_t old_usable, size_t n)
{
    if (annotate_on())
        annotate_km_resize_(p, old_usable, n);
}

/* The bytes of p (usable bytes in all) that the program may touch. */
static inline size_t annotate_km_size(const void *p, size_t usable)
{
    return annotate_on() ? annotate_km_size_(p, usable) : usable;
}

/* The program was told it may use `usable` bytes at p. */
static inline void annotate_km_grant(const void *p, size_t usable)
{
    if (annotate_on() && usable)
        annotate_km_grant_(p, usable);
}

static inline void annotate_pages(void *p, size_t n)
{
    if (annotate_on())
        annotate_pages_(p, n);
}

static inline void annotate_slab_new(const struct slab_cache *c, struct slab_page *s)
{
    if (annotate_on())
        annotate_slab_new_(c, s);
}

static inline void annotate_expose(const void *p, size_t n)
{
    if (annotate_on())
        annotate_expose_(p, n);
}

static inline void annotate_hide(const void *p, size_t n)
{
    if (annotate_on())
        annotate_hide_(p, n);
}

/* n bytes at p read as zero (a fresh mapping): defined, as exposed
 * memory is. */
static inline void annotate_defined(const void *p, size_t n)
{
    if (p)
        annotate_expose(p, n);
}

static inline void annotate_forget(void *const *objs, size_t n)
{
    if (annotate_on())
        annotate_forget_(objs, n);
}

#endif /* SLAB_ANNOTATE_H */
