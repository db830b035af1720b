/* Owner side: registering memory for remote reads (a registration cache,
 * most recently used first, so putting the same or an overlapping buffer
 * again costs no new registration), connector-owned memory for copying
 * puts, and packing the remote access into the proxy blob. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/log.h"
#include "ucx.h"

#include <ucm/api/ucm.h>

static ucx_reg_t *reg_find(ucx_t *u, uintptr_t a, size_t len)
{
    ucx_reg_t **pp = &u->regs;
    for (ucx_reg_t *r = u->regs; r; pp = &r->next, r = r->next) {
        if (a >= r->start && a < r->end && len <= r->end - a) {
            if (pp != &u->regs) { /* move to the front: puts repeat buffers */
                *pp = r->next;
                r->next = u->regs;
                u->regs = r;
            }
            return r;
        }
    }
    return NULL;
}

static pxs_status_t reg_new(ucx_t *u, ucp_mem_map_params_t *mp, ucx_reg_t **reg_p)
{
    ucx_reg_t *r = calloc(1, sizeof *r);
    if (!r) return PXS_ERR_NO_MEMORY;
    ucs_status_t st = ucp_mem_map(u->uctx, mp, &r->memh);
    if (st != UCS_OK) {
        free(r);
        pxs_error("ucp_mem_map of %zu bytes: %s", mp->length, ucs_status_string(st));
        return pxs__ucx_status(st);
    }
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH};
    st = ucp_mem_query(r->memh, &attr);
    if (st == UCS_OK) st = ucp_rkey_pack(u->uctx, r->memh, &r->rkey, &r->rkey_len);
    if (st != UCS_OK) {
        ucp_mem_unmap(u->uctx, r->memh);
        free(r);
        return pxs__ucx_status(st);
    }
    r->start = (uintptr_t)attr.address;
    r->end = r->start + attr.length;
    r->refs = 1;
    r->next = u->regs;
    u->regs = r;
    *reg_p = r;
    return PXS_OK;
}

pxs_status_t pxs__ucx_reg_get(ucx_t *u, void *addr, size_t len, ucx_reg_t **reg_p)
{
    uintptr_t a = (uintptr_t)addr;
    pthread_mutex_lock(&u->lock);
    ucx_reg_t *r = reg_find(u, a, len ? len : 1);
    pxs_status_t st = PXS_OK;
    if (r) {
        r->refs++;
    } else {
        /* Whole pages: neighbours on the same pages then hit the cache. */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = a & ~(uintptr_t)(page - 1);
        uintptr_t hi = (a + (len ? len : 1) + page - 1) & ~(uintptr_t)(page - 1);
        ucp_mem_map_params_t mp = {
            .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
            .address = (void *)lo,
            .length = hi - lo};
        st = reg_new(u, &mp, &r);
    }
    pthread_mutex_unlock(&u->lock);
    if (st == PXS_OK) *reg_p = r;
    return st;
}

static void reg_free(ucx_t *u, ucx_reg_t *r)
{
    ucp_rkey_buffer_release(r->rkey);
    ucp_mem_unmap(u->uctx, r->memh);
    /* The range may be unmapped and mapped anew (pxs_free, then pxs_alloc
     * at the same address) in ways UCX's memory hooks miss: seen here, the
     * sm transport then served the old pages for the new memory. Tell UCX's
     * caches the range is gone now, while we still own it. */
    ucm_vm_munmap((void *)r->start, r->end - r->start);
    free(r);
}

void pxs__ucx_reg_put(ucx_t *u, ucx_reg_t *r)
{
    pthread_mutex_lock(&u->lock);
    if (--r->refs == 0) {
        for (ucx_reg_t **pp = &u->regs; *pp; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        }
        reg_free(u, r);
    }
    pthread_mutex_unlock(&u->lock);
}

void pxs__ucx_regs_fini(ucx_t *u)
{
    while (u->regs) {
        ucx_reg_t *r = u->regs;
        u->regs = r->next;
        reg_free(u, r);
    }
}

/* Copying puts land in memory UCX allocates itself, which its shared-memory
 * transports can map: readers on the node then need nothing of the owner. */
