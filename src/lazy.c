/* Lazy handles: the just-in-time part. Nothing moves until first access. */
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

struct pxs_lazy {
    pxs_context_t *ctx;
    pxs_proxy_t proxy;
    void *data;
    size_t len;
};

pxs_status_t pxs_lazy_create(pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_lazy_t **lazy_p)
{
    if (!lazy_p) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__proxy_check(ctx, proxy, &d);
    if (st != PXS_OK) return st;
    pxs_lazy_t *l = calloc(1, sizeof *l);
    if (!l) return PXS_ERR_NO_MEMORY;
    l->ctx = ctx;
    memcpy(l->proxy.bytes, proxy->bytes, d.total_len);
    *lazy_p = l;
    return PXS_OK;
}

pxs_status_t pxs_lazy_get(pxs_lazy_t *l, const void **data_p, size_t *len_p)
{
    if (!l || !data_p) return PXS_ERR_INVALID_PARAM;
    if (!l->data) {
        pxs_status_t st = pxs_resolve_alloc(l->ctx, &l->proxy, &l->data, &l->len);
        if (st != PXS_OK) return st;
    }
    *data_p = l->data;
    if (len_p) *len_p = l->len;
    return PXS_OK;
}

int pxs_lazy_is_resolved(const pxs_lazy_t *l) { return l && l->data != NULL; }

void pxs_lazy_free(pxs_lazy_t *l)
{
    if (!l) return;
    pxs_buffer_free(l->data);
    free(l);
}
