/* The connector interface: one ops table per connector, shaped for RDMA.
 *
 * A connector sees this header, the public ones, and the core's service
 * headers (log.h, seg.h, objtab.h, wire.h), never pxs_int.h. The core owns
 * objects, generations and requests; a connector exposes memory (register,
 * pack remote access into the proxy blob, revoke) and reads it (a one-sided
 * get into the caller's destination, completed now or later through the
 * request engine). Slots a connector lacks point at the pxs__conn_unsup_*
 * stubs, never NULL, so the core calls without checks.
 */
#ifndef PXS_CONNECTOR_INT_H
#define PXS_CONNECTOR_INT_H

#include <pxs/pxs.h>
#include "objtab.h"
#include "seg.h"
#include "wire.h"

typedef struct pxs_conn pxs_conn_t;
typedef struct pxs_object pxs_object_t;

/* An object a context owns, indexed by its generation-table slot. What a
 * connector exposes is [addr, +len); seg is the shared segment holding it,
 * if any; memh is the connector's own registration handle. */
struct pxs_object {
    pxs_store_t *store;   /* NULL while the slot is free */
    void *addr;
    size_t len;
    uint64_t key;
    uint64_t gen;
    uint32_t slot;
    uint8_t memtype;
    bool copied;          /* addr came from the connector's mem_alloc */
    pxs_seg_t *seg;       /* alloc segment holding [addr, +len), or NULL */
    void *memh;           /* connector registration */
};

typedef struct pxs_conn_ops {
    size_t size;          /* sizeof(pxs_conn_ops_t) the connector was built with */
    const char *name;
    uint8_t id;           /* pxs_connector_id_t, carried in proxies */
    uint64_t caps;        /* PXS_CAP_* */
    uint64_t memtypes;    /* 1 << pxs_memtype_t */
    const char *summary;

    /* Per-context instance: set conn->priv. */
    pxs_status_t (*init)(pxs_conn_t *conn);
    void (*fini)(pxs_conn_t *conn);

    /* Producer side. mem_alloc/mem_free give connector-owned memory that is
     * cheapest to expose (copying puts land there). mem_reg exposes
     * [obj->addr, +obj->len) for remote reads (zero copy) and may keep a
     * handle in obj->memh; mem_dereg revokes it (evict). pack_remote writes
     * what a reader needs (address, rkey, segment) into the proxy blob. */
    pxs_status_t (*mem_alloc)(pxs_conn_t *conn, size_t len, void **ptr_p);
    void (*mem_free)(pxs_conn_t *conn, void *ptr);
    pxs_status_t (*mem_reg)(pxs_conn_t *conn, pxs_object_t *obj);
    void (*mem_dereg)(pxs_conn_t *conn, pxs_object_t *obj);
    pxs_status_t (*pack_remote)(pxs_conn_t *conn, const pxs_object_t *obj,
                                uint8_t *blob, size_t cap, size_t *len_p);

    /* Consumer side. get reads the whole object into dst (p->size bytes),
     * validating the generation so a stale proxy never yields bytes. It
     * returns the final status, or (only with PXS_CAP_NONBLOCKING in
     * caps) PXS_INPROGRESS and later calls pxs__request_complete(req,
     * status) from progress. Without that cap req lives on the caller's
     * stack and must not be kept. */
    pxs_status_t (*get)(pxs_conn_t *conn, const pxs_pdesc_t *p, void *dst,
                        pxs_request_t *req);
    void (*cancel)(pxs_conn_t *conn, pxs_request_t *req);
    /* Is the object still live at its owner? */
    pxs_status_t (*check)(pxs_conn_t *conn, const pxs_pdesc_t *p);
    /* Zero-copy read-only pointer to the object's bytes, if mappable. */
    pxs_status_t (*view)(pxs_conn_t *conn, const pxs_pdesc_t *p, const void **data_p);
    /* The view of p is released: its mapping may go. */
    void (*view_release)(pxs_conn_t *conn, const pxs_pdesc_t *p);
    /* Drive outstanding gets; returns how many completed. */
    int (*progress)(pxs_conn_t *conn);
    /* Optional (NULL: pxs_handle_read falls back to get of the whole
     * object). open does once what every read of p needs (find the owner,
     * map, pin) into *state; read copies len bytes at off (in range) into
     * dst before it returns, validating the generation as get does
     * (PXS_ERR_UNSUPPORTED: not for this object; the core then gets the
     * whole object); close undoes open. */
    pxs_status_t (*open)(pxs_conn_t *conn, const pxs_pdesc_t *p, void **state_p);
    pxs_status_t (*read)(pxs_conn_t *conn, const pxs_pdesc_t *p, void *state, uint64_t off,
                         void *dst, size_t len);
    void (*close)(pxs_conn_t *conn, const pxs_pdesc_t *p, void *state);
    /* Optional, for connectors with PXS_CAP_NONBLOCKING: a get that is
     * done before it returns (a mapped segment of this node, the caller's
     * own object) without a request, so the core takes none from the pool
     * (its lock). PXS_ERR_UNSUPPORTED: this get needs one; the core then
     * calls get, which need not try again what get_now did. Any other
     * status is the get's final one. waited: the caller waits for this
     * get at once (a blocking resolve or handle read), so its latency
     * counts, not the throughput of gets in flight together; a connector
     * with two ways to an object may then take the one that answers a
     * lone get sooner (ucx.c, pace). */
    pxs_status_t (*get_now)(pxs_conn_t *conn, const pxs_pdesc_t *p, void *dst, bool waited);
    /* Optional: a store closes (pxs_store_close, under the context's lock).
     * Every mem_dereg between dereg_begin and dereg_end is one of its
     * evicts, and the memory of those objects is reused only after
     * dereg_end returns: a connector whose evict waits before that reuse
     * (mpi's leases) waits there once for all of them, not once each. */
    void (*dereg_begin)(pxs_conn_t *conn);
    void (*dereg_end)(pxs_conn_t *conn);
} pxs_conn_ops_t;

