/**
 * @file mpi.h
 * @brief pxs inside an MPI job (library libpxs_mpi, pkg-config pxs-mpi):
 *        rendezvous over a communicator, the "mpi" connector (MPI-RMA),
 *        a distributed named-key directory, and proxies in MPI messages.
 *
 * pxs_mpi_init is collective over a communicator: it creates a context,
 * joins it to the communicator's group through the core's bootstrap table
 * (pxs/bootstrap.h: one allgather of every rank's identity; proxies carry
 * their owner's address, so any rank resolves any other rank's proxy with
 * no lookup), and creates the windows of the directory and of the "mpi"
 * connector.
 *
 * MPI thread levels: pxs_mpi_* calls MPI. With MPI_THREAD_SINGLE,
 * FUNNELED or SERIALIZED the caller serialises every pxs_mpi_* and pxs_*
 * call on the context with its own MPI calls (the context is then
 * PXS_THREAD_SINGLE). With MPI_THREAD_MULTIPLE any thread may call them
 * (ask for PXS_THREAD_MULTIPLE in the context params). pxs_mpi_init
 * queries the level with MPI_Query_thread and refuses PXS_THREAD_MULTIPLE
 * below MPI_THREAD_MULTIPLE (PXS_ERR_INVALID_PARAM).
 *
 * The "mpi" connector: objects are attached to a dynamic window
 * (MPI_Win_create_dynamic + MPI_Win_attach) and resolved with passive-target
 * MPI_Get + MPI_Win_flush inside one MPI_Win_lock_all epoch opened at init;
 * the owner's generation word is read after the bytes, so a proxy evicted
 * or reused meanwhile yields PXS_ERR_EVICTED, never stale bytes, and its
 * address and length with it, so a proxy forged to name other bytes of
 * the owner yields PXS_ERR_CORRUPT. An object
 * read a second time is leased to the reader (lease_us below): while the
 * lease holds, the bytes alone prove themselves, one round trip. Whether
 * the owner's CPU takes part is up to the MPI one-sided component: Open MPI
 * 4.1's osc/rdma reads an ordinary buffer by cross-memory attach on one
 * node (the owner does nothing); over TCP between nodes only osc/pt2pt
 * works, which serves gets with messages when the owner is inside MPI.
 * Zero-copy puts attach the caller's buffer (pxs_alloc memory too), and
 * Open MPI bounds how many regions one window may have: pxs keeps at most
 * max_attach of them (PXS_ERR_NO_RESOURCE beyond); copying puts come from
 * one attached pool and do not count. pxs_resolve_nb leaves gets in
 * flight, and one wait or pxs_progress settles all of them together (two
 * flushes per target). A pxs_alloc object of an owner on the reader's
 * node is read through its shared segment, not MPI (PXS_MPI_NODE_MAP=0:
 * through MPI).
 */
#ifndef PXS_MPI_H
#define PXS_MPI_H

#include <mpi.h>
#include <pxs/pxs.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pxs_mpi pxs_mpi_t;

enum {
    PXS_MPI_PARAM_CONTEXT     = 1u << 0,
    PXS_MPI_PARAM_DIR_BUCKETS = 1u << 1,
    PXS_MPI_PARAM_MAX_ATTACH  = 1u << 2,
    PXS_MPI_PARAM_EAGER_MAX   = 1u << 3,
    PXS_MPI_PARAM_CONNECTOR   = 1u << 4,
    PXS_MPI_PARAM_POOL_SIZE   = 1u << 5,
    PXS_MPI_PARAM_LEASE_US    = 1u << 6
};

