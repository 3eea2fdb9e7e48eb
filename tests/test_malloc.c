/*
 * test_malloc.c - libslab-malloc: the C library's allocation interface
 * (malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size,
 * free_sized, free_aligned_sized, malloc_trim) as the program's own.
 *
 * This program links against libslab-malloc.so, so the malloc it calls,
 * and the one the C library calls internally (strdup, asprintf, stdio,
 * open_memstream, getline), is libslab's; the first test checks that it
 * really is.  Then the standard's rules: malloc(0), overflow checks with
 * ENOMEM, realloc's NULL and 0 cases, EINVAL for bad alignments with the
 * output and errno untouched, every alignment up to 16 MiB, errno kept by
 * free(); then fork() while other threads allocate, blocks freed by
 * another thread after their allocating thread has exited, and threads
 * mallocing, reallocing and freeing with content checks.
 *
 * When libslab's malloc is not the one in use (a tool that replaces
 * malloc, such as valgrind's memcheck or a sanitizer's interceptors), the
 * program says why and exits with SKIP_CODE, which the test's
 * SKIP_RETURN_CODE turns into a skipped test.  SLAB_TEST_SCALE scales the
 * thread tests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kmalloc_test.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#define SKIP_CODE 77

/* C23's; declared here for C libraries whose headers predate them. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Sizes pass through here so that the compiler sees no constant to
 * reason about (-Walloc-size-larger-than, folded overflow checks). */
static volatile size_t opaque_zero;
static size_t v(size_t n)
{
    return n + opaque_zero;
}

static size_t libc_usable_size(const void *p)
{
    return malloc_usable_size((void *)p);
}

/* The C library's names, for the helpers of kmalloc_test.h. */
static const struct heap libc_heap = {
    .malloc_fn = malloc,
    .calloc_fn = calloc,
    .realloc_fn = realloc,
    .free_fn = free,
    .usable_fn = libc_usable_size,
    .usable_name = "malloc_usable_size",
};

/* ------------------------------------------------------------------ */
/* Whose malloc is this?                                                */

/* The file that defines the malloc every call resolves to. */
static const char *malloc_provider(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return "?";
    return info.dli_fname;
}

/* A block from malloc() is a live object of libslab's. */
static int malloc_is_libslab(void)
{
    void *p = malloc(v(100));
    if (!p)
        return 0;
    slab_cache_t *c = slab_owner(p);
    int ours = c && strcmp(slab_cache_name(c), "kmalloc-112") == 0;
    free(p);
    return ours;
}

