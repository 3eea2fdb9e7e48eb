/*
 * lock.h - the one lock type libslab uses.
 *
 * Hosted builds use a pthread mutex; the type is wrapped so that a
 * freestanding build can substitute the host's lock (or a C11 spinlock)
 * in this one place.  Locks are statically initialisable.
 */
#ifndef SLAB_LOCK_H
#define SLAB_LOCK_H

#include <pthread.h>

typedef pthread_mutex_t slab_lock_t;

#define SLAB_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static inline void slab_lock_init(slab_lock_t *l) { pthread_mutex_init(l, NULL); }
static inline void slab_lock(slab_lock_t *l) { pthread_mutex_lock(l); }
static inline void slab_unlock(slab_lock_t *l) { pthread_mutex_unlock(l); }
static inline void slab_lock_fini(slab_lock_t *l) { pthread_mutex_destroy(l); }

#endif /* SLAB_LOCK_H */
