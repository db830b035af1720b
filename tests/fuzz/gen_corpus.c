/* Writes seed inputs for the fuzz targets: one proxy of each kind (inline,
 * local, shm user memory, shm library memory), binary and text; and
 * libpxs_mpi's byte formats (fuzz_mpi). Run by hand after a format change:
 * gen_corpus tests/fuzz/corpus */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pxs/pxs.h>
#include "../../mpi/mpi_wire.h"

#define FUZZ_MPI_NAME "fuzz/field/0" /* fuzz_mpi.c's fixed name */

static void write_file(const char *dir, const char *target, const char *name, const void *b, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755); /* a new target's */
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) perror(path);
    if (f) fclose(f);
}

/* fuzz_mpi: the "mpi" connector's blob without and with its node part
 * (ordinary memory at the blob's address; a segment), with a lease part
 * and a node part, a directory bucket
 * whose entry 0 holds p under the fixed name, a value message and a
 * message carrying p. */
static void mpi_seeds(const char *dir, const pxs_proxy_t *p)
{
    const char *t = "fuzz_mpi";
    uint64_t data = 0x7f0012340000ull;
    uint8_t b[PXS_MPI_BLOB_LEN + PXS_MPI_BLOB_LEASE_LEN + PXS_SHM_BLOB_LEN];
    pxs_wr64(b, 0x5158504d50495031ull); /* group */
    pxs_wr32(b + 8, 1);                 /* rank */
    pxs_wr32(b + 12, 1024);             /* slots */
    pxs_wr64(b + 16, data);
    pxs_wr64(b + 24, 0x7f0056780000ull); /* generation table */
    pxs_wr64(b + 32, 0);
    write_file(dir, t, "blob", b, PXS_MPI_BLOB_LEN);
    pxs_wr64(b + 32, PXS_MPI_BLOB_NODE);
    pxs__shm_blob_write(b + PXS_MPI_BLOB_LEN, getpid(), 0, 1000, 42, data);
    write_file(dir, t, "blob-node-attach", b, PXS_MPI_BLOB_LEN + PXS_SHM_BLOB_LEN);
    pxs__shm_blob_write(b + PXS_MPI_BLOB_LEN, getpid(), 3, 1000, 42, 4096);
    write_file(dir, t, "blob-node-seg", b, PXS_MPI_BLOB_LEN + PXS_SHM_BLOB_LEN);
    /* As an owner with leases packs it: the lease part before the node's. */
    pxs_wr64(b + 32, PXS_MPI_BLOB_NODE | PXS_MPI_BLOB_LEASE);
    pxs_wr64(b + PXS_MPI_BLOB_LEN, 0x7f009abc0000ull); /* lease words */
    pxs_wr32(b + PXS_MPI_BLOB_LEN + 8, 1000);
    pxs_wr32(b + PXS_MPI_BLOB_LEN + 12, 0);
    pxs__shm_blob_write(b + PXS_MPI_BLOB_LEN + PXS_MPI_BLOB_LEASE_LEN, getpid(), 0, 1000, 42, data);
    write_file(dir, t, "blob-lease-node-attach", b, sizeof b);

    size_t len = pxs_proxy_len(p);
    static uint8_t bk[PXS_MPI_BUCKET];
    uint8_t *e = bk + PXS_MPI_BUCKET_HDR;
    pxs_wr64(e, 1);
    pxs_wr32(e + 16, 1); /* publisher rank */
    pxs_wr32(e + 20, (uint32_t)len);
    memcpy(e + 24, FUZZ_MPI_NAME, strlen(FUZZ_MPI_NAME));
    memcpy(e + PXS_MPI_ENTRY_HDR, p->bytes, len);
    pxs_wr64(e + 8, pxs__mpi_entry_check(e));
    write_file(dir, t, "bucket", bk, PXS_MPI_BUCKET_HDR + PXS_MPI_ENTRY_HDR + len);

    static uint8_t m[PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID + PXS_PROXY_MAX];
    pxs_wr32(m, PXS_MPI_MSG_MAGIC);
    pxs_wr32(m + 4, PXS_MPI_KIND_VALUE);
    pxs_wr64(m + 8, 5);
    memcpy(m + PXS_MPI_MSG_HDR, "value", 5);
    write_file(dir, t, "msg-value", m, PXS_MPI_MSG_HDR + 5);
    pxs_proxy_info_t info;
    pxs_proxy_info(p, &info);
    pxs_wr32(m + 4, PXS_MPI_KIND_PROXY);
    pxs_wr64(m + 8, info.size);
    pxs_wr32(m + PXS_MPI_MSG_HDR, 7); /* the send's id */
    memcpy(m + PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID, p->bytes, len);
    write_file(dir, t, "msg-proxy", m, PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID + len);
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
        if (!strcmp(k[i].name, "shm-user")) mpi_seeds(argv[1], &p);
    }
    write_file(argv[1], "fuzz_text", "prefix-only", "pxs1:", 5);
    pxs_finalize(ctx);
    return 0;
}
