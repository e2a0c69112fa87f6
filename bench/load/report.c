/*
 * report.c - ricochet-load's output: the live progress line (TTY only), the
 * final summary table, the JSON document and the gnuplot timeline.
 *
 * Threads: main thread only.  While the workers run it reads their atomics
 * (session state, byte counters, table sizes); the detailed per-monitor
 * figures are read after the threads have been joined.
 *
 * Why like this: operators read the table, scripts read the JSON, and the
 * timeline ("t prefixes_at_slowest_monitor") is the picture of convergence.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/load/load.h"
#include "core/log.h"

static uint64_t tl_t0;
static bool progress_open;     /* a progress line without its newline is on screen */

void load_report_break(void)
{
	if (progress_open) {
		fputc('\n', stdout);
		fflush(stdout);
		progress_open = false;
	}
}

uint64_t load_slowest(struct load_ctx *ctx, uint64_t *fastest)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < ctx->o.monitors; i++) {
		uint64_t v = atomic_load_explicit(&ctx->mons[i].filled, memory_order_relaxed);
		if (v < lo)
			lo = v;
		if (v > hi)
			hi = v;
	}
	if (fastest)
		*fastest = hi;
	return lo == UINT64_MAX ? 0 : lo;
}

void load_timeline_add(struct load_ctx *ctx, uint64_t now)
{
	uint64_t t0 = atomic_load(&ctx->t0_ns);
	if (!t0)
		return;
	if (!tl_t0)
		tl_t0 = t0;
	if (ctx->tl_n == ctx->tl_cap) {
		size_t cap = ctx->tl_cap ? ctx->tl_cap * 2 : 1024;
		if (cap > 4000000)
			return;      /* bounded: ~22 hours of 20 ms samples */
		double *t = realloc(ctx->tl_t, cap * sizeof(double));
		uint64_t *v = realloc(ctx->tl_v, cap * sizeof(uint64_t));
		if (!t || !v)
			log_fatal("ricochet-load: out of memory (timeline)");
		ctx->tl_t = t;
		ctx->tl_v = v;
		ctx->tl_cap = cap;
	}
	ctx->tl_t[ctx->tl_n] = now > tl_t0 ? (double)(now - tl_t0) / 1e9 : 0;
	ctx->tl_v[ctx->tl_n] = load_slowest(ctx, NULL);
	ctx->tl_n++;
}

/* The monitor threads' CPU time, summed (read after they are joined). */
static void mon_cpu(const struct load_ctx *ctx, double *user, double *sys)
{
	*user = *sys = 0;
	for (unsigned i = 0; i < ctx->n_mw; i++) {
		*user += ctx->mw[i].cpu_user_s;
		*sys += ctx->mw[i].cpu_sys_s;
	}
}

static const char *human(char *buf, size_t len, double v)
{
	if (v >= 1e9)
		snprintf(buf, len, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
	return buf;
}

static uint64_t prefixes_sent(struct load_ctx *ctx)
{
	double s = 0;
	for (unsigned f = 0; f < ctx->o.feeders; f++) {
		struct load_peer *p = &ctx->feeders[f];
		const struct load_bytes *b = ctx->withdrawn ? &ctx->wdr[f] : &ctx->ann[f];
		if (!b->len)
			continue;
		uint64_t pos = atomic_load_explicit(&p->bulk_pos, memory_order_relaxed);
		s += (double)pos / (double)b->len * (double)ctx->ann_prefixes[f];
	}
	return (uint64_t)s;
}

void load_report_progress(struct load_ctx *ctx, const char *phase, uint64_t now, bool final)
{
	static uint64_t last_ns, last_v;
	if (ctx->o.quiet || !isatty(STDOUT_FILENO))
		return;
	unsigned up = 0, want = ctx->o.feeders + ctx->o.monitors;
	for (unsigned i = 0; i < ctx->o.feeders; i++)
		up += ctx->feeders[i].state == LOAD_PS_ESTABLISHED;
	for (unsigned i = 0; i < ctx->o.monitors; i++)
		up += ctx->monitors[i].state == LOAD_PS_ESTABLISHED;
	uint64_t fast, slow = load_slowest(ctx, &fast);
	double rate = 0;
	if (last_ns && now > last_ns)
		rate = ((double)slow - (double)last_v) / ((double)(now - last_ns) / 1e9);
	last_ns = now;
	last_v = slow;
	uint64_t t0 = atomic_load(&ctx->t0_ns);
	double t = t0 && now > t0 ? (double)(now - t0) / 1e9 : (double)(now - ctx->start_ns) / 1e9;
	char a[16], b[16], c[16], d[16], e[16];
	uint64_t sent = strcmp(phase, "churn") == 0 ? atomic_load(&ctx->churn_sent) : prefixes_sent(ctx);
	progress_open = !final;
	printf("\r[%-11s %6.1fs] up %u/%u  sent %s  rx slowest %s fastest %s of %s  %s/s\033[K%s", phase, t,
	       up, want, human(a, sizeof(a), (double)sent), human(b, sizeof(b), (double)slow),
	       human(c, sizeof(c), (double)fast), human(d, sizeof(d), (double)ctx->target.expect),
	       human(e, sizeof(e), rate < 0 ? -rate : rate), final ? "\n" : "");
	fflush(stdout);
}

static struct load_hist *merged_latency(struct load_ctx *ctx)
{
	static struct load_hist h;
	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < ctx->o.monitors; i++)
		load_hist_merge(&h, &ctx->mons[i].lat);
	return &h;
}

