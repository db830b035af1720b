/**
 * @file bootstrap.h
 * @brief Out-of-band bootstrap: join the contexts of a group of processes
 *        (the ranks of a communicator, the tasks of a launcher) through a
 *        collective the caller supplies.
 *
 * The core never includes a launcher's or MPI's headers: it takes a table
 * of callbacks (the shape of UCC's ucc_oob_coll_t) and runs one allgather
 * over it. libpxs_mpi fills the table over a communicator (pxs/mpi.h);
 * tests and tools may fill it over sockets or shared memory.
 *
 * What the exchange gives every member: the identity (owner id, pid, node)
 * of every other member's context, and a group id that is the same for all
 * members and different for every group (the "mpi" connector refuses a
 * proxy of another group with PXS_ERR_FOREIGN). Transport addresses are not
 * exchanged: every proxy carries what a reader needs to reach its owner,
 * so no member has to look anything up before a resolve.
 */
#ifndef PXS_BOOTSTRAP_H
#define PXS_BOOTSTRAP_H

#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A non-blocking allgather supplied by the caller.
 *
 * allgather: start gathering len bytes from sbuf of every member into rbuf
 *   (size * len bytes, member i's at offset i * len); set *req_p to a handle.
 *   Return PXS_OK on start, or an error.
 * test: PXS_OK when the allgather has completed, PXS_INPROGRESS while not,
 *   or an error. Called repeatedly until it is not PXS_INPROGRESS or the
 *   bootstrap times out.
 * req_free: release the handle (also after a timeout, while in progress:
 *   the table must then keep sbuf/rbuf alive or cancel; the core keeps its
 *   buffers until req_free returns).
 */
typedef struct pxs_oob {
    uint64_t field_mask; /**< reserved: 0 */
    int rank;            /**< this member, 0 <= rank < size */
    int size;            /**< members in the group */
    void *coll_info;     /**< passed back to every callback */
    pxs_status_t (*allgather)(const void *sbuf, void *rbuf, size_t len,
                              void *coll_info, void **req_p);
    pxs_status_t (*test)(void *req);
    void (*req_free)(void *req);
} pxs_oob_t;

/** One member of a group, as the bootstrap saw it. */
typedef struct {
    uint64_t owner_id; /**< its context (the owner id its proxies carry) */
    uint64_t node_id;  /**< equal for members on one node */
    int32_t pid;
} pxs_peer_t;

/**
 * Join ctx to a group: one allgather over oob, collective over its members.
 * After it, pxs_group_* describe the group and connectors have the
 * members' addresses. A context joins at most one group.
 *
 * @param timeout_ms PXS_TIMEOUT_DEFAULT (the context's), PXS_TIMEOUT_INFINITE
 *        or ms: a member that never joins gives PXS_ERR_TIMEOUT, not a hang.
 * @return PXS_OK; PXS_ERR_INVALID_PARAM (bad table, or ctx already in a
 *         group); PXS_ERR_TIMEOUT; PXS_ERR_CORRUPT (members disagree on the
 *         group, e.g. a foreign record); errors from the table.
 * Thread safety: call once, from one thread, before the context is shared.
 * Memory: nothing of oob is kept after the call returns.
 */
pxs_status_t pxs_bootstrap(pxs_context_t *ctx, const pxs_oob_t *oob, int timeout_ms);

/**
 * The group ctx joined: *rank_p and *size_p (either may be NULL) and its id.
 * @return the group id, or 0 if ctx joined no group.
 * Thread safety: any thread, after pxs_bootstrap.
 */
uint64_t pxs_group_info(const pxs_context_t *ctx, int *rank_p, int *size_p);

/**
 * Member `rank` of ctx's group.
 * @return PXS_OK, PXS_ERR_NOT_FOUND (no group or rank out of range).
 */
pxs_status_t pxs_group_peer(const pxs_context_t *ctx, int rank, pxs_peer_t *peer);

/**
 * The rank of the member whose context is owner_id (from pxs_proxy_info).
 * @return the rank, or -1 if it is not a member of ctx's group.
 */
int pxs_group_rank_of(const pxs_context_t *ctx, uint64_t owner_id);

#ifdef __cplusplus
}
#endif
#endif
