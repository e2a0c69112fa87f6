/*
 * fuzz_mrt.c - libFuzzer target for the MRT readers (core/mrt.c): record
 * framing (mrt_next), PEER_INDEX_TABLE, the four TABLE_DUMP_V2 unicast RIB
 * subtypes with their entries, BGP4MP(_ET) messages and mrt_attrs_split.
 *
 * MRT files come from anywhere (ricochet-load --mrt reads them), so every
 * reader must answer "malformed" instead of reading out of bounds.  The input
 * is one file; it is copied to an exact-size heap buffer so ASan flags any
 * read past its end.  Beyond "no crash", the properties checked are:
 *   - framing: a record's body lies inside the input, and a record's length
 *     covers its header and body;
 *   - every view a reader returns (entry attributes, the BGP message of a
 *     BGP4MP record) lies inside its record's body;
 *   - a RIB record whose entries all split is re-encoded with mrt_rib_encode
 *     and read back: same prefix, sequence, entries, blobs and next hops.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define FZ_MAX_ENTRIES 64
#define FZ_BLOB 4096

static bool inside(const uint8_t *p, size_t n, const uint8_t *lo, size_t lon)
{
	return p >= lo && n <= lon && (size_t)(p - lo) <= lon - n;
}

struct fz_entry {
	uint16_t peer_index;
	uint32_t originated, path_id;
	struct bgp_nexthop nh;
	long blob_len;
	uint8_t blob[FZ_BLOB];
};

static struct fz_entry fz_e[FZ_MAX_ENTRIES];
static uint8_t fz_out[1 << 20];

/* Re-encode the n entries read from rib and read them back. */
static void rib_round_trip(const struct mrt_rib *rib, size_t n)
{
	struct mrt_rib_entry enc[FZ_MAX_ENTRIES];
	for (size_t i = 0; i < n; i++)
		enc[i] = (struct mrt_rib_entry){ .peer_index = fz_e[i].peer_index,
						 .originated = fz_e[i].originated,
						 .path_id = fz_e[i].path_id, .nh = &fz_e[i].nh,
						 .attrs = fz_e[i].blob,
						 .attrs_len = (size_t)fz_e[i].blob_len };
	size_t len = mrt_rib_encode(fz_out, sizeof(fz_out), 7, rib->seq, &rib->pfx, rib->addpath, enc, n);
	if (len == 0)
		return;          /* an entry too long once its next hop is added back */
	struct mrt_rec r;
	CHECK(mrt_next(fz_out, len, &r) == (long)len);
	struct mrt_rib back;
	CHECK(mrt_rib_parse(&r, &back) == 0);
	CHECK(back.pfx.family == rib->pfx.family && back.pfx.len == rib->pfx.len);
	CHECK(memcmp(back.pfx.addr, rib->pfx.addr, (rib->pfx.len + 7u) / 8u) == 0);
	CHECK(back.seq == rib->seq && back.addpath == rib->addpath && back.count == n);
	struct mrt_rib_view v;
	uint8_t blob[FZ_BLOB];
	struct bgp_nexthop nh;
	for (size_t i = 0; i < n; i++) {
		CHECK(mrt_rib_next(&back, &v) == 1);
		CHECK(v.peer_index == fz_e[i].peer_index && v.originated == fz_e[i].originated);
		CHECK(v.path_id == (rib->addpath ? fz_e[i].path_id : 0));
		long bl = mrt_attrs_split(v.attrs, v.attrs_len, rib->pfx.family, blob, sizeof(blob), &nh);
		CHECK(bl == fz_e[i].blob_len);
		CHECK(memcmp(blob, fz_e[i].blob, (size_t)bl) == 0);
		CHECK(nh.len == fz_e[i].nh.len && memcmp(nh.addr, fz_e[i].nh.addr, nh.len) == 0);
	}
	CHECK(mrt_rib_next(&back, &v) == 0);
}

static void one_rib(const struct mrt_rec *r)
{
	struct mrt_rib rib;
	if (mrt_rib_parse(r, &rib) != 0)
		return;
	CHECK(rib.pfx.len <= bgp_family_maxlen(rib.pfx.family));
	struct mrt_rib_view v;
	size_t n = 0;
	bool all = true;
	int rc;
	while ((rc = mrt_rib_next(&rib, &v)) == 1) {
		CHECK(inside(v.attrs, v.attrs_len, r->body, r->len));
		struct fz_entry *e = &fz_e[n < FZ_MAX_ENTRIES ? n : FZ_MAX_ENTRIES - 1];
		e->blob_len = mrt_attrs_split(v.attrs, v.attrs_len, rib.pfx.family, e->blob,
					      sizeof(e->blob), &e->nh);
		CHECK(e->blob_len <= (long)v.attrs_len);
		CHECK(e->nh.len <= sizeof(e->nh.addr));
		e->peer_index = v.peer_index;
		e->originated = v.originated;
		e->path_id = v.path_id;
		all = all && e->blob_len >= 0;
		n++;
	}
	CHECK(rc == 0 || rc == -1);
	if (rc == 0 && all && n <= FZ_MAX_ENTRIES)
		rib_round_trip(&rib, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	size_t off = 0;
	for (unsigned recs = 0; recs < 4096 && off < size; recs++) {
		struct mrt_rec r;
		long l = mrt_next(buf + off, size - off, &r);
		CHECK(l >= -1);
		if (l <= 0)
			break;
		CHECK((size_t)l <= size - off && (size_t)l >= MRT_HDR_LEN);
		CHECK(inside(r.body, r.len, buf + off, (size_t)l));

		struct mrt_peer peers[8];
		size_t np = 0;
		uint32_t collector;
		if (mrt_peer_index_parse(&r, &collector, peers, 8, &np) == 0)
			for (size_t i = 0; i < np && i < 8; i++)
				CHECK(peers[i].addr.family == BGP_FAM_IPV4 || peers[i].addr.family == BGP_FAM_IPV6);
		one_rib(&r);
		struct mrt_bgp4mp m;
		if (mrt_bgp4mp_parse(&r, &m) == 0) {
			CHECK(inside(m.msg, m.msg_len, r.body, r.len));
			CHECK(m.peer.family == m.local.family);
		}
		off += (size_t)l;
	}
	free(buf);
	return 0;
}
