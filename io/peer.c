/*
 * peer.c - BGP sessions on the owning I/O thread: the socket side of the
 * FSM (core/fsm.c decides, this file carries out), OPEN negotiation, output
 * (private control messages + shared chunks), and UPDATE ingest straight
 * into the RIB.
 *
 * Everything here runs on the peer's I/O thread (see io/loop.c), so the
 * struct peer fields it touches need no locks.  The exceptions are the
 * output queue (wait-free, fed by the reflection thread) and the counters
 * and state mirror, which the CLI reads racily.
 *
 * UPDATE ingest is the hot path: the message is parsed in place, the
 * attribute set is interned once per UPDATE (one hash lookup, no allocation
 * when the set is known), and the prefixes go to the RIB in batches.  The
 * announcements of consecutive UPDATEs are gathered (struct io_ingest, up to
 * IO_INGEST_MAX prefixes) and given to rib_update_multi together, because a
 * bulk load's UPDATEs carry a few prefixes each and the RIB overlaps the
 * cache misses of a group of descents; withdrawals go in batches of 64
 * (rib_withdraw_batch).  The gathered announcements are applied before
 * anything that must see them: a withdrawal, an End-of-RIB that ends stale
 * paths, the max-prefixes check, any other message, a session reset, and the
 * end of every read - so the batch never outlives one sess_readable call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/tsan.h"
#include "io/bmp.h"
#include "io/daemon.h"
#include "io/metrics.h"
#include "io/mrtdump.h"

#define RX_BUF_MAX    (256 * 1024)        /* >= 2 extended messages */
/* Bytes read (and then handled) per peer per wakeup.  What a read brings is
 * handled before the loop looks at the other sessions of the thread, so this
 * bounds how long one busy sender holds them: 256 KiB of /24 withdrawals is
 * about 64,000 prefixes, 15 ms of ingest on the 2-core VM, and 64 KiB of
 * 4 KiB UPDATEs packed with new /24s (16,000 prefixes) took 6-15 ms.  16 KiB
 * halved the worst wait of the thread's other sessions while a peer reloaded
 * its table, but cost S4 (1,000 clients) 0.1-0.25 s and as much CPU - most
 * likely because shorter rounds flush the clients' queues more often, in
 * more and smaller writes; not measured (stop 19, docs/BENCHMARKS.md).  So the
 * budget is counted in prefixes too (READ_PFX, below), which cuts only dense
 * reads.  The rest waits in the socket; epoll (level-triggered) reports it
 * again next round. */
#define READ_BUDGET   (64 * 1024)
/* ... and about this many prefixes (announced or withdrawn): a read is cut
 * to what the session's recent bytes per prefix say holds that many, never
 * below READ_MIN.  Ordinary UPDATEs (S2, S4: ~18 bytes a prefix) still read
 * 64 KiB; 4 KiB UPDATEs packed with /24s (4-5 bytes a prefix: a peer
 * reloading or flapping its table) read ~16 KiB, which is what halved the
 * other sessions' wait in stop 19 without shortening S4's rounds (stop 20). */
#define READ_PFX      4096
#define READ_MIN      (4 * 1024)
#define MALFORMED_LOG_INTERVAL_NS (10ull * 1000000000ull)

static const char *peer_name(const struct peer *p, char *buf, size_t len)
{
	char a[64];
	bgp_addr_fmt(a, sizeof(a), &p->addr);
	snprintf(buf, len, "%s AS%u", a, p->cfg.asn);
	return buf;
}

/* max-prefixes (config restart): true while the peer may not have a session */
static bool maxpfx_holddown(const struct peer *p, uint64_t now)
{
	return p->maxpfx_until_ns && now < p->maxpfx_until_ns;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void ep_mod(struct peer *p)
{
	/* input held (a live sweep): EPOLLIN off, so the loop does not wake for
	 * bytes it will not read; EPOLLRDHUP on instead (EPOLLHUP and EPOLLERR
	 * always come), so that the end of the connection is seen at once:
	 * sess_held_closed */
	struct epoll_event ev = { .events = (p->rx_held ? (uint32_t)EPOLLRDHUP : (uint32_t)EPOLLIN) |
					    (p->want_out ? (uint32_t)EPOLLOUT : 0u),
				  .data.u64 = EV_DATA(EV_KIND_PEER, p->id) };
	epoll_ctl(p->thr->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

/* ------------------------------------------------------------ output */

/* Queue a private control message; written at the next chunk boundary. */
static void ctl_queue(struct peer *p, const uint8_t *msg, size_t len)
{
	if (p->ctl_off && p->ctl_off == p->ctl_len)
		p->ctl_off = p->ctl_len = 0;
	if (p->ctl_len + len > sizeof(p->ctl)) {
		if (p->ctl_off) {
			memmove(p->ctl, p->ctl + p->ctl_off, p->ctl_len - p->ctl_off);
			p->ctl_len -= p->ctl_off;
			p->ctl_off = 0;
		}
		if (p->ctl_len + len > sizeof(p->ctl))
			return; /* a peer this far behind will hit its send hold timer */
	}
	memcpy(p->ctl + p->ctl_len, msg, len);
	p->ctl_len += len;
	PEER_STAT_ADD(p->c.msgs_out, 1);
}

static void send_keepalive(struct peer *p)
{
	uint8_t m[BGP_HDR_LEN];
	size_t n = msg_keepalive_encode(m, sizeof(m));
	ctl_queue(p, m, n);
}

void peer_set_error(struct peer *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&p->err_lock);
	vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
	pthread_mutex_unlock(&p->err_lock);
	va_end(ap);
}

void peer_get_error(struct peer *p, char *buf, size_t n)
{
	pthread_mutex_lock(&p->err_lock);
	snprintf(buf, n, "%s", p->last_error);
	pthread_mutex_unlock(&p->err_lock);
}

static void send_notification(struct peer *p, uint8_t code, uint8_t sub, const uint8_t *data, size_t dlen)
{
	uint8_t m[BGP_MAX_MSG];
	if (dlen > BGP_MAX_MSG - 21)
		dlen = BGP_MAX_MSG - 21;
	size_t n = msg_notification_encode(m, sizeof(m), code, sub, data, dlen);
	char nm[96];
	log_warn("peer %s: sending NOTIFICATION %u/%u (%s / %s)", peer_name(p, nm, sizeof(nm)), code, sub,
		 bgp_err_name(code), bgp_suberr_name(code, sub));
	peer_set_error(p, "sent %s/%s", bgp_err_name(code),
		 bgp_suberr_name(code, sub));
	PEER_STAT_ADD(p->c.notif_out, 1);
	PEER_STAT_ADD(p->c.notif_out_code[code <= 8 ? code : 0], 1);
	ctl_queue(p, m, n);
	/* best effort: try to get it out before the close */
	if (p->fd >= 0) {
		if (p->out_off == 0) {           /* at a chunk boundary */
			ssize_t w = write(p->fd, p->ctl + p->ctl_off, p->ctl_len - p->ctl_off);
			if (w > 0)
				p->ctl_off += (size_t)w;
		}
	}
}

/* One chunk's last byte is out: count it and drop the queue's reference. */
static void out_done(struct peer *p, struct obuf *b)
{
	PEER_STAT_ADD(p->c.prefixes_out, b->npfx);
	if (b->rx_ns)
		metrics_observe_latency(b->group, b->rx_ns);
	atomic_fetch_sub_explicit(&p->oq_bytes, b->len, memory_order_relaxed);
	obuf_unref(b);
}

/*
 * Write as much as the socket takes, gathered into one writev: the pending
 * control messages, then up to PEER_OUT_CHUNKS queued chunks.
 *
 * Chunks are taken off the output queue into p->out (in order; each keeps
 * the reference the reflection thread queued) and leave it when their last
 * byte is written; p->out_off is how much of p->out[0] is already out.
 * Control messages (KEEPALIVE, NOTIFICATION) go only at a chunk boundary
 * (out_off == 0), never inside a chunk: a chunk is whole UPDATEs back to
 * back, so that keeps the byte stream well-formed without knowing where the
 * messages inside a chunk end.  While control bytes wait behind a partly
 * written chunk, the writev carries only the rest of that chunk, so the next
 * one starts at a boundary with them: a KEEPALIVE waits at most one chunk.
 * A short write means the socket buffer is full: EPOLLOUT is armed and the
 * flush ends there rather than try again for EAGAIN.
 */
static void sess_run(struct peer *p, enum fsm_event ev, const struct fsm_event_arg *arg);

void peer_flush(struct peer *p)
{
	if (p->fd < 0)
		return;
	for (;;) {
		if (p->fsm.state == FSM_ESTABLISHED) {
			while (p->n_out < PEER_OUT_CHUNKS) {
				struct cds_wfcq_node *node =
					__cds_wfcq_dequeue_nonblocking(&p->oq_head, &p->oq_tail);
				/* CDS_WFCQ_WOULDBLOCK: the reflection thread is half way through an
				 * enqueue (tail swapped, node not linked yet); its io_peer_kick
				 * follows, so there is nothing more to send for now (bench/soak.py) */
				if (!node || node == CDS_WFCQ_WOULDBLOCK)
					break;
				struct outq_ent *e = caa_container_of(node, struct outq_ent, node);
				tsan_acquire(e);     /* deliver_one's tsan_release */
				p->out[p->n_out++] = e->b;
				free(e);
			}
		}
		struct iovec iov[PEER_OUT_CHUNKS + 1];
		int n = 0;
		size_t total = 0;
		bool ctl_first = false, ctl_waits = p->ctl_len > p->ctl_off;
		if (ctl_waits && p->out_off == 0) {
			iov[n].iov_base = p->ctl + p->ctl_off;
			iov[n].iov_len = p->ctl_len - p->ctl_off;
			total += iov[n++].iov_len;
			ctl_first = true;
		}
		/* mid-chunk with control bytes waiting: to the end of this chunk only */
		unsigned nc = ctl_waits && !ctl_first && p->n_out ? 1u : p->n_out;
		for (unsigned k = 0; k < nc; k++) {
			size_t off = k ? 0 : p->out_off;
			iov[n].iov_base = p->out[k]->data + off;
			iov[n].iov_len = p->out[k]->len - off;
			total += iov[n++].iov_len;
		}
		if (n == 0) {
			if (p->want_out) {
				p->want_out = false;
				ep_mod(p);
			}
			return;
		}
		ssize_t w = writev(p->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!p->want_out) {
					p->want_out = true;
					ep_mod(p);
				}
				return;
			}
			if (errno == EINTR)
				continue;
			peer_set_error(p, "write: %s", strerror(errno));
			sess_run(p, FSM_EV_TCP_FAILS, NULL);
			return;
		}
		PEER_STAT_ADD(p->c.bytes_out, (uint64_t)w);
		p->last_write_ns = log_now_ns();
		size_t left = (size_t)w;
		if (ctl_first) {
			size_t k = p->ctl_len - p->ctl_off;
			size_t take = left < k ? left : k;
			p->ctl_off += take;
			left -= take;
		}
		/* the chunks written to their end leave p->out; the one the write
		 * ended in (if any) stays first, with its offset */
		unsigned done = 0;
		size_t off = p->out_off;
		for (; done < nc; done++) {
			size_t rem = p->out[done]->len - off;
			if (rem > left) {
				off += left;
				break;
			}
			left -= rem;
			out_done(p, p->out[done]);
			off = 0;
		}
		if (done) {
			p->n_out -= done;
			memmove(p->out, p->out + done, p->n_out * sizeof(p->out[0]));
		}
		p->out_off = off;
		if ((size_t)w < total) {
			if (!p->want_out) {
				p->want_out = true;
				ep_mod(p);
			}
			return;
		}
	}
}

