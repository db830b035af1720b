/* What the pxs benchmarks (pxs_bench_shm, pxs_bench_ucx) share: options,
 * timing and statistics, the producer/consumer pipe, the forked producer,
 * the OSU-style table helpers and the JSON records of /work/shared/PERF.md.
 *
 * It lives here, once, so that every benchmark measures the same way (ABBA
 * repetitions, median of several, same calibration) and writes the same
 * record format; a fix to one is a fix to all. Messages go to stderr,
 * prefixed by the program name that bench_parse_args records.
 */
#ifndef PXS_PERF_BENCH_COMMON_H
#define PXS_PERF_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <pxs/pxs.h>

#define BENCH_MAX_SIZES 32
#define BENCH_MAX_REPS 101
#define BENCH_MAX_ITERS (1u << 24)
#define BENCH_PIPE_TIMEOUT_MS 120000 /* a wedged peer must not hang a run */

/* ------------------------------------------------------------------ */
/* configuration                                                        */

/* What differs between the programs' command lines. */
typedef struct {
    const char *name;       /* "pxs_bench_shm": prefixes every message */
    size_t max_size;        /* the largest size --sizes accepts */
    int quick_rep_ms;       /* --rep-ms under --quick */
    const char *usage_tail; /* more usage lines (each ending in \n), or NULL */
    /* The program's own options, or NULL: called at an option
     * bench_parse_args does not know, argv[*i]; @return 1 when taken (*i
     * moved past its argument), 0 when unknown, -1 when malformed (message
     * printed). */
    int (*extra_opt)(int argc, char **argv, int *i);
} bench_prog_t;

typedef struct {
    size_t sizes[BENCH_MAX_SIZES];
    int nsizes;
    int reps;
    double rep_ns;         /* target duration of one repetition */
    const char *json_path; /* NULL: no JSON */
    int quick;
    int bind;              /* --bind: consumer and producer on one CPU each */
    int bind_cpu[2];       /* --bind: the consumer's CPU, the producer's */
    char transport[128];   /* the records' "transport"; the program sets it */
} bench_cfg_t;

/* --quick, --json FILE, --reps N, --rep-ms MS, --sizes LIST, --bind, --help.
 * Exits 0 after --help; @return -1 (message printed) on a bad option. */
int bench_parse_args(int argc, char **argv, const bench_prog_t *prog, bench_cfg_t *c);

/* "<name>: <what>: <pxs status>" on stderr; @return -1. */
int bench_pxs_fail(pxs_status_t st, const char *what);

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

double bench_now_ns(void);

/* Deterministic bytes that differ from one size to the next, so a stale
 * buffer of an earlier size can never pass a check. */
void bench_fill_pattern(uint8_t *p, size_t n, size_t size);

/* Page-aligned private memory, faulted in now so that no timed loop pays
 * for first touch; free() it. */
void *bench_alloc_faulted(size_t n);

/* The consumer's buffers of one size: dst to read into, src holding the
 * expected bytes (and the memcpy baseline's source). Both are set, NULL
 * where they failed, so that the caller frees them either way.
 * @return -1 (message printed) when out of memory. */
int bench_point_buffers(size_t size, uint8_t **dst, uint8_t **src);

/* ------------------------------------------------------------------ */
/* timing                                                               */

typedef int (*bench_op_fn)(void *arg); /* non-zero: failed */

typedef struct {
    double med, min, max; /* ns per operation */
} bench_stat_t;

/* One thing to time: an operation and its argument, an optional hook run
 * with 1 before and 0 after each batch, outside the timed region (what a
 * peer must do meanwhile), the inner-loop count chosen by calibration,
 * and one sample (ns per op) per repetition. */
typedef struct {
    bench_op_fn fn;
    void *arg;
    void (*around)(int on);
    uint64_t iters;
    double samples[BENCH_MAX_REPS];
} bench_timed_t;

