/*
 * msg.h - the BGP-4 wire codec: framing, OPEN and capabilities, KEEPALIVE,
 * NOTIFICATION, ROUTE-REFRESH, UPDATE parse (RFC 4271 s6 + RFC 7606) and encode.
 *
 * Ownership and threading: pure functions over caller-owned buffers.  Nothing
 * here allocates, locks or keeps state between calls, so any thread may call
 * anything.  Parsers read in place: the structs they fill point into the
 * caller's receive buffer, which must outlive them.
 *
 * Errors from the peer are never fatal here: every parser returns a verdict
 * (struct msg_error) that the caller acts on (send NOTIFICATION and close,
 * treat the UPDATE as a withdraw, disable an AFI/SAFI).  Files:
 *   msg.c       framing, OPEN, capabilities, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH
 *   update.c    UPDATE parse, attribute validation, AS4 reconciliation, NLRI iteration
 *   encode.c    UPDATE encode (packing), outbound attribute rewrite
 *   names.c     code/subcode/attribute/capability names, prefix text forms
 */
#ifndef RICOCHET_CORE_MSG_H
#define RICOCHET_CORE_MSG_H

#include "core/bgp.h"

/* ---------------------------------------------------------------- verdicts */

enum msg_action {
	MSG_OK = 0,               /* nothing wrong */
	MSG_TREAT_AS_WITHDRAW,    /* RFC 7606 s2: withdraw every NLRI in the UPDATE */
	MSG_AFI_DISABLE,          /* RFC 7606 s2: disable the family (or reset if unsupported) */
	MSG_SESSION_RESET,        /* send NOTIFICATION code/subcode/data, close */
};

/*
 * The outcome of parsing one message.  For MSG_SESSION_RESET, code/subcode and
 * data[0..data_len) are exactly what the NOTIFICATION must carry.  attr_type
 * names the offending attribute (0 if none) for the log line.  discarded
 * counts attributes dropped under "attribute discard" (the UPDATE is otherwise
 * applied).
 */
#define MSG_ERR_DATA_MAX 64
struct msg_error {
	uint8_t action;           /* enum msg_action */
	uint8_t code;
	uint8_t subcode;
	uint8_t attr_type;
	uint8_t family;           /* for MSG_AFI_DISABLE */
	uint8_t discarded;
	uint16_t data_len;
	uint8_t data[MSG_ERR_DATA_MAX];
	const char *reason;       /* static string for logs, e.g. "ORIGIN: bad value 7" */
};

/* ---------------------------------------------------------------- framing */

/*
 * Look at buf[0..len) and decide whether a whole message is there.
 * Returns  >0  the total length of the first message (header included),
 *           0  need more bytes,
 *          -1  bad header: err says NOTIFICATION 1/x (bad marker, bad length
 *              for the type or above max_len, unknown type).
 * max_len is 4096, or 65535 once extended messages are negotiated (RFC 8654:
 * OPEN and KEEPALIVE stay limited to 4096).
 */
int msg_frame(const uint8_t *buf, size_t len, size_t max_len, struct msg_error *err);

/* Write a header (marker, length, type) at out; returns BGP_HDR_LEN. */
size_t msg_put_header(uint8_t *out, uint16_t total_len, uint8_t type);

/* ---------------------------------------------------------------- OPEN */

#define MSG_MAX_UNKNOWN_CAPA 8
struct msg_unknown_capa {
	uint8_t code;
	uint8_t len;
	const uint8_t *value;     /* points into the message */
};

