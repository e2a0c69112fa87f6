/*
 * main.c - ricochet-load: command line, run context and the phases
 * (connect, announce, churn, kill-feeder, withdraw), each with a timeout.
 *
 * Threads: this is the main thread.  It generates the routes, starts the
 * feeder thread and the monitor threads (peer.c; by default one per 8
 * monitors up to one per CPU, each monitor owned by one of them), pre-encodes
 * once the sessions are up (the negotiated message size is known then), and
 * steers the workers with commands.  Phase times are taken by the workers
 * themselves (first byte out on the feeder thread, table complete on a
 * monitor's thread), so the main thread's 20 ms polling only costs wall time,
 * never precision.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/load/load.h"
#include "core/log.h"

#define TICK_US 20000

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

void load_ctx_error(struct load_ctx *ctx, const char *fmt, ...)
{
	if (ctx->nerrors >= sizeof(ctx->errors) / sizeof(ctx->errors[0]))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->errors[ctx->nerrors++], sizeof(ctx->errors[0]), fmt, ap);
	va_end(ap);
}

unsigned load_mon_paths(const struct load_ctx *ctx, const struct load_mon *m)
{
	const struct msg_session *s = &m->peer->sess;
	if (ctx->o.addpath > 1 && (s->addpath_rx[BGP_FAM_IPV4] || s->addpath_rx[BGP_FAM_IPV6]))
		return ctx->o.addpath;
	return 1;
}

uint64_t load_expected(const struct load_ctx *ctx, int dead_feeder, unsigned paths)
{
	unsigned live = 0;
	for (unsigned f = 0; f < ctx->o.feeders; f++)
		live += !ctx->feeders[f].killed && (int)f != dead_feeder;
	uint64_t per = (uint64_t)ctx->o.routes + ctx->o.v6_routes;
	if (!ctx->o.shared)
		return per * live;
	return per * (live < paths ? live : paths);
}

/* ---------------------------------------------------------------- CLI */

static void usage(FILE *out)
{
	fprintf(out,
"usage: ricochet-load [options]\n"
"Drive a BGP speaker with P feeder peers and watch it with M monitor peers.\n"
"\n"
"Target and sessions:\n"
"  --target ADDR[:PORT]     speaker to connect to (default 127.0.0.1:179; [v6]:port)\n"
"  --asn N                  the target's AS (default 65515)\n"
"  --feeder-asn N           feeders' AS (default: --asn, iBGP)\n"
"  --monitor-asn N          monitors' AS (default: --asn, iBGP)\n"
"  --feeders P              feeder sessions (default 1), from 127.0.1.x (127.0.3.x, ...)\n"
"  --monitors M             monitor sessions (default 1), from 127.0.2.x (127.0.4.x, ...)\n"
"  --feeder-base A, --monitor-base A   first source address of each role\n"
"  --hold S                 hold time to offer (default 90)\n"
"  --ext-msg                offer extended messages (RFC 8654)\n"
"  --addpath N              monitors ask for ADD-PATH receive, expect up to N paths\n"
"Routes:\n"
"  --routes R               IPv4 prefixes per feeder (default 10000)\n"
"  --v6-routes R            IPv6 prefixes per feeder (default 0)\n"
"  --shared                 all feeders announce the same prefixes (own attributes)\n"
"  --prefixes-per-attr X    prefixes per attribute set (default 7)\n"
"  --seed S                 generator seed (default 1)\n"
"Phases (announce always runs):\n"
"  --churn-rate F           re-announce F prefixes/s in total ...\n"
"  --churn-seconds T        ... for T seconds (default 10), measure latency\n"
"  --churn-attrs MODE       stamped (default): each churned route carries its send time in a\n"
"                           community, so nearly every change is a new attribute set;\n"
"                           recurring: two attribute variants per set, alternating, send times\n"
"                           kept here (memory of the target stays flat under churn)\n"
"  --churn-prefixes K       churn only each feeder's first K routes (a fixed working set;\n"
"                           default: all of them)\n"
"  --churn-restore          after the churn, re-announce every route with its original\n"
"                           attributes and hold that table --restore-settle S seconds\n"
"                           (default 5): the target's memory with the same table as before\n"
"  --churn-settle S         hold the loaded table S seconds before the churn starts (default\n"
"                           0): memory measured then is the table's, not the load's buffers\n"
"  --establish-settle S     once every session is up, wait S seconds before announcing\n"
"                           (default 0): the target's dumps of its table to the new sessions\n"
"                           are over before the first route arrives\n"
"  --kill-feeder            close feeder 0, time until its routes are gone\n"
"  --stall-monitor S        monitor 0 reads nothing for S seconds once established (a slow\n"
"                           reader; it still sends KEEPALIVEs), then catches up\n"
"  --withdraw               feeders withdraw everything, time until monitors are empty\n"
"  --timeout S              per phase (default 120)\n"
"  --connect-burst N        sessions opening at once per generator thread (default 4): more\n"
"                           overflow a small listen backlog (BIRD's is 8), and a handshake\n"
"                           the target dropped can hold a session until its hold timer\n"
"  --monitor-threads N      threads the monitors are spread over (default: one per 8\n"
"                           monitors, at most one per CPU)\n"
"Checks and output:\n"
"  --expect-rr/--no-expect-rr   require ORIGINATOR_ID and CLUSTER_LIST (default: on for iBGP)\n"
"  --no-verify-attrs        do not compare attributes and next hops byte for byte\n"
"  --next-hop-base A        feeder i announces next hop A+i (IPv6: 2001:db8:ffff::A+i) instead\n"
"                           of its loopback source (FRR and GoBGP reject loopback next hops)\n"
"  --wait-eor               convergence also needs an End-of-RIB after the announce\n"
"  --json FILE              every figure as JSON\n"
"  --timeline FILE          't_seconds prefixes_at_slowest_monitor' samples\n"
"  --mrt FILE               replay an MRT file (TABLE_DUMP_V2 or BGP4MP) instead of the\n"
"                           generated table; no other phase runs\n"
"  --mrt-speed X            BGP4MP timing: original spacing / X (default 1; 0: no pauses)\n"
"  -q, --quiet   -v, --verbose   --self-test   -h, --help\n");
}

