/*
 * nullrelay.c - ricochet-nullrelay: the floor for ricochet-load.  A BGP
 * speaker with no RIB and no decisions: it completes the handshake with every
 * peer that connects (OPEN, KEEPALIVE, hold timer) and copies every UPDATE it
 * receives, byte for byte, to every other receiving peer.
 *
 * Receivers: by default the peers that have never sent an UPDATE (the
 * monitors); --monitors-from CIDR names them by source address instead, and
 * --all copies to every other established peer.  A receiver that connects
 * late misses what went before (there is no table to replay).
 *
 * Threads: one.  Everything runs in one epoll loop, so nothing is shared.
 * Why like this: it must cost as little as possible per byte, so input is
 * framed in place in a 4 MB buffer and each run of consecutive UPDATEs from
 * one feeder is copied once, into one append-only log shared by all
 * receivers (runs carry a small header, never sent, naming their feeder, so
 * that with --all a peer skips its own runs).  Each receiver keeps its own
 * position in the log and writes from it with writev(), several runs a call;
 * with 1000 monitors that is one copy of the input instead of 1000.  Its
 * control messages (OPEN, KEEPALIVE) wait in a small buffer of its own and go
 * out only between runs, so its byte stream stays message-aligned.  The log
 * drops what every receiver has passed (a closed peer holds nothing); when a
 * receiver falls more than 256 MB behind the log's end, feeders stop being
 * read until it is within 64 MB (backpressure instead of unbounded memory).
 * Running time is bounded by --duration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/bgp.h"
#include "core/log.h"
#include "core/msg.h"

#define NR_RBUF      (4u << 20)
#define NR_HIGH      (256ull << 20)
#define NR_LOW       (64ull << 20)
#define NR_MAX_PEERS 4096
#define NR_LOG_MIN   (1u << 20)  /* first log allocation */
#define NR_LOG_KEEP  (16u << 20) /* an empty log larger than this is freed */
#define NR_IOV       64

/* Header of one run in the log, followed by len bytes of whole UPDATEs. */
struct nr_run_hdr {
	uint32_t src;                /* nr_peer.id of the feeder */
	uint32_t len;
};

enum nr_state { NR_OPENSENT, NR_OPENCONFIRM, NR_ESTABLISHED };

struct nr_peer {
	int fd;
	int state;
	char name[64];
	struct sockaddr_storage addr;
	bool v4;
	uint32_t v4addr;             /* host order, for --monitors-from */
	bool sent_update;
	bool receiver_rule;          /* matches --monitors-from */
	bool paused;                 /* EPOLLIN removed for backpressure */
	bool want_out;
	bool rcv;                    /* reads the log between pos and lim */
	uint32_t id;                 /* names its runs in the log */
	uint64_t pos;                /* next log byte to send (absolute) */
	uint64_t run_end;            /* end of the run pos is in; == pos between runs */
	uint64_t lim;                /* log end when it stopped receiving, else UINT64_MAX */
	uint16_t hold;
	size_t max_msg;
	uint64_t last_rx, next_ka;
	uint8_t *rbuf;
	size_t rhead, rtail;
	uint8_t *obuf;               /* control messages only, sent between runs */
	size_t ohead, olen, ocap;
	uint64_t bytes_in, bytes_out, updates_in;
};

struct nr {
	int lfd, epfd;
	uint32_t asn, bgp_id;
	bool ext_msg, all;
	bool have_rule;
	uint32_t rule_net, rule_mask;
	struct nr_peer *peers[NR_MAX_PEERS];
	unsigned npeers;
	struct nr_peer *dead[NR_MAX_PEERS];
	unsigned ndead;
	bool paused;
	bool verbose;
	uint32_t next_id;
	uint8_t *log;                /* log bytes from absolute offset log_base */
	size_t log_cap;
	uint64_t log_base, log_end;
	uint64_t relayed_bytes, relayed_updates;
};

static volatile sig_atomic_t nr_stop;

static void nr_on_signal(int sig)
{
	(void)sig;
	nr_stop = 1;
}

