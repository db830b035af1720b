/* pxs_bench_ucx: OSU-style get latency / bandwidth of the "ucx" connector
 * held to raw UCP gets (perf/baselines/ucp_get.c) in the same run and under
 * the same UCX_TLS, with memcpy printed beside them (see /work/shared/PERF.md):
 *
 *   pxs-ucx        pxs_resolve of a zero-copy put (PXS_PUT_NO_INLINE) of the
 *                  producer's malloc'd buffer, vs ucp_get: one ucp_get_nbx of
 *                  an ordinary buffer the owner mapped without ALLOCATE;
 *   pxs-ucx-alloc  pxs_resolve of a copying put (PXS_PUT_COPY, which lands in
 *                  UCP_MEM_MAP_ALLOCATE memory) vs ucp_get-alloc: one get of
 *                  a region the owner mapped with UCP_MEM_MAP_ALLOCATE;
 *   window         the same with up to 64 gets in flight (pxs_resolve_nb /
 *                  ucp_get_nbx, then wait for all: the shape of osu_get_bw);
 *   diagnostics    ucp_get-x3: three dependent raw gets (8 B, the bytes,
 *                  8 B), the shape of pxs's protocol (generation, bytes,
 *                  generation); ucp_get-event: one raw get while the owner's
 *                  thread sleeps on the worker's event fd like pxs's does;
 *   first_resolve  the first pxs_resolve on a fresh context (endpoint
 *                  creation, wire-up, two rkey unpacks) vs a warm one, and
 *                  the same for raw UCP;
 *   put_rate       pxs_put of an already registered buffer (another object on
 *                  it is live), and of buffers never registered before.
 *
 * The producer is a forked process (forked before anything starts UCX) with
 * a pxs context (store "ucx", default progress thread) and a raw UCP owner
 * whose progress thread spins while the consumer times a raw get (a flag in
 * shared memory) and otherwise sleeps on its event fd. Proxies, worker
 * address and rkeys reach the consumer over a pipe. Every point is the
 * median of several repetitions, each an average over an inner loop; pxs and
 * the baselines are interleaved in ABBA order within each repetition.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pxs/pxs.h>

#include "baselines/ucp_get.h"

#define MAX_SIZES 32
#define MAX_REPS 101
#define MAX_ITERS (1u << 24)
#define PUT_BATCH 10000
#define COLD_PAGES 1000      /* cold puts of 4 KiB, one per fresh page */
#define COLD_MIB 64          /* cold puts of 1 MiB */
#define WINDOW_MAX 64        /* gets in flight, bandwidth with a window */
#define WINDOW_BYTES ((size_t)64 << 20) /* at most this much per window */
#define WARM_GETS 200        /* warm gets averaged after each first resolve */
#define PIPE_TIMEOUT_MS 120000
#define GET_TIMEOUT_MS 30000
#define RKEY_MAX 2048
#define ADDR_MAX 2048
#define GEN_VALUE 0x1234567887654321ull

/* ------------------------------------------------------------------ */
/* configuration                                                        */

typedef struct {
    size_t sizes[MAX_SIZES];
    int nsizes;
    int reps;
    double rep_ns;         /* target duration of one repetition */
    const char *json_path; /* NULL: no JSON */
    int quick;
    char transport[128];   /* "UCX_TLS=..." for the records */
} cfg_t;