static int parse_u32(const char *s, uint32_t *v, uint32_t min, uint32_t max)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end || end == s || x < min || x > max)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int parse_double(const char *s, double *v, double min, double max)
{
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (errno || *end || end == s || x < min || x > max)
		return -1;
	*v = x;
	return 0;
}

static int parse_target(struct load_opts *o, const char *s)
{
	char host[128];
	unsigned port = BGP_PORT;
	snprintf(o->target_str, sizeof(o->target_str), "%s", s);
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || (size_t)(e - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(e - s - 1));
		host[e - s - 1] = 0;
		if (e[1] == ':')
			port = (unsigned)atoi(e + 2);
	} else {
		snprintf(host, sizeof(host), "%s", s);
		char *c = strchr(host, ':');
		if (c && !strchr(c + 1, ':')) {
			*c = 0;
			port = (unsigned)atoi(c + 1);
		}
	}
	if (port == 0 || port > 65535)
		return -1;
	memset(&o->target, 0, sizeof(o->target));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&o->target;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o->target;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		o->target_len = sizeof(*s4);
		o->target_v6 = false;
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		o->target_len = sizeof(*s6);
		o->target_v6 = true;
	} else {
		return -1;
	}
	return 0;
}

enum {
	OPT_TARGET = 256, OPT_ASN, OPT_FASN, OPT_MASN, OPT_FEEDERS, OPT_MONITORS, OPT_FBASE, OPT_MBASE,
	OPT_HOLD, OPT_EXTMSG, OPT_ADDPATH, OPT_ROUTES, OPT_V6ROUTES, OPT_SHARED, OPT_PPA, OPT_SEED,
	OPT_CHURN_RATE, OPT_CHURN_SECONDS, OPT_CHURN_ATTRS, OPT_CHURN_PREFIXES, OPT_CHURN_RESTORE, OPT_RESTORE_SETTLE, OPT_CHURN_SETTLE, OPT_ESTABLISH_SETTLE, OPT_KILL, OPT_WITHDRAW, OPT_TIMEOUT, OPT_CONNECT_BURST, OPT_EXPECT_RR,
	OPT_NO_EXPECT_RR, OPT_NO_VERIFY, OPT_WAIT_EOR, OPT_JSON, OPT_TIMELINE, OPT_SELFTEST,
	OPT_NHBASE,
	OPT_MRT, OPT_MRT_SPEED, OPT_STALL, OPT_MON_THREADS,
};

