/*
 * bm_msg.c - micro-benchmarks for the UPDATE codec (core/update.c, core/encode.c).
 *
 * Single-threaded cases, driven by bench/micro/shim.cc; items are prefixes.
 * Messages are built once in setup with the encoder itself: "realistic" ones
 * carry 7 prefixes and 4 attributes (ORIGIN, AS_PATH, NEXT_HOP or MP_REACH,
 * LOCAL_PREF), "packed" ones are full 4096-octet UPDATEs.  Parsing counts the
 * full job a session does per message: validate, build the canonical blob and
 * iterate every prefix into struct bgp_prefix.  Encoding packs the same sets.
 */
#include <stdlib.h>
#include <string.h>

#include "bench/micro/bm.h"
#include "core/log.h"
#include "core/msg.h"

#define BM_SETS     64          /* distinct realistic UPDATEs per run */
#define BM_PER_SET  7
#define BM_PACKED   8192        /* prefixes in the packed cases */

struct bm_msg_state {
	unsigned family;
	bool packed;
	struct msg_session s;
	uint8_t *msgs;               /* back-to-back UPDATEs */
	size_t msgs_len;
	size_t nprefixes;
	uint8_t attrs[BM_SETS][64];  /* canonical blobs, one per set */
	size_t attrs_len[BM_SETS];
	struct bgp_nexthop nh;
	struct bgp_prefix *pfx;      /* BM_SETS * BM_PER_SET or BM_PACKED */
	uint8_t *out;
	size_t out_cap;
	uint8_t *scratch;
	volatile uint64_t sink;
};

static uint64_t bm_rng = 0x9e3779b97f4a7c15ull;
static uint32_t bm_rnd(void)
{
	bm_rng ^= bm_rng << 13;
	bm_rng ^= bm_rng >> 7;
	bm_rng ^= bm_rng << 17;
	return (uint32_t)bm_rng;
}

static void *bm_xalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p)
		log_fatal("bm_msg: out of memory (%zu bytes)", n);
	return p;
}

static void bm_gen_prefix(struct bgp_prefix *p, unsigned family)
{
	memset(p, 0, sizeof(*p));
	p->family = (uint8_t)family;
	if (family == BGP_FAM_IPV6) {
		p->len = (bm_rnd() & 3) ? 48 : 32;
		p->addr[0] = 0x20;
		p->addr[1] = 0x01;
		for (unsigned i = 2; i < p->len / 8; i++)
			p->addr[i] = (uint8_t)bm_rnd();
	} else {
		unsigned r = bm_rnd() % 10;
		p->len = r < 6 ? 24 : (uint8_t)(16 + r);   /* mostly /24, some /22../25 */
		if (p->len > 24)
			p->len = 22;
		uint32_t a = bm_rnd() & (0xffffffffu << (32 - p->len));
		p->addr[0] = (uint8_t)(a >> 24);
		p->addr[1] = (uint8_t)(a >> 16);
		p->addr[2] = (uint8_t)(a >> 8);
		p->addr[3] = (uint8_t)a;
	}
}

/* ORIGIN, AS_PATH of 3-5 ASes, LOCAL_PREF: NEXT_HOP / MP_REACH is the 4th. */
static size_t bm_gen_attrs(uint8_t *o)
{
	unsigned n = 3 + bm_rnd() % 3;
	size_t k = 0;
	o[k++] = 0x40; o[k++] = BGP_ATTR_ORIGIN; o[k++] = 1; o[k++] = (uint8_t)(bm_rnd() % 3);
	o[k++] = 0x40; o[k++] = BGP_ATTR_AS_PATH; o[k++] = (uint8_t)(2 + 4 * n);
	o[k++] = BGP_AS_SEQUENCE; o[k++] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint32_t as = 64512 + bm_rnd() % 1000;
		o[k++] = (uint8_t)(as >> 24); o[k++] = (uint8_t)(as >> 16);
		o[k++] = (uint8_t)(as >> 8); o[k++] = (uint8_t)as;
	}
	o[k++] = 0x40; o[k++] = BGP_ATTR_LOCAL_PREF; o[k++] = 4;
	o[k++] = 0; o[k++] = 0; o[k++] = 0; o[k++] = (uint8_t)(100 + bm_rnd() % 100);
	return k;
}

static void *bm_msg_setup(unsigned family, bool packed)
{
	struct bm_msg_state *st = bm_xalloc(sizeof(*st));
	size_t consumed;

	st->family = family;
	st->packed = packed;
	st->s.as4 = true;
	st->s.family[BGP_FAM_IPV4] = st->s.family[BGP_FAM_IPV6] = true;
	st->s.max_msg = BGP_MAX_MSG;
	st->s.local_as = st->s.peer_as = 65000;
	if (family == BGP_FAM_IPV6) {
		st->nh.len = 16;
		st->nh.addr[0] = 0x20;
		st->nh.addr[1] = 0x01;
		st->nh.addr[15] = 1;
	} else {
		st->nh.len = 4;
		st->nh.addr[0] = 10;
		st->nh.addr[3] = 1;
	}
	for (unsigned i = 0; i < BM_SETS; i++)
		st->attrs_len[i] = bm_gen_attrs(st->attrs[i]);
	st->nprefixes = packed ? BM_PACKED : BM_SETS * BM_PER_SET;
	st->pfx = bm_xalloc(st->nprefixes * sizeof(*st->pfx));
	for (size_t i = 0; i < st->nprefixes; i++)
		bm_gen_prefix(&st->pfx[i], family);
	st->out_cap = st->nprefixes * 40 + 65536;
	st->out = bm_xalloc(st->out_cap);
	st->msgs = bm_xalloc(st->out_cap);
	st->scratch = bm_xalloc(MSG_SCRATCH_SIZE);
	if (packed) {
		st->msgs_len = msg_update_pack(st->msgs, st->out_cap, BGP_MAX_MSG, family, false,
					       st->attrs[0], st->attrs_len[0], &st->nh, st->pfx,
					       st->nprefixes, &consumed);
	} else {
		for (unsigned i = 0; i < BM_SETS; i++)
			st->msgs_len += msg_update_pack(st->msgs + st->msgs_len,
							st->out_cap - st->msgs_len, BGP_MAX_MSG,
							family, false, st->attrs[i], st->attrs_len[i],
							&st->nh, st->pfx + i * BM_PER_SET, BM_PER_SET,
							&consumed);
	}
	return st;
}