static void cfg_sizes_full(cfg_t *c)
{
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

static int cfg_sizes_list(cfg_t *c, const char *list)
{
    c->nsizes = 0;
    for (const char *p = list; *p;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 0);
        if (errno || end == p || v == 0 || v > ((size_t)1 << 32) || c->nsizes == MAX_SIZES ||
            (c->nsizes && v <= c->sizes[c->nsizes - 1]) || (*end && *end != ',')) {
            fprintf(stderr, "pxs_bench_ucx: --sizes wants up to %d ascending sizes, "
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
            "  --rep-ms MS  target duration of one repetition (default 20, quick 3)\n"
            "  --sizes LIST ascending comma-separated sizes in bytes instead of the grid\n"
            "The transport is UCX's: set UCX_TLS (e.g. sm,cma or tcp) in the environment.\n",
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
            fprintf(stderr, "pxs_bench_ucx: unknown or incomplete option \"%s\"\n", a);
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
    c->rep_ns = (rep_ms > 0 ? rep_ms : (c->quick ? 3 : 20)) * 1e6;
    if (c->reps < 3 || c->reps > MAX_REPS) {
        fprintf(stderr, "pxs_bench_ucx: --reps must be in 3..%d\n", MAX_REPS);
        return -1;
    }
    const char *tls = getenv("UCX_TLS");
    snprintf(c->transport, sizeof c->transport, "UCX_TLS=%s", tls && *tls ? tls : "(default)");
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

static void fill_pattern(uint8_t *p, size_t n, size_t size)
{
    uint8_t seed = (uint8_t)(size * 13u + 1u);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 31u) ^ (i >> 9) ^ seed);
}

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

static int window_for(size_t size)
{
    size_t w = WINDOW_BYTES / size;
    return w >= WINDOW_MAX ? WINDOW_MAX : w < 1 ? 1 : (int)w;
}

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

enum { MSG_HELLO = 1, MSG_OFFER = 2, MSG_ERROR = 3 };
enum { CMD_NEXT = 'n', CMD_QUIT = 'q' };

typedef struct {
    uint32_t kind, len;
} msg_hdr_t;

/* Once, first: the raw owner's worker address, its generation word (for
 * the x3 chain and the first raw get) and an 8-byte pxs object that stays
 * live to the end (the first-resolve test). */
typedef struct {
    uint64_t gen_addr;
    int32_t pid;
    uint32_t addr_len, gen_rkey_len, first_len;
} hello_t;

/* Per size: both pxs proxies and both raw regions. */
typedef struct {
    uint64_t size, raw_user_addr, raw_alloc_addr;
    uint32_t user_len, alloc_len, raw_user_rkey_len, raw_alloc_rkey_len;
} offer_t;

#define MSG_MAX (sizeof(offer_t) + sizeof(hello_t) + 2 * PXS_PROXY_MAX + 2 * RKEY_MAX + ADDR_MAX)

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

static int recv_msg(int fd, uint32_t want, uint8_t *buf, uint32_t *len_p)
{
    msg_hdr_t h;
    if (read_full(fd, &h, sizeof h) || h.len > MSG_MAX || read_full(fd, buf, h.len)) {
        fprintf(stderr, "pxs_bench_ucx: producer went away (pipe closed or silent)\n");
        return -1;
    }
    if (h.kind == MSG_ERROR) {
        fprintf(stderr, "pxs_bench_ucx: producer: %.*s\n", (int)h.len, (const char *)buf);
        return -1;
    }
    if (h.kind != want) {
        fprintf(stderr, "pxs_bench_ucx: unexpected message %u from producer\n", h.kind);
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
    ucpb_t *raw;
    uint64_t *gen;        /* the raw generation word's page */
    ucpb_region_t gen_reg;
    const int *gate;
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

static int raw_map(producer_t *p, void *buf, size_t len, ucpb_region_t *r)
{
    if (ucpb_map(p->raw, buf, len, r) != UCS_OK)
        return prod_fail(p, PXS_ERR_IO, "raw ucp_mem_map(%zu bytes%s)", len,
                         buf ? "" : ", ALLOCATE");
    if (r->rkey_len > RKEY_MAX) return prod_fail(p, PXS_ERR_NO_RESOURCE, "rkey too long");
    return 0;
}

static int producer_hello(producer_t *p, pxs_proxy_t *first, uint8_t *first_buf)
{
    uint8_t msg[MSG_MAX];
    hello_t *h = (hello_t *)(void *)msg;
    const void *addr;
    size_t addr_len;
    ucpb_address(p->raw, &addr, &addr_len);
    if (addr_len > ADDR_MAX) return prod_fail(p, PXS_ERR_NO_RESOURCE, "worker address too long");
    *h = (hello_t){.gen_addr = (uint64_t)(uintptr_t)p->gen, .pid = (int32_t)getpid(),
                   .addr_len = (uint32_t)addr_len, .gen_rkey_len = (uint32_t)p->gen_reg.rkey_len};
    uint8_t *q = msg + sizeof *h;
    memcpy(q, addr, addr_len);
    memcpy(q + addr_len, p->gen_reg.rkey, p->gen_reg.rkey_len);
    q += addr_len + p->gen_reg.rkey_len;
    fill_pattern(first_buf, 8, 8);
    if (put_one(p, first_buf, 8, PXS_PUT_NO_INLINE, first, &h->first_len, q, PXS_PROXY_MAX))
        return -1;
    return send_msg(p->wfd, MSG_HELLO, msg, (uint32_t)(q + h->first_len - msg));
}

static int producer_offer(producer_t *p, size_t size, int *quit)
{
    int rc = -1;
    uint8_t *user = malloc(size), *raw_user = malloc(size);
    ucpb_region_t ru = {0}, ra = {0};
    pxs_proxy_t puser, palloc;
    int have_user = 0, have_alloc = 0;
    if (!user || !raw_user) {
        prod_fail(p, PXS_ERR_NO_MEMORY, "malloc(%zu)", size);
        goto out;
    }
    fill_pattern(user, size, size);
    fill_pattern(raw_user, size, size);
    if (raw_map(p, raw_user, size, &ru) || raw_map(p, NULL, size, &ra)) goto out;
    fill_pattern(ra.addr, size, size);

    uint8_t msg[MSG_MAX];
    offer_t *o = (offer_t *)(void *)msg;
    *o = (offer_t){.size = size, .raw_user_addr = (uint64_t)(uintptr_t)ru.addr,
                   .raw_alloc_addr = (uint64_t)(uintptr_t)ra.addr,
                   .raw_user_rkey_len = (uint32_t)ru.rkey_len,
                   .raw_alloc_rkey_len = (uint32_t)ra.rkey_len};
    uint8_t *q = msg + sizeof *o;
    if (put_one(p, user, size, PXS_PUT_NO_INLINE, &puser, &o->user_len, q, PXS_PROXY_MAX))
        goto out;
    have_user = 1;
    q += o->user_len;
    /* PXS_PUT_COPY: the connector's mem_alloc, UCP_MEM_MAP_ALLOCATE memory. */
    if (put_one(p, user, size, PXS_PUT_COPY | PXS_PUT_NO_INLINE, &palloc, &o->alloc_len, q,
                PXS_PROXY_MAX))
        goto out;
    have_alloc = 1;
    q += o->alloc_len;
    memcpy(q, ru.rkey, ru.rkey_len);
    q += ru.rkey_len;
    memcpy(q, ra.rkey, ra.rkey_len);
    q += ra.rkey_len;
    if (send_msg(p->wfd, MSG_OFFER, msg, (uint32_t)(q - msg))) goto out;
    char cmd;
    if (read_full(p->rfd, &cmd, 1)) goto out; /* consumer gone */
    *quit = cmd != CMD_NEXT;
    rc = 0;
out:
    if (have_user) pxs_evict(p->store, &puser);
    if (have_alloc) pxs_evict(p->store, &palloc);
    ucpb_unmap(p->raw, &ru);
    ucpb_unmap(p->raw, &ra);
    free(raw_user);
    free(user);
    return rc;
}

static int producer_main(const cfg_t *cfg, const int *gate, int rfd, int wfd)
{
    producer_t p = {.rfd = rfd, .wfd = wfd, .gate = gate};
    uint8_t first_buf[8];
    pxs_proxy_t first;
    int have_first = 0, rc = -1;
    pxs_status_t st = pxs_init(NULL, &p.ctx);
    if (st != PXS_OK) return prod_fail(&p, st, "pxs_init");
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = "ucx",
                             .name = "bench"};
    st = pxs_store_open(p.ctx, &sp, &p.store);
    if (st != PXS_OK) {
        prod_fail(&p, st, "pxs_store_open(ucx)");
        goto out_ctx;
    }
    if (ucpb_init(1, &p.raw) != UCS_OK) {
        prod_fail(&p, PXS_ERR_IO, "raw UCP owner init");
        goto out_store;
    }
    p.gen = alloc_faulted(4096);
    if (!p.gen) {
        prod_fail(&p, PXS_ERR_NO_MEMORY, "generation page");
        goto out_raw;
    }
    p.gen[0] = GEN_VALUE;
    if (raw_map(&p, p.gen, 4096, &p.gen_reg)) goto out_gen;
    if (ucpb_thread_start(p.raw, gate) != UCS_OK) {
        prod_fail(&p, PXS_ERR_IO, "raw owner progress thread");
        goto out_gen;
    }
    rc = producer_hello(&p, &first, first_buf);
    have_first = rc == 0;
    int quit = 0;
    for (int i = 0; !rc && !quit && i < cfg->nsizes; i++) rc = producer_offer(&p, cfg->sizes[i], &quit);
    ucpb_thread_stop(p.raw);
    if (have_first) pxs_evict(p.store, &first);
out_gen:
    ucpb_unmap(p.raw, &p.gen_reg);
    free(p.gen);
out_raw:
    ucpb_fini(p.raw);
out_store:
    pxs_store_close(p.store);
out_ctx:
    pxs_finalize(p.ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* timing                                                               */

typedef int (*op_fn)(void *arg);

typedef struct {
    double med, min, max; /* ns per operation */
} stat_t;

/* One thing to time. gate: what the raw owner's thread does meanwhile
 * (1 spin, 0 sleep on its event fd); *gate_p is set before each batch and
 * cleared after it, outside the timed region. */
typedef struct {
    op_fn fn;
    void *arg;
    int gate;
    uint64_t iters;
    double samples[MAX_REPS];
} timed_t;

static int *gate_p; /* shared with the producer */

static void set_gate(int v)
{
    __atomic_store_n(gate_p, v, __ATOMIC_RELAXED);
    /* Give a sleeping owner thread its 1 ms poll to notice. */
    if (v) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static int run_batch(const timed_t *t, uint64_t n, double *ns_p)
{
    if (t->gate) set_gate(1);
    int rc = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < n && !rc; i++) rc = t->fn(t->arg);
    *ns_p = now_ns() - t0;
    if (t->gate) set_gate(0);
    return rc;
}

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

/* Interleaved, ABBA; @return 0 or 1 + the index of the failed operation. */
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
    int window;
    pxs_status_t st;
} resolve_arg_t;

static int op_resolve(void *a)
{
    resolve_arg_t *r = a;
    r->st = pxs_resolve(r->ctx, r->proxy, r->dst, r->size, NULL);
    return r->st != PXS_OK;
}

/* window resolves of the same proxy into the same dst in flight, then a
 * wait for each (osu_get_bw's shape). */
static int op_resolve_window(void *a)
{
    resolve_arg_t *r = a;
    pxs_request_t *reqs[WINDOW_MAX];
    int n = 0, rc = 0;
    for (; n < r->window; n++) {
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

typedef struct {
    ucpb_t *u;
    ucp_ep_h ep;
    ucp_rkey_h rkey, gen_rkey;
    uint64_t raddr, gen_raddr;
    void *dst;
    size_t size;
    int window;
    uint64_t gen_buf;
    ucs_status_t st;
} raw_arg_t;

static int op_raw(void *a)
{
    raw_arg_t *r = a;
    r->st = ucpb_get(r->u, r->ep, r->dst, r->size, r->raddr, r->rkey, GET_TIMEOUT_MS);
    return r->st != UCS_OK;
}

static int op_raw_window(void *a)
{
    raw_arg_t *r = a;
    r->st = ucpb_get_window(r->u, r->ep, r->dst, r->size, r->raddr, r->rkey, r->window,
                            GET_TIMEOUT_MS);
    return r->st != UCS_OK;
}

/* pxs's protocol by hand: generation, bytes, generation, each waited for. */
static int op_raw3(void *a)
{
    raw_arg_t *r = a;
    r->st = ucpb_get(r->u, r->ep, &r->gen_buf, 8, r->gen_raddr, r->gen_rkey, GET_TIMEOUT_MS);
    if (r->st == UCS_OK && r->gen_buf != GEN_VALUE) r->st = UCS_ERR_INVALID_ADDR;
    if (r->st == UCS_OK)
        r->st = ucpb_get(r->u, r->ep, r->dst, r->size, r->raddr, r->rkey, GET_TIMEOUT_MS);
    if (r->st == UCS_OK)
        r->st = ucpb_get(r->u, r->ep, &r->gen_buf, 8, r->gen_raddr, r->gen_rkey, GET_TIMEOUT_MS);
    if (r->st == UCS_OK && r->gen_buf != GEN_VALUE) r->st = UCS_ERR_INVALID_ADDR;
    return r->st != UCS_OK;
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
    __asm__ volatile("" : : "r"(c->dst) : "memory");
    return 0;
}

/* ------------------------------------------------------------------ */
/* consumer                                                             */

/* Per size, ns per operation. */
enum {
    T_PXS, T_RAW, T_RAW3, T_RAWEV, T_ALLOC, T_RAWALLOC, T_COPY, /* one get */
    T_PXS_W, T_RAW_W, T_ALLOC_W, T_RAWALLOC_W,                  /* window */
    T_N
};
static const char *const t_names[T_N] = {
    "pxs-ucx", "ucp_get", "ucp_get-x3", "ucp_get-event", "pxs-ucx-alloc", "ucp_get-alloc",
    "memcpy", "pxs-ucx window", "ucp_get window", "pxs-ucx-alloc window", "ucp_get-alloc window"};

typedef struct {
    size_t size;
    int window;
    stat_t s[T_N]; /* ns per get (window: per get, i.e. per window / window) */
} size_result_t;

typedef struct {
    stat_t init, first, warm, fini; /* pxs, ns */
    stat_t raw_first, raw_warm;     /* raw UCP: connect + unpack + get; get */
} first_result_t;

typedef struct {
    size_t size;
    int batch;
    int cold;
    stat_t put; /* ns per put */
} put_result_t;

typedef struct {
    const cfg_t *cfg;
    pxs_context_t *ctx;
    pid_t child;
    int rfd, wfd;
    ucpb_t *raw;
    ucp_ep_h ep;
    ucp_rkey_h gen_rkey;
    uint64_t gen_addr;
    uint8_t owner_addr[ADDR_MAX];
    uint8_t gen_rkey_bytes[RKEY_MAX];
    uint32_t gen_rkey_len;
    pxs_proxy_t first;
    size_result_t res[MAX_SIZES];
    int nres;
    first_result_t fr;
    put_result_t puts[4];
    int nputs;
    stat_t raw_map, raw_unmap; /* ns per 4 KiB page */
} consumer_t;

static int recv_hello(consumer_t *c)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    hello_t h;
    if (recv_msg(c->rfd, MSG_HELLO, msg, &len)) return -1;
    if (len < sizeof h) return -1;
    memcpy(&h, msg, sizeof h);
    if (h.addr_len > ADDR_MAX || h.gen_rkey_len > RKEY_MAX ||
        (uint64_t)sizeof h + h.addr_len + h.gen_rkey_len + h.first_len > len ||
        h.pid != c->child) {
        fprintf(stderr, "pxs_bench_ucx: malformed hello\n");
        return -1;
    }
    const uint8_t *q = msg + sizeof h;
    memcpy(c->owner_addr, q, h.addr_len);
    memcpy(c->gen_rkey_bytes, q + h.addr_len, h.gen_rkey_len);
    c->gen_rkey_len = h.gen_rkey_len;
    c->gen_addr = h.gen_addr;
    pxs_status_t st = pxs_proxy_decode(q + h.addr_len + h.gen_rkey_len, h.first_len, &c->first);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_ucx: first proxy: %s\n", pxs_strerror(st));
        return -1;
    }
    if (ucpb_init(0, &c->raw) != UCS_OK || ucpb_connect(c->raw, c->owner_addr, &c->ep) != UCS_OK)
        return -1;
    ucs_status_t us = ucp_ep_rkey_unpack(c->ep, c->gen_rkey_bytes, &c->gen_rkey);
    if (us != UCS_OK) {
        fprintf(stderr, "pxs_bench_ucx: unpack generation rkey: %s\n", ucs_status_string(us));
        return -1;
    }
    return 0;
}

static void raw_close(consumer_t *c)
{
    if (c->gen_rkey) ucp_rkey_destroy(c->gen_rkey);
    c->gen_rkey = NULL;
    ucpb_disconnect(c->raw, c->ep);
    c->ep = NULL;
    ucpb_fini(c->raw);
    c->raw = NULL;
}

/* --- first resolve on a fresh context --------------------------------- */

static int first_rep(consumer_t *c, int r, double *v)
{
    uint8_t dst[8], want[8];
    fill_pattern(want, 8, 8);
    pxs_context_t *ctx;
    double t0 = now_ns();
    pxs_status_t st = pxs_init(NULL, &ctx);
    double t1 = now_ns();
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_ucx: fresh pxs_init: %s\n", pxs_strerror(st));
        return -1;
    }
    memset(dst, 0, sizeof dst);
    st = pxs_resolve(ctx, &c->first, dst, sizeof dst, NULL);
    double t2 = now_ns();
    for (int i = 0; st == PXS_OK && i < WARM_GETS; i++)
        st = pxs_resolve(ctx, &c->first, dst, sizeof dst, NULL);
    double t3 = now_ns();
    pxs_finalize(ctx);
    double t4 = now_ns();
    if (st != PXS_OK || memcmp(dst, want, 8)) {
        fprintf(stderr, "pxs_bench_ucx: first resolve: %s\n",
                st != PXS_OK ? pxs_strerror(st) : "wrong bytes");
        return -1;
    }
    /* Raw UCP: a fresh worker, then endpoint + unpack + first get, timed. */
    ucpb_t *u;
    ucp_ep_h ep = NULL;
    ucp_rkey_h rk = NULL;
    uint64_t g = 0;
    if (ucpb_init(0, &u) != UCS_OK) return -1;
    set_gate(1);
    double t5 = now_ns();
    ucs_status_t us = ucpb_connect(u, c->owner_addr, &ep);
    if (us == UCS_OK) us = ucp_ep_rkey_unpack(ep, c->gen_rkey_bytes, &rk);
    if (us == UCS_OK) us = ucpb_get(u, ep, &g, 8, c->gen_addr, rk, GET_TIMEOUT_MS);
    double t6 = now_ns();
    for (int i = 0; us == UCS_OK && i < WARM_GETS; i++)
        us = ucpb_get(u, ep, &g, 8, c->gen_addr, rk, GET_TIMEOUT_MS);
    double t7 = now_ns();
    set_gate(0);
    if (rk) ucp_rkey_destroy(rk);
    ucpb_disconnect(u, ep);
    ucpb_fini(u);
    if (us != UCS_OK || g != GEN_VALUE) {
        fprintf(stderr, "pxs_bench_ucx: raw first get: %s\n",
                us != UCS_OK ? ucs_status_string(us) : "wrong bytes");
        return -1;
    }
    if (r >= 0) {
        v[0 * MAX_REPS + r] = t1 - t0;
        v[1 * MAX_REPS + r] = t2 - t1;
        v[2 * MAX_REPS + r] = (t3 - t2) / WARM_GETS;
        v[3 * MAX_REPS + r] = t4 - t3;
        v[4 * MAX_REPS + r] = t6 - t5;
        v[5 * MAX_REPS + r] = (t7 - t6) / WARM_GETS;
    }
    return 0;
}

static int bench_first(consumer_t *c)
{
    static double v[6 * MAX_REPS];
    for (int r = -1; r < c->cfg->reps; r++) /* one warm-up: libraries, transports */
        if (first_rep(c, r, v)) return -1;
    int n = c->cfg->reps;
    c->fr = (first_result_t){stats_of(v, n), stats_of(v + MAX_REPS, n),
                             stats_of(v + 2 * MAX_REPS, n), stats_of(v + 3 * MAX_REPS, n),
                             stats_of(v + 4 * MAX_REPS, n), stats_of(v + 5 * MAX_REPS, n)};
    return 0;
}

/* --- per size ---------------------------------------------------------- */

typedef struct {
    size_t size;
    uint8_t *dst, *src;
    pxs_proxy_t user, alloc;
    uint64_t raw_user_addr, raw_alloc_addr;
    ucp_rkey_h raw_user_rkey, raw_alloc_rkey;
} point_t;

static int decode_offer(consumer_t *c, const uint8_t *msg, uint32_t len, size_t want, point_t *pt)
{
    offer_t o;
    if (len < sizeof o) return -1;
    memcpy(&o, msg, sizeof o);
    if (o.size != want ||
        (uint64_t)sizeof o + o.user_len + o.alloc_len + o.raw_user_rkey_len +
                o.raw_alloc_rkey_len > len) {
        fprintf(stderr, "pxs_bench_ucx: malformed offer for size %zu\n", want);
        return -1;
    }
    const uint8_t *q = msg + sizeof o;
    pxs_status_t st = pxs_proxy_decode(q, o.user_len, &pt->user);
    if (st == PXS_OK) st = pxs_proxy_decode(q + o.user_len, o.alloc_len, &pt->alloc);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_ucx: pxs_proxy_decode: %s\n", pxs_strerror(st));
        return -1;
    }
    q += o.user_len + o.alloc_len;
    ucs_status_t us = ucp_ep_rkey_unpack(c->ep, q, &pt->raw_user_rkey);
    if (us == UCS_OK) us = ucp_ep_rkey_unpack(c->ep, q + o.raw_user_rkey_len, &pt->raw_alloc_rkey);
    if (us != UCS_OK) {
        fprintf(stderr, "pxs_bench_ucx: ucp_ep_rkey_unpack: %s\n", ucs_status_string(us));
        return -1;
    }
    pt->size = want;
    pt->raw_user_addr = o.raw_user_addr;
    pt->raw_alloc_addr = o.raw_alloc_addr;
    return 0;
}

static int report_op_failure(const char *what, const timed_t *t, size_t size)
{
    if (t->fn == op_resolve || t->fn == op_resolve_window) {
        const resolve_arg_t *r = t->arg;
        fprintf(stderr, "pxs_bench_ucx: %s at size %zu: %s\n", what, size, pxs_strerror(r->st));
    } else if (t->fn == op_raw || t->fn == op_raw3 || t->fn == op_raw_window) {
        const raw_arg_t *r = t->arg;
        fprintf(stderr, "pxs_bench_ucx: %s at size %zu: %s\n", what, size,
                ucs_status_string(r->st));
    } else {
        fprintf(stderr, "pxs_bench_ucx: %s at size %zu failed\n", what, size);
    }
    return -1;
}

static int measure_point(consumer_t *c, const point_t *pt, size_result_t *out)
{
    int w = window_for(pt->size);
    resolve_arg_t ru = {c->ctx, &pt->user, pt->dst, pt->size, w, PXS_OK};
    resolve_arg_t ra = {c->ctx, &pt->alloc, pt->dst, pt->size, w, PXS_OK};
    raw_arg_t xu = {.u = c->raw, .ep = c->ep, .rkey = pt->raw_user_rkey, .gen_rkey = c->gen_rkey,
                    .raddr = pt->raw_user_addr, .gen_raddr = c->gen_addr, .dst = pt->dst,
                    .size = pt->size, .window = w};
    raw_arg_t xa = xu;
    xa.rkey = pt->raw_alloc_rkey;
    xa.raddr = pt->raw_alloc_addr;
    copy_arg_t cp = {pt->dst, pt->src, pt->size};
    timed_t t[T_N] = {
        [T_PXS] = {.fn = op_resolve, .arg = &ru},
        [T_RAW] = {.fn = op_raw, .arg = &xu, .gate = 1},
        [T_RAW3] = {.fn = op_raw3, .arg = &xu, .gate = 1},
        [T_RAWEV] = {.fn = op_raw, .arg = &xu, .gate = 0},
        [T_ALLOC] = {.fn = op_resolve, .arg = &ra},
        [T_RAWALLOC] = {.fn = op_raw, .arg = &xa, .gate = 1},
        [T_COPY] = {.fn = op_memcpy, .arg = &cp},
        [T_PXS_W] = {.fn = op_resolve_window, .arg = &ru},
        [T_RAW_W] = {.fn = op_raw_window, .arg = &xu, .gate = 1},
        [T_ALLOC_W] = {.fn = op_resolve_window, .arg = &ra},
        [T_RAWALLOC_W] = {.fn = op_raw_window, .arg = &xa, .gate = 1},
    };
    /* Every path delivers the producer's bytes: checked once, untimed. */
    static const int check[] = {T_PXS, T_RAW, T_RAW3, T_ALLOC, T_RAWALLOC};
    for (size_t i = 0; i < sizeof check / sizeof check[0]; i++) {
        const timed_t *k = &t[check[i]];
        memset(pt->dst, 0, pt->size);
        if (k->gate) set_gate(1);
        int bad = k->fn(k->arg);
        if (k->gate) set_gate(0);
        if (bad) return report_op_failure(t_names[check[i]], k, pt->size);
        if (memcmp(pt->dst, pt->src, pt->size)) {
            fprintf(stderr, "pxs_bench_ucx: %s: wrong bytes at size %zu\n", t_names[check[i]],
                    pt->size);
            return -1;
        }
    }
    /* A window of one is the single get already measured. */
    int n = w > 1 ? T_N : T_PXS_W;
    stat_t s[T_N];
    int bad = measure(t, n, c->cfg, s);
    if (bad) return report_op_failure(t_names[bad - 1], &t[bad - 1], pt->size);
    if (w == 1) {
        s[T_PXS_W] = s[T_PXS];
        s[T_RAW_W] = s[T_RAW];
        s[T_ALLOC_W] = s[T_ALLOC];
        s[T_RAWALLOC_W] = s[T_RAWALLOC];
    } else {
        for (int k = T_PXS_W; k < T_N; k++) {
            s[k].med /= w;
            s[k].min /= w;
            s[k].max /= w;
        }
    }
    out->size = pt->size;
    out->window = w;
    memcpy(out->s, s, sizeof s);
    return 0;
}

static int consume_size(consumer_t *c, size_t size, int last)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    point_t pt = {0};
    int rc = -1;
    if (recv_msg(c->rfd, MSG_OFFER, msg, &len) || decode_offer(c, msg, len, size, &pt)) goto out;
    pt.dst = alloc_faulted(size);
    pt.src = alloc_faulted(size);
    if (!pt.dst || !pt.src) {
        fprintf(stderr, "pxs_bench_ucx: out of memory at size %zu\n", size);
        goto out;
    }
    fill_pattern(pt.src, size, size);
    rc = measure_point(c, &pt, &c->res[c->nres]);
    if (!rc) c->nres++;
out:
    if (pt.raw_user_rkey) ucp_rkey_destroy(pt.raw_user_rkey);
    if (pt.raw_alloc_rkey) ucp_rkey_destroy(pt.raw_alloc_rkey);
    free(pt.dst);
    free(pt.src);
    char cmd = (rc || last) ? CMD_QUIT : CMD_NEXT;
    if (write_full(c->wfd, &cmd, 1) && !rc) {
        fprintf(stderr, "pxs_bench_ucx: cannot reach the producer\n");
        rc = -1;
    }
    return rc;
}

/* --- put rate ------------------------------------------------------------ */

static int put_failed(pxs_status_t st, const char *what)
{
    fprintf(stderr, "pxs_bench_ucx: %s: %s\n", what, pxs_strerror(st));
    return -1;
}

/* n puts, timed, of buffer base + i * stride (stride 0: the same buffer),
 * then their evictions, untimed. */
static int put_batch(pxs_store_t *store, uint8_t *base, size_t size, size_t stride, int n,
                     pxs_proxy_t *proxies, double *ns_p)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    int done = 0, rc = 0;
    double t0 = now_ns();
    for (; done < n; done++) {
        pxs_status_t st = pxs_put(store, base + (size_t)done * stride, size, &pp, &proxies[done]);
        if (st != PXS_OK) {
            rc = put_failed(st, "pxs_put");
            break;
        }
    }
    *ns_p = (now_ns() - t0) / n;
    for (int i = 0; i < done; i++) {
        pxs_status_t st = pxs_evict(store, &proxies[i]);
        if (st != PXS_OK && !rc) rc = put_failed(st, "pxs_evict");
    }
    return rc;
}

