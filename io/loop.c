/*
 * loop.c - I/O threads: each owns a set of peers (sockets, FSMs, timers,
 * receive buffers) and runs one epoll loop over them.
 *
 * Why it is built this way: a peer is touched by exactly one I/O thread for
 * its whole life, so session state needs no locks.  UPDATEs are framed and
 * parsed in place in the receive buffer and written straight into the RIB
 * (which supports many concurrent writers).  Output comes from two sources:
 * private control messages (OPEN, KEEPALIVE, NOTIFICATION) built here, and
 * shared UPDATE chunks queued by the reflection thread.  Control messages are
 * written only between chunks, which keeps the byte stream well-formed and
 * bounds how long a KEEPALIVE can wait behind a large table transfer (one
 * chunk).  Reads are budgeted per wakeup so one busy peer cannot starve the
 * others on the same thread, and timers are checked every tick regardless of
 * traffic.
 *
 * What a session leaves behind when it goes down (a full table to withdraw),
 * and the stale paths a live session ends (End-of-RIB, EoRR: that peer's
 * input held meanwhile), is withdrawn in bounded steps between epoll rounds
 * (sess_sweep_step in peer.c); while any is pending epoll_wait does not sleep.
 *
 * Cross-thread inputs arrive through a command queue (cmd_lock) and an
 * eventfd: new peers, accepted connections, "reset done" from the
 * reflection thread, close and route-refresh requests; and kicks (output queued) via the
 * eventfd alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/daemon.h"

#define TICK_MS       100

static void thread_wake(struct io_thread *t)
{
	uint64_t one = 1;
	ssize_t w = write(t->evfd, &one, sizeof(one));
	(void)w;
}

void io_peer_kick(struct peer *p)
{
	struct io_thread *t = p->thr;
	if (!atomic_exchange(&t->kicked, 1))
		thread_wake(t);
}

static void post_cmd(struct io_thread *t, struct io_cmd c)
{
	pthread_mutex_lock(&t->cmd_lock);
	if (t->n_cmds == t->cap_cmds) {
		t->cap_cmds = t->cap_cmds ? t->cap_cmds * 2 : 64;
		t->cmds = realloc(t->cmds, t->cap_cmds * sizeof(*t->cmds));
		if (!t->cmds)
			log_fatal("io: out of memory");
	}
	t->cmds[t->n_cmds++] = c;
	pthread_mutex_unlock(&t->cmd_lock);
	thread_wake(t);
}

void io_peer_reset_done(struct peer *p)
{
	post_cmd(p->thr, (struct io_cmd){ .type = CMD_RESET_DONE, .p = p });
}

void io_thread_add_peer(struct io_thread *t, struct peer *p)
{
	post_cmd(t, (struct io_cmd){ .type = CMD_ADD_PEER, .p = p });
}

void io_thread_accepted(struct io_thread *t, struct peer *p, int fd)
{
	post_cmd(t, (struct io_cmd){ .type = CMD_ACCEPTED, .p = p, .fd = fd });
}

void io_peer_overflow(struct peer *p)
{
	post_cmd(p->thr, (struct io_cmd){ .type = CMD_CLOSE, .p = p, .arg = BGP_CEASE_OUT_OF_RESOURCES });
}

void io_thread_reconfig_peer(struct io_thread *t, struct peer *p, struct cfg_peer *nc)
{
	post_cmd(t, (struct io_cmd){ .type = CMD_RECONFIG, .p = p, .cfgp = nc });
}

void io_thread_close_peer(struct io_thread *t, struct peer *p, uint8_t subcode)
{
	post_cmd(t, (struct io_cmd){ .type = CMD_CLOSE, .p = p, .arg = subcode });
}

void io_thread_refresh_peer(struct io_thread *t, struct peer *p, unsigned family)
{
	post_cmd(t, (struct io_cmd){ .type = CMD_REFRESH, .p = p, .arg = (uint8_t)family });
}

/* ------------------------------------------------------------ the loop */

static void handle_cmds(struct io_thread *t)
{
	pthread_mutex_lock(&t->cmd_lock);
	size_t n = t->n_cmds;
	struct io_cmd *c = t->cmds;
	t->cmds = NULL;
	t->n_cmds = t->cap_cmds = 0;
	pthread_mutex_unlock(&t->cmd_lock);

	for (size_t i = 0; i < n; i++) {
		struct peer *p = c[i].p;
		switch (c[i].type) {
		case CMD_ADD_PEER:
			if (t->n_peers == t->cap_peers) {
				t->cap_peers = t->cap_peers ? t->cap_peers * 2 : 16;
				t->peers = realloc(t->peers, t->cap_peers * sizeof(*t->peers));
				if (!t->peers)
					log_fatal("io: out of memory");
			}
			t->peers[t->n_peers++] = p;
			sess_start(p);
			break;
		case CMD_ACCEPTED:
			sess_accepted(p, c[i].fd);
			break;
		case CMD_RESET_DONE:
			sess_reset_done(p);
			break;
		case CMD_CLOSE:
			sess_admin_close(p, c[i].arg);
			break;
		case CMD_RECONFIG:
			sess_reconfig(p, c[i].cfgp);
			break;
		case CMD_REFRESH:
			sess_send_refresh(p, c[i].arg);
			break;
		}
	}
	free(c);
}

