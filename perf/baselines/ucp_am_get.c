/* The raw UCP active-message get baseline; see ucp_am_get.h. */
#include "ucp_am_get.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { AM_REQ = 41, AM_REP = 42 }; /* their own worker: any ids do */

/* pxs's choice across nodes (transports/ucx/ucx.h): eager up to this much
 * when the get is the only one in flight, else up to the busy limit. */
#define EAGER_MAX ((size_t)256 << 10)
#define EAGER_BUSY_MAX ((size_t)128 << 10)

typedef struct {
    uint64_t off, len;
    uint32_t eager, pad;
} am_req_t;

typedef struct {
    uint32_t status; /* 0, or 1: the request was outside the region */
} am_rep_t;

struct ucpb_am {
    ucpb_t *u;
    const ucpb_region_t *serve;
    am_rep_t ok, bad; /* reply headers: must outlive the sends */
    am_req_t reqs[UCPB_WINDOW_MAX];
    void *dst;
    size_t len;
    int replies, sends, lost, failed; /* lost: requests never sent */
};

static ucs_status_t fail(const char *what, ucs_status_t st)
{
    fprintf(stderr, "ucp_am baseline: %s: %s\n", what, ucs_status_string(st));
    return st;
}

static void reply_sent(void *request, ucs_status_t status, void *arg)
{
    (void)arg;
    if (status != UCS_OK) fail("reply", status);
    if (request) ucp_request_free(request);
}

/* Owner: answer on the reply endpoint, from the region. */
static ucs_status_t on_request(void *arg, const void *header, size_t header_len, void *data,
                               size_t length, const ucp_am_recv_param_t *param)
{
    (void)data, (void)length;
    ucpb_am_t *a = arg;
    am_req_t q;
    if (!a->serve || header_len != sizeof q ||
        !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
        return UCS_OK;
    memcpy(&q, header, sizeof q);
    int ok = q.off <= a->serve->len && q.len <= a->serve->len - q.off;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = q.eager ? UCP_AM_SEND_FLAG_EAGER : UCP_AM_SEND_FLAG_RNDV,
                               .cb.send = reply_sent};
    void *r = ucp_am_send_nbx(param->reply_ep, AM_REP, ok ? &a->ok : &a->bad, sizeof a->ok,
                              ok ? (uint8_t *)a->serve->addr + q.off : NULL, ok ? q.len : 0, &prm);
    if (UCS_PTR_IS_ERR(r)) fail("ucp_am_send_nbx (reply)", UCS_PTR_STATUS(r));
    return UCS_OK;
}

static void data_done(void *request, ucs_status_t status, size_t length, void *arg)
{
    (void)length;
    ucpb_am_t *a = arg;
    if (status != UCS_OK) a->failed = 1;
    a->replies++;
    if (request) ucp_request_free(request);
}

/* Reader: eager bytes are copied, rendezvous ones received in place. */
static ucs_status_t on_reply(void *arg, const void *header, size_t header_len, void *data,
                             size_t length, const ucp_am_recv_param_t *param)
{
    ucpb_am_t *a = arg;
    am_rep_t h;
    if (header_len != sizeof h) return UCS_OK;
    memcpy(&h, header, sizeof h);
    if (h.status != 0 || length != a->len) {
        a->failed = 1;
        a->replies++;
        return UCS_OK; /* a rendezvous not received is dropped */
    }
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        memcpy(a->dst, data, length);
        a->replies++;
        return UCS_OK;
    }
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.recv_am = data_done,
                               .user_data = a};
    void *r = ucp_am_recv_data_nbx(ucpb_worker(a->u), data, a->dst, length, &prm);
    if (r == NULL) data_done(NULL, UCS_OK, length, a);
    else if (UCS_PTR_IS_ERR(r)) data_done(NULL, UCS_PTR_STATUS(r), length, a);
    return UCS_INPROGRESS;
}

static ucs_status_t set_handler(ucpb_t *u, unsigned id, ucp_am_recv_callback_t cb, void *arg)
{
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG |
                                               UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
                                 .id = id,
                                 .flags = UCP_AM_FLAG_WHOLE_MSG,
                                 .cb = cb,
                                 .arg = arg};
    ucs_status_t st = ucp_worker_set_am_recv_handler(ucpb_worker(u), &hp);
    return st == UCS_OK ? st : fail("ucp_worker_set_am_recv_handler", st);
}

ucs_status_t ucpb_am_open(ucpb_t *u, const ucpb_region_t *serve, ucpb_am_t **a_p)
{
    ucpb_am_t *a = calloc(1, sizeof *a);
    if (!a) return fail("calloc", UCS_ERR_NO_MEMORY);
    *a = (ucpb_am_t){.u = u, .serve = serve, .ok = {0}, .bad = {1}};
    ucs_status_t st = set_handler(u, AM_REQ, on_request, a);
    if (st == UCS_OK) st = set_handler(u, AM_REP, on_reply, a);
    if (st != UCS_OK) {
        ucpb_am_close(a);
        return st;
    }
    *a_p = a;
    return UCS_OK;
}

void ucpb_am_close(ucpb_am_t *a)
{
    if (!a) return;
    set_handler(a->u, AM_REQ, NULL, NULL);
    set_handler(a->u, AM_REP, NULL, NULL);
    free(a);
}

static void request_sent(void *request, ucs_status_t status, void *arg)
{
    ucpb_am_t *a = arg;
    if (status != UCS_OK) a->failed = 1, a->lost++;
    a->sends++;
    if (request) ucp_request_free(request);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

ucs_status_t ucpb_am_get(ucpb_am_t *a, ucp_ep_h ep, void *dst, size_t len, int window,
                         int timeout_ms)
{
    if (window < 1 || window > UCPB_WINDOW_MAX) return UCS_ERR_INVALID_PARAM;
    a->dst = dst;
    a->len = len;
    a->replies = a->sends = a->lost = a->failed = 0;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA |
                                               UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER,
                               .cb.send = request_sent,
                               .user_data = a};
    for (int i = 0; i < window; i++) {
        a->reqs[i] = (am_req_t){.off = 0, .len = len,
                                .eager = len <= (i ? EAGER_BUSY_MAX : EAGER_MAX)};
        void *r = ucp_am_send_nbx(ep, AM_REQ, &a->reqs[i], sizeof a->reqs[i], NULL, 0, &prm);
        if (r == NULL) request_sent(NULL, UCS_OK, a);
        else if (UCS_PTR_IS_ERR(r)) request_sent(NULL, UCS_PTR_STATUS(r), a);
    }
    double deadline = now_ms() + timeout_ms;
    ucp_worker_h w = ucpb_worker(a->u);
    /* Yield only after a run of idle polls, as pxs_wait does: bytes that
     * stream in make each poll find work. */
    for (unsigned spins = 1, idle = 0; a->replies < window - a->lost || a->sends < window;
         spins++) {
        idle = ucp_worker_progress(w) ? 0 : idle + 1;
        if (idle > 64) sched_yield();
        if (!(spins & 4095) && now_ms() > deadline) return fail("replies", UCS_ERR_TIMED_OUT);
    }
    return a->failed ? UCS_ERR_IO_ERROR : UCS_OK;
}
