/*
 * test_stats.c - statistics: slab_cache_stats() figures after known
 * sequences, slab_memory_info(), slab_cache_foreach(), and the text and
 * JSON reports read back and compared with the API, including the
 * SLAB_STATS report a child process writes at exit.
 *
 * Everything here runs in one thread with the automatic reap off, so
 * every figure is exact.  The reports are parsed the way a script would
 * (sscanf per line; a small recursive-descent JSON checker), and every
 * field is compared with what the API says at the same moment.
 *
 * Run with "--child-exit" or "--child-exit-json" the program is the child
 * of the exit test: it sets up a cache with three live objects and
 * returns from main, leaving the report to SLAB_STATS.
 */
#include <ctype.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slab_test.h"

#define HEADER1 "slabinfo - version: 2.1\n"
#define HEADER2                                                                      \
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>" \
    " : tunables <limit> <batchcount> <sharedfactor>"                                  \
    " : slabdata <active_slabs> <num_slabs> <sharedavail>\n"

static void set_magazines(int on)
{
    slab_options_t o;
    slab_get_options(&o);
    o.magazines = on;
    o.reap_interval_ms = 0;
    assert_int_equal(slab_set_options(&o), 0);
}

/* ------------------------------------------------------------------ */
/* Reading a stream back                                                */

/* The whole of f from its start, in buf (NUL-terminated). */
static size_t slurp(FILE *f, char *buf, size_t cap)
{
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    assert_true(n < cap - 1);
    buf[n] = '\0';
    return n;
}

static char text[1 << 18];

/* ------------------------------------------------------------------ */
/* Exact figures                                                        */

static void test_exact_without_magazines(void **state)
{
    (void)state;
    skip_on_slob("slab list figures (test_slob checks SLOB's exact counters)");
    set_magazines(0);
    slab_cache_t *c = slab_cache_create("stats-plain", 100, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    assert_string_equal(st.name, "stats-plain");
    assert_int_equal(st.object_size, 100);
    assert_int_equal(st.stride, 104);
    assert_int_equal(st.align, 8);
    size_t per = st.objs_per_slab;
    assert_int_equal(per, (st.pages_per_slab * SLAB_PAGE_SIZE) / 104);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(st.magazine_size, 0);
    assert_int_equal(st.batchcount, 0);
    assert_int_equal(st.depot_limit, 0);
    assert_false(st.internal);

    static void *objs[200];
    for (size_t i = 0; i < 200; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    size_t slabs = (200 + per - 1) / per;
    st = test_stats(c);
    assert_int_equal(st.active_objs, 200);
    assert_int_equal(st.total_objs, slabs * per);
    assert_int_equal(st.allocations, 200);
    assert_int_equal(st.frees, 0);
    assert_int_equal(st.high_mark, 200);
    assert_int_equal(st.grown, slabs);
    assert_int_equal(st.reaped, 0);
    assert_int_equal(st.active_slabs, slabs);
    assert_int_equal(st.total_slabs, slabs);
    assert_int_equal(st.full_slabs, 200 / per);
    assert_int_equal(st.partial_slabs, slabs - 200 / per);
    assert_int_equal(st.free_slabs, 0);
    assert_int_equal(st.magazine_objs, 0);
    assert_int_equal(st.alloc_hit + st.alloc_miss + st.free_hit + st.free_miss, 0);
    assert_int_equal(st.depot_exchanges + st.depot_full + st.depot_objs, 0);

    for (size_t i = 0; i < 150; i++)
        slab_cache_free(c, objs[i]);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 50);
    assert_int_equal(st.frees, 150);
    assert_int_equal(st.high_mark, 200);

    /* a double free is reported, counted, and changes nothing else */
    slab_cache_free(c, objs[0]);
    expect_one_error(SLAB_ERR_DOUBLE_FREE);
    test_errors_reset();
    st = test_stats(c);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.frees, 150);
    assert_int_equal(st.active_objs, 50);

    for (size_t i = 150; i < 200; i++)
        slab_cache_free(c, objs[i]);
    st = test_stats(c);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.active_slabs, 0);
    size_t keep = st.free_slabs; /* the cache's keep limit, at most every slab */
    assert_true(keep >= 2 && keep <= slabs);
    assert_int_equal(st.reaped, slabs - keep);
    assert_int_equal(st.total_objs, keep * per);
    assert_int_equal(slab_cache_shrink(c), keep);
    st = test_stats(c);
    assert_int_equal(st.reaped, slabs);
    assert_int_equal(st.total_slabs, 0);
    assert_int_equal(slab_cache_destroy(c), 0);
    set_magazines(1);
    expect_no_error();
}

