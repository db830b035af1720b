/* CRC-32C (Castagnoli): the SSE4.2 instruction where the CPU has it, a
 * slicing-by-8 table otherwise. Guards proxies against corruption in
 * transit; not a defence against forgery. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

static uint32_t crc_table[8][256];

static void crc_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
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
/* Three streams at once: the crc32 instruction takes 3 cycles but can start
 * one a cycle, so one chain uses a third of it. Blocks of 3 x STREAM bytes
 * go as three independent CRCs, joined by the linearity of the register:
 * crc(x, A|B|C) = shift(2L, crc(x, A)) ^ shift(L, crc(0, B)) ^ crc(0, C),
 * where shift(n, v) = crc(v, n zero bytes) is linear in v: four table
 * lookups, one per byte of v (shift_tab, made at first use). */
#define STREAM 32
static uint32_t shift_tab[2][4][256]; /* [0]: by STREAM bytes, [1]: by 2 STREAM */

__attribute__((target("sse4.2"))) static uint32_t crc_hw_zeros(uint32_t crc, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8) c = __builtin_ia32_crc32di(c, 0);
    return (uint32_t)c;
}

static void shift_init(void)
{
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++)
            for (uint32_t b = 0; b < 256; b++)
                shift_tab[k][j][b] = crc_hw_zeros(b << (8 * j), (size_t)STREAM * (k + 1));
}

static inline uint32_t shift(int k, uint32_t v)
{
    return shift_tab[k][0][v & 0xff] ^ shift_tab[k][1][(v >> 8) & 0xff] ^
           shift_tab[k][2][(v >> 16) & 0xff] ^ shift_tab[k][3][v >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                         size_t len)
{
    uint64_t c = crc;
    for (; len >= 3 * STREAM; p += 3 * STREAM, len -= 3 * STREAM) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < STREAM; i += 8) {
            uint64_t a, b, d;
            memcpy(&a, p + i, 8);
            memcpy(&b, p + STREAM + i, 8);
            memcpy(&d, p + 2 * STREAM + i, 8);
            c = __builtin_ia32_crc32di(c, a);
            c1 = __builtin_ia32_crc32di(c1, b);
            c2 = __builtin_ia32_crc32di(c2, d);
        }
        c = shift(1, (uint32_t)c) ^ shift(0, (uint32_t)c1) ^ (uint32_t)c2;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static int use_hw;
static void crc_init(void)
{
    crc_init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2");
    if (use_hw) shift_init();
#endif
}

uint32_t pxs__crc32c(uint32_t crc, const void *buf, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (use_hw) return ~crc_hw(crc, buf, len);
#endif
    return ~crc_sw(crc, buf, len);
}
