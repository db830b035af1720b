/* What the MPI benchmarks (pxs_get_latency, pxs_get_bw, pxs_multi_get_bw,
 * pxs_put_rate, pxs_taskfarm) share beyond bench_common: their options
 * (--connector, --memory, --max-size), pxs inside the job (libpxs_mpi),
 * the owner's progress loop, bounded waits on other ranks, the MPI_Get and
 * raw UCP get baselines across ranks, and a line naming the MPI one-sided
 * component in use.
 *
 * Every wait on another rank is bounded (MPIB_TIMEOUT_MS); a rank that
 * fails prints why and calls MPI_Abort, so that no rank waits forever on
 * one that gave up.
 */
#ifndef PXS_PERF_BENCH_MPI_H
#define PXS_PERF_BENCH_MPI_H

#include <mpi.h>
#include <pxs/mpi.h>

#include "bench_common.h"

#define MPIB_TIMEOUT_MS 120000

/* Tags of the benchmarks' own messages (pxs_mpi_* calls use their own
 * communicator, so these cannot collide with them). */
enum { MPIB_TAG_PROXY = 101, MPIB_TAG_DONE = 102 };

typedef struct {
    bench_cfg_t cfg;
    const char *connector; /* "shm", "ucx" or "mpi" */
    int alloc;             /* --memory alloc: objects in pxs_alloc memory */
    size_t max_size;
} mpib_opts_t;

/* bench_parse_args plus --connector, --memory and --max-size, and the
 * program's own options (more, as bench_prog_t.extra_opt; may be NULL);
 * sizes above max_size are dropped. def_connector: when none is given.
 * @return -1 (message printed) on a bad option. */
int mpib_parse(int argc, char **argv, const bench_prog_t *prog, const char *def_connector,
               int (*more)(int argc, char **argv, int *i), mpib_opts_t *o);

/* This rank and the job's size; 0 when min_ranks <= size <= max_ranks
 * (max_ranks 0: no bound), else rank 0 says so, MPI_Finalize, 2 (the exit
 * status). */
int mpib_ranks(const char *prog, int min_ranks, int max_ranks, int *rank, int *size);

/* Print "<prog> rank R: <what>" and MPI_Abort the job. */
void __attribute__((noreturn, format(printf, 1, 2))) mpib_die(const char *fmt, ...);
/* As mpib_die, with a pxs status appended. */
void __attribute__((noreturn)) mpib_die_pxs(pxs_status_t st, const char *what);

/* pxs in the job: the context and store of the chosen connector. */
typedef struct {
    pxs_mpi_t *mpi;
    pxs_context_t *ctx;
    pxs_store_t *store; /* pxs_mpi_store() for "mpi", else opened here */
    int own_store;
    int rank, size;
} mpib_pxs_t;

/* Collective over MPI_COMM_WORLD; dies on failure. */
/* The three load averages of /proc/loadavg into buf ("" if unreadable). */
void mpib_read_load(char *buf, size_t cap);
void mpib_pxs_open(const mpib_opts_t *o, mpib_pxs_t *p);
void mpib_pxs_close(mpib_pxs_t *p);

/* Memory for objects: pxs_alloc (alloc) or page-aligned malloc, faulted
 * in; dies when out of memory. */
void *mpib_obj_alloc(mpib_pxs_t *p, int alloc, size_t size);
void mpib_obj_free(mpib_pxs_t *p, int alloc, void *buf);

/* Zero-copy put (never inline, so that small sizes measure a real read). */
void mpib_put(mpib_pxs_t *p, const void *buf, size_t len, pxs_proxy_t *proxy);

/* ------------------------------------------------------------------ */
/* bounded waits                                                        */

/* MPI_Iprobe until a message (source, tag) is there; dies after
 * timeout_ms. Between probes calls idle(arg) when given (an owner's
 * progress), else yields the CPU after a short spin. */
void mpib_wait_msg(int source, int tag, MPI_Comm comm, int timeout_ms, void (*idle)(void *),
                   void *arg, MPI_Status *st);
/* Wait for an MPI request the same way. */
void mpib_wait_req(MPI_Request *req, int timeout_ms, void (*idle)(void *), void *arg);
/* Work for the waits given no idle (those above, mpib_barrier,
 * mpib_recv_proxy) between their probes, before they yield the CPU. */
void mpib_set_wait_idle(void (*idle)(void *), void *arg);
/* MPI_Ibarrier, bounded. */
void mpib_barrier(MPI_Comm comm);

