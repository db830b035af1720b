/* The distributed named-key directory: each rank holds a share of the
 * names, chosen by hash, in an MPI_Win_allocate window read and written
 * one-sidedly inside one MPI_Win_lock_all epoch.
 *
 * Share layout (mpi_wire.h, which reads it): a 64-byte header (closed
 * flag), then buckets of a 64-byte header (a reserved word, the overflow
 * flag) and PXS_MPI_ENTRIES entries of PXS_MPI_ENTRY bytes.
 * Entry: state u64 (0 free, 1 used), check u64 (CRC-32C of the rest),
 * publisher rank u32, proxy length u32, name[PXS_MPI_NAME_CAP], proxy bytes.
 * Readers take no lock: they read a whole bucket in one MPI_Get and trust
 * an entry only if its check matches, so a write racing the read is
 * retried, never returned. Writers to one rank's share serialise on an
 * exclusive passive-target lock of a second, empty window: not on a lock
 * word with MPI_Compare_and_swap, which Open MPI 4.1's osc/rdma crashes on
 * when the target is the caller itself (vader's atomic emulation). The
 * lock is held only inside one pxs call, so the wait for it is bounded by
 * how long other ranks' publish calls take. */
#include <stdlib.h>
#include <string.h>

#include "mpi_int.h"
#include "mpi_wire.h"

#define MAX_RETRIES 1000

_Static_assert(PXS_MPI_ENTRY_PROXY_MAX == PXS_MPI_DIR_PROXY_MAX, "entry layout");

static MPI_Aint bucket_disp(uint32_t b)
{
    return PXS_MPI_SHARE_HDR + (MPI_Aint)b * PXS_MPI_BUCKET;
}

/* FNV-1a, then a finalizer (MurmurHash3's fmix64): FNV's high bits barely
 * move for names that differ only at the end ("field/0/12", "field/0/13"),
 * and they pick the bucket: 20 of 24 such names shared one bucket before. */
static uint64_t name_hash(const char *name)
{
    uint64_t h = pxs__hash64(name, strlen(name));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

int pxs_mpi_name_home(const pxs_mpi_t *m, const char *name)
{
    if (!m || !name) return -1;
    return (int)(name_hash(name) % (uint64_t)m->size);
}

pxs_status_t pxs__mpi_dir_create(pxs_mpi_t *m, uint32_t buckets)
{
    m->dir_buckets = buckets;
    MPI_Aint bytes = PXS_MPI_SHARE_HDR + (MPI_Aint)buckets * PXS_MPI_BUCKET;
    int rc = MPI_Win_allocate(bytes, 1, MPI_INFO_NULL, m->comm, &m->dir_base, &m->dir_win);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "MPI_Win_allocate (directory)");
    MPI_Win_set_errhandler(m->dir_win, MPI_ERRORS_RETURN);
    void *word;
    rc = MPI_Win_allocate(8, 1, MPI_INFO_NULL, m->comm, &word, &m->dir_lock_win);
    if (rc != MPI_SUCCESS) {
        MPI_Win_free(&m->dir_win);
        return pxs__mpi_status(rc, "MPI_Win_allocate (directory lock)");
    }
    memset(word, 0, 8); /* read under the lock only to make it taken */
    MPI_Win_set_errhandler(m->dir_lock_win, MPI_ERRORS_RETURN);
    memset(m->dir_base, 0, (size_t)bytes);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, m->dir_win);
    /* Nobody may touch a share before its owner zeroed it. */
    MPI_Win_sync(m->dir_win);
    MPI_Barrier(m->comm);
    return PXS_OK;
}

void pxs__mpi_dir_close(pxs_mpi_t *m)
{
    if (!m->dir_base) return;
    uint64_t one = 1;
    /* Through MPI, so that readers in the epoch see it (unified model). */
    MPI_Accumulate(&one, 1, MPI_UINT64_T, m->rank, 0, 1, MPI_UINT64_T, MPI_REPLACE, m->dir_win);
    MPI_Win_flush(m->rank, m->dir_win);
}

void pxs__mpi_dir_free(pxs_mpi_t *m)
{
    if (!m->dir_base) return;
    MPI_Win_unlock_all(m->dir_win);
    MPI_Win_free(&m->dir_win);
    MPI_Win_free(&m->dir_lock_win);
    m->dir_base = NULL;
}

/* Read share header and one bucket of `home` in one round trip. */
static pxs_status_t read_bucket(pxs_mpi_t *m, int home, uint32_t b, uint8_t *bk, bool *closed)
{
    uint64_t hdr = 0;
    int rc = MPI_Get(&hdr, 8, MPI_BYTE, home, 0, 8, MPI_BYTE, m->dir_win);
    if (rc == MPI_SUCCESS)
        rc = MPI_Get(bk, PXS_MPI_BUCKET, MPI_BYTE, home, bucket_disp(b), PXS_MPI_BUCKET,
                     MPI_BYTE, m->dir_win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(home, m->dir_win);
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "directory read");
    *closed = hdr != 0;
    return PXS_OK;
}

