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
 * (routes.c), so a monitor's table is three flat arrays indexed by
 * id * paths-per-prefix: path id, (feeder, generation) tag, attribute set +
 * verdict flags - 12 octets per path, no allocation per prefix.  Prefixes that
 * are not ours go to a small side hash (there should be none).  Attributes are
 * checked once per UPDATE (not per prefix): the tag names the attribute set,
 * so the monitor rebuilds the blob it should see and compares it byte for byte
 * with what arrived, minus the reflector's ORIGINATOR_ID and CLUSTER_LIST.
 */
#include <stdlib.h>
#include <string.h>

#include "bench/load/load.h"
#include "core/log.h"

#define SLOT_EMPTY UINT32_MAX

void load_mon_init(struct load_mon *m, struct load_ctx *ctx, struct load_peer *p)
{
	memset(m, 0, sizeof(*m));
	m->peer = p;
	p->mon = m;
	m->nslots = ctx->o.addpath ? ctx->o.addpath : 1;
	size_t n = (size_t)ctx->rt.npfx * m->nslots;
	if (n == 0)
		n = 1;
	m->slots = malloc(n * sizeof(*m->slots));
	m->per_feeder = calloc(ctx->o.feeders + 1, sizeof(uint64_t));
	m->scratch = malloc(MSG_SCRATCH_SIZE);
	m->debug_left = 8;
	m->xcap = 64;
	m->xtab = calloc(m->xcap, sizeof(*m->xtab));
	m->xused = calloc(m->xcap, 1);
	if (!m->slots || !m->per_feeder || !m->scratch ||
	    !m->xtab || !m->xused)
		log_fatal("ricochet-load: out of memory for monitor tables (%zu paths)", n);
	for (size_t i = 0; i < n; i++)
		m->slots[i] = (struct load_slot){ .path_id = 0, .fg = SLOT_EMPTY, .attr = 0 };
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
			atomic_fetch_add_explicit(&m->extra, 1, memory_order_relaxed);
			if (m->xn * 2 > m->xcap)
				x_grow(m);
			return;
		}
		if (m->xused[i] == 1 && memcmp(&m->xtab[i], &k, sizeof(k)) == 0) {
			if (!present) {
				m->xused[i] = 2;   /* tombstone */
				atomic_fetch_sub_explicit(&m->extra, 1, memory_order_relaxed);
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

static void slot_set(struct load_ctx *ctx, struct load_mon *m, uint32_t pid, uint32_t path_id,
		     uint32_t fg, uint32_t attr)
{
	size_t base = (size_t)pid * m->nslots, hit = SIZE_MAX, free_slot = SIZE_MAX;
	for (size_t k = base; k < base + m->nslots; k++) {
		if (m->slots[k].fg == SLOT_EMPTY) {
			if (free_slot == SIZE_MAX)
				free_slot = k;
		} else if (m->nslots == 1 || m->slots[k].path_id == path_id) {
			hit = k;
			break;
		}
	}
	unsigned nf = ctx->o.feeders, f = fg >> 16;
	if (hit != SIZE_MAX) {
		unsigned of = m->slots[hit].fg >> 16;
		m->per_feeder[of < nf ? of : nf]--;
	} else if (free_slot != SIZE_MAX) {
		hit = free_slot;
		atomic_fetch_add_explicit(&m->filled, 1, memory_order_relaxed);
	} else {
		m->overflow++;
		return;
	}
	m->slots[hit].path_id = path_id;
	m->slots[hit].fg = fg;
	m->slots[hit].attr = attr;
	m->per_feeder[f < nf ? f : nf]++;
}

static void slot_clear(struct load_ctx *ctx, struct load_mon *m, uint32_t pid, uint32_t path_id)
{
	size_t base = (size_t)pid * m->nslots;
	for (size_t k = base; k < base + m->nslots; k++) {
		if (m->slots[k].fg != SLOT_EMPTY && (m->nslots == 1 || m->slots[k].path_id == path_id)) {
			unsigned of = m->slots[k].fg >> 16, nf = ctx->o.feeders;
			m->per_feeder[of < nf ? of : nf]--;
			m->slots[k].fg = SLOT_EMPTY;
			atomic_fetch_sub_explicit(&m->filled, 1, memory_order_relaxed);
			return;
		}
	}
}

/*
 * Apply one NLRI block in batches: hash a batch, prefetch the buckets, look
 * them up, prefetch the slots, then apply.  The table is far bigger than the
 * caches, so this overlaps the two misses per prefix instead of paying them
 * one after the other.
 */
#define NLRI_BATCH 32
static void nlri_apply(struct load_ctx *ctx, struct load_mon *m, const struct msg_nlri *n, bool announce,
		       uint32_t fg, uint32_t attr, uint64_t lat_ns)
{
	if (!n->p || !n->len)
		return;
	const struct load_routes *rt = &ctx->rt;
	struct bgp_prefix pb[NLRI_BATCH];
	uint32_t hb[NLRI_BATCH], ids[NLRI_BATCH];
	struct msg_nlri_iter it;
	msg_nlri_iter_init(&it, n);
	for (;;) {
		unsigned k = 0;
		while (k < NLRI_BATCH && msg_nlri_next(&it, &pb[k])) {
			hb[k] = load_routes_hash(&pb[k]);
			load_routes_prefetch(rt, hb[k]);
			k++;
		}
		for (unsigned i = 0; i < k; i++) {
			ids[i] = load_routes_lookup_h(rt, &pb[i], hb[i]);
			if (ids[i] != UINT32_MAX)
				__builtin_prefetch(&m->slots[(size_t)ids[i] * m->nslots], 1);
		}
		for (unsigned i = 0; i < k; i++) {
			if (ctx->o.verbose && m->debug_left) {
				char b[64];
				m->debug_left--;
				bgp_prefix_fmt(b, sizeof(b), &pb[i]);
				log_debug("ricochet-load: %s: %s %s path-id %u tag %u/%u attr %u", m->peer->name,
					  announce ? "announce" : "withdraw", b, pb[i].path_id, fg >> 16, fg & 0xFFFF,
					  attr & LOAD_F_MASK);
			}
			if (announce) {
				if (ids[i] == UINT32_MAX) {
					x_set(m, &pb[i], true);
					continue;
				}
				/* a latency sample only for the first copy of this (feeder, generation):
				 * a reflector re-advertising an older churned path is not propagation */
				if (lat_ns) {
					const struct load_slot *sl = &m->slots[(size_t)ids[i] * m->nslots];
					bool dup = false;
					for (unsigned k2 = 0; k2 < m->nslots && !dup; k2++)
						dup = sl[k2].fg == fg;
					if (dup)
						m->readvertised++;
					else
						load_hist_add(&m->lat, lat_ns);
				}
				slot_set(ctx, m, ids[i], pb[i].path_id, fg, attr);
			} else if (ids[i] == UINT32_MAX) {
				x_set(m, &pb[i], false);
			} else {
				slot_clear(ctx, m, ids[i], pb[i].path_id);
			}
		}
		atomic_fetch_add_explicit(announce ? &m->announces : &m->withdraws, k, memory_order_relaxed);
		if (k < NLRI_BATCH)
			break;
	}
}

static void withdraw_block(struct load_ctx *ctx, struct load_mon *m, const struct msg_nlri *n)
{
	nlri_apply(ctx, m, n, false, 0, 0, 0);
}

static uint32_t get32(const uint8_t *v)
{
	return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
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

static void announce_block(struct load_ctx *ctx, struct load_mon *m, const struct msg_nlri *n,
			   uint32_t fg, uint32_t attr, uint64_t lat_ns)
{
	nlri_apply(ctx, m, n, true, fg, attr, lat_ns);
}

void load_mon_update(struct load_ctx *ctx, struct load_mon *m, const uint8_t *msg, size_t len)
{
	struct load_peer *peer = m->peer;
	struct msg_update u;
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	msg_update_parse(msg, len, &peer->sess, m->scratch, &u, &err);
	atomic_fetch_add_explicit(&m->updates, 1, memory_order_relaxed);
	if (err.action == MSG_SESSION_RESET || err.action == MSG_AFI_DISABLE) {
		char why[160];
		m->parse_errors++;
		snprintf(why, sizeof(why), "bad UPDATE from target: %s (%u/%u)",
			 err.reason ? err.reason : "?", err.code, err.subcode);
		load_peer_close(peer, err.code ? err.code : BGP_ERR_UPDATE, err.subcode, why);
		return;
	}
	if (u.eor_family != BGP_FAM_NONE) {
		atomic_fetch_add_explicit(&m->eors, 1, memory_order_relaxed);
		atomic_store(&m->eor_ns, log_now_ns());
		return;
	}
	withdraw_block(ctx, m, &u.withdrawn);
	withdraw_block(ctx, m, &u.mp_unreach);
	if (err.action == MSG_TREAT_AS_WITHDRAW) {
		m->treat_withdraw++;
		withdraw_block(ctx, m, &u.nlri);
		withdraw_block(ctx, m, &u.mp_reach);
		return;
	}
	if ((!u.nlri.p || !u.nlri.len) && (!u.mp_reach.p || !u.mp_reach.len))
		return;

	/* who sent it: our tag community, and the churn timestamp */
	uint32_t f = 0xFFFF, gen = 0, a = 0;
	uint64_t ts = 0;
	struct msg_attr at;
	if (msg_attr_find(u.attrs, u.attrs_len, BGP_ATTR_LARGE_COMMUNITY, &at)) {
		for (unsigned k = 0; k + 12 <= at.len; k += 12) {
			const uint8_t *v = at.value + k;
			uint32_t g = get32(v);
			if (g == LOAD_LC_TAG) {
				f = get32(v + 4) >> 16;
				gen = get32(v + 4) & 0xFFFF;
				a = get32(v + 8);
			} else if (g == LOAD_LC_TS) {
				ts = (uint64_t)get32(v + 4) << 32 | get32(v + 8);
			}
		}
	}
	uint32_t flags = 0;
	const struct load_opts *o = &ctx->o;
	if (f >= o->feeders || a >= ctx->rt.f[f].nattr) {
		m->unknown_tag++;
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
	uint64_t lat = 0;
	if (ts && gen) {
		uint64_t now = log_now_ns();
		lat = now > ts ? now - ts : 1;
	}
	uint32_t fg = f << 16 | (gen & 0xFFFF);
	announce_block(ctx, m, &u.nlri, fg, a | flags, lat);
	announce_block(ctx, m, &u.mp_reach, fg, a | flags, lat);
}

/* ---------------------------------------------------------------- completion, verification */

void load_mon_check_done(struct load_ctx *ctx, struct load_mon *m, uint64_t now)
{
	const struct load_target *t = &ctx->mw.target;
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
		size_t base = (size_t)pid * m->nslots;
		for (size_t k = base; k < base + m->nslots; k++) {
			if (m->slots[k].fg == SLOT_EMPTY)
				continue;
			have++;
			v->present++;
			unsigned f = m->slots[k].fg >> 16, g = m->slots[k].fg & 0xFFFF;
			uint32_t j, at = m->slots[k].attr;
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
