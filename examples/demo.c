/* pxs_demo: one producer and several consumers, separate processes on one
 * node, moving objects by proxy and finding them by name.
 *
 *   pxs_demo producer --objects N --size BYTES --prefix NAME [--consumers C] [--timeout S]
 *   pxs_demo consumer --id K --prefix NAME [--timeout S]
 *   pxs_demo selftest [--objects N] [--size BYTES]
 *   (every role also takes --connector NAME: the store's connector, default "shm")
 *
 * The producer publishes each object's proxy as "<prefix>/obj<i>" and then a
 * manifest as "<prefix>/ready". Consumers find everything through the
 * embedded rendezvous (no server, no MPI), pull the bytes by proxy, verify
 * them, compare the speed with a plain memcpy and publish their verdict as
 * "<prefix>/done.<K>". Even objects live in pxs_alloc memory (consumers map
 * it: a resolve is one memcpy, a view copies nothing), odd ones in ordinary
 * malloc'd buffers (a resolve is one process_vm_readv). That is the "shm"
 * connector; with --connector ucx every resolve is a UCP get (over whatever
 * UCX_TLS allows, tcp included, so producer and consumers may sit in
 * different network namespaces as long as they share /dev/shm for the
 * names), and the view pass is skipped for connectors without views.
 *
 * Completion, every wait bounded in time:
 *   producer: objects, ready -> wait for done.0..C-1 -> unpublish ready -> clean up
 *   consumer: wait for ready -> resolve, verify -> publish done.K
 *             -> wait until ready is gone -> clean up
 * A consumer keeps done.K up until the producer is through with it because a
 * name disappears as soon as its publisher finalizes or exits.
 *
 * Exit status: 0 when everything was verified, 1 on any failure, 2 on bad
 * usage. "selftest" runs one producer and two consumers as child processes
 * with a per-run prefix (what the meson test does). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pxs/pxs.h>

/* All roles join this domain (PXS_DOMAIN overrides it for all of them);
 * runs are kept apart by their prefix, not by a domain per run, because the
 * library keeps one name directory segment per domain. */
#define DEMO_DOMAIN "pxs-demo"
#define MANIFEST_MAGIC 0x70787364656d6f31ull /* "pxsdemo1" */
#define VERDICT_MAGIC 0x7078737665726431ull  /* "pxsverd1" */
#define POLL_MS 5
#define MAX_CONSUMERS 64
#define MAX_OBJECTS 100000
#define PREFIX_MAX (PXS_NAME_MAX - 16) /* room for "/obj<i>", "/done.<K>" */
#define DEFAULT_CONNECTOR "shm"

typedef struct {
    const char *role;
    size_t objects;
    size_t size;
    const char *prefix;
    unsigned id;
    unsigned consumers;
    double timeout_s;
    const char *connector; /* of every store the roles open; consumers read by proxy whatever it says */
    uint64_t caps;         /* the connector's PXS_CAP_* */
} opts_t;

/* Published under <prefix>/ready. Both ends run this binary on one node, so
 * a plain struct is wire format enough; it travels inside its proxy. */
typedef struct {
    uint64_t magic;
    uint64_t objects;
    uint64_t size;
    uint32_t consumers;
    uint32_t reserved;
} manifest_t;

/* Published under <prefix>/done.<K>: what the consumer saw. */
typedef struct {
    uint64_t magic;
    int32_t status;      /* pxs_status_t of the first failed call, or PXS_OK */
    uint32_t mismatches; /* reads (resolves, views) that gave wrong bytes */
    uint64_t objects;
    uint64_t bytes;
    uint64_t views;
    double first_mbps, repeat_mbps, memcpy_mbps;
    double path_mbps[2]; /* repeat pass by memory: [0] malloc'd, [1] pxs_alloc */
} verdict_t;

/* Time spent in pxs_resolve and bytes moved, by where the bytes lie. */
typedef struct {
    double secs[2];
    uint64_t bytes[2]; /* [0] malloc'd (process_vm_readv), [1] pxs_alloc (mapped) */
} pass_t;