/* ------------------------------------------------------------ session */


/* ------------------------------------------------------------ connection */

static void conn_teardown(struct peer *p)
{
	if (p->fd < 0)
		return;
	epoll_ctl(p->thr->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	p->fd = -1;
	p->want_out = false;
	p->connecting = false;
	p->rx_len = 0;
	p->rx_held = false;              /* the held input went with the connection */
	p->ctl_len = p->ctl_off = 0;
	/* the chunks taken off the queue and not all written; the queue's
	 * bytes are the reflection thread's to zero when it drains the rest */
	for (unsigned k = 0; k < p->n_out; k++)
		obuf_unref(p->out[k]);
	p->n_out = 0;
	p->out_off = 0;
}

static void conn_attach(struct peer *p, int fd, bool connecting)
{
	set_nonblock(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd = fd;
	p->connecting = connecting;
	p->want_out = connecting;
	p->rx_len = 0;
	p->rx_bpp16 = 0;                 /* a new session: no density known */
	p->last_write_ns = log_now_ns();
	struct epoll_event ev = { .events = EPOLLIN | (connecting ? EPOLLOUT : 0),
				  .data.u64 = EV_DATA(EV_KIND_PEER, p->id) };
	if (epoll_ctl(p->thr->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_fatal("io: epoll_ctl add: %s", strerror(errno));
}

socklen_t io_sockaddr(struct sockaddr_storage *ss, const struct bgp_addr *a, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == BGP_FAM_IPV6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->addr, 16);
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, a->addr, 4);
	s4->sin_port = htons(port);
	return sizeof(*s4);
}

static void conn_start(struct peer *p)
{
	struct sockaddr_storage ss;
	socklen_t sl = io_sockaddr(&ss, &p->addr, p->cfg.port ? p->cfg.port : BGP_PORT);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("io: socket: %s", strerror(errno));
		sess_run(p, FSM_EV_TCP_FAILS, NULL);
		return;
	}
	sockopt_peer_socket(fd, &p->cfg, &p->addr, true);
	if (p->cfg.has_local_addr) {
		struct sockaddr_storage ls;
		socklen_t ll = io_sockaddr(&ls, &p->cfg.local_addr, 0);
		int one = 1;
		setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ls, ll) < 0)
			log_warn("io: bind local address: %s", strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		close(fd);
		sess_run(p, FSM_EV_TCP_FAILS, NULL);
		return;
	}
	conn_attach(p, fd, true);
}

/* ------------------------------------------------------------ OPEN */

static void build_capa(const struct peer *p, struct msg_capa *c)
{
	memset(c, 0, sizeof(*c));
	c->mp_any = true;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		c->mp[f] = (p->cfg.families & CFG_FAM_BIT(f)) != 0;
		if (c->mp[f])
			c->add_path[f] = (uint8_t)((p->cfg.addpath_receive ? MSG_ADDPATH_RECV : 0) |
						   (p->cfg.addpath_send ? MSG_ADDPATH_SEND : 0));
	}
	c->route_refresh = p->cfg.route_refresh;
	c->enhanced_rr = p->cfg.route_refresh;
	c->ext_msg = p->cfg.extended_messages;
	c->as4 = true;
	c->as4_asn = g_daemon->asn;
	if (p->cfg.gr_enabled) {
		c->gr = true;
		c->gr_time = p->cfg.gr_restart_time;
	}
}

static void send_open(struct peer *p)
{
	struct msg_capa c;
	uint8_t m[BGP_MAX_MSG];
	build_capa(p, &c);
	size_t n = msg_open_encode(m, sizeof(m), g_daemon->asn, (uint16_t)p->cfg.timers.hold,
				   g_daemon->router_id, &c);
	if (!n)
		log_fatal("io: OPEN does not fit");
	ctl_queue(p, m, n);
}

/* The session's identity for best-path selection (rib_peerinfo: BGP
 * identifier, AS, eBGP), from its OPEN (open_accept). */
static void peerinfo_publish(struct peer *p)
{
	struct rib_peerinfo *pi = &g_daemon->peerinfo[p->id];
	__atomic_store_n(&pi->bgp_id, p->pend_bgp_id, __ATOMIC_RELAXED);
	__atomic_store_n(&pi->asn, p->pend_asn, __ATOMIC_RELAXED);
	__atomic_store_n(&pi->ebgp, p->pend_ebgp, __ATOMIC_RELAXED);
	p->id_pending = false;
}

/* Check the peer's OPEN against configuration; fill the session parameters. */
static bool open_accept(struct peer *p, const struct msg_open *o, struct msg_error *err)
{
	const struct daemon *cfg = g_daemon;
	uint32_t asn = msg_open_asn(o);
	memset(err, 0, sizeof(*err));
	err->action = MSG_SESSION_RESET;
	err->code = BGP_ERR_OPEN;
	if (asn != p->cfg.asn) {
		err->subcode = BGP_ERR_OPEN_AS;
		err->reason = "peer AS does not match configuration";
		return false;
	}
	if (asn == cfg->asn && o->bgp_id == cfg->router_id) {
		err->subcode = BGP_ERR_OPEN_BGPID;
		err->reason = "peer uses our BGP identifier";
		return false;
	}
	struct msg_session *s = &p->sess;
	memset(s, 0, sizeof(*s));
	s->as4 = o->capa.as4;
	s->peer_as = asn;
	s->local_as = cfg->asn;
	s->ebgp = asn != cfg->asn;
	s->rs_client = p->cfg.role == CFG_ROLE_RS_CLIENT;
	bool any = false;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		bool theirs = o->capa.mp_any ? o->capa.mp[f] : f == BGP_FAM_IPV4;
		s->family[f] = theirs && (p->cfg.families & CFG_FAM_BIT(f));
		any |= s->family[f];
		s->addpath_rx[f] = s->family[f] && p->cfg.addpath_receive &&
				   (o->capa.add_path[f] & MSG_ADDPATH_SEND);
		s->addpath_tx[f] = s->family[f] && p->cfg.addpath_send &&
				   (o->capa.add_path[f] & MSG_ADDPATH_RECV);
	}
	if (!any) {
		err->subcode = BGP_ERR_OPEN_CAPA;
		err->reason = "no address family in common";
		return false;
	}
	s->max_msg = (p->cfg.extended_messages && o->capa.ext_msg) ? BGP_MAX_EXT_MSG : BGP_MAX_MSG;
	p->peer_open = *o;
	p->peer_open.capa.n_unknown = o->capa.n_unknown; /* values point into rx: not kept */
	for (unsigned i = 0; i < MSG_MAX_UNKNOWN_CAPA; i++)
		p->peer_open.capa.unknown[i].value = NULL;
	/* the reflection thread reads peer_bgp_id (ORIGINATOR_ID) and every RIB
	 * writer the peerinfo fields (best path) while this peer's stale paths
	 * (graceful restart) are still in the RIB: single-writer relaxed stores,
	 * read with relaxed loads (decide.h) */
	PEER_STAT_SET(p->peer_bgp_id, o->bgp_id);
	const struct rib_peerinfo *pi = &g_daemon->peerinfo[p->id];
	p->pend_bgp_id = o->bgp_id;
	p->pend_asn = asn;
	p->pend_ebgp = s->ebgp;
	/* stale paths held (graceful restart) were ranked with the identity
	 * published now: they must not change rank under another (session_up) */
	p->id_pending = p->gr_stale && (__atomic_load_n(&pi->bgp_id, __ATOMIC_RELAXED) != o->bgp_id ||
					__atomic_load_n(&pi->asn, __ATOMIC_RELAXED) != asn ||
					__atomic_load_n(&pi->ebgp, __ATOMIC_RELAXED) != s->ebgp);
	if (!p->id_pending)
		peerinfo_publish(p);
	err->action = MSG_OK;
	return true;
}

