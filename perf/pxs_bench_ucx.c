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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <pxs/pxs.h>

#include "baselines/ucp_get.h"

#include "bench_common.h"

#define PUT_BATCH 10000
#define COLD_PAGES 1000      /* cold puts of 4 KiB, one per fresh page */
#define COLD_MIB 64          /* cold puts of 1 MiB */
#define WINDOW_MAX BENCH_WINDOW_MAX /* gets in flight, bandwidth with a window */
#define WINDOW_BYTES ((size_t)64 << 20) /* at most this much per window */
#define WARM_GETS 200        /* warm gets averaged after each first resolve */
#define GET_TIMEOUT_MS 30000
#define RKEY_MAX 2048
#define ADDR_MAX 2048
#define GEN_VALUE 0x1234567887654321ull

/* This program's command line, as bench_parse_args reads it. */
static const bench_prog_t prog = {
    .name = "pxs_bench_ucx",
    .max_size = (size_t)1 << 32,
    .quick_rep_ms = 3,
    .usage_tail = "The transport is UCX's: set UCX_TLS (e.g. sm,cma or tcp) in the environment.\n"};

/* What the raw owner's progress thread does (1 spin, 0 sleep on its event
 * fd): shared memory, mapped before the fork, set by the consumer around
 * each timed raw get (set_gate). */
static int *gate_p;

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static int window_for(size_t size)
{
    size_t w = WINDOW_BYTES / size;
    return w >= WINDOW_MAX ? WINDOW_MAX : w < 1 ? 1 : (int)w;
}

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

enum { MSG_HELLO = 1, MSG_OFFER = 2 };

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

/* ------------------------------------------------------------------ */
/* producer (the forked child)                                          */

typedef struct {
    bench_producer_t b;   /* pxs context, store, pipes */
    ucpb_t *raw;
    uint64_t *gen;        /* the raw generation word's page */
    ucpb_region_t gen_reg;
    const int *gate;
} producer_t;

static int raw_map(producer_t *p, void *buf, size_t len, ucpb_region_t *r)
{
    if (ucpb_map(p->raw, buf, len, r) != UCS_OK)
        return bench_prod_fail(&p->b, PXS_ERR_IO, "raw ucp_mem_map(%zu bytes%s)", len,
                         buf ? "" : ", ALLOCATE");
    if (r->rkey_len > RKEY_MAX) return bench_prod_fail(&p->b, PXS_ERR_NO_RESOURCE, "rkey too long");
    return 0;
}

static int producer_hello(producer_t *p, pxs_proxy_t *first, uint8_t *first_buf)
{
    uint8_t msg[MSG_MAX];
    hello_t *h = (hello_t *)(void *)msg;
    const void *addr;
    size_t addr_len;
    ucpb_address(p->raw, &addr, &addr_len);
    if (addr_len > ADDR_MAX)
        return bench_prod_fail(&p->b, PXS_ERR_NO_RESOURCE, "worker address too long");
    *h = (hello_t){.gen_addr = (uint64_t)(uintptr_t)p->gen, .pid = (int32_t)getpid(),
                   .addr_len = (uint32_t)addr_len, .gen_rkey_len = (uint32_t)p->gen_reg.rkey_len};
    uint8_t *q = msg + sizeof *h;
    memcpy(q, addr, addr_len);
    memcpy(q + addr_len, p->gen_reg.rkey, p->gen_reg.rkey_len);
    q += addr_len + p->gen_reg.rkey_len;
    bench_fill_pattern(first_buf, 8, 8);
    if (bench_put_one(&p->b, first_buf, 8, PXS_PUT_NO_INLINE, first, &h->first_len, q,
                      PXS_PROXY_MAX))
        return -1;
    return bench_send_msg(p->b.wfd, MSG_HELLO, msg, (uint32_t)(q + h->first_len - msg));
}

