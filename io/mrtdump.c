/*
 * mrtdump.c - `mrt-dump: DIR`: record every received BGP message as MRT
 * BGP4MP_ET (RFC 6396 s4.4.1, RFC 8050 ADD-PATH subtypes), one file per
 * I/O thread.
 *
 * Threads: mrtdump_record() runs on the receiving I/O thread and touches only
 * that thread's buffer (found through a thread-local pointer); the buffer's
 * mutex is uncontended except against mrtdump_stop() at exit.  Writes happen
 * in 1 MiB pieces, or after a second of quiet traffic, so the I/O thread pays
 * a memcpy per message and a page-cache write now and then.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/mrt.h"
#include "io/daemon.h"
#include "io/mrtdump.h"

#define TBUF_SIZE   (1u << 20)
#define FLUSH_NS    1000000000ull

bool mrtdump_enabled;

struct tbuf {
	pthread_mutex_t mu;
	int fd;
	size_t len;
	uint64_t first_ns;               /* oldest unwritten record */
	struct tbuf *next;
	uint8_t data[TBUF_SIZE];
};

struct local_cache {
	uint64_t up_ns;
	struct bgp_addr local;
};

static char *dir;
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tbuf *bufs;
static unsigned nfiles;
static __thread struct tbuf *my;
static struct local_cache *lcache;      /* by peer id, written by the owning thread */
static _Atomic uint64_t n_records, n_bytes, n_errors;

static void tb_write(struct tbuf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(b->fd, b->data + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			atomic_fetch_add(&n_errors, 1);
			break;
		}
		off += (size_t)w;
	}
	atomic_fetch_add_explicit(&n_bytes, off, memory_order_relaxed);
	b->len = 0;
	b->first_ns = 0;
}

static struct tbuf *tb_get(void)
{
	if (my)
		return my;
	struct tbuf *b = malloc(sizeof(*b));
	if (!b)
		log_fatal("mrtdump: out of memory");
	pthread_mutex_init(&b->mu, NULL);
	b->len = 0;
	b->first_ns = 0;
	pthread_mutex_lock(&list_mu);
	char path[4096];
	snprintf(path, sizeof(path), "%s/ricochet.%ld.%u.mrt", dir, (long)getpid(), nfiles++);
	b->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b->fd < 0)
		log_err("mrt-dump: cannot create %s: %s (this thread records nothing)", path, strerror(errno));
	else
		log_info("mrt-dump: recording received messages to %s", path);
	b->next = bufs;
	bufs = b;
	pthread_mutex_unlock(&list_mu);
	my = b;
	return b;
}

/* Our end of p's connection (cached per session). */
static const struct bgp_addr *local_addr(struct peer *p)
{
	struct local_cache *c = &lcache[p->id];
	if (c->up_ns && c->up_ns == p->up_since_ns)
		return &c->local;
	memset(&c->local, 0, sizeof(c->local));
	c->local.family = p->addr.family;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (p->fd >= 0 && getsockname(p->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET && p->addr.family == BGP_FAM_IPV4) {
			memcpy(c->local.addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		} else if (ss.ss_family == AF_INET6) {
			const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
			if (p->addr.family == BGP_FAM_IPV4)
				memcpy(c->local.addr, a + 12, 4);
			else
				memcpy(c->local.addr, a, 16);
		}
	}
	c->up_ns = p->up_since_ns;
	return &c->local;
}

void mrtdump_record(struct peer *p, const uint8_t *msg, size_t len)
{
	struct tbuf *b = tb_get();
	if (b->fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	uint64_t now = log_now_ns();
	bool addpath = p->sess.addpath_rx[BGP_FAM_IPV4] || p->sess.addpath_rx[BGP_FAM_IPV6];
	if (msg[18] != BGP_MSG_UPDATE)
		addpath = false;
	pthread_mutex_lock(&b->mu);
	if (b->len + MRT_HDR_LEN + 48 + len > TBUF_SIZE)
		tb_write(b);
	size_t n = mrt_bgp4mp_encode(b->data + b->len, TBUF_SIZE - b->len, us, true, addpath, p->cfg.asn,
				     g_daemon->asn, &p->addr, local_addr(p), msg, len);
	b->len += n;
	if (!b->first_ns)
		b->first_ns = now;
	if (now - b->first_ns > FLUSH_NS)
		tb_write(b);
	pthread_mutex_unlock(&b->mu);
	atomic_fetch_add_explicit(&n_records, 1, memory_order_relaxed);
}

int mrtdump_start(const char *d)
{
	dir = strdup(d);
	lcache = calloc(RIB_MAX_PEERS, sizeof(*lcache));
	if (!dir || !lcache)
		log_fatal("mrtdump: out of memory");
	if (access(d, W_OK) != 0) {
		log_err("mrt-dump: directory %s is not writable: %s", d, strerror(errno));
		return -1;
	}
	__atomic_store_n(&mrtdump_enabled, true, __ATOMIC_RELEASE);
	return 0;
}

void mrtdump_stop(void)
{
	__atomic_store_n(&mrtdump_enabled, false, __ATOMIC_RELEASE);
	pthread_mutex_lock(&list_mu);
	for (struct tbuf *b = bufs; b; b = b->next) {
		pthread_mutex_lock(&b->mu);
		if (b->fd >= 0) {
			tb_write(b);
			fsync(b->fd);
		}
		pthread_mutex_unlock(&b->mu);
	}
	pthread_mutex_unlock(&list_mu);
}

void mrtdump_get_stats(struct mrtdump_stats *st)
{
	st->records = atomic_load_explicit(&n_records, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&n_bytes, memory_order_relaxed);
	st->write_errors = atomic_load_explicit(&n_errors, memory_order_relaxed);
}
