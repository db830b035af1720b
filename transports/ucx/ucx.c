/* The get protocol and the ops table.
 *
 * A get reads the bytes, and only once they have arrived reads the
 * owner's generation word for the object. Generations never return, so
 * finding the proxy's generation there proves the object was live during
 * the whole transfer; anything else means evicted (or reused) and the
 * bytes are discarded. UCX does not order two gets to one owner, hence the
 * second is issued from the first one's completion.
 *
 * A first read of the generation comes before the bytes too: over
 * transports where UCX emulates gets with active messages (tcp, and sm for
 * memory it did not allocate), the OWNER's worker copies from whatever
 * address is asked, so a get of an evicted and freed object would fault
 * the owner. The early check keeps stale proxies away from freed memory;
 * only an evict racing a get in flight remains (see docs/design.md).
 *
 * A leased get (ucx_am.c) skips both generation reads: the owner checked
 * the object when it granted the lease and its evict waits for the
 * release, so only bytes that arrive after the lease may have run out are
 * checked (the second read). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../src/log.h"
#include "../shm/shm_rd.h"
#include "ucx.h"

_Static_assert(sizeof(ucx_get_t) <= PXS_REQ_SCRATCH, "get state exceeds request scratch");

/* Pace (ucx.h, ucx_pace_t): a get the caller waits for, of ordinary
 * memory of an owner on this node that polls, goes the way whose gets at
 * its size have cost less lately (pace_note), and now and then the other
 * way, so that a change of either is seen: once the time spent the
 * winning way since the loser's last try is PACE_SHARE times what a try
 * is expected to cost, but at least PACE_TRY_LEAST gets apart. So trying
 * costs at most 1/PACE_SHARE of the time however slow the loser is (an
 * owner whose core is busy answers an am get at its next time slice, 4 ms
 * later), and a winner that one late get made look slower than it is
 * (either way has them) is found again within a few dozen gets. */
#define PACE_SHARE     64u
#define PACE_TRY_LEAST 16u
/* What an am get costs its caller after it completes, which its time here
 * does not see: the core's wait noticing it and the request going back to
 * the pool (measured 110 ns with an owner that answers promptly). Without
 * it am looked faster than attach where they are within that of each
 * other, as while the owner answers late (8 B: 1.5 against 1.45 us). */
#define PACE_AM_UNSEEN_NS 100u

/* A get that get_now (node_now) left to UCX: what it found, for get,
 * which the core calls next on this thread with the same description
 * (resolve.c, resolve_start): the owner and key, so that get looks up
 * nothing again, and for pace the moment both ways are timed from, so
 * that the request's cost counts against am, whose cost it is. Initial-exec,
 * as the memo's pointer (wire_memo.c): one load, no __tls_get_addr per get. */
static __thread __attribute__((tls_model("initial-exec"))) struct {
    const ucx_t *u;
    const pxs_pdesc_t *p; /* NULL: nothing left */
    ucx_peer_t *q;
    ucp_rkey_h rkey;
    uint32_t epoch;       /* the peer's when the key was taken */
    uint64_t at;          /* when get_now looked */
    uint8_t pace;         /* PACE_OFF, PACE_WIN or PACE_TRY */
} left;

static inline ucx_pace_t *pace_of(const ucx_get_t *g)
{
    unsigned b = g->size ? 64u - (unsigned)__builtin_clzll(g->size) : 0;
    return &g->peer->pace[b < UCX_PACE_SIZES ? b : UCX_PACE_SIZES - 1];
}

/* How a get counts for pace: not (PACE_OFF), as a get the way that wins
 * (PACE_WIN), or as a try of the other (PACE_TRY). */
enum { PACE_OFF, PACE_WIN, PACE_TRY };

/* A way's time. The winner's: the mean, weighted to the latest 16 or so
 * gets (an owner descheduled between its answers makes am fast for most
 * gets and 4 ms for some, and a stall must weigh what it costs the caller;
 * one late get of tens of us, an interrupt, must not turn the choice). A
 * try's: down at once (a fast answer shows what the way costs now, the
 * late one before was the owner's or the kernel's moment: tries are few,
 * and a way wrongly thought slow is tried ever more seldom), up by a
 * quarter of its excess (a try that stalls again pushes the next further
 * off). */
static void pace_note(_Atomic uint32_t *est, uint64_t ns, int how)
{
    uint64_t e = atomic_load_explicit(est, memory_order_relaxed);
    if (!e) { /* the first: taken as it is */
    } else if (how == PACE_WIN)
        ns = ns > e ? e + (ns - e) / 16 : e - (e - ns) / 16;
    else if (ns > e)
        ns = e + (ns - e) / 4;
    if (ns > UINT32_MAX) ns = UINT32_MAX;
    atomic_store_explicit(est, ns ? (uint32_t)ns : 1u, memory_order_relaxed);
}

