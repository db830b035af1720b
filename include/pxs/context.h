/**
 * @file context.h
 * @brief The pxs context: one per process, owning connectors, the object
 *        table, caches and progress.
 */
#ifndef PXS_CONTEXT_H
#define PXS_CONTEXT_H

#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PXS_VERSION_MAJOR 0
#define PXS_VERSION_MINOR 1
#define PXS_VERSION_PATCH 0

#define PXS_STRINGIFY_(x) #x
#define PXS_STRINGIFY(x) PXS_STRINGIFY_(x)

/** @return the library version as "MAJOR.MINOR.PATCH". Thread safe. */
const char *pxs_version(void);

/** Thread support requested for a context. */
typedef enum {
    /** One thread at a time calls into the context (the caller serialises). */
    PXS_THREAD_SINGLE = 0,
    /** Any thread may call any function at any time (an internal lock). */
    PXS_THREAD_MULTIPLE = 1
} pxs_thread_mode_t;

/** Bits of pxs_context_params_t.field_mask: which fields are set. */
enum {
    PXS_CONTEXT_PARAM_DOMAIN      = 1u << 0,
    PXS_CONTEXT_PARAM_THREAD_MODE = 1u << 1,
    PXS_CONTEXT_PARAM_INLINE_MAX  = 1u << 2,
    PXS_CONTEXT_PARAM_MAX_OBJECTS = 1u << 3,
    PXS_CONTEXT_PARAM_TIMEOUT_MS  = 1u << 4
};

/**
 * Context parameters. Set field_mask to the fields you fill; the others take
 * their defaults. New fields are only ever appended, so code built against an
 * older header keeps working. Every field also has a PXS_* environment
 * variable that overrides it (see README, "Configuration").
 */
typedef struct {
    uint64_t field_mask;
    /** Domain (job) name. Proxies from another domain are refused with
     *  PXS_ERR_FOREIGN and named keys live per domain. Default "default";
     *  env PXS_DOMAIN. Copied at init. */
    const char *domain;
    /** Default PXS_THREAD_SINGLE; env PXS_THREAD_MODE=single|multiple. */
    pxs_thread_mode_t thread_mode;
    /** Objects of at most this many bytes travel inside the proxy and are
     *  resolved without contacting their owner. Default 1024, at most
     *  PXS_INLINE_LIMIT, 0 disables inlining; env PXS_INLINE_MAX. */
    size_t inline_max;
    /** Live objects this context can own at once (slots of its generation
     *  table). Default 65536; env PXS_MAX_OBJECTS. */
    uint32_t max_objects;
    /** Default timeout of blocking waits in milliseconds, -1 for none.
     *  Default 10000; env PXS_TIMEOUT_MS (decimal, -1 for none). */
    int timeout_ms;
} pxs_context_params_t;

/**
 * Create a context.
 *
 * Also removes shared segments left in /dev/shm by pxs processes of this
 * user that died without finalizing.
 *
 * @param params  may be NULL for all defaults; not retained.
 * @param ctx_p   set on success only.
 * @return PXS_OK, PXS_ERR_INVALID_PARAM, PXS_ERR_NO_MEMORY, PXS_ERR_IO.
 * Thread safe with respect to other contexts.
 */
pxs_status_t pxs_init(const pxs_context_params_t *params, pxs_context_t **ctx_p);

/**
 * Destroy a context: closes its stores (evicting their objects), frees its
 * pxs_alloc memory, removes its shared segments and the names it published.
 * Outstanding requests, lazy handles and views of this context must have been
 * freed first. NULL is accepted and ignored. Not thread safe: no other call
 * on this context may run concurrently.
 */
void pxs_finalize(pxs_context_t *ctx);

/**
 * Drive outstanding non-blocking operations of every connector.
 * @return the number of operations that completed (>= 0). Thread safety per
 *         the context's thread mode.
 */
int pxs_progress(pxs_context_t *ctx);

/**
 * The configuration in force after defaults and environment overrides.
 * Fills every field of *out and sets out->field_mask to all bits; out->domain
 * points into the context (valid until pxs_finalize).
 */
pxs_status_t pxs_context_query(const pxs_context_t *ctx, pxs_context_params_t *out);

#ifdef __cplusplus
}
#endif
#endif
