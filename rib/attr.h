/*
 * attr.h - interned (hash-consed), reference-counted path attribute sets.
 *
 * Owns: the table of distinct attribute sets (a liburcu rculfhash), keyed by
 * (next hop, canonical attribute blob - see core/bgp.h).  Identical sets from
 * any peer are stored once; a full Internet table has ~150k distinct sets for
 * 1M prefixes, so this is where most memory is saved.
 *
 * Threading: any RCU-registered thread may intern, ref and unref concurrently.
 * attr_intern() and attr_unref() take rcu_read_lock themselves.  A pointer
 * obtained from a path under rcu_read_lock stays valid until rcu_read_unlock
 * even if its last reference is dropped meanwhile (freed after a grace period).
 * Refcount underflow, overflow or use of a released set aborts loudly.
 *
 * The decision fields are extracted once at intern time, so best-path
 * selection never parses attributes.
 */
#ifndef RICOCHET_RIB_ATTR_H
#define RICOCHET_RIB_ATTR_H

#include <stddef.h>
#include <urcu.h>
#include <urcu/rculfhash.h>
#include "core/bgp.h"

/* attr_set.flags */
#define ATTR_F_MED            0x0001
#define ATTR_F_LOCAL_PREF     0x0002
#define ATTR_F_ORIGINATOR     0x0004
#define ATTR_F_ATOMIC_AGG     0x0008
#define ATTR_F_NO_EXPORT      0x0010
#define ATTR_F_NO_ADVERTISE   0x0020
#define ATTR_F_NO_EXPORT_SUBCONFED 0x0040
#define ATTR_F_CLUSTER_LIST   0x0080

struct attr_set {
	/* First cache line: what interning and reference counting touch (the
	 * table link, hash, refcount) and the match key (next hop, blob length). */
	struct cds_lfht_node node;       /* in attr_table */
	unsigned long hash;
	uint32_t refcnt;                 /* atomic; 0 = dying, never resurrected */
	uint16_t blob_len;
	struct bgp_nexthop nh;           /* 33 bytes */
	uint8_t pad_;                    /* the line is full: 64 bytes */
	/* decision fields, extracted at intern time.  They start a cache line of
	 * their own (the set is allocated 64-aligned): every RIB writer thread
	 * adds to refcnt, and best-path selection in another thread reads these,
	 * so sharing the line would move it between cores on every reference.
	 * The first four share their 16 bytes with the rcu_head the set is freed
	 * through: call_rcu writes it only once refcnt is 0, and nobody reads
	 * decision fields then - a path holds a reference for as long as any
	 * reader can reach it (rib.c, argument 4), and a match (the only look
	 * at a set found without one) reads the key fields above, never these. */
	union {
		struct {
			uint32_t local_pref;     /* 100 when absent */
			uint32_t med;            /* 0 when absent */
			uint32_t originator_id;  /* host order, 0 when absent */
			uint32_t neighbor_as;    /* first AS of the first AS_SEQUENCE, 0 if none */
		};
		struct rcu_head rcu;             /* after the last reference only */
	};
	uint16_t as_path_len;            /* RFC 4271 9.1.2.2a: AS_SET counts 1, confed 0 */
	uint16_t cluster_list_len;       /* number of cluster ids */
	uint16_t flags;                  /* ATTR_F_* */
	uint8_t origin;
	uint8_t blob[];                  /* canonical attribute blob */
};
/* 64 + 23 bytes before the blob (was 122): a typical 50-100 byte blob fits
 * a 192-byte allocation, one 64-byte line less than before */
_Static_assert(sizeof(struct rcu_head) == 16, "rcu_head shares the first four decision fields");
_Static_assert(offsetof(struct attr_set, local_pref) == 64, "decision fields start the second line");

/* Start loading what best-path selection reads of a (its decision line,
 * not the refcount line a plain prefetch of the pointer would fetch). */
static inline void attr_prefetch_decision(const struct attr_set *a)
{
	__builtin_prefetch((const char *)a + offsetof(struct attr_set, local_pref));
}

struct attr_table;

struct attr_table *attr_table_create(void);
/* Destroy: every set must have been released (aborts otherwise).  Call outside
 * rcu_read_lock: it waits for pending frees (rcu_barrier). */
void attr_table_destroy(struct attr_table *t);

/*
 * Return the interned set for (nh, blob), taking one reference for the caller.
 * Allocates only when the set is new.  blob must be canonical; it is copied.
 */
struct attr_set *attr_intern(struct attr_table *t, const struct bgp_nexthop *nh,
			     const uint8_t *blob, size_t len);
void attr_ref(struct attr_set *a);               /* aborts on overflow / dead set */
void attr_unref(struct attr_table *t, struct attr_set *a); /* last ref frees after a grace period */
/* n references at once (one atomic add): for a batch of paths sharing a. */
void attr_ref_n(struct attr_set *a, uint32_t n);
void attr_unref_n(struct attr_table *t, struct attr_set *a, uint32_t n);

struct attr_stats {
	uint64_t sets;                   /* live distinct sets */
	uint64_t bytes;                  /* bytes held by them (allocation sizes) */
	uint64_t interns;                /* attr_intern calls */
	uint64_t hits;                   /* of which found an existing set */
	uint64_t buckets;                /* hash buckets last asked for (the table's
					  * size once the call_rcu thread has grown
					  * it; rculfhash may shrink it below) */
};
void attr_table_stats(struct attr_table *t, struct attr_stats *st);

#endif
