/*
 * stats.c - the whole-process view: slab_memory_info(), the text and
 * JSON reports, and the SLAB_STATS report at exit.
 *
 * It owns no allocator state.  Per-cache figures come from
 * cache_snapshot() (caches.c), taken CHUNK caches at a time into a buffer
 * on the stack, with names copied; buddy figures from buddy_memory()
 * (buddy.c); huge mappings from huge_info().  What it keeps true:
 *
 *   - nothing here calls malloc, and no libslab lock is held while output
 *     is written: figures are copied first, then formatted with snprintf
 *     into a line buffer on the stack and handed to the stream (fwrite)
 *     or, at exit, to write(2) on stderr, so that a slow stream stalls no
 *     allocation and the exit report works in a process whose malloc is
 *     libslab-malloc.so;
 *   - the slabinfo and buddyinfo lines use Linux's exact formats
 *     (mm/slab_common.c, mm/vmstat.c), so existing parsers read them;
 *     the JSON output is ASCII and valid whatever the cache names hold;
 *   - the exit report goes to stderr, or to a copy of it made when the
 *     report was registered if the program has closed stderr by then;
 *     it waits for the cache-list lock (the one lock held
 *     across user code, by slab_cache_foreach() callbacks) at most one
 *     second, then gives up with a note; the other locks are held only
 *     briefly inside libslab calls.  A thread that exits from inside a
 *     callback already holds the list lock, and its walk does not take it
 *     again.
 *
 * With more than CHUNK caches the report is taken in several passes: a
 * cache created or destroyed between two passes may be missed or listed
 * twice.  The figures of different caches are taken one after another,
 * not at one instant.
 */
#include "internal.h"

#if SLAB_HOSTED
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#endif

#define CHUNK 32
#define ZONE_NAME "libslab"

/* ---- output: a line buffer in front of a FILE or a file descriptor ---- */

struct out {
    void (*fn)(const char *text, size_t len, void *arg); /* or: */
#if SLAB_HOSTED
    FILE *f;      /* the stream, or NULL for fd */
    int fd;
#endif
    void *arg;
    int err;      /* errno of the first failure, or 0 */
    size_t len;
    char buf[1024];
};

static void out_flush(struct out *o)
{
    if (o->len == 0 || o->err) {
        o->len = 0;
        return;
    }
    if (o->fn) {
        o->fn(o->buf, o->len, o->arg);
        o->len = 0;
        return;
    }
#if SLAB_HOSTED
    if (o->f) {
        errno = 0;
        if (fwrite(o->buf, 1, o->len, o->f) != o->len)
            o->err = errno ? errno : EIO;
    } else {
        for (size_t done = 0; done < o->len;) {
            ssize_t n = write(o->fd, o->buf + done, o->len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                o->err = n < 0 ? errno : EIO;
                break;
            }
            done += (size_t)n;
        }
    }
#endif
    o->len = 0;
}

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = slab_vformat(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < sizeof o->buf - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->buf[o->len] = '\0'; /* drop the partial text, flush, try again */
        out_flush(o);
    }
    /* longer than the buffer: not made by anything below */
}

static int out_end(struct out *o)
{
    out_flush(o);
#if SLAB_HOSTED
    if (o->f && !o->err && fflush(o->f) != 0)
        o->err = errno ? errno : EIO;
#endif
    if (o->err) {
        errno = o->err;
        return -1;
    }
    return 0;
}

#if SLAB_HOSTED
static bool check_file(FILE *f, const char *function)
{
    if (f)
        return true;
    slab_reportf(SLAB_ERR_INVALID_ARG, function, NULL, NULL, NULL, 0, "NULL stream");
    errno = EINVAL;
    return false;
}
#endif

/* ---- memory ---- */

struct object_sum {
    size_t bytes;
};

static int add_objects(struct slab_cache *c, void *arg)
{
    struct object_sum *sum = arg;
    slab_cache_stats_t st;
    if (slab_cache_stats(c, &st) == 0 && !st.internal)
        sum->bytes += st.active_objs * st.object_size;
    return 0;
}

