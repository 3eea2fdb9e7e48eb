/*
 * live.c - publishing the statistics while the process runs, for slabtop.
 *
 * It owns the shared-memory object "/libslab.<pid>" of this process (the
 * layout and the sequence-lock protocol are in live_format.h), the one
 * thread that writes it, and their life: made by slab_stats_live(1) or,
 * with SLAB_STATS_LIVE=1 in the environment, at the first magazine slow
 * path (reap_tick() calls live_tick()); removed by slab_stats_live(0) and
 * by an exit handler.  What it keeps true:
 *
 *   - the object is created with O_EXCL and fchmod()ed to 0600 whatever
 *     the umask, so only the owner reads it; a file of that name left by
 *     a dead process with the same pid is replaced;
 *   - one writer at a time: the publisher thread, or the thread starting
 *     it (the first update, before the thread exists); starts and stops
 *     are serialised by `busy`, an atomic flag taken with a
 *     compare-and-swap that allocation paths only try, never wait for;
 *   - the writer follows the sequence lock: seq odd (relaxed store and a
 *     release fence), every word with relaxed atomic stores, seq even
 *     (release store); a reader never takes a lock or stops the program.
 *     The figures come from cache_snapshot() and stats_memory_info()
 *     into static buffers, taken with a deadline (never blocked forever
 *     by a slab_cache_foreach() callback), so nothing here calls malloc;
 *   - the thread is created with no libslab lock held (live_tick() gives
 *     up inside a cache walk, and `busy` is not a lock anyone waits on
 *     from malloc), outside any pthread_once, with every signal blocked,
 *     so pthread_create() may allocate even when libslab is the malloc;
 *     the exit handler is registered in the same place, not in the boot
 *     once (atexit() may allocate, see stats.c);
 *   - only the process that created the object removes it: `owner` is its
 *     pid.  In the child of fork() the thread does not exist: the child
 *     drops the parent's mapping without touching it (live_fork_child())
 *     and, if the parent was publishing, publishes its own object under
 *     its own pid once it has run for a second (so fork+exec makes none).
 *
 * _exit(), a fatal signal or exec leave the object behind; slabtop finds
 * the process gone, and a later publisher with that pid replaces it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "live_format.h"

#define STOP_SLICE_MS 20       /* the thread looks for a stop this often */
#define LOCK_WAIT_S 1          /* longest wait for the cache-list lock */
#define CHILD_DELAY_NS 1000000000ull

static int busy;               /* a start or stop is in progress */
static int wanted = -1;        /* publishing asked for; -1: environment not read yet */
static int pending = 1;        /* live_tick() has something to look at */
static int booted;             /* the library's boot once has completed */
static int stop_request;
static int thread_done;
static int exit_registered;
static uint64_t start_after_ns; /* a child of fork(): not before this */

/* Owned by whoever holds `busy` (and, while it runs, read by the thread). */
static bool running;
static pthread_t thread;
static int fd = -1;
static void *map;
static pid_t owner;            /* pid that created the object, 0 if none */
static char name[32];

/* The publisher's buffers: one writer at a time. */
static struct cache_snapshot snap[SLAB_LIVE_MAX_CACHES];
static uint64_t missed;