static int producer_offer(producer_t *p, size_t size, int *quit)
{
    int rc = -1;
    uint8_t *user = malloc(size), *raw_user = malloc(size);
    ucpb_region_t ru = {0}, ra = {0};
    pxs_proxy_t puser, palloc;
    int have_user = 0, have_alloc = 0;
    if (!user || !raw_user) {
        bench_prod_fail(&p->b, PXS_ERR_NO_MEMORY, "malloc(%zu)", size);
        goto out;
    }
    bench_fill_pattern(user, size, size);
    bench_fill_pattern(raw_user, size, size);
    if (raw_map(p, raw_user, size, &ru) || raw_map(p, NULL, size, &ra)) goto out;
    bench_fill_pattern(ra.addr, size, size);

    uint8_t msg[MSG_MAX];
    offer_t *o = (offer_t *)(void *)msg;
    *o = (offer_t){.size = size, .raw_user_addr = (uint64_t)(uintptr_t)ru.addr,
                   .raw_alloc_addr = (uint64_t)(uintptr_t)ra.addr,
                   .raw_user_rkey_len = (uint32_t)ru.rkey_len,
                   .raw_alloc_rkey_len = (uint32_t)ra.rkey_len};
    uint8_t *q = msg + sizeof *o;
    if (bench_put_one(&p->b, user, size, PXS_PUT_NO_INLINE, &puser, &o->user_len, q, PXS_PROXY_MAX))
        goto out;
    have_user = 1;
    q += o->user_len;
    /* PXS_PUT_COPY: the connector's mem_alloc, UCP_MEM_MAP_ALLOCATE memory. */
    if (bench_put_one(&p->b, user, size, PXS_PUT_COPY | PXS_PUT_NO_INLINE, &palloc,
                      &o->alloc_len, q, PXS_PROXY_MAX))
        goto out;
    have_alloc = 1;
    q += o->alloc_len;
    memcpy(q, ru.rkey, ru.rkey_len);
    q += ru.rkey_len;
    memcpy(q, ra.rkey, ra.rkey_len);
    q += ra.rkey_len;
    if (bench_send_msg(p->b.wfd, MSG_OFFER, msg, (uint32_t)(q - msg))) goto out;
    if (bench_wait_cmd(p->b.rfd, quit)) goto out; /* consumer gone */
    rc = 0;
out:
    if (have_user) pxs_evict(p->b.store, &puser);
    if (have_alloc) pxs_evict(p->b.store, &palloc);
    ucpb_unmap(p->raw, &ru);
    ucpb_unmap(p->raw, &ra);
    free(raw_user);
    free(user);
    return rc;
}

