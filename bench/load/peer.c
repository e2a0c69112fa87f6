/*
 * peer.c - ricochet-load's BGP sessions and the two epoll worker loops.
 *
 * Owns: sockets (bound to a per-peer loopback source before connect), the
 * small session FSM (Connect, OpenSent, OpenConfirm, Established), timers
 * (connect retry, KEEPALIVE, hold), the receive framing and the send path.
 * The feeder thread runs load_worker_main() over all feeders, the monitor
 * thread over all monitors; each peer is touched by its own thread only, the
 * main thread reads the atomics (state, byte counters, bulk_pos) and talks to
 * a worker through load_worker_cmd() (a sequence number plus an eventfd).
 *
 * Why like this: the announcement is pre-encoded, so sending is a few large
 * write() calls straight from that buffer, never a copy.  Control messages
 * (KEEPALIVE, NOTIFICATION) and churn UPDATEs go through a small side buffer
 * and are slipped in only at a message boundary of the bulk stream, so a
 * KEEPALIVE is never late while hundreds of MB are in flight.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench/load/load.h"
#include "core/log.h"

#define RBUF_SIZE      (1u << 20)
#define MON_READ       (256u << 10)
#define WRITE_CHUNK    (1u << 20)
#define RETRY_NS       1000000000ull

/* ---------------------------------------------------------------- setup */

void load_peer_src(const struct load_opts *o, uint8_t role, unsigned idx, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (o->target_v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof(*s6);
		return;
	}
	const struct in_addr base = role == LOAD_FEEDER ? o->feeder_base : o->monitor_base;
	uint32_t b = ntohl(base.s_addr);
	uint32_t h = ((b & 0xFF) ? (b & 0xFF) - 1 : 0) + idx;
	uint32_t third = ((b >> 8) & 0xFF) + 2 * (h / 254);
	uint32_t a = (b & 0xFFFF0000u) | (third & 0xFF) << 8 | (1 + h % 254);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(a);
	*len = sizeof(*s4);
}

void load_peer_init(struct load_peer *p, struct load_ctx *ctx, uint8_t role, unsigned idx)
{
	const struct load_opts *o = &ctx->o;
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->role = role;
	p->idx = idx;
	load_peer_src(o, role, idx, &p->src, &p->src_len);
	/* BGP identifier: the IPv4 source, or its IPv4 scheme equivalent on v6 sessions */
	struct load_opts o4 = *o;
	o4.target_v6 = false;
	struct sockaddr_storage ss4;
	socklen_t l4;
	load_peer_src(&o4, role, idx, &ss4, &l4);
	p->bgp_id = ntohl(((struct sockaddr_in *)&ss4)->sin_addr.s_addr);
	char a[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ss4)->sin_addr, a, sizeof(a));
	snprintf(p->name, sizeof(p->name), "%s %u (%s)", role == LOAD_FEEDER ? "feeder" : "monitor", idx,
		 o->target_v6 ? "::1" : a);
	p->local_as = role == LOAD_FEEDER ? o->feeder_asn : o->monitor_asn;
	/* next hops: own IPv4 address; IPv4-mapped for IPv6 routes over IPv4 sessions */
	p->nh4.len = 4;
	memcpy(p->nh4.addr, &((struct sockaddr_in *)&ss4)->sin_addr, 4);
	p->nh6.len = 16;
	if (o->nh_base_set && role == LOAD_FEEDER) {
		uint32_t v = ntohl(o->nh_base.s_addr) + idx;
		uint32_t nv = htonl(v);
		memcpy(p->nh4.addr, &nv, 4);
		static const uint8_t doc6[12] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff };
		memcpy(p->nh6.addr, doc6, 12);
		memcpy(p->nh6.addr + 12, &nv, 4);
	} else if (o->target_v6) {
		memcpy(p->nh6.addr, &in6addr_loopback, 16);
	} else {
		p->nh6.addr[10] = p->nh6.addr[11] = 0xFF;
		memcpy(p->nh6.addr + 12, p->nh4.addr, 4);
	}
	/* capabilities we announce */
	struct msg_capa *c = &p->sent;
	c->mp[BGP_FAM_IPV4] = o->routes > 0 || o->v6_routes == 0;
	c->mp[BGP_FAM_IPV6] = o->v6_routes > 0;
	c->mp_any = true;
	c->route_refresh = true;
	c->as4 = true;
	c->as4_asn = p->local_as;
	c->ext_msg = o->ext_msg;
	if (role == LOAD_MONITOR && o->addpath) {
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			if (c->mp[f])
				c->add_path[f] = MSG_ADDPATH_RECV;
	}
	p->hold = o->hold;
	p->rbuf.cap = RBUF_SIZE;
	p->rbuf.data = malloc(RBUF_SIZE);
	if (!p->rbuf.data)
		log_fatal("ricochet-load: out of memory for receive buffers");
}

