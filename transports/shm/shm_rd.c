/* Per-thread reader flags (shm_rd.h). One slot per thread, kept in a list
 * for the life of the process and reused by later threads, so a scan never
 * meets freed memory. Raising a flag is one atomic store to a line only
 * this thread writes: unlike a shared counter, readers on many threads do
 * not contend. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "shm_rd.h"

static pthread_mutex_t rd_lock = PTHREAD_MUTEX_INITIALIZER;
static pxs_shm_rd_t *rd_slots;
static pthread_key_t rd_key;
static pthread_once_t rd_once = PTHREAD_ONCE_INIT;
static bool rd_key_ok;
__thread pxs_shm_rd_t *pxs__shm_rd_mine __attribute__((tls_model("initial-exec")));

static void rd_thread_exit(void *arg)
{
    pxs_shm_rd_t *r = arg;
    pxs__shm_rd_mine = NULL; /* a later destructor that reads registers again */
    pthread_mutex_lock(&rd_lock);
    atomic_store(&r->in, 0);
    r->taken = false;
    pthread_mutex_unlock(&rd_lock);
}

/* In a forked child only the forking thread lives: the others' slots are
 * free, and a flag one of them had up would otherwise stay up for good. */
static void rd_after_fork_child(void)
{
    pthread_mutex_init(&rd_lock, NULL);
    for (pxs_shm_rd_t *r = rd_slots; r; r = r->next) {
        if (r == pxs__shm_rd_mine) continue;
        atomic_store(&r->in, 0);
        r->taken = false;
    }
}

static void rd_init(void)
{
    rd_key_ok = pthread_key_create(&rd_key, rd_thread_exit) == 0;
    pthread_atfork(NULL, NULL, rd_after_fork_child);
}

pxs_shm_rd_t *pxs__shm_rd_register(void)
{
    pthread_once(&rd_once, rd_init);
    if (!rd_key_ok) return NULL;
    pthread_mutex_lock(&rd_lock);
    pxs_shm_rd_t *r = rd_slots;
    while (r && r->taken) r = r->next;
    if (!r && (r = aligned_alloc(64, sizeof *r)) != NULL) {
        atomic_init(&r->in, 0);
        r->next = rd_slots;
        rd_slots = r;
    }
    if (r) r->taken = true;
    pthread_mutex_unlock(&rd_lock);
    if (r && pthread_setspecific(rd_key, r) != 0) {
        rd_thread_exit(r);
        return NULL;
    }
    return pxs__shm_rd_mine = r;
}

bool pxs__shm_rd_any(void)
{
    bool any = false;
    pthread_mutex_lock(&rd_lock);
    for (pxs_shm_rd_t *r = rd_slots; r && !any; r = r->next) any = atomic_load(&r->in) != 0;
    pthread_mutex_unlock(&rd_lock);
    return any;
}
