/*
 * fuzz_update.c - libFuzzer target for msg_update_parse and the encoder.
 *
 * Input: one selector octet (session shape: 4-octet AS, eBGP, route-server
 * client, ADD-PATH, IPv6 negotiated), then the UPDATE body; the header is
 * patched in.  Each input is copied to an exact-size heap buffer so ASan
 * catches any read past the message.  Beyond "no crash" it checks properties:
 * the verdict is well formed, every NLRI block iterates to its end with
 * in-range masked prefixes, the canonical blob is sorted, unique, free of the
 * excluded types and minimally length-encoded; and an accepted UPDATE, packed
 * again by msg_update_pack, parses back to the same blob and prefixes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAXP 8192

static uint8_t scratch[MSG_SCRATCH_SIZE];
static uint8_t scratch2[MSG_SCRATCH_SIZE];
static uint8_t blob_copy[MSG_SCRATCH_SIZE];
static uint8_t packed[4 * BGP_MAX_EXT_MSG];
static struct bgp_prefix pf[MAXP], pf2[MAXP];

static size_t walk_nlri(const struct msg_nlri *n, struct bgp_prefix *out)
{
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	size_t k = 0;

	if (n->len == 0)
		return 0;
	CHECK(n->family < BGP_FAM_COUNT);
	msg_nlri_iter_init(&it, n);
	while (msg_nlri_next(&it, &p)) {
		unsigned max = bgp_family_maxlen(n->family);
		CHECK(p.len <= max && p.family == n->family);
		for (unsigned b = p.len; b < 128; b++)
			CHECK(!(p.addr[b / 8] & (0x80 >> (b % 8))));
		if (!n->addpath)
			CHECK(p.path_id == 0);
		if (out && k < MAXP)
			out[k] = p;
		k++;
	}
	CHECK(it.p == it.end);  /* validated blocks are consumed exactly */
	return k;
}

static void check_blob(const uint8_t *b, size_t len)
{
	struct msg_attr_iter it;
	struct msg_attr a;
	int last = -1;
	size_t used = 0;

	msg_attr_iter_init(&it, b, len);
	while (msg_attr_next(&it, &a)) {
		CHECK((int)a.type > last);
		last = a.type;
		CHECK(a.type != BGP_ATTR_NEXT_HOP && a.type != BGP_ATTR_MP_REACH_NLRI &&
		      a.type != BGP_ATTR_MP_UNREACH_NLRI && a.type != BGP_ATTR_AS4_PATH &&
		      a.type != BGP_ATTR_AS4_AGGREGATOR);
		CHECK(!!(a.flags & BGP_ATTR_F_EXTLEN) == (a.len > 255));
		CHECK(a.flags & (BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE));
		if (a.type == BGP_ATTR_AGGREGATOR)
			CHECK(a.len == 8);
		used += (a.len > 255 ? 4 : 3) + (size_t)a.len;
	}
	CHECK(used == len);
}

/* Re-encode the announced prefixes with the blob and parse them back. */
static void roundtrip(const struct msg_session *s0, const struct msg_update *u, size_t n,
		      bool v6)
{
	struct msg_session s = *s0;
	struct msg_update u2;
	struct msg_error e2;
	size_t consumed, off = 0, k = 0;
	const struct bgp_nexthop *nh = v6 ? &u->mp_nexthop : &u->nexthop4;
	unsigned fam = v6 ? BGP_FAM_IPV6 : BGP_FAM_IPV4;

	if (n == 0 || n > MAXP)
		return;
	s.as4 = true;                 /* the blob is in 4-octet form */
	s.rs_client = s.ebgp;         /* first AS already checked on the original */
	memcpy(blob_copy, u->attrs, u->attrs_len);
	size_t total = msg_update_pack(packed, sizeof(packed), BGP_MAX_EXT_MSG, fam,
				       s.addpath_rx[fam], blob_copy, u->attrs_len, nh, pf, n,
				       &consumed);
	while (off < total) {
		size_t len = (size_t)packed[off + 16] << 8 | packed[off + 17];
		CHECK(len <= BGP_MAX_EXT_MSG && off + len <= total);
		msg_update_parse(packed + off, len, &s, scratch2, &u2, &e2);
		CHECK(e2.action == MSG_OK && e2.discarded == 0);
		CHECK(u2.attrs_len == u->attrs_len && !memcmp(u2.attrs, blob_copy, u->attrs_len));
		size_t got = walk_nlri(v6 ? &u2.mp_reach : &u2.nlri, pf2 + k);
		for (size_t i = 0; i < got; i++) {
			const struct bgp_prefix *a = &pf[k + i], *b = &pf2[k + i];
			CHECK(a->len == b->len && a->path_id == b->path_id &&
			      !memcmp(a->addr, b->addr, 16));
		}
		k += got;
		off += len;
	}
	CHECK(k == consumed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_session s;
	struct msg_update u;
	struct msg_error err;

	if (size < 1 || size - 1 + BGP_HDR_LEN > BGP_MAX_EXT_MSG)
		return 0;
	uint8_t sel = data[0];
	size_t len = size - 1 + BGP_HDR_LEN;
	uint8_t *m = malloc(len);
	if (!m)
		return 0;
	memset(m, 0xff, BGP_MARKER_LEN);
	m[16] = (uint8_t)(len >> 8);
	m[17] = (uint8_t)len;
	m[18] = BGP_MSG_UPDATE;
	memcpy(m + BGP_HDR_LEN, data + 1, size - 1);

	memset(&s, 0, sizeof(s));
	s.as4 = sel & 1;
	s.ebgp = sel & 2;
	s.rs_client = (sel & 6) == 6;
	s.addpath_rx[BGP_FAM_IPV4] = sel & 8;
	s.addpath_rx[BGP_FAM_IPV6] = sel & 16;
	s.family[BGP_FAM_IPV4] = true;
	s.family[BGP_FAM_IPV6] = !(sel & 32);
	s.max_msg = BGP_MAX_EXT_MSG;
	s.local_as = 65000;
	s.peer_as = (sel & 64) ? 400000 : (s.ebgp ? 65001 : 65000);

	CHECK(msg_update_parse(m, len, &s, scratch, &u, &err) == 0);
	CHECK(err.action <= MSG_SESSION_RESET);
	CHECK(err.data_len <= MSG_ERR_DATA_MAX);
	if (err.action != MSG_OK) {
		CHECK(err.reason != NULL && err.code == BGP_ERR_UPDATE);
		CHECK(err.subcode >= 1 && err.subcode <= BGP_ERR_UPD_ASPATH);
	}
	if (err.action == MSG_AFI_DISABLE)
		CHECK(err.family < BGP_FAM_COUNT);
	if (err.action != MSG_SESSION_RESET) {
		walk_nlri(&u.withdrawn, NULL);
		walk_nlri(&u.mp_unreach, NULL);
		size_t n4 = walk_nlri(&u.nlri, pf);
		check_blob(u.attrs, u.attrs_len);
		if (u.eor_family != BGP_FAM_NONE)
			CHECK(u.nlri.len == 0 && u.withdrawn.len == 0 && u.mp_reach.len == 0);
		if (err.action == MSG_OK && n4 > 0) {
			CHECK(u.nexthop4.len == 4);
			roundtrip(&s, &u, n4, false);
		}
		if (err.action == MSG_OK && u.mp_reach.len > 0 && u.mp_reach.family == BGP_FAM_IPV6 &&
		    u.nlri.len == 0) {
			size_t n6 = walk_nlri(&u.mp_reach, pf);
			roundtrip(&s, &u, n6, true);
		}
	}
	free(m);
	return 0;
}
