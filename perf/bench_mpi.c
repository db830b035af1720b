/* The pieces the MPI benchmarks share: see bench_mpi.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_mpi.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef PXS_HAVE_UCX
#include "baselines/ucp_am_get.h"
#endif

static const char *prog_name = "pxs_mpi_bench";

/* ------------------------------------------------------------------ */
/* options                                                              */

static mpib_opts_t *opts_p; /* what the option hook fills */
static int (*more_opt)(int argc, char **argv, int *i);

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s) return -1;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B') end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
    if (*end || v == 0) return -1;
    *out = (size_t)v;
    return 0;
}

static int extra_opt(int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    int known = !strcmp(a, "--connector") || !strcmp(a, "--memory") || !strcmp(a, "--max-size");
    if (!known) return more_opt ? more_opt(argc, argv, i) : 0; /* flags too */
    if (*i + 1 >= argc) return 0;
    const char *v = argv[*i + 1];
    if (!strcmp(a, "--connector")) {
        if (strcmp(v, "shm") && strcmp(v, "ucx") && strcmp(v, "mpi")) {
            fprintf(stderr, "%s: --connector wants shm, ucx or mpi\n", prog_name);
            return -1;
        }
        opts_p->connector = v;
    } else if (!strcmp(a, "--memory")) {
        if (strcmp(v, "user") && strcmp(v, "alloc")) {
            fprintf(stderr, "%s: --memory wants user or alloc\n", prog_name);
            return -1;
        }
        opts_p->alloc = !strcmp(v, "alloc");
    } else if (parse_size(v, &opts_p->max_size)) { /* --max-size */
        fprintf(stderr, "%s: --max-size wants a size (e.g. 4M)\n", prog_name);
        return -1;
    }
    *i += 1;
    return 1;
}

int mpib_parse(int argc, char **argv, const bench_prog_t *prog, const char *def_connector,
               int (*more)(int argc, char **argv, int *i), mpib_opts_t *o)
{
    more_opt = more;
    bench_prog_t p = *prog;
    p.extra_opt = extra_opt;
    prog_name = prog->name;
    memset(o, 0, sizeof *o);
    o->connector = def_connector;
    o->max_size = (size_t)64 << 20;
    opts_p = o;
    if (bench_parse_args(argc, argv, &p, &o->cfg)) return -1;
    int n = 0;
    for (int i = 0; i < o->cfg.nsizes; i++)
        if (o->cfg.sizes[i] <= o->max_size) o->cfg.sizes[n++] = o->cfg.sizes[i];
    o->cfg.nsizes = n;
    if (!n) {
        fprintf(stderr, "%s: no size left under --max-size\n", prog_name);
        return -1;
    }
    o->max_size = o->cfg.sizes[n - 1];
    return 0;
}

/* ------------------------------------------------------------------ */
/* failing                                                              */

static int my_rank(void)
{
    int r = -1, init = 0;
    MPI_Initialized(&init);
    if (init) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

void mpib_die(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s rank %d: %s\n", prog_name, my_rank(), msg);
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); /* not reached */
}

void mpib_die_pxs(pxs_status_t st, const char *what)
{
    mpib_die("%s: %s", what, pxs_strerror(st));
}

/* ------------------------------------------------------------------ */
/* pxs in the job                                                       */

void mpib_pxs_open(const mpib_opts_t *o, mpib_pxs_t *p)
{
    memset(p, 0, sizeof *p);
    pxs_mpi_params_t mp = {.field_mask = PXS_MPI_PARAM_CONNECTOR, .connector = o->connector};
    pxs_status_t st = pxs_mpi_init(MPI_COMM_WORLD, &mp, &p->mpi);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_init");
    p->ctx = pxs_mpi_context(p->mpi);
    p->rank = pxs_mpi_rank(p->mpi);
    p->size = pxs_mpi_size(p->mpi);
    if (!strcmp(o->connector, "mpi")) {
        p->store = pxs_mpi_store(p->mpi);
        if (!p->store) mpib_die("pxs_mpi_store: no mpi store");
    } else {
        st = bench_store_open(p->ctx, o->connector, "bench", &p->store);
        if (st != PXS_OK) mpib_die("pxs_store_open(%s): %s", o->connector, pxs_strerror(st));
        p->own_store = 1;
    }
}

