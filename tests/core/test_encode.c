/*
 * test_encode.c - UPDATE encoder tests (core/encode.c), checked through the
 * parser (core/update.c).
 *
 * Single-threaded cmocka binary.  Round trips pack -> parse for IPv4/IPv6 with
 * and without ADD-PATH at 4096 and 65535 octets, proving every prefix comes
 * back, no message exceeds max_msg and every message but the last is full;
 * withdrawals and End-of-RIB the same way; and the outbound rewrite cases
 * (RFC 4456 reflection, eBGP stripping, prepend, 2-octet peers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/msg.h"

#define NPFX 5000
static uint8_t out[4 << 20];
static uint8_t scratch[MSG_SCRATCH_SIZE];
static struct bgp_prefix pfx[NPFX];
static struct bgp_prefix got[NPFX + 1];

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static void gen_prefixes(unsigned family, bool addpath, size_t n)
{
	unsigned max = bgp_family_maxlen(family);
	for (size_t i = 0; i < n; i++) {
		struct bgp_prefix *p = &pfx[i];
		memset(p, 0, sizeof(*p));
		p->family = (uint8_t)family;
		p->len = (uint8_t)(rnd() % (max + 1));
		for (unsigned b = 0; b < (p->len + 7u) / 8u; b++)
			p->addr[b] = (uint8_t)rnd();
		if (p->len & 7)
			p->addr[p->len / 8] &= (uint8_t)(0xff00u >> (p->len & 7));
		p->path_id = addpath ? rnd() : 0;
	}
}

static struct msg_session ibgp(bool addpath)
{
	struct msg_session s;
	memset(&s, 0, sizeof(s));
	s.as4 = true;
	s.family[BGP_FAM_IPV4] = s.family[BGP_FAM_IPV6] = true;
	s.addpath_rx[BGP_FAM_IPV4] = s.addpath_rx[BGP_FAM_IPV6] = addpath;
	s.max_msg = BGP_MAX_EXT_MSG;
	s.local_as = s.peer_as = 65000;
	return s;
}

/* canonical blob: ORIGIN IGP, AS_PATH SEQ(65001 400000), LOCAL_PREF 100, COMMUNITIES */
static const char blob[] =
	"\x40\x01\x01\x00"
	"\x40\x02\x0a\x02\x02\x00\x00\xfd\xe9\x00\x06\x1a\x80"
	"\x40\x05\x04\x00\x00\x00\x64"
	"\xc0\x08\x08\x00\x01\x00\x01\xff\xff\xff\x01";
#define BLOB_LEN (sizeof(blob) - 1)

static size_t msg_len(const uint8_t *m)
{
	return (size_t)m[16] << 8 | m[17];
}

static bool prefix_eq(const struct bgp_prefix *a, const struct bgp_prefix *b)
{
	return a->family == b->family && a->len == b->len && a->path_id == b->path_id &&
	       memcmp(a->addr, b->addr, 16) == 0;
}

/*
 * Walk packed messages: each parses cleanly, is within max_msg, and (except the
 * last) could not have taken the next prefix.  Returns prefixes seen.
 */
static size_t walk(size_t total, size_t max_msg, unsigned family, bool addpath, bool withdraw,
		   const struct bgp_nexthop *nh, size_t n)
{
	struct msg_session s = ibgp(addpath);
	size_t off = 0, k = 0, msgs = 0;

	while (off < total) {
		const uint8_t *m = out + off;
		size_t len = msg_len(m);
		struct msg_update u;
		struct msg_error e;
		assert_true(len <= max_msg);
		assert_true(off + len <= total);
		assert_int_equal(m[18], BGP_MSG_UPDATE);
		assert_int_equal(msg_update_parse(m, len, &s, scratch, &u, &e), 0);
		if (e.action != MSG_OK) {
			print_error("msg %zu: action %u %u/%u %s\n", msgs, e.action, e.code, e.subcode,
				    e.reason ? e.reason : "");
			fail();
		}
		const struct msg_nlri *blk;
		if (withdraw) {
			blk = family == BGP_FAM_IPV6 ? &u.mp_unreach : &u.withdrawn;
		} else {
			blk = family == BGP_FAM_IPV6 ? &u.mp_reach : &u.nlri;
			assert_int_equal(u.attrs_len, BLOB_LEN);
			assert_memory_equal(u.attrs, blob, BLOB_LEN);
			const struct bgp_nexthop *gnh = family == BGP_FAM_IPV6 ? &u.mp_nexthop
									       : &u.nexthop4;
			assert_int_equal(gnh->len, nh->len);
			assert_memory_equal(gnh->addr, nh->addr, nh->len);
		}
		struct msg_nlri_iter it;
		msg_nlri_iter_init(&it, blk);
		size_t before = k;
		while (k <= n && msg_nlri_next(&it, &got[k]))
			k++;
		assert_true(k > before);  /* no empty messages */
		off += len;
		msgs++;
		if (off < total && k < n)
			assert_true(len + msg_prefix_wire_len(&pfx[k], addpath) > max_msg);
	}
	assert_int_equal(off, total);
	return k;
}

