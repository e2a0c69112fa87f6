/*
 * bgp.h - BGP-4 protocol constants and the small value types every module shares.
 *
 * Owns: message/attribute/error code points, the prefix and next-hop value types,
 * and the definition of the *canonical attribute blob* that the parser produces,
 * the RIB interns and the encoder rewrites.  Nothing here allocates or locks;
 * everything is a plain value that may be copied between threads freely.
 *
 * Canonical attribute blob (what rib/attr.c interns, what core/update.c emits):
 *   - a sequence of path attributes in wire format: flags(1) type(1) len(1|2) value,
 *   - sorted by ascending type code, each type at most once,
 *   - excludes NEXT_HOP, MP_REACH_NLRI, MP_UNREACH_NLRI, AS4_PATH and AS4_AGGREGATOR
 *     (the next hop is carried beside the blob in struct bgp_nexthop; AS4_* are
 *     merged into AS_PATH / AGGREGATOR by RFC 6793 reconciliation),
 *   - AS_PATH always carries 4-octet ASNs; AGGREGATOR is always 8 octets (AS4 + IPv4),
 *   - flags normalised: Extended Length set iff the value is longer than 255 octets,
 *     well-known attributes 0x40, known optional attributes with their RFC flags,
 *     unknown optional transitive attributes kept with the Partial bit set,
 *     unknown optional non-transitive attributes and RFC 7606 "discarded" ones absent.
 *   Two routes with the same blob and next hop have identical path attributes, which
 *   is what makes hash-consing (interning) both correct and cheap.
 */
#ifndef RICOCHET_CORE_BGP_H
#define RICOCHET_CORE_BGP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BGP_PORT            179
#define BGP_VERSION         4
#define BGP_MARKER_LEN      16
#define BGP_HDR_LEN         19
#define BGP_MAX_MSG         4096     /* RFC 4271 */
#define BGP_MAX_EXT_MSG     65535    /* RFC 8654 extended messages */
#define BGP_AS_TRANS        23456    /* RFC 6793 */
#define BGP_DEFAULT_ASN     65515    /* as the managed route-server service */
#define BGP_DEFAULT_HOLD    90
#define BGP_DEFAULT_KEEPALIVE 30
#define BGP_DEFAULT_CONNECT_RETRY 30

enum bgp_msg_type {
	BGP_MSG_OPEN = 1,
	BGP_MSG_UPDATE = 2,
	BGP_MSG_NOTIFICATION = 3,
	BGP_MSG_KEEPALIVE = 4,
	BGP_MSG_ROUTE_REFRESH = 5,
};

/* Address families.  The AFI/SAFI pair is mapped to a dense index for tables. */
#define BGP_AFI_IPV4        1
#define BGP_AFI_IPV6        2
#define BGP_SAFI_UNICAST    1

enum bgp_family {
	BGP_FAM_IPV4 = 0,            /* AFI 1 SAFI 1 */
	BGP_FAM_IPV6 = 1,            /* AFI 2 SAFI 1 */
	BGP_FAM_COUNT = 2,
	BGP_FAM_NONE = 255,
};

/* Path attribute type codes. */
enum bgp_attr_type {
	BGP_ATTR_ORIGIN = 1,
	BGP_ATTR_AS_PATH = 2,
	BGP_ATTR_NEXT_HOP = 3,
	BGP_ATTR_MED = 4,
	BGP_ATTR_LOCAL_PREF = 5,
	BGP_ATTR_ATOMIC_AGGREGATE = 6,
	BGP_ATTR_AGGREGATOR = 7,
	BGP_ATTR_COMMUNITIES = 8,
	BGP_ATTR_ORIGINATOR_ID = 9,
	BGP_ATTR_CLUSTER_LIST = 10,
	BGP_ATTR_MP_REACH_NLRI = 14,
	BGP_ATTR_MP_UNREACH_NLRI = 15,
	BGP_ATTR_EXT_COMMUNITIES = 16,
	BGP_ATTR_AS4_PATH = 17,
	BGP_ATTR_AS4_AGGREGATOR = 18,
	BGP_ATTR_LARGE_COMMUNITY = 32,
};

