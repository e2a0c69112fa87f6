/*
 * daemon_ctl.c - the control commands of ricochetd (show summary, peers,
 * routes, memory; reload; refresh), served on the ctl thread (io/ctl.c).
 *
 * Everything here reads: RCU snapshots of the RIB (walks under
 * rcu_read_lock), per-peer counters read racily (relaxed, for display), and
 * the peer table, whose slots never change once written.  Nothing here
 * blocks a data-path thread, so the CLI answers while a full table loads.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ctl.h"
#include "io/daemon.h"
#include "core/mrt.h"
#include "rib/mem.h"
#include <errno.h>
#include <time.h>

#define ROUTES_DEFAULT_LIMIT 1000

static const char *state_name(const struct peer *p)
{
	return fsm_state_name((unsigned)atomic_load_explicit(&((struct peer *)p)->state,
							     memory_order_relaxed));
}

static void fmt_uptime(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / 1000000000ull;
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", s / 86400, s / 3600 % 24,
			 s / 60 % 60);
	else
		snprintf(buf, len, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
}

static struct peer *find_peer(struct daemon *d, const char *s)
{
	struct bgp_addr a;
	if (bgp_addr_parse(s, &a) != 0)
		return NULL;
	pthread_mutex_lock(&d->peers_lock);
	struct peer *p = daemon_peer_by_addr(d, &a);
	pthread_mutex_unlock(&d->peers_lock);
	return p;
}

/* ------------------------------------------------------------ show summary */

static int cmd_summary(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	(void)argv;
	if (argc)
		return ctl_error(out, "usage: show summary [--json]");
	struct rib_stats rs;
	struct attr_stats as;
	struct refl_stats fs;
	rib_stats(d->rib, &rs);
	attr_table_stats(d->attrs, &as);
	refl_get_stats(d->refl, &fs);
	uint32_t est = 0, n = daemon_n_peers(d);
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load_explicit(&d->peers[i]->state, memory_order_relaxed) == FSM_ESTABLISHED)
			est++;
	char rid[32], cid[32], up[32];
	bgp_id_fmt(rid, sizeof(rid), d->router_id);
	bgp_id_fmt(cid, sizeof(cid), d->cluster_id);
	fmt_uptime(up, sizeof(up), log_now_ns() - d->start_ns);
	if (ctl_json(out)) {
		ctl_json_obj_open(out);
		ctl_json_kstr(out, "router_id", rid);
		ctl_json_kuint(out, "asn", d->asn);
		ctl_json_kstr(out, "cluster_id", cid);
		ctl_json_kuint(out, "uptime_s", (log_now_ns() - d->start_ns) / 1000000000ull);
		ctl_json_kuint(out, "peers", n);
		ctl_json_kuint(out, "established", est);
		ctl_json_kuint(out, "ipv4_prefixes", rs.prefixes[BGP_FAM_IPV4]);
		ctl_json_kuint(out, "ipv6_prefixes", rs.prefixes[BGP_FAM_IPV6]);
		ctl_json_kuint(out, "ipv4_paths", rs.paths[BGP_FAM_IPV4]);
		ctl_json_kuint(out, "ipv6_paths", rs.paths[BGP_FAM_IPV6]);
		ctl_json_kuint(out, "attribute_sets", as.sets);
		ctl_json_kuint(out, "routes", atomic_load(&d->routes));
		ctl_json_kuint(out, "max_routes", __atomic_load_n(&d->max_routes, __ATOMIC_RELAXED));
		ctl_json_kuint(out, "journal_pending", rs.journal_pending);
		ctl_json_kuint(out, "reflect_batches", fs.batches);
		ctl_json_kuint(out, "reflect_prefixes", fs.prefixes);
		ctl_json_kuint(out, "updates_encoded", fs.updates_encoded);
		ctl_json_kuint(out, "bytes_encoded", fs.bytes_encoded);
		ctl_json_kuint(out, "update_groups", fs.groups);
		ctl_json_kuint(out, "slow_reader_pauses", fs.pauses);
		ctl_json_kuint(out, "slow_reader_resyncs", fs.resyncs);
		ctl_json_kuint(out, "addpath_group_pauses", fs.group_pauses);
		ctl_json_kuint(out, "addpath_deferred", fs.ap_deferred);
		ctl_json_kuint(out, "addpath_deferred_sent", fs.ap_deferred_sent);
		ctl_json_kuint(out, "addpath_laggards_reset", fs.ap_laggards);
		ctl_json_obj_close(out);
		return 0;
	}
	ctl_printf(out, "Ricochet route reflector: router-id %s, AS%u, cluster-id %s, up %s\n", rid, d->asn,
		   cid, up);
	ctl_printf(out, "Peers: %u configured or seen, %u established; %" PRIu64 " update groups\n", n, est,
		   fs.groups);
	ctl_printf(out, "RIB: %" PRIu64 " IPv4 prefixes (%" PRIu64 " paths), %" PRIu64 " IPv6 prefixes (%" PRIu64
		   " paths), %" PRIu64 " attribute sets\n",
		   rs.prefixes[0], rs.paths[0], rs.prefixes[1], rs.paths[1], as.sets);
	ctl_printf(out, "Reflection: %" PRIu64 " batches, %" PRIu64 " prefixes, %" PRIu64 " UPDATEs encoded (%" PRIu64
		   " bytes), %" PRIu64 " pending\n",
		   fs.batches, fs.prefixes, fs.updates_encoded, fs.bytes_encoded, rs.journal_pending);
	ctl_printf(out, "Slow readers: %" PRIu64 " pauses, %" PRIu64 " resyncs; ADD-PATH groups: %" PRIu64
		   " pauses, %" PRIu64 " prefixes deferred now, %" PRIu64 " members reset for lagging\n",
		   fs.pauses, fs.resyncs, fs.group_pauses, fs.ap_deferred, fs.ap_laggards);
	return 0;
}

