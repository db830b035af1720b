/* A producer in a separate process, driven over pipes, for tests that need
 * a real other process: it puts objects, sends their proxies, and evicts,
 * exits cleanly or dies on command. */
#ifndef PXS_TEST_PEER_H
#define PXS_TEST_PEER_H

#include <stddef.h>
#include <sys/types.h>

#include <pxs/pxs.h>

/* OBJ_MAPPED: a user buffer from mmap, so that freeing it (peer_free_buffer)
 * surely gives its pages back to the kernel, whatever the allocator. */
typedef enum { OBJ_USER, OBJ_ALLOC, OBJ_COPY, OBJ_INLINE, OBJ_MAPPED } obj_kind_t;

typedef struct {
    size_t size;
    obj_kind_t kind;
    unsigned seed;
} obj_spec_t;

typedef struct {
    pid_t pid;
    int cmd_fd;   /* to the peer */
    int reply_fd; /* from the peer */
} test_peer_t;

/* Start a peer that puts nobjs objects through `connector` in `domain`
 * (NULL: default) and returns their proxies. 0 on success. */
int peer_start(test_peer_t *p, const char *connector, const char *domain,
               const obj_spec_t *objs, size_t nobjs, pxs_proxy_t *proxies);
/* Ask the peer to evict object i; returns the pxs status it got. */
int peer_evict(test_peer_t *p, size_t i);
/* Evict object i and put one of the same kind and size again, filled from
 * seed (at most 0xffff), as the owner's next object in that memory would
 * be; *proxy: the new proxy. 0 on success. */
int peer_reput(test_peer_t *p, size_t i, unsigned seed, pxs_proxy_t *proxy);
/* Free object i's buffer without evicting it (a caller's error, on purpose). */
int peer_free_buffer(test_peer_t *p, size_t i);
/* Clean exit (finalize) and reap. */
int peer_quit(test_peer_t *p);
/* Die without finalizing (like a crash) and reap. */
int peer_crash(test_peer_t *p);

/* The peer side (pxs_test_peer's main calls it): never returns. */
void peer_serve(int cmd_fd, int reply_fd, const char *connector, const char *domain,
                const obj_spec_t *objs, size_t nobjs);

/* Deterministic content of object bytes. */
void fill_pattern(void *buf, size_t len, unsigned seed);
int check_pattern(const void *buf, size_t len, unsigned seed); /* 1 if ok */

/* Lines of this process's /proc/self/maps naming a data segment of pid
 * (pxs_alloc or copy memory; not its table or liveness page). */
int mapped_segments_of(pid_t pid);

#endif
