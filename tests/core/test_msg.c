/*
 * test_msg.c - unit tests for core/msg.c (framing, OPEN, KEEPALIVE,
 * NOTIFICATION, ROUTE-REFRESH) and core/names.c.
 *
 * Single-threaded.  Round trips are exhaustive over capability combinations;
 * malformed input is one table row per case with the exact NOTIFICATION
 * code/subcode/data expected, so a new RFC corner is one line to add.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/bgp.h"
#include "core/msg.h"

/* ---------------------------------------------------------------- helpers */

static size_t hex2bin(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (const char *p = hex; *p; p++) {
		int v;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			continue;           /* spaces and separators */
		if (hi < 0) {
			hi = v;
		} else {
			assert_true(n < cap);
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	return n;
}

/* A message from a body: header (correct length) + body. */
static size_t build(uint8_t type, const char *body, uint8_t *out, size_t cap)
{
	size_t n = hex2bin(body, out + BGP_HDR_LEN, cap - BGP_HDR_LEN);
	msg_put_header(out, (uint16_t)(n + BGP_HDR_LEN), type);
	return n + BGP_HDR_LEN;
}

#define MARKER "ffffffffffffffffffffffffffffffff "
/* OPEN fixed part: version 4, AS 65003, hold 180, id 10.0.0.1 */
#define OPEN_FIXED "04 fdeb 00b4 0a000001 "

/* ---------------------------------------------------------------- names */

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(bgp_err_name(BGP_ERR_CEASE), "Cease");
	assert_string_equal(bgp_suberr_name(BGP_ERR_CEASE, BGP_CEASE_ADMIN_RESET), "Administrative Reset");
	assert_string_equal(bgp_suberr_name(BGP_ERR_CEASE, 10), "BFD Down");
	assert_string_equal(bgp_suberr_name(BGP_ERR_FSM, 3), "Receive Unexpected Message in Established State");
	assert_string_equal(bgp_suberr_name(BGP_ERR_OPEN, BGP_ERR_OPEN_ROLE), "Role Mismatch");
	assert_string_equal(bgp_suberr_name(BGP_ERR_ROUTE_REFRESH, 1), "Invalid Message Length");
	assert_string_equal(bgp_err_name(BGP_ERR_SEND_HOLD), "Send Hold Timer Expired");
	assert_string_equal(bgp_suberr_name(BGP_ERR_HEADER, 99), "Unknown Subcode");
	assert_string_equal(bgp_suberr_name(200, 1), "Unknown Subcode");
	assert_string_equal(bgp_err_name(0), "Unknown Error Code");
	assert_string_equal(bgp_err_name(255), "Unknown Error Code");
	assert_string_equal(bgp_msg_type_name(BGP_MSG_ROUTE_REFRESH), "ROUTE-REFRESH");
	assert_string_equal(bgp_msg_type_name(9), "UNKNOWN");
	assert_string_equal(bgp_attr_name(BGP_ATTR_LARGE_COMMUNITY), "LARGE_COMMUNITY");
	assert_string_equal(bgp_attr_name(255), "UNKNOWN_ATTR");
	assert_string_equal(bgp_capa_name(BGP_CAPA_ADD_PATH), "ADD-PATH");
	assert_string_equal(bgp_capa_name(200), "Unknown Capability");
	/* never NULL, whatever the input */
	for (unsigned c = 0; c < 256; c++) {
		assert_non_null(bgp_err_name((uint8_t)c));
		assert_non_null(bgp_msg_type_name((uint8_t)c));
		assert_non_null(bgp_attr_name((uint8_t)c));
		assert_non_null(bgp_capa_name((uint8_t)c));
		for (unsigned s = 0; s < 256; s += 7)
			assert_non_null(bgp_suberr_name((uint8_t)c, (uint8_t)s));
	}
}

static void test_prefix_text(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
	} rows[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8" },
		{ "0.0.0.0/0", 0, "0.0.0.0/0" },
		{ "192.0.2.1/32", 0, "192.0.2.1/32" },
		{ "2001:db8::/32", 0, "2001:db8::/32" },
		{ "::/0", 0, "::/0" },
		{ "2001:db8::1/128", 0, "2001:db8::1/128" },
		{ "10.0.0.1/8", -1, NULL },        /* host bits */
		{ "10.0.0.0/33", -1, NULL },
		{ "2001:db8::/129", -1, NULL },
		{ "10.0.0.0", -1, NULL },
		{ "10.0.0.0/", -1, NULL },
		{ "10.0.0.0/8x", -1, NULL },
		{ "/8", -1, NULL },
		{ "10.0.0/8", -1, NULL },
		{ "2001:db8::1/64", -1, NULL },
		{ "10.0.0.0/-1", -1, NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct bgp_prefix p;
		char buf[64];
		int rc = bgp_prefix_parse(rows[i].in, &p);
		assert_int_equal(rc, rows[i].rc);
		if (rc == 0) {
			bgp_prefix_fmt(buf, sizeof(buf), &p);
			assert_string_equal(buf, rows[i].out);
			assert_int_equal(p.path_id, 0);
		}
	}

	struct bgp_addr a;
	char buf[64];
	assert_int_equal(bgp_addr_parse("192.0.2.7", &a), 0);
	assert_int_equal(a.family, BGP_FAM_IPV4);
	bgp_addr_fmt(buf, sizeof(buf), &a);
	assert_string_equal(buf, "192.0.2.7");
	assert_int_equal(bgp_addr_parse("fe80::1", &a), 0);
	assert_int_equal(a.family, BGP_FAM_IPV6);
	bgp_addr_fmt(buf, sizeof(buf), &a);
	assert_string_equal(buf, "fe80::1");
	assert_int_equal(bgp_addr_parse("not-an-address", &a), -1);
	assert_int_equal(bgp_addr_parse("", &a), -1);
	/* BGP identifiers, host order: the widest one fits 16 bytes */
	char id[16];
	assert_int_equal(bgp_id_fmt(id, sizeof(id), 0xC0000207u), 9);
	assert_string_equal(id, "192.0.2.7");
	assert_int_equal(bgp_id_fmt(id, sizeof(id), 0xFFFFFFFFu), 15);
	assert_string_equal(id, "255.255.255.255");
	bgp_id_fmt(id, sizeof(id), 0);
	assert_string_equal(id, "0.0.0.0");
}

/* ---------------------------------------------------------------- framing */

static void test_frame_partial(void **state)
{
	uint8_t buf[64];
	struct msg_error err;
	size_t n = msg_keepalive_encode(buf, sizeof(buf));
	(void)state;

	assert_int_equal(n, 19);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(msg_frame(buf, i, BGP_MAX_MSG, &err), 0);
	assert_int_equal(msg_frame(buf, n, BGP_MAX_MSG, &err), 19);
	assert_int_equal(err.action, MSG_OK);
	/* two messages back to back: frame returns the first only */
	memcpy(buf + n, buf, n);
	assert_int_equal(msg_frame(buf, 2 * n, BGP_MAX_MSG, &err), 19);

	/* header errors are reported before the body has arrived */
	uint8_t big[BGP_HDR_LEN];
	msg_put_header(big, 5000, BGP_MSG_UPDATE);
	assert_int_equal(msg_frame(big, sizeof(big), BGP_MAX_MSG, &err), -1);
	assert_int_equal(err.code, 1);
	assert_int_equal(err.subcode, 2);
	/* ...but with extended messages a 5000-octet UPDATE is fine: need more */
	assert_int_equal(msg_frame(big, sizeof(big), BGP_MAX_EXT_MSG, &err), 0);

	static uint8_t ext[BGP_MAX_EXT_MSG];
	msg_put_header(ext, BGP_MAX_EXT_MSG, BGP_MSG_UPDATE);
	assert_int_equal(msg_frame(ext, sizeof(ext), BGP_MAX_EXT_MSG, &err), BGP_MAX_EXT_MSG);
	msg_put_header(ext, 4096, BGP_MSG_NOTIFICATION);
	assert_int_equal(msg_frame(ext, sizeof(ext), BGP_MAX_MSG, &err), 4096);
	msg_put_header(ext, 4096, BGP_MSG_OPEN);
	assert_int_equal(msg_frame(ext, sizeof(ext), BGP_MAX_EXT_MSG, &err), 4096);
}

/* ---------------------------------------------------------------- malformed table */

enum parser { P_FRAME, P_FRAME_EXT, P_OPEN, P_RR };

struct bad_case {
	const char *what;
	enum parser parser;
	bool raw;              /* hex is the whole message; else body only (type below) */
	uint8_t type;
	const char *hex;
	uint8_t code, subcode;
	const char *data;      /* expected NOTIFICATION data in hex; "*" = the whole message */
};

static const struct bad_case bad_cases[] = {
	/* header: RFC 4271 s6.1 */
	{ "marker first octet", P_FRAME, true, 0, "feffffffffffffffffffffffffffffff 0013 04", 1, 1, "" },
	{ "marker last octet", P_FRAME, true, 0, "ffffffffffffffffffffffffffffff00 0013 04", 1, 1, "" },
	{ "marker all zero", P_FRAME, true, 0, "00000000000000000000000000000000 0013 04", 1, 1, "" },
	{ "length 18", P_FRAME, true, 0, MARKER "0012 04", 1, 2, "0012" },
	{ "length 0", P_FRAME, true, 0, MARKER "0000 04", 1, 2, "0000" },
	{ "length 4097", P_FRAME, true, 0, MARKER "1001 02", 1, 2, "1001" },
	{ "length 65535 no ext", P_FRAME, true, 0, MARKER "ffff 02", 1, 2, "ffff" },
	{ "type 0", P_FRAME, true, 0, MARKER "0013 00", 1, 3, "00" },
	{ "type 6", P_FRAME, true, 0, MARKER "0013 06", 1, 3, "06" },
	{ "type 255", P_FRAME, true, 0, MARKER "0017 ff", 1, 3, "ff" },
	{ "OPEN length 28", P_FRAME, true, 0, MARKER "001c 01", 1, 2, "001c" },
	{ "KEEPALIVE length 20", P_FRAME, true, 0, MARKER "0014 04 00", 1, 2, "0014" },
	{ "NOTIFICATION length 20", P_FRAME, true, 0, MARKER "0014 03 06", 1, 2, "0014" },
	{ "UPDATE length 22", P_FRAME, true, 0, MARKER "0016 02 000000", 1, 2, "0016" },
	{ "ROUTE-REFRESH length 22", P_FRAME, true, 0, MARKER "0016 05 000100", 1, 2, "0016" },
	{ "OPEN 5000 with ext msg", P_FRAME_EXT, true, 0, MARKER "1388 01", 1, 2, "1388" },
	{ "KEEPALIVE 4097 with ext msg", P_FRAME_EXT, true, 0, MARKER "1001 04", 1, 2, "1001" },
	{ "KEEPALIVE 23 with ext msg", P_FRAME_EXT, true, 0, MARKER "0017 04", 1, 2, "0017" },
	/* OPEN: RFC 4271 s6.2, RFC 5492, RFC 9072 */
	{ "version 3", P_OPEN, false, 1, "03 fdeb 00b4 0a000001 00", 2, 1, "0004" },
	{ "version 5", P_OPEN, false, 1, "05 fdeb 00b4 0a000001 00", 2, 1, "0004" },
	{ "peer AS 0", P_OPEN, false, 1, "04 0000 00b4 0a000001 00", 2, 2, "" },
	{ "hold time 1", P_OPEN, false, 1, "04 fdeb 0001 0a000001 00", 2, 6, "" },
	{ "hold time 2", P_OPEN, false, 1, "04 fdeb 0002 0a000001 00", 2, 6, "" },
	{ "BGP id 0", P_OPEN, false, 1, "04 fdeb 00b4 00000000 00", 2, 3, "" },
	{ "opt len beyond message", P_OPEN, false, 1, OPEN_FIXED "08 02 02 0200", 2, 0, "" },
	{ "trailing octets after params", P_OPEN, false, 1, OPEN_FIXED "02 02 00 ff", 2, 0, "" },
	{ "opt len 0 with trailing", P_OPEN, false, 1, OPEN_FIXED "00 00", 2, 0, "" },
	{ "opt param type 1 (auth)", P_OPEN, false, 1, OPEN_FIXED "03 01 01 00", 2, 4, "" },
	{ "opt param type 3", P_OPEN, false, 1, OPEN_FIXED "02 03 00", 2, 4, "" },
	{ "opt param length overrun", P_OPEN, false, 1, OPEN_FIXED "04 02 05 0200", 2, 0, "" },
	{ "opt param header truncated", P_OPEN, false, 1, OPEN_FIXED "01 02", 2, 0, "" },
	{ "capability overruns param", P_OPEN, false, 1, OPEN_FIXED "05 02 03 4104 00", 2, 0, "" },
	{ "capability header truncated", P_OPEN, false, 1, OPEN_FIXED "03 02 01 41", 2, 0, "" },
	{ "MP length 3", P_OPEN, false, 1, OPEN_FIXED "07 02 05 0103 000100", 2, 0, "" },
	{ "MP length 5", P_OPEN, false, 1, OPEN_FIXED "09 02 07 0105 0001000100", 2, 0, "" },
	{ "AS4 length 2", P_OPEN, false, 1, OPEN_FIXED "06 02 04 4102 fdeb", 2, 0, "" },
	{ "AS4 length 5", P_OPEN, false, 1, OPEN_FIXED "09 02 07 4105 0000fdeb00", 2, 0, "" },
	{ "AS4 value 0 (RFC 7607)", P_OPEN, false, 1, OPEN_FIXED "08 02 06 4104 00000000", 2, 2, "" },
	{ "ADD-PATH length 3", P_OPEN, false, 1, OPEN_FIXED "07 02 05 4503 000101", 2, 0, "" },
	{ "GR length 1", P_OPEN, false, 1, OPEN_FIXED "05 02 03 4001 00", 2, 0, "" },
	{ "GR length 4", P_OPEN, false, 1, OPEN_FIXED "08 02 06 4004 0078 0001", 2, 0, "" },
	{ "bad capability after good ones", P_OPEN, false, 1,
	  OPEN_FIXED "0e 02 0c 0200 4104 0000fdeb 0103 000100", 2, 0, "" },
	{ "second param unsupported", P_OPEN, false, 1, OPEN_FIXED "06 02 02 0200 04 00", 2, 4, "" },
	{ "RFC 9072 ext len too long", P_OPEN, false, 1, OPEN_FIXED "ff ff 0010 02 0002 0200", 2, 0, "" },
	{ "RFC 9072 ext len too short", P_OPEN, false, 1, OPEN_FIXED "ff ff 0004 02 0002 0200", 2, 0, "" },
	{ "RFC 9072 truncated ext len", P_OPEN, false, 1, OPEN_FIXED "ff ff 00", 2, 0, "" },
	{ "RFC 9072 param overrun", P_OPEN, false, 1, OPEN_FIXED "ff ff 0005 02 0009 0200", 2, 0, "" },
	{ "RFC 9072 param hdr truncated", P_OPEN, false, 1, OPEN_FIXED "ff ff 0002 02 00", 2, 0, "" },
	{ "RFC 9072 unsupported param", P_OPEN, false, 1, OPEN_FIXED "ff ff 0003 01 0000", 2, 4, "" },
	/* ROUTE-REFRESH: RFC 7313 s5 */
	{ "ROUTE-REFRESH 24 octets", P_RR, false, 5, "0001 00 01 00", 7, 1, "*" },
	{ "ROUTE-REFRESH BoRR 25 octets", P_RR, false, 5, "0001 01 01 0000", 7, 1, "*" },
	{ "ROUTE-REFRESH 22 octets", P_RR, false, 5, "0001 00", 7, 1, "*" },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		uint8_t msg[512], data[64];
		struct msg_error err;
		size_t len, dlen;
		int rc = 0;

		print_message("case %zu: %s\n", i, bc->what);
		memset(&err, 0xa5, sizeof(err));
		len = bc->raw ? hex2bin(bc->hex, msg, sizeof(msg)) : build(bc->type, bc->hex, msg, sizeof(msg));
		switch (bc->parser) {
		case P_FRAME:
			rc = msg_frame(msg, len, BGP_MAX_MSG, &err);
			break;
		case P_FRAME_EXT:
			rc = msg_frame(msg, len, BGP_MAX_EXT_MSG, &err);
			break;
		case P_OPEN: {
			struct msg_open o;
			/* the framer must accept these: the error is the OPEN parser's */
			struct msg_error ferr;
			assert_int_equal(msg_frame(msg, len, BGP_MAX_MSG, &ferr), (int)len);
			rc = msg_open_parse(msg, len, &o, &err);
			break;
		}
		case P_RR: {
			unsigned fam;
			uint8_t sub;
			rc = msg_route_refresh_parse(msg, len, &fam, &sub, &err);
			break;
		}
		}
		assert_int_equal(rc, -1);
		assert_int_equal(err.action, MSG_SESSION_RESET);
		assert_int_equal(err.code, bc->code);
		assert_int_equal(err.subcode, bc->subcode);
		assert_non_null(err.reason);
		if (strcmp(bc->data, "*") == 0) {
			memcpy(data, msg, len);
			dlen = len;
		} else {
			dlen = hex2bin(bc->data, data, sizeof(data));
		}
		assert_int_equal(err.data_len, dlen);
		assert_memory_equal(err.data, data, dlen);
	}
	print_message("%zu malformed cases\n", sizeof(bad_cases) / sizeof(bad_cases[0]));
}

