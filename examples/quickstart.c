/* quickstart: put a buffer, carry its proxy as text, resolve it elsewhere.
 *
 * The proxy is a small value: the text form below could be printed, sent in
 * a message or passed on a command line to another process on this node,
 * which would resolve it the same way. Here one process plays both parts. */
#include <stdio.h>
#include <string.h>

#include <pxs/pxs.h>

/* Name the failing call and its status, then clean up. */
#define CHECK(call)                                                           \
    do {                                                                      \
        pxs_status_t st_ = (call);                                            \
        if (st_ != PXS_OK) {                                                  \
            fprintf(stderr, "quickstart: %s: %s\n", #call, pxs_strerror(st_)); \
            goto out;                                                         \
        }                                                                     \
    } while (0)

int main(void)
{
    static char src[1 << 20], dst[sizeof src]; /* 1 MiB: too big to travel inline */
    static char text[PXS_PROXY_TEXT_MAX];
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = "shm"};
    pxs_context_t *ctx = NULL;
    pxs_store_t *store;
    pxs_proxy_t proxy, received;
    int rc = 1;

    memset(src, 'x', sizeof src);
    CHECK(pxs_init(NULL, &ctx));
    CHECK(pxs_store_open(ctx, &sp, &store));
    CHECK(pxs_put(store, src, sizeof src, NULL, &proxy)); /* zero copy: src is exposed */
    CHECK(pxs_proxy_to_text(&proxy, text, sizeof text));  /* "pxs1:...": goes anywhere */
    CHECK(pxs_proxy_from_text(text, &received));
    CHECK(pxs_resolve(ctx, &received, dst, sizeof dst, NULL)); /* the bytes move now */
    if (memcmp(src, dst, sizeof src) != 0) {
        fprintf(stderr, "quickstart: resolved bytes differ\n");
        goto out;
    }
    CHECK(pxs_evict(store, &proxy)); /* from here the proxy resolves to PXS_ERR_EVICTED */
    printf("quickstart: moved %zu bytes through a %zu-character proxy (%.16s...)\n", sizeof dst,
           strlen(text), text);
    rc = 0;
out:
    pxs_finalize(ctx); /* also closes the store; NULL is fine */
    return rc;
}
