/* pxs_mh: owners and a reader for ci/netns-test, the multi-host harness
 * (network namespaces joined by veth links stand in for nodes).
 *
 *   pxs_mh owner --name NAME --seed K --size BYTES --stop FILE [--hold S]
 *                [--connector C] [--text FILE]
 *   pxs_mh reader [--size BYTES] [--wait S] [--slack-ms MS] STEP...
 *
 * An owner fills a malloc'd buffer with a pattern drawn from its seed, puts
 * it zero-copy into a store of the connector (default "ucx"), publishes the
 * proxy under NAME in the embedded name directory (and, with --text, writes
 * its text form to FILE), then serves gets until FILE --stop exists, a
 * signal, or --hold seconds (default 60) pass.
 *
 * A reader runs its steps in order, in one context, and says how each went:
 *   get:NAME:SEED:ok    look NAME up (waiting up to --wait S for it), resolve
 *                       it and check every byte against SEED's pattern
 *   get:NAME:SEED:err   the resolve must fail with PXS_ERR_TIMEOUT,
 *                       PXS_ERR_UNREACHABLE or PXS_ERR_PEER_DEAD, no later
 *                       than the context's timeout (PXS_TIMEOUT_MS) plus
 *                       --slack-ms (default 2000)
 *   held:NAME:SEED:ok|err  the same, with the proxy an earlier get step
 *                       looked up under NAME (no lookup: a dead owner's
 *                       name may be gone from the directory)
 *   touch:FILE          create FILE (tells the harness where we are)
 *   wait:FILE           wait up to --wait S for FILE (the harness's answer)
 * Lines "reader: [N] get ..." report step N (from 1) with its status name and
 * time, ending ": ok" when it went as expected.
 *
 * Every wait is bounded; SIGTERM and SIGINT end waits early. Exit status:
 * 0 when every step went as expected, 1 otherwise, 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pxs/pxs.h>

#define MH_DOMAIN "pxs-multihost" /* PXS_DOMAIN overrides it */
#define POLL_MS 5

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested) {
    }
}

static const char *status_name(pxs_status_t st)
{
    switch (st) {
#define MH_STATUS_CASE_(n, v, s) \
    case n: return #n;
        PXS_STATUS_LIST(MH_STATUS_CASE_)
#undef MH_STATUS_CASE_
    }
    return "unknown status";
}

static uint64_t pattern_word(uint64_t seed, uint64_t w)
{
    uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ull ^ (w + 1) * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static void pattern_fill(uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t off = 0; off < len; off += 8) {
        uint64_t v = pattern_word(seed, off / 8);
        memcpy(p + off, &v, len - off < 8 ? len - off : 8);
    }
}

/* @return the offset of the first wrong byte, or len. */
static size_t pattern_check(const uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t off = 0; off < len; off += 8) {
        uint64_t v = pattern_word(seed, off / 8);
        uint8_t want[8];
        size_t n = len - off < 8 ? len - off : 8;
        memcpy(want, &v, 8);
        for (size_t k = 0; k < n; k++)
            if (p[off + k] != want[k]) return off + k;
    }
    return len;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Wait for path, at most secs. @return 1 when it is there. */
static int wait_file(const char *path, double secs)
{
    double deadline = now_s() + secs;
    while (!file_exists(path)) {
        if (stop_requested || now_s() >= deadline) return 0;
        sleep_ms(POLL_MS);
    }
    return 1;
}

static int touch(const char *path)
{
    FILE *f = fopen(path, "w");
    return f && fclose(f) == 0 ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static pxs_status_t open_ctx(const char *who, pxs_context_t **ctx_p)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = MH_DOMAIN};
    pxs_status_t st = pxs_init(&cp, ctx_p);
    if (st != PXS_OK) fprintf(stderr, "%s: pxs_init: %s\n", who, pxs_strerror(st));
    return st;
}

/* ---- owner -------------------------------------------------------------- */

typedef struct {
    const char *name, *stop, *connector, *text;
    uint64_t seed, size, hold_s;
} owner_opts_t;

static int write_text(const char *path, const pxs_proxy_t *proxy)
{
    char text[PXS_PROXY_TEXT_MAX], tmp[4096];
    if (pxs_proxy_to_text(proxy, text, sizeof text) != PXS_OK) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int bad = fprintf(f, "%s\n", text) < 0;
    if (fclose(f) != 0 || bad) return -1;
    return rename(tmp, path);
}

