/*
 * test_attr.c - unit tests for rib/attr.c: interning identity, reference
 * counts, decision-field extraction, a bounded 4-thread intern/unref torture,
 * and that refcount misuse aborts (checked in fork()ed children).
 *
 * Every thread here that touches the table is registered with liburcu.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <urcu.h>
#include <urcu/rculfhash.h>

#include "rib/attr.h"

/* ---- blob builder ------------------------------------------------------- */

struct blob {
	uint8_t b[2048];
	size_t n;
};

static void b_attr(struct blob *b, uint8_t flags, uint8_t type, const uint8_t *v, size_t vl)
{
	if (vl > 255)
		flags |= BGP_ATTR_F_EXTLEN;
	b->b[b->n++] = flags;
	b->b[b->n++] = type;
	if (flags & BGP_ATTR_F_EXTLEN) {
		b->b[b->n++] = (uint8_t)(vl >> 8);
		b->b[b->n++] = (uint8_t)vl;
	} else {
		b->b[b->n++] = (uint8_t)vl;
	}
	assert_true(b->n + vl <= sizeof(b->b));
	if (vl)
		memcpy(b->b + b->n, v, vl);
	b->n += vl;
}

static size_t put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

static void b_u32(struct blob *b, uint8_t flags, uint8_t type, uint32_t v)
{
	uint8_t x[4];

	put32(x, v);
	b_attr(b, flags, type, x, 4);
}

static void b_origin(struct blob *b, uint8_t o)
{
	b_attr(b, 0x40, BGP_ATTR_ORIGIN, &o, 1);
}

/* segs: list of (type, count, asn...) terminated by type 0 */
static void b_aspath(struct blob *b, const uint32_t *segs)
{
	uint8_t v[512];
	size_t n = 0;

	while (segs[0]) {
		uint32_t cnt = segs[1];

		v[n++] = (uint8_t)segs[0];
		v[n++] = (uint8_t)cnt;
		for (uint32_t i = 0; i < cnt; i++)
			n += put32(v + n, segs[2 + i]);
		segs += 2 + cnt;
	}
	b_attr(b, 0x40, BGP_ATTR_AS_PATH, v, n);
}

static void b_comms(struct blob *b, const uint32_t *c, size_t k)
{
	uint8_t v[1024];
	size_t n = 0;

	for (size_t i = 0; i < k; i++)
		n += put32(v + n, c[i]);
	b_attr(b, 0xC0, BGP_ATTR_COMMUNITIES, v, n);
}

static struct bgp_nexthop nh4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct bgp_nexthop nh;

	memset(&nh, 0, sizeof(nh));
	nh.len = 4;
	nh.addr[0] = a;
	nh.addr[1] = b;
	nh.addr[2] = c;
	nh.addr[3] = d;
	return nh;
}

static uint32_t refcnt(const struct attr_set *a)
{
	return __atomic_load_n(&a->refcnt, __ATOMIC_RELAXED);
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
	rcu_register_thread();
	*state = attr_table_create();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	attr_table_destroy(*state);
	rcu_unregister_thread();
	return 0;
}

/* ---- identity and refcounts ------------------------------------------------ */

