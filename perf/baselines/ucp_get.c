/* The raw UCP get baseline; see ucp_get.h. */
#include "ucp_get.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ucpb {
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_address_t *addr;
    size_t addr_len;
    pthread_t thread;
    int thread_on;
    int stop; /* __atomic */
    const int *busy;
};

static ucs_status_t fail(const char *what, ucs_status_t st)
{
    fprintf(stderr, "ucp_get baseline: %s: %s\n", what, ucs_status_string(st));
    return st;
}

static ucs_status_t init(int multi_thread, uint64_t features, ucpb_t **u_p)
{
    ucpb_t *u = calloc(1, sizeof *u);
    if (!u) return fail("calloc", UCS_ERR_NO_MEMORY);
    ucp_config_t *cfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &cfg);
    if (st != UCS_OK) {
        free(u);
        return fail("ucp_config_read", st);
    }
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = features,
        .mt_workers_shared = multi_thread ? 1 : 0,
    };
    st = ucp_init(&params, cfg, &u->ctx);
    ucp_config_release(cfg);
    if (st != UCS_OK) {
        free(u);
        return fail("ucp_init", st);
    }
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = multi_thread ? UCS_THREAD_MODE_MULTI
                                                          : UCS_THREAD_MODE_SINGLE};
    st = ucp_worker_create(u->ctx, &wp, &u->worker);
    if (st != UCS_OK) {
        ucp_cleanup(u->ctx);
        free(u);
        return fail("ucp_worker_create", st);
    }
    st = ucp_worker_get_address(u->worker, &u->addr, &u->addr_len);
    if (st != UCS_OK) {
        ucp_worker_destroy(u->worker);
        ucp_cleanup(u->ctx);
        free(u);
        return fail("ucp_worker_get_address", st);
    }
    *u_p = u;
    return UCS_OK;
}

ucs_status_t ucpb_init(int multi_thread, ucpb_t **u_p)
{
    return init(multi_thread, UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP, u_p);
}

ucs_status_t ucpb_init_am(ucpb_t **u_p)
{
    return init(0, UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP, u_p);
}

void ucpb_fini(ucpb_t *u)
{
    if (!u) return;
    ucpb_thread_stop(u);
    ucp_worker_release_address(u->worker, u->addr);
    ucp_worker_destroy(u->worker);
    ucp_cleanup(u->ctx);
    free(u);
}

ucp_worker_h ucpb_worker(ucpb_t *u) { return u->worker; }

void ucpb_address(const ucpb_t *u, const void **addr_p, size_t *len_p)
{
    *addr_p = u->addr;
    *len_p = u->addr_len;
}

ucs_status_t ucpb_map(ucpb_t *u, void *buf, size_t len, ucpb_region_t *r)
{
    memset(r, 0, sizeof *r);
    ucp_mem_map_params_t mp = {.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH,
                               .length = len ? len : 1};
    if (buf) {
        mp.field_mask |= UCP_MEM_MAP_PARAM_FIELD_ADDRESS;
        mp.address = buf;
    } else {
        mp.field_mask |= UCP_MEM_MAP_PARAM_FIELD_FLAGS;
        mp.flags = UCP_MEM_MAP_ALLOCATE;
    }
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &r->memh);
    if (st != UCS_OK) return fail("ucp_mem_map", st);
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH};
    st = ucp_mem_query(r->memh, &attr);
    if (st == UCS_OK) st = ucp_rkey_pack(u->ctx, r->memh, &r->rkey, &r->rkey_len);
    if (st != UCS_OK) {
        ucp_mem_unmap(u->ctx, r->memh);
        return fail("ucp_mem_query/ucp_rkey_pack", st);
    }
    r->addr = buf ? buf : attr.address;
    r->len = len;
    r->allocated = buf == NULL;
    return UCS_OK;
}

void ucpb_unmap(ucpb_t *u, ucpb_region_t *r)
{
    if (!r->memh) return;
    ucp_rkey_buffer_release(r->rkey);
    ucp_mem_unmap(u->ctx, r->memh);
    memset(r, 0, sizeof *r);
}

