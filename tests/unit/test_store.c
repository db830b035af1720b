/* Context, store and configuration cases outside the conformance suite. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pxs/pxs.h>
#include "../common/peer.h"

Test(store, unknown_connector_is_named)
{
    pxs_context_t *ctx;
    pxs_store_t *s = NULL;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = "carrier-pigeon"};
    cr_assert_eq(pxs_store_open(ctx, &sp, &s), PXS_ERR_NO_CONNECTOR);
    cr_assert_null(s);
    pxs_finalize(ctx);
}

Test(store, bad_arguments_get_statuses_not_crashes)
{
    pxs_context_t *ctx;
    pxs_store_t *s;
    pxs_proxy_t p;
    cr_assert_eq(pxs_init(NULL, NULL), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    cr_assert_eq(pxs_store_open(ctx, NULL, &s), PXS_OK);
    cr_assert_eq(pxs_put(NULL, "x", 1, NULL, &p), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_put(s, NULL, 10, NULL, &p), PXS_ERR_INVALID_PARAM);
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_MEMTYPE, .memtype = PXS_MEMTYPE_CUDA};
    cr_assert_eq(pxs_put(s, "x", 1, &pp, &p), PXS_ERR_UNSUPPORTED);
    memset(&p, 0, sizeof p);
    char out[8];
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_CORRUPT);
    cr_assert_eq(pxs_resolve(NULL, &p, out, sizeof out, NULL), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_evict(s, NULL), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_alloc(ctx, 0, (void **)&out), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_free(ctx, out), PXS_ERR_INVALID_PARAM, "not from pxs_alloc");
    pxs_store_close(NULL);
    pxs_finalize(NULL);
    pxs_finalize(ctx);
}

Test(store, inline_object_resolves_without_its_owner)
{
    pxs_context_t *ctx;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    obj_spec_t spec = {600, OBJ_INLINE, 77};
    test_peer_t peer;
    pxs_proxy_t p;
    cr_assert_eq(peer_start(&peer, "shm", NULL, &spec, 1, &p), 0);
    cr_assert_eq(peer_crash(&peer), 0); /* the owner is gone for good */
    pxs_proxy_info_t info;
    cr_assert_eq(pxs_proxy_info(&p, &info), PXS_OK);
    cr_assert(info.is_inline);
    char out[600];
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_OK);
    cr_assert(check_pattern(out, sizeof out, 77));
    cr_assert_eq(pxs_exists(ctx, &p), PXS_OK);
    pxs_finalize(ctx);
}

Test(store, configuration_from_params_and_environment)
{
    pxs_context_t *ctx;
    pxs_context_params_t q;
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_INLINE_MAX | PXS_CONTEXT_PARAM_DOMAIN,
                               .inline_max = 64, .domain = "cfg"};
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    cr_assert_eq(pxs_context_query(ctx, &q), PXS_OK);
    cr_assert_eq(q.inline_max, 64);
    cr_assert_str_eq(q.domain, "cfg");
    pxs_finalize(ctx);

    setenv("PXS_INLINE_MAX", "0", 1);
    setenv("PXS_TIMEOUT_MS", "250", 1);
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    cr_assert_eq(pxs_context_query(ctx, &q), PXS_OK);
    cr_assert_eq(q.inline_max, 0, "the environment overrides params");
    cr_assert_eq(q.timeout_ms, 250);
    pxs_finalize(ctx);

    setenv("PXS_INLINE_MAX", "lots", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_ERR_INVALID_PARAM, "malformed values are refused");
    setenv("PXS_INLINE_MAX", "999999", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_ERR_INVALID_PARAM, "beyond PXS_INLINE_LIMIT");
    unsetenv("PXS_INLINE_MAX");
    setenv("PXS_THREAD_MODE", "some", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_ERR_INVALID_PARAM);
    unsetenv("PXS_THREAD_MODE");
    unsetenv("PXS_TIMEOUT_MS");
}

static int count_segments_of(pid_t pid)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "pxs.%d.", (int)pid);
    DIR *d = opendir("/dev/shm");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

Test(store, segments_of_a_crashed_process_are_reaped)
{
    /* A child makes a context, an alloc segment and a copied object, then
     * dies without pxs_finalize: its segments stay behind... */
    pid_t pid = fork();
    if (pid == 0) {
        pxs_context_t *c;
        pxs_store_t *s;
        void *mem;
        pxs_proxy_t p;
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_COPY};
        static char big[100000];
        if (pxs_init(NULL, &c) || pxs_store_open(c, NULL, &s) || pxs_alloc(c, 4096, &mem) ||
            pxs_put(s, big, sizeof big, &pp, &p))
            _exit(1);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(count_segments_of(pid), 4, "table, alloc, copy and liveness segments");
    /* ...until the next process starts a context. */
    pxs_context_t *ctx;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    cr_assert_eq(count_segments_of(pid), 0);
    cr_assert_gt(count_segments_of(getpid()), 0, "our own segments stay");
    pxs_finalize(ctx);
    cr_assert_eq(count_segments_of(getpid()), 0, "finalize removes ours");
}

