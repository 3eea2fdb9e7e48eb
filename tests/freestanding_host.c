/*
 * freestanding_host.c - a host for libslab-freestanding.a in the tests:
 * what a kernel would give it, played by a Linux process.
 *
 * Memory: one static array, handed over with slab_add_region() before
 * main() runs, and a page source over a second one for what a region
 * cannot hold (allocations above SLAB_HUGE_THRESHOLD), as a kernel would
 * give its own page allocator; freestanding_host_pool is that source.
 * Locks: a ticket lock in the lock's word (not the library's own
 * spinlock, so the hooks are what the tests exercise).  CPUs: each
 * thread is a CPU of its own while it lives (its number is reused after
 * it exits), so no two threads share a CPU's magazines, as the contract
 * in <slab/host.h> asks.  Reports go to stderr; panic aborts.
 *
 * freestanding_host_calls() counts the hook calls, for the tests that
 * check the hooks are used at all.
 */
#include "freestanding_host.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slab/host.h>

/* The whole memory of the "machine": not aligned to the arena size, so
 * that the region's first and last windows are partial. */
static char ram[FREESTANDING_RAM_BYTES] __attribute__((aligned(4096)));

static atomic_ulong calls[FS_HOOK_KINDS];
static slab_buddy_info_t initial;

const slab_buddy_info_t *freestanding_host_initial(void) { return &initial; }

unsigned long freestanding_host_calls(enum fs_hook k) { return atomic_load(&calls[k]); }
void *freestanding_host_ram(size_t *len)
{
    *len = sizeof ram;
    return ram;
}

/* ---- the kernel's own page allocator, for requests above
 * SLAB_HUGE_THRESHOLD: a page source over a second static array, handing
 * out aligned runs of 128 KiB units (first fit on a bitmap) ---- */

#define UNIT ((size_t)128 << 10)
#define POOL_BYTES ((size_t)64 << 20)
#define UNITS (POOL_BYTES / UNIT)
static char pool[POOL_BYTES] __attribute__((aligned(4 << 20)));
static bool unit_used[UNITS];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* Units start at the first UNIT boundary in the array (a loader may not
 * honour the array's alignment: valgrind's does not). */
static char *pool_base(void)
{
    return (char *)(((uintptr_t)pool + UNIT - 1) & ~(uintptr_t)(UNIT - 1));
}

static void *pool_map(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    char *base = pool_base();
    size_t n = (size + UNIT - 1) / UNIT, step = align > UNIT ? align / UNIT : 1;
    size_t skew = (size_t)(-(uintptr_t)base & (align - 1)) / UNIT; /* first aligned unit */
    pthread_mutex_lock(&pool_lock);
    for (size_t i = skew; i + n <= UNITS - 1; i += step) {
        size_t k = 0;
        while (k < n && !unit_used[i + k])
            k++;
        if (k == n) {
            memset(&unit_used[i], 1, n);
            pthread_mutex_unlock(&pool_lock);
            memset(base + i * UNIT, 0, n * UNIT);
            return base + i * UNIT;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

static void pool_unmap(void *ctx, void *addr, size_t size)
{
    (void)ctx;
    size_t i = (size_t)((char *)addr - pool_base()) / UNIT, n = (size + UNIT - 1) / UNIT;
    pthread_mutex_lock(&pool_lock);
    memset(&unit_used[i], 0, n);
    pthread_mutex_unlock(&pool_lock);
}

const slab_page_source_t freestanding_host_pool = {.map = pool_map, .unmap = pool_unmap};

/* ---- a ticket lock: next ticket in the high half, now serving in the low ---- */

static void ticket_lock(unsigned *word, void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&calls[FS_LOCK], 1, memory_order_relaxed);
    unsigned mine = __atomic_fetch_add(word, 1u << 16, __ATOMIC_RELAXED) >> 16;
    for (unsigned spins = 0; (__atomic_load_n(word, __ATOMIC_ACQUIRE) & 0xffff) != (mine & 0xffff);)
        if (++spins % 64 == 0)
            sched_yield();
}

static void ticket_unlock(unsigned *word, void *ctx)
{
    (void)ctx;
    unsigned w = __atomic_load_n(word, __ATOMIC_RELAXED);
    /* only the holder changes the low half */
    unsigned serving = (w + 1) & 0xffff;
    unsigned old = w;
    while (!__atomic_compare_exchange_n(word, &old, (old & ~0xffffu) | serving, false,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
}

static bool ticket_trylock(unsigned *word, void *ctx)
{
    (void)ctx;
    unsigned w = __atomic_load_n(word, __ATOMIC_RELAXED);
    if ((w >> 16) != (w & 0xffff))
        return false;
    return __atomic_compare_exchange_n(word, &w, w + (1u << 16), false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/* ---- CPUs: one per live thread ---- */

static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static bool cpu_used[SLAB_MAX_CPUS];
static pthread_key_t cpu_key;
static __thread int my_cpu = -1;

static void cpu_release(void *arg)
{
    pthread_mutex_lock(&cpu_lock);
    cpu_used[(uintptr_t)arg - 1] = false;
    pthread_mutex_unlock(&cpu_lock);
}

static unsigned host_cpu(void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&calls[FS_CPU], 1, memory_order_relaxed);
    if (my_cpu >= 0)
        return (unsigned)my_cpu;
    pthread_mutex_lock(&cpu_lock);
    for (unsigned i = 0; i < SLAB_MAX_CPUS; i++) {
        if (!cpu_used[i]) {
            cpu_used[i] = true;
            my_cpu = (int)i;
            break;
        }
    }
    pthread_mutex_unlock(&cpu_lock);
    if (my_cpu < 0) {
        fprintf(stderr, "freestanding host: more than %d threads at once\n", SLAB_MAX_CPUS);
        abort();
    }
    pthread_setspecific(cpu_key, (void *)(uintptr_t)(my_cpu + 1));
    return (unsigned)my_cpu;
}

static void host_report(const char *line, void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&calls[FS_REPORT], 1, memory_order_relaxed);
    fputs(line, stderr);
}

static void host_panic(const char *why, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "freestanding host: panic: %s\n", why);
    abort();
}

static uint64_t host_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void boot(void)
{
    pthread_key_create(&cpu_key, cpu_release);
    const slab_host_t host = {
        .lock = ticket_lock,
        .unlock = ticket_unlock,
        .trylock = ticket_trylock,
        .cpu = host_cpu,
        .report = host_report,
        .panic = host_panic,
        .clock_ns = host_clock,
    };
    if (slab_set_host(&host) != 0) {
        fprintf(stderr, "freestanding host: slab_set_host failed\n");
        abort();
    }
    /* one page in, so the region starts and ends inside a window */
    if (slab_add_region(ram + 4096, sizeof ram - 8192) == 0) {
        fprintf(stderr, "freestanding host: slab_add_region failed\n");
        abort();
    }
    slab_set_page_source(&freestanding_host_pool);
    slab_buddy_info(&initial);
}
