/* pxs_put_rate: how fast rank 0 exposes a buffer, under mpirun (2 ranks),
 * with the store of --connector and the memory of --memory:
 *
 *   put         pxs_put (zero copy) of a buffer already exposed by another
 *               live object, in batches, evictions untimed (bench "put_rate",
 *               baseline none);
 *   put+evict   one pxs_put and its pxs_evict, vs what an MPI program does to
 *               expose and withdraw a buffer for one-sided reads:
 *               MPI_Win_attach + MPI_Win_detach on a dynamic window
 *               (baseline "MPI_Win_attach"), interleaved ABBA.
 *
 * After each size rank 0 puts the buffer once more and rank 1 resolves the
 * proxy and checks the bytes, so every point is known to work end to end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "bench_mpi.h"

#define BATCH_MAX 1000
/* The "mpi" connector attaches every zero-copy put and keeps at most
 * max_attach (default 32) regions: stay under it. */
#define BATCH_MPI 16

typedef struct {
    size_t size;
    int batch;
    bench_stat_t put, pe, attach; /* ns per op */
} point_t;

typedef struct {
    mpib_opts_t o;
    mpib_pxs_t p;
    MPI_Win dyn;
    mpib_osc_t osc;
    char impl[64];
    point_t pts[BENCH_MAX_SIZES];
    int npts;
} bench_t;

typedef struct {
    mpib_pxs_t *p;
    void *buf;
    size_t size;
    pxs_status_t st;
} pe_arg_t;

static int op_put_evict(void *arg)
{
    pe_arg_t *a = arg;
    pxs_proxy_t proxy;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    a->st = pxs_put(a->p->store, a->buf, a->size, &pp, &proxy);
    if (a->st == PXS_OK) a->st = pxs_evict(a->p->store, &proxy);
    return a->st != PXS_OK;
}

typedef struct {
    MPI_Win win;
    void *buf;
    size_t size;
} att_arg_t;

static int op_attach(void *arg)
{
    att_arg_t *a = arg;
    if (MPI_Win_attach(a->win, a->buf, (MPI_Aint)a->size) != MPI_SUCCESS) return -1;
    return MPI_Win_detach(a->win, a->buf) != MPI_SUCCESS;
}

/* batch puts timed, their evictions not; *ns_p per put. */
static void put_batch(bench_t *b, void *buf, size_t size, int n, pxs_proxy_t *px, double *ns_p)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_put(b->p.store, buf, size, &pp, &px[i]);
        if (st != PXS_OK) mpib_die("pxs_put #%d of %zu bytes: %s", i, size, pxs_strerror(st));
    }
    *ns_p = (bench_now_ns() - t0) / n;
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_evict(b->p.store, &px[i]);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict");
    }
}

static void measure_size(bench_t *b, void *buf, size_t size, pxs_proxy_t *px)
{
    point_t *pt = &b->pts[b->npts++];
    const bench_cfg_t *cfg = &b->o.cfg;
    pt->size = size;
    pt->batch = strcmp(b->o.connector, "mpi") ? BATCH_MAX : BATCH_MPI;
    /* The anchor keeps the buffer exposed (registered, attached) meanwhile. */
    pxs_proxy_t anchor;
    mpib_put(&b->p, buf, size, &anchor);
    double samples[BENCH_MAX_REPS];
    for (int r = -2; r < cfg->reps; r++) {
        double ns;
        put_batch(b, buf, size, pt->batch, px, &ns);
        if (r >= 0) samples[r] = ns;
    }
    pt->put = bench_stats_of(samples, cfg->reps);
    pxs_status_t st = pxs_evict(b->p.store, &anchor);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict (anchor)");

    pe_arg_t pa = {.p = &b->p, .buf = buf, .size = size};
    att_arg_t aa = {.win = b->dyn, .buf = buf, .size = size};
    bench_timed_t ts[2] = {{.fn = op_put_evict, .arg = &pa}, {.fn = op_attach, .arg = &aa}};
    bench_stat_t out[2];
    int bad = bench_measure(ts, 2, cfg, out);
    if (bad == 1) mpib_die_pxs(pa.st, "pxs_put + pxs_evict");
    if (bad == 2) mpib_die("MPI_Win_attach/detach failed");
    pt->pe = out[0];
    pt->attach = out[1];
}

/* One more put of the size, resolved and checked by rank 1. */
static void owner_check(bench_t *b, void *buf, size_t size)
{
    pxs_proxy_t proxy;
    mpib_put(&b->p, buf, size, &proxy);
    pxs_status_t st = pxs_mpi_send_proxy(&proxy, 1, MPIB_TAG_PROXY, MPI_COMM_WORLD);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_send_proxy");
    mpib_owner_t ow = {.p = &b->p};
    if (mpib_serve(&ow, MPI_COMM_WORLD, 1, MPIB_TIMEOUT_MS)) mpib_die("rank 1 failed");
    st = pxs_evict(b->p.store, &proxy);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict");
}

static void owner_run(bench_t *b)
{
    void *buf = mpib_obj_alloc(&b->p, b->o.alloc, b->o.max_size);
    pxs_proxy_t *px = malloc(BATCH_MAX * sizeof *px);
    if (!px) mpib_die("out of memory");
    for (int i = 0; i < b->o.cfg.nsizes; i++) {
        size_t size = b->o.cfg.sizes[i];
        bench_fill_pattern(buf, size, size);
        measure_size(b, buf, size, px);
        owner_check(b, buf, size);
    }
    free(px);
    mpib_obj_free(&b->p, b->o.alloc, buf);
}

