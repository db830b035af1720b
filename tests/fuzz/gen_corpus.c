/* Writes seed inputs for the fuzz targets: one proxy of each kind (inline,
 * local, shm user memory, shm library memory), binary and text. Run by hand
 * after a format change: gen_corpus tests/fuzz/corpus */
#include <stdio.h>
#include <string.h>

#include <pxs/pxs.h>

static void write_file(const char *dir, const char *target, const char *name, const void *b, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) perror(path);
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    pxs_context_t *ctx;
    pxs_store_t *shm, *local;
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = "local"};
    if (pxs_init(NULL, &ctx) || pxs_store_open(ctx, NULL, &shm) || pxs_store_open(ctx, &sp, &local))
        return 1;
    static char buf[8192];
    void *mem;
    if (pxs_alloc(ctx, 8192, &mem)) return 1;
    pxs_put_params_t nin = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    struct { const char *name; pxs_store_t *s; const void *b; size_t n; pxs_put_params_t *pp; } k[] = {
        {"inline", shm, "inline bytes", 13, NULL},
        {"inline-empty", shm, buf, 0, NULL},
        {"shm-user", shm, buf, sizeof buf, &nin},
        {"shm-alloc", shm, mem, 8192, &nin},
        {"local", local, buf, sizeof buf, &nin},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        pxs_proxy_t p;
        if (pxs_put(k[i].s, k[i].b, k[i].n, k[i].pp, &p)) return 1;
        write_file(argv[1], "fuzz_proxy", k[i].name, p.bytes, pxs_proxy_len(&p));
        char text[PXS_PROXY_TEXT_MAX];
        pxs_proxy_to_text(&p, text, sizeof text);
        write_file(argv[1], "fuzz_text", k[i].name, text, strlen(text));
    }
    write_file(argv[1], "fuzz_text", "prefix-only", "pxs1:", 5);
    pxs_finalize(ctx);
    return 0;
}
