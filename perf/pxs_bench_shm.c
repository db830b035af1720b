/* pxs_bench_shm: OSU-style get latency / bandwidth and put rate of the
 * "shm" connector, each held to the ceiling of the mechanism it uses
 * (see /work/shared/PERF.md):
 *
 *   pxs-shm            resolve of a zero-copy put of a malloc'd buffer
 *                      vs raw process_vm_readv (cma) of the same buffer,
 *                      with memcpy printed beside it;
 *   pxs-shm-alloc      resolve of an object in pxs_alloc memory vs memcpy;
 *   pxs-shm-alloc-view pxs_view_acquire + pxs_view_release vs memcpy;
 *   pxs-shm-inline     resolve of a 64-byte inline proxy, after its owner
 *                      has exited;
 *   put_rate           pxs_put of one already exposed buffer, and put+evict.
 *
 * The producer is a forked process with its own context; proxies reach the
 * consumer (the parent, which measures) over a pipe. Every point is the
 * median of several repetitions, each the average over an inner loop; pxs
 * and its baselines are interleaved within each repetition so that drift on
 * a noisy machine hits both alike.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pxs/pxs.h>

#define MAX_SIZES 32
#define MAX_REPS 101
#define MAX_ITERS (1u << 24)
#define INLINE_SIZE 64
#define PUT_BATCH 10000
#define PIPE_TIMEOUT_MS 120000

/* ------------------------------------------------------------------ */
/* configuration                                                        */

typedef struct {
    size_t sizes[MAX_SIZES];
    int nsizes;
    int reps;
    double rep_ns;         /* target duration of one repetition */
    const char *json_path; /* NULL: no JSON */
    int quick;
} cfg_t;

static void cfg_sizes_full(cfg_t *c)
{
    /* 8 B, then powers of 4 from 16 B to 64 MiB: 1 MiB and 64 MiB, where
     * the targets are set, are both on the grid. */
    c->nsizes = 0;
    c->sizes[c->nsizes++] = 8;
    for (size_t s = 16; s <= ((size_t)64 << 20); s *= 4) c->sizes[c->nsizes++] = s;
}

static void cfg_sizes_quick(cfg_t *c)
{
    static const size_t q[] = {8, 4096, 262144, (size_t)1 << 20, (size_t)64 << 20};
    c->nsizes = 0;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) c->sizes[c->nsizes++] = q[i];
}

/* "8,1048576,..." in ascending order (the producer offers them in turn). */
static int cfg_sizes_list(cfg_t *c, const char *list)
{
    c->nsizes = 0;
    for (const char *p = list; *p;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 0);
        if (errno || end == p || v == 0 || v > ((size_t)1 << 34) || c->nsizes == MAX_SIZES ||
            (c->nsizes && v <= c->sizes[c->nsizes - 1]) || (*end && *end != ',')) {
            fprintf(stderr, "pxs_bench_shm: --sizes wants up to %d ascending sizes, "
                            "comma separated (at \"%s\")\n", MAX_SIZES, p);
            return -1;
        }
        c->sizes[c->nsizes++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    return c->nsizes ? 0 : -1;
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--quick] [--json FILE] [--reps N] [--rep-ms MS] [--sizes LIST]\n"
            "  --quick      fewer sizes and repetitions (a fast look)\n"
            "  --json FILE  write one JSON record per line (PERF.md format)\n"
            "  --reps N     repetitions per point (default 15, quick 5; 3..%d)\n"
            "  --rep-ms MS  target duration of one repetition (default 20, quick 4)\n"
            "  --sizes LIST ascending comma-separated sizes in bytes instead of the grid\n",
            argv0, MAX_REPS);
}

static int parse_args(int argc, char **argv, cfg_t *c)
{
    int reps = 0;
    double rep_ms = 0;
    const char *sizes = NULL;
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick")) c->quick = 1;
        else if (!strcmp(a, "--json") && i + 1 < argc) c->json_path = argv[++i];
        else if (!strcmp(a, "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--rep-ms") && i + 1 < argc) rep_ms = atof(argv[++i]);
        else if (!strcmp(a, "--sizes") && i + 1 < argc) sizes = argv[++i];
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, argv[0]);
            exit(0);
        } else {
            fprintf(stderr, "pxs_bench_shm: unknown or incomplete option \"%s\"\n", a);
            usage(stderr, argv[0]);
            return -1;
        }
    }
    if (sizes) {
        if (cfg_sizes_list(c, sizes)) return -1;
    } else if (c->quick) {
        cfg_sizes_quick(c);
    } else {
        cfg_sizes_full(c);
    }
    c->reps = reps ? reps : (c->quick ? 5 : 15);
    c->rep_ns = (rep_ms > 0 ? rep_ms : (c->quick ? 4 : 20)) * 1e6;
    if (c->reps < 3 || c->reps > MAX_REPS) {
        fprintf(stderr, "pxs_bench_shm: --reps must be in 3..%d\n", MAX_REPS);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Deterministic bytes that differ from one size to the next, so a stale
 * buffer of an earlier size can never pass the check. */
static void fill_pattern(uint8_t *p, size_t n, size_t size)
{
    uint8_t seed = (uint8_t)(size * 13u + 1u);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 31u) ^ (i >> 9) ^ seed);
}

