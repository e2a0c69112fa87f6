/*
 * ctl.h - the control socket: a UNIX stream socket served by its own thread,
 * the handler registry the daemon fills, an output buffer with a tiny JSON
 * writer for handlers, and the client side used by the `ricochet` CLI.
 *
 * Protocol (one exchange per connection):
 *   client -> server   one request line, at most CTL_REQ_MAX bytes, ending in
 *                      "\n" (or in a write shutdown): words separated by
 *                      blanks, e.g. "show routes learned 10.0.0.1 --json".
 *   server -> client   a status line, "ok" or "error <message>", then the
 *                      body; then the server closes the connection.
 * "--json" anywhere in the request is removed from argv and reported by
 * ctl_json(out), so handlers need not parse it.  "help" is built in.
 *
 * Threads: ctl_server_start() creates one thread ("ricochet-ctl") that
 * accepts, reads, runs handlers and writes replies; every handler runs on it,
 * one at a time, so handlers must only read state that is safe to read from
 * another thread (RCU snapshots, atomic counters) and must not block for
 * long: a slow handler delays other CLI users, never the BGP data path.
 * Clients are multiplexed with poll(2) and non-blocking sockets, with a 5 s
 * request timeout and a 30 s idle write timeout, so a stuck or slow client
 * cannot hold the thread.  ctl_register() may be called before or after
 * start, from any thread.  Use ctl_server_set_hooks() to run per-thread setup
 * on the ctl thread (e.g. rcu_register_thread()).
 *
 * Usage (daemon):
 *   static int show_peers(int argc, char **argv, struct ctl_out *out, void *arg) {
 *       if (argc > 0) return ctl_error(out, "usage: show peers [--json]");
 *       if (ctl_json(out)) { ctl_json_arr_open(out); ... ctl_json_arr_close(out); }
 *       else ctl_printf(out, "%-20s %s\n", "Neighbor", "State");
 *       return 0;
 *   }
 *   struct ctl_server *cs = ctl_server_new();
 *   ctl_register(cs, "show peers", show_peers, daemon);
 *   if (ctl_server_start(cs, cfg->ctl_socket, 0600, err, sizeof(err))) ... fail
 *   ...
 *   ctl_server_free(cs);              (stops the thread, unlinks the socket)
 */
#ifndef RICOCHET_IO_CTL_H
#define RICOCHET_IO_CTL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_REQ_MAX        4096              /* request line, newline included */
#define CTL_ARGS_MAX       64                /* words in a request */
#define CTL_OUT_MAX        (512u << 20)      /* a reply larger than this is an error */
#define CTL_CLIENTS_MAX    32                /* concurrent connections */
#define CTL_READ_TIMEOUT_MS   5000
#define CTL_WRITE_TIMEOUT_MS 30000           /* without progress */

/* ------------------------------------------------------------ output buffer */

struct ctl_out;

