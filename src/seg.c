/* Shared segments: creation, read-only mapping, and removal of those left
 * behind by processes that died. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxs_int.h"

void pxs__seg_name(char *buf, size_t cap, pid_t pid, uint64_t start, uint64_t owner,
                   const char *suffix)
{
    snprintf(buf, cap, "pxs.%d.%" PRIu64 ".%016" PRIx64 ".%s", (int)pid, start, owner, suffix);
}

static int seg_path(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", PXS_SHM_DIR, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

pxs_status_t pxs__seg_create(const char *name, size_t len, void **base_p)
{
    char path[160];
    if (seg_path(path, sizeof path, name)) return PXS_ERR_INVALID_PARAM;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        pxs_error("cannot create segment %s: %s", path, strerror(errno));
        return PXS_ERR_IO;
    }
    int err;
    if (ftruncate(fd, (off_t)len) != 0) {
        err = errno;
        pxs_error("cannot size segment %s to %zu bytes: %s", path, len, strerror(err));
        goto err;
    }
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        err = errno;
        pxs_error("cannot map segment %s: %s", path, strerror(err));
        goto err;
    }
    close(fd);
    *base_p = base;
    return PXS_OK;
err:
    close(fd);
    unlink(path);
    return err == ENOMEM || err == ENOSPC || err == EFBIG ? PXS_ERR_NO_MEMORY : PXS_ERR_IO;
}

pxs_status_t pxs__seg_map_ro(const char *name, void **base_p, size_t *len_p)
{
    char path[160];
    if (seg_path(path, sizeof path, name)) return PXS_ERR_INVALID_PARAM;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? PXS_ERR_NOT_FOUND : PXS_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0) {
        close(fd);
        return PXS_ERR_IO;
    }
    void *base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return PXS_ERR_IO;
    *base_p = base;
    *len_p = (size_t)sb.st_size;
    return PXS_OK;
}

void pxs__seg_unlink(const char *name)
{
    char path[160];
    if (!seg_path(path, sizeof path, name)) unlink(path);
}

int pxs__seg_reap_stale(void)
{
    DIR *dir = opendir(PXS_SHM_DIR);
    if (!dir) return 0;
    int reaped = 0;
    uid_t me = geteuid();
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int pid;
        uint64_t start, owner;
        int used = 0;
        if (strncmp(de->d_name, "pxs.", 4) != 0) continue;
        if (sscanf(de->d_name, "pxs.%d.%" SCNu64 ".%16" SCNx64 ".%n", &pid, &start, &owner,
                   &used) != 3 || used == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (sb.st_uid != me || !S_ISREG(sb.st_mode)) continue; /* only our own files */
        if (pxs__proc_alive(pid, start) != PXS_ERR_PEER_DEAD) continue;
        if (unlinkat(dirfd(dir), de->d_name, 0) == 0) {
            pxs_info("removed stale segment %s (process %d is gone)", de->d_name, pid);
            reaped++;
        }
    }
    closedir(dir);
    return reaped;
}
