/* Leases of the "mpi" connector: one round trip per get of an object read
 * again and again, where the seqlock read takes two (mpi_conn.c).
 *
 * The owner keeps a lease word per slot of its generation table, attached
 * to the window too, and promises: an object whose lease word is at least
 * its generation when it is evicted keeps its memory for lease_us after
 * the revocation (the evict waits). A reader that reads an object a second
 * time raises the word to the proxy's generation (MPI_Accumulate, MPI_MAX:
 * generations of a slot only grow, so a stale proxy cannot lower it) in
 * the epoch of the bytes, and reads the generation after the flush, as it
 * always does. That read, issued at t0, still finding the generation, was
 * served before any revocation, so the memory is the object's until
 * t0 + lease_us on any clock that runs at the owner's rate: bytes whose
 * flush returned by t0 + lease_us / 2 (on the reader's clock) were read
 * while it held, and need no generation read of their own (bytes read
 * before t0 are good too: generations never return, so the object was
 * live all along until then). A lease is renewed by a generation read that
 * travels with the bytes of a get (same epoch, no extra round trip) when
 * it nears its end or has run out; the word is raised already, so that
 * read starts the next lease, which covers those very bytes too.
 *
 * Correctness never depends on the timing: a get whose flush returns late
 * falls back to the generation read after it. Objects read once never
 * make their evict wait. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi_int.h"

#define NLEASE 256 /* reader's cache: direct mapped, a power of two */

enum { L_EMPTY, L_SEEN, L_MARKING, L_LEASED };

struct pxs_mpi_lease {
    uint64_t tab, gen;
    uint64_t exp;  /* L_LEASED: bytes whose flush returned by then are good */
    uint64_t at;   /* when marking or the last renewal began */
    uint64_t data, size; /* the bytes the proxy names (key) */
    uint32_t slot;
    int32_t rank;
    uint8_t state;
    bool renewing; /* a renewal is in flight for this lease */
};

pxs_status_t pxs__mpi_lease_setup(pxs_mpi_t *m, uint32_t nslots)
{
    /* Every rank takes the leases other owners grant; it grants its own
     * only with lease_us. */
    if (!(m->lcache = calloc(NLEASE, sizeof *m->lcache))) return PXS_ERR_NO_MEMORY;
    pthread_mutex_init(&m->lease_lock, NULL);
    m->nslots = nslots;
    if (!m->lease_us) return PXS_OK;
    if (!(m->ltab = calloc(nslots ? nslots : 1, sizeof *m->ltab))) {
        pxs__mpi_lease_free(m);
        return PXS_ERR_NO_MEMORY;
    }
    int rc = MPI_Win_attach(m->win, m->ltab, (MPI_Aint)(nslots * sizeof *m->ltab));
    if (rc != MPI_SUCCESS) {
        pxs__mpi_lease_free(m);
        return pxs__mpi_status(rc, "MPI_Win_attach (lease words)");
    }
    m->ltab_attached = true;
    return PXS_OK;
}

pxs_status_t pxs__mpi_tables_exchange(pxs_mpi_t *m, bool ok)
{
    pxs_mpi_tables_t mine = {0};
    if (ok) {
        MPI_Aint a = 0;
        MPI_Get_address((void *)m->tab_attached, &a);
        mine.tab = (uint64_t)a;
        if (m->ltab) {
            MPI_Get_address(m->ltab, &a);
            mine.ltab = (uint64_t)a;
            mine.lease_us = m->lease_us;
        }
        if (m->rec) {
            MPI_Get_address(m->rec, &a);
            mine.rec = (uint64_t)a;
        }
        if (m->pool) {
            MPI_Get_address(m->pool, &a);
            mine.pool = (uint64_t)a;
            mine.pool_size = m->pool_size;
        }
        mine.slots = m->nslots;
    }
    /* (Like init's other allocations, a failure here leaves the others
     * in the collective: init's own timeout does not cover them.) */
    if (!(m->peers = calloc((size_t)m->size, sizeof *m->peers))) return PXS_ERR_NO_MEMORY;
    int rc = MPI_Allgather(&mine, sizeof mine, MPI_BYTE, m->peers, sizeof mine, MPI_BYTE, m->comm);
    return rc == MPI_SUCCESS ? PXS_OK : pxs__mpi_status(rc, "MPI_Allgather (tables)");
}

void pxs__mpi_lease_free(pxs_mpi_t *m)
{
    free(m->peers);
    m->peers = NULL;
    if (m->ltab_attached) MPI_Win_detach(m->win, m->ltab);
    if (m->lcache) pthread_mutex_destroy(&m->lease_lock);
    m->ltab_attached = false;
    free(m->ltab);
    free(m->lcache);
    m->ltab = NULL;
    m->lcache = NULL;
}

static pxs_mpi_lease_t *entry(pxs_mpi_t *m, const pxs_mpi_lkey_t *k)
{
    uint64_t h = k->tab ^ (k->slot * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)k->rank << 40);
    h ^= h >> 29;
    return &m->lcache[h & (NLEASE - 1)];
}