static void test_identity(void **state)
{
	struct attr_table *t = *state;
	struct bgp_nexthop n1 = nh4(192, 0, 2, 1), n2 = nh4(192, 0, 2, 2);
	struct bgp_nexthop n6;
	struct blob x = { .n = 0 }, y = { .n = 0 };
	struct attr_stats st;

	b_origin(&x, BGP_ORIGIN_IGP);
	b_u32(&x, 0x80, BGP_ATTR_MED, 10);
	b_origin(&y, BGP_ORIGIN_IGP);
	b_u32(&y, 0x80, BGP_ATTR_MED, 11);

	struct attr_set *a = attr_intern(t, &n1, x.b, x.n);
	struct attr_set *a2 = attr_intern(t, &n1, x.b, x.n);
	struct attr_set *b = attr_intern(t, &n1, y.b, y.n);      /* other blob */
	struct attr_set *c = attr_intern(t, &n2, x.b, x.n);      /* other next hop */
	struct attr_set *d = attr_intern(t, &n1, x.b, x.n - 1);  /* prefix of blob */

	/* Same address bytes but a longer (IPv6-style) next hop is a different key. */
	memset(&n6, 0, sizeof(n6));
	n6.len = 16;
	memcpy(n6.addr, n1.addr, 4);
	struct attr_set *e = attr_intern(t, &n6, x.b, x.n);
	/* The empty blob is a valid key too. */
	struct attr_set *f = attr_intern(t, &n1, NULL, 0);
	struct attr_set *f2 = attr_intern(t, &n1, (const uint8_t *)"", 0);

	assert_ptr_equal(a, a2);
	assert_ptr_equal(f, f2);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_not_equal(a, d);
	assert_ptr_not_equal(a, e);
	assert_ptr_not_equal(c, e);
	assert_ptr_not_equal(a, f);
	assert_int_equal(refcnt(a), 2);
	assert_int_equal(refcnt(b), 1);
	assert_int_equal(a->blob_len, x.n);
	assert_memory_equal(a->blob, x.b, x.n);
	assert_int_equal(a->nh.len, 4);
	assert_memory_equal(a->nh.addr, n1.addr, 4);
	assert_int_equal(e->nh.len, 16);

	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 6);
	assert_int_equal(st.interns, 8);
	assert_int_equal(st.hits, 2);
	assert_true(st.bytes >= 6 * sizeof(struct attr_set));

	attr_unref(t, a);
	attr_unref(t, a2);
	attr_unref(t, b);
	attr_unref(t, c);
	attr_unref(t, d);
	attr_unref(t, e);
	attr_unref(t, f);
	attr_unref(t, f2);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
	assert_int_equal(st.bytes, 0);
}

static void test_refcount(void **state)
{
	struct attr_table *t = *state;
	struct bgp_nexthop n1 = nh4(10, 0, 0, 1);
	struct blob x = { .n = 0 };
	struct attr_stats st;

	b_origin(&x, BGP_ORIGIN_EGP);
	struct attr_set *a = attr_intern(t, &n1, x.b, x.n);
	assert_int_equal(refcnt(a), 1);
	attr_ref(a);
	attr_ref(a);
	assert_int_equal(refcnt(a), 3);
	attr_unref(t, a);
	assert_int_equal(refcnt(a), 2);
	attr_unref(t, a);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 1);

	/* The last reference goes: the set leaves the table. */
	attr_unref(t, a);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);

	/* Interning the same key again gives a fresh set with one reference. */
	struct attr_set *b = attr_intern(t, &n1, x.b, x.n);
	assert_int_equal(refcnt(b), 1);
	assert_int_equal(b->origin, BGP_ORIGIN_EGP);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 1);
	attr_unref(t, b);
}

/*
 * A set whose count reached zero stays linked until its releasing thread
 * unlinks it.  Interning its key in that window must give a fresh set, not
 * resurrect the dying one.  The window is forced here by dropping the count
 * by hand (what a racing attr_unref does just before cds_lfht_del).
 */
static void test_dying_not_resurrected(void **state)
{
	struct attr_table *t = *state;
	struct bgp_nexthop n1 = nh4(10, 0, 0, 7);
	struct blob x = { .n = 0 };
	struct attr_stats st;

	b_origin(&x, BGP_ORIGIN_IGP);
	struct attr_set *a = attr_intern(t, &n1, x.b, x.n);
	__atomic_store_n(&a->refcnt, 0, __ATOMIC_RELEASE);     /* "dying", still linked */

	struct attr_set *b = attr_intern(t, &n1, x.b, x.n);
	assert_ptr_not_equal(a, b);
	assert_int_equal(refcnt(a), 0);
	assert_int_equal(refcnt(b), 1);
	/* The new one is now the live set for the key. */
	struct attr_set *c = attr_intern(t, &n1, x.b, x.n);
	assert_ptr_equal(b, c);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 2);

	/* Let the old one finish dying the normal way, then the new one. */
	__atomic_store_n(&a->refcnt, 1, __ATOMIC_RELEASE);
	attr_unref(t, a);
	attr_unref(t, b);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 1);
	assert_ptr_equal(attr_intern(t, &n1, x.b, x.n), c);
	attr_unref(t, c);
	attr_unref(t, c);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
}

