/**
 * @file memory.h
 * @brief Library memory (pxs_alloc) and zero-copy views.
 */
#ifndef PXS_MEMORY_H
#define PXS_MEMORY_H

#include <pxs/proxy.h>
#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Allocate memory that connectors expose most cheaply (like MPI_Alloc_mem):
 * a shared segment (mode 0600) that consumers on the same node map, so
 * resolving an object put from it is one memcpy and a view copies nothing.
 * The memory is page aligned and zero filled.
 * @param ptr_p set on success; release with pxs_free on the same context.
 * @return PXS_OK, PXS_ERR_INVALID_PARAM (size 0), PXS_ERR_NO_MEMORY,
 *         PXS_ERR_IO.
 * Thread safety per the context's thread mode.
 */
pxs_status_t pxs_alloc(pxs_context_t *ctx, size_t size, void **ptr_p);

/**
 * Free memory from pxs_alloc and remove its segment. Objects put from it
 * must have been evicted (a later resolve of their proxies reports
 * PXS_ERR_EVICTED either way). NULL is ignored.
 * @return PXS_OK or PXS_ERR_INVALID_PARAM (not from pxs_alloc here).
 */
pxs_status_t pxs_free(pxs_context_t *ctx, void *ptr);

/**
 * Map an object read-only without copying it. Works for inline proxies
 * (the view points into a copy held by the view), for "local" objects of
 * this process, and for same-node objects whose bytes lie in pxs_alloc
 * memory. Costs the same whatever the object size: mappings are cached.
 * The bytes are the owner's live memory: they stay mapped until
 * pxs_view_release, but the owner must not modify or evict the object
 * while views of it exist (pxs_view_valid tells whether it did).
 * @return PXS_OK, PXS_ERR_UNSUPPORTED (the bytes are not mappable from here:
 *         resolve instead), PXS_ERR_EVICTED, PXS_ERR_PEER_DEAD, validation
 *         errors.
 */
pxs_status_t pxs_view_acquire(pxs_context_t *ctx, const pxs_proxy_t *proxy,
                              pxs_view_t **view_p);

/** @return the first byte of the view (read only). */
const void *pxs_view_data(const pxs_view_t *view);
/** @return the size of the viewed object. */
size_t pxs_view_size(const pxs_view_t *view);
/** @return PXS_OK while the object is still live, else PXS_ERR_EVICTED. */
pxs_status_t pxs_view_valid(const pxs_view_t *view);
/** Release a view. NULL is ignored. */
void pxs_view_release(pxs_view_t *view);

#ifdef __cplusplus
}
#endif
#endif
