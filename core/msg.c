/*
 * msg.c - BGP-4 framing, OPEN (with capabilities), KEEPALIVE, NOTIFICATION
 * and ROUTE-REFRESH encode/parse (RFC 4271 s4 and s6, RFC 5492, RFC 9072,
 * RFC 7313, RFC 8654).
 *
 * Threads: pure functions over caller buffers; any thread (in practice the
 * I/O thread that owns the peer's socket) calls them.
 *
 * Why it is built this way: every read from peer input goes through a small
 * bounds-checked cursor (struct cur), so no parser can step past len whatever
 * the length fields claim.  Writers use the mirror image (struct wcur) that
 * records overflow once and is checked at the end, instead of a check per
 * field.  Capabilities are decoded by a const table keyed by capability code.
 */
#include <string.h>

#include "core/msg.h"

/* ---------------------------------------------------------------- cursors */

struct cur {
	const uint8_t *p;
	size_t left;
};

static bool cur_u8(struct cur *c, uint8_t *v)
{
	if (c->left < 1)
		return false;
	*v = c->p[0];
	c->p++;
	c->left--;
	return true;
}

static bool cur_u16(struct cur *c, uint16_t *v)
{
	if (c->left < 2)
		return false;
	*v = bgp_get16(c->p);
	c->p += 2;
	c->left -= 2;
	return true;
}

static bool cur_u32(struct cur *c, uint32_t *v)
{
	if (c->left < 4)
		return false;
	*v = bgp_get32(c->p);
	c->p += 4;
	c->left -= 4;
	return true;
}

/* Split off the next n octets as a sub-cursor. */
static bool cur_sub(struct cur *c, size_t n, struct cur *sub)
{
	if (c->left < n)
		return false;
	sub->p = c->p;
	sub->left = n;
	c->p += n;
	c->left -= n;
	return true;
}

struct wcur {
	uint8_t *p;
	size_t left;
	bool overflow;
};

static void w_u8(struct wcur *w, uint8_t v)
{
	if (w->left < 1) {
		w->overflow = true;
		return;
	}
	*w->p++ = v;
	w->left--;
}

static void w_u16(struct wcur *w, uint16_t v)
{
	w_u8(w, (uint8_t)(v >> 8));
	w_u8(w, (uint8_t)v);
}

static void w_u32(struct wcur *w, uint32_t v)
{
	w_u16(w, (uint16_t)(v >> 16));
	w_u16(w, (uint16_t)v);
}

static void w_bytes(struct wcur *w, const uint8_t *b, size_t n)
{
	if (w->left < n) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->p, b, n);
	w->p += n;
	w->left -= n;
}

/* ---------------------------------------------------------------- verdicts */

static int set_err(struct msg_error *err, uint8_t code, uint8_t subcode, const uint8_t *data,
		   size_t data_len, const char *reason)
{
	if (!err)
		return -1;
	memset(err, 0, sizeof(*err));
	err->action = MSG_SESSION_RESET;
	err->code = code;
	err->subcode = subcode;
	err->family = BGP_FAM_NONE;
	if (data_len > MSG_ERR_DATA_MAX)
		data_len = MSG_ERR_DATA_MAX;
	if (data_len)
		memcpy(err->data, data, data_len);
	err->data_len = (uint16_t)data_len;
	err->reason = reason;
	return -1;
}

static void set_ok(struct msg_error *err)
{
	if (!err)
		return;
	memset(err, 0, sizeof(*err));
	err->action = MSG_OK;
	err->family = BGP_FAM_NONE;
}

static int err_badlen(struct msg_error *err, uint16_t len, const char *reason)
{
	uint8_t d[2];

	bgp_put16(d, len);
	return set_err(err, BGP_ERR_HEADER, BGP_ERR_HDR_LEN, d, 2, reason);
}

/* ---------------------------------------------------------------- framing */

/* Smallest legal length per type (index = type); KEEPALIVE is exact. */
static const uint16_t min_len[] = {
	[BGP_MSG_OPEN] = 29,
	[BGP_MSG_UPDATE] = 23,
	[BGP_MSG_NOTIFICATION] = 21,
	[BGP_MSG_KEEPALIVE] = 19,
	[BGP_MSG_ROUTE_REFRESH] = 23,
};

