/*
 * daemon.c - startup, the peer table, listeners and accept, reload, and
 * shutdown: the glue that owns every other part of ricochetd.
 *
 * Threads: the main thread runs daemon_start/daemon_run (signals, reloads);
 * daemon_accept runs on the I/O thread that holds the listening sockets;
 * both take cfg_lock and peers_lock (in that order) when they look at the
 * configuration or create peers.  Peers are never freed while the daemon
 * runs: an address that connected once keeps its slot (dynamic peers are
 * bounded by the configured ranges), which keeps peer ids stable for the
 * RIB and the reflection thread without reference counting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <inttypes.h>
#include <jemalloc/jemalloc.h>

#include "io/ctl.h"
#include "io/daemon.h"
#include "io/metrics.h"
#include "rib/mem.h"

struct daemon *g_daemon;

#define ADDR_HT_SIZE (1u << 17)          /* > 2 * RIB_MAX_PEERS */

static uint32_t *addr_ht;                /* peer id + 1, open addressing */

static uint32_t addr_hash(const struct bgp_addr *a)
{
	uint64_t h = 0xcbf29ce484222325ull ^ a->family;
	unsigned n = a->family == BGP_FAM_IPV6 ? 16 : 4;
	for (unsigned i = 0; i < n; i++)
		h = (h ^ a->addr[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static bool addr_eq(const struct bgp_addr *a, const struct bgp_addr *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, a->family == BGP_FAM_IPV6 ? 16 : 4);
}

struct peer *daemon_peer_by_addr(struct daemon *d, const struct bgp_addr *a)
{
	for (uint32_t i = addr_hash(a) & (ADDR_HT_SIZE - 1);; i = (i + 1) & (ADDR_HT_SIZE - 1)) {
		if (!addr_ht[i])
			return NULL;
		struct peer *p = d->peers[addr_ht[i] - 1];
		if (addr_eq(&p->addr, a))
			return p;
	}
}

static char *xstrdup(const char *s)
{
	if (!s)
		return NULL;
	char *c = strdup(s);
	if (!c)
		log_fatal("daemon: out of memory");
	return c;
}

/* Copy a configured peer so that it owns its strings (the cfg may be freed on reload). */
static void peer_cfg_copy(struct cfg_peer *dst, const struct cfg_peer *src)
{
	*dst = *src;
	dst->description = xstrdup(src->description);
	dst->md5_password = xstrdup(src->md5_password);
}

/* Under peers_lock (accept on I/O thread 0, start-up and reload on the main
 * thread): n_peers has no other writer, so its plain reads here are safe; the
 * release store at the end is for the readers without the lock. */
struct peer *daemon_peer_create(struct daemon *d, const struct cfg_peer *cp, const struct bgp_addr *addr,
				bool dynamic)
{
	if (d->n_peers >= RIB_MAX_PEERS - 1) {
		log_err("daemon: peer table full (%u peers)", d->n_peers);
		return NULL;
	}
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		log_fatal("daemon: out of memory");
	p->id = d->n_peers;
	p->dynamic = dynamic;
	p->configured = true;
	peer_cfg_copy(&p->cfg, cp);
	p->addr = *addr;
	/* fixed for the slot's life; the OPEN-dependent fields come with each session (peer.c) */
	d->peerinfo[p->id].addr = *addr;
	p->fd = -1;
	p->pending_fd = -1;
	pthread_mutex_init(&p->err_lock, NULL);
	/* small to start: most clients only send KEEPALIVEs; grows for busy feeders */
	p->rx_cap = 16 * 1024;
	p->rx = malloc(p->rx_cap);
	if (!p->rx)
		log_fatal("daemon: out of memory");
	cds_wfcq_init(&p->oq_head, &p->oq_tail);
	if (d->per_peer_threads) {
		struct io_thread *t = io_thread_create(d, d->n_thr);
		d->thr = realloc(d->thr, (d->n_thr + 1) * sizeof(*d->thr));
		if (!d->thr)
			log_fatal("daemon: out of memory");
		d->thr[d->n_thr++] = t;
		io_thread_start(t);
		p->thr = t;
	} else {
		/* thread 0 also accepts; spread peers over all threads */
		p->thr = d->thr[p->id % d->n_thr];
	}
	uint32_t i = addr_hash(addr) & (ADDR_HT_SIZE - 1);
	while (addr_ht[i])
		i = (i + 1) & (ADDR_HT_SIZE - 1);
	__atomic_store_n(&d->peers[p->id], p, __ATOMIC_RELEASE);
	addr_ht[i] = p->id + 1;
	/* publish: threads without peers_lock read n_peers with daemon_n_peers */
	__atomic_store_n(&d->n_peers, d->n_peers + 1, __ATOMIC_RELEASE);
	io_thread_add_peer(p->thr, p);
	return p;
}

/* ------------------------------------------------------------ accept */

static bool sockaddr_to_addr(const struct sockaddr_storage *ss, struct bgp_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		a->family = BGP_FAM_IPV4;
		memcpy(a->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *i6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(i6)) {
			a->family = BGP_FAM_IPV4;
			memcpy(a->addr, i6->s6_addr + 12, 4);
		} else {
			a->family = BGP_FAM_IPV6;
			memcpy(a->addr, i6->s6_addr, 16);
		}
		return true;
	}
	return false;
}

void daemon_accept(struct daemon *d, int lfd)
{
	static struct log_ratelimit rl;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("daemon: accept: %s", strerror(errno));
			return;
		}
		struct bgp_addr a;
		char as[64];
		if (!sockaddr_to_addr(&ss, &a)) {
			close(fd);
			continue;
		}
		bgp_addr_fmt(as, sizeof(as), &a);
		pthread_mutex_lock(&d->cfg_lock);
		pthread_mutex_lock(&d->peers_lock);
		struct peer *p = daemon_peer_by_addr(d, &a);
		const struct cfg_peer *sec = cfg_match_peer(d->cfg, &a);
		if (sec)
			sockopt_peer_socket(fd, sec, &a, false); /* GTSM; MD5 came from the listener */
		if (!p || !p->configured) {
			const struct cfg_peer *cp = cfg_match_peer(d->cfg, &a);
			if (cp && p) {
				p->configured = true; /* a range covers it again */
			} else if (cp) {
				p = daemon_peer_create(d, cp, &a, cp->is_range);
			} else {
				p = NULL;
			}
		}
		pthread_mutex_unlock(&d->peers_lock);
		pthread_mutex_unlock(&d->cfg_lock);
		if (!p) {
			uint32_t sup = 0;
			if (log_ratelimit_ok(&rl, 1000000000ull, &sup))
				log_warn("daemon: connection from %s refused: not a configured peer or range "
					 "[%u similar suppressed]", as, sup);
			close(fd);
			continue;
		}
		io_thread_accepted(p->thr, p, fd);
	}
}

