/*
 * config.h - the daemon configuration: a YAML file parsed (libyaml document
 * API) into one immutable struct cfg.
 *
 * Ownership and threading: cfg_load() builds a fresh struct cfg; nothing in it
 * changes afterwards, so any number of threads may read it without locks.  A
 * reload builds a second struct cfg, the daemon swaps its pointer and frees the
 * old one once no thread still holds a struct cfg_peer from it (the peer
 * pointers returned by cfg_match_peer() live exactly as long as their cfg).
 *
 * Errors: the first problem found stops the load and is written to err as
 *   FILE:LINE:COLUMN: KEY.PATH: message
 * e.g. "ricochet.yaml:7:12: peers[1].asn: expected an integer 1..4294967295,
 * got "abc"".  Unknown keys (with a did-you-mean hint), duplicate keys,
 * duplicate peers and duplicate ranges are errors: a daemon that guesses what
 * the operator meant is worse than one that refuses to start.
 *
 * Keys (all optional except router-id; defaults in brackets):
 *   router-id: IPv4                  (required, not 0.0.0.0)
 *   asn: N | "X.Y" asdot             [65515]
 *   cluster-id: IPv4                 [router-id]
 *   listen: [{address, port}]        [[{0.0.0.0,179}, {"::",179}]]; [] = no listener
 *   control-socket: PATH             [/run/ricochet.sock]
 *   io-threads: auto | per-peer | N  [auto]
 *   hugepages: settle | off          [settle] (rib/mem.h: collapse the heap of a
 *                                    quiet RIB into huge pages; applied on reload)
 *   timers: {hold, keepalive, connect-retry}   [90, hold/3, 30]
 *   max-routes: N                    [0 = unlimited]
 *   decision: {always-compare-med, deterministic-med}   [false, false]
 *   log-level: debug|info|warn|error [info]
 *   metrics: {listen: ADDR:PORT}     [off]   (IPv6 as [::1]:9179)
 *   mrt-dump: DIR                    [off]
 *   bmp: {station: ADDR:PORT}        [off]
 *   peers: [PEER...]                 explicit neighbours, keyed by address
 *   peer-ranges: [PEER...]           dynamic neighbours, keyed by prefix
 * PEER keys (a range takes every key a peer takes; prefix replaces address):
 *   address: IP | prefix: IP/LEN, description, asn [global asn], port [179],
 *   local-address, role: rr-client|ibgp|rs-client [rr-client],
 *   passive [false for peers, true for ranges; a range cannot be active],
 *   families: [ipv4-unicast, ipv6-unicast] [both],
 *   add-path: {send: 0..255 paths (0 = off), receive: bool} [0, false],
 *   route-refresh [true], extended-messages [true],
 *   graceful-restart: bool | {enabled, restart-time 1..4095} [false, 120],
 *   max-prefixes: N | {limit, warning-pct 1..100, restart: seconds} [off, 90, 0],
 *   md5-password: STRING (1..80) [off], ttl-security: hops 1..254 | false [off],
 *   send-hold-time: seconds | 0 = off [max(480, 2 * hold)] (RFC 9687),
 *   timers: {hold, keepalive, connect-retry} [the global timers, key by key].
 * Semantic checks: hold is 0 or 3..65535; keepalive is 1..hold/3 (0 iff hold
 * is 0); rr-client and ibgp peers must have the local asn, rs-client peers
 * another one; local-address has the neighbour's address family.
 */
#ifndef RICOCHET_CORE_CONFIG_H
#define RICOCHET_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/bgp.h"
#include "core/log.h"

#define CFG_DEFAULT_CTL_SOCKET   "/run/ricochet.sock"
#define CFG_DEFAULT_WARNING_PCT  90
#define CFG_DEFAULT_GR_TIME      120
#define CFG_SEND_HOLD_MIN        480     /* RFC 9687: at least 8 minutes */
#define CFG_MD5_MAX              80      /* TCP_MD5SIG_MAXKEYLEN */
#define CFG_PATH_MAX             108     /* sizeof(sockaddr_un.sun_path) */

enum cfg_role {
	CFG_ROLE_RR_CLIENT = 0,  /* iBGP route-reflector client (RFC 4456) */
	CFG_ROLE_IBGP,           /* iBGP non-client (full-mesh member, other RR) */
	CFG_ROLE_RS_CLIENT,      /* eBGP route-server client (RFC 7947) */
};

