/*
 * encode.c - UPDATE encoding: the outbound rewrite of a canonical attribute
 * blob for one update group (RFC 4456 reflection, eBGP / route-server
 * stripping, AS prepend, RFC 6793 2-octet peers), and the packers that put as
 * many prefixes as fit into each UPDATE, plus End-of-RIB markers.
 *
 * Threads: the reflection thread encodes once per update group; tests and
 * load generators call it too.  Pure functions over caller buffers.
 *
 * Why it looks like this: encoding happens once per group and the bytes are
 * shared by every member, so the rewrite is a single ordered walk of the blob
 * that splices the attributes it adds (ORIGINATOR_ID, CLUSTER_LIST, AS4_PATH,
 * AS4_AGGREGATOR) in at their type position, keeping the output sorted like
 * the blob.  Packers compute the fixed part of a message once and then copy
 * prefixes until the next one would pass max_msg; MP_REACH/MP_UNREACH always
 * use the extended length form so the header never has to move, and they come
 * first among the attributes (RFC 7606 s5.1).  Nothing allocates.
 */
#include <string.h>

#include "core/msg.h"

/* ---------------------------------------------------------------- output cursor */

/* A bounded writer: the first overflow latches fail, later writes are no-ops. */
struct enc_buf {
	uint8_t *p, *end;
	bool fail;
};

static inline uint8_t *enc_take(struct enc_buf *b, size_t n)
{
	if (b->fail || (size_t)(b->end - b->p) < n) {
		b->fail = true;
		return NULL;
	}
	uint8_t *r = b->p;
	b->p += n;
	return r;
}

static void enc_hdr(struct enc_buf *b, uint8_t flags, uint8_t type, size_t len)
{
	flags &= (uint8_t)~BGP_ATTR_F_EXTLEN;
	if (len > 255) {
		uint8_t *o = enc_take(b, 4);
		if (o) {
			o[0] = flags | BGP_ATTR_F_EXTLEN;
			o[1] = type;
			bgp_put16(o + 2, (uint16_t)len);
		}
	} else {
		uint8_t *o = enc_take(b, 3);
		if (o) {
			o[0] = flags;
			o[1] = type;
			o[2] = (uint8_t)len;
		}
	}
}

static void enc_bytes(struct enc_buf *b, const void *v, size_t n)
{
	uint8_t *o = enc_take(b, n);
	if (o && n)
		memcpy(o, v, n);
}

static void enc_u32(struct enc_buf *b, uint32_t v)
{
	uint8_t *o = enc_take(b, 4);
	if (o)
		bgp_put32(o, v);
}

/* ---------------------------------------------------------------- AS_PATH forms */

enum enc_as_mode {
	ENC_AS4,        /* 4-octet ASNs */
	ENC_AS2,        /* 2-octet, AS_TRANS for what does not fit */
	ENC_AS4PATH,    /* 4-octet without confederation segments (RFC 6793 s4.2.2) */
};

/*
 * Write (or, with b == NULL, measure) a canonical 4-octet AS_PATH value in the
 * given form, with prepend (0 = none) added in front.  *wide tells whether any
 * ASN does not fit 2 octets.
 */
static size_t enc_aspath(struct enc_buf *b, const uint8_t *v, size_t len, uint32_t prepend,
			 enum enc_as_mode mode, bool *wide)
{
	const uint8_t *end = v ? v + len : v;   /* no offset on a NULL (absent) path */
	unsigned asz = mode == ENC_AS2 ? 2 : 4;
	size_t n_out = 0;
	bool pre = prepend != 0;
	bool w = prepend > 0xffff;

