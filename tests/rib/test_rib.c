/*
 * test_rib.c - unit tests for rib/rib.c on one thread: insert / replace /
 * withdraw, exact and longest-prefix lookup (single and batched, the batches
 * checked against the single calls over random tables), ordered walks (full, below a
 * prefix, resumed, resumed after the cursor was deleted) for every prefix
 * length of both families, best-path order after updates, the journal
 * (one hand-over per drain however many changes, node lifetime until
 * release), withdraw_peer, stale marking and the per-peer index, resumable
 * sweeps in bounded steps, batched
 * withdrawal and batched journal release, writer threads' own free batches.
 *
 * Attribute sets are real interned ones (rib/attr.c) that differ in
 * LOCAL_PREF, so the expected best path is obvious from the table.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

struct fx {
	struct attr_table *at;
	struct rib_peerinfo *peers;
	struct rib *rib;
	bool no_index;                   /* created with RIB_LPM_INDEX_OFF */
};

static struct attr_set *mk_attr(struct attr_table *at, uint32_t lp)
{
	uint8_t b[32];
	size_t n = 0;
	b[n++] = 0x40; b[n++] = BGP_ATTR_ORIGIN; b[n++] = 1; b[n++] = BGP_ORIGIN_IGP;
	b[n++] = 0x40; b[n++] = BGP_ATTR_AS_PATH; b[n++] = 0;
	b[n++] = 0x40; b[n++] = BGP_ATTR_LOCAL_PREF; b[n++] = 4;
	b[n++] = (uint8_t)(lp >> 24); b[n++] = (uint8_t)(lp >> 16);
	b[n++] = (uint8_t)(lp >> 8); b[n++] = (uint8_t)lp;
	struct bgp_nexthop nh = { .len = 4, .addr = { 192, 0, 2, 1 } };
	struct attr_set *a = attr_intern(at, &nh, b, n);
	assert_non_null(a);
	assert_int_equal(a->local_pref, lp);
	return a;
}

static int setup_opts(void **state, uint32_t lpm_index_min)
{
	rcu_register_thread();
	struct fx *f = calloc(1, sizeof(*f));
	f->at = attr_table_create();
	f->peers = calloc(RIB_MAX_PEERS, sizeof(*f->peers));
	for (unsigned i = 0; i < 64; i++) {
		f->peers[i].bgp_id = 0x0A000000u + i;
		f->peers[i].asn = 65515;
		f->peers[i].addr.family = BGP_FAM_IPV4;
		f->peers[i].addr.addr[0] = 10;
		f->peers[i].addr.addr[3] = (uint8_t)i;
	}
	struct rib_opts o = { .attrs = f->at, .peers = f->peers, .lpm_index_min = lpm_index_min };
	f->rib = rib_create(&o);
	f->no_index = lpm_index_min == RIB_LPM_INDEX_OFF;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, 0);
}

/* The daemon's RIB: no IPv4 /24 tables, every find and LPM descends. */
static int setup_noindex(void **state)
{
	return setup_opts(state, RIB_LPM_INDEX_OFF);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	rib_destroy(f->rib);
	if (!getenv("RIB_TEST_NOLEAKCHECK")) attr_table_destroy(f->at);
	free(f->peers);
	free(f);
	rcu_unregister_thread();
	return 0;
}

static struct bgp_prefix pfx_make(unsigned fam, const uint8_t *addr, unsigned len)
{
	struct bgp_prefix p;
	memset(&p, 0, sizeof(p));
	p.family = (uint8_t)fam;
	p.len = (uint8_t)len;
	unsigned nb = fam == BGP_FAM_IPV4 ? 4 : 16;
	for (unsigned i = 0; i < nb; i++) {
		unsigned bits = len > 8 * i ? len - 8 * i : 0;
		uint8_t m = bits >= 8 ? 0xFF : (uint8_t)(0xFF00u >> bits);
		p.addr[i] = addr[i] & m;
	}
	return p;
}

static struct bgp_prefix p4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned len)
{
	uint8_t x[4] = { a, b, c, d };
	return pfx_make(BGP_FAM_IPV4, x, len);
}

static int pfx_cmp(const struct bgp_prefix *a, const struct bgp_prefix *b)
{
	int c = memcmp(a->addr, b->addr, 16);
	if (c)
		return c;
	return (int)a->len - (int)b->len;
}

static int pfx_qcmp(const void *a, const void *b)
{
	return pfx_cmp(a, b);
}

static bool pfx_eq(const struct bgp_prefix *a, const struct bgp_prefix *b)
{
	return a->family == b->family && pfx_cmp(a, b) == 0;
}

/* ---- walk collection ---------------------------------------------------- */

struct coll {
	struct bgp_prefix p[4096];
	size_t n;
};

static bool coll_cb(struct rib_node *n, const struct bgp_prefix *pfx,
		    const struct rib_pathset *ps, void *arg)
{
	struct coll *c = arg;
	struct bgp_prefix np;
	assert_non_null(ps);
	assert_true(ps->n > 0);
	rib_node_prefix(n, &np);
	assert_true(pfx_eq(&np, pfx));
	assert_true(c->n < 4096);
	c->p[c->n++] = *pfx;
	return true;
}

static void walk_all(struct rib *r, unsigned fam, const struct bgp_prefix *below, struct coll *c)
{
	c->n = 0;
	rcu_read_lock();
	rib_walk(r, fam, below, NULL, SIZE_MAX, coll_cb, c, NULL);
	rcu_read_unlock();
}

/* Drain the journal completely (release included); returns prefixes drained. */
static size_t drain_all(struct rib *r)
{
	struct rib_node *buf[256];
	size_t total = 0, n;
	while ((n = rib_journal_drain(r, buf, 256)) > 0) {
		for (size_t i = 0; i < n; i++)
			rib_journal_release(r, buf[i]);
		total += n;
	}
	return total;
}

/* ---- every prefix length ------------------------------------------------ */

static void all_lengths(struct fx *f, unsigned fam)
{
	unsigned maxlen = bgp_family_maxlen(fam), nb = fam == BGP_FAM_IPV4 ? 4 : 16;
	static struct bgp_prefix ref[3 * 129];
	size_t nref = 0;
	struct attr_set *a = mk_attr(f->at, 100);
	uint8_t host[3][16];
	srand(7 + fam);
	for (unsigned v = 0; v < 3; v++)
		for (unsigned i = 0; i < nb; i++)
			host[v][i] = (uint8_t)rand();
	host[2][0] = host[0][0];      /* share a first stride with variant 0 */

	for (unsigned v = 0; v < 3; v++) {
		for (unsigned len = 0; len <= maxlen; len++) {
			struct bgp_prefix p = pfx_make(fam, host[v], len);
			bool dup = false;
			for (size_t j = 0; j < nref; j++)
				dup |= pfx_eq(&ref[j], &p);
			int rv = rib_update(f->rib, &p, 1, a, 0);
			assert_int_equal(rv, dup ? 0 : 1);
			if (!dup)
				ref[nref++] = p;
		}
	}
	struct rib_stats st;
	rib_stats(f->rib, &st);
	assert_int_equal(st.prefixes[fam], nref);
	assert_int_equal(st.paths[fam], nref);
	assert_int_equal(rib_peer_prefixes(f->rib, 1, fam), nref);

	/* exact lookups */
	rcu_read_lock();
	for (size_t j = 0; j < nref; j++) {
		struct rib_node *n = rib_lookup(f->rib, &ref[j]);
		assert_non_null(n);
		struct bgp_prefix q;
		rib_node_prefix(n, &q);
		assert_true(pfx_eq(&q, &ref[j]));
		const struct rib_pathset *ps = rib_node_paths(n);
		assert_int_equal(ps->n, 1);
		assert_ptr_equal(ps->p[0].attr, a);
	}
	rcu_read_unlock();

	/* full ordered walk equals the sorted reference */
	qsort(ref, nref, sizeof(ref[0]), pfx_qcmp);
	static struct coll c;
	walk_all(f->rib, fam, NULL, &c);
	assert_int_equal(c.n, nref);
	for (size_t j = 0; j < nref; j++)
		assert_true(pfx_eq(&c.p[j], &ref[j]));

	/* walk below each prefix: exactly the reference entries inside it */
	for (size_t b = 0; b < nref; b++) {
		walk_all(f->rib, fam, &ref[b], &c);
		size_t k = 0;
		for (size_t j = 0; j < nref; j++) {
			struct bgp_prefix in = pfx_make(fam, ref[j].addr, ref[b].len);
			if (ref[j].len >= ref[b].len && memcmp(in.addr, ref[b].addr, 16) == 0) {
				assert_true(k < c.n);
				assert_true(pfx_eq(&c.p[k], &ref[j]));
				k++;
			}
		}
		assert_int_equal(k, c.n);
	}

	/* resumable walk in chunks of 5 gives the same sequence */
	struct bgp_prefix cur;
	bool have = false;
	size_t seen = 0;
	for (unsigned guard = 0; guard < 1000; guard++) {
		c.n = 0;
		rcu_read_lock();
		size_t got = rib_walk(f->rib, fam, NULL, have ? &cur : NULL, 5, coll_cb, &c, &cur);
		rcu_read_unlock();
		for (size_t j = 0; j < got; j++)
			assert_true(pfx_eq(&c.p[j], &ref[seen + j]));
		seen += got;
		have = true;
		if (got < 5)
			break;
	}
	assert_int_equal(seen, nref);

	/* LPM: for each host, remove its prefixes from the longest down; the
	 * LPM must always be the longest prefix of that host still present */
	static bool gone[3 * 129];
	memset(gone, 0, sizeof(gone));
	for (unsigned v = 0; v < 3; v++) {
		for (int len = (int)maxlen; len >= 0; len--) {
			int want = -1;
			for (int l = len; l >= 0 && want < 0; l--) {
				struct bgp_prefix w = pfx_make(fam, host[v], (unsigned)l);
				for (size_t j = 0; j < nref; j++)
					if (!gone[j] && pfx_eq(&ref[j], &w))
						want = (int)j;
			}
			rcu_read_lock();
			struct rib_node *n = rib_lookup_lpm(f->rib, fam, host[v]);
			struct bgp_prefix q;
			if (n)
				rib_node_prefix(n, &q);
			rcu_read_unlock();
			if (want < 0) {
				assert_null(n);
				continue;
			}
			assert_non_null(n);
			assert_true(pfx_eq(&q, &ref[want]));
			struct bgp_prefix d = pfx_make(fam, host[v], (unsigned)len);
			if (!pfx_eq(&d, &ref[want]))
				continue;
			assert_int_equal(rib_withdraw(f->rib, &d, 1), 1);
			assert_int_equal(rib_withdraw(f->rib, &d, 1), 0);
			gone[want] = true;
		}
	}
	rib_stats(f->rib, &st);
	assert_int_equal(st.prefixes[fam], 0);
	assert_int_equal(st.paths[fam], 0);
	assert_int_equal(rib_peer_prefixes(f->rib, 1, fam), 0);
	drain_all(f->rib);
	rib_stats(f->rib, &st);
	assert_int_equal(st.nodes, 0);            /* every node and glue node freed */
	walk_all(f->rib, fam, NULL, &c);
	assert_int_equal(c.n, 0);
	attr_unref(f->at, a);
}

