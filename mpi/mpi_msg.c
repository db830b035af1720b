/* Proxies in MPI messages, and a send that chooses by size: small buffers
 * travel by value, large ones as a proxy the receiver resolves. */
#include <limits.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_int.h"
#include "mpi_wire.h"

/* --- the datatype of a whole pxs_proxy_t -------------------------------- */

static pthread_mutex_t dt_lock = PTHREAD_MUTEX_INITIALIZER;
static MPI_Datatype dt = MPI_DATATYPE_NULL;
static int dt_refs;

void pxs__mpi_datatype_ref(void)
{
    pthread_mutex_lock(&dt_lock);
    if (dt_refs++ == 0) {
        MPI_Type_contiguous((int)sizeof(pxs_proxy_t), MPI_BYTE, &dt);
        MPI_Type_commit(&dt);
    }
    pthread_mutex_unlock(&dt_lock);
}

void pxs__mpi_datatype_unref(void)
{
    pthread_mutex_lock(&dt_lock);
    if (--dt_refs == 0) MPI_Type_free(&dt);
    pthread_mutex_unlock(&dt_lock);
}

MPI_Datatype pxs_mpi_proxy_datatype(void) { return dt; }

/* --- proxies -------------------------------------------------------------- */

static pxs_status_t wire_len(const pxs_proxy_t *p, int *len)
{
    pxs_proxy_info_t info;
    pxs_status_t st = pxs_proxy_info(p, &info);
    if (st == PXS_OK) *len = (int)info.encoded_len;
    return st;
}

pxs_status_t pxs_mpi_send_proxy(const pxs_proxy_t *proxy, int dest, int tag, MPI_Comm comm)
{
    if (!proxy) return PXS_ERR_INVALID_PARAM;
    int len;
    pxs_status_t st = wire_len(proxy, &len);
    if (st != PXS_OK) return st;
    return pxs__mpi_status(MPI_Send(proxy->bytes, len, MPI_BYTE, dest, tag, comm), "MPI_Send");
}

/* Wait for a matching message without taking it: MPI_Improbe, polled
 * until the deadline, so that a timeout consumes nothing (a posted
 * MPI_Recv could not be abandoned), and the matched message goes to our
 * MPI_Mrecv only (with MPI_Iprobe + MPI_Recv another thread could take it
 * in between). m, where given, is progressed meanwhile: its connector may
 * need us to serve gets. timeout_ms 0: one probe. */
static pxs_status_t probe(pxs_mpi_t *m, int source, int tag, MPI_Comm comm, int timeout_ms,
                          MPI_Message *msg, MPI_Status *s)
{
    uint64_t deadline = pxs__mpi_deadline(timeout_ms);
    unsigned polls = 0;
    for (;;) {
        int flag = 0;
        int rc = MPI_Improbe(source, tag, comm, &flag, msg, s);
        if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Improbe");
        if (flag) return PXS_OK;
        if (timeout_ms == 0 || pxs__mpi_expired(deadline)) return PXS_ERR_TIMEOUT;
        if (m && pxs_progress(m->ctx) > 0) polls = 0;
        pxs__mpi_backoff(&polls);
    }
}

pxs_status_t pxs_mpi_recv_proxy(pxs_proxy_t *proxy, int source, int tag, MPI_Comm comm,
                                int timeout_ms, MPI_Status *status)
{
    /* No context here, so no default timeout to stand for. */
    if (!proxy || timeout_ms < PXS_TIMEOUT_INFINITE) return PXS_ERR_INVALID_PARAM;
    MPI_Message msg;
    MPI_Status s;
    pxs_status_t st = probe(NULL, source, tag, comm, timeout_ms, &msg, &s);
    if (st != PXS_OK) return st;
    int n = 0, cap = PXS_PROXY_MAX;
    MPI_Get_count(&s, MPI_BYTE, &n);
    /* Into a scratch buffer: whatever arrives is validated before the
     * caller's proxy is written. A longer message is taken whole, then
     * refused: truncating it is MPI_ERR_TRUNCATE, which the caller's
     * communicator may treat as fatal (as it still does if that much
     * memory cannot be had). */
    uint8_t small[PXS_PROXY_MAX], *big = NULL, *buf = small;
    if (n > cap && (big = malloc((size_t)n))) {
        buf = big;
        cap = n;
    }
    st = pxs__mpi_status(MPI_Mrecv(buf, cap, MPI_BYTE, &msg, &s), "MPI_Mrecv");
    if (st == PXS_OK)
        st = n > PXS_PROXY_MAX ? PXS_ERR_CORRUPT : pxs_proxy_decode(buf, (size_t)n, proxy);
    free(big);
    if (status != MPI_STATUS_IGNORE) *status = s;
    return st;
}