/* ------------------------------------------------------------ FSM glue */

/* graceful restart: once the session is back, stale paths wait this long at
 * most for the End-of-RIB (FRR's default stale-path time) */
#define GR_STALE_PATH_S 360ull

/*
 * Sweeps: what a session leaves behind when it goes down - all its paths to
 * withdraw, or (graceful restart) to flag stale, and later the stale ones to
 * withdraw when the restart time runs out - is a million prefixes for a full
 * table, seconds of work.  Done in one go it would stall every other peer of
 * this thread: no reads, no KEEPALIVEs, no output.  So it is queued here as
 * jobs (family, mode) and done PEER_SWEEP_STEP prefixes at a time from the
 * loop, between rounds of other work (io/loop.c), the job in progress being
 * a resumable cursor over the peer's prefix index (rib_sweep_step).
 *
 * The rule that makes this safe: while a peer has jobs, it gets no new
 * session (an accepted connection waits in pending_fd, a connect waits, as
 * they do for the reflection thread's "reset done").  So the paths a sweep
 * meets are the old session's only, the index is the old session's alone,
 * and jobs queued for one family run in order (mark stale, then withdraw the
 * stale ones, gives what it gave in one go).
 *
 * A live session asks for sweeps too: End-of-RIB after a graceful restart
 * and the stale-path time (withdraw the stale paths), a session coming back
 * without forwarding state for a family (the same at once), BoRR and EoRR of
 * an enhanced route refresh (flag all stale, withdraw the stale ones) - as
 * long as the others for a full table.  Its own later UPDATEs must not
 * overtake such a sweep (a re-announcement after the End-of-RIB would be
 * taken as stale; one after the BoRR would be flagged).  So the sweep holds
 * the peer's input (sweep_live, rx_held): the framing loop stops right after
 * the message that asked for it (its announcements applied), the bytes not
 * yet handled wait in rx, the socket is not read (EPOLLIN off; TCP flow
 * control holds the peer back), and once the last job is done the buffered
 * messages are handled and reading goes on (sess_input_resume).  The
 * session itself is untouched: output, our KEEPALIVEs, the reflection
 * thread's chunks, all go on.  A sweep that fits in one step is done at
 * once, input never held (as before, for small tables).
 *
 * The hold timer does not run while input is held: the peer's KEEPALIVEs
 * are waiting in our buffers, unread because of us, so expiring it would
 * punish the peer for our pause.  The time held is added to the deadline
 * when input resumes (the buffered KEEPALIVEs, if any, then restart it as
 * usual).  What this costs: a peer that really died during the sweep is
 * seen dead that much later - the sweep's length: 0.14-0.18 s for 600,000
 * stale paths on the 2-core VM (tests/integration/test_sweep.py), count on
 * about 1 s for a full table on a busy thread (PEER_SWEEP_STEP prefixes per
 * loop round, the other peers' work in between); bounded by the peer's own
 * table, and the peer is held back by nothing else.  A connection from the peer accepted meanwhile (a restart)
 * waits in pending_fd, as during a session-down sweep, and is taken once
 * the sweep is done and the held input handled.
 *
 * Meanwhile the old paths are still in the RIB, and still reflected, until
 * their step comes; the route count drops step by step.  At shutdown the
 * jobs are abandoned (the process exits; rib_destroy would free the rest).
 */
#define PEER_SWEEP_STEP 4096

static void sweep_queue(struct peer *p, unsigned fam, enum rib_sweep_mode mode)
{
	for (unsigned i = 0; i < p->n_sweep_jobs; i++)
		if (p->sweep_jobs[i].fam == fam && p->sweep_jobs[i].mode == mode)
			return; /* already queued, not started: it will cover these too */
	if (p->n_sweep_jobs == PEER_SWEEP_JOBS)
		log_fatal("io: peer %u: sweep queue full", p->id);
	p->sweep_jobs[p->n_sweep_jobs].fam = (uint8_t)fam;
	p->sweep_jobs[p->n_sweep_jobs].mode = (uint8_t)mode;
	p->n_sweep_jobs++;
	if (!p->sweeping) {
		p->sweeping = true;
		p->sweep.done = true; /* none in progress: the step takes the first job */
		p->sweep_start_ns = log_now_ns();
		p->sweep_withdrawn = p->sweep_marked = 0;
		p->sweep_why = NULL;
		p->thr->n_sweeping++;
	}
}

/* Up to budget prefixes of p's sweep jobs, keeping the route and per-peer
 * counters in step (stale paths stay counted as accepted while they are in
 * the RIB).  True when the last job is done (sweep_end not yet called). */
static bool sweep_work(struct peer *p, size_t budget)
{
	while (budget) {
		if (p->sweep.done) {
			if (!p->n_sweep_jobs)
				return true;
			struct peer_sweep_job j = p->sweep_jobs[0];
			memmove(p->sweep_jobs, p->sweep_jobs + 1, (p->n_sweep_jobs - 1) * sizeof(j));
			p->n_sweep_jobs--;
			rib_sweep_begin(g_daemon->rib, &p->sweep, p->id, j.fam, j.mode);
		}
		unsigned f = p->sweep.fam;
		size_t pos = p->sweep.pos;
		uint64_t n = rib_sweep_step(g_daemon->rib, &p->sweep, budget);
		size_t did = p->sweep.pos - pos;
		budget -= did < budget ? did : budget;
		if (p->sweep.mode == RIB_SWEEP_MARK_STALE) {
			p->sweep_marked += n;
			continue;
		}
		p->sweep_withdrawn += n;
		PEER_STAT_SET(p->prefixes_accepted[f], p->prefixes_accepted[f] > n ? p->prefixes_accepted[f] - n : 0);
		atomic_fetch_sub_explicit(&g_daemon->routes, n, memory_order_relaxed);
	}
	return p->sweep.done && !p->n_sweep_jobs;
}

/* The last job is done: no longer sweeping, say what it did.  A live
 * session's sweep that withdrew the stale paths of another identity
 * (session_up) makes the session's own identity the one paths rank with. */
static void sweep_end(struct peer *p)
{
	char nm[96];
	p->sweeping = false;
	p->thr->n_sweeping--;
	if (p->id_pending && p->sweep_why)
		peerinfo_publish(p);
	double ms = (double)(log_now_ns() - p->sweep_start_ns) / 1e6;
	if (p->sweep_why)
		log_info("peer %s: %s: %" PRIu64 " stale paths withdrawn, %" PRIu64
			 " paths flagged stale, in %.0f ms%s", peer_name(p, nm, sizeof(nm)), p->sweep_why,
			 p->sweep_withdrawn, p->sweep_marked, ms, p->rx_held ? " (input held meanwhile)" : "");
	else
		log_info("peer %s: %" PRIu64 " paths withdrawn, %" PRIu64 " flagged stale, in %.0f ms",
			 peer_name(p, nm, sizeof(nm)), p->sweep_withdrawn, p->sweep_marked, ms);
	p->sweep_why = NULL;
}

/*
 * A sweep the live session asks for (why: for the log), of family fam
 * (BGP_FAM_COUNT: all): one step at once - a small table is done with it -
 * and otherwise the rest from the loop with the peer's input held.  Called
 * from the handling of the message that asks for it (the caller's framing
 * loop stops after it: rx_process) or from the timers; the announcements
 * gathered before it must have been applied (ingest_flush).
 */
static void sweep_live(struct peer *p, unsigned fam, enum rib_sweep_mode mode, const char *why)
{
	bool was = p->sweeping;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (fam == BGP_FAM_COUNT || fam == f)
			sweep_queue(p, f, mode);
	if (!p->sweep_why)
		p->sweep_why = why;
	if (!was && sweep_work(p, PEER_SWEEP_STEP)) {
		sweep_end(p);
		return;
	}
	if (!p->rx_held) {
		p->rx_held = true;
		p->rx_held_ns = log_now_ns();
		if (p->fd >= 0)
			ep_mod(p);
	}
}

