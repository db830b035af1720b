/* Which error handling mode endpoints to other nodes ask UCX for
 * (PXS_UCX_ERR_MODE: auto, peer or none).
 *
 * UCX's peer mode keeps only transports whose memory domain can invalidate
 * a registration for its zero-copy rendezvous lanes, and tcp's cannot: with
 * it, a reply above the eager limit goes by rendezvous over active messages
 * and the reader's worker copies every byte once more out of its receive
 * buffer (ucp_rndv_data_handler). Without it, tcp's put_zcopy carries the
 * rendezvous and the socket delivers into the reader's buffer (measured
 * across namespace hosts, 1-16 MiB: 0.80-0.94 -> 0.98-1.17 of MPI_Get;
 * perf/RESULTS.md). Over tcp the mode gives nothing else pxs needs: a
 * broken connection is reported either way (uct_tcp sends it to the
 * endpoint's error handler), and a peer gone silent is caught by pxs's own
 * timeout long before UCX's keepalive (20 s). RDMA transports are another
 * matter: a force close, which pxs uses to stop gets to an owner that does
 * not answer, can leave the remote queue pair in error, and without peer
 * mode UCX may take that as fatal. So auto is none only where tcp is UCX's
 * only network transport here, peer elsewhere. */
#include <stdlib.h>
#include <string.h>
#include <uct/api/uct.h>

#include "../../src/log.h"
#include "ucx.h"

/* Memory domains of UCX's that serve one node only (memory, devices): not
 * opened here, some of them (a GPU's) being costly to start. */
static bool md_is_local(const char *name)
{
    static const char *const local[] = {"self", "sysv", "posix", "cma", "knem", "xpmem",
                                        "cuda_cpy", "cuda_ipc", "gdr_copy", "rocm_cpy",
                                        "rocm_ipc", "ze_cpy"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (!strcmp(name, local[i])) return true;
    return false;
}

/* One memory domain: does it offer a network transport other than tcp? */
static bool md_has_other_net(uct_component_h comp, const char *md_name)
{
    uct_md_config_t *cfg;
    uct_md_h md;
    if (md_is_local(md_name)) return false;
    if (uct_md_config_read(comp, NULL, NULL, &cfg) != UCS_OK) return true;
    ucs_status_t st = uct_md_open(comp, md_name, cfg, &md);
    uct_config_release(cfg);
    if (st != UCS_OK) return false; /* not usable here: UCX will not use it either */
    uct_tl_resource_desc_t *tls;
    unsigned ntls;
    bool other = false;
    if (uct_md_query_tl_resources(md, &tls, &ntls) == UCS_OK) {
        for (unsigned i = 0; i < ntls; i++)
            if (tls[i].dev_type == UCT_DEVICE_TYPE_NET && strcmp(tls[i].tl_name, "tcp"))
                other = true;
        uct_release_tl_resource_list(tls);
    }
    uct_md_close(md);
    return other;
}

/* Whether tcp is the only network transport UCX finds on this machine.
 * Unsure (a query failing): no, which keeps peer mode. */
static bool tcp_only(void)
{
    uct_component_h *comps;
    unsigned ncomps;
    if (uct_query_components(&comps, &ncomps) != UCS_OK) return false;
    bool only = true;
    for (unsigned i = 0; i < ncomps && only; i++) {
        uct_component_attr_t ca = {.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT};
        if (uct_component_query(comps[i], &ca) != UCS_OK) only = false;
        if (!only || !ca.md_resource_count) continue;
        uct_md_resource_desc_t *mds = calloc(ca.md_resource_count, sizeof *mds);
        ca.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
        ca.md_resources = mds;
        if (!mds || uct_component_query(comps[i], &ca) != UCS_OK) only = false;
        for (unsigned j = 0; only && j < ca.md_resource_count; j++)
            if (md_has_other_net(comps[i], mds[j].md_name)) only = false;
        free(mds);
    }
    uct_release_component_list(comps);
    return only;
}

pxs_status_t pxs__ucx_err_mode_init(ucx_t *u)
{
    const char *v = getenv("PXS_UCX_ERR_MODE");
    if (v && !strcmp(v, "peer")) u->err_mode_peer = true;
    else if (v && !strcmp(v, "none")) u->err_mode_peer = false;
    else if (!v || !*v || !strcmp(v, "auto")) u->err_mode_peer = !tcp_only();
    else {
        pxs_error("PXS_UCX_ERR_MODE=\"%s\": expected auto, peer or none", v);
        return PXS_ERR_INVALID_PARAM;
    }
    pxs_debug("endpoints to other nodes: UCX error handling mode %s",
              u->err_mode_peer ? "peer" : "none");
    return PXS_OK;
}
