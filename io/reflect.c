/*
 * reflect.c - the reflection thread: change journal -> update groups ->
 * shared, pre-encoded UPDATE chunks -> members' output queues.
 *
 * Why it is built this way: for a route reflector the cost is fan-out, not
 * ingest.  Clients that would receive the same bytes (same role, same
 * negotiated capabilities) form an update group, and each batch of changed
 * prefixes is encoded once per group.  Per member the only work is queueing a
 * reference to the chunk.  The one per-client exception - never send a route
 * back to the peer it came from - is handled by making chunks homogeneous in
 * their source peer, so the source is simply not given that chunk.
 *
 * Ordering: every message a peer receives is produced here, on one thread, and
 * queued in production order, so a peer's view always converges to the latest
 * state read from the RIB (a later read is always at least as new).  Table
 * dumps for new sessions run on this thread too, interleaved with live
 * batches, which is why a peer can join its group before its dump finishes.
 * Nothing here depends on the order in which different prefixes come out of
 * the journal: each round takes the journal's live lane (UPDATEs) first and
 * then at most bulk_batch prefixes of its bulk lane (sweeps), each as a batch
 * of its own, and a prefix is handed over once with its state read then, in
 * whichever lane it waited (everything below - the advertised word, paused
 * members' pending sets, ADD-PATH ids and deferred FIFOs - is per prefix).
 *
 * The per-node advertised word (rib_node_out_state) holds 1 + the peer index
 * of the best path last advertised, 0 for nothing, plus ADV_NONCLIENT when
 * that path came from a non-client (so no non-client group was given it).  It
 * lets a withdrawal be skipped when nothing was advertised - to a non-client
 * group, when what was advertised came from a non-client: a table of routes
 * from non-clients leaving must not cost every non-client a withdrawal of
 * every prefix - and tells when the source of the best path changed to a
 * group member that must now get a withdrawal of the path it received earlier.
 * The word is per prefix, not per group: a group that did not negotiate the
 * prefix's family is skipped outright (it was never sent the prefix, so it
 * gets no withdrawal either; an IPv6-only client used to be sent every IPv4
 * withdrawal).
 *
 * Threading: only the reflection thread runs the code below, except the
 * refl_peer_up/down/route_refresh entry points, which post events under
 * ev_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tsan.h"
#include "io/reflect.h"
#include "io/reflect_adv.h"

/* ------------------------------------------------------------ obufs */

struct obuf *obuf_new(size_t cap)
{
	struct obuf *b = malloc(sizeof(*b) + cap);
	if (!b)
		log_fatal("obuf_new: out of memory (%zu bytes)", cap);
	b->refcnt = 1;
	b->len = 0;
	b->cap = (uint32_t)cap;
	b->rx_ns = 0;
	b->group = 0;
	b->npfx = 0;
	return b;
}

void obuf_ref(struct obuf *b)
{
	/* __atomic builtins, not uatomic: TSan sees these (liburcu's are asm) */
	uint32_t old = __atomic_fetch_add(&b->refcnt, 1, __ATOMIC_RELAXED);
	if (old == 0 || old > (1u << 30))
		log_fatal("obuf_ref: bad refcount %u", old);
}

void obuf_unref(struct obuf *b)
{
	uint32_t n = __atomic_sub_fetch(&b->refcnt, 1, __ATOMIC_ACQ_REL);
	if (n == UINT32_MAX)
		log_fatal("obuf_unref: refcount underflow");
	if (n == 0)
		free(b);
}

/* ------------------------------------------------------------ batch buckets */

enum { BK_ANNOUNCE = 0, BK_WITHDRAW = 1, BK_ONLY_WITHDRAW = 2 };

struct refl_ent {
	struct bgp_prefix pfx;
	uint32_t next;
};

struct refl_bucket {
	struct attr_set *attr;           /* NULL for withdrawals */
	uint32_t src;                    /* announce: source peer; only-withdraw: target */
	uint8_t fam, kind;
	uint32_t head, tail, n;
};

struct refl_bset {
	struct refl_bucket *b;
	uint32_t nb, capb;
	uint32_t *ht;                    /* bucket index + 1, open addressing */
	uint32_t htcap;                  /* power of two */
	struct refl_ent *e;
	uint32_t ne, cape;
};

static void bset_reset(struct refl_bset *s)
{
	if (s->nb)
		memset(s->ht, 0, s->htcap * sizeof(*s->ht));
	s->nb = 0;
	s->ne = 0;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q)
		log_fatal("reflect: out of memory (%zu bytes)", n);
	return q;
}

static uint64_t bk_hash(const void *attr, uint32_t src, uint8_t fam, uint8_t kind)
{
	uint64_t h = (uint64_t)(uintptr_t)attr * 0x9E3779B97F4A7C15ull;
	h ^= ((uint64_t)src << 16 | (uint64_t)fam << 8 | kind) * 0xC2B2AE3D27D4EB4Full;
	return h ^ (h >> 29);
}

static void bset_grow_ht(struct refl_bset *s)
{
	uint32_t ncap = s->htcap ? s->htcap * 2 : 1024;
	free(s->ht);
	s->ht = calloc(ncap, sizeof(*s->ht));
	if (!s->ht)
		log_fatal("reflect: out of memory");
	s->htcap = ncap;
	for (uint32_t i = 0; i < s->nb; i++) {
		struct refl_bucket *b = &s->b[i];
		uint64_t h = bk_hash(b->attr, b->src, b->fam, b->kind);
		for (uint32_t j = (uint32_t)h & (ncap - 1);; j = (j + 1) & (ncap - 1)) {
			if (!s->ht[j]) {
				s->ht[j] = i + 1;
				break;
			}
		}
	}
}

static void bset_add(struct refl_bset *s, struct attr_set *attr, uint32_t src, uint8_t kind,
		     const struct bgp_prefix *pfx)
{
	if ((s->nb + 1) * 2 > s->htcap)
		bset_grow_ht(s);
	uint64_t h = bk_hash(attr, src, pfx->family, kind);
	uint32_t j = (uint32_t)h & (s->htcap - 1);
	struct refl_bucket *b = NULL;
	for (;; j = (j + 1) & (s->htcap - 1)) {
		uint32_t v = s->ht[j];
		if (!v)
			break;
		struct refl_bucket *c = &s->b[v - 1];
		if (c->attr == attr && c->src == src && c->fam == pfx->family && c->kind == kind) {
			b = c;
			break;
		}
	}
	if (!b) {
		if (s->nb == s->capb) {
			s->capb = s->capb ? s->capb * 2 : 1024;
			s->b = xrealloc(s->b, s->capb * sizeof(*s->b));
		}
		b = &s->b[s->nb];
		*b = (struct refl_bucket){ .attr = attr, .src = src, .fam = pfx->family, .kind = kind,
					   .head = UINT32_MAX, .tail = UINT32_MAX };
		s->ht[j] = ++s->nb;
	}
	if (s->ne == s->cape) {
		s->cape = s->cape ? s->cape * 2 : 4096;
		s->e = xrealloc(s->e, s->cape * sizeof(*s->e));
	}
	uint32_t ei = s->ne++;
	s->e[ei].pfx = *pfx;
	s->e[ei].next = UINT32_MAX;
	if (b->tail == UINT32_MAX)
		b->head = ei;
	else
		s->e[b->tail].next = ei;
	b->tail = ei;
	b->n++;
}

/* ------------------------------------------------------------ ADD-PATH state */

/*
 * For ADD-PATH groups the reflection thread remembers which path ids it
 * advertised for each prefix, so that a path leaving the top N is withdrawn
 * by id, and with which attribute set, so that a prefix change re-sends only
 * the paths that are new or changed: the group's struct refl_adv
 * (io/reflect_adv.c), with a spill for the ids a dump adds past a slot's 2N.
 */

/* The path id we send for a path: source peer and the id it used, combined.
 * Unique per prefix while peer indexes and received ids stay below 65536. */
static inline uint32_t out_path_id(const struct rib_path *p)
{
	return ((p->path_id & 0xFFFFu) << 16) | ((p->peer + 1) & 0xFFFFu);
}

/* The advertised word (see the top of this file): 1 + source peer index in
 * the low 17 bits (peer indexes are below RIB_MAX_PEERS = 65536),
 * ADV_NONCLIENT when the source was a non-client, which refl_export_ok never
 * gives to a non-client.  The 14 bits between are pending marks, two per
 * ADD-PATH group (struct refl_group pbit, pbit2): the node has a first,
 * respectively a second (last) entry in that group's deferred FIFO, so the
 * FIFO holds each node at most twice. */
#define ADV_NONCLIENT 0x80000000u
#define ADV_PEER_MASK 0x0001FFFFu
#define ADV_PEND_MASK 0x7FFE0000u
_Static_assert(RIB_MAX_PEERS + 1 <= ADV_PEER_MASK, "peer index + 1 fits the advertised word");

/* ------------------------------------------------------------ groups */