enum cfg_io_threads {
	CFG_IOT_AUTO = 0,        /* the daemon decides (io_threads_count == 0) */
	CFG_IOT_PER_PEER,        /* one thread per session */
	CFG_IOT_COUNT,           /* a fixed pool of io_threads_count threads */
};

/* Bits of struct cfg_peer.families. */
#define CFG_FAM_BIT(fam)   (1u << (fam))
#define CFG_FAM_ALL        (CFG_FAM_BIT(BGP_FAM_IPV4) | CFG_FAM_BIT(BGP_FAM_IPV6))

struct cfg_timers {
	uint32_t hold;           /* seconds, 0 or 3..65535 */
	uint32_t keepalive;      /* seconds, 0 iff hold is 0 */
	uint32_t connect_retry;  /* seconds, 1..65535 */
};

/* An ADDR:PORT endpoint (listen entries, metrics, BMP). */
struct cfg_endpoint {
	struct bgp_addr addr;
	uint16_t port;
};

/*
 * One neighbour, explicit (is_range false: addr is the address, plen the full
 * length) or a range (addr/plen is the prefix).  Every field is resolved:
 * inherited and default values are filled in, so the daemon never looks at
 * the global section to complete a peer.
 */
struct cfg_peer {
	bool is_range;
	struct bgp_addr addr;
	uint8_t plen;
	char *description;       /* NULL when not given */
	uint32_t asn;
	uint16_t port;           /* remote TCP port for active connects */
	bool has_local_addr;
	struct bgp_addr local_addr;
	uint8_t role;            /* enum cfg_role */
	bool passive;
	uint8_t families;        /* CFG_FAM_BIT() mask, never 0 */
	uint8_t addpath_send;    /* paths per prefix to send, 0 = off */
	bool addpath_receive;
	bool route_refresh;
	bool extended_messages;
	bool gr_enabled;
	uint16_t gr_restart_time;
	uint32_t max_prefixes;   /* 0 = no limit */
	uint8_t max_prefixes_warning_pct;
	uint32_t max_prefixes_restart; /* seconds before reconnecting, 0 = stay down */
	char *md5_password;      /* NULL when not given */
	uint8_t ttl_security;    /* GTSM hop count, 0 = off */
	uint32_t send_hold_time; /* seconds, 0 = off */
	struct cfg_timers timers;
	uint32_t line;           /* where the entry starts in the file (1-based) */
	uint32_t index;          /* position in peers[] or ranges[] */
};

struct cfg {
	char *path;              /* the file name as given (or the name for strings) */
	uint32_t router_id;      /* host byte order */
	uint32_t asn;
	uint32_t cluster_id;     /* host byte order */
	struct cfg_endpoint *listen;
	size_t n_listen;
	char *ctl_socket;
	uint8_t io_threads;      /* enum cfg_io_threads */
	uint32_t io_threads_count;
	bool hugepages_off;      /* hugepages: off */
	struct cfg_timers timers;
	uint64_t max_routes;     /* 0 = unlimited */
	bool always_compare_med;
	bool deterministic_med;
	enum log_level log_level;
	bool has_metrics;
	struct cfg_endpoint metrics;
	char *mrt_dir;           /* NULL = off */
	bool has_bmp;
	struct cfg_endpoint bmp;
	struct cfg_peer *peers;  /* in file order */
	size_t n_peers;
	struct cfg_peer *ranges; /* in file order */
	size_t n_ranges;
	/* Lookup indexes built by the loader (private to config.c). */
	const struct cfg_peer **peers_sorted;  /* by address */
	const struct cfg_peer **ranges_sorted; /* by prefix length, longest first */
};

/* The built-in configuration (README demo): router-id 127.0.0.1, asn 65515,
 * listen on 127.0.0.1 port 1179 (unprivileged: no CAP_NET_BIND_SERVICE
 * needed), any 127.0.0.0/8 speaker accepted as a passive rr-client with IPv4
 * and IPv6 unicast, control socket /tmp/ricochet.sock. */
extern const char cfg_default_yaml[];

/*
 * Load and validate a configuration.  Returns NULL and writes one line
 * (no trailing newline) to err on any error.  cfg_load_string() parses a
 * NUL-terminated YAML text; name is used in messages and as cfg->path.
 */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);
