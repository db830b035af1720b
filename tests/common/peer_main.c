/* pxs_test_peer: the producer side of test_peer_t as its own program.
 * usage: pxs_test_peer CMD_FD REPLY_FD CONNECTOR DOMAIN|- SIZE:KIND:SEED,... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "peer.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s CMD_FD REPLY_FD CONNECTOR DOMAIN|- SPECS\n", argv[0]);
        return 2;
    }
    size_t n = 1;
    for (const char *c = argv[5]; *c; c++) n += *c == ',';
    obj_spec_t *objs = calloc(n, sizeof *objs);
    if (!objs) return 2;
    char *save = NULL, *tok = strtok_r(argv[5], ",", &save);
    size_t i = 0;
    for (; tok && i < n; tok = strtok_r(NULL, ",", &save), i++) {
        int kind;
        if (sscanf(tok, "%zu:%d:%u", &objs[i].size, &kind, &objs[i].seed) != 3) return 2;
        objs[i].kind = (obj_kind_t)kind;
    }
    /* An owner whose memory others may not attach to (as under Yama scope
     * 2, or a setuid program): readers without CAP_SYS_PTRACE get EPERM. */
    const char *nd = getenv("PXS_TEST_PEER_UNDUMPABLE");
    if (nd && !strcmp(nd, "1") && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 2;
    const char *domain = strcmp(argv[4], "-") ? argv[4] : NULL;
    peer_serve(atoi(argv[1]), atoi(argv[2]), argv[3], domain, objs, i);
}