/* Attribute flag bits. */
#define BGP_ATTR_F_OPTIONAL   0x80
#define BGP_ATTR_F_TRANSITIVE 0x40
#define BGP_ATTR_F_PARTIAL    0x20
#define BGP_ATTR_F_EXTLEN     0x10

/* ORIGIN values. */
#define BGP_ORIGIN_IGP        0
#define BGP_ORIGIN_EGP        1
#define BGP_ORIGIN_INCOMPLETE 2

/* AS_PATH segment types (RFC 4271, RFC 5065). */
#define BGP_AS_SET            1
#define BGP_AS_SEQUENCE       2
#define BGP_AS_CONFED_SEQUENCE 3
#define BGP_AS_CONFED_SET     4

/* Well-known communities (RFC 1997). */
#define BGP_COMM_NO_EXPORT           0xFFFFFF01u
#define BGP_COMM_NO_ADVERTISE        0xFFFFFF02u
#define BGP_COMM_NO_EXPORT_SUBCONFED 0xFFFFFF03u

/* NOTIFICATION error codes and subcodes (RFC 4271 s4.5, RFC 4486, RFC 7313, RFC 9687). */
enum bgp_err {
	BGP_ERR_HEADER = 1,
	BGP_ERR_OPEN = 2,
	BGP_ERR_UPDATE = 3,
	BGP_ERR_HOLD = 4,
	BGP_ERR_FSM = 5,
	BGP_ERR_CEASE = 6,
	BGP_ERR_ROUTE_REFRESH = 7,
	BGP_ERR_SEND_HOLD = 8,
};
/* Message header error subcodes */
#define BGP_ERR_HDR_SYNC        1
#define BGP_ERR_HDR_LEN         2
#define BGP_ERR_HDR_TYPE        3
/* OPEN message error subcodes */
#define BGP_ERR_OPEN_VERSION    1
#define BGP_ERR_OPEN_AS         2
#define BGP_ERR_OPEN_BGPID      3
#define BGP_ERR_OPEN_OPTPARAM   4
#define BGP_ERR_OPEN_HOLD       6
#define BGP_ERR_OPEN_CAPA       7
#define BGP_ERR_OPEN_ROLE       11
/* UPDATE message error subcodes */
#define BGP_ERR_UPD_ATTRLIST    1
#define BGP_ERR_UPD_UNKNWN_WK   2
#define BGP_ERR_UPD_MISSING_WK  3
#define BGP_ERR_UPD_ATTRFLAGS   4
#define BGP_ERR_UPD_ATTRLEN     5
#define BGP_ERR_UPD_ORIGIN      6
#define BGP_ERR_UPD_NEXTHOP     8
#define BGP_ERR_UPD_OPTATTR     9
#define BGP_ERR_UPD_NETWORK     10
#define BGP_ERR_UPD_ASPATH      11
/* FSM error subcodes (RFC 6608) */
#define BGP_ERR_FSM_UNSPEC          0
#define BGP_ERR_FSM_OPENSENT        1
#define BGP_ERR_FSM_OPENCONFIRM     2
#define BGP_ERR_FSM_ESTABLISHED     3
/* Cease subcodes (RFC 4486) */
#define BGP_CEASE_MAX_PREFIX        1
#define BGP_CEASE_ADMIN_SHUTDOWN    2
#define BGP_CEASE_PEER_DECONFIG     3
#define BGP_CEASE_ADMIN_RESET       4
#define BGP_CEASE_CONN_REJECT       5
#define BGP_CEASE_OTHER_CONFIG      6
#define BGP_CEASE_COLLISION         7
#define BGP_CEASE_OUT_OF_RESOURCES  8
/* ROUTE-REFRESH subcodes (RFC 7313) */
#define BGP_ERR_RR_INVALID_LEN      1