static int memory_info(slab_memory_info_t *m, const struct timespec *deadline)
{
    memset(m, 0, sizeof *m);
    struct object_sum sum = {0};
    if (cache_walk(add_objects, &sum, deadline) < 0)
        return -1;
    struct buddy_memory b;
    buddy_memory(&b);
    size_t huge_count, huge_bytes;
    huge_info(&huge_count, &huge_bytes);

    size_t clean_pages = b.info.free_pages - b.dirty_pages;
    m->arena_bytes = b.info.total_pages * PAGE_SIZE;
    m->metadata_bytes = b.meta_bytes + map_bytes();
    m->huge_bytes = huge_bytes;
    m->huge_mappings = huge_count;
    m->mapped_bytes = m->arena_bytes + m->metadata_bytes + m->huge_bytes;
    m->resident_bytes = m->mapped_bytes - clean_pages * PAGE_SIZE -
                        (b.meta_bytes - b.meta_resident);
    m->free_bytes = b.info.free_pages * PAGE_SIZE;
    m->free_dirty_bytes = b.dirty_pages * PAGE_SIZE;
    m->object_bytes = sum.bytes;
    m->run_bytes = b.run_pages * PAGE_SIZE;
    m->pages_bytes = b.block_pages * PAGE_SIZE;
    m->in_use_bytes = m->object_bytes + m->run_bytes + m->pages_bytes + m->huge_bytes;
    m->slab_bytes = (b.info.total_pages - b.info.free_pages - b.run_pages - b.block_pages) *
                    PAGE_SIZE;
    memcpy(m->nr_free, b.info.nr_free, sizeof m->nr_free);
    return 0;
}

int stats_memory_info(slab_memory_info_t *out, const struct timespec *deadline)
{
    return memory_info(out, deadline);
}

int slab_memory_info(slab_memory_info_t *out)
{
    if (!out) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0, "NULL buffer");
        errno = EINVAL;
        return -1;
    }
    return memory_info(out, NULL);
}

/* ---- slabinfo and buddyinfo ---- */

/* A name as one field: blanks and control characters as '_'. */
static void field_name(char *dst, const char *name)
{
    size_t i = 0;
    for (; name[i] && i < SLAB_NAME_MAX - 1; i++) {
        unsigned char ch = (unsigned char)name[i];
        dst[i] = ch <= ' ' || ch == 0x7f ? '_' : (char)ch;
    }
    if (i == 0)
        dst[i++] = '-';
    dst[i] = '\0';
}

static void slabinfo_line(struct out *o, const slab_cache_stats_t *st)
{
    char name[SLAB_NAME_MAX];
    field_name(name, st->name);
    unsigned shared = st->batchcount ? (unsigned)(st->depot_limit / st->batchcount) : 0;
    outf(o, "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu\n",
         name, (unsigned long)st->active_objs, (unsigned long)st->total_objs,
         (unsigned)st->stride, (unsigned)st->objs_per_slab, (int)st->pages_per_slab,
         (unsigned)st->magazine_size, (unsigned)st->batchcount, shared,
         (unsigned long)st->active_slabs, (unsigned long)st->total_slabs,
         (unsigned long)st->depot_objs);
}

static int write_slabinfo(struct out *o, const struct timespec *deadline)
{
    struct cache_snapshot snap[CHUNK];
    outf(o, "slabinfo - version: 2.1\n");
    outf(o, "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
            " : tunables <limit> <batchcount> <sharedfactor>"
            " : slabdata <active_slabs> <num_slabs> <sharedavail>\n");
    size_t skip = 0, total;
    do {
        total = cache_snapshot(snap, skip, CHUNK, deadline);
        if (total == (size_t)-1)
            return -1;
        for (size_t i = 0; skip + i < total && i < CHUNK; i++)
            slabinfo_line(o, &snap[i].st);
        skip += CHUNK;
    } while (skip < total);
    return 0;
}

static void buddyinfo_line(struct out *o, const size_t *nr_free)
{
    outf(o, "Node %d, zone %8s ", 0, ZONE_NAME);
    for (unsigned i = 0; i <= MAX_ORDER; i++)
        outf(o, "%6lu ", (unsigned long)nr_free[i]);
    outf(o, "\n");
}

int slab_info_write(void (*fn)(const char *text, size_t len, void *arg), void *arg)
{
    if (!fn) {
        slab_reportf(SLAB_ERR_INVALID_ARG, __func__, NULL, NULL, NULL, 0, "NULL function");
        errno = EINVAL;
        return -1;
    }
    struct out o = {.fn = fn, .arg = arg};
    if (write_slabinfo(&o, NULL) < 0)
        return -1;
    slab_buddy_info_t bi;
    slab_buddy_info(&bi);
    buddyinfo_line(&o, bi.nr_free);
    return out_end(&o);
}

#if SLAB_HOSTED
int slab_info_print(FILE *f)
{
    if (!check_file(f, __func__))
        return -1;
    struct out o = {.f = f};
    if (write_slabinfo(&o, NULL) < 0)
        return -1;
    return out_end(&o);
}

int slab_buddyinfo_print(FILE *f)
{
    if (!check_file(f, __func__))
        return -1;
    struct out o = {.f = f};
    slab_buddy_info_t bi;
    slab_buddy_info(&bi);
    buddyinfo_line(&o, bi.nr_free);
    return out_end(&o);
}

#endif

#if SLAB_HOSTED
/* ---- JSON ---- */

