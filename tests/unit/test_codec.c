/* Proxy codec: round trips and every kind of bad input. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <pxs/pxs.h>
#include "wire.h"
#include "wire_memo.h"

static pxs_context_t *ctx;
static pxs_store_t *store;

static void setup(void)
{
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = "shm"};
    cr_assert_eq(pxs_store_open(ctx, &sp, &store), PXS_OK);
}
static void teardown(void) { pxs_finalize(ctx); }

TestSuite(codec, .init = setup, .fini = teardown);

static pxs_proxy_t make_proxy(const void *buf, size_t len, uint32_t flags)
{
    pxs_proxy_t p;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = flags};
    cr_assert_eq(pxs_put(store, buf, len, &pp, &p), PXS_OK);
    return p;
}

Test(codec, binary_round_trip)
{
    static char data[100000];
    memset(data, 7, sizeof data);
    pxs_proxy_t p = make_proxy(data, sizeof data, 0), q;
    uint8_t wire[PXS_PROXY_MAX];
    size_t len;
    cr_assert_eq(pxs_proxy_encode(&p, wire, sizeof wire, &len), PXS_OK);
    cr_assert_eq(len, pxs_proxy_len(&p));
    cr_assert_lt(len, 200, "a remote proxy should be small, got %zu", len);
    cr_assert_eq(pxs_proxy_decode(wire, len, &q), PXS_OK);
    cr_assert_eq(memcmp(p.bytes, q.bytes, len), 0);
    pxs_proxy_info_t info;
    cr_assert_eq(pxs_proxy_info(&q, &info), PXS_OK);
    cr_assert_eq(info.size, sizeof data);
    cr_assert_eq(info.connector, PXS_CONNECTOR_SHM);
    cr_assert_eq(info.memtype, PXS_MEMTYPE_HOST);
    cr_assert_not(info.is_inline);
}

Test(codec, text_round_trip)
{
    char small[] = "hello proxy";
    pxs_proxy_t p = make_proxy(small, sizeof small, 0), q;
    char text[PXS_PROXY_TEXT_MAX];
    cr_assert_eq(pxs_proxy_to_text(&p, text, sizeof text), PXS_OK);
    cr_assert_eq(strncmp(text, "pxs1:", 5), 0);
    for (const char *c = text; *c; c++) cr_assert(*c > ' ' && *c < 127);
    char padded[PXS_PROXY_TEXT_MAX + 4];
    snprintf(padded, sizeof padded, "  %s\n", text);
    cr_assert_eq(pxs_proxy_from_text(padded, &q), PXS_OK);
    char out[64];
    size_t n;
    cr_assert_eq(pxs_resolve(ctx, &q, out, sizeof out, &n), PXS_OK);
    cr_assert_eq(n, sizeof small);
    cr_assert_str_eq(out, small);
    cr_assert_eq(pxs_proxy_to_text(&p, text, 10), PXS_ERR_BUFFER_TOO_SMALL);
}

Test(codec, text_rejects_bad_forms)
{
    pxs_proxy_t q;
    cr_assert_eq(pxs_proxy_from_text("", &q), PXS_ERR_CORRUPT);
    cr_assert_eq(pxs_proxy_from_text("pxs2:AAAA", &q), PXS_ERR_CORRUPT);
    cr_assert_eq(pxs_proxy_from_text("pxs1:AA*A", &q), PXS_ERR_CORRUPT);
    cr_assert_eq(pxs_proxy_from_text("pxs1:A", &q), PXS_ERR_CORRUPT);
    cr_assert_eq(pxs_proxy_from_text("pxs1:AAAA", &q), PXS_ERR_TRUNCATED);
    char data[4096];
    memset(data, 1, sizeof data);
    pxs_proxy_t p = make_proxy(data, sizeof data, 0);
    char text[PXS_PROXY_TEXT_MAX];
    cr_assert_eq(pxs_proxy_to_text(&p, text, sizeof text), PXS_OK);
    text[strlen(text) - 3] = '\0'; /* truncated */
    pxs_status_t st = pxs_proxy_from_text(text, &q);
    cr_assert(st == PXS_ERR_TRUNCATED || st == PXS_ERR_CORRUPT, "%s", pxs_strerror(st));
}

