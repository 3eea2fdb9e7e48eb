/*
 * slab/linux.h - the Linux kernel's slab API on top of libslab.
 *
 * Kernel-style code compiles unchanged: struct kmem_cache, the kernel's
 * exact signatures for kmem_cache_*, KMEM_CACHE(), the GFP flags and the
 * page-allocator calls.  struct kmem_cache is never defined; a pointer to
 * it is a slab_cache_t pointer in disguise.  GFP flags other than
 * __GFP_ZERO are accepted and ignored (libslab never sleeps on reclaim).
 */
#ifndef SLAB_LINUX_H
#define SLAB_LINUX_H

#include <slab.h>
/* no <string.h>: the compiler's builtins, so that a freestanding kernel
 * can include this header */

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned int gfp_t;

#define __GFP_HIGH 0x20U
#define __GFP_IO 0x40U
#define __GFP_FS 0x80U
#define __GFP_ZERO 0x100U
#define __GFP_NOWARN 0x2000U
#define __GFP_NOFAIL 0x8000U
#define __GFP_RECLAIM 0x400U
#define GFP_ATOMIC (__GFP_HIGH)
#define GFP_NOWAIT 0U
#define GFP_KERNEL (__GFP_RECLAIM | __GFP_IO | __GFP_FS)

#ifndef PAGE_SHIFT
#define PAGE_SHIFT SLAB_PAGE_SHIFT
#define PAGE_SIZE SLAB_PAGE_SIZE
#endif
#ifndef MAX_ORDER
#define MAX_ORDER SLAB_MAX_ORDER
#endif

struct kmem_cache;

/* Trampoline from the kernel's void ctor(void *) to libslab's. */
static inline int slab__linux_ctor(void *obj, void *arg)
{
    void (*ctor)(void *);
    __builtin_memcpy(&ctor, &arg, sizeof ctor);
    ctor(obj);
    return 0;
}

static inline struct kmem_cache *kmem_cache_create(const char *name,
                                                   unsigned int size,
                                                   unsigned int align,
                                                   slab_flags_t flags,
                                                   void (*ctor)(void *))
{
    void *arg = NULL;
    _Static_assert(sizeof ctor == sizeof arg, "function and data pointers differ");
    __builtin_memcpy(&arg, &ctor, sizeof arg);
    slab_cache_t *c = slab_cache_create(name, size, align, flags,
                                        ctor ? slab__linux_ctor : NULL, NULL,
                                        arg);
    return (struct kmem_cache *)c;
}

#define KMEM_CACHE(__struct, __flags)                                        \
    kmem_cache_create(#__struct, sizeof(struct __struct),                    \
                      _Alignof(struct __struct), (__flags), NULL)

static inline void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfpflags)
{
    slab_cache_t *c = (slab_cache_t *)s;
    void *obj = slab_cache_alloc(c);
    if (obj && (gfpflags & __GFP_ZERO))
        __builtin_memset(obj, 0, slab_cache_object_size(c));
    return obj;
}

static inline void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags)
{
    return kmem_cache_alloc(s, flags | __GFP_ZERO);
}

static inline void kmem_cache_free(struct kmem_cache *s, void *objp)
{
    slab_cache_free((slab_cache_t *)s, objp);
}

/* Returns `size` with every object allocated, or 0 with none. */
static inline int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t flags, size_t size,
                                        void **p)
{
    size_t n = slab_cache_alloc_bulk((slab_cache_t *)s, size, p);
    if (n && (flags & __GFP_ZERO))
        for (size_t i = 0; i < n; i++)
            __builtin_memset(p[i], 0, slab_cache_object_size((slab_cache_t *)s));
    return (int)n;
}

/* As in the kernel, s may be NULL: each object goes to the cache that
 * owns it. */
static inline void kmem_cache_free_bulk(struct kmem_cache *s, size_t size, void **p)
{
    if (s) {
        slab_cache_free_bulk((slab_cache_t *)s, size, p);
        return;
    }
    for (size_t i = 0; i < size; i++)
        if (p[i])
            slab_cache_free(slab_owner(p[i]), p[i]);
}

static inline void kmem_cache_destroy(struct kmem_cache *s)
{
    if (s) /* the kernel accepts NULL */
        slab_cache_destroy((slab_cache_t *)s);
}

