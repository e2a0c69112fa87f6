/*
 * test_decide.c - unit tests for rib/decide.c: one table row per decision
 * step (the two paths differ in that step, tie on every earlier one, and
 * every later step favours the loser, so a step applied out of order fails),
 * MED comparability, deterministic MED against arrival order, multipath
 * counts and graceful-restart stale paths.
 *
 * decide.c only reads the decision fields of struct attr_set, so the sets
 * here are plain structs, not interned ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rib/attr.h"
#include "rib/decide.h"

/* A path as a row describes it: attribute fields plus its peer. */
struct pdesc {
	uint32_t lp;
	uint16_t aslen;
	uint8_t origin;
	uint32_t med;
	bool has_med;
	uint32_t nas;            /* neighbour AS */
	uint32_t originator;     /* 0 = absent */
	uint16_t cl;
	bool stale;
	uint32_t path_id;
	/* peer */
	bool ebgp;
	uint32_t bgp_id;
	uint8_t addr_last;       /* peer address 10.0.0.<addr_last> */
	bool same_peer_as_a;     /* use path a's peer entry (ADD-PATH row) */
};

static struct attr_set *mk_attr(const struct pdesc *d)
{
	struct attr_set *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	a->refcnt = 1;
	a->local_pref = d->lp;
	a->as_path_len = d->aslen;
	a->origin = d->origin;
	a->med = d->med;
	if (d->has_med)
		a->flags |= ATTR_F_MED;
	a->neighbor_as = d->nas;
	if (d->originator) {
		a->originator_id = d->originator;
		a->flags |= ATTR_F_ORIGINATOR;
	}
	if (d->cl) {
		a->cluster_list_len = d->cl;
		a->flags |= ATTR_F_CLUSTER_LIST;
	}
	return a;
}

static void mk_peer(struct rib_peerinfo *p, const struct pdesc *d)
{
	memset(p, 0, sizeof(*p));
	p->bgp_id = d->bgp_id;
	p->asn = d->ebgp ? d->nas : 65515;
	p->ebgp = d->ebgp;
	p->addr.family = BGP_FAM_IPV4;
	p->addr.addr[0] = 10;
	p->addr.addr[3] = d->addr_last;
}

/* Whether mk_path caches the decision key (rib_path.dkey) as the RIB does;
 * the table-driven tests run with and without it. */
static bool g_keys;

/* Build path i from d, with peer index i (or 0 when sharing a's peer). */
static struct rib_path mk_path(struct rib_peerinfo *peers, unsigned i, const struct pdesc *d)
{
	struct rib_path p = { .attr = mk_attr(d), .peer = i, .path_id = d->path_id };

	if (g_keys)
		p.dkey = decide_attr_key(p.attr);

	if (d->stale)
		p.flags |= RIB_PATH_F_STALE;
	if (d->same_peer_as_a)
		p.peer = 0;
	else
		mk_peer(&peers[i], d);
	return p;
}

static void free_paths(struct rib_path *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(p[i].attr);
}

static const struct decide_opts plain = { false, false };
static const struct decide_opts det = { false, true };
static const struct decide_opts acm = { true, false };
static const struct decide_opts acm_det = { true, true };

/* ---- the decision table: one row per step, in order ------------------------ */

/*
 * Path a always wins the row's step.  b ties a on every earlier step and is
 * better on every later step.
 */
struct drow {
	const char *what;
	struct pdesc a, b;
};

#define B_LATER_BETTER .ebgp = true, .bgp_id = 1, .addr_last = 1, .path_id = 0
#define A_LATER_WORSE  .ebgp = false, .bgp_id = 9, .cl = 4, .addr_last = 9, .path_id = 7

