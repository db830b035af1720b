/**
 * @file status.h
 * @brief Status codes returned by every pxs call.
 *
 * 0 is success, positive values mean "in progress", negative values are
 * errors. Codes and their strings come from one X-macro list so the two can
 * never drift apart.
 */
#ifndef PXS_STATUS_H
#define PXS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, string) */
#define PXS_STATUS_LIST(X) \
    X(PXS_OK,                   0,  "success") \
    X(PXS_INPROGRESS,           1,  "operation in progress") \
    X(PXS_ERR_INVALID_PARAM,   -1,  "invalid parameter") \
    X(PXS_ERR_NO_MEMORY,       -2,  "out of memory") \
    X(PXS_ERR_TRUNCATED,       -3,  "proxy is truncated") \
    X(PXS_ERR_CORRUPT,         -4,  "proxy is corrupt (bad magic, layout or checksum)") \
    X(PXS_ERR_VERSION,         -5,  "unsupported proxy format version") \
    X(PXS_ERR_FOREIGN,         -6,  "proxy belongs to another domain (job)") \
    X(PXS_ERR_EVICTED,         -7,  "object was evicted or its proxy is stale") \
    X(PXS_ERR_BUFFER_TOO_SMALL,-8,  "destination buffer is too small") \
    X(PXS_ERR_NO_CONNECTOR,    -9,  "unknown or unavailable connector") \
    X(PXS_ERR_NOT_FOUND,       -10, "no such object or name") \
    X(PXS_ERR_EXISTS,          -11, "name is already published") \
    X(PXS_ERR_PEER_DEAD,       -12, "owner process has exited") \
    X(PXS_ERR_UNREACHABLE,     -13, "owner is not reachable over this connector") \
    X(PXS_ERR_UNSUPPORTED,     -14, "operation not supported by this connector or memory type") \
    X(PXS_ERR_TIMEOUT,         -15, "operation timed out") \
    X(PXS_ERR_NO_RESOURCE,     -16, "out of a bounded resource (object slots, names)") \
    X(PXS_ERR_IO,              -17, "system call failed") \
    X(PXS_ERR_NOT_OWNER,       -18, "only the owning context may do this") \
    X(PXS_ERR_BUSY,            -19, "object has outstanding users")

typedef enum {
#define PXS_STATUS_ENUM_(n, v, s) n = (v),
    PXS_STATUS_LIST(PXS_STATUS_ENUM_)
#undef PXS_STATUS_ENUM_
} pxs_status_t;

/**
 * Name a status.
 * @return a static string, never NULL ("unknown status" for values outside
 *         the list). Thread safe.
 */
const char *pxs_strerror(pxs_status_t status);

#ifdef __cplusplus
}
#endif
#endif