/* ------------------------------------------------------------ show peers */

static int cmd_peers(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	(void)argv;
	if (argc)
		return ctl_error(out, "usage: show peers [--json]");
	bool json = ctl_json(out);
	uint64_t now = log_now_ns();
	if (json)
		ctl_json_arr_open(out);
	else
		ctl_printf(out, "%-24s %-10s %-9s %-11s %-10s %10s %10s %12s  %s\n", "Neighbor", "AS", "Role",
			   "State", "Up/Down", "PfxRcd", "PfxAcc", "BytesOut", "Last error");
	for (uint32_t i = 0, n = daemon_n_peers(d); i < n; i++) {
		struct peer *p = d->peers[i];
		char a[64], up[32];
		bgp_addr_fmt(a, sizeof(a), &p->addr);
		bool est = atomic_load_explicit(&p->state, memory_order_relaxed) == FSM_ESTABLISHED;
		uint64_t since = est ? PEER_STAT(p->up_since_ns) : PEER_STAT(p->down_since_ns);
		if (since)
			fmt_uptime(up, sizeof(up), now - since);
		else
			snprintf(up, sizeof(up), "never");
		uint64_t acc = PEER_STAT(p->prefixes_accepted[0]) + PEER_STAT(p->prefixes_accepted[1]);
		char err[sizeof(p->last_error)];
		peer_get_error(p, err, sizeof(err));
		if (json) {
			ctl_json_obj_open(out);
			ctl_json_kstr(out, "address", a);
			ctl_json_kuint(out, "asn", p->cfg.asn);
			ctl_json_kstr(out, "role", cfg_role_name(p->cfg.role));
			ctl_json_kstr(out, "state", state_name(p));
			ctl_json_kbool(out, "dynamic", p->dynamic);
			ctl_json_kuint(out, "uptime_s", since ? (now - since) / 1000000000ull : 0);
			ctl_json_kuint(out, "prefixes_received", PEER_STAT(p->c.prefixes_in));
			ctl_json_kuint(out, "prefixes_accepted", acc);
			ctl_json_kuint(out, "withdraws_received", PEER_STAT(p->c.withdraws_in));
			ctl_json_kuint(out, "updates_received", PEER_STAT(p->c.updates_in));
			ctl_json_kuint(out, "messages_in", PEER_STAT(p->c.msgs_in));
			ctl_json_kuint(out, "bytes_in", PEER_STAT(p->c.bytes_in));
			ctl_json_kuint(out, "bytes_out", PEER_STAT(p->c.bytes_out));
			ctl_json_kuint(out, "queued_bytes", atomic_load(&p->oq_bytes));
			ctl_json_kuint(out, "treat_as_withdraw", PEER_STAT(p->c.treat_as_withdraw));
			ctl_json_kuint(out, "loops_dropped", PEER_STAT(p->c.loops_dropped));
			ctl_json_kuint(out, "notifications_in", PEER_STAT(p->c.notif_in));
			ctl_json_kuint(out, "notifications_out", PEER_STAT(p->c.notif_out));
			ctl_json_kuint(out, "route_refresh_in", PEER_STAT(p->c.refresh_in));
			ctl_json_kuint(out, "route_refresh_out", PEER_STAT(p->c.refresh_out));
			ctl_json_kstr(out, "last_error", err);
			ctl_json_obj_close(out);
		} else {
			ctl_printf(out, "%-24s %-10u %-9s %-11s %-10s %10" PRIu64 " %10" PRIu64 " %12" PRIu64 "  %s\n",
				   a, p->cfg.asn, cfg_role_name(p->cfg.role), state_name(p), up, PEER_STAT(p->c.prefixes_in),
				   acc, PEER_STAT(p->c.bytes_out), err);
		}
	}
	if (json)
		ctl_json_arr_close(out);
	return 0;
}