static int parse_args(struct load_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "asn", required_argument, NULL, OPT_ASN },
		{ "feeder-asn", required_argument, NULL, OPT_FASN },
		{ "monitor-asn", required_argument, NULL, OPT_MASN },
		{ "feeders", required_argument, NULL, OPT_FEEDERS },
		{ "monitors", required_argument, NULL, OPT_MONITORS },
		{ "feeder-base", required_argument, NULL, OPT_FBASE },
		{ "monitor-base", required_argument, NULL, OPT_MBASE },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "ext-msg", no_argument, NULL, OPT_EXTMSG },
		{ "addpath", required_argument, NULL, OPT_ADDPATH },
		{ "routes", required_argument, NULL, OPT_ROUTES },
		{ "v6-routes", required_argument, NULL, OPT_V6ROUTES },
		{ "shared", no_argument, NULL, OPT_SHARED },
		{ "prefixes-per-attr", required_argument, NULL, OPT_PPA },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "churn-rate", required_argument, NULL, OPT_CHURN_RATE },
		{ "churn-seconds", required_argument, NULL, OPT_CHURN_SECONDS },
		{ "churn-attrs", required_argument, NULL, OPT_CHURN_ATTRS },
		{ "churn-prefixes", required_argument, NULL, OPT_CHURN_PREFIXES },
		{ "churn-restore", no_argument, NULL, OPT_CHURN_RESTORE },
		{ "restore-settle", required_argument, NULL, OPT_RESTORE_SETTLE },
		{ "churn-settle", required_argument, NULL, OPT_CHURN_SETTLE },
		{ "establish-settle", required_argument, NULL, OPT_ESTABLISH_SETTLE },
		{ "kill-feeder", no_argument, NULL, OPT_KILL },
		{ "withdraw", no_argument, NULL, OPT_WITHDRAW },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "connect-burst", required_argument, NULL, OPT_CONNECT_BURST },
		{ "monitor-threads", required_argument, NULL, OPT_MON_THREADS },
		{ "expect-rr", no_argument, NULL, OPT_EXPECT_RR },
		{ "no-expect-rr", no_argument, NULL, OPT_NO_EXPECT_RR },
		{ "no-verify-attrs", no_argument, NULL, OPT_NO_VERIFY },
		{ "next-hop-base", required_argument, NULL, OPT_NHBASE },
		{ "wait-eor", no_argument, NULL, OPT_WAIT_EOR },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "timeline", required_argument, NULL, OPT_TIMELINE },
		{ "self-test", no_argument, NULL, OPT_SELFTEST },
		{ "mrt", required_argument, NULL, OPT_MRT },
		{ "mrt-speed", required_argument, NULL, OPT_MRT_SPEED },
		{ "stall-monitor", required_argument, NULL, OPT_STALL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int expect_rr = -1, c;
	bool fasn = false, masn = false;
	uint32_t u;
	memset(o, 0, sizeof(*o));
	parse_target(o, "127.0.0.1:179");
	o->asn = BGP_DEFAULT_ASN;
	o->feeders = o->monitors = 1;
	o->routes = 10000;
	o->prefixes_per_attr = 7;
	o->seed = 1;
	o->verify_attrs = true;
	o->churn_seconds = 10;
	o->restore_settle = 5;
	o->connect_burst = 4;
	o->timeout = 120;
	o->hold = BGP_DEFAULT_HOLD;
	o->mrt_speed = 1;
	inet_pton(AF_INET, "127.0.1.1", &o->feeder_base);
	inet_pton(AF_INET, "127.0.2.1", &o->monitor_base);
	while ((c = getopt_long(argc, argv, "qvh", lo, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case OPT_TARGET: bad = parse_target(o, optarg); break;
		case OPT_ASN: bad = parse_u32(optarg, &o->asn, 1, UINT32_MAX); break;
		case OPT_FASN: bad = parse_u32(optarg, &o->feeder_asn, 1, UINT32_MAX); fasn = true; break;
		case OPT_MASN: bad = parse_u32(optarg, &o->monitor_asn, 1, UINT32_MAX); masn = true; break;
		case OPT_FEEDERS: bad = parse_u32(optarg, &u, 1, LOAD_MAX_PEERS); o->feeders = u; break;
		case OPT_MONITORS: bad = parse_u32(optarg, &u, 1, LOAD_MAX_PEERS); o->monitors = u; break;
		case OPT_FBASE: bad = inet_pton(AF_INET, optarg, &o->feeder_base) != 1; break;
		case OPT_MBASE: bad = inet_pton(AF_INET, optarg, &o->monitor_base) != 1; break;
		case OPT_HOLD:
			bad = parse_u32(optarg, &u, 0, 65535) || u == 1 || u == 2;
			o->hold = (uint16_t)u;
			break;
		case OPT_EXTMSG: o->ext_msg = true; break;
		case OPT_ADDPATH: bad = parse_u32(optarg, &u, 0, 64); o->addpath = u; break;
		case OPT_ROUTES: bad = parse_u32(optarg, &o->routes, 0, 50000000); break;
		case OPT_V6ROUTES: bad = parse_u32(optarg, &o->v6_routes, 0, 50000000); break;
		case OPT_SHARED: o->shared = true; break;
		case OPT_PPA: bad = parse_double(optarg, &o->prefixes_per_attr, 1, 1e9); break;
		case OPT_SEED: bad = parse_u32(optarg, &u, 0, UINT32_MAX); o->seed = u; break;
		case OPT_CHURN_RATE: bad = parse_double(optarg, &o->churn_rate, 0, 1e7); break;
		case OPT_CHURN_SECONDS: bad = parse_double(optarg, &o->churn_seconds, 0.1, 3600); break;
		case OPT_CHURN_ATTRS:
			if (strcmp(optarg, "stamped") == 0)
				o->churn_recurring = false;
			else if (strcmp(optarg, "recurring") == 0)
				o->churn_recurring = true;
			else
				bad = true;
			break;
		case OPT_CHURN_PREFIXES: bad = parse_u32(optarg, &o->churn_prefixes, 1, UINT32_MAX); break;
		case OPT_CHURN_RESTORE: o->churn_restore = true; break;
		case OPT_RESTORE_SETTLE: bad = parse_double(optarg, &o->restore_settle, 0, 3600); break;
		case OPT_CHURN_SETTLE: bad = parse_double(optarg, &o->churn_settle, 0, 3600); break;
		case OPT_ESTABLISH_SETTLE: bad = parse_double(optarg, &o->establish_settle, 0, 3600); break;
		case OPT_KILL: o->kill_feeder = true; break;
		case OPT_WITHDRAW: o->withdraw = true; break;
		case OPT_TIMEOUT: bad = parse_double(optarg, &o->timeout, 0.1, 86400); break;
		case OPT_CONNECT_BURST: bad = parse_u32(optarg, &o->connect_burst, 1, 100000); break;
		case OPT_MON_THREADS: bad = parse_u32(optarg, &u, 1, LOAD_MAX_MW); o->monitor_threads = u; break;
		case OPT_EXPECT_RR: expect_rr = 1; break;
		case OPT_NO_EXPECT_RR: expect_rr = 0; break;
		case OPT_NO_VERIFY: o->verify_attrs = false; break;
		case OPT_NHBASE:
			bad = inet_pton(AF_INET, optarg, &o->nh_base) != 1;
			o->nh_base_set = true;
			break;
		case OPT_WAIT_EOR: o->wait_eor = true; break;
		case OPT_JSON: o->json = optarg; break;
		case OPT_TIMELINE: o->timeline = optarg; break;
		case OPT_SELFTEST: o->self_test = true; break;
		case OPT_MRT: o->mrt = optarg; break;
		case OPT_MRT_SPEED: bad = parse_double(optarg, &o->mrt_speed, 0, 1e9); break;
		case OPT_STALL: bad = parse_double(optarg, &o->stall_monitor, 0, 3600); break;
		case 'q': o->quiet = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
		if (bad) {
			fprintf(stderr, "ricochet-load: bad value for --%s: '%s'\n",
				c >= OPT_TARGET ? lo[c - OPT_TARGET].name : "?", optarg ? optarg : "");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ricochet-load: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!fasn)
		o->feeder_asn = o->asn;
	if (!masn)
		o->monitor_asn = o->asn;
	o->expect_rr = expect_rr >= 0 ? expect_rr == 1 : o->monitor_asn == o->asn;
	if (o->mrt) {
		/* the replay replaces the generated table (kept to one route: unused) */
		if (o->churn_rate > 0 || o->kill_feeder || o->withdraw || o->feeders > 64) {
			fprintf(stderr, "ricochet-load: --mrt runs alone (no churn, kill, withdraw; <= 64 feeders)\n");
			return -1;
		}
		o->routes = 1;
		o->v6_routes = 1;        /* so that feeders negotiate IPv6 too */
	}
	if (o->routes == 0 && o->v6_routes == 0) {
		fprintf(stderr, "ricochet-load: nothing to announce (--routes 0 and no --v6-routes)\n");
		return -1;
	}
	if (o->kill_feeder && o->feeders < 2 && o->withdraw) {
		/* fine: the withdraw phase then has nothing left to withdraw */
	}
	if (o->feeders >= 0xFFFF) {
		fprintf(stderr, "ricochet-load: at most 65534 feeders\n");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- phases */

static unsigned sessions_up(struct load_ctx *ctx)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ctx->o.feeders; i++)
		n += ctx->feeders[i].state == LOAD_PS_ESTABLISHED;
	for (unsigned i = 0; i < ctx->o.monitors; i++)
		n += ctx->monitors[i].state == LOAD_PS_ESTABLISHED;
	return n;
}

/* A peer that should be up went down: the phase cannot succeed. */
static const struct load_peer *peer_failed(struct load_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->o.feeders; i++)
		if (__atomic_load_n(&ctx->feeders[i].failed, __ATOMIC_ACQUIRE))
			return &ctx->feeders[i];
	for (unsigned i = 0; i < ctx->o.monitors; i++)
		if (__atomic_load_n(&ctx->monitors[i].failed, __ATOMIC_ACQUIRE))
			return &ctx->monitors[i];
	return NULL;
}

static void tick(struct load_ctx *ctx, const char *phase, uint64_t *last_progress)
{
	uint64_t now = log_now_ns();
	load_timeline_add(ctx, now);
	if (now - *last_progress >= 200000000ull) {
		*last_progress = now;
		load_report_progress(ctx, phase, now, false);
	}
	usleep(TICK_US);
}

/* The monitors' counters summed (relaxed reads: a phase's figures are taken
 * when the next one starts, or after the threads are joined). */
static void mon_sums(const struct load_ctx *ctx, struct load_mon_sums *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < ctx->o.monitors; i++) {
		const struct load_mon *m = &ctx->mons[i];
		s->bytes += atomic_load_explicit(&m->peer->bytes_in, memory_order_relaxed);
		s->updates += atomic_load_explicit(&m->updates, memory_order_relaxed);
		s->announces += atomic_load_explicit(&m->announces, memory_order_relaxed);
		s->withdraws += atomic_load_explicit(&m->withdraws, memory_order_relaxed);
		s->dup += atomic_load_explicit(&m->dup_announces, memory_order_relaxed);
		s->replaced += atomic_load_explicit(&m->replaced, memory_order_relaxed);
		s->absent += atomic_load_explicit(&m->absent_withdraws, memory_order_relaxed);
	}
}

/* The running phase's monitor figures end here: everything its changes made
 * the target send counts, up to the next phase (or the end of the run). */
static void phase_close_sums(struct load_ctx *ctx)
{
	if (ctx->cur_ph < 0)
		return;
	struct load_phase_res *r = &ctx->ph[ctx->cur_ph];
	struct load_mon_sums now;
	mon_sums(ctx, &now);
	r->mon = (struct load_mon_sums){
		now.bytes - r->mon_start.bytes, now.updates - r->mon_start.updates,
		now.announces - r->mon_start.announces, now.withdraws - r->mon_start.withdraws,
		now.dup - r->mon_start.dup, now.replaced - r->mon_start.replaced,
		now.absent - r->mon_start.absent,
	};
	ctx->cur_ph = -1;
}

static struct load_phase_res *phase_begin(struct load_ctx *ctx, int ph, const char *name)
{
	struct load_phase_res *r = &ctx->ph[ph];
	phase_close_sums(ctx);
	mon_sums(ctx, &r->mon_start);
	ctx->cur_ph = ph;
	r->name = name;
	r->ran = true;
	r->start_s = (double)(log_now_ns() - ctx->start_ns) / 1e9;
	load_report_break();
	if (!ctx->o.quiet)
		fprintf(stderr, "ricochet-load: phase %s\n", name);
	return r;
}

static bool hold(struct load_ctx *ctx, struct load_phase_res *r, double seconds, const char *what);

static bool phase_connect(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 0, "connect");
	uint64_t t0 = log_now_ns(), deadline = t0 + (uint64_t)(ctx->o.timeout * 1e9), lp = 0;
	unsigned want = ctx->o.feeders + ctx->o.monitors;
	while (sessions_up(ctx) < want) {
		const struct load_peer *bad = peer_failed(ctx);
		if (bad) {
			snprintf(r->note, sizeof(r->note), "%.40s: %.80s", bad->name, bad->err);
			return false;
		}
		if (interrupted || log_now_ns() > deadline) {
			unsigned i;
			const struct load_peer *p = NULL;
			for (i = 0; i < ctx->o.feeders && !p; i++)
				if (ctx->feeders[i].state != LOAD_PS_ESTABLISHED)
					p = &ctx->feeders[i];
			for (i = 0; i < ctx->o.monitors && !p; i++)
				if (ctx->monitors[i].state != LOAD_PS_ESTABLISHED)
					p = &ctx->monitors[i];
			snprintf(r->note, sizeof(r->note), "%u/%u up; %.40s: %.60s", sessions_up(ctx), want,
				 p ? p->name : "?", p && p->err[0] ? p->err : "no answer");
			return false;
		}
		tick(ctx, "connect", &lp);
	}
	r->seconds = (double)(log_now_ns() - t0) / 1e9;
	/* not timed: the connect phase ends when the last session is up */
	if (ctx->o.establish_settle > 0 && !hold(ctx, r, ctx->o.establish_settle, NULL))
		return false;
	r->ok = true;
	snprintf(r->note, sizeof(r->note), "%u sessions", want);
	return true;
}

