/*
 * slab.h - the public interface of libslab, an object-caching allocator.
 *
 * Three layers are visible here:
 *
 *   - object caches: slab_cache_create() makes a cache of equal-sized
 *     objects with an optional constructor and destructor.  Objects come
 *     back from slab_cache_alloc() already constructed, and a freed object
 *     keeps its constructed state until the slab holding it is released
 *     (Bonwick's semantics).  The owning cache of an object is found from
 *     its address alone (slab_owner()), so no header sits before objects.
 *   - the page allocator: a buddy system handing out 2^order pages
 *     (slab_pages_alloc()/slab_pages_free()), aligned to their size.
 *   - the page source: the only boundary to the operating system (or to a
 *     region of memory a kernel owns).  Tests and embedders replace it.
 *
 * Every entry point checks its arguments.  Misuse is reported through the
 * error hook (stderr by default) and returns NULL/-1 with errno set; the
 * heap is never left inconsistent and nothing is lost.
 */
#ifndef SLAB_H
#define SLAB_H

#include <stddef.h>
#include <stdint.h>
#if __STDC_HOSTED__
#include <stdio.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SLAB_API __attribute__((visibility("default")))
#else
#define SLAB_API
#endif

/* ------------------------------------------------------------------ */
/* Geometry                                                             */

#define SLAB_PAGE_SHIFT 12
#define SLAB_PAGE_SIZE ((size_t)1 << SLAB_PAGE_SHIFT)
/* Buddy orders run 0..SLAB_MAX_ORDER; a top-order block is one arena. */
#define SLAB_MAX_ORDER 10
#define SLAB_ARENA_SIZE (SLAB_PAGE_SIZE << SLAB_MAX_ORDER)
/* The largest object a cache can hold with at most 1/8 of a slab wasted. */
#define SLAB_MAX_OBJECT_SIZE (SLAB_ARENA_SIZE / 8)
#define SLAB_CACHE_LINE 64

/* ------------------------------------------------------------------ */
/* Cache flags (values as in Linux, so linux.h can share them)          */

typedef unsigned int slab_flags_t;

#define SLAB_CONSISTENCY_CHECKS 0x00000100U /* F: check metadata on every free */
#define SLAB_RED_ZONE 0x00000400U           /* Z: guard bytes around objects */
#define SLAB_POISON 0x00000800U             /* P: fill free and new objects */
#define SLAB_HWCACHE_ALIGN 0x00002000U      /* align objects to cache lines */
#define SLAB_STORE_USER 0x00010000U         /* U: keep alloc/free call stacks */
#define SLAB_PANIC 0x00040000U              /* abort if creation fails */
#define SLAB_TRACE 0x00200000U              /* T: a line on stderr per alloc/free */
#define SLAB_LEAK_AT_EXIT 0x01000000U       /* L: report live objects at exit */
/* The debug switches; a cache with any of them has no magazines. */
#define SLAB_DEBUG_FLAGS                                                      \
    (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | \
     SLAB_TRACE | SLAB_LEAK_AT_EXIT)