void mpib_pxs_close(mpib_pxs_t *p)
{
    if (p->own_store) pxs_store_close(p->store);
    p->store = NULL;
    pxs_status_t st = pxs_mpi_finalize(p->mpi, MPIB_TIMEOUT_MS);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_finalize");
    p->mpi = NULL;
}

void *mpib_obj_alloc(mpib_pxs_t *p, int alloc, size_t size)
{
    void *buf = NULL;
    if (alloc) {
        pxs_status_t st = pxs_alloc(p->ctx, size, &buf);
        if (st != PXS_OK) mpib_die("pxs_alloc(%zu): %s", size, pxs_strerror(st));
        memset(buf, 0, size); /* fault it in: no timed loop pays for it */
    } else {
        buf = bench_alloc_faulted(size);
        if (!buf) mpib_die("out of memory (%zu bytes)", size);
    }
    return buf;
}

void mpib_obj_free(mpib_pxs_t *p, int alloc, void *buf)
{
    if (alloc) pxs_free(p->ctx, buf);
    else free(buf);
}

void mpib_put(mpib_pxs_t *p, const void *buf, size_t len, pxs_proxy_t *proxy)
{
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    pxs_status_t st = pxs_put(p->store, buf, len, &pp, proxy);
    if (st != PXS_OK) mpib_die("pxs_put(%zu bytes): %s", len, pxs_strerror(st));
}

/* ------------------------------------------------------------------ */
/* bounded waits                                                        */

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void (*wait_idle)(void *);
static void *wait_idle_arg;

void mpib_set_wait_idle(void (*idle)(void *), void *arg)
{
    wait_idle = idle;
    wait_idle_arg = arg;
}

/* Between polls: the caller's idle work, else the rank's (mpib_set_wait_idle),
 * a short spin and then naps, so that a waiting rank leaves the CPU to
 * working ones on a small node. */
static void idle_once(unsigned spins, void (*idle)(void *), void *arg)
{
    if (idle) {
        idle(arg);
        return;
    }
    if (wait_idle) wait_idle(wait_idle_arg);
    if (spins > 256) nap_us(spins > 4096 ? 50 : 5);
}

void mpib_wait_msg(int source, int tag, MPI_Comm comm, int timeout_ms, void (*idle)(void *),
                   void *arg, MPI_Status *st)
{
    double deadline = bench_now_ns() + timeout_ms * 1e6;
    for (unsigned spins = 0;; spins++) {
        int flag = 0;
        if (MPI_Iprobe(source, tag, comm, &flag, st) != MPI_SUCCESS) mpib_die("MPI_Iprobe failed");
        if (flag) return;
        idle_once(spins, idle, arg);
        if (!(spins & 63) && bench_now_ns() > deadline)
            mpib_die("no message (source %d, tag %d) within %d ms", source, tag, timeout_ms);
    }
}

