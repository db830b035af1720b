/* The "ucx" connector: one-sided gets over UCP, same node (sm, cma) and
 * across nodes (tcp, verbs), private to transports/ucx/. */
#ifndef PXS_UCX_H
#define PXS_UCX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <ucp/api/ucp.h>

#include "../../src/connector.h"

/* Blob (all little-endian):
 *    0 u16 worker address length   2 u16 data rkey length
 *    4 u16 table rkey length       6 u16 reserved
 *    8 u32 owner pid              12 u32 owner's table slots
 *   16 u64 owner start time       24 u64 owner node id
 *   32 u64 data address           40 u64 address of the generation array
 *   48 worker address, data rkey, table rkey
 *   then, with UCX_BLOB_SEG: u32 pxs_alloc segment id, u64 offset in it */
#define UCX_BLOB_HDR 48

/* A registered region (the registration cache). */
typedef struct ucx_reg {
    uintptr_t start, end;
    ucp_mem_h memh;
    void *rkey;          /* packed */
    size_t rkey_len;
    uint32_t refs;       /* objects (and an allocation) using it */
    bool allocated;      /* from mem_alloc: freed only by mem_free, by exact address */
    struct ucx_reg *next;
} ucx_reg_t;

/* An unpacked remote key, cached per peer by its packed bytes. */
typedef struct {
    uint64_t hash;
    ucp_rkey_h rkey;
} ucx_rkey_t;

/* Gets a caller waits for (pxs__request_waited), of ordinary memory of
 * an owner on this node that polls: how long each way took, smoothed, per
 * power-of-two size (ucx.c, pace_way). Which is sooner is not fixed: UCX's
 * owner-served get answers 8 B in 0.65-0.75 us or, in runs where the owner
 * answers late, 1.5 us, against 1.4 us for a process_vm_readv, and some
 * in 4 ms where the owner's core is shared with a busy process. */
#define UCX_PACE_SIZES 32
#define UCX_HOT 16
/* An owner on this node is asked whether it lives before a get at most
 * this often (a get that fails asks again). */
#define UCX_ALIVE_EVERY_NS 1000000ull
typedef struct {
    _Atomic uint32_t am_ns, cma_ns; /* 0: not yet measured */
    _Atomic uint32_t since;         /* gets the winning way since the other's last try */
} ucx_pace_t;

/* An owner this context reads from. Never freed before fini, so requests
 * may point at it. */
typedef struct {
    uint64_t owner;
    pid_t pid;
    uint64_t start;
    bool same_node;
    int pidfd;                 /* same node: liveness that pid reuse can't fool */
    _Atomic int memfd;         /* same node: its /proc/pid/mem (pxs__proc_read) */
    const pxs_live_page_t *live; /* same node: its liveness page (one load), or NULL */
    uint32_t live_tid;
    _Atomic(ucp_ep_h) ep;      /* NULL after a reset; recreated on use (under the lock) */
    ucp_rkey_h tab_rkey;
    /* Threads using ep, or keys unpacked on it, without the lock: between
     * pxs__ucx_peer_enter and pxs__ucx_peer_leave. A reset waits for them. */
    _Atomic uint32_t users;
    _Atomic uint32_t epoch;    /* resets so far: the keys of an earlier one are gone */
    /* Same node: the owner's beat, mapped; or NULL. This, the mirror and
     * the keys' mappings are read without the lock under this thread's
     * reader flag (transports/shm/shm_rd.h): a reset unmaps them only once
     * no flag is up (ucx_peer.c, keys_drop). */
    _Atomic(const _Atomic uint64_t *) beat;
    /* Same node: the owner's mirror (generations, then extents), mapped,
     * and where it lies there; set with the endpoint, NULL after a reset. */
    _Atomic(uint8_t *) mirror;
    uint64_t tab_addr;
    uint32_t tab_slots;
    ucx_rkey_t *rkeys;
    size_t nrkeys, rkeys_cap;
    _Atomic int failed;        /* UCX reported the peer gone */
    _Atomic int dead;          /* our own liveness check saw it gone */
    _Atomic uint32_t inflight;
    _Atomic int closing;       /* reset in progress: enter refuses */
    _Atomic uint64_t alive_ns; /* last time the same-node owner was seen alive */
    _Atomic uint64_t hold_until; /* same node: read by attach until then (ucx_stall.c) */
    uint64_t hold_ns;          /* the last hold's length (under the lock) */
    bool use_am;               /* owner-validated gets to this owner */
    uint64_t lease_min;        /* am: objects this large are leased, then read by a UCP get */
    ucx_pace_t pace[UCX_PACE_SIZES]; /* same node */
} ucx_peer_t;