static int listen_on(const struct cfg_endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t sl = io_sockaddr(&ss, &ep->addr, ep->port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------ lifecycle */

static unsigned ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int daemon_start(struct daemon *d, struct cfg *cfg, const char *cfg_path)
{
	g_daemon = d;
	d->cfg = cfg;
	d->hugepages_off = cfg->hugepages_off;
	d->cfg_path = cfg_path ? xstrdup(cfg_path) : NULL;
	d->router_id = cfg->router_id;
	d->asn = cfg->asn;
	d->cluster_id = cfg->cluster_id;
	__atomic_store_n(&d->max_routes, cfg->max_routes, __ATOMIC_RELAXED);
	d->start_ns = log_now_ns();
	pthread_mutex_init(&d->cfg_lock, NULL);
	pthread_mutex_init(&d->peers_lock, NULL);
	addr_ht = calloc(ADDR_HT_SIZE, sizeof(*addr_ht));
	d->peerinfo = calloc(RIB_MAX_PEERS, sizeof(*d->peerinfo));
	d->peers = calloc(RIB_MAX_PEERS, sizeof(*d->peers));
	if (!addr_ht || !d->peerinfo || !d->peers)
		log_fatal("daemon: out of memory");

	d->attrs = attr_table_create();
	/* ADD-PATH senders need the journal to watch their top N paths, not just the best */
	unsigned jdepth = 0;
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].addpath_send > jdepth)
			jdepth = cfg->peers[i].addpath_send;
	for (size_t i = 0; i < cfg->n_ranges; i++)
		if (cfg->ranges[i].addpath_send > jdepth)
			jdepth = cfg->ranges[i].addpath_send;
	struct rib_opts ro = {
		.journal_depth = jdepth > 8 ? 8 : jdepth,
		.decide = { .always_compare_med = cfg->always_compare_med,
			    .deterministic_med = cfg->deterministic_med },
		.attrs = d->attrs,
		.peers = d->peerinfo,
		/* The daemon's one LPM user is `show route ADDRESS`: the /24 tables
		 * (2 KiB per /16, 110 MiB for a table spread like the Internet's)
		 * would only speed up finding a withdrawn /16../24, which the
		 * batched tree descent already does well (docs/BENCHMARKS.md,
		 * "Peak RSS"). */
		.lpm_index_min = RIB_LPM_INDEX_OFF,
	};
	d->rib = rib_create(&ro);
	struct refl_opts fo = {
		.rib = d->rib, .attrs = d->attrs, .peers = d->peers, .router_id = cfg->router_id,
		.cluster_id = cfg->cluster_id, .local_as = cfg->asn, .batch = 65536,
	};
	d->refl = refl_create(&fo);
	refl_start(d->refl);
	metrics_start(d);                /* metrics endpoint, mrt-dump, BMP (io/metrics.h) */

	/* I/O threads: a pool (default: one per CPU), or one per peer plus an acceptor */
	d->per_peer_threads = cfg->io_threads == CFG_IOT_PER_PEER;
	unsigned n = d->per_peer_threads ? 1
		     : cfg->io_threads == CFG_IOT_COUNT && cfg->io_threads_count ? cfg->io_threads_count
										     : ncpus();
	d->thr = calloc(n, sizeof(*d->thr));
	for (unsigned i = 0; i < n; i++) {
		d->thr[i] = io_thread_create(d, i);
		io_thread_start(d->thr[i]);
	}
	d->n_thr = n;

	d->listen_fds = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof(int));
	for (size_t i = 0; i < cfg->n_listen; i++) {
		char as[64];
		bgp_addr_fmt(as, sizeof(as), &cfg->listen[i].addr);
		int fd = listen_on(&cfg->listen[i]);
		if (fd < 0) {
			log_err("daemon: cannot listen on %s port %u: %s", as, cfg->listen[i].port, strerror(errno));
			return -1;
		}
		d->listen_fds[d->n_listen++] = fd;
		sockopt_listener_keys(fd, cfg, NULL);
		io_thread_listen(d->thr[0], fd, (unsigned)i);
		log_info("listening on %s port %u", as, cfg->listen[i].port);
	}

	pthread_mutex_lock(&d->peers_lock);
	for (size_t i = 0; i < cfg->n_peers; i++)
		daemon_peer_create(d, &cfg->peers[i], &cfg->peers[i].addr, false);
	pthread_mutex_unlock(&d->peers_lock);
	char rid[32];
	bgp_id_fmt(rid, sizeof(rid), cfg->router_id);
	log_info("ricochetd started: router-id %s, AS%u, %zu peers, %zu ranges, %u I/O thread%s%s", rid,
		 cfg->asn, cfg->n_peers, cfg->n_ranges, d->n_thr, d->n_thr == 1 ? "" : "s",
		 d->per_peer_threads ? " (per-peer mode)" : "");
	return 0;
}

int daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	if (!d->cfg_path) {
		snprintf(err, errlen, "running on the built-in configuration: nothing to reload");
		return -1;
	}
	struct cfg *nc = cfg_load(d->cfg_path, err, errlen);
	if (!nc) {
		log_err("reload failed, keeping the running configuration: %s", err);
		return -1;
	}
	if (nc->router_id != d->router_id || nc->asn != d->asn || nc->cluster_id != d->cluster_id)
		log_warn("reload: router-id, asn and cluster-id changes need a restart; ignored");
	pthread_mutex_lock(&d->cfg_lock);
	pthread_mutex_lock(&d->peers_lock);
	unsigned kept = 0, reset = 0, removed = 0, added = 0;
	/* plain n_peers: peers_lock held, no peer can be added meanwhile */
	for (uint32_t i = 0; i < d->n_peers; i++) {
		struct peer *p = d->peers[i];
		const struct cfg_peer *np = cfg_match_peer(nc, &p->addr);
		if (!np) {
			if (p->configured) {
				p->configured = false;
				io_thread_close_peer(p->thr, p, BGP_CEASE_PEER_DECONFIG);
				removed++;
			}
			continue;
		}
		if (!p->configured || cfg_peer_needs_reset(&p->cfg, np)) {
			/* the owning thread applies the new settings when it restarts the session */
			struct cfg_peer *copy = malloc(sizeof(*copy));
			if (!copy)
				log_fatal("daemon: out of memory");
			peer_cfg_copy(copy, np);
			p->configured = true;
			io_thread_reconfig_peer(p->thr, p, copy);
			reset++;
		} else {
			kept++;
		}
	}
	for (size_t i = 0; i < nc->n_peers; i++) {
		if (!daemon_peer_by_addr(d, &nc->peers[i].addr)) {
			daemon_peer_create(d, &nc->peers[i], &nc->peers[i].addr, false);
			added++;
		}
	}
	struct cfg *old = d->cfg;
	for (size_t i = 0; i < d->n_listen; i++)
		sockopt_listener_keys(d->listen_fds[i], nc, old);
	d->cfg = nc;
	__atomic_store_n(&d->max_routes, nc->max_routes, __ATOMIC_RELAXED);
	__atomic_store_n(&d->hugepages_off, nc->hugepages_off, __ATOMIC_RELAXED);
	log_set_level(nc->log_level);
	pthread_mutex_unlock(&d->peers_lock);
	pthread_mutex_unlock(&d->cfg_lock);
	cfg_free(old);
	log_info("configuration reloaded from %s: %u sessions kept, %u reset, %u removed, %u added",
		 d->cfg_path, kept, reset, removed, added);
	return 0;
}