void mpib_wait_req(MPI_Request *req, int timeout_ms, void (*idle)(void *), void *arg)
{
    double deadline = bench_now_ns() + timeout_ms * 1e6;
    for (unsigned spins = 0;; spins++) {
        int flag = 0;
        if (MPI_Test(req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) mpib_die("MPI_Test failed");
        if (flag) return;
        idle_once(spins, idle, arg);
        if (!(spins & 63) && bench_now_ns() > deadline)
            mpib_die("an MPI request did not complete within %d ms", timeout_ms);
    }
}

void mpib_barrier(MPI_Comm comm)
{
    MPI_Request r;
    if (MPI_Ibarrier(comm, &r) != MPI_SUCCESS) mpib_die("MPI_Ibarrier failed");
    mpib_wait_req(&r, MPIB_TIMEOUT_MS, NULL, NULL);
}

void mpib_recv_proxy(pxs_proxy_t *proxy, int source, int tag, MPI_Comm comm)
{
    MPI_Status ms;
    mpib_wait_msg(source, tag, comm, MPIB_TIMEOUT_MS, NULL, NULL, &ms);
    pxs_status_t st =
        pxs_mpi_recv_proxy(proxy, ms.MPI_SOURCE, tag, comm, MPIB_TIMEOUT_MS, MPI_STATUS_IGNORE);
    if (st != PXS_OK) mpib_die_pxs(st, "pxs_mpi_recv_proxy");
}

/* ------------------------------------------------------------------ */
/* the MPI_Get baseline                                                 */

void mpib_win_open(mpib_win_t *w, int alloc, size_t max, MPI_Comm comm, int owner)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    memset(w, 0, sizeof *w);
    w->owner = owner;
    w->alloc = alloc;
    MPI_Aint len = rank == owner ? (MPI_Aint)max : 0;
    int rc;
    if (alloc) {
        void *base = NULL;
        rc = MPI_Win_allocate(len, 1, MPI_INFO_NULL, comm, &base, &w->win);
        if (rank == owner) w->base = base;
    } else {
        if (rank == owner) {
            w->own = bench_alloc_faulted(max);
            if (!w->own) mpib_die("out of memory for the MPI_Win_create buffer");
            w->base = w->own;
        }
        rc = MPI_Win_create(w->base, len, 1, MPI_INFO_NULL, comm, &w->win);
    }
    if (rc != MPI_SUCCESS) mpib_die("MPI_Win_%s failed", alloc ? "allocate" : "create");
    if (w->base) memset(w->base, 0, max);
    if (MPI_Win_lock_all(0, w->win) != MPI_SUCCESS) mpib_die("MPI_Win_lock_all failed");
}

void mpib_win_close(mpib_win_t *w)
{
    MPI_Win_unlock_all(w->win);
    MPI_Win_free(&w->win);
    free(w->own);
    memset(w, 0, sizeof *w);
}

void mpib_win_sync(mpib_win_t *w) { MPI_Win_sync(w->win); }

int mpib_op_mpi_get(void *arg)
{
    mpib_get_arg_t *g = arg;
    for (int i = 0; i < g->window; i++)
        if (MPI_Get(g->dst, (int)g->size, MPI_BYTE, g->target, 0, (int)g->size, MPI_BYTE,
                    g->win) != MPI_SUCCESS)
            return -1;
    return MPI_Win_flush(g->target, g->win) != MPI_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* the raw UCP get baseline                                             */

#ifdef PXS_HAVE_UCX
#define UCP_GET_TIMEOUT_MS 30000
#define BLOB_MAX 4096

struct mpib_ucp {
    ucpb_t *u;
    int owner;
    ucpb_region_t reg; /* owner */
    void *own;         /* owner, alloc 0: the mapped buffer */
    ucp_ep_h ep;       /* others */
    ucp_rkey_h rkey;
    uint64_t raddr;
    ucpb_am_t *am; /* the active-message baseline, when asked for */
};

/* What the owner broadcasts: address, rkey, their lengths. */
typedef struct {
    uint64_t raddr;
    uint32_t addr_len, rkey_len;
    uint8_t blob[BLOB_MAX];
} ucp_hello_t;

void mpib_ucp_open(mpib_ucp_t **u_p, int alloc, int am, size_t max, MPI_Comm comm, int owner)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    mpib_ucp_t *m = calloc(1, sizeof *m);
    ucp_hello_t *h = calloc(1, sizeof *h);
    if (!m || !h) mpib_die("out of memory");
    m->owner = rank == owner;
    if ((am ? ucpb_init_am(&m->u) : ucpb_init(0, &m->u)) != UCS_OK)
        mpib_die("raw UCP init failed");
    if (m->owner) {
        if (!alloc) {
            m->own = bench_alloc_faulted(max);
            if (!m->own) mpib_die("out of memory for the raw UCP buffer");
        }
        if (ucpb_map(m->u, m->own, max, &m->reg) != UCS_OK) mpib_die("raw ucp_mem_map failed");
        memset(m->reg.addr, 0, max);
        const void *addr;
        size_t addr_len;
        ucpb_address(m->u, &addr, &addr_len);
        if (addr_len + m->reg.rkey_len > BLOB_MAX) mpib_die("UCP address and rkey too long");
        h->raddr = (uint64_t)(uintptr_t)m->reg.addr;
        h->addr_len = (uint32_t)addr_len;
        h->rkey_len = (uint32_t)m->reg.rkey_len;
        memcpy(h->blob, addr, addr_len);
        memcpy(h->blob + addr_len, m->reg.rkey, m->reg.rkey_len);
    }
    MPI_Request r;
    MPI_Ibcast(h, (int)sizeof *h, MPI_BYTE, owner, comm, &r);
    mpib_wait_req(&r, MPIB_TIMEOUT_MS, NULL, NULL);
    if (!m->owner) {
        if (ucpb_connect(m->u, h->blob, &m->ep) != UCS_OK) mpib_die("raw ucp_ep_create failed");
        ucs_status_t us = ucp_ep_rkey_unpack(m->ep, h->blob + h->addr_len, &m->rkey);
        if (us != UCS_OK) mpib_die("ucp_ep_rkey_unpack: %s", ucs_status_string(us));
        m->raddr = h->raddr;
    }
    free(h);
    if (am && ucpb_am_open(m->u, m->owner ? &m->reg : NULL, &m->am) != UCS_OK)
        mpib_die("raw UCP active-message handlers failed");
    *u_p = m;
}

