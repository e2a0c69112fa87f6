/*
 * fuzz_session.c - libFuzzer target: arbitrary byte streams into a persistent
 * Established session of a real in-process ricochetd (framing, FSM, UPDATE
 * ingest into the RIB, reflection to a second client, NOTIFICATION paths).
 *
 * How: the daemon is started once from a YAML text (no listener, one I/O
 * thread) with two passive rr-clients; once the I/O thread has taken its
 * peers it is stopped and this thread plays it: sessions run over
 * socketpairs, input is written to the far end and sess_readable() runs here
 * synchronously (an input that ends inside a message closes the session, so
 * inputs do not run into each other); the I/O thread's command queue (reset done from the
 * reflection thread, output kicks) is drained here too.  The reflection
 * thread runs for real.  Peer A (the fuzzed one) negotiates every capability
 * ricochetd has (4-octet AS, IPv4+IPv6, ADD-PATH: sent for both families and
 * received for IPv6, extended messages, route refresh, graceful restart);
 * peer B only receives.  When an
 * input tears the session down the next input starts a new one; every 5000
 * inputs A is closed so the RIB does not grow without bound.
 *
 * Input: first byte odd: the rest is the raw stream.  Even: the rest is a
 * list of (type, length hi, length lo, body) records, each given a valid
 * marker and a length field equal to 19 + the body octets present, so the
 * fuzzer spends its time past the framing.
 *
 * FUZZ_SESSION_DEBUG=1 in the environment prints A's state and counters per
 * input (to check that a corpus really reaches the UPDATE paths).
 *
 * Threads: the fuzzer thread (as the I/O thread) and the reflection thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_session: %s failed\n", #c); abort(); } } while (0)

static const char fz_yaml[] =
	"router-id: 10.255.0.1\n"
	"asn: 65000\n"
	"listen: []\n"
	"io-threads: 1\n"
	"log-level: error\n"
	"control-socket: /tmp/ricochet-fuzz-session.sock\n"
	"peers:\n"
	"  - { address: 127.0.0.2, role: rr-client, passive: true, extended-messages: true,\n"
	"      add-path: { send: 2, receive: true }, graceful-restart: true,\n"
	"      max-prefixes: { limit: 200000, restart: 1 } }\n"
	"  - { address: 127.0.0.3, role: rr-client, passive: true }\n";

static struct daemon fz_d;
static struct peer *fz_a, *fz_b;
static int fz_far_a = -1, fz_far_b = -1;   /* our ends of the socketpairs */
static unsigned long fz_inputs;

/* ---------------------------------------------------------------- the I/O thread's chores */

static void fz_commands(void)
{
	struct io_thread *t = fz_d.thr[0];
	pthread_mutex_lock(&t->cmd_lock);
	size_t n = t->n_cmds;
	struct io_cmd *c = t->cmds;
	t->cmds = NULL;
	t->n_cmds = t->cap_cmds = 0;
	pthread_mutex_unlock(&t->cmd_lock);
	for (size_t i = 0; i < n; i++) {
		switch (c[i].type) {
		case CMD_ACCEPTED: sess_accepted(c[i].p, c[i].fd); break;
		case CMD_RESET_DONE: sess_reset_done(c[i].p); break;
		case CMD_CLOSE: sess_admin_close(c[i].p, c[i].arg); break;
		case CMD_RECONFIG: sess_reconfig(c[i].p, c[i].cfgp); break;
		case CMD_ADD_PEER: break;       /* not after the start */
		}
	}
	free(c);
	uint64_t x;
	ssize_t r = read(t->evfd, &x, sizeof(x));
	(void)r;
	atomic_store(&t->kicked, 0);
}

static void fz_drain(int fd)
{
	uint8_t buf[65536];
	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

/* What the loop does on a wakeup: commands, output, and what the far ends wrote. */
static void fz_pump(void)
{
	fz_commands();
	struct peer *ps[2] = { fz_a, fz_b };
	for (int i = 0; i < 2; i++) {
		struct peer *p = ps[i];
		if (p->fd >= 0 && p->fsm.state == FSM_ESTABLISHED)
			peer_flush(p);
	}
	fz_drain(fz_far_a);
	fz_drain(fz_far_b);
}

/* ---------------------------------------------------------------- sessions */

static size_t fz_open(uint8_t *m, bool full)
{
	struct msg_capa c;
	memset(&c, 0, sizeof(c));
	c.mp_any = true;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		c.mp[f] = true;
		/* A: ricochetd sends path ids for both families and receives them
		 * for IPv6 only, so plain IPv4 NLRI (most seeds) stays valid */
		c.add_path[f] = !full ? 0 : f == BGP_FAM_IPV6 ? (MSG_ADDPATH_RECV | MSG_ADDPATH_SEND)
							: MSG_ADDPATH_RECV;
	}
	c.route_refresh = true;
	c.ext_msg = full;
	c.as4 = true;
	c.as4_asn = 65000;
	c.gr = full;
	c.gr_time = 120;
	return msg_open_encode(m, BGP_MAX_MSG, 65000, 90, full ? 0x0a000002 : 0x0a000003, &c);
}

