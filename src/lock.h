/*
 * lock.h - the one lock type libslab uses.
 *
 * Hosted builds use a pthread mutex.  Critical sections are short, so
 * where glibc offers it the mutex is adaptive: a contended lock spins
 * briefly before the thread sleeps.  Freestanding builds use the host's
 * lock hooks if it gives them (include/slab/host.h), else a test-and-test-
 * and-set spinlock on C11 atomics.  Either way locks are statically
 * initialisable and are not recursive.
 */
#ifndef SLAB_LOCK_H
#define SLAB_LOCK_H

#include "platform.h"

#if SLAB_HOSTED

typedef pthread_mutex_t slab_lock_t;

#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define SLAB_LOCK_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
static inline void slab_lock_init(slab_lock_t *l)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(l, &a);
    pthread_mutexattr_destroy(&a);
}
#else
#define SLAB_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
static inline void slab_lock_init(slab_lock_t *l) { pthread_mutex_init(l, NULL); }
#endif
static inline void slab_lock(slab_lock_t *l) { pthread_mutex_lock(l); }
static inline void slab_unlock(slab_lock_t *l) { pthread_mutex_unlock(l); }
/* true if the lock was free and is now held */
static inline bool slab_trylock(slab_lock_t *l) { return pthread_mutex_trylock(l) == 0; }
/* Lock, waiting at most until `deadline` (absolute, CLOCK_REALTIME; NULL:
 * as long as it takes); true if the lock is now held. */
static inline bool slab_lock_until(slab_lock_t *l, const struct timespec *deadline)
{
    if (!deadline) {
        pthread_mutex_lock(l);
        return true;
    }
    return pthread_mutex_timedlock(l, deadline) == 0;
}
static inline void slab_lock_fini(slab_lock_t *l) { pthread_mutex_destroy(l); }

#else /* freestanding */

typedef struct {
    unsigned word; /* the spinlock's state, or the host's to use */
} slab_lock_t;
#define SLAB_LOCK_INIT {0}

/* The host's lock hooks, if it gave them (host.c). */
extern void (*slab__host_lock)(unsigned *word, void *ctx);
extern void (*slab__host_unlock)(unsigned *word, void *ctx);
extern bool (*slab__host_trylock)(unsigned *word, void *ctx);
extern void *slab__host_ctx;

static inline bool slab_trylock(slab_lock_t *l)
{
    if (slab__host_trylock)
        return slab__host_trylock(&l->word, slab__host_ctx);
    return __atomic_load_n(&l->word, __ATOMIC_RELAXED) == 0 &&
           !__atomic_exchange_n(&l->word, 1u, __ATOMIC_ACQUIRE);
}

static inline void slab_lock(slab_lock_t *l)
{
    if (slab__host_lock) {
        slab__host_lock(&l->word, slab__host_ctx);
        return;
    }
    while (__atomic_exchange_n(&l->word, 1u, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&l->word, __ATOMIC_RELAXED))
            slab_cpu_relax();
}

static inline void slab_unlock(slab_lock_t *l)
{
    if (slab__host_unlock) {
        slab__host_unlock(&l->word, slab__host_ctx);
        return;
    }
    __atomic_store_n(&l->word, 0u, __ATOMIC_RELEASE);
}

static inline void slab_lock_init(slab_lock_t *l) { l->word = 0; }
static inline void slab_lock_fini(slab_lock_t *l) { (void)l; }
/* No clock to wait by: every freestanding caller passes NULL. */
struct timespec;
static inline bool slab_lock_until(slab_lock_t *l, const struct timespec *deadline)
{
    (void)deadline;
    slab_lock(l);
    return true;
}

#endif

#endif /* SLAB_LOCK_H */