static void test_lengths_v4(void **state)
{
	all_lengths(*state, BGP_FAM_IPV4);
}

static void test_lengths_v6(void **state)
{
	all_lengths(*state, BGP_FAM_IPV6);
}

/* ---- default route, host routes, LPM table ------------------------------ */

static void test_lpm_table(void **state)
{
	struct fx *f = *state;
	struct attr_set *a = mk_attr(f->at, 100);
	static const struct {
		uint8_t a[4];
		unsigned len;
	} routes[] = {
		{ { 0, 0, 0, 0 }, 0 },       { { 10, 0, 0, 0 }, 8 },      { { 10, 1, 0, 0 }, 16 },
		{ { 10, 1, 2, 0 }, 24 },     { { 10, 1, 2, 3 }, 32 },     { { 10, 128, 0, 0 }, 9 },
		{ { 192, 168, 0, 0 }, 16 },  { { 255, 255, 255, 255 }, 32 }, { { 128, 0, 0, 0 }, 1 },
		{ { 4, 0, 0, 0 }, 6 },
	};
	static const struct {
		uint8_t q[4];
		int want;                    /* index into routes */
	} cases[] = {
		{ { 10, 1, 2, 3 }, 4 },      { { 10, 1, 2, 4 }, 3 },      { { 10, 1, 3, 0 }, 2 },
		{ { 10, 2, 0, 0 }, 1 },      { { 10, 200, 0, 0 }, 5 },    { { 11, 0, 0, 0 }, 0 },
		{ { 192, 168, 7, 7 }, 6 },   { { 192, 169, 0, 0 }, 8 },   { { 255, 255, 255, 255 }, 7 },
		{ { 255, 255, 255, 254 }, 8 }, { { 5, 1, 1, 1 }, 9 },     { { 3, 255, 0, 0 }, 0 },
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct bgp_prefix p = pfx_make(BGP_FAM_IPV4, routes[i].a, routes[i].len);
		assert_int_equal(rib_update(f->rib, &p, 2, a, 0), 1);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rcu_read_lock();
		struct rib_node *n = rib_lookup_lpm(f->rib, BGP_FAM_IPV4, cases[i].q);
		assert_non_null(n);
		struct bgp_prefix q, w;
		rib_node_prefix(n, &q);
		w = pfx_make(BGP_FAM_IPV4, routes[cases[i].want].a, routes[cases[i].want].len);
		assert_true(pfx_eq(&q, &w));
		rcu_read_unlock();
	}
	/* a prefix that is only glue is not found exactly */
	struct bgp_prefix g = p4(10, 0, 0, 0, 15);
	rcu_read_lock();
	assert_null(rib_lookup(f->rib, &g));
	rcu_read_unlock();
	/* the default route goes: LPM for 11/8 now finds nothing */
	struct bgp_prefix d = p4(0, 0, 0, 0, 0);
	assert_int_equal(rib_withdraw(f->rib, &d, 2), 1);
	rcu_read_lock();
	assert_null(rib_lookup_lpm(f->rib, BGP_FAM_IPV4, (const uint8_t[]){ 11, 0, 0, 0 }));
	rcu_read_unlock();
	/* IPv6 default and host route */
	uint8_t z[16] = { 0 }, h[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	h[15] = 1;
	struct bgp_prefix d6 = pfx_make(BGP_FAM_IPV6, z, 0), h6 = pfx_make(BGP_FAM_IPV6, h, 128);
	assert_int_equal(rib_update(f->rib, &d6, 2, a, 0), 1);
	assert_int_equal(rib_update(f->rib, &h6, 2, a, 0), 1);
	rcu_read_lock();
	struct rib_node *n = rib_lookup_lpm(f->rib, BGP_FAM_IPV6, h);
	struct bgp_prefix q;
	rib_node_prefix(n, &q);
	assert_int_equal(q.len, 128);
	h[15] = 2;
	n = rib_lookup_lpm(f->rib, BGP_FAM_IPV6, h);
	rib_node_prefix(n, &q);
	assert_int_equal(q.len, 0);
	rcu_read_unlock();
	assert_int_equal(rib_withdraw_peer(f->rib, 2, BGP_FAM_COUNT, false), 10 - 1 + 2);
	attr_unref(f->at, a);
}

/*
 * The IPv4 direct index (per-slot /24 entries, per-slot short-prefix entry,
 * the /25+ mark) against brute force: random announces and withdrawals by two
 * peers over prefixes of every length packed into a few /16s, then LPM
 * (single and batched) and exact lookups for addresses around them.
 */
static uint32_t rnd32(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 16);
}

static void test_lpm_index_random(void **state)
{
	struct fx *f = *state;
	enum { NU = 400, ROUNDS = 60 };
	struct attr_set *a = mk_attr(f->at, 100);
	uint32_t addr[NU];
	unsigned len[NU], have[NU] = { 0 };          /* bit p: peer p+1 has a path */
	uint64_t x = 0x5EED;
	for (unsigned i = 0; i < NU; i++) {
		/* 10.0/16, 10.1/16, 10.2/16, 10.3/16 and the space above them */
		bool dup;
		do {
			/* few short prefixes exist here, so a duplicate redraws both */
			uint32_t v = 0x0A000000u | (rnd32(&x) & 0x0003FFFFu);
			unsigned l = rnd32(&x) % 100;
			l = l < 40 ? 24 : l < 60 ? 16 + l % 8 : l < 80 ? 25 + l % 8 : l % 16;
			if (l > 24)      /* several /25+ per /24: the mark must survive one going */
				v &= 0xFFFC03FFu;
			dup = false;
			addr[i] = l ? v & ~0u << (32 - l) : 0;
			len[i] = l;
			for (unsigned j = 0; j < i; j++)
				dup |= addr[j] == addr[i] && len[j] == l;
		} while (dup);
	}
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned op = 0; op < 40; op++) {
			unsigned i = rnd32(&x) % NU, p = 1 + rnd32(&x) % 2;
			uint8_t b[4] = { (uint8_t)(addr[i] >> 24), (uint8_t)(addr[i] >> 16),
					 (uint8_t)(addr[i] >> 8), (uint8_t)addr[i] };
			struct bgp_prefix pf = pfx_make(BGP_FAM_IPV4, b, len[i]);
			if (rnd32(&x) % 3) {
				rib_update(f->rib, &pf, p, a, 0);
				have[i] |= 1u << (p - 1);
			} else {
				assert_int_equal(rib_withdraw(f->rib, &pf, p), (have[i] >> (p - 1)) & 1);
				have[i] &= ~(1u << (p - 1));
			}
		}
		enum { NQ = 300 };
		uint8_t q[NQ][4];
		struct rib_node *got[NQ];
		for (unsigned j = 0; j < NQ; j++) {
			uint32_t v = j % 2 ? addr[rnd32(&x) % NU] ^ (rnd32(&x) & 0x3FF) :
				     0x0A000000u | (rnd32(&x) & 0x0007FFFFu);
			q[j][0] = (uint8_t)(v >> 24); q[j][1] = (uint8_t)(v >> 16);
			q[j][2] = (uint8_t)(v >> 8); q[j][3] = (uint8_t)v;
		}
		rcu_read_lock();
		rib_lookup_lpm_batch(f->rib, BGP_FAM_IPV4, &q[0][0], 4, NQ, got);
		for (unsigned j = 0; j < NQ; j++) {
			uint32_t v = (uint32_t)q[j][0] << 24 | (uint32_t)q[j][1] << 16 |
				     (uint32_t)q[j][2] << 8 | q[j][3];
			int best = -1;
			for (unsigned i = 0; i < NU; i++) {
				uint32_t m = len[i] ? ~0u << (32 - len[i]) : 0;
				if (have[i] && (v & m) == addr[i] && (best < 0 || len[i] > len[best]))
					best = (int)i;
			}
			struct rib_node *n = rib_lookup_lpm(f->rib, BGP_FAM_IPV4, q[j]);
			assert_ptr_equal(n, got[j]);
			if (best < 0) {
				assert_null(n);
				continue;
			}
			assert_non_null(n);
			struct bgp_prefix pq;
			rib_node_prefix(n, &pq);
			assert_int_equal(pq.len, len[best]);
			assert_int_equal((uint32_t)pq.addr[0] << 24 | (uint32_t)pq.addr[1] << 16 |
					 (uint32_t)pq.addr[2] << 8 | pq.addr[3], addr[best]);
		}
		/* exact lookups of every prefix, single and batched, against the
		 * model: the same node from both, with the prefix asked for (the
		 * index's hint must not hand back the longer or shorter prefix
		 * that decides a /24) */
		struct bgp_prefix all[NU];
		struct rib_node *gx[NU];
		for (unsigned i = 0; i < NU; i++) {
			uint8_t b[4] = { (uint8_t)(addr[i] >> 24), (uint8_t)(addr[i] >> 16),
					 (uint8_t)(addr[i] >> 8), (uint8_t)addr[i] };
			all[i] = pfx_make(BGP_FAM_IPV4, b, len[i]);
		}
		rib_lookup_batch(f->rib, all, NU, gx);
		for (unsigned i = 0; i < NU; i++) {
			struct rib_node *n = rib_lookup(f->rib, &all[i]);
			assert_int_equal(n != NULL, have[i] != 0);
			assert_ptr_equal(n, gx[i]);
			if (!n)
				continue;
			struct bgp_prefix pq;
			rib_node_prefix(n, &pq);
			assert_int_equal(pq.len, len[i]);
			assert_memory_equal(pq.addr, all[i].addr, 4);
			assert_non_null(rib_node_paths(n));
		}
		rcu_read_unlock();
	}
	struct rib_stats st;
	rib_stats(f->rib, &st);
	if (f->no_index)
		assert_int_equal(st.lpm_index_bytes, 0);
	else
		assert_true(st.lpm_index_bytes > 0);
	rib_withdraw_peer(f->rib, 1, BGP_FAM_COUNT, false);
	rib_withdraw_peer(f->rib, 2, BGP_FAM_COUNT, false);
	rcu_read_lock();
	assert_null(rib_lookup_lpm(f->rib, BGP_FAM_IPV4, (const uint8_t[]){ 10, 1, 2, 3 }));
	rcu_read_unlock();
	attr_unref(f->at, a);
}

