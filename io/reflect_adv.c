/*
 * reflect_adv.c - the ADD-PATH advertised-id table of an update group (see
 * reflect_adv.h for what it is for, who owns it and which thread uses it).
 *
 * Why it is built this way: keyed by node pointer, open addressing with
 * linear probing and backward-shift deletion, slots sized to the group's N
 * (2N ids and 2N attribute pointers each), so a full table of 1.28 M
 * prefixes costs one flat allocation and no allocation per prefix.  Ids a
 * full slot cannot take go to a per-table spill vector (rare: dumps that
 * read several states of a prefix between two of its live changes).
 *
 * The slot array is mapped on its own (mmap), not taken from the allocator,
 * so that growing it can give the old array back while the entries move:
 * each MiB of old slots already moved is unmapped at once.  A full table is
 * the biggest single object of an ADD-PATH group (96 MiB for 1.28 M prefixes
 * and N = 2); with old and new side by side its last doubling alone added
 * 48 MiB for a moment, which set S3ap's peak RSS once the group's queued
 * output was bounded (docs/BENCHMARKS.md, "Stop 12").
 *
 * Each remembered attribute set is a reference owned by the table (taken by
 * the caller under rcu_read_lock from a path that still holds its own: RIB
 * path sets drop theirs only after a grace period), so a set cannot be freed
 * and its address reused while an entry compares against it.  NULL means
 * "not known": the path is announced again the next time the prefix changes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "io/reflect_adv.h"
#include "rib/attr.h"

void refl_adv_init(struct refl_adv *t, unsigned n, struct attr_table *attrs, uint64_t *bytes,
		   uint64_t *spilled)
{
	memset(t, 0, sizeof(*t));
	t->idcap = 2 * n < REFL_ADDPATH_MAX ? 2 * n : REFL_ADDPATH_MAX;
	if (!t->idcap)
		t->idcap = 1;
	t->attrcap = n < t->idcap ? (n ? n : 1) : t->idcap;
	size_t ids_end = offsetof(struct refl_adv_slot, ids) + t->idcap * sizeof(uint32_t);
	t->attr_off = (ids_end + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
	t->stride = t->attr_off + t->attrcap * sizeof(struct attr_set *);
	t->attrs = attrs;
	t->bytes = bytes;
	t->spilled = spilled;
}

static inline struct refl_adv_slot *adv_at(const struct refl_adv *t, size_t i)
{
	return (struct refl_adv_slot *)(t->slot + i * t->stride);
}

static inline struct attr_set **adv_attr(const struct refl_adv *t, struct refl_adv_slot *s)
{
	return (struct attr_set **)((unsigned char *)s + t->attr_off);
}

static size_t adv_hash(const struct rib_node *n, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)n * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20) & (cap - 1);
}

struct refl_adv_slot *refl_adv_find(struct refl_adv *t, const struct rib_node *n)
{
	if (!t->cap)
		return NULL;
	for (size_t i = adv_hash(n, t->cap);; i = (i + 1) & (t->cap - 1)) {
		struct refl_adv_slot *s = adv_at(t, i);
		if (!s->node)
			return NULL;
		if (s->node == n)
			return s;
	}
}

/* A free slot for node n (n not in the table), growing it when needed. */
static struct refl_adv_slot *adv_claim(struct refl_adv *t, struct rib_node *n);

#define ADV_PAGE        4096u
#define ADV_UNMAP_STEP  (1u << 20)       /* old slots given back this much at a time */

/* Bytes mapped for cap slots: whole pages. */
static size_t adv_map_len(const struct refl_adv *t, size_t cap)
{
	return (cap * t->stride + ADV_PAGE - 1) & ~(size_t)(ADV_PAGE - 1);
}

static void adv_unmap(void *p, size_t len)
{
	if (len && munmap(p, len) != 0)
		log_fatal("reflect: munmap of ADD-PATH table memory failed");
}

