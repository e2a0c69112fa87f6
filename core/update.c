/*
 * update.c - UPDATE parsing: framing of the three UPDATE fields, path attribute
 * validation with the RFC 7606 reactions, RFC 6793 AS4 reconciliation, the
 * canonical attribute blob (core/bgp.h), NLRI and blob iteration.
 *
 * Threads: called by the I/O thread that owns the session (and by tests, the
 * fuzzer and benchmarks).  Pure function over caller buffers; no state.
 *
 * Why it looks like this: one pass over the attributes records, per type code,
 * where the first instance sits (a 256-bit "seen" map catches duplicates), and
 * runs the per-type check found in a const table indexed by type code.  Each
 * check decides its own RFC 7606 reaction (treat-as-withdraw, attribute
 * discard, AFI/SAFI disable, session reset); the strongest one wins (s3 j).
 * A second step emits the kept attributes in ascending type order straight
 * into the caller's scratch buffer, which gives the canonical blob without
 * sorting.  Nothing allocates and every read is bounded by the field it is in.
 *
 * Choices where the RFCs leave room (documented here once):
 *  - Attribute framing lost (RFC 7606 s4): treat-as-withdraw, the NLRI field is
 *    located through the Total Path Attribute Length; attributes after the
 *    break are not looked at.
 *  - MP_REACH_NLRI / MP_UNREACH_NLRI errors (bad next-hop length, truncated
 *    NLRI, wrong flags): MSG_AFI_DISABLE for the family with NOTIFICATION
 *    3/9 (3/4 for flags) filled in, so a caller that cannot disable one family
 *    sends exactly that NOTIFICATION (RFC 7606 s5.3, s7.11; RFC 4760 s7).  When
 *    even AFI/SAFI cannot be read the verdict is a session reset 3/9.
 *    On MSG_AFI_DISABLE the rest of the UPDATE must be ignored.
 *  - MP attributes for a family that was not negotiated or that we do not
 *    support are ignored (counted in err->discarded).
 *  - NEXT_HOP is only checked when the IPv4 NLRI field is non-empty; otherwise
 *    it is ignored (RFC 4760 s3, RFC 7606 s3 d note).
 *  - Missing mandatory attributes, including "NLRI but no path attributes at
 *    all": treat-as-withdraw (RFC 7606 s3 d), reported as 3/3 with the type.
 *  - AS4_PATH with confederation segments is malformed (RFC 6793 s6: discard).
 *  - Known optional transitive attributes keep a Partial bit set upstream
 *    (RFC 4271 s5); everything else gets the flags of the RFC.
 *  - NOTIFICATION data carrying the erroneous attribute is the attribute as
 *    received (flags, type, length, value), cut at MSG_ERR_DATA_MAX octets.
 */
#include <string.h>

#include "core/msg.h"

/* ---------------------------------------------------------------- helpers */

#define F_WK   BGP_ATTR_F_TRANSITIVE                          /* well-known: 0x40 */
#define F_ON   BGP_ATTR_F_OPTIONAL                            /* optional non-transitive */
#define F_OT   (BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE)  /* optional transitive */
#define F_OT_MASK (BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE)

/* ---------------------------------------------------------------- parse state */

struct upd_state {
	const struct msg_session *s;
	struct msg_update *u;
	struct msg_error *err;
	/* the attribute being checked, for NOTIFICATION data and logs */
	const uint8_t *cur;
	size_t cur_len;
	uint8_t cur_type;
	uint64_t seen[4];                 /* type codes met (duplicates) */
	uint64_t keep[4];                 /* type codes valid and present */
	const uint8_t *val[256];          /* value of the first instance; read only if keep */
	uint16_t vlen[256];
	uint8_t partial[256];             /* Partial bit as received (optional transitive only) */
	/* AS_PATH facts gathered by its check */
	unsigned aspath_count;            /* RFC 4271 9.1.2.2a path length */
	size_t aspath_len4;               /* value length once in 4-octet form */
	unsigned as4path_count;
};

/*
 * Record a verdict.  The strongest action wins; among equals the first one is
 * kept, so the NOTIFICATION names the first offending attribute.  Attribute
 * discards leave the action at MSG_OK and only count.
 */
static void upd_verdict(struct upd_state *st, uint8_t action, uint8_t subcode,
			const char *reason, bool attr_data)
{
	struct msg_error *e = st->err;

	if (action == MSG_OK) {
		if (e->discarded < UINT8_MAX)
			e->discarded++;
		if (e->action == MSG_OK && e->reason == NULL) {
			e->reason = reason;
			e->attr_type = st->cur_type;
		}
		return;
	}
	if (action < e->action || (action == e->action && e->action != MSG_OK))
		return;
	e->action = action;
	e->code = BGP_ERR_UPDATE;
	e->subcode = subcode;
	e->reason = reason;
	e->attr_type = attr_data ? st->cur_type : 0;
	e->data_len = 0;
	if (attr_data && st->cur) {
		size_t n = st->cur_len < MSG_ERR_DATA_MAX ? st->cur_len : MSG_ERR_DATA_MAX;
		memcpy(e->data, st->cur, n);
		e->data_len = (uint16_t)n;
	}
}