void mpib_ucp_close(mpib_ucp_t *m, MPI_Comm comm)
{
    if (!m) return;
    if (!m->owner) {
        ucpb_am_close(m->am);
        m->am = NULL;
        ucp_rkey_destroy(m->rkey);
        ucpb_disconnect(m->u, m->ep);
    }
    /* The owner must outlive every endpoint to it (a forced close does not
     * wait for it, but gets in flight would): wait for all. */
    mpib_barrier(comm);
    ucpb_am_close(m->am);
    if (m->owner) ucpb_unmap(m->u, &m->reg);
    ucpb_fini(m->u);
    free(m->own);
    free(m);
}

void *mpib_ucp_owner_buf(mpib_ucp_t *m) { return m && m->owner ? m->reg.addr : NULL; }

void mpib_ucp_progress(mpib_ucp_t *m)
{
    /* Drained, as pxs_progress drains its worker: a reply streaming out
     * through a small socket buffer needs a push per poll. */
    if (m)
        while (ucp_worker_progress(ucpb_worker(m->u))) {
        }
}

int mpib_op_ucp_get(void *arg)
{
    mpib_ucp_arg_t *a = arg;
    mpib_ucp_t *m = a->u;
    ucs_status_t st = a->window > 1
                          ? ucpb_get_window(m->u, m->ep, a->dst, a->size, m->raddr, m->rkey,
                                            a->window, UCP_GET_TIMEOUT_MS)
                          : ucpb_get(m->u, m->ep, a->dst, a->size, m->raddr, m->rkey,
                                     UCP_GET_TIMEOUT_MS);
    return st != UCS_OK;
}

int mpib_ucp_has_am(const mpib_ucp_t *m) { return m && m->am; }

int mpib_op_ucp_am_get(void *arg)
{
    mpib_ucp_arg_t *a = arg;
    return ucpb_am_get(a->u->am, a->u->ep, a->dst, a->size, a->window, UCP_GET_TIMEOUT_MS) !=
           UCS_OK;
}
#else
void mpib_ucp_open(mpib_ucp_t **u_p, int alloc, int am, size_t max, MPI_Comm comm, int owner)
{
    (void)alloc, (void)am, (void)max, (void)comm, (void)owner;
    *u_p = NULL;
}
void mpib_ucp_close(mpib_ucp_t *u, MPI_Comm comm) { (void)u, (void)comm; }
void *mpib_ucp_owner_buf(mpib_ucp_t *u) { (void)u; return NULL; }
void mpib_ucp_progress(mpib_ucp_t *u) { (void)u; }
int mpib_op_ucp_get(void *arg) { (void)arg; return -1; }
int mpib_ucp_has_am(const mpib_ucp_t *m) { (void)m; return 0; }
int mpib_op_ucp_am_get(void *arg) { (void)arg; return -1; }
#endif