/* What the owner exposes per generation-table slot (owner-validated gets). */
typedef struct {
    _Atomic uint64_t addr, len;
    _Atomic uint32_t replies;  /* replies in flight reading the object */
} ucx_slot_t;

/* What the owner exposes per slot in its mirror, after the generations:
 * readers that map the mirror check a proxy's address and length with it
 * (ucx.c mapped_get). Written before the generation is published. */
typedef struct ucx_ext {
    _Atomic uint64_t addr, len;
} ucx_ext_t;

/* Blob flags (header offset 6). */
#define UCX_BLOB_EXTENTS 1u /* the mirror holds extents after the generations */
#define UCX_BLOB_SEG     2u /* the bytes lie in a pxs_alloc segment (ucx_node.c) */
#define UCX_BLOB_BEAT    4u /* the mirror ends with the owner's beat word */
#define UCX_BLOB_UCXMEM  8u /* the bytes lie in memory UCX allocated (mapped_get) */
#define UCX_BLOB_SEG_LEN 12

/* The owner's beat (last word of its mirror): CLOCK_MONOTONIC ns of its
 * latest progress while it polls its worker; 0 while its progress thread
 * sleeps (a wake-up away); 1, long ago, from the start without a thread.
 * A same-node reader takes a fresh beat (UCX_BEAT_FRESH_NS) to mean the
 * owner answers an active message within a microsecond, and any other to
 * mean it may not (asleep, computing, descheduled): then it reads ordinary
 * memory by cross-memory attach (ucx.c, cma_get). Written at most every
 * UCX_BEAT_EVERY_NS: readers load the line on every get. */
#define UCX_BEAT_FRESH_NS 20000u
#define UCX_BEAT_EVERY_NS 10000u
/* An owner whose beat is this old while our gets wait for it, nothing
 * having reached us for as long, has stopped polling with them in flight:
 * ucx_stall.c then reads them by attach and, for UCX_STALL_HOLD_NS, reads
 * all its ordinary memory that way. An owner whose core is shared with a
 * busy process is descheduled every few ms; each time, gets sent while it
 * ran waited for its next slice (busy-owner bandwidth at 64 KiB: 0.59 of
 * MPI_Get). Far above UCX_BEAT_FRESH_NS: on 2 cores a polling owner was
 * seen 28 us without a beat (other threads ran), and one serving a large
 * get sends all along but may not beat within a progress call. */
#define UCX_STALL_NS      200000u
/* The hold's length: the first, and, for an owner that stalls again
 * within UCX_STALL_HOLD_MAX_NS of its last hold's end (a busy core: again
 * and again), twice the last, up to the most. */
#define UCX_STALL_HOLD_NS     50000000ull
#define UCX_STALL_HOLD_MAX_NS 3200000000ull

/* The request of an owner-validated get. */
typedef struct {
    uint64_t id, gen, addr, len;
    uint32_t slot, flags;      /* AM_REQ_* */
} am_req_t;

/* The reader will read the bytes itself with a UCP get: the owner answers
 * with a header only and keeps the object from being evicted (its slot's
 * reply count) until the reader's release message. */
