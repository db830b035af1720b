/* The conformance suite: the same cases against every connector, chosen by
 * PXS_TEST_CONNECTOR (meson registers one run per connector). Cases a
 * connector cannot support are excluded by its capability bits, as fabtests
 * does per provider; they still check that the refusal is clean. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pxs/pxs.h>
#include "../common/forge.h"
#include "../common/peer.h"
#include "../common/refuse.h"

static const char *conn_name;
static uint64_t caps;
static pxs_context_t *ctx;
static pxs_store_t *store;

#ifdef PXS_TEST_MPI
/* The "mpi" connector lives in libpxs_mpi and needs a context made by
 * pxs_mpi_init: each test (a forked child) is a one-rank MPI job of its
 * own (singleton MPI_Init). Its objects are read back through the dynamic
 * window with MPI_Get; reads by other ranks are tests/mpi's job, since a
 * forked test cannot join an mpirun job. */
#include <pxs/mpi.h>

static pxs_status_t new_context(const pxs_context_params_t *cp, pxs_context_t **c, void **h)
{
    if (strcmp(conn_name, "mpi")) {
        *h = NULL;
        return pxs_init(cp, c);
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    pxs_mpi_params_t mp = {.field_mask = PXS_MPI_PARAM_CONTEXT, .context = cp};
    pxs_mpi_t *m;
    pxs_status_t st = pxs_mpi_init(MPI_COMM_SELF, &mp, &m);
    if (st == PXS_OK) *c = pxs_mpi_context(m);
    *h = m;
    return st;
}
static void end_context(pxs_context_t *c, void *h)
{
    if (h) pxs_mpi_finalize(h, PXS_TIMEOUT_DEFAULT);
    else pxs_finalize(c);
}
#else
static pxs_status_t new_context(const pxs_context_params_t *cp, pxs_context_t **c, void **h)
{
    *h = NULL;
    return pxs_init(cp, c);
}
static void end_context(pxs_context_t *c, void *h) { (void)h, pxs_finalize(c); }
#endif
static void *main_handle;

static void setup(void)
{
    conn_name = getenv("PXS_TEST_CONNECTOR");
    cr_assert(conn_name, "set PXS_TEST_CONNECTOR");
    /* First: a companion library's connector is known once it started. */
    cr_assert_eq(new_context(NULL, &ctx, &main_handle), PXS_OK);
    pxs_connector_desc_t d;
    caps = 0;
    for (unsigned i = 0; pxs_connector_describe(i, &d) == PXS_OK; i++)
        if (!strcmp(d.name, conn_name)) caps = d.caps | (1ull << 63);
    cr_assert(caps, "connector %s not built in", conn_name);
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = conn_name};
    cr_assert_eq(pxs_store_open(ctx, &sp, &store), PXS_OK);
}

static void teardown(void)
{
    end_context(ctx, main_handle);
#ifdef PXS_TEST_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Finalize();
#endif
}

TestSuite(conformance, .init = setup, .fini = teardown, .timeout = 60);

static pxs_proxy_t put(const void *buf, size_t len, uint32_t flags)
{
    pxs_proxy_t p;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = flags};
    pxs_status_t st = pxs_put(store, buf, len, &pp, &p);
    cr_assert_eq(st, PXS_OK, "put of %zu bytes: %s", len, pxs_strerror(st));
    return p;
}

static void expect_resolve(const pxs_proxy_t *p, size_t len, unsigned seed)
{
    uint8_t *out = malloc(len + 1);
    size_t n = 0;
    pxs_status_t st = pxs_resolve(ctx, p, out, len, &n);
    cr_assert_eq(st, PXS_OK, "resolve %zu bytes: %s", len, pxs_strerror(st));
    cr_assert_eq(n, len);
    cr_assert(check_pattern(out, len, seed), "bytes differ at size %zu", len);
    free(out);
}

Test(conformance, round_trip_every_size_and_kind)
{
    static const size_t sizes[] = {0, 1, 100, 1023, 1024, 1025, 4096, 65537, 1 << 20, 8 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i];
        uint8_t *user = malloc(len + 1), *mem;
        cr_assert_eq(pxs_alloc(ctx, len + 1, (void **)&mem), PXS_OK);
        fill_pattern(user, len, (unsigned)i);
        fill_pattern(mem, len, (unsigned)i);
        pxs_proxy_t p[5] = {put(user, len, 0), put(user, len, PXS_PUT_NO_INLINE),
                            put(user, len, PXS_PUT_COPY | PXS_PUT_NO_INLINE),
                            put(mem, len, PXS_PUT_NO_INLINE), put(mem, len, PXS_PUT_COPY)};
        for (int k = 0; k < 5; k++) expect_resolve(&p[k], len, (unsigned)i);
        for (int k = 0; k < 5; k++) cr_assert_eq(pxs_evict(store, &p[k]), PXS_OK);
        cr_assert_eq(pxs_free(ctx, mem), PXS_OK);
        free(user);
    }
}

Test(conformance, zero_copy_put_exposes_the_buffer_in_place)
{
    if (!(caps & PXS_CAP_ZERO_COPY_PUT)) return;
    static uint8_t buf[50000];
    fill_pattern(buf, sizeof buf, 1);
    pxs_proxy_t p = put(buf, sizeof buf, 0);
    fill_pattern(buf, sizeof buf, 2); /* no copy was taken: the change shows */
    expect_resolve(&p, sizeof buf, 2);
}

Test(conformance, copying_put_takes_a_snapshot)
{
    static uint8_t buf[50000];
    fill_pattern(buf, sizeof buf, 3);
    pxs_proxy_t p = put(buf, sizeof buf, PXS_PUT_COPY);
    memset(buf, 0, sizeof buf);
    expect_resolve(&p, sizeof buf, 3);
}

Test(conformance, evicted_object_yields_no_bytes)
{
    static uint8_t buf[10000], out[10000];
    fill_pattern(buf, sizeof buf, 4);
    pxs_proxy_t p = put(buf, sizeof buf, 0);
    cr_assert_eq(pxs_exists(ctx, &p), PXS_OK);
    cr_assert_eq(pxs_evict(store, &p), PXS_OK);
    memset(out, 0x5A, sizeof out);
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_EVICTED);
    for (size_t i = 0; i < sizeof out; i++) cr_assert_eq(out[i], 0, "byte %zu leaked", i);
    cr_assert_eq(pxs_exists(ctx, &p), PXS_ERR_EVICTED);
    cr_assert_eq(pxs_evict(store, &p), PXS_ERR_EVICTED, "double evict");
    void *mem;
    cr_assert_eq(pxs_resolve_alloc(ctx, &p, &mem, NULL), PXS_ERR_EVICTED);
}

Test(conformance, stale_proxy_never_reads_reused_memory)
{
    static uint8_t buf[10000], out[10000];
    fill_pattern(buf, sizeof buf, 5);
    pxs_proxy_t old = put(buf, sizeof buf, 0);
    cr_assert_eq(pxs_evict(store, &old), PXS_OK);
    /* Same buffer, same slot, new contents: only the new proxy may read it. */
    fill_pattern(buf, sizeof buf, 6);
    pxs_proxy_t fresh = put(buf, sizeof buf, 0);
    cr_assert_eq(pxs_resolve(ctx, &old, out, sizeof out, NULL), PXS_ERR_EVICTED);
    expect_resolve(&fresh, sizeof buf, 6);
}

Test(conformance, short_destination_is_refused_untouched)
{
    static uint8_t buf[5000], out[4999];
    fill_pattern(buf, sizeof buf, 7);
    for (int inl = 0; inl < 2; inl++) {
        pxs_proxy_t p = put(buf, inl ? 500 : sizeof buf, inl ? 0 : PXS_PUT_NO_INLINE);
        size_t need = 0;
        memset(out, 0x11, sizeof out);
        cr_assert_eq(pxs_resolve(ctx, &p, out, inl ? 499 : sizeof out, &need),
                     PXS_ERR_BUFFER_TOO_SMALL);
        cr_assert_eq(need, inl ? 500u : sizeof buf);
        cr_assert_eq(out[0], 0x11);
    }
}

Test(conformance, resolve_into_library_buffer_and_lazily)
{
    static uint8_t buf[300000];
    fill_pattern(buf, sizeof buf, 8);
    pxs_proxy_t p = put(buf, sizeof buf, 0);
    void *mem;
    size_t n;
    cr_assert_eq(pxs_resolve_alloc(ctx, &p, &mem, &n), PXS_OK);
    cr_assert_eq(n, sizeof buf);
    cr_assert(check_pattern(mem, n, 8));
    pxs_buffer_free(mem);

    pxs_lazy_t *lazy;
    cr_assert_eq(pxs_lazy_create(ctx, &p, &lazy), PXS_OK);
    cr_assert_not(pxs_lazy_is_resolved(lazy));
    const void *data;
    cr_assert_eq(pxs_lazy_get(lazy, &data, &n), PXS_OK);
    cr_assert(pxs_lazy_is_resolved(lazy));
    cr_assert(check_pattern(data, n, 8));
    /* Cached: the object can go, the handle keeps serving its bytes. */
    cr_assert_eq(pxs_evict(store, &p), PXS_OK);
    const void *again;
    cr_assert_eq(pxs_lazy_get(lazy, &again, &n), PXS_OK);
    cr_assert_eq(again, data);
    pxs_lazy_free(lazy);
    /* Not yet resolved when the object went: a clear status, retried later. */
    pxs_proxy_t q = put(buf, sizeof buf, 0);
    cr_assert_eq(pxs_lazy_create(ctx, &q, &lazy), PXS_OK);
    cr_assert_eq(pxs_evict(store, &q), PXS_OK);
    cr_assert_eq(pxs_lazy_get(lazy, &data, &n), PXS_ERR_EVICTED);
    cr_assert_not(pxs_lazy_is_resolved(lazy));
    pxs_lazy_free(lazy);
}

