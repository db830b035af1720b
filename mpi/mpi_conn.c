/* The "mpi" connector: objects exposed in a dynamic window, read with
 * passive-target MPI_Get. For machines where MPI is the only fabric layer
 * at hand.
 *
 * Validation: the owner's generation table is attached to the window too.
 * A get reads the bytes, flushes, then reads the object's generation: the
 * owner revokes before its caller may free or reuse the memory, and
 * generations never return, so an unchanged generation read after the
 * bytes proves they were the object's (seqlock reader, one-sided). */
#include <stdlib.h>
#include <string.h>

#include "mpi_int.h"

#define BLOB_LEN 40 /* group u64, rank u32, slots u32, data u64, table u64 */
#define CHUNK    (1u << 30)
#define ALIGN    64

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
    m->regions = calloc(m->max_attach ? m->max_attach : 1, sizeof *m->regions);
    if (!m->regions) goto err;
    if (m->pool_size) {
        if (posix_memalign((void **)&m->pool, 4096, m->pool_size)) goto err;
        if (!(m->pool_free = malloc(sizeof *m->pool_free))) goto err;
        *m->pool_free = (pxs_mpi_blk_t){0, m->pool_size, NULL};
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
    MPI_Win_free(&m->win);
    return PXS_ERR_NO_MEMORY;
}

void pxs__mpi_conn_free(pxs_mpi_t *m)
{
    if (!m->win_open) return;
    m->win_open = false;
    if (m->epoch) MPI_Win_unlock_all(m->win);
    m->epoch = false;
    for (uint32_t i = 0; i < m->nregions; i++)
        MPI_Win_detach(m->win, (void *)m->regions[i].start);
    if (m->tab_attached) MPI_Win_detach(m->win, (void *)m->tab_attached);
    if (m->pool) MPI_Win_detach(m->win, m->pool);
    MPI_Win_free(&m->win);
    while (m->pool_free) {
        pxs_mpi_blk_t *b = m->pool_free;
        m->pool_free = b->next;
        free(b);
    }
    free(m->pool);
    free(m->regions);
    m->pool = NULL;
    m->regions = NULL;
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
    /* The epoch opens once the regions every proxy needs are attached. */
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Win_lock_all");
    m->epoch = true;
    return PXS_OK;
}

static void mc_fini(pxs_conn_t *c) { (void)c; /* pxs__mpi_conn_free tears the window down */ }

/* --- pool for copying puts: first fit, coalescing ----------------------- */

static pxs_status_t mc_mem_alloc(pxs_conn_t *c, size_t len, void **ptr_p)
{
    pxs_mpi_t *m = c->priv;
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
        return PXS_OK;
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
    *b = (pxs_mpi_blk_t){off, len, next};
    *pp = b;
}

static bool in_pool(const pxs_mpi_t *m, const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr, p = (uintptr_t)m->pool;
    return m->pool && a >= p && a + len <= p + m->pool_size;
}

/* --- exposing memory ------------------------------------------------------- */

static pxs_status_t mc_mem_reg(pxs_conn_t *c, pxs_object_t *o)
{
    pxs_mpi_t *m = c->priv;
    if (o->memtype != PXS_MEMTYPE_HOST) return PXS_ERR_UNSUPPORTED;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    if (o->len == 0 || in_pool(m, o->addr, o->len)) return PXS_OK;
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
    if (o->len == 0) return;
    if (in_pool(m, o->addr, o->len)) {
        if (o->copied) pool_give_back(m, (size_t)((uint8_t *)o->addr - m->pool), o->len);
        return;
    }
    uintptr_t s = (uintptr_t)o->addr, e = s + o->len;
    for (uint32_t i = 0; i < m->nregions; i++) {
        pxs_mpi_region_t *r = &m->regions[i];
        if (s < r->start || e > r->end || --r->refs) continue;
        if (m->win_open) MPI_Win_detach(m->win, (void *)r->start);
        m->regions[i] = m->regions[--m->nregions];
        return;
    }
}

static pxs_status_t mc_pack(pxs_conn_t *c, const pxs_object_t *o, uint8_t *blob, size_t cap,
                            size_t *len_p)
{
    pxs_mpi_t *m = c->priv;
    if (cap < BLOB_LEN) return PXS_ERR_NO_RESOURCE;
    MPI_Aint data = 0, tab = 0;
    MPI_Get_address(o->addr, &data);
    MPI_Get_address((void *)m->tab_attached, &tab);
    pxs_wr64(blob, pxs_group_info(c->ctx, NULL, NULL));
    pxs_wr32(blob + 8, (uint32_t)m->rank);
    pxs_wr32(blob + 12, tab_of(c)->hdr->nslots);
    pxs_wr64(blob + 16, (uint64_t)data);
    pxs_wr64(blob + 24, (uint64_t)tab);
    pxs_wr64(blob + 32, 0);
    *len_p = BLOB_LEN;
    return PXS_OK;
}

