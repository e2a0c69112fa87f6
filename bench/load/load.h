/*
 * load.h - ricochet-load: a synthetic BGP peer load generator and monitor.
 *
 * One process plays P feeder peers (they announce a generated, reproducible
 * Internet-like table) and M monitor peers (they decode everything the target
 * sends and keep their own table), all as real TCP sessions from distinct
 * loopback source addresses to one target speaker (ricochetd, BIRD, FRR,
 * GoBGP or the null relay).
 *
 * Threads: the main thread parses the CLI, generates routes, drives the phases
 * and prints progress; one feeder thread owns every feeder socket (it writes
 * the pre-encoded UPDATE buffers and the churn); one monitor thread owns every
 * monitor socket and the monitors' tables.  They share this context: the
 * option block and the route set are written before the threads start and are
 * read-only afterwards (except the per-route churn generation, written only by
 * the feeder thread while the monitors do not look at it); progress figures
 * are single-writer counters read with relaxed atomics.
 *
 * Files: routes.c (generation, attribute blobs, pre-encoding, self-test),
 * peer.c (sessions and the epoll worker loop), monitor.c (decode, tables,
 * verification, latency), report.c (progress, summary, JSON, timeline),
 * main.c (CLI and phases).
 */
#ifndef RICOCHET_BENCH_LOAD_H
#define RICOCHET_BENCH_LOAD_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/bgp.h"
#include "core/msg.h"

/* Large-community global administrators that tag our own routes.  Both are in
 * the private 4-octet range (RFC 6996) so a real table never carries them. */
#define LOAD_LC_TAG  4294960001u  /* data1 = feeder << 16 | generation, data2 = attr set */
#define LOAD_LC_TS   4294960002u  /* data1:data2 = send time, ns, monotonic clock */

#define LOAD_MAX_ASPATH 10
#define LOAD_MAX_COMM   8
#define LOAD_MAX_LARGE  3
#define LOAD_MAX_PEERS  4096
#define LOAD_MAX_MW     16      /* monitor threads */
#define LOAD_MON_PER_THREAD 8   /* default: one monitor thread per this many monitors */
#define LOAD_BLOB_MAX   512

/*
 * Bump a counter that only its owning worker thread writes (others read it
 * relaxed): a plain load and store, no locked instruction per message or
 * per prefix.
 */
static inline void load_count(_Atomic uint64_t *c, uint64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d, memory_order_relaxed);
}

/* ---------------------------------------------------------------- options */

struct load_opts {
	char target_str[128];
	struct sockaddr_storage target;
	socklen_t target_len;
	bool target_v6;
	unsigned feeders, monitors;
	uint32_t asn, feeder_asn, monitor_asn;
	uint32_t routes, v6_routes;
	bool shared;
	double prefixes_per_attr;
	uint64_t seed;
	unsigned addpath;
	bool ext_msg;
	bool expect_rr, verify_attrs, wait_eor;
	bool withdraw, kill_feeder;
	double churn_rate, churn_seconds;
	bool churn_recurring;       /* --churn-attrs recurring: no timestamp community */
	uint32_t connect_burst;     /* --connect-burst: sessions opening at once per worker */
	unsigned monitor_threads;   /* --monitor-threads: 0 = one per CPU (at most the monitors) */
	uint32_t churn_prefixes;    /* --churn-prefixes: draw from a feeder's first K routes, 0 = all */
	bool churn_restore;         /* --churn-restore: re-announce the original table after the churn */
	double restore_settle;      /* --restore-settle: seconds to hold the restored table */
	double churn_settle;        /* --churn-settle: seconds to hold the loaded table before the churn */
	double establish_settle;    /* --establish-settle: seconds between the last session up and announcing */
	double timeout;
	uint16_t hold;
	const char *json, *timeline;
	bool quiet, verbose, self_test;
	struct in_addr feeder_base, monitor_base;
	bool nh_base_set;           /* --next-hop-base: feeders announce nh_base + index */
	struct in_addr nh_base;
	const char *mrt;            /* --mrt FILE: replay it instead of the generated table */
	double mrt_speed;           /* --mrt-speed X: BGP4MP timing divided by X (0: no pauses) */
	double stall_monitor;       /* --stall-monitor S: monitor 0 reads nothing for S s once up */
};

/* ---------------------------------------------------------------- routes.c */

