/* Owners on this node that stop polling with our gets in flight.
 *
 * A reader sends an owner-validated get to an owner on its node only while
 * the owner's beat says it polls (ucx.c, cma_get). An owner can stop right
 * after: descheduled (its core shared with a busy process: every few ms),
 * or computing. UCX's get of ordinary memory then waits for its next time
 * slice, milliseconds. Progress looks for such owners (a beat UCX_STALL_NS
 * old while gets to it are in flight), holds each: its ordinary memory is
 * read by attach for UCX_STALL_HOLD_NS, and its gets still unanswered are
 * taken back and read by attach now, as if it had answered. A late answer
 * finds no get and is dropped; each get taken back withdraws its request
 * (ucx_am.c, ucx_hold.c), so that a late grant, or a late reply by
 * rendezvous, does not keep the owner's evict waiting, whether or not the
 * reader runs again.
 * A get whose UCP get of the bytes is under way waits (its bytes may still
 * land in dst). */
#include "../../src/log.h"
#include "ucx.h"

/* Gets taken back per look (more wait for the next one, UCX_STALL_NS/2
 * later). */
#define STALL_TAKE_MAX 64

/* Hold the owners on this node that stall with gets of ours in flight;
 * true if any. */
static bool hold_stalled(ucx_t *u, uint64_t now)
{
    bool any = false;
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < u->npeers; i++) {
        ucx_peer_t *q = u->peers[i];
        const _Atomic uint64_t *bp = atomic_load(&q->beat); /* resets take the lock */
        if (!q->same_node || !bp || !atomic_load(&q->inflight)) continue;
        uint64_t beat = atomic_load_explicit(bp, memory_order_relaxed);
        /* 0: asleep, to be woken; 1: no thread, never sent to (cma_get). */
        if (beat <= 1 || (int64_t)(now - beat) < (int64_t)UCX_STALL_NS) continue;
        any = true;
        uint64_t until = atomic_load(&q->hold_until);
        if ((int64_t)(until - now) > 0) continue; /* held already */
        /* Stalls soon after the last hold: hold longer (UCX_STALL_HOLD_NS). */
        bool again = q->hold_ns && now - until < UCX_STALL_HOLD_MAX_NS;
        q->hold_ns = !again ? UCX_STALL_HOLD_NS
                     : q->hold_ns < UCX_STALL_HOLD_MAX_NS / 2 ? 2 * q->hold_ns
                                                               : UCX_STALL_HOLD_MAX_NS;
        pxs_debug("ucx: owner %d stopped polling with %u gets in flight (its beat %llu us "
                  "old); its ordinary memory is read by attach for %llu ms",
                  (int)q->pid, atomic_load(&q->inflight),
                  (unsigned long long)((now - beat) / 1000),
                  (unsigned long long)(q->hold_ns / 1000000));
        atomic_store(&q->hold_until, now + q->hold_ns);
    }
    pthread_mutex_unlock(&u->lock);
    return any;
}

void pxs__ucx_stall_check(ucx_t *u, uint64_t now)
{
    uint64_t at = atomic_load_explicit(&u->stall_at, memory_order_relaxed);
    if (now - at < UCX_STALL_NS / 2 || !atomic_load_explicit(&u->own_gets, memory_order_relaxed))
        return;
    /* One thread looks at a time; the others go on. */
    if (!atomic_compare_exchange_strong(&u->stall_at, &at, now)) return;
    /* Work reached us lately: an owner is busy sending, perhaps this one. */
    uint64_t ev = atomic_load_explicit(&u->event_ns, memory_order_relaxed);
    if ((int64_t)(now - ev) < (int64_t)UCX_STALL_NS ||
        !atomic_load_explicit(&u->node_cma, memory_order_relaxed) || !hold_stalled(u, now))
        return;
    uint64_t ids[STALL_TAKE_MAX];
    size_t n = pxs__ucx_am_stalled(u, now, ids, STALL_TAKE_MAX);
    for (size_t i = 0; i < n; i++) {
        ucx_get_t *g = pxs__ucx_am_take_to_read(u, ids[i]);
        if (g) pxs__ucx_get_finish(g, pxs__ucx_attach_read(g));
    }
}