static pxs_status_t check_name(const char *name)
{
    if (!name || !name[0] || strlen(name) > PXS_NAME_MAX) {
        pxs_error("a name is 1..%d bytes", PXS_NAME_MAX);
        return PXS_ERR_INVALID_PARAM;
    }
    return PXS_OK;
}

pxs_status_t pxs_mpi_name_lookup(pxs_mpi_t *m, const char *name, pxs_proxy_t *proxy_p)
{
    if (!m || !proxy_p || m->leaving) return PXS_ERR_INVALID_PARAM;
    pxs_status_t st = check_name(name);
    if (st != PXS_OK) return st;
    uint64_t h = name_hash(name);
    int home = (int)(h % (uint64_t)m->size);
    uint32_t b = (uint32_t)((h >> 32) % m->dir_buckets);
    uint8_t bk[PXS_MPI_BUCKET] __attribute__((aligned(64)));
    st = PXS_ERR_NOT_FOUND;
    for (uint32_t probe = 0, tries = 0; probe < m->dir_buckets && tries < MAX_RETRIES; tries++) {
        bool closed;
        pxs_status_t rs = read_bucket(m, home, b, bk, &closed);
        if (rs != PXS_OK) {
            st = rs;
            break;
        }
        if (closed) {
            st = PXS_ERR_UNREACHABLE; /* its home rank has left */
            break;
        }
        bool torn, found;
        pxs_status_t fs = pxs__mpi_bucket_scan(bk, name, proxy_p, &found, &torn);
        if (found) {
            st = fs;
            break;
        }
        if (torn) continue; /* only a retry can tell whether a torn entry is ours */
        if (!pxs_rd64(bk + 8)) break; /* never overflowed: not here */
        b = (b + 1) % m->dir_buckets;
        probe++;
    }
    return st;
}