/* ---- small helpers ---------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* SIGTERM or SIGINT (ci/demo's cleanup, timeout(1), ^C) ends every wait
 * early, so the process still cleans up: its shared segments and names are
 * removed now rather than by the next pxs process that starts. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: sleeps end */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static int time_is_up(double deadline) { return stop_requested || now_s() >= deadline; }

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested) {
    }
}

static double mbps(uint64_t bytes, double secs) { return secs > 0 ? (double)bytes / secs / 1e6 : 0; }

/* Report a failed call; pass the status through so callers can chain. */
static pxs_status_t check(const char *who, const char *what, pxs_status_t st)
{
    if (st != PXS_OK)
        fprintf(stderr, "pxs_demo %s: %s: %s%s\n", who, what, pxs_strerror(st),
                stop_requested ? " (stopped by a signal)" : "");
    return st;
}

static void name_of(char *buf, size_t cap, const char *prefix, const char *what, size_t i)
{
    snprintf(buf, cap, "%s/%s%zu", prefix, what, i);
}

static int uses_pxs_alloc(size_t i) { return i % 2 == 0; }

/* Word w of object i: differs between objects and offsets, so a misplaced
 * or stale page is caught, and costs a few instructions per 8 bytes. */
static uint64_t pattern_word(uint64_t obj, uint64_t w)
{
    uint64_t x = (obj + 1) * 0x9e3779b97f4a7c15ull ^ w * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 31);
}

static void pattern_fill(void *buf, size_t len, uint64_t obj)
{
    uint8_t *p = buf;
    size_t nw = len / 8;
    for (size_t w = 0; w < nw; w++) {
        uint64_t v = pattern_word(obj, w);
        memcpy(p + 8 * w, &v, 8);
    }
    uint64_t tail = pattern_word(obj, nw);
    memcpy(p + 8 * nw, &tail, len % 8);
}

/* @return the offset of the first wrong byte, or len when all are right. */
static size_t pattern_check(const void *buf, size_t len, uint64_t obj)
{
    uint8_t want[8];
    const uint8_t *p = buf;
    for (size_t off = 0; off < len; off += 8) {
        uint64_t v = pattern_word(obj, off / 8);
        size_t n = len - off < 8 ? len - off : 8;
        memcpy(want, &v, 8);
        if (memcmp(p + off, want, n) != 0) {
            size_t k = 0;
            while (p[off + k] == want[k]) k++;
            return off + k;
        }
    }
    return len;
}

/* ---- library plumbing shared by the roles ----------------------------- */

static pxs_status_t demo_open(const char *who, const opts_t *opt, pxs_context_t **ctx_p,
                              pxs_store_t **store_p)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = DEMO_DOMAIN};
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = opt->connector};
    char what[64];
    *ctx_p = NULL;
    snprintf(what, sizeof what, "pxs_store_open(%s)", opt->connector);
    pxs_status_t st = check(who, "pxs_init", pxs_init(&cp, ctx_p));
    if (st == PXS_OK) st = check(who, what, pxs_store_open(*ctx_p, &sp, store_p));
    if (st != PXS_OK) {
        pxs_finalize(*ctx_p);
        *ctx_p = NULL;
    }
    return st;
}

/* Publish a small value (manifest, verdict). It travels inside its proxy;
 * PXS_PUT_COPY keeps this right even when PXS_INLINE_MAX=0 turns inlining
 * off, as the store then keeps a copy instead of exposing our stack. */
static pxs_status_t publish_value(pxs_context_t *ctx, pxs_store_t *store, const char *name,
                                  const void *val, size_t len)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_COPY};
    pxs_proxy_t proxy;
    pxs_status_t st = pxs_put(store, val, len, &pp, &proxy);
    return st == PXS_OK ? pxs_name_publish(ctx, name, &proxy) : st;
}

/* Read a value published with publish_value: exactly len bytes. */
static pxs_status_t read_value(pxs_context_t *ctx, const pxs_proxy_t *proxy, void *val, size_t len)
{
    size_t got = 0;
    pxs_status_t st = pxs_resolve(ctx, proxy, val, len, &got);
    return st == PXS_OK && got != len ? PXS_ERR_TRUNCATED : st;
}

