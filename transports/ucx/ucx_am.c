/* Owner-validated gets over UCP active messages (PXS_UCX_PROTOCOL=am, the
 * default).
 *
 * The reader sends a small request (slot, generation, address, length); the
 * owner's worker answers only if that generation is live in its table AND
 * the address and length are exactly the object's, with the bytes (UCX picks
 * eager or rendezvous; rendezvous lands straight in the reader's buffer).
 * One round trip, where the rma protocol needs three; the owner never reads
 * anything but a live object; an evict waits until the replies in flight
 * for its slot are sent. On transports whose gets UCX emulates with active
 * messages anyway (sm for ordinary memory, tcp), the owner's CPU was needed
 * either way.
 *
 * Leases: on one node an active-message reply of 8 KiB or more goes by
 * rendezvous over cma, which moves 1 MiB in ~65 us here, while UCX's own
 * get of the same user buffer streams it through shared memory in ~24 us.
 * So for such objects (PXS_UCX_LEASE_MIN, default 8 KiB) the request asks
 * for a lease instead: the owner checks it exactly as above, answers with a
 * header only and keeps the slot's reply count, so an evict waits; the
 * reader gets the bytes with ucp_get_nbx and sends a release (fire and
 * forget). The owner still reads nothing but a live, exactly-matching
 * object. A lease is bounded: an evict waits for its release at most the
 * owner's timeout, which the reply carries (lease_ms); bytes that arrived
 * within half of it from the request are proven live, later ones are
 * checked against the generation word as in the rma protocol. Measured
 * with the owner's thread asleep, 1 MiB: 96 -> 25 us; with it spinning,
 * 16 KiB: 3.4 -> 1.2 us. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "../../src/log.h"
#include "ucx.h"

/* The end of a lease (AM_REQ_LEASE), or a request withdrawn: the
 * request's id (ucx_hold.c). Sent with UCP_AM_SEND_FLAG_REPLY: the
 * owner's endpoint to the reader names the reader. */
typedef struct {
    uint64_t id;
} am_rel_t;

/* A reply in flight at the owner: its header must outlive the send. With
 * bytes, it holds its slot (held: a rendezvous, noted in ucx_hold.c, so
 * that the reader's withdrawal can end the hold). */
typedef struct {
    am_rep_t hdr;
    ucx_t *u;
    ucp_ep_h ep;
    ucx_slot_t *slot;
    bool held;
} reply_t;

/* --- owner side ---------------------------------------------------------- */

/* Freeing a buffer before evicting its object is the caller's error, but a
 * large one (malloc gives those back with munmap) can be caught for the
 * price of one system call: msync fails with ENOMEM on unmapped pages.
 * Small buffers stay mapped when freed; nothing can tell. */
#define MAPPED_CHECK_MIN (64u << 10)

static bool still_mapped(uint64_t addr, uint64_t len)
{
    if (len < MAPPED_CHECK_MIN) return true;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t lo = addr & ~(page - 1);
    return msync((void *)(uintptr_t)lo, addr + len - lo, MS_ASYNC) == 0 || errno != ENOMEM;
}

void pxs__ucx_am_send(ucp_ep_h ep, unsigned id, const void *hdr, size_t hdr_len, const void *data,
                      size_t len, uint32_t flags, ucp_send_nbx_callback_t cb, void *arg)
{
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA |
                                               UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = flags,
                               .cb.send = cb,
                               .user_data = arg};
    void *req = ucp_am_send_nbx(ep, id, hdr, hdr_len, data, len, &prm);
    if (req == NULL) cb(NULL, UCS_OK, arg);
    else if (UCS_PTR_IS_ERR(req)) cb(NULL, UCS_PTR_STATUS(req), arg);
}

static void reply_done(void *request, ucs_status_t status, void *user_data)
{
    (void)status;
    reply_t *r = user_data;
    uint32_t slot;
    bool lease;
    /* Withdrawn meanwhile, or given up by an evict: its count was dropped. */
    if (r->slot && (!r->held || pxs__ucx_hold_drop(r->u, r->ep, r->hdr.id, &slot, &lease)))
        atomic_fetch_sub(&r->slot->replies, 1);
    free(r);
    if (request) ucp_request_free(request);
}