/* ------------------------------------------------------------ show routes */

static void fmt_aspath(char *buf, size_t len, const struct attr_set *a)
{
	struct msg_attr at;
	size_t n = 0;
	buf[0] = '\0';
	if (!msg_attr_find(a->blob, a->blob_len, BGP_ATTR_AS_PATH, &at))
		return;
	const uint8_t *p = at.value, *end = at.value + at.len;
	while (p + 2 <= end && n + 16 < len) {
		uint8_t type = p[0], cnt = p[1];
		p += 2;
		bool set = type == BGP_AS_SET || type == BGP_AS_CONFED_SET;
		if (set)
			n += (size_t)snprintf(buf + n, len - n, "%s{", n ? " " : "");
		for (unsigned i = 0; i < cnt && p + 4 <= end && n + 16 < len; i++, p += 4) {
			uint32_t as = bgp_get32(p);
			n += (size_t)snprintf(buf + n, len - n, "%s%u", (n && !(set && i == 0)) ? (set ? "," : " ") : "",
					      as);
		}
		if (set)
			n += (size_t)snprintf(buf + n, len - n, "}");
	}
}

static void fmt_nh(char *buf, size_t len, const struct bgp_nexthop *nh)
{
	if (nh->len == 4)
		inet_ntop(AF_INET, nh->addr, buf, (socklen_t)len);
	else if (nh->len >= 16)
		inet_ntop(AF_INET6, nh->addr, buf, (socklen_t)len);
	else
		snprintf(buf, len, "-");
}

enum routes_mode { RT_ALL, RT_LEARNED, RT_ADVERTISED };

struct routes_ctx {
	struct daemon *d;
	struct ctl_out *out;
	enum routes_mode mode;
	struct peer *peer;
	bool peer_fam[BGP_FAM_COUNT];    /* RT_ADVERTISED: the peer's families (sess_snap) */
	uint64_t shown, limit;
	bool json;
};

static void print_path(struct routes_ctx *c, const char *pfx, const struct rib_path *rp, bool best)
{
	char nh[64], asp[512], from[64];
	const struct attr_set *a = rp->attr;
	fmt_nh(nh, sizeof(nh), &a->nh);
	fmt_aspath(asp, sizeof(asp), a);
	struct peer *src = c->d->peers[rp->peer];
	if (src)
		bgp_addr_fmt(from, sizeof(from), &src->addr);
	else
		snprintf(from, sizeof(from), "?");
	if (c->json) {
		ctl_json_obj_open(c->out);
		ctl_json_kstr(c->out, "prefix", pfx);
		ctl_json_kbool(c->out, "best", best);
		ctl_json_kstr(c->out, "from", from);
		ctl_json_kuint(c->out, "path_id", rp->path_id);
		ctl_json_kstr(c->out, "next_hop", nh);
		if (a->nh.len == 32) {
			/* RFC 2545: the link-local half of a 32-octet IPv6 next hop */
			char ll[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, a->nh.addr + 16, ll, sizeof(ll));
			ctl_json_kstr(c->out, "next_hop_link_local", ll);
		}
		ctl_json_kstr(c->out, "as_path", asp);
		ctl_json_kuint(c->out, "origin", a->origin);
		ctl_json_kuint(c->out, "local_pref", a->local_pref);
		if (a->flags & ATTR_F_MED)
			ctl_json_kuint(c->out, "med", a->med);
		if (a->flags & ATTR_F_ORIGINATOR) {
			char o[32];
			bgp_id_fmt(o, sizeof(o), a->originator_id);
			ctl_json_kstr(c->out, "originator_id", o);
		}
		ctl_json_kuint(c->out, "cluster_list_len", a->cluster_list_len);
		ctl_json_kbool(c->out, "stale", rp->flags & RIB_PATH_F_STALE);
		ctl_json_obj_close(c->out);
	} else {
		static const char org[] = "ie?";
		char med[16] = "-";
		if (a->flags & ATTR_F_MED)
			snprintf(med, sizeof(med), "%u", a->med);
		ctl_printf(c->out, "%s %-32s %-26s %-16s %6u %8s  %s %c%s\n", best ? "*>" : "  ", pfx, nh, from,
			   a->local_pref, med, asp, org[a->origin % 3],
			   (rp->flags & RIB_PATH_F_STALE) ? " (stale)" : "");
	}
}

