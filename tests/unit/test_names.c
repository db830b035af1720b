/* The embedded rendezvous: names across processes, duplicates, missing
 * names, dead publishers, a publisher that dies holding the lock. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pxs/pxs.h>
#include "../common/peer.h"

extern int pxs__names_crash_point;
uint64_t pxs__hash64(const void *buf, size_t len);

static char domain[64];
static pxs_context_t *ctx;
static pxs_store_t *store;

/* Each test gets its own domain, so its directory starts empty. */
static void setup(void)
{
    static int n;
    snprintf(domain, sizeof domain, "names-test-%d-%d", (int)getpid(), n++);
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = domain};
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK);
    cr_assert_eq(pxs_store_open(ctx, NULL, &store), PXS_OK);
}

static void teardown(void)
{
    pxs_finalize(ctx);
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/pxs-names.v2.%016" PRIx64, pxs__hash64(domain, strlen(domain)));
    unlink(path);
}

TestSuite(names, .init = setup, .fini = teardown, .timeout = 60);

static pxs_proxy_t put_small(const char *s)
{
    pxs_proxy_t p;
    cr_assert_eq(pxs_put(store, s, strlen(s) + 1, NULL, &p), PXS_OK);
    return p;
}

Test(names, publish_lookup_unpublish)
{
    pxs_proxy_t p = put_small("field at step 42"), q;
    cr_assert_eq(pxs_name_lookup(ctx, "step42/field", &q), PXS_ERR_NOT_FOUND);
    cr_assert_eq(pxs_name_publish(ctx, "step42/field", &p), PXS_OK);
    cr_assert_eq(pxs_name_publish(ctx, "step42/field", &p), PXS_ERR_EXISTS, "a name taken twice");
    cr_assert_eq(pxs_name_lookup(ctx, "step42/field", &q), PXS_OK);
    char out[64];
    cr_assert_eq(pxs_resolve(ctx, &q, out, sizeof out, NULL), PXS_OK);
    cr_assert_str_eq(out, "field at step 42");
    cr_assert_eq(pxs_name_unpublish(ctx, "step42/field"), PXS_OK);
    cr_assert_eq(pxs_name_lookup(ctx, "step42/field", &q), PXS_ERR_NOT_FOUND);
    cr_assert_eq(pxs_name_unpublish(ctx, "step42/field"), PXS_ERR_NOT_FOUND);
}

Test(names, bad_names_are_refused)
{
    pxs_proxy_t p = put_small("x"), q;
    char longname[PXS_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(pxs_name_publish(ctx, "", &p), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_name_publish(ctx, longname, &p), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_name_publish(ctx, NULL, &p), PXS_ERR_INVALID_PARAM);
    cr_assert_eq(pxs_name_lookup(ctx, longname, &q), PXS_ERR_INVALID_PARAM);
    memset(&q, 0, sizeof q);
    cr_assert_eq(pxs_name_publish(ctx, "garbage", &q), PXS_ERR_CORRUPT);
}

/* A child in the same domain publishes; returns its pid while it waits. */
static pid_t child_publishes(const char *name, int crash_inside, int *go_fd)
{
    int fds[2], ready[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = domain};
        pxs_context_t *c;
        pxs_store_t *s;
        pxs_proxy_t p;
        if (pxs_init(&cp, &c) || pxs_store_open(c, NULL, &s) || pxs_put(s, "from child", 11, NULL, &p))
            _exit(1);
        pxs__names_crash_point = crash_inside;
        if (pxs_name_publish(c, name, &p) != PXS_OK) _exit(2);
        char b = 1;
        if (write(ready[1], &b, 1) != 1) _exit(3);
        if (read(fds[0], &b, 1) < 0) _exit(4); /* wait for the parent's word */
        if (b == 'q') pxs_finalize(c);
        _exit(0);
    }
    close(fds[0]);
    close(ready[1]);
    char b;
    ssize_t n = read(ready[0], &b, 1); /* 0 if it died before publishing */
    close(ready[0]);
    *go_fd = fds[1];
    return n == 1 ? pid : -pid;
}

