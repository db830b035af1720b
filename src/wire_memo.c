/* A per-thread memo of proxy validation (wire.h, pxs__wire_parse_memo).
 *
 * A resolve must validate the proxy it is handed: bytes from anywhere. The
 * CRC-32C and the field checks cost 8 ns for a 108-byte shm proxy and 12 ns
 * for a 285-byte ucx one, as much as the whole copy of a small object, and
 * a consumer that reads the same object again (polling it, a window of gets
 * of it) paid them every time. Validation is a pure function of the bytes,
 * so bytes equal to ones that validated before validate the same way: a
 * hit is one compare against the copy kept here (inline: wire_memo.h).
 * Only bytes that validated are kept, with their parse, so that part of an
 * entry can never go stale and nothing has to invalidate it. Beside it sits
 * the proxy's route (wire.h), which the core and a connector fill and which
 * checks itself on every use; here it is only emptied when other bytes take
 * the entry.
 *
 * One small table per thread: no lock, no line shared between threads. It
 * is heap memory reached from an initial-exec TLS pointer (one load; a
 * dlopen'd libpxs needs only those 8 bytes of static TLS) and freed at the
 * thread's exit. PXS_PROXY_MEMO=0 turns it off (every resolve validates in
 * full). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wire_memo.h"

__thread pxs_memo_t *pxs__memo_mine __attribute__((tls_model("initial-exec")));
static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static bool memo_ok;

static void memo_thread_exit(void *m)
{
    pxs__memo_mine = PXS_MEMO_OFF; /* a later destructor that resolves validates in full */
    free(m);
}

bool pxs__memo_wide; /* set once, before this process's first memo exists */

#if defined(__x86_64__)
__attribute__((target("avx2"))) bool pxs__memo_eq_wide(const uint8_t *a, const uint8_t *b,
                                                       size_t n)
{
    typedef uint64_t v4_t __attribute__((vector_size(32)));
    v4_t acc = {0, 0, 0, 0}, x, y;
    size_t i = 0;
    for (; i + 32 < n; i += 32) {
        memcpy(&x, a + i, 32);
        memcpy(&y, b + i, 32);
        acc |= x ^ y;
    }
    memcpy(&x, a + n - 32, 32);
    memcpy(&y, b + n - 32, 32);
    acc |= x ^ y;
    return !(acc[0] | acc[1] | acc[2] | acc[3]);
}
#else
bool pxs__memo_eq_wide(const uint8_t *a, const uint8_t *b, size_t n)
{
    return memcmp(a, b, n) == 0;
}
#endif

static void memo_init(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    pxs__memo_wide = __builtin_cpu_supports("avx2");
#endif
    const char *env = getenv("PXS_PROXY_MEMO");
    memo_ok = !(env && !strcmp(env, "0")) && pthread_key_create(&memo_key, memo_thread_exit) == 0;
}

static pxs_memo_t *memo_get(void)
{
    pxs_memo_t *m = pxs__memo_mine;
    if (m) return m == PXS_MEMO_OFF ? NULL : m;
    pthread_once(&memo_once, memo_init);
    m = memo_ok ? calloc(1, sizeof *m) : NULL;
    if (m && pthread_setspecific(memo_key, m) != 0) {
        free(m);
        m = NULL;
    }
    pxs__memo_mine = m ? m : PXS_MEMO_OFF;
    return m;
}

__thread pxs_route_t *pxs__route_fill __attribute__((tls_model("initial-exec")));

pxs_status_t pxs__wire_parse_route(const uint8_t *b, size_t len, pxs_pdesc_t *d,
                                   pxs_route_t **rt_p)
{
    if (rt_p) *rt_p = NULL;
    pxs_memo_entry_t *e = len >= 16 ? pxs__memo_hit(b, len) : NULL;
    if (e) {
        *d = e->d;
        pxs__memo_repoint(d, b);
        if (rt_p) *rt_p = &e->route;
        return PXS_OK;
    }
    pxs_status_t st = pxs__wire_parse(b, len, d);
    if (st != PXS_OK) return st; /* only bytes that validated are kept */
    pxs_memo_t *m = memo_get();
    uint32_t total = d->total_len;
    if (!m || total > PXS_MEMO_BYTES) return st;
    e = &m->e[pxs_rd32(b + total - PXS_WIRE_CRC_LEN) % PXS_MEMO_WAYS];
    e->total = total;
    memcpy(e->bytes, b, total);
    e->d = *d;
    pxs__memo_repoint(&e->d, e->bytes);
    e->route.uid = 0; /* the old bytes' route is not these bytes' */
    if (rt_p) *rt_p = &e->route;
    return st;
}

pxs_status_t pxs__wire_parse_memo(const uint8_t *b, size_t len, pxs_pdesc_t *d)
{
    return pxs__wire_parse_route(b, len, d, NULL);
}
