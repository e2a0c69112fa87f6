/*
 * routes.c - ricochet-load's route set: reproducible Internet-like prefixes,
 * attribute sets, canonical attribute blobs and pre-encoded UPDATE streams.
 *
 * Threads: generation and pre-encoding run on the main thread before any
 * worker starts; afterwards the set is read-only except the per-route churn
 * generation (written by the feeder thread only).  load_attrs_build() is pure
 * and is called by the monitor thread to rebuild the blob it expects.
 *
 * Why like this: every figure of a run must be reproducible from --seed, so
 * prefixes come from one xoshiro256** stream and each feeder's attributes from
 * its own stream.  Prefixes get a dense id (hash table over one array), which
 * lets a monitor keep its table as flat arrays indexed by id instead of a map
 * per monitor.  Each attribute set carries a private large community naming
 * (feeder, churn generation, set index), so a monitor can tell which route it
 * is looking at on any target, and rebuild the exact blob it should see.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench/load/load.h"
#include "core/log.h"

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void load_rng_seed(struct load_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t load_rng_next(struct load_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint32_t load_rng_below(struct load_rng *r, uint32_t n)
{
	return (uint32_t)(((load_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double rng_unit(struct load_rng *r)
{
	return (double)(load_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- distributions */

/* Prefix lengths weighted roughly like a 2024 global table (weights per 10000). */
static const uint16_t v4_len_w[33] = {
	[8] = 2, [9] = 2, [10] = 5, [11] = 10, [12] = 20, [13] = 35, [14] = 60, [15] = 90,
	[16] = 130, [17] = 90, [18] = 140, [19] = 250, [20] = 400, [21] = 450, [22] = 1100,
	[23] = 900, [24] = 6036, [25] = 60, [26] = 50, [27] = 40, [28] = 30, [29] = 40,
	[30] = 30, [31] = 10, [32] = 20,
};
static const uint16_t v6_len_w[65] = {
	[28] = 150, [29] = 400, [30] = 100, [31] = 50, [32] = 1200, [33] = 150, [34] = 150,
	[35] = 100, [36] = 300, [37] = 100, [38] = 150, [39] = 100, [40] = 500, [41] = 80,
	[42] = 150, [43] = 80, [44] = 900, [45] = 150, [46] = 400, [47] = 300, [48] = 4500,
	[56] = 250, [64] = 185,
};
/* AS path length 1..10, mean about 4.1. */
static const uint8_t aspath_len_w[11] = { 0, 3, 12, 25, 25, 16, 9, 5, 3, 1, 1 };

