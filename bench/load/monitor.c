/*
 * monitor.c - ricochet-load's monitors: decode every UPDATE the target sends,
 * keep a table per monitor, decide when the table is complete, verify it, and
 * measure churn propagation latency.
 *
 * Threads: everything here runs on the monitor thread, which owns the tables.
 * The main thread only reads the atomics (filled, extra, done_ns, eor_ns) while
 * the run goes, and the rest after a LOAD_CMD_VERIFY round trip.
 *
 * Why like this: the expected prefixes are known up front and have dense ids
 * (routes.c), so a monitor's table is one flat array indexed by
 * id * paths-per-prefix, no allocation per prefix.  Each entry is a 4-octet
 * tag: the monitor thread interns every (feeder, generation, attribute set +
 * verdict flags) it meets into a dense index (tag_intern), and there are few
 * of them (one per attribute set and generation), so a path costs a monitor
 * 4 octets, 8 with ADD-PATH (a parallel array of path ids).  Tables of 1000
 * monitors x a full table fit in memory next to the daemon under test, and
 * the few adjacent slots an UPDATE writes share a cache line.  Prefixes that
 * are not ours go to a small side hash (there should be none).  Attributes are
 * checked once per UPDATE (not per prefix): the tag names the attribute set,
 * so the monitor rebuilds the blob it should see and compares it byte for byte
 * with what arrived, minus the reflector's ORIGINATOR_ID and CLUSTER_LIST.
 *
 * Every monitor receives the same UPDATEs (a reflector's clients, the null
 * relay's receivers), so parsing each copy was the generator's ceiling.  The
 * memo (struct load_memo) records what the first decode of a message did -
 * withdrawn ids, announced ids, tag and verdict flags - under the message's
 * bytes and the session parameters that change decoding; a later monitor
 * with the same bytes (memcmp over the whole message) applies the ids to its
 * own table.  The table updates are then the cost, and they are scattered:
 * the read loop (peer.c) hints the caches for the messages ahead in three
 * stages (load_mon_prefetch).  Messages that touch a prefix that is not ours,
 * End-of-RIBs and errors are never remembered, so what is counted and checked
 * is the same as decoding every copy.
 */
#include <stdlib.h>
#include <string.h>

#include "bench/load/load.h"
#include "core/log.h"

void load_mon_init(struct load_mon *m, struct load_ctx *ctx, struct load_peer *p)
{
	memset(m, 0, sizeof(*m));
	m->peer = p;
	p->mon = m;
	m->nslots = ctx->o.addpath ? ctx->o.addpath : 1;
	/* one flat table per monitor (a prefix-major table shared by all monitors
	 * was tried: slower at S3 size, and the verification pass strides) */
	m->stride = m->nslots;
	size_t n = (size_t)ctx->rt.npfx * m->stride;
	m->slots = load_huge_alloc((n ? n : 1) * sizeof(*m->slots));
	if (m->nslots > 1)
		m->slot_paths = load_huge_alloc((n ? n : 1) * sizeof(*m->slot_paths));
	if (!m->slots || (m->nslots > 1 && !m->slot_paths))
		log_fatal("ricochet-load: out of memory for monitor tables (%zu paths)", n);
	memset(m->slots, 0xFF, (n ? n : 1) * sizeof(*m->slots));    /* LOAD_TAG_EMPTY */
	if (m->slot_paths)
		memset(m->slot_paths, 0, (n ? n : 1) * sizeof(*m->slot_paths));
	m->per_feeder = calloc(ctx->o.feeders + 1, sizeof(uint64_t));
	m->scratch = malloc(MSG_SCRATCH_SIZE);
	m->debug_left = 8;
	m->xcap = 64;
	m->xtab = calloc(m->xcap, sizeof(*m->xtab));
	m->xused = calloc(m->xcap, 1);
	if (!m->per_feeder || !m->scratch || !m->xtab || !m->xused)
		log_fatal("ricochet-load: out of memory for monitor %u", p->idx);
}

/* ---------------------------------------------------------------- latency histogram */

/*
 * Log-linear buckets over 100 ns units: exact below 128 units, then 64
 * sub-buckets per power of two (1.6% wide), no libm needed.
 */
static unsigned hist_bucket(uint64_t ns)
{
	uint64_t v = ns / 100;
	if (v < 128)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v), shift = msb - 6;
	unsigned b = 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
	return b < LOAD_LAT_BUCKETS ? b : LOAD_LAT_BUCKETS - 1;
}

static uint64_t hist_value(unsigned b)
{
	if (b < 128)
		return (uint64_t)b * 100 + 50;
	unsigned shift = (b - 128) / 64 + 1;
	uint64_t top = 64 + (b - 128) % 64;
	return ((top << shift) + (1ull << shift) / 2) * 100;
}

void load_hist_add(struct load_hist *h, uint64_t ns)
{
	h->n++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->b[hist_bucket(ns)]++;
}

void load_hist_merge(struct load_hist *dst, const struct load_hist *src)
{
	dst->n += src->n;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	for (unsigned i = 0; i < LOAD_LAT_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

uint64_t load_hist_pct(const struct load_hist *h, double pct)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)(pct / 100.0 * (double)h->n + 0.999999), acc = 0;
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < LOAD_LAT_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want) {
			uint64_t v = hist_value(i);
			return v > h->max_ns ? h->max_ns : v;
		}
	}
	return h->max_ns;
}

/* ---------------------------------------------------------------- extras */