#define AM_REQ_LEASE 1u
/* Answer eager, not by rendezvous: the reader is on another node and the
 * object at most UCX_AM_EAGER_MAX, or UCX_AM_EAGER_BUSY_MAX while other gets
 * to that owner are in flight. Over TCP a rendezvous costs a handshake (and
 * a put's acknowledgement) but lands in the reader's buffer, where an eager
 * reply is copied out of UCX's; alone the handshake shows, among others it
 * overlaps them. Measured across namespace hosts (tcp, mode NONE: ucx_errmode.c),
 * eager / rendezvous: latency 64 KiB 26 / 43 us, 128 KiB 39 / 55 us, 256 KiB
 * 62-70 / 74 us, 1 MiB 230 / 176 us; bandwidth with 64 in flight, 64 KiB
 * 4380 / 3572 MB/s, 128 KiB 4618 / 4576, 256 KiB 4810-4858 / 5363-5481. */
#define AM_REQ_EAGER 2u
#define UCX_AM_EAGER_MAX (256u << 10)
#define UCX_AM_EAGER_BUSY_MAX (128u << 10)

/* Active message ids: "px" .. "p|". AM_BREQ carries requests in its data,
 * AM_BREP answers packed back to back (ucx_batch.c). */
enum { AM_REQ = 0x7078, AM_REP = 0x7079, AM_REL = 0x707a, AM_BREQ = 0x707b, AM_BREP = 0x707c };

typedef struct {
    uint64_t id;
    int32_t status;
    uint32_t lease_ms; /* a lease: how long an evict waits for its release
                        * (LEASE_UNBOUNDED: for ever); 0 otherwise */
} am_rep_t;

#define LEASE_UNBOUNDED UINT32_MAX

/* A request waiting in the reader's batch queue (ucx_batch.c). */
typedef struct {
    ucx_peer_t *peer;
    am_req_t req;
} ucx_bq_t;
#define UCX_BQ_MAX 64

typedef struct ucx {
    pxs_conn_t *conn;
    ucp_context_h uctx;
    ucp_worker_h worker;
    ucp_address_t *addr;
    size_t addr_len;
    pthread_mutex_t lock;     /* regs and peers; never held inside UCX callbacks */
    ucx_reg_t *regs;          /* most recently used first */
    ucx_reg_t *tab_reg;       /* generations of our objects, for remote checks: */
    _Atomic uint64_t *gens;   /* a mirror of the core's table in UCX-allocated
                               * memory, which UCX reads one-sidedly on a node */
    struct ucx_ext *exts;     /* [tab_slots], after gens: each live object's
                               * extent, for readers that map the table */
    _Atomic uint64_t *beat;   /* after exts: see UCX_BEAT_FRESH_NS */
    uint64_t tab_addr;
    uint32_t tab_slots;
    ucx_peer_t **peers;
    size_t npeers, peers_cap;
    ucp_rkey_h *retired;      /* keys a reset took while a reader was in (ucx_peer.c) */
    size_t nretired, retired_cap;
    pid_t pid;
    uint64_t start, node;
    bool err_mode_peer;       /* endpoints to other nodes: UCX peer mode (ucx_errmode.c) */
    /* progress thread */
    bool thread_on;
    pthread_t thread;
    int stop_fd;              /* eventfd that wakes the thread to stop */
    _Atomic int stop;
    uint64_t next_liveness_ns;
    /* owner-validated gets (ucx_am.c) */
    int proto;                /* PXS_UCX_PROTOCOL: UCX_PROTO_* */
    uint64_t lease_min;       /* PXS_UCX_LEASE_MIN: see ucx_am.c */
    bool node_one_sided;      /* UCX_TLS lets same-node gets be one-sided (cma, sm) */
    uint64_t spin_ns;         /* progress thread: keep polling this long after work */
    _Atomic uint32_t own_gets; /* gets of this context in flight: its threads drive the worker */
    _Atomic uint64_t app_progress_ns; /* last pxs_progress by the application (0: never) */
    _Atomic uint32_t app_inside; /* application threads inside pxs__ucx_progress */
    _Atomic uint32_t leases_out; /* leases granted and not yet released: the
                                  * thread polls meanwhile (the reader's get follows) */
    pthread_mutex_t hold_lock; /* leases and replies in flight, by reader (ucx_hold.c) */
    struct ucx_hold *hold_tab;
    uint32_t hold_cap, hold_n;
    ucx_slot_t *slots;        /* [tab_slots] */
    pthread_mutex_t am_lock;  /* the table below; never held while progressing */
    struct ucx_get **am_gets; /* outstanding gets by id index */
    uint32_t *am_free;
    uint32_t am_cap, am_nfree, am_seq;
    ucx_bq_t bq[UCX_BQ_MAX];  /* requests not yet sent (under am_lock) */
    _Atomic uint32_t nbq;
    uint32_t flushing;        /* flushes sending a queue they took (am_lock) */
    struct ucx_wd *wd;        /* withdrawals that wait for them (am_lock; ucx_batch.c) */
    /* same-node reads of pxs_alloc segments (ucx_node.c); on with
     * PXS_UCX_NODE_MAP and node_one_sided */
    pxs_conn_node_t node_rd;
    /* same-node reads of ordinary memory by cross-memory attach (ucx.c,
     * cma_get): objects up to cma_max; off after a refusal */
    _Atomic bool node_cma;
    uint64_t cma_max;
    /* a beat this recent means the owner polls (PXS_UCX_BEAT_FRESH_US) */
    uint64_t beat_fresh_ns;
    _Atomic uint64_t stall_at; /* when ucx_stall.c last looked */
    _Atomic uint64_t event_ns; /* when progress last found work */
    /* owners by owner id & (UCX_HOT - 1), for those reads without the lock */
    _Atomic(ucx_peer_t *) hot[UCX_HOT];
    /* slots of UCP gets in flight (ucx_ops.c) */
    pthread_mutex_t op_lock;
    struct ucx_op *op_free;
    struct ops_chunk *op_chunks;
} ucx_t;

