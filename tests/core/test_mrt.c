/*
 * test_mrt.c - core/mrt.c: every encoder read back by the reader (table
 * driven over families, ADD-PATH, next-hop forms), exact wire bytes of a
 * small RIB record, and truncated or inconsistent input refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/mrt.h"

static uint8_t buf[1 << 16];

/* ORIGIN IGP, AS_PATH (4-octet) 65001 65002, MED 7, COMMUNITIES 1:2 - canonical order */
static const uint8_t blob[] = {
	0x40, 1, 1, 0,
	0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea,
	0x80, 4, 4, 0, 0, 0, 7,
	0xc0, 8, 4, 0, 1, 0, 2,
};

static void test_peer_index_roundtrip(void **state)
{
	(void)state;
	struct mrt_peer in[3] = { 0 };
	bgp_addr_parse("192.0.2.1", &in[0].addr);
	in[0].bgp_id = 0x01020304;
	in[0].asn = 65001;
	bgp_addr_parse("2001:db8::1", &in[1].addr);
	in[1].bgp_id = 0x05060708;
	in[1].asn = 4200000000u;
	bgp_addr_parse("10.0.0.1", &in[2].addr);
	in[2].asn = 1;
	size_t n = mrt_peer_index_encode(buf, sizeof(buf), 1000, 0x0a000001, "view", in, 3);
	assert_int_equal(n, 12 + 4 + 2 + 4 + 2 + (1 + 4 + 4 + 4) * 2 + (1 + 4 + 16 + 4));
	struct mrt_rec r;
	assert_int_equal(mrt_next(buf, n, &r), (long)n);
	assert_int_equal(r.type, MRT_TABLE_DUMP_V2);
	assert_int_equal(r.subtype, MRT_TD2_PEER_INDEX_TABLE);
	assert_int_equal(r.ts_sec, 1000);
	struct mrt_peer out[3];
	size_t cnt;
	uint32_t cid;
	assert_int_equal(mrt_peer_index_parse(&r, &cid, out, 3, &cnt), 0);
	assert_int_equal(cnt, 3);
	assert_int_equal(cid, 0x0a000001);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(out[i].addr.family, in[i].addr.family);
		assert_memory_equal(out[i].addr.addr, in[i].addr.addr, 16);
		assert_int_equal(out[i].asn, in[i].asn);
		assert_int_equal(out[i].bgp_id, in[i].bgp_id);
	}
	/* one byte short: no record yet; a cut body: malformed */
	assert_int_equal(mrt_next(buf, n - 1, &r), 0);
	buf[11] -= 4;
	assert_int_equal(mrt_next(buf, n, &r), (long)n - 4);
	assert_int_equal(mrt_peer_index_parse(&r, &cid, out, 3, &cnt), -1);
}

struct rib_case {
	const char *pfx;
	const char *nh;
	bool addpath;
	unsigned npaths;
};

static const struct rib_case rib_cases[] = {
	{ "10.1.0.0/16", "192.0.2.1", false, 1 },
	{ "10.1.2.128/25", "192.0.2.1", true, 3 },
	{ "0.0.0.0/0", "192.0.2.9", false, 2 },
	{ "2001:db8:1::/48", "2001:db8::1", false, 1 },
	{ "2001:db8:1:2:3::/80", "2001:db8::2", true, 2 },
	{ "::/0", "2001:db8::3", true, 1 },
};

