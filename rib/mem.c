/*
 * mem.c - collapsing the resident heap into huge pages once the RIB is
 * quiet (see mem.h for why not at allocation time); mem_thread_cache_init.
 *
 * The mappings are read from /proc/self/maps once, then each 2 MiB-aligned
 * range inside a private anonymous read-write mapping is checked with
 * mincore() and, when resident enough, handed to madvise(MADV_COLLAPSE).
 * Mappings can change meanwhile (the allocator maps and unmaps on other
 * threads): a range that went away fails its mincore() or madvise() and is
 * skipped, and collapsing a range that was remapped in between only changes
 * how it is backed, never its contents.  So the scan needs no lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "rib/mem.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* x86-64's sizes: 4 KiB pages, 2 MiB huge pages (PMD) */
#define MEM_HUGE   (2ul << 20)
#define MEM_PAGES  (MEM_HUGE / 4096)

struct mem_span {
	uintptr_t lo, hi;
};

void mem_thread_cache_init(void)
{
	/* one allocation moves the thread's allocator state to the full one;
	 * volatile so that the compiler does not drop the pair */
	void *volatile p = malloc(1);
	free(p);
}

uint64_t mem_huge_bytes(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	uint64_t kb = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %" SCNu64 " kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* The 2 MiB-aligned parts of the private anonymous read-write mappings (the
 * allocator's arenas, [heap], thread stacks); caller frees *out. */
static size_t mem_spans(struct mem_span **out)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t n = 0, cap = 0;
	struct mem_span *v = NULL;
	/* a mapping bigger than the machine's memory is a reservation (the
	 * sanitizers' shadow memory: terabytes, nearly all of it never touched),
	 * not heap; scanning it would take millions of mincore() calls */
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	*out = NULL;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b, ino;
		char perm[8], path[64] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %63s", &a, &b, perm, &ino, path) < 4)
			continue;
		if (perm[0] != 'r' || perm[1] != 'w' || perm[3] != 'p' || ino != 0)
			continue;
		if (path[0] && strcmp(path, "[heap]") != 0)
			continue;        /* [stack], [vvar], ... and named memfds */
		if (b - a > ram)
			continue;
		uintptr_t lo = (a + MEM_HUGE - 1) & ~(MEM_HUGE - 1), hi = b & ~(MEM_HUGE - 1);
		if (hi <= lo)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct mem_span *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				log_fatal("mem: out of memory reading /proc/self/maps");
			v = nv;
		}
		v[n++] = (struct mem_span){ lo, hi };
	}
	fclose(f);
	*out = v;
	return n;
}

int mem_settle(unsigned min_resident_pct, struct mem_settle_result *r)
{
	struct mem_span *sp;
	unsigned char vec[MEM_PAGES];
	uint64_t ok = 0, einval = 0;
	unsigned floor = (unsigned)((uint64_t)MEM_PAGES * (min_resident_pct > 100 ? 100 : min_resident_pct) / 100);

	memset(r, 0, sizeof(*r));
	uint64_t t0 = log_now_ns();
	r->huge_before = mem_huge_bytes();
	size_t n = mem_spans(&sp);
	for (size_t i = 0; i < n; i++) {
		for (uintptr_t x = sp[i].lo; x < sp[i].hi; x += MEM_HUGE) {
			r->ranges++;
			if (mincore((void *)x, MEM_HUGE, vec) != 0) {
				r->refused++;    /* unmapped since the maps were read */
				continue;
			}
			unsigned res = 0;
			for (unsigned k = 0; k < MEM_PAGES; k++)
				res += vec[k] & 1;
			if (res < floor || res == 0) {
				r->sparse++;
				continue;
			}
			if (madvise((void *)x, MEM_HUGE, MADV_COLLAPSE) == 0) {
				ok++;
			} else {
				r->refused++;
				if (errno == EINVAL)
					einval++;
			}
		}
	}
	free(sp);
	r->huge_after = mem_huge_bytes();
	r->ns = log_now_ns() - t0;
	/* a kernel without MADV_COLLAPSE (before 6.1) refuses every range with
	 * EINVAL; so does one with transparent huge pages set to "never" */
	if (!ok && einval && einval == r->refused) {
		r->unsupported = EINVAL;
		return -1;
	}
	return 0;
}