static inline bool upd_taw(struct upd_state *st, uint8_t subcode, const char *reason)
{
	upd_verdict(st, MSG_TREAT_AS_WITHDRAW, subcode, reason, true);
	return false;
}

static inline bool upd_discard(struct upd_state *st, const char *reason)
{
	upd_verdict(st, MSG_OK, 0, reason, true);
	return false;
}

static inline bool upd_reset(struct upd_state *st, uint8_t subcode, const char *reason, bool data)
{
	upd_verdict(st, MSG_SESSION_RESET, subcode, reason, data);
	return false;
}

/* AFI/SAFI disable for an MP attribute; a session reset if the family is unknown. */
static bool upd_mp_fail(struct upd_state *st, unsigned fam, uint8_t subcode, const char *reason)
{
	if (fam == BGP_FAM_NONE)
		return upd_reset(st, subcode, reason, true);
	if (st->err->action < MSG_AFI_DISABLE)
		st->err->family = (uint8_t)fam;
	upd_verdict(st, MSG_AFI_DISABLE, subcode, reason, true);
	return false;
}

/* ---------------------------------------------------------------- NLRI */

/* A block of (path id) length prefix encodings: every length in range, no overrun. */
static bool upd_nlri_valid(const uint8_t *p, size_t len, unsigned maxbits, bool addpath)
{
	const uint8_t *end = p + len;

	if (!addpath) {
		while (p < end) {
			unsigned bits = *p++;
			if (bits > maxbits || (size_t)(end - p) < (bits + 7) / 8)
				return false;
			p += (bits + 7) / 8;
		}
		return true;
	}
	while (p < end) {
		if (end - p < 5)
			return false;
		unsigned bits = p[4];
		p += 5;
		if (bits > maxbits || (size_t)(end - p) < (bits + 7) / 8)
			return false;
		p += (bits + 7) / 8;
	}
	return true;
}

void msg_nlri_iter_init(struct msg_nlri_iter *it, const struct msg_nlri *n)
{
	it->p = n->p;
	it->end = n->p ? n->p + n->len : n->p;
	it->family = n->family;
	it->addpath = n->addpath;
}

bool msg_nlri_next(struct msg_nlri_iter *it, struct bgp_prefix *pfx)
{
	const uint8_t *p = it->p;
	size_t left = (size_t)(it->end - p);
	uint32_t path_id = 0;

	if (p >= it->end)
		return false;
	if (it->addpath) {
		if (left < 5)
			goto bad;
		path_id = bgp_get32(p);
		p += 4;
		left -= 4;
	}
	unsigned bits = *p++;
	unsigned n = (bits + 7) / 8;
	if (bits > bgp_family_maxlen(it->family) || left - 1 < n)
		goto bad;
	pfx->family = it->family;
	pfx->len = (uint8_t)bits;
	pfx->pad[0] = pfx->pad[1] = 0;
	pfx->path_id = path_id;
	memset(pfx->addr, 0, sizeof(pfx->addr));
	memcpy(pfx->addr, p, n);
	if (bits & 7)  /* host bits are masked silently */
		pfx->addr[n - 1] &= (uint8_t)(0xff00u >> (bits & 7));
	it->p = p + n;
	return true;
bad:
	it->p = it->end;  /* never on a validated block */
	return false;
}

/* ---------------------------------------------------------------- AS paths */

/*
 * Check an AS_PATH-shaped value (asz 2 or 4 octets per AS).  RFC 7606 s7.2:
 * unknown segment type, zero-length segment, overrun, or a lone trailing
 * octet make it malformed.  Returns NULL when fine (and fills the counts),
 * else the reason.
 */
static const char *upd_aspath_check(const uint8_t *v, size_t len, unsigned asz, bool confed_ok,
				    unsigned *count, size_t *len4)
{
	const uint8_t *end = v + len;
	unsigned c = 0;
	size_t l4 = 0;

	while (v < end) {
		if (end - v < 2)
			return "AS_PATH: truncated segment header";
		uint8_t type = v[0], n = v[1];
		if (n == 0)
			return "AS_PATH: zero-length segment";
		if (type < BGP_AS_SET || type > BGP_AS_CONFED_SET)
			return "AS_PATH: unknown segment type";
		if (!confed_ok && type >= BGP_AS_CONFED_SEQUENCE)
			return "AS_PATH: confederation segment from an external peer";
		if ((size_t)(end - v - 2) < (size_t)n * asz)
			return "AS_PATH: segment overruns the attribute";
		if (type == BGP_AS_SEQUENCE)
			c += n;
		else if (type == BGP_AS_SET)
			c += 1;
		l4 += 2 + 4 * (size_t)n;
		v += 2 + (size_t)n * asz;
	}
	*count = c;
	*len4 = l4;
	return NULL;
}

