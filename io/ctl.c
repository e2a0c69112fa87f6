/*
 * ctl.c - the control socket server, the handler registry and the output
 * buffer / JSON writer handed to handlers.
 *
 * Threads: one dedicated thread (started by ctl_server_start) owns the
 * listening socket and every client connection; it runs the handlers.  The
 * registry is the only state shared with other threads (ctl_register may be
 * called at any time) and is guarded by a mutex held only for lookups and
 * inserts, never while a handler runs.
 *
 * Why built this way: CLI traffic is rare and small, so a single poll(2)
 * loop is plenty; what matters is that nothing a client does can hurt the
 * daemon.  Sockets are non-blocking, requests are bounded (CTL_REQ_MAX) and
 * timed (CTL_READ_TIMEOUT_MS), replies are fully built in memory before the
 * first byte goes out (so the status line can say "error" even if the
 * handler fails halfway) and written as the client drains them, with an
 * idle timeout.  The socket is chmod'ed between bind() and listen(), so no
 * client can connect while the mode is still the umask's.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/msg.h"
#define CTL_CLIENT_IMPLEMENTATION
#include "io/ctl.h"

#define CTL_JSON_DEPTH 32

/* ------------------------------------------------------------ output buffer */

struct ctl_out {
	char *buf;
	size_t len, cap;
	bool json;
	bool overflow;
	char *errmsg;
	unsigned depth;
	bool after_key;
	char ctx[CTL_JSON_DEPTH + 1];        /* '{' or '[' per open level */
	bool need_comma[CTL_JSON_DEPTH + 1];
};

static bool out_reserve(struct ctl_out *o, size_t more)
{
	if (o->overflow)
		return false;
	if (o->len + more + 1 > CTL_OUT_MAX) {
		o->overflow = true;
		return false;
	}
	if (o->len + more + 1 <= o->cap)
		return true;
	size_t ncap = o->cap ? o->cap : 4096;
	while (ncap < o->len + more + 1)
		ncap *= 2;
	char *nb = realloc(o->buf, ncap);
	if (!nb)
		log_fatal("ctl: out of memory (%zu bytes of reply)", ncap);
	o->buf = nb;
	o->cap = ncap;
	return true;
}

void ctl_write(struct ctl_out *o, const void *p, size_t n)
{
	if (!out_reserve(o, n))
		return;
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = 0;
}

void ctl_vprintf(struct ctl_out *o, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		ctl_write(o, small, (size_t)n);
		return;
	}
	if (!out_reserve(o, (size_t)n))
		return;
	vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
	o->len += (size_t)n;
}

void ctl_printf(struct ctl_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctl_vprintf(o, fmt, ap);
	va_end(ap);
}

bool ctl_json(const struct ctl_out *o)
{
	return o->json;
}

int ctl_error(struct ctl_out *o, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_fatal("ctl: out of memory (error message)");
	for (char *c = m; *c; c++)     /* the status is one line */
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	free(o->errmsg);
	o->errmsg = m;
	return -1;
}

struct ctl_out *ctl_out_new(bool json)
{
	struct ctl_out *o = calloc(1, sizeof(*o));
	if (!o)
		log_fatal("ctl: out of memory");
	o->json = json;
	return o;
}

const char *ctl_out_data(const struct ctl_out *o, size_t *len)
{
	if (len)
		*len = o->len;
	return o->buf ? o->buf : "";
}

const char *ctl_out_errmsg(const struct ctl_out *o)
{
	return o->errmsg;
}

void ctl_out_free(struct ctl_out *o)
{
	if (!o)
		return;
	free(o->buf);
	free(o->errmsg);
	free(o);
}

/* ------------------------------------------------------------ JSON */

static void json_value_prefix(struct ctl_out *o)
{
	if (o->depth == 0)
		return;
	if (o->ctx[o->depth] == '{') {
		if (!o->after_key)
			log_fatal("ctl: JSON value inside an object without a key");
		o->after_key = false;
	} else if (o->need_comma[o->depth]) {
		ctl_write(o, ",", 1);
	}
	o->need_comma[o->depth] = true;
}

static void json_open(struct ctl_out *o, char c)
{
	json_value_prefix(o);
	if (o->depth >= CTL_JSON_DEPTH)
		log_fatal("ctl: JSON nesting deeper than %d", CTL_JSON_DEPTH);
	o->depth++;
	o->ctx[o->depth] = c;
	o->need_comma[o->depth] = false;
	ctl_write(o, &c, 1);
}

