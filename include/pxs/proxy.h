/**
 * @file proxy.h
 * @brief The proxy: a small, self-describing, trivially copyable value that
 *        names an object and says how to read it.
 *
 * In memory a pxs_proxy_t holds its own wire encoding: a versioned,
 * little-endian byte layout ending with a CRC-32C of everything before it.
 * It can therefore be copied with memcpy into any message, file or queue and
 * read on any host. Only the first pxs_proxy_len() bytes matter; sending
 * those (pxs_proxy_encode) is enough. Decoding validates everything and
 * never trusts its input.
 */
#ifndef PXS_PROXY_H
#define PXS_PROXY_H

#include <pxs/status.h>
#include <pxs/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest encoded proxy, header and inline bytes included. */
#define PXS_PROXY_MAX 4096
/** Largest object that may travel inline (upper bound of inline_max). */
#define PXS_INLINE_LIMIT 3072
/** Largest text form, terminating NUL included. */
#define PXS_PROXY_TEXT_MAX (5 + ((PXS_PROXY_MAX + 2) / 3) * 4 + 1)

/** A proxy value. Treat as opaque bytes; copy freely. */
typedef struct pxs_proxy {
    uint8_t bytes[PXS_PROXY_MAX];
} pxs_proxy_t;

/** Connector ids as carried in proxies. */
typedef enum {
    PXS_CONNECTOR_INLINE = 0, /**< bytes are inside the proxy */
    PXS_CONNECTOR_LOCAL  = 1,
    PXS_CONNECTOR_SHM    = 2,
    PXS_CONNECTOR_UCX    = 3,
    PXS_CONNECTOR_OFI    = 4,
    PXS_CONNECTOR_MPI    = 5
} pxs_connector_id_t;

/** Decoded, read-only summary of a proxy (pxs_proxy_info). */
typedef struct {
    uint64_t field_mask;     /**< reserved, set to 0 by the library */
    uint8_t version;         /**< format version */
    uint8_t connector;       /**< pxs_connector_id_t */
    pxs_memtype_t memtype;
    int is_inline;           /**< bytes travel inside the proxy */
    uint64_t size;           /**< object size in bytes */
    uint64_t domain_id;      /**< hash of the domain name */
    uint64_t owner_id;       /**< owning context */
    uint64_t store_id;       /**< hash of the store name */
    uint64_t key;            /**< object key, unique within the owner */
    size_t encoded_len;      /**< bytes of the wire form */
} pxs_proxy_info_t;

/**
 * Validate a proxy and describe it.
 * @return PXS_OK, or PXS_ERR_TRUNCATED / PXS_ERR_CORRUPT / PXS_ERR_VERSION.
 *         Thread safe (reads only the proxy).
 */
pxs_status_t pxs_proxy_info(const pxs_proxy_t *proxy, pxs_proxy_info_t *info);

/** @return the encoded length of a valid proxy, 0 for an invalid one. */
size_t pxs_proxy_len(const pxs_proxy_t *proxy);

/**
 * Write the wire form (pxs_proxy_len() bytes) into buf.
 * @return PXS_OK, PXS_ERR_BUFFER_TOO_SMALL (*len_p is then the size needed),
 *         or a validation error. Thread safe.
 */
pxs_status_t pxs_proxy_encode(const pxs_proxy_t *proxy, void *buf, size_t cap,
                              size_t *len_p);

/**
 * Read a wire form from untrusted bytes. Checks magic, version, every length
 * field against len, and the checksum before anything is copied into *out.
 * Extra trailing bytes are allowed (a proxy may sit in a larger message).
 * @return PXS_OK, PXS_ERR_TRUNCATED, PXS_ERR_CORRUPT, PXS_ERR_VERSION.
 *         *out is written only on success. Thread safe.
 */
pxs_status_t pxs_proxy_decode(const void *buf, size_t len, pxs_proxy_t *out);

/**
 * Text form: "pxs1:" followed by the wire form in unpadded base64url, no
 * whitespace, safe in command lines, file names, URLs and logs.
 * @param cap PXS_PROXY_TEXT_MAX is always enough.
 * @return PXS_OK or PXS_ERR_BUFFER_TOO_SMALL. Thread safe.
 */
pxs_status_t pxs_proxy_to_text(const pxs_proxy_t *proxy, char *buf, size_t cap);

/**
 * Parse a text form (NUL-terminated, untrusted). Leading and trailing ASCII
 * whitespace is ignored.
 * @return as pxs_proxy_decode, PXS_ERR_CORRUPT for a bad prefix or alphabet.
 */
pxs_status_t pxs_proxy_from_text(const char *text, pxs_proxy_t *out);

#ifdef __cplusplus
}
#endif
#endif