/* Poll the rendezvous until name is published (want_present) or gone.
 * @return PXS_OK, PXS_ERR_TIMEOUT at the deadline, or a lookup error. */
static pxs_status_t wait_name(pxs_context_t *ctx, const char *name, int want_present,
                              double deadline, pxs_proxy_t *proxy)
{
    for (;;) {
        pxs_status_t st = pxs_name_lookup(ctx, name, proxy);
        if (want_present && st != PXS_ERR_NOT_FOUND) return st;
        if (!want_present && st == PXS_ERR_NOT_FOUND) return PXS_OK;
        if (!want_present && st != PXS_OK) return st;
        if (time_is_up(deadline)) return PXS_ERR_TIMEOUT;
        sleep_ms(POLL_MS);
    }
}

/* ---- producer ----------------------------------------------------------- */

typedef struct {
    void *buf;
    int in_pxs_mem; /* buf is from pxs_alloc */
    int put;        /* proxy names a live object */
    int published;  /* proxy is published under its name */
    pxs_proxy_t proxy;
} pobj_t;

/* Consumers read malloc'd objects with process_vm_readv, which Yama
 * (ptrace_scope=1, the default on Ubuntu and others) allows only from a
 * process's ancestors; consumers are not ours. Let any process of this user
 * read us; where Yama is off this fails harmlessly and changes nothing. */
static void allow_cma_readers(void) { (void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); }

/* Create object i, put it zero-copy and publish its proxy. Flags in *o say
 * how far it got, for producer_unmake. */
static pxs_status_t producer_make(pxs_context_t *ctx, pxs_store_t *store, const opts_t *opt,
                                  size_t i, pobj_t *o)
{
    char name[PXS_NAME_MAX + 1];
    pxs_status_t st;
    if (uses_pxs_alloc(i)) {
        if ((st = check("producer", "pxs_alloc", pxs_alloc(ctx, opt->size, &o->buf))) != PXS_OK)
            return st;
        o->in_pxs_mem = 1;
    } else if (!(o->buf = malloc(opt->size))) {
        return check("producer", "malloc", PXS_ERR_NO_MEMORY);
    }
    pattern_fill(o->buf, opt->size, i);
    /* Zero copy: the buffer itself is exposed. NO_INLINE so that even tiny
     * objects are read through the connector, as large ones are. */
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    st = check("producer", "pxs_put", pxs_put(store, o->buf, opt->size, &pp, &o->proxy));
    if (st != PXS_OK) return st;
    o->put = 1;
    name_of(name, sizeof name, opt->prefix, "obj", i);
    if ((st = check("producer", name, pxs_name_publish(ctx, name, &o->proxy))) != PXS_OK) return st;
    o->published = 1;
    return PXS_OK;
}

static void producer_unmake(pxs_context_t *ctx, pxs_store_t *store, const opts_t *opt, size_t i,
                            pobj_t *o)
{
    char name[PXS_NAME_MAX + 1];
    name_of(name, sizeof name, opt->prefix, "obj", i);
    if (o->published) check("producer", "pxs_name_unpublish", pxs_name_unpublish(ctx, name));
    if (o->put) check("producer", "pxs_evict", pxs_evict(store, &o->proxy));
    if (o->in_pxs_mem) check("producer", "pxs_free", pxs_free(ctx, o->buf));
    else free(o->buf);
}

/* Read consumer k's verdict; @return 1 if it verified everything. */
static int producer_take_verdict(pxs_context_t *ctx, unsigned k, const pxs_proxy_t *proxy)
{
    verdict_t v;
    char what[32];
    snprintf(what, sizeof what, "verdict of consumer %u", k);
    if (check("producer", what, read_value(ctx, proxy, &v, sizeof v)) != PXS_OK) return 0;
    int ok = v.magic == VERDICT_MAGIC && v.status == PXS_OK && v.mismatches == 0;
    printf("producer: consumer %u %s: %llu objects, %.1f MiB checked, %llu zero-copy views, "
           "%u bad reads%s%s\n",
           k, ok ? "done" : "FAILED", (unsigned long long)v.objects, (double)v.bytes / (1 << 20),
           (unsigned long long)v.views, v.mismatches, v.status ? ", error: " : "",
           v.status ? pxs_strerror((pxs_status_t)v.status) : "");
    return ok;
}

