/* The pieces the pxs benchmarks share: see bench_common.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_common.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One program per process: its name is recorded once, by
 * bench_parse_args, rather than passed to every helper that may fail. */
static const char *prog_name = "pxs_bench";

int bench_pxs_fail(pxs_status_t st, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog_name, what, pxs_strerror(st));
    return -1;
}

/* ------------------------------------------------------------------ */
/* configuration                                                        */

static void sizes_full(bench_cfg_t *c)
{
    /* 8 B, then powers of 4 from 16 B to 64 MiB: 1 MiB and 64 MiB, where
     * the targets are set, are both on the grid. */
    c->nsizes = 0;
    c->sizes[c->nsizes++] = 8;
    for (size_t s = 16; s <= ((size_t)64 << 20); s *= 4) c->sizes[c->nsizes++] = s;
}

static void sizes_quick(bench_cfg_t *c)
{
    static const size_t q[] = {8, 4096, 262144, (size_t)1 << 20, (size_t)64 << 20};
    c->nsizes = 0;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) c->sizes[c->nsizes++] = q[i];
}

/* "8,1048576,..." in ascending order (the producer offers them in turn). */
static int sizes_list(bench_cfg_t *c, const char *list, size_t max_size)
{
    c->nsizes = 0;
    for (const char *p = list; *p;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 0);
        if (errno || end == p || v == 0 || v > max_size || c->nsizes == BENCH_MAX_SIZES ||
            (c->nsizes && v <= c->sizes[c->nsizes - 1]) || (*end && *end != ',')) {
            fprintf(stderr, "%s: --sizes wants up to %d ascending sizes, "
                            "comma separated (at \"%s\")\n", prog_name, BENCH_MAX_SIZES, p);
            return -1;
        }
        c->sizes[c->nsizes++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    return c->nsizes ? 0 : -1;
}

static void usage(FILE *f, const char *argv0, const bench_prog_t *prog)
{
    fprintf(f,
            "usage: %s [--quick] [--json FILE] [--reps N] [--rep-ms MS] [--sizes LIST]\n"
            "  --quick      fewer sizes and repetitions (a fast look)\n"
            "  --json FILE  write one JSON record per line (PERF.md format)\n"
            "  --reps N     repetitions per point (default 15, quick 5; 3..%d)\n"
            "  --rep-ms MS  target duration of one repetition (default 20, quick %d)\n"
            "  --sizes LIST ascending comma-separated sizes in bytes instead of the grid\n"
            "  --bind       consumer on the first allowed CPU, producer on the second\n"
            "               (every thread of each, as mpirun --bind-to core places ranks)\n"
            "%s",
            argv0, BENCH_MAX_REPS, prog->quick_rep_ms, prog->usage_tail ? prog->usage_tail : "");
}

static int bind_plan(bench_cfg_t *c);

int bench_parse_args(int argc, char **argv, const bench_prog_t *prog, bench_cfg_t *c)
{
    int reps = 0;
    double rep_ms = 0;
    const char *sizes = NULL;
    prog_name = prog->name;
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick")) c->quick = 1;
        else if (!strcmp(a, "--json") && i + 1 < argc) c->json_path = argv[++i];
        else if (!strcmp(a, "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--rep-ms") && i + 1 < argc) rep_ms = atof(argv[++i]);
        else if (!strcmp(a, "--sizes") && i + 1 < argc) sizes = argv[++i];
        else if (!strcmp(a, "--bind")) c->bind = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, argv[0], prog);
            exit(0);
        } else {
            int took = prog->extra_opt ? prog->extra_opt(argc, argv, &i) : 0;
            if (took > 0) continue;
            if (took < 0) return -1;
            fprintf(stderr, "%s: unknown or incomplete option \"%s\"\n", prog_name, a);
            usage(stderr, argv[0], prog);
            return -1;
        }
    }
    if (sizes) {
        if (sizes_list(c, sizes, prog->max_size)) return -1;
    } else if (c->quick) {
        sizes_quick(c);
    } else {
        sizes_full(c);
    }
    c->reps = reps ? reps : (c->quick ? 5 : 15);
    c->rep_ns = (rep_ms > 0 ? rep_ms : (c->quick ? prog->quick_rep_ms : 20)) * 1e6;
    if (c->bind && bind_plan(c)) return -1;
    if (c->reps < 3 || c->reps > BENCH_MAX_REPS) {
        fprintf(stderr, "%s: --reps must be in 3..%d\n", prog_name, BENCH_MAX_REPS);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void bench_fill_pattern(uint8_t *p, size_t n, size_t size)
{
    uint8_t seed = (uint8_t)(size * 13u + 1u);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 31u) ^ (i >> 9) ^ seed);
}

