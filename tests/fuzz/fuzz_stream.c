/*
 * fuzz_stream.c - libFuzzer target for a received byte stream: msg_frame
 * splits it into messages and each goes to its parser (OPEN, UPDATE,
 * NOTIFICATION, ROUTE-REFRESH), as the I/O thread does.
 *
 * The first input byte picks the session the UPDATE parser sees (4-octet AS,
 * ADD-PATH per family, extended messages, eBGP, route-server client); the rest
 * is the stream.  Each framed message is copied to an exact-size heap buffer
 * so ASan catches any read past it.  Parsed UPDATEs are walked completely
 * (NLRI iterators, canonical attribute blob) because that is what the RIB
 * does next with them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void walk_nlri(const struct msg_nlri *n)
{
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	unsigned k = 0;

	if (!n->p || !n->len)
		return;
	msg_nlri_iter_init(&it, n);
	while (msg_nlri_next(&it, &p)) {
		CHECK(p.family < BGP_FAM_COUNT);
		CHECK(p.len <= bgp_family_maxlen(p.family));
		CHECK(++k <= 65536);
	}
}

static void do_update(const uint8_t *m, size_t len, const struct msg_session *s)
{
	static uint8_t scratch[MSG_SCRATCH_SIZE];
	struct msg_update u;
	struct msg_error err;

	CHECK(msg_update_parse(m, len, s, scratch, &u, &err) == 0);
	CHECK(err.action <= MSG_SESSION_RESET);
	CHECK(err.data_len <= MSG_ERR_DATA_MAX);
	if (err.action == MSG_SESSION_RESET)
		return;
	walk_nlri(&u.withdrawn);
	walk_nlri(&u.mp_unreach);
	walk_nlri(&u.nlri);
	walk_nlri(&u.mp_reach);
	if (u.attrs && u.attrs_len) {
		struct msg_attr_iter it;
		struct msg_attr a;
		int last = -1;
		CHECK(u.attrs >= scratch && u.attrs + u.attrs_len <= scratch + sizeof(scratch));
		msg_attr_iter_init(&it, u.attrs, u.attrs_len);
		while (msg_attr_next(&it, &a)) {
			CHECK((int)a.type > last);     /* canonical: sorted, unique */
			last = a.type;
			CHECK(a.type != BGP_ATTR_NEXT_HOP && a.type != BGP_ATTR_MP_REACH_NLRI &&
			      a.type != BGP_ATTR_MP_UNREACH_NLRI && a.type != BGP_ATTR_AS4_PATH &&
			      a.type != BGP_ATTR_AS4_AGGREGATOR);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_session s;
	size_t off = 1;

	if (size < 1)
		return 0;
	memset(&s, 0, sizeof(s));
	s.as4 = data[0] & 1;
	s.addpath_rx[BGP_FAM_IPV4] = data[0] & 2;
	s.addpath_rx[BGP_FAM_IPV6] = data[0] & 4;
	s.max_msg = (data[0] & 8) ? BGP_MAX_EXT_MSG : BGP_MAX_MSG;
	s.ebgp = data[0] & 16;
	s.rs_client = data[0] & 32;
	s.family[BGP_FAM_IPV4] = true;
	s.family[BGP_FAM_IPV6] = !(data[0] & 64);
	s.peer_as = s.ebgp ? 65002 : 65001;
	s.local_as = 65001;

	for (unsigned guard = 0; off < size && guard < 4096; guard++) {
		struct msg_error err;
		int n = msg_frame(data + off, size - off, s.max_msg, &err);
		if (n < 0) {
			CHECK(n == -1 && err.code == BGP_ERR_HEADER);
			CHECK(err.subcode >= 1 && err.subcode <= 3);
			break;
		}
		if (n == 0)
			break;
		CHECK((size_t)n <= size - off && n >= BGP_HDR_LEN && (size_t)n <= s.max_msg);

		uint8_t *m = malloc((size_t)n);
		if (!m)
			break;
		memcpy(m, data + off, (size_t)n);
		switch (m[18]) {
		case BGP_MSG_OPEN: {
			struct msg_open o;
			(void)msg_open_parse(m, (size_t)n, &o, &err);
			break;
		}
		case BGP_MSG_UPDATE:
			do_update(m, (size_t)n, &s);
			break;
		case BGP_MSG_NOTIFICATION: {
			uint8_t code, sub;
			const uint8_t *d;
			size_t dl;
			CHECK(msg_notification_parse(m, (size_t)n, &code, &sub, &d, &dl) == 0);
			CHECK(d + dl == m + n);
			/* RFC 9003 text: what is kept must be printable UTF-8, within the buffer */
			char sc[64];
			int r = msg_shutdown_comm(code, sub, d, dl, sc, sizeof(sc));
			CHECK(r >= -1 && r <= 1);
			size_t sl = strnlen(sc, sizeof(sc));
			CHECK(sl < sizeof(sc));
			for (size_t i = 0; i < sl; i++)
				CHECK((uint8_t)sc[i] >= 0x20 && (uint8_t)sc[i] != 0x7F);
			CHECK(r == 1 || sl == 0);
			break;
		}
		case BGP_MSG_KEEPALIVE:
			CHECK(n == BGP_HDR_LEN);
			break;
		case BGP_MSG_ROUTE_REFRESH: {
			unsigned fam;
			uint8_t st;
			(void)msg_route_refresh_parse(m, (size_t)n, &fam, &st, &err);
			break;
		}
		default:
			CHECK(0);
		}
		free(m);
		off += (size_t)n;
	}
	return 0;
}
