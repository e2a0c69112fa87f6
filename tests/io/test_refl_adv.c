/*
 * test_refl_adv.c - unit tests for io/reflect_adv.c, the ADD-PATH
 * advertised-id table of an update group: live changes withdraw by id what
 * left the top N and keep what members already have; dumps add ids with the
 * set unknown; and the spill - ids a full slot cannot take when dumps read
 * several states of a prefix between two live changes - is withdrawn at the
 * prefix's next live change, never forgotten and never withdrawn twice.
 *
 * A partial deferred step (refl_adv_add) records one id with its set and
 * leaves the rest of the entry as it was.
 *
 * The table is driven directly, as reflect.c's addpath_node (live change:
 * refl_adv_set), dump_cb (refl_adv_union) and addpath_node_tag (a deferred
 * first entry: refl_adv_add) drive it.  Nodes are keys only,
 * so fake addresses stand in for them.  Attribute sets are real (interned in
 * an attr_table): the teardown destroys the table, which aborts if the
 * references the ADD-PATH table took are not all released.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <urcu.h>

#include "io/reflect_adv.h"
#include "rib/attr.h"

/* ---- fixture -------------------------------------------------------------- */

#define NNODES 5000
static uint64_t node_mem[NNODES];   /* node i is &node_mem[i]: an address, never read */
#define NODE(i) ((struct rib_node *)&node_mem[(i)])

struct fx {
	struct attr_table *attrs;
	struct attr_set *a1, *a2;         /* the test's own references */
	uint64_t bytes, spilled;          /* the counters the table adds to */
	struct refl_adv t;
};

static struct attr_set *intern_med(struct attr_table *t, uint32_t med)
{
	static const struct bgp_nexthop nh = { .len = 4, .addr = { 192, 0, 2, 1 } };
	const uint8_t blob[] = { 0x40, BGP_ATTR_ORIGIN, 1, BGP_ORIGIN_IGP,
				 0x80, BGP_ATTR_MED, 4, (uint8_t)(med >> 24), (uint8_t)(med >> 16),
				 (uint8_t)(med >> 8), (uint8_t)med };
	struct attr_set *a = attr_intern(t, &nh, blob, sizeof(blob));
	assert_non_null(a);
	return a;
}

/* A group sent n paths per prefix (a slot holds 2n ids). */
static int setup_n(void **state, unsigned n)
{
	rcu_register_thread();
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->attrs = attr_table_create();
	assert_non_null(f->attrs);
	f->a1 = intern_med(f->attrs, 1);
	f->a2 = intern_med(f->attrs, 2);
	refl_adv_init(&f->t, n, f->attrs, &f->bytes, &f->spilled);
	*state = f;
	return 0;
}

static int setup_n1(void **state)
{
	return setup_n(state, 1);
}

static int setup_n2(void **state)
{
	return setup_n(state, 2);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	refl_adv_free(&f->t);
	assert_int_equal(f->bytes, 0);
	assert_int_equal(f->t.nspill, 0);
	attr_unref(f->attrs, f->a1);
	attr_unref(f->attrs, f->a2);
	attr_table_destroy(f->attrs);    /* aborts if a reference was not released */
	free(f);
	rcu_unregister_thread();
	return 0;
}

/* ---- driving the table as reflect.c does ------------------------------------ */

/* What a live change withdrew, in the order it was told. */
struct gone {
	uint32_t id[256];
	unsigned n;
};

static void record_gone(void *ctx, uint32_t id)
{
	struct gone *g = ctx;
	assert_true(g->n < sizeof(g->id) / sizeof(g->id[0]));
	g->id[g->n++] = id;
}

/* A live change of node: the group is now sent ids[0..k) with attr[]; the
 * table gets a reference of its own to each set, as addpath_node gives it. */
static struct gone live(struct fx *f, struct rib_node *node, const uint32_t *ids,
			struct attr_set *const *attr, uint8_t k)
{
	struct gone g = { .n = 0 };
	for (unsigned i = 0; i < k; i++)
		attr_ref(attr[i]);
	refl_adv_set(&f->t, node, ids, attr, k, record_gone, &g);
	return g;
}

/* A dump sent ids[0..k) of node to one member. */
static void dump(struct fx *f, struct rib_node *node, const uint32_t *ids, uint8_t k)
{
	refl_adv_union(&f->t, node, ids, k);
}

