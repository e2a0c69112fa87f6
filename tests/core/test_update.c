/*
 * test_update.c - UPDATE parser tests (core/update.c).
 *
 * Single-threaded cmocka binary.  A table of malformed UPDATEs, each with the
 * exact RFC 4271 / RFC 7606 reaction expected (action, code/subcode, offending
 * attribute, NOTIFICATION data where it matters), then positive cases that
 * pin the canonical blob byte for byte, AS4 reconciliation, ADD-PATH,
 * End-of-RIB and the NLRI/attribute iterators.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/msg.h"

/* ---------------------------------------------------------------- helpers */

enum sess_kind { S_IBGP, S_EBGP, S_IBGP2, S_EBGP2, S_AP, S_RS, S_V4ONLY, S_EBGP2_BIG, S_COUNT };

static struct msg_session sess(int kind)
{
	struct msg_session s;
	memset(&s, 0, sizeof(s));
	s.as4 = true;
	s.family[BGP_FAM_IPV4] = s.family[BGP_FAM_IPV6] = true;
	s.max_msg = BGP_MAX_MSG;
	s.local_as = 65000;
	s.peer_as = 65000;
	switch (kind) {
	case S_EBGP:
		s.ebgp = true;
		s.peer_as = 65001;
		break;
	case S_IBGP2:
		s.as4 = false;
		break;
	case S_EBGP2:
		s.as4 = false;
		s.ebgp = true;
		s.peer_as = 65001;
		break;
	case S_EBGP2_BIG:
		s.as4 = false;
		s.ebgp = true;
		s.peer_as = 400000;
		break;
	case S_AP:
		s.addpath_rx[BGP_FAM_IPV4] = s.addpath_rx[BGP_FAM_IPV6] = true;
		break;
	case S_RS:
		s.ebgp = true;
		s.rs_client = true;
		s.peer_as = 65001;
		break;
	case S_V4ONLY:
		s.family[BGP_FAM_IPV6] = false;
		break;
	default:
		break;
	}
	return s;
}

/* Build a framed UPDATE from its three fields; returns the message length. */
static size_t mk_update(uint8_t *buf, const void *wd, size_t wl, const void *at, size_t al,
			const void *nl, size_t nll)
{
	size_t len = BGP_HDR_LEN + 4 + wl + al + nll;
	uint8_t *o = buf + BGP_HDR_LEN;
	memset(buf, 0xff, BGP_MARKER_LEN);
	buf[16] = (uint8_t)(len >> 8);
	buf[17] = (uint8_t)len;
	buf[18] = BGP_MSG_UPDATE;
	o[0] = (uint8_t)(wl >> 8);
	o[1] = (uint8_t)wl;
	if (wl)
		memcpy(o + 2, wd, wl);
	o += 2 + wl;
	o[0] = (uint8_t)(al >> 8);
	o[1] = (uint8_t)al;
	if (al)
		memcpy(o + 2, at, al);
	o += 2 + al;
	if (nll)
		memcpy(o, nl, nll);
	return len;
}

/* Build a framed UPDATE whose body is given raw (for length arithmetic cases). */
static size_t mk_raw(uint8_t *buf, const void *body, size_t bl)
{
	size_t len = BGP_HDR_LEN + bl;
	memset(buf, 0xff, BGP_MARKER_LEN);
	buf[16] = (uint8_t)(len >> 8);
	buf[17] = (uint8_t)len;
	buf[18] = BGP_MSG_UPDATE;
	memcpy(buf + BGP_HDR_LEN, body, bl);
	return len;
}

static uint8_t msgbuf[BGP_MAX_EXT_MSG + 64];
static uint8_t scratch[MSG_SCRATCH_SIZE];

/* attribute fragments */
#define ORIGIN_IGP  "\x40\x01\x01\x00"
#define ASP_IBGP    "\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"          /* SEQ 65001 */
#define ASP_EBGP    "\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"          /* SEQ 65001 (peer) */
#define ASP2_EBGP   "\x40\x02\x04\x02\x01\xfd\xe9"                  /* 2-octet SEQ 65001 */
#define NH          "\x40\x03\x04\x0a\x00\x00\x01"
#define LP          "\x40\x05\x04\x00\x00\x00\x64"
#define BASE_I      ORIGIN_IGP ASP_IBGP NH LP                       /* valid iBGP set */
#define BASE_E      ORIGIN_IGP ASP_EBGP NH                          /* valid eBGP set */
#define BASE_E2     ORIGIN_IGP ASP2_EBGP NH                         /* valid 2-octet eBGP */
#define NLRI1       "\x18\x0a\x01\x02"                              /* 10.1.2.0/24 */
#define MPR6        "\x80\x0e\x1a\x00\x02\x01\x10" \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00" \
	"\x20\x20\x01\x0d\xb8"                                      /* 2001:db8::/32 via 2001:db8::1 */

#define S(x) x, sizeof(x) - 1
#define NONE "", 0

struct bad_case {
	const char *name;
	int sess;
	const char *raw; size_t rawl;       /* whole body, when non-NULL */
	const char *wd; size_t wdl;
	const char *at; size_t atl;
	const char *nl; size_t nll;
	uint8_t action, subcode, attr_type;
	int data_len;                        /* -1: not checked */
	const char *data;
	int discarded;                       /* -1: not checked */
	uint8_t family;                      /* for AFI disable */
};

#define RESET MSG_SESSION_RESET
#define TAW MSG_TREAT_AS_WITHDRAW
#define AFID MSG_AFI_DISABLE
#define OK MSG_OK

/* Expected NOTIFICATION data: the attribute as received. */
#define D(x) (int)(sizeof(x) - 1), x