static void json_string(struct out *o, const char *s)
{
    outf(o, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            outf(o, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            outf(o, "\\u%04x", ch);
        else
            outf(o, "%c", ch);
    }
    outf(o, "\"");
}

#define J(obj, field) outf(o, ",\"" #field "\":%llu", (unsigned long long)(obj)->field)

static void json_cache(struct out *o, const slab_cache_stats_t *st)
{
    outf(o, "{\"name\":");
    json_string(o, st->name);
    J(st, object_size); J(st, stride); J(st, align); J(st, objs_per_slab);
    J(st, pages_per_slab); J(st, colours); J(st, active_objs); J(st, total_objs);
    J(st, active_slabs); J(st, total_slabs); J(st, partial_slabs); J(st, full_slabs);
    J(st, free_slabs); J(st, allocations); J(st, frees); J(st, high_mark); J(st, grown);
    J(st, reaped); J(st, errors); J(st, ctor_failures); J(st, magazine_size);
    J(st, batchcount); J(st, alloc_hit); J(st, alloc_miss); J(st, free_hit);
    J(st, free_miss); J(st, depot_exchanges); J(st, depot_full); J(st, depot_empty);
    J(st, magazine_objs); J(st, depot_overflows); J(st, depot_objs); J(st, depot_limit);
    J(st, flags);
    outf(o, ",\"internal\":%s}", st->internal ? "true" : "false");
}

static void json_array(struct out *o, const char *name, const size_t *v, size_t n)
{
    outf(o, "\"%s\":[", name);
    for (size_t i = 0; i < n; i++)
        outf(o, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    outf(o, "]");
}

static int write_json(struct out *o, const struct timespec *deadline)
{
    struct cache_snapshot snap[CHUNK];
    outf(o, "{\"version\":1,\"caches\":[");
    size_t skip = 0, total;
    do {
        total = cache_snapshot(snap, skip, CHUNK, deadline);
        if (total == (size_t)-1)
            return -1;
        for (size_t i = 0; skip + i < total && i < CHUNK; i++) {
            if (skip + i)
                outf(o, ",");
            json_cache(o, &snap[i].st);
        }
        skip += CHUNK;
    } while (skip < total);
    slab_memory_info_t m;
    if (memory_info(&m, deadline) < 0)
        return -1;
    slab_buddy_info_t bi;
    slab_buddy_info(&bi);
    outf(o, "],\"buddy\":{");
    json_array(o, "nr_free", bi.nr_free, MAX_ORDER + 1);
    J(&bi, arenas); J(&bi, free_pages); J(&bi, total_pages); J(&bi, mapped_bytes);
    outf(o, "},\"memory\":{");
    outf(o, "\"mapped_bytes\":%llu", (unsigned long long)m.mapped_bytes);
    J(&m, arena_bytes); J(&m, metadata_bytes); J(&m, huge_bytes); J(&m, huge_mappings);
    J(&m, resident_bytes); J(&m, free_bytes); J(&m, free_dirty_bytes); J(&m, in_use_bytes);
    J(&m, object_bytes); J(&m, run_bytes); J(&m, pages_bytes); J(&m, slab_bytes);
    outf(o, ",");
    json_array(o, "nr_free", m.nr_free, MAX_ORDER + 1);
    outf(o, "}}\n");
    return 0;
}

int slab_stats_json(FILE *f)
{
    if (!check_file(f, __func__))
        return -1;
    struct out o = {.f = f};
    if (write_json(&o, NULL) < 0)
        return -1;
    return out_end(&o);
}

/* ---- SLAB_STATS: the report at exit ---- */

/* A copy of stderr taken at registration: programs built with gnulib
 * (coreutils) close stderr in their own exit handler, which runs before
 * this one. */
static int saved_stderr = -1;

static void report_at_exit(void)
{
    int saved = errno;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    int fd = STDERR_FILENO;
    if (fcntl(fd, F_GETFD) == -1 && saved_stderr >= 0)
        fd = saved_stderr;
    struct out o = {.f = NULL, .fd = fd};
    int r;
    if (options_stats() == STATS_JSON) {
        r = write_json(&o, &deadline);
    } else {
        r = write_slabinfo(&o, &deadline);
        if (r == 0) {
            slab_buddy_info_t bi;
            slab_buddy_info(&bi);
            buddyinfo_line(&o, bi.nr_free);
        }
    }
    if (r < 0) {
        o.len = 0; /* drop what is still buffered of a report cut short */
        outf(&o, "libslab: SLAB_STATS: statistics skipped: the cache list stayed locked\n");
    }
    out_end(&o);
    errno = saved;
}

void stats_boot(void)
{
    static int registered;
    if (__atomic_load_n(&registered, __ATOMIC_RELAXED) ||
        __atomic_exchange_n(&registered, 1, __ATOMIC_ACQ_REL))
        return;
    if (options_stats() != STATS_OFF) {
        saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        atexit(report_at_exit);
    }
}
#else
void stats_boot(void) {}
#endif