/* ------------------------------------------------------------------ */
/* the owner                                                            */

void mpib_owner_idle(void *arg)
{
    mpib_owner_t *o = arg;
    pxs_progress(o->p->ctx);
    mpib_ucp_progress(o->u);
    /* Leave the CPU to a measuring rank that wants it (more ranks than
     * cores); costs well under a microsecond when nobody does. */
    sched_yield();
}

int mpib_serve(mpib_owner_t *o, MPI_Comm comm, int expect, int timeout_ms)
{
    int first = 0;
    for (int got = 0; got < expect; got++) {
        MPI_Status ms;
        int code = 0;
        mpib_wait_msg(MPI_ANY_SOURCE, MPIB_TAG_DONE, comm, timeout_ms, mpib_owner_idle, o, &ms);
        MPI_Recv(&code, 1, MPI_INT, ms.MPI_SOURCE, MPIB_TAG_DONE, comm, MPI_STATUS_IGNORE);
        if (code && !first) first = code;
    }
    return first;
}

void mpib_send_done(int code, int owner, MPI_Comm comm)
{
    /* One int: eager, so this returns at once. */
    MPI_Send(&code, 1, MPI_INT, owner, MPIB_TAG_DONE, comm);
}

/* ------------------------------------------------------------------ */
/* output                                                               */

/* An MCA integer parameter through MPI_T, or -1. */
static long mca_int(const char *name)
{
    int idx, count, provided;
    long val = -1;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return -1;
    if (MPI_T_cvar_get_index(name, &idx) == MPI_SUCCESS) {
        char nm[128], desc[8];
        int nlen = sizeof nm, dlen = sizeof desc, verb, bind, scope;
        MPI_Datatype dt;
        MPI_T_enum en;
        MPI_T_cvar_handle h;
        if (MPI_T_cvar_get_info(idx, nm, &nlen, &verb, &dt, &en, desc, &dlen, &bind, &scope) ==
                MPI_SUCCESS &&
            (dt == MPI_INT || dt == MPI_UNSIGNED) &&
            MPI_T_cvar_handle_alloc(idx, NULL, &h, &count) == MPI_SUCCESS) {
            int v = 0;
            if (count == 1 && MPI_T_cvar_read(h, &v) == MPI_SUCCESS) val = v;
            MPI_T_cvar_handle_free(&h);
        }
    }
    MPI_T_finalize();
    return val;
}

/* Which mca_osc_*.so this process has mapped: the components that stayed
 * loaded after MPI_Init (those that cannot run here are unloaded). */
static void osc_loaded(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    buf[0] = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "mca_osc_");
        if (!p || !strstr(line, " r-xp ")) continue;
        p += strlen("mca_osc_");
        char name[32];
        size_t n = strcspn(p, ".\n");
        if (n >= sizeof name) continue;
        memcpy(name, p, n);
        name[n] = 0;
        if (!strstr(buf, name) && strlen(buf) + n + 2 < cap) {
            if (buf[0]) strcat(buf, " ");
            strcat(buf, name);
        }
    }
    fclose(f);
}