/* Page-aligned private memory, faulted in now so that no timed loop pays
 * for first touch. */
static void *alloc_faulted(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n ? n : 1) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

enum { MSG_INLINE = 1, MSG_OFFER = 2, MSG_ERROR = 3 };
enum { CMD_NEXT = 'n', CMD_QUIT = 'q' };

typedef struct {
    uint32_t kind, len;
} msg_hdr_t;

/* What the producer offers for one size: both proxies, and for the cma
 * baseline the address of its user buffer (the proxy holds it too, but the
 * baseline must not depend on pxs internals). */
typedef struct {
    uint64_t size, user_addr;
    int32_t pid;
    uint32_t user_len, alloc_len;
} offer_t;

#define MSG_MAX (sizeof(offer_t) + 2 * PXS_PROXY_MAX)

static int write_full(int fd, const void *buf, size_t len)
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

/* Read exactly len bytes, or fail on EOF, error or PIPE_TIMEOUT_MS of
 * silence (a wedged peer must not hang the benchmark). */
static int read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, PIPE_TIMEOUT_MS);
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

static int send_msg(int fd, uint32_t kind, const void *payload, uint32_t len)
{
    msg_hdr_t h = {.kind = kind, .len = len};
    if (write_full(fd, &h, sizeof h)) return -1;
    return len ? write_full(fd, payload, len) : 0;
}

/* Receive one message into buf (MSG_MAX bytes). An error message from the
 * producer is printed here and turned into a failure. */
static int recv_msg(int fd, uint32_t want, uint8_t *buf, uint32_t *len_p)
{
    msg_hdr_t h;
    if (read_full(fd, &h, sizeof h) || h.len > MSG_MAX || read_full(fd, buf, h.len)) {
        fprintf(stderr, "pxs_bench_shm: producer went away (pipe closed or silent)\n");
        return -1;
    }
    if (h.kind == MSG_ERROR) {
        fprintf(stderr, "pxs_bench_shm: producer: %.*s\n", (int)h.len, (const char *)buf);
        return -1;
    }
    if (h.kind != want) {
        fprintf(stderr, "pxs_bench_shm: unexpected message %u from producer\n", h.kind);
        return -1;
    }
    *len_p = h.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* producer (the forked child)                                          */

typedef struct {
    pxs_context_t *ctx;
    pxs_store_t *store;
    int rfd, wfd;
} producer_t;

static int __attribute__((format(printf, 3, 4)))
prod_fail(producer_t *p, pxs_status_t st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": %s", pxs_strerror(st));
    send_msg(p->wfd, MSG_ERROR, msg, (uint32_t)strlen(msg));
    return -1;
}

static int put_one(producer_t *p, const void *buf, size_t len, uint32_t flags, pxs_proxy_t *out,
                   uint32_t *enc_len, uint8_t *enc, size_t cap)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = flags};
    pxs_status_t st = pxs_put(p->store, buf, len, &pp, out);
    if (st != PXS_OK) return prod_fail(p, st, "pxs_put(%zu bytes, flags %#x)", len, flags);
    size_t n = 0;
    st = pxs_proxy_encode(out, enc, cap, &n);
    if (st != PXS_OK) return prod_fail(p, st, "pxs_proxy_encode");
    *enc_len = (uint32_t)n;
    return 0;
}

/* The inline proxy goes first: the consumer resolves it again after this
 * process has exited. */
static int producer_send_inline(producer_t *p)
{
    uint8_t obj[INLINE_SIZE], enc[PXS_PROXY_MAX];
    pxs_proxy_t proxy;
    uint32_t len;
    fill_pattern(obj, sizeof obj, sizeof obj);
    if (put_one(p, obj, sizeof obj, 0, &proxy, &len, enc, sizeof enc)) return -1;
    pxs_proxy_info_t info;
    if (pxs_proxy_info(&proxy, &info) != PXS_OK || !info.is_inline)
        return prod_fail(p, PXS_ERR_UNSUPPORTED, "a %d-byte put was not inlined", INLINE_SIZE);
    return send_msg(p->wfd, MSG_INLINE, enc, len);
}

/* Expose one size both ways, hand the proxies over, wait for the consumer,
 * then evict and free. */
static int producer_offer(producer_t *p, size_t size, int *quit)
{
    int rc = -1;
    void *alloc = NULL;
    uint8_t *user = malloc(size);
    if (!user) return prod_fail(p, PXS_ERR_NO_MEMORY, "malloc(%zu)", size);
    pxs_status_t st = pxs_alloc(p->ctx, size, &alloc);
    if (st != PXS_OK) {
        free(user);
        return prod_fail(p, st, "pxs_alloc(%zu)", size);
    }
    fill_pattern(user, size, size);
    fill_pattern(alloc, size, size);

    uint8_t msg[MSG_MAX];
    offer_t *o = (offer_t *)(void *)msg;
    pxs_proxy_t puser, palloc;
    int have_user = 0, have_alloc = 0;
    *o = (offer_t){.size = size, .user_addr = (uint64_t)(uintptr_t)user, .pid = (int32_t)getpid()};
    uint8_t *enc = msg + sizeof *o;
    if (put_one(p, user, size, PXS_PUT_NO_INLINE, &puser, &o->user_len, enc, PXS_PROXY_MAX))
        goto out;
    have_user = 1;
    if (put_one(p, alloc, size, PXS_PUT_NO_INLINE, &palloc, &o->alloc_len, enc + o->user_len,
                PXS_PROXY_MAX))
        goto out;
    have_alloc = 1;
    if (send_msg(p->wfd, MSG_OFFER, msg, (uint32_t)(sizeof *o + o->user_len + o->alloc_len)))
        goto out;
    char cmd;
    if (read_full(p->rfd, &cmd, 1)) goto out; /* consumer gone */
    *quit = cmd != CMD_NEXT;
    rc = 0;
out:
    if (have_user) pxs_evict(p->store, &puser);
    if (have_alloc) pxs_evict(p->store, &palloc);
    pxs_free(p->ctx, alloc);
    free(user);
    return rc;
}

