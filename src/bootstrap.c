/* Out-of-band bootstrap: one allgather of every member's identity over a
 * caller-supplied collective (pxs/bootstrap.h). The core never sees MPI. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pxs_int.h"

#define BOOT_MAGIC   0x42535850u /* "PXSB" */
#define BOOT_VERSION 1
#define BOOT_REC     64

/* Record: magic u32, version u16, pad u16, domain u64, owner u64, node u64,
 * start u64, pid u32, rank u32, size u32, pad, crc32c u32 at 60. */
static void rec_pack(const pxs_context_t *ctx, const pxs_oob_t *oob, uint8_t *r)
{
    memset(r, 0, BOOT_REC);
    pxs_wr32(r, BOOT_MAGIC);
    pxs_wr16(r + 4, BOOT_VERSION);
    pxs_wr64(r + 8, ctx->domain_id);
    pxs_wr64(r + 16, ctx->owner_id);
    pxs_wr64(r + 24, ctx->node_id);
    pxs_wr64(r + 32, ctx->start_time);
    pxs_wr32(r + 40, (uint32_t)ctx->pid);
    pxs_wr32(r + 44, (uint32_t)oob->rank);
    pxs_wr32(r + 48, (uint32_t)oob->size);
    pxs_wr32(r + 60, pxs__crc32c(0, r, 60));
}

static pxs_status_t rec_check(const pxs_context_t *ctx, const pxs_oob_t *oob, int i,
                              const uint8_t *r)
{
    if (pxs_rd32(r) != BOOT_MAGIC || pxs_rd32(r + 60) != pxs__crc32c(0, r, 60)) {
        pxs_error("bootstrap: member %d sent no valid record", i);
        return PXS_ERR_CORRUPT;
    }
    if (pxs_rd16(r + 4) != BOOT_VERSION) return PXS_ERR_VERSION;
    if (pxs_rd64(r + 8) != ctx->domain_id) {
        pxs_error("bootstrap: member %d is in another domain", i);
        return PXS_ERR_FOREIGN;
    }
    if (pxs_rd32(r + 44) != (uint32_t)i || pxs_rd32(r + 48) != (uint32_t)oob->size) {
        pxs_error("bootstrap: member %d disagrees on its rank or the group size", i);
        return PXS_ERR_CORRUPT;
    }
    return PXS_OK;
}

static int deadline_passed(uint64_t deadline) { return deadline && pxs__now_ns() > deadline; }

pxs_status_t pxs_bootstrap(pxs_context_t *ctx, const pxs_oob_t *oob, int timeout_ms)
{
    if (!ctx || !oob || !oob->allgather || !oob->test || !oob->req_free || oob->size <= 0 ||
        oob->rank < 0 || oob->rank >= oob->size)
        return PXS_ERR_INVALID_PARAM;
    if (ctx->group_id) {
        pxs_error("bootstrap: the context already joined a group");
        return PXS_ERR_INVALID_PARAM;
    }
    if (timeout_ms == PXS_TIMEOUT_DEFAULT) timeout_ms = ctx->timeout_ms;
    uint64_t deadline = timeout_ms < 0 ? 0 : pxs__now_ns() + (uint64_t)timeout_ms * 1000000ull;

    size_t n = (size_t)oob->size;
    uint8_t mine[BOOT_REC];
    uint8_t *all = calloc(n, BOOT_REC);
    pxs_peer_t *peers = calloc(n, sizeof *peers);
    if (!all || !peers) {
        free(all);
        free(peers);
        return PXS_ERR_NO_MEMORY;
    }
    rec_pack(ctx, oob, mine);
    void *req = NULL;
    pxs_status_t st = oob->allgather(mine, all, BOOT_REC, oob->coll_info, &req);
    if (st == PXS_OK) {
        /* Poll with a short sleep after a while: members may be slow to
         * arrive, and a spinning member would starve them on small nodes. */
        unsigned polls = 0;
        while ((st = oob->test(req)) == PXS_INPROGRESS) {
            if (deadline_passed(deadline)) {
                pxs_error("bootstrap: not every member joined within %d ms", timeout_ms);
                st = PXS_ERR_TIMEOUT;
                break;
            }
            if (++polls > 1000) nanosleep(&(struct timespec){0, 100000}, NULL);
        }
        oob->req_free(req);
    }
    /* The table may still own the buffers after a timeout: it was told to
     * free the request, and we only free ours after that returned. */
    for (size_t i = 0; st == PXS_OK && i < n; i++) {
        const uint8_t *r = all + i * BOOT_REC;
        st = rec_check(ctx, oob, (int)i, r);
        peers[i].owner_id = pxs_rd64(r + 16);
        peers[i].node_id = pxs_rd64(r + 24);
        peers[i].pid = (int32_t)pxs_rd32(r + 40);
    }
    if (st == PXS_OK && peers[oob->rank].owner_id != ctx->owner_id) st = PXS_ERR_CORRUPT;
    if (st != PXS_OK) {
        free(all);
        free(peers);
        return st;
    }
    /* Same on every member, different for every group: a hash of every
     * member's (random) owner id in rank order. */
    uint64_t gid = pxs__hash64(all, n * BOOT_REC);
    free(all);
    pxs__lock(ctx);
    ctx->group_id = gid ? gid : 1;
    ctx->group_rank = oob->rank;
    ctx->group_size = oob->size;
    ctx->group = peers;
    pxs__unlock(ctx);
    pxs_debug("context %016llx joined group %016llx as %d of %d", (unsigned long long)ctx->owner_id,
              (unsigned long long)ctx->group_id, oob->rank, oob->size);
    return PXS_OK;
}

uint64_t pxs_group_info(const pxs_context_t *ctx, int *rank_p, int *size_p)
{
    if (!ctx || !ctx->group_id) return 0;
    if (rank_p) *rank_p = ctx->group_rank;
    if (size_p) *size_p = ctx->group_size;
    return ctx->group_id;
}

pxs_status_t pxs_group_peer(const pxs_context_t *ctx, int rank, pxs_peer_t *peer)
{
    if (!ctx || !peer || !ctx->group_id || rank < 0 || rank >= ctx->group_size)
        return PXS_ERR_NOT_FOUND;
    *peer = ctx->group[rank];
    return PXS_OK;
}

int pxs_group_rank_of(const pxs_context_t *ctx, uint64_t owner_id)
{
    if (!ctx || !ctx->group_id) return -1;
    for (int i = 0; i < ctx->group_size; i++)
        if (ctx->group[i].owner_id == owner_id) return i;
    return -1;
}