static const struct drow drows[] = {
	{ "fresh over stale",
	  { .lp = 100, .aslen = 5, .origin = 2, .med = 50, .nas = 1, A_LATER_WORSE },
	  { .lp = 500, .aslen = 1, .origin = 0, .med = 0, .nas = 1, .stale = true, B_LATER_BETTER } },
	{ "highest local_pref",
	  { .lp = 200, .aslen = 5, .origin = 2, .med = 50, .nas = 1, A_LATER_WORSE },
	  { .lp = 100, .aslen = 1, .origin = 0, .med = 0, .nas = 1, B_LATER_BETTER } },
	{ "shortest as_path",
	  { .lp = 100, .aslen = 2, .origin = 2, .med = 50, .nas = 1, A_LATER_WORSE },
	  { .lp = 100, .aslen = 3, .origin = 0, .med = 0, .nas = 1, B_LATER_BETTER } },
	{ "lowest origin",
	  { .lp = 100, .aslen = 2, .origin = 1, .med = 50, .nas = 1, A_LATER_WORSE },
	  { .lp = 100, .aslen = 2, .origin = 2, .med = 0, .nas = 1, B_LATER_BETTER } },
	{ "lowest med, same neighbour as",
	  { .lp = 100, .aslen = 2, .origin = 0, .med = 10, .has_med = true, .nas = 1, A_LATER_WORSE },
	  { .lp = 100, .aslen = 2, .origin = 0, .med = 20, .has_med = true, .nas = 1, B_LATER_BETTER } },
	{ "missing med is 0",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, A_LATER_WORSE },
	  { .lp = 100, .aslen = 2, .origin = 0, .med = 1, .has_med = true, .nas = 1, B_LATER_BETTER } },
	{ "ebgp over ibgp",
	  { .lp = 100, .aslen = 2, .origin = 0, .med = 5, .nas = 1, .ebgp = true, .bgp_id = 9, .cl = 4,
	    .addr_last = 9, .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .med = 5, .nas = 1, .ebgp = false, .bgp_id = 1,
	    .addr_last = 1 } },
	{ "lowest bgp identifier",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 2, .cl = 4, .addr_last = 9,
	    .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 3, .addr_last = 1 } },
	{ "originator_id replaces a's bgp identifier",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 900, .originator = 2, .cl = 4,
	    .addr_last = 9, .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 3, .addr_last = 1 } },
	{ "originator_id replaces b's bgp identifier",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 5, .cl = 4, .addr_last = 9,
	    .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 1, .originator = 6, .addr_last = 1 } },
	{ "shortest cluster_list",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 5, .originator = 7, .cl = 1,
	    .addr_last = 9, .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 7, .cl = 2, .addr_last = 1 } },
	{ "lowest peer address",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 5, .cl = 1, .addr_last = 3,
	    .path_id = 7 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 5, .cl = 1, .addr_last = 4 } },
	{ "lowest path_id (same peer)",
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .bgp_id = 5, .addr_last = 3, .path_id = 1 },
	  { .lp = 100, .aslen = 2, .origin = 0, .nas = 1, .path_id = 2, .same_peer_as_a = true } },
};

static void test_decision_table(void **state)
{
	(void)state;
	const struct decide_opts *optsv[] = { &plain, &det, &acm, &acm_det };

	for (size_t i = 0; i < sizeof(drows) / sizeof(drows[0]); i++) {
		const struct drow *r = &drows[i];
		struct rib_peerinfo peers[2];
		struct rib_path a = mk_path(peers, 0, &r->a), b = mk_path(peers, 1, &r->b);

		print_message("decide: %s\n", r->what);
		for (size_t o = 0; o < 4; o++) {
			struct rib_path v[2];

			assert_true(decide_cmp(&a, &b, peers, optsv[o]) < 0);
			assert_true(decide_cmp(&b, &a, peers, optsv[o]) > 0);
			assert_int_equal(decide_cmp(&a, &a, peers, optsv[o]), 0);
			v[0] = b;
			v[1] = a;
			decide_sort(v, 2, peers, optsv[o]);
			assert_ptr_equal(v[0].attr, a.attr);
			v[0] = a;
			v[1] = b;
			decide_sort(v, 2, peers, optsv[o]);
			assert_ptr_equal(v[0].attr, a.attr);
			assert_ptr_equal(v[1].attr, b.attr);
		}
		free(a.attr);
		free(b.attr);
	}
}