/* ---- batched lookups against the single calls --------------------------- */

static struct bgp_prefix rnd_pfx(uint64_t *x, unsigned fam)
{
	uint8_t b[16];
	for (unsigned i = 0; i < 16; i++)
		b[i] = (uint8_t)rnd32(x);
	unsigned l = rnd32(x) % 100, len;
	if (fam == BGP_FAM_IPV4) {
		if (rnd32(x) % 2) {      /* dense: 10.0/12, 16 slots with /24 indexes */
			b[0] = 10;
			b[1] &= 0x0F;
		}
		len = l < 40 ? 24 : l < 60 ? 16 + l % 8 : l < 70 ? 25 + l % 8 : l < 75 ? 32 :
		      l < 98 ? l % 16 : 0;
	} else {
		if (rnd32(x) % 2) {      /* dense: 2001:db8::/32 */
			b[0] = 0x20; b[1] = 0x01; b[2] = 0x0D; b[3] = 0xB8;
		}
		len = l < 40 ? 48 : l < 55 ? 32 : l < 70 ? 128 : l < 98 ? rnd32(x) % 129 : 0;
	}
	return pfx_make(fam, b, len);
}

/* A query address: inside a table prefix (random host bits) or anywhere. */
static void rnd_addr(uint64_t *x, const struct bgp_prefix *tab, size_t n, uint8_t *a)
{
	for (unsigned i = 0; i < 16; i++)
		a[i] = (uint8_t)rnd32(x);
	if (rnd32(x) % 4 == 0)
		return;
	const struct bgp_prefix *p = &tab[rnd32(x) % n];
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = p->len > 8 * i ? p->len - 8 * i : 0;
		uint8_t m = bits >= 8 ? 0xFF : (uint8_t)(0xFF00u >> bits);
		a[i] = (uint8_t)((p->addr[i] & m) | (a[i] & ~m));
	}
}

static void check_batches(struct fx *f, const struct bgp_prefix *tab, size_t ntab,
			  const uint8_t *have, uint64_t *x)
{
	enum { NQ = 3000 };
	static struct bgp_prefix q[NQ];
	static struct rib_node *got[NQ];
	static const size_t sizes[] = { 0, 1, 5, 16, 17, 100, NQ };
	rcu_read_lock();
	/* exact: every table prefix (present or not), other prefixes, bad ones */
	for (size_t i = 0; i < ntab; i += NQ) {
		size_t k = ntab - i < NQ ? ntab - i : NQ;
		rib_lookup_batch(f->rib, tab + i, k, got);
		for (size_t j = 0; j < k; j++) {
			assert_ptr_equal(got[j], rib_lookup(f->rib, &tab[i + j]));
			assert_int_equal(got[j] != NULL, have[i + j] != 0);
		}
	}
	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t k = sizes[s];
		for (size_t j = 0; j < k; j++) {
			unsigned c = rnd32(x) % 16;
			if (c < 8) {
				q[j] = tab[rnd32(x) % ntab];
			} else if (c < 14) {
				q[j] = rnd_pfx(x, c % 2 ? BGP_FAM_IPV6 : BGP_FAM_IPV4);
			} else {
				q[j] = tab[rnd32(x) % ntab];
				if (c == 14)
					q[j].family = 7;
				else
					q[j].len = q[j].family == BGP_FAM_IPV4 ? 33 : 129;
			}
		}
		rib_lookup_batch(f->rib, q, k, got);
		for (size_t j = 0; j < k; j++)
			assert_ptr_equal(got[j], rib_lookup(f->rib, &q[j]));
		/* IPv4 only (a RIB without /24 tables has a path of its own for
		 * these): table prefixes, the same with one bit of the prefix
		 * flipped (mostly absent, their walks end on other prefixes of
		 * the same length), random ones */
		for (size_t j = 0; j < k; j++) {
			unsigned c = rnd32(x) % 4;
			if (c == 3) {
				q[j] = rnd_pfx(x, BGP_FAM_IPV4);
				continue;
			}
			do
				q[j] = tab[rnd32(x) % ntab];
			while (q[j].family != BGP_FAM_IPV4);
			if (c == 2 && q[j].len) {
				unsigned b = rnd32(x) % q[j].len;
				q[j].addr[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
			}
		}
		rib_lookup_batch(f->rib, q, k, got);
		for (size_t j = 0; j < k; j++)
			assert_ptr_equal(got[j], rib_lookup(f->rib, &q[j]));
		/* longest match, both families, addresses read with a stride */
		for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
			for (size_t j = 0; j < k; j++)
				rnd_addr(x, tab, ntab, q[j].addr);
			rib_lookup_lpm_batch(f->rib, fam, q[0].addr, sizeof(q[0]), k, got);
			for (size_t j = 0; j < k; j++)
				assert_ptr_equal(got[j], rib_lookup_lpm(f->rib, fam, q[j].addr));
		}
		for (size_t j = 0; j < k; j++)
			got[j] = (struct rib_node *)&got[j];
		rib_lookup_lpm_batch(f->rib, BGP_FAM_COUNT, q[0].addr, sizeof(q[0]), k, got);
		for (size_t j = 0; j < k; j++)
			assert_null(got[j]);
	}
	rcu_read_unlock();
}

static void test_lookup_batch_random(void **state)
{
	struct fx *f = *state;
	enum { N4 = 6000, N6 = 3000, N = N4 + N6 };
	struct attr_set *a = mk_attr(f->at, 100);
	struct bgp_prefix *tab = calloc(N, sizeof(*tab));
	uint8_t *have = calloc(N, 1);            /* bit p: peer p+1 has a path */
	uint64_t x = 0xB47C4;
	size_t n = 0;
	while (n < N) {
		struct bgp_prefix p = rnd_pfx(&x, n < N4 ? BGP_FAM_IPV4 : BGP_FAM_IPV6);
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = pfx_eq(&tab[j], &p);
		if (!dup)
			tab[n++] = p;
	}
	for (size_t i = 0; i < N; i++) {
		unsigned p = 1 + rnd32(&x) % 2;
		rib_update(f->rib, &tab[i], p, a, 0);
		have[i] |= (uint8_t)(1u << (p - 1));
	}
	check_batches(f, tab, N, have, &x);
	for (unsigned r = 0; r < 3; r++) {
		/* withdraw about half (glue nodes, emptied index entries), re-add some */
		for (size_t i = 0; i < N; i++) {
			unsigned p = 1 + rnd32(&x) % 2;
			if (rnd32(&x) % 2) {
				assert_int_equal(rib_withdraw(f->rib, &tab[i], p), (have[i] >> (p - 1)) & 1);
				have[i] &= (uint8_t)~(1u << (p - 1));
			} else if (rnd32(&x) % 4 == 0) {
				rib_update(f->rib, &tab[i], p, a, 0);
				have[i] |= (uint8_t)(1u << (p - 1));
			}
		}
		check_batches(f, tab, N, have, &x);
	}
	rib_withdraw_peer(f->rib, 1, BGP_FAM_COUNT, false);
	for (size_t i = 0; i < N; i++)
		have[i] &= 2;
	check_batches(f, tab, N, have, &x);
	rib_withdraw_peer(f->rib, 2, BGP_FAM_COUNT, false);
	memset(have, 0, N);
	check_batches(f, tab, N, have, &x);
	free(tab);
	free(have);
	attr_unref(f->at, a);
}

/* ---- best path order ---------------------------------------------------- */

static void expect_order(struct fx *f, const struct bgp_prefix *p, const uint32_t *peers, unsigned n)
{
	rcu_read_lock();
	struct rib_node *nd = rib_lookup(f->rib, p);
	if (n == 0) {
		assert_null(nd);
	} else {
		assert_non_null(nd);
		const struct rib_pathset *ps = rib_node_paths(nd);
		assert_int_equal(ps->n, n);
		assert_true(ps->n_multipath >= 1);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(ps->p[i].peer, peers[i]);
	}
	rcu_read_unlock();
}

