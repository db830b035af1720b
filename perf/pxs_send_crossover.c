/* pxs_send_crossover: where pxs_mpi_send should switch from sending the
 * bytes by value to sending a proxy, under mpirun (2 ranks).
 *
 * pxs_mpi_send sends len <= eager_max by value (one MPI message holding
 * the bytes) and larger buffers by proxy (zero-copy pxs_put into the store
 * of the chosen connector, the proxy in a message, the receiver resolves
 * into its buffer and acknowledges, the sender evicts). This program opens
 * two pxs_mpi_t on MPI_COMM_WORLD with the same connector, one with
 * eager_max = SIZE_MAX (always by value) and one with eager_max = 0
 * (always by proxy), and times, for each size, in ABBA-interleaved
 * repetitions (median reported), a ping-pong (osu_latency's shape: rank 0
 * sends, rank 1 receives into its buffer and sends the same size back;
 * latency = half the round trip):
 *
 *   by value   pxs_mpi_send / pxs_mpi_recv, forced by value;
 *   by proxy   pxs_mpi_send / pxs_mpi_recv, forced by proxy;
 *   MPI_Send   plain MPI_Send / MPI_Recv of the same bytes between the
 *              same preallocated buffers (the baseline).
 *
 * Both pxs paths and the baseline deliver the bytes into the receiver's
 * buffer; every (mode, size) is checked once, both ways, before timing.
 * The crossover printed is the smallest size at which by proxy is faster
 * than by value and from which it is faster at every larger size measured,
 * a size where it is slower by less than 10% counting as a tie (noise).
 *
 * PXS_MPI_EAGER_MAX would override the params (libpxs_mpi reads the
 * environment after them), so it is unset here; PXS_MPI_CONNECTOR, when
 * set and no --connector is given, chooses the connector (then unset).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench_mpi.h"


/* libpxs_mpi's default (include/pxs/mpi.h): eager_max SIZE_MAX, so by value
 * whatever one MPI message carries (its 16-byte header included). */
#define DEFAULT_BY_VALUE ((size_t)INT_MAX - 16)
#define TAG_DATA 7
#define TAG_CTRL 103
#define MAX_SIZE ((size_t)1 << 30) /* --sizes, with --max-size */
#define GRID_TOP ((size_t)64 << 20)

enum { M_VALUE, M_PROXY, M_MPI, M_N };
enum { CMD_RUN, CMD_CHECK, CMD_QUIT };

typedef struct {
    int32_t cmd, mode;
    uint64_t size, iters;
} ctrl_t;

typedef struct {
    size_t size;
    bench_stat_t s[M_N]; /* ns one way */
} point_t;

typedef struct {
    mpib_opts_t o;
    pxs_mpi_t *m[2]; /* by value, by proxy */
    int rank, peer;
    uint8_t *sbuf, *rbuf, *want;
    mpib_osc_t osc;
    const char *env_eager, *env_conn, *progress_thread;
    char load0[64], load1[64];
    point_t pts[BENCH_MAX_SIZES];
    int npts;
} bench_t;

static const char *const mode_name[M_N] = {"by value", "by proxy", "MPI_Send"};

/* ------------------------------------------------------------------ */
/* one message each way                                                 */

