/* Connector registry and the shared "not supported" slots. */
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "pxs_int.h"

static const pxs_conn_ops_t *const builtin[] = {
    &pxs__conn_local_ops,
    &pxs__conn_shm_ops,
#ifdef PXS_HAVE_UCX
    &pxs__conn_ucx_ops,
#endif
};
#define NBUILTIN (sizeof builtin / sizeof builtin[0])

/* Connectors of companion libraries (libpxs_mpi), added at run time. The
 * table only grows, and entries are published with release stores, so
 * readers need no lock. */
#define NEXTRA 4
static const pxs_conn_ops_t *_Atomic extra[NEXTRA];
static pthread_mutex_t extra_lock = PTHREAD_MUTEX_INITIALIZER;

static const pxs_conn_ops_t *conn_at(size_t i)
{
    if (i < NBUILTIN) return builtin[i];
    if (i - NBUILTIN < NEXTRA) return atomic_load_explicit(&extra[i - NBUILTIN], memory_order_acquire);
    return NULL;
}

pxs_status_t pxs__conn_register(const pxs_conn_ops_t *ops)
{
    if (!ops || !ops->name || ops->size < sizeof(pxs_conn_ops_t)) return PXS_ERR_INVALID_PARAM;
    pxs_status_t st = PXS_ERR_NO_RESOURCE;
    pthread_mutex_lock(&extra_lock);
    for (size_t i = 0; i < NBUILTIN + NEXTRA; i++) {
        const pxs_conn_ops_t *o = conn_at(i);
        if (o == ops) {
            st = PXS_OK;
            break;
        }
        if (o && (o->id == ops->id || !strcmp(o->name, ops->name))) {
            st = PXS_ERR_EXISTS;
            break;
        }
        if (!o) {
            atomic_store_explicit(&extra[i - NBUILTIN], ops, memory_order_release);
            st = PXS_OK;
            break;
        }
    }
    pthread_mutex_unlock(&extra_lock);
    return st;
}

const pxs_conn_ops_t *pxs__conn_ops_by_name(const char *name)
{
    const pxs_conn_ops_t *o;
    for (size_t i = 0; (o = conn_at(i)) != NULL; i++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static const pxs_conn_ops_t *conn_ops_by_id(unsigned id)
{
    const pxs_conn_ops_t *o;
    for (size_t i = 0; (o = conn_at(i)) != NULL; i++)
        if (o->id == id) return o;
    return NULL;
}

pxs_status_t pxs__conn_get(pxs_context_t *ctx, unsigned id, pxs_conn_t **conn_p)
{
    if (id >= sizeof ctx->conns / sizeof ctx->conns[0]) return PXS_ERR_NO_CONNECTOR;
    pxs_conn_t *have = pxs__conn_find(ctx, id);
    if (have) {
        *conn_p = have;
        return PXS_OK;
    }
    const pxs_conn_ops_t *ops = conn_ops_by_id(id);
    if (!ops) return PXS_ERR_NO_CONNECTOR;
    if (ops->size < sizeof(pxs_conn_ops_t)) {
        pxs_error("connector %s was built against an older interface", ops->name);
        return PXS_ERR_NO_CONNECTOR;
    }
    pxs_conn_t *c = calloc(1, sizeof *c);
    if (!c) return PXS_ERR_NO_MEMORY;
    static _Atomic uint64_t uids;
    c->ops = ops;
    c->ctx = ctx;
    c->uid = atomic_fetch_add(&uids, 1) + 1;
    pxs_status_t st = ops->init(c);
    if (st != PXS_OK) {
        pxs_error("connector %s failed to start: %s", ops->name, pxs_strerror(st));
        free(c);
        return st;
    }
    /* Release: a reader that finds it without the lock sees it whole. */
    __atomic_store_n(&ctx->conns[id], c, __ATOMIC_RELEASE);
    *conn_p = c;
    return PXS_OK;
}

pxs_status_t pxs_connector_describe(unsigned i, pxs_connector_desc_t *desc)
{
    if (!desc) return PXS_ERR_INVALID_PARAM;
    const pxs_conn_ops_t *o = conn_at(i);
    if (!o) return PXS_ERR_NOT_FOUND;
    desc->name = o->name;
    desc->id = o->id;
    desc->caps = o->caps;
    desc->memtypes = o->memtypes;
    desc->summary = o->summary;
    return PXS_OK;
}

pxs_status_t pxs__conn_unsup_mem_alloc(pxs_conn_t *c, size_t l, void **p)
{
    (void)c, (void)l, (void)p;
    return PXS_ERR_UNSUPPORTED;
}
void pxs__conn_unsup_mem_free(pxs_conn_t *c, void *p) { (void)c, (void)p; }
pxs_status_t pxs__conn_unsup_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *d, pxs_request_t *r)
{
    (void)c, (void)p, (void)d, (void)r;
    return PXS_ERR_UNSUPPORTED;
}
void pxs__conn_noop_cancel(pxs_conn_t *c, pxs_request_t *r) { (void)c, (void)r; }
pxs_status_t pxs__conn_unsup_view(pxs_conn_t *c, const pxs_pdesc_t *p, const void **d)
{
    (void)c, (void)p, (void)d;
    return PXS_ERR_UNSUPPORTED;
}
int pxs__conn_noop_progress(pxs_conn_t *c)
{
    (void)c;
    return 0;
}
void pxs__conn_noop_view_release(pxs_conn_t *c, const pxs_pdesc_t *p) { (void)c, (void)p; }

uint64_t pxs__conn_owner_id(const pxs_conn_t *conn) { return conn->ctx->owner_id; }

void pxs__conn_close_stores(pxs_context_t *ctx)
{
    while (ctx->stores) pxs_store_close(ctx->stores);
}

const pxs_objtab_t *pxs__conn_objtab(const pxs_conn_t *conn) { return &conn->ctx->tab; }
int pxs__conn_timeout_ms(const pxs_conn_t *conn) { return conn->ctx->timeout_ms; }
