/* The request engine: a per-context pool of requests, completion, test,
 * wait with deadlines, cancel. */
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

pxs_request_t *pxs__request_get(pxs_context_t *ctx)
{
    pxs_request_t *r = ctx->free_reqs;
    if (r) ctx->free_reqs = r->next_free;
    else if (!(r = malloc(sizeof *r))) return NULL;
    /* The connector scratch is left as it is: a connector's get sets what
     * it will read (connector.h). */
    memset(r, 0, offsetof(pxs_request_t, conn_data));
    r->next_free = NULL;
    r->ctx = ctx;
    r->status = PXS_INPROGRESS;
    return r;
}

void pxs__request_put(pxs_request_t *r)
{
    r->next_free = r->ctx->free_reqs;
    r->ctx->free_reqs = r;
}

void pxs__requests_free_all(pxs_context_t *ctx)
{
    while (ctx->free_reqs) {
        pxs_request_t *r = ctx->free_reqs;
        ctx->free_reqs = r->next_free;
        free(r);
    }
}

void pxs__request_complete(pxs_request_t *r, pxs_status_t status)
{
    /* A stale object never yields bytes, even partly copied ones. */
    if (status == PXS_ERR_EVICTED && r->dst) memset(r->dst, 0, r->dst_len);
    /* Connectors may complete from their progress thread. */
    __atomic_store_n(&r->status, status, __ATOMIC_RELEASE);
}

/* One test; *progressed says whether the connector moved anything. */
static pxs_status_t test_once(pxs_request_t *r, int *progressed)
{
    pxs_context_t *ctx = r->ctx;
    pxs__lock(ctx);
    if (pxs__request_status(r) == PXS_INPROGRESS) {
        *progressed = r->conn->ops->progress(r->conn);
        if (pxs__request_status(r) == PXS_INPROGRESS && r->deadline_ns &&
            pxs__now_ns() >= r->deadline_ns) {
            /* cancel returns once dst can no longer be written */
            r->conn->ops->cancel(r->conn, r);
            __atomic_store_n(&r->status, PXS_ERR_TIMEOUT, __ATOMIC_RELEASE);
        }
    }
    pxs_status_t st = pxs__request_status(r);
    pxs__unlock(ctx);
    return st;
}

pxs_status_t pxs_test(pxs_request_t *r)
{
    if (!r) return PXS_ERR_INVALID_PARAM;
    int progressed = 0;
    return test_once(r, &progressed);
}

uint64_t pxs__deadline(const pxs_context_t *ctx, int timeout_ms)
{
    if (timeout_ms == PXS_TIMEOUT_DEFAULT) timeout_ms = ctx->timeout_ms;
    if (timeout_ms < 0) return 0;
    return pxs__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

pxs_status_t pxs_wait(pxs_request_t *r, int timeout_ms)
{
    if (!r) return PXS_ERR_INVALID_PARAM;
    uint64_t deadline = pxs__deadline(r->ctx, timeout_ms);
    /* Yield the CPU only after a run of idle polls: while a transfer
     * streams in (UCX's get emulation moves 1 MiB in many fragments), each
     * poll finds work, and a yield there let the owner's side stall
     * (measured at 1 MiB over sm: see perf/RESULTS.md). */
    for (unsigned idle = 0;;) {
        int progressed = 0;
        pxs_status_t st = test_once(r, &progressed);
        if (st != PXS_INPROGRESS) return st;
        if (deadline && pxs__now_ns() >= deadline) return PXS_ERR_TIMEOUT;
        idle = progressed > 0 ? 0 : idle + 1;
        if (idle > 64) sched_yield();
    }
}

void pxs_request_free(pxs_request_t *r)
{
    if (!r) return;
    pxs_context_t *ctx = r->ctx;
    pxs__lock(ctx);
    if (pxs__request_status(r) == PXS_INPROGRESS) r->conn->ops->cancel(r->conn, r);
    pxs__request_put(r);
    pxs__unlock(ctx);
}

pxs_status_t pxs__request_status(const pxs_request_t *r)
{
    return __atomic_load_n(&r->status, __ATOMIC_ACQUIRE);
}

void *pxs__request_scratch(pxs_request_t *r) { return r->conn_data; }