struct refl_group {
	struct refl_group *next;
	uint32_t id;
	uint8_t role;                    /* enum peer_role of the members */
	bool as4;
	bool addpath[BGP_FAM_COUNT];
	bool fam[BGP_FAM_COUNT];
	uint8_t addpath_n;               /* ADD-PATH send: paths per prefix (0 = best only) */
	uint32_t max_msg;
	struct refl_adv adv;             /* ADD-PATH: path ids advertised per prefix */
	struct dump_cohort *cohorts;     /* table dumps in progress */
	struct peer **join;              /* members waiting for a dump to start */
	uint32_t njoin, capjoin;
	struct refl_pending *join_live;  /* sent live since they joined (dump_note_live) */
	struct peer *members;
	uint32_t n_members;
	struct refl_bset bs;
	/* ADD-PATH group backpressure (see "slow readers"): */
	uint32_t pbit, pbit2;            /* its pending marks in the advertised word; 0 = none */
	bool ap_paused;                  /* live changes go to `pend`, not to the members */
	uint64_t ap_stall_ns;            /* since when deferred work waits for a member; 0 = not */
	struct refl_gpend *pend;         /* the prefixes deferred, oldest first (NULL = none) */
};

/* A FIFO of pinned nodes in blocks of GP_BLOCK (64 KiB; see "slow
 * readers"): a node pointer with GP_LAST set for a node's second entry, and
 * for a first entry the tag of the path it was deferred for (low 16 bits of
 * its out path id, 0 = none). */
#define GP_BLOCK 6552
_Static_assert(sizeof(uintptr_t) + sizeof(uint16_t) == REFL_AP_DEFER_BYTES, "deferred entry size");
#define GP_LAST ((uintptr_t)1)
struct gp_block {
	struct gp_block *next;
	uint32_t rd, wr;
	uintptr_t n[GP_BLOCK];
	uint16_t tag[GP_BLOCK];
};
struct refl_gpend {
	struct gp_block *head, *tail;
	size_t used;
};

enum refl_ev_type { EV_UP, EV_DOWN, EV_REFRESH };
struct refl_ev {
	uint8_t type, family;
	struct peer *p;
};

/*
 * Releasing a drained batch (rib_journal_release_n) prunes the prefixes it
 * left empty, a tree descent each under the stripe locks: after a mass
 * withdrawal that is most of the reflection thread's work.  So a big batch is
 * handed to a helper thread (refl-release) and released while the next ones
 * are drained and encoded.  The hand-over is a FIFO of up to RELEASE_QMAX
 * batches: the helper owns a batch's buffer from the hand-over until it puts
 * it back on the spare list, and the reflection thread waits only when the
 * FIFO is full.  With one batch at a time (before), a mass withdrawal's
 * output was paced by the helper's descents: S2's 5 M withdrawals ended with
 * the helper alone on a core for 0.5 s while the monitor waited for the
 * last batches ("Stop 20" in docs/BENCHMARKS.md).  Pruning is memory
 * housekeeping, not part of what a client is told, so it may lag: the
 * FIFO bounds how far (RELEASE_QMAX * o.batch nodes, and 8 bytes each of
 * buffer).  Releasing concurrently with the reflection thread is safe: a
 * node drained again in the meantime was re-queued, which took a journal
 * reference of its own, so it cannot be pruned under it.
 */
#define RELEASE_ASYNC_MIN 4096
#define RELEASE_QMAX 32
struct refl_release {
	pthread_t thr;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;               /* hand-over, buffer returned, stop */
	struct rib_node **q[RELEASE_QMAX];   /* FIFO of handed-over batches */
	size_t qn[RELEASE_QMAX];
	unsigned head, count;            /* count: queued + the one being released */
	struct rib_node **spare[RELEASE_QMAX];   /* buffers of o.batch entries */
	unsigned nspare;
	bool stop;
};

struct refl {
	struct refl_opts o;
	pthread_t thr;
	bool started;
	struct refl_release rel;
	atomic_int stop;                 /* refl_stop -> reflection thread */
	pthread_mutex_t ev_lock;
	struct refl_ev *ev;
	size_t n_ev, cap_ev;
	struct refl_group *groups;
	uint32_t next_group_id;
	uint32_t pbits;                  /* pending marks (ADV_PEND_MASK bits) in use by groups */
	struct rib_node **batch;
	struct bgp_prefix *tmp;          /* prefixes of one bucket, contiguous */
	size_t tmp_cap;
	struct refl_bset dump_bs;        /* scratch for one dump step */
	struct obuf *scratch;            /* encoding buffer, copied out exactly on delivery */
	struct rib_node **batch_rel;     /* DUMP_STEP nodes a resync step releases */
	struct rib_node **gp_rel;        /* o.batch nodes an ADD-PATH group's deferred step releases */
	uint64_t last_batch_end_ns;
	uint64_t last_reclaim_ns;
	uint64_t cur_stamp;              /* live batch: receive time of its oldest change */
	uint32_t cur_npfx;               /* prefixes encoded into scratch so far */
	struct refl_stats st;            /* the reflection thread's own, written freely */
	pthread_mutex_t pub_lock;        /* guards pub (a leaf lock) */
	struct refl_stats pub;           /* st as of the end of the last round: refl_get_stats */
};

#define DUMP_STEP      4096
#define BATCH_GATHER_NS (500 * 1000ull)
#define DUMP_HIGHWATER (8u << 20)    /* a dump pauses while the peer has this much queued */

static bool peer_is_ibgp_role(uint8_t role)
{
	return role == PEER_RR_CLIENT || role == PEER_IBGP;
}

/* On the "up" event only: p->sess belongs to p's I/O thread, but it stays
 * as it is until this thread has handled the session's "down" and answered
 * "reset done" (struct peer, sess). */
static struct refl_group *group_find_or_create(struct refl *r, struct peer *p)
{
	struct refl_group key = { 0 };
	key.role = (uint8_t)p->cfg.role;
	key.as4 = p->sess.as4;
	key.max_msg = (uint32_t)p->sess.max_msg;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
		key.fam[f] = p->sess.family[f];
		key.addpath[f] = p->sess.addpath_tx[f];
		if (key.addpath[f])
			key.addpath_n = p->cfg.addpath_send > REFL_ADDPATH_MAX ? REFL_ADDPATH_MAX
										: p->cfg.addpath_send;
	}
	for (struct refl_group *g = r->groups; g; g = g->next) {
		if (g->role == key.role && g->as4 == key.as4 && g->max_msg == key.max_msg &&
		    g->addpath_n == key.addpath_n &&
		    !memcmp(g->fam, key.fam, sizeof(key.fam)) &&
		    !memcmp(g->addpath, key.addpath, sizeof(key.addpath)))
			return g;
	}
	struct refl_group *g = calloc(1, sizeof(*g));
	if (!g)
		log_fatal("reflect: out of memory");
	*g = key;
	refl_adv_init(&g->adv, g->addpath_n, r->o.attrs, &r->st.adv_bytes, &r->st.adv_spilled);
	if (g->addpath_n) {
		for (uint32_t b = ADV_PEND_MASK & (~ADV_PEND_MASK + 1); b & ADV_PEND_MASK; b <<= 2) {
			if (!(r->pbits & (b | b << 1))) {
				g->pbit = b;
				g->pbit2 = b << 1;
				r->pbits |= b | b << 1;
				break;
			}
		}
		if (!g->pbit)
			log_warn("reflect: more than 7 ADD-PATH update groups: group %u has no "
				 "group-level backpressure (its slow members are reset past %u MiB)",
				 r->next_group_id, 256u);
	}
	g->id = r->next_group_id++;
	g->next = r->groups;
	r->groups = g;
	r->st.groups++;
	return g;
}

struct dump_cohort;
static void cohort_free(struct refl *r, struct refl_group *g, struct dump_cohort *c);
static void pending_set_free(struct refl *r, struct refl_pending **ps);
static void gpend_free(struct refl *r, struct refl_group *g);

static void group_remove_member(struct refl *r, struct peer *p)
{
	struct refl_group *g = p->group;
	if (!g)
		return;
	for (struct peer **pp = &g->members; *pp; pp = &(*pp)->group_next) {
		if (*pp == p) {
			*pp = p->group_next;
			g->n_members--;
			break;
		}
	}
	p->group = NULL;
	p->group_next = NULL;
	if (g->n_members == 0) {
		for (struct refl_group **gp = &r->groups; *gp; gp = &(*gp)->next) {
			if (*gp == g) {
				*gp = g->next;
				break;
			}
		}
		free(g->bs.b);
		free(g->bs.ht);
		free(g->bs.e);
		gpend_free(r, g);         /* before the table: the nodes' marks, references */
		r->pbits &= ~(g->pbit | g->pbit2);
		refl_adv_free(&g->adv);
		while (g->cohorts)
			cohort_free(r, g, g->cohorts);
		pending_set_free(r, &g->join_live);
		free(g->join);
		free(g);
		r->st.groups--;
	}
}

/* ------------------------------------------------------------ slow readers */