/* One distinct attribute set as generated (the blob is built from it). */
struct load_attrset {
	uint8_t origin;
	uint8_t aspath_len;
	uint8_t ncomm, nlarge;
	bool has_med;
	uint32_t med, local_pref;
	uint32_t asn[LOAD_MAX_ASPATH];
	uint32_t comm[LOAD_MAX_COMM];
	uint32_t large[LOAD_MAX_LARGE][3];
};

/* Per feeder: a route is (feeder, local index j); j < r4 is IPv4, the rest IPv6. */
struct load_feeder_routes {
	uint32_t n;                 /* r4 + r6 */
	uint32_t nattr;
	struct load_attrset *sets;
	uint32_t *attr;             /* [n] attribute set of route j */
	_Atomic uint16_t *gen;      /* [n] churn generation of route j */
	_Atomic uint64_t *sent_ns;  /* [n] last churn send time of route j (--churn-attrs recurring) */
};

struct load_hent {
	uint64_t k1;                /* address octets 0..7 */
	uint32_t k2;                /* 1 | len << 8 | family << 16 */
	uint32_t id;
};

struct load_routes {
	unsigned nfeeders;
	bool shared;
	bool ibgp;                  /* feeders are iBGP (LOCAL_PREF, no own AS) */
	uint32_t feeder_asn;
	uint32_t r4, r6;            /* per feeder */
	uint32_t npfx;              /* distinct prefixes */
	struct bgp_prefix *pfx;     /* [npfx] */
	struct load_hent *hash;     /* open addressing, linear probing, k2 == 0: empty */
	uint32_t hmask;
	struct load_feeder_routes *f;
	uint64_t gen_ns;            /* how long generation took */
};

struct load_gen_params {
	unsigned feeders;
	uint32_t r4, r6;
	bool shared, ibgp;
	uint32_t feeder_asn;
	double prefixes_per_attr;
	uint64_t seed;
};

struct load_rng { uint64_t s[4]; };
void load_rng_seed(struct load_rng *r, uint64_t seed, uint64_t stream);
uint64_t load_rng_next(struct load_rng *r);
/* Uniform in [0, n). */
uint32_t load_rng_below(struct load_rng *r, uint32_t n);

/*
 * malloc for the big random-access tables (prefix hash, monitor slots, memo):
 * 2 MB aligned and marked for transparent huge pages, so a lookup is not also
 * a TLB miss.  Release with free().  NULL when out of memory.
 */
void *load_huge_alloc(size_t n);
void load_routes_generate(struct load_routes *rt, const struct load_gen_params *gp);
void load_routes_free(struct load_routes *rt);
/* Prefix id of route (f, j). */
uint32_t load_routes_pid(const struct load_routes *rt, unsigned f, uint32_t j);
/* Inverse: the local index of prefix id pid at feeder f; false if f does not announce it. */
bool load_routes_local(const struct load_routes *rt, unsigned f, uint32_t pid, uint32_t *j);
/* Prefix id of a prefix (path_id ignored), or UINT32_MAX if it is not ours. */
uint32_t load_routes_lookup(const struct load_routes *rt, const struct bgp_prefix *p);
/* The same in steps, so a caller can prefetch a batch of buckets first. */
uint32_t load_routes_hash(const struct bgp_prefix *p);
void load_routes_prefetch(const struct load_routes *rt, uint32_t h);
uint32_t load_routes_lookup_h(const struct load_routes *rt, const struct bgp_prefix *p, uint32_t h);
/*
 * Canonical attribute blob of attribute set a of feeder f at churn generation
 * gen (odd generations carry MED + 1); ts != 0 adds the timestamp community.
 * Returns its length.
 */
size_t load_attrs_build(const struct load_routes *rt, unsigned f, uint32_t a, uint16_t gen,
			uint64_t ts, uint8_t *out, size_t cap);

/* A growable byte buffer. */
struct load_bytes {
	uint8_t *data;
	size_t len, cap;
};
void load_bytes_reserve(struct load_bytes *b, size_t more);
void load_bytes_free(struct load_bytes *b);

/*
 * Pre-encode every UPDATE of feeder f: all its routes grouped by attribute
 * set, then an End-of-RIB per family (announce), or all withdrawals.
 * nh4/nh6 are the feeder's next hops.  Returns the number of messages.
 */
size_t load_encode_announce(const struct load_routes *rt, unsigned f, size_t max_msg,
			    const struct bgp_nexthop *nh4, const struct bgp_nexthop *nh6,
			    bool eor4, bool eor6, struct load_bytes *out);
size_t load_encode_withdraw(const struct load_routes *rt, unsigned f, size_t max_msg,
			    struct load_bytes *out);
