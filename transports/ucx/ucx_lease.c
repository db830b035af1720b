/* The leases an owner has granted and not yet seen released, by reader
 * endpoint and request id (ucx_am.c).
 *
 * A release names the request it ends, so only a lease that was granted
 * is released, and only once. That lets a reader release a request it gave
 * up on (taken back from a stalled owner, or cancelled) without knowing
 * whether the owner granted it: UCX delivers a reader's active messages
 * over one endpoint in the order sent (its shared-memory and TCP
 * transports queue a send behind pending ones), so the release arrives
 * after the request; a request that was refused has no entry, and its
 * release is dropped. Nothing then depends on the reader's progress after
 * it gave up, as a late grant answered by the reader would.
 *
 * Open addressing with linear probing; the key (endpoint, id) is never
 * (0, 0): request ids carry a sequence number from 1 in their upper half. */
#include <stdlib.h>

#include "ucx.h"

struct ucx_lease {
    uintptr_t ep;
    uint64_t id; /* 0: empty */
    uint32_t slot;
};

static size_t lease_hash(uintptr_t ep, uint64_t id, uint32_t cap)
{
    uint64_t h = (id ^ ((uint64_t)ep * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static void put(ucx_lease_t *tab, uint32_t cap, const ucx_lease_t *e)
{
    size_t i = lease_hash(e->ep, e->id, cap);
    while (tab[i].id) i = (i + 1) & (cap - 1);
    tab[i] = *e;
}

/* The table again with cap entries, without the leases of drop_slot (-1: none). */
static bool rebuild(ucx_t *u, uint32_t cap, int64_t drop_slot)
{
    ucx_lease_t *tab = calloc(cap, sizeof *tab);
    if (!tab) return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < u->lease_cap; i++) {
        const ucx_lease_t *e = &u->lease_tab[i];
        if (!e->id || (int64_t)e->slot == drop_slot) continue;
        put(tab, cap, e);
        n++;
    }
    free(u->lease_tab);
    u->lease_tab = tab;
    u->lease_cap = cap;
    u->lease_n = n;
    return true;
}

void pxs__ucx_lease_init(ucx_t *u)
{
    pthread_mutex_init(&u->lease_lock, NULL);
    u->lease_tab = NULL;
    u->lease_cap = u->lease_n = 0;
}

void pxs__ucx_lease_fini(ucx_t *u)
{
    free(u->lease_tab);
    u->lease_tab = NULL;
    pthread_mutex_destroy(&u->lease_lock);
}

bool pxs__ucx_lease_add(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t slot)
{
    const ucx_lease_t e = {.ep = (uintptr_t)ep, .id = id, .slot = slot};
    pthread_mutex_lock(&u->lease_lock);
    /* At most 3/4 full: probes stay short. */
    bool ok = (u->lease_n + 1) * 4 <= u->lease_cap * 3 ||
              rebuild(u, u->lease_cap ? 2 * u->lease_cap : 64, -1);
    if (ok) {
        put(u->lease_tab, u->lease_cap, &e);
        u->lease_n++;
    }
    pthread_mutex_unlock(&u->lease_lock);
    return ok;
}

bool pxs__ucx_lease_drop(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t *slot_p)
{
    bool found = false;
    pthread_mutex_lock(&u->lease_lock);
    uint32_t cap = u->lease_cap;
    if (cap && id) {
        size_t i = lease_hash((uintptr_t)ep, id, cap);
        while (u->lease_tab[i].id &&
               (u->lease_tab[i].id != id || u->lease_tab[i].ep != (uintptr_t)ep))
            i = (i + 1) & (cap - 1);
        if (u->lease_tab[i].id) {
            found = true;
            *slot_p = u->lease_tab[i].slot;
            /* Close the gap: move back each later entry of the run that
             * hashes at or before it, so no probe stops short. */
            size_t gap = i;
            for (size_t j = (i + 1) & (cap - 1); u->lease_tab[j].id; j = (j + 1) & (cap - 1)) {
                size_t home = lease_hash(u->lease_tab[j].ep, u->lease_tab[j].id, cap);
                if (((j - home) & (cap - 1)) >= ((j - gap) & (cap - 1))) {
                    u->lease_tab[gap] = u->lease_tab[j];
                    gap = j;
                }
            }
            u->lease_tab[gap] = (ucx_lease_t){0};
            u->lease_n--;
        }
    }
    pthread_mutex_unlock(&u->lease_lock);
    return found;
}

uint32_t pxs__ucx_lease_drop_slot(ucx_t *u, uint32_t slot)
{
    pthread_mutex_lock(&u->lease_lock);
    uint32_t before = u->lease_n, n = 0;
    if (u->lease_cap && rebuild(u, u->lease_cap, slot)) n = before - u->lease_n;
    pthread_mutex_unlock(&u->lease_lock);
    return n;
}
