/* pxs_lookup_latency: what a named-key lookup of libpxs_mpi's directory
 * costs, under mpirun (2 or more ranks), against the one-sided read it is
 * meant to be: "a lookup costs at most one round trip to the home rank".
 *
 * Rank 0 publishes NNAMES names per name set homed on rank 1 (names chosen
 * so that pxs_mpi_name_home is 1) and as many homed on itself, then times,
 * cycling through the names, in ABBA-interleaved repetitions (median
 * reported):
 *
 *   hit             pxs_mpi_name_lookup of a published name, for two name
 *                   sets: "spread" (pxs-lookup-<16 hex digits>) and
 *                   "sequential" (key-0, key-1, ... as a program numbers them);
 *   miss            pxs_mpi_name_lookup of a name never published (same home,
 *                   same set: for "sequential" the next key-<i> of that home);
 *   MPI_Get-bucket  what one directory read is, done by hand: MPI_Get of the
 *                   8-byte share header + MPI_Get of one bucket (4160 bytes:
 *                   mpi/mpi_dir.c's BUCKET_HDR + ENTRIES * ENTRY) + one
 *                   MPI_Win_flush, on an MPI_Win_allocate window (the
 *                   directory's flavour) inside one MPI_Win_lock_all
 *                   (MPI_MODE_NOCHECK) epoch: the round-trip baseline;
 *   MPI_Get 8 B     one 8-byte MPI_Get + MPI_Win_flush on the same window.
 *
 * for home = rank 1 (remote) and home = rank 0 (self). Ratio = baseline /
 * pxs. While rank 0 measures, every other rank makes no pxs call at all: it
 * sleeps 1 ms between MPI_Test polls of an MPI_Ibarrier, so a lookup that
 * needed the home rank's CPU would cost about a millisecond.
 *
 * The MPI one-sided calls rank 0 makes are counted through the PMPI
 * profiling interface (wrappers below), over an untimed pass of lookups:
 * MPI_Win_flush calls per lookup are its round trips. Last, 20000 spread
 * hits are timed one by one (p50, p99, max): a lookup that ever waited for
 * the sleeping home rank would show as a ~1 ms maximum.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_mpi.h"

/* mpi/mpi_dir.c's layout (a read is the share header word + one bucket). */
#define DIR_SHARE_HDR 64
#define DIR_BUCKET (64 + 4 * 1024)
#define DIR_HDR_READ 8
#define NNAMES 16
#define COUNT_LOOKUPS 1000

/* ------------------------------------------------------------------ */
/* PMPI counters: MPI calls libpxs_mpi (and this program) make           */

static struct {
    unsigned long gets, flushes, other;
} calls;

int MPI_Get(void *oa, int oc, MPI_Datatype od, int tr, MPI_Aint td, int tc, MPI_Datatype tt,
            MPI_Win w)
{
    calls.gets++;
    return PMPI_Get(oa, oc, od, tr, td, tc, tt, w);
}

int MPI_Rget(void *oa, int oc, MPI_Datatype od, int tr, MPI_Aint td, int tc, MPI_Datatype tt,
             MPI_Win w, MPI_Request *r)
{
    calls.gets++;
    return PMPI_Rget(oa, oc, od, tr, td, tc, tt, w, r);
}

int MPI_Win_flush(int rank, MPI_Win w)
{
    calls.flushes++;
    return PMPI_Win_flush(rank, w);
}

int MPI_Win_flush_all(MPI_Win w)
{
    calls.flushes++;
    return PMPI_Win_flush_all(w);
}

int MPI_Win_flush_local(int rank, MPI_Win w)
{
    calls.flushes++;
    return PMPI_Win_flush_local(rank, w);
}

int MPI_Put(const void *oa, int oc, MPI_Datatype od, int tr, MPI_Aint td, int tc,
            MPI_Datatype tt, MPI_Win w)
{
    calls.other++;
    return PMPI_Put(oa, oc, od, tr, td, tc, tt, w);
}

int MPI_Accumulate(const void *oa, int oc, MPI_Datatype od, int tr, MPI_Aint td, int tc,
                   MPI_Datatype tt, MPI_Op op, MPI_Win w)
{
    calls.other++;
    return PMPI_Accumulate(oa, oc, od, tr, td, tc, tt, op, w);
}

