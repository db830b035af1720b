/* Handles: a proxy validated once, its object read many times. */
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

struct pxs_handle {
    pxs_context_t *ctx;
    pxs_conn_t *conn;    /* NULL for inline objects */
    void *state;         /* the connector's, from ops->open */
    pxs_pdesc_t desc;    /* blob and data point into proxy below */
    pxs_proxy_t proxy;   /* our copy: the caller's may go away */
};

pxs_status_t pxs_handle_open(pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_handle_t **h_p)
{
    if (!h_p) return PXS_ERR_INVALID_PARAM;
    *h_p = NULL;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__proxy_check(ctx, proxy, &d);
    if (st != PXS_OK) return st;
    pxs_handle_t *h = calloc(1, sizeof *h);
    if (!h) return PXS_ERR_NO_MEMORY;
    h->ctx = ctx;
    memcpy(h->proxy.bytes, proxy->bytes, d.total_len);
    h->desc = d;
    h->desc.blob = h->proxy.bytes + (d.blob - proxy->bytes);
    if (d.data) h->desc.data = h->proxy.bytes + (d.data - proxy->bytes);
    if (!(d.flags & PXS_WF_INLINE)) {
        pxs__lock(ctx);
        st = pxs__conn_get(ctx, d.connector, &h->conn);
        pxs__unlock(ctx);
        if (st == PXS_OK && h->conn->ops->open)
            st = h->conn->ops->open(h->conn, &h->desc, &h->state);
        if (st != PXS_OK) {
            free(h);
            return st;
        }
    }
    *h_p = h;
    return PXS_OK;
}

size_t pxs_handle_size(const pxs_handle_t *h) { return h ? (size_t)h->desc.size : 0; }

pxs_status_t pxs_handle_read(pxs_handle_t *h, uint64_t offset, void *dst, size_t len)
{
    if (!h || (len && !dst) || offset > h->desc.size || len > h->desc.size - offset)
        return PXS_ERR_INVALID_PARAM;
    const pxs_pdesc_t *d = &h->desc;
    if (!len) return PXS_OK; /* nothing to read: the owner is not asked */
    if (!h->conn) { /* inline: the bytes are in the proxy */
        memcpy(dst, d->data + offset, len);
        return PXS_OK;
    }
    if (h->conn->ops->read) {
        pxs_status_t st = h->conn->ops->read(h->conn, d, h->state, offset, dst, len);
        /* A stale object never yields bytes, even partly copied ones. */
        if (st == PXS_ERR_EVICTED) memset(dst, 0, len);
        if (st != PXS_ERR_UNSUPPORTED) return st;
    }
    /* No read op, or none for this object: the whole object, then the part. */
    if (offset == 0 && len == d->size) return pxs__resolve_desc(h->ctx, d, dst, len);
    uint8_t *all = malloc(d->size ? (size_t)d->size : 1);
    if (!all) return PXS_ERR_NO_MEMORY;
    pxs_status_t st = pxs__resolve_desc(h->ctx, d, all, (size_t)d->size);
    if (st == PXS_OK) memcpy(dst, all + offset, len);
    if (st == PXS_ERR_EVICTED) memset(dst, 0, len);
    free(all);
    return st;
}

void pxs_handle_close(pxs_handle_t *h)
{
    if (!h) return;
    if (h->conn && h->conn->ops->close) h->conn->ops->close(h->conn, &h->desc, h->state);
    free(h);
}