/* MPI_Test until done, no naps (MPI_Recv spins too); bounded. */
static void wait_spin(MPI_Request *req)
{
    double deadline = bench_now_ns() + MPIB_TIMEOUT_MS * 1e6;
    for (unsigned spins = 1;; spins++) {
        int flag = 0;
        if (MPI_Test(req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) mpib_die("MPI_Test failed");
        if (flag) return;
        if (!(spins & 1023) && bench_now_ns() > deadline)
            mpib_die("an MPI_Send/MPI_Recv did not complete within %d ms", MPIB_TIMEOUT_MS);
    }
}

static void send_one(bench_t *b, int mode, const void *buf, size_t size)
{
    if (mode == M_MPI) {
        MPI_Request r;
        if (MPI_Isend(buf, (int)size, MPI_BYTE, b->peer, TAG_DATA, MPI_COMM_WORLD, &r) !=
            MPI_SUCCESS)
            mpib_die("MPI_Isend failed");
        wait_spin(&r);
        return;
    }
    pxs_status_t st = pxs_mpi_send(b->m[mode], buf, size, b->peer, TAG_DATA);
    if (st != PXS_OK) mpib_die("pxs_mpi_send %s of %zu bytes: %s", mode_name[mode], size,
                               pxs_strerror(st));
}

static void recv_one(bench_t *b, int mode, void *buf, size_t size)
{
    if (mode == M_MPI) {
        MPI_Request r;
        if (MPI_Irecv(buf, (int)size, MPI_BYTE, b->peer, TAG_DATA, MPI_COMM_WORLD, &r) !=
            MPI_SUCCESS)
            mpib_die("MPI_Irecv failed");
        wait_spin(&r);
        return;
    }
    size_t len = 0;
    pxs_status_t st = pxs_mpi_recv(b->m[mode], buf, size, &len, b->peer, TAG_DATA,
                                   MPI_STATUS_IGNORE);
    if (st != PXS_OK) mpib_die("pxs_mpi_recv %s of %zu bytes: %s", mode_name[mode], size,
                               pxs_strerror(st));
    if (len != size) mpib_die("pxs_mpi_recv: %zu bytes, expected %zu", len, size);
}

/* ------------------------------------------------------------------ */
/* rank 0 drives, rank 1 echoes                                         */

static void send_ctrl(bench_t *b, int cmd, int mode, size_t size, uint64_t iters)
{
    ctrl_t c = {cmd, mode, size, iters};
    MPI_Send(&c, (int)sizeof c, MPI_BYTE, b->peer, TAG_CTRL, MPI_COMM_WORLD);
}

/* iters round trips; @return ns one way. */
static double batch(bench_t *b, int mode, size_t size, uint64_t iters)
{
    send_ctrl(b, CMD_RUN, mode, size, iters);
    double t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        send_one(b, mode, b->sbuf, size);
        recv_one(b, mode, b->rbuf, size);
    }
    return (bench_now_ns() - t0) / (double)iters / 2;
}

static void check(bench_t *b, int mode, size_t size)
{
    send_ctrl(b, CMD_CHECK, mode, size, 1);
    bench_fill_pattern(b->sbuf, size, size);
    memset(b->rbuf, 0, size);
    send_one(b, mode, b->sbuf, size);
    recv_one(b, mode, b->rbuf, size);
    bench_fill_pattern(b->want, size, size + 1);
    mpib_check(b->rbuf, b->want, size, mode_name[mode]);
}