/* Wait until every consumer has published its verdict, or the deadline.
 * @return the number of consumers that failed or never answered. */
static unsigned producer_collect(pxs_context_t *ctx, const opts_t *opt, double deadline)
{
    unsigned char seen[MAX_CONSUMERS] = {0};
    unsigned answered = 0, failed = 0;
    pxs_proxy_t proxy;
    char name[PXS_NAME_MAX + 1];
    while (answered < opt->consumers) {
        for (unsigned k = 0; k < opt->consumers; k++) {
            if (seen[k]) continue;
            name_of(name, sizeof name, opt->prefix, "done.", k);
            pxs_status_t st = pxs_name_lookup(ctx, name, &proxy);
            if (st == PXS_ERR_NOT_FOUND) continue;
            seen[k] = 1;
            answered++;
            if (check("producer", name, st) != PXS_OK || !producer_take_verdict(ctx, k, &proxy))
                failed++;
        }
        if (answered == opt->consumers) break;
        if (time_is_up(deadline)) {
            fprintf(stderr, "pxs_demo producer: %u of %u consumers did not finish %s\n",
                    opt->consumers - answered, opt->consumers,
                    stop_requested ? "before a signal stopped us" : "in time");
            return failed + opt->consumers - answered;
        }
        sleep_ms(POLL_MS);
    }
    return failed;
}

static int producer_run(const opts_t *opt)
{
    pxs_context_t *ctx;
    pxs_store_t *store;
    pobj_t *objs = calloc(opt->objects, sizeof *objs);
    size_t made = 0;
    int rc = 1, ready = 0;
    char name[PXS_NAME_MAX + 1];

    allow_cma_readers();
    if (!objs) {
        check("producer", "calloc", PXS_ERR_NO_MEMORY);
        return 1;
    }
    if (demo_open("producer", opt, &ctx, &store) != PXS_OK) {
        free(objs);
        return 1;
    }
    for (size_t i = 0; i < opt->objects; i++) {
        made = i + 1; /* object i needs cleaning up even if it is half made */
        if (producer_make(ctx, store, opt, i, &objs[i]) != PXS_OK) goto out;
    }
    manifest_t m = {.magic = MANIFEST_MAGIC, .objects = opt->objects, .size = opt->size,
                    .consumers = opt->consumers};
    snprintf(name, sizeof name, "%s/ready", opt->prefix);
    if (check("producer", name, publish_value(ctx, store, name, &m, sizeof m)) != PXS_OK) goto out;
    ready = 1;
    printf("producer: %zu objects of %zu bytes (%zu in pxs_alloc memory, %zu malloc'd) published "
           "as %s/obj* (connector %s); waiting for %u consumers\n",
           opt->objects, opt->size, (opt->objects + 1) / 2, opt->objects / 2, opt->prefix,
           opt->connector, opt->consumers);
    rc = producer_collect(ctx, opt, now_s() + opt->timeout_s) == 0 ? 0 : 1;
out:
    /* Unpublishing ready first lets waiting consumers go while we clean up. */
    if (ready) check("producer", "pxs_name_unpublish(ready)", pxs_name_unpublish(ctx, name));
    for (size_t i = 0; i < made; i++) producer_unmake(ctx, store, opt, i, &objs[i]);
    free(objs);
    pxs_finalize(ctx);
    printf("producer: %s\n", rc == 0 ? "all consumers verified every object" : "FAILED");
    return rc;
}

/* ---- consumer ----------------------------------------------------------- */

typedef struct {
    pxs_proxy_t proxy;
    size_t size; /* from pxs_proxy_info: a proxy describes its object */
} cobj_t;

typedef struct {
    pxs_context_t *ctx;
    const opts_t *opt;
    size_t n;
    cobj_t *objs;
    void *dst;       /* resolve target, also the memcpy baseline's */
    uint8_t *src;    /* memcpy baseline sources: nsrc buffers of cap bytes */
    size_t nsrc;
    size_t cap;
    verdict_t *v;
} consumer_t;

