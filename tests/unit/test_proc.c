/* Reading another process's memory (src/proc.c): both ways pxs__proc_read
 * has, /proc/pid/mem for a page or two and process_vm_readv beyond, give
 * the same bytes and the same statuses for an unmapped range and a dead
 * process. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pxs/pxs.h>

#define PXS_PROC_MEM_UNOPENED (-2) /* as src/seg.h */
pxs_status_t pxs__proc_read(pid_t pid, uint64_t start, _Atomic int *memfd, void *dst,
                            uint64_t addr, uint64_t len);
uint64_t pxs__proc_start_time(pid_t pid);

#define LEN (64u << 10) /* 16 pages: both ways */

typedef struct {
    pid_t pid;
    uint64_t addr;
    int cmd; /* a byte: unmap; closed: exit */
    int ack; /* a byte back: unmapped */
} child_t;

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 7 + 1); }

/* A child with LEN mapped bytes of pattern(), and nothing mapped after, that unmaps them when told and
 * exits when its pipe closes. */
static void child_start(child_t *c)
{
    int up[2], down[2];
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        close(up[0]);
        close(down[1]);
        /* A page more, unmapped again: a hole right after the range. */
        long pg = sysconf(_SC_PAGESIZE);
        uint8_t *m = mmap(NULL, LEN + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || munmap(m + LEN, pg) != 0) _exit(1);
        for (uint32_t i = 0; i < LEN; i++) m[i] = pattern(i);
        uint64_t a = (uintptr_t)m;
        if (write(up[1], &a, sizeof a) != sizeof a) _exit(1);
        char b;
        while (read(down[0], &b, 1) == 1) {
            munmap(m, LEN);
            if (write(up[1], &b, 1) != 1) _exit(1);
        }
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    cr_assert_eq(read(up[0], &c->addr, sizeof c->addr), (ssize_t)sizeof c->addr);
    c->cmd = down[1];
    c->ack = up[0];
}

static void child_unmap(child_t *c)
{
    char b = 'u';
    cr_assert_eq(write(c->cmd, &b, 1), 1);
    cr_assert_eq(read(c->ack, &b, 1), 1);
}

static void child_exit(child_t *c)
{
    close(c->cmd);
    close(c->ack);
    int ws;
    cr_assert_eq(waitpid(c->pid, &ws, 0), c->pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* Reads at every shape both ways take: one byte, within a page, across a
 * page boundary, two pages, and the whole range. memfd NULL: never the
 * file. */
static void expect_reads(const child_t *c, _Atomic int *memfd)
{
    uint64_t start = pxs__proc_start_time(c->pid);
    static const uint64_t at[][2] = {
        {0, 1}, {100, 8}, {4090, 12}, {4096, 8192}, {1000, 3 * 4096}, {0, LEN}};
    static uint8_t out[LEN];
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        memset(out, 0, sizeof out);
        cr_assert_eq(pxs__proc_read(c->pid, start, memfd, out, c->addr + at[k][0], at[k][1]),
                     PXS_OK, "read %zu (file %d)", k, memfd != NULL);
        for (uint64_t i = 0; i < at[k][1]; i++)
            cr_assert_eq(out[i], pattern(at[k][0] + i), "read %zu byte %llu (file %d)", k,
                         (unsigned long long)i, memfd != NULL);
    }
}

/* The file is opened by the first read that takes it, and only then. */
Test(proc, both_ways_read_the_same_bytes)
{
    child_t c;
    child_start(&c);
    uint64_t start = pxs__proc_start_time(c.pid);
    _Atomic int fd = PXS_PROC_MEM_UNOPENED;
    uint8_t big[3 * 4096];
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, big, c.addr, sizeof big), PXS_OK);
    cr_assert_eq(fd, PXS_PROC_MEM_UNOPENED, "a read of three pages opened the file");
    expect_reads(&c, &fd);
    cr_assert_geq(fd, 0, "/proc/%d/mem did not open", (int)c.pid);
    expect_reads(&c, NULL);
    close(fd);
    child_exit(&c);
}

/* A range the owner unmapped is EVICTED whichever way reads it; so is one
 * that starts mapped and runs off the end of the mapping. */
Test(proc, an_unmapped_range_is_evicted)
{
    child_t c;
    child_start(&c);
    uint64_t start = pxs__proc_start_time(c.pid);
    _Atomic int fd = PXS_PROC_MEM_UNOPENED;
    uint8_t out[3 * 4096];
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, out, c.addr + LEN - 4, 8), PXS_ERR_EVICTED);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pxs__proc_read(c.pid, start, NULL, out, c.addr + LEN - 4, 8), PXS_ERR_EVICTED);
    child_unmap(&c);
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, out, c.addr, 8), PXS_ERR_EVICTED);
    cr_assert_eq(pxs__proc_read(c.pid, start, NULL, out, c.addr, 8), PXS_ERR_EVICTED);
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, out, c.addr, sizeof out), PXS_ERR_EVICTED);
    close(fd);
    child_exit(&c);
}

/* A process that exited is PEER_DEAD both ways: the open file reads nothing
 * once its memory is gone (and never another process's, whatever has its
 * pid by then). Its open is refused too. */
Test(proc, a_dead_process_is_peer_dead)
{
    child_t c;
    child_start(&c);
    uint64_t start = pxs__proc_start_time(c.pid);
    _Atomic int fd = PXS_PROC_MEM_UNOPENED, late = PXS_PROC_MEM_UNOPENED;
    uint8_t out[8];
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, out, c.addr, sizeof out), PXS_OK);
    cr_assert_geq(fd, 0);
    child_exit(&c);
    cr_assert_eq(pxs__proc_read(c.pid, start, &fd, out, c.addr, sizeof out), PXS_ERR_PEER_DEAD);
    cr_assert_eq(pxs__proc_read(c.pid, start, NULL, out, c.addr, sizeof out), PXS_ERR_PEER_DEAD);
    cr_assert_eq(pxs__proc_read(c.pid, start, &late, out, c.addr, sizeof out), PXS_ERR_PEER_DEAD);
    cr_assert_eq(late, -1, "a dead process's file was opened");
    close(fd);
}

/* The open checks the process's start time: a pid that names another
 * process (reused) gives no file (this read then goes by process_vm_readv,
 * which the callers' own liveness checks judge). */
Test(proc, a_wrong_start_time_opens_nothing)
{
    child_t c;
    child_start(&c);
    uint64_t start = pxs__proc_start_time(c.pid);
    cr_assert_neq(start, 0);
    _Atomic int fd = PXS_PROC_MEM_UNOPENED;
    uint8_t out[8];
    cr_assert_eq(pxs__proc_read(c.pid, start + 1, &fd, out, c.addr, sizeof out), PXS_OK);
    cr_assert_eq(fd, -1);
    child_exit(&c);
}