static int measure_puts(consumer_t *c, pxs_store_t *store, size_t size, int cold, pxs_proxy_t *proxies)
{
    int n = cold ? (size <= 4096 ? COLD_PAGES : COLD_MIB) : PUT_BATCH;
    size_t stride = cold ? (size + 4095) / 4096 * 4096 : 0;
    size_t area = cold ? stride * (size_t)n : size;
    uint8_t *buf = alloc_faulted(area);
    double samples[MAX_REPS];
    pxs_proxy_t anchor;
    int have_anchor = 0, rc = -1;
    if (!buf) {
        fprintf(stderr, "pxs_bench_ucx: out of memory for the put benchmark\n");
        return -1;
    }
    if (!cold) {
        /* Keeps the buffer's registration cached through the evictions. */
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
        pxs_status_t st = pxs_put(store, buf, size, &pp, &anchor);
        if (st != PXS_OK) {
            put_failed(st, "pxs_put (anchor)");
            goto out;
        }
        have_anchor = 1;
    }
    for (int r = -2; r < c->cfg->reps; r++) {
        double ns;
        if (put_batch(store, buf, size, stride, n, proxies, &ns)) goto out;
        if (r >= 0) samples[r] = ns;
    }
    c->puts[c->nputs++] = (put_result_t){.size = size, .batch = n, .cold = cold,
                                         .put = stats_of(samples, c->cfg->reps)};
    rc = 0;
out:
    if (have_anchor) pxs_evict(store, &anchor);
    free(buf);
    return rc;
}

