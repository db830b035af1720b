/* Context life cycle and configuration (params, then PXS_* overrides). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "pxs_int.h"

#define DEFAULT_INLINE_MAX  1024
#define DEFAULT_MAX_OBJECTS 65536
#define DEFAULT_TIMEOUT_MS  10000
#define MAX_OBJECTS_LIMIT   (1u << 24)

const char *pxs_version(void)
{
    return PXS_STRINGIFY(PXS_VERSION_MAJOR) "." PXS_STRINGIFY(PXS_VERSION_MINOR) "." PXS_STRINGIFY(
        PXS_VERSION_PATCH);
}

/* Live contexts of this process. "local" readers hold the read lock while
 * they copy, so a concurrent pxs_finalize waits for them. */
static pthread_rwlock_t live_lock = PTHREAD_RWLOCK_INITIALIZER;
static pxs_context_t *live_head;

const pxs_objtab_t *pxs__conn_local_acquire(uint64_t owner_id)
{
    pthread_rwlock_rdlock(&live_lock);
    pxs_context_t *c = live_head;
    while (c && c->owner_id != owner_id) c = c->next_live;
    if (!c) pthread_rwlock_unlock(&live_lock);
    return c ? &c->tab : NULL;
}

void pxs__conn_local_release(void) { pthread_rwlock_unlock(&live_lock); }

/* Parse an unsigned env override; a malformed one is an error, not ignored. */
static pxs_status_t env_u64(const char *var, uint64_t max, uint64_t *out)
{
    const char *s = getenv(var);
    if (!s || !*s) return PXS_OK;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max || s[0] == '-') {
        pxs_error("%s=\"%s\" is not a number in [0, %llu]", var, s, (unsigned long long)max);
        return PXS_ERR_INVALID_PARAM;
    }
    *out = v;
    return PXS_OK;
}

static pxs_status_t apply_config(pxs_context_t *ctx, const pxs_context_params_t *p)
{
    uint64_t m = p ? p->field_mask : 0;
    const char *domain = (m & PXS_CONTEXT_PARAM_DOMAIN) && p->domain ? p->domain : "default";
    ctx->thread_mode = (m & PXS_CONTEXT_PARAM_THREAD_MODE) ? p->thread_mode : PXS_THREAD_SINGLE;
    uint64_t inline_max = (m & PXS_CONTEXT_PARAM_INLINE_MAX) ? p->inline_max : DEFAULT_INLINE_MAX;
    uint64_t max_objects = (m & PXS_CONTEXT_PARAM_MAX_OBJECTS) ? p->max_objects : DEFAULT_MAX_OBJECTS;
    int64_t timeout = (m & PXS_CONTEXT_PARAM_TIMEOUT_MS) ? p->timeout_ms : DEFAULT_TIMEOUT_MS;

    const char *env = getenv("PXS_DOMAIN");
    if (env && *env) domain = env;
    env = getenv("PXS_THREAD_MODE");
    if (env && *env) {
        if (!strcasecmp(env, "single")) ctx->thread_mode = PXS_THREAD_SINGLE;
        else if (!strcasecmp(env, "multiple")) ctx->thread_mode = PXS_THREAD_MULTIPLE;
        else {
            pxs_error("PXS_THREAD_MODE=\"%s\": expected single or multiple", env);
            return PXS_ERR_INVALID_PARAM;
        }
    }
    if (env_u64("PXS_INLINE_MAX", UINT64_MAX, &inline_max) ||
        env_u64("PXS_MAX_OBJECTS", UINT64_MAX, &max_objects))
        return PXS_ERR_INVALID_PARAM;
    env = getenv("PXS_TIMEOUT_MS");
    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (errno || *end || v < -1 || v > INT32_MAX) {
            pxs_error("PXS_TIMEOUT_MS=\"%s\": expected -1 (none) or 0..%d ms", env, INT32_MAX);
            return PXS_ERR_INVALID_PARAM;
        }
        timeout = v;
    }
    if (timeout < -1 || timeout > INT32_MAX) {
        pxs_error("timeout_ms %lld: expected -1 (none) or a number of ms", (long long)timeout);
        return PXS_ERR_INVALID_PARAM;
    }

    size_t dlen = strlen(domain);
    if (dlen == 0 || dlen >= PXS_DOMAIN_MAX) {
        pxs_error("domain name must be 1..%d bytes", PXS_DOMAIN_MAX - 1);
        return PXS_ERR_INVALID_PARAM;
    }
    if (ctx->thread_mode != PXS_THREAD_SINGLE && ctx->thread_mode != PXS_THREAD_MULTIPLE)
        return PXS_ERR_INVALID_PARAM;
    if (inline_max > PXS_INLINE_LIMIT) {
        pxs_error("inline_max %llu exceeds PXS_INLINE_LIMIT (%d)", (unsigned long long)inline_max,
                  PXS_INLINE_LIMIT);
        return PXS_ERR_INVALID_PARAM;
    }
    if (max_objects == 0 || max_objects > MAX_OBJECTS_LIMIT) {
        pxs_error("max_objects must be 1..%u", MAX_OBJECTS_LIMIT);
        return PXS_ERR_INVALID_PARAM;
    }
    memcpy(ctx->domain, domain, dlen + 1);
    ctx->domain_id = pxs__hash64(domain, dlen);
    ctx->inline_max = (size_t)inline_max;
    ctx->max_objects = (uint32_t)max_objects;
    ctx->timeout_ms = (int)timeout;
    return PXS_OK;
}

