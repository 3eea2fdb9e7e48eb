/*
 * <slab/host.h> - what a kernel or firmware gives the freestanding build.
 *
 * Built with -DSLAB_FREESTANDING=ON, libslab uses no C library: it takes
 * its memory from slab_add_region() (<slab.h>) and everything else from
 * the hooks below, all optional.  Call slab_set_host() before any other
 * libslab function, then slab_add_region(), then use the caches and
 * kmalloc of <slab.h> or <slab/linux.h> as in a hosted program.
 *
 * Contract for a machine with more than one CPU: give cpu(); each CPU
 * runs one libslab call at a time (call libslab with preemption off, and
 * not from an interrupt handler that may interrupt libslab on the same
 * CPU), since each CPU's magazines are taken without a lock.
 */
#ifndef SLAB_HOST_H
#define SLAB_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <slab.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most CPUs cpu() may name: 0 .. SLAB_MAX_CPUS - 1. */
#ifndef SLAB_MAX_CPUS
#define SLAB_MAX_CPUS 16
#endif

typedef struct slab_host {
    /* libslab's locks.  `word` is the lock's storage, an unsigned that is
     * 0 when the lock is new, the host's to use as it likes (its own
     * spinlock, an index into a table of its locks...).  All three or
     * none: none means a spinlock on C11 atomics.  trylock returns true
     * if it took the lock. */
    void (*lock)(unsigned *word, void *ctx);
    void (*unlock)(unsigned *word, void *ctx);
    bool (*trylock)(unsigned *word, void *ctx);
    /* The CPU running the call, below SLAB_MAX_CPUS.  NULL: one CPU. */
    unsigned (*cpu)(void *ctx);
    /* A line of a report (misuse, corruption, leaks), with its newline.
     * NULL: reports are dropped (slab_set_error_hook() still sees them). */
    void (*report)(const char *line, void *ctx);
    /* Stop: a debug cache found corruption and options.debug_abort is set.
     * Must not return.  NULL: a trap instruction. */
    void (*panic)(const char *why, void *ctx);
    /* A monotonic clock in nanoseconds, for reaping idle memory every
     * options.reap_interval_ms and for the age of free pages.  NULL: no
     * timed reaping (slab_reap() still works when called). */
    uint64_t (*clock_ns)(void *ctx);
    void *ctx;
} slab_host_t;

/* Install the hooks (copied).  Returns 0; -1 with errno EINVAL (and a
 * report) if lock, unlock and trylock are not all given or all NULL, or
 * EBUSY if hooks were installed already. */
SLAB_API int slab_set_host(const slab_host_t *host);

/* The freestanding build's errno: the error of the last call that failed
 * on this CPU. */
SLAB_API int *slab_errno_location(void);
#define slab_errno (*slab_errno_location())

#ifdef __cplusplus
}
#endif

#endif /* SLAB_HOST_H */
