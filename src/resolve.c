/* The consumer path: resolve into the caller's buffer or a library one,
 * blocking or not. Inline proxies never reach a connector. */
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

/* The final status of a get done at once, as pxs__request_complete gives
 * one: a stale object never yields bytes, even partly copied ones. */
static inline pxs_status_t settled(pxs_status_t st, const pxs_pdesc_t *d, void *dst)
{
    if (st == PXS_ERR_EVICTED && d->size) memset(dst, 0, d->size);
    return st;
}

/* The get done at once (get_now, or get without PXS_CAP_NONBLOCKING), with
 * the route slot rt (or NULL) offered to the connector to fill. */
static pxs_status_t get_sync(pxs_conn_t *conn, const pxs_pdesc_t *d, void *dst,
                             pxs_request_t *sr, pxs_route_t *rt, bool waited)
{
    if (rt) {
        rt->uid = 0;
        rt->read = NULL;
        pxs__route_fill = rt;
    }
    pxs_status_t st = sr ? conn->ops->get(conn, d, dst, sr)
                         : conn->ops->get_now(conn, d, dst, waited);
    if (rt) {
        pxs__route_fill = NULL;
        if (st == PXS_OK && rt->read) rt->uid = conn->uid;
    }
    return st;
}

/* A proxy read before through this very connector instance: its route,
 * which still checks generation, mapping and owner, and says
 * PXS_ERR_UNSUPPORTED when it no longer holds (then, and for any proxy
 * without a route, resolve_start). Apart from it: nothing on this path needs
 * resolve_start's request and stack. */
static inline pxs_status_t route_get(pxs_context_t *ctx, const pxs_pdesc_t *d,
                                     const pxs_route_t *rt, void *dst, size_t cap)
{
    if (!rt || !rt->uid || d->size > cap || !dst) return PXS_ERR_UNSUPPORTED;
    pxs_conn_t *conn = pxs__conn_find(ctx, d->connector);
    if (!conn || rt->uid != conn->uid) return PXS_ERR_UNSUPPORTED;
    return settled(rt->read(rt, d, dst), d, dst);
}

/* waited: the caller waits for the get at once (connector.h, get_now). */
static pxs_status_t resolve_start(pxs_context_t *ctx, const pxs_pdesc_t *d, pxs_route_t *rt,
                                  void *dst, size_t cap, int timeout_ms, bool waited,
                                  pxs_request_t **req_p)
{
    *req_p = NULL;
    if (d->size > cap) return PXS_ERR_BUFFER_TOO_SMALL;
    if (d->size && !dst) return PXS_ERR_INVALID_PARAM;
    if (d->flags & PXS_WF_INLINE) {
        if (d->size) memcpy(dst, d->data, d->size);
        return PXS_OK;
    }
    pxs_request_t *r = NULL;
    pxs_status_t st;
    /* An open connector without the lock: one acquire load. */
    pxs_conn_t *conn = pxs__conn_find(ctx, d->connector);
    if (!conn) {
        pxs__lock(ctx);
        st = pxs__conn_get(ctx, d->connector, &conn);
        pxs__unlock(ctx);
        if (st != PXS_OK) return st;
    }
    bool pooled = conn->ops->caps & PXS_CAP_NONBLOCKING;
    if (pooled && conn->ops->get_now &&
        (st = get_sync(conn, d, dst, NULL, rt, waited)) != PXS_ERR_UNSUPPORTED)
        return settled(st, d, dst);
    if (pooled) { /* get_now, if any, said no: get needs a request */
        pxs__lock(ctx);
        r = pxs__request_get(ctx);
        pxs__unlock(ctx);
    }
    if (!pooled) {
        /* Done before get returns: a request on the stack, no deadline.
         * Field by field: an initializer would zero the connector scratch
         * too (a rep stos of 200+ bytes, a quarter of an 8 B mapped read). */
        pxs_request_t sr;
        sr.ctx = ctx;
        sr.conn = conn;
        sr.status = PXS_INPROGRESS;
        sr.deadline_ns = 0;
        sr.dst = dst;
        sr.dst_len = d->size;
        sr.next_free = NULL;
        st = get_sync(conn, d, dst, &sr, rt, waited);
        if (st == PXS_INPROGRESS) { /* a connector that breaks its word */
            pxs_error("connector %s left a get in progress without PXS_CAP_NONBLOCKING",
                      conn->ops->name);
            conn->ops->cancel(conn, &sr);
            st = PXS_ERR_UNSUPPORTED;
        }
        pxs__request_complete(&sr, st);
        return st;
    }
    if (!r) return PXS_ERR_NO_MEMORY;
    r->conn = conn;
    r->dst = dst;
    r->dst_len = d->size;
    st = conn->ops->get(conn, d, dst, r);
    if (st == PXS_INPROGRESS) {
        /* Only now: a get done at once (a mapped copy) reads no clock. */
        r->deadline_ns = pxs__deadline(ctx, timeout_ms);
        *req_p = r;
        return st;
    }
    pxs__request_complete(r, st);
    pxs__lock(ctx);
    pxs__request_put(r);
    pxs__unlock(ctx);
    return st;
}