static void test_best_order(void **state)
{
	struct fx *f = *state;
	struct attr_set *a100 = mk_attr(f->at, 100), *a200 = mk_attr(f->at, 200),
			*a150 = mk_attr(f->at, 150), *a50 = mk_attr(f->at, 50);
	struct bgp_prefix p = p4(198, 51, 100, 0, 24);
	assert_int_equal(rib_update(f->rib, &p, 1, a100, 0), 1);
	assert_int_equal(rib_update(f->rib, &p, 2, a200, 0), 1);
	assert_int_equal(rib_update(f->rib, &p, 3, a150, 0), 1);
	expect_order(f, &p, (const uint32_t[]){ 2, 3, 1 }, 3);
	assert_int_equal(rib_update(f->rib, &p, 2, a50, 0), 0);      /* replace */
	expect_order(f, &p, (const uint32_t[]){ 3, 1, 2 }, 3);
	assert_int_equal(rib_update(f->rib, &p, 2, a50, 0), 0);      /* no-op */
	assert_int_equal(rib_withdraw(f->rib, &p, 3), 1);
	expect_order(f, &p, (const uint32_t[]){ 1, 2 }, 2);
	/* ADD-PATH: a second path from peer 1 */
	struct bgp_prefix p2 = p;
	p2.path_id = 7;
	assert_int_equal(rib_update(f->rib, &p2, 1, a200, 0), 1);
	expect_order(f, &p, (const uint32_t[]){ 1, 1, 2 }, 3);
	rcu_read_lock();
	const struct rib_pathset *ps = rib_node_paths(rib_lookup(f->rib, &p));
	assert_int_equal(ps->p[0].path_id, 7);
	assert_int_equal(ps->p[1].path_id, 0);
	rcu_read_unlock();
	assert_int_equal(rib_peer_prefixes(f->rib, 1, BGP_FAM_IPV4), 1);
	assert_int_equal(rib_withdraw(f->rib, &p, 1), 1);
	assert_int_equal(rib_peer_prefixes(f->rib, 1, BGP_FAM_IPV4), 1);
	assert_int_equal(rib_withdraw(f->rib, &p2, 1), 1);
	assert_int_equal(rib_peer_prefixes(f->rib, 1, BGP_FAM_IPV4), 0);
	expect_order(f, &p, (const uint32_t[]){ 2 }, 1);
	assert_int_equal(rib_withdraw(f->rib, &p, 2), 1);
	expect_order(f, &p, NULL, 0);
	/* the replaced and withdrawn paths' references are gone once reclaimed */
	drain_all(f->rib);
	rib_flush(f->rib);
	assert_int_equal(__atomic_load_n(&a50->refcnt, __ATOMIC_RELAXED), 1);
	assert_int_equal(__atomic_load_n(&a200->refcnt, __ATOMIC_RELAXED), 1);
	attr_unref(f->at, a100);
	attr_unref(f->at, a200);
	attr_unref(f->at, a150);
	attr_unref(f->at, a50);
}

/* ---- walks: below, resume after a deleted cursor ------------------------ */

static void test_walk_resume_deleted(void **state)
{
	struct fx *f = *state;
	struct attr_set *a = mk_attr(f->at, 100);
	static struct bgp_prefix ref[600];
	size_t n = 0;
	for (unsigned i = 0; i < 200; i++) {
		ref[n++] = p4((uint8_t)(i * 37), (uint8_t)i, 0, 0, 16);
		ref[n++] = p4((uint8_t)(i * 37), (uint8_t)i, (uint8_t)(i * 3), 0, 24);
		ref[n++] = p4((uint8_t)(i * 37), 0, 0, 0, (i % 8));
	}
	size_t uniq = 0;
	for (size_t i = 0; i < n; i++)
		uniq += rib_update(f->rib, &ref[i], 4, a, 0);
	qsort(ref, n, sizeof(ref[0]), pfx_qcmp);
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (!o || !pfx_eq(&ref[o - 1], &ref[i]))
			ref[o++] = ref[i];
	assert_int_equal(o, uniq);

	/* walk in chunks of 7; after every chunk delete the cursor prefix itself
	 * and the next one, then resume from the deleted cursor */
	static struct coll c;
	struct bgp_prefix cur;
	bool have = false, deleted_next = false;
	size_t pos = 0;
	for (unsigned guard = 0; guard < 10000; guard++) {
		c.n = 0;
		rcu_read_lock();
		size_t got = rib_walk(f->rib, BGP_FAM_IPV4, NULL, have ? &cur : NULL, 7, coll_cb, &c, &cur);
		rcu_read_unlock();
		for (size_t j = 0; j < got; j++) {
			if (deleted_next) {
				pos++;               /* skip the one we deleted */
				deleted_next = false;
			}
			assert_true(pos < o);
			assert_true(pfx_eq(&c.p[j], &ref[pos]));
			pos++;
		}
		if (got < 7)
			break;
		have = true;
		assert_int_equal(rib_withdraw(f->rib, &cur, 4), 1);
		if (pos < o) {
			assert_int_equal(rib_withdraw(f->rib, &ref[pos], 4), 1);
			deleted_next = true;
		}
		drain_all(f->rib);           /* frees the cursor's node */
	}
	assert_int_equal(pos + (deleted_next ? 1 : 0), o);

	/* below 0.0.0.0/1: everything with first bit 0, including short ones */
	struct bgp_prefix b = p4(0, 0, 0, 0, 1);
	walk_all(f->rib, BGP_FAM_IPV4, &b, &c);
	for (size_t j = 0; j < c.n; j++) {
		assert_true(c.p[j].addr[0] < 128);
		assert_true(c.p[j].len >= 1);
		if (j)
			assert_true(pfx_cmp(&c.p[j - 1], &c.p[j]) < 0);
	}
	/* max and early stop */
	rcu_read_lock();
	c.n = 0;
	assert_int_equal(rib_walk(f->rib, BGP_FAM_IPV4, NULL, NULL, 3, coll_cb, &c, NULL), 3);
	rcu_read_unlock();
	rib_withdraw_peer(f->rib, 4, BGP_FAM_IPV4, false);
	attr_unref(f->at, a);
}

/* ---- journal ------------------------------------------------------------ */

static void test_journal(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a100 = mk_attr(f->at, 100), *a200 = mk_attr(f->at, 200),
			*a50 = mk_attr(f->at, 50);
	struct bgp_prefix p = p4(203, 0, 113, 0, 24), q = p4(203, 0, 112, 0, 24);
	struct rib_node *buf[16];

	assert_int_equal(rib_journal_pending(r), 0);
	rib_journal_wait(r, 0);                        /* times out at once */
	/* many changes to p, one to q: two hand-overs */
	rib_update(r, &p, 1, a100, 0);
	rib_update(r, &p, 2, a200, 0);
	rib_update(r, &p, 1, a200, 0);
	rib_update(r, &p, 3, a50, 0);                  /* not best: no new mark needed */
	rib_update(r, &q, 1, a100, 0);
	assert_int_equal(rib_journal_pending(r), 2);
	rib_journal_wait(r, -1);                       /* non-empty: returns */
	size_t n = rib_journal_drain(r, buf, 16);
	assert_int_equal(n, 2);
	assert_int_equal(rib_journal_drain(r, buf + n, 16), 0);
	struct bgp_prefix x;
	rib_node_prefix(buf[0], &x);
	assert_true(pfx_eq(&x, &p));
	*rib_node_out_state(buf[0]) = 42;
	rib_journal_release(r, buf[0]);
	rib_journal_release(r, buf[1]);

	/* a change that keeps best and multipath set does not mark */
	rib_update(r, &p, 3, a100, 0);                 /* peer 3 still worse */
	assert_int_equal(rib_journal_pending(r), 0);
	/* changing the best does */
	rib_update(r, &p, 2, a50, 0);
	assert_int_equal(rib_journal_pending(r), 1);
	n = rib_journal_drain(r, buf, 16);
	assert_int_equal(n, 1);
	assert_int_equal(*rib_node_out_state(buf[0]), 42);   /* consumer state kept */

	/* a held node survives becoming empty; it is freed on release */
	struct rib_stats st0, st1;
	rib_withdraw(r, &p, 1);
	rib_withdraw(r, &p, 2);
	rib_withdraw(r, &p, 3);
	rcu_read_lock();
	assert_null(rib_lookup(r, &p));
	assert_null(rib_node_paths(buf[0]));
	rcu_read_unlock();
	struct rib_node *second[4];
	assert_int_equal(rib_journal_drain(r, second, 4), 1);   /* re-marked while held */
	assert_ptr_equal(second[0], buf[0]);
	rib_stats(r, &st0);
	rib_journal_release(r, buf[0]);
	rib_stats(r, &st1);
	assert_int_equal(st1.nodes, st0.nodes);        /* still held once */
	rib_journal_release(r, second[0]);
	rib_stats(r, &st1);
	assert_true(st1.nodes < st0.nodes);

	/* a node re-filled before release is not freed */
	rib_withdraw(r, &q, 1);
	assert_int_equal(rib_journal_drain(r, buf, 16), 1);
	rib_update(r, &q, 1, a100, 0);
	rib_journal_release(r, buf[0]);
	rcu_read_lock();
	assert_ptr_equal(rib_lookup(r, &q), buf[0]);
	rcu_read_unlock();
	drain_all(r);
	rib_journal_wake(r);
	rib_journal_wait(r, -1);                       /* woken explicitly: returns */
	rib_withdraw_peer(r, 1, BGP_FAM_COUNT, false);
	drain_all(r);
	attr_unref(f->at, a100);
	attr_unref(f->at, a200);
	attr_unref(f->at, a50);
}

/*
 * The journal's two lanes: a sweep's changes go to the bulk lane, an
 * UPDATE's to the live lane; each lane drains on its own, in bounded pieces;
 * a prefix in the bulk lane that an UPDATE changes again stays there and is
 * handed over once, with its latest state; rib_journal_drain takes the live
 * lane first, then the bulk lane.
 */