/*
 * Backpressure without head-of-line blocking.  A member whose output queue
 * passes OQ_HIGH is paused: live chunks are no longer queued to it (so its
 * memory stops growing and nobody waits for it), and instead every prefix
 * that changes is remembered in its pending set - at most one entry per
 * prefix, so the set is bounded by the table size whatever the churn.  When
 * its queue has drained below OQ_LOW, the pending prefixes are re-read from
 * the RIB and sent to it alone (announce or withdraw, current state), in
 * bounded steps; when the set is empty it rejoins the live stream.
 *
 * ADD-PATH members cannot be resynchronised alone: withdrawals are by path
 * id, and what a member holds is known only as the group's table of
 * advertised ids (struct refl_adv), which is the same for every member.  So
 * an ADD-PATH group is paused as a whole.  When its most loaded member has
 * more than AP_HIGH queued, the group stops taking live changes: each
 * changed prefix goes into the group's deferred FIFO, pinned like a
 * pending-set entry, in journal order, at most twice (the node's two
 * pending marks, see ADV_PEND_MASK).  When the most loaded member is below
 * AP_LOW again, the deferred entries are taken a batch (o.batch) at a time,
 * each while that member stays below AP_LOW, through the code a live change
 * runs (addpath_node), encoded once and queued to every member; changes go
 * on into the FIFO until it is empty, so they keep their order.
 * That is correct whenever it runs: addpath_node diffs the prefix's current
 * paths against what the table says the members were sent, so a prefix
 * taken late sends exactly the withdrawals by id and announcements still
 * needed, and one that changed back sends nothing.
 * Why two entries: what packs UPDATEs is taking together the paths that
 * share attributes and source, and those came together - a feeder sends the
 * prefixes of one attribute set one after the other.  With one entry per
 * prefix, at its first change, a prefix's later path (another feeder's, in
 * that feeder's own order) was sent from the first feeder's position, among
 * prefixes it shares nothing with: S3ap's monitors got 1.8 NLRI per deferred
 * UPDATE against 5.6 live, 14 % more UPDATEs in all than with no pause
 * (median of 5; up to 54 %; docs/BENCHMARKS.md, "Stop 13").  So a prefix's first change gives it a first entry, tagged with
 * the path that change brought (the first of its top N the members do not
 * have as it is); its second change a second, last entry at that change's
 * position; later changes nothing more (the last entry reads them).  A first
 * entry whose prefix still has a last one queued announces only the tagged
 * path (addpath_node_tag, recorded by refl_adv_add); the last entry, or a
 * first with none behind it, diffs the whole prefix.  A change of a prefix
 * the journal already had queued (both feeders' paths before the drain) is
 * one change: its paths still go out together.
 * Dumps of joining members are independent (they add to the table with
 * refl_adv_union, paced per member).  A family without ADD-PATH in such a
 * group is sent its current best as a resync sends it (announce, or
 * withdraw, to all but the source, which is sent a withdrawal), by the last
 * entry of the prefix (a first entry with a last behind it sends nothing).
 *
 * Memory: the group's queued output stays near AP_HIGH plus one batch
 * instead of growing to OQ_HARD, and a deferred prefix costs at most two
 * entries (REFL_AP_DEFER_BYTES each) however often it changes.  The price:
 * while one member is slow the others wait for it, and until the FIFO is
 * empty every change reaches them through it.  A member that alone keeps
 * the group waiting - the group has had deferred work and that member above
 * AP_LOW for AP_LAG_NS while every other member is below AP_LOW - is reset
 * with Cease/Out of Resources, as OQ_HARD does (which stays the last resort,
 * and the only rule for a group that got no pending marks: more than 7
 * ADD-PATH groups).
 *
 * AP_HIGH: S3ap (100 members, 2.56 M paths) peaked with about 145 MB of
 * shared output queued without it; see docs/BENCHMARKS.md, "Stop 12".
 */
#define OQ_HIGH  (64u << 20)
#define OQ_LOW   (16u << 20)
#define OQ_HARD  (256u << 20)
#define AP_HIGH  (16u << 20)
#define AP_LOW   (4u << 20)
#define AP_LAG_NS (30ull * 1000000000ull)

struct refl_pending {
	struct rib_node **slot;          /* NULL = empty; each entry holds a node reference */
	size_t cap, used;
	size_t scan;                     /* resync cursor */
};

static inline size_t node_hash(const struct rib_node *n, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)n * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 24) & (cap - 1);
}

/* The slot of n in ps: where it is, or the empty one where it would go. */
static size_t pending_slot(const struct refl_pending *ps, const struct rib_node *n)
{
	size_t i = node_hash(n, ps->cap);
	while (ps->slot[i] && ps->slot[i] != n)
		i = (i + 1) & (ps->cap - 1);
	return i;
}

static void pending_insert(struct refl_pending *ps, struct rib_node *n)
{
	size_t i = pending_slot(ps, n);
	if (!ps->slot[i]) {
		ps->slot[i] = n;
		ps->used++;
	}
}

static void pending_grow(struct refl_pending *ps)
{
	struct refl_pending old = *ps;
	ps->cap = old.cap ? old.cap * 2 : 1024;
	ps->used = 0;
	ps->scan = 0;
	ps->slot = calloc(ps->cap, sizeof(*ps->slot));
	if (!ps->slot)
		log_fatal("reflect: out of memory");
	for (size_t i = 0; i < old.cap; i++)
		if (old.slot[i])
			pending_insert(ps, old.slot[i]);
	free(old.slot);
}

/* Remember a changed prefix for a paused peer: a pinned node, once. */
static void pending_add(struct refl_pending *ps, struct rib_node *n)
{
	if ((ps->used + 1) * 2 > ps->cap)
		pending_grow(ps);
	size_t i = pending_slot(ps, n);
	if (!ps->slot[i]) {
		rib_node_hold(n);
		ps->slot[i] = n;
		ps->used++;
	}
}

static bool pending_has(const struct refl_pending *ps, const struct rib_node *n)
{
	return ps && ps->used && ps->slot[pending_slot(ps, n)] != NULL;
}

/* Release every pinned node of *ps and free it (NULL: nothing). */
static void pending_set_free(struct refl *r, struct refl_pending **ps)
{
	if (!*ps)
		return;
	for (size_t i = 0; i < (*ps)->cap; i++)
		if ((*ps)->slot[i])
			rib_journal_release(r->o.rib, (*ps)->slot[i]);
	free((*ps)->slot);
	free(*ps);
	*ps = NULL;
}

static void pending_free(struct refl *r, struct peer *p)
{
	pending_set_free(r, &p->pending);
	p->paused = false;
}

static bool exportable(const struct refl *r, const struct rib_path *best, unsigned fam,
		       const struct refl_group *g);

static void live_set_add(struct refl_pending **ps, struct rib_node *n)
{
	if (!*ps && !(*ps = calloc(1, sizeof(**ps))))
		log_fatal("reflect: out of memory");
	pending_add(*ps, n);
}

/* The deferred FIFO of an ADD-PATH group (see "slow readers"): entry e of
 * node n, pinned until taken.  A first entry (mark pbit) carries tag, a
 * second one (mark pbit2) is GP_LAST. */
static void gpend_push(struct refl *r, struct refl_group *g, struct rib_node *n, uintptr_t e,
		       uint16_t tag)
{
	struct refl_gpend *q = g->pend;
	if (!q && !(q = g->pend = calloc(1, sizeof(*q))))
		log_fatal("reflect: out of memory");
	if (!q->tail || q->tail->wr == GP_BLOCK) {
		struct gp_block *b = malloc(sizeof(*b));
		if (!b)
			log_fatal("reflect: out of memory");
		b->next = NULL;
		b->rd = b->wr = 0;
		if (q->tail)
			q->tail->next = b;
		else
			q->head = b;
		q->tail = b;
	}
	rib_node_hold(n);
	q->tail->tag[q->tail->wr] = tag;
	q->tail->n[q->tail->wr++] = e;
	q->used++;
	r->st.ap_deferred++;
}

/* The tag of a first entry: the first of the prefix's top N exportable paths
 * that the members do not have as it is now (0 = none, or not ADD-PATH). */
static uint16_t gpend_tag(struct refl *r, struct refl_group *g, struct rib_node *n, unsigned fam,
			  const struct rib_pathset *ps)
{
	if (!ps || !g->addpath[fam])
		return 0;
	const struct refl_adv_slot *old = refl_adv_find(&g->adv, n);
	uint8_t k = 0;
	for (unsigned i = 0; i < ps->n && k < g->addpath_n; i++) {
		const struct rib_path *p = &ps->p[i];
		if (!exportable(r, p, fam, g))
			continue;
		k++;
		uint32_t id = out_path_id(p);
		if (!refl_adv_same(&g->adv, old, id, p->attr))
			return (uint16_t)id;
	}
	return 0;
}

/*
 * Node n changed while group g is paused (adv its advertised word, ps its
 * paths): its first change gives it a first entry, tagged with the path it
 * brought; its next one a second, last entry, at the position of that
 * change; later ones nothing (the last entry, still queued, will read them).
 */
static void gpend_add(struct refl *r, struct refl_group *g, struct rib_node *n, unsigned fam,
		      const struct rib_pathset *ps, uint32_t *adv)
{
	if (*adv & g->pbit2)
		return;
	if ((uintptr_t)n & GP_LAST)
		log_fatal("reflect: RIB node %p is not aligned", (void *)n);
	if (*adv & g->pbit) {
		*adv |= g->pbit2;
		gpend_push(r, g, n, (uintptr_t)n | GP_LAST, 0);
	} else {
		*adv |= g->pbit;
		gpend_push(r, g, n, (uintptr_t)n, gpend_tag(r, g, n, fam, ps));
	}
}

/* The oldest entry: its node, its mark cleared; *tag and *last say what it
 * is.  The caller releases the node. */
