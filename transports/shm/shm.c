/* The "shm" connector: same-node reads with no work by the owner.
 *
 * - Bytes in pxs_alloc (or copying-put) segments: the reader maps the
 *   owner's segment read-only once and copies with memcpy, or views it.
 * - Bytes in an ordinary user buffer: one process_vm_readv (cross-memory
 *   attach), the kernel's single-copy path.
 * Either way the owner's generation table, mapped read-only, is checked
 * before and after the copy, so an evicted object never yields bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../src/connector.h"
#include "../../src/log.h"

/* Blob: u32 pid, u32 segment id (0: user memory), u64 start time,
 *       u64 node id, u64 address (user memory) or offset (segment). */
#define SHM_BLOB_LEN 32
/* Re-read a cached peer's start time this often, to catch pid reuse. */
#define PEER_RECHECK_NS 100000000ull

typedef struct {
    uint32_t id;
    const uint8_t *base;
    size_t len;
    uint32_t views;
} peer_seg_t;

typedef struct {
    uint64_t owner;
    pid_t pid;
    uint64_t start;
    uint64_t checked_ns;
    pxs_objtab_t tab;
    peer_seg_t *segs;
    size_t nsegs, cap;
} peer_t;

typedef struct {
    pthread_mutex_t lock; /* the peer cache; copies run outside it */
    pid_t pid;
    uint64_t start;
    uint64_t node;
    peer_t **peers;
    size_t npeers, cap;
} shm_t;

typedef struct {
    pid_t pid;
    uint32_t seg;
    uint64_t start, node, where;
} shm_blob_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pxs_status_t shm_init(pxs_conn_t *c)
{
    shm_t *s = calloc(1, sizeof *s);
    if (!s) return PXS_ERR_NO_MEMORY;
    pthread_mutex_init(&s->lock, NULL);
    s->pid = getpid();
    s->start = pxs__proc_start_time(s->pid);
    s->node = pxs__node_id();
    c->priv = s;
    return PXS_OK;
}

static void peer_free(peer_t *p)
{
    for (size_t i = 0; i < p->nsegs; i++) munmap((void *)p->segs[i].base, p->segs[i].len);
    free(p->segs);
    pxs__objtab_close(&p->tab, 0);
    free(p);
}

