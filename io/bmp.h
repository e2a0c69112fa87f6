/*
 * bmp.h - BGP Monitoring Protocol (RFC 7854) export to one station
 * (`bmp: { station: ADDR:PORT }`): Initiation, Peer Up / Peer Down,
 * Route Monitoring of every UPDATE received (Adj-RIB-In pre-policy),
 * Statistics Reports every BMP_STATS_INTERVAL seconds, Termination at exit.
 *
 * Threads: the hooks below run on the peer's I/O thread; they build the BMP
 * message and push it on a wait-free queue (liburcu wfcqueue) bounded in
 * bytes.  When the station is slow or away the message is dropped and
 * counted: an I/O thread never waits for the station.  One exporter thread
 * ("bmp") connects (and reconnects), drains the queue and writes.  On every
 * (re)connection it sends Initiation, then Peer Up for each session that is
 * up, so the station always sees a consistent stream.
 */
#ifndef RICOCHET_IO_BMP_H
#define RICOCHET_IO_BMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct peer;
struct daemon;

#define BMP_QUEUE_MAX   (64u << 20)     /* bytes queued before dropping */
#define BMP_STATS_INTERVAL 10           /* seconds between Statistics Reports */

extern bool bmp_enabled;
/* Set by bmp_start once its state is ready (release), cleared by bmp_stop;
 * read by the I/O threads and the metrics thread (acquire). */
static inline bool bmp_on(void)
{
	return __atomic_load_n(&bmp_enabled, __ATOMIC_ACQUIRE);
}

int bmp_start(struct daemon *d, const struct cfg_endpoint *station);
void bmp_stop(void);                     /* Peer Down for up sessions, Termination, join */

void bmp_peer_up_msg(struct peer *p);
void bmp_peer_down_msg(struct peer *p);
void bmp_rx_msg(struct peer *p, const uint8_t *msg, size_t len);

struct bmp_stats {
	uint64_t queued, sent, dropped, bytes_sent, connects;
	uint64_t queue_bytes;
	bool connected;
};
void bmp_get_stats(struct bmp_stats *st);

static inline void bmp_peer_up(struct peer *p)
{
	if (__builtin_expect(bmp_on(), 0))
		bmp_peer_up_msg(p);
}
static inline void bmp_peer_down(struct peer *p)
{
	if (__builtin_expect(bmp_on(), 0))
		bmp_peer_down_msg(p);
}
static inline void bmp_rx(struct peer *p, const uint8_t *msg, size_t len)
{
	if (__builtin_expect(bmp_on(), 0))
		bmp_rx_msg(p, msg, len);
}

#endif