static bool take_busy(void)
{
    int zero = 0;
    return __atomic_compare_exchange_n(&busy, &zero, 1, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static void put_busy(void) { __atomic_store_n(&busy, 0, __ATOMIC_RELEASE); }

static void store_words(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One update of the object: figures first (locks taken and dropped),
 * then the sequence-locked write (no lock held). */
static void publish(void)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += LOCK_WAIT_S;
    size_t total = cache_snapshot(snap, 0, SLAB_LIVE_MAX_CACHES, &deadline);
    slab_memory_info_t mi;
    if (total == (size_t)-1 || stats_memory_info(&mi, &deadline) < 0) {
        missed++;
        total = (size_t)-1;
    }
    uint64_t *w = map;
    uint64_t s = __atomic_load_n(&w[SLAB_LIVE_SEQ_WORD], __ATOMIC_RELAXED);
    if (total == (size_t)-1 && s != 0)
        return; /* the figures of the last update stay */
    if (total == (size_t)-1) { /* nothing at all yet: publish no caches */
        total = 0;
        memset(&mi, 0, sizeof mi);
    }
    size_t n = total < SLAB_LIVE_MAX_CACHES ? total : SLAB_LIVE_MAX_CACHES;

    union slab_live_header_words h;
    memset(&h, 0, sizeof h);
    h.h.seq = h.h.copy_seq = s + 2;
    h.h.time_ns = clock_ns(CLOCK_REALTIME);
    h.h.mono_ns = clock_ns(CLOCK_MONOTONIC);
    h.h.nr_caches = n;
    h.h.caches_total = total;
    h.h.caches_omitted = total - n;
    h.h.missed = missed;
    h.h.mapped_bytes = mi.mapped_bytes;
    h.h.arena_bytes = mi.arena_bytes;
    h.h.metadata_bytes = mi.metadata_bytes;
    h.h.huge_bytes = mi.huge_bytes;
    h.h.huge_mappings = mi.huge_mappings;
    h.h.resident_bytes = mi.resident_bytes;
    h.h.free_bytes = mi.free_bytes;
    h.h.free_dirty_bytes = mi.free_dirty_bytes;
    h.h.in_use_bytes = mi.in_use_bytes;
    h.h.object_bytes = mi.object_bytes;
    h.h.run_bytes = mi.run_bytes;
    h.h.pages_bytes = mi.pages_bytes;
    h.h.slab_bytes = mi.slab_bytes;
    for (unsigned o = 0; o < SLAB_LIVE_ORDERS; o++)
        h.h.nr_free[o] = mi.nr_free[o];
    h.h.check = slab_live_checksum(&h.w[SLAB_LIVE_SEQ_WORD],
                                   SLAB_LIVE_HEADER_CHECK - SLAB_LIVE_SEQ_WORD);

    /* seq odd; the fence keeps every store below after it */
    __atomic_store_n(&w[SLAB_LIVE_SEQ_WORD], s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    store_words(w + SLAB_LIVE_HEADER_FIRST, h.w + SLAB_LIVE_HEADER_FIRST,
                SLAB_LIVE_HEADER_WORDS - SLAB_LIVE_HEADER_FIRST);
    for (size_t i = 0; i < n; i++) {
        const slab_cache_stats_t *st = &snap[i].st;
        union slab_live_record_words r;
        memset(&r, 0, sizeof r);
        r.c.seq = s + 2;
        memcpy(r.c.name, snap[i].name, sizeof snap[i].name < sizeof r.c.name
                                            ? sizeof snap[i].name : sizeof r.c.name);
        ((char *)r.c.name)[sizeof r.c.name - 1] = '\0';
        r.c.object_size = st->object_size;
        r.c.stride = st->stride;
        r.c.align = st->align;
        r.c.objs_per_slab = st->objs_per_slab;
        r.c.pages_per_slab = st->pages_per_slab;
        r.c.active_objs = st->active_objs;
        r.c.total_objs = st->total_objs;
        r.c.active_slabs = st->active_slabs;
        r.c.total_slabs = st->total_slabs;
        r.c.allocations = st->allocations;
        r.c.frees = st->frees;
        r.c.high_mark = st->high_mark;
        r.c.grown = st->grown;
        r.c.reaped = st->reaped;
        r.c.errors = st->errors;
        r.c.magazine_size = st->magazine_size;
        r.c.batchcount = st->batchcount;
        r.c.magazine_objs = st->magazine_objs;
        r.c.depot_objs = st->depot_objs;
        r.c.alloc_hit = st->alloc_hit;
        r.c.alloc_miss = st->alloc_miss;
        r.c.free_hit = st->free_hit;
        r.c.free_miss = st->free_miss;
        r.c.flags = st->internal ? SLAB_LIVE_INTERNAL : 0;
        r.c.check = slab_live_checksum(r.w, SLAB_LIVE_RECORD_WORDS - 1);
        store_words(w + SLAB_LIVE_HEADER_WORDS + i * SLAB_LIVE_RECORD_WORDS, r.w,
                    SLAB_LIVE_RECORD_WORDS);
    }
    __atomic_store_n(&w[SLAB_LIVE_SEQ_WORD], s + 2, __ATOMIC_RELEASE);
}

static void *publisher(void *arg)
{
    (void)arg;
    unsigned interval = options_stats_live_ms();
    while (!__atomic_load_n(&stop_request, __ATOMIC_ACQUIRE)) {
        publish();
        for (unsigned slept = 0; slept < interval;) {
            if (__atomic_load_n(&stop_request, __ATOMIC_ACQUIRE))
                break;
            unsigned ms = interval - slept < STOP_SLICE_MS ? interval - slept : STOP_SLICE_MS;
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            slept += ms;
        }
    }
    __atomic_store_n(&thread_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Stop the thread: it finishes its update and ends within a slice.  With
 * `bounded` (at exit) wait at most two seconds, then leave it running
 * (false: the mapping must stay). */
static bool stop_thread(bool bounded)
{
    __atomic_store_n(&stop_request, 1, __ATOMIC_RELEASE);
    if (bounded) {
        for (unsigned i = 0; i < 2000 && !__atomic_load_n(&thread_done, __ATOMIC_ACQUIRE); i++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (!__atomic_load_n(&thread_done, __ATOMIC_ACQUIRE))
            return false;
    }
    pthread_join(thread, NULL);
    return true;
}

/* Drop the mapping and the descriptor; unlink the name if ours. */
static void remove_object(void)
{
    if (map) {
        munmap(map, SLAB_LIVE_FILE_SIZE);
        map = NULL;
    }
    if (fd >= 0) {
        close(fd);
        fd = -1;
    }
    if (owner == getpid())
        shm_unlink(name);
    owner = 0;
}

static void at_exit(void)
{
    int saved = errno;
    __atomic_store_n(&wanted, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pending, 0, __ATOMIC_RELAXED);
    if (take_busy()) {
        if (running && owner == getpid()) {
            if (stop_thread(true)) {
                running = false;
                remove_object();
            } else {
                shm_unlink(name); /* still writing: the mapping stays */
            }
        }
        put_busy();
    } else if (owner == getpid()) {
        shm_unlink(name); /* a start or stop is under way in another thread */
    }
    errno = saved;
}

static int fail_start(int err)
{
    remove_object();
    errno = err;
    return -1;
}

/* Create the object, publish once, start the thread.  Holds `busy`. */
static int start(void)
{
    if (running)
        return 0;
    pid_t pid = getpid();
    slab_live_name(name, pid);
    int flags = O_CREAT | O_EXCL | O_RDWR;
    fd = shm_open(name, flags, 0600);
    if (fd < 0 && errno == EEXIST) { /* left by a dead process with our pid */
        shm_unlink(name);
        fd = shm_open(name, flags, 0600);
    }
    if (fd < 0)
        return -1;
    owner = pid;
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)SLAB_LIVE_FILE_SIZE) < 0)
        return fail_start(errno);
    void *m = mmap(NULL, SLAB_LIVE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return fail_start(errno);
    map = m;

    union slab_live_header_words h;
    memset(&h, 0, sizeof h);
    h.h.magic = SLAB_LIVE_MAGIC;
    h.h.version = SLAB_LIVE_VERSION;
    h.h.file_size = SLAB_LIVE_FILE_SIZE;
    h.h.header_size = sizeof(struct slab_live_header);
    h.h.record_size = sizeof(struct slab_live_cache);
    h.h.max_caches = SLAB_LIVE_MAX_CACHES;
    h.h.pid = (uint64_t)pid;
    h.h.uid = (uint64_t)geteuid();
    h.h.interval_ms = options_stats_live_ms();
    h.h.page_size = PAGE_SIZE;
    store_words(map, h.w, SLAB_LIVE_SEQ_WORD); /* seq stays 0 until publish() */
    missed = 0;
    publish();

    if (!__atomic_exchange_n(&exit_registered, 1, __ATOMIC_ACQ_REL))
        atexit(at_exit);

    __atomic_store_n(&stop_request, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&thread_done, 0, __ATOMIC_RELAXED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&thread, NULL, publisher, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return fail_start(err);
    pthread_setname_np(thread, "libslab-live");
    running = true;
    return 0;
}

static void stop(void)
{
    if (!running)
        return;
    stop_thread(false);
    running = false;
    remove_object();
}

static bool want_now(void)
{
    int w = __atomic_load_n(&wanted, __ATOMIC_RELAXED);
    if (w < 0) {
        w = options_stats_live();
        int unknown = -1;
        __atomic_compare_exchange_n(&wanted, &unknown, w, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
        w = __atomic_load_n(&wanted, __ATOMIC_RELAXED);
    }
    return w > 0;
}

static void report_start_failure(int err)
{
    char line[160], reason[96];
    const char *r = strerror_r(err, reason, sizeof reason);
    size_t n = 0;
    const char *parts[] = {"libslab: SLAB_STATS_LIVE: cannot publish statistics in ", name,
                           ": ", r, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *p = parts[i]; *p && n < sizeof line - 1; p++)
            line[n++] = *p;
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

void live_tick(void)
{
    if (!__atomic_load_n(&pending, __ATOMIC_RELAXED))
        return;
    if (!__atomic_load_n(&booted, __ATOMIC_ACQUIRE) || cache_walking())
        return; /* inside the boot once, or holding the cache-list lock */
    if (!take_busy())
        return;
    if (running || !want_now()) {
        __atomic_store_n(&pending, 0, __ATOMIC_RELAXED);
    } else if (clock_now_ns() >= __atomic_load_n(&start_after_ns, __ATOMIC_RELAXED)) {
        __atomic_store_n(&pending, 0, __ATOMIC_RELAXED);
        if (start() < 0) {
            int err = errno;
            __atomic_store_n(&wanted, 0, __ATOMIC_RELAXED); /* not tried again */
            report_start_failure(err);
        }
    }
    put_busy();
}

void live_boot(void)
{
    if (!__atomic_load_n(&booted, __ATOMIC_RELAXED))
        __atomic_store_n(&booted, 1, __ATOMIC_RELEASE);
}

int slab_stats_live(int on)
{
    if (on != 0 && on != 1) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0,
                     "argument %d: 1 publishes, 0 stops", on);
        errno = EINVAL;
        return -1;
    }
    cache_boot();
    while (!take_busy()) { /* another thread starts or stops: a moment */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int ret = 0;
    __atomic_store_n(&wanted, on, __ATOMIC_RELAXED);
    __atomic_store_n(&pending, 0, __ATOMIC_RELAXED);
    if (on)
        ret = start();
    else
        stop();
    int err = errno;
    put_busy();
    errno = err;
    return ret;
}

void live_fork_child(void)
{
    /* The thread is gone; the mapping and the name are the parent's. */
    if (map)
        munmap(map, SLAB_LIVE_FILE_SIZE);
    if (fd >= 0)
        close(fd);
    map = NULL;
    fd = -1;
    owner = 0;
    bool was = running || __atomic_load_n(&wanted, __ATOMIC_RELAXED) > 0;
    running = false;
    __atomic_store_n(&busy, 0, __ATOMIC_RELAXED);
    if (was) {
        __atomic_store_n(&wanted, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&start_after_ns, clock_now_ns() + CHILD_DELAY_NS, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&pending, 1, __ATOMIC_RELAXED);
}
