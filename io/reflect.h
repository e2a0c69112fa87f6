/*
 * reflect.h - the reflection thread: drains the RIB's change journal in
 * batches, decides what each update group must receive (RFC 4456 rules,
 * NO_EXPORT / NO_ADVERTISE), groups prefixes by attribute set, encodes every
 * UPDATE once per group into shared obufs and queues them to the members.
 * Also runs table dumps (new sessions, route refresh) as bounded, resumable
 * walks, each ending with End-of-RIB.
 *
 * Threading: refl_* entry points below may be called from any thread; they
 * post an event and wake the reflection thread.  Everything else in
 * reflect.c runs on the reflection thread only.
 */
#ifndef RICOCHET_IO_REFLECT_H
#define RICOCHET_IO_REFLECT_H

#include "io/io.h"

struct refl;

struct refl_opts {
	struct rib *rib;
	struct attr_table *attrs;        /* the RIB's: ADD-PATH groups hold references in it */
	struct peer **peers;             /* the daemon's peer table, RIB_MAX_PEERS slots */
	uint32_t router_id;              /* host order */
	uint32_t cluster_id;             /* host order */
	uint32_t local_as;
	size_t batch;                    /* prefixes per journal batch (0: 65,536) */
	size_t bulk_batch;               /* at most this many of the journal's bulk lane (sweeps)
					  * per round, after the live lane (0: REFL_BULK_BATCH) */
};
#define REFL_BULK_BATCH 8192

struct refl *refl_create(const struct refl_opts *o);
void refl_start(struct refl *r);
void refl_stop(struct refl *r);      /* joins the thread */
void refl_destroy(struct refl *r);

/* Session became Established: join an update group, start the table dump. */
void refl_peer_up(struct refl *r, struct peer *p);
/* Session ended: leave the group, drop queued output, then io_peer_reset_done(p). */
void refl_peer_down(struct refl *r, struct peer *p);
/* ROUTE-REFRESH received: re-send the table of one family (BGP_FAM_COUNT: all). */
void refl_route_refresh(struct refl *r, struct peer *p, unsigned family);

/*
 * Would a path be advertised to a peer of this role with these negotiated
 * families (RFC 4456 rules, NO_EXPORT / NO_ADVERTISE)?  The source-peer
 * exception (never back to the sender) is the caller's.  Any thread, under
 * rcu_read_lock.
 */
bool refl_export_ok(const struct refl *r, const struct rib_path *best, unsigned fam, uint8_t role,
		    const bool *families);

/* Bytes of one entry of an ADD-PATH group's deferred FIFO (node and tag). */
#define REFL_AP_DEFER_BYTES 10

struct refl_stats {
	uint64_t batches, prefixes, updates_encoded, bytes_encoded, chunks, groups;
	uint64_t dumps_done;
	uint64_t dump_live_skips;        /* prefixes a dump's walk left out: sent live already */
	uint64_t pauses, resyncs;        /* slow readers paused / brought back */
	uint64_t group_pauses;           /* ADD-PATH groups paused for a slow member */
	uint64_t ap_laggards;            /* members reset for keeping an ADD-PATH group waiting */
	uint64_t ap_deferred_sent;       /* deferred entries taken by ADD-PATH groups */
	uint64_t ap_deferred;            /* deferred entries now, all ADD-PATH groups (a prefix at
					  * most twice per group, REFL_AP_DEFER_BYTES each) */
	uint64_t last_batch_ns;
	uint64_t adv_bytes;              /* ADD-PATH advertised-id tables, all groups */
	uint64_t adv_spilled;            /* ADD-PATH ids a full table slot sent to the spill */
};
void refl_get_stats(struct refl *r, struct refl_stats *st);

/* Callbacks implemented by the I/O layer (io/loop.c). */
void io_peer_kick(struct peer *p);           /* output queued: make the owner write */
void io_peer_reset_done(struct peer *p);     /* queue drained after "down" */
void io_peer_overflow(struct peer *p);       /* queue past its hard limit: reset the session */

#endif
