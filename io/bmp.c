/*
 * bmp.c - BGP Monitoring Protocol (RFC 7854) exporter to one station.
 *
 * Why it is built this way: the data path must never wait for a monitoring
 * station.  Hooks on the I/O threads build each BMP message (a per-peer
 * header and a copy of the UPDATE, one malloc per message, never per prefix)
 * and push it on a wait-free multi-producer queue bounded in bytes; past
 * BMP_QUEUE_MAX the message is dropped and counted.  While no station is
 * connected the hooks only track which sessions are up.  The "bmp" thread
 * owns the socket: it connects (retrying every few seconds), sends Initiation
 * and a Peer Up for every session that is up (under up_mu, which also orders
 * the hooks' Peer Up/Down against that replay), then drains the queue, adds
 * Statistics Reports every BMP_STATS_INTERVAL seconds, and at exit sends
 * what is still queued (daemon_stop has closed every session by then, so the
 * Peer Downs are in the queue) and Termination, giving a station that does
 * not read a few seconds (BMP_STOP_GRACE_NS) before it gives up.
 *
 * Threads: hooks on I/O threads; everything else on the bmp thread; the
 * per-peer state is written by the peer's I/O thread (OPEN, NOTIFICATION
 * copies) and read by the bmp thread only under up_mu.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/tsan.h"
#include "io/bmp.h"
#include "io/daemon.h"

#define BMP_VERSION 3
enum { BMP_ROUTE_MON = 0, BMP_STATS = 1, BMP_PEER_DOWN = 2, BMP_PEER_UP = 3, BMP_INIT = 4, BMP_TERM = 5 };
#define BMP_HDR_LEN 6
#define BMP_PEER_HDR_LEN 42
#define RECONNECT_S 3

bool bmp_enabled;

struct bmsg {
	struct cds_wfcq_node node;
	uint32_t len;
	uint8_t data[];
};

struct bmp_peer {
	bool up;                         /* a Peer Up was issued for the current session */
	uint8_t *up_msg;                 /* that Peer Up, for replay on reconnection */
	uint32_t up_len;
	uint8_t open_rx[BGP_MAX_MSG];    /* last OPEN received (I/O thread) */
	uint16_t open_rx_len;
	uint8_t notif_rx[BGP_MAX_MSG];   /* NOTIFICATION received in this session */
	uint16_t notif_rx_len;
	uint32_t notif_out_at_up[9];     /* to tell which NOTIFICATION we sent */
};

static struct {
	struct daemon *d;
	struct cfg_endpoint station;
	struct cds_wfcq_head qh;
	struct cds_wfcq_tail qt;
	_Atomic uint64_t qbytes;
	_Atomic int connected;
	pthread_mutex_t up_mu;
	struct bmp_peer **peers;         /* by peer id */
	pthread_t thr;
	atomic_int stop;                 /* bmp_stop -> the BMP thread */
	uint64_t stop_seen_ns;           /* bmp thread: when send_all first saw stop */
	int fd;
	_Atomic uint64_t queued, sent, dropped, bytes_sent, connects;
} B;

/* ------------------------------------------------------------ encoding */

static uint8_t *put8(uint8_t *p, uint8_t v) { *p = v; return p + 1; }
static uint8_t *put16(uint8_t *p, uint16_t v) { bgp_put16(p, v); return p + 2; }
static uint8_t *put32(uint8_t *p, uint32_t v) { bgp_put32(p, v); return p + 4; }
static uint8_t *put64(uint8_t *p, uint64_t v) { return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v); }

static struct bmsg *bmsg_new(size_t cap)
{
	struct bmsg *m = malloc(sizeof(*m) + cap);
	if (!m)
		log_fatal("bmp: out of memory");
	cds_wfcq_node_init(&m->node);
	m->len = 0;
	return m;
}

static uint8_t *put_common(uint8_t *p, uint32_t len, uint8_t type)
{
	p = put8(p, BMP_VERSION);
	p = put32(p, len);
	return put8(p, type);
}

