/**
 * @file lazy.h
 * @brief Lazy handles: resolve on first access, then serve the cached bytes.
 */
#ifndef PXS_LAZY_H
#define PXS_LAZY_H

#include <pxs/proxy.h>
#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Wrap a proxy without touching its object. The proxy is validated and
 * copied; nothing is transferred until pxs_lazy_get.
 * @return PXS_OK, PXS_ERR_NO_MEMORY, validation errors.
 */
pxs_status_t pxs_lazy_create(pxs_context_t *ctx, const pxs_proxy_t *proxy,
                             pxs_lazy_t **lazy_p);

/**
 * The object's bytes. The first call resolves them into a buffer the handle
 * owns; later calls return the same buffer without any transfer. A failed
 * resolve is not cached: the next call tries again.
 * @param data_p,len_p set on success; valid until pxs_lazy_free.
 * @return as pxs_resolve_alloc.
 * Not thread safe on the same handle.
 */
pxs_status_t pxs_lazy_get(pxs_lazy_t *lazy, const void **data_p, size_t *len_p);

/** @return 1 once the bytes are cached, else 0. */
int pxs_lazy_is_resolved(const pxs_lazy_t *lazy);

/** Free the handle and its cached bytes. NULL is ignored. */
void pxs_lazy_free(pxs_lazy_t *lazy);

#ifdef __cplusplus
}
#endif
#endif