static void nr_close(struct nr *n, struct nr_peer *p, const char *why)
{
	if (p->fd < 0)
		return;
	log_info("nullrelay: %s closed: %s (in %llu bytes, %llu UPDATEs; out %llu bytes)", p->name, why,
		 (unsigned long long)p->bytes_in, (unsigned long long)p->updates_in,
		 (unsigned long long)p->bytes_out);
	close(p->fd);
	p->fd = -1;
	for (unsigned i = 0; i < n->npeers; i++) {
		if (n->peers[i] == p) {
			n->peers[i] = n->peers[--n->npeers];
			break;
		}
	}
	/* freed after the event batch: later events of this batch may still name it */
	if (n->ndead < NR_MAX_PEERS)
		n->dead[n->ndead++] = p;
}

static void nr_reap(struct nr *n)
{
	for (unsigned i = 0; i < n->ndead; i++) {
		free(n->dead[i]->rbuf);
		free(n->dead[i]->obuf);
		free(n->dead[i]);
	}
	n->ndead = 0;
}

/* Log bytes p still has to send (stopping at lim), plus its control queue. */
static uint64_t nr_backlog(const struct nr *n, const struct nr_peer *p)
{
	uint64_t q = p->olen - p->ohead;
	if (p->rcv) {
		uint64_t stop = p->lim < n->log_end ? p->lim : n->log_end;
		if (stop > p->pos)
			q += stop - p->pos;
	}
	return q;
}

static void nr_interest(struct nr *n, struct nr_peer *p)
{
	bool want = nr_backlog(n, p) > 0;
	struct epoll_event ev = { .events = (p->paused ? 0 : EPOLLIN) | (want ? EPOLLOUT : 0), .data.ptr = p };
	epoll_ctl(n->epfd, EPOLL_CTL_MOD, p->fd, &ev);
	p->want_out = want;
}

/* Grow *buf (capacity *cap) by doubling, from `first` if empty, to at least
 * `need` bytes; contents kept. */
static void nr_grow(uint8_t **buf, size_t *cap, size_t need, size_t first, const char *what)
{
	size_t c = *cap ? *cap : first;
	while (c < need)
		c *= 2;
	uint8_t *b = realloc(*buf, c);
	if (!b)
		log_fatal("nullrelay: out of memory (%zu bytes %s)", c, what);
	*buf = b;
	*cap = c;
}

/* Queue one control message; whole messages only. */
static void nr_append(struct nr_peer *p, const uint8_t *d, size_t len)
{
	if (p->ohead == p->olen) {
		p->ohead = p->olen = 0;
	} else if (p->ohead > p->ocap / 2) {
		memmove(p->obuf, p->obuf + p->ohead, p->olen - p->ohead);
		p->olen -= p->ohead;
		p->ohead = 0;
	}
	if (p->olen + len > p->ocap)
		nr_grow(&p->obuf, &p->ocap, p->olen + len, 4096, "control buffer");
	memcpy(p->obuf + p->olen, d, len);
	p->olen += len;
}

/* p starts (or stops) taking the runs appended from now on. */
static void nr_receive(struct nr *n, struct nr_peer *p, bool on)
{
	if (on) {
		p->rcv = true;
		p->pos = p->run_end = n->log_end;
		p->lim = UINT64_MAX;
	} else if (p->rcv) {
		p->lim = n->log_end;
		if (p->pos >= p->lim)
			p->rcv = false;
	}
}

/* The oldest log byte some receiver still needs. */
static uint64_t nr_log_min(const struct nr *n)
{
	uint64_t m = n->log_end;
	for (unsigned i = 0; i < n->npeers; i++) {
		const struct nr_peer *p = n->peers[i];
		if (p->rcv && p->pos < m)
			m = p->pos;
	}
	return m;
}

static void nr_log_append(struct nr *n, uint32_t src, const uint8_t *d, size_t len)
{
	size_t need = sizeof(struct nr_run_hdr) + len;
	size_t used = (size_t)(n->log_end - n->log_base);
	if (used + need > n->log_cap) {
		/* drop what every receiver has passed; grow if that leaves it over half full */
		uint64_t keep = nr_log_min(n);
		size_t drop = (size_t)(keep - n->log_base);
		if (drop < used)
			memmove(n->log, n->log + drop, used - drop);
		n->log_base = keep;
		used -= drop;
		if (!used && n->log_cap > NR_LOG_KEEP) {
			free(n->log);
			n->log = NULL;
			n->log_cap = 0;
		}
		if (used + need > n->log_cap / 2)
			nr_grow(&n->log, &n->log_cap, 2 * (used + need), NR_LOG_MIN, "log");
	}
	struct nr_run_hdr h = { .src = src, .len = (uint32_t)len };
	memcpy(n->log + used, &h, sizeof(h));
	memcpy(n->log + used + sizeof(h), d, len);
	n->log_end += need;
}