/* Find every object by name. */
static pxs_status_t consumer_lookup(consumer_t *c)
{
    char name[PXS_NAME_MAX + 1];
    for (size_t i = 0; i < c->n; i++) {
        pxs_proxy_info_t info;
        name_of(name, sizeof name, c->opt->prefix, "obj", i);
        pxs_status_t st = pxs_name_lookup(c->ctx, name, &c->objs[i].proxy);
        if (st == PXS_OK) st = pxs_proxy_info(&c->objs[i].proxy, &info);
        if (check("consumer", name, st) != PXS_OK) return st;
        c->objs[i].size = (size_t)info.size;
    }
    return PXS_OK;
}

/* Resolve every object into dst and verify it. Only the resolves are timed.
 * The first pass also maps the producer's segments and faults their pages
 * in; a repeat shows the steady state. */
static pxs_status_t consumer_resolve_pass(consumer_t *c, pass_t *p)
{
    memset(p, 0, sizeof *p);
    c->v->bytes = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t len = 0;
        double t0 = now_s();
        pxs_status_t st = pxs_resolve(c->ctx, &c->objs[i].proxy, c->dst, c->cap, &len);
        p->secs[uses_pxs_alloc(i)] += now_s() - t0;
        if (check("consumer", "pxs_resolve", st) != PXS_OK) return st;
        size_t bad = pattern_check(c->dst, len, i);
        if (bad != len) {
            fprintf(stderr, "pxs_demo consumer %u: object %zu: wrong byte at offset %zu\n",
                    c->opt->id, i, bad);
            c->v->mismatches++;
        }
        p->bytes[uses_pxs_alloc(i)] += len;
        c->v->bytes += len;
    }
    c->v->objects = c->n;
    return PXS_OK;
}

/* Look at the pxs_alloc objects in place: no copy at all. Connectors
 * without views (ucx: the bytes are on another node, as far as it knows)
 * skip this pass. */
static pxs_status_t consumer_view_pass(consumer_t *c)
{
    if (!(c->opt->caps & PXS_CAP_VIEW)) return PXS_OK;
    for (size_t i = 0; i < c->n; i++) {
        if (!uses_pxs_alloc(i)) continue; /* private memory: PXS_ERR_UNSUPPORTED */
        pxs_view_t *view;
        pxs_status_t st =
            check("consumer", "pxs_view_acquire", pxs_view_acquire(c->ctx, &c->objs[i].proxy, &view));
        if (st != PXS_OK) return st;
        size_t len = pxs_view_size(view);
        if (pattern_check(pxs_view_data(view), len, i) != len ||
            pxs_view_valid(view) != PXS_OK) {
            fprintf(stderr, "pxs_demo consumer %u: view of object %zu is wrong\n", c->opt->id, i);
            c->v->mismatches++;
        }
        pxs_view_release(view);
        c->v->views++;
    }
    return PXS_OK;
}

/* Sources for the memcpy baseline. Each resolve reads other pages, so the
 * baseline copies from distinct buffers too, or it would run from cache;
 * past SRC_BYTES_MAX the buffers are reused, as that is beyond any cache. */
#define SRC_BYTES_MAX ((size_t)256 << 20)
static pxs_status_t consumer_memcpy_setup(consumer_t *c)
{
    c->nsrc = SRC_BYTES_MAX / c->cap;
    if (c->nsrc > c->n) c->nsrc = c->n;
    if (c->nsrc == 0) c->nsrc = 1;
    c->src = malloc(c->nsrc * c->cap);
    if (!c->src) return check("consumer", "malloc", PXS_ERR_NO_MEMORY);
    for (size_t i = 0; i < c->nsrc; i++) pattern_fill(c->src + i * c->cap, c->cap, i);
    return PXS_OK;
}

/* The ceiling: memcpy of the same sizes within this process. */
static double consumer_memcpy_secs(consumer_t *c)
{
    double t0 = now_s();
    for (size_t i = 0; i < c->n; i++) {
        size_t len = c->objs[i].size < c->cap ? c->objs[i].size : c->cap;
        memcpy(c->dst, c->src + (i % c->nsrc) * c->cap, len);
        __asm__ volatile("" : : "r"(c->dst) : "memory"); /* keep the copy */
    }
    return now_s() - t0;
}

