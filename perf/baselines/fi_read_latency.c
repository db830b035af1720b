/* The raw libfabric read baseline under mpirun (see /work/shared/PERF.md):
 * one blocking fi_read at a time of rank 0's memory by rank 1, next to
 * MPI_Get + MPI_Win_flush of the same bytes (MPI_Win_create window over
 * malloc memory, lock_all once) in the same run, OSU-style table.
 *
 * No pxs in it: it says what libfabric's own one-sided read does between
 * two hosts, the mechanism a libfabric connector would use (pxs has none
 * yet), beside the ucx connector's (perf/baselines/ucp_am_get.c). Over
 * tcp;ofi_rxm a read is a request and the bytes, received straight into
 * the reader's registered buffer; the owner's provider answers it when the
 * owner polls its completion queue, so rank 0 polls while rank 1 measures.
 *
 *   mpirun -n 2 fi_read_latency [--sizes a,b,...] [--reps N] [--prov NAME]
 *
 * Defaults: sizes 8 B to 4 MiB in powers of 4 and 512 KiB, 2 MiB; 100
 * repetitions after 10 warm-up ones, median printed; provider tcp;ofi_rxm
 * (FI_TCP_IFACE picks the interface). Exits 1 with a message on any
 * libfabric or MPI failure, or wrong bytes. */
#include <mpi.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIZES 32
#define TIMEOUT_S 30.0

static void die(const char *what, long rc)
{
    fprintf(stderr, "fi_read_latency: %s: %s\n", what, rc < 0 ? fi_strerror((int)-rc) : "failed");
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

#define CK(call)                       \
    do {                               \
        long rc_ = (long)(call);       \
        if (rc_) die(#call, rc_);      \
    } while (0)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    struct fid_fabric *fab;
    struct fid_domain *dom;
    struct fid_ep *ep;
    struct fid_cq *cq;
    struct fid_av *av;
    struct fid_mr *mr;
    struct fi_info *info;
    fi_addr_t peer;
} fab_t;

static void fab_open(fab_t *f, const char *prov, void *buf, size_t len, int owner)
{
    struct fi_info *hints = fi_allocinfo();
    if (!hints) die("fi_allocinfo", 0);
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_RMA | FI_READ | FI_REMOTE_READ | FI_MSG;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
    hints->fabric_attr->prov_name = strdup(prov);
    CK(fi_getinfo(FI_VERSION(1, 9), NULL, NULL, 0, hints, &f->info));
    fi_freeinfo(hints);
    CK(fi_fabric(f->info->fabric_attr, &f->fab, NULL));
    CK(fi_domain(f->fab, f->info, &f->dom, NULL));
    struct fi_cq_attr cqa = {.format = FI_CQ_FORMAT_CONTEXT};
    CK(fi_cq_open(f->dom, &cqa, &f->cq, NULL));
    struct fi_av_attr ava = {.type = FI_AV_TABLE};
    CK(fi_av_open(f->dom, &ava, &f->av, NULL));
    CK(fi_endpoint(f->dom, f->info, &f->ep, NULL));
    CK(fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV));
    CK(fi_ep_bind(f->ep, &f->av->fid, 0));
    CK(fi_enable(f->ep));
    char name[256] = {0}, peer[256];
    size_t nl = sizeof name;
    CK(fi_getname(&f->ep->fid, name, &nl));
    int other = owner ? 1 : 0; /* two ranks: the owner is 0 */
    MPI_Sendrecv(name, sizeof name, MPI_BYTE, other, 0, peer, sizeof peer, MPI_BYTE, other, 0,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (fi_av_insert(f->av, peer, 1, &f->peer, 0, NULL) != 1) die("fi_av_insert", 0);
    CK(fi_mr_reg(f->dom, buf, len, owner ? FI_REMOTE_READ : FI_READ, 0, 0, 0, &f->mr, NULL));
}

static void fab_close(fab_t *f)
{
    fi_close(&f->mr->fid);
    fi_close(&f->ep->fid);
    fi_close(&f->av->fid);
    fi_close(&f->cq->fid);
    fi_close(&f->dom->fid);
    fi_close(&f->fab->fid);
    fi_freeinfo(f->info);
}

/* One read, waited for on the completion queue; bounded. */
static void fab_read(fab_t *f, void *dst, size_t len, uint64_t raddr, uint64_t key)
{
    struct fi_cq_entry ce;
    double deadline = now_us() + TIMEOUT_S * 1e6;
    ssize_t rc;
    while ((rc = fi_read(f->ep, dst, len, fi_mr_desc(f->mr), f->peer, raddr, key, NULL)) ==
           -FI_EAGAIN) {
        fi_cq_read(f->cq, &ce, 1);
        if (now_us() > deadline) die("fi_read (no room)", -FI_ETIMEDOUT);
    }
    if (rc) die("fi_read", rc);
    for (unsigned spins = 0;; spins++) {
        ssize_t n = fi_cq_read(f->cq, &ce, 1);
        if (n == 1) return;
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry e = {0};
            fi_cq_readerr(f->cq, &e, 0);
            fprintf(stderr, "fi_read_latency: read failed: %s\n",
                    fi_cq_strerror(f->cq, e.prov_errno, e.err_data, NULL, 0));
            die("fi_read completion", -(long)e.err);
        }
        if (n != -FI_EAGAIN) die("fi_cq_read", n);
        if (!(spins & 4095) && now_us() > deadline) die("fi_read completion", -FI_ETIMEDOUT);
    }
}