/*
 * Write what fits now: the rest of the run p is in, then its control
 * messages, then further runs (not its own); false if the peer was closed.
 */
static bool nr_flush(struct nr *n, struct nr_peer *p)
{
	for (;;) {
		struct iovec iov[NR_IOV];
		uint64_t after[NR_IOV];      /* log entry: pos once written whole; control: UINT64_MAX */
		int k = 0, last = -1;
		if (p->rcv && p->pos < p->run_end) {
			iov[k] = (struct iovec){ n->log + (p->pos - n->log_base), (size_t)(p->run_end - p->pos) };
			after[k] = p->run_end;
			last = k++;
		}
		if (p->olen > p->ohead) {
			iov[k] = (struct iovec){ p->obuf + p->ohead, p->olen - p->ohead };
			after[k++] = UINT64_MAX;
		}
		if (p->rcv) {
			uint64_t stop = p->lim < n->log_end ? p->lim : n->log_end;
			for (uint64_t q = p->run_end; q < stop && k < NR_IOV;) {
				struct nr_run_hdr h;
				memcpy(&h, n->log + (q - n->log_base), sizeof(h));
				uint64_t s = q + sizeof(h);
				q = s + h.len;
				if (h.src != p->id) {
					iov[k] = (struct iovec){ n->log + (s - n->log_base), h.len };
					last = k++;
				}
				if (last >= 0)
					after[last] = q;
				else
					p->pos = p->run_end = q; /* own runs before anything to send */
			}
		}
		if (!k)
			break;
		ssize_t w = writev(p->fd, iov, k);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			nr_close(n, p, strerror(errno));
			return false;
		}
		p->bytes_out += (uint64_t)w;
		size_t left = (size_t)w;
		bool partial = false;
		for (int i = 0; i < k; i++) {
			size_t l = iov[i].iov_len, t = left < l ? left : l;
			left -= t;
			if (after[i] == UINT64_MAX) {
				p->ohead += t;
			} else if (t == l) {
				p->pos = p->run_end = after[i];
			} else if (t) {
				uint64_t s = n->log_base + (uint64_t)((uint8_t *)iov[i].iov_base - n->log);
				p->pos = s + t;
				p->run_end = s + l;
			}
			if (t < l) {
				partial = true;
				break;
			}
		}
		if (p->ohead == p->olen)
			p->ohead = p->olen = 0;
		if (partial)
			break;
	}
	if (p->rcv && p->pos >= p->lim)
		p->rcv = false;
	if ((nr_backlog(n, p) > 0) != p->want_out)
		nr_interest(n, p);
	return true;
}

/* Does p take other peers' UPDATEs once established? */
static bool nr_wants(const struct nr *n, const struct nr_peer *p)
{
	if (n->all)
		return true;
	if (n->have_rule)
		return p->receiver_rule;
	return !p->sent_update;
}

static void nr_relay(struct nr *n, struct nr_peer *from, const uint8_t *d, size_t len, size_t nupd)
{
	n->relayed_bytes += len;
	n->relayed_updates += nupd;
	bool any = false;
	for (unsigned i = 0; i < n->npeers && !any; i++) {
		struct nr_peer *p = n->peers[i];
		any = p != from && p->rcv && p->lim == UINT64_MAX;
	}
	if (!any)
		return; /* nobody receives: dropped, as a late receiver misses it */
	uint64_t start = n->log_end;
	nr_log_append(n, from->id, d, len);
	/* a receiver with nothing else to send steps over its own run here: nobody flushes it */
	if (from->rcv && from->lim == UINT64_MAX && from->pos == start)
		from->pos = from->run_end = n->log_end;
	/* close-safe walk: a failed write removes the peer from the array */
	for (unsigned i = 0; i < n->npeers;) {
		struct nr_peer *p = n->peers[i];
		unsigned before = n->npeers;
		if (p != from && nr_backlog(n, p) > 0)
			nr_flush(n, p);
		if (n->npeers == before)
			i++;
	}
}

