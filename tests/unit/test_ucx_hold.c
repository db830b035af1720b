/* The ucx owner's table of holds (transports/ucx/ucx_hold.c): leases
 * granted and replies in flight. A release ends the hold of its own request
 * once, whatever else the table holds, and says which kind it was; one for
 * a request never held (refused, completed, or withdrawn before an answer)
 * ends nothing; an evict that gives up ends the holds of its slot only and
 * counts its leases. Keys that collide and tables that grow keep every
 * entry findable. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../transports/ucx/ucx.h"

static ucx_t u;

static void setup(void)
{
    memset(&u, 0, sizeof u);
    pxs__ucx_hold_init(&u);
}

static void teardown(void) { pxs__ucx_hold_fini(&u); }

TestSuite(ucx_hold, .init = setup, .fini = teardown);

/* Endpoints are only compared, never used: any distinct pointers do. */
static char eps[4];
#define EP(i) ((ucp_ep_h)(void *)&eps[i])
/* Request ids as readers make them: index | sequence << 32. */
#define ID(idx, seq) ((uint64_t)(idx) | (uint64_t)(seq) << 32)

Test(ucx_hold, a_release_ends_the_hold_of_its_own_request_once)
{
    uint32_t slot = 99;
    bool lease = false;
    cr_assert(pxs__ucx_hold_add(&u, EP(0), ID(3, 1), 7, true));
    cr_assert(pxs__ucx_hold_add(&u, EP(1), ID(3, 1), 8, false)); /* same id, another reader */
    cr_assert_not(pxs__ucx_hold_drop(&u, EP(0), ID(3, 2), &slot, &lease), "never held");
    cr_assert_eq(slot, 99, "untouched when none");
    cr_assert(pxs__ucx_hold_drop(&u, EP(0), ID(3, 1), &slot, &lease));
    cr_assert_eq(slot, 7);
    cr_assert(lease);
    cr_assert_not(pxs__ucx_hold_drop(&u, EP(0), ID(3, 1), &slot, &lease), "a duplicate");
    cr_assert(pxs__ucx_hold_drop(&u, EP(1), ID(3, 1), &slot, &lease));
    cr_assert_eq(slot, 8);
    cr_assert_not(lease, "a reply");
    cr_assert_eq(u.hold_n, 0);
}

Test(ucx_hold, thousands_in_any_order_grow_the_table_and_stay_findable)
{
    enum { N = 5000 };
    for (uint32_t i = 0; i < N; i++)
        cr_assert(pxs__ucx_hold_add(&u, EP(i % 4), ID(i / 4, i + 1), i % 64, i % 2));
    cr_assert_eq(u.hold_n, N);
    cr_assert_leq(u.hold_n * 4, u.hold_cap * 3, "at most 3/4 full");
    /* Every third first (holes in the probe runs), then the rest backwards. */
    uint32_t slot;
    bool lease;
    for (uint32_t i = 0; i < N; i += 3) {
        cr_assert(pxs__ucx_hold_drop(&u, EP(i % 4), ID(i / 4, i + 1), &slot, &lease), "hold %u", i);
        cr_assert_eq(slot, i % 64);
        cr_assert_eq(lease, i % 2);
    }
    for (uint32_t i = N; i-- > 0;) {
        if (i % 3 == 0) continue;
        cr_assert(pxs__ucx_hold_drop(&u, EP(i % 4), ID(i / 4, i + 1), &slot, &lease), "hold %u", i);
        cr_assert_eq(slot, i % 64);
        cr_assert_eq(lease, i % 2);
    }
    cr_assert_eq(u.hold_n, 0);
}

Test(ucx_hold, an_evict_that_gives_up_ends_the_holds_of_its_slot_only)
{
    /* Slot 1 gets i = 1, 4, 7, ...: 100 holds, the odd ones leases (50). */
    for (uint32_t i = 0; i < 300; i++)
        cr_assert(pxs__ucx_hold_add(&u, EP(i % 2), ID(i, 1), i % 3, i % 2));
    uint32_t leases = 99;
    cr_assert_eq(pxs__ucx_hold_drop_slot(&u, 1, &leases), 100);
    cr_assert_eq(leases, 50);
    cr_assert_eq(pxs__ucx_hold_drop_slot(&u, 1, &leases), 0);
    cr_assert_eq(leases, 0);
    uint32_t slot;
    bool lease;
    for (uint32_t i = 0; i < 300; i++)
        cr_assert_eq(pxs__ucx_hold_drop(&u, EP(i % 2), ID(i, 1), &slot, &lease), i % 3 != 1, "%u", i);
    cr_assert_eq(u.hold_n, 0);
}
