/* Reader side: owners we read from. One endpoint per owner, created from
 * the worker address in its proxies on first use; remote keys unpacked once
 * per endpoint and cached by their packed bytes. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../src/log.h"
#include "../shm/shm_rd.h"
#include "ucx.h"

/* How often owners with gets in flight are checked for life (same node:
 * UCX's shared-memory transports do not report a dead peer at all). */
#define LIVENESS_EVERY_NS 20000000ull

pxs_status_t pxs__ucx_blob_parse(const pxs_pdesc_t *p, ucx_blob_t *b)
{
    if (p->blob_len < UCX_BLOB_HDR) return PXS_ERR_CORRUPT;
    const uint8_t *s = p->blob;
    b->addr_len = pxs_rd16(s);
    b->rkey_len = pxs_rd16(s + 2);
    b->tab_rkey_len = pxs_rd16(s + 4);
    b->flags = pxs_rd16(s + 6);
    b->pid = (pid_t)pxs_rd32(s + 8);
    b->tab_slots = pxs_rd32(s + 12);
    b->start = pxs_rd64(s + 16);
    b->node = pxs_rd64(s + 24);
    b->data_addr = pxs_rd64(s + 32);
    b->tab_addr = pxs_rd64(s + 40);
    size_t seg_len = b->flags & UCX_BLOB_SEG ? UCX_BLOB_SEG_LEN : 0;
    size_t keys_end = (size_t)UCX_BLOB_HDR + b->addr_len + b->rkey_len + b->tab_rkey_len;
    if (keys_end + seg_len != p->blob_len || b->addr_len == 0 || b->rkey_len == 0 ||
        b->tab_rkey_len == 0)
        return PXS_ERR_CORRUPT;
    b->seg = seg_len ? pxs_rd32(s + keys_end) : 0;
    b->seg_off = seg_len ? pxs_rd64(s + keys_end + 4) : 0;
    if (seg_len && b->seg == 0) return PXS_ERR_CORRUPT;
    if (p->slot >= b->tab_slots || b->pid <= 0) return PXS_ERR_CORRUPT;
    b->addr = s + UCX_BLOB_HDR;
    b->rkey = b->addr + b->addr_len;
    b->tab_rkey = b->rkey + b->rkey_len;
    return PXS_OK;
}

static void ep_error(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    (void)ep;
    ucx_peer_t *q = arg;
    pxs_debug("UCX endpoint to owner %016llx failed: %s", (unsigned long long)q->owner,
              ucs_status_string(status));
    atomic_store(&q->failed, 1);
}