static void adv_grow(struct refl_adv *t)
{
	struct refl_adv old = *t;
	t->cap = old.cap ? old.cap * 2 : 4096;
	t->used = 0;
	void *m = mmap(NULL, adv_map_len(t, t->cap), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		log_fatal("reflect: out of memory (ADD-PATH table of %zu slots)", t->cap);
	t->slot = m;                         /* zero-filled */
	size_t gone = 0;                     /* bytes of the old array unmapped */
	for (size_t i = 0; i < old.cap; i++) {
		struct refl_adv_slot *o = adv_at(&old, i);
		if (o->node)
			memcpy(adv_claim(t, o->node), o, t->stride);   /* references move */
		/* slots 0..i are moved: the whole steps they fill can go (a prefix
		 * of the mapping, so the mapping only shrinks) */
		size_t end = ((i + 1) * t->stride) & ~(size_t)(ADV_UNMAP_STEP - 1);
		if (end > gone) {
			adv_unmap(old.slot + gone, end - gone);
			gone = end;
		}
	}
	if (old.slot)
		adv_unmap(old.slot + gone, adv_map_len(&old, old.cap) - gone);
	*t->bytes += (t->cap - old.cap) * t->stride;
}

static struct refl_adv_slot *adv_claim(struct refl_adv *t, struct rib_node *n)
{
	if ((t->used + 1) * 4 > t->cap * 3)
		adv_grow(t);
	size_t i = adv_hash(n, t->cap);
	while (adv_at(t, i)->node)
		i = (i + 1) & (t->cap - 1);
	t->used++;
	struct refl_adv_slot *s = adv_at(t, i);
	s->node = n;
	s->n = 0;
	s->spilled = 0;
	return s;
}

/* Is (n, id) in the spill? */
static bool adv_spill_has(const struct refl_adv *t, const struct rib_node *n, uint32_t id)
{
	for (size_t i = 0; i < t->nspill; i++)
		if (t->spill[i].node == n && t->spill[i].id == id)
			return true;
	return false;
}

static void adv_spill_add(struct refl_adv *t, struct rib_node *n, uint32_t id)
{
	if (t->nspill == t->capspill) {
		size_t cap = t->capspill ? 2 * t->capspill : 16;
		struct refl_adv_spill *v = realloc(t->spill, cap * sizeof(*v));
		if (!v)
			log_fatal("reflect: out of memory");
		t->spill = v;
		t->capspill = cap;
	}
	t->spill[t->nspill++] = (struct refl_adv_spill){ n, id };
	(*t->spilled)++;
}

/* Take node n's spilled ids out: up to max into ids[], returns how many
 * (the caller loops until 0). */
static unsigned adv_spill_take(struct refl_adv *t, const struct rib_node *n, uint32_t *ids,
			       unsigned max)
{
	unsigned k = 0;
	for (size_t i = 0; i < t->nspill && k < max;) {
		if (t->spill[i].node == n) {
			ids[k++] = t->spill[i].id;
			t->spill[i] = t->spill[--t->nspill];
		} else {
			i++;
		}
	}
	return k;
}

static void adv_release(struct refl_adv *t, struct refl_adv_slot *s)
{
	struct attr_set **attr = adv_attr(t, s);
	for (unsigned j = 0; j < s->n && j < t->attrcap; j++)
		if (attr[j])
			attr_unref(t->attrs, attr[j]);
	s->n = 0;
}

static void adv_del(struct refl_adv *t, struct refl_adv_slot *s)
{
	adv_release(t, s);
	if (s->spilled) {
		/* callers take the spill first (refl_adv_set); never leave an
		 * entry for a node that may be freed and its address reused */
		uint32_t tmp[16];
		while (adv_spill_take(t, s->node, tmp, 16))
			;
		s->spilled = 0;
	}
	size_t i = (size_t)((unsigned char *)s - t->slot) / t->stride;
	s->node = NULL;
	t->used--;
	for (size_t j = (i + 1) & (t->cap - 1); adv_at(t, j)->node; j = (j + 1) & (t->cap - 1)) {
		size_t h = adv_hash(adv_at(t, j)->node, t->cap);
		/* move j back to i if its home position is not in (i, j] */
		if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
			memcpy(adv_at(t, i), adv_at(t, j), t->stride);
			adv_at(t, j)->node = NULL;
			i = j;
		}
	}
}