Test(codec, every_truncation_is_refused)
{
    char data[3000];
    memset(data, 3, sizeof data);
    for (int inl = 0; inl < 2; inl++) {
        pxs_proxy_t p = make_proxy(data, inl ? 500 : sizeof data, 0), q;
        size_t len = pxs_proxy_len(&p);
        for (size_t cut = 0; cut < len; cut++) {
            pxs_status_t st = pxs_proxy_decode(p.bytes, cut, &q);
            cr_assert(st == PXS_ERR_TRUNCATED, "cut %zu: %s", cut, pxs_strerror(st));
        }
    }
}

Test(codec, every_bit_flip_is_refused)
{
    char data[20000];
    memset(data, 5, sizeof data);
    for (int inl = 0; inl < 2; inl++) {
        pxs_proxy_t p = make_proxy(data, inl ? 300 : sizeof data, 0), q;
        size_t len = pxs_proxy_len(&p);
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                uint8_t b[PXS_PROXY_MAX];
                memcpy(b, p.bytes, len);
                b[i] ^= (uint8_t)(1u << bit);
                pxs_status_t st = pxs_proxy_decode(b, len, &q);
                cr_assert(st != PXS_OK, "flip of byte %zu bit %d accepted", i, bit);
                /* Resolving the flipped bytes in place is refused the same way. */
                pxs_proxy_t raw;
                memcpy(raw.bytes, b, len);
                char out[20000];
                cr_assert_neq(pxs_resolve(ctx, &raw, out, sizeof out, NULL), PXS_OK);
            }
        }
    }
}

Test(codec, wrong_version_is_named)
{
    char data[2000] = {0};
    pxs_proxy_t p = make_proxy(data, sizeof data, 0), q;
    p.bytes[4] = 2;
    cr_assert_eq(pxs_proxy_decode(p.bytes, sizeof p.bytes, &q), PXS_ERR_VERSION);
    char out[2000];
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_VERSION);
}

/* The proxy checksum against a bit-at-a-time CRC-32C, by every
 * implementation this CPU runs (the table, one crc32 stream, three streams
 * joined by carry-less multiplies): every length to past two full blocks of
 * the three-stream path, every alignment, and chained calls. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

Test(codec, checksum_is_crc32c_at_every_length)
{
    static uint8_t buf[1700 + 8];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    cr_assert_eq(pxs__crc32c(0, "123456789", 9), 0xe3069283u); /* the check value */
    cr_assert_geq(pxs__crc32c_impls(), 1);
    for (int impl = 0; impl < pxs__crc32c_impls(); impl++) {
        cr_assert_eq(pxs__crc32c_impl(impl, 0, "123456789", 9), 0xe3069283u, "impl %d", impl);
        for (size_t off = 0; off < 8; off++)
            for (size_t n = 0; n <= 1700; n++)
                cr_assert_eq(pxs__crc32c_impl(impl, 0, buf + off, n), crc_bitwise(0, buf + off, n),
                             "impl %d: length %zu at offset %zu", impl, n, off);
        for (size_t cut = 0; cut <= 300; cut += 7)
            cr_assert_eq(pxs__crc32c_impl(impl, pxs__crc32c_impl(impl, 0, buf, cut), buf + cut,
                                          300 - cut),
                         crc_bitwise(0, buf, 300), "impl %d: split at %zu", impl, cut);
    }
}

/* A well-formed proxy whose fields lie: the checksum is right, the layout
 * is not. Built with the writer's own helpers, then re-checksummed. */
static void reseal(uint8_t *b)
{
    uint32_t total = pxs_rd32(b + 12);
    pxs_wr32(b + total - 4, pxs__crc32c(0, b, total - 4));
}