static const struct bad_case bad[] = {
	/* ---- RFC 4271 s6.3 length arithmetic: session reset 3/1 */
	{ "body shorter than 4", S_IBGP, S("\x00\x00\x00"), NONE, NONE, NONE,
	  RESET, 1, 0, 0, NULL, -1, 0 },
	{ "withdrawn length overruns", S_IBGP, S("\x00\x09\x18\x0a\x01\x02\x00\x00"), NONE, NONE, NONE,
	  RESET, 1, 0, 0, NULL, -1, 0 },
	{ "withdrawn length eats attr length", S_IBGP, S("\x00\x04\x18\x0a\x01\x02\x00"), NONE, NONE,
	  NONE, RESET, 1, 0, 0, NULL, -1, 0 },
	{ "total attr length overruns", S_IBGP, S("\x00\x00\x00\x10" ORIGIN_IGP), NONE, NONE, NONE,
	  RESET, 1, 0, 0, NULL, -1, 0 },
	{ "withdrawn length 0xffff", S_IBGP, S("\xff\xff\x00\x00"), NONE, NONE, NONE,
	  RESET, 1, 0, 0, NULL, -1, 0 },
	/* ---- RFC 7606 s5.3 withdrawn / NLRI syntax: reset 3/10 */
	{ "withdrawn prefix length 33", S_IBGP, NULL, 0, S("\x21\x0a\x01\x02\x03\x04"), NONE, NONE,
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "withdrawn prefix truncated", S_IBGP, NULL, 0, S("\x18\x0a\x01"), NONE, NONE,
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "NLRI prefix length 33", S_IBGP, NULL, 0, NONE, S(BASE_I), S("\x21\x0a\x01\x02\x03\x04"),
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "NLRI prefix truncated", S_IBGP, NULL, 0, NONE, S(BASE_I), S("\x18\x0a\x01\x02\x20\x0a"),
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "NLRI prefix length 255", S_IBGP, NULL, 0, NONE, S(BASE_I), S("\xff"),
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "ADD-PATH NLRI truncated path id", S_AP, NULL, 0, NONE, S(BASE_I), S("\x00\x00\x01"),
	  RESET, 10, 0, 0, NULL, -1, 0 },
	{ "ADD-PATH withdrawn length 40", S_AP, NULL, 0, S("\x00\x00\x00\x01\x28\x0a\x01\x02\x03\x04"),
	  NONE, NONE, RESET, 10, 0, 0, NULL, -1, 0 },
	{ "no ADD-PATH but path-id-shaped NLRI", S_IBGP, NULL, 0, NONE, S(BASE_I),
	  S("\x00\x00\x00\x01\x20\x0a\x01\x02\x03"), RESET, 10, 0, 0, NULL, -1, 0 },
	/* ---- RFC 7606 s4 attribute framing: treat-as-withdraw */
	{ "last attribute overruns attr field", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\xc0\x08\x08\x00\x01\x00\x01"), S(NLRI1), TAW, 1, 0, 0, NULL, -1, 0 },
	{ "2 octets left in attr field", S_IBGP, NULL, 0, NONE, S(BASE_I "\x40\x01"), S(NLRI1),
	  TAW, 1, 0, 0, NULL, -1, 0 },
	{ "ext-len header with 3 octets left", S_IBGP, NULL, 0, NONE, S(BASE_I "\xd0\x08\x00"),
	  S(NLRI1), TAW, 1, 0, 0, NULL, -1, 0 },
	/* ---- RFC 7606 s3 g duplicates */
	{ "duplicate MP_REACH_NLRI", S_IBGP, NULL, 0, NONE, S(MPR6 MPR6 ORIGIN_IGP ASP_IBGP LP), NONE,
	  RESET, 1, 0, 0, NULL, -1, 0 },
	{ "duplicate MP_UNREACH_NLRI", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0f\x03\x00\x02\x01\x80\x0f\x03\x00\x02\x01"), NONE, RESET, 1, 0, 0, NULL, -1, 0 },
	{ "duplicate ORIGIN discarded", S_IBGP, NULL, 0, NONE, S(BASE_I "\x40\x01\x01\x02"), S(NLRI1),
	  OK, 0, 1, -1, NULL, 1, 0 },
	{ "duplicate malformed MED discarded", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x80\x04\x04\x00\x00\x00\x01\x80\x04\x01\x00"), S(NLRI1), OK, 0, 4, -1, NULL, 1, 0 },
	/* ---- unrecognized attributes */
	{ "unrecognized well-known 99", S_IBGP, NULL, 0, NONE, S(BASE_I "\x40\x63\x02\xab\xcd"),
	  S(NLRI1), RESET, 2, 99, D("\x40\x63\x02\xab\xcd"), -1, 0 },
	{ "unrecognized well-known type 0", S_IBGP, NULL, 0, NONE, S("\x40\x00\x00" BASE_I), S(NLRI1),
	  RESET, 2, 0, D("\x40\x00\x00"), -1, 0 },
	{ "unrecognized well-known, no NLRI", S_IBGP, NULL, 0, NONE, S("\x00\xfe\x01\x01"), NONE,
	  RESET, 2, 254, D("\x00\xfe\x01\x01"), -1, 0 },
	/* ---- RFC 7606 s3 c flag conflicts: the attribute's own rule */
	{ "ORIGIN flags optional", S_IBGP, NULL, 0, NONE,
	  S("\xc0\x01\x01\x00" ASP_IBGP NH LP), S(NLRI1), TAW, 4, 1, D("\xc0\x01\x01\x00"), -1, 0 },
	{ "AS_PATH flags non-transitive", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x80\x02\x00" NH LP), S(NLRI1), TAW, 4, 2, D("\x80\x02\x00"), -1, 0 },
	{ "NEXT_HOP flags optional", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP "\xc0\x03\x04\x0a\x00\x00\x01" LP), S(NLRI1), TAW, 4, 3, -1, NULL, -1, 0 },
	{ "MED flags well-known", S_IBGP, NULL, 0, NONE, S(BASE_I "\x40\x04\x04\x00\x00\x00\x05"),
	  S(NLRI1), TAW, 4, 4, -1, NULL, -1, 0 },
	{ "LOCAL_PREF flags optional", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP NH "\x80\x05\x04\x00\x00\x00\x64"), S(NLRI1), TAW, 4, 5, -1, NULL, -1, 0 },
	{ "ATOMIC_AGGREGATE flags optional", S_IBGP, NULL, 0, NONE, S(BASE_I "\xc0\x06\x00"), S(NLRI1),
	  OK, 0, 6, -1, NULL, 1, 0 },
	{ "AGGREGATOR flags well-known", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x40\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09"), S(NLRI1), OK, 0, 7, -1, NULL, 1, 0 },
	{ "COMMUNITIES flags non-transitive", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x80\x08\x04\xff\xff\xff\x01"), S(NLRI1), TAW, 4, 8, -1, NULL, -1, 0 },
	{ "ORIGINATOR_ID flags transitive", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\xc0\x09\x04\x0a\x00\x00\x07"), S(NLRI1), TAW, 4, 9, -1, NULL, -1, 0 },
	{ "CLUSTER_LIST flags well-known", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x40\x0a\x04\x0a\x00\x00\x07"), S(NLRI1), TAW, 4, 10, -1, NULL, -1, 0 },
	{ "MP_REACH_NLRI flags transitive", S_IBGP, NULL, 0, NONE,
	  S("\xc0\x0e\x1a\x00\x02\x01\x10"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"
	    "\x20\x20\x01\x0d\xb8" ORIGIN_IGP ASP_IBGP LP), NONE, AFID, 4, 14, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_UNREACH_NLRI flags well-known, short", S_IBGP, NULL, 0, NONE, S("\x40\x0f\x02\x00\x02"),
	  NONE, RESET, 4, 15, D("\x40\x0f\x02\x00\x02"), -1, 0 },
	{ "EXT_COMMUNITIES flags non-transitive", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x80\x10\x08\x00\x02\xfd\xe9\x00\x00\x00\x01"), S(NLRI1), TAW, 4, 16, -1, NULL, -1, 0 },
	{ "LARGE_COMMUNITY flags non-transitive", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x80\x20\x0c\x00\x00\xfd\xe9\x00\x00\x00\x01\x00\x00\x00\x02"), S(NLRI1),
	  TAW, 4, 32, -1, NULL, -1, 0 },
	{ "AS4_PATH flags non-transitive", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH LP "\x80\x11\x06\x02\x01\x00\x06\x1a\x80"),
	  S(NLRI1), OK, 0, 17, -1, NULL, 1, 0 },
	/* ---- ORIGIN (RFC 7606 s7.1) */
	{ "ORIGIN length 0", S_IBGP, NULL, 0, NONE, S("\x40\x01\x00" ASP_IBGP NH LP), S(NLRI1),
	  TAW, 5, 1, D("\x40\x01\x00"), -1, 0 },
	{ "ORIGIN length 2", S_IBGP, NULL, 0, NONE, S("\x40\x01\x02\x00\x00" ASP_IBGP NH LP), S(NLRI1),
	  TAW, 5, 1, D("\x40\x01\x02\x00\x00"), -1, 0 },
	{ "ORIGIN value 3", S_IBGP, NULL, 0, NONE, S("\x40\x01\x01\x03" ASP_IBGP NH LP), S(NLRI1),
	  TAW, 6, 1, D("\x40\x01\x01\x03"), -1, 0 },
	/* ---- AS_PATH (RFC 7606 s7.2) */
	{ "AS_PATH zero-length segment", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x02\x02\x00" NH LP), S(NLRI1), TAW, 11, 2, D("\x40\x02\x02\x02\x00"), -1, 0 },
	{ "AS_PATH segment overrun", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x06\x02\x02\x00\x00\xfd\xe9" NH LP), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH lone trailing octet", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x07\x02\x01\x00\x00\xfd\xe9\x02" NH LP), S(NLRI1), TAW, 11, 2, -1, NULL,
	  -1, 0 },
	{ "AS_PATH segment type 5", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x06\x05\x01\x00\x00\xfd\xe9" NH LP), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH segment type 0", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x06\x00\x01\x00\x00\xfd\xe9" NH LP), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH confed sequence from eBGP", S_EBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x0c\x03\x01\x00\x00\xfd\xe8\x02\x01\x00\x00\xfd\xe9" NH), S(NLRI1),
	  TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH confed set from eBGP", S_EBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x0c\x02\x01\x00\x00\xfd\xe9\x04\x01\x00\x00\xfd\xe8" NH), S(NLRI1),
	  TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH eBGP first AS not peer", S_EBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x06\x02\x01\x00\x00\xfd\xea" NH), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH eBGP empty", S_EBGP, NULL, 0, NONE, S(ORIGIN_IGP "\x40\x02\x00" NH), S(NLRI1),
	  TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH eBGP starts with AS_SET", S_EBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x06\x01\x01\x00\x00\xfd\xe9" NH), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH 2-octet eBGP first AS not peer", S_EBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\xfd\xea" NH), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH 2-octet peer, 4-octet encoding", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x05\x02\x01\x00\x00\xfd" NH LP), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	{ "AS_PATH big-AS 2-octet peer, not AS_TRANS", S_EBGP2_BIG, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\xfd\xe9" NH), S(NLRI1), TAW, 11, 2, -1, NULL, -1, 0 },
	/* ---- NEXT_HOP (RFC 7606 s7.3) */
	{ "NEXT_HOP length 3", S_IBGP, NULL, 0, NONE, S(ORIGIN_IGP ASP_IBGP "\x40\x03\x03\x0a\x00\x00" LP),
	  S(NLRI1), TAW, 5, 3, D("\x40\x03\x03\x0a\x00\x00"), -1, 0 },
	{ "NEXT_HOP length 5", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP "\x40\x03\x05\x0a\x00\x00\x01\x02" LP), S(NLRI1), TAW, 5, 3, -1, NULL, -1, 0 },
	{ "NEXT_HOP 0.0.0.0", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP "\x40\x03\x04\x00\x00\x00\x00" LP), S(NLRI1), TAW, 8, 3, -1, NULL, -1, 0 },
	{ "NEXT_HOP multicast", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP "\x40\x03\x04\xe0\x00\x00\x01" LP), S(NLRI1), TAW, 8, 3, -1, NULL, -1, 0 },
	{ "NEXT_HOP broadcast", S_IBGP, NULL, 0, NONE,
	  S(ORIGIN_IGP ASP_IBGP "\x40\x03\x04\xff\xff\xff\xff" LP), S(NLRI1), TAW, 8, 3, -1, NULL, -1, 0 },
	/* ---- MED, LOCAL_PREF (s7.4, s7.5) */
	{ "MED length 3", S_IBGP, NULL, 0, NONE, S(BASE_I "\x80\x04\x03\x00\x00\x00"), S(NLRI1),
	  TAW, 5, 4, D("\x80\x04\x03\x00\x00\x00"), -1, 0 },
	{ "MED length 0", S_IBGP, NULL, 0, NONE, S(BASE_I "\x80\x04\x00"), S(NLRI1), TAW, 5, 4, -1, NULL,
	  -1, 0 },
	{ "LOCAL_PREF length 2", S_IBGP, NULL, 0, NONE, S(ORIGIN_IGP ASP_IBGP NH "\x40\x05\x02\x00\x64"),
	  S(NLRI1), TAW, 5, 5, -1, NULL, -1, 0 },
	{ "LOCAL_PREF from eBGP discarded", S_EBGP, NULL, 0, NONE, S(BASE_E LP), S(NLRI1),
	  OK, 0, 5, -1, NULL, 1, 0 },
	{ "malformed LOCAL_PREF from eBGP discarded", S_EBGP, NULL, 0, NONE,
	  S(BASE_E "\x40\x05\x01\x00"), S(NLRI1), OK, 0, 5, -1, NULL, 1, 0 },
	/* ---- ATOMIC_AGGREGATE, AGGREGATOR (s7.6, s7.7): discard */
	{ "ATOMIC_AGGREGATE length 1", S_IBGP, NULL, 0, NONE, S(BASE_I "\x40\x06\x01\x00"), S(NLRI1),
	  OK, 0, 6, -1, NULL, 1, 0 },
	{ "AGGREGATOR length 6 from 4-octet peer", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\xc0\x07\x06\xfd\xe9\x0a\x00\x00\x09"), S(NLRI1), OK, 0, 7, -1, NULL, 1, 0 },
	{ "AGGREGATOR length 8 from 2-octet peer", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\xfd\xe9" NH LP "\xc0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09"),
	  S(NLRI1), OK, 0, 7, -1, NULL, 1, 0 },
	/* ---- COMMUNITIES (s7.8) */
	{ "COMMUNITIES length 5", S_IBGP, NULL, 0, NONE, S(BASE_I "\xc0\x08\x05\x00\x01\x00\x01\x00"),
	  S(NLRI1), TAW, 5, 8, -1, NULL, -1, 0 },
	{ "COMMUNITIES length 0", S_IBGP, NULL, 0, NONE, S(BASE_I "\xc0\x08\x00"), S(NLRI1),
	  TAW, 5, 8, -1, NULL, -1, 0 },
	/* ---- ORIGINATOR_ID, CLUSTER_LIST (s7.9, s7.10) */
	{ "ORIGINATOR_ID length 3", S_IBGP, NULL, 0, NONE, S(BASE_I "\x80\x09\x03\x0a\x00\x00"),
	  S(NLRI1), TAW, 5, 9, -1, NULL, -1, 0 },
	{ "ORIGINATOR_ID from eBGP discarded", S_EBGP, NULL, 0, NONE,
	  S(BASE_E "\x80\x09\x04\x0a\x00\x00\x07"), S(NLRI1), OK, 0, 9, -1, NULL, 1, 0 },
	{ "CLUSTER_LIST length 6", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x80\x0a\x06\x0a\x00\x00\x07\x00\x00"), S(NLRI1), TAW, 5, 10, -1, NULL, -1, 0 },
	{ "CLUSTER_LIST length 0", S_IBGP, NULL, 0, NONE, S(BASE_I "\x80\x0a\x00"), S(NLRI1),
	  TAW, 5, 10, -1, NULL, -1, 0 },
	{ "CLUSTER_LIST from eBGP discarded", S_EBGP, NULL, 0, NONE,
	  S(BASE_E "\x80\x0a\x04\x0a\x00\x00\x07"), S(NLRI1), OK, 0, 10, -1, NULL, 1, 0 },
	/* ---- MP_REACH_NLRI / MP_UNREACH_NLRI (s7.11, s5.3): AFI disable 3/9 */
	{ "MP_REACH length 2", S_IBGP, NULL, 0, NONE, S("\x80\x0e\x02\x00\x02" ORIGIN_IGP ASP_IBGP LP),
	  NONE, RESET, 9, 14, D("\x80\x0e\x02\x00\x02"), -1, 0 },
	{ "MP_REACH IPv6 next hop length 4", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x0e\x00\x02\x01\x04\x0a\x00\x00\x01\x00\x20\x20\x01\x0d\xb8" ORIGIN_IGP ASP_IBGP LP),
	  NONE, AFID, 9, 14, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_REACH next hop overruns", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x08\x00\x02\x01\x10\x20\x01\x0d\xb8" ORIGIN_IGP ASP_IBGP LP), NONE,
	  AFID, 9, 14, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_REACH IPv6 prefix length 129", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x16\x00\x02\x01\x10"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x81" ORIGIN_IGP ASP_IBGP LP),
	  NONE, AFID, 9, 14, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_REACH IPv6 NLRI truncated", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x18\x00\x02\x01\x10"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x30\x20\x01"
	    ORIGIN_IGP ASP_IBGP LP), NONE, AFID, 9, 14, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_REACH IPv4 next hop length 16", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x19\x00\x01\x01\x10"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x18\x0a\x01\x02"
	    ORIGIN_IGP ASP_IBGP LP), NONE, AFID, 9, 14, -1, NULL, -1, BGP_FAM_IPV4 },
	{ "MP_REACH missing reserved octet", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x04\x00\x02\x01\x00" ORIGIN_IGP ASP_IBGP LP), NONE, AFID, 9, 14, -1, NULL, -1,
	  BGP_FAM_IPV6 },
	{ "MP_REACH unknown AFI ignored", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0e\x0b\x00\x19\x46\x04\x0a\x00\x00\x01\x00\x00\x00" ORIGIN_IGP ASP_IBGP LP), NONE,
	  OK, 0, 14, -1, NULL, 1, 0 },
	{ "MP_REACH IPv6 not negotiated ignored", S_V4ONLY, NULL, 0, NONE, S(MPR6 ORIGIN_IGP ASP_IBGP LP),
	  NONE, OK, 0, 14, -1, NULL, 1, 0 },
	{ "MP_UNREACH length 2", S_IBGP, NULL, 0, NONE, S("\x80\x0f\x02\x00\x02"), NONE,
	  RESET, 9, 15, D("\x80\x0f\x02\x00\x02"), -1, 0 },
	{ "MP_UNREACH prefix length 200", S_IBGP, NULL, 0, NONE,
	  S("\x80\x0f\x05\x00\x02\x01\xc8\x20"), NONE, AFID, 9, 15, -1, NULL, -1, BGP_FAM_IPV6 },
	{ "MP_UNREACH ADD-PATH truncated", S_AP, NULL, 0, NONE,
	  S("\x80\x0f\x06\x00\x02\x01\x00\x00\x01"), NONE, AFID, 9, 15, -1, NULL, -1, BGP_FAM_IPV6 },
	/* ---- EXTENDED COMMUNITIES, LARGE COMMUNITY (s7.14, RFC 8092 s6) */
	{ "EXT_COMMUNITIES length 7", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\xc0\x10\x07\x00\x02\xfd\xe9\x00\x00\x00"), S(NLRI1), TAW, 5, 16, -1, NULL, -1, 0 },
	{ "EXT_COMMUNITIES length 0", S_IBGP, NULL, 0, NONE, S(BASE_I "\xc0\x10\x00"), S(NLRI1),
	  TAW, 5, 16, -1, NULL, -1, 0 },
	{ "LARGE_COMMUNITY length 11", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\xc0\x20\x0b\x00\x00\xfd\xe9\x00\x00\x00\x01\x00\x00\x00"), S(NLRI1),
	  TAW, 5, 32, -1, NULL, -1, 0 },
	{ "LARGE_COMMUNITY length 0", S_IBGP, NULL, 0, NONE, S(BASE_I "\xc0\x20\x00"), S(NLRI1),
	  TAW, 5, 32, -1, NULL, -1, 0 },
	/* ---- AS4_PATH / AS4_AGGREGATOR (RFC 6793 s6): discard */
	{ "AS4_PATH zero-length segment", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH LP "\xc0\x11\x02\x02\x00"), S(NLRI1),
	  OK, 0, 17, -1, NULL, 1, 0 },
	{ "AS4_PATH with confed segment", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH LP "\xc0\x11\x06\x03\x01\x00\x06\x1a\x80"),
	  S(NLRI1), OK, 0, 17, -1, NULL, 1, 0 },
	{ "AS4_AGGREGATOR length 6", S_IBGP2, NULL, 0, NONE,
	  S(ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH LP "\xc0\x12\x06\x00\x06\x1a\x80\x0a\x00"),
	  S(NLRI1), OK, 0, 18, -1, NULL, 1, 0 },
	/* ---- RFC 7606 s3 d: missing mandatory attributes */
	{ "NLRI with no path attributes", S_IBGP, NULL, 0, NONE, NONE, S(NLRI1),
	  TAW, 3, 1, D("\x01"), -1, 0 },
	{ "missing AS_PATH", S_IBGP, NULL, 0, NONE, S(ORIGIN_IGP NH LP), S(NLRI1), TAW, 3, 2, D("\x02"),
	  -1, 0 },
	{ "missing NEXT_HOP", S_IBGP, NULL, 0, NONE, S(ORIGIN_IGP ASP_IBGP LP), S(NLRI1),
	  TAW, 3, 3, D("\x03"), -1, 0 },
	/* LOCAL_PREF is well-known discretionary (RFC 4271 s5): its absence is no
	 * RFC 7606 s3 d error; the route is kept and ranks with the default 100 */
	{ "missing LOCAL_PREF from iBGP accepted", S_IBGP, NULL, 0, NONE, S(ORIGIN_IGP ASP_IBGP NH),
	  S(NLRI1), OK, 0, 0, -1, NULL, 0, 0 },
	{ "MP_REACH without ORIGIN", S_IBGP, NULL, 0, NONE, S(MPR6 ASP_IBGP LP), NONE,
	  TAW, 3, 1, D("\x01"), -1, 0 },
	/* ---- RFC 7606 s3 j: the strongest reaction wins */
	{ "treat-as-withdraw then unknown well-known", S_IBGP, NULL, 0, NONE,
	  S("\x40\x01\x01\x07" ASP_IBGP NH LP "\x40\x63\x00"), S(NLRI1), RESET, 2, 99, D("\x40\x63\x00"),
	  -1, 0 },
	{ "discard then treat-as-withdraw", S_IBGP, NULL, 0, NONE,
	  S(BASE_I "\x40\x06\x01\x00\x80\x04\x02\x00\x00"), S(NLRI1), TAW, 5, 4, -1, NULL, 1, 0 },
	{ "two treat-as-withdraw: first reported", S_IBGP, NULL, 0, NONE,
	  S("\x40\x01\x01\x05" ASP_IBGP NH LP "\x80\x04\x02\x00\x00"), S(NLRI1), TAW, 6, 1, -1, NULL, -1, 0 },
	{ "treat-as-withdraw then AFI disable", S_IBGP, NULL, 0, NONE,
	  S("\x40\x01\x01\x05" ASP_IBGP LP "\x80\x0f\x04\x00\x02\x01\x81"), NONE, AFID, 9, 15, -1, NULL,
	  -1, BGP_FAM_IPV6 },
};