/* --- reading ------------------------------------------------------------------ */

typedef struct {
    int rank;
    uint64_t data, tab;
} blob_t;

static pxs_status_t blob_parse(pxs_conn_t *c, const pxs_pdesc_t *p, blob_t *b)
{
    pxs_mpi_t *m = c->priv;
    if (p->blob_len != BLOB_LEN || pxs_rd64(p->blob + 32) != 0) return PXS_ERR_CORRUPT;
    if (pxs_rd64(p->blob) != pxs_group_info(c->ctx, NULL, NULL)) {
        pxs_debug("mpi proxy from another communicator or job");
        return PXS_ERR_FOREIGN;
    }
    uint32_t rank = pxs_rd32(p->blob + 8), slots = pxs_rd32(p->blob + 12);
    if (rank >= (uint32_t)m->size || p->slot >= slots) return PXS_ERR_CORRUPT;
    pxs_peer_t peer;
    if (pxs_group_peer(c->ctx, (int)rank, &peer) != PXS_OK || peer.owner_id != p->owner)
        return PXS_ERR_CORRUPT; /* the rank named is not the proxy's owner */
    b->rank = (int)rank;
    b->data = pxs_rd64(p->blob + 16);
    b->tab = pxs_rd64(p->blob + 24);
    return PXS_OK;
}

static pxs_status_t read_gen(pxs_mpi_t *m, const blob_t *b, const pxs_pdesc_t *p)
{
    uint64_t g = 0;
    MPI_Aint at = (MPI_Aint)(b->tab + (uint64_t)p->slot * sizeof(uint64_t));
    int rc = MPI_Get(&g, 8, MPI_BYTE, b->rank, at, 8, MPI_BYTE, m->win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(b->rank, m->win);
    if (rc != MPI_SUCCESS) {
        pxs__mpi_status(rc, "MPI_Get (generation)");
        return PXS_ERR_UNREACHABLE;
    }
    if (g != p->gen)
        pxs_debug("mpi: generation of slot %u at rank %d (table %llx) is %llu, proxy has %llu",
                  p->slot, b->rank, (unsigned long long)b->tab, (unsigned long long)g,
                  (unsigned long long)p->gen);
    return g == p->gen ? PXS_OK : PXS_ERR_EVICTED;
}

static pxs_status_t mc_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    (void)req;
    pxs_mpi_t *m = c->priv;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    blob_t b;
    pxs_status_t st = blob_parse(c, p, &b);
    if (st != PXS_OK) return st;
    for (uint64_t off = 0; off < p->size; off += CHUNK) {
        int n = (int)(p->size - off < CHUNK ? p->size - off : CHUNK);
        int rc = MPI_Get((uint8_t *)dst + off, n, MPI_BYTE, b.rank, (MPI_Aint)(b.data + off), n,
                         MPI_BYTE, m->win);
        if (rc != MPI_SUCCESS) {
            /* Most often the owner detached the region (evicted). */
            pxs_debug("MPI_Get of %llu bytes at %llx from rank %d failed (%d)",
                      (unsigned long long)p->size, (unsigned long long)b.data, b.rank, rc);
            MPI_Win_flush(b.rank, m->win);
            return read_gen(m, &b, p) == PXS_ERR_UNREACHABLE ? PXS_ERR_UNREACHABLE
                                                              : PXS_ERR_EVICTED;
        }
    }
    if (p->size && MPI_Win_flush(b.rank, m->win) != MPI_SUCCESS) return PXS_ERR_EVICTED;
    return read_gen(m, &b, p);
}

static pxs_status_t mc_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    pxs_mpi_t *m = c->priv;
    if (!m->win_open) return PXS_ERR_UNREACHABLE;
    blob_t b;
    pxs_status_t st = blob_parse(c, p, &b);
    return st != PXS_OK ? st : read_gen(m, &b, p);
}

const pxs_conn_ops_t pxs__conn_mpi_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "mpi",
    .id = PXS_CONNECTOR_MPI,
    .caps = PXS_CAP_CROSS_PROCESS | PXS_CAP_CROSS_NODE | PXS_CAP_ZERO_COPY_PUT,
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
    .cancel = pxs__conn_noop_cancel,
    .check = mc_check,
    .view = pxs__conn_unsup_view,
    .view_release = pxs__conn_noop_view_release,
    .progress = pxs__conn_noop_progress,
};