static struct rib_node *gpend_pop(struct refl *r, struct refl_group *g, uint16_t *tag, bool *last)
{
	struct refl_gpend *q = g->pend;
	struct gp_block *b = q->head;
	uintptr_t e = b->n[b->rd];
	*tag = b->tag[b->rd++];
	if (b->rd == b->wr) {
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		free(b);
	}
	q->used--;
	r->st.ap_deferred--;
	struct rib_node *n = (struct rib_node *)(e & ~GP_LAST);
	*last = e & GP_LAST;
	*rib_node_out_state(n) &= ~(*last ? g->pbit2 : g->pbit);
	return n;
}

static size_t gpend_used(const struct refl_group *g)
{
	return g->pend ? g->pend->used : 0;
}

/* The group goes away: every deferred node unmarked and released. */
static void gpend_free(struct refl *r, struct refl_group *g)
{
	while (gpend_used(g)) {
		size_t n = 0;
		uint16_t tag;
		bool last;
		while (n < DUMP_STEP && gpend_used(g))
			r->batch_rel[n++] = gpend_pop(r, g, &tag, &last);
		rib_journal_release_n(r->o.rib, r->batch_rel, n);
	}
	free(g->pend);
	g->pend = NULL;
	g->ap_paused = false;
}

/* ------------------------------------------------------------ delivery */

static void deliver_one(struct peer *m, struct obuf *b)
{
	struct outq_ent *e = malloc(sizeof(*e));
	if (!e)
		log_fatal("reflect: out of memory");
	cds_wfcq_node_init(&e->node);
	obuf_ref(b);
	e->b = b;
	atomic_fetch_add_explicit(&m->oq_bytes, b->len, memory_order_relaxed);
	tsan_release(e);                 /* e and *b are complete: peer_flush acquires */
	cds_wfcq_enqueue(&m->oq_head, &m->oq_tail, &e->node);
	io_peer_kick(m);
}

enum { TO_ALL_EXCEPT, TO_ONLY, TO_COHORT };

/*
 * A table dump shared by the members of one group that asked for it at about
 * the same time (sessions coming up together, route refreshes): the walk and
 * the encoding are done once and the chunks go to every member of the
 * cohort, except that a chunk of routes from peer X is not given to X.
 */
struct dump_cohort {
	struct dump_cohort *next;
	struct peer **m;
	uint32_t n, cap;
	uint8_t family;
	bool started;
	struct bgp_prefix cursor;
	struct refl_pending *live;       /* prefixes the group was sent live since the
					  * members joined: the walk skips them */
};

/*
 * Dumps and live changes (see "table dumps"): a member that asked for a dump
 * is in its group and gets the live chunks meanwhile, so a prefix that
 * changes before the walk reaches it would be sent twice - live, then by the
 * walk.  Each prefix the group was sent live since a cohort's members joined,
 * ahead of the cohort's cursor, is remembered here (pinned, once) and the
 * walk skips it: the members hold its latest state already, and later
 * changes come live too.  Withdrawals are not remembered (the walk sends no
 * prefix without paths; one announced again is sent live again): a session's
 * table swept while a client dumps would pin every node of it.  Only for a
 * group that sends the best path alone - an ADD-PATH group's live change
 * carries the changed paths, not all of them, so its walk sends every prefix
 * as before.  A paused member misses live chunks but keeps the prefixes in
 * its pending set, which its resync sends after the dump.  Members waiting
 * in g->join joined before this round's live batch (events come first in a
 * round, cohort_form after the batches), so the batch is theirs too.
 */
static bool dump_ahead(const struct dump_cohort *c, const struct bgp_prefix *pfx)
{
	if (pfx->family != c->family)
		return pfx->family > c->family;
	if (!c->started)
		return true;
	/* rib_walk's order: address, then length */
	int d = memcmp(pfx->addr, c->cursor.addr, sizeof(pfx->addr));
	return d > 0 || (d == 0 && pfx->len > c->cursor.len);
}

static void dump_note_live(struct refl_group *g, struct rib_node *n, const struct bgp_prefix *pfx)
{
	if (g->njoin)
		live_set_add(&g->join_live, n);
	for (struct dump_cohort *c = g->cohorts; c; c = c->next)
		if (dump_ahead(c, pfx))
			live_set_add(&c->live, n);
}

/*
 * Hand the encoded bytes in scratch to the group's members as one shared,
 * exact-size chunk (encoding happens in a reusable scratch buffer so that a
 * small batch never pins a large allocation), then empty scratch.
 */
static struct dump_cohort *cur_cohort; /* TO_COHORT target (reflection thread only) */

static void deliver(struct refl *r, struct refl_group *g, struct obuf *scratch, int mode, uint32_t peer)
{
	struct obuf *b = NULL;
	if (scratch->len) {
		b = obuf_new(scratch->len);
		memcpy(b->data, scratch->data, scratch->len);
		b->len = scratch->len;
		b->rx_ns = r->cur_stamp;
		b->group = g->id;
		b->npfx = r->cur_npfx;
		scratch->len = 0;
	}
	r->cur_npfx = 0;
	if (b) {
		r->st.chunks++;
		r->st.bytes_encoded += b->len;
		if (mode == TO_ONLY) {
			struct peer *m = r->o.peers[peer];
			if (m && m->group == g)
				deliver_one(m, b);
		} else if (mode == TO_COHORT) {
			for (uint32_t i = 0; i < cur_cohort->n; i++)
				if (cur_cohort->m[i]->id != peer)
					deliver_one(cur_cohort->m[i], b);
		} else {
			for (struct peer *m = g->members; m; m = m->group_next)
				if (m->id != peer && !m->paused)
					deliver_one(m, b);
		}
		obuf_unref(b);
	}
}

/* ------------------------------------------------------------ export policy */

bool refl_export_ok(const struct refl *r, const struct rib_path *best, unsigned fam, uint8_t role,
		    const bool *families)
{
	const struct attr_set *a = best->attr;
	if (fam >= BGP_FAM_COUNT || !families[fam])
		return false;
	if (a->flags & ATTR_F_NO_ADVERTISE)
		return false;
	if (role == PEER_RS_CLIENT && (a->flags & (ATTR_F_NO_EXPORT | ATTR_F_NO_EXPORT_SUBCONFED)))
		return false;
	const struct peer *src = rcu_dereference(r->o.peers[best->peer]);
	uint8_t src_role = src ? (uint8_t)src->cfg.role : PEER_RR_CLIENT;
	/* RFC 4456 s6: routes from a non-client go to clients only */
	if (src_role == PEER_IBGP && role == PEER_IBGP)
		return false;
	return true;
}

static bool exportable(const struct refl *r, const struct rib_path *best, unsigned fam,
		       const struct refl_group *g)
{
	return refl_export_ok(r, best, fam, g->role, g->fam);
}


static uint32_t adv_word(const struct refl *r, uint32_t src)
{
	const struct peer *sp = rcu_dereference(r->o.peers[src]);
	uint8_t src_role = sp ? (uint8_t)sp->cfg.role : PEER_RR_CLIENT;
	return (src + 1) | (src_role == PEER_IBGP ? ADV_NONCLIENT : 0);
}

/* Was the best path recorded in advertised word old possibly sent to g? */
static bool adv_sent_to(uint32_t old, const struct refl_group *g)
{
	return old && !(g->role == PEER_IBGP && (old & ADV_NONCLIENT));
}

static void out_params(const struct refl *r, const struct refl_group *g, uint32_t src,
		       struct msg_out_params *op)
{
	const struct peer *sp = r->o.peers[src];
	uint8_t src_role = sp ? (uint8_t)sp->cfg.role : PEER_RR_CLIENT;
	memset(op, 0, sizeof(*op));
	op->as4 = g->as4;
	if (g->role == PEER_RS_CLIENT) {
		op->ebgp = true;             /* RFC 7947: AS_PATH, NEXT_HOP, MED untouched */
	} else {
		op->local_pref = 100;        /* to internal peers LOCAL_PREF must be present */
	}
	if (g->role != PEER_RS_CLIENT && peer_is_ibgp_role(src_role)) {
		op->reflect = true;
		op->originator_id = sp ? PEER_STAT(sp->peer_bgp_id) : 0;
		op->cluster_id = r->o.cluster_id;
	}
}

/* ------------------------------------------------------------ encoding */

static int bucket_cmp(const void *a, const void *b)
{
	const struct refl_bucket *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	if (x->fam != y->fam)
		return x->fam < y->fam ? -1 : 1;
	return 0;
}

static struct bgp_prefix *bucket_prefixes(struct refl *r, struct refl_bset *s,
					  const struct refl_bucket *b, bool addpath)
{
	if (b->n > r->tmp_cap) {
		r->tmp_cap = b->n * 2;
		r->tmp = xrealloc(r->tmp, r->tmp_cap * sizeof(*r->tmp));
	}
	uint32_t k = 0;
	for (uint32_t i = b->head; i != UINT32_MAX; i = s->e[i].next) {
		r->tmp[k] = s->e[i].pfx;
		if (!addpath)
			r->tmp[k].path_id = 0;
		k++;
	}
	return r->tmp;
}