/* Answer q as far as the owner can: hdr's status (and lease), and, for a
 * live object to be sent, its bytes (*src, *n) with the slot's reply count
 * held in *slot_p, to be dropped once they are sent (reply_done). */
void pxs__ucx_am_answer(ucx_t *u, ucp_ep_h ep, const am_req_t *q, am_rep_t *hdr,
                        ucx_slot_t **slot_p, const void **src, size_t *n)
{
    *hdr = (am_rep_t){.id = q->id, .status = PXS_OK};
    *slot_p = NULL;
    *src = NULL;
    *n = 0;
    if (q->slot >= u->tab_slots) {
        hdr->status = PXS_ERR_CORRUPT;
        return;
    }
    /* Count ourselves in before checking: evict revokes, then waits for
     * the count (both sides fence), so one of us sees the other. */
    ucx_slot_t *s = &u->slots[q->slot];
    atomic_fetch_add(&s->replies, 1);
    atomic_thread_fence(memory_order_seq_cst);
    const pxs_objtab_t *t = pxs__conn_objtab(u->conn);
    if (pxs__objtab_gen(t, q->slot) != q->gen) hdr->status = PXS_ERR_EVICTED;
    else if (atomic_load(&s->addr) != q->addr || atomic_load(&s->len) != q->len)
        hdr->status = PXS_ERR_CORRUPT;
    if (hdr->status == PXS_OK && !still_mapped(q->addr, q->len))
        hdr->status = PXS_ERR_EVICTED; /* freed before evict: caught, not read */
    if (hdr->status == PXS_OK && (q->flags & AM_REQ_LEASE) &&
        !pxs__ucx_hold_add(u, ep, q->id, q->slot, true))
        hdr->status = PXS_ERR_NO_MEMORY;
    if (hdr->status == PXS_OK && (q->flags & AM_REQ_LEASE)) {
        /* the count stays ours until the reader's release (on_release) */
        atomic_fetch_add(&u->leases_out, 1);
        int timeout = pxs__conn_timeout_ms(u->conn);
        hdr->lease_ms = timeout < 0 ? LEASE_UNBOUNDED
                        : (uint32_t)timeout < LEASE_UNBOUNDED ? (uint32_t)timeout
                                                               : LEASE_UNBOUNDED - 1;
    } else if (hdr->status == PXS_OK) {
        *slot_p = s;
        *src = (const void *)(uintptr_t)q->addr;
        *n = q->len;
    } else {
        atomic_fetch_sub(&s->replies, 1);
    }
}

/* Send one answer by itself, the slot's count held until its bytes have
 * gone: eager if asked (AM_REQ_EAGER), else by rendezvous, zero-copy.
 * Rendezvous because only then is the object read for the reader's sake
 * alone (it pulls the bytes, or asks for them, once its handler takes the
 * reply), so its withdrawal may end the hold before UCX ends the send,
 * which it does only when the reader's worker runs; an eager send reads
 * the object whatever the reader does, and holds it until it completes. */
void pxs__ucx_am_reply(ucx_t *u, ucp_ep_h ep, const am_rep_t *hdr, ucx_slot_t *slot,
                       const void *src, size_t n, bool eager)
{
    reply_t *r = malloc(sizeof *r);
    if (!r) { /* the reader times out */
        if (slot) atomic_fetch_sub(&slot->replies, 1);
        return;
    }
    *r = (reply_t){.hdr = *hdr, .u = u, .ep = ep, .slot = slot};
    bool rndv = slot && n && !eager;
    /* No memory for the note: the hold ends with the send only. */
    if (rndv) r->held = pxs__ucx_hold_add(u, ep, hdr->id, (uint32_t)(slot - u->slots), false);
    pxs__ucx_am_send(ep, AM_REP, &r->hdr, sizeof r->hdr, src, n,
                     eager ? UCP_AM_SEND_FLAG_EAGER : rndv ? UCP_AM_SEND_FLAG_RNDV : 0,
                     reply_done, r);
}

