/* pxs_info: version, connectors and their capabilities, memory types and
 * the configuration in force (like ucx_info / fi_info). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pxs/pxs.h>

static void print_caps(uint64_t caps)
{
    static const struct { uint64_t bit; const char *name; } names[] = {
        {PXS_CAP_CROSS_PROCESS, "cross-process"}, {PXS_CAP_CROSS_NODE, "cross-node"},
        {PXS_CAP_ONE_SIDED, "one-sided"},         {PXS_CAP_ZERO_COPY_PUT, "zero-copy-put"},
        {PXS_CAP_VIEW, "view"},                   {PXS_CAP_NONBLOCKING, "nonblocking"},
    };
    const char *sep = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (caps & names[i].bit) {
            printf("%s%s", sep, names[i].name);
            sep = ",";
        }
    }
}

static const char *memtype_name(int mt)
{
    switch (mt) {
    case PXS_MEMTYPE_HOST: return "host";
    case PXS_MEMTYPE_CUDA: return "cuda";
    case PXS_MEMTYPE_CUDA_MANAGED: return "cuda-managed";
    }
    return "?";
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: pxs_info\nPrints the pxs version, built-in connectors and the "
               "configuration in force (PXS_* variables applied).\n");
        return 0;
    }
    printf("# pxs version %s\n#\n# connectors\n", pxs_version());
    pxs_connector_desc_t d;
    for (unsigned i = 0; pxs_connector_describe(i, &d) == PXS_OK; i++) {
        printf("#   %-6s id %d  caps ", d.name, d.id);
        print_caps(d.caps);
        printf("  memtypes ");
        for (int mt = 0; mt < PXS_MEMTYPE_LAST; mt++)
            if (d.memtypes & (1u << mt)) printf("%s ", memtype_name(mt));
        printf("\n#          %s\n", d.summary);
    }
    printf("#\n# memory types known to the proxy format: ");
    for (int mt = 0; mt < PXS_MEMTYPE_LAST; mt++) printf("%s ", memtype_name(mt));
    printf("\n# proxy: format v1, at most %d bytes, inline objects up to %d bytes\n",
           PXS_PROXY_MAX, PXS_INLINE_LIMIT);

    pxs_context_t *ctx;
    pxs_status_t st = pxs_init(NULL, &ctx);
    if (st != PXS_OK) {
        fprintf(stderr, "pxs_init: %s\n", pxs_strerror(st));
        return 1;
    }
    pxs_context_params_t p;
    pxs_context_query(ctx, &p);
    printf("#\n# configuration in force\n");
    printf("#   PXS_DOMAIN      = %s\n", p.domain);
    printf("#   PXS_THREAD_MODE = %s\n", p.thread_mode == PXS_THREAD_MULTIPLE ? "multiple" : "single");
    printf("#   PXS_INLINE_MAX  = %zu\n", p.inline_max);
    printf("#   PXS_MAX_OBJECTS = %u\n", p.max_objects);
    printf("#   PXS_TIMEOUT_MS  = %d\n", p.timeout_ms);
    const char *lvl = getenv("PXS_LOG_LEVEL");
    printf("#   PXS_LOG_LEVEL   = %s\n", lvl && *lvl ? lvl : "warn");
    pxs_finalize(ctx);
    return 0;
}
