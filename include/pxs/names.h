/**
 * @file names.h
 * @brief Named keys: the embedded rendezvous maps strings such as
 *        "step42/field" to proxies, in-process and across the processes of
 *        one node, with no server and no MPI.
 *
 * The directory is a shared segment per domain
 * (/dev/shm/pxs-names.v2.<16 hex digits of the domain id>),
 * guarded by a robust process-shared mutex: a process that dies while it
 * holds the lock or half-writes an entry wedges and corrupts nobody, and
 * names published by processes that have exited are reclaimed. The last
 * context of a domain to finalize with no live names left removes the file.
 *
 * Thread safety: per the context's thread mode (the directory itself is
 * safe across processes). Every call is bounded: no wait on other processes
 * beyond the directory lock, which a dead holder cannot keep.
 */
#ifndef PXS_NAMES_H
#define PXS_NAMES_H

#include <pxs/proxy.h>
#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest name, terminating NUL excluded. */
#define PXS_NAME_MAX 127

/**
 * Publish a proxy under a name. The name belongs to this context until
 * pxs_name_unpublish or pxs_finalize, or until its process exits.
 * @return PXS_OK, PXS_ERR_EXISTS (a live publisher has it),
 *         PXS_ERR_INVALID_PARAM (empty or longer than PXS_NAME_MAX),
 *         PXS_ERR_NO_RESOURCE (directory full), validation errors.
 */
pxs_status_t pxs_name_publish(pxs_context_t *ctx, const char *name,
                              const pxs_proxy_t *proxy);

/**
 * Look a name up.
 * @return PXS_OK (*proxy_p set), PXS_ERR_NOT_FOUND (never published,
 *         unpublished, or its publisher exited).
 */
pxs_status_t pxs_name_lookup(pxs_context_t *ctx, const char *name,
                             pxs_proxy_t *proxy_p);

/**
 * Remove a name this context published.
 * @return PXS_OK, PXS_ERR_NOT_FOUND, PXS_ERR_NOT_OWNER.
 */
pxs_status_t pxs_name_unpublish(pxs_context_t *ctx, const char *name);

#ifdef __cplusplus
}
#endif
#endif
