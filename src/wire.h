/* The proxy wire format, version 1 (all integers little-endian):
 *
 *   off size field
 *     0  4   magic "PXS1"
 *     4  1   version (1)
 *     5  1   connector id (pxs_connector_id_t)
 *     6  1   memory type
 *     7  1   flags (PXS_WF_*)
 *     8  2   header length (72 in v1; later revisions append fields)
 *    10  2   blob length (connector's remote-access bytes, <= 512)
 *    12  4   total length, checksum included
 *    16  8   domain id        24  8  owner id       32  8  object key
 *    40  8   store id         48  8  object size    56  8  generation
 *    64  4   slot in the owner's generation table   68  4  reserved (0)
 *    72  .   blob, then the object bytes if PXS_WF_INLINE
 *   end  4   CRC-32C of every byte before it
 */
#ifndef PXS_WIRE_H
#define PXS_WIRE_H

#include <pxs/proxy.h>
#include <stdint.h>
#include <string.h>

#define PXS_WIRE_MAGIC     0x31535850u /* "PXS1" read as little-endian */
#define PXS_WIRE_VERSION   1
#define PXS_WIRE_HDR_V1    72
#define PXS_WIRE_BLOB_MAX  512 /* a UCX worker address and two rkeys fit */
#define PXS_WIRE_CRC_LEN   4
#define PXS_WF_INLINE      0x01u
#define PXS_WF_KNOWN       (PXS_WF_INLINE)

_Static_assert(PXS_WIRE_HDR_V1 + PXS_WIRE_BLOB_MAX + PXS_INLINE_LIMIT + PXS_WIRE_CRC_LEN
               <= PXS_PROXY_MAX, "PXS_PROXY_MAX too small");

/* A validated proxy, fields in host order, pointers into the proxy bytes. */
typedef struct {
    uint8_t version, connector, memtype, flags;
    uint16_t hdr_len, blob_len;
    uint32_t total_len;
    uint64_t domain, owner, key, store, size, gen;
    uint32_t slot;
    const uint8_t *blob;
    const uint8_t *data; /* inline bytes, or NULL */
} pxs_pdesc_t;

/* Little-endian field access through memcpy: one load or store each
 * (byte loops compile to byte loops, and parse sits on every resolve). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PXS_LE16(v) (v)
#define PXS_LE32(v) (v)
#define PXS_LE64(v) (v)
#else
#define PXS_LE16(v) __builtin_bswap16(v)
#define PXS_LE32(v) __builtin_bswap32(v)
#define PXS_LE64(v) __builtin_bswap64(v)
#endif
static inline void pxs_wr16(uint8_t *p, uint16_t v) { v = PXS_LE16(v); memcpy(p, &v, 2); }
static inline void pxs_wr32(uint8_t *p, uint32_t v) { v = PXS_LE32(v); memcpy(p, &v, 4); }
static inline void pxs_wr64(uint8_t *p, uint64_t v) { v = PXS_LE64(v); memcpy(p, &v, 8); }
static inline uint16_t pxs_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return PXS_LE16(v); }
static inline uint32_t pxs_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return PXS_LE32(v); }
static inline uint64_t pxs_rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return PXS_LE64(v); }

/* CRC-32C of len bytes, continuing from crc (0 to start). Thread-safe. */
uint32_t pxs__crc32c(uint32_t crc, const void *buf, size_t len);
/* For tests: how many implementations this CPU runs (0: table, 1: one
 * crc32 stream, 2: three streams joined by carry-less multiplies), and the
 * CRC by the one given. */
int pxs__crc32c_impls(void);
uint32_t pxs__crc32c_impl(int impl, uint32_t crc, const void *buf, size_t len);

/* Validate untrusted bytes (len of them) and describe them. */
pxs_status_t pxs__wire_parse(const uint8_t *buf, size_t len, pxs_pdesc_t *d);

/* pxs__wire_parse, remembered per thread: bytes equal to a proxy of at
 * most 512 bytes that validated before are not checked again
 * (wire_memo.c). Same arguments, results and thread safety. */
pxs_status_t pxs__wire_parse_memo(const uint8_t *buf, size_t len, pxs_pdesc_t *d);

/* A route: how a connector last read the object behind one remembered
 * proxy (wire_memo.c keeps one beside each entry), so that reading it again
 * skips the connector's parse and lookups. The core fills uid and uses a
 * route only through the connector instance with that uid; read must check
 * everything that can change since (the generation, the mapping, the
 * owner's life) and answer PXS_ERR_UNSUPPORTED when the route no longer
 * holds, so that the full path decides. Per thread, like the memo. */
typedef struct pxs_route {
    uint64_t uid; /* pxs_conn_t.uid of the instance it was found through; 0: none */
    pxs_status_t (*read)(const struct pxs_route *rt, const pxs_pdesc_t *p, void *dst);
    void *a, *b;  /* the reader's state */
    uint64_t x, y;
} pxs_route_t;

/* pxs__wire_parse_memo that also gives (*rt_p) the route slot of the
 * entry: emptied (uid 0) when the entry is new; NULL when the bytes are not
 * remembered (memo off, or longer than 512). The slot stays this proxy's
 * until this thread's next call of either. */
pxs_status_t pxs__wire_parse_route(const uint8_t *buf, size_t len, pxs_pdesc_t *d,
                                   pxs_route_t **rt_p);

/* Set by the core around a synchronous get of a proxy that has a route
 * slot (else NULL): a connector whose read can be replayed through a route
 * fills read, a, b, x and y. */
extern __thread pxs_route_t *pxs__route_fill __attribute__((tls_model("initial-exec")));

/* Build a proxy: header fields from d (blob/data pointers are sources). */
pxs_status_t pxs__wire_build(const pxs_pdesc_t *d, pxs_proxy_t *out);

#endif