/* Everything between finding the manifest and publishing the verdict. */
static pxs_status_t consumer_transfer(consumer_t *c)
{
    pass_t first, repeat;
    double copy1, copy2;
    pxs_status_t st = consumer_lookup(c);
    if (st == PXS_OK) st = consumer_resolve_pass(c, &first);
    if (st == PXS_OK) st = consumer_resolve_pass(c, &repeat);
    if (st == PXS_OK) st = consumer_view_pass(c);
    if (st == PXS_OK) st = consumer_memcpy_setup(c);
    if (st != PXS_OK) return st;
    copy1 = consumer_memcpy_secs(c);
    copy2 = consumer_memcpy_secs(c);
    c->v->first_mbps = mbps(c->v->bytes, first.secs[0] + first.secs[1]);
    c->v->repeat_mbps = mbps(c->v->bytes, repeat.secs[0] + repeat.secs[1]);
    for (int k = 0; k < 2; k++) c->v->path_mbps[k] = mbps(repeat.bytes[k], repeat.secs[k]);
    c->v->memcpy_mbps = mbps(c->v->bytes, copy1 < copy2 ? copy1 : copy2);
    return PXS_OK;
}

static void consumer_print(const consumer_t *c)
{
    const verdict_t *v = c->v;
    printf("consumer %u: %llu objects, %.1f MiB resolved by proxy and verified (%s), "
           "%llu zero-copy views\n",
           c->opt->id, (unsigned long long)v->objects, (double)v->bytes / (1 << 20),
           v->mismatches ? "MISMATCHES" : "all bytes right", (unsigned long long)v->views);
    printf("consumer %u: resolve %.0f MB/s (first pass, maps the pages), repeat %.0f MB/s "
           "(pxs_alloc %.0f, malloc'd %.0f) | memcpy %.0f MB/s | repeat/memcpy %.2f\n",
           c->opt->id, v->first_mbps, v->repeat_mbps, v->path_mbps[1], v->path_mbps[0],
           v->memcpy_mbps, v->memcpy_mbps > 0 ? v->repeat_mbps / v->memcpy_mbps : 0);
}

/* Wait for the manifest and check that it is one and that we are expected. */
static pxs_status_t consumer_manifest(pxs_context_t *ctx, const opts_t *opt, manifest_t *m)
{
    char name[PXS_NAME_MAX + 1];
    pxs_proxy_t proxy;
    snprintf(name, sizeof name, "%s/ready", opt->prefix);
    pxs_status_t st = wait_name(ctx, name, 1, now_s() + opt->timeout_s, &proxy);
    if (st == PXS_OK) st = read_value(ctx, &proxy, m, sizeof *m);
    if (check("consumer", name, st) != PXS_OK) return st;
    if (m->magic != MANIFEST_MAGIC || m->objects == 0 || m->objects > MAX_OBJECTS ||
        m->size == 0 || opt->id >= m->consumers) {
        fprintf(stderr, "pxs_demo consumer %u: bad manifest, or id not below its %u consumers\n",
                opt->id, m->consumers);
        return PXS_ERR_INVALID_PARAM;
    }
    return PXS_OK;
}

/* Publish our verdict, then hold it until the producer has taken it (it
 * unpublishes ready) or the deadline. */
static pxs_status_t consumer_finish(pxs_context_t *ctx, pxs_store_t *store, const opts_t *opt,
                                    const verdict_t *v)
{
    char name[PXS_NAME_MAX + 1];
    name_of(name, sizeof name, opt->prefix, "done.", opt->id);
    pxs_status_t st = check("consumer", name, publish_value(ctx, store, name, v, sizeof *v));
    if (st != PXS_OK) return st;
    pxs_proxy_t proxy;
    snprintf(name, sizeof name, "%s/ready", opt->prefix);
    return check("consumer", "waiting for the producer to finish",
                 wait_name(ctx, name, 0, now_s() + opt->timeout_s, &proxy));
}