enum { UCX_PROTO_AUTO, UCX_PROTO_AM, UCX_PROTO_RMA };
#define UCX_NODE_CMA_MAX_DEFAULT (512u << 10)
#define UCX_LEASE_MIN_DEFAULT 8192u

/* A get in flight, in the request's connector scratch. */
typedef struct ucx_get {
    ucx_t *u;
    ucx_peer_t *peer;
    pxs_request_t *req;        /* NULL for a synchronous check */
    void *dst;
    uint64_t size;
    uint64_t expect;           /* the proxy's generation */
    /* rma protocol */
    struct ucx_op *op;         /* the UCP get in flight (under u->op_lock) */
    _Atomic int cancelled;     /* stop after the UCP get in flight */
    uint64_t tab_raddr, data_raddr;
    ucp_rkey_h rkey;
    int32_t phase;             /* 0: generation before, 1: bytes, 2: generation after */
    _Atomic int32_t result;    /* for checks: PXS_INPROGRESS until done */
    /* am protocol */
    uint64_t id;
    am_req_t am_hdr;           /* its request (sent from a copy) */
    struct ucx_rndv *rndv;     /* rendezvous receive into dst (ucx_am.c; am_lock) */
    _Atomic int receiving;
    bool lease;                /* ask for a lease, then get the bytes (ucx_am.c) */
    bool leased;               /* the owner holds the object for us: release it */
    uint64_t pace_t0;          /* its time feeds peer->pace from then (ucx.c); 0: not */
    uint8_t pace;              /* how it counts there (ucx.c, PACE_WIN/PACE_TRY) */
    bool attach;               /* am, same node: readable by attach (ucx_stall.c) */
    _Atomic bool asked;        /* its lease request has gone to UCX: a withdrawal may follow */
    uint32_t epoch;            /* the peer's when rkey was taken (under the lock) */
    uint64_t sent_ns;          /* when the get started (start, ucx.c): before
                                * its lease was asked for, if any */
    uint64_t lease_until_ns;   /* bytes read by then need no generation check */
} ucx_get_t;

void pxs__ucx_get_finish(ucx_get_t *g, pxs_status_t st);

