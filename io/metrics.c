/*
 * metrics.c - the Prometheus endpoint and the propagation-latency histograms.
 *
 * Why a hand-written HTTP server: one request shape (GET /metrics), one
 * client at a time, a bounded request (METRICS_REQ_MAX) read with a timeout,
 * and "Connection: close" - a few dozen lines of plain sockets and poll(2),
 * no dependency, and nothing a scraper can do holds any lock the data path
 * needs.  The "metrics" thread renders the whole page into one buffer per
 * scrape from racy reads of per-peer counters and atomic statistics.
 *
 * Latency: the reflection thread stamps each chunk with the receive time of
 * the oldest change in its batch (rib_journal_batch_stamp); the I/O thread
 * that writes the chunk's last byte to a member calls
 * metrics_observe_latency().  Buckets are fixed (1-2-5 steps from 10 us to
 * 20 s) and counted with relaxed atomics, per update group id (ids above
 * METRICS_GROUPS - 1 share the last slot).
 *
 * Threads: metrics_start on the main thread; the server on its own thread
 * (RCU-registered); metrics_observe_latency on any I/O thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/bmp.h"
#include "io/daemon.h"
#include "io/metrics.h"
#include "io/mrtdump.h"
#include "rib/mem.h"

#define METRICS_REQ_MAX   8192
#define METRICS_IO_MS     2000
#define METRICS_GROUPS    64

/* ------------------------------------------------------------ histograms */

static const double lat_bounds[] = {
	10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3,
	100e-3, 200e-3, 500e-3, 1, 2, 5, 10, 20,
};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

struct lat_hist {
	_Atomic uint64_t b[NBOUNDS + 1];     /* last: above every bound */
	_Atomic uint64_t sum_ns, count;
};
static struct lat_hist hist[METRICS_GROUPS];
static uint64_t bound_ns[NBOUNDS];