/*
 * Encode every bucket of s for group g.  Chunks are cut whenever the delivery
 * target changes (source peer for announcements), so each chunk goes to
 * exactly the right members.  only_peer != NONE sends everything to one peer
 * (resync); a cohort sends to the cohort's members (table dumps).
 */
static void encode_bset(struct refl *r, struct refl_group *g, struct refl_bset *s, uint32_t only_peer,
			struct dump_cohort *cohort)
{
	static uint8_t attrs[BGP_MAX_EXT_MSG];
	if (!s->nb)
		return;
	qsort(s->b, s->nb, sizeof(*s->b), bucket_cmp);
	cur_cohort = cohort;
	struct obuf *chunk = r->scratch;
	int cur_mode = -1;
	uint32_t cur_peer = RIB_PEER_NONE;

	for (uint32_t bi = 0; bi < s->nb; bi++) {
		struct refl_bucket *b = &s->b[bi];
		int mode;
		uint32_t target;
		if (cohort) {
			mode = TO_COHORT;
			target = b->kind == BK_ANNOUNCE ? b->src : RIB_PEER_NONE;
		} else if (only_peer != RIB_PEER_NONE) {
			mode = TO_ONLY;
			target = only_peer;
		} else if (b->kind == BK_ANNOUNCE) {
			mode = TO_ALL_EXCEPT;
			target = b->src;
		} else if (b->kind == BK_WITHDRAW) {
			mode = TO_ALL_EXCEPT;
			target = RIB_PEER_NONE;
		} else {
			mode = TO_ONLY;
			target = b->src;
		}
		if (chunk->len && (mode != cur_mode || target != cur_peer))
			deliver(r, g, chunk, cur_mode, cur_peer);
		cur_mode = mode;
		cur_peer = target;

		bool addpath = g->addpath[b->fam];
		struct bgp_prefix *pf = bucket_prefixes(r, s, b, addpath);
		size_t alen = 0;
		if (b->kind == BK_ANNOUNCE) {
			struct msg_out_params op;
			out_params(r, g, b->src, &op);
			alen = msg_attrs_out(attrs, sizeof(attrs), b->attr->blob, b->attr->blob_len, &op);
		}
		size_t i = 0;
		bool as_withdraw = b->kind != BK_ANNOUNCE;
		while (i < b->n) {
			size_t consumed = 0, w;
			if (!as_withdraw)
				w = msg_update_pack(chunk->data + chunk->len, chunk->cap - chunk->len, g->max_msg,
						    b->fam, addpath, attrs, alen, &b->attr->nh, pf + i, b->n - i,
						    &consumed);
			else
				w = msg_withdraw_pack(chunk->data + chunk->len, chunk->cap - chunk->len,
						      g->max_msg, b->fam, addpath, pf + i, b->n - i, &consumed);
			chunk->len += (uint32_t)w;
			i += consumed;
			r->cur_npfx += (uint32_t)consumed;
			if (w)
				r->st.updates_encoded++;
			if (i < b->n) {
				if (consumed == 0 && chunk->len == 0) {
					if (as_withdraw)
						break; /* never: a withdrawal fits an empty chunk */
					/* attributes too large for max_msg once rewritten: withdraw
					 * instead, so no member keeps an older version (RFC 8654 s4) */
					log_warn("reflect: path attributes of %zu octets do not fit a %u-octet "
						 "message; %u prefixes withdrawn from group %u instead",
						 alen, g->max_msg, b->n - (uint32_t)i, g->id);
					as_withdraw = true;
					continue;
				}
				deliver(r, g, chunk, mode, target);
			}
		}
	}
	if (chunk->len)
		deliver(r, g, chunk, cur_mode, cur_peer);
}

/* ------------------------------------------------------------ live batches */

/*
 * ADD-PATH group: advertise up to N exportable paths, each under its own
 * path id, and withdraw by id the ones that left the top N.
 */
struct addpath_gone {
	struct refl_bset *bs;
	struct bgp_prefix q;
};

static void addpath_withdraw(void *ctx, uint32_t id)
{
	struct addpath_gone *w = ctx;
	w->q.path_id = id;
	bset_add(w->bs, NULL, RIB_PEER_NONE, BK_WITHDRAW, &w->q);
}

static void addpath_node(struct refl *r, struct refl_group *g, struct rib_node *node,
			 const struct bgp_prefix *pfx, const struct rib_pathset *ps)
{
	uint32_t ids[REFL_ADDPATH_MAX];
	struct attr_set *attr[REFL_ADDPATH_MAX];
	uint8_t k = 0;
	struct bgp_prefix q = *pfx;
	const struct refl_adv_slot *old = refl_adv_find(&g->adv, node);
	for (unsigned i = 0; ps && i < ps->n && k < g->addpath_n; i++) {
		const struct rib_path *p = &ps->p[i];
		if (!exportable(r, p, pfx->family, g))
			continue;
		uint32_t id = out_path_id(p);
		/* the members already have this id with these attributes: nothing
		 * to send (a path that only moved within the top N, or a prefix
		 * whose other path changed) */
		if (!refl_adv_same(&g->adv, old, id, p->attr)) {
			q.path_id = id;
			bset_add(&g->bs, p->attr, p->peer, BK_ANNOUNCE, &q);
		}
		attr_ref(p->attr);       /* safe: the path set still holds its reference */
		ids[k] = id;
		attr[k++] = p->attr;
	}
	/* what left the top N, spilled ids included, is withdrawn by id */
	struct addpath_gone w = { &g->bs, *pfx };
	refl_adv_set(&g->adv, node, ids, attr, k, addpath_withdraw, &w);
}

/*
 * An ADD-PATH group's backpressure (see "slow readers"): pause it when its
 * most loaded member passes AP_HIGH, resume below AP_LOW, and reset a member
 * that alone keeps deferred work waiting for AP_LAG_NS.  Members already
 * being reset do not count.  Returns the most loaded member's queue.
 */
static uint64_t ap_group_tick(struct refl *r, struct refl_group *g)
{
	uint64_t max = 0, second = 0;
	struct peer *top = NULL;
	for (struct peer *m = g->members; m; m = m->group_next) {
		if (m->overflow_reset)
			continue;
		uint64_t q = atomic_load_explicit(&m->oq_bytes, memory_order_relaxed);
		if (q > max) {
			second = max;
			max = q;
			top = m;
		} else if (q > second) {
			second = q;
		}
	}
	if (!g->ap_paused && max > AP_HIGH) {
		g->ap_paused = true;
		r->st.group_pauses++;
		char a[64];
		bgp_addr_fmt(a, sizeof(a), &top->addr);
		log_info("reflect: ADD-PATH group %u paused: peer %s has %" PRIu64 " bytes queued; "
			 "changes deferred", g->id, a, max);
	} else if (g->ap_paused && max < AP_LOW) {
		g->ap_paused = false;
	}
	if (!g->ap_paused && (!gpend_used(g) || max < AP_LOW)) {
		g->ap_stall_ns = 0;
		return max;
	}
	uint64_t now = log_now_ns();
	if (!g->ap_stall_ns) {
		g->ap_stall_ns = now;
	} else if (now - g->ap_stall_ns > AP_LAG_NS && top && max >= AP_LOW && second < AP_LOW &&
		   g->n_members > 1) {
		char a[64];
		bgp_addr_fmt(a, sizeof(a), &top->addr);
		log_warn("reflect: peer %s kept ADD-PATH group %u waiting for %" PRIu64 " s alone "
			 "(%" PRIu64 " bytes queued): reset", a, g->id, (uint64_t)(AP_LAG_NS / 1000000000ull), max);
		top->overflow_reset = true;
		io_peer_overflow(top);
		r->st.ap_laggards++;
		g->ap_stall_ns = now;
	}
	return max;
}

/*
 * The first entry of a prefix that has a second one still queued: only the
 * path it was deferred for (tag), if it is among the top N and the members
 * do not have it as it is, is announced now, among the prefixes deferred
 * next to it, which came with the same attributes from the same peer; the
 * rest waits for the second entry, which diffs the whole prefix.
 */
static void addpath_node_tag(struct refl *r, struct refl_group *g, struct rib_node *node,
			     const struct bgp_prefix *pfx, const struct rib_pathset *ps, uint16_t tag)
{
	if (!tag || !ps)
		return;
	const struct refl_adv_slot *old = refl_adv_find(&g->adv, node);
	uint8_t k = 0;
	for (unsigned i = 0; i < ps->n && k < g->addpath_n; i++) {
		const struct rib_path *p = &ps->p[i];
		if (!exportable(r, p, pfx->family, g))
			continue;
		k++;
		uint32_t id = out_path_id(p);
		if ((uint16_t)id != tag || refl_adv_same(&g->adv, old, id, p->attr))
			continue;
		struct bgp_prefix q = *pfx;
		q.path_id = id;
		bset_add(&g->bs, p->attr, p->peer, BK_ANNOUNCE, &q);
		attr_ref(p->attr);       /* safe: the path set still holds its reference */
		refl_adv_add(&g->adv, node, id, p->attr);
		return;
	}
}

/* A deferred entry of ADD-PATH group g (see gpend_add), sent as the prefix
 * is now (bucketed in g->bs). */
