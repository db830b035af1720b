/* The "mpi" connector: objects exposed in a dynamic window, read with
 * passive-target MPI_Get. For machines where MPI is the only fabric layer
 * at hand.
 *
 * Validation: the owner keeps a record per slot (generation, address,
 * length), attached to the window too. A get reads the bytes, flushes,
 * then reads the slot's record: the owner revokes it before its caller
 * may free or reuse the memory, and generations never return, so an
 * unchanged generation read after the bytes proves they were the object's
 * (seqlock reader, one-sided), and a proxy naming other bytes than the
 * record's is CORRUPT. (The core's generation table, which readers on the
 * owner's node map, stays attached too: a proxy names it.)
 *
 * Gets are non-blocking: get issues the bytes and queues the request;
 * progress settles every queued get together, one flush per target for
 * the bytes and one for the records (read as one span per target when
 * the slots are near), so a window of resolves costs two round trips per
 * target, not two per get. An object read again and again is leased
 * (mpi_lease.c): then its bytes alone, one round trip, are enough. */
#include <stdlib.h>
#include <string.h>

#include "mpi_int.h"
#include "mpi_wire.h"

#define CHUNK    (1u << 30)
#define ALIGN    64
#define GSPAN    512 /* slots read as one span of the records, at most */

static int settle_pending(pxs_mpi_t *m);

static const pxs_objtab_t *tab_of(pxs_conn_t *c) { return pxs__conn_objtab(c); }

pxs_status_t pxs__mpi_conn_setup(pxs_mpi_t *m)
{
    int rc = MPI_Win_create_dynamic(MPI_INFO_NULL, m->comm, &m->win);
    if (rc != MPI_SUCCESS) {
        int n = 0;
        MPI_Comm_size(m->comm, &n);
        if (n == 1)
            pxs_error("Open MPI 4.1's osc/rdma makes no dynamic window on a one-rank "
                      "communicator: choose another one-sided component (--mca osc ucx)");
        return pxs__mpi_status(rc, "MPI_Win_create_dynamic");
    }
    MPI_Win_set_errhandler(m->win, MPI_ERRORS_RETURN);
    /* Open MPI names a window after its component ("rdma window 3"). Only
     * osc/rdma is known to refuse a get of an address no region covers
     * (osc/ucx could not be tried here: it crashes in MPI_Win_free with
     * UCX 1.13); any other component, and any other MPI, is taken as one
     * that does not. */
    char wname[MPI_MAX_OBJECT_NAME] = "";
    int wlen = 0;
    MPI_Win_get_name(m->win, wname, &wlen);
    m->osc_checks = !strncmp(wname, "rdma window", 11);
    pxs_debug("mpi: window \"%s\": %s", wname,
              m->osc_checks ? "gets of detached memory fail at the origin"
                            : "zero-copy objects are read under a lease only");
    pthread_mutex_init(&m->pend_lock, NULL);
    m->regions = calloc(m->max_attach ? m->max_attach : 1, sizeof *m->regions);
    if (!m->regions) goto err;
    if (m->pool_size) {
        if (posix_memalign((void **)&m->pool, 4096, m->pool_size)) goto err;
        if (!(m->pool_free = malloc(sizeof *m->pool_free))) goto err;
        *m->pool_free = (pxs_mpi_blk_t){0, m->pool_size, 0, NULL};
        rc = MPI_Win_attach(m->win, m->pool, (MPI_Aint)m->pool_size);
        if (rc != MPI_SUCCESS) {
            pxs__mpi_status(rc, "MPI_Win_attach (pool)");
            goto err;
        }
    }
    m->win_open = true;
    return PXS_OK;
err:
    free(m->pool_free);
    free(m->pool);
    free(m->regions);
    m->pool = NULL;
    m->pool_free = NULL;
    m->regions = NULL;
    pthread_mutex_destroy(&m->pend_lock);
    MPI_Win_free(&m->win);
    return PXS_ERR_NO_MEMORY;
}

static void blk_list_free(pxs_mpi_blk_t **l)
{
    while (*l) {
        pxs_mpi_blk_t *b = *l;
        *l = b->next;
        free(b);
    }
}

void pxs__mpi_conn_free(pxs_mpi_t *m)
{
    if (!m->win_open) return;
    settle_pending(m); /* gets still queued complete before the window goes */
    m->win_open = false;
    if (m->epoch) MPI_Win_unlock_all(m->win);
    m->epoch = false;
    for (uint32_t i = 0; i < m->nregions; i++)
        MPI_Win_detach(m->win, (void *)m->regions[i].start);
    if (m->tab_attached) MPI_Win_detach(m->win, (void *)m->tab_attached);
    if (m->rec) MPI_Win_detach(m->win, m->rec);
    pxs__mpi_lease_free(m);
    if (m->pool) MPI_Win_detach(m->win, m->pool);
    MPI_Win_free(&m->win);
    blk_list_free(&m->pool_free);
    blk_list_free(&m->pool_held);
    m->pool_held_tail = NULL;
    free(m->pool);
    free(m->regions);
    free(m->gbuf);
    free(m->rec);
    pthread_mutex_destroy(&m->pend_lock);
    m->pool = NULL;
    m->regions = NULL;
    m->gbuf = NULL;
    m->rec = NULL;
    m->gbuf_cap = 0;
    m->nregions = 0;
    m->tab_attached = NULL;
}

