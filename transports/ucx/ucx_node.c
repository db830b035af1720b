/* Same-node reads of pxs_alloc memory, mapped as the shm connector maps it.
 *
 * UCX 1.13 maps an owner's memory into a reader only for memory UCX itself
 * allocated (ucx.c, mapped_get); the pages of a pxs_alloc segment are
 * ordinary memory to it, so their gets go to the owner's worker: a round
 * trip and the owner's CPU (1.6 us at 8 B, against 0.02 us for MPI_Get on
 * an MPI_Win_allocate window). Yet those pages are a named shared segment
 * that any process of the node may map. So the proxy of such an object
 * names its segment too (UCX_BLOB_SEG), and a reader on the owner's node
 * reads it with the shm connector's reader, one instance of which lives in
 * each ucx connector: segment mapped once, generation before and after the
 * copy, the owner's liveness page. Readers elsewhere, or where UCX_TLS
 * rules shared memory out, use UCX as before.
 *
 * PXS_UCX_NODE_MAP=0 turns the path off (every get then goes through UCX). */
#include <stdlib.h>
#include <string.h>

#include "../../src/log.h"
#include "ucx.h"

void pxs__ucx_node_init(ucx_t *u)
{
    const char *env = getenv("PXS_UCX_NODE_MAP");
    if ((env && !strcmp(env, "0")) || !u->node_one_sided) return;
    u->shm = (pxs_conn_t){.ops = &pxs__conn_shm_ops, .ctx = u->conn->ctx};
    if (u->shm.ops->init(&u->shm) != PXS_OK) {
        pxs_debug("ucx: no shm reader; pxs_alloc objects on this node go through UCX");
        return;
    }
    u->node_map = true;
}

void pxs__ucx_node_fini(ucx_t *u)
{
    if (!u->node_map) return;
    u->node_map = false;
    u->shm.ops->fini(&u->shm);
}

/* The shm connector's proxy of the same object, blob in sb. */
static bool shm_desc(const ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                     uint8_t sb[PXS_SHM_BLOB_LEN], pxs_pdesc_t *d)
{
    if (!u->node_map || !b->seg || b->node != u->node) return false;
    pxs__shm_blob_write(sb, b->pid, b->seg, b->start, b->node, b->seg_off);
    *d = *p;
    d->blob = sb;
    d->blob_len = PXS_SHM_BLOB_LEN;
    d->connector = PXS_CONNECTOR_SHM;
    return true;
}

pxs_status_t pxs__ucx_node_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst)
{
    uint8_t sb[PXS_SHM_BLOB_LEN];
    pxs_pdesc_t d;
    if (!shm_desc(u, p, b, sb, &d)) return PXS_ERR_UNSUPPORTED;
    /* The shm reader checks the offset against the segment it maps and
     * the generation in the owner's table before and after the copy. */
    return dst ? u->shm.ops->get(&u->shm, &d, dst, NULL) : u->shm.ops->check(&u->shm, &d);
}

pxs_status_t pxs__ucx_node_open(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                                void **state_p)
{
    uint8_t sb[PXS_SHM_BLOB_LEN];
    pxs_pdesc_t d;
    *state_p = NULL;
    if (!shm_desc(u, p, b, sb, &d)) return PXS_ERR_UNSUPPORTED;
    return u->shm.ops->open(&u->shm, &d, state_p); /* the state keeps what it needs of sb */
}

/* The shm reader's handle needs of p only the slot and generation, which
 * both proxies share. */
pxs_status_t pxs__ucx_node_read(ucx_t *u, const pxs_pdesc_t *p, void *state, uint64_t off,
                                void *dst, size_t len)
{
    return u->shm.ops->read(&u->shm, p, state, off, dst, len);
}

void pxs__ucx_node_close(ucx_t *u, const pxs_pdesc_t *p, void *state)
{
    u->shm.ops->close(&u->shm, p, state);
}