static void group_node_now(struct refl *r, struct refl_group *g, struct rib_node *n, uint16_t tag,
			   bool last)
{
	struct bgp_prefix pfx;
	rib_node_prefix(n, &pfx);
	if (pfx.family >= BGP_FAM_COUNT || !g->fam[pfx.family])
		return;
	const struct rib_pathset *ps = rib_node_paths(n);
	bool partial = !last && (*rib_node_out_state(n) & g->pbit2);
	if (g->addpath[pfx.family]) {
		if (partial)
			addpath_node_tag(r, g, n, &pfx, ps, tag);
		else
			addpath_node(r, g, n, &pfx, ps);
		return;
	}
	if (partial)
		return;                  /* the second entry sends the best */
	/* a family without ADD-PATH: the current best, as a resync sends it */
	const struct rib_path *best = ps && ps->n ? &ps->p[0] : NULL;
	if (best && exportable(r, best, pfx.family, g)) {
		bset_add(&g->bs, best->attr, best->peer, BK_ANNOUNCE, &pfx);
		struct peer *sp = r->o.peers[best->peer];
		if (sp && sp->group == g)
			bset_add(&g->bs, NULL, best->peer, BK_ONLY_WITHDRAW, &pfx);
	} else {
		bset_add(&g->bs, NULL, RIB_PEER_NONE, BK_WITHDRAW, &pfx);
	}
}

/*
 * One bounded step of an ADD-PATH group's deferred prefixes, to every member
 * (between batches, so g->bs is free).  As many as a live batch takes: the
 * bigger the step, the more prefixes share an UPDATE (prefixes with the same
 * attributes are not always neighbours in the journal).  With steps of 4,096
 * S3ap's monitors were sent 8 % more UPDATEs and converged 10-15 % later.
 */
static void gpend_step(struct refl *r, struct refl_group *g)
{
	bset_reset(&g->bs);
	size_t nrel = 0;
	rcu_read_lock();
	while (nrel < r->o.batch && gpend_used(g)) {
		uint16_t tag;
		bool last;
		struct rib_node *n = gpend_pop(r, g, &tag, &last);
		group_node_now(r, g, n, tag, last);
		r->gp_rel[nrel++] = n;
	}
	encode_bset(r, g, &g->bs, RIB_PEER_NONE, NULL);
	rcu_read_unlock();
	rib_journal_release_n(r->o.rib, r->gp_rel, nrel);
	r->st.ap_deferred_sent += nrel;
	if (!gpend_used(g)) {
		free(g->pend);
		g->pend = NULL;
	}
}

/* The helper: releases the FIFO's batches in order; on stop, only once the
 * FIFO is empty (refl_stop comes after the last hand-over). */
static void *release_main(void *arg)
{
	struct refl *r = arg;
	struct refl_release *rl = &r->rel;
	rcu_register_thread();
	pthread_mutex_lock(&rl->mu);
	for (;;) {
		while (!rl->count && !rl->stop)
			pthread_cond_wait(&rl->cv, &rl->mu);
		if (!rl->count)
			break;
		struct rib_node **b = rl->q[rl->head];
		size_t n = rl->qn[rl->head];
		pthread_mutex_unlock(&rl->mu);
		rib_journal_release_n(r->o.rib, b, n);
		pthread_mutex_lock(&rl->mu);
		rl->head = (rl->head + 1) % RELEASE_QMAX;
		rl->count--;
		rl->spare[rl->nspare++] = b;
		pthread_cond_broadcast(&rl->cv);
	}
	pthread_mutex_unlock(&rl->mu);
	rcu_unregister_thread();
	return NULL;
}

/* Release the n drained nodes of r->batch: big batches on the helper (see
 * struct refl_release), which then owns them; r->batch is a spare buffer
 * (allocated the first time the FIFO holds that many). */
static void release_batch(struct refl *r, size_t n)
{
	struct refl_release *rl = &r->rel;
	if (n < RELEASE_ASYNC_MIN || !rl->started) {
		rib_journal_release_n(r->o.rib, r->batch, n);
		return;
	}
	pthread_mutex_lock(&rl->mu);
	while (rl->count == RELEASE_QMAX)
		pthread_cond_wait(&rl->cv, &rl->mu);
	struct rib_node **b = rl->nspare ? rl->spare[--rl->nspare] : NULL;
	rl->q[(rl->head + rl->count) % RELEASE_QMAX] = r->batch;
	rl->qn[(rl->head + rl->count) % RELEASE_QMAX] = n;
	rl->count++;
	pthread_cond_broadcast(&rl->cv);
	pthread_mutex_unlock(&rl->mu);
	if (!b && !(b = calloc(r->o.batch, sizeof(*b))))
		log_fatal("reflect: out of memory");
	r->batch = b;
}

/* Does group g defer a change of a prefix of family fam?  While it is
 * paused, and after that until its FIFO is empty (see "slow readers"). */
static inline bool ap_defer(const struct refl_group *g, unsigned fam)
{
	return (g->ap_paused || gpend_used(g)) && g->fam[fam];
}

static void process_batch(struct refl *r, size_t n)
{
	uint64_t t0 = log_now_ns();
	r->cur_stamp = rib_journal_batch_stamp(r->o.rib);
	for (struct refl_group *g = r->groups; g; g = g->next) {
		bset_reset(&g->bs);
		if (g->pbit)
			ap_group_tick(r, g);
	}

	rcu_read_lock();
	for (size_t i = 0; i < n; i++) {
		/* a big batch's nodes, their path sets and attributes are cache
		 * misses by now: start them a few prefixes ahead */
		if (i + 16 < n)
			__builtin_prefetch(r->batch[i + 16]);
		if (i + 8 < n) {
			const struct rib_pathset *q = rib_node_paths(r->batch[i + 8]);
			if (q)
				__builtin_prefetch(q);
		}
		if (i + 4 < n) {
			const struct rib_pathset *q = rib_node_paths(r->batch[i + 4]);
			if (q && q->n)
				__builtin_prefetch(q->p[0].attr);
		}
		struct rib_node *node = r->batch[i];
		const struct rib_pathset *ps = rib_node_paths(node);
		struct bgp_prefix pfx;
		rib_node_prefix(node, &pfx);
		uint32_t *adv = rib_node_out_state(node);
		uint32_t old = *adv & ~ADV_PEND_MASK;
		if (!ps || ps->n == 0) {
			for (struct refl_group *g = r->groups; g; g = g->next) {
				if (!g->fam[pfx.family])
					continue;        /* never sent it: family not negotiated */
				if (ap_defer(g, pfx.family))
					gpend_add(r, g, node, pfx.family, NULL, adv);
				else if (g->addpath_n && g->addpath[pfx.family])
					addpath_node(r, g, node, &pfx, NULL);
				else if (adv_sent_to(old, g))
					bset_add(&g->bs, NULL, RIB_PEER_NONE, BK_WITHDRAW, &pfx);
			}
			*adv &= ADV_PEND_MASK;
			continue;
		}
		const struct rib_path *best = &ps->p[0];
		uint32_t src = best->peer;
		for (struct refl_group *g = r->groups; g; g = g->next) {
			if (!g->fam[pfx.family])
				continue;                /* as above */
			if (ap_defer(g, pfx.family)) {
				gpend_add(r, g, node, pfx.family, ps, adv);
				continue;
			}
			if (g->addpath_n && g->addpath[pfx.family]) {
				addpath_node(r, g, node, &pfx, ps);
				continue;
			}
			if (exportable(r, best, pfx.family, g)) {
				bset_add(&g->bs, best->attr, src, BK_ANNOUNCE, &pfx);
				struct peer *sp = r->o.peers[src];
				if (adv_sent_to(old, g) && (old & ADV_PEER_MASK) - 1 != src && sp &&
				    sp->group == g)
					bset_add(&g->bs, NULL, src, BK_ONLY_WITHDRAW, &pfx);
			} else if (adv_sent_to(old, g)) {
				bset_add(&g->bs, NULL, RIB_PEER_NONE, BK_WITHDRAW, &pfx);
			}
			if (g->cohorts || g->njoin)
				dump_note_live(g, node, &pfx);
		}
		*adv = (*adv & ADV_PEND_MASK) | adv_word(r, src);
	}
	/* slow members: pause them, and remember what changed for them */
	for (struct refl_group *g = r->groups; g; g = g->next) {
		for (struct peer *m = g->members; m; m = m->group_next) {
			uint64_t q = atomic_load_explicit(&m->oq_bytes, memory_order_relaxed);
			bool ap = g->addpath_n != 0;
			if (!m->paused && !ap && q > OQ_HIGH) {
				m->paused = true;
				if (!m->pending && !(m->pending = calloc(1, sizeof(*m->pending))))
					log_fatal("reflect: out of memory");
				r->st.pauses++;
				char a[64];
				bgp_addr_fmt(a, sizeof(a), &m->addr);
				log_info("reflect: peer %s reads slowly (%" PRIu64 " bytes queued): paused, "
					 "changes kept for resync", a, q);
			} else if (ap && q > OQ_HARD && !m->overflow_reset) {
				m->overflow_reset = true;
				io_peer_overflow(m);
			}
			if (m->paused)
				for (size_t i = 0; i < n; i++)
					pending_add(m->pending, r->batch[i]);
		}
	}
	for (struct refl_group *g = r->groups; g; g = g->next)
		encode_bset(r, g, &g->bs, RIB_PEER_NONE, NULL);
	rcu_read_unlock();
	r->cur_stamp = 0;

	release_batch(r, n);
	r->st.batches++;
	r->st.prefixes += n;
	r->st.last_batch_ns = log_now_ns() - t0;
}