/*
 * Debug mode.  A cache created with debug flags, or named by SLAB_DEBUG
 * in the environment, goes without magazines so that every allocation
 * and free is checked.  What each switch adds:
 *
 *   F  SLAB_CONSISTENCY_CHECKS  the slab's bitmap and counts are checked
 *                               on every free, and the cache's whole
 *                               structure by slab_verify()
 *   Z  SLAB_RED_ZONE            guard bytes before and after each object
 *                               (0xcc while live, 0xbb while free), checked
 *                               on free, on allocation and by slab_verify();
 *                               for the malloc size classes the zone starts
 *                               at the size asked for, not the class size
 *   P  SLAB_POISON              a free object is filled with 0x6b (last
 *                               byte 0xa5) and checked when it is handed out
 *                               again and by slab_verify(); a new object of a
 *                               cache without constructor is filled with
 *                               0x5a, so that reads of memory never written
 *                               show up
 *   U  SLAB_STORE_USER          the call stacks of the last allocation and
 *                               free of each object, printed in reports
 *   T  SLAB_TRACE               one line on stderr per allocation and free
 *   L  SLAB_LEAK_AT_EXIT        live objects reported at exit, grouped by
 *                               allocation call site (with U)
 *
 * Live objects at slab_cache_destroy() are reported for every debug cache
 * (grouped by call site with U).  Errors are reported through the error
 * hook and then abort (SIGABRT) unless options.debug_abort is 0: memory
 * errors (every kind but SLAB_ERR_INVALID_ARG, SLAB_ERR_BUSY and
 * SLAB_ERR_LEAK) in a cache with debug flags, and errors of pointers with
 * no cache while SLAB_DEBUG is set.  slab_verify() never aborts.
 *
 * SLAB_DEBUG, read once at the first call into libslab:
 *
 *   SLAB_DEBUG=BLOCK[;BLOCK...]    BLOCK = LETTERS[,NAME...]
 *
 * LETTERS is any of F Z P U T L (either case); empty or "1" means FZPU,
 * "-" or "0" none.  NAMEs are cache names (kmalloc-64 for the malloc
 * classes); a NAME ending in '*' is a prefix (kmalloc-*).  A block
 * without names applies to every cache no block names; where blocks name
 * the same cache the last one wins.  Examples:
 *
 *   SLAB_DEBUG=1                   FZPU for every cache
 *   SLAB_DEBUG=FZ,conn,kmalloc-64  red zones and checks for two caches
 *   SLAB_DEBUG=ZP;U,conn           Z and P everywhere, U alone for conn
 *
 * Unknown letters and empty names are reported (SLAB_ERR_INVALID_ARG)
 * and skipped; the rest applies.  libslab's own caches are never debugged.
 */

/* ------------------------------------------------------------------ */
/* Object caches                                                        */

typedef struct slab_cache slab_cache_t;

/* A constructor returns 0 on success; non-zero makes the allocation that
 * needed the new slab fail (NULL, errno ENOMEM) with nothing leaked. */
typedef int (*slab_ctor_t)(void *obj, void *arg);
typedef void (*slab_dtor_t)(void *obj, void *arg);

/*
 * Create a cache of objects of `size` bytes aligned to `align` (0 means
 * 8; otherwise a power of two no larger than SLAB_PAGE_SIZE).  `name` is
 * copied (up to SLAB_NAME_MAX-1 bytes).  Returns NULL with errno EINVAL
 * for a NULL name, size 0, size > SLAB_MAX_OBJECT_SIZE, a bad alignment or
 * unknown flags; NULL with ENOMEM if memory for the descriptor is short.
 */
#define SLAB_NAME_MAX 32
SLAB_API slab_cache_t *slab_cache_create(const char *name, size_t size, size_t align,
                                slab_flags_t flags, slab_ctor_t ctor,
                                slab_dtor_t dtor, void *arg);

/* A constructed object, or NULL with errno ENOMEM (EINVAL for a NULL cache). */
SLAB_API void *slab_cache_alloc(slab_cache_t *cache);

/* Return an object to its cache.  NULL is a no-op.  A pointer that is not a
 * live object of `cache` (foreign, interior, already free, or another
 * cache's) is reported and ignored. */
SLAB_API void slab_cache_free(slab_cache_t *cache, void *obj);

/* Allocate n objects into ptrs: n, or 0 with nothing allocated (errno
 * ENOMEM).  Free n objects from ptrs (NULL entries are skipped). */
SLAB_API size_t slab_cache_alloc_bulk(slab_cache_t *cache, size_t n, void **ptrs);
SLAB_API void slab_cache_free_bulk(slab_cache_t *cache, size_t n, void **ptrs);

/* Release every free slab (destructors run, pages go back to the buddy
 * allocator), after emptying the depot's magazines and the calling
 * thread's.  Returns the number of slabs released. */
