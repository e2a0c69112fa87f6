/*
 * rib.h - the RIB: one path-compressed radix tree per address family, each
 * prefix holding its candidate paths best-first, plus the change journal the
 * reflection thread drains.
 *
 * Threading contract (details and the correctness argument in rib.c):
 *   - Every thread that calls into the RIB is registered with liburcu
 *     (rcu_register_thread).
 *   - Readers (lookups, walks, reading a node's path set) run under
 *     rcu_read_lock and never take a lock.  Pointers they get stay valid until
 *     rcu_read_unlock.
 *   - Writers (rib_update / rib_withdraw / rib_withdraw_peer) may run on many
 *     threads at once; they take rcu_read_lock themselves.  All updates for one
 *     peer index must come from one thread at a time (the peer's I/O thread),
 *     which is what lets the per-peer prefix index go unlocked.
 *   - The journal is drained by exactly one thread (the reflection thread).
 *
 * Path sets are immutable: a writer builds a new set and publishes it with
 * rcu_assign_pointer, the old one is freed after a grace period.
 */
#ifndef RICOCHET_RIB_RIB_H
#define RICOCHET_RIB_RIB_H

#include <stdbool.h>
#include <stdint.h>
#include "core/bgp.h"
#include "rib/attr.h"
#include "rib/decide.h"

#define RIB_MAX_PEERS 65536
#define RIB_PEER_NONE 0xFFFFFFFFu

/* An immutable set of paths for one prefix, best first. */
struct rib_pathset {
	/* no rcu_head: old sets are freed through the stripes' reclaim batches */
	uint16_t n;                      /* number of paths */
	uint16_t n_multipath;            /* leading paths equal to the best (>= 1 if n) */
	uint8_t in_order;                /* internal: a fixed point of decide_sort (decide.h) */
	struct rib_path p[];
};

struct rib_node;                     /* opaque: a prefix in the tree */
struct rib;

struct rib_opts {
	struct decide_opts decide;
	struct attr_table *attrs;        /* where path attribute sets live */
	const struct rib_peerinfo *peers;/* peer table, RIB_MAX_PEERS entries, owned by caller */
	/* Journal a prefix when any of its first journal_depth paths change (not
	 * only its best / multipath set): what ADD-PATH senders of N paths need. */
	unsigned journal_depth;
	/* IPv4 direct /24 index: a /16 gets its 2 KiB table once it holds this many
	 * prefixes of length >= 16 (0: the default, 8; RIB_LPM_INDEX_OFF: never).
	 * It makes LPM lookups and /16../24 finds one or two loads; without it they
	 * descend the tree, with the same answers. */
	uint32_t lpm_index_min;
};
#define RIB_LPM_INDEX_OFF UINT32_MAX

struct rib *rib_create(const struct rib_opts *o);
/* Destroy: no other thread may use the RIB any more.  Releases every path. */
void rib_destroy(struct rib *r);
/*
 * Hand every deferred free (replaced path sets, unlinked nodes, the attribute
 * references of removed paths) to call_rcu now, wait for the grace periods
 * (rcu_barrier) and free them.  Writers batch these per stripe or per
 * thread (freed by the call_rcu thread once their grace period is over);
 * tests and memory accounting call this to see the settled state.  No
 * writer may run meanwhile (it empties every thread's batch).  Not under
 * rcu_read_lock.
 */
void rib_flush(struct rib *r);

/* ---- writers ---------------------------------------------------------- */

/*
 * Insert or replace the path (peer, pfx->path_id) of prefix pfx.  Takes its
 * own reference on attr (the caller keeps its own).  Marks the prefix in the
 * journal if its best path or multipath set changed.
 * Returns 1 if a new path was added, 0 if an existing one was replaced.
 */
int rib_update(struct rib *r, const struct bgp_prefix *pfx, uint32_t peer, struct attr_set *attr,
	       uint32_t path_flags);
/*
 * rib_update for the n prefixes of one UPDATE, all with attribute set attr:
 * one reference add for all of them, one stripe lock per run of prefixes in
 * the same stripe, the tree paths of each group warmed together.  added[i] (if not
 * NULL) gets what rib_update would have returned.  Returns paths added.
 */