static int producer_main(const cfg_t *cfg, int rfd, int wfd)
{
    producer_t p = {.rfd = rfd, .wfd = wfd};
    pxs_status_t st = pxs_init(NULL, &p.ctx);
    if (st != PXS_OK) return prod_fail(&p, st, "pxs_init");
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = "shm",
                             .name = "bench"};
    st = pxs_store_open(p.ctx, &sp, &p.store);
    int rc = st == PXS_OK ? 0 : prod_fail(&p, st, "pxs_store_open(shm)");
    if (!rc) rc = producer_send_inline(&p);
    int quit = 0;
    for (int i = 0; !rc && !quit && i < cfg->nsizes; i++) rc = producer_offer(&p, cfg->sizes[i], &quit);
    pxs_store_close(p.store);
    pxs_finalize(p.ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* timing                                                               */

typedef int (*op_fn)(void *arg);

typedef struct {
    double med, min, max; /* ns per operation */
} stat_t;

/* One thing to time: an operation and its argument, the inner-loop count
 * chosen by calibrate(), and one sample (ns per op) per repetition. */
typedef struct {
    op_fn fn;
    void *arg;
    uint64_t iters;
    double samples[MAX_REPS];
} timed_t;

static int run_batch(const timed_t *t, uint64_t n, double *ns_p)
{
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++)
        if (t->fn(t->arg)) return -1;
    *ns_p = now_ns() - t0;
    return 0;
}

/* Warm up and choose the inner-loop count: double until a batch takes a
 * quarter of the target, then scale so a repetition lasts about rep_ns. */
static int calibrate(timed_t *t, double rep_ns)
{
    uint64_t n = 1;
    double ns = 0;
    for (;;) {
        if (run_batch(t, n, &ns)) return -1;
        if (ns >= rep_ns / 4 || n >= MAX_ITERS) break;
        n *= 2;
    }
    double per = ns / (double)n;
    double want = per > 0 ? rep_ns / per : (double)MAX_ITERS;
    t->iters = want < 1 ? 1 : want > MAX_ITERS ? MAX_ITERS : (uint64_t)want;
    return 0;
}

static stat_t stats_of(const double *samples, int reps)
{
    double s[MAX_REPS];
    memcpy(s, samples, (size_t)reps * sizeof *s);
    qsort(s, (size_t)reps, sizeof *s, cmp_double);
    stat_t r = {.min = s[0], .max = s[reps - 1]};
    r.med = reps % 2 ? s[reps / 2] : (s[reps / 2 - 1] + s[reps / 2]) / 2;
    return r;
}

/* Time several operations, interleaved repetition by repetition, in
 * forward order on even repetitions and backward on odd ones (ABBA), so
 * that what one operation leaves in the caches, or a drift in the
 * machine's speed, favours none of them.
 * @return 0, or 1 + the index of the operation that failed. */
static int measure(timed_t *ts, int n, const cfg_t *cfg, stat_t *out)
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
    for (int k = 0; k < n; k++) out[k] = stats_of(ts[k].samples, cfg->reps);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the timed operations                                                 */

typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *proxy;
    void *dst;
    size_t size;
    pxs_status_t st; /* last failure, for the message */
} resolve_arg_t;

static int op_resolve(void *a)
{
    resolve_arg_t *r = a;
    r->st = pxs_resolve(r->ctx, r->proxy, r->dst, r->size, NULL);
    return r->st != PXS_OK;
}

static int op_view(void *a)
{
    resolve_arg_t *r = a;
    pxs_view_t *v;
    r->st = pxs_view_acquire(r->ctx, r->proxy, &v);
    if (r->st != PXS_OK) return -1;
    pxs_view_release(v);
    return 0;
}

typedef struct {
    pid_t pid;
    uint64_t addr;
    void *dst;
    size_t size;
    int err; /* errno of the last failure */
} cma_arg_t;

/* The baseline: what a program reading another process's buffer writes by
 * hand, one process_vm_readv, looping only on a short read. */