/* Which way this get goes (*cma_p; by am it is timed from pace_t0, the
 * same moment) and how it counts (PACE_WIN or PACE_TRY). The count is not
 * atomic across threads: a lost turn only moves a try. */
static int pace_way(const ucx_get_t *g, bool *cma_p)
{
    ucx_pace_t *p = pace_of(g);
    uint32_t am = atomic_load_explicit(&p->am_ns, memory_order_relaxed);
    uint32_t cma = atomic_load_explicit(&p->cma_ns, memory_order_relaxed);
    if (!am || !cma) { /* learn am's time, then cma's */
        *cma_p = am != 0;
        return PACE_TRY;
    }
    bool cma_wins = cma < am;
    uint32_t win = cma_wins ? cma : am, lose = cma_wins ? am : cma;
    uint64_t every = (uint64_t)lose * PACE_SHARE / win;
    if (every < PACE_TRY_LEAST) every = PACE_TRY_LEAST;
    uint32_t n = atomic_load_explicit(&p->since, memory_order_relaxed) + 1;
    bool other = n >= every;
    atomic_store_explicit(&p->since, other ? 0 : n, memory_order_relaxed);
    *cma_p = cma_wins != other;
    return other ? PACE_TRY : PACE_WIN;
}

void pxs__ucx_get_finish(ucx_get_t *g, pxs_status_t st)
{
    if (g->leased) { /* before the request completes: g lives in it */
        g->leased = false;
        pxs__ucx_am_release(g);
    }
    if (st != PXS_OK && st != PXS_ERR_EVICTED && st != PXS_ERR_CORRUPT &&
        pxs__ucx_peer_alive(g->peer) != PXS_OK)
        st = PXS_ERR_PEER_DEAD;
    if (g->pace_t0 && st == PXS_OK)
        pace_note(&pace_of(g)->am_ns, pxs__now_ns() - g->pace_t0 + PACE_AM_UNSEEN_NS, g->pace);
    atomic_fetch_sub(&g->peer->inflight, 1);
    atomic_fetch_sub(&g->u->own_gets, 1);
    if (g->req) pxs__request_complete(g->req, st);
    else atomic_store(&g->result, st);
}

/* A UCP get's callbacks take their get back from its slot (ucx_ops.c): none
 * if it was given up on, and then its request may be another's by now. */
static void gen_done(void *request, ucs_status_t status, void *user_data)
{
    uint64_t gen;
    ucx_get_t *g = pxs__ucx_op_done(user_data, &gen);
    if (request) ucp_request_free(request);
    if (!g) return;
    if (status != UCS_OK) pxs__ucx_get_finish(g, pxs__ucx_status(status));
    else if (gen != g->expect) pxs__ucx_get_finish(g, PXS_ERR_EVICTED);
    else if (g->phase == 0) pxs__ucx_rma_data(g);
    else pxs__ucx_get_finish(g, PXS_OK);
}

/* Before each UCP get: a cancel lets the get in flight end, then stops;
 * a reset since the get took its keys, or under way, ends it. True: the
 * peer entered (pxs__ucx_peer_enter); leave it after the call. */
static bool go_on(ucx_get_t *g)
{
    if (!atomic_load(&g->cancelled) && pxs__ucx_peer_enter(g->peer, &g->epoch)) return true;
    pxs__ucx_get_finish(g, PXS_ERR_TIMEOUT);
    return false;
}

/* A UCP get's slot, the peer entered; on failure the peer is left and the
 * get ended. */
static ucx_op_t *op_take(ucx_get_t *g)
{
    ucx_op_t *op = pxs__ucx_op_take(g);
    if (op) return op;
    pxs__ucx_peer_leave(g->peer);
    pxs__ucx_get_finish(g, PXS_ERR_NO_MEMORY);
    return NULL;
}

static void issue_gen(ucx_get_t *g)
{
    if (!go_on(g)) return;
    ucx_op_t *op = op_take(g);
    if (!op) return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.send = gen_done,
                               .user_data = op};
    void *r = ucp_get_nbx(g->peer->ep, &op->gen, sizeof op->gen, g->tab_raddr,
                          g->peer->tab_rkey, &prm);
    pxs__ucx_peer_leave(g->peer);
    if (r == NULL) gen_done(NULL, UCS_OK, op);
    else if (UCS_PTR_IS_ERR(r)) gen_done(NULL, UCS_PTR_STATUS(r), op);
}

static void data_landed(ucx_get_t *g, ucs_status_t status)
{
    g->phase = 2;
    if (status != UCS_OK) pxs__ucx_get_finish(g, pxs__ucx_status(status));
    else if (g->leased && pxs__now_ns() < g->lease_until_ns) pxs__ucx_get_finish(g, PXS_OK);
    else issue_gen(g); /* no lease, or it may have run out: check */
}