/* What a registration costs UCX itself: ucp_mem_map + ucp_rkey_pack of a
 * fresh 4 KiB page, and ucp_mem_unmap + release (the least a put that
 * really registers, and its evict, must add). */
static int measure_raw_map(consumer_t *c)
{
    ucpb_t *u;
    uint8_t *area = alloc_faulted((size_t)COLD_PAGES * 4096);
    ucpb_region_t *regs = calloc(COLD_PAGES, sizeof *regs);
    double map_s[MAX_REPS], unmap_s[MAX_REPS];
    int rc = -1;
    if (!area || !regs || ucpb_init(0, &u) != UCS_OK) goto out_mem;
    for (int r = -1; r < c->cfg->reps; r++) {
        double t0 = now_ns();
        for (int i = 0; i < COLD_PAGES; i++)
            if (ucpb_map(u, area + (size_t)i * 4096, 4096, &regs[i]) != UCS_OK) goto out;
        double t1 = now_ns();
        for (int i = 0; i < COLD_PAGES; i++) ucpb_unmap(u, &regs[i]);
        double t2 = now_ns();
        if (r >= 0) {
            map_s[r] = (t1 - t0) / COLD_PAGES;
            unmap_s[r] = (t2 - t1) / COLD_PAGES;
        }
    }
    c->raw_map = stats_of(map_s, c->cfg->reps);
    c->raw_unmap = stats_of(unmap_s, c->cfg->reps);
    rc = 0;
out:
    ucpb_fini(u);
out_mem:
    free(regs);
    free(area);
    return rc;
}