/* ---------------------------------------------------------------- OPEN round trips */

static void assert_capa_equal(const struct msg_capa *a, const struct msg_capa *b)
{
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		assert_int_equal(a->mp[f], b->mp[f]);
		assert_int_equal(a->add_path[f], b->add_path[f]);
		assert_int_equal(a->gr_family[f], b->gr_family[f]);
		assert_int_equal(a->gr_fwd[f], b->gr_fwd[f]);
	}
	assert_int_equal(a->route_refresh, b->route_refresh);
	assert_int_equal(a->enhanced_rr, b->enhanced_rr);
	assert_int_equal(a->ext_msg, b->ext_msg);
	assert_int_equal(a->as4, b->as4);
	if (a->as4)
		assert_int_equal(a->as4_asn, b->as4_asn);
	assert_int_equal(a->gr, b->gr);
	assert_int_equal(a->gr_restarting, b->gr_restarting);
	assert_int_equal(a->gr_time, b->gr_time);
	assert_int_equal(a->n_unknown, b->n_unknown);
	for (unsigned i = 0; i < a->n_unknown; i++) {
		assert_int_equal(a->unknown[i].code, b->unknown[i].code);
		assert_int_equal(a->unknown[i].len, b->unknown[i].len);
		assert_memory_equal(a->unknown[i].value, b->unknown[i].value, a->unknown[i].len);
	}
}