static bool same(const pxs_mpi_lease_t *e, const pxs_mpi_lkey_t *k)
{
    return e->state != L_EMPTY && e->rank == k->rank && e->tab == k->tab && e->slot == k->slot &&
           e->gen == k->gen && e->data == k->data && e->size == k->size;
}

pxs_mpi_lplan_t pxs__mpi_lease_plan(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t now,
                                    uint64_t *exp, bool *renew)
{
    *exp = 0;
    *renew = false;
    if (!m->lcache || !k->lease_ns) return PXS_MPI_LEASE_NONE;
    pxs_mpi_lplan_t plan = PXS_MPI_LEASE_NONE;
    pthread_mutex_lock(&m->lease_lock);
    pxs_mpi_lease_t *e = entry(m, k);
    if (!same(e, k)) {
        *e = (pxs_mpi_lease_t){.tab = k->tab, .gen = k->gen, .data = k->data, .size = k->size,
                               .slot = k->slot, .rank = k->rank, .state = L_SEEN, .at = now};
    } else if (e->state == L_SEEN || (e->state == L_MARKING && now - e->at > k->lease_ns)) {
        /* Read a second time (or a mark that never settled: cancelled). */
        e->state = L_MARKING;
        e->at = now;
        plan = PXS_MPI_LEASE_MARK;
    } else if (e->state == L_LEASED) {
        *exp = e->exp;
        /* Near its end or run out: the next lease is read along with
         * these bytes, once at a time (or again if that read never
         * settled). */
        if ((now >= e->exp || e->exp - now < k->lease_ns / 8) &&
            (!e->renewing || now - e->at > k->lease_ns / 2)) {
            e->renewing = true;
            e->at = now;
            *renew = true;
        }
        plan = PXS_MPI_LEASE_HELD;
    }
    pthread_mutex_unlock(&m->lease_lock);
    return plan;
}

void pxs__mpi_lease_grant(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t t0)
{
    if (!m->lcache || !k->lease_ns) return;
    pthread_mutex_lock(&m->lease_lock);
    pxs_mpi_lease_t *e = entry(m, k);
    uint64_t exp = t0 + k->lease_ns / 2;
    if (!same(e, k)) {
        *e = (pxs_mpi_lease_t){.tab = k->tab, .gen = k->gen, .data = k->data, .size = k->size,
                               .slot = k->slot, .rank = k->rank};
    }
    if (e->state != L_LEASED || exp > e->exp) e->exp = exp;
    e->state = L_LEASED;
    e->renewing = false;
    pthread_mutex_unlock(&m->lease_lock);
}

uint64_t pxs__mpi_lease_until(pxs_mpi_t *m, const pxs_mpi_lkey_t *k)
{
    if (!m->lcache || !k->lease_ns) return 0;
    pthread_mutex_lock(&m->lease_lock);
    pxs_mpi_lease_t *e = entry(m, k);
    uint64_t exp = same(e, k) && e->state == L_LEASED ? e->exp : 0;
    pthread_mutex_unlock(&m->lease_lock);
    return exp;
}

void pxs__mpi_lease_drop(pxs_mpi_t *m, const pxs_mpi_lkey_t *k)
{
    if (!m->lcache) return;
    pthread_mutex_lock(&m->lease_lock);
    pxs_mpi_lease_t *e = entry(m, k);
    if (same(e, k)) e->state = L_EMPTY;
    pthread_mutex_unlock(&m->lease_lock);
}

_Thread_local bool pxs__mpi_evict_acked;

uint64_t pxs__mpi_lease_end(pxs_mpi_t *m, const pxs_object_t *o)
{
    if (!m->ltab || !o->gen || pxs__mpi_evict_acked) return 0;
    /* The revocation (a store to the slot's record, mem_dereg) comes
     * before this load of the lease word, as a reader's mark comes before
     * its read of the generation: one of the two sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    if (m->epoch) MPI_Win_sync(m->win);
    uint64_t word = __atomic_load_n(&m->ltab[o->slot], __ATOMIC_ACQUIRE);
    if (word < o->gen) return 0;
    return pxs__now_ns() + (uint64_t)m->lease_us * 1000;
}

void pxs__mpi_lease_wait(pxs_mpi_t *m, const pxs_object_t *o)
{
    uint64_t until = pxs__mpi_lease_end(m, o);
    if (!until) return;
    pxs_debug("mpi: slot %u was leased: its memory stays %u us after the evict", o->slot,
              m->lease_us);
    if (m->leaving || m->closing) {
        if (until > m->lease_end) m->lease_end = until;
        return;
    }
    pxs__mpi_lease_wait_until(m, until);
}

void pxs__mpi_lease_wait_until(pxs_mpi_t *m, uint64_t until)
{
    if (!m->osc_checks && m->epoch) {
        /* A component whose target serves gets (osc/pt2pt) serves them
         * only inside MPI: the gets that leaseholders send meanwhile are
         * served now, while the memory is still the object's. */
        unsigned polls = 0;
        while (pxs__now_ns() < until) {
            int flag = 0;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, m->comm, &flag, MPI_STATUS_IGNORE);
            pxs__mpi_backoff(&polls);
        }
        return;
    }
    for (uint64_t now; (now = pxs__now_ns()) < until;) {
        uint64_t left = until - now;
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}