static void json_close(struct ctl_out *o, char open, char close)
{
	if (o->depth == 0 || o->ctx[o->depth] != open || o->after_key)
		log_fatal("ctl: JSON close '%c' does not match the open level", close);
	o->depth--;
	ctl_write(o, &close, 1);
}

void ctl_json_obj_open(struct ctl_out *o) { json_open(o, '{'); }
void ctl_json_obj_close(struct ctl_out *o) { json_close(o, '{', '}'); }
void ctl_json_arr_open(struct ctl_out *o) { json_open(o, '['); }
void ctl_json_arr_close(struct ctl_out *o) { json_close(o, '[', ']'); }

/* JSON is UTF-8: an octet that does not start a valid sequence is written
 * as U+FFFD, so no string a peer or a file put in our structures can make
 * the answer unreadable to a strict parser. */
static void json_escaped(struct ctl_out *o, const char *s)
{
	const char *run = s;
	ctl_write(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80) {
			size_t l = msg_utf8_seq((const uint8_t *)s, 4);
			if (l) {
				s += l - 1;
				continue;
			}
			ctl_write(o, run, (size_t)(s - run));
			ctl_write(o, "\\ufffd", 6);
			run = s + 1;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ctl_write(o, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"': ctl_write(o, "\\\"", 2); break;
		case '\\': ctl_write(o, "\\\\", 2); break;
		case '\n': ctl_write(o, "\\n", 2); break;
		case '\r': ctl_write(o, "\\r", 2); break;
		case '\t': ctl_write(o, "\\t", 2); break;
		default: ctl_printf(o, "\\u%04x", c); break;
		}
	}
	ctl_write(o, run, (size_t)(s - run));
	ctl_write(o, "\"", 1);
}

void ctl_json_key(struct ctl_out *o, const char *key)
{
	if (o->depth == 0 || o->ctx[o->depth] != '{' || o->after_key)
		log_fatal("ctl: JSON key \"%s\" outside an object or after a key", key);
	if (o->need_comma[o->depth])
		ctl_write(o, ",", 1);
	o->need_comma[o->depth] = true;
	json_escaped(o, key);
	ctl_write(o, ":", 1);
	o->after_key = true;
}

void ctl_json_str(struct ctl_out *o, const char *s)
{
	json_value_prefix(o);
	if (s)
		json_escaped(o, s);
	else
		ctl_write(o, "null", 4);
}

void ctl_json_int(struct ctl_out *o, int64_t v)
{
	json_value_prefix(o);
	ctl_printf(o, "%lld", (long long)v);
}

void ctl_json_uint(struct ctl_out *o, uint64_t v)
{
	json_value_prefix(o);
	ctl_printf(o, "%llu", (unsigned long long)v);
}

void ctl_json_double(struct ctl_out *o, double v)
{
	json_value_prefix(o);
	if (isfinite(v))
		ctl_printf(o, "%.15g", v);
	else
		ctl_write(o, "null", 4);
}

void ctl_json_bool(struct ctl_out *o, bool v)
{
	json_value_prefix(o);
	ctl_write(o, v ? "true" : "false", v ? 4 : 5);
}

void ctl_json_null(struct ctl_out *o)
{
	json_value_prefix(o);
	ctl_write(o, "null", 4);
}

void ctl_json_kstr(struct ctl_out *o, const char *k, const char *s) { ctl_json_key(o, k); ctl_json_str(o, s); }
void ctl_json_kint(struct ctl_out *o, const char *k, int64_t v) { ctl_json_key(o, k); ctl_json_int(o, v); }
void ctl_json_kuint(struct ctl_out *o, const char *k, uint64_t v) { ctl_json_key(o, k); ctl_json_uint(o, v); }
void ctl_json_kdouble(struct ctl_out *o, const char *k, double v) { ctl_json_key(o, k); ctl_json_double(o, v); }
void ctl_json_kbool(struct ctl_out *o, const char *k, bool v) { ctl_json_key(o, k); ctl_json_bool(o, v); }
void ctl_json_kobj_open(struct ctl_out *o, const char *k) { ctl_json_key(o, k); ctl_json_obj_open(o); }
void ctl_json_karr_open(struct ctl_out *o, const char *k) { ctl_json_key(o, k); ctl_json_arr_open(o); }

/* ------------------------------------------------------------ registry */

struct ctl_cmd {
	char *text;                  /* "show routes learned" */
	char *words[CTL_ARGS_MAX];   /* point into wbuf */
	char *wbuf;
	int nwords;
	char *help;
	ctl_handler_fn fn;
	void *arg;
};

