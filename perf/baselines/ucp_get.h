/* The raw UCP get baseline (see /work/shared/PERF.md): what a program that
 * reads another process's memory with UCP writes by hand, and nothing more.
 *
 * Owner:    ucpb_init, ucpb_map (an ordinary buffer, or UCP_MEM_MAP_ALLOCATE
 *           memory when buf is NULL; the rkey is packed), ucpb_address for
 *           the worker address, ucpb_thread_start so that gets from ordinary
 *           memory (emulated with active messages on this UCX over sm and tcp)
 *           are served.
 * Consumer: ucpb_init, ucpb_connect (endpoint from the owner's worker
 *           address), ucp_ep_rkey_unpack, then ucpb_get: one ucp_get_nbx and
 *           a wait on its request, progressing the worker.
 *
 * Used by pxs_bench_ucx, in the same run and under the same UCX_TLS as the
 * pxs numbers. Functions print what failed to stderr and return the UCX
 * status. */
#ifndef PXS_PERF_UCP_GET_H
#define PXS_PERF_UCP_GET_H

#include <stddef.h>
#include <stdint.h>
#include <ucp/api/ucp.h>

typedef struct ucpb ucpb_t; /* one UCP context and one worker */

/* A region the owner exposes. */
typedef struct {
    void *addr;
    size_t len;
    ucp_mem_h memh;
    void *rkey; /* packed */
    size_t rkey_len;
    int allocated; /* UCP_MEM_MAP_ALLOCATE */
} ucpb_region_t;

/* multi_thread: the worker is UCS_THREAD_MODE_MULTI (an owner whose progress
 * thread runs beside a main thread), else SINGLE (the consumer). */
ucs_status_t ucpb_init(int multi_thread, ucpb_t **u_p);
/* The same, single-threaded, with active messages too (ucp_am_get.h). */
ucs_status_t ucpb_init_am(ucpb_t **u_p);
/* Stops the progress thread if running; endpoints must be closed first. */
void ucpb_fini(ucpb_t *u);
ucp_worker_h ucpb_worker(ucpb_t *u);
void ucpb_address(const ucpb_t *u, const void **addr_p, size_t *len_p);

/* buf NULL: UCX allocates len bytes (UCP_MEM_MAP_ALLOCATE); else buf is
 * mapped as it is. */
ucs_status_t ucpb_map(ucpb_t *u, void *buf, size_t len, ucpb_region_t *r);
void ucpb_unmap(ucpb_t *u, ucpb_region_t *r);

/* Owner progress thread. While *busy (shared memory, may be another
 * process's) is non-zero it spins on ucp_worker_progress: the best an
 * owner can do. Otherwise it sleeps on the worker's event fd, armed, with
 * a 1 ms poll timeout: the same loop as pxs's own progress thread. */
ucs_status_t ucpb_thread_start(ucpb_t *u, const int *busy);
void ucpb_thread_stop(ucpb_t *u);

/* Consumer. Error handling mode NONE (what pxs asks for on one node). */
ucs_status_t ucpb_connect(ucpb_t *u, const void *addr, ucp_ep_h *ep_p);
void ucpb_disconnect(ucpb_t *u, ucp_ep_h ep); /* force close */

/* One get, waited for: ucp_get_nbx, then ucp_worker_progress until its
 * request completes. UCS_ERR_TIMED_OUT after timeout_ms. */
ucs_status_t ucpb_get(ucpb_t *u, ucp_ep_h ep, void *dst, size_t len, uint64_t raddr,
                      ucp_rkey_h rkey, int timeout_ms);

/* window gets of the same bytes into the same dst in flight at once (the
 * shape of osu_get_bw), then a wait for all of them. window <= UCPB_WINDOW_MAX. */
#define UCPB_WINDOW_MAX 64
ucs_status_t ucpb_get_window(ucpb_t *u, ucp_ep_h ep, void *dst, size_t len, uint64_t raddr,
                             ucp_rkey_h rkey, int window, int timeout_ms);

#endif