int msg_frame(const uint8_t *buf, size_t len, size_t max_len, struct msg_error *err)
{
	static const uint8_t marker[BGP_MARKER_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	uint16_t mlen;
	uint8_t type;

	if (len < BGP_HDR_LEN)
		return 0;
	if (memcmp(buf, marker, BGP_MARKER_LEN) != 0)
		return set_err(err, BGP_ERR_HEADER, BGP_ERR_HDR_SYNC, NULL, 0, "header: marker is not all ones");
	if (max_len < BGP_MAX_MSG)
		max_len = BGP_MAX_MSG;
	if (max_len > BGP_MAX_EXT_MSG)
		max_len = BGP_MAX_EXT_MSG;

	mlen = bgp_get16(buf + 16);
	type = buf[18];
	if (mlen < BGP_HDR_LEN || mlen > max_len)
		return err_badlen(err, mlen, "header: length out of range");
	if (type < BGP_MSG_OPEN || type > BGP_MSG_ROUTE_REFRESH)
		return set_err(err, BGP_ERR_HEADER, BGP_ERR_HDR_TYPE, &type, 1, "header: unknown message type");
	if (mlen < min_len[type])
		return err_badlen(err, mlen, "header: length too short for the message type");
	if (type == BGP_MSG_KEEPALIVE && mlen != BGP_HDR_LEN)
		return err_badlen(err, mlen, "header: KEEPALIVE must be 19 octets");
	/* RFC 8654 s3: OPEN and KEEPALIVE never exceed 4096 */
	if (type == BGP_MSG_OPEN && mlen > BGP_MAX_MSG)
		return err_badlen(err, mlen, "header: OPEN longer than 4096");
	if (len < mlen)
		return 0;
	set_ok(err);
	return mlen;
}

size_t msg_put_header(uint8_t *out, uint16_t total_len, uint8_t type)
{
	memset(out, 0xff, BGP_MARKER_LEN);
	bgp_put16(out + 16, total_len);
	out[18] = type;
	return BGP_HDR_LEN;
}

/* ---------------------------------------------------------------- OPEN encode */

/* Capabilities, written back to back (no optional-parameter header). */
static void capa_encode(struct wcur *w, uint32_t my_as, const struct msg_capa *c)
{
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		if (!c->mp[f])
			continue;
		w_u8(w, BGP_CAPA_MP);
		w_u8(w, 4);
		w_u16(w, bgp_family_afi(f));
		w_u8(w, 0);
		w_u8(w, BGP_SAFI_UNICAST);
	}
	if (c->route_refresh) {
		w_u8(w, BGP_CAPA_ROUTE_REFRESH);
		w_u8(w, 0);
	}
	if (c->enhanced_rr) {
		w_u8(w, BGP_CAPA_ENHANCED_RR);
		w_u8(w, 0);
	}
	if (c->ext_msg) {
		w_u8(w, BGP_CAPA_EXT_MSG);
		w_u8(w, 0);
	}
	if (c->as4) {
		w_u8(w, BGP_CAPA_AS4);
		w_u8(w, 4);
		w_u32(w, my_as);
	}
	unsigned n_ap = 0;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (c->add_path[f] & (MSG_ADDPATH_RECV | MSG_ADDPATH_SEND))
			n_ap++;
	if (n_ap) {
		w_u8(w, BGP_CAPA_ADD_PATH);
		w_u8(w, (uint8_t)(4 * n_ap));
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
			uint8_t v = c->add_path[f] & (MSG_ADDPATH_RECV | MSG_ADDPATH_SEND);
			if (!v)
				continue;
			w_u16(w, bgp_family_afi(f));
			w_u8(w, BGP_SAFI_UNICAST);
			w_u8(w, v);
		}
	}
	if (c->gr) {
		unsigned n_gr = 0;
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			n_gr += c->gr_family[f];
		w_u8(w, BGP_CAPA_GRACEFUL_RESTART);
		w_u8(w, (uint8_t)(2 + 4 * n_gr));
		w_u16(w, (uint16_t)((c->gr_restarting ? 0x8000 : 0) | (c->gr_time & 0x0fff)));
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
			if (!c->gr_family[f])
				continue;
			w_u16(w, bgp_family_afi(f));
			w_u8(w, BGP_SAFI_UNICAST);
			w_u8(w, c->gr_fwd[f] ? 0x80 : 0);
		}
	}
	for (unsigned i = 0; i < c->n_unknown && i < MSG_MAX_UNKNOWN_CAPA; i++) {
		w_u8(w, c->unknown[i].code);
		w_u8(w, c->unknown[i].len);
		w_bytes(w, c->unknown[i].value, c->unknown[i].len);
	}
}

