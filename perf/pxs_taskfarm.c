/* pxs_taskfarm: an MPI master-worker task farm moving large inputs, by
 * value and by proxy, in the same run (bench "taskfarm" of PERF.md).
 *
 * Ranks: 0 is the master, 1..P produce inputs (--producers, default 1),
 * the rest are workers (at least one). Each run farms --tasks inputs of one
 * size; a task is "checksum the input and compare with the sum its
 * producer wrote in its header" (a small compute that reads every byte).
 *
 *   by-value  producer --MPI_Send(bytes)--> master --MPI_Send(bytes)-->
 *             worker (the master double-buffers: it receives the next input
 *             while the last one is sent);
 *   by-proxy  producer: zero-copy pxs_put of the input, pxs_mpi_send_proxy
 *             to the master --proxy--> worker; the worker resolves it
 *             straight from the producer (pxs_resolve, or with --resolve view
 *             pxs_view_acquire), checksums it, and tells the producer (an
 *             MPI message) that it may evict and reuse the buffer.
 *
 * Producers make their inputs ahead, outside the timed runs (a pool of
 * filled buffers, workers + 2 of them); per task they only stamp a header,
 * so the makespan is the data movement and the farm, not input generation.
 * Reported per mode and size: makespan (master's clock, from a barrier to
 * the last result), bytes through the master per task (what it received:
 * the input or the proxy, and the worker's small result message; it sends
 * on as much), and the workers' idle time (waiting for a task). Median of
 * --reps runs, the two modes interleaved ABBA.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_mpi.h"

#define TASKS_DEFAULT 32
#define TASKS_QUICK 16
#define TASKS_MAX 100000
#define INPUT_MAGIC 0x7078737461736b31ull /* "pxstask1" */
#define TF_CONNECTOR "shm" /* the best of shm, ucx, mpi measured here: see the report */

enum { TAG_INPUT = 201, TAG_READY = 202, TAG_TASK = 203, TAG_STOP = 204, TAG_EVICT = 205 };
enum { MODE_VALUE, MODE_PROXY, MODE_N };

/* The start of every input: who made it, and the sum of the rest. */
typedef struct {
    uint64_t magic;
    int32_t producer, slot, task, pad;
    uint64_t body_sum;
    uint64_t reserved[4];
} input_hdr_t; /* 64 bytes: the body stays 64-byte aligned */

/* A worker's word to the master: ready for a task, with the last result. */
typedef struct {
    int32_t task; /* -1: none yet */
    int32_t ok;
    uint64_t sum;
} ready_t;

typedef struct {
    double makespan_s;
    double master_in, master_out; /* bytes per task */
    double idle_s;                /* per worker, mean */
} run_t;

typedef struct {
    size_t size;
    run_t runs[MODE_N][BENCH_MAX_REPS];
    bench_stat_t makespan[MODE_N]; /* in ns */
    double master_in[MODE_N], master_out[MODE_N], idle_frac[MODE_N], idle_s[MODE_N];
} point_t;

typedef struct {
    mpib_opts_t o;
    mpib_pxs_t p;
    int tasks, producers, workers, view;
    int rank, size;
    /* producer */
    int nslots;
    uint8_t **slot_buf;
    uint64_t *slot_sum;
    pxs_proxy_t *slot_proxy;
    int *slot_busy;
    /* master and workers */
    uint8_t *mbuf[2], *wbuf;
    point_t pts[BENCH_MAX_SIZES];
    int npts;
    char impl[32];
} farm_t;

static farm_t F;

/* ------------------------------------------------------------------ */
/* options                                                              */

static int more_opt(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) return 0; /* every option here takes a value */
    const char *a = argv[*i], *v = argv[*i + 1];
    char *end;
    if (!strcmp(a, "--tasks") || !strcmp(a, "--producers")) {
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || n < 1 || n > TASKS_MAX) {
            fprintf(stderr, "pxs_taskfarm: %s wants a count\n", a);
            return -1;
        }
        if (a[2] == 't') F.tasks = (int)n;
        else F.producers = (int)n;
    } else if (!strcmp(a, "--resolve")) {
        if (strcmp(v, "copy") && strcmp(v, "view")) {
            fprintf(stderr, "pxs_taskfarm: --resolve wants copy or view\n");
            return -1;
        }
        F.view = !strcmp(v, "view");
    } else {
        return 0;
    }
    *i += 1;
    return 1;
}