Test(store, freeing_library_memory_evicts_its_objects)
{
    pxs_context_t *ctx;
    pxs_store_t *s;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    cr_assert_eq(pxs_store_open(ctx, NULL, &s), PXS_OK);
    void *mem;
    cr_assert_eq(pxs_alloc(ctx, 1 << 16, &mem), PXS_OK);
    pxs_proxy_t p;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
    cr_assert_eq(pxs_put(s, (char *)mem + 100, 5000, &pp, &p), PXS_OK);
    cr_assert_eq(pxs_free(ctx, mem), PXS_OK);
    char out[5000];
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_EVICTED);
    pxs_finalize(ctx);
}

typedef struct {
    pxs_context_t *ctx;
    pxs_store_t *store;
    int failures;
} thread_arg_t;

static void *hammer(void *argp)
{
    thread_arg_t *a = argp;
    static __thread uint8_t buf[20000], out[20000];
    for (int i = 0; i < 2000; i++) {
        fill_pattern(buf, sizeof buf, (unsigned)i);
        pxs_proxy_t p;
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = i % 2 ? PXS_PUT_COPY : 0};
        if (pxs_put(a->store, buf, sizeof buf, &pp, &p) != PXS_OK ||
            pxs_resolve(a->ctx, &p, out, sizeof out, NULL) != PXS_OK ||
            !check_pattern(out, sizeof out, (unsigned)i) || pxs_evict(a->store, &p) != PXS_OK)
            a->failures++;
    }
    return NULL;
}

Test(store, thread_multiple_mode_is_safe, .timeout = 120)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_THREAD_MODE,
                               .thread_mode = PXS_THREAD_MULTIPLE};
    pxs_context_t *ctx;
    pxs_store_t *s;
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    cr_assert_eq(pxs_store_open(ctx, NULL, &s), PXS_OK);
    pthread_t t[4];
    thread_arg_t a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg_t){ctx, s, 0};
        pthread_create(&t[i], NULL, hammer, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].failures, 0, "thread %d", i);
    }
    pxs_finalize(ctx);
}

/* Regression: a reader finding one object of a pxs_alloc region evicted
 * must not unmap the region under another thread still copying a live
 * object from it. The owner is another process, as in real use. */
typedef struct {
    pxs_context_t *ctx;
    const pxs_proxy_t *proxy;
    pxs_status_t expect;
    int failures;
} resolver_arg_t;

static void *resolver(void *argp)
{
    resolver_arg_t *a = argp;
    static __thread uint8_t out[1 << 20];
    for (int i = 0; i < 3000; i++)
        if (pxs_resolve(a->ctx, a->proxy, out, sizeof out, NULL) != a->expect) a->failures++;
    return NULL;
}