static void test_malformed(void **state)
{
	(void)state;
	unsigned n = sizeof(bad) / sizeof(bad[0]);
	assert_true(n >= 60);
	for (unsigned i = 0; i < n; i++) {
		const struct bad_case *c = &bad[i];
		struct msg_session s = sess(c->sess);
		struct msg_update u;
		struct msg_error e;
		size_t len = c->raw ? mk_raw(msgbuf, c->raw, c->rawl)
				    : mk_update(msgbuf, c->wd, c->wdl, c->at, c->atl, c->nl, c->nll);
		memset(&e, 0xa5, sizeof(e));
		assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
		if (e.action != c->action || (c->action != OK && e.subcode != c->subcode) ||
		    (c->action != OK && e.code != BGP_ERR_UPDATE) ||
		    e.attr_type != c->attr_type) {
			print_error("case %u \"%s\": action %u code %u/%u attr %u (%s); want action %u sub %u attr %u\n",
				    i, c->name, e.action, e.code, e.subcode, e.attr_type,
				    e.reason ? e.reason : "-", c->action, c->subcode, c->attr_type);
			fail();
		}
		assert_non_null(c->action == OK && c->discarded <= 0 ? "" : e.reason);
		if (c->data_len >= 0) {
			if (e.data_len != c->data_len ||
			    (c->data_len > 0 && memcmp(e.data, c->data, e.data_len))) {
				print_error("case %u \"%s\": data_len %u want %d\n", i, c->name,
					    e.data_len, c->data_len);
				fail();
			}
		}
		if (c->discarded >= 0 && e.discarded != c->discarded) {
			print_error("case %u \"%s\": discarded %u want %d\n", i, c->name, e.discarded,
				    c->discarded);
			fail();
		}
		if (c->action == AFID && e.family != c->family) {
			print_error("case %u \"%s\": family %u want %u\n", i, c->name, e.family, c->family);
			fail();
		}
	}
}