static int op_cma(void *a)
{
    cma_arg_t *c = a;
    size_t done = 0;
    while (done < c->size) {
        struct iovec l = {.iov_base = (uint8_t *)c->dst + done, .iov_len = c->size - done};
        struct iovec r = {.iov_base = (void *)(uintptr_t)(c->addr + done), .iov_len = c->size - done};
        ssize_t n = process_vm_readv(c->pid, &l, 1, &r, 1, 0);
        if (n <= 0) {
            c->err = n < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

typedef struct {
    void *dst;
    const void *src;
    size_t size;
} copy_arg_t;

static int op_memcpy(void *a)
{
    copy_arg_t *c = a;
    memcpy(c->dst, c->src, c->size);
    /* The copy must happen every time: tell the compiler memory is read. */
    __asm__ volatile("" : : "r"(c->dst) : "memory");
    return 0;
}

/* ------------------------------------------------------------------ */
/* consumer (the parent): per-size measurement                          */

typedef struct {
    size_t size;
    stat_t shm, cma, copy, alloc, view; /* ns per operation */
} size_result_t;

typedef struct {
    stat_t alive, exited, copy;   /* ns per resolve / memcpy of 64 B */
    pxs_status_t stale_st;        /* resolve of a non-inline proxy after exit */
} inline_result_t;

typedef struct {
    size_t size;
    int batch;
    stat_t put, pair; /* ns per put, ns per put+evict */
} put_result_t;

typedef struct {
    const cfg_t *cfg;
    pxs_context_t *ctx;
    pid_t child;
    int rfd, wfd;
    size_result_t res[MAX_SIZES];
    int nres;
    inline_result_t inl;
    put_result_t puts[2];
    int nputs;
    pxs_proxy_t inline_proxy;
    pxs_proxy_t last_user_proxy; /* resolved after the producer exits */
} consumer_t;

/* The buffers of one size on the consumer side. src holds the expected
 * bytes and is the memcpy baseline's source. */
typedef struct {
    size_t size;
    uint8_t *dst, *src;
    pxs_proxy_t user, alloc;
    uint64_t user_addr;
    pid_t pid;
} point_t;

static int decode_offer(const uint8_t *msg, uint32_t len, size_t want, point_t *pt)
{
    offer_t o;
    if (len < sizeof o) return -1;
    memcpy(&o, msg, sizeof o);
    if (o.size != want || (uint64_t)sizeof o + o.user_len + o.alloc_len > len) {
        fprintf(stderr, "pxs_bench_shm: malformed offer for size %zu\n", want);
        return -1;
    }
    pxs_status_t st = pxs_proxy_decode(msg + sizeof o, o.user_len, &pt->user);
    if (st == PXS_OK) st = pxs_proxy_decode(msg + sizeof o + o.user_len, o.alloc_len, &pt->alloc);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_shm: pxs_proxy_decode: %s\n", pxs_strerror(st));
        return -1;
    }
    pt->size = want;
    pt->user_addr = o.user_addr;
    pt->pid = (pid_t)o.pid;
    return 0;
}

static int check_bytes(const char *what, const void *got, const point_t *pt)
{
    if (memcmp(got, pt->src, pt->size) == 0) return 0;
    fprintf(stderr, "pxs_bench_shm: %s: wrong bytes at size %zu\n", what, pt->size);
    return -1;
}

static int report_op_failure(const char *what, const timed_t *t, size_t size)
{
    if (t->fn == op_cma) {
        const cma_arg_t *c = t->arg;
        fprintf(stderr, "pxs_bench_shm: %s at size %zu: process_vm_readv: %s\n", what, size,
                strerror(c->err));
    } else if (t->fn == op_resolve || t->fn == op_view) {
        const resolve_arg_t *r = t->arg;
        fprintf(stderr, "pxs_bench_shm: %s at size %zu: %s\n", what, size, pxs_strerror(r->st));
    } else {
        fprintf(stderr, "pxs_bench_shm: %s at size %zu failed\n", what, size);
    }
    return -1;
}

/* Verify, once and outside any timed loop, that every path delivers the
 * producer's bytes. This also maps the segment and faults the pages, so
 * the calibration that follows is the only warm-up the timings need. */
static int verify_point(timed_t *t, const char *const *names, const point_t *pt)
{
    for (int k = 0; k < 3; k++) { /* shm, cma, alloc: they all fill dst */
        memset(pt->dst, 0, pt->size);
        if (t[k].fn(t[k].arg)) return report_op_failure(names[k], &t[k], pt->size);
        if (check_bytes(names[k], pt->dst, pt)) return -1;
    }
    const resolve_arg_t *va = t[4].arg;
    pxs_view_t *v;
    pxs_status_t st = pxs_view_acquire(va->ctx, &pt->alloc, &v);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_shm: pxs_view_acquire at size %zu: %s\n", pt->size,
                pxs_strerror(st));
        return -1;
    }
    int rc = pxs_view_size(v) == pt->size ? check_bytes("view", pxs_view_data(v), pt) : -1;
    if (pxs_view_size(v) != pt->size)
        fprintf(stderr, "pxs_bench_shm: view of %zu bytes has size %zu\n", pt->size,
                pxs_view_size(v));
    pxs_view_release(v);
    return rc;
}