/* Many distinct sets force the table through resizes; all stay findable. */
static void test_many(void **state)
{
	struct attr_table *t = *state;
	enum { N = 20000 };
	struct attr_set **v = calloc(N, sizeof(*v));
	struct bgp_nexthop n1 = nh4(10, 0, 0, 1);
	struct attr_stats st;

	assert_non_null(v);
	for (unsigned i = 0; i < N; i++) {
		struct blob x = { .n = 0 };

		/* Growth runs on the call_rcu thread, one request at a time:
		 * let the first finish so the second half can ask again. */
		if (i == N / 2)
			rcu_barrier();
		b_origin(&x, BGP_ORIGIN_IGP);
		b_u32(&x, 0x80, BGP_ATTR_MED, i);
		v[i] = attr_intern(t, &n1, x.b, x.n);
		assert_int_equal(v[i]->med, i);
	}
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, N);
	/* Kept at about a set per bucket, not rculfhash's own eight; a failed
	 * assertion here would leave the sets behind, hence the barrier and
	 * release below before any check. */
	rcu_barrier();
	uint64_t buckets = st.buckets;
	for (unsigned i = 0; i < N; i++) {
		struct blob x = { .n = 0 };

		b_origin(&x, BGP_ORIGIN_IGP);
		b_u32(&x, 0x80, BGP_ATTR_MED, i);
		assert_ptr_equal(attr_intern(t, &n1, x.b, x.n), v[i]);
		assert_int_equal(refcnt(v[i]), 2);
		attr_unref(t, v[i]);
		attr_unref(t, v[i]);
	}
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
	free(v);
	assert_true(buckets >= N);
}

/* ---- decision-field extraction (table driven) ------------------------------ */

struct xrow {
	const char *what;
	void (*build)(struct blob *b);
	uint32_t local_pref, med, originator_id, neighbor_as;
	uint16_t as_path_len, cluster_list_len, flags;
	uint8_t origin;
};

static void x_empty(struct blob *b) { (void)b; }
static void x_origin_egp(struct blob *b) { b_origin(b, BGP_ORIGIN_EGP); }
static void x_origin_igp(struct blob *b) { b_origin(b, BGP_ORIGIN_IGP); }
static void x_seq(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_SEQUENCE, 3, 65001, 65002, 65003, 0 };
	b_origin(b, 0);
	b_aspath(b, s);
}
static void x_seq_set(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_SEQUENCE, 2, 1, 2, BGP_AS_SET, 3, 3, 4, 5, 0 };
	b_aspath(b, s);
}
static void x_confed(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_CONFED_SEQUENCE, 2, 64512, 64513,
				      BGP_AS_CONFED_SET, 2, 64514, 64515,
				      BGP_AS_SEQUENCE, 2, 65001, 65002, 0 };
	b_aspath(b, s);
}
static void x_set_first(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_SET, 2, 7, 8, BGP_AS_SEQUENCE, 1, 9, 0 };
	b_aspath(b, s);
}
static void x_two_seq(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_SEQUENCE, 1, 4200000000u, BGP_AS_SEQUENCE, 2, 5, 6, 0 };
	b_aspath(b, s);
}
static void x_empty_path(struct blob *b) { b_attr(b, 0x40, BGP_ATTR_AS_PATH, NULL, 0); }
static void x_med(struct blob *b) { b_u32(b, 0x80, BGP_ATTR_MED, 4000000000u); }
static void x_med0(struct blob *b) { b_u32(b, 0x80, BGP_ATTR_MED, 0); }
static void x_lp(struct blob *b) { b_u32(b, 0x40, BGP_ATTR_LOCAL_PREF, 250); }
static void x_lp0(struct blob *b) { b_u32(b, 0x40, BGP_ATTR_LOCAL_PREF, 0); }
static void x_atomic(struct blob *b) { b_attr(b, 0x40, BGP_ATTR_ATOMIC_AGGREGATE, NULL, 0); }
static void x_noexport(struct blob *b)
{
	static const uint32_t c[] = { 0xFDE80001u, BGP_COMM_NO_EXPORT };
	b_comms(b, c, 2);
}
static void x_noadv(struct blob *b)
{
	static const uint32_t c[] = { BGP_COMM_NO_ADVERTISE };
	b_comms(b, c, 1);
}
static void x_nosubconfed(struct blob *b)
{
	static const uint32_t c[] = { BGP_COMM_NO_EXPORT_SUBCONFED, 0xFFFFFF04u };
	b_comms(b, c, 2);
}
static void x_other_comm(struct blob *b)
{
	static const uint32_t c[] = { 0xFFFFFF00u, 0xFFFFFF04u, 0x0000FF01u };
	b_comms(b, c, 3);
}
static void x_originator(struct blob *b) { b_u32(b, 0x80, BGP_ATTR_ORIGINATOR_ID, 0x0A000001u); }
static void x_cluster(struct blob *b)
{
	uint8_t v[12];

	put32(v, 1);
	put32(v + 4, 2);
	put32(v + 8, 3);
	b_attr(b, 0x80, BGP_ATTR_CLUSTER_LIST, v, 12);
}
/* Everything at once, canonical order, plus an extended-length community
 * list with the well-known value at its far end and unknown attributes. */