void load_worker_init(struct load_worker *w, struct load_ctx *ctx, uint8_t role)
{
	memset(w, 0, sizeof(*w));
	w->ctx = ctx;
	w->role = role;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0)
		log_fatal("ricochet-load: epoll/eventfd: %s", strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0)
		log_fatal("ricochet-load: epoll_ctl: %s", strerror(errno));
	load_rng_seed(&w->churn_rng, ctx->o.seed, 0xC4u);
}

void load_worker_kick(struct load_worker *w)
{
	uint64_t one = 1;
	if (write(w->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("ricochet-load: eventfd write: %s", strerror(errno));
}

bool load_workers_cmd(struct load_worker *ws, unsigned n, int cmd, double timeout_s)
{
	uint64_t seq[n ? n : 1];
	for (unsigned i = 0; i < n; i++) {
		atomic_store(&ws[i].cmd, cmd);
		seq[i] = atomic_fetch_add(&ws[i].cmd_seq, 1) + 1;
		load_worker_kick(&ws[i]);
	}
	uint64_t deadline = log_now_ns() + (uint64_t)(timeout_s * 1e9);
	for (unsigned i = 0; i < n; i++)
		while (atomic_load(&ws[i].cmd_done) < seq[i]) {
			if (log_now_ns() > deadline)
				return false;
			usleep(500);
		}
	return true;
}

bool load_worker_cmd(struct load_worker *w, int cmd, double timeout_s)
{
	return load_workers_cmd(w, 1, cmd, timeout_s);
}

/* ---------------------------------------------------------------- output */

static void set_out_interest(struct load_worker *w, struct load_peer *p, bool want)
{
	if (p->fd < 0 || p->want_out == want)
		return;
	p->want_out = want;
	struct epoll_event ev = { .events = (p->stalled ? 0 : EPOLLIN) | (want ? EPOLLOUT : 0),
				  .data.ptr = p };
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

/* --stall-monitor: stop or resume reading (the socket's input interest). */
static void set_stalled(struct load_worker *w, struct load_peer *p, bool stalled)
{
	if (p->fd < 0 || p->stalled == stalled)
		return;
	p->stalled = stalled;
	struct epoll_event ev = { .events = (stalled ? 0 : EPOLLIN) | (p->want_out ? EPOLLOUT : 0),
				  .data.ptr = p };
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

static size_t msg_len_at(const uint8_t *p)
{
	return bgp_get16(p + 16);
}

/* Write what can be written now.  Returns false if the peer failed. */
static bool peer_flush(struct load_worker *w, struct load_peer *p)
{
	if (p->fd < 0 || p->state < LOAD_PS_OPENSENT)
		return true;
	for (int iter = 0; iter < 16; iter++) {
		const uint8_t *src;
		size_t n;
		bool from_obuf;
		bool ctl = p->obuf_off < p->obuf.len;
		bool bulk = p->bulk && p->bulk_off < p->bulk_len;
		if (ctl && (!bulk || p->bulk_off == p->bulk_msg)) {
			src = p->obuf.data + p->obuf_off;
			n = p->obuf.len - p->obuf_off;
			from_obuf = true;
		} else if (bulk) {
			src = p->bulk + p->bulk_off;
			n = p->bulk_len - p->bulk_off;
			if (ctl) /* finish the message in flight, then the control bytes */
				n = p->bulk_msg + msg_len_at(p->bulk + p->bulk_msg) - p->bulk_off;
			if (n > WRITE_CHUNK)
				n = WRITE_CHUNK;
			from_obuf = false;
		} else {
			break;
		}
		if (!p->first_tx_ns && !from_obuf)
			p->first_tx_ns = log_now_ns();
		ssize_t r = write(p->fd, src, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out_interest(w, p, true);
				return true;
			}
			load_peer_close(p, 0, 0, strerror(errno));
			return false;
		}
		atomic_fetch_add_explicit(&p->bytes_out, (uint64_t)r, memory_order_relaxed);
		if (from_obuf) {
			p->obuf_off += (size_t)r;
			if (p->obuf_off == p->obuf.len)
				p->obuf_off = p->obuf.len = 0;
		} else {
			p->bulk_off += (size_t)r;
			while (p->bulk_msg < p->bulk_off &&
			       p->bulk_msg + msg_len_at(p->bulk + p->bulk_msg) <= p->bulk_off)
				p->bulk_msg += msg_len_at(p->bulk + p->bulk_msg);
			atomic_store_explicit(&p->bulk_pos, p->bulk_off, memory_order_relaxed);
			if (p->bulk_off == p->bulk_len)
				atomic_store(&p->bulk_done_ns, log_now_ns());
		}
		if ((size_t)r < n) {
			set_out_interest(w, p, true);
			return true;
		}
	}
	bool more = p->obuf_off < p->obuf.len || (p->bulk && p->bulk_off < p->bulk_len);
	set_out_interest(w, p, more);
	return true;
}

void load_peer_queue(struct load_peer *p, const uint8_t *msg, size_t len)
{
	load_bytes_reserve(&p->obuf, len);
	memcpy(p->obuf.data + p->obuf.len, msg, len);
	p->obuf.len += len;
}

void load_peer_close(struct load_peer *p, uint8_t code, uint8_t subcode, const char *why)
{
	if (p->fd >= 0) {
		if (code) {
			/* best effort: the socket may be full of bulk data, that is fine */
			uint8_t m[64];
			size_t l = msg_notification_encode(m, sizeof(m), code, subcode, NULL, 0);
			if (l && write(p->fd, m, l) < 0)
				(void)0;
		}
		close(p->fd);   /* also removes it from the epoll set */
		p->fd = -1;
	}
	p->stalled = false;
	if (why && !p->err[0]) {
		snprintf(p->err, sizeof(p->err), "%s", why);
		if (!p->killed) {
			__atomic_store_n(&p->failed, true, __ATOMIC_RELEASE);   /* main thread polls it */
			log_warn("ricochet-load: %s: %s", p->name, why);
		}
	}
	atomic_store(&p->state, LOAD_PS_CLOSED);
}

/* ---------------------------------------------------------------- connect */

static void peer_connect(struct load_worker *w, struct load_peer *p, uint64_t now)
{
	const struct load_opts *o = &w->ctx->o;
	p->next_retry_ns = now + RETRY_NS;
	p->connect_tries++;
	int fd = socket(o->target_v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(p->err, sizeof(p->err), "socket: %s", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&p->src, p->src_len) < 0) {
		snprintf(p->err, sizeof(p->err), "bind: %s", strerror(errno));
		close(fd);
		return;
	}
	if (connect(fd, (struct sockaddr *)&o->target, o->target_len) < 0 && errno != EINPROGRESS) {
		snprintf(p->err, sizeof(p->err), "connect: %s", strerror(errno));
		close(fd);
		return;
	}
	p->fd = fd;
	p->want_out = true;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = p };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_fatal("ricochet-load: epoll_ctl add: %s", strerror(errno));
	atomic_store(&p->state, LOAD_PS_CONNECTING);
}

static void peer_connected(struct load_worker *w, struct load_peer *p, uint64_t now)
{
	int err = 0;
	socklen_t el = sizeof(err);
	getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		/* target not up yet: retry after RETRY_NS, the phase timeout bounds us */
		snprintf(p->err, sizeof(p->err), "connect: %s", strerror(err));
		close(p->fd);
		p->fd = -1;
		p->want_out = false;
		atomic_store(&p->state, LOAD_PS_IDLE);
		return;
	}
	p->err[0] = 0;
	uint8_t m[BGP_MAX_MSG];
	size_t l = msg_open_encode(m, sizeof(m), p->local_as, p->hold, p->bgp_id, &p->sent);
	if (!l)
		log_fatal("ricochet-load: OPEN does not encode");
	p->rbuf.head = p->rbuf.tail = 0;
	p->obuf.len = p->obuf_off = 0;
	load_peer_queue(p, m, l);
	p->last_rx_ns = now;
	atomic_store(&p->state, LOAD_PS_OPENSENT);
	peer_flush(w, p);
}

/* ---------------------------------------------------------------- input */

static void peer_open(struct load_worker *w, struct load_peer *p, const uint8_t *m, size_t l,
		      uint64_t now)
{
	const struct load_opts *o = &w->ctx->o;
	struct msg_error err;
	char why[160];
	if (p->state != LOAD_PS_OPENSENT) {
		load_peer_close(p, BGP_ERR_FSM, BGP_ERR_FSM_OPENCONFIRM, "unexpected OPEN");
		return;
	}
	if (msg_open_parse(m, l, &p->open, &err) < 0) {
		snprintf(why, sizeof(why), "bad OPEN from target: %s (%u/%u)", err.reason ? err.reason : "",
			 err.code, err.subcode);
		load_peer_close(p, err.code, err.subcode, why);
		return;
	}
	uint32_t pas = msg_open_asn(&p->open);
	if (pas != o->asn) {
		snprintf(why, sizeof(why), "target says AS %u, --asn is %u", pas, o->asn);
		load_peer_close(p, BGP_ERR_OPEN, BGP_ERR_OPEN_AS, why);
		return;
	}
	const struct msg_capa *pc = &p->open.capa;
	if (!pc->as4) {
		load_peer_close(p, BGP_ERR_OPEN, BGP_ERR_OPEN_CAPA, "target lacks 4-octet AS support");
		return;
	}
	struct msg_session *s = &p->sess;
	memset(s, 0, sizeof(*s));
	s->as4 = true;
	/* decode as iBGP even on eBGP sessions: a route server does not prepend its AS and
	 * the monitor wants to see attributes as sent, not filtered */
	s->ebgp = false;
	s->peer_as = pas;
	s->local_as = p->local_as;
	s->max_msg = (p->sent.ext_msg && pc->ext_msg) ? BGP_MAX_EXT_MSG : BGP_MAX_MSG;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		bool theirs = pc->mp_any ? pc->mp[f] : f == BGP_FAM_IPV4;
		s->family[f] = p->sent.mp[f] && theirs;
		if (p->sent.mp[f] && !theirs) {
			snprintf(why, sizeof(why), "target does not do %s unicast",
				 f == BGP_FAM_IPV4 ? "IPv4" : "IPv6");
			load_peer_close(p, BGP_ERR_OPEN, BGP_ERR_OPEN_CAPA, why);
			return;
		}
		s->addpath_rx[f] = (p->sent.add_path[f] & MSG_ADDPATH_RECV) &&
				   (pc->add_path[f] & MSG_ADDPATH_SEND);
	}
	if (p->open.hold_time && p->open.hold_time < p->hold)
		p->hold = p->open.hold_time;
	if (p->open.hold_time == 0)
		p->hold = 0;
	uint8_t ka[BGP_HDR_LEN];
	load_peer_queue(p, ka, msg_keepalive_encode(ka, sizeof(ka)));
	p->next_ka_ns = p->hold ? now + (uint64_t)p->hold * 1000000000ull / 3 : UINT64_MAX;
	atomic_store(&p->state, LOAD_PS_OPENCONFIRM);
}

