/*
 * fsm.h - the BGP-4 finite state machine of RFC 4271 s8, as a pure function.
 *
 * Ownership and threading: a struct fsm belongs to one connection and is only
 * touched by the thread that owns that connection (an I/O thread).  The FSM
 * has no sockets, no clock and no allocation: the caller feeds it events and
 * gets back a short list of actions to carry out, in order.  That keeps the
 * RFC's transition rules testable as a plain table.
 *
 * Contract for the caller (the I/O thread):
 *   1. fsm_init() once, then fsm_event(ManualStart or ManualStart_Passive).
 *   2. Turn each I/O happening into an event: connect() completed ->
 *      FSM_EV_TCP_CR_ACKED; accept() handed us the peer's connection ->
 *      FSM_EV_TCP_CONFIRMED; read/write error or EOF -> FSM_EV_TCP_FAILS; a
 *      timer deadline passed -> the matching *_EXPIRES event; a message was
 *      framed and parsed -> the message event (BGPOpen carries the parsed
 *      struct msg_open; header/OPEN/UPDATE errors carry the struct msg_error
 *      whose code/subcode/data the NOTIFICATION must hold).
 *   3. Execute the returned actions in array order.  TIMER_START (re)arms the
 *      named timer for `seconds` (a restart is just a start); TIMER_STOP with
 *      FSM_TIMER_ALL disarms every timer; stopping an idle timer is a no-op.
 *      SEND_* queue a message on the current connection; CLOSE closes it after
 *      flushing what was queued (a NOTIFICATION must go out first);
 *      SESSION_DOWN means "withdraw the peer's routes", RELEASE means "free
 *      the per-session buffers".
 *   4. Things the FSM leaves to the caller, on purpose: validating the OPEN
 *      against configuration (peer AS, own BGP ID for iBGP; on failure raise
 *      FSM_EV_OPEN_ERR with the msg_error), connection collisions (two
 *      connections, two struct fsm; see fsm_collision() below, then raise
 *      FSM_EV_OPEN_COLLISION_DUMP on the loser), and refusing connections while
 *      Idle (the FSM answers TCP events in Idle with a CLOSE action).
 *   5. Optional automatic restart: when cfg.idle_hold_time is nonzero, every
 *      fall back to Idle that was not a ManualStop starts FSM_TIMER_IDLE_HOLD;
 *      its expiry (FSM_EV_IDLE_HOLD_EXPIRES) is an AutomaticStart.  The caller
 *      may substitute its own back-off for the seconds in that action.
 *
 * Deliberate simplifications: no DelayOpen, no peer oscillation damping in the
 * RFC's sense (the idle-hold restart stands in for it), TcpConnection_Valid
 * and TcpConnection_Invalid carry no meaning (the caller's accept filter
 * decides), and BGPOpen in OpenConfirm is "unexpected" because collisions are
 * resolved outside, before the event is raised.
 */
#ifndef RICOCHET_CORE_FSM_H
#define RICOCHET_CORE_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

enum fsm_state {
	FSM_IDLE = 0,
	FSM_CONNECT,
	FSM_ACTIVE,
	FSM_OPENSENT,
	FSM_OPENCONFIRM,
	FSM_ESTABLISHED,
	FSM_STATE_COUNT,
};

/* Events, numbered as in RFC 4271 s8.1 (RouteRefreshMsg is ours). */
enum fsm_event {
	FSM_EV_MANUAL_START = 1,
	FSM_EV_MANUAL_STOP = 2,
	FSM_EV_AUTO_START = 3,
	FSM_EV_MANUAL_START_PASSIVE = 4,
	FSM_EV_AUTO_START_PASSIVE = 5,
	FSM_EV_AUTO_STOP = 8,               /* e.g. max-prefix; arg.cease_subcode */
	FSM_EV_CONNECT_RETRY_EXPIRES = 9,
	FSM_EV_HOLD_EXPIRES = 10,
	FSM_EV_KEEPALIVE_EXPIRES = 11,
	FSM_EV_IDLE_HOLD_EXPIRES = 13,
	FSM_EV_TCP_VALID = 14,
	FSM_EV_TCP_CR_ACKED = 16,           /* our outbound connect() completed */
	FSM_EV_TCP_CONFIRMED = 17,          /* we accepted the peer's connection */
	FSM_EV_TCP_FAILS = 18,
	FSM_EV_OPEN = 19,                   /* arg.open: a valid OPEN */
	FSM_EV_HEADER_ERR = 21,             /* arg.err: NOTIFICATION 1/x to send */
	FSM_EV_OPEN_ERR = 22,               /* arg.err: NOTIFICATION 2/x to send */
	FSM_EV_OPEN_COLLISION_DUMP = 23,
	FSM_EV_NOTIF_VERSION_ERR = 24,      /* NOTIFICATION 2/1 received */
	FSM_EV_NOTIF = 25,                  /* any other NOTIFICATION received */
	FSM_EV_KEEPALIVE = 26,
	FSM_EV_UPDATE = 27,
	FSM_EV_UPDATE_ERR = 28,             /* arg.err: session-reset verdict */
	FSM_EV_ROUTE_REFRESH = 40,
};

enum fsm_timer {
	FSM_TIMER_CONNECT_RETRY = 0,
	FSM_TIMER_HOLD = 1,
	FSM_TIMER_KEEPALIVE = 2,
	FSM_TIMER_IDLE_HOLD = 3,
	FSM_TIMER_COUNT = 4,
	FSM_TIMER_ALL = 255,                /* only with FSM_ACT_TIMER_STOP */
};