struct pxs_conn {
    const pxs_conn_ops_t *ops;
    pxs_context_t *ctx;
    void *priv;
    uint64_t uid; /* unique in the process, never reused: routes (wire.h) name it */
};

/* Shared "not supported" slots. */
pxs_status_t pxs__conn_unsup_mem_alloc(pxs_conn_t *, size_t, void **);
void pxs__conn_unsup_mem_free(pxs_conn_t *, void *);
pxs_status_t pxs__conn_unsup_get(pxs_conn_t *, const pxs_pdesc_t *, void *, pxs_request_t *);
void pxs__conn_noop_cancel(pxs_conn_t *, pxs_request_t *);
pxs_status_t pxs__conn_unsup_view(pxs_conn_t *, const pxs_pdesc_t *, const void **);
void pxs__conn_noop_view_release(pxs_conn_t *, const pxs_pdesc_t *);
int pxs__conn_noop_progress(pxs_conn_t *);

/* Core services for connectors. */
/* The generation table of a live context of this process, or NULL. On
 * success the context cannot be finalized until pxs__conn_local_release. */
const pxs_objtab_t *pxs__conn_local_acquire(uint64_t owner_id);
void pxs__conn_local_release(void);
/* Close every store of ctx, evicting their objects (libpxs_mpi, leaving). */
void pxs__conn_close_stores(pxs_context_t *ctx);
/* Identity of the context a connector instance belongs to. */
uint64_t pxs__conn_owner_id(const pxs_conn_t *conn);

/* Memory from pxs_alloc-style shared segments of the context: the default
 * mem_alloc/mem_free for connectors that have nothing better. */
pxs_status_t pxs__conn_seg_mem_alloc(pxs_conn_t *, size_t, void **);
void pxs__conn_seg_mem_free(pxs_conn_t *, void *);

/* Complete an asynchronous get (from progress, any thread). */
void pxs__request_complete(pxs_request_t *req, pxs_status_t status);
pxs_status_t pxs__request_status(const pxs_request_t *req);
/* Per-request scratch for a connector: PXS_REQ_SCRATCH bytes, 8-aligned,
 * uninitialised when get is called (get sets all that cancel, progress and
 * later calls read). */
#define PXS_REQ_SCRATCH 192
void *pxs__request_scratch(pxs_request_t *req);
/* The generation table of the context a connector instance belongs to
 * (to expose it to remote readers). */
const pxs_objtab_t *pxs__conn_objtab(const pxs_conn_t *conn);
/* FNV-1a-style 64-bit hash of bytes (the core's: domain ids, names). */
uint64_t pxs__hash64(const void *buf, size_t len);
/* Monotonic clock in ns (the core's; one clock for every deadline). */
uint64_t pxs__now_ns(void);
/* memcpy, with the CPU's string copy for large sizes where that is faster
 * (util.c says where). Inline: small copies go straight to memcpy. */
#define PXS_COPY_MOVSB_MIN (512u << 10)
void pxs__copy_large(void *dst, const void *src, size_t n);
static inline void pxs__copy(void *dst, const void *src, size_t n)
{
    if (n < PXS_COPY_MOVSB_MIN) memcpy(dst, src, n);
    else pxs__copy_large(dst, src, n);
}
/* Timeout (ms, -1 none) of the context a connector belongs to. */
int pxs__conn_timeout_ms(const pxs_conn_t *conn);