Test(conformance, nonblocking_resolve)
{
    static uint8_t buf[1 << 20], out[1 << 20];
    fill_pattern(buf, sizeof buf, 9);
    pxs_proxy_t p = put(buf, sizeof buf, 0);
    pxs_request_t *req = NULL;
    pxs_resolve_params_t rp = {.field_mask = PXS_RESOLVE_PARAM_TIMEOUT, .timeout_ms = 5000};
    pxs_status_t st = pxs_resolve_nb(ctx, &p, out, sizeof out, &rp, &req);
    cr_assert(st == PXS_OK || st == PXS_INPROGRESS, "%s", pxs_strerror(st));
    if (st == PXS_INPROGRESS) {
        cr_assert_not_null(req);
        cr_assert_eq(pxs_wait(req, PXS_TIMEOUT_DEFAULT), PXS_OK);
        cr_assert_eq(pxs_test(req), PXS_OK);
        pxs_request_free(req);
    } else {
        cr_assert_null(req);
    }
    cr_assert(check_pattern(out, sizeof out, 9));
    cr_assert_eq(pxs_evict(store, &p), PXS_OK);
    st = pxs_resolve_nb(ctx, &p, out, sizeof out, NULL, &req);
    if (st == PXS_INPROGRESS) {
        st = pxs_wait(req, PXS_TIMEOUT_DEFAULT);
        pxs_request_free(req);
    }
    cr_assert_eq(st, PXS_ERR_EVICTED);
}

/* A window of resolves in flight together (connectors may settle them as
 * one batch), waited for out of order, one more cancelled among them, and
 * one object evicted while they are out: every other request gives its
 * own object's bytes; the evicted one gives its bytes (read before it
 * went) or PXS_ERR_EVICTED with nothing left in dst, never another
 * object's bytes. */
Test(conformance, a_window_of_resolves_settles_each_request)
{
    enum { W = 8, LEN = 4096, GONE = 3 };
    static uint8_t src[W][LEN], out[W][LEN], zero[LEN];
    pxs_proxy_t p[W];
    pxs_request_t *req[W];
    pxs_status_t st[W];
    for (int i = 0; i < W; i++) {
        fill_pattern(src[i], LEN, 60 + i);
        p[i] = put(src[i], LEN, i % 2 ? PXS_PUT_COPY : 0);
    }
    static uint8_t dropped[LEN];
    pxs_request_t *dropped_req = NULL;
    for (int i = 0; i < W; i++) {
        memset(out[i], 0xee, LEN);
        if (i == W / 2) {
            /* One more, issued before request i and freed unwaited after
             * it (cancelled): it must leave the batch whole, though the
             * next resolve reuses its request. */
            pxs_status_t sd = pxs_resolve_nb(ctx, &p[0], dropped, LEN, NULL, &dropped_req);
            cr_assert(sd == PXS_OK || sd == PXS_INPROGRESS, "%s", pxs_strerror(sd));
        }
        st[i] = pxs_resolve_nb(ctx, &p[i], out[i], LEN, NULL, &req[i]);
        cr_assert(st[i] == PXS_OK || st[i] == PXS_INPROGRESS, "%d: %s", i, pxs_strerror(st[i]));
        if (i == W / 2) pxs_request_free(dropped_req);
    }
    cr_assert_eq(pxs_evict(store, &p[GONE]), PXS_OK);
    for (int i = W - 1; i >= 0; i--) {
        if (st[i] != PXS_INPROGRESS) continue;
        st[i] = pxs_wait(req[i], PXS_TIMEOUT_DEFAULT);
        cr_assert_neq(st[i], PXS_INPROGRESS);
        pxs_request_free(req[i]);
    }
    for (int i = 0; i < W; i++) {
        if (i == GONE && st[i] == PXS_ERR_EVICTED) {
            cr_assert(memcmp(out[i], zero, LEN) == 0, "an evicted get left bytes in dst");
            continue;
        }
        cr_assert_eq(st[i], PXS_OK, "%d: %s", i, pxs_strerror(st[i]));
        cr_assert(check_pattern(out[i], LEN, 60 + i), "request %d has other bytes", i);
        if (i != GONE) cr_assert_eq(pxs_evict(store, &p[i]), PXS_OK);
    }
    /* Settled: none of them is left queued behind a later resolve. */
    cr_assert_eq(pxs_resolve(ctx, &p[GONE], out[0], LEN, NULL), PXS_ERR_EVICTED);
}

Test(conformance, view_of_library_memory_copies_nothing)
{
    uint8_t *mem;
    cr_assert_eq(pxs_alloc(ctx, 1 << 20, (void **)&mem), PXS_OK);
    fill_pattern(mem, 1 << 20, 10);
    pxs_proxy_t p = put(mem, 1 << 20, PXS_PUT_NO_INLINE);
    pxs_view_t *v;
    pxs_status_t st = pxs_view_acquire(ctx, &p, &v);
    if (!(caps & PXS_CAP_VIEW)) {
        cr_assert_eq(st, PXS_ERR_UNSUPPORTED);
        return;
    }
    cr_assert_eq(st, PXS_OK, "%s", pxs_strerror(st));
    cr_assert_eq(pxs_view_size(v), 1u << 20);
    cr_assert(check_pattern(pxs_view_data(v), 1 << 20, 10));
    cr_assert_eq(pxs_view_valid(v), PXS_OK);
    cr_assert_eq(pxs_evict(store, &p), PXS_OK);
    cr_assert_eq(pxs_view_valid(v), PXS_ERR_EVICTED);
    pxs_view_release(v);
    cr_assert_eq(pxs_view_acquire(ctx, &p, &v), PXS_ERR_EVICTED);
    /* Inline objects are viewable anywhere: their bytes travel along. */
    pxs_proxy_t small = put(mem, 16, 0);
    cr_assert_eq(pxs_view_acquire(ctx, &small, &v), PXS_OK);
    cr_assert_eq(memcmp(pxs_view_data(v), mem, 16), 0);
    pxs_view_release(v);
}

Test(conformance, closing_a_store_evicts_its_objects)
{
    static uint8_t buf[10000], out[10000];
    pxs_store_t *other;
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR | PXS_STORE_PARAM_NAME,
                             .connector = conn_name, .name = "second"};
    cr_assert_eq(pxs_store_open(ctx, &sp, &other), PXS_OK);
    pxs_proxy_t p;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    cr_assert_eq(pxs_put(other, buf, sizeof buf, &pp, &p), PXS_OK);
    cr_assert_eq(pxs_evict(store, &p), PXS_ERR_NOT_OWNER, "another store's object");
    pxs_store_close(other);
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_EVICTED);
}

Test(conformance, full_object_table_is_a_clear_status)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_MAX_OBJECTS, .max_objects = 4};
    pxs_context_t *small;
    pxs_store_t *s;
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = conn_name};
    void *small_h;
    cr_assert_eq(new_context(&cp, &small, &small_h), PXS_OK);
    cr_assert_eq(pxs_store_open(small, &sp, &s), PXS_OK);
    static uint8_t buf[4096];
    pxs_proxy_t p[5];
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    for (int i = 0; i < 4; i++) cr_assert_eq(pxs_put(s, buf, sizeof buf, &pp, &p[i]), PXS_OK);
    cr_assert_eq(pxs_put(s, buf, sizeof buf, &pp, &p[4]), PXS_ERR_NO_RESOURCE);
    cr_assert_eq(pxs_put(s, buf, 8, NULL, &p[4]), PXS_OK, "inline objects take no slot");
    cr_assert_eq(pxs_evict(s, &p[0]), PXS_OK);
    cr_assert_eq(pxs_put(s, buf, sizeof buf, &pp, &p[0]), PXS_OK);
    end_context(small, small_h);
}

/* --- across processes ---------------------------------------------------- */

/* The peer is an exec'd process driven over pipes; the "mpi" connector can
 * only read ranks of its own job, so tests/mpi covers these cases for it
 * (other ranks resolving, evicting, leaving, a foreign group). */
#define SKIP_WITHOUT_PEER()                                                     \
    do {                                                                        \
        if (!strcmp(conn_name, "mpi"))                                          \
            cr_skip_test("the mpi connector's peers are ranks: see tests/mpi"); \
    } while (0)

static const obj_spec_t peer_objs[] = {
    {3 << 20, OBJ_USER, 21}, {3 << 20, OBJ_ALLOC, 22}, {123457, OBJ_COPY, 23},
    {200, OBJ_INLINE, 24},   {70000, OBJ_USER, 25},
};
#define NPEER (sizeof peer_objs / sizeof peer_objs[0])