static void x_all(struct blob *b)
{
	static const uint32_t s[] = { BGP_AS_SEQUENCE, 4, 64496, 64497, 64498, 64497, 0 };
	uint32_t c[80];
	uint8_t agg[8] = { 0, 0, 0xFB, 0xF0, 192, 0, 2, 9 };
	uint8_t cl[8];
	uint8_t unk[3] = { 1, 2, 3 };

	for (unsigned i = 0; i < 79; i++)
		c[i] = 0xFBF00000u + i;
	c[79] = BGP_COMM_NO_ADVERTISE;
	put32(cl, 0x01010101);
	put32(cl + 4, 0x02020202);
	b_origin(b, BGP_ORIGIN_INCOMPLETE);
	b_aspath(b, s);
	b_u32(b, 0x80, BGP_ATTR_MED, 77);
	b_u32(b, 0x40, BGP_ATTR_LOCAL_PREF, 90);
	b_attr(b, 0x40, BGP_ATTR_ATOMIC_AGGREGATE, NULL, 0);
	b_attr(b, 0xC0, BGP_ATTR_AGGREGATOR, agg, 8);
	b_comms(b, c, 80);
	b_u32(b, 0x80, BGP_ATTR_ORIGINATOR_ID, 0xC0000201u);
	b_attr(b, 0x80, BGP_ATTR_CLUSTER_LIST, cl, 8);
	b_attr(b, 0xE0, 99, unk, 3);
}
/* A broken blob never crashes the walk; what came before the break counts. */
static void x_truncated(struct blob *b)
{
	b_u32(b, 0x40, BGP_ATTR_LOCAL_PREF, 300);
	b_u32(b, 0x80, BGP_ATTR_MED, 5);
	b->n -= 2;               /* MED value cut short */
}
static void x_bad_aspath(struct blob *b)
{
	/* second segment claims 5 ASNs but carries 1 */
	uint8_t v[] = { BGP_AS_SEQUENCE, 1, 0, 0, 0, 9, BGP_AS_SEQUENCE, 5, 0, 0, 0, 1 };
	b_attr(b, 0x40, BGP_ATTR_AS_PATH, v, sizeof(v));
}
static void x_bad_len(struct blob *b)
{
	uint8_t v[3] = { 0, 0, 1 };
	b_attr(b, 0x40, BGP_ATTR_LOCAL_PREF, v, 3);  /* wrong length: ignored */
	b_origin(b, BGP_ORIGIN_EGP);
}

