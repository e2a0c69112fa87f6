/*
 * test_flush.c - unit tests for peer_flush (io/peer.c): one writev carries
 * the pending control bytes and up to PEER_OUT_CHUNKS queued chunks, and a
 * write that ends anywhere - in the control bytes, in a chunk, between two -
 * is accounted right: each chunk counted (prefixes_out, oq_bytes) and its
 * reference dropped once, when its last byte is out, never before.
 *
 * The peer is a bare struct peer on one end of a non-blocking AF_UNIX stream
 * socket pair with a small send buffer, so writes are short often; the test
 * plays the reflection thread (enqueue, oq_bytes) and the remote (reads of
 * random sizes), and queues "control messages" between flushes as ctl_queue
 * does.  Chunk bytes are < 0x80 and control bytes 0xFF, so the received
 * stream shows where each control message landed: only at chunk
 * boundaries, never inside a chunk, and all of it in order; and each lands
 * where it must: at once when the peer is at a chunk boundary, else right
 * after the chunk being written (a KEEPALIVE waits at most one chunk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/daemon.h"

#define NCHUNKS 3000
#define CTL_MSG 19

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void enqueue(struct peer *p, struct obuf *b)
{
	struct outq_ent *e = malloc(sizeof(*e));
	assert_non_null(e);
	cds_wfcq_node_init(&e->node);
	e->b = b;
	obuf_ref(b);                     /* the queue's reference; the test keeps its own */
	atomic_fetch_add(&p->oq_bytes, b->len);
	cds_wfcq_enqueue(&p->oq_head, &p->oq_tail, &e->node);
}

static void test_flush_stream(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

	struct io_thread *t = calloc(1, sizeof(*t));
	struct peer *p = calloc(1, sizeof(*p));
	assert_non_null(t);
	assert_non_null(p);
	t->epfd = epoll_create1(0);
	assert_true(t->epfd >= 0);
	struct epoll_event ev = { .events = EPOLLIN };
	assert_int_equal(epoll_ctl(t->epfd, EPOLL_CTL_ADD, sv[0], &ev), 0);
	p->thr = t;
	p->fd = sv[0];
	p->fsm.state = FSM_ESTABLISHED;
	cds_wfcq_init(&p->oq_head, &p->oq_tail);

	static struct obuf *chunks[NCHUNKS];
	size_t total_chunk_bytes = 0;
	uint64_t total_npfx = 0;
	for (unsigned i = 0; i < NCHUNKS; i++) {
		/* mostly small (a live batch), a few large, a few empty */
		uint32_t r = rnd() % 100;
		size_t len = r < 3 ? 0 : r < 90 ? 1 + rnd() % 600 : 1 + rnd() % 40000;
		struct obuf *b = obuf_new(len ? len : 1);
		for (size_t k = 0; k < len; k++)
			b->data[k] = (uint8_t)((i + k) & 0x7F);
		b->len = (uint32_t)len;
		b->npfx = 1 + i % 7;
		chunks[i] = b;
		total_chunk_bytes += len;
		total_npfx += b->npfx;
	}

	size_t cap = total_chunk_bytes + 2 * NCHUNKS * CTL_MSG + 65536;
	uint8_t *got = malloc(cap);
	assert_non_null(got);
	size_t ngot = 0, ctl_sent = 0;
	/* where each control message must appear in the stream */
	static size_t ctl_at[NCHUNKS * 8];
	size_t n_ctl = 0;
	unsigned queued = 0;
	for (unsigned iter = 0; iter < 1000000; iter++) {
		if (queued < NCHUNKS) {
			unsigned k = rnd() % 80;
			for (; k && queued < NCHUNKS; k--)
				enqueue(p, chunks[queued++]);
		}
		if (rnd() % 4 == 0 && p->ctl_len + CTL_MSG <= sizeof(p->ctl)) {
			if (p->ctl_off && p->ctl_off == p->ctl_len)
				p->ctl_off = p->ctl_len = 0;
			if (p->ctl_len + CTL_MSG <= sizeof(p->ctl) && n_ctl < NCHUNKS * 8) {
				size_t at = p->c.bytes_out + (p->ctl_len - p->ctl_off);
				if (p->out_off)
					at += p->out[0]->len - p->out_off;
				ctl_at[n_ctl++] = at;
				memset(p->ctl + p->ctl_len, 0xFF, CTL_MSG);
				p->ctl_len += CTL_MSG;
				ctl_sent += CTL_MSG;
			}
		}
		peer_flush(p);
		assert_true(p->n_out <= PEER_OUT_CHUNKS);
		assert_true(p->n_out || p->out_off == 0);
		size_t want = 1 + rnd() % 20000;
		if (want > cap - ngot)
			want = cap - ngot;
		ssize_t n = read(sv[1], got + ngot, want);
		if (n > 0)
			ngot += (size_t)n;
		else
			assert_true(n < 0 && errno == EAGAIN);
		if (queued == NCHUNKS && !peer_out_pending(p) && p->ctl_off == p->ctl_len && n < 0)
			break;
	}
	assert_int_equal(queued, NCHUNKS);
	assert_false(peer_out_pending(p));
	assert_int_equal(p->ctl_off, p->ctl_len);
	assert_int_equal(ngot, total_chunk_bytes + ctl_sent);

	/* the stream: the chunks in order, control messages only between them */
	size_t pos = 0, ctl_seen = 0;
	for (unsigned i = 0; i <= NCHUNKS; i++) {
		while (pos < ngot && got[pos] == 0xFF) {
			pos++;
			ctl_seen++;
		}
		if (i == NCHUNKS)
			break;
		assert_true(pos + chunks[i]->len <= ngot);
		assert_memory_equal(got + pos, chunks[i]->data, chunks[i]->len);
		pos += chunks[i]->len;
	}
	assert_int_equal(pos, ngot);
	assert_int_equal(ctl_seen, ctl_sent);
	assert_int_equal(ctl_seen % CTL_MSG, 0);
	for (size_t i = 0; i < n_ctl; i++) {
		assert_true(ctl_at[i] + CTL_MSG <= ngot);
		for (size_t k = 0; k < CTL_MSG; k++)
			assert_int_equal(got[ctl_at[i] + k], 0xFF);
	}
	assert_true(n_ctl > 100);

	/* every chunk counted once, every queue reference dropped */
	assert_int_equal(p->c.prefixes_out, total_npfx);
	assert_int_equal(atomic_load(&p->oq_bytes), 0);
	assert_int_equal(p->c.bytes_out, ngot);
	for (unsigned i = 0; i < NCHUNKS; i++) {
		assert_int_equal(chunks[i]->refcnt, 1);
		obuf_unref(chunks[i]);
	}
	assert_false(p->want_out);

	free(got);
	close(sv[0]);
	close(sv[1]);
	close(t->epfd);
	free(p);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