static void *progress_thread(void *arg)
{
    ucpb_t *u = arg;
    int efd = -1;
    if (ucp_worker_get_efd(u->worker, &efd) != UCS_OK) efd = -1;
    while (!__atomic_load_n(&u->stop, __ATOMIC_RELAXED)) {
        if (__atomic_load_n(u->busy, __ATOMIC_RELAXED)) {
            ucp_worker_progress(u->worker);
            continue;
        }
        while (ucp_worker_progress(u->worker)) {
        }
        if (efd < 0) continue;
        if (ucp_worker_arm(u->worker) == UCS_ERR_BUSY) continue;
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        poll(&pfd, 1, 1);
    }
    return NULL;
}

ucs_status_t ucpb_thread_start(ucpb_t *u, const int *busy)
{
    if (u->thread_on) return UCS_OK;
    u->busy = busy;
    __atomic_store_n(&u->stop, 0, __ATOMIC_RELAXED);
    if (pthread_create(&u->thread, NULL, progress_thread, u) != 0)
        return fail("pthread_create", UCS_ERR_NO_RESOURCE);
    u->thread_on = 1;
    return UCS_OK;
}

void ucpb_thread_stop(ucpb_t *u)
{
    if (!u->thread_on) return;
    __atomic_store_n(&u->stop, 1, __ATOMIC_RELAXED);
    pthread_join(u->thread, NULL);
    u->thread_on = 0;
}

ucs_status_t ucpb_connect(ucpb_t *u, const void *addr, ucp_ep_h *ep_p)
{
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                          .address = addr,
                          .err_mode = UCP_ERR_HANDLING_MODE_NONE};
    ucs_status_t st = ucp_ep_create(u->worker, &ep, ep_p);
    return st == UCS_OK ? st : fail("ucp_ep_create", st);
}

void ucpb_disconnect(ucpb_t *u, ucp_ep_h ep)
{
    if (!ep) return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE};
    void *req = ucp_ep_close_nbx(ep, &prm);
    if (UCS_PTR_IS_PTR(req)) {
        while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(u->worker);
        ucp_request_free(req);
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait for one request, progressing; checks the clock every 4096 spins.
 * After 64 spins it yields the CPU between polls, as pxs_wait does: on two
 * cores a waiter that never yields starves the kernel's loopback TCP work. */
static ucs_status_t wait_req(ucpb_t *u, void *r, double deadline_ms)
{
    if (r == NULL) return UCS_OK;
    if (UCS_PTR_IS_ERR(r)) return UCS_PTR_STATUS(r);
    ucs_status_t st;
    for (unsigned spins = 1; (st = ucp_request_check_status(r)) == UCS_INPROGRESS; spins++) {
        if (!ucp_worker_progress(u->worker) && spins > 64) sched_yield();
        if (!(spins & 4095) && now_ms() > deadline_ms) {
            ucp_request_cancel(u->worker, r);
            while (ucp_request_check_status(r) == UCS_INPROGRESS) ucp_worker_progress(u->worker);
            ucp_request_free(r);
            return UCS_ERR_TIMED_OUT;
        }
    }
    ucp_request_free(r);
    return st;
}

ucs_status_t ucpb_get(ucpb_t *u, ucp_ep_h ep, void *dst, size_t len, uint64_t raddr,
                      ucp_rkey_h rkey, int timeout_ms)
{
    ucp_request_param_t prm = {.op_attr_mask = 0};
    void *r = ucp_get_nbx(ep, dst, len, raddr, rkey, &prm);
    return wait_req(u, r, now_ms() + timeout_ms);
}

ucs_status_t ucpb_get_window(ucpb_t *u, ucp_ep_h ep, void *dst, size_t len, uint64_t raddr,
                             ucp_rkey_h rkey, int window, int timeout_ms)
{
    void *reqs[UCPB_WINDOW_MAX];
    if (window < 1 || window > UCPB_WINDOW_MAX) return UCS_ERR_INVALID_PARAM;
    ucp_request_param_t prm = {.op_attr_mask = 0};
    for (int i = 0; i < window; i++) reqs[i] = ucp_get_nbx(ep, dst, len, raddr, rkey, &prm);
    double deadline = now_ms() + timeout_ms;
    ucs_status_t first = UCS_OK;
    for (int i = 0; i < window; i++) {
        ucs_status_t st = wait_req(u, reqs[i], deadline);
        if (st != UCS_OK && first == UCS_OK) first = st;
    }
    return first;
}
