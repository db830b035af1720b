#include "peer.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

void fill_pattern(void *buf, size_t len, unsigned seed)
{
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++) b[i] = (uint8_t)(seed * 131u + i * 31u + (i >> 12));
}

int check_pattern(const void *buf, size_t len, unsigned seed)
{
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (uint8_t)(seed * 131u + i * 31u + (i >> 12))) return 0;
    return 1;
}

static int full_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int full_read(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Put objs->kind of objs->size bytes filled from seed; *buf_p: the buffer
 * when it is OBJ_MAPPED (peer_free_buffer's), else NULL. Sends the proxy
 * (length 0: the put failed). */
static void put_one(pxs_context_t *ctx, pxs_store_t *store, const obj_spec_t *o, unsigned seed,
                    pxs_proxy_t *proxy, void **buf_p, int reply_fd)
{
    void *buf = NULL;
    size_t sz = o->size ? o->size : 1;
    if (o->kind == OBJ_ALLOC) {
        if (pxs_alloc(ctx, sz, &buf) != PXS_OK) _exit(3);
    } else if (o->kind == OBJ_MAPPED) {
        buf = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) _exit(3);
    } else {
        buf = malloc(sz);
    }
    fill_pattern(buf, o->size, seed);
    *buf_p = o->kind == OBJ_MAPPED ? buf : NULL;
    pxs_put_params_t pp = {.field_mask = PXS_PUT_PARAM_FLAGS,
                           .flags = o->kind == OBJ_COPY     ? PXS_PUT_COPY | PXS_PUT_NO_INLINE
                                    : o->kind == OBJ_INLINE ? 0
                                                            : PXS_PUT_NO_INLINE};
    int32_t st = pxs_put(store, buf, o->size, &pp, proxy);
    if (o->kind == OBJ_COPY) {
        memset(buf, 0xEE, sz); /* the copy must not see this */
    }
    uint32_t len = (uint32_t)pxs_proxy_len(proxy);
    if (st != PXS_OK) len = 0;
    if (full_write(reply_fd, &len, sizeof len) || full_write(reply_fd, proxy->bytes, len)) _exit(4);
}

/* The peer's main loop; never returns. */
void peer_serve(int cmd_fd, int reply_fd, const char *connector, const char *domain,
                     const obj_spec_t *objs, size_t nobjs)
{
    pxs_context_params_t cp = {.field_mask = domain ? PXS_CONTEXT_PARAM_DOMAIN : 0, .domain = domain};
    pxs_context_t *ctx;
    pxs_store_t *store;
    pxs_store_params_t sp = {.field_mask = PXS_STORE_PARAM_CONNECTOR, .connector = connector};
    if (pxs_init(&cp, &ctx) != PXS_OK || pxs_store_open(ctx, &sp, &store) != PXS_OK) _exit(2);
    pxs_proxy_t *proxies = calloc(nobjs, sizeof *proxies);
    void **bufs = calloc(nobjs, sizeof *bufs);
    if (!proxies || !bufs) _exit(2);
    for (size_t i = 0; i < nobjs; i++)
        put_one(ctx, store, &objs[i], objs[i].seed, &proxies[i], &bufs[i], reply_fd);
    for (;;) {
        char cmd;
        uint32_t arg;
        if (full_read(cmd_fd, &cmd, 1) || full_read(cmd_fd, &arg, sizeof arg)) _exit(0); /* parent gone */
        if (cmd == 'e') {
            int32_t st = arg < nobjs ? pxs_evict(store, &proxies[arg]) : PXS_ERR_INVALID_PARAM;
            if (full_write(reply_fd, &st, sizeof st)) _exit(5);
        } else if (cmd == 'r') { /* evict object arg & 0xffff, put it again from seed arg >> 16 */
            size_t i = arg & 0xffff;
            if (i >= nobjs || pxs_evict(store, &proxies[i]) != PXS_OK) _exit(6);
            put_one(ctx, store, &objs[i], arg >> 16, &proxies[i], &bufs[i], reply_fd);
        } else if (cmd == 'f') { /* a caller's error: free before evict */
            int32_t st = arg < nobjs && bufs[arg] ? PXS_OK : PXS_ERR_INVALID_PARAM;
            if (st == PXS_OK) munmap(bufs[arg], objs[arg].size), bufs[arg] = NULL;
            if (full_write(reply_fd, &st, sizeof st)) _exit(5);
        } else if (cmd == 'q') {
            pxs_finalize(ctx);
            _exit(0);
        } else if (cmd == 'k') {
            _exit(0); /* no finalize: looks like a crash to everyone else */
        }
    }
}

static void peer_exec(const char *exe, int cmd_fd, int reply_fd, const char *connector,
                      const char *domain, const obj_spec_t *objs, size_t nobjs)
{
    char fds[2][16], *specs = malloc(nobjs * 48 + 1);
    if (!specs) _exit(127);
    snprintf(fds[0], sizeof fds[0], "%d", cmd_fd);
    snprintf(fds[1], sizeof fds[1], "%d", reply_fd);
    size_t off = 0;
    specs[0] = '\0';
    for (size_t i = 0; i < nobjs; i++)
        off += (size_t)snprintf(specs + off, 48, "%s%zu:%d:%u", i ? "," : "", objs[i].size,
                                (int)objs[i].kind, objs[i].seed);
    execl(exe, exe, fds[0], fds[1], connector, domain ? domain : "-", specs, (char *)NULL);
    _exit(127);
}

/* One proxy as put_one sends it. */
static int recv_proxy(test_peer_t *p, pxs_proxy_t *proxy)
{
    uint32_t len;
    uint8_t wire[PXS_PROXY_MAX];
    if (full_read(p->reply_fd, &len, sizeof len) || len == 0 || len > PXS_PROXY_MAX) return -1;
    if (full_read(p->reply_fd, wire, len)) return -1;
    return pxs_proxy_decode(wire, len, proxy) == PXS_OK ? 0 : -1;
}

static int peer_cmd(test_peer_t *p, char cmd, uint32_t arg);

int peer_start(test_peer_t *p, const char *connector, const char *domain, const obj_spec_t *objs,
               size_t nobjs, pxs_proxy_t *proxies)
{
    int to[2], from[2];
    if (pipe(to) || pipe(from)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(to[1]);
        close(from[0]);
        /* A fresh program where we have one: transports such as UCX do not
         * survive fork() once started in the parent. */
        const char *exe = getenv("PXS_TEST_PEER_EXE");
        if (exe && *exe) peer_exec(exe, to[0], from[1], connector, domain, objs, nobjs);
        peer_serve(to[0], from[1], connector, domain, objs, nobjs);
    }
    close(to[0]);
    close(from[1]);
    p->pid = pid;
    p->cmd_fd = to[1];
    p->reply_fd = from[0];
    for (size_t i = 0; i < nobjs; i++)
        if (recv_proxy(p, &proxies[i])) return -1;
    return 0;
}

int peer_reput(test_peer_t *p, size_t i, unsigned seed, pxs_proxy_t *proxy)
{
    if (i > 0xffff || seed > 0xffff) return -1;
    return peer_cmd(p, 'r', (uint32_t)i | (uint32_t)seed << 16) || recv_proxy(p, proxy) ? -1 : 0;
}

static int peer_cmd(test_peer_t *p, char cmd, uint32_t arg)
{
    return full_write(p->cmd_fd, &cmd, 1) || full_write(p->cmd_fd, &arg, sizeof arg) ? -1 : 0;
}

int peer_evict(test_peer_t *p, size_t i)
{
    int32_t st;
    if (peer_cmd(p, 'e', (uint32_t)i) || full_read(p->reply_fd, &st, sizeof st)) return -1000;
    return st;
}

static int peer_reap(test_peer_t *p)
{
    int status = 0;
    close(p->cmd_fd);
    close(p->reply_fd);
    if (waitpid(p->pid, &status, 0) != p->pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int peer_free_buffer(test_peer_t *p, size_t i)
{
    int32_t st;
    if (peer_cmd(p, 'f', (uint32_t)i) || full_read(p->reply_fd, &st, sizeof st)) return -1000;
    return st;
}

int peer_quit(test_peer_t *p)
{
    peer_cmd(p, 'q', 0);
    return peer_reap(p);
}

int peer_crash(test_peer_t *p)
{
    peer_cmd(p, 'k', 0);
    return peer_reap(p);
}

int mapped_segments_of(pid_t pid)
{
    char prefix[32], line[512];
    snprintf(prefix, sizeof prefix, "/pxs.%d.", (int)pid);
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, prefix) && !strstr(line, ".tab") && !strstr(line, ".live")) n++;
    if (f) fclose(f);
    return n;
}
