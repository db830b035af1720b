/* pxs_mpi_init / pxs_mpi_finalize: a context per communicator, joined to
 * the communicator's ranks through the core's bootstrap table. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi_int.h"
#include "mpi_wire.h"

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static pxs_mpi_t *list_head;

pxs_mpi_t *pxs__mpi_of_ctx(const pxs_context_t *ctx)
{
    pthread_mutex_lock(&list_lock);
    pxs_mpi_t *m = list_head;
    while (m && m->ctx != ctx) m = m->next;
    pthread_mutex_unlock(&list_lock);
    return m;
}

pxs_status_t pxs__mpi_status(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return PXS_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    pxs_error("%s failed: %s", what, msg);
    return PXS_ERR_IO;
}

uint64_t pxs__mpi_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : pxs__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

bool pxs__mpi_expired(uint64_t deadline) { return deadline && pxs__now_ns() > deadline; }

/* Polls: spin first (replies on a node come in microseconds), then yield
 * the core with short sleeps so that, on small nodes, the ranks we wait
 * for get to run. */
void pxs__mpi_backoff(unsigned *polls)
{
    if (++*polls > 2000) nanosleep(&(struct timespec){0, 50000}, NULL);
}

pxs_status_t pxs__mpi_wait(pxs_mpi_t *m, MPI_Request *req, MPI_Status *st, uint64_t deadline)
{
    unsigned polls = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, st ? st : MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Test");
        if (done) return PXS_OK;
        if (pxs__mpi_expired(deadline)) return PXS_ERR_TIMEOUT;
        if (m && m->ctx && pxs_progress(m->ctx) > 0) polls = 0;
        pxs__mpi_backoff(&polls);
    }
}

/* --- the bootstrap table over a communicator ------------------------------
 * The exchange runs in buffers of its own: after a timeout MPI cannot
 * cancel the collective, which may still write them, so an abandoned
 * exchange keeps them (and is never freed) instead of the core's. */
typedef struct {
    MPI_Comm comm;
    int size;
} oob_info_t;

typedef struct {
    MPI_Request req;
    void *rbuf;        /* the core's */
    uint8_t *tmp;      /* ours: [size * len] + [len] */
    size_t len;
    int size;
    bool done;
} oob_req_t;

static pxs_status_t oob_allgather(const void *sbuf, void *rbuf, size_t len, void *info,
                                  void **req_p)
{
    oob_info_t *o = info;
    oob_req_t *r = calloc(1, sizeof *r);
    if (!r) return PXS_ERR_NO_MEMORY;
    r->tmp = malloc(len * (size_t)(o->size + 1));
    if (!r->tmp) {
        free(r);
        return PXS_ERR_NO_MEMORY;
    }
    memcpy(r->tmp + len * (size_t)o->size, sbuf, len);
    r->rbuf = rbuf;
    r->len = len;
    r->size = o->size;
    int rc = MPI_Iallgather(r->tmp + len * (size_t)o->size, (int)len, MPI_BYTE, r->tmp, (int)len,
                            MPI_BYTE, o->comm, &r->req);
    if (rc != MPI_SUCCESS) {
        free(r->tmp);
        free(r);
        return pxs__mpi_status(rc, "MPI_Iallgather");
    }
    *req_p = r;
    return PXS_OK;
}

static pxs_status_t oob_test(void *req)
{
    oob_req_t *r = req;
    if (r->done) return PXS_OK;
    int flag = 0;
    int rc = MPI_Test(&r->req, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Test");
    if (!flag) return PXS_INPROGRESS;
    memcpy(r->rbuf, r->tmp, r->len * (size_t)r->size);
    r->done = true;
    return PXS_OK;
}

static void oob_free(void *req)
{
    oob_req_t *r = req;
    if (!r->done) return; /* abandoned: MPI may still write r->tmp */
    free(r->tmp);
    free(r);
}

/* --- params ---------------------------------------------------------------- */

static pxs_status_t env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t *v)
{
    const char *s = getenv(name);
    if (!s) return PXS_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || x < lo || x > hi) {
        pxs_error("%s=\"%s\": expected an integer in %llu..%llu", name, s,
                  (unsigned long long)lo, (unsigned long long)hi);
        return PXS_ERR_INVALID_PARAM;
    }
    *v = x;
    return PXS_OK;
}

