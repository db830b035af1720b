/* libpxs_mpi internals: the per-communicator state and the pieces that
 * share it (init, directory, messages, the "mpi" connector). */
#ifndef PXS_MPI_INT_H
#define PXS_MPI_INT_H

#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <pxs/mpi.h>
#include "../src/connector.h"
#include "../src/log.h"

/* A region attached to the connector's dynamic window. */
typedef struct {
    uintptr_t start, end;
    uint32_t refs;
} pxs_mpi_region_t;

/* A block of the connector's attached pool: free (first fit, address
 * order), or held (an evicted copy a reader may hold a lease on, in
 * expiry order: free again from until, on the core's clock). */
typedef struct pxs_mpi_blk {
    size_t off, len;
    uint64_t until;
    struct pxs_mpi_blk *next;
} pxs_mpi_blk_t;

struct pxs_mpi {
    MPI_Comm comm;              /* our duplicate */
    int rank, size;
    int timeout_ms;
    pxs_context_t *ctx;
    pxs_store_t *store;         /* "mpi" connector */
    pxs_store_t *send_store;    /* pxs_mpi_send's connector */
    char send_conn[32];         /* ... its name */
    size_t eager_max;
    /* pxs_mpi_send to a rank on this node, when no connector was chosen:
     * shm (NULL near: send_store for everyone). */
    pxs_store_t *node_store;
    uint8_t *near;              /* [size]: 1 where the rank shares our node */
    /* pxs_mpi_send: [size], 1 once the rank said it cannot read our
     * proxies (PXS_ERR_UNREACHABLE): we send it bytes by value since. */
    _Atomic uint8_t *value_only;
    MPI_Comm vcomm;             /* those bytes, apart from every other message */
    _Atomic uint32_t send_seq;  /* ids of proxy sends, named in acknowledgements */
    /* One proxy send at a time per (dest, tag) hash: MPI matches an
     * acknowledgement by rank and tag alone, and the bytes by value after
     * one carry no id, so two in flight to one rank and tag could take
     * each other's (threads). */
    pthread_mutex_t send_lock[16];

    /* directory (mpi_dir.c) */
    MPI_Win dir_win;
    MPI_Win dir_lock_win;       /* one word: its exclusive locks (taken by a flushed get) order writers */
    uint8_t *dir_base;
    uint32_t dir_buckets;

    /* "mpi" connector (mpi_conn.c) */
    MPI_Win win;                /* dynamic; lock_all epoch for our life */
    bool win_open;
    bool epoch;                 /* MPI_Win_lock_all held */
    uint32_t max_attach;
    pxs_mpi_region_t *regions;  /* [max_attach] zero-copy attachments */
    uint32_t nregions;
    size_t pool_size;
    uint8_t *pool;              /* attached once; copying puts land here */
    pxs_mpi_blk_t *pool_free;
    pxs_mpi_blk_t *pool_held, *pool_held_tail; /* evicted copies, leases running */
    const void *tab_attached;   /* generation table, attached once */
    /* [nslots][PXS_MPI_REC]: each slot's record, attached:
     * its object's generation (0: none), address and length. What MPI
     * readers read for the generation, with the extent in the same get,
     * so a proxy forged to name other bytes is CORRUPT. */
    uint64_t *rec;
    /* The window's one-sided component finds the attached region of every
     * address it is asked for (Open MPI's osc/rdma), so a get of memory
     * detached and freed fails at the origin. Others (osc/pt2pt: the
     * target's progress copies from the address it is given) read a
     * zero-copy object's memory only under a lease (mpi_conn.c,
     * lease_first). */
    bool osc_checks;
    /* Gets whose bytes are issued and not yet validated (mpi_conn.c):
     * progress flushes them together. pend_lock guards the list only
     * (get appends outside the context's lock; progress and cancel run
     * under it). */
    pthread_mutex_t pend_lock;
    pxs_request_t *pend_head, *pend_tail;
    uint64_t *gbuf;             /* records read back by one progress ([gbuf_cap][3]) */
    size_t gbuf_cap;
    pxs_conn_node_t node_rd;    /* same-node reads, without MPI (mpi_conn.c, node_get) */
    _Atomic bool node_attach;   /* ... of user buffers too: attach permitted here */
    /* Leases (mpi_lease.c): our lease words, attached; the reader's cache;
     * every rank's tables as it said at init (a proxy must agree). */
    uint32_t lease_us;          /* 0: no leases */
    uint32_t nslots;
    uint64_t *ltab;             /* [nslots] */
    bool ltab_attached;
    struct pxs_mpi_lease *lcache;
    pthread_mutex_t lease_lock; /* lcache */
    struct pxs_mpi_tables *peers; /* [size] */
    uint64_t lease_end;         /* leaving, closing: the last lease of an object evicted */
    bool closing;               /* a store's evicts (dereg_begin..end): wait once */

    MPI_Request fin_req;        /* finalize barrier in flight */
    bool leaving;
    struct pxs_mpi *next;       /* process-wide list, for the connector */
};

/* Words of a slot's record: generation, address, length. */
#define PXS_MPI_REC 3