SLAB_API size_t slab_cache_shrink(slab_cache_t *cache);

/* Destroy an empty cache: 0.  With live objects the cache is left as it
 * was and usable, the error names the cache and the count, and -1 is
 * returned with errno EBUSY.  NULL: -1 with EINVAL. */
SLAB_API int slab_cache_destroy(slab_cache_t *cache);

/* Under memory pressure (the page source failing), libslab calls every
 * cache's reclaim callback, then reaps, before it gives up.  The callback
 * may free objects; it must not create or destroy caches.  fn NULL
 * removes it; a callback that another thread has already picked up may
 * still run once after the removal returns. */
SLAB_API int slab_cache_set_reclaim(slab_cache_t *cache, void (*fn)(void *arg), void *arg);

SLAB_API const char *slab_cache_name(const slab_cache_t *cache);
/* The size the cache was created with (0 for NULL). */
SLAB_API size_t slab_cache_object_size(const slab_cache_t *cache);

/* The cache owning the object at `ptr` (any address inside a slab object
 * area counts), or NULL if the address is not in a slab of libslab. */
SLAB_API slab_cache_t *slab_owner(const void *ptr);

typedef struct slab_cache_stats {
    const char *name;
    size_t object_size;   /* as requested */
    size_t stride;        /* bytes between objects (size rounded to align) */
    size_t align;
    size_t objs_per_slab;
    size_t pages_per_slab;
    size_t colours;       /* distinct first-object offsets slabs cycle through */
    size_t active_objs;   /* handed out to the program now */
    size_t total_objs;    /* in all slabs */
    size_t active_slabs;  /* partial + full */
    size_t total_slabs;   /* partial + full + free */
    size_t partial_slabs, full_slabs, free_slabs;
    uint64_t allocations; /* successful object allocations */
    uint64_t frees;
    size_t high_mark;     /* most objects ever out of the slab layer at
                             once (handed out or cached in magazines) */
    uint64_t grown;       /* slabs created */
    uint64_t reaped;      /* slabs released */
    uint64_t errors;      /* misuses reported against this cache */
    uint64_t ctor_failures;
    /* the magazine layer (zero for a cache without magazines) */
    size_t magazine_size;  /* rounds per magazine now (Linux: limit) */
    size_t batchcount;     /* objects moved per slab-layer refill */
    uint64_t alloc_hit;    /* served by a thread's magazines or the depot */
    uint64_t alloc_miss;   /* needed a refill from the slab layer */
    uint64_t free_hit;     /* taken by a thread's magazines or the depot */
    uint64_t free_miss;    /* had to go straight to the slab layer */
    uint64_t depot_exchanges; /* full magazines moved between a thread and
                                 the depot: taken on alloc, handed in on free */
    size_t depot_full, depot_empty; /* magazines in the depot now */
    size_t magazine_objs;  /* free objects cached in magazines */
    uint64_t depot_overflows; /* full magazines emptied into the slabs
                                 because the depot held its limit */
    size_t depot_objs;     /* free objects in the depot's full magazines
                              (Linux: sharedavail) */
    size_t depot_limit;    /* objects the depot's full magazines may hold;
                              0: no limit or no magazines */
    slab_flags_t flags;    /* as created, with SLAB_DEBUG's switches added */
    int internal;          /* 1 for libslab's own caches (cache descriptors,
                              magazines, huge-mapping descriptors): their
                              objects are not the program's */
} slab_cache_stats_t;

/* The figures of one cache, at one moment: 0, or -1 with errno EINVAL
 * (and a report) for a NULL `out` or a pointer that is not a cache.
 * `name` points into the cache and is valid while the cache exists.
 * active_objs is what the program holds (allocations - frees), exact
 * when no other thread allocates or frees meanwhile; the slab layer also
 * counts the objects cached in magazines (magazine_objs) as out. */
SLAB_API int slab_cache_stats(const slab_cache_t *cache, slab_cache_stats_t *out);