static void sess_resume(struct peer *p);
static void sess_input_resume(struct peer *p);

void sess_sweep_step(struct peer *p)
{
	if (!p->sweeping || !sweep_work(p, PEER_SWEEP_STEP))
		return;
	sweep_end(p);
	if (p->rx_held) {
		/* a live session's sweep: its held input next (which may ask for
		 * another sweep, or end the session) */
		sess_input_resume(p);
		if (p->sweeping || p->reset_pending)
			return;
	}
	if (!p->reset_pending)
		sess_resume(p);
}

_Static_assert(BGP_FAM_COUNT <= 16, "PEER_SNAP_FAM bits overlap the others");

/* What other threads may know of the session (struct peer, sess_snap). */
static unsigned sess_snapshot(const struct peer *p)
{
	unsigned w = PEER_SNAP_UP;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (p->sess.family[f])
			w |= PEER_SNAP_FAM(f);
	if (p->peer_open.capa.route_refresh)
		w |= PEER_SNAP_ROUTE_REFRESH;
	return w;
}

static void session_up(struct peer *p)
{
	char nm[96];
	PEER_STAT_SET(p->up_since_ns, log_now_ns());
	p->backoff_s = 0;
	peer_set_error(p, "%s", "");
	atomic_store_explicit(&p->sess_snap, sess_snapshot(p), memory_order_release);
	atomic_store(&p->state, FSM_ESTABLISHED);
	char fams[64];
	fams[0] = '\0';
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (p->sess.family[f])
			strcat(fams, f == BGP_FAM_IPV4 ? " ipv4" : " ipv6");
	log_info("peer %s: session Established (hold %u s, families%s%s%s%s)",
		 peer_name(p, nm, sizeof(nm)), p->fsm.hold, fams, p->sess.as4 ? ", as4" : "",
		 p->sess.max_msg > BGP_MAX_MSG ? ", extended messages" : "",
		 (p->sess.addpath_rx[0] || p->sess.addpath_rx[1] || p->sess.addpath_tx[0] ||
		  p->sess.addpath_tx[1]) ? ", add-path" : "");
	/*
	 * Back under another BGP identifier or AS (open_accept): RFC 4724 keeps
	 * the paths of a speaker that restarts, and ranking them under a new
	 * identity would change their order in path sets that are kept sorted
	 * incrementally (rib/decide.h) - they would not be re-sorted.  Another
	 * identity is another speaker: its stale paths go now, with its input
	 * held (it has sent nothing yet), and the new identity is published
	 * when they are gone (sweep_end), before any path of the new session.
	 */
	if (p->id_pending) {
		char was[16], now_id[16];
		const struct rib_peerinfo *pi = &g_daemon->peerinfo[p->id];
		bgp_id_fmt(was, sizeof(was), __atomic_load_n(&pi->bgp_id, __ATOMIC_RELAXED));
		bgp_id_fmt(now_id, sizeof(now_id), p->pend_bgp_id);
		log_info("peer %s: back with BGP identifier %s AS %u (stale paths from %s AS %u): "
			 "not the same speaker, its stale paths are withdrawn now",
			 peer_name(p, nm, sizeof(nm)), now_id, p->pend_asn, was,
			 __atomic_load_n(&pi->asn, __ATOMIC_RELAXED));
		p->gr_stale = false;
		p->gr_deadline_ns = 0;
		sweep_live(p, BGP_FAM_COUNT, RIB_SWEEP_WITHDRAW_STALE,
			   "session back with another BGP identifier or AS");
	}
	/* a graceful restart that did not keep forwarding state for a family */
	if (p->gr_stale) {
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			if (!p->peer_open.capa.gr || !p->peer_open.capa.gr_fwd[f])
				sweep_live(p, f, RIB_SWEEP_WITHDRAW_STALE,
					   "session back without forwarding state");
		/* what is still stale waits for End-of-RIB, at most GR_STALE_PATH_S */
		p->gr_deadline_ns = p->up_since_ns + GR_STALE_PATH_S * 1000000000ull;
	}
	bmp_peer_up(p);
	refl_peer_up(g_daemon->refl, p);
}

static void session_down(struct peer *p)
{
	char nm[96];
	uint64_t now = log_now_ns();
	PEER_STAT_SET(p->down_since_ns, now);
	atomic_store_explicit(&p->sess_snap, 0, memory_order_release);
	atomic_store(&p->state, FSM_IDLE);
	if (p->rx_held) {
		/* a live sweep was holding this session's input: the input is
		 * dropped with the session, its jobs stay ahead of the ones below */
		p->rx_held = false;
		if (p->fd >= 0)
			ep_mod(p);
	}
	p->sweep_why = NULL;             /* the end line counts the session's paths too */
	bool keep = p->peer_open.capa.gr && p->cfg.gr_enabled && !p->down_by_notification;
	/* the paths go (or turn stale) in steps from the loop: sess_sweep_step */
	uint64_t n = 0;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		n += rib_peer_prefixes(g_daemon->rib, p->id, f);
	if (keep) {
		/* RFC 4724 s4.2: only the families the peer listed in its GR capability */
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			sweep_queue(p, f, p->peer_open.capa.gr_family[f] ? RIB_SWEEP_MARK_STALE
									 : RIB_SWEEP_WITHDRAW);
		p->gr_stale = true;
		p->gr_deadline_ns = now + (uint64_t)(p->peer_open.capa.gr_time ? p->peer_open.capa.gr_time
									   : p->cfg.gr_restart_time) * 1000000000ull;
		log_info("peer %s: session down, paths of %" PRIu64 " prefixes kept as stale (graceful restart, %u s)",
			 peer_name(p, nm, sizeof(nm)), n, p->peer_open.capa.gr_time);
	} else {
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
			sweep_queue(p, f, RIB_SWEEP_WITHDRAW);
		p->gr_stale = false;
		log_info("peer %s: session down, paths of %" PRIu64 " prefixes to withdraw",
			 peer_name(p, nm, sizeof(nm)), n);
	}
	sess_sweep_step(p); /* a small table goes at once */
	p->max_prefix_warned = false;
	p->reset_pending = true;
	bmp_peer_down(p);
	refl_peer_down(g_daemon->refl, p);
}

static void sess_run(struct peer *p, enum fsm_event ev, const struct fsm_event_arg *arg)
{
	struct fsm_action acts[FSM_MAX_ACTIONS];
	uint8_t before = p->fsm.state;
	size_t n = fsm_event(&p->fsm, ev, arg, acts, FSM_MAX_ACTIONS);
	uint64_t now = log_now_ns();
	if (p->fsm.state != before) {
		char nm[96];
		log_debug("peer %s: %s -> %s on %s", peer_name(p, nm, sizeof(nm)), fsm_state_name(before),
			  fsm_state_name(p->fsm.state), fsm_event_name(ev));
		if (p->fsm.state != FSM_ESTABLISHED)
			atomic_store(&p->state, p->fsm.state);
	}
	for (size_t i = 0; i < n; i++) {
		const struct fsm_action *a = &acts[i];
		switch (a->type) {
		case FSM_ACT_CONNECT:
			if (p->reset_pending || p->sweeping)
				break; /* reconnect after the reflection thread let go and
					  the old paths are gone (sess_resume) */
			conn_start(p);
			break;
		case FSM_ACT_CLOSE:
			peer_flush(p);
			conn_teardown(p);
			break;
		case FSM_ACT_SEND_OPEN:
			send_open(p);
			peer_flush(p);
			break;
		case FSM_ACT_SEND_KEEPALIVE:
			send_keepalive(p);
			peer_flush(p);
			break;
		case FSM_ACT_SEND_NOTIFICATION:
			send_notification(p, a->code, a->subcode, a->data, a->data_len);
			break;
		case FSM_ACT_TIMER_START: {
			uint32_t s = a->seconds;
			if (a->timer == FSM_TIMER_IDLE_HOLD) {
				p->backoff_s = p->backoff_s ? p->backoff_s * 2 : 1;
				if (p->backoff_s > 120)
					p->backoff_s = 120;
				s = p->backoff_s;
			}
			if (a->timer < FSM_TIMER_COUNT)
				p->next_timer_ns[a->timer] = now + (uint64_t)s * 1000000000ull;
			break;
		}
		case FSM_ACT_TIMER_STOP:
			if (a->timer == FSM_TIMER_ALL)
				memset(p->next_timer_ns, 0, sizeof(p->next_timer_ns));
			else if (a->timer < FSM_TIMER_COUNT)
				p->next_timer_ns[a->timer] = 0;
			break;
		case FSM_ACT_SESSION_UP:
			session_up(p);
			break;
		case FSM_ACT_SESSION_DOWN:
			session_down(p);
			break;
		case FSM_ACT_RELEASE:
			break;
		}
	}
}

static void fsm_setup(struct peer *p)
{
	struct fsm_config fc = {
		.hold_time = (uint16_t)p->cfg.timers.hold,
		.keepalive = (uint16_t)p->cfg.timers.keepalive,
		.connect_retry = (uint16_t)p->cfg.timers.connect_retry,
		.idle_hold_time = p->cfg.passive ? 0 : 1,
		.passive = p->cfg.passive,
	};
	fsm_init(&p->fsm, &fc);
}

