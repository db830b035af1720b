/* Forging proxies in tests (forge.h). */
#include "forge.h"

#include <stddef.h>

uint32_t pxs__crc32c(uint32_t crc, const void *buf, size_t len);

uint32_t proxy_total(const pxs_proxy_t *q)
{
    return (uint32_t)q->bytes[12] | (uint32_t)q->bytes[13] << 8;
}

void reseal(pxs_proxy_t *q)
{
    uint32_t total = proxy_total(q);
    uint32_t crc = pxs__crc32c(0, q->bytes, total - 4);
    for (int i = 0; i < 4; i++) q->bytes[total - 4 + i] = (uint8_t)(crc >> (8 * i));
}
