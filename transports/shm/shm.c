/* The "shm" connector: same-node reads with no work by the owner.
 *
 * - Bytes in pxs_alloc (or copying-put) segments: the reader maps the
 *   owner's segment read-only once and copies with memcpy, or views it.
 * - Bytes in an ordinary user buffer: one process_vm_readv (cross-memory
 *   attach), the kernel's single-copy path.
 * Either way the owner's generation table, mapped read-only, is checked
 * before and after the copy, so an evicted object never yields bytes.
 * A pid may name another process once the owner is gone: after each
 * process_vm_readv the owner's liveness page (pxs__live_map) proves with
 * one load that the pid still named the owner during the copy.
 *
 * A get of an owner and segment seen before takes no lock: both are found
 * in small tables of recent ones (hot), and the reader raises its thread's
 * flag (shm_rd.c) while it copies. A mapping that goes (pxs_free, evict,
 * dead owner) leaves those tables first and is unmapped only once no flag
 * is up (else it waits on s->retired). Handles and views pin a mapping by its
 * users count, under the lock. */
#include <stdatomic.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../src/connector.h"
#include "../../src/log.h"
#include "shm_rd.h"

/* Blob: u32 pid, u32 segment id (0: user memory), u64 start time,
 *       u64 node id, u64 address (user memory) or offset (segment). */
#define SHM_BLOB_LEN PXS_SHM_BLOB_LEN

/* Recently used owners (by owner id) and segments (by segment id) that a
 * get reads without the lock; a power of two. */
#define HOT 16

typedef struct peer_seg {
    uint32_t id;
    const uint8_t *base;
    size_t len;
    uint32_t users;        /* views, handles and locked copies: no unmap while > 0 */
    struct peer_seg *next; /* on s->retired */
} peer_seg_t;

/* An owner seen by this reader. Never freed before fini, so a pointer to
 * it stays valid without the lock. */
typedef struct {
    uint64_t owner;
    pid_t pid;
    uint64_t start;
    int pidfd;       /* names this very process: pid reuse cannot fool it */
    _Atomic int memfd; /* its /proc/pid/mem (pxs__proc_read) */
    const pxs_live_page_t *live; /* its liveness page, or NULL */
    uint32_t live_tid;
    _Atomic uint64_t alive_ns; /* last time it was seen alive (coarse clock) */
    pxs_objtab_t tab;
    peer_seg_t **segs;     /* mapped, each until dropped */
    size_t nsegs, cap;
    _Atomic(peer_seg_t *) hot[HOT];
} peer_t;

typedef struct {
    pthread_mutex_t lock; /* the peer cache; copies run outside it */
    pid_t pid;
    uint64_t start;
    uint64_t node;
    peer_t **peers;
    size_t npeers, cap;
    _Atomic(peer_t *) hot[HOT];
    peer_seg_t *retired;   /* dropped while a reader was in: unmapped later */
    atomic_size_t nretired;
} shm_t;

typedef pxs_shm_loc_t shm_blob_t; /* connector.h: what the blob says */

/* Under Yama ptrace_scope=1 (Ubuntu's default) process_vm_readv needs the
 * owner's consent: give it, as UCX's cma transport needs too, unless
 * PXS_SHM_PTRACER=0. Scope 2 and 3 forbid it; readers then get
 * PXS_ERR_UNREACHABLE for user buffers (pxs_alloc memory still works). */
static void allow_cma_readers(void)
{
    const char *env = getenv("PXS_SHM_PTRACER");
    if (env && !strcmp(env, "0")) return;
    int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return; /* no Yama: nothing to ask */
    char v = 0;
    ssize_t n = read(fd, &v, 1);
    close(fd);
    if (n == 1 && v == '1' && prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0) != 0)
        pxs_warn("prctl(PR_SET_PTRACER): %s; same-node readers of user buffers may fail",
                 strerror(errno));
}

