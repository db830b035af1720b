/* pxs_alloc: library memory in shared segments that same-node readers map.
 * Copying puts use the same segments (one per object). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pxs_int.h"

pxs_status_t pxs__seg_alloc(pxs_context_t *ctx, size_t size, bool user, pxs_seg_t **seg_p)
{
    if (ctx->nsegs == ctx->segs_cap) {
        size_t cap = ctx->segs_cap ? ctx->segs_cap * 2 : 16;
        pxs_seg_t **n = realloc(ctx->segs, cap * sizeof *n);
        if (!n) return PXS_ERR_NO_MEMORY;
        ctx->segs = n;
        ctx->segs_cap = cap;
    }
    pxs_seg_t *seg = calloc(1, sizeof *seg);
    if (!seg) return PXS_ERR_NO_MEMORY;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    seg->id = ++ctx->next_seg_id;
    seg->size = size;
    seg->map_len = (size + page - 1) & ~(page - 1);
    seg->user = user;
    char suffix[24];
    snprintf(suffix, sizeof suffix, "a%u", seg->id);
    pxs__seg_name(seg->name, sizeof seg->name, ctx->pid, ctx->start_time, ctx->owner_id, suffix);
    pxs_status_t st = pxs__seg_create(seg->name, seg->map_len, &seg->base);
    if (st != PXS_OK) {
        free(seg);
        return st;
    }
    ctx->segs[ctx->nsegs++] = seg;
    *seg_p = seg;
    return PXS_OK;
}

void pxs__seg_release(pxs_context_t *ctx, pxs_seg_t *seg)
{
    for (size_t i = 0; i < ctx->nsegs; i++) {
        if (ctx->segs[i] == seg) {
            ctx->segs[i] = ctx->segs[--ctx->nsegs];
            break;
        }
    }
    pxs__seg_unlink(seg->name);
    munmap(seg->base, seg->map_len);
    free(seg);
}

pxs_seg_t *pxs__seg_find(pxs_context_t *ctx, const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    for (size_t i = 0; i < ctx->nsegs; i++) {
        pxs_seg_t *s = ctx->segs[i];
        uintptr_t b = (uintptr_t)s->base;
        if (a >= b && a - b <= s->size && len <= s->size - (a - b)) return s;
    }
    return NULL;
}

pxs_status_t pxs_alloc(pxs_context_t *ctx, size_t size, void **ptr_p)
{
    if (!ctx || !ptr_p || size == 0) return PXS_ERR_INVALID_PARAM;
    pxs__lock(ctx);
    pxs_seg_t *seg;
    pxs_status_t st = pxs__seg_alloc(ctx, size, true, &seg);
    pxs__unlock(ctx);
    if (st == PXS_OK) *ptr_p = seg->base;
    return st;
}

pxs_status_t pxs_free(pxs_context_t *ctx, void *ptr)
{
    if (!ptr) return PXS_OK;
    if (!ctx) return PXS_ERR_INVALID_PARAM;
    pxs__lock(ctx);
    pxs_seg_t *seg = NULL;
    for (size_t i = 0; i < ctx->nsegs; i++)
        if (ctx->segs[i]->base == ptr && ctx->segs[i]->user) seg = ctx->segs[i];
    if (!seg) {
        pxs__unlock(ctx);
        pxs_error("pxs_free(%p): not memory from pxs_alloc on this context", ptr);
        return PXS_ERR_INVALID_PARAM;
    }
    /* Objects still exposing this memory are evicted first, so no proxy can
     * read the pages after they return to the system. */
    for (uint32_t i = 0; seg->nobjs && i < ctx->max_objects; i++) {
        pxs_object_t *o = &ctx->objs[i];
        if (o->store && o->seg == seg) {
            pxs_warn("pxs_free: evicting object %llu still exposing the buffer",
                     (unsigned long long)o->key);
            pxs__object_evict(o);
        }
    }
    pxs__seg_release(ctx, seg);
    pxs__unlock(ctx);
    return PXS_OK;
}

/* Default connector memory: one segment per copied object. */
pxs_status_t pxs__conn_seg_mem_alloc(pxs_conn_t *conn, size_t len, void **ptr_p)
{
    pxs_seg_t *seg;
    pxs_status_t st = pxs__seg_alloc(conn->ctx, len ? len : 1, false, &seg);
    if (st == PXS_OK) *ptr_p = seg->base;
    return st;
}

void pxs__conn_seg_mem_free(pxs_conn_t *conn, void *ptr)
{
    pxs_context_t *ctx = conn->ctx;
    for (size_t i = 0; i < ctx->nsegs; i++) {
        if (ctx->segs[i]->base == ptr && !ctx->segs[i]->user) {
            pxs__seg_release(ctx, ctx->segs[i]);
            return;
        }
    }
}
