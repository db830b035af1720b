/**
 * @file types.h
 * @brief Handles and small value types shared by the pxs headers.
 */
#ifndef PXS_TYPES_H
#define PXS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One per process (or per independent user inside a process). */
typedef struct pxs_context pxs_context_t;
/** A named place where objects live, bound to one connector. */
typedef struct pxs_store pxs_store_t;
/** An outstanding non-blocking operation. */
typedef struct pxs_request pxs_request_t;
/** A lazily resolved object. */
typedef struct pxs_lazy pxs_lazy_t;
/** A read-only, zero-copy view of an object's bytes. */
typedef struct pxs_view pxs_view_t;

/**
 * Where the bytes of an object live. Every put and every proxy carries one.
 * Only PXS_MEMTYPE_HOST is implemented today; the others are reserved so the
 * proxy format and the connector capabilities need not change when they come.
 */
typedef enum {
    PXS_MEMTYPE_HOST = 0,
    PXS_MEMTYPE_CUDA = 1,        /**< CUDA device memory (reserved) */
    PXS_MEMTYPE_CUDA_MANAGED = 2 /**< CUDA managed memory (reserved) */
} pxs_memtype_t;

#define PXS_MEMTYPE_LAST 3

/** Timeout value meaning "use the context default" (PXS_TIMEOUT_MS). */
#define PXS_TIMEOUT_DEFAULT (-2)
/** Timeout value meaning "wait forever". */
#define PXS_TIMEOUT_INFINITE (-1)

#ifdef __cplusplus
}
#endif
#endif