static uint8_t *put_addr16(uint8_t *p, const struct bgp_addr *a)
{
	memset(p, 0, 16);
	if (a->family == BGP_FAM_IPV6)
		memcpy(p, a->addr, 16);
	else
		memcpy(p + 12, a->addr, 4);
	return p + 16;
}

/* The per-peer header (RFC 7854 s4.2).  I/O thread only: it reads the
 * session (sess, peer_bgp_id); the bmp thread copies a Peer Up's instead. */
static uint8_t *put_peer_hdr(uint8_t *p, const struct peer *pe)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint8_t flags = 0;
	if (pe->addr.family == BGP_FAM_IPV6)
		flags |= 0x80;                    /* V: IPv6 peer address */
	if (!pe->sess.as4)
		flags |= 0x20;                    /* A: 2-octet AS_PATH in the UPDATEs */
	p = put8(p, 0);                          /* global instance peer */
	p = put8(p, flags);
	p = put64(p, 0);                         /* peer distinguisher */
	p = put_addr16(p, &pe->addr);
	p = put32(p, pe->cfg.asn);
	p = put32(p, pe->peer_bgp_id);
	p = put32(p, (uint32_t)ts.tv_sec);
	return put32(p, (uint32_t)(ts.tv_nsec / 1000));
}

static void finish(struct bmsg *m, uint8_t *end, uint8_t type)
{
	m->len = (uint32_t)(end - m->data);
	put_common(m->data, m->len, type);
}

/* Queue a message; false (and freed, counted) when the queue is full. */
static bool enqueue(struct bmsg *m)
{
	uint64_t q = atomic_fetch_add_explicit(&B.qbytes, m->len, memory_order_relaxed);
	if (q + m->len > BMP_QUEUE_MAX) {
		atomic_fetch_sub_explicit(&B.qbytes, m->len, memory_order_relaxed);
		atomic_fetch_add_explicit(&B.dropped, 1, memory_order_relaxed);
		free(m);
		return false;
	}
	atomic_fetch_add_explicit(&B.queued, 1, memory_order_relaxed);
	tsan_release(m);                 /* drain / drop_queue acquire */
	cds_wfcq_enqueue(&B.qh, &B.qt, &m->node);
	return true;
}

static struct bmp_peer *pstate(const struct peer *p)
{
	struct bmp_peer *s = __atomic_load_n(&B.peers[p->id], __ATOMIC_ACQUIRE);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		log_fatal("bmp: out of memory");
	struct bmp_peer *exp = NULL;
	if (!__atomic_compare_exchange_n(&B.peers[p->id], &exp, s, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		free(s);
		return exp;
	}
	return s;
}

/* The OPEN we sent, rebuilt from the settings exactly as io/peer.c builds it. */
static size_t sent_open(const struct peer *p, uint8_t *out, size_t cap)
{
	struct msg_capa c;
	memset(&c, 0, sizeof(c));
	c.mp_any = true;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		c.mp[f] = (p->cfg.families & CFG_FAM_BIT(f)) != 0;
		if (c.mp[f])
			c.add_path[f] = (uint8_t)((p->cfg.addpath_receive ? MSG_ADDPATH_RECV : 0) |
						  (p->cfg.addpath_send ? MSG_ADDPATH_SEND : 0));
	}
	c.route_refresh = p->cfg.route_refresh;
	c.enhanced_rr = p->cfg.route_refresh;
	c.ext_msg = p->cfg.extended_messages;
	c.as4 = true;
	c.as4_asn = g_daemon->asn;
	if (p->cfg.gr_enabled) {
		c.gr = true;
		c.gr_time = p->cfg.gr_restart_time;
	}
	return msg_open_encode(out, cap, g_daemon->asn, (uint16_t)p->cfg.timers.hold, g_daemon->router_id, &c);
}

