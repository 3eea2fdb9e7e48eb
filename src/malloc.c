/*
 * malloc.c - the C library's allocation interface on top of kmalloc, for
 * libslab-malloc.so (LD_PRELOAD, or linked in place of the C library's).
 *
 * Every function here is a thin wrapper over kmalloc.h/kmalloc.c, with
 * the standard's rules on top: errno ENOMEM on failure, calloc and
 * reallocarray overflow checks, EINVAL for bad alignments (returned by
 * posix_memalign, set by aligned_alloc), realloc(p, 0) freeing p and
 * returning NULL as glibc does, free() keeping errno.
 *
 * Nothing here or below calls malloc, stdio or dlsym, so the allocator
 * can serve the dynamic loader, the C library's own start-up, pthread and
 * stdio from the first call: state is created on first use through
 * pthread_once and static storage, never through a constructor.
 */
#include "kmalloc.h"

#include <errno.h>
#include <unistd.h>

#define PUBLIC SLAB_API

PUBLIC void *malloc(size_t size) { return km_alloc(size); }

PUBLIC void free(void *ptr)
{
    if (ptr)
        km_free(ptr, "free");
}

PUBLIC void *calloc(size_t n, size_t size) { return km_calloc(n, size, CALLER); }

PUBLIC void *realloc(void *ptr, size_t size) { return km_realloc(ptr, size, "realloc", CALLER); }

PUBLIC void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return km_realloc(ptr, bytes, "reallocarray", CALLER);
}

static bool power_of_two(size_t x) { return x && !(x & (x - 1)); }

PUBLIC int posix_memalign(void **out, size_t align, size_t size)
{
    if (!power_of_two(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno; /* reports its error by value, errno untouched */
    void *p = km_aligned(align, size, CALLER);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

PUBLIC void *aligned_alloc(size_t align, size_t size)
{
    if (!power_of_two(align)) {
        errno = EINVAL;
        return NULL;
    }
    return km_aligned(align, size, CALLER);
}

/* glibc's memalign rounds an alignment that is not a power of two up to
 * one, and fails only when that is impossible. */
PUBLIC void *memalign(size_t align, size_t size)
{
    if (align > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < align)
        a <<= 1;
    return km_aligned(a, size, CALLER);
}

PUBLIC void *valloc(size_t size) { return km_aligned(PAGE_SIZE, size, CALLER); }

PUBLIC void *pvalloc(size_t size)
{
    size_t rounded = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return km_aligned(PAGE_SIZE, rounded ? rounded : PAGE_SIZE, CALLER);
}

PUBLIC size_t malloc_usable_size(void *ptr)
{
    return ptr ? km_usable(ptr, "malloc_usable_size") : 0;
}

/* C23: the size and alignment are the caller's promise; free needs neither. */
PUBLIC void free_sized(void *ptr, size_t size)
{
    (void)size;
    if (ptr)
        km_free(ptr, "free_sized");
}

PUBLIC void free_aligned_sized(void *ptr, size_t align, size_t size)
{
    (void)align;
    (void)size;
    if (ptr)
        km_free(ptr, "free_aligned_sized");
}

/* glibc's: give memory back to the system; 1 if any was. */
PUBLIC int malloc_trim(size_t pad)
{
    (void)pad;
    cache_boot();
    return reap_everything() > 0;
}