enum {
	C_MP4 = 1 << 0, C_MP6 = 1 << 1, C_RR = 1 << 2, C_ERR = 1 << 3, C_EXT = 1 << 4,
	C_AS4 = 1 << 5, C_AP = 1 << 6, C_GR = 1 << 7, C_UNK = 1 << 8, C_BIGUNK = 1 << 9,
	C_ALL = (1 << 10) - 1,
};

static uint8_t unk_val[MSG_MAX_UNKNOWN_CAPA][255];

static void make_capa(unsigned mask, unsigned variant, struct msg_capa *c, uint32_t asn)
{
	memset(c, 0, sizeof(*c));
	c->mp[BGP_FAM_IPV4] = mask & C_MP4;
	c->mp[BGP_FAM_IPV6] = mask & C_MP6;
	c->mp_any = mask & (C_MP4 | C_MP6);
	c->route_refresh = mask & C_RR;
	c->enhanced_rr = mask & C_ERR;
	c->ext_msg = mask & C_EXT;
	c->as4 = mask & C_AS4;
	c->as4_asn = asn;
	if (mask & C_AP) {
		c->add_path[BGP_FAM_IPV4] = (uint8_t)(variant % 4);
		c->add_path[BGP_FAM_IPV6] = (uint8_t)((variant / 4) % 4);
		if (!c->add_path[0] && !c->add_path[1])
			c->add_path[0] = MSG_ADDPATH_RECV | MSG_ADDPATH_SEND;
	}
	if (mask & C_GR) {
		c->gr = true;
		c->gr_restarting = variant & 1;
		c->gr_time = (uint16_t)(variant * 37 % 4096);
		c->gr_family[BGP_FAM_IPV4] = variant & 2;
		c->gr_fwd[BGP_FAM_IPV4] = c->gr_family[BGP_FAM_IPV4] && (variant & 4);
		c->gr_family[BGP_FAM_IPV6] = variant & 8;
		c->gr_fwd[BGP_FAM_IPV6] = c->gr_family[BGP_FAM_IPV6] && (variant & 16);
	}
	if (mask & (C_UNK | C_BIGUNK)) {
		unsigned n = (mask & C_BIGUNK) ? MSG_MAX_UNKNOWN_CAPA : 1 + variant % 3;
		for (unsigned i = 0; i < n; i++) {
			c->unknown[i].code = (uint8_t)(200 + i);
			c->unknown[i].len = (uint8_t)((mask & C_BIGUNK) ? 200 + i : i * 3);
			for (unsigned k = 0; k < c->unknown[i].len; k++)
				unk_val[i][k] = (uint8_t)(k * 7 + i);
			c->unknown[i].value = unk_val[i];
		}
		c->n_unknown = (uint8_t)n;
	}
}

