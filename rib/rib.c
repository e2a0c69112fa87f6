/*
 * rib.c - the RIB: per-family path-compressed radix (Patricia) trees split by
 * a first stride, immutable per-prefix path sets, the change journal and the
 * per-peer prefix index.
 *
 * Threads: any number of writer threads (peer I/O threads) call rib_update /
 * rib_withdraw / rib_withdraw_peer / rib_mark_peer_stale at once; any thread
 * reads under rcu_read_lock; exactly one thread (reflection) drains the
 * journal.  Every such thread is RCU-registered.
 *
 * LAYOUT
 *   Prefixes with len >= 16 (both families) live in one of 65536 subtrees
 *   picked by their first 16 bits; shorter ones in a per-family "short"
 *   subtree.  A 16-bit first stride keeps IPv4 subtrees tiny (a full table
 *   has ~15 prefixes per /16), so an insert touches ~5 nodes instead of ~17:
 *   tree descent is all cache misses, so depth is the cost that matters.
 *   Each subtree is guarded by one writer lock ("stripe"; a spinlock with
 *   acquire / release semantics, see stripe_lock): 1024 stripes per family
 *   (slot & 1023), each short tree its own.  Writers on different stripes
 *   never contend; readers never lock.  A node holds
 *   its prefix (immutable once linked), two child pointers and a pointer to
 *   an immutable struct rib_pathset.  Nodes without paths are glue.  An
 *   IPv4 glue node made by a split is allocated without the journal fields
 *   (32 bytes, not 48: a third of the nodes of a big table are glue); it
 *   never gets paths or journal references - when a prefix lands on it, it
 *   is replaced by a full node first (below).
 *
 * WHY A READER NEVER SEES A TORN TREE
 *   1. A node is fully initialised (key, length, children, path set) before
 *      the single release store (rib_pub) that links it; readers load every
 *      child / path-set pointer with an acquire load (rib_deref).  These are
 *      exactly rcu_assign_pointer / rcu_dereference, spelled with C11
 *      atomics so that ThreadSanitizer understands them.
 *   2. Every structural change is one pointer store:
 *      - insert below a node: store the new leaf into a NULL child slot;
 *      - insert above / split: the new node (or new glue + new leaf) is built
 *        pointing at the existing subtree, then replaces it in its parent's
 *        link with one store.  A reader that loaded the old link walks the old
 *        subtree (still intact and linked under the new node); one that loads
 *        the new link walks the new node then the same old subtree.
 *      - remove a node with <= 1 child: the parent's link is set to that child
 *        (or NULL).  A reader already on the removed node still sees its
 *        unchanged children, i.e. the rest of the tree.
 *      - fill a short glue node: a full node with the same prefix and the
 *        same two children replaces it in its parent's link; a reader on
 *        the old one sees the same children (it had no paths either way).
 *      The stores an insert makes all lie below every node that covers
 *      its key ("covering start"): each node on the descent from the root
 *      down to such a node C (len(C) <= len) is a prefix of C, hence of the
 *      key, so the descent passes C without splitting or replacing anything
 *      above it.  A writer that knows a linked C (under the stripe lock: an
 *      IPv4 direct-index entry, below) may start the descent at C's child
 *      link and makes exactly the stores the descent from the root would.
 *      A key and length never change after linking, and the child pointers of
 *      an unlinked node are never written again.  So any reader's traversal is
 *      a path through some valid tree (old or new), never a mix that skips or
 *      invents a subtree.  Paths change only by publishing a whole new set.
 *   3. Memory is freed only after a grace period: an unlinked node or replaced
 *      path set goes on a reclaim batch - its stripe's (under the stripe
 *      lock) or the writer thread's own (PER-THREAD FREE BATCHES) - and
 *      the batch is handed to call_rcu, so its free runs after every
 *      read-side section that began before the hand-over has ended.  A reader
 *      starting later can only reach nodes that were linked at some time after
 *      it started (the child pointers of unlinked nodes are frozen), i.e. not
 *      ones already handed over.
 *   4. Attribute references: each path in a published set owns one reference
 *      to its attr_set.  A path carried from the old set into the new one
 *      moves its reference; the reference of a removed or replaced path is
 *      dropped with the batch's frees (3), after the grace period.  So every
 *      attr a reader can reach through a path set has refcnt >= 1 (not merely
 *      "not freed yet", which attr.c's own deferred free would also give).
 *   5. Batched lookups (rib_lookup_batch, rib_lookup_lpm_batch) make, for
 *      each query, the loads of the single call in the same order, only
 *      interleaved with the other queries' loads and with prefetches of
 *      addresses loaded in the same read-side section; 1-3 cover each of
 *      them as they cover the single call ("batched lookups" below).  One
 *      exception, on a RIB without /24 tables: an exact lookup of a short
 *      prefix starts its tree descent (the single call's second try) before
 *      it has checked its hint (the first try) and keeps the hint's answer
 *      if that is the prefix; each of the two is a sequence of loads of the
 *      single call, covered as such, so either answer is one it could give.
 *
 * JOURNAL
 *   A writer whose change alters the best path or the multipath set (the
 *   first n_multipath paths compared by peer, path_id and attr pointer) sets
 *   the node's `queued` flag; if it was clear it takes a journal reference
 *   (jrefs; flag and count share the word jstate, one CAS) and enqueues the node on a wfcqueue (wait-free multi-producer,
 *   drained by the single consumer).  There are RIB_JQUEUES queues and each
 *   writer thread keeps to one, so writers on different cores do not share
 *   a queue tail; a node is on at most one queue at a time (`queued`), and
 *   the consumer drains the queues in turn.  Drain clears `queued` (so the next
 *   change re-marks) and hands the node over; rib_journal_release drops the
 *   reference.  A node is unlinked only when it has no paths, jrefs == 0 and
 *   at most one child - checked under its stripe lock - so the consumer's
 *   nodes stay allocated until released.  The consumer is woken only when a
 *   queue goes from empty to non-empty.
 *
 *   Two lanes of RIB_JQUEUES queues each: a change made by a sweep
 *   (rib_sweep_step, hence rib_withdraw_peer / rib_mark_peer_stale: a
 *   session's whole table at once) is queued in the BULK lane, every other
 *   change in the LIVE lane (the writer's thread-local rib_jbulk, set for
 *   the length of a step, picks the lane).  The consumer may drain the lanes
 *   separately (rib_journal_drain_lane) so that an UPDATE's change need not
 *   wait behind hundreds of thousands of swept prefixes.  `queued` is per
 *   node, not per lane, so a node is still on at most one queue: a node
 *   already in the bulk lane that an UPDATE changes again stays there and is
 *   handed over once, with its state read at drain time (promoting it would
 *   need a second link per node, 16 bytes on every node of the table).
 *
 * DIRECT INDEX (IPv4 lookups)
 *   Per slot (/16): `sbest`, the longest prefix shorter than /16 with paths covering the
 *   slot, and - once the slot holds rib_opts.lpm_index_min (default
 *   RIB_DIR_MIN) prefixes of length >= 16 -
 *   a 256-entry table `dir` (the slot word then points at it, tagged, and
 *   the slot's root moves to `droot`, written before that word is
 *   published; the table is exactly 2 KiB, no allocator slack) giving, per
 *   /24 inside it, the
 *   longest prefix of length 16..24 with paths covering it, plus a RIB_DEEP
 *   bit when a /25../32 with paths lies inside that /24.  An LPM is then one
 *   or two dependent loads instead of a tree descent.  The index is derived
 *   state, maintained under the stripe lock that guards the slot (the short
 *   stripe for sbest) exactly when a node's path set goes from NULL to
 *   non-NULL or back (ps_publish), after that publication.  Readers treat it
 *   as a hint that is always safe to follow: each entry is one word stored
 *   with release and loaded with acquire, pointing at a node that was linked
 *   before; a node is never handed to defer_free while an entry points at
 *   it (its entries are rewritten when it loses its paths, which precedes
 *   any prune), so a reader that loaded the entry inside its read-side
 *   section holds memory that is not yet freed (argument 3).  A reader that
 *   finds the entry's node without paths, or RIB_DEEP, descends the trees
 *   as before; a reader racing a writer sees either the entry before or
 *   after the change, i.e. the answer for a state just before or just after
 *   it.  A slot's table is built from its tree under the lock and published
 *   whole with one release store.  Under that lock the entries are exact,
 *   so writers use them too: an update of a prefix that has paths finds its
 *   node in one load, and a new prefix (len >= 16) inside a /24 whose entry
 *   is a covering node starts its descent there ("covering start" above;
 *   a node with paths is linked, and its entries are rewritten before it
 *   can be pruned).  The warm pass (tree_warm) follows the same route
 *   without the lock, as a hint.
 *
 * DESCENT HINTS (IPv4 without /24 tables: the daemon's RIB)
 *   A new prefix's descent from its slot's root is ~5 dependent misses in a
 *   dense table (S2: 76 prefixes per /16).  Per /20, `hint` holds NULL or a
 *   node of length 16..20 that is linked in that /20's slot tree and covers
 *   it: the deepest such node the last insert of a prefix longer than /20
 *   in it passed (tree_get reports it).  An insert of such a prefix starts
 *   its descent at the entry's child link - the "covering start" above,
 *   the entry being linked and covering the key under the stripe lock - and
 *   so do the warm pass's lanes (a hint there, read without the lock under
 *   rcu_read_lock).  Entries are written only under the stripe lock of
 *   their slot.  A node that leaves the tree (tree_prune, glue_fill) first
 *   takes itself out of the entries of its /20s (hint_unlink; its `hinted`
 *   flag says whether it ever was one, so most unlinks skip the scan), so
 *   no entry points at a node handed to defer_free; the warm pass's racy
 *   read of an entry is covered like any reader's load (argument 3).
 *   Prefixes of length /16../20 descend from the root: their /20's entry can
 *   be longer than they are.  The table is 8 MiB, touched at creation: a
 *   table's first prefixes spread over all of it, and a first touch costs
 *   more than the descent saves.
 *
 * BEST PATH, INCREMENTALLY
 *   A path set remembers whether it is a fixed point of decide_sort
 *   (in_order).  Then a new path is placed with decide_insert and a removed
 *   one closed up with decide_remove - exactly what decide_sort would leave,
 *   usually after a couple of comparisons (decide.c says why); otherwise the
 *   full decide_sort runs, as before.  A new path (no path of the same peer
 *   and path id) is placed with decide_place, which makes decide_insert's
 *   comparisons against the old set: the new set is then written once,
 *   old paths around the new one, and never read back (reading a line just
 *   written into a fresh allocation waited for that line).  Each path caches
 *   its attribute set's decision key (rib_path.dkey, decide.h), so those
 *   comparisons rarely load the other paths' sets.
 *
 * PER-PEER INDEX
 *   Each peer owns, per family, a vector of prefix keys appended when the
 *   peer gains its first path on a prefix.  Only the peer's thread touches it
 *   (contract in rib.h).  Withdrawn prefixes leave stale entries; when the
 *   vector is full and holds more than twice the live count it is sorted,
 *   deduplicated and filtered against the tree instead of grown - a big one
 *   (PIDX_JOB_MIN entries) in steps spread over the following appends, on a
 *   copy, while it grows ("pidx_job") - and when the live count drops to
 *   zero it is freed.  rib_withdraw_peer walks only
 *   this vector, and so do the resumable sweeps (rib_sweep_*), during which
 *   the vector is append-only so that a position in it stays a cursor.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>
#include <urcu/wfcqueue.h>
#include "core/log.h"
#include "core/tsan.h"
#include "rib/mem.h"
#include "rib/rib.h"

typedef unsigned __int128 rkey_t;

/*
 * ThreadSanitizer cannot see the happens-before edges that liburcu (not
 * instrumented) provides: a node handed through the wfcqueue, a reclaim
 * batch handed to call_rcu.  Under TSan we state those two edges
 * (core/tsan.h); the third one, grace periods (readers' accesses before a
 * deferred free), is covered by a suppression limited to liburcu frames
 * (tests/rib/tsan.supp).
 */

#define rib_pub(p, v)  __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define rib_deref(p)   __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define rd_relaxed(p)  __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define wr_relaxed(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)
#define add_relaxed(p, v) __atomic_add_fetch(&(p), (v), __ATOMIC_RELAXED)

struct rib_node {
	struct rib_node *ch[2];
	struct rib_pathset *ps;
	uint8_t fam;
	uint8_t len;
	uint8_t glue;                    /* short IPv4 glue: the fields from jn on do not exist */
	uint8_t hinted;                  /* has been a descent hint entry (under the stripe lock) */
	uint32_t k4;                     /* IPv4 address, host order */
	/* ---- not in a short glue node (RIB_GLUE4_SIZE bytes) ---- */
	struct cds_wfcq_node jn;         /* journal link (consumer / enqueuer) */
	uint32_t out_state;              /* consumer's word */
	uint32_t jstate;                 /* RIB_JQUEUED | journal references (atomic) */
};
#define RIB_GLUE4_SIZE offsetof(struct rib_node, jn)
_Static_assert(RIB_GLUE4_SIZE == 32 && sizeof(struct rib_node) == 48,
	       "IPv4 nodes: 32-byte glue, 48-byte full (allocator size classes)");
/* rib_node.jstate: `queued` (in a journal queue, not drained) and `jrefs`
 * (journal references) in one word, so marking a node is one atomic. */
#define RIB_JREFS   0xFFFFu
#define RIB_JQUEUED 0x10000u
struct rib_node6 {
	struct rib_node n;
	uint64_t hi, lo;                 /* IPv6 address, host-order halves */
};

/* A stripe's batch starts with room for RIB_RECLAIM_FIRST entries and
 * doubles up to RIB_RECLAIM_BATCH: most stripes of a big RIB see a few
 * frees between flushes (2,050 stripes; a 10,000-route session withdrawn
 * gives each about 5), and a full-size batch for each was 2 KiB of fresh
 * memory - 4 MiB and ~640 page faults on that withdrawal (S1).  A thread's
 * own batch (rib_thread_batches) takes every free of its thread, so it
 * starts at full size. */
#define RIB_RECLAIM_FIRST 8
#define RIB_RECLAIM_BATCH 128
#define RIB_WSLOTS 64                /* threads with a free batch of their own (rib_thread_batches) */
struct rib_reclaim {
	struct rcu_head rcu;
	struct rib *rib;
	unsigned n, cap;
	struct {
		void *p;
		struct attr_set *a;
	} e[];
};

/* The stripe lock: word 1 = held; sleepers = waiters in futex_wait on it. */
struct rib_lock {
	uint32_t word, sleepers;
};

struct rib_stripe {
	struct rib_lock lk;              /* the stripe lock: stripe_lock / stripe_unlock */
	struct rib_reclaim *pending;
	/* written under lk with relaxed stores, read by rib_stats */
	int64_t paths, prefixes, nodes, node_bytes, ps_bytes, dir_bytes;
} __attribute__((aligned(64)));

/* A slot's direct /24 index (IPv4): entry i is the node of the longest
 * prefix with paths, length 16..24, covering <slot>.i.0/24, or NULL; bit 0
 * (RIB_DEEP) says a longer prefix (/25../32) with paths lies inside it. */
#define RIB_DEEP ((uintptr_t)1)
#define RIB_DIR_MIN 8                /* prefixes (len >= 16) before a slot gets one */
struct rib_dir {
	uintptr_t e[256];                /* exactly 2 KiB, an allocator size class: the
					  * slot's root lives in rib_fam.droot instead */
};
#define RIB_SLOT_DIR ((uintptr_t)1)      /* slot word tag: it points to a rib_dir */

struct rib_fam {
	unsigned fam, stride, nslots, nstripes, maxlen;
	/* Per slot: its subtree root, or (IPv4, tagged RIB_SLOT_DIR) its direct
	 * index, the root then being droot[slot]: one word, so a lookup of a sparse
	 * slot costs what it did without an index.  Read with slot_root(). */
	struct rib_node **slots;
	struct rib_node **droot;         /* IPv4: per slot that has a dir, its root */
	struct rib_node *shortroot;
	struct rib_stripe *stripes;      /* nstripes + 1: the last guards shortroot */
	bool direct;                     /* IPv4: the direct index is kept */
	uint32_t dir_min;                /* prefixes (len >= 16) before a slot gets its /24 table */
	struct rib_node **sbest;         /* per slot: longest short prefix with paths covering
					  * it, written under the short stripe's lock */
	uint16_t *dcount;                /* per slot: prefixes (len >= 16) with paths (writers) */
	struct rib_node **hint;          /* IPv4 without /24 tables: per /20, NULL or a linked
					  * node of length 16..20 covering it (DESCENT HINTS) */
};

/* DESCENT HINTS: the /20 that indexes rib_fam.hint (a node of this length
 * or shorter, down to the stride, can be an entry). */
#define RIB_HINT_LEN 20

static inline struct rib_node **hint_at(struct rib_fam *f, rkey_t k)
{
	return &f->hint[(uint32_t)(k >> (128 - RIB_HINT_LEN))];
}

/* Under the stripe lock of n's slot: n (length stride..RIB_HINT_LEN) leaves
 * the tree, repl (NULL, or the node taking its place) takes its entries. */
static void hint_unlink(struct rib_fam *f, const struct rib_node *n, struct rib_node *repl)
{
	if (!n->hinted)
		return;
	struct rib_node **e = hint_at(f, (rkey_t)n->k4 << 96);
	for (unsigned i = 0; i < 1u << (RIB_HINT_LEN - n->len); i++)
		if (e[i] == n)
			rib_pub(e[i], repl);
	if (repl)
		repl->hinted = 1;
}

/* Writer side (stripe lock held): the link holding slot s's subtree root. */
static inline struct rib_node **slot_link(struct rib_fam *f, unsigned s)
{
	uintptr_t v = (uintptr_t)f->slots[s];
	return v & RIB_SLOT_DIR ? &f->droot[s] : &f->slots[s];
}

static inline struct rib_dir *slot_dir_of(uintptr_t v)
{
	return v & RIB_SLOT_DIR ? (struct rib_dir *)(v & ~RIB_SLOT_DIR) : NULL;
}

/* Reader side: slot s's subtree root. */
static inline struct rib_node *slot_root(struct rib_fam *f, unsigned s)
{
	uintptr_t v = (uintptr_t)rib_deref(f->slots[s]);
	return v & RIB_SLOT_DIR ? rib_deref(f->droot[s]) : (struct rib_node *)v;
}