static void roundtrip(unsigned family, bool addpath, size_t max_msg, bool withdraw)
{
	struct bgp_nexthop nh;
	size_t consumed = 0, total;

	memset(&nh, 0, sizeof(nh));
	if (family == BGP_FAM_IPV6) {
		nh.len = 32;
		for (unsigned i = 0; i < 32; i++)
			nh.addr[i] = (uint8_t)(i + 1);
		nh.addr[16] = 0xfe;
		nh.addr[17] = 0x80;
	} else {
		nh.len = 4;
		memcpy(nh.addr, "\x0a\x00\x00\x01", 4);
	}
	gen_prefixes(family, addpath, NPFX);
	if (withdraw)
		total = msg_withdraw_pack(out, sizeof(out), max_msg, family, addpath, pfx, NPFX,
					  &consumed);
	else
		total = msg_update_pack(out, sizeof(out), max_msg, family, addpath,
					(const uint8_t *)blob, BLOB_LEN, &nh, pfx, NPFX, &consumed);
	assert_int_equal(consumed, NPFX);
	size_t k = walk(total, max_msg, family, addpath, withdraw, &nh, NPFX);
	assert_int_equal(k, NPFX);
	for (size_t i = 0; i < NPFX; i++) {
		if (!prefix_eq(&pfx[i], &got[i])) {
			print_error("prefix %zu differs (len %u vs %u)\n", i, pfx[i].len, got[i].len);
			fail();
		}
	}
}

static void test_rt_v4(void **st) { (void)st; roundtrip(BGP_FAM_IPV4, false, BGP_MAX_MSG, false); }
static void test_rt_v4_ext(void **st) { (void)st; roundtrip(BGP_FAM_IPV4, false, BGP_MAX_EXT_MSG, false); }
static void test_rt_v4_ap(void **st) { (void)st; roundtrip(BGP_FAM_IPV4, true, BGP_MAX_MSG, false); }
static void test_rt_v6(void **st) { (void)st; roundtrip(BGP_FAM_IPV6, false, BGP_MAX_MSG, false); }
static void test_rt_v6_ap_ext(void **st) { (void)st; roundtrip(BGP_FAM_IPV6, true, BGP_MAX_EXT_MSG, false); }
static void test_rt_v6_ap(void **st) { (void)st; roundtrip(BGP_FAM_IPV6, true, BGP_MAX_MSG, false); }
static void test_wd_v4(void **st) { (void)st; roundtrip(BGP_FAM_IPV4, false, BGP_MAX_MSG, true); }
static void test_wd_v4_ap_ext(void **st) { (void)st; roundtrip(BGP_FAM_IPV4, true, BGP_MAX_EXT_MSG, true); }
static void test_wd_v6(void **st) { (void)st; roundtrip(BGP_FAM_IPV6, false, BGP_MAX_MSG, true); }
static void test_wd_v6_ap(void **st) { (void)st; roundtrip(BGP_FAM_IPV6, true, BGP_MAX_EXT_MSG, true); }

/* A full output buffer stops cleanly at a message boundary and reports what fit. */
static void test_pack_cap(void **state)
{
	(void)state;
	struct bgp_nexthop nh = { .len = 4, .addr = { 10, 0, 0, 1 } };
	size_t consumed;
	gen_prefixes(BGP_FAM_IPV4, false, 2000);
	size_t total = msg_update_pack(out, 6000, BGP_MAX_MSG, BGP_FAM_IPV4, false,
				       (const uint8_t *)blob, BLOB_LEN, &nh, pfx, 2000, &consumed);
	assert_true(consumed > 0 && consumed < 2000);
	assert_true(total <= 6000);
	assert_int_equal(walk(total, BGP_MAX_MSG, BGP_FAM_IPV4, false, false, &nh, consumed),
			 consumed);
	/* too small for even one prefix */
	total = msg_update_pack(out, 40, BGP_MAX_MSG, BGP_FAM_IPV4, false, (const uint8_t *)blob,
				BLOB_LEN, &nh, pfx, 2000, &consumed);
	assert_int_equal(total, 0);
	assert_int_equal(consumed, 0);
	/* a bad next hop length refuses */
	nh.len = 16;
	total = msg_update_pack(out, sizeof(out), BGP_MAX_MSG, BGP_FAM_IPV4, false,
				(const uint8_t *)blob, BLOB_LEN, &nh, pfx, 10, &consumed);
	assert_int_equal(total, 0);
}