Test(conformance, other_process_resolves_evicts_and_dies)
{
    SKIP_WITHOUT_PEER();
    test_peer_t peer;
    pxs_proxy_t p[NPEER];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, peer_objs, NPEER, p), 0);
    uint8_t *out = malloc(3 << 20);
    if (!(caps & PXS_CAP_CROSS_PROCESS)) {
        cr_assert_eq(pxs_resolve(ctx, &p[0], out, 3 << 20, NULL), PXS_ERR_UNREACHABLE);
        expect_resolve(&p[3], 200, 24); /* inline needs no connector */
        cr_assert_eq(peer_quit(&peer), 0);
        free(out);
        return;
    }
    for (size_t i = 0; i < NPEER; i++) expect_resolve(&p[i], peer_objs[i].size, peer_objs[i].seed);
    if (caps & PXS_CAP_VIEW) {
        pxs_view_t *v;
        cr_assert_eq(pxs_view_acquire(ctx, &p[1], &v), PXS_OK);
        cr_assert(check_pattern(pxs_view_data(v), 3 << 20, 22));
        pxs_view_release(v);
        cr_assert_eq(pxs_view_acquire(ctx, &p[0], &v), PXS_ERR_UNSUPPORTED, "private memory");
    }
    /* Evicted by its owner: no bytes, whatever the kind. */
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(peer_evict(&peer, i), PXS_OK);
        cr_assert_eq(pxs_resolve(ctx, &p[i], out, 3 << 20, NULL), PXS_ERR_EVICTED);
        cr_assert_eq(pxs_exists(ctx, &p[i]), PXS_ERR_EVICTED);
    }
    /* The owner dies without cleaning up: a clear status, and inline
     * objects still resolve because they never needed the owner. */
    cr_assert_eq(peer_crash(&peer), 0);
    cr_assert_eq(pxs_resolve(ctx, &p[4], out, 70000, NULL), PXS_ERR_PEER_DEAD);
    cr_assert_eq(pxs_exists(ctx, &p[4]), PXS_ERR_PEER_DEAD);
    expect_resolve(&p[3], 200, 24);
    free(out);
}

/* Many resolves of another process's objects in flight at once (the ucx
 * connector sends them to their owner in batches, and the owner packs its
 * small answers together): more than one batch holds, small and large
 * objects, one evicted by its owner while they wait, one freed unwaited.
 * Each gives its own object's bytes; the evicted one its bytes or
 * PXS_ERR_EVICTED with nothing in dst. */
Test(conformance, a_window_to_another_process_settles_each_request)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {
        {7, OBJ_USER, 71},    {4096, OBJ_USER, 72},  {20000, OBJ_USER, 73},
        {100000, OBJ_COPY, 74}, {3001, OBJ_USER, 75}, {601, OBJ_ALLOC, 76},
    };
    enum { N = sizeof objs / sizeof objs[0], W = 150, GONE = 4, DROP = 77 };
    test_peer_t peer;
    pxs_proxy_t p[N];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, N, p), 0);
    static uint8_t *out[W];
    pxs_request_t *req[W];
    pxs_status_t st[W];
    for (int i = 0; i < W; i++) {
        size_t len = objs[i % N].size;
        out[i] = malloc(len);
        memset(out[i], 0xee, len);
        st[i] = pxs_resolve_nb(ctx, &p[i % N], out[i], len, NULL, &req[i]);
        cr_assert(st[i] == PXS_OK || st[i] == PXS_INPROGRESS, "%d: %s", i, pxs_strerror(st[i]));
        /* The next resolve takes the freed request from the pool: a late
         * callback of the freed get's must not find it (ucx, rma over tcp). */
        if (i == DROP && st[i] == PXS_INPROGRESS) pxs_request_free(req[i]);
    }
    cr_assert_eq(peer_evict(&peer, GONE), PXS_OK);
    for (int i = 0; i < W; i++) {
        if (st[i] != PXS_INPROGRESS) continue;
        if (i == DROP) continue; /* freed: nothing to check */
        st[i] = pxs_wait(req[i], PXS_TIMEOUT_DEFAULT);
        pxs_request_free(req[i]);
    }
    for (int i = 0; i < W; i++) {
        const obj_spec_t *o = &objs[i % N];
        if (i == DROP) {
            free(out[i]);
            continue;
        }
        if (i % N == GONE && st[i] == PXS_ERR_EVICTED) {
            for (size_t b = 0; b < o->size; b++) cr_assert_eq(out[i][b], 0, "%d: bytes left", i);
        } else {
            cr_assert_eq(st[i], PXS_OK, "%d: %s", i, pxs_strerror(st[i]));
            cr_assert(check_pattern(out[i], o->size, o->seed), "request %d has other bytes", i);
        }
        free(out[i]);
    }
    /* The others were left alone, the evicted one stays so. */
    expect_resolve(&p[0], 7, 71);
    uint8_t gone[3001];
    cr_assert_eq(pxs_resolve(ctx, &p[GONE], gone, sizeof gone, NULL), PXS_ERR_EVICTED);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* A handle reads the whole object or any part of it, again and again, and
 * keeps pxs_resolve's guarantees: no bytes of an evicted object. */
static void expect_read(pxs_handle_t *h, uint64_t off, size_t len, const uint8_t *want)
{
    uint8_t *out = malloc(len + 1);
    pxs_status_t st = pxs_handle_read(h, off, out, len);
    cr_assert_eq(st, PXS_OK, "read [%llu, +%zu): %s", (unsigned long long)off, len,
                 pxs_strerror(st));
    cr_assert(!memcmp(out, want + off, len), "bytes differ in [%llu, +%zu)",
              (unsigned long long)off, len);
    free(out);
}

Test(conformance, handle_reads_whole_objects_and_parts)
{
    enum { LEN = 70000 };
    static uint8_t user[LEN], want[LEN], out[LEN];
    uint8_t *mem;
    cr_assert_eq(pxs_alloc(ctx, LEN, (void **)&mem), PXS_OK);
    fill_pattern(user, LEN, 40);
    fill_pattern(mem, LEN, 40);
    fill_pattern(want, LEN, 40);
    pxs_proxy_t p[4] = {put(user, LEN, PXS_PUT_NO_INLINE), put(user, LEN, PXS_PUT_COPY),
                        put(mem, LEN, PXS_PUT_NO_INLINE), put(user, 100, 0)};
    for (int k = 0; k < 4; k++) {
        pxs_handle_t *h;
        cr_assert_eq(pxs_handle_open(ctx, &p[k], &h), PXS_OK);
        size_t len = pxs_handle_size(h);
        cr_assert_eq(len, k == 3 ? 100 : LEN);
        for (int i = 0; i < 3; i++) expect_read(h, 0, len, want);
        expect_read(h, 1, 1, want);
        expect_read(h, len / 3, len / 2, want);
        expect_read(h, len - 7, 7, want);
        cr_assert_eq(pxs_handle_read(h, len, out, 0), PXS_OK, "empty read at the end");
        cr_assert_eq(pxs_handle_read(h, len - 1, out, 2), PXS_ERR_INVALID_PARAM);
        cr_assert_eq(pxs_handle_read(h, len + 1, out, 0), PXS_ERR_INVALID_PARAM);
        cr_assert_eq(pxs_handle_read(h, 0, NULL, 1), PXS_ERR_INVALID_PARAM);
        if (k < 3) { /* evicted under an open handle: zeros, never bytes */
            cr_assert_eq(pxs_evict(store, &p[k]), PXS_OK);
            memset(out, 0x5a, sizeof out);
            cr_assert_eq(pxs_handle_read(h, 10, out, 1000), PXS_ERR_EVICTED);
            for (size_t i = 0; i < 1000; i++) cr_assert_eq(out[i], 0, "byte %zu leaked", i);
        }
        pxs_handle_close(h);
    }
    pxs_handle_t *h = (pxs_handle_t *)1;
    pxs_proxy_t bad = p[0];
    bad.bytes[20] ^= 1;
    cr_assert_eq(pxs_handle_open(ctx, &bad, &h), PXS_ERR_CORRUPT);
    cr_assert_null(h);
    cr_assert_eq(pxs_handle_open(ctx, &p[0], NULL), PXS_ERR_INVALID_PARAM);
    pxs_handle_close(NULL);
    cr_assert_eq(pxs_free(ctx, mem), PXS_OK);
}

Test(conformance, handles_on_another_process_and_its_death)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    test_peer_t peer;
    pxs_proxy_t p[NPEER];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, peer_objs, NPEER, p), 0);
    pxs_handle_t *h[2];
    for (int i = 0; i < 2; i++) {
        uint8_t *want = malloc(peer_objs[i].size);
        fill_pattern(want, peer_objs[i].size, peer_objs[i].seed);
        cr_assert_eq(pxs_handle_open(ctx, &p[i], &h[i]), PXS_OK);
        expect_read(h[i], 0, peer_objs[i].size, want);
        expect_read(h[i], 4093, 10000, want);
        expect_read(h[i], 4093, 10000, want);
        free(want);
    }
    cr_assert_eq(peer_crash(&peer), 0);
    uint8_t out[64];
    for (int i = 0; i < 2; i++) {
        pxs_status_t st = pxs_handle_read(h[i], 0, out, sizeof out);
        /* A dead owner: a status, never bytes. */
        cr_assert(st == PXS_ERR_PEER_DEAD || st == PXS_ERR_EVICTED ||
                  st == PXS_ERR_UNREACHABLE || st == PXS_ERR_TIMEOUT,
                  "read of a dead owner's object: %s", pxs_strerror(st));
        pxs_handle_close(h[i]);
    }
}

Test(conformance, owner_that_finalized_and_exited)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    test_peer_t peer;
    pxs_proxy_t p[NPEER];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, peer_objs, NPEER, p), 0);
    cr_assert_eq(peer_quit(&peer), 0);
    uint8_t *out = malloc(3 << 20);
    for (size_t i = 0; i < NPEER; i++) {
        if (peer_objs[i].kind == OBJ_INLINE) continue;
        pxs_status_t st = pxs_resolve(ctx, &p[i], out, 3 << 20, NULL);
        cr_assert(st == PXS_ERR_PEER_DEAD || st == PXS_ERR_EVICTED, "%s", pxs_strerror(st));
    }
    free(out);
}

