/*
 * test_debug.c - debug mode: the F Z P U T L switches of a cache, given
 * as slab_cache_create() flags or by SLAB_DEBUG, and what each reports.
 *
 * In this process every test runs with options.debug_abort = 0 and the
 * recording hook of slab_test.h, so that each misuse is one report whose
 * fields are asserted one by one: kind, API entry, cache, owner, object,
 * offset of the damage, the allocation and free call stacks.
 *
 * What needs a process of its own runs this program again as a child,
 *     test_debug --child SCENARIO
 * with the environment the test gives it (SLAB_DEBUG is read once, at
 * the first call into libslab; an error aborts unless debug_abort is 0;
 * leaks are reported at exit; traces go to stderr).  The parent checks
 * the child's exit status or signal and what it wrote to stdout and
 * stderr.  A child checks its own facts and says which failed on stdout,
 * or prints what the parent is to check.
 *
 * The layout facts used (red zone bytes 0xcc live and 0xbb free, poison
 * 0x6b with a last byte 0xa5 and 0x5a for new objects, the free bitmap at
 * the end of a slab of more than 64 objects) are the ones slab.h and the
 * slab layer document.
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slab_test.h"

extern char **environ;

#define DBG_F SLAB_CONSISTENCY_CHECKS
#define DBG_Z SLAB_RED_ZONE
#define DBG_P SLAB_POISON
#define DBG_U SLAB_STORE_USER
#define DBG_T SLAB_TRACE
#define DBG_L SLAB_LEAK_AT_EXIT
#define DBG_FZPU (DBG_F | DBG_Z | DBG_P | DBG_U)

#define RZ_LIVE 0xcc
#define RZ_FREE 0xbb
#define POISON_FREE 0x6b
#define POISON_END 0xa5
#define POISON_NEW 0x5a

/* Functions whose addresses a stored call stack is compared with: never
 * inlined, never merged with a look-alike, and with work after the call
 * into libslab, so that the call is no tail call and its return address
 * lies inside them. */
#if defined(__clang__)
#define STACK_SITE __attribute__((noinline))
#else
#define STACK_SITE __attribute__((noipa))
#endif
#define SITE_BYTES 512

static volatile unsigned site_calls[4];
/* Loop bounds the compiler cannot see: one call instruction per site. */
static volatile int three = 3, two = 2;

static STACK_SITE void *alloc_here(slab_cache_t *c)
{
    void *p = slab_cache_alloc(c);
    site_calls[0]++;
    return p;
}

static STACK_SITE void free_here(slab_cache_t *c, void *p)
{
    slab_cache_free(c, p);
    site_calls[1]++;
}

static STACK_SITE void *alloc_site_a(slab_cache_t *c)
{
    void *p = slab_cache_alloc(c);
    site_calls[2]++;
    return p;
}

static STACK_SITE void *alloc_site_b(slab_cache_t *c)
{
    void *p = slab_cache_alloc(c);
    site_calls[3] += 2;
    return p;
}

/* pc lies in the first SITE_BYTES bytes of the function at fn. */
static int pc_in(const void *pc, uintptr_t fn)
{
    uintptr_t a = (uintptr_t)pc;
    return a >= fn && a < fn + SITE_BYTES;
}

static unsigned long my_tid(void)
{
    return (unsigned long)syscall(SYS_gettid);
}

static slab_cache_t *make(const char *name, size_t size, slab_flags_t flags)
{
    errno = 0;
    slab_cache_t *c = slab_cache_create(name, size, 0, flags, NULL, NULL, NULL);
    if (!c)
        fail_msg("slab_cache_create(%s, %zu, flags %#x) failed: errno %d", name, size, flags,
                 errno);
    return c;
}

static void *alloc_ok(slab_cache_t *c)
{
    void *p = slab_cache_alloc(c);
    if (!p)
        fail_msg("slab_cache_alloc(%s) failed: errno %d", slab_cache_name(c), errno);
    return p;
}

static void destroy_ok(slab_cache_t *c)
{
    if (slab_cache_destroy(c) != 0)
        fail_msg("slab_cache_destroy(%s) failed: errno %d (last report: %s)",
                 slab_cache_name(c), errno, test_err.message);
}

static void expect_stacks(int want_user)
{
    if (!want_user) {
        if (test_err.has_alloc || test_err.has_free)
            fail_msg("a cache without U reports call stacks: %s", test_err.message);
        return;
    }
    if (!test_err.has_alloc || test_err.alloc_depth == 0)
        fail_msg("no allocation stack with U: %s", test_err.message);
    if (!test_err.has_free || test_err.free_depth == 0)
        fail_msg("no free stack with U: %s", test_err.message);
    assert_true(test_err.alloc_depth <= SLAB_STACK_DEPTH);
    assert_true(test_err.free_depth <= SLAB_STACK_DEPTH);
    assert_non_null(test_err.alloc_pc0);
    assert_non_null(test_err.free_pc0);
}

/* The report's cache counted it, and nothing else about the cache
 * changed: a misuse is reported and ignored. */
static void expect_ignored(slab_cache_t *c, const slab_cache_stats_t *before)
{
    slab_cache_stats_t after = test_stats(c);
    assert_int_equal(after.errors, before->errors + 1);
    assert_int_equal(after.active_objs, before->active_objs);
    assert_int_equal(after.allocations, before->allocations);
    assert_int_equal(after.frees, before->frees);
}

/* ------------------------------------------------------------------ */
/* Memory the program does not own                                      */

/* libslab tells memory checkers (src/annotate.c) that a debug cache's red
 * zones, and all of a free object, are not the program's; the tests here
 * read and write them on purpose, to see what libslab's own checks make
 * of it.  Each such access opens the whole region to the checkers and
 * closes it again (test_expose() and test_hide(), slab_test.h), so that
 * libslab, not the checker, is the one to find the damage. */

/* A red zone of the object p of a Z cache, the program holding `used`
 * bytes of its `size`: for off < 0 the left one (RZ_LEFT bytes before p:
 * the zone is as wide as the cache's alignment, at least 8), else the
 * right one, from `used` to `size` rounded up to 8, plus 8.  Its length
 * in *len. */
#define RZ_LEFT 8
static unsigned char *zone_of(const unsigned char *p, long off, size_t used, size_t size,
                              size_t *len)
{
    if (off < 0) {
        *len = RZ_LEFT;
        return (unsigned char *)p - RZ_LEFT;
    }
    *len = (size + 7) / 8 * 8 + 8 - used;
    return (unsigned char *)p + used;
}

/* The byte at p + off, in a red zone (see zone_of()). */
static unsigned char zone_get(const unsigned char *p, long off, size_t used, size_t size)
{
    size_t len;
    unsigned char *z = zone_of(p, off, used, size, &len);
    test_expose(z, len);
    unsigned char v = p[off];
    test_hide(z, len);
    return v;
}

static void zone_set(unsigned char *p, long off, size_t used, size_t size, unsigned char v)
{
    size_t len;
    unsigned char *z = zone_of(p, off, used, size, &len);
    test_expose(z, len);
    p[off] = v;
    test_hide(z, len);
}

/* The same for the 40-byte objects of the red zone tests. */
static unsigned char rz40_get(const unsigned char *p, long off)
{
    return zone_get(p, off, 40, 40);
}

static void rz40_set(unsigned char *p, long off, unsigned char v)
{
    zone_set(p, off, 40, 40, v);
}

/* Byte off of the free object p of `size` bytes written. */
static void free_set(unsigned char *p, size_t size, size_t off, unsigned char v)
{
    test_expose(p, size);
    p[off] = v;
    test_hide(p, size);
}

/* ------------------------------------------------------------------ */
/* Flags, statistics, magazines                                         */

