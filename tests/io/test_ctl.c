/*
 * test_ctl.c - unit tests for io/ctl.c: the server on a temporary socket,
 * handlers reached through the same client code the `ricochet` CLI uses
 * (ctl_request: connect, send one line, read to EOF), the 0600 mode, errors
 * for unknown commands, bounded requests, a silent client that must not
 * block others, stale/live socket handling, and the JSON writer.
 * Threads: the test thread plays the client; the server runs its own thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/ctl.h"

#define TIMEOUT_MS 10000

struct fixture {
	char dir[64];
	char path[128];
	struct ctl_server *srv;
	int calls;
};

static int h_peers(int argc, char **argv, struct ctl_out *out, void *arg)
{
	struct fixture *f = arg;
	f->calls++;
	if (argc)
		return ctl_error(out, "usage: show peers [--json]");
	if (ctl_json(out)) {
		ctl_json_arr_open(out);
		ctl_json_obj_open(out);
		ctl_json_kstr(out, "address", "127.0.1.1");
		ctl_json_kuint(out, "asn", 65000);
		ctl_json_kstr(out, "state", "Established");
		ctl_json_obj_close(out);
		ctl_json_arr_close(out);
	} else {
		ctl_printf(out, "%-12s %-6s %s\n", "Neighbor", "AS", "State");
		ctl_printf(out, "%-12s %-6u %s\n", "127.0.1.1", 65000u, "Established");
	}
	return 0;
}

/* Echo the handler name and argv so the test can check prefix matching. */
static int h_echo(int argc, char **argv, struct ctl_out *out, void *arg)
{
	ctl_printf(out, "%s", (const char *)arg);
	for (int i = 0; i < argc; i++)
		ctl_printf(out, " [%s]", argv[i]);
	assert_null(argv[argc]);
	return 0;
}

static int h_fail(int argc, char **argv, struct ctl_out *out, void *arg)
{
	ctl_printf(out, "partial output\n");
	return ctl_error(out, "no such peer %s\nsecond line", argc ? argv[0] : "?");
}

static int h_silent_fail(int argc, char **argv, struct ctl_out *out, void *arg)
{
	return 1;
}