void daemon_je_refresh(void)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	mallctl("epoch", &epoch, &sz, &epoch, sz);
}

uint64_t daemon_je_stat(const char *name)
{
	size_t v = 0, sz = sizeof(v);
	if (mallctl(name, &v, &sz, NULL, 0) != 0)
		return 0;
	return v;
}

/*
 * Once a second on the main thread: when the RIB has not changed for
 * SETTLE_QUIET_TICKS seconds (no UPDATE interned, no path added or removed,
 * nothing waiting for the reflection thread) and the heap has grown by
 * SETTLE_GROWTH since the last settle, collapse its resident ranges into
 * huge pages (rib/mem.h).  Quiet, because collapsing memory that is being
 * written makes the writers wait on it; after growth, because a settled
 * heap stays settled until new memory is faulted in.  The main thread has
 * nothing else to do but signals, and a SIGHUP reload waits at most one settle.
 */
#define SETTLE_QUIET_TICKS 2
#define SETTLE_GROWTH      (64ull << 20)

static void settle_tick(struct daemon *d)
{
	struct daemon_settle *s = &d->settle;
	/* not d->cfg: the control thread's `reload` swaps and frees it */
	if (__atomic_load_n(&d->hugepages_off, __ATOMIC_RELAXED) || s->unsupported)
		return;
	struct rib_stats rs;
	struct attr_stats as;
	rib_stats(d->rib, &rs);
	attr_table_stats(d->attrs, &as);
	uint64_t paths = rs.paths[BGP_FAM_IPV4] + rs.paths[BGP_FAM_IPV6];
	bool same = as.interns == s->interns && paths == s->paths && rs.nodes == s->nodes &&
		    !rs.journal_pending;
	s->quiet = same ? s->quiet + 1 : 0;
	s->interns = as.interns;
	s->paths = paths;
	s->nodes = rs.nodes;
	daemon_je_refresh();
	uint64_t res = daemon_je_stat("stats.resident");
	if (res < s->floor)
		s->floor = res;
	if (s->quiet < SETTLE_QUIET_TICKS || res < s->floor + SETTLE_GROWTH)
		return;
	struct mem_settle_result r;
	if (mem_settle(MEM_SETTLE_MIN_RESIDENT, &r) < 0) {
		s->unsupported = true;
		log_info("hugepages: every range was refused (%s: a kernel before 6.1, transparent "
			 "huge pages set to never, or a heap marked no-huge-pages); not trying again",
			 strerror(r.unsupported));
		return;
	}
	daemon_je_refresh();
	s->floor = daemon_je_stat("stats.resident");
	__atomic_store_n(&s->last_ns, r.ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->runs, 1, __ATOMIC_RELAXED);
	log_info("hugepages: RIB quiet, heap settled in %.1f ms: %" PRIu64 " MiB in huge pages "
		 "(was %" PRIu64 "); of %" PRIu64 " 2 MiB ranges, %" PRIu64 " too sparse, %" PRIu64
		 " refused", (double)r.ns / 1e6, r.huge_after >> 20, r.huge_before >> 20, r.ranges,
		 r.sparse, r.refused);
}

void daemon_run(struct daemon *d)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	while (!d->stop) {
		struct timespec ts = { 1, 0 };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGHUP || d->reload) {
			char err[512];
			d->reload = 0;
			daemon_reload(d, err, sizeof(err));
		} else if (sig == SIGINT || sig == SIGTERM) {
			log_info("signal %d: shutting down", sig);
			d->stop = 1;
		} else {
			settle_tick(d);
		}
	}
}

void daemon_stop(struct daemon *d)
{
	if (d->ctl)
		ctl_server_stop(d->ctl);
	/* without peers_lock: I/O thread 0 may still accept a dynamic peer
	 * (daemon_peer_create), so n_peers is read with daemon_n_peers, the
	 * peers published so far.  One created after this read gets no Cease;
	 * its session ends with its thread below. */
	for (uint32_t i = 0, n = daemon_n_peers(d); i < n; i++)
		io_thread_close_peer(d->peers[i]->thr, d->peers[i], BGP_CEASE_ADMIN_SHUTDOWN);
	usleep(200 * 1000);
	for (unsigned i = 0; i < d->n_thr; i++)
		io_thread_stop(d->thr[i]);
	metrics_stop();                  /* BMP Termination goes out after the Peer Downs */
	refl_stop(d->refl);
	for (size_t i = 0; i < d->n_listen; i++)
		close(d->listen_fds[i]);
}
