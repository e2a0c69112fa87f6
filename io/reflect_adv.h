/*
 * reflect_adv.h - an ADD-PATH update group's table of advertised path ids:
 * per prefix, which ids the members were sent and with which attribute set,
 * so that the prefix's next live change withdraws by id the paths that left
 * the top N and re-sends only those that are new or changed.
 *
 * Internal to the reflection thread: io/reflect.c is its only user.  It is a
 * module of its own so that the table - the spill above all, which only a
 * dump racing a live change reaches - can be driven directly by a unit test
 * (tests/io/test_refl_adv.c).
 *
 * Threading and ownership: a table belongs to one update group and only the
 * reflection thread touches it; no locking.  Nodes are keys, never
 * dereferenced: a node stays allocated while it has paths and is only freed
 * after the reflection thread has seen it empty and cleared its entry
 * (refl_adv_set with k = 0).  The table owns one reference to every non-NULL
 * attribute set it remembers (released through the table's attr_table).
 */
#ifndef RICOCHET_IO_REFLECT_ADV_H
#define RICOCHET_IO_REFLECT_ADV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct attr_set;
struct attr_table;
struct rib_node;

#define REFL_ADDPATH_MAX 8               /* paths per prefix a group is sent, at most */

/*
 * A slot holds the node, the count, then idcap ids and attrcap attribute
 * pointers.  idcap is per table: twice the group's N (at most
 * REFL_ADDPATH_MAX), because a dump can add up to N ids the live members do
 * not have until the prefix's next live change sets the entry back to at
 * most N.  attrcap is N: a live change writes at most N ids, at positions
 * 0..N-1, and an id a dump adds has no known set, so positions from N on
 * never have one.  Sized to N, not to the maximum: 48 bytes a slot for
 * N = 2 where a fixed 8 took 112 (2 M slots for a 1.28 M-prefix table).
 */
struct refl_adv_slot {
	struct rib_node *node;           /* NULL = empty */
	uint8_t n;
	uint8_t spilled;                 /* more ids of this node wait in the table's spill */
	uint32_t ids[];                  /* idcap ids, then (at attr_off) idcap pointers */
};
/*
 * The spill: ids a full slot could not take (dumps that read several states
 * of a prefix before its next live change).  Rare, so a plain vector, looked
 * at only for slots marked `spilled`.  They were advertised to some member
 * with attributes we do not remember, so they are never "the same": the next
 * live change withdraws every one that is not in the new top N, then forgets
 * them.  Without it such an id would never be withdrawn: a stale path at
 * the member that got it.
 */
struct refl_adv_spill {
	struct rib_node *node;
	uint32_t id;
};
struct refl_adv {
	unsigned char *slot;             /* cap slots of stride bytes (mmap, see reflect_adv.c) */
	size_t cap, used;                /* cap: power of two */
	unsigned idcap;                  /* ids per slot */
	unsigned attrcap;                /* attribute pointers per slot (the first ids') */
	size_t stride, attr_off;
	struct attr_table *attrs;        /* for releasing the references */
	uint64_t *bytes;                 /* the reflection stats' adv_bytes */
	uint64_t *spilled;               /* ids a full slot could not take (stats) */
	struct refl_adv_spill *spill;    /* see struct refl_adv_spill */
	size_t nspill, capspill;
};

/* An empty table for a group sent n paths per prefix; *bytes and *spilled
 * are counters the table adds to (memory it holds, ids it spilled). */
void refl_adv_init(struct refl_adv *t, unsigned n, struct attr_table *attrs, uint64_t *bytes,
		   uint64_t *spilled);
/* Every remembered reference back, the memory freed (the group goes away). */
void refl_adv_free(struct refl_adv *t);

/* Node n's entry, NULL when nothing is remembered for it. */
struct refl_adv_slot *refl_adv_find(struct refl_adv *t, const struct rib_node *n);

/* Do the members have id with attribute set a, as entry s says (s may be
 * NULL)?  An id a dump added (set unknown) never is. */
static inline bool refl_adv_same(const struct refl_adv *t, const struct refl_adv_slot *s,
				 uint32_t id, const struct attr_set *a)
{
	if (!s)
		return false;
	struct attr_set *const *attr =
		(struct attr_set *const *)((const unsigned char *)s + t->attr_off);
	unsigned m = s->n < t->attrcap ? s->n : t->attrcap;
	for (unsigned j = 0; j < m; j++)
		if (s->ids[j] == id && attr[j] == a)
			return true;
	return false;
}

/*
 * A live change of node n: the members are now sent ids[0..k) (k <= the
 * group's N), attr[] references handed over to the table.  Every id
 * advertised before - in the entry or in the spill - that is not among
 * ids[] is passed to gone(ctx, id), to be withdrawn: first the entry's, in
 * order, then the spilled ones.  k = 0 clears the entry.
 */
typedef void refl_adv_gone_fn(void *ctx, uint32_t id);
void refl_adv_set(struct refl_adv *t, struct rib_node *n, const uint32_t *ids,
		  struct attr_set *const *attr, uint8_t k, refl_adv_gone_fn *gone, void *ctx);

/*
 * A dump sent ids[0..k) of node n to one member: add the ones the table does
 * not have, with the set unknown (the next live change announces them to
 * every member).  Ids already there keep their set: the live members have
 * that one, whatever this member's dump read.  Ids a full slot cannot take
 * go to the spill.
 */
void refl_adv_union(struct refl_adv *t, struct rib_node *n, const uint32_t *ids, uint8_t k);

/*
 * Every member was sent id of node n with attribute set a (the reference
 * handed over to the table), and nothing else changed: the other ids of the
 * entry stay as they are (an ADD-PATH group's partial deferred step, see
 * "slow readers" in reflect.c).  The set is remembered where the entry has
 * room for it (the first N positions); an id at a later position or in the
 * spill, or added past N, stays "set unknown", so the next live change
 * announces it again.
 */
void refl_adv_add(struct refl_adv *t, struct rib_node *n, uint32_t id, struct attr_set *a);

#endif
