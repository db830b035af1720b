/* Per-thread reader flags of the shm connector's lock-free gets: a thread
 * raises its flag while it copies from a mapping it found without the lock,
 * and a mapping is unmapped only when no flag is up (shm.c, seg_drop). */
#ifndef PXS_SHM_RD_H
#define PXS_SHM_RD_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct pxs_shm_rd {
    atomic_int in;
    bool taken; /* by a live thread (under shm_rd.c's lock) */
    struct pxs_shm_rd *next;
} __attribute__((aligned(64))) pxs_shm_rd_t;

/* This thread's flag once registered. initial-exec: one load, no
 * __tls_get_addr call on the read path. */
extern __thread pxs_shm_rd_t *pxs__shm_rd_mine __attribute__((tls_model("initial-exec")));
/* A slot for this thread (first read of a thread), or NULL. */
pxs_shm_rd_t *pxs__shm_rd_register(void);

/* Raise this thread's flag (sequentially consistent: a later lookup is
 * ordered after it). NULL: no flag for this thread (out of memory); take
 * the locked path. Not nested. Inline: every mapped read raises it. */
static inline pxs_shm_rd_t *pxs__shm_rd_enter(void)
{
    pxs_shm_rd_t *r = pxs__shm_rd_mine;
    if (!r && !(r = pxs__shm_rd_register())) return NULL;
    atomic_store(&r->in, 1);
    return r;
}
/* Lower it, after the copy (release: the copy is done before). */
static inline void pxs__shm_rd_leave(pxs_shm_rd_t *r)
{
    atomic_store_explicit(&r->in, 0, memory_order_release);
}
/* Is any thread's flag up? Sequentially consistent; takes a mutex. */
bool pxs__shm_rd_any(void);

#endif