/* arg: the bench_cfg_t (bench_fork_producer's callback). */
static int producer_main(void *arg, int rfd, int wfd)
{
    const bench_cfg_t *cfg = arg;
    producer_t p = {.b = {.rfd = rfd, .wfd = wfd}, .gate = gate_p};
    uint8_t first_buf[8];
    pxs_proxy_t first;
    int have_first = 0, rc = -1;
    pxs_status_t st = pxs_init(NULL, &p.b.ctx);
    if (st != PXS_OK) return bench_prod_fail(&p.b, st, "pxs_init");
    st = bench_store_open(p.b.ctx, "ucx", "bench", &p.b.store);
    if (st != PXS_OK) {
        bench_prod_fail(&p.b, st, "pxs_store_open(ucx)");
        goto out_ctx;
    }
    if (ucpb_init(1, &p.raw) != UCS_OK) {
        bench_prod_fail(&p.b, PXS_ERR_IO, "raw UCP owner init");
        goto out_store;
    }
    p.gen = bench_alloc_faulted(4096);
    if (!p.gen) {
        bench_prod_fail(&p.b, PXS_ERR_NO_MEMORY, "generation page");
        goto out_raw;
    }
    p.gen[0] = GEN_VALUE;
    if (raw_map(&p, p.gen, 4096, &p.gen_reg)) goto out_gen;
    if (ucpb_thread_start(p.raw, p.gate) != UCS_OK) {
        bench_prod_fail(&p.b, PXS_ERR_IO, "raw owner progress thread");
        goto out_gen;
    }
    rc = producer_hello(&p, &first, first_buf);
    have_first = rc == 0;
    int quit = 0;
    for (int i = 0; !rc && !quit && i < cfg->nsizes; i++) rc = producer_offer(&p, cfg->sizes[i], &quit);
    ucpb_thread_stop(p.raw);
    if (have_first) pxs_evict(p.b.store, &first);
out_gen:
    ucpb_unmap(p.raw, &p.gen_reg);
    free(p.gen);
out_raw:
    ucpb_fini(p.raw);
out_store:
    pxs_store_close(p.b.store);
out_ctx:
    pxs_finalize(p.b.ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* timing                                                               */

/* The around hook (bench_timed_t) of the raw gets: the owner's thread
 * spins while they are timed, outside the timed region. */
static void set_gate(int v)
{
    __atomic_store_n(gate_p, v, __ATOMIC_RELAXED);
    /* Give a sleeping owner thread its 1 ms poll to notice. */
    if (v) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* the timed operations                                                 */

/* window resolves of the same proxy into the same dst in flight, then a
 * wait for each (osu_get_bw's shape). */
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
    bench_stat_t s[T_N]; /* ns per get (window: per get, i.e. per window / window) */
} size_result_t;

typedef struct {
    bench_stat_t init, first, warm, fini; /* pxs, ns */
    bench_stat_t raw_first, raw_warm;     /* raw UCP: connect + unpack + get; get */
} first_result_t;

typedef struct {
    size_t size;
    int batch;
    int cold;
    bench_stat_t put; /* ns per put */
} put_result_t;

typedef struct {
    const bench_cfg_t *cfg;
    pxs_context_t *ctx;
    bench_peer_t peer;
    ucpb_t *raw;
    ucp_ep_h ep;
    ucp_rkey_h gen_rkey;
    uint64_t gen_addr;
    uint8_t owner_addr[ADDR_MAX];
    uint8_t gen_rkey_bytes[RKEY_MAX];
    uint32_t gen_rkey_len;
    pxs_proxy_t first;
    size_result_t res[BENCH_MAX_SIZES];
    int nres;
    first_result_t fr;
    put_result_t puts[4];
    int nputs;
    bench_stat_t raw_map, raw_unmap; /* ns per 4 KiB page */
} consumer_t;

static int recv_hello(consumer_t *c)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    hello_t h;
    if (bench_recv_msg(c->peer.rfd, MSG_HELLO, msg, sizeof msg, &len)) return -1;
    if (len < sizeof h) return -1;
    memcpy(&h, msg, sizeof h);
    if (h.addr_len > ADDR_MAX || h.gen_rkey_len > RKEY_MAX ||
        (uint64_t)sizeof h + h.addr_len + h.gen_rkey_len + h.first_len > len ||
        h.pid != c->peer.child) {
        fprintf(stderr, "pxs_bench_ucx: malformed hello\n");
        return -1;
    }
    const uint8_t *q = msg + sizeof h;
    memcpy(c->owner_addr, q, h.addr_len);
    memcpy(c->gen_rkey_bytes, q + h.addr_len, h.gen_rkey_len);
    c->gen_rkey_len = h.gen_rkey_len;
    c->gen_addr = h.gen_addr;
    pxs_status_t st = pxs_proxy_decode(q + h.addr_len + h.gen_rkey_len, h.first_len, &c->first);
    if (st != PXS_OK) return bench_pxs_fail(st, "first proxy");
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
    bench_fill_pattern(want, 8, 8);
    pxs_context_t *ctx;
    double t0 = bench_now_ns();
    pxs_status_t st = pxs_init(NULL, &ctx);
    double t1 = bench_now_ns();
    if (st != PXS_OK) return bench_pxs_fail(st, "fresh pxs_init");
    memset(dst, 0, sizeof dst);
    st = pxs_resolve(ctx, &c->first, dst, sizeof dst, NULL);
    double t2 = bench_now_ns();
    for (int i = 0; st == PXS_OK && i < WARM_GETS; i++)
        st = pxs_resolve(ctx, &c->first, dst, sizeof dst, NULL);
    double t3 = bench_now_ns();
    pxs_finalize(ctx);
    double t4 = bench_now_ns();
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
    double t5 = bench_now_ns();
    ucs_status_t us = ucpb_connect(u, c->owner_addr, &ep);
    if (us == UCS_OK) us = ucp_ep_rkey_unpack(ep, c->gen_rkey_bytes, &rk);
    if (us == UCS_OK) us = ucpb_get(u, ep, &g, 8, c->gen_addr, rk, GET_TIMEOUT_MS);
    double t6 = bench_now_ns();
    for (int i = 0; us == UCS_OK && i < WARM_GETS; i++)
        us = ucpb_get(u, ep, &g, 8, c->gen_addr, rk, GET_TIMEOUT_MS);
    double t7 = bench_now_ns();
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
        v[0 * BENCH_MAX_REPS + r] = t1 - t0;
        v[1 * BENCH_MAX_REPS + r] = t2 - t1;
        v[2 * BENCH_MAX_REPS + r] = (t3 - t2) / WARM_GETS;
        v[3 * BENCH_MAX_REPS + r] = t4 - t3;
        v[4 * BENCH_MAX_REPS + r] = t6 - t5;
        v[5 * BENCH_MAX_REPS + r] = (t7 - t6) / WARM_GETS;
    }
    return 0;
}

