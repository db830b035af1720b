/* Process identity: (pid, start time) names a process for good, since a
 * pid alone may be reused after the process exits. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "pxs_int.h"

uint64_t pxs__proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    /* p now points before field 3; starttime is field 22. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

pxs_status_t pxs__proc_alive(pid_t pid, uint64_t start)
{
    if (pid <= 0) return PXS_ERR_PEER_DEAD;
    if (kill(pid, 0) != 0 && errno == ESRCH) return PXS_ERR_PEER_DEAD;
    if (start) {
        uint64_t now = pxs__proc_start_time(pid);
        if (now == 0) return PXS_ERR_PEER_DEAD; /* gone between the two checks */
        if (now != start) return PXS_ERR_PEER_DEAD; /* pid reused */
    }
    return PXS_OK;
}

/* Reads that touch at most this many pages go by pread on /proc/pid/mem
 * (mem_open), larger ones by process_vm_readv. Each
 * process_vm_readv looks the process up and checks ptrace access again
 * (here 1.15 us at 8 B, most of it that check); the file was checked once,
 * at its open, so a read costs 0.82 us. But it copies through a bounce
 * page, 0.45 against 0.25 us a page: at three pages process_vm_readv is
 * ahead (perf/RESULTS.md). PXS_PROC_MEM_PAGES overrides; 0: never. */
#define PROC_MEM_PAGES_DEFAULT 2u
static uint64_t mem_pages = PROC_MEM_PAGES_DEFAULT;
static uint64_t page_size = 4096;
static pthread_once_t mem_once = PTHREAD_ONCE_INIT;

static void mem_init(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) page_size = (uint64_t)ps;
    const char *e = getenv("PXS_PROC_MEM_PAGES");
    char *end;
    unsigned long long v = e ? strtoull(e, &end, 10) : 0;
    if (e && *e && !*end) mem_pages = v < 1024 ? v : 1024; /* beyond: never ahead */
    else if (e) pxs_warn("PXS_PROC_MEM_PAGES=%s is not a page count; using %u", e,
                         PROC_MEM_PAGES_DEFAULT);
}

static int mem_open(pid_t pid, uint64_t start)
{
    if (pid <= 0) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    /* Checked after the open: the process that had pid then was this one,
     * since a later process with the same pid starts later. The file holds
     * that process's memory, never another's. */
    if (start && pxs__proc_alive(pid, start) != PXS_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The process's file, opened by the first read that takes it (a reader
 * of pxs_alloc segments alone never holds one); -1: none to be had. Two
 * threads may both open it: one keeps its file. */
static int mem_fd(pid_t pid, uint64_t start, _Atomic int *memfd)
{
    int fd = atomic_load_explicit(memfd, memory_order_acquire);
    if (fd != PXS_PROC_MEM_UNOPENED) return fd;
    int mine = mem_open(pid, start);
    if (atomic_compare_exchange_strong(memfd, &fd, mine)) return mine;
    if (mine >= 0) close(mine);
    return fd;
}

/* One system call's worth: bytes read, 0 for a process whose memory is
 * gone, or -1 with errno. */
static ssize_t read_once(pid_t pid, uint64_t start, _Atomic int *memfd, void *d, uint64_t addr,
                         uint64_t len)
{
    int fd;
    if (memfd && len <= mem_pages * page_size && addr <= (uint64_t)INT64_MAX - len &&
        (addr + len - 1) / page_size - addr / page_size < mem_pages &&
        (fd = mem_fd(pid, start, memfd)) >= 0)
        return pread(fd, d, len, (off_t)addr);
    struct iovec l = {.iov_base = d, .iov_len = len};
    struct iovec r = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    if (n == 0) { /* nothing of a mapped range: call it unmapped */
        errno = EFAULT;
        return -1;
    }
    return n;
}

pxs_status_t pxs__proc_read(pid_t pid, uint64_t start, _Atomic int *memfd, void *dst,
                            uint64_t addr, uint64_t len)
{
    pthread_once(&mem_once, mem_init);
    uint8_t *d = dst;
    while (len) {
        ssize_t n = read_once(pid, start, memfd, d, addr, len);
        if (n < 0 && errno == EINTR) continue;
        /* /proc/pid/mem reads nothing once the process let go of its
         * memory (it exited, or exec'd: either way not the owner). */
        if (n == 0) return PXS_ERR_PEER_DEAD;
        if (n < 0) {
            if (errno == ESRCH) return PXS_ERR_PEER_DEAD;
            if (errno == EPERM) return PXS_ERR_UNREACHABLE;
            if (errno == ENOMEM) return PXS_ERR_NO_MEMORY;
            /* EFAULT (process_vm_readv) or EIO (/proc/pid/mem), or a
             * short read that stops at an unmapped page: the owner
             * unmapped the range (freed before its evict). */
            return PXS_ERR_EVICTED;
        }
        d += n;
        addr += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return PXS_OK;
}

static uint64_t node_id;
static void node_id_init(void)
{
    char buf[128] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) gethostname(buf, sizeof buf - 1);
    node_id = pxs__hash64(buf, strlen(buf));
}

uint64_t pxs__node_id(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, node_id_init);
    return node_id;
}

