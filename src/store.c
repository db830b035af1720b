/* Stores and the producer path: put, evict, exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxs_int.h"

pxs_status_t pxs_store_open(pxs_context_t *ctx, const pxs_store_params_t *params,
                            pxs_store_t **store_p)
{
    if (!ctx || !store_p) return PXS_ERR_INVALID_PARAM;
    uint64_t m = params ? params->field_mask : 0;
    const char *cname = (m & PXS_STORE_PARAM_CONNECTOR) && params->connector ? params->connector : "shm";
    const char *name = (m & PXS_STORE_PARAM_NAME) && params->name ? params->name : "default";
    if (strlen(name) == 0 || strlen(name) >= sizeof(((pxs_store_t *)0)->name))
        return PXS_ERR_INVALID_PARAM;
    const pxs_conn_ops_t *ops = pxs__conn_ops_by_name(cname);
    if (!ops) {
        pxs_error("no connector named \"%s\" in this build (see pxs_info)", cname);
        return PXS_ERR_NO_CONNECTOR;
    }
    pxs_store_t *s = calloc(1, sizeof *s);
    if (!s) return PXS_ERR_NO_MEMORY;
    pxs__lock(ctx);
    pxs_status_t st = pxs__conn_get(ctx, ops->id, &s->conn);
    if (st != PXS_OK) {
        pxs__unlock(ctx);
        free(s);
        return st;
    }
    s->ctx = ctx;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->id = pxs__hash64(name, strlen(name));
    s->next = ctx->stores;
    ctx->stores = s;
    pxs__unlock(ctx);
    *store_p = s;
    return PXS_OK;
}

void pxs__object_evict(pxs_object_t *o)
{
    pxs_store_t *s = o->store;
    pxs_context_t *ctx = s->ctx;
    /* Revoke for readers first: from here every reader sees a mismatch. */
    pxs__objtab_revoke(&ctx->tab, o->slot);
    s->conn->ops->mem_dereg(s->conn, o);
    if (o->seg) o->seg->nobjs--;
    if (o->copied) s->conn->ops->mem_free(s->conn, o->addr);
    s->nobjects--;
    memset(o, 0, sizeof *o);
    ctx->free_slots[ctx->nfree++] = (uint32_t)(o - ctx->objs);
}

void pxs__store_evict_all(pxs_store_t *store)
{
    pxs_context_t *ctx = store->ctx;
    const pxs_conn_ops_t *ops = store->conn->ops;
    if (ops->dereg_begin) ops->dereg_begin(store->conn);
    for (uint32_t i = 0; store->nobjects && i < ctx->max_objects; i++)
        if (ctx->objs[i].store == store) pxs__object_evict(&ctx->objs[i]);
    if (ops->dereg_end) ops->dereg_end(store->conn);
}

void pxs_store_close(pxs_store_t *store)
{
    if (!store) return;
    pxs_context_t *ctx = store->ctx;
    pxs__lock(ctx);
    pxs__store_evict_all(store);
    for (pxs_store_t **pp = &ctx->stores; *pp; pp = &(*pp)->next) {
        if (*pp == store) {
            *pp = store->next;
            break;
        }
    }
    pxs__unlock(ctx);
    free(store);
}

static pxs_status_t put_inline(pxs_store_t *s, const void *buf, size_t len, pxs_proxy_t *out)
{
    pxs_context_t *ctx = s->ctx;
    pxs_pdesc_t d = {.connector = PXS_CONNECTOR_INLINE,
                     .memtype = PXS_MEMTYPE_HOST,
                     .flags = PXS_WF_INLINE,
                     .domain = ctx->domain_id,
                     .owner = ctx->owner_id,
                     .key = ctx->next_key++,
                     .store = s->id,
                     .size = len,
                     .data = buf};
    return pxs__wire_build(&d, out);
}

