/**
 * @file handle.h
 * @brief Open a proxy once, read from its object many times.
 *
 * pxs_resolve validates the proxy and finds its owner on every call. A
 * consumer that reads one object again and again (a loader taking slices of
 * a simulation's field, a benchmark) opens a handle instead: validation,
 * the owner's lookup and, where the connector can, its mappings are done
 * once, and each pxs_handle_read costs what the transport costs (for a
 * same-node pxs_alloc object: two loads of the generation and a memcpy).
 * Reads keep every guarantee of pxs_resolve: an evicted object, a dead
 * owner or a reused pid gives a status, never wrong bytes.
 */
#ifndef PXS_HANDLE_H
#define PXS_HANDLE_H

#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An opened proxy. Opaque. */
typedef struct pxs_handle pxs_handle_t;

/**
 * Validate proxy and prepare reads of its object. The proxy is copied: the
 * caller's may go away.
 * Thread safety: as pxs_resolve on ctx.
 * @return PXS_OK; validation errors of pxs_resolve (PXS_ERR_CORRUPT,
 *         PXS_ERR_FOREIGN, ...); PXS_ERR_EVICTED, PXS_ERR_PEER_DEAD,
 *         PXS_ERR_UNREACHABLE where the connector looks at the owner at
 *         open; PXS_ERR_NO_MEMORY.
 */
pxs_status_t pxs_handle_open(pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_handle_t **h_p);

/** @return the object's size in bytes (0 for NULL). */
size_t pxs_handle_size(const pxs_handle_t *h);

/**
 * Copy len bytes at offset of the object into dst (blocking). The shm
 * connector reads just that part; connectors without partial reads (ucx,
 * mpi, local today) read the whole object into a temporary buffer first.
 * len 0 (any offset up to the size) returns PXS_OK at once.
 * Thread safety: concurrent reads of one handle are safe where the context
 * is PXS_THREAD_MULTIPLE; none may race pxs_handle_close.
 * @return PXS_OK; PXS_ERR_INVALID_PARAM (range outside the object, NULL
 *         dst with len > 0); PXS_ERR_EVICTED (dst zeroed), PXS_ERR_PEER_DEAD,
 *         PXS_ERR_TIMEOUT and the other errors of pxs_resolve.
 */
pxs_status_t pxs_handle_read(pxs_handle_t *h, uint64_t offset, void *dst, size_t len);

/** Release the handle and what it holds (mappings). NULL is ignored. */
void pxs_handle_close(pxs_handle_t *h);

#ifdef __cplusplus
}
#endif
#endif
