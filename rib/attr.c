/*
 * attr.c - the table of interned, reference-counted path attribute sets.
 *
 * Owns: every struct attr_set.  A set is keyed by (next hop, canonical blob)
 * and lives in one liburcu lock-free hash table (rculfhash), so identical
 * attribute sets announced by any number of peers are stored once.
 *
 * Threads: any RCU-registered thread (I/O threads interning what they parse,
 * the RIB writers dropping replaced paths, the reflection thread) calls
 * attr_intern / attr_ref / attr_unref concurrently; nothing here takes a lock.
 *
 * Why it is built this way:
 *   - Lookup is lock-free under rcu_read_lock; a hit costs one hash, one
 *     bucket walk, one memcmp and one compare-and-swap on the refcount.
 *   - A refcount that reached zero is never raised again ("dying").  The
 *     thread that dropped it to zero unlinks the node and frees it after a
 *     grace period, so a reader holding the pointer under rcu_read_lock can
 *     still read the decision fields.  While a dying node is still linked,
 *     the match function ignores it, so a concurrent intern of the same key
 *     inserts a fresh set beside it instead of spinning.
 *   - The decision fields are decoded once here, so best-path selection
 *     never parses attributes.
 *   - Statistics are striped counters (one cache line per stripe) so the
 *     intern hot path does not bounce one shared line between all threads.
 *   - The table is kept at about one set per bucket (attr_grow_check).
 *     rculfhash's own automatic growth (CDS_LFHT_ACCOUNTING) waits until a
 *     table holds 8 nodes per bucket; every intern of a new set - in a bulk
 *     load, nearly every UPDATE brings one - then walks a chain of ~4 cache
 *     misses before it can insert (cds_lfht_lookup was 17 % of the I/O
 *     threads' time in S2, 50 feeders x 100k routes).  The automatic
 *     resize stays on for shrinking and as a backstop.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "core/tsan.h"
#include "rib/attr.h"
#include "rib/mem.h"

/*
 * ThreadSanitizer does not see liburcu's publication (rculfhash add / lookup
 * are not instrumented): attr_intern states that edge (core/tsan.h) so
 * readers of a freshly interned set's fields are not reported.
 */

#define ATTR_REF_MAX   (1u << 31)     /* more references than this = a leak or a bug */
#define ATTR_STRIPES   16
#define ATTR_HT_INIT   (1ul << 12)
#define ATTR_HT_MAX    (1ul << 24)    /* buckets: 256 MiB of them; more sets just chain */
#define ATTR_GROW_EVERY 256u          /* a stripe's new sets between checks of the load */

struct attr_ctr {
	int64_t sets;
	int64_t bytes;
	uint64_t interns;
	uint64_t hits;
	uint64_t adds;                /* sets inserted through this stripe, ever */
} __attribute__((aligned(64)));

struct attr_table {
	struct cds_lfht *ht;
	uint64_t seed;
	/* Growth (attr_grow_check): the bucket count last asked for, and 1
	 * while that request is queued or running on the call_rcu thread
	 * (grow_rcu is its only carrier, so one request at a time).  Atomics. */
	unsigned long grow_goal;
	int grow_busy;
	struct rcu_head grow_rcu;
	struct attr_ctr ctr[ATTR_STRIPES];
};

struct attr_key {
	const struct bgp_nexthop *nh;
	const uint8_t *blob;
	size_t len;
};

static unsigned attr_next_stripe;
static __thread unsigned attr_my_stripe = UINT_MAX;

static struct attr_ctr *attr_ctr(struct attr_table *t)
{
	if (caa_unlikely(attr_my_stripe == UINT_MAX))
		attr_my_stripe = __atomic_fetch_add(&attr_next_stripe, 1, __ATOMIC_RELAXED) % ATTR_STRIPES;
	return &t->ctr[attr_my_stripe];
}

/* ---- hashing ------------------------------------------------------------ */

#define ATTR_K1 0x9E3779B97F4A7C15ull
#define ATTR_K2 0xD6E8FEB86659FD93ull