pxs_status_t pxs_mpi_bcast_proxy(pxs_proxy_t *proxy, int root, MPI_Comm comm)
{
    if (!proxy) return PXS_ERR_INVALID_PARAM;
    int me;
    MPI_Comm_rank(comm, &me);
    int len = 0;
    /* A root holding no valid proxy still takes part (length 0), so that no
     * rank waits in a broadcast the root skipped. */
    pxs_status_t st = me == root ? wire_len(proxy, &len) : PXS_OK;
    if (st != PXS_OK) len = 0;
    int rc = MPI_Bcast(&len, 1, MPI_INT, root, comm);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Bcast");
    if (len <= 0 || len > PXS_PROXY_MAX) return me == root ? st : PXS_ERR_CORRUPT;
    uint8_t *buf = malloc((size_t)len);
    if (!buf) return PXS_ERR_NO_MEMORY; /* the others may now wait: MPI has no way out */
    if (me == root) memcpy(buf, proxy->bytes, (size_t)len);
    rc = MPI_Bcast(buf, len, MPI_BYTE, root, comm);
    st = pxs__mpi_status(rc, "MPI_Bcast");
    if (st == PXS_OK && me != root) st = pxs_proxy_decode(buf, (size_t)len, proxy);
    free(buf);
    return st;
}

/* --- send by size ----------------------------------------------------------
 * Message: header (magic, kind, length) then the bytes or the proxy
 * (mpi_wire.h). A proxy is acknowledged on tag | ACK_TAG with the
 * receiver's status and the send's id, so the sender knows when its buffer
 * is free again. */
#define TAG_BITS  14
#define ACK_TAG   (1 << TAG_BITS)

/* A receiver that cannot read the sender's proxy (PXS_ERR_UNREACHABLE: the
 * kernel refuses it the sender's memory, the connector has no route) says
 * so in its acknowledgement and takes the bytes by value instead, on
 * vcomm, in pieces MPI counts in an int. */
#define VALUE_PIECE ((size_t)1 << 30)

/* Values in messages longer than this go from the sender's buffer
 * (pxs_mpi_send): Open MPI's shared-memory eager limit, 4096 bytes less
 * its own headers (a plain MPI_Send of 4032 bytes is eager here, of 4048
 * is not). */
#define SPLIT_ABOVE 4032
_Static_assert(SPLIT_ABOVE <= PXS_MPI_MSG_HDR + PXS_PROXY_MAX, "an unsplit value fits the stack");

static pxs_status_t send_value(pxs_mpi_t *m, const uint8_t *buf, size_t len, int dest, int tag)
{
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < len && rc == MPI_SUCCESS; off += VALUE_PIECE) {
        size_t n = len - off < VALUE_PIECE ? len - off : VALUE_PIECE;
        rc = MPI_Send(buf + off, (int)n, MPI_BYTE, dest, tag, m->vcomm);
    }
    return pxs__mpi_status(rc, "pxs_mpi_send (by value, after the proxy)");
}