static int bench_put_rate(consumer_t *c)
{
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = "ucx",
                             .name = "bench-put"};
    pxs_store_t *store;
    pxs_status_t st = pxs_store_open(c->ctx, &sp, &store);
    if (st != PXS_OK) return put_failed(st, "pxs_store_open(ucx)");
    pxs_proxy_t *proxies = alloc_faulted(PUT_BATCH * sizeof *proxies);
    int rc = proxies ? 0 : -1;
    if (!rc) rc = measure_puts(c, store, 8, 0, proxies);
    if (!rc) rc = measure_puts(c, store, (size_t)64 << 20, 0, proxies);
    if (!rc) rc = measure_puts(c, store, 4096, 1, proxies);
    if (!rc) rc = measure_puts(c, store, (size_t)1 << 20, 1, proxies);
    free(proxies);
    pxs_store_close(store);
    if (!rc) rc = measure_raw_map(c);
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

static void print_latency(const consumer_t *c)
{
    char sp[48];
    printf("\n# pxs ucx get latency test (%s): user buffer, pxs_resolve vs one raw ucp_get_nbx\n"
           "# (ratio = baseline time / pxs time; median of %d reps, spread min-max)\n"
           "# x3 = three dependent raw gets (8 B, bytes, 8 B) = pxs's protocol by hand;\n"
           "# event = one raw get with the owner's thread sleeping on its event fd (as pxs's)\n",
           c->cfg->transport, c->cfg->reps);
    printf("%-10s%16s%18s%14s%8s%14s%8s%14s%14s%8s\n", "# Size", "Latency (us)", "spread",
           "ucp_get (us)", "ratio", "x3 (us)", "ratio", "event (us)", "memcpy (us)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        const stat_t *s = r->s;
        spread_us(sp, sizeof sp, s[T_PXS]);
        printf("%-10zu%16.2f%18s%14.2f%8.3f%14.2f%8.3f%14.2f%14.2f%8.3f\n", r->size,
               s[T_PXS].med / 1e3, sp, s[T_RAW].med / 1e3, s[T_RAW].med / s[T_PXS].med,
               s[T_RAW3].med / 1e3, s[T_RAW3].med / s[T_PXS].med, s[T_RAWEV].med / 1e3,
               s[T_COPY].med / 1e3, s[T_COPY].med / s[T_PXS].med);
    }
    printf("\n# pxs ucx get latency test (%s): PXS_PUT_COPY object (UCP_MEM_MAP_ALLOCATE memory)"
           " vs raw ucp_get of an ALLOCATE region\n", c->cfg->transport);
    printf("%-10s%16s%18s%14s%8s%14s%8s\n", "# Size", "Latency (us)", "spread", "ucp_get (us)",
           "ratio", "memcpy (us)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        const stat_t *s = r->s;
        spread_us(sp, sizeof sp, s[T_ALLOC]);
        printf("%-10zu%16.2f%18s%14.2f%8.3f%14.2f%8.3f\n", r->size, s[T_ALLOC].med / 1e3, sp,
               s[T_RAWALLOC].med / 1e3, s[T_RAWALLOC].med / s[T_ALLOC].med, s[T_COPY].med / 1e3,
               s[T_COPY].med / s[T_ALLOC].med);
    }
}

