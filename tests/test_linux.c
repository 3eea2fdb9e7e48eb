/*
 * test_linux.c - <slab/linux.h>: kernel-style code builds and runs unchanged.
 *
 * The kernel's exact signatures are checked by assigning every function to
 * a pointer of the kernel's type (a mismatch is a compile error under
 * -Werror=incompatible-pointer-types, and a warning otherwise); then the
 * calls are exercised: KMEM_CACHE(), constructors with the kernel's
 * void (*)(void *) signature, zeroing allocations, the GFP flags, and the
 * page-allocator calls.
 */
#include "slab_test.h"

#include <slab/linux.h>

/* ------------------------------------------------------------------ */
/* Signatures, as the kernel declares them                              */

struct foo_for_type_check {
    long x;
};

static struct kmem_cache *(*const p_create)(const char *, unsigned int, unsigned int,
                                            slab_flags_t, void (*)(void *)) =
    kmem_cache_create;
static void *(*const p_alloc)(struct kmem_cache *, gfp_t) = kmem_cache_alloc;
static void *(*const p_zalloc)(struct kmem_cache *, gfp_t) = kmem_cache_zalloc;
static void (*const p_free)(struct kmem_cache *, void *) = kmem_cache_free;
static void (*const p_destroy)(struct kmem_cache *) = kmem_cache_destroy;
static int (*const p_shrink)(struct kmem_cache *) = kmem_cache_shrink;
static unsigned int (*const p_size)(struct kmem_cache *) = kmem_cache_size;
static unsigned long (*const p_get_free_pages)(gfp_t, unsigned int) = __get_free_pages;
static unsigned long (*const p_get_zeroed_page)(gfp_t) = get_zeroed_page;
static void (*const p_free_pages)(unsigned long, unsigned int) = free_pages;

/* The same, as hard compile-time checks whatever the warning flags. */
#define HAS_TYPE(expr, type) _Generic((expr), type: 1, default: 0)
_Static_assert(HAS_TYPE(&kmem_cache_create,
                        struct kmem_cache *(*)(const char *, unsigned int, unsigned int,
                                               slab_flags_t, void (*)(void *))),
               "kmem_cache_create");
_Static_assert(HAS_TYPE(&kmem_cache_alloc, void *(*)(struct kmem_cache *, gfp_t)),
               "kmem_cache_alloc");
_Static_assert(HAS_TYPE(&kmem_cache_zalloc, void *(*)(struct kmem_cache *, gfp_t)),
               "kmem_cache_zalloc");
_Static_assert(HAS_TYPE(&kmem_cache_free, void (*)(struct kmem_cache *, void *)),
               "kmem_cache_free");
_Static_assert(HAS_TYPE(&kmem_cache_destroy, void (*)(struct kmem_cache *)),
               "kmem_cache_destroy");
_Static_assert(HAS_TYPE(&kmem_cache_shrink, int (*)(struct kmem_cache *)),
               "kmem_cache_shrink");
_Static_assert(HAS_TYPE(&kmem_cache_size, unsigned int (*)(struct kmem_cache *)),
               "kmem_cache_size");
_Static_assert(HAS_TYPE(&__get_free_pages, unsigned long (*)(gfp_t, unsigned int)),
               "__get_free_pages");
_Static_assert(HAS_TYPE(&get_zeroed_page, unsigned long (*)(gfp_t)), "get_zeroed_page");
_Static_assert(HAS_TYPE(&free_pages, void (*)(unsigned long, unsigned int)), "free_pages");
_Static_assert(HAS_TYPE(&kmem_cache_alloc_bulk,
                        int (*)(struct kmem_cache *, gfp_t, size_t, void **)),
               "kmem_cache_alloc_bulk");
_Static_assert(HAS_TYPE(&kmem_cache_free_bulk, void (*)(struct kmem_cache *, size_t, void **)),
               "kmem_cache_free_bulk");