/* One untimed call of t's operation, hook included (checks, warm-up). */
int bench_run_once(const bench_timed_t *t);

bench_stat_t bench_stats_of(const double *samples, int reps);

/* Time n operations, interleaved repetition by repetition, in forward
 * order on even repetitions and backward on odd ones (ABBA), so that what
 * one leaves in the caches, or a drift in the machine's speed, favours
 * none of them. out[k]: ns per operation of ts[k].
 * @return 0, or 1 + the index of the operation that failed. */
int bench_measure(bench_timed_t *ts, int n, const bench_cfg_t *cfg, bench_stat_t *out);

/* ------------------------------------------------------------------ */
/* operations both programs time                                        */

/* pxs_resolve of proxy into dst (window: how many in flight, for the
 * programs' windowed variants). */
typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *proxy;
    void *dst;
    size_t size;
    pxs_status_t st; /* last failure, for the message */
    int window;
} bench_resolve_arg_t;

int bench_op_resolve(void *arg); /* bench_resolve_arg_t */
/* window resolves of the same proxy into the same dst in flight
 * (pxs_resolve_nb), then a wait for each: osu_get_bw's shape.
 * window <= BENCH_WINDOW_MAX. */
#define BENCH_WINDOW_MAX 64
int bench_op_resolve_window(void *arg); /* bench_resolve_arg_t */

/* pxs_handle_read of a handle opened once: the whole object, window times
 * (reads are blocking; a window is W of them back to back). */
typedef struct {
    pxs_handle_t *h;
    void *dst;
    size_t size;
    pxs_status_t st;
    int window;
} bench_read_arg_t;
int bench_op_read(void *arg); /* bench_read_arg_t */

typedef struct {
    void *dst;
    const void *src;
    size_t size;
} bench_copy_arg_t;

int bench_op_memcpy(void *arg); /* bench_copy_arg_t: the memcpy baseline */

/* ------------------------------------------------------------------ */
/* pipe messages between producer and consumer                          */

/* The consumer's end of the pipes to the producer. */
typedef struct {
    pid_t child; /* 0 once reaped */
    int rfd, wfd;
} bench_peer_t;

/* Each message is a bench_msg_hdr_t and len bytes. The programs choose
 * their own kinds, all but this one, which carries the producer's error
 * text. */
#define BENCH_MSG_ERROR 3u

/* What the consumer answers after each size. */
enum { BENCH_CMD_NEXT = 'n', BENCH_CMD_QUIT = 'q' };

int bench_write_full(int fd, const void *buf, size_t len);
/* Exactly len bytes, or -1 on EOF, error or BENCH_PIPE_TIMEOUT_MS of
 * silence. */
int bench_read_full(int fd, void *buf, size_t len);
int bench_send_msg(int fd, uint32_t kind, const void *payload, uint32_t len);
/* One message of kind want into buf (cap bytes); an error message from
 * the producer is printed here and turned into -1. */
int bench_recv_msg(int fd, uint32_t want, uint8_t *buf, size_t cap, uint32_t *len_p);

/* Producer: wait for the consumer's word after a size; *quit unless it
 * said next. @return -1 when the consumer is gone. */
int bench_wait_cmd(int fd, int *quit);
/* Consumer: tell the producer to go on, or to quit (rc != 0 or last).
 * @return rc, or -1 when the producer cannot be reached. */
int bench_send_cmd(int fd, int rc, int last);

/* Consumer: for each of cfg's sizes in turn (the order the producer
 * offers them in), receive the producer's offer (a message of kind, at
 * most cap bytes), hand it to fn(c, size, msg, len), then tell the
 * producer to go on, or to quit after the last size or a failure.
 * @return 0, or -1 at the first failure. */
int bench_consume_sizes(const bench_cfg_t *cfg, const bench_peer_t *peer, uint32_t kind,
                        size_t cap,
                        int (*fn)(void *c, size_t size, const uint8_t *msg, uint32_t len),
                        void *c);

