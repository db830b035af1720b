/* simulation_to_training: a simulation hands its fields to training ranks
 * by name, and the bytes go straight from the simulation's memory to the
 * reader, copied through nobody in between.
 *
 * The first half of the ranks simulate. Every step, each of them computes
 * a field (an array of doubles) in memory from pxs_alloc, puts it with no
 * copy (the field is exposed where it lies) and publishes its proxy under
 * "field/<rank>/<step>". The other ranks train: every step they look up
 * the key of every simulation rank, resolve it (an MPI_Get from the
 * simulation's memory), tell the simulation rank they are done with it,
 * and check every value. A simulation rank keeps DEPTH steps in flight
 * (double buffering): before it computes into a buffer again it waits for
 * every trainer to be done with the step that buffer held, then unpublishes
 * that step's name and evicts its object.
 *
 *   mpirun -n 4 ./simulation_to_training [--steps N] [--size BYTES]
 *
 * Prints one summary line, ending in "ok"; exits 1 if any value was wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pxs/mpi.h>

#define DEPTH   2 /* steps in flight per simulation rank */
#define TAG_ACK 1 /* trainer to simulation rank: done with a step */

static int rank, size, nsim; /* ranks [0, nsim) simulate, the others train */

#define DIE(what, st)                                                                  \
    do {                                                                               \
        fprintf(stderr, "rank %d: %s: %s\n", rank, what, pxs_strerror(st));            \
        MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
    } while (0)

/* The field of (rank, step): exact in a double, different for every step. */
static double value(int r, int step, size_t i)
{
    return (double)r * 0x1p40 + (double)step * 0x1p24 + (double)(i & 0xffffff);
}

static void key_of(char *key, size_t cap, int r, int step)
{
    snprintf(key, cap, "field/%d/%d", r, step);
}

/* Every trainer is done with step: its name and object can go, and its
 * buffer may be overwritten. A trainer's acknowledgements arrive in step
 * order (MPI keeps one sender's messages in order). Waiting here is
 * bounded in effect: a trainer that cannot get a field aborts the job. */
