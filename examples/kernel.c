/*
 * kernel.c - libslab in a kernel: the whole of what one needs.
 *
 * Compiled freestanding (-ffreestanding -nostdinc, the compiler's own
 * headers only) and linked with libslab-freestanding.a.  The "board"
 * gives two things, as a real kernel's platform code would: its RAM and a
 * console (examples/board.c plays them on Linux).  Everything else is
 * here: hooks, the region, a cache of constructed objects, kmalloc.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slab.h>
#include <slab/host.h>
#include <slab/linux.h>

/* from the board */
extern char board_ram[];
extern const size_t board_ram_size;
void board_console(const char *text, size_t len);
_Noreturn void board_halt(int code);

static void console_line(const char *line, void *ctx)
{
    (void)ctx;
    size_t n = 0;
    while (line[n])
        n++;
    board_console(line, n);
}

static void panic(const char *why, void *ctx)
{
    console_line(why, ctx);
    board_halt(2);
}

static void slabinfo_out(const char *text, size_t len, void *arg)
{
    (void)arg;
    board_console(text, len);
}

/* A kernel object with a constructed part that survives free. */
struct task {
    uint32_t magic;
    uint32_t pid;
    struct task *parent;
};

static void task_ctor(void *obj)
{
    ((struct task *)obj)->magic = 0x7a5c;
}

static struct kmem_cache *task_cache;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            console_line("kernel: check failed: " #cond "\n", NULL);          \
            board_halt(1);                                                    \
        }                                                                     \
    } while (0)

int kernel_main(void)
{
    /* 1. hooks: one CPU, libslab's own spinlock; reports to the console */
    slab_host_t host = {.report = console_line, .panic = panic};
    CHECK(slab_set_host(&host) == 0);

    /* 2. memory: the board's RAM */
    CHECK(slab_add_region(board_ram, board_ram_size) > 0);

    /* 3. caches and kmalloc, as in Linux */
    task_cache = kmem_cache_create("task", sizeof(struct task), 0, SLAB_HWCACHE_ALIGN,
                                   task_ctor);
    CHECK(task_cache != NULL);
    struct task *t[100];
    for (int i = 0; i < 100; i++) {
        t[i] = kmem_cache_alloc(task_cache, GFP_KERNEL);
        CHECK(t[i] != NULL && t[i]->magic == 0x7a5c);
        t[i]->pid = (uint32_t)i;
    }
    char *buf = kmalloc(1000, GFP_KERNEL);
    CHECK(buf != NULL && ksize(buf) >= 1000);
    kfree(buf);
    for (int i = 0; i < 100; i++)
        kmem_cache_free(task_cache, t[i]);

    /* 4. what it looks like: /proc/slabinfo's format on the console */
    slab_info_write(slabinfo_out, NULL);
    kmem_cache_destroy(task_cache);
    console_line("kernel: ok\n", NULL);
    return 0;
}
