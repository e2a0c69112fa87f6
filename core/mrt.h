/*
 * mrt.h - MRT routing information export format (RFC 6396) with the
 * ADD-PATH extensions of RFC 8050: encoders for TABLE_DUMP_V2 (peer index
 * table, IPv4/IPv6 unicast RIB records, plain and ADD-PATH) and BGP4MP /
 * BGP4MP_ET message records (AS4, plain and ADD-PATH); and a reader for the
 * same records (used by ricochet-load --mrt and the tests).
 *
 * Ownership and threading: pure functions over caller-owned buffers, like
 * core/msg.h; nothing allocates or keeps state, any thread may call them.
 * Readers are bounds-checked and return -1 on malformed input (files are
 * input from elsewhere: never trusted, never fatal).
 */
#ifndef RICOCHET_CORE_MRT_H
#define RICOCHET_CORE_MRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bgp.h"

#define MRT_HDR_LEN 12

enum mrt_type {
	MRT_TABLE_DUMP_V2 = 13,
	MRT_BGP4MP = 16,
	MRT_BGP4MP_ET = 17,              /* + 4-octet microseconds after the header */
};
enum mrt_td2_subtype {
	MRT_TD2_PEER_INDEX_TABLE = 1,
	MRT_TD2_RIB_IPV4_UNICAST = 2,
	MRT_TD2_RIB_IPV6_UNICAST = 4,
	MRT_TD2_RIB_IPV4_UNICAST_ADDPATH = 8,
	MRT_TD2_RIB_IPV6_UNICAST_ADDPATH = 10,
};
enum mrt_bgp4mp_subtype {
	MRT_BGP4MP_STATE_CHANGE = 0,
	MRT_BGP4MP_MESSAGE = 1,
	MRT_BGP4MP_MESSAGE_AS4 = 4,
	MRT_BGP4MP_STATE_CHANGE_AS4 = 5,
	MRT_BGP4MP_MESSAGE_ADDPATH = 8,
	MRT_BGP4MP_MESSAGE_AS4_ADDPATH = 9,
};

/* A peer of the PEER_INDEX_TABLE (its position is the peer index). */
struct mrt_peer {
	struct bgp_addr addr;
	uint32_t bgp_id;                 /* host order */
	uint32_t asn;
};

/* ---------------------------------------------------------------- writers */

/* Each returns the record length written at out, or 0 if cap is too small. */
size_t mrt_peer_index_encode(uint8_t *out, size_t cap, uint32_t ts, uint32_t collector_id,
			     const char *view, const struct mrt_peer *peers, size_t n);

/* One path of a RIB record: attrs is a canonical blob (core/bgp.h); the
 * encoder adds NEXT_HOP (IPv4) or the next-hop-only MP_REACH_NLRI (IPv6,
 * RFC 6396 s4.3.4) in type order. */
struct mrt_rib_entry {
	uint16_t peer_index;
	uint32_t originated;             /* seconds since the epoch */
	uint32_t path_id;                /* written only in ADD-PATH records */
	const struct bgp_nexthop *nh;
	const uint8_t *attrs;
	size_t attrs_len;
};
size_t mrt_rib_encode(uint8_t *out, size_t cap, uint32_t ts, uint32_t seq, const struct bgp_prefix *pfx,
		      bool addpath, const struct mrt_rib_entry *e, size_t n);

/*
 * A BGP4MP (et: BGP4MP_ET with microseconds) MESSAGE_AS4 or, with addpath,
 * MESSAGE_AS4_ADDPATH record around one whole BGP message (header included).
 * peer and local must be of the same family.
 */
size_t mrt_bgp4mp_encode(uint8_t *out, size_t cap, uint64_t time_us, bool et, bool addpath,
			 uint32_t peer_as, uint32_t local_as, const struct bgp_addr *peer,
			 const struct bgp_addr *local, const uint8_t *msg, size_t len);

/* ---------------------------------------------------------------- readers */

struct mrt_rec {
	uint32_t ts_sec, ts_usec;
	uint16_t type, subtype;
	const uint8_t *body;             /* after the (ET) header */
	uint32_t len;
};
/* Frame one record: >0 its total length, 0 need more bytes, -1 malformed. */
long mrt_next(const uint8_t *buf, size_t len, struct mrt_rec *r);

/* PEER_INDEX_TABLE: fills up to max peers, *n gets the count in the record.  0 / -1. */
int mrt_peer_index_parse(const struct mrt_rec *r, uint32_t *collector_id, struct mrt_peer *peers,
			 size_t max, size_t *n);

/* A RIB record (any of the four unicast subtypes) and its entries. */
struct mrt_rib {
	struct bgp_prefix pfx;
	uint32_t seq;
	uint16_t count;
	bool addpath;
	const uint8_t *p, *end;          /* iteration state */
};
struct mrt_rib_view {
	uint16_t peer_index;
	uint32_t originated;
	uint32_t path_id;
	const uint8_t *attrs;            /* wire attributes as stored (4-octet AS_PATH) */
	uint16_t attrs_len;
};
int mrt_rib_parse(const struct mrt_rec *r, struct mrt_rib *rib);
/* 1 and *v filled, 0 at the end, -1 malformed. */
int mrt_rib_next(struct mrt_rib *rib, struct mrt_rib_view *v);

struct mrt_bgp4mp {
	uint32_t peer_as, local_as;
	struct bgp_addr peer, local;
	bool as4, addpath;
	const uint8_t *msg;              /* whole BGP message */
	size_t msg_len;
};
/* MESSAGE, MESSAGE_AS4 and their ADDPATH forms: 0; other subtypes or malformed: -1. */
int mrt_bgp4mp_parse(const struct mrt_rec *r, struct mrt_bgp4mp *m);

/*
 * Split stored attributes into a blob without NEXT_HOP and MP_REACH_NLRI
 * (what msg_update_pack takes) and the next hop they carried.  Accepts the
 * RIB-entry MP_REACH form (next hop only) and the full one.  Returns the blob
 * length, or -1 if malformed or cap is too small.
 */
long mrt_attrs_split(const uint8_t *attrs, size_t len, unsigned family, uint8_t *blob, size_t cap,
		     struct bgp_nexthop *nh);

#endif
