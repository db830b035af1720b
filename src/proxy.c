/* Public proxy functions: validation, wire and text forms. */
#include <ctype.h>
#include <string.h>

#include "pxs_int.h"

pxs_status_t pxs_proxy_info(const pxs_proxy_t *proxy, pxs_proxy_info_t *info)
{
    if (!proxy || !info) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__wire_parse(proxy->bytes, sizeof proxy->bytes, &d);
    if (st != PXS_OK) return st;
    memset(info, 0, sizeof *info);
    info->version = d.version;
    info->connector = d.connector;
    info->memtype = (pxs_memtype_t)d.memtype;
    info->is_inline = !!(d.flags & PXS_WF_INLINE);
    info->size = d.size;
    info->domain_id = d.domain;
    info->owner_id = d.owner;
    info->store_id = d.store;
    info->key = d.key;
    info->encoded_len = d.total_len;
    return PXS_OK;
}

size_t pxs_proxy_len(const pxs_proxy_t *proxy)
{
    pxs_pdesc_t d;
    if (!proxy || pxs__wire_parse(proxy->bytes, sizeof proxy->bytes, &d) != PXS_OK) return 0;
    return d.total_len;
}

pxs_status_t pxs_proxy_encode(const pxs_proxy_t *proxy, void *buf, size_t cap, size_t *len_p)
{
    if (!proxy || (!buf && cap)) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__wire_parse(proxy->bytes, sizeof proxy->bytes, &d);
    if (st != PXS_OK) return st;
    if (len_p) *len_p = d.total_len;
    if (cap < d.total_len) return PXS_ERR_BUFFER_TOO_SMALL;
    memcpy(buf, proxy->bytes, d.total_len);
    return PXS_OK;
}

pxs_status_t pxs_proxy_decode(const void *buf, size_t len, pxs_proxy_t *out)
{
    if (!buf || !out) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__wire_parse(buf, len, &d);
    if (st != PXS_OK) return st;
    memcpy(out->bytes, buf, d.total_len);
    memset(out->bytes + d.total_len, 0, sizeof out->bytes - d.total_len);
    return PXS_OK;
}

pxs_status_t pxs__proxy_check(const pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_pdesc_t *d)
{
    const pxs_pdesc_t *dp;
    pxs_route_t *rt;
    pxs_status_t st = pxs__proxy_check_route(ctx, proxy, d, &dp, &rt);
    if (st == PXS_OK && dp != d) { /* the memo's: pointers into the caller's bytes */
        *d = *dp;
        pxs__memo_repoint(d, proxy->bytes);
    }
    return st;
}

/* --- text form: "pxs1:" + unpadded base64url --------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
#define TEXT_PREFIX "pxs1:"
#define TEXT_PREFIX_LEN 5

pxs_status_t pxs_proxy_to_text(const pxs_proxy_t *proxy, char *buf, size_t cap)
{
    if (!proxy || !buf) return PXS_ERR_INVALID_PARAM;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__wire_parse(proxy->bytes, sizeof proxy->bytes, &d);
    if (st != PXS_OK) return st;
    size_t n = d.total_len, out_len = TEXT_PREFIX_LEN + (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (cap < out_len + 1) return PXS_ERR_BUFFER_TOO_SMALL;
    const uint8_t *p = proxy->bytes;
    char *o = buf;
    memcpy(o, TEXT_PREFIX, TEXT_PREFIX_LEN);
    o += TEXT_PREFIX_LEN;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
    }
    *o = '\0';
    return PXS_OK;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

pxs_status_t pxs_proxy_from_text(const char *text, pxs_proxy_t *out)
{
    if (!text || !out) return PXS_ERR_INVALID_PARAM;
    while (isspace((unsigned char)*text)) text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    if (len < TEXT_PREFIX_LEN || memcmp(text, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
        return PXS_ERR_CORRUPT;
    text += TEXT_PREFIX_LEN;
    len -= TEXT_PREFIX_LEN;
    if (len % 4 == 1) return PXS_ERR_CORRUPT; /* no valid encoding has this length */
    if (len > (PXS_PROXY_MAX / 3) * 4 + 3) return PXS_ERR_CORRUPT;
    uint8_t bytes[PXS_PROXY_MAX];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_val((unsigned char)text[i]);
        if (v < 0) return PXS_ERR_CORRUPT;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= sizeof bytes) return PXS_ERR_CORRUPT;
            bytes[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero: one proxy has exactly one text form. */
    if (bits && (acc & ((1u << bits) - 1))) return PXS_ERR_CORRUPT;
    return pxs_proxy_decode(bytes, n, out);
}