/* Pre-encode each feeder's streams with what its session negotiated. */
static void encode_all(struct load_ctx *ctx, double *secs, uint64_t *bytes, uint64_t *msgs)
{
	uint64_t t0 = log_now_ns();
	*bytes = *msgs = 0;
	for (unsigned f = 0; f < ctx->o.feeders; f++) {
		struct load_peer *p = &ctx->feeders[f];
		size_t max = p->sess.max_msg ? p->sess.max_msg : BGP_MAX_MSG;
		ctx->ann_msgs[f] = load_encode_announce(&ctx->rt, f, max, &p->nh4, &p->nh6,
							ctx->o.routes > 0, ctx->o.v6_routes > 0, &ctx->ann[f]);
		ctx->ann_prefixes[f] = ctx->rt.f[f].n;
		if (ctx->o.withdraw)
			load_encode_withdraw(&ctx->rt, f, max, &ctx->wdr[f]);
		*bytes += ctx->ann[f].len;
		*msgs += ctx->ann_msgs[f];
	}
	*secs = (double)(log_now_ns() - t0) / 1e9;
}

static void set_target(struct load_ctx *ctx, bool empty, int dead)
{
	unsigned ap = ctx->o.addpath > 1 ? ctx->o.addpath : 1;
	uint64_t expect = empty ? 0 : load_expected(ctx, dead, ap);
	ctx->target.expect = expect;
	ctx->target.expect_single = empty ? 0 : load_expected(ctx, dead, 1);
	ctx->target.dead_feeder = dead;
	ctx->target.need_eor = ctx->o.wait_eor && dead < 0 && expect > 0;
	ctx->target.since_ns = 0;   /* a reflector sends its EoR once, at session start */
	if (!load_workers_cmd(ctx->mw, ctx->n_mw, LOAD_CMD_TARGET, 10))
		log_fatal("ricochet-load: monitor thread does not answer");
}

