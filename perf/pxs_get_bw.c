/* pxs_get_bw: OSU-style get bandwidth under mpirun (2 ranks, a window of
 * gets in flight), pxs vs MPI_Get, raw UCP get and memcpy in the same run;
 * see mpi_get_suite.h. */
#include "mpi_get_suite.h"

int main(int argc, char **argv) { return mpib_get_main(argc, argv, MPIB_GET_BW); }