static void test_malloc_is_libslab(void **state)
{
    (void)state;
    const char *who = malloc_provider();
    if (!strstr(who, "libslab-malloc"))
        fail_msg("malloc resolves to %s, not libslab-malloc", who);
    void *p = malloc(v(100));
    assert_non_null(p);
    slab_cache_t *c = slab_owner(p);
    assert_non_null(c);
    assert_string_equal(slab_cache_name(c), "kmalloc-112");
    assert_int_equal(slab_usable_size(p), 112);
    assert_int_equal(malloc_usable_size(p), 112);
    free(p);
    /* the C library's own allocations come from libslab too */
    char *s = strdup("allocated inside the C library");
    assert_non_null(s);
    assert_non_null(slab_owner(s));
    assert_int_equal(slab_usable_size(s), 32);
    free(s);
    /* and so do large ones */
    p = malloc(v(100000));
    assert_non_null(p);
    assert_int_equal(slab_usable_size(p), run_round(100000));
    free(p);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* The standard's rules                                                 */

static void test_malloc_zero(void **state)
{
    (void)state;
    void *a = malloc(v(0)), *b = malloc(v(0));
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_true(malloc_usable_size(a) >= 1);
    free(a);
    free(b);
    free(NULL);
    expect_no_error();
}

static void test_calloc_and_overflow(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 100, 3000, 40000, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = malloc(v(sizes[i]));
        assert_non_null(p);
        memset(p, 0xee, malloc_usable_size(p));
        free(p);
        p = calloc(v(1), v(sizes[i]));
        assert_non_null(p);
        for (size_t k = 0; k < sizes[i]; k++)
            if (p[k])
                fail_msg("calloc(1, %zu): byte %zu is %#x", sizes[i], k, p[k]);
        free(p);
    }
    errno = 0;
    assert_null(calloc(v(SIZE_MAX / 2), v(3)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(v(SIZE_MAX), v(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(malloc(v(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(malloc(v(PTRDIFF_MAX) + 1));
    assert_int_equal(errno, ENOMEM);
    expect_no_error();
}

static void test_realloc_rules(void **state)
{
    (void)state;
    /* NULL: malloc */
    char *p = realloc(NULL, v(100));
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= 100);
    fill(p, 100, 1);
    /* grow through every kind of block and back */
    static const size_t steps[] = {1000, 40000, 300000, 3 * MiB, 50, 8};
    size_t from = 100;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *q = realloc(p, v(steps[i]));
        assert_non_null(q);
        assert_filled(q, from < steps[i] ? from : steps[i], i + 1);
        fill(q, steps[i], (unsigned)i + 2);
        p = q;
        from = steps[i];
    }
    free(p);

    /* size 0: frees and returns NULL (glibc's rule) */
    free(malloc(v(50000)));
    size_t used = test_used_pages();
    p = malloc(v(50000));
    assert_non_null(p);
    assert_int_equal(test_used_pages(), used + run_round(50000) / SLAB_PAGE_SIZE);
    assert_null(realloc(p, v(0)));
    assert_int_equal(test_used_pages(), used);
    p = malloc(v(10));
    assert_non_null(p);
    assert_null(realloc(p, v(0)));

    /* reallocarray: overflow fails with ENOMEM and leaves the block */
    int *a = reallocarray(NULL, v(10), sizeof(int));
    assert_non_null(a);
    for (int i = 0; i < 10; i++)
        a[i] = i * 7;
    /* through a pointer, so the compiler does not take `a` for freed */
    void *(*volatile reallocarray_fn)(void *, size_t, size_t) = reallocarray;
    errno = 0;
    assert_null(reallocarray_fn(a, v(SIZE_MAX / 2), v(3)));
    assert_int_equal(errno, ENOMEM);
    for (int i = 0; i < 10; i++)
        assert_int_equal(a[i], i * 7);
    a = reallocarray(a, v(5000), sizeof(int));
    assert_non_null(a);
    for (int i = 0; i < 10; i++)
        assert_int_equal(a[i], i * 7);
    free(a);
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

static void test_posix_memalign_invalid(void **state)
{
    (void)state;
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 4095, 3 * MiB, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] >= sizeof(void *) && (bad[i] & (bad[i] - 1)) == 0)
            continue; /* valid on this machine */
        void *out = (void *)0x1234;
        errno = 4321;
        int rc = posix_memalign(&out, v(bad[i]), v(10));
        if (rc != EINVAL)
            fail_msg("posix_memalign(align %zu) returned %d, not EINVAL", bad[i], rc);
        assert_ptr_equal(out, (void *)0x1234);
        assert_int_equal(errno, 4321);
    }
    /* and success leaves errno alone too */
    void *out = NULL;
    errno = 4321;
    assert_int_equal(posix_memalign(&out, v(64), v(10)), 0);
    assert_int_equal(errno, 4321);
    assert_non_null(out);
    free(out);
    /* too much memory: ENOMEM by value, errno untouched */
    out = (void *)0x1234;
    assert_int_equal(posix_memalign(&out, v(64), v(SIZE_MAX - 4096)), ENOMEM);
    assert_ptr_equal(out, (void *)0x1234);
    assert_int_equal(errno, 4321);

    errno = 0;
    assert_null(aligned_alloc(v(3), v(8)));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(aligned_alloc(v(24), v(8)));
    assert_int_equal(errno, EINVAL);
    expect_no_error();
}

static void test_alignments(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 5000, 100000, 3 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    struct aligned_failures bad = {0};
    /* every power of two from sizeof(void *) to 16 MiB, each through
     * posix_memalign, aligned_alloc and memalign */
    for (size_t align = sizeof(void *); align <= 16 * MiB; align *= 2) {
        for (size_t k = 0; k < NS; k++) {
            for (int how = 0; how < 3; how++) {
                size_t size = sizes[k], u = 0;
                uint64_t before[64];
                class_allocations(before);
                void *p = NULL;
                if (how == 0) {
                    int rc = posix_memalign(&p, v(align), v(size));
                    if (rc)
                        fail_msg("posix_memalign(%zu, %zu) = %d", align, size, rc);
                } else if (how == 1) {
                    p = aligned_alloc(v(align), v(size));
                } else {
                    p = memalign(v(align), v(size));
                }
                static const char *const names[] = {"posix_memalign", "aligned_alloc",
                                                    "memalign"};
                const char *why = aligned_problem(p, align, size, before, &libc_heap, &u);
                if (why) {
                    note_aligned_failure(&bad, names[how], align, size, p, why);
                    continue;
                }
                /* all of a small block; the ends and 256 KiB of a big one */
                memset(p, 0x5a, u < 256 * KiB ? u : 256 * KiB);
                memset((char *)p + u - (u < 4096 ? u : 4096), 0xa5, u < 4096 ? u : 4096);
                if (how == 2)
                    free_aligned_sized(p, align, size);
                else
                    free(p);
            }
        }
    }
    assert_no_aligned_failures(&bad);
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

static void test_legacy_aligned(void **state)
{
    (void)state;
    /* memalign rounds a non-power of two up, as glibc's does */
    void *p = memalign(v(48), v(10));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    free(p);
    p = memalign(v(3), v(10));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4, 0);
    free(p);

    p = valloc(v(1));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
    free(p);
    p = valloc(v(10000));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
    assert_true(malloc_usable_size(p) >= 10000);
    free(p);

    p = pvalloc(v(1));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
    assert_true(malloc_usable_size(p) >= SLAB_PAGE_SIZE);
    memset(p, 1, SLAB_PAGE_SIZE);
    free(p);
    p = pvalloc(v(0));
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= SLAB_PAGE_SIZE);
    free(p);
    p = pvalloc(v(5000));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % SLAB_PAGE_SIZE, 0);
    assert_true(malloc_usable_size(p) >= 8192);
    free(p);
    errno = 0;
    assert_null(pvalloc(v(SIZE_MAX - 10)));
    assert_int_equal(errno, ENOMEM);
    expect_no_error();
}

static void test_usable_size_and_sized_free(void **state)
{
    (void)state;
    assert_int_equal(malloc_usable_size(NULL), 0);
    static const size_t sizes[] = {0, 1, 8, 9, 100, 129, 1000, 4096, 32768, 32769, 100000,
                                   3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(v(sizes[i]));
        assert_non_null(p);
        size_t u = malloc_usable_size(p);
        assert_true(u >= sizes[i]);
        memset(p, 0x42, u); /* all of it is usable */
        if (i % 2)
            free_sized(p, sizes[i]);
        else
            free(p);
    }
    free_sized(NULL, 10);
    free_aligned_sized(NULL, 64, 10);
    void *p = aligned_alloc(v(256), v(1000));
    assert_non_null(p);
    free_aligned_sized(p, 256, 1000);
    p = aligned_alloc(v(1 * MiB), v(3 * MiB));
    assert_non_null(p);
    free_aligned_sized(p, 1 * MiB, 3 * MiB);
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

static void test_free_keeps_errno(void **state)
{
    (void)state;
    static const size_t sizes[] = {10, 5000, 40000, 300000, 3 * MiB, 12 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(v(sizes[i]));
        assert_non_null(p);
        memset(p, 0x33, sizes[i]);
        errno = 1234;
        free(p);
        if (errno != 1234)
            fail_msg("free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* realloc to 0 frees too */
    void *p = malloc(v(40000));
    assert_non_null(p);
    errno = 1234;
    assert_null(realloc(p, v(0)));
    assert_int_equal(errno, 1234);
    expect_no_error();
}

static void test_malloc_trim(void **state)
{
    (void)state;
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = malloc(v(1000 + 3000 * (size_t)i));
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 64; i++)
        free(p[i]);
    int r = malloc_trim(0);
    assert_true(r == 0 || r == 1);
    r = malloc_trim(1 * MiB);
    assert_true(r == 0 || r == 1);
    assert_int_equal(slab_verify(), 0);
    void *q = malloc(v(100));
    assert_non_null(q);
    free(q);
}

/* Resident memory of this process, in KiB. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * (long)(sysconf(_SC_PAGESIZE) / 1024);
}

/* Allocate about 96 MiB in blocks of 16 B to 64 KiB, every page written,
 * free it all; returns the growth of the resident set at the peak. */
static long grow_and_free(long base)
{
    enum { N = 6000 };
    static void *p[N];
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t size = (size_t)16 << (x % 13); /* 16 B .. 64 KiB */
        size += (x >> 20) % size;
        if (i % 3 == 0)
            size = 32 * KiB; /* enough big blocks to make ~96 MiB */
        p[i] = malloc(v(size));
        assert_non_null(p[i]);
        memset(p[i], 0x5a, size);
    }
    long peak = rss_kib() - base;
    for (size_t i = 0; i < N; i++)
        free(p[i]);
    return peak;
}

static bool under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

/* After the program frees what it allocated, the resident set falls: at
 * once with malloc_trim(), and by itself once the freed pages have stayed
 * unused for a while and the allocator runs again. */
static void test_memory_goes_back(void **state)
{
    (void)state;
    if (under_valgrind() || rss_kib() < 0) {
        print_message("skipped: resident set sizes mean nothing here\n");
        return;
    }
    long base = rss_kib();
    long peak = grow_and_free(base);
    assert_true(peak > 40 * 1024);
    assert_int_equal(malloc_trim(0), 1);
    long trimmed = rss_kib() - base;
    print_message("resident growth: %ld KiB at the peak, %ld KiB after malloc_trim\n", peak,
                  trimmed);
    assert_true(trimmed < peak / 4);

    base = rss_kib();
    peak = grow_and_free(base);
    usleep(1500 * 1000); /* longer than the buddy allocator's purge delay */
    for (int i = 0; i < 64; i++) /* some later activity, pages freed included */
        free(malloc(v(64 * KiB + (size_t)i)));
    long later = rss_kib() - base;
    print_message("resident growth: %ld KiB at the peak, %ld KiB 1.5 s after the frees\n", peak,
                  later);
    assert_true(later < peak / 4);
    assert_int_equal(slab_verify(), 0);
}

/* ------------------------------------------------------------------ */
/* The C library allocating for us                                      */

static void test_libc_users(void **state)
{
    (void)state;
    char *s = strdup("hello, world");
    assert_non_null(s);
    assert_string_equal(s, "hello, world");
    assert_non_null(slab_owner(s));
    free(s);
    s = strndup("hello, world", 5);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    free(s);

    char *a = NULL;
    int n = asprintf(&a, "%s-%d-%0*d", "asprintf", 42, 3000, 7);
    assert_int_equal(n, 3000 + 12);
    assert_non_null(a);
    assert_int_equal(strncmp(a, "asprintf-42-000", 15), 0);
    assert_true(malloc_usable_size(a) >= 3013);
    free(a);

    /* stdio: FILE and its buffer come from malloc */
    FILE *f = tmpfile();
    assert_non_null(f);
    for (int i = 0; i < 2000; i++)
        assert_true(fprintf(f, "line %d of the file\n", i) > 0);
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&line, &cap, f) > 0) {
        char want[64];
        snprintf(want, sizeof want, "line %d of the file\n", lines);
        assert_string_equal(line, want);
        lines++;
    }
    assert_int_equal(lines, 2000);
    assert_non_null(slab_owner(line)); /* getline's buffer is ours to free */
    free(line);
    assert_int_equal(fclose(f), 0);

    f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_true(fprintf(f, "%s %d\n", "to nowhere", 1) > 0);
    assert_int_equal(fclose(f), 0);

    char *buf = NULL;
    size_t len = 0;
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%d,", i);
    assert_int_equal(fclose(f), 0);
    assert_non_null(buf);
    assert_true(len > 5000);
    assert_int_equal(strncmp(buf, "0,1,2,3,", 8), 0);
    free(buf);
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

/* ------------------------------------------------------------------ */
/* fork() while other threads allocate                                  */

static atomic_int churn_stop;

static void *churn(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    void *held[32] = {0};
    while (!atomic_load(&churn_stop)) {
        unsigned s = (unsigned)(test_rand(&rng) % 32);
        free(held[s]);
        size_t n = 1 + (size_t)(test_rand(&rng) % (s < 2 ? 200000 : 3000));
        held[s] = malloc(n);
        if (held[s])
            memset(held[s], 0x77, n);
        else
            thread_fail("churn: malloc(%zu) failed", n);
    }
    for (int i = 0; i < 32; i++)
        free(held[i]);
    return NULL;
}

static int child_work(void)
{
    void *p[100];
    for (int i = 0; i < 100; i++) {
        size_t n = (size_t)1 << (i % 20);
        p[i] = malloc(n);
        if (!p[i])
            return 1;
        memset(p[i], i, n);
    }
    for (int i = 0; i < 100; i++) {
        if (((unsigned char *)p[i])[0] != (unsigned char)i)
            return 2;
        free(p[i]);
    }
    char *s = strdup("child");
    if (!s || strcmp(s, "child") != 0)
        return 3;
    free(s);
    void *big = malloc(5 * MiB);
    if (!big)
        return 4;
    memset(big, 1, 5 * MiB);
    free(big);
    if (slab_verify() != 0)
        return 5;
    return 0;
}

static void test_fork_with_threads(void **state)
{
    (void)state;
    pthread_t t[2];
    atomic_store(&churn_stop, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
    int rounds = (int)test_scaled(8);
    for (int r = 0; r < rounds; r++) {
        usleep(2000); /* let them run */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            test_fork_child_of_threads();
            _exit(child_work());
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status))
            fail_msg("round %d: the child did not exit (status %#x)", r, status);
        if (WEXITSTATUS(status) != 0)
            fail_msg("round %d: the child exited with %d", r, WEXITSTATUS(status));
        /* the parent carries on */
        void *p = malloc(v(1000));
        assert_non_null(p);
        free(p);
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_no_thread_failures();
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

/* ------------------------------------------------------------------ */
/* Blocks that outlive their thread                                     */

#define HANDED 200

struct handover {
    void *p[HANDED];
    size_t n[HANDED];
};

static void *allocate_and_exit(void *arg)
{
    struct handover *h = arg;
    for (int i = 0; i < HANDED; i++) {
        h->n[i] = 16 + (size_t)i * (i % 10 == 9 ? 2000 : 37);
        h->p[i] = malloc(h->n[i]);
        if (!h->p[i]) {
            thread_fail("malloc(%zu) failed", h->n[i]);
            return NULL;
        }
        test_put_pattern(h->p[i], h->n[i], 0);
    }
    return NULL;
}

static void test_blocks_outlive_thread(void **state)
{
    (void)state;
    static struct handover h;
    memset(&h, 0, sizeof h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, allocate_and_exit, &h), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_no_thread_failures();
    for (int i = 0; i < HANDED; i++) {
        assert_non_null(h.p[i]);
        assert_true(test_check_pattern(h.p[i], h.n[i], 0, 0));
        free(h.p[i]);
    }
    assert_no_thread_failures();
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

/* ------------------------------------------------------------------ */
/* Threads: malloc, realloc, free with content checks                   */

/* pick (of 1000): 65 % of 16 to 315 bytes, 25 % up to 4315, 8.5 % up
 * to 34315, 1.4 % up to 34315 + 300 KiB, 0.1 % of 2 to 3 MiB */
static const struct size_band malloc_sizes[] = {
    {650, 16, 300},
    {900, 316, 4000},
    {985, 4316, 30000},
    {999, 34316, 300 * KiB},
    {1000, 2 * MiB, MiB},
};

static void test_threads_stress(void **state)
{
    (void)state;
    static const struct stress st = {
        .heap = &libc_heap,
        .sizes = malloc_sizes,
        .slots = 48,
        .ops = 4,
        .seed = 0xA5A5A5A5ULL,
        .seed_offset = 3,
    };
    run_stress(&st, test_scaled(20000));
    expect_no_error();
    assert_int_equal(slab_verify(), 0);
}

int main(void)
{
    /* Tools that put their own malloc in front of every library's make
     * this whole file meaningless: say so and report a skip. */
    if (!malloc_is_libslab()) {
        const char *provider = malloc_provider(), *why;
        if (strstr(provider, "asan"))
            why = "AddressSanitizer's malloc interceptors come first";
        else if (strstr(provider, "tsan"))
            why = "ThreadSanitizer's malloc interceptors come first";
#ifdef HAVE_VALGRIND_H
        else if (RUNNING_ON_VALGRIND)
            why = "valgrind's memcheck redirects it (run with "
                  "--soname-synonyms=somalloc=NOTHING to keep libslab's)";
#endif
        else if (getenv("LD_PRELOAD") && *getenv("LD_PRELOAD"))
            why = "a library in LD_PRELOAD replaces it";
        else
            why = "something replaces it";
        printf("test_malloc: skipped: malloc() does not return libslab's blocks (the malloc "
               "symbol is in %s): %s\n", provider, why);
        return SKIP_CODE;
    }
    /* No automatic reap: some tests count pages exactly. */
    test_no_automatic_reap();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malloc_is_libslab, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_malloc_zero, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_calloc_and_overflow, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_realloc_rules, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posix_memalign_invalid, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_alignments, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_legacy_aligned, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_usable_size_and_sized_free, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_free_keeps_errno, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_malloc_trim, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_memory_goes_back, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_libc_users, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fork_with_threads, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_blocks_outlive_thread, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_threads_stress, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
