/*
 * fork.c - a consistent heap in the child of fork().
 *
 * Before fork every libslab lock is taken, in the one order the rest of
 * the library nests them (kmalloc class creation, caches list, thread caches, each cache's depot
 * then slab lock, buddy, arena map, page source, report hook), so no lock is held
 * mid-update by a thread that will not exist in the child.  The parent
 * releases them; the child releases them too and then returns the
 * magazines of every other (now vanished) thread to the depots, and
 * forgets the parent's live statistics object (live.c).
 */
#include "internal.h"

#include <pthread.h>

static void prepare(void)
{
    kmalloc_fork_prepare();
    cache_fork_prepare(); /* caches list, then tcache, depots and caches */
    buddy_fork_prepare();
    map_fork_prepare();
    page_source_fork_prepare();
    report_fork_prepare();
}

static void parent(void)
{
    report_fork_parent();
    page_source_fork_parent();
    map_fork_parent();
    buddy_fork_parent();
    cache_fork_parent();
    kmalloc_fork_parent();
}

static void child(void)
{
    report_fork_parent();
    page_source_fork_parent();
    map_fork_parent();
    buddy_fork_parent();
    cache_fork_parent();
    kmalloc_fork_parent();
    tcache_fork_child();
    live_fork_child();
}

void fork_boot(void)
{
    pthread_atfork(prepare, parent, child);
}
