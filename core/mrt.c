/*
 * mrt.c - MRT (RFC 6396, RFC 8050) record encoders and readers.
 *
 * Pure functions over caller buffers (see mrt.h); no allocation, no state.
 * Encoders check the room once up front from the sizes they will write;
 * readers move a bounds-checked cursor and give up with -1 at the first
 * inconsistency, since a file may come from anywhere.
 */
#include <string.h>

#include "core/mrt.h"

/* ---------------------------------------------------------------- helpers */

static uint8_t *put8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	bgp_put16(p, v);
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	bgp_put32(p, v);
	return p + 4;
}

static unsigned addr_len(const struct bgp_addr *a)
{
	return a->family == BGP_FAM_IPV6 ? 16 : 4;
}

static uint8_t *put_header(uint8_t *p, uint32_t ts, uint16_t type, uint16_t sub, uint32_t len)
{
	p = put32(p, ts);
	p = put16(p, type);
	p = put16(p, sub);
	return put32(p, len);
}

/* ---------------------------------------------------------------- writers */

size_t mrt_peer_index_encode(uint8_t *out, size_t cap, uint32_t ts, uint32_t collector_id,
			     const char *view, const struct mrt_peer *peers, size_t n)
{
	size_t vl = view ? strlen(view) : 0;
	if (n > 65535 || vl > 65535)
		return 0;
	size_t body = 4 + 2 + vl + 2;
	for (size_t i = 0; i < n; i++)
		body += 1 + 4 + addr_len(&peers[i].addr) + 4;
	if (MRT_HDR_LEN + body > cap || body > UINT32_MAX)
		return 0;
	uint8_t *p = put_header(out, ts, MRT_TABLE_DUMP_V2, MRT_TD2_PEER_INDEX_TABLE, (uint32_t)body);
	p = put32(p, collector_id);
	p = put16(p, (uint16_t)vl);
	memcpy(p, view, vl);
	p += vl;
	p = put16(p, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct mrt_peer *pe = &peers[i];
		bool v6 = pe->addr.family == BGP_FAM_IPV6;
		/* bit 0: IPv6 address, bit 1: 4-octet AS (always, it is never ambiguous) */
		p = put8(p, (uint8_t)((v6 ? 1 : 0) | 2));
		p = put32(p, pe->bgp_id);
		memcpy(p, pe->addr.addr, addr_len(&pe->addr));
		p += addr_len(&pe->addr);
		p = put32(p, pe->asn);
	}
	return (size_t)(p - out);
}

/* Room the next hop takes as an attribute in a RIB entry. */
static size_t nh_attr_len(unsigned fam, const struct bgp_nexthop *nh)
{
	if (!nh || !nh->len)
		return 0;
	return fam == BGP_FAM_IPV6 ? 3 + 1 + nh->len : 3 + 4;
}

static uint8_t *put_nh_attr(uint8_t *p, unsigned fam, const struct bgp_nexthop *nh)
{
	if (fam == BGP_FAM_IPV6) {
		p = put8(p, BGP_ATTR_F_OPTIONAL);
		p = put8(p, BGP_ATTR_MP_REACH_NLRI);
		p = put8(p, (uint8_t)(1 + nh->len));
		p = put8(p, nh->len);
		memcpy(p, nh->addr, nh->len);
		return p + nh->len;
	}
	p = put8(p, BGP_ATTR_F_TRANSITIVE);
	p = put8(p, BGP_ATTR_NEXT_HOP);
	p = put8(p, 4);
	memcpy(p, nh->addr, 4);
	return p + 4;
}

/* Copy a canonical blob, inserting the next hop attribute where its type code belongs. */
static uint8_t *put_attrs(uint8_t *p, unsigned fam, const struct bgp_nexthop *nh, const uint8_t *blob,
			  size_t len)
{
	uint8_t nht = fam == BGP_FAM_IPV6 ? BGP_ATTR_MP_REACH_NLRI : BGP_ATTR_NEXT_HOP;
	bool done = !nh || !nh->len;
	size_t i = 0;
	while (i + 3 <= len) {
		uint8_t flags = blob[i], type = blob[i + 1];
		size_t hl = (flags & BGP_ATTR_F_EXTLEN) ? 4 : 3;
		if (i + hl > len)
			break;
		size_t al = hl == 4 ? bgp_get16(blob + i + 2) : blob[i + 2];
		if (i + hl + al > len)
			break;
		if (!done && type > nht) {
			p = put_nh_attr(p, fam, nh);
			done = true;
		}
		memcpy(p, blob + i, hl + al);
		p += hl + al;
		i += hl + al;
	}
	if (!done)
		p = put_nh_attr(p, fam, nh);
	return p;
}