int MPI_Compare_and_swap(const void *oa, const void *ca, void *ra, MPI_Datatype dt, int tr,
                         MPI_Aint td, MPI_Win w)
{
    calls.other++;
    return PMPI_Compare_and_swap(oa, ca, ra, dt, tr, td, w);
}

int MPI_Fetch_and_op(const void *oa, void *ra, MPI_Datatype dt, int tr, MPI_Aint td, MPI_Op op,
                     MPI_Win w)
{
    calls.other++;
    return PMPI_Fetch_and_op(oa, ra, dt, tr, td, op, w);
}

int MPI_Win_lock(int type, int rank, int assert, MPI_Win w)
{
    calls.other++;
    return PMPI_Win_lock(type, rank, assert, w);
}

int MPI_Send(const void *b, int n, MPI_Datatype dt, int dest, int tag, MPI_Comm c)
{
    calls.other++;
    return PMPI_Send(b, n, dt, dest, tag, c);
}

int MPI_Isend(const void *b, int n, MPI_Datatype dt, int dest, int tag, MPI_Comm c,
              MPI_Request *r)
{
    calls.other++;
    return PMPI_Isend(b, n, dt, dest, tag, c, r);
}

/* ------------------------------------------------------------------ */

enum { H_REMOTE, H_SELF, H_N };
/* Name sets: "spread" names end in 16 hex digits of a mixed counter (they
 * scatter over the buckets as the hash allows); "sequential" names are
 * key-0, key-1, ... as a program would number them. */
enum { S_SPREAD, S_SEQ, S_N };
enum { L_HIT, L_MISS, L_N };
/* Timed per home: the lookups (set x hit/miss), then the two baselines. */
enum { K_LOOK = 0, K_BUCKET = S_N * L_N, K_GET8, K_N };

typedef struct {
    mpib_opts_t o;
    mpib_pxs_t p;
    MPI_Win win; /* the baseline: MPI_Win_allocate on every rank, like the directory */
    uint8_t *base;
    size_t win_bytes;
    mpib_osc_t osc;
    int home[H_N]; /* the home rank of each row */
    char names[H_N][S_N][L_N][NNAMES][48];
    bench_stat_t st[H_N][K_N];
    double per_lookup[H_N][S_N][L_N][3]; /* gets, flushes, other MPI calls */
    double tail[H_N][3];                 /* spread hits one at a time: p50, p99, max (ns) */
    char load0[64], load1[64];
} bench_t;

static const char *const set_name[S_N] = {"spread", "sequential"};

typedef struct {
    pxs_mpi_t *mpi;
    char (*names)[48];
    unsigned idx;
    pxs_status_t want, st;
    pxs_proxy_t proxy;
} look_arg_t;

static int op_lookup(void *arg)
{
    look_arg_t *a = arg;
    a->st = pxs_mpi_name_lookup(a->mpi, a->names[a->idx++ % NNAMES], &a->proxy);
    return a->st != a->want;
}

typedef struct {
    MPI_Win win;
    int target;
    unsigned idx;
    int bucket; /* 1: header + bucket, 0: 8 bytes */
    uint64_t hdr;
    uint8_t bk[DIR_BUCKET];
} get_arg_t;

static int op_get(void *arg)
{
    get_arg_t *g = arg;
    MPI_Aint disp = DIR_SHARE_HDR + (MPI_Aint)(g->idx++ % NNAMES) * DIR_BUCKET;
    int rc;
    if (g->bucket) {
        rc = MPI_Get(&g->hdr, DIR_HDR_READ, MPI_BYTE, g->target, 0, DIR_HDR_READ, MPI_BYTE,
                     g->win);
        if (rc == MPI_SUCCESS)
            rc = MPI_Get(g->bk, DIR_BUCKET, MPI_BYTE, g->target, disp, DIR_BUCKET, MPI_BYTE,
                         g->win);
    } else {
        rc = MPI_Get(&g->hdr, 8, MPI_BYTE, g->target, disp, 8, MPI_BYTE, g->win);
    }
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(g->target, g->win);
    return rc != MPI_SUCCESS;
}

static uint64_t mix64(uint64_t x) /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* NNAMES names of a set whose home is `home`, from candidate *next on;
 * hits and misses draw from the same sequence (misses after the hits). */
