/* The embedded rendezvous: a per-domain directory of named proxies in a
 * shared segment, open-addressed by name hash, guarded by a robust
 * process-shared mutex.
 *
 * Crash safety: an entry is written with state WRITING and flipped to USED
 * last, so a process that dies mid-write leaves a WRITING entry; the next
 * locker gets EOWNERDEAD and turns such entries into tombstones before it
 * marks the mutex consistent. Names whose publisher has exited are treated
 * as absent and reclaimed in place.
 *
 * Lifetime: the last context to close a directory with no live names left
 * unlinks it and marks it dead under the lock; a process still holding the
 * old mapping sees the mark when it next locks and reopens the path. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxs_int.h"

#define NAMES_MAGIC 0x7078732d6e616d32ull /* "pxs-nam2" */
#define NAMES_FILE_VERSION "v2" /* in the file name too: layouts never meet */
#define NAMES_DEFAULT 1024

enum { E_FREE = 0, E_USED = 1, E_TOMB = 2, E_WRITING = 3 };

typedef struct {
    _Atomic uint32_t state;
    int32_t pid;
    uint64_t start;
    uint64_t owner;
    uint64_t hash;
    uint32_t proxy_len;
    char name[PXS_NAME_MAX + 1];
    uint8_t proxy[PXS_PROXY_MAX];
} entry_t;

typedef struct {
    uint64_t magic;
    uint64_t domain_id;
    uint32_t nent;
    uint32_t entry_size;
    uint32_t dead; /* unlinked: reopen the path (under lock) */
    pthread_mutex_t lock;
} __attribute__((aligned(64))) hdr_t;

struct pxs_names {
    hdr_t *hdr;
    entry_t *ent;
    size_t map_len;
    char path[160];
};

static size_t names_len(uint32_t nent) { return sizeof(hdr_t) + (size_t)nent * sizeof(entry_t); }

static pxs_status_t names_map(int fd, uint64_t domain, pxs_names_t *n)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof(hdr_t)) return PXS_ERR_IO;
    void *base = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return PXS_ERR_IO;
    hdr_t *h = base;
    if (h->magic != NAMES_MAGIC || h->domain_id != domain || h->entry_size != sizeof(entry_t) ||
        h->nent == 0 || (size_t)sb.st_size < names_len(h->nent)) {
        munmap(base, (size_t)sb.st_size);
        pxs_error("name directory segment is not a pxs directory of this version");
        return PXS_ERR_IO;
    }
    n->hdr = h;
    n->ent = (entry_t *)(h + 1);
    n->map_len = (size_t)sb.st_size;
    return PXS_OK;
}

/* Entries of a new directory: PXS_NAMES_MAX, strictly parsed. */
static pxs_status_t names_size(uint32_t *nent_p)
{
    const char *env = getenv("PXS_NAMES_MAX");
    *nent_p = NAMES_DEFAULT;
    if (!env || !*env) return PXS_OK;
    char *end;
    errno = 0;
    unsigned long v = strtoul(env, &end, 10);
    if (errno || *end || v == 0 || v > (1u << 20) || env[0] == '-') {
        pxs_error("PXS_NAMES_MAX=\"%s\" is not a number in [1, %u]", env, 1u << 20);
        return PXS_ERR_INVALID_PARAM;
    }
    *nent_p = (uint32_t)v;
    return PXS_OK;
}

/* Build the directory under a private name, then link() it into place:
 * nobody can ever see a half-initialised one. */
static pxs_status_t names_create(const char *path, uint64_t domain)
{
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    unlink(tmp);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return PXS_ERR_IO;
    uint32_t nent;
    pxs_status_t st = names_size(&nent);
    if (st != PXS_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    size_t len = names_len(nent);
    st = PXS_ERR_IO;
    void *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) != 0) goto out;
    base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) goto out;
    hdr_t *h = base;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&h->lock, &a);
    pthread_mutexattr_destroy(&a);
    h->domain_id = domain;
    h->nent = nent;
    h->entry_size = sizeof(entry_t);
    h->magic = NAMES_MAGIC;
    munmap(base, len);
    st = (link(tmp, path) == 0 || errno == EEXIST) ? PXS_OK : PXS_ERR_IO;
out:
    close(fd);
    unlink(tmp);
    return st;
}

