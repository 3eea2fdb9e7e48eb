/*
 * freestanding_host.h - the test host of libslab-freestanding.a
 * (freestanding_host.c): its memory and counts of its hook calls.
 */
#ifndef FREESTANDING_HOST_H
#define FREESTANDING_HOST_H

#include <stddef.h>

#include <slab.h>

/* The machine's memory: 64 MiB (the region is all of it but a page at
 * each end). */
#define FREESTANDING_RAM_BYTES ((size_t)64 << 20)

enum fs_hook { FS_LOCK, FS_CPU, FS_REPORT, FS_HOOK_KINDS };

unsigned long freestanding_host_calls(enum fs_hook k);
void *freestanding_host_ram(size_t *len);
/* slab_buddy_info() right after the region was added. */
const slab_buddy_info_t *freestanding_host_initial(void);
/* The page source the host installs (a second static array). */
extern const slab_page_source_t freestanding_host_pool;

#endif
