/*
 * live_format.h - the layout of the live statistics file and its one
 * reader (header only).
 *
 * A process that publishes its statistics (src/live.c, SLAB_STATS_LIVE=1
 * or slab_stats_live(1)) owns the POSIX shared-memory object
 * "/libslab.<pid>" (/dev/shm/libslab.<pid> on Linux), mode 0600, of a
 * fixed size:
 *
 *   struct slab_live_header             the process, the sequence lock, the
 *                                       memory figures, the buddy orders
 *   struct slab_live_cache[max_caches]  one record per cache, newest first
 *
 * Every field is a uint64_t (a name is 4 words of bytes), so that both
 * sides copy whole words with __atomic builtins.  The writer (one thread
 * at a time) and every reader, tools/slabtop.c and tests/test_live.c,
 * use this file, so that there is one definition of the protocol:
 *
 *   writer: s = seq; seq = s + 1 (relaxed store, then a release fence, so
 *           that no data store moves before it); data words (relaxed
 *           stores); seq = s + 2 (release store).
 *   reader: s0 = seq (acquire); retry while odd or 0 (not published yet);
 *           copy the words it needs (relaxed loads); acquire fence;
 *           s1 = seq (relaxed); the copy is good if s0 == s1.
 *
 * This is the seqlock of Boehm, "Can seqlocks get along with programming
 * language memory models?" (MSPC 2012): the data are read with relaxed
 * atomic loads, not memcpy, so that a read racing with a write is no data
 * race in the C11 model, and ThreadSanitizer (which does not model
 * fences, but never reports atomic accesses) has nothing to report.
 *
 * Invariants of a good copy (slab_live_validate() checks them): every
 * record's seq and the header's are the copy's seq, and each record's and
 * the header's check word is slab_live_checksum() of the words before
 * it.  The copy of a record mixed from two updates fails both.
 *
 * The fields before `seq` are written once, before the first update, and
 * never change.
 */
#ifndef SLAB_LIVE_FORMAT_H
#define SLAB_LIVE_FORMAT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define SLAB_LIVE_MAGIC 0x314556494c424c53ull /* "SLBLIVE1" little-endian */
#define SLAB_LIVE_VERSION 1
#define SLAB_LIVE_MAX_CACHES 512
#define SLAB_LIVE_NAME_WORDS 4 /* 32 bytes, as SLAB_NAME_MAX */
#define SLAB_LIVE_ORDERS 11    /* SLAB_MAX_ORDER + 1 */
#define SLAB_LIVE_PREFIX "/libslab."
#define SLAB_LIVE_INTERNAL 1u  /* slab_live_cache.flags: libslab's own cache */

struct slab_live_header {
    /* written once, before the first update */
    uint64_t magic;        /* SLAB_LIVE_MAGIC */
    uint64_t version;      /* SLAB_LIVE_VERSION */
    uint64_t file_size;    /* bytes of the object */
    uint64_t header_size;  /* sizeof(struct slab_live_header) */
    uint64_t record_size;  /* sizeof(struct slab_live_cache) */
    uint64_t max_caches;   /* records there is room for */
    uint64_t pid;
    uint64_t uid;          /* effective uid of the publisher */
    uint64_t interval_ms;  /* refresh period */
    uint64_t page_size;
    /* the sequence lock: odd while an update is written; updates = seq / 2 */
    uint64_t seq;
    /* written under the sequence lock */
    uint64_t copy_seq;     /* the seq this update ends with */
    uint64_t time_ns;      /* CLOCK_REALTIME at the update */
    uint64_t mono_ns;      /* CLOCK_MONOTONIC at the update */
    uint64_t nr_caches;    /* records filled */
    uint64_t caches_total; /* caches in the process */
    uint64_t caches_omitted; /* caches_total - nr_caches: no room */
    uint64_t missed;       /* updates skipped (the cache list stayed locked) */
    /* slab_memory_info_t */
    uint64_t mapped_bytes, arena_bytes, metadata_bytes, huge_bytes, huge_mappings;
    uint64_t resident_bytes, free_bytes, free_dirty_bytes, in_use_bytes;
    uint64_t object_bytes, run_bytes, pages_bytes, slab_bytes;
    uint64_t nr_free[SLAB_LIVE_ORDERS]; /* free buddy blocks per order */
    uint64_t check;        /* slab_live_checksum(&seq .. before check) */
};