static ucs_status_t on_request(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param)
{
    (void)data, (void)len;
    ucx_t *u = arg;
    am_req_t q;
    if (header_len != sizeof q || !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
        return UCS_OK; /* not ours to answer */
    memcpy(&q, header, sizeof q);
    am_rep_t hdr;
    ucx_slot_t *slot;
    const void *src;
    size_t n;
    pxs__ucx_am_answer(u, param->reply_ep, &q, &hdr, &slot, &src, &n);
    pxs__ucx_am_reply(u, param->reply_ep, &hdr, slot, src, n, q.flags & AM_REQ_EAGER);
    return UCS_OK;
}

/* Take one from a count unless it is 0 (then false: nothing to release). */
static bool count_down(_Atomic uint32_t *c)
{
    uint32_t n = atomic_load(c);
    while (n && !atomic_compare_exchange_weak(c, &n, n - 1)) {
    }
    return n != 0;
}

/* A reader is done with a leased object, or withdrew its request: end the
 * lease granted to it or the hold of the reply sent for it, if any
 * (ucx_hold.c). One of none (refused, completed, or a duplicate) is
 * dropped, so no count is taken twice. */
static ucs_status_t on_release(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param)
{
    (void)data, (void)len;
    ucx_t *u = arg;
    am_rel_t m;
    uint32_t slot;
    bool lease;
    if (header_len != sizeof m || !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
        return UCS_OK;
    memcpy(&m, header, sizeof m);
    if (pxs__ucx_hold_drop(u, param->reply_ep, m.id, &slot, &lease)) {
        count_down(&u->slots[slot].replies);
        if (lease) count_down(&u->leases_out);
    }
    return UCS_OK;
}

void pxs__ucx_am_expose(ucx_t *u, uint32_t slot, const void *addr, size_t len)
{
    atomic_store(&u->slots[slot].addr, (uint64_t)(uintptr_t)addr);
    atomic_store(&u->slots[slot].len, (uint64_t)len);
}

void pxs__ucx_am_revoke(ucx_t *u, uint32_t slot)
{
    ucx_slot_t *s = &u->slots[slot];
    atomic_store(&s->addr, 0);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with on_request's */
    if (!atomic_load(&s->replies)) return;
    /* Replies still read the object: let them go out before its memory may. */
    int timeout = pxs__conn_timeout_ms(u->conn);
    uint64_t deadline = timeout < 0 ? 0 : pxs__now_ns() + (uint64_t)timeout * 1000000ull;
    while (atomic_load(&s->replies)) {
        ucp_worker_progress(u->worker);
        if (deadline && pxs__now_ns() > deadline) {
            pxs_warn("evict of slot %u: a reader has not taken its reply in %d ms; going on",
                     slot, timeout);
            /* Its holds end here: a release or completion that comes
             * later finds none. */
            uint32_t leases;
            for (uint32_t n = pxs__ucx_hold_drop_slot(u, slot, &leases); n; n--)
                count_down(&s->replies);
            while (leases--) count_down(&u->leases_out);
            return;
        }
    }
}

/* --- reader side --------------------------------------------------------- */

/* Outstanding gets by id (index | sequence << 32), so a late reply to a
 * cancelled get finds nothing instead of a reused request. */
static pxs_status_t table_add(ucx_t *u, ucx_get_t *g)
{
    pthread_mutex_lock(&u->am_lock);
    if (u->am_nfree == 0) {
        uint32_t cap = u->am_cap ? 2 * u->am_cap : 64;
        ucx_get_t **t = realloc(u->am_gets, cap * sizeof *t);
        uint32_t *f = realloc(u->am_free, cap * sizeof *f);
        if (t) u->am_gets = t;
        if (f) u->am_free = f;
        if (!t || !f) {
            pthread_mutex_unlock(&u->am_lock);
            return PXS_ERR_NO_MEMORY;
        }
        for (uint32_t i = u->am_cap; i < cap; i++) {
            u->am_gets[i] = NULL;
            u->am_free[u->am_nfree++] = i;
        }
        u->am_cap = cap;
    }
    uint32_t idx = u->am_free[--u->am_nfree];
    g->id = (uint64_t)idx | (uint64_t)(++u->am_seq) << 32;
    u->am_gets[idx] = g;
    pthread_mutex_unlock(&u->am_lock);
    return PXS_OK;
}

/* How a get is taken (take). */
enum { TAKE_GET, TAKE_TO_READ };

/* Take the get of id out of the table if it is still there; returns it or
 * NULL. TAKE_TO_READ: a get we read ourselves (ucx_stall.c), marked
 * receiving before the lock goes, so that a cancel that finds it gone
 * waits for it. */
static ucx_get_t *take(ucx_t *u, uint64_t id, int how)
{
    uint32_t idx = (uint32_t)id;
    ucx_get_t *g = NULL;
    pthread_mutex_lock(&u->am_lock);
    if (idx < u->am_cap && u->am_gets[idx] && u->am_gets[idx]->id == id) {
        g = u->am_gets[idx];
        u->am_gets[idx] = NULL;
        u->am_free[u->am_nfree++] = idx;
        if (how == TAKE_TO_READ) atomic_store(&g->receiving, 1);
    }
    pthread_mutex_unlock(&u->am_lock);
    return g;
}

ucx_get_t *pxs__ucx_am_take(ucx_t *u, uint64_t id) { return take(u, id, TAKE_GET); }

/* g is out of the table, given up: its request, if it went, is withdrawn.
 * A lease request goes at once (asked); others through the batch queue. */
static void withdraw(ucx_get_t *g)
{
    if (g->lease) pxs__ucx_am_send_rel(g->peer, g->id);
    else pxs__ucx_batch_withdraw(g);
}

/* The owner may answer the request yet, with a lease or a rendezvous
 * that only our worker would end: withdraw it, or the owner's evict would
 * wait out its timeout while we do not call pxs. */
ucx_get_t *pxs__ucx_am_take_to_read(ucx_t *u, uint64_t id)
{
    ucx_get_t *g = take(u, id, TAKE_TO_READ);
    if (g) withdraw(g);
    return g;
}

size_t pxs__ucx_am_stalled(ucx_t *u, uint64_t now, uint64_t *ids, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&u->am_lock);
    for (uint32_t i = 0; i < u->am_cap && n < max; i++) {
        const ucx_get_t *g = u->am_gets[i];
        /* A lease request not yet sent could not be withdrawn after it. */
        if (g && g->attach && now - g->sent_ns >= UCX_STALL_NS &&
            (!g->lease || atomic_load(&g->asked)) &&
            (int64_t)(atomic_load(&g->peer->hold_until) - now) > 0)
            ids[n++] = g->id;
    }
    pthread_mutex_unlock(&u->am_lock);
    return n;
}

/* A rendezvous receive of a get's bytes, the callback's data. UCX 1.13
 * may never end one whose sender died: on this node the endpoint reports
 * no failure, and neither ucp_request_cancel nor closing the endpoint
 * completes it. The get is then given up (pxs__ucx_am_abandon), and the
 * callback, if it ever comes, finds no get. Freed by the callback. */
typedef struct ucx_rndv {
    ucx_t *u;
    ucx_get_t *g; /* NULL once given up; under u->am_lock */
} ucx_rndv_t;

static void rndv_done(void *request, ucs_status_t status, size_t length, void *user_data)
{
    (void)length;
    ucx_rndv_t *r = user_data;
    pthread_mutex_lock(&r->u->am_lock);
    ucx_get_t *g = r->g;
    if (g) g->rndv = NULL;
    pthread_mutex_unlock(&r->u->am_lock);
    free(r);
    if (request) ucp_request_free(request);
    if (g) pxs__ucx_get_finish(g, status == UCS_OK ? PXS_OK : pxs__ucx_status(status));
}

bool pxs__ucx_am_abandon(ucx_get_t *g)
{
    ucx_t *u = g->u;
    pthread_mutex_lock(&u->am_lock);
    ucx_rndv_t *r = g->rndv;
    if (r) r->g = NULL, g->rndv = NULL;
    pthread_mutex_unlock(&u->am_lock);
    if (r) pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
    return r != NULL;
}

/* A reply whose bytes (if any) are all in data: settle its get. */
void pxs__ucx_am_settle(ucx_t *u, const am_rep_t *r, const void *data, size_t len)
{
    ucx_get_t *g = take(u, r->id, TAKE_GET);
    if (!g) return; /* cancelled or taken back meanwhile: drop it */
    if (r->status != PXS_OK) {
        pxs__ucx_get_finish(g, r->status);
        return;
    }
    if (g->lease) { /* the object is held for us: read it ourselves */
        g->leased = true;
        /* The owner's evict waits lease_ms from a moment after we sent the
         * request; half of it from then is ours for certain (one clock on
         * one node, leases being same-node only). */
        g->lease_until_ns = r->lease_ms == LEASE_UNBOUNDED ? UINT64_MAX
                            : g->sent_ns + (uint64_t)r->lease_ms * 500000ull;
        if (len) pxs__ucx_get_finish(g, PXS_ERR_CORRUPT);
        else pxs__ucx_rma_data(g);
        return;
    }
    if (len != g->size) {
        pxs__ucx_get_finish(g, PXS_ERR_CORRUPT);
        return;
    }
    if (len) memcpy(g->dst, data, len);
    pxs__ucx_get_finish(g, PXS_OK);
}

static ucs_status_t on_reply(void *arg, const void *header, size_t header_len, void *data,
                             size_t len, const ucp_am_recv_param_t *param)
{
    ucx_t *u = arg;
    am_rep_t r;
    if (header_len != sizeof r) return UCS_OK;
    memcpy(&r, header, sizeof r);
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        pxs__ucx_am_settle(u, &r, data, len);
        return UCS_OK;
    }
    ucx_get_t *g = take(u, r.id, TAKE_GET);
    if (!g) return UCS_OK; /* cancelled meanwhile: drop it */
    if (r.status != PXS_OK || g->lease || len != g->size) {
        pxs__ucx_get_finish(g, r.status != PXS_OK ? r.status : PXS_ERR_CORRUPT);
        return UCS_OK;
    }
    ucx_rndv_t *rv = malloc(sizeof *rv);
    if (!rv) {
        pxs__ucx_get_finish(g, PXS_ERR_NO_MEMORY); /* its bytes are dropped */
        return UCS_OK;
    }
    *rv = (ucx_rndv_t){.u = u, .g = g};
    g->rndv = rv; /* before receiving: a cancel that sees it may abandon */
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.recv_am = rndv_done,
                               .user_data = rv};
    atomic_store(&g->receiving, 1);
    void *req = ucp_am_recv_data_nbx(u->worker, data, g->dst, len, &prm);
    if (req == NULL) rndv_done(NULL, UCS_OK, len, rv);
    else if (UCS_PTR_IS_ERR(req)) rndv_done(NULL, UCS_PTR_STATUS(req), len, rv);
    return UCS_INPROGRESS;
}

