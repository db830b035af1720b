/* Zero-copy views: a pointer to bytes already mapped here. */
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

struct pxs_view {
    pxs_context_t *ctx;
    const void *data;
    size_t size;
    pxs_conn_t *conn;     /* NULL for inline copies */
    pxs_pdesc_t desc;     /* for pxs_view_valid; blob points at blob[] */
    uint8_t blob[PXS_WIRE_BLOB_MAX];
    uint8_t inline_copy[];/* inline bytes (the caller's proxy may go away) */
};

pxs_status_t pxs_view_acquire(pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_view_t **view_p)
{
    if (!view_p) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__proxy_check(ctx, proxy, &d);
    if (st != PXS_OK) return st;
    size_t extra = (d.flags & PXS_WF_INLINE) ? (size_t)d.size : 0;
    pxs_view_t *v = malloc(sizeof *v + extra);
    if (!v) return PXS_ERR_NO_MEMORY;
    v->ctx = ctx;
    v->size = (size_t)d.size;
    v->desc = d;
    /* The caller's proxy may go away: keep our own copy of the blob. */
    memcpy(v->blob, d.blob, d.blob_len);
    v->desc.blob = v->blob;
    v->desc.data = NULL;
    if (d.flags & PXS_WF_INLINE) {
        if (extra) memcpy(v->inline_copy, d.data, extra);
        v->data = v->inline_copy;
        v->conn = NULL;
        *view_p = v;
        return PXS_OK;
    }
    pxs__lock(ctx);
    st = pxs__conn_get(ctx, d.connector, &v->conn);
    pxs__unlock(ctx);
    if (st == PXS_OK) st = v->conn->ops->view(v->conn, &d, &v->data);
    if (st != PXS_OK) {
        free(v);
        return st;
    }
    *view_p = v;
    return PXS_OK;
}

const void *pxs_view_data(const pxs_view_t *v) { return v ? v->data : NULL; }
size_t pxs_view_size(const pxs_view_t *v) { return v ? v->size : 0; }

pxs_status_t pxs_view_valid(const pxs_view_t *v)
{
    if (!v) return PXS_ERR_INVALID_PARAM;
    if (!v->conn) return PXS_OK;
    return v->conn->ops->check(v->conn, &v->desc);
}

void pxs_view_release(pxs_view_t *v)
{
    if (!v) return;
    if (v->conn) v->conn->ops->view_release(v->conn, &v->desc);
    free(v);
}