/* Bring p up over a fresh socketpair; returns false if it would not come up. */
static bool fz_establish(struct peer *p, int *far, bool full)
{
	for (int k = 0; k < 2000 && (p->reset_pending || p->fd >= 0); k++) {
		if (p->fd >= 0 && !p->reset_pending)
			sess_admin_close(p, BGP_CEASE_ADMIN_RESET);
		fz_pump();
		if (p->reset_pending)
			usleep(500);
	}
	if (p->reset_pending || p->fd >= 0)
		return false;
	if (*far >= 0)
		close(*far);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int big = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	*far = sv[1];
	sess_accepted(p, sv[0]);
	uint8_t m[BGP_MAX_MSG + BGP_HDR_LEN];
	size_t n = fz_open(m, full);
	n += msg_keepalive_encode(m + n, sizeof(m) - n);
	CHECK(write(*far, m, n) == (ssize_t)n);
	sess_readable(p);
	fz_pump();
	return p->fsm.state == FSM_ESTABLISHED;
}

/* Write everything (the socket buffer may be smaller than the input). */
static void fz_feed(const uint8_t *d, size_t n)
{
	while (n && fz_a->fd >= 0) {
		ssize_t w = write(fz_far_a, d, n);
		if (w <= 0) {
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return;
			w = 0;
		}
		d += w;
		n -= (size_t)w;
		sess_readable(fz_a);
		fz_pump();
	}
	if (fz_a->fd >= 0)
		sess_readable(fz_a);
	fz_pump();
	/* a partial message left over would swallow the next input: start clean */
	if (fz_a->fd >= 0 && fz_a->rx_len)
		sess_admin_close(fz_a, BGP_CEASE_ADMIN_RESET);
}

static void fz_init(void)
{
	char err[512];
	log_init("fuzz_session", false, LOG_LVL_ERR);
	rcu_register_thread();
	struct cfg *cfg = cfg_load_string(fz_yaml, "<fuzz_session>", err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	CHECK(daemon_start(&fz_d, cfg, NULL) == 0);
	/* let the I/O thread take its peers, then stop it and stand in for it */
	for (int k = 0; k < 5000 && fz_d.thr[0]->n_peers < 2; k++)
		usleep(1000);
	CHECK(fz_d.thr[0]->n_peers == 2);
	io_thread_stop(fz_d.thr[0]);
	fz_a = fz_d.peers[0];
	fz_b = fz_d.peers[1];
	CHECK(fz_establish(fz_b, &fz_far_b, false));
}

/* ---------------------------------------------------------------- the target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	static bool ready;

	if (!ready) {
		fz_init();
		buf = malloc(8 * BGP_MAX_EXT_MSG);
		CHECK(buf);
		ready = true;
	}
	if (++fz_inputs % 5000 == 0 && fz_a->fd >= 0)
		sess_admin_close(fz_a, BGP_CEASE_ADMIN_RESET);   /* bounded RIB */
	if (fz_b->fsm.state != FSM_ESTABLISHED)
		fz_establish(fz_b, &fz_far_b, false);
	if (fz_a->fsm.state != FSM_ESTABLISHED && !fz_establish(fz_a, &fz_far_a, true)) {
		if (getenv("FUZZ_SESSION_DEBUG"))
			fprintf(stderr, "fuzz_session: A not up (state %u, reset_pending %d, fd %d)\n",
				fz_a->fsm.state, fz_a->reset_pending, fz_a->fd);
		return 0;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		fz_feed(data + 1, size - 1);
		if (getenv("FUZZ_SESSION_DEBUG"))
			fprintf(stderr, "fuzz_session: A state %u updates %lu taw %lu notif out %lu\n",
				fz_a->fsm.state, (unsigned long)fz_a->c.updates_in,
				(unsigned long)fz_a->c.treat_as_withdraw, (unsigned long)fz_a->c.notif_out);
		return 0;
	}
	/* synthesized framing */
	size_t o = 0, i = 1;
	while (i + 3 <= size && o + BGP_HDR_LEN <= 8 * BGP_MAX_EXT_MSG) {
		uint8_t type = data[i];
		size_t want = (size_t)data[i + 1] << 8 | data[i + 2];
		i += 3;
		size_t body = size - i < want ? size - i : want;
		if (body > BGP_MAX_EXT_MSG - BGP_HDR_LEN)
			body = BGP_MAX_EXT_MSG - BGP_HDR_LEN;
		if (o + BGP_HDR_LEN + body > 8 * BGP_MAX_EXT_MSG)
			break;
		msg_put_header(buf + o, (uint16_t)(BGP_HDR_LEN + body), type);
		memcpy(buf + o + BGP_HDR_LEN, data + i, body);
		o += BGP_HDR_LEN + body;
		i += body;
	}
	fz_feed(buf, o);
	return 0;
}