Test(conformance, a_dead_owner_does_not_disturb_a_healthy_one)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t one[] = {{1 << 20, OBJ_USER, 41}, {1 << 20, OBJ_COPY, 42}};
    test_peer_t dying, healthy;
    pxs_proxy_t pd[2], ph[2];
    cr_assert_eq(peer_start(&dying, conn_name, NULL, one, 2, pd), 0);
    cr_assert_eq(peer_start(&healthy, conn_name, NULL, one, 2, ph), 0);
    for (int i = 0; i < 2; i++) {
        expect_resolve(&pd[i], 1 << 20, one[i].seed);
        expect_resolve(&ph[i], 1 << 20, one[i].seed);
    }
    cr_assert_eq(peer_crash(&dying), 0);
    uint8_t *out = malloc(1 << 20);
    for (int i = 0; i < 2; i++) {
        pxs_status_t st = pxs_resolve(ctx, &pd[i], out, 1 << 20, NULL);
        cr_assert(st == PXS_ERR_PEER_DEAD, "dead owner: %s", pxs_strerror(st));
        expect_resolve(&ph[i], 1 << 20, one[i].seed); /* the healthy pair keeps working */
    }
    free(out);
    cr_assert_eq(peer_quit(&healthy), 0);
}

/* A context of its own for reader threads (PXS_THREAD_MULTIPLE). */
static pxs_context_t *init_multiple(void)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_THREAD_MODE,
                               .thread_mode = PXS_THREAD_MULTIPLE};
    pxs_context_t *mt = NULL;
    cr_assert_eq(pxs_init(&cp, &mt), PXS_OK);
    return mt;
}

/* Threads reading an owner on this node while it dies: each read gives
 * the bytes, or says the owner is gone; none crashes. Over ucx a get to
 * the dead owner makes progress reset its endpoint, which unmaps what the
 * other threads read without the lock (its beat, its mirror, its mapped
 * objects): only once none of them is in it (ucx_peer.c, keys_drop). */
#define DYING_READERS 3
typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *p; /* [2] */
    int reads, bad;
    pxs_status_t last;
} dying_reader_t;

static void *dying_reader(void *arg)
{
    dying_reader_t *a = arg;
    static __thread uint8_t out[1 << 20];
    /* Until 6 reads in a row said the owner is gone (bounded: 10^6 reads;
     * a get may wait out PXS_TIMEOUT_MS before it says so). */
    for (int i = 0, gone = 0; i < 1000000 && gone < 6; i++) {
        const pxs_proxy_t *p = &a->p[i % 2];
        size_t n = i % 2 ? 1 << 20 : 4000;
        pxs_status_t st = pxs_resolve(a->ctx, p, out, n, NULL);
        if (st == PXS_OK) {
            if (!check_pattern(out, n, i % 2 ? 97 : 96)) a->bad++;
            gone = 0;
        } else if (st == PXS_ERR_PEER_DEAD || st == PXS_ERR_TIMEOUT ||
                   st == PXS_ERR_UNREACHABLE) {
            gone++;
        } else {
            a->bad++;
        }
        a->last = st;
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

Test(conformance, threads_reading_an_owner_that_dies)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {{4000, OBJ_USER, 96}, {1 << 20, OBJ_USER, 97}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, 2, p), 0);
    pxs_context_t *mt = init_multiple();
    dying_reader_t a[DYING_READERS];
    pthread_t t[DYING_READERS];
    for (int k = 0; k < DYING_READERS; k++) {
        a[k] = (dying_reader_t){.ctx = mt, .p = p, .last = PXS_OK};
        cr_assert_eq(pthread_create(&t[k], NULL, dying_reader, &a[k]), 0);
    }
    /* Kill it once each has read a few times (bounded wait: 10 s). */
    for (int w = 0, k = 0; w < 10000 && k < DYING_READERS; w++) {
        if (__atomic_load_n(&a[k].reads, __ATOMIC_RELAXED) >= 4) k++;
        else usleep(1000);
    }
    cr_assert_eq(peer_crash(&peer), 0);
    for (int k = 0; k < DYING_READERS; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < DYING_READERS; k++) {
        cr_assert_eq(a[k].bad, 0, "reader %d: %d reads wrong", k, a[k].bad);
        cr_assert(a[k].last == PXS_ERR_PEER_DEAD || a[k].last == PXS_ERR_TIMEOUT ||
                  a[k].last == PXS_ERR_UNREACHABLE, "reader %d: %s", k, pxs_strerror(a[k].last));
    }
    pxs_finalize(mt);
}

Test(conformance, a_flipped_bit_in_remote_access_is_refused)
{
    static uint8_t buf[100000], out[100000];
    fill_pattern(buf, sizeof buf, 43);
    pxs_proxy_t p = put(buf, sizeof buf, PXS_PUT_NO_INLINE);
    size_t blob_len = (size_t)p.bytes[10] | (size_t)p.bytes[11] << 8;
    for (size_t i = 0; i < blob_len; i += 7) {
        pxs_proxy_t q = p;
        q.bytes[72 + i] ^= 0x10; /* the connector's address, key or offset */
        cr_assert_eq(pxs_resolve(ctx, &q, out, sizeof out, NULL), PXS_ERR_CORRUPT, "blob byte %zu", i);
    }
    expect_resolve(&p, sizeof buf, 43);
}

/* Does this run read pxs_alloc objects of owners on the node through their
 * mapped segments? shm always; ucx where UCX may use shared memory
 * (transports/ucx/ucx_node.c) unless PXS_UCX_NODE_MAP=0. */
static bool node_segments_mapped(void)
{
    if (!strcmp(conn_name, "shm")) return true;
    if (strcmp(conn_name, "ucx") != 0) return false;
    const char *off = getenv("PXS_UCX_NODE_MAP"), *tls = getenv("UCX_TLS");
    if (off && !strcmp(off, "0")) return false;
    return !tls || !*tls || tls[0] == '^' || strstr(tls, "all") || strstr(tls, "sm") ||
           strstr(tls, "cma");
}

/* Does it read ordinary memory of a stalled owner on the node by
 * cross-memory attach? shm always; ucx too unless PXS_UCX_NODE_CMA_MAX=0. */
static bool node_user_attach(void)
{
    const char *cma = getenv("PXS_UCX_NODE_CMA_MAX");
    return node_segments_mapped() && !(cma && !strcmp(cma, "0"));
}

/* An owner that stops serving (here: a UCX owner without its progress
 * thread, whose gets from ordinary memory need it): the reader gets
 * PXS_ERR_TIMEOUT within the configured time, and its context still works.
 * Where readers on the owner's node use cross-memory attach (ucx-sm) the
 * owner's stall is seen in its beat and the bytes come without it. */
/* pxs_resolve with a timeout of its own, ms. */
static pxs_status_t resolve_within(pxs_context_t *c, const pxs_proxy_t *p, void *out, size_t n,
                                   int ms)
{
    pxs_request_t *req;
    pxs_resolve_params_t rp = {.field_mask = PXS_RESOLVE_PARAM_TIMEOUT, .timeout_ms = ms};
    pxs_status_t st = pxs_resolve_nb(c, p, out, n, &rp, &req);
    if (st == PXS_INPROGRESS) {
        st = pxs_wait(req, PXS_TIMEOUT_INFINITE); /* bounded by the request's own ms */
        pxs_request_free(req);
    }
    return st;
}

/* Two owners of one object each: mute, a UCX owner without its progress
 * thread (its gets of ordinary memory need it, so they wait), and healthy. */
static void start_mute_and_healthy(const obj_spec_t *mute_obj, const obj_spec_t *healthy_obj,
                                   test_peer_t *mute, test_peer_t *healthy, pxs_proxy_t *pm,
                                   pxs_proxy_t *ph)
{
    setenv("PXS_UCX_PROGRESS_THREAD", "0", 1);
    cr_assert_eq(peer_start(mute, conn_name, NULL, mute_obj, 1, pm), 0);
    unsetenv("PXS_UCX_PROGRESS_THREAD");
    cr_assert_eq(peer_start(healthy, conn_name, NULL, healthy_obj, 1, ph), 0);
}

Test(conformance, an_owner_that_stops_serving_times_out_cleanly)
{
    SKIP_WITHOUT_PEER();
    if (strcmp(conn_name, "ucx") != 0) return;
    static const obj_spec_t one[] = {{1 << 20, OBJ_USER, 44}};
    test_peer_t mute, healthy;
    pxs_proxy_t pm, ph;
    start_mute_and_healthy(one, one, &mute, &healthy, &pm, &ph);
    uint8_t *out = malloc(1 << 20);
    pxs_status_t st = resolve_within(ctx, &pm, out, 1 << 20, 1500);
    bool attach = node_user_attach();
    cr_assert_eq(st, attach ? PXS_OK : PXS_ERR_TIMEOUT, "%s", pxs_strerror(st));
    if (attach) expect_resolve(&pm, 1 << 20, 44);
    expect_resolve(&ph, 1 << 20, 44);
    free(out);
    cr_assert_eq(peer_quit(&healthy), 0);
    cr_assert_eq(peer_crash(&mute), 0);
}

/* Threads reading an owner that stops serving, and a healthy one between:
 * each read of the first gives its bytes (by attach) or PXS_ERR_TIMEOUT,
 * each of the second its bytes. Over the rma protocol every timeout closes
 * the endpoint (ucx_cancel) while the other threads issue gets on it: none
 * may use the closed endpoint or the keys that went with it. */
