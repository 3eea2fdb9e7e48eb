/*
 * fault.c - fault injection: requests for pages that fail on purpose.
 *
 * With options.fault_every = N, every Nth request for pages (a block from
 * the buddy allocator, or a huge mapping) fails as if the page source had
 * run dry; with fault_one_in = N each fails with probability 1/N, drawn
 * from a splitmix64 sequence seeded by fault_seed, so that a failing run
 * can be repeated.  The caller cannot tell an injected failure from a
 * real one: it runs the reclaim callbacks, reaps and retries once (the
 * retry is a request too), then returns NULL with ENOMEM.  Tests use it
 * to show that running out of memory at any point loses nothing.
 *
 * Off (the default), fault_inject() is one relaxed load.  The count and
 * the sequence start again whenever slab_set_options() is called.
 */
#include "internal.h"

static slab_lock_t fault_lock = SLAB_LOCK_INIT;
/* -1 until the options are first read, then 0 (off) or 1 (armed). */
static int armed = -1;
static unsigned every, one_in;
static uint64_t count, state;

void fault_reset(void)
{
    unsigned e, o;
    uint64_t seed;
    options_fault(&e, &o, &seed);
    slab_lock(&fault_lock);
    every = e;
    one_in = o;
    state = seed;
    count = 0;
    __atomic_store_n(&armed, e || o, __ATOMIC_RELAXED);
    slab_unlock(&fault_lock);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

bool fault_inject(void)
{
    int a = __atomic_load_n(&armed, __ATOMIC_RELAXED);
    if (likely(a == 0))
        return false;
    if (a < 0)
        fault_reset();
    slab_lock(&fault_lock);
    bool fail = false;
    count++;
    if (every && count % every == 0)
        fail = true;
    if (one_in && splitmix64(&state) % one_in == 0)
        fail = true;
    slab_unlock(&fault_lock);
    return fail;
}