int load_routes_selftest(void);
/* A self-test check: on failure, say where and why on stderr and count it in fails. */
#define LOAD_ST_CHECK(fails, cond, ...)                                            \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "self-test FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
			(fails)++;                                                 \
		}                                                                  \
	} while (0)

/* ---------------------------------------------------------------- peer.c */

enum load_role { LOAD_FEEDER = 0, LOAD_MONITOR = 1 };
enum load_pstate {
	LOAD_PS_IDLE, LOAD_PS_CONNECTING, LOAD_PS_OPENSENT, LOAD_PS_OPENCONFIRM,
	LOAD_PS_ESTABLISHED, LOAD_PS_CLOSED,
};

struct load_rbuf {
	uint8_t *data;
	size_t head, tail, cap;
};

/* What the monitors must hold for the running phase to be complete. */
struct load_target {
	uint64_t expect;            /* (prefix, path) entries per monitor with ADD-PATH */
	uint64_t expect_single;     /* ... for a monitor without (not asked or not negotiated) */
	int dead_feeder;            /* -1, or a feeder whose paths must be gone */
	bool need_eor;
	uint64_t since_ns;          /* EoR must arrive after this */
};

struct load_mon;

struct load_peer {
	int fd;
	uint8_t role;
	unsigned idx;
	_Atomic int state;
	struct sockaddr_storage src;
	socklen_t src_len;
	char name[64];
	uint32_t bgp_id;
	uint32_t local_as;
	struct msg_capa sent;
	struct msg_open open;
	struct msg_session sess;
	uint16_t hold;
	uint64_t last_rx_ns, next_ka_ns, next_retry_ns;
	unsigned connect_tries;
	struct load_rbuf rbuf;
	struct load_bytes obuf;     /* control and churn messages */
	size_t obuf_off;
	const uint8_t *bulk;        /* pre-encoded, not owned */
	size_t bulk_len, bulk_off, bulk_msg;
	_Atomic uint64_t bulk_pos;  /* bulk_off, published for the progress line */
	_Atomic uint64_t bulk_done_ns;
	bool want_out;
	bool stalled;               /* --stall-monitor: not reading until stall_until_ns */
	uint64_t stall_until_ns;
	bool killed;
	struct bgp_nexthop nh4, nh6;
	/* figures */
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t msgs_in, updates_in;
	uint64_t up_ns;
	uint64_t first_tx_ns;
	char err[160];
	bool failed;                /* set by the peer's worker, polled by the main thread (atomic) */
	struct load_mon *mon;       /* monitors only */
};

struct load_ctx;

/* One epoll loop (the feeder thread or the monitor thread). */
struct load_worker {
	struct load_ctx *ctx;
	uint8_t role;
	int epfd, evfd;
	struct load_peer **peers;
	unsigned npeers;
	pthread_t thread;
	_Atomic int cmd;            /* enum load_cmd, set by main before bumping cmd_seq */
	_Atomic uint64_t cmd_seq;   /* bumped by main, acknowledged below */
	_Atomic uint64_t cmd_done;
	/* feeder thread churn state */
	bool churn_on;
	uint64_t churn_start_ns, churn_end_ns, churn_sent;
	unsigned churn_rr;
	struct load_rng churn_rng;
	/* monitor thread: copy of the target */
	struct load_target target;
	uint64_t last_check_ns;
	double cpu_user_s, cpu_sys_s;   /* this thread's CPU time, at exit */
};

void load_peer_init(struct load_peer *p, struct load_ctx *ctx, uint8_t role, unsigned idx);
void load_worker_init(struct load_worker *w, struct load_ctx *ctx, uint8_t role);
void *load_worker_main(void *arg);
void load_worker_kick(struct load_worker *w);
/* Run a command on a worker and wait (bounded) until it is done; false on timeout. */
bool load_worker_cmd(struct load_worker *w, int cmd, double timeout_s);
/* The same command on n workers at once (they run it in parallel); false if
 * any did not finish within timeout_s. */
bool load_workers_cmd(struct load_worker *ws, unsigned n, int cmd, double timeout_s);
/* Queue a whole message on a peer's control buffer. */
void load_peer_queue(struct load_peer *p, const uint8_t *msg, size_t len);
void load_peer_close(struct load_peer *p, uint8_t code, uint8_t subcode, const char *why);
/* Source address of peer idx of a role ("127.0.1.x" family). */
void load_peer_src(const struct load_opts *o, uint8_t role, unsigned idx, struct sockaddr_storage *ss,
		   socklen_t *len);