static void data_done(void *request, ucs_status_t status, void *user_data)
{
    ucx_get_t *g = pxs__ucx_op_done(user_data, NULL);
    if (request) ucp_request_free(request);
    if (g) data_landed(g, status);
}

void pxs__ucx_rma_data(ucx_get_t *g)
{
    g->phase = 1;
    if (g->size == 0) {
        data_landed(g, UCS_OK);
        return;
    }
    if (!go_on(g)) return;
    ucx_op_t *op = op_take(g);
    if (!op) return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.send = data_done,
                               .user_data = op};
    void *r = ucp_get_nbx(g->peer->ep, g->dst, g->size, g->data_raddr, g->rkey, &prm);
    pxs__ucx_peer_leave(g->peer);
    if (r == NULL) data_done(NULL, UCS_OK, op);
    else if (UCS_PTR_IS_ERR(r)) data_done(NULL, UCS_PTR_STATUS(r), op);
}

/* Common start of a get or a check (blob parsed): the peer, its keys, the state. */
static pxs_status_t start(ucx_t *u, const pxs_pdesc_t *p, ucx_get_t *g, ucp_rkey_h *rkey_p,
                          const ucx_blob_t *b)
{
    uint64_t now; /* one clock read per get: liveness, beat, lease, pace */
    ucx_peer_t *q;
    if (left.p == p && left.u == u && left.q->owner == p->owner) {
        q = left.q; /* found by get_now just before */
        *rkey_p = left.rkey;
        g->epoch = left.epoch;
        now = left.at;
        if (left.pace) {
            g->pace_t0 = now;
            g->pace = left.pace;
        }
        left.p = NULL;
    } else {
        now = pxs__now_ns();
        pthread_mutex_lock(&u->lock);
        pxs_status_t st = pxs__ucx_peer_get(u, p, b, now, &q, rkey_p);
        if (st == PXS_OK) g->epoch = atomic_load(&q->epoch);
        pthread_mutex_unlock(&u->lock);
        if (st != PXS_OK) return st;
    }
    g->u = u;
    g->peer = q;
    g->sent_ns = now;
    g->expect = p->gen;
    g->tab_raddr = b->tab_addr + (uint64_t)p->slot * sizeof(uint64_t);
    g->data_raddr = b->data_addr;
    atomic_store(&g->result, PXS_INPROGRESS);
    atomic_fetch_add(&q->inflight, 1);
    atomic_fetch_add(&u->own_gets, 1);
    return PXS_OK;
}

/* The owner's mirror words of slot (generation, extent), mapped here: UCX
 * maps memory it allocated into readers on the owner's node when it
 * unpacks the key, and the peer keeps where (ucx_peer.c, ep_connect).
 * False where it does not (a reset unmapped it), or (tab_addr, tab_slots)
 * name another mirror than the one mapped, or slot lies beyond it. */
static bool mirror_words(const ucx_peer_t *q, uint64_t tab_addr, uint32_t tab_slots,
                         uint32_t slot, _Atomic uint64_t **gen_p, ucx_ext_t **ext_p)
{
    uint8_t *m = atomic_load(&q->mirror); /* after the reader's flag (seq_cst) */
    if (!m || tab_addr != q->tab_addr || tab_slots != q->tab_slots || slot >= tab_slots)
        return false;
    *gen_p = (_Atomic uint64_t *)m + slot;
    *ext_p = (ucx_ext_t *)(m + (uint64_t)tab_slots * sizeof(uint64_t)) + slot;
    return true;
}

/* mirror_words for the mirror a blob names, if it has extents. */
static bool mirror_map(const ucx_get_t *g, const ucx_blob_t *b, uint32_t slot,
                       _Atomic uint64_t **gen_p, ucx_ext_t **ext_p)
{
    return (b->flags & UCX_BLOB_EXTENTS) &&
           mirror_words(g->peer, b->tab_addr, b->tab_slots, slot, gen_p, ext_p);
}

/* The kernel refused an attach (ptrace scope): the path goes off, said once. */
static void cma_refused(const ucx_get_t *g)
{
    if (atomic_exchange(&g->u->node_cma, false))
        pxs_warn("ucx: process_vm_readv of owner %d not permitted (ptrace scope?); "
                 "user buffers on this node are read through UCX", (int)g->peer->pid);
}

/* Read the object from src (mapped here) or, src NULL, from the owner's
 * memory by attach (pxs__proc_read), with the checks the am protocol's owner
 * would make, on the mirror: the generation before and after the copy and
 * the slot's exact extent (a forged address or length reads nothing). An
 * evict racing the copy costs nothing but the bytes, which the second
 * check discards. */
