/*
 * io.h - the daemon's moving parts: peers, I/O threads, shared output
 * buffers, update groups and the reflection thread.
 *
 * Who owns what (the full story, with the lock order, is docs/DESIGN.md):
 *   - An I/O thread owns its peers' sockets, receive buffers, FSMs, timers and
 *     private control messages.  It parses UPDATEs in place and writes the RIB.
 *   - The reflection thread owns update groups, group membership, outbound
 *     encoding, the per-node "advertised" word and table dumps.  It produces
 *     shared, refcounted obufs and enqueues a reference to each on every
 *     member's output queue (a wait-free liburcu wfcqueue: one producer, the
 *     reflection thread; one consumer, the peer's I/O thread, which takes up
 *     to PEER_OUT_CHUNKS off it at a time and owns those references until
 *     the chunks are written or the connection goes).
 *   - Session up/down and route-refresh requests travel from I/O threads to the
 *     reflection thread on a small mutex-protected event queue (a few per
 *     session lifetime, never per route).  A peer's output queue is drained
 *     and freed by the reflection thread when it processes "down", after which
 *     it hands the peer back ("reset done") so a new session may start.
 *
 * Lock order (outermost first): daemon.cfg_lock > io_thread.cmd_lock >
 * refl.ev_lock > rib subtree locks > attr table (lock-free).  No thread holds a
 * lock while blocking on I/O.
 */
#ifndef RICOCHET_IO_IO_H
#define RICOCHET_IO_IO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu.h>
#include <urcu/wfcqueue.h>

#include "core/bgp.h"
#include "core/config.h"
#include "core/fsm.h"
#include "core/log.h"
#include "core/msg.h"
#include "rib/rib.h"

/* ------------------------------------------------------------ shared output */

/* A sealed, immutable chunk of whole encoded BGP messages, shared by refcount. */
struct obuf {
	uint32_t refcnt;                 /* atomic */
	uint32_t len;
	uint32_t cap;
	uint32_t pad;
	uint64_t rx_ns;                  /* receive time of the oldest change encoded here
					    (live batches; 0 for dumps): latency metrics */
	uint32_t group;                  /* update group id that produced it */
	uint32_t npfx;                   /* prefixes announced or withdrawn in it */
	uint8_t data[];
};
#define OBUF_SIZE (256 * 1024)

struct obuf *obuf_new(size_t cap);
void obuf_ref(struct obuf *b);
void obuf_unref(struct obuf *b);

/* One chunk queued to one peer. */
struct outq_ent {
	struct cds_wfcq_node node;
	struct obuf *b;
};

/* ------------------------------------------------------------ peers */

/* Peer roles are the configuration's (enum cfg_role): rr-client, ibgp, rs-client. */
#define PEER_RR_CLIENT CFG_ROLE_RR_CLIENT
#define PEER_IBGP      CFG_ROLE_IBGP
#define PEER_RS_CLIENT CFG_ROLE_RS_CLIENT

/*
 * Peer statistics (the counters below, prefixes_accepted, up_since_ns,
 * down_since_ns) have one writer, the peer's I/O thread, and are read by the
 * control, metrics and BMP threads.  The writer stores with PEER_STAT_ADD /
 * PEER_STAT_SET (a relaxed atomic store of the new value: no read-modify-write
 * is needed when nobody else writes), other threads read with PEER_STAT.  On
 * x86-64 all three are plain moves; the point is that none is a data race.
 * The owner may read its own fields plainly.
 */
#define PEER_STAT_ADD(f, v) __atomic_store_n(&(f), (f) + (v), __ATOMIC_RELAXED)
#define PEER_STAT_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)
#define PEER_STAT(f)        __atomic_load_n(&(f), __ATOMIC_RELAXED)