	if (pre && !(len >= 2 && v[0] == BGP_AS_SEQUENCE && v[1] < 255)) {
		if (b) {
			uint8_t *o = enc_take(b, 2 + asz);
			if (o) {
				o[0] = BGP_AS_SEQUENCE;
				o[1] = 1;
				if (asz == 4)
					bgp_put32(o + 2, prepend);
				else
					bgp_put16(o + 2, prepend > 0xffff ? BGP_AS_TRANS : (uint16_t)prepend);
			}
		}
		n_out += 2 + asz;
		pre = false;
	}
	while (end - v >= 2) {
		uint8_t type = v[0], n = v[1];
		const uint8_t *as = v + 2;
		if ((size_t)(end - as) < 4 * (size_t)n)
			break;  /* not canonical: stop rather than read past */
		v = as + 4 * (size_t)n;
		if (mode == ENC_AS4PATH &&
		    (type == BGP_AS_CONFED_SEQUENCE || type == BGP_AS_CONFED_SET))
			continue;
		unsigned cnt = n + (pre ? 1u : 0u);
		size_t sz = 2 + (size_t)cnt * asz;
		n_out += sz;
		uint8_t *o = b ? enc_take(b, sz) : NULL;
		if (o) {
			o[0] = type;
			o[1] = (uint8_t)cnt;
			o += 2;
		}
		for (unsigned i = 0; i < cnt; i++) {
			uint32_t a = (pre && i == 0) ? prepend : bgp_get32(as + 4 * (i - (pre ? 1 : 0)));
			w |= a > 0xffff;
			if (!o)
				continue;
			if (asz == 4) {
				bgp_put32(o, a);
				o += 4;
			} else {
				bgp_put16(o, a > 0xffff ? BGP_AS_TRANS : (uint16_t)a);
				o += 2;
			}
		}
		pre = false;
	}
	if (wide)
		*wide = w;
	return n_out;
}

static void enc_aspath_attr(struct enc_buf *b, uint8_t type, const uint8_t *v, size_t len,
			    uint32_t prepend, enum enc_as_mode mode)
{
	size_t n = enc_aspath(NULL, v, len, prepend, mode, NULL);
	uint8_t flags = type == BGP_ATTR_AS_PATH ? BGP_ATTR_F_TRANSITIVE
						 : BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE;
	if (n > 0xffff) {
		b->fail = true;
		return;
	}
	enc_hdr(b, flags, type, n);
	enc_aspath(b, v, len, prepend, mode, NULL);
}

/* ---------------------------------------------------------------- attrs_out */

/* Attributes the rewrite may add, by type code, in emission order. */
struct enc_plan {
	const struct msg_out_params *p;
	const uint8_t *aspath;            /* canonical AS_PATH value, NULL if absent */
	size_t aspath_len;
	const uint8_t *aggr;              /* canonical AGGREGATOR value, NULL if absent */
	bool add_aspath;                  /* create AS_PATH to carry the prepend */
	bool add_originator;
	bool add_cluster;
	bool add_as4path;
	bool add_as4aggr;
	bool add_local_pref;
};

/* Emit the added attributes whose type is below limit (and not yet emitted). */
static void enc_added_below(struct enc_buf *b, struct enc_plan *pl, unsigned limit)
{
	const struct msg_out_params *p = pl->p;

	if (pl->add_aspath && BGP_ATTR_AS_PATH < limit) {
		enc_aspath_attr(b, BGP_ATTR_AS_PATH, NULL, 0, p->prepend_as,
				p->as4 ? ENC_AS4 : ENC_AS2);
		pl->add_aspath = false;
	}
	if (pl->add_local_pref && BGP_ATTR_LOCAL_PREF < limit) {
		enc_hdr(b, BGP_ATTR_F_TRANSITIVE, BGP_ATTR_LOCAL_PREF, 4);
		enc_u32(b, p->local_pref);
		pl->add_local_pref = false;
	}
	if (pl->add_originator && BGP_ATTR_ORIGINATOR_ID < limit) {
		enc_hdr(b, BGP_ATTR_F_OPTIONAL, BGP_ATTR_ORIGINATOR_ID, 4);
		enc_u32(b, p->originator_id);
		pl->add_originator = false;
	}
	if (pl->add_cluster && BGP_ATTR_CLUSTER_LIST < limit) {
		enc_hdr(b, BGP_ATTR_F_OPTIONAL, BGP_ATTR_CLUSTER_LIST, 4);
		enc_u32(b, p->cluster_id);
		pl->add_cluster = false;
	}
	if (pl->add_as4path && BGP_ATTR_AS4_PATH < limit) {
		enc_aspath_attr(b, BGP_ATTR_AS4_PATH, pl->aspath, pl->aspath_len, p->prepend_as,
				ENC_AS4PATH);
		pl->add_as4path = false;
	}
	if (pl->add_as4aggr && BGP_ATTR_AS4_AGGREGATOR < limit) {
		enc_hdr(b, BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE, BGP_ATTR_AS4_AGGREGATOR, 8);
		enc_bytes(b, pl->aggr, 8);
		pl->add_as4aggr = false;
	}
}