static void print_bw_one(const consumer_t *c, const char *what, int pxs, int raw, int pxs_w,
                         int raw_w)
{
    char sp[48];
    printf("\n# pxs ucx get bandwidth test (%s): %s\n"
           "# blocking: one get at a time; window: W gets in flight (W = min(64, 64 MiB / size))\n",
           c->cfg->transport, what);
    printf("%-10s%16s%20s%14s%8s%6s%16s%14s%8s%14s%8s\n", "# Size", "Bandwidth (MB/s)", "spread",
           "ucp_get", "ratio", "W", "pxs window", "ucp_get win", "ratio", "memcpy", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        const stat_t *s = r->s;
        spread_bw(sp, sizeof sp, r->size, s[pxs]);
        printf("%-10zu%16.2f%20s%14.2f%8.3f%6d%16.2f%14.2f%8.3f%14.2f%8.3f\n", r->size,
               mbps(r->size, s[pxs].med), sp, mbps(r->size, s[raw].med), s[raw].med / s[pxs].med,
               r->window, mbps(r->size, s[pxs_w].med), mbps(r->size, s[raw_w].med),
               s[raw_w].med / s[pxs_w].med, mbps(r->size, s[T_COPY].med),
               s[T_COPY].med / s[pxs].med);
    }
}