static void nr_send_open(struct nr *n, struct nr_peer *p)
{
	struct msg_capa c;
	memset(&c, 0, sizeof(c));
	c.mp[BGP_FAM_IPV4] = c.mp[BGP_FAM_IPV6] = true;
	c.mp_any = true;
	c.route_refresh = true;
	c.as4 = true;
	c.as4_asn = n->asn;
	c.ext_msg = n->ext_msg;
	uint8_t m[BGP_MAX_MSG];
	size_t l = msg_open_encode(m, sizeof(m), n->asn, BGP_DEFAULT_HOLD, n->bgp_id, &c);
	nr_append(p, m, l);
}

/* Handle one non-UPDATE message; false if the peer was closed. */
static bool nr_control(struct nr *n, struct nr_peer *p, const uint8_t *m, size_t len, uint64_t now)
{
	switch (m[18]) {
	case BGP_MSG_OPEN: {
		struct msg_open o;
		struct msg_error err;
		if (p->state != NR_OPENSENT || msg_open_parse(m, len, &o, &err) < 0) {
			uint8_t nm[64];
			size_t nl = msg_notification_encode(nm, sizeof(nm), BGP_ERR_OPEN, 0, NULL, 0);
			if (write(p->fd, nm, nl) < 0)
				(void)0;
			nr_close(n, p, "bad OPEN");
			return false;
		}
		p->hold = o.hold_time < BGP_DEFAULT_HOLD ? o.hold_time : BGP_DEFAULT_HOLD;
		p->max_msg = n->ext_msg && o.capa.ext_msg ? BGP_MAX_EXT_MSG : BGP_MAX_MSG;
		uint8_t ka[BGP_HDR_LEN];
		nr_append(p, ka, msg_keepalive_encode(ka, sizeof(ka)));
		p->next_ka = p->hold ? now + (uint64_t)p->hold * 1000000000ull / 3 : UINT64_MAX;
		p->state = NR_OPENCONFIRM;
		log_info("nullrelay: %s OPEN, AS %u, hold %u", p->name, msg_open_asn(&o), p->hold);
		return nr_flush(n, p);
	}
	case BGP_MSG_KEEPALIVE:
		if (p->state == NR_OPENCONFIRM) {
			p->state = NR_ESTABLISHED;
			if (nr_wants(n, p))
				nr_receive(n, p, true);
			log_info("nullrelay: %s established%s", p->name, p->receiver_rule ? " (receiver)" : "");
		}
		return true;
	case BGP_MSG_NOTIFICATION:
		nr_close(n, p, "NOTIFICATION received");
		return false;
	default:
		return true;
	}
}

static void nr_read(struct nr *n, struct nr_peer *p, uint64_t now)
{
	if (p->rhead == p->rtail)
		p->rhead = p->rtail = 0;
	if (NR_RBUF - p->rtail < 65536 && p->rhead) {
		memmove(p->rbuf, p->rbuf + p->rhead, p->rtail - p->rhead);
		p->rtail -= p->rhead;
		p->rhead = 0;
	}
	ssize_t r = read(p->fd, p->rbuf + p->rtail, NR_RBUF - p->rtail);
	if (r == 0) {
		nr_close(n, p, "closed by peer");
		return;
	}
	if (r < 0) {
		if (errno != EAGAIN && errno != EINTR)
			nr_close(n, p, strerror(errno));
		return;
	}
	p->bytes_in += (uint64_t)r;
	p->rtail += (size_t)r;
	p->last_rx = now;
	/* frame; relay each run of consecutive UPDATEs in one go */
	size_t run = p->rhead, nupd = 0;
	while (p->rhead < p->rtail) {
		struct msg_error err;
		int l = msg_frame(p->rbuf + p->rhead, p->rtail - p->rhead,
				  p->state == NR_ESTABLISHED ? p->max_msg : BGP_MAX_MSG, &err);
		if (l == 0)
			break;
		if (l < 0) {
			nr_close(n, p, "bad message header");
			return;
		}
		const uint8_t *m = p->rbuf + p->rhead;
		if (m[18] == BGP_MSG_UPDATE && p->state == NR_ESTABLISHED) {
			if (!p->sent_update) {
				log_info("nullrelay: %s sends UPDATEs (feeder)", p->name);
				p->sent_update = true;
				if (p->rcv && !nr_wants(n, p))
					nr_receive(n, p, false);
			}
			p->updates_in++;
			nupd++;
			p->rhead += (size_t)l;
			continue;
		}
		if (p->rhead > run)
			nr_relay(n, p, p->rbuf + run, p->rhead - run, nupd);
		nupd = 0;
		if (!nr_control(n, p, m, (size_t)l, now))
			return;
		p->rhead += (size_t)l;
		run = p->rhead;
	}
	if (p->rhead > run)
		nr_relay(n, p, p->rbuf + run, p->rhead - run, nupd);
}