unsigned rib_update_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, uint32_t peer,
			  struct attr_set *attr, uint32_t path_flags, uint8_t *added);
/*
 * rib_update_batch for the announcements of several UPDATEs of one peer:
 * attr[i] is the set of pfx[i] (runs of the same set cost one reference add),
 * and the tree descents are warmed in groups across UPDATE boundaries.  The
 * caller holds a reference on every set for the duration of the call.
 */
unsigned rib_update_multi(struct rib *r, const struct bgp_prefix *pfx, struct attr_set *const *attr,
			  size_t n, uint32_t peer, uint32_t path_flags, uint8_t *added);
/* Withdraw the path (peer, pfx->path_id).  Returns 1 if it existed, 0 if not. */
int rib_withdraw(struct rib *r, const struct bgp_prefix *pfx, uint32_t peer);
/*
 * rib_withdraw for the n prefixes of one UPDATE: one stripe lock per run of
 * prefixes in the same stripe, IPv4 /16../24 found through the direct index
 * (no tree descent), the other descents overlapped in groups.  hit[i] (if not
 * NULL) gets what rib_withdraw would have returned.  Returns paths removed.
 */
unsigned rib_withdraw_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, uint32_t peer,
			    uint8_t *hit);
/*
 * Withdraw every path of peer in family fam (BGP_FAM_COUNT = all families).
 * Cost is proportional to the number of prefixes the peer announced, not to
 * the table size.  With only_stale, withdraws only paths flagged
 * RIB_PATH_F_STALE (graceful restart end).  Returns paths removed.
 */
uint64_t rib_withdraw_peer(struct rib *r, uint32_t peer, unsigned fam, bool only_stale);
/* Flag every path of peer (in fam) as stale (graceful restart begins). */
uint64_t rib_mark_peer_stale(struct rib *r, uint32_t peer, unsigned fam);

/*
 * The same three sweeps, resumable: begin, then step until done, a bounded
 * number of the peer's prefixes per step, so that a full table (a million
 * prefixes, seconds of work) can be withdrawn between other work on the
 * peer's thread.  rib_withdraw_peer and rib_mark_peer_stale are a begin and
 * steps until done.
 *
 * The cursor is a position in the peer's prefix index (one family).  While
 * a sweep of (peer, fam) is open the index is append-only (no compaction, no
 * free), so the position stays valid; a step covers the entries up to the
 * index's current end, so a prefix the peer gains while its sweep is open
 * may or may not be swept.  Callers that must not lose such paths start no
 * new session for the peer until the sweep is done (io/peer.c does not).
 * Same thread contract as the other writers (the peer's thread); one open
 * sweep per (peer, fam) at a time.  A sweep abandoned at shutdown needs no
 * clean-up: rib_destroy frees the index whatever its state.
 */
enum rib_sweep_mode {
	RIB_SWEEP_WITHDRAW,              /* every path of the peer */
	RIB_SWEEP_WITHDRAW_STALE,        /* only paths flagged RIB_PATH_F_STALE */
	RIB_SWEEP_MARK_STALE,            /* flag every path RIB_PATH_F_STALE */
};
struct rib_sweep {
	uint32_t peer;
	uint8_t fam;
	uint8_t mode;                    /* enum rib_sweep_mode */
	bool done;
	size_t pos;                      /* next index entry */
	uint64_t hits;                   /* paths removed or flagged so far */
	bool compact;                    /* compacting the index as it goes (rib.c) */
	uint32_t gen;
	size_t keep;                     /* index entries kept so far (compacting) */
};
void rib_sweep_begin(struct rib *r, struct rib_sweep *s, uint32_t peer, unsigned fam,
		     enum rib_sweep_mode mode);
/* Work on up to max index entries (prefixes).  Returns the paths removed or
 * flagged by this step; sets s->done after the last one. */
uint64_t rib_sweep_step(struct rib *r, struct rib_sweep *s, size_t max);

/* ---- readers (call under rcu_read_lock) ------------------------------- */