static void test_journal_lanes(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100), *b = mk_attr(f->at, 200);
	enum { N = 40 };
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(61, 0, (uint8_t)i, 0, 24);
		rib_update(r, &p, 8, a, 0);
	}
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_LIVE), N);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_BULK), 0);
	drain_all(r);

	/* half the table swept: bulk lane only */
	struct rib_sweep s;
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW);
	rib_sweep_step(r, &s, N / 2);
	assert_false(s.done);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_BULK), N / 2);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_LIVE), 0);
	/* an UPDATE on a swept prefix (already queued in bulk) and on a new one */
	struct bgp_prefix swept = p4(61, 0, 3, 0, 24), fresh = p4(62, 0, 0, 0, 24);
	rib_update(r, &swept, 9, b, 0);
	rib_update(r, &fresh, 9, b, 0);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_BULK), N / 2);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_LIVE), 1);
	assert_int_equal(rib_journal_pending(r), N / 2 + 1);

	struct rib_node *buf[2 * N];
	struct bgp_prefix x;
	assert_int_equal(rib_journal_drain_lane(r, RIB_JLANE_LIVE, buf, 2 * N), 1);
	rib_node_prefix(buf[0], &x);
	assert_true(pfx_eq(&x, &fresh));
	rib_journal_release(r, buf[0]);
	assert_int_equal(rib_journal_drain_lane(r, RIB_JLANE_LIVE, buf, 2 * N), 0);
	/* the bulk lane in pieces: each prefix once, the re-announced one with
	 * its new path */
	size_t got = 0, n;
	unsigned seen_swept = 0;
	while ((n = rib_journal_drain_lane(r, RIB_JLANE_BULK, buf, 7)) > 0) {
		assert_true(n <= 7);
		rcu_read_lock();
		for (size_t i = 0; i < n; i++) {
			rib_node_prefix(buf[i], &x);
			const struct rib_pathset *ps = rib_node_paths(buf[i]);
			if (pfx_eq(&x, &swept)) {
				seen_swept++;
				assert_non_null(ps);
				assert_int_equal(ps->n, 1);
				assert_int_equal(ps->p[0].peer, 9);
			} else {
				assert_null(ps);
			}
		}
		rcu_read_unlock();
		for (size_t i = 0; i < n; i++)
			rib_journal_release(r, buf[i]);
		got += n;
	}
	assert_int_equal(got, N / 2);
	assert_int_equal(seen_swept, 1);
	assert_int_equal(rib_journal_pending(r), 0);

	/* the rest of the sweep and an UPDATE: rib_journal_drain takes the live
	 * lane first, then fills up from the bulk lane */
	rib_sweep_step(r, &s, SIZE_MAX);
	assert_true(s.done);
	struct bgp_prefix late = p4(62, 0, 1, 0, 24);
	rib_update(r, &late, 9, b, 0);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_BULK), N / 2);
	n = rib_journal_drain(r, buf, 5);
	assert_int_equal(n, 5);
	rib_node_prefix(buf[0], &x);
	assert_true(pfx_eq(&x, &late));
	for (size_t i = 0; i < n; i++)
		rib_journal_release(r, buf[i]);
	assert_int_equal(drain_all(r), N / 2 - 4);
	rib_withdraw_peer(r, 9, BGP_FAM_COUNT, false);
	assert_int_equal(rib_journal_pending_lane(r, RIB_JLANE_BULK), 3);
	drain_all(r);
	attr_unref(f->at, a);
	attr_unref(f->at, b);
}

/* ---- withdraw_peer, stale, index compaction ----------------------------- */

/*
 * Resumable sweeps (rib_sweep_*): a table withdrawn in small steps ends as
 * rib_withdraw_peer would leave it, each step doing at most its count of
 * prefixes; between steps the peer's index only grows (a withdrawal that
 * empties it, or an add that would compact it, must not move the cursor);
 * mark-stale then withdraw-stale in steps equals the one-go result.
 */
static void test_sweep_steps(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100), *b = mk_attr(f->at, 200);
	enum { N = 5000, STEP = 97 };
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(60, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, a, 0), 1);
		if (i % 2 == 0)
			assert_int_equal(rib_update(r, &p, 9, b, 0), 1);
	}
	drain_all(r);

	/* withdraw in steps: bounded work per step, the other peer untouched */
	struct rib_sweep s;
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW);
	uint64_t total = 0;
	unsigned steps = 0;
	while (!s.done) {
		size_t pos = s.pos;
		uint64_t n = rib_sweep_step(r, &s, STEP);
		assert_true(s.pos - pos <= STEP);
		assert_true(n <= STEP);
		total += n;
		steps++;
		if (steps == 3) {
			/* mid-sweep: the peer's index is still intact, half its
			 * prefixes are still there (and still its) */
			assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), N - 3 * STEP);
			struct bgp_prefix last = p4(60, (uint8_t)((N - 1) >> 8), (uint8_t)(N - 1), 0, 24);
			expect_order(f, &last, (const uint32_t[]){ 8 }, 1);
		}
		assert_true(steps <= N / STEP + 2);
	}
	assert_int_equal(total, N);
	assert_int_equal(s.hits, N);
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), 0);
	assert_int_equal(rib_peer_prefixes(r, 9, BGP_FAM_IPV4), N / 2);
	assert_int_equal(rib_sweep_step(r, &s, STEP), 0);      /* done stays done */
	struct rib_stats st;
	rib_flush(r);
	rib_stats(r, &st);
	assert_int_equal(st.paths[BGP_FAM_IPV4], N / 2);

	/* while a sweep is open the index is append-only: withdrawals that
	 * empty it and adds that would compact it leave the cursor valid */
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(61, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		rib_update(r, &p, 8, a, 0);
	}
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW);
	rib_sweep_step(r, &s, STEP);
	for (unsigned i = STEP; i < N; i++) {   /* the rest by hand: the count reaches 0 */
		struct bgp_prefix p = p4(61, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_withdraw(r, &p, 8), 1);
	}
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), 0);
	for (unsigned i = 0; i < 3 * N; i++) {  /* churn that would compact */
		struct bgp_prefix p = p4(62, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		rib_update(r, &p, 8, a, 0);
		if (i % 4)
			rib_withdraw(r, &p, 8);
	}
	while (!s.done)
		rib_sweep_step(r, &s, STEP);
	/* it covered what the peer gained meanwhile, too */
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), 0);
	assert_int_equal(s.hits, STEP + 3 * N / 4);

	/* graceful restart in steps: mark, re-announce some, withdraw the stale */
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(63, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		rib_update(r, &p, 8, a, 0);
	}
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_MARK_STALE);
	while (!s.done)
		rib_sweep_step(r, &s, STEP);
	assert_int_equal(s.hits, N);
	assert_int_equal(rib_mark_peer_stale(r, 8, BGP_FAM_IPV4), 0);
	for (unsigned i = 0; i < N; i += 5) {
		struct bgp_prefix p = p4(63, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, b, 0), 0);
	}
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW_STALE);
	while (!s.done)
		rib_sweep_step(r, &s, STEP);
	assert_int_equal(s.hits, N - N / 5);
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), N / 5);
	/* a peer that never had a path: done at once */
	rib_sweep_begin(r, &s, 40, BGP_FAM_IPV6, RIB_SWEEP_WITHDRAW);
	assert_true(s.done);
	assert_int_equal(rib_withdraw_peer(r, 8, BGP_FAM_COUNT, false), N / 5);
	rib_withdraw_peer(r, 9, BGP_FAM_COUNT, false);
	attr_unref(f->at, a);
	attr_unref(f->at, b);
}

/*
 * A sweep compacts the peer's index as it goes: after End-of-RIB keeps a
 * fifth of a table the index is that fifth, with no sort afterwards; and a
 * sweep begun while another is open (which stops the older one's
 * compaction) still meets every prefix the peer holds - checked by
 * withdrawing them all by the index at the end.
 */
/* Fisher-Yates over n elements of size sz, reproducible from seed (< 64 bytes each). */
static void shuffle(void *base, size_t n, size_t sz, uint32_t seed)
{
	unsigned char *b = base, tmp[64];
	uint32_t x = seed;
	assert_true(sz <= sizeof(tmp));
	for (size_t i = n - 1; n > 1 && i > 0; i--) {
		x = x * 1103515245u + 12345u;
		size_t j = (x >> 8) % (i + 1);
		memcpy(tmp, b + i * sz, sz);
		memcpy(b + i * sz, b + j * sz, sz);
		memcpy(b + j * sz, tmp, sz);
	}
}

static uint64_t index_bytes(struct rib *r)
{
	struct rib_stats st;
	rib_stats(r, &st);
	return st.peer_index_bytes;
}

static void test_sweep_compacts(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100), *b = mk_attr(f->at, 200);
	enum { N = 20000, STEP = 211 };
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(64, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, a, 0), 1);
	}
	uint64_t full = index_bytes(r);
	assert_true(full >= (uint64_t)N * 5);
	assert_int_equal(rib_mark_peer_stale(r, 8, BGP_FAM_IPV4), N);
	for (unsigned i = 0; i < N; i += 5) {
		struct bgp_prefix p = p4(64, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, b, 0), 0);
	}
	struct rib_sweep s;
	rib_sweep_begin(r, &s, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW_STALE);
	while (!s.done)
		rib_sweep_step(r, &s, STEP);
	assert_int_equal(s.hits, N - N / 5);
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), N / 5);
	/* the index holds the kept fifth (and some room), not the table */
	assert_true(index_bytes(r) <= (uint64_t)(N / 5 + N / 20 + 16) * 5);
	assert_true(index_bytes(r) < full / 2);

	/* overlapping sweeps: A (withdraw stale) is a third through when B
	 * (mark stale) begins.  B runs ahead of A's kept entries, pauses, A
	 * finishes (its kept entries then pass B's cursor), B finishes: an
	 * entry A moved below B's cursor and then overwrote above it would be
	 * missed by B if A went on compacting */
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(65, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, a, 0), 1);
	}
	uint64_t held = N / 5 + N;
	assert_int_equal(rib_mark_peer_stale(r, 8, BGP_FAM_IPV4), held);
	for (unsigned i = 0; i < N; i += 2) {            /* half of them back */
		struct bgp_prefix p = p4(65, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, b, 0), 0);
	}
	struct rib_sweep sa, sb;
	rib_sweep_begin(r, &sa, 8, BGP_FAM_IPV4, RIB_SWEEP_WITHDRAW_STALE);
	while (!sa.done && sa.pos < held / 3)
		rib_sweep_step(r, &sa, STEP);
	for (unsigned i = 0; i < 1000; i++) {            /* new ones, appended */
		struct bgp_prefix p = p4(66, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 8, a, 0), 1);
	}
	rib_sweep_begin(r, &sb, 8, BGP_FAM_IPV4, RIB_SWEEP_MARK_STALE);
	while (!sb.done && sb.pos < held * 3 / 10) {
		rib_sweep_step(r, &sb, STEP);
		rib_sweep_step(r, &sa, STEP / 8);
	}
	while (!sa.done)
		rib_sweep_step(r, &sa, STEP);
	while (!sb.done)
		rib_sweep_step(r, &sb, STEP);
	/* B flagged every path left; whatever is left, the index reaches it */
	assert_int_equal(rib_mark_peer_stale(r, 8, BGP_FAM_IPV4), 0);
	uint64_t left = rib_peer_prefixes(r, 8, BGP_FAM_IPV4);
	assert_true(left >= N / 2);
	assert_int_equal(rib_withdraw_peer(r, 8, BGP_FAM_COUNT, false), left);
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), 0);
	assert_int_equal(index_bytes(r), 0);
	rib_flush(r);
	struct rib_stats st;
	rib_stats(r, &st);
	assert_int_equal(st.paths[BGP_FAM_IPV4], 0);
	attr_unref(f->at, a);
	attr_unref(f->at, b);
}

