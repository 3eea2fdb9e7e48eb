/*
 * slabtop.c - Linux's slabtop for a process that publishes its libslab
 * statistics (SLAB_STATS_LIVE=1 or slab_stats_live(1); also through
 * LD_PRELOAD=libslab-malloc.so).
 *
 *   slabtop -p PID [-d SECONDS] [-s KEY] [-n N] [-o]
 *
 * It owns nothing of the process it watches: it maps the process's
 * object "/libslab.<pid>" read-only and copies snapshots with the reader
 * of src/live_format.h (the sequence lock; at most 100 tries per
 * snapshot).  What it keeps true:
 *
 *   - it reads only objects of processes of its own user: a process whose
 *     real uid (/proc/PID/status) or object whose owner differs from
 *     getuid(), or an object it may not open, is refused, exit status 1;
 *   - a process that does not publish is named with the way to make it
 *     publish, exit status 1; bad options print the usage, exit status 2;
 *   - when the process ends (kill(pid, 0) fails with ESRCH) or its object
 *     is removed, it says so in one line and exits 0;
 *   - -o prints one screen and exits, with no control sequences; otherwise
 *     the screen is redrawn every -d seconds with ANSI sequences (home,
 *     erase), no curses; on a terminal, q quits and the sort keys change
 *     the order, and the terminal's modes are restored on every exit.
 *
 * Sort keys as Linux's slabtop: a active objects, b objects per slab,
 * c cache size, l slabs, v active slabs, n name, o objects (default),
 * p pages per slab, s object size, u use; all largest first but n.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "live_format.h"

#define TRIES 100
#define SORT_KEYS "abclvnopsu"

static const char *prog = "slabtop";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s -p PID [-d SECONDS] [-s KEY] [-n N] [-o]\n"
            "  -p PID      the process to watch: one that publishes its libslab statistics\n"
            "              (SLAB_STATS_LIVE=1 in its environment, or slab_stats_live(1))\n"
            "  -d SECONDS  seconds between refreshes (default 3; fractions allowed)\n"
            "  -s KEY      sort by: a active objects, b objects per slab, c cache size,\n"
            "              l slabs, v active slabs, n name, o objects (default),\n"
            "              p pages per slab, s object size, u use\n"
            "  -n N        show the first N caches only\n"
            "  -o          print once and exit (no screen control)\n"
            "  -h          this help\n",
            prog);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage(stderr);
    exit(2);
}

/* ---- the screen, built in a buffer ---- */

static char screen[1 << 20];
static size_t screen_len;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(screen + screen_len, sizeof screen - screen_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        screen_len += (size_t)n < sizeof screen - screen_len ? (size_t)n
                                                             : sizeof screen - screen_len - 1;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* ---- terminal ---- */

static struct termios saved_tty;
static bool tty_raw;
static volatile sig_atomic_t got_signal;

static void tty_restore(void)
{
    if (tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
        tty_raw = false;
    }
}

static void on_signal(int sig) { got_signal = sig; }

static void tty_setup(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
        return;
    struct termios t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
        tty_raw = true;
    atexit(tty_restore);
}

static unsigned screen_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
        return ws.ws_row;
    return 0;
}

/* ---- the process ---- */

/* The real uid of a process from /proc, or -1 when it cannot be read. */
static long process_uid(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long uid = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %ld", &uid) == 1)
            break;
    fclose(f);
    return uid;
}