static uint32_t x_hash(const struct bgp_prefix *p)
{
	uint32_t h = 2166136261u;
	const uint8_t *b = (const uint8_t *)p;
	for (size_t i = 0; i < sizeof(*p); i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void x_grow(struct load_mon *m);

static void x_set(struct load_mon *m, const struct bgp_prefix *p, bool present)
{
	struct bgp_prefix k = *p;
	memset(k.pad, 0, sizeof(k.pad));
	size_t i = x_hash(&k) & (m->xcap - 1);
	for (size_t probes = 0; probes < m->xcap; probes++) {
		if (!m->xused[i]) {
			if (!present)
				return;
			m->xused[i] = 1;
			m->xtab[i] = k;
			m->xn++;
			load_count(&m->extra, 1);
			if (m->xn * 2 > m->xcap)
				x_grow(m);
			return;
		}
		if (m->xused[i] == 1 && memcmp(&m->xtab[i], &k, sizeof(k)) == 0) {
			if (!present) {
				m->xused[i] = 2;   /* tombstone */
				load_count(&m->extra, UINT64_MAX);
			}
			return;
		}
		i = (i + 1) & (m->xcap - 1);
	}
}

static void x_grow(struct load_mon *m)
{
	struct bgp_prefix *ot = m->xtab;
	uint8_t *ou = m->xused;
	size_t oc = m->xcap;
	m->xcap *= 2;
	m->xtab = calloc(m->xcap, sizeof(*m->xtab));
	m->xused = calloc(m->xcap, 1);
	if (!m->xtab || !m->xused)
		log_fatal("ricochet-load: out of memory (extras)");
	m->xn = 0;
	uint64_t e = atomic_load(&m->extra);
	for (size_t i = 0; i < oc; i++)
		if (ou[i] == 1)
			x_set(m, &ot[i], true);
	atomic_store(&m->extra, e);
	free(ot);
	free(ou);
}

/* ---------------------------------------------------------------- table ops */

static const struct load_tag *tag_of(const struct load_mon *m, uint32_t tag);

/* Hold tag (whose fg is fg) for (pid, path_id). */
static void slot_set(struct load_ctx *ctx, struct load_mon *m, uint32_t pid, uint32_t path_id,
		     uint32_t tag, uint32_t fg)
{
	size_t base = (size_t)pid * m->stride, hit = SIZE_MAX, free_slot = SIZE_MAX;
	for (size_t k = base; k < base + m->nslots; k++) {
		if (m->slots[k] == LOAD_TAG_EMPTY) {
			if (free_slot == SIZE_MAX)
				free_slot = k;
		} else if (m->nslots == 1 || m->slot_paths[k] == path_id) {
			hit = k;
			break;
		}
	}
	unsigned nf = ctx->o.feeders, f = fg >> 16;
	if (hit != SIZE_MAX) {
		/* tags are interned: equal tags are equal (feeder, gen, attributes) */
		if (m->slots[hit] == tag)
			load_count(&m->dup_announces, 1);
		else
			load_count(&m->replaced, 1);
		unsigned of = tag_of(m, m->slots[hit])->fg >> 16;
		m->per_feeder[of < nf ? of : nf]--;
	} else if (free_slot != SIZE_MAX) {
		hit = free_slot;
		load_count(&m->filled, 1);
	} else {
		m->overflow++;
		return;
	}
	m->slots[hit] = tag;
	if (m->slot_paths)
		m->slot_paths[hit] = path_id;
	m->per_feeder[f < nf ? f : nf]++;
}

static void slot_clear(struct load_ctx *ctx, struct load_mon *m, uint32_t pid, uint32_t path_id)
{
	size_t base = (size_t)pid * m->stride;
	for (size_t k = base; k < base + m->nslots; k++) {
		if (m->slots[k] != LOAD_TAG_EMPTY && (m->nslots == 1 || m->slot_paths[k] == path_id)) {
			unsigned of = tag_of(m, m->slots[k])->fg >> 16, nf = ctx->o.feeders;
			m->per_feeder[of < nf ? of : nf]--;
			m->slots[k] = LOAD_TAG_EMPTY;
			load_count(&m->filled, UINT64_MAX);
			return;
		}
	}
	load_count(&m->absent_withdraws, 1);
}

/* ---------------------------------------------------------------- UPDATE memo */

#define MEMO_MAXN  65536u              /* prefixes in one message (65535 octets, /0 each) */

/*
 * What one UPDATE did, so that the same bytes on another monitor (with the
 * same session parameters) are applied without parsing: withdrawn ids, then
 * announced ids with their tag and verdict flags.  Messages that touched a
 * prefix that is not ours, End-of-RIBs and errors are never kept.
 */
struct memo_ent {
	uint64_t h;
	uint64_t sig[2];               /* session parameters that change decoding */
	uint32_t epoch;                /* valid while equal to the memo's */
	uint32_t off;                  /* word offset in the arena */
	uint32_t len;                  /* message octets */
	uint32_t nw, na;               /* withdrawn, announced prefixes */
	uint32_t fg;                   /* feeder << 16 | gen of the announcement */
	uint32_t tag;                  /* its interned (fg, attribute set | LOAD_F_*) */
	uint32_t ts_hi, ts_lo;         /* churn timestamp community, 0 if none */
	bool paths;                    /* path id arrays follow the id arrays */
	bool unknown_tag, attr_event;  /* counters the first decode bumped */
};

struct load_memo {
	struct memo_ent *tab;          /* linear probing, tabmask + 1 entries, at most half used */
	uint32_t tabmask, nents;
	uint32_t *arena;               /* per message: bytes (word-padded), wids, [wpaths], aids, [apaths] */
	size_t cap, used;              /* words */
	uint32_t epoch;
	uint64_t hits, misses;
	uint32_t nw, na;               /* decode scratch fill */
	uint32_t *wids, *wpaths, *aids, *apaths;   /* [MEMO_MAXN] each */
	/* the monitor thread's tags: tags[0 .. ntags), found through an open
	 * hash of tag + 1 (0 = free); whatever the arena, never forgotten */
	struct load_tag *tags;
	uint32_t ntags, tagcap;
	uint32_t *tagidx;
	uint32_t tagmask;
};

struct load_memo *load_memo_new(bool on, uint64_t paths)
{
	struct load_memo *mm = calloc(1, sizeof(*mm));
	if (!mm)
		log_fatal("ricochet-load: out of memory (UPDATE memo)");
	/* sized for the whole announcement (a reflector packs a few prefixes per
	 * UPDATE, and the slowest monitor may be most of a table behind the
	 * fastest); past that the arena is emptied and refilled as it goes */
	uint64_t arena_bytes = 0;
	if (on) {
		uint64_t want = paths * 48;
		arena_bytes = want < LOAD_MEMO_MIN ? LOAD_MEMO_MIN : want > LOAD_MEMO_MAX ? LOAD_MEMO_MAX : want;
	}
	uint32_t ents = 1u << 12;
	while (ents < (1u << 21) && ents < paths / 2)
		ents <<= 1;
	mm->tabmask = ents - 1;
	mm->cap = arena_bytes / 4;
	mm->epoch = 1;
	mm->tab = mm->cap ? load_huge_alloc((size_t)ents * sizeof(*mm->tab)) : NULL;
	mm->arena = mm->cap ? load_huge_alloc(mm->cap * 4) : NULL;
	mm->wids = malloc(4 * MEMO_MAXN * sizeof(uint32_t));
	if ((mm->cap && (!mm->tab || !mm->arena)) || !mm->wids)
		log_fatal("ricochet-load: out of memory (UPDATE memo, %zu octets)", arena_bytes);
	if (mm->cap) {                     /* fault it in now, not during the run */
		memset(mm->tab, 0, (size_t)ents * sizeof(*mm->tab));
		memset(mm->arena, 0, mm->cap * 4);
	}
	mm->wpaths = mm->wids + MEMO_MAXN;
	mm->aids = mm->wids + 2 * MEMO_MAXN;
	mm->apaths = mm->wids + 3 * MEMO_MAXN;
	mm->tagcap = 1024;
	mm->tagmask = 2 * mm->tagcap - 1;
	mm->tags = malloc(mm->tagcap * sizeof(*mm->tags));
	mm->tagidx = calloc((size_t)mm->tagmask + 1, sizeof(*mm->tagidx));
	if (!mm->tags || !mm->tagidx)
		log_fatal("ricochet-load: out of memory (monitor tags)");
	return mm;
}

static uint32_t tag_hash(uint32_t fg, uint32_t attr)
{
	uint64_t k = ((uint64_t)fg << 32 | attr) * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(k >> 32);
}

/* The first free index slot for (fg, attr) under mask. */
static uint32_t tag_free_slot(const uint32_t *idx, uint32_t mask, uint32_t fg, uint32_t attr)
{
	uint32_t i = tag_hash(fg, attr) & mask;
	while (idx[i])
		i = (i + 1) & mask;
	return i;
}

/*
 * The tag of (fg, attr), made on first sight.  Only the decode path (a memo
 * miss) calls this; a memo hit carries the tag.  The index stays at most half
 * full; tags are never dropped (there are as many as distinct announcements
 * of an attribute set, which a run bounds).
 */
static uint32_t tag_intern(struct load_memo *mm, uint32_t fg, uint32_t attr)
{
	uint32_t i = tag_hash(fg, attr) & mm->tagmask;
	for (;; i = (i + 1) & mm->tagmask) {
		uint32_t t = mm->tagidx[i];
		if (!t)
			break;
		if (mm->tags[t - 1].fg == fg && mm->tags[t - 1].attr == attr)
			return t - 1;
	}
	if (mm->ntags == mm->tagcap) {
		if (mm->tagcap >= (1u << 30))
			log_fatal("ricochet-load: more than 2^30 monitor tags");
		uint32_t nc = mm->tagcap * 2, nmask = 2 * nc - 1;
		struct load_tag *nt = realloc(mm->tags, nc * sizeof(*nt));
		uint32_t *ni = calloc((size_t)nmask + 1, sizeof(*ni));
		if (!nt || !ni)
			log_fatal("ricochet-load: out of memory (%u monitor tags)", nc);
		for (uint32_t t = 0; t < mm->ntags; t++)
			ni[tag_free_slot(ni, nmask, nt[t].fg, nt[t].attr)] = t + 1;
		free(mm->tagidx);
		mm->tags = nt;
		mm->tagidx = ni;
		mm->tagcap = nc;
		mm->tagmask = nmask;
		i = tag_free_slot(ni, nmask, fg, attr);
	}
	mm->tags[mm->ntags] = (struct load_tag){ .fg = fg, .attr = attr };
	mm->tagidx[i] = ++mm->ntags;
	return mm->ntags - 1;
}

static const struct load_tag *tag_of(const struct load_mon *m, uint32_t tag)
{
	if (tag >= m->memo->ntags)
		log_fatal("ricochet-load: monitor tag %u out of range (%u)", tag, m->memo->ntags);
	return &m->memo->tags[tag];
}

void load_memo_free(struct load_memo *mm)
{
	if (!mm)
		return;
	free(mm->tab);
	free(mm->arena);
	free(mm->wids);
	free(mm->tags);
	free(mm->tagidx);
	free(mm);
}

void load_memo_stats(const struct load_memo *mm, uint64_t *hits, uint64_t *misses)
{
	*hits = mm ? mm->hits : 0;
	*misses = mm ? mm->misses : 0;
}

/* Index hash over the length, the first 64 and the last 32 octets; a match is
 * confirmed with memcmp over the whole message.  Every monitor hashes every
 * message it gets, so the usual case (64 octets or more) skips the marker
 * and runs four independent lanes: three multiplies deep, not ten. */
static inline uint64_t hash_step(uint64_t h, const uint8_t *p, uint64_t k)
{
	uint64_t w;
	memcpy(&w, p, 8);
	h = (h ^ w) * k;
	return h ^ (h >> 31);
}

static uint64_t memo_hash(const uint8_t *p, size_t len)
{
	const uint64_t k0 = 0xBF58476D1CE4E5B9ull, k1 = 0x94D049BB133111EBull,
		       k2 = 0x9E3779B97F4A7C15ull, k3 = 0xD6E8FEB86659FD93ull;
	uint64_t h;
	if (len >= 64) {
		const uint8_t *t = p + len - 32;
		uint64_t a = len, b = k2, c = k3, d = k0;
		a = hash_step(a, p + 16, k0);
		b = hash_step(b, p + 24, k1);
		c = hash_step(c, p + 32, k2);
		d = hash_step(d, p + 40, k3);
		a = hash_step(a, p + 48, k0);
		b = hash_step(b, p + 56, k1);
		c = hash_step(c, t, k2);
		d = hash_step(d, t + 8, k3);
		a = hash_step(a, t + 16, k0);
		b = hash_step(b, t + 24, k1);
		h = a ^ (b << 16 | b >> 48) ^ (c << 32 | c >> 32) ^ (d << 48 | d >> 16);
	} else {
		h = 0x9E3779B97F4A7C15ull ^ len;
		size_t i = 16;
		for (; i + 8 <= len; i += 8)
			h = hash_step(h, p + i, k0);
		if (len >= 8)
			h = hash_step(h, p + len - 8, k1);
		h ^= p[len - 1];
	}
	h *= k0;
	return h ^ (h >> 32);
}

static void memo_sig(const struct msg_session *s, uint64_t sig[2])
{
	uint64_t a = (uint64_t)s->as4 | (uint64_t)s->ebgp << 1 | (uint64_t)s->rs_client << 2;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		a |= (uint64_t)s->addpath_rx[f] << (3 + f) | (uint64_t)s->family[f] << (11 + f);
	sig[0] = a | (uint64_t)s->max_msg << 20;
	sig[1] = (uint64_t)s->peer_as << 32 | s->local_as;
}

static const struct memo_ent *memo_find(struct load_memo *mm, const uint8_t *msg, size_t len, uint64_t h,
					const uint64_t sig[2])
{
	for (uint32_t i = (uint32_t)h & mm->tabmask;; i = (i + 1) & mm->tabmask) {
		const struct memo_ent *e = &mm->tab[i];
		if (e->epoch != mm->epoch)
			return NULL;       /* a free entry ends the probe */
		if (e->h == h && e->len == len && e->sig[0] == sig[0] && e->sig[1] == sig[1] &&
		    memcmp(mm->arena + e->off, msg, len) == 0)
			return e;
	}
}

/* Keep the decoded message (ids in the scratch arrays). */
static void memo_store(struct load_memo *mm, const uint8_t *msg, size_t len, uint64_t h, struct memo_ent *ne)
{
	size_t bw = (len + 3) / 4, pm = ne->paths ? 2 : 1;
	size_t need = bw + pm * ((size_t)ne->nw + ne->na);
	if (!mm->cap || need > mm->cap)
		return;
	if (mm->used + need > mm->cap || mm->nents >= (mm->tabmask + 1) / 2) {
		mm->used = 0;              /* full: forget everything, keep going */
		mm->nents = 0;
		mm->epoch++;
	}
	uint32_t *w = mm->arena + mm->used;
	w[bw - 1] = 0;
	memcpy(w, msg, len);
	w += bw;
	memcpy(w, mm->wids, ne->nw * sizeof(uint32_t));
	w += ne->nw;
	if (ne->paths) {
		memcpy(w, mm->wpaths, ne->nw * sizeof(uint32_t));
		w += ne->nw;
	}
	memcpy(w, mm->aids, ne->na * sizeof(uint32_t));
	w += ne->na;
	if (ne->paths)
		memcpy(w, mm->apaths, ne->na * sizeof(uint32_t));
	ne->h = h;
	ne->epoch = mm->epoch;
	ne->off = (uint32_t)mm->used;
	ne->len = (uint32_t)len;
	uint32_t i = (uint32_t)h & mm->tabmask;
	while (mm->tab[i].epoch == mm->epoch)
		i = (i + 1) & mm->tabmask;
	mm->tab[i] = *ne;
	mm->nents++;
	mm->used += need;
}

#define SLOT_PREFETCH 16
/*
 * Look ahead of the message being applied, in three stages (the peer's read
 * loop calls this for the messages that follow): stage 0 hashes the message
 * and prefetches its memo entry, stage 1 (fewer messages ahead, the entry is
 * in cache by then) prefetches the remembered bytes and ids, stage 2 the
 * monitor's slots of those ids.  Each stage only touches what the previous
 * one brought in, so messages of a few prefixes no longer pay their cache
 * misses one after the other.  Pure hints: nothing is changed.
 */
uint64_t load_mon_hash(const uint8_t *msg, size_t len)
{
	return memo_hash(msg, len);
}

void load_mon_prefetch(struct load_mon *m, const uint8_t *msg, size_t len, unsigned stage, uint64_t h)
{
	struct load_memo *mm = m->memo;
	if (!mm->cap)
		return;
	const struct memo_ent *e = &mm->tab[h & mm->tabmask];
	if (stage == 0) {
		__builtin_prefetch(e);
		return;
	}
	if (e->epoch != mm->epoch || e->h != h || e->len != len)
		return;
	const uint32_t *w = mm->arena + e->off, *ids = w + (e->len + 3) / 4;
	if (stage == 1) {
		for (size_t o = 0; o < e->len; o += 64)
			__builtin_prefetch((const uint8_t *)w + o);
		size_t nid = e->paths ? 2 * ((size_t)e->nw + e->na) : (size_t)e->nw + e->na;
		for (size_t o = 0; o < nid * 4; o += 64)
			__builtin_prefetch((const uint8_t *)ids + o);
		return;
	}
	const uint32_t *aids = ids + (e->paths ? 2 * (size_t)e->nw : e->nw);
	for (uint32_t i = 0; i < e->nw && i < SLOT_PREFETCH; i++)
		__builtin_prefetch(&m->slots[(size_t)ids[i] * m->stride], 1);
	for (uint32_t i = 0; i < e->na && i < SLOT_PREFETCH; i++)
		__builtin_prefetch(&m->slots[(size_t)aids[i] * m->stride], 1);
}

/*
 * Apply prefix ids to the table, prefetching the slots a few prefixes ahead:
 * the table is far bigger than the caches and the ids are scattered.
 */
static void apply_ids(struct load_ctx *ctx, struct load_mon *m, const uint32_t *ids, const uint32_t *paths,
		      uint32_t cnt, bool announce, uint32_t fg, uint32_t tag, uint64_t lat_ns)
{
	if (!cnt)
		return;
	const size_t ns = m->nslots;
	/* --churn-attrs recurring: the send time is the feeder's, per route */
	const unsigned rf = fg >> 16;
	const bool rec = announce && ctx->o.churn_recurring && (fg & 0xFFFF) && rf < ctx->o.feeders;
	const uint64_t now = rec ? log_now_ns() : 0;
	for (uint32_t i = 0; i < cnt && i < SLOT_PREFETCH; i++)
		__builtin_prefetch(&m->slots[(size_t)ids[i] * m->stride], 1);
	for (uint32_t i = 0; i < cnt; i++) {
		if (i + SLOT_PREFETCH < cnt)
			__builtin_prefetch(&m->slots[(size_t)ids[i + SLOT_PREFETCH] * m->stride], 1);
		uint32_t id = ids[i], path_id = paths ? paths[i] : 0;
		if (!announce) {
			slot_clear(ctx, m, id, path_id);
			continue;
		}
		/* a latency sample only for the first copy of this (feeder, generation):
		 * a reflector re-advertising an older churned path is not propagation */
		if (rec) {
			lat_ns = 0;
			uint32_t j;
			const struct load_feeder_routes *fr = &ctx->rt.f[rf];
			if (load_routes_local(&ctx->rt, rf, id, &j) &&
			    atomic_load_explicit(&fr->gen[j], memory_order_acquire) == (fg & 0xFFFF)) {
				uint64_t ts = atomic_load_explicit(&fr->sent_ns[j], memory_order_relaxed);
				if (ts)
					lat_ns = now > ts ? now - ts : 1;
			}
		}
		if (lat_ns) {
			const uint32_t *sl = &m->slots[(size_t)id * m->stride];
			bool dup = false;
			for (unsigned k = 0; k < ns && !dup; k++)
				dup = sl[k] != LOAD_TAG_EMPTY && tag_of(m, sl[k])->fg == fg;
			if (dup)
				m->readvertised++;
			else
				load_hist_add(&m->lat, lat_ns);
		}
		slot_set(ctx, m, id, path_id, tag, fg);
	}
	load_count(announce ? &m->announces : &m->withdraws, cnt);
}

/*
 * Decode one NLRI block, appending the ids of our prefixes to ids/paths at
 * *fill; prefixes that are not ours go to the extras right away (and make
 * *unknown true).  In batches: hash a batch, prefetch the buckets, then look
 * them up, so the cache misses overlap.
 */
#define NLRI_BATCH 32
static void nlri_decode(struct load_ctx *ctx, struct load_mon *m, const struct msg_nlri *n, bool announce,
			uint32_t fg, uint32_t attr, uint32_t *ids, uint32_t *paths, uint32_t *fill,
			bool *unknown)
{
	if (!n->p || !n->len)
		return;
	const struct load_routes *rt = &ctx->rt;
	struct bgp_prefix pb[NLRI_BATCH];
	uint32_t hb[NLRI_BATCH], nx = 0;
	struct msg_nlri_iter it;
	msg_nlri_iter_init(&it, n);
	for (;;) {
		unsigned k = 0;
		while (k < NLRI_BATCH && *fill + k < MEMO_MAXN && msg_nlri_next(&it, &pb[k])) {
			hb[k] = load_routes_hash(&pb[k]);
			load_routes_prefetch(rt, hb[k]);
			k++;
		}
		for (unsigned i = 0; i < k; i++) {
			uint32_t id = load_routes_lookup_h(rt, &pb[i], hb[i]);
			if (ctx->o.verbose && m->debug_left) {
				char b[64];
				m->debug_left--;
				bgp_prefix_fmt(b, sizeof(b), &pb[i]);
				log_debug("ricochet-load: %s: %s %s path-id %u tag %u/%u attr %u", m->peer->name,
					  announce ? "announce" : "withdraw", b, pb[i].path_id, fg >> 16, fg & 0xFFFF,
					  attr & LOAD_F_MASK);
			}
			if (id == UINT32_MAX) {
				x_set(m, &pb[i], announce);
				nx++;
				*unknown = true;
				continue;
			}
			ids[*fill] = id;
			paths[*fill] = pb[i].path_id;
			(*fill)++;
		}
		if (k < NLRI_BATCH)
			break;
	}
	if (nx)
		load_count(announce ? &m->announces : &m->withdraws, nx);
}

static void decode_withdraw(struct load_ctx *ctx, struct load_mon *m, const struct msg_nlri *n, bool *unknown)
{
	struct load_memo *mm = m->memo;
	nlri_decode(ctx, m, n, false, 0, 0, mm->wids, mm->wpaths, &mm->nw, unknown);
}

/* Received blob without ORIGINATOR_ID / CLUSTER_LIST, for comparison. */
static size_t strip_rr(const uint8_t *blob, size_t len, uint8_t *out, size_t cap)
{
	struct msg_attr_iter it;
	struct msg_attr a;
	size_t o = 0;
	msg_attr_iter_init(&it, blob, len);
	while (msg_attr_next(&it, &a)) {
		if (a.type == BGP_ATTR_ORIGINATOR_ID || a.type == BGP_ATTR_CLUSTER_LIST)
			continue;
		size_t hl = (a.flags & BGP_ATTR_F_EXTLEN) ? 4 : 3;
		if (o + hl + a.len > cap)
			return SIZE_MAX;
		memcpy(out + o, a.value - hl, hl + a.len);
		o += hl + a.len;
	}
	return o;
}

static uint64_t churn_latency(uint64_t ts, uint32_t gen)
{
	if (!ts || !gen)
		return 0;
	uint64_t now = log_now_ns();
	return now > ts ? now - ts : 1;
}

/* Apply a remembered message: what the first decode did, minus the parsing. */
static void memo_apply(struct load_ctx *ctx, struct load_mon *m, const struct memo_ent *e)
{
	const uint32_t *w = m->memo->arena + e->off + (e->len + 3) / 4;
	const uint32_t *wids = w, *wpaths = e->paths ? w + e->nw : NULL;
	w += e->paths ? 2 * (size_t)e->nw : e->nw;
	const uint32_t *aids = w, *apaths = e->paths ? w + e->na : NULL;
	if (e->unknown_tag)
		m->unknown_tag++;
	if (e->attr_event)
		m->attr_events++;
	apply_ids(ctx, m, wids, wpaths, e->nw, false, 0, 0, 0);
	uint64_t ts = (uint64_t)e->ts_hi << 32 | e->ts_lo;
	apply_ids(ctx, m, aids, apaths, e->na, true, e->fg, e->tag, churn_latency(ts, e->fg & 0xFFFF));
}

void load_mon_update(struct load_ctx *ctx, struct load_mon *m, const uint8_t *msg, size_t len)
{
	struct load_peer *peer = m->peer;
	struct load_memo *mm = m->memo;
	load_count(&m->updates, 1);
	/* another monitor already decoded these very bytes? */
	uint64_t h = 0, sig[2] = { 0, 0 };
	bool memo = mm->cap && !(ctx->o.verbose && m->debug_left);
	if (memo) {
		h = msg == m->hint_msg ? m->hint_h : memo_hash(msg, len);
		m->hint_msg = NULL;
		memo_sig(&peer->sess, sig);
		const struct memo_ent *e = memo_find(mm, msg, len, h, sig);
		if (e) {
			mm->hits++;
			memo_apply(ctx, m, e);
			return;
		}
		mm->misses++;
	}

	struct msg_update u;
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	msg_update_parse(msg, len, &peer->sess, m->scratch, &u, &err);
	if (err.action == MSG_SESSION_RESET || err.action == MSG_AFI_DISABLE) {
		char why[160];
		m->parse_errors++;
		snprintf(why, sizeof(why), "bad UPDATE from target: %s (%u/%u)",
			 err.reason ? err.reason : "?", err.code, err.subcode);
		load_peer_close(peer, err.code ? err.code : BGP_ERR_UPDATE, err.subcode, why);
		return;
	}
	if (u.eor_family != BGP_FAM_NONE) {
		load_count(&m->eors, 1);
		atomic_store(&m->eor_ns, log_now_ns());
		return;
	}
	bool unknown = false, paths = m->nslots > 1;
	mm->nw = mm->na = 0;
	decode_withdraw(ctx, m, &u.withdrawn, &unknown);
	decode_withdraw(ctx, m, &u.mp_unreach, &unknown);
	if (err.action == MSG_TREAT_AS_WITHDRAW) {
		m->treat_withdraw++;
		decode_withdraw(ctx, m, &u.nlri, &unknown);
		decode_withdraw(ctx, m, &u.mp_reach, &unknown);
		apply_ids(ctx, m, mm->wids, paths ? mm->wpaths : NULL, mm->nw, false, 0, 0, 0);
		return;
	}
	struct memo_ent ne = { .sig = { sig[0], sig[1] }, .paths = paths };
	if ((!u.nlri.p || !u.nlri.len) && (!u.mp_reach.p || !u.mp_reach.len)) {
		apply_ids(ctx, m, mm->wids, paths ? mm->wpaths : NULL, mm->nw, false, 0, 0, 0);
		ne.nw = mm->nw;
		if (memo && !unknown)
			memo_store(mm, msg, len, h, &ne);
		return;
	}

	/* who sent it: our tag community, and the churn timestamp */
	uint32_t f = 0xFFFF, gen = 0, a = 0;
	uint64_t ts = 0;
	struct msg_attr at;
	if (msg_attr_find(u.attrs, u.attrs_len, BGP_ATTR_LARGE_COMMUNITY, &at)) {
		for (unsigned k = 0; k + 12 <= at.len; k += 12) {
			const uint8_t *v = at.value + k;
			uint32_t g = bgp_get32(v);
			if (g == LOAD_LC_TAG) {
				f = bgp_get32(v + 4) >> 16;
				gen = bgp_get32(v + 4) & 0xFFFF;
				a = bgp_get32(v + 8);
			} else if (g == LOAD_LC_TS) {
				ts = (uint64_t)bgp_get32(v + 4) << 32 | bgp_get32(v + 8);
			}
		}
	}
	uint32_t flags = 0;
	const struct load_opts *o = &ctx->o;
	if (f >= o->feeders || a >= ctx->rt.f[f].nattr) {
		m->unknown_tag++;
		ne.unknown_tag = true;
		f = 0xFFFF;
		a = 0;
	} else {
		if (o->expect_rr && (!u.has_originator_id || u.cluster_list_len == 0))
			flags |= LOAD_F_NORR;
		/* exact attribute and next-hop checks make sense when nobody may rewrite them */
		if (o->verify_attrs && o->feeder_asn == o->asn && o->monitor_asn == o->asn) {
			uint8_t want[LOAD_BLOB_MAX], got[LOAD_BLOB_MAX];
			size_t wl = load_attrs_build(&ctx->rt, f, a, (uint16_t)gen, ts, want, sizeof(want));
			size_t gl = strip_rr(u.attrs, u.attrs_len, got, sizeof(got));
			if (wl != gl || memcmp(want, got, wl) != 0) {
				flags |= LOAD_F_BADATTR;
				m->attr_events++;
				ne.attr_event = true;
			}
			const struct load_peer *fp = &ctx->feeders[f];
			if (u.nlri.p && u.nlri.len &&
			    (u.nexthop4.len != 4 || memcmp(u.nexthop4.addr, fp->nh4.addr, 4) != 0))
				flags |= LOAD_F_BADNH;
			if (u.mp_reach.p && u.mp_reach.len && u.mp_reach.family == BGP_FAM_IPV6 &&
			    (u.mp_nexthop.len < 16 || memcmp(u.mp_nexthop.addr, fp->nh6.addr, 16) != 0))
				flags |= LOAD_F_BADNH;
		}
	}
	uint32_t fg = f << 16 | (gen & 0xFFFF);
	nlri_decode(ctx, m, &u.nlri, true, fg, a | flags, mm->aids, mm->apaths, &mm->na, &unknown);
	nlri_decode(ctx, m, &u.mp_reach, true, fg, a | flags, mm->aids, mm->apaths, &mm->na, &unknown);
	uint32_t tag = mm->na ? tag_intern(mm, fg, a | flags) : 0;
	apply_ids(ctx, m, mm->wids, paths ? mm->wpaths : NULL, mm->nw, false, 0, 0, 0);
	apply_ids(ctx, m, mm->aids, paths ? mm->apaths : NULL, mm->na, true, fg, tag,
		  churn_latency(ts, gen));
	if (memo && !unknown) {
		ne.nw = mm->nw;
		ne.na = mm->na;
		ne.fg = fg;
		ne.tag = tag;
		ne.ts_hi = (uint32_t)(ts >> 32);
		ne.ts_lo = (uint32_t)ts;
		memo_store(mm, msg, len, h, &ne);
	}
}

/* ---------------------------------------------------------------- completion, verification */

void load_mon_check_done(struct load_ctx *ctx, struct load_mon *m, uint64_t now)
{
	const struct load_target *t = &m->w->target;
	uint64_t expect = load_mon_paths(ctx, m) > 1 ? t->expect : t->expect_single;
	bool ok = atomic_load_explicit(&m->filled, memory_order_relaxed) == expect &&
		  atomic_load_explicit(&m->extra, memory_order_relaxed) == 0 &&
		  m->per_feeder[ctx->o.feeders] == 0;
	if (ok && t->dead_feeder >= 0 && m->per_feeder[t->dead_feeder] != 0)
		ok = false;
	if (ok && t->need_eor && (atomic_load(&m->eors) == 0 || atomic_load(&m->eor_ns) < t->since_ns))
		ok = false;
	if (!ok)
		atomic_store(&m->done_ns, 0);
	else if (!atomic_load(&m->done_ns))
		atomic_store(&m->done_ns, now);
}

/* How many paths a monitor should hold for prefix pid. */
static unsigned paths_expected(const struct load_ctx *ctx, uint32_t pid, unsigned live, unsigned want)
{
	const struct load_routes *rt = &ctx->rt;
	if (ctx->withdrawn)
		return 0;
	if (rt->shared)
		return live < want ? live : want;
	uint32_t n4 = rt->r4 * rt->nfeeders;
	unsigned owner = pid < n4 ? pid / rt->r4 : (pid - n4) / rt->r6;
	return ctx->feeders[owner].killed ? 0 : 1;
}

void load_mon_verify(struct load_ctx *ctx, struct load_mon *m)
{
	const struct load_routes *rt = &ctx->rt;
	struct load_verify *v = &m->ver;
	memset(v, 0, sizeof(*v));
	unsigned live = 0;
	for (unsigned f = 0; f < ctx->o.feeders; f++)
		live += !ctx->feeders[f].killed;
	unsigned paths = load_mon_paths(ctx, m);
	for (uint32_t pid = 0; pid < rt->npfx; pid++) {
		unsigned have = 0;
		size_t base = (size_t)pid * m->stride;
		for (size_t k = base; k < base + m->nslots; k++) {
			if (m->slots[k] == LOAD_TAG_EMPTY)
				continue;
			have++;
			v->present++;
			const struct load_tag *tg = tag_of(m, m->slots[k]);
			unsigned f = tg->fg >> 16, g = tg->fg & 0xFFFF;
			uint32_t j, at = tg->attr;
			if (f >= rt->nfeeders || !load_routes_local(rt, f, pid, &j)) {
				v->wrong_feeder++;
				continue;
			}
			if (ctx->feeders[f].killed)
				v->dead_feeder_paths++;
			if ((at & LOAD_F_MASK) != rt->f[f].attr[j] || (at & LOAD_F_BADATTR))
				v->bad_attrs++;
			if (atomic_load_explicit(&rt->f[f].gen[j], memory_order_relaxed) != g)
				v->stale_gen++;
			if (at & LOAD_F_NORR)
				v->no_rr++;
			if (at & LOAD_F_BADNH)
				v->bad_nh++;
		}
		unsigned want = paths_expected(ctx, pid, live, paths);
		if (have < want)
			v->missing += want - have;
		else
			v->extra += have - want;
	}
	v->extra += atomic_load(&m->extra);
}

/* ---------------------------------------------------------------- self-test */

#define MT_CHECK(cond, ...) LOAD_ST_CHECK(fails, cond, __VA_ARGS__)

/* Test message i: 40 + i % 90 octets of a pattern of i; returns its length. */
static size_t st_msg(uint8_t *msg, uint32_t i)
{
	size_t len = 40 + i % 90;
	for (size_t k = 0; k < len; k++)
		msg[k] = (uint8_t)(i * 31 + k * 7 + (i >> 8));
	return len;
}

/*
 * The monitor thread's tags and memo on their own: tags stay distinct and
 * stable across the index's growth; the memo finds what it stored, under
 * colliding hashes too (the probe must walk past other messages), tells
 * messages apart by their bytes and session parameters, and forgets
 * everything, not a part, when its table reaches half full.
 */
int load_mon_selftest(void)
{
	int fails = 0;
	struct load_memo *mm = load_memo_new(true, 1);   /* the smallest memo: 4096 entries */
	struct load_mon m = { .memo = mm };
	enum { NT = 5000 };                             /* grows the index from 1024 thrice */
	for (uint32_t i = 0; i < NT; i++)
		MT_CHECK(tag_intern(mm, i << 16 | (i & 7), i * 3) == i, "tag %u not new", i);
	for (uint32_t i = 0; i < NT; i++) {
		uint32_t t = tag_intern(mm, i << 16 | (i & 7), i * 3);
		MT_CHECK(t == i, "tag %u re-interned as %u", i, t);
		MT_CHECK(tag_of(&m, t)->fg == (i << 16 | (i & 7)) && tag_of(&m, t)->attr == i * 3,
			 "tag %u holds another pair", i);
	}
	MT_CHECK(mm->ntags == NT, "%u tags for %u pairs", mm->ntags, (unsigned)NT);

	/* messages st_msg(i) share one hash in groups of 16, so that each lookup
	 * probes past others */
	uint8_t msg[160];
	const uint64_t sig[2] = { 1, 2 }, other[2] = { 1, 3 };
	const uint32_t half = (mm->tabmask + 1) / 2;
	for (uint32_t i = 0; i < half; i++) {
		size_t len = st_msg(msg, i);
		mm->wids[0] = i;
		mm->aids[0] = i + 1;
		struct memo_ent ne = { .sig = { sig[0], sig[1] }, .nw = 1, .na = 1, .fg = i, .tag = i };
		memo_store(mm, msg, len, i / 16, &ne);
	}
	MT_CHECK(mm->nents == half, "%u entries stored, %u wanted", mm->nents, half);
	uint32_t found = 0;
	for (uint32_t i = 0; i < half; i++) {
		size_t len = st_msg(msg, i);
		const struct memo_ent *e = memo_find(mm, msg, len, i / 16, sig);
		if (e && e->fg == i && e->tag == i && e->nw == 1 && e->na == 1) {
			const uint32_t *w = mm->arena + e->off + (e->len + 3) / 4;
			found += w[0] == i && w[1] == i + 1;
		}
		MT_CHECK(!memo_find(mm, msg, len, i / 16, other), "message %u found under other session parameters", i);
		msg[len - 1] ^= 1;
		MT_CHECK(!memo_find(mm, msg, len, i / 16, sig), "message %u found with its last octet changed", i);
	}
	MT_CHECK(found == half, "%u of %u messages found with their ids", found, half);
	/* one more: the table was half full, so everything is forgotten first */
	memset(msg, 0xAB, 64);
	struct memo_ent ne = { .sig = { sig[0], sig[1] } };
	mm->nw = mm->na = 0;
	memo_store(mm, msg, 64, 7, &ne);
	MT_CHECK(mm->nents == 1, "%u entries after the table filled", mm->nents);
	MT_CHECK(memo_find(mm, msg, 64, 7, sig) != NULL, "the message stored after the reset is lost");
	size_t len0 = st_msg(msg, 0);
	MT_CHECK(!memo_find(mm, msg, len0, 0, sig), "a message from before the reset is still found");
	load_memo_free(mm);
	return fails;
}
