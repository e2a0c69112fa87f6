/*
 * test_fsm.c - transition-table tests for core/fsm.c (RFC 4271 s8.2.2).
 *
 * Single-threaded.  Each row puts an FSM in a state (set directly: the FSM is
 * pure data), feeds one event and compares the next state, the connect-retry
 * counter and the exact action list, written as a compact string such as
 * "notif:6/2 stop:all down close release".  Scenario tests then walk whole
 * sessions, and a bounded random walk checks the invariants on any sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/fsm.h"

static const char *timer_tag(unsigned t)
{
	switch (t) {
	case FSM_TIMER_CONNECT_RETRY: return "cr";
	case FSM_TIMER_HOLD: return "hold";
	case FSM_TIMER_KEEPALIVE: return "ka";
	case FSM_TIMER_IDLE_HOLD: return "idle";
	case FSM_TIMER_ALL: return "all";
	default: return "?";
	}
}

static void fmt_actions(const struct fsm_action *a, size_t n, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char one[256];
		switch (a[i].type) {
		case FSM_ACT_CONNECT: snprintf(one, sizeof(one), "connect"); break;
		case FSM_ACT_CLOSE: snprintf(one, sizeof(one), "close"); break;
		case FSM_ACT_SEND_OPEN: snprintf(one, sizeof(one), "open"); break;
		case FSM_ACT_SEND_KEEPALIVE: snprintf(one, sizeof(one), "ka"); break;
		case FSM_ACT_SEND_NOTIFICATION: {
			int k = snprintf(one, sizeof(one), "notif:%u/%u", a[i].code, a[i].subcode);
			if (a[i].data_len) {
				k += snprintf(one + k, sizeof(one) - (size_t)k, ":");
				for (unsigned d = 0; d < a[i].data_len && k < 200; d++)
					k += snprintf(one + k, sizeof(one) - (size_t)k, "%02x", a[i].data[d]);
			}
			break;
		}
		case FSM_ACT_TIMER_START:
			snprintf(one, sizeof(one), "start:%s=%u", timer_tag(a[i].timer), a[i].seconds);
			break;
		case FSM_ACT_TIMER_STOP: snprintf(one, sizeof(one), "stop:%s", timer_tag(a[i].timer)); break;
		case FSM_ACT_SESSION_UP: snprintf(one, sizeof(one), "up"); break;
		case FSM_ACT_SESSION_DOWN: snprintf(one, sizeof(one), "down"); break;
		case FSM_ACT_RELEASE: snprintf(one, sizeof(one), "release"); break;
		default: snprintf(one, sizeof(one), "BAD%u", a[i].type); break;
		}
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", off ? " " : "", one);
	}
}

/* ---------------------------------------------------------------- table */

enum arg_kind {
	A_NONE, A_OPEN90, A_OPEN20, A_OPEN3, A_OPEN0,
	A_ERR_HDR_LEN, A_ERR_HDR_SYNC, A_ERR_HDR_TYPE, A_ERR_OPEN_AS, A_ERR_OPEN_ID, A_ERR_UPD,
	A_CEASE1, A_CEASE3,
};

struct row {
	uint8_t state;
	uint8_t ev;
	uint8_t arg;
	uint16_t hold;          /* negotiated hold preset for OpenConfirm/Established */
	uint16_t cfg_hold;      /* 0 means default 90; use NOHOLD for a configured 0 */
	uint16_t cfg_ka;
	uint16_t idle_hold;
	bool passive;
	uint8_t next;
	uint32_t counter;       /* expected counter, preset is 5 */
	const char *actions;
};
#define NOHOLD 0xffff

#define I FSM_IDLE
#define C FSM_CONNECT
#define A FSM_ACTIVE
#define S FSM_OPENSENT
#define O FSM_OPENCONFIRM
#define E FSM_ESTABLISHED

#define DOWN "stop:all close release"
#define DOWNE "stop:all down close release"