static pxs_status_t names_open(pxs_context_t *ctx, pxs_names_t **n_p)
{
    if (ctx->names) {
        *n_p = ctx->names;
        return PXS_OK;
    }
    char path[160];
    snprintf(path, sizeof path, "%s/pxs-names." NAMES_FILE_VERSION ".%016" PRIx64, PXS_SHM_DIR,
             ctx->domain_id);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        pxs_status_t st = names_create(path, ctx->domain_id);
        if (st != PXS_OK) {
            pxs_error("cannot create name directory %s: %s", path, pxs_strerror(st));
            return st;
        }
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        pxs_error("cannot open name directory %s: %s", path, strerror(errno));
        return PXS_ERR_IO;
    }
    pxs_names_t *n = calloc(1, sizeof *n);
    if (!n) {
        close(fd);
        return PXS_ERR_NO_MEMORY;
    }
    pxs_status_t st = names_map(fd, ctx->domain_id, n);
    close(fd);
    if (st != PXS_OK) {
        free(n);
        return st;
    }
    snprintf(n->path, sizeof n->path, "%s", path);
    ctx->names = n;
    *n_p = n;
    return PXS_OK;
}

static void names_unmap(pxs_context_t *ctx)
{
    munmap(ctx->names->hdr, ctx->names->map_len);
    free(ctx->names);
    ctx->names = NULL;
}

static pxs_status_t names_lock(pxs_names_t *n)
{
    int rc = pthread_mutex_lock(&n->hdr->lock);
    if (rc == EOWNERDEAD) {
        int fixed = 0;
        for (uint32_t i = 0; i < n->hdr->nent; i++) {
            if (atomic_load(&n->ent[i].state) == E_WRITING) {
                atomic_store(&n->ent[i].state, E_TOMB);
                fixed++;
            }
        }
        pxs_warn("a process died holding the name directory lock; %d half-written entries dropped",
                 fixed);
        pthread_mutex_consistent(&n->hdr->lock);
        rc = 0;
    }
    if (rc != 0) {
        pxs_error("name directory lock: %s", strerror(rc));
        return PXS_ERR_IO;
    }
    return PXS_OK;
}

static void names_unlock(pxs_names_t *n) { pthread_mutex_unlock(&n->hdr->lock); }

/* Open (if needed) and lock this domain's live directory. */
static pxs_status_t names_acquire(pxs_context_t *ctx, pxs_names_t **n_p)
{
    for (int tries = 0; tries < 8; tries++) {
        pxs_names_t *n;
        pxs_status_t st = names_open(ctx, &n);
        if (st == PXS_OK) st = names_lock(n);
        if (st != PXS_OK) return st;
        if (!n->hdr->dead) {
            *n_p = n;
            return PXS_OK;
        }
        names_unlock(n); /* removed by its last user: take the new one */
        names_unmap(ctx);
    }
    return PXS_ERR_IO;
}

static pxs_status_t check_name(const char *name, size_t *len_p)
{
    if (!name) return PXS_ERR_INVALID_PARAM;
    size_t len = strnlen(name, PXS_NAME_MAX + 1);
    if (len == 0 || len > PXS_NAME_MAX) return PXS_ERR_INVALID_PARAM;
    *len_p = len;
    return PXS_OK;
}

/* Find a USED entry for name; reclaim it if its publisher is gone. */
static entry_t *names_find(pxs_names_t *n, const char *name, uint64_t h, entry_t **free_p)
{
    uint32_t nent = n->hdr->nent;
    if (free_p) *free_p = NULL;
    for (uint32_t i = 0; i < nent; i++) {
        entry_t *e = &n->ent[(h + i) % nent];
        uint32_t s = atomic_load(&e->state);
        if (s == E_FREE) {
            if (free_p && !*free_p) *free_p = e;
            return NULL;
        }
        if (s != E_USED) {
            if (free_p && !*free_p) *free_p = e;
            continue;
        }
        if (e->hash != h || strcmp(e->name, name) != 0) continue;
        if (pxs__proc_alive(e->pid, e->start) == PXS_ERR_PEER_DEAD) {
            pxs_debug("reclaiming name \"%s\" of exited process %d", name, e->pid);
            atomic_store(&e->state, E_TOMB);
            if (free_p && !*free_p) *free_p = e;
            continue;
        }
        return e;
    }
    return NULL;
}

