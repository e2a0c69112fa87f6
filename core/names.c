/*
 * names.c - human-readable names for BGP code points, and text forms of
 * prefixes and addresses.
 *
 * Owns: the error/subcode, message type, attribute and capability name
 * tables; bgp_prefix_* and bgp_addr_* text conversions.  Every function is
 * pure (const tables, caller buffers), so any thread may call them.  Tables
 * are indexed by code point so that adding a name is one row, and every
 * lookup falls back to a fixed "unknown" string: callers log the result
 * without checking for NULL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bgp.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const err_names[] = {
	[BGP_ERR_HEADER] = "Message Header Error",
	[BGP_ERR_OPEN] = "OPEN Message Error",
	[BGP_ERR_UPDATE] = "UPDATE Message Error",
	[BGP_ERR_HOLD] = "Hold Timer Expired",
	[BGP_ERR_FSM] = "Finite State Machine Error",
	[BGP_ERR_CEASE] = "Cease",
	[BGP_ERR_ROUTE_REFRESH] = "ROUTE-REFRESH Message Error",
	[BGP_ERR_SEND_HOLD] = "Send Hold Timer Expired",
};

static const char *const hdr_sub[] = {
	[0] = "Unspecific",
	[BGP_ERR_HDR_SYNC] = "Connection Not Synchronized",
	[BGP_ERR_HDR_LEN] = "Bad Message Length",
	[BGP_ERR_HDR_TYPE] = "Bad Message Type",
};

static const char *const open_sub[] = {
	[0] = "Unspecific",
	[BGP_ERR_OPEN_VERSION] = "Unsupported Version Number",
	[BGP_ERR_OPEN_AS] = "Bad Peer AS",
	[BGP_ERR_OPEN_BGPID] = "Bad BGP Identifier",
	[BGP_ERR_OPEN_OPTPARAM] = "Unsupported Optional Parameter",
	[5] = "Authentication Failure (deprecated)",
	[BGP_ERR_OPEN_HOLD] = "Unacceptable Hold Time",
	[BGP_ERR_OPEN_CAPA] = "Unsupported Capability",
	[8] = "Grouping Conflict (deprecated)",
	[9] = "Grouping Required (deprecated)",
	[10] = "Capability Value Mismatch (deprecated)",
	[BGP_ERR_OPEN_ROLE] = "Role Mismatch",
};

static const char *const update_sub[] = {
	[0] = "Unspecific",
	[BGP_ERR_UPD_ATTRLIST] = "Malformed Attribute List",
	[BGP_ERR_UPD_UNKNWN_WK] = "Unrecognized Well-known Attribute",
	[BGP_ERR_UPD_MISSING_WK] = "Missing Well-known Attribute",
	[BGP_ERR_UPD_ATTRFLAGS] = "Attribute Flags Error",
	[BGP_ERR_UPD_ATTRLEN] = "Attribute Length Error",
	[BGP_ERR_UPD_ORIGIN] = "Invalid ORIGIN Attribute",
	[7] = "AS Routing Loop (deprecated)",
	[BGP_ERR_UPD_NEXTHOP] = "Invalid NEXT_HOP Attribute",
	[BGP_ERR_UPD_OPTATTR] = "Optional Attribute Error",
	[BGP_ERR_UPD_NETWORK] = "Invalid Network Field",
	[BGP_ERR_UPD_ASPATH] = "Malformed AS_PATH",
};

static const char *const hold_sub[] = {
	[0] = "Unspecific",
};

static const char *const fsm_sub[] = {
	[BGP_ERR_FSM_UNSPEC] = "Unspecified Error",
	[BGP_ERR_FSM_OPENSENT] = "Receive Unexpected Message in OpenSent State",
	[BGP_ERR_FSM_OPENCONFIRM] = "Receive Unexpected Message in OpenConfirm State",
	[BGP_ERR_FSM_ESTABLISHED] = "Receive Unexpected Message in Established State",
};

static const char *const cease_sub[] = {
	[0] = "Unspecific",
	[BGP_CEASE_MAX_PREFIX] = "Maximum Number of Prefixes Reached",
	[BGP_CEASE_ADMIN_SHUTDOWN] = "Administrative Shutdown",
	[BGP_CEASE_PEER_DECONFIG] = "Peer De-configured",
	[BGP_CEASE_ADMIN_RESET] = "Administrative Reset",
	[BGP_CEASE_CONN_REJECT] = "Connection Rejected",
	[BGP_CEASE_OTHER_CONFIG] = "Other Configuration Change",
	[BGP_CEASE_COLLISION] = "Connection Collision Resolution",
	[BGP_CEASE_OUT_OF_RESOURCES] = "Out of Resources",
	[9] = "Hard Reset",
	[10] = "BFD Down",
};

static const char *const rr_sub[] = {
	[0] = "Reserved",
	[BGP_ERR_RR_INVALID_LEN] = "Invalid Message Length",
};

static const char *const send_hold_sub[] = {
	[0] = "Unspecific",
};

struct sub_table {
	const char *const *names;
	size_t n;
};

static const struct sub_table sub_tables[] = {
	[BGP_ERR_HEADER] = { hdr_sub, NELEM(hdr_sub) },
	[BGP_ERR_OPEN] = { open_sub, NELEM(open_sub) },
	[BGP_ERR_UPDATE] = { update_sub, NELEM(update_sub) },
	[BGP_ERR_HOLD] = { hold_sub, NELEM(hold_sub) },
	[BGP_ERR_FSM] = { fsm_sub, NELEM(fsm_sub) },
	[BGP_ERR_CEASE] = { cease_sub, NELEM(cease_sub) },
	[BGP_ERR_ROUTE_REFRESH] = { rr_sub, NELEM(rr_sub) },
	[BGP_ERR_SEND_HOLD] = { send_hold_sub, NELEM(send_hold_sub) },
};

const char *bgp_err_name(uint8_t code)
{
	if (code < NELEM(err_names) && err_names[code])
		return err_names[code];
	return "Unknown Error Code";
}

/* Only the subcode part ("Administrative Reset"); callers print "%s/%s". */
const char *bgp_suberr_name(uint8_t code, uint8_t subcode)
{
	if (code < NELEM(sub_tables) && sub_tables[code].names) {
		const struct sub_table *t = &sub_tables[code];
		if (subcode < t->n && t->names[subcode])
			return t->names[subcode];
	}
	return "Unknown Subcode";
}