static void test_flags(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_F, DBG_Z, DBG_P, DBG_U, DBG_T, DBG_L,
                                 DBG_F | DBG_U, DBG_Z | DBG_P, DBG_FZPU, SLAB_DEBUG_FLAGS};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        for (int hw = 0; hw < 2; hw++) {
            slab_flags_t flags = sets[i] | (hw ? SLAB_HWCACHE_ALIGN : 0);
            slab_cache_t *c = make("dbg-flags", 100, flags);
            slab_cache_stats_t st = test_stats(c);
            if (st.flags != flags)
                fail_msg("created with %#x, statistics say %#x", flags, st.flags);
            assert_int_equal(st.object_size, 100);
            assert_int_equal(slab_cache_object_size(c), 100);
            assert_int_equal(st.magazine_size, 0);
            assert_int_equal(st.batchcount, 0);
            assert_int_equal(st.depot_limit, 0);
            if (hw)
                assert_true(st.align >= SLAB_CACHE_LINE);
            if (!(flags & DBG_T)) { /* T would write to stderr */
                unsigned char *p[3];
                for (int k = 0; k < 3; k++) {
                    p[k] = alloc_ok(c);
                    assert_ptr_equal(slab_owner(p[k]), c);
                    assert_ptr_equal(slab_owner(p[k] + 99), c);
                    if (hw && (uintptr_t)p[k] % SLAB_CACHE_LINE != 0)
                        fail_msg("flags %#x: object %p not on a cache line", flags,
                                 (void *)p[k]);
                    if ((uintptr_t)p[k] % 8 != 0)
                        fail_msg("flags %#x: object %p not 8-aligned", flags, (void *)p[k]);
                    memset(p[k], 0x33, 100);
                }
                for (int k = 0; k < 3; k++)
                    for (int j = 0; j < 100; j++)
                        assert_int_equal(p[k][j], 0x33);
                for (int k = 0; k < 3; k++)
                    slab_cache_free(c, p[k]);
                st = test_stats(c);
                assert_int_equal(st.active_objs, 0);
                assert_int_equal(st.allocations, 3);
                assert_int_equal(st.frees, 3);
                assert_int_equal(st.magazine_objs, 0);
                assert_int_equal(st.alloc_hit + st.free_hit, 0);
            }
            destroy_ok(c);
            expect_no_error();
        }
    }

    /* a cache without debug flags keeps its magazines */
    slab_cache_t *plain = make("dbg-plain", 100, 0);
    slab_cache_stats_t st = test_stats(plain);
    assert_int_equal(st.flags, 0);
    assert_true(st.magazine_size > 0);
    destroy_ok(plain);

    /* unknown bits are still refused, debug flags or not */
    const slab_flags_t bad[] = {SLAB_DEBUG_FLAGS | 0x1U, DBG_Z | 0x80000000U, DBG_U | 0x4U};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_errors_reset();
        errno = 0;
        slab_cache_t *c = slab_cache_create("dbg-bad", 64, 0, bad[i], NULL, NULL, NULL);
        if (c) {
            slab_cache_destroy(c);
            fail_msg("flags %#x accepted", bad[i]);
        }
        assert_int_equal(errno, EINVAL);
        expect_one_error(SLAB_ERR_INVALID_ARG);
        test_errors_reset();
    }
    assert_verify_clean();
    expect_no_error();
}

static void test_options_debug_abort(void **state)
{
    (void)state;
    slab_options_t o;
    slab_get_options(&o);
    assert_int_equal(o.debug_abort, 0); /* as main() set it */
    o.debug_abort = 1;
    assert_int_equal(slab_set_options(&o), 0);
    slab_get_options(&o);
    assert_int_equal(o.debug_abort, 1);
    o.debug_abort = 0;
    assert_int_equal(slab_set_options(&o), 0);
    slab_get_options(&o);
    assert_int_equal(o.debug_abort, 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Bad frees in debug caches                                            */

static void test_double_free(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_F, DBG_Z, DBG_P, DBG_U, DBG_F | DBG_U, DBG_FZPU};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("df", 48, sets[i]);
        void *keep = alloc_ok(c), *p = alloc_ok(c);
        slab_cache_free(c, p);
        expect_no_error();
        slab_cache_stats_t before = test_stats(c);
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_DOUBLE_FREE, "slab_cache_free", "df", p, 0);
        assert_ptr_equal(test_err.ptr, p);
        expect_stacks((sets[i] & DBG_U) != 0);
        if (sets[i] & DBG_U) {
            assert_int_equal(test_err.alloc_thread, my_tid());
            assert_int_equal(test_err.free_thread, my_tid());
            assert_true(test_err.alloc_when_ms <= test_err.free_when_ms);
        }
        test_errors_reset();
        expect_ignored(c, &before);
        /* a third time: the same report */
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_DOUBLE_FREE, "slab_cache_free", "df", p, 0);
        test_errors_reset();
        slab_cache_free(c, keep);
        assert_verify_clean();
        destroy_ok(c);
        expect_no_error();
    }
}

struct free_job {
    slab_cache_t *c;
    void *p;
    unsigned long tid;
};

static void *free_on_thread(void *arg)
{
    struct free_job *j = arg;
    j->tid = my_tid();
    slab_cache_free(j->c, j->p);
    return NULL;
}

static void test_double_free_other_thread(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_F, DBG_F | DBG_U};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("df-thread", 64, sets[i]);
        void *keep = alloc_ok(c), *p = alloc_ok(c);
        struct free_job a = {c, p, 0}, b = {c, p, 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_on_thread, &a), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        expect_no_error();
        assert_int_equal(test_stats(c).active_objs, 1);
        slab_cache_stats_t before = test_stats(c);
        assert_int_equal(pthread_create(&t, NULL, free_on_thread, &b), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        expect_debug_error(SLAB_ERR_DOUBLE_FREE, "slab_cache_free", "df-thread", p, 0);
        assert_ptr_equal(test_err.ptr, p);
        expect_stacks((sets[i] & DBG_U) != 0);
        if (sets[i] & DBG_U) {
            assert_int_equal(test_err.alloc_thread, my_tid());
            assert_int_equal(test_err.free_thread, a.tid);
            assert_true(a.tid != my_tid());
        }
        test_errors_reset();
        expect_ignored(c, &before);
        slab_cache_free(c, keep);
        destroy_ok(c);
        expect_no_error();
    }
}

static char static_buffer[128];

static void expect_foreign(slab_cache_t *c, void *ptr)
{
    slab_cache_stats_t before = test_stats(c);
    test_errors_reset();
    slab_cache_free(c, ptr);
    expect_one_error(SLAB_ERR_FOREIGN);
    assert_string_equal(test_err.function, "slab_cache_free");
    assert_true(test_err.has_cache);
    assert_string_equal(test_err.cache, slab_cache_name(c));
    assert_ptr_equal(test_err.ptr, ptr);
    assert_null(test_err.object);
    test_errors_reset();
    expect_ignored(c, &before);
}

static void test_foreign(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_F, DBG_FZPU};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("foreign", 64, sets[i]);
        unsigned char *live = alloc_ok(c);
        memset(live, 0x44, 64);
        char on_stack[64];
        memset(on_stack, 0, sizeof on_stack);
        expect_foreign(c, on_stack);
        void *heap = malloc(64);
        assert_non_null(heap);
        expect_foreign(c, heap);
        free(heap);
        expect_foreign(c, static_buffer);
        for (int k = 0; k < 64; k++)
            assert_int_equal(live[k], 0x44);
        slab_cache_free(c, live);
        assert_verify_clean();
        destroy_ok(c);
        expect_no_error();
    }
}

static void test_interior(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_F, DBG_FZPU};
    const size_t offs[] = {1, 8, 63};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("interior", 64, sets[i]);
        unsigned char *obj[2] = {alloc_ok(c), alloc_ok(c)};
        for (int k = 0; k < 2; k++) {
            for (size_t j = 0; j < sizeof offs / sizeof offs[0]; j++) {
                slab_cache_stats_t before = test_stats(c);
                slab_cache_free(c, obj[k] + offs[j]);
                expect_debug_error(SLAB_ERR_INTERIOR, "slab_cache_free", "interior", obj[k],
                                   offs[j]);
                assert_ptr_equal(test_err.ptr, obj[k] + offs[j]);
                test_errors_reset();
                expect_ignored(c, &before);
            }
        }
        /* both objects are still live and free normally */
        slab_cache_free(c, obj[0]);
        slab_cache_free(c, obj[1]);
        expect_no_error();
        assert_int_equal(test_stats(c).active_objs, 0);
        destroy_ok(c);
        expect_no_error();
    }
}