/* IPv6 index key: 17 bytes. */
struct rib_pk6 {
	uint64_t hi, lo;
	uint8_t len;
} __attribute__((packed));

struct rib_peer {
	uint8_t *v4;                     /* 5 bytes each: address (big-endian), length */
	struct rib_pk6 *v6;
	size_t n[BGP_FAM_COUNT], cap[BGP_FAM_COUNT];
	uint64_t live[BGP_FAM_COUNT];    /* prefixes with >= 1 path of this peer (atomic) */
	uint16_t sweeping[BGP_FAM_COUNT];/* open rib_sweeps: the vector is append-only */
	uint32_t sweep_gen[BGP_FAM_COUNT];/* rib_sweep_begin calls: the newest compacts */
	struct pidx_job *job[BGP_FAM_COUNT];/* a compaction in steps (pidx_job_*), or NULL */
};

#define RIB_JSTAMP_EVERY 256         /* sample one queued node in this many (per queue) */
#define RIB_JSTAMP_RING  512         /* covers the last 128k nodes queued on one queue */
#define RIB_JEMPTY_RING  32
#define RIB_JQUEUES      8           /* journal queues per lane; a writer thread uses one */
#define RIB_WARM_GROUP   32          /* tree descents warmed together (tree_warm) */

/*
 * One journal queue.  The writer side (tail and count) and the consumer side
 * (head and drained count) have lines of their own; a writer thread always
 * uses the same queue (rib_jq_mine), so two writers do not move the tail's
 * line between their cores on every change.
 */
struct rib_jq {
	struct __cds_wfcq_head head __attribute__((aligned(64)));
	uint64_t drained;                /* nodes ever drained: the consumer's (atomic store) */
	uint64_t batch_first;            /* consumer: number of the first node of its last drain
					  * from here, 0 if that drain took none */
	struct cds_wfcq_tail tail __attribute__((aligned(64)));
	uint64_t seq;                    /* nodes ever queued here (atomic) */
	/* receive-time stamps for latency metrics (see rib_journal_batch_stamp) */
	struct rib_jstamp { uint64_t seq, ns; } samp[RIB_JSTAMP_RING] __attribute__((aligned(64)));
	struct rib_jstamp empty[RIB_JEMPTY_RING];
};

struct rib {
	struct rib_fam f[BGP_FAM_COUNT];
	struct decide_opts dopts;
	struct attr_table *attrs;
	const struct rib_peerinfo *peers;
	struct rib_peer **peer;          /* RIB_MAX_PEERS, lazily filled by the peer's thread */
	unsigned jdepth;                 /* rib_opts.journal_depth */
	uint64_t peer_index_bytes;       /* atomic */
	/* journal: pending = sum of (seq - drained) over the queues of both lanes */
	struct rib_jq jq[RIB_JLANES][RIB_JQUEUES];
	unsigned jnext[RIB_JLANES];      /* consumer: per lane, the queue its next drain starts with */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	int wflag;
	/* per-thread free batches (rib_thread_batches): slot i belongs to the
	 * thread holding index i; a line each, written by that thread only */
	struct rib_wslot {
		struct rib_reclaim *pending;
	} __attribute__((aligned(64))) ws[RIB_WSLOTS];
};

/* ---- keys --------------------------------------------------------------- */

static inline rkey_t kmask(unsigned len)
{
	return len ? ~(rkey_t)0 << (128 - len) : 0;
}

static inline unsigned kbit(rkey_t k, unsigned i)
{
	return (unsigned)(k >> (127 - i)) & 1;
}

/* Common prefix length of two IPv4 keys (host order). */
static inline unsigned cpl32(uint32_t a, uint32_t b)
{
	uint32_t x = a ^ b;
	return x ? (unsigned)__builtin_clz(x) : 32;
}

static inline unsigned kcpl(rkey_t a, rkey_t b)
{
	rkey_t x = a ^ b;
	uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
	if (hi)
		return (unsigned)__builtin_clzll(hi);
	if (lo)
		return 64 + (unsigned)__builtin_clzll(lo);
	return 128;
}