static pxs_status_t mc_init(pxs_conn_t *c)
{
    pxs_mpi_t *m = pxs__mpi_of_ctx(c->ctx);
    if (!m || !m->win_open) {
        pxs_error("the mpi connector needs a context made by pxs_mpi_init");
        return PXS_ERR_NO_CONNECTOR;
    }
    const pxs_objtab_t *t = tab_of(c);
    int rc = MPI_Win_attach(m->win, (void *)t->gens, (MPI_Aint)(t->hdr->nslots * sizeof(uint64_t)));
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Win_attach (generations)");
    m->tab_attached = (const void *)t->gens;
    c->priv = m;
    size_t nrec = (size_t)t->hdr->nslots * PXS_MPI_REC;
    if (!(m->rec = calloc(nrec, sizeof *m->rec))) return PXS_ERR_NO_MEMORY;
    rc = MPI_Win_attach(m->win, m->rec, (MPI_Aint)(nrec * sizeof *m->rec));
    if (rc != MPI_SUCCESS) {
        free(m->rec);
        m->rec = NULL;
        return pxs__mpi_status(rc, "MPI_Win_attach (slot records)");
    }
    pxs_status_t st = pxs__mpi_lease_setup(m, t->hdr->nslots);
    if (st != PXS_OK) return st;
    /* Same-node reads without MPI (node_get; PXS_MPI_NODE_MAP=0: off). */
    const char *env = getenv("PXS_MPI_NODE_MAP");
    if (!(env && !strcmp(env, "0"))) {
        if (pxs__conn_node_init(&m->node_rd, c->ctx) == PXS_OK)
            atomic_store(&m->node_attach, true);
        else
            pxs_debug("mpi: no shm reader; objects on this node go through MPI_Get");
    }
    /* The epoch opens once the regions every proxy needs are attached. */
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Win_lock_all");
    m->epoch = true;
    return PXS_OK;
}

static void mc_fini(pxs_conn_t *c)
{
    /* pxs__mpi_conn_free tears the window down */
    if (c->priv) pxs__conn_node_fini(&((pxs_mpi_t *)c->priv)->node_rd);
}

/* --- pool for copying puts: first fit, coalescing ----------------------- */

static void pool_give_back(pxs_mpi_t *m, size_t off, size_t len)
{
    len = (len + ALIGN - 1) / ALIGN * ALIGN;
    if (!len) len = ALIGN;
    pxs_mpi_blk_t **pp = &m->pool_free, *prev = NULL;
    while (*pp && (*pp)->off < off) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    pxs_mpi_blk_t *next = *pp;
    if (prev && prev->off + prev->len == off) {
        prev->len += len;
        if (next && prev->off + prev->len == next->off) {
            prev->len += next->len;
            prev->next = next->next;
            free(next);
        }
        return;
    }
    if (next && off + len == next->off) {
        next->off = off;
        next->len += len;
        return;
    }
    pxs_mpi_blk_t *b = malloc(sizeof *b);
    if (!b) return; /* the pool shrinks by one block rather than fail evict */
    *b = (pxs_mpi_blk_t){off, len, 0, next};
    *pp = b;
}

/* Blocks of evicted copies whose leases ran out are free again. */
static void pool_reclaim(pxs_mpi_t *m, uint64_t now)
{
    while (m->pool_held && m->pool_held->until <= now) {
        pxs_mpi_blk_t *b = m->pool_held;
        m->pool_held = b->next;
        pool_give_back(m, b->off, b->len);
        free(b);
    }
    if (!m->pool_held) m->pool_held_tail = NULL;
}

/* The block of an evicted copy: free now, or held until its lease (until,
 * 0: none) is out. The pool is the connector's, so the evict need not
 * wait as it must for a caller's buffer; the block is reused only after. */
static void pool_release(pxs_mpi_t *m, size_t off, size_t len, uint64_t until)
{
    pxs_mpi_blk_t *b = until ? malloc(sizeof *b) : NULL;
    if (!b) {
        if (until) pxs__mpi_lease_wait_until(m, until); /* no memory to hold it */
        pool_give_back(m, off, len);
        return;
    }
    /* lease_us is fixed, so blocks come in expiry order. */
    *b = (pxs_mpi_blk_t){off, len, until, NULL};
    if (m->pool_held_tail) m->pool_held_tail->next = b;
    else m->pool_held = b;
    m->pool_held_tail = b;
}

static bool pool_take(pxs_mpi_t *m, size_t len, void **ptr_p)
{
    size_t need = (len + ALIGN - 1) / ALIGN * ALIGN;
    if (!need) need = ALIGN;
    for (pxs_mpi_blk_t **pp = &m->pool_free; *pp; pp = &(*pp)->next) {
        pxs_mpi_blk_t *b = *pp;
        if (b->len < need) continue;
        *ptr_p = m->pool + b->off;
        b->off += need;
        b->len -= need;
        if (!b->len) {
            *pp = b->next;
            free(b);
        }
        return true;
    }
    return false;
}

static pxs_status_t mc_mem_alloc(pxs_conn_t *c, size_t len, void **ptr_p)
{
    pxs_mpi_t *m = c->priv;
    for (;;) {
        if (m->pool_held) pool_reclaim(m, pxs__now_ns());
        if (pool_take(m, len, ptr_p)) return PXS_OK;
        if (!m->pool_held) break;
        /* Room may come as leases run out (within lease_us): wait for the
         * oldest, serving gets meanwhile where the component needs it. */
        pxs__mpi_lease_wait_until(m, m->pool_held->until);
    }
    pxs_error("the mpi connector's pool (%zu bytes, PXS_MPI_POOL_SIZE) has no room for %zu",
              m->pool_size, len);
    return PXS_ERR_NO_RESOURCE;
}

static void mc_mem_free(pxs_conn_t *c, void *ptr)
{
    /* The core does not say how long the block was: it is the object's,
     * freed with it, so mem_dereg (which knows) gives it back instead. */
    (void)c, (void)ptr;
}

static bool in_pool(const pxs_mpi_t *m, const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr, p = (uintptr_t)m->pool;
    return m->pool && a >= p && a + len <= p + m->pool_size;
}

