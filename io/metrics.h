/*
 * metrics.h - the Prometheus endpoint (text exposition format 0.0.4 over a
 * minimal HTTP/1.1 server) and the propagation-latency histograms.
 *
 * Threads: metrics_start() runs on the main thread inside daemon_start and,
 * besides the HTTP thread ("metrics"), starts the other exporters the
 * configuration asks for (MRT recorder io/mrtdump.c, BMP io/bmp.c), so the
 * daemon has one call to make.  metrics_observe_latency() is called by I/O
 * threads when they finish writing a stamped chunk: it only bumps relaxed
 * atomic counters.  A scrape reads per-peer counters racily, RIB and
 * attribute statistics (atomic sums) and jemalloc statistics; it never takes
 * a data-path lock, so it answers while a full table loads.
 */
#ifndef RICOCHET_IO_METRICS_H
#define RICOCHET_IO_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct daemon;

/* Start the metrics endpoint (cfg->has_metrics), the MRT recorder
 * (cfg->mrt_dir) and the BMP exporter (cfg->has_bmp).  A failure to bind is
 * logged and the daemon runs on without that exporter.  Everything started
 * here is stopped (MRT buffers flushed, BMP Termination sent) at exit. */
void metrics_start(struct daemon *d);
/* Stop the exporters (metrics thread, BMP with its Termination, MRT recorder);
 * called by daemon_stop once the sessions are closed.  Safe if none started. */
void metrics_stop(void);

/* An I/O thread wrote the last byte of a chunk made from changes received at
 * rx_ns (log_now_ns clock) for update group `group`. */
void metrics_observe_latency(uint32_t group, uint64_t rx_ns);

/* Render every metric into a malloc'd buffer (for tests and the endpoint). */
char *metrics_render(struct daemon *d, size_t *len);

#endif