_Static_assert(HAS_TYPE(GFP_KERNEL, unsigned int) || HAS_TYPE(GFP_KERNEL, int),
               "GFP flags are integer constants");
_Static_assert(HAS_TYPE(KMEM_CACHE(foo_for_type_check, 0), struct kmem_cache *),
               "KMEM_CACHE yields a struct kmem_cache pointer");

_Static_assert(sizeof(gfp_t) == sizeof(unsigned int), "gfp_t is an unsigned int");
_Static_assert((gfp_t)-1 > 0, "gfp_t is unsigned");
_Static_assert(PAGE_SIZE == 4096, "4 KiB pages");
_Static_assert(PAGE_SIZE == ((size_t)1 << PAGE_SHIFT), "PAGE_SHIFT");
_Static_assert((GFP_KERNEL & __GFP_ZERO) == 0 && (GFP_ATOMIC & __GFP_ZERO) == 0,
               "only __GFP_ZERO zeroes");



/* ------------------------------------------------------------------ */
/* A kernel-style user                                                  */

struct foo {
    unsigned long id;
    struct foo *next;
    int refcount;
    char name[40];
};

static unsigned long foo_ctor_calls;

static void foo_ctor(void *p)
{
    struct foo *f = p;
    f->id = 0xF00F00UL;
    f->next = NULL;
    f->refcount = 1;
    memset(f->name, 0, sizeof f->name);
    foo_ctor_calls++;
}

static void test_signatures_callable(void **state)
{
    (void)state;
    struct kmem_cache *c = p_create("via-pointers", 100, 8, 0, NULL);
    assert_non_null(c);
    assert_int_equal(p_size(c), 100);
    void *a = p_alloc(c, GFP_KERNEL);
    void *z = p_zalloc(c, GFP_KERNEL);
    assert_non_null(a);
    assert_non_null(z);
    p_free(c, a);
    p_free(c, z);
    assert_int_equal(p_shrink(c), 0);
    p_destroy(c);

    unsigned long pg = p_get_free_pages(GFP_KERNEL, 2);
    assert_true(pg != 0);
    assert_int_equal(pg % (4 * PAGE_SIZE), 0);
    p_free_pages(pg, 2);
    pg = __get_free_page(GFP_KERNEL); /* a macro in the kernel: called only */
    assert_true(pg != 0);
    free_page(pg);
    pg = p_get_zeroed_page(GFP_KERNEL);
    assert_true(pg != 0);
    free_page(pg);
    expect_no_error();
    test_check_buddy_all_free();
}

static void test_kmem_cache_macro(void **state)
{
    (void)state;
    struct kmem_cache *foo_cache = KMEM_CACHE(foo, SLAB_HWCACHE_ALIGN);
    assert_non_null(foo_cache);
    slab_cache_t *sc = (slab_cache_t *)foo_cache;
    assert_string_equal(slab_cache_name(sc), "foo");
    assert_int_equal(kmem_cache_size(foo_cache), sizeof(struct foo));
    slab_cache_stats_t st = test_stats(sc);
    assert_true(st.align >= _Alignof(struct foo));
    assert_true(st.align >= SLAB_CACHE_LINE); /* sizeof(struct foo) > 32 */

    struct foo *objs[100];
    for (int i = 0; i < 100; i++) {
        objs[i] = kmem_cache_alloc(foo_cache, GFP_KERNEL);
        assert_non_null(objs[i]);
        assert_int_equal((uintptr_t)objs[i] % SLAB_CACHE_LINE, 0);
        assert_owner(objs[i], sc);
        objs[i]->id = (unsigned long)i;
        snprintf(objs[i]->name, sizeof objs[i]->name, "foo-%d", i);
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(objs[i]->id, (unsigned long)i);
        kmem_cache_free(foo_cache, objs[i]);
    }
    kmem_cache_destroy(foo_cache);
    expect_no_error();
}

