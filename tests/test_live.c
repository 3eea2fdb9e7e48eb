/*
 * test_live.c - the live statistics (src/live.c) and slabtop
 * (tools/slabtop.c): the object's name, mode, owner and header, its
 * figures against slab_cache_stats(), its removal by slab_stats_live(0)
 * and at exit (also of a child started with SLAB_STATS_LIVE=1), fork,
 * a torn-read stress through the one reader (src/live_format.h), and
 * slabtop run against child processes: once (-o), refused, with bad
 * options, and refreshing under a pseudo-terminal.
 *
 * The program is also its own child processes:
 *   --child-publish MS api|env  a cache "live-probe" with PROBE_OBJS live
 *       objects, published (slab_stats_live(1), or SLAB_STATS_LIVE=1 and
 *       the allocations' slow paths); prints "ready" and the probe's
 *       figures, then lives MS ms, or until its stdin ends if MS is 0,
 *       and returns from main.
 *   --child-quiet  publishes nothing; lives until its stdin ends.
 *
 * The refresh period is SLAB_STATS_LIVE_MS=1 (set here unless given), so
 * that a test waits little for an update and the stress test's writer
 * updates as fast as it can.
 */
#define _GNU_SOURCE /* memmem, ptsname_r */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "slab_test.h"
#include "live_format.h"

#ifndef SLABTOP_PATH
#error "SLABTOP_PATH: the slabtop program, set by tests/CMakeLists.txt"
#endif

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define PROBE_OBJS 300
#define PROBE_SIZE 200

static struct slab_live_snapshot snap, snap2;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void object_path(char *buf, size_t cap, long pid)
{
    char name[32];
    slab_live_name(name, pid);
    snprintf(buf, cap, "/dev/shm%s", name);
}

/* ------------------------------------------------------------------ */
/* Reading an object                                                    */

struct mapping {
    void *p;
    size_t size;
};

/* Map the object of pid read-only, as slabtop does; false if none. */
static bool map_object(long pid, struct mapping *m)
{
    char name[32];
    slab_live_name(name, pid);
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return false;
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    m->size = (size_t)st.st_size;
    m->p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(m->p != MAP_FAILED);
    return true;
}

static void unmap_object(struct mapping *m)
{
    munmap(m->p, m->size);
}

static void read_good(const struct mapping *m, struct slab_live_snapshot *s)
{
    if (slab_live_read(m->p, m->size, s, 100) < 0)
        fail_msg("no consistent snapshot: %s", strerror(errno));
    const char *bad = slab_live_validate(s);
    if (bad)
        fail_msg("inconsistent snapshot: %s", bad);
}

/* A snapshot of an update that began after this call. */
static void read_fresh(const struct mapping *m, struct slab_live_snapshot *s)
{
    read_good(m, s);
    uint64_t want = s->hdr.h.seq + 4;
    for (int i = 0; i < 10000 && s->hdr.h.seq < want; i++) {
        sleep_ms(1);
        read_good(m, s);
    }
    assert_true(s->hdr.h.seq >= want);
}

static const struct slab_live_cache *find_record(const struct slab_live_snapshot *s,
                                                 const char *name)
{
    char buf[40];
    for (uint64_t i = 0; i < s->hdr.h.nr_caches; i++)
        if (strcmp(slab_live_cache_name(&s->rec[i].c, buf), name) == 0)
            return &s->rec[i].c;
    return NULL;
}

static void check_record(const struct slab_live_cache *r, const slab_cache_stats_t *st)
{
    assert_non_null(r);
    assert_int_equal(r->object_size, st->object_size);
    assert_int_equal(r->stride, st->stride);
    assert_int_equal(r->align, st->align);
    assert_int_equal(r->objs_per_slab, st->objs_per_slab);
    assert_int_equal(r->pages_per_slab, st->pages_per_slab);
    assert_int_equal(r->active_objs, st->active_objs);
    assert_int_equal(r->total_objs, st->total_objs);
    assert_int_equal(r->active_slabs, st->active_slabs);
    assert_int_equal(r->total_slabs, st->total_slabs);
    assert_int_equal(r->allocations, st->allocations);
    assert_int_equal(r->frees, st->frees);
    assert_int_equal(r->high_mark, st->high_mark);
    assert_int_equal(r->magazine_size, st->magazine_size);
    assert_int_equal(r->flags & SLAB_LIVE_INTERNAL, st->internal ? SLAB_LIVE_INTERNAL : 0);
}