Test(store, evicted_neighbour_does_not_unmap_a_live_object, .timeout = 120)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_THREAD_MODE,
                               .thread_mode = PXS_THREAD_MULTIPLE};
    pxs_context_t *ctx;
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    int to[2], from[2];
    cr_assert_eq(pipe(to), 0);
    cr_assert_eq(pipe(from), 0);
    pid_t pid = fork();
    if (pid == 0) { /* owner: two objects in one region, the second evicted */
        pxs_context_t *c;
        pxs_store_t *s;
        uint8_t *mem;
        pxs_proxy_t p[2];
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
        if (pxs_init(NULL, &c) || pxs_store_open(c, NULL, &s) || pxs_alloc(c, 2 << 20, (void **)&mem))
            _exit(1);
        fill_pattern(mem, 2 << 20, 1);
        if (pxs_put(s, mem, 1 << 20, &pp, &p[0]) || pxs_put(s, mem + (1 << 20), 1 << 20, &pp, &p[1]) ||
            pxs_evict(s, &p[1]))
            _exit(2);
        if (write(from[1], p, sizeof p) != sizeof p) _exit(3);
        char b;
        if (read(to[0], &b, 1) < 0) _exit(4);
        pxs_finalize(c);
        _exit(0);
    }
    pxs_proxy_t p[2];
    cr_assert_eq(read(from[0], p, sizeof p), (ssize_t)sizeof p);
    resolver_arg_t a[2] = {{ctx, &p[0], PXS_OK, 0}, {ctx, &p[1], PXS_ERR_EVICTED, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, resolver, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    cr_assert_eq(a[0].failures, 0);
    cr_assert_eq(a[1].failures, 0);
    cr_assert_eq(write(to[1], "q", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pxs_finalize(ctx);
}

Test(store, timeout_from_the_environment)
{
    pxs_context_t *ctx;
    pxs_context_params_t q;
    setenv("PXS_TIMEOUT_MS", "-1", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    pxs_context_query(ctx, &q);
    cr_assert_eq(q.timeout_ms, -1, "-1 means no timeout");
    pxs_finalize(ctx);
    setenv("PXS_TIMEOUT_MS", "010", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    pxs_context_query(ctx, &q);
    cr_assert_eq(q.timeout_ms, 10, "decimal, not octal");
    pxs_finalize(ctx);
    setenv("PXS_TIMEOUT_MS", "-5", 1);
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_ERR_INVALID_PARAM);
    unsetenv("PXS_TIMEOUT_MS");
}

Test(store, inline_max_zero_disables_inlining)
{
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_INLINE_MAX, .inline_max = 0};
    pxs_context_t *ctx;
    pxs_store_t *s;
    pxs_proxy_t p;
    pxs_proxy_info_t info;
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    cr_assert_eq(pxs_store_open(ctx, NULL, &s), PXS_OK);
    cr_assert_eq(pxs_put(s, "", 0, NULL, &p), PXS_OK);
    cr_assert_eq(pxs_proxy_info(&p, &info), PXS_OK);
    cr_assert_not(info.is_inline);
    char out[1];
    size_t n = 99;
    cr_assert_eq(pxs_resolve(ctx, &p, out, 0, &n), PXS_OK);
    cr_assert_eq(n, 0);
    pxs_finalize(ctx);
}

Test(store, a_dead_owners_memory_is_unmapped_by_its_readers)
{
    pxs_context_t *ctx;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    obj_spec_t spec = {1 << 20, OBJ_ALLOC, 31};
    test_peer_t peer;
    pxs_proxy_t p;
    cr_assert_eq(peer_start(&peer, "shm", NULL, &spec, 1, &p), 0);
    static uint8_t out[1 << 20];
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_OK);
    cr_assert(check_pattern(out, sizeof out, 31));
    cr_assert_eq(mapped_segments_of(peer.pid), 1);
    pid_t pid = peer.pid;
    cr_assert_eq(peer_crash(&peer), 0);
    usleep(2000); /* past the mapped-path liveness interval */
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_PEER_DEAD);
    cr_assert_eq(mapped_segments_of(pid), 0, "the dead owner's segment is released");
    pxs_finalize(ctx);
}

/* The owner's context was made by a thread that has ended, so its liveness
 * page reads "holder died" while the process lives on: readers must fall
 * back to asking the kernel, neither failing the live owner nor missing
 * its later death. */
static void *init_and_exit(void *arg)
{
    return pxs_init(NULL, (pxs_context_t **)arg) == PXS_OK ? arg : NULL;
}

Test(store, owner_whose_first_thread_ended_is_still_alive, .timeout = 60)
{
    int to_parent[2], to_child[2];
    cr_assert_eq(pipe(to_parent), 0);
    cr_assert_eq(pipe(to_child), 0);
    static uint8_t buf[8192];
    pid_t pid = fork();
    if (pid == 0) {
        pxs_context_t *c = NULL;
        pxs_store_t *s;
        pxs_proxy_t p;
        pthread_t t;
        void *ok = NULL;
        memset(buf, 0x5a, sizeof buf);
        pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS, .flags = PXS_PUT_NO_INLINE};
        if (pthread_create(&t, NULL, init_and_exit, &c) || pthread_join(t, &ok) || !ok ||
            pxs_store_open(c, NULL, &s) || pxs_put(s, buf, sizeof buf, &pp, &p) ||
            write(to_parent[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(1);
        char go;
        _exit(read(to_child[0], &go, 1) == 1 ? 0 : 2); /* no finalize: a crash */
    }
    pxs_proxy_t p;
    cr_assert_eq(read(to_parent[0], &p, sizeof p), (ssize_t)sizeof p);
    pxs_context_t *ctx;
    cr_assert_eq(pxs_init(NULL, &ctx), PXS_OK);
    static uint8_t out[sizeof buf];
    for (int i = 0; i < 3; i++) {
        memset(out, 0, sizeof out);
        cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_OK);
        cr_assert_eq(out[0], 0x5a);
        cr_assert_eq(out[sizeof out - 1], 0x5a);
    }
    cr_assert_eq(write(to_child[1], "x", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(pxs_resolve(ctx, &p, out, sizeof out, NULL), PXS_ERR_PEER_DEAD);
    pxs_finalize(ctx);
}