void refl_adv_free(struct refl_adv *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (adv_at(t, i)->node)
			adv_release(t, adv_at(t, i));
	if (t->slot)
		adv_unmap(t->slot, adv_map_len(t, t->cap));
	*t->bytes -= t->cap * t->stride;
	t->slot = NULL;
	t->cap = t->used = 0;
	free(t->spill);
	t->spill = NULL;
	t->nspill = t->capspill = 0;
}

/* Set what node n's entry says: k ids (k <= idcap), attr[] references
 * handed over to the table (the old entry's are released). */
static void adv_put(struct refl_adv *t, struct rib_node *n, const uint32_t *ids,
		    struct attr_set *const *attr, uint8_t k)
{
	struct refl_adv_slot *s = refl_adv_find(t, n);
	if (!k) {
		if (s)
			adv_del(t, s);
		return;
	}
	if (k > t->attrcap)
		log_fatal("reflect: %u ADD-PATH ids for a table of %u per prefix", k, t->attrcap);
	if (s)
		adv_release(t, s);
	else
		s = adv_claim(t, n);
	if (s->spilled)
		log_fatal("reflect: ADD-PATH entry replaced with spilled ids not taken");
	s->n = k;
	memcpy(s->ids, ids, k * sizeof(*ids));
	memcpy(adv_attr(t, s), attr, k * sizeof(*attr));
}

static bool id_in(const uint32_t *ids, unsigned k, uint32_t id)
{
	for (unsigned i = 0; i < k; i++)
		if (ids[i] == id)
			return true;
	return false;
}

void refl_adv_set(struct refl_adv *t, struct rib_node *n, const uint32_t *ids,
		  struct attr_set *const *attr, uint8_t k, refl_adv_gone_fn *gone, void *ctx)
{
	struct refl_adv_slot *old = refl_adv_find(t, n);
	if (old) {
		for (unsigned j = 0; j < old->n; j++)
			if (!id_in(ids, k, old->ids[j]))
				gone(ctx, old->ids[j]);
		if (old->spilled) {
			/* attributes unknown, so a kept one was announced like
			 * any new id; the others go */
			uint32_t sp[16];
			unsigned m;
			while ((m = adv_spill_take(t, n, sp, 16)) > 0)
				for (unsigned j = 0; j < m; j++)
					if (!id_in(ids, k, sp[j]))
						gone(ctx, sp[j]);
			old->spilled = 0;
		}
	}
	adv_put(t, n, ids, attr, k);
}

void refl_adv_union(struct refl_adv *t, struct rib_node *n, const uint32_t *ids, uint8_t k)
{
	struct refl_adv_slot *s = refl_adv_find(t, n);
	for (unsigned i = 0; i < k; i++) {
		bool have = false;
		for (unsigned j = 0; s && j < s->n && !have; j++)
			have = s->ids[j] == ids[i];
		if (!have && s && s->spilled)
			have = adv_spill_has(t, n, ids[i]);
		if (have)
			continue;
		if (!s)
			s = adv_claim(t, n);
		if (s->n < t->idcap) {
			s->ids[s->n] = ids[i];
			if (s->n < t->attrcap)
				adv_attr(t, s)[s->n] = NULL;
			s->n++;
		} else {
			adv_spill_add(t, n, ids[i]);
			s->spilled = 1;
		}
	}
}

void refl_adv_add(struct refl_adv *t, struct rib_node *n, uint32_t id, struct attr_set *a)
{
	struct refl_adv_slot *s = refl_adv_find(t, n);
	for (unsigned j = 0; s && j < s->n; j++) {
		if (s->ids[j] != id)
			continue;
		if (j < t->attrcap) {
			struct attr_set **attr = adv_attr(t, s);
			if (attr[j])
				attr_unref(t->attrs, attr[j]);
			attr[j] = a;
		} else {
			attr_unref(t->attrs, a);
		}
		return;
	}
	if (s && s->spilled && adv_spill_has(t, n, id)) {
		attr_unref(t->attrs, a);
		return;
	}
	if (!s)
		s = adv_claim(t, n);
	if (s->n < t->attrcap) {
		s->ids[s->n] = id;
		adv_attr(t, s)[s->n++] = a;
		return;
	}
	attr_unref(t->attrs, a);
	refl_adv_union(t, n, &id, 1);
}