/* Everything we negotiate, one struct for what we send and what we receive. */
struct msg_capa {
	bool mp[BGP_FAM_COUNT];          /* multiprotocol families announced */
	bool mp_any;                     /* any MP capability seen (else IPv4 implied) */
	bool route_refresh;
	bool enhanced_rr;
	bool ext_msg;
	bool as4;
	uint32_t as4_asn;                /* the 4-octet ASN from the AS4 capability */
	/* ADD-PATH: bit 0 = receive, bit 1 = send, per family (RFC 7911 s4) */
	uint8_t add_path[BGP_FAM_COUNT];
	bool gr;                         /* graceful restart capability present */
	bool gr_restarting;              /* R bit */
	uint16_t gr_time;                /* restart time, seconds */
	bool gr_family[BGP_FAM_COUNT];   /* families listed in GR capability */
	bool gr_fwd[BGP_FAM_COUNT];      /* forwarding state preserved bit */
	uint8_t n_unknown;
	struct msg_unknown_capa unknown[MSG_MAX_UNKNOWN_CAPA];
};
#define MSG_ADDPATH_RECV 1
#define MSG_ADDPATH_SEND 2

struct msg_open {
	uint8_t version;
	uint16_t my_as;                  /* 2-octet field (AS_TRANS for big ASNs) */
	uint16_t hold_time;
	uint32_t bgp_id;                 /* host byte order */
	struct msg_capa capa;
};

/*
 * Encode an OPEN.  my_as is the real (possibly 4-octet) ASN: the 2-octet field
 * gets AS_TRANS when it does not fit.  Uses RFC 9072 extended optional
 * parameters only when the capabilities would not fit in 255 octets.
 * Returns the message length, 0 if cap is too small.
 */
size_t msg_open_encode(uint8_t *out, size_t cap, uint32_t my_as, uint16_t hold_time,
		       uint32_t bgp_id, const struct msg_capa *capa);

/*
 * Parse an OPEN (the whole framed message, header included).  Checks version,
 * hold time (1 and 2 are errors), BGP identifier (0 is an error; equal to
 * local_bgp_id is an error for iBGP only, so the caller checks that),
 * optional parameter and capability lengths (RFC 9072 form included).
 * Unknown capabilities are kept in capa.unknown, not rejected.
 * Returns 0 or -1 with err filled (NOTIFICATION 2/x).
 */
int msg_open_parse(const uint8_t *msg, size_t len, struct msg_open *open, struct msg_error *err);

/* The real ASN of the peer: AS4 capability if present, else the 2-octet field. */
uint32_t msg_open_asn(const struct msg_open *open);

/* ------------------------------------------------ KEEPALIVE, NOTIFICATION, ROUTE-REFRESH */

size_t msg_keepalive_encode(uint8_t *out, size_t cap);

size_t msg_notification_encode(uint8_t *out, size_t cap, uint8_t code, uint8_t subcode,
			       const uint8_t *data, size_t data_len);
/* Parse a NOTIFICATION: any data length is accepted (it is only logged). */
int msg_notification_parse(const uint8_t *msg, size_t len, uint8_t *code, uint8_t *subcode,
			   const uint8_t **data, size_t *data_len);

/* Length of the valid UTF-8 sequence at p (n octets left, n >= 1), 0 if
 * invalid: shortest form only, no surrogates, nothing above U+10FFFF.  Reads
 * past p[0] only while the octets are continuation octets, so on a
 * NUL-terminated string any n >= 4 is safe. */
size_t msg_utf8_seq(const uint8_t *p, size_t n);

/* Where to cut a text to at most max octets without splitting a character:
 * the longest length <= max that ends at a character boundary (len itself
 * when len <= max).  s (len octets, no terminator needed) must be valid
 * UTF-8, e.g. msg_shutdown_comm's output: the cut only backs off
 * continuation octets, it does not validate. */
size_t msg_utf8_cut(const char *s, size_t len, size_t max);

/*
 * RFC 9003: the Shutdown Communication a Cease / Administrative Shutdown (2)
 * or Administrative Reset (4) may carry (length octet, then up to 255 octets
 * of UTF-8).  Writes it to out (NUL-terminated, truncated to outlen - 1) made
 * safe to print: each invalid UTF-8 octet and each control character becomes
 * '?', so a peer cannot put escape sequences in our logs or invalid text in
 * our JSON.  Returns 1 with a message, 0 when there is none (other codes, no
 * data, length 0), -1 when the length octet runs past the data (RFC 9003 s4:
 * malformed; the caller logs that and shows no text).
 */