static pxs_status_t put_bytes(pxs_mpi_t *m, int home, MPI_Aint disp, const void *src, int len)
{
    int rc = MPI_Put(src, len, MPI_BYTE, home, disp, len, MPI_BYTE, m->dir_win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(home, m->dir_win);
    return pxs__mpi_status(rc, "directory write");
}

/* Walk the buckets of name's chain under the home share's writer lock;
 * `fn` acts on each bucket and says whether the walk is over. */
typedef pxs_status_t (*bucket_fn)(pxs_mpi_t *m, int home, uint32_t b, uint8_t *bk, void *arg,
                                  bool *done);

static pxs_status_t walk(pxs_mpi_t *m, const char *name, bucket_fn fn, void *arg)
{
    uint64_t h = name_hash(name);
    int home = (int)(h % (uint64_t)m->size);
    uint32_t b = (uint32_t)((h >> 32) % m->dir_buckets);
    uint8_t bk[PXS_MPI_BUCKET] __attribute__((aligned(64)));
    /* MPI may grant a lock lazily, at the epoch's first operation: with no
     * operation on the lock window, osc/pt2pt let two writers of one share
     * in at once (one overwrote the other's new entry). A flushed get in
     * the epoch returns only once the lock is ours. */
    uint64_t word;
    int rc = MPI_Win_lock(MPI_LOCK_EXCLUSIVE, home, 0, m->dir_lock_win);
    if (rc == MPI_SUCCESS) {
        rc = MPI_Get(&word, 8, MPI_BYTE, home, 0, 8, MPI_BYTE, m->dir_lock_win);
        if (rc == MPI_SUCCESS) rc = MPI_Win_flush(home, m->dir_lock_win);
        if (rc != MPI_SUCCESS) MPI_Win_unlock(home, m->dir_lock_win);
    }
    if (rc != MPI_SUCCESS) return pxs__mpi_status(rc, "directory lock");
    pxs_status_t st = PXS_ERR_NO_RESOURCE;
    for (uint32_t probe = 0; probe < m->dir_buckets; probe++) {
        bool closed, done = false;
        st = read_bucket(m, home, b, bk, &closed);
        if (st == PXS_OK && closed) st = PXS_ERR_UNREACHABLE;
        if (st == PXS_OK) st = fn(m, home, b, bk, arg, &done);
        if (st != PXS_OK || done) break;
        st = PXS_ERR_NO_RESOURCE;
        b = (b + 1) % m->dir_buckets;
    }
    MPI_Win_unlock(home, m->dir_lock_win);
    return st;
}

typedef struct {
    const char *name;
    const uint8_t *wire;
    uint32_t len;
} pub_t;

static pxs_status_t pub_fn(pxs_mpi_t *m, int home, uint32_t b, uint8_t *bk, void *arg, bool *done)
{
    pub_t *a = arg;
    int slot = -1;
    for (int i = 0; i < PXS_MPI_ENTRIES; i++) {
        const uint8_t *e = bk + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY;
        /* Under the writer lock no write is in flight: entries are whole. */
        if (pxs_rd64(e) == 1 && pxs__mpi_entry_is(e, a->name)) return PXS_ERR_EXISTS;
        if (pxs_rd64(e) == 0 && slot < 0) slot = i;
    }
    if (slot < 0) {
        if (!pxs_rd64(bk + 8)) {
            uint64_t one = 1;
            pxs_status_t st = put_bytes(m, home, bucket_disp(b) + 8, &one, 8);
            if (st != PXS_OK) return st;
        }
        return PXS_OK; /* full: on to the next bucket */
    }
    /* An earlier publisher may have overflowed past this bucket before an
     * entry here was freed: the rest of the chain must not have the name
     * (we hold the share's writer lock, so it cannot change meanwhile). */
    if (pxs_rd64(bk + 8)) {
        uint8_t next[PXS_MPI_BUCKET] __attribute__((aligned(64)));
        pxs_status_t st = PXS_OK;
        uint32_t c = b;
        for (uint32_t probe = 1; probe < m->dir_buckets && st == PXS_OK; probe++) {
            bool closed;
            c = (c + 1) % m->dir_buckets;
            if ((st = read_bucket(m, home, c, next, &closed)) != PXS_OK) break;
            for (int i = 0; i < PXS_MPI_ENTRIES; i++) {
                const uint8_t *e = next + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY;
                if (pxs__mpi_entry_valid(e) && pxs__mpi_entry_is(e, a->name)) st = PXS_ERR_EXISTS;
            }
            if (!pxs_rd64(next + 8)) break;
        }
        if (st != PXS_OK) return st;
    }
    uint8_t e[PXS_MPI_ENTRY];
    memset(e, 0, PXS_MPI_ENTRY_HDR);
    pxs_wr64(e, 1);
    pxs_wr32(e + 16, (uint32_t)m->rank);
    pxs_wr32(e + 20, a->len);
    memcpy(e + 24, a->name, strlen(a->name));
    memcpy(e + PXS_MPI_ENTRY_HDR, a->wire, a->len);
    pxs_wr64(e + 8, pxs__mpi_entry_check(e));
    *done = true;
    return put_bytes(m, home, bucket_disp(b) + PXS_MPI_BUCKET_HDR + slot * PXS_MPI_ENTRY, e,
                     (int)(PXS_MPI_ENTRY_HDR + a->len));
}

pxs_status_t pxs_mpi_name_publish(pxs_mpi_t *m, const char *name, const pxs_proxy_t *proxy)
{
    if (!m || !proxy || m->leaving) return PXS_ERR_INVALID_PARAM;
    pxs_status_t st = check_name(name);
    if (st != PXS_OK) return st;
    pxs_proxy_info_t info;
    if ((st = pxs_proxy_info(proxy, &info)) != PXS_OK) return st;
    if (info.encoded_len > PXS_MPI_DIR_PROXY_MAX) {
        pxs_error("a proxy of %zu bytes exceeds the directory's %d (inline less data)",
                  info.encoded_len, PXS_MPI_DIR_PROXY_MAX);
        return PXS_ERR_INVALID_PARAM;
    }
    pub_t a = {name, proxy->bytes, (uint32_t)info.encoded_len};
    /* Before taking a free entry, the walk must have seen every bucket that
     * could hold the name already: the chain is checked bucket by bucket. */
    return walk(m, name, pub_fn, &a);
}


static pxs_status_t unpub_fn(pxs_mpi_t *m, int home, uint32_t b, uint8_t *bk, void *arg,
                             bool *done)
{
    const char *name = arg;
    for (int i = 0; i < PXS_MPI_ENTRIES; i++) {
        const uint8_t *e = bk + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY;
        if (pxs_rd64(e) != 1 || !pxs__mpi_entry_is(e, name)) continue;
        *done = true;
        if (pxs_rd32(e + 16) != (uint32_t)m->rank) return PXS_ERR_NOT_OWNER;
        uint64_t zero = 0;
        return put_bytes(m, home, bucket_disp(b) + PXS_MPI_BUCKET_HDR + i * PXS_MPI_ENTRY,
                         &zero, 8);
    }
    if (!pxs_rd64(bk + 8)) {
        *done = true;
        return PXS_ERR_NOT_FOUND;
    }
    return PXS_OK;
}

pxs_status_t pxs_mpi_name_unpublish(pxs_mpi_t *m, const char *name)
{
    if (!m || m->leaving) return PXS_ERR_INVALID_PARAM;
    pxs_status_t st = check_name(name);
    if (st != PXS_OK) return st;
    st = walk(m, name, unpub_fn, (void *)name);
    return st == PXS_ERR_NO_RESOURCE ? PXS_ERR_NOT_FOUND : st;
}