static pxs_status_t shm_init(pxs_conn_t *c)
{
    allow_cma_readers();
    shm_t *s = calloc(1, sizeof *s);
    if (!s) return PXS_ERR_NO_MEMORY;
    pthread_mutex_init(&s->lock, NULL);
    s->pid = getpid();
    s->start = pxs__proc_start_time(s->pid);
    s->node = pxs__node_id();
    c->priv = s;
    return PXS_OK;
}

static void seg_unmap(peer_seg_t *g)
{
    munmap((void *)g->base, g->len);
    free(g);
}

/* Unmap what was dropped while a reader was in, if none is now. Caller
 * holds s->lock. */
static void retired_drain(shm_t *s)
{
    if (!s->retired || pxs__shm_rd_any()) return;
    while (s->retired) {
        peer_seg_t *g = s->retired;
        s->retired = g->next;
        seg_unmap(g);
    }
    atomic_store_explicit(&s->nretired, 0, memory_order_relaxed);
}

/* Drop q's mapping at index i (nobody holds it by users). It leaves the hot
 * table before the reader flags are looked at: a reader whose flag went up
 * before that may still copy from it, one whose flag goes up after cannot
 * find it (sequentially consistent, both sides). Caller holds s->lock. */
static void seg_drop(shm_t *s, peer_t *q, size_t i)
{
    peer_seg_t *g = q->segs[i];
    q->segs[i] = q->segs[--q->nsegs];
    peer_seg_t *hot = g;
    atomic_compare_exchange_strong(&q->hot[g->id & (HOT - 1)], &hot, NULL);
    if (!pxs__shm_rd_any()) {
        seg_unmap(g);
        return;
    }
    g->next = s->retired;
    s->retired = g;
    atomic_fetch_add_explicit(&s->nretired, 1, memory_order_relaxed);
}

static void reader_leave(shm_t *s, pxs_shm_rd_t *r)
{
    pxs__shm_rd_leave(r);
    if (atomic_load_explicit(&s->nretired, memory_order_relaxed)) {
        pthread_mutex_lock(&s->lock);
        retired_drain(s);
        pthread_mutex_unlock(&s->lock);
    }
}

static void peer_free(peer_t *p)
{
    for (size_t i = 0; i < p->nsegs; i++) seg_unmap(p->segs[i]);
    free(p->segs);
    pxs__objtab_close(&p->tab, 0);
    if (p->pidfd >= 0) close(p->pidfd);
    if (p->memfd >= 0) close(p->memfd);
    pxs__live_unmap(p->live);
    free(p);
}