/*
 * The peer index's compaction (when it must grow and holds more than twice
 * the peer's prefixes) sorts it and drops duplicates: a prefix withdrawn and
 * announced again is appended again.  Prefixes of several lengths go in out
 * of order; re-announcing them until the index shrinks must leave exactly
 * one entry per prefix (the capacity it shrinks to is that count plus a
 * quarter plus 16).  A sort that orders by part of the key leaves duplicates
 * apart and the index bigger.
 */
static void test_index_compaction_dedups(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100);
	enum { N = 6000 };
	struct bgp_prefix *t = malloc(N * sizeof(*t));
	assert_non_null(t);
	for (unsigned i = 0; i < N; i++)     /* 2,000 addresses, /24 /25 /26 each */
		t[i] = p4((uint8_t)(70 + i / 3 / 256), (uint8_t)(i / 3), (uint8_t)(i / 3 * 37), 0,
			  24 + i % 3);
	shuffle(t, N, sizeof(*t), 12345);        /* out of order */
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(rib_update(r, &t[i], 8, a, 0), 1);
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), N);
	uint64_t before = index_bytes(r), now = before;
	unsigned k = 0;
	while (now >= before && k < 20 * N) {    /* until a compaction shrinks it */
		struct bgp_prefix *p = &t[(k * 7919u) % N];
		assert_int_equal(rib_withdraw(r, p, 8), 1);
		assert_int_equal(rib_update(r, p, 8, a, 0), 1);
		before = now;
		now = index_bytes(r);
		k++;
	}
	assert_int_equal(rib_peer_prefixes(r, 8, BGP_FAM_IPV4), N);
	assert_true(now < before);
	/* one entry per prefix (N), then room: N + N/4 + 16 entries of 5 bytes */
	assert_int_equal(now, (uint64_t)(N + N / 4 + 16) * 5);
	assert_int_equal(rib_withdraw_peer(r, 8, BGP_FAM_COUNT, false), N);
	free(t);
	attr_unref(f->at, a);
}

/*
 * A big index is compacted in steps spread over the appends (rib.c,
 * "pidx_job").  N prefixes of one family in random order; nine in ten
 * withdrawn, then seven in ten announced again one by one: the vector,
 * full, begins a job (its bytes jump by the two copies of >= N entries) and
 * ends it before the grown vector is full again (the entry count falls).
 * Then new prefixes, until the job is done.  The index must then hold at
 * most one entry per prefix of the job's copy that is held (the filter
 * checks a prefix after it was announced again, or never sees it again)
 * plus those appended while the job ran: a job that keeps copies, or the
 * entries of the prefixes never announced again, holds more.  And it must
 * not lose one: rib_withdraw_peer must reach every prefix held (rib.c
 * aborts when a whole-table sweep leaves one behind).  With
 * IDX_JOB_MID_SWEEP a whole-table sweep begins while the job runs (the job
 * is abandoned); with IDX_JOB_MID_FREE every prefix is withdrawn while it
 * runs (the vector is freed, the job with it).
 */
enum idx_job_case { IDX_JOB_DONE, IDX_JOB_MID_SWEEP, IDX_JOB_MID_FREE };

static struct bgp_prefix idx_job_pfx(unsigned fam, unsigned i)
{
	uint32_t a = i / 3;          /* 3 lengths per address, as a real table mixes them */
	if (fam == BGP_FAM_IPV4) {
		a = 20u << 24 | a << 10;
		return p4((uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), 0, 22 + i % 3);
	}
	uint8_t a6[16] = { 0x20, 0x01, (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a };
	return pfx_make(BGP_FAM_IPV6, a6, 48 + i % 3 * 8);
}

static void idx_job_run(struct fx *f, unsigned fam, enum idx_job_case c)
{
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100);
	enum { N = 24000, PEER = 9 };
	unsigned *ord = malloc(N * sizeof(*ord));
	assert_non_null(ord);
	for (unsigned i = 0; i < N; i++)
		ord[i] = i;
	shuffle(ord, N, sizeof(*ord), 777);
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = idx_job_pfx(fam, ord[i]);
		assert_int_equal(rib_update(r, &p, PEER, a, 0), 1);
	}
	for (unsigned i = 0; i < N; i++)
		if (i % 10) {
			struct bgp_prefix p = idx_job_pfx(fam, ord[i]);
			assert_int_equal(rib_withdraw(r, &p, PEER), 1);
		}
	assert_int_equal(rib_peer_prefixes(r, PEER, fam), N / 10);
	uint64_t es = fam == BGP_FAM_IPV4 ? 5 : 17, prev = index_bytes(r), during = 0;
	uint64_t held = N / 10, held_orig = N / 10;   /* all, and those of the first N */
	bool began = false, ended = false;
	for (unsigned i = 0; i < 3 * N && !ended; i++) {
		if (i < N && (i % 10 == 0 || i % 10 >= 8))
			continue;                    /* held all along, or gone for good */
		/* then new prefixes, until the job is done */
		struct bgp_prefix p = idx_job_pfx(fam, i < N ? ord[i] : i);
		uint64_t len0 = rib_peer_index_len(r, PEER, fam);
		assert_int_equal(rib_update(r, &p, PEER, a, 0), 1);
		held++;
		held_orig += i < N;
		uint64_t now = index_bytes(r), len = rib_peer_index_len(r, PEER, fam);
		if (began) {
			during++;
			if (len < len0) {
				ended = true;
				/* what the job kept is at most one entry per
				 * prefix of its copy still held (those of the
				 * first N), then its tail */
				assert_true(len <= held_orig + during);
			}
		} else if (now >= prev + 2 * N * es) {
			began = true;                /* the job's two copies */
			during = 1;
			if (c == IDX_JOB_MID_SWEEP) {
				assert_int_equal(rib_withdraw_peer(r, PEER, fam, false), held);
				break;
			}
			if (c == IDX_JOB_MID_FREE) {
				for (unsigned k = 0; k <= (i < N ? N - 1 : i); k++)
					if (k % 10 == 0 || (k <= i && k % 10 < 8) || k >= N) {
						struct bgp_prefix q = idx_job_pfx(fam, k < N ? ord[k] : k);
						assert_int_equal(rib_withdraw(r, &q, PEER), 1);
					}
				break;
			}
		}
		prev = now;
	}
	assert_true(began);
	if (c == IDX_JOB_DONE) {
		assert_true(ended);
		assert_int_equal(rib_peer_prefixes(r, PEER, fam), held);
		assert_int_equal(rib_withdraw_peer(r, PEER, fam, false), held);
	}
	assert_int_equal(rib_peer_prefixes(r, PEER, fam), 0);
	assert_int_equal(rib_peer_index_len(r, PEER, fam), 0);
	assert_int_equal(index_bytes(r), 0);
	free(ord);
	attr_unref(f->at, a);
}

static void test_index_job(void **state)
{
	struct fx *f = *state;
	idx_job_run(f, BGP_FAM_IPV4, IDX_JOB_DONE);
	idx_job_run(f, BGP_FAM_IPV6, IDX_JOB_DONE);
	idx_job_run(f, BGP_FAM_IPV4, IDX_JOB_MID_SWEEP);
	idx_job_run(f, BGP_FAM_IPV6, IDX_JOB_MID_FREE);
}

