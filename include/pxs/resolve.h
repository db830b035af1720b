/**
 * @file resolve.h
 * @brief Resolving proxies: the consumer side of pxs, blocking and not.
 */
#ifndef PXS_RESOLVE_H
#define PXS_RESOLVE_H

#include <pxs/proxy.h>
#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Read an object into the caller's buffer. The proxy is validated first
 * (format, checksum, domain); the object's generation is checked before and
 * after the transfer, so an evicted or reused object never yields bytes:
 * on PXS_ERR_EVICTED the first min(cap, size) bytes of dst are zeroed.
 *
 * @param dst,cap  destination; must hold the whole object.
 * @param len_p    may be NULL; set to the object size once the proxy is
 *                 valid (so on success and on PXS_ERR_BUFFER_TOO_SMALL).
 * @return PXS_OK, PXS_ERR_BUFFER_TOO_SMALL (nothing read), PXS_ERR_EVICTED,
 *         PXS_ERR_PEER_DEAD, PXS_ERR_UNREACHABLE, PXS_ERR_FOREIGN,
 *         PXS_ERR_NO_CONNECTOR, PXS_ERR_TIMEOUT, validation errors.
 * Thread safety per the context's thread mode.
 */
pxs_status_t pxs_resolve(pxs_context_t *ctx, const pxs_proxy_t *proxy,
                         void *dst, size_t cap, size_t *len_p);

/**
 * Read an object into a buffer the library allocates.
 * @param buf_p set on success to a buffer of *len_p bytes that the caller
 *              owns and frees with pxs_buffer_free().
 * @return as pxs_resolve, plus PXS_ERR_NO_MEMORY.
 */
pxs_status_t pxs_resolve_alloc(pxs_context_t *ctx, const pxs_proxy_t *proxy,
                               void **buf_p, size_t *len_p);

/** Free a buffer returned by pxs_resolve_alloc. NULL is ignored. */
void pxs_buffer_free(void *buf);

/** Bits of pxs_resolve_params_t.field_mask. */
enum {
    PXS_RESOLVE_PARAM_TIMEOUT = 1u << 0
};

/** Parameters of a non-blocking resolve (grow by appending). */
typedef struct {
    uint64_t field_mask;
    /** Time the request may take before it completes with PXS_ERR_TIMEOUT,
     *  in ms; PXS_TIMEOUT_DEFAULT (the context's) or PXS_TIMEOUT_INFINITE. */
    int timeout_ms;
} pxs_resolve_params_t;

/**
 * Start reading an object into dst.
 * @param params  may be NULL.
 * @param req_p   set to NULL if the operation completed at once (the return
 *                value is then its final status), or to a request when
 *                PXS_INPROGRESS is returned. dst must stay valid until the
 *                request completes.
 * @return PXS_OK, PXS_INPROGRESS, or an error as pxs_resolve.
 */
pxs_status_t pxs_resolve_nb(pxs_context_t *ctx, const pxs_proxy_t *proxy,
                            void *dst, size_t cap,
                            const pxs_resolve_params_t *params,
                            pxs_request_t **req_p);

/**
 * Poll a request (drives progress once).
 * @return PXS_INPROGRESS, or its final status.
 */
pxs_status_t pxs_test(pxs_request_t *req);

/**
 * Wait for a request, driving progress.
 * @param timeout_ms  PXS_TIMEOUT_DEFAULT, PXS_TIMEOUT_INFINITE or ms; the
 *                    request's own timeout applies as well.
 * @return its final status, or PXS_ERR_TIMEOUT if this wait ran out first
 *         (the request is then still outstanding).
 */
pxs_status_t pxs_wait(pxs_request_t *req, int timeout_ms);

/**
 * Release a request. An outstanding one is cancelled first (its destination
 * buffer is no longer written once this returns). NULL is ignored.
 */
void pxs_request_free(pxs_request_t *req);

#ifdef __cplusplus
}
#endif
#endif