static pxs_status_t recv_value(pxs_mpi_t *m, uint8_t *buf, size_t len, int source, int tag)
{
    pxs_status_t st = PXS_OK;
    for (size_t off = 0; off < len && st == PXS_OK; off += VALUE_PIECE) {
        size_t n = len - off < VALUE_PIECE ? len - off : VALUE_PIECE;
        MPI_Message msg;
        MPI_Status s;
        int got = -1;
        if ((st = probe(m, source, tag, m->vcomm, m->timeout_ms, &msg, &s)) != PXS_OK) break;
        MPI_Get_count(&s, MPI_BYTE, &got);
        if (got != (int)n) {
            /* Ours alone write vcomm: another length is a broken sender. */
            MPI_Mrecv(NULL, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            return PXS_ERR_CORRUPT;
        }
        st = pxs__mpi_status(MPI_Mrecv(buf + off, (int)n, MPI_BYTE, &msg, &s), "pxs_mpi_recv (by value)");
    }
    return st;
}

/* One message in two places: its header at hdr, the rest (len bytes) at
 * body; committed, for the caller to free. */
static int split_type(const void *hdr, const void *body, size_t len, MPI_Datatype *t)
{
    int lens[2] = {PXS_MPI_MSG_HDR, (int)len};
    MPI_Aint at[2];
    MPI_Get_address(hdr, &at[0]);
    MPI_Get_address(body, &at[1]);
    int rc = MPI_Type_create_hindexed(2, lens, at, MPI_BYTE, t);
    if (rc == MPI_SUCCESS && (rc = MPI_Type_commit(t)) != MPI_SUCCESS) MPI_Type_free(t);
    return rc;
}

/* Wait for the acknowledgement of send id from dest, its receive rq posted
 * into ack; skip those of earlier sends to dest and tag that gave up
 * waiting (timeout), which would otherwise release this send's buffer
 * while the receiver still reads it. On an error rq may be pending. */
static pxs_status_t await_ack(pxs_mpi_t *m, MPI_Request *rq, int32_t ack[2], uint32_t id,
                              int dest, int tag, uint64_t deadline)
{
    for (;;) {
        pxs_status_t st = pxs__mpi_wait(m, rq, NULL, deadline);
        if (st != PXS_OK || (uint32_t)ack[1] == id) return st;
        pxs_debug("pxs_mpi_send: rank %d acknowledged send %u late; waiting for %u", dest,
                  (unsigned)ack[1], (unsigned)id);
        int rc = MPI_Irecv(ack, 2, MPI_INT32_T, dest, tag | ACK_TAG, m->comm, rq);
        if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "pxs_mpi_send acknowledgement");
    }
}

