/*
 * tool_uaf.c - a program with one memory error of the kind memory
 * checkers should see through libslab's recycling, for tool_check.sh to
 * run under valgrind's memcheck or in an AddressSanitizer build and read
 * the report.  One mode per run:
 *
 *   cache_uaf       a cache object read after slab_cache_free()
 *   malloc_uaf      a slab_malloc() block read after slab_free()
 *   cache_overflow  a write one byte past a cache object, into the space
 *                   of the next object (free: not handed out)
 *   cache_leak      a cache object and a slab_malloc() block lost
 *   clean           the same calls with no error, everything given back
 *
 * Each error is the last thing a mode does before it exits 0, so that a
 * run that reports nothing is told apart from one that stopped early.
 */
#include <slab.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJ 64 /* a multiple of its alignment: objects sit end to end */

static int ctor(void *obj, void *arg)
{
    (void)arg;
    memset(obj, 0x11, OBJ);
    return 0;
}

/* volatile: the compiler must neither drop nor move the bad accesses */
static unsigned char read_byte(const void *p, size_t off)
{
    return ((const volatile unsigned char *)p)[off];
}

static void write_byte(void *p, size_t off, unsigned char v)
{
    ((volatile unsigned char *)p)[off] = v;
}

static int cache_uaf(void)
{
    slab_cache_t *c = slab_cache_create("uaf", OBJ, 0, 0, ctor, NULL, NULL);
    unsigned char *p = slab_cache_alloc(c);
    if (!c || !p)
        return 2;
    write_byte(p, 8, 0x22);
    slab_cache_free(c, p);
    printf("read after free: %02x\n", read_byte(p, 8));
    return 0;
}

static int malloc_uaf(void)
{
    unsigned char *p = slab_malloc(100);
    if (!p)
        return 2;
    memset(p, 0x33, 100);
    slab_free(p);
    printf("read after free: %02x\n", read_byte(p, 40));
    return 0;
}

static int cache_overflow(void)
{
    slab_cache_t *c = slab_cache_create("overflow", OBJ, 0, 0, NULL, NULL, NULL);
    unsigned char *p = slab_cache_alloc(c);
    if (!c || !p)
        return 2;
    memset(p, 0x44, OBJ);
    /* The first allocation took a batch for this thread's magazine and
     * handed out the batch's last object: the one after it is free. */
    write_byte(p, OBJ, 0x55);
    slab_cache_free(c, p);
    return slab_cache_destroy(c) ? 4 : 0;
}

/* Allocate and drop: once this returns, no register or stack slot of
 * main's holds the pointers. */
static __attribute__((noinline)) int leak(slab_cache_t *c)
{
    /* Not the first object of its slab: the slab's descriptor points at
     * that one (s_mem), which would make it "still reachable".  The
     * first allocation takes a batch and hands out its last object. */
    void *p = slab_cache_alloc(c);
    void *q = slab_malloc(100);
    if (!p || !q)
        return 2;
    memset(p, 0x66, OBJ);
    memset(q, 0x77, 100);
    return 0;
}

static int cache_leak(void)
{
    slab_cache_t *c = slab_cache_create("leak", OBJ, 0, 0, NULL, NULL, NULL);
    if (!c)
        return 2;
    return leak(c);
}

static int clean(void)
{
    slab_cache_t *c = slab_cache_create("clean", OBJ, 0, 0, ctor, NULL, NULL);
    slab_cache_t *d = slab_cache_create("plain", 40, 0, 0, NULL, NULL, NULL);
    if (!c || !d)
        return 2;
    void *objs[200];
    for (int i = 0; i < 200; i++) {
        objs[i] = slab_cache_alloc(i % 2 ? c : d);
        if (!objs[i])
            return 2;
        if (i % 2 && read_byte(objs[i], OBJ - 1) != 0x11) /* constructed: defined */
            return 3;
        memset(objs[i], i, i % 2 ? OBJ : 40);
    }
    for (int i = 0; i < 200; i++)
        slab_cache_free(i % 2 ? c : d, objs[i]);
    /* malloc(0), first from the class's slow path; every size class,
     * runs and a huge mapping; realloc in place and moving; calloc;
     * aligned; the usable size */
    void *z0 = slab_malloc(0), *z1 = slab_malloc(0);
    if (!z0 || !z1 || slab_usable_size(z0) != 8)
        return 2;
    slab_free(z0);
    slab_free(z1);
    unsigned long sum = 0;
    for (size_t n = 1; n < (size_t)5 << 20; n = n * 3 + 7) {
        unsigned char *p = slab_malloc(n);
        if (!p)
            return 2;
        memset(p, 0x5a, n);
        unsigned char *q = slab_realloc(p, n + n / 2 + 1);
        if (!q)
            return 2;
        sum += q[n - 1] + q[0];
        memset(q + n, 0x5b, n / 2 + 1);
        q = slab_realloc(q, n / 2 + 1);
        if (!q)
            return 2;
        sum += q[n / 2];
        unsigned char *z = slab_calloc(n, 1);
        if (!z)
            return 2;
        for (size_t i = 0; i < n; i += 4093)
            sum += z[i];
        size_t u = slab_usable_size(z);
        memset(z, 1, u);
        void *a = slab_aligned_alloc(256, n);
        if (!a || (uintptr_t)a % 256)
            return 2;
        memset(a, 2, n);
        slab_free(a);
        slab_free(z);
        slab_free(q);
    }
    if (slab_cache_destroy(c) || slab_cache_destroy(d))
        return 4;
    printf("clean: %lu\n", sum);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } modes[] = {
        {"cache_uaf", cache_uaf},         {"malloc_uaf", malloc_uaf},
        {"cache_overflow", cache_overflow}, {"cache_leak", cache_leak},
        {"clean", clean},
    };
    for (size_t i = 0; argc == 2 && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].fn();
    fprintf(stderr, "usage: %s cache_uaf|malloc_uaf|cache_overflow|cache_leak|clean\n", argv[0]);
    return 2;
}
