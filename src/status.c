#include <pxs/status.h>

const char *pxs_strerror(pxs_status_t status)
{
    switch (status) {
#define PXS_STATUS_STR_(n, v, s) case n: return s;
    PXS_STATUS_LIST(PXS_STATUS_STR_)
#undef PXS_STATUS_STR_
    }
    return "unknown status";
}