static pxs_status_t checked_read(ucx_get_t *g, _Atomic uint64_t *gen, ucx_ext_t *ext,
                                 const void *src)
{
    if (atomic_load_explicit(gen, memory_order_acquire) != g->expect) return PXS_ERR_EVICTED;
    bool exact = atomic_load_explicit(&ext->addr, memory_order_relaxed) == g->data_raddr &&
                 atomic_load_explicit(&ext->len, memory_order_relaxed) == g->size;
    pxs_status_t st = PXS_OK;
    if (exact && g->size) {
        if (src) memcpy(g->dst, src, g->size);
        else st = pxs__proc_read(g->peer->pid, g->peer->start, &g->peer->memfd, g->dst,
                                 g->data_raddr, g->size);
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(gen, memory_order_relaxed) != g->expect) return PXS_ERR_EVICTED;
    if (!exact) return PXS_ERR_CORRUPT; /* the slot's object is another */
    if (st != PXS_OK) return st;
    /* A dead owner's mirror outlives it in our mapping, and its pid may
     * name another process by now: say so. */
    return pxs__ucx_peer_alive(g->peer);
}

/* Objects in memory UCX allocated (PXS_PUT_COPY, pxs_alloc), on one node
 * over shared memory: UCX maps the owner's segment too, and its own get
 * would be a memcpy from that mapping. So read in place: no round trip,
 * and the owner's CPU is not involved at all. The mapping stays ours until
 * the key is destroyed. UNSUPPORTED: not mapped here. */
static pxs_status_t mapped_get(ucx_get_t *g, const ucx_blob_t *b, uint32_t slot)
{
    void *src;
    _Atomic uint64_t *gen;
    ucx_ext_t *ext;
    /* Only memory UCX allocated may be mapped (the owner says which). */
    if (!(b->flags & UCX_BLOB_UCXMEM) || !g->peer->same_node ||
        ucp_rkey_ptr(g->rkey, g->data_raddr, &src) != UCS_OK ||
        !mirror_map(g, b, slot, &gen, &ext))
        return PXS_ERR_UNSUPPORTED;
    return checked_read(g, gen, ext, src);
}

/* What the owner's beat says of it (u->beat_fresh_ns; no beat mapped: as
 * asleep), and whether it stopped polling with our gets in flight lately
 * (ucx_stall.c): then it is taken to stall, however fresh its beat. */
enum { OWNER_POLLS, OWNER_SLEEPS, OWNER_STALLS };
static int owner_state(const ucx_get_t *g)
{
    const _Atomic uint64_t *bp = atomic_load(&g->peer->beat); /* under the reader's flag */
    uint64_t beat = bp ? atomic_load_explicit(bp, memory_order_relaxed) : 0;
    if (!beat) return OWNER_SLEEPS;
    /* A beat after the get started (another core's clock) is fresh too. */
    if ((int64_t)(g->sent_ns - beat) >= (int64_t)g->u->beat_fresh_ns) return OWNER_STALLS;
    uint64_t hold = atomic_load_explicit(&g->peer->hold_until, memory_order_relaxed);
    return (int64_t)(hold - g->sent_ns) > 0 ? OWNER_STALLS : OWNER_POLLS;
}

pxs_status_t pxs__ucx_attach_read(ucx_get_t *g)
{
    const ucx_peer_t *q = g->peer;
    uint32_t slot = g->am_hdr.slot;
    _Atomic uint64_t *gen;
    ucx_ext_t *ext;
    /* The mirror stays mapped while this thread's flag is up, or, with no
     * flag to raise, while we hold the lock resets take. */
    pxs_shm_rd_t *rd = pxs__shm_rd_enter();
    if (!rd) pthread_mutex_lock(&g->u->lock);
    pxs_status_t st = PXS_ERR_TIMEOUT; /* the endpoint was reset meanwhile (am_peer_reset) */
    /* The mirror the get was checked against (ucx_get), still mapped. */
    if (mirror_words(q, g->tab_raddr - (uint64_t)slot * sizeof(uint64_t), q->tab_slots, slot,
                     &gen, &ext))
        st = checked_read(g, gen, ext, NULL);
    if (rd) pxs__shm_rd_leave(rd);
    else pthread_mutex_unlock(&g->u->lock);
    if (st == PXS_ERR_UNREACHABLE) cma_refused(g);
    return st;
}

/* Ordinary memory of an owner on this node (ucx_node.c): UCX has the
 * owner's worker copy it. That costs a round trip while the owner polls
 * (0.65 us at 8 B here, or 1.5 us in runs where it answers late), a
 * wake-up too while its progress thread sleeps, and whatever it takes to
 * be scheduled while it polls no more (2.7 ms with its core shared with a
 * busy process). Attach, as the shm connector reads user buffers
 * (pxs__proc_read), needs nothing of the owner but costs a system call
 * (1.1 us at 8 B) and copies slower (1 MiB: 64 against 23 us). So: while the owner polls,
 * the round trip, except for a get the caller waits for, which goes the
 * way measured sooner (pace_way; gets in flight together pipeline in the
 * owner, 64 of 8 B at 29 MB/s even when it answers late, against 5.6 by
 * system calls); the system call while it stalls; while it sleeps, the
 * system call up to u->cma_max bytes (a wake-up weighs less beyond). A
 * kernel that refuses (ptrace scope) turns the path off. UNSUPPORTED: not
 * for this get; UCX serves it. */
