/* Logger: the only way library code prints. Level from PXS_LOG_LEVEL. */
#ifndef PXS_LOG_H
#define PXS_LOG_H

typedef enum {
    PXS_LOG_NONE = 0,
    PXS_LOG_ERROR,
    PXS_LOG_WARN,
    PXS_LOG_INFO,
    PXS_LOG_DEBUG,
    PXS_LOG_TRACE
} pxs_log_level_t;

extern int pxs__log_level;
void pxs__log_init(void);
void pxs__log_emit(pxs_log_level_t lvl, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *pxs__log_level_name(int lvl);

#define pxs_log(lvl, ...)                                                  \
    do {                                                                   \
        if ((int)(lvl) <= pxs__log_level)                                  \
            pxs__log_emit((lvl), __FILE__, __LINE__, __VA_ARGS__);         \
    } while (0)
#define pxs_error(...) pxs_log(PXS_LOG_ERROR, __VA_ARGS__)
#define pxs_warn(...)  pxs_log(PXS_LOG_WARN, __VA_ARGS__)
#define pxs_info(...)  pxs_log(PXS_LOG_INFO, __VA_ARGS__)
#define pxs_debug(...) pxs_log(PXS_LOG_DEBUG, __VA_ARGS__)

#endif