/* A proxy from source (pxs_mpi_recv_proxy once it is there). */
void mpib_recv_proxy(pxs_proxy_t *proxy, int source, int tag, MPI_Comm comm);

/* ------------------------------------------------------------------ */
/* the MPI_Get baseline                                                 */

/* One window, owned by rank owner of comm: MPI_Win_create over an ordinary
 * page-aligned buffer (alloc 0) or MPI_Win_allocate (alloc 1), max bytes
 * at the owner, none elsewhere. Every rank holds MPI_Win_lock_all from
 * open to close (passive target, as osu_get_* do). Collective. */
typedef struct {
    MPI_Win win;
    void *base;  /* the owner's bytes (NULL elsewhere) */
    void *own;   /* what to free (alloc 0) */
    int owner, alloc;
} mpib_win_t;

void mpib_win_open(mpib_win_t *w, int alloc, size_t max, MPI_Comm comm, int owner);
void mpib_win_close(mpib_win_t *w);
/* The owner after writing its bytes: make them visible to gets. */
void mpib_win_sync(mpib_win_t *w);

typedef struct {
    MPI_Win win;
    int target;
    void *dst;
    size_t size;
    int window; /* gets before the flush: 1 for latency */
} mpib_get_arg_t;

/* window MPI_Get of size bytes at displacement 0, then one MPI_Win_flush. */
int mpib_op_mpi_get(void *arg);

/* ------------------------------------------------------------------ */
/* the raw UCP get baseline (perf/baselines/ucp_get.c) across ranks     */

typedef struct mpib_ucp mpib_ucp_t;

/* Collective. The owner maps max bytes (UCP_MEM_MAP_ALLOCATE when alloc,
 * else an ordinary buffer) and broadcasts its worker address and rkey;
 * the others connect and unpack. am: the active-message baseline too
 * (perf/baselines/ucp_am_get.h), served from the same bytes. *u_p is NULL
 * when built without UCX (the baselines are then absent). Dies on failure. */
void mpib_ucp_open(mpib_ucp_t **u_p, int alloc, int am, size_t max, MPI_Comm comm, int owner);
void mpib_ucp_close(mpib_ucp_t *u, MPI_Comm comm);
/* The owner's bytes (to fill), NULL elsewhere or without UCX. */
void *mpib_ucp_owner_buf(mpib_ucp_t *u);
/* Progress the owner's worker (gets from ordinary memory need it). */
void mpib_ucp_progress(mpib_ucp_t *u);

typedef struct {
    mpib_ucp_t *u;
    void *dst;
    size_t size;
    int window;
} mpib_ucp_arg_t;

int mpib_op_ucp_get(void *arg); /* mpib_ucp_arg_t */
/* Whether mpib_ucp_open set the active-message baseline up. */
int mpib_ucp_has_am(const mpib_ucp_t *u);
/* window active-message gets (ucpb_am_get) of size bytes into dst. */
int mpib_op_ucp_am_get(void *arg); /* mpib_ucp_arg_t */

/* ------------------------------------------------------------------ */
/* the owner                                                            */

/* What the owner keeps progressing while others measure. */
typedef struct {
    mpib_pxs_t *p;
    mpib_ucp_t *u; /* may be NULL */
} mpib_owner_t;

void mpib_owner_idle(void *owner); /* mpib_owner_t: pxs_progress and raw UCP progress */

/* Owner: progress until `expect` MPIB_TAG_DONE messages (an int each, 0:
 * fine) arrived on comm; dies after timeout_ms. @return the first non-zero
 * code received, or 0. */
int mpib_serve(mpib_owner_t *o, MPI_Comm comm, int expect, int timeout_ms);
void mpib_send_done(int code, int owner, MPI_Comm comm);

/* ------------------------------------------------------------------ */
/* output                                                               */

/* The MPI one-sided components serving this job's windows, as far as
 * they can be told at run time (collective over comm). */
typedef struct {
    char line[512];   /* "# MPI one-sided: ..." */
    char create[16];  /* osc of MPI_Win_create / dynamic windows */
    char allocate[16]; /* osc of MPI_Win_allocate windows */
} mpib_osc_t;

void mpib_osc_describe(mpib_osc_t *osc, MPI_Comm comm);
/* cfg->transport: "mpirun -n N" and UCX_TLS when set. */
void mpib_transport(bench_cfg_t *cfg, int nranks);
/* "pxs-<connector>[-alloc]". */
void mpib_impl_name(char *buf, size_t cap, const mpib_opts_t *o);
/* Check dst against the size's pattern; dies naming what on a mismatch. */
void mpib_check(const void *dst, const void *want, size_t size, const char *what);

#endif