/* ucx_ops.c: a UCP get's slot, its callback's user data. The callback
 * takes its get back with op_done (NULL: given up on, nothing to do);
 * give_up detaches the get of g's UCP get in flight (false: none), so a
 * late callback leaves g alone. give_up_peer does so for some get to q and
 * returns it (NULL: none left). */
typedef struct ucx_op {
    ucx_t *u;
    struct ucx_get *g;
    uint64_t gen; /* a generation read lands here */
    struct ucx_op *next_free;
} ucx_op_t;
void pxs__ucx_ops_init(ucx_t *u);
void pxs__ucx_ops_fini(ucx_t *u); /* after the worker */
ucx_op_t *pxs__ucx_op_take(ucx_get_t *g);
ucx_get_t *pxs__ucx_op_done(ucx_op_t *op, uint64_t *gen);
bool pxs__ucx_op_give_up(ucx_get_t *g);
ucx_get_t *pxs__ucx_op_give_up_peer(ucx_t *u, const ucx_peer_t *q);
/* The rma protocol from its data phase: bytes, then the generation. */
void pxs__ucx_rma_data(ucx_get_t *g);

/* ucx.c: read an unanswered am get g (g->attach) by attach, with the
 * checks of a same-node read, as if the owner had answered. */
pxs_status_t pxs__ucx_attach_read(ucx_get_t *g);
/* ucx_stall.c: called by progress; see UCX_STALL_NS. */
void pxs__ucx_stall_check(ucx_t *u, uint64_t now);

/* ucx_am.c */
pxs_status_t pxs__ucx_am_init(ucx_t *u);
void pxs__ucx_am_fini(ucx_t *u);
void pxs__ucx_am_expose(ucx_t *u, uint32_t slot, const void *addr, size_t len);
void pxs__ucx_am_revoke(ucx_t *u, uint32_t slot);
pxs_status_t pxs__ucx_am_get(ucx_get_t *g, uint64_t addr, uint32_t slot);
bool pxs__ucx_am_cancel(ucx_get_t *g);
/* A get whose rendezvous receive outlived the close of its endpoint: it
 * ends now (PXS_ERR_TIMEOUT), a late callback finds nothing. True if so. */
bool pxs__ucx_am_abandon(ucx_get_t *g);
void pxs__ucx_am_peer_reset(ucx_t *u, const ucx_peer_t *q);
/* Release g's lease: the owner ends the lease it granted for g's request
 * (ucx_hold.c). */
void pxs__ucx_am_release(ucx_get_t *g);
/* Take the get of id out of the reader's table (NULL: cancelled or done). */
ucx_get_t *pxs__ucx_am_take(ucx_t *u, uint64_t id);
/* Up to max ids of gets waiting for an owner on this node that stalls
 * (ucx_stall.c): readable by attach, sent UCX_STALL_NS ago or more, to an
 * owner held. */
size_t pxs__ucx_am_stalled(ucx_t *u, uint64_t now, uint64_t *ids, size_t max);
/* Take the get of id out of the table to read it ourselves: a cancel then
 * waits until it completes (NULL: cancelled or done). Its request is
 * withdrawn (a lease or reply the owner holds for it ends). */
ucx_get_t *pxs__ucx_am_take_to_read(ucx_t *u, uint64_t id);
/* Settle the get a reply answers, its bytes (if any) all in data. */
void pxs__ucx_am_settle(ucx_t *u, const am_rep_t *r, const void *data, size_t len);
/* Owner: check a request and say what to answer (ucx_am.c), and send one
 * answer by itself. */
void pxs__ucx_am_answer(ucx_t *u, ucp_ep_h ep, const am_req_t *q, am_rep_t *hdr,
                        ucx_slot_t **slot_p, const void **src, size_t *n);
/* The owner's holds (ucx_hold.c): note one for ep's request id, a lease
 * or a reply in flight (false: no memory); take it out (false: none such;
 * else its slot and kind); take out those of a slot (an evict that gave
 * up waiting; returns how many, *leases_p of them leases). Thread-safe. */