static inline int kmem_cache_shrink(struct kmem_cache *s)
{
    slab_cache_shrink((slab_cache_t *)s);
    return 0;
}

static inline unsigned int kmem_cache_size(struct kmem_cache *s)
{
    return (unsigned int)slab_cache_object_size((slab_cache_t *)s);
}

/* ---- kmalloc: as in the kernel, a zero-size request returns
 * ZERO_SIZE_PTR, which kfree() and ksize() accept. ---- */

#define ZERO_SIZE_PTR ((void *)16)
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)
#define KMALLOC_MAX_CACHE_SIZE SLAB_KMALLOC_MAX_SIZE

/* With __GFP_ZERO the whole object is zeroed, up to ksize(), as the
 * kernel does, so that krealloc() may rely on it. */
static inline void *kmalloc(size_t size, gfp_t flags)
{
    if (!size)
        return ZERO_SIZE_PTR;
    if (!(flags & __GFP_ZERO))
        return slab_malloc(size);
    void *p = slab_calloc(1, size);
    if (p)
        __builtin_memset((char *)p + size, 0, slab_usable_size(p) - size);
    return p;
}

static inline void *kzalloc(size_t size, gfp_t flags)
{
    return kmalloc(size, flags | __GFP_ZERO);
}

/* NULL when n * size overflows. */
static inline void *kmalloc_array(size_t n, size_t size, gfp_t flags)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        return NULL;
    return kmalloc(bytes, flags);
}

static inline void *kcalloc(size_t n, size_t size, gfp_t flags)
{
    return kmalloc_array(n, size, flags | __GFP_ZERO);
}

static inline void kfree(const void *objp)
{
    if (!ZERO_OR_NULL_PTR(objp))
        slab_free((void *)objp);
}

static inline size_t ksize(const void *objp)
{
    return ZERO_OR_NULL_PTR(objp) ? 0 : slab_usable_size(objp);
}

/* The kernel's rules: a NULL p allocates; new_size 0 frees p and returns
 * ZERO_SIZE_PTR; on failure p is untouched and NULL returned.  With
 * __GFP_ZERO the bytes past the old size are zeroed (up to new_size). */
static inline void *krealloc(const void *p, size_t new_size, gfp_t flags)
{
    if (!new_size) {
        kfree(p);
        return ZERO_SIZE_PTR;
    }
    if (ZERO_OR_NULL_PTR(p))
        return kmalloc(new_size, flags);
    size_t old = slab_usable_size(p);
    void *q = slab_realloc((void *)p, new_size);
    if (q && (flags & __GFP_ZERO) && new_size > old)
        __builtin_memset((char *)q + old, 0, new_size - old);
    return q;
}

static inline int kmalloc_index(size_t size)
{
    size_t n = slab_size_class_count();
    for (size_t i = 0; i < n; i++)
        if (slab_size_class(i) >= size)
            return (int)i;
    return -1;
}

static inline char *kstrdup(const char *s, gfp_t gfp)
{
    if (!s)
        return NULL;
    size_t len = __builtin_strlen(s) + 1;
    char *d = (char *)kmalloc(len, gfp);
    if (d)
        __builtin_memcpy(d, s, len);
    return d;
}

static inline void *kmemdup(const void *src, size_t len, gfp_t gfp)
{
    void *d = kmalloc(len, gfp);
    if (d && len)
        __builtin_memcpy(d, src, len);
    return d;
}

static inline unsigned long __get_free_pages(gfp_t gfp_mask, unsigned int order)
{
    void *p = slab_pages_alloc(order);
    if (p && (gfp_mask & __GFP_ZERO))
        __builtin_memset(p, 0, SLAB_PAGE_SIZE << order);
    return (unsigned long)p;
}

static inline unsigned long __get_free_page(gfp_t gfp_mask)
{
    return __get_free_pages(gfp_mask, 0);
}

static inline unsigned long get_zeroed_page(gfp_t gfp_mask)
{
    return __get_free_pages(gfp_mask | __GFP_ZERO, 0);
}

static inline void free_pages(unsigned long addr, unsigned int order)
{
    if (addr)
        slab_pages_free((void *)addr, order);
}

static inline void free_page(unsigned long addr)
{
    free_pages(addr, 0);
}

#ifdef __cplusplus
}
#endif
#endif /* SLAB_LINUX_H */
