/* The get benchmarks under mpirun, one body for three programs:
 *
 *   pxs_get_latency   2 ranks: rank 1 times one blocking get at a time;
 *   pxs_get_bw        2 ranks: W gets in flight, then a wait for all
 *                     (W = min(64, 64 MiB / size)), osu_get_bw's shape;
 *   pxs_multi_get_bw  N ranks: every rank but 0 gets the same object at
 *                     once (W in flight each); aggregate bandwidth.
 *
 * Rank 0 owns the bytes: it puts the object (zero copy) with the chosen
 * connector, sends the proxy with pxs_mpi_send_proxy, then keeps its
 * context progressing until every consumer says it is done with the size.
 * The consumers time, in ABBA-interleaved repetitions (median reported):
 *   pxs       pxs_resolve (or pxs_resolve_nb x W) into a preallocated buffer;
 *   MPI_Get   passive target, MPI_Win_lock_all once, MPI_Get (x W) +
 *             MPI_Win_flush, on an MPI_Win_create window over an ordinary
 *             buffer (--memory user) or an MPI_Win_allocate window
 *             (--memory alloc: "MPI_Get-alloc");
 *   ucp_get   raw UCP gets (perf/baselines/ucp_get.c) of an ordinary buffer
 *             or, with --memory alloc, of UCP_MEM_MAP_ALLOCATE memory;
 *   ucp_am    with --ucp-am: raw UCP active-message gets of the same bytes
 *             (perf/baselines/ucp_am_get.c), the ucx connector's own
 *             mechanism across nodes, where UCX emulates ucp_get;
 *   memcpy    of the same size in the consumer's own memory.
 */
#ifndef PXS_PERF_MPI_GET_SUITE_H
#define PXS_PERF_MPI_GET_SUITE_H

typedef enum { MPIB_GET_LATENCY, MPIB_GET_BW, MPIB_MULTI_GET_BW } mpib_get_mode_t;

int mpib_get_main(int argc, char **argv, mpib_get_mode_t mode);

#endif