/*
 * Output between input events: one epoll round can hand this thread dozens
 * of busy feeders, each read up to its budget and ingested before the next
 * event is looked at - a round of a second or more during a bulk load.
 * Without this, a client on the same thread would get its queued chunks
 * only between rounds (and the reflection thread's kicks would wait for the
 * next epoll_wait), so its table arrives in bursts a round apart.  Every
 * FLUSH_EVERY_NS of input work, each established peer with output gets a
 * write attempt (one writev; EAGAIN leaves it waiting for EPOLLOUT).
 */
#define FLUSH_EVERY_NS (1000 * 1000ull)

static void flush_pass(struct io_thread *t)
{
	for (size_t k = 0; k < t->n_peers; k++) {
		struct peer *p = t->peers[k];
		if (p->fd >= 0 && p->fsm.state == FSM_ESTABLISHED &&
		    peer_out_pending(p))
			peer_flush(p);
	}
}

static void *io_main(void *arg)
{
	struct io_thread *t = arg;
	struct epoll_event evs[256];
	uint64_t next_tick = 0;
	rcu_register_thread();
	/* what this thread's updates free waits in a batch of its own, not in
	 * stripe batches the other I/O threads append to (rib.h) */
	rib_thread_batches();
	while (!atomic_load_explicit(&t->stop, memory_order_acquire)) {
		/* sweeps pending: look at the sockets, do not wait on them */
		int n = epoll_wait(t->epfd, evs, 256, t->n_sweeping ? 0 : TICK_MS);
		uint64_t now = log_now_ns(), last_flush = now;
		for (int i = 0; i < n; i++) {
			uint64_t kind = evs[i].data.u64 >> 56;
			uint64_t v = evs[i].data.u64 & ((1ull << 56) - 1);
			if (kind == EV_KIND_EVFD) {
				uint64_t x;
				ssize_t r = read(t->evfd, &x, sizeof(x));
				(void)r;
				atomic_store(&t->kicked, 0);
				handle_cmds(t);
				for (size_t k = 0; k < t->n_peers; k++) {
					struct peer *p = t->peers[k];
					if (p->fd >= 0 && !p->want_out && p->fsm.state == FSM_ESTABLISHED &&
					    peer_out_pending(p))
						peer_flush(p);
				}
			} else if (kind == EV_KIND_LISTEN) {
				daemon_accept(t->d, (int)v);
			} else if (kind == EV_KIND_PEER) {
				struct peer *p = t->d->peers[v];
				if (!p || p->fd < 0)
					continue;
				if (evs[i].events & (EPOLLOUT))
					sess_writable(p);
				if (p->fd >= 0 && p->rx_held &&
				    (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
					sess_held_closed(p);
				else if (p->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
					sess_readable(p);
				uint64_t tn = log_now_ns();
				if (i + 1 < n && tn - last_flush >= FLUSH_EVERY_NS) {
					flush_pass(t);
					last_flush = tn;
				}
			}
		}
		/* one bounded step of each session-down withdrawal, between rounds */
		if (t->n_sweeping) {
			for (size_t k = 0; k < t->n_peers && t->n_sweeping; k++)
				sess_sweep_step(t->peers[k]);
			flush_pass(t);
		}
		if (now >= next_tick) {
			next_tick = now + TICK_MS * 1000000ull;
			/* a partly filled free batch waits at most a tick (a busy
			 * thread fills and hands over whole ones long before) */
			rib_reclaim_mine(t->d->rib);
			for (size_t k = 0; k < t->n_peers; k++)
				sess_timers(t->peers[k], now);
		}
	}
	if (t->n_sweeping)
		log_info("io-%u: stopping with %zu peers' paths not yet withdrawn (left to exit)",
			 t->idx, t->n_sweeping);
	rib_reclaim_mine(t->d->rib);
	rcu_unregister_thread();
	return NULL;
}

struct io_thread *io_thread_create(struct daemon *d, unsigned idx)
{
	struct io_thread *t = calloc(1, sizeof(*t));
	if (!t)
		log_fatal("io: out of memory");
	t->d = d;
	t->idx = idx;
	t->scratch = malloc(MSG_SCRATCH_SIZE);
	t->ingest = calloc(1, sizeof(*t->ingest));
	if (!t->scratch || !t->ingest)
		log_fatal("io: out of memory");
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->evfd < 0)
		log_fatal("io: epoll/eventfd: %s", strerror(errno));
	pthread_mutex_init(&t->cmd_lock, NULL);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_DATA(EV_KIND_EVFD, 0) };
	epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev);
	return t;
}

void io_thread_listen(struct io_thread *t, int fd, unsigned idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_DATA(EV_KIND_LISTEN, (uint64_t)fd) };
	(void)idx;
	epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void io_thread_start(struct io_thread *t)
{
	if (pthread_create(&t->thr, NULL, io_main, t))
		log_fatal("io: cannot start thread: %s", strerror(errno));
	char name[16];
	snprintf(name, sizeof(name), "io-%u", t->idx);
	pthread_setname_np(t->thr, name);
	t->started = true;
}

void io_thread_stop(struct io_thread *t)
{
	if (!t->started)
		return;
	atomic_store_explicit(&t->stop, 1, memory_order_release);
	thread_wake(t);
	pthread_join(t->thr, NULL);
	t->started = false;
}
