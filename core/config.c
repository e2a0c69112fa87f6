/*
 * config.c - YAML configuration loader, validation, peer matching, reload diff.
 *
 * Threads: cfg_load*() runs on whichever thread loads (main at start-up, the
 * control thread on reload); it touches no global state, so two loads may run
 * at once.  The result is immutable and read freely by every thread.
 *
 * Why built this way: libyaml's document API gives a tree with line/column
 * marks on every node, which is what operator-grade error messages need.  Each
 * mapping is walked against a const key table (name -> handler), so a new key
 * is one row, unknown keys get a did-you-mean hint from the same table, and
 * duplicate keys are caught in one place.  Values that depend on other keys
 * (a peer's asn defaults to the global asn, timers inherit key by key) are
 * resolved in a second pass once the whole file is read, because YAML does
 * not order keys.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/config.h"

const char cfg_default_yaml[] =
	"# Built-in configuration: a route reflector for the README demo.\n"
	"router-id: 127.0.0.1\n"
	"asn: 65515\n"
	"listen:\n"
	"  - { address: 127.0.0.1, port: 1179 }   # unprivileged port\n"
	"control-socket: /tmp/ricochet.sock\n"
	"peer-ranges:\n"
	"  - prefix: 127.0.0.0/8\n"
	"    role: rr-client\n"
	"    passive: true\n"
	"    families: [ipv4-unicast, ipv6-unicast]\n";

/* ------------------------------------------------------------ parse state */

/* Timers as written: which keys were given, and where. */
struct ptimers {
	struct cfg_timers t;
	bool has_hold, has_keepalive, has_connect_retry;
	yaml_mark_t mark;
	bool present;
};

/* A peer or range as written, before inheritance is resolved. */
struct ppeer {
	struct cfg_peer pe;
	struct ptimers timers;
	bool has_addr, has_asn, has_role, has_passive, has_send_hold;
	yaml_mark_t mark, mark_addr, mark_asn, mark_passive, mark_local;
};

struct pctx {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	struct cfg *cfg;
	/* global keys as written */
	bool has_router_id, has_asn, has_cluster_id, has_listen;
	yaml_mark_t mark_asn;
	struct ptimers timers;
	struct ppeer *peers, *ranges;
	size_t n_peers, n_ranges;
	bool in_range;       /* the peer being parsed is a range */
};

typedef int (*key_fn)(struct pctx *p, yaml_node_t *v, const char *path, void *obj);

struct key_def {
	const char *name;
	key_fn fn;
};

static void *xcalloc(size_t n, size_t sz)
{
	void *m = calloc(n ? n : 1, sz);
	if (!m)
		log_fatal("config: out of memory (%zu x %zu)", n, sz);
	return m;
}

static void *xrealloc(void *old, size_t n, size_t sz)
{
	void *m = reallocarray(old, n ? n : 1, sz);
	if (!m)
		log_fatal("config: out of memory (%zu x %zu)", n, sz);
	return m;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		log_fatal("config: out of memory (strdup)");
	return d;
}

