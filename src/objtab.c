#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "pxs_int.h"

size_t pxs__objtab_size(uint32_t nslots)
{
    return sizeof(pxs_tab_hdr_t) + (size_t)nslots * sizeof(uint64_t);
}

pxs_status_t pxs__objtab_create(pxs_objtab_t *t, const char *name, uint32_t nslots,
                                uint64_t owner, uint32_t pid, uint64_t start)
{
    memset(t, 0, sizeof *t);
    size_t len = pxs__objtab_size(nslots);
    void *base;
    pxs_status_t st = pxs__seg_create(name, len, &base);
    if (st != PXS_OK) return st;
    t->hdr = base;
    t->gens = (_Atomic uint64_t *)(t->hdr + 1);
    t->map_len = len;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->hdr->owner_id = owner;
    t->hdr->pid = pid;
    t->hdr->start_time = start;
    t->hdr->nslots = nslots;
    atomic_store(&t->hdr->closed, 0);
    /* Readers check the magic last written: the header is complete then. */
    atomic_thread_fence(memory_order_release);
    t->hdr->magic = PXS_TAB_MAGIC;
    return PXS_OK;
}

pxs_status_t pxs__objtab_open(pxs_objtab_t *t, const char *name, uint64_t owner)
{
    memset(t, 0, sizeof *t);
    void *base;
    size_t len;
    pxs_status_t st = pxs__seg_map_ro(name, &base, &len);
    if (st != PXS_OK) return st;
    pxs_tab_hdr_t *h = base;
    if (len < sizeof *h || h->magic != PXS_TAB_MAGIC || h->owner_id != owner ||
        len < pxs__objtab_size(h->nslots)) {
        munmap(base, len);
        return PXS_ERR_UNREACHABLE;
    }
    t->hdr = h;
    t->gens = (_Atomic uint64_t *)(h + 1);
    t->map_len = len;
    return PXS_OK;
}

void pxs__objtab_close(pxs_objtab_t *t, int unlink_it)
{
    if (!t->hdr) return;
    if (unlink_it && t->name[0]) pxs__seg_unlink(t->name);
    munmap(t->hdr, t->map_len);
    memset(t, 0, sizeof *t);
}
