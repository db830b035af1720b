/* The get benchmarks under mpirun: see mpi_get_suite.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mpi_get_suite.h"

#include <stdlib.h>
#include <string.h>

#include "bench_mpi.h"

#define WINDOW_BYTES ((size_t)64 << 20) /* at most this much in flight */

/* K_PXS: pxs_resolve of the proxy each time; K_READ: pxs_handle_read of a
 * handle opened once per size (MPI_Get's window is made once too). */
enum { K_PXS, K_READ, K_MPI, K_UCP, K_UCPAM, K_COPY, K_N };

typedef struct {
    size_t size;
    int window;
    bench_stat_t s[K_N]; /* ns per get (aggregate for multi) */
} point_t;

typedef struct {
    mpib_get_mode_t mode;
    mpib_opts_t o;
    mpib_pxs_t p;
    mpib_win_t win;
    mpib_ucp_t *ucp;
    MPI_Comm cons; /* the consumers (ranks 1..N-1) */
    int ncons;
    mpib_osc_t osc;
    char impl[64], mpi_name[32], ucp_name[32], am_name[32];
    point_t pts[BENCH_MAX_SIZES];
    int npts;
} suite_t;

static const char *bench_of(mpib_get_mode_t m)
{
    return m == MPIB_GET_LATENCY ? "get_latency" : m == MPIB_GET_BW ? "get_bw" : "multi_get_bw";
}

static const char *prog_of(mpib_get_mode_t m)
{
    return m == MPIB_GET_LATENCY ? "pxs_get_latency"
           : m == MPIB_GET_BW    ? "pxs_get_bw"
                                 : "pxs_multi_get_bw";
}

static int window_for(const suite_t *s, size_t size)
{
    if (s->mode == MPIB_GET_LATENCY) return 1;
    size_t w = WINDOW_BYTES / size;
    return w >= BENCH_WINDOW_MAX ? BENCH_WINDOW_MAX : w < 1 ? 1 : (int)w;
}

/* ------------------------------------------------------------------ */
/* the owner (rank 0)                                                   */

static void owner_size(suite_t *s, uint8_t *obj, size_t size)
{
    pxs_proxy_t proxy;
    bench_fill_pattern(obj, size, size);
    bench_fill_pattern(s->win.base, size, size);
    mpib_win_sync(&s->win);
    uint8_t *ub = mpib_ucp_owner_buf(s->ucp);
    if (ub) bench_fill_pattern(ub, size, size);
    mpib_put(&s->p, obj, size, &proxy);
    for (int r = 1; r < s->p.size; r++) {
        pxs_status_t st = pxs_mpi_send_proxy(&proxy, r, MPIB_TAG_PROXY, MPI_COMM_WORLD);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_send_proxy");
    }
    mpib_owner_t ow = {.p = &s->p, .u = s->ucp};
    if (mpib_serve(&ow, MPI_COMM_WORLD, s->ncons, MPIB_TIMEOUT_MS))
        mpib_die("a consumer failed at size %zu", size);
    pxs_status_t st = pxs_evict(s->p.store, &proxy);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict");
}

static void owner_run(suite_t *s)
{
    uint8_t *obj = mpib_obj_alloc(&s->p, s->o.alloc, s->o.max_size);
    for (int i = 0; i < s->o.cfg.nsizes; i++) owner_size(s, obj, s->o.cfg.sizes[i]);
    mpib_obj_free(&s->p, s->o.alloc, obj);
}

/* ------------------------------------------------------------------ */
/* the consumers: concurrent timing for multi_get_bw                    */

static double allreduce_max(double v, MPI_Comm comm)
{
    double out = 0;
    MPI_Request r;
    MPI_Iallreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, comm, &r);
    mpib_wait_req(&r, MPIB_TIMEOUT_MS, NULL, NULL);
    return out;
}

/* Every consumer runs n operations at once (after a barrier); the slowest
 * one's time is the batch's. */
static double joint_batch(const bench_timed_t *t, uint64_t n, MPI_Comm comm)
{
    mpib_barrier(comm);
    double t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        if (t->fn(t->arg)) mpib_die("a get failed in the multi-get test");
    return allreduce_max(bench_now_ns() - t0, comm);
}

/* bench_measure's calibration and ABBA order, over all consumers at once:
 * out[k] is ns per get of the whole group (bytes of all consumers / time). */