struct peer_counters {
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	uint64_t updates_in, prefixes_in, withdraws_in, prefixes_out;
	uint64_t notif_in, notif_out;
	uint64_t treat_as_withdraw, attr_discard, loops_dropped;
	uint64_t routes_refused;         /* new paths refused by the global max-routes */
	uint64_t refresh_in, refresh_out; /* ROUTE-REFRESH requests received / sent (subtype 0) */
	uint32_t notif_in_code[9], notif_out_code[9]; /* by error code 1..8 (0: other) */
};

/* Chunks one writev carries at most (peer_flush), and so how many a peer
 * holds taken off its output queue and not yet written. */
#define PEER_OUT_CHUNKS 64

/* Malformed-input log limiters per peer (attribute type x reaction, hashed). */
#define PEER_MALFORMED_KINDS 8

/* Sweep jobs a peer can have queued: one per family and mode at most
 * (withdraw, withdraw stale, mark stale), see peer.c */
#define PEER_SWEEP_JOBS 6

/* Bits of struct peer's sess_snap: 0 while no session is Established. */
#define PEER_SNAP_UP            (1u << 31) /* Established (never 0 while up) */
#define PEER_SNAP_ROUTE_REFRESH (1u << 16) /* the peer announced route refresh */
#define PEER_SNAP_FAM(f)        (1u << (f)) /* family f (< BGP_FAM_COUNT) negotiated */

struct io_thread;
struct refl_group;
struct refl_pending;
struct dump_cohort;

struct peer {
	uint32_t id;                     /* index in the daemon's peer table and the RIB */
	bool dynamic;                    /* created from a peer range on accept */
	bool configured;                 /* still present in the running configuration */
	struct cfg_peer cfg;             /* settings (copied, owned by the peer) */
	struct bgp_addr addr;
	struct io_thread *thr;           /* owning I/O thread (fixed for the peer's life) */

	/* ---- owned by the I/O thread ---- */
	int fd;
	struct fsm fsm;
	uint8_t *rx;                     /* receive buffer */
	size_t rx_len, rx_cap;
	uint32_t rx_bpp16;               /* bytes per prefix received, x16, running average (0: none yet) */
	uint8_t ctl[4096 * 2];           /* private control messages (OPEN, KEEPALIVE, NOTIFICATION) */
	size_t ctl_len, ctl_off;
	/* chunks taken off the output queue, not yet written to their end, in
	 * order: each holds the reference queued with it until its last byte is
	 * written (peer_flush) or the connection goes (conn_teardown) */
	struct obuf *out[PEER_OUT_CHUNKS];
	size_t out_off;                  /* bytes of out[0] written (0: at a chunk boundary) */
	uint8_t n_out;
	bool want_out;                   /* EPOLLOUT armed */
	bool connecting;                 /* outbound connect() in progress */
	bool down_by_notification;       /* the session ended with a NOTIFICATION (no GR) */
	bool admin_down;                 /* stopped by configuration: do not restart */
	bool max_prefix_warned;
	uint64_t maxpfx_until_ns;        /* max-prefixes hold-down: no session before (UINT64_MAX: until reconfigured) */
	int pending_fd;                  /* accepted while the last session was being reset */
	uint64_t last_write_ns;          /* last output progress (send hold timer) */
	/* sess and peer_open are rewritten by each session's OPEN.  Other
	 * threads read sess_snap (below) instead, except the reflection thread,
	 * which reads sess when it handles the session's "up" event: the next
	 * OPEN cannot come before that thread has handled the "down" that
	 * follows and answered "reset done" (reset_pending), so for it sess is
	 * fixed from "up" to "down". */
	struct msg_session sess;         /* negotiated: what the parser needs */
	struct msg_open peer_open;       /* copy without pointers into rx */
	uint32_t peer_bgp_id;
	uint64_t up_since_ns, down_since_ns;
	uint64_t next_timer_ns[4];       /* deadlines for FSM timers, 0 = off */
	uint32_t backoff_s;              /* reconnect backoff */
	bool reset_pending;              /* waiting for the reflection thread's "reset done" */
	bool gr_stale;                   /* routes kept as stale after a drop (GR helper) */
	uint64_t gr_deadline_ns;
	/* graceful restart: a session whose OPEN brings another BGP identifier
	 * or AS than the one its stale paths were ranked with (rib_peerinfo);
	 * that identity is published only once those paths are withdrawn
	 * (peer.c, session_up) */
	bool id_pending;
	uint32_t pend_bgp_id, pend_asn;
	bool pend_ebgp;
	/* the paths of a session that went down, withdrawn (or flagged stale) a
	 * step at a time from the loop (peer.c, "sweeps"); no new session starts
	 * before the last job is done.  A live session's sweeps (End-of-RIB,
	 * BoRR/EoRR, stale-path time) too, its input held until done (rx_held) */
	struct rib_sweep sweep;          /* the job in progress (sweep.done: none) */
	struct peer_sweep_job { uint8_t fam, mode; } sweep_jobs[PEER_SWEEP_JOBS];
	uint8_t n_sweep_jobs;            /* queued behind the one in progress */
	bool sweeping;                   /* a job in progress or queued */
	uint64_t sweep_start_ns, sweep_withdrawn, sweep_marked;
	const char *sweep_why;           /* what a live session's sweep is for (log), NULL: session down */
	/* a live session's sweep (End-of-RIB, EoRR, BoRR, stale-path time) holds
	 * the peer's input until it is done: no read, the bytes already read wait
	 * in rx, the hold timer does not run (peer.c, "sweeps") */
	bool rx_held;
	uint64_t rx_held_ns;             /* since when */
	struct log_ratelimit rl_malformed[PEER_MALFORMED_KINDS]; /* log_malformed(), by kind */
	/* valid UTF-8 (a shutdown communication may be in it); written by the
	 * owner with peer_set_error under err_lock, read elsewhere with
	 * peer_get_error (the owner may read it plainly) */
	char last_error[160];
	pthread_mutex_t err_lock;        /* leaf lock: last_error only */
	struct peer_counters c;
	struct log_ratelimit rl_limit;   /* "global route limit reached" */
	uint64_t prefixes_accepted[BGP_FAM_COUNT];

