/*
 * qcow2 metadata caches: small LRU sets of whole clusters (L2 tables,
 * refcount blocks). Write-through: callers write their changes to the file
 * themselves, in the order docs/qcow2.md "Write ordering" gives, so the
 * cache never holds anything the file does not.
 */
#include "qemu/osdep.h"

#include "qcow2.h"

void qcow2_cache_init(Qcow2Cache *c, const char *what, int nb,
                      size_t table_size)
{
    c->what = what;
    c->nb = nb;
    c->table_size = table_size;
    c->lru_counter = 0;
    /*
     * A slot's table is allocated when the slot is first filled: a TPM
     * image has one or two L2 tables and refcount blocks, and the slots it
     * never uses would still cost resident memory (malloc writes a header
     * into every page of a run of table-sized chunks).
     */
    c->entries = g_new0(Qcow2CacheEntry, nb);
}

static void qcow2_cache_fill_slot(Qcow2Cache *c, Qcow2CacheEntry *e)
{
    if (!e->data) {
        e->data = g_malloc(c->table_size);
    }
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    for (int i = 0; i < c->nb; i++) {
        g_free(c->entries[i].data);
    }
    g_free(c->entries);
    c->entries = NULL;
    c->nb = 0;
}

static Qcow2CacheEntry *qcow2_cache_find(Qcow2Cache *c, uint64_t offset)
{
    for (int i = 0; i < c->nb; i++) {
        if (c->entries[i].offset == offset) {
            return &c->entries[i];
        }
    }
    return NULL;
}

static Qcow2CacheEntry *qcow2_cache_victim(Qcow2Cache *c)
{
    Qcow2CacheEntry *victim = &c->entries[0];

    for (int i = 0; i < c->nb; i++) {
        if (c->entries[i].offset == 0) {
            return &c->entries[i];
        }
        if (c->entries[i].lru < victim->lru) {
            victim = &c->entries[i];
        }
    }
    return victim;
}

uint8_t *qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset,
                         bool fresh, GError **errp)
{
    Qcow2CacheEntry *e = qcow2_cache_find(c, offset);

    if (!e) {
        e = qcow2_cache_victim(c);
        e->offset = 0;
        qcow2_cache_fill_slot(c, e);
        if (fresh) {
            memset(e->data, 0, c->table_size);
        } else if (bdrv_file_pread(bs, offset, c->table_size, e->data,
                                   errp) < 0) {
            return NULL;
        }
        e->offset = offset;
    } else if (fresh) {
        memset(e->data, 0, c->table_size);
    }
    e->lru = ++c->lru_counter;
    return e->data;
}

void qcow2_cache_put(Qcow2Cache *c, uint64_t offset, const uint8_t *data)
{
    Qcow2CacheEntry *e = qcow2_cache_find(c, offset);

    if (!e) {
        e = qcow2_cache_victim(c);
        qcow2_cache_fill_slot(c, e);
    }
    memcpy(e->data, data, c->table_size);
    e->offset = offset;
    e->lru = ++c->lru_counter;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e = qcow2_cache_find(c, offset);

    if (e) {
        e->offset = 0;
        e->lru = 0;
    }
}

void qcow2_cache_clear(Qcow2Cache *c)
{
    for (int i = 0; i < c->nb; i++) {
        c->entries[i].offset = 0;
        c->entries[i].lru = 0;
    }
}