static const char *verdict(const struct load_phase_res *r)
{
	return !r->ran ? "skipped" : r->ok ? "ok" : "FAIL";
}

void load_report_summary(struct load_ctx *ctx, FILE *out)
{
	const struct load_opts *o = &ctx->o;
	char a[16];
	load_report_break();
	fprintf(out, "\nricochet-load: target %s AS %u; %u feeder%s (AS %u) x %u IPv4 + %u IPv6 routes (%s), "
		"%u monitor%s (AS %u)%s, seed %llu\n",
		o->target_str, o->asn, o->feeders, o->feeders == 1 ? "" : "s", o->feeder_asn, o->routes,
		o->v6_routes, o->shared ? "shared" : "disjoint", o->monitors, o->monitors == 1 ? "" : "s",
		o->monitor_asn, o->addpath ? ", ADD-PATH" : "", (unsigned long long)o->seed);
	fprintf(out, "\n%-12s %-7s %10s %12s %12s  %s\n", "phase", "result", "seconds", "prefixes",
		"prefixes/s", "note");
	static const int order[] = { 0, 5, 1, 2, 6, 3, 4 };
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		const struct load_phase_res *r = &ctx->ph[order[k]];
		if (!r->name || (!r->ran && order[k] == 5))
			continue;
		double rate = r->ran && r->ok && r->seconds > 0 && order[k] != 0 && order[k] != 5 &&
				      order[k] != 2
				      ? (double)r->prefixes / r->seconds
				      : 0;
		fprintf(out, "%-12s %-7s %10.3f %12llu %12s  %s\n", r->name, verdict(r), r->seconds,
			(unsigned long long)r->prefixes, rate > 0 ? human(a, sizeof(a), rate) : "-", r->note);
	}
	fprintf(out, "\n%-9s %-16s %10s %10s %10s %8s %4s %7s %6s %6s %6s %7s %6s\n", "monitor", "source",
		"held", "announces", "withdraws", "updates", "EoR", "missing", "extra", "wrong", "stale",
		"badattr", "no-rr");
	for (unsigned i = 0; i < o->monitors; i++) {
		const struct load_mon *m = &ctx->mons[i];
		const struct load_peer *p = m->peer;
		const char *src = strchr(p->name, '(');
		fprintf(out, "%-9u %-16.*s %10llu %10llu %10llu %8llu %4llu %7llu %6llu %6llu %6llu %7llu %6llu\n",
			i, src ? (int)strcspn(src + 1, ")") : 1, src ? src + 1 : "?",
			(unsigned long long)atomic_load(&m->filled), (unsigned long long)atomic_load(&m->announces),
			(unsigned long long)atomic_load(&m->withdraws), (unsigned long long)atomic_load(&m->updates),
			(unsigned long long)atomic_load(&m->eors), (unsigned long long)m->ver.missing,
			(unsigned long long)m->ver.extra, (unsigned long long)m->ver.wrong_feeder,
			(unsigned long long)m->ver.stale_gen, (unsigned long long)m->ver.bad_attrs,
			(unsigned long long)m->ver.no_rr);
		if (m->unknown_tag || m->treat_withdraw || m->parse_errors || m->overflow || m->ver.bad_nh)
			fprintf(out, "          untagged %llu treat-as-withdraw %llu parse-errors %llu "
				"addpath-overflow %llu bad-nexthop %llu\n",
				(unsigned long long)m->unknown_tag, (unsigned long long)m->treat_withdraw,
				(unsigned long long)m->parse_errors, (unsigned long long)m->overflow,
				(unsigned long long)m->ver.bad_nh);
	}
	const struct load_hist *h = merged_latency(ctx);
	if (ctx->ph[2].ran)
		fprintf(out, "\nchurn latency (feeder send -> monitor receive): %llu samples of %llu sent x %u "
			"monitors, p50 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n",
			(unsigned long long)h->n, (unsigned long long)atomic_load(&ctx->churn_sent), o->monitors,
			(double)load_hist_pct(h, 50) / 1e6, (double)load_hist_pct(h, 99) / 1e6,
			(double)h->max_ns / 1e6, h->n ? (double)h->sum_ns / (double)h->n / 1e6 : 0.0);
	uint64_t bin = 0, bout = 0;
	for (unsigned f = 0; f < o->feeders; f++)
		bout += atomic_load(&ctx->feeders[f].bytes_out);
	for (unsigned i = 0; i < o->monitors; i++)
		bin += atomic_load(&ctx->monitors[i].bytes_in);
	double mu, ms;
	mon_cpu(ctx, &mu, &ms);
	fprintf(out, "\nbytes: feeders sent %.1f MB, monitors received %.1f MB; CPU: feeder thread %.2f s "
		"(user %.2f), %u monitor thread%s %.2f s (user %.2f), wall %.2f s\n", (double)bout / 1e6,
		(double)bin / 1e6, ctx->fw.cpu_user_s + ctx->fw.cpu_sys_s, ctx->fw.cpu_user_s,
		ctx->n_mw, ctx->n_mw == 1 ? "" : "s", mu + ms, mu, (double)(log_now_ns() - ctx->start_ns) / 1e9);
	for (unsigned i = 0; i < ctx->nerrors; i++)
		fprintf(out, "error: %s\n", ctx->errors[i]);
	fprintf(out, "RESULT: %s\n", ctx->exit_code == 0 ? "PASS (converged and verified)" : "FAIL");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int load_report_json(struct load_ctx *ctx, const char *path)
{
	const struct load_opts *o = &ctx->o;
	FILE *f = fopen(path, "w");
	if (!f) {
		log_err("ricochet-load: cannot write %s", path);
		return -1;
	}
	fprintf(f, "{\n  \"tool\": \"ricochet-load\",\n  \"ok\": %s,\n  \"target\": ",
		ctx->exit_code == 0 ? "true" : "false");
	json_str(f, o->target_str);
	fprintf(f, ",\n  \"config\": {\"asn\": %u, \"feeder_asn\": %u, \"monitor_asn\": %u, \"feeders\": %u, "
		"\"monitors\": %u, \"routes\": %u, \"v6_routes\": %u, \"shared\": %s, \"prefixes_per_attr\": %g, "
		"\"seed\": %llu, \"addpath\": %u, \"ext_msg\": %s, \"expect_rr\": %s, \"verify_attrs\": %s, "
		"\"churn_rate\": %g, \"churn_seconds\": %g, \"churn_attrs\": \"%s\", \"churn_prefixes\": %u, \"churn_restore\": %s, \"connect_burst\": %u, \"kill_feeder\": %s, \"withdraw\": %s, "
		"\"timeout\": %g},\n",
		o->asn, o->feeder_asn, o->monitor_asn, o->feeders, o->monitors, o->routes, o->v6_routes,
		o->shared ? "true" : "false", o->prefixes_per_attr, (unsigned long long)o->seed, o->addpath,
		o->ext_msg ? "true" : "false", o->expect_rr ? "true" : "false",
		o->verify_attrs ? "true" : "false", o->churn_rate, o->churn_seconds,
		o->churn_recurring ? "recurring" : "stamped", o->churn_prefixes, o->churn_restore ? "true" : "false", o->connect_burst, o->kill_feeder ? "true" : "false", o->withdraw ? "true" : "false", o->timeout);
	fprintf(f, "  \"routes_generated\": {\"prefixes\": %u, \"attr_sets_per_feeder\": %u, "
		"\"seconds\": %.6f},\n", ctx->rt.npfx, ctx->rt.f[0].nattr, (double)ctx->rt.gen_ns / 1e9);
	fprintf(f, "  \"expected_paths_per_monitor\": %llu,\n  \"phases\": {", (unsigned long long)ctx->expect_full);
	bool first = true;
	for (int k = 0; k < LOAD_NPHASES; k++) {
		const struct load_phase_res *r = &ctx->ph[k];
		if (!r->name)
			continue;
		fprintf(f, "%s\n    ", first ? "" : ",");
		first = false;
		json_str(f, r->name);
		fprintf(f, ": {\"ran\": %s, \"ok\": %s, \"seconds\": %.6f, \"start_s\": %.3f, \"end_s\": %.3f, "
			"\"count\": %llu, \"rate\": %.1f, \"note\": ", r->ran ? "true" : "false",
			r->ok ? "true" : "false", r->seconds, r->start_s, r->end_s,
			(unsigned long long)r->prefixes,
			r->ok && r->seconds > 0 ? (double)r->prefixes / r->seconds : 0.0);
		json_str(f, r->note);
		const struct load_mon_sums *ms = &r->mon;
		fprintf(f, ", \"monitors_sum\": {\"bytes_in\": %llu, \"updates\": %llu, \"announces\": %llu, "
			"\"withdraws\": %llu, \"dup_announces\": %llu, \"replaced\": %llu, "
			"\"absent_withdraws\": %llu, \"nlri_per_update\": %.2f}",
			(unsigned long long)ms->bytes, (unsigned long long)ms->updates,
			(unsigned long long)ms->announces, (unsigned long long)ms->withdraws,
			(unsigned long long)ms->dup, (unsigned long long)ms->replaced,
			(unsigned long long)ms->absent,
			ms->updates ? (double)(ms->announces + ms->withdraws) / (double)ms->updates : 0.0);
		fputc('}', f);
	}
	fprintf(f, "\n  },\n  \"feeders\": [");
	for (unsigned i = 0; i < o->feeders; i++) {
		const struct load_peer *p = &ctx->feeders[i];
		fprintf(f, "%s\n    {\"index\": %u, \"name\": ", i ? "," : "", i);
		json_str(f, p->name);
		fprintf(f, ", \"routes\": %u, \"bytes_out\": %llu, \"bytes_in\": %llu, \"messages_in\": %llu, "
			"\"update_messages\": %zu, \"killed\": %s, \"error\": ",
			ctx->rt.f[i].n, (unsigned long long)atomic_load(&p->bytes_out),
			(unsigned long long)atomic_load(&p->bytes_in), (unsigned long long)atomic_load(&p->msgs_in),
			ctx->ann_msgs[i], p->killed ? "true" : "false");
		json_str(f, p->failed ? p->err : "");
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"monitors\": [");
	for (unsigned i = 0; i < o->monitors; i++) {
		const struct load_mon *m = &ctx->mons[i];
		const struct load_peer *p = m->peer;
		fprintf(f, "%s\n    {\"index\": %u, \"name\": ", i ? "," : "", i);
		json_str(f, p->name);
		fprintf(f, ", \"held\": %llu, \"announces\": %llu, \"withdraws\": %llu, \"updates\": %llu, "
			"\"eors\": %llu, \"bytes_in\": %llu, \"dup_announces\": %llu, \"replaced\": %llu, "
			"\"absent_withdraws\": %llu, \"addpath_negotiated\": %s, "
			"\"untagged\": %llu, \"treat_as_withdraw\": %llu, \"parse_errors\": %llu, "
			"\"addpath_overflow\": %llu, \"attr_mismatch_events\": %llu, \"churn_readvertised\": %llu, "
			"\"verify\": {\"present\": %llu, \"missing\": %llu, \"extra\": %llu, \"wrong_feeder\": %llu, "
			"\"stale_generation\": %llu, \"bad_attrs\": %llu, \"no_rr_attrs\": %llu, \"bad_nexthop\": %llu, "
			"\"dead_feeder_paths\": %llu}, \"latency_samples\": %llu, \"latency_p50_ms\": %.3f, "
			"\"latency_p99_ms\": %.3f, \"latency_max_ms\": %.3f, \"error\": ",
			(unsigned long long)atomic_load(&m->filled), (unsigned long long)atomic_load(&m->announces),
			(unsigned long long)atomic_load(&m->withdraws), (unsigned long long)atomic_load(&m->updates),
			(unsigned long long)atomic_load(&m->eors), (unsigned long long)atomic_load(&p->bytes_in),
			(unsigned long long)atomic_load(&m->dup_announces), (unsigned long long)atomic_load(&m->replaced),
			(unsigned long long)atomic_load(&m->absent_withdraws),
			(p->sess.addpath_rx[0] || p->sess.addpath_rx[1]) ? "true" : "false",
			(unsigned long long)m->unknown_tag, (unsigned long long)m->treat_withdraw,
			(unsigned long long)m->parse_errors, (unsigned long long)m->overflow,
			(unsigned long long)m->attr_events, (unsigned long long)m->readvertised,
			(unsigned long long)m->ver.present,
			(unsigned long long)m->ver.missing, (unsigned long long)m->ver.extra,
			(unsigned long long)m->ver.wrong_feeder, (unsigned long long)m->ver.stale_gen,
			(unsigned long long)m->ver.bad_attrs, (unsigned long long)m->ver.no_rr,
			(unsigned long long)m->ver.bad_nh, (unsigned long long)m->ver.dead_feeder_paths,
			(unsigned long long)m->lat.n, (double)load_hist_pct(&m->lat, 50) / 1e6,
			(double)load_hist_pct(&m->lat, 99) / 1e6, (double)m->lat.max_ns / 1e6);
		json_str(f, p->failed ? p->err : "");
		fputc('}', f);
	}
	const struct load_hist *h = merged_latency(ctx);
	fprintf(f, "\n  ],\n  \"churn\": {\"sent\": %llu, \"samples\": %llu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
		"\"max_ms\": %.3f, \"mean_ms\": %.3f},\n",
		(unsigned long long)atomic_load(&ctx->churn_sent), (unsigned long long)h->n,
		(double)load_hist_pct(h, 50) / 1e6, (double)load_hist_pct(h, 99) / 1e6, (double)h->max_ns / 1e6,
		h->n ? (double)h->sum_ns / (double)h->n / 1e6 : 0.0);
	double mu, ms;
	mon_cpu(ctx, &mu, &ms);
	fprintf(f, "  \"cpu\": {\"feeder_thread_user_s\": %.3f, \"feeder_thread_sys_s\": %.3f, "
		"\"monitor_thread_user_s\": %.3f, \"monitor_thread_sys_s\": %.3f, \"monitor_threads\": %u},\n",
		ctx->fw.cpu_user_s, ctx->fw.cpu_sys_s, mu, ms, ctx->n_mw);
	fprintf(f, "  \"errors\": [");
	for (unsigned i = 0; i < ctx->nerrors; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, ctx->errors[i]);
	}
	fprintf(f, "]\n}\n");
	if (fclose(f) != 0) {
		log_err("ricochet-load: cannot write %s", path);
		return -1;
	}
	return 0;
}

int load_report_timeline(struct load_ctx *ctx, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		log_err("ricochet-load: cannot write %s", path);
		return -1;
	}
	fprintf(f, "# ricochet-load timeline: t_seconds prefixes_at_slowest_monitor (t=0: first byte sent)\n");
	for (size_t i = 0; i < ctx->tl_n; i++)
		fprintf(f, "%.3f %llu\n", ctx->tl_t[i], (unsigned long long)ctx->tl_v[i]);
	if (fclose(f) != 0)
		return -1;
	return 0;
}