static void test_wrong_cache(void **state)
{
    (void)state;
    const slab_flags_t a_sets[] = {DBG_F, DBG_FZPU};
    const slab_flags_t b_sets[] = {0, DBG_FZPU};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 2; j++) {
            slab_cache_t *a = make("A", 64, a_sets[i]);
            slab_cache_t *b = make("B", 64, b_sets[j]);
            void *pa = alloc_ok(a);
            unsigned char *p = alloc_ok(b);
            memset(p, 0x55, 64);
            slab_cache_stats_t before = test_stats(a), b_before = test_stats(b);
            slab_cache_free(a, p);
            expect_one_error(SLAB_ERR_WRONG_CACHE);
            assert_string_equal(test_err.function, "slab_cache_free");
            assert_true(test_err.has_cache);
            assert_string_equal(test_err.cache, "A");
            assert_true(test_err.has_owner);
            assert_string_equal(test_err.owner, "B");
            assert_ptr_equal(test_err.object, p);
            assert_ptr_equal(test_err.ptr, p);
            test_errors_reset();
            expect_ignored(a, &before);
            slab_cache_stats_t b_after = test_stats(b);
            assert_int_equal(b_after.active_objs, b_before.active_objs);
            assert_int_equal(b_after.frees, b_before.frees);
            for (int k = 0; k < 64; k++)
                assert_int_equal(p[k], 0x55);
            slab_cache_free(b, p);
            slab_cache_free(a, pa);
            expect_no_error();
            destroy_ok(a);
            destroy_ok(b);
            expect_no_error();
        }
    }
}

/* ------------------------------------------------------------------ */
/* Red zones                                                            */

static void test_redzone_on_free(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_Z, DBG_FZPU};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("rz", 40, sets[i]);
        unsigned char *keep = alloc_ok(c), *p = alloc_ok(c);
        assert_int_equal(rz40_get(p, -1), RZ_LIVE);
        assert_int_equal(rz40_get(p, 40), RZ_LIVE);
        assert_int_equal(rz40_get(keep, -1), RZ_LIVE);
        assert_int_equal(rz40_get(keep, 40), RZ_LIVE);
        memset(p, 0x77, 40); /* every byte of the object is the program's */
        slab_cache_free(c, p);
        expect_no_error();
        /* a free object's zones */
        assert_int_equal(rz40_get(p, -1), RZ_FREE);
        assert_int_equal(rz40_get(p, 40), RZ_FREE);

        /* the byte after the object */
        assert_ptr_equal(alloc_ok(c), p); /* the lowest free object */
        slab_cache_stats_t before = test_stats(c);
        rz40_set(p, 40, 0x01);
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_REDZONE, "slab_cache_free", "rz", p, 40);
        expect_stacks((sets[i] & DBG_U) != 0);
        test_errors_reset();
        /* reported, and freed all the same */
        slab_cache_stats_t after = test_stats(c);
        assert_int_equal(after.errors, before.errors + 1);
        assert_int_equal(after.frees, before.frees + 1);
        assert_int_equal(after.active_objs, 1);
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_DOUBLE_FREE, "slab_cache_free", "rz", p, 0);
        test_errors_reset();
        rz40_set(p, 40, RZ_FREE); /* the zone as a free object has it */

        /* the byte before the object */
        assert_ptr_equal(alloc_ok(c), p);
        expect_no_error();
        rz40_set(p, -1, 0x02);
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_REDZONE, "slab_cache_free", "rz", p, -1);
        test_errors_reset();
        assert_int_equal(test_stats(c).active_objs, 1);
        rz40_set(p, -1, RZ_FREE);

        /* a zone of a free object written: found when it is handed out */
        rz40_set(p, 40, 0x03);
        before = test_stats(c);
        unsigned char *q = slab_cache_alloc(c);
        assert_ptr_equal(q, p);
        expect_debug_error(SLAB_ERR_REDZONE, "slab_cache_alloc", "rz", p, 40);
        test_errors_reset();
        after = test_stats(c);
        assert_int_equal(after.allocations, before.allocations + 1);
        assert_int_equal(after.errors, before.errors + 1);
        rz40_set(p, 40, RZ_LIVE); /* the zone as a live object has it */
        slab_cache_free(c, q);
        expect_no_error();

        slab_cache_free(c, keep);
        expect_no_error();
        assert_verify_clean();
        destroy_ok(c);
        expect_no_error();
    }
}

static void test_redzone_verify(void **state)
{
    (void)state;
    slab_cache_t *c = make("rz-verify", 40, DBG_Z);
    unsigned char *keep = alloc_ok(c), *p = alloc_ok(c);
    const long offs[] = {40, -1};
    for (size_t i = 0; i < 2; i++) {
        /* a live object */
        unsigned char saved = rz40_get(p, offs[i]);
        assert_int_equal(saved, RZ_LIVE);
        rz40_set(p, offs[i], 0x01);
        size_t n = slab_verify();
        assert_int_equal(n, 1);
        expect_debug_error(SLAB_ERR_REDZONE, "slab_verify", "rz-verify", p, offs[i]);
        test_errors_reset();
        rz40_set(p, offs[i], saved);
        assert_verify_clean();
        expect_no_error();
    }
    /* a free object */
    slab_cache_free(c, p);
    expect_no_error();
    rz40_set(p, 40, 0x01);
    assert_int_equal(slab_verify(), 1);
    expect_debug_error(SLAB_ERR_REDZONE, "slab_verify", "rz-verify", p, 40);
    test_errors_reset();
    rz40_set(p, 40, RZ_FREE);
    assert_verify_clean();
    /* verify changed nothing: the cache works on */
    assert_ptr_equal(alloc_ok(c), p);
    slab_cache_free(c, p);
    slab_cache_free(c, keep);
    expect_no_error();
    destroy_ok(c);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Poison                                                               */

static void test_poison(void **state)
{
    (void)state;
    slab_cache_t *c = make("poison", 64, DBG_P);
    unsigned char *keep = alloc_ok(c), *p = alloc_ok(c);
    /* undefined to memcheck (no constructor), though P filled them */
    test_mem_defined(keep, 64);
    test_mem_defined(p, 64);
    for (int k = 0; k < 64; k++) {
        if (keep[k] != POISON_NEW || p[k] != POISON_NEW)
            fail_msg("byte %d of a new object is %#x/%#x, not 0x5a", k, keep[k], p[k]);
    }
    memset(p, 0x11, 64);
    slab_cache_free(c, p);
    expect_no_error();
    test_expose(p, 64);
    for (int k = 0; k < 63; k++)
        if (p[k] != POISON_FREE)
            fail_msg("byte %d of a free object is %#x, not 0x6b", k, p[k]);
    assert_int_equal(p[63], POISON_END);
    test_hide(p, 64);

    /* written after free: found when the object is handed out again */
    free_set(p, 64, 5, 1);
    slab_cache_stats_t before = test_stats(c);
    unsigned char *q = slab_cache_alloc(c);
    assert_ptr_equal(q, p);
    expect_debug_error(SLAB_ERR_POISON, "slab_cache_alloc", "poison", p, 5);
    test_errors_reset();
    slab_cache_stats_t after = test_stats(c);
    assert_int_equal(after.errors, before.errors + 1);
    assert_int_equal(after.allocations, before.allocations + 1);
    assert_int_equal(after.active_objs, 2);
    slab_cache_free(c, q);
    expect_no_error();

    /* and by slab_verify() */
    free_set(p, 64, 5, 1);
    assert_int_equal(slab_verify(), 1);
    expect_debug_error(SLAB_ERR_POISON, "slab_verify", "poison", p, 5);
    test_errors_reset();
    free_set(p, 64, 5, POISON_FREE);
    assert_verify_clean();
    assert_ptr_equal(alloc_ok(c), p);
    expect_no_error();

    /* the last byte counts too */
    slab_cache_free(c, p);
    free_set(p, 64, 63, POISON_FREE);
    assert_ptr_equal(slab_cache_alloc(c), p);
    expect_debug_error(SLAB_ERR_POISON, "slab_cache_alloc", "poison", p, 63);
    test_errors_reset();

    slab_cache_free(c, p);
    slab_cache_free(c, keep);
    expect_no_error();
    destroy_ok(c);
    expect_no_error();
}

static int fill_ctor(void *obj, void *arg)
{
    (void)arg;
    unsigned char *o = obj;
    for (int k = 0; k < 64; k++)
        o[k] = (unsigned char)(k * 7 + 1);
    return 0;
}

static void expect_constructed(const unsigned char *o)
{
    for (int k = 0; k < 64; k++)
        if (o[k] != (unsigned char)(k * 7 + 1))
            fail_msg("byte %d of constructed object %p is %#x", k, (const void *)o, o[k]);
}

static void test_poison_with_ctor(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_P, DBG_FZPU};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = slab_cache_create("poison-ctor", 64, 0, sets[i], fill_ctor, NULL, NULL);
        assert_non_null(c);
        assert_int_equal(test_stats(c).flags, sets[i]);
        unsigned char *keep = alloc_ok(c), *p = alloc_ok(c);
        expect_constructed(keep);
        expect_constructed(p);
        slab_cache_free(c, p);
        test_expose(p, 64);
        expect_constructed(p); /* not poisoned while free */
        test_hide(p, 64);
        assert_ptr_equal(alloc_ok(c), p);
        expect_constructed(p);
        slab_cache_free(c, p);
        slab_cache_free(c, keep);
        expect_no_error();
        assert_verify_clean();
        destroy_ok(c);
        expect_no_error();
    }
}