static int perr_mark(struct pctx *p, yaml_mark_t m, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Report "file:line:col: path: message"; always returns -1. */
static int perr_mark(struct pctx *p, yaml_mark_t m, const char *path, const char *fmt, ...)
{
	int n = snprintf(p->err, p->errlen, "%s:%zu:%zu: %s%s", p->file, m.line + 1,
			 m.column + 1, path, *path ? ": " : "");
	if (n >= 0 && (size_t)n < p->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define perr(p, node, path, ...) perr_mark((p), (node)->start_mark, (path), __VA_ARGS__)

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	default: return "a scalar";
	}
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = sval(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* Quote a scalar for a message, shortened and with control characters hidden. */
static const char *quote(const yaml_node_t *n, char *buf, size_t len)
{
	if (n->type != YAML_SCALAR_NODE)
		return node_kind(n);
	if (is_null(n))
		return "nothing";
	size_t o = 0;
	const char *s = sval(n);
	buf[o++] = '"';
	for (; *s && o + 5 < len; s++)
		buf[o++] = (unsigned char)*s < 0x20 ? '?' : *s;
	if (*s && o + 4 < len) {
		buf[o++] = '.';
		buf[o++] = '.';
		buf[o++] = '.';
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

#define Q(n) quote((n), (char[48]){0}, 48)

static void child_path(char *out, size_t len, const char *path, const char *key)
{
	/* keys paths are short; a truncated one is still a useful message */
	if (snprintf(out, len, "%s%s%s", path, *path ? "." : "", key) >= (int)len)
		out[len - 1] = 0;
}

/* ------------------------------------------------------------ did you mean */

static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	unsigned row[41];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The closest of names[] to s if it is close enough to be a typo, else NULL. */
static const char *suggest(const char *s, const char *const *names, size_t n)
{
	const char *best = NULL;
	unsigned bd = 99;
	for (size_t i = 0; i < n; i++) {
		unsigned d = edit_distance(s, names[i]);
		size_t l = strlen(names[i]);
		unsigned lim = l <= 4 ? 1 : l <= 8 ? 2 : 3;
		if (d <= lim && d < bd) {
			bd = d;
			best = names[i];
		}
	}
	return best;
}

/* "expected one of a, b, c, got "x"" with a hint. */
static int bad_choice(struct pctx *p, yaml_node_t *v, const char *path,
		      const char *const *names, size_t n)
{
	char list[256] = "";
	size_t o = 0;
	for (size_t i = 0; i < n && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", names[i]);
	const char *hint = v->type == YAML_SCALAR_NODE ? suggest(sval(v), names, n) : NULL;
	if (hint)
		return perr(p, v, path, "expected one of %s, got %s (did you mean \"%s\"?)", list,
			    Q(v), hint);
	return perr(p, v, path, "expected one of %s, got %s", list, Q(v));
}

static int choice(struct pctx *p, yaml_node_t *v, const char *path,
		  const char *const *names, size_t n, unsigned *out)
{
	if (v->type == YAML_SCALAR_NODE) {
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(sval(v), names[i])) {
				*out = (unsigned)i;
				return 0;
			}
		}
	}
	return bad_choice(p, v, path, names, n);
}

/* ------------------------------------------------------------ mappings */

static yaml_node_t *node(struct pctx *p, int idx)
{
	return yaml_document_get_node(p->doc, idx);
}

static bool map_has(struct pctx *p, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
	     pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(p, pr->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp(sval(k), key))
			return true;
	}
	return false;
}

/*
 * Walk map against keys[]: every key must be a scalar, known, and given once.
 * hint_for(key) may return a special hint for a known-wrong key.
 */
static int walk_map(struct pctx *p, yaml_node_t *map, const char *path,
		    const struct key_def *keys, size_t nkeys, void *obj,
		    const char *(*hint_for)(const char *key))
{
	if (map->type != YAML_MAPPING_NODE)
		return perr(p, map, path, "expected a mapping, got %s", node_kind(map));
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
	     pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
		if (k->type != YAML_SCALAR_NODE)
			return perr(p, k, path, "keys must be plain names, got %s", node_kind(k));
		const char *name = sval(k);
		/* duplicate keys: libyaml keeps both, so look back */
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++) {
			yaml_node_t *k2 = node(p, q->key);
			if (k2->type == YAML_SCALAR_NODE && !strcmp(sval(k2), name))
				return perr(p, k, path, "duplicate key \"%s\" (first at line %zu)",
					    name, k2->start_mark.line + 1);
		}
		size_t i;
		for (i = 0; i < nkeys; i++)
			if (!strcmp(keys[i].name, name))
				break;
		if (i == nkeys) {
			const char *special = hint_for ? hint_for(name) : NULL;
			if (special)
				return perr(p, k, path, "unknown key \"%s\" (%s)", name, special);
			const char *names[48];
			size_t n = 0;
			for (size_t j = 0; j < nkeys && n < 48; j++)
				names[n++] = keys[j].name;
			const char *hint = suggest(name, names, n);
			if (hint)
				return perr(p, k, path, "unknown key \"%s\" (did you mean \"%s\"?)",
					    name, hint);
			return perr(p, k, path, "unknown key \"%s\"", name);
		}
		char cp[256];
		child_path(cp, sizeof(cp), path, name);
		if (keys[i].fn(p, v, cp, obj))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ scalars */

static int get_uint(struct pctx *p, yaml_node_t *v, const char *path, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	if (v->type == YAML_SCALAR_NODE && !is_null(v)) {
		const char *s = sval(v);
		uint64_t x = 0;
		bool ok = isdigit((unsigned char)*s);
		for (; ok && *s; s++) {
			if (!isdigit((unsigned char)*s) || x > (UINT64_MAX - 9) / 10) {
				ok = false;
				break;
			}
			x = x * 10 + (uint64_t)(*s - '0');
		}
		if (ok && x >= min && x <= max) {
			*out = x;
			return 0;
		}
	}
	return perr(p, v, path, "expected an integer %" PRIu64 "..%" PRIu64 ", got %s", min, max,
		    Q(v));
}

static int get_u32(struct pctx *p, yaml_node_t *v, const char *path, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	uint64_t x;
	if (get_uint(p, v, path, min, max, &x))
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static int get_bool(struct pctx *p, yaml_node_t *v, const char *path, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "off", "Off" };
	if (v->type == YAML_SCALAR_NODE) {
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (!strcmp(sval(v), yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(sval(v), no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	return perr(p, v, path, "expected true or false, got %s", Q(v));
}

static int get_str(struct pctx *p, yaml_node_t *v, const char *path, size_t maxlen,
		   const char **out)
{
	*out = NULL;     /* an error's path too: release builds (-O3) warn otherwise */
	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return perr(p, v, path, "expected a string, got %s", Q(v));
	if (v->data.scalar.length > maxlen)
		return perr(p, v, path, "too long (%zu characters, at most %zu)",
			    v->data.scalar.length, maxlen);
	if (strlen(sval(v)) != v->data.scalar.length)
		return perr(p, v, path, "contains a NUL character");
	*out = sval(v);
	return 0;
}

static int parse_addr(const char *s, struct bgp_addr *a)
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

static void fmt_addr(const struct bgp_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == BGP_FAM_IPV6 ? AF_INET6 : AF_INET, a->addr, buf,
		       (socklen_t)len))
		snprintf(buf, len, "?");
}

static int get_addr(struct pctx *p, yaml_node_t *v, const char *path, struct bgp_addr *a)
{
	if (v->type == YAML_SCALAR_NODE && !parse_addr(sval(v), a))
		return 0;
	if (v->type == YAML_SCALAR_NODE && strchr(sval(v), '/'))
		return perr(p, v, path, "expected an IP address, got the prefix %s "
			    "(ranges go under peer-ranges)", Q(v));
	return perr(p, v, path, "expected an IP address, got %s", Q(v));
}

static int get_ipv4_id(struct pctx *p, yaml_node_t *v, const char *path, uint32_t *out)
{
	struct in_addr in;
	if (v->type != YAML_SCALAR_NODE || inet_pton(AF_INET, sval(v), &in) != 1)
		return perr(p, v, path, "expected an IPv4 address (dotted quad), got %s", Q(v));
	if (in.s_addr == 0)
		return perr(p, v, path, "0.0.0.0 is not a valid identifier");
	*out = ntohl(in.s_addr);
	return 0;
}

static bool prefix_contains(const struct bgp_addr *pfx, unsigned plen, const struct bgp_addr *a)
{
	if (pfx->family != a->family)
		return false;
	unsigned full = plen / 8, rest = plen % 8;
	if (memcmp(pfx->addr, a->addr, full))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((pfx->addr[full] & mask) != (a->addr[full] & mask))
			return false;
	}
	return true;
}

static int get_prefix(struct pctx *p, yaml_node_t *v, const char *path, struct bgp_addr *a,
		      uint8_t *plen)
{
	char buf[64];
	const char *slash;
	if (v->type != YAML_SCALAR_NODE || v->data.scalar.length >= sizeof(buf) ||
	    !(slash = strchr(sval(v), '/')))
		goto bad;
	memcpy(buf, sval(v), (size_t)(slash - sval(v)));
	buf[slash - sval(v)] = 0;
	if (parse_addr(buf, a))
		goto bad;
	const char *l = slash + 1;
	unsigned len = 0;
	if (!*l || strlen(l) > 3)
		goto bad;
	for (; *l; l++) {
		if (!isdigit((unsigned char)*l))
			goto bad;
		len = len * 10 + (unsigned)(*l - '0');
	}
	if (len > bgp_family_maxlen(a->family))
		return perr(p, v, path, "prefix length %u is longer than %u", len,
			    bgp_family_maxlen(a->family));
	struct bgp_addr masked = { .family = a->family };
	memcpy(masked.addr, a->addr, len / 8);
	if (len % 8)
		masked.addr[len / 8] = (uint8_t)(a->addr[len / 8] & (0xff << (8 - len % 8)));
	if (memcmp(masked.addr, a->addr, sizeof(masked.addr))) {
		char m[INET6_ADDRSTRLEN];
		fmt_addr(&masked, m, sizeof(m));
		return perr(p, v, path, "host bits set in %s (did you mean %s/%u?)", Q(v), m, len);
	}
	*plen = (uint8_t)len;
	return 0;
bad:
	return perr(p, v, path, "expected a prefix ADDRESS/LENGTH, got %s", Q(v));
}

/* "ADDR:PORT" or "[V6ADDR]:PORT". */
static int get_endpoint(struct pctx *p, yaml_node_t *v, const char *path,
			struct cfg_endpoint *ep)
{
	char buf[80];
	const char *s, *port;
	if (v->type != YAML_SCALAR_NODE || v->data.scalar.length >= sizeof(buf))
		goto bad;
	s = sval(v);
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			goto bad;
		memcpy(buf, s + 1, (size_t)(close - s - 1));
		buf[close - s - 1] = 0;
		port = close + 2;
		if (parse_addr(buf, &ep->addr) || ep->addr.family != BGP_FAM_IPV6)
			goto bad;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		if (strchr(s, ':') != colon)
			return perr(p, v, path, "write an IPv6 endpoint as [ADDRESS]:PORT, got %s",
				    Q(v));
		memcpy(buf, s, (size_t)(colon - s));
		buf[colon - s] = 0;
		port = colon + 1;
		if (parse_addr(buf, &ep->addr))
			goto bad;
	}
	unsigned x = 0;
	if (!*port || strlen(port) > 5)
		goto bad;
	for (; *port; port++) {
		if (!isdigit((unsigned char)*port))
			goto bad;
		x = x * 10 + (unsigned)(*port - '0');
	}
	if (x < 1 || x > 65535)
		goto bad;
	ep->port = (uint16_t)x;
	return 0;
bad:
	return perr(p, v, path, "expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), got %s", Q(v));
}

int cfg_asn_parse(const char *s, uint32_t *asn)
{
	uint64_t hi = 0, lo = 0;
	const char *dot = strchr(s, '.');
	const char *q = s;
	if (!isdigit((unsigned char)*q))
		return -1;
	for (; *q && q != dot; q++) {
		if (!isdigit((unsigned char)*q) || hi > UINT32_MAX)
			return -1;
		hi = hi * 10 + (uint64_t)(*q - '0');
	}
	if (!dot) {
		if (hi > UINT32_MAX)
			return -1;
		*asn = (uint32_t)hi;
		return 0;
	}
	q = dot + 1;
	if (!isdigit((unsigned char)*q))
		return -1;
	for (; *q; q++) {
		if (!isdigit((unsigned char)*q) || lo > 65535)
			return -1;
		lo = lo * 10 + (uint64_t)(*q - '0');
	}
	if (hi > 65535 || lo > 65535)
		return -1;
	*asn = (uint32_t)(hi << 16 | lo);
	return 0;
}

static int get_asn(struct pctx *p, yaml_node_t *v, const char *path, uint32_t *out)
{
	uint32_t asn;
	if (v->type != YAML_SCALAR_NODE || is_null(v) || cfg_asn_parse(sval(v), &asn))
		return perr(p, v, path, "expected an integer 1..4294967295, got %s", Q(v));
	if (asn == 0)
		return perr(p, v, path, "asn 0 is reserved (RFC 7607)");
	if (asn == BGP_AS_TRANS)
		return perr(p, v, path, "asn 23456 is AS_TRANS (RFC 6793), not a real asn");
	*out = asn;
	return 0;
}

/* ------------------------------------------------------------ timers */

static int k_hold(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ptimers *t = obj;
	if (get_u32(p, v, path, 0, 65535, &t->t.hold))
		return -1;
	if (t->t.hold == 1 || t->t.hold == 2)
		return perr(p, v, path, "hold time must be 0 or at least 3 seconds (RFC 4271), "
			    "got %u", t->t.hold);
	t->has_hold = true;
	return 0;
}

static int k_keepalive(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ptimers *t = obj;
	t->has_keepalive = true;
	return get_u32(p, v, path, 0, 21845, &t->t.keepalive);
}

static int k_connect_retry(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ptimers *t = obj;
	t->has_connect_retry = true;
	return get_u32(p, v, path, 1, 65535, &t->t.connect_retry);
}

static const struct key_def timer_keys[] = {
	{ "hold", k_hold },
	{ "keepalive", k_keepalive },
	{ "connect-retry", k_connect_retry },
};

static int parse_timers(struct pctx *p, yaml_node_t *v, const char *path, struct ptimers *t)
{
	t->present = true;
	t->mark = v->start_mark;
	return walk_map(p, v, path, timer_keys, sizeof(timer_keys) / sizeof(timer_keys[0]), t,
			NULL);
}

/* Fill in missing timers: peer keys over global keys; keepalive defaults to
 * a third of the effective hold unless given at the nearest level. */
static int resolve_timers(struct pctx *p, struct ptimers *t, const struct ptimers *parent,
			  const char *path)
{
	struct cfg_timers r;
	r.hold = t->has_hold ? t->t.hold : parent ? parent->t.hold : BGP_DEFAULT_HOLD;
	if (t->has_keepalive)
		r.keepalive = t->t.keepalive;
	else if (!t->has_hold && parent && parent->has_keepalive)
		r.keepalive = parent->t.keepalive;
	else
		r.keepalive = r.hold / 3;
	r.connect_retry = t->has_connect_retry ? t->t.connect_retry :
			  parent ? parent->t.connect_retry : BGP_DEFAULT_CONNECT_RETRY;
	char cp[256];
	child_path(cp, sizeof(cp), path, "keepalive");
	yaml_mark_t m = t->mark;
	if (r.hold == 0 && r.keepalive != 0)
		return perr_mark(p, m, cp, "must be 0 when hold is 0, got %u", r.keepalive);
	if (r.hold != 0 && r.keepalive == 0)
		return perr_mark(p, m, cp, "must be at least 1 when hold is %u", r.hold);
	if (r.keepalive * 3 > r.hold)
		return perr_mark(p, m, cp, "%u is more than a third of hold %u", r.keepalive,
				 r.hold);
	t->t = r;
	return 0;
}

/* ------------------------------------------------------------ peers */

static int k_p_address(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	if (get_addr(p, v, path, &pp->pe.addr))
		return -1;
	pp->pe.plen = (uint8_t)bgp_family_maxlen(pp->pe.addr.family);
	pp->has_addr = true;
	pp->mark_addr = v->start_mark;
	return 0;
}

static int k_p_prefix(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	if (get_prefix(p, v, path, &pp->pe.addr, &pp->pe.plen))
		return -1;
	pp->has_addr = true;
	pp->mark_addr = v->start_mark;
	return 0;
}

static int k_p_description(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	const char *s;
	if (get_str(p, v, path, 255, &s))
		return -1;
	pp->pe.description = xstrdup(s);
	return 0;
}

static int k_p_asn(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	pp->has_asn = true;
	pp->mark_asn = v->start_mark;
	return get_asn(p, v, path, &pp->pe.asn);
}

static int k_p_port(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	uint32_t x;
	if (get_u32(p, v, path, 1, 65535, &x))
		return -1;
	pp->pe.port = (uint16_t)x;
	return 0;
}

static int k_p_local(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	pp->pe.has_local_addr = true;
	pp->mark_local = v->start_mark;
	return get_addr(p, v, path, &pp->pe.local_addr);
}

static const char *const role_names[] = { "rr-client", "ibgp", "rs-client" };

static int k_p_role(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	unsigned r = 0;
	if (choice(p, v, path, role_names, 3, &r))
		return -1;
	pp->pe.role = (uint8_t)r;
	pp->has_role = true;
	return 0;
}

static int k_p_passive(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	pp->has_passive = true;
	pp->mark_passive = v->start_mark;
	return get_bool(p, v, path, &pp->pe.passive);
}

static const char *const family_names[] = { "ipv4-unicast", "ipv6-unicast" };

static int one_family(struct pctx *p, yaml_node_t *v, const char *path, uint8_t *mask)
{
	unsigned f = 0;
	if (choice(p, v, path, family_names, 2, &f))
		return -1;
	if (*mask & CFG_FAM_BIT(f))
		return perr(p, v, path, "family %s listed twice", family_names[f]);
	*mask |= (uint8_t)CFG_FAM_BIT(f);
	return 0;
}

static int k_p_families(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	uint8_t mask = 0;
	if (v->type == YAML_SCALAR_NODE) {
		if (one_family(p, v, path, &mask))
			return -1;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		size_t i = 0;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++, i++) {
			char cp[256];
			snprintf(cp, sizeof(cp), "%s[%zu]", path, i);
			if (one_family(p, node(p, *it), cp, &mask))
				return -1;
		}
		if (!mask)
			return perr(p, v, path, "at least one family is needed");
	} else {
		return perr(p, v, path, "expected a list of families, got %s", node_kind(v));
	}
	pp->pe.families = mask;
	return 0;
}

static int k_ap_send(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	uint32_t x;
	if (get_u32(p, v, path, 0, 255, &x))
		return -1;
	pp->pe.addpath_send = (uint8_t)x;
	return 0;
}

static int k_ap_receive(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &((struct ppeer *)obj)->pe.addpath_receive);
}

static const struct key_def addpath_keys[] = {
	{ "send", k_ap_send },
	{ "receive", k_ap_receive },
};

static int k_p_addpath(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return walk_map(p, v, path, addpath_keys, 2, obj, NULL);
}

static int k_p_rr(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &((struct ppeer *)obj)->pe.route_refresh);
}