/* --- the liveness page ---------------------------------------------------
 * glibc keeps the futex word first in pthread_mutex_t: the kernel's robust
 * list handling writes OWNER_DIED there. */
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "futex word first");

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pxs_live_page_t *live_page; /* ours, never unmapped while we live */
static int live_fd = -1;
static int live_users;               /* contexts; the name exists while > 0 */
static char live_path[160];

/* A forked child is another process: its page, if it needs one, is new.
 * The parent's mapping and name stay the parent's. */
static void live_forget(void)
{
    if (live_page) munmap(live_page, sizeof *live_page);
    if (live_fd >= 0) close(live_fd);
    live_page = NULL;
    live_fd = -1;
    live_users = 0;
    pthread_mutex_init(&live_mu, NULL);
}

static void live_init_atfork(void) { pthread_atfork(NULL, NULL, live_forget); }

static void live_make(void)
{
    /* An unnamed file, named (linkat) only while this process has
     * contexts: the name can come and go, the mapping stays. */
    int fd = open(PXS_SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return;
    void *m = MAP_FAILED;
    if (ftruncate(fd, sizeof(pxs_live_page_t)) == 0)
        m = mmap(NULL, sizeof(pxs_live_page_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pthread_mutexattr_t a;
    int ok = m != MAP_FAILED && pthread_mutexattr_init(&a) == 0;
    if (ok) {
        pxs_live_page_t *pg = m;
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        ok = pthread_mutex_init(&pg->lock, &a) == 0 && pthread_mutex_lock(&pg->lock) == 0;
        pthread_mutexattr_destroy(&a);
        pg->tid = (uint32_t)gettid();
    }
    if (!ok) {
        if (m != MAP_FAILED) munmap(m, sizeof(pxs_live_page_t));
        close(fd);
        pxs_debug("no liveness page: readers will ask the kernel");
        return;
    }
    live_page = m;
    live_fd = fd;
}

void pxs__live_open(pid_t pid, uint64_t start)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, live_init_atfork);
    pthread_mutex_lock(&live_mu);
    if (!live_page) live_make();
    if (live_page && live_users++ == 0) {
        char name[PXS_SEG_NAME_MAX], fdpath[32];
        pxs__seg_name(name, sizeof name, pid, start, 0, "live");
        snprintf(live_path, sizeof live_path, "%s/%s", PXS_SHM_DIR, name);
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", live_fd);
        unlink(live_path); /* a leftover of a finalize that raced us: ours now */
        if (linkat(AT_FDCWD, fdpath, AT_FDCWD, live_path, AT_SYMLINK_FOLLOW) != 0)
            pxs_debug("cannot name the liveness page %s: %s", live_path, strerror(errno));
    }
    pthread_mutex_unlock(&live_mu);
}

void pxs__live_close(void)
{
    pthread_mutex_lock(&live_mu);
    if (live_page && live_users > 0 && --live_users == 0) unlink(live_path);
    pthread_mutex_unlock(&live_mu);
}

const pxs_live_page_t *pxs__live_map(pid_t pid, uint64_t start, uint32_t *tid_p)
{
    char name[PXS_SEG_NAME_MAX];
    pxs__seg_name(name, sizeof name, pid, start, 0, "live");
    void *base;
    size_t len;
    if (pxs__seg_map_ro(name, &base, &len) != PXS_OK) return NULL;
    const pxs_live_page_t *pg = base;
    if (len < sizeof *pg || pg->tid == 0 || !pxs__live_check(pg, pg->tid)) {
        munmap(base, len); /* not a page we understand, or its holder ended */
        return NULL;
    }
    *tid_p = pg->tid;
    return pg;
}

void pxs__live_unmap(const pxs_live_page_t *page)
{
    if (page) munmap((void *)page, sizeof *page);
}

