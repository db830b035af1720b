/* pxs_get_latency: OSU-style get latency under mpirun (2 ranks), pxs vs
 * MPI_Get, raw UCP get and memcpy in the same run; see mpi_get_suite.h. */
#include "mpi_get_suite.h"

int main(int argc, char **argv) { return mpib_get_main(argc, argv, MPIB_GET_LATENCY); }
