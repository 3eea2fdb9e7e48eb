/*
 * kernel.c - libslab in a kernel: all of it, compiled freestanding
 * (-ffreestanding -nostdinc) and linked with libslab-freestanding.a.
 * The board gives RAM and a console (examples/board.c plays one on Linux).
 */
#include <stddef.h>
#include <stdint.h>

#include <slab.h>
#include <slab/host.h>
#include <slab/linux.h>

extern char board_ram[];                        /* from the board */
extern const size_t board_ram_size;
void board_console(const char *text, size_t len);

static void console(const char *text, size_t len, void *arg) { (void)arg, board_console(text, len); }
static void report(const char *line, void *ctx)
{
    size_t n = 0;
    while (line[n])
        n++;
    console(line, n, ctx);
}

struct task { uint32_t magic, pid; struct task *parent; };
static void task_ctor(void *obj) { ((struct task *)obj)->magic = 0x7a5c; }

int kernel_main(void)
{
    slab_host_t host = {.report = report};      /* one CPU, libslab's spinlock */
    if (slab_set_host(&host) != 0 || slab_add_region(board_ram, board_ram_size) == 0)
        return 1;

    struct kmem_cache *tasks = kmem_cache_create("task", sizeof(struct task), 0,
                                                 SLAB_HWCACHE_ALIGN, task_ctor);
    struct task *t[100];
    for (int i = 0; i < 100; i++) {
        t[i] = kmem_cache_alloc(tasks, GFP_KERNEL);
        if (!t[i] || t[i]->magic != 0x7a5c)         /* constructed */
            return 2;
        t[i]->pid = (uint32_t)i;
    }
    char *buf = kmalloc(1000, GFP_KERNEL);
    if (!buf || ksize(buf) < 1000)
        return 3;
    kfree(buf);
    for (int i = 0; i < 100; i++)
        kmem_cache_free(tasks, t[i]);
    slab_info_write(console, NULL);             /* /proc/slabinfo's lines */
    kmem_cache_destroy(tasks);
    report("kernel: ok\n", NULL);
    return 0;
}