int msg_shutdown_comm(uint8_t code, uint8_t subcode, const uint8_t *data, size_t data_len, char *out,
		      size_t outlen);

size_t msg_route_refresh_encode(uint8_t *out, size_t cap, unsigned family, uint8_t subtype);
/* 0 ok, -1 bad length (err: 7/1 per RFC 7313).  Unknown AFI/SAFI: ok with *family = NONE. */
int msg_route_refresh_parse(const uint8_t *msg, size_t len, unsigned *family, uint8_t *subtype,
			    struct msg_error *err);

/* ---------------------------------------------------------------- UPDATE parse */

/* What the session negotiated, as the UPDATE parser and encoder need it. */
struct msg_session {
	bool as4;                        /* both sides sent the AS4 capability */
	bool ebgp;                       /* peer is in another AS */
	bool addpath_rx[BGP_FAM_COUNT];  /* we receive path identifiers */
	bool addpath_tx[BGP_FAM_COUNT];  /* we send path identifiers */
	bool family[BGP_FAM_COUNT];      /* families negotiated */
	size_t max_msg;                  /* 4096 or 65535 */
	uint32_t peer_as;
	uint32_t local_as;
	bool rs_client;                  /* RFC 7947: peer is a route server that does not
					    prepend its AS: skip the eBGP first-AS check */
};

/* An NLRI block to iterate: a run of (path-id) length prefix encodings, validated. */
struct msg_nlri {
	const uint8_t *p;
	uint16_t len;
	uint8_t family;
	bool addpath;
};

/*
 * A parsed UPDATE.  Pointers refer to the receive buffer; the canonical
 * attribute blob is written into the caller's scratch buffer (see bgp.h).
 *
 * Withdrawals: withdrawn (IPv4, from the Withdrawn Routes field) and
 * mp_unreach (any family).  Announcements: nlri (IPv4) with nexthop4, and
 * mp_reach with mp_nexthop.  End-of-RIB (RFC 4724) is reported in eor_family.
 * When err.action is MSG_TREAT_AS_WITHDRAW every announced prefix must be
 * treated as withdrawn (nlri and mp_reach still point at them).
 */
struct msg_update {
	struct msg_nlri withdrawn;
	struct msg_nlri nlri;
	struct msg_nlri mp_reach;
	struct msg_nlri mp_unreach;
	struct bgp_nexthop nexthop4;     /* NEXT_HOP attribute, len 0 if absent */
	struct bgp_nexthop mp_nexthop;   /* MP_REACH next hop, len 0 if absent */
	const uint8_t *attrs;            /* canonical blob (in the scratch buffer) */
	size_t attrs_len;
	uint8_t eor_family;              /* BGP_FAM_NONE unless this is an End-of-RIB */
	bool has_attrs;                  /* path attributes were present */
	/* decoded for callers' convenience (loop checks, tests) */
	bool has_originator_id;
	uint32_t originator_id;          /* host order */
	uint16_t cluster_list_len;       /* number of cluster ids */
	const uint8_t *cluster_list;     /* 4*cluster_list_len octets in the blob, or NULL */
	bool no_advertise, no_export, no_export_subconfed;
};

/* Size a scratch buffer must have: canonical form can grow AS_PATH 2->4 octets. */
#define MSG_SCRATCH_SIZE (2 * BGP_MAX_EXT_MSG + 64)

/*
 * Parse and validate one UPDATE (whole framed message).  scratch must hold
 * MSG_SCRATCH_SIZE bytes.  Returns 0; the verdict is in err (MSG_OK,
 * treat-as-withdraw, AFI disable, session reset).  Never allocates.
 */
int msg_update_parse(const uint8_t *msg, size_t len, const struct msg_session *s,
		     uint8_t *scratch, struct msg_update *u, struct msg_error *err);

/* Iterate a validated NLRI block.  Returns true and fills *p, false at the end. */
struct msg_nlri_iter {
	const uint8_t *p, *end;
	uint8_t family;
	bool addpath;
};
void msg_nlri_iter_init(struct msg_nlri_iter *it, const struct msg_nlri *n);
bool msg_nlri_next(struct msg_nlri_iter *it, struct bgp_prefix *p);