static void dump1(struct fx *f, struct rib_node *node, uint32_t id)
{
	dump(f, node, &id, 1);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* g withdrew exactly the ids of want[0..n), each once, in any order. */
static void assert_gone_set(struct gone g, const uint32_t *want, unsigned n)
{
	uint32_t w[256];
	assert_true(n <= 256);
	memcpy(w, want, n * sizeof(*w));
	qsort(g.id, g.n, sizeof(*g.id), cmp_u32);
	qsort(w, n, sizeof(*w), cmp_u32);
	assert_int_equal(g.n, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(g.id[i], w[i]);
}

/* ---- live changes without a spill -------------------------------------------- */

static void test_live_withdraws_what_left(void **state)
{
	struct fx *f = *state;               /* N = 2 */
	struct rib_node *n = NODE(0);
	const uint32_t ab[] = { 0xA, 0xB }, bc[] = { 0xB, 0xC };
	struct attr_set *const a12[] = { f->a1, f->a2 }, *const a21[] = { f->a2, f->a1 };

	struct gone g = live(f, n, ab, a12, 2);
	assert_int_equal(g.n, 0);
	const struct refl_adv_slot *s = refl_adv_find(&f->t, n);
	assert_non_null(s);
	assert_true(refl_adv_same(&f->t, s, 0xA, f->a1));
	assert_true(refl_adv_same(&f->t, s, 0xB, f->a2));
	assert_false(refl_adv_same(&f->t, s, 0xA, f->a2));   /* attributes changed */
	assert_false(refl_adv_same(&f->t, s, 0xC, f->a1));   /* never sent */
	assert_false(refl_adv_same(&f->t, NULL, 0xA, f->a1));

	g = live(f, n, bc, a21, 2);          /* A left the top 2, C came in */
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xA);
	s = refl_adv_find(&f->t, n);
	assert_true(refl_adv_same(&f->t, s, 0xB, f->a2));
	assert_true(refl_adv_same(&f->t, s, 0xC, f->a1));

	g = live(f, n, NULL, NULL, 0);       /* the prefix is gone */
	assert_gone_set(g, bc, 2);
	assert_null(refl_adv_find(&f->t, n));
	assert_int_equal(f->spilled, 0);
}

/* A dump adds what it sent with the set unknown: never "the same" for a
 * live change, which announces it again; ids the table has keep their set. */
static void test_dump_adds_unknown(void **state)
{
	struct fx *f = *state;               /* N = 1: a slot holds 2 ids */
	struct rib_node *n = NODE(1);
	const uint32_t a[] = { 0xA };
	struct attr_set *const at[] = { f->a1 };

	live(f, n, a, at, 1);
	dump1(f, n, 0xA);                    /* a dump that read the same state */
	dump1(f, n, 0xB);                    /* one that read a newer one */
	const struct refl_adv_slot *s = refl_adv_find(&f->t, n);
	assert_int_equal(s->n, 2);
	assert_true(refl_adv_same(&f->t, s, 0xA, f->a1));
	assert_false(refl_adv_same(&f->t, s, 0xB, f->a1));
	assert_int_equal(f->spilled, 0);
	assert_int_equal(f->t.nspill, 0);

	struct gone g = live(f, n, a, at, 1);   /* B went before the live change came */
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xB);
}

/* ---- the spill ----------------------------------------------------------------- */

/* The case of 102fcca: with N = 1, two dumps read two newer states of a
 * prefix before its live change; the second dump's id does not fit the slot
 * (2 ids) and is spilled.  The live change must withdraw it with the rest. */
static void test_spill_withdrawn_at_live_change(void **state)
{
	struct fx *f = *state;               /* N = 1 */
	struct rib_node *n = NODE(2);
	const uint32_t a[] = { 0xA }, d[] = { 0xD };
	struct attr_set *const at[] = { f->a1 };

	live(f, n, a, at, 1);
	dump1(f, n, 0xB);
	assert_int_equal(f->spilled, 0);
	dump1(f, n, 0xC);                    /* slot full: spilled */
	assert_int_equal(f->spilled, 1);
	assert_int_equal(f->t.nspill, 1);
	assert_false(refl_adv_same(&f->t, refl_adv_find(&f->t, n), 0xC, f->a1));
	dump1(f, n, 0xC);                    /* already spilled: not again */
	dump1(f, n, 0xB);                    /* already in the slot */
	dump1(f, n, 0xA);
	assert_int_equal(f->spilled, 1);
	assert_int_equal(f->t.nspill, 1);

	struct gone g = live(f, n, d, at, 1);
	/* the slot's ids first, in order, then the spilled one */
	assert_int_equal(g.n, 3);
	assert_int_equal(g.id[0], 0xA);
	assert_int_equal(g.id[1], 0xB);
	assert_int_equal(g.id[2], 0xC);
	assert_int_equal(f->t.nspill, 0);

	/* withdrawn once: the next live change has only D to take back */
	g = live(f, n, a, at, 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xD);
	g = live(f, n, NULL, NULL, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xA);
	assert_null(refl_adv_find(&f->t, n));
}

