/*
 * bm_xfer.c - what handing one cache line from CPU 0 to CPU 1 costs right
 * now, reported beside every micro-benchmark result (shim.cc, "xfer_ns").
 *
 * Why: on the development VM the host moves its two vCPUs between cores
 * that share an L3 (a line goes from one to the other in ~35-60 ns) and
 * cores that do not (~180-200 ns), several times a minute (docs/
 * BENCHMARKS.md, stop 31).  Any case where two threads touch the same
 * lines - two writers on one RIB, a writer and the RCU callback thread
 * that frees what it allocated - runs at two speeds accordingly, so a
 * figure without the placement it ran under cannot be compared with
 * another.  Measured before and after each case ("xfer0_ns", "xfer_ns"),
 * in the calling thread and one helper thread, pinned to CPUs 0 and 1, both
 * pinnings undone before returning.  Six blocks of 4,000 round trips; the
 * fastest block after the first (a warm-up) is the figure, since other
 * threads can only add to it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include "bench/micro/bm.h"
#include "core/log.h"

#define XFER_BLOCKS 6                /* the first is a warm-up; the best of the rest counts */
#define XFER_ROUNDS 4000             /* round trips per block: ~0.3-1.6 ms */

static struct {
	volatile uint64_t v __attribute__((aligned(64)));
	volatile int stop __attribute__((aligned(64)));
} xf;

static int pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

/* The helper answers each odd value with the next even one. */
static void *xfer_pong(void *arg)
{
	(void)arg;
	if (pin(1))
		return NULL;
	for (uint64_t i = 1; i <= (uint64_t)XFER_BLOCKS * XFER_ROUNDS && !xf.stop; i++) {
		while (xf.v != 2 * i - 1)
			if (xf.stop)
				return NULL;
		xf.v = 2 * i;
	}
	return NULL;
}

double bm_xfer_ns(void)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	cpu_set_t old;
	if (pthread_getaffinity_np(pthread_self(), sizeof(old), &old) || pin(0))
		return 0;
	xf.v = 0;
	xf.stop = 0;
	pthread_t t;
	double ns = 0;
	if (pthread_create(&t, NULL, xfer_pong, NULL) == 0) {
		/* bounded: a helper that cannot run on CPU 1 makes this give up */
		uint64_t limit = log_now_ns() + 1000000000ull, best = UINT64_MAX, i = 1;
		bool ok = true;
		for (unsigned b = 0; b < XFER_BLOCKS && ok; b++) {
			uint64_t t0 = log_now_ns();
			for (unsigned r = 0; r < XFER_ROUNDS && ok; r++, i++) {
				xf.v = 2 * i - 1;
				/* the clock is read once per 4096 looks, not in the spin */
				for (unsigned k = 1; xf.v != 2 * i; k++)
					if (!(k & 4095) && log_now_ns() > limit)
						break;
				ok = xf.v == 2 * i;
			}
			uint64_t d = log_now_ns() - t0;
			if (ok && b > 0 && d < best)
				best = d;
		}
		xf.stop = 1;
		pthread_join(t, NULL);
		if (ok)
			ns = (double)best / (2.0 * XFER_ROUNDS);
	}
	pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
	return ns;
}
