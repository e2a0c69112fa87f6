/*
 * xfer.c - ricochet-xfer: print what handing one cache line from CPU 0 to
 * CPU 1 costs right now (bench/micro/bm_xfer.c), in ns, one way.
 *
 * The scenario runner (bench/run-scenarios.py) runs it before and after
 * every run, so that each convergence time carries the placement the host
 * gave the vCPUs while it ran: on the development VM a line moves between
 * the two in ~35-60 ns when they share an L3 and ~180-200 ns when they do
 * not, and every hand-over between the daemon's threads pays that
 * (docs/BENCHMARKS.md, stops 31 and 32).  Prints 0 when it cannot measure
 * (one CPU, pinning refused).
 */
#include <stdio.h>

#include "bench/micro/bm.h"

int main(void)
{
	printf("%.1f\n", bm_xfer_ns());
	return 0;
}
