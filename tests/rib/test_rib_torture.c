/*
 * test_rib_torture.c - concurrent torture test for rib/rib.c.
 *
 * W writer threads (each owning a few peer ids, as I/O threads do) apply
 * random update / withdraw / withdraw_peer / mark_stale operations to a small,
 * dense prefix universe (so nodes split, turn into glue and are pruned all the
 * time) and keep a private reference model of their own peers' paths; R
 * reader threads run exact lookups, longest-prefix matches (single calls and
 * batches) and resumable walks and check every path set they see; one
 * consumer drains the journal.  Half the writers defer their frees in
 * batches of their own (rib_thread_batches), half in the stripes'.
 * The run is bounded by time (RIB_TORTURE_SECONDS, default 3) and operation
 * count.  At the end the table must equal the union of the models, path for
 * path (attr pointer and flags included), and after withdrawing everything
 * no node and no attribute reference may be left.
 *
 * Built for ThreadSanitizer and AddressSanitizer runs (see the h3 report):
 * readers validate invariants on every read so a torn entry would show up
 * as an assertion even without a sanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>
#include <urcu.h>

#include "rib/rib.h"

/* ThreadSanitizer picks this up (see tests/rib/tsan.supp for the reasons):
 * only races with a liburcu frame on a stack (RCU
 * grace periods) are muted. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "race:liburcu.so\nrace:liburcu-cds.so\nrace:liburcu-common.so\n";
}

#define NW        3                  /* writer threads */
#define NR        2                  /* reader threads */
#define RB        8                  /* queries per batched lookup */
#define RBIG      80                 /* ... or, one batch in four, this many (> 64: two groups) */
#define PPW       3                  /* peers per writer */
#define NPFX      1500               /* prefix universe (both families) */
#define NATTR     12
#define MAX_OPS   3000000ul          /* per writer, a bound besides time */

