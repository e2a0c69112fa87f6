/*
 * daemon.h - the running daemon: configuration, peer table, I/O threads,
 * RIB, reflection thread and control socket, and the glue between them.
 *
 * Ownership: the main thread creates everything, handles signals and
 * reloads.  The peer table (peers[], peerinfo[]) is indexed by peer id; a
 * peers[] slot is written once when the peer is created (under peers_lock)
 * and then only read, so lookups by id need no lock; a peerinfo[] entry's
 * session fields are rewritten by the peer's I/O thread at each OPEN
 * (rib/decide.h says how they are read).  Lookups by address (accept)
 * take peers_lock.
 */
#ifndef RICOCHET_IO_DAEMON_H
#define RICOCHET_IO_DAEMON_H

#include <sys/socket.h>

#include "io/io.h"
#include "io/reflect.h"

struct io_thread;
struct ctl_server;

struct daemon {
	struct cfg *cfg;                 /* running configuration (swapped on reload) */
	pthread_mutex_t cfg_lock;
	char *cfg_path;                  /* NULL: embedded default */
	/* identity, fixed for the daemon's life (a change needs a restart) */
	uint32_t router_id, asn, cluster_id;
	uint64_t max_routes;             /* global route limit, 0 = none; reload rewrites it
					  * while the I/O threads read it: relaxed atomic */
	bool hugepages_off;              /* cfg's, for the main thread's settling: reload
					  * (main or control thread) rewrites it, relaxed atomic */
	atomic_uint_fast64_t routes;     /* paths accepted into the RIB, all peers */
	struct attr_table *attrs;
	struct rib *rib;
	struct refl *refl;
	struct rib_peerinfo *peerinfo;   /* RIB_MAX_PEERS entries */
	struct peer **peers;             /* RIB_MAX_PEERS slots */
	uint32_t n_peers;                /* ids in use: 0..n_peers-1; written only by
					    daemon_peer_create under peers_lock (a release
					    store), so read plainly under peers_lock, else
					    with daemon_n_peers */
	pthread_mutex_t peers_lock;
	struct io_thread **thr;
	unsigned n_thr;
	bool per_peer_threads;
	int *listen_fds;
	size_t n_listen;
	struct ctl_server *ctl;
	uint64_t start_ns;
	volatile int stop;
	volatile int reload;
	/* settling a quiet RIB's heap into huge pages (rib/mem.h): the main
	 * thread's, in daemon_run; the counters are read by `show memory` */
	struct daemon_settle {
		uint64_t interns, paths, nodes;   /* activity at the last tick */
		unsigned quiet;                   /* ticks it has not changed */
		uint64_t floor;                   /* lowest resident since the last settle */
		bool unsupported;
		uint64_t runs;                    /* atomic */
		uint64_t last_ns;                 /* atomic: how long the last one took */
	} settle;
};

/* Peers published so far: d->peers[0 .. n) are complete.  The acquire pairs
 * with daemon_peer_create's release, for threads that do not hold
 * peers_lock (control, metrics, BMP). */
static inline uint32_t daemon_n_peers(const struct daemon *d)
{
	return __atomic_load_n(&d->n_peers, __ATOMIC_ACQUIRE);
}

/* Start everything from cfg (takes ownership).  0 on success. */
int daemon_start(struct daemon *d, struct cfg *cfg, const char *cfg_path);
/* jemalloc's statistics: daemon_je_refresh() takes a new snapshot (its
 * "epoch"), daemon_je_stat() reads one figure of the last snapshot
 * ("stats.allocated", "stats.resident", ...; 0 if unknown).  Refresh once,
 * then read what belongs together.  Any thread. */
void daemon_je_refresh(void);
uint64_t daemon_je_stat(const char *name);
/* Main-thread loop: signals, reloads; returns when asked to stop. */
void daemon_run(struct daemon *d);
void daemon_stop(struct daemon *d);
/* Reload the configuration file; on error keeps the running one.  0 = ok. */
int daemon_reload(struct daemon *d, char *err, size_t errlen);

/* ---- I/O threads (io/loop.c) ---- */
enum io_cmd_type { CMD_ADD_PEER, CMD_ACCEPTED, CMD_RESET_DONE, CMD_CLOSE, CMD_RECONFIG,
		   CMD_REFRESH /* arg: family, BGP_FAM_COUNT = every negotiated one */ };
struct io_cmd {
	uint8_t type, arg;
	int fd;
	struct peer *p;
	struct cfg_peer *cfgp;           /* CMD_RECONFIG: new settings, the thread frees */
};

struct io_thread {
	struct daemon *d;
	unsigned idx;
	pthread_t thr;
	bool started;
	int epfd, evfd;
	atomic_int kicked;
	atomic_int stop;                 /* io_thread_stop -> the thread */
	pthread_mutex_t cmd_lock;
	struct io_cmd *cmds;
	size_t n_cmds, cap_cmds;
	struct peer **peers;
	size_t n_peers, cap_peers;
	uint8_t *scratch;                /* MSG_SCRATCH_SIZE: canonical blobs, shared by its peers */
	size_t n_sweeping;               /* peers with sweep jobs (peer.c): poll, do not sleep */
	struct io_ingest *ingest;        /* announcements on their way to the RIB (io/peer.c) */
};