/* A lease request in flight. Its own copy: its get may be cancelled, or
 * taken back (ucx_stall.c), and end before UCX has sent it. */
typedef struct {
    ucx_t *u;
    am_req_t hdr;
} lsend_t;

static void request_sent(void *request, ucs_status_t status, void *user_data)
{
    lsend_t *s = user_data;
    if (request) ucp_request_free(request);
    ucx_get_t *g;
    if (status != UCS_OK && (g = pxs__ucx_am_take(s->u, s->hdr.id)))
        pxs__ucx_get_finish(g, pxs__ucx_status(status));
    free(s);
}

pxs_status_t pxs__ucx_am_get(ucx_get_t *g, uint64_t addr, uint32_t slot)
{
    ucx_t *u = g->u;
    pxs_status_t st = table_add(u, g);
    if (st != PXS_OK) {
        pxs__ucx_get_finish(g, st);
        return st;
    }
    uint32_t flags = g->lease ? AM_REQ_LEASE : 0;
    /* inflight counts this get: alone, up to UCX_AM_EAGER_MAX; among others,
     * whose handshakes overlap, up to UCX_AM_EAGER_BUSY_MAX (ucx.h). */
    size_t eager_max = atomic_load(&g->peer->inflight) > 1 ? UCX_AM_EAGER_BUSY_MAX : UCX_AM_EAGER_MAX;
    if (!g->peer->same_node && g->size <= eager_max) flags |= AM_REQ_EAGER;
    g->am_hdr = (am_req_t){.id = g->id, .gen = g->expect, .addr = addr, .len = g->size,
                           .slot = slot, .flags = flags};
    if (!g->lease) { /* goes with the next batch to this owner (ucx_batch.c) */
        pxs__ucx_batch_add(g);
        return PXS_OK;
    }
    lsend_t *s = malloc(sizeof *s);
    if (!s) {
        if (pxs__ucx_am_take(u, g->id)) pxs__ucx_get_finish(g, PXS_ERR_NO_MEMORY);
        return PXS_ERR_NO_MEMORY;
    }
    *s = (lsend_t){.u = u, .hdr = g->am_hdr};
    /* The lease is read with the key taken with the endpoint (its epoch). */
    if (!pxs__ucx_peer_enter(g->peer, &g->epoch)) {
        free(s);
        if (pxs__ucx_am_take(u, g->id)) pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
        return PXS_ERR_TIMEOUT;
    }
    pxs__ucx_am_send(g->peer->ep, AM_REQ, &s->hdr, sizeof s->hdr, NULL, 0,
                     UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER, request_sent, s);
    pxs__ucx_peer_leave(g->peer);
    atomic_store(&g->asked, true); /* g is still ours: a take-back waits for this */
    return PXS_OK;
}