static void nr_accept(struct nr *n, uint64_t now)
{
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(n->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (n->npeers >= NR_MAX_PEERS) {
			close(fd);
			continue;
		}
		struct nr_peer *p = calloc(1, sizeof(*p));
		if (!p || !(p->rbuf = malloc(NR_RBUF)))
			log_fatal("nullrelay: out of memory");
		p->fd = fd;
		p->addr = ss;
		p->last_rx = now;
		p->max_msg = BGP_MAX_MSG;
		p->next_ka = UINT64_MAX;
		p->id = ++n->next_id;
		char a[INET6_ADDRSTRLEN] = "?";
		uint16_t port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			port = ntohs(s4->sin_port);
			p->v4 = true;
			p->v4addr = ntohl(s4->sin_addr.s_addr);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			port = ntohs(s6->sin6_port);
		}
		snprintf(p->name, sizeof(p->name), "%s:%u", a, port);
		p->receiver_rule = n->have_rule && p->v4 && (p->v4addr & n->rule_mask) == n->rule_net;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		n->peers[n->npeers++] = p;
		struct epoll_event ev = { .events = n->paused ? 0 : EPOLLIN, .data.ptr = p };
		p->paused = n->paused;
		if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			log_fatal("nullrelay: epoll_ctl: %s", strerror(errno));
		nr_send_open(n, p);
		nr_flush(n, p);
	}
}

/* Pause reading feeders while any receiver is far behind; resume when all drained. */
static void nr_backpressure(struct nr *n)
{
	uint64_t worst = 0;
	for (unsigned i = 0; i < n->npeers; i++) {
		uint64_t q = nr_backlog(n, n->peers[i]);
		if (q > worst)
			worst = q;
	}
	bool want = n->paused ? worst > NR_LOW : worst > NR_HIGH;
	if (want == n->paused)
		return;
	n->paused = want;
	for (unsigned i = 0; i < n->npeers; i++) {
		struct nr_peer *p = n->peers[i];
		/* receivers keep reading (KEEPALIVEs); only UPDATE senders are paused */
		bool pause = want && p->sent_update;
		if (pause != p->paused) {
			p->paused = pause;
			p->last_rx = log_now_ns();
			nr_interest(n, p);
		}
	}
}

static void nr_timers(struct nr *n, uint64_t now)
{
	for (unsigned i = 0; i < n->npeers;) {
		struct nr_peer *p = n->peers[i];
		unsigned before = n->npeers;
		if (p->state != NR_OPENSENT && p->hold && !p->paused &&
		    now - p->last_rx > (uint64_t)p->hold * 1000000000ull) {
			nr_close(n, p, "hold timer expired");
		} else if (now >= p->next_ka) {
			uint8_t ka[BGP_HDR_LEN];
			/* nr_flush sends it between runs */
			nr_append(p, ka, msg_keepalive_encode(ka, sizeof(ka)));
			p->next_ka = now + (uint64_t)p->hold * 1000000000ull / 3;
			nr_flush(n, p);
		}
		if (n->npeers == before)
			i++;
	}
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	unsigned port = BGP_PORT;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || (size_t)(e - s) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(e - s - 1));
		host[e - s - 1] = 0;
		if (e[1] == ':')
			port = (unsigned)atoi(e + 2);
	} else {
		snprintf(host, sizeof(host), "%s", s);
		char *c = strchr(host, ':');
		if (c && !strchr(c + 1, ':')) {
			*c = 0;
			port = (unsigned)atoi(c + 1);
		}
	}
	if (!port || port > 65535)
		return -1;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*s6);
	} else {
		return -1;
	}
	return 0;
}