size_t msg_attrs_out(uint8_t *out, size_t cap, const uint8_t *blob, size_t len,
		     const struct msg_out_params *p)
{
	struct enc_buf b = { out, out + cap, false };
	struct enc_plan pl = { .p = p };
	struct msg_attr_iter it;
	struct msg_attr a;
	bool have_orig = false, have_cluster = false, have_lp = false;
	bool reflect = p->reflect && !p->ebgp;

	/* first pass: what is there decides what must be added */
	msg_attr_iter_init(&it, blob, len);
	while (msg_attr_next(&it, &a)) {
		if (a.type == BGP_ATTR_AS_PATH) {
			pl.aspath = a.value;
			pl.aspath_len = a.len;
		} else if (a.type == BGP_ATTR_AGGREGATOR && a.len == 8) {
			pl.aggr = a.value;
		} else if (a.type == BGP_ATTR_ORIGINATOR_ID) {
			have_orig = true;
		} else if (a.type == BGP_ATTR_CLUSTER_LIST) {
			have_cluster = true;
		} else if (a.type == BGP_ATTR_LOCAL_PREF) {
			have_lp = true;
		}
	}
	pl.add_local_pref = p->local_pref && !p->ebgp && !have_lp;
	pl.add_aspath = !pl.aspath && p->prepend_as;
	pl.add_originator = reflect && !have_orig;
	pl.add_cluster = reflect && !have_cluster;
	if (!p->as4) {
		bool wide = false;
		enc_aspath(NULL, pl.aspath, pl.aspath ? pl.aspath_len : 0, p->prepend_as, ENC_AS4,
			   &wide);
		pl.add_as4path = wide && (pl.aspath || p->prepend_as);
		pl.add_as4aggr = pl.aggr && bgp_get32(pl.aggr) > 0xffff;
	}

	msg_attr_iter_init(&it, blob, len);
	while (msg_attr_next(&it, &a)) {
		enc_added_below(&b, &pl, a.type);
		switch (a.type) {
		case BGP_ATTR_LOCAL_PREF:
			if (p->ebgp)
				continue;
			break;
		case BGP_ATTR_ORIGINATOR_ID:
			if (p->ebgp)
				continue;
			break;
		case BGP_ATTR_CLUSTER_LIST:
			if (p->ebgp)
				continue;
			if (reflect) {
				if (a.len + 4 > 0xffff) {
					b.fail = true;
					continue;
				}
				enc_hdr(&b, a.flags, a.type, a.len + 4u);
				enc_u32(&b, p->cluster_id);
				enc_bytes(&b, a.value, a.len);
				continue;
			}
			break;
		case BGP_ATTR_AS_PATH:
			if (p->prepend_as || !p->as4) {
				enc_aspath_attr(&b, BGP_ATTR_AS_PATH, a.value, a.len, p->prepend_as,
						p->as4 ? ENC_AS4 : ENC_AS2);
				continue;
			}
			break;
		case BGP_ATTR_AGGREGATOR:
			if (!p->as4 && a.len == 8) {
				uint32_t as = bgp_get32(a.value);
				enc_hdr(&b, a.flags, a.type, 6);
				uint8_t *o = enc_take(&b, 6);
				if (o) {
					bgp_put16(o, as > 0xffff ? BGP_AS_TRANS : (uint16_t)as);
					memcpy(o + 2, a.value + 4, 4);
				}
				continue;
			}
			break;
		case BGP_ATTR_AS4_PATH:
		case BGP_ATTR_AS4_AGGREGATOR:
			continue;  /* never in a canonical blob; regenerated above when needed */
		default:
			break;
		}
		enc_hdr(&b, a.flags, a.type, a.len);
		enc_bytes(&b, a.value, a.len);
	}
	enc_added_below(&b, &pl, 256);
	return b.fail ? 0 : (size_t)(b.p - out);
}