static void peer_message(struct load_worker *w, struct load_peer *p, const uint8_t *m, size_t l,
			 uint64_t now)
{
	load_count(&p->msgs_in, 1);
	switch (m[18]) {
	case BGP_MSG_OPEN:
		peer_open(w, p, m, l, now);
		break;
	case BGP_MSG_KEEPALIVE:
		if (p->state == LOAD_PS_OPENCONFIRM) {
			p->up_ns = now;
			atomic_store(&p->state, LOAD_PS_ESTABLISHED);
			if (p->role == LOAD_MONITOR && p->idx == 0 && w->ctx->o.stall_monitor > 0) {
				p->stall_until_ns = now + (uint64_t)(w->ctx->o.stall_monitor * 1e9);
				set_stalled(w, p, true);
				log_info("ricochet-load: %s stops reading for %.1f s", p->name,
					 w->ctx->o.stall_monitor);
			}
			if (w->ctx->o.verbose)
				log_info("ricochet-load: %s established (hold %us)", p->name, p->hold);
		}
		break;
	case BGP_MSG_UPDATE:
		if (p->state != LOAD_PS_ESTABLISHED) {
			load_peer_close(p, BGP_ERR_FSM, BGP_ERR_FSM_UNSPEC, "UPDATE before Established");
			break;
		}
		load_count(&p->updates_in, 1);
		if (p->mon)
			load_mon_update(w->ctx, p->mon, m, l);
		break;
	case BGP_MSG_NOTIFICATION: {
		uint8_t code = 0, sub = 0;
		const uint8_t *d;
		size_t dl;
		char why[160];
		msg_notification_parse(m, l, &code, &sub, &d, &dl);
		snprintf(why, sizeof(why), "NOTIFICATION from target: %s (%u/%u)",
			 bgp_suberr_name(code, sub), code, sub);
		load_peer_close(p, 0, 0, why);
		break;
	}
	case BGP_MSG_ROUTE_REFRESH:
		/* a feeder would have to resend; the load tool does not support it */
		log_warn("ricochet-load: %s: ROUTE-REFRESH from target ignored", p->name);
		break;
	default:
		break;
	}
}