static const struct xrow xrows[] = {
	{ "empty", x_empty, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "origin egp", x_origin_egp, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_EGP },
	{ "origin igp", x_origin_igp, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_IGP },
	{ "as_sequence", x_seq, 100, 0, 0, 65001, 3, 0, 0, BGP_ORIGIN_IGP },
	{ "sequence+set", x_seq_set, 100, 0, 0, 1, 3, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "confed skipped", x_confed, 100, 0, 0, 65001, 2, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "set first", x_set_first, 100, 0, 0, 0, 2, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "two sequences", x_two_seq, 100, 0, 0, 4200000000u, 3, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "empty as_path", x_empty_path, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "med", x_med, 100, 4000000000u, 0, 0, 0, 0, ATTR_F_MED, BGP_ORIGIN_INCOMPLETE },
	{ "med 0", x_med0, 100, 0, 0, 0, 0, 0, ATTR_F_MED, BGP_ORIGIN_INCOMPLETE },
	{ "local_pref", x_lp, 250, 0, 0, 0, 0, 0, ATTR_F_LOCAL_PREF, BGP_ORIGIN_INCOMPLETE },
	{ "local_pref 0", x_lp0, 0, 0, 0, 0, 0, 0, ATTR_F_LOCAL_PREF, BGP_ORIGIN_INCOMPLETE },
	{ "atomic", x_atomic, 100, 0, 0, 0, 0, 0, ATTR_F_ATOMIC_AGG, BGP_ORIGIN_INCOMPLETE },
	{ "no_export", x_noexport, 100, 0, 0, 0, 0, 0, ATTR_F_NO_EXPORT, BGP_ORIGIN_INCOMPLETE },
	{ "no_advertise", x_noadv, 100, 0, 0, 0, 0, 0, ATTR_F_NO_ADVERTISE, BGP_ORIGIN_INCOMPLETE },
	{ "no_export_subconfed", x_nosubconfed, 100, 0, 0, 0, 0, 0, ATTR_F_NO_EXPORT_SUBCONFED,
	  BGP_ORIGIN_INCOMPLETE },
	{ "other communities", x_other_comm, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "originator", x_originator, 100, 0, 0x0A000001u, 0, 0, 0, ATTR_F_ORIGINATOR,
	  BGP_ORIGIN_INCOMPLETE },
	{ "cluster_list", x_cluster, 100, 0, 0, 0, 0, 3, ATTR_F_CLUSTER_LIST, BGP_ORIGIN_INCOMPLETE },
	{ "all", x_all, 90, 77, 0xC0000201u, 64496, 4, 2,
	  ATTR_F_MED | ATTR_F_LOCAL_PREF | ATTR_F_ATOMIC_AGG | ATTR_F_NO_ADVERTISE |
	  ATTR_F_ORIGINATOR | ATTR_F_CLUSTER_LIST, BGP_ORIGIN_INCOMPLETE },
	{ "truncated", x_truncated, 300, 0, 0, 0, 0, 0, ATTR_F_LOCAL_PREF, BGP_ORIGIN_INCOMPLETE },
	{ "bad as_path", x_bad_aspath, 100, 0, 0, 9, 1, 0, 0, BGP_ORIGIN_INCOMPLETE },
	{ "bad length", x_bad_len, 100, 0, 0, 0, 0, 0, 0, BGP_ORIGIN_EGP },
};

static void test_extract(void **state)
{
	struct attr_table *t = *state;
	struct bgp_nexthop n1 = nh4(10, 0, 0, 1);

	for (size_t i = 0; i < sizeof(xrows) / sizeof(xrows[0]); i++) {
		const struct xrow *r = &xrows[i];
		struct blob b = { .n = 0 };

		r->build(&b);
		struct attr_set *a = attr_intern(t, &n1, b.b, b.n);
		print_message("extract: %s\n", r->what);
		assert_int_equal(a->local_pref, r->local_pref);
		assert_int_equal(a->med, r->med);
		assert_int_equal(a->originator_id, r->originator_id);
		assert_int_equal(a->neighbor_as, r->neighbor_as);
		assert_int_equal(a->as_path_len, r->as_path_len);
		assert_int_equal(a->cluster_list_len, r->cluster_list_len);
		assert_int_equal(a->flags, r->flags);
		assert_int_equal(a->origin, r->origin);
		attr_unref(t, a);
	}
}