void *bench_alloc_faulted(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n ? n : 1) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

int bench_point_buffers(size_t size, uint8_t **dst, uint8_t **src)
{
    *dst = bench_alloc_faulted(size);
    *src = bench_alloc_faulted(size);
    if (!*dst || !*src) {
        fprintf(stderr, "%s: out of memory at size %zu\n", prog_name, size);
        return -1;
    }
    bench_fill_pattern(*src, size, size);
    return 0;
}

/* ------------------------------------------------------------------ */
/* timing                                                               */

int bench_run_once(const bench_timed_t *t)
{
    if (t->around) t->around(1);
    int rc = t->fn(t->arg);
    if (t->around) t->around(0);
    return rc;
}

/* n calls of the operation; *ns_p is their total time. */
static int run_batch(const bench_timed_t *t, uint64_t n, double *ns_p)
{
    if (t->around) t->around(1);
    int rc = 0;
    double t0 = bench_now_ns();
    for (uint64_t i = 0; i < n && !rc; i++) rc = t->fn(t->arg);
    *ns_p = bench_now_ns() - t0;
    if (t->around) t->around(0);
    return rc;
}

/* Warm up and choose the inner-loop count: double until a batch takes a
 * quarter of the target, then scale so a repetition lasts about rep_ns. */
static int calibrate(bench_timed_t *t, double rep_ns)
{
    uint64_t n = 1;
    double ns = 0;
    for (;;) {
        if (run_batch(t, n, &ns)) return -1;
        if (ns >= rep_ns / 4 || n >= BENCH_MAX_ITERS) break;
        n *= 2;
    }
    double per = ns / (double)n;
    double want = per > 0 ? rep_ns / per : (double)BENCH_MAX_ITERS;
    t->iters = want < 1 ? 1 : want > BENCH_MAX_ITERS ? BENCH_MAX_ITERS : (uint64_t)want;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stat_t bench_stats_of(const double *samples, int reps)
{
    double s[BENCH_MAX_REPS];
    memcpy(s, samples, (size_t)reps * sizeof *s);
    qsort(s, (size_t)reps, sizeof *s, cmp_double);
    bench_stat_t r = {.min = s[0], .max = s[reps - 1]};
    r.med = reps % 2 ? s[reps / 2] : (s[reps / 2 - 1] + s[reps / 2]) / 2;
    return r;
}

int bench_measure(bench_timed_t *ts, int n, const bench_cfg_t *cfg, bench_stat_t *out)
{
    for (int k = 0; k < n; k++)
        if (calibrate(&ts[k], cfg->rep_ns)) return 1 + k;
    for (int r = 0; r < cfg->reps; r++) {
        for (int j = 0; j < n; j++) {
            int k = r % 2 ? n - 1 - j : j;
            double ns = 0;
            if (run_batch(&ts[k], ts[k].iters, &ns)) return 1 + k;
            ts[k].samples[r] = ns / (double)ts[k].iters;
        }
    }
    for (int k = 0; k < n; k++) out[k] = bench_stats_of(ts[k].samples, cfg->reps);
    return 0;
}

/* ------------------------------------------------------------------ */
/* operations both programs time                                        */

int bench_op_resolve(void *a)
{
    bench_resolve_arg_t *r = a;
    r->st = pxs_resolve(r->ctx, r->proxy, r->dst, r->size, NULL);
    return r->st != PXS_OK;
}

int bench_op_read(void *a)
{
    bench_read_arg_t *r = a;
    int w = r->window < 1 ? 1 : r->window;
    for (int i = 0; i < w; i++)
        if ((r->st = pxs_handle_read(r->h, 0, r->dst, r->size)) != PXS_OK) return -1;
    return 0;
}

int bench_op_resolve_window(void *a)
{
    bench_resolve_arg_t *r = a;
    pxs_request_t *reqs[BENCH_WINDOW_MAX];
    int n = 0, rc = 0, w = r->window < 1 ? 1 : r->window > BENCH_WINDOW_MAX ? BENCH_WINDOW_MAX
                                                                           : r->window;
    for (; n < w; n++) {
        pxs_status_t st = pxs_resolve_nb(r->ctx, r->proxy, r->dst, r->size, NULL, &reqs[n]);
        if (st != PXS_OK && st != PXS_INPROGRESS) {
            r->st = st;
            rc = -1;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!reqs[i]) continue;
        pxs_status_t st = pxs_wait(reqs[i], PXS_TIMEOUT_DEFAULT);
        if (st != PXS_OK && !rc) {
            r->st = st;
            rc = -1;
        }
        pxs_request_free(reqs[i]);
    }
    return rc;
}

int bench_op_memcpy(void *a)
{
    bench_copy_arg_t *c = a;
    memcpy(c->dst, c->src, c->size);
    /* The copy must happen every time: tell the compiler memory is read. */
    __asm__ volatile("" : : "r"(c->dst) : "memory");
    return 0;
}

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

typedef struct {
    uint32_t kind, len;
} bench_msg_hdr_t;

int bench_write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, BENCH_PIPE_TIMEOUT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_send_msg(int fd, uint32_t kind, const void *payload, uint32_t len)
{
    bench_msg_hdr_t h = {.kind = kind, .len = len};
    if (bench_write_full(fd, &h, sizeof h)) return -1;
    return len ? bench_write_full(fd, payload, len) : 0;
}

int bench_recv_msg(int fd, uint32_t want, uint8_t *buf, size_t cap, uint32_t *len_p)
{
    bench_msg_hdr_t h;
    if (bench_read_full(fd, &h, sizeof h) || h.len > cap || bench_read_full(fd, buf, h.len)) {
        fprintf(stderr, "%s: producer went away (pipe closed or silent)\n", prog_name);
        return -1;
    }
    if (h.kind == BENCH_MSG_ERROR) {
        fprintf(stderr, "%s: producer: %.*s\n", prog_name, (int)h.len, (const char *)buf);
        return -1;
    }
    if (h.kind != want) {
        fprintf(stderr, "%s: unexpected message %u from producer\n", prog_name, h.kind);
        return -1;
    }
    *len_p = h.len;
    return 0;
}

int bench_wait_cmd(int fd, int *quit)
{
    char cmd;
    if (bench_read_full(fd, &cmd, 1)) return -1;
    *quit = cmd != BENCH_CMD_NEXT;
    return 0;
}

int bench_send_cmd(int fd, int rc, int last)
{
    char cmd = (rc || last) ? BENCH_CMD_QUIT : BENCH_CMD_NEXT;
    if (bench_write_full(fd, &cmd, 1) && !rc) {
        fprintf(stderr, "%s: cannot reach the producer\n", prog_name);
        rc = -1;
    }
    return rc;
}

int bench_consume_sizes(const bench_cfg_t *cfg, const bench_peer_t *peer, uint32_t kind,
                        size_t cap,
                        int (*fn)(void *c, size_t size, const uint8_t *msg, uint32_t len),
                        void *c)
{
    uint8_t *msg = malloc(cap);
    if (!msg) {
        fprintf(stderr, "%s: out of memory for the producer's messages\n", prog_name);
        return -1;
    }
    int rc = 0;
    for (int i = 0; !rc && i < cfg->nsizes; i++) {
        uint32_t len;
        if (bench_recv_msg(peer->rfd, kind, msg, cap, &len)) {
            rc = -1; /* the producer is gone: nobody to tell */
            break;
        }
        rc = fn(c, cfg->sizes[i], msg, len);
        rc = bench_send_cmd(peer->wfd, rc, i == cfg->nsizes - 1);
    }
    free(msg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the producer                                                         */

int bench_prod_fail(bench_producer_t *p, pxs_status_t st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": %s", pxs_strerror(st));
    bench_send_msg(p->wfd, BENCH_MSG_ERROR, msg, (uint32_t)strlen(msg));
    return -1;
}

int bench_put_one(bench_producer_t *p, const void *buf, size_t len, uint32_t flags,
                  pxs_proxy_t *out, uint32_t *enc_len, uint8_t *enc, size_t cap)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = flags};
    pxs_status_t st = pxs_put(p->store, buf, len, &pp, out);
    if (st != PXS_OK) return bench_prod_fail(p, st, "pxs_put(%zu bytes, flags %#x)", len, flags);
    size_t n = 0;
    st = pxs_proxy_encode(out, enc, cap, &n);
    if (st != PXS_OK) return bench_prod_fail(p, st, "pxs_proxy_encode");
    *enc_len = (uint32_t)n;
    return 0;
}

