/*
 * lock.h - the one lock type libslab uses.
 *
 * Hosted builds use a pthread mutex; the type is wrapped so that a
 * freestanding build can substitute the host's lock (or a C11 spinlock)
 * in this one place.  Locks are statically initialisable.  Critical
 * sections are short, so where glibc offers it the mutex is adaptive:
 * a contended lock spins briefly before the thread sleeps.
 */
#ifndef SLAB_LOCK_H
#define SLAB_LOCK_H

#include <pthread.h>
#include <stdbool.h>

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

#endif /* SLAB_LOCK_H */