/* ---------------------------------------------------------------- positive cases */

static void parse_ok(int kind, const void *at, size_t al, const void *nl, size_t nll,
		     struct msg_update *u, struct msg_error *e)
{
	struct msg_session s = sess(kind);
	size_t len = mk_update(msgbuf, NULL, 0, at, al, nl, nll);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, u, e), 0);
}

static void assert_blob(const struct msg_update *u, const void *want, size_t wl)
{
	if (u->attrs_len != wl || memcmp(u->attrs, want, wl)) {
		print_error("blob (%zu):", u->attrs_len);
		for (size_t i = 0; i < u->attrs_len; i++)
			print_error(" %02x", u->attrs[i]);
		print_error("\nwant (%zu):", wl);
		for (size_t i = 0; i < wl; i++)
			print_error(" %02x", ((const uint8_t *)want)[i]);
		print_error("\n");
		fail();
	}
}

/* Every attribute type, out of order and with odd flags, into the canonical blob. */
static void test_canonical_all(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	static const char in[] =
		"\xc0\x20\x0c\x00\x00\xfd\xe9\x00\x00\x00\x01\x00\x00\x00\x02"   /* LARGE */
		"\xd0\x08\x00\x08\xff\xff\xff\x01\x00\x01\x00\x02"                /* COMM (ext len) */
		"\x50\x01\x00\x01\x02"                                            /* ORIGIN (ext len) */
		"\x40\x02\x0a\x02\x02\x00\x00\xfd\xe9\x00\x06\x1a\x80"           /* AS_PATH */
		"\x40\x03\x04\xc0\x00\x02\x01"                                    /* NEXT_HOP */
		"\x80\x04\x04\x00\x00\x00\x32"                                    /* MED */
		"\x40\x05\x04\x00\x00\x00\xc8"                                    /* LOCAL_PREF */
		"\x40\x06\x00"                                                    /* ATOMIC_AGG */
		"\xe0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09"                   /* AGGREGATOR (partial) */
		"\x80\x09\x04\x0a\x00\x00\x07"                                    /* ORIGINATOR_ID */
		"\x80\x0a\x08\x0a\x00\x00\x63\x0a\x00\x00\x64"                   /* CLUSTER_LIST */
		"\xc0\x10\x08\x00\x02\xfd\xe9\x00\x00\x00\x01"                   /* EXT_COMM */
		"\xc0\x63\x02\xaa\xbb"                                            /* unknown transitive */
		"\x80\x64\x01\xcc";                                               /* unknown non-trans */
	static const char want[] =
		"\x40\x01\x01\x02"
		"\x40\x02\x0a\x02\x02\x00\x00\xfd\xe9\x00\x06\x1a\x80"
		"\x80\x04\x04\x00\x00\x00\x32"
		"\x40\x05\x04\x00\x00\x00\xc8"
		"\x40\x06\x00"
		"\xe0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09"         /* Partial kept */
		"\xc0\x08\x08\xff\xff\xff\x01\x00\x01\x00\x02"
		"\x80\x09\x04\x0a\x00\x00\x07"
		"\x80\x0a\x08\x0a\x00\x00\x63\x0a\x00\x00\x64"
		"\xc0\x10\x08\x00\x02\xfd\xe9\x00\x00\x00\x01"
		"\xc0\x20\x0c\x00\x00\xfd\xe9\x00\x00\x00\x01\x00\x00\x00\x02"
		"\xe0\x63\x02\xaa\xbb";
	parse_ok(S_IBGP, in, sizeof(in) - 1, NLRI1 "\x20\xc0\x00\x02\x05", 9, &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(e.discarded, 0);
	assert_blob(&u, want, sizeof(want) - 1);
	assert_int_equal(u.nexthop4.len, 4);
	assert_memory_equal(u.nexthop4.addr, "\xc0\x00\x02\x01", 4);
	assert_true(u.has_originator_id);
	assert_int_equal(u.originator_id, 0x0a000007);
	assert_int_equal(u.cluster_list_len, 2);
	assert_non_null(u.cluster_list);
	assert_memory_equal(u.cluster_list, "\x0a\x00\x00\x63", 4);
	assert_true(u.no_export);
	assert_false(u.no_advertise);
	assert_int_equal(u.eor_family, BGP_FAM_NONE);
	assert_true(u.has_attrs);

	/* NLRI iteration */
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	msg_nlri_iter_init(&it, &u.nlri);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.len, 24);
	assert_memory_equal(p.addr, "\x0a\x01\x02\x00", 4);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.len, 32);
	assert_memory_equal(p.addr, "\xc0\x00\x02\x05", 4);
	assert_false(msg_nlri_next(&it, &p));

	/* attribute iteration and find */
	struct msg_attr a;
	assert_true(msg_attr_find(u.attrs, u.attrs_len, BGP_ATTR_MED, &a));
	assert_int_equal(a.len, 4);
	assert_int_equal(a.value[3], 0x32);
	assert_false(msg_attr_find(u.attrs, u.attrs_len, BGP_ATTR_NEXT_HOP, &a));
	assert_false(msg_attr_find(u.attrs, u.attrs_len, 0x64, &a));
	assert_true(msg_attr_find(u.attrs, u.attrs_len, 0x63, &a));
	assert_int_equal(a.flags, 0xe0);
	struct msg_attr_iter ai;
	unsigned cnt = 0, last = 0;
	msg_attr_iter_init(&ai, u.attrs, u.attrs_len);
	while (msg_attr_next(&ai, &a)) {
		assert_true(a.type > last || cnt == 0);
		last = a.type;
		cnt++;
	}
	assert_int_equal(cnt, 12);
}