static const struct row rows[] = {
	/* ---- Idle ---- */
	{ I, FSM_EV_MANUAL_START, A_NONE, 0, 0, 0, 0, false, C, 0, "stop:idle start:cr=30 connect" },
	{ I, FSM_EV_AUTO_START, A_NONE, 0, 0, 0, 0, false, C, 5, "stop:idle start:cr=30 connect" },
	{ I, FSM_EV_MANUAL_START_PASSIVE, A_NONE, 0, 0, 0, 0, false, A, 0, "stop:idle" },
	{ I, FSM_EV_AUTO_START_PASSIVE, A_NONE, 0, 0, 0, 0, false, A, 5, "stop:idle" },
	{ I, FSM_EV_MANUAL_START, A_NONE, 0, 0, 0, 0, true, A, 0, "stop:idle" },
	{ I, FSM_EV_IDLE_HOLD_EXPIRES, A_NONE, 0, 0, 0, 5, false, C, 5, "stop:idle start:cr=30 connect" },
	{ I, FSM_EV_IDLE_HOLD_EXPIRES, A_NONE, 0, 0, 0, 5, true, A, 5, "stop:idle" },
	{ I, FSM_EV_MANUAL_STOP, A_NONE, 0, 0, 0, 0, false, I, 0, "stop:all" },
	{ I, FSM_EV_TCP_CONFIRMED, A_NONE, 0, 0, 0, 0, false, I, 5, "close" },
	{ I, FSM_EV_TCP_CR_ACKED, A_NONE, 0, 0, 0, 0, false, I, 5, "close" },
	{ I, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_HOLD_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_OPEN, A_OPEN90, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_KEEPALIVE, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_UPDATE, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_NOTIF, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	{ I, FSM_EV_AUTO_STOP, A_NONE, 0, 0, 0, 0, false, I, 5, "" },
	/* ---- Connect ---- */
	{ C, FSM_EV_MANUAL_STOP, A_NONE, 0, 0, 0, 0, false, I, 0, DOWN },
	{ C, FSM_EV_MANUAL_STOP, A_NONE, 0, 0, 0, 5, false, I, 0, DOWN },
	{ C, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 0, 0, 0, 0, false, C, 5, "close start:cr=30 connect" },
	{ C, FSM_EV_TCP_CR_ACKED, A_NONE, 0, 0, 0, 0, false, S, 5, "stop:cr open start:hold=240" },
	{ C, FSM_EV_TCP_CONFIRMED, A_NONE, 0, 0, 0, 0, false, S, 5, "stop:cr open start:hold=240" },
	{ C, FSM_EV_TCP_VALID, A_NONE, 0, 0, 0, 0, false, C, 5, "" },
	{ C, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 0, false, I, 5, DOWN },
	{ C, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 5, false, I, 5, DOWN " start:idle=5" },
	{ C, FSM_EV_MANUAL_START, A_NONE, 0, 0, 0, 0, false, C, 5, "" },
	{ C, FSM_EV_AUTO_START, A_NONE, 0, 0, 0, 0, false, C, 5, "" },
	{ C, FSM_EV_HOLD_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_OPEN, A_OPEN90, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_KEEPALIVE, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_UPDATE, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_NOTIF_VERSION_ERR, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_AUTO_STOP, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ C, FSM_EV_OPEN_COLLISION_DUMP, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	/* ---- Active ---- */
	{ A, FSM_EV_MANUAL_STOP, A_NONE, 0, 0, 0, 0, false, I, 0, DOWN },
	{ A, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 0, 0, 0, 0, false, C, 5, "start:cr=30 connect" },
	{ A, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 0, 0, 0, 0, true, A, 5, "" },
	{ A, FSM_EV_TCP_CONFIRMED, A_NONE, 0, 0, 0, 0, false, S, 5, "stop:cr open start:hold=240" },
	{ A, FSM_EV_TCP_CONFIRMED, A_NONE, 0, 0, 0, 0, true, S, 5, "stop:cr open start:hold=240" },
	{ A, FSM_EV_TCP_CR_ACKED, A_NONE, 0, 0, 0, 0, false, S, 5, "stop:cr open start:hold=240" },
	{ A, FSM_EV_TCP_VALID, A_NONE, 0, 0, 0, 0, true, A, 5, "" },
	{ A, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ A, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 7, true, I, 6, DOWN " start:idle=7" },
	{ A, FSM_EV_UPDATE, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ A, FSM_EV_OPEN, A_OPEN90, 0, 0, 0, 0, true, I, 6, DOWN },
	{ A, FSM_EV_AUTO_START_PASSIVE, A_NONE, 0, 0, 0, 0, true, A, 5, "" },
	{ A, FSM_EV_HOLD_EXPIRES, A_NONE, 0, 0, 0, 0, true, I, 6, DOWN },
	/* ---- OpenSent ---- */
	{ S, FSM_EV_MANUAL_STOP, A_NONE, 0, 0, 0, 0, false, I, 0, "notif:6/2 " DOWN },
	{ S, FSM_EV_MANUAL_STOP, A_CEASE3, 0, 0, 0, 0, false, I, 0, "notif:6/3 " DOWN },
	{ S, FSM_EV_AUTO_STOP, A_CEASE1, 0, 0, 0, 0, false, I, 6, "notif:6/1 " DOWN },
	{ S, FSM_EV_HOLD_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:4/0 " DOWN },
	{ S, FSM_EV_HOLD_EXPIRES, A_NONE, 0, 0, 0, 9, false, I, 6, "notif:4/0 " DOWN " start:idle=9" },
	{ S, FSM_EV_TCP_CONFIRMED, A_NONE, 0, 0, 0, 0, false, S, 5, "" },
	{ S, FSM_EV_TCP_CR_ACKED, A_NONE, 0, 0, 0, 0, false, S, 5, "" },
	{ S, FSM_EV_TCP_VALID, A_NONE, 0, 0, 0, 0, false, S, 5, "" },
	{ S, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 0, false, A, 5, "close stop:hold start:cr=30" },
	{ S, FSM_EV_TCP_FAILS, A_NONE, 0, 0, 0, 0, true, A, 5, "close stop:hold" },
	{ S, FSM_EV_OPEN, A_OPEN90, 0, 0, 0, 0, false, O, 5, "stop:cr ka start:ka=30 start:hold=90" },
	{ S, FSM_EV_OPEN, A_OPEN20, 0, 0, 0, 0, false, O, 5, "stop:cr ka start:ka=6 start:hold=20" },
	{ S, FSM_EV_OPEN, A_OPEN3, 0, 0, 0, 0, false, O, 5, "stop:cr ka start:ka=1 start:hold=3" },
	{ S, FSM_EV_OPEN, A_OPEN0, 0, 0, 0, 0, false, O, 5, "stop:cr ka stop:hold" },
	{ S, FSM_EV_OPEN, A_OPEN90, 0, NOHOLD, 0, 0, false, O, 5, "stop:cr ka stop:hold" },
	{ S, FSM_EV_OPEN, A_OPEN90, 0, 0, 10, 0, false, O, 5, "stop:cr ka start:ka=10 start:hold=90" },
	{ S, FSM_EV_OPEN, A_OPEN20, 0, 0, 10, 0, false, O, 5, "stop:cr ka start:ka=6 start:hold=20" },
	{ S, FSM_EV_OPEN, A_OPEN90, 0, 0, 0, 0, true, O, 5, "stop:cr ka start:ka=30 start:hold=90" },
	{ S, FSM_EV_HEADER_ERR, A_ERR_HDR_LEN, 0, 0, 0, 0, false, I, 6, "notif:1/2:0012 " DOWN },
	{ S, FSM_EV_OPEN_ERR, A_ERR_OPEN_AS, 0, 0, 0, 0, false, I, 6, "notif:2/2 " DOWN },
	{ S, FSM_EV_OPEN_ERR, A_ERR_OPEN_ID, 0, 0, 0, 0, false, I, 6, "notif:2/3 " DOWN },
	{ S, FSM_EV_OPEN_ERR, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:2/0 " DOWN },
	{ S, FSM_EV_OPEN_COLLISION_DUMP, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:6/7 " DOWN },
	{ S, FSM_EV_NOTIF_VERSION_ERR, A_NONE, 0, 0, 0, 0, false, I, 5, DOWN },
	{ S, FSM_EV_NOTIF, A_NONE, 0, 0, 0, 0, false, I, 6, DOWN },
	{ S, FSM_EV_KEEPALIVE, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:5/1 " DOWN },
	{ S, FSM_EV_UPDATE, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:5/1 " DOWN },
	{ S, FSM_EV_UPDATE_ERR, A_ERR_UPD, 0, 0, 0, 0, false, I, 6, "notif:5/1 " DOWN },
	{ S, FSM_EV_ROUTE_REFRESH, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:5/1 " DOWN },
	{ S, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:5/0 " DOWN },
	{ S, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 0, 0, 0, 0, false, I, 6, "notif:5/0 " DOWN },
	{ S, FSM_EV_MANUAL_START, A_NONE, 0, 0, 0, 0, false, S, 5, "" },
	/* ---- OpenConfirm ---- */
	{ O, FSM_EV_MANUAL_STOP, A_NONE, 90, 0, 0, 0, false, I, 0, "notif:6/2 " DOWN },
	{ O, FSM_EV_MANUAL_STOP, A_NONE, 90, 0, 0, 5, false, I, 0, "notif:6/2 " DOWN },
	{ O, FSM_EV_AUTO_STOP, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:6/2 " DOWN },
	{ O, FSM_EV_HOLD_EXPIRES, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:4/0 " DOWN },
	{ O, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 90, 0, 0, 0, false, O, 5, "ka start:ka=30" },
	{ O, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 0, 0, 0, 0, false, O, 5, "ka" },
	{ O, FSM_EV_TCP_CONFIRMED, A_NONE, 90, 0, 0, 0, false, O, 5, "" },
	{ O, FSM_EV_TCP_CR_ACKED, A_NONE, 90, 0, 0, 0, false, O, 5, "" },
	{ O, FSM_EV_TCP_FAILS, A_NONE, 90, 0, 0, 0, false, I, 6, DOWN },
	{ O, FSM_EV_TCP_FAILS, A_NONE, 90, 0, 0, 5, false, I, 6, DOWN " start:idle=5" },
	{ O, FSM_EV_NOTIF, A_NONE, 90, 0, 0, 0, false, I, 6, DOWN },
	{ O, FSM_EV_NOTIF_VERSION_ERR, A_NONE, 90, 0, 0, 0, false, I, 5, DOWN },
	{ O, FSM_EV_OPEN, A_OPEN90, 90, 0, 0, 0, false, I, 6, "notif:5/2 " DOWN },
	{ O, FSM_EV_HEADER_ERR, A_ERR_HDR_SYNC, 90, 0, 0, 0, false, I, 6, "notif:1/1 " DOWN },
	{ O, FSM_EV_OPEN_ERR, A_ERR_OPEN_ID, 90, 0, 0, 0, false, I, 6, "notif:2/3 " DOWN },
	{ O, FSM_EV_OPEN_COLLISION_DUMP, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:6/7 " DOWN },
	{ O, FSM_EV_KEEPALIVE, A_NONE, 90, 0, 0, 0, false, E, 5, "start:hold=90 up" },
	{ O, FSM_EV_KEEPALIVE, A_NONE, 0, 0, 0, 0, false, E, 5, "up" },
	{ O, FSM_EV_UPDATE, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:5/2 " DOWN },
	{ O, FSM_EV_UPDATE_ERR, A_ERR_UPD, 90, 0, 0, 0, false, I, 6, "notif:5/2 " DOWN },
	{ O, FSM_EV_ROUTE_REFRESH, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:5/2 " DOWN },
	{ O, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:5/0 " DOWN },
	{ O, FSM_EV_AUTO_START, A_NONE, 90, 0, 0, 0, false, O, 5, "" },
	/* ---- Established ---- */
	{ E, FSM_EV_MANUAL_STOP, A_NONE, 90, 0, 0, 0, false, I, 0, "notif:6/2 " DOWNE },
	{ E, FSM_EV_MANUAL_STOP, A_CEASE3, 90, 0, 0, 5, false, I, 0, "notif:6/3 " DOWNE },
	{ E, FSM_EV_AUTO_STOP, A_CEASE1, 90, 0, 0, 0, false, I, 6, "notif:6/1 " DOWNE },
	{ E, FSM_EV_AUTO_STOP, A_CEASE1, 90, 0, 0, 5, false, I, 6, "notif:6/1 " DOWNE " start:idle=5" },
	{ E, FSM_EV_HOLD_EXPIRES, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:4/0 " DOWNE },
	{ E, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 90, 0, 0, 0, false, E, 5, "ka start:ka=30" },
	{ E, FSM_EV_KEEPALIVE_EXPIRES, A_NONE, 0, 0, 0, 0, false, E, 5, "ka" },
	{ E, FSM_EV_TCP_CONFIRMED, A_NONE, 90, 0, 0, 0, false, E, 5, "" },
	{ E, FSM_EV_TCP_VALID, A_NONE, 90, 0, 0, 0, false, E, 5, "" },
	{ E, FSM_EV_TCP_FAILS, A_NONE, 90, 0, 0, 0, false, I, 6, DOWNE },
	{ E, FSM_EV_NOTIF, A_NONE, 90, 0, 0, 0, false, I, 6, DOWNE },
	{ E, FSM_EV_NOTIF_VERSION_ERR, A_NONE, 90, 0, 0, 0, false, I, 6, DOWNE },
	{ E, FSM_EV_OPEN_COLLISION_DUMP, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:6/7 " DOWNE },
	{ E, FSM_EV_KEEPALIVE, A_NONE, 90, 0, 0, 0, false, E, 5, "start:hold=90" },
	{ E, FSM_EV_KEEPALIVE, A_NONE, 0, 0, 0, 0, false, E, 5, "" },
	{ E, FSM_EV_UPDATE, A_NONE, 90, 0, 0, 0, false, E, 5, "start:hold=90" },
	{ E, FSM_EV_UPDATE, A_NONE, 0, 0, 0, 0, false, E, 5, "" },
	{ E, FSM_EV_ROUTE_REFRESH, A_NONE, 90, 0, 0, 0, false, E, 5, "start:hold=90" },
	{ E, FSM_EV_UPDATE_ERR, A_ERR_UPD, 90, 0, 0, 0, false, I, 6, "notif:3/1 " DOWNE },
	{ E, FSM_EV_UPDATE_ERR, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:3/0 " DOWNE },
	{ E, FSM_EV_HEADER_ERR, A_ERR_HDR_TYPE, 90, 0, 0, 0, false, I, 6, "notif:1/3:06 " DOWNE },
	{ E, FSM_EV_OPEN, A_OPEN90, 90, 0, 0, 0, false, I, 6, "notif:5/3 " DOWNE },
	{ E, FSM_EV_OPEN_ERR, A_ERR_OPEN_AS, 90, 0, 0, 0, false, I, 6, "notif:5/3 " DOWNE },
	{ E, FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:5/0 " DOWNE },
	{ E, FSM_EV_IDLE_HOLD_EXPIRES, A_NONE, 90, 0, 0, 0, false, I, 6, "notif:5/0 " DOWNE },
	{ E, FSM_EV_MANUAL_START, A_NONE, 90, 0, 0, 0, false, E, 5, "" },
	{ E, FSM_EV_MANUAL_START_PASSIVE, A_NONE, 90, 0, 0, 0, false, E, 5, "" },
};

static struct msg_open open_with_hold(uint16_t hold)
{
	struct msg_open o;
	memset(&o, 0, sizeof(o));
	o.version = 4;
	o.my_as = 65001;
	o.hold_time = hold;
	o.bgp_id = 0x0a000002;
	return o;
}

static struct msg_error mkerr(uint8_t code, uint8_t sub, const uint8_t *d, uint16_t dl)
{
	struct msg_error e;
	memset(&e, 0, sizeof(e));
	e.action = MSG_SESSION_RESET;
	e.code = code;
	e.subcode = sub;
	if (dl)
		memcpy(e.data, d, dl);
	e.data_len = dl;
	return e;
}

static void make_arg(enum arg_kind k, struct fsm_event_arg *arg, struct msg_open *o, struct msg_error *e)
{
	static const uint8_t len18[2] = { 0x00, 0x12 }, type6[1] = { 6 };

	memset(arg, 0, sizeof(*arg));
	switch (k) {
	case A_NONE: break;
	case A_OPEN90: *o = open_with_hold(90); arg->open = o; break;
	case A_OPEN20: *o = open_with_hold(20); arg->open = o; break;
	case A_OPEN3: *o = open_with_hold(3); arg->open = o; break;
	case A_OPEN0: *o = open_with_hold(0); arg->open = o; break;
	case A_ERR_HDR_LEN: *e = mkerr(1, 2, len18, 2); arg->err = e; break;
	case A_ERR_HDR_SYNC: *e = mkerr(1, 1, NULL, 0); arg->err = e; break;
	case A_ERR_HDR_TYPE: *e = mkerr(1, 3, type6, 1); arg->err = e; break;
	case A_ERR_OPEN_AS: *e = mkerr(2, 2, NULL, 0); arg->err = e; break;
	case A_ERR_OPEN_ID: *e = mkerr(2, 3, NULL, 0); arg->err = e; break;
	case A_ERR_UPD: *e = mkerr(3, 1, NULL, 0); arg->err = e; break;
	case A_CEASE1: arg->cease_subcode = BGP_CEASE_MAX_PREFIX; break;
	case A_CEASE3: arg->cease_subcode = BGP_CEASE_PEER_DECONFIG; break;
	}
}

static void test_transition_table(void **state)
{
	unsigned covered[FSM_STATE_COUNT] = { 0 };
	(void)state;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct fsm_config cfg = {
			.hold_time = r->cfg_hold == NOHOLD ? 0 : r->cfg_hold ? r->cfg_hold : 90,
			.keepalive = r->cfg_ka,
			.connect_retry = 30,
			.idle_hold_time = r->idle_hold,
			.passive = r->passive,
		};
		struct fsm f;
		struct fsm_action act[FSM_MAX_ACTIONS];
		struct fsm_event_arg arg;
		struct msg_open o;
		struct msg_error e;
		char got[1024];

		fsm_init(&f, &cfg);
		f.state = r->state;
		f.hold = r->hold;
		f.keepalive = fsm_negotiate_keepalive(&cfg, r->hold);
		f.connect_retry_counter = 5;
		make_arg(r->arg, &arg, &o, &e);
		size_t n = fsm_event(&f, r->ev, &arg, act, FSM_MAX_ACTIONS);
		fmt_actions(act, n, got, sizeof(got));
		if (f.state != r->next || strcmp(got, r->actions) != 0 || f.connect_retry_counter != r->counter)
			fail_msg("row %zu: %s + %s: got %s [%s] counter %u, want %s [%s] counter %u", i,
				 fsm_state_name(r->state), fsm_event_name(r->ev), fsm_state_name(f.state), got,
				 f.connect_retry_counter, fsm_state_name(r->next), r->actions, r->counter);
		if (r->next != r->state)
			assert_int_equal(f.prev_state, r->state);
		assert_int_equal(f.last_event, r->ev);
		covered[r->state]++;
	}
	for (unsigned s = 0; s < FSM_STATE_COUNT; s++)
		assert_true(covered[s] >= 8);
	print_message("%zu transition rows\n", sizeof(rows) / sizeof(rows[0]));
}

/* ---------------------------------------------------------------- scenarios */

struct step {
	uint8_t ev;
	uint8_t arg;
	uint8_t next;
	const char *actions;
};

static void run_steps(const struct fsm_config *cfg, const struct step *st, size_t n, struct fsm *f)
{
	fsm_init(f, cfg);
	for (size_t i = 0; i < n; i++) {
		struct fsm_action act[FSM_MAX_ACTIONS];
		struct fsm_event_arg arg;
		struct msg_open o;
		struct msg_error e;
		char got[1024];

		make_arg(st[i].arg, &arg, &o, &e);
		size_t k = fsm_event(f, st[i].ev, &arg, act, FSM_MAX_ACTIONS);
		fmt_actions(act, k, got, sizeof(got));
		if (f->state != st[i].next || strcmp(got, st[i].actions) != 0)
			fail_msg("step %zu (%s): got %s [%s], want %s [%s]", i, fsm_event_name(st[i].ev),
				 fsm_state_name(f->state), got, fsm_state_name(st[i].next), st[i].actions);
	}
}

static void test_scenario_active(void **state)
{
	static const struct step steps[] = {
		{ FSM_EV_MANUAL_START, A_NONE, C, "stop:idle start:cr=10 connect" },
		{ FSM_EV_CONNECT_RETRY_EXPIRES, A_NONE, C, "close start:cr=10 connect" },
		{ FSM_EV_TCP_CR_ACKED, A_NONE, S, "stop:cr open start:hold=240" },
		{ FSM_EV_OPEN, A_OPEN90, O, "stop:cr ka start:ka=20 start:hold=60" },
		{ FSM_EV_KEEPALIVE, A_NONE, E, "start:hold=60 up" },
		{ FSM_EV_UPDATE, A_NONE, E, "start:hold=60" },
		{ FSM_EV_KEEPALIVE_EXPIRES, A_NONE, E, "ka start:ka=20" },
		{ FSM_EV_HOLD_EXPIRES, A_NONE, I, "notif:4/0 " DOWNE " start:idle=3" },
		{ FSM_EV_IDLE_HOLD_EXPIRES, A_NONE, C, "stop:idle start:cr=10 connect" },
		{ FSM_EV_TCP_FAILS, A_NONE, I, DOWN " start:idle=3" },
		{ FSM_EV_MANUAL_STOP, A_NONE, I, "stop:all" },
	};
	struct fsm_config cfg = { .hold_time = 60, .connect_retry = 10, .idle_hold_time = 3 };
	struct fsm f;
	(void)state;
	run_steps(&cfg, steps, sizeof(steps) / sizeof(steps[0]), &f);
	assert_int_equal(f.hold, 60);
	assert_int_equal(f.peer_hold, 90);
	assert_int_equal(f.connect_retry_counter, 0);
	assert_int_equal(f.last_notif_code, 4);
}

static void test_scenario_passive_hold0(void **state)
{
	static const struct step steps[] = {
		{ FSM_EV_MANUAL_START, A_NONE, A, "stop:idle" },
		{ FSM_EV_TCP_CONFIRMED, A_NONE, S, "stop:cr open start:hold=240" },
		{ FSM_EV_TCP_FAILS, A_NONE, A, "close stop:hold" },
		{ FSM_EV_TCP_CONFIRMED, A_NONE, S, "stop:cr open start:hold=240" },
		{ FSM_EV_OPEN, A_OPEN0, O, "stop:cr ka stop:hold" },
		{ FSM_EV_KEEPALIVE, A_NONE, E, "up" },
		{ FSM_EV_UPDATE, A_NONE, E, "" },
		{ FSM_EV_ROUTE_REFRESH, A_NONE, E, "" },
		{ FSM_EV_NOTIF, A_NONE, I, DOWNE },
		{ FSM_EV_AUTO_START, A_NONE, A, "stop:idle" },
	};
	struct fsm_config cfg = { .hold_time = 90, .passive = true };
	struct fsm f;
	(void)state;
	run_steps(&cfg, steps, sizeof(steps) / sizeof(steps[0]), &f);
	assert_int_equal(f.hold, 0);
	assert_int_equal(f.keepalive, 0);
	assert_true(f.passive);
}

static void test_scenario_collision(void **state)
{
	/* we (10.0.0.9) dialled out and the peer (10.0.0.1) dialled in: ours wins */
	static const struct step out_conn[] = {
		{ FSM_EV_MANUAL_START, A_NONE, C, "stop:idle start:cr=30 connect" },
		{ FSM_EV_TCP_CR_ACKED, A_NONE, S, "stop:cr open start:hold=240" },
		{ FSM_EV_OPEN, A_OPEN90, O, "stop:cr ka start:ka=30 start:hold=90" },
	};
	static const struct step in_conn[] = {
		{ FSM_EV_MANUAL_START_PASSIVE, A_NONE, A, "stop:idle" },
		{ FSM_EV_TCP_CONFIRMED, A_NONE, S, "stop:cr open start:hold=240" },
		{ FSM_EV_OPEN_COLLISION_DUMP, A_NONE, I, "notif:6/7 " DOWN },
	};
	struct fsm_config cfg = { .hold_time = 90, .connect_retry = 30 };
	struct fsm fo, fi;
	(void)state;

	run_steps(&cfg, out_conn, 3, &fo);
	/* the OPEN arrives on the inbound connection while outbound is in OpenConfirm */
	assert_int_equal(fsm_collision(fo.state, FSM_CONN_INBOUND, 0x0a000009, 0x0a000001, 65001, 65001),
			 FSM_COLL_CLOSE_NEW);
	run_steps(&cfg, in_conn, 3, &fi);
	assert_int_equal(fo.state, FSM_OPENCONFIRM);
}

static void test_collision_table(void **state)
{
	static const struct {
		uint8_t other;
		uint8_t dir;
		uint32_t lid, rid, las, ras;
		uint8_t want;
	} rows2[] = {
		{ O, FSM_CONN_INBOUND, 9, 1, 1, 1, FSM_COLL_CLOSE_NEW },     /* local higher: keep ours */
		{ O, FSM_CONN_OUTBOUND, 9, 1, 1, 1, FSM_COLL_CLOSE_OTHER },  /* new is ours: keep it */
		{ O, FSM_CONN_INBOUND, 1, 9, 1, 1, FSM_COLL_CLOSE_OTHER },   /* remote higher: keep theirs */
		{ O, FSM_CONN_OUTBOUND, 1, 9, 1, 1, FSM_COLL_CLOSE_NEW },
		/* unsigned compare in host order: 200.0.0.1 > 10.0.0.1 */
		{ O, FSM_CONN_INBOUND, 0xc8000001u, 0x0a000001u, 1, 1, FSM_COLL_CLOSE_NEW },
		{ O, FSM_CONN_INBOUND, 0x0a000001u, 0xc8000001u, 1, 1, FSM_COLL_CLOSE_OTHER },
		/* equal ids (eBGP): larger AS wins (RFC 6286) */
		{ O, FSM_CONN_INBOUND, 5, 5, 65002, 65001, FSM_COLL_CLOSE_NEW },
		{ O, FSM_CONN_INBOUND, 5, 5, 65001, 65002, FSM_COLL_CLOSE_OTHER },
		/* Established always keeps the existing session */
		{ E, FSM_CONN_INBOUND, 1, 9, 1, 1, FSM_COLL_CLOSE_NEW },
		{ E, FSM_CONN_OUTBOUND, 9, 1, 1, 1, FSM_COLL_CLOSE_NEW },
		/* other states: nothing yet */
		{ S, FSM_CONN_INBOUND, 1, 9, 1, 1, FSM_COLL_NONE },
		{ A, FSM_CONN_INBOUND, 1, 9, 1, 1, FSM_COLL_NONE },
		{ C, FSM_CONN_INBOUND, 1, 9, 1, 1, FSM_COLL_NONE },
		{ I, FSM_CONN_OUTBOUND, 1, 9, 1, 1, FSM_COLL_NONE },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows2) / sizeof(rows2[0]); i++)
		assert_int_equal(fsm_collision(rows2[i].other, rows2[i].dir, rows2[i].lid, rows2[i].rid,
					       rows2[i].las, rows2[i].ras), rows2[i].want);
	assert_int_equal(fsm_collision_winner(2, 1, 0, 0), FSM_CONN_OUTBOUND);
	assert_int_equal(fsm_collision_winner(1, 2, 0, 0), FSM_CONN_INBOUND);
}

static void test_negotiate(void **state)
{
	static const struct {
		uint16_t cfg_hold, cfg_ka, peer;
		uint16_t hold, ka;
	} r[] = {
		{ 90, 0, 90, 90, 30 }, { 90, 0, 180, 90, 30 }, { 90, 0, 9, 9, 3 }, { 90, 0, 3, 3, 1 },
		{ 90, 0, 4, 4, 1 }, { 90, 0, 0, 0, 0 }, { 0, 0, 90, 0, 0 }, { 90, 10, 90, 90, 10 },
		{ 90, 40, 90, 90, 30 }, { 240, 0, 65535, 240, 80 }, { 65535, 0, 65535, 65535, 21845 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct fsm_config cfg = { .hold_time = r[i].cfg_hold, .keepalive = r[i].cfg_ka };
		uint16_t h = fsm_negotiate_hold(&cfg, r[i].peer);
		assert_int_equal(h, r[i].hold);
		assert_int_equal(fsm_negotiate_keepalive(&cfg, h), r[i].ka);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(fsm_state_name(FSM_IDLE), "Idle");
	assert_string_equal(fsm_state_name(FSM_ESTABLISHED), "Established");
	assert_string_equal(fsm_state_name(99), "Unknown");
	assert_string_equal(fsm_event_name(FSM_EV_OPEN), "BGPOpen");
	assert_string_equal(fsm_event_name(77), "UnknownEvent");
	assert_string_equal(fsm_action_name(FSM_ACT_SESSION_UP), "session-up");
	assert_string_equal(fsm_action_name(0), "unknown");
}

/* Any event sequence: valid state, bounded actions, Idle entries close the connection. */
static void test_random_walk(void **state)
{
	static const uint8_t evs[] = {
		1, 2, 3, 4, 5, 8, 9, 10, 11, 13, 14, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 40, 99,
	};
	uint32_t seed = 12345;
	unsigned reached[FSM_STATE_COUNT] = { 0 };
	(void)state;

	for (unsigned run = 0; run < 200; run++) {
		struct fsm_config cfg = { .hold_time = (uint16_t)(run % 3 ? 90 : 0), .connect_retry = 5,
					  .idle_hold_time = (uint16_t)(run % 2), .passive = run % 5 == 0 };
		struct fsm f;
		fsm_init(&f, &cfg);
		for (unsigned step = 0; step < 200; step++) {
			struct fsm_action act[FSM_MAX_ACTIONS];
			struct fsm_event_arg arg;
			struct msg_open o;
			struct msg_error e;
			seed = seed * 1103515245u + 12345u;
			uint8_t ev = evs[(seed >> 16) % sizeof(evs)];
			make_arg(ev == FSM_EV_OPEN ? A_OPEN90 : (enum arg_kind)((seed >> 8) % 13 > 4 ?
				 (seed >> 8) % 13 : 0), &arg, &o, &e);
			unsigned before = f.state;
			size_t n = fsm_event(&f, ev, &arg, act, FSM_MAX_ACTIONS);
			assert_true(n <= FSM_MAX_ACTIONS);
			assert_true(f.state < FSM_STATE_COUNT);
			reached[f.state]++;
			bool closed = false, up = false, down = false;
			for (size_t k = 0; k < n; k++) {
				assert_true(act[k].type >= FSM_ACT_CONNECT && act[k].type <= FSM_ACT_RELEASE);
				closed |= act[k].type == FSM_ACT_CLOSE;
				up |= act[k].type == FSM_ACT_SESSION_UP;
				down |= act[k].type == FSM_ACT_SESSION_DOWN;
				if (act[k].type == FSM_ACT_TIMER_START)
					assert_true(act[k].seconds > 0);
				/* no keepalive or hold timers with hold time 0 after OpenSent */
				if (act[k].type == FSM_ACT_TIMER_START && cfg.hold_time == 0 &&
				    before >= FSM_OPENSENT && before != FSM_OPENSENT)
					assert_true(act[k].timer != FSM_TIMER_KEEPALIVE);
			}
			if (before != FSM_IDLE && f.state == FSM_IDLE)
				assert_true(closed);
			assert_int_equal(up, before != FSM_ESTABLISHED && f.state == FSM_ESTABLISHED);
			assert_int_equal(down, before == FSM_ESTABLISHED && f.state != FSM_ESTABLISHED);
		}
	}
	for (unsigned s = 0; s < FSM_STATE_COUNT; s++)
		assert_true(reached[s] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_scenario_active),
		cmocka_unit_test(test_scenario_passive_hold0),
		cmocka_unit_test(test_scenario_collision),
		cmocka_unit_test(test_collision_table),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_random_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
