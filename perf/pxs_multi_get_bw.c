/* pxs_multi_get_bw: every rank but 0 gets rank 0's object at once;
 * aggregate bandwidth of pxs vs MPI_Get, raw UCP get and memcpy run the
 * same way; see mpi_get_suite.h. */
#include "mpi_get_suite.h"

int main(int argc, char **argv) { return mpib_get_main(argc, argv, MPIB_MULTI_GET_BW); }