static pxs_status_t ep_connect(ucx_t *u, ucx_peer_t *q, const ucx_blob_t *b)
{
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)b->addr,
        .err_mode = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler = {.cb = ep_error, .arg = q},
    };
    /* On one node our pidfd checks see a dead owner, and UCX's shared-memory
     * transports cannot report one (with peer error handling they refuse to
     * connect at all): ask UCX for failure detection across nodes only. */
    ucs_status_t st = UCS_ERR_UNREACHABLE;
    ucp_ep_h e = NULL;
    if (!q->same_node && u->err_mode_peer) st = ucp_ep_create(u->worker, &ep, &e);
    if (st == UCS_ERR_UNREACHABLE) {
        ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
        st = ucp_ep_create(u->worker, &ep, &e);
    }
    if (st == UCS_ERR_SHMEM_SEGMENT) {
        /* UCX's posix transport opens the owner's FIFO through
         * /proc/PID/fd, which the kernel refuses where it refuses attach
         * (an owner not dumpable, Yama's scope 2): the owner is out of
         * reach here, not broken. */
        pxs_error("cannot reach owner %016llx (pid %d) over UCX's shared memory: its segment "
                  "is not ours to open (owner not dumpable, or ptrace scope); the owner may "
                  "set UCX_POSIX_USE_PROC_LINK=n, or UCX_TLS may add tcp",
                  (unsigned long long)q->owner, (int)q->pid);
        return PXS_ERR_UNREACHABLE;
    }
    if (st != UCS_OK) {
        pxs_error("cannot reach owner %016llx over UCX: %s", (unsigned long long)q->owner,
                  ucs_status_string(st));
        return pxs__ucx_status(st);
    }
    atomic_store(&q->ep, e);
    st = ucp_ep_rkey_unpack(e, b->tab_rkey, &q->tab_rkey);
    if (st != UCS_OK) {
        pxs__ucx_peer_reset(u, q);
        return PXS_ERR_CORRUPT;
    }
    /* The owner's beat, mapped once (ucx.h): every same-node get reads it. */
    void *bp;
    uint64_t beat_raddr =
        b->tab_addr + (uint64_t)b->tab_slots * (sizeof(uint64_t) + sizeof(ucx_ext_t));
    if (q->same_node && (b->flags & UCX_BLOB_BEAT) &&
        ucp_rkey_ptr(q->tab_rkey, beat_raddr, &bp) == UCS_OK)
        atomic_store(&q->beat, (const _Atomic uint64_t *)bp);
    /* And the mirror's words (ucx.c, mirror_map): the mapping is one piece. */
    void *mp;
    if (q->same_node && (b->flags & UCX_BLOB_EXTENTS) &&
        ucp_rkey_ptr(q->tab_rkey, b->tab_addr, &mp) == UCS_OK) {
        q->tab_addr = b->tab_addr;
        q->tab_slots = b->tab_slots;
        atomic_store_explicit(&q->mirror, (uint8_t *)mp, memory_order_release);
    }
    return PXS_OK;
}

static pxs_status_t rkey_get(ucx_peer_t *q, const ucx_blob_t *b, ucp_rkey_h *rkey_p)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < b->rkey_len; i++) h = (h ^ b->rkey[i]) * 0x100000001b3ull;
    for (size_t i = 0; i < q->nrkeys; i++) {
        if (q->rkeys[i].hash == h) {
            *rkey_p = q->rkeys[i].rkey;
            return PXS_OK;
        }
    }
    if (q->nrkeys == q->rkeys_cap) {
        size_t cap = q->rkeys_cap ? 2 * q->rkeys_cap : 8;
        ucx_rkey_t *n = realloc(q->rkeys, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        q->rkeys = n;
        q->rkeys_cap = cap;
    }
    ucp_rkey_h rk;
    ucs_status_t st = ucp_ep_rkey_unpack(q->ep, b->rkey, &rk);
    if (st != UCS_OK) return PXS_ERR_CORRUPT; /* not a key this endpoint can use */
    q->rkeys[q->nrkeys++] = (ucx_rkey_t){h, rk};
    *rkey_p = rk;
    return PXS_OK;
}

/* Only the same node can tell a dead owner from an unreachable one. */
pxs_status_t pxs__ucx_peer_alive(const ucx_peer_t *q)
{
    if (atomic_load(&q->dead)) return PXS_ERR_PEER_DEAD;
    if (!q->same_node) return PXS_OK;
    if (q->live && pxs__live_check(q->live, q->live_tid)) return PXS_OK;
    if (q->pidfd >= 0)
        return syscall(SYS_pidfd_send_signal, q->pidfd, 0, NULL, 0) != 0 && errno == ESRCH
                   ? PXS_ERR_PEER_DEAD
                   : PXS_OK;
    return pxs__proc_alive(q->pid, q->start);
}