/* A spilled id that is in the new top N is kept (not withdrawn); it was not
 * "the same" before (its set unknown), so reflect.c announced it. */
static void test_spill_kept_when_in_new_top(void **state)
{
	struct fx *f = *state;               /* N = 1 */
	struct rib_node *n = NODE(3);
	const uint32_t a[] = { 0xA }, c[] = { 0xC }, ab[] = { 0xA, 0xB };
	struct attr_set *const at[] = { f->a1 }, *const at2[] = { f->a2 };

	live(f, n, a, at, 1);
	dump1(f, n, 0xB);
	dump1(f, n, 0xC);
	assert_int_equal(f->t.nspill, 1);
	assert_false(refl_adv_same(&f->t, refl_adv_find(&f->t, n), 0xC, f->a2));

	struct gone g = live(f, n, c, at2, 1);
	assert_gone_set(g, ab, 2);
	assert_int_equal(f->t.nspill, 0);
	assert_true(refl_adv_same(&f->t, refl_adv_find(&f->t, n), 0xC, f->a2));
	g = live(f, n, NULL, NULL, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xC);
}

/* The prefix empties (k = 0) with ids in the spill: all withdrawn, nothing
 * left for the node's address, which the RIB may reuse for another node. */
static void test_spill_withdrawn_when_prefix_goes(void **state)
{
	struct fx *f = *state;               /* N = 1 */
	struct rib_node *n = NODE(4);
	const uint32_t abcd[] = { 0xA, 0xB, 0xC, 0xD };

	dump(f, n, abcd, 2);                 /* a dump before any live change */
	dump(f, n, abcd + 2, 2);             /* a second one: C and D spilled */
	assert_int_equal(f->t.nspill, 2);
	struct gone g = live(f, n, NULL, NULL, 0);
	assert_gone_set(g, abcd, 4);
	assert_null(refl_adv_find(&f->t, n));
	assert_int_equal(f->t.nspill, 0);

	dump1(f, n, 0xE);                    /* the address again, a new node */
	g = live(f, n, NULL, NULL, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 0xE);
}

/* More spilled ids for one node than a take (16) returns, with another
 * node's spill interleaved: each live change withdraws its own, all of them,
 * once, and leaves the other's alone. */
static void test_spill_many_ids_two_nodes(void **state)
{
	struct fx *f = *state;               /* N = 1 */
	struct rib_node *n = NODE(5), *m = NODE(6);
	uint32_t want_n[40], want_m[40];
	unsigned nn = 0, nm = 0;

	for (uint32_t id = 1; id <= 40; id++) {
		dump1(f, n, id);                 /* 40 dumps, each read a new state */
		if (id != 7)
			want_n[nn++] = id;
		if (id % 2 == 0) {
			dump1(f, m, 1000 + id);
			want_m[nm++] = 1000 + id;
		}
	}
	assert_int_equal(f->spilled, (40 - 2) + (20 - 2));
	assert_int_equal(f->t.nspill, (40 - 2) + (20 - 2));

	const uint32_t seven[] = { 7 };
	struct attr_set *const at[] = { f->a1 };
	struct gone g = live(f, n, seven, at, 1);
	assert_gone_set(g, want_n, nn);
	assert_int_equal(f->t.nspill, 20 - 2);

	g = live(f, m, NULL, NULL, 0);
	assert_gone_set(g, want_m, nm);
	assert_int_equal(f->t.nspill, 0);
	g = live(f, n, NULL, NULL, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id[0], 7);
}

/* Spilled slots through table growth (4096 slots, then 8192) and the
 * backward shifts of deletions: each node's spill still withdrawn by its
 * own live change. */