/* ---------------------------------------------------------------- packing */

static void enc_msg_header(uint8_t *o, size_t total)
{
	memset(o, 0xff, BGP_MARKER_LEN);
	bgp_put16(o + BGP_MARKER_LEN, (uint16_t)total);
	o[BGP_MARKER_LEN + 2] = BGP_MSG_UPDATE;
}

static inline uint8_t *enc_prefix(uint8_t *o, const struct bgp_prefix *p, bool addpath)
{
	unsigned nb = (p->len + 7u) / 8u;
	if (addpath) {
		bgp_put32(o, p->path_id);
		o += 4;
	}
	*o++ = p->len;
	memcpy(o, p->addr, nb);
	return o + nb;
}

/* Copy prefixes from pfx[*i] while they fit in room octets; returns octets used. */
static size_t enc_prefixes(uint8_t *o, size_t room, bool addpath, const struct bgp_prefix *pfx,
			   size_t n, size_t *i)
{
	uint8_t *start = o;
	size_t k = *i;

	while (k < n) {
		size_t w = msg_prefix_wire_len(&pfx[k], addpath);
		if (w > room)
			break;
		o = enc_prefix(o, &pfx[k], addpath);
		room -= w;
		k++;
	}
	*i = k;
	return (size_t)(o - start);
}

/* Offset of the first attribute of type > 3 (where NEXT_HOP goes). */
static size_t enc_nexthop_split(const uint8_t *attrs, size_t len)
{
	struct msg_attr_iter it;
	struct msg_attr a;
	const uint8_t *prev = attrs;

	msg_attr_iter_init(&it, attrs, len);
	while (msg_attr_next(&it, &a)) {
		if (a.type > BGP_ATTR_NEXT_HOP)
			return (size_t)(prev - attrs);
		prev = it.p;
	}
	return len;
}

static inline bool enc_prefix_ok(const struct bgp_prefix *p, unsigned family)
{
	return p->len <= bgp_family_maxlen(family);
}

size_t msg_update_pack(uint8_t *out, size_t cap, size_t max_msg, unsigned family, bool addpath,
		       const uint8_t *attrs, size_t attrs_len, const struct bgp_nexthop *nh,
		       const struct bgp_prefix *pfx, size_t n, size_t *consumed)
{
	size_t off = 0, i = 0;
	bool v6 = family == BGP_FAM_IPV6;

	*consumed = 0;
	if (max_msg > BGP_MAX_EXT_MSG)
		max_msg = BGP_MAX_EXT_MSG;
	if (!nh || (v6 ? (nh->len != 16 && nh->len != 32) : nh->len != 4) ||
	    (family != BGP_FAM_IPV4 && !v6))
		return 0;
	size_t split = v6 ? 0 : enc_nexthop_split(attrs, attrs_len);
	/* fixed part: header, withdrawn length, attribute length, attributes, next hop */
	size_t mp_fixed = v6 ? 4 + 2 + 1 + 1 + nh->len + 1 : 3 + 4;
	size_t fixed = BGP_HDR_LEN + 2 + 2 + attrs_len + mp_fixed;

	while (i < n) {
		if (!enc_prefix_ok(&pfx[i], family))
			break;  /* caller bug; stop rather than emit garbage */
		size_t room = cap - off < max_msg ? cap - off : max_msg;
		if (room < fixed + msg_prefix_wire_len(&pfx[i], addpath))
			break;
		uint8_t *m = out + off;
		uint8_t *o = m + BGP_HDR_LEN;
		size_t used;

		bgp_put16(o, 0);
		o += 2;
		uint8_t *alen = o;
		o += 2;
		if (v6) {
			uint8_t *mp = o;
			mp[0] = BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_EXTLEN;
			mp[1] = BGP_ATTR_MP_REACH_NLRI;
			bgp_put16(mp + 4, BGP_AFI_IPV6);
			mp[6] = BGP_SAFI_UNICAST;
			mp[7] = nh->len;
			memcpy(mp + 8, nh->addr, nh->len);
			mp[8 + nh->len] = 0;
			o = mp + mp_fixed;
			used = enc_prefixes(o, room - fixed, addpath, pfx, n, &i);
			bgp_put16(mp + 2, (uint16_t)(mp_fixed - 4 + used));
			o += used;
			memcpy(o, attrs, attrs_len);
			o += attrs_len;
			bgp_put16(alen, (uint16_t)(mp_fixed + used + attrs_len));
		} else {
			memcpy(o, attrs, split);
			o += split;
			o[0] = BGP_ATTR_F_TRANSITIVE;
			o[1] = BGP_ATTR_NEXT_HOP;
			o[2] = 4;
			memcpy(o + 3, nh->addr, 4);
			o += 7;
			memcpy(o, attrs + split, attrs_len - split);
			o += attrs_len - split;
			bgp_put16(alen, (uint16_t)(attrs_len + 7));
			used = enc_prefixes(o, room - fixed, addpath, pfx, n, &i);
			o += used;
		}
		size_t total = (size_t)(o - m);
		enc_msg_header(m, total);
		off += total;
	}
	*consumed = i;
	return off;
}