/* Walk a canonical blob: returns false at end.  type/flags/value/len of each attribute. */
struct msg_attr_iter {
	const uint8_t *p, *end;
};
struct msg_attr {
	uint8_t flags, type;
	uint16_t len;
	const uint8_t *value;
};
void msg_attr_iter_init(struct msg_attr_iter *it, const uint8_t *blob, size_t len);
bool msg_attr_next(struct msg_attr_iter *it, struct msg_attr *a);
/* Find one attribute in a canonical blob; NULL if absent. */
bool msg_attr_find(const uint8_t *blob, size_t len, uint8_t type, struct msg_attr *a);

/* ---------------------------------------------------------------- UPDATE encode */

/*
 * How to rewrite a canonical blob for one outbound update group.
 *   reflect:      RFC 4456 - add ORIGINATOR_ID (= originator) if absent,
 *                 prepend cluster_id to CLUSTER_LIST (create it if absent).
 *   ebgp:         strip LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST (non-transitive
 *                 across AS boundaries) - used for rs-client groups, which also
 *                 leave AS_PATH, NEXT_HOP and MED untouched (RFC 7947).
 *   prepend_as:   when nonzero, prepend this AS to AS_PATH (plain eBGP; unused by
 *                 route-server groups).
 *   local_pref:   iBGP groups: add LOCAL_PREF (RFC 4271 s5.1.5 requires it towards
 *                 internal peers) when the route came without one.
 *   as4:          peer speaks 4-octet AS; when false AS_PATH and AGGREGATOR are
 *                 emitted in 2-octet form with AS_TRANS, plus AS4_PATH /
 *                 AS4_AGGREGATOR when any ASN does not fit (RFC 6793 s4.2.2).
 */
struct msg_out_params {
	bool reflect;
	uint32_t originator_id;          /* host order */
	uint32_t cluster_id;             /* host order */
	bool ebgp;
	uint32_t prepend_as;
	bool as4;
	uint32_t local_pref;             /* nonzero: add LOCAL_PREF with this value when the
	                                    blob has none (eBGP-learned route to iBGP peers) */
};

/*
 * Produce the outbound path attributes (without NEXT_HOP and MP_REACH, which
 * the packer adds) into out.  Returns the length, or 0 if cap is too small.
 */
size_t msg_attrs_out(uint8_t *out, size_t cap, const uint8_t *blob, size_t len,
		     const struct msg_out_params *p);

/*
 * Pack prefixes sharing one attribute set into UPDATE messages written back to
 * back in out[0..cap).  IPv4 prefixes go in the NLRI field with a NEXT_HOP
 * attribute; IPv6 in MP_REACH_NLRI with nh.  Each message is at most max_msg
 * octets and holds as many prefixes as fit.  path ids are written when addpath.
 * *consumed gets the number of prefixes packed (may be < n when out fills up);
 * returns bytes written.
 */
size_t msg_update_pack(uint8_t *out, size_t cap, size_t max_msg, unsigned family, bool addpath,
		       const uint8_t *attrs, size_t attrs_len, const struct bgp_nexthop *nh,
		       const struct bgp_prefix *pfx, size_t n, size_t *consumed);

/* Same for withdrawals (IPv4: Withdrawn Routes field; IPv6: MP_UNREACH_NLRI). */
size_t msg_withdraw_pack(uint8_t *out, size_t cap, size_t max_msg, unsigned family, bool addpath,
			 const struct bgp_prefix *pfx, size_t n, size_t *consumed);

/* End-of-RIB marker for a family (RFC 4724 s2).  Returns length. */
size_t msg_eor_encode(uint8_t *out, size_t cap, unsigned family);

/* Encoded size of one prefix in NLRI (path id included when addpath). */
static inline size_t msg_prefix_wire_len(const struct bgp_prefix *p, bool addpath)
{
	return 1 + (p->len + 7) / 8 + (addpath ? 4 : 0);
}

#endif