static void test_spill_through_growth_and_deletes(void **state)
{
	struct fx *f = *state;               /* N = 1 */
	const uint32_t two[] = { 2 };
	struct attr_set *const at[] = { f->a1 };

	for (unsigned i = 0; i < NNODES; i++) {
		const uint32_t ids[] = { 1, 2, 3 + i };  /* the third spilled */
		dump(f, NODE(i), ids, 3);
	}
	assert_int_equal(f->t.used, NNODES);
	assert_int_equal(f->t.nspill, NNODES);
	for (unsigned i = 0; i < NNODES; i += 2) {
		struct gone g = live(f, NODE(i), NULL, NULL, 0);
		const uint32_t want[] = { 1, 2, 3 + i };
		assert_gone_set(g, want, 3);
	}
	assert_int_equal(f->t.nspill, NNODES / 2);
	for (unsigned i = 1; i < NNODES; i += 2) {
		assert_non_null(refl_adv_find(&f->t, NODE(i)));
		struct gone g = live(f, NODE(i), two, at, 1);
		const uint32_t want[] = { 1, 3 + i };
		assert_gone_set(g, want, 2);
	}
	assert_int_equal(f->t.nspill, 0);
	assert_int_equal(f->t.used, NNODES / 2);
}

/* A deferred first entry sent one path (refl_adv_add): that id is now "the
 * same" with its set, the others keep theirs, the next live change
 * withdraws only what left; an id with no room for a set stays unknown. */
static void test_add_one_id(void **state)
{
	struct fx *f = *state;               /* N = 2: ids 0..3, sets for the first 2 */
	struct rib_node *n = NODE(2);
	const uint32_t a[] = { 0xA };
	struct attr_set *const at[] = { f->a1 };

	attr_ref(f->a2);
	refl_adv_add(&f->t, n, 0xB, f->a2);  /* a fresh entry */
	const struct refl_adv_slot *s = refl_adv_find(&f->t, n);
	assert_non_null(s);
	assert_true(refl_adv_same(&f->t, s, 0xB, f->a2));

	live(f, n, a, at, 1);                /* the members had only A: B withdrawn */
	attr_ref(f->a2);
	refl_adv_add(&f->t, n, 0xB, f->a2);  /* B sent again, A kept */
	s = refl_adv_find(&f->t, n);
	assert_int_equal(s->n, 2);
	assert_true(refl_adv_same(&f->t, s, 0xA, f->a1));
	assert_true(refl_adv_same(&f->t, s, 0xB, f->a2));
	attr_ref(f->a1);
	refl_adv_add(&f->t, n, 0xB, f->a1);  /* B's attributes changed: its set replaced */
	s = refl_adv_find(&f->t, n);
	assert_int_equal(s->n, 2);
	assert_true(refl_adv_same(&f->t, s, 0xB, f->a1));
	assert_false(refl_adv_same(&f->t, s, 0xB, f->a2));

	attr_ref(f->a2);
	refl_adv_add(&f->t, n, 0xC, f->a2);  /* past N: kept, set unknown */
	s = refl_adv_find(&f->t, n);
	assert_int_equal(s->n, 3);
	assert_false(refl_adv_same(&f->t, s, 0xC, f->a2));

	const uint32_t ca[] = { 0xC, 0xA };
	struct attr_set *const ca_at[] = { f->a2, f->a1 };
	struct gone g = live(f, n, ca, ca_at, 2);
	const uint32_t want[] = { 0xB };
	assert_gone_set(g, want, 1);
	g = live(f, n, NULL, NULL, 0);
	assert_gone_set(g, ca, 2);
	assert_int_equal(f->spilled, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_live_withdraws_what_left, setup_n2, teardown),
		cmocka_unit_test_setup_teardown(test_dump_adds_unknown, setup_n1, teardown),
		cmocka_unit_test_setup_teardown(test_spill_withdrawn_at_live_change, setup_n1, teardown),
		cmocka_unit_test_setup_teardown(test_spill_kept_when_in_new_top, setup_n1, teardown),
		cmocka_unit_test_setup_teardown(test_spill_withdrawn_when_prefix_goes, setup_n1,
						teardown),
		cmocka_unit_test_setup_teardown(test_spill_many_ids_two_nodes, setup_n1, teardown),
		cmocka_unit_test_setup_teardown(test_spill_through_growth_and_deletes, setup_n1,
						teardown),
		cmocka_unit_test_setup_teardown(test_add_one_id, setup_n2, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
