/*
 * decide.c - best-path selection: RFC 4271 s9.1.2.2 with the RFC 4456 s9
 * route-reflection tie-breaks, deterministic MED, and the multipath set.
 *
 * Threads: pure functions over a caller-owned array; the RIB calls them with
 * a prefix's paths under its writer lock.  No locking, no allocation.
 *
 * Why it is built this way: the per-path decision fields were decoded once
 * at intern time (rib/attr.c), so a comparison is a handful of integer
 * compares.  n is small (usually 1..8, at most a few hundred), so the sorts
 * are insertion sorts and the deterministic-MED merge is quadratic in place,
 * which beats anything clever at these sizes and needs no scratch memory.
 *
 * Order of the steps (first difference wins):
 *   0. a fresh path beats a stale one (graceful restart keeps stale paths
 *      only as a fallback);
 *   a. highest LOCAL_PREF (100 when absent);
 *   b. shortest AS_PATH (AS_SET counts 1, confederation segments 0);
 *   c. lowest ORIGIN;
 *   d. lowest MED, only between paths from the same neighbour AS unless
 *      always_compare_med (a missing MED is 0);
 *   e. eBGP-learned over iBGP-learned;
 *   f. (IGP cost to the next hop: all equal for a reflector, skipped);
 *   g. lowest BGP identifier, ORIGINATOR_ID standing in for the peer's
 *      identifier when present (RFC 4456 s9);
 *   h. shortest CLUSTER_LIST (RFC 4456 s9);
 *   i. lowest peer address;
 *   j. lowest ADD-PATH id, then lowest peer index, so the order is total.
 * The multipath set is the paths equal to the best through step e.
 */
#include <string.h>

#include "rib/attr.h"
#include "rib/decide.h"

#define DECIDE_CMP(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)

static inline int decide_cmp_addr(const struct bgp_addr *a, const struct bgp_addr *b)
{
	int r = DECIDE_CMP(a->family, b->family);

	if (r)
		return r;
	return memcmp(a->addr, b->addr, a->family == BGP_FAM_IPV6 ? 16 : 4);
}

uint32_t decide_attr_key(const struct attr_set *a)
{
	return decide_key(a->local_pref, a->as_path_len, a->origin);
}

/* Steps 0..e: what decides membership of the multipath set. */
static int decide_cmp_upto_e(const struct rib_path *a, const struct rib_path *b,
			     const struct rib_peerinfo *peers, const struct decide_opts *o)
{
	const struct attr_set *x, *y;
	int r;

	if ((r = DECIDE_CMP(a->flags & RIB_PATH_F_STALE, b->flags & RIB_PATH_F_STALE)))
		return r;
	/* keys that differ decide at step a, b or c (decide_key): no set loaded */
	if (a->dkey != b->dkey && a->dkey && b->dkey)
		return DECIDE_CMP(a->dkey, b->dkey);
	x = a->attr;
	y = b->attr;
	if ((r = DECIDE_CMP(y->local_pref, x->local_pref)))          /* higher wins */
		return r;
	if ((r = DECIDE_CMP(x->as_path_len, y->as_path_len)))
		return r;
	if ((r = DECIDE_CMP(x->origin, y->origin)))
		return r;
	if ((o && o->always_compare_med) || x->neighbor_as == y->neighbor_as) {
		if ((r = DECIDE_CMP(x->med, y->med)))
			return r;
	}
	/* eBGP (true) wins over iBGP (false). */
	return DECIDE_CMP(!__atomic_load_n(&peers[a->peer].ebgp, __ATOMIC_RELAXED),
			  !__atomic_load_n(&peers[b->peer].ebgp, __ATOMIC_RELAXED));
}

int decide_cmp(const struct rib_path *a, const struct rib_path *b, const struct rib_peerinfo *peers,
	       const struct decide_opts *o)
{
	const struct attr_set *x = a->attr, *y = b->attr;
	const struct rib_peerinfo *pa = &peers[a->peer], *pb = &peers[b->peer];
	uint32_t ida, idb;
	int r;

	if ((r = decide_cmp_upto_e(a, b, peers, o)))
		return r;
	ida = (x->flags & ATTR_F_ORIGINATOR) ? x->originator_id : __atomic_load_n(&pa->bgp_id, __ATOMIC_RELAXED);
	idb = (y->flags & ATTR_F_ORIGINATOR) ? y->originator_id : __atomic_load_n(&pb->bgp_id, __ATOMIC_RELAXED);
	if ((r = DECIDE_CMP(ida, idb)))
		return r;
	if ((r = DECIDE_CMP(x->cluster_list_len, y->cluster_list_len)))
		return r;
	if ((r = decide_cmp_addr(&pa->addr, &pb->addr)))
		return r < 0 ? -1 : 1;
	if ((r = DECIDE_CMP(a->path_id, b->path_id)))
		return r;
	return DECIDE_CMP(a->peer, b->peer);
}