static void test_kernel_ctor(void **state)
{
    (void)state;
    skip_on_slob("objects are constructed on every allocation: no type-stable state across free");
    foo_ctor_calls = 0;
    struct kmem_cache *c = kmem_cache_create("foo_cache", sizeof(struct foo), 0,
                                             SLAB_HWCACHE_ALIGN, foo_ctor);
    assert_non_null(c);
    struct foo *f = kmem_cache_alloc(c, GFP_KERNEL);
    assert_non_null(f);
    slab_cache_stats_t st = test_stats((slab_cache_t *)c);
    /* the constructor ran for every object of the new slab */
    assert_int_equal(foo_ctor_calls, st.total_objs);
    assert_true(foo_ctor_calls >= 1);
    assert_int_equal(f->id, 0xF00F00UL);
    assert_int_equal(f->refcount, 1);
    assert_null(f->next);

    /* constructed state survives free: the kernel's type-stable objects */
    f->refcount = 42;
    kmem_cache_free(c, f);
    struct foo *g = kmem_cache_alloc(c, GFP_ATOMIC);
    assert_ptr_equal(g, f);
    assert_int_equal(g->refcount, 42);
    assert_int_equal(foo_ctor_calls, st.total_objs);
    kmem_cache_free(c, g);
    assert_int_equal(kmem_cache_shrink(c), 0);
    kmem_cache_destroy(c);
    expect_no_error();
}

static void test_zeroing(void **state)
{
    (void)state;
    struct kmem_cache *c = kmem_cache_create("zero", 300, 0, 0, NULL);
    assert_non_null(c);
    unsigned char zeros[300];
    memset(zeros, 0, sizeof zeros);

    /* dirty every object of a slab, then get them back zeroed */
    size_t k = test_stats((slab_cache_t *)c).objs_per_slab;
    unsigned char **objs = calloc(k, sizeof *objs);
    assert_non_null(objs);
    for (size_t i = 0; i < k; i++) {
        objs[i] = kmem_cache_alloc(c, GFP_KERNEL);
        assert_non_null(objs[i]);
        memset(objs[i], 0xAB, 300);
    }
    for (size_t i = 0; i < k; i++)
        kmem_cache_free(c, objs[i]);
    for (size_t i = 0; i < k; i++) {
        objs[i] = (i & 1) ? kmem_cache_zalloc(c, GFP_KERNEL)
                          : kmem_cache_alloc(c, GFP_ATOMIC | __GFP_ZERO);
        assert_non_null(objs[i]);
        assert_memory_equal(objs[i], zeros, 300);
    }
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(test_stats((slab_cache_t *)c).total_slabs, 1);
#endif
    for (size_t i = 0; i < k; i++)
        kmem_cache_free(c, objs[i]);

    /* without __GFP_ZERO nothing is cleared: the freed bytes come back */
    unsigned char *p = kmem_cache_alloc(c, GFP_KERNEL);
    assert_non_null(p);
    memset(p, 0xCD, 300);
    kmem_cache_free(c, p);
    unsigned char *q = kmem_cache_alloc(c, GFP_KERNEL | __GFP_NOWARN);
    assert_ptr_equal(q, p);
    test_mem_defined(q, 300);
#ifndef SLAB_BACKEND_SLOB
    assert_int_equal(q[0], 0xCD);
#endif
    /* (SLOB: a free block's first bytes hold its size and link) */
    assert_int_equal(q[299], 0xCD);
    kmem_cache_free(c, q);
    free(objs);
    kmem_cache_destroy(c);
    expect_no_error();
}