struct ctl_conn {
	int fd;                      /* -1 = free slot */
	bool writing;
	char req[CTL_REQ_MAX + 1];
	size_t rlen;
	char *resp;
	size_t resp_len, resp_off;
	int64_t deadline_ms;
};

struct ctl_server {
	pthread_mutex_t lock;        /* guards cmds */
	struct ctl_cmd *cmds;
	size_t ncmds, cap;
	void (*init)(void *), (*fini)(void *);
	void *hook_arg;
	int lfd, wakefd;
	bool running;
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_conn *conns;
	atomic_uint_fast64_t requests;
};

/* Split s (modified in place) into at most max words; returns the count or
 * -1 if there are more. */
static int split_words(char *s, char **w, int max)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(s, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max)
			return -1;
		w[n++] = t;
	}
	return n;
}

struct ctl_server *ctl_server_new(void)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	if (!s)
		log_fatal("ctl: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->lfd = s->wakefd = -1;
	return s;
}

int ctl_register_help(struct ctl_server *s, const char *prefix, const char *help,
		      ctl_handler_fn fn, void *arg)
{
	struct ctl_cmd c = { 0 };
	if (!prefix || !fn || strlen(prefix) >= CTL_REQ_MAX)
		return -1;
	c.text = strdup(prefix);
	c.wbuf = strdup(prefix);
	c.help = help ? strdup(help) : NULL;
	if (!c.text || !c.wbuf || (help && !c.help))
		log_fatal("ctl: out of memory");
	c.nwords = split_words(c.wbuf, c.words, CTL_ARGS_MAX);
	if (c.nwords <= 0) {
		free(c.text);
		free(c.wbuf);
		free(c.help);
		return -1;
	}
	/* canonical text: single spaces */
	size_t o = 0;
	for (int i = 0; i < c.nwords; i++)
		o += (size_t)sprintf(c.text + o, "%s%s", i ? " " : "", c.words[i]);
	c.fn = fn;
	c.arg = arg;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ncmds; i++) {
		if (!strcmp(s->cmds[i].text, c.text)) {
			free(s->cmds[i].text);
			free(s->cmds[i].wbuf);
			free(s->cmds[i].help);
			s->cmds[i] = c;
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
	}
	if (s->ncmds == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct ctl_cmd *n = realloc(s->cmds, ncap * sizeof(*n));
		if (!n)
			log_fatal("ctl: out of memory");
		s->cmds = n;
		s->cap = ncap;
	}
	s->cmds[s->ncmds++] = c;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int ctl_register(struct ctl_server *s, const char *prefix, ctl_handler_fn fn, void *arg)
{
	return ctl_register_help(s, prefix, NULL, fn, arg);
}

void ctl_server_set_hooks(struct ctl_server *s, void (*init)(void *), void (*fini)(void *),
			  void *arg)
{
	s->init = init;
	s->fini = fini;
	s->hook_arg = arg;
}

uint64_t ctl_server_requests(const struct ctl_server *s)
{
	return atomic_load(&((struct ctl_server *)s)->requests);
}

static int cmd_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void builtin_help(struct ctl_server *s, struct ctl_out *o)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->ncmds;
	char **lines = calloc(n + 1, sizeof(*lines));
	if (!lines)
		log_fatal("ctl: out of memory");
	for (size_t i = 0; i < n; i++) {
		lines[i] = strdup(s->cmds[i].help ? s->cmds[i].help : s->cmds[i].text);
		if (!lines[i])
			log_fatal("ctl: out of memory");
	}
	pthread_mutex_unlock(&s->lock);
	qsort(lines, n, sizeof(*lines), cmd_cmp);
	if (o->json) {
		ctl_json_arr_open(o);
		for (size_t i = 0; i < n; i++)
			ctl_json_str(o, lines[i]);
		ctl_json_arr_close(o);
	} else {
		ctl_printf(o, "commands (add --json for machine-readable output):\n");
		for (size_t i = 0; i < n; i++)
			ctl_printf(o, "  %s\n", lines[i]);
		ctl_printf(o, "  help\n");
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/*
 * Run one request and return the full reply (status line + body), malloc'd.
 * Exposed to the thread loop only.
 */
static char *dispatch(struct ctl_server *s, char *req, size_t *len)
{
	struct ctl_out *o = ctl_out_new(false);
	char *w[CTL_ARGS_MAX + 1];
	int n = -1, rc = -1;

	for (char *c = req; *c; c++) {
		if ((unsigned char)*c < 0x20 && *c != '\t' && *c != '\r' && *c != '\n') {
			ctl_error(o, "request contains control characters");
			goto reply;
		}
	}
	n = split_words(req, w, CTL_ARGS_MAX);
	if (n < 0) {
		ctl_error(o, "too many words in the request (at most %d)", CTL_ARGS_MAX);
		goto reply;
	}
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!strcmp(w[i], "--json"))
			o->json = true;
		else
			w[k++] = w[i];
	}
	n = k;
	w[n] = NULL;
	if (n == 0) {
		ctl_error(o, "empty request (try \"help\")");
		goto reply;
	}

	ctl_handler_fn fn = NULL;
	void *arg = NULL;
	int best = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ncmds; i++) {
		const struct ctl_cmd *c = &s->cmds[i];
		if (c->nwords > n || c->nwords <= best)
			continue;
		int j = 0;
		while (j < c->nwords && !strcmp(c->words[j], w[j]))
			j++;
		if (j == c->nwords) {
			best = c->nwords;
			fn = c->fn;
			arg = c->arg;
		}
	}
	pthread_mutex_unlock(&s->lock);

	if (fn) {
		rc = fn(n - best, w + best, o, arg);
		if (rc && !o->errmsg)
			ctl_error(o, "failed");
		if (!rc && o->errmsg)
			rc = -1;
	} else if (!strcmp(w[0], "help")) {
		builtin_help(s, o);
		rc = 0;
	} else {
		char cmd[128] = "";
		size_t off = 0;
		for (int i = 0; i < n && i < 3 && off < sizeof(cmd); i++)
			off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "",
						w[i]);
		ctl_error(o, "unknown command \"%s\" (try \"help\")", cmd);
	}
	if (o->overflow) {
		rc = -1;
		ctl_error(o, "reply larger than %u MiB; narrow the request", CTL_OUT_MAX >> 20);
		o->len = 0;
	}