static inline uint64_t attr_fmix(uint64_t h)
{
	h ^= h >> 32;
	h *= ATTR_K2;
	h ^= h >> 32;
	h *= ATTR_K2;
	h ^= h >> 32;
	return h;
}

/* Multiply-xorshift over 8-byte little-endian words; the tail is zero-padded
 * (lengths are mixed in by the caller, so padding cannot alias). */
static uint64_t attr_hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * ATTR_K1;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		h = (h ^ w) * ATTR_K1;
		h ^= h >> 29;
	}
	return h;
}

static uint64_t attr_hash(const struct attr_table *t, const struct bgp_nexthop *nh,
			  const uint8_t *blob, size_t len)
{
	uint64_t h = t->seed ^ (((uint64_t)nh->len << 32 | len) * ATTR_K2);

	h = attr_hash_bytes(h, nh->addr, nh->len);
	h = attr_hash_bytes(h, blob, len);
	return attr_fmix(h);
}

/* ---- decision field extraction -------------------------------------------- */

static void attr_parse_aspath(struct attr_set *a, const uint8_t *v, size_t len)
{
	size_t off = 0;
	unsigned n = 0;
	bool first = true;

	while (off + 2 <= len) {
		uint8_t type = v[off], cnt = v[off + 1];
		const uint8_t *asns = v + off + 2;

		if (off + 2 + (size_t)cnt * 4 > len)
			break;          /* not canonical: keep what was counted */
		switch (type) {
		case BGP_AS_SEQUENCE:
			n += cnt;
			/* RFC 4271 9.1.2.2c: the neighbour AS is the first AS of
			 * the path once confederation segments are skipped; a
			 * path beginning with an AS_SET (an aggregate) or an
			 * empty one counts as local (0). */
			if (first && cnt)
				a->neighbor_as = bgp_get32(asns);
			first = false;
			break;
		case BGP_AS_SET:
			n += 1;
			first = false;
			break;
		default:                /* confederation segments count 0 (RFC 5065) */
			break;
		}
		off += 2 + (size_t)cnt * 4;
	}
	a->as_path_len = n > UINT16_MAX ? UINT16_MAX : (uint16_t)n;
}

/*
 * Walk the canonical blob (core/bgp.h) once.  The blob comes from our own
 * parser; if it is malformed anyway the walk stops and the fields keep their
 * defaults (the set is still interned by its bytes, so nothing is lost).
 */
static void attr_extract(struct attr_set *a)
{
	const uint8_t *p = a->blob;
	size_t len = a->blob_len, off = 0;

	a->local_pref = 100;
	a->med = 0;
	a->originator_id = 0;
	a->neighbor_as = 0;
	a->as_path_len = 0;
	a->cluster_list_len = 0;
	a->flags = 0;
	a->origin = BGP_ORIGIN_INCOMPLETE;     /* absent ORIGIN ranks last */

	while (off + 3 <= len) {
		uint8_t fl = p[off], type = p[off + 1];
		size_t hl = (fl & BGP_ATTR_F_EXTLEN) ? 4 : 3, vl;
		const uint8_t *v;

		if (off + hl > len)
			break;
		vl = (fl & BGP_ATTR_F_EXTLEN) ? bgp_get16(p + off + 2) : p[off + 2];
		if (off + hl + vl > len)
			break;
		v = p + off + hl;
		switch (type) {
		case BGP_ATTR_ORIGIN:
			if (vl == 1)
				a->origin = v[0];
			break;
		case BGP_ATTR_AS_PATH:
			attr_parse_aspath(a, v, vl);
			break;
		case BGP_ATTR_MED:
			if (vl == 4) {
				a->med = bgp_get32(v);
				a->flags |= ATTR_F_MED;
			}
			break;
		case BGP_ATTR_LOCAL_PREF:
			if (vl == 4) {
				a->local_pref = bgp_get32(v);
				a->flags |= ATTR_F_LOCAL_PREF;
			}
			break;
		case BGP_ATTR_ATOMIC_AGGREGATE:
			a->flags |= ATTR_F_ATOMIC_AGG;
			break;
		case BGP_ATTR_COMMUNITIES:
			for (size_t i = 0; i + 4 <= vl; i += 4) {
				switch (bgp_get32(v + i)) {
				case BGP_COMM_NO_EXPORT:
					a->flags |= ATTR_F_NO_EXPORT;
					break;
				case BGP_COMM_NO_ADVERTISE:
					a->flags |= ATTR_F_NO_ADVERTISE;
					break;
				case BGP_COMM_NO_EXPORT_SUBCONFED:
					a->flags |= ATTR_F_NO_EXPORT_SUBCONFED;
					break;
				}
			}
			break;
		case BGP_ATTR_ORIGINATOR_ID:
			if (vl == 4) {
				a->originator_id = bgp_get32(v);
				a->flags |= ATTR_F_ORIGINATOR;
			}
			break;
		case BGP_ATTR_CLUSTER_LIST:
			a->cluster_list_len = vl / 4 > UINT16_MAX ? UINT16_MAX : (uint16_t)(vl / 4);
			a->flags |= ATTR_F_CLUSTER_LIST;
			break;
		default:
			break;
		}
		off += hl + vl;
	}
}