static void test_pages(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 5; order++) {
        unsigned long addr = __get_free_pages(GFP_KERNEL, order);
        assert_true(addr != 0);
        assert_int_equal(addr & ((PAGE_SIZE << order) - 1), 0);
        memset((void *)addr, 0x5A, PAGE_SIZE << order);
        free_pages(addr, order);
        /* with __GFP_ZERO the block comes back zeroed */
        unsigned long z = __get_free_pages(GFP_KERNEL | __GFP_ZERO, order);
        assert_true(z != 0);
        const unsigned char *zp = (const unsigned char *)z;
        for (size_t i = 0; i < (PAGE_SIZE << order); i++)
            if (zp[i] != 0)
                fail_msg("__GFP_ZERO block of order %u not zero at %zu", order, i);
        free_pages(z, order);
    }
    unsigned long pg = get_zeroed_page(GFP_KERNEL);
    assert_true(pg != 0);
    assert_int_equal(pg % PAGE_SIZE, 0);
    for (size_t i = 0; i < PAGE_SIZE; i++)
        assert_int_equal(((unsigned char *)pg)[i], 0);
    free_page(pg);

    unsigned long one = __get_free_page(GFP_ATOMIC);
    assert_true(one != 0);
    free_page(one);

    /* too large an order fails */
    errno = 0;
    test_errors_reset();
    assert_int_equal(__get_free_pages(GFP_KERNEL, MAX_ORDER + 1), 0);
    assert_int_equal(errno, EINVAL);
    test_errors_reset();

    /* NULL-like arguments are no-ops, as in the kernel */
    free_pages(0, 3);
    free_page(0);
    kmem_cache_destroy(NULL);
    expect_no_error();
    test_check_buddy_all_free();
    assert_verify_clean();
}

/* kmem_cache_alloc_bulk is all or nothing; kmem_cache_free_bulk with a NULL
 * cache frees each object to the cache that owns it, as in the kernel. */
static void test_bulk(void **state)
{
    (void)state;
    struct kmem_cache *a = kmem_cache_create("bulk-a", 48, 0, 0, NULL);
    struct kmem_cache *b = kmem_cache_create("bulk-b", 200, 0, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    void *pa[300], *pb[300], *mixed[600];
    assert_int_equal(kmem_cache_alloc_bulk(a, GFP_KERNEL | __GFP_ZERO, 300, pa), 300);
    assert_int_equal(kmem_cache_alloc_bulk(b, GFP_KERNEL, 300, pb), 300);
    for (size_t i = 0; i < 300; i++) {
        assert_owner(pa[i], (slab_cache_t *)a);
        assert_owner(pb[i], (slab_cache_t *)b);
        for (size_t k = 0; k < 48; k++)
            assert_int_equal(((unsigned char *)pa[i])[k], 0);
        mixed[2 * i] = pa[i];
        mixed[2 * i + 1] = pb[i];
    }
    assert_int_equal(test_stats((slab_cache_t *)a).active_objs, 300);
#ifndef SLAB_BACKEND_SLOB
    kmem_cache_free_bulk(NULL, 600, mixed);
#else
    /* SLOB cannot find an object's cache (slab_owner() is NULL): with a
     * NULL cache each free is reported and nothing is freed */
    kmem_cache_free_bulk(NULL, 2, mixed);
    assert_int_equal(test_errors_of_kind(SLAB_ERR_INVALID_ARG), 2);
    test_errors_reset();
    assert_int_equal(test_stats((slab_cache_t *)a).active_objs, 300);
    kmem_cache_free_bulk(a, 300, pa);
    kmem_cache_free_bulk(b, 300, pb);
#endif
    assert_int_equal(test_stats((slab_cache_t *)a).active_objs, 0);
    assert_int_equal(test_stats((slab_cache_t *)b).active_objs, 0);
    assert_int_equal(kmem_cache_alloc_bulk(a, GFP_KERNEL, 10, pa), 10);
    kmem_cache_free_bulk(a, 10, pa);
    kmem_cache_destroy(a);
    kmem_cache_destroy(b);
    expect_no_error();
    assert_verify_clean();
}

int main(void)
{
    test_slab_layer_only();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signatures_callable, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kmem_cache_macro, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kernel_ctor, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_zeroing, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_pages, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bulk, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