	/* ---- output queue: producer reflection thread, consumer I/O thread ---- */
	struct cds_wfcq_head oq_head;
	struct cds_wfcq_tail oq_tail;
	atomic_uint_fast64_t oq_bytes;   /* queued and not yet written */
	atomic_int state;                /* enum fsm_state mirror for readers */
	/* What the session negotiated, for threads other than the owner (see
	 * PEER_SNAP_*): sess and peer_open belong to the I/O thread, which
	 * rewrites them when the next session's OPEN arrives, so the control
	 * thread must not read them.  The owner stores the word with release
	 * when the session becomes Established (sess and peer_open final) and
	 * stores 0 when it leaves Established; readers load it once with
	 * acquire and use only its bits.  It may be stale by the time it is
	 * used: the I/O thread checks its own state again before acting on a
	 * request made from it (sess_send_refresh). */
	atomic_uint sess_snap;

	/* ---- owned by the reflection thread ---- */
	struct refl_group *group;
	struct peer *group_next;
	bool dumping;                    /* waiting for or in a table dump */
	struct dump_cohort *cohort;      /* the dump it is part of (reflection thread) */
	bool paused;                     /* slow reader: live chunks not queued, see reflect.c */
	bool overflow_reset;             /* a reset for queue overflow was requested */
	struct refl_pending *pending;    /* prefixes changed while paused */
};

/* Output waiting to be written: taken off the queue or still on it (the
 * peer's I/O thread). */
static inline bool peer_out_pending(struct peer *p)
{
	return p->n_out || !cds_wfcq_empty(&p->oq_head, &p->oq_tail);
}

/* ------------------------------------------------------------ daemon */

struct daemon;
extern struct daemon *g_daemon;

#endif