/* ------------------------------------------------------------ table dumps */

struct dump_ctx {
	struct refl *r;
	struct refl_group *g;
	uint32_t exclude;                /* resync: the peer being resynced */
	const struct refl_pending *live; /* cohort: sent live already, skip */
	bool cohort;                     /* a cohort's walk (not a resync) */
};

/* Bucket what a dump sends for one prefix; the source exception is applied
 * per member at delivery (cohorts) or here (exclude, single-peer resync). */
static bool dump_cb(struct rib_node *n, const struct bgp_prefix *pfx, const struct rib_pathset *ps,
		    void *arg)
{
	struct dump_ctx *d = arg;
	if (!ps || !ps->n)
		return true;
	struct refl_group *g = d->g;
	if (g->addpath_n && g->addpath[pfx->family]) {
		/* what a member got from its dump must be withdrawable later: the
		 * group's table of advertised ids is the union over its members */
		struct bgp_prefix q = *pfx;
		uint32_t ids[REFL_ADDPATH_MAX];
		uint8_t k = 0;
		for (unsigned i = 0; i < ps->n && k < g->addpath_n; i++) {
			const struct rib_path *p = &ps->p[i];
			if (!exportable(d->r, p, pfx->family, g))
				continue;
			ids[k++] = q.path_id = out_path_id(p);
			if (p->peer == d->exclude)
				continue;
			bset_add(&d->r->dump_bs, p->attr, p->peer, BK_ANNOUNCE, &q);
		}
		refl_adv_union(&g->adv, n, ids, k);
		return true;
	}
	/* a cohort's walk: what the members were sent live since they joined,
	 * or will be once the journal hands it over, is theirs already */
	if (d->cohort && (pending_has(d->live, n) || rib_node_queued(n))) {
		d->r->st.dump_live_skips++;
		return true;
	}
	const struct rib_path *best = &ps->p[0];
	if (best->peer == d->exclude || !exportable(d->r, best, pfx->family, g))
		return true;
	bset_add(&d->r->dump_bs, best->attr, best->peer, BK_ANNOUNCE, pfx);
	return true;
}

static void cohort_leave(struct refl *r, struct peer *p)
{
	struct dump_cohort *c = p->cohort;
	struct refl_group *g = p->group;
	if (c) {
		for (uint32_t i = 0; i < c->n; i++)
			if (c->m[i] == p) {
				c->m[i] = c->m[--c->n];
				break;
			}
		p->cohort = NULL;
	} else if (g) {
		for (uint32_t i = 0; i < g->njoin; i++)
			if (g->join[i] == p) {
				g->join[i] = g->join[--g->njoin];
				break;
			}
		if (!g->njoin)   /* kept for no one: a later joiner has not seen these */
			pending_set_free(r, &g->join_live);
	}
	p->dumping = false;
}

/* Ask for a table dump for p (session up, route refresh). */
static void dump_request(struct refl *r, struct peer *p)
{
	struct refl_group *g = p->group;
	if (!g)
		return;
	cohort_leave(r, p);
	if (g->njoin == g->capjoin) {
		g->capjoin = g->capjoin ? g->capjoin * 2 : 16;
		g->join = xrealloc(g->join, g->capjoin * sizeof(*g->join));
	}
	g->join[g->njoin++] = p;
	p->dumping = true;
}

static void cohort_free(struct refl *r, struct refl_group *g, struct dump_cohort *c)
{
	for (struct dump_cohort **cp = &g->cohorts; *cp; cp = &(*cp)->next)
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	for (uint32_t i = 0; i < c->n; i++) {
		c->m[i]->cohort = NULL;
		c->m[i]->dumping = false;
	}
	pending_set_free(r, &c->live);
	free(c->m);
	free(c);
}

/* Members that asked for a dump since the last step start one together. */
static void cohort_form(struct refl *r, struct refl_group *g)
{
	(void)r;
	if (!g->njoin)
		return;
	struct dump_cohort *c = calloc(1, sizeof(*c));
	if (!c)
		log_fatal("reflect: out of memory");
	c->m = g->join;
	c->n = c->cap = g->njoin;
	c->live = g->join_live;
	g->join_live = NULL;
	for (uint32_t i = 0; i < c->n; i++)
		c->m[i]->cohort = c;
	g->join = NULL;
	g->njoin = g->capjoin = 0;
	c->next = g->cohorts;
	g->cohorts = c;
}

/* One bounded step of a cohort's dump.  Returns true while it goes on. */
static bool cohort_step(struct refl *r, struct refl_group *g, struct dump_cohort *c)
{
	if (!c->n) {
		cohort_free(r, g, c);
		return false;
	}
	for (uint32_t i = 0; i < c->n; i++)   /* paced by the slowest member */
		if (atomic_load_explicit(&c->m[i]->oq_bytes, memory_order_relaxed) > DUMP_HIGHWATER)
			return true;
	while (c->family < BGP_FAM_COUNT && !g->fam[c->family])
		c->family++;
	if (c->family >= BGP_FAM_COUNT) {
		r->st.dumps_done += c->n;
		cohort_free(r, g, c);
		return false;
	}
	struct dump_ctx d = { r, g, RIB_PEER_NONE, c->live, true };
	struct bgp_prefix last;
	bset_reset(&r->dump_bs);
	rcu_read_lock();
	size_t n = rib_walk(r->o.rib, c->family, NULL, c->started ? &c->cursor : NULL, DUMP_STEP,
			    dump_cb, &d, &last);
	encode_bset(r, g, &r->dump_bs, RIB_PEER_NONE, c);
	rcu_read_unlock();
	if (n)
		c->cursor = last;
	c->started = true;
	if (n < DUMP_STEP) {
		struct obuf *b = r->scratch;
		b->len = (uint32_t)msg_eor_encode(b->data, b->cap, c->family);
		cur_cohort = c;
		deliver(r, g, b, TO_COHORT, RIB_PEER_NONE);
		c->family++;
		c->started = false;
	}
	return true;
}

/* One bounded resync step for a paused member whose queue has drained. */
static void resync_step(struct refl *r, struct peer *p)
{
	struct refl_pending *ps = p->pending;
	if (atomic_load_explicit(&p->oq_bytes, memory_order_relaxed) > OQ_LOW)
		return;
	struct refl_group *g = p->group;
	struct dump_ctx d = { r, g, p->id, NULL, false };
	bset_reset(&r->dump_bs);
	size_t done = 0;
	rcu_read_lock();
	size_t nrel = 0;
	for (size_t k = 0; k < ps->cap && done < DUMP_STEP && ps->used; k++) {
		size_t i = ps->scan;
		ps->scan = (ps->scan + 1) & (ps->cap - 1);
		struct rib_node *n = ps->slot[i];
		if (!n)
			continue;
		struct bgp_prefix pf;
		rib_node_prefix(n, &pf);
		const struct rib_pathset *set = rib_node_paths(n);
		const struct rib_path *best = set && set->n ? &set->p[0] : NULL;
		if (pf.family < BGP_FAM_COUNT && g->fam[pf.family]) {
			if (best && best->peer != p->id && exportable(r, best, pf.family, g))
				dump_cb(n, &pf, set, &d);
			else
				bset_add(&r->dump_bs, NULL, RIB_PEER_NONE, BK_WITHDRAW, &pf);
		}
		ps->slot[i] = NULL;
		r->batch_rel[nrel++] = n;
		ps->used--;
		done++;
	}
	encode_bset(r, g, &r->dump_bs, p->id, NULL);
	rcu_read_unlock();
	rib_journal_release_n(r->o.rib, r->batch_rel, nrel);
	if (!ps->used) {
		/* back to the live stream; the empty table is rebuilt if it pauses again */
		free(ps->slot);
		ps->slot = NULL;
		ps->cap = 0;
		ps->scan = 0;
		p->paused = false;
		r->st.resyncs++;
	}
}

/* ------------------------------------------------------------ events */

static void drain_queue(struct peer *p)
{
	struct cds_wfcq_node *node;
	while ((node = __cds_wfcq_dequeue_blocking(&p->oq_head, &p->oq_tail))) {
		struct outq_ent *e = caa_container_of(node, struct outq_ent, node);
		tsan_acquire(e);
		obuf_unref(e->b);
		free(e);
	}
	atomic_store(&p->oq_bytes, 0);
}

static void handle_events(struct refl *r)
{
	pthread_mutex_lock(&r->ev_lock);
	/* take every pending event at once: sessions that come up together then
	 * share one table dump */
	size_t n = r->n_ev;
	struct refl_ev *evs = r->ev;
	r->ev = NULL;
	r->n_ev = r->cap_ev = 0;
	pthread_mutex_unlock(&r->ev_lock);

	for (size_t i = 0; i < n; i++) {
		struct peer *p = evs[i].p;
		switch (evs[i].type) {
		case EV_UP: {
			struct refl_group *g = group_find_or_create(r, p);
			p->group = g;
			p->group_next = g->members;
			g->members = p;
			g->n_members++;
			dump_request(r, p);
			break;
		}
		case EV_DOWN:
			cohort_leave(r, p);
			group_remove_member(r, p);
			pending_free(r, p);
			p->overflow_reset = false;
			drain_queue(p);
			io_peer_reset_done(p);
			break;
		case EV_REFRESH:
			/* a refresh re-sends every family of the group (a superset of
			 * what was asked, which RFC 2918 permits), shared with others */
			dump_request(r, p);
			break;
		}
	}
	free(evs);
}