static inline uint32_t upd_as_at(const uint8_t *p, unsigned asz)
{
	return asz == 4 ? bgp_get32(p) : bgp_get16(p);
}

/* Copy a validated path into 4-octet form; returns octets written. */
static size_t upd_aspath_to4(uint8_t *out, const uint8_t *v, size_t len, unsigned asz)
{
	const uint8_t *end = v + len;
	uint8_t *o = out;

	if (asz == 4) {
		memcpy(out, v, len);
		return len;
	}
	while (v < end) {
		uint8_t n = v[1];
		*o++ = v[0];
		*o++ = n;
		v += 2;
		for (unsigned i = 0; i < n; i++, v += 2, o += 4)
			bgp_put32(o, bgp_get16(v));
	}
	return (size_t)(o - out);
}

/*
 * RFC 6793 s4.2.3: keep the leading (n2 - n4) ASes of the 2-octet AS_PATH
 * (counted as for path length: AS_SET 1, confederation segments 0), then
 * append AS4_PATH.  A sequence split at the junction is joined with a leading
 * AS4_PATH sequence when it fits one segment.  out == NULL measures only.
 */
static size_t upd_aspath_merge(uint8_t *out, const uint8_t *v2, size_t len2, unsigned keep,
			       const uint8_t *v4, size_t len4)
{
	const uint8_t *end = v2 + len2;
	size_t o = 0;
	size_t last_seq = SIZE_MAX;      /* offset of the last emitted AS_SEQUENCE header */
	unsigned last_n = 0;

	while (v2 < end) {
		uint8_t type = v2[0], n = v2[1];
		unsigned take = n;
		if (type == BGP_AS_SEQUENCE || type == BGP_AS_SET) {
			if (keep == 0)
				break;
			if (type == BGP_AS_SEQUENCE) {
				take = n < keep ? n : keep;
				keep -= take;
			} else {
				keep -= 1;
			}
		}
		if (out) {
			out[o] = type;
			out[o + 1] = (uint8_t)take;
			for (unsigned i = 0; i < take; i++)
				bgp_put32(out + o + 2 + 4 * i, bgp_get16(v2 + 2 + 2 * i));
		}
		last_seq = type == BGP_AS_SEQUENCE ? o : SIZE_MAX;
		last_n = take;
		o += 2 + 4 * (size_t)take;
		v2 += 2 + 2 * (size_t)n;
	}
	/* join the junction when both sides are sequences */
	if (last_seq != SIZE_MAX && len4 >= 2 && v4[0] == BGP_AS_SEQUENCE &&
	    last_n + v4[1] <= 255) {
		unsigned n4 = v4[1];
		if (out) {
			out[last_seq + 1] = (uint8_t)(last_n + n4);
			memcpy(out + o, v4 + 2, 4 * (size_t)n4);
		}
		o += 4 * (size_t)n4;
		v4 += 2 + 4 * (size_t)n4;
		len4 -= 2 + 4 * (size_t)n4;
	}
	if (out)
		memcpy(out + o, v4, len4);
	return o + len4;
}

/* ---------------------------------------------------------------- attribute checks */

/*
 * Each check returns true when the attribute is valid and present (it is then
 * recorded in keep[] and, if the table says so, emitted into the blob).  On
 * error it records its own RFC 7606 reaction and returns false.
 */
typedef bool (*upd_check_fn)(struct upd_state *st, const uint8_t *v, size_t len);

static bool chk_origin(struct upd_state *st, const uint8_t *v, size_t len)
{
	if (len != 1)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN, "ORIGIN: length is not 1");
	if (v[0] > BGP_ORIGIN_INCOMPLETE)
		return upd_taw(st, BGP_ERR_UPD_ORIGIN, "ORIGIN: undefined value");
	return true;
}

static bool chk_aspath(struct upd_state *st, const uint8_t *v, size_t len)
{
	const struct msg_session *s = st->s;
	unsigned asz = s->as4 ? 4 : 2;
	const char *why = upd_aspath_check(v, len, asz, !s->ebgp, &st->aspath_count,
					   &st->aspath_len4);

	if (why)
		return upd_taw(st, BGP_ERR_UPD_ASPATH, why);
	/* RFC 4271 s6.3 first-AS check, treat-as-withdraw per RFC 7606 s7.2;
	 * route servers (RFC 7947) do not prepend their AS. */
	if (s->ebgp && !s->rs_client) {
		uint32_t want = s->peer_as;
		if (asz == 2 && want > 0xffff)
			want = BGP_AS_TRANS;
		if (len < 2 + asz || v[0] != BGP_AS_SEQUENCE || upd_as_at(v + 2, asz) != want)
			return upd_taw(st, BGP_ERR_UPD_ASPATH,
				       "AS_PATH: first AS is not the peer's AS");
	}
	return true;
}