static int measure_first(consumer_t *c)
{
    static double v[6 * BENCH_MAX_REPS];
    for (int r = -1; r < c->cfg->reps; r++) /* one warm-up: libraries, transports */
        if (first_rep(c, r, v)) return -1;
    int n = c->cfg->reps;
    const double *m = v;
    enum { M = BENCH_MAX_REPS };
    c->fr = (first_result_t){bench_stats_of(m, n),         bench_stats_of(m + M, n),
                             bench_stats_of(m + 2 * M, n), bench_stats_of(m + 3 * M, n),
                             bench_stats_of(m + 4 * M, n), bench_stats_of(m + 5 * M, n)};
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
    if (st != PXS_OK) return bench_pxs_fail(st, "pxs_proxy_decode");
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

static int report_op_failure(const char *what, const bench_timed_t *t, size_t size)
{
    if (t->fn == bench_op_resolve || t->fn == bench_op_resolve_window) {
        const bench_resolve_arg_t *r = t->arg;
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
    bench_resolve_arg_t ru = {c->ctx, &pt->user, pt->dst, pt->size, PXS_OK, w};
    bench_resolve_arg_t ra = {c->ctx, &pt->alloc, pt->dst, pt->size, PXS_OK, w};
    raw_arg_t xu = {.u = c->raw, .ep = c->ep, .rkey = pt->raw_user_rkey, .gen_rkey = c->gen_rkey,
                    .raddr = pt->raw_user_addr, .gen_raddr = c->gen_addr, .dst = pt->dst,
                    .size = pt->size, .window = w};
    raw_arg_t xa = xu;
    xa.rkey = pt->raw_alloc_rkey;
    xa.raddr = pt->raw_alloc_addr;
    bench_copy_arg_t cp = {pt->dst, pt->src, pt->size};
    bench_timed_t t[T_N] = {
        [T_PXS] = {.fn = bench_op_resolve, .arg = &ru},
        [T_RAW] = {.fn = op_raw, .arg = &xu, .around = set_gate},
        [T_RAW3] = {.fn = op_raw3, .arg = &xu, .around = set_gate},
        [T_RAWEV] = {.fn = op_raw, .arg = &xu}, /* the owner's thread sleeps */
        [T_ALLOC] = {.fn = bench_op_resolve, .arg = &ra},
        [T_RAWALLOC] = {.fn = op_raw, .arg = &xa, .around = set_gate},
        [T_COPY] = {.fn = bench_op_memcpy, .arg = &cp},
        [T_PXS_W] = {.fn = bench_op_resolve_window, .arg = &ru},
        [T_RAW_W] = {.fn = op_raw_window, .arg = &xu, .around = set_gate},
        [T_ALLOC_W] = {.fn = bench_op_resolve_window, .arg = &ra},
        [T_RAWALLOC_W] = {.fn = op_raw_window, .arg = &xa, .around = set_gate},
    };
    /* Every path delivers the producer's bytes: checked once, untimed. */
    static const int check[] = {T_PXS, T_RAW, T_RAW3, T_ALLOC, T_RAWALLOC};
    for (size_t i = 0; i < sizeof check / sizeof check[0]; i++) {
        const bench_timed_t *k = &t[check[i]];
        memset(pt->dst, 0, pt->size);
        if (bench_run_once(k)) return report_op_failure(t_names[check[i]], k, pt->size);
        if (memcmp(pt->dst, pt->src, pt->size)) {
            fprintf(stderr, "pxs_bench_ucx: %s: wrong bytes at size %zu\n", t_names[check[i]],
                    pt->size);
            return -1;
        }
    }
    /* A window of one is the single get already measured. */
    int n = w > 1 ? T_N : T_PXS_W;
    bench_stat_t s[T_N];
    int bad = bench_measure(t, n, c->cfg, s);
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

/* One size (bench_consume_sizes' callback, arg the consumer_t): measure
 * what the producer offers in msg. */
static int consume_size(void *arg, size_t size, const uint8_t *msg, uint32_t len)
{
    consumer_t *c = arg;
    point_t pt = {0};
    int rc = -1;
    if (decode_offer(c, msg, len, size, &pt) || bench_point_buffers(size, &pt.dst, &pt.src))
        goto out;
    rc = measure_point(c, &pt, &c->res[c->nres]);
    if (!rc) c->nres++;
out:
    if (pt.raw_user_rkey) ucp_rkey_destroy(pt.raw_user_rkey);
    if (pt.raw_alloc_rkey) ucp_rkey_destroy(pt.raw_alloc_rkey);
    free(pt.dst);
    free(pt.src);
    return rc;
}

/* --- put rate ------------------------------------------------------------ */

/* n puts, timed, of buffer base + i * stride (stride 0: the same buffer),
 * then their evictions, untimed. */
static int put_batch(pxs_store_t *store, uint8_t *base, size_t size, size_t stride, int n,
                     pxs_proxy_t *proxies, double *ns_p)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    int done = 0, rc = 0;
    double t0 = bench_now_ns();
    for (; done < n; done++) {
        pxs_status_t st = pxs_put(store, base + (size_t)done * stride, size, &pp, &proxies[done]);
        if (st != PXS_OK) {
            rc = bench_pxs_fail(st, "pxs_put");
            break;
        }
    }
    *ns_p = (bench_now_ns() - t0) / n;
    for (int i = 0; i < done; i++) {
        pxs_status_t st = pxs_evict(store, &proxies[i]);
        if (st != PXS_OK && !rc) rc = bench_pxs_fail(st, "pxs_evict");
    }
    return rc;
}

static int measure_puts(consumer_t *c, pxs_store_t *store, size_t size, int cold,
                        pxs_proxy_t *proxies)
{
    int n = cold ? (size <= 4096 ? COLD_PAGES : COLD_MIB) : PUT_BATCH;
    size_t stride = cold ? (size + 4095) / 4096 * 4096 : 0;
    size_t area = cold ? stride * (size_t)n : size;
    uint8_t *buf = bench_alloc_faulted(area);
    double samples[BENCH_MAX_REPS];
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
            bench_pxs_fail(st, "pxs_put (anchor)");
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
                                         .put = bench_stats_of(samples, c->cfg->reps)};
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
    uint8_t *area = bench_alloc_faulted((size_t)COLD_PAGES * 4096);
    ucpb_region_t *regs = calloc(COLD_PAGES, sizeof *regs);
    double map_s[BENCH_MAX_REPS], unmap_s[BENCH_MAX_REPS];
    int rc = -1;
    if (!area || !regs || ucpb_init(0, &u) != UCS_OK) goto out_mem;
    for (int r = -1; r < c->cfg->reps; r++) {
        double t0 = bench_now_ns();
        for (int i = 0; i < COLD_PAGES; i++)
            if (ucpb_map(u, area + (size_t)i * 4096, 4096, &regs[i]) != UCS_OK) goto out;
        double t1 = bench_now_ns();
        for (int i = 0; i < COLD_PAGES; i++) ucpb_unmap(u, &regs[i]);
        double t2 = bench_now_ns();
        if (r >= 0) {
            map_s[r] = (t1 - t0) / COLD_PAGES;
            unmap_s[r] = (t2 - t1) / COLD_PAGES;
        }
    }
    c->raw_map = bench_stats_of(map_s, c->cfg->reps);
    c->raw_unmap = bench_stats_of(unmap_s, c->cfg->reps);
    rc = 0;
out:
    ucpb_fini(u);
out_mem:
    free(regs);
    free(area);
    return rc;
}

static int measure_put_rate(consumer_t *c)
{
    pxs_store_t *store;
    if (bench_put_store(c->ctx, "ucx", &store)) return -1;
    pxs_proxy_t *proxies = bench_alloc_faulted(PUT_BATCH * sizeof *proxies);
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
        const bench_stat_t *s = r->s;
        bench_spread_us(sp, sizeof sp, s[T_PXS]);
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
        const bench_stat_t *s = r->s;
        bench_spread_us(sp, sizeof sp, s[T_ALLOC]);
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
        const bench_stat_t *s = r->s;
        bench_spread_bw(sp, sizeof sp, r->size, s[pxs]);
        printf("%-10zu%16.2f%20s%14.2f%8.3f%6d%16.2f%14.2f%8.3f%14.2f%8.3f\n", r->size,
               bench_mbps(r->size, s[pxs].med), sp, bench_mbps(r->size, s[raw].med),
               s[raw].med / s[pxs].med, r->window, bench_mbps(r->size, s[pxs_w].med),
               bench_mbps(r->size, s[raw_w].med),
               s[raw_w].med / s[pxs_w].med, bench_mbps(r->size, s[T_COPY].med),
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
        bench_spread_us(sp, sizeof sp, st);                                                 \
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
        bench_spread_rate(sp, sizeof sp, p->put);
        printf("%-10zu%8s%10d%18.0f%26s\n", p->size, p->cold ? "cold" : "warm", p->batch,
               1e9 / p->put.med, sp);
    }
    printf("# raw UCX, fresh 4 KiB page: ucp_mem_map + ucp_rkey_pack %.0f ns (%.0f-%.0f), "
           "ucp_mem_unmap + release %.0f ns\n",
           c->raw_map.med, c->raw_map.min, c->raw_map.max, c->raw_unmap.med);
}

/* ------------------------------------------------------------------ */
/* output: JSON records (PERF.md)                                       */

static void json_sizes(FILE *f, const consumer_t *c)
{
    const bench_cfg_t *g = c->cfg;
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        const bench_stat_t *s = r->s;
        size_t z = r->size;
        char win[48];
        snprintf(win, sizeof win, "\"window\":%d", r->window);
        static const char *const benches[] = {"get_latency", "get_bw"};
        for (int b = 0; b < 2; b++) {
            const char *bn = benches[b];
            bench_json_get(f, g, bn, "pxs-ucx", "ucp_get", z, s[T_PXS], s[T_RAW], "\"window\":1");
            bench_json_get(f, g, bn, "pxs-ucx", "memcpy", z, s[T_PXS], s[T_COPY], "\"window\":1");
            bench_json_get(f, g, bn, "pxs-ucx-alloc", "ucp_get-alloc", z, s[T_ALLOC],
                           s[T_RAWALLOC], "\"window\":1");
            bench_json_get(f, g, bn, "pxs-ucx-alloc", "memcpy", z, s[T_ALLOC], s[T_COPY],
                           "\"window\":1");
        }
        bench_json_get(f, g, "get_bw", "pxs-ucx-window", "ucp_get-window", z, s[T_PXS_W],
                       s[T_RAW_W], win);
        bench_json_get(f, g, "get_bw", "pxs-ucx-alloc-window", "ucp_get-alloc-window", z,
                       s[T_ALLOC_W], s[T_RAWALLOC_W], win);
        /* Diagnostics: the raw baseline against pxs's protocol shape. */
        bench_json_get(f, g, "get_latency", "ucp_get-x3", "ucp_get", z, s[T_RAW3], s[T_RAW],
                       "\"window\":1");
        bench_json_get(f, g, "get_latency", "ucp_get-event", "ucp_get", z, s[T_RAWEV], s[T_RAW],
                       "\"window\":1");
    }
}