/* ------------------------------------------------------------------ */
/* the producer (the forked child)                                      */

/* The part of a producer the shared helpers use. */
typedef struct {
    pxs_context_t *ctx;
    pxs_store_t *store;
    int rfd, wfd;
} bench_producer_t;

/* Send "<fmt...>: <pxs status>" to the consumer as BENCH_MSG_ERROR (the
 * child's stderr may be lost); @return -1. */
int __attribute__((format(printf, 3, 4)))
bench_prod_fail(bench_producer_t *p, pxs_status_t st, const char *fmt, ...);

/* pxs_put of buf with flags, encoded into enc (cap bytes). */
int bench_put_one(bench_producer_t *p, const void *buf, size_t len, uint32_t flags,
                  pxs_proxy_t *out, uint32_t *enc_len, uint8_t *enc, size_t cap);

pxs_status_t bench_store_open(pxs_context_t *ctx, const char *connector, const char *name,
                              pxs_store_t **store_p);

/* The consumer's own store for the put-rate tests ("bench-put"), apart
 * from the producer's. @return -1 (message printed) when it cannot open. */
int bench_put_store(pxs_context_t *ctx, const char *connector, pxs_store_t **store_p);

/* Fork a producer running fn(arg, rfd, wfd), whose result is its exit
 * status; it dies with the consumer. SIGPIPE is ignored from here on, so
 * that a dead producer shows up as EPIPE, not a killed consumer. Under
 * cfg->bind each process is bound to its CPU (before either starts a
 * thread, so that all of its threads stay there).
 * @return -1 (message printed) when the pipes, the fork or the binding fail. */
int bench_fork_producer(const bench_cfg_t *cfg, int (*fn)(void *arg, int rfd, int wfd), void *arg,
                        bench_peer_t *peer);

/* Reap the producer, killing it first when rc != 0 (it may be blocked).
 * @return rc, or -1 when rc was 0 but the producer did not exit 0. */
int bench_reap_peer(bench_peer_t *peer, int rc);

/* Kill and reap a producer not reaped yet, close the pipes. */
void bench_close_peer(bench_peer_t *peer);

/* ------------------------------------------------------------------ */
/* output                                                               */

double bench_mbps(size_t size, double ns);
/* The spread min-max of a stat as printed in the tables. */
void bench_spread_us(char *buf, size_t cap, bench_stat_t s);
void bench_spread_bw(char *buf, size_t cap, size_t size, bench_stat_t s);
void bench_spread_rate(char *buf, size_t cap, bench_stat_t s); /* ops/s */

/* One JSON record (PERF.md). The ratio is value/base, or base/value for
 * the times ("us", "s"). */
typedef struct {
    const char *bench, *impl, *baseline, *metric;
    size_t size;
    double value, vmin, vmax;
    int has_base;
    double base, bmin, bmax;
    const char *extra; /* more "key":value pairs, or NULL */
} bench_record_t;

void bench_json_record(FILE *f, const bench_cfg_t *cfg, const bench_record_t *r);

/* A get record of impl (v) against baseline (b), both in ns per get:
 * bench "get_latency" in us, else (get_bw) in MB/s. */
void bench_json_get(FILE *f, const bench_cfg_t *cfg, const char *bench, const char *impl,
                    const char *baseline, size_t size, bench_stat_t v, bench_stat_t b,
                    const char *extra);

/* A put_rate record with no baseline: metric per second from ns per op. */
void bench_json_rate(FILE *f, const bench_cfg_t *cfg, const char *impl, const char *metric,
                     size_t size, bench_stat_t ns, const char *extra);

/* The end of a run: the tables on stdout (print(arg)), flushed, then, with
 * --json, the records (emit(f, arg)) in cfg->json_path.
 * @return -1 (message printed) when the JSON cannot be written. */
int bench_report(const bench_cfg_t *cfg, void (*print)(const void *arg),
                 void (*emit)(FILE *f, const void *arg), const void *arg);

#endif