void sess_start(struct peer *p)
{
	fsm_setup(p);
	sess_run(p, p->cfg.passive ? FSM_EV_MANUAL_START_PASSIVE : FSM_EV_MANUAL_START, NULL);
}

void sess_accepted(struct peer *p, int fd)
{
	char nm[96];
	if (maxpfx_holddown(p, log_now_ns())) {
		uint32_t sup = 0;
		if (log_ratelimit_ok(&p->rl_malformed[0], MALFORMED_LOG_INTERVAL_NS, &sup))
			log_warn("peer %s: connection refused: max-prefixes hold-down [%u similar suppressed]",
				 peer_name(p, nm, sizeof(nm)), sup);
		close(fd);
		return;
	}
	if (p->reset_pending || p->sweeping) {
		/* the previous session is still being cleaned up: take it a moment later */
		if (p->pending_fd >= 0)
			close(p->pending_fd);
		p->pending_fd = fd;
		return;
	}
	if (p->fd >= 0 && p->fsm.state >= FSM_OPENSENT) {
		/* a peer cannot hold two sessions: if the old socket already saw EOF or
		 * an error, finish it now and take the new one after the reset */
		char c;
		ssize_t r = recv(p->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		/* RFC 4724 s4.2: a GR peer connecting again while its session is
		 * Established has restarted: the old session ends as a drop */
		bool gr_restart = p->fsm.state == FSM_ESTABLISHED && p->cfg.gr_enabled && p->peer_open.capa.gr;
		if (gr_restart || r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			peer_set_error(p, "%s",
				 gr_restart && r != 0 ? "new connection (graceful restart)" : "connection closed by peer");
			p->down_by_notification = false;
			sess_run(p, FSM_EV_TCP_FAILS, NULL);
			if (p->reset_pending || p->sweeping) {
				p->pending_fd = fd;
				return;
			}
		}
	}
	if (p->fd >= 0) {
		if (p->fsm.state == FSM_CONNECT || p->fsm.state == FSM_ACTIVE ||
		    (p->fsm.state == FSM_OPENSENT && p->connecting)) {
			/* our own connect has not produced an OPEN yet: prefer theirs */
			conn_teardown(p);
		} else if ((p->fsm.state == FSM_OPENSENT || p->fsm.state == FSM_OPENCONFIRM) &&
			   p->cfg.passive) {
			/* passive: we never connect, so two inbound connections are no
			 * collision - the peer gave up the older one (it restarted, or GTSM
			 * drops its segments after the OPEN slipped through): the newest
			 * wins, so a dead connection cannot hold the peer's slot */
			log_info("peer %s: new connection replaces an unfinished one (%s)",
				 peer_name(p, nm, sizeof(nm)), fsm_state_name(p->fsm.state));
			conn_teardown(p);
			memset(p->next_timer_ns, 0, sizeof(p->next_timer_ns));
			fsm_setup(p);
		} else {
			uint8_t m[BGP_HDR_LEN + 2];
			size_t n = msg_notification_encode(m, sizeof(m), BGP_ERR_CEASE, BGP_CEASE_COLLISION,
							   NULL, 0);
			ssize_t w = write(fd, m, n);
			(void)w;
			close(fd);
			log_info("peer %s: connection collision, new connection closed (state %s)",
				 peer_name(p, nm, sizeof(nm)), fsm_state_name(p->fsm.state));
			return;
		}
	}
	if (p->fsm.state == FSM_IDLE) {
		fsm_setup(p);
		sess_run(p, FSM_EV_MANUAL_START_PASSIVE, NULL);
	}
	conn_attach(p, fd, false);
	p->want_out = false;
	ep_mod(p);
	p->down_by_notification = false;
	log_debug("peer %s: connection accepted", peer_name(p, nm, sizeof(nm)));
	sess_run(p, FSM_EV_TCP_CONFIRMED, NULL);
}

void sess_reset_done(struct peer *p)
{
	p->reset_pending = false;
	if (!p->sweeping)
		sess_resume(p);
}

/* The old session is all gone (queue released, paths swept): go on. */
static void sess_resume(struct peer *p)
{
	if (p->pending_fd >= 0) {
		int fd = p->pending_fd;
		p->pending_fd = -1;
		sess_accepted(p, fd);
		return;
	}
	if (p->admin_down)
		return;
	if (!p->cfg.passive && maxpfx_holddown(p, log_now_ns())) {
		if (p->maxpfx_until_ns != UINT64_MAX)
			p->next_timer_ns[FSM_TIMER_IDLE_HOLD] = p->maxpfx_until_ns;
		return;
	}
	if (p->fsm.state == FSM_IDLE && (p->cfg.passive || !p->next_timer_ns[FSM_TIMER_IDLE_HOLD])) {
		fsm_setup(p);
		sess_run(p, p->cfg.passive ? FSM_EV_MANUAL_START_PASSIVE : FSM_EV_MANUAL_START, NULL);
	} else if (p->fsm.state == FSM_CONNECT && p->fd < 0) {
		conn_start(p);
	}
}

void sess_reconfig(struct peer *p, struct cfg_peer *nc)
{
	if (p->fd >= 0 || p->fsm.state != FSM_IDLE)
		sess_admin_close(p, BGP_CEASE_OTHER_CONFIG);
	free(p->cfg.description);
	free(p->cfg.md5_password);
	p->cfg = *nc;
	free(nc);
	p->admin_down = false;
	p->maxpfx_until_ns = 0;
	if (!p->reset_pending && !p->sweeping && p->fsm.state == FSM_IDLE)
		sess_start(p);
}

void sess_admin_close(struct peer *p, uint8_t sub)
{
	struct fsm_event_arg arg = { .cease_subcode = sub };
	p->down_by_notification = true;
	sess_run(p, FSM_EV_MANUAL_STOP, &arg);
	p->admin_down = sub == BGP_CEASE_PEER_DECONFIG;
}

/* `ricochet refresh PEER [ipv4|ipv6]`: ask the peer to re-send its routes
 * (RFC 2918), one ROUTE-REFRESH per negotiated family.  The CLI checked the
 * capability in sess_snap; the session may have changed since (a flap: the
 * request may even meet the next session), so check again here, where sess
 * and peer_open are ours. */
void sess_send_refresh(struct peer *p, unsigned family)
{
	char nm[96];
	if (p->fsm.state != FSM_ESTABLISHED || !p->peer_open.capa.route_refresh) {
		log_info("peer %s: route refresh not sent (session down or no route-refresh capability)",
			 peer_name(p, nm, sizeof(nm)));
		return;
	}
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		if (!p->sess.family[f] || (family != BGP_FAM_COUNT && family != f))
			continue;
		uint8_t m[BGP_HDR_LEN + 4];
		size_t n = msg_route_refresh_encode(m, sizeof(m), f, BGP_RR_NORMAL);
		if (!n)
			continue;
		ctl_queue(p, m, n);
		PEER_STAT_ADD(p->c.refresh_out, 1);
		log_info("peer %s: ROUTE-REFRESH for %s sent", peer_name(p, nm, sizeof(nm)),
			 f == BGP_FAM_IPV4 ? "ipv4-unicast" : "ipv6-unicast");
	}
	peer_flush(p);
}

/* ------------------------------------------------------------ UPDATE ingest */

static void log_malformed(struct peer *p, const struct msg_error *e)
{
	uint32_t sup = 0;
	/* once per peer per kind (attribute type and reaction) and interval */
	unsigned k = ((unsigned)e->attr_type * 2u + (e->action == MSG_TREAT_AS_WITHDRAW)) % PEER_MALFORMED_KINDS;
	if (!log_ratelimit_ok(&p->rl_malformed[k], MALFORMED_LOG_INTERVAL_NS, &sup))
		return;
	char nm[96];
	log_warn("peer %s: malformed UPDATE (%s): %s%s [%u similar suppressed]", peer_name(p, nm, sizeof(nm)),
		 e->action == MSG_TREAT_AS_WITHDRAW ? "treat-as-withdraw" : "attribute discarded",
		 e->reason ? e->reason : "?", e->attr_type ? "" : "", sup);
}

static bool is_loop(const struct msg_update *u)
{
	const struct daemon *cfg = g_daemon;
	if (u->has_originator_id && u->originator_id == cfg->router_id)
		return true;
	for (unsigned i = 0; i < u->cluster_list_len; i++) {
		const uint8_t *c = u->cluster_list + 4 * i;
		uint32_t id = bgp_get32(c);
		if (id == cfg->cluster_id)
			return true;
	}
	return false;
}