static int measure_point(consumer_t *c, const point_t *pt, size_result_t *out)
{
    resolve_arg_t ru = {c->ctx, &pt->user, pt->dst, pt->size, PXS_OK};
    resolve_arg_t ra = {c->ctx, &pt->alloc, pt->dst, pt->size, PXS_OK};
    resolve_arg_t rv = {c->ctx, &pt->alloc, NULL, pt->size, PXS_OK};
    cma_arg_t cma = {pt->pid, pt->user_addr, pt->dst, pt->size, 0};
    copy_arg_t cp = {pt->dst, pt->src, pt->size};
    static const char *const names[] = {"pxs-shm", "cma", "pxs-shm-alloc", "memcpy",
                                        "pxs-shm-alloc-view"};
    timed_t t[5] = {{.fn = op_resolve, .arg = &ru}, {.fn = op_cma, .arg = &cma},
                    {.fn = op_resolve, .arg = &ra}, {.fn = op_memcpy, .arg = &cp},
                    {.fn = op_view, .arg = &rv}};
    if (verify_point(t, names, pt)) return -1;
    stat_t s[5];
    int bad = measure(t, 5, c->cfg, s);
    if (bad) return report_op_failure(names[bad - 1], &t[bad - 1], pt->size);
    *out = (size_result_t){.size = pt->size, .shm = s[0], .cma = s[1], .alloc = s[2],
                           .copy = s[3], .view = s[4]};
    return 0;
}

/* One size: receive the producer's offer, measure, release the producer. */
static int consume_size(consumer_t *c, size_t size, int last)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    point_t pt = {0};
    if (recv_msg(c->rfd, MSG_OFFER, msg, &len) || decode_offer(msg, len, size, &pt)) return -1;
    if (pt.pid != c->child) {
        fprintf(stderr, "pxs_bench_shm: offer from pid %d, forked %d\n", (int)pt.pid, (int)c->child);
        return -1;
    }
    int rc = -1;
    pt.dst = alloc_faulted(size);
    pt.src = alloc_faulted(size);
    if (!pt.dst || !pt.src) {
        fprintf(stderr, "pxs_bench_shm: out of memory at size %zu\n", size);
        goto out;
    }
    fill_pattern(pt.src, size, size);
    rc = measure_point(c, &pt, &c->res[c->nres]);
    if (!rc) c->nres++;
    c->last_user_proxy = pt.user;
out:
    free(pt.dst);
    free(pt.src);
    char cmd = (rc || last) ? CMD_QUIT : CMD_NEXT;
    if (write_full(c->wfd, &cmd, 1) && !rc) {
        fprintf(stderr, "pxs_bench_shm: cannot reach the producer\n");
        rc = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* consumer: inline proxies and put rate                                */

static int measure_inline(consumer_t *c, stat_t *pxs, stat_t *copy)
{
    uint8_t dst[INLINE_SIZE], src[INLINE_SIZE];
    fill_pattern(src, sizeof src, sizeof src);
    memset(dst, 0, sizeof dst);
    resolve_arg_t r = {c->ctx, &c->inline_proxy, dst, sizeof dst, PXS_OK};
    copy_arg_t cp = {dst, src, sizeof src};
    if (op_resolve(&r) || memcmp(dst, src, sizeof src)) {
        fprintf(stderr, "pxs_bench_shm: inline resolve: %s\n",
                r.st != PXS_OK ? pxs_strerror(r.st) : "wrong bytes");
        return -1;
    }
    timed_t t[2] = {{.fn = op_resolve, .arg = &r}, {.fn = op_memcpy, .arg = &cp}};
    stat_t s[2];
    if (measure(t, copy ? 2 : 1, c->cfg, s)) return report_op_failure("inline", &t[0], sizeof dst);
    *pxs = s[0];
    if (copy) *copy = s[1];
    return 0;
}

static int recv_inline(consumer_t *c)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    if (recv_msg(c->rfd, MSG_INLINE, msg, &len)) return -1;
    pxs_status_t st = pxs_proxy_decode(msg, len, &c->inline_proxy);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_shm: inline proxy: %s\n", pxs_strerror(st));
        return -1;
    }
    return 0;
}

/* After the producer has exited: the inline proxy still resolves (its bytes
 * travel inside it), while an ordinary proxy of the same owner cannot. */
static int inline_after_exit(consumer_t *c)
{
    if (measure_inline(c, &c->inl.exited, NULL)) return -1;
    pxs_proxy_info_t info;
    pxs_status_t st = pxs_proxy_info(&c->last_user_proxy, &info);
    void *buf = st == PXS_OK ? malloc((size_t)info.size) : NULL;
    c->inl.stale_st = buf ? pxs_resolve(c->ctx, &c->last_user_proxy, buf, (size_t)info.size, NULL)
                          : PXS_ERR_NO_MEMORY;
    free(buf);
    if (c->inl.stale_st == PXS_OK) {
        fprintf(stderr, "pxs_bench_shm: a proxy of an exited owner still resolved\n");
        return -1;
    }
    return 0;
}

typedef struct {
    pxs_store_t *store;
    const void *buf;
    size_t size;
    pxs_proxy_t *proxies; /* [PUT_BATCH] */
} put_ctx_t;

static int put_failed(pxs_status_t st, const char *what)
{
    fprintf(stderr, "pxs_bench_shm: %s: %s\n", what, pxs_strerror(st));
    return -1;
}