size_t msg_open_encode(uint8_t *out, size_t cap, uint32_t my_as, uint16_t hold_time,
		       uint32_t bgp_id, const struct msg_capa *capa)
{
	uint8_t caps[BGP_MAX_MSG];
	struct wcur cw = { caps, sizeof(caps), false };
	struct wcur w = { out, cap, false };
	size_t clen;

	capa_encode(&cw, my_as, capa);
	if (cw.overflow)
		return 0;
	clen = (size_t)(cw.p - caps);

	w.p += BGP_HDR_LEN;
	if (cap < BGP_HDR_LEN)
		return 0;
	w.left -= BGP_HDR_LEN;
	w_u8(&w, BGP_VERSION);
	w_u16(&w, my_as > 0xffff ? BGP_AS_TRANS : (uint16_t)my_as);
	w_u16(&w, hold_time);
	w_u32(&w, bgp_id);
	if (clen == 0) {
		w_u8(&w, 0);
	} else if (clen + 2 <= 255) {
		/* one Capabilities parameter holding every capability */
		w_u8(&w, (uint8_t)(clen + 2));
		w_u8(&w, 2);
		w_u8(&w, (uint8_t)clen);
	} else {
		/* RFC 9072: marker 255/255, 2-octet lengths for everything after */
		w_u8(&w, 255);
		w_u8(&w, 255);
		w_u16(&w, (uint16_t)(clen + 3));
		w_u8(&w, 2);
		w_u16(&w, (uint16_t)clen);
	}
	w_bytes(&w, caps, clen);
	if (w.overflow)
		return 0;
	size_t total = (size_t)(w.p - out);
	if (total > BGP_MAX_MSG)
		return 0;
	msg_put_header(out, (uint16_t)total, BGP_MSG_OPEN);
	return total;
}

/* ---------------------------------------------------------------- OPEN parse */

static void capa_unknown(struct msg_capa *c, uint8_t code, struct cur *v)
{
	if (c->n_unknown >= MSG_MAX_UNKNOWN_CAPA)
		return;          /* kept for logs only: more than 8 are dropped */
	c->unknown[c->n_unknown].code = code;
	c->unknown[c->n_unknown].len = (uint8_t)v->left;
	c->unknown[c->n_unknown].value = v->p;
	c->n_unknown++;
}

/* Each decoder gets the capability value; returns 0 or sets err. */
typedef int (*capa_fn)(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err);

static int capa_mp(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err)
{
	struct cur orig = *v;
	uint16_t afi = 0;
	uint8_t res = 0, safi = 0;

	if (v->left != 4)
		return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: multiprotocol capability length is not 4");
	cur_u16(v, &afi);
	cur_u8(v, &res);
	cur_u8(v, &safi);
	c->mp_any = true;
	unsigned f = bgp_family_from_afi(afi, safi);
	if (f == BGP_FAM_NONE)
		capa_unknown(c, code, &orig);
	else
		c->mp[f] = true;
	return 0;
}

static int capa_flag(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err)
{
	/* value-less capabilities: a stray value is tolerated and ignored */
	switch (code) {
	case BGP_CAPA_ROUTE_REFRESH:
	case 128:
		c->route_refresh = true;
		break;
	case BGP_CAPA_ENHANCED_RR:
		c->enhanced_rr = true;
		break;
	case BGP_CAPA_EXT_MSG:
		c->ext_msg = true;
		break;
	}
	return 0;
}

static int capa_as4(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err)
{
	uint32_t asn = 0;

	if (v->left != 4)
		return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: 4-octet AS capability length is not 4");
	cur_u32(v, &asn);
	if (asn == 0)   /* RFC 7607 */
		return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_AS, NULL, 0, "OPEN: 4-octet AS capability carries AS 0");
	c->as4 = true;
	c->as4_asn = asn;
	return 0;
}

static int capa_addpath(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err)
{
	if (v->left % 4 != 0)
		return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: ADD-PATH capability length not a multiple of 4");
	while (v->left) {
		uint16_t afi = 0;
		uint8_t safi = 0, sr = 0;
		cur_u16(v, &afi);
		cur_u8(v, &safi);
		cur_u8(v, &sr);
		unsigned f = bgp_family_from_afi(afi, safi);
		/* RFC 7911 s4: other send/receive values are ignored */
		if (f != BGP_FAM_NONE && sr >= 1 && sr <= 3)
			c->add_path[f] = sr;
	}
	return 0;
}