/* NULL options behave like all-false. */
static void test_null_opts(void **state)
{
	(void)state;
	struct rib_peerinfo peers[2];
	struct pdesc da = { .lp = 100, .nas = 1, .med = 50, .has_med = true, .ebgp = true, .bgp_id = 1,
			    .addr_last = 1 };
	struct pdesc db = { .lp = 100, .nas = 2, .med = 10, .has_med = true, .bgp_id = 2, .addr_last = 2 };
	struct rib_path v[2] = { mk_path(peers, 0, &da), mk_path(peers, 1, &db) };
	struct attr_set *wa = v[0].attr;

	assert_true(decide_cmp(&v[0], &v[1], peers, NULL) < 0);
	assert_int_equal(decide_sort(v, 2, peers, NULL), 1);
	assert_ptr_equal(v[0].attr, wa);
	free_paths(v, 2);
}

/* ---- MED comparability ----------------------------------------------------- */

static void test_med_comparability(void **state)
{
	(void)state;
	struct rib_peerinfo peers[2];
	/* a: higher MED but eBGP; b: lower MED, iBGP, other neighbour AS */
	struct pdesc da = { .lp = 100, .aslen = 2, .nas = 100, .med = 100, .has_med = true, .ebgp = true,
			    .bgp_id = 9, .addr_last = 9 };
	struct pdesc db = { .lp = 100, .aslen = 2, .nas = 200, .med = 10, .has_med = true, .ebgp = false,
			    .bgp_id = 1, .addr_last = 1 };
	struct rib_path a = mk_path(peers, 0, &da), b = mk_path(peers, 1, &db);

	/* Different neighbour AS: MED not compared, eBGP decides. */
	assert_true(decide_cmp(&a, &b, peers, &plain) < 0);
	assert_true(decide_cmp(&a, &b, peers, &det) < 0);
	/* always-compare-med: the lower MED wins. */
	assert_true(decide_cmp(&a, &b, peers, &acm) > 0);
	assert_true(decide_cmp(&a, &b, peers, &acm_det) > 0);

	/* Same neighbour AS: MED compared without the option. */
	b.attr->neighbor_as = 100;
	assert_true(decide_cmp(&a, &b, peers, &plain) > 0);

	/* Missing MED counts as 0 across ASes with always-compare-med. */
	b.attr->neighbor_as = 200;
	a.attr->med = 0;
	a.attr->flags &= (uint16_t)~ATTR_F_MED;
	b.attr->med = 1;
	assert_true(decide_cmp(&a, &b, peers, &acm) < 0);
	free(a.attr);
	free(b.attr);
}

/* ---- deterministic MED ------------------------------------------------------ */

/*
 * The classic cycle: p1 beats p2 (router id), p2 beats p3 (router id), p3
 * beats p1 (same AS, lower MED).  Pairwise order is not transitive, so plain
 * sorting depends on arrival order; deterministic MED must not.
 */
static const struct pdesc cyc[3] = {
	{ .lp = 100, .aslen = 2, .nas = 100, .med = 50, .has_med = true, .bgp_id = 1, .addr_last = 1 },
	{ .lp = 100, .aslen = 2, .nas = 200, .med = 10, .has_med = true, .bgp_id = 2, .addr_last = 2 },
	{ .lp = 100, .aslen = 2, .nas = 100, .med = 20, .has_med = true, .bgp_id = 3, .addr_last = 3 },
};