static int k_p_extmsg(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &((struct ppeer *)obj)->pe.extended_messages);
}

static int k_gr_enabled(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &((struct ppeer *)obj)->pe.gr_enabled);
}

static int k_gr_time(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	uint32_t x;
	if (get_u32(p, v, path, 1, 4095, &x))
		return -1;
	((struct ppeer *)obj)->pe.gr_restart_time = (uint16_t)x;
	return 0;
}

static const struct key_def gr_keys[] = {
	{ "enabled", k_gr_enabled },
	{ "restart-time", k_gr_time },
};

static int k_p_gr(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	if (v->type == YAML_SCALAR_NODE)
		return get_bool(p, v, path, &pp->pe.gr_enabled);
	pp->pe.gr_enabled = true;     /* a mapping means "on, with these settings" */
	return walk_map(p, v, path, gr_keys, 2, obj, NULL);
}

static int k_mp_limit(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_u32(p, v, path, 1, UINT32_MAX, &((struct ppeer *)obj)->pe.max_prefixes);
}

static int k_mp_warn(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	uint32_t x;
	if (get_u32(p, v, path, 1, 100, &x))
		return -1;
	((struct ppeer *)obj)->pe.max_prefixes_warning_pct = (uint8_t)x;
	return 0;
}

static int k_mp_restart(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_u32(p, v, path, 0, 86400, &((struct ppeer *)obj)->pe.max_prefixes_restart);
}