void metrics_observe_latency(uint32_t group, uint64_t rx_ns)
{
	uint64_t now = log_now_ns();
	uint64_t d = now > rx_ns ? now - rx_ns : 0;
	struct lat_hist *h = &hist[group < METRICS_GROUPS ? group : METRICS_GROUPS - 1];
	unsigned i = 0;
	while (i < NBOUNDS && d > bound_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, d, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ rendering */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0);
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			log_fatal("metrics: out of memory");
	}
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample. */
static void metric(struct sbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	family(b, name, type, help);
	sb_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* One line per peer for a per-peer metric; labels are built once per scrape. */
struct plabel {
	struct peer *p;
	char l[160];
};

typedef uint64_t (*peer_val_fn)(const struct peer *p);
static uint64_t pv_msgs_in(const struct peer *p) { return PEER_STAT(p->c.msgs_in); }
static uint64_t pv_msgs_out(const struct peer *p) { return PEER_STAT(p->c.msgs_out); }
static uint64_t pv_bytes_in(const struct peer *p) { return PEER_STAT(p->c.bytes_in); }
static uint64_t pv_bytes_out(const struct peer *p) { return PEER_STAT(p->c.bytes_out); }
static uint64_t pv_updates_in(const struct peer *p) { return PEER_STAT(p->c.updates_in); }
static uint64_t pv_pfx_in(const struct peer *p) { return PEER_STAT(p->c.prefixes_in); }
static uint64_t pv_wdr_in(const struct peer *p) { return PEER_STAT(p->c.withdraws_in); }
static uint64_t pv_pfx_out(const struct peer *p) { return PEER_STAT(p->c.prefixes_out); }
static uint64_t pv_taw(const struct peer *p) { return PEER_STAT(p->c.treat_as_withdraw); }
static uint64_t pv_loops(const struct peer *p) { return PEER_STAT(p->c.loops_dropped); }
static uint64_t pv_oq(const struct peer *p)
{
	return atomic_load_explicit(&((struct peer *)p)->oq_bytes, memory_order_relaxed);
}

static void per_peer(struct sbuf *b, const struct plabel *pl, size_t n, const char *name, const char *type,
		     const char *help, peer_val_fn fn)
{
	family(b, name, type, help);
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s{%s} %" PRIu64 "\n", name, pl[i].l, fn(pl[i].p));
}

static void render_peers(struct sbuf *b, struct daemon *d, uint64_t now)
{
	uint32_t np = daemon_n_peers(d);
	struct plabel *pl = calloc(np ? np : 1, sizeof(*pl));
	if (!pl)
		log_fatal("metrics: out of memory");
	size_t n = 0;
	unsigned established = 0;
	for (uint32_t i = 0; i < np; i++) {
		struct peer *p = rcu_dereference(d->peers[i]);
		if (!p)
			continue;
		char a[64];
		bgp_addr_fmt(a, sizeof(a), &p->addr);
		pl[n].p = p;
		snprintf(pl[n].l, sizeof(pl[n].l), "peer=\"%s\",asn=\"%u\",role=\"%s\"", a, p->cfg.asn,
			 cfg_role_name(p->cfg.role));
		if (atomic_load_explicit(&p->state, memory_order_relaxed) == FSM_ESTABLISHED)
			established++;
		n++;
	}
	family(b, "ricochet_peers", "gauge", "Known peers (configured and dynamic).");
	sb_printf(b, "ricochet_peers %zu\n", n);
	family(b, "ricochet_peers_established", "gauge", "Peers whose session is Established.");
	sb_printf(b, "ricochet_peers_established %u\n", established);

	family(b, "ricochet_peer_state", "gauge",
	       "FSM state (1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established).");
	for (size_t i = 0; i < n; i++) {
		int st = atomic_load_explicit(&pl[i].p->state, memory_order_relaxed);
		sb_printf(b, "ricochet_peer_state{%s} %d\n", pl[i].l, st + 1);
	}
	family(b, "ricochet_peer_up", "gauge", "1 if the session is Established.");
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "ricochet_peer_up{%s} %d\n", pl[i].l,
			  atomic_load_explicit(&pl[i].p->state, memory_order_relaxed) == FSM_ESTABLISHED);
	family(b, "ricochet_peer_uptime_seconds", "gauge", "Time since the session came up (0 when down).");
	for (size_t i = 0; i < n; i++) {
		const struct peer *p = pl[i].p;
		uint64_t up = PEER_STAT(p->up_since_ns);
		bool est = atomic_load_explicit(&pl[i].p->state, memory_order_relaxed) == FSM_ESTABLISHED;
		sb_printf(b, "ricochet_peer_uptime_seconds{%s} %.3f\n", pl[i].l,
			  est && up && now > up ? (double)(now - up) / 1e9 : 0.0);
	}
	family(b, "ricochet_peer_prefixes_accepted", "gauge", "Prefixes in the RIB from this peer.");
	for (size_t i = 0; i < n; i++)
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			sb_printf(b, "ricochet_peer_prefixes_accepted{%s,family=\"%s\"} %" PRIu64 "\n", pl[i].l,
				  f == BGP_FAM_IPV4 ? "ipv4-unicast" : "ipv6-unicast",
				  rib_peer_prefixes(d->rib, pl[i].p->id, f));
	per_peer(b, pl, n, "ricochet_peer_prefixes_received_total", "counter",
		 "Prefixes announced by the peer (every announcement counts).", pv_pfx_in);
	per_peer(b, pl, n, "ricochet_peer_withdrawals_received_total", "counter",
		 "Prefixes withdrawn by the peer.", pv_wdr_in);
	per_peer(b, pl, n, "ricochet_peer_prefixes_advertised_total", "counter",
		 "Prefixes announced or withdrawn towards the peer (written to its socket).", pv_pfx_out);
	per_peer(b, pl, n, "ricochet_peer_updates_received_total", "counter", "UPDATE messages received.",
		 pv_updates_in);
	per_peer(b, pl, n, "ricochet_peer_messages_received_total", "counter", "BGP messages received.",
		 pv_msgs_in);
	per_peer(b, pl, n, "ricochet_peer_messages_sent_total", "counter",
		 "Control messages sent (OPEN, KEEPALIVE, NOTIFICATION; UPDATEs are counted in bytes).",
		 pv_msgs_out);
	per_peer(b, pl, n, "ricochet_peer_bytes_received_total", "counter", "Bytes read from the socket.",
		 pv_bytes_in);
	per_peer(b, pl, n, "ricochet_peer_bytes_sent_total", "counter", "Bytes written to the socket.",
		 pv_bytes_out);
	per_peer(b, pl, n, "ricochet_peer_treat_as_withdraw_total", "counter",
		 "UPDATEs handled as withdrawals (RFC 7606).", pv_taw);
	per_peer(b, pl, n, "ricochet_peer_loops_dropped_total", "counter",
		 "UPDATEs dropped for ORIGINATOR_ID / CLUSTER_LIST loops.", pv_loops);
	per_peer(b, pl, n, "ricochet_peer_output_queue_bytes", "gauge",
		 "Bytes queued for the peer and not yet written.", pv_oq);
	static const char *dirs[2] = { "received", "sent" };
	for (unsigned dir = 0; dir < 2; dir++) {
		char name[96];
		snprintf(name, sizeof(name), "ricochet_peer_notifications_%s_total", dirs[dir]);
		family(b, name, "counter", "NOTIFICATION messages by error code (0: unknown code).");
		for (size_t i = 0; i < n; i++) {
			const struct peer *p = pl[i].p;
			for (unsigned c = 0; c <= 8; c++) {
				uint32_t v = dir ? PEER_STAT(p->c.notif_out_code[c]) : PEER_STAT(p->c.notif_in_code[c]);
				if (v || c == BGP_ERR_CEASE)
					sb_printf(b, "%s{%s,code=\"%u\"} %u\n", name, pl[i].l, c, v);
			}
		}
	}
	free(pl);
}