static void shm_fini(pxs_conn_t *c)
{
    shm_t *s = c->priv;
    for (size_t i = 0; i < s->npeers; i++) peer_free(s->peers[i]);
    free(s->peers);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static pxs_status_t shm_mem_reg(pxs_conn_t *c, pxs_object_t *o)
{
    (void)c, (void)o; /* nothing to pin: the kernel reads the pages in place */
    return PXS_OK;
}
static void shm_mem_dereg(pxs_conn_t *c, pxs_object_t *o) { (void)c, (void)o; }

static pxs_status_t shm_pack(pxs_conn_t *c, const pxs_object_t *o, uint8_t *b, size_t cap,
                             size_t *len_p)
{
    shm_t *s = c->priv;
    if (cap < SHM_BLOB_LEN) return PXS_ERR_NO_RESOURCE;
    pxs_wr32(b, (uint32_t)s->pid);
    pxs_wr32(b + 4, o->seg ? o->seg->id : 0);
    pxs_wr64(b + 8, s->start);
    pxs_wr64(b + 16, s->node);
    pxs_wr64(b + 24, o->seg ? (uint64_t)((uint8_t *)o->addr - (uint8_t *)o->seg->base)
                            : (uint64_t)(uintptr_t)o->addr);
    *len_p = SHM_BLOB_LEN;
    return PXS_OK;
}

static pxs_status_t blob_parse(const shm_t *s, const pxs_pdesc_t *p, shm_blob_t *b)
{
    if (p->blob_len != SHM_BLOB_LEN) return PXS_ERR_CORRUPT;
    b->pid = (pid_t)pxs_rd32(p->blob);
    b->seg = pxs_rd32(p->blob + 4);
    b->start = pxs_rd64(p->blob + 8);
    b->node = pxs_rd64(p->blob + 16);
    b->where = pxs_rd64(p->blob + 24);
    if (b->pid <= 0) return PXS_ERR_CORRUPT;
    if (b->node != s->node) return PXS_ERR_UNREACHABLE; /* another kernel */
    return PXS_OK;
}

/* Find or map the owner's generation table. Caller holds s->lock. */
static pxs_status_t peer_get(shm_t *s, const pxs_pdesc_t *p, const shm_blob_t *b, peer_t **peer_p)
{
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *q = s->peers[i];
        if (q->owner != p->owner) continue;
        if (q->pid != b->pid || q->start != b->start) return PXS_ERR_CORRUPT;
        uint64_t now = now_ns();
        if (now - q->checked_ns > PEER_RECHECK_NS) {
            if (pxs__proc_alive(q->pid, q->start) != PXS_OK) return PXS_ERR_PEER_DEAD;
            q->checked_ns = now;
        } else if (kill(q->pid, 0) != 0 && errno == ESRCH) {
            return PXS_ERR_PEER_DEAD;
        }
        *peer_p = q;
        return PXS_OK;
    }
    if (pxs__proc_alive(b->pid, b->start) != PXS_OK) return PXS_ERR_PEER_DEAD;
    if (s->npeers == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        peer_t **n = realloc(s->peers, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        s->peers = n;
        s->cap = cap;
    }
    peer_t *q = calloc(1, sizeof *q);
    if (!q) return PXS_ERR_NO_MEMORY;
    char name[PXS_SEG_NAME_MAX];
    pxs__seg_name(name, sizeof name, b->pid, b->start, p->owner, "tab");
    pxs_status_t st = pxs__objtab_open(&q->tab, name, p->owner);
    if (st != PXS_OK) {
        free(q);
        /* A live process without the table finalized that context. */
        return st == PXS_ERR_NOT_FOUND ? PXS_ERR_EVICTED : st;
    }
    q->owner = p->owner;
    q->pid = b->pid;
    q->start = b->start;
    q->checked_ns = now_ns();
    s->peers[s->npeers++] = q;
    *peer_p = q;
    return PXS_OK;
}

/* Map (once) the owner's segment id. Caller holds s->lock. */
static pxs_status_t peer_seg(peer_t *q, uint32_t id, peer_seg_t **seg_p)
{
    for (size_t i = 0; i < q->nsegs; i++) {
        if (q->segs[i].id == id) {
            *seg_p = &q->segs[i];
            return PXS_OK;
        }
    }
    if (q->nsegs == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 8;
        peer_seg_t *n = realloc(q->segs, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        q->segs = n;
        q->cap = cap;
    }
    char suffix[24], name[PXS_SEG_NAME_MAX];
    snprintf(suffix, sizeof suffix, "a%u", id);
    pxs__seg_name(name, sizeof name, q->pid, q->start, q->owner, suffix);
    void *base;
    size_t len;
    pxs_status_t st = pxs__seg_map_ro(name, &base, &len);
    if (st != PXS_OK) return st == PXS_ERR_NOT_FOUND ? PXS_ERR_EVICTED : st; /* freed */
    peer_seg_t *g = &q->segs[q->nsegs++];
    g->id = id;
    g->base = base;
    g->len = len;
    g->views = 0;
    *seg_p = g;
    return PXS_OK;
}

/* An evicted object's segment may be gone at the owner: drop our mapping
 * too (unless a view holds it), or its memory would outlive the object. */
static void peer_seg_drop(peer_t *q, uint32_t id)
{
    for (size_t i = 0; i < q->nsegs; i++) {
        if (q->segs[i].id == id && q->segs[i].views == 0) {
            munmap((void *)q->segs[i].base, q->segs[i].len);
            q->segs[i] = q->segs[--q->nsegs];
            return;
        }
    }
}

/* Resolve the source of p: a peer, a generation check, and for segment
 * objects the mapped address. Takes and releases s->lock. */
static pxs_status_t locate(shm_t *s, const pxs_pdesc_t *p, shm_blob_t *b, peer_t **q_p,
                           const uint8_t **src_p, int for_view)
{
    pxs_status_t st = blob_parse(s, p, b);
    if (st != PXS_OK) return st;
    pthread_mutex_lock(&s->lock);
    peer_t *q;
    st = peer_get(s, p, b, &q);
    if (st != PXS_OK) goto out;
    if (p->slot >= q->tab.hdr->nslots) {
        st = PXS_ERR_CORRUPT;
        goto out;
    }
    if (pxs__objtab_gen(&q->tab, p->slot) != p->gen) {
        if (b->seg) peer_seg_drop(q, b->seg);
        st = PXS_ERR_EVICTED;
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
        if (for_view) g->views++;
    } else if (for_view) {
        st = PXS_ERR_UNSUPPORTED; /* private memory cannot be mapped from here */
        goto out;
    }
    *q_p = q;
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

static pxs_status_t cma_read(pid_t pid, void *dst, uint64_t addr, uint64_t len)
{
    uint8_t *d = dst;
    while (len) {
        struct iovec l = {.iov_base = d, .iov_len = len};
        struct iovec r = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && errno == ESRCH) return PXS_ERR_PEER_DEAD;
            if (n < 0 && errno == EPERM) {
                pxs_error("process_vm_readv(%d) not permitted (ptrace scope?)", (int)pid);
                return PXS_ERR_UNREACHABLE;
            }
            /* EFAULT: the owner unmapped the range (freed before evict). */
            return PXS_ERR_EVICTED;
        }
        d += n;
        addr += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return PXS_OK;
}

static pxs_status_t shm_get(pxs_conn_t *c, const pxs_pdesc_t *p, void *dst, pxs_request_t *req)
{
    (void)req;
    shm_t *s = c->priv;
    shm_blob_t b;
    peer_t *q;
    const uint8_t *src;
    pxs_status_t st = locate(s, p, &b, &q, &src, 0);
    if (st != PXS_OK) return st;
    if (b.seg) {
        if (p->size) memcpy(dst, src, p->size);
    } else if (p->size) {
        st = cma_read(b.pid, dst, b.where, p->size);
    }
    /* The object may have been evicted while we copied: check again. The
     * peer stays mapped until fini, so q is safe to read without the lock. */
    if (pxs__objtab_gen(&q->tab, p->slot) != p->gen) return PXS_ERR_EVICTED;
    return st;
}

static pxs_status_t shm_check(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    shm_t *s = c->priv;
    shm_blob_t b;
    pxs_status_t st = blob_parse(s, p, &b);
    if (st != PXS_OK) return st;
    pthread_mutex_lock(&s->lock);
    peer_t *q;
    st = peer_get(s, p, &b, &q);
    if (st == PXS_OK && p->slot >= q->tab.hdr->nslots) st = PXS_ERR_CORRUPT;
    if (st == PXS_OK && pxs__objtab_gen(&q->tab, p->slot) != p->gen) st = PXS_ERR_EVICTED;
    pthread_mutex_unlock(&s->lock);
    return st;
}

static pxs_status_t shm_view(pxs_conn_t *c, const pxs_pdesc_t *p, const void **data_p)
{
    shm_blob_t b;
    peer_t *q;
    const uint8_t *src;
    pxs_status_t st = locate(c->priv, p, &b, &q, &src, 1);
    if (st == PXS_OK) *data_p = src;
    return st;
}

static void shm_view_release(pxs_conn_t *c, const pxs_pdesc_t *p)
{
    shm_t *s = c->priv;
    shm_blob_t b;
    if (blob_parse(s, p, &b) != PXS_OK || !b.seg) return;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *q = s->peers[i];
        if (q->owner != p->owner) continue;
        for (size_t k = 0; k < q->nsegs; k++)
            if (q->segs[k].id == b.seg && q->segs[k].views) q->segs[k].views--;
    }
    pthread_mutex_unlock(&s->lock);
}

const pxs_conn_ops_t pxs_conn_shm_ops = {
    .size = sizeof(pxs_conn_ops_t),
    .name = "shm",
    .id = PXS_CONNECTOR_SHM,
    .caps = PXS_CAP_CROSS_PROCESS | PXS_CAP_ONE_SIDED | PXS_CAP_ZERO_COPY_PUT | PXS_CAP_VIEW,
    .memtypes = 1u << PXS_MEMTYPE_HOST,
    .summary = "same node: mapped pxs_alloc segments (memcpy, views) and "
               "cross-memory attach (process_vm_readv) for user buffers",
    .init = shm_init,
    .fini = shm_fini,
    .mem_alloc = pxs_conn_seg_mem_alloc,
    .mem_free = pxs_conn_seg_mem_free,
    .mem_reg = shm_mem_reg,
    .mem_dereg = shm_mem_dereg,
    .pack_remote = shm_pack,
    .get = shm_get,
    .cancel = pxs_conn_noop_cancel,
    .check = shm_check,
    .view = shm_view,
    .view_release = shm_view_release,
    .progress = pxs_conn_noop_progress,
};