/* --- exposing memory ------------------------------------------------------- */

/* A slot's record (generation, address, length), what MPI readers read
 * for the object: set at pack, before the proxy exists, and revoked first
 * thing at mem_dereg, before the memory may go. The generation is stored
 * last and cleared first, so a record read with the proxy's generation
 * names the object's bytes. */
static void record_set(pxs_mpi_t *m, const pxs_object_t *o, uint64_t addr)
{
    if (!m->rec) return;
    uint64_t *r = m->rec + (size_t)o->slot * PXS_MPI_REC;
    r[1] = addr;
    r[2] = o->len;
    __atomic_store_n(&r[0], o->gen, __ATOMIC_RELEASE);
}

static void record_revoke(pxs_mpi_t *m, const pxs_object_t *o)
{
    if (m->rec) __atomic_store_n(&m->rec[(size_t)o->slot * PXS_MPI_REC], 0, __ATOMIC_RELEASE);
}

static pxs_status_t mc_mem_reg(pxs_conn_t *c, pxs_object_t *o)
{
    pxs_mpi_t *m = c->priv;
    if (o->memtype != PXS_MEMTYPE_HOST) return PXS_ERR_UNSUPPORTED;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    if (o->len == 0 || in_pool(m, o->addr, o->len)) return PXS_OK;
    if (!m->osc_checks && !m->lease_us) {
        /* lease_first: without a lease a reader racing the evict could
         * make this rank's MPI copy from memory its caller freed. */
        pxs_error("mpi connector: under this MPI one-sided component a zero-copy object needs "
                  "leases (lease_us > 0, PXS_MPI_LEASE_US): use PXS_PUT_COPY");
        return PXS_ERR_UNSUPPORTED;
    }
    uintptr_t s = (uintptr_t)o->addr, e = s + o->len;
    for (uint32_t i = 0; i < m->nregions; i++) {
        pxs_mpi_region_t *r = &m->regions[i];
        if (s >= r->start && e <= r->end) {
            r->refs++;
            return PXS_OK;
        }
        if (s < r->end && e > r->start) {
            /* MPI forbids overlapping attachments. */
            pxs_error("mpi connector: [%p, +%zu) overlaps an attached region without being "
                      "inside it; put the larger buffer first", o->addr, o->len);
            return PXS_ERR_UNSUPPORTED;
        }
    }
    if (m->nregions >= m->max_attach) {
        pxs_error("mpi connector: %u zero-copy regions attached (PXS_MPI_MAX_ATTACH); evict "
                  "some or use PXS_PUT_COPY", m->max_attach);
        return PXS_ERR_NO_RESOURCE;
    }
    int rc = MPI_Win_attach(m->win, o->addr, (MPI_Aint)o->len);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Win_attach");
    m->regions[m->nregions++] = (pxs_mpi_region_t){s, e, 1};
    pxs_debug("mpi: attached [%p, +%zu)", o->addr, o->len);
    return PXS_OK;
}

static void mc_mem_dereg(pxs_conn_t *c, pxs_object_t *o)
{
    pxs_mpi_t *m = c->priv;
    if (!m->pool && !m->regions) return; /* window already gone */
    record_revoke(m, o); /* for MPI readers (the core revoked for the others) */
    if (o->len == 0) return;
    if (o->copied && in_pool(m, o->addr, o->len)) { /* held, not waited for */
        pool_release(m, (size_t)((uint8_t *)o->addr - m->pool), o->len,
                     pxs__mpi_lease_end(m, o));
        return;
    }
    pxs__mpi_lease_wait(m, o); /* before the caller may reuse its memory */
    if (in_pool(m, o->addr, o->len)) return;
    uintptr_t s = (uintptr_t)o->addr, e = s + o->len;
    for (uint32_t i = 0; i < m->nregions; i++) {
        pxs_mpi_region_t *r = &m->regions[i];
        if (s < r->start || e > r->end || --r->refs) continue;
        if (m->win_open) MPI_Win_detach(m->win, (void *)r->start);
        m->regions[i] = m->regions[--m->nregions];
        return;
    }
}

/* A store closes: the evicts of its zero-copy objects note their leases'
 * end and the close waits once, when every object is revoked (N x
 * lease_us before), before the caller has its buffers back. (Copies wait
 * for nothing: their blocks are held, pool_release.) Regions detach at
 * once, as at finalize: a leaseholder's get refused by then finds the
 * record revoked (EVICTED). */
static void mc_dereg_begin(pxs_conn_t *c)
{
    pxs_mpi_t *m = c->priv;
    m->closing = true;
}

static void mc_dereg_end(pxs_conn_t *c)
{
    pxs_mpi_t *m = c->priv;
    m->closing = false;
    if (!m->leaving) pxs__mpi_lease_wait_until(m, m->lease_end);
}

static pxs_status_t mc_pack(pxs_conn_t *c, const pxs_object_t *o, uint8_t *blob, size_t cap,
                            size_t *len_p)
{
    pxs_mpi_t *m = c->priv;
    size_t lease = m->ltab ? PXS_MPI_BLOB_LEASE_LEN : 0;
    if (cap < PXS_MPI_BLOB_LEN + lease + PXS_SHM_BLOB_LEN) return PXS_ERR_NO_RESOURCE;
    MPI_Aint data = 0, tab = 0;
    MPI_Get_address(o->addr, &data);
    MPI_Get_address((void *)m->tab_attached, &tab);
    pxs_wr64(blob, pxs_group_info(c->ctx, NULL, NULL));
    pxs_wr32(blob + 8, (uint32_t)m->rank);
    pxs_wr32(blob + 12, tab_of(c)->hdr->nslots);
    pxs_wr64(blob + 16, (uint64_t)data);
    record_set(m, o, (uint64_t)data);
    pxs_wr64(blob + 24, (uint64_t)tab);
    /* The object as the shm connector names it: readers on this node read
     * it without MPI (node_get). */
    if (lease) {
        MPI_Aint lt = 0;
        MPI_Get_address(m->ltab, &lt);
        pxs_wr64(blob + PXS_MPI_BLOB_LEN, (uint64_t)lt);
        pxs_wr32(blob + PXS_MPI_BLOB_LEN + 8, m->lease_us);
        pxs_wr32(blob + PXS_MPI_BLOB_LEN + 12, 0);
    }
    pxs__conn_node_blob(c, o, blob + PXS_MPI_BLOB_LEN + lease);
    pxs_wr64(blob + 32, PXS_MPI_BLOB_NODE | (lease ? PXS_MPI_BLOB_LEASE : 0));
    *len_p = PXS_MPI_BLOB_LEN + lease + PXS_SHM_BLOB_LEN;
    return PXS_OK;
}