static void release_sent(void *request, ucs_status_t status, void *user_data)
{
    (void)status;
    free(user_data);
    if (request) ucp_request_free(request);
}

/* Fire and forget: if it cannot go (no memory, the endpoint closing), the
 * owner's evict of the object waits out its timeout and goes on. */
void pxs__ucx_am_send_rel(ucx_peer_t *q, uint64_t id)
{
    am_rel_t *m = malloc(sizeof *m);
    if (!m) return;
    *m = (am_rel_t){.id = id};
    if (!pxs__ucx_peer_enter(q, NULL)) {
        free(m);
        return;
    }
    pxs__ucx_am_send(q->ep, AM_REL, m, sizeof *m, NULL, 0,
                     UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER, release_sent, m);
    pxs__ucx_peer_leave(q);
}

void pxs__ucx_am_release(ucx_get_t *g) { pxs__ucx_am_send_rel(g->peer, g->id); }

/* Cancel: out of the table (a late reply is dropped): true, settled.
 * False when it is past that and the caller must wait for it (ucx_cancel:
 * a bounded wait, then the endpoint closes, then pxs__ucx_am_abandon): a
 * leased object being read by a UCP get, bytes arriving by rendezvous
 * (ucx_rndv_t), or one read by attach (ucx_stall.c), which ends by
 * itself. */