static void test_withdraw_peer_stale(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *lo = mk_attr(f->at, 90), *hi = mk_attr(f->at, 300);
	enum { N = 3000 };
	for (unsigned i = 0; i < N; i++) {
		struct bgp_prefix p = p4(100, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		rib_update(r, &p, 5, hi, 0);
		rib_update(r, &p, 6, lo, 0);
		if (i % 3 == 0) {
			uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 8), (uint8_t)i };
			struct bgp_prefix p6 = pfx_make(BGP_FAM_IPV6, a6, 48);
			rib_update(r, &p6, 5, hi, 0);
		}
	}
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV4), N);
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV6), N / 3);
	drain_all(r);

	/* graceful restart: stale paths lose to fresh ones */
	assert_int_equal(rib_mark_peer_stale(r, 5, BGP_FAM_IPV4), N);
	assert_int_equal(rib_mark_peer_stale(r, 5, BGP_FAM_IPV4), 0);
	assert_int_equal(drain_all(r), N);            /* best moved to peer 6 everywhere */
	struct bgp_prefix p0 = p4(100, 0, 0, 0, 24);
	expect_order(f, &p0, (const uint32_t[]){ 6, 5 }, 2);
	/* the peer comes back and re-announces a third of its routes */
	for (unsigned i = 0; i < N; i += 3) {
		struct bgp_prefix p = p4(100, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		assert_int_equal(rib_update(r, &p, 5, hi, 0), 0);
	}
	expect_order(f, &p0, (const uint32_t[]){ 5, 6 }, 2);
	assert_int_equal(rib_withdraw_peer(r, 5, BGP_FAM_IPV4, true), N - N / 3);
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV4), N / 3);
	struct bgp_prefix p1 = p4(100, 0, 1, 0, 24);
	expect_order(f, &p1, (const uint32_t[]){ 6 }, 1);
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV6), N / 3);

	/* full withdraw of peer 5 in all families */
	assert_int_equal(rib_withdraw_peer(r, 5, BGP_FAM_COUNT, false), N / 3 + N / 3);
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV4), 0);
	assert_int_equal(rib_peer_prefixes(r, 5, BGP_FAM_IPV6), 0);
	assert_int_equal(rib_peer_prefixes(r, 6, BGP_FAM_IPV4), N);
	struct rib_stats st;
	rib_stats(r, &st);
	assert_int_equal(st.paths[BGP_FAM_IPV4], N);
	assert_int_equal(st.prefixes[BGP_FAM_IPV6], 0);
	assert_int_equal(rib_withdraw_peer(r, 5, BGP_FAM_COUNT, false), 0);

	/* churn: announce/withdraw the same and new prefixes many times; the
	 * index stays proportional to the live prefixes */
	for (unsigned round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 500; i++) {
			struct bgp_prefix p = p4(101, (uint8_t)round, (uint8_t)i, (uint8_t)(i >> 8), 32);
			rib_update(r, &p, 7, lo, 0);
			if (i % 10)
				rib_withdraw(r, &p, 7);
		}
	}
	assert_int_equal(rib_peer_prefixes(r, 7, BGP_FAM_IPV4), 20 * 50);
	rib_stats(r, &st);
	/* peer 6: N live (8-byte entries), peer 7: 1000 live */
	assert_true(st.peer_index_bytes <= 8 * (2 * N + 2 * 1000 + 64));
	assert_int_equal(rib_withdraw_peer(r, 7, BGP_FAM_IPV4, false), 1000);
	assert_int_equal(rib_withdraw_peer(r, 6, BGP_FAM_IPV4, false), N);
	drain_all(r);
	rib_stats(r, &st);
	assert_int_equal(st.nodes, 0);
	assert_int_equal(st.paths[BGP_FAM_IPV4], 0);
	attr_unref(f->at, lo);
	attr_unref(f->at, hi);
}

/*
 * rib_withdraw_batch gives what rib_withdraw would, prefix by prefix
 * (direct-index slots, sparse slots, short prefixes, IPv6, absent prefixes,
 * other peers' paths), and rib_journal_release_n unlinks every emptied node.
 */
static void test_withdraw_batch(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	struct attr_set *a = mk_attr(f->at, 100), *b = mk_attr(f->at, 200);
	enum { N = 2000 };
	static struct bgp_prefix all[N];
	static uint8_t hit[N];
	for (unsigned i = 0; i < N; i++) {
		unsigned len = 8 + i % 25;                   /* /8 .. /32 */
		if (i % 7 == 0) {
			uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 8), (uint8_t)i };
			all[i] = pfx_make(BGP_FAM_IPV6, a6, 48 + i % 80);
		} else if (i % 3 == 0) {
			all[i] = p4(50 + (uint8_t)(i % 5), (uint8_t)(i >> 4), (uint8_t)(i * 7), (uint8_t)i, len);
		} else {
			all[i] = p4(60, (uint8_t)(i % 3), (uint8_t)(i >> 2), (uint8_t)i, 24); /* dense slots */
		}
	}
	/* duplicates after masking are fine: every prefix gets a path of peer 3,
	 * every other one also of peer 4 */
	for (unsigned i = 0; i < N; i++) {
		rib_update(r, &all[i], 3, a, 0);
		if (i % 2)
			rib_update(r, &all[i], 4, b, 0);
	}
	drain_all(r);
	struct rib_stats st0;
	rib_stats(r, &st0);
	/* withdraw peer 3 from the first half in batches of 37, the same
	 * prefixes once more (nothing left to hit), then compare with a second
	 * RIB fed the same through rib_withdraw */
	for (unsigned i = 0; i < N / 2; i += 37) {
		unsigned n = N / 2 - i < 37 ? N / 2 - i : 37;
		rib_withdraw_batch(r, &all[i], n, 3, hit + i);
	}
	static uint8_t again[N / 2];
	assert_int_equal(rib_withdraw_batch(r, all, N / 2, 3, again), 0);
	for (unsigned i = 0; i < N / 2; i++)
		assert_int_equal(again[i], 0);
	struct rib_opts o = { .attrs = f->at, .peers = f->peers };
	struct rib *r2 = rib_create(&o);
	for (unsigned i = 0; i < N; i++) {
		rib_update(r2, &all[i], 3, a, 0);
		if (i % 2)
			rib_update(r2, &all[i], 4, b, 0);
	}
	drain_all(r2);
	for (unsigned i = 0; i < N / 2; i++)
		assert_int_equal(hit[i], rib_withdraw(r2, &all[i], 3));
	rcu_read_lock();
	for (unsigned i = 0; i < N; i++) {
		struct rib_node *x = rib_lookup(r, &all[i]), *y = rib_lookup(r2, &all[i]);
		assert_int_equal(x != NULL, y != NULL);
		if (!x)
			continue;
		const struct rib_pathset *px = rib_node_paths(x), *py = rib_node_paths(y);
		assert_int_equal(px->n, py->n);
		for (unsigned k = 0; k < px->n; k++)
			assert_int_equal(px->p[k].peer, py->p[k].peer);
	}
	rcu_read_unlock();
	assert_int_equal(rib_peer_prefixes(r, 3, BGP_FAM_IPV4), rib_peer_prefixes(r2, 3, BGP_FAM_IPV4));
	assert_int_equal(rib_peer_prefixes(r, 3, BGP_FAM_IPV6), rib_peer_prefixes(r2, 3, BGP_FAM_IPV6));
	drain_all(r2);
	rib_destroy(r2);

	/* everything else goes; batch release leaves an empty tree */
	rib_withdraw_batch(r, all, N, 3, NULL);
	rib_withdraw_batch(r, all, N, 4, NULL);
	assert_int_equal(rib_peer_prefixes(r, 3, BGP_FAM_IPV4), 0);
	assert_int_equal(rib_peer_prefixes(r, 4, BGP_FAM_IPV6), 0);
	struct rib_node *buf[300];
	size_t n;
	while ((n = rib_journal_drain(r, buf, 300)) > 0)
		rib_journal_release_n(r, buf, n);
	rib_flush(r);
	struct rib_stats st;
	rib_stats(r, &st);
	assert_true(st0.nodes > 0);
	assert_int_equal(st.nodes, 0);
	assert_int_equal(st.paths[BGP_FAM_IPV4] + st.paths[BGP_FAM_IPV6], 0);
	attr_unref(f->at, a);
	attr_unref(f->at, b);
}

/* rib_update_multi (sets per prefix, runs of the same set, a prefix given
 * twice in one call) ends where rib_update prefix by prefix does, with the
 * same "added" answers, and leaves the sets' reference counts balanced. */
static void test_update_multi(void **state)
{
	struct fx *f = *state;
	struct rib *r = f->rib;
	enum { N = 1500, NA = 5 };
	struct attr_set *as[NA];
	for (unsigned i = 0; i < NA; i++)
		as[i] = mk_attr(f->at, 100 + i);
	static struct bgp_prefix all[N];
	static struct attr_set *set[N];
	static uint8_t ad[N];
	unsigned ai = 0, left = 0;
	for (unsigned i = 0; i < N; i++) {
		if (i % 11 == 5)
			all[i] = all[i - 3];             /* again, in the same call */
		else if (i % 5 == 0)
			all[i] = p4(70, (uint8_t)(i >> 6), (uint8_t)i, 0, 16 + i % 9);
		else
			all[i] = p4(71 + (uint8_t)(i % 3), (uint8_t)(i >> 5), (uint8_t)(i * 3), (uint8_t)i, 24 + i % 9);
		if (!left) {                             /* runs of 1..9 prefixes per set */
			ai = (ai + 3) % NA;
			left = 1 + i % 9;
		}
		set[i] = as[ai];
		left--;
	}
	for (unsigned i = 0; i < N; i += 128)
		rib_update_multi(r, all + i, set + i, N - i < 128 ? N - i : 128, 7, 0, ad + i);
	struct rib_opts o = { .attrs = f->at, .peers = f->peers };
	struct rib *r2 = rib_create(&o);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(ad[i], rib_update(r2, &all[i], 7, set[i], 0));
	rcu_read_lock();
	for (unsigned i = 0; i < N; i++) {
		const struct rib_pathset *px = rib_node_paths(rib_lookup(r, &all[i]));
		const struct rib_pathset *py = rib_node_paths(rib_lookup(r2, &all[i]));
		assert_int_equal(px->n, 1);
		assert_int_equal(py->n, 1);
		assert_ptr_equal(px->p[0].attr, py->p[0].attr);
	}
	rcu_read_unlock();
	assert_int_equal(rib_peer_prefixes(r, 7, BGP_FAM_IPV4), rib_peer_prefixes(r2, 7, BGP_FAM_IPV4));
	drain_all(r2);
	rib_destroy(r2);
	rib_withdraw_peer(r, 7, BGP_FAM_COUNT, false);
	drain_all(r);
	rib_flush(r);
	for (unsigned i = 0; i < NA; i++) {
		assert_int_equal(__atomic_load_n(&as[i]->refcnt, __ATOMIC_RELAXED), 1);
		attr_unref(f->at, as[i]);
	}
}

