/* libpxs_mpi's byte formats (mpi_wire.h): decoders of what other ranks
 * wrote, without MPI. */
#include <string.h>

#include "mpi_wire.h"

pxs_status_t pxs__mpi_blob_decode(const uint8_t *blob, size_t len, pxs_mpi_blob_t *b)
{
    b->parsed = false;
    if (len < PXS_MPI_BLOB_LEN) return PXS_ERR_CORRUPT;
    uint64_t flags = pxs_rd64(blob + 32);
    size_t lease = flags & PXS_MPI_BLOB_LEASE ? PXS_MPI_BLOB_LEASE_LEN : 0;
    if ((flags & ~(uint64_t)(PXS_MPI_BLOB_NODE | PXS_MPI_BLOB_LEASE)) ||
        len != (size_t)PXS_MPI_BLOB_LEN + lease + (flags & PXS_MPI_BLOB_NODE ? PXS_SHM_BLOB_LEN : 0))
        return PXS_ERR_CORRUPT;
    b->ltab = lease ? pxs_rd64(blob + PXS_MPI_BLOB_LEN) : 0;
    b->lease_us = lease ? pxs_rd32(blob + PXS_MPI_BLOB_LEN + 8) : 0;
    if (lease && (b->lease_us == 0 || b->lease_us > PXS_MPI_LEASE_US_MAX ||
                  pxs_rd32(blob + PXS_MPI_BLOB_LEN + 12) != 0))
        return PXS_ERR_CORRUPT;
    b->parsed = true;
    b->group = pxs_rd64(blob);
    b->rank = pxs_rd32(blob + 8);
    b->slots = pxs_rd32(blob + 12);
    b->data = pxs_rd64(blob + 16);
    b->tab = pxs_rd64(blob + 24);
    b->sb = flags & PXS_MPI_BLOB_NODE ? blob + PXS_MPI_BLOB_LEN + lease : NULL;
    /* Ordinary memory has one address, whichever way it is read. */
    uint64_t at;
    b->attach = b->sb && pxs__conn_node_attach(b->sb, &at);
    return b->attach && at != b->data ? PXS_ERR_CORRUPT : PXS_OK;
}

uint32_t pxs__mpi_entry_check(const uint8_t *e)
{
    uint32_t len = pxs_rd32(e + 20);
    if (len > PXS_MPI_ENTRY_PROXY_MAX) return 0;
    return pxs__crc32c(pxs__crc32c(0, e, 8), e + 16, PXS_MPI_ENTRY_HDR - 16 + len) | 1u;
}

bool pxs__mpi_entry_valid(const uint8_t *e)
{
    /* Not 0: a check word of 0 would pass an entry whose length is out of
     * range, and its proxy would be read past the entry (and the bucket). */
    uint32_t check = pxs__mpi_entry_check(e);
    return pxs_rd64(e) == 1 && check != 0 && pxs_rd64(e + 8) == check;
}

bool pxs__mpi_entry_is(const uint8_t *e, const char *name)
{
    return strncmp((const char *)e + 24, name, PXS_MPI_NAME_CAP) == 0;
}

pxs_status_t pxs__mpi_bucket_scan(const uint8_t *bk, const char *name, pxs_proxy_t *proxy_p,
                                  bool *found, bool *torn)
{
    *found = *torn = false;
    for (int i = 0; i < PXS_MPI_ENTRIES; i++) {
        const uint8_t *e = bk + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY;
        if (pxs_rd64(e) == 0) continue;
        if (!pxs__mpi_entry_valid(e)) {
            /* Being written, or read while written: only a retry can
             * tell whether it is ours. */
            *torn = true;
            continue;
        }
        if (!pxs__mpi_entry_is(e, name)) continue;
        *found = true;
        return pxs_proxy_decode(e + PXS_MPI_ENTRY_HDR, pxs_rd32(e + 20), proxy_p);
    }
    return PXS_ERR_NOT_FOUND;
}

pxs_status_t pxs__mpi_msg_header(const uint8_t *in, size_t n, int *kind, uint64_t *len)
{
    if (n < PXS_MPI_MSG_HDR || pxs_rd32(in) != PXS_MPI_MSG_MAGIC) return PXS_ERR_CORRUPT;
    *kind = (int)pxs_rd32(in + 4);
    *len = pxs_rd64(in + 8);
    return PXS_OK;
}

pxs_status_t pxs__mpi_msg_body(int kind, uint64_t len, size_t body)
{
    if (kind == PXS_MPI_KIND_VALUE) return body == len ? PXS_OK : PXS_ERR_CORRUPT;
    return kind == PXS_MPI_KIND_PROXY && body > PXS_MPI_MSG_ID ? PXS_OK : PXS_ERR_CORRUPT;
}
