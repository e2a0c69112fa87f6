/*
 * test_mem.c - rib/mem.c: a resident range is collapsed into a huge page with
 * its contents intact, a sparse one is left sparse, and a kernel that
 * cannot collapse is reported as such (not as success).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "rib/mem.h"

#define HUGE (2ul << 20)

/* Transparent huge pages as the kernel offers them: "never" means
 * MADV_COLLAPSE must be refused; anything else, honoured. */
static bool thp_never(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return true;     /* no THP support at all */
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "[never]") != NULL;
}

/* 4 huge-page-aligned ranges of private anonymous memory */
static uint8_t *map_ranges(void **base)
{
	size_t len = 5 * HUGE;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	*base = p;
	return (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(HUGE - 1));
}

/* AnonHugePages of the mapping that starts at base, bytes */
static uint64_t vma_huge(const void *base)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	uint64_t kb = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo == (uintptr_t)base;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %lu kB", &lo) == 1) {
			kb = lo;
			break;
		}
	}
	fclose(f);
	return kb * 1024;
}

static unsigned resident_pages(const uint8_t *p)
{
	unsigned char vec[HUGE / 4096];
	assert_int_equal(mincore((void *)p, HUGE, vec), 0);
	unsigned n = 0;
	for (size_t i = 0; i < sizeof(vec); i++)
		n += vec[i] & 1;
	return n;
}

static void test_settle(void **state)
{
	(void)state;
	void *base;
	uint8_t *a = map_ranges(&base);
	/* ranges 0-2 fully written; range 3 only its first quarter */
	for (size_t i = 0; i < 3 * HUGE; i++)
		a[i] = (uint8_t)(i * 7 + (i >> 12));
	memset(a + 3 * HUGE, 0x5a, HUGE / 4);
	struct mem_settle_result r;
	int rc = mem_settle(MEM_SETTLE_MIN_RESIDENT, &r);
	/* the kernel may refuse a range for want of a free huge page right then
	 * (EAGAIN, ENOMEM); the daemon simply tries at its next settle */
	for (int again = 0; again < 3 && rc == 0 && vma_huge(base) < 3 * HUGE; again++)
		rc = mem_settle(MEM_SETTLE_MIN_RESIDENT, &r);
	if (thp_never()) {
		assert_int_equal(rc, -1);
		assert_int_not_equal(r.unsupported, 0);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(r.unsupported, 0);
		/* our three full ranges are huge pages now (with THP "always"
		 * some may have been from the start), the sparse one is not */
		assert_int_equal(vma_huge(base), 3 * HUGE);
		assert_true(r.huge_after >= 3 * HUGE);
		assert_true(r.sparse >= 1);
		assert_true(r.ranges >= 4);
	}
	/* contents unchanged either way */
	for (size_t i = 0; i < 3 * HUGE; i++)
		if (a[i] != (uint8_t)(i * 7 + (i >> 12)))
			fail_msg("byte %zu changed by the collapse", i);
	for (size_t i = 0; i < HUGE / 4; i++)
		assert_int_equal(a[3 * HUGE + i], 0x5a);
	/* the sparse range was not made resident */
	assert_int_equal(resident_pages(a + 3 * HUGE), (unsigned)(HUGE / 4 / 4096));
	/* a second pass finds the same ranges already huge: nothing new */
	if (!thp_never()) {
		struct mem_settle_result r2;
		assert_int_equal(mem_settle(MEM_SETTLE_MIN_RESIDENT, &r2), 0);
		assert_true(r2.huge_after >= 3 * HUGE);
		assert_int_equal(vma_huge(base), 3 * HUGE);
	}
	munmap(base, 5 * HUGE);
}

static void test_huge_bytes_reads(void **state)
{
	(void)state;
	/* smaps_rollup exists on every kernel this runs on (4.14+); the value
	 * is a multiple of the huge page size */
	assert_int_equal(mem_huge_bytes() % HUGE, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settle),
		cmocka_unit_test(test_huge_bytes_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