/* ------------------------------------------------------------------ */
/* Consistency checks: a damaged free bitmap                             */

static void test_consistency_bitmap(void **state)
{
    (void)state;
    slab_cache_t *c = make("bitmap", 16, DBG_F);
    slab_cache_stats_t st = test_stats(c);
    size_t n = st.objs_per_slab, words = (n + 63) / 64;
    size_t slab_bytes = st.pages_per_slab * SLAB_PAGE_SIZE;
    if (n <= 64)
        fail_msg("%zu objects of 16 bytes per slab: the bitmap is not in the slab", n);

    /* one whole slab, every object in use */
    unsigned char **objs = calloc(n, sizeof *objs);
    assert_non_null(objs);
    uintptr_t last = 0;
    size_t last_i = 0;
    for (size_t i = 0; i < n; i++) {
        objs[i] = alloc_ok(c);
        if ((uintptr_t)objs[i] > last) {
            last = (uintptr_t)objs[i];
            last_i = i;
        }
    }
    uintptr_t base = (uintptr_t)objs[0] & ~(uintptr_t)(slab_bytes - 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal((uintptr_t)objs[i] & ~(uintptr_t)(slab_bytes - 1), base);
    assert_int_equal(test_stats(c).total_slabs, 1);
    volatile uint64_t *map = (volatile uint64_t *)(base + slab_bytes) - words;

    /* it is the bitmap: freeing the first object changes its first word */
    uint64_t saved = map[0];
    slab_cache_free(c, objs[0]);
    assert_true(map[0] != saved);
    assert_ptr_equal(alloc_ok(c), objs[0]);
    assert_int_equal(map[0], saved);
    expect_no_error();
    assert_verify_clean();

    /* 64 objects in use marked free */
    map[0] = ~saved;
    size_t problems = slab_verify();
    if (problems < 1)
        fail_msg("slab_verify() missed a damaged bitmap");
    assert_int_equal(test_err.count, problems);
    assert_int_equal(test_errors_of_kind(SLAB_ERR_CORRUPT), problems);
    for (unsigned k = 0; k < problems && k < TEST_ERR_HISTORY; k++) {
        const test_error_entry_t *e = test_error_nth(k);
        assert_string_equal(e->function, "slab_verify");
        assert_true(e->has_cache);
        assert_string_equal(e->cache, "bitmap");
    }
    test_errors_reset();

    /* a free in the slab finds it: the object freed, the last, has its
     * bit in the last word, which is right (freeing one of the first 64
     * would look like a double free) */
    slab_cache_free(c, (void *)last);
    expect_one_error(SLAB_ERR_CORRUPT);
    assert_string_equal(test_err.function, "slab_cache_free");
    assert_true(test_err.has_cache);
    assert_string_equal(test_err.cache, "bitmap");
    test_errors_reset();

    /* repaired, the cache is whole again */
    map[0] = saved;
    if (test_stats(c).active_objs == n)
        slab_cache_free(c, (void *)last); /* the damaged free was refused */
    assert_int_equal(test_stats(c).active_objs, n - 1);
    expect_no_error();
    assert_verify_clean();
    for (size_t i = 0; i < n; i++)
        if (i != last_i)
            slab_cache_free(c, objs[i]);
    expect_no_error();
    free(objs);
    destroy_ok(c);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Call stacks and leaks                                                */

static void test_stack_user(void **state)
{
    (void)state;
    const slab_flags_t sets[] = {DBG_U, DBG_FZPU};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        slab_cache_t *c = make("stacks", 24, sets[i]);
        void *keep = alloc_ok(c);
        void *p = alloc_here(c);
        assert_non_null(p);
        free_here(c, p);
        expect_no_error();
        slab_cache_free(c, p);
        expect_debug_error(SLAB_ERR_DOUBLE_FREE, "slab_cache_free", "stacks", p, 0);
        expect_stacks(1);
        if (!pc_in(test_err.alloc_pc0, (uintptr_t)alloc_here))
            fail_msg("allocation stack starts at %p, not in alloc_here (%p)",
                     test_err.alloc_pc0, (void *)(uintptr_t)alloc_here);
        if (!pc_in(test_err.free_pc0, (uintptr_t)free_here))
            fail_msg("free stack starts at %p, not in free_here (%p)", test_err.free_pc0,
                     (void *)(uintptr_t)free_here);
        assert_true(test_err.alloc_thread != 0);
        assert_int_equal(test_err.alloc_thread, my_tid());
        assert_int_equal(test_err.free_thread, my_tid());
        assert_true(test_err.alloc_when_ms <= test_err.free_when_ms);
        test_errors_reset();
        slab_cache_free(c, keep);
        destroy_ok(c);
        expect_no_error();
    }
}

static void test_leak_at_destroy(void **state)
{
    (void)state;
    slab_cache_t *c = make("leaky-destroy", 32, DBG_U);
    void *objs[5];
    int n = 0;
    for (int k = 0; k < three; k++)
        assert_non_null(objs[n++] = alloc_site_a(c));
    for (int k = 0; k < two; k++)
        assert_non_null(objs[n++] = alloc_site_b(c));
    slab_cache_stats_t before = test_stats(c);
    test_errors_reset();
    errno = 0;
    assert_int_equal(slab_cache_destroy(c), -1);
    assert_int_equal(errno, EBUSY);
    if (test_err.count != 3)
        fail_msg("%u reports at destroy, want two leaks and one busy (last: %s)", test_err.count,
                 test_err.message);
    assert_int_equal(test_errors_of_kind(SLAB_ERR_LEAK), 2);
    int seen_a = 0, seen_b = 0;
    for (unsigned k = 0; k < 2; k++) {
        const test_error_entry_t *e = test_error_nth(k);
        assert_int_equal(e->kind, SLAB_ERR_LEAK);
        assert_string_equal(e->function, "slab_cache_destroy");
        assert_true(e->has_cache);
        assert_string_equal(e->cache, "leaky-destroy");
        assert_true(e->has_alloc);
        assert_true(e->alloc_depth > 0);
        assert_true(e->message[0] != '\0');
        if (e->n == 3) {
            seen_a++;
            if (!pc_in(e->alloc_pc0, (uintptr_t)alloc_site_a))
                fail_msg("the leak of 3 was allocated at %p, not in alloc_site_a (%p)",
                         e->alloc_pc0, (void *)(uintptr_t)alloc_site_a);
        } else if (e->n == 2) {
            seen_b++;
            if (!pc_in(e->alloc_pc0, (uintptr_t)alloc_site_b))
                fail_msg("the leak of 2 was allocated at %p, not in alloc_site_b (%p)",
                         e->alloc_pc0, (void *)(uintptr_t)alloc_site_b);
        } else {
            fail_msg("a leak report counts %zu objects: %s", e->n, e->message);
        }
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);
    const test_error_entry_t *busy = test_error_nth(2);
    assert_int_equal(busy->kind, SLAB_ERR_BUSY);
    assert_int_equal(busy->n, 5);
    assert_true(busy->has_cache);
    assert_string_equal(busy->cache, "leaky-destroy");
    test_errors_reset();

    /* the cache is as it was and works on */
    slab_cache_stats_t after = test_stats(c);
    assert_int_equal(after.active_objs, before.active_objs);
    assert_int_equal(after.allocations, before.allocations);
    for (int k = 0; k < n; k++)
        assert_ptr_equal(slab_owner(objs[k]), c);
    for (int k = 0; k < n; k++)
        slab_cache_free(c, objs[k]);
    expect_no_error();
    destroy_ok(c);
    expect_no_error();

    /* without U: leaks are reported all the same, with no stacks */
    c = make("leaky-nouser", 32, DBG_F);
    for (int k = 0; k < 4; k++)
        objs[k] = alloc_ok(c);
    errno = 0;
    assert_int_equal(slab_cache_destroy(c), -1);
    assert_int_equal(errno, EBUSY);
    unsigned reports = test_err.count;
    if (reports < 2 || reports > TEST_ERR_HISTORY)
        fail_msg("%u reports at destroy, want leaks and one busy (last: %s)", reports,
                 test_err.message);
    size_t leaked = 0;
    for (unsigned k = 0; k + 1 < reports; k++) {
        const test_error_entry_t *e = test_error_nth(k);
        assert_int_equal(e->kind, SLAB_ERR_LEAK);
        assert_string_equal(e->cache, "leaky-nouser");
        assert_false(e->has_alloc);
        leaked += e->n;
    }
    assert_int_equal(leaked, 4);
    assert_int_equal(test_error_nth(reports - 1)->kind, SLAB_ERR_BUSY);
    assert_int_equal(test_error_nth(reports - 1)->n, 4);
    test_errors_reset();
    for (int k = 0; k < 4; k++)
        slab_cache_free(c, objs[k]);
    destroy_ok(c);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Child processes                                                      */

static struct {
    int status;
    char out[1 << 16];
    char err[1 << 16];
} child;

static void read_back(FILE *f, char *buf, size_t cap)
{
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run "test_debug --child scenario" with this environment less every
 * SLAB_ variable, plus env (NULL-terminated "NAME=value" strings), and
 * wait for it: its status, stdout and stderr in `child`. */
static void run_child(const char *scenario, const char *const *env)
{
    size_t have = 0, add = 0;
    while (environ[have])
        have++;
    while (env && env[add])
        add++;
    char **envp = calloc(have + add + 1, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < have; i++)
        if (strncmp(environ[i], "SLAB_", 5) != 0)
            envp[k++] = environ[i];
    for (size_t i = 0; i < add; i++)
        envp[k++] = (char *)env[i];
    char *argv[] = {(char *)"test_debug", (char *)"--child", (char *)scenario, NULL};
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(err), STDERR_FILENO);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        execve(test_self_path, argv, envp);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &child.status, 0), pid);
    read_back(out, child.out, sizeof child.out);
    read_back(err, child.err, sizeof child.err);
    free(envp);
}

