/* libFuzzer target: the binary proxy decoder and everything a decoded proxy
 * reaches in the consumer (connector blob parsing, resolve, exists, view).
 * Inputs whose header parses get this context's domain and a fresh checksum
 * patched in, so the fuzzer gets past the CRC and the domain check and
 * exercises the connectors' own validation.
 *
 * Resolves go only through connectors that stay on this machine (inline,
 * local, shm): a fuzzed UCX worker address could name any host. The UCX
 * blob decoder is fuzzed directly instead; it opens no connection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pxs/pxs.h>
#include "wire.h"
#ifdef PXS_HAVE_UCX
#include "../../transports/ucx/ucx.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pxs_context_t *ctx;
static uint64_t domain_id; /* ours, read from a proxy we make at start */

static void fuzz_init(void)
{
    pxs_store_t *s;
    pxs_proxy_t mine;
    pxs_proxy_info_t info;
    if (pxs_init(NULL, &ctx) || pxs_store_open(ctx, NULL, &s) || pxs_put(s, "d", 1, NULL, &mine) ||
        pxs_proxy_info(&mine, &info))
        abort();
    domain_id = info.domain_id;
}

static void reach_connectors(const uint8_t *data, size_t size)
{
    if (size < PXS_WIRE_HDR_V1 + PXS_WIRE_CRC_LEN || size > PXS_PROXY_MAX) return;
    pxs_proxy_t p;
    memcpy(p.bytes, data, size);
    pxs_wr32(p.bytes, PXS_WIRE_MAGIC);
    p.bytes[4] = PXS_WIRE_VERSION;
    pxs_wr32(p.bytes + 12, (uint32_t)size);
    pxs_wr64(p.bytes + 16, domain_id);
#ifdef PXS_HAVE_UCX
    {
        pxs_pdesc_t d;
        ucx_blob_t ub;
        p.bytes[5] = PXS_CONNECTOR_UCX;
        pxs_wr32(p.bytes + size - 4, pxs__crc32c(0, p.bytes, size - 4));
        if (pxs__wire_parse(p.bytes, size, &d) == PXS_OK) (void)pxs__ucx_blob_parse(&d, &ub);
    }
#endif
    p.bytes[5] = data[5] % (PXS_CONNECTOR_SHM + 1); /* inline, local or shm */
    pxs_wr32(p.bytes + size - 4, pxs__crc32c(0, p.bytes, size - 4));
    uint8_t out[8192];
    size_t n;
    (void)pxs_resolve(ctx, &p, out, sizeof out, &n);
    (void)pxs_exists(ctx, &p);
    pxs_view_t *v;
    if (pxs_view_acquire(ctx, &p, &v) == PXS_OK) {
        const uint8_t *b = pxs_view_data(v);
        size_t len = pxs_view_size(v);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < len; i += 4096) sink ^= b[i];
        (void)sink;
        pxs_view_release(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx) fuzz_init();
    pxs_proxy_t p;
    pxs_status_t st = pxs_proxy_decode(data, size, &p);
    if (st == PXS_OK) {
        /* A decoded proxy re-encodes to the same bytes and has a text form. */
        uint8_t wire[PXS_PROXY_MAX];
        size_t len;
        char text[PXS_PROXY_TEXT_MAX];
        pxs_proxy_t back;
        if (pxs_proxy_encode(&p, wire, sizeof wire, &len) != PXS_OK || len > size ||
            memcmp(wire, data, len) != 0)
            abort();
        if (pxs_proxy_to_text(&p, text, sizeof text) != PXS_OK ||
            pxs_proxy_from_text(text, &back) != PXS_OK || memcmp(back.bytes, wire, len) != 0)
            abort();
    } else if (st > 0 || st == PXS_OK) {
        abort();
    }
    /* The memo of validation (wire_memo.c) answers as the parse, first
     * time and remembered. */
    for (int k = 0; k < 2; k++) {
        pxs_pdesc_t full, memo;
        pxs_status_t a = pxs__wire_parse(data, size, &full);
        pxs_status_t b = pxs__wire_parse_memo(data, size, &memo);
        if (a != b || (a == PXS_OK && (memo.total_len != full.total_len || memo.blob != full.blob ||
                                       memo.data != full.data || memo.gen != full.gen)))
            abort();
    }
    reach_connectors(data, size);
    return 0;
}
