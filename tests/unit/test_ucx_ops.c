/* The slots of the ucx connector's UCP gets (transports/ucx/ucx_ops.c): a
 * callback that comes after its get was given up on (cancel, a forced
 * close) must find nothing, and a generation UCX writes late must land in
 * the slot, never in the get (whose request the pool may have reused). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../transports/ucx/ucx.h"

static ucx_t u;
static ucx_peer_t peer_a, peer_b;

static void setup(void)
{
    memset(&u, 0, sizeof u);
    pxs__ucx_ops_init(&u);
}

static void teardown(void) { pxs__ucx_ops_fini(&u); }

TestSuite(ucx_ops, .init = setup, .fini = teardown);

static void get_init(ucx_get_t *g, ucx_peer_t *q)
{
    memset(g, 0, sizeof *g);
    g->u = &u;
    g->peer = q;
}

Test(ucx_ops, a_callback_takes_its_get_and_the_generation_back)
{
    ucx_get_t g;
    get_init(&g, &peer_a);
    ucx_op_t *op = pxs__ucx_op_take(&g);
    cr_assert_not_null(op);
    cr_assert_eq(g.op, op);
    op->gen = 42; /* as UCX's get writes it */
    uint64_t gen = 0;
    cr_assert_eq(pxs__ucx_op_done(op, &gen), &g);
    cr_assert_eq(gen, 42);
    cr_assert_null(g.op);
    cr_assert_not(pxs__ucx_op_give_up(&g), "nothing in flight any more");
}

Test(ucx_ops, a_late_callback_finds_nothing_and_leaves_the_get_alone)
{
    ucx_get_t g;
    get_init(&g, &peer_a);
    ucx_op_t *op = pxs__ucx_op_take(&g);
    cr_assert(pxs__ucx_op_give_up(&g));
    cr_assert_null(g.op);
    /* The request is reused for another get meanwhile. */
    get_init(&g, &peer_b);
    g.expect = 7;
    op->gen = 99; /* UCX writes late: into the slot */
    uint64_t gen = 0;
    cr_assert_null(pxs__ucx_op_done(op, &gen));
    cr_assert_eq(g.expect, 7);
    cr_assert_eq(g.peer, &peer_b);
    /* The slot went back: the next get may have it. */
    ucx_op_t *again = pxs__ucx_op_take(&g);
    cr_assert_eq(again, op);
    cr_assert_eq(pxs__ucx_op_done(again, NULL), &g);
}

Test(ucx_ops, a_forced_close_gives_up_exactly_its_peers_gets)
{
    enum { N = 150 }; /* more than one chunk of slots */
    static ucx_get_t g[N];
    ucx_op_t *op[N];
    for (int i = 0; i < N; i++) {
        get_init(&g[i], i % 3 ? &peer_a : &peer_b);
        cr_assert_not_null(op[i] = pxs__ucx_op_take(&g[i]));
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) cr_assert_neq(op[i], op[j], "one slot per get");
    int a = 0;
    for (ucx_get_t *x; (x = pxs__ucx_op_give_up_peer(&u, &peer_a));) {
        cr_assert_eq(x->peer, &peer_a);
        cr_assert_null(x->op);
        a++;
    }
    cr_assert_eq(a, N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        ucx_get_t *back = pxs__ucx_op_done(op[i], NULL);
        if (i % 3) cr_assert_null(back, "%d: given up", i);
        else cr_assert_eq(back, &g[i], "%d: the other peer's get goes on", i);
    }
    cr_assert_null(pxs__ucx_op_give_up_peer(&u, &peer_b));
}