/* A value over 255 octets keeps Extended Length; a short one loses it. */
static void test_canonical_extlen(void **state)
{
	(void)state;
	static uint8_t in[512];
	size_t n = 0;
	struct msg_update u;
	struct msg_error e;

	memcpy(in, BASE_I, sizeof(BASE_I) - 1);
	n = sizeof(BASE_I) - 1;
	in[n++] = 0xd0;
	in[n++] = BGP_ATTR_COMMUNITIES;
	in[n++] = 0x01;
	in[n++] = 0x40;  /* 320 octets = 80 communities */
	for (unsigned i = 0; i < 320; i++)
		in[n++] = (uint8_t)i;
	parse_ok(S_IBGP, in, n, S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	struct msg_attr a;
	assert_true(msg_attr_find(u.attrs, u.attrs_len, BGP_ATTR_COMMUNITIES, &a));
	assert_int_equal(a.len, 320);
	assert_int_equal(a.flags, 0xd0);
	assert_int_equal(a.value[319], (uint8_t)319);
}

/* RFC 6793 reconciliation for a 2-octet peer. */
static void test_as4_reconcile(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	/* AS_PATH SEQ(65001 23456 23456) + AS4_PATH SEQ(400000 400001) -> SEQ(65001 400000 400001) */
	static const char in1[] = ORIGIN_IGP "\x40\x02\x08\x02\x03\xfd\xe9\x5b\xa0\x5b\xa0" NH LP
		"\xc0\x07\x06\x5b\xa0\x0a\x00\x00\x09"                           /* AGGREGATOR AS_TRANS */
		"\xc0\x11\x0a\x02\x02\x00\x06\x1a\x80\x00\x06\x1a\x81"          /* AS4_PATH */
		"\xc0\x12\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";                 /* AS4_AGGREGATOR */
	static const char want1[] = ORIGIN_IGP
		"\x40\x02\x0e\x02\x03\x00\x00\xfd\xe9\x00\x06\x1a\x80\x00\x06\x1a\x81" LP
		"\xc0\x07\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";
	parse_ok(S_IBGP2, S(in1), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_blob(&u, S(want1));

	/* AGGREGATOR not AS_TRANS: AS4_PATH and AS4_AGGREGATOR both ignored */
	static const char in2[] = ORIGIN_IGP "\x40\x02\x08\x02\x03\xfd\xe9\x5b\xa0\x5b\xa0" NH LP
		"\xc0\x07\x06\xfd\xe9\x0a\x00\x00\x09"
		"\xc0\x11\x0a\x02\x02\x00\x06\x1a\x80\x00\x06\x1a\x81"
		"\xc0\x12\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";
	static const char want2[] = ORIGIN_IGP
		"\x40\x02\x0e\x02\x03\x00\x00\xfd\xe9\x00\x00\x5b\xa0\x00\x00\x5b\xa0" LP
		"\xc0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09";
	parse_ok(S_IBGP2, S(in2), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_blob(&u, S(want2));

	/* AS4_PATH longer than AS_PATH: ignored */
	static const char in3[] = ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH LP
		"\xc0\x11\x0a\x02\x02\x00\x06\x1a\x80\x00\x06\x1a\x81";
	static const char want3[] = ORIGIN_IGP "\x40\x02\x06\x02\x01\x00\x00\x5b\xa0" LP;
	parse_ok(S_IBGP2, S(in3), S(NLRI1), &u, &e);
	assert_blob(&u, S(want3));

	/* AS_SET counts one; leading AS_SET kept, then AS4_PATH as its own segment */
	static const char in4[] = ORIGIN_IGP "\x40\x02\x0a\x01\x02\x00\x01\x00\x02\x02\x01\x5b\xa0" NH LP
		"\xc0\x11\x06\x02\x01\x00\x06\x1a\x80";
	static const char want4[] = ORIGIN_IGP
		"\x40\x02\x10\x01\x02\x00\x00\x00\x01\x00\x00\x00\x02\x02\x01\x00\x06\x1a\x80" LP;
	parse_ok(S_IBGP2, S(in4), S(NLRI1), &u, &e);
	assert_blob(&u, S(want4));

	/* 4-octet peer: AS4_PATH and AS4_AGGREGATOR are ignored, not counted as errors */
	static const char in5[] = BASE_I "\xc0\x11\x06\x02\x01\x00\x06\x1a\x80"
		"\xc0\x12\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";
	parse_ok(S_IBGP, S(in5), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(e.discarded, 0);
	assert_blob(&u, S(ORIGIN_IGP ASP_IBGP LP));

	/* 2-octet eBGP peer with a big ASN sends AS_TRANS first */
	static const char in6[] = ORIGIN_IGP "\x40\x02\x04\x02\x01\x5b\xa0" NH
		"\xc0\x11\x06\x02\x01\x00\x06\x1a\x80";
	parse_ok(S_EBGP2_BIG, S(in6), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_blob(&u, S(ORIGIN_IGP "\x40\x02\x06\x02\x01\x00\x06\x1a\x80"));
}

static void test_rs_client_first_as(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	static const char in[] = ORIGIN_IGP "\x40\x02\x06\x02\x01\x00\x00\xfd\xf0" NH;
	parse_ok(S_RS, S(in), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	parse_ok(S_EBGP, S(in), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_TREAT_AS_WITHDRAW);
}

static void test_addpath(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	struct msg_session s = sess(S_AP);
	static const char wd[] = "\x00\x00\x00\x07\x10\x0a\x09";
	static const char nl[] = "\x00\x00\x00\x01\x18\x0a\x01\x02\x00\x00\x00\x02\x18\x0a\x01\x02";
	size_t len = mk_update(msgbuf, S(wd), S(BASE_I), S(nl));
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	msg_nlri_iter_init(&it, &u.withdrawn);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.path_id, 7);
	assert_int_equal(p.len, 16);
	assert_false(msg_nlri_next(&it, &p));
	msg_nlri_iter_init(&it, &u.nlri);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.path_id, 1);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.path_id, 2);
	assert_int_equal(p.len, 24);
	assert_false(msg_nlri_next(&it, &p));

	/* IPv6 MP_REACH with path ids and a 32-octet next hop */
	static const char mp[] = "\x80\x0e\x35\x00\x02\x01\x20"
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
		"\xfe\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"
		"\x00\x00\x00\x09\x30\x20\x01\x0d\xb8\x00\x01"
		"\x00\x00\x00\x0a\x00" ORIGIN_IGP ASP_IBGP LP;
	len = mk_update(msgbuf, NONE, S(mp), NONE);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.mp_reach.family, BGP_FAM_IPV6);
	assert_int_equal(u.mp_nexthop.len, 32);
	assert_int_equal(u.mp_nexthop.addr[16], 0xfe);
	msg_nlri_iter_init(&it, &u.mp_reach);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.family, BGP_FAM_IPV6);
	assert_int_equal(p.path_id, 9);
	assert_int_equal(p.len, 48);
	assert_memory_equal(p.addr, "\x20\x01\x0d\xb8\x00\x01\x00\x00", 8);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.path_id, 10);
	assert_int_equal(p.len, 0);
	assert_false(msg_nlri_next(&it, &p));
	assert_int_equal(u.nexthop4.len, 0);
}

