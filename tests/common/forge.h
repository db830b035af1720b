/* Forging proxies in tests: a proxy's length, and its checksum made right
 * again after a field was changed (a forgery must pass the CRC to test
 * anything past it). */
#ifndef PXS_TEST_FORGE_H
#define PXS_TEST_FORGE_H

#include <stdint.h>

#include <pxs/pxs.h>

/* The proxy's total length, as its header says. */
uint32_t proxy_total(const pxs_proxy_t *q);
/* Rewrite the trailing CRC-32C of q over its first proxy_total - 4 bytes. */
void reseal(pxs_proxy_t *q);

#endif