static void render_hist(struct sbuf *b)
{
	family(b, "ricochet_propagation_latency_seconds", "histogram",
	       "Time from an UPDATE received to the UPDATE written to a client, per update group.");
	for (unsigned g = 0; g < METRICS_GROUPS; g++) {
		struct lat_hist *h = &hist[g];
		uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
		if (!count)
			continue;
		uint64_t cum = 0;
		for (unsigned i = 0; i < NBOUNDS; i++) {
			cum += atomic_load_explicit(&h->b[i], memory_order_relaxed);
			sb_printf(b, "ricochet_propagation_latency_seconds_bucket{group=\"%u\",le=\"%g\"} %" PRIu64 "\n",
				  g, lat_bounds[i], cum);
		}
		cum += atomic_load_explicit(&h->b[NBOUNDS], memory_order_relaxed);
		/* count is bumped last by observers: never report fewer than the buckets hold */
		if (cum > count)
			count = cum;
		sb_printf(b, "ricochet_propagation_latency_seconds_bucket{group=\"%u\",le=\"+Inf\"} %" PRIu64 "\n",
			  g, count);
		sb_printf(b, "ricochet_propagation_latency_seconds_sum{group=\"%u\"} %.9f\n", g,
			  (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
		sb_printf(b, "ricochet_propagation_latency_seconds_count{group=\"%u\"} %" PRIu64 "\n", g, count);
	}
}

char *metrics_render(struct daemon *d, size_t *len)
{
	struct sbuf b = { .cap = 64 * 1024 };
	b.p = malloc(b.cap);
	if (!b.p)
		log_fatal("metrics: out of memory");
	uint64_t now = log_now_ns();
	family(&b, "ricochet_uptime_seconds", "gauge", "Time since ricochetd started.");
	sb_printf(&b, "ricochet_uptime_seconds %.3f\n", (double)(now - d->start_ns) / 1e9);

	rcu_read_lock();
	render_peers(&b, d, now);
	rcu_read_unlock();

	struct rib_stats rs;
	struct attr_stats as;
	rib_stats(d->rib, &rs);
	attr_table_stats(d->attrs, &as);
	static const char *fname[BGP_FAM_COUNT] = { "ipv4-unicast", "ipv6-unicast" };
	family(&b, "ricochet_rib_prefixes", "gauge", "Prefixes with at least one path.");
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		sb_printf(&b, "ricochet_rib_prefixes{family=\"%s\"} %" PRIu64 "\n", fname[f], rs.prefixes[f]);
	family(&b, "ricochet_rib_paths", "gauge", "Paths (prefix, peer, path id).");
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		sb_printf(&b, "ricochet_rib_paths{family=\"%s\"} %" PRIu64 "\n", fname[f], rs.paths[f]);
	metric(&b, "ricochet_rib_tree_nodes", "gauge",
	       "Radix tree nodes, glue nodes included.", rs.nodes);
	metric(&b, "ricochet_rib_journal_pending", "gauge",
	       "Changed prefixes waiting for reflection.", rs.journal_pending);
	metric(&b, "ricochet_attribute_sets", "gauge",
	       "Distinct interned path attribute sets.", as.sets);
	metric(&b, "ricochet_attribute_interns_total", "counter",
	       "Attribute set lookups.", as.interns);
	metric(&b, "ricochet_attribute_intern_hits_total", "counter",
	       "Lookups that found an existing set.", as.hits);
	family(&b, "ricochet_memory_bytes", "gauge", "Bytes held per object type.");
	sb_printf(&b, "ricochet_memory_bytes{object=\"tree_nodes\"} %" PRIu64 "\n", rs.node_bytes);
	sb_printf(&b, "ricochet_memory_bytes{object=\"path_sets\"} %" PRIu64 "\n", rs.pathset_bytes);
	sb_printf(&b, "ricochet_memory_bytes{object=\"peer_index\"} %" PRIu64 "\n", rs.peer_index_bytes);
	sb_printf(&b, "ricochet_memory_bytes{object=\"attribute_sets\"} %" PRIu64 "\n", as.bytes);
	sb_printf(&b, "ricochet_memory_bytes{object=\"attribute_hash\"} %" PRIu64 "\n",
		  as.buckets * (uint64_t)sizeof(struct cds_lfht_node));
	daemon_je_refresh();
	metric(&b, "ricochet_jemalloc_allocated_bytes", "gauge",
	       "jemalloc stats.allocated.", daemon_je_stat("stats.allocated"));
	metric(&b, "ricochet_jemalloc_resident_bytes", "gauge",
	       "jemalloc stats.resident.", daemon_je_stat("stats.resident"));
	metric(&b, "ricochet_hugepage_bytes", "gauge",
	       "Process memory in transparent huge pages (AnonHugePages).", mem_huge_bytes());
	metric(&b, "ricochet_heap_settles_total", "counter",
	       "Times a quiet RIB's heap was collapsed into huge pages.",
	       __atomic_load_n(&d->settle.runs, __ATOMIC_RELAXED));

	struct refl_stats st;
	refl_get_stats(d->refl, &st);
	metric(&b, "ricochet_reflect_batches_total", "counter",
	       "Journal batches reflected.", st.batches);
	metric(&b, "ricochet_reflect_prefixes_total", "counter",
	       "Prefixes taken from the journal.", st.prefixes);
	metric(&b, "ricochet_reflect_updates_encoded_total", "counter",
	       "UPDATE runs encoded (once per group).", st.updates_encoded);
	metric(&b, "ricochet_reflect_bytes_encoded_total", "counter",
	       "Bytes of UPDATEs encoded.", st.bytes_encoded);
	metric(&b, "ricochet_reflect_chunks_total", "counter",
	       "Shared output chunks produced.", st.chunks);
	metric(&b, "ricochet_reflect_dumps_total", "counter",
	       "Table dumps completed.", st.dumps_done);
	metric(&b, "ricochet_reflect_dump_live_skips_total", "counter",
	       "Prefixes a table dump left out because the members were sent them live during it.",
	       st.dump_live_skips);
	metric(&b, "ricochet_reflect_addpath_ids_spilled_total", "counter",
	       "ADD-PATH ids a full per-prefix slot kept in its spill (dumps between live changes).", st.adv_spilled);
	metric(&b, "ricochet_reflect_slow_reader_pauses_total", "counter",
	       "Members paused for reading slowly (resynchronised later).", st.pauses);
	metric(&b, "ricochet_reflect_addpath_group_pauses_total", "counter",
	       "ADD-PATH update groups paused for a slow member.", st.group_pauses);
	metric(&b, "ricochet_reflect_addpath_deferred", "gauge",
	       "Prefixes ADD-PATH groups deferred while paused, not yet sent.", st.ap_deferred);
	metric(&b, "ricochet_update_groups", "gauge", "Update groups.", st.groups);
	family(&b, "ricochet_reflect_last_batch_seconds", "gauge", "Duration of the last batch.");
	sb_printf(&b, "ricochet_reflect_last_batch_seconds %.9f\n", (double)st.last_batch_ns / 1e9);

	render_hist(&b);

	if (mrtdump_on()) {
		struct mrtdump_stats ms;
		mrtdump_get_stats(&ms);
		family(&b, "ricochet_mrt_records_total", "counter", "BGP4MP records made (mrt-dump).");
		sb_printf(&b, "ricochet_mrt_records_total %" PRIu64 "\n", ms.records);
		family(&b, "ricochet_mrt_bytes_written_total", "counter", "MRT bytes written (mrt-dump).");
		sb_printf(&b, "ricochet_mrt_bytes_written_total %" PRIu64 "\n", ms.bytes);
	}
	if (bmp_on()) {
		struct bmp_stats bs;
		bmp_get_stats(&bs);
		family(&b, "ricochet_bmp_messages_total", "counter", "BMP messages by outcome.");
		sb_printf(&b, "ricochet_bmp_messages_total{outcome=\"sent\"} %" PRIu64 "\n", bs.sent);
		sb_printf(&b, "ricochet_bmp_messages_total{outcome=\"dropped\"} %" PRIu64 "\n", bs.dropped);
		family(&b, "ricochet_bmp_queue_bytes", "gauge", "Bytes waiting for the BMP station.");
		sb_printf(&b, "ricochet_bmp_queue_bytes %" PRIu64 "\n", bs.queue_bytes);
		family(&b, "ricochet_bmp_connected", "gauge", "1 while connected to the station.");
		sb_printf(&b, "ricochet_bmp_connected %d\n", bs.connected ? 1 : 0);
	}
	*len = b.len;
	return b.p;
}

/* ------------------------------------------------------------ HTTP */

struct msrv {
	struct daemon *d;
	int lfd;
	pthread_t thr;
	atomic_int stop;
};
static struct msrv *srv;

static bool write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			if (poll(&pf, 1, METRICS_IO_MS) <= 0)
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

static void reply(int fd, const char *status, const char *ctype, const char *body, size_t blen)
{
	char h[256];
	int n = snprintf(h, sizeof(h),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, ctype, blen);
	if (write_all(fd, h, (size_t)n) && body)
		write_all(fd, body, blen);
}

static void serve(struct msrv *s, int fd)
{
	char req[METRICS_REQ_MAX + 1];
	size_t len = 0;
	uint64_t deadline = log_now_ns() + (uint64_t)METRICS_IO_MS * 1000000ull;
	while (!memmem(req, len, "\r\n\r\n", 4) && !memmem(req, len, "\n\n", 2)) {
		if (len == METRICS_REQ_MAX) {
			const char *m = "request too large\n";
			reply(fd, "431 Request Header Fields Too Large", "text/plain", m, strlen(m));
			return;
		}
		uint64_t now = log_now_ns();
		if (now >= deadline)
			return;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, (int)((deadline - now) / 1000000ull) + 1) <= 0)
			return;
		ssize_t r = recv(fd, req + len, METRICS_REQ_MAX - len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return;
		len += (size_t)r;
	}
	req[len] = '\0';
	char method[16], path[256];
	if (sscanf(req, "%15s %255s", method, path) != 2) {
		reply(fd, "400 Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	bool head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		reply(fd, "405 Method Not Allowed", "text/plain", "GET /metrics only\n", 18);
		return;
	}
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	if (strcmp(path, "/metrics")) {
		reply(fd, "404 Not Found", "text/plain", "GET /metrics only\n", 18);
		return;
	}
	size_t blen;
	char *body = metrics_render(s->d, &blen);
	char h[256];
	int n = snprintf(h, sizeof(h),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	if (write_all(fd, h, (size_t)n) && !head)
		write_all(fd, body, blen);
	free(body);
}

static void *metrics_main(void *arg)
{
	struct msrv *s = arg;
	rcu_register_thread();
	while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
		struct pollfd pf = { .fd = s->lfd, .events = POLLIN };
		if (poll(&pf, 1, 500) <= 0)
			continue;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(s, fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	rcu_unregister_thread();
	return NULL;
}

static int listen_ep(const struct cfg_endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t sl = io_sockaddr(&ss, &ep->addr, ep->port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void metrics_stop(void)
{
	if (srv) {
		atomic_store_explicit(&srv->stop, 1, memory_order_release);
		pthread_join(srv->thr, NULL);
		close(srv->lfd);
		srv = NULL;
	}
	if (bmp_on())
		bmp_stop();
	if (mrtdump_on())
		mrtdump_stop();
}

void metrics_start(struct daemon *d)
{
	const struct cfg *cfg = d->cfg;
	for (unsigned i = 0; i < NBOUNDS; i++)
		bound_ns[i] = (uint64_t)(lat_bounds[i] * 1e9 + 0.5);
	if (cfg->has_metrics) {
		char a[64];
		bgp_addr_fmt(a, sizeof(a), &cfg->metrics.addr);
		int fd = listen_ep(&cfg->metrics);
		if (fd < 0) {
			log_err("metrics: cannot listen on %s port %u: %s (no metrics)", a, cfg->metrics.port,
				strerror(errno));
		} else {
			srv = calloc(1, sizeof(*srv));
			if (!srv)
				log_fatal("metrics: out of memory");
			srv->d = d;
			srv->lfd = fd;
			if (pthread_create(&srv->thr, NULL, metrics_main, srv))
				log_fatal("metrics: cannot start thread: %s", strerror(errno));
			pthread_setname_np(srv->thr, "metrics");
			log_info("metrics on http://%s%s%s:%u/metrics", cfg->metrics.addr.family == BGP_FAM_IPV6 ? "[" : "",
				 a, cfg->metrics.addr.family == BGP_FAM_IPV6 ? "]" : "", cfg->metrics.port);
		}
	}
	if (cfg->mrt_dir)
		mrtdump_start(cfg->mrt_dir);
	if (cfg->has_bmp)
		bmp_start(d, &cfg->bmp);
}
