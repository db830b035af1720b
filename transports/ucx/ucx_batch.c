/* Owner-validated gets in batches: the gets a reader has waiting for one
 * owner go as one message, and the owner packs its small answers into one.
 *
 * Alone, a get of the am protocol costs two messages, its request and its
 * reply; over TCP each is a system call on both sides, and a window of 64
 * gets of 8 bytes across hosts took 7.3 us a get, behind osc/pt2pt's
 * MPI_Get (6.3 us), which packs its requests. So a request joins the
 * reader's queue (u->bq) instead, and the queue goes out at the next
 * progress of the reader's context (pxs_test, pxs_wait, pxs_progress: a
 * blocking resolve sends at once) or when it is full, as one AM_BREQ per
 * owner with the requests in its data. The owner answers each request as
 * before (pxs__ucx_am_answer) and packs the answers, with the bytes of
 * objects up to PACK_BYTES, back to back into AM_BREP messages of up to
 * PACK_MSG; a larger object's answer goes alone and zero-copy. It copies a
 * packed object's bytes while it holds the slot's reply count, as it holds
 * it for any reply, so an evict waits for the copy. Leases (same node,
 * large objects) do not queue. Both messages are sent eager, so their data
 * arrive whole in the handler. */
#include <stdlib.h>
#include <string.h>

#include "../../src/log.h"
#include "ucx.h"

#define PACK_BYTES (16u << 10) /* objects up to this travel packed */
#define PACK_MSG   (64u << 10) /* a packed answer message at most (unless one entry is larger) */

/* One packed answer; its bytes follow, padded to 8. */
typedef struct {
    am_rep_t hdr;
    uint64_t len;
} am_bent_t;

/* A withdrawal that waits for the flushes sending now: one of them may
 * carry its request, which it must not overtake (ucx_hold.c). */
struct ucx_wd {
    ucx_peer_t *peer;
    uint64_t id;
    struct ucx_wd *next;
};

/* A batch of requests in flight: kept until its send completes. */
typedef struct {
    ucx_t *u;
    uint32_t n;
    am_req_t req[];
} bsend_t;

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* --- reader side --------------------------------------------------------- */

static void batch_fail(ucx_t *u, const am_req_t *req, uint32_t n, pxs_status_t st)
{
    for (uint32_t i = 0; i < n; i++) {
        ucx_get_t *g = pxs__ucx_am_take(u, req[i].id);
        if (g) pxs__ucx_get_finish(g, st);
    }
}

static void batch_sent(void *request, ucs_status_t status, void *user_data)
{
    bsend_t *b = user_data;
    if (request) ucp_request_free(request);
    if (status != UCS_OK) batch_fail(b->u, b->req, b->n, pxs__ucx_status(status));
    free(b);
}

static void batch_send(ucx_t *u, ucx_peer_t *q, bsend_t *b)
{
    if (!pxs__ucx_peer_enter(q, NULL)) {
        /* Reset since they queued (a get to this owner timed out): gets
         * already sent on that endpoint will not be answered either. */
        batch_fail(u, b->req, b->n, PXS_ERR_TIMEOUT);
        free(b);
        return;
    }
    pxs__ucx_am_send(q->ep, AM_BREQ, NULL, 0, b->req, b->n * sizeof b->req[0],
                     UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER, batch_sent, b);
    pxs__ucx_peer_leave(q);
}

void pxs__ucx_batch_flush(ucx_t *u)
{
    if (!atomic_load_explicit(&u->nbq, memory_order_relaxed)) return;
    ucx_bq_t local[UCX_BQ_MAX];
    pthread_mutex_lock(&u->am_lock);
    uint32_t n = atomic_load_explicit(&u->nbq, memory_order_relaxed);
    memcpy(local, u->bq, n * sizeof local[0]);
    atomic_store_explicit(&u->nbq, 0, memory_order_relaxed);
    u->flushing++;
    pthread_mutex_unlock(&u->am_lock);
    for (uint32_t i = 0; i < n; i++) {
        ucx_peer_t *q = local[i].peer;
        if (!q) continue;
        uint32_t m = 0;
        for (uint32_t j = i; j < n; j++) m += local[j].peer == q;
        bsend_t *b = malloc(sizeof *b + m * sizeof b->req[0]);
        if (b) {
            b->u = u;
            b->n = 0;
        }
        for (uint32_t j = i; j < n; j++) {
            if (local[j].peer != q) continue;
            local[j].peer = NULL;
            if (b) b->req[b->n++] = local[j].req;
            else batch_fail(u, &local[j].req, 1, PXS_ERR_NO_MEMORY);
        }
        if (b) batch_send(u, q, b);
    }
    /* Sent: the withdrawals that waited may follow (the last flush out
     * sends them, after every request any flush took). */
    struct ucx_wd *wd = NULL;
    pthread_mutex_lock(&u->am_lock);
    if (--u->flushing == 0) {
        wd = u->wd;
        u->wd = NULL;
    }
    pthread_mutex_unlock(&u->am_lock);
    for (struct ucx_wd *next; wd; wd = next) {
        next = wd->next;
        pxs__ucx_am_send_rel(wd->peer, wd->id);
        free(wd);
    }
}

