/*
 * platform.h - what libslab takes from its environment, in one place.
 *
 * Hosted (the default), that is the C library: errno, the string
 * functions, pthread_once and thread-local storage.  Freestanding
 * (SLAB_FREESTANDING, for kernels and firmware), libslab includes only
 * the compiler's own headers (stddef, stdint, stdbool, stdarg,
 * stdatomic) and references no symbol but memcpy, memmove, memset and
 * memcmp, which every freestanding C environment provides; all else
 * comes from the host's hooks (include/slab/host.h, src/host.c):
 *
 *   errno              slab_errno, one per CPU (host.c)
 *   string functions   the few libslab needs, below
 *   once               a C11 atomic state word, below
 *   thread-local data  one copy per CPU, chosen by the host's cpu()
 *                      hook (one copy in all if it gives none)
 *   clock              the host's clock hook, or none (no timed reaping)
 *
 * Nothing here may allocate or report: every other file builds on it.
 */
#ifndef SLAB_PLATFORM_H
#define SLAB_PLATFORM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SLAB_FREESTANDING

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLAB_HOSTED 1

/* Thread-local data: declare with SLAB_LOCAL_DECLARE / _DEFINE, reach the
 * calling thread's copy with SLAB_LOCAL(name). */
#define SLAB_LOCAL_DEFINE(type, name)                                         \
    __thread type name __attribute__((tls_model("initial-exec")))
#define SLAB_LOCAL_DECLARE(type, name)                                        \
    extern __thread type name __attribute__((tls_model("initial-exec")))
#define SLAB_LOCAL(name) (name)

typedef pthread_once_t slab_once_t;
#define SLAB_ONCE_INIT PTHREAD_ONCE_INIT
static inline void slab_once(slab_once_t *once, void (*fn)(void)) { pthread_once(once, fn); }

#else /* SLAB_FREESTANDING */

#define SLAB_HOSTED 0

/* The error numbers libslab sets, with Linux's values. */
#define ENOENT 2
#define ENOMEM 12
#define EBUSY 16
#define EEXIST 17
#define EDEADLK 35
#define EINVAL 22
#define ENOSYS 38
#define EOVERFLOW 75
#define ETIMEDOUT 110
int *slab_errno_location(void); /* this CPU's (host.c) */
#define errno (*slab_errno_location())

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

static inline size_t slab_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline int slab_strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            break;
    }
    return 0;
}

static inline int slab_strcmp(const char *a, const char *b)
{
    return slab_strncmp(a, b, SIZE_MAX);
}

/* The length of s's first span of characters not in reject. */
static inline size_t slab_strcspn(const char *s, const char *reject)
{
    size_t n = 0;
    for (; s[n]; n++)
        for (const char *r = reject; *r; r++)
            if (s[n] == *r)
                return n;
    return n;
}

/* strncpy's contract: n bytes written, padded with NULs. */
static inline char *slab_strncpy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i < n && src[i]; i++)
        dst[i] = src[i];
    for (; i < n; i++)
        dst[i] = '\0';
    return dst;
}

#define strncpy slab_strncpy
#define strlen slab_strlen
#define strcmp slab_strcmp
#define strncmp slab_strncmp
#define strcspn slab_strcspn

/* CPU-local data: one copy per CPU of the host's cpu() hook. */
#include <slab/host.h> /* SLAB_MAX_CPUS */
unsigned slab__cpu(void);
#define SLAB_LOCAL_DEFINE(type, name) type name[SLAB_MAX_CPUS]
#define SLAB_LOCAL_DECLARE(type, name) extern type name[SLAB_MAX_CPUS]
#define SLAB_LOCAL(name) (name[slab__cpu()])

static inline void slab_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* 0: never run; 1: running; 2: done. */
typedef unsigned slab_once_t;
#define SLAB_ONCE_INIT 0u
static inline void slab_once(slab_once_t *once, void (*fn)(void))
{
    if (__atomic_load_n(once, __ATOMIC_ACQUIRE) == 2)
        return;
    unsigned never = 0;
    if (__atomic_compare_exchange_n(once, &never, 1, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_ACQUIRE)) {
        fn();
        __atomic_store_n(once, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(once, __ATOMIC_ACQUIRE) != 2)
        slab_cpu_relax();
}

/* Stop the system: the host's panic hook, which must not return. */
_Noreturn void slab__panic(const char *why);
#define abort() slab__panic("libslab: abort")

#endif /* SLAB_FREESTANDING */

#endif /* SLAB_PLATFORM_H */