reply:;
	size_t blen = 0;
	const char *body = ctl_out_data(o, &blen);
	const char *msg = rc ? (o->errmsg ? o->errmsg : "failed") : NULL;
	size_t hlen = msg ? 7 + strlen(msg) : 3;
	bool nl = blen && body[blen - 1] != '\n';
	char *r = malloc(hlen + blen + 2);
	if (!r)
		log_fatal("ctl: out of memory (reply)");
	if (msg)
		sprintf(r, "error %s\n", msg);
	else
		memcpy(r, "ok\n", 4);
	memcpy(r + hlen, body, blen);
	if (nl)
		r[hlen + blen++] = '\n';
	*len = hlen + blen;
	ctl_out_free(o);
	return r;
}

/* ------------------------------------------------------------ thread */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->resp);
	c->resp = NULL;
	c->rlen = c->resp_len = c->resp_off = 0;
	c->writing = false;
}

static void conn_respond(struct ctl_server *s, struct ctl_conn *c)
{
	c->req[c->rlen] = 0;
	char *nl = memchr(c->req, '\n', c->rlen);
	if (nl)
		*nl = 0;
	c->resp = dispatch(s, c->req, &c->resp_len);
	c->resp_off = 0;
	c->writing = true;
	c->deadline_ms = now_ms() + CTL_WRITE_TIMEOUT_MS;
	atomic_fetch_add(&s->requests, 1);
}

static void conn_reject(struct ctl_conn *c, const char *msg)
{
	free(c->resp);
	c->resp = strdup(msg);
	if (!c->resp)
		log_fatal("ctl: out of memory");
	c->resp_len = strlen(msg);
	c->resp_off = 0;
	c->writing = true;
	c->deadline_ms = now_ms() + CTL_WRITE_TIMEOUT_MS;
}

static void conn_read(struct ctl_server *s, struct ctl_conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->req + c->rlen, CTL_REQ_MAX - c->rlen, 0);
		if (r > 0) {
			size_t old = c->rlen;
			c->rlen += (size_t)r;
			if (memchr(c->req + old, '\n', (size_t)r)) {
				conn_respond(s, c);
				return;
			}
			if (c->rlen == CTL_REQ_MAX) {
				conn_reject(c, "error request too long\n");
				return;
			}
			continue;
		}
		if (r == 0) {          /* write shutdown: the request is what we have */
			if (c->rlen)
				conn_respond(s, c);
			else
				conn_close(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			conn_close(c);
		return;
	}
}

static void conn_write(struct ctl_conn *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t w = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			c->resp_off += (size_t)w;
			c->deadline_ms = now_ms() + CTL_WRITE_TIMEOUT_MS;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		break;                 /* client went away */
	}
	conn_close(c);
}