Test(codec, inconsistent_fields_are_corrupt)
{
    char data[2000] = {0};
    pxs_proxy_t p = make_proxy(data, sizeof data, 0), q;
    uint8_t b[PXS_PROXY_MAX];
    size_t len = pxs_proxy_len(&p);

    memcpy(b, p.bytes, len);
    b[7] |= 0x80; /* unknown flag */
    reseal(b);
    cr_assert_eq(pxs_proxy_decode(b, len, &q), PXS_ERR_CORRUPT);

    memcpy(b, p.bytes, len);
    b[6] = 9; /* unknown memory type */
    reseal(b);
    cr_assert_eq(pxs_proxy_decode(b, len, &q), PXS_ERR_CORRUPT);

    memcpy(b, p.bytes, len);
    pxs_wr16(b + 10, 600); /* blob longer than allowed */
    reseal(b);
    cr_assert_eq(pxs_proxy_decode(b, len, &q), PXS_ERR_CORRUPT);

    memcpy(b, p.bytes, len);
    b[7] |= PXS_WF_INLINE; /* claims inline bytes that are not there */
    reseal(b);
    cr_assert_eq(pxs_proxy_decode(b, len, &q), PXS_ERR_CORRUPT);

    memcpy(b, p.bytes, len);
    pxs_wr32(b + 12, 100000); /* total beyond the maximum */
    cr_assert_eq(pxs_proxy_decode(b, sizeof b, &q), PXS_ERR_CORRUPT);
}

Test(codec, foreign_domain_is_refused)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = "other-job"};
    pxs_context_t *other;
    cr_assert_eq(pxs_init(&cp, &other), PXS_OK);
    char data[5000] = {1};
    pxs_proxy_t p = make_proxy(data, sizeof data, 0);
    pxs_proxy_t inl = make_proxy(data, 10, 0);
    char out[5000];
    cr_assert_eq(pxs_resolve(other, &p, out, sizeof out, NULL), PXS_ERR_FOREIGN);
    cr_assert_eq(pxs_resolve(other, &inl, out, sizeof out, NULL), PXS_ERR_FOREIGN);
    cr_assert_eq(pxs_exists(other, &p), PXS_ERR_FOREIGN);
    pxs_finalize(other);
}

/* The per-thread memo of validation (src/wire_memo.c) answers exactly what
 * a full parse answers, and its pointers go into the caller's bytes. */
static void assert_same_desc(const pxs_pdesc_t *got, const pxs_pdesc_t *want, const uint8_t *b)
{
    cr_assert(got->version == want->version && got->connector == want->connector &&
              got->memtype == want->memtype && got->flags == want->flags &&
              got->hdr_len == want->hdr_len && got->blob_len == want->blob_len &&
              got->total_len == want->total_len);
    cr_assert(got->domain == want->domain && got->owner == want->owner &&
              got->key == want->key && got->store == want->store && got->size == want->size &&
              got->gen == want->gen && got->slot == want->slot);
    cr_assert(got->blob == b + want->hdr_len, "blob points into the memo, not the proxy");
    if (want->flags & PXS_WF_INLINE)
        cr_assert(got->data == b + want->hdr_len + want->blob_len);
    else
        cr_assert_null(got->data);
}