/*
 * Call fn(cache, arg) for every cache, libslab's own included (see
 * slab_cache_stats_t.internal), newest first, until fn returns non-zero.
 * Returns what fn returned last (0 when every cache was visited), or -1
 * with errno EINVAL (and a report) for a NULL fn.
 *
 * fn runs with the cache-list lock held and no other libslab lock: no
 * cache can appear or disappear during the walk, so every pointer passed
 * is a live cache.  Other threads keep allocating and freeing; those that
 * create or destroy a cache wait until the walk ends.  fn may call
 * slab_cache_stats(), slab_buddy_info(), slab_memory_info(), allocate and
 * free (slab_cache_alloc(), slab_malloc(), ...), slab_reap() and
 * slab_verify(), and may start a nested walk.  It must not create or
 * destroy a cache: slab_cache_create() and slab_cache_destroy() called
 * from fn fail with errno EDEADLK and a report, and so the first
 * slab_malloc() of a size class never used before returns NULL (ENOMEM)
 * inside fn.  It must not fork().
 *
 * A callback rather than a filled array: the caller needs no size guess
 * and no memory, and what fn reads is consistent with the list.  The
 * printers below take the same figures into a snapshot first and write
 * with no lock held, so that a slow or failing FILE stalls no allocation.
 */
SLAB_API int slab_cache_foreach(int (*fn)(const slab_cache_t *cache, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* General-purpose allocation (kmalloc)                                 */

/*
 * Requests up to SLAB_KMALLOC_MAX_SIZE are served from size classes, each
 * a cache of its own ("kmalloc-<size>"): 8, 16, then every 16 B to 128 B,
 * then four classes per power of two (160, 192, 224, 256, 320, ...), so
 * that rounding up wastes at most 15 B below 128 B and under 20 % above.
 * A class's objects are aligned to the largest power of two dividing its
 * size (up to a page): power-of-two sizes are naturally aligned.
 * Larger requests take a block of whole pages from the buddy allocator
 * (a run: a power of two of pages, shrunk in place by slab_realloc), and
 * requests above SLAB_HUGE_THRESHOLD map their own memory from the page
 * source and give it back on free.  No header sits before any object:
 * the size is found from the address, so slab_free() needs no size.
 */
#define SLAB_KMALLOC_MAX_SIZE ((size_t)32768)
#define SLAB_HUGE_THRESHOLD (SLAB_ARENA_SIZE / 2)

/* At least `size` bytes aligned to 16 (8 for sizes up to 8), or NULL with
 * errno ENOMEM.  Size 0 gives a unique minimal object, as malloc(0) does
 * in glibc. */
SLAB_API void *slab_malloc(size_t size);
/* n * size zeroed bytes; NULL with ENOMEM when the product overflows. */
SLAB_API void *slab_calloc(size_t n, size_t size);
/* Resize in place when the new size stays in the object's size class or
 * page run, else move.  NULL ptr: slab_malloc(size).  Size 0: free ptr
 * and return NULL (glibc's rule).  On failure ptr is untouched, NULL is
 * returned with ENOMEM; a ptr that is not the start of an allocation
 * (foreign, or inside one) is reported and NULL returned with EINVAL. */
SLAB_API void *slab_realloc(void *ptr, size_t size);
/* `size` bytes aligned to `align`, any power of two (values below 8 mean
 * 8); NULL with EINVAL for any other alignment, ENOMEM when short. */
SLAB_API void *slab_aligned_alloc(size_t align, size_t size);
/* Free memory from any of the calls above; NULL is a no-op.  A pointer
 * libslab never handed out, or one inside a page run or mapping, is
 * reported and ignored.  An object of a cache made with
 * slab_cache_create() goes back to that cache. */
SLAB_API void slab_free(void *ptr);
/* The bytes usable at ptr (the class size, run or mapping length); 0 for
 * NULL, and 0 with a report for a pointer that is not an allocation. */
SLAB_API size_t slab_usable_size(const void *ptr);

/* The size classes: how many, and the size of class `index` (0 beyond). */
SLAB_API size_t slab_size_class_count(void);
SLAB_API size_t slab_size_class(size_t index);
/* The cache that serves requests of `size` bytes (NULL above
 * SLAB_KMALLOC_MAX_SIZE). */
SLAB_API slab_cache_t *slab_kmalloc_cache(size_t size);

/* ------------------------------------------------------------------ */
/* Options and reaping                                                  */

typedef struct slab_options {
    /* Per-thread magazines for caches created from now on (default 1;
     * environment SLAB_MAGAZINES=0 turns them off).  Caches with any of
     * the debug flags never use magazines: every free is checked. */
    int magazines;
    /* Automatic reap period in milliseconds, run from allocation slow
     * paths (default 15000, Bonwick's figure; SLAB_REAP_INTERVAL; 0 = off). */
    unsigned reap_interval_ms;
    /* Bytes of objects a cache's depot may hold in full magazines, for
     * caches created from now on (default 128 KiB; SLAB_DEPOT_BYTES; 0 =
     * no limit, Bonwick's depot, trimmed only by reaping).  A full
     * magazine beyond it is emptied into the slab layer at once. */
    size_t depot_bytes;
    /* Abort after reporting a memory error in a debug cache (default 1;
     * SLAB_DEBUG_ABORT=0 reports and carries on, as slab_verify() does). */
    int debug_abort;
    /* Fault injection (libumem's mtbf): requests for pages (a block from
     * the buddy allocator, a huge mapping) fail as if the page source
     * had.  fault_every = N fails every Nth request, fault_one_in = N
     * each with probability 1/N from a sequence seeded by fault_seed; 0
     * turns each off (the default; SLAB_FAULT_EVERY, SLAB_FAULT_ONE_IN,
     * SLAB_FAULT_SEED).  A failure takes the path a real one takes:
     * reclaim callbacks, a reap and one retry (itself a request), then
     * NULL with ENOMEM.  slab_set_options() starts the count again. */
    unsigned fault_every;
    unsigned fault_one_in;
    uint64_t fault_seed;
    /* Not an option here but read with these, from the environment only:
     * SLAB_STATS=1 writes slab_info_print() and slab_buddyinfo_print()
     * output to stderr when the process exits (exit() or a return from
     * main(), not _exit() or a signal), SLAB_STATS=json the
     * slab_stats_json() output instead; 0 or unset: nothing.  The exit
     * handler is registered at the library's first use, which also
     * keeps a close-on-exec copy of stderr for a program that closes
     * stderr before its exit handlers end (coreutils do).  The report is
     * written with write(2), never calls malloc, and waits at most a
     * second for the cache-list lock (held by slab_cache_foreach()
     * callbacks) before it gives up with a one-line note.
     *
     * Also from the environment only: SLAB_STATS_LIVE=1 publishes the
     * statistics while the process runs, for tools/slabtop (see
     * slab_stats_live()), from the first allocation slow path on;
     * SLAB_STATS_LIVE_MS sets the refresh period (default 500 ms). */
} slab_options_t;

/* The options in force.  The environment is read once, at first use. */
SLAB_API void slab_get_options(slab_options_t *out);
/* Replace the options: 0, or -1 with errno EINVAL for NULL. */
SLAB_API int slab_set_options(const slab_options_t *opts);

/* Give memory back: depot magazines unused for a whole interval (their
 * working set), free slabs of idle caches and beyond each cache's keep
 * limit, and every dirty free buddy block (decommitted).
 * Returns the number of magazines and slabs released. */
SLAB_API size_t slab_reap(void);

/* ------------------------------------------------------------------ */
/* Page allocator (buddy system)                                        */

/* 2^order pages aligned to their size, or NULL with errno (EINVAL for an
 * order above SLAB_MAX_ORDER, ENOMEM when the page source fails). */
SLAB_API void *slab_pages_alloc(unsigned order);
/* Free a block from slab_pages_alloc(); a wrong pointer or order is
 * reported and ignored. */
SLAB_API void slab_pages_free(void *ptr, unsigned order);

typedef struct slab_buddy_info {
    size_t nr_free[SLAB_MAX_ORDER + 1]; /* free blocks per order (buddyinfo) */
    size_t arenas;                      /* arenas mapped */
    size_t free_pages;                  /* pages free in the buddy allocator */
    size_t total_pages;                 /* pages in all arenas */
    size_t mapped_bytes;                /* bytes held from the page source */
} slab_buddy_info_t;

SLAB_API void slab_buddy_info(slab_buddy_info_t *out);

/* ------------------------------------------------------------------ */
/* Memory and statistics of the whole process                           */

/*
 * Where libslab's memory is, at one moment (figures taken one after the
 * other, each under its own lock: exact when the program is quiet).
 * Every figure is libslab's own count; none comes from the kernel.
 */
typedef struct slab_memory_info {
    /* held from the page source: arena_bytes + metadata_bytes + huge_bytes */
    size_t mapped_bytes;
    size_t arena_bytes;      /* arenas * SLAB_ARENA_SIZE */
    size_t metadata_bytes;   /* page-descriptor mappings and the address map */
    size_t huge_bytes;       /* mappings of allocations above SLAB_HUGE_THRESHOLD */
    size_t huge_mappings;
    /* An upper bound on what of mapped_bytes is resident: all of it but
     * the free pages decommitted or never used (clean), and the part of
     * each descriptor mapping no descriptor occupies.  Pages handed out
     * but never written (the tail of a page run, a huge mapping) count
     * though the kernel may not back them yet.  The process as a whole
     * is in /proc/self/statm. */
    size_t resident_bytes;
    size_t free_bytes;       /* in free buddy blocks */
    size_t free_dirty_bytes; /* of those, not decommitted (still resident) */
    /* handed to the program: object_bytes + run_bytes + pages_bytes + huge_bytes */
    size_t in_use_bytes;
    size_t object_bytes;     /* active_objs * object_size over the caches
                                that are not internal */
    size_t run_bytes;        /* slab_malloc's page runs (their usable size) */
    size_t pages_bytes;      /* blocks from slab_pages_alloc() */
    size_t slab_bytes;       /* pages held by the slabs of all caches */
    size_t nr_free[SLAB_MAX_ORDER + 1]; /* free blocks per order */
} slab_memory_info_t;

/* Fill *out: 0, or -1 with errno EINVAL (and a report) for NULL. */
SLAB_API int slab_memory_info(slab_memory_info_t *out);

/*
 * Linux's /proc/slabinfo, version 2.1, for every cache (newest first),
 * so that tools written for it parse it: the line
 * "slabinfo - version: 2.1", the "# name ..." column line, then per
 * cache, in Linux's format,
 *
 *   name active_objs num_objs objsize objperslab pagesperslab
 *     : tunables limit batchcount sharedfactor
 *     : slabdata active_slabs num_slabs sharedavail
 *
 * from slab_cache_stats_t: active_objs, total_objs, stride (the bytes an
 * object takes, as Linux prints its size with padding), objs_per_slab,
 * pages_per_slab; magazine_size, batchcount, depot_limit / batchcount
 * (the depot holds that many batches, as Linux's shared array does;
 * 0 without magazines or limit); active_slabs, total_slabs, depot_objs.
 * A name prints with blanks and control characters as '_' (an empty one
 * as '-'), so that a line splits into fields at blanks.
 *
 * The figures are taken a few caches at a time into a buffer on the
 * stack and written with no libslab lock held.  Returns 0, or -1 with
 * errno from the stream (EIO if it set none); NULL f: -1, EINVAL and a
 * report.  The stream is flushed.
 */
#if __STDC_HOSTED__
SLAB_API int slab_info_print(FILE *f);
#endif

/* slab_info_print()'s lines, then slab_buddyinfo_print()'s, handed to
 * fn a buffer at a time (text is not NUL-terminated): for a kernel's own
 * /proc/slabinfo or console.  Returns 0; NULL fn: -1, EINVAL, a report. */
SLAB_API int slab_info_write(void (*fn)(const char *text, size_t len, void *arg), void *arg);

/* One line like /proc/buddyinfo: "Node 0, zone  libslab" and the free
 * block count of each order 0..SLAB_MAX_ORDER, in Linux's columns
 * ("Node %d, zone %8s " then "%6lu " per order).  Returns as
 * slab_info_print(). */
#if __STDC_HOSTED__
SLAB_API int slab_buddyinfo_print(FILE *f);
#endif

/*
 * The same figures as one JSON object, on one line and a newline:
 *   {"version":1,
 *    "caches":[{"name":..., every field of slab_cache_stats_t by its
 *               name, "internal" as true/false}, ...],
 *    "buddy":{"nr_free":[...], "arenas", "free_pages", "total_pages",
 *             "mapped_bytes"},
 *    "memory":{every field of slab_memory_info_t by its name}}
 * Numbers are unsigned integers.  Names are escaped: '"', '\\' and
 * control characters as JSON requires, and bytes above 0x7f as \u00XX
 * (one escape per byte, so the text is ASCII and valid whatever the
 * name held).  Returns as slab_info_print().
 */
#if __STDC_HOSTED__
SLAB_API int slab_stats_json(FILE *f);
#endif

/*
 * Publish the statistics while the process runs (on = 1), or stop and
 * remove them (on = 0), for `slabtop -p PID` (tools/slabtop.c) or any
 * reader of the layout in src/live_format.h.  The process creates the
 * POSIX shared-memory object "/libslab.<pid>" (/dev/shm/libslab.<pid>),
 * mode 0600, holding a header (magic, layout version, pid, uid, update
 * sequence and time, the slab_memory_info_t figures, free buddy blocks
 * per order) and a record per cache (up to 512; the header counts those
 * left out) with the slab_cache_stats_t figures slabtop shows.  A thread
 * of libslab's updates it every SLAB_STATS_LIVE_MS (500 ms) under a
 * sequence lock: readers copy consistent snapshots without stopping the
 * program.  The object is removed by slab_stats_live(0) and at exit
 * (exit() or a return from main(); _exit(), a fatal signal or exec leave
 * it behind).  A child of fork() never touches its parent's object; it
 * publishes its own, under its own pid, once it has run for a second.
 *
 * Returns 0 (also when already on, or already off), or -1 with errno:
 * EINVAL (and a report) for `on` other than 0 and 1; from shm_open(),
 * ftruncate(), mmap() or pthread_create() when publishing cannot start.
 * Not to be called from a slab_cache_foreach() callback.
 * SLAB_STATS_LIVE=1 in the environment does slab_stats_live(1) at the
 * first allocation slow path (a failure is one line on stderr).
 */
SLAB_API int slab_stats_live(int on);

/* ------------------------------------------------------------------ */
/* Page source                                                          */

typedef struct slab_page_source {
    /* Map `size` bytes (a multiple of the page size) aligned to `align`
     * (a power of two >= page size), readable, writable and zeroed.
     * NULL on failure. */
    void *(*map)(void *ctx, size_t size, size_t align);
    /* Give a whole mapping from map() back. */
    void (*unmap)(void *ctx, void *addr, size_t size);
    /* The contents of [addr, addr+size) are no longer needed; the range
     * stays mapped and reads back as zero or old data.  May be NULL. */
    void (*decommit)(void *ctx, void *addr, size_t size);
    void *ctx;
} slab_page_source_t;

/* The mmap/madvise source used unless another is set. */
SLAB_API const slab_page_source_t *slab_default_page_source(void);
/* Use `src` (copied) for new mappings; NULL restores the default.  Memory
 * already mapped goes back to the source it came from. */
SLAB_API void slab_set_page_source(const slab_page_source_t *src);

/*
 * Give libslab a region of memory it owns from now on: a kernel's or a
 * firmware's RAM (the freestanding build's only memory, unless a page
 * source is set), or any program's static array.  The region is cut at
 * page boundaries and at SLAB_ARENA_SIZE windows; each window's part
 * keeps its page descriptors in itself (about 68 KiB, at a 128 KiB
 * boundary) and gives the rest to the page allocator.  A part too small
 * for that, or a window that already holds libslab memory (an earlier
 * region, or an arena of the page source), is not added and is reported.
 * Regions are never given back.  Returns the bytes of pages added; 0 with
 * errno EINVAL (bad or too small a region), EEXIST (window in use) or
 * ENOMEM (no room left to map it) when none were.
 */
SLAB_API size_t slab_add_region(void *base, size_t len);

/* ------------------------------------------------------------------ */
/* Errors and checking                                                  */

typedef enum slab_error_kind {
    SLAB_ERR_INVALID_ARG = 1, /* bad argument to an API call */
    SLAB_ERR_BUSY,            /* destroy of a cache with live objects */
    SLAB_ERR_FOREIGN,         /* pointer not from libslab */
    SLAB_ERR_INTERIOR,        /* pointer inside, not at the start of, an object */
    SLAB_ERR_DOUBLE_FREE,     /* object already free */
    SLAB_ERR_WRONG_CACHE,     /* object belongs to another cache */
    SLAB_ERR_BAD_PAGES,       /* slab_pages_free() of a wrong block/order */
    SLAB_ERR_CORRUPT,         /* inconsistent metadata (slab_verify(), F) */
    SLAB_ERR_REDZONE,         /* a red zone was overwritten (Z) */
    SLAB_ERR_POISON,          /* a free object was written to (P) */
    SLAB_ERR_LEAK,            /* objects live at destroy or exit */
} slab_error_kind_t;

/* A call stack kept for an object (SLAB_STORE_USER): innermost first,
 * starting at the caller of libslab. */
#define SLAB_STACK_DEPTH 12
typedef struct slab_stack {
    unsigned depth;
    void *pc[SLAB_STACK_DEPTH];
    unsigned long thread;   /* the kernel's thread id */
    uint64_t when_ms;       /* milliseconds since the first stack kept */
} slab_stack_t;

typedef struct slab_error {
    slab_error_kind_t kind;
    const char *function;   /* API entry that found it */
    const char *cache;      /* cache involved, or NULL */
    const char *owner;      /* for SLAB_ERR_WRONG_CACHE: the owning cache */
    const void *ptr;        /* address involved, or NULL */
    size_t count;           /* SLAB_ERR_BUSY, SLAB_ERR_LEAK: live objects */
    const char *message;    /* the whole report as one line */
    /* debug caches: the object the error is about, the offset of the
     * damage from the object's start (negative: in the red zone before
     * it), and its last allocation and free (with U; NULL otherwise or
     * when it has none).  Valid during the hook call only. */
    const void *object;
    long offset;
    const slab_stack_t *alloc;
    const slab_stack_t *free;
} slab_error_t;

typedef void (*slab_error_hook_t)(const slab_error_t *err, void *arg);

/* Route reports to `hook` (NULL: print to stderr, the default). */
SLAB_API void slab_set_error_hook(slab_error_hook_t hook, void *arg);

SLAB_API const char *slab_error_kind_name(slab_error_kind_t kind);

/* Walk every cache, slab and buddy free list and check their invariants;
 * in debug caches also every object's red zones (Z) and every free
 * object's poison (P).  Returns the number of problems found (each is
 * reported; none aborts). */
SLAB_API size_t slab_verify(void);

#ifdef __cplusplus
}
#endif
#endif /* SLAB_H */