/*
 * The announcements of consecutive UPDATEs of the peer being read, handed to
 * the RIB together (rib_update_multi) so that its tree descents overlap
 * across UPDATEs.  Owned by the I/O thread; it only ever holds one peer's
 * prefixes and is empty whenever sess_readable returns (io/peer.c).
 */
#define IO_INGEST_MAX 128
struct io_ingest {
	struct peer *p;                  /* whose prefixes these are */
	uint32_t n, nsets;
	struct bgp_prefix pfx[IO_INGEST_MAX];
	struct attr_set *attr[IO_INGEST_MAX];   /* the set of pfx[i] */
	struct attr_set *sets[IO_INGEST_MAX];   /* one reference each, dropped after the flush */
	uint8_t added[IO_INGEST_MAX];
};


#define EV_KIND_EVFD   1ull
#define EV_KIND_LISTEN 2ull
#define EV_KIND_PEER   3ull
#define EV_DATA(kind, v) (((kind) << 56) | (uint64_t)(v))


/* ------------------------------------------------------------ helpers */

struct io_thread *io_thread_create(struct daemon *d, unsigned idx);
void io_thread_listen(struct io_thread *t, int fd, unsigned idx);
void io_thread_start(struct io_thread *t);
void io_thread_stop(struct io_thread *t);
/* Give a peer to its thread (at creation). */
void io_thread_add_peer(struct io_thread *t, struct peer *p);
/* Hand an accepted connection to the owning thread of p. */
void io_thread_accepted(struct io_thread *t, struct peer *p, int fd);
/* Ask the owning thread to close p's session with Cease/subcode (reload, CLI). */
void io_thread_close_peer(struct io_thread *t, struct peer *p, uint8_t subcode);

/* Ask the owning thread to send p a ROUTE-REFRESH for family (BGP_FAM_COUNT: all). */
void io_thread_refresh_peer(struct io_thread *t, struct peer *p, unsigned family);

/* Apply new settings to p (reload): resets the session if it is up. */
void io_thread_reconfig_peer(struct io_thread *t, struct peer *p, struct cfg_peer *nc);

/* Create a peer (explicit or dynamic) and give it to a thread.  Under peers_lock. */
struct peer *daemon_peer_create(struct daemon *d, const struct cfg_peer *cp,
				const struct bgp_addr *addr, bool dynamic);
struct peer *daemon_peer_by_addr(struct daemon *d, const struct bgp_addr *addr);

/* ---- sessions (io/peer.c), called on the owning I/O thread ---- */
void sess_start(struct peer *p);                 /* peer added: connect if active */
void sess_accepted(struct peer *p, int fd);      /* an incoming connection for p */
void sess_reset_done(struct peer *p);            /* reflection released p's queue */
void sess_admin_close(struct peer *p, uint8_t cease_subcode);
void sess_send_refresh(struct peer *p, unsigned family); /* ROUTE-REFRESH out (CLI) */
void sess_reconfig(struct peer *p, struct cfg_peer *nc); /* takes nc */
void sess_readable(struct peer *p);
/* The connection closed or failed while a live sweep held p's input. */
void sess_held_closed(struct peer *p);
void peer_flush(struct peer *p);                 /* write what the socket takes */
/* last_error: set by the peer's I/O thread, read by any thread (err_lock) */
void peer_set_error(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void peer_get_error(struct peer *p, char *buf, size_t n);
void sess_writable(struct peer *p);
void sess_timers(struct peer *p, uint64_t now_ns);
/* One bounded step of p's withdrawal after a session went down (if any). */
void sess_sweep_step(struct peer *p);
/* Fill a sockaddr for addr:port (io/peer.c); returns its length. */
socklen_t io_sockaddr(struct sockaddr_storage *ss, const struct bgp_addr *a, uint16_t port);
/* Accept on a listening socket (any I/O thread), route the fd to its peer. */
void daemon_accept(struct daemon *d, int lfd);

/* ---- TCP MD5 (RFC 2385) and GTSM (RFC 5082) per peer (io/sockopt.c) ---- */
/* Set (password) or delete (NULL) the key for addr/plen on fd; plen below
 * the full length uses TCP_MD5SIG_EXT with a prefix.  0 or -1 (errno). */
int sockopt_md5_key(int fd, const struct bgp_addr *addr, uint8_t plen, const char *password);
/* A listening socket: keys of every peer and range of cfg with a password
 * and of its family; with old (reload), keys only old had are removed. */
void sockopt_listener_keys(int fd, const struct cfg *cfg, const struct cfg *old);
/* GTSM: send with TTL/hop limit 255, drop what arrives below 256 - hops. */
int sockopt_gtsm(int fd, unsigned family, uint8_t hops);
/* A peer's own socket: GTSM, and with outbound (before connect) its MD5 key. */
int sockopt_peer_socket(int fd, const struct cfg_peer *cp, const struct bgp_addr *addr, bool outbound);

/* ---- control socket commands (io/daemon.c) ---- */
void daemon_ctl_register(struct daemon *d);

#endif