/* Append text.  The buffer grows as needed (up to CTL_OUT_MAX). */
void ctl_printf(struct ctl_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_vprintf(struct ctl_out *out, const char *fmt, va_list ap);
void ctl_write(struct ctl_out *out, const void *buf, size_t len);
/* True if the request carried --json. */
bool ctl_json(const struct ctl_out *out);
/* Set the error message (one line) for the status; returns -1 so a handler
 * can write `return ctl_error(out, "no peer %s", argv[0]);`.  Body text
 * already written is still sent after the status line. */
int ctl_error(struct ctl_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * JSON writer: commas and nesting are tracked for you (depth <= 32; misuse
 * is a programming error and aborts).  Inside an object, call ctl_json_key()
 * before each value, or use the k* shorthands.  Strings are escaped (quotes,
 * backslash, control characters; UTF-8 passes through); NULL prints null.
 * Doubles that are not finite print null.
 */
void ctl_json_obj_open(struct ctl_out *out);
void ctl_json_obj_close(struct ctl_out *out);
void ctl_json_arr_open(struct ctl_out *out);
void ctl_json_arr_close(struct ctl_out *out);
void ctl_json_key(struct ctl_out *out, const char *key);
void ctl_json_str(struct ctl_out *out, const char *s);
void ctl_json_int(struct ctl_out *out, int64_t v);
void ctl_json_uint(struct ctl_out *out, uint64_t v);
void ctl_json_double(struct ctl_out *out, double v);
void ctl_json_bool(struct ctl_out *out, bool v);
void ctl_json_null(struct ctl_out *out);
void ctl_json_kstr(struct ctl_out *out, const char *key, const char *s);
void ctl_json_kint(struct ctl_out *out, const char *key, int64_t v);
void ctl_json_kuint(struct ctl_out *out, const char *key, uint64_t v);
void ctl_json_kdouble(struct ctl_out *out, const char *key, double v);
void ctl_json_kbool(struct ctl_out *out, const char *key, bool v);
void ctl_json_kobj_open(struct ctl_out *out, const char *key);
void ctl_json_karr_open(struct ctl_out *out, const char *key);

/* A standalone buffer, for unit-testing handlers without a socket. */
struct ctl_out *ctl_out_new(bool json);
const char *ctl_out_data(const struct ctl_out *out, size_t *len);  /* NUL-terminated */
const char *ctl_out_errmsg(const struct ctl_out *out);             /* NULL if none */
void ctl_out_free(struct ctl_out *out);

/* ------------------------------------------------------------ server */

struct ctl_server;

/*
 * A command handler.  argv holds the words after the registered prefix
 * (argv[argc] == NULL), with --json removed.  Return 0 for "ok", nonzero for
 * "error" (use ctl_error() to give the message; without one the status is
 * "error failed").  Runs on the ctl thread.
 */
typedef int (*ctl_handler_fn)(int argc, char **argv, struct ctl_out *out, void *arg);

struct ctl_server *ctl_server_new(void);
/*
 * Register fn for requests whose leading words equal command_prefix's words
 * ("show routes learned").  The longest matching prefix wins, so "show
 * routes" and "show routes learned" coexist; registering an existing prefix
 * replaces it.  help (may be NULL) is one line shown by the built-in "help",
 * e.g. "show routes learned PEER [--json]".  Returns 0, or -1 if the prefix
 * is empty or too long.
 */
int ctl_register(struct ctl_server *srv, const char *command_prefix, ctl_handler_fn fn,
		 void *arg);
int ctl_register_help(struct ctl_server *srv, const char *command_prefix, const char *help,
		      ctl_handler_fn fn, void *arg);
/* Called on the ctl thread when it starts and before it exits. */
void ctl_server_set_hooks(struct ctl_server *srv, void (*init)(void *), void (*fini)(void *),
			  void *arg);
/*
 * Create the socket at path with the given file mode (0 means 0600), and
 * start the thread.  A stale socket file (nobody accepting) is replaced; a
 * live one (another daemon) or a non-socket file is an error.  Returns 0, or
 * -1 with a message in err.
 */
int ctl_server_start(struct ctl_server *srv, const char *path, mode_t mode, char *err,
		     size_t errlen);
/* Stop the thread (in-flight replies are dropped), close and unlink the socket.
 * Safe to call twice or without start. */
void ctl_server_stop(struct ctl_server *srv);
/* Stop, then free the registry. */
void ctl_server_free(struct ctl_server *srv);
/* Requests served since start (for "show memory"-style statistics and tests). */
uint64_t ctl_server_requests(const struct ctl_server *srv);

/* ------------------------------------------------------------ client
 *
 * The client side lives here so the CLI and the tests run the same code.
 * The io library compiles it (ctl.c); the `ricochet` executable, which links
 * only core/, compiles its own copy by defining CTL_CLIENT_IMPLEMENTATION
 * before including this header in exactly one file.
 */

/*
 * Connect to the socket at path, send request (a newline is added), read the
 * reply to the end.  timeout_ms bounds the whole exchange (<= 0: no limit).
 * Returns 0 with *reply (malloc'd, NUL-terminated, caller frees) and *len, or
 * -1 with a message in err (cannot connect, timeout, I/O error).
 */
int ctl_request(const char *path, const char *request, int timeout_ms, char **reply,
		size_t *len, char *err, size_t errlen);
/*
 * Split a reply in place: returns 0 for "ok", 1 for "error" (*errmsg is the
 * message), -1 if the reply is not in the protocol.  *body points after the
 * status line (or to "" when there is none).
 */
int ctl_reply_split(char *reply, const char **errmsg, const char **body);

#ifdef CTL_CLIENT_IMPLEMENTATION
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t ctl_client_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready for ev until the deadline; 0 ready, -1 timeout/error. */
static int ctl_client_wait(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int t = -1;
		if (deadline) {
			int64_t left = deadline - ctl_client_now_ms();
			if (left <= 0)
				return -1;
			t = left > 60000 ? 60000 : (int)left;
		}
		struct pollfd pfd = { .fd = fd, .events = ev };
		int r = poll(&pfd, 1, t);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int ctl_request(const char *path, const char *request, int timeout_ms, char **reply,
		size_t *len, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = timeout_ms > 0 ? ctl_client_now_ms() + timeout_ms : 0;
	size_t rlen = strlen(request);
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int fd;

	*reply = NULL;
	*len = 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	if (rlen + 1 > CTL_REQ_MAX) {
		snprintf(err, errlen, "request too long (%zu bytes, at most %d)", rlen,
			 CTL_REQ_MAX - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* A UNIX connect completes at once unless the backlog is full; then it
	 * blocks for at most the send timeout. */
	if (timeout_ms > 0) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000,
				      .tv_usec = (timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* the request, then a newline, in as many writes as the socket takes */
	char *msg = malloc(rlen + 2);
	if (!msg) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -1;
	}
	memcpy(msg, request, rlen);
	msg[rlen] = '\n';
	for (size_t off = 0; off < rlen + 1;) {
		ssize_t w = send(fd, msg + off, rlen + 1 - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
		    !ctl_client_wait(fd, POLLOUT, deadline))
			continue;
		snprintf(err, errlen, "%s: %s", path,
			 w < 0 && errno != EAGAIN ? strerror(errno) : "timed out sending");
		free(msg);
		close(fd);
		return -1;
	}
	free(msg);
	shutdown(fd, SHUT_WR);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				snprintf(err, errlen, "out of memory reading the reply");
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if ((errno == EAGAIN || errno == EINTR) && !ctl_client_wait(fd, POLLIN, deadline))
			continue;
		snprintf(err, errlen, "%s: %s", path,
			 errno != EAGAIN ? strerror(errno) : "timed out waiting for the reply");
		goto fail;
	}
	close(fd);
	if (!buf && !(buf = malloc(1))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	buf[n] = 0;
	*reply = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

int ctl_reply_split(char *reply, const char **errmsg, const char **body)
{
	char *nl = strchr(reply, '\n');
	*errmsg = NULL;
	*body = nl ? nl + 1 : "";
	if (nl)
		*nl = 0;
	if (!strcmp(reply, "ok"))
		return 0;
	if (!strncmp(reply, "error", 5) && (reply[5] == ' ' || reply[5] == 0)) {
		*errmsg = reply[5] ? reply + 6 : "failed";
		return 1;
	}
	if (nl)
		*nl = '\n';
	*body = reply;
	return -1;
}
#endif /* CTL_CLIENT_IMPLEMENTATION */

#endif
