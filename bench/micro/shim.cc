// shim.cc - registers the C micro-benchmark tables (bm.h) with Google Benchmark.
// The only C++ in Ricochet: it owns nothing but the glue between the two APIs.
#include <benchmark/benchmark.h>
#include <string>
#include <sys/resource.h>
#include "bench/micro/bm.h"

namespace {

thread_local benchmark::State *tl_state;    // the calling thread's, while run() runs

long minor_faults()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

void run_case(benchmark::State &st, const bm_case *c, int64_t arg)
{
	static void *state;                 // shared by the threads of one case
	static double xfer0;
	if (st.thread_index() == 0) {
		xfer0 = bm_xfer_ns();
		state = c->setup ? c->setup(arg) : nullptr;
	}
	uint64_t items = 0;
	long flt0 = st.thread_index() == 0 ? minor_faults() : 0;
	tl_state = &st;
	for (auto _ : st)
		items += c->run(state);
	tl_state = nullptr;
	st.SetItemsProcessed(static_cast<int64_t>(items));
	// The process's page faults per iteration, all threads: where a case
	// writes fresh memory, what a first touch costs on the machine is part of
	// its time (on a VM whose host takes freed pages back, much of it).
	if (st.thread_index() == 0) {
		st.counters["minflt"] = benchmark::Counter(static_cast<double>(minor_faults() - flt0),
							   benchmark::Counter::kAvgIterations);
		if (c->teardown)
			c->teardown(state);
		// Where the host had the CPUs before and after (bm_xfer.c): cases
		// with threads that share lines run at two speeds on the
		// development VM, and it moves them within a minute.
		st.counters["xfer0_ns"] = xfer0;
		st.counters["xfer_ns"] = bm_xfer_ns();
	}
}

void register_table(const bm_case *t)
{
	for (const bm_case *c = t; c->name; c++) {
		benchmark::internal::Benchmark *b;
		if (c->args[0]) {
			b = benchmark::RegisterBenchmark(c->name, [c](benchmark::State &st) {
				run_case(st, c, st.range(0));
			});
			for (int i = 0; i < 8 && c->args[i]; i++)
				b->Arg(c->args[i]);
		} else {
			b = benchmark::RegisterBenchmark(c->name, run_case, c, int64_t(0));
		}
		if (c->threads > 1)
			b->Threads(c->threads);
		b->UseRealTime();
	}
}

} // namespace
extern "C" void bm_pause(void)
{
	if (tl_state)
		tl_state->PauseTiming();
}
extern "C" void bm_resume(void)
{
	if (tl_state)
		tl_state->ResumeTiming();
}

int main(int argc, char **argv)
{
	register_table(bm_msg_cases);
	register_table(bm_rib_cases);
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