static void test_open_roundtrip_all(void **state)
{
	static uint8_t buf[BGP_MAX_MSG];
	unsigned n = 0, n_ext = 0;
	(void)state;

	for (unsigned mask = 0; mask <= C_ALL; mask++) {
		for (unsigned variant = 0; variant < 3; variant++) {
			struct msg_capa in, *out;
			struct msg_open o;
			struct msg_error err;
			uint32_t asn = variant == 1 ? 4200000001u : 65003;
			uint16_t hold = variant == 2 ? 0 : (uint16_t)(3 + variant * 87);
			unsigned v = variant * 11 + mask;

			make_capa(mask, v, &in, asn);
			size_t len = msg_open_encode(buf, sizeof(buf), asn, hold, 0x0a000001u + mask, &in);
			assert_true(len >= 29);
			assert_int_equal(msg_frame(buf, len, BGP_MAX_MSG, &err), (int)len);
			assert_int_equal(msg_open_parse(buf, len, &o, &err), 0);
			assert_int_equal(err.action, MSG_OK);
			assert_int_equal(o.version, 4);
			assert_int_equal(o.hold_time, hold);
			assert_int_equal(o.bgp_id, 0x0a000001u + mask);
			assert_int_equal(o.my_as, asn > 0xffff ? BGP_AS_TRANS : asn);
			out = &o.capa;
			assert_int_equal(out->mp_any, in.mp_any);
			assert_capa_equal(&in, out);
			if (in.as4)
				assert_int_equal(msg_open_asn(&o), asn);
			/* RFC 9072 form is used exactly when the plain form cannot hold it */
			bool ext = buf[28] == 255 && buf[29] == 255;
			if (mask & C_BIGUNK)
				assert_true(ext);
			n_ext += ext;
			if (ext)
				assert_true(len > 29 + 255);
			else
				assert_int_equal(buf[28], len - 29);
			n++;
		}
	}
	print_message("%u OPEN round trips, %u in RFC 9072 form\n", n, n_ext);
	assert_true(n_ext > 0);
}