static void test_eor(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	struct msg_session s = sess(S_IBGP);
	size_t len = mk_update(msgbuf, NONE, NONE, NONE);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.eor_family, BGP_FAM_IPV4);
	assert_false(u.has_attrs);

	len = mk_update(msgbuf, NONE, S("\x80\x0f\x03\x00\x02\x01"), NONE);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.eor_family, BGP_FAM_IPV6);
	assert_int_equal(u.attrs_len, 0);

	/* MP_UNREACH with a prefix is a withdrawal, not End-of-RIB */
	len = mk_update(msgbuf, NONE, S("\x80\x0f\x05\x00\x02\x01\x08\x20"), NONE);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.eor_family, BGP_FAM_NONE);
	assert_int_equal(u.mp_unreach.len, 2);

	/* IPv4 withdraw only: not End-of-RIB, no mandatory attributes needed */
	len = mk_update(msgbuf, S("\x08\x0a"), NONE, NONE);
	assert_int_equal(msg_update_parse(msgbuf, len, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.eor_family, BGP_FAM_NONE);
	assert_int_equal(u.withdrawn.len, 2);
}

static void test_host_bits_masked(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	parse_ok(S_IBGP, S(BASE_I), S("\x13\x0a\x01\xff\x00\x0a\x0a\xc0"), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	msg_nlri_iter_init(&it, &u.nlri);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.len, 19);
	assert_memory_equal(p.addr, "\x0a\x01\xe0\x00", 4);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.len, 0);
	assert_memory_equal(p.addr, "\x00\x00\x00\x00", 4);
	assert_true(msg_nlri_next(&it, &p));
	assert_int_equal(p.len, 10);
	assert_false(msg_nlri_next(&it, &p));
}