static void print_first_and_puts(const consumer_t *c)
{
    const first_result_t *f = &c->fr;
    printf("\n# pxs ucx first resolve (%s): 8 B object, fresh context vs warm (median of %d)\n",
           c->cfg->transport, c->cfg->reps);
    printf("%-34s%16s%22s\n", "# What", "Latency (us)", "spread");
    char sp[48];
#define ROW(name, st)                                                                 \
    do {                                                                              \
        spread_us(sp, sizeof sp, st);                                                 \
        printf("%-34s%16.2f%22s\n", name, (st).med / 1e3, sp);                        \
    } while (0)
    ROW("pxs_init (fresh context)", f->init);
    ROW("pxs first resolve (ep + rkeys)", f->first);
    ROW("pxs warm resolve", f->warm);
    ROW("pxs_finalize", f->fini);
    ROW("raw ep_create+unpack+first get", f->raw_first);
    ROW("raw warm get", f->raw_warm);
#undef ROW
    printf("\n# pxs ucx put rate (%s, zero copy, PXS_PUT_NO_INLINE)\n"
           "# warm: the same buffer, already registered (another object on it is live);\n"
           "# cold: each put a buffer on pages never registered (then evicted, untimed);\n"
           "# see RESULTS.md: pxs's registration cache wrongly matches such buffers\n"
           "# (transports/ucx/ucx_mem.c reg_find), so most of them register nothing\n",
           c->cfg->transport);
    printf("%-10s%8s%10s%18s%26s\n", "# Size", "reg", "batch", "Puts/s", "spread");
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        snprintf(sp, sizeof sp, "%.0f-%.0f", 1e9 / p->put.max, 1e9 / p->put.min);
        printf("%-10zu%8s%10d%18.0f%26s\n", p->size, p->cold ? "cold" : "warm", p->batch,
               1e9 / p->put.med, sp);
    }
    printf("# raw UCX, fresh 4 KiB page: ucp_mem_map + ucp_rkey_pack %.0f ns (%.0f-%.0f), "
           "ucp_mem_unmap + release %.0f ns\n",
           c->raw_map.med, c->raw_map.min, c->raw_map.max, c->raw_unmap.med);
}

/* ------------------------------------------------------------------ */
/* output: JSON records (PERF.md)                                       */

typedef struct {
    const char *bench, *impl, *baseline, *metric;
    size_t size;
    double value, vmin, vmax;
    int has_base;
    double base, bmin, bmax;
    const char *extra;
} record_t;

static void json_record(FILE *f, const cfg_t *cfg, const record_t *r)
{
    fprintf(f, "{\"bench\":\"%s\",\"impl\":\"%s\",\"baseline\":\"%s\",\"size\":%zu,"
               "\"metric\":\"%s\",\"value\":%.6g,",
            r->bench, r->impl, r->baseline, r->size, r->metric, r->value);
    if (r->has_base)
        fprintf(f, "\"baseline_value\":%.6g,\"ratio\":%.4f,", r->base,
                !strcmp(r->metric, "us") ? r->base / r->value : r->value / r->base);
    else
        fprintf(f, "\"baseline_value\":null,\"ratio\":null,");
    fprintf(f, "\"reps\":%d,\"transport\":\"%s\",\"min\":%.6g,\"max\":%.6g", cfg->reps,
            cfg->transport, r->vmin, r->vmax);
    if (r->has_base) fprintf(f, ",\"baseline_min\":%.6g,\"baseline_max\":%.6g", r->bmin, r->bmax);
    if (r->extra) fprintf(f, ",%s", r->extra);
    fprintf(f, "}\n");
}

static void json_pair(FILE *f, const cfg_t *cfg, const char *bench, const char *impl,
                      const char *baseline, size_t size, stat_t v, stat_t b, const char *extra)
{
    if (!strcmp(bench, "get_latency")) {
        record_t lat = {bench, impl, baseline, "us", size, v.med / 1e3, v.min / 1e3, v.max / 1e3,
                        1, b.med / 1e3, b.min / 1e3, b.max / 1e3, extra};
        json_record(f, cfg, &lat);
    } else {
        record_t bw = {bench, impl, baseline, "MB/s", size, mbps(size, v.med), mbps(size, v.max),
                       mbps(size, v.min), 1, mbps(size, b.med), mbps(size, b.max),
                       mbps(size, b.min), extra};
        json_record(f, cfg, &bw);
    }
}