enum fsm_action_type {
	FSM_ACT_CONNECT = 1,        /* start a TCP connection to the peer */
	FSM_ACT_CLOSE,              /* flush queued output, then close the connection */
	FSM_ACT_SEND_OPEN,
	FSM_ACT_SEND_KEEPALIVE,
	FSM_ACT_SEND_NOTIFICATION,  /* code, subcode, data[0..data_len) */
	FSM_ACT_TIMER_START,        /* timer, seconds (restart = start) */
	FSM_ACT_TIMER_STOP,         /* timer, or FSM_TIMER_ALL */
	FSM_ACT_SESSION_UP,         /* entered Established: announce to the RIB side */
	FSM_ACT_SESSION_DOWN,       /* left Established: withdraw the peer's routes */
	FSM_ACT_RELEASE,            /* free per-session resources */
};

struct fsm_action {
	uint8_t type;               /* enum fsm_action_type */
	uint8_t timer;              /* enum fsm_timer */
	uint8_t code, subcode;      /* SEND_NOTIFICATION */
	uint32_t seconds;           /* TIMER_START */
	uint16_t data_len;          /* SEND_NOTIFICATION, copied: no lifetime ties */
	uint8_t data[MSG_ERR_DATA_MAX];
};

/* No event produces more actions than this; size the caller's array with it. */
#define FSM_MAX_ACTIONS 10

/* Large hold timer while waiting for the peer's OPEN (RFC 4271 s8.2.2: 4 min). */
#define FSM_OPEN_HOLD_TIME 240

struct fsm_config {
	uint16_t hold_time;         /* proposed in our OPEN: 0 or >= 3 */
	uint16_t keepalive;         /* 0 = negotiated hold / 3; else used if smaller */
	uint16_t connect_retry;     /* ConnectRetryTime, seconds (0 -> 30) */
	uint16_t idle_hold_time;    /* automatic restart delay, 0 = no automatic restart */
	bool passive;               /* never initiate a connection */
};

struct fsm {
	uint8_t state;              /* enum fsm_state */
	uint8_t prev_state;         /* state before the last transition, for logs */
	uint8_t last_event;         /* enum fsm_event last fed in */
	bool passive;               /* started passively (config or *_PASSIVE event) */
	uint16_t hold;              /* negotiated hold time (valid from OpenConfirm) */
	uint16_t keepalive;         /* negotiated keepalive interval, 0 = none */
	uint16_t peer_hold;         /* hold time the peer proposed */
	uint32_t connect_retry_counter;
	/* last NOTIFICATION sent by the FSM, for "show" commands */
	uint8_t last_notif_code, last_notif_subcode;
	struct fsm_config cfg;
};

/* Event arguments; unused fields may stay zero. */
struct fsm_event_arg {
	const struct msg_open *open;     /* FSM_EV_OPEN */
	const struct msg_error *err;     /* FSM_EV_HEADER_ERR, _OPEN_ERR, _UPDATE_ERR */
	uint8_t cease_subcode;           /* MANUAL_STOP / AUTO_STOP; 0 = default */
};

void fsm_init(struct fsm *f, const struct fsm_config *cfg);

/*
 * Feed one event.  Writes at most max actions into out (max must be at least
 * FSM_MAX_ACTIONS; smaller is a programming error and aborts) and returns how
 * many.  arg may be NULL for events that need none.
 */
size_t fsm_event(struct fsm *f, enum fsm_event ev, const struct fsm_event_arg *arg,
		 struct fsm_action *out, size_t max);

const char *fsm_state_name(unsigned state);
const char *fsm_event_name(unsigned ev);
const char *fsm_action_name(unsigned type);

/* Negotiated timers from our configuration and the peer's proposal. */
uint16_t fsm_negotiate_hold(const struct fsm_config *cfg, uint16_t peer_hold);
uint16_t fsm_negotiate_keepalive(const struct fsm_config *cfg, uint16_t hold);

/* ------------------------------------------------------- collision (RFC 4271 s6.8) */

enum fsm_conn_dir {
	FSM_CONN_OUTBOUND = 0,      /* we initiated it */
	FSM_CONN_INBOUND = 1,       /* the peer initiated it */
};

/*
 * Which connection survives a collision: the one initiated by the speaker
 * with the higher BGP identifier (host order, unsigned).  Equal identifiers
 * (possible for eBGP, RFC 6286 s2.3): the one initiated by the speaker with
 * the larger AS number.
 */
enum fsm_conn_dir fsm_collision_winner(uint32_t local_id, uint32_t remote_id,
				       uint32_t local_as, uint32_t remote_as);

enum fsm_collision_verdict {
	FSM_COLL_NONE = 0,          /* no collision to resolve: carry on */
	FSM_COLL_CLOSE_NEW,         /* dump the connection the OPEN arrived on */
	FSM_COLL_CLOSE_OTHER,       /* dump the other connection, keep the new one */
};

/*
 * An OPEN arrived on the connection `new_dir` while the other connection to
 * the same peer is in `other_state`.  Established -> the new one goes;
 * OpenConfirm -> identifiers decide; any other state -> nothing to do yet
 * (the other connection will face this check when its own OPEN arrives).
 * The caller raises FSM_EV_OPEN_COLLISION_DUMP on the loser.
 */
enum fsm_collision_verdict fsm_collision(unsigned other_state, enum fsm_conn_dir new_dir,
					 uint32_t local_id, uint32_t remote_id,
					 uint32_t local_as, uint32_t remote_as);

#endif
