/* Shared segments in /dev/shm, named
 *   pxs.<pid>.<start time>.<owner id hex>.<suffix>
 * so a later process can tell whose they are and remove those of processes
 * that died without cleaning up (pxs__seg_reap_stale). Mode 0600. */
#ifndef PXS_SEG_H
#define PXS_SEG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/futex.h> /* FUTEX_TID_MASK, FUTEX_OWNER_DIED: pxs__live_check */
#include <sys/types.h>
#include <pxs/status.h>

#define PXS_SHM_DIR "/dev/shm"
#define PXS_SEG_NAME_MAX 96

typedef struct pxs_seg {
    uint32_t id;
    void *base;
    size_t size;    /* usable bytes (requested size) */
    size_t map_len; /* page-rounded mapping */
    bool user;      /* from pxs_alloc (vs. a copying put) */
    uint32_t nobjs; /* live objects whose bytes lie here */
    char name[PXS_SEG_NAME_MAX];
} pxs_seg_t;

void pxs__seg_name(char *buf, size_t cap, pid_t pid, uint64_t start, uint64_t owner,
                   const char *suffix);
/* Create and map read-write (fails if it exists). */
pxs_status_t pxs__seg_create(const char *name, size_t len, void **base_p);
/* Map an existing segment read-only; *len_p gets its size. */
pxs_status_t pxs__seg_map_ro(const char *name, void **base_p, size_t *len_p);
void pxs__seg_unlink(const char *name);
/* Remove segments of dead processes; returns how many. */
int pxs__seg_reap_stale(void);

/* Process identity and liveness (proc.c). */
uint64_t pxs__proc_start_time(pid_t pid); /* 0 if unknown */
/* PXS_OK alive, PXS_ERR_PEER_DEAD gone (or pid reused when start != 0). */
pxs_status_t pxs__proc_alive(pid_t pid, uint64_t start);
uint64_t pxs__node_id(void);
/* Copy len bytes at addr in the process (pid, start) into dst: reads of at
 * most PXS_PROC_MEM_PAGES pages by pread on its /proc/pid/mem, the others
 * by process_vm_readv (cross-memory attach). *memfd (NULL: never the file)
 * keeps the file: PXS_PROC_MEM_UNOPENED until the first read that takes it
 * opens it (checking start after the open, so it is that process's memory
 * whoever has the pid later), -1 when none can be had (not permitted, gone,
 * PXS_PROC_MEM_PAGES=0, no descriptor left); the caller closes one >= 0.
 * PXS_ERR_PEER_DEAD: no such process, or its memory is gone;
 * PXS_ERR_UNREACHABLE: not permitted (Yama ptrace scope, another user);
 * PXS_ERR_EVICTED: the range is not mapped there; PXS_ERR_NO_MEMORY: the
 * kernel had none. dst may be partly written on failure. Thread-safe. Logs
 * nothing: callers say what a refusal means. */
#define PXS_PROC_MEM_UNOPENED (-2)
pxs_status_t pxs__proc_read(pid_t pid, uint64_t start, _Atomic int *memfd, void *dst,
                            uint64_t addr, uint64_t len);

/* The liveness page of a process: a robust process-shared mutex, locked for
 * good by the thread that made the page. When that thread ends (alone, or
 * with the process, even by SIGKILL) the kernel marks the mutex's futex
 * word OWNER_DIED, before the process's pid can be freed for reuse. So a
 * reader that maps the page proves "this pid still names that process"
 * with one load instead of a system call. Named like the process's
 * segments ("live"), published while the process has contexts. */
typedef struct {
    pthread_mutex_t lock;
    uint32_t tid;   /* the holder: the futex word reads this while it lives */
} pxs_live_page_t;
/* Owner: pxs_init and pxs_finalize of each context. Failing to make the
 * page only costs readers a system call per check. */
void pxs__live_open(pid_t pid, uint64_t start);
void pxs__live_close(void);
/* Reader: map a process's page (NULL if it has none). */
const pxs_live_page_t *pxs__live_map(pid_t pid, uint64_t start, uint32_t *tid_p);
void pxs__live_unmap(const pxs_live_page_t *page);
/* 1: the holder lives, so the process does; 0: ask the kernel. Inline:
 * every mapped read checks it. The holder's tid, without OWNER_DIED (the
 * kernel clears the tid when it sets that bit; waiters never come: nobody
 * else locks it). */
static inline int pxs__live_check(const pxs_live_page_t *page, uint32_t tid)
{
    const int *word = (const int *)&page->lock;
    uint32_t w = (uint32_t)__atomic_load_n(word, __ATOMIC_ACQUIRE);
    return (w & FUTEX_TID_MASK) == tid && !(w & FUTEX_OWNER_DIED);
}

#endif