struct slab_live_cache {
    uint64_t seq;          /* the update's seq, as the header's copy_seq */
    uint64_t name[SLAB_LIVE_NAME_WORDS]; /* NUL-terminated bytes */
    uint64_t object_size, stride, align, objs_per_slab, pages_per_slab;
    uint64_t active_objs, total_objs, active_slabs, total_slabs;
    uint64_t allocations, frees, high_mark, grown, reaped, errors;
    uint64_t magazine_size, batchcount, magazine_objs, depot_objs;
    uint64_t alloc_hit, alloc_miss, free_hit, free_miss;
    uint64_t flags;        /* SLAB_LIVE_INTERNAL */
    uint64_t check;        /* slab_live_checksum() of the words before it */
};

#define SLAB_LIVE_HEADER_WORDS (sizeof(struct slab_live_header) / 8)
#define SLAB_LIVE_RECORD_WORDS (sizeof(struct slab_live_cache) / 8)
/* the words under the sequence lock: from copy_seq to check */
#define SLAB_LIVE_HEADER_FIRST (offsetof(struct slab_live_header, copy_seq) / 8)
#define SLAB_LIVE_HEADER_CHECK (offsetof(struct slab_live_header, check) / 8)
#define SLAB_LIVE_SEQ_WORD (offsetof(struct slab_live_header, seq) / 8)

/* Header, then records, rounded up to 4 KiB. */
#define SLAB_LIVE_FILE_SIZE                                                        \
    ((sizeof(struct slab_live_header) +                                              \
      (size_t)SLAB_LIVE_MAX_CACHES * sizeof(struct slab_live_cache) + 4095) &        \
     ~(size_t)4095)

union slab_live_header_words {
    struct slab_live_header h;
    uint64_t w[SLAB_LIVE_HEADER_WORDS];
};

union slab_live_record_words {
    struct slab_live_cache c;
    uint64_t w[SLAB_LIVE_RECORD_WORDS];
};

_Static_assert(sizeof(struct slab_live_header) % 8 == 0, "header of whole words");
_Static_assert(sizeof(struct slab_live_cache) % 8 == 0, "record of whole words");

/* A consistent copy: the header and its nr_caches records. */
struct slab_live_snapshot {
    union slab_live_header_words hdr;
    union slab_live_record_words rec[SLAB_LIVE_MAX_CACHES];
    unsigned tries;        /* attempts the copy took */
};

/* The check word of n words: a 64-bit multiply-xorshift mix, order
 * dependent, so a word from another update changes it. */
static inline uint64_t slab_live_checksum(const uint64_t *w, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h;
}

/* The object's name for a pid, e.g. "/libslab.1234" (buf: 32 bytes),
 * made without snprintf, so that the library can use it anywhere. */
static inline void slab_live_name(char *buf, long pid)
{
    char digits[24];
    size_t n = 0;
    unsigned long v = pid < 0 ? 0 : (unsigned long)pid;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t len = sizeof SLAB_LIVE_PREFIX - 1;
    memcpy(buf, SLAB_LIVE_PREFIX, len);
    while (n)
        buf[len++] = digits[--n];
    buf[len] = '\0';
}

/* A record's name as a C string (its words copied into buf[32]). */
static inline const char *slab_live_cache_name(const struct slab_live_cache *c, char *buf)
{
    memcpy(buf, c->name, SLAB_LIVE_NAME_WORDS * 8);
    buf[SLAB_LIVE_NAME_WORDS * 8 - 1] = '\0';
    return buf;
}