/* Move paths[from] to paths[to] (to <= from), shifting the ones between up. */
static inline void decide_rotate(struct rib_path *paths, unsigned to, unsigned from)
{
	struct rib_path t;

	if (to == from)
		return;
	t = paths[from];
	memmove(&paths[to + 1], &paths[to], (from - to) * sizeof(*paths));
	paths[to] = t;
}

/* Stable insertion sort by decide_cmp, optionally grouped by neighbour AS first. */
static void decide_isort(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
			 const struct decide_opts *o, bool by_as)
{
	for (unsigned i = 1; i < n; i++) {
		struct rib_path t = paths[i];
		unsigned j = i;

		while (j > 0) {
			const struct rib_path *p = &paths[j - 1];
			int r = 0;

			if (by_as)
				r = DECIDE_CMP(p->attr->neighbor_as, t.attr->neighbor_as);
			if (r == 0)
				r = decide_cmp(p, &t, peers, o);
			if (r <= 0)
				break;
			paths[j] = paths[j - 1];
			j--;
		}
		paths[j] = t;
	}
}

/*
 * Deterministic MED: each neighbour-AS group is sorted on its own (MED is
 * always comparable inside a group, so that order is a true total order),
 * then the groups are merged by repeatedly taking the best group head.
 * Heads come from different ASes, so comparing them never looks at MED and
 * is transitive too: the result does not depend on arrival order.
 */
static void decide_sort_deterministic(struct rib_path *paths, unsigned n,
				      const struct rib_peerinfo *peers, const struct decide_opts *o)
{
	decide_isort(paths, n, peers, o, true);
	/* Invariant: paths[i..n) holds the rest of every group, each group
	 * contiguous and sorted; a group head is where neighbor_as changes. */
	for (unsigned i = 0; i + 1 < n; i++) {
		unsigned best = i;

		for (unsigned j = i + 1; j < n; j++) {
			if (paths[j].attr->neighbor_as == paths[j - 1].attr->neighbor_as)
				continue;
			if (decide_cmp(&paths[j], &paths[best], peers, o) < 0)
				best = j;
		}
		decide_rotate(paths, i, best);
	}
}

static inline bool decide_dmed(const struct decide_opts *o)
{
	return o && o->deterministic_med && !o->always_compare_med;
}

/*
 * Where MED is not comparable across ASes, a path that lost to the best
 * on MED can sort ahead of one from another AS that ties the best
 * through step e.  Pull every multipath member up behind the best
 * (stably), so the multipath set is the leading run the caller expects.
 * *moved is set when that changed the order.
 */
static unsigned decide_pull_up(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
			       const struct decide_opts *o, bool *moved)
{
	unsigned k = 1;

	for (unsigned j = 1; j < n; j++) {
		if (decide_cmp_upto_e(&paths[0], &paths[j], peers, o) == 0) {
			if (j != k)
				*moved = true;
			decide_rotate(paths, k++, j);
		}
	}
	return k;
}

/*
 * In order (decide.h) = a fixed point of decide_sort.  The insertion sort
 * leaves every adjacent pair ordered (decide_cmp is antisymmetric, so a path
 * it moved left is ordered against its new right neighbour too), hence its
 * output is a fixed point of the sort itself; only a pull-up that moved
 * something, or the deterministic-MED merge, can leave an order that a
 * second run would change.
 */
unsigned decide_sort_io(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
			const struct decide_opts *o, bool *in_order)
{
	bool moved = false;
	unsigned k;

	*in_order = !decide_dmed(o);
	if (n == 0)
		return 0;
	if (decide_dmed(o))
		decide_sort_deterministic(paths, n, peers, o);
	else
		decide_isort(paths, n, peers, o, false);
	k = decide_pull_up(paths, n, peers, o, &moved);
	if (moved)
		*in_order = false;
	return k;
}