/* n puts of the same buffer, timed; they are evicted by the caller. */
static int put_batch(put_ctx_t *p, int n, double *ns_p, int *done)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    double t0 = now_ns();
    for (*done = 0; *done < n; (*done)++) {
        pxs_status_t st = pxs_put(p->store, p->buf, p->size, &pp, &p->proxies[*done]);
        if (st != PXS_OK) return put_failed(st, "pxs_put");
    }
    *ns_p = now_ns() - t0;
    return 0;
}

static int evict_batch(put_ctx_t *p, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_evict(p->store, &p->proxies[i]);
        if (st != PXS_OK && !rc) rc = put_failed(st, "pxs_evict");
    }
    return rc;
}

static int put_evict_pairs(put_ctx_t *p, int n, double *ns_p)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_put(p->store, p->buf, p->size, &pp, &p->proxies[0]);
        if (st != PXS_OK) return put_failed(st, "pxs_put");
        st = pxs_evict(p->store, &p->proxies[0]);
        if (st != PXS_OK) return put_failed(st, "pxs_evict");
    }
    *ns_p = now_ns() - t0;
    return 0;
}

/* Repetition r >= 0 is recorded; negative ones warm up. */
static int put_rep(put_ctx_t *p, int r, double *put_s, double *pair_s)
{
    double ns = 0;
    int done = 0;
    int rc = put_batch(p, PUT_BATCH, &ns, &done);
    if (evict_batch(p, done) || rc) return -1;
    if (r >= 0) put_s[r] = ns / PUT_BATCH;
    if (put_evict_pairs(p, PUT_BATCH, &ns)) return -1;
    if (r >= 0) pair_s[r] = ns / PUT_BATCH;
    return 0;
}

static int measure_puts(consumer_t *c, pxs_store_t *store, size_t size, put_result_t *out)
{
    int rc = -1;
    /* The proxies of a batch are kept for the evictions: 10000 x 4 KiB,
     * faulted in up front so the timed puts do not page-fault. */
    put_ctx_t p = {.store = store, .size = size};
    uint8_t *buf = alloc_faulted(size);
    p.proxies = alloc_faulted(PUT_BATCH * sizeof *p.proxies);
    p.buf = buf;
    double put_s[MAX_REPS], pair_s[MAX_REPS];
    if (!buf || !p.proxies) {
        fprintf(stderr, "pxs_bench_shm: out of memory for the put benchmark\n");
        goto out;
    }
    for (int r = -2; r < c->cfg->reps; r++)
        if (put_rep(&p, r, put_s, pair_s)) goto out;
    *out = (put_result_t){.size = size, .batch = PUT_BATCH,
                          .put = stats_of(put_s, c->cfg->reps),
                          .pair = stats_of(pair_s, c->cfg->reps)};
    rc = 0;
out:
    free(p.proxies);
    free(buf);
    return rc;
}

static int bench_put_rate(consumer_t *c)
{
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = "shm",
                             .name = "bench-put"};
    pxs_store_t *store;
    pxs_status_t st = pxs_store_open(c->ctx, &sp, &store);
    if (st != PXS_OK) return put_failed(st, "pxs_store_open(shm)");
    /* Zero copy: the rate must not depend on the size. */
    static const size_t sizes[] = {8, (size_t)64 << 20};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof sizes / sizeof sizes[0]; i++) {
        rc = measure_puts(c, store, sizes[i], &c->puts[c->nputs]);
        if (!rc) c->nputs++;
    }
    pxs_store_close(store);
    return rc;
}

/* ------------------------------------------------------------------ */
/* output: OSU-style tables                                             */

static double mbps(size_t size, double ns) { return (double)size / ns * 1e3; }

static void spread_us(char *buf, size_t cap, stat_t s)
{
    snprintf(buf, cap, "%.2f-%.2f", s.min / 1e3, s.max / 1e3);
}

static void spread_bw(char *buf, size_t cap, size_t size, stat_t s)
{
    snprintf(buf, cap, "%.0f-%.0f", mbps(size, s.max), mbps(size, s.min));
}

static void print_user_tables(const consumer_t *c)
{
    char sp[48];
    printf("\n# pxs shm get latency test: user buffer, pxs_resolve vs raw process_vm_readv\n"
           "# (ratio = baseline time / pxs time; median of %d reps, spread min-max)\n",
           c->cfg->reps);
    printf("%-10s%20s%22s%16s%10s%16s%10s\n", "# Size", "Latency (us)", "spread", "cma (us)",
           "ratio", "memcpy (us)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        spread_us(sp, sizeof sp, r->shm);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%10.3f\n", r->size, r->shm.med / 1e3, sp,
               r->cma.med / 1e3, r->cma.med / r->shm.med, r->copy.med / 1e3,
               r->copy.med / r->shm.med);
    }
    printf("\n# pxs shm get bandwidth test: user buffer, pxs_resolve vs raw process_vm_readv\n");
    printf("%-10s%20s%22s%16s%10s%16s%10s\n", "# Size", "Bandwidth (MB/s)", "spread",
           "cma (MB/s)", "ratio", "memcpy (MB/s)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        spread_bw(sp, sizeof sp, r->size, r->shm);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%10.3f\n", r->size, mbps(r->size, r->shm.med),
               sp, mbps(r->size, r->cma.med), r->cma.med / r->shm.med, mbps(r->size, r->copy.med),
               r->copy.med / r->shm.med);
    }
}