static void json_first_and_puts(FILE *f, const consumer_t *c)
{
    const first_result_t *fr = &c->fr;
    char extra[160];
    snprintf(extra, sizeof extra, "\"pxs_init_us\":%.6g,\"pxs_finalize_us\":%.6g",
             fr->init.med / 1e3, fr->fini.med / 1e3);
    bench_json_get(f, c->cfg, "get_latency", "pxs-ucx-first", "ucp_get-first", 8, fr->first,
                   fr->raw_first, extra);
    bench_json_get(f, c->cfg, "get_latency", "pxs-ucx-warm", "ucp_get", 8, fr->warm,
                   fr->raw_warm, NULL);
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        char ex[96];
        snprintf(ex, sizeof ex, "\"batch\":%d,\"registration\":\"%s\"", p->batch,
                 p->cold ? "cold" : "warm");
        bench_json_rate(f, c->cfg, p->cold ? "pxs-ucx-coldreg" : "pxs-ucx", "puts/s", p->size,
                        p->put, ex);
    }
    bench_json_rate(f, c->cfg, "ucp_mem_map", "maps/s", 4096, c->raw_map,
                    "\"what\":\"ucp_mem_map+ucp_rkey_pack of a fresh page\"");
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* bench_report's callbacks: arg is the consumer_t. */
static void print_all(const void *arg)
{
    print_latency(arg);
    print_bw_one(arg, "user buffer, pxs_resolve vs raw ucp_get", T_PXS, T_RAW, T_PXS_W, T_RAW_W);
    print_bw_one(arg, "PXS_PUT_COPY object vs raw ucp_get of an ALLOCATE region", T_ALLOC,
                 T_RAWALLOC, T_ALLOC_W, T_RAWALLOC_W);
    print_first_and_puts(arg);
}