static inline uint64_t be64_load(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static inline uint32_t be32_load(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

static inline rkey_t key_from_addr(unsigned fam, const uint8_t *a)
{
	if (fam == BGP_FAM_IPV4)
		return (rkey_t)be32_load(a) << 96;
	return (rkey_t)be64_load(a) << 64 | be64_load(a + 8);
}

static void key_to_addr(unsigned fam, rkey_t k, uint8_t *a)
{
	memset(a, 0, 16);
	unsigned nb = fam == BGP_FAM_IPV4 ? 4 : 16;
	for (unsigned i = 0; i < nb; i++)
		a[i] = (uint8_t)(k >> (120 - 8 * i));
}

static inline rkey_t node_key(const struct rib_node *n)
{
	if (n->fam == BGP_FAM_IPV4)
		return (rkey_t)n->k4 << 96;
	const struct rib_node6 *n6 = (const struct rib_node6 *)n;
	return (rkey_t)n6->hi << 64 | n6->lo;
}

static inline size_t node_size(unsigned fam)
{
	return fam == BGP_FAM_IPV4 ? sizeof(struct rib_node) : sizeof(struct rib_node6);
}

/* What node n was allocated with (a short glue node or a full one). */
static inline size_t node_alloc_size(const struct rib_node *n)
{
	return n->glue ? RIB_GLUE4_SIZE : node_size(n->fam);
}

static inline size_t ps_size(unsigned n)
{
	return sizeof(struct rib_pathset) + n * sizeof(struct rib_path);
}

static void *xmalloc(size_t sz)
{
	void *p = malloc(sz);
	if (!p)
		log_fatal("rib: out of memory (%zu bytes)", sz);
	return p;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);
	if (!p)
		log_fatal("rib: out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

/*
 * A zeroed table that the hot path reads before it writes: every page is
 * written now.  calloc's fresh pages are untouched; a first read maps the
 * shared zero page, and the first write after it replaces that page and
 * flushes the TLB of every CPU running one of our threads - an IPI each,
 * dear in a VM.  In S1 (10,000 routes into a new daemon) that was 4-6 % of
 * the I/O threads' samples (do_wp_page -> flush_tlb_mm_range), on the
 * first routes' path.  Done once here, at creation, instead.
 */
static void *xcalloc_touched(size_t n, size_t sz)
{
	unsigned char *p = xcalloc(n, sz);
	for (size_t off = 0; off < n * sz; off += 4096)
		((volatile unsigned char *)p)[off] = 0;
	return p;
}

/* ---- stripes and deferred reclaim -------------------------------------- */

/*
 * The stripe lock: a test-and-test-and-set spinlock.  Taking it is one
 * exchange, as for a mutex; letting go is a plain release store, where
 * pthread_mutex_unlock needs an atomic read-modify-write (it must learn
 * whether to wake a waiter), and that instruction first waits for every
 * store of the critical section - the new path set, freshly allocated,
 * not yet in cache - to reach the cache.  Sections are short (one prefix,
 * or a run of a batch) and writers rarely meet on a stripe (0.06 % of the
 * inserts of two writers on one table, most of those behind a holder that
 * was preempted).  A waiter spins a while, then sleeps on a futex until
 * the holder lets go.  It used to yield the CPU at every look instead:
 * behind a holder preempted on the other CPU that is a busy loop - in S2,
 * where the load generator competes for both CPUs, the two I/O threads
 * made about 2.7 million sched_yield calls during one 5 M-route announce
 * and spent 5-9 % of their samples there.  The release stays a plain
 * store followed by a relaxed look at the sleeper count; a sleeper
 * registered in between is still woken, because futex_wait refuses to
 * sleep once the word is 0, and in the remaining window (the count read
 * before the store is seen and the store not yet seen by the kernel's
 * check) it sleeps at most RIB_NAP_NS.  Under a stripe lock a
 * writer never waits for I/O nor takes another stripe (DESIGN.md, lock
 * order); the allocator's locks and the journal's wake-up mutex (wmu) are
 * taken under it only briefly.  Acquire on taking, release on letting go:
 * the same ordering between writers as the mutex gave, so the argument
 * above does not change.
 */
#define RIB_SPINS 128
#define RIB_NAP_NS 200000                /* a sleeper's bound when a wake-up is missed */

static void stripe_lock_slow(struct rib_lock *lk)
{
	for (unsigned i = 0;; i++) {
		if (i < RIB_SPINS) {
			caa_cpu_relax();
		} else {
			/* the holder is slow - usually preempted, the CPU taken by
			 * another thread: give ours up until it lets go */
			__atomic_fetch_add(&lk->sleepers, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&lk->word, __ATOMIC_SEQ_CST)) {
				struct timespec ts = { 0, RIB_NAP_NS };
				syscall(SYS_futex, &lk->word, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
			}
			__atomic_fetch_sub(&lk->sleepers, 1, __ATOMIC_RELAXED);
		}
		if (!__atomic_load_n(&lk->word, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&lk->word, 1, __ATOMIC_ACQUIRE))
			return;
	}
}

static inline void stripe_lock(struct rib_lock *lk)
{
	if (caa_unlikely(__atomic_exchange_n(&lk->word, 1, __ATOMIC_ACQUIRE)))
		stripe_lock_slow(lk);
}

static inline void stripe_unlock(struct rib_lock *lk)
{
	__atomic_store_n(&lk->word, 0, __ATOMIC_RELEASE);
	/* may read a sleeper's count before the store above is seen (no
	 * fence, on purpose: see above); the futex's own check of the word
	 * and the sleeper's RIB_NAP_NS bound cover that window */
	if (caa_unlikely(__atomic_load_n(&lk->sleepers, __ATOMIC_RELAXED)))
		syscall(SYS_futex, &lk->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline unsigned key_slot(const struct rib_fam *f, rkey_t k)
{
	return (unsigned)(k >> (128 - f->stride));
}

/* Writer side (stripe lock held): the link holding the root of (k, len)'s tree. */
static inline struct rib_node **root_link(struct rib_fam *f, rkey_t k, unsigned len)
{
	return len >= f->stride ? slot_link(f, key_slot(f, k)) : &f->shortroot;
}

/* Reader side (no lock): the root of the tree holding (k, len). */
static inline struct rib_node *root_get(struct rib_fam *f, rkey_t k, unsigned len)
{
	return len >= f->stride ? slot_root(f, key_slot(f, k)) : rib_deref(f->shortroot);
}

static inline struct rib_stripe *stripe_of(struct rib_fam *f, rkey_t k, unsigned len)
{
	if (len < f->stride)
		return &f->stripes[f->nstripes];
	return &f->stripes[key_slot(f, k) & (f->nstripes - 1)];
}

/*
 * The grace period of batch b is over: free it here, on the call_rcu thread.
 * Handing ripe batches back to the writers instead (so that path sets go back
 * to the writer's own jemalloc cache) was tried (5aae9e3): it put the frees
 * of a mass withdrawal on the I/O threads, the bottleneck then, and held
 * freed batches until a writer's next call - S3's withdrawal went from
 * 2.2-2.4 s to 5.7-6.9 s and its peak RSS up by 60 MiB.
 */
static void reclaim_cb(struct rcu_head *h)
{
	struct rib_reclaim *b = caa_container_of(h, struct rib_reclaim, rcu);
	struct rib *r = b->rib;
	mem_thread_cache();
	tsan_acquire(b);
	for (unsigned i = 0; i < b->n; i++) {
		if (b->e[i].a)
			attr_unref(r->attrs, b->e[i].a);
		free(b->e[i].p);
	}
	free(b);
}

/* Hand the batch at *slot (a stripe's, under its lock, or a writer slot's,
 * by its owner) to call_rcu. */
static void batch_flush(struct rib_reclaim **slot)
{
	struct rib_reclaim *b = *slot;
	if (b) {
		/* the store is atomic because rib_reclaim_idle peeks without the lock */
		__atomic_store_n(slot, NULL, __ATOMIC_RELAXED);
		tsan_release(b);
		call_rcu(&b->rcu, reclaim_cb);
	}
}

static void stripe_flush(struct rib_stripe *st)
{
	batch_flush(&st->pending);
}

/*
 * PER-THREAD FREE BATCHES
 *   A stripe's batch is written by whichever writer last replaced a path
 *   set in that stripe: with two I/O threads, most appends find the batch's
 *   lines in the other core's cache.  On a VM whose two vCPUs share no cache
 *   that is a DRAM-latency miss per append (docs/BENCHMARKS.md, stop 31:
 *   two writers on one RIB ran 1.1x one writer, on two RIBs 1.8x).  So a
 *   thread that asks for it (rib_thread_batches) gets one of RIB_WSLOTS
 *   indices, process-wide, and in every RIB the slot of that index is its
 *   own: defer_free appends there without a lock, and the owner hands a
 *   partial batch over itself (rib_reclaim_mine) when it goes idle.  The
 *   index goes back to the pool when the thread exits (a key destructor,
 *   which touches no RIB); a batch it left behind stays in its slot for the
 *   next owner of the index, or for rib_flush - the release store and the
 *   claim's compare-and-swap order the two owners' accesses.  A thread
 *   without an index (it never asked, or all were taken) uses the stripe's
 *   batch, under the stripe lock, as before.  The grace-period argument
 *   (3 above) does not depend on which batch an object waits in.
 */
_Static_assert(RIB_WSLOTS == 64, "rib_ws_free has one bit per writer slot");
static uint64_t rib_ws_free = ~(uint64_t)0;     /* bit i set: index i is free */
static __thread int rib_ws_mine = -1;
static pthread_key_t rib_ws_key;
static pthread_once_t rib_ws_once = PTHREAD_ONCE_INIT;

static void ws_release(void *v)
{
	unsigned i = (unsigned)((uintptr_t)v - 1);
	__atomic_fetch_or(&rib_ws_free, (uint64_t)1 << i, __ATOMIC_RELEASE);
}

static void ws_key_init(void)
{
	if (pthread_key_create(&rib_ws_key, ws_release))
		log_fatal("rib: pthread_key_create failed");
}

bool rib_thread_batches(void)
{
	if (rib_ws_mine >= 0)
		return true;
	pthread_once(&rib_ws_once, ws_key_init);
	uint64_t v = __atomic_load_n(&rib_ws_free, __ATOMIC_ACQUIRE);
	while (v) {
		unsigned i = (unsigned)__builtin_ctzll(v);
		if (__atomic_compare_exchange_n(&rib_ws_free, &v, v & ~((uint64_t)1 << i), false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			if (pthread_setspecific(rib_ws_key, (void *)(uintptr_t)(i + 1)))
				log_fatal("rib: pthread_setspecific failed");
			rib_ws_mine = (int)i;
			return true;
		}
	}
	return false;
}

void rib_reclaim_mine(struct rib *r)
{
	if (rib_ws_mine >= 0)
		batch_flush(&r->ws[rib_ws_mine].pending);
}

/* Free p (may be NULL) and drop a reference to a (may be NULL) after a
 * grace period.  Caller holds st->lk. */
static void defer_free(struct rib *r, struct rib_stripe *st, void *p, struct attr_set *a)
{
	struct rib_reclaim **slot = rib_ws_mine >= 0 ? &r->ws[rib_ws_mine].pending : &st->pending;
	struct rib_reclaim *b = *slot;
	if (!b || b->n == b->cap) {
		/* new, or full but not yet RIB_RECLAIM_BATCH: grow (under the
		 * lock or by the slot's owner; rib_reclaim_idle only peeks at a
		 * stripe's pointer without the lock) */
		unsigned cap = b ? 2 * b->cap : slot == &st->pending ? RIB_RECLAIM_FIRST : RIB_RECLAIM_BATCH;
		b = realloc(b, sizeof(*b) + cap * sizeof(b->e[0]));
		if (!b)
			log_fatal("rib: out of memory (reclaim batch)");
		if (!*slot) {
			b->rib = r;
			b->n = 0;
		}
		b->cap = cap;
		__atomic_store_n(slot, b, __ATOMIC_RELAXED);   /* see batch_flush */
	}
	b->e[b->n].p = p;
	b->e[b->n].a = a;
	if (++b->n == RIB_RECLAIM_BATCH)
		batch_flush(slot);
}

/* ---- tree (writer side: caller holds the stripe lock) ------------------- */

/* glue: a node made only to join two subtrees, short if IPv4. */
static struct rib_node *node_new(struct rib_stripe *st, unsigned fam, rkey_t k, unsigned len,
				 bool glue)
{
	glue = glue && fam == BGP_FAM_IPV4;
	size_t sz = glue ? RIB_GLUE4_SIZE : node_size(fam);
	struct rib_node *n = xmalloc(sz);
	memset(n, 0, sz);
	n->fam = (uint8_t)fam;
	n->len = (uint8_t)len;
	n->glue = glue;
	if (fam == BGP_FAM_IPV4) {
		n->k4 = (uint32_t)(k >> 96);
	} else {
		struct rib_node6 *n6 = (struct rib_node6 *)n;
		n6->hi = (uint64_t)(k >> 64);
		n6->lo = (uint64_t)k;
	}
	wr_relaxed(st->nodes, st->nodes + 1);
	wr_relaxed(st->node_bytes, st->node_bytes + (int64_t)sz);
	return n;
}

/* The short glue node g at *link gets a prefix: a full node with the same
 * prefix and children takes its place (one store), g is freed after a grace
 * period like any unlinked node. */
static struct rib_node *glue_fill(struct rib *r, struct rib_stripe *st, struct rib_node **link,
				  struct rib_node *g)
{
	struct rib_node *n = node_new(st, g->fam, node_key(g), g->len, false);
	n->ch[0] = g->ch[0];
	n->ch[1] = g->ch[1];
	rib_pub(*link, n);
	hint_unlink(&r->f[g->fam], g, n);
	wr_relaxed(st->nodes, st->nodes - 1);
	wr_relaxed(st->node_bytes, st->node_bytes - (int64_t)RIB_GLUE4_SIZE);
	defer_free(r, st, g, NULL);
	return n;
}

/* Find or create the node for (k, len) in the tree at *link: never a short
 * glue node.  *deep becomes the last node of length <= RIB_HINT_LEN that
 * the descent passed or made above the result (unchanged if none). */
static struct rib_node *tree_get(struct rib *r, struct rib_stripe *st, unsigned fam,
				 struct rib_node **link, rkey_t k, unsigned len, struct rib_node **deep)
{
	struct rib_node *n;
	while ((n = *link) != NULL) {
		rkey_t kn = node_key(n);
		unsigned l = n->len, c = kcpl(k, kn);
		if (c > l)
			c = l;
		if (c > len)
			c = len;
		if (c < l) {
			struct rib_node *nn = node_new(st, fam, k, len, false);
			if (c == len) {
				nn->ch[kbit(kn, len)] = n;
				rib_pub(*link, nn);
			} else {
				struct rib_node *g = node_new(st, fam, k & kmask(c), c, true);
				g->ch[kbit(k, c)] = nn;
				g->ch[kbit(kn, c)] = n;
				rib_pub(*link, g);
				if (c <= RIB_HINT_LEN)
					*deep = g;
			}
			return nn;
		}
		if (l == len)
			return n->glue ? glue_fill(r, st, link, n) : n;
		if (l <= RIB_HINT_LEN)
			*deep = n;
		link = &n->ch[kbit(k, l)];
	}
	n = node_new(st, fam, k, len, false);
	rib_pub(*link, n);
	return n;
}

/* Find (k, len) recording the links from the root; returns depth (index of
 * the node's link + 1) or 0 if absent. */
static unsigned tree_find_links(struct rib_node **link, rkey_t k, unsigned len,
				struct rib_node ***links)
{
	unsigned d = 0;
	struct rib_node *n;
	while ((n = *link) != NULL && n->len <= len) {
		links[d++] = link;
		if (kcpl(k, node_key(n)) < n->len)
			return 0;
		if (n->len == len)
			return d;
		link = &n->ch[kbit(k, n->len)];
	}
	return 0;
}

static inline bool node_prunable(struct rib_node *n)
{
	return n->ps == NULL && !(n->ch[0] && n->ch[1]) &&
	       (n->glue || (__atomic_load_n(&n->jstate, __ATOMIC_ACQUIRE) & RIB_JREFS) == 0);
}

/* Unlink the node at *links[d-1] and then its ancestors while they are
 * prunable.  Caller holds the stripe lock. */
static void tree_prune(struct rib *r, struct rib_stripe *st, struct rib_node ***links, unsigned d)
{
	while (d > 0) {
		struct rib_node **link = links[d - 1];
		struct rib_node *n = *link;
		if (!node_prunable(n))
			return;
		struct rib_node *c = n->ch[0] ? n->ch[0] : n->ch[1];
		rib_pub(*link, c);
		hint_unlink(&r->f[n->fam], n, NULL);
		wr_relaxed(st->nodes, st->nodes - 1);
		wr_relaxed(st->node_bytes, st->node_bytes - (int64_t)node_alloc_size(n));
		defer_free(r, st, n, NULL);
		if (c)
			return;          /* parent keeps the same number of children */
		d--;
	}
}

/* ---- journal ------------------------------------------------------------ */

/* How many leading paths of a set the journal watches: the multipath set,
 * or the first journal_depth paths when ADD-PATH senders need more. */
static inline unsigned watched(const struct rib_pathset *ps, unsigned depth)
{
	if (!ps)
		return 0;
	unsigned k = ps->n < depth ? ps->n : depth;
	return ps->n_multipath > k ? ps->n_multipath : k;
}

static bool mp_changed(const struct rib_pathset *a, const struct rib_pathset *b, unsigned depth)
{
	unsigned na = watched(a, depth), nb = watched(b, depth);
	if (na != nb)
		return true;
	for (unsigned i = 0; i < na; i++)
		if (a->p[i].peer != b->p[i].peer || a->p[i].path_id != b->p[i].path_id ||
		    a->p[i].attr != b->p[i].attr)
			return true;
	return false;
}

static void journal_signal(struct rib *r, bool explicit_wake)
{
	pthread_mutex_lock(&r->wmu);
	if (explicit_wake)
		r->wflag = 1;
	pthread_cond_signal(&r->wcv);
	pthread_mutex_unlock(&r->wmu);
}

/*
 * Receive-time stamps, per queue: every RIB_JSTAMP_EVERY-th node queued on
 * it, and every node queued on it while it was empty, records (its number on
 * that queue, now).  The consumer numbers what it drains from each queue the
 * same way (one queue is FIFO), so the newest stamp at or before the first
 * node a drain took from a queue dates that queue's part of the batch (a
 * slight overestimate, never an underestimate, of how long its oldest change
 * waited); the batch's stamp is the oldest of those.  Costs one atomic add
 * per queued node on the writer's own queue and a clock read per 256.
 */
static void journal_stamp(struct rib_jq *q, uint64_t seq, bool empty)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	struct rib_jstamp *s = empty ? &q->empty[seq % RIB_JEMPTY_RING]
				     : &q->samp[(seq / RIB_JSTAMP_EVERY) % RIB_JSTAMP_RING];
	__atomic_store_n(&s->seq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ns, ns, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq, __ATOMIC_RELEASE);
}

static uint64_t jq_batch_stamp(const struct rib_jq *q)
{
	uint64_t first = q->batch_first, best_seq = 0, best_ns = 0;
	if (!first)
		return 0;
	const struct rib_jstamp *c[1 + RIB_JEMPTY_RING];
	unsigned nc = 0;
	c[nc++] = &q->samp[(first / RIB_JSTAMP_EVERY) % RIB_JSTAMP_RING];
	for (unsigned i = 0; i < RIB_JEMPTY_RING; i++)
		c[nc++] = &q->empty[i];
	for (unsigned i = 0; i < nc; i++) {
		uint64_t s = __atomic_load_n(&c[i]->seq, __ATOMIC_ACQUIRE);
		uint64_t ns = __atomic_load_n(&c[i]->ns, __ATOMIC_RELAXED);
		if (s && s <= first && s > best_seq && __atomic_load_n(&c[i]->seq, __ATOMIC_ACQUIRE) == s) {
			best_seq = s;
			best_ns = ns;
		}
	}
	/* a stamp further back than one sampling interval is not this batch's */
	return best_seq && first - best_seq < 2 * RIB_JSTAMP_EVERY ? best_ns : 0;
}

uint64_t rib_journal_batch_stamp(struct rib *r)
{
	uint64_t oldest = 0;
	for (unsigned l = 0; l < RIB_JLANES; l++)
		for (unsigned i = 0; i < RIB_JQUEUES; i++) {
			uint64_t ns = jq_batch_stamp(&r->jq[l][i]);
			if (ns && (!oldest || ns < oldest))
				oldest = ns;
		}
	return oldest;
}

/* The journal queue of the calling writer thread (in each lane): handed out
 * round-robin on first use, so up to RIB_JQUEUES writer threads each have
 * one to themselves.  rib_jbulk: the thread is in a sweep step, its changes
 * go to the bulk lane (set and cleared by rib_sweep_step, which calls no
 * other public function in between). */
static unsigned rib_jq_next;
static __thread unsigned rib_jq_mine = UINT32_MAX;
static __thread bool rib_jbulk;

static inline struct rib_jq *jq_mine(struct rib *r)
{
	if (caa_unlikely(rib_jq_mine == UINT32_MAX))
		rib_jq_mine = __atomic_fetch_add(&rib_jq_next, 1, __ATOMIC_RELAXED) % RIB_JQUEUES;
	return &r->jq[rib_jbulk ? RIB_JLANE_BULK : RIB_JLANE_LIVE][rib_jq_mine];
}

/* Caller holds the node's stripe lock and has just published its new set. */
static void journal_mark(struct rib *r, struct rib_node *n)
{
	/* set queued and take a reference in one read-modify-write; when it is
	 * already queued the CAS still writes (the same value): that RMW is what
	 * orders our publication before the consumer's clearing of the flag */
	uint32_t v = __atomic_load_n(&n->jstate, __ATOMIC_RELAXED), nv;
	do {
		if (!(v & RIB_JQUEUED) && (v & RIB_JREFS) == RIB_JREFS)
			log_fatal("rib: journal reference overflow (consumer never releases?)");
		nv = v & RIB_JQUEUED ? v : v + RIB_JQUEUED + 1;
	} while (!__atomic_compare_exchange_n(&n->jstate, &v, nv, false, __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	if (v & RIB_JQUEUED)
		return;
	struct rib_jq *q = jq_mine(r);
	uint64_t seq = __atomic_add_fetch(&q->seq, 1, __ATOMIC_SEQ_CST);
	cds_wfcq_node_init(&n->jn);
	tsan_release(n);
	bool was_empty = !cds_wfcq_enqueue(&q->head, &q->tail, &n->jn);
	if (was_empty || (seq & (RIB_JSTAMP_EVERY - 1)) == 0)
		journal_stamp(q, seq, was_empty);
	if (was_empty)
		journal_signal(r, false);
}

/* Up to max nodes from queue q, counted and numbered. */
static size_t jq_drain(struct rib_jq *q, struct rib_node **out, size_t max)
{
	size_t i;
	for (i = 0; i < max; i++) {
		struct cds_wfcq_node *qn = __cds_wfcq_dequeue_blocking(&q->head, &q->tail);
		if (!qn)
			break;
		struct rib_node *n = caa_container_of(qn, struct rib_node, jn);
		tsan_acquire(n);
		/* After this, a writer's next change re-queues the node; paired
		 * with the exchange in journal_mark, which follows its publish. */
		__atomic_fetch_and(&n->jstate, ~RIB_JQUEUED, __ATOMIC_SEQ_CST);
		out[i] = n;
	}
	q->batch_first = i ? q->drained + 1 : 0;
	if (i)
		__atomic_store_n(&q->drained, q->drained + i, __ATOMIC_RELEASE);
	return i;
}

/* The queues of one lane in turn, starting where the lane's last drain
 * stopped, so a busy queue cannot starve the others. */
static size_t lane_drain(struct rib *r, unsigned lane, struct rib_node **out, size_t max)
{
	struct rib_jq *jq = r->jq[lane];
	size_t got = 0;
	unsigned start = r->jnext[lane];
	for (unsigned j = 0; j < RIB_JQUEUES; j++) {
		unsigned qi = (start + j) % RIB_JQUEUES;
		if (got == max) {
			jq[qi].batch_first = 0;
			continue;
		}
		got += jq_drain(&jq[qi], out + got, max - got);
		if (got == max)
			r->jnext[lane] = qi;   /* may hold more: it goes first next time */
	}
	if (got < max)
		r->jnext[lane] = (start + 1) % RIB_JQUEUES;
	return got;
}

/* A lane this drain does not visit has no part in its batch stamp. */
static void lane_unstamp(struct rib *r, unsigned lane)
{
	for (unsigned i = 0; i < RIB_JQUEUES; i++)
		r->jq[lane][i].batch_first = 0;
}

size_t rib_journal_drain(struct rib *r, struct rib_node **out, size_t max)
{
	size_t got = lane_drain(r, RIB_JLANE_LIVE, out, max);
	got += lane_drain(r, RIB_JLANE_BULK, out + got, max - got);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return got;
}

size_t rib_journal_drain_lane(struct rib *r, enum rib_jlane lane, struct rib_node **out, size_t max)
{
	if (lane >= RIB_JLANES)
		log_fatal("rib: journal drain of bad lane %u", (unsigned)lane);
	size_t got = lane_drain(r, lane, out, max);
	lane_unstamp(r, lane == RIB_JLANE_LIVE ? RIB_JLANE_BULK : RIB_JLANE_LIVE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return got;
}

void rib_journal_release(struct rib *r, struct rib_node *n)
{
	rcu_read_lock();             /* n may be pruned by a writer once jrefs hits 0 */
	uint32_t old = __atomic_fetch_sub(&n->jstate, 1, __ATOMIC_ACQ_REL);
	if (!(old & RIB_JREFS))
		log_fatal("rib: journal release of a node not held");
	unsigned left = (old - 1) & RIB_JREFS;
	if (left == 0 && rib_deref(n->ps) == NULL) {
		struct rib_fam *f = &r->f[n->fam];
		rkey_t k = node_key(n);
		unsigned len = n->len;
		struct rib_stripe *st = stripe_of(f, k, len);
		struct rib_node **links[130];
		stripe_lock(&st->lk);
		unsigned d = tree_find_links(root_link(f, k, len), k, len, links);
		if (d && *links[d - 1] == n)
			tree_prune(r, st, links, d);
		stripe_unlock(&st->lk);
	}
	rcu_read_unlock();
}

void rib_node_hold(struct rib_node *n)
{
	if ((__atomic_fetch_add(&n->jstate, 1, __ATOMIC_RELAXED) & RIB_JREFS) == RIB_JREFS)
		log_fatal("rib: node hold overflow");
}

uint64_t rib_journal_pending_lane(struct rib *r, enum rib_jlane lane)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < RIB_JQUEUES; i++) {
		/* drained first: a count read after it is at least as new (both only grow) */
		uint64_t d = __atomic_load_n(&r->jq[lane][i].drained, __ATOMIC_ACQUIRE);
		uint64_t q = __atomic_load_n(&r->jq[lane][i].seq, __ATOMIC_ACQUIRE);
		n += q > d ? q - d : 0;
	}
	return n;
}

uint64_t rib_journal_pending(struct rib *r)
{
	return rib_journal_pending_lane(r, RIB_JLANE_LIVE) + rib_journal_pending_lane(r, RIB_JLANE_BULK);
}

void rib_journal_wait(struct rib *r, int timeout_ms)
{
	if (rib_journal_pending(r))
		return;
	struct timespec ts;
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&r->wmu);
	while (!r->wflag && rib_journal_pending(r) == 0) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&r->wcv, &r->wmu);
		} else if (pthread_cond_timedwait(&r->wcv, &r->wmu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	r->wflag = 0;
	pthread_mutex_unlock(&r->wmu);
}

void rib_journal_wake(struct rib *r)
{
	journal_signal(r, true);
}

uint32_t *rib_node_out_state(struct rib_node *n)
{
	return &n->out_state;
}

bool rib_node_queued(const struct rib_node *n)
{
	return (__atomic_load_n(&n->jstate, __ATOMIC_ACQUIRE) & RIB_JQUEUED) != 0;
}

/* ---- per-peer index (touched only by the peer's own thread) ------------- */

static struct rib_peer *peer_get(struct rib *r, uint32_t peer)
{
	struct rib_peer *p = rib_deref(r->peer[peer]);
	if (!p) {
		p = xcalloc(1, sizeof(*p));
		rib_pub(r->peer[peer], p);
	}
	return p;
}

#define PK4_SIZE 5

static size_t pidx_esize(unsigned fam)
{
	return fam == BGP_FAM_IPV4 ? PK4_SIZE : sizeof(struct rib_pk6);
}

static void *pidx_vec(struct rib_peer *p, unsigned fam)
{
	return fam == BGP_FAM_IPV4 ? (void *)p->v4 : (void *)p->v6;
}

static void pidx_setvec(struct rib *r, struct rib_peer *p, unsigned fam, void *v, size_t cap)
{
	size_t es = pidx_esize(fam);
	add_relaxed(r->peer_index_bytes, (cap - p->cap[fam]) * es);
	if (fam == BGP_FAM_IPV4)
		p->v4 = v;
	else
		p->v6 = v;
	p->cap[fam] = cap;
}

/* The key of an index entry (a vector's or a compaction's copy's). */
static void pidx_entry_key(unsigned fam, const uint8_t *e, rkey_t *k, unsigned *len)
{
	if (fam == BGP_FAM_IPV4) {
		*k = (rkey_t)be32_load(e) << 96;
		*len = e[4];
	} else {
		struct rib_pk6 x;
		memcpy(&x, e, sizeof(x));
		*k = (rkey_t)x.hi << 64 | x.lo;
		*len = x.len;
	}
}

/* The families, keys and lengths of g consecutive index entries from e, as
 * tree_warm takes them (a sweep's group, a compaction's filter group). */
static void pidx_group(unsigned fam, const uint8_t *e, unsigned g, uint8_t *fm, rkey_t *k,
		       uint8_t *len)
{
	size_t es = pidx_esize(fam);
	for (unsigned j = 0; j < g; j++) {
		unsigned l;
		pidx_entry_key(fam, e + j * es, &k[j], &l);
		len[j] = (uint8_t)l;
		fm[j] = (uint8_t)fam;
	}
}

static bool node_has_peer(const struct rib_node *n, uint32_t peer)
{
	const struct rib_pathset *ps = n ? rib_deref(n->ps) : NULL;
	for (unsigned i = 0; ps && i < ps->n; i++)
		if (ps->p[i].peer == peer)
			return true;
	return false;
}

static struct rib_node *tree_lookup(struct rib_node *n, rkey_t k, unsigned len);
static void tree_warm(struct rib *r, const uint8_t *fam, const rkey_t *k, const uint8_t *len,
		      unsigned g, bool use_dir);
static inline struct rib_node *dir_exact4(struct rib_fam *f, uint32_t a, unsigned len);
static inline struct rib_node *dir_cover4(struct rib_fam *f, uint32_t a);

/*
 * A big index is compacted in steps (a "job") instead of in one go.  A peer
 * that flaps its table by UPDATEs fills its vector with entries of prefixes
 * it no longer holds or holds twice; compacting 900,000 entries in one go
 * (pidx_compact: a sort, then a tree lookup each) held the peer's I/O thread
 * for 24-54 ms, and every other session of that thread with it.  So when a
 * vector of at least PIDX_JOB_MIN entries must grow while more than half of
 * it is dead, it grows as usual and a job begins on a copy of its first m
 * entries: an LSD radix sort, a counting or scattering pass over a piece of
 * the copy at a time (any byte order will do: what is wanted is that equal
 * entries end up side by side), then the filter, a warm group at a time: an
 * entry equal to the one before it is a copy, dropped; the others stay if
 * the peer still has a path there.  Every PIDX_JOB_EVERY appends do one
 * step, so the work is spread over the appends that made it necessary and
 * the job is done well before the grown vector is full again; if it is not
 * (or at the next growth) the rest runs at once.  At the end the vector
 * becomes the kept entries followed by those appended since the job began.
 *
 * Why nothing is lost: a prefix the peer holds at the end either was gained
 * after the job began (its entry was appended after m, kept as is) or has
 * been held since before, so the copy has an entry for it and the filter,
 * which runs on the peer's own thread (the only one that changes the peer's
 * paths), sees it held.  Entries kept in error (a prefix withdrawn after its
 * check) are dead entries like any other, dropped by a later compaction.
 *
 * A sweep needs a vector whose positions do not move: rib_sweep_begin
 * abandons the job, and none begins while a sweep is open; freeing the
 * vector (the peer's last prefix gone) abandons it too.  Only the peer's
 * thread touches the job, as the vector.
 */
#define PIDX_JOB_MIN   16384u        /* entries: smaller vectors are compacted at once */
#define PIDX_JOB_EVERY 8u            /* appends per step */
#define PIDX_JOB_OPS   1024u         /* entries counted or moved per sort step */

struct pidx_job {
	uint8_t *a, *b;                  /* the copy, and the radix sort's other buffer */
	size_t m;                        /* entries in the copy: vector[0, m) at the start */
	size_t pos;                      /* progress in the current pass or in the filter */
	size_t out;                      /* filter: entries kept, in a[0, out) */
	int byte;                        /* the radix pass's byte; -1: filtering */
	bool scatter;                    /* the pass's second half */
	unsigned tick;                   /* appends since the last step */
	size_t cnt[256];
};

static void pidx_job_free(struct rib *r, struct rib_peer *p, unsigned fam)
{
	struct pidx_job *j = p->job[fam];
	if (!j)
		return;
	add_relaxed(r->peer_index_bytes, -(uint64_t)(2 * j->m * pidx_esize(fam)));
	free(j->a);
	free(j->b);
	free(j);
	p->job[fam] = NULL;
}

static void pidx_job_start(struct rib *r, struct rib_peer *p, unsigned fam)
{
	size_t m = p->n[fam], es = pidx_esize(fam);
	if (m == 0)
		log_fatal("rib: compaction of peer index with no entries");
	struct pidx_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->a = malloc(m * es)) || !(j->b = malloc(m * es)))
		log_fatal("rib: out of memory (peer index compaction)");
	memcpy(j->a, pidx_vec(p, fam), m * es);
	j->m = m;
	j->byte = (int)es - 1;
	p->job[fam] = j;
	add_relaxed(r->peer_index_bytes, 2 * m * es);
}

/* The vector becomes the kept entries, then what was appended since. */
static void pidx_job_finish(struct rib *r, struct rib_peer *p, uint32_t peer, unsigned fam)
{
	struct pidx_job *j = p->job[fam];
	size_t es = pidx_esize(fam), tail = p->n[fam] - j->m, n = j->out + tail;
	size_t cap = n + n / 4 + 16;
	/* the kept entries are already at the front of the copy: it becomes
	 * the vector (its bytes leave the job's account, the vector's enter) */
	uint8_t *v = realloc(j->a, cap * es);
	if (!v)
		log_fatal("rib: out of memory (peer index)");
	j->a = NULL;
	memcpy(v + j->out * es, (uint8_t *)pidx_vec(p, fam) + j->m * es, tail * es);
	if (n < rd_relaxed(p->live[fam]))
		log_fatal("rib: peer %u index lost prefixes (%zu entries, %" PRIu64 " live)", peer, n,
			  rd_relaxed(p->live[fam]));
	free(pidx_vec(p, fam));
	pidx_setvec(r, p, fam, v, cap);
	p->n[fam] = n;
	pidx_job_free(r, p, fam);
}

/* One step of the job; returns true when the job is done (and gone). */
static bool pidx_job_step(struct rib *r, struct rib_peer *p, uint32_t peer, unsigned fam)
{
	struct pidx_job *j = p->job[fam];
	size_t es = pidx_esize(fam), m = j->m;
	if (j->byte >= 0) {
		unsigned b = (unsigned)j->byte;
		size_t end = m - j->pos > PIDX_JOB_OPS ? j->pos + PIDX_JOB_OPS : m;
		if (!j->scatter) {
			for (size_t i = j->pos; i < end; i++)
				j->cnt[j->a[i * es + b]]++;
			j->pos = end;
			if (end < m)
				return false;
			if (j->cnt[j->a[b]] == m) {
				/* one value at this byte: the order stays */
				memset(j->cnt, 0, sizeof(j->cnt));
				j->byte--;
			} else {
				size_t sum = 0;
				for (unsigned v = 0; v < 256; v++) {
					size_t c = j->cnt[v];
					j->cnt[v] = sum;
					sum += c;
				}
				j->scatter = true;
			}
			j->pos = 0;
			return false;
		}
		for (size_t i = j->pos; i < end; i++) {
			const uint8_t *e = j->a + i * es;
			memcpy(j->b + j->cnt[e[b]]++ * es, e, es);
		}
		j->pos = end;
		if (end < m)
			return false;
		uint8_t *t = j->a;
		j->a = j->b;
		j->b = t;
		memset(j->cnt, 0, sizeof(j->cnt));
		j->scatter = false;
		j->byte--;
		j->pos = 0;
		return false;
	}
	/* the filter: a warm group at a time; equal entries are side by side */
	struct rib_fam *f = &r->f[fam];
	unsigned g = m - j->pos < RIB_WARM_GROUP ? (unsigned)(m - j->pos) : RIB_WARM_GROUP;
	rkey_t k[RIB_WARM_GROUP] = { 0 };      /* (zeroed: gcc cannot see that g >= 1) */
	uint8_t fm[RIB_WARM_GROUP] = { 0 }, len[RIB_WARM_GROUP] = { 0 };
	bool dup[RIB_WARM_GROUP], keep[RIB_WARM_GROUP];
	for (unsigned x = 0; x < g; x++) {
		size_t i = j->pos + x;
		/* a[i - 1] is still the sorted entry: the filter writes a[out],
		 * out <= i - 1, only with that entry itself or earlier ones */
		dup[x] = i > 0 && memcmp(j->a + (i - 1) * es, j->a + i * es, es) == 0;
	}
	pidx_group(fam, j->a + j->pos * es, g, fm, k, len);
	rcu_read_lock();
	tree_warm(r, fm, k, len, g, false);
	for (unsigned x = 0; x < g; x++)
		keep[x] = !dup[x] && node_has_peer(tree_lookup(root_get(f, k[x], len[x]), k[x], len[x]), peer);
	rcu_read_unlock();
	for (unsigned x = 0; x < g; x++) {
		if (!keep[x])
			continue;
		if (j->out != j->pos + x)
			memcpy(j->a + j->out * es, j->a + (j->pos + x) * es, es);
		j->out++;
	}
	j->pos += g;
	if (j->pos < m)
		return false;
	pidx_job_finish(r, p, peer, fam);
	return true;
}

/* Sort, deduplicate and drop entries where the peer has no path any more,
 * in one go: a job run to its end. */
static void pidx_compact(struct rib *r, struct rib_peer *p, uint32_t peer, unsigned fam)
{
	pidx_job_start(r, p, fam);
	while (!pidx_job_step(r, p, peer, fam))
		;
}

static void pidx_add(struct rib *r, uint32_t peer, unsigned fam, rkey_t k, unsigned len)
{
	struct rib_peer *p = peer_get(r, peer);
	if (p->job[fam] && ++p->job[fam]->tick % PIDX_JOB_EVERY == 0)
		pidx_job_step(r, p, peer, fam);
	size_t n = p->n[fam], es = pidx_esize(fam);
	if (n == p->cap[fam]) {
		uint64_t live = rd_relaxed(p->live[fam]);
		if (p->job[fam]) {
			/* full again before the job is done: the rest at once */
			while (!pidx_job_step(r, p, peer, fam))
				;
			n = p->n[fam];
		} else if (n > 64 && n > 2 * live && !p->sweeping[fam]) {
			if (n >= PIDX_JOB_MIN) {
				pidx_job_start(r, p, fam);   /* and grow, below */
			} else {
				pidx_compact(r, p, peer, fam);
				n = p->n[fam];
			}
		}
		if (n == p->cap[fam]) {
			/* not realloc: jemalloc's copies the old block's usable
			 * size, slack never written included, and reading those
			 * fresh pages maps the zero page - each later write to
			 * one is a copy-on-write fault and a TLB shootdown IPI
			 * (2,200 of them in S2's ingest, "Stop 20") */
			size_t cap = n < 16 ? 16 : n + n / 2;
			void *ov = pidx_vec(p, fam), *nv = malloc(cap * es);
			if (!nv)
				log_fatal("rib: out of memory (peer index)");
			if (n)
				memcpy(nv, ov, n * es);
			free(ov);
			pidx_setvec(r, p, fam, nv, cap);
		}
	}
	if (fam == BGP_FAM_IPV4) {
		uint8_t *e = p->v4 + n * PK4_SIZE;
		uint32_t a = __builtin_bswap32((uint32_t)(k >> 96));
		memcpy(e, &a, 4);
		e[4] = (uint8_t)len;
	} else {
		p->v6[n].hi = (uint64_t)(k >> 64);
		p->v6[n].lo = (uint64_t)k;
		p->v6[n].len = (uint8_t)len;
	}
	p->n[fam] = n + 1;
	wr_relaxed(p->live[fam], rd_relaxed(p->live[fam]) + 1);
}

/*
 * The peer lost its last path on a prefix.  No compaction here: a compaction
 * costs a tree lookup per entry, and run from here (once the vector is twice
 * the live count) it would double the cost of withdrawing a whole table
 * prefix by prefix.  The vector is compacted when it must grow (pidx_add),
 * so it never holds more than about three times the peer's peak prefix
 * count, and freed outright when the peer's last prefix goes (may_free:
 * not while a sweep iterates over it).
 */
static void pidx_lost(struct rib *r, uint32_t peer, unsigned fam, bool may_free)
{
	struct rib_peer *p = peer_get(r, peer);
	uint64_t live = rd_relaxed(p->live[fam]);
	if (live == 0)
		log_fatal("rib: peer %u prefix count underflow", peer);
	wr_relaxed(p->live[fam], live - 1);
	if (may_free && live == 1 && !p->sweeping[fam]) {
		pidx_job_free(r, p, fam);
		free(pidx_vec(p, fam));
		pidx_setvec(r, p, fam, NULL, 0);
		p->n[fam] = 0;
	}
}

/* ---- path set edits (caller holds the stripe lock) ---------------------- */

enum edit_mode { EDIT_WITHDRAW_ONE, EDIT_WITHDRAW_ALL, EDIT_WITHDRAW_STALE, EDIT_MARK_STALE };

/* ---- direct index (IPv4; writer side: caller holds the stripe lock) ----- */

/* Longest proper ancestor of (k, len) that has paths, in the tree at root. */
static struct rib_node *tree_ancestor(struct rib_node *n, rkey_t k, unsigned len)
{
	struct rib_node *best = NULL;
	while (n && n->len < len) {
		if (kcpl(k, node_key(n)) < n->len)
			break;
		if (n->ps)
			best = n;
		n = n->ch[kbit(k, n->len)];
	}
	return best;
}

/* Does the subtree at n hold a prefix longer than /24 with paths? */
static bool tree_has_deep(const struct rib_node *n)
{
	if (!n)
		return false;
	if (n->len > 24 && n->ps)
		return true;
	return tree_has_deep(n->ch[0]) || tree_has_deep(n->ch[1]);
}

static void dir_set(uintptr_t *e, uintptr_t v)
{
	rib_pub(*e, v);
}

/* Entries of d that node n (with paths, len >= 16) decides once it appears. */
static void dir_appear(struct rib_dir *d, struct rib_node *n)
{
	unsigned len = n->len, i0 = (n->k4 >> 8) & 255;
	if (len > 24) {
		if (!(d->e[i0] & RIB_DEEP))
			dir_set(&d->e[i0], d->e[i0] | RIB_DEEP);
		return;
	}
	for (unsigned i = i0; i < i0 + (1u << (24 - len)); i++) {
		uintptr_t e = d->e[i];
		const struct rib_node *cur = (const struct rib_node *)(e & ~RIB_DEEP);
		if (!cur || cur->len < len)
			dir_set(&d->e[i], (uintptr_t)n | (e & RIB_DEEP));
	}
}

/* Pre-order (every covering prefix before what it covers) over a subtree. */
static void dir_fill(struct rib_dir *d, struct rib_node *n)
{
	for (; n; n = n->ch[1]) {
		if (n->ps)
			dir_appear(d, n);
		dir_fill(d, n->ch[0]);
	}
}

/*
 * Node n (IPv4) just gained its first path (appear) or lost its last one.
 * Rewrite the index entries it decides: every entry it covers whose current
 * prefix is shorter (appear), or that pointed at it (gone: they fall back to
 * its longest ancestor with paths).  A slot gets its /24 index once it holds
 * dir_min prefixes (built from its tree, then published); sparser slots
 * are searched in their small trees.
 */
static void dir_update(struct rib *r, struct rib_stripe *st, struct rib_node *n, bool appear)
{
	struct rib_fam *f = &r->f[BGP_FAM_IPV4];
	unsigned len = n->len;
	uint32_t a = n->k4;
	rkey_t k = node_key(n);
	if (len < 16) {
		struct rib_node *repl = appear ? n : tree_ancestor(f->shortroot, k, len);
		unsigned s0 = a >> 16, cnt = 1u << (16 - len);
		for (unsigned i = 0; i < cnt; i++) {
			struct rib_node *cur = f->sbest[s0 + i];
			if (appear ? (!cur || cur->len < len) : cur == n)
				rib_pub(f->sbest[s0 + i], repl);
		}
		return;
	}
	if (f->dir_min == RIB_LPM_INDEX_OFF)
		return;                  /* no /24 tables (the daemon): no count to keep */
	unsigned slot = a >> 16;
	f->dcount[slot] += appear ? 1 : -1;
	struct rib_dir *d = slot_dir_of((uintptr_t)f->slots[slot]);
	if (!d) {
		if (f->dcount[slot] < f->dir_min)
			return;
		/* built whole, then one release store swaps the slot word: the
		 * old word (the root itself) stays valid for readers holding it */
		d = xcalloc(1, sizeof(*d));
		wr_relaxed(st->node_bytes, st->node_bytes + (int64_t)sizeof(*d));
		wr_relaxed(st->dir_bytes, st->dir_bytes + (int64_t)sizeof(*d));
		f->droot[slot] = f->slots[slot];   /* published by the release store below */
		dir_fill(d, f->droot[slot]);
		rib_pub(f->slots[slot], (struct rib_node *)((uintptr_t)d | RIB_SLOT_DIR));
		return;
	}
	if (appear) {
		dir_appear(d, n);
		return;
	}
	unsigned i0 = (a >> 8) & 255;
	if (len > 24) {
		/* first node at or below the /24 on the way down */
		rkey_t k24 = k & kmask(24);
		struct rib_node *m = f->droot[slot];
		while (m && m->len < 24 && kcpl(k24, node_key(m)) >= m->len)
			m = m->ch[kbit(k24, m->len)];
		if (!(m && kcpl(k24, node_key(m)) >= 24 && tree_has_deep(m)))
			dir_set(&d->e[i0], d->e[i0] & ~RIB_DEEP);
		return;
	}
	uintptr_t repl = (uintptr_t)tree_ancestor(f->droot[slot], k, len);
	for (unsigned i = i0; i < i0 + (1u << (24 - len)); i++) {
		uintptr_t e = d->e[i];
		if ((const struct rib_node *)(e & ~RIB_DEEP) == n)
			dir_set(&d->e[i], repl | (e & RIB_DEEP));
	}
}

static void ps_publish(struct rib *r, struct rib_stripe *st, struct rib_node *n,
		       struct rib_pathset *old, struct rib_pathset *nw, struct attr_set *gone)
{
	rib_pub(n->ps, nw);
	if (n->fam == BGP_FAM_IPV4 && (old == NULL) != (nw == NULL))
		dir_update(r, st, n, nw != NULL);
	int64_t db = (nw ? (int64_t)ps_size(nw->n) : 0) - (old ? (int64_t)ps_size(old->n) : 0);
	int64_t dp = (nw ? nw->n : 0) - (old ? old->n : 0);
	int64_t dx = (nw != NULL) - (old != NULL);
	wr_relaxed(st->ps_bytes, st->ps_bytes + db);
	wr_relaxed(st->paths, st->paths + dp);
	wr_relaxed(st->prefixes, st->prefixes + dx);
	if (mp_changed(old, nw, r->jdepth))
		journal_mark(r, n);
	if (old || gone)
		defer_free(r, st, old, gone);
}

/*
 * Apply mode to peer's paths on n.  Returns the number of paths removed or
 * re-flagged; *peer_left tells whether peer still has a path there.
 */
static unsigned node_edit(struct rib *r, struct rib_stripe *st, struct rib_node *n, uint32_t peer,
			  enum edit_mode mode, uint32_t path_id, bool *peer_left)
{
	struct rib_pathset *old = n->ps;
	unsigned hit = 0, keep = 0;
	*peer_left = false;
	if (!old)
		return 0;
	for (unsigned i = 0; i < old->n; i++) {
		const struct rib_path *p = &old->p[i];
		bool m = false;
		if (p->peer == peer) {
			switch (mode) {
			case EDIT_WITHDRAW_ONE: m = p->path_id == path_id; break;
			case EDIT_WITHDRAW_ALL: m = true; break;
			case EDIT_WITHDRAW_STALE: m = (p->flags & RIB_PATH_F_STALE) != 0; break;
			case EDIT_MARK_STALE: m = !(p->flags & RIB_PATH_F_STALE); break;
			}
			if (!m || mode == EDIT_MARK_STALE)
				*peer_left = true;
		}
		hit += m;
	}
	if (!hit)
		return 0;
	keep = mode == EDIT_MARK_STALE ? old->n : old->n - hit;
	struct rib_pathset *nw = NULL;
	struct attr_set *gone = NULL;
	if (keep) {
		nw = xmalloc(ps_size(keep));
		unsigned j = 0, ridx = 0;
		for (unsigned i = 0; i < old->n; i++) {
			const struct rib_path *p = &old->p[i];
			if (p->peer != peer) {
				nw->p[j++] = *p;
				continue;
			}
			bool m = mode == EDIT_WITHDRAW_ONE ? p->path_id == path_id :
				 mode == EDIT_WITHDRAW_ALL ? true :
				 mode == EDIT_WITHDRAW_STALE ? (p->flags & RIB_PATH_F_STALE) != 0 :
				 !(p->flags & RIB_PATH_F_STALE);
			if (mode == EDIT_MARK_STALE) {
				nw->p[j] = *p;
				nw->p[j++].flags |= m ? RIB_PATH_F_STALE : 0;
			} else if (!m) {
				nw->p[j++] = *p;
			} else {
				ridx = i;
			}
		}
		bool io;
		unsigned mp;
		if (hit == 1 && mode != EDIT_MARK_STALE && old->in_order)
			mp = decide_remove(nw->p, keep, ridx, old->n_multipath, r->peers, &r->dopts, &io);
		else
			mp = decide_sort_io(nw->p, keep, r->peers, &r->dopts, &io);
		nw->n = (uint16_t)keep;
		nw->n_multipath = (uint16_t)mp;
		nw->in_order = io;
	}
	if (mode != EDIT_MARK_STALE) {
		/* one reference rides on the old set's reclaim entry, others alone */
		for (unsigned i = 0; i < old->n; i++) {
			const struct rib_path *p = &old->p[i];
			if (p->peer != peer)
				continue;
			bool m = mode == EDIT_WITHDRAW_ONE ? p->path_id == path_id :
				 mode == EDIT_WITHDRAW_ALL ? true : (p->flags & RIB_PATH_F_STALE) != 0;
			if (!m)
				continue;
			if (!gone)
				gone = p->attr;
			else
				defer_free(r, st, NULL, p->attr);
		}
	}
	ps_publish(r, st, n, old, nw, gone);
	return hit;
}

/* ---- public writers ----------------------------------------------------- */

static void check_prefix(const struct bgp_prefix *pfx)
{
	if (pfx->family >= BGP_FAM_COUNT || pfx->len > bgp_family_maxlen(pfx->family))
		log_fatal("rib: bad prefix family %u len %u", pfx->family, pfx->len);
}

static void check_peer(uint32_t peer)
{
	if (peer >= RIB_MAX_PEERS)
		log_fatal("rib: bad peer index %u", peer);
}

/*
 * The locked part of an update: insert or replace (peer, path_id) of (k, len)
 * on the tree at link.  When the new path needs an attribute reference it
 * counts one in *refs (the caller took it beforehand, so a published path
 * never holds a reference not yet taken), or takes it here if refs is NULL.
 * Returns 1 if a path was added.
 */
static int update_locked(struct rib *r, struct rib_stripe *st, unsigned fam, struct rib_node **link,
			 rkey_t k, unsigned len, uint32_t path_id, uint32_t peer,
			 struct attr_set *attr, uint32_t path_flags, unsigned *refs,
			 bool *peer_had_out)
{
	/* A prefix that already has paths (every update but a table's first
	 * announcement of it) is usually one direct-index load away (IPv4 <=
	 * /24; exact under our lock, see find_locked): fewer dependent misses
	 * than the descent from the slot's root. */
	struct rib_fam *f = &r->f[fam];
	struct rib_node *n = NULL;
	if (f->direct && len <= 24) {
		uint32_t a = (uint32_t)(k >> 96);
		n = dir_exact4(f, a, len);
		if (n && (n->len != len || n->k4 != a)) {
			/* a new prefix below a node with paths that covers it
			 * (len >= 16: the entry is in this slot's tree): the
			 * insert changes no link above that node ("covering
			 * start" above), so the descent starts there */
			if (len > n->len && len >= f->stride && cpl32(a, n->k4) >= n->len)
				link = &n->ch[kbit(k, n->len)];
			n = NULL;
		}
	} else if (f->direct && len >= f->stride) {
		uint32_t a = (uint32_t)(k >> 96);
		struct rib_node *c = dir_cover4(f, a);
		if (c && cpl32(a, c->k4) >= c->len)
			link = &c->ch[kbit(k, c->len)];
	}
	if (!n) {
		/* a node covering k's /20 from an earlier descent (DESCENT
		 * HINTS): "covering start" again, and the deepest such node
		 * this descent passes becomes the /20's entry */
		struct rib_node **he = NULL, *c = NULL, *deep = NULL;
		if (f->hint && len > RIB_HINT_LEN) {
			he = hint_at(f, k);
			deep = c = *he;
			if (c)
				link = &c->ch[kbit(k, c->len)];
		}
		n = tree_get(r, st, fam, link, k, len, &deep);
		if (he && deep != c) {
			if (!deep->hinted)
				deep->hinted = 1;
			rib_pub(*he, deep);
		}
	}
	struct rib_pathset *old = n->ps;
	int idx = -1;
	bool peer_had = false;
	unsigned on = old ? old->n : 0;
	for (unsigned i = 0; i < on; i++) {
		/* the decision reads these: start every miss now, not one by one */
		attr_prefetch_decision(old->p[i].attr);
		if (old->p[i].peer != peer)
			continue;
		peer_had = true;
		if (old->p[i].path_id == path_id)
			idx = (int)i;
	}
	*peer_had_out = peer_had;
	if (idx >= 0 && old->p[idx].attr == attr && old->p[idx].flags == path_flags)
		return 0;
	if (idx < 0 && on >= UINT16_MAX)
		log_fatal("rib: too many paths for one prefix");
	unsigned nn = on + (idx < 0);
	struct rib_pathset *nw = xmalloc(ps_size(nn));
	struct rib_path np = { .attr = attr, .peer = peer, .path_id = path_id,
			       .flags = path_flags, .dkey = decide_attr_key(attr) };
	struct attr_set *gone = NULL;
	if (idx < 0 || old->p[idx].attr != attr) {
		if (refs)
			(*refs)++;       /* the new path owns one of the caller's */
		else
			attr_ref(attr);
		if (idx >= 0)
			gone = old->p[idx].attr;
	}
	bool io;
	unsigned mp;
	int at;
	if (idx < 0 && on && old->in_order &&
	    (at = decide_place(old->p, on, old->n_multipath, &np, r->peers, &r->dopts, &mp, &io)) >= 0) {
		/* a new path where decide_insert would leave it, decided on the
		 * old set: the new one is written once and not read back */
		memcpy(nw->p, old->p, (unsigned)at * sizeof(struct rib_path));
		nw->p[at] = np;
		memcpy(nw->p + at + 1, old->p + at, (on - (unsigned)at) * sizeof(struct rib_path));
	} else if (on && old->in_order) {
		/* incremental: drop the replaced path, then insert the new one
		 * (what decide_sort would make of [the others..., new]) */
		unsigned m = on;
		mp = old->n_multipath;
		io = true;
		if (idx >= 0) {
			memcpy(nw->p, old->p, (unsigned)idx * sizeof(struct rib_path));
			memcpy(nw->p + idx, old->p + idx + 1, (on - (unsigned)idx - 1) * sizeof(struct rib_path));
			m = on - 1;
			mp = decide_remove(nw->p, m, (unsigned)idx, mp, r->peers, &r->dopts, &io);
		} else {
			memcpy(nw->p, old->p, on * sizeof(struct rib_path));
		}
		nw->p[m] = np;
		mp = io ? decide_insert(nw->p, nn, mp, r->peers, &r->dopts, &io)
			: decide_sort_io(nw->p, nn, r->peers, &r->dopts, &io);
	} else {
		if (on)
			memcpy(nw->p, old->p, on * sizeof(struct rib_path));
		nw->p[idx >= 0 ? (unsigned)idx : on] = np;
		mp = decide_sort_io(nw->p, nn, r->peers, &r->dopts, &io);
	}
	nw->n = (uint16_t)nn;
	nw->n_multipath = (uint16_t)mp;
	nw->in_order = io;
	ps_publish(r, st, n, old, nw, gone);
	return idx < 0;
}

int rib_update(struct rib *r, const struct bgp_prefix *pfx, uint32_t peer, struct attr_set *attr,
	       uint32_t path_flags)
{
	check_prefix(pfx);
	check_peer(peer);
	if (!attr)
		log_fatal("rib: update without attributes");
	unsigned fam = pfx->family, len = pfx->len;
	struct rib_fam *f = &r->f[fam];
	rkey_t k = key_from_addr(fam, pfx->addr) & kmask(len);
	struct rib_stripe *st = stripe_of(f, k, len);
	bool peer_had;

	__builtin_prefetch(attr, 1);     /* its refcount is taken below */
	attr_prefetch_decision(attr);    /* and the decision reads these */
	stripe_lock(&st->lk);
	int added = update_locked(r, st, fam, root_link(f, k, len), k, len, pfx->path_id, peer,
				  attr, path_flags, NULL, &peer_had);
	stripe_unlock(&st->lk);
	if (!peer_had)
		pidx_add(r, peer, fam, k, len);
	return added;
}

/* Batched writers keep one stripe lock across a run of prefixes in the same
 * stripe: hold st's, letting go of *held first if it is another one. */
static inline void stripe_hold(struct rib_stripe **held, struct rib_stripe *st)
{
	if (st == *held)
		return;
	if (*held)
		stripe_unlock(&(*held)->lk);
	stripe_lock(&st->lk);
	*held = st;
}

/*
 * Cache warming for a group of up to RIB_WARM_GROUP prefixes: the loads a
 * locked find of each will make, started for the whole group before any of
 * them is waited on (a descent is all cache misses; one at a time, a big
 * table costs a miss per level per prefix, in sequence).  Lane j descends
 * towards (k[j], len[j]) in lockstep with the others.  With use_dir (what an
 * update reads: update_locked), an IPv4 prefix <= /24 first tries its direct
 * index entry, which is the node itself when the prefix has paths, and
 * descends only when it is not; the attribute sets of the node's paths (what
 * the decision reads) are warmed too.  Reader rules: rcu_read_lock held, no
 * lock, nothing written; a pure hint, the locked pass re-reads everything.
 */
/* 32, not 16 (Stop 13, S2 ingest): the daemon's RIB has no /24 tables, so
 * a new prefix's warm pass is a full descent of ~8-10 dependent misses in
 * a 5 M-route table; twice the lanes overlap twice the misses per level
 * (if the core keeps that many in flight) and a group's lines (~32 x 10)
 * still fit the L1/L2 until its locked pass reads them.  (RIB_WARM_GROUP is
 * defined with the other sizes at the top: the peer index's compaction
 * warms its groups too.) */
static void tree_warm(struct rib *r, const uint8_t *fam, const rkey_t *k, const uint8_t *len,
		      unsigned g, bool use_dir)
{
	struct rib_node *cur[RIB_WARM_GROUP];
	const uintptr_t *ent[RIB_WARM_GROUP];
	struct rib_pathset *pss[RIB_WARM_GROUP];
	for (unsigned j = 0; j < g; j++) {
		struct rib_fam *f = &r->f[fam[j]];
		__builtin_prefetch(len[j] >= f->stride ? (void *)&f->slots[key_slot(f, k[j])]
						       : (void *)&f->shortroot);
		if (use_dir && f->hint && len[j] > RIB_HINT_LEN)
			__builtin_prefetch(hint_at(f, k[j]));
	}
	for (unsigned j = 0; j < g; j++) {
		struct rib_fam *f = &r->f[fam[j]];
		ent[j] = NULL;
		cur[j] = NULL;
		pss[j] = NULL;
		if (use_dir && f->hint && len[j] > RIB_HINT_LEN) {
			/* update_locked's start (an entry is never longer than
			 * such a prefix).  A shorter prefix descends from the
			 * root here: its entry may be longer than it, and the
			 * root's descent passes any entry that is not */
			cur[j] = rib_deref(*hint_at(f, k[j]));
			if (cur[j]) {
				__builtin_prefetch(cur[j]);
				continue;
			}
		}
		if (f->direct && len[j] >= f->stride) {
			const struct rib_dir *d = slot_dir_of((uintptr_t)rib_deref(f->slots[key_slot(f, k[j])]));
			if (d) {
				/* the entry is also what a path appearing or going rewrites */
				const uintptr_t *e = &d->e[(uint32_t)(k[j] >> 104) & 255];
				__builtin_prefetch(e);
				if (use_dir) {
					ent[j] = e;
					continue;
				}
			}
		}
		cur[j] = root_get(f, k[j], len[j]);
		if (cur[j])
			__builtin_prefetch(cur[j]);
	}
	for (unsigned j = 0; j < g; j++) {
		if (!ent[j])
			continue;
		cur[j] = (struct rib_node *)(rib_deref(*ent[j]) & ~RIB_DEEP);
		if (!cur[j]) {
			/* no prefix with paths covers the /24: from the root */
			ent[j] = NULL;
			cur[j] = root_get(&r->f[fam[j]], k[j], len[j]);
		}
		if (cur[j])
			__builtin_prefetch(cur[j]);
	}
	for (unsigned round = 0; round < 130; round++) {
		bool more = false;
		for (unsigned j = 0; j < g; j++) {
			struct rib_node *n = cur[j];
			if (!n)
				continue;
			if (ent[j] && (n->len != len[j] || node_key(n) != k[j])) {
				ent[j] = NULL;
				if (n->len >= len[j] || kcpl(k[j], node_key(n)) < n->len) {
					/* the entry decides a longer or other prefix:
					 * descend from the root */
					cur[j] = root_get(&r->f[fam[j]], k[j], len[j]);
					if (cur[j]) {
						__builtin_prefetch(cur[j]);
						more = true;
					}
					continue;
				}
				/* it covers the prefix: descend from it, as the
				 * locked pass will (update_locked) */
			}
			if (ent[j] || n->len >= len[j] || kcpl(k[j], node_key(n)) < n->len) {
				struct rib_pathset *ps = rib_deref(n->ps);
				if (ps)
					__builtin_prefetch(ps);
				if (use_dir && n->len == len[j] && node_key(n) == k[j]) {
					pss[j] = ps;
					struct rib_fam *f = &r->f[fam[j]];
					if (n->glue && f->hint && n->len >= f->stride &&
					    n->len <= RIB_HINT_LEN) {
						/* glue_fill will look for it among the
						 * entries of its /20s (hint_unlink): 16
						 * for a /16 (two lines), 8 or fewer
						 * (one) for a longer node */
						__builtin_prefetch(hint_at(f, k[j]));
						if (n->len < RIB_HINT_LEN - 3)
							__builtin_prefetch(hint_at(f, k[j]) + 8);
					}
				}
				cur[j] = NULL;
				continue;
			}
			cur[j] = rib_deref(n->ch[kbit(k[j], n->len)]);
			if (cur[j]) {
				__builtin_prefetch(cur[j]);
				more = true;
			}
		}
		if (!more)
			break;
	}
	for (unsigned j = 0; j < g; j++) {
		const struct rib_pathset *ps = pss[j];
		unsigned m = ps ? ps->n : 0;
		for (unsigned i = 0; i < m && i < 16; i++)
			attr_prefetch_decision(ps->p[i].attr);
	}
}

/*
 * Check the next group of up to RIB_WARM_GROUP prefixes (n are left), fill
 * their families, keys and lengths, and warm their tree descents together
 * (tree_warm) so the cache misses overlap.  Returns the group's size.
 */
static unsigned warm_group(struct rib *r, const struct bgp_prefix *pfx, size_t n,
			   uint8_t *fam, rkey_t *k, uint8_t *len, bool update)
{
	unsigned g = n < RIB_WARM_GROUP ? (unsigned)n : RIB_WARM_GROUP;
	for (unsigned j = 0; j < g; j++) {
		const struct bgp_prefix *p = &pfx[j];
		check_prefix(p);
		fam[j] = p->family;
		len[j] = p->len;
		k[j] = key_from_addr(p->family, p->addr) & kmask(p->len);
	}
	rcu_read_lock();
	tree_warm(r, fam, k, len, g, update);
	rcu_read_unlock();
	return g;
}

/*
 * The batched writers' one loop.  Prefix i's set is attr[i * astride]:
 * astride 0 is one UPDATE's prefixes (one set for all), 1 the announcements
 * of several UPDATEs (a set per prefix; consecutive prefixes of one UPDATE
 * share theirs).  One reference add and one surplus drop per run of the same
 * set; one lock taken per run of prefixes in the same stripe; the tree paths
 * of each group of RIB_WARM_GROUP prefixes warmed together before they are
 * worked on, so the descents of a group span UPDATE boundaries - a bulk
 * load's UPDATEs carry a few prefixes each, and a group as large as
 * RIB_WARM_GROUP overlaps that many cache misses per level.
 */
static unsigned update_runs(struct rib *r, const struct bgp_prefix *pfx, struct attr_set *const *attr,
			    size_t astride, size_t n, uint32_t peer, uint32_t path_flags, uint8_t *added)
{
	check_peer(peer);
	if (n > UINT32_MAX / 2)
		log_fatal("rib: batch of %zu prefixes", n);
	unsigned total = 0;
	struct rib_stripe *held = NULL;
	size_t run_start = 0, run_end = 0;
	unsigned refs = 0;
	for (size_t i = 0; i < n; i++) {
		const struct bgp_prefix *p = &pfx[i];
		struct attr_set *a = attr[i * astride];
		if (i % RIB_WARM_GROUP == 0) {
			/* a group's warming waits on cache misses: not with a
			 * stripe held, that another writer may want */
			if (held) {
				stripe_unlock(&held->lk);
				held = NULL;
			}
			/* the group's sets (their refcounts are taken below) and
			 * descents, the misses overlapped; a run's reference add
			 * then finds its line on the way */
			rkey_t wk[RIB_WARM_GROUP];
			uint8_t wf[RIB_WARM_GROUP], wl[RIB_WARM_GROUP];
			for (size_t j = i; j < n && j < i + RIB_WARM_GROUP; j++)
				if (j == i || attr[j * astride] != attr[(j - 1) * astride]) {
					__builtin_prefetch(attr[j * astride], 1);
					attr_prefetch_decision(attr[j * astride]);
				}
			warm_group(r, pfx + i, n - i, wf, wk, wl, true);
		}
		if (i == run_end) {
			if (!a)
				log_fatal("rib: update without attributes");
			run_start = i;
			while (run_end < n && attr[run_end * astride] == a)
				run_end++;
			/* before any path of the run is published */
			attr_ref_n(a, (uint32_t)(run_end - i));
			refs = 0;
		}
		unsigned fam = p->family, len = p->len;
		struct rib_fam *f = &r->f[fam];
		rkey_t k = key_from_addr(fam, p->addr) & kmask(len);
		struct rib_stripe *st = stripe_of(f, k, len);
		stripe_hold(&held, st);
		bool peer_had;
		int ad = update_locked(r, st, fam, root_link(f, k, len), k, len, p->path_id, peer, a,
				       path_flags, &refs, &peer_had);
		total += (unsigned)ad;
		if (added)
			added[i] = (uint8_t)ad;
		if (!peer_had)
			pidx_add(r, peer, fam, k, len);   /* the peer thread's own; takes no lock */
		if (i + 1 == run_end && refs < run_end - run_start)
			/* the run's surplus (the caller's own reference keeps a alive) */
			attr_unref_n(r->attrs, a, (uint32_t)(run_end - run_start - refs));
	}
	if (held)
		stripe_unlock(&held->lk);
	return total;
}

unsigned rib_update_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, uint32_t peer,
			  struct attr_set *attr, uint32_t path_flags, uint8_t *added)
{
	if (!attr)
		log_fatal("rib: update without attributes");
	return update_runs(r, pfx, &attr, 0, n, peer, path_flags, added);
}

unsigned rib_update_multi(struct rib *r, const struct bgp_prefix *pfx, struct attr_set *const *attr,
			  size_t n, uint32_t peer, uint32_t path_flags, uint8_t *added)
{
	return update_runs(r, pfx, attr, 1, n, peer, path_flags, added);
}

/*
 * Writer-side exact find (the stripe lock of (k, len) held): an IPv4 prefix
 * of length <= 24 that has paths is usually what the direct index entry of
 * its first /24 (or, below /16, its slot) points at - entries change only
 * under this same lock, so the answer is exact - otherwise descend.
 */
static struct rib_node *find_locked(struct rib_fam *f, rkey_t k, unsigned len)
{
	if (f->direct && len <= 24) {
		uint32_t a = (uint32_t)(k >> 96);
		struct rib_node *n = dir_exact4(f, a, len);
		if (n && n->len == len && n->k4 == a)
			return n;
	}
	return tree_lookup(*root_link(f, k, len), k, len);
}

/* The stripe lock of (k, len) held.  A node left without paths is almost
 * always in the journal (losing the last path changes the best), so it is
 * unlinked when the journal releases it; only when it is not is the path
 * from the root recorded and the node pruned here. */
static unsigned withdraw_held(struct rib *r, struct rib_fam *f, struct rib_stripe *st, rkey_t k,
			      unsigned len, uint32_t peer, enum edit_mode mode, uint32_t path_id,
			      bool *peer_had, bool *peer_left)
{
	*peer_had = *peer_left = false;
	struct rib_node *n = find_locked(f, k, len);
	if (!n)
		return 0;
	*peer_had = node_has_peer(n, peer);
	unsigned hit = node_edit(r, st, n, peer, mode, path_id, peer_left);
	if (hit && !n->ps && node_prunable(n)) {
		struct rib_node **links[130];
		unsigned d = tree_find_links(root_link(f, k, len), k, len, links);
		if (d && *links[d - 1] == n)
			tree_prune(r, st, links, d);
	}
	return hit;
}

static unsigned withdraw_locked(struct rib *r, struct rib_fam *f, rkey_t k, unsigned len,
				uint32_t peer, enum edit_mode mode, uint32_t path_id,
				bool *peer_had, bool *peer_left)
{
	struct rib_stripe *st = stripe_of(f, k, len);
	stripe_lock(&st->lk);
	unsigned hit = withdraw_held(r, f, st, k, len, peer, mode, path_id, peer_had, peer_left);
	stripe_unlock(&st->lk);
	return hit;
}

int rib_withdraw(struct rib *r, const struct bgp_prefix *pfx, uint32_t peer)
{
	check_prefix(pfx);
	check_peer(peer);
	unsigned fam = pfx->family, len = pfx->len;
	rkey_t k = key_from_addr(fam, pfx->addr) & kmask(len);
	bool had, left;
	unsigned hit = withdraw_locked(r, &r->f[fam], k, len, peer, EDIT_WITHDRAW_ONE,
				       pfx->path_id, &had, &left);
	if (hit && !left)
		pidx_lost(r, peer, fam, true);
	return hit != 0;
}

unsigned rib_withdraw_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, uint32_t peer,
			    uint8_t *hit)
{
	check_peer(peer);
	unsigned total = 0;
	struct rib_stripe *held = NULL;
	for (size_t base = 0; base < n; base += RIB_WARM_GROUP) {
		rkey_t k[RIB_WARM_GROUP];
		uint8_t fam[RIB_WARM_GROUP], len[RIB_WARM_GROUP];
		/* the whole path, not only the node: losing its last path
		 * makes a node's direct-index entries fall back to its longest
		 * ancestor with paths, found by a descent (dir_update); not
		 * with a stripe held */
		if (held) {
			stripe_unlock(&held->lk);
			held = NULL;
		}
		unsigned g = warm_group(r, pfx + base, n - base, fam, k, len, false);
		for (unsigned j = 0; j < g; j++) {
			struct rib_fam *f = &r->f[fam[j]];
			struct rib_stripe *st = stripe_of(f, k[j], len[j]);
			stripe_hold(&held, st);
			bool had, left;
			unsigned h = withdraw_held(r, f, st, k[j], len[j], peer, EDIT_WITHDRAW_ONE,
						   pfx[base + j].path_id, &had, &left);
			if (h && !left)
				pidx_lost(r, peer, fam[j], true);   /* the peer thread's own; no lock */
			total += h;
			if (hit)
				hit[base + j] = (uint8_t)(h != 0);
		}
	}
	if (held)
		stripe_unlock(&held->lk);
	return total;
}

/*
 * rib_journal_release for a whole batch.  Per group: drop the references,
 * keep the nodes that are now empty and unreferenced (candidates to unlink,
 * which takes the path from the root), warm those paths together, then
 * prune each under its stripe lock, held across runs of the same stripe.
 * As in rib_journal_release, a candidate may meanwhile have been refilled,
 * re-queued or unlinked by a writer: tree_prune re-checks under the lock,
 * and the node is only matched by identity; the read-side section keeps it
 * allocated while we look.
 */
void rib_journal_release_n(struct rib *r, struct rib_node *const *nodes, size_t n)
{
	for (size_t base = 0; base < n; base += RIB_WARM_GROUP) {
		unsigned g = n - base < RIB_WARM_GROUP ? (unsigned)(n - base) : RIB_WARM_GROUP, nd = 0;
		struct rib_node *dead[RIB_WARM_GROUP];
		rkey_t k[RIB_WARM_GROUP];
		uint8_t fam[RIB_WARM_GROUP], len[RIB_WARM_GROUP];
		rcu_read_lock();     /* a node may be pruned by a writer once jrefs hits 0 */
		for (size_t j = base + RIB_WARM_GROUP; j < n && j < base + 2 * RIB_WARM_GROUP; j++)
			__builtin_prefetch(nodes[j], 1);
		for (unsigned j = 0; j < g; j++) {
			struct rib_node *x = nodes[base + j];
			uint32_t old = __atomic_fetch_sub(&x->jstate, 1, __ATOMIC_ACQ_REL);
			if (!(old & RIB_JREFS))
				log_fatal("rib: journal release of a node not held");
			unsigned left = (old - 1) & RIB_JREFS;
			if (left == 0 && rib_deref(x->ps) == NULL) {
				dead[nd] = x;
				fam[nd] = x->fam;
				len[nd] = x->len;
				k[nd] = node_key(x);
				nd++;
			}
		}
		if (nd) {
			tree_warm(r, fam, k, len, nd, false);
			struct rib_stripe *held = NULL;
			for (unsigned j = 0; j < nd; j++) {
				struct rib_fam *f = &r->f[fam[j]];
				struct rib_stripe *st = stripe_of(f, k[j], len[j]);
				stripe_hold(&held, st);
				struct rib_node **links[130];
				unsigned d = tree_find_links(root_link(f, k[j], len[j]), k[j], len[j], links);
				if (d && *links[d - 1] == dead[j])
					tree_prune(r, st, links, d);
			}
			stripe_unlock(&held->lk);
		}
		rcu_read_unlock();
	}
}

/*
 * Sweeps (rib_sweep_*): a cursor over the peer's index of one family.  Each
 * step takes up to max entries in groups of RIB_WARM_GROUP, warms their tree
 * paths together and edits them under one stripe lock per run of the same
 * stripe, as rib_withdraw_batch does.  While a sweep is open the index only
 * grows (pidx_add does not compact, pidx_lost does not free), so the cursor
 * stays valid across steps; the vector is freed when the last open sweep of
 * the family ends with no prefix left.
 *
 * A sweep that is the only one open also compacts the index as it goes: an
 * entry whose prefix still has a path of the peer after the edit moves down
 * to s->keep (<= the cursor, so nothing unread is overwritten), the others
 * are dropped, and at the end the index is the kept entries.  Compacting
 * afterwards instead (pidx_compact: a sort and a tree lookup per entry) took
 * 70 ms in one go for the 600,000 entries of a table of which End-of-RIB
 * kept 1,000 - one step of the I/O thread holding every other session
 * (tests/integration/test_sweep.py).  A sweep begun while another is open
 * stops the older one's compaction (sweep_gen): the newer cursor starts at 0
 * and must meet every live entry, which are then all in [0, keep) or at or
 * after the older cursor - the entries between are copies or dead ones,
 * harmless to visit again.  Such overlapping sweeps fall back to
 * pidx_compact at the end.
 */
static enum edit_mode sweep_edit_mode(uint8_t mode)
{
	switch (mode) {
	case RIB_SWEEP_WITHDRAW: return EDIT_WITHDRAW_ALL;
	case RIB_SWEEP_WITHDRAW_STALE: return EDIT_WITHDRAW_STALE;
	case RIB_SWEEP_MARK_STALE: return EDIT_MARK_STALE;
	}
	log_fatal("rib: bad sweep mode %u", mode);
}

void rib_sweep_begin(struct rib *r, struct rib_sweep *s, uint32_t peer, unsigned fam,
		     enum rib_sweep_mode mode)
{
	check_peer(peer);
	if (fam >= BGP_FAM_COUNT)
		log_fatal("rib: sweep of bad family %u", fam);
	(void)sweep_edit_mode((uint8_t)mode);
	memset(s, 0, sizeof(*s));
	s->peer = peer;
	s->fam = (uint8_t)fam;
	s->mode = (uint8_t)mode;
	struct rib_peer *p = rib_deref(r->peer[peer]);
	if (!p) {
		s->done = true;
		return;
	}
	if (p->sweeping[fam] == UINT16_MAX)
		log_fatal("rib: too many open sweeps of peer %u", peer);
	pidx_job_free(r, p, fam);        /* a sweep's cursor needs positions that stay */
	s->compact = p->sweeping[fam] == 0;
	s->gen = ++p->sweep_gen[fam];
	p->sweeping[fam]++;
}

static void sweep_end(struct rib *r, struct rib_sweep *s, struct rib_peer *p)
{
	unsigned fam = s->fam;
	s->done = true;
	if (p->sweeping[fam] == 0)
		log_fatal("rib: sweep of peer %u ended twice", s->peer);
	if (--p->sweeping[fam])
		return;
	uint64_t live = rd_relaxed(p->live[fam]);
	if (s->mode == RIB_SWEEP_WITHDRAW || live == 0) {
		if (live != 0)
			log_fatal("rib: peer %u index lost prefixes", s->peer);
		free(pidx_vec(p, fam));
		pidx_setvec(r, p, fam, NULL, 0);
		p->n[fam] = 0;
	} else if (s->compact && s->gen == p->sweep_gen[fam]) {
		if (s->keep < live)
			log_fatal("rib: peer %u index lost prefixes (%zu kept, %" PRIu64 " live)", s->peer,
				  s->keep, live);
		p->n[fam] = s->keep;
		size_t cap = s->keep + s->keep / 4 + 16;
		if (cap < p->cap[fam] / 2) {
			void *nv = realloc(pidx_vec(p, fam), cap * pidx_esize(fam));
			if (!nv)
				log_fatal("rib: out of memory (peer index)");
			pidx_setvec(r, p, fam, nv, cap);
		}
	} else if (s->mode != RIB_SWEEP_MARK_STALE && p->n[fam] > 2 * live) {
		pidx_compact(r, p, s->peer, fam);
	}
}

uint64_t rib_sweep_step(struct rib *r, struct rib_sweep *s, size_t max)
{
	if (s->done)
		return 0;
	struct rib_peer *p = rib_deref(r->peer[s->peer]);
	unsigned fam = s->fam;
	struct rib_fam *f = &r->f[fam];
	enum edit_mode mode = sweep_edit_mode(s->mode);
	size_t end = p->n[fam], stop = end - s->pos > max ? s->pos + max : end;
	uint64_t hits = 0;
	struct rib_stripe *held = NULL;
	if (s->compact && s->gen != p->sweep_gen[fam])
		s->compact = false;      /* a newer sweep is open: leave the order alone */
	size_t es = pidx_esize(fam);
	uint8_t *vec = pidx_vec(p, fam);
	rib_jbulk = true;                /* this step's changes go to the bulk lane */
	while (s->pos < stop) {
		unsigned g = stop - s->pos < RIB_WARM_GROUP ? (unsigned)(stop - s->pos) : RIB_WARM_GROUP;
		rkey_t k[RIB_WARM_GROUP];
		uint8_t fm[RIB_WARM_GROUP], len[RIB_WARM_GROUP];
		pidx_group(fam, vec + s->pos * es, g, fm, k, len);
		if (held) {           /* not warming with a stripe held */
			stripe_unlock(&held->lk);
			held = NULL;
		}
		rcu_read_lock();
		tree_warm(r, fm, k, len, g, false);
		rcu_read_unlock();
		for (unsigned j = 0; j < g; j++) {
			struct rib_stripe *st = stripe_of(f, k[j], len[j]);
			stripe_hold(&held, st);
			bool had, left;
			unsigned hit = withdraw_held(r, f, st, k[j], len[j], s->peer, mode, 0, &had, &left);
			hits += hit;
			if (hit && had && !left)
				pidx_lost(r, s->peer, fam, false);
			if (s->compact && left) {
				if (s->keep != s->pos + j)
					memcpy(vec + s->keep * es, vec + (s->pos + j) * es, es);
				s->keep++;
			}
		}
		s->pos += g;
	}
	if (held)
		stripe_unlock(&held->lk);
	rib_jbulk = false;
	s->hits += hits;
	if (s->pos >= p->n[fam])
		sweep_end(r, s, p);
	return hits;
}

static uint64_t peer_sweep(struct rib *r, uint32_t peer, unsigned fam, enum rib_sweep_mode mode)
{
	struct rib_sweep s;
	rib_sweep_begin(r, &s, peer, fam, mode);
	while (!s.done)
		rib_sweep_step(r, &s, SIZE_MAX);
	return s.hits;
}

uint64_t rib_withdraw_peer(struct rib *r, uint32_t peer, unsigned fam, bool only_stale)
{
	check_peer(peer);
	uint64_t t = 0;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (fam == BGP_FAM_COUNT || fam == f)
			t += peer_sweep(r, peer, f, only_stale ? RIB_SWEEP_WITHDRAW_STALE : RIB_SWEEP_WITHDRAW);
	return t;
}

uint64_t rib_mark_peer_stale(struct rib *r, uint32_t peer, unsigned fam)
{
	check_peer(peer);
	uint64_t t = 0;
	for (unsigned f = 0; f < BGP_FAM_COUNT; f++)
		if (fam == BGP_FAM_COUNT || fam == f)
			t += peer_sweep(r, peer, f, RIB_SWEEP_MARK_STALE);
	return t;
}

/* ---- readers ------------------------------------------------------------ */

static struct rib_node *tree_lookup(struct rib_node *n, rkey_t k, unsigned len)
{
	while (n && n->len <= len) {
		if (kcpl(k, node_key(n)) < n->len)
			return NULL;
		if (n->len == len)
			return n;
		n = rib_deref(n->ch[kbit(k, n->len)]);
	}
	return NULL;
}

/* The index's candidate for an exact IPv4 lookup of (a, len <= 24): the
 * node deciding the prefix's first /24 (or, below /16, its first slot). */
static inline struct rib_node *dir_exact4(struct rib_fam *f, uint32_t a, unsigned len)
{
	unsigned slot = a >> 16;
	if (len < 16)
		return rib_deref(f->sbest[slot]);
	const struct rib_dir *d = slot_dir_of((uintptr_t)rib_deref(f->slots[slot]));
	return d ? (struct rib_node *)(rib_deref(d->e[(a >> 8) & 255]) & ~RIB_DEEP) : NULL;
}

/* For an IPv4 /25../32 inside <a>/24 of a slot with an index: the node of
 * the longest prefix /16../24 with paths covering that /24, or NULL. */
static inline struct rib_node *dir_cover4(struct rib_fam *f, uint32_t a)
{
	const struct rib_dir *d = slot_dir_of((uintptr_t)rib_deref(f->slots[a >> 16]));
	return d ? (struct rib_node *)(rib_deref(d->e[(a >> 8) & 255]) & ~RIB_DEEP) : NULL;
}

/* rib_lookup's first try, IPv4 /0../24: the node the index points at, if it
 * is the prefix (with paths); NULL sends the lookup down the tree. */
static inline struct rib_node *lookup_hint(struct rib_fam *f, rkey_t k, unsigned len)
{
	if (!f->direct || len > 24)
		return NULL;
	uint32_t a = (uint32_t)(k >> 96);
	struct rib_node *n = dir_exact4(f, a, len);
	return n && n->len == len && n->k4 == a && rib_deref(n->ps) ? n : NULL;
}

/* rib_lookup of the masked key k: usually the index points right at it;
 * otherwise walk the tree */
static struct rib_node *lookup_one(struct rib_fam *f, rkey_t k, unsigned len)
{
	struct rib_node *n = lookup_hint(f, k, len);
	if (n)
		return n;
	n = tree_lookup(root_get(f, k, len), k, len);
	return n && rib_deref(n->ps) ? n : NULL;
}

struct rib_node *rib_lookup(struct rib *r, const struct bgp_prefix *pfx)
{
	if (pfx->family >= BGP_FAM_COUNT || pfx->len > bgp_family_maxlen(pfx->family))
		return NULL;
	struct rib_fam *f = &r->f[pfx->family];
	return lookup_one(f, key_from_addr(pfx->family, pfx->addr) & kmask(pfx->len), pfx->len);
}

static struct rib_node *tree_lpm(struct rib_node *n, rkey_t k, unsigned maxlen)
{
	struct rib_node *best = NULL;
	while (n) {
		if (kcpl(k, node_key(n)) < n->len)
			break;
		if (rib_deref(n->ps))
			best = n;
		if (n->len >= maxlen)
			break;
		n = rib_deref(n->ch[kbit(k, n->len)]);
	}
	return best;
}

static struct rib_node *lpm_tree(struct rib_fam *f, rkey_t k)
{
	struct rib_node *n = tree_lpm(slot_root(f, key_slot(f, k)), k, f->maxlen);
	return n ? n : tree_lpm(rib_deref(f->shortroot), k, f->maxlen);
}

/*
 * IPv4 through the direct index: the slot's /24 entry, else the slot's
 * short-prefix entry.  An entry whose node lost its paths meanwhile, or one
 * marked RIB_DEEP, sends the lookup down the trees instead.
 */
static inline struct rib_node *lpm_dir4(struct rib_fam *f, uint32_t a, uintptr_t slotword)
{
	const struct rib_dir *d = slot_dir_of(slotword);
	struct rib_node *n;
	if (d) {
		uintptr_t e = rib_deref(d->e[(a >> 8) & 255]);
		n = (struct rib_node *)e;
		if (e & RIB_DEEP)
			return lpm_tree(f, (rkey_t)a << 96);
		if (n)
			return rib_deref(n->ps) ? n : lpm_tree(f, (rkey_t)a << 96);
	} else {
		/* a sparse slot (no index): its own small tree first */
		n = tree_lpm((struct rib_node *)slotword, (rkey_t)a << 96, 32);
		if (n)
			return n;
	}
	n = rib_deref(f->sbest[a >> 16]);
	if (n && !rib_deref(n->ps))
		return lpm_tree(f, (rkey_t)a << 96);
	return n;
}

struct rib_node *rib_lookup_lpm(struct rib *r, unsigned fam, const uint8_t *addr)
{
	if (fam >= BGP_FAM_COUNT)
		return NULL;
	struct rib_fam *f = &r->f[fam];
	if (f->direct) {
		uint32_t a = be32_load(addr);
		return lpm_dir4(f, a, (uintptr_t)rib_deref(f->slots[a >> 16]));
	}
	return lpm_tree(f, key_from_addr(fam, addr));
}

/* ---- batched lookups ------------------------------------------------------
 *
 * rib_lookup_batch and rib_lookup_lpm_batch take a group of RIB_LK_GROUP
 * queries through the loads of the usual IPv4 path in stages - each stage
 * loads what the previous one prefetched and prefetches what the next one
 * will need: the slot word (or the short-prefix entry), then the /24 entry
 * or the slot's tree root, then the indexed node - so the misses of the
 * group overlap instead of following one another.  The answer is then
 * computed on warm lines by the single call's own code: lpm_dir4 for a
 * longest match, lookup_hint for an exact one; an exact lookup the index
 * does not answer (short prefixes whose hint is a longer one, /25../32, a
 * longer prefix in the /24, sparse slots, IPv6) goes to a tree walk that
 * takes the steps of tree_lookup from root_get's root, interleaved with the
 * other walks of the batch (lk_walks).  The stages are short and nearly
 * branch-free: on a table that fits in the caches they are overhead, and a
 * state machine per lookup advanced one load at a time (tried) cost more in
 * mispredicted branches than it saved in misses below a million prefixes.
 *
 * Readers' safety.  The stages only compute addresses to prefetch; every
 * value they load under the caller's read-side section (with the acquire
 * loads the single call uses) points at memory that is not freed before the
 * section ends (argument 3 at the top of this file, and the direct index's
 * rule for its entries); a stale one at worst warms a line for nothing, and
 * a prefetch never faults.  Each answer is then reached by the same acquire
 * loads, in the same order and with the same decisions, as the single call:
 * the walk of each lookup is a path through some valid tree (argument 2),
 * only interleaved with the loads of the batch's other lookups.  So every lookup of a batch gives an
 * answer the single call could have given during the caller's section.
 */
#ifndef RIB_LK_GROUP
#define RIB_LK_GROUP 64
#endif

static inline void lk_prefetch_node(const struct rib_node *n, unsigned fam)
{
	/* what a lookup reads of it (an IPv4 node's first 32 bytes, an IPv6
	 * node's 64) may straddle two lines: nodes are 16-byte aligned */
	__builtin_prefetch(n);
	__builtin_prefetch((const char *)n + (fam == BGP_FAM_IPV4 ? RIB_GLUE4_SIZE :
					      sizeof(struct rib_node6)) - 1);
}

/*
 * The lookups that the index does not answer walk their trees together:
 * each round takes every walk one node further (tree_lookup's step) and
 * prefetches the node it will read next round, so a batch's descents of the
 * short-prefix tree (/0../15, deep when dense), of /25../32 and of sparse
 * slots overlap.  Up to RIB_LK_WALKS at once, collected over groups.
 */
#define RIB_LK_WALKS 64
struct lk_walk {
	rkey_t k;
	struct rib_node *n;
	size_t i;                        /* query index */
	uint8_t len, fam;
};

/* Advance the nw walks in wk (each at a node of its tree, prefetched),
 * answers into out, until no more than `keep` are left (a whole round at a
 * time).  Returns how many are left, still in wk.  The batch calls keep half
 * of them going while the next group is staged, so that the walks in flight
 * stay many: draining every walk before refilling left the last rounds of
 * each batch with a few walks, i.e. few misses overlapping. */
static unsigned lk_walks(struct lk_walk *wk, unsigned nw, struct rib_node **out, unsigned keep)
{
	while (nw > keep) {
		for (unsigned j = 0; j < nw;) {
			struct lk_walk *w = &wk[j];
			struct rib_node *n = w->n;
			if (w->fam == BGP_FAM_IPV4) {
				/* the same step on the 32-bit key: fewer instructions
				 * per node, which is what a batch's walks cost once
				 * their misses overlap */
				uint32_t a = (uint32_t)(w->k >> 96);
				if (n && n->len < w->len && cpl32(a, n->k4) >= n->len) {
					n = rib_deref(n->ch[(a >> (31 - n->len)) & 1]);
					w->n = n;
					if (n)
						lk_prefetch_node(n, BGP_FAM_IPV4);
					j++;
					continue;
				}
				if (n && (n->len != w->len || cpl32(a, n->k4) < n->len || !rib_deref(n->ps)))
					n = NULL;
				out[w->i] = n;
				*w = wk[--nw];
				continue;
			}
			if (n && n->len < w->len && kcpl(w->k, node_key(n)) >= n->len) {
				n = rib_deref(n->ch[kbit(w->k, n->len)]);
				w->n = n;
				if (n)
					lk_prefetch_node(n, w->fam);
				j++;
				continue;
			}
			/* tree_lookup's end: n is the prefix, or it is not there */
			if (n && (n->len != w->len || kcpl(w->k, node_key(n)) < n->len || !rib_deref(n->ps)))
				n = NULL;
			out[w->i] = n;
			*w = wk[--nw];
		}
	}
	return nw;
}

/*
 * IPv4 batches on a family that never builds /24 tables (rib_opts
 * lpm_index_min = RIB_LPM_INDEX_OFF, the daemon's RIB): every lookup is a
 * descent of its slot's tree, so the stages above are passes that find
 * nothing to do (the /24 entry, the indexed node) before the walks start.
 * These paths start each descent as soon as its slot word is loaded (two
 * passes over the group, then rounds), keep up to 2 * RIB_LK_GROUP walks in
 * flight on long batches (the next group's slot words load while the last
 * one's descents go on) and take every walk one node per round with the
 * 32-bit step (on_path4: no bit scan).  A longest match that found nothing
 * in its slot's tree reads the slot's short-prefix entry then (prefetched
 * in the second pass: a line of a 512 KiB array) and checks that entry's
 * node after the rounds, prefetched only then: the stages fetch that node
 * for every lookup, and 9 in 10 do not need it.  Figures: "Stop 13" in
 * docs/BENCHMARKS.md.
 *
 * Readers' safety: what a lookup loads, and in which order, is what the
 * single call loads - rib_lookup: the sbest hint of a short prefix, then
 * tree_lookup from root_get's root and the path set (a short prefix's walk
 * starts before its hint is checked: argument 5's exception);
 * rib_lookup_lpm: lpm_dir4 on a slot without a table, i.e. tree_lpm down
 * the slot's tree, then the sbest entry and its path set, then (a writer
 * changing it) lpm_tree - only later, interleaved with the other lookups'
 * loads and with prefetches.  A slot word found tagged (a table: impossible
 * while the option holds, but cheap to honour) sends that lookup to the
 * single call.  A batch mixing families takes the stages.
 */
/* cpl32(a, k) >= len, without the bit scan: the bits above len agree */
static inline bool on_path4(uint32_t a, uint32_t k, unsigned len)
{
	return ((uint64_t)(a ^ k) >> (32 - len)) == 0;
}

struct lk_w4 {
	struct rib_node *n;              /* exact: the node to step; lpm: also */
	struct rib_node *best;           /* lpm: deepest node with paths so far */
	uint32_t a;                      /* the (masked) address */
	uint32_t i;                      /* query index in the batch */
	uint32_t len;                    /* exact: the prefix length */
};
#define RIB_LK_INFLIGHT (2 * RIB_LK_GROUP)

/* One round of exact IPv4 descents: each walk one node further (tree_lookup's
 * step), finished ones answered into out and dropped.  Returns the walks left. */
static unsigned lk_round4(struct lk_w4 *wk, unsigned nw, struct rib_node **out)
{
	for (unsigned j = 0; j < nw;) {
		struct lk_w4 *w = &wk[j];
		struct rib_node *n = w->n;
		uint32_t a = w->a;
		unsigned nl = n->len;
		bool on = on_path4(a, n->k4, nl);
		if (nl < w->len && on) {
			n = rib_deref(n->ch[(a >> (31 - nl)) & 1]);
			if (n) {
				w->n = n;
				lk_prefetch_node(n, BGP_FAM_IPV4);
				j++;
				continue;
			}
		} else if (nl != w->len || !on || !rib_deref(n->ps)) {
			n = NULL;
		}
		/* tree_lookup's end: n is the prefix (with paths), or it is not there */
		out[w->i] = n;
		*w = wk[--nw];
	}
	return nw;
}

static __attribute__((noinline)) void lookup_batch_tree4(struct rib_fam *f, const struct bgp_prefix *pfx, size_t n,
			       struct rib_node **out)
{
	struct lk_w4 wk[RIB_LK_INFLIGHT];
	unsigned nw = 0;
	for (size_t base = 0; base < n; base += RIB_LK_GROUP) {
		unsigned g = n - base < RIB_LK_GROUP ? (unsigned)(n - base) : RIB_LK_GROUP;
		const struct bgp_prefix *q = pfx + base;
		uint32_t a[RIB_LK_GROUP];
		/* the slot word (/16../32) or the short-prefix entry (/0../15) */
		for (unsigned j = 0; j < g; j++) {
			unsigned len = q[j].len;
			a[j] = be32_load(q[j].addr) & (len ? ~0u << (32 - len) : 0);
			if (len >= 16)
				__builtin_prefetch(&f->slots[a[j] >> 16]);
			else
				__builtin_prefetch(&f->sbest[a[j] >> 16]);
		}
		/* start the descents from the slots' roots; a short prefix also
		 * has its hint (rib_lookup's lookup_hint) prefetched, checked
		 * after a round (most short prefixes are not their hint, and
		 * their walks of the short-prefix tree are the longest) */
		bool hints = false;
		for (unsigned j = 0; j < g; j++) {
			unsigned len = q[j].len;
			if (len > 32) {
				out[base + j] = NULL;
				continue;
			}
			struct rib_node *root, *hint = NULL;
			if (len < 16) {
				hint = rib_deref(f->sbest[a[j] >> 16]);
				if (hint) {
					lk_prefetch_node(hint, BGP_FAM_IPV4);
					hints = true;
				}
				root = rib_deref(f->shortroot);
			} else {
				uintptr_t v = (uintptr_t)rib_deref(f->slots[a[j] >> 16]);
				if (v & RIB_SLOT_DIR) {
					out[base + j] = lookup_one(f, (rkey_t)a[j] << 96, len);
					continue;
				}
				root = (struct rib_node *)v;
			}
			if (!root) {
				out[base + j] = NULL;
				continue;
			}
			lk_prefetch_node(root, BGP_FAM_IPV4);
			wk[nw++] = (struct lk_w4){ .n = root, .best = hint, .a = a[j],
						   .i = (uint32_t)(base + j), .len = len };
		}
		if (nw)
			nw = lk_round4(wk, nw, out);
		/* the hints have had a round to arrive: a hint that is the prefix
		 * answers its lookup, whose walk stops (a walk already over has
		 * answered by itself) */
		for (unsigned j = 0; hints && j < nw;) {
			struct lk_w4 *w = &wk[j];
			struct rib_node *nd = w->best;
			w->best = NULL;
			if (nd && nd->len == w->len && nd->k4 == w->a && rib_deref(nd->ps)) {
				out[w->i] = nd;
				*w = wk[--nw];
				continue;
			}
			j++;
		}
		/* keep up to a group going while the next group's slot words load */
		unsigned keep = base + g < n ? RIB_LK_INFLIGHT - RIB_LK_GROUP : 0;
		while (nw > keep)
			nw = lk_round4(wk, nw, out);
	}
}

/* One round of IPv4 longest-match descents (tree_lpm's step down a slot's
 * tree).  A finished walk with a match is answered; one without goes to fb
 * with its slot's short-prefix entry, whose node is prefetched and checked
 * later (lk_lpm_fallbacks).  Returns the walks left. */
static unsigned lk_lround4(struct rib_fam *f, struct lk_w4 *wk, unsigned nw, struct rib_node **out,
			   struct lk_w4 *fb, unsigned *nfb)
{
	for (unsigned j = 0; j < nw;) {
		struct lk_w4 *w = &wk[j];
		struct rib_node *n = w->n;
		uint32_t a = w->a;
		unsigned nl = n->len;
		if (on_path4(a, n->k4, nl)) {
			if (rib_deref(n->ps))
				w->best = n;
			if (nl < 32) {
				n = rib_deref(n->ch[(a >> (31 - nl)) & 1]);
				if (n) {
					w->n = n;
					lk_prefetch_node(n, BGP_FAM_IPV4);
					j++;
					continue;
				}
			}
		}
		if (w->best) {
			out[w->i] = w->best;
		} else {
			/* lpm_dir4's rest: the slot's short-prefix entry */
			n = rib_deref(f->sbest[a >> 16]);
			if (n) {
				lk_prefetch_node(n, BGP_FAM_IPV4);
				w->n = n;
				fb[(*nfb)++] = *w;
			} else {
				out[w->i] = NULL;
			}
		}
		*w = wk[--nw];
	}
	return nw;
}

/* The short-prefix entries of walks that found nothing in their slot: the
 * answer if it still has paths, else (a writer is changing it) the walk of
 * both trees that lpm_dir4 falls back to. */
static void lk_lpm_fallbacks(struct rib_fam *f, struct lk_w4 *fb, unsigned nfb, struct rib_node **out)
{
	for (unsigned j = 0; j < nfb; j++) {
		struct rib_node *n = fb[j].n;
		out[fb[j].i] = rib_deref(n->ps) ? n : lpm_tree(f, (rkey_t)fb[j].a << 96);
	}
}

static __attribute__((noinline)) void lpm_batch_tree4(struct rib_fam *f, const uint8_t *addrs, size_t stride, size_t n,
			    struct rib_node **out)
{
	struct lk_w4 wk[RIB_LK_INFLIGHT], fb[RIB_LK_INFLIGHT + RIB_LK_GROUP];
	unsigned nw = 0, nfb = 0;
	for (size_t base = 0; base < n; base += RIB_LK_GROUP) {
		unsigned g = n - base < RIB_LK_GROUP ? (unsigned)(n - base) : RIB_LK_GROUP;
		uint32_t a[RIB_LK_GROUP];
		for (unsigned j = 0; j < g; j++) {
			a[j] = be32_load(addrs + (base + j) * stride);
			__builtin_prefetch(&f->slots[a[j] >> 16]);
		}
		/* start the descents; the short-prefix entry is wanted only at
		 * the end of a walk that found nothing, prefetch it now */
		for (unsigned j = 0; j < g; j++) {
			uintptr_t v = (uintptr_t)rib_deref(f->slots[a[j] >> 16]);
			__builtin_prefetch(&f->sbest[a[j] >> 16]);
			if (!v || (v & RIB_SLOT_DIR)) {
				out[base + j] = lpm_dir4(f, a[j], v);
				continue;
			}
			struct rib_node *root = (struct rib_node *)v;
			lk_prefetch_node(root, BGP_FAM_IPV4);
			wk[nw++] = (struct lk_w4){ .n = root, .a = a[j], .i = (uint32_t)(base + j) };
		}
		unsigned keep = base + g < n ? RIB_LK_INFLIGHT - RIB_LK_GROUP : 0;
		while (nw > keep)
			nw = lk_lround4(f, wk, nw, out, fb, &nfb);
		/* fb holds at most what this group and the walks kept add */
		if (nfb > RIB_LK_INFLIGHT - RIB_LK_GROUP || !keep) {
			lk_lpm_fallbacks(f, fb, nfb, out);
			nfb = 0;
		}
	}
}

void rib_lookup_batch(struct rib *r, const struct bgp_prefix *pfx, size_t n, struct rib_node **out)
{
	struct rib_fam *f = &r->f[BGP_FAM_IPV4];
	if (f->dir_min == RIB_LPM_INDEX_OFF) {
		size_t i = 0;
		while (i < n && pfx[i].family == BGP_FAM_IPV4)
			i++;
		if (i == n) {
			lookup_batch_tree4(f, pfx, n, out);
			return;
		}
	}
	struct lk_walk wk[RIB_LK_WALKS];
	unsigned nw = 0;
	for (size_t base = 0; base < n; base += RIB_LK_GROUP) {
		unsigned g = n - base < RIB_LK_GROUP ? (unsigned)(n - base) : RIB_LK_GROUP;
		const struct bgp_prefix *q = pfx + base;
		uint32_t a[RIB_LK_GROUP];
		uintptr_t v[RIB_LK_GROUP];
		/* IPv4: the slot word (/16../32) or the short-prefix entry (/0../15);
		 * other families go straight to the single call */
		for (unsigned j = 0; j < g; j++) {
			unsigned len = q[j].len;
			a[j] = 0;
			v[j] = 0;
			if (q[j].family == BGP_FAM_IPV6 && len >= 16 && len <= 128)
				__builtin_prefetch(&r->f[BGP_FAM_IPV6].slots[be32_load(q[j].addr) >> 16]);
			if (q[j].family != BGP_FAM_IPV4 || len > 32)
				continue;
			a[j] = be32_load(q[j].addr) & (len ? ~0u << (32 - len) : 0);
			if (len >= 16)
				__builtin_prefetch(&f->slots[a[j] >> 16]);
			else
				__builtin_prefetch(&f->sbest[a[j] >> 16]);
		}
		/* the /24 entry, the slot's root, or the hinted node */
		for (unsigned j = 0; j < g; j++) {
			unsigned len = q[j].len;
			if (q[j].family != BGP_FAM_IPV4 || len > 32)
				continue;
			if (len < 16) {
				struct rib_node *nd = rib_deref(f->sbest[a[j] >> 16]);
				if (nd)
					lk_prefetch_node(nd, BGP_FAM_IPV4);
				continue;
			}
			v[j] = (uintptr_t)rib_deref(f->slots[a[j] >> 16]);
			const struct rib_dir *d = slot_dir_of(v[j]);
			if (!d)
				__builtin_prefetch((void *)v[j]);
			else if (len <= 24)
				__builtin_prefetch(&d->e[(a[j] >> 8) & 255]);
			else
				__builtin_prefetch(&f->droot[a[j] >> 16]);
		}
		/* the indexed node, or the root of a slot with an index */
		for (unsigned j = 0; j < g; j++) {
			const struct rib_dir *d = slot_dir_of(v[j]);
			struct rib_node *nd;
			if (!d)
				continue;
			if (q[j].len <= 24)
				nd = (struct rib_node *)(rib_deref(d->e[(a[j] >> 8) & 255]) & ~RIB_DEEP);
			else
				nd = rib_deref(f->droot[a[j] >> 16]);
			if (nd)
				lk_prefetch_node(nd, BGP_FAM_IPV4);
		}
		/* the index's answer, or on to the tree walks */
		for (unsigned j = 0; j < g; j++) {
			unsigned fam = q[j].family, len = q[j].len;
			if (fam >= BGP_FAM_COUNT || len > bgp_family_maxlen(fam)) {
				out[base + j] = NULL;
				continue;
			}
			struct rib_fam *fj = &r->f[fam];
			rkey_t k = key_from_addr(fam, q[j].addr) & kmask(len);
			struct rib_node *nd = lookup_hint(fj, k, len);
			if (nd) {
				out[base + j] = nd;
				continue;
			}
			struct lk_walk *w = &wk[nw++];
			w->k = k;
			w->len = (uint8_t)len;
			w->i = base + j;
			w->n = root_get(fj, k, len);
			w->fam = (uint8_t)fam;
			if (w->n)
				lk_prefetch_node(w->n, fam);
			if (nw == RIB_LK_WALKS)
				nw = lk_walks(wk, nw, out, RIB_LK_WALKS / 2);
		}
	}
	lk_walks(wk, nw, out, 0);
}

/*
 * IPv4 longest matches in slots without a /24 table, walked together as
 * lk_walks does for exact ones: each round takes every walk one step of
 * tree_lpm down its slot's tree (the root was prefetched by the stages);
 * at the end of a walk, lpm_dir4's rest: the deepest node with paths, else
 * the slot's short-prefix entry (prefetched too), checked as lpm_dir4 does.
 */
struct lk_lwalk {
	struct rib_node *n, *best;
	size_t i;                        /* query index */
	uint32_t a;
};

/* As lk_walks, for longest matches. */
static unsigned lk_lwalks(struct rib_fam *f, struct lk_lwalk *wk, unsigned nw,
			  struct rib_node **out, unsigned keep)
{
	while (nw > keep) {
		for (unsigned j = 0; j < nw;) {
			struct lk_lwalk *w = &wk[j];
			struct rib_node *n = w->n;
			if (n && cpl32(w->a, n->k4) >= n->len) {
				if (rib_deref(n->ps))
					w->best = n;
				if (n->len < 32) {
					n = rib_deref(n->ch[(w->a >> (31 - n->len)) & 1]);
					w->n = n;
					if (n) {
						lk_prefetch_node(n, BGP_FAM_IPV4);
						j++;
						continue;
					}
				}
			}
			n = w->best;
			if (!n) {
				n = rib_deref(f->sbest[w->a >> 16]);
				if (n && !rib_deref(n->ps))
					n = lpm_tree(f, (rkey_t)w->a << 96);
			}
			out[w->i] = n;
			*w = wk[--nw];
		}
	}
	return nw;
}

void rib_lookup_lpm_batch(struct rib *r, unsigned fam, const uint8_t *addrs, size_t stride,
			  size_t n, struct rib_node **out)
{
	if (fam >= BGP_FAM_COUNT) {
		for (size_t i = 0; i < n; i++)
			out[i] = NULL;
		return;
	}
	struct rib_fam *f = &r->f[fam];
	if (f->direct && f->dir_min == RIB_LPM_INDEX_OFF) {
		lpm_batch_tree4(f, addrs, stride, n, out);
		return;
	}
	if (!f->direct) {
		for (size_t i = 0; i < n; i++)
			out[i] = lpm_tree(f, key_from_addr(fam, addrs + i * stride));
		return;
	}
	/* group prefetching: each stage starts the misses of the whole group
	 * before any lookup waits on one */
	struct lk_lwalk wk[RIB_LK_WALKS];
	unsigned nw = 0;
	for (size_t base = 0; base < n; base += RIB_LK_GROUP) {
		unsigned g = n - base < RIB_LK_GROUP ? (unsigned)(n - base) : RIB_LK_GROUP;
		uint32_t a[RIB_LK_GROUP];
		uintptr_t v[RIB_LK_GROUP];
		for (unsigned j = 0; j < g; j++) {
			a[j] = be32_load(addrs + (base + j) * stride);
			__builtin_prefetch(&f->slots[a[j] >> 16]);
		}
		for (unsigned j = 0; j < g; j++) {
			v[j] = (uintptr_t)rib_deref(f->slots[a[j] >> 16]);
			const struct rib_dir *d = slot_dir_of(v[j]);
			if (d)
				__builtin_prefetch(&d->e[(a[j] >> 8) & 255]);
			else
				__builtin_prefetch((void *)v[j]);
			__builtin_prefetch(&f->sbest[a[j] >> 16]);
		}
		for (unsigned j = 0; j < g; j++) {
			const struct rib_dir *d = slot_dir_of(v[j]);
			uintptr_t e = d ? rib_deref(d->e[(a[j] >> 8) & 255]) : 0;
			struct rib_node *nd = (struct rib_node *)(e & ~RIB_DEEP);
			if (!nd)
				nd = rib_deref(f->sbest[a[j] >> 16]);
			if (nd)
				lk_prefetch_node(nd, BGP_FAM_IPV4);
		}
		/* the index's answer; a slot without one walks its tree */
		for (unsigned j = 0; j < g; j++) {
			if (slot_dir_of(v[j]) || !v[j]) {
				out[base + j] = lpm_dir4(f, a[j], v[j]);
				continue;
			}
			struct lk_lwalk *w = &wk[nw++];
			w->a = a[j];
			w->n = (struct rib_node *)v[j];
			w->best = NULL;
			w->i = base + j;
			if (nw == RIB_LK_WALKS)
				nw = lk_lwalks(f, wk, nw, out, RIB_LK_WALKS / 2);
		}
	}
	lk_lwalks(f, wk, nw, out, 0);
}

void rib_node_prefix(const struct rib_node *n, struct bgp_prefix *pfx)
{
	memset(pfx, 0, sizeof(*pfx));
	pfx->family = n->fam;
	pfx->len = n->len;
	key_to_addr(n->fam, node_key(n), pfx->addr);
}

const struct rib_pathset *rib_node_paths(const struct rib_node *n)
{
	return rib_deref(n->ps);
}

/* ---- ordered walk ------------------------------------------------------- */

struct walk {
	struct rib_fam *f;
	bool has_below, has_after, in_short, stop;
	rkey_t bk, ak;
	unsigned bl, al;
	unsigned next_slot, end_slot;    /* slots still to walk: [next, end) */
	size_t max, count;
	rib_walk_cb cb;
	void *arg;
	struct bgp_prefix *last;
};

static void walk_node(struct walk *w, struct rib_node *n);

static void walk_slots(struct walk *w, unsigned upto)
{
	bool was_short = w->in_short;
	w->in_short = false;
	for (; w->next_slot < upto && !w->stop; w->next_slot++)
		walk_node(w, slot_root(w->f, w->next_slot));
	w->in_short = was_short;
}

static void walk_emit(struct walk *w, struct rib_node *n, rkey_t k)
{
	const struct rib_pathset *ps = rib_deref(n->ps);
	if (!ps || !ps->n)
		return;
	if (w->has_after && (k < w->ak || (k == w->ak && n->len <= w->al)))
		return;
	if (w->in_short) {
		/* everything in slots before this prefix's stride value precedes it */
		unsigned s = key_slot(w->f, k);
		walk_slots(w, s < w->end_slot ? s : w->end_slot);
		if (w->stop)
			return;
	}
	struct bgp_prefix pfx;
	rib_node_prefix(n, &pfx);
	w->count++;
	if (w->last)
		*w->last = pfx;
	if (!w->cb(n, &pfx, ps, w->arg) || w->count >= w->max)
		w->stop = true;
}

static void walk_node(struct walk *w, struct rib_node *n)
{
	if (!n || w->stop)
		return;
	rkey_t k = node_key(n);
	unsigned l = n->len;
	if (w->has_below) {
		if (l < w->bl) {
			if (kcpl(k, w->bk) < l)
				return;
			walk_node(w, rib_deref(n->ch[kbit(w->bk, l)]));
			return;
		}
		if (kcpl(k, w->bk) < w->bl)
			return;
	}
	if (w->has_after && (k | ~kmask(l)) < w->ak)
		return;
	walk_emit(w, n, k);
	walk_node(w, rib_deref(n->ch[0]));
	walk_node(w, rib_deref(n->ch[1]));
}

size_t rib_walk(struct rib *r, unsigned fam, const struct bgp_prefix *below,
		const struct bgp_prefix *after, size_t max, rib_walk_cb cb, void *arg,
		struct bgp_prefix *last)
{
	if (fam >= BGP_FAM_COUNT || max == 0)
		return 0;
	struct walk w = { .f = &r->f[fam], .max = max, .cb = cb, .arg = arg, .last = last };
	struct rib_fam *f = w.f;
	w.next_slot = 0;
	w.end_slot = f->nslots;
	bool do_short = true;
	if (below) {
		if (below->family != fam || below->len > f->maxlen)
			return 0;
		w.has_below = true;
		w.bl = below->len;
		w.bk = key_from_addr(fam, below->addr) & kmask(w.bl);
		w.next_slot = key_slot(f, w.bk);
		w.end_slot = key_slot(f, w.bk | ~kmask(w.bl)) + 1;
		do_short = w.bl < f->stride;
	}
	if (after) {
		if (after->family != fam || after->len > f->maxlen)
			return 0;
		w.has_after = true;
		w.al = after->len;
		w.ak = key_from_addr(fam, after->addr) & kmask(w.al);
		unsigned s = key_slot(f, w.ak);
		if (s > w.next_slot)
			w.next_slot = s;
	}
	if (do_short) {
		w.in_short = true;
		walk_node(&w, rib_deref(f->shortroot));
		w.in_short = false;
	}
	walk_slots(&w, w.end_slot);
	return w.count;
}

/* ---- lifecycle and accounting ------------------------------------------- */

static void fam_init(struct rib_fam *f, unsigned fam)
{
	f->fam = fam;
	f->stride = 16;                  /* both families: see LAYOUT */
	f->nslots = 1u << f->stride;
	f->nstripes = 1024;
	f->maxlen = bgp_family_maxlen(fam);
	f->slots = xcalloc_touched(f->nslots, sizeof(*f->slots));
	f->direct = fam == BGP_FAM_IPV4;
	if (f->direct) {
		f->sbest = xcalloc_touched(f->nslots, sizeof(*f->sbest));
		f->droot = xcalloc_touched(f->nslots, sizeof(*f->droot));
		f->dcount = xcalloc_touched(f->nslots, sizeof(*f->dcount));
	}
	if (posix_memalign((void **)&f->stripes, 64, (f->nstripes + 1) * sizeof(*f->stripes)))
		log_fatal("rib: out of memory (stripes)");
	memset(f->stripes, 0, (f->nstripes + 1) * sizeof(*f->stripes));
}

struct rib *rib_create(const struct rib_opts *o)
{
	struct rib *r;
	if (posix_memalign((void **)&r, 64, sizeof(*r)))
		log_fatal("rib: out of memory");
	memset(r, 0, sizeof(*r));
	r->dopts = o->decide;
	r->jdepth = o->journal_depth;
	r->attrs = o->attrs;
	r->peers = o->peers;
	r->peer = xcalloc(RIB_MAX_PEERS, sizeof(*r->peer));
	for (unsigned i = 0; i < BGP_FAM_COUNT; i++) {
		fam_init(&r->f[i], i);
		r->f[i].dir_min = o->lpm_index_min ? o->lpm_index_min : RIB_DIR_MIN;
		if (r->f[i].direct && r->f[i].dir_min == RIB_LPM_INDEX_OFF) {
			/* 8 MiB, touched now: the first prefixes of a table
			 * spread over all of it, and a first touch (a page
			 * fault) costs more than the descent it saves */
			r->f[i].hint = xcalloc_touched((size_t)1 << RIB_HINT_LEN, sizeof(*r->f[i].hint));
		}
	}
	for (unsigned l = 0; l < RIB_JLANES; l++)
		for (unsigned i = 0; i < RIB_JQUEUES; i++)
			__cds_wfcq_init(&r->jq[l][i].head, &r->jq[l][i].tail);
	pthread_mutex_init(&r->wmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wcv, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

static void tree_free(struct rib *r, struct rib_node *n)
{
	while (n) {
		tree_free(r, n->ch[0]);
		struct rib_node *next = n->ch[1];
		if (n->ps) {
			for (unsigned i = 0; i < n->ps->n; i++)
				attr_unref(r->attrs, n->ps->p[i].attr);
			free(n->ps);
		}
		free(n);
		n = next;
	}
}

void rib_reclaim_idle(struct rib *r)
{
	rib_reclaim_mine(r);
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		struct rib_fam *f = &r->f[fam];
		for (unsigned i = 0; i <= f->nstripes; i++) {
			struct rib_stripe *st = &f->stripes[i];
			if (!__atomic_load_n(&st->pending, __ATOMIC_RELAXED))
				continue;        /* racy peek; a missed batch goes next time */
			stripe_lock(&st->lk);
			stripe_flush(st);
			stripe_unlock(&st->lk);
		}
	}
}

void rib_flush(struct rib *r)
{
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		struct rib_fam *f = &r->f[fam];
		for (unsigned i = 0; i <= f->nstripes; i++) {
			stripe_lock(&f->stripes[i].lk);
			stripe_flush(&f->stripes[i]);
			stripe_unlock(&f->stripes[i].lk);
		}
	}
	/* no writer runs now (rib.h): every thread's slot can be emptied here */
	for (unsigned i = 0; i < RIB_WSLOTS; i++)
		batch_flush(&r->ws[i].pending);
	rcu_barrier();
}

void rib_destroy(struct rib *r)
{
	if (!r)
		return;
	rib_flush(r);
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		struct rib_fam *f = &r->f[fam];
		for (unsigned s = 0; s < f->nslots; s++) {
			struct rib_dir *d = slot_dir_of((uintptr_t)f->slots[s]);
			tree_free(r, d ? f->droot[s] : f->slots[s]);
			free(d);
		}
		tree_free(r, f->shortroot);
		free(f->stripes);
		free(f->slots);
		free(f->sbest);
		free(f->droot);
		free(f->dcount);
		free(f->hint);
	}
	for (unsigned i = 0; i < RIB_MAX_PEERS; i++) {
		if (r->peer[i]) {
			for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++)
				pidx_job_free(r, r->peer[i], fam);
			free(r->peer[i]->v4);
			free(r->peer[i]->v6);
			free(r->peer[i]);
		}
	}
	free(r->peer);
	pthread_mutex_destroy(&r->wmu);
	pthread_cond_destroy(&r->wcv);
	free(r);
	rcu_barrier();               /* attr frees queued by our reclaim callbacks */
}

