/*
 * footprint.c - what a small heap costs: the same workload in a 1 MiB
 * region on whichever backend libslab was built with (slab or SLOB).
 *
 * The region is a static array given with slab_add_region(); the page
 * source refuses everything, so the region is all the memory there is.
 * Workload: objects of 16..512 bytes (sizes from a fixed seed, uniform),
 * allocated with slab_malloc() (kmalloc).  Two figures:
 *
 *   fixed N   N objects (--objects, default 3000) allocated and live:
 *             bytes asked for, bytes of pages in use (the allocator's
 *             own internal caches included), descriptors carved from the
 *             region, the address map outside it (hosted builds only:
 *             a freestanding build's map is a small static table), and
 *             waste = pages in use - bytes asked for;
 *   largest   objects allocated until the first NULL: how many, and the
 *             bytes asked for, as a share of the region.
 *
 * One line of key=value pairs per figure, for bench/footprint.sh.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slab.h>

#define REGION (1u << 20)
#define MAX_OBJS 200000

/* aligned to its size, so it lies in one 4 MiB window: one set of descriptors */
static char region[REGION] __attribute__((aligned(REGION)));
static void *objs[MAX_OBJS];

static void *refuse_map(void *ctx, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    return NULL;
}
static void refuse_unmap(void *ctx, void *addr, size_t size) { (void)ctx, (void)addr, (void)size; }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static size_t next_size(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return 16 + (size_t)(rng % (512 - 16 + 1));
}

static size_t used_bytes(void)
{
    slab_buddy_info_t bi;
    slab_buddy_info(&bi);
    return (bi.total_pages - bi.free_pages) * SLAB_PAGE_SIZE;
}

int main(int argc, char **argv)
{
    size_t n = 3000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--objects") && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--objects N]\n", argv[0]);
            return 2;
        }
    }
    const slab_page_source_t none = {.map = refuse_map, .unmap = refuse_unmap};
    slab_set_page_source(&none);
    size_t pages_bytes = slab_add_region(region, sizeof region);
    if (!pages_bytes) {
        fprintf(stderr, "footprint: slab_add_region failed\n");
        return 1;
    }
    size_t meta = sizeof region - pages_bytes; /* descriptors carved from the region */
    size_t base = used_bytes();

    size_t asked = 0, got = 0;
    for (; got < n && got < MAX_OBJS; got++) {
        size_t s = next_size();
        objs[got] = slab_malloc(s);
        if (!objs[got])
            break;
        memset(objs[got], 0xab, s);
        asked += s;
    }
    size_t used = used_bytes();
    slab_memory_info_t m;
    slab_memory_info(&m);
    /* the address map's nodes of a hosted build: outside the region */
    size_t map = m.metadata_bytes > meta ? m.metadata_bytes - meta : 0;
    printf("figure=fixed objects=%zu held=%zu asked=%zu pages_in_use=%zu before=%zu "
           "descriptors=%zu map=%zu waste=%zu\n",
           n, got, asked, used, base, meta, map, used > asked ? used - asked : 0);

    /* the largest workload: go on until the region is full */
    size_t more = got, asked_all = asked;
    while (more < MAX_OBJS) {
        size_t s = next_size();
        void *p = slab_malloc(s);
        if (!p)
            break;
        objs[more++] = p;
        asked_all += s;
    }
    printf("figure=largest objects=%zu asked=%zu region=%zu share=%.1f%%\n", more, asked_all,
           (size_t)REGION, 100.0 * (double)asked_all / REGION);
    for (size_t i = 0; i < more; i++)
        slab_free(objs[i]);
    return got < n ? 1 : 0;
}
