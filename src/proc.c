/* Process identity: (pid, start time) names a process for good, since a
 * pid alone may be reused after the process exits. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pxs_int.h"

uint64_t pxs__proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    /* p now points before field 3; starttime is field 22. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

pxs_status_t pxs__proc_alive(pid_t pid, uint64_t start)
{
    if (pid <= 0) return PXS_ERR_PEER_DEAD;
    if (kill(pid, 0) != 0 && errno == ESRCH) return PXS_ERR_PEER_DEAD;
    if (start) {
        uint64_t now = pxs__proc_start_time(pid);
        if (now == 0) return PXS_ERR_PEER_DEAD; /* gone between the two checks */
        if (now != start) return PXS_ERR_PEER_DEAD; /* pid reused */
    }
    return PXS_OK;
}

static uint64_t node_id;
static void node_id_init(void)
{
    char buf[128] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) gethostname(buf, sizeof buf - 1);
    node_id = pxs__hash64(buf, strlen(buf));
}

uint64_t pxs__node_id(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, node_id_init);
    return node_id;
}
