/*
 * options.c - the one place options come from.
 *
 * Defaults, overridden by the environment (read once, at first use; a
 * freestanding build has none), then by slab_set_options().  Readers take a snapshot; options apply to what
 * happens after they change (magazines: caches created later).
 * SLAB_STATS (the exit report), SLAB_STATS_LIVE and SLAB_STATS_LIVE_MS (the
 * statistics published for slabtop, live.c) are read here with the rest
 * but only from the environment: they are fixed for the life of the
 * process (slab_stats_live() starts and stops publishing at any time).
 */
#include "internal.h"


static slab_options_t opts = {
    .magazines = 1,
    .reap_interval_ms = 15000,
    .depot_bytes = (size_t)128 << 10,
    .debug_abort = 1,
};
static int stats_mode = STATS_OFF;
static int stats_live;
static unsigned stats_live_ms = 500;
static slab_once_t env_once = SLAB_ONCE_INIT;
/* The fault options change together (fault.c restarts its sequence). */
static slab_lock_t fault_lock = SLAB_LOCK_INIT;

#if SLAB_HOSTED
/* A decimal number up to max from the environment; anything else is
 * reported and ignored. */
static bool env_number(const char *name, unsigned long long max, unsigned long long *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max || *v == '-') {
        slab_reportf(SLAB_ERR_INVALID_ARG, "environment", NULL, NULL, NULL, 0,
                     "%s=%s is not a number; ignored", name, v);
        return false;
    }
    *out = x;
    return true;
}

static bool env_uint(const char *name, unsigned long long *out)
{
    return env_number(name, 0xffffffffULL, out);
}

static void read_env(void)
{
    unsigned long long x;
    if (env_uint("SLAB_MAGAZINES", &x))
        opts.magazines = x != 0;
    if (env_uint("SLAB_REAP_INTERVAL", &x))
        opts.reap_interval_ms = (unsigned)x;
    if (env_number("SLAB_DEPOT_BYTES", SIZE_MAX, &x))
        opts.depot_bytes = x;
    if (env_uint("SLAB_DEBUG_ABORT", &x))
        opts.debug_abort = x != 0;
    if (env_uint("SLAB_FAULT_EVERY", &x))
        opts.fault_every = (unsigned)x;
    if (env_uint("SLAB_FAULT_ONE_IN", &x))
        opts.fault_one_in = (unsigned)x;
    if (env_number("SLAB_FAULT_SEED", UINT64_MAX, &x))
        opts.fault_seed = x;
    if (env_uint("SLAB_STATS_LIVE", &x))
        stats_live = x != 0;
    if (env_uint("SLAB_STATS_LIVE_MS", &x)) {
        if (x == 0)
            slab_reportf(SLAB_ERR_INVALID_ARG, "environment", NULL, NULL, NULL, 0,
                         "SLAB_STATS_LIVE_MS=0 is not a period; ignored");
        else
            stats_live_ms = (unsigned)x;
    }
    debug_parse(getenv("SLAB_DEBUG"));
    const char *v = getenv("SLAB_STATS");
    if (v && *v) {
        if (strcmp(v, "json") == 0)
            stats_mode = STATS_JSON;
        else if (env_uint("SLAB_STATS", &x))
            stats_mode = x ? STATS_TEXT : STATS_OFF;
    }
}
#else
/* No environment: options come from slab_set_options() alone. */
static void read_env(void) {}
#endif

static void boot(void)
{
    slab_once(&env_once, read_env);
}

bool options_magazines(void)
{
    boot();
    return __atomic_load_n(&opts.magazines, __ATOMIC_RELAXED);
}

unsigned options_reap_interval_ms(void)
{
    boot();
    return __atomic_load_n(&opts.reap_interval_ms, __ATOMIC_RELAXED);
}

size_t options_depot_bytes(void)
{
    boot();
    return __atomic_load_n(&opts.depot_bytes, __ATOMIC_RELAXED);
}

bool options_debug_abort(void)
{
    boot();
    return __atomic_load_n(&opts.debug_abort, __ATOMIC_RELAXED);
}

void options_fault(unsigned *every, unsigned *one_in, uint64_t *seed)
{
    boot();
    slab_lock(&fault_lock);
    *every = opts.fault_every;
    *one_in = opts.fault_one_in;
    *seed = opts.fault_seed;
    slab_unlock(&fault_lock);
}

int options_stats(void)
{
    boot();
    return stats_mode;
}

int options_stats_live(void)
{
    boot();
    return stats_live;
}

unsigned options_stats_live_ms(void)
{
    boot();
    return stats_live_ms;
}

void slab_get_options(slab_options_t *out)
{
    if (!out)
        return;
    out->magazines = options_magazines();
    out->reap_interval_ms = options_reap_interval_ms();
    out->depot_bytes = options_depot_bytes();
    out->debug_abort = options_debug_abort();
    options_fault(&out->fault_every, &out->fault_one_in, &out->fault_seed);
}

int slab_set_options(const slab_options_t *o)
{
    if (!o) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0, "NULL options");
        errno = EINVAL;
        return -1;
    }
    boot();
    __atomic_store_n(&opts.magazines, o->magazines != 0, __ATOMIC_RELAXED);
    __atomic_store_n(&opts.reap_interval_ms, o->reap_interval_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&opts.depot_bytes, o->depot_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&opts.debug_abort, o->debug_abort != 0, __ATOMIC_RELAXED);
    slab_lock(&fault_lock);
    opts.fault_every = o->fault_every;
    opts.fault_one_in = o->fault_one_in;
    opts.fault_seed = o->fault_seed;
    slab_unlock(&fault_lock);
    fault_reset();
    return 0;
}
