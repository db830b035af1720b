/* CRC-32C (Castagnoli): the SSE4.2 instruction where the CPU has it, a
 * slicing-by-8 table otherwise. Guards proxies against corruption in
 * transit; not a defence against forgery. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define POLY 0x82f63b78u /* reflected */

static uint32_t crc_table[8][256];

static void crc_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint32_t lo = crc ^ (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)(p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
#define HW1 __attribute__((target("sse4.2")))
#define HW3 __attribute__((target("sse4.2,pclmul")))

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One crc32 chain: the tail of the others, and all of it without pclmul. */
HW1 static inline uint32_t crc_hw1(uint32_t c, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8) c = (uint32_t)_mm_crc32_u64(c, ld64(p));
    if (len & 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
    }
    if (len & 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        c = _mm_crc32_u16(c, v);
        p += 2;
    }
    if (len & 1) c = _mm_crc32_u8(c, *p);
    return c;
}

/* Three streams at once: crc32 takes 3 cycles but can start one a cycle,
 * so one chain uses a third of it. Three runs A, B, C go as independent
 * CRCs, joined by the linearity of the register:
 *   crc(c, A|B|C) = shift(crc(c, A), |B|+|C|) ^ shift(crc(0, B), |C|) ^ crc(0, C)
 * with shift(v, m) = v * x^(8m) mod P. Two ways to shift:
 * - by a fixed 32 or 64 bytes, four table lookups (shift_tab), for inputs
 *   under LONG bytes: blocks of 3 x 32 bytes, then one chain;
 * - by any multiple of 8 bytes, a carry-less multiply by k = x^(8m-33) mod P,
 *   whose 64-bit product's crc32 from 0 is the shift (the instruction
 *   multiplies by x^32; reading the product as reflected adds one x), one
 *   crc32 for both products. The runs then take the whole input: a 285-byte
 *   proxy goes as 3 x ~12 quadwords, not a 96-byte block and a serial tail
 *   of 93 bytes (24.5 -> 15.1 ns). C is longer by four quadwords, so the
 *   join of A and B (about 13 cycles) runs while C finishes.
 * The multiply's trips between integer and vector registers cost more than
 * the lookups: under LONG bytes the tables win, in a resolve too. */
#define LONG 128
#define STREAM 32                        /* bytes per run of a short input's block */
#define SPAN_MAX 32                      /* quadwords per run in a long input's block */
static uint32_t shift_tab[2][4][256];   /* by STREAM bytes, by 2 x STREAM */
static uint32_t kpow[3 * SPAN_MAX + 1]; /* kpow[j] = x^(64j-33) mod P: by j quadwords */

static uint32_t mulx(uint32_t v) { return (v >> 1) ^ (POLY & (0u - (v & 1u))); }

static void shift_init(void)
{
    static const uint8_t zeros[2 * STREAM];
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++)
            for (uint32_t b = 0; b < 256; b++)
                shift_tab[k][j][b] = crc_sw(b << (8 * j), zeros, (size_t)STREAM * (k + 1));
    uint32_t v = 0x80000000u; /* 1, reflected */
    for (int i = 0; i < 31; i++) v = mulx(v);
    kpow[1] = v;
    for (int j = 2; j <= 3 * SPAN_MAX; j++) {
        for (int i = 0; i < 64; i++) v = mulx(v);
        kpow[j] = v;
    }
}

static inline uint32_t shift_by_tab(int k, uint32_t v)
{
    return shift_tab[k][0][v & 0xff] ^ shift_tab[k][1][(v >> 8) & 0xff] ^
           shift_tab[k][2][(v >> 16) & 0xff] ^ shift_tab[k][3][v >> 24];
}

HW3 static inline uint32_t crc_short(uint32_t c, const uint8_t *p, size_t len)
{
    for (; len >= 3 * STREAM; p += 3 * STREAM, len -= 3 * STREAM) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < STREAM; i += 8) {
            a = _mm_crc32_u64(a, ld64(p + i));
            b = _mm_crc32_u64(b, ld64(p + STREAM + i));
            d = _mm_crc32_u64(d, ld64(p + 2 * STREAM + i));
        }
        c = shift_by_tab(1, (uint32_t)a) ^ shift_by_tab(0, (uint32_t)b) ^ (uint32_t)d;
    }
    return crc_hw1(c, p, len);
}

HW3 static inline __m128i clmul32(uint32_t v, uint32_t k)
{
    return _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)v), _mm_cvtsi32_si128((int)k), 0);
}

/* t quadwords from p (7 <= t <= 3 x SPAN_MAX), continuing from c. */
HW3 static inline __attribute__((always_inline)) uint32_t runs3(uint32_t c, const uint8_t *p,
                                                                  size_t t)
{
    size_t n = (t - 4) / 3; /* |A| = |B| = n, |C| = t - 2n >= n + 4 */
    uint64_t a = c, b = 0, d = 0;
    const uint8_t *q = p + 8 * n, *r = p + 16 * n, *end = p + 8 * t;
    for (size_t i = 0; i < 8 * n; i += 8) {
        a = _mm_crc32_u64(a, ld64(p + i));
        b = _mm_crc32_u64(b, ld64(q + i));
        d = _mm_crc32_u64(d, ld64(r + i));
    }
    __m128i ab = _mm_xor_si128(clmul32((uint32_t)a, kpow[t - n]),
                               clmul32((uint32_t)b, kpow[t - 2 * n]));
    uint32_t j = (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(ab));
    for (r += 8 * n; r < end; r += 8) d = _mm_crc32_u64(d, ld64(r));
    return j ^ (uint32_t)d;
}

HW3 static uint32_t crc_hw3(uint32_t c, const uint8_t *p, size_t len)
{
    if (len < LONG) return crc_short(c, p, len);
    for (; len >= 24 * SPAN_MAX; p += 24 * SPAN_MAX, len -= 24 * SPAN_MAX)
        c = runs3(c, p, 3 * SPAN_MAX);
    if (len >= 56) {
        size_t t = len / 8;
        c = runs3(c, p, t);
        p += 8 * t;
        len -= 8 * t;
    }
    return crc_hw1(c, p, len);
}
#endif

enum { IMPL_SW, IMPL_HW1, IMPL_HW3 };
static int impl_best; /* the fastest this CPU runs */
static atomic_int ready;

static void crc_init(void)
{
    crc_init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) impl_best = IMPL_HW1;
    if (impl_best == IMPL_HW1 && __builtin_cpu_supports("pclmul")) {
        shift_init();
        impl_best = IMPL_HW3;
    }
#endif
    atomic_store_explicit(&ready, 1, memory_order_release);
}

static void crc_ready(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    /* One load on the hot path; pthread_once only until the first is done. */
    if (!atomic_load_explicit(&ready, memory_order_acquire)) pthread_once(&once, crc_init);
}

static uint32_t crc_run(int impl, uint32_t crc, const uint8_t *p, size_t len)
{
#if defined(__x86_64__)
    if (impl == IMPL_HW3) return crc_hw3(crc, p, len);
    if (impl == IMPL_HW1) return crc_hw1(crc, p, len);
#endif
    return crc_sw(crc, p, len);
}

uint32_t pxs__crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc_ready();
    return ~crc_run(impl_best, ~crc, buf, len);
}

int pxs__crc32c_impls(void)
{
    crc_ready();
    return impl_best + 1;
}

uint32_t pxs__crc32c_impl(int impl, uint32_t crc, const void *buf, size_t len)
{
    crc_ready();
    if (impl < 0 || impl > impl_best) impl = impl_best;
    return ~crc_run(impl, ~crc, buf, len);
}