static void *bm_setup_v4(int64_t a) { (void)a; return bm_msg_setup(BGP_FAM_IPV4, false); }
static void *bm_setup_v4_packed(int64_t a) { (void)a; return bm_msg_setup(BGP_FAM_IPV4, true); }
static void *bm_setup_v6(int64_t a) { (void)a; return bm_msg_setup(BGP_FAM_IPV6, false); }
static void *bm_setup_v6_packed(int64_t a) { (void)a; return bm_msg_setup(BGP_FAM_IPV6, true); }

static void bm_msg_teardown(void *p)
{
	struct bm_msg_state *st = p;
	free(st->pfx);
	free(st->out);
	free(st->msgs);
	free(st->scratch);
	free(st);
}

/* Parse every message, iterate every announced prefix. */
static uint64_t bm_run_parse(void *p)
{
	struct bm_msg_state *st = p;
	const uint8_t *m = st->msgs, *end = st->msgs + st->msgs_len;
	uint64_t n = 0, acc = 0;

	while (m < end) {
		size_t len = (size_t)m[16] << 8 | m[17];
		struct msg_update u;
		struct msg_error e;
		struct msg_nlri_iter it;
		struct bgp_prefix pfx;
		msg_update_parse(m, len, &st->s, st->scratch, &u, &e);
		if (e.action != MSG_OK)
			log_fatal("bm_msg: benchmark UPDATE rejected: %s", e.reason ? e.reason : "?");
		msg_nlri_iter_init(&it, st->family == BGP_FAM_IPV6 ? &u.mp_reach : &u.nlri);
		while (msg_nlri_next(&it, &pfx)) {
			acc += pfx.addr[2];
			n++;
		}
		acc += u.attrs_len;
		m += len;
	}
	st->sink = acc;
	return n;
}

static uint64_t bm_run_encode(void *p)
{
	struct bm_msg_state *st = p;
	size_t consumed, total = 0;

	if (st->packed) {
		total = msg_update_pack(st->out, st->out_cap, BGP_MAX_MSG, st->family, false,
					st->attrs[0], st->attrs_len[0], &st->nh, st->pfx,
					st->nprefixes, &consumed);
	} else {
		for (unsigned i = 0; i < BM_SETS; i++)
			total += msg_update_pack(st->out + total, st->out_cap - total, BGP_MAX_MSG,
						 st->family, false, st->attrs[i], st->attrs_len[i],
						 &st->nh, st->pfx + i * BM_PER_SET, BM_PER_SET,
						 &consumed);
	}
	st->sink = total;
	return st->nprefixes;
}

/* Outbound rewrite for a reflected group (items: attribute sets). */
static uint64_t bm_run_attrs_out(void *p)
{
	struct bm_msg_state *st = p;
	struct msg_out_params op = { .reflect = true, .originator_id = 0x0a000001,
				     .cluster_id = 0x0a0000fe, .as4 = true };
	size_t total = 0;

	for (unsigned i = 0; i < BM_SETS; i++)
		total += msg_attrs_out(st->out, st->out_cap, st->attrs[i], st->attrs_len[i], &op);
	st->sink = total;
	return BM_SETS;
}

const struct bm_case bm_msg_cases[] = {
	{ "msg/parse/ipv4/7pfx", bm_setup_v4, bm_run_parse, bm_msg_teardown, { 0 }, 1 },
	{ "msg/parse/ipv4/packed4096", bm_setup_v4_packed, bm_run_parse, bm_msg_teardown, { 0 }, 1 },
	{ "msg/parse/ipv6/7pfx", bm_setup_v6, bm_run_parse, bm_msg_teardown, { 0 }, 1 },
	{ "msg/parse/ipv6/packed4096", bm_setup_v6_packed, bm_run_parse, bm_msg_teardown, { 0 }, 1 },
	{ "msg/encode/ipv4/7pfx", bm_setup_v4, bm_run_encode, bm_msg_teardown, { 0 }, 1 },
	{ "msg/encode/ipv4/packed4096", bm_setup_v4_packed, bm_run_encode, bm_msg_teardown, { 0 }, 1 },
	{ "msg/encode/ipv6/7pfx", bm_setup_v6, bm_run_encode, bm_msg_teardown, { 0 }, 1 },
	{ "msg/encode/ipv6/packed4096", bm_setup_v6_packed, bm_run_encode, bm_msg_teardown, { 0 }, 1 },
	{ "msg/attrs_out/reflect", bm_setup_v4, bm_run_attrs_out, bm_msg_teardown, { 0 }, 1 },
	{ NULL, NULL, NULL, NULL, { 0 }, 0 },
};