static int capa_gr(struct msg_capa *c, uint8_t code, struct cur *v, struct msg_error *err)
{
	uint16_t fl = 0;

	if (v->left < 2 || (v->left - 2) % 4 != 0)
		return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: graceful restart capability has a bad length");
	cur_u16(v, &fl);
	c->gr = true;
	c->gr_restarting = (fl & 0x8000) != 0;
	c->gr_time = fl & 0x0fff;
	while (v->left) {
		uint16_t afi = 0;
		uint8_t safi = 0, ff = 0;
		cur_u16(v, &afi);
		cur_u8(v, &safi);
		cur_u8(v, &ff);
		unsigned f = bgp_family_from_afi(afi, safi);
		if (f == BGP_FAM_NONE)
			continue;
		c->gr_family[f] = true;
		c->gr_fwd[f] = (ff & 0x80) != 0;
	}
	return 0;
}

static const capa_fn capa_table[256] = {
	[BGP_CAPA_MP] = capa_mp,
	[BGP_CAPA_ROUTE_REFRESH] = capa_flag,
	[BGP_CAPA_EXT_MSG] = capa_flag,
	[BGP_CAPA_GRACEFUL_RESTART] = capa_gr,
	[BGP_CAPA_AS4] = capa_as4,
	[BGP_CAPA_ADD_PATH] = capa_addpath,
	[BGP_CAPA_ENHANCED_RR] = capa_flag,
	[128] = capa_flag,
};

static int capa_parse(struct cur *c, struct msg_capa *capa, struct msg_error *err)
{
	while (c->left) {
		uint8_t code, clen;
		struct cur v;

		if (!cur_u8(c, &code) || !cur_u8(c, &clen) || !cur_sub(c, clen, &v))
			return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: capability overruns its parameter");
		capa_fn fn = capa_table[code];
		if (!fn) {
			capa_unknown(capa, code, &v);
			continue;
		}
		if (fn(capa, code, &v, err) != 0)
			return -1;
	}
	return 0;
}

int msg_open_parse(const uint8_t *msg, size_t len, struct msg_open *open, struct msg_error *err)
{
	struct cur c = { msg, len };
	uint8_t optlen;
	bool ext = false;
	size_t params_len;
	struct cur params;

	memset(open, 0, sizeof(*open));
	if (len < 29 || len > BGP_MAX_MSG || bgp_get16(msg + 16) != len)
		return err_badlen(err, (uint16_t)(len > 0xffff ? 0xffff : len), "OPEN: bad message length");
	c.p += BGP_HDR_LEN;
	c.left -= BGP_HDR_LEN;
	cur_u8(&c, &open->version);
	cur_u16(&c, &open->my_as);
	cur_u16(&c, &open->hold_time);
	cur_u32(&c, &open->bgp_id);
	cur_u8(&c, &optlen);

	if (open->version != BGP_VERSION) {
		uint8_t d[2] = { 0, BGP_VERSION };
		return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_VERSION, d, 2, "OPEN: unsupported version");
	}
	if (open->my_as == 0)
		return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_AS, NULL, 0, "OPEN: peer AS is 0");
	if (open->hold_time == 1 || open->hold_time == 2)
		return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_HOLD, NULL, 0, "OPEN: hold time 1 or 2");
	if (open->bgp_id == 0)
		return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_BGPID, NULL, 0, "OPEN: BGP identifier is 0");

	/* RFC 9072: a first parameter of type 255 announces the extended form */
	if (optlen > 0 && c.left >= 1 && c.p[0] == 255) {
		uint8_t t;
		uint16_t xlen;
		cur_u8(&c, &t);
		if (!cur_u16(&c, &xlen))
			return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: truncated extended optional parameters length");
		ext = true;
		params_len = xlen;
	} else {
		params_len = optlen;
	}
	if (params_len != c.left)
		return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: optional parameters length disagrees with message length");
	cur_sub(&c, params_len, &params);

	while (params.left) {
		uint8_t ptype, plen8;
		uint16_t plen;
		struct cur pv;

		cur_u8(&params, &ptype);
		if (ext) {
			if (!cur_u16(&params, &plen))
				return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: truncated optional parameter header");
		} else {
			if (!cur_u8(&params, &plen8))
				return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: truncated optional parameter header");
			plen = plen8;
		}
		if (!cur_sub(&params, plen, &pv))
			return set_err(err, BGP_ERR_OPEN, 0, NULL, 0, "OPEN: optional parameter overruns the message");
		if (ptype != 2)
			return set_err(err, BGP_ERR_OPEN, BGP_ERR_OPEN_OPTPARAM, NULL, 0,
				       "OPEN: unsupported optional parameter");
		if (capa_parse(&pv, &open->capa, err) != 0)
			return -1;
	}
	set_ok(err);
	return 0;
}

uint32_t msg_open_asn(const struct msg_open *open)
{
	return open->capa.as4 ? open->capa.as4_asn : open->my_as;
}

/* ------------------------------------------------ KEEPALIVE, NOTIFICATION, ROUTE-REFRESH */

