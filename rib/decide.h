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
	uint32_t dkey;                   /* decide_key(attr), or 0 (no key: compare attrs) */
};
_Static_assert(sizeof(struct rib_path) == 24, "dkey fills the padding: no bytes per path");
#define RIB_PATH_F_STALE 0x1             /* graceful restart: kept until EoR / timer */

/*
 * What the decision process needs to know about the peer a path came from.
 * addr is set when the peer's slot is created, before it is published.
 * bgp_id, asn and ebgp come from each session's OPEN and are written by the
 * peer's I/O thread while other threads may be comparing its paths (stale
 * paths kept by graceful restart), so they are stored and loaded as relaxed
 * atomics (plain moves on x86-64; the point is no data race).  They change
 * only while the peer has no path ranked with the old values: a peer that
 * comes back with another BGP identifier or AS while stale paths are held
 * has those withdrawn first, its input held, and the new values are
 * published after (io/peer.c, session_up) - path sets are kept sorted
 * incrementally and would not be re-sorted for a changed rank.
 */
struct rib_peerinfo {
	uint32_t bgp_id;                 /* host order */
	uint32_t asn;
	bool ebgp;
	struct bgp_addr addr;
};

/*
 * The decision key: steps a-c (LOCAL_PREF, AS_PATH length, ORIGIN) of attr
 * set a packed into 32 bits so that, for two paths with non-zero keys, a
 * smaller key is a preferred path and different keys decide at or before
 * step c - what decide_cmp would find reading both sets.  Equal keys say
 * nothing (the later steps need the sets).  0 when a field does not fit
 * (LOCAL_PREF > 65535, AS_PATH length > 4095, ORIGIN > 3): then the
 * comparison reads the sets, as without a key.  A path caches its set's key
 * (rib_path.dkey) so that placing a new path among n others rarely has to
 * load the others' sets (a cache miss each, in a big table).
 */
static inline uint32_t decide_key(uint32_t local_pref, uint32_t as_path_len, uint32_t origin)
{
	if (local_pref > 0xFFFF || as_path_len > 0xFFF || origin > 3)
		return 0;
	return (0xFFFFu - local_pref) << 16 | as_path_len << 4 | origin << 2 | 1u;
}
uint32_t decide_attr_key(const struct attr_set *a);

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
/*
 * decide_place: paths[0..n) is in order with multipath count mp, t a new
 * path not yet in it.  Returns the index at which decide_insert would leave t
 * (*mp_out and *in_order as it would return and set), reading only paths and
 * t, or -1 when the result is not the old order with t inserted at one index
 * (t becomes the best, or a mode decide_insert sorts in): then build the set
 * and call decide_insert.  Lets a writer copy the old set around t once
 * instead of copying it and then re-reading the copy.
 */
int decide_place(const struct rib_path *paths, unsigned n, unsigned mp, const struct rib_path *t,
		 const struct rib_peerinfo *peers, const struct decide_opts *o, unsigned *mp_out,
		 bool *in_order);
unsigned decide_remove(struct rib_path *paths, unsigned n, unsigned idx, unsigned mp,
		       const struct rib_peerinfo *peers, const struct decide_opts *o, bool *in_order);

/* <0 if a is preferred over b, >0 if b is preferred, 0 if identical rank.
 * Plain pairwise order (always_compare_med decides MED comparability). */
int decide_cmp(const struct rib_path *a, const struct rib_path *b, const struct rib_peerinfo *peers,
	       const struct decide_opts *o);

#endif