static int consumer_run(const opts_t *opt)
{
    pxs_context_t *ctx;
    pxs_store_t *store;
    manifest_t m;
    verdict_t v = {.magic = VERDICT_MAGIC};
    consumer_t c = {.opt = opt, .v = &v};

    if (demo_open("consumer", opt, &ctx, &store) != PXS_OK) return 1;
    c.ctx = ctx;
    pxs_status_t st = consumer_manifest(ctx, opt, &m);
    if (st != PXS_OK) goto out;
    c.n = (size_t)m.objects;
    c.cap = (size_t)m.size;
    c.objs = calloc(c.n, sizeof *c.objs);
    c.dst = malloc(c.cap);
    if (!c.objs || !c.dst) st = check("consumer", "malloc", PXS_ERR_NO_MEMORY);
    else {
        memset(c.dst, 0, c.cap); /* fault the target in: time transfers, not page faults */
        st = consumer_transfer(&c);
    }
    v.status = st;
    if (st == PXS_OK) consumer_print(&c);
    /* A failed consumer reports too, so the producer need not wait it out. */
    pxs_status_t fin = consumer_finish(ctx, store, opt, &v);
    if (st == PXS_OK) st = fin;
out:
    free(c.objs);
    free(c.dst);
    free(c.src);
    pxs_finalize(ctx);
    return st == PXS_OK && v.mismatches == 0 ? 0 : 1;
}

/* ---- selftest: the whole demo as child processes ----------------------- */

static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        perror("pxs_demo selftest: execv");
        _exit(127);
    }
    if (pid < 0) perror("pxs_demo selftest: fork");
    return pid;
}

/* Stop the children still running: politely first, so that they clean up,
 * then for good. */
static void stop_children(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    double deadline = now_s() + 5;
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0) continue;
        pid_t r;
        while ((r = waitpid(pids[i], NULL, WNOHANG)) == 0 && now_s() < deadline) sleep_ms(POLL_MS);
        if (r == 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
        pids[i] = 0;
    }
}

/* Reap the children; stop what is left at the deadline or on a signal.
 * @return the number that did not start or did not exit with status 0. */
static int reap(pid_t *pids, int n, double deadline)
{
    int failed = 0, left = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) left++;
        else failed++;
    }
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            int status;
            if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
            pids[i] = 0;
            left--;
        }
        if (left > 0 && time_is_up(deadline)) {
            fprintf(stderr, "pxs_demo selftest: stopping %d processes still running\n", left);
            stop_children(pids, n);
            return failed + left;
        }
        sleep_ms(POLL_MS);
    }
    return failed;
}

static int selftest_run(const opts_t *opt)
{
    char prefix[48], objects[24], size[24], timeout[24], connector[PXS_NAME_MAX + 1];
    snprintf(prefix, sizeof prefix, "selftest-%d", (int)getpid());
    snprintf(objects, sizeof objects, "%zu", opt->objects);
    snprintf(size, sizeof size, "%zu", opt->size);
    snprintf(timeout, sizeof timeout, "%.0f", opt->timeout_s);
    snprintf(connector, sizeof connector, "%s", opt->connector);
    char *producer[] = {"pxs_demo", "producer", "--objects", objects, "--size", size, "--prefix",
                        prefix, "--consumers", "2", "--timeout", timeout,
                        "--connector", connector, NULL};
    char *consumer0[] = {"pxs_demo", "consumer", "--id", "0", "--prefix", prefix,
                         "--timeout", timeout, "--connector", connector, NULL};
    char *consumer1[] = {"pxs_demo", "consumer", "--id", "1", "--prefix", prefix,
                         "--timeout", timeout, "--connector", connector, NULL};
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pids[3] = {spawn(producer), spawn(consumer0), spawn(consumer1)};
    int failed = reap(pids, 3, now_s() + opt->timeout_s + 10);
    printf("selftest: %s\n", failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: pxs_demo producer --objects N --size BYTES --prefix NAME"
               " [--consumers C] [--timeout S] [--connector NAME]\n"
               "       pxs_demo consumer --id K --prefix NAME [--timeout S] [--connector NAME]\n"
               "       pxs_demo selftest [--objects N] [--size BYTES] [--timeout S]"
               " [--connector NAME]\n"
               "connectors built in:");
    pxs_connector_desc_t d;
    for (unsigned i = 0; pxs_connector_describe(i, &d) == PXS_OK; i++) fprintf(f, " %s", d.name);
    fprintf(f, " (default %s)\n", DEFAULT_CONNECTOR);
}