pxs_status_t pxs_init(const pxs_context_params_t *params, pxs_context_t **ctx_p)
{
    if (!ctx_p) return PXS_ERR_INVALID_PARAM;
    pxs__log_init();
    pxs_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return PXS_ERR_NO_MEMORY;
    pxs_status_t st = apply_config(ctx, params);
    if (st != PXS_OK) goto err_free;
    pthread_mutex_init(&ctx->lock, NULL);

    do {
        if (getrandom(&ctx->owner_id, sizeof ctx->owner_id, 0) != sizeof ctx->owner_id) {
            st = PXS_ERR_IO;
            goto err_lock;
        }
    } while (ctx->owner_id == 0);
    ctx->pid = getpid();
    ctx->start_time = pxs__proc_start_time(ctx->pid);
    ctx->node_id = pxs__node_id();
    ctx->next_gen = 1;
    ctx->next_key = 1;

    pxs__seg_reap_stale();

    ctx->objs = calloc(ctx->max_objects, sizeof *ctx->objs);
    ctx->free_slots = malloc(ctx->max_objects * sizeof *ctx->free_slots);
    if (!ctx->objs || !ctx->free_slots) {
        st = PXS_ERR_NO_MEMORY;
        goto err_mem;
    }
    /* Hand out low slots first: they share pages of the table. */
    for (uint32_t i = 0; i < ctx->max_objects; i++) ctx->free_slots[i] = ctx->max_objects - 1 - i;
    ctx->nfree = ctx->max_objects;

    char name[PXS_SEG_NAME_MAX];
    pxs__seg_name(name, sizeof name, ctx->pid, ctx->start_time, ctx->owner_id, "tab");
    st = pxs__objtab_create(&ctx->tab, name, ctx->max_objects, ctx->owner_id,
                            (uint32_t)ctx->pid, ctx->start_time);
    if (st != PXS_OK) goto err_mem;
    pxs__live_open(ctx->pid, ctx->start_time);

    pthread_rwlock_wrlock(&live_lock);
    ctx->next_live = live_head;
    live_head = ctx;
    pthread_rwlock_unlock(&live_lock);

    pxs_debug("context %016llx up: domain \"%s\", inline_max %zu, max_objects %u",
              (unsigned long long)ctx->owner_id, ctx->domain, ctx->inline_max, ctx->max_objects);
    *ctx_p = ctx;
    return PXS_OK;

err_mem:
    free(ctx->objs);
    free(ctx->free_slots);
err_lock:
    pthread_mutex_destroy(&ctx->lock);
err_free:
    free(ctx);
    return st;
}

void pxs_finalize(pxs_context_t *ctx)
{
    if (!ctx) return;
    pthread_rwlock_wrlock(&live_lock);
    for (pxs_context_t **pp = &live_head; *pp; pp = &(*pp)->next_live) {
        if (*pp == ctx) {
            *pp = ctx->next_live;
            break;
        }
    }
    pthread_rwlock_unlock(&live_lock);

    pxs__names_close(ctx);
    while (ctx->stores) pxs_store_close(ctx->stores);
    if (ctx->tab.hdr) atomic_store(&ctx->tab.hdr->closed, 1);
    for (size_t i = 0; i < sizeof ctx->conns / sizeof ctx->conns[0]; i++) {
        pxs_conn_t *c = ctx->conns[i];
        if (!c) continue;
        c->ops->fini(c);
        free(c);
    }
    while (ctx->nsegs) pxs__seg_release(ctx, ctx->segs[ctx->nsegs - 1]);
    free(ctx->segs);
    pxs__objtab_close(&ctx->tab, 1);
    pxs__live_close();
    pxs__requests_free_all(ctx);
    free(ctx->objs);
    free(ctx->free_slots);
    free(ctx->group);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

int pxs_progress(pxs_context_t *ctx)
{
    if (!ctx) return 0;
    int n = 0;
    pxs__lock(ctx);
    for (size_t i = 0; i < sizeof ctx->conns / sizeof ctx->conns[0]; i++)
        if (ctx->conns[i]) n += ctx->conns[i]->ops->progress(ctx->conns[i]);
    pxs__unlock(ctx);
    return n;
}

pxs_status_t pxs_context_query(const pxs_context_t *ctx, pxs_context_params_t *out)
{
    if (!ctx || !out) return PXS_ERR_INVALID_PARAM;
    memset(out, 0, sizeof *out);
    out->field_mask = PXS_CONTEXT_PARAM_DOMAIN | PXS_CONTEXT_PARAM_THREAD_MODE |
                      PXS_CONTEXT_PARAM_INLINE_MAX | PXS_CONTEXT_PARAM_MAX_OBJECTS |
                      PXS_CONTEXT_PARAM_TIMEOUT_MS;
    out->domain = ctx->domain;
    out->thread_mode = ctx->thread_mode;
    out->inline_max = ctx->inline_max;
    out->max_objects = ctx->max_objects;
    out->timeout_ms = ctx->timeout_ms;
    return PXS_OK;
}

pxs_object_t *pxs__ctx_object(pxs_context_t *ctx, uint32_t slot, uint64_t gen)
{
    if (slot >= ctx->max_objects) return NULL;
    pxs_object_t *o = &ctx->objs[slot];
    return (o->store && o->gen == gen) ? o : NULL;
}