static const char *const msg_names[] = {
	[BGP_MSG_OPEN] = "OPEN",
	[BGP_MSG_UPDATE] = "UPDATE",
	[BGP_MSG_NOTIFICATION] = "NOTIFICATION",
	[BGP_MSG_KEEPALIVE] = "KEEPALIVE",
	[BGP_MSG_ROUTE_REFRESH] = "ROUTE-REFRESH",
};

const char *bgp_msg_type_name(uint8_t type)
{
	if (type < NELEM(msg_names) && msg_names[type])
		return msg_names[type];
	return "UNKNOWN";
}

static const char *const attr_names[] = {
	[BGP_ATTR_ORIGIN] = "ORIGIN",
	[BGP_ATTR_AS_PATH] = "AS_PATH",
	[BGP_ATTR_NEXT_HOP] = "NEXT_HOP",
	[BGP_ATTR_MED] = "MULTI_EXIT_DISC",
	[BGP_ATTR_LOCAL_PREF] = "LOCAL_PREF",
	[BGP_ATTR_ATOMIC_AGGREGATE] = "ATOMIC_AGGREGATE",
	[BGP_ATTR_AGGREGATOR] = "AGGREGATOR",
	[BGP_ATTR_COMMUNITIES] = "COMMUNITIES",
	[BGP_ATTR_ORIGINATOR_ID] = "ORIGINATOR_ID",
	[BGP_ATTR_CLUSTER_LIST] = "CLUSTER_LIST",
	[BGP_ATTR_MP_REACH_NLRI] = "MP_REACH_NLRI",
	[BGP_ATTR_MP_UNREACH_NLRI] = "MP_UNREACH_NLRI",
	[BGP_ATTR_EXT_COMMUNITIES] = "EXTENDED_COMMUNITIES",
	[BGP_ATTR_AS4_PATH] = "AS4_PATH",
	[BGP_ATTR_AS4_AGGREGATOR] = "AS4_AGGREGATOR",
	[22] = "PMSI_TUNNEL",
	[23] = "TUNNEL_ENCAPSULATION",
	[25] = "IPV6_EXT_COMMUNITIES",
	[26] = "AIGP",
	[29] = "BGP-LS",
	[BGP_ATTR_LARGE_COMMUNITY] = "LARGE_COMMUNITY",
	[33] = "BGPSEC_PATH",
	[35] = "OTC",
	[40] = "PREFIX_SID",
	[128] = "ATTR_SET",
};