static int h_big(int argc, char **argv, struct ctl_out *out, void *arg)
{
	for (int i = 0; i < 100000; i++)
		ctl_printf(out, "10.%d.%d.0/24 via 127.0.1.1\n", i / 256 % 256, i % 256);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/ricochet-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	f->srv = ctl_server_new();
	assert_int_equal(ctl_register_help(f->srv, "show peers", "show peers [--json]", h_peers, f), 0);
	assert_int_equal(ctl_register(f->srv, "show routes", h_echo, "routes"), 0);
	assert_int_equal(ctl_register(f->srv, "show  routes   learned", h_echo, "learned"), 0);
	assert_int_equal(ctl_register(f->srv, "show routes advertised", h_echo, "advertised"), 0);
	assert_int_equal(ctl_register(f->srv, "show peer", h_fail, NULL), 0);
	assert_int_equal(ctl_register(f->srv, "silent", h_silent_fail, NULL), 0);
	assert_int_equal(ctl_register(f->srv, "big", h_big, NULL), 0);
	assert_int_equal(ctl_register(f->srv, "   ", h_big, NULL), -1);
	char err[256];
	if (ctl_server_start(f->srv, f->path, 0, err, sizeof(err)))
		fail_msg("start: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ctl_server_free(f->srv);
	struct stat st;
	assert_int_not_equal(stat(f->path, &st), 0);   /* stop unlinks the socket */
	rmdir(f->dir);
	free(f);
	return 0;
}

/* One exchange through the client path; returns the status (0 ok, 1 error). */
static int ask(struct fixture *f, const char *req, char **reply, const char **msg,
	       const char **body)
{
	char err[256];
	size_t len;
	if (ctl_request(f->path, req, TIMEOUT_MS, reply, &len, err, sizeof(err)))
		fail_msg("request \"%s\": %s", req, err);
	assert_int_equal(strlen(*reply), len);
	int st = ctl_reply_split(*reply, msg, body);
	assert_int_not_equal(st, -1);
	return st;
}

static void test_mode(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_text_and_json(void **state)
{
	struct fixture *f = *state;
	char *r;
	const char *msg, *body;
	assert_int_equal(ask(f, "show peers", &r, &msg, &body), 0);
	assert_string_equal(body, "Neighbor     AS     State\n127.0.1.1    65000  Established\n");
	free(r);
	assert_int_equal(ask(f, "show peers --json", &r, &msg, &body), 0);
	assert_string_equal(body, "[{\"address\":\"127.0.1.1\",\"asn\":65000,\"state\":\"Established\"}]\n");
	free(r);
	assert_int_equal(ask(f, "  --json   show\tpeers ", &r, &msg, &body), 0);
	assert_non_null(strstr(body, "\"Established\""));
	free(r);
	assert_int_equal(f->calls, 3);
	assert_int_equal(ctl_server_requests(f->srv), 3);
}

static void test_prefix_matching(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *req, *want;
	} cases[] = {
		{ "show routes", "routes\n" },
		{ "show routes 10.0.0.0/8", "routes [10.0.0.0/8]\n" },
		{ "show routes learned 127.0.1.1", "learned [127.0.1.1]\n" },
		{ "show routes advertised 127.0.1.1 --json", "advertised [127.0.1.1]\n" },
		{ "show routes learnedx", "routes [learnedx]\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r;
		const char *msg, *body;
		assert_int_equal(ask(f, cases[i].req, &r, &msg, &body), 0);
		assert_string_equal(body, cases[i].want);
		free(r);
	}
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	char *r;
	const char *msg, *body;

	assert_int_equal(ask(f, "frobnicate the widgets", &r, &msg, &body), 1);
	assert_string_equal(msg, "unknown command \"frobnicate the widgets\" (try \"help\")");
	assert_string_equal(body, "");
	free(r);
	assert_int_equal(ask(f, "show", &r, &msg, &body), 1);      /* a prefix of a command */
	assert_non_null(strstr(msg, "unknown command"));
	free(r);
	assert_int_equal(ask(f, "show peer 10.9.9.9", &r, &msg, &body), 1);
	assert_string_equal(msg, "no such peer 10.9.9.9 second line");
	assert_string_equal(body, "partial output\n");
	free(r);
	assert_int_equal(ask(f, "silent", &r, &msg, &body), 1);
	assert_string_equal(msg, "failed");
	free(r);
	assert_int_equal(ask(f, "show peers extra", &r, &msg, &body), 1);
	assert_string_equal(msg, "usage: show peers [--json]");
	free(r);
	assert_int_equal(ask(f, "", &r, &msg, &body), 1);
	assert_non_null(strstr(msg, "empty request"));
	free(r);
	assert_int_equal(ask(f, "show\001peers", &r, &msg, &body), 1);
	assert_non_null(strstr(msg, "control characters"));
	free(r);

	/* The client refuses an oversized request; a raw one gets an error. */
	char big[CTL_REQ_MAX + 100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	char err[256];
	size_t len;
	assert_int_equal(ctl_request(f->path, big, TIMEOUT_MS, &r, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "request too long"));

	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, big, CTL_REQ_MAX, MSG_NOSIGNAL), CTL_REQ_MAX);
	char rep[128] = "";
	size_t got = 0;
	for (int i = 0; i < 100 && got < sizeof(rep) - 1; i++) {
		ssize_t n = recv(fd, rep + got, sizeof(rep) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	assert_string_equal(rep, "error request too long\n");
}

static void test_help(void **state)
{
	struct fixture *f = *state;
	char *r;
	const char *msg, *body;
	assert_int_equal(ask(f, "help", &r, &msg, &body), 0);
	assert_non_null(strstr(body, "  show peers [--json]\n"));
	assert_non_null(strstr(body, "  show routes learned\n"));
	free(r);
	assert_int_equal(ask(f, "help --json", &r, &msg, &body), 0);
	assert_int_equal(body[0], '[');
	assert_non_null(strstr(body, "\"show routes advertised\""));
	free(r);
}

/* A client that connects and says nothing must not delay the next one. */
static void test_silent_client_does_not_block(void **state)
{
	struct fixture *f = *state;
	int idle[3];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, f->path);
	for (int i = 0; i < 3; i++) {
		idle[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(connect(idle[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	/* half a request from one of them */
	assert_int_equal(send(idle[0], "show pe", 7, MSG_NOSIGNAL), 7);
	char *r;
	const char *msg, *body;
	assert_int_equal(ask(f, "show peers", &r, &msg, &body), 0);
	free(r);
	/* the half request completes later and is served */
	assert_int_equal(send(idle[0], "ers\n", 4, MSG_NOSIGNAL), 4);
	char rep[256] = "";
	size_t got = 0;
	for (int i = 0; i < 100 && got < sizeof(rep) - 1; i++) {
		ssize_t n = recv(idle[0], rep + got, sizeof(rep) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	assert_int_equal(strncmp(rep, "ok\nNeighbor", 11), 0);
	for (int i = 0; i < 3; i++)
		close(idle[i]);
}

static void test_big_reply(void **state)
{
	struct fixture *f = *state;
	char *r;
	const char *msg, *body;
	assert_int_equal(ask(f, "big", &r, &msg, &body), 0);
	size_t lines = 0;
	for (const char *p = body; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 100000);
	assert_non_null(strstr(body, "10.134.159.0/24 via 127.0.1.1\n"));  /* i = 99999 */
	free(r);
}

struct hammer {
	struct fixture *f;
	int ok;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < 50; i++) {
		char *r = NULL, err[256];
		size_t len;
		const char *msg, *body;
		if (ctl_request(h->f->path, "show routes learned 127.0.1.1", TIMEOUT_MS, &r, &len,
				err, sizeof(err)))
			continue;
		if (ctl_reply_split(r, &msg, &body) == 0 &&
		    !strcmp(body, "learned [127.0.1.1]\n"))
			h->ok++;
		free(r);
	}
	return NULL;
}

static void test_concurrent_clients(void **state)
{
	struct fixture *f = *state;
	pthread_t t[4];
	struct hammer h[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .f = f };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].ok, 50);
	}
}

/* Stale sockets are replaced, live ones and regular files are not; mode is honoured. */
static void test_start_rules(void **state)
{
	struct fixture *f = *state;
	char err[256], path[160];
	struct ctl_server *s2 = ctl_server_new();

	/* the path of a live server */
	assert_int_equal(ctl_server_start(s2, f->path, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another process is serving"));

	/* a regular file */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(ctl_server_start(s2, path, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	unlink(path);

	/* a stale socket: bound, never listening, closed */
	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	if (ctl_server_start(s2, path, 0660, err, sizeof(err)))
		fail_msg("stale socket not replaced: %s", err);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	char *r;
	size_t len;
	assert_int_equal(ctl_request(path, "nothing registered", TIMEOUT_MS, &r, &len, err,
				     sizeof(err)), 0);
	assert_int_equal(strncmp(r, "error unknown command", 21), 0);
	free(r);
	ctl_server_stop(s2);
	ctl_server_stop(s2);                          /* twice is fine */
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(ctl_request(path, "help", TIMEOUT_MS, &r, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot connect"));
	ctl_server_free(s2);
}

static void test_json_writer(void **state)
{
	(void)state;
	struct ctl_out *o = ctl_out_new(true);
	assert_true(ctl_json(o));
	ctl_json_obj_open(o);
	ctl_json_kstr(o, "s", "a\"b\\c\nd\te\001f\xc3\xa9");
	ctl_json_kint(o, "neg", -42);
	ctl_json_kuint(o, "big", UINT64_MAX);
	ctl_json_kdouble(o, "pi", 3.25);
	ctl_json_kdouble(o, "nan", 0.0 / 0.0);
	ctl_json_kbool(o, "t", true);
	ctl_json_kstr(o, "null", NULL);
	ctl_json_karr_open(o, "list");
	ctl_json_uint(o, 1);
	ctl_json_obj_open(o);
	ctl_json_obj_close(o);
	ctl_json_arr_open(o);
	ctl_json_arr_close(o);
	ctl_json_null(o);
	ctl_json_bool(o, false);
	ctl_json_arr_close(o);
	ctl_json_kobj_open(o, "o");
	ctl_json_kint(o, "x", 0);
	ctl_json_obj_close(o);
	ctl_json_obj_close(o);
	size_t len;
	const char *d = ctl_out_data(o, &len);
	assert_string_equal(d, "{\"s\":\"a\\\"b\\\\c\\nd\\te\\u0001f\xc3\xa9\",\"neg\":-42,"
			    "\"big\":18446744073709551615,\"pi\":3.25,\"nan\":null,\"t\":true,"
			    "\"null\":null,\"list\":[1,{},[],null,false],\"o\":{\"x\":0}}");
	assert_int_equal(len, strlen(d));
	assert_null(ctl_out_errmsg(o));
	assert_int_equal(ctl_error(o, "bad %d", 7), -1);
	assert_string_equal(ctl_out_errmsg(o), "bad 7");
	ctl_out_free(o);

	/* invalid UTF-8 (stray continuation, overlong, surrogate, cut sequence)
	 * becomes U+FFFD; valid sequences of every length pass as they are */
	o = ctl_out_new(true);
	ctl_json_str(o, "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x9c" "e\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xe2");
	d = ctl_out_data(o, &len);
	assert_string_equal(d, "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffde"
			    "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\\ufffd\"");
	ctl_out_free(o);

	/* a long printf goes through the slow path */
	o = ctl_out_new(false);
	char longs[1000];
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	ctl_printf(o, "<%s>", longs);
	assert_int_equal(strlen(ctl_out_data(o, NULL)), 1001);
	ctl_out_free(o);
}

static void test_reply_split(void **state)
{
	(void)state;
	const char *msg, *body;
	char a[] = "ok\nbody\n", b[] = "error oops\nx", c[] = "garbage", d[] = "error";
	assert_int_equal(ctl_reply_split(a, &msg, &body), 0);
	assert_string_equal(body, "body\n");
	assert_int_equal(ctl_reply_split(b, &msg, &body), 1);
	assert_string_equal(msg, "oops");
	assert_string_equal(body, "x");
	assert_int_equal(ctl_reply_split(c, &msg, &body), -1);
	assert_string_equal(body, "garbage");
	assert_int_equal(ctl_reply_split(d, &msg, &body), 1);
	assert_string_equal(msg, "failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_and_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_matching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_client_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_rules, setup, teardown),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_reply_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