/* The description resolve_start and the connectors get: a copy, its
 * pointers in the caller's proxy, when the check gave the memo's (a
 * nonblocking get may keep them past this thread's next check). */
static inline const pxs_pdesc_t *own_desc(pxs_pdesc_t *d, const pxs_pdesc_t *dp,
                                          const pxs_proxy_t *proxy)
{
    if (dp == d) return d;
    *d = *dp;
    pxs__memo_repoint(d, proxy->bytes);
    return d;
}

pxs_status_t pxs_resolve_nb(pxs_context_t *ctx, const pxs_proxy_t *proxy, void *dst, size_t cap,
                            const pxs_resolve_params_t *params, pxs_request_t **req_p)
{
    if (!req_p) return PXS_ERR_INVALID_PARAM;
    *req_p = NULL;
    pxs_pdesc_t d;
    const pxs_pdesc_t *dp;
    pxs_route_t *rt;
    pxs_status_t st = pxs__proxy_check_route(ctx, proxy, &d, &dp, &rt);
    if (st != PXS_OK) return st;
    if ((st = route_get(ctx, dp, rt, dst, cap)) != PXS_ERR_UNSUPPORTED) return st;
    int timeout = (params && (params->field_mask & PXS_RESOLVE_PARAM_TIMEOUT))
                      ? params->timeout_ms
                      : PXS_TIMEOUT_DEFAULT;
    return resolve_start(ctx, own_desc(&d, dp, proxy), rt, dst, cap, timeout, false, req_p);
}

/* A blocking resolve of an already validated proxy (rt: its route slot,
 * from the check just before, or NULL; dp: the check's description, which
 * is d or the memo's). */
static pxs_status_t resolve_desc(pxs_context_t *ctx, pxs_pdesc_t *d, const pxs_pdesc_t *dp,
                                 const pxs_proxy_t *proxy, pxs_route_t *rt, void *dst,
                                 size_t cap)
{
    pxs_request_t *r;
    pxs_status_t st = route_get(ctx, dp, rt, dst, cap);
    if (st != PXS_ERR_UNSUPPORTED) return st;
    if (proxy) dp = own_desc(d, dp, proxy);
    st = resolve_start(ctx, dp, rt, dst, cap, PXS_TIMEOUT_DEFAULT, true, &r);
    if (st == PXS_INPROGRESS) {
        /* The request carries the context's deadline (none if timeout_ms is -1). */
        st = pxs_wait(r, PXS_TIMEOUT_INFINITE);
        pxs_request_free(r);
    }
    return st;
}

pxs_status_t pxs__resolve_desc(pxs_context_t *ctx, const pxs_pdesc_t *d, void *dst, size_t cap)
{
    return resolve_desc(ctx, NULL, d, NULL, NULL, dst, cap);
}

pxs_status_t pxs_resolve(pxs_context_t *ctx, const pxs_proxy_t *proxy, void *dst, size_t cap,
                         size_t *len_p)
{
    pxs_pdesc_t d;
    const pxs_pdesc_t *dp;
    pxs_route_t *rt;
    pxs_status_t st = pxs__proxy_check_route(ctx, proxy, &d, &dp, &rt);
    if (st != PXS_OK) return st;
    if (len_p) *len_p = (size_t)dp->size;
    return resolve_desc(ctx, &d, dp, proxy, rt, dst, cap);
}

pxs_status_t pxs_resolve_alloc(pxs_context_t *ctx, const pxs_proxy_t *proxy, void **buf_p,
                               size_t *len_p)
{
    if (!buf_p) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    const pxs_pdesc_t *dp;
    pxs_route_t *rt;
    pxs_status_t st = pxs__proxy_check_route(ctx, proxy, &d, &dp, &rt);
    if (st != PXS_OK) return st;
    size_t size = (size_t)dp->size;
    if (dp->size > SIZE_MAX - 1) return PXS_ERR_NO_MEMORY;
    void *buf = malloc(size ? size : 1);
    if (!buf) return PXS_ERR_NO_MEMORY;
    st = resolve_desc(ctx, &d, dp, proxy, rt, buf, size); /* validated once, above */
    if (st != PXS_OK) {
        free(buf);
        return st;
    }
    *buf_p = buf;
    if (len_p) *len_p = size;
    return PXS_OK;
}

void pxs_buffer_free(void *buf) { free(buf); }