static void echo_loop(bench_t *b)
{
    for (;;) {
        MPI_Status ms;
        ctrl_t c;
        mpib_wait_msg(b->peer, TAG_CTRL, MPI_COMM_WORLD, MPIB_TIMEOUT_MS, NULL, NULL, &ms);
        MPI_Recv(&c, (int)sizeof c, MPI_BYTE, b->peer, TAG_CTRL, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (c.cmd == CMD_QUIT) return;
        size_t size = (size_t)c.size;
        if (c.cmd == CMD_CHECK) {
            memset(b->rbuf, 0, size);
            recv_one(b, c.mode, b->rbuf, size);
            bench_fill_pattern(b->want, size, size);
            mpib_check(b->rbuf, b->want, size, mode_name[c.mode]);
            bench_fill_pattern(b->sbuf, size, size + 1);
            send_one(b, c.mode, b->sbuf, size);
            continue;
        }
        for (uint64_t i = 0; i < c.iters; i++) {
            recv_one(b, c.mode, b->rbuf, size);
            send_one(b, c.mode, b->sbuf, size);
        }
    }
}

static void measure_size(bench_t *b, size_t size)
{
    const bench_cfg_t *cfg = &b->o.cfg;
    point_t *pt = &b->pts[b->npts++];
    uint64_t iters[M_N];
    double samples[M_N][BENCH_MAX_REPS];
    pt->size = size;
    for (int k = 0; k < M_N; k++) {
        check(b, k, size);
        /* Calibrate (and warm up): double until a batch takes a quarter of
         * a repetition, then scale to one. */
        uint64_t n = 1;
        double ns;
        for (;;) {
            ns = batch(b, k, size, n) * 2 * (double)n;
            if (ns >= cfg->rep_ns / 4 || n >= BENCH_MAX_ITERS) break;
            n *= 2;
        }
        double want = cfg->rep_ns / (ns / (double)n);
        iters[k] = want < 1 ? 1 : want > BENCH_MAX_ITERS ? BENCH_MAX_ITERS : (uint64_t)want;
    }
    for (int r = 0; r < cfg->reps; r++)
        for (int j = 0; j < M_N; j++) {
            int k = r % 2 ? M_N - 1 - j : j;
            samples[k][r] = batch(b, k, size, iters[k]);
        }
    for (int k = 0; k < M_N; k++) pt->s[k] = bench_stats_of(samples[k], cfg->reps);
}

/* ------------------------------------------------------------------ */
/* output                                                               */

/* A size where by proxy is slower by less than this is a tie (noise on a
 * small, shared machine), not a reason to move the crossover up. */
#define TIE 1.10

/* Smallest index at which by proxy is faster and from which it is faster,
 * or at most TIE slower, at every larger size; npts when there is none. */
static int crossover_index(const bench_t *b)
{
    int i = b->npts;
    while (i > 0 && b->pts[i - 1].s[M_PROXY].med < TIE * b->pts[i - 1].s[M_VALUE].med) i--;
    while (i < b->npts && b->pts[i].s[M_PROXY].med >= b->pts[i].s[M_VALUE].med) i++;
    return i;
}

static void hsize(char *buf, size_t cap, size_t s)
{
    if (s >= ((size_t)1 << 20) && s % ((size_t)1 << 20) == 0)
        snprintf(buf, cap, "%zu MiB", s >> 20);
    else if (s >= 1024 && s % 1024 == 0) snprintf(buf, cap, "%zu KiB", s >> 10);
    else snprintf(buf, cap, "%zu B", s);
}

static const char *conn_default(void)
{
#ifdef PXS_HAVE_UCX
    return "shm on this node, else ucx";
#else
    return "shm on this node, else mpi";
#endif
}

static void print_table(const void *arg)
{
    const bench_t *b = arg;
    const bench_cfg_t *c = &b->o.cfg;
    printf("# pxs_send_crossover (pxs %s): pxs_mpi_send/pxs_mpi_recv ping-pong, connector %s "
           "(libpxs_mpi's default here: %s), 2 ranks (%s)\n", pxs_version(), b->o.connector,
           conn_default(), c->transport);
    printf("%s\n", b->osc.line);
    printf("# by value: eager_max = SIZE_MAX; by proxy: eager_max = 0 (pxs_mpi_params_t, two "
           "pxs_mpi_t on MPI_COMM_WORLD); default: by value up to %zu bytes (PXS_MPI_EAGER_MAX in the "
           "environment: %s%s); PXS_MPI_CONNECTOR: %s; PXS_UCX_PROGRESS_THREAD: %s\n",
           DEFAULT_BY_VALUE, b->env_eager ? b->env_eager : "unset",
           b->env_eager ? ", unset for this run" : "", b->env_conn ? b->env_conn : "unset",
           b->progress_thread ? b->progress_thread : "unset");
    printf("# baseline in the same run: MPI_Send/MPI_Recv (MPI_Isend/MPI_Irecv + spinning "
           "MPI_Test) between preallocated buffers; all three deliver into the receiver's "
           "buffer\n");
    printf("# latency one way = half a round trip; ratio = baseline time / pxs time, "
           "value/proxy > 1: by proxy faster; median of %d reps, spread min-max; load (1/5/15 "
           "min) at start %s, at end %s\n", c->reps, b->load0, b->load1);
    printf("%-10s%15s%20s%15s%20s%15s%20s%9s%9s%13s%8s%9s\n", "# Size", "by value (us)",
           "spread", "by proxy (us)", "spread", "MPI_Send (us)", "spread", "MPI/val",
           "MPI/pxy", "value/proxy", "faster", "default");
    for (int i = 0; i < b->npts; i++) {
        const point_t *p = &b->pts[i];
        const bench_stat_t *s = p->s;
        char sp[M_N][48];
        for (int k = 0; k < M_N; k++) bench_spread_us(sp[k], sizeof sp[k], s[k]);
        printf("%-10zu%15.2f%20s%15.2f%20s%15.2f%20s%9.3f%9.3f%13.3f%8s%9s\n", p->size,
               s[M_VALUE].med / 1e3, sp[M_VALUE], s[M_PROXY].med / 1e3, sp[M_PROXY],
               s[M_MPI].med / 1e3, sp[M_MPI], s[M_MPI].med / s[M_VALUE].med,
               s[M_MPI].med / s[M_PROXY].med, s[M_VALUE].med / s[M_PROXY].med,
               s[M_PROXY].med < s[M_VALUE].med ? "proxy" : "value",
               p->size <= DEFAULT_BY_VALUE ? "value" : "proxy");
    }
    int x = crossover_index(b), first = b->npts;
    for (int i = b->npts - 1; i >= 0; i--)
        if (b->pts[i].s[M_PROXY].med < b->pts[i].s[M_VALUE].med) first = i;
    char a[32], z[32], f[32];
    if (first < b->npts) hsize(f, sizeof f, b->pts[first].size);
    else snprintf(f, sizeof f, "no size");
    if (first == b->npts) {
        hsize(a, sizeof a, b->pts[b->npts - 1].size);
        printf("# crossover (connector %s): none: by value is faster at every size measured "
               "(up to %s): the default eager_max (SIZE_MAX) follows this run\n",
               b->o.connector, a);
    } else if (x == b->npts) {
        hsize(a, sizeof a, b->pts[b->npts - 1].size);
        printf("# crossover (connector %s): by proxy first faster at %s, but more than %.0f%% "
               "slower at some size up to the largest measured (%s)\n", b->o.connector, f,
               (TIE - 1) * 100, a);
    } else if (x == 0) {
        hsize(a, sizeof a, b->pts[0].size);
        printf("# crossover (connector %s): by proxy is faster at every size measured (from "
               "%s)\n", b->o.connector, a);
    } else {
        const point_t *lo = &b->pts[x - 1], *hi = &b->pts[x];
        /* where value/proxy crosses 1, interpolated linearly in size */
        double rlo = lo->s[M_VALUE].med / lo->s[M_PROXY].med;
        double rhi = hi->s[M_VALUE].med / hi->s[M_PROXY].med;
        double fr = rhi - rlo > 0 ? (1 - rlo) / (rhi - rlo) : 0.5;
        double at = (double)lo->size + fr * (double)(hi->size - lo->size);
        hsize(a, sizeof a, hi->size);
        hsize(z, sizeof z, lo->size);
        printf("# crossover (connector %s): by proxy first faster at %s; faster at every size "
               "from %s up, ties within %.0f%% aside (by value faster at %s; ratio 1 at about "
               "%.0f KiB, interpolated): an eager_max of %s would follow this run\n",
               b->o.connector, f, a, (TIE - 1) * 100, z, at / 1024, z);
    }
    printf("# the default picks the slower path at:");
    int wrong = 0;
    for (int i = 0; i < b->npts; i++) {
        const point_t *p = &b->pts[i];
        int proxy_faster = p->s[M_PROXY].med < p->s[M_VALUE].med;
        if (proxy_faster == (p->size > DEFAULT_BY_VALUE)) continue;
        hsize(a, sizeof a, p->size);
        printf("%s %s (%.2fx)", wrong++ ? "," : "", a,
               proxy_faster ? p->s[M_VALUE].med / p->s[M_PROXY].med
                            : p->s[M_PROXY].med / p->s[M_VALUE].med);
    }
    printf("%s\n", wrong ? " (slower/faster path time)" : " no size");
    fflush(stdout);
}

static void emit_json(FILE *f, const void *arg)
{
    const bench_t *b = arg;
    int x = crossover_index(b);
    long long cross = x == b->npts ? -1 : (long long)b->pts[x].size; /* -1: none */
    for (int i = 0; i < b->npts; i++) {
        const point_t *p = &b->pts[i];
        char extra[256], iv[64], ip[64];
        snprintf(extra, sizeof extra,
                 "\"connector\":\"%s\",\"ranks\":2,\"by_value_default_max\":%zu,"
                 "\"crossover\":%lld,\"shape\":\"ping-pong\"",
                 b->o.connector, DEFAULT_BY_VALUE, cross);
        snprintf(iv, sizeof iv, "pxs-send-value-%s", b->o.connector);
        snprintf(ip, sizeof ip, "pxs-send-proxy-%s", b->o.connector);
        const struct {
            const char *impl, *base;
            int v, b;
        } rec[] = {{iv, "MPI_Send", M_VALUE, M_MPI},
                   {ip, "MPI_Send", M_PROXY, M_MPI},
                   {ip, "pxs-send-value", M_PROXY, M_VALUE}};
        for (size_t j = 0; j < sizeof rec / sizeof rec[0]; j++) {
            const bench_stat_t *v = &p->s[rec[j].v], *w = &p->s[rec[j].b];
            bench_record_t r = {"send_latency", rec[j].impl, rec[j].base, "us", p->size,
                                v->med / 1e3, v->min / 1e3, v->max / 1e3, 1, w->med / 1e3,
                                w->min / 1e3, w->max / 1e3, extra};
            bench_json_record(f, &b->o.cfg, &r);
        }
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

static int has_opt(int argc, char **argv, const char *opt)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], opt)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static bench_t b;
    static const char tail[] =
        "  --connector shm|ucx|mpi  pxs_mpi_send's connector (default: PXS_MPI_CONNECTOR,\n"
        "                           else shm: libpxs_mpi's choice for ranks on one node)\n"
        "  --max-size N             largest size (default 64M; up to 1G with --sizes)\n"
        "Sizes: 1 KiB to 64 MiB in powers of 2 (--quick: powers of 4 to 1 MiB).\n"
        "Run under mpirun with 2 ranks.\n";
    bench_prog_t prog = {.name = "pxs_send_crossover", .max_size = MAX_SIZE,
                         .quick_rep_ms = 4, .usage_tail = tail};
    MPI_Init(&argc, &argv);
    b.env_eager = getenv("PXS_MPI_EAGER_MAX");
    b.env_conn = getenv("PXS_MPI_CONNECTOR");
    b.progress_thread = getenv("PXS_UCX_PROGRESS_THREAD");
    const char *def = b.env_conn && (!strcmp(b.env_conn, "shm") || !strcmp(b.env_conn, "ucx") ||
                                     !strcmp(b.env_conn, "mpi"))
                          ? b.env_conn
                          : "shm"; /* what pxs_mpi_send picks for a rank on its node */
    if (mpib_parse(argc, argv, &prog, def, NULL, &b.o)) {
        MPI_Finalize();
        return 2;
    }
    if (!has_opt(argc, argv, "--sizes")) { /* this program's own grid */
        bench_cfg_t *c = &b.o.cfg;
        c->nsizes = 0;
        size_t top = c->quick ? ((size_t)1 << 20) : GRID_TOP;
        for (size_t s = 1024; s <= top && s <= b.o.max_size && c->nsizes < BENCH_MAX_SIZES;
             s *= c->quick ? 4 : 2)
            c->sizes[c->nsizes++] = s;
        if (!c->nsizes) {
            int r0 = 0;
            MPI_Comm_rank(MPI_COMM_WORLD, &r0);
            if (!r0)
                fprintf(stderr, "pxs_send_crossover: no size left under --max-size "
                                "(from 1 KiB)\n");
            MPI_Finalize();
            return 2;
        }
        b.o.max_size = c->sizes[c->nsizes - 1];
    }
    /* The params must rule: libpxs_mpi reads these after them. Keep copies
     * for the header (getenv's strings die with unsetenv). */
    if (b.env_eager) b.env_eager = strdup(b.env_eager);
    if (b.env_conn) b.env_conn = strdup(b.env_conn);
    unsetenv("PXS_MPI_EAGER_MAX");
    unsetenv("PXS_MPI_CONNECTOR");

    int size;
    if (mpib_ranks(prog.name, 2, 2, &b.rank, &size)) return 2;
    b.peer = 1 - b.rank;
    mpib_read_load(b.load0, sizeof b.load0);
    mpib_transport(&b.o.cfg, size);
    for (int i = 0; i < 2; i++) {
        pxs_mpi_params_t mp = {.field_mask = PXS_MPI_PARAM_CONNECTOR | PXS_MPI_PARAM_EAGER_MAX,
                               .connector = b.o.connector,
                               .eager_max = i == 0 ? SIZE_MAX : 0};
        pxs_status_t st = pxs_mpi_init(MPI_COMM_WORLD, &mp, &b.m[i]);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_init");
    }
    mpib_osc_describe(&b.osc, MPI_COMM_WORLD);
    b.sbuf = bench_alloc_faulted(b.o.max_size);
    b.rbuf = bench_alloc_faulted(b.o.max_size);
    b.want = bench_alloc_faulted(b.o.max_size);
    if (!b.sbuf || !b.rbuf || !b.want) mpib_die("out of memory");
    mpib_barrier(MPI_COMM_WORLD);

    if (b.rank == 0) {
        for (int i = 0; i < b.o.cfg.nsizes; i++) measure_size(&b, b.o.cfg.sizes[i]);
        send_ctrl(&b, CMD_QUIT, 0, 0, 0);
    } else {
        echo_loop(&b);
    }
    mpib_read_load(b.load1, sizeof b.load1);
    int rc = b.rank == 0 ? bench_report(&b.o.cfg, print_table, emit_json, &b) : 0;
    mpib_barrier(MPI_COMM_WORLD);
    for (int i = 0; i < 2; i++) {
        pxs_status_t st = pxs_mpi_finalize(b.m[i], MPIB_TIMEOUT_MS);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_finalize");
    }
    free(b.sbuf);
    free(b.rbuf);
    free(b.want);
    free((void *)b.env_eager);
    free((void *)b.env_conn);
    MPI_Finalize();
    return rc ? 1 : 0;
}
