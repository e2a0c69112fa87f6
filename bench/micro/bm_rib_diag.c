/*
 * bm_rib_diag.c - ricochet-rib-diag: where the time of bm_rib.c's insert
 * cases goes, per writer thread, for a fixed amount of work.
 *
 * Google Benchmark reports one rate; this runs the same run() function
 * (bm_rib.c is included, so the cases cannot drift apart) for a fixed number
 * of paths in 1 or 2 threads and splits each thread's timed wall time (wall
 * time minus bm_pause..bm_resume, as Google Benchmark counts it) into CPU
 * time, time waiting in the per-table barrier, and the rest (descheduled:
 * the call_rcu thread or any other process ran).  It also reports the CPU
 * the other threads of the process used meanwhile (liburcu's call_rcu
 * thread, which frees the replaced path sets), the TLB shootdowns of the
 * machine (/proc/interrupts) and the page faults of each writer.  Stop 12 in
 * docs/BENCHMARKS.md is the analysis it was written for.
 *
 * Usage: ricochet-rib-diag threads prefixes paths [mode [warm]]
 *   threads 1 or 2; mode 0 one rib_update per path (insert_v4, default),
 *   1 UPDATE-shaped single calls, 2 rib_update_batch, 3 rib_update_multi;
 *   warm 1: the same writer threads do the same work once untimed first and
 *   it is freed, so that the timed round reuses a heap (their allocator
 *   arenas) whose pages are already faulted in, as Google Benchmark's
 *   repetitions do.  A fresh heap's page faults are taken by two writers in
 *   parallel and flatter a two-writer ratio (docs/BENCHMARKS.md, stop 32).
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static double diag_now(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* bm_rib.c's table barrier, timed: the first wait of each pair is the timed
 * one (the writer waits for the slower one), the second is paused. */
static __thread double diag_bwait;
static __thread unsigned long diag_bcalls;

static int diag_barrier_wait(pthread_barrier_t *b)
{
	double t = diag_now(CLOCK_MONOTONIC);
	int rc = pthread_barrier_wait(b);
	if (!(diag_bcalls++ & 1))
		diag_bwait += diag_now(CLOCK_MONOTONIC) - t;
	return rc;
}

#define pthread_barrier_wait diag_barrier_wait
#include "bench/micro/bm_rib.c"
#undef pthread_barrier_wait

static __thread double diag_pw0, diag_pc0, diag_pw, diag_pc;

void bm_pause(void)
{
	diag_pw0 = diag_now(CLOCK_MONOTONIC);
	diag_pc0 = diag_now(CLOCK_THREAD_CPUTIME_ID);
}

void bm_resume(void)
{
	diag_pw += diag_now(CLOCK_MONOTONIC) - diag_pw0;
	diag_pc += diag_now(CLOCK_THREAD_CPUTIME_ID) - diag_pc0;
}

struct diag_res {
	double wall, cpu, pwall, pcpu, bwait;
	unsigned long tables;
	long minflt;
};

static void *diag_state;
static long diag_iters;
static enum bm_ins_mode diag_mode;
static pthread_barrier_t diag_go;
static bool diag_warm;

/* One thread's share of a round: the same work timed or not. */
static void diag_work(void)
{
	for (long i = 0; i < diag_iters; i++)
		run_insert_mode(diag_state, diag_mode);
}

static void *diag_thread(void *arg)
{
	struct diag_res *r = arg;
	struct rusage a, b;
	if (diag_warm) {
		/* the untimed round; main frees its tables between the waits */
		pthread_barrier_wait(&diag_go);
		diag_work();
		pthread_barrier_wait(&diag_go);
		diag_pw = diag_pc = diag_bwait = 0;
		diag_bcalls = 0;
	}
	pthread_barrier_wait(&diag_go);
	getrusage(RUSAGE_THREAD, &a);
	double w0 = diag_now(CLOCK_MONOTONIC), c0 = diag_now(CLOCK_THREAD_CPUTIME_ID);
	diag_work();
	r->wall = diag_now(CLOCK_MONOTONIC) - w0;
	r->cpu = diag_now(CLOCK_THREAD_CPUTIME_ID) - c0;
	getrusage(RUSAGE_THREAD, &b);
	r->pwall = diag_pw;
	r->pcpu = diag_pc;
	r->bwait = diag_bwait;
	r->tables = diag_bcalls / 2;
	r->minflt = b.ru_minflt - a.ru_minflt;
	pthread_barrier_wait(&diag_go);
	return NULL;
}

