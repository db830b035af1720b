/* The raw UCP active-message get baseline: the mechanism pxs's ucx
 * connector uses to read across nodes (transports/ucx/ucx_am.c), written
 * by hand with nothing of pxs's around it: the reader sends a small request
 * (offset, length), the owner's handler answers on the reply endpoint with
 * the bytes, eager or by rendezvous as pxs chooses (eager up to 256 KiB
 * when it is the only get in flight, up to 128 KiB among others: ucx.h's
 * UCX_AM_EAGER_MAX and UCX_AM_EAGER_BUSY_MAX), and the reader takes an
 * eager reply with a memcpy and a rendezvous one with ucp_am_recv_data_nbx
 * straight into its buffer. No validation, no table, no lease.
 *
 * Over TCP, where UCX 1.13 emulates ucp_get with active messages (about a
 * third of the bandwidth), this is the ceiling of what a UCX program can
 * do to read another node's memory; pxs's ratio to it is what pxs adds.
 *
 * Owner:  ucpb_init_am, ucpb_map, ucpb_am_open(u, region): requests are
 *         served from the region while the owner progresses its worker.
 * Reader: ucpb_init_am, ucpb_connect, ucpb_am_open(u, NULL), ucpb_am_get.
 * Functions print what failed to stderr and return the UCX status. */
#ifndef PXS_PERF_UCP_AM_GET_H
#define PXS_PERF_UCP_AM_GET_H

#include "ucp_get.h"

typedef struct ucpb_am ucpb_am_t;

/* Sets the worker's two handlers (request, reply). serve: the region the
 * owner answers from (NULL for a reader). The ucpb_t must outlive it. */
ucs_status_t ucpb_am_open(ucpb_t *u, const ucpb_region_t *serve, ucpb_am_t **a_p);
/* Clears the handlers; no get may be in flight. */
void ucpb_am_close(ucpb_am_t *a);

/* window requests for the len bytes at the start of the owner's region,
 * all into dst (the shape of osu_get_bw; 1 for latency), then a wait for
 * every reply, progressing the worker (yielding after a run of 64 idle
 * polls, as pxs_wait). UCS_ERR_TIMED_OUT after timeout_ms (the job is then to be
 * ended: replies may still land in dst). window <= UCPB_WINDOW_MAX. */
ucs_status_t ucpb_am_get(ucpb_am_t *a, ucp_ep_h ep, void *dst, size_t len, int window,
                         int timeout_ms);

#endif
