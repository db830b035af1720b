/* The per-thread memo of proxy validation (wire_memo.c), seen from the
 * resolve path: a hit is looked up inline, since on a remembered proxy
 * with a route it is a third of the whole resolve. */
#ifndef PXS_WIRE_MEMO_H
#define PXS_WIRE_MEMO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

#define PXS_MEMO_WAYS  16  /* direct mapped, by the proxy's own CRC */
#define PXS_MEMO_BYTES 512 /* longer proxies (inline data) are validated in full */

typedef struct {
    uint32_t total; /* 0: empty */
    /* The parse, its blob and data pointing into bytes below (equal to
     * the caller's on a hit), so that it stands on its own. */
    pxs_pdesc_t d;
    pxs_route_t route; /* wire.h: filled by the core and a connector, not here */
    uint8_t bytes[PXS_MEMO_BYTES];
} pxs_memo_entry_t;

typedef struct {
    pxs_memo_entry_t e[PXS_MEMO_WAYS];
} pxs_memo_t;

/* This thread's memo: NULL until its first parse, PXS_MEMO_OFF when it has
 * none (PXS_PROXY_MEMO=0, no memory, or after the thread's exit). */
#define PXS_MEMO_OFF ((pxs_memo_t *)1)
extern __thread pxs_memo_t *pxs__memo_mine __attribute__((tls_model("initial-exec")));

/* Equality of n bytes, 16 <= n: 16-byte blocks in two streams, the last
 * one overlapping. Not memcmp: only equality is asked, and a call to it
 * made the whole hit a call with a spilling prologue (the compare and the
 * call were 50 of the 300 instructions of an 8 B mapped resolve). Past 128
 * bytes (ucx proxies: 285) 32-byte blocks where the CPU has them, out of
 * line (wire_memo.c): the loads bound it, and there are half as many. */
extern bool pxs__memo_wide;
/* The 32-byte compare, n > 32 (the last block overlaps); only where
 * pxs__memo_wide says the CPU has AVX2. */
bool pxs__memo_eq_wide(const uint8_t *a, const uint8_t *b, size_t n);

static inline bool pxs__memo_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    typedef uint64_t v2_t __attribute__((vector_size(16)));
    if (n > 128 && pxs__memo_wide) return pxs__memo_eq_wide(a, b, n);
    v2_t acc = {0, 0}, acc2 = {0, 0}, x, y, x2, y2;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(&x, a + i, 16);
        memcpy(&y, b + i, 16);
        memcpy(&x2, a + i + 16, 16);
        memcpy(&y2, b + i + 16, 16);
        acc |= x ^ y;
        acc2 |= x2 ^ y2;
    }
    if (i + 16 <= n) {
        memcpy(&x, a + i, 16);
        memcpy(&y, b + i, 16);
        acc |= x ^ y;
    }
    memcpy(&x, a + n - 16, 16);
    memcpy(&y, b + n - 16, 16);
    acc |= (x ^ y) | acc2;
    return !(acc[0] | acc[1]);
}

/* The entry that remembers these bytes (len of them, len >= 16), or NULL:
 * not remembered, no memo yet, or memo off (pxs__wire_parse_route then
 * decides). The entry is valid until this thread's next parse. */
static inline pxs_memo_entry_t *pxs__memo_hit(const uint8_t *b, size_t len)
{
    pxs_memo_t *m = pxs__memo_mine;
    uint32_t total = pxs_rd32(b + 12);
    if (m == NULL || m == PXS_MEMO_OFF || total < PXS_WIRE_HDR_V1 + PXS_WIRE_CRC_LEN ||
        total > PXS_MEMO_BYTES || total > len)
        return NULL;
    /* The stored CRC picks the entry: it already mixes every byte. */
    pxs_memo_entry_t *e = &m->e[pxs_rd32(b + total - PXS_WIRE_CRC_LEN) % PXS_MEMO_WAYS];
    return e->total == total && pxs__memo_eq(e->bytes, b, total) ? e : NULL;
}

/* d, a remembered parse, with its pointers moved into b (equal bytes that
 * outlive the memo entry). */
static inline void pxs__memo_repoint(pxs_pdesc_t *d, const uint8_t *b)
{
    d->blob = b + d->hdr_len;
    d->data = (d->flags & PXS_WF_INLINE) ? b + d->hdr_len + d->blob_len : NULL;
}

#endif
