/*
 * ricochetd.c - main(): command line, configuration, signals, and handing
 * over to the daemon (io/daemon.c).  Signals are blocked in every thread and
 * taken synchronously by the main thread, so no handler ever runs inside a
 * data-path thread.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/daemon.h"

/*
 * jemalloc tuning, read by jemalloc at start: purge freed pages from its own
 * background thread and not within a data-path thread's free() (a table
 * withdrawal frees millions of objects; synchronous purging showed up as
 * madvise/TLB-shootdown time in the reflection thread's profile).  Dirty
 * pages are returned after about a second, and straight away (MADV_DONTNEED),
 * not through the lazy MADV_FREE state, whose pages still count in the RSS
 * until the kernel wants them: a table withdrawal frees while the output and
 * reclaim batches allocate, and with 10 s decays the peak RSS of S2 and S3
 * was reached then, 6-24 MiB above the full table's (docs/BENCHMARKS.md,
 * "Peak RSS").
 */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ricochetd [-c FILE] [--check] [--daemon] [--syslog] [-d]\n"
		"  -c, --config FILE  YAML configuration (default: the built-in demo configuration)\n"
		"      --check        validate the configuration and exit\n"
		"      --daemon       detach and run in the background\n"
		"      --syslog       log to syslog instead of stderr\n"
		"  -d, --debug        log level debug\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "daemon", no_argument, NULL, 'D' },       { "syslog", no_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },        { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool check = false, detach = false, use_syslog = false, debug = false;
	int c;
	while ((c = getopt_long(argc, argv, "c:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'k': check = true; break;
		case 'D': detach = true; break;
		case 's': use_syslog = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	char err[1024];
	struct cfg *cfg = path ? cfg_load(path, err, sizeof(err))
			       : cfg_load_string(cfg_default_yaml, "<built-in>", err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "ricochetd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK (%zu peers, %zu ranges)\n", path ? path : "<built-in>",
		       cfg->n_peers, cfg->n_ranges);
		cfg_free(cfg);
		return 0;
	}
	log_init("ricochetd", use_syslog, debug ? LOG_LVL_DEBUG : cfg->log_level);
	if (detach && daemon(0, 0) < 0) {
		perror("daemon");
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	rcu_register_thread();
	/* liburcu's call_rcu worker (RIB and attribute reclaim, hash table
	 * resizes) is started on first use by whichever thread calls first and
	 * would carry that thread's name ("io-0"), folding its work into an I/O
	 * thread's in top -H and perf: start it here, under its own name */
	pthread_setname_np(get_call_rcu_thread(get_default_call_rcu_data()), "rcu-reclaim");

	static struct daemon d;
	if (daemon_start(&d, cfg, path) < 0)
		return 1;
	daemon_ctl_register(&d);
	daemon_run(&d);
	daemon_stop(&d);
	log_info("ricochetd stopped");
	/* every session is closed and every thread of ours joined; skip exit-time
	 * destructors, which could race liburcu's and jemalloc's own threads */
	_exit(0);
}