static void nr_usage(FILE *f)
{
	fprintf(f,
"usage: ricochet-nullrelay [--listen ADDR[:PORT]] [--asn N] [--monitors-from A.B.C.D/N | --all]\n"
"                          [--ext-msg] [--duration S] [-v]\n"
"Complete the BGP handshake with every peer and copy every UPDATE byte to the\n"
"receivers: peers that never sent an UPDATE (default), peers inside\n"
"--monitors-from, or every other peer (--all).  No RIB, no decisions: the floor\n"
"for ricochet-load (run it with --no-expect-rr).  Defaults: 127.0.0.1:179, AS 65515,\n"
"--duration 3600.\n");
}

int main(int argc, char **argv)
{
	static struct nr n;
	const char *listen_s = "127.0.0.1:179";
	double duration = 3600;
	n.asn = BGP_DEFAULT_ASN;
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "asn", required_argument, NULL, 'a' },
		{ "monitors-from", required_argument, NULL, 'm' },
		{ "all", no_argument, NULL, 'A' },
		{ "ext-msg", no_argument, NULL, 'x' },
		{ "duration", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "l:a:m:Axd:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'l': listen_s = optarg; break;
		case 'a': n.asn = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm': {
			char buf[64];
			snprintf(buf, sizeof(buf), "%s", optarg);
			char *sl = strchr(buf, '/');
			unsigned bits = 32;
			if (sl) {
				*sl = 0;
				bits = (unsigned)atoi(sl + 1);
			}
			struct in_addr a;
			if (inet_pton(AF_INET, buf, &a) != 1 || bits > 32) {
				fprintf(stderr, "nullrelay: bad --monitors-from '%s'\n", optarg);
				return 2;
			}
			n.rule_mask = bits ? 0xFFFFFFFFu << (32 - bits) : 0;
			n.rule_net = ntohl(a.s_addr) & n.rule_mask;
			n.have_rule = true;
			break;
		}
		case 'A': n.all = true; break;
		case 'x': n.ext_msg = true; break;
		case 'd': duration = strtod(optarg, NULL); break;
		case 'v': n.verbose = true; break;
		case 'h': nr_usage(stdout); return 0;
		default: nr_usage(stderr); return 2;
		}
	}
	if (n.asn == 0 || duration <= 0) {
		nr_usage(stderr);
		return 2;
	}
	log_init("nullrelay", false, n.verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, nr_on_signal);
	signal(SIGTERM, nr_on_signal);
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_listen(listen_s, &ss, &sl) < 0) {
		fprintf(stderr, "nullrelay: bad --listen '%s'\n", listen_s);
		return 2;
	}
	n.bgp_id = ss.ss_family == AF_INET ? ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) : 0x7F000001;
	if (n.bgp_id == 0)
		n.bgp_id = 0x7F000001;
	n.lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(n.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (n.lfd < 0 || bind(n.lfd, (struct sockaddr *)&ss, sl) < 0 || listen(n.lfd, 1024) < 0) {
		fprintf(stderr, "nullrelay: cannot listen on %s: %s\n", listen_s, strerror(errno));
		return 1;
	}
	n.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(n.epfd, EPOLL_CTL_ADD, n.lfd, &lev);
	fprintf(stderr, "nullrelay: listening on %s, AS %u\n", listen_s, n.asn);
	uint64_t end = log_now_ns() + (uint64_t)(duration * 1e9);
	struct epoll_event ev[128];
	while (!nr_stop) {
		uint64_t now = log_now_ns();
		if (now >= end)
			break;
		int k = epoll_wait(n.epfd, ev, 128, 100);
		now = log_now_ns();
		for (int i = 0; i < k; i++) {
			struct nr_peer *p = ev[i].data.ptr;
			if (!p) {
				nr_accept(&n, now);
				continue;
			}
			if (p->fd < 0)
				continue;
			if ((ev[i].events & EPOLLOUT) && !nr_flush(&n, p))
				continue;
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				nr_read(&n, p, now);
		}
		nr_backpressure(&n);
		nr_timers(&n, now);
		nr_reap(&n);
	}
	fprintf(stderr, "nullrelay: relayed %llu UPDATEs, %.1f MB\n", (unsigned long long)n.relayed_updates,
		(double)n.relayed_bytes / 1e6);
	while (n.npeers)
		nr_close(&n, n.peers[0], "shutting down");
	nr_reap(&n);
	free(n.log);
	close(n.lfd);
	return 0;
}