static bool routes_cb(struct rib_node *n, const struct bgp_prefix *pfx, const struct rib_pathset *ps, void *arg)
{
	struct routes_ctx *c = arg;
	(void)n;
	if (!ps || !ps->n)
		return true;
	char ps_txt[64];
	bgp_prefix_fmt(ps_txt, sizeof(ps_txt), pfx);
	for (unsigned i = 0; i < ps->n; i++) {
		const struct rib_path *rp = &ps->p[i];
		if (c->mode == RT_LEARNED && rp->peer != c->peer->id)
			continue;
		if (c->mode == RT_ADVERTISED) {
			if (i != 0 || rp->peer == c->peer->id ||
			    !refl_export_ok(c->d->refl, rp, pfx->family, c->peer->cfg.role, c->peer_fam))
				break;
		}
		print_path(c, ps_txt, rp, i == 0);
		if (c->mode != RT_ALL)
			break;
	}
	c->shown++;
	return c->shown < c->limit;
}

static int show_routes(struct daemon *d, int argc, char **argv, struct ctl_out *out, enum routes_mode mode)
{
	struct routes_ctx c = { .d = d, .out = out, .mode = mode, .limit = ROUTES_DEFAULT_LIMIT,
				.json = ctl_json(out) };
	int ai = 0;
	if (mode != RT_ALL) {
		if (argc < 1)
			return ctl_error(out, "usage: show routes %s PEER [--all] [--json]",
					 mode == RT_LEARNED ? "learned" : "advertised");
		c.peer = find_peer(d, argv[0]);
		if (!c.peer)
			return ctl_error(out, "no such peer: %s", argv[0]);
		/* the families as of now; a session that is down gets nothing */
		unsigned snap = atomic_load_explicit(&c.peer->sess_snap, memory_order_acquire);
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			c.peer_fam[f] = (snap & PEER_SNAP_FAM(f)) != 0;
		ai = 1;
	}
	struct bgp_prefix below, *belowp = NULL;
	for (; ai < argc; ai++) {
		if (!strcmp(argv[ai], "--all"))
			c.limit = UINT64_MAX;
		else if (bgp_prefix_parse(argv[ai], &below) == 0)
			belowp = &below;
		else {
			struct bgp_addr a;
			if (bgp_addr_parse(argv[ai], &a) != 0)
				return ctl_error(out, "not a prefix or address: %s", argv[ai]);
			/* longest match for an address */
			if (c.json)
				ctl_json_arr_open(out);
			rcu_read_lock();
			struct rib_node *n = rib_lookup_lpm(d->rib, a.family, a.addr);
			if (n) {
				struct bgp_prefix p;
				rib_node_prefix(n, &p);
				routes_cb(n, &p, rib_node_paths(n), &c);
			}
			rcu_read_unlock();
			if (c.json)
				ctl_json_arr_close(out);
			return 0;
		}
	}
	if (c.json)
		ctl_json_arr_open(out);
	else
		ctl_printf(out, "   %-32s %-26s %-16s %6s %8s  %s\n", "Prefix", "Next hop", "From", "LocPrf", "MED",
			   "AS path");
	for (unsigned f = 0; f < BGP_FAM_COUNT && c.shown < c.limit; f++) {
		if (belowp && belowp->family != f)
			continue;
		struct bgp_prefix cursor, last;
		bool started = false;
		for (;;) {
			rcu_read_lock();
			size_t k = rib_walk(d->rib, f, belowp, started ? &cursor : NULL, 4096, routes_cb, &c, &last);
			rcu_read_unlock();
			if (k == 0 || c.shown >= c.limit)
				break;
			cursor = last;
			started = true;
			if (k < 4096)
				break;
		}
	}
	if (c.json)
		ctl_json_arr_close(out);
	else if (c.shown >= c.limit)
		ctl_printf(out, "(first %" PRIu64 " prefixes shown; add --all for everything)\n", c.limit);
	return 0;
}