static void ingest_withdraw(struct peer *p, const struct msg_nlri *n)
{
	struct msg_nlri_iter it;
	struct bgp_prefix pfx;
	if (!n->len)
		return;
	msg_nlri_iter_init(&it, n);
	int64_t gone = 0;
	/* in batches, like announcements: one lock per stripe run, the tree
	 * lookups of a batch overlapped */
	struct bgp_prefix bp[64];
	uint8_t hit[64];
	size_t nb = 0;
	bool more = true;
	while (more) {
		more = msg_nlri_next(&it, &pfx);
		if (more) {
			PEER_STAT_ADD(p->c.withdraws_in, 1);
			if (pfx.family < BGP_FAM_COUNT)
				bp[nb++] = pfx;
		}
		if (nb < 64 && (more || nb == 0))
			continue;
		rib_withdraw_batch(g_daemon->rib, bp, nb, p->id, hit);
		for (size_t i = 0; i < nb; i++) {
			if (!hit[i])
				continue;
			PEER_STAT_SET(p->prefixes_accepted[bp[i].family], p->prefixes_accepted[bp[i].family] - 1);
			gone++;
		}
		nb = 0;
	}
	if (gone)
		atomic_fetch_sub_explicit(&g_daemon->routes, (uint64_t)gone, memory_order_relaxed);
}

/* Apply the gathered announcements (struct io_ingest) of p's thread. */
static void ingest_flush(struct peer *p)
{
	struct io_ingest *b = p->thr->ingest;
	if (!b->n && !b->nsets)
		return;
	if (b->p != p)
		log_fatal("io: ingest batch of another peer pending");
	uint64_t added = 0;
	if (b->n) {
		rib_update_multi(g_daemon->rib, b->pfx, b->attr, b->n, p->id, 0, b->added);
		for (uint32_t i = 0; i < b->n; i++) {
			if (b->added[i]) {
				PEER_STAT_ADD(p->prefixes_accepted[b->pfx[i].family], 1);
				added++;
			}
		}
	}
	for (uint32_t i = 0; i < b->nsets; i++)
		attr_unref(g_daemon->attrs, b->sets[i]);
	if (added)
		atomic_fetch_add_explicit(&g_daemon->routes, added, memory_order_relaxed);
	b->n = b->nsets = 0;
	b->p = NULL;
}

/*
 * Announcements without a global route limit: gathered in the thread's
 * io_ingest, which takes over the reference attr_intern returned (one more
 * if the UPDATE spans a flush).
 */
static void ingest_announce_gather(struct peer *p, const struct msg_nlri *n, struct attr_set *a)
{
	struct io_ingest *b = p->thr->ingest;
	struct msg_nlri_iter it;
	struct bgp_prefix pfx;
	bool own = true;                 /* the intern reference is still ours */
	if (b->p && b->p != p)
		log_fatal("io: ingest batch of another peer pending");
	msg_nlri_iter_init(&it, n);
	while (msg_nlri_next(&it, &pfx)) {
		PEER_STAT_ADD(p->c.prefixes_in, 1);
		if (b->n == IO_INGEST_MAX || b->nsets == IO_INGEST_MAX)
			ingest_flush(p);
		if (!b->nsets || b->sets[b->nsets - 1] != a) {
			if (!own)
				attr_ref(a);
			own = false;
			b->sets[b->nsets++] = a;
		}
		b->p = p;
		b->pfx[b->n] = pfx;
		b->attr[b->n++] = a;
	}
	if (own)
		attr_unref(g_daemon->attrs, a);
}

static void ingest_announce(struct peer *p, const struct msg_nlri *n, const struct bgp_nexthop *nh,
			    const struct msg_update *u)
{
	struct msg_nlri_iter it;
	struct bgp_prefix pfx;
	if (!n->len)
		return;
	struct attr_set *a = attr_intern(g_daemon->attrs, nh, u->attrs, u->attrs_len);
	uint64_t limit = __atomic_load_n(&g_daemon->max_routes, __ATOMIC_RELAXED); /* reload rewrites it */
	if (!limit) {
		ingest_announce_gather(p, n, a);
		return;
	}
	ingest_flush(p);
	uint64_t total = atomic_load_explicit(&g_daemon->routes, memory_order_relaxed);
	uint64_t added = 0, refused = 0;
	/* prefixes go to the RIB in batches (one attr reference add, one lock per
	 * stripe run); near the route limit one by one, so it is never overshot */
	struct bgp_prefix bp[64];
	uint8_t ad[64];
	size_t nb = 0;
	bool more = true;
	msg_nlri_iter_init(&it, n);
	while (more) {
		more = msg_nlri_next(&it, &pfx);
		if (more) {
			PEER_STAT_ADD(p->c.prefixes_in, 1);
			bp[nb++] = pfx;
		}
		if (nb < 64 && (more || nb == 0))
			continue;
		bool one_by_one = limit && total + added + nb >= limit;
		if (!one_by_one)
			rib_update_batch(g_daemon->rib, bp, nb, p->id, a, 0, ad);
		for (size_t i = 0; i < nb; i++) {
			if (one_by_one)
				ad[i] = rib_update(g_daemon->rib, &bp[i], p->id, a, 0) > 0;
			if (!ad[i])
				continue;
			if (limit && total + added >= limit) {
				/* the global route limit (max-routes): a new path is refused,
				 * replacements of existing ones still go through */
				rib_withdraw(g_daemon->rib, &bp[i], p->id);
				refused++;
				continue;
			}
			PEER_STAT_ADD(p->prefixes_accepted[bp[i].family], 1);
			added++;
		}
		nb = 0;
	}
	attr_unref(g_daemon->attrs, a);
	if (added)
		atomic_fetch_add_explicit(&g_daemon->routes, added, memory_order_relaxed);
	if (refused) {
		PEER_STAT_ADD(p->c.routes_refused, refused);
		uint32_t sup = 0;
		if (log_ratelimit_ok(&p->rl_limit, MALFORMED_LOG_INTERVAL_NS, &sup)) {
			char nm[96];
			log_warn("peer %s: global route limit of %" PRIu64 " reached, %" PRIu64
				 " new paths refused [%u similar suppressed]",
				 peer_name(p, nm, sizeof(nm)), limit, refused, sup);
		}
	}
}

/* Returns false when the session must be reset (err filled). */
static bool ingest_update(struct peer *p, const uint8_t *msg, size_t len, struct msg_error *err)
{
	struct msg_update u;
	msg_update_parse(msg, len, &p->sess, p->thr->scratch, &u, err);
	PEER_STAT_ADD(p->c.updates_in, 1);
	if (err->action == MSG_SESSION_RESET)
		return false;
	if (err->action == MSG_AFI_DISABLE) {
		/* we do not keep a session with a family switched off: reset (RFC 7606 s5.3 allows) */
		err->action = MSG_SESSION_RESET;
		return false;
	}
	bool taw = err->action == MSG_TREAT_AS_WITHDRAW;
	if (taw || err->discarded) {
		if (taw)
			PEER_STAT_ADD(p->c.treat_as_withdraw, 1);
		else
			PEER_STAT_ADD(p->c.attr_discard, 1);
		log_malformed(p, err);
	}
	if (!taw && (u.nlri.len || u.mp_reach.len) && is_loop(&u)) {
		PEER_STAT_ADD(p->c.loops_dropped, 1);
		taw = true;
	}
	if (u.withdrawn.len || u.mp_unreach.len || taw)
		ingest_flush(p);         /* they may withdraw what is gathered */
	ingest_withdraw(p, &u.withdrawn);
	ingest_withdraw(p, &u.mp_unreach);
	if (taw) {
		ingest_withdraw(p, &u.nlri);
		ingest_withdraw(p, &u.mp_reach);
	} else {
		ingest_announce(p, &u.nlri, &u.nexthop4, &u);
		ingest_announce(p, &u.mp_reach, &u.mp_nexthop, &u);
	}
	if (u.eor_family != BGP_FAM_NONE && p->gr_stale) {
		ingest_flush(p);         /* re-announced paths are no longer stale */
		/* the next messages wait for it (input held) */
		sweep_live(p, u.eor_family, RIB_SWEEP_WITHDRAW_STALE,
			   u.eor_family == BGP_FAM_IPV4 ? "End-of-RIB for ipv4" : "End-of-RIB for ipv6");
	}
	/* max-prefixes (per peer, all families) */
	if (p->cfg.max_prefixes) {
		ingest_flush(p);         /* the count must include this UPDATE */
		uint64_t total = p->prefixes_accepted[0] + p->prefixes_accepted[1];
		uint64_t warn = (uint64_t)p->cfg.max_prefixes * p->cfg.max_prefixes_warning_pct / 100;
		if (total > p->cfg.max_prefixes) {
			memset(err, 0, sizeof(*err));
			err->action = MSG_SESSION_RESET;
			err->code = BGP_ERR_CEASE;
			err->subcode = BGP_CEASE_MAX_PREFIX;
			err->reason = "maximum number of prefixes reached";
			/* RFC 4486: AFI, SAFI, limit */
			err->data_len = 7;
			err->data[0] = 0;
			err->data[1] = BGP_AFI_IPV4;
			err->data[2] = BGP_SAFI_UNICAST;
			err->data[3] = (uint8_t)(p->cfg.max_prefixes >> 24);
			err->data[4] = (uint8_t)(p->cfg.max_prefixes >> 16);
			err->data[5] = (uint8_t)(p->cfg.max_prefixes >> 8);
			err->data[6] = (uint8_t)p->cfg.max_prefixes;
			p->maxpfx_until_ns = p->cfg.max_prefixes_restart
				? log_now_ns() + (uint64_t)p->cfg.max_prefixes_restart * 1000000000ull
				: UINT64_MAX;
			return false;
		} else if (total >= warn && !p->max_prefix_warned) {
			char nm[96];
			p->max_prefix_warned = true;
			log_warn("peer %s: %" PRIu64 " prefixes, warning threshold of %u%% of %u reached",
				 peer_name(p, nm, sizeof(nm)), total, p->cfg.max_prefixes_warning_pct,
				 p->cfg.max_prefixes);
		}
	}
	return true;
}