static void assert_no_object(long pid)
{
    char path[64];
    object_path(path, sizeof path, pid);
    struct stat st;
    if (stat(path, &st) == 0)
        fail_msg("%s still exists", path);
    assert_int_equal(errno, ENOENT);
}

static void assert_object_private(long pid)
{
    char path[64];
    object_path(path, sizeof path, pid);
    struct stat st;
    if (stat(path, &st) < 0)
        fail_msg("%s: %s", path, strerror(errno));
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != 0600)
        fail_msg("%s has mode %o, not 600", path, (unsigned)(st.st_mode & 07777));
    assert_int_equal(st.st_uid, geteuid());
}

/* ------------------------------------------------------------------ */
/* Child processes                                                      */

static int child_publish(unsigned ms, const char *how)
{
    slab_cache_t *c = slab_cache_create("live-probe", PROBE_SIZE, 0, 0, NULL, NULL, NULL);
    if (!c)
        return 2;
    for (int i = 0; i < PROBE_OBJS; i++)
        if (!slab_cache_alloc(c))
            return 3;
    if (strcmp(how, "api") == 0 && slab_stats_live(1) != 0)
        return 4;
    /* published (env: started by the allocations' slow paths) */
    struct mapping m;
    int i;
    for (i = 0; i < 5000 && !map_object(getpid(), &m); i++)
        sleep_ms(1);
    if (i == 5000)
        return 5;
    struct slab_live_snapshot *s = &snap;
    if (slab_live_read(m.p, m.size, s, 1000) < 0 || slab_live_validate(s))
        return 6;
    unmap_object(&m);
    slab_cache_stats_t st;
    if (slab_cache_stats(c, &st) != 0)
        return 7;
    printf("ready %zu %zu %zu %zu %zu %zu\n", st.total_objs, st.active_objs, st.stride,
           st.total_slabs, st.objs_per_slab, st.pages_per_slab);
    fflush(stdout);
    if (ms) {
        sleep_ms(ms);
    } else {
        char b;
        while (read(STDIN_FILENO, &b, 1) > 0 || errno == EINTR)
            ;
    }
    return 0; /* the objects stay live; the exit handler removes the object */
}

static int child_quiet(void)
{
    char b;
    while (read(STDIN_FILENO, &b, 1) > 0 || errno == EINTR)
        ;
    return 0;
}

struct child {
    pid_t pid;
    int in;          /* its stdin: closing it ends a child with MS 0 */
    size_t probe[6]; /* total, active, stride, slabs, objs per slab, pages */
};

/* Start this program as a child; for a publisher, wait for its "ready". */
static void child_start(struct child *ch, const char *mode, const char *ms, const char *how,
                        const char *env)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fflush(NULL);
    ch->pid = fork();
    assert_true(ch->pid >= 0);
    if (ch->pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        unsetenv("SLAB_STATS_LIVE");
        if (env)
            putenv((char *)env);
        execl(test_self_path, "test_live", mode, ms, how, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ch->in = in[1];
    if (strcmp(mode, "--child-publish") == 0) {
        char line[256];
        size_t n = 0;
        while (n < sizeof line - 1) {
            ssize_t k = read(out[0], line + n, 1);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0 || line[n] == '\n')
                break;
            n++;
        }
        line[n] = '\0';
        if (sscanf(line, "ready %zu %zu %zu %zu %zu %zu", &ch->probe[0], &ch->probe[1],
                   &ch->probe[2], &ch->probe[3], &ch->probe[4], &ch->probe[5]) != 6) {
            int status = 0;
            waitpid(ch->pid, &status, 0);
            fail_msg("child publisher not ready: '%s' (status %#x)", line, status);
        }
    }
    close(out[0]);
}

/* End it (its stdin closed) and check it exited with 0. */
static void child_end(struct child *ch)
{
    close(ch->in);
    int status;
    assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child exited with status %#x", status);
}