static void test_rib_roundtrip(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(rib_cases) / sizeof(rib_cases[0]); c++) {
		const struct rib_case *tc = &rib_cases[c];
		struct bgp_prefix p;
		struct bgp_addr a;
		struct bgp_nexthop nh = { 0 };
		assert_int_equal(bgp_prefix_parse(tc->pfx, &p), 0);
		assert_int_equal(bgp_addr_parse(tc->nh, &a), 0);
		nh.len = a.family == BGP_FAM_IPV6 ? 16 : 4;
		memcpy(nh.addr, a.addr, nh.len);
		struct mrt_rib_entry e[3];
		for (unsigned i = 0; i < tc->npaths; i++)
			e[i] = (struct mrt_rib_entry){ .peer_index = (uint16_t)(i + 1), .originated = 500 + i,
						       .path_id = 100 + i, .nh = &nh, .attrs = blob,
						       .attrs_len = sizeof(blob) };
		size_t n = mrt_rib_encode(buf, sizeof(buf), 42, (uint32_t)c, &p, tc->addpath, e, tc->npaths);
		assert_true(n > 0);
		struct mrt_rec r;
		assert_int_equal(mrt_next(buf, n, &r), (long)n);
		struct mrt_rib rib;
		assert_int_equal(mrt_rib_parse(&r, &rib), 0);
		assert_int_equal(rib.addpath, tc->addpath);
		assert_int_equal(rib.seq, c);
		assert_int_equal(rib.count, tc->npaths);
		assert_int_equal(rib.pfx.family, p.family);
		assert_int_equal(rib.pfx.len, p.len);
		assert_memory_equal(rib.pfx.addr, p.addr, 16);
		struct mrt_rib_view v;
		for (unsigned i = 0; i < tc->npaths; i++) {
			assert_int_equal(mrt_rib_next(&rib, &v), 1);
			assert_int_equal(v.peer_index, i + 1);
			assert_int_equal(v.originated, 500 + i);
			assert_int_equal(v.path_id, tc->addpath ? 100 + i : 0);
			uint8_t b2[256];
			struct bgp_nexthop nh2;
			long bl = mrt_attrs_split(v.attrs, v.attrs_len, p.family, b2, sizeof(b2), &nh2);
			assert_int_equal(bl, (long)sizeof(blob));
			assert_memory_equal(b2, blob, sizeof(blob));
			assert_int_equal(nh2.len, nh.len);
			assert_memory_equal(nh2.addr, nh.addr, nh.len);
		}
		assert_int_equal(mrt_rib_next(&rib, &v), 0);
		/* truncating the last entry makes it malformed */
		r.len -= 1;
		assert_int_equal(mrt_rib_parse(&r, &rib), 0);
		int k;
		while ((k = mrt_rib_next(&rib, &v)) == 1)
			;
		assert_int_equal(k, -1);
	}
}

/* The exact bytes of a one-path IPv4 record: NEXT_HOP lands between AS_PATH and MED. */
static void test_rib_wire(void **state)
{
	(void)state;
	struct bgp_prefix p;
	bgp_prefix_parse("10.1.0.0/16", &p);
	struct bgp_nexthop nh = { .len = 4, .addr = { 192, 0, 2, 1 } };
	struct mrt_rib_entry e = { .peer_index = 2, .originated = 0x11223344, .nh = &nh, .attrs = blob,
				   .attrs_len = 17 };       /* ORIGIN + AS_PATH only */
	size_t n = mrt_rib_encode(buf, sizeof(buf), 0x01020304, 9, &p, false, &e, 1);
	static const uint8_t want[] = {
		1, 2, 3, 4, 0, 13, 0, 2, 0, 0, 0, 41,          /* header: TD2 / RIB_IPV4_UNICAST */
		0, 0, 0, 9, 16, 10, 1, 0, 1,                   /* seq, /16, 10.1, 1 entry */
		0, 2, 0x11, 0x22, 0x33, 0x44, 0, 24,           /* peer 2, originated, attr len */
		0x40, 1, 1, 0,
		0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea,
		0x40, 3, 4, 192, 0, 2, 1,
	};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(mrt_rib_encode(buf, sizeof(want) - 1, 0, 9, &p, false, &e, 1), 0);
}