/* ------------------------------------------------------------ input */

static void handle_msg(struct peer *p, const uint8_t *msg, size_t len)
{
	struct msg_error err;
	struct fsm_event_arg arg = { .err = &err };
	uint8_t type = msg[18];
	char nm[96];
	PEER_STAT_ADD(p->c.msgs_in, 1);
	mrtdump_rx(p, msg, len);
	bmp_rx(p, msg, len);
	if (type != BGP_MSG_UPDATE)
		ingest_flush(p);         /* whatever it does comes after the announcements */
	switch (type) {
	case BGP_MSG_OPEN: {
		struct msg_open o;
		if (msg_open_parse(msg, len, &o, &err) < 0) {
			log_warn("peer %s: bad OPEN: %s", peer_name(p, nm, sizeof(nm)),
				 err.reason ? err.reason : "?");
			sess_run(p, FSM_EV_OPEN_ERR, &arg);
			return;
		}
		if (p->fsm.state == FSM_OPENSENT && !open_accept(p, &o, &err)) {
			log_warn("peer %s: OPEN refused: %s", peer_name(p, nm, sizeof(nm)), err.reason);
			sess_run(p, FSM_EV_OPEN_ERR, &arg);
			return;
		}
		struct fsm_event_arg oa = { .open = &o };
		sess_run(p, FSM_EV_OPEN, &oa);
		return;
	}
	case BGP_MSG_KEEPALIVE:
		sess_run(p, FSM_EV_KEEPALIVE, NULL);
		return;
	case BGP_MSG_UPDATE:
		if (p->fsm.state != FSM_ESTABLISHED) {
			ingest_flush(p);
			sess_run(p, FSM_EV_UPDATE, NULL); /* the FSM answers with an FSM error */
			return;
		}
		if (!ingest_update(p, msg, len, &err)) {
			ingest_flush(p); /* the UPDATEs before this one stand */
			log_warn("peer %s: UPDATE error %u/%u (%s): %s", peer_name(p, nm, sizeof(nm)), err.code,
				 err.subcode, bgp_suberr_name(err.code, err.subcode),
				 err.reason ? err.reason : "?");
			if (err.code == BGP_ERR_CEASE) {
				struct fsm_event_arg sa = { .cease_subcode = err.subcode };
				send_notification(p, err.code, err.subcode, err.data, err.data_len);
				p->down_by_notification = true;
				sess_run(p, FSM_EV_AUTO_STOP, &sa);
				return;
			}
			p->down_by_notification = true;
			sess_run(p, FSM_EV_UPDATE_ERR, &arg);
			return;
		}
		sess_run(p, FSM_EV_UPDATE, NULL);
		return;
	case BGP_MSG_NOTIFICATION: {
		uint8_t code = 0, sub = 0;
		const uint8_t *data;
		size_t dlen = 0;
		msg_notification_parse(msg, len, &code, &sub, &data, &dlen);
		PEER_STAT_ADD(p->c.notif_in, 1);
		PEER_STAT_ADD(p->c.notif_in_code[code <= 8 ? code : 0], 1);
		char sc[256];
		int scr = msg_shutdown_comm(code, sub, data, dlen, sc, sizeof(sc));
		log_warn("peer %s: received NOTIFICATION %u/%u (%s / %s), %zu data octets%s%s%s",
			 peer_name(p, nm, sizeof(nm)), code, sub, bgp_err_name(code), bgp_suberr_name(code, sub),
			 dlen, scr == 1 ? ", shutdown communication \"" : "", scr == 1 ? sc : "",
			 scr == 1 ? "\"" : scr < 0 ? ", malformed shutdown communication (length past the data): ignored" : "");
		char le[sizeof(p->last_error)];
		int pl = snprintf(le, sizeof(le), "received %s/%s", bgp_err_name(code),
				  bgp_suberr_name(code, sub));
		/* the cleaned text (valid UTF-8, see msg_shutdown_comm), cut to
		 * what fits at a character boundary */
		if (scr == 1 && pl > 0 && (size_t)pl + 5 < sizeof(le)) {
			size_t room = sizeof(le) - (size_t)pl - 4;
			size_t sl = msg_utf8_cut(sc, strlen(sc), room - 1);
			/* sl <= room - 1: fits with the quotes */
			char *w = le + pl;
			memcpy(w, ": \"", 3);
			memcpy(w + 3, sc, sl);
			memcpy(w + 3 + sl, "\"", 2);
		}
		peer_set_error(p, "%s", le);
		p->down_by_notification = true;
		sess_run(p, (code == BGP_ERR_OPEN && sub == BGP_ERR_OPEN_VERSION) ? FSM_EV_NOTIF_VERSION_ERR
										  : FSM_EV_NOTIF, NULL);
		return;
	}
	case BGP_MSG_ROUTE_REFRESH: {
		unsigned fam;
		uint8_t sub;
		if (msg_route_refresh_parse(msg, len, &fam, &sub, &err) < 0) {
			p->down_by_notification = true;
			sess_run(p, FSM_EV_UPDATE_ERR, &arg);
			return;
		}
		if (p->fsm.state == FSM_ESTABLISHED && sub == BGP_RR_NORMAL && fam < BGP_FAM_COUNT &&
		    p->sess.family[fam]) {
			log_info("peer %s: ROUTE-REFRESH for %s", peer_name(p, nm, sizeof(nm)),
				 fam == BGP_FAM_IPV4 ? "ipv4-unicast" : "ipv6-unicast");
			PEER_STAT_ADD(p->c.refresh_in, 1);
			refl_route_refresh(g_daemon->refl, p, fam);
		} else if (p->fsm.state == FSM_ESTABLISHED && (sub == BGP_RR_BORR || sub == BGP_RR_EORR) &&
			   fam < BGP_FAM_COUNT && p->sess.family[fam] && p->cfg.route_refresh &&
			   p->peer_open.capa.enhanced_rr) {
			/* RFC 7313 s4: the peer re-sends family fam between BoRR and
			 * EoRR; what it did not re-send by EoRR is gone */
			/* in steps, the next messages waiting for it (input held) */
			bool v4 = fam == BGP_FAM_IPV4;
			if (sub == BGP_RR_BORR)
				sweep_live(p, fam, RIB_SWEEP_MARK_STALE,
					   v4 ? "BoRR for ipv4-unicast" : "BoRR for ipv6-unicast");
			else
				sweep_live(p, fam, RIB_SWEEP_WITHDRAW_STALE,
					   v4 ? "EoRR for ipv4-unicast" : "EoRR for ipv6-unicast");
		}
		sess_run(p, FSM_EV_ROUTE_REFRESH, NULL);
		return;
	}
	}
}

/*
 * Frame and handle the messages in p->rx, stopping right after one that
 * held the input (a live sweep, sweep_live): the rest wait in rx.  The
 * gathered announcements are applied before it returns.  False if the
 * connection is gone.
 */
static bool rx_process(struct peer *p)
{
	size_t off = 0;
	while (p->fd >= 0 && !p->rx_held) {
		struct msg_error err;
		size_t maxl = p->fsm.state == FSM_ESTABLISHED ? p->sess.max_msg : BGP_MAX_MSG;
		int m = msg_frame(p->rx + off, p->rx_len - off, maxl, &err);
		if (m == 0)
			break;
		if (m < 0) {
			char nm[96];
			struct fsm_event_arg arg = { .err = &err };
			ingest_flush(p);
			log_warn("peer %s: bad message header: %s", peer_name(p, nm, sizeof(nm)),
				 err.reason ? err.reason : "?");
			p->down_by_notification = true;
			sess_run(p, FSM_EV_HEADER_ERR, &arg);
			return false;
		}
		handle_msg(p, p->rx + off, (size_t)m);
		off += (size_t)m;
	}
	ingest_flush(p);
	if (p->fd < 0)
		return false;
	if (off) {
		memmove(p->rx, p->rx + off, p->rx_len - off);
		p->rx_len -= off;
	}
	return true;
}

/* The live sweep that held p's input is done: the buffered messages, then
 * reading again (EPOLLIN back on; the next epoll round reads). */
static void sess_input_resume(struct peer *p)
{
	p->rx_held = false;
	if (p->fd < 0)
		return;
	/* the time held does not count against the peer's hold time */
	if (p->next_timer_ns[FSM_TIMER_HOLD])
		p->next_timer_ns[FSM_TIMER_HOLD] += log_now_ns() - p->rx_held_ns;
	ep_mod(p);
	if (rx_process(p) && p->fsm.state == FSM_ESTABLISHED)
		peer_flush(p);
}

