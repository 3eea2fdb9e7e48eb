/*
 * scripts/consumer/consumer.c - owns the install check's consumer program:
 * it includes the installed headers (<slab.h> and <slab/linux.h>), makes a
 * cache with a constructor, allocates, frees, shrinks and destroys it, and
 * prints "consumer: ok" when the installed library behaves.  Built both by
 * CMake (find_package) and by cc with pkg-config flags in scripts/test.sh.
 */
#include <stdio.h>
#include <string.h>

#include <slab.h>
#include <slab/linux.h>

struct item {
    int value;
    char name[60];
};

static int ctor_calls;

static int item_ctor(void *obj, void *arg)
{
    struct item *it = obj;
    (void)arg;
    it->value = 42;
    memset(it->name, 0, sizeof it->name);
    ctor_calls++;
    return 0;
}

static void kernel_style_ctor(void *obj)
{
    memset(obj, 0x5a, sizeof(struct item));
}

int main(void)
{
    int bad = 0;
    slab_cache_t *c = slab_cache_create("consumer_item", sizeof(struct item),
                                        0, 0, item_ctor, NULL, NULL);
    if (!c) {
        fprintf(stderr, "consumer: slab_cache_create failed\n");
        return 1;
    }
    void *objs[100];
    for (int i = 0; i < 100; i++) {
        objs[i] = slab_cache_alloc(c);
        if (!objs[i] || ((struct item *)objs[i])->value != 42 ||
            slab_owner(objs[i]) != c) {
            fprintf(stderr, "consumer: bad object %d\n", i);
            bad = 1;
            break;
        }
    }
    for (int i = 0; i < 100 && objs[i]; i++)
        slab_cache_free(c, objs[i]);
    slab_cache_shrink(c);
    if (slab_cache_destroy(c) != 0) {
        fprintf(stderr, "consumer: slab_cache_destroy failed\n");
        bad = 1;
    }
    if (ctor_calls < 100) {
        fprintf(stderr, "consumer: constructor ran %d times\n", ctor_calls);
        bad = 1;
    }

    /* The Linux-compatible layer from the installed <slab/linux.h>. */
    struct kmem_cache *k = kmem_cache_create("consumer_kmem", sizeof(struct item),
                                             0, 0, kernel_style_ctor);
    if (!k) {
        fprintf(stderr, "consumer: kmem_cache_create failed\n");
        return 1;
    }
    unsigned char *p = kmem_cache_alloc(k, GFP_KERNEL);
    if (!p || p[0] != 0x5a) {
        fprintf(stderr, "consumer: kmem_cache_alloc failed\n");
        bad = 1;
    }
    kmem_cache_free(k, p);
    unsigned long page = get_zeroed_page(GFP_KERNEL);
    if (!page || ((unsigned char *)page)[100] != 0) {
        fprintf(stderr, "consumer: get_zeroed_page failed\n");
        bad = 1;
    }
    free_page(page);
    kmem_cache_destroy(k);

    if (slab_verify() != 0)
        bad = 1;
    printf("consumer: %s\n", bad ? "FAILED" : "ok");
    return bad;
}