pxs_status_t pxs_put(pxs_store_t *s, const void *buf, size_t len, const pxs_put_params_t *params,
                     pxs_proxy_t *proxy_p)
{
    if (!s || !proxy_p || (!buf && len)) return PXS_ERR_INVALID_PARAM;
    uint64_t m = params ? params->field_mask : 0;
    pxs_memtype_t mt = (m & PXS_PUT_PARAM_MEMTYPE) ? params->memtype : PXS_MEMTYPE_HOST;
    uint32_t flags = (m & PXS_PUT_PARAM_FLAGS) ? params->flags : 0;
    if ((unsigned)mt >= PXS_MEMTYPE_LAST) return PXS_ERR_INVALID_PARAM;
    if (!(s->conn->ops->memtypes & (1u << mt))) return PXS_ERR_UNSUPPORTED;
    pxs_context_t *ctx = s->ctx;
    pxs_status_t st;

    pxs__lock(ctx);
    if (mt == PXS_MEMTYPE_HOST && ctx->inline_max && len <= ctx->inline_max &&
        !(flags & PXS_PUT_NO_INLINE)) {
        st = put_inline(s, buf, len, proxy_p);
        pxs__unlock(ctx);
        return st;
    }
    if (ctx->nfree == 0) {
        pxs__unlock(ctx);
        pxs_warn("object table full (%u objects): evict some or raise PXS_MAX_OBJECTS",
                 ctx->max_objects);
        return PXS_ERR_NO_RESOURCE;
    }
    uint32_t slot = ctx->free_slots[ctx->nfree - 1];
    pxs_object_t *o = &ctx->objs[slot];
    o->slot = slot;
    o->len = len;
    o->memtype = (uint8_t)mt;
    o->addr = (void *)buf;
    if (flags & PXS_PUT_COPY) {
        st = s->conn->ops->mem_alloc(s->conn, len, &o->addr);
        if (st != PXS_OK) goto err;
        memcpy(o->addr, buf, len);
        o->copied = true;
    }
    o->seg = pxs__seg_find(ctx, o->addr, len);
    st = s->conn->ops->mem_reg(s->conn, o);
    if (st != PXS_OK) goto err_copy;

    o->gen = ctx->next_gen++;
    o->key = ctx->next_key++;
    pxs_pdesc_t d = {.connector = s->conn->ops->id,
                     .memtype = (uint8_t)mt,
                     .domain = ctx->domain_id,
                     .owner = ctx->owner_id,
                     .key = o->key,
                     .store = s->id,
                     .size = len,
                     .gen = o->gen,
                     .slot = slot};
    /* The connector packs straight into the proxy; build leaves it there. */
    size_t blob_len = 0;
    uint8_t *blob = proxy_p->bytes + PXS_WIRE_HDR_V1;
    st = s->conn->ops->pack_remote(s->conn, o, blob, PXS_WIRE_BLOB_MAX, &blob_len);
    if (st != PXS_OK) goto err_reg;
    d.blob = blob;
    d.blob_len = (uint16_t)blob_len;
    st = pxs__wire_build(&d, proxy_p);
    if (st != PXS_OK) goto err_reg;

    o->store = s;
    if (o->seg) o->seg->nobjs++;
    s->nobjects++;
    ctx->nfree--;
    pxs__objtab_set(&ctx->tab, slot, o->gen); /* live for readers from here */
    pxs__unlock(ctx);
    return PXS_OK;

err_reg:
    s->conn->ops->mem_dereg(s->conn, o);
err_copy:
    if (o->copied) s->conn->ops->mem_free(s->conn, o->addr);
err:
    memset(o, 0, sizeof *o);
    pxs__unlock(ctx);
    return st;
}

pxs_status_t pxs_evict(pxs_store_t *s, const pxs_proxy_t *proxy)
{
    if (!s || !proxy) return PXS_ERR_INVALID_PARAM;
    pxs_context_t *ctx = s->ctx;
    pxs_pdesc_t d;
    pxs_status_t st = pxs__proxy_check(ctx, proxy, &d);
    if (st != PXS_OK) return st;
    if (d.flags & PXS_WF_INLINE) return PXS_OK;
    if (d.owner != ctx->owner_id || d.store != s->id) return PXS_ERR_NOT_OWNER;
    pxs__lock(ctx);
    pxs_object_t *o = pxs__ctx_object(ctx, d.slot, d.gen);
    if (!o) st = PXS_ERR_EVICTED;
    else if (o->store != s) st = PXS_ERR_NOT_OWNER;
    else pxs__object_evict(o);
    pxs__unlock(ctx);
    return st;
}

pxs_status_t pxs_exists(pxs_context_t *ctx, const pxs_proxy_t *proxy)
{
    pxs_pdesc_t d;
    pxs_status_t st = pxs__proxy_check(ctx, proxy, &d);
    if (st != PXS_OK) return st;
    if (d.flags & PXS_WF_INLINE) return PXS_OK;
    pxs_conn_t *conn;
    pxs__lock(ctx);
    st = pxs__conn_get(ctx, d.connector, &conn);
    if (st == PXS_OK) st = conn->ops->check(conn, &d);
    pxs__unlock(ctx);
    return st;
}