static void retire(pxs_mpi_t *mpi, int step, const pxs_proxy_t *proxy)
{
    char key[64];
    pxs_status_t st;
    for (int t = nsim; t < size; t++) {
        int done = -1;
        MPI_Recv(&done, 1, MPI_INT, t, TAG_ACK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (done != step) {
            fprintf(stderr, "rank %d: rank %d acknowledged step %d, not %d\n", rank, t, done, step);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    key_of(key, sizeof key, rank, step);
    if ((st = pxs_mpi_name_unpublish(mpi, key)) != PXS_OK) DIE("pxs_mpi_name_unpublish", st);
    if ((st = pxs_evict(pxs_mpi_store(mpi), proxy)) != PXS_OK) DIE("pxs_evict", st);
}

static void simulate(pxs_mpi_t *mpi, int steps, size_t n)
{
    pxs_context_t *ctx = pxs_mpi_context(mpi);
    double *field[DEPTH];
    pxs_proxy_t proxy[DEPTH];
    char key[64];
    pxs_status_t st;
    for (int b = 0; b < DEPTH; b++)
        if ((st = pxs_alloc(ctx, n * sizeof(double), (void **)&field[b])) != PXS_OK)
            DIE("pxs_alloc", st);
    /* Never inline: the directory holds proxies of PXS_MPI_DIR_PROXY_MAX
     * bytes at most, and a small field would otherwise travel in its proxy. */
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    for (int step = 0; step < steps + DEPTH; step++) {
        int b = step % DEPTH;
        if (step >= DEPTH) retire(mpi, step - DEPTH, &proxy[b]);
        if (step >= steps) continue; /* only retiring the last ones */
        for (size_t i = 0; i < n; i++) field[b][i] = value(rank, step, i); /* "the physics" */
        st = pxs_put(pxs_mpi_store(mpi), field[b], n * sizeof(double), &pp, &proxy[b]);
        if (st != PXS_OK) DIE("pxs_put", st);
        key_of(key, sizeof key, rank, step);
        if ((st = pxs_mpi_name_publish(mpi, key, &proxy[b])) != PXS_OK) DIE("publish", st);
    }
    for (int b = 0; b < DEPTH; b++) pxs_free(ctx, field[b]);
}

/* A step's key appears once its simulation rank gets there: look it up
 * again (one MPI_Get per try) until the context's timeout. */
static pxs_status_t lookup_wait(pxs_mpi_t *mpi, const char *key, pxs_proxy_t *proxy)
{
    pxs_context_params_t cp;
    pxs_context_query(pxs_mpi_context(mpi), &cp);
    double t0 = MPI_Wtime();
    pxs_status_t st;
    while ((st = pxs_mpi_name_lookup(mpi, key, proxy)) == PXS_ERR_NOT_FOUND &&
           (cp.timeout_ms < 0 || (MPI_Wtime() - t0) * 1000 < cp.timeout_ms))
        nanosleep(&(struct timespec){0, 100000}, NULL); /* let the simulation run */
    return st;
}

/* @return how many values were wrong. */
static long train(pxs_mpi_t *mpi, int steps, size_t n)
{
    double *field = malloc(n * sizeof *field);
    pxs_proxy_t proxy;
    char key[64];
    long wrong = 0;
    if (!field) DIE("malloc", PXS_ERR_NO_MEMORY);
    for (int step = 0; step < steps; step++) {
        for (int r = 0; r < nsim; r++) {
            key_of(key, sizeof key, r, step);
            pxs_status_t st = lookup_wait(mpi, key, &proxy);
            if (st != PXS_OK) DIE(key, st);
            size_t len = 0;
            st = pxs_resolve(pxs_mpi_context(mpi), &proxy, field, n * sizeof *field, &len);
            if (st != PXS_OK) DIE("pxs_resolve", st);
            /* The bytes are ours now: the simulation may reuse its buffer. */
            MPI_Send(&step, 1, MPI_INT, r, TAG_ACK, MPI_COMM_WORLD);
            if (len != n * sizeof *field) wrong += (long)n;
            for (size_t i = 0; i < n && len == n * sizeof *field; i++)
                wrong += field[i] != value(r, step, i); /* "training" */
        }
    }
    free(field);
    return wrong;
}

static int parse(int argc, char **argv, int *steps, size_t *bytes)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (*end || end == argv[i + 1]) return -1;
        if (!strcmp(argv[i], "--steps") && v > 0 && v < 1000000) *steps = (int)v;
        else if (!strcmp(argv[i], "--size") && v >= sizeof(double) && v % sizeof(double) == 0)
            *bytes = (size_t)v;
        else return -1;
    }
    return argc % 2 == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int steps = 20;
    size_t bytes = 4u << 20;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (parse(argc, argv, &steps, &bytes) || size < 2) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -n N (N >= 2) %s [--steps N] [--size BYTES, a "
                            "multiple of 8]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    nsim = size / 2;
    pxs_mpi_t *mpi;
    pxs_status_t st = pxs_mpi_init(MPI_COMM_WORLD, NULL, &mpi);
    if (st != PXS_OK) DIE("pxs_mpi_init", st);

    double t0 = MPI_Wtime();
    long wrong = 0, total = 0;
    if (rank < nsim) simulate(mpi, steps, bytes / sizeof(double));
    else wrong = train(mpi, steps, bytes / sizeof(double));
    double dt = MPI_Wtime() - t0, dtmax = 0;
    /* Also the point after which nobody reads or names anything: simulation
     * ranks get here once every step is retired. */
    MPI_Allreduce(&wrong, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Reduce(&dt, &dtmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        long fields = (long)steps * nsim * (size - nsim);
        printf("simulation_to_training: %d simulation + %d training ranks, %d steps of %zu "
               "bytes: %ld fields resolved in %.3f s (%.0f MB/s), %ld wrong values, %s\n",
               nsim, size - nsim, steps, bytes, fields, dtmax,
               (double)fields * (double)bytes / dtmax / 1e6, total, total ? "FAILED" : "ok");
    }
    if ((st = pxs_mpi_finalize(mpi, PXS_TIMEOUT_DEFAULT)) != PXS_OK) DIE("pxs_mpi_finalize", st);
    MPI_Finalize();
    return total ? 1 : 0;
}