Test(codec, remembered_validation_answers_as_a_full_parse)
{
    char data[64];
    memset(data, 9, sizeof data);
    for (int inl = 0; inl < 2; inl++) {
        pxs_proxy_t p = make_proxy(data, sizeof data, inl ? 0 : PXS_PUT_NO_INLINE);
        size_t len = pxs_proxy_len(&p);
        pxs_pdesc_t want, got;
        cr_assert_eq(pxs__wire_parse(p.bytes, sizeof p.bytes, &want), PXS_OK);
        cr_assert_eq(!!(want.flags & PXS_WF_INLINE), inl);
        /* A miss that remembers, then hits from copies at other addresses. */
        for (int k = 0; k < 3; k++) {
            static pxs_proxy_t c[3];
            memcpy(&c[k], &p, sizeof p);
            cr_assert_eq(pxs__wire_parse_memo(c[k].bytes, sizeof c[k].bytes, &got), PXS_OK);
            assert_same_desc(&got, &want, c[k].bytes);
        }
        /* Each flip of a remembered proxy is refused as a full parse refuses
         * it, and does not displace the good entry's answer. */
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                uint8_t b[PXS_PROXY_MAX];
                memcpy(b, p.bytes, sizeof b);
                b[i] ^= (uint8_t)(1u << bit);
                pxs_pdesc_t d1, d2;
                pxs_status_t full = pxs__wire_parse(b, sizeof b, &d1);
                pxs_status_t memo = pxs__wire_parse_memo(b, sizeof b, &d2);
                cr_assert_neq(full, PXS_OK, "flip of byte %zu bit %d accepted", i, bit);
                cr_assert_eq(memo, full, "byte %zu bit %d: memo %s, parse %s", i, bit,
                             pxs_strerror(memo), pxs_strerror(full));
            }
        }
        cr_assert_eq(pxs__wire_parse_memo(p.bytes, sizeof p.bytes, &got), PXS_OK);
        assert_same_desc(&got, &want, p.bytes);
        /* Fewer bytes than the proxy says: truncated, never a remembered OK. */
        cr_assert_eq(pxs__wire_parse_memo(p.bytes, len - 1, &got), PXS_ERR_TRUNCATED);
    }
}

Test(codec, remembered_proxies_that_share_an_entry_resolve_to_their_own_bytes)
{
    enum { N = 100 }; /* several times the memo's 16 entries */
    static uint64_t vals[N];
    static pxs_proxy_t px[N];
    for (int i = 0; i < N; i++) {
        vals[i] = 0x5eed0000u + (uint64_t)i;
        px[i] = make_proxy(&vals[i], sizeof vals[i], PXS_PUT_NO_INLINE);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            uint64_t out = 0;
            cr_assert_eq(pxs_resolve(ctx, &px[i], &out, sizeof out, NULL), PXS_OK);
            cr_assert_eq(out, vals[i], "round %d proxy %d", round, i);
        }
    }
}

/* The same in pxs_alloc memory: all of them in one segment, where a read
 * goes by the route the proxy's earlier reads found (wire.h). A proxy that
 * takes over an entry must not inherit the route of the one it displaced:
 * that one's offset in the same segment holds other bytes. */
Test(codec, remembered_proxies_in_one_segment_keep_their_own_routes)
{
    enum { N = 100 };
    uint64_t *vals;
    static pxs_proxy_t px[N];
    cr_assert_eq(pxs_alloc(ctx, N * sizeof *vals, (void **)&vals), PXS_OK);
    for (int i = 0; i < N; i++) {
        vals[i] = 0xa110c000u + (uint64_t)i;
        px[i] = make_proxy(&vals[i], sizeof vals[i], PXS_PUT_NO_INLINE);
    }
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < 3; k++) { /* the third read takes the route */
                uint64_t out = 0;
                cr_assert_eq(pxs_resolve(ctx, &px[i], &out, sizeof out, NULL), PXS_OK);
                cr_assert_eq(out, vals[i], "round %d proxy %d read %d", round, i, k);
            }
        }
    }
    /* The route slot itself: the entry's, kept while the bytes stay, emptied
     * when other bytes take the entry. */
    pxs_pdesc_t d;
    pxs_route_t *rt, *again;
    for (int k = 0; k < 3; k++) {
        uint64_t out = 0;
        cr_assert_eq(pxs_resolve(ctx, &px[0], &out, sizeof out, NULL), PXS_OK);
    }
    cr_assert_eq(pxs__wire_parse_route(px[0].bytes, sizeof px[0].bytes, &d, &rt), PXS_OK);
    cr_assert_not_null(rt);
    cr_assert_neq(rt->uid, 0, "three reads of it left no route");
    cr_assert_eq(pxs__wire_parse_route(px[0].bytes, sizeof px[0].bytes, &d, &again), PXS_OK);
    cr_assert_eq(again, rt);
    for (int i = 1; i < N; i++) {
        pxs_route_t *other;
        cr_assert_eq(pxs__wire_parse_route(px[i].bytes, sizeof px[i].bytes, &d, &other), PXS_OK);
        if (other == rt) {
            cr_assert_eq(rt->uid, 0, "proxy %d inherited proxy 0's route", i);
            break;
        }
    }
    uint8_t bad[PXS_PROXY_MAX];
    memcpy(bad, px[0].bytes, sizeof bad);
    bad[20] ^= 1;
    cr_assert_neq(pxs__wire_parse_route(bad, sizeof bad, &d, &rt), PXS_OK);
    cr_assert_null(rt, "a refused proxy has no route slot");
    for (int i = 0; i < N; i++) pxs_evict(store, &px[i]);
    cr_assert_eq(pxs_free(ctx, vals), PXS_OK);
}

