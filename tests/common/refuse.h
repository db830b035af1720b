/* Making the kernel refuse cross-memory attach between two processes of a
 * test, as it does on machines with Yama's ptrace scope or between users:
 * the owner is not dumpable and the reader lacks CAP_SYS_PTRACE. */
#ifndef PXS_TEST_REFUSE_H
#define PXS_TEST_REFUSE_H

#include <sys/types.h>

/* Drop CAP_SYS_PTRACE from the calling thread's effective set (threads made
 * afterwards inherit that). 0, or the errno of capget/capset. */
int test_drop_ptrace_cap(void);

/* 0 when the kernel refuses this process an attach to pid's memory
 * (process_vm_readv gives EPERM: access is checked before the address),
 * else the errno it gave (0 read as -1: the read went through). */
int test_attach_refused(pid_t pid);

#endif