#define MUTE_READERS 3
#define MUTE_READS 6
typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *mute, *healthy;
    unsigned start_us;
    int bad;
    pxs_status_t why;
} mute_reader_t;

static void *mute_reader(void *arg)
{
    mute_reader_t *a = arg;
    static __thread uint8_t out[1 << 16];
    usleep(a->start_us); /* out of step: one's reset while another issues */
    for (int i = 0; i < MUTE_READS; i++) {
        pxs_status_t st = resolve_within(a->ctx, a->mute, out, sizeof out, 50);
        if (st == PXS_OK ? !check_pattern(out, sizeof out, 46) : st != PXS_ERR_TIMEOUT) {
            a->bad++;
            a->why = st;
        }
        st = pxs_resolve(a->ctx, a->healthy, out, sizeof out, NULL);
        if (st != PXS_OK || !check_pattern(out, sizeof out, 47)) {
            a->bad++;
            a->why = st;
        }
    }
    return NULL;
}

Test(conformance, threads_reading_an_owner_that_stops_serving)
{
    SKIP_WITHOUT_PEER();
    if (strcmp(conn_name, "ucx") != 0) return;
    static const obj_spec_t mute_obj[] = {{1 << 16, OBJ_USER, 46}};
    static const obj_spec_t healthy_obj[] = {{1 << 16, OBJ_USER, 47}};
    test_peer_t mute, healthy;
    pxs_proxy_t pm, ph;
    start_mute_and_healthy(mute_obj, healthy_obj, &mute, &healthy, &pm, &ph);
    pxs_context_t *mt = init_multiple();
    mute_reader_t a[MUTE_READERS];
    pthread_t t[MUTE_READERS];
    for (int k = 0; k < MUTE_READERS; k++) {
        a[k] = (mute_reader_t){
            .ctx = mt, .mute = &pm, .healthy = &ph, .start_us = 45000u * k, .why = PXS_OK};
        cr_assert_eq(pthread_create(&t[k], NULL, mute_reader, &a[k]), 0);
    }
    for (int k = 0; k < MUTE_READERS; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < MUTE_READERS; k++)
        cr_assert_eq(a[k].bad, 0, "reader %d: %d reads wrong (last: %s)", k, a[k].bad,
                     pxs_strerror(a[k].why));
    pxs_finalize(mt);
    cr_assert_eq(peer_quit(&healthy), 0);
    cr_assert_eq(peer_crash(&mute), 0);
}


/* A ucx proxy of a 64 KiB object that names another extent, sealed:
 * field 0 its data address 16 KiB away, field 1 the size 61440. */
static pxs_proxy_t forge_ucx_extent(const pxs_proxy_t *p, int field)
{
    pxs_proxy_t q = *p;
    if (field == 0) q.bytes[72 + 32 + 1] ^= 0x40;
    else q.bytes[49] = 0xF0, q.bytes[50] = 0;
    reseal(&q);
    return q;
}

/* A forged proxy (right checksum, another address or length) must not make
 * an owner read memory that is not the object: with owner-validated gets
 * the owner checks slot, generation, address and length before it reads.
 * A copy (UCX-allocated memory) that a reader on the same node maps and
 * reads in place is checked against the extent the owner publishes. */
Test(conformance, a_forged_address_reads_nothing_of_the_owner)
{
    SKIP_WITHOUT_PEER();
    if (strcmp(conn_name, "ucx") != 0) return;
    const char *proto = getenv("PXS_UCX_PROTOCOL");
    if (proto && strcmp(proto, "am") != 0) return; /* rma and auto trust the proxy */
    static const obj_spec_t objs[] = {{1 << 16, OBJ_USER, 45}, {1 << 16, OBJ_COPY, 53}};
    test_peer_t peer;
    pxs_proxy_t ps[2];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, 2, ps), 0);
    uint8_t out[1 << 16];
    for (int k = 0; k < 2; k++) {
        expect_resolve(&ps[k], 1 << 16, objs[k].seed);
        for (int field = 0; field < 2; field++) {
            pxs_proxy_t q = forge_ucx_extent(&ps[k], field);
            pxs_status_t st = pxs_resolve(ctx, &q, out, sizeof out, NULL);
            cr_assert_eq(st, PXS_ERR_CORRUPT, "object %d, field %d: %s", k, field,
                         pxs_strerror(st));
        }
        expect_resolve(&ps[k], 1 << 16, objs[k].seed); /* and the owner is fine */
    }
    cr_assert_eq(peer_quit(&peer), 0);
}


/* A peer started with PXS_TIMEOUT_MS=timeout (its own; ours is kept). */
static int peer_start_timeout(test_peer_t *peer, const char *timeout, const obj_spec_t *objs,
                              int n, pxs_proxy_t *p)
{
    const char *saved = getenv("PXS_TIMEOUT_MS");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("PXS_TIMEOUT_MS", timeout, 1);
    int rc = peer_start(peer, conn_name, NULL, objs, n, p);
    if (keep) setenv("PXS_TIMEOUT_MS", keep, 1), free(keep);
    else unsetenv("PXS_TIMEOUT_MS");
    return rc;
}

/* SIGSTOP a peer, with a waker that sends SIGCONT after 20 s whatever
 * becomes of this test: a failed assertion leaves no stopped process
 * behind (holding the runner's output open). */