static int cmd_routes(int argc, char **argv, struct ctl_out *out, void *arg)
{
	return show_routes(arg, argc, argv, out, RT_ALL);
}

static int cmd_routes_learned(int argc, char **argv, struct ctl_out *out, void *arg)
{
	return show_routes(arg, argc, argv, out, RT_LEARNED);
}

static int cmd_routes_advertised(int argc, char **argv, struct ctl_out *out, void *arg)
{
	return show_routes(arg, argc, argv, out, RT_ADVERTISED);
}

/* ------------------------------------------------------------ show memory */

static int cmd_memory(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	(void)argv;
	if (argc)
		return ctl_error(out, "usage: show memory [--json]");
	struct rib_stats rs;
	struct attr_stats as;
	rib_stats(d->rib, &rs);
	attr_table_stats(d->attrs, &as);
	uint64_t paths = rs.paths[0] + rs.paths[1];
	daemon_je_refresh();
	uint64_t alloc = daemon_je_stat("stats.allocated"), resident = daemon_je_stat("stats.resident");
	uint64_t active = daemon_je_stat("stats.active"), metadata = daemon_je_stat("stats.metadata");
	uint64_t mapped = daemon_je_stat("stats.mapped"), retained = daemon_je_stat("stats.retained");
	uint64_t huge = mem_huge_bytes();
	uint64_t settles = __atomic_load_n(&d->settle.runs, __ATOMIC_RELAXED);
	uint64_t settle_ns = __atomic_load_n(&d->settle.last_ns, __ATOMIC_RELAXED);
	struct refl_stats fs;
	refl_get_stats(d->refl, &fs);
	uint64_t queued = 0;
	for (uint32_t i = 0, n = daemon_n_peers(d); i < n; i++)
		queued += atomic_load_explicit(&d->peers[i]->oq_bytes, memory_order_relaxed);
	if (ctl_json(out)) {
		ctl_json_obj_open(out);
		ctl_json_kuint(out, "prefixes", rs.prefixes[0] + rs.prefixes[1]);
		ctl_json_kuint(out, "paths", paths);
		ctl_json_kuint(out, "tree_nodes", rs.nodes);
		ctl_json_kuint(out, "node_bytes", rs.node_bytes);
		ctl_json_kuint(out, "pathset_bytes", rs.pathset_bytes);
		ctl_json_kuint(out, "lpm_index_bytes", rs.lpm_index_bytes);
		ctl_json_kuint(out, "descent_hint_bytes", rs.hint_bytes);
		ctl_json_kuint(out, "peer_index_bytes", rs.peer_index_bytes);
		ctl_json_kuint(out, "journal_pending", rs.journal_pending);
		ctl_json_kuint(out, "attribute_sets", as.sets);
		ctl_json_kuint(out, "attribute_bytes", as.bytes);
		ctl_json_kuint(out, "attribute_hash_buckets", as.buckets);
		ctl_json_kuint(out, "attribute_hash_bytes", as.buckets * sizeof(struct cds_lfht_node));
		ctl_json_kuint(out, "addpath_table_bytes", fs.adv_bytes);
		ctl_json_kuint(out, "addpath_deferred_bytes", fs.ap_deferred * sizeof(void *));
		ctl_json_kuint(out, "output_queued_bytes", queued);
		ctl_json_kuint(out, "allocated_bytes", alloc);
		ctl_json_kuint(out, "active_bytes", active);
		ctl_json_kuint(out, "metadata_bytes", metadata);
		ctl_json_kuint(out, "resident_bytes", resident);
		ctl_json_kuint(out, "mapped_bytes", mapped);
		ctl_json_kuint(out, "retained_bytes", retained);
		ctl_json_kuint(out, "huge_page_bytes", huge);
		ctl_json_kuint(out, "settles", settles);
		ctl_json_kuint(out, "last_settle_ns", settle_ns);
		ctl_json_obj_close(out);
		return 0;
	}
	ctl_printf(out, "%-22s %14s %14s\n", "Object", "Count", "Bytes");
	ctl_printf(out, "%-22s %14" PRIu64 " %14" PRIu64 "\n", "tree nodes", rs.nodes, rs.node_bytes);
	ctl_printf(out, "%-22s %14" PRIu64 " %14" PRIu64 "\n", "paths (path sets)", paths, rs.pathset_bytes);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", " of which /24 index", "", rs.lpm_index_bytes);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "descent hints", "", rs.hint_bytes);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "per-peer index", "", rs.peer_index_bytes);
	ctl_printf(out, "%-22s %14" PRIu64 " %14" PRIu64 "\n", "attribute sets", as.sets, as.bytes);
	ctl_printf(out, "%-22s %14" PRIu64 " %14" PRIu64 "\n", " hash buckets", as.buckets,
		   as.buckets * (uint64_t)sizeof(struct cds_lfht_node));
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "ADD-PATH tables", "", fs.adv_bytes);
	ctl_printf(out, "%-22s %14" PRIu64 " %14" PRIu64 "\n", "ADD-PATH deferred", fs.ap_deferred,
		   fs.ap_deferred * (uint64_t)sizeof(void *));
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "output queued (sum)", "", queued);
	ctl_printf(out, "%-22s %14" PRIu64 " %14s\n", "journal pending", rs.journal_pending, "");
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc allocated", "", alloc);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc active", "", active);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc metadata", "", metadata);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc resident", "", resident);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc mapped", "", mapped);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "jemalloc retained", "", retained);
	ctl_printf(out, "%-22s %14s %14" PRIu64 "\n", "in huge pages", "", huge);
	ctl_printf(out, "heap settled into huge pages %" PRIu64 " times (the last took %.1f ms)\n",
		   settles, (double)settle_ns / 1e6);
	if (paths)
		ctl_printf(out, "bytes per path (allocated / paths): %.1f\n", (double)alloc / (double)paths);
	return 0;
}

