/*
 * mrt.c - ricochet-load --mrt FILE: replay an MRT file (RFC 6396) through
 * the feeders instead of the generated table.
 *
 *   TABLE_DUMP_V2: every RIB entry becomes an announcement from feeder
 *     (peer index mod P), runs of equal attributes packed into one UPDATE,
 *     then End-of-RIB; sent as fast as the sessions take it ("as it is").
 *   BGP4MP / BGP4MP_ET: every UPDATE is sent as recorded, by feeder (peer
 *     address, in order of first appearance, mod P), with the original
 *     spacing divided by --mrt-speed (0: as fast as possible).  Records whose
 *     encoding does not fit a feeder session (2-octet AS_PATH, ADD-PATH) are
 *     skipped and counted.
 *
 * The monitors hold whatever the target reflects (prefixes outside the
 * generated table are their "extra" set), so the phase completes when every
 * monitor holds exactly the prefixes that are announced at the end of the
 * file, worked out here by replaying the same announcements and withdrawals
 * into a presence map.
 *
 * Threads: runs on the main thread between the connect phase and the end; it
 * hands each slice of bytes to the feeder thread through ctx->ann[] and
 * LOAD_CMD_ANNOUNCE, and never touches a buffer the feeder still reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/load/load.h"
#include "core/log.h"
#include "core/mrt.h"

#define SLICE_NS   (10 * 1000 * 1000ull)     /* timed replay granularity */
#define MAX_MRT_PEERS 65536

/* ---------------------------------------------------------------- presence map */

struct pmap_ent {
	struct bgp_prefix k;
	uint64_t mask;                      /* feeders announcing it */
	bool used;
};
struct pmap {
	struct pmap_ent *e;
	size_t cap, n;
};

static size_t pm_hash(const struct bgp_prefix *p)
{
	uint64_t h = 0xcbf29ce484222325ull ^ p->family ^ (uint64_t)p->len << 8;
	for (unsigned i = 0; i < 16; i++)
		h = (h ^ p->addr[i]) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 31));
}

static struct pmap_ent *pm_get(struct pmap *m, const struct bgp_prefix *p0)
{
	struct bgp_prefix p = *p0;
	p.path_id = 0;
	memset(p.pad, 0, sizeof(p.pad));
	if ((m->n + 1) * 2 > m->cap) {
		struct pmap o = *m;
		m->cap = o.cap ? o.cap * 2 : 1 << 16;
		m->e = calloc(m->cap, sizeof(*m->e));
		if (!m->e)
			log_fatal("ricochet-load: out of memory");
		m->n = 0;
		for (size_t i = 0; i < o.cap; i++)
			if (o.e[i].used)
				*pm_get(m, &o.e[i].k) = o.e[i];
		free(o.e);
	}
	for (size_t i = pm_hash(&p) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->e[i].used) {
			m->e[i].used = true;
			m->e[i].k = p;
			m->e[i].mask = 0;
			m->n++;
			return &m->e[i];
		}
		if (!memcmp(&m->e[i].k, &p, sizeof(p)))
			return &m->e[i];
	}
}

static void pm_nlri(struct pmap *m, const struct msg_nlri *n, unsigned f, bool announce)
{
	struct msg_nlri_iter it;
	struct bgp_prefix p;
	if (!n->p || !n->len)
		return;
	msg_nlri_iter_init(&it, n);
	while (msg_nlri_next(&it, &p)) {
		struct pmap_ent *e = pm_get(m, &p);
		if (announce)
			e->mask |= 1ull << f;
		else
			e->mask &= ~(1ull << f);
	}
}

/* ---------------------------------------------------------------- stream building */

struct slice {
	uint64_t due_ns;                     /* offset from the start of the replay */
	struct load_bytes *b;                /* [feeders] */
};

struct replay {
	struct load_ctx *ctx;
	unsigned nf;
	struct slice *s;
	size_t ns, caps;
	struct pmap pm;
	uint64_t records, updates, prefixes, skipped;
	/* TABLE_DUMP_V2 packing state per feeder */
	struct pending {
		uint8_t blob[BGP_MAX_EXT_MSG];
		long blen;
		struct bgp_nexthop nh;
		uint8_t fam;
		struct bgp_prefix *pfx;
		size_t n, cap;
	} *pend;
	/* BGP4MP: peer address -> feeder */
	struct bgp_addr *paddr;
	size_t npaddr;
	struct msg_session sess;
	uint8_t *scratch;
};