/* ---- table ---------------------------------------------------------------- */

struct attr_table *attr_table_create(void)
{
	struct attr_table *t;
	uint64_t seed;

	if (posix_memalign((void **)&t, 64, sizeof(*t)) != 0)
		log_fatal("attr: out of memory creating the attribute table");
	memset(t, 0, sizeof(*t));
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec * ATTR_K1 ^ (uint64_t)(uintptr_t)t;
	}
	t->seed = seed;
	t->grow_goal = ATTR_HT_INIT;
	t->ht = cds_lfht_new(ATTR_HT_INIT, ATTR_HT_INIT, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
			     NULL);
	if (!t->ht)
		log_fatal("attr: cannot create the attribute hash table");
	return t;
}

void attr_table_destroy(struct attr_table *t)
{
	struct attr_stats st;

	if (!t)
		return;
	attr_table_stats(t, &st);
	if (st.sets != 0)
		log_fatal("attr: table destroyed with %llu live attribute sets",
			  (unsigned long long)st.sets);
	/* a growth request may still be queued: it uses the table */
	rcu_barrier();
	if (cds_lfht_destroy(t->ht, NULL) != 0)
		log_fatal("attr: attribute hash table not empty at destroy");
	/* Sets released just before are freed by call_rcu; wait for them so the
	 * memory is really gone when we return. */
	rcu_barrier();
	free(t);
}

static int attr_match(struct cds_lfht_node *node, const void *key)
{
	const struct attr_set *a = caa_container_of(node, struct attr_set, node);
	const struct attr_key *k = key;

	if (a->blob_len != k->len || a->nh.len != k->nh->len)
		return 0;
	if (memcmp(a->nh.addr, k->nh->addr, a->nh.len) != 0 || memcmp(a->blob, k->blob, k->len) != 0)
		return 0;
	/* A dying set is invisible: a new one may be inserted beside it. */
	return __atomic_load_n(&a->refcnt, __ATOMIC_ACQUIRE) != 0;
}

