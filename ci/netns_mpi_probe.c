/* MPI probe for ci/netns-mpi: where do the ranks run, and does the traffic
 * between rank 0 and rank 1 cross the network device?
 *
 *   netns_mpi_probe [BYTES]       (default 16 MiB; needs at least 2 ranks)
 *
 * Every rank prints one line
 *   probe: rank R host H netns net:[INODE] dev DEV addr ADDR
 * (DEV from $NETNS_MPI_DEV, ADDR its first IPv4 address). Then, between
 * rank 0 and rank 1 only:
 *   send    rank 1 MPI_Send()s BYTES to rank 0, then rank 0 sends BYTES back
 *   get     rank 0 MPI_Get()s BYTES from a window of rank 1, passive target
 *           (MPI_Win_lock(MPI_LOCK_SHARED, 1) .. MPI_Win_unlock)
 * Each phase is bracketed by barriers; rank 1 reads the tx/rx byte counters of
 * DEV (/sys/class/net/DEV/statistics) around it and prints
 *   probe: phase P bytes N secs S MiB/s B dev-tx T dev-rx R
 * (T, R: what DEV of rank 1 sent and received during the phase; -1 without
 * DEV). Every received byte is checked against its pattern. The last line is
 *   probe: OK distinct-netns=yes|no
 * from rank 0 (distinct-netns: rank 0 and rank 1 are in different network
 * namespaces), or "probe: FAIL ..." and exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <mpi.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long counter(const char *dev, const char *which)
{
    char path[256];
    long long v = -1;
    if (!dev || !*dev)
        return -1;
    snprintf(path, sizeof path, "/sys/class/net/%s/statistics/%s", dev, which);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void dev_addr(const char *dev, char *out, size_t n)
{
    struct ifaddrs *ifa, *p;
    snprintf(out, n, "-");
    if (!dev || !*dev || getifaddrs(&ifa) != 0)
        return;
    for (p = ifa; p; p = p->ifa_next) {
        if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET && strcmp(p->ifa_name, dev) == 0) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, out, (socklen_t)n);
            break;
        }
    }
    freeifaddrs(ifa);
}

static unsigned char pattern(size_t i, unsigned seed)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + seed;
    return (unsigned char)(x >> 29);
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(i, seed);
}

static long check(const unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(i, seed))
            return (long)i;
    return -1;
}

int main(int argc, char **argv)
{
    int rank, size, bad = 0;
    size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : (size_t)16 << 20;
    const char *dev = getenv("NETNS_MPI_DEV");
    char host[256] = "", ns[64] = "", addr[64];
    char line[512];

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    gethostname(host, sizeof host - 1);
    ssize_t l = readlink("/proc/self/ns/net", ns, sizeof ns - 1);
    ns[l > 0 ? l : 0] = 0;
    dev_addr(dev, addr, sizeof addr);
    snprintf(line, sizeof line, "probe: rank %d host %s netns %s dev %s addr %s", rank, host, ns,
             dev && *dev ? dev : "-", addr);

    /* Rank 0 prints every rank's line, in order. */
    char *all = rank == 0 ? malloc((size_t)size * sizeof line) : NULL;
    MPI_Gather(line, sizeof line, MPI_CHAR, all, sizeof line, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < size; r++)
            printf("%s\n", all + (size_t)r * sizeof line);
        fflush(stdout);
    }
    if (size < 2) {
        if (rank == 0)
            printf("probe: FAIL needs 2 ranks, has %d\n", size);
        MPI_Finalize();
        return 1;
    }
    int distinct = 0;
    if (rank == 0) {
        /* The netns field of rank 1's line against ours. */
        const char *a = strstr(all, " netns "), *b = strstr(all + sizeof line, " netns ");
        size_t la = strcspn(a + 7, " ");
        distinct = !(la == strcspn(b + 7, " ") && strncmp(a + 7, b + 7, la) == 0);
    }
    free(all);

    unsigned char *buf = malloc(bytes);
    if (!buf) {
        fprintf(stderr, "probe: rank %d: no memory for %zu bytes\n", rank, bytes);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int count = (int)bytes; /* MPI_BYTE counts: keep BYTES below 2 GiB */

    /* ---- send: 1 -> 0, then 0 -> 1 ---- */
    long long tx0 = 0, rx0 = 0;
    double t0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        tx0 = counter(dev, "tx_bytes");
        rx0 = counter(dev, "rx_bytes");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    if (rank == 1) {
        fill(buf, bytes, 1);
        MPI_Send(buf, count, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
        MPI_Recv(buf, count, MPI_BYTE, 0, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        long at = check(buf, bytes, 2);
        if (at >= 0) {
            printf("probe: FAIL rank 1: byte %ld of the send from rank 0 is wrong\n", at);
            bad = 1;
        }
    } else if (rank == 0) {
        memset(buf, 0, bytes);
        MPI_Recv(buf, count, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        long at = check(buf, bytes, 1);
        if (at >= 0) {
            printf("probe: FAIL rank 0: byte %ld of the send from rank 1 is wrong\n", at);
            bad = 1;
        }
        fill(buf, bytes, 2);
        MPI_Send(buf, count, MPI_BYTE, 1, 2, MPI_COMM_WORLD);
    }
    double secs = MPI_Wtime() - t0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        long long tx = counter(dev, "tx_bytes"), rx = counter(dev, "rx_bytes");
        printf("probe: phase send bytes %zu secs %.3f MiB/s %.1f dev-tx %lld dev-rx %lld\n", bytes,
               secs, 2.0 * (double)bytes / secs / 1048576.0, tx < 0 ? -1 : tx - tx0,
               rx < 0 ? -1 : rx - rx0);
        fflush(stdout);
    }

    /* ---- get: rank 0 reads rank 1's window, passive target ---- */
    MPI_Win win;
    unsigned char *base = NULL;
    MPI_Aint wsize = rank == 1 ? (MPI_Aint)bytes : 0;
    MPI_Win_allocate(wsize, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    if (rank == 1)
        fill(base, bytes, 3);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        tx0 = counter(dev, "tx_bytes");
        rx0 = counter(dev, "rx_bytes");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    if (rank == 0) {
        memset(buf, 0, bytes);
        MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
        MPI_Get(buf, count, MPI_BYTE, 1, 0, count, MPI_BYTE, win);
        MPI_Win_unlock(1, win);
        secs = MPI_Wtime() - t0;
        long at = check(buf, bytes, 3);
        if (at >= 0) {
            printf("probe: FAIL rank 0: byte %ld of the MPI_Get from rank 1 is wrong\n", at);
            bad = 1;
        }
    }
    /* Rank 1 makes progress for passive target in here (osc pt2pt). */
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Bcast(&secs, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        long long tx = counter(dev, "tx_bytes"), rx = counter(dev, "rx_bytes");
        printf("probe: phase get bytes %zu secs %.3f MiB/s %.1f dev-tx %lld dev-rx %lld\n", bytes,
               secs, (double)bytes / secs / 1048576.0, tx < 0 ? -1 : tx - tx0,
               rx < 0 ? -1 : rx - rx0);
        fflush(stdout);
    }
    MPI_Win_free(&win);
    free(buf);

    int anybad = 0;
    MPI_Reduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        if (anybad)
            printf("probe: FAIL data check\n");
        else
            printf("probe: OK distinct-netns=%s\n", distinct ? "yes" : "no");
        fflush(stdout);
    }
    MPI_Finalize();
    return anybad ? 1 : 0;
}