typedef struct ucx_hold ucx_hold_t;
void pxs__ucx_hold_init(ucx_t *u);
void pxs__ucx_hold_fini(ucx_t *u);
bool pxs__ucx_hold_add(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t slot, bool lease);
bool pxs__ucx_hold_drop(ucx_t *u, ucp_ep_h ep, uint64_t id, uint32_t *slot_p, bool *lease_p);
uint32_t pxs__ucx_hold_drop_slot(ucx_t *u, uint32_t slot, uint32_t *leases_p);
void pxs__ucx_am_reply(ucx_t *u, ucp_ep_h ep, const am_rep_t *hdr, ucx_slot_t *slot,
                       const void *src, size_t n, bool eager);
/* Send an active message (UCP_AM_SEND_FLAG_* in flags). cb runs exactly
 * once with arg: from UCX when the send completes later, or here when it
 * completes or fails at once (request NULL). */
void pxs__ucx_am_send(ucp_ep_h ep, unsigned id, const void *hdr, size_t hdr_len, const void *data,
                      size_t len, uint32_t flags, ucp_send_nbx_callback_t cb, void *arg);
/* Batches (ucx_batch.c): queue a request, send the queue, the handlers.
 * withdraw: g was given up (out of the table): its request leaves the
 * queue if it is still there, else a withdrawal follows it to the owner
 * (pxs__ucx_am_send_rel), once any flush that may carry it has sent. */
void pxs__ucx_batch_add(ucx_get_t *g);
void pxs__ucx_batch_flush(ucx_t *u);
void pxs__ucx_batch_withdraw(ucx_get_t *g);
void pxs__ucx_batch_fini(ucx_t *u);
/* Send the release (or withdrawal) of request id to the owner q. */
void pxs__ucx_am_send_rel(ucx_peer_t *q, uint64_t id);
pxs_status_t pxs__ucx_batch_init(ucx_t *u);

/* ucx_worker.c */
/* Publish that this owner polls now (now_ns), or, 0, that it sleeps. */
static inline void pxs__ucx_beat(ucx_t *u, uint64_t now_ns)
{
    uint64_t was = atomic_load_explicit(u->beat, memory_order_relaxed);
    if (now_ns ? now_ns - was >= UCX_BEAT_EVERY_NS : was != 0)
        atomic_store_explicit(u->beat, now_ns, memory_order_relaxed);
}
pxs_status_t pxs__ucx_status(ucs_status_t st);
/* A number from the environment, strictly: digits only, at most max. */
pxs_status_t pxs__ucx_env_num(const char *name, uint64_t dflt, uint64_t max, const char *unit,
                              uint64_t *out);
pxs_status_t pxs__ucx_worker_init(ucx_t *u);
/* PXS_UCX_ERR_MODE: sets err_mode_peer (ucx_errmode.c). */
pxs_status_t pxs__ucx_err_mode_init(ucx_t *u);
/* Start the progress thread (PXS_UCX_PROGRESS_THREAD), once the mirror
 * it beats into exists. */
pxs_status_t pxs__ucx_thread_start(ucx_t *u);
void pxs__ucx_thread_stop(ucx_t *u);
void pxs__ucx_worker_fini(ucx_t *u); /* after the thread stopped and the peers closed */
int pxs__ucx_progress(pxs_conn_t *conn);

/* ucx_mem.c */
pxs_status_t pxs__ucx_reg_get(ucx_t *u, void *addr, size_t len, ucx_reg_t **reg_p);
void pxs__ucx_reg_put(ucx_t *u, ucx_reg_t *reg);
void pxs__ucx_regs_fini(ucx_t *u);
pxs_status_t pxs__ucx_mem_alloc(pxs_conn_t *conn, size_t len, void **ptr_p);
void pxs__ucx_mem_free(pxs_conn_t *conn, void *ptr);
pxs_status_t pxs__ucx_mem_reg(pxs_conn_t *conn, pxs_object_t *obj);
void pxs__ucx_mem_dereg(pxs_conn_t *conn, pxs_object_t *obj);
pxs_status_t pxs__ucx_pack(pxs_conn_t *conn, const pxs_object_t *obj, uint8_t *blob, size_t cap,
                           size_t *len_p);