size_t mrt_rib_encode(uint8_t *out, size_t cap, uint32_t ts, uint32_t seq, const struct bgp_prefix *pfx,
		      bool addpath, const struct mrt_rib_entry *e, size_t n)
{
	unsigned fam = pfx->family;
	if (fam >= BGP_FAM_COUNT || n > 65535)
		return 0;
	size_t plen = (pfx->len + 7u) / 8u;
	size_t body = 4 + 1 + plen + 2;
	for (size_t i = 0; i < n; i++) {
		size_t al = e[i].attrs_len + nh_attr_len(fam, e[i].nh);
		if (al > 65535)
			return 0;
		body += 2 + 4 + (addpath ? 4 : 0) + 2 + al;
	}
	if (MRT_HDR_LEN + body > cap || body > UINT32_MAX)
		return 0;
	uint16_t sub = fam == BGP_FAM_IPV6
		? (addpath ? MRT_TD2_RIB_IPV6_UNICAST_ADDPATH : MRT_TD2_RIB_IPV6_UNICAST)
		: (addpath ? MRT_TD2_RIB_IPV4_UNICAST_ADDPATH : MRT_TD2_RIB_IPV4_UNICAST);
	uint8_t *p = put_header(out, ts, MRT_TABLE_DUMP_V2, sub, (uint32_t)body);
	p = put32(p, seq);
	p = put8(p, pfx->len);
	memcpy(p, pfx->addr, plen);
	p += plen;
	p = put16(p, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		p = put16(p, e[i].peer_index);
		p = put32(p, e[i].originated);
		if (addpath)
			p = put32(p, e[i].path_id);
		p = put16(p, (uint16_t)(e[i].attrs_len + nh_attr_len(fam, e[i].nh)));
		p = put_attrs(p, fam, e[i].nh, e[i].attrs, e[i].attrs_len);
	}
	return (size_t)(p - out);
}

size_t mrt_bgp4mp_encode(uint8_t *out, size_t cap, uint64_t time_us, bool et, bool addpath,
			 uint32_t peer_as, uint32_t local_as, const struct bgp_addr *peer,
			 const struct bgp_addr *local, const uint8_t *msg, size_t len)
{
	unsigned al = addr_len(peer);
	size_t body = (et ? 4 : 0) + 4 + 4 + 2 + 2 + 2 * al + len;
	if (MRT_HDR_LEN + body > cap || peer->family != local->family)
		return 0;
	uint8_t *p = put_header(out, (uint32_t)(time_us / 1000000u), et ? MRT_BGP4MP_ET : MRT_BGP4MP,
				addpath ? MRT_BGP4MP_MESSAGE_AS4_ADDPATH : MRT_BGP4MP_MESSAGE_AS4,
				(uint32_t)body);
	if (et)
		p = put32(p, (uint32_t)(time_us % 1000000u));
	p = put32(p, peer_as);
	p = put32(p, local_as);
	p = put16(p, 0);                 /* interface index: not known */
	p = put16(p, peer->family == BGP_FAM_IPV6 ? BGP_AFI_IPV6 : BGP_AFI_IPV4);
	memcpy(p, peer->addr, al);
	p += al;
	memcpy(p, local->addr, al);
	p += al;
	memcpy(p, msg, len);
	return (size_t)(p - out) + len;
}

/* ---------------------------------------------------------------- readers */