/* MPI return code to a pxs status (and a log line). */
pxs_status_t pxs__mpi_status(int rc, const char *what);
/* Deadline helpers on the core's clock; timeout_ms < 0: none. */
uint64_t pxs__mpi_deadline(int timeout_ms);
bool pxs__mpi_expired(uint64_t deadline);
/* Between polls of another rank: spin a while, then sleep 50 us at a
 * time (reset *polls to 0 when something happened). */
void pxs__mpi_backoff(unsigned *polls);
/* Wait for an MPI request, driving the context, until the deadline. */
pxs_status_t pxs__mpi_wait(pxs_mpi_t *m, MPI_Request *req, MPI_Status *st, uint64_t deadline);

/* The pxs_mpi_t whose context is ctx (for the connector), or NULL. */
pxs_mpi_t *pxs__mpi_of_ctx(const pxs_context_t *ctx);

pxs_status_t pxs__mpi_dir_create(pxs_mpi_t *m, uint32_t buckets);
void pxs__mpi_dir_close(pxs_mpi_t *m);   /* phase 1 of leaving: local */
void pxs__mpi_dir_free(pxs_mpi_t *m);

pxs_status_t pxs__mpi_conn_setup(pxs_mpi_t *m);
void pxs__mpi_conn_free(pxs_mpi_t *m);
extern const pxs_conn_ops_t pxs__conn_mpi_ops;

/* Leases of the "mpi" connector (mpi_lease.c). */
typedef struct pxs_mpi_lease pxs_mpi_lease_t;
typedef struct {
    int rank;
    uint32_t slot;
    uint64_t tab, gen;  /* the owner's generation table; the proxy's */
    uint64_t lease_ns;  /* the owner's lease (its blob); 0: none */
    /* The bytes the proxy names: a lease is granted only once the slot's
     * record said they are the object's, and holds for them alone (a
     * proxy forged to name others is another key). */
    uint64_t data, size;
} pxs_mpi_lkey_t;
typedef enum {
    PXS_MPI_LEASE_NONE,  /* read the generation after the bytes */
    PXS_MPI_LEASE_MARK,  /* ... and raise the lease word with the bytes: lease from it */
    PXS_MPI_LEASE_HELD   /* leased: bytes back by the lease's end need nothing more */
} pxs_mpi_lplan_t;
/* What every rank attached at init: a proxy's blob must name the same. */
typedef struct pxs_mpi_tables {
    uint64_t tab, ltab;         /* window addresses: generations, lease words (0: none) */
    uint64_t pool, pool_size;   /* ... the pool of copying puts (attached for good) */
    uint64_t rec;               /* ... the slots' records */
    uint32_t slots, lease_us;   /* 0, 0: that rank has no "mpi" store */
} pxs_mpi_tables_t;
/* The lease words (with lease_us) and the reader's cache. */
pxs_status_t pxs__mpi_lease_setup(pxs_mpi_t *m, uint32_t nslots);
/* Collective: every rank's tables into m->peers (ok: ours are set up). */
pxs_status_t pxs__mpi_tables_exchange(pxs_mpi_t *m, bool ok);
void pxs__mpi_lease_free(pxs_mpi_t *m);
/* Reader, at a get issued at now: what to do for k. *exp: the lease's end
 * (HELD; may be past). *renew: read the generation with the bytes too
 * (pxs__mpi_lease_grant from now if it is k's). */
pxs_mpi_lplan_t pxs__mpi_lease_plan(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t now,
                                    uint64_t *exp, bool *renew);
/* Reader: a generation read issued at t0 found k's generation (the word
 * raised before), and k's extent was checked: a lease until
 * t0 + lease_ns / 2. */
void pxs__mpi_lease_grant(pxs_mpi_t *m, const pxs_mpi_lkey_t *k, uint64_t t0);
/* Reader: the end of k's lease now (0: none). */
uint64_t pxs__mpi_lease_until(pxs_mpi_t *m, const pxs_mpi_lkey_t *k);
/* Reader: k is gone (another generation read). */
void pxs__mpi_lease_drop(pxs_mpi_t *m, const pxs_mpi_lkey_t *k);
/* Owner, after revoking o: wait out a lease that may be held on it. While
 * leaving (pxs_mpi_finalize) only note its end in m->lease_end: the
 * windows go after every rank left, and finalize waits it out itself if
 * it returns before that (pxs__mpi_lease_wait_until). While closing a
 * store, note it too: the close waits once, at its end (mc_dereg_end). */
void pxs__mpi_lease_wait(pxs_mpi_t *m, const pxs_object_t *o);
/* Owner, after revoking o: when its memory may be reused (0: now; no
 * lease may be held on it). */
uint64_t pxs__mpi_lease_end(pxs_mpi_t *m, const pxs_object_t *o);
/* Set by pxs_mpi_send (this thread only) around the evict of a proxy its
 * receiver acknowledged: nobody else ever had that proxy, and its
 * receiver's gets are complete, so no lease on it is waited out. */
extern _Thread_local bool pxs__mpi_evict_acked;
/* Wait until the core's clock passes until, serving other ranks' gets
 * meanwhile where the component needs the target for them. */
void pxs__mpi_lease_wait_until(pxs_mpi_t *m, uint64_t until);

void pxs__mpi_datatype_ref(void);
void pxs__mpi_datatype_unref(void);

#endif