static int owner_run(const owner_opts_t *o)
{
    pxs_context_t *ctx;
    pxs_store_t *store;
    pxs_proxy_t proxy;
    int rc = 1, put = 0, published = 0;
    uint8_t *buf = malloc(o->size ? o->size : 1);
    if (!buf || open_ctx("owner", &ctx) != PXS_OK) {
        free(buf);
        return 1;
    }
    pattern_fill(buf, o->size, o->seed);
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = o->connector};
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    pxs_status_t st = pxs_store_open(ctx, &sp, &store);
    if (st == PXS_OK && (st = pxs_put(store, buf, o->size, &pp, &proxy)) == PXS_OK) put = 1;
    if (st == PXS_OK && (st = pxs_name_publish(ctx, o->name, &proxy)) == PXS_OK) published = 1;
    if (st != PXS_OK) {
        fprintf(stderr, "owner %s: %s\n", o->name, pxs_strerror(st));
        goto out;
    }
    if (o->text && write_text(o->text, &proxy) != 0) {
        fprintf(stderr, "owner %s: cannot write %s: %s\n", o->name, o->text, strerror(errno));
        goto out;
    }
    printf("owner %s: %llu bytes put over %s, proxy of %zu bytes published (pid %d)\n", o->name,
           (unsigned long long)o->size, o->connector, pxs_proxy_len(&proxy), (int)getpid());
    /* Serve (the connector's progress thread does the work) until told. */
    if (!wait_file(o->stop, (double)o->hold_s) && !stop_requested)
        fprintf(stderr, "owner %s: no stop file after %llus, quitting\n", o->name,
                (unsigned long long)o->hold_s);
    rc = 0;
out:
    if (published) pxs_name_unpublish(ctx, o->name);
    if (put) pxs_evict(store, &proxy);
    pxs_finalize(ctx);
    free(buf);
    printf("owner %s: done\n", o->name);
    return rc;
}

/* ---- reader ------------------------------------------------------------- */

typedef struct {
    uint64_t size, wait_s, slack_ms;
} reader_opts_t;

/* The proxies get steps looked up, by name, for held steps. */
#define HELD_MAX 16
static struct {
    char name[64];
    pxs_proxy_t proxy;
} held[HELD_MAX];
static int nheld;

static pxs_status_t held_find(const char *name, pxs_proxy_t *proxy)
{
    for (int i = 0; i < nheld; i++)
        if (!strcmp(held[i].name, name)) return *proxy = held[i].proxy, PXS_OK;
    return PXS_ERR_NOT_FOUND;
}

static void held_keep(const char *name, const pxs_proxy_t *proxy)
{
    pxs_proxy_t known;
    if (nheld == HELD_MAX || strlen(name) >= sizeof held[0].name || held_find(name, &known) == PXS_OK)
        return;
    snprintf(held[nheld].name, sizeof held[nheld].name, "%s", name);
    held[nheld++].proxy = *proxy;
}

/* One get step (lookup) or held step. @return 0 when it went as expected. */
static int reader_get(pxs_context_t *ctx, const reader_opts_t *o, int timeout_ms, int step,
                      char *arg, bool lookup, uint8_t *dst)
{
    char *name = strtok(arg, ":"), *seed_s = strtok(NULL, ":"), *want = strtok(NULL, ":");
    uint64_t seed;
    int want_ok;
    if (!name || !seed_s || !want || strtok(NULL, ":") || parse_u64(seed_s, 0, UINT64_MAX, &seed) ||
        (strcmp(want, "ok") && strcmp(want, "err"))) {
        fprintf(stderr, "reader: bad get step\n");
        return 1;
    }
    want_ok = !strcmp(want, "ok");
    pxs_proxy_t proxy;
    pxs_status_t st;
    double deadline = now_s() + (double)o->wait_s;
    if (!lookup) st = held_find(name, &proxy);
    else
        while ((st = pxs_name_lookup(ctx, name, &proxy)) == PXS_ERR_NOT_FOUND && !stop_requested &&
               now_s() < deadline)
            sleep_ms(POLL_MS);
    if (st != PXS_OK) {
        printf("reader: [%d] get %s: %s: %s: FAIL\n", step, name, lookup ? "lookup" : "no earlier get",
               status_name(st));
        return 1;
    }
    if (lookup) held_keep(name, &proxy);
    size_t len = 0;
    memset(dst, 0, o->size);
    double t0 = now_s();
    st = pxs_resolve(ctx, &proxy, dst, o->size, &len);
    double ms = (now_s() - t0) * 1e3;
    if (want_ok) {
        size_t bad = st == PXS_OK ? pattern_check(dst, len, seed) : 0;
        int ok = st == PXS_OK && bad == len && len > 0;
        printf("reader: [%d] get %s: %s in %.1f ms, %zu bytes%s (expected PXS_OK): %s\n", step, name,
               status_name(st), ms, len,
               st != PXS_OK ? "" : bad == len ? ", every byte right" : ", WRONG BYTES",
               ok ? "ok" : "FAIL");
        if (st == PXS_OK && bad != len)
            printf("reader: get %s: first wrong byte at offset %zu\n", name, bad);
        return !ok;
    }
    int clear = st == PXS_ERR_TIMEOUT || st == PXS_ERR_UNREACHABLE || st == PXS_ERR_PEER_DEAD;
    double limit = timeout_ms < 0 ? -1 : (double)timeout_ms + (double)o->slack_ms;
    int in_time = limit < 0 || ms <= limit;
    printf("reader: [%d] get %s: %s (\"%s\") in %.1f ms, limit %.0f ms (expected a timeout, "
           "unreachable or peer-dead error): %s\n",
           step, name, status_name(st), pxs_strerror(st), ms, limit,
           clear && in_time ? "ok" : clear ? "FAIL (too late)" : "FAIL");
    return !(clear && in_time);
}

