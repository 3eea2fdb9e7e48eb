/*
 * host.c - the freestanding build's environment: the host's hooks
 * (<slab/host.h>) and what the C library gives a hosted build.
 *
 * The hooks are set once, before libslab is used, and never change: they
 * are read without a lock.  A CPU number out of range stops the system
 * (panic): per-CPU state indexed by it would be someone else's.
 */
#include "internal.h"

#include <slab/host.h>

_Static_assert(SLAB_MAX_CPUS >= 1, "SLAB_MAX_CPUS");

static int errnos[SLAB_MAX_CPUS];

int *slab_errno_location(void) { return &errnos[slab__cpu()]; }

void (*slab__host_lock)(unsigned *word, void *ctx);
void (*slab__host_unlock)(unsigned *word, void *ctx);
bool (*slab__host_trylock)(unsigned *word, void *ctx);
void *slab__host_ctx;

static slab_host_t host;
static unsigned host_set;

int slab_set_host(const slab_host_t *h)
{
    if (!h || !h->lock != !h->unlock || !h->lock != !h->trylock) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, h, 0,
                     "%s; hooks not installed",
                     h ? "lock, unlock and trylock go together" : "NULL hooks");
        errno = EINVAL;
        return -1;
    }
    if (__atomic_exchange_n(&host_set, 1u, __ATOMIC_ACQ_REL)) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, h, 0,
                     "hooks are installed already; not changed");
        errno = EBUSY;
        return -1;
    }
    host = *h;
    slab__host_ctx = h->ctx;
    slab__host_trylock = h->trylock;
    slab__host_unlock = h->unlock;
    __atomic_store_n(&slab__host_lock, h->lock, __ATOMIC_RELEASE);
    return 0;
}

unsigned slab__cpu(void)
{
    if (!host.cpu)
        return 0;
    unsigned cpu = host.cpu(host.ctx);
    if (cpu >= SLAB_MAX_CPUS)
        slab__panic("libslab: cpu() is above SLAB_MAX_CPUS");
    return cpu;
}

void host_report(const char *line)
{
    if (host.report)
        host.report(line, host.ctx);
}

uint64_t host_clock_ns(void)
{
    return host.clock_ns ? host.clock_ns(host.ctx) : 0;
}

_Noreturn void slab__panic(const char *why)
{
    if (host.panic)
        host.panic(why, host.ctx);
    for (;;)
        __builtin_trap();
}

/* ---- what the hosted build has from the C library ---- */

int slab_stats_live(int on)
{
    if (on != 0 && on != 1) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, (size_t)on,
                     "on must be 0 or 1, not %d", on);
        errno = EINVAL;
        return -1;
    }
    if (on) {
        errno = ENOSYS; /* no shared memory to publish in */
        return -1;
    }
    return 0;
}
