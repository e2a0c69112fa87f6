/*
 * log.c - line-atomic logging to stderr or syslog, rate limiting, fatal exits.
 * Each record is built in a stack buffer and emitted with one write(2), so
 * concurrent I/O threads never interleave partial lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static const char *log_ident = "ricochetd";
static bool log_syslog;
static enum log_level log_min = LOG_LVL_INFO;

void log_init(const char *ident, bool use_syslog, enum log_level min)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_min = min;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level min)
{
	/* written by the reloading thread, read by every thread: atomic */
	__atomic_store_n(&log_min, min, __ATOMIC_RELAXED);
}

uint64_t log_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void log_emit(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	char buf[1024];
	size_t n = 0;

	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03ldZ %s %s: ",
				      ts.tv_nsec / 1000000, log_ident, names[lvl]);
	}
	int m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (log_syslog) {
		buf[n] = '\0';
		syslog(prio[lvl], "%s", buf);
		return;
	}
	buf[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < __atomic_load_n(&log_min, __ATOMIC_RELAXED))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_emit(lvl, fmt, ap);
	va_end(ap);
}

bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns, uint32_t *suppressed)
{
	uint64_t now = log_now_ns();
	if (rl->last_ns && now - rl->last_ns < interval_ns) {
		rl->suppressed++;
		return false;
	}
	rl->last_ns = now;
	if (suppressed)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}
