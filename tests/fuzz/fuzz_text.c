/* libFuzzer target: the text form decoder (command lines, files, logs). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pxs/pxs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    pxs_proxy_t p;
    if (pxs_proxy_from_text(text, &p) == PXS_OK) {
        /* Whatever parses is a valid proxy with one canonical text form. */
        char again[PXS_PROXY_TEXT_MAX];
        pxs_proxy_t q;
        if (pxs_proxy_len(&p) == 0 || pxs_proxy_to_text(&p, again, sizeof again) != PXS_OK ||
            pxs_proxy_from_text(again, &q) != PXS_OK ||
            memcmp(p.bytes, q.bytes, pxs_proxy_len(&p)) != 0)
            abort();
    }
    free(text);
    return 0;
}