/*
 * The connection ended (the peer closed it, or it failed) while a live sweep
 * held p's input.  The session is over, so the held messages will never be
 * applied: its paths go with it, in the sweep's steps.  What is still worth
 * reading is why: the held bytes and whatever the socket still has are
 * scanned for a NOTIFICATION, which is then handled as usual (logged; it
 * also decides graceful-restart retention), the messages before it dropped
 * unhandled (nor recorded in MRT or BMP).  Without one, the connection is
 * taken as closed.  Before, the end was seen only after the sweep (about a
 * second per million paths), and a connection reset made the loop spin on
 * EPOLLHUP meanwhile.
 */
void sess_held_closed(struct peer *p)
{
	char nm[96];
	size_t maxl = p->fsm.state == FSM_ESTABLISHED ? p->sess.max_msg : BGP_MAX_MSG;
	uint64_t dropped = 0;
	bool eof = false;
	for (;;) {
		size_t off = 0;
		for (;;) {
			struct msg_error err;
			int m = msg_frame(p->rx + off, p->rx_len - off, maxl, &err);
			if (m <= 0) {
				if (m < 0)
					eof = true;      /* garbage: nothing more to learn */
				break;
			}
			if (p->rx[off + 18] == BGP_MSG_NOTIFICATION) {
				log_info("peer %s: connection ended while a sweep held its input; "
					 "%" PRIu64 " held messages dropped with the session", peer_name(p, nm, sizeof(nm)),
					 dropped);
				/* handled like any other: the session goes down
				 * (session_down lets go of the held input) */
				handle_msg(p, p->rx + off, (size_t)m);
				if (p->fd >= 0) {    /* defensive: every NOTIFICATION ends it */
					peer_set_error(p, "connection closed by peer");
					sess_run(p, FSM_EV_TCP_FAILS, NULL);
				}
				return;
			}
			dropped++;
			off += (size_t)m;
		}
		if (off) {
			memmove(p->rx, p->rx + off, p->rx_len - off);
			p->rx_len -= off;
		}
		if (eof || p->rx_len == p->rx_cap)
			break;
		ssize_t r = read(p->fd, p->rx + p->rx_len, p->rx_cap - p->rx_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		PEER_STAT_ADD(p->c.bytes_in, (uint64_t)r);
		p->rx_len += (size_t)r;
	}
	log_info("peer %s: connection ended while a sweep held its input; %" PRIu64
		 " held messages dropped with the session", peer_name(p, nm, sizeof(nm)), dropped);
	if (!p->last_error[0] || p->fsm.state == FSM_ESTABLISHED)
		peer_set_error(p, "connection closed by peer");
	sess_run(p, FSM_EV_TCP_FAILS, NULL);
}

void sess_readable(struct peer *p)
{
	if (p->connecting) {
		sess_writable(p);
		if (p->fd < 0 || p->connecting)
			return;
	}
	size_t budget = READ_BUDGET;
	if (p->rx_bpp16) {
		size_t b = (size_t)READ_PFX * p->rx_bpp16 / 16;
		budget = b < READ_MIN ? READ_MIN : b < READ_BUDGET ? b : READ_BUDGET;
	}
	/* input held (a live sweep): not read until sess_input_resume */
	while (p->fd >= 0 && budget && !p->rx_held) {
		if (p->rx_cap - p->rx_len < p->rx_cap / 4 && p->rx_cap < RX_BUF_MAX) {
			/* a busy sender: grow (once messages are framed the buffer is compacted) */
			size_t ncap = p->rx_cap * 4 > RX_BUF_MAX ? RX_BUF_MAX : p->rx_cap * 4;
			uint8_t *nb = realloc(p->rx, ncap);
			if (!nb)
				log_fatal("io: out of memory");
			p->rx = nb;
			p->rx_cap = ncap;
		}
		size_t room = p->rx_cap - p->rx_len;
		ssize_t r = read(p->fd, p->rx + p->rx_len, room < budget ? room : budget);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			peer_set_error(p, "read: %s", strerror(errno));
			sess_run(p, FSM_EV_TCP_FAILS, NULL);
			return;
		}
		if (r == 0) {
			if (!p->last_error[0] || p->fsm.state == FSM_ESTABLISHED)
				peer_set_error(p, "connection closed by peer");
			sess_run(p, FSM_EV_TCP_FAILS, NULL);
			return;
		}
		PEER_STAT_ADD(p->c.bytes_in, (uint64_t)r);
		budget = (size_t)r > budget ? 0 : budget - (size_t)r;
		p->rx_len += (size_t)r;
		uint64_t pf0 = p->c.prefixes_in + p->c.withdraws_in;   /* ours: plain reads */
		if (!rx_process(p))
			return;
		uint64_t npf = p->c.prefixes_in + p->c.withdraws_in - pf0;
		if (npf >= 64) {
			/* bytes per prefix of this read (x16), averaged 1:3 */
			uint64_t bpp = (uint64_t)r * 16 / npf;
			if (bpp > 16 * 4096)
				bpp = 16 * 4096;
			p->rx_bpp16 = p->rx_bpp16 ? (uint32_t)((p->rx_bpp16 * 3 + bpp) / 4) : (uint32_t)bpp;
		}
	}
	if (p->fd >= 0 && p->fsm.state == FSM_ESTABLISHED)
		peer_flush(p);
}

void sess_writable(struct peer *p)
{
	if (p->connecting) {
		int e = 0;
		socklen_t el = sizeof(e);
		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e == EINPROGRESS || e == EALREADY)
			return;
		p->connecting = false;
		if (e) {
			peer_set_error(p, "connect: %s", strerror(e));
			conn_teardown(p);
			sess_run(p, FSM_EV_TCP_FAILS, NULL);
			return;
		}
		p->want_out = false;
		ep_mod(p);
		sess_run(p, FSM_EV_TCP_CR_ACKED, NULL);
		return;
	}
	peer_flush(p);
}

void sess_timers(struct peer *p, uint64_t now)
{
	static const enum fsm_event tev[FSM_TIMER_COUNT] = {
		[FSM_TIMER_CONNECT_RETRY] = FSM_EV_CONNECT_RETRY_EXPIRES,
		[FSM_TIMER_HOLD] = FSM_EV_HOLD_EXPIRES,
		[FSM_TIMER_KEEPALIVE] = FSM_EV_KEEPALIVE_EXPIRES,
		[FSM_TIMER_IDLE_HOLD] = FSM_EV_IDLE_HOLD_EXPIRES,
	};
	for (unsigned t = 0; t < FSM_TIMER_COUNT; t++) {
		if (p->next_timer_ns[t] && p->next_timer_ns[t] <= now) {
			/* input held by our own sweep: the peer's KEEPALIVEs wait
			 * unread, the time held is added back on resume ("sweeps") */
			if (t == FSM_TIMER_HOLD && p->rx_held)
				continue;
			p->next_timer_ns[t] = 0;
			if (t == FSM_TIMER_HOLD) {
				peer_set_error(p, "hold timer expired");
				p->down_by_notification = false;
			}
			if (t == FSM_TIMER_IDLE_HOLD && (p->reset_pending || p->sweeping)) {
				p->next_timer_ns[t] = now + 1000000000ull;
				continue;
			}
			if (t == FSM_TIMER_IDLE_HOLD && maxpfx_holddown(p, now)) {
				if (p->maxpfx_until_ns != UINT64_MAX)
					p->next_timer_ns[t] = p->maxpfx_until_ns;
				continue;
			}
			sess_run(p, tev[t], NULL);
		}
	}
	/* RFC 9687 send hold timer: output pending and no progress for too long */
	if (p->fd >= 0 && p->fsm.state == FSM_ESTABLISHED && p->cfg.send_hold_time) {
		bool pending = p->ctl_len > p->ctl_off || peer_out_pending(p);
		if (!pending)
			p->last_write_ns = now;
		else if (now > p->last_write_ns &&
			 now - p->last_write_ns > (uint64_t)p->cfg.send_hold_time * 1000000000ull) {
			peer_set_error(p, "send hold timer expired");
			send_notification(p, BGP_ERR_SEND_HOLD, 0, NULL, 0);
			struct fsm_event_arg sa = { .cease_subcode = 0 };
			p->down_by_notification = true;
			sess_run(p, FSM_EV_AUTO_STOP, &sa);
		}
	}
	/* graceful restart: stale paths expire (restart time while down, the
	 * stale-path time once back without an End-of-RIB) */
	if (p->gr_stale && p->gr_deadline_ns && now >= p->gr_deadline_ns) {
		char nm[96];
		if (p->fsm.state == FSM_ESTABLISHED || p->fd >= 0) {
			/* a session up or coming up: before its next UPDATEs (input held) */
			sweep_live(p, BGP_FAM_COUNT, RIB_SWEEP_WITHDRAW_STALE,
				   "no End-of-RIB in the stale-path time");
		} else {
			/* no session: in steps, after the marking if it is still going on */
			for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
				sweep_queue(p, f, RIB_SWEEP_WITHDRAW_STALE);
			log_info("peer %s: restart time over, stale paths to withdraw",
				 peer_name(p, nm, sizeof(nm)));
		}
		p->gr_stale = false;
		p->gr_deadline_ns = 0;
	}
}