/* A long AS_PATH (extended length, many full segments) is counted exactly. */
static void test_long_aspath(void **state)
{
	struct attr_table *t = *state;
	struct bgp_nexthop n1 = nh4(10, 0, 0, 1);
	enum { SEGS = 60 };
	uint8_t *raw = malloc(4 + SEGS * (2 + 255 * 4));
	size_t n = 4;

	assert_non_null(raw);
	for (unsigned s = 0; s < SEGS; s++) {
		raw[n++] = BGP_AS_SEQUENCE;
		raw[n++] = 255;
		for (unsigned i = 0; i < 255; i++)
			n += put32(raw + n, 65000 + s);
	}
	raw[0] = 0x40 | BGP_ATTR_F_EXTLEN;
	raw[1] = BGP_ATTR_AS_PATH;
	raw[2] = (uint8_t)((n - 4) >> 8);
	raw[3] = (uint8_t)(n - 4);
	struct attr_set *a = attr_intern(t, &n1, raw, n);
	assert_int_equal(a->as_path_len, SEGS * 255);
	assert_int_equal(a->neighbor_as, 65000);
	attr_unref(t, a);
	free(raw);
}

/* ---- concurrency ---------------------------------------------------------- */

enum { NKEYS = 32, NTHREADS = 4, SLOTS = 64 };

/* Run fn in NTHREADS threads, thread i given the i-th of the `size`-byte
 * argument records at args, and wait for all of them. */
static void run_workers(void *(*fn)(void *), void *args, size_t size)
{
	pthread_t th[NTHREADS];

	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fn, (char *)args + i * size), 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
}

