/* Proxy codec: parse validates untrusted bytes field by field; build is the
 * only writer of the layout described in wire.h. */
#include "wire.h"

#include <pxs/types.h>

#define MIN_TOTAL (PXS_WIRE_HDR_V1 + PXS_WIRE_CRC_LEN)

pxs_status_t pxs__wire_parse(const uint8_t *b, size_t len, pxs_pdesc_t *d)
{
    if (len < 16) return PXS_ERR_TRUNCATED;
    if (pxs_rd32(b) != PXS_WIRE_MAGIC) return PXS_ERR_CORRUPT;
    if (b[4] != PXS_WIRE_VERSION) return PXS_ERR_VERSION;

    uint32_t total = pxs_rd32(b + 12);
    uint16_t hdr_len = pxs_rd16(b + 8);
    uint16_t blob_len = pxs_rd16(b + 10);
    if (total < MIN_TOTAL || total > PXS_PROXY_MAX) return PXS_ERR_CORRUPT;
    if (len < total) return PXS_ERR_TRUNCATED;
    /* The checksum first: past it, every field is what the writer wrote. */
    if (pxs__crc32c(0, b, total - PXS_WIRE_CRC_LEN) != pxs_rd32(b + total - PXS_WIRE_CRC_LEN))
        return PXS_ERR_CORRUPT;

    /* Later revisions may append header fields; a v1 reader skips them. */
    if (hdr_len < PXS_WIRE_HDR_V1 || blob_len > PXS_WIRE_BLOB_MAX) return PXS_ERR_CORRUPT;
    d->version = b[4];
    d->connector = b[5];
    d->memtype = b[6];
    d->flags = b[7];
    d->hdr_len = hdr_len;
    d->blob_len = blob_len;
    d->total_len = total;
    d->domain = pxs_rd64(b + 16);
    d->owner = pxs_rd64(b + 24);
    d->key = pxs_rd64(b + 32);
    d->store = pxs_rd64(b + 40);
    d->size = pxs_rd64(b + 48);
    d->gen = pxs_rd64(b + 56);
    d->slot = pxs_rd32(b + 64);

    if (d->memtype >= PXS_MEMTYPE_LAST) return PXS_ERR_CORRUPT;
    if (d->flags & ~PXS_WF_KNOWN) return PXS_ERR_CORRUPT;
    if (d->connector > PXS_CONNECTOR_MPI) return PXS_ERR_CORRUPT;
    uint64_t need = (uint64_t)hdr_len + blob_len + PXS_WIRE_CRC_LEN;
    if (d->flags & PXS_WF_INLINE) {
        if (d->connector != PXS_CONNECTOR_INLINE || d->size > PXS_INLINE_LIMIT)
            return PXS_ERR_CORRUPT;
        need += d->size;
    } else if (d->connector == PXS_CONNECTOR_INLINE || d->gen == 0) {
        return PXS_ERR_CORRUPT;
    }
    if (need != total) return PXS_ERR_CORRUPT;
    d->blob = b + hdr_len;
    d->data = (d->flags & PXS_WF_INLINE) ? b + hdr_len + blob_len : NULL;
    return PXS_OK;
}

pxs_status_t pxs__wire_build(const pxs_pdesc_t *d, pxs_proxy_t *out)
{
    size_t data_len = (d->flags & PXS_WF_INLINE) ? d->size : 0;
    if (d->blob_len > PXS_WIRE_BLOB_MAX || data_len > PXS_INLINE_LIMIT)
        return PXS_ERR_INVALID_PARAM;
    uint8_t *b = out->bytes;
    uint32_t total = (uint32_t)(PXS_WIRE_HDR_V1 + d->blob_len + data_len + PXS_WIRE_CRC_LEN);
    pxs_wr32(b, PXS_WIRE_MAGIC);
    b[4] = PXS_WIRE_VERSION;
    b[5] = d->connector;
    b[6] = d->memtype;
    b[7] = d->flags;
    pxs_wr16(b + 8, PXS_WIRE_HDR_V1);
    pxs_wr16(b + 10, d->blob_len);
    pxs_wr32(b + 12, total);
    pxs_wr64(b + 16, d->domain);
    pxs_wr64(b + 24, d->owner);
    pxs_wr64(b + 32, d->key);
    pxs_wr64(b + 40, d->store);
    pxs_wr64(b + 48, d->size);
    pxs_wr64(b + 56, d->gen);
    pxs_wr32(b + 64, d->slot);
    pxs_wr32(b + 68, 0);
    if (d->blob_len && d->blob != b + PXS_WIRE_HDR_V1)
        memcpy(b + PXS_WIRE_HDR_V1, d->blob, d->blob_len);
    if (data_len) memcpy(b + PXS_WIRE_HDR_V1 + d->blob_len, d->data, data_len);
    size_t body = total - PXS_WIRE_CRC_LEN;
    pxs_wr32(b + body, pxs__crc32c(0, b, body));
    return PXS_OK;
}