static void accept_all(struct ctl_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("ctl: accept on %s: %s", s->path, strerror(errno));
			return;
		}
		struct ctl_conn *c = NULL;
		for (size_t i = 0; i < CTL_CLIENTS_MAX; i++) {
			if (s->conns[i].fd < 0) {
				c = &s->conns[i];
				break;
			}
		}
		if (!c) {
			static const char busy[] = "error too many control clients, retry later\n";
			ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->rlen = 0;
		c->writing = false;
		c->deadline_ms = now_ms() + CTL_READ_TIMEOUT_MS;
	}
}

static void *ctl_thread(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd pfd[CTL_CLIENTS_MAX + 2];
	int slot[CTL_CLIENTS_MAX + 2];

	if (s->init)
		s->init(s->hook_arg);
	for (;;) {
		int n = 0, timeout = -1;
		int64_t now = now_ms();
		pfd[n++] = (struct pollfd){ .fd = s->wakefd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
			struct ctl_conn *c = &s->conns[i];
			if (c->fd < 0)
				continue;
			if (now >= c->deadline_ms) {
				/* a silent reader gets told why, if its socket will take it */
				if (!c->writing) {
					static const char t[] = "error request timed out\n";
					ssize_t w = send(c->fd, t, sizeof(t) - 1,
							 MSG_NOSIGNAL | MSG_DONTWAIT);
					(void)w;
				}
				conn_close(c);
				continue;
			}
			int left = (int)(c->deadline_ms - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
			slot[n] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = c->writing ? POLLOUT : POLLIN };
		}
		int r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR) {
			log_err("ctl: poll: %s", strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		if (pfd[0].revents)
			break;         /* ctl_server_stop */
		if (pfd[1].revents & POLLIN)
			accept_all(s);
		for (int k = 2; k < n; k++) {
			struct ctl_conn *c = &s->conns[slot[k]];
			if (!pfd[k].revents || c->fd != pfd[k].fd)
				continue;
			if (c->writing)
				conn_write(c);
			else if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(s, c);
			if (c->fd >= 0 && c->writing && !(pfd[k].revents & POLLOUT))
				conn_write(c); /* try at once; most replies fit the buffer */
		}
	}
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		conn_close(&s->conns[i]);
	if (s->fini)
		s->fini(s->hook_arg);
	return NULL;
}

/* ------------------------------------------------------------ start / stop */

int ctl_server_start(struct ctl_server *s, const char *path, mode_t mode, char *err,
		     size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (s->running) {
		snprintf(err, errlen, "control socket already started on %s", s->path);
		return -1;
	}
	if (!mode)
		mode = 0600;
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: control socket path empty or longer than %zu", path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket; not replacing it",
				 path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "%s: another process is serving this socket "
				 "(is ricochetd already running?)", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);          /* stale: left behind by a crash */
	}
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "%s: bind: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, mode) < 0 || stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(s->lfd, 16) < 0) {
		snprintf(err, errlen, "%s: listen: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wakefd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		unlink(path);
		goto fail;
	}
	if (!s->conns) {
		s->conns = calloc(CTL_CLIENTS_MAX, sizeof(*s->conns));
		if (!s->conns)
			log_fatal("ctl: out of memory");
	}
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		s->conns[i].fd = -1;

	/* signals belong to the main thread */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, ctl_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));
		unlink(path);
		close(s->wakefd);
		s->wakefd = -1;
		goto fail;
	}
	pthread_setname_np(s->thread, "ricochet-ctl");
	s->running = true;
	return 0;
fail:
	close(s->lfd);
	s->lfd = -1;
	return -1;
}

void ctl_server_stop(struct ctl_server *s)
{
	struct stat st;
	if (!s || !s->running)
		return;
	uint64_t one = 1;
	if (write(s->wakefd, &one, sizeof(one)) != sizeof(one))
		log_fatal("ctl: cannot wake the control thread: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->wakefd);
	close(s->lfd);
	s->wakefd = s->lfd = -1;
	/* unlink only our own socket, not one a newer daemon put in its place */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	s->running = false;
}

void ctl_server_free(struct ctl_server *s)
{
	if (!s)
		return;
	ctl_server_stop(s);
	for (size_t i = 0; i < s->ncmds; i++) {
		free(s->cmds[i].text);
		free(s->cmds[i].wbuf);
		free(s->cmds[i].help);
	}
	free(s->cmds);
	free(s->conns);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