static pxs_status_t cma_get(ucx_get_t *g, const ucx_blob_t *b, uint32_t slot, bool waited,
                            uint8_t *pace_p)
{
    ucx_t *u = g->u;
    _Atomic uint64_t *gen;
    ucx_ext_t *ext;
    *pace_p = PACE_OFF;
    if (!atomic_load_explicit(&u->node_cma, memory_order_relaxed)) return PXS_ERR_UNSUPPORTED;
    /* The beat first (mapped once per owner): while the owner polls
     * nothing more is looked up. Every get looks, those behind others in
     * flight too: an owner that stalls holds those, not this one. */
    int owner = owner_state(g);
    bool by_cma = false;
    int pace = owner == OWNER_POLLS && waited ? pace_way(g, &by_cma) : PACE_OFF;
    if (owner == OWNER_POLLS ? !by_cma : owner == OWNER_SLEEPS && g->size > u->cma_max) {
        *pace_p = (uint8_t)pace;
        return PXS_ERR_UNSUPPORTED;
    }
    if (!mirror_map(g, b, slot, &gen, &ext)) return PXS_ERR_UNSUPPORTED;
    pxs_status_t st = checked_read(g, gen, ext, NULL);
    if (st == PXS_OK && pace) pace_note(&pace_of(g)->cma_ns, pxs__now_ns() - g->sent_ns, pace);
    if (st != PXS_ERR_UNREACHABLE) return st;
    cma_refused(g);
    return PXS_ERR_UNSUPPORTED;
}

/* The owner of p, known and seen alive within the millisecond, for an
 * object of ordinary memory, without the lock: peers live until fini.
 * Such a get needs no key unless it goes by UCX. NULL: ask peer_get. */
static ucx_peer_t *hot_peer(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, uint64_t now)
{
    if (b->flags & UCX_BLOB_UCXMEM) return NULL; /* mapped_get needs the key */
    ucx_peer_t *q = atomic_load_explicit(&u->hot[p->owner & (UCX_HOT - 1)], memory_order_acquire);
    if (!q || q->owner != p->owner || now - atomic_load(&q->alive_ns) > UCX_ALIVE_EVERY_NS)
        return NULL;
    return q;
}

static pxs_status_t peer_locked(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                                uint64_t now, ucx_get_t *g)
{
    pthread_mutex_lock(&u->lock);
    pxs_status_t st = pxs__ucx_peer_get(u, p, b, now, &g->peer, &g->rkey);
    if (st == PXS_OK) g->epoch = atomic_load(&g->peer->epoch); /* the keys' */
    pthread_mutex_unlock(&u->lock);
    return st;
}

/* Any other object of an owner on this node, without a request (the
 * core's pool and lock): in place where UCX maps it (mapped_get), else
 * by cross-memory attach where cma_get says so. What it leaves to UCX, it
 * leaves with what it found (left). */
static pxs_status_t node_read(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst,
                              bool waited)
{
    ucx_get_t g; /* what the reads below use, set one by one: no memset */
    uint64_t now = pxs__now_ns(); /* liveness, the beat, pace */
    pxs_status_t st;
    g.rkey = NULL;
    if (!(g.peer = hot_peer(u, p, b, now)) && (st = peer_locked(u, p, b, now, &g)) != PXS_OK)
        return st;
    g.u = u;
    g.dst = dst;
    g.size = p->size;
    g.expect = p->gen;
    g.sent_ns = now;
    g.tab_raddr = b->tab_addr + (uint64_t)p->slot * sizeof(uint64_t);
    g.data_raddr = b->data_addr;
    uint8_t pace;
    if ((g.rkey && (st = mapped_get(&g, b, p->slot)) != PXS_ERR_UNSUPPORTED) ||
        (st = cma_get(&g, b, p->slot, waited, &pace)) != PXS_ERR_UNSUPPORTED)
        return st;
    /* UCX's way: the key now, if the owner came from hot_peer. */
    if (!g.rkey && (st = peer_locked(u, p, b, now, &g)) != PXS_OK) return st;
    left.u = u;
    left.p = p;
    left.q = g.peer;
    left.rkey = g.rkey;
    left.epoch = g.epoch;
    left.at = now;
    left.pace = pace;
    return PXS_ERR_UNSUPPORTED;
}