struct rib_node *rib_lookup(struct rib *r, const struct bgp_prefix *pfx);   /* exact */
/*
 * n exact lookups at once: out[i] gets what rib_lookup(r, &pfx[i]) would
 * (prefixes of any family, in any order).  Faster than n calls on tables that
 * do not fit in the caches: the dependent loads of up to 64 lookups are
 * overlapped (rib.c, "batched lookups"; up to 128 on a RIB without /24
 * tables, whose IPv4-only batches take a path of their own - a batch mixing
 * families there takes the general one).
 */
void rib_lookup_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, struct rib_node **out);
struct rib_node *rib_lookup_lpm(struct rib *r, unsigned fam, const uint8_t *addr);
/*
 * n longest-prefix matches at once: address i at addrs + i * stride (4 or 16
 * bytes by family; stride lets it read straight out of an array of structs),
 * result in out[i].  Same answers as rib_lookup_lpm; faster on big tables
 * because the dependent loads of up to 64 lookups are overlapped (rib.c,
 * "batched lookups"; up to 128 for IPv4 on a RIB without /24 tables).
 */
void rib_lookup_lpm_batch(struct rib *r, unsigned fam, const uint8_t *addrs, size_t stride,
			  size_t n, struct rib_node **out);
/* The node's prefix (path_id 0) and its current path set (NULL if empty). */
void rib_node_prefix(const struct rib_node *n, struct bgp_prefix *pfx);
const struct rib_pathset *rib_node_paths(const struct rib_node *n);

/*
 * Ordered walk of family fam (prefix order: address, then length), restricted
 * to prefixes inside `below` if not NULL, starting strictly after `after` if
 * not NULL (a resume cursor: need not exist any more).  Calls cb for each
 * prefix that has paths; stops after max prefixes or when cb returns false.
 * Returns prefixes visited; *last gets the last prefix visited (the cursor to
 * resume from).  Call under rcu_read_lock; resume across read-side sections.
 */
typedef bool (*rib_walk_cb)(struct rib_node *n, const struct bgp_prefix *pfx,
			    const struct rib_pathset *ps, void *arg);
size_t rib_walk(struct rib *r, unsigned fam, const struct bgp_prefix *below,
		const struct bgp_prefix *after, size_t max, rib_walk_cb cb, void *arg,
		struct bgp_prefix *last);

/* ---- the change journal (one consumer: the reflection thread) ---------- */

/*
 * The journal has two lanes.  Changes made by a sweep (rib_sweep_step and so
 * rib_withdraw_peer / rib_mark_peer_stale: a whole session's table) are
 * queued in the BULK lane, all others (rib_update*, rib_withdraw*) in the
 * LIVE lane.  A prefix is in at most one lane at a time: one changed by an
 * UPDATE while it waits in the bulk lane stays there (and is handed over
 * once, its latest state read at drain time).  There is no order between
 * the lanes, nor between the queues within a lane; a prefix's own changes
 * are never reordered, since only its state at drain time is handed over.
 */
enum rib_jlane {
	RIB_JLANE_LIVE,
	RIB_JLANE_BULK,
	RIB_JLANES
};

/*
 * Take up to max changed prefixes, the live lane's first, then the bulk
 * lane's (returns fewer than max only when both are empty).  Each prefix is
 * handed over once however often it changed since it was last drained; its
 * state must be read (under rcu_read_lock) after this returns.  Each
 * returned node stays allocated until rib_journal_release() is called for
 * it.  Returns the count.  Consumer thread only.
 */
size_t rib_journal_drain(struct rib *r, struct rib_node **out, size_t max);
/*
 * rib_journal_drain from one lane only: what lets the consumer send UPDATEs'
 * changes first and take a sweep's in bounded pieces (io/reflect.c).  Same
 * contract; rib_journal_batch_stamp then dates this drain's prefixes only.
 */
size_t rib_journal_drain_lane(struct rib *r, enum rib_jlane lane, struct rib_node **out, size_t max);
/* Done with a drained node: an empty node may now be unlinked and freed. */
void rib_journal_release(struct rib *r, struct rib_node *n);
/*
 * rib_journal_release for n nodes at once (a drained batch): the tree
 * descents that unlink the nodes left empty are overlapped in groups and one
 * stripe lock is taken per run of nodes in the same stripe.  Takes its own
 * rcu_read_lock (nesting in the caller's is fine).
 */