static pid_t peer_stop(pid_t pid)
{
    pid_t waker = fork();
    if (waker == 0) {
        sleep(20);
        kill(pid, SIGCONT);
        _exit(0);
    }
    cr_assert(waker > 0);
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    /* Stopped once this returns: kill only queues the signal, and a
     * thread of the peer that is running may still serve a get meanwhile. */
    int ws;
    cr_assert_eq(waitpid(pid, &ws, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(ws));
    return waker;
}

static void peer_cont(pid_t pid, pid_t waker)
{
    cr_assert_eq(kill(pid, SIGCONT), 0);
    kill(waker, SIGKILL);
    waitpid(waker, NULL, 0);
}

/* Start a peer with objs, stop it (peer_stop) and read each object whole:
 * the bytes must come with the owner stopped. Returns the waker. */
static pid_t read_stopped(test_peer_t *peer, const obj_spec_t *objs, size_t n, pxs_proxy_t *p)
{
    cr_assert_eq(peer_start(peer, conn_name, NULL, objs, n, p), 0);
    pid_t waker = peer_stop(peer->pid);
    for (size_t i = 0; i < n; i++) expect_resolve(&p[i], objs[i].size, objs[i].seed);
    return waker;
}

/* Such objects need nothing of their owner: with its process stopped
 * (SIGSTOP), whole and partial reads still give the bytes at once (through
 * the owner's worker they would time out). For ucx the proxy names the
 * segment and an offset in it: a forged offset beyond the segment is
 * refused, an unknown segment is gone. */
Test(conformance, node_segments_are_read_with_the_owner_stopped)
{
    SKIP_WITHOUT_PEER();
    if (!node_segments_mapped()) return;
    static const obj_spec_t objs[] = {{1 << 20, OBJ_ALLOC, 70}, {100, OBJ_ALLOC, 71}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    pid_t waker = read_stopped(&peer, objs, 2, p);
    static uint8_t want[1 << 20], part[1000];
    fill_pattern(want, sizeof want, 70);
    pxs_handle_t *h;
    cr_assert_eq(pxs_handle_open(ctx, &p[0], &h), PXS_OK);
    cr_assert_eq(pxs_handle_read(h, 4097, part, sizeof part), PXS_OK);
    cr_assert(!memcmp(part, want + 4097, sizeof part), "partial read differs");
    pxs_handle_close(h);
    if (!strcmp(conn_name, "ucx")) {
        for (int field = 0; field < 2; field++) {
            pxs_proxy_t q = p[1];
            uint32_t total = proxy_total(&q);
            const uint8_t *b = q.bytes + 72; /* the blob: three key lengths, then flags */
            size_t seg_at = 72 + 48 + (size_t)(b[0] | b[1] << 8) + (size_t)(b[2] | b[3] << 8) +
                            (size_t)(b[4] | b[5] << 8);
            cr_assert_eq(seg_at + 12 + 4, total, "a pxs_alloc object's proxy names its segment");
            if (field == 0) q.bytes[seg_at + 4 + 5] ^= 0x01; /* offset + 1 TiB */
            else q.bytes[seg_at] ^= 0x80;                    /* another segment id */
            reseal(&q);
            pxs_status_t st = pxs_resolve(ctx, &q, part, sizeof part, NULL);
            cr_assert_eq(st, field == 0 ? PXS_ERR_CORRUPT : PXS_ERR_EVICTED, "field %d: %s",
                         field, pxs_strerror(st));
        }
    }
    peer_cont(peer.pid, waker);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* Ordinary memory of an owner on this node is read by cross-memory attach
 * while the owner does not poll (shm always; ucx up to PXS_UCX_NODE_CMA_MAX,
 * the owner's beat gone stale): with its process stopped the bytes still
 * come at once, and for ucx a forged address or length is refused by the
 * reader, from the extent the owner published, with no owner to ask. */
Test(conformance, node_user_buffers_are_read_with_the_owner_stopped)
{
    SKIP_WITHOUT_PEER();
    if (!node_user_attach()) return;
    static const obj_spec_t objs[] = {{64 << 10, OBJ_USER, 72}, {100, OBJ_USER, 73}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    pid_t waker = read_stopped(&peer, objs, 2, p);
    if (!strcmp(conn_name, "ucx")) {
        static uint8_t out[64 << 10];
        for (int field = 0; field < 2; field++) {
            pxs_proxy_t q = forge_ucx_extent(&p[0], field);
            pxs_status_t st = pxs_resolve(ctx, &q, out, sizeof out, NULL);
            cr_assert_eq(st, PXS_ERR_CORRUPT, "field %d: %s", field, pxs_strerror(st));
        }
    }
    peer_cont(peer.pid, waker);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* The cases of owners on this node that stop polling with a get of ours
 * in flight (ucx's am protocol, attach on): the context again, with a beat
 * up to a minute old counting as fresh (PXS_UCX_BEAT_FRESH_US), so that a
 * get surely goes to the stopped owner's worker, as one sent just before
 * the owner stopped does. False: not this run's case. */
static bool stalled_owner_run(void)
{
    const char *proto = getenv("PXS_UCX_PROTOCOL");
    if (strcmp(conn_name, "ucx") || !node_user_attach() || (proto && strcmp(proto, "am")))
        return false;
    end_context(ctx, main_handle);
    setenv("PXS_UCX_BEAT_FRESH_US", "60000000", 1); /* read when the connector starts */
    cr_assert_eq(new_context(NULL, &ctx, &main_handle), PXS_OK);
    return true;
}

/* Start a peer (with PXS_TIMEOUT_MS=timeout unless NULL) whose thread,
 * once woken by a get of objs[0] (above PXS_UCX_NODE_CMA_MAX: read here),
 * polls on for 10 s; then stop it (peer_stop). Our ucx connector starts
 * with that get, with its progress thread or not. Returns the waker. */
static pid_t start_polling_then_stop(test_peer_t *peer, const char *timeout, bool our_thread,
                                     const obj_spec_t *objs, int n, pxs_proxy_t *p)
{
    setenv("PXS_UCX_SPIN_US", "10000000", 1);
    int rc = timeout ? peer_start_timeout(peer, timeout, objs, n, p)
                     : peer_start(peer, conn_name, NULL, objs, n, p);
    unsetenv("PXS_UCX_SPIN_US");
    cr_assert_eq(rc, 0);
    if (!our_thread) setenv("PXS_UCX_PROGRESS_THREAD", "0", 1);
    expect_resolve(&p[0], objs[0].size, objs[0].seed);
    unsetenv("PXS_UCX_PROGRESS_THREAD");
    /* An owner busy sending objs[0] may look stalled to us (no beat for
     * 200 us) and be held, its gets read by attach for 50 ms, the first
     * hold of a fresh context: let that run out, or the get to the stopped
     * owner would go by attach at once. No get is in flight meanwhile, so
     * nothing holds it again before it stops. */
    usleep(100 * 1000);
    return peer_stop(peer->pid);
}

/* A get of p's n bytes goes to the stopped owner's worker, and is taken
 * back and read by attach (ucx_stall.c): the right bytes. */
static void expect_taken_back(const pxs_proxy_t *p, uint8_t *out, size_t n, unsigned seed)
{
    pxs_request_t *r;
    pxs_status_t st = pxs_resolve_nb(ctx, p, out, n, NULL, &r);
    cr_assert_eq(st, PXS_INPROGRESS, "the get goes to the owner's worker: %s", pxs_strerror(st));
    st = pxs_wait(r, PXS_TIMEOUT_DEFAULT); /* PXS_TIMEOUT_MS: 5 s */
    pxs_request_free(r);
    cr_assert_eq(st, PXS_OK, "a get of %zu B to a stopped owner: %s", n, pxs_strerror(st));
    cr_assert(check_pattern(out, n, seed));
}

/* An owner on this node that stops polling with a get of ours in flight
 * (descheduled, or computing) is not waited for: progress takes the get
 * back and reads it by attach, and reads the owner's ordinary memory that
 * way for a while (ucx_stall.c). */
Test(conformance, a_node_owner_that_stops_polling_is_not_waited_for)
{
    SKIP_WITHOUT_PEER();
    if (!stalled_owner_run()) return;
    /* The waker, then one below the lease size (a leased one: the case
     * after next), then one read once the owner is held. */
    static const obj_spec_t objs[] = {{1 << 20, OBJ_USER, 91}, {4000, OBJ_USER, 92},
                                      {100, OBJ_USER, 93}};
    test_peer_t peer;
    pxs_proxy_t p[3];
    pid_t waker = start_polling_then_stop(&peer, NULL, true, objs, 3, p);
    pxs_request_t *r;
    uint8_t out[4000];
    expect_taken_back(&p[1], out, sizeof out, objs[1].seed);
    /* The owner held: read by attach at once, a request or not. */
    cr_assert_eq(pxs_resolve_nb(ctx, &p[2], out, 100, NULL, &r), PXS_OK);
    cr_assert(check_pattern(out, 100, objs[2].seed));
    expect_resolve(&p[1], objs[1].size, objs[1].seed);
    peer_cont(peer.pid, waker);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* Eight resolves of p's n bytes (at most 64 KiB) in flight together, then
 * their waits: each the right bytes. */
static void expect_window_of_8(const pxs_proxy_t *p, size_t n, unsigned seed)
{
    pxs_request_t *r[8];
    pxs_status_t st[8];
    static uint8_t win[8][64 << 10];
    cr_assert(n <= sizeof win[0]);
    for (int k = 0; k < 8; k++) {
        st[k] = pxs_resolve_nb(ctx, p, win[k], n, NULL, &r[k]);
        cr_assert(st[k] == PXS_OK || st[k] == PXS_INPROGRESS, "%d: %s", k, pxs_strerror(st[k]));
    }
    for (int k = 0; k < 8; k++) {
        if (st[k] == PXS_INPROGRESS) {
            st[k] = pxs_wait(r[k], PXS_TIMEOUT_DEFAULT);
            pxs_request_free(r[k]);
        }
        cr_assert_eq(st[k], PXS_OK, "%d: %s", k, pxs_strerror(st[k]));
        cr_assert(check_pattern(win[k], n, seed), "window get %d", k);
    }
}

/* Gets the caller waits for, of user buffers of an owner on this node that
 * polls: the ucx reader times its two ways (UCX's owner-served get and
 * cross-memory attach) and takes the sooner, the first get of a size by
 * UCX, the second by attach, then every so many the other (ucx.c, pace).
 * Whichever way a get goes: the right bytes, a forged extent refused, and
 * gets in flight together (never paced) right too. */
Test(conformance, node_user_buffers_are_read_either_way_while_the_owner_polls)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    const char *proto = getenv("PXS_UCX_PROTOCOL"); /* rma and auto trust the proxy */
    bool forge = !strcmp(conn_name, "ucx") && (!proto || !strcmp(proto, "am"));
    static const obj_spec_t objs[] = {{100, OBJ_USER, 81}, {64 << 10, OBJ_USER, 82},
                                      {1 << 20, OBJ_USER, 83}};
    test_peer_t peer;
    pxs_proxy_t p[3];
    /* A ucx owner whose progress thread polls on for 10 s once woken (by
     * the first get above PXS_UCX_NODE_CMA_MAX, which goes by UCX). */
    setenv("PXS_UCX_SPIN_US", "10000000", 1);
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, 3, p), 0);
    unsetenv("PXS_UCX_SPIN_US");
    static uint8_t out[1 << 20];
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 3; k++) expect_resolve(&p[k], objs[k].size, objs[k].seed);
        if (!forge || i % 8 > 1) continue;
        pxs_proxy_t q = forge_ucx_extent(&p[1], i % 8); /* address, then length */
        pxs_status_t st = pxs_resolve(ctx, &q, out, sizeof out, NULL);
        cr_assert_eq(st, PXS_ERR_CORRUPT, "get %d: %s", i, pxs_strerror(st));
    }
    expect_window_of_8(&p[0], objs[0].size, objs[0].seed);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* An owner on this node whose memory the kernel will not let us attach to
 * (it is not dumpable and we lack CAP_SYS_PTRACE; Yama's scope 2 does the
 * same to every reader). shm, whose only way to a user buffer is that
 * attach, says so (PXS_ERR_UNREACHABLE, nothing written) and still reads
 * pxs_alloc memory, which it maps. ucx turns its attach off at the first
 * refusal and reads through UCX, blocking and in flight together; where
 * UCX's shared memory opens the owner's FIFO by /proc/PID/fd (its
 * default), the kernel refuses that too and the owner's user buffers are
 * unreachable, clearly, unless UCX has another transport (tcp). */
static void read_refusing_owner(const test_peer_t *peer, const obj_spec_t *objs,
                                const pxs_proxy_t *p, bool must_reach)
{
    /* The case holds only if the kernel refuses: it checks access before
     * it looks at the address. */
    int e = test_attach_refused(peer->pid);
    cr_assert(e == 0, "the kernel lets us attach to the owner: %s", e < 0 ? "read" : strerror(e));
    bool shm = !strcmp(conn_name, "shm");
    static uint8_t out[1 << 20];
    pxs_status_t user_st = PXS_INPROGRESS; /* what the first user buffer got */
    /* Repeated: ucx's pace would try attach on the second get of a size. */
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 3; k++) {
            memset(out, 0xee, objs[k].size);
            pxs_status_t st = pxs_resolve(ctx, &p[k], out, objs[k].size, NULL);
            if (user_st == PXS_INPROGRESS) user_st = st;
            cr_assert_eq(st, user_st, "%zu B: %s, then %s", objs[k].size, pxs_strerror(st),
                         pxs_strerror(user_st));
            if (st == PXS_OK) {
                cr_assert(check_pattern(out, objs[k].size, objs[k].seed), "%zu B", objs[k].size);
                continue;
            }
            cr_assert_eq(st, PXS_ERR_UNREACHABLE, "%zu B: %s", objs[k].size, pxs_strerror(st));
            cr_assert(shm || !must_reach, "%zu B: %s", objs[k].size, pxs_strerror(st));
            for (size_t j = 0; j < objs[k].size; j += 997) cr_assert_eq(out[j], 0xee);
        }
        /* pxs_alloc memory is mapped, needing neither, except for ucx
         * with PXS_UCX_NODE_MAP=0 (through UCX, as user buffers). */
        pxs_status_t st = pxs_resolve(ctx, &p[3], out, objs[3].size, NULL);
        cr_assert(st == PXS_OK || (st == PXS_ERR_UNREACHABLE && !shm && !must_reach), "%s",
                  pxs_strerror(st));
        cr_assert(st != PXS_OK || check_pattern(out, objs[3].size, objs[3].seed));
    }
    cr_assert(!shm || user_st == PXS_ERR_UNREACHABLE, "shm read a user buffer anyway");
    if (user_st == PXS_OK) expect_window_of_8(&p[1], objs[1].size, objs[1].seed);
}

Test(conformance, an_owner_refusing_attach_is_read_another_way_or_refused_clearly)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    /* A context of its own, started without the capability: every thread
     * of pxs and UCX is made from this one afterwards. */
    end_context(ctx, main_handle);
    int e = test_drop_ptrace_cap();
    cr_assert(e == 0, "capset: %s", strerror(e));
    cr_assert_eq(new_context(NULL, &ctx, &main_handle), PXS_OK);
    static const obj_spec_t objs[] = {{100, OBJ_USER, 61}, {64 << 10, OBJ_USER, 62},
                                      {1 << 20, OBJ_USER, 63}, {64 << 10, OBJ_ALLOC, 64}};
    /* Owner 0 as UCX's default has it; owner 1 with UCX's FIFO opened by
     * name, which ucx must read whatever its transports. */
    for (int o = 0; o < 2; o++) {
        test_peer_t peer;
        pxs_proxy_t p[4];
        setenv("PXS_TEST_PEER_UNDUMPABLE", "1", 1);
        if (o) setenv("UCX_POSIX_USE_PROC_LINK", "n", 1);
        int rc = peer_start(&peer, conn_name, NULL, objs, 4, p);
        unsetenv("PXS_TEST_PEER_UNDUMPABLE");
        if (o) unsetenv("UCX_POSIX_USE_PROC_LINK");
        cr_assert_eq(rc, 0);
        read_refusing_owner(&peer, objs, p, o == 1);
        cr_assert_eq(peer_quit(&peer), 0);
    }
}

/* Threads copying from a mapped segment while its owner evicts the object
 * (a copy, whose segment goes with it): each read gives the bytes or
 * EVICTED with nothing copied, and once the readers are done this process
 * keeps no mapping of a removed segment (shm's lock-free gets retire a
 * mapping dropped under them and unmap it when the last one leaves). */
typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *p;
    const uint8_t *want; /* memcmp: as quick as the copy, so readers copy often */
    int reads, bad;
    pxs_status_t last;
} seg_reader_t;