/* node_read with this thread's reader flag up: the owner's beat, mirror
 * and mapped memory, found without the lock, stay mapped meanwhile even if
 * another thread resets the peer (ucx_peer.c, keys_drop). */
static pxs_status_t node_now(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst,
                             bool waited)
{
    if (b->node != u->node) return PXS_ERR_UNSUPPORTED;
    pxs_shm_rd_t *rd = pxs__shm_rd_enter();
    if (!rd) return PXS_ERR_UNSUPPORTED; /* no flag (no memory): UCX's way maps nothing */
    pxs_status_t st = node_read(u, p, b, dst, waited);
    pxs__shm_rd_leave(rd);
    return st;
}

/* Our own objects are read in place: no transport is faster, and UCX
 * 1.13's shared-memory loopback was seen serving a freed region's old
 * pages for new memory mapped at the same address (never across processes). */
static pxs_status_t self_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst)
{
    const pxs_objtab_t *t = pxs__conn_objtab(u->conn);
    if (p->slot >= t->hdr->nslots) return PXS_ERR_CORRUPT;
    if (pxs__objtab_gen(t, p->slot) != p->gen) return PXS_ERR_EVICTED;
    if (dst && p->size) memcpy(dst, (const void *)(uintptr_t)b->data_addr, p->size);
    return pxs__objtab_still(t, p->slot, p->gen) ? PXS_OK : PXS_ERR_EVICTED;
}

/* The gets done without UCX: the caller's own object, a pxs_alloc object
 * of this node read through its mapped segment, and the other objects of
 * this node that node_now reads. The core calls get only for the others. */
static pxs_status_t ucx_get_now(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, bool waited)
{
    ucx_t *u = c->priv;
    ucx_blob_t b;
    pxs_status_t st = pxs__ucx_blob_parse(p, &b);
    if (st != PXS_OK) return st;
    left.p = NULL;
    if (p->owner == pxs__conn_owner_id(c)) return self_get(u, p, &b, dst);
    if ((st = pxs__ucx_node_get(u, p, &b, dst)) != PXS_ERR_UNSUPPORTED) return st;
    return node_now(u, p, &b, dst, waited);
}

static pxs_status_t ucx_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    ucx_t *u = c->priv;
    ucx_blob_t b;
    pxs_status_t st = pxs__ucx_blob_parse(p, &b);
    if (st != PXS_OK) return st;
    ucx_get_t *g = pxs__request_scratch(req);
    ucp_rkey_h rkey;
    memset(g, 0, sizeof *g);
    st = start(u, p, g, &rkey, &b);
    if (st != PXS_OK) return st;
    g->req = req;
    g->dst = dst;
    g->size = p->size;
    g->rkey = rkey;
    if (g->peer->use_am) { /* one round trip; large objects: a lease, then a get */
        g->lease = p->size >= g->peer->lease_min;
        /* Unanswered, it may be read by attach (ucx_stall.c). */
        _Atomic uint64_t *gen;
        ucx_ext_t *ext;
        g->attach = g->peer->same_node &&
                    atomic_load_explicit(&u->node_cma, memory_order_relaxed) &&
                    mirror_map(g, &b, p->slot, &gen, &ext);
        pxs__ucx_am_get(g, b.data_addr, p->slot);
    }
    else issue_gen(g); /* generation, then bytes, then generation */
    return pxs__request_status(req);
}

/* A request timed out or is freed unfinished. An owner-validated get still
 * waiting for its answer stops alone. A UCP get writes into dst until it
 * completes, and only closing the endpoint stops it sooner; so let the one
 * in flight end (an owner that serves does so within microseconds) and
 * issue no more. Only if it has not within CANCEL_WAIT_NS (an owner that
 * stopped serving: UCX's gets of ordinary memory need it) does the
 * endpoint go, ending every get to that owner; the next get reconnects. */
#define CANCEL_WAIT_NS 100000000ull

static void ucx_cancel(pxs_conn_t *c, pxs_request_t *req)
{
    ucx_t *u = c->priv;
    ucx_get_t *g = pxs__request_scratch(req);
    if (!g->peer) return;
    if (g->peer->use_am && pxs__ucx_am_cancel(g)) return;
    atomic_store(&g->cancelled, 1);
    uint64_t until = pxs__now_ns() + CANCEL_WAIT_NS;
    while (pxs__request_status(req) == PXS_INPROGRESS && pxs__now_ns() < until)
        pxs__ucx_progress(c);
    if (pxs__request_status(req) != PXS_INPROGRESS) return;
    pthread_mutex_lock(&u->lock);
    pxs__ucx_peer_reset(u, g->peer);
    pthread_mutex_unlock(&u->lock);
    if (pxs__request_status(req) == PXS_INPROGRESS && g->peer->use_am) pxs__ucx_am_abandon(g);
}