static long diag_tlb(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char l[1024];
	long sum = 0;
	if (!f)
		return -1;
	while (fgets(l, sizeof(l), f)) {
		char *p = strstr(l, "TLB:");
		if (!p)
			continue;
		p += 4;
		for (;;) {
			char *e;
			long v = strtol(p, &e, 10);
			if (e == p)
				break;
			sum += v;
			p = e;
		}
	}
	fclose(f);
	return sum;
}

static double diag_selfcpu(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 +
	       (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s threads prefixes paths [mode [warm]]\n", argv[0]);
		return 2;
	}
	int nt = atoi(argv[1]);
	long n = atol(argv[2]), total = atol(argv[3]);
	int mode = argc > 4 ? atoi(argv[4]) : BM_INS_SINGLE;
	if (nt < 1 || nt > 2 || n < 16 || total < BM_BATCH || mode < 0 || mode >= BM_INS_MODES) {
		fprintf(stderr, "threads 1..2, prefixes >= 16, paths >= %d, mode 0..%d\n", BM_BATCH,
			BM_INS_MODES - 1);
		return 2;
	}
	diag_warm = argc > 5 && atoi(argv[5]) != 0;
	diag_mode = (enum bm_ins_mode)mode;
	diag_iters = total / BM_BATCH / nt;
	diag_state = bm_setup(BGP_FAM_IPV4, (size_t)n, (unsigned)nt);
	pthread_barrier_init(&diag_go, NULL, (unsigned)nt + 1);
	pthread_t t[2];
	struct diag_res r[2];
	for (int i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, diag_thread, &r[i]);
	if (diag_warm) {
		pthread_barrier_wait(&diag_go);
		pthread_barrier_wait(&diag_go);
		bm_teardown(diag_state);
		diag_state = bm_setup(BGP_FAM_IPV4, (size_t)n, (unsigned)nt);
	}
	double s0 = diag_selfcpu(), m0 = diag_now(CLOCK_THREAD_CPUTIME_ID);
	long tlb0 = diag_tlb();
	double w0 = diag_now(CLOCK_MONOTONIC);
	pthread_barrier_wait(&diag_go);
	pthread_barrier_wait(&diag_go);
	double w1 = diag_now(CLOCK_MONOTONIC);
	long tlb1 = diag_tlb();
	double s1 = diag_selfcpu(), m1 = diag_now(CLOCK_THREAD_CPUTIME_ID);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	double timed = 0, tcpu = 0, wcpu = 0;
	long paths = diag_iters * BM_BATCH * nt;
	for (int i = 0; i < nt; i++) {
		double tw = r[i].wall - r[i].pwall, tc = r[i].cpu - r[i].pcpu;
		timed += tw / nt;
		tcpu += tc;
		wcpu += r[i].cpu;
		printf("  writer %d: timed %.3f s = cpu %.3f + table barrier %.3f (%lu tables)"
		       " + descheduled %.3f; paused %.3f s (cpu %.3f); page faults %ld\n",
		       i, tw, tc, r[i].bwait, r[i].tables, tw - tc - r[i].bwait, r[i].pwall,
		       r[i].pcpu, r[i].minflt);
	}
	double other = (s1 - s0) - wcpu - (m1 - m0);
	printf("threads %d, %ld prefixes, %ld paths: %.2f M paths/s as Google Benchmark counts it;"
	       " writers' timed cpu %.1f ns/path; other threads (call_rcu) cpu %.3f s = %.1f ns/path;"
	       " TLB shootdowns %ld; wall %.3f s\n",
	       nt, n, paths, (double)paths / timed / 1e6, tcpu / (double)paths * 1e9, other,
	       other / (double)paths * 1e9, tlb0 < 0 ? -1 : tlb1 - tlb0, w1 - w0);
	return 0;
}