static void test_eor_encode(void **state)
{
	(void)state;
	struct msg_session s = ibgp(false);
	struct msg_update u;
	struct msg_error e;
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		size_t n = msg_eor_encode(out, 64, fam);
		assert_true(n >= BGP_HDR_LEN + 4);
		assert_int_equal(msg_len(out), n);
		assert_int_equal(msg_update_parse(out, n, &s, scratch, &u, &e), 0);
		assert_int_equal(e.action, MSG_OK);
		assert_int_equal(u.eor_family, fam);
	}
	assert_int_equal(msg_eor_encode(out, 20, BGP_FAM_IPV6), 0);
}

/* ---------------------------------------------------------------- attrs_out */

static void expect_out(const struct msg_out_params *p, const void *in, size_t il, const void *want,
		       size_t wl)
{
	size_t n = msg_attrs_out(out, sizeof(out), in, il, p);
	if (n != wl || memcmp(out, want, wl)) {
		print_error("got (%zu):", n);
		for (size_t i = 0; i < n; i++)
			print_error(" %02x", out[i]);
		print_error("\nwant (%zu):", wl);
		for (size_t i = 0; i < wl; i++)
			print_error(" %02x", ((const uint8_t *)want)[i]);
		print_error("\n");
		fail();
	}
	/* the output never fits a buffer one octet shorter */
	if (wl > 0)
		assert_int_equal(msg_attrs_out(out, wl - 1, in, il, p), 0);
}

#define S(x) x, sizeof(x) - 1

static void test_out_reflect(void **state)
{
	(void)state;
	struct msg_out_params p = { .reflect = true, .originator_id = 0x0a000005, .cluster_id = 0x0a0000fe,
				    .as4 = true };
	/* absent: ORIGINATOR_ID and CLUSTER_LIST are added in type order */
	expect_out(&p, S("\x40\x01\x01\x00\x40\x02\x00\x40\x05\x04\x00\x00\x00\x64"
			 "\xc0\x10\x08\x00\x02\xfd\xe9\x00\x00\x00\x01"),
		   S("\x40\x01\x01\x00\x40\x02\x00\x40\x05\x04\x00\x00\x00\x64"
		     "\x80\x09\x04\x0a\x00\x00\x05\x80\x0a\x04\x0a\x00\x00\xfe"
		     "\xc0\x10\x08\x00\x02\xfd\xe9\x00\x00\x00\x01"));
	/* present: ORIGINATOR_ID kept, cluster id prepended */
	expect_out(&p, S("\x40\x01\x01\x00\x80\x09\x04\x0a\x00\x00\x07\x80\x0a\x04\x0a\x00\x00\x63"),
		   S("\x40\x01\x01\x00\x80\x09\x04\x0a\x00\x00\x07"
		     "\x80\x0a\x08\x0a\x00\x00\xfe\x0a\x00\x00\x63"));
	/* empty blob gets both */
	expect_out(&p, NULL, 0,
		   S("\x80\x09\x04\x0a\x00\x00\x05\x80\x0a\x04\x0a\x00\x00\xfe"));
	/* CLUSTER_LIST crossing 255 octets switches to Extended Length */
	static uint8_t in[300], want[300];
	memcpy(in, "\x80\x0a\xfc", 3);
	memset(in + 3, 0x11, 252);
	memcpy(want, "\x80\x09\x04\x0a\x00\x00\x05\x90\x0a\x01\x00\x0a\x00\x00\xfe", 15);
	memset(want + 15, 0x11, 252);
	expect_out(&p, in, 255, want, 15 + 252);
}