void rib_stats(struct rib *r, struct rib_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++) {
		struct rib_fam *f = &r->f[fam];
		for (unsigned i = 0; i <= f->nstripes; i++) {
			struct rib_stripe *s = &f->stripes[i];
			st->prefixes[fam] += (uint64_t)rd_relaxed(s->prefixes);
			st->paths[fam] += (uint64_t)rd_relaxed(s->paths);
			st->nodes += (uint64_t)rd_relaxed(s->nodes);
			st->node_bytes += (uint64_t)rd_relaxed(s->node_bytes);
			st->pathset_bytes += (uint64_t)rd_relaxed(s->ps_bytes);
			st->lpm_index_bytes += (uint64_t)rd_relaxed(s->dir_bytes);
		}
	}
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++)
		if (r->f[fam].hint)
			st->hint_bytes += ((uint64_t)1 << RIB_HINT_LEN) * sizeof(*r->f[fam].hint);
	st->peer_index_bytes = rd_relaxed(r->peer_index_bytes);
	st->journal_pending = rib_journal_pending(r);
}

uint64_t rib_peer_prefixes(struct rib *r, uint32_t peer, unsigned fam)
{
	if (peer >= RIB_MAX_PEERS || fam >= BGP_FAM_COUNT)
		return 0;
	struct rib_peer *p = rib_deref(r->peer[peer]);
	return p ? rd_relaxed(p->live[fam]) : 0;
}

uint64_t rib_peer_index_len(struct rib *r, uint32_t peer, unsigned fam)
{
	if (peer >= RIB_MAX_PEERS || fam >= BGP_FAM_COUNT)
		return 0;
	struct rib_peer *p = rib_deref(r->peer[peer]);
	return p ? p->n[fam] : 0;
}