static void pick_names(bench_t *b, int set, int home, int *next, char (*out)[48])
{
    int n = 0;
    for (int i = *next; n < NNAMES; i++) {
        if (i > 1000000) mpib_die("no names homed on rank %d", home);
        if (set == S_SPREAD)
            snprintf(out[n], sizeof out[n], "pxs-lookup-%016llx",
                     (unsigned long long)mix64((uint64_t)i));
        else
            snprintf(out[n], sizeof out[n], "key-%d", i);
        if (pxs_mpi_name_home(b->p.mpi, out[n]) == home) n++;
        *next = i + 1;
    }
}

/* ------------------------------------------------------------------ */
/* rank 0                                                               */

static void count_pass(look_arg_t *a, double out[3])
{
    unsigned long g = calls.gets, f = calls.flushes, o = calls.other;
    for (int i = 0; i < COUNT_LOOKUPS; i++)
        if (op_lookup(a)) mpib_die_pxs(a->st, "pxs_mpi_name_lookup (counted pass)");
    out[0] = (double)(calls.gets - g) / COUNT_LOOKUPS;
    out[1] = (double)(calls.flushes - f) / COUNT_LOOKUPS;
    out[2] = (double)(calls.other - o) / COUNT_LOOKUPS;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

/* TAIL_LOOKUPS spread hits timed one by one: a lookup that had to wait
 * for the home rank (asleep 1 ms at a time) would show in the maximum. */
#define TAIL_LOOKUPS 20000
static void tail_pass(look_arg_t *a, double out[3])
{
    static double t[TAIL_LOOKUPS];
    for (int i = 0; i < TAIL_LOOKUPS; i++) {
        double t0 = bench_now_ns();
        if (op_lookup(a)) mpib_die_pxs(a->st, "pxs_mpi_name_lookup (tail pass)");
        t[i] = bench_now_ns() - t0;
    }
    qsort(t, TAIL_LOOKUPS, sizeof t[0], cmp_double);
    out[0] = t[TAIL_LOOKUPS / 2];
    out[1] = t[TAIL_LOOKUPS * 99 / 100];
    out[2] = t[TAIL_LOOKUPS - 1];
}

static void measure(bench_t *b)
{
    pxs_mpi_t *m = b->p.mpi;
    /* One small object; its proxy is what every name maps to. */
    size_t objlen = 64;
    uint8_t *obj = mpib_obj_alloc(&b->p, 0, objlen);
    bench_fill_pattern(obj, objlen, objlen);
    pxs_proxy_t proxy;
    mpib_put(&b->p, obj, objlen, &proxy);
    if (pxs_proxy_len(&proxy) > PXS_MPI_DIR_PROXY_MAX)
        mpib_die("proxy of %zu bytes does not fit the directory", pxs_proxy_len(&proxy));

    for (int h = 0; h < H_N; h++)
        for (int set = 0; set < S_N; set++) {
            int next = 0;
            for (int l = 0; l < L_N; l++)
                pick_names(b, set, b->home[h], &next, b->names[h][set][l]);
            for (int i = 0; i < NNAMES; i++) {
                pxs_status_t st = pxs_mpi_name_publish(m, b->names[h][set][L_HIT][i], &proxy);
                if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_name_publish");
            }
        }

    /* Check once, untimed: each hit returns the published proxy (and it
     * resolves to the object's bytes), each miss is PXS_ERR_NOT_FOUND, and
     * the baseline reads the bytes its owner wrote. */
    uint8_t *want = malloc(b->win_bytes), got[64];
    if (!want) mpib_die("out of memory");
    for (int h = 0; h < H_N; h++) {
        for (int set = 0; set < S_N; set++)
            for (int i = 0; i < NNAMES; i++) {
                pxs_proxy_t px;
                const char *hit = b->names[h][set][L_HIT][i], *miss = b->names[h][set][L_MISS][i];
                pxs_status_t st = pxs_mpi_name_lookup(m, hit, &px);
                if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_name_lookup (hit)");
                if (pxs_proxy_len(&px) != pxs_proxy_len(&proxy) ||
                    memcmp(px.bytes, proxy.bytes, pxs_proxy_len(&proxy)))
                    mpib_die("lookup of %s returned another proxy", hit);
                memset(got, 0, sizeof got);
                st = pxs_resolve(b->p.ctx, &px, got, objlen, NULL);
                if (st != PXS_OK) mpib_die_pxs(st, "pxs_resolve of a looked-up proxy");
                mpib_check(got, obj, objlen, "pxs_resolve of a looked-up proxy");
                st = pxs_mpi_name_lookup(m, miss, &px);
                if (st != PXS_ERR_NOT_FOUND)
                    mpib_die("lookup of unpublished %s: %s", miss, pxs_strerror(st));
            }
        bench_fill_pattern(want, b->win_bytes, b->win_bytes + (size_t)b->home[h]);
        get_arg_t *g = calloc(1, sizeof *g);
        if (!g) mpib_die("out of memory");
        *g = (get_arg_t){.win = b->win, .target = b->home[h], .bucket = 1};
        for (int i = 0; i < NNAMES; i++) {
            if (op_get(g)) mpib_die("MPI_Get of a bucket failed");
            MPI_Aint disp = DIR_SHARE_HDR + (MPI_Aint)i * DIR_BUCKET;
            mpib_check(&g->hdr, want, DIR_HDR_READ, "MPI_Get (header)");
            mpib_check(g->bk, want + disp, DIR_BUCKET, "MPI_Get (bucket)");
        }
        g->bucket = 0;
        g->idx = 0;
        if (op_get(g)) mpib_die("MPI_Get of 8 bytes failed");
        mpib_check(&g->hdr, want + DIR_SHARE_HDR, 8, "MPI_Get (8 B)");
        free(g);
    }
    free(want);

    /* MPI calls per lookup, untimed. */
    for (int h = 0; h < H_N; h++)
        for (int set = 0; set < S_N; set++)
            for (int l = 0; l < L_N; l++) {
                look_arg_t a = {.mpi = m, .names = b->names[h][set][l],
                                .want = l == L_HIT ? PXS_OK : PXS_ERR_NOT_FOUND};
                count_pass(&a, b->per_lookup[h][set][l]);
            }

    /* Timed, all interleaved ABBA. */
    static look_arg_t la[H_N][S_N * L_N];
    static get_arg_t ga[H_N][2];
    bench_timed_t ts[H_N * K_N];
    for (int h = 0; h < H_N; h++) {
        for (int set = 0; set < S_N; set++)
            for (int l = 0; l < L_N; l++) {
                int k = K_LOOK + set * L_N + l;
                la[h][k] = (look_arg_t){.mpi = m, .names = b->names[h][set][l],
                                        .want = l == L_HIT ? PXS_OK : PXS_ERR_NOT_FOUND};
                ts[h * K_N + k] = (bench_timed_t){.fn = op_lookup, .arg = &la[h][k]};
            }
        ga[h][0] = (get_arg_t){.win = b->win, .target = b->home[h], .bucket = 1};
        ga[h][1] = (get_arg_t){.win = b->win, .target = b->home[h], .bucket = 0};
        ts[h * K_N + K_BUCKET] = (bench_timed_t){.fn = op_get, .arg = &ga[h][0]};
        ts[h * K_N + K_GET8] = (bench_timed_t){.fn = op_get, .arg = &ga[h][1]};
    }
    bench_stat_t out[H_N * K_N];
    int bad = bench_measure(ts, H_N * K_N, &b->o.cfg, out);
    if (bad) {
        int h = (bad - 1) / K_N, k = (bad - 1) % K_N;
        if (k < K_BUCKET) mpib_die_pxs(la[h][k].st, "pxs_mpi_name_lookup (timed)");
        mpib_die("MPI_Get failed while timed");
    }
    for (int h = 0; h < H_N; h++)
        for (int k = 0; k < K_N; k++) b->st[h][k] = out[h * K_N + k];

    for (int h = 0; h < H_N; h++) {
        look_arg_t a = {.mpi = m, .names = b->names[h][S_SPREAD][L_HIT], .want = PXS_OK};
        tail_pass(&a, b->tail[h]);
    }

    for (int h = 0; h < H_N; h++)
        for (int set = 0; set < S_N; set++)
            for (int i = 0; i < NNAMES; i++) {
                pxs_status_t st = pxs_mpi_name_unpublish(m, b->names[h][set][L_HIT][i]);
                if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_name_unpublish");
            }
    pxs_status_t st = pxs_evict(b->p.store, &proxy);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_evict");
    mpib_obj_free(&b->p, 0, obj);
}

/* Every other rank: no pxs call until rank 0 is done; 1 ms naps between
 * polls, so that no help from this rank's CPU can hide in the numbers. */
static void bystander(void)
{
    MPI_Request r;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &r) != MPI_SUCCESS) mpib_die("MPI_Ibarrier failed");
    double deadline = bench_now_ns() + 600e9; /* the whole measurement */
    for (;;) {
        int flag = 0;
        if (MPI_Test(&r, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) mpib_die("MPI_Test failed");
        if (flag) return;
        if (bench_now_ns() > deadline) mpib_die("rank 0 did not finish within 600 s");
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* output                                                               */

static const char *home_name(int h) { return h == H_REMOTE ? "remote" : "self"; }

static void print_table(const void *arg)
{
    const bench_t *b = arg;
    const bench_cfg_t *c = &b->o.cfg;
    printf("# pxs_lookup_latency (pxs %s): pxs_mpi_name_lookup, %d ranks (%s); rank 0 looks "
           "up names homed on rank 1 (remote) or on itself (self)\n", pxs_version(), b->p.size,
           c->transport);
    printf("%s\n", b->osc.line);
    printf("# per home and name set, %d names published (proxies of the \"%s\" store) and %d "
           "never published (miss), each op cycling through them; sets: spread = "
           "pxs-lookup-<16 hex digits>, sequential = key-<i> (the next %d key-<i> of that home "
           "for the misses)\n", NNAMES, b->o.connector, NNAMES, NNAMES);
    printf("# while rank 0 works, ranks 1..%d make no pxs call: they sleep 1 ms between "
           "MPI_Test polls of an MPI_Ibarrier (a lookup needing the home rank's CPU would take "
           "up to ~1 ms: see the max below)\n", b->p.size - 1);
    printf("# baselines in the same run, on an MPI_Win_allocate window (the directory's "
           "flavour), lock_all(MPI_MODE_NOCHECK) once: MPI_Get-bucket = MPI_Get %d B (share "
           "header) + MPI_Get %d B (one bucket) + MPI_Win_flush, what mpi_dir.c's one read is; "
           "MPI_Get 8 B + MPI_Win_flush\n", DIR_HDR_READ, DIR_BUCKET);
    printf("# RTT = MPI_Win_flush calls per lookup (each one round trip), Gets = MPI_Get calls, "
           "other = any other one-sided or send call: counted through PMPI on rank 0 over %d "
           "lookups\n", COUNT_LOOKUPS);
    printf("# ratio: baseline time / pxs time; median of %d reps, spread min-max; load (1/5/15 "
           "min) at start %s, at end %s\n", c->reps, b->load0, b->load1);
    printf("%-10s%-12s%6s%11s%16s%6s%6s%11s%16s%6s%6s%16s%16s%10s%10s%10s\n", "# Home", "names",
           "Bytes", "Hit (us)", "spread", "RTT", "Gets", "Miss (us)", "spread", "RTT", "Gets",
           "Get-bucket (us)", "spread", "ratio hit", "ratio mis", "other");
    for (int h = 0; h < H_N; h++)
        for (int set = 0; set < S_N; set++) {
            const bench_stat_t *s = b->st[h];
            const bench_stat_t *hit = &s[K_LOOK + set * L_N + L_HIT];
            const bench_stat_t *miss = &s[K_LOOK + set * L_N + L_MISS];
            const double *ch = b->per_lookup[h][set][L_HIT], *cm = b->per_lookup[h][set][L_MISS];
            char sp[3][48], hn[32];
            bench_spread_us(sp[0], sizeof sp[0], *hit);
            bench_spread_us(sp[1], sizeof sp[1], *miss);
            bench_spread_us(sp[2], sizeof sp[2], s[K_BUCKET]);
            snprintf(hn, sizeof hn, "%s(%d)", home_name(h), b->home[h]);
            printf("%-10s%-12s%6d%11.2f%16s%6.2f%6.2f%11.2f%16s%6.2f%6.2f%16.2f%16s%10.3f%10.3f"
                   "%10.2f\n", hn, set_name[set], DIR_HDR_READ + DIR_BUCKET, hit->med / 1e3,
                   sp[0], ch[1], ch[0], miss->med / 1e3, sp[1], cm[1], cm[0],
                   s[K_BUCKET].med / 1e3, sp[2], s[K_BUCKET].med / hit->med,
                   s[K_BUCKET].med / miss->med, ch[2] + cm[2]);
        }
    for (int h = 0; h < H_N; h++)
        printf("# %s(%d): MPI_Get 8 B + flush %.2f us (ratio to a spread hit %.3f); %d spread "
               "hits timed one by one: p50 %.2f us, p99 %.2f us, max %.2f us\n", home_name(h),
               b->home[h], b->st[h][K_GET8].med / 1e3,
               b->st[h][K_GET8].med / b->st[h][K_LOOK + L_HIT].med, TAIL_LOOKUPS,
               b->tail[h][0] / 1e3, b->tail[h][1] / 1e3, b->tail[h][2] / 1e3);
    fflush(stdout);
}

static void emit_json(FILE *f, const void *arg)
{
    const bench_t *b = arg;
    for (int h = 0; h < H_N; h++) {
        const bench_stat_t *s = b->st[h];
        for (int set = 0; set < S_N; set++)
            for (int l = 0; l < L_N; l++) {
                const bench_stat_t *v = &s[K_LOOK + set * L_N + l];
                const double *cnt = b->per_lookup[h][set][l];
                char impl[64], extra[320];
                snprintf(impl, sizeof impl, "pxs-mpi-lookup-%s", l == L_HIT ? "hit" : "miss");
                snprintf(extra, sizeof extra,
                         "\"home\":\"%s\",\"home_rank\":%d,\"names\":\"%s\",\"ranks\":%d,"
                         "\"osc\":\"%s\",\"gets_per_lookup\":%.2f,\"flushes_per_lookup\":%.2f,"
                         "\"other_calls_per_lookup\":%.2f",
                         home_name(h), b->home[h], set_name[set], b->p.size, b->osc.allocate,
                         cnt[0], cnt[1], cnt[2]);
                for (int base = K_BUCKET; base <= K_GET8; base++) {
                    bench_record_t r = {"lookup_latency", impl,
                                        base == K_BUCKET ? "MPI_Get-alloc-bucket"
                                                         : "MPI_Get-alloc-8B",
                                        "us", DIR_HDR_READ + DIR_BUCKET, v->med / 1e3,
                                        v->min / 1e3, v->max / 1e3, 1, s[base].med / 1e3,
                                        s[base].min / 1e3, s[base].max / 1e3, extra};
                    bench_json_record(f, &b->o.cfg, &r);
                }
            }
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

int main(int argc, char **argv)
{
    static bench_t b;
    static const char tail[] =
        "  --connector shm|ucx|mpi  store of the published proxy (default mpi)\n"
        "Run under mpirun with 2 or more ranks (rank 0 looks up; home ranks 1 and 0).\n"
        "--sizes and --max-size are ignored (a lookup reads one directory bucket).\n";
    bench_prog_t prog = {.name = "pxs_lookup_latency", .max_size = (size_t)64 << 20,
                         .quick_rep_ms = 4, .usage_tail = tail};
    MPI_Init(&argc, &argv);
    if (mpib_parse(argc, argv, &prog, "mpi", NULL, &b.o)) {
        MPI_Finalize();
        return 2;
    }
    int size, rank;
    if (mpib_ranks(prog.name, 2, 0, &rank, &size)) return 2;
    mpib_read_load(b.load0, sizeof b.load0);
    mpib_transport(&b.o.cfg, size);
    mpib_pxs_open(&b.o, &b.p);
    b.home[H_REMOTE] = 1;
    b.home[H_SELF] = 0;

    /* The baseline window: like the directory's, a share on every rank. */
    b.win_bytes = DIR_SHARE_HDR + (size_t)NNAMES * DIR_BUCKET;
    if (MPI_Win_allocate((MPI_Aint)b.win_bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &b.base,
                         &b.win) != MPI_SUCCESS)
        mpib_die("MPI_Win_allocate failed");
    bench_fill_pattern(b.base, b.win_bytes, b.win_bytes + (size_t)rank);
    if (MPI_Win_lock_all(MPI_MODE_NOCHECK, b.win) != MPI_SUCCESS)
        mpib_die("MPI_Win_lock_all failed");
    MPI_Win_sync(b.win);
    mpib_osc_describe(&b.osc, MPI_COMM_WORLD);
    mpib_barrier(MPI_COMM_WORLD); /* every share written */

    if (rank == 0) {
        measure(&b);
        mpib_barrier(MPI_COMM_WORLD); /* releases the bystanders */
    } else {
        bystander();
    }
    mpib_read_load(b.load1, sizeof b.load1);
    int rc = rank == 0 ? bench_report(&b.o.cfg, print_table, emit_json, &b) : 0;
    mpib_barrier(MPI_COMM_WORLD);
    MPI_Win_unlock_all(b.win);
    MPI_Win_free(&b.win);
    mpib_pxs_close(&b.p);
    MPI_Finalize();
    return rc ? 1 : 0;
}