static void test_out_ebgp(void **state)
{
	(void)state;
	struct msg_out_params p = { .reflect = true, .ebgp = true, .cluster_id = 1, .originator_id = 2,
				    .as4 = true };
	static const char in[] = "\x40\x01\x01\x00\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"
		"\x80\x04\x04\x00\x00\x00\x05\x40\x05\x04\x00\x00\x00\x64"
		"\x80\x09\x04\x0a\x00\x00\x07\x80\x0a\x04\x0a\x00\x00\x63\xe0\x63\x01\x01";
	expect_out(&p, S(in), S("\x40\x01\x01\x00\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"
				"\x80\x04\x04\x00\x00\x00\x05\xe0\x63\x01\x01"));
	/* with prepend (plain eBGP) */
	p.prepend_as = 65000;
	expect_out(&p, S(in), S("\x40\x01\x01\x00\x40\x02\x0a\x02\x02\x00\x00\xfd\xe8\x00\x00\xfd\xe9"
				"\x80\x04\x04\x00\x00\x00\x05\xe0\x63\x01\x01"));
	/* prepend onto a path starting with AS_SET, and onto no path at all */
	expect_out(&p, S("\x40\x02\x06\x01\x01\x00\x00\xfd\xe9"),
		   S("\x40\x02\x0c\x02\x01\x00\x00\xfd\xe8\x01\x01\x00\x00\xfd\xe9"));
	expect_out(&p, S("\x40\x01\x01\x02"),
		   S("\x40\x01\x01\x02\x40\x02\x06\x02\x01\x00\x00\xfd\xe8"));
}

/* 2-octet peer: AS_TRANS in AS_PATH/AGGREGATOR plus AS4_PATH/AS4_AGGREGATOR; parse restores. */
static void test_out_as2(void **state)
{
	(void)state;
	struct msg_out_params p = { .as4 = false };
	static const char in[] = "\x40\x01\x01\x00"
		"\x40\x02\x10\x03\x01\x00\x00\xfd\xe8\x02\x02\x00\x00\xfd\xe9\x00\x06\x1a\x80"
		"\x40\x05\x04\x00\x00\x00\x64"
		"\xc0\x07\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";
	static const char want[] = "\x40\x01\x01\x00"
		"\x40\x02\x0a\x03\x01\xfd\xe8\x02\x02\xfd\xe9\x5b\xa0"
		"\x40\x05\x04\x00\x00\x00\x64"
		"\xc0\x07\x06\x5b\xa0\x0a\x00\x00\x09"
		"\xc0\x11\x0a\x02\x02\x00\x00\xfd\xe9\x00\x06\x1a\x80"
		"\xc0\x12\x08\x00\x06\x1a\x82\x0a\x00\x00\x09";
	expect_out(&p, S(in), S(want));

	/* through the wire and back into the same canonical blob */
	struct bgp_nexthop nh = { .len = 4, .addr = { 10, 0, 0, 1 } };
	struct bgp_prefix one = { .family = BGP_FAM_IPV4, .len = 8, .addr = { 10 } };
	size_t consumed, al = sizeof(want) - 1;
	static uint8_t attrs[256];
	memcpy(attrs, want, al);
	size_t n = msg_update_pack(out, sizeof(out), BGP_MAX_MSG, BGP_FAM_IPV4, false, attrs, al, &nh,
				   &one, 1, &consumed);
	assert_int_equal(consumed, 1);
	struct msg_session s = ibgp(false);
	s.as4 = false;
	struct msg_update u;
	struct msg_error e;
	assert_int_equal(msg_update_parse(out, n, &s, scratch, &u, &e), 0);
	assert_int_equal(e.action, MSG_OK);
	assert_int_equal(u.attrs_len, sizeof(in) - 1);
	assert_memory_equal(u.attrs, in, sizeof(in) - 1);

	/* small ASNs only: no AS4_* attributes */
	expect_out(&p, S("\x40\x02\x06\x02\x01\x00\x00\xfd\xe9\xc0\x07\x08\x00\x00\xfd\xe9\x0a\x00\x00\x09"),
		   S("\x40\x02\x04\x02\x01\xfd\xe9\xc0\x07\x06\xfd\xe9\x0a\x00\x00\x09"));
	/* a big prepended AS alone forces AS4_PATH */
	p.prepend_as = 400000;
	expect_out(&p, S("\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"),
		   S("\x40\x02\x06\x02\x02\x5b\xa0\xfd\xe9"
		     "\xc0\x11\x0a\x02\x02\x00\x06\x1a\x80\x00\x00\xfd\xe9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rt_v4),
		cmocka_unit_test(test_rt_v4_ext),
		cmocka_unit_test(test_rt_v4_ap),
		cmocka_unit_test(test_rt_v6),
		cmocka_unit_test(test_rt_v6_ap),
		cmocka_unit_test(test_rt_v6_ap_ext),
		cmocka_unit_test(test_wd_v4),
		cmocka_unit_test(test_wd_v4_ap_ext),
		cmocka_unit_test(test_wd_v6),
		cmocka_unit_test(test_wd_v6_ap),
		cmocka_unit_test(test_pack_cap),
		cmocka_unit_test(test_eor_encode),
		cmocka_unit_test(test_out_reflect),
		cmocka_unit_test(test_out_ebgp),
		cmocka_unit_test(test_out_as2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