/* exists: one read of the generation word, waited for here. */
static pxs_status_t ucx_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    ucx_t *u = c->priv;
    ucx_blob_t b;
    pxs_status_t st = pxs__ucx_blob_parse(p, &b);
    if (st != PXS_OK) return st;
    if (p->owner == pxs__conn_owner_id(c)) return self_get(u, p, &b, NULL);
    if ((st = pxs__ucx_node_get(u, p, &b, NULL)) != PXS_ERR_UNSUPPORTED) return st;
    left.p = NULL; /* no get_now came before: what one left is not this check's */
    ucx_get_t g;
    ucp_rkey_h rkey;
    memset(&g, 0, sizeof g);
    st = start(u, p, &g, &rkey, &b);
    if (st != PXS_OK) return st;
    g.phase = 2; /* one read of the generation, no bytes */
    issue_gen(&g);
    int timeout = pxs__conn_timeout_ms(c);
    uint64_t deadline = timeout < 0 ? 0 : pxs__now_ns() + (uint64_t)timeout * 1000000ull;
    while ((st = atomic_load(&g.result)) == PXS_INPROGRESS) {
        pxs__ucx_progress(c);
        if (deadline && pxs__now_ns() >= deadline) {
            pthread_mutex_lock(&u->lock);
            pxs__ucx_peer_reset(u, g.peer); /* completes g before g goes */
            pthread_mutex_unlock(&u->lock);
            return PXS_ERR_TIMEOUT;
        }
    }
    /* On the owner's node the generation word is read from its mapped
     * mirror, which outlives the owner; start looked for life at most once
     * a millisecond: an owner that died since still answers. Ask now. */
    if (st == PXS_OK && g.peer->same_node) st = pxs__ucx_peer_alive(g.peer);
    return st;
}

/* PXS_UCX_PROTOCOL: am (default), rma or auto.
 * am: owner-validated gets, safe whatever the proxy or the caller does.
 * rma: three UCP gets; on one node small gets are one-sided here (measured
 *   0.23 us, 0.41 us with the owner asleep) but large ones are still served
 *   by the owner's worker, which then reads whatever address it is asked:
 *   a forged proxy or a buffer freed before its evict can fault the owner.
 * auto: rma to owners on this node, am to the others. */
static pxs_status_t choose_protocol(ucx_t *u)
{
    const char *proto = getenv("PXS_UCX_PROTOCOL");
    if (!proto || !*proto || !strcmp(proto, "am")) u->proto = UCX_PROTO_AM;
    else if (!strcmp(proto, "auto")) u->proto = UCX_PROTO_AUTO;
    else if (!strcmp(proto, "rma")) u->proto = UCX_PROTO_RMA;
    else {
        pxs_error("PXS_UCX_PROTOCOL=\"%s\": expected auto, am or rma", proto);
        return PXS_ERR_INVALID_PARAM;
    }
    /* PXS_UCX_LEASE_MIN (bytes): see ucx_am.c. */
    pxs_status_t st = pxs__ucx_env_num("PXS_UCX_LEASE_MIN", UCX_LEASE_MIN_DEFAULT, UINT64_MAX,
                                       "bytes", &u->lease_min);
    if (st != PXS_OK) return st;
    /* Same-node gets are one-sided only if cma or a shared-memory transport
     * may be used; with UCX_TLS=tcp alone they are emulated too. */
    const char *tls = getenv("UCX_TLS");
    u->node_one_sided = !tls || !*tls || tls[0] == '^' || strstr(tls, "all") ||
                        strstr(tls, "cma") || strstr(tls, "sm");
    return PXS_OK;
}

