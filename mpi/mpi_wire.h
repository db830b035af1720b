/* libpxs_mpi's byte formats: the "mpi" connector's proxy blob, the
 * directory's buckets, pxs_mpi_send's message header (integers
 * little-endian). The decoders here read bytes another rank wrote, and make
 * no MPI call: tests/fuzz/fuzz_mpi.c builds mpi_wire.c without MPI, so
 * neither file may include mpi.h (nor mpi_int.h). */
#ifndef PXS_MPI_WIRE_H
#define PXS_MPI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pxs/pxs.h>
#include "../src/connector.h"

/* --- the "mpi" connector's blob ---------------------------------------------
 * group u64, rank u32, slots u32, data u64, table u64, flags u64; then,
 * with PXS_MPI_BLOB_LEASE, the lease words' address u64, lease_us u32 (1 to
 * PXS_MPI_LEASE_US_MAX) and a zero u32 (mpi_lease.c); then, with
 * PXS_MPI_BLOB_NODE, the shm blob of the object (node_get). */
#define PXS_MPI_BLOB_LEN      40
#define PXS_MPI_BLOB_NODE     1u
#define PXS_MPI_BLOB_LEASE    2u
#define PXS_MPI_BLOB_LEASE_LEN 16
#define PXS_MPI_LEASE_US_MAX  10000000u /* 10 s */

typedef struct {
    bool parsed;        /* length and flags were right: the fields below are read */
    uint64_t group;     /* the owner's group (pxs_group_info) */
    uint32_t rank;      /* the owner's rank */
    uint32_t slots;     /* its generation table's */
    uint64_t data, tab; /* window addresses of the bytes and of the table */
    uint64_t ltab;      /* PXS_MPI_BLOB_LEASE: window address of the lease words */
    uint32_t lease_us;  /* ... and the lease the owner keeps; else 0 */
    const uint8_t *sb;  /* PXS_MPI_BLOB_NODE: the shm blob, else NULL */
    bool attach;        /* sb names ordinary memory (read by attach) */
} pxs_mpi_blob_t;

/* Decode the len bytes of an "mpi" connector's blob into *b. PXS_OK;
 * PXS_ERR_CORRUPT: wrong length, unknown flags or a lease part out of
 * range (b->parsed false), or a
 * node part naming ordinary memory at another address than data (b->parsed
 * true, every field read: a caller ranks its own checks of them first).
 * Nothing is checked against a communicator here. */
pxs_status_t pxs__mpi_blob_decode(const uint8_t *blob, size_t len, pxs_mpi_blob_t *b);

/* --- the directory ------------------------------------------------------------
 * Share: a header of PXS_MPI_SHARE_HDR bytes (closed flag u64), then
 * buckets: a header (a reserved word, the overflow flag u64) and
 * PXS_MPI_ENTRIES entries of PXS_MPI_ENTRY bytes. Entry: state u64 (0 free,
 * 1 used), check u64 (pxs__mpi_entry_check), publisher rank u32, proxy
 * length u32, name[PXS_MPI_NAME_CAP], proxy bytes. */
#define PXS_MPI_SHARE_HDR  64
#define PXS_MPI_BUCKET_HDR 64
#define PXS_MPI_ENTRIES    4
#define PXS_MPI_ENTRY      1024
#define PXS_MPI_NAME_CAP   (PXS_NAME_MAX + 1)
#define PXS_MPI_ENTRY_HDR  (8 + 8 + 4 + 4 + PXS_MPI_NAME_CAP)
#define PXS_MPI_BUCKET     (PXS_MPI_BUCKET_HDR + PXS_MPI_ENTRIES * PXS_MPI_ENTRY)
/* The longest proxy an entry holds (PXS_MPI_DIR_PROXY_MAX of pxs/mpi.h). */
#define PXS_MPI_ENTRY_PROXY_MAX (PXS_MPI_ENTRY - PXS_MPI_ENTRY_HDR)

/* The check of entry e: CRC-32C of its state and of everything from the
 * rank to the end of its proxy, odd; 0 when its proxy length is out of
 * range (never a valid check). */
uint32_t pxs__mpi_entry_check(const uint8_t *e);
/* Is e used and whole: its check matches, its proxy length in range? */
bool pxs__mpi_entry_valid(const uint8_t *e);
/* Does e hold name? (Its state and check are not looked at.) */
bool pxs__mpi_entry_is(const uint8_t *e, const char *name);

/* Look for name among the entries of the bucket bk (PXS_MPI_BUCKET bytes,
 * read in one piece). *found: a valid entry holds it, and the result is
 * pxs_proxy_decode's of its proxy into *proxy_p; else PXS_ERR_NOT_FOUND.
 * *torn: an entry was used but not valid (being written, or read while
 * written: only a retry can tell whether it holds name). */
pxs_status_t pxs__mpi_bucket_scan(const uint8_t *bk, const char *name, pxs_proxy_t *proxy_p,
                                  bool *found, bool *torn);

/* --- pxs_mpi_send's messages ---------------------------------------------------
 * Header: magic u32, kind u32, length u64 (of the value, either way); then
 * the value's bytes (PXS_MPI_KIND_VALUE), or the send's id u32 and its proxy
 * (PXS_MPI_KIND_PROXY). The receiver acknowledges a proxy with {status i32,
 * id u32}, so that the sender can tell its acknowledgement from a late one
 * for an earlier send that gave up waiting. */
#define PXS_MPI_MSG_MAGIC  0x4d535850u /* "PXSM" */
#define PXS_MPI_MSG_HDR    16
#define PXS_MPI_MSG_ID     4
#define PXS_MPI_KIND_VALUE 0
#define PXS_MPI_KIND_PROXY 1

/* The header of a message of n bytes whose first ones (PXS_MPI_MSG_HDR of
 * them where n is larger) are at in: its kind and length, not checked.
 * PXS_ERR_CORRUPT: shorter than a header, or another magic. */
pxs_status_t pxs__mpi_msg_header(const uint8_t *in, size_t n, int *kind, uint64_t *len);
/* Does a body of body bytes suit a header of kind and len? PXS_OK (a
 * proxy's body past its id is left to pxs_proxy_decode); PXS_ERR_CORRUPT:
 * an unknown kind, a value of another length, a proxy body with no room
 * past the id. */
pxs_status_t pxs__mpi_msg_body(int kind, uint64_t len, size_t body);

#endif