/* Destroy with paths and held journal entries still present releases all. */
static void test_destroy_full(void **state)
{
	struct fx *f = *state;
	struct attr_set *a = mk_attr(f->at, 100);
	for (unsigned i = 0; i < 1000; i++) {
		struct bgp_prefix p = p4(77, (uint8_t)(i >> 8), (uint8_t)i, 0, 24);
		rib_update(f->rib, &p, (i % 4) + 1, a, 0);
	}
	assert_int_equal(__atomic_load_n(&a->refcnt, __ATOMIC_RELAXED), 1001);
	attr_unref(f->at, a);
	/* teardown destroys the RIB, then the attr table, which aborts if any
	 * reference leaked */
}

/* ---- per-thread free batches (rib_thread_batches) ---------------------- */

struct tb_arg {
	struct fx *f;
	struct attr_set *a1, *a2;
	bool reclaim;                    /* rib_reclaim_mine before leaving */
	bool got;                        /* rib_thread_batches' answer */
};

/* Announce a prefix with a1, then replace it with a2: the replaced path set
 * and a1's reference go to this thread's own batch. */
static void *tb_writer(void *arg)
{
	struct tb_arg *t = arg;
	rcu_register_thread();
	t->got = rib_thread_batches();
	struct bgp_prefix p = p4(198, 51, 100, 0, 24);
	rib_update(t->f->rib, &p, 1, t->a1, 0);
	rib_update(t->f->rib, &p, 1, t->a2, 0);
	if (t->reclaim)
		rib_reclaim_mine(t->f->rib);
	rcu_unregister_thread();
	return NULL;
}

static void *tb_claim(void *arg)
{
	*(bool *)arg = rib_thread_batches();
	return NULL;
}

static void test_thread_batches(void **state)
{
	struct fx *f = *state;
	struct tb_arg t = { f, mk_attr(f->at, 100), mk_attr(f->at, 200), false, false };
	pthread_t th;

	/* left in the thread's slot: a grace period does not free it, and the
	 * stripes' idle hand-over (another thread) does not reach it */
	assert_int_equal(pthread_create(&th, NULL, tb_writer, &t), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(t.got);
	rcu_barrier();
	assert_int_equal(__atomic_load_n(&t.a1->refcnt, __ATOMIC_RELAXED), 2);
	rib_reclaim_idle(f->rib);
	rcu_barrier();
	assert_int_equal(__atomic_load_n(&t.a1->refcnt, __ATOMIC_RELAXED), 2);
	/* rib_flush empties every thread's slot */
	rib_flush(f->rib);
	assert_int_equal(__atomic_load_n(&t.a1->refcnt, __ATOMIC_RELAXED), 1);

	/* the owner hands its batch over itself: a2 replaced by a1 this time */
	struct tb_arg u = { f, t.a2, t.a1, true, false };
	assert_int_equal(pthread_create(&th, NULL, tb_writer, &u), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(u.got);
	rcu_barrier();
	assert_int_equal(__atomic_load_n(&t.a2->refcnt, __ATOMIC_RELAXED), 1);
	assert_int_equal(__atomic_load_n(&t.a1->refcnt, __ATOMIC_RELAXED), 2);  /* ours + the path */

	/* an exiting thread gives its index back: more threads than indices,
	 * one after the other, all get one */
	for (unsigned i = 0; i < 100; i++) {
		bool got = false;
		assert_int_equal(pthread_create(&th, NULL, tb_claim, &got), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_true(got);
	}
	attr_unref(f->at, t.a1);
	attr_unref(f->at, t.a2);
}

/* ---- short IPv4 glue nodes ---------------------------------------------- */

/* Two /24s make a /23 glue node (32 bytes); the /23 itself landing on it
 * replaces it with a full node that keeps both children; withdrawing all
 * prunes everything and the byte count returns to zero. */
static void test_glue_fill(void **state)
{
	struct fx *f = *state;
	struct attr_set *a = mk_attr(f->at, 100);
	struct bgp_prefix x = p4(10, 9, 0, 0, 24), y = p4(10, 9, 1, 0, 24), g = p4(10, 9, 0, 0, 23);
	struct rib_stats st;
	rib_update(f->rib, &x, 1, a, 0);
	rib_update(f->rib, &y, 1, a, 0);
	rib_stats(f->rib, &st);
	assert_int_equal(st.nodes, 3);
	assert_int_equal(st.node_bytes - st.lpm_index_bytes, 2 * 48 + 32);
	rcu_read_lock();
	assert_null(rib_lookup(f->rib, &g));                /* glue: no paths */
	struct rib_node *before = rib_lookup_lpm(f->rib, BGP_FAM_IPV4, (const uint8_t[]){ 10, 9, 1, 7 });
	rcu_read_unlock();
	drain_all(f->rib);
	rib_update(f->rib, &g, 2, a, 0);                     /* lands on the glue node */
	rib_stats(f->rib, &st);
	assert_int_equal(st.nodes, 3);
	assert_int_equal(st.node_bytes - st.lpm_index_bytes, 3 * 48);
	rcu_read_lock();
	struct rib_node *n = rib_lookup(f->rib, &g);
	assert_non_null(n);
	assert_int_equal(rib_node_paths(n)->p[0].peer, 2);
	assert_ptr_equal(rib_lookup_lpm(f->rib, BGP_FAM_IPV4, (const uint8_t[]){ 10, 9, 1, 7 }), before);
	assert_ptr_equal(rib_lookup_lpm(f->rib, BGP_FAM_IPV4, (const uint8_t[]){ 10, 9, 0, 7 }),
			 rib_lookup(f->rib, &x));
	rcu_read_unlock();
	assert_int_equal(drain_all(f->rib), 1);
	static struct coll c;
	walk_all(f->rib, BGP_FAM_IPV4, NULL, &c);
	assert_int_equal(c.n, 3);
	assert_int_equal(rib_withdraw(f->rib, &x, 1), 1);
	assert_int_equal(rib_withdraw(f->rib, &g, 2), 1);
	assert_int_equal(rib_withdraw(f->rib, &y, 1), 1);
	drain_all(f->rib);
	rib_flush(f->rib);
	rib_stats(f->rib, &st);
	assert_int_equal(st.nodes, 0);
	assert_int_equal(st.node_bytes - st.lpm_index_bytes, 0);
	attr_unref(f->at, a);
}

/*
 * Descent hints (the RIB without /24 tables): random inserts and withdrawals
 * in two /16s with lengths /16../28, so that hinted glue nodes get filled
 * (glue_fill) and hinted nodes get pruned, against a model; the deferred
 * frees are flushed often, so that an entry left pointing at a freed node
 * is a use after free under ASan, and a wrong start a wrong answer here.
 */
#define HINT_CAND 512
static void test_descent_hints(void **state)
{
	struct fx *f = *state;
	struct attr_set *a = mk_attr(f->at, 100);
	struct rib_stats st;
	rib_stats(f->rib, &st);
	assert_int_equal(st.hint_bytes, f->no_index ? ((uint64_t)1 << 20) * sizeof(void *) : 0);

	static struct bgp_prefix cand[HINT_CAND];
	static bool in[HINT_CAND];
	size_t nc = 0;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	while (nc < HINT_CAND) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		unsigned len = 16 + (unsigned)((x >> 20) % 13);
		uint32_t lo = (uint32_t)(x >> 33);
		/* crowd /20s: 12 bits of host part chosen from a few values */
		uint8_t c3 = (uint8_t)((lo & 0x31) | ((lo >> 8) & 0x04));
		struct bgp_prefix p = p4(10, (uint8_t)(20 + ((lo >> 16) & 1)), c3,
					 (uint8_t)(lo >> 24), len);
		bool dup = false;
		for (size_t i = 0; i < nc && !dup; i++)
			dup = cand[i].len == p.len && !memcmp(cand[i].addr, p.addr, 4);
		if (!dup)
			cand[nc++] = p;
	}
	memset(in, 0, sizeof(in));
	size_t live = 0;
	for (unsigned op = 0; op < 6000; op++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t i = (size_t)(x >> 33) % HINT_CAND;
		if (in[i]) {
			assert_int_equal(rib_withdraw(f->rib, &cand[i], 1), 1);
			in[i] = false;
			live--;
		} else if ((x >> 8) & 1) {
			assert_int_equal(rib_update(f->rib, &cand[i], 1, a, 0), 1);
			in[i] = true;
			live++;
		} else {
			/* a batch: the warm pass's lanes start at the entries too */
			struct bgp_prefix b[8];
			size_t nb = 0;
			for (size_t j = i; j < HINT_CAND && nb < 8; j++)
				if (!in[j]) {
					b[nb++] = cand[j];
					in[j] = true;
				}
			assert_int_equal(rib_update_batch(f->rib, b, nb, 1, a, 0, NULL), nb);
			live += nb;
		}
		if (op % 97 == 0) {
			drain_all(f->rib);
			rib_flush(f->rib);
			rcu_read_lock();
			for (size_t j = 0; j < HINT_CAND; j++) {
				struct rib_node *n = rib_lookup(f->rib, &cand[j]);
				if (in[j])
					assert_non_null(n);
				else
					assert_null(n);
			}
			rcu_read_unlock();
			static struct coll c;
			walk_all(f->rib, BGP_FAM_IPV4, NULL, &c);
			assert_int_equal(c.n, live);
		}
	}
	for (size_t j = 0; j < HINT_CAND; j++)
		if (in[j])
			assert_int_equal(rib_withdraw(f->rib, &cand[j], 1), 1);
	drain_all(f->rib);
	rib_flush(f->rib);
	rib_stats(f->rib, &st);
	assert_int_equal(st.nodes, 0);
	attr_unref(f->at, a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lengths_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lengths_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lpm_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lpm_index_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lpm_table, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_lpm_index_random, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw_batch, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_batch_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_batch_random, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_best_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_resume_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_lanes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw_peer_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_compacts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_compaction_dedups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_job, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_multi, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_glue_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_glue_fill, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_descent_hints, setup_noindex, teardown),
		cmocka_unit_test_setup_teardown(test_descent_hints, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