bool pxs__ucx_am_cancel(ucx_get_t *g)
{
    ucx_t *u = g->u;
    if (pxs__ucx_am_take(u, g->id)) {
        withdraw(g); /* an answer may come yet */
        pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
        return true;
    }
    if (g->leased) return false;
    return !atomic_load(&g->receiving); /* true: already finished */
}

/* The peer's endpoint is going: the gets waiting for its answers end now
 * (a leased object's answer would send a UCP get on the closed endpoint). */
void pxs__ucx_am_peer_reset(ucx_t *u, const ucx_peer_t *q)
{
    for (;;) {
        ucx_get_t *g = NULL;
        pthread_mutex_lock(&u->am_lock);
        for (uint32_t i = 0; i < u->am_cap && !g; i++)
            if (u->am_gets[i] && u->am_gets[i]->peer == q) g = u->am_gets[i];
        pthread_mutex_unlock(&u->am_lock);
        if (!g || !(g = take(u, g->id, TAKE_GET))) return;
        pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
    }
}

pxs_status_t pxs__ucx_am_init(ucx_t *u)
{
    pthread_mutex_init(&u->am_lock, NULL); /* first: am_fini undoes a partial init */
    pxs__ucx_hold_init(u);
    u->slots = calloc(u->tab_slots, sizeof *u->slots);
    if (!u->slots) return PXS_ERR_NO_MEMORY;
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .arg = u};
    hp.id = AM_REQ;
    hp.cb = on_request;
    ucs_status_t st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    if (st == UCS_OK) {
        hp.id = AM_REP;
        hp.cb = on_reply;
        st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    }
    if (st == UCS_OK) {
        hp.id = AM_REL;
        hp.cb = on_release;
        st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    }
    if (st != UCS_OK) {
        pxs_error("UCX active message handlers: %s", ucs_status_string(st));
        return pxs__ucx_status(st);
    }
    return pxs__ucx_batch_init(u);
}

void pxs__ucx_am_fini(ucx_t *u)
{
    pxs__ucx_batch_fini(u);
    pxs__ucx_hold_fini(u);
    free(u->slots);
    free(u->am_gets);
    free(u->am_free);
    pthread_mutex_destroy(&u->am_lock);
}