const char *bgp_attr_name(uint8_t type)
{
	if (type < NELEM(attr_names) && attr_names[type])
		return attr_names[type];
	return "UNKNOWN_ATTR";
}

static const char *const capa_names[] = {
	[BGP_CAPA_MP] = "Multiprotocol",
	[BGP_CAPA_ROUTE_REFRESH] = "Route Refresh",
	[3] = "Outbound Route Filtering",
	[5] = "Extended Next Hop Encoding",
	[BGP_CAPA_EXT_MSG] = "Extended Message",
	[7] = "BGPsec",
	[8] = "Multiple Labels",
	[9] = "BGP Role",
	[BGP_CAPA_GRACEFUL_RESTART] = "Graceful Restart",
	[BGP_CAPA_AS4] = "4-octet AS Number",
	[67] = "Dynamic Capability",
	[68] = "Multisession",
	[BGP_CAPA_ADD_PATH] = "ADD-PATH",
	[BGP_CAPA_ENHANCED_RR] = "Enhanced Route Refresh",
	[71] = "Long-Lived Graceful Restart",
	[73] = "FQDN",
	[74] = "BFD",
	[75] = "Software Version",
	[128] = "Route Refresh (Cisco)",
};

const char *bgp_capa_name(uint8_t code)
{
	if (code < NELEM(capa_names) && capa_names[code])
		return capa_names[code];
	return "Unknown Capability";
}

/* ---------------------------------------------------------------- text forms */

int bgp_addr_fmt(char *buf, size_t len, const struct bgp_addr *a)
{
	char tmp[INET6_ADDRSTRLEN];
	int af = a->family == BGP_FAM_IPV6 ? AF_INET6 : AF_INET;

	if (!inet_ntop(af, a->addr, tmp, sizeof(tmp)))
		return snprintf(buf, len, "?");
	return snprintf(buf, len, "%s", tmp);
}

int bgp_id_fmt(char *buf, size_t len, uint32_t id)
{
	return snprintf(buf, len, "%u.%u.%u.%u", id >> 24, id >> 16 & 255, id >> 8 & 255, id & 255);
}

int bgp_addr_parse(const char *s, struct bgp_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1) {
		a->family = BGP_FAM_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->addr) == 1) {
		a->family = BGP_FAM_IPV6;
		return 0;
	}
	return -1;
}

int bgp_prefix_fmt(char *buf, size_t len, const struct bgp_prefix *p)
{
	char tmp[INET6_ADDRSTRLEN];
	int af = p->family == BGP_FAM_IPV6 ? AF_INET6 : AF_INET;

	if (!inet_ntop(af, p->addr, tmp, sizeof(tmp)))
		return snprintf(buf, len, "?/%u", p->len);
	return snprintf(buf, len, "%s/%u", tmp, p->len);
}

int bgp_prefix_parse(const char *s, struct bgp_prefix *p)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen;
	char *end;
	unsigned long plen;
	struct bgp_addr a;

	memset(p, 0, sizeof(*p));
	if (!slash)
		return -1;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if (bgp_addr_parse(tmp, &a) != 0)
		return -1;
	if (slash[1] < '0' || slash[1] > '9')
		return -1;
	errno = 0;
	plen = strtoul(slash + 1, &end, 10);
	if (errno || *end != '\0' || plen > bgp_family_maxlen(a.family))
		return -1;

	/* host bits must be zero: a config typo like 10.0.0.1/8 is an error */
	for (unsigned bit = (unsigned)plen; bit < bgp_family_maxlen(a.family); bit++)
		if (a.addr[bit / 8] & (0x80u >> (bit % 8)))
			return -1;

	p->family = a.family;
	p->len = (uint8_t)plen;
	memcpy(p->addr, a.addr, sizeof(p->addr));
	return 0;
}