static void checker_run(bench_t *b)
{
    uint8_t *dst, *want;
    if (bench_point_buffers(b->o.max_size, &dst, &want)) mpib_die("out of memory");
    for (int i = 0; i < b->o.cfg.nsizes; i++) {
        size_t size = b->o.cfg.sizes[i];
        pxs_proxy_t proxy;
        mpib_recv_proxy(&proxy, 0, MPIB_TAG_PROXY, MPI_COMM_WORLD);
        bench_fill_pattern(want, size, size);
        pxs_status_t st = pxs_resolve(b->p.ctx, &proxy, dst, size, NULL);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_resolve");
        mpib_check(dst, want, size, "pxs_resolve");
        mpib_send_done(0, 0, MPI_COMM_WORLD);
    }
    free(dst);
    free(want);
}

static void print_table(const void *arg)
{
    const bench_t *b = arg;
    char sp[48];
    printf("# pxs_put_rate (pxs %s): connector %s, memory %s, %d ranks (%s)\n", pxs_version(),
           b->o.connector, b->o.alloc ? "alloc (pxs_alloc buffer)" : "user (malloc'd buffer)",
           b->p.size, b->o.cfg.transport);
    printf("%s\n", b->osc.line);
    printf("# put: zero-copy pxs_put of a buffer another live object already exposes "
           "(batches, evictions untimed)\n"
           "# put+evict vs MPI_Win_attach+MPI_Win_detach on a dynamic window (ratio = pxs "
           "rate / MPI rate); median of %d reps\n", b->o.cfg.reps);
    printf("%-10s%8s%14s%22s%16s%22s%18s%8s\n", "# Size", "batch", "Puts/s", "spread",
           "Put+evict/s", "spread", "Attach+detach/s", "ratio");
    for (int i = 0; i < b->npts; i++) {
        const point_t *p = &b->pts[i];
        char sp2[48];
        bench_spread_rate(sp, sizeof sp, p->put);
        bench_spread_rate(sp2, sizeof sp2, p->pe);
        printf("%-10zu%8d%14.0f%22s%16.0f%22s%18.0f%8.3f\n", p->size, p->batch,
               1e9 / p->put.med, sp, 1e9 / p->pe.med, sp2, 1e9 / p->attach.med,
               p->attach.med / p->pe.med);
    }
    fflush(stdout);
}

static void emit_json(FILE *f, const void *arg)
{
    const bench_t *b = arg;
    for (int i = 0; i < b->npts; i++) {
        const point_t *p = &b->pts[i];
        char extra[192];
        snprintf(extra, sizeof extra,
                 "\"what\":\"put\",\"batch\":%d,\"connector\":\"%s\",\"memory\":\"%s\","
                 "\"ranks\":%d", p->batch, b->o.connector, b->o.alloc ? "alloc" : "user",
                 b->p.size);
        bench_json_rate(f, &b->o.cfg, b->impl, "puts/s", p->size, p->put, extra);
        snprintf(extra, sizeof extra,
                 "\"what\":\"put+evict\",\"connector\":\"%s\",\"memory\":\"%s\",\"ranks\":%d,"
                 "\"osc\":\"%s\"", b->o.connector, b->o.alloc ? "alloc" : "user", b->p.size,
                 b->osc.create);
        char impl[80];
        snprintf(impl, sizeof impl, "%s-put+evict", b->impl);
        bench_record_t r = {"put_rate", impl, "MPI_Win_attach", "ops/s", p->size,
                            1e9 / p->pe.med, 1e9 / p->pe.max, 1e9 / p->pe.min, 1,
                            1e9 / p->attach.med, 1e9 / p->attach.max, 1e9 / p->attach.min,
                            extra};
        bench_json_record(f, &b->o.cfg, &r);
    }
}

int main(int argc, char **argv)
{
    static bench_t b;
    static const char tail[] =
        "  --connector shm|ucx|mpi  the pxs store's connector (default shm)\n"
        "  --memory user|alloc      buffer from malloc or from pxs_alloc\n"
        "  --max-size N             largest size (default 64M)\n"
        "Run under mpirun with 2 ranks.\n";
    bench_prog_t prog = {.name = "pxs_put_rate", .max_size = (size_t)64 << 20,
                         .quick_rep_ms = 4, .usage_tail = tail};
    MPI_Init(&argc, &argv);
    if (mpib_parse(argc, argv, &prog, "shm", NULL, &b.o)) {
        MPI_Finalize();
        return 2;
    }
    int size, rank;
    if (mpib_ranks(prog.name, 2, 2, &rank, &size)) return 2;
    mpib_transport(&b.o.cfg, size);
    mpib_impl_name(b.impl, sizeof b.impl, &b.o);
    mpib_pxs_open(&b.o, &b.p);
    if (MPI_Win_create_dynamic(MPI_INFO_NULL, MPI_COMM_WORLD, &b.dyn) != MPI_SUCCESS)
        mpib_die("MPI_Win_create_dynamic failed");
    mpib_osc_describe(&b.osc, MPI_COMM_WORLD);
    if (rank == 0) owner_run(&b);
    else checker_run(&b);
    int rc = rank == 0 ? bench_report(&b.o.cfg, print_table, emit_json, &b) : 0;
    mpib_barrier(MPI_COMM_WORLD);
    MPI_Win_free(&b.dyn);
    mpib_pxs_close(&b.p);
    MPI_Finalize();
    return rc ? 1 : 0;
}