static const char *child_how(void)
{
    static char how[64];
    if (WIFEXITED(child.status))
        snprintf(how, sizeof how, "exit %d", WEXITSTATUS(child.status));
    else if (WIFSIGNALED(child.status))
        snprintf(how, sizeof how, "signal %d", WTERMSIG(child.status));
    else
        snprintf(how, sizeof how, "status %#x", child.status);
    return how;
}

#define child_fail(what)                                                              \
    fail_msg("child %s: %s\n--- stdout:\n%.3000s\n--- stderr:\n%.3000s", child_how(), \
             (what), child.out, child.err)

static void expect_child_exit(int code)
{
    if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != code) {
        char want[32];
        snprintf(want, sizeof want, "want exit %d", code);
        child_fail(want);
    }
}

static void expect_child_signal(int sig)
{
    if (!WIFSIGNALED(child.status) || WTERMSIG(child.status) != sig) {
        char want[32];
        snprintf(want, sizeof want, "want signal %d", sig);
        child_fail(want);
    }
}

/* hay contains needle, ignoring ASCII case. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               (hay[i] | (hay[i] >= 'A' && hay[i] <= 'Z' ? 0x20 : 0)) ==
                   (needle[i] | (needle[i] >= 'A' && needle[i] <= 'Z' ? 0x20 : 0)))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static void expect_in_err(const char *needle)
{
    if (!contains_ci(child.err, needle)) {
        char what[128];
        snprintf(what, sizeof what, "stderr does not mention '%s'", needle);
        child_fail(what);
    }
}

static void expect_in_out(const char *needle)
{
    if (!strstr(child.out, needle)) {
        char what[128];
        snprintf(what, sizeof what, "stdout has no '%s'", needle);
        child_fail(what);
    }
}

/* The address the child printed as "object %p". */
static void child_object(char *buf, size_t cap)
{
    const char *o = strstr(child.out, "object ");
    if (!o)
        child_fail("no object address on stdout");
    o += strlen("object ");
    size_t n = strcspn(o, "\n");
    if (n == 0 || n >= cap)
        child_fail("bad object address");
    memcpy(buf, o, n);
    buf[n] = '\0';
}

/* The report the child's printing hook wrote. */
struct child_report {
    int kind;
    char function[64], cache[64];
    void *object;
    long offset;
    int alloc_depth, free_depth; /* -1: none */
};

static struct child_report child_report(void)
{
    struct child_report r;
    memset(&r, 0, sizeof r);
    const char *line = strstr(child.out, "report ");
    if (!line)
        child_fail("no report on stdout");
    if (sscanf(line,
               "report kind=%d function=%63s cache=%63s object=%p offset=%ld alloc=%d free=%d",
               &r.kind, r.function, r.cache, &r.object, &r.offset, &r.alloc_depth,
               &r.free_depth) != 7)
        child_fail("report line does not parse");
    return r;
}

static void test_child_double_free_aborts(void **state)
{
    (void)state;
    char addr[64];
    const char *env[] = {"SLAB_DEBUG=FZPU,victim", NULL};
    run_child("double-free", env);
    expect_child_signal(SIGABRT);
    child_object(addr, sizeof addr);
    expect_in_err("double free");
    expect_in_err("victim");
    expect_in_err(addr);
    if (strstr(child.out, "survived"))
        child_fail("the child went on after the report");

    /* the hook is called before the abort, with every field */
    run_child("double-free-hook", env);
    expect_child_signal(SIGABRT);
    child_object(addr, sizeof addr);
    struct child_report r = child_report();
    assert_int_equal(r.kind, SLAB_ERR_DOUBLE_FREE);
    assert_string_equal(r.function, "slab_cache_free");
    assert_string_equal(r.cache, "victim");
    char obj[64];
    snprintf(obj, sizeof obj, "%p", r.object);
    assert_string_equal(obj, addr);
    assert_int_equal(r.offset, 0);
    assert_true(r.alloc_depth > 0);
    assert_true(r.free_depth > 0);

    /* SLAB_DEBUG_ABORT=0: reported, and the child goes on */
    const char *env0[] = {"SLAB_DEBUG=FZPU,victim", "SLAB_DEBUG_ABORT=0", NULL};
    run_child("double-free", env0);
    expect_child_exit(0);
    child_object(addr, sizeof addr);
    expect_in_err("double free");
    expect_in_err("victim");
    expect_in_err(addr);
    expect_in_out("survived");
}

static void test_child_redzone_aborts(void **state)
{
    (void)state;
    char addr[64];
    run_child("redzone", NULL);
    expect_child_signal(SIGABRT);
    child_object(addr, sizeof addr);
    expect_in_err("red zone");
    expect_in_err("rz-child");
    expect_in_err(addr);
    expect_in_err("40");
    if (strstr(child.out, "survived"))
        child_fail("the child went on after the report");

    run_child("redzone-hook", NULL);
    expect_child_signal(SIGABRT);
    child_object(addr, sizeof addr);
    struct child_report r = child_report();
    assert_int_equal(r.kind, SLAB_ERR_REDZONE);
    assert_string_equal(r.function, "slab_cache_free");
    assert_string_equal(r.cache, "rz-child");
    char obj[64];
    snprintf(obj, sizeof obj, "%p", r.object);
    assert_string_equal(obj, addr);
    assert_int_equal(r.offset, 40);

    const char *env0[] = {"SLAB_DEBUG_ABORT=0", NULL};
    run_child("redzone", env0);
    expect_child_exit(0);
    expect_in_err("red zone");
    expect_in_out("survived");
}