static inline void slab_live_copy_words(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/*
 * Copy a consistent snapshot out of the mapping at `map` (`size` bytes),
 * trying at most max_tries times (yielding a little between tries).
 * Returns 0; or -1 with errno EPROTO (not this layout: magic, version or
 * sizes differ), EAGAIN (nothing published yet, or no consistent copy in
 * max_tries: the writer kept updating or stopped in the middle).
 */
static inline int slab_live_read(const void *map, size_t size, struct slab_live_snapshot *out,
                                 unsigned max_tries)
{
    if (size < sizeof(struct slab_live_header)) {
        errno = EPROTO;
        return -1;
    }
    const uint64_t *w = (const uint64_t *)map;
    for (unsigned t = 1; t <= max_tries; t++) {
        if (t > 1) {
            struct timespec ts = {0, t < 10 ? 10000 : 1000000}; /* 10 us, then 1 ms */
            nanosleep(&ts, NULL);
        }
        uint64_t s0 = __atomic_load_n(&w[SLAB_LIVE_SEQ_WORD], __ATOMIC_ACQUIRE);
        if (s0 == 0 || (s0 & 1))
            continue;
        slab_live_copy_words(out->hdr.w, w, SLAB_LIVE_HEADER_WORDS);
        const struct slab_live_header *h = &out->hdr.h;
        if (h->magic != SLAB_LIVE_MAGIC || h->version != SLAB_LIVE_VERSION ||
            h->header_size != sizeof(struct slab_live_header) ||
            h->record_size != sizeof(struct slab_live_cache) ||
            h->max_caches > SLAB_LIVE_MAX_CACHES || h->file_size > size ||
            h->header_size + h->max_caches * h->record_size > size) {
            errno = EPROTO;
            return -1;
        }
        uint64_t n = h->nr_caches < h->max_caches ? h->nr_caches : h->max_caches;
        for (uint64_t i = 0; i < n; i++)
            slab_live_copy_words(out->rec[i].w,
                                 w + SLAB_LIVE_HEADER_WORDS + i * SLAB_LIVE_RECORD_WORDS,
                                 SLAB_LIVE_RECORD_WORDS);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t s1 = __atomic_load_n(&w[SLAB_LIVE_SEQ_WORD], __ATOMIC_RELAXED);
        if (s0 != s1)
            continue;
        out->hdr.h.seq = s0; /* the copy of seq taken before the others */
        out->tries = t;
        return 0;
    }
    errno = EAGAIN;
    return -1;
}

/* NULL if the copy is internally consistent (see the opening comment),
 * else what is wrong with it. */
static inline const char *slab_live_validate(const struct slab_live_snapshot *s)
{
    const struct slab_live_header *h = &s->hdr.h;
    if (h->seq == 0 || (h->seq & 1))
        return "sequence number odd or zero";
    if (h->copy_seq != h->seq)
        return "header written by another update than its sequence number";
    if (h->check != slab_live_checksum(&s->hdr.w[SLAB_LIVE_SEQ_WORD],
                                       SLAB_LIVE_HEADER_CHECK - SLAB_LIVE_SEQ_WORD))
        return "header checksum differs";
    if (h->nr_caches > h->max_caches || h->nr_caches + h->caches_omitted != h->caches_total)
        return "cache counts do not add up";
    for (uint64_t i = 0; i < h->nr_caches; i++) {
        const struct slab_live_cache *c = &s->rec[i].c;
        if (c->seq != h->seq)
            return "a record from another update";
        if (c->check != slab_live_checksum(s->rec[i].w, SLAB_LIVE_RECORD_WORDS - 1))
            return "a record's checksum differs";
        if (((const char *)c->name)[SLAB_LIVE_NAME_WORDS * 8 - 1] != '\0')
            return "a name not terminated";
    }
    return NULL;
}

#endif /* SLAB_LIVE_FORMAT_H */