typedef struct {
    uint64_t buckets, max_attach, eager_max, pool_size, lease_us;
    const char *connector;
    bool connector_set; /* by params or environment */
} cfg_t;

static pxs_status_t config(const pxs_mpi_params_t *p, cfg_t *c)
{
    uint64_t mask = p ? p->field_mask : 0;
    c->buckets = mask & PXS_MPI_PARAM_DIR_BUCKETS ? p->dir_buckets : 256;
    c->max_attach = mask & PXS_MPI_PARAM_MAX_ATTACH ? p->max_attach : 32;
    c->eager_max = mask & PXS_MPI_PARAM_EAGER_MAX ? p->eager_max : UINT64_MAX;
    c->pool_size = mask & PXS_MPI_PARAM_POOL_SIZE ? p->pool_size : 64u << 20;
    c->lease_us = mask & PXS_MPI_PARAM_LEASE_US ? p->lease_us : 1000;
#ifdef PXS_MPI_HAVE_UCX
    c->connector = "ucx";
#else
    c->connector = "mpi";
#endif
    c->connector_set = mask & PXS_MPI_PARAM_CONNECTOR && p->connector;
    if (c->connector_set) c->connector = p->connector;
    c->connector_set |= getenv("PXS_MPI_CONNECTOR") != NULL;
    pxs_status_t st;
    if ((st = env_u64("PXS_MPI_DIR_BUCKETS", 1, 1u << 20, &c->buckets)) != PXS_OK ||
        (st = env_u64("PXS_MPI_MAX_ATTACH", 0, 1024, &c->max_attach)) != PXS_OK ||
        (st = env_u64("PXS_MPI_EAGER_MAX", 0, UINT64_MAX, &c->eager_max)) != PXS_OK ||
        (st = env_u64("PXS_MPI_POOL_SIZE", 0, 1ull << 40, &c->pool_size)) != PXS_OK ||
        (st = env_u64("PXS_MPI_LEASE_US", 0, PXS_MPI_LEASE_US_MAX, &c->lease_us)) != PXS_OK)
        return st;
    if (c->lease_us > PXS_MPI_LEASE_US_MAX) {
        pxs_error("lease_us must be 0..%u", PXS_MPI_LEASE_US_MAX);
        return PXS_ERR_INVALID_PARAM;
    }
    if (getenv("PXS_MPI_CONNECTOR")) c->connector = getenv("PXS_MPI_CONNECTOR");
    if (c->buckets == 0 || c->buckets > (1u << 20)) {
        pxs_error("dir_buckets must be 1..%u", 1u << 20);
        return PXS_ERR_INVALID_PARAM;
    }
    return PXS_OK;
}

/* --- init / finalize --------------------------------------------------------- */

/* With no connector chosen, pxs_mpi_send's proxies (sizes above eager_max)
 * reach ranks on this node through shm: one copy, no owner progress. */
static pxs_status_t node_sends(pxs_mpi_t *m)
{
    pxs_peer_t me, peer;
    pxs_status_t st = pxs_group_peer(m->ctx, m->rank, &me);
    if (st != PXS_OK) return st;
    if (!(m->near = calloc((size_t)m->size, 1))) return PXS_ERR_NO_MEMORY;
    int n = 0;
    for (int r = 0; r < m->size && st == PXS_OK; r++)
        if ((st = pxs_group_peer(m->ctx, r, &peer)) == PXS_OK && r != m->rank)
            n += m->near[r] = peer.node_id == me.node_id;
    if (st == PXS_OK && n) {
        pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                                 .connector = "shm", .name = "pxs-mpi-send-node"};
        st = pxs_store_open(m->ctx, &sp, &m->node_store);
    }
    if (st != PXS_OK || !n) {
        free(m->near);
        m->near = NULL;
        return st;
    }
    return PXS_OK;
}