pxs_status_t pxs__ucx_peer_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                               uint64_t now, ucx_peer_t **peer_p, ucp_rkey_h *rkey_p)
{
    ucx_peer_t *q = NULL;
    for (size_t i = 0; i < u->npeers && !q; i++)
        if (u->peers[i]->owner == p->owner) q = u->peers[i];
    if (!q) {
        if (u->npeers == u->peers_cap) {
            size_t cap = u->peers_cap ? 2 * u->peers_cap : 8;
            ucx_peer_t **n = realloc(u->peers, cap * sizeof *n);
            if (!n) return PXS_ERR_NO_MEMORY;
            u->peers = n;
            u->peers_cap = cap;
        }
        if (!(q = calloc(1, sizeof *q))) return PXS_ERR_NO_MEMORY;
        q->owner = p->owner;
        q->pid = b->pid;
        q->start = b->start;
        q->same_node = b->node == u->node;
        q->pidfd = -1;
        q->memfd = PXS_PROC_MEM_UNOPENED;
        q->use_am = u->proto == UCX_PROTO_AM ||
                    (u->proto == UCX_PROTO_AUTO && !(q->same_node && u->node_one_sided));
        /* Leases pay off where UCX moves a get's bytes faster than an
         * active-message reply: on one node (see ucx_am.c). */
        q->lease_min = q->same_node && u->node_one_sided ? u->lease_min : UINT64_MAX;
        if (q->same_node) {
            q->pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
            if (pxs__proc_alive(b->pid, b->start) != PXS_OK) atomic_store(&q->dead, 1);
            /* Mapped after the pidfd check: while the page's holder lives,
             * so does the process the pidfd names. */
            else q->live = pxs__live_map(b->pid, b->start, &q->live_tid);
        }
        u->peers[u->npeers++] = q;
    }
    /* Before a get, liveness only saves a wasted attempt: check it at most
     * once a millisecond (a get that fails checks again, see finish). */
    if (now - atomic_load(&q->alive_ns) > UCX_ALIVE_EVERY_NS) {
        pxs_status_t alive = pxs__ucx_peer_alive(q);
        if (alive != PXS_OK) return alive;
        atomic_store(&q->alive_ns, now);
    }
    pxs_status_t st;
    /* A failed endpoint (UCX's peer failure report) is replaced: the owner
     * may be reachable again. */
    if (q->ep && atomic_load(&q->failed)) pxs__ucx_peer_reset(u, q);
    if (!q->ep && (st = ep_connect(u, q, b)) != PXS_OK) return st;
    if ((st = rkey_get(q, b, rkey_p)) != PXS_OK) return st;
    atomic_store_explicit(&u->hot[q->owner & (UCX_HOT - 1)], q, memory_order_release);
    *peer_p = q;
    return PXS_OK;
}

/* A key a reset gave up: destroyed (its mapping with it) once no reader
 * can be in that mapping. Lock-free readers (ucx.c, node_now) raise their
 * thread's flag while they use the beat, the mirror or a mapped object;
 * a key is kept (u->retired) while any flag is up. Under u->lock. */
static void keys_drop(ucx_t *u, ucp_rkey_h k)
{
    if (u->nretired == u->retired_cap) {
        size_t cap = u->retired_cap ? 2 * u->retired_cap : 8;
        ucp_rkey_h *n = realloc(u->retired, cap * sizeof *n);
        if (!n) { /* never destroyed: a mapping lost, not one pulled from a reader */
            pxs_warn("ucx: no memory to retire a peer's key; its mapping stays");
            return;
        }
        u->retired = n;
        u->retired_cap = cap;
    }
    u->retired[u->nretired++] = k;
}

/* Destroy the retired keys, if no reader's flag is up (force: none can be,
 * at fini). Under u->lock. */
static void keys_drain(ucx_t *u, bool force)
{
    if (!u->nretired || (!force && pxs__shm_rd_any())) return;
    for (size_t i = 0; i < u->nretired; i++) ucp_rkey_destroy(u->retired[i]);
    u->nretired = 0;
}

/* Force-close: UCX stops the endpoint's outstanding gets, so no
 * destination is written after this returns; those it has not completed
 * (cancelled) by then end here. The keys belong to the endpoint and go
 * with it. */
