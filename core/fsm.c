/*
 * fsm.c - RFC 4271 s8 finite state machine, pure: events in, actions out.
 *
 * Threads: a struct fsm is owned by the I/O thread of its connection; these
 * functions touch nothing else (no globals, no clock, no I/O).
 *
 * Why: keeping the FSM free of sockets and timers makes every transition a
 * table row in tests/core/test_fsm.c, and lets the I/O thread stay a thin
 * loop that turns syscalls into events and actions into syscalls.  The
 * transitions follow RFC 4271 s8.2.2 state by state; deviations are listed in
 * fsm.h.  Every fall back to Idle goes through one function (to_idle) so the
 * cleanup is identical whatever the cause.
 */
#include <string.h>

#include "core/fsm.h"
#include "core/log.h"

struct emit {
	struct fsm_action *out;
	size_t n, max;
};

static struct fsm_action *push(struct emit *e, uint8_t type)
{
	if (e->n >= e->max)
		log_fatal("fsm: action array too small (%zu)", e->max);
	struct fsm_action *a = &e->out[e->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

static void act(struct emit *e, uint8_t type)
{
	push(e, type);
}

static void timer_start(struct emit *e, uint8_t timer, uint32_t seconds)
{
	struct fsm_action *a = push(e, FSM_ACT_TIMER_START);
	a->timer = timer;
	a->seconds = seconds;
}

static void timer_stop(struct emit *e, uint8_t timer)
{
	push(e, FSM_ACT_TIMER_STOP)->timer = timer;
}

static void notify(struct fsm *f, struct emit *e, uint8_t code, uint8_t subcode,
		   const uint8_t *data, size_t data_len)
{
	struct fsm_action *a = push(e, FSM_ACT_SEND_NOTIFICATION);
	a->code = code;
	a->subcode = subcode;
	if (data_len > sizeof(a->data))
		data_len = sizeof(a->data);
	if (data_len)
		memcpy(a->data, data, data_len);
	a->data_len = (uint16_t)data_len;
	f->last_notif_code = code;
	f->last_notif_subcode = subcode;
}

/* The NOTIFICATION a parser verdict asks for; fallback if the caller gave none. */
static void notify_err(struct fsm *f, struct emit *e, const struct fsm_event_arg *arg,
		       uint8_t fb_code)
{
	if (arg && arg->err && arg->err->code)
		notify(f, e, arg->err->code, arg->err->subcode, arg->err->data, arg->err->data_len);
	else
		notify(f, e, fb_code, 0, NULL, 0);
}

static void notify_cease(struct fsm *f, struct emit *e, const struct fsm_event_arg *arg)
{
	uint8_t sub = arg && arg->cease_subcode ? arg->cease_subcode : BGP_CEASE_ADMIN_SHUTDOWN;
	notify(f, e, BGP_ERR_CEASE, sub, NULL, 0);
}

enum counter_op { CNT_KEEP, CNT_INC, CNT_ZERO };

/* Common exit to Idle: stop timers, withdraw, drop TCP, free, maybe restart later. */
static void to_idle(struct fsm *f, struct emit *e, enum counter_op cnt, bool manual)
{
	timer_stop(e, FSM_TIMER_ALL);
	if (f->state == FSM_ESTABLISHED)
		act(e, FSM_ACT_SESSION_DOWN);
	act(e, FSM_ACT_CLOSE);
	act(e, FSM_ACT_RELEASE);
	if (!manual && f->cfg.idle_hold_time)
		timer_start(e, FSM_TIMER_IDLE_HOLD, f->cfg.idle_hold_time);
	if (cnt == CNT_INC)
		f->connect_retry_counter++;
	else if (cnt == CNT_ZERO)
		f->connect_retry_counter = 0;
	f->state = FSM_IDLE;
}

/* RFC 6608: the FSM error subcode names the state the surprise arrived in. */
static void unexpected(struct fsm *f, struct emit *e, bool is_msg)
{
	uint8_t sub = BGP_ERR_FSM_UNSPEC;

	if (is_msg) {
		if (f->state == FSM_OPENSENT)
			sub = BGP_ERR_FSM_OPENSENT;
		else if (f->state == FSM_OPENCONFIRM)
			sub = BGP_ERR_FSM_OPENCONFIRM;
		else if (f->state == FSM_ESTABLISHED)
			sub = BGP_ERR_FSM_ESTABLISHED;
	}
	notify(f, e, BGP_ERR_FSM, sub, NULL, 0);
	to_idle(f, e, CNT_INC, false);
}

static bool is_message_event(enum fsm_event ev)
{
	switch (ev) {
	case FSM_EV_OPEN:
	case FSM_EV_HEADER_ERR:
	case FSM_EV_OPEN_ERR:
	case FSM_EV_NOTIF_VERSION_ERR:
	case FSM_EV_NOTIF:
	case FSM_EV_KEEPALIVE:
	case FSM_EV_UPDATE:
	case FSM_EV_UPDATE_ERR:
	case FSM_EV_ROUTE_REFRESH:
		return true;
	default:
		return false;
	}
}

static bool is_start_event(enum fsm_event ev)
{
	return ev == FSM_EV_MANUAL_START || ev == FSM_EV_AUTO_START ||
	       ev == FSM_EV_MANUAL_START_PASSIVE || ev == FSM_EV_AUTO_START_PASSIVE;
}

static uint16_t connect_retry(const struct fsm *f)
{
	return f->cfg.connect_retry ? f->cfg.connect_retry : BGP_DEFAULT_CONNECT_RETRY;
}

uint16_t fsm_negotiate_hold(const struct fsm_config *cfg, uint16_t peer_hold)
{
	return cfg->hold_time < peer_hold ? cfg->hold_time : peer_hold;
}

uint16_t fsm_negotiate_keepalive(const struct fsm_config *cfg, uint16_t hold)
{
	uint16_t ka;

	if (hold == 0)
		return 0;
	ka = hold / 3;
	if (cfg->keepalive && cfg->keepalive < ka)
		ka = cfg->keepalive;
	return ka ? ka : 1;
}

void fsm_init(struct fsm *f, const struct fsm_config *cfg)
{
	memset(f, 0, sizeof(*f));
	f->cfg = *cfg;
	f->state = FSM_IDLE;
	f->prev_state = FSM_IDLE;
	f->passive = cfg->passive;
}

/* TCP is up (either direction): send OPEN and wait for the peer's. */
static void tcp_up(struct fsm *f, struct emit *e)
{
	timer_stop(e, FSM_TIMER_CONNECT_RETRY);
	act(e, FSM_ACT_SEND_OPEN);
	timer_start(e, FSM_TIMER_HOLD, FSM_OPEN_HOLD_TIME);
	f->state = FSM_OPENSENT;
}

static void st_idle(struct fsm *f, enum fsm_event ev, struct emit *e)
{
	switch (ev) {
	case FSM_EV_MANUAL_START:
	case FSM_EV_MANUAL_START_PASSIVE:
	case FSM_EV_AUTO_START:
	case FSM_EV_AUTO_START_PASSIVE:
	case FSM_EV_IDLE_HOLD_EXPIRES:
		if (ev == FSM_EV_MANUAL_START || ev == FSM_EV_MANUAL_START_PASSIVE)
			f->connect_retry_counter = 0;
		f->passive = f->cfg.passive || ev == FSM_EV_MANUAL_START_PASSIVE ||
			     ev == FSM_EV_AUTO_START_PASSIVE;
		timer_stop(e, FSM_TIMER_IDLE_HOLD);
		if (f->passive) {
			/* no ConnectRetryTimer: a passive peer never dials out */
			f->state = FSM_ACTIVE;
		} else {
			timer_start(e, FSM_TIMER_CONNECT_RETRY, connect_retry(f));
			act(e, FSM_ACT_CONNECT);
			f->state = FSM_CONNECT;
		}
		break;
	case FSM_EV_MANUAL_STOP:
		/* already down; cancel a pending automatic restart */
		timer_stop(e, FSM_TIMER_ALL);
		f->connect_retry_counter = 0;
		break;
	case FSM_EV_TCP_CR_ACKED:
	case FSM_EV_TCP_CONFIRMED:
		act(e, FSM_ACT_CLOSE);      /* Idle refuses connections */
		break;
	default:
		break;
	}
}

/* Connect and Active differ only in retry handling and TCP failure. */
static void st_connect_active(struct fsm *f, enum fsm_event ev, struct emit *e)
{
	switch (ev) {
	case FSM_EV_MANUAL_STOP:
		to_idle(f, e, CNT_ZERO, true);
		break;
	case FSM_EV_CONNECT_RETRY_EXPIRES:
		if (f->passive)
			break;
		if (f->state == FSM_CONNECT)
			act(e, FSM_ACT_CLOSE);     /* abandon the attempt in progress */
		timer_start(e, FSM_TIMER_CONNECT_RETRY, connect_retry(f));
		act(e, FSM_ACT_CONNECT);
		f->state = FSM_CONNECT;
		break;
	case FSM_EV_TCP_CR_ACKED:
	case FSM_EV_TCP_CONFIRMED:
		tcp_up(f, e);
		break;
	case FSM_EV_TCP_VALID:
		break;
	case FSM_EV_TCP_FAILS:
		/* RFC: Connect leaves the counter alone, Active increments it */
		to_idle(f, e, f->state == FSM_ACTIVE ? CNT_INC : CNT_KEEP, false);
		break;
	default:
		if (is_start_event(ev))
			break;
		to_idle(f, e, CNT_INC, false);
		break;
	}
}

static void st_opensent(struct fsm *f, enum fsm_event ev, const struct fsm_event_arg *arg,
			struct emit *e)
{
	switch (ev) {
	case FSM_EV_MANUAL_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_ZERO, true);
		break;
	case FSM_EV_AUTO_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_HOLD_EXPIRES:
		notify(f, e, BGP_ERR_HOLD, 0, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_TCP_VALID:
	case FSM_EV_TCP_CR_ACKED:
	case FSM_EV_TCP_CONFIRMED:
		break;                          /* a second connection: collision is the caller's */
	case FSM_EV_TCP_FAILS:
		act(e, FSM_ACT_CLOSE);
		timer_stop(e, FSM_TIMER_HOLD);
		if (!f->passive)
			timer_start(e, FSM_TIMER_CONNECT_RETRY, connect_retry(f));
		f->state = FSM_ACTIVE;
		break;
	case FSM_EV_OPEN:
		if (!arg || !arg->open)
			log_fatal("fsm: BGPOpen event without the OPEN");
		f->peer_hold = arg->open->hold_time;
		f->hold = fsm_negotiate_hold(&f->cfg, f->peer_hold);
		f->keepalive = fsm_negotiate_keepalive(&f->cfg, f->hold);
		timer_stop(e, FSM_TIMER_CONNECT_RETRY);
		act(e, FSM_ACT_SEND_KEEPALIVE);
		if (f->hold) {
			timer_start(e, FSM_TIMER_KEEPALIVE, f->keepalive);
			timer_start(e, FSM_TIMER_HOLD, f->hold);
		} else {
			timer_stop(e, FSM_TIMER_HOLD);   /* hold 0: no timers at all */
		}
		f->state = FSM_OPENCONFIRM;
		break;
	case FSM_EV_HEADER_ERR:
		notify_err(f, e, arg, BGP_ERR_HEADER);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_OPEN_ERR:
		notify_err(f, e, arg, BGP_ERR_OPEN);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_OPEN_COLLISION_DUMP:
		notify(f, e, BGP_ERR_CEASE, BGP_CEASE_COLLISION, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_NOTIF_VERSION_ERR:
		to_idle(f, e, CNT_KEEP, false);
		break;
	case FSM_EV_NOTIF:
		/* no point answering a NOTIFICATION with one */
		to_idle(f, e, CNT_INC, false);
		break;
	default:
		if (is_start_event(ev))
			break;
		unexpected(f, e, is_message_event(ev));
		break;
	}
}

static void st_openconfirm(struct fsm *f, enum fsm_event ev, const struct fsm_event_arg *arg,
			   struct emit *e)
{
	switch (ev) {
	case FSM_EV_MANUAL_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_ZERO, true);
		break;
	case FSM_EV_AUTO_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_HOLD_EXPIRES:
		notify(f, e, BGP_ERR_HOLD, 0, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_KEEPALIVE_EXPIRES:
		act(e, FSM_ACT_SEND_KEEPALIVE);
		if (f->keepalive)
			timer_start(e, FSM_TIMER_KEEPALIVE, f->keepalive);
		break;
	case FSM_EV_TCP_VALID:
	case FSM_EV_TCP_CR_ACKED:
	case FSM_EV_TCP_CONFIRMED:
		break;
	case FSM_EV_TCP_FAILS:
	case FSM_EV_NOTIF:
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_NOTIF_VERSION_ERR:
		to_idle(f, e, CNT_KEEP, false);
		break;
	case FSM_EV_HEADER_ERR:
		notify_err(f, e, arg, BGP_ERR_HEADER);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_OPEN_ERR:
		notify_err(f, e, arg, BGP_ERR_OPEN);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_OPEN_COLLISION_DUMP:
		notify(f, e, BGP_ERR_CEASE, BGP_CEASE_COLLISION, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_KEEPALIVE:
		if (f->hold)
			timer_start(e, FSM_TIMER_HOLD, f->hold);
		act(e, FSM_ACT_SESSION_UP);
		f->state = FSM_ESTABLISHED;
		break;
	default:
		if (is_start_event(ev))
			break;
		unexpected(f, e, is_message_event(ev));
		break;
	}
}

static void st_established(struct fsm *f, enum fsm_event ev, const struct fsm_event_arg *arg,
			   struct emit *e)
{
	switch (ev) {
	case FSM_EV_MANUAL_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_ZERO, true);
		break;
	case FSM_EV_AUTO_STOP:
		notify_cease(f, e, arg);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_HOLD_EXPIRES:
		notify(f, e, BGP_ERR_HOLD, 0, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_KEEPALIVE_EXPIRES:
		act(e, FSM_ACT_SEND_KEEPALIVE);
		if (f->keepalive)
			timer_start(e, FSM_TIMER_KEEPALIVE, f->keepalive);
		break;
	case FSM_EV_TCP_VALID:
	case FSM_EV_TCP_CR_ACKED:
	case FSM_EV_TCP_CONFIRMED:
		break;
	case FSM_EV_TCP_FAILS:
	case FSM_EV_NOTIF:
	case FSM_EV_NOTIF_VERSION_ERR:
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_OPEN_COLLISION_DUMP:
		notify(f, e, BGP_ERR_CEASE, BGP_CEASE_COLLISION, NULL, 0);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_KEEPALIVE:
	case FSM_EV_UPDATE:
	case FSM_EV_ROUTE_REFRESH:
		if (f->hold)
			timer_start(e, FSM_TIMER_HOLD, f->hold);
		break;
	case FSM_EV_UPDATE_ERR:
		notify_err(f, e, arg, BGP_ERR_UPDATE);
		to_idle(f, e, CNT_INC, false);
		break;
	case FSM_EV_HEADER_ERR:
		notify_err(f, e, arg, BGP_ERR_HEADER);
		to_idle(f, e, CNT_INC, false);
		break;
	default:
		if (is_start_event(ev))
			break;
		unexpected(f, e, is_message_event(ev));
		break;
	}
}

size_t fsm_event(struct fsm *f, enum fsm_event ev, const struct fsm_event_arg *arg,
		 struct fsm_action *out, size_t max)
{
	struct emit e = { out, 0, max };
	uint8_t before = f->state;

	if (max < FSM_MAX_ACTIONS)
		log_fatal("fsm: caller passed %zu action slots, need %d", max, FSM_MAX_ACTIONS);
	f->last_event = (uint8_t)ev;
	switch (f->state) {
	case FSM_IDLE:
		st_idle(f, ev, &e);
		break;
	case FSM_CONNECT:
	case FSM_ACTIVE:
		st_connect_active(f, ev, &e);
		break;
	case FSM_OPENSENT:
		st_opensent(f, ev, arg, &e);
		break;
	case FSM_OPENCONFIRM:
		st_openconfirm(f, ev, arg, &e);
		break;
	case FSM_ESTABLISHED:
		st_established(f, ev, arg, &e);
		break;
	default:
		log_fatal("fsm: corrupt state %u", f->state);
	}
	if (f->state != before)
		f->prev_state = before;
	return e.n;
}

/* ---------------------------------------------------------------- collisions */

enum fsm_conn_dir fsm_collision_winner(uint32_t local_id, uint32_t remote_id,
				       uint32_t local_as, uint32_t remote_as)
{
	if (local_id != remote_id)
		return local_id > remote_id ? FSM_CONN_OUTBOUND : FSM_CONN_INBOUND;
	return local_as > remote_as ? FSM_CONN_OUTBOUND : FSM_CONN_INBOUND;
}

enum fsm_collision_verdict fsm_collision(unsigned other_state, enum fsm_conn_dir new_dir,
					 uint32_t local_id, uint32_t remote_id,
					 uint32_t local_as, uint32_t remote_as)
{
	if (other_state == FSM_ESTABLISHED)
		return FSM_COLL_CLOSE_NEW;
	if (other_state != FSM_OPENCONFIRM)
		return FSM_COLL_NONE;
	return fsm_collision_winner(local_id, remote_id, local_as, remote_as) == new_dir ?
		FSM_COLL_CLOSE_OTHER : FSM_COLL_CLOSE_NEW;
}

/* ---------------------------------------------------------------- names */

const char *fsm_state_name(unsigned state)
{
	static const char *const names[FSM_STATE_COUNT] = {
		"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established",
	};
	return state < FSM_STATE_COUNT ? names[state] : "Unknown";
}

const char *fsm_event_name(unsigned ev)
{
	switch (ev) {
	case FSM_EV_MANUAL_START: return "ManualStart";
	case FSM_EV_MANUAL_STOP: return "ManualStop";
	case FSM_EV_AUTO_START: return "AutomaticStart";
	case FSM_EV_MANUAL_START_PASSIVE: return "ManualStart_with_PassiveTcpEstablishment";
	case FSM_EV_AUTO_START_PASSIVE: return "AutomaticStart_with_PassiveTcpEstablishment";
	case FSM_EV_AUTO_STOP: return "AutomaticStop";
	case FSM_EV_CONNECT_RETRY_EXPIRES: return "ConnectRetryTimer_Expires";
	case FSM_EV_HOLD_EXPIRES: return "HoldTimer_Expires";
	case FSM_EV_KEEPALIVE_EXPIRES: return "KeepaliveTimer_Expires";
	case FSM_EV_IDLE_HOLD_EXPIRES: return "IdleHoldTimer_Expires";
	case FSM_EV_TCP_VALID: return "TcpConnection_Valid";
	case FSM_EV_TCP_CR_ACKED: return "Tcp_CR_Acked";
	case FSM_EV_TCP_CONFIRMED: return "TcpConnectionConfirmed";
	case FSM_EV_TCP_FAILS: return "TcpConnectionFails";
	case FSM_EV_OPEN: return "BGPOpen";
	case FSM_EV_HEADER_ERR: return "BGPHeaderErr";
	case FSM_EV_OPEN_ERR: return "BGPOpenMsgErr";
	case FSM_EV_OPEN_COLLISION_DUMP: return "OpenCollisionDump";
	case FSM_EV_NOTIF_VERSION_ERR: return "NotifMsgVerErr";
	case FSM_EV_NOTIF: return "NotifMsg";
	case FSM_EV_KEEPALIVE: return "KeepAliveMsg";
	case FSM_EV_UPDATE: return "UpdateMsg";
	case FSM_EV_UPDATE_ERR: return "UpdateMsgErr";
	case FSM_EV_ROUTE_REFRESH: return "RouteRefreshMsg";
	default: return "UnknownEvent";
	}
}

const char *fsm_action_name(unsigned type)
{
	static const char *const names[] = {
		[FSM_ACT_CONNECT] = "connect",
		[FSM_ACT_CLOSE] = "close",
		[FSM_ACT_SEND_OPEN] = "send-open",
		[FSM_ACT_SEND_KEEPALIVE] = "send-keepalive",
		[FSM_ACT_SEND_NOTIFICATION] = "send-notification",
		[FSM_ACT_TIMER_START] = "timer-start",
		[FSM_ACT_TIMER_STOP] = "timer-stop",
		[FSM_ACT_SESSION_UP] = "session-up",
		[FSM_ACT_SESSION_DOWN] = "session-down",
		[FSM_ACT_RELEASE] = "release",
	};
	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "unknown";
}