/* --- reading ------------------------------------------------------------------ */

typedef struct {
    int rank;
    uint64_t data, tab;
    uint64_t rec;            /* the owner's slot records */
    uint64_t ltab, lease_ns; /* the owner's lease words and lease; 0: none */
    const uint8_t *sb; /* PXS_MPI_BLOB_NODE: the shm blob, else NULL */
    bool attach;       /* sb names ordinary memory (read by attach) */
    bool pooled;       /* the bytes lie in the owner's pool (attached for good) */
} blob_t;

/* p's blob (pxs__mpi_blob_decode), checked against our communicator. The
 * statuses rank as they always did: length and flags, FOREIGN, rank and
 * slot, owner, then a node part that contradicts the address. */
static pxs_status_t blob_parse(pxs_conn_t *c, const pxs_pdesc_t *p, blob_t *b)
{
    pxs_mpi_t *m = c->priv;
    pxs_mpi_blob_t w;
    pxs_status_t st = pxs__mpi_blob_decode(p->blob, p->blob_len, &w);
    if (!w.parsed) return st;
    if (w.group != pxs_group_info(c->ctx, NULL, NULL)) {
        pxs_debug("mpi proxy from another communicator or job");
        return PXS_ERR_FOREIGN;
    }
    if (w.rank >= (uint32_t)m->size || p->slot >= w.slots) return PXS_ERR_CORRUPT;
    pxs_peer_t peer;
    if (pxs_group_peer(c->ctx, (int)w.rank, &peer) != PXS_OK || peer.owner_id != p->owner)
        return PXS_ERR_CORRUPT; /* the rank named is not the proxy's owner */
    if (st != PXS_OK) return st;
    /* The tables a proxy names are the ones its owner attached: MPI
     * checks no address of a dynamic window (osc/pt2pt's target writes
     * wherever it is told), and the lease words are written to. */
    const pxs_mpi_tables_t *t = m->peers ? &m->peers[w.rank] : NULL;
    if (!t || t->tab != w.tab || t->slots != w.slots || t->ltab != w.ltab ||
        t->lease_us != w.lease_us) {
        pxs_debug("mpi proxy names tables rank %u did not attach", w.rank);
        return PXS_ERR_CORRUPT;
    }
    /* Bytes in the pool lie wholly inside it; no object spans its edge. */
    uint64_t pend = t->pool + t->pool_size;
    bool starts_in = w.data >= t->pool && w.data < pend;
    bool pooled = starts_in && p->size <= pend - w.data;
    if (t->pool_size && p->size && !pooled && (starts_in || (w.data < t->pool &&
                                                             p->size > t->pool - w.data))) {
        pxs_debug("mpi proxy's bytes cross the edge of rank %u's pool", w.rank);
        return PXS_ERR_CORRUPT;
    }
    *b = (blob_t){.rank = (int)w.rank, .data = w.data, .tab = w.tab, .rec = t->rec, .ltab = w.ltab,
                  .lease_ns = (uint64_t)w.lease_us * 1000, .sb = w.sb,
                  .attach = w.attach, .pooled = pooled};
    return PXS_OK;
}

#define REC_BYTES (PXS_MPI_REC * 8)

static MPI_Aint rec_at(uint64_t rec, uint32_t slot)
{
    return (MPI_Aint)(rec + (uint64_t)slot * REC_BYTES);
}

/* The generation of k's slot now (one round trip), in the owner's
 * records at rec: OK while it is k's. */