typedef struct {
    uint64_t field_mask;
    /** Params of the context pxs_mpi_init creates (NULL: defaults). */
    const pxs_context_params_t *context;
    /** Directory buckets on each rank (4 names each). Default 256;
     *  env PXS_MPI_DIR_BUCKETS. Must be equal on every rank. */
    uint32_t dir_buckets;
    /** Zero-copy regions the "mpi" connector keeps attached at once.
     *  Default 32; env PXS_MPI_MAX_ATTACH. */
    uint32_t max_attach;
    /** pxs_mpi_send sends objects of at most this many bytes by value and
     *  larger ones by proxy. Default SIZE_MAX: by value whatever one MPI
     *  message carries (up to INT_MAX - 16 bytes), by proxy only above, as
     *  by value was the faster at every size measured on a node and across
     *  hosts, 1 KiB to 64 MiB (1 GiB on a node), but for 16-32 MiB across
     *  hosts in one launch of three (perf/RESULTS.md). Env
     *  PXS_MPI_EAGER_MAX. */
    size_t eager_max;
    /** Connector of the store pxs_mpi_send puts into. Default: "shm" for
     *  ranks on this node, and for the others "ucx" where built, else
     *  "mpi". Env PXS_MPI_CONNECTOR (then for every rank). Copied. */
    const char *connector;
    /** Bytes of the "mpi" connector's attached pool for copying puts.
     *  The block of an evicted copy that may be leased is held until the
     *  lease runs out (lease_us); a put that finds no room but held blocks
     *  waits for them (at most lease_us), else it fails at once with
     *  PXS_ERR_NO_RESOURCE. Default 64 MiB; env PXS_MPI_POOL_SIZE. */
    size_t pool_size;
    /** Lease of the "mpi" connector, in microseconds (0: none; at most
     *  10 s). An object that another rank reads a second time through
     *  MPI_Get is leased to it: while a lease holds, its gets take one
     *  round trip instead of two (the generation read after the bytes),
     *  and in exchange its memory is not reused for this long after the
     *  evict: a zero-copy object's evict waits (once for all of a store
     *  that pxs_store_close closes), a copy's evict returns at once and its
     *  pool block is held (pool_size). Objects read once, or only by ranks
     *  on this node, are never held. Default 1000; env PXS_MPI_LEASE_US.
     *  It applies to the objects this rank owns (their proxies carry it);
     *  every rank takes the leases that other owners grant. Under a
     *  one-sided component other than Open MPI's osc/rdma (osc/pt2pt,
     *  which serves a get at any address it is sent), a zero-copy object
     *  is read through MPI_Get only under a lease, from its first read
     *  (three round trips then), so that a reader racing the evict cannot
     *  make the owner copy from memory its caller freed; every such object
     *  read through MPI makes its evict wait, and with lease_us 0 zero-copy
     *  puts are refused there (PXS_ERR_UNSUPPORTED: use PXS_PUT_COPY). */
    uint32_t lease_us;
} pxs_mpi_params_t;

/**
 * Start pxs on comm (collective over comm; comm is duplicated, the caller
 * keeps its own). Creates the context, bootstraps it over comm, creates
 * the directory and connector windows.
 * @return PXS_OK; PXS_ERR_INVALID_PARAM (bad params, MPI not initialised,
 *         a thread mode MPI does not provide, dir_buckets differing between
 *         ranks); PXS_ERR_TIMEOUT (a rank of comm did not join within the
 *         context's timeout: the others return; MPI cannot cancel the
 *         pending collective, so its duplicate communicator and a few bytes
 *         per rank stay allocated until MPI_Finalize);
 *         PXS_ERR_IO (an MPI call failed).
 * Memory: *mpi_p is freed by pxs_mpi_finalize.
 */
pxs_status_t pxs_mpi_init(MPI_Comm comm, const pxs_mpi_params_t *params, pxs_mpi_t **mpi_p);

/**
 * Leave (collective over the communicator). First, with no wait on anyone
 * (leases of the "mpi" connector included: the windows go only once every
 * rank has left), every object this rank owns is evicted and its
 * directory share is closed: from then on other ranks get PXS_ERR_EVICTED for its proxies and
 * PXS_ERR_UNREACHABLE for names homed on it. Then it waits, up to
 * timeout_ms, for every rank to arrive, and frees the windows, the context
 * and mpi.
 * @return PXS_OK; PXS_ERR_TIMEOUT (some rank never called it: nothing is
 *         freed, objects stay evicted, call again; it returns only after
 *         the leases on them ran out, so their memory may be reused).
 */
pxs_status_t pxs_mpi_finalize(pxs_mpi_t *mpi, int timeout_ms);

/** The context pxs_mpi_init created (owned by mpi). */
pxs_context_t *pxs_mpi_context(pxs_mpi_t *mpi);
/** A store of the "mpi" connector, opened at init (owned by mpi). */
pxs_store_t *pxs_mpi_store(pxs_mpi_t *mpi);
/** The library's duplicate of the communicator (owned by mpi). */
MPI_Comm pxs_mpi_comm(pxs_mpi_t *mpi);
/** This rank and the size of the communicator. */
int pxs_mpi_rank(const pxs_mpi_t *mpi);
int pxs_mpi_size(const pxs_mpi_t *mpi);

