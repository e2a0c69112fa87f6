/*
 * mrtdump.h - `mrt-dump: DIR`: every BGP message received is recorded as an
 * MRT BGP4MP_ET record (RFC 6396 s4.4, microsecond timestamps;
 * BGP4MP_MESSAGE_AS4, or _AS4_ADDPATH per RFC 8050 when the session receives
 * path identifiers).
 *
 * Threads: mrtdump_rx() runs on the receiving I/O thread.  Each I/O thread
 * appends to its own 1 MiB buffer and its own file (DIR/ricochet.<pid>.<n>.mrt),
 * writing only when the buffer is full or a second has passed, so the data
 * path pays a memcpy per message and a large write now and then, never a
 * lock held by another thread (the buffer's mutex is only contended at exit,
 * when mrtdump_stop() flushes every buffer).
 */
#ifndef RICOCHET_IO_MRTDUMP_H
#define RICOCHET_IO_MRTDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct peer;

extern bool mrtdump_enabled;

int mrtdump_start(const char *dir);
void mrtdump_stop(void);                  /* flush and close every file */
void mrtdump_record(struct peer *p, const uint8_t *msg, size_t len);

struct mrtdump_stats {
	uint64_t records, bytes, write_errors;
};
void mrtdump_get_stats(struct mrtdump_stats *st);

/* Set by mrtdump_start after its state is ready (release), cleared by
 * mrtdump_stop; read by every I/O thread and the metrics thread (acquire). */
static inline bool mrtdump_on(void)
{
	return __atomic_load_n(&mrtdump_enabled, __ATOMIC_ACQUIRE);
}

static inline void mrtdump_rx(struct peer *p, const uint8_t *msg, size_t len)
{
	if (__builtin_expect(mrtdump_on(), 0))
		mrtdump_record(p, msg, len);
}

#endif