static const struct key_def maxpfx_keys[] = {
	{ "limit", k_mp_limit },
	{ "warning-pct", k_mp_warn },
	{ "restart", k_mp_restart },
};

static int k_p_maxpfx(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	if (v->type == YAML_SCALAR_NODE)
		return k_mp_limit(p, v, path, obj);
	if (walk_map(p, v, path, maxpfx_keys, 3, obj, NULL))
		return -1;
	if (!map_has(p, v, "limit"))
		return perr(p, v, path, "missing key \"limit\"");
	return 0;
}

static int k_p_md5(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	const char *s;
	if (get_str(p, v, path, CFG_MD5_MAX, &s))
		return -1;
	((struct ppeer *)obj)->pe.md5_password = xstrdup(s);
	return 0;
}

static int k_p_ttl(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	bool b;
	if (v->type == YAML_SCALAR_NODE && !isdigit((unsigned char)*sval(v))) {
		if (get_bool(p, v, path, &b))
			return perr(p, v, path, "expected a hop count 1..254 or false, got %s",
				    Q(v));
		pp->pe.ttl_security = b ? 1 : 0;
		return 0;
	}
	uint32_t x;
	if (get_u32(p, v, path, 0, 254, &x))
		return -1;
	pp->pe.ttl_security = (uint8_t)x;
	return 0;
}

static int k_p_sendhold(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct ppeer *pp = obj;
	pp->has_send_hold = true;
	return get_u32(p, v, path, 0, 86400, &pp->pe.send_hold_time);
}

static int k_p_timers(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return parse_timers(p, v, path, &((struct ppeer *)obj)->timers);
}

#define PEER_COMMON_KEYS                                   \
	{ "description", k_p_description },                \
	{ "asn", k_p_asn },                                \
	{ "port", k_p_port },                              \
	{ "local-address", k_p_local },                    \
	{ "role", k_p_role },                              \
	{ "passive", k_p_passive },                        \
	{ "families", k_p_families },                      \
	{ "add-path", k_p_addpath },                       \
	{ "route-refresh", k_p_rr },                       \
	{ "extended-messages", k_p_extmsg },               \
	{ "graceful-restart", k_p_gr },                    \
	{ "max-prefixes", k_p_maxpfx },                    \
	{ "md5-password", k_p_md5 },                       \
	{ "ttl-security", k_p_ttl },                       \
	{ "send-hold-time", k_p_sendhold },                \
	{ "timers", k_p_timers }

static const struct key_def peer_keys[] = { { "address", k_p_address }, PEER_COMMON_KEYS };
static const struct key_def range_keys[] = { { "prefix", k_p_prefix }, PEER_COMMON_KEYS };

static const char *peer_hint(const char *key)
{
	return !strcmp(key, "prefix") ? "a peer has an \"address\"; put ranges under peer-ranges"
				      : NULL;
}

static const char *range_hint(const char *key)
{
	return !strcmp(key, "address") ? "a range has a \"prefix\"; put single peers under peers"
				       : NULL;
}

static int parse_peer_list(struct pctx *p, yaml_node_t *v, const char *path, bool range)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return perr(p, v, path, "expected a list, got %s", node_kind(v));
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	struct ppeer **arr = range ? &p->ranges : &p->peers;
	size_t *cnt = range ? &p->n_ranges : &p->n_peers;
	*arr = xcalloc(n, sizeof(**arr));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(p, v->data.sequence.items.start[i]);
		struct ppeer *pp = &(*arr)[i];
		char cp[256];
		snprintf(cp, sizeof(cp), "%s[%zu]", path, i);
		*cnt = i + 1;   /* so cfg_free-side cleanup sees the strings */
		pp->mark = e->start_mark;
		pp->pe.is_range = range;
		pp->pe.index = (uint32_t)i;
		pp->pe.line = (uint32_t)e->start_mark.line + 1;
		pp->pe.port = BGP_PORT;
		pp->pe.role = CFG_ROLE_RR_CLIENT;
		pp->pe.passive = range;
		pp->pe.families = CFG_FAM_ALL;
		pp->pe.route_refresh = true;
		pp->pe.extended_messages = true;
		pp->pe.gr_restart_time = CFG_DEFAULT_GR_TIME;
		pp->pe.max_prefixes_warning_pct = CFG_DEFAULT_WARNING_PCT;
		if (range) {
			if (walk_map(p, e, cp, range_keys, sizeof(range_keys) / sizeof(range_keys[0]),
				     pp, range_hint))
				return -1;
		} else if (walk_map(p, e, cp, peer_keys, sizeof(peer_keys) / sizeof(peer_keys[0]),
				    pp, peer_hint)) {
			return -1;
		}
		if (!pp->has_addr)
			return perr(p, e, cp, "missing key \"%s\"", range ? "prefix" : "address");
	}
	return 0;
}