void pxs__ucx_batch_withdraw(ucx_get_t *g)
{
    ucx_t *u = g->u;
    bool queued = false, later = false;
    pthread_mutex_lock(&u->am_lock);
    uint32_t n = atomic_load_explicit(&u->nbq, memory_order_relaxed);
    for (uint32_t i = 0; i < n && !queued; i++)
        if (u->bq[i].peer && u->bq[i].req.id == g->id) {
            u->bq[i].peer = NULL; /* a hole: the flush skips it */
            queued = true;
        }
    if (!queued && u->flushing) {
        struct ucx_wd *wd = malloc(sizeof *wd);
        if (wd) { /* else at once: it may overtake, and the evict wait its timeout */
            *wd = (struct ucx_wd){.peer = g->peer, .id = g->id, .next = u->wd};
            u->wd = wd;
            later = true;
        }
    }
    pthread_mutex_unlock(&u->am_lock);
    if (!queued && !later) pxs__ucx_am_send_rel(g->peer, g->id);
}

void pxs__ucx_batch_fini(ucx_t *u)
{
    for (struct ucx_wd *wd = u->wd, *next; wd; wd = next) {
        next = wd->next;
        free(wd);
    }
    u->wd = NULL;
}

void pxs__ucx_batch_add(ucx_get_t *g)
{
    ucx_t *u = g->u;
    for (;;) {
        pthread_mutex_lock(&u->am_lock);
        uint32_t n = atomic_load_explicit(&u->nbq, memory_order_relaxed);
        if (n < UCX_BQ_MAX) {
            u->bq[n] = (ucx_bq_t){.peer = g->peer, .req = g->am_hdr};
            atomic_store_explicit(&u->nbq, n + 1, memory_order_relaxed);
            pthread_mutex_unlock(&u->am_lock);
            return;
        }
        pthread_mutex_unlock(&u->am_lock);
        pxs__ucx_batch_flush(u); /* full: this batch goes now */
    }
}

/* The owner's packed answers: each settles its get, in order. */
static ucs_status_t on_answers(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param)
{
    (void)header, (void)header_len;
    ucx_t *u = arg;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) return UCS_OK; /* never sent so */
    const uint8_t *p = data;
    size_t off = 0;
    while (len - off >= sizeof(am_bent_t)) {
        am_bent_t e;
        memcpy(&e, p + off, sizeof e);
        off += sizeof e;
        if (e.len > len - off) break; /* malformed: its gets time out */
        pxs__ucx_am_settle(u, &e.hdr, p + off, (size_t)e.len);
        size_t step = pad8((size_t)e.len);
        off += step < len - off ? step : len - off;
    }
    return UCS_OK;
}

/* --- owner side ---------------------------------------------------------- */

static void pack_sent(void *request, ucs_status_t status, void *user_data)
{
    (void)status; /* the readers time out */
    free(user_data);
    if (request) ucp_request_free(request);
}

static void pack_send(ucp_ep_h ep, uint8_t *buf, size_t len)
{
    pxs__ucx_am_send(ep, AM_BREP, NULL, 0, buf, len, UCP_AM_SEND_FLAG_EAGER, pack_sent, buf);
}

static ucs_status_t on_requests(void *arg, const void *header, size_t header_len, void *data,
                                size_t len, const ucp_am_recv_param_t *param)
{
    (void)header, (void)header_len;
    ucx_t *u = arg;
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ||
        (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) || len % sizeof(am_req_t))
        return UCS_OK; /* not ours to answer */
    ucp_ep_h ep = param->reply_ep;
    uint8_t *buf = NULL;
    size_t used = 0, cap = 0;
    for (size_t off = 0; off < len; off += sizeof(am_req_t)) {
        am_req_t q;
        memcpy(&q, (const uint8_t *)data + off, sizeof q);
        am_rep_t hdr;
        ucx_slot_t *slot;
        const void *src;
        size_t n;
        pxs__ucx_am_answer(u, ep, &q, &hdr, &slot, &src, &n);
        if (n > PACK_BYTES) {
            pxs__ucx_am_reply(u, ep, &hdr, slot, src, n, q.flags & AM_REQ_EAGER);
            continue;
        }
        size_t need = sizeof(am_bent_t) + pad8(n);
        if (buf && used + need > cap) {
            pack_send(ep, buf, used);
            buf = NULL;
        }
        if (!buf) {
            cap = need > PACK_MSG ? need : PACK_MSG;
            used = 0;
            if (!(buf = malloc(cap))) { /* this reader times out */
                if (slot) atomic_fetch_sub(&slot->replies, 1);
                continue;
            }
        }
        am_bent_t e = {.hdr = hdr, .len = n};
        memcpy(buf + used, &e, sizeof e);
        if (n) memcpy(buf + used + sizeof e, src, n);
        memset(buf + used + sizeof e + n, 0, pad8(n) - n);
        used += need;
        if (slot) atomic_fetch_sub(&slot->replies, 1); /* copied: evict may go on */
    }
    if (buf) pack_send(ep, buf, used);
    return UCS_OK;
}

pxs_status_t pxs__ucx_batch_init(ucx_t *u)
{
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .id = AM_BREQ,
                                 .cb = on_requests,
                                 .arg = u};
    ucs_status_t st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    if (st == UCS_OK) {
        hp.id = AM_BREP;
        hp.cb = on_answers;
        st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    }
    if (st != UCS_OK) pxs_error("UCX active message handlers: %s", ucs_status_string(st));
    return st == UCS_OK ? PXS_OK : pxs__ucx_status(st);
}