static void unlink_mpi(pxs_mpi_t *m)
{
    pthread_mutex_lock(&list_lock);
    for (pxs_mpi_t **pp = &list_head; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    pthread_mutex_unlock(&list_lock);
}

pxs_status_t pxs_mpi_init(MPI_Comm comm, const pxs_mpi_params_t *params, pxs_mpi_t **mpi_p)
{
    if (!mpi_p || comm == MPI_COMM_NULL) return PXS_ERR_INVALID_PARAM;
    *mpi_p = NULL;
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (!inited || fin) {
        pxs_error("pxs_mpi_init: MPI is not initialised (or already finalised)");
        return PXS_ERR_INVALID_PARAM;
    }
    cfg_t cfg;
    pxs_status_t st = config(params, &cfg);
    if (st != PXS_OK) return st;
    if (pxs__conn_register(&pxs__conn_mpi_ops) != PXS_OK) return PXS_ERR_NO_CONNECTOR;

    pxs_mpi_t *m = calloc(1, sizeof *m);
    if (!m) return PXS_ERR_NO_MEMORY;
    m->comm = m->vcomm = MPI_COMM_NULL;
    for (int i = 0; i < 16; i++) pthread_mutex_init(&m->send_lock[i], NULL);
    m->fin_req = MPI_REQUEST_NULL;
    const pxs_context_params_t *cp =
        params && params->field_mask & PXS_MPI_PARAM_CONTEXT ? params->context : NULL;
    if ((st = pxs_init(cp, &m->ctx)) != PXS_OK) goto err_free;
    pxs_context_params_t q;
    pxs_context_query(m->ctx, &q);
    m->timeout_ms = q.timeout_ms;
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (q.thread_mode == PXS_THREAD_MULTIPLE && level < MPI_THREAD_MULTIPLE) {
        pxs_error("PXS_THREAD_MULTIPLE needs MPI_THREAD_MULTIPLE (MPI provides level %d)", level);
        st = PXS_ERR_INVALID_PARAM;
        goto err_ctx;
    }
    uint64_t deadline = pxs__mpi_deadline(m->timeout_ms);

    /* A non-blocking duplicate: a rank that never comes must not hang us. */
    MPI_Request req;
    int rc = MPI_Comm_idup(comm, &m->comm, &req);
    if (rc != MPI_SUCCESS) {
        st = pxs__mpi_status(rc, "MPI_Comm_idup");
        goto err_ctx;
    }
    if ((st = pxs__mpi_wait(NULL, &req, NULL, deadline)) != PXS_OK) {
        pxs_error("pxs_mpi_init: not every rank of the communicator joined within %d ms",
                  m->timeout_ms);
        m->comm = MPI_COMM_NULL; /* abandoned with the pending collective */
        goto err_ctx;
    }
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    m->eager_max = cfg.eager_max;
    m->max_attach = (uint32_t)cfg.max_attach;
    m->pool_size = cfg.pool_size;
    m->lease_us = (uint32_t)cfg.lease_us;
    snprintf(m->send_conn, sizeof m->send_conn, "%s", cfg.connector);

    /* The connector pxs_mpi_send uses joins the exchange below (it is
     * opened first, so that its instance exists). */
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = cfg.connector, .name = "pxs-mpi-send"};
    if (strcmp(cfg.connector, "mpi") && (st = pxs_store_open(m->ctx, &sp, &m->send_store)) != PXS_OK)
        goto err_comm;

    oob_info_t info = {m->comm, m->size};
    pxs_oob_t oob = {.rank = m->rank, .size = m->size, .coll_info = &info,
                     .allgather = oob_allgather, .test = oob_test, .req_free = oob_free};
    if ((st = pxs_bootstrap(m->ctx, &oob, m->timeout_ms)) != PXS_OK) goto err_comm;
    if (!cfg.connector_set && (st = node_sends(m)) != PXS_OK) goto err_comm;

    /* Everything below is collective and every rank is now known to be here. */
    uint64_t b = cfg.buckets, bmax = 0, bmin = 0;
    MPI_Allreduce(&b, &bmax, 1, MPI_UINT64_T, MPI_MAX, m->comm);
    MPI_Allreduce(&b, &bmin, 1, MPI_UINT64_T, MPI_MIN, m->comm);
    if (bmax != bmin) {
        pxs_error("pxs_mpi_init: dir_buckets differ between ranks (%llu..%llu)",
                  (unsigned long long)bmin, (unsigned long long)bmax);
        st = PXS_ERR_INVALID_PARAM;
        goto err_comm;
    }
    if (!(m->value_only = calloc((size_t)m->size, sizeof *m->value_only))) {
        st = PXS_ERR_NO_MEMORY;
        goto err_comm;
    }
    if ((rc = MPI_Comm_dup(m->comm, &m->vcomm)) != MPI_SUCCESS) {
        st = pxs__mpi_status(rc, "MPI_Comm_dup");
        m->vcomm = MPI_COMM_NULL;
        goto err_comm;
    }
    MPI_Comm_set_errhandler(m->vcomm, MPI_ERRORS_RETURN);
    if ((st = pxs__mpi_dir_create(m, (uint32_t)b)) != PXS_OK) goto err_comm;

    pthread_mutex_lock(&list_lock);
    m->next = list_head;
    list_head = m;
    pthread_mutex_unlock(&list_lock);
    if ((st = pxs__mpi_conn_setup(m)) != PXS_OK) goto err_list;
    sp.connector = "mpi";
    sp.name = "pxs-mpi";
    st = pxs_store_open(m->ctx, &sp, &m->store);
    /* Every rank's tables, as each attached them: a proxy naming others
     * is refused before any MPI call uses its addresses. */
    pxs_status_t xst = pxs__mpi_tables_exchange(m, st == PXS_OK);
    if (st != PXS_OK) goto err_conn;
    if ((st = xst) != PXS_OK) {
        pxs_store_close(m->store);
        m->store = NULL;
        goto err_conn;
    }
    if (!m->send_store) m->send_store = m->store;
    pxs__mpi_datatype_ref();
    *mpi_p = m;
    return PXS_OK;

err_conn:
    pxs__mpi_conn_free(m);
err_list:
    unlink_mpi(m);
    pxs__mpi_dir_free(m);
err_comm:
    if (m->vcomm != MPI_COMM_NULL) MPI_Comm_free(&m->vcomm);
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
err_ctx:
    pxs_finalize(m->ctx);
err_free:
    for (int i = 0; i < 16; i++) pthread_mutex_destroy(&m->send_lock[i]);
    free(m->value_only);
    free(m->near);
    free(m);
    return st;
}

