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
 * each ucx connector (pxs_conn_node_t, src/conn_node.c). Readers
 * elsewhere, or where UCX_TLS rules shared memory out, use UCX as before.
 *
 * Ordinary memory of an owner on this node is no shared segment, and UCX
 * sends its gets to the owner's worker too. Readers here copy it with
 * process_vm_readv instead while the owner does not poll (ucx.c, cma_get),
 * under the checks of the owner's mirror, which UCX does map: any size
 * while the owner stalls, up to PXS_UCX_NODE_CMA_MAX bytes
 * (UCX_NODE_CMA_MAX_DEFAULT) while its progress thread sleeps; 0: never.
 *
 * PXS_UCX_NODE_MAP=0 turns both paths off (every get then goes through UCX). */
#include <stdlib.h>
#include <string.h>

#include "../../src/log.h"
#include "ucx.h"

pxs_status_t pxs__ucx_node_init(ucx_t *u)
{
    uint64_t fresh_us;
    pxs_status_t st = pxs__ucx_env_num("PXS_UCX_NODE_CMA_MAX", UCX_NODE_CMA_MAX_DEFAULT,
                                       UINT64_MAX, "bytes", &u->cma_max);
    /* How recent an owner's beat must be to count on its answer (ucx.h). */
    if (st == PXS_OK)
        st = pxs__ucx_env_num("PXS_UCX_BEAT_FRESH_US", UCX_BEAT_FRESH_NS / 1000, 3600000000ull,
                              "us", &fresh_us);
    if (st != PXS_OK) return st;
    u->beat_fresh_ns = fresh_us * 1000ull;
    const char *env = getenv("PXS_UCX_NODE_MAP");
    if ((env && !strcmp(env, "0")) || !u->node_one_sided) return PXS_OK;
    atomic_store(&u->node_cma, u->cma_max > 0); /* 0: off */
    if (pxs__conn_node_init(&u->node_rd, u->conn->ctx) != PXS_OK)
        pxs_debug("ucx: no shm reader; pxs_alloc objects on this node go through UCX");
    return PXS_OK;
}

void pxs__ucx_node_fini(ucx_t *u) { pxs__conn_node_fini(&u->node_rd); }

/* The shm connector's blob of the same object, in sb. */
static bool shm_blob(const ucx_blob_t *b, uint8_t sb[PXS_SHM_BLOB_LEN])
{
    if (!b->seg) return false;
    pxs__shm_blob_write(sb, b->pid, b->seg, b->start, b->node, b->seg_off);
    return true;
}

pxs_status_t pxs__ucx_node_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst)
{
    if (!b->seg) return PXS_ERR_UNSUPPORTED;
    const pxs_shm_loc_t l = {
        .pid = b->pid, .seg = b->seg, .start = b->start, .node = b->node, .where = b->seg_off};
    return pxs__conn_node_get_at(&u->node_rd, p, &l, dst);
}

pxs_status_t pxs__ucx_node_open(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                                void **state_p)
{
    uint8_t sb[PXS_SHM_BLOB_LEN];
    *state_p = NULL;
    return shm_blob(b, sb) ? pxs__conn_node_open(&u->node_rd, p, sb, state_p) : PXS_ERR_UNSUPPORTED;
}

pxs_status_t pxs__ucx_node_read(ucx_t *u, const pxs_pdesc_t *p, void *state, uint64_t off,
                                void *dst, size_t len)
{
    return pxs__conn_node_read(&u->node_rd, p, state, off, dst, len);
}

void pxs__ucx_node_close(ucx_t *u, const pxs_pdesc_t *p, void *state)
{
    pxs__conn_node_close(&u->node_rd, p, state);
}