static void measure_multi(bench_timed_t *ts, int n, const bench_cfg_t *cfg, MPI_Comm comm,
                          int ncons, bench_stat_t *out)
{
    for (int k = 0; k < n; k++) {
        uint64_t it = 1;
        double ns = 0;
        for (;;) {
            ns = joint_batch(&ts[k], it, comm);
            if (ns >= cfg->rep_ns / 4 || it >= BENCH_MAX_ITERS) break;
            it *= 2;
        }
        double want = cfg->rep_ns / (ns / (double)it);
        ts[k].iters = want < 1 ? 1 : want > BENCH_MAX_ITERS ? BENCH_MAX_ITERS : (uint64_t)want;
    }
    for (int r = 0; r < cfg->reps; r++)
        for (int j = 0; j < n; j++) {
            int k = r % 2 ? n - 1 - j : j;
            double ns = joint_batch(&ts[k], ts[k].iters, comm);
            ts[k].samples[r] = ns / (double)ts[k].iters / ncons;
        }
    for (int k = 0; k < n; k++) out[k] = bench_stats_of(ts[k].samples, cfg->reps);
}

/* ------------------------------------------------------------------ */
/* the consumers                                                        */

static void consumer_size(suite_t *s, size_t size, uint8_t *dst, uint8_t *want)
{
    pxs_proxy_t proxy;
    point_t *pt = &s->pts[s->npts];
    int w = window_for(s, size);
    mpib_recv_proxy(&proxy, 0, MPIB_TAG_PROXY, MPI_COMM_WORLD);
    bench_fill_pattern(want, size, size);

    bench_resolve_arg_t ra = {.ctx = s->p.ctx, .proxy = &proxy, .dst = dst, .size = size,
                              .window = w};
    pxs_handle_t *h;
    pxs_status_t hst = pxs_handle_open(s->p.ctx, &proxy, &h);
    if (hst != PXS_OK) mpib_die_pxs(hst, "pxs_handle_open");
    bench_read_arg_t rd = {.h = h, .dst = dst, .size = size, .window = w};
    mpib_get_arg_t ga = {.win = s->win.win, .target = 0, .dst = dst, .size = size, .window = w};
    mpib_ucp_arg_t ua = {.u = s->ucp, .dst = dst, .size = size, .window = w};
    bench_copy_arg_t ca = {.dst = dst, .src = want, .size = size};
    bench_timed_t ts[K_N] = {
        [K_PXS] = {.fn = w > 1 ? bench_op_resolve_window : bench_op_resolve, .arg = &ra},
        [K_READ] = {.fn = bench_op_read, .arg = &rd},
        [K_MPI] = {.fn = mpib_op_mpi_get, .arg = &ga},
        [K_UCP] = {.fn = mpib_op_ucp_get, .arg = &ua},
        [K_UCPAM] = {.fn = mpib_op_ucp_am_get, .arg = &ua},
        [K_COPY] = {.fn = bench_op_memcpy, .arg = &ca},
    };
    /* memcpy last, so that the ucp slot can be left out without gaps. */
    bench_timed_t run[K_N];
    int map[K_N], n = 0;
    for (int k = 0; k < K_N; k++) {
        if (k == K_UCP && !s->ucp) continue;
        if (k == K_UCPAM && !mpib_ucp_has_am(s->ucp)) continue;
        map[n] = k;
        run[n++] = ts[k];
    }
    static const char *const what[K_N] = {"pxs_resolve", "pxs_handle_read", "MPI_Get", "ucp_get",
                                         "ucp_am", "memcpy"};
    for (int j = 0; j < n; j++) {
        memset(dst, 0, size);
        if (bench_run_once(&run[j])) {
            if (map[j] == K_PXS) mpib_die_pxs(ra.st, "pxs_resolve");
            if (map[j] == K_READ) mpib_die_pxs(rd.st, "pxs_handle_read");
            mpib_die("%s failed at size %zu", what[map[j]], size);
        }
        mpib_check(dst, want, size, what[map[j]]);
    }
    bench_stat_t st[K_N];
    if (s->mode == MPIB_MULTI_GET_BW) {
        measure_multi(run, n, &s->o.cfg, s->cons, s->ncons, st);
    } else {
        int bad = bench_measure(run, n, &s->o.cfg, st);
        if (bad) {
            if (map[bad - 1] == K_PXS) mpib_die_pxs(ra.st, "pxs_resolve (timed)");
            if (map[bad - 1] == K_READ) mpib_die_pxs(rd.st, "pxs_handle_read (timed)");
            mpib_die("%s failed while timed at size %zu", what[map[bad - 1]], size);
        }
    }
    memset(pt, 0, sizeof *pt);
    pt->size = size;
    pt->window = w;
    for (int j = 0; j < n; j++) {
        int k = map[j];
        pt->s[k] = st[j];
        if (k != K_COPY) { /* per get: a window's time over its gets */
            pt->s[k].med /= w;
            pt->s[k].min /= w;
            pt->s[k].max /= w;
        }
    }
    s->npts++;
    pxs_handle_close(h); /* before the owner evicts */
    mpib_send_done(0, 0, MPI_COMM_WORLD);
}