/* ---------------------------------------------------------------- monitor.c */

#define LOAD_LAT_BUCKETS 2400
struct load_hist {
	uint64_t n, sum_ns, max_ns;
	uint32_t b[LOAD_LAT_BUCKETS];
};

struct load_verify {
	uint64_t present, missing, extra, wrong_feeder, stale_gen, bad_attrs, no_rr, bad_nh,
		 dead_feeder_paths;
};

/*
 * What a monitor holds for one path, named by a tag: the monitor thread
 * interns each (feeder << 16 | generation, attribute set | LOAD_F_* flags)
 * pair it meets into a dense index (struct load_memo), so a path costs the
 * monitor 4 octets (LOAD_TAG_EMPTY = none held), 8 under ADD-PATH.
 */
struct load_tag {
	uint32_t fg;                /* feeder << 16 | gen */
	uint32_t attr;              /* attr index | LOAD_F_* flags */
};
#define LOAD_TAG_EMPTY UINT32_MAX

/*
 * Decoded NLRI blocks, shared by the monitors of one monitor thread: every
 * client of a reflector (and of the null relay) receives the same UPDATEs, so
 * the first monitor to see a block maps its prefixes to ids and the others
 * find the block by its bytes (hash, then memcmp of the whole block) and only
 * apply the ids.  Bounded: an arena that is emptied when full.  Owned and
 * used by one monitor thread only.
 */
struct load_memo;
/* on: keep decoded blocks (pointless for a thread with one monitor); the
 * arena takes 48 octets per path one monitor is sent (paths), within
 * [LOAD_MEMO_MIN, LOAD_MEMO_MAX]. */
#define LOAD_MEMO_MIN (4u << 20)
#define LOAD_MEMO_MAX (512u << 20)
struct load_memo *load_memo_new(bool on, uint64_t paths);
void load_memo_free(struct load_memo *mm);
/* Blocks found / decoded, for the summary (read after the thread is joined or quiet). */
void load_memo_stats(const struct load_memo *mm, uint64_t *hits, uint64_t *misses);
/* Checks of the tags and the memo alone (--self-test); returns the failures. */
int load_mon_selftest(void);

struct load_mon {
	struct load_peer *peer;
	struct load_memo *memo;     /* the monitor thread's (its arena may be empty: no memo) */
	struct load_worker *w;      /* the monitor thread that owns this monitor */
	const uint8_t *hint_msg;    /* the read loop already hashed this message: hint_h */
	uint64_t hint_h;
	unsigned nslots;            /* paths per prefix kept (1, or --addpath) */
	size_t stride;              /* slots between two prefixes (nslots) */
	uint32_t *slots;            /* prefix pid: tags at slots[pid * stride .. + nslots) */
	uint32_t *slot_paths;       /* their path ids, parallel; NULL unless nslots > 1 */
	_Atomic uint64_t filled;
	_Atomic uint64_t extra;
	uint64_t *per_feeder;       /* paths held per feeder */
	/* extras: prefixes that are not ours, small open hash */
	struct bgp_prefix *xtab;
	uint8_t *xused;
	size_t xcap, xn;
	/* event counters (monitor thread writes, main reads at the end) */
	_Atomic uint64_t announces, withdraws, updates, eors;
	/* what the announcements and withdrawals did to the table: an announcement of
	 * a (prefix, path id) held with the same feeder, generation and attributes
	 * (dup), of one held with other ones (replaced), a withdrawal of one not
	 * held (absent); relaxed, a compare and an add per NLRI */
	_Atomic uint64_t dup_announces, replaced, absent_withdraws;
	uint64_t treat_withdraw, parse_errors, overflow, unknown_tag, attr_events, readvertised;
	_Atomic uint64_t eor_ns;
	_Atomic uint64_t done_ns;   /* 0 = not done for the current target */
	struct load_hist lat;
	struct load_verify ver;
	uint8_t *scratch;
	unsigned debug_left;        /* -v: log the first few NLRI */
};
#define LOAD_F_BADATTR 0x80000000u
#define LOAD_F_NORR    0x40000000u
#define LOAD_F_BADNH   0x20000000u
#define LOAD_F_MASK    0x1fffffffu

void load_mon_init(struct load_mon *m, struct load_ctx *ctx, struct load_peer *p);
void load_mon_update(struct load_ctx *ctx, struct load_mon *m, const uint8_t *msg, size_t len);
/* The memo's hash of a message, and cache hints for a message that
 * load_mon_update will see soon (stage 0, 1, 2: far to near; h its hash). */