void mpib_osc_describe(mpib_osc_t *osc, MPI_Comm comm)
{
    char loaded[256], ver[MPI_MAX_LIBRARY_VERSION_STRING];
    int vlen = 0, size, local;
    MPI_Get_library_version(ver, &vlen);
    ver[strcspn(ver, ",\n")] = 0;
    osc_loaded(loaded, sizeof loaded);
    MPI_Comm_size(comm, &size);
    MPI_Comm node;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    const char *env = getenv("OMPI_MCA_osc");
    int has_rdma = strstr(loaded, "rdma") != NULL, has_sm = strstr(loaded, "sm") != NULL;
    int has_ucx = strstr(loaded, "ucx") != NULL, has_pt2pt = strstr(loaded, "pt2pt") != NULL;
    /* Open MPI 4.1's selection: the highest priority among the components
     * that accept a window; osc sm (fixed priority 100) takes only
     * allocate/shared windows of one node, osc rdma (osc_rdma_priority,
     * default 101) any flavour, osc ucx (osc_ucx_priority) any. */
    long prio_rdma = has_rdma ? mca_int("osc_rdma_priority") : -1;
    long prio_ucx = has_ucx ? mca_int("osc_ucx_priority") : -1;
    if (has_rdma && prio_rdma < 0) prio_rdma = 101;
    if (has_ucx && prio_ucx < 0) prio_ucx = 60;
    const char *create = has_rdma && prio_rdma >= prio_ucx ? "rdma"
                         : has_ucx                         ? "ucx"
                         : has_pt2pt                       ? "pt2pt"
                                                           : "?";
    long prio_create = !strcmp(create, "rdma") ? prio_rdma : prio_ucx;
    const char *alloc = create;
    char why[96] = "";
    if (has_sm && local == size && 100 > prio_create) alloc = "sm";
    if (has_sm && local == size)
        snprintf(why, sizeof why, " (priority %s %ld %s sm 100)", create, prio_create,
                 !strcmp(alloc, "sm") ? "<" : ">");
    snprintf(osc->create, sizeof osc->create, "%s", create);
    snprintf(osc->allocate, sizeof osc->allocate, "%s", alloc);
    snprintf(osc->line, sizeof osc->line,
             "# MPI one-sided: %s; osc loaded: %s%s%s; osc=%s (create/dynamic), osc=%s "
             "(allocate)%s",
             ver, loaded[0] ? loaded : "(none mapped)", env ? ", OMPI_MCA_osc=" : "",
             env ? env : "", create, alloc, why);
}

void mpib_transport(bench_cfg_t *cfg, int nranks)
{
    const char *tls = getenv("UCX_TLS");
    /* A fixed TCP send buffer changes how a one-kernel network of namespaces
     * behaves (perf/run, hosts suite): records of the two must not mix. */
    const char *sndbuf = getenv("UCX_TCP_SNDBUF");
    snprintf(cfg->transport, sizeof cfg->transport, "mpirun -n %d%s%s%s%s", nranks,
             tls && *tls ? " UCX_TLS=" : "", tls && *tls ? tls : "",
             sndbuf && *sndbuf ? " UCX_TCP_SNDBUF=" : "", sndbuf && *sndbuf ? sndbuf : "");
}

void mpib_impl_name(char *buf, size_t cap, const mpib_opts_t *o)
{
    snprintf(buf, cap, "pxs-%s%s", o->connector, o->alloc ? "-alloc" : "");
}

void mpib_check(const void *dst, const void *want, size_t size, const char *what)
{
    if (memcmp(dst, want, size)) mpib_die("%s: wrong bytes at size %zu", what, size);
}

void mpib_read_load(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)cap, f)) buf[0] = 0;
        fclose(f);
    }
    char *p = buf;
    for (int sp = 0; *p; p++) /* the three averages only */
        if (*p == ' ' && ++sp == 3) break;
    *p = 0;
}

int mpib_ranks(const char *prog, int min_ranks, int max_ranks, int *rank, int *size)
{
    MPI_Comm_size(MPI_COMM_WORLD, size);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (*size >= min_ranks && (!max_ranks || *size <= max_ranks)) return 0;
    if (!*rank) {
        if (min_ranks == max_ranks) fprintf(stderr, "%s: run with exactly %d ranks\n", prog, min_ranks);
        else fprintf(stderr, "%s: run with %d or more ranks\n", prog, min_ranks);
    }
    MPI_Finalize();
    return 2;
}