size_t msg_withdraw_pack(uint8_t *out, size_t cap, size_t max_msg, unsigned family, bool addpath,
			 const struct bgp_prefix *pfx, size_t n, size_t *consumed)
{
	size_t off = 0, i = 0;
	bool v6 = family == BGP_FAM_IPV6;
	size_t fixed = BGP_HDR_LEN + 2 + 2 + (v6 ? 4 + 3 : 0);

	*consumed = 0;
	if (max_msg > BGP_MAX_EXT_MSG)
		max_msg = BGP_MAX_EXT_MSG;
	if (family != BGP_FAM_IPV4 && !v6)
		return 0;
	while (i < n) {
		if (!enc_prefix_ok(&pfx[i], family))
			break;
		size_t room = cap - off < max_msg ? cap - off : max_msg;
		if (room < fixed + msg_prefix_wire_len(&pfx[i], addpath))
			break;
		uint8_t *m = out + off;
		uint8_t *o = m + BGP_HDR_LEN;
		size_t used;

		if (v6) {
			bgp_put16(o, 0);
			uint8_t *mp = o + 4;
			mp[0] = BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_EXTLEN;
			mp[1] = BGP_ATTR_MP_UNREACH_NLRI;
			bgp_put16(mp + 4, BGP_AFI_IPV6);
			mp[6] = BGP_SAFI_UNICAST;
			used = enc_prefixes(mp + 7, room - fixed, addpath, pfx, n, &i);
			bgp_put16(mp + 2, (uint16_t)(3 + used));
			bgp_put16(o + 2, (uint16_t)(7 + used));
			o = mp + 7 + used;
		} else {
			used = enc_prefixes(o + 2, room - fixed, addpath, pfx, n, &i);
			bgp_put16(o, (uint16_t)used);
			bgp_put16(o + 2 + used, 0);
			o += 4 + used;
		}
		size_t total = (size_t)(o - m);
		enc_msg_header(m, total);
		off += total;
	}
	*consumed = i;
	return off;
}

size_t msg_eor_encode(uint8_t *out, size_t cap, unsigned family)
{
	if (family == BGP_FAM_IPV4) {
		if (cap < BGP_HDR_LEN + 4)
			return 0;
		enc_msg_header(out, BGP_HDR_LEN + 4);
		memset(out + BGP_HDR_LEN, 0, 4);
		return BGP_HDR_LEN + 4;
	}
	if (family != BGP_FAM_IPV6 || cap < BGP_HDR_LEN + 4 + 6)
		return 0;
	uint8_t *o = out + BGP_HDR_LEN;
	enc_msg_header(out, BGP_HDR_LEN + 10);
	bgp_put16(o, 0);
	bgp_put16(o + 2, 6);
	o[4] = BGP_ATTR_F_OPTIONAL;
	o[5] = BGP_ATTR_MP_UNREACH_NLRI;
	o[6] = 3;
	bgp_put16(o + 7, BGP_AFI_IPV6);
	o[9] = BGP_SAFI_UNICAST;
	return BGP_HDR_LEN + 10;
}