static void test_child_verify_never_aborts(void **state)
{
    (void)state;
    run_child("verify", NULL);
    expect_child_exit(0);
    expect_in_out("debug_abort 1\n");
    expect_in_out("verify 1\n");
    expect_in_err("red zone");
    expect_in_err("rz-verify");
}

static void test_child_kmalloc_double_free(void **state)
{
    (void)state;
    const char *env[] = {"SLAB_DEBUG=FU,kmalloc-64", "SLAB_DEBUG_ABORT=0", NULL};
    run_child("kmalloc-double-free", env);
    expect_child_exit(0);
    assert_string_equal(child.err, "");

    /* and with the default, an abort */
    const char *env1[] = {"SLAB_DEBUG=FU,kmalloc-64", NULL};
    run_child("kmalloc-double-free-abort", env1);
    expect_child_signal(SIGABRT);
    expect_in_err("double free");
    expect_in_err("kmalloc-64");
}

static void test_child_kmalloc_redzone(void **state)
{
    (void)state;
    const char *env[] = {"SLAB_DEBUG=Z,kmalloc-112", "SLAB_DEBUG_ABORT=0", NULL};
    run_child("kmalloc-redzone", env);
    expect_child_exit(0);
    assert_string_equal(child.err, "");
}

static void test_child_leak_at_exit(void **state)
{
    (void)state;
    const char *env[] = {"SLAB_DEBUG=UL,leaky;U,quiet", NULL};
    run_child("leak-exit", env);
    expect_child_exit(0);
    expect_in_err("leak");
    expect_in_err("leaky");
    /* the count on the line that names the cache */
    int found = 0;
    for (const char *line = child.err; *line;) {
        size_t len = strcspn(line, "\n");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, "leaky") && strchr(buf, '2'))
            found = 1;
        line += len + (line[len] == '\n');
    }
    if (!found)
        child_fail("no line names 'leaky' with its 2 objects");
    /* U without L: nothing at exit */
    if (strstr(child.err, "quiet"))
        child_fail("a cache without L reported at exit");

    /* without L anywhere: silence */
    const char *env_u[] = {"SLAB_DEBUG=U,leaky;U,quiet", NULL};
    run_child("leak-exit", env_u);
    expect_child_exit(0);
    assert_string_equal(child.err, "");
}

static void test_child_trace(void **state)
{
    (void)state;
    char addr[64];
    const char *env[] = {"SLAB_DEBUG=T,traced", NULL};
    run_child("trace", env);
    expect_child_exit(0);
    child_object(addr, sizeof addr);
    int lines = 0;
    for (const char *line = child.err; *line;) {
        size_t len = strcspn(line, "\n");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, "traced")) {
            lines++;
            if (!strstr(buf, addr))
                child_fail("a trace line without the object's address");
        }
        if (strstr(buf, "plain"))
            child_fail("a cache without T traced");
        line += len + (line[len] == '\n');
    }
    if (lines != 2)
        child_fail("want two trace lines, one per allocation and free");
}

/* ---- SLAB_DEBUG's grammar: the flags every cache got ---- */

#define MAX_CACHES 128

static struct child_cache {
    char name[SLAB_NAME_MAX + 8];
    unsigned flags;
    size_t magazine_size;
    int internal;
} caches[MAX_CACHES];
static size_t ncaches;
static int child_debug_abort;

static void run_flags_child(const char *value, const char *extra)
{
    char var[256];
    snprintf(var, sizeof var, "SLAB_DEBUG=%s", value);
    const char *env[] = {var, extra, NULL};
    run_child("flags", env);
    expect_child_exit(0);
    ncaches = 0;
    child_debug_abort = -1;
    for (const char *line = child.out; *line;) {
        struct child_cache *cc = &caches[ncaches];
        if (sscanf(line, "cache %39s %x %zu %d", cc->name, &cc->flags, &cc->magazine_size,
                   &cc->internal) == 4) {
            assert_true(ncaches + 1 < MAX_CACHES);
            ncaches++;
        } else if (sscanf(line, "debug_abort %d", &child_debug_abort) != 1) {
            child_fail("a line of stdout does not parse");
        }
        line += strcspn(line, "\n");
        if (*line)
            line++;
    }
    if (child_debug_abort < 0)
        child_fail("no debug_abort line");
    /* libslab's own caches are never debugged; debugged ones have no
     * magazines, the program's other caches have theirs */
    size_t kmalloc = 0;
    for (size_t i = 0; i < ncaches; i++) {
        if (caches[i].internal && (caches[i].flags & SLAB_DEBUG_FLAGS))
            fail_msg("SLAB_DEBUG=%s: libslab's cache %s got flags %#x", value, caches[i].name,
                     caches[i].flags);
        if ((caches[i].flags & SLAB_DEBUG_FLAGS) && caches[i].magazine_size != 0)
            fail_msg("SLAB_DEBUG=%s: %s has flags %#x and magazines", value, caches[i].name,
                     caches[i].flags);
        if (!caches[i].internal && !(caches[i].flags & SLAB_DEBUG_FLAGS) &&
            caches[i].magazine_size == 0)
            fail_msg("SLAB_DEBUG=%s: %s has no debug flags and no magazines", value,
                     caches[i].name);
        kmalloc += strncmp(caches[i].name, "kmalloc-", 8) == 0;
    }
    assert_int_equal(kmalloc, slab_size_class_count());
}

static unsigned cache_flags(const char *value, const char *name)
{
    for (size_t i = 0; i < ncaches; i++)
        if (strcmp(caches[i].name, name) == 0)
            return caches[i].flags;
    fail_msg("SLAB_DEBUG=%s: the child has no cache %s", value, name);
    return 0;
}

#define expect_flags(value_, name_, want_)                                            \
    do {                                                                              \
        unsigned got_ = cache_flags((value_), (name_));                               \
        if (got_ != (unsigned)(want_))                                                \
            fail_msg("SLAB_DEBUG=%s: cache %s has flags %#x, want %#x", (value_),     \
                     (name_), got_, (unsigned)(want_));                               \
    } while (0)

/* Every kmalloc class that `match` names (a name, or a prefix ending in
 * '*') has `with`, every other one `without`. */
static void expect_kmalloc_flags(const char *value, const char *match, unsigned with,
                                 unsigned without)
{
    size_t len = strlen(match);
    int prefix = len > 0 && match[len - 1] == '*';
    for (size_t i = 0; i < ncaches; i++) {
        if (strncmp(caches[i].name, "kmalloc-", 8) != 0)
            continue;
        int named = prefix ? strncmp(caches[i].name, match, len - 1) == 0
                           : strcmp(caches[i].name, match) == 0;
        unsigned want = named ? with : without;
        if (caches[i].flags != want)
            fail_msg("SLAB_DEBUG=%s: %s has flags %#x, want %#x", value, caches[i].name,
                     caches[i].flags, want);
    }
}

/* The plain caches the flags child creates: conn, other (no flags) and
 * hw (SLAB_HWCACHE_ALIGN). */
static void expect_plain(const char *value, unsigned conn, unsigned other)
{
    expect_flags(value, "conn", conn);
    expect_flags(value, "other", other);
    expect_flags(value, "hw", SLAB_HWCACHE_ALIGN | other);
}

static void expect_no_reports(const char *value)
{
    if (child.err[0])
        fail_msg("SLAB_DEBUG=%s is valid but reported: %.2000s", value, child.err);
}