struct torture {
	struct attr_table *t;
	struct blob keys[NKEYS];
	struct bgp_nexthop nh[NKEYS];
	uint64_t deadline_ns;
	uint64_t ops[NTHREADS];
	int failures;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct worker {
	struct torture *tt;
	unsigned id;
};

static void *torture_thread(void *arg)
{
	struct worker *w = arg;
	struct torture *tt = w->tt;
	struct attr_set *held[SLOTS] = { NULL };
	unsigned heldkey[SLOTS] = { 0 };
	uint64_t x = 0x9E3779B97F4A7C15ull * (w->id + 1), ops = 0;

	rcu_register_thread();
	/* Bounded in both time and count. */
	for (uint64_t it = 0; it < 100000000; it++) {
		if ((it & 1023) == 0 && now_ns() > tt->deadline_ns)
			break;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned s = (unsigned)(x % SLOTS), k = (unsigned)((x >> 20) % NKEYS);

		if (!held[s]) {
			struct attr_set *a = attr_intern(tt->t, &tt->nh[k], tt->keys[k].b, tt->keys[k].n);

			if (a->blob_len != tt->keys[k].n || memcmp(a->blob, tt->keys[k].b, a->blob_len) ||
			    a->med != k || refcnt(a) == 0)
				__atomic_fetch_add(&tt->failures, 1, __ATOMIC_RELAXED);
			held[s] = a;
			heldkey[s] = k;
			ops++;
		} else {
			if (((x >> 40) & 7) == 0) {
				attr_ref(held[s]);
				attr_unref(tt->t, held[s]);
			}
			/* Read under the read lock like a RIB reader would. */
			rcu_read_lock();
			if (held[s]->med != heldkey[s])
				__atomic_fetch_add(&tt->failures, 1, __ATOMIC_RELAXED);
			rcu_read_unlock();
			attr_unref(tt->t, held[s]);
			held[s] = NULL;
		}
	}
	for (unsigned s = 0; s < SLOTS; s++)
		if (held[s])
			attr_unref(tt->t, held[s]);
	tt->ops[w->id] = ops;
	rcu_unregister_thread();
	return NULL;
}

/*
 * Several threads intern many distinct sets at once, so the table is grown
 * (on the call_rcu thread) while they insert and look up: every set stays
 * findable as the same set, and all of them go at the end.
 */
enum { GROW_PER_THREAD = 12000 };

struct grow_worker {
	struct attr_table *t;
	unsigned id;
	int failures;
};

static void grow_blob(struct blob *x, unsigned id, unsigned i)
{
	x->n = 0;
	b_origin(x, BGP_ORIGIN_IGP);
	b_u32(x, 0x80, BGP_ATTR_MED, id << 20 | i);
}

static void *grow_thread(void *arg)
{
	struct grow_worker *w = arg;
	struct attr_set **v = calloc(GROW_PER_THREAD, sizeof(*v));
	struct bgp_nexthop n1 = nh4(10, 0, 1, 1);
	struct blob x;

	rcu_register_thread();
	if (!v) {
		w->failures++;
		rcu_unregister_thread();
		return NULL;
	}
	for (unsigned i = 0; i < GROW_PER_THREAD; i++) {
		grow_blob(&x, w->id, i);
		v[i] = attr_intern(w->t, &n1, x.b, x.n);
		if (v[i]->med != (w->id << 20 | i) || refcnt(v[i]) != 1)
			w->failures++;
		/* an earlier one, found again while the table may be resizing */
		unsigned j = (i * 7919u) % (i + 1);
		grow_blob(&x, w->id, j);
		struct attr_set *a = attr_intern(w->t, &n1, x.b, x.n);
		if (a != v[j])
			w->failures++;
		attr_unref(w->t, a);
	}
	for (unsigned i = 0; i < GROW_PER_THREAD; i++)
		attr_unref(w->t, v[i]);
	free(v);
	rcu_unregister_thread();
	return NULL;
}

static void test_concurrent_growth(void **state)
{
	struct attr_table *t = *state;
	struct grow_worker w[NTHREADS];
	struct attr_stats st;

	for (unsigned i = 0; i < NTHREADS; i++)
		w[i] = (struct grow_worker){ .t = t, .id = i };
	run_workers(grow_thread, w, sizeof(w[0]));
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(w[i].failures, 0);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
	assert_true(st.buckets > 4096);         /* it did grow past the first size */
}

/*
 * The same keys interned by every thread at once, in different orders, while
 * the table grows: each key must come out as one set (add_unique under
 * concurrent resizes), the same pointer in every thread.
 */
enum { SHARED_KEYS = 30000 };

struct shared_worker {
	struct attr_table *t;
	unsigned id;
	struct attr_set **v;
};

static void *shared_thread(void *arg)
{
	struct shared_worker *w = arg;
	struct bgp_nexthop n1 = nh4(10, 0, 2, 1);
	struct blob x;

	rcu_register_thread();
	for (unsigned i = 0; i < SHARED_KEYS; i++) {
		/* a different walk through all the keys per thread: the
		 * multipliers are prime to SHARED_KEYS (2^4 * 3 * 5^4) */
		static const uint64_t mult[] = { 7919, 7919 * 7, 7919 * 11, 7919 * 13 };
		unsigned k = (unsigned)(((uint64_t)i * mult[w->id % 4] + w->id * 104729u) % SHARED_KEYS);
		grow_blob(&x, 99, k);
		w->v[k] = attr_intern(w->t, &n1, x.b, x.n);
	}
	rcu_unregister_thread();
	return NULL;
}

static void test_concurrent_shared_growth(void **state)
{
	struct attr_table *t = *state;
	struct shared_worker w[NTHREADS];
	struct attr_stats st;
	unsigned dups = 0, missing = 0;

	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct shared_worker){ .t = t, .id = i, .v = calloc(SHARED_KEYS, sizeof(void *)) };
		assert_non_null(w[i].v);
	}
	run_workers(shared_thread, w, sizeof(w[0]));
	for (unsigned k = 0; k < SHARED_KEYS; k++)
		for (unsigned i = 0; i < NTHREADS; i++) {
			if (!w[i].v[k])
				missing++;
			else if (w[i].v[k] != w[0].v[k])
				dups++;
		}
	attr_table_stats(t, &st);
	uint64_t sets = st.sets;
	for (unsigned k = 0; k < SHARED_KEYS; k++)
		for (unsigned i = 0; i < NTHREADS; i++)
			if (w[i].v[k])
				attr_unref(t, w[i].v[k]);
	for (unsigned i = 0; i < NTHREADS; i++)
		free(w[i].v);
	assert_int_equal(missing, 0);
	assert_int_equal(dups, 0);
	assert_int_equal(sets, SHARED_KEYS);
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
}

