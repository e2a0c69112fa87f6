/*
 * bm.h - the C side of the Google Benchmark shim.
 *
 * Each module's micro-benchmarks are plain C (bench/micro/bm_<module>.c) and
 * describe themselves with a table of struct bm_case; shim.cc registers every
 * case with Google Benchmark.  This keeps C++ out of the code under test: the
 * shim is the only C++ file and it only calls through these function pointers.
 *
 * A case: setup(arg) builds its state once per benchmark (not timed); run()
 * does one timed unit of work and returns how many items (prefixes, paths,
 * lookups) it processed, which the shim reports as items per second;
 * teardown() frees the state.  run() is called repeatedly, so it should do a
 * batch big enough (>= ~10 us) that the call itself is noise.
 */
#ifndef RICOCHET_BENCH_BM_H
#define RICOCHET_BENCH_BM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bm_case {
	const char *name;
	void *(*setup)(int64_t arg);
	uint64_t (*run)(void *state);
	void (*teardown)(void *state);
	int64_t args[8];         /* 0-terminated list of args; none = run once with 0 */
	int threads;             /* >1: run() called from that many threads at once */
};

/* Stop and restart the calling thread's clock inside run(), around work that
 * is not what the case measures (swapping in a fresh table).  Each thread of a
 * threaded case pauses its own clock; call both from every thread. */
void bm_pause(void);
void bm_resume(void);
/* One-way time in ns for a cache line written on CPU 0 to be seen on CPU 1,
 * measured now (bm_xfer.c); 0 if it cannot be measured (one CPU, pinning
 * refused, or the helper thread did not run within a second). */
double bm_xfer_ns(void);
/* Every bm_<module>.c exports one table, NULL-name terminated. */
extern const struct bm_case bm_msg_cases[];
extern const struct bm_case bm_rib_cases[];

#ifdef __cplusplus
}
#endif
#endif