static void test_bgp4mp_roundtrip(void **state)
{
	(void)state;
	uint8_t msg[23];
	memset(msg, 0xff, 16);
	msg[16] = 0;
	msg[17] = 23;
	msg[18] = 2;
	memset(msg + 19, 0, 4);                        /* empty UPDATE (IPv4 End-of-RIB) */
	static const char *addrs[][2] = { { "192.0.2.1", "192.0.2.2" }, { "2001:db8::1", "2001:db8::2" } };
	for (int et = 0; et < 2; et++) {
		for (int fam = 0; fam < 2; fam++) {
			for (int ap = 0; ap < 2; ap++) {
				struct bgp_addr pa, la;
				bgp_addr_parse(addrs[fam][0], &pa);
				bgp_addr_parse(addrs[fam][1], &la);
				uint64_t us = 1700000000ull * 1000000u + 123456u;
				size_t n = mrt_bgp4mp_encode(buf, sizeof(buf), us, et, ap, 4200000001u, 65000, &pa,
							     &la, msg, sizeof(msg));
				assert_true(n > 0);
				struct mrt_rec r;
				assert_int_equal(mrt_next(buf, n, &r), (long)n);
				assert_int_equal(r.type, et ? MRT_BGP4MP_ET : MRT_BGP4MP);
				assert_int_equal(r.subtype, ap ? MRT_BGP4MP_MESSAGE_AS4_ADDPATH : MRT_BGP4MP_MESSAGE_AS4);
				assert_int_equal(r.ts_sec, 1700000000u);
				assert_int_equal(r.ts_usec, et ? 123456u : 0);
				struct mrt_bgp4mp m;
				assert_int_equal(mrt_bgp4mp_parse(&r, &m), 0);
				assert_true(m.as4);
				assert_int_equal(m.addpath, ap);
				assert_int_equal(m.peer_as, 4200000001u);
				assert_int_equal(m.local_as, 65000);
				assert_memory_equal(m.peer.addr, pa.addr, 16);
				assert_memory_equal(m.local.addr, la.addr, 16);
				assert_int_equal(m.msg_len, sizeof(msg));
				assert_memory_equal(m.msg, msg, sizeof(msg));
				/* the BGP length no longer matches the record: refused */
				buf[n - 6] = 24;
				assert_int_equal(mrt_bgp4mp_parse(&r, &m), -1);
			}
		}
	}
	struct bgp_addr a4, a6;
	bgp_addr_parse("192.0.2.1", &a4);
	bgp_addr_parse("2001:db8::1", &a6);
	assert_int_equal(mrt_bgp4mp_encode(buf, sizeof(buf), 0, false, false, 1, 2, &a4, &a6, msg, sizeof(msg)), 0);
}

static void test_attrs_split_forms(void **state)
{
	(void)state;
	/* full MP_REACH (AFI 2, SAFI 1, nh 16, reserved, one NLRI) and an MP_UNREACH are dropped */
	uint8_t a[] = {
		0x40, 1, 1, 2,
		0x80, 14, 22, 0, 2, 1, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
		0x80, 15, 3, 0, 2, 1,
	};
	uint8_t b[64];
	struct bgp_nexthop nh;
	assert_int_equal(mrt_attrs_split(a, sizeof(a), BGP_FAM_IPV6, b, sizeof(b), &nh), 4);
	assert_int_equal(nh.len, 16);
	assert_int_equal(nh.addr[0], 0x20);
	assert_int_equal(nh.addr[15], 1);
	/* bad lengths */
	uint8_t bad1[] = { 0x40, 3, 3, 1, 2, 3 };
	assert_int_equal(mrt_attrs_split(bad1, sizeof(bad1), BGP_FAM_IPV4, b, sizeof(b), &nh), -1);
	uint8_t bad2[] = { 0x40, 1, 5, 0 };
	assert_int_equal(mrt_attrs_split(bad2, sizeof(bad2), BGP_FAM_IPV4, b, sizeof(b), &nh), -1);
	assert_int_equal(mrt_attrs_split(a, sizeof(a), BGP_FAM_IPV6, b, 3, &nh), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_index_roundtrip),
		cmocka_unit_test(test_rib_roundtrip),
		cmocka_unit_test(test_rib_wire),
		cmocka_unit_test(test_bgp4mp_roundtrip),
		cmocka_unit_test(test_attrs_split_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
