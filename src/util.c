#include <pthread.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "pxs_int.h"

uint64_t pxs__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* FNV-1a: names and domains to 64-bit ids; not a security boundary. */
uint64_t pxs__hash64(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Large copies out of mapped segments. glibc's memcpy keeps to vector loops
 * there on this AMD EPYC, where the CPU's own string copy (ERMS "rep
 * movsb") measured 15-22% faster from 1 MiB up (perf/RESULTS.md) and as
 * fast below; it is also what made MPI_Get of an MPI_Win_allocate window
 * beat memcpy. Below PXS_COPY_MOVSB_MIN (connector.h) memcpy's small-size
 * paths win. */
static int have_erms;
static void copy_init(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) have_erms = (b >> 9) & 1;
#endif
}

void pxs__copy_large(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__)
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, copy_init);
    if (have_erms) {
        __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
        return;
    }
#endif
    memcpy(dst, src, n);
}