static void peer_read(struct load_worker *w, struct load_peer *p, uint64_t now)
{
	struct load_rbuf *b = &p->rbuf;
	if (p->stalled)
		return;
	if (b->head == b->tail)
		b->head = b->tail = 0;
	/* monitors keep their (bounded) reads at the start of the buffer: the
	 * partial message left is small, and the buffer stays warm instead of
	 * faulting in new pages as the tail walks on */
	if (b->head > 0 && (b->cap - b->tail < 65536 || p->role == LOAD_MONITOR)) {
		memmove(b->data, b->data + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	/* monitors read a bounded amount per turn, round robin: they then apply the
	 * same UPDATEs close together, while the shared memo still holds them */
	size_t room = b->cap - b->tail;
	if (p->role == LOAD_MONITOR && room > MON_READ)
		room = MON_READ;
	ssize_t r = read(p->fd, b->data + b->tail, room);
	if (r == 0) {
		load_peer_close(p, 0, 0, "connection closed by the target");
		return;
	}
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			load_peer_close(p, 0, 0, strerror(errno));
		return;
	}
	load_count(&p->bytes_in, (uint64_t)r);
	b->tail += (size_t)r;
	p->last_rx_ns = now;
	size_t max = p->state == LOAD_PS_ESTABLISHED ? p->sess.max_msg : BGP_MAX_MSG;
	/* monitors: hint the caches for the UPDATEs ahead (load_mon_prefetch);
	 * look[s] is the offset of the message PF_DIST[s] ahead of head */
	static const unsigned pf_dist[3] = { 12, 6, 2 };
	size_t look[3] = { b->head, b->head, b->head };
	unsigned nlook[3] = { 0, 0, 0 };
	/* stage 0 hashes each message once; the ring hands the hash on (by sequence) */
	struct { size_t off; uint64_t h; } hr[32];
	uint64_t sq[3] = { 0, 0, 0 }, hseq = 0;
	bool pf = p->mon && p->state == LOAD_PS_ESTABLISHED;
	for (unsigned i = 0; pf && i < 32; i++)
		hr[i].off = SIZE_MAX;
	while (p->fd >= 0 && b->head < b->tail) {
		for (unsigned s = 0; pf && s < 3; s++) {
			if (look[s] < b->head) {
				look[s] = b->head;
				nlook[s] = 0;
				sq[s] = hseq;
			}
			while (nlook[s] <= pf_dist[s] && b->tail - look[s] >= BGP_HDR_LEN) {
				const uint8_t *q = b->data + look[s];
				size_t ml = bgp_get16(q + 16);
				if (ml < BGP_HDR_LEN || ml > b->tail - look[s])
					break;
				if (q[18] == BGP_MSG_UPDATE && nlook[s] > 0) {
					unsigned ri = (unsigned)(sq[s] & 31);
					uint64_t h;
					if (s == 0) {
						h = load_mon_hash(q, ml);
						hr[ri].off = look[s];
						hr[ri].h = h;
					} else {
						h = hr[ri].off == look[s] ? hr[ri].h : load_mon_hash(q, ml);
					}
					load_mon_prefetch(p->mon, q, ml, s, h);
				}
				look[s] += ml;
				nlook[s]++;
				sq[s]++;
			}
		}
		if (pf) {
			bool hit = hr[hseq & 31].off == b->head;
			p->mon->hint_msg = hit ? b->data + b->head : NULL;
			p->mon->hint_h = hit ? hr[hseq & 31].h : 0;
		}
		struct msg_error err;
		int l = msg_frame(b->data + b->head, b->tail - b->head, max, &err);
		if (l == 0)
			break;
		if (l < 0) {
			char why[160];
			snprintf(why, sizeof(why), "bad message header from target: %s",
				 err.reason ? err.reason : "?");
			load_peer_close(p, err.code, err.subcode, why);
			return;
		}
		peer_message(w, p, b->data + b->head, (size_t)l, now);
		b->head += (size_t)l;
		hseq++;
		for (unsigned s = 0; s < 3; s++)
			if (nlook[s])
				nlook[s]--;
	}
	if (p->fd >= 0 && (p->obuf_off < p->obuf.len))
		peer_flush(w, p);
}

/* ---------------------------------------------------------------- feeder work */

static void feeder_start_bulk(struct load_ctx *ctx, struct load_peer *p, struct load_bytes *b)
{
	p->bulk = b->data;
	p->bulk_len = b->len;
	p->bulk_off = p->bulk_msg = 0;
	p->first_tx_ns = 0;
	atomic_store(&p->bulk_pos, 0);
	atomic_store(&p->bulk_done_ns, 0);
}

static void churn_tick(struct load_worker *w, uint64_t now)
{
	struct load_ctx *ctx = w->ctx;
	if (!w->churn_on)
		return;
	if (now >= w->churn_end_ns) {
		w->churn_on = false;
		return;
	}
	uint64_t due = (uint64_t)(ctx->o.churn_rate * (double)(now - w->churn_start_ns) / 1e9);
	unsigned budget = 20000;
	uint8_t blob[LOAD_BLOB_MAX], m[BGP_MAX_MSG];
	while (w->churn_sent < due && budget--) {
		struct load_peer *p = NULL;
		for (unsigned k = 0; k < w->npeers; k++) {
			struct load_peer *q = w->peers[(w->churn_rr + k) % w->npeers];
			if (q->state == LOAD_PS_ESTABLISHED && q->fd >= 0) {
				p = q;
				w->churn_rr = (w->churn_rr + k + 1) % w->npeers;
				break;
			}
		}
		if (!p)
			return;
		struct load_feeder_routes *fr = &ctx->rt.f[p->idx];
		if (!fr->n)
			return;
		uint32_t span = ctx->o.churn_prefixes && ctx->o.churn_prefixes < fr->n ? ctx->o.churn_prefixes : fr->n;
		uint32_t j = load_rng_below(&w->churn_rng, span);
		uint16_t g = (uint16_t)(atomic_load_explicit(&fr->gen[j], memory_order_relaxed) + 1);
		if (g == 0)
			g = 2;      /* keep parity alternating, skip the initial generation */
		if (ctx->o.churn_recurring)
			g = g == 2 ? 2 : 1;     /* generations 1, 2, 1, 2 ...: two variants per set */
		uint64_t ts = log_now_ns();
		/* recurring: the send time stays here, published before the generation
		 * (release) so a monitor that sees the generation reads this time */
		if (ctx->o.churn_recurring)
			atomic_store_explicit(&fr->sent_ns[j], ts, memory_order_relaxed);
		atomic_store_explicit(&fr->gen[j], g, memory_order_release);
		size_t bl = load_attrs_build(&ctx->rt, p->idx, fr->attr[j], g,
					     ctx->o.churn_recurring ? 0 : ts, blob, sizeof(blob));
		struct bgp_prefix pfx = ctx->rt.pfx[load_routes_pid(&ctx->rt, p->idx, j)];
		pfx.path_id = 0;
		size_t used = 0;
		bool v6 = pfx.family == BGP_FAM_IPV6;
		size_t l = msg_update_pack(m, sizeof(m), p->sess.max_msg < sizeof(m) ? p->sess.max_msg : sizeof(m),
					   pfx.family, false, blob, bl, v6 ? &p->nh6 : &p->nh4, &pfx, 1, &used);
		if (l && used == 1)
			load_peer_queue(p, m, l);
		w->churn_sent++;
		atomic_store_explicit(&ctx->churn_sent, w->churn_sent, memory_order_relaxed);
	}
	for (unsigned k = 0; k < w->npeers; k++)
		if (w->peers[k]->obuf.len)
			peer_flush(w, w->peers[k]);
}

static void worker_command(struct load_worker *w, int cmd, uint64_t now)
{
	struct load_ctx *ctx = w->ctx;
	switch (cmd) {
	case LOAD_CMD_ANNOUNCE:
	case LOAD_CMD_WITHDRAW:
		atomic_store(&ctx->t0_ns, now);
		for (unsigned k = 0; k < w->npeers; k++) {
			struct load_peer *p = w->peers[k];
			if (p->state != LOAD_PS_ESTABLISHED)
				continue;
			feeder_start_bulk(ctx, p, cmd == LOAD_CMD_ANNOUNCE ? &ctx->ann[p->idx] : &ctx->wdr[p->idx]);
		}
		for (unsigned k = 0; k < w->npeers; k++)
			peer_flush(w, w->peers[k]);
		break;
	case LOAD_CMD_CHURN:
		w->churn_on = true;
		w->churn_start_ns = now;
		w->churn_end_ns = now + (uint64_t)(ctx->o.churn_seconds * 1e9);
		w->churn_sent = 0;
		atomic_store(&ctx->t0_ns, now);
		break;
	case LOAD_CMD_RESTORE:
		/* generation 0 everywhere (what the monitors now expect), then the
		 * original pre-encoded announcements, which carry generation 0 */
		atomic_store(&ctx->t0_ns, now);
		for (unsigned k = 0; k < w->npeers; k++) {
			struct load_peer *p = w->peers[k];
			struct load_feeder_routes *fr = &ctx->rt.f[p->idx];
			for (uint32_t j = 0; j < fr->n; j++)
				atomic_store_explicit(&fr->gen[j], 0, memory_order_release);
			if (p->state == LOAD_PS_ESTABLISHED)
				feeder_start_bulk(ctx, p, &ctx->ann[p->idx]);
		}
		for (unsigned k = 0; k < w->npeers; k++)
			peer_flush(w, w->peers[k]);
		break;
	case LOAD_CMD_KILL: {
		struct load_peer *p = &ctx->feeders[ctx->kill_idx];
		p->killed = true;
		atomic_store(&ctx->t0_ns, log_now_ns());
		load_peer_close(p, BGP_ERR_CEASE, BGP_CEASE_ADMIN_SHUTDOWN, "killed by --kill-feeder");
		break;
	}
	case LOAD_CMD_TARGET:
		w->target = ctx->target;
		for (unsigned k = 0; k < w->npeers; k++) {
			struct load_mon *m = w->peers[k]->mon;
			if (m) {
				atomic_store(&m->done_ns, 0);
				load_mon_check_done(ctx, m, now);
			}
		}
		break;
	case LOAD_CMD_VERIFY:
		for (unsigned k = 0; k < w->npeers; k++)
			if (w->peers[k]->mon)
				load_mon_verify(ctx, w->peers[k]->mon);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- the loop */

static int timers(struct load_worker *w, uint64_t now)
{
	uint64_t next = now + 100000000ull;
	bool connecting = atomic_load(&w->ctx->stop) == 0;
	/* sessions between connect() and ESTABLISHED: at most connect_burst of
	 * them at once, so that a target with a small accept backlog is not
	 * flooded with SYNs it drops (and the retransmission back-off then
	 * stretches the connect phase past any timeout) */
	unsigned opening = 0;
	for (unsigned k = 0; k < w->npeers; k++) {
		int st = w->peers[k]->state;
		opening += st >= LOAD_PS_CONNECTING && st <= LOAD_PS_OPENCONFIRM;
	}
	for (unsigned k = 0; k < w->npeers; k++) {
		struct load_peer *p = w->peers[k];
		int st = p->state;
		if (st == LOAD_PS_IDLE && connecting && !p->failed) {
			if (now < p->next_retry_ns) {
				if (p->next_retry_ns < next)
					next = p->next_retry_ns;
				continue;
			}
			if (opening >= w->ctx->o.connect_burst) {
				if (now + 1000000ull < next)
					next = now + 1000000ull;   /* a slot frees as one opens */
				continue;
			}
			peer_connect(w, p, now);
			opening += p->state == LOAD_PS_CONNECTING;
			if (p->next_retry_ns < next)
				next = p->next_retry_ns;
			continue;
		}
		if (p->fd < 0 || st < LOAD_PS_OPENSENT)
			continue;
		if (p->stalled) {
			if (now >= p->stall_until_ns) {
				set_stalled(w, p, false);
				p->last_rx_ns = now;      /* its hold time runs from now */
				log_info("ricochet-load: %s reads again", p->name);
			} else if (p->stall_until_ns < next) {
				next = p->stall_until_ns;
			}
		}
		if (!p->stalled && p->hold && now - p->last_rx_ns > (uint64_t)p->hold * 1000000000ull) {
			load_peer_close(p, BGP_ERR_HOLD, 0, "hold timer expired");
			continue;
		}
		if (st >= LOAD_PS_OPENCONFIRM && now >= p->next_ka_ns) {
			uint8_t ka[BGP_HDR_LEN];
			load_peer_queue(p, ka, msg_keepalive_encode(ka, sizeof(ka)));
			p->next_ka_ns = now + (uint64_t)p->hold * 1000000000ull / 3;
			peer_flush(w, p);
		}
		/* KEEPALIVEs start with OPENCONFIRM: before that next_ka_ns is 0 or a
		 * past session's, and taking it made every round's timeout 0 - the
		 * monitor threads spun on both CPUs for as long as the target had
		 * sessions in OPENSENT (S4 against BIRD: 177 s of CPU in 92 s, until
		 * the starved target let a hold timer expire) */
		if (st >= LOAD_PS_OPENCONFIRM && p->next_ka_ns < next)
			next = p->next_ka_ns;
		if (!p->stalled && p->hold) {
			uint64_t dl = p->last_rx_ns + (uint64_t)p->hold * 1000000000ull;
			if (dl < next)
				next = dl;
		}
	}
	if (w->churn_on && next > now + 2000000ull)
		next = now + 2000000ull;
	if (w->role == LOAD_MONITOR && next > now + 5000000ull)
		next = now + 5000000ull;
	return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

void *load_worker_main(void *arg)
{
	struct load_worker *w = arg;
	struct load_ctx *ctx = w->ctx;
	struct epoll_event ev[64];
	while (!atomic_load(&ctx->stop)) {
		uint64_t now = log_now_ns();
		int tmo = timers(w, now);
		int n = epoll_wait(w->epfd, ev, 64, tmo);
		now = log_now_ns();
		for (int i = 0; i < n; i++) {
			struct load_peer *p = ev[i].data.ptr;
			if (!p) {
				uint64_t v;
				if (read(w->evfd, &v, sizeof(v)) < 0)
					(void)0;
				continue;
			}
			if (p->fd < 0)
				continue;
			if (p->state == LOAD_PS_CONNECTING) {
				if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					peer_connected(w, p, now);
				continue;
			}
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				peer_read(w, p, now);
			if (p->fd >= 0 && (ev[i].events & EPOLLOUT))
				peer_flush(w, p);
			if (p->mon)
				load_mon_check_done(ctx, p->mon, now);
		}
		uint64_t seq = atomic_load(&w->cmd_seq);
		if (seq != atomic_load(&w->cmd_done)) {
			worker_command(w, atomic_load(&w->cmd), log_now_ns());
			atomic_store(&w->cmd_done, seq);
		}
		if (w->role == LOAD_FEEDER) {
			churn_tick(w, log_now_ns());
		} else if (now - w->last_check_ns > 5000000ull) {
			w->last_check_ns = now;
			for (unsigned k = 0; k < w->npeers; k++)
				if (w->peers[k]->mon)
					load_mon_check_done(ctx, w->peers[k]->mon, now);
		}
	}
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0) {
		w->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
		w->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	}
	return NULL;
}
