/* UCP context, worker and progress: the worker's address goes into every
 * proxy, and a progress thread (PXS_UCX_PROGRESS_THREAD, default on) lets
 * owners serve gets while they compute. On this UCX, gets from ordinary
 * memory over sm and tcp are carried by active messages that the owner's
 * worker must progress; the thread sleeps on the worker's event fd, so it
 * costs no CPU while nobody reads. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../src/log.h"
#include "ucx.h"

pxs_status_t pxs__ucx_status(ucs_status_t st)
{
    switch (st) {
    case UCS_OK: return PXS_OK;
    case UCS_INPROGRESS: return PXS_INPROGRESS;
    case UCS_ERR_NO_MEMORY: return PXS_ERR_NO_MEMORY;
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_INVALID_ADDR: return PXS_ERR_UNREACHABLE;
    /* A broken connection says nothing of the owner's life: reachable
     * again later, or dead (the same node knows: see pxs__ucx_get_finish). */
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_NOT_CONNECTED:
    case UCS_ERR_REJECTED: return PXS_ERR_UNREACHABLE;
    case UCS_ERR_CANCELED:
    case UCS_ERR_TIMED_OUT: return PXS_ERR_TIMEOUT;
    case UCS_ERR_UNSUPPORTED: return PXS_ERR_UNSUPPORTED;
    default: return PXS_ERR_IO;
    }
}

/* Strict, like the core's variables: a malformed value is an error. */
static pxs_status_t env_flag(const char *name, bool dflt, bool *out)
{
    const char *v = getenv(name);
    *out = dflt;
    if (!v || !*v) return PXS_OK;
    if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = true;
    else if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = false;
    else {
        pxs_error("%s=\"%s\": expected 1/yes/on or 0/no/off", name, v);
        return PXS_ERR_INVALID_PARAM;
    }
    return PXS_OK;
}

pxs_status_t pxs__ucx_env_num(const char *name, uint64_t dflt, uint64_t max, const char *unit,
                              uint64_t *out)
{
    const char *v = getenv(name);
    *out = dflt;
    if (!v || !*v) return PXS_OK;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || n > max) {
        pxs_error("%s=\"%s\": expected 0..%llu (%s)", name, v, (unsigned long long)max, unit);
        return PXS_ERR_INVALID_PARAM;
    }
    *out = n;
    return PXS_OK;
}

/* An application that drove the worker this recently (pxs_progress, or a
 * wait on its own gets) is spinning on it itself: the thread stands back
 * instead of fighting it for the worker's lock (on 2 cores an owner
 * spinning in pxs_progress with the thread on took an 8 B get from 2 us to
 * 465 us). It naps, and each nap that finds the application still at it is
 * twice as long as the last, up to APP_NAP_MAX_NS: a nap of 0.1 ms every
 * time woke the thread 6000 times a second and preempted the spinning
 * application on this 2-core machine (a 1 MiB get 24 -> 31 us, see
 * perf/RESULTS.md). The price: an application that stops polling after a
 * long spell is served by the thread again within at most APP_NAP_MAX_NS. */
#define APP_SPIN_NS 100000ll
#define APP_NAP_MAX_NS 5000000ll
#define LEASE_SPIN_NS 1000000ull

static bool app_spins(ucx_t *u)
{
    /* One progress call can last long: a get UCX serves by copying from a
     * mapped region is copied inside it (16 MiB: ~0.5 ms). */
    if (atomic_load_explicit(&u->app_inside, memory_order_relaxed)) return true;
    uint64_t app = atomic_load_explicit(&u->app_progress_ns, memory_order_relaxed);
    return app && pxs__now_ns() - app < (uint64_t)APP_SPIN_NS;
}