static struct attr_table *g_at;
static struct attr_set *g_attr[NATTR];
static struct rib_peerinfo *g_peers;
static struct rib *g_rib;
static struct bgp_prefix g_pfx[NPFX];
static struct decide_opts g_dopts;
static volatile int g_stop;
static uint64_t g_deadline_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Failures in threads: record and stop everyone; asserted on the main thread. */
static char g_fail[256];
static pthread_mutex_t g_fail_mu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(c) do { if (!(c)) torture_fail(#c, __LINE__); } while (0)

static void torture_fail(const char *what, int line)
{
	pthread_mutex_lock(&g_fail_mu);
	if (!g_fail[0])
		snprintf(g_fail, sizeof(g_fail), "line %d: %s", line, what);
	pthread_mutex_unlock(&g_fail_mu);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
}

static bool stopped(void)
{
	return __atomic_load_n(&g_stop, __ATOMIC_RELAXED) != 0;
}

static struct attr_set *mk_attr(uint32_t lp, uint32_t med)
{
	uint8_t b[32];
	size_t n = 0;
	b[n++] = 0x40; b[n++] = BGP_ATTR_ORIGIN; b[n++] = 1; b[n++] = BGP_ORIGIN_IGP;
	b[n++] = 0x40; b[n++] = BGP_ATTR_AS_PATH; b[n++] = 0;
	b[n++] = 0x80; b[n++] = BGP_ATTR_MED; b[n++] = 4;
	b[n++] = (uint8_t)(med >> 24); b[n++] = (uint8_t)(med >> 16);
	b[n++] = (uint8_t)(med >> 8); b[n++] = (uint8_t)med;
	b[n++] = 0x40; b[n++] = BGP_ATTR_LOCAL_PREF; b[n++] = 4;
	b[n++] = (uint8_t)(lp >> 24); b[n++] = (uint8_t)(lp >> 16);
	b[n++] = (uint8_t)(lp >> 8); b[n++] = (uint8_t)lp;
	struct bgp_nexthop nh = { .len = 4, .addr = { 192, 0, 2, (uint8_t)(lp & 0xFF) } };
	return attr_intern(g_at, &nh, b, n);
}

static void mask_prefix(struct bgp_prefix *p)
{
	unsigned nb = p->family == BGP_FAM_IPV4 ? 4 : 16;
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = p->len > 8 * i ? p->len - 8 * i : 0;
		uint8_t m = i >= nb ? 0 : bits >= 8 ? 0xFF : (uint8_t)(0xFF00u >> bits);
		p->addr[i] &= m;
	}
}

static bool prefix_masked(const struct bgp_prefix *p)
{
	struct bgp_prefix q = *p;
	mask_prefix(&q);
	return memcmp(q.addr, p->addr, 16) == 0;
}

/* Dense universe: few first strides, every length, many nested prefixes. */
static void make_universe(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (unsigned i = 0; i < NPFX; i++) {
		struct bgp_prefix *p = &g_pfx[i];
		bool dup;
		do {
			memset(p, 0, sizeof(*p));
			uint64_t r = rnd(&s);
			if (i % 3 != 2) {
				p->family = BGP_FAM_IPV4;
				static const uint8_t first[] = { 10, 11, 192, 0, 255 };
				p->addr[0] = first[r % 5];
				p->addr[1] = (uint8_t)((r >> 8) % 4);
				p->addr[2] = (uint8_t)(r >> 16);
				p->addr[3] = (uint8_t)(r >> 24);
				unsigned sel = (unsigned)(r >> 32) % 10;
				p->len = (uint8_t)(sel < 5 ? 24 : sel < 8 ? 8 + (r >> 40) % 25 : (r >> 40) % 33);
			} else {
				p->family = BGP_FAM_IPV6;
				p->addr[0] = 0x20;
				p->addr[1] = (uint8_t)((r % 2) ? 0x01 : 0x02);
				p->addr[2] = 0x0d;
				p->addr[3] = (uint8_t)((r >> 8) % 3);
				p->addr[4] = (uint8_t)(r >> 16);
				p->addr[5] = (uint8_t)(r >> 24);
				p->addr[15] = (uint8_t)(r >> 32);
				unsigned sel = (unsigned)(r >> 40) % 10;
				p->len = (uint8_t)(sel < 5 ? 48 : sel < 7 ? 32 : (r >> 48) % 129);
			}
			mask_prefix(p);
			dup = false;
			for (unsigned j = 0; j < i && !dup; j++)
				dup = g_pfx[j].family == p->family && g_pfx[j].len == p->len &&
				      memcmp(g_pfx[j].addr, p->addr, 16) == 0;
		} while (dup);
	}
}

/* ---- readers: validate everything seen ---------------------------------- */

static bool attr_known(const struct attr_set *a)
{
	for (unsigned i = 0; i < NATTR; i++)
		if (g_attr[i] == a)
			return true;
	return false;
}

static void check_set(const struct bgp_prefix *pfx, const struct rib_pathset *ps)
{
	CHECK(pfx->family < BGP_FAM_COUNT);
	CHECK(pfx->len <= bgp_family_maxlen(pfx->family));
	CHECK(prefix_masked(pfx));
	if (!ps)
		return;
	CHECK(ps->n >= 1 && ps->n <= NW * PPW * 2);
	CHECK(ps->n_multipath >= 1 && ps->n_multipath <= ps->n);
	for (unsigned i = 0; i < ps->n; i++) {
		const struct rib_path *p = &ps->p[i];
		CHECK(p->peer >= 1 && p->peer <= NW * PPW);
		CHECK(p->path_id <= 1);
		CHECK(attr_known(p->attr));
		CHECK(__atomic_load_n(&p->attr->refcnt, __ATOMIC_RELAXED) > 0);
		CHECK(p->attr->blob_len > 0 && p->attr->blob_len < 64);
		CHECK(p->attr->blob[1] == BGP_ATTR_ORIGIN);
		for (unsigned j = 0; j < i; j++)
			CHECK(ps->p[j].peer != p->peer || ps->p[j].path_id != p->path_id);
		if (i)
			CHECK(decide_cmp(&ps->p[i - 1], p, g_peers, &g_dopts) <= 0);
	}
}

static int pfx_cmp(const struct bgp_prefix *a, const struct bgp_prefix *b)
{
	int c = memcmp(a->addr, b->addr, 16);
	return c ? c : (int)a->len - (int)b->len;
}

struct wstate {
	struct bgp_prefix prev;
	bool have_prev;
	unsigned seen;
	const struct bgp_prefix *below;
};

static bool walk_cb(struct rib_node *n, const struct bgp_prefix *pfx, const struct rib_pathset *ps,
		    void *arg)
{
	struct wstate *w = arg;
	struct bgp_prefix q;
	rib_node_prefix(n, &q);
	CHECK(q.len == pfx->len && memcmp(q.addr, pfx->addr, 16) == 0);
	CHECK(ps != NULL);
	check_set(pfx, ps);
	if (w->have_prev)
		CHECK(pfx_cmp(&w->prev, pfx) < 0);
	if (w->below) {
		struct bgp_prefix m = *pfx;
		m.len = w->below->len;
		mask_prefix(&m);
		CHECK(pfx->len >= w->below->len && memcmp(m.addr, w->below->addr, 16) == 0);
	}
	w->prev = *pfx;
	w->have_prev = true;
	w->seen++;
	return !stopped();
}

static void *reader(void *arg)
{
	uint64_t s = (uintptr_t)arg * 7919 + 1;
	rcu_register_thread();
	struct bgp_prefix cur[BGP_FAM_COUNT];
	bool have[BGP_FAM_COUNT] = { false, false };
	unsigned long it = 0;
	while (!stopped() && now_ns() < g_deadline_ns && it++ < 50 * MAX_OPS) {
		uint64_t r = rnd(&s);
		const struct bgp_prefix *p = &g_pfx[r % NPFX];
		rcu_read_lock();
		switch ((r >> 32) % 4) {
		case 0: {
			/* one exact lookup, or a batch of RB or RBIG (either family, or
			 * p's family only: the IPv4-only batches of a RIB without
			 * /24 tables take their own path) */
			struct bgp_prefix qs[RBIG];
			struct rib_node *got[RBIG];
			unsigned nq = (r >> 36) & 1 ? ((r >> 38) & 3 ? RB : RBIG) : 1;
			qs[0] = *p;
			for (unsigned j = 1; j < nq; j++) {
				do
					qs[j] = g_pfx[rnd(&s) % NPFX];
				while ((r >> 37) & 1 && qs[j].family != p->family);
			}
			if (nq == 1)
				got[0] = rib_lookup(g_rib, p);
			else
				rib_lookup_batch(g_rib, qs, nq, got);
			for (unsigned j = 0; j < nq; j++) {
				if (!got[j])
					continue;
				struct bgp_prefix q;
				rib_node_prefix(got[j], &q);
				CHECK(q.len == qs[j].len && memcmp(q.addr, qs[j].addr, 16) == 0);
				check_set(&q, rib_node_paths(got[j]));
			}
			break;
		}
		case 1: {
			/* one longest match, or a batch of RB or RBIG in p's family */
			uint8_t a[RBIG][16];
			struct rib_node *got[RBIG];
			unsigned nq = (r >> 36) & 1 ? ((r >> 38) & 3 ? RB : RBIG) : 1;
			for (unsigned j = 0; j < nq; j++) {
				const struct bgp_prefix *pj = p;
				uint64_t rj = r;
				if (j) {
					do
						pj = &g_pfx[(rj = rnd(&s)) % NPFX];
					while (pj->family != p->family);
				}
				memcpy(a[j], pj->addr, 16);
				a[j][15] ^= (uint8_t)(rj >> 40);
				if (pj->family == BGP_FAM_IPV4)
					a[j][3] ^= (uint8_t)(rj >> 48);
			}
			if (nq == 1)
				got[0] = rib_lookup_lpm(g_rib, p->family, a[0]);
			else
				rib_lookup_lpm_batch(g_rib, p->family, a[0], 16, nq, got);
			for (unsigned j = 0; j < nq; j++) {
				if (!got[j])
					continue;
				struct bgp_prefix q, m;
				rib_node_prefix(got[j], &q);
				CHECK(q.family == p->family);
				m = q;
				memcpy(m.addr, a[j], 16);
				mask_prefix(&m);
				CHECK(memcmp(m.addr, q.addr, 16) == 0);   /* q covers a */
				check_set(&q, rib_node_paths(got[j]));
			}
			break;
		}
		default: {
			/* resumable walk, one chunk per read-side section */
			unsigned fam = (unsigned)(r >> 40) % BGP_FAM_COUNT;
			struct bgp_prefix last;
			const struct bgp_prefix *below = ((r >> 44) % 4 == 0) ? p : NULL;
			if (below && below->family != fam)
				below = NULL;
			struct wstate w = { .prev = cur[fam], .have_prev = have[fam] && !below,
					   .below = below };
			size_t got = rib_walk(g_rib, fam, below, have[fam] && !below ? &cur[fam] : NULL,
					      32, walk_cb, &w, &last);
			if (below) {
				/* fine: ordering checked inside the chunk */
			} else if (got == 32) {
				cur[fam] = last;
				have[fam] = true;
			} else {
				have[fam] = false;
			}
			break;
		}
		}
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

/* ---- journal consumer --------------------------------------------------- */

static uint64_t g_drained;

static void *consumer(void *arg)
{
	(void)arg;
	rcu_register_thread();
	struct rib_node *buf[128];
	unsigned round = 0;
	while (!stopped() && now_ns() < g_deadline_ns) {
		rib_journal_wait(g_rib, 5);
		/* as the reflection thread does: the live lane, then a piece of
		 * the bulk lane (the writers' withdraw_peer / mark_stale); now and
		 * then both at once */
		size_t n;
		if (++round % 4 == 0) {
			n = rib_journal_drain(g_rib, buf, 128);
		} else {
			n = rib_journal_drain_lane(g_rib, RIB_JLANE_LIVE, buf, 96);
			n += rib_journal_drain_lane(g_rib, RIB_JLANE_BULK, buf + n, 32);
		}
		rcu_read_lock();
		for (size_t i = 0; i < n; i++) {
			struct bgp_prefix q;
			rib_node_prefix(buf[i], &q);
			const struct rib_pathset *ps = rib_node_paths(buf[i]);
			check_set(&q, ps);
			*rib_node_out_state(buf[i]) = ps ? ps->n : 0;
		}
		rcu_read_unlock();
		for (size_t i = 0; i < n; i++)
			rib_journal_release(g_rib, buf[i]);
		g_drained += n;
	}
	rcu_unregister_thread();
	return NULL;
}

/* ---- writers ------------------------------------------------------------ */

/* Per writer model: [peer][prefix][path_id] = attr index + 1 (0 = none), bit 7 stale. */
static uint8_t g_model[NW][PPW][NPFX][2];
static uint64_t g_ops[NW];

static unsigned model_prefixes(unsigned w, unsigned pi, unsigned fam)
{
	unsigned c = 0;
	for (unsigned x = 0; x < NPFX; x++)
		if (g_pfx[x].family == fam && (g_model[w][pi][x][0] || g_model[w][pi][x][1]))
			c++;
	return c;
}

static void check_own(unsigned w, unsigned pi, unsigned x)
{
	uint32_t peer = w * PPW + pi + 1;
	rcu_read_lock();
	struct rib_node *n = rib_lookup(g_rib, &g_pfx[x]);
	const struct rib_pathset *ps = n ? rib_node_paths(n) : NULL;
	for (unsigned id = 0; id < 2; id++) {
		uint8_t m = g_model[w][pi][x][id];
		const struct rib_path *found = NULL;
		for (unsigned i = 0; ps && i < ps->n; i++)
			if (ps->p[i].peer == peer && ps->p[i].path_id == id)
				found = &ps->p[i];
		if (!m) {
			CHECK(found == NULL);
		} else {
			CHECK(found != NULL);
			if (found) {
				CHECK(found->attr == g_attr[(m & 0x7F) - 1]);
				CHECK(!!(found->flags & RIB_PATH_F_STALE) == !!(m & 0x80));
			}
		}
	}
	rcu_read_unlock();
}

static void *writer(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;
	uint64_t s = 0x1234567ull * (w + 1);
	rcu_register_thread();
	/* even writers keep their own free batches (rib_thread_batches), odd
	 * ones the stripes', so both kinds run side by side */
	if (!(w & 1))
		assert_true(rib_thread_batches());
	for (unsigned long op = 0; op < MAX_OPS && !stopped(); op++) {
		if ((op & 63) == 0 && now_ns() >= g_deadline_ns)
			break;
		uint64_t r = rnd(&s);
		unsigned pi = (unsigned)(r % PPW), x = (unsigned)((r >> 8) % NPFX);
		unsigned id = (unsigned)(r >> 24) & 1, what = (unsigned)(r >> 32) % 1000;
		uint32_t peer = w * PPW + pi + 1;
		struct bgp_prefix p = g_pfx[x];
		p.path_id = id;
		uint8_t *m = &g_model[w][pi][x][id];
		if (what < 300) {
			/* an UPDATE's worth: 1..4 prefixes with one attribute set */
			unsigned a = (unsigned)(r >> 42) % NATTR, nb = 1 + (unsigned)(r >> 50) % 4;
			struct bgp_prefix b[4];
			uint8_t added[4];
			for (unsigned i = 0; i < nb; i++) {
				b[i] = g_pfx[(x + i * 7) % NPFX];
				b[i].path_id = id;
			}
			unsigned tot = rib_update_batch(g_rib, b, nb, peer, g_attr[a], 0, added), want = 0;
			for (unsigned i = 0; i < nb; i++) {
				uint8_t *mi = &g_model[w][pi][(x + i * 7) % NPFX][id];
				CHECK(added[i] == (*mi == 0));
				want += *mi == 0;
				*mi = (uint8_t)(a + 1);
				check_own(w, pi, (x + i * 7) % NPFX);
			}
			CHECK(tot == want);
		} else if (what < 600) {
			unsigned a = (unsigned)(r >> 42) % NATTR;
			int rv = rib_update(g_rib, &p, peer, g_attr[a], 0);
			CHECK(rv == (*m == 0));
			*m = (uint8_t)(a + 1);
			check_own(w, pi, x);
		} else if (what < 990) {
			int rv = rib_withdraw(g_rib, &p, peer);
			CHECK(rv == (*m != 0));
			*m = 0;
			check_own(w, pi, x);
		} else if (what < 991) {
			unsigned fam = (unsigned)(r >> 50) % 3;   /* 2 = BGP_FAM_COUNT: all */
			uint64_t want = 0;
			for (unsigned y = 0; y < NPFX; y++)
				for (unsigned k = 0; k < 2; k++)
					if (g_model[w][pi][y][k] && (fam == BGP_FAM_COUNT || g_pfx[y].family == fam)) {
						want++;
						g_model[w][pi][y][k] = 0;
					}
			CHECK(rib_withdraw_peer(g_rib, peer, fam, false) == want);
		} else if (what < 992) {
			uint64_t want = 0;
			for (unsigned y = 0; y < NPFX; y++)
				for (unsigned k = 0; k < 2; k++)
					if (g_model[w][pi][y][k] && !(g_model[w][pi][y][k] & 0x80)) {
						want++;
						g_model[w][pi][y][k] |= 0x80;
					}
			CHECK(rib_mark_peer_stale(g_rib, peer, BGP_FAM_COUNT) == want);
		} else if (what < 993) {
			uint64_t want = 0;
			for (unsigned y = 0; y < NPFX; y++)
				for (unsigned k = 0; k < 2; k++)
					if (g_model[w][pi][y][k] & 0x80) {
						want++;
						g_model[w][pi][y][k] = 0;
					}
			CHECK(rib_withdraw_peer(g_rib, peer, BGP_FAM_COUNT, true) == want);
		} else {
			/* re-announce (clears stale) */
			unsigned a = (unsigned)(r >> 42) % NATTR;
			if (*m) {
				CHECK(rib_update(g_rib, &p, peer, g_attr[a], 0) == 0);
				*m = (uint8_t)(a + 1);
				check_own(w, pi, x);
			}
		}
		if ((op & 255) == 0)
			for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++)
				CHECK(rib_peer_prefixes(g_rib, peer, fam) == model_prefixes(w, pi, fam));
		g_ops[w]++;
		if ((op & 1023) == 0)
			rib_reclaim_mine(g_rib);   /* as an I/O thread's tick does (no-op for odd w) */
	}
	rcu_unregister_thread();
	return NULL;
}

/* ---- the test ----------------------------------------------------------- */

/* *state: the rib_opts.lpm_index_min to run with (the default, or
 * RIB_LPM_INDEX_OFF as the daemon runs its RIB) */
static void test_torture(void **state)
{
	uint32_t lpm_index_min = *(const uint32_t *)*state;
	/* a second run in this process starts from nothing */
	memset(g_model, 0, sizeof(g_model));
	memset(g_ops, 0, sizeof(g_ops));
	g_drained = 0;
	g_stop = 0;
	g_fail[0] = 0;
	rcu_register_thread();
	double secs = 3;
	const char *e = getenv("RIB_TORTURE_SECONDS");
	if (e && atof(e) > 0)
		secs = atof(e);
	g_at = attr_table_create();
	for (unsigned i = 0; i < NATTR; i++) {
		g_attr[i] = mk_attr(100 + (i % 4) * 10, i / 4);
		assert_non_null(g_attr[i]);
	}
	g_peers = calloc(RIB_MAX_PEERS, sizeof(*g_peers));
	for (unsigned i = 1; i <= NW * PPW; i++) {
		g_peers[i].bgp_id = 0xC0000200u + i;
		g_peers[i].asn = 64500 + i % 3;
		g_peers[i].ebgp = i % 2;
		g_peers[i].addr.family = BGP_FAM_IPV4;
		g_peers[i].addr.addr[0] = 10;
		g_peers[i].addr.addr[3] = (uint8_t)i;
	}
	make_universe();
	struct rib_opts o = { .attrs = g_at, .peers = g_peers, .decide = g_dopts,
			      .lpm_index_min = lpm_index_min };
	g_rib = rib_create(&o);
	g_deadline_ns = now_ns() + (uint64_t)(secs * 1e9);

	pthread_t wt[NW], rt[NR], ct;
	for (unsigned i = 0; i < NW; i++)
		assert_int_equal(pthread_create(&wt[i], NULL, writer, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < NR; i++)
		assert_int_equal(pthread_create(&rt[i], NULL, reader, (void *)(uintptr_t)(i + 1)), 0);
	assert_int_equal(pthread_create(&ct, NULL, consumer, NULL), 0);
	for (unsigned i = 0; i < NW; i++)
		pthread_join(wt[i], NULL);
	for (unsigned i = 0; i < NR; i++)
		pthread_join(rt[i], NULL);
	rib_journal_wake(g_rib);
	pthread_join(ct, NULL);
	if (g_fail[0])
		fail_msg("%s", g_fail);

	/* the table equals the union of the models */
	uint64_t want_paths[BGP_FAM_COUNT] = { 0, 0 }, want_pfx[BGP_FAM_COUNT] = { 0, 0 };
	rcu_read_lock();
	for (unsigned x = 0; x < NPFX; x++) {
		unsigned cnt = 0;
		for (unsigned w = 0; w < NW; w++)
			for (unsigned pi = 0; pi < PPW; pi++)
				for (unsigned id = 0; id < 2; id++) {
					uint8_t m = g_model[w][pi][x][id];
					if (!m)
						continue;
					cnt++;
				}
		struct rib_node *n = rib_lookup(g_rib, &g_pfx[x]);
		const struct rib_pathset *ps = n ? rib_node_paths(n) : NULL;
		assert_int_equal(ps ? ps->n : 0, cnt);
		want_paths[g_pfx[x].family] += cnt;
		want_pfx[g_pfx[x].family] += cnt > 0;
		if (ps)
			check_set(&g_pfx[x], ps);
		rcu_read_unlock();
		for (unsigned w = 0; w < NW; w++)
			for (unsigned pi = 0; pi < PPW; pi++)
				check_own(w, pi, x);
		rcu_read_lock();
	}
	rcu_read_unlock();
	if (g_fail[0])
		fail_msg("%s", g_fail);
	struct rib_stats st;
	rib_stats(g_rib, &st);
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		assert_int_equal(st.paths[f], want_paths[f]);
		assert_int_equal(st.prefixes[f], want_pfx[f]);
	}
	uint64_t ops = 0;
	for (unsigned w = 0; w < NW; w++)
		ops += g_ops[w];
	printf("torture: %.1f s, %llu writer ops, %llu journal hand-overs, %llu paths left\n", secs,
	       (unsigned long long)ops, (unsigned long long)g_drained,
	       (unsigned long long)(want_paths[0] + want_paths[1]));
	assert_true(ops > 0);

	/* withdraw everything: no node, no path, no reference left */
	for (uint32_t peer = 1; peer <= NW * PPW; peer++)
		rib_withdraw_peer(g_rib, peer, BGP_FAM_COUNT, false);
	struct rib_node *buf[256];
	size_t n;
	while ((n = rib_journal_drain(g_rib, buf, 256)) > 0)
		for (size_t i = 0; i < n; i++)
			rib_journal_release(g_rib, buf[i]);
	rib_stats(g_rib, &st);
	assert_int_equal(st.nodes, 0);
	assert_int_equal(st.paths[0] + st.paths[1], 0);
	rib_flush(g_rib);
	for (unsigned i = 0; i < NATTR; i++)
		assert_int_equal(__atomic_load_n(&g_attr[i]->refcnt, __ATOMIC_RELAXED), 1);
	rib_destroy(g_rib);
	for (unsigned i = 0; i < NATTR; i++)
		attr_unref(g_at, g_attr[i]);
	attr_table_destroy(g_at);
	free(g_peers);
	rcu_unregister_thread();
}

int main(void)
{
	static uint32_t idx_default = 0, idx_off = RIB_LPM_INDEX_OFF;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_torture, &idx_default),
		cmocka_unit_test_prestate(test_torture, &idx_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