static void test_open_no_capa(void **state)
{
	uint8_t buf[64];
	struct msg_capa c;
	struct msg_open o;
	struct msg_error err;
	(void)state;

	memset(&c, 0, sizeof(c));
	size_t len = msg_open_encode(buf, sizeof(buf), 65001, 90, 1, &c);
	assert_int_equal(len, 29);
	assert_int_equal(msg_open_parse(buf, len, &o, &err), 0);
	assert_false(o.capa.mp_any);
	assert_int_equal(msg_open_asn(&o), 65001);
	/* cap too small */
	assert_int_equal(msg_open_encode(buf, 28, 65001, 90, 1, &c), 0);
	assert_int_equal(msg_open_encode(buf, 10, 65001, 90, 1, &c), 0);
}

/* Hand-made OPENs from other speakers' habits. */
static void test_open_foreign_forms(void **state)
{
	uint8_t msg[4096];
	struct msg_open o;
	struct msg_error err;
	size_t len;
	(void)state;

	/* one capability per optional parameter, Cisco route refresh, VPNv4 MP */
	len = build(1, OPEN_FIXED "20 02 06 0104 00010001 02 02 8000 02 06 0104 00010080"
		       " 02 06 4104 fa56ea01 02 02 0200", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_true(o.capa.mp[BGP_FAM_IPV4]);
	assert_false(o.capa.mp[BGP_FAM_IPV6]);
	assert_true(o.capa.mp_any);
	assert_true(o.capa.route_refresh);
	assert_true(o.capa.as4);
	assert_int_equal(msg_open_asn(&o), 0xfa56ea01u);
	assert_int_equal(o.capa.n_unknown, 1);       /* the VPNv4 MP entry */
	assert_int_equal(o.capa.unknown[0].code, 1);
	assert_int_equal(o.capa.unknown[0].len, 4);

	/* ADD-PATH with an unknown family and a bad send/receive value: ignored */
	len = build(1, OPEN_FIXED "14 02 12 4510 00010103 00020102 00010480 00010105", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_int_equal(o.capa.add_path[BGP_FAM_IPV4], 3);
	assert_int_equal(o.capa.add_path[BGP_FAM_IPV6], 2);

	/* GR with restart bit, 120 s, IPv6 with F bit, unknown family skipped */
	len = build(1, OPEN_FIXED "0e 02 0c 400a 8078 00020180 00190146", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_true(o.capa.gr && o.capa.gr_restarting);
	assert_int_equal(o.capa.gr_time, 120);
	assert_true(o.capa.gr_family[BGP_FAM_IPV6] && o.capa.gr_fwd[BGP_FAM_IPV6]);
	assert_false(o.capa.gr_family[BGP_FAM_IPV4]);

	/* value-less capabilities with a stray value are tolerated */
	len = build(1, OPEN_FIXED "08 02 06 0201 00 4601 00", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_true(o.capa.route_refresh && o.capa.enhanced_rr);

	/* empty capabilities parameter */
	len = build(1, OPEN_FIXED "02 02 00", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);

	/* RFC 9072 form with small content, two parameters */
	len = build(1, OPEN_FIXED "ff ff 000a 02 0002 0200 02 0002 4600", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_true(o.capa.route_refresh);
	assert_int_equal(o.capa.n_unknown, 0);
	assert_true(o.capa.enhanced_rr);

	/* 30 unknown capabilities: accepted, the first 8 kept */
	{
		char hex[2048];
		size_t off = 0;
		off += (size_t)snprintf(hex + off, sizeof(hex) - off, OPEN_FIXED "%02x 02 %02x", 2 + 30 * 3, 30 * 3);
		for (unsigned i = 0; i < 30; i++)
			off += (size_t)snprintf(hex + off, sizeof(hex) - off, " %02x01%02x", 100 + i, i);
		len = build(1, hex, msg, sizeof(msg));
		assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
		assert_int_equal(o.capa.n_unknown, MSG_MAX_UNKNOWN_CAPA);
		for (unsigned i = 0; i < MSG_MAX_UNKNOWN_CAPA; i++) {
			assert_int_equal(o.capa.unknown[i].code, 100 + i);
			assert_int_equal(o.capa.unknown[i].value[0], i);
		}
	}

	/* class-E / multicast BGP identifiers are accepted (RFC 6286) */
	len = build(1, "04 fdeb 00b4 f0000001 00", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	assert_int_equal(o.bgp_id, 0xf0000001u);
	/* hold time 0 and 3 are fine */
	len = build(1, "04 fdeb 0000 0a000001 00", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
	len = build(1, "04 fdeb 0003 0a000001 00", msg, sizeof(msg));
	assert_int_equal(msg_open_parse(msg, len, &o, &err), 0);
}

/* ---------------------------------------------------------------- other messages */

static void test_keepalive(void **state)
{
	uint8_t buf[32];
	struct msg_error err;
	(void)state;

	assert_int_equal(msg_keepalive_encode(buf, 18), 0);
	assert_int_equal(msg_keepalive_encode(buf, sizeof(buf)), 19);
	for (int i = 0; i < 16; i++)
		assert_int_equal(buf[i], 0xff);
	assert_int_equal(buf[16], 0);
	assert_int_equal(buf[17], 19);
	assert_int_equal(buf[18], BGP_MSG_KEEPALIVE);
	assert_int_equal(msg_frame(buf, 19, BGP_MAX_MSG, &err), 19);
}

static void test_notification_roundtrip(void **state)
{
	static uint8_t buf[BGP_MAX_MSG + 64], data[5000];
	static const struct {
		uint8_t code, sub;
		size_t dlen;
	} rows[] = {
		{ 6, 2, 0 }, { 6, 4, 0 }, { 1, 2, 2 }, { 2, 1, 2 }, { 3, 1, 300 },
		{ 5, 3, 0 }, { 4, 0, 0 }, { 7, 1, 23 }, { 8, 0, 0 }, { 6, 2, 128 },
		{ 6, 2, 4096 - 21 }, { 99, 99, 7 },
	};
	(void)state;
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)(k * 13);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct msg_error err;
		uint8_t code, sub;
		const uint8_t *d;
		size_t dl;
		size_t len = msg_notification_encode(buf, sizeof(buf), rows[i].code, rows[i].sub, data, rows[i].dlen);
		assert_int_equal(len, 21 + rows[i].dlen);
		assert_int_equal(msg_frame(buf, len, BGP_MAX_MSG, &err), (int)len);
		assert_int_equal(msg_notification_parse(buf, len, &code, &sub, &d, &dl), 0);
		assert_int_equal(code, rows[i].code);
		assert_int_equal(sub, rows[i].sub);
		assert_int_equal(dl, rows[i].dlen);
		assert_memory_equal(d, data, dl);
	}
	/* data longer than a message can carry is trimmed to 4096 total */
	size_t len = msg_notification_encode(buf, sizeof(buf), 6, 2, data, sizeof(data));
	assert_int_equal(len, 4096);
	/* too small a buffer */
	assert_int_equal(msg_notification_encode(buf, 22, 6, 2, data, 2), 0);
	/* parse rejects a truncated NOTIFICATION */
	uint8_t code, sub;
	const uint8_t *d;
	size_t dl;
	assert_int_equal(msg_notification_parse(buf, 20, &code, &sub, &d, &dl), -1);
}

static void test_route_refresh_roundtrip(void **state)
{
	uint8_t buf[64];
	(void)state;

	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		for (uint8_t st = BGP_RR_NORMAL; st <= BGP_RR_EORR; st++) {
			struct msg_error err;
			unsigned f2;
			uint8_t st2;
			size_t len = msg_route_refresh_encode(buf, sizeof(buf), fam, st);
			assert_int_equal(len, 23);
			assert_int_equal(msg_frame(buf, len, BGP_MAX_MSG, &err), 23);
			assert_int_equal(msg_route_refresh_parse(buf, len, &f2, &st2, &err), 0);
			assert_int_equal(err.action, MSG_OK);
			assert_int_equal(f2, fam);
			assert_int_equal(st2, st);
		}
	}
	assert_int_equal(msg_route_refresh_encode(buf, 22, BGP_FAM_IPV4, 0), 0);

	/* unknown AFI/SAFI: accepted, family NONE; unknown subtype passed through */
	uint8_t msg[64];
	struct msg_error err;
	unsigned f;
	uint8_t st;
	size_t len = build(5, "0001 00 80", msg, sizeof(msg));
	assert_int_equal(msg_route_refresh_parse(msg, len, &f, &st, &err), 0);
	assert_int_equal(f, BGP_FAM_NONE);
	len = build(5, "0002 07 01", msg, sizeof(msg));
	assert_int_equal(msg_route_refresh_parse(msg, len, &f, &st, &err), 0);
	assert_int_equal(f, BGP_FAM_IPV6);
	assert_int_equal(st, 7);
}

/* Parsers must never read past len: run every prefix of valid messages. */
static void test_truncations(void **state)
{
	static uint8_t buf[BGP_MAX_MSG];
	struct msg_capa c;
	(void)state;

	make_capa(C_ALL & ~C_BIGUNK, 5, &c, 4200000001u);
	size_t len = msg_open_encode(buf, sizeof(buf), 4200000001u, 90, 7, &c);
	for (size_t l = 0; l < len; l++) {
		/* a heap copy of exactly l bytes so ASan would catch an overread */
		uint8_t *m = malloc(l ? l : 1);
		struct msg_open o;
		struct msg_error err;
		memcpy(m, buf, l);
		if (l >= BGP_HDR_LEN)
			msg_put_header(m, (uint16_t)l, BGP_MSG_OPEN);
		assert_int_equal(msg_open_parse(m, l, &o, &err), -1);
		free(m);
	}
}

/* RFC 9003 Shutdown Communication: extracted only from Cease/2 and Cease/4,
 * length checked, and made printable (invalid UTF-8 and control characters
 * become '?', whole characters only when cut). */
static int sc(uint8_t code, uint8_t sub, const char *bytes, size_t n, char *out, size_t outlen)
{
	return msg_shutdown_comm(code, sub, (const uint8_t *)bytes, n, out, outlen);
}

static void test_shutdown_comm(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\0", 1, out, sizeof(out)), 0);
	assert_int_equal(sc(BGP_ERR_CEASE, 3, "\x03" "abc", 4, out, sizeof(out)), 0);
	assert_int_equal(sc(BGP_ERR_HOLD, 2, "\x03" "abc", 4, out, sizeof(out)), 0);
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x0bmaintenance", 12, out, sizeof(out)), 1);
	assert_string_equal(out, "maintenance");
	/* subcode 4 too; octets after the message are ignored */
	assert_int_equal(sc(BGP_ERR_CEASE, 4, "\x02okXYZ", 6, out, sizeof(out)), 1);
	assert_string_equal(out, "ok");
	/* valid UTF-8 kept as is: U+2713, U+00E9, U+1F600 */
	const char *u = "\xe2\x9c\x93 \xc3\xa9 \xf0\x9f\x98\x80";
	char m[32];
	m[0] = (char)strlen(u);
	memcpy(m + 1, u, strlen(u));
	assert_int_equal(sc(BGP_ERR_CEASE, 2, m, 1 + strlen(u), out, sizeof(out)), 1);
	assert_string_equal(out, u);
	/* control characters (ESC, BEL, DEL, newline) */
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x0b\x1b[31mred\x07\x7f\n", 12, out, sizeof(out)), 1);
	assert_string_equal(out, "?[31mred???");
	/* invalid: stray continuation, overlong, surrogate, above U+10FFFF, truncated */
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x0e\x80\xc0\x80\xe0\x80\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2", 15,
			    out, sizeof(out)), 1);
	assert_string_equal(out, "??????????????");
	/* a length past the data is malformed (RFC 9003 s4): no text */
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x0a" "ab", 3, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	/* cut to outlen at a character boundary */
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x07" "ab\xe2\x9c\x93" "cd", 8, out, 5), 1);
	assert_string_equal(out, "ab");
	assert_int_equal(sc(BGP_ERR_CEASE, 2, "\x07" "ab\xe2\x9c\x93" "cd", 8, out, 6), 1);
	assert_string_equal(out, "ab\xe2\x9c\x93");
}

/* msg_utf8_cut: characters of 1 to 4 octets, cut at every position; the
 * expected cut is the last character boundary at or before it, taken from
 * the boundaries the text was built with. */
static void test_utf8_cut(void **state)
{
	(void)state;
	/* by octet count: U+0061, U+00E9, U+2713, U+1F600 */
	static const char *const ch[] = { NULL, "a", "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80" };
	/* texts as the octet counts of their characters (0 ends): each
	 * multi-byte character alone, twice in a row, between ASCII, and all
	 * of them mixed */
	static const uint8_t texts[][8] = {
		{ 2 }, { 3 }, { 4 }, { 2, 2 }, { 3, 3 }, { 4, 4 },
		{ 1, 2, 1 }, { 1, 3, 1 }, { 1, 4, 1 }, { 1, 2, 3, 4, 1 }, { 4, 3, 2, 1, 4, 2 },
	};
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		char s[32];
		bool boundary[32] = { [0] = true };
		size_t len = 0;
		for (size_t j = 0; j < 8 && texts[k][j]; j++) {
			size_t n = texts[k][j];
			assert_int_equal(strlen(ch[n]), n);
			memcpy(s + len, ch[n], n);
			len += n;
			boundary[len] = true;
		}
		for (size_t max = 0; max <= len + 2; max++) {
			size_t want = max < len ? max : len;
			while (!boundary[want])
				want--;
			size_t got = msg_utf8_cut(s, len, max);
			assert_int_equal(got, want);
			/* what is kept is whole characters */
			for (size_t i = 0; i < got;) {
				size_t l = msg_utf8_seq((const uint8_t *)s + i, got - i);
				assert_true(l > 0);
				i += l;
			}
		}
	}
	/* nothing fits */
	assert_int_equal(msg_utf8_cut("\xf0\x9f\x98\x80", 4, 3), 0);
	assert_int_equal(msg_utf8_cut("", 0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_prefix_text),
		cmocka_unit_test(test_frame_partial),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_open_roundtrip_all),
		cmocka_unit_test(test_open_no_capa),
		cmocka_unit_test(test_open_foreign_forms),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_notification_roundtrip),
		cmocka_unit_test(test_route_refresh_roundtrip),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_shutdown_comm),
		cmocka_unit_test(test_utf8_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
