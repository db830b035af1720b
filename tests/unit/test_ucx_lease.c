/* The ucx owner's table of leases granted (transports/ucx/ucx_lease.c): a
 * release ends the lease of its own request once, whatever else the table
 * holds; one for a request never granted (refused, or withdrawn before an
 * answer) ends nothing; an evict that gives up ends the leases of its slot
 * only. Keys that collide and tables that grow keep every entry findable. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../transports/ucx/ucx.h"

static ucx_t u;

static void setup(void)
{
    memset(&u, 0, sizeof u);
    pxs__ucx_lease_init(&u);
}

static void teardown(void) { pxs__ucx_lease_fini(&u); }

TestSuite(ucx_lease, .init = setup, .fini = teardown);

/* Endpoints are only compared, never used: any distinct pointers do. */
static char eps[4];
#define EP(i) ((ucp_ep_h)(void *)&eps[i])
/* Request ids as readers make them: index | sequence << 32. */
#define ID(idx, seq) ((uint64_t)(idx) | (uint64_t)(seq) << 32)

Test(ucx_lease, a_release_ends_its_own_lease_once)
{
    uint32_t slot = 99;
    cr_assert(pxs__ucx_lease_add(&u, EP(0), ID(3, 1), 7));
    cr_assert(pxs__ucx_lease_add(&u, EP(1), ID(3, 1), 8)); /* same id, another reader */
    cr_assert_not(pxs__ucx_lease_drop(&u, EP(0), ID(3, 2), &slot), "never granted");
    cr_assert_eq(slot, 99, "untouched when none");
    cr_assert(pxs__ucx_lease_drop(&u, EP(0), ID(3, 1), &slot));
    cr_assert_eq(slot, 7);
    cr_assert_not(pxs__ucx_lease_drop(&u, EP(0), ID(3, 1), &slot), "a duplicate");
    cr_assert(pxs__ucx_lease_drop(&u, EP(1), ID(3, 1), &slot));
    cr_assert_eq(slot, 8);
    cr_assert_eq(u.lease_n, 0);
}

Test(ucx_lease, thousands_in_any_order_grow_the_table_and_stay_findable)
{
    enum { N = 5000 };
    for (uint32_t i = 0; i < N; i++)
        cr_assert(pxs__ucx_lease_add(&u, EP(i % 4), ID(i / 4, i + 1), i % 64));
    cr_assert_eq(u.lease_n, N);
    cr_assert_leq(u.lease_n * 4, u.lease_cap * 3, "at most 3/4 full");
    /* Every third first (holes in the probe runs), then the rest backwards. */
    uint32_t slot;
    for (uint32_t i = 0; i < N; i += 3) {
        cr_assert(pxs__ucx_lease_drop(&u, EP(i % 4), ID(i / 4, i + 1), &slot), "lease %u", i);
        cr_assert_eq(slot, i % 64);
    }
    for (uint32_t i = N; i-- > 0;) {
        if (i % 3 == 0) continue;
        cr_assert(pxs__ucx_lease_drop(&u, EP(i % 4), ID(i / 4, i + 1), &slot), "lease %u", i);
        cr_assert_eq(slot, i % 64);
    }
    cr_assert_eq(u.lease_n, 0);
}

Test(ucx_lease, an_evict_that_gives_up_ends_the_leases_of_its_slot_only)
{
    for (uint32_t i = 0; i < 300; i++)
        cr_assert(pxs__ucx_lease_add(&u, EP(i % 2), ID(i, 1), i % 3));
    cr_assert_eq(pxs__ucx_lease_drop_slot(&u, 1), 100);
    cr_assert_eq(pxs__ucx_lease_drop_slot(&u, 1), 0);
    uint32_t slot;
    for (uint32_t i = 0; i < 300; i++)
        cr_assert_eq(pxs__ucx_lease_drop(&u, EP(i % 2), ID(i, 1), &slot), i % 3 != 1, "%u", i);
    cr_assert_eq(u.lease_n, 0);
}