static unsigned pick_weighted(struct load_rng *r, const uint16_t *w, unsigned n)
{
	unsigned total = 0;
	for (unsigned i = 0; i < n; i++)
		total += w[i];
	unsigned x = load_rng_below(r, total);
	for (unsigned i = 0; i < n; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

/* ---------------------------------------------------------------- memory */

void *load_huge_alloc(size_t n)
{
	void *p = NULL;
	if (n < (2u << 20))
		return malloc(n ? n : 1);
	if (posix_memalign(&p, 2u << 20, n) != 0)
		return NULL;
	(void)madvise(p, n, MADV_HUGEPAGE);   /* a hint: THP may be off */
	return p;
}

/* ---------------------------------------------------------------- prefix hash */

static uint32_t pfx_hash(const struct bgp_prefix *p)
{
	uint64_t a, b;
	memcpy(&a, p->addr, 8);
	memcpy(&b, p->addr + 8, 8);
	uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
	h ^= ((uint64_t)p->len << 8 | p->family) * 0x165667B19E3779F9ull;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	return (uint32_t)(h ^ (h >> 32));
}

static bool pfx_eq(const struct bgp_prefix *a, const struct bgp_prefix *b)
{
	return a->family == b->family && a->len == b->len && memcmp(a->addr, b->addr, 16) == 0;
}

uint32_t load_routes_hash(const struct bgp_prefix *p)
{
	return pfx_hash(p);
}

/*
 * The table entry carries the key inline (first 8 address octets, length and
 * family), so a lookup costs one cache line, not two: the prefix array is
 * only read to confirm prefixes longer than 64 bits.
 */
static inline void hent_key(const struct bgp_prefix *p, uint64_t *k1, uint32_t *k2)
{
	memcpy(k1, p->addr, 8);
	*k2 = 1u | (uint32_t)p->len << 8 | (uint32_t)p->family << 16;
}

void load_routes_prefetch(const struct load_routes *rt, uint32_t h)
{
	__builtin_prefetch(&rt->hash[h & rt->hmask]);
}

uint32_t load_routes_lookup_h(const struct load_routes *rt, const struct bgp_prefix *p, uint32_t h)
{
	uint64_t k1;
	uint32_t k2;
	hent_key(p, &k1, &k2);
	uint32_t i = h & rt->hmask;
	for (uint32_t probes = 0; probes <= rt->hmask; probes++) {
		const struct load_hent *e = &rt->hash[i];
		if (e->k2 == 0)
			return UINT32_MAX;
		if (e->k2 == k2 && e->k1 == k1 && (p->len <= 64 || pfx_eq(&rt->pfx[e->id], p)))
			return e->id;
		i = (i + 1) & rt->hmask;
	}
	return UINT32_MAX;
}

uint32_t load_routes_lookup(const struct load_routes *rt, const struct bgp_prefix *p)
{
	return load_routes_lookup_h(rt, p, pfx_hash(p));
}

/* Insert pfx[id] unless an equal prefix is there; false on duplicate. */
static bool hash_insert(struct load_routes *rt, uint32_t id)
{
	const struct bgp_prefix *p = &rt->pfx[id];
	if (load_routes_lookup(rt, p) != UINT32_MAX)
		return false;
	uint32_t i = pfx_hash(p) & rt->hmask;
	while (rt->hash[i].k2 != 0)
		i = (i + 1) & rt->hmask;
	hent_key(p, &rt->hash[i].k1, &rt->hash[i].k2);
	rt->hash[i].id = id;
	return true;
}

static void mask_prefix(struct bgp_prefix *p)
{
	unsigned max = bgp_family_maxlen(p->family) / 8;
	for (unsigned i = 0; i < 16; i++) {
		unsigned bit = i * 8;
		if (i >= max || bit >= p->len)
			p->addr[i] = 0;
		else if (bit + 8 > p->len)
			p->addr[i] &= (uint8_t)(0xFF << (8 - (p->len - bit)));
	}
}

static void gen_prefix(struct load_routes *rt, struct load_rng *r, uint32_t id, unsigned fam)
{
	struct bgp_prefix *p = &rt->pfx[id];
	for (unsigned attempt = 0;; attempt++) {
		if (attempt > 1000000)
			log_fatal("ricochet-load: cannot find a free prefix (too many routes?)");
		unsigned len = fam == BGP_FAM_IPV4 ? pick_weighted(r, v4_len_w, 33)
						   : pick_weighted(r, v6_len_w, 65);
		/* short lengths run out of space quickly: retry a few times, then redraw */
		for (unsigned k = 0; k < 16; k++) {
			memset(p, 0, sizeof(*p));
			p->family = (uint8_t)fam;
			p->len = (uint8_t)len;
			uint64_t x = load_rng_next(r), y = load_rng_next(r);
			if (fam == BGP_FAM_IPV4) {
				/* unicast space 1.0.0.0 - 223.255.255.255 minus 10/8 and 127/8 */
				uint32_t a = (uint32_t)x;
				uint8_t o1 = (uint8_t)(1 + load_rng_below(r, 223));
				if (o1 == 10 || o1 == 127)
					o1 = 11;
				p->addr[0] = o1;
				p->addr[1] = (uint8_t)(a >> 16);
				p->addr[2] = (uint8_t)(a >> 8);
				p->addr[3] = (uint8_t)a;
			} else {
				/* 2001:: - 2c0f:: like the allocated global unicast space */
				uint16_t top = (uint16_t)(0x2001 + load_rng_below(r, 0x2c0f - 0x2001 + 1));
				memcpy(p->addr + 2, &x, 6);
				memcpy(p->addr + 8, &y, 8);
				p->addr[0] = (uint8_t)(top >> 8);
				p->addr[1] = (uint8_t)top;
			}
			mask_prefix(p);
			if (hash_insert(rt, id))
				return;
		}
	}
}

/* ---------------------------------------------------------------- attribute sets */

static uint32_t rand_asn(struct load_rng *r)
{
	/* about 40% of ASNs in paths are 4-octet ones these days */
	if (load_rng_below(r, 10) < 4)
		return 131072 + load_rng_below(r, 401308 - 131072);
	uint32_t a = 1 + load_rng_below(r, 64495);
	return a == BGP_AS_TRANS ? a + 1 : a;
}

static void gen_attrset(struct load_rng *r, struct load_attrset *s, const uint32_t *upstreams,
			bool ibgp, uint32_t feeder_asn)
{
	memset(s, 0, sizeof(*s));
	unsigned x = load_rng_below(r, 100);
	s->origin = x < 85 ? BGP_ORIGIN_IGP : x < 98 ? BGP_ORIGIN_INCOMPLETE : BGP_ORIGIN_EGP;
	unsigned len = 0, want = 0, t = load_rng_below(r, 100);
	for (want = 1; want < 10 && t >= aspath_len_w[want]; want++)
		t -= aspath_len_w[want];
	if (!ibgp)
		s->asn[len++] = feeder_asn;
	if (len < want)
		s->asn[len++] = upstreams[load_rng_below(r, 16)];
	while (len < want)
		s->asn[len++] = rand_asn(r);
	/* some origins prepend themselves */
	if (load_rng_below(r, 100) < 6) {
		unsigned extra = 1 + load_rng_below(r, 3);
		while (extra-- && len < LOAD_MAX_ASPATH) {
			s->asn[len] = s->asn[len - 1];
			len++;
		}
	}
	s->aspath_len = (uint8_t)len;
	if (load_rng_below(r, 100) < 40) {
		s->has_med = true;
		s->med = load_rng_below(r, 1000);
	}
	if (ibgp) {
		unsigned y = load_rng_below(r, 100);
		s->local_pref = y < 80 ? 100 : y < 90 ? 200 : y < 96 ? 90 : 50;
	}
	if (load_rng_below(r, 100) >= 30) {
		s->ncomm = (uint8_t)(1 + load_rng_below(r, LOAD_MAX_COMM));
		uint32_t hi = s->asn[0] <= 65535 ? s->asn[0] : 65000 + load_rng_below(r, 500);
		for (unsigned i = 0; i < s->ncomm; i++)
			s->comm[i] = hi << 16 | (100 + load_rng_below(r, 900));
		/* no well-known communities: NO_EXPORT would rightly stop routes at eBGP
		 * monitors and make the expected table depend on the target's policy */
	}
	if (load_rng_below(r, 100) < 15) {
		s->nlarge = (uint8_t)(1 + load_rng_below(r, LOAD_MAX_LARGE));
		for (unsigned i = 0; i < s->nlarge; i++) {
			s->large[i][0] = s->asn[len - 1];
			s->large[i][1] = 1 + load_rng_below(r, 9);
			s->large[i][2] = load_rng_below(r, 100000);
		}
	}
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put_hdr(uint8_t *p, uint8_t flags, uint8_t type, size_t len)
{
	if (len > 255) {
		*p++ = flags | BGP_ATTR_F_EXTLEN;
		*p++ = type;
		*p++ = (uint8_t)(len >> 8);
		*p++ = (uint8_t)len;
	} else {
		*p++ = flags;
		*p++ = type;
		*p++ = (uint8_t)len;
	}
	return p;
}

size_t load_attrs_build(const struct load_routes *rt, unsigned f, uint32_t a, uint16_t gen,
			uint64_t ts, uint8_t *out, size_t cap)
{
	const struct load_attrset *s = &rt->f[f].sets[a];
	/* worst case: 4 + 4+4*10 + 7 + 7 + 4+4*8 + 4+12*5 = 162 */
	if (cap < 200)
		return 0;
	uint8_t *p = out;
	p = put_hdr(p, BGP_ATTR_F_TRANSITIVE, BGP_ATTR_ORIGIN, 1);
	*p++ = s->origin;
	p = put_hdr(p, BGP_ATTR_F_TRANSITIVE, BGP_ATTR_AS_PATH, 2 + 4u * s->aspath_len);
	*p++ = BGP_AS_SEQUENCE;
	*p++ = s->aspath_len;
	for (unsigned i = 0; i < s->aspath_len; i++)
		p = put32(p, s->asn[i]);
	if (s->has_med || (gen & 1)) {
		p = put_hdr(p, BGP_ATTR_F_OPTIONAL, BGP_ATTR_MED, 4);
		p = put32(p, s->med + (gen & 1));
	}
	if (rt->ibgp) {
		p = put_hdr(p, BGP_ATTR_F_TRANSITIVE, BGP_ATTR_LOCAL_PREF, 4);
		p = put32(p, s->local_pref);
	}
	if (s->ncomm) {
		p = put_hdr(p, BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE, BGP_ATTR_COMMUNITIES,
			    4u * s->ncomm);
		for (unsigned i = 0; i < s->ncomm; i++)
			p = put32(p, s->comm[i]);
	}
	unsigned nl = 1 + s->nlarge + (ts ? 1 : 0);
	p = put_hdr(p, BGP_ATTR_F_OPTIONAL | BGP_ATTR_F_TRANSITIVE, BGP_ATTR_LARGE_COMMUNITY, 12u * nl);
	p = put32(p, LOAD_LC_TAG);
	p = put32(p, (uint32_t)f << 16 | gen);
	p = put32(p, a);
	for (unsigned i = 0; i < s->nlarge; i++) {
		p = put32(p, s->large[i][0]);
		p = put32(p, s->large[i][1]);
		p = put32(p, s->large[i][2]);
	}
	if (ts) {
		p = put32(p, LOAD_LC_TS);
		p = put32(p, (uint32_t)(ts >> 32));
		p = put32(p, (uint32_t)ts);
	}
	return (size_t)(p - out);
}

/* ---------------------------------------------------------------- layout */

uint32_t load_routes_pid(const struct load_routes *rt, unsigned f, uint32_t j)
{
	uint32_t n4 = rt->shared ? rt->r4 : rt->r4 * rt->nfeeders;
	if (j < rt->r4)
		return rt->shared ? j : f * rt->r4 + j;
	return n4 + (rt->shared ? 0 : f * rt->r6) + (j - rt->r4);
}

bool load_routes_local(const struct load_routes *rt, unsigned f, uint32_t pid, uint32_t *j)
{
	uint32_t n4 = rt->shared ? rt->r4 : rt->r4 * rt->nfeeders;
	if (f >= rt->nfeeders || pid >= rt->npfx)
		return false;
	if (rt->shared) {
		*j = pid;
		return true;
	}
	if (pid < n4) {
		if (pid / rt->r4 != f)
			return false;
		*j = pid % rt->r4;
		return true;
	}
	pid -= n4;
	if (pid / rt->r6 != f)
		return false;
	*j = rt->r4 + pid % rt->r6;
	return true;
}

/*
 * Sort one family's attribute indices ascending (counting sort: values are
 * below nattr).  The multiset is unchanged - the same sets carry the same
 * numbers of prefixes - but each set's prefixes get consecutive ids.  A
 * target sends a set's prefixes together (any reflector groups by attribute
 * set), so a monitor applying an UPDATE writes a few adjacent table slots
 * instead of one scattered cache miss per prefix: with 1000 monitors x 100k
 * prefixes (S4, 1.2 GB of slots) those misses were the monitor thread's
 * largest cost and made the generator S4's bottleneck.  What a target sees
 * is alike in every respect it can measure: the addresses behind the ids
 * are independent random draws, so a set's prefixes are as scattered in the
 * address space as before, and the feeders send in the same (set, family)
 * order.
 */
static void sort_attrs(uint32_t *a, uint32_t n, uint32_t nattr)
{
	if (n < 2)
		return;
	uint32_t *cnt = calloc((size_t)nattr + 1, sizeof(*cnt));
	if (!cnt)
		log_fatal("ricochet-load: out of memory sorting %u attribute indices", n);
	for (uint32_t j = 0; j < n; j++)
		cnt[a[j]]++;
	uint32_t j = 0;
	for (uint32_t v = 0; v < nattr; v++)
		for (uint32_t k = 0; k < cnt[v]; k++)
			a[j++] = v;
	free(cnt);
}

void load_routes_generate(struct load_routes *rt, const struct load_gen_params *gp)
{
	uint64_t t0 = log_now_ns();
	memset(rt, 0, sizeof(*rt));
	rt->nfeeders = gp->feeders;
	rt->shared = gp->shared;
	rt->ibgp = gp->ibgp;
	rt->feeder_asn = gp->feeder_asn;
	rt->r4 = gp->r4;
	rt->r6 = gp->r6;
	uint64_t n4 = gp->shared ? gp->r4 : (uint64_t)gp->r4 * gp->feeders;
	uint64_t n6 = gp->shared ? gp->r6 : (uint64_t)gp->r6 * gp->feeders;
	if (n4 + n6 > 200000000ull || n4 > 12000000ull)
		log_fatal("ricochet-load: %llu prefixes is more than this tool generates",
			  (unsigned long long)(n4 + n6));
	rt->npfx = (uint32_t)(n4 + n6);
	rt->pfx = calloc(rt->npfx ? rt->npfx : 1, sizeof(*rt->pfx));
	uint32_t hsize = 16;
	while (hsize < 2 * rt->npfx)
		hsize <<= 1;
	rt->hash = load_huge_alloc((size_t)hsize * sizeof(*rt->hash));
	if (rt->hash)
		memset(rt->hash, 0, (size_t)hsize * sizeof(*rt->hash));
	rt->hmask = hsize - 1;
	rt->f = calloc(gp->feeders, sizeof(*rt->f));
	if (!rt->pfx || !rt->hash || !rt->f)
		log_fatal("ricochet-load: out of memory for %u prefixes", rt->npfx);

	struct load_rng r;
	load_rng_seed(&r, gp->seed, 0);
	for (uint32_t id = 0; id < rt->npfx; id++)
		gen_prefix(rt, &r, id, id < n4 ? BGP_FAM_IPV4 : BGP_FAM_IPV6);

	for (unsigned f = 0; f < gp->feeders; f++) {
		struct load_feeder_routes *fr = &rt->f[f];
		struct load_rng fr_rng;
		load_rng_seed(&fr_rng, gp->seed, 1 + f);
		fr->n = gp->r4 + gp->r6;
		double ppa = gp->prefixes_per_attr > 0 ? gp->prefixes_per_attr : 7.0;
		fr->nattr = (uint32_t)(fr->n / ppa);
		if ((double)fr->nattr * ppa < (double)fr->n)
			fr->nattr++;
		if (fr->nattr == 0)
			fr->nattr = 1;
		if (fr->nattr > LOAD_F_MASK)
			fr->nattr = LOAD_F_MASK;
		fr->sets = calloc(fr->nattr, sizeof(*fr->sets));
		fr->attr = calloc(fr->n ? fr->n : 1, sizeof(uint32_t));
		fr->gen = calloc(fr->n ? fr->n : 1, sizeof(uint16_t));
		fr->sent_ns = calloc(fr->n ? fr->n : 1, sizeof(uint64_t));
		if (!fr->sets || !fr->attr || !fr->gen || !fr->sent_ns)
			log_fatal("ricochet-load: out of memory for feeder %u routes", f);
		uint32_t up[16];
		for (unsigned i = 0; i < 16; i++)
			up[i] = rand_asn(&fr_rng);
		for (uint32_t a = 0; a < fr->nattr; a++)
			gen_attrset(&fr_rng, &fr->sets[a], up, gp->ibgp, gp->feeder_asn);
		/* every set used once, then a skewed share (a few sets carry many prefixes) */
		for (uint32_t j = 0; j < fr->n; j++) {
			if (j < fr->nattr) {
				fr->attr[j] = j;
			} else {
				double u = rng_unit(&fr_rng);
				uint32_t a = (uint32_t)(u * u * fr->nattr);
				fr->attr[j] = a < fr->nattr ? a : fr->nattr - 1;
			}
		}
		sort_attrs(fr->attr, gp->r4, fr->nattr);
		sort_attrs(fr->attr + gp->r4, gp->r6, fr->nattr);
	}
	rt->gen_ns = log_now_ns() - t0;
}

void load_routes_free(struct load_routes *rt)
{
	for (unsigned f = 0; rt->f && f < rt->nfeeders; f++) {
		free(rt->f[f].sets);
		free(rt->f[f].attr);
		free((void *)rt->f[f].gen);
		free((void *)rt->f[f].sent_ns);
	}
	free(rt->f);
	free(rt->pfx);
	free(rt->hash);
	memset(rt, 0, sizeof(*rt));
}

/* ---------------------------------------------------------------- pre-encoding */

void load_bytes_reserve(struct load_bytes *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *d = realloc(b->data, cap);
	if (!d)
		log_fatal("ricochet-load: out of memory (%zu bytes)", cap);
	b->data = d;
	b->cap = cap;
}

void load_bytes_free(struct load_bytes *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t count_msgs(const uint8_t *p, size_t len)
{
	size_t n = 0, off = 0;
	while (off + BGP_HDR_LEN <= len) {
		off += bgp_get16(p + off + 16);
		n++;
	}
	return n;
}

/* Pack pfx[0..n) with the packer, growing out as needed. */
static void pack_all(struct load_bytes *out, size_t max_msg, unsigned fam, bool withdraw,
		     const uint8_t *attrs, size_t alen, const struct bgp_nexthop *nh,
		     const struct bgp_prefix *pfx, size_t n)
{
	while (n) {
		load_bytes_reserve(out, max_msg * 4);
		size_t used = 0, w;
		if (withdraw)
			w = msg_withdraw_pack(out->data + out->len, out->cap - out->len, max_msg, fam,
					      false, pfx, n, &used);
		else
			w = msg_update_pack(out->data + out->len, out->cap - out->len, max_msg, fam,
					    false, attrs, alen, nh, pfx, n, &used);
		if (used == 0 && w == 0)
			log_fatal("ricochet-load: UPDATE packer made no progress (attrs %zu octets)", alen);
		out->len += w;
		pfx += used;
		n -= used;
	}
}

/* Local indices of feeder f sorted by (attribute set, family). */
static uint32_t *sorted_routes(const struct load_routes *rt, unsigned f)
{
	const struct load_feeder_routes *fr = &rt->f[f];
	uint32_t nkeys = fr->nattr * 2;
	uint32_t *cnt = calloc(nkeys + 1, sizeof(uint32_t));
	uint32_t *order = malloc((fr->n ? fr->n : 1) * sizeof(uint32_t));
	if (!cnt || !order)
		log_fatal("ricochet-load: out of memory sorting routes");
	for (uint32_t j = 0; j < fr->n; j++)
		cnt[fr->attr[j] * 2 + (j >= rt->r4) + 1]++;
	for (uint32_t k = 0; k < nkeys; k++)
		cnt[k + 1] += cnt[k];
	for (uint32_t j = 0; j < fr->n; j++)
		order[cnt[fr->attr[j] * 2 + (j >= rt->r4)]++] = j;
	free(cnt);
	return order;
}

size_t load_encode_announce(const struct load_routes *rt, unsigned f, size_t max_msg,
			    const struct bgp_nexthop *nh4, const struct bgp_nexthop *nh6,
			    bool eor4, bool eor6, struct load_bytes *out)
{
	const struct load_feeder_routes *fr = &rt->f[f];
	uint32_t *order = sorted_routes(rt, f);
	struct bgp_prefix *grp = malloc((fr->n ? fr->n : 1) * sizeof(*grp));
	if (!grp)
		log_fatal("ricochet-load: out of memory encoding");
	uint8_t blob[LOAD_BLOB_MAX];
	out->len = 0;
	for (uint32_t i = 0; i < fr->n;) {
		uint32_t a = fr->attr[order[i]];
		bool v6 = order[i] >= rt->r4;
		size_t n = 0;
		while (i < fr->n && fr->attr[order[i]] == a && (order[i] >= rt->r4) == v6) {
			grp[n] = rt->pfx[load_routes_pid(rt, f, order[i])];
			grp[n].path_id = 0;
			n++;
			i++;
		}
		size_t alen = load_attrs_build(rt, f, a, 0, 0, blob, sizeof(blob));
		pack_all(out, max_msg, v6 ? BGP_FAM_IPV6 : BGP_FAM_IPV4, false, blob, alen,
			 v6 ? nh6 : nh4, grp, n);
	}
	load_bytes_reserve(out, 64);
	if (eor4)
		out->len += msg_eor_encode(out->data + out->len, out->cap - out->len, BGP_FAM_IPV4);
	if (eor6)
		out->len += msg_eor_encode(out->data + out->len, out->cap - out->len, BGP_FAM_IPV6);
	free(grp);
	free(order);
	return count_msgs(out->data, out->len);
}

size_t load_encode_withdraw(const struct load_routes *rt, unsigned f, size_t max_msg,
			    struct load_bytes *out)
{
	const struct load_feeder_routes *fr = &rt->f[f];
	struct bgp_prefix *grp = malloc((fr->n ? fr->n : 1) * sizeof(*grp));
	if (!grp)
		log_fatal("ricochet-load: out of memory encoding");
	out->len = 0;
	for (uint32_t j = 0; j < fr->n; j++)
		grp[j] = rt->pfx[load_routes_pid(rt, f, j)];
	if (rt->r4)
		pack_all(out, max_msg, BGP_FAM_IPV4, true, NULL, 0, NULL, grp, rt->r4);
	if (rt->r6)
		pack_all(out, max_msg, BGP_FAM_IPV6, true, NULL, 0, NULL, grp + rt->r4, rt->r6);
	free(grp);
	return count_msgs(out->data, out->len);
}

/* ---------------------------------------------------------------- self-test */

static int st_fail;
#define ST_CHECK(cond, ...) LOAD_ST_CHECK(st_fail, cond, __VA_ARGS__)

static uint64_t checksum_routes(const struct load_routes *rt)
{
	uint64_t h = 1469598103934665603ull;
	for (uint32_t i = 0; i < rt->npfx; i++)
		h = (h ^ pfx_hash(&rt->pfx[i])) * 1099511628211ull;
	for (unsigned f = 0; f < rt->nfeeders; f++)
		for (uint32_t a = 0; a < rt->f[f].nattr; a++)
			h = (h ^ rt->f[f].sets[a].asn[0] ^ rt->f[f].sets[a].aspath_len) * 1099511628211ull;
	return h;
}

/* Decode one pre-encoded stream and check it carries exactly feeder f's routes. */
static void st_decode(const struct load_routes *rt, unsigned f, const struct load_bytes *b,
		      bool withdraw, const struct bgp_nexthop *nh4)
{
	struct msg_session s = {
		.as4 = true, .ebgp = !rt->ibgp, .family = { true, true }, .max_msg = BGP_MAX_MSG,
		.peer_as = rt->feeder_asn, .local_as = rt->feeder_asn,
	};
	uint8_t *scratch = malloc(MSG_SCRATCH_SIZE);
	uint8_t *seen = calloc(rt->f[f].n + 1, 1);
	uint8_t blob[LOAD_BLOB_MAX];
	size_t off = 0, prefixes = 0, eors = 0, bad_attr = 0, bad_nh = 0, foreign = 0, errs = 0;
	while (off < b->len) {
		struct msg_error err;
		int l = msg_frame(b->data + off, b->len - off, BGP_MAX_MSG, &err);
		if (l <= 0) {
			ST_CHECK(0, "bad framing at offset %zu", off);
			break;
		}
		struct msg_update u;
		msg_update_parse(b->data + off, (size_t)l, &s, scratch, &u, &err);
		if (err.action != MSG_OK) {
			errs++;
			if (errs < 3)
				fprintf(stderr, "self-test: parse verdict %d (%s)\n", err.action,
					err.reason ? err.reason : "?");
		}
		if (u.eor_family != BGP_FAM_NONE)
			eors++;
		const struct msg_nlri *blocks[2] = { withdraw ? &u.withdrawn : &u.nlri,
						      withdraw ? &u.mp_unreach : &u.mp_reach };
		for (int k = 0; k < 2; k++) {
			struct msg_nlri_iter it;
			struct bgp_prefix p;
			if (!blocks[k]->p)
				continue;
			msg_nlri_iter_init(&it, blocks[k]);
			while (msg_nlri_next(&it, &p)) {
				uint32_t pid = load_routes_lookup(rt, &p), j;
				if (pid == UINT32_MAX || !load_routes_local(rt, f, pid, &j)) {
					foreign++;
					continue;
				}
				prefixes++;
				seen[j]++;
				if (withdraw)
					continue;
				size_t alen = load_attrs_build(rt, f, rt->f[f].attr[j], 0, 0, blob,
							       sizeof(blob));
				if (alen != u.attrs_len || memcmp(blob, u.attrs, alen) != 0)
					bad_attr++;
				if (k == 0 && (u.nexthop4.len != 4 || memcmp(u.nexthop4.addr, nh4->addr, 4)))
					bad_nh++;
			}
		}
		off += (size_t)l;
	}
	size_t dup = 0;
	for (uint32_t j = 0; j < rt->f[f].n; j++)
		dup += seen[j] != 1;
	ST_CHECK(prefixes == rt->f[f].n, "feeder %u: decoded %zu prefixes, want %u", f, prefixes,
		 rt->f[f].n);
	ST_CHECK(dup == 0, "feeder %u: %zu routes not seen exactly once", f, dup);
	ST_CHECK(foreign == 0, "feeder %u: %zu foreign prefixes", f, foreign);
	ST_CHECK(bad_attr == 0, "feeder %u: %zu prefixes with other attributes", f, bad_attr);
	ST_CHECK(bad_nh == 0, "feeder %u: %zu prefixes with a wrong next hop", f, bad_nh);
	ST_CHECK(errs == 0, "feeder %u: %zu parse verdicts", f, errs);
	ST_CHECK(eors == (withdraw ? 0u : (rt->r4 ? 1u : 0u) + (rt->r6 ? 1u : 0u)),
		 "feeder %u: %zu End-of-RIB markers", f, eors);
	free(seen);
	free(scratch);
}

int load_routes_selftest(void)
{
	st_fail = 0;
	static const struct {
		const char *what;
		unsigned feeders;
		uint32_t r4, r6;
		bool shared, ibgp;
	} cases[] = {
		{ "disjoint iBGP v4+v6", 3, 6000, 1500, false, true },
		{ "shared iBGP v4", 2, 4000, 0, true, true },
		{ "disjoint eBGP v6 only", 2, 0, 3000, false, false },
		{ "shared eBGP v4+v6", 3, 2000, 700, true, false },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct load_gen_params gp = {
			.feeders = cases[c].feeders, .r4 = cases[c].r4, .r6 = cases[c].r6,
			.shared = cases[c].shared, .ibgp = cases[c].ibgp, .feeder_asn = 4200000001u,
			.prefixes_per_attr = 7, .seed = 42 + c,
		};
		struct load_routes rt;
		load_routes_generate(&rt, &gp);
		uint64_t n4 = gp.shared ? gp.r4 : (uint64_t)gp.r4 * gp.feeders;
		uint64_t n6 = gp.shared ? gp.r6 : (uint64_t)gp.r6 * gp.feeders;
		ST_CHECK(rt.npfx == n4 + n6, "%s: %u prefixes", cases[c].what, rt.npfx);

		/* every prefix findable, host bits clear, lengths look like a table */
		uint64_t len24 = 0, len48 = 0, lookup_bad = 0, host_bits = 0, long4 = 0;
		for (uint32_t i = 0; i < rt.npfx; i++) {
			struct bgp_prefix p = rt.pfx[i];
			if (load_routes_lookup(&rt, &p) != i)
				lookup_bad++;
			struct bgp_prefix q = p;
			mask_prefix(&q);
			host_bits += memcmp(q.addr, p.addr, 16) != 0;
			if (p.family == BGP_FAM_IPV4) {
				len24 += p.len == 24;
				long4 += p.len > 24;
			} else {
				len48 += p.len == 48;
			}
		}
		ST_CHECK(lookup_bad == 0, "%s: %llu prefixes not found", cases[c].what,
			 (unsigned long long)lookup_bad);
		ST_CHECK(host_bits == 0, "%s: host bits set", cases[c].what);
		if (n4) {
			double f24 = (double)len24 / n4;
			ST_CHECK(f24 > 0.5 && f24 < 0.7, "%s: /24 share %.2f", cases[c].what, f24);
			ST_CHECK(long4 > 0 && long4 < n4 / 20, "%s: %llu longer than /24", cases[c].what,
				 (unsigned long long)long4);
		}
		if (n6) {
			double f48 = (double)len48 / n6;
			ST_CHECK(f48 > 0.35 && f48 < 0.55, "%s: /48 share %.2f", cases[c].what, f48);
		}
		struct bgp_prefix absent = { .family = BGP_FAM_IPV4, .len = 8, .addr = { 10 } };
		ST_CHECK(load_routes_lookup(&rt, &absent) == UINT32_MAX, "10/8 should not exist");

		/* (feeder, j) <-> prefix id round trip */
		uint64_t rt_bad = 0;
		for (unsigned f = 0; f < rt.nfeeders; f++)
			for (uint32_t j = 0; j < rt.f[f].n; j++) {
				uint32_t pid = load_routes_pid(&rt, f, j), back;
				if (pid >= rt.npfx || !load_routes_local(&rt, f, pid, &back) || back != j)
					rt_bad++;
				if ((j < rt.r4) != (rt.pfx[pid].family == BGP_FAM_IPV4))
					rt_bad++;
				if (!gp.shared && load_routes_local(&rt, (f + 1) % rt.nfeeders, pid, &back) &&
				    rt.nfeeders > 1)
					rt_bad++;
			}
		ST_CHECK(rt_bad == 0, "%s: %llu layout errors", cases[c].what, (unsigned long long)rt_bad);

		/* attributes: mean AS path length, sets per prefix, blob well formed */
		const struct load_feeder_routes *fr = &rt.f[0];
		double mean = 0;
		for (uint32_t a = 0; a < fr->nattr; a++)
			mean += fr->sets[a].aspath_len;
		mean /= fr->nattr;
		ST_CHECK(mean > 3.0 && mean < 5.5, "%s: mean AS path %.2f", cases[c].what, mean);
		ST_CHECK(fr->nattr == (fr->n + 6) / 7, "%s: %u attribute sets for %u routes", cases[c].what,
			 fr->nattr, fr->n);
		uint8_t blob[LOAD_BLOB_MAX], blob2[LOAD_BLOB_MAX];
		size_t bl = load_attrs_build(&rt, 1, 5, 3, 123456789ull, blob, sizeof(blob));
		struct msg_attr_iter it;
		struct msg_attr at;
		int last = 0, n = 0;
		bool tag = false, ts = false;
		msg_attr_iter_init(&it, blob, bl);
		while (msg_attr_next(&it, &at)) {
			ST_CHECK(at.type > last, "attributes out of order");
			last = at.type;
			n++;
			if (at.type == BGP_ATTR_LARGE_COMMUNITY)
				for (unsigned k = 0; k + 12 <= at.len; k += 12) {
					const uint8_t *v = at.value + k;
					uint32_t g = bgp_get32(v);
					uint32_t d1 = bgp_get32(v + 4);
					if (g == LOAD_LC_TAG && d1 == (1u << 16 | 3))
						tag = true;
					if (g == LOAD_LC_TS)
						ts = true;
				}
			if (at.type == BGP_ATTR_MED)
				ST_CHECK(at.len == 4, "MED length");
			if (at.type == BGP_ATTR_LOCAL_PREF)
				ST_CHECK(cases[c].ibgp, "LOCAL_PREF on eBGP");
		}
		ST_CHECK(n >= 3 && tag && ts, "%s: blob has %d attributes, tag %d ts %d", cases[c].what, n,
			 tag, ts);
		size_t bl2 = load_attrs_build(&rt, 1, 5, 2, 0, blob2, sizeof(blob2));
		ST_CHECK(bl2 != bl || memcmp(blob, blob2, bl) != 0, "generations must differ");
		if (!cases[c].ibgp)
			ST_CHECK(rt.f[1].sets[5].asn[0] == gp.feeder_asn, "eBGP path must start with feeder AS");

		/* pre-encoding decodes back to exactly each feeder's routes */
		struct bgp_nexthop nh4 = { .len = 4, .addr = { 127, 0, 1, 1 } };
		struct bgp_nexthop nh6 = { .len = 16, .addr = { 0 } };
		nh6.addr[10] = nh6.addr[11] = 0xff;
		memcpy(nh6.addr + 12, nh4.addr, 4);
		for (unsigned f = 0; f < rt.nfeeders; f++) {
			struct load_bytes b = { 0 };
			load_encode_announce(&rt, f, BGP_MAX_MSG, &nh4, &nh6, rt.r4 > 0, rt.r6 > 0, &b);
			st_decode(&rt, f, &b, false, &nh4);
			load_encode_withdraw(&rt, f, BGP_MAX_MSG, &b);
			st_decode(&rt, f, &b, true, &nh4);
			load_bytes_free(&b);
		}

		/* reproducible from the seed, different with another seed */
		uint64_t h1 = checksum_routes(&rt);
		load_routes_free(&rt);
		load_routes_generate(&rt, &gp);
		ST_CHECK(checksum_routes(&rt) == h1, "%s: same seed, other routes", cases[c].what);
		load_routes_free(&rt);
		gp.seed++;
		load_routes_generate(&rt, &gp);
		ST_CHECK(checksum_routes(&rt) != h1, "%s: other seed, same routes", cases[c].what);
		load_routes_free(&rt);
	}
	/* histogram percentiles */
	static struct load_hist h;
	memset(&h, 0, sizeof(h));
	for (uint64_t i = 1; i <= 1000; i++)
		load_hist_add(&h, i * 1000);     /* 1 us .. 1 ms */
	uint64_t p50 = load_hist_pct(&h, 50), p99 = load_hist_pct(&h, 99);
	ST_CHECK(p50 > 480000 && p50 < 520000, "p50 %llu", (unsigned long long)p50);
	ST_CHECK(p99 > 970000 && p99 < 1010000, "p99 %llu", (unsigned long long)p99);
	ST_CHECK(h.max_ns == 1000000, "max %llu", (unsigned long long)h.max_ns);
	st_fail += load_mon_selftest();
	fprintf(stderr, "ricochet-load self-test: %s (%d failures)\n", st_fail ? "FAIL" : "ok", st_fail);
	return st_fail ? 1 : 0;
}