pxs_status_t pxs_mpi_send(pxs_mpi_t *m, const void *buf, size_t len, int dest, int tag)
{
    if (!m || (!buf && len) || tag < 0 || tag >= ACK_TAG || m->leaving) return PXS_ERR_INVALID_PARAM;
    uint64_t deadline = pxs__mpi_deadline(m->timeout_ms);
    bool near = m->near && dest >= 0 && dest < m->size && m->near[dest];
    pxs_store_t *store = near ? m->node_store : m->send_store;
    /* By value whatever one message carries, unless told otherwise: faster
     * than by proxy at every size measured (perf/RESULTS.md). And by value
     * where the "mpi" connector takes no zero-copy object: a component
     * that checks no address, leases off (mpi_conn.c, lease_first). */
    bool no_proxy = store == m->store && !m->osc_checks && !m->lease_us;
    bool by_value = len <= (size_t)INT_MAX - PXS_MPI_MSG_HDR &&
                    (len <= m->eager_max || no_proxy ||
                     (dest >= 0 && dest < m->size &&
                      atomic_load_explicit(&m->value_only[dest], memory_order_relaxed)));
    pxs_proxy_t *p = NULL;
    size_t body = len;
    pxs_status_t st;
    if (!by_value) {
        if (!(p = malloc(sizeof *p))) return PXS_ERR_NO_MEMORY;
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
        if ((st = pxs_put(store, buf, len, &pp, p)) != PXS_OK) {
            free(p);
            return st;
        }
        body = PXS_MPI_MSG_ID + pxs_proxy_len(p);
    }
    if (body > (size_t)INT_MAX - PXS_MPI_MSG_HDR) {
        free(p);
        return PXS_ERR_INVALID_PARAM;
    }
    /* Header and proxy, or a value that fits Open MPI's shared-memory eager
     * limit, go from the stack. A longer value goes from buf itself beside
     * its header, as a two-block datatype: no heap copy (into a fresh
     * 32 MiB malloc it cost more than the send), and Open MPI then sends it
     * in fragments, faster here than its path for one contiguous block
     * (1.7-3.7x on a node, perf/RESULTS.md). */
    uint8_t msg[PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID + PXS_PROXY_MAX];
    bool split = by_value && PXS_MPI_MSG_HDR + body > SPLIT_ABOVE;
    uint32_t id = by_value ? 0 : atomic_fetch_add_explicit(&m->send_seq, 1, memory_order_relaxed);
    pxs_wr32(msg, PXS_MPI_MSG_MAGIC);
    pxs_wr32(msg + 4, by_value ? PXS_MPI_KIND_VALUE : PXS_MPI_KIND_PROXY);
    pxs_wr64(msg + 8, len);
    if (by_value && !split) memcpy(msg + PXS_MPI_MSG_HDR, buf, body);
    if (!by_value) {
        pxs_wr32(msg + PXS_MPI_MSG_HDR, id);
        memcpy(msg + PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID, p->bytes, body - PXS_MPI_MSG_ID);
    }
    int32_t ack[2] = {PXS_OK, 0};
    MPI_Request rq = MPI_REQUEST_NULL;
    int rc = MPI_SUCCESS;
    pthread_mutex_t *lock = by_value ? NULL : &m->send_lock[((unsigned)dest * 31u + (unsigned)tag) % 16];
    if (lock) pthread_mutex_lock(lock);
    if (!by_value) rc = MPI_Irecv(ack, 2, MPI_INT32_T, dest, tag | ACK_TAG, m->comm, &rq);
    if (rc == MPI_SUCCESS && split) {
        MPI_Datatype t;
        if ((rc = split_type(msg, buf, body, &t)) == MPI_SUCCESS) {
            rc = MPI_Send(MPI_BOTTOM, 1, t, dest, tag, m->comm);
            MPI_Type_free(&t);
        }
    } else if (rc == MPI_SUCCESS) {
        rc = MPI_Send(msg, (int)(PXS_MPI_MSG_HDR + body), MPI_BYTE, dest, tag, m->comm);
    }
    st = pxs__mpi_status(rc, "pxs_mpi_send");
    bool acked = false;
    if (!by_value) {
        /* Serve the receiver's get (the connector may need our progress)
         * until it says it is done with our buffer. */
        if (st == PXS_OK && rq != MPI_REQUEST_NULL) {
            st = await_ack(m, &rq, ack, id, dest, tag, deadline);
            acked = st == PXS_OK;
            if (st == PXS_OK && ack[0] == PXS_ERR_UNREACHABLE) {
                if (!atomic_exchange(&m->value_only[dest], 1))
                    pxs_warn("pxs_mpi_send: rank %d cannot read this rank's proxies over "
                             "\"%s\"; it gets bytes by value from now on", dest,
                             near ? "shm" : m->send_conn);
                st = send_value(m, buf, len, dest, tag);
            } else if (st == PXS_OK && ack[0] != PXS_OK) {
                pxs_debug("receiver of a %zu-byte proxy reported %s", len,
                          pxs_strerror((pxs_status_t)ack[0]));
            }
        }
        if (st == PXS_ERR_TIMEOUT)
            pxs_error("pxs_mpi_send: no acknowledgement from rank %d within %d ms", dest,
                      m->timeout_ms);
        /* A receive that was never matched can be cancelled, and then
         * completes at once: ack (on our stack) is not written later. */
        if (rq != MPI_REQUEST_NULL && st != PXS_OK) {
            MPI_Cancel(&rq);
            MPI_Wait(&rq, MPI_STATUS_IGNORE);
        }
        pthread_mutex_unlock(lock);
        pxs__mpi_evict_acked = acked;
        pxs_evict(store, p);
        pxs__mpi_evict_acked = false;
        free(p);
    }
    return st;
}