/* --- distributed directory ----------------------------------------------
 * A name lives on its home rank, chosen by a hash of the name; every rank
 * holds dir_buckets buckets of 4 entries in an MPI_Win_allocate window.
 * A lookup is one MPI_Get of the home bucket plus a flush: one round trip,
 * one-sided (the home rank calls nothing; on one node Open MPI serves it
 * from shared memory). A second round trip happens only when the bucket
 * overflowed or a writer raced the read (entries carry a checksum, so a
 * torn read is retried, never returned). Publish and unpublish hold an
 * exclusive passive-target lock on the home rank (MPI_Win_lock) for the
 * length of the call. Proxies of up to
 * PXS_MPI_DIR_PROXY_MAX encoded bytes fit (PXS_ERR_INVALID_PARAM beyond).
 * Thread safety: as the context's. A lookup never waits for another rank;
 * a publish waits for the home rank's writer lock, which other ranks hold
 * only within their own publish calls. */
#define PXS_MPI_DIR_PROXY_MAX 872

/** Publish proxy under name (PXS_NAME_MAX bytes at most).
 * @return PXS_OK, PXS_ERR_EXISTS, PXS_ERR_NO_RESOURCE (home rank's share
 *         full), PXS_ERR_UNREACHABLE (home rank has left), validation
 *         errors of the proxy. */
pxs_status_t pxs_mpi_name_publish(pxs_mpi_t *mpi, const char *name, const pxs_proxy_t *proxy);
/** @return PXS_OK (*proxy_p set), PXS_ERR_NOT_FOUND, PXS_ERR_UNREACHABLE. */
pxs_status_t pxs_mpi_name_lookup(pxs_mpi_t *mpi, const char *name, pxs_proxy_t *proxy_p);
/** Remove a name this rank published.
 * @return PXS_OK, PXS_ERR_NOT_FOUND, PXS_ERR_NOT_OWNER. */
pxs_status_t pxs_mpi_name_unpublish(pxs_mpi_t *mpi, const char *name);
/** The home rank of a name. */
int pxs_mpi_name_home(const pxs_mpi_t *mpi, const char *name);

/* --- proxies in MPI messages ---------------------------------------------
 * These send only the proxy's encoded bytes (pxs_proxy_len, typically
 * 100-600 bytes). They need no pxs_mpi_t: any communicator will do. */

/** MPI_Send of the proxy's wire form. @return PXS_OK, PXS_ERR_CORRUPT
 *  (not a valid proxy), PXS_ERR_IO (MPI failed). */
pxs_status_t pxs_mpi_send_proxy(const pxs_proxy_t *proxy, int dest, int tag, MPI_Comm comm);
/** Receive a proxy sent by pxs_mpi_send_proxy, waiting at most timeout_ms
 *  for it. The message is matched with MPI_Improbe, polled (spinning, then
 *  sleeping 50 us at a time), and taken with MPI_Mrecv: a timeout takes
 *  nothing, so a later call still gets the message, and under
 *  MPI_THREAD_MULTIPLE no other thread's receive can take it in between.
 *  What arrives is validated before *proxy is written.
 *  @param timeout_ms ms; 0: only a message that has already arrived (one
 *         probe); PXS_TIMEOUT_INFINITE: no bound, as MPI_Recv. There is no
 *         context here, so PXS_TIMEOUT_DEFAULT is refused.
 *  @param status MPI_STATUS_IGNORE, or set whenever a message was taken.
 *  @return PXS_OK; PXS_ERR_TIMEOUT (nothing arrived: nothing taken, *proxy
 *          and *status untouched); PXS_ERR_TRUNCATED/CORRUPT/VERSION (a
 *          message was taken but was not a proxy; *proxy untouched);
 *          PXS_ERR_INVALID_PARAM (proxy NULL, timeout_ms below
 *          PXS_TIMEOUT_INFINITE); PXS_ERR_IO (MPI failed, where comm's error
 *          handler returns errors).
 *  Thread safety: as MPI's at the level it was initialised with. */
pxs_status_t pxs_mpi_recv_proxy(pxs_proxy_t *proxy, int source, int tag, MPI_Comm comm,
                                int timeout_ms, MPI_Status *status);