static void print_alloc_tables(const consumer_t *c)
{
    char sp[48];
    printf("\n# pxs shm get latency test: pxs_alloc object, pxs_resolve vs memcpy;"
           " view = pxs_view_acquire + pxs_view_release\n");
    printf("%-10s%20s%22s%16s%10s%16s%22s\n", "# Size", "Latency (us)", "spread", "memcpy (us)",
           "ratio", "view (us)", "view spread");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        char vs[48];
        spread_us(sp, sizeof sp, r->alloc);
        spread_us(vs, sizeof vs, r->view);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%22s\n", r->size, r->alloc.med / 1e3, sp,
               r->copy.med / 1e3, r->copy.med / r->alloc.med, r->view.med / 1e3, vs);
    }
    printf("\n# pxs shm get bandwidth test: pxs_alloc object, pxs_resolve vs memcpy\n");
    printf("%-10s%20s%22s%16s%10s\n", "# Size", "Bandwidth (MB/s)", "spread", "memcpy (MB/s)",
           "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        spread_bw(sp, sizeof sp, r->size, r->alloc);
        printf("%-10zu%20.2f%22s%16.2f%10.3f\n", r->size, mbps(r->size, r->alloc.med), sp,
               mbps(r->size, r->copy.med), r->copy.med / r->alloc.med);
    }
}

static void print_inline_and_puts(const consumer_t *c)
{
    const inline_result_t *in = &c->inl;
    printf("\n# pxs shm inline proxy (%d B) resolve latency\n", INLINE_SIZE);
    printf("%-10s%20s%22s\n", "# Size", "Latency (us)", "owner");
    printf("%-10d%20.3f%22s\n", INLINE_SIZE, in->alive.med / 1e3, "alive");
    printf("%-10d%20.3f%22s\n", INLINE_SIZE, in->exited.med / 1e3, "exited");
    printf("# memcpy of %d B: %.3f us; a non-inline proxy of the exited owner: %s\n", INLINE_SIZE,
           in->copy.med / 1e3, pxs_strerror(in->stale_st));
    printf("\n# pxs shm put rate (zero copy, PXS_PUT_NO_INLINE, same buffer, batches of %d)\n",
           PUT_BATCH);
    printf("%-10s%20s%22s%20s\n", "# Size", "Puts/s", "spread", "Put+evict/s");
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        char sp[48];
        snprintf(sp, sizeof sp, "%.0f-%.0f", 1e9 / p->put.max, 1e9 / p->put.min);
        printf("%-10zu%20.0f%22s%20.0f\n", p->size, 1e9 / p->put.med, sp, 1e9 / p->pair.med);
    }
}

/* ------------------------------------------------------------------ */
/* output: JSON records (PERF.md)                                       */

typedef struct {
    const char *bench, *impl, *baseline, *metric;
    size_t size;
    double value, vmin, vmax;
    int has_base;
    double base, bmin, bmax;
    const char *extra; /* more "key":value pairs, or NULL */
} record_t;

static void json_record(FILE *f, const record_t *r, int reps)
{
    fprintf(f, "{\"bench\":\"%s\",\"impl\":\"%s\",\"baseline\":\"%s\",\"size\":%zu,"
               "\"metric\":\"%s\",\"value\":%.6g,",
            r->bench, r->impl, r->baseline, r->size, r->metric, r->value);
    if (r->has_base)
        fprintf(f, "\"baseline_value\":%.6g,\"ratio\":%.4f,", r->base,
                !strcmp(r->metric, "us") ? r->base / r->value : r->value / r->base);
    else
        fprintf(f, "\"baseline_value\":null,\"ratio\":null,");
    fprintf(f, "\"reps\":%d,\"transport\":\"shm\",\"min\":%.6g,\"max\":%.6g", reps, r->vmin,
            r->vmax);
    if (r->has_base) fprintf(f, ",\"baseline_min\":%.6g,\"baseline_max\":%.6g", r->bmin, r->bmax);
    if (r->extra) fprintf(f, ",%s", r->extra);
    fprintf(f, "}\n");
}

/* Latency and bandwidth records of one impl against one baseline. */
static void json_pair(FILE *f, const char *impl, const char *baseline, size_t size, stat_t v,
                      stat_t b, int reps)
{
    record_t lat = {"get_latency", impl, baseline, "us", size, v.med / 1e3, v.min / 1e3,
                    v.max / 1e3, 1, b.med / 1e3, b.min / 1e3, b.max / 1e3, NULL};
    record_t bw = {"get_bw", impl, baseline, "MB/s", size, mbps(size, v.med), mbps(size, v.max),
                   mbps(size, v.min), 1, mbps(size, b.med), mbps(size, b.max), mbps(size, b.min),
                   NULL};
    json_record(f, &lat, reps);
    json_record(f, &bw, reps);
}

