/*
 * rib_mem.c - ricochet-rib-mem: memory per path of a full RIB, measured with
 * jemalloc's own statistics ("stats.allocated" after refreshing "epoch").
 *
 * Builds N IPv4 prefixes (default 1.05M, Internet-like lengths) announced by
 * P peers (default 8) using A distinct attribute sets (default 150k), then
 * reports allocated bytes per path for everything the RIB holds: tree nodes,
 * path sets, the per-peer index and the interned attribute sets.  Single
 * threaded; the journal is drained as the reflection thread would.
 *
 * Usage: ricochet-rib-mem [prefixes [peers [attr_sets]]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jemalloc/jemalloc.h>
#include <urcu.h>

#include "rib/rib.h"

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t allocated(void)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch), a = 0, asz = sizeof(a);
	mallctl("epoch", &epoch, &sz, &epoch, sz);
	if (mallctl("stats.allocated", &a, &asz, NULL, 0) != 0) {
		fprintf(stderr, "rib-mem: jemalloc stats unavailable\n");
		exit(1);
	}
	return a;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pcmp(const void *a, const void *b)
{
	const struct bgp_prefix *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 4);
	return c ? c : (int)x->len - (int)y->len;
}

static struct bgp_prefix *gen_table(size_t n)
{
	struct bgp_prefix *t = malloc(n * sizeof(*t));
	size_t have = 0;
	uint64_t s = 0xC0FFEE;
	while (have < n) {
		for (size_t i = have; i < n; i++) {
			uint64_t r = xs(&s), r2 = xs(&s);
			unsigned x = (unsigned)(r2 % 1000), len;
			len = x < 600 ? 24 : x < 610 ? 25 + (unsigned)(r2 >> 12) % 8 :
			      x < 900 ? 16 + (unsigned)(r2 >> 12) % 8 : 8 + (unsigned)(r2 >> 12) % 8;
			uint32_t a = (uint32_t)((r >> 16) % (222ull << 24)) + (1u << 24);
			a &= len ? ~0u << (32 - len) : 0;
			memset(&t[i], 0, sizeof(t[i]));
			t[i].family = BGP_FAM_IPV4;
			t[i].len = (uint8_t)len;
			t[i].addr[0] = (uint8_t)(a >> 24);
			t[i].addr[1] = (uint8_t)(a >> 16);
			t[i].addr[2] = (uint8_t)(a >> 8);
			t[i].addr[3] = (uint8_t)a;
		}
		qsort(t, n, sizeof(*t), pcmp);
		size_t o = 0;
		for (size_t i = 0; i < n; i++)
			if (!o || pcmp(&t[o - 1], &t[i]))
				t[o++] = t[i];
		have = o;
	}
	return t;
}

static struct attr_set *gen_attr(struct attr_table *at, unsigned i)
{
	uint8_t b[128];
	size_t n = 0;
	uint64_t s = 0x51ED2701ull + i * 0x9E3779B97F4A7C15ull;
	uint64_t r = xs(&s);
	b[n++] = 0x40; b[n++] = BGP_ATTR_ORIGIN; b[n++] = 1; b[n++] = (uint8_t)(r % 3);
	unsigned nas = 2 + (unsigned)((r >> 8) % 6);
	b[n++] = 0x40; b[n++] = BGP_ATTR_AS_PATH; b[n++] = (uint8_t)(2 + 4 * nas);
	b[n++] = BGP_AS_SEQUENCE; b[n++] = (uint8_t)nas;
	for (unsigned k = 0; k < nas; k++) {
		uint32_t as = k == nas - 1 ? i : (uint32_t)(xs(&s) % 400000);
		b[n++] = (uint8_t)(as >> 24); b[n++] = (uint8_t)(as >> 16);
		b[n++] = (uint8_t)(as >> 8); b[n++] = (uint8_t)as;
	}
	unsigned nc = (unsigned)((r >> 40) % 5);
	if (nc) {
		b[n++] = 0xC0; b[n++] = BGP_ATTR_COMMUNITIES; b[n++] = (uint8_t)(4 * nc);
		for (unsigned k = 0; k < nc; k++) {
			uint32_t c = (uint32_t)xs(&s);
			b[n++] = (uint8_t)(c >> 24); b[n++] = (uint8_t)(c >> 16);
			b[n++] = (uint8_t)(c >> 8); b[n++] = (uint8_t)c;
		}
	}
	struct bgp_nexthop nh = { .len = 4, .addr = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i } };
	return attr_intern(at, &nh, b, n);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 1050000;
	unsigned peers = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 8;
	unsigned na = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 150000;
	if (!n || !peers || peers > 1000 || !na) {
		fprintf(stderr, "usage: ricochet-rib-mem [prefixes [peers [attr_sets]]]\n");
		return 2;
	}
	rcu_register_thread();
	struct bgp_prefix *pfx = gen_table(n);
	struct rib_peerinfo *pi = calloc(RIB_MAX_PEERS, sizeof(*pi));
	for (unsigned i = 0; i <= peers; i++) {
		pi[i].bgp_id = 0x0A000000u + i;
		pi[i].asn = 65515;
		pi[i].addr.family = BGP_FAM_IPV4;
	}
	size_t base = allocated();
	struct attr_table *at = attr_table_create();
	struct attr_set **attrs = malloc(na * sizeof(*attrs));
	for (unsigned i = 0; i < na; i++)
		attrs[i] = gen_attr(at, i);
	size_t attr_bytes = allocated() - base - na * sizeof(*attrs);
	struct rib_opts o = { .attrs = at, .peers = pi };
	struct rib *r = rib_create(&o);
	double t0 = now_s();
	struct rib_node *buf[1024];
	for (unsigned p = 1; p <= peers; p++) {
		for (size_t i = 0; i < n; i++) {
			/* each attribute set is shared by prefixes of one peer, as with
			 * real feeds; different peers mostly use different sets */
			unsigned a = (unsigned)((i / 7 + (size_t)p * 9973) % na);
			rib_update(r, &pfx[i], p, attrs[a], 0);
			if ((i & 1023) == 1023) {
				size_t k = rib_journal_drain(r, buf, 1024);
				for (size_t j = 0; j < k; j++)
					rib_journal_release(r, buf[j]);
			}
		}
	}
	size_t k;
	while ((k = rib_journal_drain(r, buf, 1024)) > 0)
		for (size_t j = 0; j < k; j++)
			rib_journal_release(r, buf[j]);
	double t1 = now_s();
	/* drop the generator's own references: the RIB's are what is measured */
	for (unsigned i = 0; i < na; i++)
		attr_unref(at, attrs[i]);
	free(attrs);
	rib_flush(r);
	size_t total = allocated() - base;
	struct rib_stats st;
	struct attr_stats as;
	rib_stats(r, &st);
	attr_table_stats(at, &as);
	uint64_t paths = st.paths[BGP_FAM_IPV4];
	printf("ricochet-rib-mem: %zu prefixes x %u peers = %llu paths, %llu attribute sets in use\n",
	       n, peers, (unsigned long long)paths, (unsigned long long)as.sets);
	printf("  insert: %.2f s (%.2f M paths/s, one writer, journal drained)\n", t1 - t0,
	       (double)paths / (t1 - t0) / 1e6);
	printf("  jemalloc stats.allocated: %.1f MiB total, %.1f bytes/path (target <= 80: %s)\n",
	       (double)total / 1048576.0, (double)total / (double)paths,
	       (double)total / (double)paths <= 80.0 ? "met" : "MISSED");
	printf("  rib accounting: nodes %llu (%.1f MiB), path sets %.1f MiB, peer index %.1f MiB,"
	       " attr sets %.1f MiB (at intern %.1f MiB)\n",
	       (unsigned long long)st.nodes, (double)st.node_bytes / 1048576.0,
	       (double)st.pathset_bytes / 1048576.0, (double)st.peer_index_bytes / 1048576.0,
	       (double)as.bytes / 1048576.0, (double)attr_bytes / 1048576.0);
	printf("  per path: nodes %.1f, path sets %.1f, index %.1f, attrs %.1f bytes\n",
	       (double)st.node_bytes / (double)paths, (double)st.pathset_bytes / (double)paths,
	       (double)st.peer_index_bytes / (double)paths, (double)as.bytes / (double)paths);
	rib_destroy(r);
	attr_table_destroy(at);
	free(pi);
	free(pfx);
	rcu_unregister_thread();
	return 0;
}