unsigned decide_sort(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
		     const struct decide_opts *o)
{
	bool in_order;

	return decide_sort_io(paths, n, peers, o, &in_order);
}

/*
 * Why this equals decide_sort(paths, n): on an in-order prefix the insertion
 * sort moves nothing until its last step, which walks the new path left past
 * every path that ranks after it - the loop below.  The pull-up then only
 * has to place the new path: the old members still tie paths[0] (unchanged
 * when the new path did not become the best) and the old non-members do not.
 */
unsigned decide_insert(struct rib_path *paths, unsigned n, unsigned mp,
		       const struct rib_peerinfo *peers, const struct decide_opts *o, bool *in_order)
{
	struct rib_path t;
	unsigned j;
	bool tie, moved = false;

	if (decide_dmed(o) || n < 2 || mp < 1 || mp > n - 1)
		return decide_sort_io(paths, n, peers, o, in_order);
	t = paths[n - 1];
	j = n - 1;
	while (j > 0 && decide_cmp(&paths[j - 1], &t, peers, o) > 0) {
		paths[j] = paths[j - 1];
		j--;
	}
	paths[j] = t;
	if (j == 0) {
		/* a new best: membership of every other path must be asked */
		unsigned k = decide_pull_up(paths, n, peers, o, &moved);
		*in_order = !moved;
		return k;
	}
	tie = decide_cmp_upto_e(&paths[0], &paths[j], peers, o) == 0;
	if (tie) {
		/* a member sorted behind non-members is pulled up to the run's end */
		*in_order = j <= mp;
		if (j > mp)
			decide_rotate(paths, mp, j);
		return mp + 1;
	}
	if (j < mp) {
		/* a non-member sorted inside the run: the members behind it pass it */
		memmove(&paths[j], &paths[j + 1], (mp - j) * sizeof(*paths));
		paths[mp] = t;
		*in_order = false;
		return mp;
	}
	*in_order = true;
	return mp;
}

/*
 * decide_insert without writing: the same comparisons, made against the old
 * set and t, give where t ends up.  When t does not become the best, the
 * result of decide_insert is "the old set with t inserted at one position":
 * at j (its sorted place), or at mp when it ties the best but sorted behind
 * non-members (the rotate), or at mp when it does not tie but sorted inside
 * the run (the members behind it pass it, i.e. it lands right after them).
 * A new best (j == 0) may pull members up behind it: no single position,
 * so -1 (the caller builds the set and runs decide_insert).
 */
int decide_place(const struct rib_path *paths, unsigned n, unsigned mp, const struct rib_path *t,
		 const struct rib_peerinfo *peers, const struct decide_opts *o, unsigned *mp_out,
		 bool *in_order)
{
	unsigned j = n;

	if (decide_dmed(o) || n < 1 || mp < 1 || mp > n)
		return -1;
	while (j > 0 && decide_cmp(&paths[j - 1], t, peers, o) > 0)
		j--;
	if (j == 0)
		return -1;
	if (decide_cmp_upto_e(&paths[0], t, peers, o) == 0) {
		*in_order = j <= mp;
		*mp_out = mp + 1;
		return (int)(j <= mp ? j : mp);
	}
	*in_order = j >= mp;
	*mp_out = mp;
	return (int)(j >= mp ? j : mp);
}

/*
 * Why this equals decide_sort(paths, n): every adjacent pair of the old set
 * was ordered; removing one path creates one new pair, checked here (if it is
 * out of order, the full sort runs).  With the best path unchanged the
 * members are the old ones less the removed path, still the leading run.
 */
unsigned decide_remove(struct rib_path *paths, unsigned n, unsigned idx, unsigned mp,
		       const struct rib_peerinfo *peers, const struct decide_opts *o, bool *in_order)
{
	bool moved = false;
	unsigned k;

	if (decide_dmed(o) || mp < 1 || mp > n + 1 || idx > n)
		return decide_sort_io(paths, n, peers, o, in_order);
	*in_order = true;
	if (n == 0)
		return 0;
	if (idx > 0 && idx < n && decide_cmp(&paths[idx - 1], &paths[idx], peers, o) > 0)
		return decide_sort_io(paths, n, peers, o, in_order);
	if (idx > 0)
		return mp - (idx < mp);
	k = decide_pull_up(paths, n, peers, o, &moved);
	*in_order = !moved;
	return k;
}
