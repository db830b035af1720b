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

/* Find the owner's table and the bytes. On PXS_OK the owner's context is
 * held (it cannot be finalized) until pxs__conn_local_release. */
static pxs_status_t local_locate(const pxs_pdesc_t *p, const pxs_objtab_t **tab_p,
                                 const uint8_t **addr_p)
{
    if (p->blob_len != LOCAL_BLOB_LEN) return PXS_ERR_CORRUPT;
    const pxs_objtab_t *tab = pxs__conn_local_acquire(p->owner);
    if (!tab) return (pid_t)pxs_rd32(p->blob + 8) == getpid() ? PXS_ERR_EVICTED : PXS_ERR_UNREACHABLE;
    pxs_status_t st = PXS_OK;
    if (p->slot >= tab->hdr->nslots) st = PXS_ERR_CORRUPT;
    else if (pxs__objtab_gen(tab, p->slot) != p->gen) st = PXS_ERR_EVICTED;
    if (st != PXS_OK) {
        pxs__conn_local_release();
        return st;
    }
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
    st = pxs__objtab_still(tab, p->slot, p->gen) ? PXS_OK : PXS_ERR_EVICTED;
    pxs__conn_local_release();
    return st;
}

static pxs_status_t local_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    (void)c;
    const pxs_objtab_t *tab;
    const uint8_t *src;
    pxs_status_t st = local_locate(p, &tab, &src);
    if (st == PXS_OK) pxs__conn_local_release();
    return st;
}

/* A view of a local object points at the owner's buffer; like every view,
 * it is valid while the owner keeps the object (pxs_view_valid tells). */
static pxs_status_t local_view(pxs_conn_t *c, const pxs_pdesc_t *p, const void **data_p)
{
    (void)c;
    const pxs_objtab_t *tab;
    const uint8_t *src;
    pxs_status_t st = local_locate(p, &tab, &src);
    if (st != PXS_OK) return st;
    *data_p = src;
    pxs__conn_local_release();
    return PXS_OK;
}

const pxs_conn_ops_t pxs__conn_local_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "local",
    .id = PXS_CONNECTOR_LOCAL,
    .caps = PXS_CAP_ZERO_COPY_PUT | PXS_CAP_VIEW,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "same process: one memcpy between generation checks",
    .init = local_init,
    .fini = local_fini,
    .mem_alloc = pxs__conn_seg_mem_alloc,
    .mem_free = pxs__conn_seg_mem_free,
    .mem_reg = local_mem_reg,
    .mem_dereg = local_mem_dereg,
    .pack_remote = local_pack,
    .get = local_get,
    .cancel = pxs__conn_noop_cancel,
    .check = local_check,
    .view = local_view,
    .view_release = pxs__conn_noop_view_release,
    .progress = pxs__conn_noop_progress,
};