/* The memo's equality (wire_memo.h), which stands in for memcmp on every
 * hit: at every length a proxy can have, any one differing bit anywhere,
 * the overlapping last block included, at any alignment; the 16-byte path
 * and the 32-byte one (where this CPU has it) each. */
static void check_memo_eq(bool wide, const char *name)
{
    static uint8_t a[PXS_MEMO_BYTES + 8], b[PXS_MEMO_BYTES + 8];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i * 131u + 7u);
    for (size_t n = wide ? 33 : 16; n <= PXS_MEMO_BYTES; n++) {
        for (size_t off = 0; off < 4; off++) {
            memcpy(b + off, a, n);
            bool eq = wide ? pxs__memo_eq_wide(a, b + off, n) : pxs__memo_eq(a, b + off, n);
            cr_assert(eq, "%s: %zu equal bytes at offset %zu differ", name, n, off);
            for (size_t i = 0; i < n; i++) {
                uint8_t bit = (uint8_t)(1u << ((i + n) % 8));
                b[off + i] ^= bit;
                eq = wide ? pxs__memo_eq_wide(a, b + off, n) : pxs__memo_eq(a, b + off, n);
                b[off + i] ^= bit;
                cr_assert(!eq, "%s: byte %zu of %zu (offset %zu) changed, still equal", name, i,
                          n, off);
            }
        }
    }
}

Test(codec, remembered_bytes_compare_equal_only_when_every_byte_is)
{
    pxs_pdesc_t d;
    char data[8] = {1};
    pxs_proxy_t p = make_proxy(data, sizeof data, PXS_PUT_NO_INLINE);
    cr_assert_eq(pxs__wire_parse_memo(p.bytes, sizeof p.bytes, &d), PXS_OK); /* sets the flag */
    bool wide = pxs__memo_wide;
    pxs__memo_wide = false;
    check_memo_eq(false, "16-byte blocks");
    pxs__memo_wide = wide;
    check_memo_eq(false, wide ? "16-byte blocks, 32 past 128" : "16-byte blocks again");
#if defined(__x86_64__)
    cr_assert_eq(wide, !!__builtin_cpu_supports("avx2"));
#endif
    if (wide) check_memo_eq(true, "32-byte blocks");
    else cr_log_info("no AVX2 here: the 32-byte compare is not run");
}

static void *memo_thread(void *arg)
{
    const pxs_proxy_t *p = arg;
    pxs_pdesc_t d;
    intptr_t bad = 0;
    for (int k = 0; k < 3; k++) bad |= pxs__wire_parse_memo(p->bytes, sizeof p->bytes, &d) != PXS_OK;
    return (void *)bad; /* the thread's memo goes with it (LeakSanitizer checks) */
}

Test(codec, each_thread_remembers_on_its_own)
{
    char data[8] = {3};
    pxs_proxy_t p = make_proxy(data, sizeof data, PXS_PUT_NO_INLINE);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&t[i], NULL, memo_thread, &p), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        cr_assert_eq(pthread_join(t[i], &bad), 0);
        cr_assert_null(bad);
    }
}

Test(codec, status_strings)
{
    cr_assert_str_eq(pxs_strerror(PXS_OK), "success");
    cr_assert_str_eq(pxs_strerror(PXS_ERR_EVICTED), "object was evicted or its proxy is stale");
    cr_assert_str_eq(pxs_strerror((pxs_status_t)-999), "unknown status");
}
