/* mpi_two_ranks: rank 0 puts 8 MiB and sends only its proxy; rank 1
 * resolves it straight from rank 0's memory with MPI_Get (the "mpi"
 * connector), then finds a second object by name in the directory.
 *
 *   mpirun -n 2 ./mpi_two_ranks */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pxs/mpi.h>

#define N (8u << 20)
#define DIE(what, st)                                                          \
    do {                                                                       \
        fprintf(stderr, "rank %d: %s: %s\n", rank, what, pxs_strerror(st));     \
        MPI_Abort(MPI_COMM_WORLD, 1);                                          \
    } while (0)

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ok = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    pxs_mpi_t *mpi;
    pxs_status_t st = pxs_mpi_init(MPI_COMM_WORLD, NULL, &mpi);
    if (st != PXS_OK) DIE("pxs_mpi_init", st);
    char *buf = malloc(N);
    pxs_proxy_t p, named;
    if (rank == 0) {
        memset(buf, 'a', N);
        if ((st = pxs_put(pxs_mpi_store(mpi), buf, N, NULL, &p)) != PXS_OK) DIE("put", st);
        if ((st = pxs_mpi_name_publish(mpi, "example/field", &p)) != PXS_OK) DIE("publish", st);
        if ((st = pxs_mpi_send_proxy(&p, 1, 0, MPI_COMM_WORLD)) != PXS_OK) DIE("send", st);
    } else if (rank == 1) {
        /* Bounded: a rank 0 that never sends gives PXS_ERR_TIMEOUT, not a hang. */
        if ((st = pxs_mpi_recv_proxy(&p, 0, 0, MPI_COMM_WORLD, 30000, MPI_STATUS_IGNORE)) != PXS_OK)
            DIE("recv", st);
        if ((st = pxs_resolve(pxs_mpi_context(mpi), &p, buf, N, NULL)) != PXS_OK) DIE("resolve", st);
        if ((st = pxs_mpi_name_lookup(mpi, "example/field", &named)) != PXS_OK) DIE("lookup", st);
        ok = buf[0] == 'a' && buf[N - 1] == 'a' && pxs_proxy_len(&named) == pxs_proxy_len(&p);
        printf("rank 1 resolved %u bytes from rank 0: %s\n", N, ok ? "ok" : "WRONG");
    }
    /* Finalize evicts this rank's objects before it waits for the others,
     * so rank 0 may only enter it once rank 1 has read. */
    MPI_Barrier(MPI_COMM_WORLD);
    if ((st = pxs_mpi_finalize(mpi, PXS_TIMEOUT_DEFAULT)) != PXS_OK) DIE("finalize", st);
    free(buf);
    MPI_Finalize();
    return ok ? 0 : 1;
}
