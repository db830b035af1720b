#include "refuse.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

int test_drop_ptrace_cap(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return errno;
    d[CAP_SYS_PTRACE / 32].effective &= ~(1u << (CAP_SYS_PTRACE % 32));
    return syscall(SYS_capset, &h, d) != 0 ? errno : 0;
}

int test_attach_refused(pid_t pid)
{
    unsigned char b;
    struct iovec l = {.iov_base = &b, .iov_len = 1}, r = {.iov_base = (void *)4096, .iov_len = 1};
    errno = 0;
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) >= 0) return -1;
    return errno == EPERM ? 0 : errno ? errno : -1;
}
