/* Internal types of the core. Connectors do not include this file. */
#ifndef PXS_INT_H
#define PXS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include <pxs/pxs.h>
#include "connector.h"
#include "log.h"
#include "objtab.h"
#include "seg.h"
#include "wire.h"
#include "wire_memo.h"

#define PXS_DOMAIN_MAX 64

typedef struct pxs_names pxs_names_t;


struct pxs_store {
    pxs_context_t *ctx;
    pxs_conn_t *conn;
    uint64_t id;
    char name[64];
    uint64_t nobjects;
    pxs_store_t *next;
};

struct pxs_request {
    pxs_context_t *ctx;
    pxs_conn_t *conn;
    pxs_status_t status;    /* PXS_INPROGRESS until complete */
    uint64_t deadline_ns;   /* 0: none */
    void *dst;
    size_t dst_len;
    uint64_t conn_data[PXS_REQ_SCRATCH / 8]; /* connector scratch */
    pxs_request_t *next_free;
};

struct pxs_context {
    char domain[PXS_DOMAIN_MAX];
    uint64_t domain_id;
    uint64_t owner_id;      /* random per context */
    pid_t pid;
    uint64_t start_time;    /* of this process, guards against pid reuse */
    uint64_t node_id;       /* same kernel <=> same node id */

    pxs_thread_mode_t thread_mode;
    pthread_mutex_t lock;
    size_t inline_max;
    uint32_t max_objects;
    int timeout_ms;

    /* By connector id, opened on first use (under lock) and kept until
     * finalize: read without the lock by pxs__conn_find. */
    pxs_conn_t *conns[8];

    pxs_objtab_t tab;       /* shared generation table */
    pxs_object_t *objs;     /* [max_objects] */
    uint32_t *free_slots;
    uint32_t nfree;
    uint64_t next_gen;
    uint64_t next_key;

    pxs_seg_t **segs;       /* pxs_alloc and copy segments, by address */
    size_t nsegs, segs_cap;
    uint32_t next_seg_id;

    pxs_store_t *stores;
    pxs_names_t *names;     /* opened on first use */
    pxs_request_t *free_reqs;
    pxs_context_t *next_live; /* process-wide list, for "local" */

    /* The group joined by pxs_bootstrap (group_id 0: none). */
    uint64_t group_id;
    int group_rank, group_size;
    pxs_peer_t *group;
};

/* Locking per the context's thread mode. */
static inline void pxs__lock(pxs_context_t *ctx) {
    if (ctx->thread_mode == PXS_THREAD_MULTIPLE) pthread_mutex_lock(&ctx->lock);
}
static inline void pxs__unlock(pxs_context_t *ctx) {
    if (ctx->thread_mode == PXS_THREAD_MULTIPLE) pthread_mutex_unlock(&ctx->lock);
}

uint64_t pxs__hash64(const void *buf, size_t len);

/* Blocking resolve of a proxy pxs__proxy_check accepted. */
pxs_status_t pxs__resolve_desc(pxs_context_t *ctx, const pxs_pdesc_t *d, void *dst, size_t cap);
/* Validate a proxy for use in this context (format, domain). */
pxs_status_t pxs__proxy_check(const pxs_context_t *ctx, const pxs_proxy_t *proxy,
                              pxs_pdesc_t *d);
/* The same, for a resolve: (*dp) describes the proxy, either the memo's
 * own parse when the bytes are remembered (wire_memo.h: its pointers lie in
 * the memo entry, valid until this thread checks another proxy) or d, and
 * (*rt_p) is the route slot of the remembered proxy, or NULL. Inline: the
 * first step of every resolve, and on a hit all of it. */
static inline __attribute__((always_inline)) pxs_status_t
pxs__proxy_check_route(const pxs_context_t *ctx, const pxs_proxy_t *proxy, pxs_pdesc_t *d,
                       const pxs_pdesc_t **dp, pxs_route_t **rt_p)
{
    *rt_p = NULL;
    if (!ctx || !proxy) return PXS_ERR_INVALID_PARAM;
    pxs_memo_entry_t *e = pxs__memo_hit(proxy->bytes, sizeof proxy->bytes);
    if (e) {
        *dp = &e->d;
        *rt_p = &e->route;
    } else {
        pxs_status_t st = pxs__wire_parse_route(proxy->bytes, sizeof proxy->bytes, d, rt_p);
        if (st != PXS_OK) {
            pxs_debug("rejected proxy: %s", pxs_strerror(st));
            return st;
        }
        *dp = d;
    }
    if ((*dp)->domain != ctx->domain_id) {
        pxs_debug("proxy of domain %016llx, this context is in %016llx",
                  (unsigned long long)(*dp)->domain, (unsigned long long)ctx->domain_id);
        return PXS_ERR_FOREIGN;
    }
    return PXS_OK;
}

/* Connector instance of this context for an id, opened on first use. */
pxs_status_t pxs__conn_get(pxs_context_t *ctx, unsigned id, pxs_conn_t **conn_p);
/* The instance if it is open already, else NULL. No lock needed. */
static inline pxs_conn_t *pxs__conn_find(pxs_context_t *ctx, unsigned id)
{
    return id < sizeof ctx->conns / sizeof ctx->conns[0]
               ? __atomic_load_n(&ctx->conns[id], __ATOMIC_ACQUIRE)
               : NULL;
}
const pxs_conn_ops_t *pxs__conn_ops_by_name(const char *name);

/* Segments of this context (alloc.c). */
pxs_status_t pxs__seg_alloc(pxs_context_t *ctx, size_t size, bool user, pxs_seg_t **seg_p);
void pxs__seg_release(pxs_context_t *ctx, pxs_seg_t *seg);
pxs_seg_t *pxs__seg_find(pxs_context_t *ctx, const void *addr, size_t len);

pxs_object_t *pxs__ctx_object(pxs_context_t *ctx, uint32_t slot, uint64_t gen);

/* Evict one object / every object of a store (store.c). */
void pxs__object_evict(pxs_object_t *o);
void pxs__store_evict_all(pxs_store_t *store);

/* Names (names.c). */
void pxs__names_close(pxs_context_t *ctx);

/* Requests (request.c). */
pxs_request_t *pxs__request_get(pxs_context_t *ctx);
void pxs__request_put(pxs_request_t *req);
void pxs__requests_free_all(pxs_context_t *ctx);
/* Absolute deadline for a timeout (PXS_TIMEOUT_*), 0 for none. */
uint64_t pxs__deadline(const pxs_context_t *ctx, int timeout_ms);

#endif