/* --sizes takes MiB here ("1,4,16,64"): rewritten into bytes for
 * bench_parse_args. */
static char **sizes_in_bytes(int argc, char **argv, int *given)
{
    static char buf[512];
    char **av = malloc((size_t)(argc + 1) * sizeof *av);
    if (!av) return NULL;
    *given = 0;
    for (int i = 0; i < argc; i++) {
        av[i] = argv[i];
        if (i > 0 && !strcmp(argv[i - 1], "--sizes")) {
            size_t n = 0;
            buf[0] = 0;
            *given = 1;
            for (const char *p = argv[i]; *p && n < sizeof buf - 24;) {
                char *end;
                unsigned long long mib = strtoull(p, &end, 10);
                if (end == p) break;
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%llu", n ? "," : "",
                                      mib << 20);
                p = *end == ',' ? end + 1 : end;
                if (*end && *end != ',') break;
            }
            av[i] = buf;
        }
    }
    av[argc] = NULL;
    return av;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static void nap(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

static uint64_t body_sum(const uint8_t *buf, size_t size)
{
    const uint64_t *w = (const uint64_t *)(const void *)(buf + sizeof(input_hdr_t));
    size_t n = (size - sizeof(input_hdr_t)) / 8;
    uint64_t a = 0, b = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2) { /* two chains: the adds overlap */
        a += w[i];
        b += w[i + 1];
    }
    if (i < n) a += w[i];
    return a ^ (b * 0x9e3779b97f4a7c15ull);
}

static int producer_of(int task) { return 1 + task % F.producers; }