static int cmd_reload(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	(void)argv;
	if (argc)
		return ctl_error(out, "usage: reload");
	char err[1024];
	if (daemon_reload(d, err, sizeof(err)) != 0)
		return ctl_error(out, "%s (running configuration kept)", err);
	ctl_printf(out, "configuration reloaded\n");
	return 0;
}

/* ------------------------------------------------------------ refresh */

/*
 * `refresh PEER [ipv4|ipv6]`: route refresh "out" (RFC 2918) - the peer's
 * I/O thread sends it a ROUTE-REFRESH per negotiated family (or the one
 * given).  Refused when the session is down or the peer did not announce
 * the route-refresh capability.  Knows the session only from its snapshot
 * (struct peer, sess_snap), which may be stale by the time the request
 * arrives; the I/O thread checks again before sending.
 */
static int cmd_refresh(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	if (argc < 1 || argc > 2)
		return ctl_error(out, "usage: refresh PEER [ipv4|ipv6]");
	struct peer *p = find_peer(d, argv[0]);
	if (!p)
		return ctl_error(out, "no such peer: %s", argv[0]);
	unsigned fam = BGP_FAM_COUNT;
	if (argc == 2) {
		if (!strcmp(argv[1], "ipv4") || !strcmp(argv[1], "ipv4-unicast"))
			fam = BGP_FAM_IPV4;
		else if (!strcmp(argv[1], "ipv6") || !strcmp(argv[1], "ipv6-unicast"))
			fam = BGP_FAM_IPV6;
		else
			return ctl_error(out, "unknown family %s (ipv4 or ipv6)", argv[1]);
	}
	unsigned snap = atomic_load_explicit(&p->sess_snap, memory_order_acquire);
	if (!(snap & PEER_SNAP_UP))
		return ctl_error(out, "peer %s: session not Established", argv[0]);
	if (!(snap & PEER_SNAP_ROUTE_REFRESH))
		return ctl_error(out, "peer %s did not announce the route-refresh capability", argv[0]);
	if (fam != BGP_FAM_COUNT && !(snap & PEER_SNAP_FAM(fam)))
		return ctl_error(out, "peer %s: %s not negotiated", argv[0], argv[1]);
	io_thread_refresh_peer(p->thr, p, fam);
	ctl_printf(out, "route refresh requested from %s (%s)\n", argv[0],
		   fam == BGP_FAM_COUNT ? "every negotiated family" : fam == BGP_FAM_IPV4 ? "ipv4-unicast"
											: "ipv6-unicast");
	return 0;
}

