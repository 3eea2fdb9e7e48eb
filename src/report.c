/*
 * report.c - how libslab tells the program that something is wrong.
 *
 * Every misuse or inconsistency becomes one slab_error_t with a one-line
 * message naming the API call, the cache and the address.  It goes to the
 * program's hook if one is set, else to stderr (freestanding: the host's
 * report hook) as
 *     libslab: <call>: <message>
 * followed, for an error about an object of a debug cache, by lines
 * giving the object, the offset and the stacks of its last allocation
 * and free.  Reports may be made with internal locks held (slab_verify),
 * so a hook must not call back into libslab.  Reporting never allocates.
 *
 * Then the abort policy: a memory error (any kind but a bad argument, a
 * busy cache or a leak) about a debug cache, or about a pointer of no
 * cache while SLAB_DEBUG is set, aborts the process once reported, unless
 * options.debug_abort is 0 or the report comes from slab_verify().
 */
#include "internal.h"

#if SLAB_HOSTED
#include <execinfo.h>
#include <unistd.h>
#endif

struct hook {
    slab_error_hook_t fn;
    void *arg;
};

static slab_lock_t hook_lock = SLAB_LOCK_INIT;
SLAB_LOCAL_DEFINE(bool, report_no_abort);
static struct hook hook;

void slab_set_error_hook(slab_error_hook_t fn, void *arg)
{
    slab_lock(&hook_lock);
    hook.fn = fn;
    hook.arg = arg;
    slab_unlock(&hook_lock);
}

const char *slab_error_kind_name(slab_error_kind_t kind)
{
    switch (kind) {
    case SLAB_ERR_INVALID_ARG: return "invalid argument";
    case SLAB_ERR_BUSY: return "cache busy";
    case SLAB_ERR_FOREIGN: return "foreign pointer";
    case SLAB_ERR_INTERIOR: return "interior pointer";
    case SLAB_ERR_DOUBLE_FREE: return "double free";
    case SLAB_ERR_WRONG_CACHE: return "wrong cache";
    case SLAB_ERR_BAD_PAGES: return "bad page free";
    case SLAB_ERR_CORRUPT: return "corrupt metadata";
    case SLAB_ERR_REDZONE: return "red zone overwritten";
    case SLAB_ERR_POISON: return "write after free";
    case SLAB_ERR_LEAK: return "leak";
    }
    return "unknown error";
}

void report_line(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = slab_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
#if SLAB_HOSTED
    (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
#else
    host_report(line);
#endif
}

static void put_stack(const char *what, const slab_stack_t *st)
{
    if (!st)
        return;
    report_line("    last %s by thread %lu at %llu ms:\n", what, st->thread,
        (unsigned long long)st->when_ms);
#if SLAB_HOSTED
    /* backtrace_symbols_fd() writes without allocating */
    backtrace_symbols_fd(st->pc, (int)st->depth, STDERR_FILENO);
#else
    for (unsigned i = 0; i < st->depth; i++)
        report_line("      %p\n", st->pc[i]);
#endif
}

void slab_report(const slab_error_t *err)
{
    slab_lock(&hook_lock);
    struct hook h = hook;
    slab_unlock(&hook_lock);
    if (h.fn) {
        h.fn(err, h.arg);
        return;
    }
    report_line("libslab: %s: %s\n", err->function, err->message);
    if (err->object)
        report_line("    object %p, offset %ld\n", err->object, err->offset);
    put_stack("allocated", err->alloc);
    put_stack("freed", err->free);
}

static bool must_abort(slab_error_kind_t kind, const struct slab_cache *cache,
                       const struct slab_cache *owner)
{
    if (kind == SLAB_ERR_INVALID_ARG || kind == SLAB_ERR_BUSY || kind == SLAB_ERR_LEAK ||
        SLAB_LOCAL(report_no_abort) || !options_debug_abort())
        return false;
    if (!cache && !owner)
        return debug_env_active();
    return (cache && (cache->flags & SLAB_DEBUG_FLAGS)) ||
           (owner && (owner->flags & SLAB_DEBUG_FLAGS));
}

static void report_v(slab_error_kind_t kind, const char *function, const struct slab_cache *cache,
                     const struct slab_cache *owner, const void *ptr, size_t count,
                     const struct obj_error *e, const char *fmt, va_list ap)
{
    char msg[384];
    int n = 0;
    if (cache)
        n = slab_format(msg, sizeof msg, "cache '%s': ", cache->name);
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1;
    slab_vformat(msg + n, sizeof msg - (size_t)n, fmt, ap);
    slab_error_t err = {
        .kind = kind,
        .function = function,
        .cache = cache ? cache->name : NULL,
        .owner = owner ? owner->name : NULL,
        .ptr = ptr,
        .count = count,
        .message = msg,
    };
    if (e) {
        err.object = e->object;
        err.offset = e->offset;
        err.alloc = e->has_alloc ? &e->alloc : NULL;
        err.free = e->has_free ? &e->free : NULL;
    }
    slab_report(&err);
    if (must_abort(kind, cache, owner))
        abort();
}

void slab_reportf(slab_error_kind_t kind, const char *function,
                  const struct slab_cache *cache, const struct slab_cache *owner,
                  const void *ptr, size_t count, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(kind, function, cache, owner, ptr, count, NULL, fmt, ap);
    va_end(ap);
}

void report_object(const char *function, const struct slab_cache *c, const struct obj_error *e,
                   size_t count, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(e->kind, function, c, e->owner, e->ptr, count, e, fmt, ap);
    va_end(ap);
}

void report_fork_prepare(void) { slab_lock(&hook_lock); }
void report_fork_parent(void) { slab_unlock(&hook_lock); }