static void sock_ends(int fd, struct bgp_addr *local, uint16_t *lport, uint16_t *rport)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(local, 0, sizeof(*local));
	*lport = *rport = 0;
	if (fd < 0)
		return;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			local->family = BGP_FAM_IPV4;
			memcpy(local->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
			*lport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			local->family = BGP_FAM_IPV6;
			memcpy(local->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
			*lport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		*rport = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						       : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* ------------------------------------------------------------ hooks (I/O threads) */

void bmp_peer_up_msg(struct peer *p)
{
	struct bmp_peer *s = pstate(p);
	uint8_t open_tx[BGP_MAX_MSG];
	size_t otl = sent_open(p, open_tx, sizeof(open_tx));
	struct bmsg *m = bmsg_new(BMP_HDR_LEN + BMP_PEER_HDR_LEN + 20 + otl + s->open_rx_len);
	uint8_t *q = put_peer_hdr(m->data + BMP_HDR_LEN, p);
	struct bgp_addr local;
	uint16_t lport, rport;
	sock_ends(p->fd, &local, &lport, &rport);
	q = put_addr16(q, &local);
	q = put16(q, lport);
	q = put16(q, rport);
	memcpy(q, open_tx, otl);
	q += otl;
	memcpy(q, s->open_rx, s->open_rx_len);
	q += s->open_rx_len;
	finish(m, q, BMP_PEER_UP);

	pthread_mutex_lock(&B.up_mu);
	free(s->up_msg);
	s->up_msg = malloc(m->len);
	if (!s->up_msg)
		log_fatal("bmp: out of memory");
	memcpy(s->up_msg, m->data, m->len);
	s->up_len = m->len;
	s->up = true;
	s->notif_rx_len = 0;
	memcpy(s->notif_out_at_up, p->c.notif_out_code, sizeof(s->notif_out_at_up));
	if (atomic_load(&B.connected))
		enqueue(m);
	else
		free(m);
	pthread_mutex_unlock(&B.up_mu);
}

void bmp_peer_down_msg(struct peer *p)
{
	struct bmp_peer *s = pstate(p);
	struct bmsg *m = bmsg_new(BMP_HDR_LEN + BMP_PEER_HDR_LEN + 1 + BGP_MAX_MSG);
	uint8_t *q = put_peer_hdr(m->data + BMP_HDR_LEN, p);
	int sent_code = -1;
	for (unsigned c = 0; c <= 8; c++)
		if (p->c.notif_out_code[c] != s->notif_out_at_up[c])
			sent_code = (int)c;
	if (s->notif_rx_len) {
		q = put8(q, 3);                          /* remote NOTIFICATION */
		memcpy(q, s->notif_rx, s->notif_rx_len);
		q += s->notif_rx_len;
	} else if (sent_code >= 0) {
		q = put8(q, 1);                          /* local NOTIFICATION (subcode not kept) */
		q += msg_notification_encode(q, BGP_MAX_MSG, (uint8_t)sent_code, 0, NULL, 0);
	} else if (!strcmp(p->last_error, "connection closed by peer")) {
		q = put8(q, 4);                          /* remote closed, no data */
	} else {
		q = put8(q, 2);                          /* local close, FSM event unknown */
		q = put16(q, 0);
	}
	finish(m, q, BMP_PEER_DOWN);
	pthread_mutex_lock(&B.up_mu);
	bool was_up = s->up;
	s->up = false;
	if (was_up && atomic_load(&B.connected))
		enqueue(m);
	else
		free(m);
	pthread_mutex_unlock(&B.up_mu);
}

void bmp_rx_msg(struct peer *p, const uint8_t *msg, size_t len)
{
	uint8_t type = msg[18];
	if (type == BGP_MSG_OPEN || type == BGP_MSG_NOTIFICATION) {
		struct bmp_peer *s = pstate(p);
		if (len > BGP_MAX_MSG)
			return;
		if (type == BGP_MSG_OPEN) {
			memcpy(s->open_rx, msg, len);
			s->open_rx_len = (uint16_t)len;
		} else {
			memcpy(s->notif_rx, msg, len);
			s->notif_rx_len = (uint16_t)len;
		}
		return;
	}
	if (type != BGP_MSG_UPDATE || !atomic_load_explicit(&B.connected, memory_order_relaxed))
		return;
	struct bmp_peer *s = B.peers[p->id];
	if (!s || !s->up)
		return;
	struct bmsg *m = bmsg_new(BMP_HDR_LEN + BMP_PEER_HDR_LEN + len);
	uint8_t *q = put_peer_hdr(m->data + BMP_HDR_LEN, p);
	memcpy(q, msg, len);
	finish(m, q + len, BMP_ROUTE_MON);
	enqueue(m);
}

/* ------------------------------------------------------------ exporter thread */

static uint8_t *put_tlv_str(uint8_t *p, uint16_t type, const char *s)
{
	size_t l = strlen(s);
	p = put16(p, type);
	p = put16(p, (uint16_t)l);
	memcpy(p, s, l);
	return p + l;
}

/*
 * Once bmp_stop has asked (B.stop), what is still queued - the Peer Downs -
 * and the Termination are still sent, but a station that does not read gets
 * BMP_STOP_GRACE_NS of it, not forever: bmp_stop joins this thread, so a
 * stuck station would otherwise hold the daemon's exit.  While running, a
 * station that does not read holds only this thread (the hooks drop and
 * count past BMP_QUEUE_MAX).
 */
#define BMP_STOP_GRACE_NS (3 * 1000000000ull)

static bool stop_grace_over(void)
{
	if (!atomic_load(&B.stop))
		return false;
	uint64_t now = log_now_ns();
	if (!B.stop_seen_ns)
		B.stop_seen_ns = now;
	return now - B.stop_seen_ns > BMP_STOP_GRACE_NS;
}

static bool send_all(const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = send(B.fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (stop_grace_over())
				return false;
			struct pollfd pf = { .fd = B.fd, .events = POLLOUT };
			if (poll(&pf, 1, 200) < 0 && errno != EINTR)
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
		atomic_fetch_add_explicit(&B.bytes_sent, (uint64_t)w, memory_order_relaxed);
	}
	return true;
}

static void drop_queue(void)
{
	struct cds_wfcq_node *n;
	while ((n = __cds_wfcq_dequeue_blocking(&B.qh, &B.qt))) {
		struct bmsg *m = caa_container_of(n, struct bmsg, node);
		tsan_acquire(m);
		atomic_fetch_sub_explicit(&B.qbytes, m->len, memory_order_relaxed);
		free(m);
	}
}

static void disconnect(void)
{
	if (B.fd >= 0)
		close(B.fd);
	B.fd = -1;
	atomic_store(&B.connected, 0);
	drop_queue();
}

static bool try_connect(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = io_sockaddr(&ss, &B.station.addr, B.station.port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		close(fd);
		return false;
	}
	struct pollfd pf = { .fd = fd, .events = POLLOUT };
	int e = 0;
	socklen_t el = sizeof(e);
	if (poll(&pf, 1, 2000) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
		close(fd);
		return false;
	}
	B.fd = fd;
	return true;
}

/* Initiation, then a Peer Up per session that is up; queue contents from
 * before are discarded (a replayed Peer Up supersedes them). */
static bool session_start(void)
{
	uint8_t buf[1024];
	struct utsname u;
	char descr[300], name[64];
	if (uname(&u) == 0)
		snprintf(descr, sizeof(descr), "ricochetd route reflector on %s %s", u.sysname, u.release);
	else
		snprintf(descr, sizeof(descr), "ricochetd route reflector");
	bgp_id_fmt(name, sizeof(name), B.d->router_id);
	uint8_t *q = buf + BMP_HDR_LEN;
	q = put_tlv_str(q, 1, descr);            /* sysDescr */
	q = put_tlv_str(q, 2, name);             /* sysName */
	put_common(buf, (uint32_t)(q - buf), BMP_INIT);
	pthread_mutex_lock(&B.up_mu);
	drop_queue();
	bool ok = send_all(buf, (size_t)(q - buf));
	for (uint32_t i = 0, n = daemon_n_peers(B.d); ok && i < n; i++) {
		struct bmp_peer *s = __atomic_load_n(&B.peers[i], __ATOMIC_ACQUIRE);
		if (s && s->up && s->up_msg)
			ok = send_all(s->up_msg, s->up_len);
	}
	if (ok)
		atomic_store(&B.connected, 1);
	pthread_mutex_unlock(&B.up_mu);
	return ok;
}

/* A Statistics Report per session that is up.  The per-peer header is the
 * one of the session's Peer Up (built on the I/O thread from sess and the
 * peer's BGP identifier, which this thread must not read: the next
 * session's OPEN rewrites them), copied with a fresh timestamp.  The whole
 * report is built under up_mu (a leaf lock; the counters are atomics), so
 * "is it up" is decided once. */
static void queue_stats(void)
{
	for (uint32_t i = 0, n = daemon_n_peers(B.d); i < n; i++) {
		struct peer *p = B.d->peers[i];
		struct bmp_peer *s = __atomic_load_n(&B.peers[i], __ATOMIC_ACQUIRE);
		if (!p || !s)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		pthread_mutex_lock(&B.up_mu);
		if (!s->up || !s->up_msg) {
			pthread_mutex_unlock(&B.up_mu);
			continue;
		}
		struct bmsg *m = bmsg_new(BMP_HDR_LEN + BMP_PEER_HDR_LEN + 4 + 5 * 16);
		uint8_t *h = m->data + BMP_HDR_LEN;
		memcpy(h, s->up_msg + BMP_HDR_LEN, BMP_PEER_HDR_LEN);
		put32(put32(h + BMP_PEER_HDR_LEN - 8, (uint32_t)ts.tv_sec), (uint32_t)(ts.tv_nsec / 1000));
		uint8_t *q = h + BMP_PEER_HDR_LEN;
		q = put32(q, 5);
		uint64_t v4 = rib_peer_prefixes(B.d->rib, p->id, BGP_FAM_IPV4);
		uint64_t v6 = rib_peer_prefixes(B.d->rib, p->id, BGP_FAM_IPV6);
		q = put16(put16(q, 3), 4);               /* updates invalidated by CLUSTER_LIST loop */
		q = put32(q, (uint32_t)__atomic_load_n(&p->c.loops_dropped, __ATOMIC_RELAXED));
		q = put16(put16(q, 7), 8);               /* routes in Adj-RIBs-In */
		q = put64(q, v4 + v6);
		q = put16(put16(q, 9), 11);              /* per-AFI/SAFI Adj-RIB-In */
		q = put8(put16(q, BGP_AFI_IPV4), BGP_SAFI_UNICAST);
		q = put64(q, v4);
		q = put16(put16(q, 9), 11);
		q = put8(put16(q, BGP_AFI_IPV6), BGP_SAFI_UNICAST);
		q = put64(q, v6);
		q = put16(put16(q, 11), 4);              /* updates treated as withdraw */
		q = put32(q, (uint32_t)__atomic_load_n(&p->c.treat_as_withdraw, __ATOMIC_RELAXED));
		finish(m, q, BMP_STATS);
		enqueue(m);
		pthread_mutex_unlock(&B.up_mu);
	}
}

/* Write what is queued; false if the connection failed. */
static bool drain(void)
{
	struct cds_wfcq_node *n;
	while ((n = __cds_wfcq_dequeue_blocking(&B.qh, &B.qt))) {
		struct bmsg *m = caa_container_of(n, struct bmsg, node);
		tsan_acquire(m);
		atomic_fetch_sub_explicit(&B.qbytes, m->len, memory_order_relaxed);
		bool ok = send_all(m->data, m->len);
		free(m);
		if (!ok)
			return false;
		atomic_fetch_add_explicit(&B.sent, 1, memory_order_relaxed);
	}
	return true;
}

static void *bmp_main(void *arg)
{
	(void)arg;
	rcu_register_thread();
	uint64_t next_try = 0, next_stats = 0;
	char a[64];
	bgp_addr_fmt(a, sizeof(a), &B.station.addr);
	while (!atomic_load(&B.stop)) {
		uint64_t now = log_now_ns();
		if (B.fd < 0) {
			if (now < next_try) {
				usleep(100000);
				continue;
			}
			next_try = now + RECONNECT_S * 1000000000ull;
			if (!try_connect())
				continue;
			if (!session_start()) {
				disconnect();
				continue;
			}
			atomic_fetch_add(&B.connects, 1);
			log_info("bmp: connected to station %s port %u", a, B.station.port);
			next_stats = now + BMP_STATS_INTERVAL * 1000000000ull;
		}
		if (now >= next_stats) {
			rcu_read_lock();
			queue_stats();
			rcu_read_unlock();
			next_stats = now + BMP_STATS_INTERVAL * 1000000000ull;
		}
		if (!drain()) {
			if (!atomic_load(&B.stop))
				log_warn("bmp: station %s port %u: connection lost", a, B.station.port);
			else
				log_warn("bmp: station %s port %u: at exit, the last messages and "
					 "Termination not sent (not reading, or closed)", a, B.station.port);
			disconnect();
			continue;
		}
		/* the station never sends anything we need: notice when it closes */
		struct pollfd pf = { .fd = B.fd, .events = POLLIN };
		if (poll(&pf, 1, 20) > 0) {
			char junk[512];
			ssize_t r = recv(B.fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				log_warn("bmp: station %s port %u closed the connection", a, B.station.port);
				disconnect();
			}
		}
	}
	if (B.fd >= 0 && !drain()) {
		log_warn("bmp: station %s port %u: at exit, the last messages and "
			 "Termination not sent (not reading, or closed)", a, B.station.port);
		disconnect();
	}
	if (B.fd >= 0) {
		uint8_t buf[128];
		uint8_t *q = buf + BMP_HDR_LEN;
		q = put16(put16(q, 1), 2);               /* reason: administratively closed */
		q = put16(q, 0);
		q = put_tlv_str(q, 0, "ricochetd shutting down");
		put_common(buf, (uint32_t)(q - buf), BMP_TERM);
		send_all(buf, (size_t)(q - buf));
		shutdown(B.fd, SHUT_WR);
		close(B.fd);
		B.fd = -1;
	}
	atomic_store(&B.connected, 0);
	rcu_unregister_thread();
	return NULL;
}

int bmp_start(struct daemon *d, const struct cfg_endpoint *station)
{
	B.d = d;
	B.station = *station;
	B.fd = -1;
	cds_wfcq_init(&B.qh, &B.qt);
	pthread_mutex_init(&B.up_mu, NULL);
	B.peers = calloc(RIB_MAX_PEERS, sizeof(*B.peers));
	if (!B.peers)
		log_fatal("bmp: out of memory");
	__atomic_store_n(&bmp_enabled, true, __ATOMIC_RELEASE);
	if (pthread_create(&B.thr, NULL, bmp_main, NULL))
		log_fatal("bmp: cannot start thread: %s", strerror(errno));
	pthread_setname_np(B.thr, "bmp");
	return 0;
}

void bmp_stop(void)
{
	if (!bmp_on())
		return;
	atomic_store(&B.stop, 1);
	pthread_join(B.thr, NULL);
	__atomic_store_n(&bmp_enabled, false, __ATOMIC_RELEASE);
}

void bmp_get_stats(struct bmp_stats *st)
{
	st->queued = atomic_load(&B.queued);
	st->sent = atomic_load(&B.sent);
	st->dropped = atomic_load(&B.dropped);
	st->bytes_sent = atomic_load(&B.bytes_sent);
	st->connects = atomic_load(&B.connects);
	st->queue_bytes = atomic_load(&B.qbytes);
	st->connected = atomic_load(&B.connected) != 0;
}