/* Test hook: die inside publish, holding the lock with a half-written entry. */
int pxs__names_crash_point;

pxs_status_t pxs_name_publish(pxs_context_t *ctx, const char *name, const pxs_proxy_t *proxy)
{
    size_t len;
    pxs_pdesc_t d;
    pxs_status_t st = check_name(name, &len);
    if (st != PXS_OK) return st;
    if ((st = pxs__proxy_check(ctx, proxy, &d)) != PXS_OK) return st;
    pxs__lock(ctx);
    pxs_names_t *n;
    if ((st = names_acquire(ctx, &n)) != PXS_OK) {
        pxs__unlock(ctx);
        return st;
    }
    uint64_t h = pxs__hash64(name, len);
    entry_t *slot;
    if (names_find(n, name, h, &slot)) st = PXS_ERR_EXISTS;
    else if (!slot) st = PXS_ERR_NO_RESOURCE;
    else {
        atomic_store(&slot->state, E_WRITING);
        if (pxs__names_crash_point) _exit(99);
        slot->pid = (int32_t)ctx->pid;
        slot->start = ctx->start_time;
        slot->owner = ctx->owner_id;
        slot->hash = h;
        memcpy(slot->name, name, len + 1);
        slot->proxy_len = d.total_len;
        memcpy(slot->proxy, proxy->bytes, d.total_len);
        atomic_store_explicit(&slot->state, E_USED, memory_order_release);
    }
    names_unlock(n);
    pxs__unlock(ctx);
    return st;
}

pxs_status_t pxs_name_lookup(pxs_context_t *ctx, const char *name, pxs_proxy_t *proxy_p)
{
    size_t len;
    pxs_status_t st = check_name(name, &len);
    if (st != PXS_OK || !ctx || !proxy_p) return st != PXS_OK ? st : PXS_ERR_INVALID_PARAM;
    pxs__lock(ctx);
    pxs_names_t *n;
    if ((st = names_acquire(ctx, &n)) != PXS_OK) {
        pxs__unlock(ctx);
        return st;
    }
    entry_t *e = names_find(n, name, pxs__hash64(name, len), NULL);
    pxs_proxy_t tmp;
    if (!e) st = PXS_ERR_NOT_FOUND;
    else st = pxs_proxy_decode(e->proxy, e->proxy_len <= PXS_PROXY_MAX ? e->proxy_len : 0, &tmp);
    names_unlock(n);
    pxs__unlock(ctx);
    if (st == PXS_OK) memcpy(proxy_p, &tmp, sizeof tmp);
    return st;
}

pxs_status_t pxs_name_unpublish(pxs_context_t *ctx, const char *name)
{
    size_t len;
    pxs_status_t st = check_name(name, &len);
    if (st != PXS_OK || !ctx) return st != PXS_OK ? st : PXS_ERR_INVALID_PARAM;
    pxs__lock(ctx);
    pxs_names_t *n;
    if ((st = names_acquire(ctx, &n)) != PXS_OK) {
        pxs__unlock(ctx);
        return st;
    }
    entry_t *e = names_find(n, name, pxs__hash64(name, len), NULL);
    if (!e) st = PXS_ERR_NOT_FOUND;
    else if (e->owner != ctx->owner_id) st = PXS_ERR_NOT_OWNER;
    else atomic_store(&e->state, E_TOMB);
    names_unlock(n);
    pxs__unlock(ctx);
    return st;
}

void pxs__names_close(pxs_context_t *ctx)
{
    pxs_names_t *n = ctx->names;
    if (!n) return;
    if (names_lock(n) == PXS_OK) {
        uint32_t live = 0;
        for (uint32_t i = 0; i < n->hdr->nent; i++) {
            entry_t *e = &n->ent[i];
            if (atomic_load(&e->state) != E_USED) continue;
            if (e->owner == ctx->owner_id || pxs__proc_alive(e->pid, e->start) != PXS_OK)
                atomic_store(&e->state, E_TOMB);
            else
                live++;
        }
        if (!live && !n->hdr->dead) {
            n->hdr->dead = 1;
            unlink(n->path);
        }
        names_unlock(n);
    }
    names_unmap(ctx);
}