static pxs_status_t recv_split(MPI_Message *msg, void *hdr, void *body, size_t len,
                               MPI_Status *s)
{
    MPI_Datatype t;
    int rc = split_type(hdr, body, len, &t);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Type_create_hindexed");
    rc = MPI_Mrecv(MPI_BOTTOM, 1, t, msg, s);
    MPI_Type_free(&t);
    return pxs__mpi_status(rc, "MPI_Mrecv");
}

pxs_status_t pxs_mpi_recv(pxs_mpi_t *m, void *buf, size_t cap, size_t *len_p, int source,
                          int tag, MPI_Status *status)
{
    if (!m || (!buf && cap) || tag < 0 || tag >= ACK_TAG || m->leaving)
        return PXS_ERR_INVALID_PARAM;
    MPI_Message msg;
    MPI_Status s;
    pxs_status_t st = probe(m, source, tag, m->comm, m->timeout_ms, &msg, &s);
    if (st != PXS_OK) return st;
    int n = 0;
    MPI_Get_count(&s, MPI_BYTE, &n);
    /* The message is ours now: take it without heap memory where that can
     * be done (a proxy's size on the stack; a longer value that fits goes
     * straight into buf, its header beside it), so running out of memory
     * can lose only a value too long for buf, which is refused anyway. */
    uint8_t small[PXS_MPI_MSG_HDR + PXS_MPI_MSG_ID + PXS_PROXY_MAX], *in = small, *heap = NULL;
    size_t body = n > PXS_MPI_MSG_HDR ? (size_t)n - PXS_MPI_MSG_HDR : 0;
    bool direct = n > (int)sizeof small && body <= cap;
    if (direct) st = recv_split(&msg, small, buf, body, &s);
    else if (n > (int)sizeof small && !(in = heap = malloc((size_t)n))) st = PXS_ERR_NO_MEMORY;
    else st = pxs__mpi_status(MPI_Mrecv(in, n, MPI_BYTE, &msg, &s), "MPI_Mrecv");
    if (status != MPI_STATUS_IGNORE) *status = s;
    if (st == PXS_ERR_NO_MEMORY) return st;
    uint64_t len = 0;
    int kind = -1;
    if (st == PXS_OK) st = pxs__mpi_msg_header(in, (size_t)n, &kind, &len);
    if (st == PXS_OK) {
        if (len_p) *len_p = (size_t)len;
        st = pxs__mpi_msg_body(kind, len, body);
    }
    if (st == PXS_OK && kind == PXS_MPI_KIND_VALUE) {
        if (len > cap) st = PXS_ERR_BUFFER_TOO_SMALL;
        else if (!direct) memcpy(buf, in + PXS_MPI_MSG_HDR, (size_t)len);
    } else if (st == PXS_OK && kind == PXS_MPI_KIND_PROXY) {
        pxs_proxy_t *p = direct ? NULL : malloc(sizeof *p);
        const uint8_t *at = in + PXS_MPI_MSG_HDR;
        st = direct ? PXS_ERR_CORRUPT /* longer than any proxy */
             : p    ? pxs_proxy_decode(at + PXS_MPI_MSG_ID, body - PXS_MPI_MSG_ID, p)
                    : PXS_ERR_NO_MEMORY;
        if (st == PXS_OK) st = pxs_resolve(m->ctx, p, buf, cap, NULL);
        free(p);
        if (st == PXS_ERR_UNREACHABLE && len > cap) st = PXS_ERR_BUFFER_TOO_SMALL;
        /* Whatever happened, the sender may let go of its buffer now,
         * except that UNREACHABLE asks it for the bytes by value. */
        int32_t ack[2] = {st, direct ? 0 : (int32_t)pxs_rd32(at)};
        int rc = MPI_Send(ack, 2, MPI_INT32_T, s.MPI_SOURCE, s.MPI_TAG | ACK_TAG, m->comm);
        if (st == PXS_ERR_UNREACHABLE && rc == MPI_SUCCESS)
            st = recv_value(m, buf, (size_t)len, s.MPI_SOURCE, s.MPI_TAG);
        else if (st == PXS_OK)
            st = pxs__mpi_status(rc, "pxs_mpi_recv acknowledgement");
    }
    free(heap);
    return st;
}