static int reader_run(const reader_opts_t *o, int nsteps, char **steps)
{
    pxs_context_t *ctx;
    pxs_context_params_t q;
    int failed = 0;
    uint8_t *dst = malloc(o->size);
    if (!dst || open_ctx("reader", &ctx) != PXS_OK) {
        free(dst);
        return 1;
    }
    pxs_context_query(ctx, &q);
    printf("reader: pid %d, timeout %d ms\n", (int)getpid(), q.timeout_ms);
    for (int i = 0; i < nsteps && !stop_requested; i++) {
        char *s = steps[i];
        if (!strncmp(s, "get:", 4)) {
            failed += reader_get(ctx, o, q.timeout_ms, i + 1, s + 4, true, dst);
        } else if (!strncmp(s, "held:", 5)) {
            failed += reader_get(ctx, o, q.timeout_ms, i + 1, s + 5, false, dst);
        } else if (!strncmp(s, "touch:", 6)) {
            if (touch(s + 6) != 0) {
                printf("reader: touch %s: FAIL: %s\n", s + 6, strerror(errno));
                failed++;
            }
        } else if (!strncmp(s, "wait:", 5)) {
            if (!wait_file(s + 5, (double)o->wait_s)) {
                printf("reader: wait %s: FAIL: not there after %llus\n", s + 5,
                       (unsigned long long)o->wait_s);
                failed++;
                break; /* the harness is not where we think: stop here */
            }
        } else {
            fprintf(stderr, "reader: unknown step \"%s\"\n", s);
            failed++;
            break;
        }
    }
    if (stop_requested) {
        printf("reader: stopped by a signal\n");
        failed++;
    }
    pxs_finalize(ctx);
    free(dst);
    printf("reader: %s\n", failed ? "FAILED" : "every step as expected");
    return failed ? 1 : 0;
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: pxs_mh owner --name NAME --seed K --size BYTES --stop FILE [--hold S]"
                    " [--connector C] [--text FILE]\n"
                    "       pxs_mh reader [--size BYTES] [--wait S] [--slack-ms MS] STEP...\n"
                    "STEP: get:NAME:SEED:ok|err, held:NAME:SEED:ok|err, touch:FILE, wait:FILE\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},  {"seed", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},  {"stop", required_argument, NULL, 'x'},
        {"hold", required_argument, NULL, 'H'},  {"connector", required_argument, NULL, 'C'},
        {"text", required_argument, NULL, 'T'},  {"wait", required_argument, NULL, 'w'},
        {"slack-ms", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0}};
    owner_opts_t ow = {.connector = "ucx", .hold_s = 60, .size = 1 << 20};
    reader_opts_t rd = {.size = 1 << 20, .wait_s = 20, .slack_ms = 2000};
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) return usage(), 2;
    int is_owner = !strcmp(argv[1], "owner");
    if (!is_owner && strcmp(argv[1], "reader")) return usage(), 2;
    int c, li;
    uint64_t v;
    while ((c = getopt_long(argc - 1, argv + 1, "+", longopts, &li)) != -1) {
        int bad = 0;
        switch (c) {
        case 'n': ow.name = optarg; break;
        case 'x': ow.stop = optarg; break;
        case 'C': ow.connector = optarg; break;
        case 'T': ow.text = optarg; break;
        case 'k': bad = parse_u64(optarg, 0, UINT64_MAX, &ow.seed); break;
        case 'H': bad = parse_u64(optarg, 1, 3600, &ow.hold_s); break;
        case 'w': bad = parse_u64(optarg, 1, 3600, &rd.wait_s); break;
        case 'l': bad = parse_u64(optarg, 0, 600000, &rd.slack_ms); break;
        case 's':
            bad = parse_u64(optarg, 1, (uint64_t)1 << 34, &v);
            ow.size = rd.size = v;
            break;
        default: return usage(), 2;
        }
        if (bad) {
            fprintf(stderr, "pxs_mh: bad value \"%s\" for --%s\n", optarg, longopts[li].name);
            return 2;
        }
    }
    int first = optind + 1; /* getopt saw argv + 1 */
    if (is_owner) {
        if (first != argc || !ow.name || !ow.stop) return usage(), 2;
        return owner_run(&ow);
    }
    if (first >= argc) return usage(), 2;
    return reader_run(&rd, argc - first, argv + first);
}
