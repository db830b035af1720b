#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int pxs__log_level = PXS_LOG_WARN;

static const char *const level_names[] = {"none", "error", "warn", "info", "debug", "trace"};

const char *pxs__log_level_name(int lvl)
{
    if (lvl < 0 || lvl > PXS_LOG_TRACE) return "?";
    return level_names[lvl];
}

static void log_read_env(void)
{
    const char *s = getenv("PXS_LOG_LEVEL");
    if (!s || !*s) return;
    for (int i = 0; i <= PXS_LOG_TRACE; i++) {
        if (!strcasecmp(s, level_names[i])) {
            pxs__log_level = i;
            return;
        }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (*end == '\0' && v >= 0 && v <= PXS_LOG_TRACE) {
        pxs__log_level = (int)v;
        return;
    }
    /* The logger cannot fail init; it says so once and keeps "warn". */
    pxs__log_emit(PXS_LOG_WARN, __FILE__, __LINE__,
                  "PXS_LOG_LEVEL=\"%s\" unknown: use none|error|warn|info|debug|trace or 0-5", s);
}

void pxs__log_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, log_read_env);
}

void pxs__log_emit(pxs_log_level_t lvl, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    /* One write() per line so lines of concurrent processes do not mix. */
    char line_buf[640];
    int n = snprintf(line_buf, sizeof line_buf, "[pxs %d %s %s:%d] %s\n", (int)getpid(),
                     pxs__log_level_name((int)lvl), base ? base + 1 : file, line, msg);
    if (n > 0) {
        size_t len = (size_t)n < sizeof line_buf ? (size_t)n : sizeof line_buf - 1;
        ssize_t w = write(STDERR_FILENO, line_buf, len);
        (void)w;
    }
}