/* Wait until every monitor has reported the target complete; returns the time
 * from t0 to the last monitor, or a negative value on failure. */
static double wait_done(struct load_ctx *ctx, const char *phase, struct load_phase_res *r)
{
	uint64_t deadline = log_now_ns() + (uint64_t)(ctx->o.timeout * 1e9), lp = 0;
	for (;;) {
		uint64_t last = 0;
		bool all = true;
		for (unsigned i = 0; i < ctx->o.monitors && all; i++) {
			uint64_t d = atomic_load(&ctx->mons[i].done_ns);
			if (!d)
				all = false;
			else if (d > last)
				last = d;
		}
		if (all) {
			uint64_t t0 = atomic_load(&ctx->t0_ns);
			load_report_progress(ctx, phase, log_now_ns(), true);
			return last > t0 ? (double)(last - t0) / 1e9 : 0.0;
		}
		const struct load_peer *bad = peer_failed(ctx);
		if (bad) {
			snprintf(r->note, sizeof(r->note), "%.40s: %.80s", bad->name, bad->err);
			break;
		}
		if (interrupted) {
			snprintf(r->note, sizeof(r->note), "interrupted");
			break;
		}
		if (log_now_ns() > deadline) {
			uint64_t fast, slow = load_slowest(ctx, &fast);
			snprintf(r->note, sizeof(r->note), "timeout: slowest monitor holds %llu of %llu",
				 (unsigned long long)slow, (unsigned long long)ctx->target.expect);
			break;
		}
		tick(ctx, phase, &lp);
	}
	load_report_progress(ctx, phase, log_now_ns(), true);
	return -1;
}

/* Verify every monitor's table; true if nothing is wrong. */
static bool verify(struct load_ctx *ctx, char *note, size_t nl)
{
	if (!load_workers_cmd(ctx->mw, ctx->n_mw, LOAD_CMD_VERIFY, 60))
		log_fatal("ricochet-load: monitor thread does not answer");
	struct load_verify t = { 0 };
	for (unsigned i = 0; i < ctx->o.monitors; i++) {
		const struct load_verify *v = &ctx->mons[i].ver;
		t.missing += v->missing;
		t.extra += v->extra;
		t.wrong_feeder += v->wrong_feeder;
		t.stale_gen += v->stale_gen;
		t.bad_attrs += v->bad_attrs;
		t.no_rr += v->no_rr;
		t.bad_nh += v->bad_nh;
		t.dead_feeder_paths += v->dead_feeder_paths;
	}
	uint64_t bad = t.missing + t.extra + t.wrong_feeder + t.stale_gen + t.bad_attrs + t.no_rr +
		       t.bad_nh + t.dead_feeder_paths;
	if (bad && note)
		snprintf(note, nl,
			 "verify: missing %llu extra %llu wrong-feeder %llu stale %llu bad-attrs %llu "
			 "no-rr %llu bad-nh %llu",
			 (unsigned long long)t.missing, (unsigned long long)t.extra,
			 (unsigned long long)t.wrong_feeder, (unsigned long long)t.stale_gen,
			 (unsigned long long)t.bad_attrs, (unsigned long long)t.no_rr,
			 (unsigned long long)t.bad_nh);
	return bad == 0;
}