/* ------------------------------------------------------------ global keys */

static int k_router_id(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	p->has_router_id = true;
	return get_ipv4_id(p, v, path, &p->cfg->router_id);
}

static int k_asn(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	p->has_asn = true;
	p->mark_asn = v->start_mark;
	return get_asn(p, v, path, &p->cfg->asn);
}

static int k_cluster_id(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	p->has_cluster_id = true;
	return get_ipv4_id(p, v, path, &p->cfg->cluster_id);
}

static int k_l_address(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_addr(p, v, path, &((struct cfg_endpoint *)obj)->addr);
}

static int k_l_port(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	uint32_t x;
	if (get_u32(p, v, path, 1, 65535, &x))
		return -1;
	((struct cfg_endpoint *)obj)->port = (uint16_t)x;
	return 0;
}

static const struct key_def listen_keys[] = {
	{ "address", k_l_address },
	{ "port", k_l_port },
};

static int k_listen(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct cfg *c = p->cfg;
	if (v->type != YAML_SEQUENCE_NODE)
		return perr(p, v, path, "expected a list of {address, port}, got %s",
			    node_kind(v));
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	p->has_listen = true;
	c->listen = xcalloc(n, sizeof(*c->listen));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(p, v->data.sequence.items.start[i]);
		struct cfg_endpoint *ep = &c->listen[i];
		char cp[256];
		snprintf(cp, sizeof(cp), "%s[%zu]", path, i);
		ep->port = BGP_PORT;
		if (walk_map(p, e, cp, listen_keys, 2, ep, NULL))
			return -1;
		if (!map_has(p, e, "address"))
			return perr(p, e, cp, "missing key \"address\"");
		for (size_t j = 0; j < i; j++) {
			if (!memcmp(&c->listen[j], ep, sizeof(*ep)))
				return perr(p, e, cp, "listed twice (same as %s[%zu])", path, j);
		}
		c->n_listen = i + 1;
	}
	return 0;
}

static int k_ctl_socket(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	const char *s;
	if (get_str(p, v, path, CFG_PATH_MAX - 1, &s))
		return -1;
	p->cfg->ctl_socket = xstrdup(s);
	return 0;
}

static int k_io_threads(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	struct cfg *c = p->cfg;
	if (v->type == YAML_SCALAR_NODE && !strcmp(sval(v), "auto")) {
		c->io_threads = CFG_IOT_AUTO;
		return 0;
	}
	if (v->type == YAML_SCALAR_NODE && !strcmp(sval(v), "per-peer")) {
		c->io_threads = CFG_IOT_PER_PEER;
		return 0;
	}
	if (v->type == YAML_SCALAR_NODE && isdigit((unsigned char)*sval(v))) {
		c->io_threads = CFG_IOT_COUNT;
		return get_u32(p, v, path, 1, 1024, &c->io_threads_count);
	}
	return perr(p, v, path, "expected auto, per-peer or a thread count 1..1024, got %s",
		    Q(v));
}

static int k_hugepages(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	static const char *const names[] = { "settle", "off" };
	unsigned i = 0;
	(void)obj;
	if (choice(p, v, path, names, 2, &i))
		return -1;
	p->cfg->hugepages_off = i == 1;
	return 0;
}

static int k_timers(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return parse_timers(p, v, path, &p->timers);
}

static int k_max_routes(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_uint(p, v, path, 0, UINT64_MAX / 2, &p->cfg->max_routes);
}

static int k_d_acm(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &p->cfg->always_compare_med);
}

static int k_d_dmed(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return get_bool(p, v, path, &p->cfg->deterministic_med);
}

static const struct key_def decision_keys[] = {
	{ "always-compare-med", k_d_acm },
	{ "deterministic-med", k_d_dmed },
};

static int k_decision(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return walk_map(p, v, path, decision_keys, 2, obj, NULL);
}

static int k_log_level(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	unsigned l = 0;
	if (v->type == YAML_SCALAR_NODE && !strcmp(sval(v), "warning")) {
		p->cfg->log_level = LOG_LVL_WARN;
		return 0;
	}
	if (choice(p, v, path, names, 4, &l))
		return -1;
	p->cfg->log_level = (enum log_level)l;
	return 0;
}

static int k_m_listen(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	p->cfg->has_metrics = true;
	return get_endpoint(p, v, path, &p->cfg->metrics);
}

static const struct key_def metrics_keys[] = { { "listen", k_m_listen } };

static int k_metrics(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	if (walk_map(p, v, path, metrics_keys, 1, obj, NULL))
		return -1;
	if (!p->cfg->has_metrics)
		return perr(p, v, path, "missing key \"listen\"");
	return 0;
}

static int k_b_station(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	p->cfg->has_bmp = true;
	return get_endpoint(p, v, path, &p->cfg->bmp);
}

static const struct key_def bmp_keys[] = { { "station", k_b_station } };

static int k_bmp(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	if (walk_map(p, v, path, bmp_keys, 1, obj, NULL))
		return -1;
	if (!p->cfg->has_bmp)
		return perr(p, v, path, "missing key \"station\"");
	return 0;
}

static int k_mrt(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	const char *s;
	if (get_str(p, v, path, 4095, &s))
		return -1;
	p->cfg->mrt_dir = xstrdup(s);
	return 0;
}

static int k_peers(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return parse_peer_list(p, v, path, false);
}

static int k_ranges(struct pctx *p, yaml_node_t *v, const char *path, void *obj)
{
	return parse_peer_list(p, v, path, true);
}

static const struct key_def global_keys[] = {
	{ "router-id", k_router_id },
	{ "asn", k_asn },
	{ "cluster-id", k_cluster_id },
	{ "listen", k_listen },
	{ "control-socket", k_ctl_socket },
	{ "io-threads", k_io_threads },
	{ "hugepages", k_hugepages },
	{ "timers", k_timers },
	{ "max-routes", k_max_routes },
	{ "decision", k_decision },
	{ "log-level", k_log_level },
	{ "metrics", k_metrics },
	{ "mrt-dump", k_mrt },
	{ "bmp", k_bmp },
	{ "peers", k_peers },
	{ "peer-ranges", k_ranges },
};

static const char *global_hint(const char *key)
{
	if (!strcmp(key, "neighbors") || !strcmp(key, "neighbours") || !strcmp(key, "peer"))
		return "explicit neighbours go under \"peers\"";
	if (!strcmp(key, "ranges") || !strcmp(key, "dynamic-peers"))
		return "dynamic neighbours go under \"peer-ranges\"";
	return NULL;
}

/* ------------------------------------------------------------ resolve */

static int addr_cmp(const struct bgp_addr *a, const struct bgp_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, a->family == BGP_FAM_IPV6 ? 16 : 4);
}

