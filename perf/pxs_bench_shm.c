/* pxs_bench_shm: OSU-style get latency / bandwidth and put rate of the
 * "shm" connector, each held to the ceiling of the mechanism it uses
 * (see /work/shared/PERF.md):
 *
 *   pxs-shm            resolve of a zero-copy put of a malloc'd buffer
 *                      vs raw process_vm_readv (cma) and raw pread of
 *                      /proc/pid/mem (procmem) of the same buffer, the
 *                      kernel's two ways (pxs takes the second for a page
 *                      or two, src/proc.c), with memcpy printed beside it;
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
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <pxs/pxs.h>

#include "bench_common.h"

#define INLINE_SIZE 64
#define PUT_BATCH 10000

/* This program's command line, as bench_parse_args reads it. */
static const bench_prog_t prog = {.name = "pxs_bench_shm", .max_size = (size_t)1 << 34,
                                  .quick_rep_ms = 4};

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

enum { MSG_INLINE = 1, MSG_OFFER = 2 };

/* What the producer offers for one size: both proxies, and for the cma
 * baseline the address of its user buffer (the proxy holds it too, but the
 * baseline must not depend on pxs internals). */
typedef struct {
    uint64_t size, user_addr;
    int32_t pid;
    uint32_t user_len, alloc_len;
} offer_t;

#define MSG_MAX (sizeof(offer_t) + 2 * PXS_PROXY_MAX)

/* ------------------------------------------------------------------ */
/* producer (the forked child)                                          */

/* The inline proxy goes first: the consumer resolves it again after this
 * process has exited. */
static int producer_send_inline(bench_producer_t *p)
{
    uint8_t obj[INLINE_SIZE], enc[PXS_PROXY_MAX];
    pxs_proxy_t proxy;
    uint32_t len;
    bench_fill_pattern(obj, sizeof obj, sizeof obj);
    if (bench_put_one(p, obj, sizeof obj, 0, &proxy, &len, enc, sizeof enc)) return -1;
    pxs_proxy_info_t info;
    if (pxs_proxy_info(&proxy, &info) != PXS_OK || !info.is_inline)
        return bench_prod_fail(p, PXS_ERR_UNSUPPORTED, "a %d-byte put was not inlined",
                               INLINE_SIZE);
    return bench_send_msg(p->wfd, MSG_INLINE, enc, len);
}

/* Expose one size both ways, hand the proxies over, wait for the consumer,
 * then evict and free. */
static int producer_offer(bench_producer_t *p, size_t size, int *quit)
{
    int rc = -1;
    void *alloc = NULL;
    uint8_t *user = malloc(size);
    if (!user) return bench_prod_fail(p, PXS_ERR_NO_MEMORY, "malloc(%zu)", size);
    pxs_status_t st = pxs_alloc(p->ctx, size, &alloc);
    if (st != PXS_OK) {
        free(user);
        return bench_prod_fail(p, st, "pxs_alloc(%zu)", size);
    }
    bench_fill_pattern(user, size, size);
    bench_fill_pattern(alloc, size, size);

    uint8_t msg[MSG_MAX];
    offer_t *o = (offer_t *)(void *)msg;
    pxs_proxy_t puser, palloc;
    int have_user = 0, have_alloc = 0;
    *o = (offer_t){.size = size, .user_addr = (uint64_t)(uintptr_t)user, .pid = (int32_t)getpid()};
    uint8_t *enc = msg + sizeof *o;
    if (bench_put_one(p, user, size, PXS_PUT_NO_INLINE, &puser, &o->user_len, enc, PXS_PROXY_MAX))
        goto out;
    have_user = 1;
    if (bench_put_one(p, alloc, size, PXS_PUT_NO_INLINE, &palloc, &o->alloc_len,
                      enc + o->user_len, PXS_PROXY_MAX))
        goto out;
    have_alloc = 1;
    if (bench_send_msg(p->wfd, MSG_OFFER, msg, (uint32_t)(sizeof *o + o->user_len + o->alloc_len)))
        goto out;
    if (bench_wait_cmd(p->rfd, quit)) goto out; /* consumer gone */
    rc = 0;
out:
    if (have_user) pxs_evict(p->store, &puser);
    if (have_alloc) pxs_evict(p->store, &palloc);
    pxs_free(p->ctx, alloc);
    free(user);
    return rc;
}