/* "... 60000 paths (30000 without ADD-PATH), verified" */
static void target_note(struct load_ctx *ctx, struct load_phase_res *r, const char *what)
{
	unsigned with = 0;
	for (unsigned i = 0; i < ctx->o.monitors; i++)
		with += load_mon_paths(ctx, &ctx->mons[i]) > 1;
	if (with == ctx->o.monitors || ctx->target.expect == ctx->target.expect_single)
		snprintf(r->note, sizeof(r->note), "%s %llu paths, verified", what,
			 (unsigned long long)ctx->target.expect);
	else if (with == 0)
		snprintf(r->note, sizeof(r->note), "%s %llu paths (ADD-PATH not negotiated), verified", what,
			 (unsigned long long)ctx->target.expect_single);
	else
		snprintf(r->note, sizeof(r->note), "%s %llu paths (%llu without ADD-PATH), verified", what,
			 (unsigned long long)ctx->target.expect, (unsigned long long)ctx->target.expect_single);
}

static bool phase_announce(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 1, "announce");
	set_target(ctx, false, -1);
	if (!load_worker_cmd(&ctx->fw, LOAD_CMD_ANNOUNCE, 10))
		log_fatal("ricochet-load: feeder thread does not answer");
	double s = wait_done(ctx, "announce", r);
	r->prefixes = load_mon_paths(ctx, &ctx->mons[0]) > 1 ? ctx->target.expect : ctx->target.expect_single;
	if (s < 0)
		return false;
	r->seconds = s;
	r->ok = verify(ctx, r->note, sizeof(r->note));
	if (r->ok)
		target_note(ctx, r, "every monitor holds");
	return r->ok;
}

/* Keep the sessions for `seconds` (a live progress line named `what`, if
 * any); false with the reason in r->note if a peer fails meanwhile. */
static bool hold(struct load_ctx *ctx, struct load_phase_res *r, double seconds, const char *what)
{
	uint64_t end = log_now_ns() + (uint64_t)(seconds * 1e9), lp = 0;
	while (log_now_ns() < end && !interrupted) {
		const struct load_peer *bad = peer_failed(ctx);
		if (bad) {
			snprintf(r->note, sizeof(r->note), "%.40s: %.80s", bad->name, bad->err);
			return false;
		}
		if (what)
			tick(ctx, what, &lp);
		else
			usleep(100000);
	}
	return true;
}

/* Let what was sent last propagate: poll the verification until it is clean
 * (the phase's timeout; false with the reason in r->note otherwise). */
static bool settle_verified(struct load_ctx *ctx, struct load_phase_res *r)
{
	uint64_t deadline = log_now_ns() + (uint64_t)(ctx->o.timeout * 1e9);
	usleep(100000);
	for (;;) {
		if (verify(ctx, r->note, sizeof(r->note)))
			return true;
		if (log_now_ns() > deadline || interrupted || peer_failed(ctx))
			return false;
		usleep(200000);
	}
}

static bool phase_churn(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 2, "churn");
	if (ctx->o.churn_settle > 0) {
		/* the loaded table alone first, so that memory sampled now is the
		 * table's and not the load's send and receive buffers; the phase
		 * starts when the churn does */
		if (!hold(ctx, r, ctx->o.churn_settle, NULL))
			return false;
		mon_sums(ctx, &r->mon_start);
		r->start_s = (double)(log_now_ns() - ctx->start_ns) / 1e9;
	}
	if (!load_worker_cmd(&ctx->fw, LOAD_CMD_CHURN, 10))
		log_fatal("ricochet-load: feeder thread does not answer");
	if (!hold(ctx, r, ctx->o.churn_seconds, "churn"))
		return false;
	if (!settle_verified(ctx, r))
		return false;
	r->seconds = (double)(log_now_ns() - atomic_load(&ctx->t0_ns)) / 1e9;
	r->prefixes = atomic_load(&ctx->churn_sent);
	r->ok = true;
	snprintf(r->note, sizeof(r->note), "%llu re-announcements, settled and verified",
		 (unsigned long long)r->prefixes);
	return true;
}

/*
 * After the churn: every feeder sends its original announcements again, so
 * the target ends up holding exactly the table it held before the churn.
 * Memory measured now, against memory before the churn, is what churn left
 * behind (leaks, fragmentation) rather than the new attribute sets the churn
 * itself brought.  The table is held --restore-settle seconds for that.
 */
static bool phase_restore(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 6, "restore");
	if (!load_worker_cmd(&ctx->fw, LOAD_CMD_RESTORE, 10))
		log_fatal("ricochet-load: feeder thread does not answer");
	if (!settle_verified(ctx, r))
		return false;
	r->seconds = (double)(log_now_ns() - atomic_load(&ctx->t0_ns)) / 1e9;
	r->prefixes = ctx->rt.npfx;
	r->end_s = (double)(log_now_ns() - ctx->start_ns) / 1e9;
	if (!hold(ctx, r, ctx->o.restore_settle, NULL))
		return false;
	r->ok = true;
	snprintf(r->note, sizeof(r->note), "original table back, verified; held %.1f s",
		 ctx->o.restore_settle);
	return true;
}

