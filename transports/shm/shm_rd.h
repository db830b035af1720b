/* Per-thread reader flags of the shm connector's lock-free gets: a thread
 * raises its flag while it copies from a mapping it found without the lock,
 * and a mapping is unmapped only when no flag is up (shm.c, seg_drop). */
#ifndef PXS_SHM_RD_H
#define PXS_SHM_RD_H

#include <stdbool.h>

typedef struct pxs_shm_rd pxs_shm_rd_t;

/* Raise this thread's flag (sequentially consistent: a later lookup is
 * ordered after it). NULL: no flag for this thread (out of memory); take
 * the locked path. Not nested. */
pxs_shm_rd_t *pxs__shm_rd_enter(void);
/* Lower it, after the copy (release: the copy is done before). */
void pxs__shm_rd_leave(pxs_shm_rd_t *r);
/* Is any thread's flag up? Sequentially consistent; takes a mutex. */
bool pxs__shm_rd_any(void);

#endif