static void send_bounded(const void *buf, size_t len, int dest, int tag)
{
    MPI_Request r;
    if (MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        mpib_die("MPI_Isend failed");
    mpib_wait_req(&r, MPIB_TIMEOUT_MS, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* producer                                                             */

static void producer_setup(size_t max)
{
    F.nslots = F.workers + 2;
    F.slot_buf = calloc((size_t)F.nslots, sizeof *F.slot_buf);
    F.slot_sum = calloc((size_t)F.nslots, sizeof *F.slot_sum);
    F.slot_proxy = calloc((size_t)F.nslots, sizeof *F.slot_proxy);
    F.slot_busy = calloc((size_t)F.nslots, sizeof *F.slot_busy);
    if (!F.slot_buf || !F.slot_sum || !F.slot_proxy || !F.slot_busy) mpib_die("out of memory");
    for (int s = 0; s < F.nslots; s++) F.slot_buf[s] = mpib_obj_alloc(&F.p, F.o.alloc, max);
}

/* Inputs of this size, made ahead of the timed runs. */
static void producer_fill(size_t size)
{
    for (int s = 0; s < F.nslots; s++) {
        bench_fill_pattern(F.slot_buf[s], size, size + (size_t)s * 7 + (size_t)F.rank);
        F.slot_sum[s] = body_sum(F.slot_buf[s], size);
    }
}

static void stamp(int slot, int task)
{
    input_hdr_t h = {.magic = INPUT_MAGIC, .producer = F.rank, .slot = slot, .task = task,
                     .body_sum = F.slot_sum[slot]};
    memcpy(F.slot_buf[slot], &h, sizeof h);
}

static void producer_idle(void *arg)
{
    (void)arg;
    pxs_progress(F.p.ctx);
    nap();
}

/* A worker is done with one of our inputs: evict it, free its slot. */
static void producer_reap(void)
{
    MPI_Status ms;
    int slot = -1;
    mpib_wait_msg(MPI_ANY_SOURCE, TAG_EVICT, MPI_COMM_WORLD, MPIB_TIMEOUT_MS, producer_idle, NULL,
                  &ms);
    MPI_Recv(&slot, 1, MPI_INT, ms.MPI_SOURCE, TAG_EVICT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (slot < 0 || slot >= F.nslots || !F.slot_busy[slot]) mpib_die("bad evict slot %d", slot);
    pxs_status_t st = pxs_evict(F.p.store, &F.slot_proxy[slot]);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict");
    F.slot_busy[slot] = 0;
}

static void producer_run(int mode, size_t size)
{
    int busy = 0;
    for (int t = 0; t < F.tasks; t++) {
        if (producer_of(t) != F.rank) continue;
        if (mode == MODE_VALUE) {
            stamp(0, t);
            send_bounded(F.slot_buf[0], size, 0, TAG_INPUT);
            continue;
        }
        while (busy == F.nslots) {
            producer_reap();
            busy--;
        }
        int s = 0;
        while (F.slot_busy[s]) s++;
        stamp(s, t);
        mpib_put(&F.p, F.slot_buf[s], size, &F.slot_proxy[s]);
        F.slot_busy[s] = 1;
        busy++;
        pxs_status_t st = pxs_mpi_send_proxy(&F.slot_proxy[s], 0, TAG_INPUT, MPI_COMM_WORLD);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_send_proxy");
    }
    for (; busy > 0; busy--) producer_reap();
}

/* ------------------------------------------------------------------ */
/* master                                                               */

static void master_run(int mode, size_t size, run_t *out)
{
    double in = 0, outb = 0;
    MPI_Request sent[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    pxs_proxy_t proxy;
    int tasks_done = 0, stopped = 0;
    double t0 = bench_now_ns();
    for (int t = 0; t < F.tasks || stopped < F.workers; t++) {
        MPI_Status ms;
        if (t < F.tasks) { /* the next input, from whichever producer has one */
            mpib_wait_msg(MPI_ANY_SOURCE, TAG_INPUT, MPI_COMM_WORLD, MPIB_TIMEOUT_MS, NULL, NULL,
                          &ms);
            if (mode == MODE_VALUE) {
                mpib_wait_req(&sent[t % 2], MPIB_TIMEOUT_MS, NULL, NULL); /* buffer free */
                MPI_Recv(F.mbuf[t % 2], (int)size, MPI_BYTE, ms.MPI_SOURCE, TAG_INPUT,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                in += (double)size;
            } else {
                pxs_status_t st =
                    pxs_mpi_recv_proxy(&proxy, ms.MPI_SOURCE, TAG_INPUT, MPI_COMM_WORLD,
                                       MPIB_TIMEOUT_MS, MPI_STATUS_IGNORE);
                if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_recv_proxy (master)");
                in += (double)pxs_proxy_len(&proxy);
            }
        }
        /* A worker that is ready, with its last result. */
        ready_t rd;
        mpib_wait_msg(MPI_ANY_SOURCE, TAG_READY, MPI_COMM_WORLD, MPIB_TIMEOUT_MS, NULL, NULL, &ms);
        MPI_Recv(&rd, (int)sizeof rd, MPI_BYTE, ms.MPI_SOURCE, TAG_READY, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        in += sizeof rd;
        if (rd.task >= 0) {
            if (!rd.ok) mpib_die("task %d: wrong checksum at worker %d", rd.task, ms.MPI_SOURCE);
            tasks_done++;
        }
        if (t >= F.tasks) {
            MPI_Send(NULL, 0, MPI_BYTE, ms.MPI_SOURCE, TAG_STOP, MPI_COMM_WORLD);
            stopped++;
            continue;
        }
        if (mode == MODE_VALUE) {
            MPI_Isend(F.mbuf[t % 2], (int)size, MPI_BYTE, ms.MPI_SOURCE, TAG_TASK,
                      MPI_COMM_WORLD, &sent[t % 2]);
            outb += (double)size;
        } else {
            pxs_status_t st = pxs_mpi_send_proxy(&proxy, ms.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
            if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_send_proxy (master)");
            outb += (double)pxs_proxy_len(&proxy);
        }
    }
    for (int i = 0; i < 2; i++) mpib_wait_req(&sent[i], MPIB_TIMEOUT_MS, NULL, NULL);
    double t1 = bench_now_ns();
    if (tasks_done != F.tasks) mpib_die("%d of %d tasks came back", tasks_done, F.tasks);
    out->makespan_s = (t1 - t0) / 1e9;
    out->master_in = in / F.tasks;
    out->master_out = outb / F.tasks;
}

/* ------------------------------------------------------------------ */
/* worker                                                               */

/* One task's input (already announced by ms), checked; @return ok. */
static int worker_task(int mode, size_t size, const MPI_Status *ms, ready_t *rd)
{
    const uint8_t *data = F.wbuf;
    pxs_view_t *view = NULL;
    pxs_proxy_t proxy;
    if (mode == MODE_VALUE) {
        MPI_Recv(F.wbuf, (int)size, MPI_BYTE, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        pxs_status_t st = pxs_mpi_recv_proxy(&proxy, 0, TAG_TASK, MPI_COMM_WORLD, MPIB_TIMEOUT_MS,
                                         MPI_STATUS_IGNORE);
        if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_recv_proxy (worker)");
        if (F.view) {
            st = pxs_view_acquire(F.p.ctx, &proxy, &view);
            if (st != PXS_OK) mpib_die_pxs(st, "pxs_view_acquire");
            data = pxs_view_data(view);
        } else {
            st = pxs_resolve(F.p.ctx, &proxy, F.wbuf, size, NULL);
            if (st != PXS_OK) mpib_die_pxs(st, "pxs_resolve");
        }
    }
    (void)ms;
    input_hdr_t h;
    memcpy(&h, data, sizeof h);
    rd->task = h.task;
    rd->sum = body_sum(data, size);
    rd->ok = h.magic == INPUT_MAGIC && rd->sum == h.body_sum;
    if (view) pxs_view_release(view);
    if (mode == MODE_PROXY) { /* the producer may evict and reuse the buffer */
        int slot = h.slot;
        if (h.magic != INPUT_MAGIC || h.producer < 1 || h.producer > F.producers)
            mpib_die("input header garbled");
        MPI_Send(&slot, 1, MPI_INT, h.producer, TAG_EVICT, MPI_COMM_WORLD);
    }
    return rd->ok;
}

static void worker_run(int mode, size_t size, double *idle_s)
{
    ready_t rd = {.task = -1, .ok = 1};
    double idle = 0;
    for (int n = 0; n <= TASKS_MAX; n++) {
        double w0 = bench_now_ns();
        MPI_Send(&rd, (int)sizeof rd, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
        MPI_Status ms;
        mpib_wait_msg(0, MPI_ANY_TAG, MPI_COMM_WORLD, MPIB_TIMEOUT_MS, NULL, NULL, &ms);
        idle += bench_now_ns() - w0;
        if (ms.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            break;
        }
        if (ms.MPI_TAG != TAG_TASK) mpib_die("unexpected tag %d from the master", ms.MPI_TAG);
        worker_task(mode, size, &ms, &rd);
    }
    *idle_s = idle / 1e9;
}

/* ------------------------------------------------------------------ */
/* runs                                                                 */

static void one_run(int mode, size_t size, run_t *out)
{
    double idle = 0, idle_sum = 0;
    memset(out, 0, sizeof *out);
    mpib_barrier(MPI_COMM_WORLD);
    if (F.rank == 0) master_run(mode, size, out);
    else if (F.rank <= F.producers) producer_run(mode, size);
    else worker_run(mode, size, &idle);
    MPI_Request r;
    MPI_Ireduce(&idle, &idle_sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD, &r);
    mpib_wait_req(&r, MPIB_TIMEOUT_MS, NULL, NULL);
    out->idle_s = idle_sum / F.workers;
}

static void run_size(size_t size)
{
    point_t *pt = &F.pts[F.npts++];
    pt->size = size;
    if (F.rank >= 1 && F.rank <= F.producers) producer_fill(size);
    /* One untimed run of each mode first: connections, registrations. */
    run_t warm;
    one_run(MODE_VALUE, size, &warm);
    one_run(MODE_PROXY, size, &warm);
    for (int r = 0; r < F.o.cfg.reps; r++)
        for (int j = 0; j < MODE_N; j++) {
            int m = r % 2 ? MODE_N - 1 - j : j;
            one_run(m, size, &pt->runs[m][r]);
        }
    if (F.rank) return;
    for (int m = 0; m < MODE_N; m++) {
        double ms[BENCH_MAX_REPS];
        double idle = 0;
        for (int r = 0; r < F.o.cfg.reps; r++) {
            ms[r] = pt->runs[m][r].makespan_s * 1e9;
            idle += pt->runs[m][r].idle_s / pt->runs[m][r].makespan_s;
            pt->idle_s[m] += pt->runs[m][r].idle_s;
        }
        pt->makespan[m] = bench_stats_of(ms, F.o.cfg.reps);
        pt->master_in[m] = pt->runs[m][0].master_in;
        pt->master_out[m] = pt->runs[m][0].master_out;
        pt->idle_frac[m] = idle / F.o.cfg.reps;
        pt->idle_s[m] /= F.o.cfg.reps;
    }
}

/* ------------------------------------------------------------------ */
/* output                                                               */

static const point_t *target_point(void)
{
    for (int i = 0; i < F.npts; i++)
        if (F.pts[i].size == (size_t)16 << 20) return &F.pts[i];
    return NULL;
}

static void print_table(const void *arg)
{
    (void)arg;
    printf("# pxs_taskfarm (pxs %s): %d ranks: master 0, producers 1-%d, workers %d-%d; "
           "%d tasks per run\n", pxs_version(), F.size, F.producers, F.producers + 1,
           F.size - 1, F.tasks);
    printf("# by-proxy: connector %s (default: the best of shm, ucx, mpi measured on this "
           "machine), memory %s, worker %s; by-value: MPI_Send through the master\n",
           F.o.connector, F.o.alloc ? "alloc (pxs_alloc)" : "user (malloc)",
           F.view ? "views (pxs_view_acquire)" : "resolves into its buffer (pxs_resolve)");
    printf("# makespan: median of %d runs (spread min-max), modes interleaved ABBA; "
           "B/task: bytes the master received per task\n# (it sends on as many); idle: "
           "workers' mean time waiting for a task, share of the makespan\n", F.o.cfg.reps);
    printf("%-10s%14s%18s%14s%18s%10s%14s%12s%10s%10s\n", "# Size", "by-value (s)", "spread",
           "by-proxy (s)", "spread", "speedup", "B/task value", "B/task pxy", "idle val",
           "idle pxy");
    for (int i = 0; i < F.npts; i++) {
        const point_t *p = &F.pts[i];
        const bench_stat_t *v = &p->makespan[MODE_VALUE], *x = &p->makespan[MODE_PROXY];
        char s1[48], s2[48];
        snprintf(s1, sizeof s1, "%.4f-%.4f", v->min / 1e9, v->max / 1e9);
        snprintf(s2, sizeof s2, "%.4f-%.4f", x->min / 1e9, x->max / 1e9);
        printf("%-10zu%14.4f%18s%14.4f%18s%10.2f%14.0f%12.0f%9.0f%%%9.0f%%\n", p->size,
               v->med / 1e9, s1, x->med / 1e9, s2, v->med / x->med, p->master_in[MODE_VALUE],
               p->master_in[MODE_PROXY], 100 * p->idle_frac[MODE_VALUE],
               100 * p->idle_frac[MODE_PROXY]);
    }
    const point_t *t = target_point();
    if (t && F.size == 4) {
        double sp = t->makespan[MODE_VALUE].med / t->makespan[MODE_PROXY].med;
        int met = sp >= 3 && t->master_in[MODE_PROXY] <= 1024;
        printf("# target (4 ranks, 16 MiB: by-proxy makespan >= 3x faster, <= 1 KiB per task "
               "through the master): %s (speedup %.2f, %.0f B/task)\n",
               met ? "MET" : "MISSED", sp, t->master_in[MODE_PROXY]);
    } else {
        printf("# target (4 ranks, 16 MiB) not measured in this run\n");
    }
    fflush(stdout);
}

static void emit_json(FILE *f, const void *arg)
{
    (void)arg;
    for (int i = 0; i < F.npts; i++) {
        const point_t *p = &F.pts[i];
        const bench_stat_t *v = &p->makespan[MODE_VALUE], *x = &p->makespan[MODE_PROXY];
        char extra[640];
        snprintf(extra, sizeof extra,
                 "\"tasks\":%d,\"ranks\":%d,\"producers\":%d,\"workers\":%d,"
                 "\"connector\":\"%s\",\"memory\":\"%s\",\"resolve\":\"%s\","
                 "\"master_bytes_per_task\":%.0f,\"baseline_master_bytes_per_task\":%.0f,"
                 "\"worker_idle_s\":%.6g,\"baseline_worker_idle_s\":%.6g,"
                 "\"worker_idle_frac\":%.4f,\"baseline_worker_idle_frac\":%.4f",
                 F.tasks, F.size, F.producers, F.workers, F.o.connector,
                 F.o.alloc ? "alloc" : "user", F.view ? "view" : "copy",
                 p->master_in[MODE_PROXY], p->master_in[MODE_VALUE], p->idle_s[MODE_PROXY],
                 p->idle_s[MODE_VALUE], p->idle_frac[MODE_PROXY], p->idle_frac[MODE_VALUE]);
        bench_record_t r = {"taskfarm", F.view ? "pxs-proxy-view" : "pxs-proxy", "by-value",
                            "s", p->size,
                            x->med / 1e9, x->min / 1e9, x->max / 1e9, 1,
                            v->med / 1e9, v->min / 1e9, v->max / 1e9, extra};
        bench_json_record(f, &F.o.cfg, &r);
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

int main(int argc, char **argv)
{
    static const char tail[] =
        "  --sizes LIST             input sizes in MiB (default 1,4,16,64; quick 1,16)\n"
        "  --tasks N                tasks per run (default 32, quick 16)\n"
        "  --producers N            producer ranks (default 1)\n"
        "  --connector shm|ucx|mpi  the producers' store (default " TF_CONNECTOR ")\n"
        "  --memory user|alloc      inputs in malloc'd or pxs_alloc memory (default alloc)\n"
        "  --resolve copy|view      workers resolve into a buffer, or view (shm + alloc)\n"
        "Run under mpirun with 4 or more ranks (--reps: runs per point, default 5, quick 3).\n";
    bench_prog_t prog = {.name = "pxs_taskfarm", .max_size = (size_t)1 << 40,
                         .quick_rep_ms = 4, .usage_tail = tail};
    MPI_Init(&argc, &argv);
    int given = 0, reps_given = 0;
    char **av = sizes_in_bytes(argc, argv, &given);
    for (int i = 1; i < argc; i++) reps_given |= !strcmp(argv[i], "--reps");
    F.producers = 1;
    if (!av || mpib_parse(argc, av, &prog, TF_CONNECTOR, more_opt, &F.o)) {
        MPI_Finalize();
        return 2;
    }
    /* --memory: alloc unless told (the natural home of a producer's inputs). */
    int mem_given = 0;
    for (int i = 1; i < argc; i++) mem_given |= !strcmp(argv[i], "--memory");
    if (!mem_given) F.o.alloc = 1;
    free(av);
    if (!given) {
        static const size_t full[] = {1, 4, 16, 64}, quick[] = {1, 16};
        const size_t *g = F.o.cfg.quick ? quick : full;
        F.o.cfg.nsizes = F.o.cfg.quick ? 2 : 4;
        for (int i = 0; i < F.o.cfg.nsizes; i++) F.o.cfg.sizes[i] = g[i] << 20;
        F.o.max_size = F.o.cfg.sizes[F.o.cfg.nsizes - 1];
    }
    if (!reps_given) F.o.cfg.reps = F.o.cfg.quick ? 3 : 5;
    if (!F.tasks) F.tasks = F.o.cfg.quick ? TASKS_QUICK : TASKS_DEFAULT;
    MPI_Comm_size(MPI_COMM_WORLD, &F.size);
    MPI_Comm_rank(MPI_COMM_WORLD, &F.rank);
    F.workers = F.size - 1 - F.producers;
    if (F.size < 3 || F.workers < 1 || F.o.cfg.sizes[0] < 2 * sizeof(input_hdr_t)) {
        if (!F.rank)
            fprintf(stderr, "pxs_taskfarm: needs a master, %d producer(s) and a worker "
                            "(4 or more ranks), inputs of at least 128 bytes\n", F.producers);
        MPI_Finalize();
        return 2;
    }
    mpib_transport(&F.o.cfg, F.size);
    mpib_pxs_open(&F.o, &F.p);
    size_t max = F.o.max_size;
    if (F.rank == 0) {
        F.mbuf[0] = bench_alloc_faulted(max);
        F.mbuf[1] = bench_alloc_faulted(max);
        if (!F.mbuf[0] || !F.mbuf[1]) mpib_die("out of memory");
    } else if (F.rank <= F.producers) {
        producer_setup(max);
    } else {
        F.wbuf = bench_alloc_faulted(max);
        if (!F.wbuf) mpib_die("out of memory");
    }
    for (int i = 0; i < F.o.cfg.nsizes; i++) run_size(F.o.cfg.sizes[i]);
    int rc = F.rank == 0 ? bench_report(&F.o.cfg, print_table, emit_json, NULL) : 0;
    mpib_barrier(MPI_COMM_WORLD);
    if (F.slot_buf)
        for (int s = 0; s < F.nslots; s++) mpib_obj_free(&F.p, F.o.alloc, F.slot_buf[s]);
    free(F.mbuf[0]);
    free(F.mbuf[1]);
    free(F.wbuf);
    mpib_pxs_close(&F.p);
    MPI_Finalize();
    return rc ? 1 : 0;
}