static int peer_ptr_cmp(const void *x, const void *y)
{
	const struct cfg_peer *a = *(const struct cfg_peer *const *)x;
	const struct cfg_peer *b = *(const struct cfg_peer *const *)y;
	int c = addr_cmp(&a->addr, &b->addr);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int range_ptr_cmp(const void *x, const void *y)
{
	const struct cfg_peer *a = *(const struct cfg_peer *const *)x;
	const struct cfg_peer *b = *(const struct cfg_peer *const *)y;
	if (a->plen != b->plen)
		return a->plen > b->plen ? -1 : 1;
	int c = addr_cmp(&a->addr, &b->addr);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int resolve_peer(struct pctx *p, struct ppeer *pp, const char *list)
{
	struct cfg *c = p->cfg;
	struct cfg_peer *pe = &pp->pe;
	char path[256], cp[256];
	snprintf(path, sizeof(path), "%s[%u]", list, pe->index);

	if (!pp->has_asn)
		pe->asn = c->asn;
	child_path(cp, sizeof(cp), path, "asn");
	yaml_mark_t am = pp->has_asn ? pp->mark_asn : pp->mark;
	if (pe->role != CFG_ROLE_RS_CLIENT && pe->asn != c->asn)
		return perr_mark(p, am, cp, "a %s peer is internal and must have the local asn "
				 "%u, got %u (use role: rs-client for an external peer)",
				 role_names[pe->role], c->asn, pe->asn);
	if (pe->role == CFG_ROLE_RS_CLIENT && pe->asn == c->asn)
		return perr_mark(p, am, cp, "an rs-client peer is external and needs an asn "
				 "other than the local asn %u", c->asn);
	if (pe->is_range && pp->has_passive && !pe->passive) {
		child_path(cp, sizeof(cp), path, "passive");
		return perr_mark(p, pp->mark_passive, cp, "a range cannot connect out; it must "
				 "be passive");
	}
	if (pe->has_local_addr && pe->local_addr.family != pe->addr.family) {
		child_path(cp, sizeof(cp), path, "local-address");
		return perr_mark(p, pp->mark_local, cp, "address family differs from the %s's",
				 pe->is_range ? "prefix" : "peer address");
	}
	child_path(cp, sizeof(cp), path, "timers");
	if (!pp->timers.present)
		pp->timers.mark = pp->mark;
	if (resolve_timers(p, &pp->timers, &p->timers, cp))
		return -1;
	pe->timers = pp->timers.t;
	if (!pp->has_send_hold) {
		uint32_t h = 2 * pe->timers.hold;
		pe->send_hold_time = h > CFG_SEND_HOLD_MIN ? h : CFG_SEND_HOLD_MIN;
	}
	return 0;
}

static int resolve(struct pctx *p, yaml_node_t *root)
{
	struct cfg *c = p->cfg;

	if (!p->has_router_id)
		return perr(p, root, "router-id", "missing (every BGP speaker needs one, "
			    "e.g. router-id: 192.0.2.1)");
	if (!p->has_cluster_id)
		c->cluster_id = c->router_id;
	if (!p->has_listen) {
		c->listen = xcalloc(2, sizeof(*c->listen));
		c->n_listen = 2;
		c->listen[0].addr.family = BGP_FAM_IPV4;
		c->listen[0].port = BGP_PORT;
		c->listen[1].addr.family = BGP_FAM_IPV6;
		c->listen[1].port = BGP_PORT;
	}
	if (!c->ctl_socket)
		c->ctl_socket = xstrdup(CFG_DEFAULT_CTL_SOCKET);
	if (!p->timers.present)
		p->timers.mark = root->start_mark;
	if (resolve_timers(p, &p->timers, NULL, "timers"))
		return -1;
	c->timers = p->timers.t;
	/* children inherit keepalive only if it was given at the global level */

	c->n_peers = p->n_peers;
	c->peers = xcalloc(p->n_peers, sizeof(*c->peers));
	c->peers_sorted = xcalloc(p->n_peers, sizeof(*c->peers_sorted));
	for (size_t i = 0; i < p->n_peers; i++) {
		if (resolve_peer(p, &p->peers[i], "peers"))
			return -1;
	}
	c->n_ranges = p->n_ranges;
	c->ranges = xcalloc(p->n_ranges, sizeof(*c->ranges));
	c->ranges_sorted = xcalloc(p->n_ranges, sizeof(*c->ranges_sorted));
	for (size_t i = 0; i < p->n_ranges; i++) {
		if (resolve_peer(p, &p->ranges[i], "peer-ranges"))
			return -1;
	}
	/* Move the resolved peers into the cfg (strings change owner). */
	for (size_t i = 0; i < p->n_peers; i++) {
		c->peers[i] = p->peers[i].pe;
		p->peers[i].pe.description = p->peers[i].pe.md5_password = NULL;
		c->peers_sorted[i] = &c->peers[i];
	}
	for (size_t i = 0; i < p->n_ranges; i++) {
		c->ranges[i] = p->ranges[i].pe;
		p->ranges[i].pe.description = p->ranges[i].pe.md5_password = NULL;
		c->ranges_sorted[i] = &c->ranges[i];
	}
	qsort(c->peers_sorted, c->n_peers, sizeof(*c->peers_sorted), peer_ptr_cmp);
	for (size_t i = 1; i < c->n_peers; i++) {
		const struct cfg_peer *a = c->peers_sorted[i - 1], *b = c->peers_sorted[i];
		if (!addr_cmp(&a->addr, &b->addr)) {
			char s[INET6_ADDRSTRLEN], cp[64];
			fmt_addr(&b->addr, s, sizeof(s));
			snprintf(cp, sizeof(cp), "peers[%u].address", b->index);
			return perr_mark(p, p->peers[b->index].mark_addr, cp,
					 "duplicate peer %s (first at line %u)", s, a->line);
		}
	}
	qsort(c->ranges_sorted, c->n_ranges, sizeof(*c->ranges_sorted), range_ptr_cmp);
	for (size_t i = 1; i < c->n_ranges; i++) {
		const struct cfg_peer *a = c->ranges_sorted[i - 1], *b = c->ranges_sorted[i];
		if (a->plen == b->plen && !addr_cmp(&a->addr, &b->addr)) {
			char s[INET6_ADDRSTRLEN], cp[64];
			fmt_addr(&b->addr, s, sizeof(s));
			snprintf(cp, sizeof(cp), "peer-ranges[%u].prefix", b->index);
			return perr_mark(p, p->ranges[b->index].mark_addr, cp,
					 "duplicate range %s/%u (first at line %u)", s, b->plen,
					 a->line);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ load */

static void free_peer_strings(struct cfg_peer *pe)
{
	free(pe->description);
	free(pe->md5_password);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_peers; i++)
		free_peer_strings(&c->peers[i]);
	for (size_t i = 0; i < c->n_ranges; i++)
		free_peer_strings(&c->ranges[i]);
	free(c->peers);
	free(c->ranges);
	free(c->peers_sorted);
	free(c->ranges_sorted);
	free(c->listen);
	free(c->ctl_socket);
	free(c->mrt_dir);
	free(c->path);
	free(c);
}

static struct cfg *load_buf(const char *buf, size_t len, const char *name, char *err,
			    size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct pctx p = { .file = name, .doc = &doc, .err = err, .errlen = errlen };
	struct cfg *c = xcalloc(1, sizeof(*c));
	int rc = -1;

	if (errlen)
		err[0] = 0;
	p.cfg = c;
	c->path = xstrdup(name);
	c->asn = BGP_DEFAULT_ASN;
	c->log_level = LOG_LVL_INFO;

	if (!yaml_parser_initialize(&parser))
		log_fatal("config: out of memory (yaml parser)");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_mark_t m = parser.problem_mark;
		if (parser.context)
			perr_mark(&p, m, "", "YAML syntax error: %s %s", parser.problem,
				  parser.context);
		else
			perr_mark(&p, m, "", "YAML syntax error: %s",
				  parser.problem ? parser.problem : "unknown");
		yaml_parser_delete(&parser);
		cfg_free(c);
		return NULL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t empty = { .type = YAML_MAPPING_NODE };
	if (!root)
		root = &empty;   /* empty file: fails on the missing router-id */
	if (!walk_map(&p, root, "", global_keys, sizeof(global_keys) / sizeof(global_keys[0]),
		      &p, global_hint) && !resolve(&p, root)) {
		/* a second document is most likely a stray "---" */
		yaml_document_t doc2;
		if (!yaml_parser_load(&parser, &doc2)) {
			perr_mark(&p, parser.problem_mark, "", "YAML syntax error: %s",
				  parser.problem ? parser.problem : "unknown");
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
			if (r2)
				perr(&p, r2, "", "only one YAML document is allowed");
			else
				rc = 0;
			yaml_document_delete(&doc2);
		}
	}
	for (size_t i = 0; i < p.n_peers; i++)
		free_peer_strings(&p.peers[i].pe);
	for (size_t i = 0; i < p.n_ranges; i++)
		free_peer_strings(&p.ranges[i].pe);
	free(p.peers);
	free(p.ranges);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc) {
		/* peers not yet moved into c hold no strings; those moved are c's */
		cfg_free(c);
		return NULL;
	}
	return c;
}

struct cfg *cfg_load_string(const char *yaml, const char *name, char *err, size_t errlen)
{
	return load_buf(yaml, strlen(yaml), name ? name : "<string>", err, errlen);
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 16384;
			if (cap > (64u << 20)) {
				fclose(f);
				free(buf);
				snprintf(err, errlen, "%s: larger than 64 MiB", path);
				return NULL;
			}
			buf = xrealloc(buf, cap, 1);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	bool bad = ferror(f);
	int e = errno;
	fclose(f);
	if (bad) {
		free(buf);
		snprintf(err, errlen, "%s: read error: %s", path, strerror(e));
		return NULL;
	}
	buf[len] = 0;
	struct cfg *c = load_buf(buf, len, path, err, errlen);
	free(buf);
	return c;
}

/* ------------------------------------------------------------ matching */

const struct cfg_peer *cfg_match_peer(const struct cfg *c, const struct bgp_addr *addr)
{
	struct bgp_addr a = *addr;
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (a.family == BGP_FAM_IPV6 && !memcmp(a.addr, v4mapped, 12)) {
		memmove(a.addr, a.addr + 12, 4);
		memset(a.addr + 4, 0, 12);
		a.family = BGP_FAM_IPV4;
	}
	size_t lo = 0, hi = c->n_peers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = addr_cmp(&a, &c->peers_sorted[mid]->addr);
		if (!r)
			return c->peers_sorted[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (size_t i = 0; i < c->n_ranges; i++) {
		const struct cfg_peer *r = c->ranges_sorted[i];
		if (prefix_contains(&r->addr, r->plen, &a))
			return r;
	}
	return NULL;
}

/* ------------------------------------------------------------ reload diff */

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

unsigned cfg_peer_diff(const struct cfg_peer *o, const struct cfg_peer *n)
{
	unsigned d = 0;
	if (o->asn != n->asn || o->port != n->port || o->has_local_addr != n->has_local_addr ||
	    (o->has_local_addr && addr_cmp(&o->local_addr, &n->local_addr)) ||
	    o->passive != n->passive || o->families != n->families ||
	    o->addpath_send != n->addpath_send || o->addpath_receive != n->addpath_receive ||
	    o->route_refresh != n->route_refresh || o->extended_messages != n->extended_messages ||
	    o->gr_enabled != n->gr_enabled || o->gr_restart_time != n->gr_restart_time ||
	    !str_eq(o->md5_password, n->md5_password) || o->ttl_security != n->ttl_security ||
	    o->send_hold_time != n->send_hold_time || o->timers.hold != n->timers.hold ||
	    o->timers.keepalive != n->timers.keepalive ||
	    o->timers.connect_retry != n->timers.connect_retry)
		d |= CFG_PCHG_SESSION;
	if (o->role != n->role)
		d |= CFG_PCHG_ROLE;
	if (o->max_prefixes != n->max_prefixes ||
	    o->max_prefixes_warning_pct != n->max_prefixes_warning_pct ||
	    o->max_prefixes_restart != n->max_prefixes_restart)
		d |= CFG_PCHG_LIMITS;
	if (!str_eq(o->description, n->description))
		d |= CFG_PCHG_DESCR;
	return d;
}

bool cfg_peer_needs_reset(const struct cfg_peer *o, const struct cfg_peer *n)
{
	return (cfg_peer_diff(o, n) & CFG_PCHG_RESET) != 0;
}

static bool ep_eq(const struct cfg_endpoint *a, const struct cfg_endpoint *b)
{
	return a->port == b->port && !addr_cmp(&a->addr, &b->addr);
}

static bool peers_eq(const struct cfg_peer *a, size_t na, const struct cfg_peer *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (a[i].plen != b[i].plen || addr_cmp(&a[i].addr, &b[i].addr) ||
		    cfg_peer_diff(&a[i], &b[i]))
			return false;
	}
	return true;
}

unsigned cfg_diff(const struct cfg *o, const struct cfg *n)
{
	unsigned d = 0;
	if (o->router_id != n->router_id || o->asn != n->asn || o->cluster_id != n->cluster_id)
		d |= CFG_CHG_IDENTITY;
	bool leq = o->n_listen == n->n_listen;
	for (size_t i = 0; leq && i < o->n_listen; i++)
		leq = ep_eq(&o->listen[i], &n->listen[i]);
	if (!leq)
		d |= CFG_CHG_LISTEN;
	if (strcmp(o->ctl_socket, n->ctl_socket))
		d |= CFG_CHG_CTL;
	if (o->io_threads != n->io_threads || o->io_threads_count != n->io_threads_count)
		d |= CFG_CHG_THREADS;
	if (memcmp(&o->timers, &n->timers, sizeof(o->timers)))
		d |= CFG_CHG_TIMERS;
	if (o->always_compare_med != n->always_compare_med ||
	    o->deterministic_med != n->deterministic_med)
		d |= CFG_CHG_DECISION;
	if (o->max_routes != n->max_routes)
		d |= CFG_CHG_LIMITS;
	if (o->log_level != n->log_level)
		d |= CFG_CHG_LOG;
	if (o->hugepages_off != n->hugepages_off)
		d |= CFG_CHG_MEMORY;
	if (o->has_metrics != n->has_metrics || (o->has_metrics && !ep_eq(&o->metrics, &n->metrics)) ||
	    o->has_bmp != n->has_bmp || (o->has_bmp && !ep_eq(&o->bmp, &n->bmp)) ||
	    !str_eq(o->mrt_dir, n->mrt_dir))
		d |= CFG_CHG_EXPORT;
	if (!peers_eq(o->peers, o->n_peers, n->peers, n->n_peers) ||
	    !peers_eq(o->ranges, o->n_ranges, n->ranges, n->n_ranges))
		d |= CFG_CHG_PEERS;
	return d;
}

/* ------------------------------------------------------------ names */

const char *cfg_role_name(unsigned role)
{
	return role < 3 ? role_names[role] : "?";
}

const char *cfg_families_fmt(char *buf, size_t len, uint8_t families)
{
	size_t o = 0;
	if (len)
		buf[0] = 0;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		if (!(families & CFG_FAM_BIT(f)) || o >= len)
			continue;
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " " : "", family_names[f]);
	}
	return buf;
}

const char *cfg_asn_fmt(char *buf, size_t len, uint32_t asn, bool asdot)
{
	if (asdot && asn > 65535)
		snprintf(buf, len, "%u.%u", asn >> 16, asn & 0xffff);
	else
		snprintf(buf, len, "%u", asn);
	return buf;
}

/* ------------------------------------------------------------ dump */

static void dump_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void dump_addr(FILE *f, const struct bgp_addr *a)
{
	char s[INET6_ADDRSTRLEN];
	fmt_addr(a, s, sizeof(s));
	fprintf(f, "\"%s\"", s);
}

static void dump_endpoint(FILE *f, const struct cfg_endpoint *e)
{
	char s[INET6_ADDRSTRLEN];
	fmt_addr(&e->addr, s, sizeof(s));
	if (e->addr.family == BGP_FAM_IPV6)
		fprintf(f, "\"[%s]:%u\"", s, e->port);
	else
		fprintf(f, "\"%s:%u\"", s, e->port);
}

static void dump_ipv4(FILE *f, uint32_t v)
{
	fprintf(f, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

static void dump_peer(FILE *f, const struct cfg_peer *p, bool redact)
{
	char fam[64];
	fprintf(f, "  - %s: ", p->is_range ? "prefix" : "address");
	if (p->is_range) {
		char s[INET6_ADDRSTRLEN];
		fmt_addr(&p->addr, s, sizeof(s));
		fprintf(f, "\"%s/%u\"\n", s, p->plen);
	} else {
		dump_addr(f, &p->addr);
		fputc('\n', f);
	}
	if (p->description) {
		fprintf(f, "    description: ");
		dump_str(f, p->description);
		fputc('\n', f);
	}
	fprintf(f, "    asn: %u\n    port: %u\n", p->asn, p->port);
	if (p->has_local_addr) {
		fprintf(f, "    local-address: ");
		dump_addr(f, &p->local_addr);
		fputc('\n', f);
	}
	fam[0] = 0;
	for (unsigned i = 0, o = 0; i < BGP_FAM_COUNT; i++)
		if (p->families & CFG_FAM_BIT(i))
			o += (unsigned)snprintf(fam + o, sizeof(fam) - o, "%s%s", o ? ", " : "",
						family_names[i]);
	fprintf(f, "    role: %s\n    passive: %s\n    families: [%s]\n", role_names[p->role],
		p->passive ? "true" : "false", fam);
	fprintf(f, "    add-path: { send: %u, receive: %s }\n", p->addpath_send,
		p->addpath_receive ? "true" : "false");
	fprintf(f, "    route-refresh: %s\n    extended-messages: %s\n",
		p->route_refresh ? "true" : "false", p->extended_messages ? "true" : "false");
	fprintf(f, "    graceful-restart: { enabled: %s, restart-time: %u }\n",
		p->gr_enabled ? "true" : "false", p->gr_restart_time);
	if (p->max_prefixes)
		fprintf(f, "    max-prefixes: { limit: %u, warning-pct: %u, restart: %u }\n",
			p->max_prefixes, p->max_prefixes_warning_pct, p->max_prefixes_restart);
	if (p->md5_password) {
		fprintf(f, "    md5-password: ");
		dump_str(f, redact ? "<redacted>" : p->md5_password);
		fputc('\n', f);
	}
	fprintf(f, "    ttl-security: %u\n    send-hold-time: %u\n", p->ttl_security,
		p->send_hold_time);
	fprintf(f, "    timers: { hold: %u, keepalive: %u, connect-retry: %u }\n",
		p->timers.hold, p->timers.keepalive, p->timers.connect_retry);
}

int cfg_dump(const struct cfg *c, FILE *f, bool redact)
{
	static const char *const levels[] = { "debug", "info", "warn", "error" };
	fprintf(f, "# effective configuration of ");
	dump_str(f, c->path);
	fprintf(f, "\nrouter-id: ");
	dump_ipv4(f, c->router_id);
	fprintf(f, "\nasn: %u\ncluster-id: ", c->asn);
	dump_ipv4(f, c->cluster_id);
	fprintf(f, "\nlisten:%s\n", c->n_listen ? "" : " []");
	for (size_t i = 0; i < c->n_listen; i++) {
		fprintf(f, "  - { address: ");
		dump_addr(f, &c->listen[i].addr);
		fprintf(f, ", port: %u }\n", c->listen[i].port);
	}
	fprintf(f, "control-socket: ");
	dump_str(f, c->ctl_socket);
	if (c->io_threads == CFG_IOT_COUNT)
		fprintf(f, "\nio-threads: %u\n", c->io_threads_count);
	else
		fprintf(f, "\nio-threads: %s\n", c->io_threads == CFG_IOT_PER_PEER ? "per-peer" : "auto");
	fprintf(f, "hugepages: %s\n", c->hugepages_off ? "off" : "settle");
	fprintf(f, "timers: { hold: %u, keepalive: %u, connect-retry: %u }\n", c->timers.hold,
		c->timers.keepalive, c->timers.connect_retry);
	fprintf(f, "max-routes: %" PRIu64 "\n", c->max_routes);
	fprintf(f, "decision: { always-compare-med: %s, deterministic-med: %s }\n",
		c->always_compare_med ? "true" : "false", c->deterministic_med ? "true" : "false");
	fprintf(f, "log-level: %s\n", levels[c->log_level]);
	if (c->has_metrics) {
		fprintf(f, "metrics: { listen: ");
		dump_endpoint(f, &c->metrics);
		fprintf(f, " }\n");
	}
	if (c->mrt_dir) {
		fprintf(f, "mrt-dump: ");
		dump_str(f, c->mrt_dir);
		fputc('\n', f);
	}
	if (c->has_bmp) {
		fprintf(f, "bmp: { station: ");
		dump_endpoint(f, &c->bmp);
		fprintf(f, " }\n");
	}
	fprintf(f, "peers:%s\n", c->n_peers ? "" : " []");
	for (size_t i = 0; i < c->n_peers; i++)
		dump_peer(f, &c->peers[i], redact);
	fprintf(f, "peer-ranges:%s\n", c->n_ranges ? "" : " []");
	for (size_t i = 0; i < c->n_ranges; i++)
		dump_peer(f, &c->ranges[i], redact);
	fflush(f);
	return ferror(f) ? -1 : 0;
}