/* More readers than cores: one is often preempted in its copy. */
enum { SEG_OBJ = 32 << 20, SEG_READERS = 4 };

static void *seg_reader(void *arg)
{
    seg_reader_t *a = arg;
    uint8_t *out = malloc(SEG_OBJ);
    for (int i = 0; i < 2000000; i++) { /* bounded: the owner evicts after a few */
        a->last = pxs_resolve(a->ctx, a->p, out, SEG_OBJ, NULL);
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
        if (a->last == PXS_OK && memcmp(out, a->want, SEG_OBJ)) a->bad++;
        if (a->last == PXS_ERR_EVICTED)
            for (size_t k = 0; k < SEG_OBJ; k += 4096) a->bad += out[k] != 0;
        if (a->last != PXS_OK) break;
    }
    /* Again: now the generation differs before the copy, and the reader
     * drops its mapping, most often while the other thread still copies
     * from it (a copy takes milliseconds). */
    if (a->last == PXS_ERR_EVICTED) a->last = pxs_resolve(a->ctx, a->p, out, SEG_OBJ, NULL);
    free(out);
    return NULL;
}

Test(conformance, segments_evicted_under_concurrent_readers_are_unmapped)
{
    SKIP_WITHOUT_PEER();
    if (!node_segments_mapped()) return;
    static const obj_spec_t objs[] = {{SEG_OBJ, OBJ_COPY, 80}};
    test_peer_t peer;
    pxs_proxy_t p;
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, 1, &p), 0);
    pxs_context_t *mt = init_multiple();
    uint8_t *want = malloc(SEG_OBJ);
    for (unsigned round = 0; round < 20; round++) {
        unsigned seed = 80 + round;
        fill_pattern(want, SEG_OBJ, seed);
        seg_reader_t a[SEG_READERS];
        pthread_t t[SEG_READERS];
        for (int k = 0; k < SEG_READERS; k++) {
            a[k] = (seg_reader_t){.ctx = mt, .p = &p, .want = want, .last = PXS_OK};
            cr_assert_eq(pthread_create(&t[k], NULL, seg_reader, &a[k]), 0);
        }
        /* Evict once each has read twice (bounded wait: 10 s). */
        for (int w = 0, k = 0; w < 10000 && k < SEG_READERS; w++) {
            if (__atomic_load_n(&a[k].reads, __ATOMIC_RELAXED) >= 2) k++;
            else usleep(1000);
        }
        pxs_proxy_t next;
        cr_assert_eq(peer_reput(&peer, 0, seed + 1, &next), 0);
        for (int k = 0; k < SEG_READERS; k++) pthread_join(t[k], NULL);
        for (int k = 0; k < SEG_READERS; k++) {
            cr_assert_eq(a[k].bad, 0, "round %u: %d reads gave wrong bytes", round, a[k].bad);
            cr_assert_eq(a[k].last, PXS_ERR_EVICTED, "round %u: %s", round,
                         pxs_strerror(a[k].last));
        }
        p = next;
    }
    cr_assert_eq(pxs_resolve(mt, &p, want, SEG_OBJ, NULL), PXS_OK);
    cr_assert(check_pattern(want, SEG_OBJ, 100));
    free(want);
    /* shm: the live object's segment, and none of the 20 removed ones (a
     * ucx copy lives in memory UCX allocates, mapped by UCX). */
    if (!strcmp(conn_name, "shm")) {
        int nmapped = mapped_segments_of(peer.pid);
        cr_assert_eq(nmapped, 1, "%d mappings of the owner's segments", nmapped);
    }
    pxs_finalize(mt);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* The caller frees a buffer before evicting its object (an error: the rule
 * says evict first), and its pages go back to the kernel (as glibc does for
 * large ones; the peer uses munmap so that every allocator does): readers
 * get PXS_ERR_EVICTED, not bytes of whatever comes next, and the owner
 * survives. A freed buffer that stays mapped cannot be told apart. */
Test(conformance, a_large_buffer_freed_before_evict_is_caught)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    const char *proto = getenv("PXS_UCX_PROTOCOL");
    if (!strcmp(conn_name, "ucx") && proto && strcmp(proto, "am") != 0) return; /* rma reads blindly */
    static const obj_spec_t objs[] = {{8 << 20, OBJ_MAPPED, 46}, {8 << 20, OBJ_USER, 47}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, 2, p), 0);
    expect_resolve(&p[0], 8 << 20, 46);
    cr_assert_eq(peer_free_buffer(&peer, 0), PXS_OK); /* munmap, before any evict */
    static uint8_t out[8 << 20];
    cr_assert_eq(pxs_resolve(ctx, &p[0], out, sizeof out, NULL), PXS_ERR_EVICTED);
    expect_resolve(&p[1], 8 << 20, 47); /* the owner is alive and well */
    cr_assert_eq(peer_quit(&peer), 0);
}

/* An owner that evicts and puts again tends to get the same memory back (a
 * copy at the same address, of the same size): a reader that keeps what it
 * learnt of the old object (keys, mappings) gets the new bytes through the
 * new proxy, and EVICTED through the old one, never the old bytes. */
Test(conformance, memory_reused_after_evict_gives_the_new_bytes)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {
        {1 << 20, OBJ_COPY, 60}, {4096, OBJ_COPY, 61}, {1 << 20, OBJ_ALLOC, 62}, {1 << 20, OBJ_USER, 63}};
    enum { N = sizeof objs / sizeof objs[0] };
    test_peer_t peer;
    pxs_proxy_t p[N];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, N, p), 0);
    static uint8_t out[1 << 20];
    for (unsigned round = 1; round <= 5; round++) {
        for (size_t i = 0; i < N; i++) {
            expect_resolve(&p[i], objs[i].size, objs[i].seed + 100 * (round - 1));
            pxs_proxy_t old = p[i];
            cr_assert_eq(peer_reput(&peer, i, objs[i].seed + 100 * round, &p[i]), 0);
            cr_assert_eq(pxs_resolve(ctx, &old, out, objs[i].size, NULL), PXS_ERR_EVICTED,
                         "object %zu, round %u", i, round);
        }
    }
    cr_assert_eq(peer_quit(&peer), 0);
}

/* A proxy read again and again is read by the route its earlier reads
 * found (src/wire.h: the owner and mapping, kept beside the remembered
 * proxy): that route must still see an evict, a new object in the slot, the
 * owner's death, and never serve another context, not even one opened at
 * the same address after the first one ended. */