static int reap(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(names, another_process_finds_a_name)
{
    int go;
    pid_t pid = child_publishes("shared/name", 0, &go);
    cr_assert_gt(pid, 0);
    pxs_proxy_t q;
    cr_assert_eq(pxs_name_lookup(ctx, "shared/name", &q), PXS_OK);
    char out[16];
    cr_assert_eq(pxs_resolve(ctx, &q, out, sizeof out, NULL), PXS_OK);
    cr_assert_str_eq(out, "from child");
    pxs_proxy_t mine = put_small("mine");
    cr_assert_eq(pxs_name_publish(ctx, "shared/name", &mine), PXS_ERR_EXISTS);
    cr_assert_eq(pxs_name_unpublish(ctx, "shared/name"), PXS_ERR_NOT_OWNER);
    /* A clean finalize takes the child's names with it. */
    cr_assert_eq(write(go, "q", 1), 1);
    cr_assert_eq(reap(pid), 0);
    cr_assert_eq(pxs_name_lookup(ctx, "shared/name", &q), PXS_ERR_NOT_FOUND);
}

Test(names, names_of_a_dead_publisher_are_reclaimed)
{
    int go;
    pid_t pid = child_publishes("orphan", 0, &go);
    cr_assert_gt(pid, 0);
    cr_assert_eq(write(go, "k", 1), 1); /* exits without finalize */
    cr_assert_eq(reap(pid), 0);
    pxs_proxy_t q, mine = put_small("new owner");
    cr_assert_eq(pxs_name_lookup(ctx, "orphan", &q), PXS_ERR_NOT_FOUND);
    cr_assert_eq(pxs_name_publish(ctx, "orphan", &mine), PXS_OK);
    cr_assert_eq(pxs_name_lookup(ctx, "orphan", &q), PXS_OK);
}

Test(names, a_publisher_dying_inside_the_lock_wedges_nobody)
{
    int go;
    pid_t pid = child_publishes("half-written", 1, &go);
    cr_assert_lt(pid, 0, "the child dies inside publish");
    cr_assert_eq(reap(-pid), 99);
    close(go);
    pxs_proxy_t q, mine = put_small("after the crash");
    /* The lock is recovered, the half-written entry is dropped. */
    cr_assert_eq(pxs_name_lookup(ctx, "half-written", &q), PXS_ERR_NOT_FOUND);
    cr_assert_eq(pxs_name_publish(ctx, "half-written", &mine), PXS_OK);
    cr_assert_eq(pxs_name_lookup(ctx, "half-written", &q), PXS_OK);
}

Test(names, directory_full_is_a_clear_status)
{
    setenv("PXS_NAMES_MAX", "8", 1);
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = "names-small"};
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/pxs-names.v2.%016" PRIx64, pxs__hash64("names-small", 11));
    unlink(path);
    pxs_context_t *c;
    pxs_store_t *s;
    cr_assert_eq(pxs_init(&cp, &c), PXS_OK);
    cr_assert_eq(pxs_store_open(c, NULL, &s), PXS_OK);
    pxs_proxy_t p;
    cr_assert_eq(pxs_put(s, "v", 2, NULL, &p), PXS_OK);
    char name[32];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "n%d", i);
        cr_assert_eq(pxs_name_publish(c, name, &p), PXS_OK);
    }
    cr_assert_eq(pxs_name_publish(c, "one-too-many", &p), PXS_ERR_NO_RESOURCE);
    cr_assert_eq(pxs_name_unpublish(c, "n3"), PXS_OK);
    cr_assert_eq(pxs_name_publish(c, "one-too-many", &p), PXS_OK, "tombstones are reused");
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "n%d", i);
        pxs_proxy_t q;
        cr_assert_eq(pxs_name_lookup(c, name, &q), i == 3 ? PXS_ERR_NOT_FOUND : PXS_OK);
    }
    pxs_finalize(c);
    unlink(path);
    unsetenv("PXS_NAMES_MAX");
}

Test(names, last_user_removes_the_directory_and_late_users_follow)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/pxs-names.v2.%016" PRIx64, pxs__hash64(domain, strlen(domain)));
    pxs_proxy_t p = put_small("x"), q;
    cr_assert_eq(pxs_name_publish(ctx, "a", &p), PXS_OK);
    cr_assert_eq(access(path, F_OK), 0);
    /* A second context of the domain maps the directory too. */
    pxs_context_params_t cp = {.field_mask = PXS_CONTEXT_PARAM_DOMAIN, .domain = domain};
    pxs_context_t *late;
    pxs_store_t *s;
    cr_assert_eq(pxs_init(&cp, &late), PXS_OK);
    cr_assert_eq(pxs_store_open(late, NULL, &s), PXS_OK);
    cr_assert_eq(pxs_name_lookup(late, "a", &q), PXS_OK);
    /* The publisher leaves; no live name is left: the file goes. */
    pxs_finalize(ctx);
    cr_assert_eq(access(path, F_OK), -1, "directory removed by its last user");
    /* The late context still maps the old one, notices, and moves on. */
    cr_assert_eq(pxs_name_lookup(late, "a", &q), PXS_ERR_NOT_FOUND);
    cr_assert_eq(pxs_put(s, "y", 2, NULL, &p), PXS_OK);
    cr_assert_eq(pxs_name_publish(late, "b", &p), PXS_OK);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(pxs_init(&cp, &ctx), PXS_OK); /* teardown finalizes it */
    cr_assert_eq(pxs_name_lookup(ctx, "b", &q), PXS_OK, "a fresh context sees the new directory");
    pxs_finalize(late);
    cr_assert_eq(pxs_store_open(ctx, NULL, &store), PXS_OK);
}