void pxs__ucx_peer_reset(ucx_t *u, ucx_peer_t *q)
{
    if (!q->ep) return;
    atomic_store(&q->closing, 1);
    atomic_fetch_add(&q->epoch, 1);
    /* Threads in a UCP call on the endpoint, or with its keys, end it first
     * (pxs__ucx_peer_enter): microseconds, and none of them waits for us. */
    while (atomic_load(&q->users)) sched_yield();
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE};
    void *req = ucp_ep_close_nbx(q->ep, &prm);
    if (UCS_PTR_IS_PTR(req)) {
        while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(u->worker);
        ucp_request_free(req);
    }
    pxs__ucx_am_peer_reset(u, q);
    /* UCP gets the close left outstanding (tcp, an endpoint still
     * connecting): given up on, so their late callbacks find nothing. */
    for (ucx_get_t *g; (g = pxs__ucx_op_give_up_peer(u, q));)
        pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
    /* Unpublish what readers find without the lock, then the keys whose
     * mappings those are (seq_cst: a reader whose flag we miss sees NULL). */
    atomic_store(&q->beat, NULL);
    atomic_store(&q->mirror, NULL);
    for (size_t i = 0; i < q->nrkeys; i++) keys_drop(u, q->rkeys[i].rkey);
    q->nrkeys = 0;
    if (q->tab_rkey) keys_drop(u, q->tab_rkey);
    q->tab_rkey = NULL;
    keys_drain(u, false);
    atomic_store(&q->ep, NULL);
    atomic_store(&q->failed, 0);
    atomic_store(&q->closing, 0);
}

void pxs__ucx_peers_check(ucx_t *u)
{
    uint64_t now = pxs__now_ns();
    if (now < u->next_liveness_ns) return;
    u->next_liveness_ns = now + LIVENESS_EVERY_NS;
    pthread_mutex_lock(&u->lock);
    keys_drain(u, false);
    for (size_t i = 0; i < u->npeers; i++) {
        ucx_peer_t *q = u->peers[i];
        if (!atomic_load(&q->inflight) || !q->ep || pxs__ucx_peer_alive(q) == PXS_OK) continue;
        /* Gets to a dead owner would wait forever on shared memory. */
        pxs_debug("owner %016llx died with gets in flight", (unsigned long long)q->owner);
        atomic_store(&q->dead, 1);
        pxs__ucx_peer_reset(u, q);
    }
    pthread_mutex_unlock(&u->lock);
}

void pxs__ucx_peers_close(ucx_t *u)
{
    for (size_t i = 0; i < u->npeers; i++) pxs__ucx_peer_reset(u, u->peers[i]);
    keys_drain(u, true); /* before the worker goes; no reader is left at fini */
    free(u->retired);
    u->retired = NULL;
    u->retired_cap = 0;
}

void pxs__ucx_peers_free(ucx_t *u)
{
    for (size_t i = 0; i < u->npeers; i++) {
        ucx_peer_t *q = u->peers[i];
        /* What pace measured (ucx.c), for PXS_LOG_LEVEL=debug. */
        for (int b = 0; b < UCX_PACE_SIZES; b++)
            if (atomic_load(&q->pace[b].am_ns) || atomic_load(&q->pace[b].cma_ns))
                pxs_debug("ucx: owner %d, waited gets up to %llu B: am %u ns, cma %u ns, "
                          "%u gets since the loser's try",
                          (int)q->pid, b ? (1ull << b) - 1 : 0ull,
                          atomic_load(&q->pace[b].am_ns), atomic_load(&q->pace[b].cma_ns),
                          atomic_load(&q->pace[b].since));
        free(q->rkeys);
        if (q->pidfd >= 0) close(q->pidfd);
        if (q->memfd >= 0) close(q->memfd);
        pxs__live_unmap(q->live);
        free(q);
    }
    free(u->peers);
    u->peers = NULL;
    u->npeers = 0;
}