static void test_concurrent(void **state)
{
	struct attr_table *t = *state;
	struct torture *tt = calloc(1, sizeof(*tt));
	struct worker w[NTHREADS];
	struct attr_set *mine[NKEYS / 4];
	struct attr_stats st0, st;
	uint64_t total = 0;

	assert_non_null(tt);
	tt->t = t;
	for (unsigned k = 0; k < NKEYS; k++) {
		b_origin(&tt->keys[k], BGP_ORIGIN_IGP);
		b_u32(&tt->keys[k], 0x80, BGP_ATTR_MED, k);
		tt->nh[k] = nh4(10, 0, 0, (uint8_t)(k & 3));
	}
	/* The main thread pins a quarter of the keys for the whole run. */
	for (unsigned k = 0; k < NKEYS / 4; k++)
		mine[k] = attr_intern(t, &tt->nh[k], tt->keys[k].b, tt->keys[k].n);
	attr_table_stats(t, &st0);

	tt->deadline_ns = now_ns() + 2000000000ull;
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i].tt = tt;
		w[i].id = i;
	}
	run_workers(torture_thread, w, sizeof(w[0]));

	for (unsigned i = 0; i < NTHREADS; i++)
		total += tt->ops[i];
	print_message("concurrent: %llu interns by %d threads\n", (unsigned long long)total, NTHREADS);
	assert_int_equal(tt->failures, 0);
	assert_true(total > 0);

	attr_table_stats(t, &st);
	assert_int_equal(st.sets, NKEYS / 4);
	assert_int_equal(st.interns - st0.interns, total);
	for (unsigned k = 0; k < NKEYS / 4; k++) {
		assert_int_equal(refcnt(mine[k]), 1);
		/* Still the one live set for its key. */
		struct attr_set *a = attr_intern(t, &tt->nh[k], tt->keys[k].b, tt->keys[k].n);
		assert_ptr_equal(a, mine[k]);
		attr_unref(t, a);
		attr_unref(t, mine[k]);
	}
	attr_table_stats(t, &st);
	assert_int_equal(st.sets, 0);
	assert_int_equal(st.bytes, 0);
	free(tt);
}

/* ---- misuse aborts ------------------------------------------------------- */

enum misuse { M_UNDERFLOW, M_UNDERFLOW_FAKE, M_REF_DEAD, M_OVERFLOW };

static void misuse_child(enum misuse m)
{
	int fd = open("/dev/null", O_WRONLY);

	if (fd >= 0)
		dup2(fd, 2);                /* the fatal line is expected */
	rcu_register_thread();
	struct attr_table *t = attr_table_create();
	struct bgp_nexthop n1 = nh4(10, 0, 0, 1);
	uint8_t blob[4] = { 0x40, BGP_ATTR_ORIGIN, 1, 0 };
	struct attr_set *fake = calloc(1, sizeof(*fake));

	switch (m) {
	case M_UNDERFLOW: {
		struct attr_set *a = attr_intern(t, &n1, blob, sizeof(blob));
		attr_ref(a);
		attr_unref(t, a);
		rcu_read_lock();     /* keeps its memory valid for the misuse */
		attr_unref(t, a);    /* count 0: the set is dying */
		attr_unref(t, a);
		rcu_read_unlock();
		break;
	}
	case M_UNDERFLOW_FAKE:
		attr_unref(t, fake);
		break;
	case M_REF_DEAD:
		attr_ref(fake);
		break;
	case M_OVERFLOW:
		fake->refcnt = 1u << 31;
		attr_ref(fake);
		break;
	}
	_exit(0);                        /* not reached if the misuse was caught */
}

static void expect_abort(enum misuse m)
{
	int status = 0;
	pid_t pid;

	call_rcu_before_fork();
	pid = fork();
	if (pid == 0) {
		call_rcu_after_fork_child();
		misuse_child(m);
	}
	call_rcu_after_fork_parent();
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_underflow_aborts(void **state)
{
	(void)state;
	expect_abort(M_UNDERFLOW);
	expect_abort(M_UNDERFLOW_FAKE);
}

static void test_ref_dead_aborts(void **state)
{
	(void)state;
	expect_abort(M_REF_DEAD);
}

static void test_overflow_aborts(void **state)
{
	(void)state;
	expect_abort(M_OVERFLOW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refcount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dying_not_resurrected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_aspath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_shared_growth, setup, teardown),
		cmocka_unit_test(test_underflow_aborts),
		cmocka_unit_test(test_ref_dead_aborts),
		cmocka_unit_test(test_overflow_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