/* ROUTE-REFRESH message subtypes (RFC 7313). */
#define BGP_RR_NORMAL  0
#define BGP_RR_BORR    1
#define BGP_RR_EORR    2

/* Capability codes (RFC 5492 registry). */
enum bgp_capa_code {
	BGP_CAPA_MP = 1,
	BGP_CAPA_ROUTE_REFRESH = 2,
	BGP_CAPA_EXT_MSG = 6,
	BGP_CAPA_GRACEFUL_RESTART = 64,
	BGP_CAPA_AS4 = 65,
	BGP_CAPA_ADD_PATH = 69,
	BGP_CAPA_ENHANCED_RR = 70,
};

/*
 * A prefix.  addr holds the address in network byte order, with every bit past
 * len zero (the parser enforces this by masking).  path_id is the RFC 7911
 * path identifier, 0 when ADD-PATH is not in use for this family.
 */
struct bgp_prefix {
	uint8_t family;      /* enum bgp_family */
	uint8_t len;         /* 0..32 or 0..128 */
	uint8_t pad[2];
	uint32_t path_id;    /* host byte order */
	uint8_t addr[16];    /* network byte order; IPv4 uses addr[0..3] */
};

/*
 * A next hop as carried on the wire: 4 octets for IPv4 NEXT_HOP, 16 or 32
 * (global + link-local) octets for an IPv6 MP_REACH next hop.  len 0 = none.
 */
struct bgp_nexthop {
	uint8_t len;
	uint8_t addr[32];
};

/* Address of a peer (IPv4 or IPv6), for peer tables and tie-breaks. */
struct bgp_addr {
	uint8_t family;      /* enum bgp_family */
	uint8_t addr[16];
};

/* Helpers that are trivially inline. */
static inline unsigned bgp_family_maxlen(unsigned fam)
{
	return fam == BGP_FAM_IPV6 ? 128 : 32;
}

static inline unsigned bgp_family_from_afi(uint16_t afi, uint8_t safi)
{
	if (safi != BGP_SAFI_UNICAST)
		return BGP_FAM_NONE;
	if (afi == BGP_AFI_IPV4)
		return BGP_FAM_IPV4;
	if (afi == BGP_AFI_IPV6)
		return BGP_FAM_IPV6;
	return BGP_FAM_NONE;
}

static inline uint16_t bgp_family_afi(unsigned fam)
{
	return fam == BGP_FAM_IPV6 ? BGP_AFI_IPV6 : BGP_AFI_IPV4;
}

/* Names for logs: "Cease/Administrative Reset" style.  Never NULL. */
const char *bgp_err_name(uint8_t code);
const char *bgp_suberr_name(uint8_t code, uint8_t subcode);
const char *bgp_msg_type_name(uint8_t type);
const char *bgp_attr_name(uint8_t type);
const char *bgp_capa_name(uint8_t code);

/* Text forms: "10.0.0.0/8", "2001:db8::/32".  Return bytes written (snprintf). */
int bgp_prefix_fmt(char *buf, size_t len, const struct bgp_prefix *p);
/* Parse "10.0.0.0/8" or "2001:db8::/32"; host bits must be zero.  0 on success. */
int bgp_prefix_parse(const char *s, struct bgp_prefix *p);
int bgp_addr_fmt(char *buf, size_t len, const struct bgp_addr *a);
int bgp_addr_parse(const char *s, struct bgp_addr *a);
/* A BGP identifier (or router / cluster id, ORIGINATOR_ID), host order, as a
 * dotted quad; 16 bytes always suffice. */
int bgp_id_fmt(char *buf, size_t len, uint32_t id);

/* Network byte order at any alignment, the way every BGP and MRT field is
 * laid out on the wire.  The caller has checked that the bytes are there. */
static inline uint16_t bgp_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t bgp_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void bgp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void bgp_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