static void process_comm(long pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, (int)cap, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static bool process_gone(long pid)
{
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void refuse(long pid, const char *why) __attribute__((noreturn));
static void refuse(long pid, const char *why)
{
    fprintf(stderr,
            "%s: process %ld belongs to another user (%s): refusing to read its "
            "statistics; run slabtop as that user\n",
            prog, pid, why);
    exit(1);
}

/* ---- sorting ---- */

static int sort_key = 'o';

static uint64_t cache_bytes(const struct slab_live_cache *c, uint64_t page)
{
    return c->total_slabs * c->pages_per_slab * page;
}

static uint64_t page_size = 4096;

static uint64_t key_value(const struct slab_live_cache *c)
{
    switch (sort_key) {
    case 'a': return c->active_objs;
    case 'b': return c->objs_per_slab;
    case 'c': return cache_bytes(c, page_size);
    case 'l': return c->total_slabs;
    case 'v': return c->active_slabs;
    case 'p': return c->pages_per_slab;
    case 's': return c->stride;
    case 'u': return c->total_objs ? c->active_objs * 1000 / c->total_objs : 0;
    default: return c->total_objs;
    }
}

static int compare(const void *pa, const void *pb)
{
    const struct slab_live_cache *a = pa, *b = pb;
    char na[40], nb[40];
    int by_name = strcmp(slab_live_cache_name(a, na), slab_live_cache_name(b, nb));
    if (sort_key == 'n')
        return by_name;
    uint64_t va = key_value(a), vb = key_value(b);
    if (va != vb)
        return va > vb ? -1 : 1;
    return by_name;
}

/* ---- one screen ---- */

static struct slab_live_snapshot snap;
static struct slab_live_cache sorted[SLAB_LIVE_MAX_CACHES];

static double kib(uint64_t bytes) { return (double)bytes / 1024.0; }

static void size_text(char *buf, size_t cap, uint64_t bytes)
{
    const char *unit = "KMGT";
    double v = kib(bytes);
    unsigned u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.2f%c", v, unit[u]);
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void render(long pid, const char *comm, double delay, bool once, unsigned max_rows,
                   bool with_controls)
{
    const struct slab_live_header *h = &snap.hdr.h;
    size_t n = (size_t)h->nr_caches;
    page_size = h->page_size ? h->page_size : 4096;
    memcpy(sorted, snap.rec, n * sizeof sorted[0]);
    qsort(sorted, n, sizeof sorted[0], compare);

    uint64_t objs = 0, active = 0, slabs = 0, active_slabs = 0, caches_active = 0;
    uint64_t size = 0, active_size = 0, bytes = 0, min_obj = UINT64_MAX, max_obj = 0;
    for (size_t i = 0; i < n; i++) {
        const struct slab_live_cache *c = &sorted[i];
        objs += c->total_objs;
        active += c->active_objs;
        slabs += c->total_slabs;
        active_slabs += c->active_slabs;
        caches_active += c->active_objs != 0;
        size += c->total_objs * c->stride;
        active_size += c->active_objs * c->stride;
        bytes += cache_bytes(c, page_size);
        if (c->stride < min_obj)
            min_obj = c->stride;
        if (c->stride > max_obj)
            max_obj = c->stride;
    }
    if (!n)
        min_obj = 0;

    time_t t = (time_t)(h->time_ns / 1000000000u);
    struct tm tm;
    char when[32];
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    const char *eol = with_controls ? "\033[K\n" : "\n";
    if (with_controls)
        put("\033[H");
    put("slabtop - pid %ld%s%s%s - update %llu at %s", pid, comm[0] ? " (" : "", comm,
        comm[0] ? ")" : "", (unsigned long long)(h->seq / 2), when);
    if (!once)
        put(", every %.2g s", delay);
    put("%s", eol);
    put(" Active / Total Objects (%% used)    : %llu / %llu (%.1f%%)%s",
        (unsigned long long)active, (unsigned long long)objs, pct(active, objs), eol);
    put(" Active / Total Slabs (%% used)      : %llu / %llu (%.1f%%)%s",
        (unsigned long long)active_slabs, (unsigned long long)slabs, pct(active_slabs, slabs),
        eol);
    put(" Active / Total Caches (%% used)     : %llu / %llu (%.1f%%)%s",
        (unsigned long long)caches_active, (unsigned long long)h->caches_total,
        pct(caches_active, h->caches_total), eol);
    put(" Active / Total Size (%% used)       : %.2fK / %.2fK (%.1f%%)%s", kib(active_size),
        kib(size), pct(active_size, size), eol);
    put(" Minimum / Average / Maximum Object : %.2fK / %.2fK / %.2fK%s", kib(min_obj),
        objs ? kib(size / objs) : 0.0, kib(max_obj), eol);
    char m[6][16];
    size_text(m[0], sizeof m[0], h->mapped_bytes);
    size_text(m[1], sizeof m[1], h->resident_bytes);
    size_text(m[2], sizeof m[2], h->in_use_bytes);
    size_text(m[3], sizeof m[3], h->slab_bytes);
    size_text(m[4], sizeof m[4], h->free_bytes);
    size_text(m[5], sizeof m[5], h->huge_bytes);
    put(" libslab: mapped %s, resident %s, in use %s, in slabs %s, free %s, huge %s%s", m[0],
        m[1], m[2], m[3], m[4], m[5], eol);
    put(" Free blocks per order (0..%d)     :", SLAB_LIVE_ORDERS - 1);
    for (unsigned o = 0; o < SLAB_LIVE_ORDERS; o++)
        put(" %llu", (unsigned long long)h->nr_free[o]);
    put("%s", eol);
    if (h->caches_omitted)
        put(" (%llu caches not shown: the object holds %llu)%s",
            (unsigned long long)h->caches_omitted, (unsigned long long)h->max_caches, eol);
    put("%s", eol);
    put("  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME%s", eol);

    size_t rows = n;
    if (max_rows && rows > max_rows)
        rows = max_rows;
    for (size_t i = 0; i < rows; i++) {
        const struct slab_live_cache *c = &sorted[i];
        char name[40];
        put("%6llu %6llu %3.0f%% %7.2fK %6llu %8llu %9lluK %s%s",
            (unsigned long long)c->total_objs, (unsigned long long)c->active_objs,
            pct(c->active_objs, c->total_objs), kib(c->stride),
            (unsigned long long)c->total_slabs, (unsigned long long)c->objs_per_slab,
            (unsigned long long)(cache_bytes(c, page_size) / 1024),
            slab_live_cache_name(c, name), eol);
    }
    put("%6llu %6llu %3.0f%% %8s %6llu %8s %9lluK (total of %zu caches)%s",
        (unsigned long long)objs, (unsigned long long)active, pct(active, objs), "",
        (unsigned long long)slabs, "", (unsigned long long)(bytes / 1024), n, eol);
    if (with_controls)
        put("\033[J");
}

/* ---- main ---- */

static long parse_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        die_usage("%s must be a positive whole number, not '%s'", what, s);
    return v;
}

int main(int argc, char **argv)
{
    long pid = 0, top = 0;
    double delay = 3.0;
    bool once = false;
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":p:d:s:n:oh")) != -1) {
        switch (opt) {
        case 'p': pid = parse_long(optarg, "-p PID"); break;
        case 'd': {
            char *end;
            errno = 0;
            delay = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(delay > 0.0) || delay > 86400.0)
                die_usage("-d needs a number of seconds above 0, not '%s'", optarg);
            break;
        }
        case 's':
            if (strlen(optarg) != 1 || !strchr(SORT_KEYS, optarg[0]))
                die_usage("-s needs one of the keys %s, not '%s'", SORT_KEYS, optarg);
            sort_key = optarg[0];
            break;
        case 'n': top = parse_long(optarg, "-n N"); break;
        case 'o': once = true; break;
        case 'h': usage(stdout); return 0;
        case ':': die_usage("-%c needs a value", optopt);
        default: die_usage("unknown option -%c", optopt);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!pid)
        die_usage("-p PID is required");
    if (pid > 0x7fffffffL)
        die_usage("-p %ld: no such pid", pid);

    /* whose process is it */
    long puid = process_uid(pid);
    if (puid < 0 && process_gone(pid)) {
        fprintf(stderr, "%s: no process %ld\n", prog, pid);
        return 1;
    }
    if (puid >= 0 && (uid_t)puid != getuid()) {
        char why[64];
        snprintf(why, sizeof why, "uid %ld, you are %ld", puid, (long)getuid());
        refuse(pid, why);
    }

    char name[32];
    slab_live_name(name, pid);
    int fd = shm_open(name, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM)
            refuse(pid, "its statistics object cannot be opened");
        if (errno == ENOENT) {
            if (process_gone(pid))
                fprintf(stderr, "%s: no process %ld\n", prog, pid);
            else
                fprintf(stderr,
                        "%s: process %ld does not publish libslab statistics (no "
                        "/dev/shm%s): start it with SLAB_STATS_LIVE=1 in its environment "
                        "(with LD_PRELOAD=libslab-malloc.so for a program not linked with "
                        "libslab), or call slab_stats_live(1) in it\n",
                        prog, pid, name);
            return 1;
        }
        fprintf(stderr, "%s: cannot open /dev/shm%s: %s\n", prog, name, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        fprintf(stderr, "%s: /dev/shm%s: %s\n", prog, name, strerror(errno));
        return 1;
    }
    if (st.st_uid != getuid()) {
        char why[80];
        snprintf(why, sizeof why, "/dev/shm%s is owned by uid %ld, you are %ld", name,
                 (long)st.st_uid, (long)getuid());
        refuse(pid, why);
    }
    if ((size_t)st.st_size < sizeof(struct slab_live_header)) {
        fprintf(stderr, "%s: /dev/shm%s is not a libslab statistics object (%lld bytes)\n",
                prog, name, (long long)st.st_size);
        return 1;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "%s: cannot map /dev/shm%s: %s\n", prog, name, strerror(errno));
        return 1;
    }

    char comm[64];
    process_comm(pid, comm, sizeof comm);
    if (!once) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        tty_setup();
        write_all(STDOUT_FILENO, "\033[H\033[2J", 7);
    }
    for (;;) {
        if (slab_live_read(map, size, &snap, TRIES) < 0) {
            int err = errno;
            if (process_gone(pid) || (fstat(fd, &st) == 0 && st.st_nlink == 0))
                goto ended;
            if (err == EPROTO)
                fprintf(stderr, "%s: /dev/shm%s is not a libslab statistics object of this "
                                "layout (version %d)\n", prog, name, SLAB_LIVE_VERSION);
            else
                fprintf(stderr, "%s: no consistent copy of the statistics of process %ld in "
                                "%d tries (the process may be stopped in an update)\n",
                        prog, pid, TRIES);
            tty_restore();
            return 1;
        }
        const char *bad = slab_live_validate(&snap);
        if (bad) {
            fprintf(stderr, "%s: inconsistent statistics from process %ld: %s\n", prog, pid,
                    bad);
            tty_restore();
            return 1;
        }
        screen_len = 0;
        unsigned rows = (unsigned)top;
        if (!once) {
            unsigned height = screen_rows();
            unsigned fixed = 12 + (snap.hdr.h.caches_omitted != 0);
            if (height > fixed && (!rows || rows > height - fixed))
                rows = height - fixed;
        }
        render(pid, comm, delay, once, rows, !once);
        write_all(STDOUT_FILENO, screen, screen_len);
        if (once)
            return 0;

        /* wait for the delay, a key, a signal, or the end of the process */
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            if (got_signal) {
                tty_restore();
                write_all(STDOUT_FILENO, "\n", 1);
                return 0;
            }
            if (process_gone(pid) || (fstat(fd, &st) == 0 && st.st_nlink == 0))
                goto ended;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double left = delay - ((double)(now.tv_sec - start.tv_sec) +
                                   (double)(now.tv_nsec - start.tv_nsec) / 1e9);
            if (left <= 0)
                break;
            int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
            struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
            int r = poll(&pfd, tty_raw ? 1 : 0, ms);
            if (r > 0 && (pfd.revents & POLLIN)) {
                char key;
                if (read(STDIN_FILENO, &key, 1) == 1) {
                    if (key == 'q' || key == 'Q') {
                        tty_restore();
                        write_all(STDOUT_FILENO, "\n", 1);
                        return 0;
                    }
                    if (strchr(SORT_KEYS, key) && key) {
                        sort_key = key;
                        break;
                    }
                    if (key == ' ')
                        break;
                }
            }
        }
    }
ended:
    tty_restore();
    {
        char line[160];
        int n = snprintf(line, sizeof line, "%s%s: process %ld has exited or stopped publishing\n",
                         once ? "" : "\n", prog, pid);
        write_all(STDOUT_FILENO, line, (size_t)n);
    }
    return 0;
}