static struct slice *slice_at(struct replay *r, uint64_t due)
{
	if (r->ns && r->s[r->ns - 1].due_ns + SLICE_NS > due)
		return &r->s[r->ns - 1];
	if (r->ns == r->caps) {
		r->caps = r->caps ? r->caps * 2 : 64;
		r->s = realloc(r->s, r->caps * sizeof(*r->s));
		if (!r->s)
			log_fatal("ricochet-load: out of memory");
	}
	struct slice *s = &r->s[r->ns++];
	s->due_ns = due;
	s->b = calloc(r->nf, sizeof(*s->b));
	if (!s->b)
		log_fatal("ricochet-load: out of memory");
	return s;
}

static void put_bytes(struct load_bytes *b, const uint8_t *p, size_t n)
{
	load_bytes_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static size_t feeder_max_msg(const struct replay *r, unsigned f)
{
	size_t m = r->ctx->feeders[f].sess.max_msg;
	return m ? m : BGP_MAX_MSG;
}

static void pend_flush(struct replay *r, unsigned f)
{
	struct pending *pd = &r->pend[f];
	struct slice *s = slice_at(r, 0);
	uint8_t m[BGP_MAX_EXT_MSG];
	size_t i = 0;
	while (i < pd->n) {
		size_t used = 0;
		size_t l = msg_update_pack(m, sizeof(m), feeder_max_msg(r, f), pd->fam, false, pd->blob,
					   (size_t)pd->blen, &pd->nh, pd->pfx + i, pd->n - i, &used);
		if (!l || !used) {
			r->skipped += pd->n - i;    /* attributes too large for one message */
			break;
		}
		put_bytes(&s->b[f], m, l);
		r->updates++;
		i += used;
	}
	pd->n = 0;
}

static void td2_entry(struct replay *r, const struct mrt_rib *rib, const struct mrt_rib_view *v)
{
	unsigned f = v->peer_index % r->nf;
	struct pending *pd = &r->pend[f];
	uint8_t blob[BGP_MAX_EXT_MSG];
	struct bgp_nexthop nh;
	long bl = mrt_attrs_split(v->attrs, v->attrs_len, rib->pfx.family, blob, sizeof(blob), &nh);
	if (bl < 0 || !nh.len) {
		r->skipped++;
		return;
	}
	if (pd->n && (pd->fam != rib->pfx.family || pd->blen != bl || memcmp(pd->blob, blob, (size_t)bl) ||
		      pd->nh.len != nh.len || memcmp(pd->nh.addr, nh.addr, nh.len)))
		pend_flush(r, f);
	if (!pd->n) {
		memcpy(pd->blob, blob, (size_t)bl);
		pd->blen = bl;
		pd->nh = nh;
		pd->fam = rib->pfx.family;
	}
	if (pd->n == pd->cap) {
		pd->cap = pd->cap ? pd->cap * 2 : 256;
		pd->pfx = realloc(pd->pfx, pd->cap * sizeof(*pd->pfx));
		if (!pd->pfx)
			log_fatal("ricochet-load: out of memory");
	}
	pd->pfx[pd->n] = rib->pfx;
	pd->pfx[pd->n].path_id = 0;
	pd->n++;
	pm_get(&r->pm, &rib->pfx)->mask |= 1ull << f;
	r->prefixes++;
}

static void bgp4mp_record(struct replay *r, const struct mrt_rec *rec, uint64_t first_us, double speed)
{
	struct mrt_bgp4mp m;
	if (mrt_bgp4mp_parse(rec, &m) != 0)
		return;
	if (m.msg_len < BGP_HDR_LEN || m.msg[18] != BGP_MSG_UPDATE)
		return;
	if (!m.as4 || m.addpath) {
		r->skipped++;
		return;
	}
	size_t pi;
	for (pi = 0; pi < r->npaddr; pi++)
		if (!memcmp(&r->paddr[pi], &m.peer, sizeof(m.peer)))
			break;
	if (pi == r->npaddr) {
		r->paddr = realloc(r->paddr, (r->npaddr + 1) * sizeof(*r->paddr));
		if (!r->paddr)
			log_fatal("ricochet-load: out of memory");
		r->paddr[r->npaddr++] = m.peer;
	}
	unsigned f = (unsigned)(pi % r->nf);
	if (m.msg_len > feeder_max_msg(r, f)) {
		r->skipped++;
		return;
	}
	struct msg_update u;
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	msg_update_parse(m.msg, m.msg_len, &r->sess, r->scratch, &u, &err);
	if (err.action == MSG_SESSION_RESET || err.action == MSG_AFI_DISABLE) {
		r->skipped++;
		return;
	}
	bool taw = err.action == MSG_TREAT_AS_WITHDRAW;
	pm_nlri(&r->pm, &u.withdrawn, f, false);
	pm_nlri(&r->pm, &u.mp_unreach, f, false);
	pm_nlri(&r->pm, &u.nlri, f, !taw);
	pm_nlri(&r->pm, &u.mp_reach, f, !taw);
	uint64_t us = (uint64_t)rec->ts_sec * 1000000u + rec->ts_usec;
	uint64_t due = speed > 0 && us > first_us ? (uint64_t)((double)(us - first_us) * 1000.0 / speed) : 0;
	struct slice *s = slice_at(r, due);
	put_bytes(&s->b[f], m.msg, m.msg_len);
	r->updates++;
}

/* ---------------------------------------------------------------- the phase */

static bool slice_sent(struct load_ctx *ctx)
{
	for (unsigned f = 0; f < ctx->o.feeders; f++) {
		const struct load_peer *p = &ctx->feeders[f];
		if (p->state == LOAD_PS_ESTABLISHED &&
		    atomic_load(&p->bulk_pos) < ctx->ann[f].len)
			return false;
	}
	return true;
}

static uint64_t mon_extra_min(struct load_ctx *ctx)
{
	uint64_t lo = UINT64_MAX;
	for (unsigned i = 0; i < ctx->o.monitors; i++) {
		/* the generated table is never announced in this mode, so prefixes of
		 * the file that happen to be in it count too */
		uint64_t e = atomic_load(&ctx->mons[i].extra) + atomic_load(&ctx->mons[i].filled);
		if (e < lo)
			lo = e;
	}
	return lo;
}

bool load_mrt_phase(struct load_ctx *ctx)
{
	struct load_phase_res *ph = &ctx->ph[1];
	ph->name = "mrt-replay";
	ph->ran = true;
	const struct load_opts *o = &ctx->o;
	int fd = open(o->mrt, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		snprintf(ph->note, sizeof(ph->note), "%.60s: %s", o->mrt, fd < 0 ? strerror(errno) : "empty");
		if (fd >= 0)
			close(fd);
		return false;
	}
	const uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		snprintf(ph->note, sizeof(ph->note), "mmap: %s", strerror(errno));
		return false;
	}
	uint64_t t_parse = log_now_ns();
	struct replay r = { .ctx = ctx, .nf = o->feeders };
	r.pend = calloc(r.nf, sizeof(*r.pend));
	r.scratch = malloc(MSG_SCRATCH_SIZE);
	if (!r.pend || !r.scratch)
		log_fatal("ricochet-load: out of memory");
	r.sess.as4 = true;
	r.sess.family[BGP_FAM_IPV4] = r.sess.family[BGP_FAM_IPV6] = true;
	r.sess.max_msg = BGP_MAX_EXT_MSG;
	r.sess.peer_as = r.sess.local_as = o->asn;
	size_t off = 0, total = (size_t)st.st_size;
	uint64_t first_us = 0;
	bool td2 = false, bad = false;
	slice_at(&r, 0);
	while (off < total) {
		struct mrt_rec rec;
		long n = mrt_next(map + off, total - off, &rec);
		if (n <= 0) {
			bad = true;
			break;
		}
		off += (size_t)n;
		r.records++;
		if (rec.type == MRT_TABLE_DUMP_V2) {
			struct mrt_rib rib;
			struct mrt_rib_view v;
			td2 = true;
			if (mrt_rib_parse(&rec, &rib) != 0)
				continue;       /* peer index table, or a family we do not replay */
			int k;
			while ((k = mrt_rib_next(&rib, &v)) == 1)
				td2_entry(&r, &rib, &v);
			if (k < 0)
				r.skipped++;
		} else if (rec.type == MRT_BGP4MP || rec.type == MRT_BGP4MP_ET) {
			if (!first_us)
				first_us = (uint64_t)rec.ts_sec * 1000000u + rec.ts_usec;
			bgp4mp_record(&r, &rec, first_us, o->mrt_speed);
		}
	}
	munmap((void *)map, (size_t)st.st_size);
	if (td2) {
		for (unsigned f = 0; f < r.nf; f++)
			pend_flush(&r, f);
	}
	/* End-of-RIB per family at the end of each feeder's stream */
	struct slice *last = &r.s[r.ns - 1];
	for (unsigned f = 0; f < r.nf; f++) {
		uint8_t eor[64];
		for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++)
			put_bytes(&last->b[f], eor, msg_eor_encode(eor, sizeof(eor), fam));
	}
	uint64_t expect = 0;
	for (size_t i = 0; i < r.pm.cap; i++)
		expect += r.pm.e && r.pm.e[i].used && r.pm.e[i].mask;
	load_report_break();
	if (!o->quiet)
		fprintf(stderr, "ricochet-load: %s: %llu records (%s), %llu UPDATEs to send in %zu slice%s, "
			"%llu skipped, %llu prefixes held at the end (%.2f s)%s\n", o->mrt,
			(unsigned long long)r.records, td2 ? "TABLE_DUMP_V2" : "BGP4MP", (unsigned long long)r.updates,
			r.ns, r.ns == 1 ? "" : "s", (unsigned long long)r.skipped, (unsigned long long)expect,
			(double)(log_now_ns() - t_parse) / 1e9, bad ? "; stopped at a malformed record" : "");

	/* send slice by slice, each at its due time, each after the previous one is out */
	uint64_t t0 = log_now_ns(), lp = 0;
	uint64_t deadline = t0 + (uint64_t)(o->timeout * 1e9);
	bool ok = true;
	for (size_t i = 0; i < r.ns && ok; i++) {
		while (!slice_sent(ctx) || log_now_ns() - t0 < r.s[i].due_ns) {
			if (log_now_ns() > deadline + r.s[i].due_ns || atomic_load(&ctx->stop)) {
				snprintf(ph->note, sizeof(ph->note), "timeout sending slice %zu of %zu", i, r.ns);
				ok = false;
				break;
			}
			usleep(1000);
		}
		if (!ok)
			break;
		for (unsigned f = 0; f < r.nf; f++) {
			load_bytes_free(&ctx->ann[f]);
			ctx->ann[f] = r.s[i].b[f];
			memset(&r.s[i].b[f], 0, sizeof(r.s[i].b[f]));
		}
		if (!load_worker_cmd(&ctx->fw, LOAD_CMD_ANNOUNCE, 10))
			log_fatal("ricochet-load: feeder thread does not answer");
		if (i == 0)
			t0 = atomic_load(&ctx->t0_ns);
		if (log_now_ns() - lp > 200000000ull) {
			lp = log_now_ns();
			load_report_progress(ctx, "mrt-replay", lp, false);
		}
	}
	/* done when every monitor holds exactly the prefixes announced at the end */
	uint64_t done_ns = 0;
	while (ok) {
		uint64_t now = log_now_ns();
		if (mon_extra_min(ctx) == expect && slice_sent(ctx)) {
			done_ns = now;
			break;
		}
		if (now > deadline + (r.ns ? r.s[r.ns - 1].due_ns : 0) || atomic_load(&ctx->stop)) {
			snprintf(ph->note, sizeof(ph->note), "timeout: slowest monitor holds %llu of %llu prefixes",
				 (unsigned long long)mon_extra_min(ctx), (unsigned long long)expect);
			ok = false;
			break;
		}
		if (now - lp > 200000000ull) {
			lp = now;
			load_report_progress(ctx, "mrt-replay", now, false);
		}
		usleep(2000);
	}
	ph->prefixes = r.prefixes ? r.prefixes : expect;
	ph->ok = ok;
	if (ok) {
		ph->seconds = (double)(done_ns - t0) / 1e9;
		snprintf(ph->note, sizeof(ph->note), "%llu UPDATEs, every monitor holds %llu prefixes",
			 (unsigned long long)r.updates, (unsigned long long)expect);
	}
	for (size_t i = 0; i < r.ns; i++) {
		for (unsigned f = 0; f < r.nf; f++)
			load_bytes_free(&r.s[i].b[f]);
		free(r.s[i].b);
	}
	for (unsigned f = 0; f < r.nf; f++)
		free(r.pend[f].pfx);
	free(r.pend);
	free(r.s);
	free(r.pm.e);
	free(r.paddr);
	free(r.scratch);
	return ok;
}