/* ------------------------------------------------------------ dump routes (MRT) */

/*
 * `dump routes FILE [--addpath]`: the RIB as MRT TABLE_DUMP_V2 (RFC 6396),
 * peer index = peer id.  Prefixes where any path carries an ADD-PATH id (or
 * all, with --addpath) use the RFC 8050 ADD-PATH RIB subtypes.  The walk
 * takes 4096 prefixes per read-side section, like show routes.  The time a
 * path was received is not kept; "originated" is when its session came up.
 */
#define DUMP_REC_MAX (1u << 20)
#define DUMP_MAX_PATHS 4096

struct mrt_dump_ctx {
	struct daemon *d;
	FILE *f;
	uint8_t *buf;
	struct mrt_rib_entry *ent;
	bool force_addpath, failed;
	uint32_t seq;
	uint64_t paths, bytes, skipped;
	int64_t wall_minus_mono;         /* seconds */
};

static bool mrt_dump_cb(struct rib_node *n, const struct bgp_prefix *pfx, const struct rib_pathset *ps, void *arg)
{
	struct mrt_dump_ctx *c = arg;
	(void)n;
	if (!ps || !ps->n)
		return true;
	size_t k = ps->n < DUMP_MAX_PATHS ? ps->n : DUMP_MAX_PATHS;
	bool addpath = c->force_addpath;
	for (size_t i = 0; i < k; i++) {
		const struct rib_path *rp = &ps->p[i];
		const struct peer *p = c->d->peers[rp->peer];
		uint64_t up = p ? PEER_STAT(p->up_since_ns) / 1000000000ull : 0;
		c->ent[i] = (struct mrt_rib_entry){
			.peer_index = (uint16_t)rp->peer,
			.originated = (uint32_t)(c->wall_minus_mono + (int64_t)up),
			.path_id = rp->path_id,
			.nh = &rp->attr->nh,
			.attrs = rp->attr->blob,
			.attrs_len = rp->attr->blob_len,
		};
		addpath |= rp->path_id != 0;
	}
	size_t len = mrt_rib_encode(c->buf, DUMP_REC_MAX, (uint32_t)time(NULL), c->seq, pfx, addpath, c->ent, k);
	if (!len) {
		c->skipped++;
		return true;
	}
	if (fwrite(c->buf, 1, len, c->f) != len) {
		c->failed = true;
		return false;
	}
	c->seq++;
	c->paths += k;
	c->bytes += len;
	return true;
}

