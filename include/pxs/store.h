/**
 * @file store.h
 * @brief Stores, puts, evicts: the producer side of pxs.
 */
#ifndef PXS_STORE_H
#define PXS_STORE_H

#include <pxs/proxy.h>
#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bits of pxs_store_params_t.field_mask. */
enum {
    PXS_STORE_PARAM_CONNECTOR = 1u << 0,
    PXS_STORE_PARAM_NAME      = 1u << 1
};

/** Store parameters (grow by appending; see field_mask). */
typedef struct {
    uint64_t field_mask;
    /** Connector name: "local" (same process), "shm" (same node), and the
     *  others listed by pxs_info. Default "shm". Copied. */
    const char *connector;
    /** Store name, recorded in proxies as a hash. Default "default". Copied. */
    const char *name;
} pxs_store_params_t;

/**
 * Open a store bound to one connector.
 * @return PXS_OK, PXS_ERR_NO_CONNECTOR (unknown or not built in),
 *         PXS_ERR_INVALID_PARAM, PXS_ERR_NO_MEMORY, or the connector's error.
 * Thread safety per the context's thread mode.
 */
pxs_status_t pxs_store_open(pxs_context_t *ctx, const pxs_store_params_t *params,
                            pxs_store_t **store_p);

/**
 * Close a store, evicting every object still in it. NULL is ignored.
 * Proxies of its objects resolve to PXS_ERR_EVICTED afterwards, and the
 * caller may reuse the buffers of its zero-copy objects once it returns.
 * A store of the "mpi" connector with zero-copy objects that other ranks
 * hold leases on waits once, lease_us after the last revocation
 * (pxs_mpi_params_t), not once per object. The store handle is freed.
 * Thread safety per the context's thread mode; no other call may use the
 * store meanwhile or after.
 */
void pxs_store_close(pxs_store_t *store);

/** Bits of pxs_put_params_t.field_mask. */
enum {
    PXS_PUT_PARAM_MEMTYPE = 1u << 0,
    PXS_PUT_PARAM_FLAGS   = 1u << 1
};

/** Flags of pxs_put_params_t.flags. */
enum {
    /** Copy the bytes into memory the connector owns (the caller may reuse
     *  its buffer at once). Without it the put is zero-copy: the caller's
     *  buffer is exposed in place. */
    PXS_PUT_COPY      = 1u << 0,
    /** Never inline, even if the object is small. */
    PXS_PUT_NO_INLINE = 1u << 1
};

/** Put parameters (grow by appending; see field_mask). */
typedef struct {
    uint64_t field_mask;
    pxs_memtype_t memtype; /**< default PXS_MEMTYPE_HOST */
    uint32_t flags;        /**< PXS_PUT_* */
} pxs_put_params_t;

/**
 * Make an object of [buf, buf+len) and return its proxy.
 *
 * Zero-copy (the default): the buffer is exposed where it is. It must stay
 * allocated and unchanged until the object is evicted; freeing it earlier is
 * a usage error that pxs detects where it can (a remote read of unmapped
 * memory reports PXS_ERR_EVICTED) but cannot always. Buffers from pxs_alloc
 * are the cheapest to expose (same-node readers map them).
 * With PXS_PUT_COPY the bytes are copied and the buffer is free at return.
 * Objects of at most the context's inline_max bytes are copied into the
 * proxy itself (unless PXS_PUT_NO_INLINE): no object is kept and evicting
 * such a proxy does nothing.
 *
 * @param params may be NULL.
 * @return PXS_OK, PXS_ERR_INVALID_PARAM, PXS_ERR_UNSUPPORTED (memory type),
 *         PXS_ERR_NO_RESOURCE (object table full), PXS_ERR_NO_MEMORY.
 *         *proxy_p is written on success only.
 * Thread safety per the context's thread mode.
 */
pxs_status_t pxs_put(pxs_store_t *store, const void *buf, size_t len,
                     const pxs_put_params_t *params, pxs_proxy_t *proxy_p);

/**
 * Evict an object: revoke remote access, release its memory if the store
 * copied it. Afterwards every resolve of its proxy, here or elsewhere,
 * reports PXS_ERR_EVICTED and delivers no bytes (the generation recorded in
 * the proxy no longer matches). Only the owning store may evict.
 * @return PXS_OK (also for inline proxies, which own nothing),
 *         PXS_ERR_EVICTED (already evicted), PXS_ERR_NOT_OWNER,
 *         PXS_ERR_FOREIGN, or a proxy validation error.
 */
pxs_status_t pxs_evict(pxs_store_t *store, const pxs_proxy_t *proxy);

/**
 * Does the object behind a proxy still exist? Asks the owner's generation
 * table (same node: a load from shared memory; no message to the owner).
 * @return PXS_OK if it exists, PXS_ERR_EVICTED, PXS_ERR_PEER_DEAD,
 *         PXS_ERR_UNREACHABLE, PXS_ERR_FOREIGN, PXS_ERR_NO_CONNECTOR (its
 *         connector is not built in), or a validation error.
 */
pxs_status_t pxs_exists(pxs_context_t *ctx, const pxs_proxy_t *proxy);

#ifdef __cplusplus
}
#endif
#endif