/* Add a connector of a companion library (libpxs_mpi): process-wide, for
 * every context, until exit. PXS_OK (also if already added),
 * PXS_ERR_EXISTS (another one has its id or name), PXS_ERR_NO_RESOURCE. */
pxs_status_t pxs__conn_register(const pxs_conn_ops_t *ops);

/* Built-in connectors (transports/<name>/). */
extern const pxs_conn_ops_t pxs__conn_local_ops;
extern const pxs_conn_ops_t pxs__conn_shm_ops;
/* The shm connector's blob (PXS_SHM_BLOB_LEN bytes) for an object of process
 * pid (started at start) on node: in its segment seg at offset where, or
 * (seg 0) at address where. Other connectors hand such objects to it. */
#define PXS_SHM_BLOB_LEN 32
void pxs__shm_blob_write(uint8_t *b, pid_t pid, uint32_t seg, uint64_t start, uint64_t node,
                         uint64_t where);
uint64_t pxs__shm_blob_node(const uint8_t *b);
/* What such a blob says, field by field. */
typedef struct {
    pid_t pid;
    uint32_t seg;
    uint64_t start, node, where;
} pxs_shm_loc_t;
void pxs__shm_blob_read(const uint8_t *b, pxs_shm_loc_t *l);
/* The shm connector's get (dst NULL: its check) of p's object at l, which
 * another connector read from its own blob; p's blob is not looked at. */
pxs_status_t pxs__shm_get_at(pxs_conn_t *shm, const pxs_pdesc_t *p, const pxs_shm_loc_t *l,
                             void *dst);

/* Same-node reads of pxs_alloc objects for connectors whose own path
 * cannot map an owner's memory (ucx: UCX 1.13 maps only memory it
 * allocated; mpi: a dynamic window is never shared memory). Their proxy
 * of an object in a pxs_alloc segment also carries the shm connector's
 * blob of it, and a reader on the owner's node reads through the shm
 * reader held here: segment mapped once, offset bounds-checked,
 * generation before and after the copy, the owner's liveness page
 * (src/conn_node.c). One per connector instance; calls on it follow the
 * shm connector's thread rules (any thread). */
typedef struct {
    pxs_conn_t shm;
    bool on;
} pxs_conn_node_t;
/* Start the reader (on failure the instance stays off: every call then
 * answers PXS_ERR_UNSUPPORTED) and stop it. */
pxs_status_t pxs__conn_node_init(pxs_conn_node_t *n, pxs_context_t *ctx);
void pxs__conn_node_fini(pxs_conn_node_t *n);
/* The shm blob of obj (PXS_SHM_BLOB_LEN bytes), an object of conn's
 * context, for its proxy: its segment and offset, or for ordinary memory
 * segment 0 and its address (read by attach, pxs__proc_read). */
void pxs__conn_node_blob(const pxs_conn_t *conn, const pxs_object_t *obj, uint8_t *sb);
/* Does the shm blob sb name ordinary memory (read by attach)? Then
 * *addr_p gets its address. */
bool pxs__conn_node_attach(const uint8_t *sb, uint64_t *addr_p);
/* Read p's bytes into dst (NULL: check only) through its shm blob sb.
 * PXS_ERR_UNSUPPORTED: the owner is on another node, or the reader is
 * off (the caller's own path then serves). */
pxs_status_t pxs__conn_node_get(pxs_conn_node_t *n, const pxs_pdesc_t *p, const uint8_t *sb,
                                void *dst);
/* The same for a location read from the caller's own blob. */
pxs_status_t pxs__conn_node_get_at(pxs_conn_node_t *n, const pxs_pdesc_t *p,
                                   const pxs_shm_loc_t *l, void *dst);
/* Handle ops through the reader (open: PXS_ERR_UNSUPPORTED as for get;
 * the state keeps what it needs of sb). */
pxs_status_t pxs__conn_node_open(pxs_conn_node_t *n, const pxs_pdesc_t *p, const uint8_t *sb,
                                 void **state_p);
pxs_status_t pxs__conn_node_read(pxs_conn_node_t *n, const pxs_pdesc_t *p, void *state,
                                 uint64_t off, void *dst, size_t len);
void pxs__conn_node_close(pxs_conn_node_t *n, const pxs_pdesc_t *p, void *state);
extern const pxs_conn_ops_t pxs__conn_ucx_ops; /* with PXS_HAVE_UCX */

#endif
