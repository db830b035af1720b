/* Same-node reads of pxs_alloc objects for connectors whose own path cannot
 * map an owner's memory (ucx, mpi): a shm connector instance read through
 * the shm blob their proxies carry. See connector.h. */
#include "pxs_int.h"

pxs_status_t pxs__conn_node_init(pxs_conn_node_t *n, pxs_context_t *ctx)
{
    n->on = false;
    n->shm = (pxs_conn_t){.ops = &pxs__conn_shm_ops, .ctx = ctx};
    pxs_status_t st = n->shm.ops->init(&n->shm);
    n->on = st == PXS_OK;
    return st;
}

void pxs__conn_node_fini(pxs_conn_node_t *n)
{
    if (!n->on) return;
    n->on = false;
    n->shm.ops->fini(&n->shm);
}

void pxs__conn_node_blob(const pxs_conn_t *conn, const pxs_object_t *o, uint8_t *sb)
{
    /* The context's identity: the one its segments are named by. As the
     * shm connector's own blob: a segment and offset, or segment 0 and the
     * address of ordinary memory. */
    const pxs_context_t *ctx = conn->ctx;
    pxs__shm_blob_write(sb, ctx->pid, o->seg ? o->seg->id : 0, ctx->start_time, ctx->node_id,
                        o->seg ? (uint64_t)((const uint8_t *)o->addr -
                                            (const uint8_t *)o->seg->base)
                               : (uint64_t)(uintptr_t)o->addr);
}

bool pxs__conn_node_attach(const uint8_t *sb, uint64_t *addr_p)
{
    pxs_shm_loc_t l;
    pxs__shm_blob_read(sb, &l);
    if (l.seg == 0) *addr_p = l.where;
    return l.seg == 0;
}

/* The shm connector's proxy of the same object: p with sb for its blob. */
static bool shm_desc(const pxs_conn_node_t *n, const pxs_pdesc_t *p, const uint8_t *sb,
                     pxs_pdesc_t *d)
{
    if (!n->on || pxs__shm_blob_node(sb) != n->shm.ctx->node_id) return false;
    *d = *p;
    d->blob = sb;
    d->blob_len = PXS_SHM_BLOB_LEN;
    d->connector = PXS_CONNECTOR_SHM;
    return true;
}

pxs_status_t pxs__conn_node_get_at(pxs_conn_node_t *n, const pxs_pdesc_t *p,
                                   const pxs_shm_loc_t *l, void *dst)
{
    if (!n->on || l->node != n->shm.ctx->node_id) return PXS_ERR_UNSUPPORTED;
    /* The shm reader checks the offset against the segment it maps and
     * the generation in the owner's table before and after the copy. It
     * reads of p only what both proxies share (owner, slot, generation,
     * size): no shm proxy is built. */
    return pxs__shm_get_at(&n->shm, p, l, dst);
}

pxs_status_t pxs__conn_node_get(pxs_conn_node_t *n, const pxs_pdesc_t *p, const uint8_t *sb,
                                void *dst)
{
    pxs_shm_loc_t l;
    pxs__shm_blob_read(sb, &l);
    return pxs__conn_node_get_at(n, p, &l, dst);
}

pxs_status_t pxs__conn_node_open(pxs_conn_node_t *n, const pxs_pdesc_t *p, const uint8_t *sb,
                                 void **state_p)
{
    pxs_pdesc_t d;
    *state_p = NULL;
    if (!shm_desc(n, p, sb, &d)) return PXS_ERR_UNSUPPORTED;
    return n->shm.ops->open(&n->shm, &d, state_p);
}

/* The shm reader's handle needs of p only the slot and generation, which
 * both proxies share. */
pxs_status_t pxs__conn_node_read(pxs_conn_node_t *n, const pxs_pdesc_t *p, void *state,
                                 uint64_t off, void *dst, size_t len)
{
    return n->shm.ops->read(&n->shm, p, state, off, dst, len);
}

void pxs__conn_node_close(pxs_conn_node_t *n, const pxs_pdesc_t *p, void *state)
{
    n->shm.ops->close(&n->shm, p, state);
}