static void json_all(FILE *f, const void *arg)
{
    json_sizes(f, arg);
    json_first_and_puts(f, arg);
}

/* Measure while the producer lives; the caller reaps it afterwards. */
static int consumer_run(consumer_t *c)
{
    if (recv_hello(c) || measure_first(c)) return -1;
    return bench_consume_sizes(c->cfg, &c->peer, MSG_OFFER, MSG_MAX, consume_size, c);
}

static int consumer_main(consumer_t *c)
{
    pxs_status_t st = pxs_init(NULL, &c->ctx);
    if (st != PXS_OK) return bench_pxs_fail(st, "pxs_init");
    int rc = consumer_run(c);
    if (c->raw) raw_close(c);
    rc = bench_reap_peer(&c->peer, rc);
    if (!rc) rc = measure_put_rate(c);
    if (!rc) rc = bench_report(c->cfg, print_all, json_all, c);
    pxs_finalize(c->ctx);
    return rc;
}

int main(int argc, char **argv)
{
    static consumer_t cons;
    bench_cfg_t cfg;
    if (bench_parse_args(argc, argv, &prog, &cfg)) return 2;
    const char *tls = getenv("UCX_TLS");
    snprintf(cfg.transport, sizeof cfg.transport, "UCX_TLS=%s", tls && *tls ? tls : "(default)");
    gate_p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (gate_p == MAP_FAILED) {
        perror("pxs_bench_ucx: mmap");
        return 1;
    }
    /* Before anything starts UCX: it does not survive fork(). */
    if (bench_fork_producer(&cfg, producer_main, &cfg, &cons.peer)) return 1;
    cons.cfg = &cfg;
    printf("# pxs %s ucx benchmark (%s): producer pid %d, consumer pid %d, %d reps, %d sizes\n",
           pxs_version(), cfg.transport, (int)cons.peer.child, (int)getpid(), cfg.reps,
           cfg.nsizes);
    fflush(stdout);
    int rc = consumer_main(&cons);
    bench_close_peer(&cons.peer);
    munmap(gate_p, 4096);
    return rc ? 1 : 0;
}
