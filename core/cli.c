/*
 * cli.c - `ricochet`, the command-line client of the ricochetd control socket.
 *
 * Single-threaded, short-lived.  It finds the socket, sends the command line
 * as one request, prints the body of the reply and exits non-zero when the
 * status is "error".  The command set is the server's: the client passes
 * anything through, so a new daemon command needs no client change.  The
 * wire exchange is ctl_request() from io/ctl.h, compiled here from the
 * header (this binary links only core/), the same code the ctl tests run.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#define CTL_CLIENT_IMPLEMENTATION
#include "io/ctl.h"

#define CLI_RUN_SOCKET "/run/ricochet.sock"
#define CLI_TMP_SOCKET "/tmp/ricochet.sock"

enum { CLI_OK = 0, CLI_ERR_REPLY = 1, CLI_ERR_USAGE = 2, CLI_ERR_CONNECT = 3 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: ricochet [-s SOCKET | -c CONFIG] [-t SECONDS] [--json] COMMAND...\n"
"\n"
"Talk to a running ricochetd over its control socket.\n"
"\n"
"commands (the daemon decides; `ricochet help` lists what it serves):\n"
"  show summary                    router id, AS, peers up/down, route counts\n"
"  show peers                      one line per session: state, uptime, prefixes\n"
"  show routes [PREFIX]            the RIB, or the paths for one prefix\n"
"  show routes learned PEER        routes received from PEER (an address)\n"
"  show routes advertised PEER     routes sent to PEER\n"
"  show memory                     per-type memory counters\n"
"  reload                          re-read the configuration file\n"
"  refresh PEER [ipv4|ipv6]        ask PEER to re-send its routes (ROUTE-REFRESH)\n"
"  help                            the daemon's list of commands\n"
"\n"
"options:\n"
"  -s, --socket PATH    control socket (default: the config's control-socket with -c,\n"
"                       else $RICOCHET_SOCKET, else " CLI_RUN_SOCKET ",\n"
"                       else " CLI_TMP_SOCKET " when the former does not exist)\n"
"  -c, --config FILE    read the socket path from this ricochetd configuration\n"
"  -j, --json           machine-readable output (same as a trailing --json)\n"
"  -t, --timeout SECS   give up after SECS seconds (default 60, 0 = wait forever)\n"
"  -h, --help           this text\n"
"\n"
"exit status: 0 ok, 1 the daemon answered \"error\", 2 usage or configuration\n"
"problem, 3 cannot reach the daemon.\n");
}

/* The socket path as documented in usage(); NULL (message printed) on error. */
static char *pick_socket(const char *opt_socket, const char *opt_config)
{
	char *s;
	if (opt_socket)
		s = strdup(opt_socket);
	else if (opt_config) {
		char err[512];
		struct cfg *c = cfg_load(opt_config, err, sizeof(err));
		if (!c) {
			fprintf(stderr, "ricochet: %s\n", err);
			return NULL;
		}
		s = strdup(c->ctl_socket);
		cfg_free(c);
	} else if (getenv("RICOCHET_SOCKET") && *getenv("RICOCHET_SOCKET")) {
		s = strdup(getenv("RICOCHET_SOCKET"));
	} else if (access(CLI_RUN_SOCKET, F_OK) == 0) {
		s = strdup(CLI_RUN_SOCKET);
	} else {
		s = strdup(CLI_TMP_SOCKET);
	}
	if (!s) {
		fprintf(stderr, "ricochet: out of memory\n");
		exit(CLI_ERR_USAGE);
	}
	return s;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *opt_socket = NULL, *opt_config = NULL;
	bool json = false;
	long timeout_s = 60;
	int c;

	/* "+": stop at the first word of the command, so its own flags pass through */
	while ((c = getopt_long(argc, argv, "+s:c:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': opt_socket = optarg; break;
		case 'c': opt_config = optarg; break;
		case 'j': json = true; break;
		case 't': {
			char *end;
			errno = 0;
			timeout_s = strtol(optarg, &end, 10);
			if (errno || *end || timeout_s < 0 || timeout_s > 86400) {
				fprintf(stderr, "ricochet: --timeout wants 0..86400 seconds, got \"%s\"\n",
					optarg);
				return CLI_ERR_USAGE;
			}
			break;
		}
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_ERR_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_ERR_USAGE;
	}

	/* The request: the words joined by single spaces. */
	char req[CTL_REQ_MAX];
	size_t n = 0;
	for (int i = optind; i < argc; i++) {
		const char *w = argv[i];
		for (const char *p = w; *p; p++) {
			if ((unsigned char)*p <= ' ') {
				fprintf(stderr, "ricochet: argument \"%s\" contains a blank or a "
					"control character\n", w);
				return CLI_ERR_USAGE;
			}
		}
		int k = snprintf(req + n, sizeof(req) - n, "%s%s", n ? " " : "", w);
		if (k < 0 || (size_t)k >= sizeof(req) - n) {
			fprintf(stderr, "ricochet: command longer than %d bytes\n", CTL_REQ_MAX - 1);
			return CLI_ERR_USAGE;
		}
		n += (size_t)k;
	}
	if (json) {
		int k = snprintf(req + n, sizeof(req) - n, " --json");
		if (k < 0 || (size_t)k >= sizeof(req) - n) {
			fprintf(stderr, "ricochet: command longer than %d bytes\n", CTL_REQ_MAX - 1);
			return CLI_ERR_USAGE;
		}
	}

	char *path = pick_socket(opt_socket, opt_config);
	if (!path)
		return CLI_ERR_USAGE;
	char err[512], *reply = NULL;
	size_t len;
	if (ctl_request(path, req, (int)timeout_s * 1000, &reply, &len, err, sizeof(err))) {
		fprintf(stderr, "ricochet: %s\n", err);
		if (strstr(err, "cannot connect"))
			fprintf(stderr, "ricochet: is ricochetd running? (socket %s; use -s SOCKET "
				"or -c CONFIG)\n", path);
		free(path);
		return CLI_ERR_CONNECT;
	}
	free(path);

	const char *msg, *body;
	int st = ctl_reply_split(reply, &msg, &body);
	if (st < 0) {
		fprintf(stderr, "ricochet: the daemon's reply is not in the control protocol\n");
		free(reply);
		return CLI_ERR_CONNECT;
	}
	size_t blen = strlen(body);
	if (blen && fwrite(body, 1, blen, stdout) != blen) {
		free(reply);
		return CLI_ERR_CONNECT;
	}
	fflush(stdout);
	if (st == 1)
		fprintf(stderr, "ricochet: error: %s\n", msg);
	free(reply);
	return st == 1 ? CLI_ERR_REPLY : CLI_OK;
}