pxs_status_t pxs_mpi_finalize(pxs_mpi_t *m, int timeout_ms)
{
    if (!m) return PXS_ERR_INVALID_PARAM;
    if (timeout_ms == PXS_TIMEOUT_DEFAULT) timeout_ms = m->timeout_ms;
    if (!m->leaving) {
        /* Phase 1, local: from here other ranks see our objects evicted and
         * our directory share closed, whatever they are doing. */
        m->leaving = true;
        pxs__conn_close_stores(m->ctx);
        m->send_store = m->store = m->node_store = NULL;
        pxs__mpi_dir_close(m);
        int rc = MPI_Ibarrier(m->comm, &m->fin_req);
        if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Ibarrier");
    }
    /* Phase 2: once every rank left, nobody reads our windows any more. */
    pxs_status_t st = pxs__mpi_wait(m, &m->fin_req, NULL, pxs__mpi_deadline(timeout_ms));
    if (st != PXS_OK) {
        /* The caller may reuse the memory of our evicted objects now:
         * leases on them run out first. Once every rank has left, none
         * reads it again (the windows go collectively), so no wait. */
        pxs__mpi_lease_wait_until(m, m->lease_end);
        if (st == PXS_ERR_TIMEOUT)
            pxs_error("pxs_mpi_finalize: not every rank finalized within %d ms", timeout_ms);
        return st;
    }
    unlink_mpi(m);
    pxs__mpi_conn_free(m);
    pxs__mpi_dir_free(m);
    MPI_Comm_free(&m->vcomm);
    MPI_Comm_free(&m->comm);
    pxs_finalize(m->ctx);
    pxs__mpi_datatype_unref();
    for (int i = 0; i < 16; i++) pthread_mutex_destroy(&m->send_lock[i]);
    free(m->value_only);
    free(m->near);
    free(m);
    return PXS_OK;
}

pxs_context_t *pxs_mpi_context(pxs_mpi_t *m) { return m ? m->ctx : NULL; }
pxs_store_t *pxs_mpi_store(pxs_mpi_t *m) { return m ? m->store : NULL; }
MPI_Comm pxs_mpi_comm(pxs_mpi_t *m) { return m ? m->comm : MPI_COMM_NULL; }
int pxs_mpi_rank(const pxs_mpi_t *m) { return m ? m->rank : -1; }
int pxs_mpi_size(const pxs_mpi_t *m) { return m ? m->size : 0; }