static void shm_fini(pxs_conn_t *c)
{
    shm_t *s = c->priv;
    for (size_t i = 0; i < s->npeers; i++) peer_free(s->peers[i]);
    free(s->peers);
    retired_drain(s); /* no reader is left */
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static pxs_status_t shm_mem_reg(pxs_conn_t *c, pxs_object_t *o)
{
    (void)c, (void)o; /* nothing to pin: the kernel reads the pages in place */
    return PXS_OK;
}
static void shm_mem_dereg(pxs_conn_t *c, pxs_object_t *o) { (void)c, (void)o; }

void pxs__shm_blob_write(uint8_t *b, pid_t pid, uint32_t seg, uint64_t start, uint64_t node,
                         uint64_t where)
{
    pxs_wr32(b, (uint32_t)pid);
    pxs_wr32(b + 4, seg);
    pxs_wr64(b + 8, start);
    pxs_wr64(b + 16, node);
    pxs_wr64(b + 24, where);
}

uint64_t pxs__shm_blob_node(const uint8_t *b) { return pxs_rd64(b + 16); }

void pxs__shm_blob_read(const uint8_t *b, pxs_shm_loc_t *l)
{
    l->pid = (pid_t)pxs_rd32(b);
    l->seg = pxs_rd32(b + 4);
    l->start = pxs_rd64(b + 8);
    l->node = pxs_rd64(b + 16);
    l->where = pxs_rd64(b + 24);
}

static pxs_status_t shm_pack(pxs_conn_t *c, const pxs_object_t *o, uint8_t *b, size_t cap,
                             size_t *len_p)
{
    shm_t *s = c->priv;
    if (cap < SHM_BLOB_LEN) return PXS_ERR_NO_RESOURCE;
    pxs__shm_blob_write(b, s->pid, o->seg ? o->seg->id : 0, s->start, s->node,
                        o->seg ? (uint64_t)((uint8_t *)o->addr - (uint8_t *)o->seg->base)
                               : (uint64_t)(uintptr_t)o->addr);
    *len_p = SHM_BLOB_LEN;
    return PXS_OK;
}

static pxs_status_t loc_check(const shm_t *s, const shm_blob_t *b)
{
    if (b->pid <= 0) return PXS_ERR_CORRUPT;
    if (b->node != s->node) return PXS_ERR_UNREACHABLE; /* another kernel */
    return PXS_OK;
}

static pxs_status_t blob_parse(const shm_t *s, const pxs_pdesc_t *p, shm_blob_t *b)
{
    if (p->blob_len != SHM_BLOB_LEN) return PXS_ERR_CORRUPT;
    pxs__shm_blob_read(p->blob, b);
    return loc_check(s, b);
}

/* Mapped bytes whose generation still matches are the object's, even if
 * their owner has just died: its liveness there only decides when we start
 * reporting PXS_ERR_PEER_DEAD, so it is checked at most this often. */
#define MAPPED_LIVENESS_NS 1000000ull

/* The coarse clock costs a few ns (the precise one 15-20): a tick (1-4 ms)
 * is fine for deciding when to look at an owner again. */
static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Is the owner still the process we first verified? One load while its
 * liveness page says so; else the kernel decides (the page's thread may
 * have ended alone: then every check asks the kernel). */
static pxs_status_t peer_alive(peer_t *q)
{
    if (q->live && pxs__live_check(q->live, q->live_tid)) return PXS_OK;
    pxs_status_t st = PXS_OK;
    if (q->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, q->pidfd, 0, NULL, 0) != 0 && errno == ESRCH)
            st = PXS_ERR_PEER_DEAD;
    } else {
        st = pxs__proc_alive(q->pid, q->start); /* kernels without pidfd */
    }
    if (st == PXS_OK) atomic_store_explicit(&q->alive_ns, coarse_ns(), memory_order_relaxed);
    return st;
}

/* Find or map the owner's generation table. Caller holds s->lock. */
static pxs_status_t peer_get(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b, peer_t **peer_p)
{
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *q = s->peers[i];
        if (q->owner != p->owner) continue;
        if (q->pid != b->pid || q->start != b->start) return PXS_ERR_CORRUPT;
        atomic_store_explicit(&s->hot[q->owner & (HOT - 1)], q, memory_order_release);
        *peer_p = q;
        return PXS_OK;
    }
    if (s->npeers == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        peer_t **n = realloc(s->peers, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        s->peers = n;
        s->cap = cap;
    }
    peer_t *q = calloc(1, sizeof *q);
    if (!q) return PXS_ERR_NO_MEMORY;
    /* Open the pidfd first, then check the start time: if they agree, the
     * pidfd names the owner and not a later process with its pid. */
    q->pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
    if (q->pidfd < 0 && errno == ESRCH) {
        free(q);
        return PXS_ERR_PEER_DEAD;
    }
    pxs_status_t st = pxs__proc_alive(b->pid, b->start);
    char name[PXS_SEG_NAME_MAX];
    pxs__seg_name(name, sizeof name, b->pid, b->start, p->owner, "tab");
    if (st == PXS_OK) {
        st = pxs__objtab_open(&q->tab, name, p->owner);
        /* A live process without the table finalized that context. */
        if (st == PXS_ERR_NOT_FOUND) st = PXS_ERR_EVICTED;
    }
    if (st != PXS_OK) {
        if (q->pidfd >= 0) close(q->pidfd);
        free(q);
        return st;
    }
    q->owner = p->owner;
    q->pid = b->pid;
    q->start = b->start;
    /* Mapped after the pidfd check: if the page's holder lives, so does
     * the process the pidfd names. */
    q->live = pxs__live_map(b->pid, b->start, &q->live_tid);
    q->memfd = PXS_PROC_MEM_UNOPENED;
    atomic_store(&q->alive_ns, coarse_ns());
    s->peers[s->npeers++] = q;
    atomic_store_explicit(&s->hot[q->owner & (HOT - 1)], q, memory_order_release);
    *peer_p = q;
    return PXS_OK;
}