/* 2-octet peer without AS4_*: AS_PATH and AGGREGATOR widened. */
static void test_two_octet_widen(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	static const char in[] = ORIGIN_IGP "\x40\x02\x08\x02\x01\xfd\xe9\x03\x01\xfd\xe8" NH LP
		"\xc0\x07\x06\xfd\xe9\x0a\x00\x00\x09";
	static const char want[] = ORIGIN_IGP
		"\x40\x02\x0c\x02\x01\x00\x00\xfd\xe9\x03\x01\x00\x00\xfd\xe8" LP
		"\xc0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09";
	parse_ok(S_IBGP2, S(in), S(NLRI1), &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_blob(&u, S(want));
}

/* NEXT_HOP without an IPv4 NLRI field is ignored, even if broken. */
static void test_nexthop_ignored_without_nlri(void **state)
{
	(void)state;
	struct msg_update u;
	struct msg_error e;
	parse_ok(S_IBGP, S(MPR6 ORIGIN_IGP ASP_IBGP "\x40\x03\x04\x00\x00\x00\x00" LP), NONE, &u, &e);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.nexthop4.len, 0);
	assert_int_equal(u.mp_reach.len, 5);
}

/* Bytes past the end must never be read: parse every truncation of a valid UPDATE. */
static void test_truncations(void **state)
{
	(void)state;
	static uint8_t copy[512];
	struct msg_session s = sess(S_IBGP);
	struct msg_update u;
	struct msg_error e;
	size_t len = mk_update(msgbuf, S("\x18\x0a\x09\x09"), S(MPR6 BASE_I), S(NLRI1));
	for (size_t l = 0; l <= len; l++) {
		memcpy(copy, msgbuf, l);
		assert_int_equal(msg_update_parse(copy, l, &s, scratch, &u, &e), 0);
		/* cut exactly between attributes and NLRI is a valid UPDATE again */
		if (l == len || l == len - 4)
			assert_int_equal(e.action, MSG_OK);
		else
			assert_int_equal(e.action, MSG_SESSION_RESET);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_canonical_all),
		cmocka_unit_test(test_canonical_extlen),
		cmocka_unit_test(test_as4_reconcile),
		cmocka_unit_test(test_rs_client_first_as),
		cmocka_unit_test(test_addpath),
		cmocka_unit_test(test_eor),
		cmocka_unit_test(test_host_bits_masked),
		cmocka_unit_test(test_two_octet_widen),
		cmocka_unit_test(test_nexthop_ignored_without_nlri),
		cmocka_unit_test(test_truncations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