static bool chk_nexthop(struct upd_state *st, const uint8_t *v, size_t len)
{
	if (st->u->nlri.len == 0)
		return false;  /* no IPv4 NLRI field: NEXT_HOP is meaningless, ignore */
	if (len != 4)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN, "NEXT_HOP: length is not 4");
	uint32_t a = bgp_get32(v);
	if (a == 0 || a == 0xffffffffu || (a >> 28) == 0xe)
		return upd_taw(st, BGP_ERR_UPD_NEXTHOP, "NEXT_HOP: invalid address");
	st->u->nexthop4.len = 4;
	memcpy(st->u->nexthop4.addr, v, 4);
	return true;
}

static bool chk_len4(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len != 4)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN,
			       st->cur_type == BGP_ATTR_MED ? "MULTI_EXIT_DISC: length is not 4"
							    : "LOCAL_PREF: length is not 4");
	return true;
}

static bool chk_atomic(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len != 0)
		return upd_discard(st, "ATOMIC_AGGREGATE: length is not 0 (discarded)");
	return true;
}

static bool chk_aggregator(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len != (st->s->as4 ? 8u : 6u))
		return upd_discard(st, "AGGREGATOR: bad length (discarded)");
	return true;
}

static bool chk_communities(struct upd_state *st, const uint8_t *v, size_t len)
{
	if (len == 0 || len % 4)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN, "COMMUNITIES: length not a non-zero multiple of 4");
	struct msg_update *u = st->u;
	for (size_t i = 0; i < len; i += 4) {
		if (v[i] != 0xff || v[i + 1] != 0xff || v[i + 2] != 0xff)
			continue;
		uint32_t c = bgp_get32(v + i);
		u->no_export |= c == BGP_COMM_NO_EXPORT;
		u->no_advertise |= c == BGP_COMM_NO_ADVERTISE;
		u->no_export_subconfed |= c == BGP_COMM_NO_EXPORT_SUBCONFED;
	}
	return true;
}

static bool chk_originator(struct upd_state *st, const uint8_t *v, size_t len)
{
	if (len != 4)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN, "ORIGINATOR_ID: length is not 4");
	st->u->has_originator_id = true;
	st->u->originator_id = bgp_get32(v);
	return true;
}

static bool chk_cluster(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len == 0 || len % 4)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN, "CLUSTER_LIST: length not a non-zero multiple of 4");
	return true;
}

static unsigned upd_mp_family(const uint8_t *v, size_t len)
{
	if (len < 3)
		return BGP_FAM_NONE;
	return bgp_family_from_afi(bgp_get16(v), v[2]);
}

static bool chk_mp_reach(struct upd_state *st, const uint8_t *v, size_t len)
{
	const struct msg_session *s = st->s;
	struct msg_update *u = st->u;

	if (len < 3)
		return upd_reset(st, BGP_ERR_UPD_OPTATTR, "MP_REACH_NLRI: too short for AFI/SAFI", true);
	unsigned fam = upd_mp_family(v, len);
	if (fam == BGP_FAM_NONE || !s->family[fam])
		return upd_discard(st, "MP_REACH_NLRI: AFI/SAFI not negotiated (ignored)");
	if (len < 5)
		return upd_mp_fail(st, fam, BGP_ERR_UPD_OPTATTR, "MP_REACH_NLRI: truncated");
	unsigned nhl = v[3];
	if (5 + (size_t)nhl > len)
		return upd_mp_fail(st, fam, BGP_ERR_UPD_OPTATTR, "MP_REACH_NLRI: next hop overruns");
	if (fam == BGP_FAM_IPV4 ? nhl != 4 : (nhl != 16 && nhl != 32))
		return upd_mp_fail(st, fam, BGP_ERR_UPD_OPTATTR,
				   "MP_REACH_NLRI: next hop length wrong for the AFI");
	const uint8_t *nlri = v + 5 + nhl;
	size_t nlen = len - 5 - nhl;
	if (!upd_nlri_valid(nlri, nlen, bgp_family_maxlen(fam), s->addpath_rx[fam]))
		return upd_mp_fail(st, fam, BGP_ERR_UPD_OPTATTR, "MP_REACH_NLRI: invalid NLRI");
	u->mp_reach.p = nlri;
	u->mp_reach.len = (uint16_t)nlen;
	u->mp_reach.family = (uint8_t)fam;
	u->mp_reach.addpath = s->addpath_rx[fam];
	u->mp_nexthop.len = (uint8_t)nhl;
	memcpy(u->mp_nexthop.addr, v + 4, nhl);
	return true;
}

static bool chk_mp_unreach(struct upd_state *st, const uint8_t *v, size_t len)
{
	const struct msg_session *s = st->s;
	struct msg_update *u = st->u;

	if (len < 3)
		return upd_reset(st, BGP_ERR_UPD_OPTATTR, "MP_UNREACH_NLRI: too short for AFI/SAFI", true);
	unsigned fam = upd_mp_family(v, len);
	if (fam == BGP_FAM_NONE || !s->family[fam])
		return upd_discard(st, "MP_UNREACH_NLRI: AFI/SAFI not negotiated (ignored)");
	if (!upd_nlri_valid(v + 3, len - 3, bgp_family_maxlen(fam), s->addpath_rx[fam]))
		return upd_mp_fail(st, fam, BGP_ERR_UPD_OPTATTR, "MP_UNREACH_NLRI: invalid NLRI");
	u->mp_unreach.p = v + 3;
	u->mp_unreach.len = (uint16_t)(len - 3);
	u->mp_unreach.family = (uint8_t)fam;
	u->mp_unreach.addpath = s->addpath_rx[fam];
	return true;
}

