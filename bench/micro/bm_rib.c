/*
 * bm_rib.c - micro-benchmarks for rib/rib.c: path insert, replace,
 * withdraw(+re-announce) and lookup throughput, one and two writer threads,
 * lookups with concurrent readers or a concurrent writer.
 *
 * Tables have an Internet-like shape: IPv4 60% /24, the rest spread over
 * /8../23 (weighted towards /16../23) and ~1% /25../32; IPv6 mostly /48 and
 * /32.  Prefixes are inserted in table (sorted) order, as a peer's initial
 * dump arrives.  Attribute sets are interned once in setup (a pool of up to
 * 150k), so only RIB work is timed.  Writers also drain the journal (the
 * reflection thread's side) after every batch, so the cost of marking and
 * handing over changes is included.
 *
 * Lookup cases: lpm_v4 / lookup_v4 draw a random table prefix per query
 * (patching host bits into a stack copy, which also serialises the queries'
 * cache misses); lpm_v4_q reads queries prepared in setup in sequence, so
 * independent lookups overlap as real ones would; lpm_v4_batch gives the same
 * queries to rib_lookup_lpm_batch 64 at a time; lookup_v4_q is the exact
 * lookup (rib_lookup) of table prefixes prepared in setup in random order,
 * lookup_v4_batch the same queries to rib_lookup_batch 64 at a time; the
 * *_noidx cases run on a RIB without the IPv4 /24 tables, as the daemon's; the
 * *_settled cases (and replace_v4_settled) run on a table whose heap was then
 * collapsed into huge pages (mem_settle, as the daemon does once its RIB is
 * quiet), so they show what that is worth to a loaded table.  insert_v4_upd_* insert
 * UPDATE-shaped runs of 4 prefixes sharing an attribute set, one call per
 * prefix, one rib_update_batch per run, or (upd_multi) IO_INGEST_MAX
 * prefixes per rib_update_multi, the daemon's ingest path; upd_multi_noidx
 * does that on a RIB without the /24 tables, the daemon's RIB.
 *
 * Threads: with threads=2 each thread owns its own peers (the RIB contract)
 * and the two start half a table apart.  Every writer case builds the same
 * table whatever the thread count: BM_PEERS peers in all, BM_PEERS / threads
 * per thread (so a two-writer insert does not decide over twice as many
 * paths per prefix as a one-writer insert).  A thread whose peers have announced
 * the whole table waits for the other on a barrier and one of them swaps in
 * an empty RIB; full ones are destroyed in teardown, untimed.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <urcu.h>

#include "bench/micro/bm.h"
#include "io/daemon.h"           /* IO_INGEST_MAX */
#include "rib/mem.h"
#include "rib/rib.h"

#define BM_PEERS   8                 /* peers per writer thread */
#define BM_BATCH   8192
#define BM_MAXATTR 150000
#define BM_KEEP    48

/* ---- thread registration ------------------------------------------------ */

static pthread_key_t bm_key;
static pthread_once_t bm_once = PTHREAD_ONCE_INIT;
static __thread bool bm_registered;

static void bm_unreg(void *p)
{
	(void)p;
	rcu_unregister_thread();
}

static void bm_key_init(void)
{
	pthread_key_create(&bm_key, bm_unreg);
}

static void bm_thread(void)
{
	if (bm_registered)
		return;
	pthread_once(&bm_once, bm_key_init);
	rcu_register_thread();
	pthread_setspecific(bm_key, (void *)1);
	rib_thread_batches();            /* as the daemon's I/O threads do */
	bm_registered = true;
}

/* ---- table generation --------------------------------------------------- */

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static unsigned v4_len(uint64_t r)
{
	unsigned x = (unsigned)(r % 1000);
	if (x < 600)
		return 24;
	if (x < 610)
		return 25 + (unsigned)((r >> 12) % 8);
	if (x < 900)
		return 16 + (unsigned)((r >> 12) % 8);   /* /16../23 */
	return 8 + (unsigned)((r >> 12) % 8);        /* /8../15 */
}

static unsigned v6_len(uint64_t r)
{
	unsigned x = (unsigned)(r % 100);
	if (x < 70)
		return 48;
	if (x < 85)
		return 32;
	return 29 + (unsigned)((r >> 12) % 36);     /* /29../64 */
}

