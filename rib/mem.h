/*
 * mem.h - settling the process's heap into transparent huge pages, and
 * giving freeing-only threads an allocator cache.
 *
 * A full table is hundreds of MiB of tree nodes, path sets and attribute
 * sets spread over 4 KiB pages: a lookup or an update touches a handful of
 * them, each a TLB miss and a page walk.  Backing the heap with 2 MiB pages
 * while allocations happen (jemalloc's thp:always) makes every page fault
 * zero 2 MiB and costs the bulk load far more than it saves; so the heap is
 * allocated in small pages and, once the RIB has gone quiet, the ranges that
 * are (nearly) fully resident are collapsed into huge pages in place with
 * madvise(MADV_COLLAPSE) (Linux 6.1).  Nothing moves in the address space;
 * the kernel copies each range into a huge page and remaps it.
 *
 * Threads: any thread; it does not touch the allocator's or the RIB's data,
 * only the page tables (other threads' accesses to a range being collapsed
 * wait for that range, a few milliseconds).  Runs in the caller's thread
 * and takes 6-9 ms per 2 MiB range collapsed on the development VM (0.4-0.5 s
 * for 116-130 MiB, docs/BENCHMARKS.md stop 21): call it from a thread
 * with nothing else to do (the daemon's main thread).
 */
#ifndef RICOCHET_RIB_MEM_H
#define RICOCHET_RIB_MEM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A thread cache for a thread that frees what others allocated.  jemalloc
 * (5.3) leaves a thread that has only ever called free() in a minimal state
 * with no thread cache, so every one of its frees goes to the arena and takes
 * the bin's lock: 1.1 lock operations per free, against 0.13 once the thread
 * has allocated once (docs/BENCHMARKS.md, stop 26).  The RCU callback thread
 * (rib.c's reclaim_cb, attr.c's attr_free_rcu) is such a thread.  Call
 * mem_thread_cache() at the top of a callback that frees: after the first
 * call in a thread it is a thread-local test.
 */
void mem_thread_cache_init(void);

static inline void mem_thread_cache(void)
{
	static __thread bool ready;
	if (__builtin_expect(!ready, 0)) {
		ready = true;
		mem_thread_cache_init();
	}
}

struct mem_settle_result {
	uint64_t ranges;                 /* 2 MiB ranges of anonymous memory looked at */
	uint64_t sparse;                 /* of which skipped: under the residency floor */
	uint64_t refused;                /* of which the kernel did not collapse */
	uint64_t huge_before, huge_after;/* AnonHugePages of the process, bytes */
	uint64_t ns;                     /* time taken */
	int unsupported;                 /* errno of a kernel without MADV_COLLAPSE (or
					  * with huge pages off): nothing was done */
};

/*
 * Collapse every 2 MiB-aligned range of the process's private anonymous
 * read-write mappings of which at least min_resident_pct percent of the
 * pages are resident (so that memory the allocator returned to the kernel is
 * not made resident again: at most 100 - min_resident_pct percent more RSS
 * per range collapsed).  Ranges already backed by a huge page cost only the
 * residency check.  Returns 0, or -1 when MADV_COLLAPSE is unavailable
 * (r->unsupported set; a caller should stop asking).
 */
int mem_settle(unsigned min_resident_pct, struct mem_settle_result *r);

/* The floor the daemon uses: a range with 31 of its 512 pages returned to
 * the kernel is still collapsed (at most 6 % more RSS), one with more is
 * left alone. */
#define MEM_SETTLE_MIN_RESIDENT 94

/* The process's AnonHugePages (from /proc/self/smaps_rollup), bytes; 0 if
 * unknown. */
uint64_t mem_huge_bytes(void);

#endif
