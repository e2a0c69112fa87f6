/*
 * decide.h - best-path selection (RFC 4271 s9.1.2.2 with the RFC 4456 s9
 * route-reflection tie-breaks) and the equal-cost (multipath) set.
 *
 * Pure functions over a small array of candidate paths; no locking, no
 * allocation.  The RIB calls decide_sort() with the prefix's path array
 * under its writer lock, so a change recomputes only that prefix.
 */
#ifndef RICOCHET_RIB_DECIDE_H
#define RICOCHET_RIB_DECIDE_H

#include <stdbool.h>
#include <stdint.h>
#include "core/bgp.h"

struct attr_set;

/* One candidate path of a prefix.  Immutable once published in a path set. */
struct rib_path {
	struct attr_set *attr;           /* interned; the path holds one reference */
	uint32_t peer;                   /* peer index (rib_peerinfo table) */
	uint32_t path_id;                /* ADD-PATH id received from the peer, 0 if none */
	uint32_t flags;                  /* RIB_PATH_F_* */
};
#define RIB_PATH_F_STALE 0x1             /* graceful restart: kept until EoR / timer */

/* What the decision process needs to know about the peer a path came from. */
struct rib_peerinfo {
	uint32_t bgp_id;                 /* host order */
	uint32_t asn;
	bool ebgp;
	struct bgp_addr addr;
};

struct decide_opts {
	bool always_compare_med;         /* compare MED across neighbour ASes */
	bool deterministic_med;          /* group by neighbour AS before comparing MED */
};

/*
 * Sort paths[0..n) best first.  peers is indexed by rib_path.peer.
 * Returns the size of the multipath set: the number of leading paths equal to
 * the best one up to and including step (e) of s9.1.2.2 (LOCAL_PREF, AS_PATH
 * length, ORIGIN, MED, eBGP/iBGP), always >= 1 when n >= 1.
 */
unsigned decide_sort(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
		     const struct decide_opts *o);

/*
 * Incremental forms of decide_sort, for a RIB that keeps its sets sorted.
 * A set is "in order" when decide_sort left it so that sorting it again would
 * move nothing: adjacent paths ordered by decide_cmp and the multipath
 * members (paths tying paths[0] through step e) exactly the leading run.
 * decide_sort_io is decide_sort that also reports whether its result is in
 * order (never in deterministic-MED mode, whose order is not incremental).
 *
 * decide_insert: paths[0..n-1) is in order with multipath count mp and
 * paths[n-1] is a new path.  Leaves exactly what decide_sort(paths, n) would
 * (usually after a few comparisons instead of ~2n) and returns the multipath
 * count; *in_order as for decide_sort_io.
 * decide_remove: paths[0..n) is an in-order set (multipath count mp) from
 * which the path at index idx was just removed (the rest moved down).
 * Returns the multipath count of the result, as decide_sort would order it.
 */
unsigned decide_sort_io(struct rib_path *paths, unsigned n, const struct rib_peerinfo *peers,
			const struct decide_opts *o, bool *in_order);
unsigned decide_insert(struct rib_path *paths, unsigned n, unsigned mp,
		       const struct rib_peerinfo *peers, const struct decide_opts *o, bool *in_order);
unsigned decide_remove(struct rib_path *paths, unsigned n, unsigned idx, unsigned mp,
		       const struct rib_peerinfo *peers, const struct decide_opts *o, bool *in_order);

/* <0 if a is preferred over b, >0 if b is preferred, 0 if identical rank.
 * Plain pairwise order (always_compare_med decides MED comparability). */
int decide_cmp(const struct rib_path *a, const struct rib_path *b, const struct rib_peerinfo *peers,
	       const struct decide_opts *o);

#endif