static bool chk_ext_comm(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len == 0 || len % 8)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN,
			       "EXTENDED_COMMUNITIES: length not a non-zero multiple of 8");
	return true;
}

static bool chk_as4path(struct upd_state *st, const uint8_t *v, size_t len)
{
	size_t l4;

	if (st->s->as4)
		return false;  /* RFC 6793 s4.1: ignored from 4-octet speakers */
	if (upd_aspath_check(v, len, 4, false, &st->as4path_count, &l4))
		return upd_discard(st, "AS4_PATH: malformed (discarded)");
	return true;
}

static bool chk_as4aggr(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (st->s->as4)
		return false;
	if (len != 8)
		return upd_discard(st, "AS4_AGGREGATOR: length is not 8 (discarded)");
	return true;
}

static bool chk_large_comm(struct upd_state *st, const uint8_t *v, size_t len)
{
	(void)v;
	if (len == 0 || len % 12)
		return upd_taw(st, BGP_ERR_UPD_ATTRLEN,
			       "LARGE_COMMUNITY: length not a non-zero multiple of 12");
	return true;
}

/* What a malformed Attribute Flags field leads to (RFC 7606 s3 c: the attribute's own rule). */
enum upd_flag_rule { FR_TAW = 0, FR_DISCARD, FR_MP };

struct upd_attr_def {
	upd_check_fn check;               /* NULL: type not recognised */
	uint8_t flags;                    /* O/T bits mandated; also the canonical flags */
	uint8_t flag_rule;                /* enum upd_flag_rule */
	bool in_blob;                     /* emitted into the canonical blob */
	bool ibgp_only;                   /* RFC 7606 s7.5/7.9/7.10: discarded from eBGP */
	const char *flag_reason;
};

static const struct upd_attr_def upd_defs[256] = {
	[BGP_ATTR_ORIGIN] = { chk_origin, F_WK, FR_TAW, true, false, "ORIGIN: bad flags" },
	[BGP_ATTR_AS_PATH] = { chk_aspath, F_WK, FR_TAW, true, false, "AS_PATH: bad flags" },
	[BGP_ATTR_NEXT_HOP] = { chk_nexthop, F_WK, FR_TAW, false, false, "NEXT_HOP: bad flags" },
	[BGP_ATTR_MED] = { chk_len4, F_ON, FR_TAW, true, false, "MULTI_EXIT_DISC: bad flags" },
	[BGP_ATTR_LOCAL_PREF] = { chk_len4, F_WK, FR_TAW, true, true, "LOCAL_PREF: bad flags" },
	[BGP_ATTR_ATOMIC_AGGREGATE] = { chk_atomic, F_WK, FR_DISCARD, true, false,
					"ATOMIC_AGGREGATE: bad flags (discarded)" },
	[BGP_ATTR_AGGREGATOR] = { chk_aggregator, F_OT, FR_DISCARD, true, false,
				  "AGGREGATOR: bad flags (discarded)" },
	[BGP_ATTR_COMMUNITIES] = { chk_communities, F_OT, FR_TAW, true, false, "COMMUNITIES: bad flags" },
	[BGP_ATTR_ORIGINATOR_ID] = { chk_originator, F_ON, FR_TAW, true, true, "ORIGINATOR_ID: bad flags" },
	[BGP_ATTR_CLUSTER_LIST] = { chk_cluster, F_ON, FR_TAW, true, true, "CLUSTER_LIST: bad flags" },
	[BGP_ATTR_MP_REACH_NLRI] = { chk_mp_reach, F_ON, FR_MP, false, false, "MP_REACH_NLRI: bad flags" },
	[BGP_ATTR_MP_UNREACH_NLRI] = { chk_mp_unreach, F_ON, FR_MP, false, false,
				       "MP_UNREACH_NLRI: bad flags" },
	[BGP_ATTR_EXT_COMMUNITIES] = { chk_ext_comm, F_OT, FR_TAW, true, false,
				       "EXTENDED_COMMUNITIES: bad flags" },
	[BGP_ATTR_AS4_PATH] = { chk_as4path, F_OT, FR_DISCARD, false, false,
				"AS4_PATH: bad flags (discarded)" },
	[BGP_ATTR_AS4_AGGREGATOR] = { chk_as4aggr, F_OT, FR_DISCARD, false, false,
				      "AS4_AGGREGATOR: bad flags (discarded)" },
	[BGP_ATTR_LARGE_COMMUNITY] = { chk_large_comm, F_OT, FR_TAW, true, false,
				       "LARGE_COMMUNITY: bad flags" },
};

