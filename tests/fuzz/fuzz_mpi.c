/* libFuzzer target: libpxs_mpi's decoders of bytes other ranks wrote
 * (mpi/mpi_wire.c, built in: no MPI here). Every input goes to all three:
 * as the "mpi" connector's blob, as a directory bucket (the input at its
 * start, zeros after), as a pxs_mpi_send message. The bucket is scanned as
 * read, then again with every used entry's check patched in, so that the
 * fuzzer gets past the CRC to the name match and the proxy decoder; names:
 * a fixed one, and one from the input (the bytes after the bucket, else
 * entry 0's name field). */
#include <stdlib.h>
#include <string.h>

#include "../../mpi/mpi_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_NAME "fuzz/field/0"

static void blob(const uint8_t *data, size_t size)
{
    pxs_mpi_blob_t b;
    pxs_status_t st = pxs__mpi_blob_decode(data, size, &b);
    if (st != PXS_OK && st != PXS_ERR_CORRUPT) abort();
    if (!b.parsed) {
        if (st == PXS_OK) abort();
        return;
    }
    /* Parsed: the length is the flags' own, a lease part is in range, and
     * only the node part's address may still be refused. */
    size_t lease = b.lease_us ? PXS_MPI_BLOB_LEASE_LEN : 0;
    if (size != PXS_MPI_BLOB_LEN + lease + (b.sb ? PXS_SHM_BLOB_LEN : 0) ||
        (b.sb && b.sb != data + PXS_MPI_BLOB_LEN + lease) || (b.attach && !b.sb) ||
        (st != PXS_OK && !b.attach) || b.lease_us > PXS_MPI_LEASE_US_MAX || (!lease && b.ltab))
        abort();
    uint64_t at;
    if (st == PXS_OK && b.attach && (!pxs__conn_node_attach(b.sb, &at) || at != b.data)) abort();
}

static void scan(const uint8_t *bk, const char *name)
{
    pxs_proxy_t p;
    bool found, torn;
    pxs_status_t st = pxs__mpi_bucket_scan(bk, name, &p, &found, &torn);
    if (found ? st > 0 : st != PXS_ERR_NOT_FOUND) abort();
    if (found && st == PXS_OK) {
        /* What was found re-encodes within the entry. */
        uint8_t wire[PXS_PROXY_MAX];
        size_t len;
        if (pxs_proxy_encode(&p, wire, sizeof wire, &len) != PXS_OK ||
            len > PXS_MPI_ENTRY_PROXY_MAX)
            abort();
    }
}

static void bucket(const uint8_t *data, size_t size)
{
    uint8_t *bk = calloc(1, PXS_MPI_BUCKET); /* exact size: ASan sees a read past it */
    if (!bk) abort();
    memcpy(bk, data, size < PXS_MPI_BUCKET ? size : PXS_MPI_BUCKET);
    char name[PXS_MPI_NAME_CAP];
    const uint8_t *src = size > PXS_MPI_BUCKET ? data + PXS_MPI_BUCKET
                                               : bk + PXS_MPI_BUCKET_HDR + 24;
    size_t avail = size > PXS_MPI_BUCKET ? size - PXS_MPI_BUCKET : PXS_MPI_NAME_CAP;
    size_t n = strnlen((const char *)src, avail < PXS_NAME_MAX ? avail : PXS_NAME_MAX);
    memcpy(name, src, n);
    name[n] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (int i = 0; i < PXS_MPI_ENTRIES; i++) {
                uint8_t *e = bk + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY;
                if (pxs_rd64(e) != 0) pxs_wr64(e + 8, pxs__mpi_entry_check(e));
            }
        scan(bk, FIXED_NAME);
        scan(bk, name);
    }
    free(bk);
}

static void message(const uint8_t *data, size_t size)
{
    int kind;
    uint64_t len;
    pxs_status_t st = pxs__mpi_msg_header(data, size, &kind, &len);
    if (st != PXS_OK) {
        if (st != PXS_ERR_CORRUPT) abort();
        return;
    }
    size_t body = size - PXS_MPI_MSG_HDR;
    st = pxs__mpi_msg_body(kind, len, body);
    if (st == PXS_OK && kind == PXS_MPI_KIND_VALUE && len != body) abort();
    if (st == PXS_OK && kind == PXS_MPI_KIND_PROXY) {
        pxs_proxy_t p;
        if (body <= PXS_MPI_MSG_ID) abort();
        (void)pxs_proxy_decode(data + PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID, body - PXS_MPI_MSG_ID, &p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    blob(data, size);
    bucket(data, size);
    message(data, size);
    return 0;
}