uint64_t load_mon_hash(const uint8_t *msg, size_t len);
void load_mon_prefetch(struct load_mon *m, const uint8_t *msg, size_t len, unsigned stage, uint64_t h);
void load_mon_check_done(struct load_ctx *ctx, struct load_mon *m, uint64_t now);
void load_mon_verify(struct load_ctx *ctx, struct load_mon *m);
void load_hist_add(struct load_hist *h, uint64_t ns);
void load_hist_merge(struct load_hist *dst, const struct load_hist *src);
uint64_t load_hist_pct(const struct load_hist *h, double pct);

/* ---------------------------------------------------------------- main.c context */

enum load_phase {
	LOAD_PH_INIT, LOAD_PH_CONNECT, LOAD_PH_ANNOUNCE, LOAD_PH_CHURN, LOAD_PH_KILL,
	LOAD_PH_WITHDRAW, LOAD_PH_DONE,
};

/* Commands main sends to a worker (cmd field, acknowledged via cmd_done). */
enum load_cmd {
	LOAD_CMD_NONE, LOAD_CMD_ANNOUNCE, LOAD_CMD_CHURN, LOAD_CMD_KILL, LOAD_CMD_WITHDRAW,
	LOAD_CMD_VERIFY, LOAD_CMD_TARGET, LOAD_CMD_STOP, LOAD_CMD_RESTORE,
};

struct load_phase_res {
	const char *name;
	bool ran, ok;
	double seconds;
	double start_s, end_s;      /* since the process started (load_ctx.start_ns) */
	uint64_t prefixes;
	/* summed over the monitors, counted from the phase's start to its end
	 * (set when the phase is done): bytes, UPDATEs, NLRI announced and
	 * withdrawn, and of those the duplicates, replacements and withdrawals of
	 * what was not held */
	struct load_mon_sums {
		uint64_t bytes, updates, announces, withdraws, dup, replaced, absent;
	} mon_start, mon;
	char note[128];
};

#define LOAD_NPHASES 7
struct load_ctx {
	struct load_opts o;
	struct load_routes rt;
	struct load_peer *feeders, *monitors;
	struct load_mon *mons;
	struct load_worker fw;                 /* the feeder thread */
	struct load_worker *mw;                /* the monitor threads, n_mw of them */
	unsigned n_mw;
	struct load_bytes *ann, *wdr;          /* per feeder pre-encoded */
	uint64_t *ann_prefixes;
	size_t *ann_msgs;
	_Atomic int stop;
	struct load_target target;             /* written by main before LOAD_CMD_TARGET */
	_Atomic uint64_t t0_ns;                /* first byte of the running phase */
	_Atomic uint64_t churn_sent;
	uint64_t start_ns;
	unsigned kill_idx;
	bool withdrawn;                        /* withdraw phase started: expect nothing */
	struct load_phase_res ph[LOAD_NPHASES];
	int cur_ph;                 /* the phase whose monitor sums run (-1: none) */
	/* timeline */
	double *tl_t;
	uint64_t *tl_v;
	size_t tl_n, tl_cap;
	uint64_t expect_full;
	int exit_code;
	char errors[8][160];
	unsigned nerrors;
};

/* Record an error for the summary (main thread only after workers joined, or via peers). */
void load_ctx_error(struct load_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Paths a monitor should hold when feeder dead_feeder (-1: none) is gone and the
 * monitor keeps `paths` paths per prefix. */
uint64_t load_expected(const struct load_ctx *ctx, int dead_feeder, unsigned paths);
/* Paths per prefix monitor m can receive: --addpath if negotiated, else 1. */
unsigned load_mon_paths(const struct load_ctx *ctx, const struct load_mon *m);

/* ---------------------------------------------------------------- mrt.c */

/* The --mrt replay phase (after connect, instead of announce).  True on success. */
bool load_mrt_phase(struct load_ctx *ctx);

/* ---------------------------------------------------------------- report.c */

/* End a pending progress line (before other output). */
void load_report_break(void);
void load_report_progress(struct load_ctx *ctx, const char *phase, uint64_t now, bool final);
void load_report_summary(struct load_ctx *ctx, FILE *out);
int load_report_json(struct load_ctx *ctx, const char *path);
int load_report_timeline(struct load_ctx *ctx, const char *path);
void load_timeline_add(struct load_ctx *ctx, uint64_t now);
uint64_t load_slowest(struct load_ctx *ctx, uint64_t *fastest);

#endif