static inline bool bit_test(const uint64_t *m, unsigned t)
{
	return (m[t >> 6] >> (t & 63)) & 1;
}

static inline void bit_set(uint64_t *m, unsigned t)
{
	m[t >> 6] |= 1ull << (t & 63);
}

static inline void bit_clear(uint64_t *m, unsigned t)
{
	m[t >> 6] &= ~(1ull << (t & 63));
}

/* ---------------------------------------------------------------- attribute walk */

/* Returns false when the verdict is already a session reset (stop everything). */
static bool upd_walk_attrs(struct upd_state *st, const uint8_t *p, size_t alen, unsigned *nattrs)
{
	const uint8_t *end = p + alen;

	while (p < end) {
		size_t left = (size_t)(end - p);
		if (left < 3)
			goto lost;
		uint8_t fl = p[0], t = p[1];
		size_t hl = (fl & BGP_ATTR_F_EXTLEN) ? 4 : 3;
		if (left < hl)
			goto lost;
		size_t vl = hl == 4 ? bgp_get16(p + 2) : p[2];
		if (left - hl < vl)
			goto lost;
		const uint8_t *v = p + hl;

		st->cur = p;
		st->cur_len = hl + vl;
		st->cur_type = t;
		p += hl + vl;
		(*nattrs)++;

		if (bit_test(st->seen, t)) {
			/* RFC 7606 s3 g */
			if (t == BGP_ATTR_MP_REACH_NLRI || t == BGP_ATTR_MP_UNREACH_NLRI)
				return upd_reset(st, BGP_ERR_UPD_ATTRLIST,
						 "MP_REACH/MP_UNREACH_NLRI appears twice", false);
			upd_discard(st, "duplicate attribute (later instance discarded)");
			continue;
		}
		bit_set(st->seen, t);

		const struct upd_attr_def *d = &upd_defs[t];
		if (d->check == NULL) {
			if (!(fl & BGP_ATTR_F_OPTIONAL))
				return upd_reset(st, BGP_ERR_UPD_UNKNWN_WK,
						 "unrecognized well-known attribute", true);
			if (fl & BGP_ATTR_F_TRANSITIVE) {
				bit_set(st->keep, t);
				st->val[t] = v;
				st->vlen[t] = (uint16_t)vl;
			}
			/* unknown optional non-transitive: quietly ignored (RFC 4271 s5) */
			continue;
		}
		if (d->ibgp_only && st->s->ebgp) {
			upd_discard(st, "iBGP-only attribute from an external peer (discarded)");
			continue;
		}
		if ((fl & F_OT_MASK) != d->flags) {
			if (t == BGP_ATTR_NEXT_HOP && st->u->nlri.len == 0)
				continue;
			switch (d->flag_rule) {
			case FR_TAW:
				upd_taw(st, BGP_ERR_UPD_ATTRFLAGS, d->flag_reason);
				break;
			case FR_DISCARD:
				upd_discard(st, d->flag_reason);
				break;
			default:
				upd_mp_fail(st, upd_mp_family(v, vl), BGP_ERR_UPD_ATTRFLAGS,
					    d->flag_reason);
				break;
			}
			if (st->err->action == MSG_SESSION_RESET)
				return false;
			continue;
		}
		if (d->check(st, v, vl)) {
			bit_set(st->keep, t);
			st->val[t] = v;
			st->vlen[t] = (uint16_t)vl;
			st->partial[t] = fl & BGP_ATTR_F_PARTIAL;
		} else if (st->err->action == MSG_SESSION_RESET) {
			return false;
		}
	}
	return true;
lost:
	/* RFC 7606 s4: the NLRI field is still found through Total Path Attribute Length */
	st->cur = NULL;
	st->cur_type = 0;
	upd_verdict(st, MSG_TREAT_AS_WITHDRAW, BGP_ERR_UPD_ATTRLIST,
		    "attribute length overruns the path attributes", false);
	return true;
}

/* ---------------------------------------------------------------- blob emission */

static inline uint8_t *upd_put_hdr(uint8_t *o, uint8_t flags, uint8_t type, size_t len)
{
	if (len > 255) {
		o[0] = flags | BGP_ATTR_F_EXTLEN;
		o[1] = type;
		bgp_put16(o + 2, (uint16_t)len);
		return o + 4;
	}
	o[0] = flags;
	o[1] = type;
	o[2] = (uint8_t)len;
	return o + 3;
}