pxs_status_t bench_store_open(pxs_context_t *ctx, const char *connector, const char *name,
                              pxs_store_t **store_p)
{
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = connector,
                             .name = name};
    return pxs_store_open(ctx, &sp, store_p);
}

int bench_put_store(pxs_context_t *ctx, const char *connector, pxs_store_t **store_p)
{
    pxs_status_t st = bench_store_open(ctx, connector, "bench-put", store_p);
    if (st == PXS_OK) return 0;
    char what[64];
    snprintf(what, sizeof what, "pxs_store_open(%s)", connector);
    return bench_pxs_fail(st, what);
}

static int sys_fail(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog_name, what, strerror(errno));
    return -1;
}

/* --bind: the first two CPUs this process may run on. */
static int bind_plan(bench_cfg_t *c)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) return sys_fail("sched_getaffinity");
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
        if (CPU_ISSET(cpu, &set)) c->bind_cpu[n++] = cpu;
    if (n < 2) {
        fprintf(stderr, "%s: --bind needs two CPUs, this process may use %d\n", prog_name,
                CPU_COUNT(&set));
        return -1;
    }
    return 0;
}

static int bind_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) ? sys_fail("sched_setaffinity") : 0;
}

int bench_fork_producer(const bench_cfg_t *cfg, int (*fn)(void *arg, int rfd, int wfd), void *arg,
                        bench_peer_t *peer)
{
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) return sys_fail("pipe");
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL); /* or the child writes out the parent's buffered output too */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return sys_fail("fork");
    if (pid == 0) {
        /* The producer must not outlive a consumer killed mid-run. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        if (cfg->bind && bind_to(cfg->bind_cpu[1])) _exit(1);
        close(to_child[1]);
        close(from_child[0]);
        int rc = fn(arg, to_child[0], from_child[1]);
        exit(rc ? 1 : 0);
    }
    close(to_child[0]);
    close(from_child[1]);
    *peer = (bench_peer_t){.child = pid, .rfd = from_child[0], .wfd = to_child[1]};
    if (cfg->bind && bind_to(cfg->bind_cpu[0])) return -1;
    return 0;
}

/* Wait for the producer; kill_it: on failure, when it may be blocked. */
static int reap_child(pid_t pid, int kill_it)
{
    if (kill_it) kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (kill_it) return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: producer exited abnormally (status %#x)\n", prog_name, status);
        return -1;
    }
    return 0;
}

int bench_reap_peer(bench_peer_t *peer, int rc)
{
    int rc_child = reap_child(peer->child, rc != 0);
    peer->child = 0;
    return rc ? rc : rc_child;
}

void bench_close_peer(bench_peer_t *peer)
{
    if (peer->child > 0) reap_child(peer->child, 1);
    peer->child = 0;
    close(peer->rfd);
    close(peer->wfd);
}

/* ------------------------------------------------------------------ */
/* output                                                               */

double bench_mbps(size_t size, double ns) { return (double)size / ns * 1e3; }

void bench_spread_us(char *buf, size_t cap, bench_stat_t s)
{
    snprintf(buf, cap, "%.2f-%.2f", s.min / 1e3, s.max / 1e3);
}

void bench_spread_bw(char *buf, size_t cap, size_t size, bench_stat_t s)
{
    snprintf(buf, cap, "%.0f-%.0f", bench_mbps(size, s.max), bench_mbps(size, s.min));
}

void bench_spread_rate(char *buf, size_t cap, bench_stat_t s)
{
    snprintf(buf, cap, "%.0f-%.0f", 1e9 / s.max, 1e9 / s.min);
}

void bench_json_record(FILE *f, const bench_cfg_t *cfg, const bench_record_t *r)
{
    fprintf(f, "{\"bench\":\"%s\",\"impl\":\"%s\",\"baseline\":\"%s\",\"size\":%zu,"
               "\"metric\":\"%s\",\"value\":%.6g,",
            r->bench, r->impl, r->baseline, r->size, r->metric, r->value);
    if (r->has_base)
        fprintf(f, "\"baseline_value\":%.6g,\"ratio\":%.4f,", r->base,
                /* a time: lower is better */
                !strcmp(r->metric, "us") || !strcmp(r->metric, "s") ? r->base / r->value
                                                                    : r->value / r->base);
    else
        fprintf(f, "\"baseline_value\":null,\"ratio\":null,");
    fprintf(f, "\"reps\":%d,\"transport\":\"%s\",\"min\":%.6g,\"max\":%.6g", cfg->reps,
            cfg->transport, r->vmin, r->vmax);
    if (r->has_base) fprintf(f, ",\"baseline_min\":%.6g,\"baseline_max\":%.6g", r->bmin, r->bmax);
    if (r->extra) fprintf(f, ",%s", r->extra);
    fprintf(f, "}\n");
}

void bench_json_get(FILE *f, const bench_cfg_t *cfg, const char *bench, const char *impl,
                    const char *baseline, size_t size, bench_stat_t v, bench_stat_t b,
                    const char *extra)
{
    if (!strcmp(bench, "get_latency")) {
        bench_record_t lat = {bench, impl, baseline, "us", size, v.med / 1e3, v.min / 1e3,
                              v.max / 1e3, 1, b.med / 1e3, b.min / 1e3, b.max / 1e3, extra};
        bench_json_record(f, cfg, &lat);
    } else { /* a bandwidth: the slowest sample is its minimum */
        bench_record_t bw = {bench, impl, baseline, "MB/s", size, bench_mbps(size, v.med),
                             bench_mbps(size, v.max), bench_mbps(size, v.min), 1,
                             bench_mbps(size, b.med), bench_mbps(size, b.max),
                             bench_mbps(size, b.min), extra};
        bench_json_record(f, cfg, &bw);
    }
}

void bench_json_rate(FILE *f, const bench_cfg_t *cfg, const char *impl, const char *metric,
                     size_t size, bench_stat_t ns, const char *extra)
{
    bench_record_t r = {"put_rate", impl, "none", metric, size, 1e9 / ns.med, 1e9 / ns.max,
                        1e9 / ns.min, 0, 0, 0, 0, extra};
    bench_json_record(f, cfg, &r);
}

static int write_json(const bench_cfg_t *cfg, void (*emit)(FILE *f, const void *arg),
                      const void *arg)
{
    FILE *f = fopen(cfg->json_path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog_name, cfg->json_path, strerror(errno));
        return -1;
    }
    emit(f, arg);
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: writing %s: %s\n", prog_name, cfg->json_path, strerror(errno));
        return -1;
    }
    return 0;
}

int bench_report(const bench_cfg_t *cfg, void (*print)(const void *arg),
                 void (*emit)(FILE *f, const void *arg), const void *arg)
{
    print(arg);
    fflush(stdout); /* the tables are out before anything can fail */
    return cfg->json_path ? write_json(cfg, emit, arg) : 0;
}