static int cmd_dump_routes(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct daemon *d = arg;
	bool force = false;
	const char *path = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--addpath"))
			force = true;
		else if (!path)
			path = argv[i];
		else
			path = NULL, i = argc;
	}
	if (!path || path[0] != '/')
		return ctl_error(out, "usage: dump routes /ABSOLUTE/FILE [--addpath]");
	FILE *f = fopen(path, "wbx");
	if (!f && errno == EEXIST)
		return ctl_error(out, "%s exists: not overwritten", path);
	if (!f)
		return ctl_error(out, "cannot create %s: %s", path, strerror(errno));
	uint64_t t0 = log_now_ns();
	struct mrt_dump_ctx c = { .d = d, .f = f, .force_addpath = force };
	c.buf = malloc(DUMP_REC_MAX);
	c.ent = malloc(DUMP_MAX_PATHS * sizeof(*c.ent));
	if (!c.buf || !c.ent)
		log_fatal("dump routes: out of memory");
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	c.wall_minus_mono = (int64_t)time(NULL) - (int64_t)(t0 / 1000000000ull);

	/* the peer index table: every peer slot, index = peer id */
	uint32_t np = daemon_n_peers(d);
	struct mrt_peer *pt = calloc(np ? np : 1, sizeof(*pt));
	if (!pt)
		log_fatal("dump routes: out of memory");
	for (uint32_t i = 0; i < np && i < 65535; i++) {
		const struct peer *p = d->peers[i];
		if (!p)
			continue;
		pt[i].addr = p->addr;
		pt[i].bgp_id = d->peerinfo[i].bgp_id;
		pt[i].asn = p->cfg.asn;
	}
	size_t len = mrt_peer_index_encode(c.buf, DUMP_REC_MAX, (uint32_t)time(NULL), d->router_id, "ricochet",
					   pt, np < 65535 ? np : 65535);
	free(pt);
	if (!len || fwrite(c.buf, 1, len, f) != len)
		c.failed = true;
	c.bytes += len;
	uint64_t prefixes = 0;
	for (unsigned fam = 0; fam < BGP_FAM_COUNT && !c.failed; fam++) {
		struct bgp_prefix cursor, last;
		bool started = false;
		for (;;) {
			rcu_read_lock();
			size_t k = rib_walk(d->rib, fam, NULL, started ? &cursor : NULL, 4096, mrt_dump_cb, &c, &last);
			rcu_read_unlock();
			prefixes += k;
			if (k < 4096 || c.failed)
				break;
			cursor = last;
			started = true;
		}
	}
	free(c.buf);
	free(c.ent);
	if (fclose(f) != 0)
		c.failed = true;
	if (c.failed)
		return ctl_error(out, "writing %s failed: %s", path, strerror(errno));
	double secs = (double)(log_now_ns() - t0) / 1e9;
	if (ctl_json(out)) {
		ctl_json_obj_open(out);
		ctl_json_kstr(out, "file", path);
		ctl_json_kuint(out, "prefixes", c.seq);
		ctl_json_kuint(out, "paths", c.paths);
		ctl_json_kuint(out, "bytes", c.bytes);
		ctl_json_kuint(out, "skipped", c.skipped);
		ctl_json_kdouble(out, "seconds", secs);
		ctl_json_obj_close(out);
	} else {
		ctl_printf(out, "%s: %" PRIu32 " prefixes, %" PRIu64 " paths, %" PRIu64 " bytes (TABLE_DUMP_V2) in %.3f s%s\n",
			   path, c.seq, c.paths, c.bytes, secs, c.skipped ? " (some prefixes too large, skipped)" : "");
	}
	(void)prefixes;
	return 0;
}

static void ctl_thread_init(void *arg)
{
	(void)arg;
	rcu_register_thread();
}

static void ctl_thread_fini(void *arg)
{
	(void)arg;
	rcu_unregister_thread();
}

void daemon_ctl_register(struct daemon *d)
{
	struct ctl_server *cs = ctl_server_new();
	ctl_server_set_hooks(cs, ctl_thread_init, ctl_thread_fini, d);
	ctl_register_help(cs, "show summary", "show summary [--json]", cmd_summary, d);
	ctl_register_help(cs, "show peers", "show peers [--json]", cmd_peers, d);
	ctl_register_help(cs, "show routes", "show routes [PREFIX|ADDRESS] [--all] [--json]", cmd_routes, d);
	ctl_register_help(cs, "show routes learned", "show routes learned PEER [--all] [--json]",
			  cmd_routes_learned, d);
	ctl_register_help(cs, "show routes advertised", "show routes advertised PEER [--all] [--json]",
			  cmd_routes_advertised, d);
	ctl_register_help(cs, "show memory", "show memory [--json]", cmd_memory, d);
	ctl_register_help(cs, "reload", "reload (re-read the configuration file)", cmd_reload, d);
	ctl_register_help(cs, "refresh", "refresh PEER [ipv4|ipv6] (send PEER a ROUTE-REFRESH)", cmd_refresh, d);
	ctl_register_help(cs, "dump routes", "dump routes /FILE [--addpath] (RIB as MRT TABLE_DUMP_V2)",
			  cmd_dump_routes, d);
	char err[256];
	pthread_mutex_lock(&d->cfg_lock);
	const char *path = d->cfg->ctl_socket;
	if (ctl_server_start(cs, path, 0600, err, sizeof(err)) != 0)
		log_err("control socket: %s (the CLI will not be available)", err);
	else
		log_info("control socket on %s", path);
	pthread_mutex_unlock(&d->cfg_lock);
	d->ctl = cs;
}