static const unsigned perm3[6][3] = {
	{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 }, { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
};

static void test_deterministic_med_cycle(void **state)
{
	(void)state;
	struct rib_peerinfo peers[3];
	struct rib_path p[3];
	bool plain_best_seen[3] = { false, false, false };
	unsigned plain_distinct = 0;

	for (unsigned i = 0; i < 3; i++)
		p[i] = mk_path(peers, i, &cyc[i]);

	for (unsigned k = 0; k < 6; k++) {
		struct rib_path v[3];

		for (unsigned i = 0; i < 3; i++)
			v[i] = p[perm3[k][i]];
		decide_sort(v, 3, peers, &det);
		/* Group AS100 -> p3 (MED 20); group AS200 -> p2; p2 beats p3 on id. */
		assert_int_equal(v[0].peer, 1);
		assert_int_equal(v[1].peer, 2);
		assert_int_equal(v[2].peer, 0);

		for (unsigned i = 0; i < 3; i++)
			v[i] = p[perm3[k][i]];
		decide_sort(v, 3, peers, &plain);
		if (!plain_best_seen[v[0].peer]) {
			plain_best_seen[v[0].peer] = true;
			plain_distinct++;
		}
	}
	/* Proof that the scenario is order-sensitive without the option. */
	assert_true(plain_distinct > 1);
	free_paths(p, 3);
}

/* Reference: best of the per-AS winners, computed by brute force. */
static unsigned ref_best(const struct rib_path *v, unsigned n, const struct rib_peerinfo *peers)
{
	unsigned best = n;

	for (unsigned i = 0; i < n; i++) {
		bool group_winner = true;

		for (unsigned j = 0; j < n; j++)
			if (j != i && v[j].attr->neighbor_as == v[i].attr->neighbor_as &&
			    decide_cmp(&v[j], &v[i], peers, &det) < 0)
				group_winner = false;
		if (!group_winner)
			continue;
		if (best == n || decide_cmp(&v[i], &v[best], peers, &det) < 0)
			best = i;
	}
	return best;
}

static bool next_perm(unsigned *a, unsigned n)
{
	unsigned i = n - 1, j = n - 1;

	while (i > 0 && a[i - 1] >= a[i])
		i--;
	if (i == 0)
		return false;
	while (a[j] <= a[i - 1])
		j--;
	unsigned t = a[i - 1];
	a[i - 1] = a[j];
	a[j] = t;
	for (j = n - 1; i < j; i++, j--) {
		t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
	return true;
}

/* Six paths in three ASes with MED/router-id conflicts: all 720 arrival
 * orders give the same full order and the brute-force best. */
static void test_deterministic_med_all_orders(void **state)
{
	(void)state;
	static const struct pdesc d[6] = {
		{ .lp = 100, .aslen = 2, .nas = 100, .med = 30, .bgp_id = 1, .addr_last = 1 },
		{ .lp = 100, .aslen = 2, .nas = 100, .med = 10, .bgp_id = 6, .addr_last = 2 },
		{ .lp = 100, .aslen = 2, .nas = 200, .med = 5, .bgp_id = 4, .addr_last = 3 },
		{ .lp = 100, .aslen = 2, .nas = 200, .med = 1, .bgp_id = 5, .addr_last = 4 },
		{ .lp = 100, .aslen = 2, .nas = 300, .med = 0, .bgp_id = 3, .addr_last = 5, .ebgp = true },
		{ .lp = 100, .aslen = 2, .nas = 300, .med = 9, .bgp_id = 2, .addr_last = 6, .ebgp = true },
	};
	struct rib_peerinfo peers[6];
	struct rib_path p[6], first[6];
	unsigned idx[6] = { 0, 1, 2, 3, 4, 5 }, perms = 0, want;
	unsigned mp_first = 0;

	for (unsigned i = 0; i < 6; i++)
		p[i] = mk_path(peers, i, &d[i]);
	want = ref_best(p, 6, peers);
	/* AS300 group winner is path 4 (MED 0), eBGP beats the others. */
	assert_int_equal(want, 4);
	do {
		struct rib_path v[6];
		unsigned mp;

		for (unsigned i = 0; i < 6; i++)
			v[i] = p[idx[i]];
		mp = decide_sort(v, 6, peers, &det);
		assert_int_equal(v[0].peer, want);
		if (perms == 0) {
			memcpy(first, v, sizeof(v));
			mp_first = mp;
		} else {
			for (unsigned i = 0; i < 6; i++)
				assert_int_equal(v[i].peer, first[i].peer);
			assert_int_equal(mp, mp_first);
		}
		perms++;
	} while (next_perm(idx, 6));
	assert_int_equal(perms, 720);
	/* Path 5 (same AS, higher MED) is the only other eBGP one: not multipath. */
	assert_int_equal(mp_first, 1);
	free_paths(p, 6);
}

/* ---- multipath -------------------------------------------------------------- */

static void test_multipath(void **state)
{
	(void)state;
	struct rib_peerinfo peers[8] = { { 0 } };
	struct rib_path v[4] = { { 0 } };

	assert_int_equal(decide_sort(v, 0, peers, &plain), 0);

	/* One path. */
	{
		struct pdesc d = { .lp = 100, .bgp_id = 1, .addr_last = 1 };
		v[0] = mk_path(peers, 0, &d);
		assert_int_equal(decide_sort(v, 1, peers, &plain), 1);
		free_paths(v, 1);
	}
	/* Three equal through step e, different router ids: all multipath. */
	{
		struct pdesc d[3] = {
			{ .lp = 100, .aslen = 3, .nas = 1, .med = 5, .bgp_id = 3, .addr_last = 3 },
			{ .lp = 100, .aslen = 3, .nas = 1, .med = 5, .bgp_id = 1, .addr_last = 1 },
			{ .lp = 100, .aslen = 3, .nas = 1, .med = 5, .bgp_id = 2, .addr_last = 2 },
		};
		for (unsigned i = 0; i < 3; i++)
			v[i] = mk_path(peers, i, &d[i]);
		assert_int_equal(decide_sort(v, 3, peers, &plain), 3);
		assert_int_equal(v[0].peer, 1);
		assert_int_equal(v[1].peer, 2);
		assert_int_equal(v[2].peer, 0);
		assert_int_equal(decide_sort(v, 3, peers, &det), 3);
		free_paths(v, 3);
	}
	/* Each earlier step breaks the multipath set. */
	{
		static const struct pdesc base = { .lp = 100, .aslen = 3, .nas = 1, .med = 5, .ebgp = true,
						   .bgp_id = 1, .addr_last = 1 };
		for (unsigned step = 0; step < 6; step++) {
			struct pdesc d2 = base;

			d2.bgp_id = 2;
			d2.addr_last = 2;
			switch (step) {
			case 0: d2.stale = true; break;
			case 1: d2.lp = 99; break;
			case 2: d2.aslen = 4; break;
			case 3: d2.origin = 1; break;
			case 4: d2.med = 6; break;
			case 5: d2.ebgp = false; break;
			}
			v[0] = mk_path(peers, 0, &d2);
			v[1] = mk_path(peers, 1, &base);
			v[2] = mk_path(peers, 2, &base);
			peers[2].bgp_id = 3;
			peers[2].addr.addr[3] = 3;
			print_message("multipath broken at step %u\n", step);
			assert_int_equal(decide_sort(v, 3, peers, &plain), 2);
			assert_int_equal(v[2].peer, 0);
			free_paths(v, 3);
		}
	}
	/*
	 * Non-contiguous case: best B (AS100, MED 10, id 5); Y (AS100, MED 20,
	 * id 1) lost to B on MED but beats X on router id; X (AS200, MED 99,
	 * id 9) ties B through step e because MEDs of different ASes are not
	 * compared.  X must be moved up into the leading multipath run.
	 */
	{
		struct pdesc d[3] = {
			{ .lp = 100, .aslen = 2, .nas = 100, .med = 10, .ebgp = true, .bgp_id = 5, .addr_last = 5 },
			{ .lp = 100, .aslen = 2, .nas = 100, .med = 20, .ebgp = true, .bgp_id = 1, .addr_last = 1 },
			{ .lp = 100, .aslen = 2, .nas = 200, .med = 99, .ebgp = true, .bgp_id = 9, .addr_last = 9 },
		};
		const struct decide_opts *ov[2] = { &plain, &det };

		for (unsigned o = 0; o < 2; o++) {
			for (unsigned k = 0; k < 6; k++) {
				struct rib_path w[3];

				for (unsigned i = 0; i < 3; i++)
					v[i] = mk_path(peers, i, &d[i]);
				for (unsigned i = 0; i < 3; i++)
					w[i] = v[perm3[k][i]];
				unsigned mp = decide_sort(w, 3, peers, ov[o]);
				if (o == 1) {
					/* deterministic: always B, then X, then Y */
					assert_int_equal(mp, 2);
					assert_int_equal(w[0].peer, 0);
					assert_int_equal(w[1].peer, 2);
					assert_int_equal(w[2].peer, 1);
				} else {
					/* whatever won, the run of multipath members leads */
					for (unsigned i = 0; i < 3; i++) {
						bool member = i < mp;
						bool eq = (w[i].attr->neighbor_as != w[0].attr->neighbor_as ||
							   w[i].attr->med == w[0].attr->med);
						assert_int_equal(member, eq);
					}
				}
				free_paths(v, 3);
			}
		}
	}
	/* With always-compare-med the higher-MED path is no longer multipath. */
	{
		struct pdesc d[2] = {
			{ .lp = 100, .aslen = 2, .nas = 100, .med = 10, .ebgp = true, .bgp_id = 5, .addr_last = 5 },
			{ .lp = 100, .aslen = 2, .nas = 200, .med = 99, .ebgp = true, .bgp_id = 1, .addr_last = 1 },
		};
		for (unsigned i = 0; i < 2; i++)
			v[i] = mk_path(peers, i, &d[i]);
		assert_int_equal(decide_sort(v, 2, peers, &plain), 2);
		assert_int_equal(v[0].peer, 1);
		assert_int_equal(decide_sort(v, 2, peers, &acm), 1);
		assert_int_equal(v[0].peer, 0);
		free_paths(v, 2);
	}
}

/* ---- graceful restart: stale paths ------------------------------------------ */

static void test_stale(void **state)
{
	(void)state;
	struct rib_peerinfo peers[4];
	struct rib_path v[4];
	struct pdesc d[4] = {
		/* stale but excellent */
		{ .lp = 300, .aslen = 1, .ebgp = true, .bgp_id = 1, .addr_last = 1, .stale = true },
		{ .lp = 200, .aslen = 1, .ebgp = true, .bgp_id = 2, .addr_last = 2, .stale = true },
		/* fresh but poor */
		{ .lp = 50, .aslen = 9, .origin = 2, .bgp_id = 9, .addr_last = 9 },
		{ .lp = 60, .aslen = 9, .origin = 2, .bgp_id = 8, .addr_last = 8 },
	};

	for (unsigned i = 0; i < 4; i++)
		v[i] = mk_path(peers, i, &d[i]);
	/* Fresh ones first (in their own order), then the stale ones. */
	assert_int_equal(decide_sort(v, 4, peers, &det), 1);
	assert_int_equal(v[0].peer, 3);
	assert_int_equal(v[1].peer, 2);
	assert_int_equal(v[2].peer, 0);
	assert_int_equal(v[3].peer, 1);

	/* Only stale paths: they compare normally among themselves. */
	assert_int_equal(decide_sort(&v[2], 2, peers, &plain), 1);
	assert_int_equal(v[2].peer, 0);

	/* Stale and fresh with equal attributes are not multipath together. */
	v[2].attr->local_pref = 60;
	v[2].attr->as_path_len = 9;
	v[2].attr->origin = 2;
	peers[0].ebgp = false;
	assert_int_equal(decide_sort(v, 4, peers, &plain), 1);
	assert_int_equal(v[0].peer, 3);
	assert_int_equal(v[1].peer, 2);
	free_paths(v, 4);
}

/* A larger set (a few hundred paths) stays sorted and consistent. */
static void test_large(void **state)
{
	(void)state;
	enum { N = 300 };
	struct rib_peerinfo *peers = calloc(N, sizeof(*peers));
	struct rib_path *v = calloc(N, sizeof(*v));
	uint64_t x = 88172645463325252ull;

	assert_non_null(peers);
	assert_non_null(v);
	for (unsigned i = 0; i < N; i++) {
		struct pdesc d;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memset(&d, 0, sizeof(d));
		d.lp = 100 + (unsigned)(x % 3);
		d.aslen = (uint16_t)(1 + (x >> 8) % 4);
		d.origin = (uint8_t)((x >> 16) % 3);
		d.nas = 1 + (unsigned)((x >> 20) % 5);
		d.med = (unsigned)((x >> 28) % 4);
		d.ebgp = (x >> 33) & 1;
		d.bgp_id = i + 1;
		d.addr_last = (uint8_t)i;
		v[i] = mk_path(peers, i, &d);
	}
	unsigned mp = decide_sort(v, N, peers, &acm);
	/* With always-compare-med the order is a total order, so the whole
	 * array is strictly sorted and the multipath run is a prefix. */
	for (unsigned i = 1; i < N; i++)
		assert_true(decide_cmp(&v[i - 1], &v[i], peers, &acm) < 0);
	assert_true(mp >= 1);
	/* Deterministic MED: the best is the brute-force best of group winners. */
	unsigned want = ref_best(v, N, peers);
	uint32_t want_peer = v[want].peer;
	mp = decide_sort(v, N, peers, &det);
	assert_int_equal(v[0].peer, want_peer);
	assert_true(mp >= 1);
	free_paths(v, N);
	free(v);
	free(peers);
}

/*
 * decide_insert / decide_remove against decide_sort: random small sets (few
 * distinct values per step, several neighbour ASes, so MED comparability
 * makes the order non-transitive and the pull-up does move paths), kept the
 * way the RIB keeps them.  Whenever the set is in order, the incremental call
 * must leave exactly the array and multipath count decide_sort leaves for the
 * same input, and report the same in-order verdict.
 */
static struct pdesc rnd_desc(uint64_t *x, unsigned i)
{
	struct pdesc d;

	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	memset(&d, 0, sizeof(d));
	d.lp = 100 + (unsigned)(*x % 2);
	d.aslen = (uint16_t)(1 + (*x >> 8) % 2);
	d.origin = (uint8_t)((*x >> 16) % 2);
	d.nas = 1 + (unsigned)((*x >> 20) % 3);
	d.med = (unsigned)((*x >> 28) % 3);
	d.has_med = true;
	d.ebgp = (*x >> 33) & 1;
	d.stale = ((*x >> 40) % 16) == 0;
	d.bgp_id = 1000 - i;
	d.addr_last = (uint8_t)i;
	return d;
}

static void check_incremental(const struct decide_opts *o, uint64_t seed)
{
	enum { NP = 12, ROUNDS = 4000 };
	struct rib_peerinfo *peers = calloc(NP, sizeof(*peers));
	struct rib_path set[NP], a[NP], b[NP];
	unsigned n = 0, mp = 0, fast = 0, unordered = 0;
	bool io = true;
	uint64_t x = seed;

	assert_non_null(peers);
	mp = decide_sort_io(set, 0, peers, o, &io);
	for (unsigned r = 0; r < ROUNDS; r++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bool add = n == 0 || (n < NP && (x & 1));
		unsigned mp_a, mp_b;
		bool io_a, io_b;
		if (add) {
			/* a peer index not in the set */
			bool used[NP] = { false };
			unsigned p = (unsigned)(x >> 8) % NP;
			for (unsigned i = 0; i < n; i++)
				used[set[i].peer] = true;
			while (used[p])
				p = (p + 1) % NP;
			struct pdesc d = rnd_desc(&x, p);
			struct rib_path np = mk_path(peers, p, &d);
			memcpy(a, set, n * sizeof(*a));
			memcpy(b, set, n * sizeof(*b));
			a[n] = b[n] = np;
			mp_b = decide_sort_io(b, n + 1, peers, o, &io_b);
			if (io) {
				mp_a = decide_insert(a, n + 1, mp, peers, o, &io_a);
				fast++;
				/* decide_place: the same answer read off the old set */
				unsigned mp_p = 0;
				bool io_p = false;
				int at = decide_place(set, n, mp, &np, peers, o, &mp_p, &io_p);
				if (at >= 0) {
					assert_int_equal(a[at].peer, np.peer);
					assert_int_equal(mp_p, mp_a);
					assert_int_equal(io_p, io_a);
					for (unsigned i = 0, j = 0; i <= n; i++)
						if (i != (unsigned)at)
							assert_int_equal(a[i].peer, set[j++].peer);
				} else {
					assert_true(n == 0 || a[0].peer == np.peer ||
						    (o->deterministic_med && !o->always_compare_med));
				}
			} else {
				mp_a = decide_sort_io(a, n + 1, peers, o, &io_a);
			}
			n++;
		} else {
			unsigned k = (unsigned)(x >> 8) % n;
			free(set[k].attr);
			memcpy(a, set, k * sizeof(*a));
			memcpy(a + k, set + k + 1, (n - k - 1) * sizeof(*a));
			memcpy(b, a, (n - 1) * sizeof(*b));
			mp_b = decide_sort_io(b, n - 1, peers, o, &io_b);
			if (io) {
				mp_a = decide_remove(a, n - 1, k, mp, peers, o, &io_a);
				fast++;
			} else {
				mp_a = decide_sort_io(a, n - 1, peers, o, &io_a);
			}
			n--;
		}
		assert_int_equal(mp_a, mp_b);
		assert_int_equal(io_a, io_b);
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(a[i].peer, b[i].peer);
			assert_ptr_equal(a[i].attr, b[i].attr);
		}
		memcpy(set, a, n * sizeof(*set));
		mp = mp_a;
		io = io_a;
		unordered += !io;
	}
	/* both paths taken: the incremental one, and the full sort after a
	 * pull-up that moved paths (plain) or always (deterministic MED) */
	if (o->deterministic_med && !o->always_compare_med)
		assert_int_equal(fast, 0);
	else
		assert_true(fast > ROUNDS / 2);
	if (!o->always_compare_med)
		assert_true(unordered > 0);
	free_paths(set, n);
	free(peers);
}

static void test_incremental(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		check_incremental(&plain, seed * 0x9E3779B97F4A7C15ull);
		check_incremental(&acm, seed * 0x9E3779B97F4A7C15ull);
		check_incremental(&det, seed * 0x9E3779B97F4A7C15ull);
	}
}