/* RFC 6793 s4.2.3 for a 2-octet peer: decide what AS4_* contribute. */
static void upd_as4_reconcile(struct upd_state *st, bool *merge_path, const uint8_t **aggr4)
{
	*merge_path = false;
	*aggr4 = NULL;
	if (st->s->as4)
		return;
	bool have_as4path = bit_test(st->keep, BGP_ATTR_AS4_PATH);
	if (bit_test(st->keep, BGP_ATTR_AS4_AGGREGATOR) && bit_test(st->keep, BGP_ATTR_AGGREGATOR)) {
		if (bgp_get16(st->val[BGP_ATTR_AGGREGATOR]) != BGP_AS_TRANS)
			return;  /* AGGREGATOR by a 2-octet speaker: AS4_* are stale, ignore both */
		*aggr4 = st->val[BGP_ATTR_AS4_AGGREGATOR];
	}
	if (have_as4path && bit_test(st->keep, BGP_ATTR_AS_PATH) &&
	    st->aspath_count >= st->as4path_count)
		*merge_path = true;
}

/* Emit kept attributes in type order into out; returns length or SIZE_MAX on an impossible size. */
static size_t upd_emit(struct upd_state *st, uint8_t *out)
{
	struct msg_update *u = st->u;
	unsigned asz = st->s->as4 ? 4 : 2;
	bool merge;
	const uint8_t *aggr4;
	uint8_t *o = out;

	upd_as4_reconcile(st, &merge, &aggr4);
	for (unsigned w = 0; w < 4; w++) {
		uint64_t m = st->keep[w];
		while (m) {
			unsigned t = w * 64 + (unsigned)__builtin_ctzll(m);
			m &= m - 1;
			const struct upd_attr_def *d = &upd_defs[t];
			if (d->check && !d->in_blob)
				continue;
			/* RFC 4271 s5: a Partial bit set upstream on an optional
			 * transitive attribute is never cleared */
			uint8_t flags = d->check ? (uint8_t)(d->flags | (d->flags == F_OT ? st->partial[t] : 0))
						 : (F_OT | BGP_ATTR_F_PARTIAL);
			const uint8_t *v = st->val[t];
			size_t len = st->vlen[t];

			if (t == BGP_ATTR_AS_PATH && (merge || asz == 2)) {
				size_t nl;
				unsigned keep = st->aspath_count - st->as4path_count;
				const uint8_t *v4 = st->val[BGP_ATTR_AS4_PATH];
				size_t l4 = st->vlen[BGP_ATTR_AS4_PATH];
				nl = merge ? upd_aspath_merge(NULL, v, len, keep, v4, l4) : st->aspath_len4;
				if (nl > 0xffff)
					return SIZE_MAX;
				o = upd_put_hdr(o, flags, (uint8_t)t, nl);
				o += merge ? upd_aspath_merge(o, v, len, keep, v4, l4)
					   : upd_aspath_to4(o, v, len, 2);
				continue;
			}
			if (t == BGP_ATTR_AGGREGATOR && asz == 2) {
				o = upd_put_hdr(o, flags, (uint8_t)t, 8);
				if (aggr4) {
					memcpy(o, aggr4, 8);
				} else {
					bgp_put32(o, bgp_get16(v));
					memcpy(o + 4, v + 2, 4);
				}
				o += 8;
				continue;
			}
			o = upd_put_hdr(o, flags, (uint8_t)t, len);
			if (t == BGP_ATTR_CLUSTER_LIST) {
				u->cluster_list = o;
				u->cluster_list_len = (uint16_t)(len / 4);
			}
			memcpy(o, v, len);
			o += len;
		}
	}
	return (size_t)(o - out);
}

/* ---------------------------------------------------------------- UPDATE */