/* arg: the bench_cfg_t (bench_fork_producer's callback). */
static int producer_main(void *arg, int rfd, int wfd)
{
    const bench_cfg_t *cfg = arg;
    bench_producer_t p = {.rfd = rfd, .wfd = wfd};
    pxs_status_t st = pxs_init(NULL, &p.ctx);
    if (st != PXS_OK) return bench_prod_fail(&p, st, "pxs_init");
    st = bench_store_open(p.ctx, "shm", "bench", &p.store);
    int rc = st == PXS_OK ? 0 : bench_prod_fail(&p, st, "pxs_store_open(shm)");
    if (!rc) rc = producer_send_inline(&p);
    int quit = 0;
    for (int i = 0; !rc && !quit && i < cfg->nsizes; i++) rc = producer_offer(&p, cfg->sizes[i], &quit);
    pxs_store_close(p.store);
    pxs_finalize(p.ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the timed operations                                                 */

static int op_view(void *a)
{
    bench_resolve_arg_t *r = a;
    pxs_view_t *v;
    r->st = pxs_view_acquire(r->ctx, r->proxy, &v);
    if (r->st != PXS_OK) return -1;
    pxs_view_release(v);
    return 0;
}

typedef struct {
    pid_t pid;
    int memfd; /* the producer's /proc/pid/mem, for op_procmem */
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

/* The other baseline: pread of /proc/pid/mem, opened once (the open checks
 * ptrace access, each process_vm_readv checks it again). */
static int op_procmem(void *a)
{
    cma_arg_t *c = a;
    size_t done = 0;
    while (done < c->size) {
        ssize_t n = pread(c->memfd, (uint8_t *)c->dst + done, c->size - done,
                          (off_t)(c->addr + done));
        if (n <= 0) {
            c->err = n < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* consumer (the parent): per-size measurement                          */

typedef struct {
    size_t size;
    bench_stat_t shm, cma, procmem, copy, alloc, view; /* ns per operation */
} size_result_t;

typedef struct {
    bench_stat_t alive, exited, copy; /* ns per resolve / memcpy of 64 B */
    pxs_status_t stale_st;            /* resolve of a non-inline proxy after exit */
} inline_result_t;

typedef struct {
    size_t size;
    int batch;
    bench_stat_t put, pair; /* ns per put, ns per put+evict */
} put_result_t;

typedef struct {
    const bench_cfg_t *cfg;
    pxs_context_t *ctx;
    bench_peer_t peer;
    size_result_t res[BENCH_MAX_SIZES];
    int nres;
    inline_result_t inl;
    put_result_t puts[2];
    int nputs;
    pxs_proxy_t inline_proxy;
    pxs_proxy_t last_user_proxy; /* resolved after the producer exits */
    int memfd;                   /* the producer's /proc/pid/mem */
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
    if (st != PXS_OK) return bench_pxs_fail(st, "pxs_proxy_decode");
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

static int report_op_failure(const char *what, const bench_timed_t *t, size_t size)
{
    if (t->fn == op_cma || t->fn == op_procmem) {
        const cma_arg_t *c = t->arg;
        fprintf(stderr, "pxs_bench_shm: %s at size %zu: %s: %s\n", what, size,
                t->fn == op_cma ? "process_vm_readv" : "pread of /proc/pid/mem", strerror(c->err));
    } else if (t->fn == bench_op_resolve || t->fn == op_view) {
        const bench_resolve_arg_t *r = t->arg;
        fprintf(stderr, "pxs_bench_shm: %s at size %zu: %s\n", what, size, pxs_strerror(r->st));
    } else {
        fprintf(stderr, "pxs_bench_shm: %s at size %zu failed\n", what, size);
    }
    return -1;
}

/* Verify, once and outside any timed loop, that every path delivers the
 * producer's bytes. This also maps the segment and faults the pages, so
 * the calibration that follows is the only warm-up the timings need. */
static int verify_point(bench_timed_t *t, const char *const *names, const point_t *pt)
{
    for (int k = 0; k < 6; k++) { /* shm, cma, alloc, procmem: they fill dst */
        if (k == 3 || k == 4) continue;
        memset(pt->dst, 0, pt->size);
        if (bench_run_once(&t[k])) return report_op_failure(names[k], &t[k], pt->size);
        if (check_bytes(names[k], pt->dst, pt)) return -1;
    }
    const bench_resolve_arg_t *va = t[4].arg;
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
    bench_resolve_arg_t ru = {c->ctx, &pt->user, pt->dst, pt->size, PXS_OK};
    bench_resolve_arg_t ra = {c->ctx, &pt->alloc, pt->dst, pt->size, PXS_OK};
    bench_resolve_arg_t rv = {c->ctx, &pt->alloc, NULL, pt->size, PXS_OK};
    cma_arg_t cma = {pt->pid, c->memfd, pt->user_addr, pt->dst, pt->size, 0};
    cma_arg_t pm = cma;
    bench_copy_arg_t cp = {pt->dst, pt->src, pt->size};
    static const char *const names[] = {"pxs-shm", "cma", "pxs-shm-alloc", "memcpy",
                                        "pxs-shm-alloc-view", "procmem"};
    bench_timed_t t[6] = {{.fn = bench_op_resolve, .arg = &ru}, {.fn = op_cma, .arg = &cma},
                          {.fn = bench_op_resolve, .arg = &ra},
                          {.fn = bench_op_memcpy, .arg = &cp}, {.fn = op_view, .arg = &rv},
                          {.fn = op_procmem, .arg = &pm}};
    if (verify_point(t, names, pt)) return -1;
    bench_stat_t s[6];
    int bad = bench_measure(t, 6, c->cfg, s);
    if (bad) return report_op_failure(names[bad - 1], &t[bad - 1], pt->size);
    *out = (size_result_t){.size = pt->size, .shm = s[0], .cma = s[1], .alloc = s[2],
                           .copy = s[3], .view = s[4], .procmem = s[5]};
    return 0;
}

/* One size (bench_consume_sizes' callback, arg the consumer_t): measure
 * what the producer offers in msg. */
static int consume_size(void *arg, size_t size, const uint8_t *msg, uint32_t len)
{
    consumer_t *c = arg;
    point_t pt = {0};
    if (decode_offer(msg, len, size, &pt)) return -1;
    if (pt.pid != c->peer.child) {
        fprintf(stderr, "pxs_bench_shm: offer from pid %d, forked %d\n", (int)pt.pid,
                (int)c->peer.child);
        return -1;
    }
    int rc = -1;
    if (bench_point_buffers(size, &pt.dst, &pt.src)) goto out;
    rc = measure_point(c, &pt, &c->res[c->nres]);
    if (!rc) c->nres++;
    c->last_user_proxy = pt.user;
out:
    free(pt.dst);
    free(pt.src);
    return rc;
}

/* ------------------------------------------------------------------ */
/* consumer: inline proxies and put rate                                */

static int measure_inline(consumer_t *c, bench_stat_t *pxs, bench_stat_t *copy)
{
    uint8_t dst[INLINE_SIZE], src[INLINE_SIZE];
    bench_fill_pattern(src, sizeof src, sizeof src);
    memset(dst, 0, sizeof dst);
    bench_resolve_arg_t r = {c->ctx, &c->inline_proxy, dst, sizeof dst, PXS_OK};
    bench_copy_arg_t cp = {dst, src, sizeof src};
    if (bench_op_resolve(&r) || memcmp(dst, src, sizeof src)) {
        fprintf(stderr, "pxs_bench_shm: inline resolve: %s\n",
                r.st != PXS_OK ? pxs_strerror(r.st) : "wrong bytes");
        return -1;
    }
    bench_timed_t t[2] = {{.fn = bench_op_resolve, .arg = &r},
                          {.fn = bench_op_memcpy, .arg = &cp}};
    bench_stat_t s[2];
    if (bench_measure(t, copy ? 2 : 1, c->cfg, s))
        return report_op_failure("inline", &t[0], sizeof dst);
    *pxs = s[0];
    if (copy) *copy = s[1];
    return 0;
}

static int recv_inline(consumer_t *c)
{
    uint8_t msg[MSG_MAX];
    uint32_t len;
    if (bench_recv_msg(c->peer.rfd, MSG_INLINE, msg, sizeof msg, &len)) return -1;
    pxs_status_t st = pxs_proxy_decode(msg, len, &c->inline_proxy);
    if (st != PXS_OK) return bench_pxs_fail(st, "inline proxy");
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

/* n puts of the same buffer, timed; they are evicted by the caller. */
static int put_batch(put_ctx_t *p, int n, double *ns_p, int *done)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    double t0 = bench_now_ns();
    for (*done = 0; *done < n; (*done)++) {
        pxs_status_t st = pxs_put(p->store, p->buf, p->size, &pp, &p->proxies[*done]);
        if (st != PXS_OK) return bench_pxs_fail(st, "pxs_put");
    }
    *ns_p = bench_now_ns() - t0;
    return 0;
}

static int evict_batch(put_ctx_t *p, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_evict(p->store, &p->proxies[i]);
        if (st != PXS_OK && !rc) rc = bench_pxs_fail(st, "pxs_evict");
    }
    return rc;
}

static int put_evict_pairs(put_ctx_t *p, int n, double *ns_p)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        pxs_status_t st = pxs_put(p->store, p->buf, p->size, &pp, &p->proxies[0]);
        if (st != PXS_OK) return bench_pxs_fail(st, "pxs_put");
        st = pxs_evict(p->store, &p->proxies[0]);
        if (st != PXS_OK) return bench_pxs_fail(st, "pxs_evict");
    }
    *ns_p = bench_now_ns() - t0;
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
    uint8_t *buf = bench_alloc_faulted(size);
    p.proxies = bench_alloc_faulted(PUT_BATCH * sizeof *p.proxies);
    p.buf = buf;
    double put_s[BENCH_MAX_REPS], pair_s[BENCH_MAX_REPS];
    if (!buf || !p.proxies) {
        fprintf(stderr, "pxs_bench_shm: out of memory for the put benchmark\n");
        goto out;
    }
    for (int r = -2; r < c->cfg->reps; r++)
        if (put_rep(&p, r, put_s, pair_s)) goto out;
    *out = (put_result_t){.size = size, .batch = PUT_BATCH,
                          .put = bench_stats_of(put_s, c->cfg->reps),
                          .pair = bench_stats_of(pair_s, c->cfg->reps)};
    rc = 0;
out:
    free(p.proxies);
    free(buf);
    return rc;
}

static int measure_put_rate(consumer_t *c)
{
    pxs_store_t *store;
    if (bench_put_store(c->ctx, "shm", &store)) return -1;
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

static void print_user_tables(const consumer_t *c)
{
    char sp[48];
    printf("\n# pxs shm get latency test: user buffer, pxs_resolve vs raw process_vm_readv"
           " (cma) and raw pread of /proc/pid/mem (procmem)\n"
           "# (ratio = baseline time / pxs time; median of %d reps, spread min-max)\n",
           c->cfg->reps);
    printf("%-10s%20s%22s%16s%10s%16s%10s%16s%10s\n", "# Size", "Latency (us)", "spread",
           "cma (us)", "ratio", "procmem (us)", "ratio", "memcpy (us)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        bench_spread_us(sp, sizeof sp, r->shm);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%10.3f%16.2f%10.3f\n", r->size,
               r->shm.med / 1e3, sp, r->cma.med / 1e3, r->cma.med / r->shm.med,
               r->procmem.med / 1e3, r->procmem.med / r->shm.med, r->copy.med / 1e3,
               r->copy.med / r->shm.med);
    }
    printf("\n# pxs shm get bandwidth test: user buffer, pxs_resolve vs raw process_vm_readv"
           " (cma) and raw pread of /proc/pid/mem (procmem)\n");
    printf("%-10s%20s%22s%16s%10s%16s%10s%16s%10s\n", "# Size", "Bandwidth (MB/s)", "spread",
           "cma (MB/s)", "ratio", "procmem (MB/s)", "ratio", "memcpy (MB/s)", "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        bench_spread_bw(sp, sizeof sp, r->size, r->shm);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%10.3f%16.2f%10.3f\n", r->size,
               bench_mbps(r->size, r->shm.med), sp, bench_mbps(r->size, r->cma.med),
               r->cma.med / r->shm.med, bench_mbps(r->size, r->procmem.med),
               r->procmem.med / r->shm.med, bench_mbps(r->size, r->copy.med),
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
        bench_spread_us(sp, sizeof sp, r->alloc);
        bench_spread_us(vs, sizeof vs, r->view);
        printf("%-10zu%20.2f%22s%16.2f%10.3f%16.2f%22s\n", r->size, r->alloc.med / 1e3, sp,
               r->copy.med / 1e3, r->copy.med / r->alloc.med, r->view.med / 1e3, vs);
    }
    printf("\n# pxs shm get bandwidth test: pxs_alloc object, pxs_resolve vs memcpy\n");
    printf("%-10s%20s%22s%16s%10s\n", "# Size", "Bandwidth (MB/s)", "spread", "memcpy (MB/s)",
           "ratio");
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        bench_spread_bw(sp, sizeof sp, r->size, r->alloc);
        printf("%-10zu%20.2f%22s%16.2f%10.3f\n", r->size, bench_mbps(r->size, r->alloc.med), sp,
               bench_mbps(r->size, r->copy.med), r->copy.med / r->alloc.med);
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
        bench_spread_rate(sp, sizeof sp, p->put);
        printf("%-10zu%20.0f%22s%20.0f\n", p->size, 1e9 / p->put.med, sp, 1e9 / p->pair.med);
    }
}

/* ------------------------------------------------------------------ */
/* output: JSON records (PERF.md)                                       */

static void json_sizes(FILE *f, const consumer_t *c)
{
    static const char *const benches[] = {"get_latency", "get_bw"};
    const bench_cfg_t *g = c->cfg;
    for (int i = 0; i < c->nres; i++) {
        const size_result_t *r = &c->res[i];
        /* Latency, then bandwidth, of each impl against each baseline. */
        for (int b = 0; b < 2; b++)
            bench_json_get(f, g, benches[b], "pxs-shm", "cma", r->size, r->shm, r->cma, NULL);
        for (int b = 0; b < 2; b++)
            bench_json_get(f, g, benches[b], "pxs-shm", "procmem", r->size, r->shm, r->procmem,
                           NULL);
        for (int b = 0; b < 2; b++)
            bench_json_get(f, g, benches[b], "pxs-shm", "memcpy", r->size, r->shm, r->copy, NULL);
        for (int b = 0; b < 2; b++)
            bench_json_get(f, g, benches[b], "pxs-shm-alloc", "memcpy", r->size, r->alloc,
                           r->copy, NULL);
        bench_json_get(f, g, "get_latency", "pxs-shm-alloc-view", "memcpy", r->size, r->view,
                       r->copy, NULL);
    }
}

static void json_inline_and_puts(FILE *f, const consumer_t *c)
{
    const inline_result_t *in = &c->inl;
    char extra[160];
    snprintf(extra, sizeof extra,
             "\"owner\":\"exited\",\"alive_value\":%.6g,\"stale_proxy_status\":\"%s\"",
             in->alive.med / 1e3, pxs_strerror(in->stale_st));
    bench_json_get(f, c->cfg, "get_latency", "pxs-shm-inline", "memcpy", INLINE_SIZE, in->exited,
                   in->copy, extra);
    for (int i = 0; i < c->nputs; i++) {
        const put_result_t *p = &c->puts[i];
        char ex[64];
        snprintf(ex, sizeof ex, "\"batch\":%d", p->batch);
        bench_json_rate(f, c->cfg, "pxs-shm", "puts/s", p->size, p->put, ex);
        bench_json_rate(f, c->cfg, "pxs-shm", "put+evict/s", p->size, p->pair, ex);
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* bench_report's callbacks: arg is the consumer_t. */
static void print_all(const void *arg)
{
    print_user_tables(arg);
    print_alloc_tables(arg);
    print_inline_and_puts(arg);
}

static void json_all(FILE *f, const void *arg)
{
    json_sizes(f, arg);
    json_inline_and_puts(f, arg);
}

/* Measure while the producer lives; the caller reaps it afterwards. */
static int consumer_run(consumer_t *c)
{
    if (recv_inline(c) || measure_inline(c, &c->inl.alive, &c->inl.copy)) return -1;
    return bench_consume_sizes(c->cfg, &c->peer, MSG_OFFER, MSG_MAX, consume_size, c);
}

static int consumer_main(consumer_t *c)
{
    pxs_status_t st = pxs_init(NULL, &c->ctx);
    if (st != PXS_OK) return bench_pxs_fail(st, "pxs_init");
    int rc = bench_reap_peer(&c->peer, consumer_run(c));
    if (!rc) rc = inline_after_exit(c);
    if (!rc) rc = measure_put_rate(c);
    if (!rc) rc = bench_report(c->cfg, print_all, json_all, c);
    pxs_finalize(c->ctx);
    return rc;
}

int main(int argc, char **argv)
{
    consumer_t cons = {0};
    bench_cfg_t cfg;
    if (bench_parse_args(argc, argv, &prog, &cfg)) return 2;
    snprintf(cfg.transport, sizeof cfg.transport, "shm");
    if (bench_fork_producer(&cfg, producer_main, &cfg, &cons.peer)) return 1;
    cons.cfg = &cfg;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)cons.peer.child);
    if ((cons.memfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "pxs_bench_shm: open %s: %s\n", path, strerror(errno));
        bench_close_peer(&cons.peer);
        return 1;
    }
    printf("# pxs %s shm benchmark: producer pid %d, consumer pid %d, %d reps, %d sizes\n",
           pxs_version(), (int)cons.peer.child, (int)getpid(), cfg.reps, cfg.nsizes);
    fflush(stdout);
    int rc = consumer_main(&cons);
    close(cons.memfd);
    bench_close_peer(&cons.peer); /* kills a producer never reaped (pxs_init failed) */
    return rc ? 1 : 0;
}