size_t msg_keepalive_encode(uint8_t *out, size_t cap)
{
	if (cap < BGP_HDR_LEN)
		return 0;
	return msg_put_header(out, BGP_HDR_LEN, BGP_MSG_KEEPALIVE);
}

size_t msg_notification_encode(uint8_t *out, size_t cap, uint8_t code, uint8_t subcode,
			       const uint8_t *data, size_t data_len)
{
	/* the data is diagnostic only: trim it rather than exceed 4096 */
	if (data_len > BGP_MAX_MSG - BGP_HDR_LEN - 2)
		data_len = BGP_MAX_MSG - BGP_HDR_LEN - 2;
	size_t total = BGP_HDR_LEN + 2 + data_len;
	if (cap < total)
		return 0;
	msg_put_header(out, (uint16_t)total, BGP_MSG_NOTIFICATION);
	out[BGP_HDR_LEN] = code;
	out[BGP_HDR_LEN + 1] = subcode;
	if (data_len)
		memcpy(out + BGP_HDR_LEN + 2, data, data_len);
	return total;
}

int msg_notification_parse(const uint8_t *msg, size_t len, uint8_t *code, uint8_t *subcode,
			   const uint8_t **data, size_t *data_len)
{
	if (len < BGP_HDR_LEN + 2)
		return -1;
	*code = msg[BGP_HDR_LEN];
	*subcode = msg[BGP_HDR_LEN + 1];
	*data = msg + BGP_HDR_LEN + 2;
	*data_len = len - BGP_HDR_LEN - 2;
	return 0;
}

size_t msg_utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2; cp = c & 0x1F; min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3; cp = c & 0x0F; min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

size_t msg_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* s[max] exists: back off its continuation octets (10xxxxxx) to the
	 * first octet of the character it is in, at most 3 in valid UTF-8 */
	while (max > 0 && ((uint8_t)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

int msg_shutdown_comm(uint8_t code, uint8_t subcode, const uint8_t *data, size_t data_len, char *out,
		      size_t outlen)
{
	if (outlen)
		out[0] = '\0';
	if (code != BGP_ERR_CEASE || (subcode != 2 && subcode != 4) || data_len == 0 || data[0] == 0)
		return 0;
	size_t len = data[0];
	if (len > data_len - 1)
		return -1;
	if (!outlen)
		return 1;
	/* cleaned whole, then cut: a character is copied or replaced by one
	 * '?', so the text never grows past the 255 octets of the length */
	const uint8_t *p = data + 1;
	char t[256];
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t l = msg_utf8_seq(p + i, len - i);
		bool ok = l > 0 && (l > 1 || (p[i] >= 0x20 && p[i] != 0x7F));
		if (ok)
			memcpy(t + o, p + i, l);
		else
			t[o] = '?';
		o += ok ? l : 1;
		i += ok ? l : 1;
	}
	o = msg_utf8_cut(t, o, outlen - 1);
	memcpy(out, t, o);
	out[o] = '\0';
	return 1;
}

size_t msg_route_refresh_encode(uint8_t *out, size_t cap, unsigned family, uint8_t subtype)
{
	if (cap < BGP_HDR_LEN + 4 || family >= BGP_FAM_COUNT)
		return 0;
	msg_put_header(out, BGP_HDR_LEN + 4, BGP_MSG_ROUTE_REFRESH);
	bgp_put16(out + BGP_HDR_LEN, bgp_family_afi(family));
	out[BGP_HDR_LEN + 2] = subtype;
	out[BGP_HDR_LEN + 3] = BGP_SAFI_UNICAST;
	return BGP_HDR_LEN + 4;
}

/*
 * RFC 7313 s5: a ROUTE-REFRESH whose body is not 4 octets is answered with
 * 7/1 carrying the complete message (trimmed to MSG_ERR_DATA_MAX here).
 * Subtypes other than 0..2 are returned as is: the caller ignores them.
 */
int msg_route_refresh_parse(const uint8_t *msg, size_t len, unsigned *family, uint8_t *subtype,
			    struct msg_error *err)
{
	if (len != BGP_HDR_LEN + 4)
		return set_err(err, BGP_ERR_ROUTE_REFRESH, BGP_ERR_RR_INVALID_LEN, msg, len,
			       "ROUTE-REFRESH: length is not 23");
	*family = bgp_family_from_afi(bgp_get16(msg + BGP_HDR_LEN), msg[BGP_HDR_LEN + 3]);
	*subtype = msg[BGP_HDR_LEN + 2];
	set_ok(err);
	return 0;
}