/* Find a built-in connector that other processes can read from.
 * @return 0, or -1 after printing what is wrong. */
static int pick_connector(opts_t *opt)
{
    pxs_connector_desc_t d;
    for (unsigned i = 0; pxs_connector_describe(i, &d) == PXS_OK; i++) {
        if (strcmp(d.name, opt->connector) != 0) continue;
        if (!(d.caps & PXS_CAP_CROSS_PROCESS)) {
            fprintf(stderr, "pxs_demo: connector \"%s\" cannot serve other processes\n", d.name);
            return -1;
        }
        opt->caps = d.caps;
        return 0;
    }
    fprintf(stderr, "pxs_demo: no connector \"%s\" in this build\n", opt->connector);
    usage(stderr);
    return -1;
}

static int parse_num(const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* @return 0, or -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, opts_t *opt)
{
    static const struct option longopts[] = {
        {"objects", required_argument, NULL, 'n'}, {"size", required_argument, NULL, 's'},
        {"prefix", required_argument, NULL, 'p'},  {"id", required_argument, NULL, 'i'},
        {"consumers", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 't'},
        {"connector", required_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    unsigned long long v;
    int c, li = 0, have_id = 0;
    /* Option parsing starts after the role, which getopt sees as argv[0]. */
    while ((c = getopt_long(argc - 1, argv + 1, "", longopts, &li)) != -1) {
        int bad = 0;
        switch (c) {
        case 'n': bad = parse_num(optarg, 1, MAX_OBJECTS, &v); opt->objects = (size_t)v; break;
        case 's': bad = parse_num(optarg, 1, SIZE_MAX / 2, &v); opt->size = (size_t)v; break;
        case 'i': bad = parse_num(optarg, 0, MAX_CONSUMERS - 1, &v); opt->id = (unsigned)v; have_id = 1; break;
        case 'c': bad = parse_num(optarg, 1, MAX_CONSUMERS, &v); opt->consumers = (unsigned)v; break;
        case 't': bad = parse_num(optarg, 1, 3600, &v); opt->timeout_s = (double)v; break;
        case 'p': opt->prefix = optarg; break;
        case 'C': opt->connector = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "pxs_demo: bad value \"%s\" for --%s\n", optarg, longopts[li].name);
            return -1;
        }
    }
    if (optind + 1 != argc) return usage(stderr), -1;
    int is_producer = !strcmp(opt->role, "producer"), is_consumer = !strcmp(opt->role, "consumer");
    if (!is_producer && !is_consumer && strcmp(opt->role, "selftest")) return usage(stderr), -1;
    if ((is_producer || is_consumer) &&
        (!opt->prefix || !*opt->prefix || strlen(opt->prefix) > PREFIX_MAX)) {
        fprintf(stderr, "pxs_demo: --prefix needs 1..%d characters\n", PREFIX_MAX);
        return -1;
    }
    if (is_consumer && !have_id) return fprintf(stderr, "pxs_demo: consumer needs --id\n"), -1;
    if (is_producer && opt->size == 0) return fprintf(stderr, "pxs_demo: producer needs --size\n"), -1;
    return pick_connector(opt);
}

int main(int argc, char **argv)
{
    opts_t opt = {.objects = 4, .consumers = 1, .timeout_s = 30, .connector = DEFAULT_CONNECTOR};
    setvbuf(stdout, NULL, _IOLBF, 0); /* several processes share one terminal or log */
    catch_stop_signals();
    if (argc < 2) return usage(stderr), 2;
    opt.role = argv[1];
    if (parse_args(argc, argv, &opt) != 0) return 2;
    if (!strcmp(opt.role, "producer")) return producer_run(&opt);
    if (!strcmp(opt.role, "consumer")) return consumer_run(&opt);
    if (opt.size == 0) opt.size = 1 << 20;
    return selftest_run(&opt);
}
