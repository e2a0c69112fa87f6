/*
 * log.h - one-line log records to stderr (and syslog with --syslog).
 *
 * Thread-safe: each record is formatted into a local buffer and written with
 * a single write(2), so lines from different threads never interleave.
 * log_ratelimited() lets a caller log a kind of event at most once per
 * interval per key (malformed input from a peer must never flood the log).
 */
#ifndef RICOCHET_CORE_LOG_H
#define RICOCHET_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

void log_init(const char *ident, bool use_syslog, enum log_level min);
void log_set_level(enum log_level min);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)

/*
 * Rate limiting state, embedded by the caller (one per peer per kind).
 * Returns true if the caller may log now; suppressed counts the records
 * dropped since the last one that was logged.
 */
struct log_ratelimit {
	uint64_t last_ns;
	uint32_t suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns, uint32_t *suppressed);

/* Abort loudly: broken invariant or out of memory.  Never returns. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Monotonic clock in nanoseconds. */
uint64_t log_now_ns(void);

#endif
