/* The generation table: one shared segment per context holding, per object
 * slot, the generation of the live object (0 when free). A proxy records
 * slot and generation; readers on the node map the table read-only and
 * compare before (to skip a useless copy) and after they copy, so an evicted or reused object is
 * caught even where the remote key is only an address (cross-memory attach).
 * Generations are never reused within a context. */
#ifndef PXS_OBJTAB_H
#define PXS_OBJTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pxs/status.h>

#define PXS_TAB_MAGIC 0x7078732d74616231ull /* "pxs-tab1" */

typedef struct {
    uint64_t magic;
    uint64_t owner_id;
    uint64_t start_time;
    uint32_t pid;
    uint32_t nslots;
    _Atomic uint32_t closed;  /* set by pxs_finalize */
    uint8_t pad[28];
} pxs_tab_hdr_t;

typedef struct {
    pxs_tab_hdr_t *hdr;
    _Atomic uint64_t *gens;   /* [nslots] */
    size_t map_len;
    char name[96];            /* segment name, empty for a reader's view */
} pxs_objtab_t;

size_t pxs__objtab_size(uint32_t nslots);
/* Owner: create the table segment under name. */
pxs_status_t pxs__objtab_create(pxs_objtab_t *t, const char *name, uint32_t nslots,
                                uint64_t owner, uint32_t pid, uint64_t start);
/* Reader: map someone's table read-only and check it is theirs. */
pxs_status_t pxs__objtab_open(pxs_objtab_t *t, const char *name, uint64_t owner);
void pxs__objtab_close(pxs_objtab_t *t, int unlink_it);

static inline uint64_t pxs__objtab_gen(const pxs_objtab_t *t, uint32_t slot) {
    return atomic_load_explicit(&t->gens[slot], memory_order_acquire);
}
/* Owner: publish a live object (its proxy is complete). */
static inline void pxs__objtab_set(pxs_objtab_t *t, uint32_t slot, uint64_t gen) {
    atomic_store_explicit(&t->gens[slot], gen, memory_order_release);
}
/* Owner: revoke. The fence keeps the caller's later writes to the object's
 * memory after the revocation, for every reader (seqlock writer side). */
static inline void pxs__objtab_revoke(pxs_objtab_t *t, uint32_t slot) {
    atomic_store_explicit(&t->gens[slot], 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}
/* Reader, after copying: was the object live all along? Generations never
 * return, so "still gen now" means "live since the put": the bytes copied
 * before this check are the object's. The fence keeps the copy's loads
 * before this load (seqlock reader side). */
static inline int pxs__objtab_still(const pxs_objtab_t *t, uint32_t slot, uint64_t gen) {
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&t->gens[slot], memory_order_relaxed) == gen;
}

#endif