/* ------------------------------------------------------------------ */
/* Running slabtop                                                      */

static char out_text[1 << 18], err_text[1 << 16];

static void slurp_fd(int fd, char *buf, size_t cap)
{
    lseek(fd, 0, SEEK_SET);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
}

/* slabtop with the given arguments (NULL-terminated); its exit status,
 * stdout in out_text, stderr in err_text. */
static int run_slabtop(const char *arg, ...)
{
    const char *argv[16] = {"slabtop"};
    int argc = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *o = tmpfile(), *e = tmpfile();
    assert_non_null(o);
    assert_non_null(e);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(o), STDOUT_FILENO);
        dup2(fileno(e), STDERR_FILENO);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, STDIN_FILENO);
        execv(SLABTOP_PATH, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    slurp_fd(fileno(o), out_text, sizeof out_text);
    slurp_fd(fileno(e), err_text, sizeof err_text);
    fclose(o);
    fclose(e);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The table rows of slabtop -o output: between the column line and the
 * totals line. */
struct row {
    unsigned long long objs, active, slabs, per_slab, cache_k;
    unsigned use;
    double size_k;
    char name[40];
};

#define COLUMNS "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME\n"

static size_t parse_rows(const char *text, struct row *rows, size_t max)
{
    const char *p = strstr(text, COLUMNS);
    if (!p)
        fail_msg("no column line in: %.400s", text);
    p += strlen(COLUMNS);
    size_t n = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        if (memmem(p, (size_t)(eol - p), "(total of", 9))
            break;
        assert_true(n < max);
        struct row *r = &rows[n];
        if (sscanf(p, "%llu %llu %u%% %lfK %llu %llu %lluK %39s", &r->objs, &r->active, &r->use,
                   &r->size_k, &r->slabs, &r->per_slab, &r->cache_k, r->name) != 8)
            fail_msg("bad row: %.*s", (int)(eol - p), p);
        n++;
        p = eol + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* In this process                                                      */

static void test_publish_api(void **state)
{
    (void)state;
    long pid = getpid();
    assert_no_object(pid);
    mode_t old = umask(0277); /* would make 0400 without the fchmod */
    assert_int_equal(slab_stats_live(1), 0);
    umask(old);
    assert_int_equal(slab_stats_live(1), 0); /* idempotent */
    assert_object_private(pid);

    struct mapping m;
    assert_true(map_object(pid, &m));
    assert_true(m.size >= SLAB_LIVE_FILE_SIZE);
    read_good(&m, &snap);
    const struct slab_live_header *h = &snap.hdr.h;
    assert_true(h->magic == SLAB_LIVE_MAGIC);
    assert_int_equal(h->version, SLAB_LIVE_VERSION);
    assert_int_equal(h->pid, (uint64_t)pid);
    assert_int_equal(h->uid, geteuid());
    assert_int_equal(h->max_caches, SLAB_LIVE_MAX_CACHES);
    assert_int_equal(h->interval_ms, strtoul(getenv("SLAB_STATS_LIVE_MS"), NULL, 10));
    assert_int_equal(h->page_size, SLAB_PAGE_SIZE);

    slab_cache_t *c = slab_cache_create("live-known", PROBE_SIZE, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    static void *objs[45];
    for (int i = 0; i < 45; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    read_fresh(&m, &snap);
    slab_cache_stats_t st = test_stats(c);
    assert_int_equal(st.active_objs, 45);
    check_record(find_record(&snap, "live-known"), &st);
    assert_int_equal(snap.hdr.h.caches_total, snap.hdr.h.nr_caches);
    assert_int_equal(snap.hdr.h.caches_omitted, 0);
    slab_memory_info_t mi;
    assert_int_equal(slab_memory_info(&mi), 0);
    assert_int_equal(snap.hdr.h.mapped_bytes, mi.mapped_bytes);
    assert_int_equal(snap.hdr.h.arena_bytes, mi.arena_bytes);
    assert_int_equal(snap.hdr.h.slab_bytes, mi.slab_bytes);
    for (unsigned o = 0; o < SLAB_LIVE_ORDERS; o++)
        assert_int_equal(snap.hdr.h.nr_free[o], mi.nr_free[o]);

    for (int i = 0; i < 20; i++)
        slab_cache_free(c, objs[i]);
    read_fresh(&m, &snap);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 25);
    check_record(find_record(&snap, "live-known"), &st);

    /* stop: the object goes; stopping again is nothing */
    assert_int_equal(slab_stats_live(0), 0);
    assert_no_object(pid);
    assert_int_equal(slab_stats_live(0), 0);
    unmap_object(&m);
    /* and again, with a fresh object */
    assert_int_equal(slab_stats_live(1), 0);
    assert_object_private(pid);
    assert_int_equal(slab_stats_live(0), 0);
    assert_no_object(pid);

    for (int i = 20; i < 45; i++)
        slab_cache_free(c, objs[i]);
    slab_cache_shrink(c);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* fork(): the child neither publishes under the parent's name nor
 * removes the parent's object. */
static void test_fork(void **state)
{
    (void)state;
    long parent = getpid();
    assert_int_equal(slab_stats_live(1), 0);
    struct mapping m;
    assert_true(map_object(parent, &m));

    for (int variant = 0; variant < 3; variant++) {
        if (variant == 2 && UNDER_TSAN) {
            printf("[ skipped ] a child of fork() publishing its own object: ThreadSanitizer "
                   "does not start threads after a multi-threaded fork\n");
            continue;
        }
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char path[64];
            struct stat st;
            object_path(path, sizeof path, parent);
            if (variant == 1 && slab_stats_live(0) != 0)
                _exit(10);
            if (stat(path, &st) != 0)
                _exit(11); /* the parent's object is gone */
            if (variant == 2) {
                if (slab_stats_live(1) != 0)
                    _exit(12);
                object_path(path, sizeof path, getpid());
                if (stat(path, &st) != 0 || (st.st_mode & 0777) != 0600)
                    _exit(13);
            }
            exit(0); /* exit handlers run */
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("fork variant %d: child status %#x", variant, status);
        assert_object_private(parent);
        assert_no_object(pid);
        read_fresh(&m, &snap); /* the parent's thread still updates */
        assert_int_equal(snap.hdr.h.pid, (uint64_t)parent);
    }
    unmap_object(&m);
    assert_int_equal(slab_stats_live(0), 0);
    assert_no_object(parent);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Torn reads                                                           */

#define STRESS_CACHES 64

static slab_cache_t *stress_caches[STRESS_CACHES];
static atomic_int stress_stop;

static void *churn(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    enum { SLOTS = 512 };
    static __thread void *held[SLOTS];
    static __thread int from[SLOTS];
    memset(held, 0, sizeof held);
    while (!atomic_load(&stress_stop)) {
        unsigned i = (unsigned)(test_rand(&rng) % SLOTS);
        if (held[i]) {
            if (from[i] < 0)
                slab_free(held[i]);
            else
                slab_cache_free(stress_caches[from[i]], held[i]);
            held[i] = NULL;
        } else {
            int k = (int)(test_rand(&rng) % (STRESS_CACHES + 1)) - 1;
            /* up to 128 bytes: a few size classes, since a fork() later
             * takes every cache's locks at once, and ThreadSanitizer's
             * deadlock detector fails beyond 64 locks held */
            held[i] = k < 0 ? slab_malloc(1 + test_rand(&rng) % 128)
                            : slab_cache_alloc(stress_caches[k]);
            from[i] = k;
            if (!held[i])
                thread_fail("allocation failed");
        }
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (held[i]) {
            if (from[i] < 0)
                slab_free(held[i]);
            else
                slab_cache_free(stress_caches[from[i]], held[i]);
        }
    return NULL;
}

static void test_torn_reads(void **state)
{
    (void)state;
    for (int i = 0; i < STRESS_CACHES; i++) {
        char name[32];
        snprintf(name, sizeof name, "torn-%02d", i);
        stress_caches[i] = slab_cache_create(name, 16 + 24 * (size_t)i, 0, 0, NULL, NULL, NULL);
        assert_non_null(stress_caches[i]);
    }
    assert_int_equal(slab_stats_live(1), 0);
    struct mapping m;
    assert_true(map_object(getpid(), &m));
    atomic_store(&stress_stop, 0);
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);

    /* at least this many snapshots spread over at least this many updates
     * (at most 30 s) */
    size_t want_reads = test_scaled(4000), want_updates = test_scaled(300);
    size_t reads = 0, retried = 0, updates = 0, failed = 0;
    uint64_t last = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < want_reads || updates < want_updates; i++, reads++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 30)
            break;
        if (slab_live_read(m.p, m.size, &snap, 100) < 0) {
            failed++;
            continue;
        }
        const char *bad = slab_live_validate(&snap);
        if (bad)
            fail_msg("snapshot %zu (seq %llu) torn: %s", i, (unsigned long long)snap.hdr.h.seq,
                     bad);
        assert_true(snap.hdr.h.nr_caches >= STRESS_CACHES);
        retried += snap.tries > 1;
        if (snap.hdr.h.seq < last)
            fail_msg("sequence went back from %llu to %llu", (unsigned long long)last,
                     (unsigned long long)snap.hdr.h.seq);
        updates += snap.hdr.h.seq != last;
        last = snap.hdr.h.seq;
    }
    atomic_store(&stress_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_no_thread_failures();
    printf("[ info    ] %zu snapshots, %zu distinct updates, %zu needed a retry, %zu gave up\n",
           reads, updates, retried, failed);
    if (failed > reads / 100)
        fail_msg("%zu of %zu reads found no consistent copy in 100 tries", failed, reads);
    assert_true(updates >= want_updates / 10); /* the writer really wrote meanwhile */

    /* the checks catch what a torn copy looks like */
    read_good(&m, &snap);
    memcpy(&snap2, &snap, sizeof snap);
    snap2.rec[3].w[8] ^= 1; /* a figure of another update */
    assert_non_null(slab_live_validate(&snap2));
    memcpy(&snap2, &snap, sizeof snap);
    snap2.rec[5].c.seq = snap.hdr.h.seq - 2; /* a record left from the update before */
    assert_non_null(slab_live_validate(&snap2));
    memcpy(&snap2, &snap, sizeof snap);
    snap2.hdr.h.in_use_bytes++;
    assert_non_null(slab_live_validate(&snap2));

    unmap_object(&m);
    assert_int_equal(slab_stats_live(0), 0);
    for (int i = 0; i < STRESS_CACHES; i++) {
        slab_cache_shrink(stress_caches[i]);
        assert_int_equal(slab_cache_destroy(stress_caches[i]), 0);
    }
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* Exit, in child processes                                             */

static void test_exit_removes(void **state)
{
    (void)state;
    static const char *const hows[] = {"api", "env"};
    for (int i = 0; i < 2; i++) {
        struct child ch;
        child_start(&ch, "--child-publish", "0", hows[i], i ? "SLAB_STATS_LIVE=1" : NULL);
        assert_object_private(ch.pid);
        struct mapping m;
        assert_true(map_object(ch.pid, &m));
        read_fresh(&m, &snap);
        assert_int_equal(snap.hdr.h.pid, (uint64_t)ch.pid);
        const struct slab_live_cache *r = find_record(&snap, "live-probe");
        assert_non_null(r);
        assert_int_equal(r->active_objs, PROBE_OBJS);
        assert_int_equal(r->total_objs, ch.probe[0]);
        unmap_object(&m);
        child_end(&ch);
        assert_no_object(ch.pid);
    }
}

/* ------------------------------------------------------------------ */
/* slabtop                                                              */

static void check_sorted(const struct row *rows, size_t n, int key)
{
    for (size_t i = 1; i < n; i++) {
        const struct row *a = &rows[i - 1], *b = &rows[i];
        bool ok = true;
        switch (key) {
        case 'n': ok = strcmp(a->name, b->name) <= 0; break;
        case 'a': ok = a->active >= b->active; break;
        case 'o': ok = a->objs >= b->objs; break;
        case 'l': ok = a->slabs >= b->slabs; break;
        case 'b': ok = a->per_slab >= b->per_slab; break;
        case 's': ok = a->size_k >= b->size_k; break;
        case 'c': ok = a->cache_k >= b->cache_k; break;
        case 'u': ok = a->use + 1 >= b->use; break; /* printed rounded */
        default: break;
        }
        if (!ok)
            fail_msg("-s %c: '%s' before '%s'", key, a->name, b->name);
    }
}

static void test_slabtop_once(void **state)
{
    (void)state;
    struct child ch;
    child_start(&ch, "--child-publish", "0", "api", NULL);
    char pid[16];
    snprintf(pid, sizeof pid, "%ld", (long)ch.pid);

    assert_int_equal(run_slabtop("-o", "-p", pid, NULL), 0);
    if (err_text[0])
        fail_msg("slabtop wrote to stderr: %s", err_text);
    assert_null(strchr(out_text, '\033')); /* -o: no screen control */
    char title[64];
    snprintf(title, sizeof title, "slabtop - pid %s (test_live)", pid);
    if (strncmp(out_text, title, strlen(title)) != 0)
        fail_msg("no title line: %.200s", out_text);
    assert_non_null(strstr(out_text, "\n Active / Total Objects (% used)    : "));
    assert_non_null(strstr(out_text, "\n Active / Total Slabs (% used)      : "));
    assert_non_null(strstr(out_text, "\n Active / Total Caches (% used)     : "));
    assert_non_null(strstr(out_text, "\n Active / Total Size (% used)       : "));
    assert_non_null(strstr(out_text, "\n libslab: mapped "));
    assert_non_null(strstr(out_text, "(total of "));
    static struct row rows[SLAB_LIVE_MAX_CACHES];
    size_t n = parse_rows(out_text, rows, SLAB_LIVE_MAX_CACHES);
    const struct row *probe = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, "live-probe") == 0)
            probe = &rows[i];
    if (!probe)
        fail_msg("no live-probe line in: %s", out_text);
    assert_int_equal(probe->objs, ch.probe[0]);
    assert_int_equal(probe->active, PROBE_OBJS);
    assert_int_equal(probe->active, ch.probe[1]);
    assert_int_equal(probe->use, (unsigned)(100.0 * PROBE_OBJS / (double)ch.probe[0] + 0.5));
    assert_true(probe->size_k > ch.probe[2] / 1024.0 - 0.006 &&
                probe->size_k < ch.probe[2] / 1024.0 + 0.006);
    assert_int_equal(probe->slabs, ch.probe[3]);
    assert_int_equal(probe->per_slab, ch.probe[4]);
    assert_int_equal(probe->cache_k, ch.probe[3] * ch.probe[5] * 4);
    check_sorted(rows, n, 'o'); /* the default */

    for (const char *k = "abclvnopsu"; *k; k++) {
        char key[2] = {*k, 0};
        assert_int_equal(run_slabtop("-o", "-s", key, "-p", pid, NULL), 0);
        size_t m = parse_rows(out_text, rows, SLAB_LIVE_MAX_CACHES);
        assert_int_equal(m, n);
        check_sorted(rows, m, *k);
    }
    assert_int_equal(run_slabtop("-o", "-n", "3", "-s", "n", "-p", pid, NULL), 0);
    assert_int_equal(parse_rows(out_text, rows, SLAB_LIVE_MAX_CACHES), 3);
    check_sorted(rows, 3, 'n');
    child_end(&ch);
    assert_no_object(ch.pid);
}

static void make_object(long pid, size_t bytes, uid_t uid)
{
    char path[64];
    object_path(path, sizeof path, pid);
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
    if (uid != geteuid())
        assert_int_equal(fchown(fd, uid, (gid_t)-1), 0);
    close(fd);
}

static void remove_object(long pid)
{
    char path[64];
    object_path(path, sizeof path, pid);
    unlink(path);
}

static void test_slabtop_refusals(void **state)
{
    (void)state;
    char pid[16];

    /* a process of ours that does not publish */
    struct child quiet;
    child_start(&quiet, "--child-quiet", "0", "-", NULL);
    snprintf(pid, sizeof pid, "%ld", (long)quiet.pid);
    assert_int_equal(run_slabtop("-o", "-p", pid, NULL), 1);
    if (!strstr(err_text, "does not publish") || !strstr(err_text, "SLAB_STATS_LIVE=1"))
        fail_msg("no 'set SLAB_STATS_LIVE=1' message: %s", err_text);
    assert_string_equal(out_text, "");

    /* an object that is not a libslab statistics object */
    make_object(quiet.pid, 10, geteuid());
    assert_int_equal(run_slabtop("-o", "-p", pid, NULL), 1);
    assert_non_null(strstr(err_text, "not a libslab statistics object"));
    remove_object(quiet.pid);

    /* another user's object, for a process of ours */
    if (geteuid() == 0) {
        make_object(quiet.pid, SLAB_LIVE_FILE_SIZE, 65534);
        assert_int_equal(run_slabtop("-o", "-p", pid, NULL), 1);
        if (!strstr(err_text, "belongs to another user") || !strstr(err_text, "uid 65534"))
            fail_msg("no refusal: %s", err_text);
        assert_string_equal(out_text, "");
        remove_object(quiet.pid);
    } else {
        printf("[ skipped ] an object owned by another uid: chown needs root\n");
    }
    child_end(&quiet);

    /* another user's process */
    if (geteuid() != 0) {
        assert_int_equal(run_slabtop("-o", "-p", "1", NULL), 1);
        if (!strstr(err_text, "belongs to another user"))
            fail_msg("pid 1 not refused: %s", err_text);
    } else {
        /* pid 1 is root's, as we are: a child that becomes uid 65534 */
        int gate[2];
        assert_int_equal(pipe(gate), 0);
        fflush(NULL);
        pid_t other = fork();
        assert_true(other >= 0);
        if (other == 0) {
            close(gate[1]);
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(3);
            char b;
            while (read(gate[0], &b, 1) > 0 || errno == EINTR)
                ;
            _exit(0);
        }
        close(gate[0]);
        snprintf(pid, sizeof pid, "%ld", (long)other);
        int rc = -1;
        for (int i = 0; i < 100; i++) { /* until the setuid has happened */
            rc = run_slabtop("-o", "-p", pid, NULL);
            if (strstr(err_text, "belongs to another user"))
                break;
            sleep_ms(10);
        }
        assert_int_equal(rc, 1);
        if (!strstr(err_text, "belongs to another user") || !strstr(err_text, "uid 65534"))
            fail_msg("a uid 65534 process not refused: %s", err_text);
        close(gate[1]);
        int status;
        assert_int_equal(waitpid(other, &status, 0), other);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* and pid 1, ours: refused or not, it publishes nothing */
        assert_int_equal(run_slabtop("-o", "-p", "1", NULL), 1);
        assert_true(err_text[0] != '\0');
    }

    /* no such process */
    fflush(NULL);
    pid_t gone = fork();
    assert_true(gone >= 0);
    if (gone == 0)
        _exit(0);
    assert_int_equal(waitpid(gone, NULL, 0), gone);
    snprintf(pid, sizeof pid, "%ld", (long)gone);
    assert_int_equal(run_slabtop("-o", "-p", pid, NULL), 1);
    if (!strstr(err_text, "no process"))
        fail_msg("no 'no process' message: %s", err_text);
}

static void test_slabtop_usage(void **state)
{
    (void)state;
    static const char *const bad[][4] = {
        {NULL},           {"-p", NULL},         {"-p", "abc", NULL}, {"-p", "0", NULL},
        {"-p", "-5", NULL}, {"-p", "1", "-s", NULL}, {"-p", "1", "-s", "z"},
        {"-p", "1", "-s", "ab"}, {"-p", "1", "-n", "0"}, {"-p", "1", "-d", "0"},
        {"-p", "1", "-d", "x"}, {"-x", NULL},     {"-p", "1", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_slabtop(bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL);
        if (rc != 2 || !strstr(err_text, "usage: slabtop -p PID"))
            fail_msg("case %zu (%s %s %s %s): status %d, stderr '%s'", i,
                     bad[i][0] ? bad[i][0] : "", bad[i][1] ? bad[i][1] : "",
                     bad[i][2] ? bad[i][2] : "", bad[i][3] ? bad[i][3] : "", rc, err_text);
        assert_string_equal(out_text, "");
    }
    assert_int_equal(run_slabtop("-h", NULL), 0);
    assert_non_null(strstr(out_text, "usage: slabtop -p PID"));
}

/* Refreshing, under a pseudo-terminal, against a child that lives 1.5 s
 * after publishing: the screen is read back; slabtop ends with 0. */
static void test_slabtop_pty(void **state)
{
    (void)state;
    struct child ch;
    child_start(&ch, "--child-publish", "1500", "api", NULL);
    char pid[16];
    snprintf(pid, sizeof pid, "%ld", (long)ch.pid);

    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    char slave_name[128];
    assert_int_equal(ptsname_r(master, slave_name, sizeof slave_name), 0);
    struct winsize ws = {.ws_row = 60, .ws_col = 132};
    fflush(NULL);
    pid_t top = fork();
    assert_true(top >= 0);
    if (top == 0) {
        setsid();
        int s = open(slave_name, O_RDWR);
        if (s < 0)
            _exit(126);
        ioctl(s, TIOCSCTTY, 0);
        ioctl(s, TIOCSWINSZ, &ws);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2)
            close(s);
        close(master);
        execl(SLABTOP_PATH, "slabtop", "-p", pid, "-d", "0.2", (char *)NULL);
        _exit(127);
    }
    size_t n = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        int r = poll(&p, 1, 200);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            fail_msg("slabtop still running after 20 s; screen so far: %.500s", out_text);
        if (r <= 0)
            continue;
        ssize_t k = read(master, out_text + n, sizeof out_text - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* EIO: the slave side is closed, slabtop has ended */
        n += (size_t)k;
        out_text[n] = '\0';
    }
    out_text[n] = '\0';
    close(master);
    int status;
    assert_int_equal(waitpid(top, &status, 0), top);
    int cs;
    close(ch.in);
    assert_int_equal(waitpid(ch.pid, &cs, 0), ch.pid);
    assert_true(WIFEXITED(cs) && WEXITSTATUS(cs) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("slabtop status %#x; screen: %.800s", status, out_text);

    assert_non_null(strstr(out_text, "\033[H\033[2J")); /* cleared once */
    size_t frames = 0;
    for (const char *p = out_text; (p = strstr(p, "\033[Hslabtop - pid ")); p++)
        frames++;
    printf("[ info    ] %zu screens in %zu bytes\n", frames, n);
    assert_true(frames >= 2);
    assert_non_null(strstr(out_text, "Active / Total Objects (% used)"));
    assert_non_null(strstr(out_text, "Active / Total Size (% used)"));
    assert_non_null(strstr(out_text, "OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME"));
    assert_non_null(strstr(out_text, " live-probe"));
    assert_non_null(strstr(out_text, "(total of "));
    assert_non_null(strstr(out_text, ", every 0.2 s"));
    char ended[64];
    snprintf(ended, sizeof ended, "slabtop: process %s has exited", pid);
    if (!strstr(out_text, ended))
        fail_msg("no end line; screen tail: %s", out_text + (n > 400 ? n - 400 : 0));
    assert_no_object(ch.pid);
}

/* ------------------------------------------------------------------ */
/* Misuse                                                               */

static void test_misuse(void **state)
{
    (void)state;
    static const int bad[] = {2, -1, 42};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(slab_stats_live(bad[i]), -1);
        assert_int_equal(errno, EINVAL);
        expect_one_error(SLAB_ERR_INVALID_ARG);
        assert_string_equal(test_err.function, "slab_stats_live");
        test_errors_reset();
    }
    assert_no_object(getpid());
}

int main(int argc, char **argv)
{
    if (argc > 3 && strcmp(argv[1], "--child-publish") == 0)
        return child_publish((unsigned)atoi(argv[2]), argv[3]);
    if (argc > 1 && strcmp(argv[1], "--child-quiet") == 0)
        return child_quiet();
    if (test_find_self("test_live") != 0)
        return 1;
    setenv("SLAB_STATS_LIVE_MS", "1", 0); /* before libslab reads its environment */
    unsetenv("SLAB_STATS_LIVE");
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_api, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fork, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_exit_removes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_slabtop_once, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_slabtop_refusals, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_slabtop_usage, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_slabtop_pty, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse, test_setup, test_teardown),
        /* last: it leaves size classes behind, which every later fork()
         * would lock */
        cmocka_unit_test_setup_teardown(test_torn_reads, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
