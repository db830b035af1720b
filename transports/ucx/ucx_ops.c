/* UCP gets in flight (the rma protocol's and a leased get's), each through
 * a slot of its own rather than the request it serves.
 *
 * A get given up on (cancel, or its endpoint closed) must not touch its
 * request again: the caller frees it, and the pool hands it to the next
 * resolve. But UCX does not always complete a get by the time its
 * endpoint's forced close does (over tcp, a get queued on an endpoint
 * still connecting was seen completing later, even only in
 * ucp_worker_destroy), so a callback can come late. Its user data is
 * therefore a slot, which outlives the get: giving up clears the slot's
 * get, a late callback finds none and just returns the slot, and a
 * generation read lands in the slot, never in a request that may have
 * been reused. Slots come in chunks that never move and go only at
 * finalize, after the worker. */
#include <stdlib.h>

#include "ucx.h"

#define OPS_CHUNK 64

typedef struct ops_chunk {
    struct ops_chunk *next;
    ucx_op_t op[OPS_CHUNK];
} ops_chunk_t;

void pxs__ucx_ops_init(ucx_t *u) { pthread_mutex_init(&u->op_lock, NULL); }

void pxs__ucx_ops_fini(ucx_t *u)
{
    for (ops_chunk_t *c = u->op_chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    u->op_chunks = NULL;
    u->op_free = NULL;
    pthread_mutex_destroy(&u->op_lock);
}

ucx_op_t *pxs__ucx_op_take(ucx_get_t *g)
{
    ucx_t *u = g->u;
    pthread_mutex_lock(&u->op_lock);
    if (!u->op_free) {
        ops_chunk_t *c = malloc(sizeof *c);
        if (!c) {
            pthread_mutex_unlock(&u->op_lock);
            return NULL;
        }
        c->next = u->op_chunks;
        u->op_chunks = c;
        for (int i = 0; i < OPS_CHUNK; i++) {
            c->op[i] = (ucx_op_t){.u = u, .next_free = u->op_free};
            u->op_free = &c->op[i];
        }
    }
    ucx_op_t *op = u->op_free;
    u->op_free = op->next_free;
    op->g = g;
    op->gen = 0;
    g->op = op;
    pthread_mutex_unlock(&u->op_lock);
    return op;
}

ucx_get_t *pxs__ucx_op_done(ucx_op_t *op, uint64_t *gen)
{
    ucx_t *u = op->u;
    pthread_mutex_lock(&u->op_lock);
    ucx_get_t *g = op->g;
    if (g) g->op = NULL;
    if (gen) *gen = op->gen;
    op->g = NULL;
    op->next_free = u->op_free;
    u->op_free = op;
    pthread_mutex_unlock(&u->op_lock);
    return g;
}

bool pxs__ucx_op_give_up(ucx_get_t *g)
{
    ucx_t *u = g->u;
    pthread_mutex_lock(&u->op_lock);
    ucx_op_t *op = g->op;
    if (op) {
        op->g = NULL;
        g->op = NULL;
    }
    pthread_mutex_unlock(&u->op_lock);
    return op != NULL;
}

ucx_get_t *pxs__ucx_op_give_up_peer(ucx_t *u, const ucx_peer_t *q)
{
    ucx_get_t *g = NULL;
    pthread_mutex_lock(&u->op_lock);
    for (ops_chunk_t *c = u->op_chunks; c && !g; c = c->next) {
        for (int i = 0; i < OPS_CHUNK && !g; i++) {
            ucx_op_t *op = &c->op[i];
            if (op->g && op->g->peer == q) {
                g = op->g;
                g->op = NULL;
                op->g = NULL;
            }
        }
    }
    pthread_mutex_unlock(&u->op_lock);
    return g;
}