static void test_child_grammar(void **state)
{
    (void)state;
    const char *v;

    v = "1";
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_FZPU, DBG_FZPU);
    expect_kmalloc_flags(v, "kmalloc-*", DBG_FZPU, 0);
    assert_int_equal(child_debug_abort, 1);

    v = "1";
    run_flags_child(v, "SLAB_DEBUG_ABORT=0");
    expect_plain(v, DBG_FZPU, DBG_FZPU);
    assert_int_equal(child_debug_abort, 0);

    v = "FZ,conn,kmalloc-64";
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_F | DBG_Z, 0);
    expect_kmalloc_flags(v, "kmalloc-64", DBG_F | DBG_Z, 0); /* not kmalloc-640 */
    expect_flags(v, "kmalloc-640", 0);

    v = "ZP;U,conn";
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_U, DBG_Z | DBG_P);
    expect_kmalloc_flags(v, "kmalloc-*", DBG_Z | DBG_P, 0);

    v = "Z,kmalloc-*";
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, 0, 0);
    expect_kmalloc_flags(v, "kmalloc-*", DBG_Z, 0);

    v = "U,kmalloc-1*"; /* kmalloc-16, -112, -128, -160, -192, -1k, -1280, ... */
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, 0, 0);
    expect_kmalloc_flags(v, "kmalloc-1*", DBG_U, 0);
    expect_flags(v, "kmalloc-16", DBG_U);
    expect_flags(v, "kmalloc-1k", DBG_U);
    expect_flags(v, "kmalloc-64", 0);

    const char *none[] = {"-", "0"};
    for (size_t i = 0; i < 2; i++) {
        run_flags_child(none[i], NULL);
        expect_no_reports(none[i]);
        expect_plain(none[i], 0, 0);
        expect_kmalloc_flags(none[i], "kmalloc-*", 0, 0);
    }

    v = ",conn"; /* no letters: FZPU */
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_FZPU, 0);

    v = "fz,conn"; /* either case */
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_F | DBG_Z, 0);

    v = "utl,conn";
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_U | DBG_T | DBG_L, 0);

    v = "F,conn;Z,conn"; /* the last block naming a cache wins */
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, DBG_Z, 0);

    v = "F,slab_*"; /* libslab's own caches are never debugged */
    run_flags_child(v, NULL);
    expect_no_reports(v);
    expect_plain(v, 0, 0);
    expect_kmalloc_flags(v, "kmalloc-*", 0, 0);

    v = "Q,conn"; /* an unknown letter: reported and skipped */
    run_flags_child(v, NULL);
    if (!strchr(child.err, 'Q'))
        child_fail("the unknown letter Q was not reported");
    expect_plain(v, 0, 0);
    expect_kmalloc_flags(v, "kmalloc-*", 0, 0);

    v = "QF,conn"; /* the rest of the block applies */
    run_flags_child(v, NULL);
    if (!strchr(child.err, 'Q'))
        child_fail("the unknown letter Q was not reported");
    expect_plain(v, DBG_F, 0);

    v = "F,,conn"; /* an empty name: reported and skipped */
    run_flags_child(v, NULL);
    if (!child.err[0])
        child_fail("an empty name in SLAB_DEBUG was not reported");
    expect_plain(v, DBG_F, 0);
    expect_kmalloc_flags(v, "kmalloc-*", 0, 0);
}

/* ------------------------------------------------------------------ */
/* The child side                                                       */