long mrt_next(const uint8_t *buf, size_t len, struct mrt_rec *r)
{
	if (len < MRT_HDR_LEN)
		return 0;
	uint32_t blen = bgp_get32(buf + 8);
	if (blen > (64u << 20))
		return -1;
	if (len < MRT_HDR_LEN + (size_t)blen)
		return 0;
	memset(r, 0, sizeof(*r));
	r->ts_sec = bgp_get32(buf);
	r->type = bgp_get16(buf + 4);
	r->subtype = bgp_get16(buf + 6);
	r->body = buf + MRT_HDR_LEN;
	r->len = blen;
	if (r->type == MRT_BGP4MP_ET) {
		if (blen < 4)
			return -1;
		r->ts_usec = bgp_get32(r->body);
		r->body += 4;
		r->len -= 4;
	}
	return (long)(MRT_HDR_LEN + blen);
}

int mrt_peer_index_parse(const struct mrt_rec *r, uint32_t *collector_id, struct mrt_peer *peers,
			 size_t max, size_t *n)
{
	const uint8_t *p = r->body, *end = r->body + r->len;
	if (r->type != MRT_TABLE_DUMP_V2 || r->subtype != MRT_TD2_PEER_INDEX_TABLE || end - p < 6)
		return -1;
	*collector_id = bgp_get32(p);
	uint16_t vl = bgp_get16(p + 4);
	p += 6;
	if (end - p < vl + 2)
		return -1;
	p += vl;
	uint16_t cnt = bgp_get16(p);
	p += 2;
	*n = cnt;
	for (size_t i = 0; i < cnt; i++) {
		if (end - p < 1)
			return -1;
		uint8_t t = *p++;
		size_t al = (t & 1) ? 16 : 4, asl = (t & 2) ? 4 : 2;
		if ((size_t)(end - p) < 4 + al + asl)
			return -1;
		if (i < max) {
			struct mrt_peer *pe = &peers[i];
			memset(pe, 0, sizeof(*pe));
			pe->bgp_id = bgp_get32(p);
			pe->addr.family = (t & 1) ? BGP_FAM_IPV6 : BGP_FAM_IPV4;
			memcpy(pe->addr.addr, p + 4, al);
			pe->asn = asl == 4 ? bgp_get32(p + 4 + al) : bgp_get16(p + 4 + al);
		}
		p += 4 + al + asl;
	}
	return 0;
}

int mrt_rib_parse(const struct mrt_rec *r, struct mrt_rib *rib)
{
	if (r->type != MRT_TABLE_DUMP_V2)
		return -1;
	memset(rib, 0, sizeof(*rib));
	switch (r->subtype) {
	case MRT_TD2_RIB_IPV4_UNICAST: rib->pfx.family = BGP_FAM_IPV4; break;
	case MRT_TD2_RIB_IPV6_UNICAST: rib->pfx.family = BGP_FAM_IPV6; break;
	case MRT_TD2_RIB_IPV4_UNICAST_ADDPATH: rib->pfx.family = BGP_FAM_IPV4; rib->addpath = true; break;
	case MRT_TD2_RIB_IPV6_UNICAST_ADDPATH: rib->pfx.family = BGP_FAM_IPV6; rib->addpath = true; break;
	default: return -1;
	}
	const uint8_t *p = r->body, *end = r->body + r->len;
	if (end - p < 5)
		return -1;
	rib->seq = bgp_get32(p);
	rib->pfx.len = p[4];
	p += 5;
	if (rib->pfx.len > bgp_family_maxlen(rib->pfx.family))
		return -1;
	size_t pl = (rib->pfx.len + 7u) / 8u;
	if ((size_t)(end - p) < pl + 2)
		return -1;
	memcpy(rib->pfx.addr, p, pl);
	if (rib->pfx.len % 8)
		rib->pfx.addr[pl - 1] &= (uint8_t)(0xFF << (8 - rib->pfx.len % 8));
	p += pl;
	rib->count = bgp_get16(p);
	rib->p = p + 2;
	rib->end = end;
	return 0;
}

int mrt_rib_next(struct mrt_rib *rib, struct mrt_rib_view *v)
{
	if (rib->p >= rib->end)
		return 0;
	size_t fixed = 2 + 4 + (rib->addpath ? 4 : 0) + 2;
	if ((size_t)(rib->end - rib->p) < fixed)
		return -1;
	const uint8_t *p = rib->p;
	v->peer_index = bgp_get16(p);
	v->originated = bgp_get32(p + 2);
	p += 6;
	v->path_id = 0;
	if (rib->addpath) {
		v->path_id = bgp_get32(p);
		p += 4;
	}
	v->attrs_len = bgp_get16(p);
	p += 2;
	if ((size_t)(rib->end - p) < v->attrs_len)
		return -1;
	v->attrs = p;
	rib->p = p + v->attrs_len;
	return 1;
}