static void json_sizes(FILE *f, const consumer_t *c)
{
    const cfg_t *g = c->cfg;
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        const stat_t *s = r->s;
        size_t z = r->size;
        char win[48];
        snprintf(win, sizeof win, "\"window\":%d", r->window);
        static const char *const benches[] = {"get_latency", "get_bw"};
        for (int b = 0; b < 2; b++) {
            const char *bn = benches[b];
            json_pair(f, g, bn, "pxs-ucx", "ucp_get", z, s[T_PXS], s[T_RAW], "\"window\":1");
            json_pair(f, g, bn, "pxs-ucx", "memcpy", z, s[T_PXS], s[T_COPY], "\"window\":1");
            json_pair(f, g, bn, "pxs-ucx-alloc", "ucp_get-alloc", z, s[T_ALLOC], s[T_RAWALLOC],
                      "\"window\":1");
            json_pair(f, g, bn, "pxs-ucx-alloc", "memcpy", z, s[T_ALLOC], s[T_COPY],
                      "\"window\":1");
        }
        json_pair(f, g, "get_bw", "pxs-ucx-window", "ucp_get-window", z, s[T_PXS_W], s[T_RAW_W],
                  win);
        json_pair(f, g, "get_bw", "pxs-ucx-alloc-window", "ucp_get-alloc-window", z, s[T_ALLOC_W],
                  s[T_RAWALLOC_W], win);
        /* Diagnostics: the raw baseline against pxs's protocol shape. */
        json_pair(f, g, "get_latency", "ucp_get-x3", "ucp_get", z, s[T_RAW3], s[T_RAW],
                  "\"window\":1");
        json_pair(f, g, "get_latency", "ucp_get-event", "ucp_get", z, s[T_RAWEV], s[T_RAW],
                  "\"window\":1");
    }
}

static void json_first_and_puts(FILE *f, const consumer_t *c)
{
    const first_result_t *fr = &c->fr;
    char extra[160];
    snprintf(extra, sizeof extra, "\"pxs_init_us\":%.6g,\"pxs_finalize_us\":%.6g",
             fr->init.med / 1e3, fr->fini.med / 1e3);
    json_pair(f, c->cfg, "get_latency", "pxs-ucx-first", "ucp_get-first", 8, fr->first,
              fr->raw_first, extra);
    json_pair(f, c->cfg, "get_latency", "pxs-ucx-warm", "ucp_get", 8, fr->warm, fr->raw_warm,
              NULL);
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        char ex[96];
        snprintf(ex, sizeof ex, "\"batch\":%d,\"registration\":\"%s\"", p->batch,
                 p->cold ? "cold" : "warm");
        record_t put = {"put_rate", p->cold ? "pxs-ucx-coldreg" : "pxs-ucx", "none", "puts/s",
                        p->size, 1e9 / p->put.med, 1e9 / p->put.max, 1e9 / p->put.min, 0, 0, 0,
                        0, ex};
        json_record(f, c->cfg, &put);
    }
    record_t map = {"put_rate", "ucp_mem_map", "none", "maps/s", 4096, 1e9 / c->raw_map.med,
                    1e9 / c->raw_map.max, 1e9 / c->raw_map.min, 0, 0, 0, 0,
                    "\"what\":\"ucp_mem_map+ucp_rkey_pack of a fresh page\""};
    json_record(f, c->cfg, &map);
}

static int write_json(const consumer_t *c)
{
    FILE *f = fopen(c->cfg->json_path, "w");
    if (!f) {
        fprintf(stderr, "pxs_bench_ucx: cannot write %s: %s\n", c->cfg->json_path, strerror(errno));
        return -1;
    }
    json_sizes(f, c);
    json_first_and_puts(f, c);
    if (fclose(f) != 0) {
        fprintf(stderr, "pxs_bench_ucx: writing %s: %s\n", c->cfg->json_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

static int reap_child(pid_t pid, int kill_it)
{
    if (kill_it) kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (kill_it) return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pxs_bench_ucx: producer exited abnormally (status %#x)\n", status);
        return -1;
    }
    return 0;
}

static int consumer_run(consumer_t *c)
{
    if (recv_hello(c) || bench_first(c)) return -1;
    for (int i = 0; i < c->cfg->nsizes; i++)
        if (consume_size(c, c->cfg->sizes[i], i == c->cfg->nsizes - 1)) return -1;
    return 0;
}

static int consumer_main(consumer_t *c)
{
    pxs_status_t st = pxs_init(NULL, &c->ctx);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_bench_ucx: pxs_init: %s\n", pxs_strerror(st));
        return -1;
    }
    int rc = consumer_run(c);
    if (c->raw) raw_close(c);
    int rc_child = reap_child(c->child, rc != 0);
    c->child = 0;
    if (!rc) rc = rc_child;
    if (!rc) rc = bench_put_rate(c);
    if (!rc) {
        print_latency(c);
        print_bw_one(c, "user buffer, pxs_resolve vs raw ucp_get", T_PXS, T_RAW, T_PXS_W, T_RAW_W);
        print_bw_one(c, "PXS_PUT_COPY object vs raw ucp_get of an ALLOCATE region", T_ALLOC,
                     T_RAWALLOC, T_ALLOC_W, T_RAWALLOC_W);
        print_first_and_puts(c);
        fflush(stdout);
    }
    if (!rc && c->cfg->json_path) rc = write_json(c);
    pxs_finalize(c->ctx);
    return rc;
}

int main(int argc, char **argv)
{
    static consumer_t cons;
    cfg_t cfg;
    if (parse_args(argc, argv, &cfg)) return 2;
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) {
        perror("pxs_bench_ucx: pipe");
        return 1;
    }
    gate_p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (gate_p == MAP_FAILED) {
        perror("pxs_bench_ucx: mmap");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t parent = getpid();
    /* Before anything starts UCX: it does not survive fork(). */
    pid_t pid = fork();
    if (pid < 0) {
        perror("pxs_bench_ucx: fork");
        return 1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        close(to_child[1]);
        close(from_child[0]);
        int rc = producer_main(&cfg, gate_p, to_child[0], from_child[1]);
        exit(rc ? 1 : 0);
    }
    close(to_child[0]);
    close(from_child[1]);
    cons.cfg = &cfg;
    cons.child = pid;
    cons.rfd = from_child[0];
    cons.wfd = to_child[1];
    printf("# pxs %s ucx benchmark (%s): producer pid %d, consumer pid %d, %d reps, %d sizes\n",
           pxs_version(), cfg.transport, (int)pid, (int)getpid(), cfg.reps, cfg.nsizes);
    fflush(stdout);
    int rc = consumer_main(&cons);
    if (cons.child > 0) reap_child(cons.child, 1);
    close(cons.rfd);
    close(cons.wfd);
    munmap(gate_p, 4096);
    return rc ? 1 : 0;
}