Test(conformance, remembered_proxies_see_evict_reuse_death_and_contexts)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {
        {8, OBJ_ALLOC, 80}, {4096, OBJ_ALLOC, 81}, {100, OBJ_COPY, 82}, {64 << 10, OBJ_ALLOC, 83}};
    enum { N = sizeof objs / sizeof objs[0], READS = 4 };
    test_peer_t peer;
    pxs_proxy_t p[N];
    cr_assert_eq(peer_start(&peer, conn_name, NULL, objs, N, p), 0);
    for (size_t i = 0; i < N - 1; i++) /* the last one: first read by another context */
        for (int k = 0; k < READS; k++) expect_resolve(&p[i], objs[i].size, objs[i].seed);
    static uint8_t out[64 << 10];
    cr_assert_eq(peer_evict(&peer, 0), PXS_OK);
    memset(out, 0x5a, 8);
    cr_assert_eq(pxs_resolve(ctx, &p[0], out, 8, NULL), PXS_ERR_EVICTED);
    for (int k = 0; k < 8; k++) cr_assert_eq(out[k], 0, "an evicted object gave bytes");
    pxs_proxy_t old = p[1];
    cr_assert_eq(peer_reput(&peer, 1, 91, &p[1]), 0);
    cr_assert_eq(pxs_resolve(ctx, &old, out, 4096, NULL), PXS_ERR_EVICTED);
    for (int k = 0; k < READS; k++) expect_resolve(&p[1], 4096, 91);
    for (int round = 0; round < 3; round++) {
        pxs_context_t *c2;
        void *h2;
        cr_assert_eq(new_context(NULL, &c2, &h2), PXS_OK);
        for (int k = 0; k < READS; k++) {
            memset(out, 0, sizeof out);
            cr_assert_eq(pxs_resolve(c2, &p[3], out, sizeof out, NULL), PXS_OK);
            cr_assert(check_pattern(out, sizeof out, 83), "round %d, read %d", round, k);
        }
        /* Its connectors go: the route it left must not be taken (in round
         * 0 the proxy's route is that context's own). */
        end_context(c2, h2);
        for (int k = 0; k < READS; k++) expect_resolve(&p[3], sizeof out, 83);
    }
    cr_assert_eq(peer_crash(&peer), 0);
    pxs_status_t st = pxs_resolve(ctx, &p[3], out, sizeof out, NULL);
    cr_assert_eq(st, PXS_ERR_PEER_DEAD, "a dead owner's remembered object: %s", pxs_strerror(st));
}


/* Seconds the peer takes to evict its objects first..first+n-1 (each must
 * succeed): an evict waits for the leases and replies of its object. */
static double timed_evicts(test_peer_t *peer, size_t first, size_t n)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = first; i < first + n; i++) cr_assert_eq(peer_evict(peer, i), PXS_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}
/* Readers of another process's objects leave nothing behind that its evict
 * must wait for: over ucx, objects of 8 KiB and more on one node are leased
 * to each reader and released after the read, and an evict waits for the
 * leases (up to the owner's timeout, set high here). A lost release would
 * show as an evict that takes that long. */
Test(conformance, evict_after_many_remote_reads_does_not_wait)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {{1 << 20, OBJ_USER, 48}, {16 << 10, OBJ_USER, 49}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    cr_assert_eq(peer_start_timeout(&peer, "20000", objs, 2, p), 0);
    static uint8_t out[1 << 20];
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(pxs_resolve(ctx, &p[i % 2], out, i % 2 ? 16 << 10 : sizeof out, NULL), PXS_OK);
    }
    cr_assert(check_pattern(out, 16 << 10, 49));
    double s = timed_evicts(&peer, 0, 2);
    cr_assert_lt(s, 10.0, "the evicts waited %.1f s: a reader's release was lost", s);
    cr_assert_eq(pxs_resolve(ctx, &p[0], out, sizeof out, NULL), PXS_ERR_EVICTED);
    cr_assert_eq(peer_quit(&peer), 0);
}

/* A get of 8 KiB or more asks a ucx owner on this node for a lease. If the
 * owner stops before answering, the get is taken back and read by attach
 * like a smaller one, and the reader withdraws its request (ucx_am.c). The
 * owner, once it runs again, may have granted the lease first: the
 * withdrawal then releases it, or the owner's evict would wait out its
 * timeout (20 s here). Nothing of the reader's must run for that: with its
 * progress thread off, this reader stays out of pxs until the evict is
 * done, as a program does that computes after its get. Without a lease
 * (leased false: PXS_UCX_LEASE_MIN above the object) the owner answers
 * with the bytes by rendezvous, which UCX ends only when the reader's
 * worker runs: the withdrawal ends the owner's hold on the object then. */
static void taken_back_case(bool our_thread, bool leased)
{
    if (!stalled_owner_run()) return;
    static const obj_spec_t objs[] = {{1 << 20, OBJ_USER, 94}, {64 << 10, OBJ_USER, 95}};
    test_peer_t peer;
    pxs_proxy_t p[2];
    if (!leased) setenv("PXS_UCX_LEASE_MIN", "1073741824", 1); /* read when the connector starts */
    pid_t waker = start_polling_then_stop(&peer, "20000", our_thread, objs, 2, p);
    unsetenv("PXS_UCX_LEASE_MIN");
    static uint8_t out[64 << 10];
    expect_taken_back(&p[1], out, sizeof out, objs[1].seed);
    peer_cont(peer.pid, waker);
    /* Let its thread (spinning: PXS_UCX_SPIN_US) take the request first: an
     * evict before it would refuse it, and nothing be tested. */
    usleep(50 * 1000);
    double s = timed_evicts(&peer, 1, 1);
    cr_assert_lt(s, 10.0, "the evict waited %.1f s: the late %s was not released", s,
                 leased ? "grant" : "reply");
    cr_assert_eq(pxs_resolve(ctx, &p[1], out, sizeof out, NULL), PXS_ERR_EVICTED);
    cr_assert_eq(peer_quit(&peer), 0);
}

Test(conformance, a_lease_asked_of_a_node_owner_that_stops_is_taken_back_and_released)
{
    SKIP_WITHOUT_PEER();
    taken_back_case(true, true);
}

Test(conformance, a_lease_taken_back_is_released_while_the_reader_stays_out_of_pxs)
{
    SKIP_WITHOUT_PEER();
    taken_back_case(false, true);
}

Test(conformance, a_reply_taken_back_is_withdrawn_while_the_reader_stays_out_of_pxs)
{
    SKIP_WITHOUT_PEER();
    taken_back_case(false, false);
}

/* Whatever bounds the owner's waits (a ucx lease lasts the owner's timeout:
 * 0 = none, so every leased read is checked against the generation after
 * its bytes; -1 = for ever), reads deliver the object and an evict ends
 * them. */
Test(conformance, reads_hold_whatever_the_owners_timeout)
{
    SKIP_WITHOUT_PEER();
    if (!(caps & PXS_CAP_CROSS_PROCESS)) return;
    static const obj_spec_t objs[] = {{1 << 20, OBJ_USER, 50}, {64 << 10, OBJ_USER, 51}};
    static const char *const timeouts[] = {"0", "-1"};
    static uint8_t out[1 << 20];
    for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
        test_peer_t peer;
        pxs_proxy_t p[2];
        cr_assert_eq(peer_start_timeout(&peer, timeouts[t], objs, 2, p), 0);
        for (int i = 0; i < 20; i++) {
            size_t n = i % 2 ? 64 << 10 : sizeof out;
            memset(out, 0, n);
            cr_assert_eq(pxs_resolve(ctx, &p[i % 2], out, n, NULL), PXS_OK, "timeout %s",
                         timeouts[t]);
            cr_assert(check_pattern(out, n, i % 2 ? 51 : 50), "timeout %s", timeouts[t]);
        }
        cr_assert_eq(peer_evict(&peer, 0), PXS_OK);
        cr_assert_eq(pxs_resolve(ctx, &p[0], out, sizeof out, NULL), PXS_ERR_EVICTED);
        cr_assert_eq(pxs_resolve(ctx, &p[1], out, 64 << 10, NULL), PXS_OK);
        cr_assert_eq(peer_quit(&peer), 0);
    }
}

/* The ucx connector's own variables are strict like the core's: a malformed
 * value fails the store open with a clear status, it is never guessed at. */
Test(conformance, malformed_ucx_variables_are_refused)
{
    if (strcmp(conn_name, "ucx") != 0) return;
    static const char *const bad[][2] = {{"PXS_UCX_PROTOCOL", "fast"},
                                         {"PXS_UCX_PROGRESS_THREAD", "maybe"},
                                         {"PXS_UCX_SPIN_US", "10ms"},
                                         {"PXS_UCX_SPIN_US", "-5"},
                                         {"PXS_UCX_LEASE_MIN", "8k"},
                                         {"PXS_UCX_LEASE_MIN", "-1"},
                                         {"PXS_UCX_NODE_CMA_MAX", "512k"},
                                         {"PXS_UCX_ERR_MODE", "PEER"},
                                         {"PXS_UCX_ERR_MODE", "off"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *saved = getenv(bad[i][0]);
        char *keep = saved ? strdup(saved) : NULL;
        setenv(bad[i][0], bad[i][1], 1);
        pxs_context_t *c;
        pxs_store_t *s = NULL;
        pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = "ucx"};
        cr_assert_eq(pxs_init(NULL, &c), PXS_OK);
        cr_assert_eq(pxs_store_open(c, &sp, &s), PXS_ERR_INVALID_PARAM, "%s=%s", bad[i][0], bad[i][1]);
        cr_assert_null(s);
        pxs_finalize(c);
        if (keep) setenv(bad[i][0], keep, 1), free(keep);
        else unsetenv(bad[i][0]);
    }
}