int mrt_bgp4mp_parse(const struct mrt_rec *r, struct mrt_bgp4mp *m)
{
	if (r->type != MRT_BGP4MP && r->type != MRT_BGP4MP_ET)
		return -1;
	memset(m, 0, sizeof(*m));
	switch (r->subtype) {
	case MRT_BGP4MP_MESSAGE: break;
	case MRT_BGP4MP_MESSAGE_AS4: m->as4 = true; break;
	case MRT_BGP4MP_MESSAGE_ADDPATH: m->addpath = true; break;
	case MRT_BGP4MP_MESSAGE_AS4_ADDPATH: m->as4 = m->addpath = true; break;
	default: return -1;
	}
	const uint8_t *p = r->body, *end = r->body + r->len;
	size_t asl = m->as4 ? 4 : 2;
	if ((size_t)(end - p) < 2 * asl + 4)
		return -1;
	m->peer_as = asl == 4 ? bgp_get32(p) : bgp_get16(p);
	m->local_as = asl == 4 ? bgp_get32(p + asl) : bgp_get16(p + asl);
	p += 2 * asl + 2;
	uint16_t afi = bgp_get16(p);
	p += 2;
	size_t al = afi == BGP_AFI_IPV6 ? 16 : afi == BGP_AFI_IPV4 ? 4 : 0;
	if (!al || (size_t)(end - p) < 2 * al + BGP_HDR_LEN)
		return -1;
	m->peer.family = m->local.family = al == 16 ? BGP_FAM_IPV6 : BGP_FAM_IPV4;
	memcpy(m->peer.addr, p, al);
	memcpy(m->local.addr, p + al, al);
	p += 2 * al;
	m->msg = p;
	m->msg_len = (size_t)(end - p);
	if (bgp_get16(p + 16) != m->msg_len)
		return -1;
	return 0;
}

long mrt_attrs_split(const uint8_t *attrs, size_t len, unsigned family, uint8_t *blob, size_t cap,
		     struct bgp_nexthop *nh)
{
	size_t i = 0, o = 0;
	memset(nh, 0, sizeof(*nh));
	while (i < len) {
		if (len - i < 3)
			return -1;
		uint8_t flags = attrs[i], type = attrs[i + 1];
		size_t hl = (flags & BGP_ATTR_F_EXTLEN) ? 4 : 3;
		if (len - i < hl)
			return -1;
		size_t al = hl == 4 ? bgp_get16(attrs + i + 2) : attrs[i + 2];
		if (len - i - hl < al)
			return -1;
		const uint8_t *v = attrs + i + hl;
		if (type == BGP_ATTR_NEXT_HOP) {
			if (al != 4)
				return -1;
			if (family == BGP_FAM_IPV4) {
				nh->len = 4;
				memcpy(nh->addr, v, 4);
			}
		} else if (type == BGP_ATTR_MP_REACH_NLRI) {
			/* RIB form: nhlen, nh.  Full form: afi(2) safi(1) nhlen nh reserved nlri */
			const uint8_t *q = v;
			size_t ql = al;
			if (ql >= 1 && (size_t)q[0] + 1 == ql) {
				q += 1;
				ql = q[-1];
			} else if (ql >= 4 && (size_t)q[3] + 4 <= ql) {
				ql = q[3];
				q += 4;
			} else {
				return -1;
			}
			if (ql > sizeof(nh->addr))
				return -1;
			if (family == BGP_FAM_IPV6) {
				nh->len = (uint8_t)ql;
				memcpy(nh->addr, q, ql);
			}
		} else if (type != BGP_ATTR_MP_UNREACH_NLRI) {
			if (o + hl + al > cap)
				return -1;
			memcpy(blob + o, attrs + i, hl + al);
			o += hl + al;
		}
		i += hl + al;
	}
	return (long)o;
}