static void test_exact_with_magazines(void **state)
{
    (void)state;
    skip_on_slob("no magazines");
    set_magazines(1);
    slab_cache_t *c = slab_cache_create("stats-mag", 64, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_cache_stats_t st = test_stats(c);
    /* 64 B: 63 rounds, batches of 32, a depot of 128 KiB of objects */
    assert_int_equal(st.magazine_size, 63);
    assert_int_equal(st.batchcount, 32);
    assert_int_equal(st.depot_limit, (128 << 10) / 64);

    void *p = slab_cache_alloc(c);
    assert_non_null(p);
    st = test_stats(c);
    assert_int_equal(st.allocations, 1);
    assert_int_equal(st.alloc_miss, 1);
    assert_int_equal(st.alloc_hit, 0);
    assert_int_equal(st.active_objs, 1);
    assert_int_equal(st.magazine_objs, 31);
    assert_int_equal(st.high_mark, 32);
    assert_int_equal(st.grown, 1);
    assert_int_equal(st.total_objs, st.objs_per_slab);
    slab_cache_free(c, p);
    st = test_stats(c);
    assert_int_equal(st.frees, 1);
    assert_int_equal(st.free_hit, 1);
    assert_int_equal(st.active_objs, 0);
    assert_int_equal(st.magazine_objs, 32);
    assert_int_equal(st.depot_objs, 0);

    /* 100 more out and back: the second full magazine goes to the depot
     * (test_magazine.c derives these figures) */
    static void *objs[100];
    for (size_t i = 0; i < 100; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    for (size_t i = 0; i < 100; i++)
        slab_cache_free(c, objs[i]);
    st = test_stats(c);
    assert_int_equal(st.allocations, 101);
    assert_int_equal(st.frees, 101);
    assert_int_equal(st.active_objs, 0);
    assert_true(st.depot_full >= 1);
    assert_int_equal(st.depot_objs, st.depot_full * st.magazine_size);
    assert_true(st.depot_exchanges >= 1);
    assert_int_equal(st.alloc_hit + st.alloc_miss, 101);
    assert_int_equal(st.free_hit + st.free_miss, 101);
    assert_int_equal(st.magazine_objs, st.high_mark);
    assert_true(slab_cache_shrink(c) >= 1);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

static void test_memory_info(void **state)
{
    (void)state;
    slab_memory_info_t m0, m;
    assert_int_equal(slab_memory_info(&m0), 0);
    slab_cache_t *c = slab_cache_create("stats-mem", 200, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    static void *objs[30];
    for (size_t i = 0; i < 30; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    void *run = slab_malloc(100000);            /* 25 pages: a block of 32 */
    void *huge = slab_malloc((size_t)3 << 20);  /* a mapping of its own */
    void *pages = slab_pages_alloc(2);
    assert_non_null(run);
    assert_non_null(huge);
    assert_non_null(pages);
    assert_int_equal(slab_memory_info(&m), 0);
    assert_int_equal(m.object_bytes - m0.object_bytes, 30 * 200);
    assert_int_equal(m.run_bytes - m0.run_bytes, 32 * SLAB_PAGE_SIZE);
    assert_int_equal(m.pages_bytes - m0.pages_bytes, 4 * SLAB_PAGE_SIZE);
    assert_int_equal(m.huge_bytes - m0.huge_bytes, (size_t)3 << 20);
    assert_int_equal(m.huge_mappings - m0.huge_mappings, 1);
    assert_int_equal(m.in_use_bytes, m.object_bytes + m.run_bytes + m.pages_bytes + m.huge_bytes);
    assert_int_equal(m.mapped_bytes, m.arena_bytes + m.metadata_bytes + m.huge_bytes);
    assert_true(m.resident_bytes <= m.mapped_bytes);
    assert_true(m.resident_bytes >= m.in_use_bytes);
    assert_true(m.free_dirty_bytes <= m.free_bytes);

    slab_buddy_info_t bi = test_buddy();
    assert_int_equal(m.arena_bytes, bi.arenas * SLAB_ARENA_SIZE);
    assert_int_equal(m.free_bytes, bi.free_pages * SLAB_PAGE_SIZE);
    assert_int_equal(m.slab_bytes + m.run_bytes + m.pages_bytes + m.free_bytes, m.arena_bytes);
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++)
        assert_int_equal(m.nr_free[o], bi.nr_free[o]);

    /* a run shrunk in place counts its pages only */
    run = slab_realloc(run, 10 * SLAB_PAGE_SIZE); /* above the size classes */
    assert_non_null(run);
    assert_int_equal(slab_memory_info(&m), 0);
    assert_int_equal(m.run_bytes - m0.run_bytes, 10 * SLAB_PAGE_SIZE);

    slab_free(run);
    slab_free(huge);
    slab_pages_free(pages, 2);
    for (size_t i = 0; i < 30; i++)
        slab_cache_free(c, objs[i]);
    slab_cache_shrink(c);
    assert_int_equal(slab_cache_destroy(c), 0);
    assert_int_equal(slab_memory_info(&m), 0);
    assert_int_equal(m.object_bytes, m0.object_bytes);
    assert_int_equal(m.run_bytes, m0.run_bytes);
    assert_int_equal(m.pages_bytes, m0.pages_bytes);
    assert_int_equal(m.huge_bytes, m0.huge_bytes);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* The iterator                                                         */

struct walk {
    size_t seen, stop_after;
    int ret;
    size_t internal, stats_ok;
    const slab_cache_t *victim;
    int created_errno, destroyed_errno, destroy_ret;
    int nested;
    int malloc_ok;
};

static int count_one(const slab_cache_t *c, void *arg)
{
    struct walk *w = arg;
    slab_cache_stats_t st;
    if (slab_cache_stats(c, &st) == 0)
        w->stats_ok++;
    w->internal += st.internal != 0;
    return ++w->seen == w->stop_after ? w->ret : 0;
}

static int misbehave(const slab_cache_t *c, void *arg)
{
    (void)c;
    struct walk *w = arg;
    if (w->seen++)
        return 0;
    errno = 0;
    slab_cache_t *n = slab_cache_create("stats-inner", 32, 0, 0, NULL, NULL, NULL);
    w->created_errno = n ? 0 : errno;
    errno = 0;
    w->destroy_ret = slab_cache_destroy((slab_cache_t *)w->victim);
    w->destroyed_errno = errno;
    struct walk inner = {0};
    w->nested = slab_cache_foreach(count_one, &inner) == 0 && inner.seen > 0;
    void *p = slab_malloc(24); /* a size class in use already */
    w->malloc_ok = p != NULL;
    slab_free(p);
    return 0;
}

static void test_foreach(void **state)
{
    (void)state;
    slab_cache_t *c = slab_cache_create("stats-walk", 48, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    slab_free(slab_malloc(24));

    struct walk all = {0};
    assert_int_equal(slab_cache_foreach(count_one, &all), 0);
    assert_true(all.seen >= 3);
    assert_int_equal(all.stats_ok, all.seen); /* libslab's own caches are caches too */
    assert_true(all.internal >= 2);

    struct walk part = {.stop_after = 2, .ret = 7};
    assert_int_equal(slab_cache_foreach(count_one, &part), 7);
    assert_int_equal(part.seen, 2);

    struct walk bad = {.victim = c};
    assert_int_equal(slab_cache_foreach(misbehave, &bad), 0);
    assert_int_equal(bad.created_errno, EDEADLK);
    assert_int_equal(bad.destroy_ret, -1);
    assert_int_equal(bad.destroyed_errno, EDEADLK);
    assert_true(bad.nested);
    assert_true(bad.malloc_ok);
    assert_int_equal(test_err.count, 2); /* the create and the destroy */
    test_errors_reset();

    /* the cache survived and goes now */
    void *p = slab_cache_alloc(c);
    assert_non_null(p);
    slab_cache_free(c, p);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* slabinfo and buddyinfo read back                                     */

struct find {
    const char *name;
    const slab_cache_t *found;
    size_t count;
};

static int find_one(const slab_cache_t *c, void *arg)
{
    struct find *f = arg;
    f->count++;
    char name[SLAB_NAME_MAX];
    const char *n = slab_cache_name(c);
    size_t i = 0;
    for (; n[i]; i++)
        name[i] = (unsigned char)n[i] <= ' ' ? '_' : n[i];
    name[i] = '\0';
    if (f->name && strcmp(name, f->name) == 0)
        f->found = c;
    return 0;
}

static void test_slabinfo_parsed(void **state)
{
    (void)state;
    slab_cache_t *a = slab_cache_create("stats info", 300, 0, 0, NULL, NULL, NULL);
    slab_cache_t *b = slab_cache_create("stats-info-b", 24, 0, SLAB_CONSISTENCY_CHECKS, NULL,
                                        NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    static void *objs[100];
    for (size_t i = 0; i < 100; i++)
        assert_non_null(objs[i] = slab_cache_alloc(i % 2 ? a : b));
    for (size_t i = 0; i < 40; i++)
        slab_cache_free(i % 2 ? a : b, objs[i]);

    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(slab_info_print(f), 0);
    slurp(f, text, sizeof text);
    fclose(f);

    assert_memory_equal(text, HEADER1 HEADER2, strlen(HEADER1 HEADER2));
    size_t lines = 0;
    int saw_a = 0, saw_b = 0;
    for (char *line = text + strlen(HEADER1 HEADER2), *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        char name[64];
        unsigned long active, num, aslabs, nslabs, avail;
        unsigned objsize, perslab, limit, batch, shared;
        int pages;
        int n = sscanf(line,
                       "%63s %lu %lu %u %u %d : tunables %u %u %u : slabdata %lu %lu %lu",
                       name, &active, &num, &objsize, &perslab, &pages, &limit, &batch, &shared,
                       &aslabs, &nslabs, &avail);
        if (n != 12)
            fail_msg("line does not parse (%d fields): '%s'", n, line);
        struct find fd = {.name = name};
        slab_cache_foreach(find_one, &fd);
        if (!fd.found)
            fail_msg("no cache named '%s'", name);
        slab_cache_stats_t st = test_stats(fd.found);
        assert_int_equal(active, st.active_objs);
        assert_int_equal(num, st.total_objs);
        assert_int_equal(objsize, st.stride);
        assert_int_equal(perslab, st.objs_per_slab);
        assert_int_equal(pages, st.pages_per_slab);
        assert_int_equal(limit, st.magazine_size);
        assert_int_equal(batch, st.batchcount);
        assert_int_equal(shared, st.batchcount ? st.depot_limit / st.batchcount : 0);
        assert_int_equal(aslabs, st.active_slabs);
        assert_int_equal(nslabs, st.total_slabs);
        assert_int_equal(avail, st.depot_objs);
        /* Linux's columns exactly */
        char again[256];
        snprintf(again, sizeof again,
                 "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu",
                 name, active, num, objsize, perslab, pages, limit, batch, shared, aslabs,
                 nslabs, avail);
        assert_string_equal(line, again);
        saw_a += fd.found == a;
        saw_b += fd.found == b;
        lines++;
    }
    struct find count = {0};
    slab_cache_foreach(find_one, &count);
    assert_int_equal(lines, count.count);
    assert_int_equal(saw_a, 1); /* "stats info" printed as "stats_info" */
    assert_int_equal(saw_b, 1);
    slab_cache_stats_t sa = test_stats(a), sb = test_stats(b);
    assert_int_equal(sa.active_objs, 30);
    assert_int_equal(sb.active_objs, 30);

    for (size_t i = 40; i < 100; i++)
        slab_cache_free(i % 2 ? a : b, objs[i]);
    slab_cache_shrink(a);
    assert_int_equal(slab_cache_destroy(a), 0);
    assert_int_equal(slab_cache_destroy(b), 0);
    expect_no_error();
}

static void test_buddyinfo_parsed(void **state)
{
    (void)state;
    void *p = slab_pages_alloc(3); /* something other than whole arenas */
    assert_non_null(p);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(slab_buddyinfo_print(f), 0);
    slurp(f, text, sizeof text);
    fclose(f);
    slab_buddy_info_t bi = test_buddy();

    int node, used = 0;
    char zone[16];
    assert_int_equal(sscanf(text, "Node %d, zone %15s%n", &node, zone, &used), 2);
    assert_int_equal(node, 0);
    assert_string_equal(zone, "libslab");
    char expect[512];
    int len = snprintf(expect, sizeof expect, "Node %d, zone %8s ", 0, "libslab");
    const char *q = text + used;
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++) {
        unsigned long v;
        int k;
        assert_int_equal(sscanf(q, "%lu%n", &v, &k), 1);
        assert_int_equal(v, bi.nr_free[o]);
        q += k;
        len += snprintf(expect + len, sizeof expect - (size_t)len, "%6lu ", v);
    }
    snprintf(expect + len, sizeof expect - (size_t)len, "\n");
    assert_string_equal(text, expect);
    slab_pages_free(p, 3);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

/* A recursive-descent check of RFC 8259 JSON; returns the end of the
 * value at s, or NULL. */
static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static const char *json_value(const char *s, int depth);

static const char *json_str(const char *s)
{
    if (*s++ != '"')
        return NULL;
    while (*s != '"') {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch >= 0x80) /* the output is promised ASCII */
            return NULL;
        if (ch == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)s[i]))
                        return NULL;
                s += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", *s) || !*s)
                return NULL;
        }
        s++;
    }
    return s + 1;
}

static const char *json_num(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (isdigit((unsigned char)*s))
        while (isdigit((unsigned char)*s))
            s++;
    else
        return NULL;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return NULL;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return NULL;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return s;
}

static const char *json_value(const char *s, int depth)
{
    if (depth > 32)
        return NULL;
    s = json_ws(s);
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        s = json_ws(s + 1);
        if (*s == close)
            return s + 1;
        for (;;) {
            if (close == '}') {
                s = json_str(json_ws(s));
                if (!s)
                    return NULL;
                s = json_ws(s);
                if (*s++ != ':')
                    return NULL;
            }
            s = json_value(s, depth + 1);
            if (!s)
                return NULL;
            s = json_ws(s);
            if (*s == close)
                return s + 1;
            if (*s++ != ',')
                return NULL;
        }
    }
    if (*s == '"')
        return json_str(s);
    if (!strncmp(s, "true", 4))
        return s + 4;
    if (!strncmp(s, "false", 5))
        return s + 5;
    if (!strncmp(s, "null", 4))
        return s + 4;
    return json_num(s);
}

static int json_valid(const char *s)
{
    s = json_value(s, 0);
    return s && *json_ws(s) == '\0';
}

/* The number after "field": in the object starting at obj (flat). */
static unsigned long long json_field(const char *obj, const char *field)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *end = strchr(obj, '}');
    const char *k = strstr(obj, key);
    if (!k || (end && k > end))
        fail_msg("no field %s", field);
    return strtoull(k + strlen(key), NULL, 10);
}

static void test_json(void **state)
{
    (void)state;
    /* a name that needs every kind of escape */
    slab_cache_t *c = slab_cache_create("j\"s\\o\n\x01\xc3\xa9", 40, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    static void *objs[10];
    for (size_t i = 0; i < 10; i++)
        assert_non_null(objs[i] = slab_cache_alloc(c));
    slab_cache_free(c, objs[9]);

    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(slab_stats_json(f), 0);
    size_t n = slurp(f, text, sizeof text);
    fclose(f);
    assert_true(n > 0 && text[n - 1] == '\n');
    if (!json_valid(text))
        fail_msg("invalid JSON: %.300s", text);

    const char *obj = strstr(text, "{\"name\":\"j\\\"s\\\\o\\u000a\\u0001\\u00c3\\u00a9\"");
    assert_non_null(obj);
    slab_cache_stats_t st = test_stats(c);
#define F(field) assert_int_equal(json_field(obj, #field), (unsigned long long)st.field)
    F(object_size); F(stride); F(align); F(objs_per_slab); F(pages_per_slab); F(colours);
    F(active_objs); F(total_objs); F(active_slabs); F(total_slabs); F(partial_slabs);
    F(full_slabs); F(free_slabs); F(allocations); F(frees); F(high_mark); F(grown); F(reaped);
    F(errors); F(ctor_failures); F(magazine_size); F(batchcount); F(alloc_hit); F(alloc_miss);
    F(free_hit); F(free_miss); F(depot_exchanges); F(depot_full); F(depot_empty);
    F(magazine_objs); F(depot_overflows); F(depot_objs); F(depot_limit); F(flags);
#undef F
    assert_int_equal(st.active_objs, 9);
    assert_non_null(strstr(obj, "\"internal\":false}"));
    assert_non_null(strstr(text, "\"name\":\"slab_cache\""));

    slab_memory_info_t m;
    assert_int_equal(slab_memory_info(&m), 0);
    const char *mem = strstr(text, "\"memory\":{");
    assert_non_null(mem);
#define M(field) assert_int_equal(json_field(mem, #field), (unsigned long long)m.field)
    M(mapped_bytes); M(arena_bytes); M(metadata_bytes); M(huge_bytes); M(huge_mappings);
    M(resident_bytes); M(free_bytes); M(free_dirty_bytes); M(in_use_bytes); M(object_bytes);
    M(run_bytes); M(pages_bytes); M(slab_bytes);
#undef M
    slab_buddy_info_t bi = test_buddy();
    const char *buddy = strstr(text, "\"buddy\":{\"nr_free\":[");
    assert_non_null(buddy);
    buddy += strlen("\"buddy\":{\"nr_free\":[");
    for (unsigned o = 0; o <= SLAB_MAX_ORDER; o++) {
        char *e;
        assert_int_equal(strtoull(buddy, &e, 10), bi.nr_free[o]);
        buddy = e + 1;
    }
    assert_int_equal(json_field(buddy, "arenas"), bi.arenas);

    /* the checker itself rejects what it should */
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\":\"\x01\"}"));
    assert_false(json_valid("[1 2]"));
    assert_true(json_valid(" {\"a\":[1,-2.5e3,true,null,{}]} "));

    for (size_t i = 0; i < 9; i++)
        slab_cache_free(c, objs[i]);
    slab_cache_shrink(c);
    assert_int_equal(slab_cache_destroy(c), 0);
    expect_no_error();
}

/* ------------------------------------------------------------------ */
/* SLAB_STATS at exit, in a child process                               */

static int child_exit(void)
{
    slab_cache_t *c = slab_cache_create("exit-probe", 128, 0, 0, NULL, NULL, NULL);
    if (!c)
        return 2;
    for (int i = 0; i < 3; i++)
        if (!slab_cache_alloc(c))
            return 3;
    return 0; /* the three objects stay live: the report shows them */
}

/* Run this program as the exit child with SLAB_STATS=value; its stderr
 * in text. */
static void run_child(const char *value, const char *arg)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("SLAB_STATS", value, 1);
        execl(test_self_path, "test_stats", arg, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fds[0], text + n, sizeof text - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    text[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_exit_report(void **state)
{
    (void)state;
    run_child("1", "--child-exit");
    if (strncmp(text, HEADER1 HEADER2, strlen(HEADER1 HEADER2)) != 0)
        fail_msg("no slabinfo header at exit: '%.200s'", text);
    const char *line = strstr(text, "\nexit-probe ");
    assert_non_null(line);
    unsigned long active, num;
    unsigned objsize;
    assert_int_equal(sscanf(line + 1, "exit-probe %lu %lu %u", &active, &num, &objsize), 3);
    assert_int_equal(active, 3);
    assert_int_equal(objsize, 128);
    assert_non_null(strstr(text, "\nNode 0, zone  libslab "));

    run_child("json", "--child-exit");
    if (!json_valid(text))
        fail_msg("invalid JSON at exit: '%.300s'", text);
    const char *obj = strstr(text, "{\"name\":\"exit-probe\"");
    assert_non_null(obj);
    assert_int_equal(json_field(obj, "active_objs"), 3);

    run_child("0", "--child-exit");
    assert_string_equal(text, "");
}

/* ------------------------------------------------------------------ */
/* Misuse                                                               */

static void test_misuse(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(slab_info_print(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    assert_string_equal(test_err.function, "slab_info_print");
    test_errors_reset();

    errno = 0;
    assert_int_equal(slab_buddyinfo_print(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    errno = 0;
    assert_int_equal(slab_stats_json(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    errno = 0;
    assert_int_equal(slab_cache_foreach(NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    errno = 0;
    assert_int_equal(slab_memory_info(NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    slab_cache_t *c = slab_cache_create("stats-misuse", 16, 0, 0, NULL, NULL, NULL);
    assert_non_null(c);
    errno = 0;
    assert_int_equal(slab_cache_stats(c, NULL), -1);
    assert_int_equal(errno, EINVAL);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
    slab_cache_stats_t st;
    assert_int_equal(slab_cache_stats(NULL, &st), -1);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();

    /* a stream that cannot be written: -1 with the stream's errno */
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    errno = 0;
    assert_int_equal(slab_info_print(ro), -1);
    assert_int_not_equal(errno, 0);
    errno = 0;
    assert_int_equal(slab_stats_json(ro), -1);
    assert_int_not_equal(errno, 0);
    errno = 0;
    assert_int_equal(slab_buddyinfo_print(ro), -1);
    assert_int_not_equal(errno, 0);
    fclose(ro);
    expect_no_error();

    /* libslab's own caches, reached through the iterator, stay */
    struct find fd = {.name = "slab_cache"};
    slab_cache_foreach(find_one, &fd);
    assert_non_null(fd.found);
    assert_int_equal(slab_cache_destroy((slab_cache_t *)fd.found), -1);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
#ifndef SLAB_BACKEND_SLOB /* (no magazines on SLOB) */
    struct find fm = {.name = "slab_magazine_7"};
    slab_cache_foreach(find_one, &fm);
    assert_non_null(fm.found);
    assert_int_equal(slab_cache_destroy((slab_cache_t *)fm.found), -1);
    expect_one_error(SLAB_ERR_INVALID_ARG);
    test_errors_reset();
#endif
    assert_int_equal(slab_cache_destroy(c), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-exit") == 0)
        return child_exit();
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (test_find_self("test_stats") != 0)
        return 1;
    /* no automatic reap: every figure is deterministic */
    set_magazines(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_without_magazines, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_exact_with_magazines, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_memory_info, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_foreach, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_slabinfo_parsed, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_buddyinfo_parsed, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_json, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_exit_report, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_misuse, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, test_group_setup, NULL);
}