struct cfg *cfg_load_string(const char *yaml, const char *name, char *err, size_t errlen);
void cfg_free(struct cfg *cfg);

/*
 * The settings that apply to a neighbour at addr: an explicit peer with that
 * address if there is one, else the most specific (longest prefix) range
 * containing addr, else NULL (refuse the connection).  O(log n) in peers,
 * O(n) in ranges.  The result lives as long as cfg.
 */
const struct cfg_peer *cfg_match_peer(const struct cfg *cfg, const struct bgp_addr *addr);

/* ------------------------------------------------------------------ reload
 *
 * On reload the daemon loads the new file (keeping the old cfg if that fails),
 * then for each live session: np = cfg_match_peer(new, session address);
 * np == NULL -> Cease/Peer De-configured; cfg_peer_diff(op, np) &
 * CFG_PCHG_RESET -> Cease/Other Configuration Change and reconnect; otherwise
 * keep the session and just repoint it at np (apply CFG_PCHG_LIVE bits in
 * place).  cfg_diff() says what changed globally.
 */
enum cfg_peer_change {
	CFG_PCHG_SESSION = 1u << 0,  /* OPEN/transport: asn, port, local-address, passive,
	                                families, capabilities, md5, ttl, timers */
	CFG_PCHG_ROLE    = 1u << 1,  /* role: what is reflected to/from the peer */
	CFG_PCHG_LIMITS  = 1u << 2,  /* max-prefixes: apply live */
	CFG_PCHG_DESCR   = 1u << 3,  /* description: cosmetic */
	CFG_PCHG_RESET   = CFG_PCHG_SESSION | CFG_PCHG_ROLE,
	CFG_PCHG_LIVE    = CFG_PCHG_LIMITS | CFG_PCHG_DESCR,
};
unsigned cfg_peer_diff(const struct cfg_peer *old, const struct cfg_peer *new_);
/* True when the session must be torn down to apply new_ (cfg_peer_diff & RESET). */
bool cfg_peer_needs_reset(const struct cfg_peer *old, const struct cfg_peer *new_);

enum cfg_change {
	CFG_CHG_IDENTITY = 1u << 0,  /* router-id, asn or cluster-id: reset every session */
	CFG_CHG_LISTEN   = 1u << 1,  /* listen list: rebind */
	CFG_CHG_CTL      = 1u << 2,  /* control socket path: needs a restart */
	CFG_CHG_THREADS  = 1u << 3,  /* io-threads: needs a restart */
	CFG_CHG_TIMERS   = 1u << 4,  /* global timers (peers carry their resolved copy) */
	CFG_CHG_DECISION = 1u << 5,  /* decision options: re-run best path */
	CFG_CHG_LIMITS   = 1u << 6,  /* max-routes */
	CFG_CHG_LOG      = 1u << 7,  /* log-level */
	CFG_CHG_EXPORT   = 1u << 8,  /* metrics, mrt-dump, bmp */
	CFG_CHG_PEERS    = 1u << 9,  /* peers or ranges added, removed or changed */
	CFG_CHG_MEMORY   = 1u << 10, /* hugepages */
};
unsigned cfg_diff(const struct cfg *old, const struct cfg *new_);

/*
 * Write the effective configuration (every default and inherited value made
 * explicit) as YAML that cfg_load() reads back to an equal cfg.  With redact,
 * md5 passwords print as "<redacted>" (for "show config"; not loadable as is).
 * Returns 0, or -1 on a write error.
 */
int cfg_dump(const struct cfg *cfg, FILE *f, bool redact);

/* ------------------------------------------------------------------ names */
const char *cfg_role_name(unsigned role);          /* "rr-client", ... */
/* "ipv4-unicast ipv6-unicast" (space separated) into buf; returns buf. */
const char *cfg_families_fmt(char *buf, size_t len, uint8_t families);
/* "65000" or, with asdot, "1.10" for 4-octet numbers above 65535. */
const char *cfg_asn_fmt(char *buf, size_t len, uint32_t asn, bool asdot);
/* Parse an asn as the config does ("65000", "4200000000", "1.10"); 0 on success. */
int cfg_asn_parse(const char *s, uint32_t *asn);

#endif