static void consumer_run(suite_t *s)
{
    uint8_t *dst, *want;
    if (bench_point_buffers(s->o.max_size, &dst, &want)) mpib_die("out of memory");
    for (int i = 0; i < s->o.cfg.nsizes; i++) consumer_size(s, s->o.cfg.sizes[i], dst, want);
    free(dst);
    free(want);
}

/* ------------------------------------------------------------------ */
/* output                                                               */

static void print_header(const suite_t *s)
{
    const bench_cfg_t *c = &s->o.cfg;
    printf("# %s (pxs %s): connector %s, memory %s, %d ranks (%s)\n", prog_of(s->mode),
           pxs_version(), s->o.connector,
           s->o.alloc ? "alloc (pxs_alloc buffer, zero-copy put)"
                      : "user (malloc'd buffer, zero-copy put)",
           s->p.size, c->transport);
    printf("%s\n", s->osc.line);
    printf("# baselines in the same run: %s (%s window, lock_all once, MPI_Get%s + "
           "MPI_Win_flush), %s%s, memcpy\n",
           s->mpi_name, s->o.alloc ? "MPI_Win_allocate" : "MPI_Win_create over malloc",
           s->mode == MPIB_GET_LATENCY ? "" : " x W", s->ucp ? s->ucp_name : "(no UCX)",
           s->ucp ? (s->o.alloc ? " (UCP_MEM_MAP_ALLOCATE region)" : " (ordinary buffer)") : "");
    if (mpib_ucp_has_am(s->ucp))
        printf("# %s: raw UCP active-message gets of the same region (request, reply eager up "
               "to 256 KiB alone / 128 KiB among others, else rendezvous into the reader's "
               "buffer: the ucx connector's mechanism across nodes)\n", s->am_name);
    if (s->mode == MPIB_MULTI_GET_BW)
        printf("# %d consumers read the same object at once; aggregate MB/s = all their "
               "bytes / the slowest one's time\n", s->ncons);
    if (s->mode != MPIB_GET_LATENCY)
        printf("# W gets in flight, then a wait for all (W = min(64, 64 MiB / size))\n");
    printf("# pxs: pxs_resolve of the proxy each time; read: pxs_handle_read of a handle "
           "opened once per size (ratio r: baseline / read)\n");
    printf("# ratio: %s; median of %d reps, spread min-max\n",
           s->mode == MPIB_GET_LATENCY ? "baseline time / pxs time" : "pxs MB/s / baseline MB/s",
           c->reps);
}

static void print_table(const void *arg)
{
    const suite_t *s = arg;
    char sp[48];
    print_header(s);
    int lat = s->mode == MPIB_GET_LATENCY;
    int am = mpib_ucp_has_am(s->ucp);
    printf("%-10s%16s%20s%6s%12s%16s%8s%8s%16s%8s", "# Size",
           lat ? "Latency (us)" : "Bandwidth (MB/s)", "spread", "W", "read", s->mpi_name,
           "ratio", "r", s->ucp ? s->ucp_name : "-", "ratio");
    if (am) printf("%16s%8s", s->am_name, "ratio");
    printf("%14s%8s\n", "memcpy", "ratio");
    for (int i = 0; i < s->npts; i++) {
        const point_t *p = &s->pts[i];
        const bench_stat_t *t = p->s;
        double v[K_N];
        for (int k = 0; k < K_N; k++)
            v[k] = t[k].med <= 0 ? 0 : lat ? t[k].med / 1e3 : bench_mbps(p->size, t[k].med);
        if (lat) bench_spread_us(sp, sizeof sp, t[K_PXS]);
        else bench_spread_bw(sp, sizeof sp, p->size, t[K_PXS]);
        printf("%-10zu%16.2f%20s%6d%12.*f%16.2f%8.3f%8.3f", p->size, v[K_PXS], sp, p->window,
               lat ? 3 : 2, v[K_READ], v[K_MPI], t[K_MPI].med / t[K_PXS].med,
               t[K_MPI].med / t[K_READ].med);
        if (s->ucp) printf("%16.2f%8.3f", v[K_UCP], t[K_UCP].med / t[K_PXS].med);
        else printf("%16s%8s", "-", "-");
        if (am) printf("%16.2f%8.3f", v[K_UCPAM], t[K_UCPAM].med / t[K_PXS].med);
        printf("%14.2f%8.3f\n", v[K_COPY], t[K_COPY].med / t[K_PXS].med);
    }
    fflush(stdout);
}