static void *progress_thread(void *arg)
{
    ucx_t *u = arg;
    int efd = -1;
    if (ucp_worker_get_efd(u->worker, &efd) != UCS_OK) efd = -1;
    uint64_t last_work = 0;
    long long nap = APP_SPIN_NS;
    while (!atomic_load(&u->stop)) {
        /* While this context waits for gets of its own, the waiting thread
         * progresses the worker; competing for it (lock, wake-ups) was most
         * of a get's cost (measured: rma 38 -> 5 us, am 4.0 -> 2.1 us at
         * 8 B). Look in once a millisecond, to serve our own readers. */
        struct pollfd stop = {.fd = u->stop_fd, .events = POLLIN};
        if (app_spins(u)) {
            struct timespec ts = {(time_t)(nap / 1000000000ll), (long)(nap % 1000000000ll)};
            ppoll(&stop, 1, &ts, NULL);
            if (nap < APP_NAP_MAX_NS) nap = nap * 2 < APP_NAP_MAX_NS ? nap * 2 : APP_NAP_MAX_NS;
            continue;
        }
        nap = APP_SPIN_NS;
        if (atomic_load(&u->own_gets)) {
            poll(&stop, 1, 1);
            if (!atomic_load(&u->own_gets)) continue;
        }
        unsigned n = 0;
        while (ucp_worker_progress(u->worker)) /* beat while draining, as progress does */
            if (++n % 8 == 0) pxs__ucx_beat(u, pxs__now_ns());
        /* Readers come in bursts: after work, keep polling a little while
         * (PXS_UCX_SPIN_US) instead of paying a wake-up per request. */
        uint64_t now = pxs__now_ns();
        pxs__ucx_beat(u, now);
        if (n) last_work = now;
        if (now - last_work < u->spin_ns) continue;
        /* A lease granted means the reader's get is on its way: serving it
         * without a wake-up saved ~3 us of a 1 MiB get here (a lost
         * release stops this LEASE_SPIN_NS after the last work). */
        if (atomic_load(&u->leases_out) && now - last_work < LEASE_SPIN_NS) continue;
        pxs__ucx_beat(u, 0); /* asleep: same-node readers need not wait for us */
        if (efd >= 0) {
            ucs_status_t st = ucp_worker_arm(u->worker);
            if (st == UCS_ERR_BUSY) continue; /* more work arrived meanwhile */
            struct pollfd fds[2] = {{.fd = efd, .events = POLLIN}, {.fd = u->stop_fd, .events = POLLIN}};
            /* The timeout only bounds how late an event that does not wake
             * the fd (some shared-memory transports) is served. */
            poll(fds, 2, 1);
        } else {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

pxs_status_t pxs__ucx_worker_init(ucx_t *u)
{
    /* UCX 1.13 connects TCP endpoints with a blocking connect(): a first get
     * to an unreachable host would then hang for the kernel's SYN retries
     * (minutes), whatever our timeout. Non-blocking, the get waits under its
     * own deadline like any other. UCT reads its transport settings from the
     * environment (ucp_config_modify does not reach them), so this is set
     * there, before UCX reads it; a value the user set is kept. Only where
     * tcp may be used: UCX warns about variables no transport reads. */
    const char *tls = getenv("UCX_TLS");
    if (!tls || strstr(tls, "tcp") || strstr(tls, "all") || tls[0] == '^')
        setenv("UCX_TCP_CONN_NB", "y", 0);
    /* Spin off by default: on a machine with few cores a spinning owner
     * slows everyone (measured on 2 cores: raw gets 0.23 -> 1.49 us). */
    uint64_t spin_us;
    pxs_status_t pst = env_flag("PXS_UCX_PROGRESS_THREAD", true, &u->thread_on);
    if (pst == PXS_OK) pst = pxs__ucx_env_num("PXS_UCX_SPIN_US", 0, 10000000ull, "us", &spin_us);
    if (pst != PXS_OK) return pst;
    u->spin_ns = spin_us * 1000ull;
    ucp_config_t *cfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &cfg);
    if (st != UCS_OK) return pxs__ucx_status(st);
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 1,
    };
    st = ucp_init(&params, cfg, &u->uctx);
    ucp_config_release(cfg);
    if (st != UCS_OK) {
        pxs_error("ucp_init: %s", ucs_status_string(st));
        return pxs__ucx_status(st);
    }
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_MULTI};
    st = ucp_worker_create(u->uctx, &wp, &u->worker);
    if (st != UCS_OK) goto err_ctx;
    st = ucp_worker_get_address(u->worker, &u->addr, &u->addr_len);
    if (st != UCS_OK) goto err_worker;
    if (u->addr_len > 320) { /* the proxy blob must hold it with two rkeys */
        pxs_error("UCX worker address of %zu bytes does not fit a proxy; narrow UCX_TLS",
                  u->addr_len);
        st = UCS_ERR_EXCEEDS_LIMIT;
        ucp_worker_release_address(u->worker, u->addr);
        goto err_worker;
    }
    return PXS_OK;

err_worker:
    ucp_worker_destroy(u->worker);
err_ctx:
    ucp_cleanup(u->uctx);
    pxs_error("UCX worker: %s", ucs_status_string(st));
    return pxs__ucx_status(st);
}

pxs_status_t pxs__ucx_thread_start(ucx_t *u)
{
    if (!u->thread_on) return PXS_OK;
    u->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->stop_fd >= 0 && pthread_create(&u->thread, NULL, progress_thread, u) == 0)
        return PXS_OK;
    pxs_error("UCX progress thread: %s", strerror(errno));
    if (u->stop_fd >= 0) close(u->stop_fd);
    u->thread_on = false;
    return PXS_ERR_NO_RESOURCE;
}

void pxs__ucx_thread_stop(ucx_t *u)
{
    if (!u->thread_on) return;
    atomic_store(&u->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(u->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(u->thread, NULL);
    close(u->stop_fd);
    u->thread_on = false;
}

void pxs__ucx_worker_fini(ucx_t *u)
{
    ucp_worker_release_address(u->worker, u->addr);
    ucp_worker_destroy(u->worker);
    ucp_cleanup(u->uctx);
}

int pxs__ucx_progress(pxs_conn_t *conn)
{
    ucx_t *u = conn->priv;
    int n = 0;
    pxs__ucx_batch_flush(u); /* requests queued since the last progress */
    if (u->thread_on) atomic_fetch_add_explicit(&u->app_inside, 1, memory_order_relaxed);
    /* Beat while draining too: 64 requests of 8 B take ~13 us, and a beat
     * only after them went stale under a reader's window. */
    while (ucp_worker_progress(u->worker))
        if (++n % 8 == 0) pxs__ucx_beat(u, pxs__now_ns());
    uint64_t now = pxs__now_ns();
    pxs__ucx_beat(u, now);
    if (n) atomic_store_explicit(&u->event_ns, now, memory_order_relaxed);
    pxs__ucx_stall_check(u, now);
    if (u->thread_on) {
        atomic_store_explicit(&u->app_progress_ns, now, memory_order_relaxed);
        atomic_fetch_sub_explicit(&u->app_inside, 1, memory_order_relaxed);
    }
    pxs__ucx_peers_check(u);
    return n;
}
