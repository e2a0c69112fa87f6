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

/* <0 if a is preferred over b, >0 if b is preferred, 0 if identical rank.
 * Plain pairwise order (always_compare_med decides MED comparability). */
int decide_cmp(const struct rib_path *a, const struct rib_path *b, const struct rib_peerinfo *peers,
	       const struct decide_opts *o);

#endif