int msg_update_parse(const uint8_t *msg, size_t len, const struct msg_session *s,
		     uint8_t *scratch, struct msg_update *u, struct msg_error *err)
{
	struct upd_state st;

	memset(err, 0, sizeof(*err));
	memset(u, 0, sizeof(*u));
	u->eor_family = BGP_FAM_NONE;
	u->attrs = scratch;
	u->withdrawn.family = BGP_FAM_IPV4;
	u->nlri.family = BGP_FAM_IPV4;
	u->mp_reach.family = BGP_FAM_NONE;
	u->mp_unreach.family = BGP_FAM_NONE;

	st.s = s;
	st.u = u;
	st.err = err;
	st.cur = NULL;
	st.cur_len = 0;
	st.cur_type = 0;
	memset(st.seen, 0, sizeof(st.seen));
	memset(st.keep, 0, sizeof(st.keep));
	st.aspath_count = st.as4path_count = 0;
	st.aspath_len4 = 0;

	/* RFC 4271 s6.3: field lengths must add up inside the message */
	if (len < BGP_HDR_LEN + 4 || len > BGP_MAX_EXT_MSG) {
		upd_reset(&st, BGP_ERR_UPD_ATTRLIST, "UPDATE shorter than its fixed fields", false);
		return 0;
	}
	const uint8_t *p = msg + BGP_HDR_LEN;
	const uint8_t *end = msg + len;
	size_t wlen = bgp_get16(p);
	p += 2;
	if ((size_t)(end - p) < wlen + 2) {
		upd_reset(&st, BGP_ERR_UPD_ATTRLIST, "Withdrawn Routes Length overruns the message", false);
		return 0;
	}
	const uint8_t *wd = p;
	p += wlen;
	size_t alen = bgp_get16(p);
	p += 2;
	if ((size_t)(end - p) < alen) {
		upd_reset(&st, BGP_ERR_UPD_ATTRLIST, "Total Path Attribute Length overruns the message",
			  false);
		return 0;
	}
	const uint8_t *attrs = p;
	const uint8_t *nlri = p + alen;
	size_t nlen = (size_t)(end - nlri);
	bool ap4 = s->addpath_rx[BGP_FAM_IPV4];

	/* RFC 7606 s5.3: syntax errors in these fields cannot be withdrawn: reset */
	if (!upd_nlri_valid(wd, wlen, 32, ap4)) {
		upd_reset(&st, BGP_ERR_UPD_NETWORK, "Withdrawn Routes field is malformed", false);
		return 0;
	}
	if (!upd_nlri_valid(nlri, nlen, 32, ap4)) {
		upd_reset(&st, BGP_ERR_UPD_NETWORK, "NLRI field is malformed", false);
		return 0;
	}
	u->withdrawn.p = wd;
	u->withdrawn.len = (uint16_t)wlen;
	u->withdrawn.addpath = ap4;
	u->nlri.p = nlri;
	u->nlri.len = (uint16_t)nlen;
	u->nlri.addpath = ap4;
	u->has_attrs = alen > 0;

	unsigned nattrs = 0;
	if (!upd_walk_attrs(&st, attrs, alen, &nattrs)) {
		u->attrs_len = 0;
		return 0;
	}

	/* End-of-RIB (RFC 4724 s2) */
	if (wlen == 0 && nlen == 0) {
		if (alen == 0)
			u->eor_family = BGP_FAM_IPV4;
		else if (nattrs == 1 && u->mp_unreach.family != BGP_FAM_NONE && u->mp_unreach.len == 0)
			u->eor_family = u->mp_unreach.family;
	}

	/*
	 * RFC 7606 s3 d: missing well-known mandatory attributes when something is
	 * announced.  LOCAL_PREF is well-known discretionary (RFC 4271 s5), so an
	 * iBGP UPDATE without it is kept (it ranks with the default 100), as other
	 * speakers do; only ORIGIN, AS_PATH and (for IPv4 NLRI) NEXT_HOP are required.
	 */
	if (nlen > 0 || u->mp_reach.len > 0) {
		static const uint8_t need[] = { BGP_ATTR_ORIGIN, BGP_ATTR_AS_PATH, BGP_ATTR_NEXT_HOP };
		static const char *const why[] = { "missing ORIGIN", "missing AS_PATH", "missing NEXT_HOP" };
		for (unsigned i = 0; i < sizeof(need); i++) {
			if (need[i] == BGP_ATTR_NEXT_HOP && nlen == 0)
				continue;
			if (bit_test(st.seen, need[i]))
				continue;
			st.cur = &need[i];
			st.cur_len = 1;
			st.cur_type = need[i];
			upd_verdict(&st, MSG_TREAT_AS_WITHDRAW, BGP_ERR_UPD_MISSING_WK, why[i], true);
		}
	}

	size_t bl = upd_emit(&st, scratch);
	if (bl == SIZE_MAX) {
		st.cur = NULL;
		st.cur_type = BGP_ATTR_AS_PATH;
		upd_verdict(&st, MSG_TREAT_AS_WITHDRAW, BGP_ERR_UPD_ASPATH,
			    "AS_PATH: too long once in 4-octet form", false);
		bit_clear(st.keep, BGP_ATTR_AS_PATH);
		bl = upd_emit(&st, scratch);
	}
	u->attrs_len = bl;
	return 0;
}

/* ---------------------------------------------------------------- canonical blob walk */

void msg_attr_iter_init(struct msg_attr_iter *it, const uint8_t *blob, size_t len)
{
	it->p = blob;
	it->end = blob ? blob + len : blob;
}

bool msg_attr_next(struct msg_attr_iter *it, struct msg_attr *a)
{
	const uint8_t *p = it->p;
	size_t left = (size_t)(it->end - p);

	if (p >= it->end || left < 3)
		return false;
	size_t hl = (p[0] & BGP_ATTR_F_EXTLEN) ? 4 : 3;
	if (left < hl)
		return false;
	size_t vl = hl == 4 ? bgp_get16(p + 2) : p[2];
	if (left - hl < vl) {
		it->p = it->end;
		return false;
	}
	a->flags = p[0];
	a->type = p[1];
	a->len = (uint16_t)vl;
	a->value = p + hl;
	it->p = p + hl + vl;
	return true;
}

bool msg_attr_find(const uint8_t *blob, size_t len, uint8_t type, struct msg_attr *a)
{
	struct msg_attr_iter it;
	struct msg_attr x;

	msg_attr_iter_init(&it, blob, len);
	while (msg_attr_next(&it, &x)) {
		if (x.type == type) {
			if (a)
				*a = x;
			return true;
		}
		if (x.type > type)  /* the blob is sorted */
			return false;
	}
	return false;
}