static void post(struct refl *r, uint8_t type, struct peer *p, unsigned fam)
{
	pthread_mutex_lock(&r->ev_lock);
	if (r->n_ev == r->cap_ev) {
		r->cap_ev = r->cap_ev ? r->cap_ev * 2 : 64;
		r->ev = xrealloc(r->ev, r->cap_ev * sizeof(*r->ev));
	}
	r->ev[r->n_ev++] = (struct refl_ev){ .type = type, .family = (uint8_t)fam, .p = p };
	pthread_mutex_unlock(&r->ev_lock);
	rib_journal_wake(r->o.rib);
}

void refl_peer_up(struct refl *r, struct peer *p) { post(r, EV_UP, p, BGP_FAM_COUNT); }
void refl_peer_down(struct refl *r, struct peer *p) { post(r, EV_DOWN, p, BGP_FAM_COUNT); }
void refl_route_refresh(struct refl *r, struct peer *p, unsigned family)
{
	post(r, EV_REFRESH, p, family);
}

/* ------------------------------------------------------------ the thread */

static bool any_events(struct refl *r)
{
	pthread_mutex_lock(&r->ev_lock);
	bool any = r->n_ev != 0;
	pthread_mutex_unlock(&r->ev_lock);
	return any;
}

/*
 * Other threads (control, metrics) read a copy made once per round, so the
 * hot paths count with plain increments.  Every round, work or not, on
 * purpose: a "did the round work" test would have to know every place that
 * counts - the step that ends a dump adds dumps_done and reports no more
 * dumping, a group's end changes groups and adv_bytes in handle_events -
 * and one it missed leaves `show reflect` and the metrics stale until the
 * next busy round, which on a quiet reflector may be never.  The cost does
 * not call for it either: idle rounds come at most every 1 ms (a paced dump)
 * or 200 ms, each already taking ev_lock twice, and a busy round has changed
 * the counters anyway; the copy is 128 bytes under a leaf lock that only
 * the rare reader contends.
 */
static void stats_publish(struct refl *r)
{
	pthread_mutex_lock(&r->pub_lock);
	r->pub = r->st;
	pthread_mutex_unlock(&r->pub_lock);
}

static void *refl_main(void *arg)
{
	struct refl *r = arg;
	rcu_register_thread();
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		handle_events(r);
		/*
		 * Let a small journal fill a little: right after a batch, wait up to
		 * BATCH_GATHER_NS for more changes, so a burst is sent in full
		 * messages instead of many tiny ones.  Bounded, so latency stays low.
		 * 0.5 ms: S1 (10,000 routes) converged in 6-7 ms with 2 ms, 5 ms with
		 * 0.5 ms, and 7-8 ms with no wait at all (many tiny messages).
		 */
		if (rib_journal_pending(r->o.rib) < r->o.batch / 4) {
			uint64_t since = log_now_ns() - r->last_batch_end_ns;
			if (since < BATCH_GATHER_NS)
				usleep((useconds_t)((BATCH_GATHER_NS - since) / 1000));
		}
		/*
		 * The journal's live lane (UPDATEs' changes) in full, then a bounded
		 * piece of its bulk lane (sweeps: a session's whole table going or
		 * turning stale), as batches of their own: a change from an UPDATE
		 * waits for at most one bulk piece, not for the whole sweep, and the
		 * sweep still moves a piece every round however busy the live lane.
		 */
		size_t n = rib_journal_drain_lane(r->o.rib, RIB_JLANE_LIVE, r->batch, r->o.batch);
		if (n) {
			process_batch(r, n);
			r->last_batch_end_ns = log_now_ns();
		}
		size_t nb = rib_journal_drain_lane(r->o.rib, RIB_JLANE_BULK, r->batch, r->o.bulk_batch);
		if (nb) {
			process_batch(r, nb);
			r->last_batch_end_ns = log_now_ns();
		}
		n += nb;
		bool dumping = false;
		for (struct refl_group *g = r->groups; g; g = g->next) {
			cohort_form(r, g);
			for (struct dump_cohort *c = g->cohorts, *nx; c; c = nx) {
				nx = c->next;
				dumping |= cohort_step(r, g, c);
			}
			for (struct peer *p = g->members; p; p = p->group_next)
				if (p->paused && !p->dumping) {
					resync_step(r, p);
					dumping = true;
				}
			if (g->pbit && (g->ap_paused || gpend_used(g))) {
				/* an ADD-PATH group's deferred prefixes, while its members keep up */
				if (ap_group_tick(r, g) < AP_LOW && !g->ap_paused && gpend_used(g))
					gpend_step(r, g);
				dumping = true;
			}
		}
		stats_publish(r);
		if (!n && !any_events(r)) {
			uint64_t now = log_now_ns();
			if (now - r->last_reclaim_ns > 1000000000ull) {
				/* quiet: release what the RIB still holds in partial free batches */
				rib_reclaim_idle(r->o.rib);
				r->last_reclaim_ns = now;
			}
			rib_journal_wait(r->o.rib, dumping ? 1 : 200);
		}
	}
	rcu_unregister_thread();
	return NULL;
}

struct refl *refl_create(const struct refl_opts *o)
{
	struct refl *r = calloc(1, sizeof(*r));
	if (!r)
		log_fatal("reflect: out of memory");
	r->o = *o;
	if (!r->o.batch)
		r->o.batch = 65536;
	if (!r->o.bulk_batch)
		r->o.bulk_batch = REFL_BULK_BATCH;
	if (r->o.bulk_batch > r->o.batch)
		r->o.bulk_batch = r->o.batch;
	r->batch = calloc(r->o.batch, sizeof(*r->batch));
	/* one spare from the start: a hand-over while the helper is idle swaps
	 * two buffers that stay in use (and faulted in), as a single batch in
	 * flight did before the FIFO; more are allocated only when it backs up */
	r->rel.spare[r->rel.nspare++] = calloc(r->o.batch, sizeof(*r->batch));
	if (!r->rel.spare[0])
		log_fatal("reflect: out of memory");
	pthread_mutex_init(&r->rel.mu, NULL);
	pthread_cond_init(&r->rel.cv, NULL);
	r->scratch = obuf_new(OBUF_SIZE);
	r->batch_rel = calloc(DUMP_STEP, sizeof(*r->batch_rel));
	r->gp_rel = calloc(r->o.batch, sizeof(*r->gp_rel));
	if (!r->batch_rel || !r->gp_rel)
		log_fatal("reflect: out of memory");
	if (!r->batch)
		log_fatal("reflect: out of memory");
	pthread_mutex_init(&r->ev_lock, NULL);
	pthread_mutex_init(&r->pub_lock, NULL);
	return r;
}

void refl_start(struct refl *r)
{
	if (pthread_create(&r->thr, NULL, refl_main, r))
		log_fatal("reflect: cannot start thread: %s", strerror(errno));
	pthread_setname_np(r->thr, "reflect");
	r->started = true;
	if (pthread_create(&r->rel.thr, NULL, release_main, r))
		log_fatal("reflect: cannot start thread: %s", strerror(errno));
	pthread_setname_np(r->rel.thr, "refl-release");
	r->rel.started = true;
}

void refl_stop(struct refl *r)
{
	if (!r->started)
		return;
	atomic_store_explicit(&r->stop, 1, memory_order_release);
	rib_journal_wake(r->o.rib);
	pthread_join(r->thr, NULL);
	r->started = false;
	/* after the reflection thread: no more hand-overs; the last one finishes */
	pthread_mutex_lock(&r->rel.mu);
	r->rel.stop = true;
	pthread_cond_broadcast(&r->rel.cv);
	pthread_mutex_unlock(&r->rel.mu);
	pthread_join(r->rel.thr, NULL);
	r->rel.started = false;
}

void refl_destroy(struct refl *r)
{
	refl_stop(r);
	/* groups exist only while they have members; removing the last frees it */
	while (r->groups)
		group_remove_member(r, r->groups->members);
	free(r->dump_bs.b);
	free(r->dump_bs.ht);
	free(r->dump_bs.e);
	free(r->tmp);
	free(r->batch);
	while (r->rel.nspare)        /* stopped (or never started): every buffer is back */
		free(r->rel.spare[--r->rel.nspare]);
	free(r->batch_rel);
	free(r->gp_rel);
	pthread_mutex_destroy(&r->rel.mu);
	pthread_cond_destroy(&r->rel.cv);
	obuf_unref(r->scratch);
	free(r->ev);
	pthread_mutex_destroy(&r->ev_lock);
	pthread_mutex_destroy(&r->pub_lock);
	free(r);
}

void refl_get_stats(struct refl *r, struct refl_stats *st)
{
	pthread_mutex_lock(&r->pub_lock);
	*st = r->pub;
	pthread_mutex_unlock(&r->pub_lock);
}