static pxs_status_t gen_now(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t rec)
{
    uint64_t g = 0;
    int rc = MPI_Get(&g, 8, MPI_BYTE, k->rank, rec_at(rec, k->slot), 8, MPI_BYTE, m->win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(k->rank, m->win);
    if (rc != MPI_SUCCESS) {
        pxs__mpi_status(rc, "MPI_Get (generation)");
        return PXS_ERR_UNREACHABLE;
    }
    if (g != k->gen)
        pxs_debug("mpi: generation of slot %u at rank %d is %llu, proxy has %llu", k->slot,
                  k->rank, (unsigned long long)g, (unsigned long long)k->gen);
    return g == k->gen ? PXS_OK : PXS_ERR_EVICTED;
}

static pxs_mpi_lkey_t key_of(const blob_t *b, const pxs_pdesc_t *p)
{
    return (pxs_mpi_lkey_t){b->rank, p->slot, b->tab, p->gen, b->lease_ns, b->data, p->size};
}

static pxs_status_t read_gen(pxs_mpi_t *m, const blob_t *b, const pxs_pdesc_t *p)
{
    pxs_mpi_lkey_t k = key_of(b, p);
    return gen_now(m, &k, b->rec);
}

/* k's slot record r, read from the owner's records at rec: EVICTED
 * unless its generation is k's; then CORRUPT unless the proxy names the
 * object's bytes (naming none reads nothing): a forgery with a valid CRC.
 * The record is set before the proxy exists, and its generation goes
 * before the rest may change, so only a read torn across the revocation
 * and the slot's next object could show k's generation with another
 * extent: the generation, read again, tells (changed: EVICTED). */
static pxs_status_t check_record(pxs_mpi_t *m, const uint64_t *r, const pxs_mpi_lkey_t *k,
                                 uint64_t rec)
{
    if (r[0] != k->gen) {
        pxs_debug("mpi: generation of slot %u at rank %d is %llu, proxy has %llu", k->slot,
                  k->rank, (unsigned long long)r[0], (unsigned long long)k->gen);
        return PXS_ERR_EVICTED;
    }
    if (!k->size || (r[1] == k->data && r[2] == k->size)) return PXS_OK;
    pxs_status_t st = gen_now(m, k, rec);
    if (st != PXS_OK) return st;
    pxs_debug("mpi proxy names [%llx, +%llu), slot %u of rank %d is [%llx, +%llu)",
              (unsigned long long)k->data, (unsigned long long)k->size, k->slot, k->rank,
              (unsigned long long)r[1], (unsigned long long)r[2]);
    return PXS_ERR_CORRUPT;
}

/* k's slot record, one round trip. */
static pxs_status_t read_slot(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t rec)
{
    uint64_t r[PXS_MPI_REC] = {0};
    int rc = MPI_Get(r, REC_BYTES, MPI_BYTE, k->rank, rec_at(rec, k->slot), REC_BYTES, MPI_BYTE,
                     m->win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(k->rank, m->win);
    if (rc != MPI_SUCCESS) {
        pxs__mpi_status(rc, "MPI_Get (slot record)");
        return PXS_ERR_UNREACHABLE;
    }
    return check_record(m, r, k, rec);
}

/* A get in flight, in its request's scratch. */
typedef struct {
    pxs_request_t *next;   /* m->pend_head queue, then the batch */
    int rank;
    uint32_t slot;
    uint64_t tab, gen;     /* the owner's generation table; the proxy's */
    uint64_t data, size;   /* the bytes the proxy names */
    uint64_t rec;          /* the owner's slot records */
    pxs_status_t st;       /* while settling: PXS_INPROGRESS or the failure */
    size_t gi;             /* its record's index in m->gbuf (PXS_MPI_REC words each) */
    uint32_t lo, span;     /* a group's leader: slots [lo, +span) in one get */
    bool flushed, grouped, lead, in_span;
    /* Leases (mpi_lease.c): the plan; exp of one held; renew and mark
     * travel with the bytes (their buffers here, live until the flush). */
    pxs_mpi_lplan_t plan;
    bool renew;
    uint64_t lease_ns, exp, t0, rgen, mark;
} mc_req_t;

static pxs_mpi_lkey_t lkey(const mc_req_t *q)
{
    return (pxs_mpi_lkey_t){q->rank, q->slot, q->tab, q->gen, q->lease_ns, q->data, q->size};
}

static mc_req_t *rq(pxs_request_t *r) { return pxs__request_scratch(r); }

/* An attach that the kernel refused (ptrace scope, another user): user
 * buffers of this node go back to MPI_Get, which Open MPI then serves
 * without cross-memory attach too. */
static pxs_status_t attach_refused(pxs_mpi_t *m)
{
    if (atomic_exchange(&m->node_attach, false))
        pxs_warn("mpi: reading user buffers of ranks on this node by cross-memory attach is "
                 "not permitted (ptrace scope?); they are read with MPI_Get");
    return PXS_ERR_UNSUPPORTED;
}

/* An object of an owner on this node, read as the shm connector reads it:
 * a pxs_alloc object in its mapped segment, ordinary memory by attach
 * (pxs__proc_read: a pread of the owner's /proc/pid/mem for a page or two,
 * else process_vm_readv), under the generation in the owner's table before
 * and after. No MPI call, no round trip, nothing asked of the owner: a
 * dynamic window is never shared memory to Open MPI, and its MPI_Get reads
 * a user buffer by the same attach after two round trips here (the
 * generation after the bytes, see the top). UNSUPPORTED: another node, the
 * reader off (PXS_MPI_NODE_MAP=0), or attach refused: MPI_Get serves. */
static pxs_status_t node_get(pxs_mpi_t *m, const pxs_pdesc_t *p, const blob_t *b, void *dst)
{
    if (!b->sb || (b->attach && !atomic_load_explicit(&m->node_attach, memory_order_relaxed)))
        return PXS_ERR_UNSUPPORTED;
    pxs_status_t st = pxs__conn_node_get(&m->node_rd, p, b->sb, dst);
    return b->attach && st == PXS_ERR_UNREACHABLE ? attach_refused(m) : st;
}

/* Objects of this node (node_get): no MPI call, no request. The core calls
 * get only for the others. */
static pxs_status_t mc_get_now(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, bool waited)
{
    (void)waited; /* one way only */
    pxs_mpi_t *m = c->priv;
    blob_t b;
    if (!m->win_open) return PXS_ERR_UNSUPPORTED; /* get says why */
    pxs_status_t st = blob_parse(c, p, &b);
    if (st != PXS_OK) return st;
    return node_get(m, p, &b, dst);
}

/* After a get's bytes, in their epoch: what its lease plan asks for, the
 * lease word raised or the generation read for a renewal. A failure only
 * costs the lease (the generation is read after the bytes then). */
static void lease_issue(pxs_mpi_t *m, const blob_t *b, mc_req_t *q)
{
    pxs_mpi_lkey_t k = lkey(q);
    uint64_t now = pxs__now_ns();
    q->plan = pxs__mpi_lease_plan(m, &k, now, &q->exp, &q->renew);
    int rc = MPI_SUCCESS;
    if (q->plan == PXS_MPI_LEASE_MARK) {
        q->mark = q->gen;
        rc = MPI_Accumulate(&q->mark, 1, MPI_UINT64_T, q->rank,
                            (MPI_Aint)(b->ltab + (uint64_t)q->slot * 8), 1, MPI_UINT64_T, MPI_MAX,
                            m->win);
    } else if (q->renew) {
        q->t0 = now;
        rc = MPI_Get(&q->rgen, 8, MPI_BYTE, q->rank,
                     rec_at(q->rec, q->slot), 8, MPI_BYTE,
                     m->win);
    }
    if (rc != MPI_SUCCESS) {
        pxs__mpi_status(rc, "MPI_Accumulate/MPI_Get (lease)");
        q->plan = PXS_MPI_LEASE_NONE;
        q->renew = false;
        pxs__mpi_lease_drop(m, &k);
    }
}

/* A flush of rank that failed: the owner is gone (or MPI gave up on it). */
static pxs_status_t flush_one(pxs_mpi_t *m, int rank, const char *what)
{
    int rc = MPI_Win_flush(rank, m->win);
    if (rc == MPI_SUCCESS) return PXS_OK;
    pxs__mpi_status(rc, what);
    return PXS_ERR_UNREACHABLE;
}

/* Under a component that serves a get at whatever address it names
 * (osc/pt2pt), a get of a zero-copy object's memory, which its owner's
 * caller may free once it is evicted, is issued only while the reader
 * holds a lease on exactly the bytes the slot's record gives that
 * object: the owner then keeps that memory lease_us after the
 * revocation, serving gets while it waits (pxs__mpi_lease_wait). A get
 * issued before the lease's end (t0 + lease_us / 2) has lease_us / 2 to
 * reach the owner. Taking one costs the first read of an object two round
 * trips before its bytes (the lease word raised and flushed, then the
 * slot's record read, as the bytes' epoch does it elsewhere,
 * see mpi_lease.c) and saves the generation read after them: three in
 * all instead of two. One that ran out costs the generation read. A
 * revoked object is EVICTED, and a proxy naming other bytes than its
 * object's (a forgery with a valid CRC) CORRUPT, before any byte is asked
 * for. */
static pxs_status_t lease_first(pxs_mpi_t *m, const blob_t *b, const pxs_pdesc_t *p)
{
    if (!b->lease_ns) return PXS_ERR_CORRUPT; /* such owners refuse zero-copy puts */
    pxs_mpi_lkey_t k = key_of(b, p);
    uint64_t held = pxs__mpi_lease_until(m, &k);
    if (pxs__now_ns() < held) return PXS_OK;
    pxs_status_t st;
    if (!held) { /* the word may be below this generation: raise it */
        uint64_t mark = p->gen;
        int rc = MPI_Accumulate(&mark, 1, MPI_UINT64_T, b->rank,
                                (MPI_Aint)(b->ltab + (uint64_t)p->slot * 8), 1, MPI_UINT64_T,
                                MPI_MAX, m->win);
        if (rc != MPI_SUCCESS) {
            pxs__mpi_status(rc, "MPI_Accumulate (lease)");
            return PXS_ERR_UNREACHABLE;
        }
        if ((st = flush_one(m, b->rank, "MPI_Win_flush (lease)")) != PXS_OK) return st;
    }
    uint64_t t0 = pxs__now_ns();
    if ((st = read_slot(m, &k, b->rec)) != PXS_OK) {
        pxs__mpi_lease_drop(m, &k);
        return st;
    }
    pxs__mpi_lease_grant(m, &k, t0);
    return PXS_OK;
}

static pxs_status_t mc_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    pxs_mpi_t *m = c->priv;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    blob_t b;
    pxs_status_t st = blob_parse(c, p, &b);
    if (st != PXS_OK) return st;
    if (!m->osc_checks && !b.pooled && p->size && (st = lease_first(m, &b, p)) != PXS_OK)
        return st;
    for (uint64_t off = 0; off < p->size; off += CHUNK) {
        int n = (int)(p->size - off < CHUNK ? p->size - off : CHUNK);
        int rc = MPI_Get((uint8_t *)dst + off, n, MPI_BYTE, b.rank, (MPI_Aint)(b.data + off), n,
                         MPI_BYTE, m->win);
        if (rc != MPI_SUCCESS) {
            /* Most often the owner detached the region (evicted). */
            pxs_debug("MPI_Get of %llu bytes at %llx from rank %d failed (%d)",
                      (unsigned long long)p->size, (unsigned long long)b.data, b.rank, rc);
            MPI_Win_flush(b.rank, m->win);
            /* A region goes only after its object's revocation: refused
             * while the object lives, the bytes are not its (forged). */
            st = read_gen(m, &b, p);
            return st == PXS_OK ? PXS_ERR_CORRUPT : st;
        }
    }
    mc_req_t *q = rq(req);
    *q = (mc_req_t){.rank = b.rank, .slot = p->slot, .tab = b.tab, .gen = p->gen,
                    .data = b.data, .size = p->size, .rec = b.rec, .lease_ns = b.lease_ns};
    lease_issue(m, &b, q);
    /* Queued only once its bytes are issued: a flush that a concurrent
     * progress makes before this point is simply repeated. */
    pthread_mutex_lock(&m->pend_lock);
    if (m->pend_tail) rq(m->pend_tail)->next = req;
    else __atomic_store_n(&m->pend_head, req, __ATOMIC_RELEASE);
    m->pend_tail = req;
    pthread_mutex_unlock(&m->pend_lock);
    return PXS_INPROGRESS;
}

/* Flush every target rank of the batch once (the ones still in play);
 * a rank whose flush fails sets fail on its requests. */
static void flush_ranks(pxs_mpi_t *m, pxs_request_t *batch, pxs_status_t fail)
{
    for (pxs_request_t *r = batch; r; r = rq(r)->next) rq(r)->flushed = false;
    for (pxs_request_t *r = batch; r; r = rq(r)->next) {
        mc_req_t *q = rq(r);
        if (q->flushed || q->st != PXS_INPROGRESS) continue;
        int rc = MPI_Win_flush(q->rank, m->win);
        for (pxs_request_t *s = r; s; s = rq(s)->next) {
            mc_req_t *o = rq(s);
            if (o->rank != q->rank) continue;
            o->flushed = true;
            if (rc != MPI_SUCCESS && o->st == PXS_INPROGRESS) o->st = fail;
        }
    }
}

/* Give every (rank, table) group of the batch its place in m->gbuf: one
 * span when its slots lie within GSPAN, else one entry each. */
static size_t place_generations(pxs_request_t *batch)
{
    size_t n = 0;
    for (pxs_request_t *r = batch; r; r = rq(r)->next)
        rq(r)->grouped = rq(r)->lead = rq(r)->in_span = false;
    for (pxs_request_t *r = batch; r; r = rq(r)->next) {
        mc_req_t *q = rq(r);
        if (q->grouped || q->st != PXS_INPROGRESS) continue;
        uint32_t lo = q->slot, hi = q->slot;
        for (pxs_request_t *s = r; s; s = rq(s)->next) {
            mc_req_t *o = rq(s);
            if (o->st != PXS_INPROGRESS || o->rank != q->rank || o->tab != q->tab) continue;
            lo = o->slot < lo ? o->slot : lo;
            hi = o->slot > hi ? o->slot : hi;
        }
        q->lead = true;
        q->lo = lo;
        q->span = hi - lo < GSPAN ? hi - lo + 1 : 0;
        size_t base = n;
        for (pxs_request_t *s = r; s; s = rq(s)->next) {
            mc_req_t *o = rq(s);
            if (o->st != PXS_INPROGRESS || o->rank != q->rank || o->tab != q->tab) continue;
            o->grouped = true;
            o->in_span = q->span != 0;
            o->gi = q->span ? base + (o->slot - lo) : n++;
        }
        if (q->span) n = base + q->span;
    }
    return n;
}

static void fail_group(pxs_request_t *lead, pxs_status_t st)
{
    mc_req_t *q = rq(lead);
    for (pxs_request_t *s = lead; s; s = rq(s)->next) {
        mc_req_t *o = rq(s);
        if (o->st == PXS_INPROGRESS && o->rank == q->rank && o->tab == q->tab) o->st = st;
    }
}

/* After the bytes' flush: the renewal reads that came with them give the
 * next leases; then a get whose flush returned before its object's lease
 * ends (any lease: each covers every byte read before its end) is done
 * (PXS_OK). The others read the generation, as always. */
static void leased_bytes(pxs_mpi_t *m, pxs_request_t *batch)
{
    uint64_t now = pxs__now_ns();
    for (pxs_request_t *r = batch; r; r = rq(r)->next) {
        mc_req_t *q = rq(r);
        if (q->st != PXS_INPROGRESS || !q->renew) continue;
        pxs_mpi_lkey_t k = lkey(q);
        if (q->rgen == q->gen) pxs__mpi_lease_grant(m, &k, q->t0);
        else pxs__mpi_lease_drop(m, &k); /* revoked: the owner waits out the old lease */
    }
    for (pxs_request_t *r = batch; r; r = rq(r)->next) {
        mc_req_t *q = rq(r);
        if (q->st != PXS_INPROGRESS || q->plan != PXS_MPI_LEASE_HELD) continue;
        if (now > q->exp) {
            pxs_mpi_lkey_t k = lkey(q);
            q->exp = pxs__mpi_lease_until(m, &k);
        }
        if (now <= q->exp) q->st = PXS_OK;
    }
}

/* Settle a batch: its bytes land (one flush per target), then the
 * generations of all its slots are read (one get per group) and returned
 * (one flush per target), and each request completes. */
static int settle(pxs_mpi_t *m, pxs_request_t *batch)
{
    for (pxs_request_t *r = batch; r; r = rq(r)->next) rq(r)->st = PXS_INPROGRESS;
    flush_ranks(m, batch, PXS_ERR_EVICTED);
    leased_bytes(m, batch);
    size_t n = place_generations(batch);
    if (n > m->gbuf_cap) {
        uint64_t *g = realloc(m->gbuf, n * PXS_MPI_REC * sizeof *g);
        if (g) {
            m->gbuf = g;
            m->gbuf_cap = n;
        } else {
            for (pxs_request_t *r = batch; r; r = rq(r)->next)
                if (rq(r)->st == PXS_INPROGRESS) rq(r)->st = PXS_ERR_NO_MEMORY;
        }
    }
    uint64_t t0 = pxs__now_ns(); /* the generation reads are issued from here */
    for (pxs_request_t *r = batch; r; r = rq(r)->next) {
        mc_req_t *q = rq(r);
        if (q->st != PXS_INPROGRESS || (q->in_span && !q->lead)) continue;
        uint32_t first = q->in_span ? q->lo : q->slot, cnt = q->in_span ? q->span : 1;
        size_t at = q->in_span ? q->gi - (q->slot - q->lo) : q->gi;
        int bytes = (int)(cnt * REC_BYTES);
        int rc = MPI_Get(m->gbuf + at * PXS_MPI_REC, bytes, MPI_BYTE, q->rank,
                         rec_at(q->rec, first), bytes, MPI_BYTE, m->win);
        if (rc != MPI_SUCCESS) {
            pxs__mpi_status(rc, "MPI_Get (slot records)");
            if (q->in_span) fail_group(r, PXS_ERR_UNREACHABLE);
            else q->st = PXS_ERR_UNREACHABLE;
        }
    }
    flush_ranks(m, batch, PXS_ERR_UNREACHABLE);
    int done = 0;
    for (pxs_request_t *r = batch, *next; r; r = next) {
        mc_req_t *q = rq(r);
        next = q->next; /* a completed request may be freed at once */
        pxs_status_t st = q->st;
        if (st == PXS_INPROGRESS) {
            pxs_mpi_lkey_t k = lkey(q);
            st = check_record(m, m->gbuf + q->gi * PXS_MPI_REC, &k, q->rec);
            if (st != PXS_OK) {
                pxs__mpi_lease_drop(m, &k);
            } else if (q->plan != PXS_MPI_LEASE_NONE) {
                /* The lease word was raised and flushed before this read. */
                pxs__mpi_lease_grant(m, &k, t0);
            }
        }
        pxs__request_complete(r, st);
        done++;
    }
    return done;
}

static int settle_pending(pxs_mpi_t *m)
{
    if (!__atomic_load_n(&m->pend_head, __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&m->pend_lock);
    pxs_request_t *batch = m->pend_head;
    __atomic_store_n(&m->pend_head, NULL, __ATOMIC_RELEASE);
    m->pend_tail = NULL;
    pthread_mutex_unlock(&m->pend_lock);
    if (!batch) return 0;
    if (!m->win_open) {
        int n = 0;
        for (pxs_request_t *r = batch, *next; r; r = next, n++) {
            next = rq(r)->next;
            pxs__request_complete(r, PXS_ERR_UNREACHABLE);
        }
        return n;
    }
    return settle(m, batch);
}

static int mc_progress(pxs_conn_t *c) { return c->priv ? settle_pending(c->priv) : 0; }

/* MPI cannot cancel an RMA operation: the request leaves the queue, and a
 * flush of its target makes sure dst is written no more. */
static void mc_cancel(pxs_conn_t *c, pxs_request_t *req)
{
    pxs_mpi_t *m = c->priv;
    bool queued = false;
    pthread_mutex_lock(&m->pend_lock);
    for (pxs_request_t **pp = &m->pend_head, *prev = NULL; *pp; prev = *pp, pp = &rq(*pp)->next) {
        if (*pp != req) continue;
        *pp = rq(req)->next;
        if (m->pend_tail == req) m->pend_tail = prev;
        queued = true;
        break;
    }
    pthread_mutex_unlock(&m->pend_lock);
    if (queued && m->win_open) MPI_Win_flush(rq(req)->rank, m->win);
}

static pxs_status_t mc_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    pxs_mpi_t *m = c->priv;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    blob_t b;
    pxs_status_t st = blob_parse(c, p, &b);
    if (st != PXS_OK) return st;
    if ((st = node_get(m, p, &b, NULL)) != PXS_ERR_UNSUPPORTED) return st;
    pxs_mpi_lkey_t k = key_of(&b, p);
    return read_slot(m, &k, b.rec);
}

/* Handles: objects of an owner on this node are read as node_get reads
 * them; for the others read answers UNSUPPORTED and the core gets the
 * whole object, as for a connector without handles. */
static pxs_status_t mc_hopen(pxs_conn_t *c, const pxs_pdesc_t *p, void **state_p)
{
    pxs_mpi_t *m = c->priv;
    blob_t b;
    *state_p = NULL;
    pxs_status_t st = blob_parse(c, p, &b);
    if (st != PXS_OK || !b.sb) return st;
    if (b.attach && !atomic_load_explicit(&m->node_attach, memory_order_relaxed)) return PXS_OK;
    st = pxs__conn_node_open(&m->node_rd, p, b.sb, state_p);
    return st == PXS_ERR_UNSUPPORTED ? PXS_OK : st;
}

static pxs_status_t mc_hread(pxs_conn_t *c, const pxs_pdesc_t *p, void *state, uint64_t off,
                             void *dst, size_t len)
{
    if (!state) return PXS_ERR_UNSUPPORTED;
    pxs_mpi_t *m = c->priv;
    pxs_status_t st = pxs__conn_node_read(&m->node_rd, p, state, off, dst, len);
    /* Only an attach is refused so (a mapped segment reads alone). */
    return st == PXS_ERR_UNREACHABLE ? attach_refused(m) : st;
}

static void mc_hclose(pxs_conn_t *c, const pxs_pdesc_t *p, void *state)
{
    if (state) pxs__conn_node_close(&((pxs_mpi_t *)c->priv)->node_rd, p, state);
}

const pxs_conn_ops_t pxs__conn_mpi_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "mpi",
    .id = PXS_CONNECTOR_MPI,
    .caps = PXS_CAP_CROSS_PROCESS | PXS_CAP_CROSS_NODE | PXS_CAP_ZERO_COPY_PUT |
            PXS_CAP_NONBLOCKING,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "MPI-RMA: dynamic window, passive-target MPI_Get (libpxs_mpi, pxs_mpi_init)",
    .init = mc_init,
    .fini = mc_fini,
    .mem_alloc = mc_mem_alloc,
    .mem_free = mc_mem_free,
    .mem_reg = mc_mem_reg,
    .mem_dereg = mc_mem_dereg,
    .pack_remote = mc_pack,
    .get = mc_get,
    .cancel = mc_cancel,
    .check = mc_check,
    .view = pxs__conn_unsup_view,
    .view_release = pxs__conn_noop_view_release,
    .progress = mc_progress,
    .open = mc_hopen,
    .read = mc_hread,
    .close = mc_hclose,
    .get_now = mc_get_now,
    .dereg_begin = mc_dereg_begin,
    .dereg_end = mc_dereg_end,
};