/* ucx_peer.c */
typedef struct {
    uint16_t addr_len, rkey_len, tab_rkey_len, flags;
    pid_t pid;
    uint32_t tab_slots;
    uint64_t start, node, data_addr, tab_addr;
    const uint8_t *addr, *rkey, *tab_rkey;
    uint32_t seg;             /* UCX_BLOB_SEG: segment id, else 0 */
    uint64_t seg_off;
} ucx_blob_t;
pxs_status_t pxs__ucx_blob_parse(const pxs_pdesc_t *p, ucx_blob_t *b);

/* ucx_node.c: same-node paths, on unless PXS_UCX_NODE_MAP=0 or UCX_TLS
 * rules shared memory out (PXS_ERR_INVALID_PARAM: a bad
 * PXS_UCX_NODE_CMA_MAX). */
pxs_status_t pxs__ucx_node_init(ucx_t *u);
void pxs__ucx_node_fini(ucx_t *u);
/* Read (dst) or check (dst NULL) an object of a pxs_alloc segment of an
 * owner on this node through the mapped segment. PXS_ERR_UNSUPPORTED:
 * not such an object, or not here; use UCX. */
pxs_status_t pxs__ucx_node_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b, void *dst);
/* Handles of such objects: the shm reader's, pinned once (open gives
 * PXS_ERR_UNSUPPORTED for any other object). */
pxs_status_t pxs__ucx_node_open(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                                void **state_p);
pxs_status_t pxs__ucx_node_read(ucx_t *u, const pxs_pdesc_t *p, void *state, uint64_t off,
                                void *dst, size_t len);
void pxs__ucx_node_close(ucx_t *u, const pxs_pdesc_t *p, void *state);
/* Find or connect the owner; caller holds u->lock. */
pxs_status_t pxs__ucx_peer_get(ucx_t *u, const pxs_pdesc_t *p, const ucx_blob_t *b,
                               uint64_t now, ucx_peer_t **peer_p, ucp_rkey_h *rkey_p);
pxs_status_t pxs__ucx_peer_alive(const ucx_peer_t *q);
/* Force-close a peer's endpoint: its gets complete, cancelled; caller holds
 * u->lock and is not inside a UCX callback, nor between enter and leave. */
void pxs__ucx_peer_reset(ucx_t *u, ucx_peer_t *q);

/* A get's UCP call, or a message, on q's endpoint outside u->lock: between
 * enter and leave the endpoint and the keys of *epoch (NULL: any, for a
 * message that needs no key) stay; a reset waits for leave. False: a
 * reset is under way, or one came since *epoch: use neither. Around the
 * call alone, and never with u->lock held: the reset waits for leave
 * under that lock. seq_cst, as the reset's closing: one sees the other. */
static inline bool pxs__ucx_peer_enter(ucx_peer_t *q, const uint32_t *epoch)
{
    atomic_fetch_add(&q->users, 1);
    if (!atomic_load(&q->closing) && atomic_load(&q->ep) &&
        (!epoch || atomic_load(&q->epoch) == *epoch))
        return true;
    atomic_fetch_sub(&q->users, 1);
    return false;
}

static inline void pxs__ucx_peer_leave(ucx_peer_t *q)
{
    atomic_fetch_sub_explicit(&q->users, 1, memory_order_release);
}
void pxs__ucx_peers_check(ucx_t *u);
/* Finalize in two steps: close every endpoint, and, once the worker is
 * destroyed, free the peers. A get still queued on an endpoint that never
 * finished connecting (an owner that stopped serving) is completed only by
 * ucp_worker_destroy, and its callback reads its peer. */
void pxs__ucx_peers_close(ucx_t *u);
void pxs__ucx_peers_free(ucx_t *u);

#endif