static void emit_json(FILE *f, const void *arg)
{
    const suite_t *s = arg;
    const char *bn = bench_of(s->mode);
    const char *osc = s->o.alloc ? s->osc.allocate : s->osc.create;
    for (int i = 0; i < s->npts; i++) {
        const point_t *pt = &s->pts[i];
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"window\":%d,\"connector\":\"%s\",\"memory\":\"%s\",\"ranks\":%d,"
                 "\"osc\":\"%s\"", pt->window, s->o.connector, s->o.alloc ? "alloc" : "user",
                 s->p.size, osc);
        bench_json_get(f, &s->o.cfg, bn, s->impl, s->mpi_name, pt->size, pt->s[K_PXS],
                       pt->s[K_MPI], extra);
        char impl_read[80];
        snprintf(impl_read, sizeof impl_read, "%s-handle-read", s->impl);
        bench_json_get(f, &s->o.cfg, bn, impl_read, s->mpi_name, pt->size, pt->s[K_READ],
                       pt->s[K_MPI], extra);
        if (s->ucp)
            bench_json_get(f, &s->o.cfg, bn, s->impl, s->ucp_name, pt->size, pt->s[K_PXS],
                           pt->s[K_UCP], extra);
        if (mpib_ucp_has_am(s->ucp))
            bench_json_get(f, &s->o.cfg, bn, s->impl, s->am_name, pt->size, pt->s[K_PXS],
                           pt->s[K_UCPAM], extra);
        bench_json_get(f, &s->o.cfg, bn, s->impl, "memcpy", pt->size, pt->s[K_PXS],
                       pt->s[K_COPY], extra);
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* A reader's waits between measurements. With the ucx progress thread off
 * (as perf/run runs the suite), what a reader sends when the owner's
 * receive queue is full (a lease's release) waits in its own UCX send
 * queue until it calls pxs again, and the owner's evict waits for it (up
 * to its timeout). An application with the thread off must call pxs now
 * and then too; so readers do here, outside the timed loops. */
static void reader_idle(void *ctx) { pxs_progress(ctx); }

static int want_am; /* --ucp-am */

static int more_opt(int argc, char **argv, int *i)
{
    (void)argc;
    if (strcmp(argv[*i], "--ucp-am")) return 0;
    want_am = 1;
    return 1;
}

int mpib_get_main(int argc, char **argv, mpib_get_mode_t mode)
{
    static suite_t s; /* large: the points */
    static const char tail[] =
        "  --connector shm|ucx|mpi  the pxs store's connector (default shm)\n"
        "  --memory user|alloc      object in a malloc'd buffer or in pxs_alloc memory\n"
        "  --max-size N             largest size (default 64M)\n"
        "  --ucp-am                 also time raw UCP active-message gets (the ucx\n"
        "                           connector's mechanism across nodes)\n"
        "Run under mpirun: 2 ranks (multi: 2 or more; rank 0 owns, the others read).\n";
    bench_prog_t prog = {.name = prog_of(mode), .max_size = (size_t)64 << 20,
                         .quick_rep_ms = 4, .usage_tail = tail};
    MPI_Init(&argc, &argv);
    s.mode = mode;
    if (mpib_parse(argc, argv, &prog, "shm", more_opt, &s.o)) {
        MPI_Finalize();
        return 2;
    }
    int size, rank;
    if (mpib_ranks(prog.name, 2, mode == MPIB_MULTI_GET_BW ? 0 : 2, &rank, &size)) return 2;
    mpib_transport(&s.o.cfg, size);
    mpib_impl_name(s.impl, sizeof s.impl, &s.o);
    snprintf(s.mpi_name, sizeof s.mpi_name, "%s", s.o.alloc ? "MPI_Get-alloc" : "MPI_Get");
    snprintf(s.ucp_name, sizeof s.ucp_name, "%s", s.o.alloc ? "ucp_get-alloc" : "ucp_get");
    snprintf(s.am_name, sizeof s.am_name, "%s", s.o.alloc ? "ucp_am-alloc" : "ucp_am");
    mpib_pxs_open(&s.o, &s.p);
    if (rank) mpib_set_wait_idle(reader_idle, s.p.ctx);
    mpib_win_open(&s.win, s.o.alloc, s.o.max_size, MPI_COMM_WORLD, 0);
    mpib_ucp_open(&s.ucp, s.o.alloc, want_am, s.o.max_size, MPI_COMM_WORLD, 0);
    mpib_osc_describe(&s.osc, MPI_COMM_WORLD);
    MPI_Comm_split(MPI_COMM_WORLD, rank ? 1 : 0, rank, &s.cons);
    s.ncons = size - 1;
    if (rank == 0) owner_run(&s);
    else consumer_run(&s);
    int rc = 0;
    if (rank == 1) rc = bench_report(&s.o.cfg, print_table, emit_json, &s);
    mpib_barrier(MPI_COMM_WORLD);
    MPI_Comm_free(&s.cons);
    mpib_ucp_close(s.ucp, MPI_COMM_WORLD);
    mpib_win_close(&s.win);
    mpib_pxs_close(&s.p);
    MPI_Finalize();
    return rc ? 1 : 0;
}
