/*
 * slob.h - the SLOB backend's geometry and its debugging interface.
 *
 * slob.c carves single pages into SLOB_UNIT-byte units.  The constants
 * here are the ones its tests need to reason about placement; the
 * functions let a test look at a page's free list as slob.c keeps it,
 * without poking memory blindly.  Only built with -DSLAB_BACKEND=slob.
 */
#ifndef SLAB_SLOB_H
#define SLAB_SLOB_H

#include "internal.h"

typedef int16_t slob_t;                  /* one unit, and the encoding's word */
#define SLOB_UNIT ((size_t)sizeof(slob_t))
#define SLOB_PAGE_UNITS (PAGE_SIZE / SLOB_UNIT)

/* The three lists of partially free pages, by request size in bytes
 * (kmalloc requests counted with their header). */
enum { SLOB_LIST_SMALL, SLOB_LIST_MEDIUM, SLOB_LIST_LARGE, SLOB_LISTS };
#define SLOB_BREAK_SMALL 256
#define SLOB_BREAK_MEDIUM 1024

/* The header before every slab_malloc() block that fits in a page. */
#define SLOB_KM_HDR 16
/* The largest slab_malloc() request served from SLOB pages. */
#define SLOB_KM_MAX (PAGE_SIZE - SLOB_KM_HDR)

/* One free block: where (in units from the page start), how long, and
 * the first two units as stored in it (raw[1] is meaningless for a
 * one-unit block). */
struct slob_block_info {
    unsigned off, units;
    slob_t raw[2];
};

#define SLOB_INFO_BLOCKS 64
struct slob_page_info {
    void *page;                      /* the page's address */
    int list;                        /* SLOB_LIST_* the page belongs to */
    bool listed;                     /* on that list now */
    unsigned units_free;             /* the descriptor's count */
    unsigned nblocks;                /* free blocks (the first
                                        SLOB_INFO_BLOCKS are in blocks[]) */
    struct slob_block_info blocks[SLOB_INFO_BLOCKS];
};

/* The free list of the SLOB page holding addr: 0, or -1 with errno
 * EINVAL when addr is not in a SLOB page. */
int slob_page_info(const void *addr, struct slob_page_info *out);
/* Pages on each list now. */
void slob_list_pages(size_t out[SLOB_LISTS]);

#endif /* SLAB_SLOB_H */