static bool phase_kill(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 3, "kill-feeder");
	ctx->kill_idx = 0;
	set_target(ctx, false, 0);
	if (!load_worker_cmd(&ctx->fw, LOAD_CMD_KILL, 10))
		log_fatal("ricochet-load: feeder thread does not answer");
	double s = wait_done(ctx, "kill-feeder", r);
	r->prefixes = ctx->rt.f[0].n;
	if (s < 0)
		return false;
	r->seconds = s;
	r->ok = verify(ctx, r->note, sizeof(r->note));
	if (r->ok)
		target_note(ctx, r, "feeder 0 gone everywhere, left:");
	return r->ok;
}

static bool phase_withdraw(struct load_ctx *ctx)
{
	struct load_phase_res *r = phase_begin(ctx, 4, "withdraw");
	ctx->withdrawn = true;
	set_target(ctx, true, -1);
	if (!load_worker_cmd(&ctx->fw, LOAD_CMD_WITHDRAW, 10))
		log_fatal("ricochet-load: feeder thread does not answer");
	double s = wait_done(ctx, "withdraw", r);
	r->prefixes = load_expected(ctx, -1, 1);
	if (s < 0)
		return false;
	r->seconds = s;
	r->ok = verify(ctx, r->note, sizeof(r->note));
	if (r->ok)
		snprintf(r->note, sizeof(r->note), "every monitor empty, verified");
	return r->ok;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static struct load_ctx ctx;
	ctx.cur_ph = -1;
	ctx.start_ns = log_now_ns();        /* phases' start_s / end_s count from here */
	if (parse_args(&ctx.o, argc, argv) < 0)
		return 2;
	log_init("ricochet-load", false, ctx.o.verbose ? LOG_LVL_DEBUG : LOG_LVL_WARN);
	if (ctx.o.self_test)
		return load_routes_selftest();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	const struct load_opts *o = &ctx.o;

	struct load_gen_params gp = {
		.feeders = o->feeders, .r4 = o->routes, .r6 = o->v6_routes, .shared = o->shared,
		.ibgp = o->feeder_asn == o->asn, .feeder_asn = o->feeder_asn,
		.prefixes_per_attr = o->prefixes_per_attr, .seed = o->seed,
	};
	load_routes_generate(&ctx.rt, &gp);
	if (!o->quiet)
		fprintf(stderr, "ricochet-load: %u prefixes, %u attribute sets per feeder, generated in %.2f s\n",
			ctx.rt.npfx, ctx.rt.f[0].nattr, (double)ctx.rt.gen_ns / 1e9);

	ctx.feeders = calloc(o->feeders, sizeof(*ctx.feeders));
	ctx.monitors = calloc(o->monitors, sizeof(*ctx.monitors));
	ctx.mons = calloc(o->monitors, sizeof(*ctx.mons));
	ctx.ann = calloc(o->feeders, sizeof(*ctx.ann));
	ctx.wdr = calloc(o->feeders, sizeof(*ctx.wdr));
	ctx.ann_prefixes = calloc(o->feeders, sizeof(uint64_t));
	ctx.ann_msgs = calloc(o->feeders, sizeof(size_t));
	if (!ctx.feeders || !ctx.monitors || !ctx.mons || !ctx.ann || !ctx.wdr || !ctx.ann_prefixes ||
	    !ctx.ann_msgs)
		log_fatal("ricochet-load: out of memory");
	load_worker_init(&ctx.fw, &ctx, LOAD_FEEDER);
	/*
	 * Monitors spread round-robin over the monitor threads: a monitor's
	 * table, memo and socket belong to one thread (monitor.c).  Default: one
	 * thread per LOAD_MON_PER_THREAD monitors, at most one per CPU.  With
	 * many monitors the monitor thread was the run's bottleneck (S4, 1000
	 * monitors: 1.68 -> 1.12 s; S3, 100: 6.4 -> 4.7 s, 2-core machine); with
	 * a few (B4, 4) its work is small and a second thread only takes CPU
	 * from the target (362 -> 408 ms).  docs/BENCHMARKS.md has the runs.
	 */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = (o->monitors + LOAD_MON_PER_THREAD - 1) / LOAD_MON_PER_THREAD;
	ctx.n_mw = o->monitor_threads ? o->monitor_threads : want < (unsigned)(ncpu > 0 ? ncpu : 1) ? want : (unsigned)ncpu;
	if (ctx.n_mw == 0)
		ctx.n_mw = 1;
	if (ctx.n_mw > LOAD_MAX_MW)
		ctx.n_mw = LOAD_MAX_MW;
	if (ctx.n_mw > o->monitors)
		ctx.n_mw = o->monitors;
	ctx.mw = calloc(ctx.n_mw, sizeof(*ctx.mw));
	if (!ctx.mw)
		log_fatal("ricochet-load: out of memory");
	for (unsigned t = 0; t < ctx.n_mw; t++) {
		load_worker_init(&ctx.mw[t], &ctx, LOAD_MONITOR);
		ctx.mw[t].peers = calloc(o->monitors / ctx.n_mw + 1, sizeof(void *));
		if (!ctx.mw[t].peers)
			log_fatal("ricochet-load: out of memory");
	}
	ctx.fw.peers = calloc(o->feeders, sizeof(void *));
	for (unsigned i = 0; i < o->feeders; i++) {
		load_peer_init(&ctx.feeders[i], &ctx, LOAD_FEEDER, i);
		ctx.fw.peers[ctx.fw.npeers++] = &ctx.feeders[i];
	}
	/* the monitors receive the same UPDATEs: each monitor thread decodes
	 * each block once (monitor.c) */
	struct load_memo *memo[LOAD_MAX_MW];
	uint64_t sent = (uint64_t)ctx.rt.npfx * (ctx.rt.shared ? o->feeders : 1);
	for (unsigned t = 0; t < ctx.n_mw; t++) {
		unsigned mine = (o->monitors - t + ctx.n_mw - 1) / ctx.n_mw;   /* i % n_mw == t */
		memo[t] = load_memo_new(mine > 1, sent);
	}
	for (unsigned i = 0; i < o->monitors; i++) {
		struct load_worker *w = &ctx.mw[i % ctx.n_mw];
		load_peer_init(&ctx.monitors[i], &ctx, LOAD_MONITOR, i);
		load_mon_init(&ctx.mons[i], &ctx, &ctx.monitors[i]);
		ctx.mons[i].memo = memo[i % ctx.n_mw];
		ctx.mons[i].w = w;
		w->peers[w->npeers++] = &ctx.monitors[i];
	}
	ctx.expect_full = load_expected(&ctx, -1, o->addpath > 1 ? o->addpath : 1);
	ctx.ph[0].name = "connect";
	ctx.ph[1].name = "announce";
	ctx.ph[2].name = "churn";
	ctx.ph[3].name = "kill-feeder";
	ctx.ph[4].name = "withdraw";
	ctx.ph[6].name = "restore";
	if (pthread_create(&ctx.fw.thread, NULL, load_worker_main, &ctx.fw))
		log_fatal("ricochet-load: cannot start threads");
	for (unsigned t = 0; t < ctx.n_mw; t++)
		if (pthread_create(&ctx.mw[t].thread, NULL, load_worker_main, &ctx.mw[t]))
			log_fatal("ricochet-load: cannot start threads");

	bool ok = phase_connect(&ctx);
	if (ok && o->mrt) {
		ok = load_mrt_phase(&ctx);       /* bench/load/mrt.c */
	} else if (ok) {
		double es;
		uint64_t eb, em;
		encode_all(&ctx, &es, &eb, &em);
		load_report_break();
		if (!o->quiet)
			fprintf(stderr, "ricochet-load: pre-encoded %.1f MB in %llu messages (%.2f s)\n",
				(double)eb / 1e6, (unsigned long long)em, es);
		snprintf(ctx.ph[5].note, sizeof(ctx.ph[5].note), "%llu bytes %llu messages",
			 (unsigned long long)eb, (unsigned long long)em);
		ctx.ph[5].name = "encode";
		ctx.ph[5].seconds = es;
		ctx.ph[5].prefixes = ctx.rt.npfx;
		ctx.ph[5].ok = true;
		ctx.ph[5].ran = true;
		ctx.tl_n = 0;
		ok = phase_announce(&ctx);
	}
	if (ok && o->churn_rate > 0) {
		ok = phase_churn(&ctx);
		ctx.ph[2].end_s = (double)(log_now_ns() - ctx.start_ns) / 1e9;
		if (ok && o->churn_restore)
			ok = phase_restore(&ctx);
	}
	if (ok && o->kill_feeder)
		ok = phase_kill(&ctx);
	if (ok && o->withdraw)
		ok = phase_withdraw(&ctx);

	/* final figures need the monitor thread once more, then everything stops */
	if (ok)
		load_workers_cmd(ctx.mw, ctx.n_mw, LOAD_CMD_VERIFY, 60);
	atomic_store(&ctx.stop, 1);
	load_worker_kick(&ctx.fw);
	for (unsigned t = 0; t < ctx.n_mw; t++)
		load_worker_kick(&ctx.mw[t]);
	pthread_join(ctx.fw.thread, NULL);
	for (unsigned t = 0; t < ctx.n_mw; t++)
		pthread_join(ctx.mw[t].thread, NULL);
	phase_close_sums(&ctx);
	if (o->verbose) {
		uint64_t hits = 0, misses = 0;
		for (unsigned t = 0; t < ctx.n_mw; t++) {
			uint64_t h, m;
			load_memo_stats(memo[t], &h, &m);
			hits += h;
			misses += m;
		}
		log_debug("ricochet-load: NLRI blocks decoded %llu, reused %llu",
			  (unsigned long long)misses, (unsigned long long)hits);
	}
	for (unsigned i = 0; i < o->feeders; i++)
		if (ctx.feeders[i].fd >= 0)
			load_peer_close(&ctx.feeders[i], BGP_ERR_CEASE, BGP_CEASE_ADMIN_SHUTDOWN, NULL);
	for (unsigned i = 0; i < o->monitors; i++)
		if (ctx.monitors[i].fd >= 0)
			load_peer_close(&ctx.monitors[i], BGP_ERR_CEASE, BGP_CEASE_ADMIN_SHUTDOWN, NULL);
	ctx.exit_code = ok ? 0 : 1;
	if (interrupted)
		load_ctx_error(&ctx, "interrupted");
	load_report_summary(&ctx, stdout);
	if (o->json && load_report_json(&ctx, o->json) < 0)
		ctx.exit_code = 1;
	if (o->timeline && load_report_timeline(&ctx, o->timeline) < 0)
		ctx.exit_code = 1;
	return ctx.exit_code;
}