#define CHILD_CHECK(cond)                                                          \
    do {                                                                           \
        if (!(cond)) {                                                             \
            printf("child check failed at line %d: %s\n", __LINE__, #cond);        \
            fflush(stdout);                                                        \
            return 10;                                                             \
        }                                                                          \
    } while (0)

/* A hook that writes the report to stdout, so that the parent sees it
 * even when the child aborts right after. */
static void print_hook(const slab_error_t *e, void *arg)
{
    (void)arg;
    char line[512];
    int n = snprintf(line, sizeof line,
                     "report kind=%d function=%s cache=%s object=%p offset=%ld alloc=%d free=%d\n",
                     (int)e->kind, e->function ? e->function : "-", e->cache ? e->cache : "-",
                     e->object, e->offset, e->alloc ? (int)e->alloc->depth : -1,
                     e->free ? (int)e->free->depth : -1);
    if (n > 0)
        (void)!write(STDOUT_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void child_print_object(const void *p)
{
    printf("object %p\n", p);
    fflush(stdout);
}

/* Cache "victim" gets FZPU from SLAB_DEBUG; an object freed twice. */
static int child_double_free(int hook)
{
    if (hook)
        slab_set_error_hook(print_hook, NULL);
    slab_cache_t *c = slab_cache_create("victim", 48, 0, 0, NULL, NULL, NULL);
    CHILD_CHECK(c != NULL);
    slab_cache_stats_t st;
    CHILD_CHECK(slab_cache_stats(c, &st) == 0);
    CHILD_CHECK(st.flags == DBG_FZPU);
    CHILD_CHECK(st.magazine_size == 0);
    void *keep = slab_cache_alloc(c), *p = slab_cache_alloc(c);
    CHILD_CHECK(keep && p);
    child_print_object(p);
    slab_cache_free(c, p);
    slab_cache_free(c, p);
    printf("survived\n");
    slab_cache_free(c, keep);
    CHILD_CHECK(slab_cache_destroy(c) == 0);
    return 0;
}

static int child_double_free_plain(void) { return child_double_free(0); }
static int child_double_free_hook(void) { return child_double_free(1); }

/* A red zone written in a cache made with Z. */
static int child_redzone(int hook)
{
    if (hook)
        slab_set_error_hook(print_hook, NULL);
    slab_cache_t *c = slab_cache_create("rz-child", 40, 0, DBG_Z, NULL, NULL, NULL);
    CHILD_CHECK(c != NULL);
    unsigned char *keep = slab_cache_alloc(c), *p = slab_cache_alloc(c);
    CHILD_CHECK(keep && p);
    child_print_object(p);
    rz40_set(p, 40, 1);
    slab_cache_free(c, p);
    printf("survived\n");
    slab_cache_free(c, keep);
    return 0; /* the damaged object stays free: no destroy */
}

static int child_redzone_plain(void) { return child_redzone(0); }
static int child_redzone_hook(void) { return child_redzone(1); }

/* slab_verify() with debug_abort on: reports and returns. */
static int child_verify(void)
{
    slab_options_t o;
    slab_get_options(&o);
    printf("debug_abort %d\n", o.debug_abort);
    slab_cache_t *c = slab_cache_create("rz-verify", 40, 0, DBG_Z, NULL, NULL, NULL);
    CHILD_CHECK(c != NULL);
    unsigned char *p = slab_cache_alloc(c);
    CHILD_CHECK(p != NULL);
    unsigned char saved = rz40_get(p, 40);
    rz40_set(p, 40, 1);
    size_t n = slab_verify();
    printf("verify %zu\n", n);
    rz40_set(p, 40, saved);
    CHILD_CHECK(slab_verify() == 0);
    slab_cache_free(c, p);
    CHILD_CHECK(slab_cache_destroy(c) == 0);
    return 0;
}

/* SLAB_DEBUG=FU,kmalloc-64 and SLAB_DEBUG_ABORT=0: a double free through
 * slab_free(), checked here with the recording hook. */
static int child_kmalloc_double_free(void)
{
    test_errors_install();
    slab_cache_t *c64 = slab_kmalloc_cache(64), *c32 = slab_kmalloc_cache(32);
    CHILD_CHECK(c64 && c32);
    slab_cache_stats_t st;
    CHILD_CHECK(slab_cache_stats(c64, &st) == 0);
    CHILD_CHECK(strcmp(st.name, "kmalloc-64") == 0);
    CHILD_CHECK(st.flags == (DBG_F | DBG_U));
    CHILD_CHECK(st.magazine_size == 0);
    CHILD_CHECK(slab_cache_stats(c32, &st) == 0);
    CHILD_CHECK(st.flags == 0);
    void *keep = slab_malloc(64), *p = slab_malloc(60);
    CHILD_CHECK(keep && p);
    CHILD_CHECK(slab_owner(p) == c64);
    slab_free(p);
    CHILD_CHECK(test_err.count == 0);
    slab_free(p);
    CHILD_CHECK(test_err.count == 1);
    CHILD_CHECK(test_err.kind == SLAB_ERR_DOUBLE_FREE);
    CHILD_CHECK(strcmp(test_err.function, "slab_free") == 0);
    CHILD_CHECK(test_err.has_cache && strcmp(test_err.cache, "kmalloc-64") == 0);
    CHILD_CHECK(test_err.ptr == p);
    CHILD_CHECK(test_err.object == p);
    CHILD_CHECK(test_err.offset == 0);
    CHILD_CHECK(test_err.has_alloc && test_err.alloc_depth > 0);
    CHILD_CHECK(test_err.has_free && test_err.free_depth > 0);
    test_errors_reset();
    CHILD_CHECK(slab_cache_stats(c64, &st) == 0);
    CHILD_CHECK(st.errors == 1);
    CHILD_CHECK(st.active_objs == 1);
    slab_free(keep);
    /* another class stays unchecked and quiet */
    void *q = slab_malloc(32);
    CHILD_CHECK(q != NULL);
    slab_free(q);
    CHILD_CHECK(test_err.count == 0);
    slab_set_error_hook(NULL, NULL);
    return 0;
}

/* The same with the default options: the report on stderr, then abort. */
static int child_kmalloc_double_free_abort(void)
{
    void *keep = slab_malloc(64), *p = slab_malloc(64);
    CHILD_CHECK(keep && p);
    slab_free(p);
    slab_free(p);
    printf("survived\n");
    return 0;
}

/* SLAB_DEBUG=Z,kmalloc-112 and SLAB_DEBUG_ABORT=0: the zone starts at
 * the size asked for. */
static int child_kmalloc_redzone(void)
{
    test_errors_install();
    slab_cache_t *c = slab_kmalloc_cache(100);
    CHILD_CHECK(c != NULL);
    slab_cache_stats_t st;
    CHILD_CHECK(slab_cache_stats(c, &st) == 0);
    CHILD_CHECK(strcmp(st.name, "kmalloc-112") == 0);
    CHILD_CHECK(st.flags == DBG_Z);
    /* a request of the class size: all of it usable, no report */
    unsigned char *whole = slab_malloc(112);
    CHILD_CHECK(whole != NULL);
    CHILD_CHECK(slab_owner(whole) == c);
    CHILD_CHECK(slab_usable_size(whole) == 112);
    memset(whole, 0x21, 112);
    /* a smaller one: usable as asked, the zone right after */
    unsigned char *p = slab_malloc(100);
    CHILD_CHECK(p != NULL);
    CHILD_CHECK(slab_owner(p) == c);
    CHILD_CHECK(slab_usable_size(p) == 100);
    CHILD_CHECK(zone_get(p, 100, 100, 112) == RZ_LIVE);
    memset(p, 0x22, 100);
    CHILD_CHECK(test_err.count == 0);
    CHILD_CHECK(slab_verify() == 0);
    zone_set(p, 100, 100, 112, 1);
    slab_free(p);
    CHILD_CHECK(test_err.count == 1);
    CHILD_CHECK(test_err.kind == SLAB_ERR_REDZONE);
    CHILD_CHECK(strcmp(test_err.function, "slab_free") == 0);
    CHILD_CHECK(test_err.has_cache && strcmp(test_err.cache, "kmalloc-112") == 0);
    CHILD_CHECK(test_err.object == p);
    CHILD_CHECK(test_err.offset == 100);
    test_errors_reset();
    CHILD_CHECK(slab_cache_stats(c, &st) == 0);
    CHILD_CHECK(st.active_objs == 1); /* freed all the same */
    slab_free(whole);
    CHILD_CHECK(test_err.count == 0);
    slab_set_error_hook(NULL, NULL);
    return 0;
}

/* Caches "leaky" (2 objects) and "quiet" (1 object) left live at exit. */
static int child_leak_exit(void)
{
    slab_cache_t *c = slab_cache_create("leaky", 32, 0, 0, NULL, NULL, NULL);
    slab_cache_t *q = slab_cache_create("quiet", 32, 0, 0, NULL, NULL, NULL);
    CHILD_CHECK(c && q);
    for (int k = 0; k < two; k++)
        CHILD_CHECK(alloc_site_a(c) != NULL);
    CHILD_CHECK(slab_cache_alloc(q) != NULL);
    return 0;
}

/* SLAB_DEBUG=T,traced: one allocation and one free in "traced", the same
 * in "plain". */
static int child_trace(void)
{
    slab_cache_t *c = slab_cache_create("traced", 32, 0, 0, NULL, NULL, NULL);
    slab_cache_t *plain = slab_cache_create("plain", 32, 0, 0, NULL, NULL, NULL);
    CHILD_CHECK(c && plain);
    slab_cache_stats_t st;
    CHILD_CHECK(slab_cache_stats(c, &st) == 0);
    CHILD_CHECK(st.flags == DBG_T);
    void *p = slab_cache_alloc(c);
    CHILD_CHECK(p != NULL);
    child_print_object(p);
    slab_cache_free(c, p);
    void *x = slab_cache_alloc(plain);
    CHILD_CHECK(x != NULL);
    slab_cache_free(plain, x);
    CHILD_CHECK(slab_cache_destroy(plain) == 0);
    CHILD_CHECK(slab_cache_destroy(c) == 0);
    return 0;
}

static int print_cache(const slab_cache_t *c, void *arg)
{
    (void)arg;
    slab_cache_stats_t st;
    if (slab_cache_stats(c, &st) != 0)
        return 1;
    printf("cache %s %#x %zu %d\n", st.name, st.flags, st.magazine_size, st.internal);
    return 0;
}

/* The flags every cache has under the SLAB_DEBUG given: conn, other, hw
 * (SLAB_HWCACHE_ALIGN), every size class, and libslab's own. */
static int child_flags(void)
{
    slab_options_t o;
    slab_get_options(&o);
    printf("debug_abort %d\n", o.debug_abort);
    CHILD_CHECK(slab_cache_create("conn", 64, 0, 0, NULL, NULL, NULL) != NULL);
    CHILD_CHECK(slab_cache_create("other", 64, 0, 0, NULL, NULL, NULL) != NULL);
    CHILD_CHECK(slab_cache_create("hw", 100, 0, SLAB_HWCACHE_ALIGN, NULL, NULL, NULL) != NULL);
    for (size_t i = 0; i < slab_size_class_count(); i++)
        CHILD_CHECK(slab_kmalloc_cache(slab_size_class(i)) != NULL);
    CHILD_CHECK(slab_cache_foreach(print_cache, NULL) == 0);
    fflush(stdout);
    return 0;
}

static int child_main(const char *scenario)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } table[] = {
        {"double-free", child_double_free_plain},
        {"double-free-hook", child_double_free_hook},
        {"redzone", child_redzone_plain},
        {"redzone-hook", child_redzone_hook},
        {"verify", child_verify},
        {"kmalloc-double-free", child_kmalloc_double_free},
        {"kmalloc-double-free-abort", child_kmalloc_double_free_abort},
        {"kmalloc-redzone", child_kmalloc_redzone},
        {"leak-exit", child_leak_exit},
        {"trace", child_trace},
        {"flags", child_flags},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(scenario, table[i].name) == 0)
            return table[i].fn();
    fprintf(stderr, "test_debug: no child scenario '%s'\n", scenario);
    return 126;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    /* This process's caches get only the flags the tests give them;
     * SLAB_DEBUG is read at the first call into libslab, below. */
    unsetenv("SLAB_DEBUG");
    unsetenv("SLAB_DEBUG_ABORT");
    if (test_find_self("test_debug") != 0)
        return 1;
    /* Errors are reported to the tests' hook and do not abort; no
     * automatic reap, no injected faults, magazines for plain caches. */
    slab_options_t o;
    slab_get_options(&o);
    o.debug_abort = 0;
    o.magazines = 1;
    o.reap_interval_ms = 0;
    o.fault_every = 0;
    o.fault_one_in = 0;
    slab_set_options(&o);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flags, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_options_debug_abort, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_double_free, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_double_free_other_thread, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_foreign, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_interior, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_cache, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_redzone_on_free, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_redzone_verify, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_poison, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_poison_with_ctor, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_consistency_bitmap, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_stack_user, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_leak_at_destroy, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_double_free_aborts, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_redzone_aborts, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_verify_never_aborts, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_kmalloc_double_free, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_kmalloc_redzone, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_leak_at_exit, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_trace, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_child_grammar, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