void rib_journal_release_n(struct rib *r, struct rib_node *const *nodes, size_t n);
/*
 * Approximate time (CLOCK_MONOTONIC ns, as log_now_ns) at which the oldest
 * prefix handed out by the last rib_journal_drain() or
 * rib_journal_drain_lane() was changed, or 0 when unknown.  For propagation-latency metrics; consumer thread only.
 */
uint64_t rib_journal_batch_stamp(struct rib *r);
/*
 * Take one more reference on a drained node (between rib_journal_drain and
 * its rib_journal_release), released by another rib_journal_release: the node
 * then stays allocated - and findable without a lookup - until that release.
 * The reflection thread uses it to remember prefixes for a paused peer.
 */
void rib_node_hold(struct rib_node *n);
/* Number of prefixes waiting in the journal (approximate; any thread):
 * both lanes, or one. */
uint64_t rib_journal_pending(struct rib *r);
uint64_t rib_journal_pending_lane(struct rib *r, enum rib_jlane lane);
/*
 * Block until the journal is non-empty or timeout_ms passes (-1 forever) or
 * rib_journal_wake() is called.  Writers wake the consumer when the journal
 * goes from empty to non-empty.
 */
void rib_journal_wait(struct rib *r, int timeout_ms);
void rib_journal_wake(struct rib *r);

/*
 * A small word per node owned by the journal consumer (reflection thread):
 * it records what was last advertised for the prefix.  Only the consumer
 * reads or writes it.
 */
uint32_t *rib_node_out_state(struct rib_node *n);

/*
 * True while a change of n waits in the journal: a later drain hands n to
 * the consumer, which then reads its latest paths.  A snapshot (a writer may
 * queue it right after); call under rcu_read_lock.
 */
bool rib_node_queued(const struct rib_node *n);

/*
 * Hand every partly filled deferred-free batch to call_rcu without waiting
 * (the call_rcu thread frees it after its grace period).  Writers defer frees
 * in batches per stripe; a stripe that goes quiet would otherwise pin up to
 * a batch of old path sets, nodes and attribute references.
 * Call now and then from a thread that is otherwise idle.
 */
void rib_reclaim_idle(struct rib *r);

/*
 * Per-thread free batches.  A writer thread that calls rib_thread_batches()
 * (once; later calls are free) defers its frees in a batch of its own in
 * each RIB instead of the stripe's, which writers on other cores also
 * append to (rib.c, PER-THREAD FREE BATCHES).  false: all RIB_WSLOTS (64)
 * indices are held by live threads; the thread keeps the stripes' batches.
 * The index is released when the thread exits.
 * Such a thread must call rib_reclaim_mine(r) for each RIB it writes when it
 * goes idle (or before it exits): its partly filled batch would otherwise
 * pin up to a batch of old path sets, nodes and attribute references until
 * rib_flush.  rib_reclaim_idle also hands over the caller's own batch.
 */
bool rib_thread_batches(void);
void rib_reclaim_mine(struct rib *r);

/* ---- accounting ------------------------------------------------------- */

struct rib_stats {
	uint64_t prefixes[BGP_FAM_COUNT];
	uint64_t paths[BGP_FAM_COUNT];
	uint64_t nodes;                  /* tree nodes including glue nodes */
	uint64_t node_bytes;             /* includes lpm_index_bytes */
	uint64_t pathset_bytes;
	uint64_t peer_index_bytes;
	uint64_t journal_pending;
	uint64_t lpm_index_bytes;        /* IPv4 direct /24 index (part of node_bytes) */
	uint64_t hint_bytes;             /* IPv4 descent hints (a RIB without the /24
					  * index; fixed, not in node_bytes) */
};
void rib_stats(struct rib *r, struct rib_stats *st);
/* Prefixes (per family) for which peer currently has at least one path. */
uint64_t rib_peer_prefixes(struct rib *r, uint32_t peer, unsigned fam);
/* Entries in the peer's index of fam: one or more per prefix it holds, plus
 * dead ones not compacted away yet (>= rib_peer_prefixes).  Call from the
 * peer's own thread (the index is its own, see "Per-peer index" above). */
uint64_t rib_peer_index_len(struct rib *r, uint32_t peer, unsigned fam);

#endif