/* A comma-separated list of sizes in bytes, 1 B to 1 GiB (MPI_Get takes an
 * int count), at most MAX_SIZES of them; -1 on anything else. */
static int parse_sizes(const char *s, size_t *sizes)
{
    int n = 0;
    for (const char *p = s; *p;) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v == 0 || v > (1ull << 30) || n == MAX_SIZES) return -1;
        sizes[n++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, np;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    size_t sizes[MAX_SIZES] = {8, 64, 1024, 16384, 65536, 262144, 524288, 1048576, 2097152,
                               4194304};
    int nsizes = 10, reps = 100;
    const char *prov = "tcp;ofi_rxm";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc) nsizes = parse_sizes(argv[++i], sizes);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prov") && i + 1 < argc) prov = argv[++i];
        else nsizes = -1;
    }
    if (np != 2 || nsizes < 1 || reps < 3 || reps > 100000) {
        if (!rank)
            fprintf(stderr, "usage: mpirun -n 2 fi_read_latency [--sizes a,b,... (bytes, 1 B to "
                            "1 GiB, at most %d)] [--reps N (3..100000)] [--prov NAME]\n",
                    MAX_SIZES);
        MPI_Finalize();
        return 2;
    }
    size_t max = 0;
    for (int i = 0; i < nsizes; i++) max = sizes[i] > max ? sizes[i] : max;
    uint8_t *buf = aligned_alloc(4096, (max + 4095) / 4096 * 4096);
    if (!buf) die("out of memory", 0);
    for (size_t i = 0; i < max; i++) buf[i] = rank == 0 ? (uint8_t)(i * 7 + 1) : 0;
    fab_t f;
    fab_open(&f, prov, buf, max, rank == 0);
    /* Where the bytes are: an address, or an offset in the region. */
    uint64_t kv[2] = {fi_mr_key(f.mr),
                      f.info->domain_attr->mr_mode & FI_MR_VIRT_ADDR ? (uint64_t)(uintptr_t)buf : 0};
    MPI_Bcast(kv, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Win win;
    MPI_Win_create(rank == 0 ? buf : NULL, rank == 0 ? max : 0, 1, MPI_INFO_NULL, MPI_COMM_WORLD,
                   &win);
    MPI_Win_lock_all(0, win);
    MPI_Barrier(MPI_COMM_WORLD);
    struct fi_cq_entry ce;
    if (rank == 0) { /* serve: poll the queue (the provider's progress) and MPI */
        MPI_Request r;
        MPI_Ibarrier(MPI_COMM_WORLD, &r);
        for (int done = 0; !done;) {
            fi_cq_read(f.cq, &ce, 1);
            MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        }
    } else {
        const char *osc = getenv("OMPI_MCA_osc"); /* mpirun --mca osc X */
        int len;
        char ver[MPI_MAX_LIBRARY_VERSION_STRING];
        MPI_Get_library_version(ver, &len);
        ver[strcspn(ver, ",\n")] = 0;
        printf("# fi_read_latency: one fi_read at a time, provider %s (%s), 2 ranks\n",
               f.info->fabric_attr->prov_name, getenv("FI_TCP_IFACE") ? getenv("FI_TCP_IFACE") : "any interface");
        printf("# baseline in the same run: MPI_Get + MPI_Win_flush (%s, osc %s; "
               "MPI_Win_create over malloc window, lock_all once)\n", ver, osc ? osc : "default");
        printf("# ratio: MPI_Get time / fi_read time; median of %d reps\n", reps);
        printf("%-10s%16s%16s%8s\n", "# Size", "fi_read (us)", "MPI_Get (us)", "ratio");
        double *t = malloc(sizeof(double) * (size_t)reps);
        uint8_t *dst = malloc(max);
        if (!t || !dst) die("out of memory", 0);
        for (int si = 0; si < nsizes; si++) {
            size_t s = sizes[si];
            double med[2];
            for (int pass = 0; pass < 2; pass++) {
                memset(pass == 0 ? buf : dst, 0, s); /* what this pass must fill */
                for (int k = -10; k < reps; k++) {
                    double t0 = now_us();
                    if (pass == 0) fab_read(&f, buf, s, kv[1], kv[0]);
                    else if (MPI_Get(dst, (int)s, MPI_BYTE, 0, 0, (int)s, MPI_BYTE, win) ||
                             MPI_Win_flush(0, win))
                        die("MPI_Get", 0);
                    if (k >= 0) t[k] = now_us() - t0;
                }
                const uint8_t *got = pass == 0 ? buf : dst;
                for (size_t i = 0; i < s; i++)
                    if (got[i] != (uint8_t)(i * 7 + 1)) die(pass ? "MPI_Get bytes" : "fi_read bytes", 0);
                qsort(t, (size_t)reps, sizeof *t, cmp_double);
                med[pass] = t[reps / 2];
            }
            printf("%-10zu%16.2f%16.2f%8.3f\n", s, med[0], med[1], med[1] / med[0]);
            fflush(stdout);
        }
        free(t);
        free(dst);
        MPI_Request r;
        MPI_Ibarrier(MPI_COMM_WORLD, &r);
        for (int done = 0; !done;) {
            fi_cq_read(f.cq, &ce, 1);
            MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        }
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    fab_close(&f);
    free(buf);
    MPI_Finalize();
    return 0;
}