static void seg_name(const peer_t *q, uint32_t id, char *name, size_t cap)
{
    char suffix[24];
    snprintf(suffix, sizeof suffix, "a%u", id);
    pxs__seg_name(name, cap, q->pid, q->start, q->owner, suffix);
}

static size_t peer_seg_index(const peer_t *q, uint32_t id)
{
    size_t i = 0;
    while (i < q->nsegs && q->segs[i]->id != id) i++;
    return i; /* q->nsegs: not mapped */
}

/* Map (once) the owner's segment id. Caller holds s->lock. */
static pxs_status_t peer_seg(peer_t *q, uint32_t id, peer_seg_t **seg_p)
{
    size_t i = peer_seg_index(q, id);
    if (i < q->nsegs) {
        *seg_p = q->segs[i];
        atomic_store_explicit(&q->hot[id & (HOT - 1)], *seg_p, memory_order_release);
        return PXS_OK;
    }
    if (q->nsegs == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 8;
        peer_seg_t **n = realloc(q->segs, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        q->segs = n;
        q->cap = cap;
    }
    char name[PXS_SEG_NAME_MAX];
    seg_name(q, id, name, sizeof name);
    peer_seg_t *g = calloc(1, sizeof *g);
    if (!g) return PXS_ERR_NO_MEMORY;
    void *base;
    size_t len;
    pxs_status_t st = pxs__seg_map_ro(name, &base, &len);
    if (st != PXS_OK) {
        free(g);
        return st == PXS_ERR_NOT_FOUND ? PXS_ERR_EVICTED : st; /* freed */
    }
    *g = (peer_seg_t){.id = id, .base = base, .len = len};
    q->segs[q->nsegs++] = g;
    atomic_store_explicit(&q->hot[id & (HOT - 1)], g, memory_order_release);
    *seg_p = g;
    return PXS_OK;
}

/* The owner removed a segment (pxs_free, or the evict of a copied object):
 * drop our mapping too, or its memory would outlive it. Only once nobody
 * here uses it, and only if it is really gone: other objects may still
 * live in a pxs_alloc region. Caller holds s->lock. */
static void peer_seg_maybe_drop(shm_t *s, peer_t *q, uint32_t id)
{
    size_t i = peer_seg_index(q, id);
    if (i == q->nsegs || q->segs[i]->users) return;
    char name[PXS_SEG_NAME_MAX], path[160];
    seg_name(q, id, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", PXS_SHM_DIR, name);
    if (access(path, F_OK) == 0 || errno != ENOENT) return;
    seg_drop(s, q, i);
}

/* Resolve the source of p, whose blob b is parsed: a peer, an early
 * generation check, and for segment objects the mapped address, marked in
 * use (seg_unuse ends it). */
static pxs_status_t locate(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b, peer_t **q_p,
                           const uint8_t **src_p)
{
    pxs_status_t st;
    pthread_mutex_lock(&s->lock);
    retired_drain(s);
    peer_t *q;
    st = peer_get(s, p, b, &q);
    if (st != PXS_OK) goto out;
    if (p->slot >= q->tab.hdr->nslots) {
        st = PXS_ERR_CORRUPT;
        goto out;
    }
    if (pxs__objtab_gen(&q->tab, p->slot) != p->gen) {
        if (b->seg) peer_seg_maybe_drop(s, q, b->seg);
        st = PXS_ERR_EVICTED; /* whether or not its owner still lives */
        goto out;
    }
    *src_p = (const uint8_t *)(uintptr_t)b->where;
    if (b->seg) {
        peer_seg_t *g;
        st = peer_seg(q, b->seg, &g);
        if (st != PXS_OK) goto out;
        if (b->where > g->len || p->size > g->len - b->where) {
            st = PXS_ERR_CORRUPT;
            goto out;
        }
        *src_p = g->base + b->where;
        g->users++;
    }
    *q_p = q;
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

static void seg_unuse(shm_t *s, peer_t *q, uint32_t id)
{
    pthread_mutex_lock(&s->lock);
    size_t i = peer_seg_index(q, id);
    if (i < q->nsegs && q->segs[i]->users) q->segs[i]->users--;
    pthread_mutex_unlock(&s->lock);
}

static pxs_status_t cma_read(peer_t *q, void *dst, uint64_t addr, uint64_t len)
{
    pxs_status_t st = pxs__proc_read(q->pid, q->start, &q->memfd, dst, addr, len);
    if (st == PXS_ERR_UNREACHABLE)
        pxs_error("process_vm_readv(%d) not permitted (ptrace scope?)", (int)q->pid);
    return st;
}

/* The owner is gone: give back the mappings nobody here uses, so its
 * memory does not outlive it in this process. */
static void peer_dead(shm_t *s, peer_t *q)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < q->nsegs;) {
        if (q->segs[i]->users) i++;
        else seg_drop(s, q, i);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The owner's life asked of the kernel (a system call), and what a dead
 * owner leaves here given back. Out of line: after_copy is on every read. */
static __attribute__((noinline)) pxs_status_t owner_check(shm_t *s, peer_t *q)
{
    if (peer_alive(q) == PXS_OK) return PXS_OK;
    peer_dead(s, q);
    return PXS_ERR_PEER_DEAD;
}

/* After a copy: the bytes count only if the object was live throughout (its
 * generation is unchanged) and, for cross-memory attach, the pid still
 * names the owner (checked after the copy: one load with a liveness page).
 * mapped: the bytes came from the owner's segment and are right whatever
 * became of the owner; without a page its death is looked for only now and
 * then, since that costs a system call. */
static inline __attribute__((always_inline)) pxs_status_t
after_copy(shm_t *s, peer_t *q, const pxs_pdesc_t *p, int mapped, pxs_status_t st)
{
    if (q->live ? !pxs__live_check(q->live, q->live_tid)
                : !mapped || coarse_ns() - atomic_load_explicit(&q->alive_ns, memory_order_relaxed) >
                                 MAPPED_LIVENESS_NS) {
        if (owner_check(s, q) != PXS_OK) return PXS_ERR_PEER_DEAD;
    }
    if (!pxs__objtab_still(&q->tab, p->slot, p->gen)) return PXS_ERR_EVICTED;
    return st;
}

/* The copy out of a mapped segment, once the owner q is found and the
 * object's generation checked: the segment must still be in q's hot table
 * (read with this thread's flag up, so it stays mapped until we leave). */
static inline __attribute__((always_inline)) pxs_status_t
mapped_get(shm_t *s, peer_t *q, const pxs_pdesc_t *p, uint32_t seg, uint64_t where, void *dst)
{
    pxs_shm_rd_t *r = pxs__shm_rd_enter(); /* before the lookup: see seg_drop */
    if (!r) return PXS_ERR_UNSUPPORTED;
    pxs_status_t st = PXS_ERR_UNSUPPORTED;
    peer_seg_t *g = atomic_load(&q->hot[seg & (HOT - 1)]);
    if (g && g->id == seg) {
        if (where > g->len || p->size > g->len - where) {
            st = PXS_ERR_CORRUPT;
        } else {
            if (p->size) pxs__copy(dst, g->base + where, p->size);
            st = after_copy(s, q, p, 1, PXS_OK);
        }
    }
    reader_leave(s, r);
    return st;
}

/* A remembered proxy's route (wire.h): its owner, already matched to the
 * proxy's pid and start time, and the segment and offset its blob gave.
 * Only the blob parse and the owner lookup are skipped: the generation, the
 * mapping and the owner's life are checked as on every get. */
static pxs_status_t route_read(const pxs_route_t *rt, const pxs_pdesc_t *p, void *dst)
{
    peer_t *q = rt->b; /* never freed before fini, and the core checked the instance */
    if (p->slot >= q->tab.hdr->nslots || pxs__objtab_gen(&q->tab, p->slot) != p->gen)
        return PXS_ERR_UNSUPPORTED; /* the full path says why */
    return mapped_get(rt->a, q, p, (uint32_t)rt->x, rt->y, dst);
}

/* A get from an owner and segment in the hot tables, without the lock.
 * PXS_ERR_UNSUPPORTED: not there, or evicted: the locked path decides. */
static pxs_status_t fast_get(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b, void *dst)
{
    peer_t *q = atomic_load_explicit(&s->hot[p->owner & (HOT - 1)], memory_order_acquire);
    if (!q || q->owner != p->owner) return PXS_ERR_UNSUPPORTED;
    if (q->pid != b->pid || q->start != b->start) return PXS_ERR_CORRUPT;
    if (p->slot >= q->tab.hdr->nslots) return PXS_ERR_CORRUPT;
    if (pxs__objtab_gen(&q->tab, p->slot) != p->gen) return PXS_ERR_UNSUPPORTED;
    if (!b->seg) {
        pxs_status_t st = p->size ? cma_read(q, dst, b->where, p->size) : PXS_OK;
        return after_copy(s, q, p, 0, st);
    }
    pxs_status_t st = mapped_get(s, q, p, b->seg, b->where, dst);
    pxs_route_t *rt = pxs__route_fill;
    if (rt && st == PXS_OK) *rt = (pxs_route_t){.read = route_read, .a = s, .b = q,
                                                .x = b->seg, .y = b->where};
    return st;
}

static pxs_status_t get_at(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b, void *dst)
{
    peer_t *q;
    const uint8_t *src;
    pxs_status_t st = fast_get(s, p, b, dst);
    if (st != PXS_ERR_UNSUPPORTED) return st;
    st = locate(s, p, b, &q, &src);
    if (st != PXS_OK) return st;
    if (b->seg) {
        if (p->size) pxs__copy(dst, src, p->size);
        seg_unuse(s, q, b->seg);
    } else if (p->size) {
        st = cma_read(q, dst, b->where, p->size);
    }
    return after_copy(s, q, p, b->seg != 0, st);
}

static pxs_status_t check_at(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b)
{
    pthread_mutex_lock(&s->lock);
    peer_t *q;
    pxs_status_t st = peer_get(s, p, b, &q);
    pthread_mutex_unlock(&s->lock);
    if (st != PXS_OK) return st;
    if (p->slot >= q->tab.hdr->nslots) return PXS_ERR_CORRUPT;
    return after_copy(s, q, p, 0, PXS_OK);
}

static pxs_status_t shm_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    (void)req;
    shm_t *s = c->priv;
    shm_blob_t b;
    pxs_status_t st = blob_parse(s, p, &b);
    return st != PXS_OK ? st : get_at(s, p, &b, dst);
}

static pxs_status_t shm_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    shm_t *s = c->priv;
    shm_blob_t b;
    pxs_status_t st = blob_parse(s, p, &b);
    return st != PXS_OK ? st : check_at(s, p, &b);
}

pxs_status_t pxs__shm_get_at(pxs_conn_t *c, const pxs_pdesc_t *p, const pxs_shm_loc_t *l,
                             void *dst)
{
    shm_t *s = c->priv;
    pxs_status_t st = loc_check(s, l);
    if (st != PXS_OK) return st;
    return dst ? get_at(s, p, l, dst) : check_at(s, p, l);
}

static pxs_status_t shm_view(pxs_conn_t *c, const pxs_pdesc_t *p, const void **data_p)
{
    shm_t *s = c->priv;
    shm_blob_t b;
    peer_t *q;
    const uint8_t *src;
    pxs_status_t st = blob_parse(s, p, &b);
    if (st != PXS_OK || (st = locate(s, p, &b, &q, &src)) != PXS_OK) return st;
    if (!b.seg) return PXS_ERR_UNSUPPORTED; /* private memory cannot be mapped from here */
    st = after_copy(s, q, p, 1, PXS_OK);
    if (st != PXS_OK) {
        seg_unuse(s, q, b.seg);
        return st;
    }
    *data_p = src; /* the mapping stays in use until view_release */
    return PXS_OK;
}

static void shm_view_release(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    shm_t *s = c->priv;
    shm_blob_t b;
    if (blob_parse(s, p, &b) != PXS_OK || !b.seg) return;
    pthread_mutex_lock(&s->lock);
    peer_t *q;
    pxs_status_t st = peer_get(s, p, &b, &q);
    pthread_mutex_unlock(&s->lock);
    if (st == PXS_OK) seg_unuse(s, q, b.seg);
}

/* A handle: owner, and for segment objects the mapping, pinned once. */
typedef struct {
    peer_t *q;
    const uint8_t *src; /* mapped bytes, or NULL for a user buffer */
    shm_blob_t b;
} shm_handle_t;

static pxs_status_t shm_hopen(pxs_conn_t *c, const pxs_pdesc_t *p, void **state_p)
{
    shm_handle_t *h = malloc(sizeof *h);
    if (!h) return PXS_ERR_NO_MEMORY;
    const uint8_t *src;
    pxs_status_t st = blob_parse(c->priv, p, &h->b);
    if (st == PXS_OK) st = locate(c->priv, p, &h->b, &h->q, &src); /* pins the segment */
    if (st != PXS_OK) {
        free(h);
        return st;
    }
    h->src = h->b.seg ? src : NULL;
    *state_p = h;
    return PXS_OK;
}

static pxs_status_t shm_hread(pxs_conn_t *c, const pxs_pdesc_t *p, void *state, uint64_t off,
                             void *dst, size_t len)
{
    shm_handle_t *h = state;
    /* Evicted already: no copy (and no read of memory the owner reuses). */
    if (pxs__objtab_gen(&h->q->tab, p->slot) != p->gen) return PXS_ERR_EVICTED;
    pxs_status_t st = PXS_OK;
    if (h->src) pxs__copy(dst, h->src + off, len);
    else st = cma_read(h->q, dst, h->b.where + off, len);
    return after_copy(c->priv, h->q, p, h->src != NULL, st);
}

static void shm_hclose(pxs_conn_t *c, const pxs_pdesc_t *p, void *state)
{
    (void)p;
    shm_handle_t *h = state;
    if (h->b.seg) seg_unuse(c->priv, h->q, h->b.seg);
    free(h);
}

const pxs_conn_ops_t pxs__conn_shm_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "shm",
    .id = PXS_CONNECTOR_SHM,
    .caps = PXS_CAP_CROSS_PROCESS | PXS_CAP_ONE_SIDED | PXS_CAP_ZERO_COPY_PUT | PXS_CAP_VIEW,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "same node: mapped pxs_alloc segments (memcpy, views) and "
               "cross-memory attach (process_vm_readv) for user buffers",
    .init = shm_init,
    .fini = shm_fini,
    .mem_alloc = pxs__conn_seg_mem_alloc,
    .mem_free = pxs__conn_seg_mem_free,
    .mem_reg = shm_mem_reg,
    .mem_dereg = shm_mem_dereg,
    .pack_remote = shm_pack,
    .get = shm_get,
    .cancel = pxs__conn_noop_cancel,
    .check = shm_check,
    .view = shm_view,
    .view_release = shm_view_release,
    .progress = pxs__conn_noop_progress,
    .open = shm_hopen,
    .read = shm_hread,
    .close = shm_hclose,
};