/** Collective: root's proxy reaches every rank (two MPI_Bcast: length,
 *  bytes; blocking, no timeout). @return PXS_OK; PXS_ERR_TRUNCATED/
 *  CORRUPT/VERSION (root's proxy was not valid: every rank gets an
 *  error); PXS_ERR_NO_MEMORY; PXS_ERR_IO. */
pxs_status_t pxs_mpi_bcast_proxy(pxs_proxy_t *proxy, int root, MPI_Comm comm);
/** A committed datatype of one whole pxs_proxy_t (PXS_PROXY_MAX bytes),
 *  for collectives over arrays of proxies (MPI_Gather, MPI_Scatter), where
 *  every element must have one size. Owned by the library; valid from
 *  pxs_mpi_init until the last pxs_mpi_finalize. MPI_DATATYPE_NULL before. */
MPI_Datatype pxs_mpi_proxy_datatype(void);

/* --- send by size -------------------------------------------------------- */

/** Send len bytes to dest: by value when len <= eager_max (and one MPI
 *  message carries it: len <= INT_MAX - 16), else as a proxy (zero-copy
 *  put into the store of params.connector; by value at every size where
 *  that is the "mpi" connector and it refuses zero-copy puts: lease_us 0
 *  under a component other than osc/rdma); the receiver pulls the bytes
 *  and acknowledges, then the object is evicted. Returns when buf may be
 *  reused (as MPI_Send). No heap memory holds the bytes either way: a
 *  value past Open MPI's shared-memory eager limit goes from buf itself,
 *  a shorter one from a copy on the stack. tag: 0 <= tag < 2^14. A send
 *  by value is an MPI_Send and, like it, may wait unbounded for the
 *  receiver to post its receive (above the MPI's eager limit: 4 KiB for
 *  Open MPI's vader); the context's timeout bounds
 *  only the wait for a proxy's acknowledgement (-1: no bound; 0: it must
 *  be there already, so a send by proxy nearly always gives
 *  PXS_ERR_TIMEOUT). A receiver that cannot read the proxy (the kernel
 *  refuses it this process's memory, the connector has no route to us)
 *  gets the bytes by value instead, and so does every later message to it
 *  (one warning).
 *  @return PXS_OK, PXS_ERR_TIMEOUT (no acknowledgement within the context's
 *  timeout: the object is evicted anyway), errors of pxs_put, PXS_ERR_IO.
 *  Thread safety: per the context's thread mode; sends by proxy from
 *  several threads to one rank with one tag go one at a time (the
 *  acknowledgements are matched by rank and tag), waiting unbounded for
 *  each other. After a send that timed out, the receiver's late
 *  acknowledgement of it is told apart from the next send's by an id. */
pxs_status_t pxs_mpi_send(pxs_mpi_t *mpi, const void *buf, size_t len, int dest, int tag);
/** Receive what pxs_mpi_send sent, into buf (cap bytes); *len_p gets the
 *  length. source may be MPI_ANY_SOURCE; status (may be MPI_STATUS_IGNORE)
 *  gets its MPI_SOURCE and MPI_TAG. Waits for the message up to the
 *  context's timeout (pxs_context_params_t.timeout_ms, PXS_TIMEOUT_MS; 0:
 *  only one that has already arrived; -1: no bound), polling as
 *  pxs_mpi_recv_proxy does and progressing the context meanwhile; the
 *  resolve of a proxy then has a deadline of its own, as long.
 *  A value longer than a proxy that fits in buf is received straight into
 *  it (no copy, no heap memory). A proxy this rank cannot read
 *  (PXS_ERR_UNREACHABLE) is answered by the sender with the bytes by
 *  value, waited for as long.
 *  @return PXS_OK, PXS_ERR_TIMEOUT (no message: nothing consumed, a later
 *  call still gets it), PXS_ERR_BUFFER_TOO_SMALL (the message is consumed
 *  and acknowledged, buf untouched), PXS_ERR_NO_MEMORY (only for a value
 *  too long for buf, which is then consumed too), PXS_ERR_CORRUPT (not a
 *  message of pxs_mpi_send; buf may have been written), resolve errors,
 *  PXS_ERR_IO.
 *  Thread safety: per the context's thread mode. */
pxs_status_t pxs_mpi_recv(pxs_mpi_t *mpi, void *buf, size_t cap, size_t *len_p,
                          int source, int tag, MPI_Status *status);

#ifdef __cplusplus
}
#endif
#endif
