/* The "local" connector: objects read by the same process, one memcpy
 * between two generation checks. Reference for the interface. */
#include <string.h>
#include <unistd.h>

#include "../../src/connector.h"

#define LOCAL_BLOB_LEN 12 /* u64 address, u32 pid */

static pxs_status_t local_init(pxs_conn_t *c) { (void)c; return PXS_OK; }
static void local_fini(pxs_conn_t *c) { (void)c; }
static pxs_status_t local_mem_reg(pxs_conn_t *c, pxs_object_t *o) { (void)c, (void)o; return PXS_OK; }
static void local_mem_dereg(pxs_conn_t *c, pxs_object_t *o) { (void)c, (void)o; }

static pxs_status_t local_pack(pxs_conn_t *c, const pxs_object_t *o, uint8_t *blob, size_t cap,
                               size_t *len_p)
{
    (void)c;
    if (cap < LOCAL_BLOB_LEN) return PXS_ERR_NO_RESOURCE;
    pxs_wr64(blob, (uint64_t)(uintptr_t)o->addr);
    pxs_wr32(blob + 8, (uint32_t)getpid());
    *len_p = LOCAL_BLOB_LEN;
    return PXS_OK;
}

/* What the owner must still hold for (p) to be readable here. */
static pxs_status_t local_locate(const pxs_pdesc_t *p, const pxs_objtab_t **tab_p,
                                 const uint8_t **addr_p)
{
    if (p->blob_len != LOCAL_BLOB_LEN) return PXS_ERR_CORRUPT;
    const pxs_objtab_t *tab = pxs_conn_local_table(p->owner);
    if (!tab) return (pid_t)pxs_rd32(p->blob + 8) == getpid() ? PXS_ERR_EVICTED : PXS_ERR_UNREACHABLE;
    if (p->slot >= tab->hdr->nslots) return PXS_ERR_CORRUPT;
    if (pxs__objtab_gen(tab, p->slot) != p->gen) return PXS_ERR_EVICTED;
    *tab_p = tab;
    *addr_p = (const uint8_t *)(uintptr_t)pxs_rd64(p->blob);
    return PXS_OK;
}

static pxs_status_t local_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    (void)c, (void)req;
    const pxs_objtab_t *tab;
    const uint8_t *src;
    pxs_status_t st = local_locate(p, &tab, &src);
    if (st != PXS_OK) return st;
    if (p->size) memcpy(dst, src, p->size);
    return pxs__objtab_gen(tab, p->slot) == p->gen ? PXS_OK : PXS_ERR_EVICTED;
}

static pxs_status_t local_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    (void)c;
    const pxs_objtab_t *tab;
    const uint8_t *src;
    return local_locate(p, &tab, &src);
}

static pxs_status_t local_view(pxs_conn_t *c, const pxs_pdesc_t *p, const void **data_p)
{
    (void)c;
    const pxs_objtab_t *tab;
    const uint8_t *src;
    pxs_status_t st = local_locate(p, &tab, &src);
    if (st == PXS_OK) *data_p = src;
    return st;
}

const pxs_conn_ops_t pxs_conn_local_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "local",
    .id = PXS_CONNECTOR_LOCAL,
    .caps = PXS_CAP_ZERO_COPY_PUT | PXS_CAP_VIEW,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "same process: one memcpy between generation checks",
    .init = local_init,
    .fini = local_fini,
    .mem_alloc = pxs_conn_seg_mem_alloc,
    .mem_free = pxs_conn_seg_mem_free,
    .mem_reg = local_mem_reg,
    .mem_dereg = local_mem_dereg,
    .pack_remote = local_pack,
    .get = local_get,
    .cancel = pxs_conn_noop_cancel,
    .check = local_check,
    .view = local_view,
    .view_release = pxs_conn_noop_view_release,
    .progress = pxs_conn_noop_progress,
};