/* Take a reference unless the set is dying.  Returns false if it was. */
static bool attr_tryref(struct attr_set *a)
{
	uint32_t v = __atomic_load_n(&a->refcnt, __ATOMIC_RELAXED);

	do {
		if (v == 0)
			return false;
		if (v >= ATTR_REF_MAX)
			log_fatal("attr: reference count overflow on set %p", (void *)a);
	} while (!__atomic_compare_exchange_n(&a->refcnt, &v, v + 1, true, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return true;
}

/* ---- growth ------------------------------------------------------------- */

/* Twice the next power of two of v, at most ATTR_HT_MAX. */
static unsigned long attr_goal_for(uint64_t v)
{
	unsigned long p = 1;

	while (p < v && p < ATTR_HT_MAX / 2)
		p <<= 1;
	return p * 2;
}

/* On the call_rcu thread, the way rculfhash runs its own lazy resize: not in
 * a read-side section, so the resize may wait for grace periods. */
static void attr_grow_cb(struct rcu_head *head)
{
	struct attr_table *t = caa_container_of(head, struct attr_table, grow_rcu);

	cds_lfht_resize(t->ht, __atomic_load_n(&t->grow_goal, __ATOMIC_RELAXED));
	__atomic_store_n(&t->grow_busy, 0, __ATOMIC_RELEASE);
}

/*
 * Called every ATTR_GROW_EVERY new sets of a stripe, under rcu_read_lock.
 * When the live sets outnumber the buckets asked for, ask for twice the next
 * power of two (between 1/2 and 1/4 set per bucket right after, 1 at the
 * next request) and let the call_rcu thread resize: the interning thread
 * never waits.  When most sets have gone, only lower the goal - rculfhash
 * shrinks the table itself - so that growth is asked for again later.
 */
static void attr_grow_check(struct attr_table *t)
{
	int64_t sets = 0;
	unsigned long goal = __atomic_load_n(&t->grow_goal, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < ATTR_STRIPES; i++)
		sets += __atomic_load_n(&t->ctr[i].sets, __ATOMIC_RELAXED);
	if (sets < 0)
		sets = 0;
	if ((uint64_t)sets <= goal) {
		if (goal > ATTR_HT_INIT && (uint64_t)sets < goal / 8) {
			unsigned long lower = attr_goal_for((uint64_t)sets);

			__atomic_compare_exchange_n(&t->grow_goal, &goal,
						    lower > ATTR_HT_INIT ? lower : ATTR_HT_INIT, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		}
		return;
	}
	if (goal >= ATTR_HT_MAX || __atomic_exchange_n(&t->grow_busy, 1, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&t->grow_goal, attr_goal_for((uint64_t)sets), __ATOMIC_RELAXED);
	call_rcu(&t->grow_rcu, attr_grow_cb);
}

/* ---- interning ------------------------------------------------------------ */

struct attr_set *attr_intern(struct attr_table *t, const struct bgp_nexthop *nh,
			     const uint8_t *blob, size_t len)
{
	struct attr_key k = { .nh = nh, .blob = blob, .len = len };
	struct attr_ctr *c = attr_ctr(t);
	struct attr_set *mine = NULL, *a;
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	unsigned long h;

	if (len > UINT16_MAX)
		log_fatal("attr: attribute blob of %zu bytes cannot be interned", len);
	if (nh->len > sizeof(nh->addr))
		log_fatal("attr: next hop length %u out of range", nh->len);
	h = (unsigned long)attr_hash(t, nh, blob, len);
	__atomic_fetch_add(&c->interns, 1, __ATOMIC_RELAXED);

	rcu_read_lock();
	for (;;) {
		cds_lfht_lookup(t->ht, h, attr_match, &k, &it);
		n = cds_lfht_iter_get_node(&it);
		if (n) {
			a = caa_container_of(n, struct attr_set, node);
			if (attr_tryref(a))
				break;
			continue;       /* died under us: now invisible to match */
		}
		if (!mine) {
			/* 64-aligned, see struct attr_set */
			mine = aligned_alloc(64, (offsetof(struct attr_set, blob) + len + 63) & ~(size_t)63);
			if (!mine)
				log_fatal("attr: out of memory interning a %zu byte attribute set", len);
			cds_lfht_node_init(&mine->node);
			mine->hash = h;
			mine->refcnt = 1;
			mine->nh.len = nh->len;
			memset(mine->nh.addr, 0, sizeof(mine->nh.addr));
			memcpy(mine->nh.addr, nh->addr, nh->len);
			mine->blob_len = (uint16_t)len;
			if (len)         /* an empty blob may come as NULL */
				memcpy(mine->blob, blob, len);
			attr_extract(mine);
		}
		tsan_release(mine);
		n = cds_lfht_add_unique(t->ht, h, attr_match, &k, &mine->node);
		if (n == &mine->node) {
			a = mine;
			mine = NULL;
			__atomic_fetch_add(&c->sets, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&c->bytes, (int64_t)malloc_usable_size(a), __ATOMIC_RELAXED);
			if ((__atomic_add_fetch(&c->adds, 1, __ATOMIC_RELAXED) % ATTR_GROW_EVERY) == 0)
				attr_grow_check(t);
			rcu_read_unlock();
			return a;
		}
		/* Lost the race: use the winner unless it is already dying. */
		a = caa_container_of(n, struct attr_set, node);
		if (attr_tryref(a))
			break;
	}
	rcu_read_unlock();
	tsan_acquire(a);
	free(mine);             /* never published: no grace period needed */
	__atomic_fetch_add(&c->hits, 1, __ATOMIC_RELAXED);
	return a;
}

/*
 * One atomic add, no load-then-CAS loop: the checks look at the value it
 * replaced.  A set that was dead (0) or at the limit is a bug either way and
 * aborts before anyone can use the bad count.
 */
void attr_ref(struct attr_set *a)
{
	uint32_t v = __atomic_fetch_add(&a->refcnt, 1, __ATOMIC_RELAXED);

	if (caa_unlikely(v == 0))
		log_fatal("attr: reference taken on a released set %p", (void *)a);
	if (caa_unlikely(v >= ATTR_REF_MAX))
		log_fatal("attr: reference count overflow on set %p", (void *)a);
}

void attr_ref_n(struct attr_set *a, uint32_t n)
{
	if (n == 0)
		return;
	if (n >= ATTR_REF_MAX)
		log_fatal("attr: %u references at once on set %p", n, (void *)a);
	uint32_t v = __atomic_fetch_add(&a->refcnt, n, __ATOMIC_RELAXED);

	if (caa_unlikely(v == 0))
		log_fatal("attr: reference taken on a released set %p", (void *)a);
	if (caa_unlikely(v >= ATTR_REF_MAX - n))
		log_fatal("attr: reference count overflow on set %p", (void *)a);
}

static void attr_free_rcu(struct rcu_head *head)
{
	mem_thread_cache();
	free(caa_container_of(head, struct attr_set, rcu));
}

void attr_unref(struct attr_table *t, struct attr_set *a)
{
	uint32_t v = __atomic_fetch_sub(&a->refcnt, 1, __ATOMIC_ACQ_REL);
	struct attr_ctr *c;

	if (caa_unlikely(v == 0))
		log_fatal("attr: reference count underflow on set %p", (void *)a);
	if (v != 1)
		return;

	/* Last reference: we alone unlink it (a dying set is never revived). */
	c = attr_ctr(t);
	rcu_read_lock();
	if (cds_lfht_del(t->ht, &a->node) != 0)
		log_fatal("attr: released set %p was not in the table", (void *)a);
	rcu_read_unlock();
	__atomic_fetch_sub(&c->sets, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&c->bytes, (int64_t)malloc_usable_size(a), __ATOMIC_RELAXED);
	call_rcu(&a->rcu, attr_free_rcu);
}

void attr_unref_n(struct attr_table *t, struct attr_set *a, uint32_t n)
{
	if (n == 0)
		return;
	/* all but the last one cannot free the set */
	uint32_t v = __atomic_fetch_sub(&a->refcnt, n - 1, __ATOMIC_RELEASE);

	if (caa_unlikely(v < n))
		log_fatal("attr: reference count underflow on set %p", (void *)a);
	attr_unref(t, a);
}

void attr_table_stats(struct attr_table *t, struct attr_stats *st)
{
	int64_t sets = 0, bytes = 0;
	uint64_t interns = 0, hits = 0;

	for (unsigned i = 0; i < ATTR_STRIPES; i++) {
		sets += __atomic_load_n(&t->ctr[i].sets, __ATOMIC_RELAXED);
		bytes += __atomic_load_n(&t->ctr[i].bytes, __ATOMIC_RELAXED);
		interns += __atomic_load_n(&t->ctr[i].interns, __ATOMIC_RELAXED);
		hits += __atomic_load_n(&t->ctr[i].hits, __ATOMIC_RELAXED);
	}
	/* Stripes are read one by one, so a racing free can make the sum dip
	 * below zero for an instant. */
	st->sets = sets > 0 ? (uint64_t)sets : 0;
	st->bytes = bytes > 0 ? (uint64_t)bytes : 0;
	st->interns = interns;
	st->hits = hits;
	st->buckets = __atomic_load_n(&t->grow_goal, __ATOMIC_RELAXED);
}
