/**
 * @file pxs/connector.h
 * @brief What the application may ask about connectors (pxs_info uses it).
 */
#ifndef PXS_CONNECTOR_INFO_H
#define PXS_CONNECTOR_INFO_H

#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Capability bits of a connector. */
enum {
    PXS_CAP_CROSS_PROCESS = 1u << 0, /**< other processes can resolve */
    PXS_CAP_CROSS_NODE    = 1u << 1, /**< other nodes can resolve */
    PXS_CAP_ONE_SIDED     = 1u << 2, /**< the owner's CPU takes no part */
    PXS_CAP_ZERO_COPY_PUT = 1u << 3, /**< puts expose the caller's buffer */
    PXS_CAP_VIEW          = 1u << 4, /**< zero-copy views (some memory) */
    PXS_CAP_NONBLOCKING   = 1u << 5  /**< gets can complete asynchronously */
};

/** Description of a built-in connector. */
typedef struct {
    const char *name;      /**< e.g. "shm" */
    int id;                /**< pxs_connector_id_t */
    uint64_t caps;         /**< PXS_CAP_* */
    uint64_t memtypes;     /**< bit (1 << pxs_memtype_t) per supported type */
    const char *summary;   /**< one line */
} pxs_connector_desc_t;

/**
 * The i-th connector built into this library.
 * @return PXS_OK, or PXS_ERR_NOT_FOUND past the last one. Thread safe.
 */
pxs_status_t pxs_connector_describe(unsigned i, pxs_connector_desc_t *desc);

#ifdef __cplusplus
}
#endif
#endif