static void json_sizes(FILE *f, const consumer_t *c)
{
    int reps = c->cfg->reps;
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        json_pair(f, "pxs-shm", "cma", r->size, r->shm, r->cma, reps);
        json_pair(f, "pxs-shm", "memcpy", r->size, r->shm, r->copy, reps);
        json_pair(f, "pxs-shm-alloc", "memcpy", r->size, r->alloc, r->copy, reps);
        record_t v = {"get_latency", "pxs-shm-alloc-view", "memcpy", "us", r->size,
                      r->view.med / 1e3, r->view.min / 1e3, r->view.max / 1e3, 1,
                      r->copy.med / 1e3, r->copy.min / 1e3, r->copy.max / 1e3, NULL};
        json_record(f, &v, reps);
    }
}

static void json_inline_and_puts(FILE *f, const consumer_t *c)
{
    int reps = c->cfg->reps;
    const inline_result_t *in = &c->inl;
    char extra[160];
    snprintf(extra, sizeof extra,
             "\"owner\":\"exited\",\"alive_value\":%.6g,\"stale_proxy_status\":\"%s\"",
             in->alive.med / 1e3, pxs_strerror(in->stale_st));
    record_t r = {"get_latency", "pxs-shm-inline", "memcpy", "us", INLINE_SIZE,
                  in->exited.med / 1e3, in->exited.min / 1e3, in->exited.max / 1e3, 1,
                  in->copy.med / 1e3, in->copy.min / 1e3, in->copy.max / 1e3, extra};
    json_record(f, &r, reps);
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        char ex[64];
        snprintf(ex, sizeof ex, "\"batch\":%d", p->batch);
        record_t put = {"put_rate", "pxs-shm", "none", "puts/s", p->size, 1e9 / p->put.med,
                        1e9 / p->put.max, 1e9 / p->put.min, 0, 0, 0, 0, ex};
        record_t pair = {"put_rate", "pxs-shm", "none", "put+evict/s", p->size,
                         1e9 / p->pair.med, 1e9 / p->pair.max, 1e9 / p->pair.min, 0, 0, 0, 0, ex};
        json_record(f, &put, reps);
        json_record(f, &pair, reps);
    }
}

static int write_json(const consumer_t *c)
{
    FILE *f = fopen(c->cfg->json_path, "w");
    if (!f) {
        fprintf(stderr, "pxs_bench_shm: cannot write %s: %s\n", c->cfg->json_path, strerror(errno));
        return -1;
    }
    json_sizes(f, c);
    json_inline_and_puts(f, c);
    if (fclose(f) != 0) {
        fprintf(stderr, "pxs_bench_shm: writing %s: %s\n", c->cfg->json_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* Wait for the producer; on failure kill it first (it may be blocked). */
static int reap_child(pid_t pid, int kill_it)
{
    if (kill_it) kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (kill_it) return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pxs_bench_shm: producer exited abnormally (status %#x)\n", status);
        return -1;
    }
    return 0;
}

/* Measure while the producer lives; the caller reaps it afterwards. */
static int consumer_run(consumer_t *c)
{
    if (recv_inline(c) || measure_inline(c, &c->inl.alive, &c->inl.copy)) return -1;
    for (int i = 0; i < c->cfg->nsizes; i++)
        if (consume_size(c, c->cfg->sizes[i], i == c->cfg->nsizes - 1)) return -1;
    return 0;
}

static int consumer_main(consumer_t *c)
{
    pxs_status_t st = pxs_init(NULL, &c->ctx);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_shm: pxs_init: %s\n", pxs_strerror(st));
        return -1;
    }
    int rc = consumer_run(c);
    int rc_child = reap_child(c->child, rc != 0);
    c->child = 0;
    if (!rc) rc = rc_child;
    if (!rc) rc = inline_after_exit(c);
    if (!rc) rc = bench_put_rate(c);
    if (!rc) {
        print_user_tables(c);
        print_alloc_tables(c);
        print_inline_and_puts(c);
        fflush(stdout);
    }
    if (!rc && c->cfg->json_path) rc = write_json(c);
    pxs_finalize(c->ctx);
    return rc;
}

int main(int argc, char **argv)
{
    consumer_t cons = {0};
    cfg_t cfg;
    if (parse_args(argc, argv, &cfg)) return 2;
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) {
        perror("pxs_bench_shm: pipe");
        return 1;
    }
    /* A dead producer must show up as EPIPE, not kill us mid-report. */
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("pxs_bench_shm: fork");
        return 1;
    }
    if (pid == 0) {
        /* The producer must not outlive a consumer killed mid-run. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        close(to_child[1]);
        close(from_child[0]);
        int rc = producer_main(&cfg, to_child[0], from_child[1]);
        exit(rc ? 1 : 0);
    }
    close(to_child[0]);
    close(from_child[1]);
    cons.cfg = &cfg;
    cons.child = pid;
    cons.rfd = from_child[0];
    cons.wfd = to_child[1];
    printf("# pxs %s shm benchmark: producer pid %d, consumer pid %d, %d reps, %d sizes\n",
           pxs_version(), (int)pid, (int)getpid(), cfg.reps, cfg.nsizes);
    fflush(stdout);
    int rc = consumer_main(&cons);
    if (cons.child > 0) reap_child(cons.child, 1); /* pxs_init failed: never reaped */
    close(cons.rfd);
    close(cons.wfd);
    return rc ? 1 : 0;
}