pxs_status_t pxs__ucx_mem_alloc(pxs_conn_t *conn, size_t len, void **ptr_p)
{
    ucx_t *u = conn->priv;
    ucp_mem_map_params_t mp = {.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                                             UCP_MEM_MAP_PARAM_FIELD_FLAGS,
                               .length = len ? len : 1,
                               .flags = UCP_MEM_MAP_ALLOCATE};
    ucx_reg_t *r;
    pthread_mutex_lock(&u->lock);
    pxs_status_t st = reg_new(u, &mp, &r);
    if (st == PXS_OK) r->allocated = true;
    pthread_mutex_unlock(&u->lock);
    if (st == PXS_OK) *ptr_p = (void *)r->start;
    return st;
}

void pxs__ucx_mem_free(pxs_conn_t *conn, void *ptr)
{
    ucx_t *u = conn->priv;
    /* By exact address: page-rounded registrations of neighbouring user
     * buffers may also contain ptr. */
    pthread_mutex_lock(&u->lock);
    ucx_reg_t *r = u->regs;
    while (r && !(r->allocated && r->start == (uintptr_t)ptr)) r = r->next;
    pthread_mutex_unlock(&u->lock);
    if (r) pxs__ucx_reg_put(u, r); /* the allocation's own reference */
}

pxs_status_t pxs__ucx_mem_reg(pxs_conn_t *conn, pxs_object_t *obj)
{
    ucx_reg_t *r;
    pxs_status_t st = pxs__ucx_reg_get(conn->priv, obj->addr, obj->len, &r);
    if (st == PXS_OK) obj->memh = r;
    return st;
}

void pxs__ucx_mem_dereg(pxs_conn_t *conn, pxs_object_t *obj)
{
    ucx_t *u = conn->priv;
    /* Revoke for remote readers of the mirror (the core's table already
     * says 0), then let replies still reading the object go out. */
    atomic_store_explicit(&u->gens[obj->slot], 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    pxs__ucx_am_revoke(u, obj->slot);
    if (obj->memh) pxs__ucx_reg_put(conn->priv, obj->memh);
    obj->memh = NULL;
}

pxs_status_t pxs__ucx_pack(pxs_conn_t *conn, const pxs_object_t *obj, uint8_t *b, size_t cap,
                           size_t *len_p)
{
    ucx_t *u = conn->priv;
    const ucx_reg_t *r = obj->memh;
    const ucx_reg_t *t = u->tab_reg;
    size_t keys_end = UCX_BLOB_HDR + u->addr_len + r->rkey_len + t->rkey_len;
    size_t need = keys_end + (obj->seg ? UCX_BLOB_SEG_LEN : 0);
    if (need > cap) {
        pxs_error("UCX remote access needs %zu bytes, a proxy holds %zu", need, cap);
        return PXS_ERR_NO_RESOURCE;
    }
    pxs_wr16(b, (uint16_t)u->addr_len);
    pxs_wr16(b + 2, (uint16_t)r->rkey_len);
    pxs_wr16(b + 4, (uint16_t)t->rkey_len);
    pxs_wr16(b + 6, UCX_BLOB_EXTENTS | UCX_BLOB_BEAT | (obj->seg ? UCX_BLOB_SEG : 0) |
                        (r->allocated ? UCX_BLOB_UCXMEM : 0));
    pxs_wr32(b + 8, (uint32_t)u->pid);
    pxs_wr32(b + 12, u->tab_slots);
    pxs_wr64(b + 16, u->start);
    pxs_wr64(b + 24, u->node);
    pxs_wr64(b + 32, (uint64_t)(uintptr_t)obj->addr);
    pxs_wr64(b + 40, u->tab_addr);
    uint8_t *p = b + UCX_BLOB_HDR;
    memcpy(p, u->addr, u->addr_len);
    memcpy(p + u->addr_len, r->rkey, r->rkey_len);
    memcpy(p + u->addr_len + r->rkey_len, t->rkey, t->rkey_len);
    if (obj->seg) { /* same-node readers may map it (ucx_node.c) */
        pxs_wr32(b + keys_end, obj->seg->id);
        pxs_wr64(b + keys_end + 4, (uint64_t)((uint8_t *)obj->addr - (uint8_t *)obj->seg->base));
    }
    pxs__ucx_am_expose(u, obj->slot, obj->addr, obj->len);
    atomic_store_explicit(&u->exts[obj->slot].addr, (uint64_t)(uintptr_t)obj->addr,
                          memory_order_relaxed);
    atomic_store_explicit(&u->exts[obj->slot].len, (uint64_t)obj->len, memory_order_relaxed);
    atomic_store_explicit(&u->gens[obj->slot], obj->gen, memory_order_release);
    *len_p = need;
    return PXS_OK;
}