/* decide_key: keys that differ order two paths as decide_cmp does, for
 * values around and beyond the packed fields' ranges. */
static void test_key(void **state)
{
	static const uint32_t lps[] = { 0, 1, 99, 100, 101, 65535, 65536, 4000000000u };
	static const uint16_t asl[] = { 0, 1, 7, 4095, 4096, 65535 };
	static const uint8_t org[] = { 0, 1, 2, 3, 4 };
	struct rib_peerinfo peers[2];
	(void)state;
	for (unsigned i = 0; i < 8 * 6 * 5; i++)
		for (unsigned j = 0; j < 8 * 6 * 5; j++) {
			struct pdesc da = { .lp = lps[i % 8], .aslen = asl[i / 8 % 6], .origin = org[i / 48],
					    .bgp_id = 1, .addr_last = 1 };
			struct pdesc db = { .lp = lps[j % 8], .aslen = asl[j / 8 % 6], .origin = org[j / 48],
					    .bgp_id = 2, .addr_last = 2 };
			g_keys = false;
			struct rib_path a = mk_path(peers, 0, &da), b = mk_path(peers, 1, &db);
			int want = decide_cmp(&a, &b, peers, &plain);
			uint32_t ka = decide_attr_key(a.attr), kb = decide_attr_key(b.attr);
			bool fits_a = da.lp <= 65535 && da.aslen <= 4095 && da.origin <= 3;
			bool fits_b = db.lp <= 65535 && db.aslen <= 4095 && db.origin <= 3;
			assert_int_equal(ka != 0, fits_a);
			assert_int_equal(kb != 0, fits_b);
			if (ka && kb && ka != kb)
				assert_int_equal(ka < kb ? -1 : 1, want);
			a.dkey = ka;
			b.dkey = kb;
			assert_int_equal(decide_cmp(&a, &b, peers, &plain), want);
			free(a.attr);
			free(b.attr);
		}
}

#define WITH_KEYS(fn) \
	static void fn##_keys(void **state) { g_keys = true; fn(state); g_keys = false; }
WITH_KEYS(test_decision_table)
WITH_KEYS(test_multipath)
WITH_KEYS(test_stale)
WITH_KEYS(test_large)
WITH_KEYS(test_incremental)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision_table),
		cmocka_unit_test(test_null_opts),
		cmocka_unit_test(test_med_comparability),
		cmocka_unit_test(test_deterministic_med_cycle),
		cmocka_unit_test(test_deterministic_med_all_orders),
		cmocka_unit_test(test_multipath),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_decision_table_keys),
		cmocka_unit_test(test_multipath_keys),
		cmocka_unit_test(test_stale_keys),
		cmocka_unit_test(test_large_keys),
		cmocka_unit_test(test_incremental_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