static pxs_status_t ucx_init(pxs_conn_t *c)
{
    ucx_t *u = calloc(1, sizeof *u);
    if (!u) return PXS_ERR_NO_MEMORY;
    u->conn = c;
    c->priv = u;
    pthread_mutex_init(&u->lock, NULL);
    u->pid = getpid();
    u->start = pxs__proc_start_time(u->pid);
    u->node = pxs__node_id();
    pxs__ucx_ops_init(u);
    pxs_status_t st = pxs__ucx_err_mode_init(u);
    if (st == PXS_OK) st = pxs__ucx_worker_init(u);
    if (st != PXS_OK) goto err;
    /* Readers check generations remotely. The core's table is a file-backed
     * mapping that UCX serves through the owner's worker; a mirror in memory
     * UCX allocates is read one-sidedly on a node (measured: the rma get of
     * an 8 B object 5.0 -> see perf/RESULTS.md). pack sets a slot, dereg
     * clears it, both before the put or evict returns. */
    const pxs_objtab_t *t = pxs__conn_objtab(c);
    u->tab_slots = t->hdr->nslots;
    void *mirror;
    size_t mirror_len =
        (size_t)u->tab_slots * (sizeof(uint64_t) + sizeof(ucx_ext_t)) + sizeof(uint64_t);
    st = pxs__ucx_mem_alloc(c, mirror_len, &mirror);
    if (st != PXS_OK) {
        pxs__ucx_worker_fini(u);
        goto err;
    }
    memset(mirror, 0, mirror_len);
    u->gens = mirror;
    u->exts = (ucx_ext_t *)(void *)(u->gens + u->tab_slots);
    u->beat = (_Atomic uint64_t *)(void *)(u->exts + u->tab_slots);
    /* Without a progress thread nothing serves readers until the
     * application progresses: an ancient beat, not a sleeping one. */
    atomic_store(u->beat, u->thread_on ? 0 : 1);
    u->tab_reg = u->regs; /* mem_alloc put it at the front */
    u->tab_addr = (uint64_t)(uintptr_t)mirror;
    st = choose_protocol(u);
    bool am_tried = st == PXS_OK; /* am_fini undoes a partial am_init too */
    if (am_tried) st = pxs__ucx_am_init(u);
    if (st == PXS_OK) st = pxs__ucx_node_init(u);
    /* Last: the thread beats into the mirror and serves the am handlers. */
    if (st == PXS_OK) st = pxs__ucx_thread_start(u);
    if (st != PXS_OK) {
        pxs__ucx_node_fini(u);
        pxs__ucx_regs_fini(u);
        pxs__ucx_worker_fini(u);
        if (am_tried) pxs__ucx_am_fini(u);
        goto err;
    }
    return PXS_OK;
err:
    pxs__ucx_ops_fini(u);
    pthread_mutex_destroy(&u->lock);
    free(u);
    c->priv = NULL;
    return st;
}

/* Handles: objects mapped on this node (ucx_node.c) are read in place;
 * for the others read answers UNSUPPORTED and the core gets the whole
 * object, as for a connector without handles. */
static pxs_status_t ucx_hopen(pxs_conn_t *c, const pxs_pdesc_t *p, void **state_p)
{
    ucx_blob_t b;
    pxs_status_t st = pxs__ucx_blob_parse(p, &b);
    *state_p = NULL;
    if (st != PXS_OK) return st;
    if (p->owner == pxs__conn_owner_id(c)) return PXS_OK;
    st = pxs__ucx_node_open(c->priv, p, &b, state_p);
    return st == PXS_ERR_UNSUPPORTED ? PXS_OK : st;
}

static pxs_status_t ucx_hread(pxs_conn_t *c, const pxs_pdesc_t *p, void *state, uint64_t off,
                              void *dst, size_t len)
{
    if (!state) return PXS_ERR_UNSUPPORTED;
    return pxs__ucx_node_read(c->priv, p, state, off, dst, len);
}

static void ucx_hclose(pxs_conn_t *c, const pxs_pdesc_t *p, void *state)
{
    if (state) pxs__ucx_node_close(c->priv, p, state);
}

static void ucx_fini(pxs_conn_t *c)
{
    ucx_t *u = c->priv;
    pxs__ucx_thread_stop(u);
    pxs__ucx_node_fini(u);
    pxs__ucx_peers_close(u);
    pxs__ucx_regs_fini(u);
    pxs__ucx_worker_fini(u);
    pxs__ucx_peers_free(u);
    pxs__ucx_am_fini(u);
    pxs__ucx_ops_fini(u);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

const pxs_conn_ops_t pxs__conn_ucx_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "ucx",
    .id = PXS_CONNECTOR_UCX,
    /* Not PXS_CAP_ONE_SIDED: the default am protocol needs the owner's
     * worker (its progress thread); rma is one-sided where UCX can be. */
    .caps = PXS_CAP_CROSS_PROCESS | PXS_CAP_CROSS_NODE | PXS_CAP_ZERO_COPY_PUT |
            PXS_CAP_NONBLOCKING,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "UCX (UCX_TLS: sm, cma, tcp, verbs): owner-validated gets over active messages, "
               "or UCP gets with generation checks (PXS_UCX_PROTOCOL)",
    .init = ucx_init,
    .fini = ucx_fini,
    .mem_alloc = pxs__ucx_mem_alloc,
    .mem_free = pxs__ucx_mem_free,
    .mem_reg = pxs__ucx_mem_reg,
    .mem_dereg = pxs__ucx_mem_dereg,
    .pack_remote = pxs__ucx_pack,
    .get = ucx_get,
    .cancel = ucx_cancel,
    .check = ucx_check,
    .view = pxs__conn_unsup_view,
    .view_release = pxs__conn_noop_view_release,
    .progress = pxs__ucx_progress,
    .open = ucx_hopen,
    .read = ucx_hread,
    .close = ucx_hclose,
    .get_now = ucx_get_now,
};