static void mask(struct bgp_prefix *p)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = p->len > 8 * i ? p->len - 8 * i : 0;
		p->addr[i] &= bits >= 8 ? 0xFF : (uint8_t)(0xFF00u >> bits);
	}
}

static int pcmp(const void *a, const void *b)
{
	const struct bgp_prefix *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);
	return c ? c : (int)x->len - (int)y->len;
}

/* n distinct prefixes of family fam, sorted. */
static struct bgp_prefix *gen_table(unsigned fam, size_t n, uint64_t seed)
{
	struct bgp_prefix *t = malloc(n * sizeof(*t));
	size_t have = 0;
	uint64_t s = seed | 1;
	while (have < n) {
		for (size_t i = have; i < n; i++) {
			uint64_t r = xs(&s);
			struct bgp_prefix *p = &t[i];
			memset(p, 0, sizeof(*p));
			p->family = (uint8_t)fam;
			if (fam == BGP_FAM_IPV4) {
				uint32_t a = (uint32_t)(r >> 16);
				a = (uint32_t)((uint64_t)a % (222ull << 24)) + (1u << 24);   /* 1/8 .. 222/8 */
				p->addr[0] = (uint8_t)(a >> 24);
				p->addr[1] = (uint8_t)(a >> 16);
				p->addr[2] = (uint8_t)(a >> 8);
				p->addr[3] = (uint8_t)a;
				p->len = (uint8_t)v4_len(xs(&s));
			} else {
				uint64_t b = xs(&s);
				p->addr[0] = 0x20;
				p->addr[1] = (uint8_t)(0x01 + (r & 3));
				for (unsigned k = 2; k < 8; k++)
					p->addr[k] = (uint8_t)(b >> (8 * k));
				p->len = (uint8_t)v6_len(r >> 8);
			}
			mask(p);
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

/* An interned set that looks like a real one: origin, an AS path of 2-7
 * ASNs, MED sometimes, 0-4 communities. */
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
	if (r & (1u << 20)) {
		uint32_t med = (uint32_t)(r >> 24) % 1000;
		b[n++] = 0x80; b[n++] = BGP_ATTR_MED; b[n++] = 4;
		b[n++] = (uint8_t)(med >> 24); b[n++] = (uint8_t)(med >> 16);
		b[n++] = (uint8_t)(med >> 8); b[n++] = (uint8_t)med;
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

/* ---- shared state ------------------------------------------------------- */

/* One writer's (or reader's) position, written on every insert or query:
 * a cache line of its own, or two threads' positions share a line and
 * every step of each waits for the other core's copy. */
struct bm_thr {
	size_t idx;
	unsigned pk;                     /* which of the thread's peers */
	uint64_t gen, rng;
} __attribute__((aligned(64)));

struct bm_rib {
	struct attr_table *at;
	struct attr_set **attr;
	unsigned nattr;
	struct rib_peerinfo *peers;
	struct rib *rib;
	struct bgp_prefix *pfx;
	size_t n;
	unsigned fam, nthreads, tcount;
	uint32_t lpm_index_min;          /* rib_opts.lpm_index_min (0: the default) */
	uint64_t serial;
	struct bm_thr thr[2];
	pthread_mutex_t drain_mu;
	pthread_barrier_t bar;
	struct rib *full[BM_KEEP];
	unsigned nfull;
	/* lookup cases: queries prepared in setup, read in sequence */
	uint8_t (*q)[4];
	size_t nq;
	struct bgp_prefix *qp;           /* exact-lookup queries (nq of them) */
	/* background writer for lookup cases */
	pthread_t bg;
	bool bg_on;
	volatile int stop;
};

static __thread uint64_t tl_serial;
static __thread unsigned tl_id;
static uint64_t bm_serial;

static unsigned bm_tid(struct bm_rib *s)
{
	if (tl_serial != s->serial) {
		tl_serial = s->serial;
		tl_id = __atomic_fetch_add(&s->tcount, 1, __ATOMIC_RELAXED) % s->nthreads;
	}
	return tl_id;
}

static struct rib *bm_newrib(struct bm_rib *s)
{
	struct rib_opts o = { .attrs = s->at, .peers = s->peers, .lpm_index_min = s->lpm_index_min };
	return rib_create(&o);
}

/* Replace s's (empty) RIB and the ones it makes later by RIBs as the daemon
 * runs them: no /24 tables (rib_opts.lpm_index_min in io/daemon.c). */
static void bm_noidx(struct bm_rib *s)
{
	rib_destroy(s->rib);
	s->lpm_index_min = RIB_LPM_INDEX_OFF;
	s->rib = bm_newrib(s);
}

static struct bm_rib *bm_setup(unsigned fam, size_t n, unsigned nthreads)
{
	bm_thread();
	struct bm_rib *s;
	if (posix_memalign((void **)&s, 64, sizeof(*s)))
		abort();
	memset(s, 0, sizeof(*s));
	s->fam = fam;
	s->n = n;
	s->nthreads = nthreads;
	s->serial = __atomic_add_fetch(&bm_serial, 1, __ATOMIC_RELAXED);
	s->at = attr_table_create();
	s->nattr = (unsigned)(n / 7 + 1 < BM_MAXATTR ? n / 7 + 1 : BM_MAXATTR);
	s->attr = malloc(s->nattr * sizeof(*s->attr));
	for (unsigned i = 0; i < s->nattr; i++)
		s->attr[i] = gen_attr(s->at, i);
	s->peers = calloc(RIB_MAX_PEERS, sizeof(*s->peers));
	for (unsigned i = 0; i < 64; i++) {
		s->peers[i].bgp_id = 0x0A000000u + i;
		s->peers[i].asn = 65515;
		s->peers[i].addr.family = BGP_FAM_IPV4;
		s->peers[i].addr.addr[0] = 10;
		s->peers[i].addr.addr[3] = (uint8_t)i;
	}
	s->pfx = gen_table(fam, n, 0xC0FFEE + fam);
	s->rib = bm_newrib(s);
	pthread_mutex_init(&s->drain_mu, NULL);
	pthread_barrier_init(&s->bar, NULL, nthreads);
	for (unsigned t = 0; t < 2; t++) {
		s->thr[t].idx = t * (n / 2);
		s->thr[t].rng = 0x1234 + t;
	}
	return s;
}

static void bm_drain(struct bm_rib *s, struct rib *r)
{
	struct rib_node *buf[512];
	size_t k;
	if (pthread_mutex_trylock(&s->drain_mu))
		return;
	while ((k = rib_journal_drain(r, buf, 512)) > 0)
		for (size_t i = 0; i < k; i++)
			rib_journal_release(r, buf[i]);
	pthread_mutex_unlock(&s->drain_mu);
}

static void bm_teardown(void *p)
{
	struct bm_rib *s = p;
	if (s->bg_on) {
		s->stop = 1;
		pthread_join(s->bg, NULL);
	}
	for (unsigned i = 0; i < s->nfull; i++)
		rib_destroy(s->full[i]);
	rib_destroy(s->rib);
	for (unsigned i = 0; i < s->nattr; i++)
		attr_unref(s->at, s->attr[i]);
	attr_table_destroy(s->at);
	pthread_barrier_destroy(&s->bar);
	free(s->q);
	free(s->qp);
	free(s->attr);
	free(s->peers);
	free(s->pfx);
	free(s);
}

/* The pool is split between the writer threads: peers on different I/O
 * threads announce different attribute sets (each its own next hop and AS
 * path), so two writers do not share reference counts. */
static inline struct attr_set *pick_attr(struct bm_rib *s, size_t i, uint32_t peer, uint64_t gen)
{
	unsigned t = (peer - 1) / BM_PEERS, part = s->nattr / s->nthreads;
	if (t >= s->nthreads)
		return s->attr[(i * 7 + peer * 13 + gen * 101) % s->nattr];
	return s->attr[t * part + (i * 7 + peer * 13 + gen * 101) % part];
}

static inline uint32_t peer_of(unsigned tid, unsigned pk)
{
	return 1 + tid * BM_PEERS + pk;
}

/* Fill with `peers` peers per thread slot, untimed (setup). */
static void bm_fill(struct bm_rib *s, unsigned nthr_slots, unsigned peers)
{
	for (unsigned t = 0; t < nthr_slots; t++)
		for (unsigned pk = 0; pk < peers; pk++)
			for (size_t i = 0; i < s->n; i++)
				rib_update(s->rib, &s->pfx[i], peer_of(t, pk), pick_attr(s, i, peer_of(t, pk), 0), 0);
	bm_drain(s, s->rib);
}

/* ---- insert ------------------------------------------------------------- */

/*
 * upd: prefixes arrive as UPDATEs do, runs of BM_UPD consecutive prefixes
 * sharing one attribute set (a full table has ~7 prefixes per set), given to
 * rib_update_batch (upd_batch) or to rib_update one by one (upd_single);
 * upd_multi gives BM_MULTI of them (BM_MULTI / BM_UPD such UPDATEs) to one rib_update_multi,
 * as an I/O thread flushes what it gathered from a peer's read.
 */
#define BM_UPD 4
#define BM_MULTI IO_INGEST_MAX   /* what an I/O thread gathers per flush */

/* The call shapes of the insert cases (also ricochet-rib-diag's mode argument). */
enum bm_ins_mode {
	BM_INS_SINGLE = 0,       /* insert_v4: one rib_update per path */
	BM_INS_UPD_SINGLE = 1,   /* upd_single: UPDATE-shaped runs, one rib_update each */
	BM_INS_UPD_BATCH = 2,    /* upd_batch: one rib_update_batch per UPDATE */
	BM_INS_UPD_MULTI = 3,    /* upd_multi: rib_update_multi over BM_MULTI, as ingest_flush */
	BM_INS_MODES
};

static uint64_t run_insert_mode(void *p, enum bm_ins_mode mode)
{
	struct bm_rib *s = p;
	bm_thread();
	unsigned t = bm_tid(s);
	struct bm_thr *th = &s->thr[t];
	struct rib *r = __atomic_load_n(&s->rib, __ATOMIC_ACQUIRE);
	unsigned np = BM_PEERS / s->nthreads, step;
	struct attr_set *mset[BM_MULTI];
	for (unsigned b = 0; b < BM_BATCH; b += step) {
		uint32_t peer = peer_of(t, th->pk);
		if (mode == BM_INS_UPD_MULTI) {
			/* the daemon's gathered ingest (io/peer.c ingest_flush): up
			 * to BM_MULTI announcements of consecutive UPDATEs, stopping
			 * at the table's end and at this thread's starting point */
			size_t c = BM_MULTI, stop = s->n;
			if (t && th->idx < s->n / 2)
				stop = s->n / 2;
			if (c > stop - th->idx)
				c = stop - th->idx;
			if (c > BM_BATCH - b)
				c = BM_BATCH - b;
			/* one set per UPDATE-shaped run, as the gathering sees them */
			struct attr_set *a = NULL;
			for (size_t j = 0; j < c; j++) {
				if (!a || (th->idx + j) % BM_UPD == 0)
					a = pick_attr(s, (th->idx + j) / BM_UPD, peer, 0);
				mset[j] = a;
			}
			rib_update_multi(r, &s->pfx[th->idx], mset, c, peer, 0, NULL);
			step = (unsigned)c;
			th->idx += c - 1;
		} else if (mode == BM_INS_SINGLE) {
			rib_update(r, &s->pfx[th->idx], peer, pick_attr(s, th->idx, peer, 0), 0);
			step = 1;
		} else {
			struct attr_set *a = pick_attr(s, th->idx / BM_UPD, peer, 0);
			step = BM_UPD;
			if (mode == BM_INS_UPD_BATCH) {
				rib_update_batch(r, &s->pfx[th->idx], BM_UPD, peer, a, 0, NULL);
			} else {
				for (unsigned j = 0; j < BM_UPD; j++)
					rib_update(r, &s->pfx[th->idx + j], peer, a, 0);
			}
			th->idx += BM_UPD - 1;
		}
		if (++th->idx == s->n)
			th->idx = 0;
		if (th->idx == t * (s->n / 2) && ++th->pk == np) {
			/* this thread's peers announced everything: swap in an empty RIB */
			th->pk = 0;
			bm_drain(s, r);
			rib_reclaim_mine(r);     /* its own partial free batch, as an idle I/O thread */
			/* both threads are done (waiting for the slower one is timed);
			 * retiring the full table and making an empty one is not insert
			 * work, so the clocks stop while one thread does it */
			int serial = pthread_barrier_wait(&s->bar) == PTHREAD_BARRIER_SERIAL_THREAD;
			bm_pause();
			if (serial) {
				if (s->nfull == BM_KEEP) {
					rib_destroy(s->full[0]);
					memmove(s->full, s->full + 1, (BM_KEEP - 1) * sizeof(*s->full));
					s->nfull--;
				}
				/* its writers are done: hand its partly filled
				 * deferred-free batches to call_rcu, as a live RIB's fill
				 * up and go (or the daemon's idle reflection thread
				 * sends them), so the next table can reuse the memory of
				 * the path sets this one replaced */
				rib_reclaim_idle(r);
				s->full[s->nfull++] = r;
				__atomic_store_n(&s->rib, bm_newrib(s), __ATOMIC_RELEASE);
			}
			pthread_barrier_wait(&s->bar);
			bm_resume();
			r = __atomic_load_n(&s->rib, __ATOMIC_ACQUIRE);
		}
	}
	bm_drain(s, r);
	return BM_BATCH;
}

static uint64_t run_insert(void *p) { return run_insert_mode(p, BM_INS_SINGLE); }
static uint64_t run_insert_upd1(void *p) { return run_insert_mode(p, BM_INS_UPD_SINGLE); }
static uint64_t run_insert_updb(void *p) { return run_insert_mode(p, BM_INS_UPD_BATCH); }
static uint64_t run_insert_updm(void *p) { return run_insert_mode(p, BM_INS_UPD_MULTI); }

static void *setup_ins4_1(int64_t n) { return bm_setup(BGP_FAM_IPV4, (size_t)n, 1); }

static void *setup_ins4_1_noidx(int64_t n)
{
	struct bm_rib *s = bm_setup(BGP_FAM_IPV4, (size_t)n, 1);
	bm_noidx(s);
	return s;
}
static void *setup_ins4_2(int64_t n) { return bm_setup(BGP_FAM_IPV4, (size_t)n, 2); }
static void *setup_ins6_1(int64_t n) { return bm_setup(BGP_FAM_IPV6, (size_t)n, 1); }

/* ---- replace ------------------------------------------------------------ */

/* the daemon's settling of a quiet RIB (rib/mem.h), on the table just built */
static void bm_settle(void)
{
	struct mem_settle_result r;
	mem_settle(MEM_SETTLE_MIN_RESIDENT, &r);
}

static void *setup_rep4(int64_t n, unsigned nthreads)
{
	struct bm_rib *s = bm_setup(BGP_FAM_IPV4, (size_t)n, nthreads);
	bm_fill(s, nthreads, BM_PEERS / nthreads);
	return s;
}
static void *setup_rep4_1(int64_t n) { return setup_rep4(n, 1); }
static void *setup_rep4_1s(int64_t n)
{
	void *s = setup_rep4(n, 1);
	bm_settle();
	return s;
}
static void *setup_rep4_2(int64_t n) { return setup_rep4(n, 2); }

static uint64_t run_replace(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	unsigned t = bm_tid(s), np = BM_PEERS / s->nthreads;
	struct bm_thr *th = &s->thr[t];
	for (unsigned b = 0; b < BM_BATCH; b++) {
		uint32_t peer = peer_of(t, th->pk);
		rib_update(s->rib, &s->pfx[th->idx], peer, pick_attr(s, th->idx, peer, th->gen + 1), 0);
		if (++th->pk == np) {
			th->pk = 0;
			if (++th->idx == s->n) {
				th->idx = 0;
				th->gen++;
			}
		}
	}
	bm_drain(s, s->rib);
	return BM_BATCH;
}

/* ---- withdraw + re-announce --------------------------------------------- */

static uint64_t run_withdraw(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	unsigned t = bm_tid(s), np = BM_PEERS / s->nthreads;
	struct bm_thr *th = &s->thr[t];
	size_t start = th->idx;
	unsigned pk = th->pk;
	uint32_t peer = peer_of(t, pk);
	size_t k = BM_BATCH / 2 < s->n ? BM_BATCH / 2 : s->n;
	for (size_t b = 0, i = start; b < k; b++) {
		rib_withdraw(s->rib, &s->pfx[i], peer);
		if (++i == s->n)
			i = 0;
	}
	for (size_t b = 0, i = start; b < k; b++) {
		rib_update(s->rib, &s->pfx[i], peer, pick_attr(s, i, peer, 0), 0);
		if (++i == s->n)
			i = 0;
	}
	th->idx = (start + k) % s->n;
	th->pk = (pk + 1) % np;
	bm_drain(s, s->rib);
	return 2 * k;
}

/* ---- lookups ------------------------------------------------------------ */

static void *bg_writer(void *p)
{
	struct bm_rib *s = p;
	rcu_register_thread();
	uint64_t gen = 1;
	size_t i = 0;
	while (!s->stop) {
		for (unsigned b = 0; b < 1024; b++) {
			rib_update(s->rib, &s->pfx[i], 60, pick_attr(s, i, 60, gen), 0);
			if (++i == s->n) {
				i = 0;
				gen++;
			}
		}
		bm_drain(s, s->rib);
	}
	rcu_unregister_thread();
	return NULL;
}

static void *setup_lk(int64_t n, unsigned nthreads, bool writer, bool noidx, bool settle)
{
	struct bm_rib *s = bm_setup(BGP_FAM_IPV4, (size_t)n, nthreads);
	if (noidx)
		bm_noidx(s);
	bm_fill(s, 1, 2);
	/* same query mix as run_lpm: a table prefix with random host bits */
	s->nq = 1u << 20;
	s->q = malloc(s->nq * sizeof(*s->q));
	uint64_t rng = 0xABCDEF;
	for (size_t i = 0; i < s->nq; i++) {
		uint64_t r = xs(&rng);
		memcpy(s->q[i], s->pfx[r % s->n].addr, 4);
		s->q[i][3] |= (uint8_t)(r >> 56);
	}
	s->qp = malloc(s->nq * sizeof(*s->qp));
	for (size_t i = 0; i < s->nq; i++)
		s->qp[i] = s->pfx[xs(&rng) % s->n];
	if (settle)
		bm_settle();
	if (writer) {
		s->bg_on = true;
		pthread_create(&s->bg, NULL, bg_writer, s);
	}
	return s;
}
static void *setup_lk_1(int64_t n) { return setup_lk(n, 1, false, false, false); }
static void *setup_lk_2(int64_t n) { return setup_lk(n, 2, false, false, false); }
static void *setup_lk_w(int64_t n) { return setup_lk(n, 1, true, false, false); }
static void *setup_lk_noidx(int64_t n) { return setup_lk(n, 1, false, true, false); }
static void *setup_lk_1s(int64_t n) { return setup_lk(n, 1, false, false, true); }
static void *setup_lk_noidx_s(int64_t n) { return setup_lk(n, 1, false, true, true); }

/* Every lookup case counts a hit as an answer whose path set it has read,
 * as any caller does next: a lookup that skipped its node would only move
 * that load here, not save it. */
static inline bool lk_hit(const struct rib_node *n)
{
	return n && rib_node_paths(n) != NULL;
}

static uint64_t run_lpm(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	struct bm_thr *th = &s->thr[bm_tid(s)];
	uint64_t hits = 0;
	for (unsigned b = 0; b < BM_BATCH; b += 256) {
		rcu_read_lock();
		for (unsigned j = 0; j < 256; j++) {
			uint64_t r = xs(&th->rng);
			const struct bgp_prefix *q = &s->pfx[r % s->n];
			uint8_t a[16];
			memcpy(a, q->addr, 16);
			a[3] |= (uint8_t)(r >> 56);          /* random host bits */
			hits += lk_hit(rib_lookup_lpm(s->rib, BGP_FAM_IPV4, a));
		}
		rcu_read_unlock();
	}
	if (hits == 0)
		abort();
	return BM_BATCH;
}

/* Queries from the prepared array (sequential reads, so only the RIB's own
 * cache misses are timed), one call each, or in batches of 64. */
static uint64_t run_lpm_q(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	struct bm_thr *th = &s->thr[bm_tid(s)];
	uint64_t hits = 0;
	for (unsigned b = 0; b < BM_BATCH; b += 256) {
		rcu_read_lock();
		for (unsigned j = 0; j < 256; j++) {
			th->idx &= s->nq - 1;
			hits += lk_hit(rib_lookup_lpm(s->rib, BGP_FAM_IPV4, s->q[th->idx++]));
		}
		rcu_read_unlock();
	}
	if (hits == 0)
		abort();
	return BM_BATCH;
}

/* Prepared queries, 64 per batch call: longest matches of s->q or exact
 * lookups of s->qp (a hit is a node with paths, lk_hit). */
static uint64_t run_batch(struct bm_rib *s, bool exact)
{
	bm_thread();
	struct bm_thr *th = &s->thr[bm_tid(s)];
	struct rib_node *out[64];
	uint64_t hits = 0;
	for (unsigned b = 0; b < BM_BATCH; b += 256) {
		rcu_read_lock();
		for (unsigned j = 0; j < 256; j += 64) {
			size_t i = th->idx & (s->nq - 1) & ~(size_t)63;
			if (exact)
				rib_lookup_batch(s->rib, &s->qp[i], 64, out);
			else
				rib_lookup_lpm_batch(s->rib, BGP_FAM_IPV4, s->q[i], 4, 64, out);
			for (unsigned k = 0; k < 64; k++)
				hits += lk_hit(out[k]);
			th->idx = i + 64;
		}
		rcu_read_unlock();
	}
	if (hits == 0)
		abort();
	return BM_BATCH;
}

static uint64_t run_lpm_batch(void *p)
{
	return run_batch(p, false);
}

static uint64_t run_exact(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	struct bm_thr *th = &s->thr[bm_tid(s)];
	uint64_t hits = 0;
	for (unsigned b = 0; b < BM_BATCH; b += 256) {
		rcu_read_lock();
		for (unsigned j = 0; j < 256; j++) {
			const struct bgp_prefix *q = &s->pfx[xs(&th->rng) % s->n];
			struct rib_node *n = rib_lookup(s->rib, q);
			hits += lk_hit(n);
		}
		rcu_read_unlock();
	}
	if (hits == 0)
		abort();
	return BM_BATCH;
}

/* Exact lookups of prepared random table prefixes, one call each. */
static uint64_t run_exact_q(void *p)
{
	struct bm_rib *s = p;
	bm_thread();
	struct bm_thr *th = &s->thr[bm_tid(s)];
	uint64_t hits = 0;
	for (unsigned b = 0; b < BM_BATCH; b += 256) {
		rcu_read_lock();
		for (unsigned j = 0; j < 256; j++) {
			th->idx &= s->nq - 1;
			struct rib_node *n = rib_lookup(s->rib, &s->qp[th->idx++]);
			hits += lk_hit(n);
		}
		rcu_read_unlock();
	}
	if (hits == 0)
		abort();
	return BM_BATCH;
}

/* The same prepared exact queries, 64 per rib_lookup_batch call. */
static uint64_t run_exact_batch(void *p)
{
	return run_batch(p, true);
}

/* ---- attribute interning ------------------------------------------------- */

/* Interning n distinct sets into a fresh table, the way a table fills when
 * sessions come up (attr/intern_new); and interning sets that are already
 * there, as every UPDATE that repeats a known set does (attr/intern_hit). */
struct bm_attr {
	unsigned n, next;
	struct attr_table *at;
	struct attr_set **v;
};

static void *setup_attr(int64_t n, bool fill)
{
	bm_thread();
	struct bm_attr *s = calloc(1, sizeof(*s));
	s->n = (unsigned)n;
	s->v = calloc((size_t)n, sizeof(*s->v));
	if (!s->v)
		abort();
	if (fill) {
		s->at = attr_table_create();
		for (unsigned i = 0; i < s->n; i++)
			s->v[i] = gen_attr(s->at, i);
	}
	return s;
}

static void *setup_attr_new(int64_t n) { return setup_attr(n, false); }
static void *setup_attr_hit(int64_t n) { return setup_attr(n, true); }

static void attr_release_all(struct bm_attr *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->v[i])
			attr_unref(s->at, s->v[i]);
	attr_table_destroy(s->at);
	s->at = NULL;
}

static uint64_t run_attr_new(void *p)
{
	struct bm_attr *s = p;
	bm_thread();
	bm_pause();
	s->at = attr_table_create();
	bm_resume();
	for (unsigned i = 0; i < s->n; i++)
		s->v[i] = gen_attr(s->at, i);
	bm_pause();
	attr_release_all(s);
	bm_resume();
	return s->n;
}

/* BM_BATCH interns of existing sets in a scattered order, each released. */
static uint64_t run_attr_hit(void *p)
{
	struct bm_attr *s = p;
	bm_thread();
	for (unsigned j = 0; j < BM_BATCH; j++) {
		s->next = (s->next + 7919u * 1021u) % s->n;
		struct attr_set *a = gen_attr(s->at, s->next);
		if (a != s->v[s->next])
			abort();
		attr_unref(s->at, a);
	}
	return BM_BATCH;
}

static void teardown_attr(void *p)
{
	struct bm_attr *s = p;
	if (s->at)
		attr_release_all(s);
	free(s->v);
	free(s);
}

const struct bm_case bm_rib_cases[] = {
	{ "rib/insert_v4", setup_ins4_1, run_insert, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/insert_v4_2w", setup_ins4_2, run_insert, bm_teardown, { 10000, 100000, 1000000 }, 2 },
	{ "rib/insert_v6", setup_ins6_1, run_insert, bm_teardown, { 10000, 100000 }, 1 },
	{ "rib/insert_v4_upd_single", setup_ins4_1, run_insert_upd1, bm_teardown, { 1000000 }, 1 },
	{ "rib/insert_v4_upd_batch", setup_ins4_1, run_insert_updb, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/insert_v4_upd_batch_2w", setup_ins4_2, run_insert_updb, bm_teardown, { 10000, 100000, 1000000 }, 2 },
	{ "rib/insert_v4_upd_multi", setup_ins4_1, run_insert_updm, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/insert_v4_upd_multi_noidx", setup_ins4_1_noidx, run_insert_updm, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/insert_v4_upd_multi_2w", setup_ins4_2, run_insert_updm, bm_teardown, { 10000, 100000, 1000000 }, 2 },
	{ "rib/replace_v4", setup_rep4_1, run_replace, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/replace_v4_2w", setup_rep4_2, run_replace, bm_teardown, { 10000, 100000, 1000000 }, 2 },
	{ "rib/withdraw_reannounce_v4", setup_rep4_1, run_withdraw, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lpm_v4", setup_lk_1, run_lpm, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_2r", setup_lk_2, run_lpm, bm_teardown, { 100000, 1000000 }, 2 },
	{ "rib/lpm_v4_bgwriter", setup_lk_w, run_lpm, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lookup_v4", setup_lk_1, run_exact, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lookup_v4_q", setup_lk_1, run_exact_q, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lookup_v4_batch", setup_lk_1, run_exact_batch, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_q", setup_lk_1, run_lpm_q, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_batch", setup_lk_1, run_lpm_batch, bm_teardown, { 10000, 100000, 1000000 }, 1 },
	{ "rib/lookup_v4_q_noidx", setup_lk_noidx, run_exact_q, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lookup_v4_batch_noidx", setup_lk_noidx, run_exact_batch, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_q_noidx", setup_lk_noidx, run_lpm_q, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_batch_noidx", setup_lk_noidx, run_lpm_batch, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_batch_2r", setup_lk_2, run_lpm_batch, bm_teardown, { 1000000 }, 2 },
	{ "rib/lookup_v4_batch_settled", setup_lk_1s, run_exact_batch, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lpm_v4_batch_settled", setup_lk_1s, run_lpm_batch, bm_teardown, { 100000, 1000000 }, 1 },
	{ "rib/lookup_v4_batch_noidx_settled", setup_lk_noidx_s, run_exact_batch, bm_teardown, { 1000000 }, 1 },
	{ "rib/lpm_v4_batch_noidx_settled", setup_lk_noidx_s, run_lpm_batch, bm_teardown, { 1000000 }, 1 },
	{ "rib/replace_v4_settled", setup_rep4_1s, run_replace, bm_teardown, { 1000000 }, 1 },
	{ "attr/intern_new", setup_attr_new, run_attr_new, teardown_attr, { 100000, 1000000 }, 1 },
	{ "attr/intern_hit", setup_attr_hit, run_attr_hit, teardown_attr, { 100000, 1000000 }, 1 },
	{ NULL, NULL, NULL, NULL, { 0 }, 0 },
};
