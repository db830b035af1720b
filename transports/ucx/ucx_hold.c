/* An owner's holds on its objects for readers' requests, by reader
 * endpoint and request id (ucx_am.c): the leases it granted and not yet
 * saw released, and the replies it sent by rendezvous that UCX has not yet
 * completed. Each holds its slot's reply count, so an evict waits for it.
 *
 * A release names the request it ends, so it ends only a hold that exists,
 * and only once. That lets a reader withdraw a request it gave up on
 * (taken back from a stalled owner, or cancelled) without knowing whether
 * the owner answered it: UCX delivers a reader's active messages over one
 * endpoint in the order sent (its shared-memory and TCP transports queue a
 * send behind pending ones), so the withdrawal arrives after the request.
 * A lease it finds is over. A reply it finds may stay unfinished in UCX (a
 * rendezvous completes when the reader's worker next runs, and UCX 1.13
 * cannot cancel a send), but the reader has promised not to receive it:
 * the get is out of its table, so its handler drops the reply without
 * pulling a byte, and the object's memory is no longer read for it. A
 * request refused, or answered and completed, has no entry: its
 * withdrawal is dropped. Nothing then depends on the reader's progress
 * after it gave up.
 *
 * Whoever takes an entry out (a release, the send's completion, an evict
 * that gives up) drops its count, so no count is dropped twice.
 *
 * Open addressing with linear probing; the key (endpoint, id) is never
 * (0, 0): request ids carry a sequence number from 1 in their upper half. */
#include <stdlib.h>

#include "ucx.h"

struct ucx_hold {
    uintptr_t ep;
    uint64_t id; /* 0: empty */
    uint32_t slot;
    bool lease;  /* a lease, else a reply in flight */
};

static size_t hold_hash(uintptr_t ep, uint64_t id, uint32_t cap)
{
    uint64_t h = (id ^ ((uint64_t)ep * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static void put(ucx_hold_t *tab, uint32_t cap, const ucx_hold_t *e)
{
    size_t i = hold_hash(e->ep, e->id, cap);
    while (tab[i].id) i = (i + 1) & (cap - 1);
    tab[i] = *e;
}

/* The table again with cap entries, without the holds of drop_slot (-1:
 * none), *leases_p of which were leases. */
static bool rebuild(ucx_t *u, uint32_t cap, int64_t drop_slot, uint32_t *leases_p)
{
    ucx_hold_t *tab = calloc(cap, sizeof *tab);
    if (!tab) return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < u->hold_cap; i++) {
        const ucx_hold_t *e = &u->hold_tab[i];
        if (!e->id) continue;
        if ((int64_t)e->slot == drop_slot) {
            *leases_p += e->lease;
            continue;
        }
        put(tab, cap, e);
        n++;
    }
    free(u->hold_tab);
    u->hold_tab = tab;
    u->hold_cap = cap;
    u->hold_n = n;
    return true;
}

void pxs__ucx_hold_init(ucx_t *u)
{
    pthread_mutex_init(&u->hold_lock, NULL);
    u->hold_tab = NULL;
    u->hold_cap = u->hold_n = 0;
}

void pxs__ucx_hold_fini(ucx_t *u)
{
    free(u->hold_tab);
    u->hold_tab = NULL;
    pthread_mutex_destroy(&u->hold_lock);
}

bool pxs__ucx_hold_add(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t slot, bool lease)
{
    const ucx_hold_t e = {.ep = (uintptr_t)ep, .id = id, .slot = slot, .lease = lease};
    uint32_t none = 0;
    pthread_mutex_lock(&u->hold_lock);
    /* At most 3/4 full: probes stay short. */
    bool ok = (u->hold_n + 1) * 4 <= u->hold_cap * 3 ||
              rebuild(u, u->hold_cap ? 2 * u->hold_cap : 64, -1, &none);
    if (ok) {
        put(u->hold_tab, u->hold_cap, &e);
        u->hold_n++;
    }
    pthread_mutex_unlock(&u->hold_lock);
    return ok;
}

bool pxs__ucx_hold_drop(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t *slot_p, bool *lease_p)
{
    bool found = false;
    pthread_mutex_lock(&u->hold_lock);
    uint32_t cap = u->hold_cap;
    if (cap && id) {
        size_t i = hold_hash((uintptr_t)ep, id, cap);
        while (u->hold_tab[i].id &&
               (u->hold_tab[i].id != id || u->hold_tab[i].ep != (uintptr_t)ep))
            i = (i + 1) & (cap - 1);
        if (u->hold_tab[i].id) {
            found = true;
            *slot_p = u->hold_tab[i].slot;
            *lease_p = u->hold_tab[i].lease;
            /* Close the gap: move back each later entry of the run that
             * hashes at or before it, so no probe stops short. */
            size_t gap = i;
            for (size_t j = (i + 1) & (cap - 1); u->hold_tab[j].id; j = (j + 1) & (cap - 1)) {
                size_t home = hold_hash(u->hold_tab[j].ep, u->hold_tab[j].id, cap);
                if (((j - home) & (cap - 1)) >= ((j - gap) & (cap - 1))) {
                    u->hold_tab[gap] = u->hold_tab[j];
                    gap = j;
                }
            }
            u->hold_tab[gap] = (ucx_hold_t){0};
            u->hold_n--;
        }
    }
    pthread_mutex_unlock(&u->hold_lock);
    return found;
}

uint32_t pxs__ucx_hold_drop_slot(ucx_t *u, uint32_t slot, uint32_t *leases_p)
{
    *leases_p = 0;
    pthread_mutex_lock(&u->hold_lock);
    uint32_t before = u->hold_n, n = 0;
    if (u->hold_cap && rebuild(u, u->hold_cap, slot, leases_p)) n = before - u->hold_n;
    pthread_mutex_unlock(&u->hold_lock);
    return n;
}
