/*
 * report.c - how libslab tells the program that something is wrong.
 *
 * Every misuse or inconsistency becomes one slab_error_t with a one-line
 * message naming the API call, the cache and the address.  It goes to the
 * program's hook if one is set, else to stderr as
 *     libslab: <call>: <message>
 * Reports may be made with internal locks held (slab_verify), so a hook
 * must not call back into libslab.  Reporting never allocates.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

struct hook {
    slab_error_hook_t fn;
    void *arg;
};

static slab_lock_t hook_lock = SLAB_LOCK_INIT;
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

void slab_report(const slab_error_t *err)
{
    slab_lock(&hook_lock);
    struct hook h = hook;
    slab_unlock(&hook_lock);
    if (h.fn) {
        h.fn(err, h.arg);
        return;
    }
    char line[512];
    int n = snprintf(line, sizeof line, "libslab: %s: %s\n", err->function, err->message);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void slab_reportf(slab_error_kind_t kind, const char *function,
                  const struct slab_cache *cache, const struct slab_cache *owner,
                  const void *ptr, size_t count, const char *fmt, ...)
{
    char msg[384];
    int n = 0;
    if (cache)
        n = snprintf(msg, sizeof msg, "cache '%s': ", cache->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    slab_error_t err = {
        .kind = kind,
        .function = function,
        .cache = cache ? cache->name : NULL,
        .owner = owner ? owner->name : NULL,
        .ptr = ptr,
        .count = count,
        .message = msg,
    };
    slab_report(&err);
}

void report_fork_prepare(void) { slab_lock(&hook_lock); }
void report_fork_parent(void) { slab_unlock(&hook_lock); }
