/*
 * test_config.c - unit tests for core/config.c: the example parses to
 * the right struct, defaults, a table of bad configurations whose messages
 * must name file:line:column and the key path, peer matching precedence, and
 * the reload diff.  Single-threaded; reads the YAML files in tests/core/configs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"

static char errbuf[512];

/*
 * tests/core/configs/NAME, found next to this source file whatever the
 * working directory: __FILE__ is either absolute or relative to the build
 * root, which is two levels above this executable (BUILD/tests/core/).
 */
static const char *cfg_file(const char *name)
{
	static char path[2048];
	char exe[1024];
	const char *src = __FILE__;
	const char *slash = strrchr(src, '/');
	int dir = slash ? (int)(slash - src) : 0;
	if (src[0] == '/') {
		snprintf(path, sizeof(path), "%.*s/configs/%s", dir, src, name);
		return path;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	for (int up = 0; up < 3; up++) {          /* strip test_config, core, tests */
		char *s = strrchr(exe, '/');
		assert_non_null(s);
		*s = 0;
	}
	snprintf(path, sizeof(path), "%s/%.*s%sconfigs/%s", exe, dir, src, dir ? "/" : "", name);
	return path;
}

static struct bgp_addr A(const char *s)
{
	struct bgp_addr a;
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, s, a.addr) == 1) {
		a.family = BGP_FAM_IPV4;
	} else {
		assert_int_equal(inet_pton(AF_INET6, s, a.addr), 1);
		a.family = BGP_FAM_IPV6;
	}
	return a;
}

static uint32_t ip4(const char *s)
{
	struct in_addr in;
	assert_int_equal(inet_pton(AF_INET, s, &in), 1);
	return ntohl(in.s_addr);
}

static struct cfg *load_ok(const char *yaml)
{
	struct cfg *c = cfg_load_string(yaml, "t.yaml", errbuf, sizeof(errbuf));
	if (!c)
		fail_msg("unexpected error: %s", errbuf);
	return c;
}

/* ------------------------------------------------------------ the example */

static void test_example(void **state)
{
	(void)state;
	struct cfg *c = cfg_load(cfg_file("example.yaml"), errbuf, sizeof(errbuf));
	if (!c)
		fail_msg("%s", errbuf);
	assert_int_equal(c->router_id, ip4("127.0.0.1"));
	assert_int_equal(c->asn, 65000);
	assert_int_equal(c->cluster_id, ip4("127.0.0.2"));
	assert_int_equal(c->n_listen, 1);
	struct bgp_addr lo = A("127.0.0.1");
	assert_memory_equal(&c->listen[0].addr, &lo, sizeof(lo));
	assert_int_equal(c->listen[0].port, 179);
	assert_string_equal(c->ctl_socket, "/run/ricochet.sock");
	assert_int_equal(c->io_threads, CFG_IOT_PER_PEER);
	assert_int_equal(c->timers.hold, 90);
	assert_int_equal(c->timers.keepalive, 30);
	assert_int_equal(c->timers.connect_retry, 30);
	assert_int_equal(c->max_routes, 5000000);
	assert_true(c->always_compare_med);
	assert_false(c->deterministic_med);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_true(c->has_metrics);
	struct bgp_addr v6lo = A("::1");
	assert_memory_equal(&c->metrics.addr, &v6lo, sizeof(v6lo));
	assert_int_equal(c->metrics.port, 9179);
	assert_string_equal(c->mrt_dir, "/var/lib/ricochet/mrt");
	assert_true(c->has_bmp);
	assert_int_equal(c->bmp.port, 11019);

	assert_int_equal(c->n_peers, 3);
	const struct cfg_peer *p = &c->peers[0];
	struct bgp_addr a = A("127.0.1.1");
	assert_false(p->is_range);
	assert_memory_equal(&p->addr, &a, sizeof(a));
	assert_int_equal(p->plen, 32);
	assert_int_equal(p->asn, 65000);
	assert_int_equal(p->role, CFG_ROLE_RR_CLIENT);
	assert_true(p->passive);
	assert_int_equal(p->families, CFG_FAM_ALL);
	assert_int_equal(p->addpath_send, 4);
	assert_true(p->addpath_receive);
	assert_true(p->route_refresh);
	assert_true(p->extended_messages);
	assert_false(p->gr_enabled);
	assert_int_equal(p->port, 179);
	assert_null(p->description);
	assert_null(p->md5_password);
	assert_int_equal(p->timers.hold, 90);
	assert_int_equal(p->send_hold_time, 480);
	assert_int_equal(p->line, 16);

	p = &c->peers[1];
	assert_memory_equal(&p->addr, &v6lo, sizeof(v6lo));
	assert_int_equal(p->plen, 128);
	assert_string_equal(p->description, "edge router 2");
	assert_int_equal(p->port, 1790);
	assert_true(p->has_local_addr);
	assert_int_equal(p->role, CFG_ROLE_IBGP);
	assert_false(p->passive);               /* explicit peers connect out */
	assert_int_equal(p->families, CFG_FAM_BIT(BGP_FAM_IPV6));
	assert_true(p->gr_enabled);
	assert_int_equal(p->gr_restart_time, 60);
	assert_int_equal(p->max_prefixes, 1000);
	assert_int_equal(p->max_prefixes_warning_pct, 80);
	assert_int_equal(p->max_prefixes_restart, 300);
	assert_string_equal(p->md5_password, "s3cret");
	assert_int_equal(p->ttl_security, 2);
	assert_int_equal(p->send_hold_time, 0);
	assert_int_equal(p->timers.hold, 30);
	assert_int_equal(p->timers.keepalive, 10);  /* hold/3: overriding hold drops the parent's */
	assert_int_equal(p->timers.connect_retry, 30);

	p = &c->peers[2];
	assert_int_equal(p->asn, 65546);            /* asdot 1.10 */
	assert_int_equal(p->role, CFG_ROLE_RS_CLIENT);
	assert_false(p->route_refresh);
	assert_false(p->extended_messages);
	assert_int_equal(p->max_prefixes, 500);
	assert_int_equal(p->max_prefixes_warning_pct, 90);

	assert_int_equal(c->n_ranges, 2);
	p = &c->ranges[0];
	a = A("127.0.0.0");
	assert_true(p->is_range);
	assert_memory_equal(&p->addr, &a, sizeof(a));
	assert_int_equal(p->plen, 8);
	assert_true(p->passive);                  /* ranges default to passive */
	assert_int_equal(p->asn, 65000);
	p = &c->ranges[1];
	assert_int_equal(p->plen, 24);
	assert_int_equal(p->asn, 65000);          /* defaults to the local asn */
	assert_int_equal(p->timers.hold, 90);
	assert_int_equal(p->timers.keepalive, 10);
	cfg_free(c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct cfg *c = cfg_load(cfg_file("default-ish.yaml"), errbuf, sizeof(errbuf));
	if (!c)
		fail_msg("%s", errbuf);
	assert_int_equal(c->asn, 65515);
	assert_int_equal(c->router_id, ip4("192.0.2.1"));
	assert_int_equal(c->cluster_id, c->router_id);
	assert_int_equal(c->n_listen, 2);
	assert_int_equal(c->listen[0].addr.family, BGP_FAM_IPV4);
	assert_int_equal(c->listen[0].port, 179);
	assert_int_equal(c->listen[1].addr.family, BGP_FAM_IPV6);
	assert_int_equal(c->listen[1].port, 179);
	assert_string_equal(c->ctl_socket, "/run/ricochet.sock");
	assert_int_equal(c->io_threads, CFG_IOT_AUTO);
	assert_int_equal(c->timers.hold, 90);
	assert_int_equal(c->timers.keepalive, 30);
	assert_int_equal(c->timers.connect_retry, 30);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_false(c->has_metrics);
	assert_false(c->has_bmp);
	assert_null(c->mrt_dir);
	assert_int_equal(c->max_routes, 0);
	assert_int_equal(c->n_peers, 0);
	assert_int_equal(c->n_ranges, 0);
	assert_false(c->hugepages_off);
	cfg_free(c);

	c = load_ok("router-id: 10.0.0.1\nhugepages: off\n");
	assert_true(c->hugepages_off);
	cfg_free(c);
	c = load_ok("router-id: 10.0.0.1\nhugepages: settle\n");
	assert_false(c->hugepages_off);
	cfg_free(c);

	/* keepalive defaults to hold/3; io-threads as a count; empty listen list */
	c = load_ok("router-id: 10.0.0.1\ntimers: {hold: 60}\nio-threads: 4\nlisten: []\n"
		    "peers: [{address: 10.0.0.2, timers: {hold: 9}}, {address: 10.0.0.3}]\n");
	assert_int_equal(c->timers.keepalive, 20);
	assert_int_equal(c->io_threads, CFG_IOT_COUNT);
	assert_int_equal(c->io_threads_count, 4);
	assert_int_equal(c->n_listen, 0);
	assert_int_equal(c->peers[0].timers.hold, 9);
	assert_int_equal(c->peers[0].timers.keepalive, 3);
	assert_int_equal(c->peers[0].send_hold_time, 480);
	assert_int_equal(c->peers[1].timers.hold, 60);
	assert_int_equal(c->peers[1].timers.keepalive, 20);
	cfg_free(c);

	/* an explicit global keepalive is inherited unless the peer changes hold */
	c = load_ok("router-id: 10.0.0.1\ntimers: {hold: 300, keepalive: 10}\n"
		    "peers: [{address: 10.0.0.2}, {address: 10.0.0.3, timers: {hold: 30}}]\n");
	assert_int_equal(c->peers[0].timers.keepalive, 10);
	assert_int_equal(c->peers[0].send_hold_time, 600);
	assert_int_equal(c->peers[1].timers.keepalive, 10);
	cfg_free(c);

	/* hold 0 means no keepalives */
	c = load_ok("router-id: 10.0.0.1\ntimers: {hold: 0}\n");
	assert_int_equal(c->timers.hold, 0);
	assert_int_equal(c->timers.keepalive, 0);
	cfg_free(c);
}

static void test_embedded_default(void **state)
{
	(void)state;
	struct cfg *c = cfg_load_string(cfg_default_yaml, "<built-in>", errbuf, sizeof(errbuf));
	if (!c)
		fail_msg("%s", errbuf);
	assert_int_equal(c->router_id, ip4("127.0.0.1"));
	assert_int_equal(c->asn, 65515);
	assert_int_equal(c->n_listen, 1);
	assert_int_equal(c->listen[0].port, 1179);
	assert_string_equal(c->ctl_socket, "/tmp/ricochet.sock");
	assert_int_equal(c->n_peers, 0);
	assert_int_equal(c->n_ranges, 1);
	assert_int_equal(c->ranges[0].plen, 8);
	assert_true(c->ranges[0].passive);
	assert_int_equal(c->ranges[0].role, CFG_ROLE_RR_CLIENT);
	assert_int_equal(c->ranges[0].families, CFG_FAM_ALL);
	struct bgp_addr a = A("127.0.0.42");
	assert_ptr_equal(cfg_match_peer(c, &a), &c->ranges[0]);
	cfg_free(c);
}

/* ------------------------------------------------------------ bad configs */

struct bad_case {
	const char *what;
	const char *yaml;
	const char *want;    /* must appear in the error text */
};

#define RID "router-id: 127.0.0.1\n"

static const struct bad_case bad_cases[] = {
	{ "global asn 0", RID "asn: 0\n", "t.yaml:2:6: asn: asn 0 is reserved (RFC 7607)" },
	{ "asn not a number", RID "asn: sixty\n",
	  "t.yaml:2:6: asn: expected an integer 1..4294967295, got \"sixty\"" },
	{ "asn too large", RID "asn: 4294967296\n",
	  "t.yaml:2:6: asn: expected an integer 1..4294967295, got \"4294967296\"" },
	{ "asdot low part too large", RID "asn: 1.70000\n",
	  "t.yaml:2:6: asn: expected an integer 1..4294967295, got \"1.70000\"" },
	{ "peer asn AS_TRANS", RID "peers:\n  - address: 10.0.0.1\n    asn: 23456\n    role: rs-client\n",
	  "t.yaml:4:10: peers[0].asn: asn 23456 is AS_TRANS" },
	{ "hold 1", RID "timers: { hold: 1 }\n",
	  "t.yaml:2:17: timers.hold: hold time must be 0 or at least 3 seconds" },
	{ "peer hold 2", RID "peers:\n  - { address: 10.0.0.1, timers: { hold: 2 } }\n",
	  "t.yaml:3:42: peers[0].timers.hold: hold time must be 0 or at least 3 seconds" },
	{ "keepalive above hold/3", RID "timers:\n  hold: 90\n  keepalive: 60\n",
	  "t.yaml:3:3: timers.keepalive: 60 is more than a third of hold 90" },
	{ "peer keepalive above inherited hold/3", RID "peers:\n  - address: 10.0.0.1\n"
	  "    timers: { keepalive: 31 }\n",
	  "t.yaml:4:13: peers[0].timers.keepalive: 31 is more than a third of hold 90" },
	{ "keepalive 0 with hold", RID "timers: { keepalive: 0 }\n",
	  "t.yaml:2:9: timers.keepalive: must be at least 1 when hold is 90" },
	{ "unknown global key", RID "router_id: 127.0.0.1\n",
	  "t.yaml:2:1: unknown key \"router_id\" (did you mean \"router-id\"?)" },
	{ "unknown peer key", RID "peers:\n  - address: 10.0.0.1\n    pasive: true\n",
	  "t.yaml:4:5: peers[0]: unknown key \"pasive\" (did you mean \"passive\"?)" },
	{ "unknown key far from all", RID "colour: blue\n", "t.yaml:2:1: unknown key \"colour\"" },
	{ "duplicate key", RID "asn: 65000\nasn: 65001\n",
	  "t.yaml:3:1: duplicate key \"asn\" (first at line 2)" },
	{ "duplicate peer key", RID "peers:\n  - { address: 10.0.0.1, port: 1, port: 2 }\n",
	  "t.yaml:3:35: peers[0]: duplicate key \"port\" (first at line 3)" },
	{ "duplicate peer", RID "peers:\n  - address: 10.0.0.1\n  - address: 10.0.0.2\n"
	  "  - address: 10.0.0.1\n",
	  "t.yaml:5:14: peers[2].address: duplicate peer 10.0.0.1 (first at line 3)" },
	{ "duplicate v6 peer spelled differently", RID "peers:\n  - address: \"2001:db8::1\"\n"
	  "  - address: \"2001:db8:0::1\"\n",
	  "t.yaml:4:14: peers[1].address: duplicate peer 2001:db8::1 (first at line 3)" },
	{ "duplicate range", RID "peer-ranges:\n  - prefix: 10.0.0.0/8\n  - prefix: 10.1.0.0/16\n"
	  "  - prefix: 10.0.0.0/8\n",
	  "t.yaml:5:13: peer-ranges[2].prefix: duplicate range 10.0.0.0/8 (first at line 3)" },
	{ "missing router-id", "asn: 65000\n", "t.yaml:1:1: router-id: missing" },
	{ "empty file", "", "t.yaml:1:1: router-id: missing" },
	{ "router-id IPv6", "router-id: \"::1\"\n",
	  "t.yaml:1:12: router-id: expected an IPv4 address (dotted quad), got \"::1\"" },
	{ "router-id zero", "router-id: 0.0.0.0\n",
	  "t.yaml:1:12: router-id: 0.0.0.0 is not a valid identifier" },
	{ "cluster-id garbage", RID "cluster-id: 300.1.1.1\n",
	  "t.yaml:2:13: cluster-id: expected an IPv4 address" },
	{ "active range", RID "peer-ranges:\n  - prefix: 10.0.0.0/8\n    passive: false\n",
	  "t.yaml:4:14: peer-ranges[0].passive: a range cannot connect out" },
	{ "range with address", RID "peer-ranges:\n  - address: 10.0.0.1\n",
	  "t.yaml:3:5: peer-ranges[0]: unknown key \"address\" (a range has a \"prefix\"" },
	{ "peer with prefix", RID "peers:\n  - prefix: 10.0.0.0/8\n",
	  "t.yaml:3:5: peers[0]: unknown key \"prefix\" (a peer has an \"address\"" },
	{ "peer without address", RID "peers:\n  - asn: 65515\n",
	  "t.yaml:3:5: peers[0]: missing key \"address\"" },
	{ "peer address is a prefix", RID "peers:\n  - address: 10.0.0.0/8\n",
	  "t.yaml:3:14: peers[0].address: expected an IP address, got the prefix" },
	{ "bad role", RID "peers:\n  - { address: 10.0.0.1, role: client }\n",
	  "t.yaml:3:32: peers[0].role: expected one of rr-client, ibgp, rs-client, got \"client\" (did you mean \"rr-client\"?)" },
	{ "bad family with hint", RID "peers:\n  - address: 10.0.0.1\n    families: [ipv4-unicast, ipv6-unicats]\n",
	  "t.yaml:4:30: peers[0].families[1]: expected one of ipv4-unicast, ipv6-unicast, "
	  "got \"ipv6-unicats\" (did you mean \"ipv6-unicast\"?)" },
	{ "family twice", RID "peers:\n  - address: 10.0.0.1\n    families: [ipv4-unicast, ipv4-unicast]\n",
	  "t.yaml:4:30: peers[0].families[1]: family ipv4-unicast listed twice" },
	{ "empty families", RID "peers:\n  - address: 10.0.0.1\n    families: []\n",
	  "t.yaml:4:15: peers[0].families: at least one family is needed" },
	{ "add-path send too large", RID "peers:\n  - address: 10.0.0.1\n    add-path: { send: 300 }\n",
	  "t.yaml:4:23: peers[0].add-path.send: expected an integer 0..255, got \"300\"" },
	{ "add-path receive not bool", RID "peers:\n  - address: 10.0.0.1\n    add-path: { receive: maybe }\n",
	  "t.yaml:4:26: peers[0].add-path.receive: expected true or false, got \"maybe\"" },
	{ "peer port 0", RID "peers:\n  - { address: 10.0.0.1, port: 0 }\n",
	  "t.yaml:3:32: peers[0].port: expected an integer 1..65535, got \"0\"" },
	{ "listen port too large", RID "listen:\n  - { address: 127.0.0.1, port: 70000 }\n",
	  "t.yaml:3:33: listen[0].port: expected an integer 1..65535, got \"70000\"" },
	{ "listen without address", RID "listen:\n  - { port: 179 }\n",
	  "t.yaml:3:5: listen[0]: missing key \"address\"" },
	{ "listen twice", RID "listen:\n  - { address: 127.0.0.1 }\n  - { address: 127.0.0.1, port: 179 }\n",
	  "t.yaml:4:5: listen[1]: listed twice" },
	{ "listen not a list", RID "listen: 127.0.0.1\n",
	  "t.yaml:2:9: listen: expected a list of {address, port}, got a scalar" },
	{ "range host bits", RID "peer-ranges:\n  - prefix: 127.0.0.1/8\n",
	  "t.yaml:3:13: peer-ranges[0].prefix: host bits set in \"127.0.0.1/8\" (did you mean 127.0.0.0/8?)" },
	{ "range length too long", RID "peer-ranges:\n  - prefix: 10.0.0.0/33\n",
	  "t.yaml:3:13: peer-ranges[0].prefix: prefix length 33 is longer than 32" },
	{ "range not a prefix", RID "peer-ranges:\n  - prefix: 10.0.0.0\n",
	  "t.yaml:3:13: peer-ranges[0].prefix: expected a prefix ADDRESS/LENGTH, got \"10.0.0.0\"" },
	{ "md5 too long", RID "peers:\n  - address: 10.0.0.1\n    md5-password: "
	  "\"123456789012345678901234567890123456789012345678901234567890123456789012345678901\"\n",
	  "t.yaml:4:19: peers[0].md5-password: too long (81 characters, at most 80)" },
	{ "ttl-security 255", RID "peers:\n  - { address: 10.0.0.1, ttl-security: 255 }\n",
	  "t.yaml:3:40: peers[0].ttl-security: expected an integer 0..254, got \"255\"" },
	{ "rr-client with foreign asn", RID "asn: 65000\npeers:\n  - { address: 10.0.0.1, asn: 65001 }\n",
	  "t.yaml:4:31: peers[0].asn: a rr-client peer is internal and must have the local asn 65000" },
	{ "rs-client with local asn", RID "peers:\n  - { address: 10.0.0.1, role: rs-client }\n",
	  "t.yaml:3:5: peers[0].asn: an rs-client peer is external" },
	{ "local-address family", RID "peers:\n  - address: 10.0.0.1\n    local-address: \"::1\"\n",
	  "t.yaml:4:20: peers[0].local-address: address family differs" },
	{ "io-threads word", RID "io-threads: many\n",
	  "t.yaml:2:13: io-threads: expected auto, per-peer or a thread count 1..1024, got \"many\"" },
	{ "hugepages word", RID "hugepages: always\n",
	  "t.yaml:2:12: hugepages: expected one of settle, off, got \"always\"" },
	{ "hugepages typo", RID "hugepages: setle\n",
	  "t.yaml:2:12: hugepages: expected one of settle, off, got \"setle\" (did you mean \"settle\"?)" },
	{ "io-threads zero", RID "io-threads: 0\n",
	  "t.yaml:2:13: io-threads: expected an integer 1..1024, got \"0\"" },
	{ "metrics v6 without brackets", RID "metrics: { listen: \"::1:9179\" }\n",
	  "t.yaml:2:20: metrics.listen: write an IPv6 endpoint as [ADDRESS]:PORT" },
	{ "metrics without port", RID "metrics: { listen: 127.0.0.1 }\n",
	  "t.yaml:2:20: metrics.listen: expected ADDRESS:PORT" },
	{ "metrics without listen", RID "metrics: {}\n",
	  "t.yaml:2:10: metrics: missing key \"listen\"" },
	{ "bmp unknown key", RID "bmp: { statoin: 127.0.0.1:1 }\n",
	  "t.yaml:2:8: bmp: unknown key \"statoin\" (did you mean \"station\"?)" },
	{ "log-level", RID "log-level: verbose\n",
	  "t.yaml:2:12: log-level: expected one of debug, info, warn, error, got \"verbose\"" },
	{ "max-prefixes without limit", RID "peers:\n  - address: 10.0.0.1\n    max-prefixes: { restart: 30 }\n",
	  "t.yaml:4:19: peers[0].max-prefixes: missing key \"limit\"" },
	{ "max-prefixes warning 0", RID "peers:\n  - address: 10.0.0.1\n    max-prefixes: { limit: 5, warning-pct: 0 }\n",
	  "t.yaml:4:44: peers[0].max-prefixes.warning-pct: expected an integer 1..100, got \"0\"" },
	{ "graceful-restart time", RID "peers:\n  - address: 10.0.0.1\n    graceful-restart: { restart-time: 5000 }\n",
	  "t.yaml:4:39: peers[0].graceful-restart.restart-time: expected an integer 1..4095, got \"5000\"" },
	{ "peers not a list", RID "peers: { address: 10.0.0.1 }\n",
	  "t.yaml:2:8: peers: expected a list, got a mapping" },
	{ "peer entry not a mapping", RID "peers:\n  - 10.0.0.1\n",
	  "t.yaml:3:5: peers[0]: expected a mapping, got a scalar" },
	{ "root not a mapping", "- router-id: 1.2.3.4\n",
	  "t.yaml:1:1: expected a mapping, got a list" },
	{ "yaml syntax", RID "peers: [ { address: 10.0.0.1 }\n",
	  "t.yaml:3:1: YAML syntax error" },
	{ "two documents", RID "---\nasn: 1\n", "t.yaml:3:1: only one YAML document is allowed" },
	{ "description null", RID "peers:\n  - address: 10.0.0.1\n    description:\n",
	  "peers[0].description: expected a string, got nothing" },
	{ "neighbors hint", RID "neighbors: []\n",
	  "t.yaml:2:1: unknown key \"neighbors\" (explicit neighbours go under \"peers\")" },
	{ "timer not a mapping", RID "timers: 90\n", "t.yaml:2:9: timers: expected a mapping, got a scalar" },
	{ "control socket too long", RID "control-socket: /tmp/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "t.yaml:2:17: control-socket: too long (108 characters, at most 107)" },
};

static void test_bad_configs(void **state)
{
	(void)state;
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);
	size_t failed = 0;
	assert_true(n >= 25);
	for (size_t i = 0; i < n; i++) {
		const struct bad_case *b = &bad_cases[i];
		memset(errbuf, 0, sizeof(errbuf));
		struct cfg *c = cfg_load_string(b->yaml, "t.yaml", errbuf, sizeof(errbuf));
		if (c) {
			cfg_free(c);
			print_error("case \"%s\": loaded, expected an error containing: %s\n",
				    b->what, b->want);
			failed++;
		} else if (!strstr(errbuf, b->want)) {
			print_error("case \"%s\":\n  got:  %s\n  want: %s\n", b->what, errbuf,
				    b->want);
			failed++;
		}
	}
	if (failed)
		fail_msg("%zu of %zu bad configurations gave the wrong message", failed, n);
}

/* The example from the brief, through a real file: name, line, column, path. */
static void test_bad_file(void **state)
{
	(void)state;
	const char *path = cfg_file("bad-asn.yaml");
	struct cfg *c = cfg_load(path, errbuf, sizeof(errbuf));
	assert_null(c);
	char want[1200];
	snprintf(want, sizeof(want),
		 "%s:6:10: peers[1].asn: expected an integer 1..4294967295, got \"abc\"", path);
	assert_string_equal(errbuf, want);

	c = cfg_load("/nonexistent/ricochet.yaml", errbuf, sizeof(errbuf));
	assert_null(c);
	assert_non_null(strstr(errbuf, "/nonexistent/ricochet.yaml: cannot open"));
}

/* A small err buffer truncates but stays NUL-terminated. */
static void test_small_errbuf(void **state)
{
	(void)state;
	char small[16];
	memset(small, 'x', sizeof(small));
	assert_null(cfg_load_string("asn: 0\n", "t.yaml", small, sizeof(small)));
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* ------------------------------------------------------------ matching */

static void test_match(void **state)
{
	(void)state;
	struct cfg *c = load_ok(RID
		"asn: 65000\n"
		"peers:\n"
		"  - { address: 127.0.1.1 }\n"
		"  - { address: \"2001:db8::1\" }\n"
		"  - { address: 10.1.2.3 }\n"
		"peer-ranges:\n"
		"  - { prefix: 127.0.0.0/8 }\n"
		"  - { prefix: 127.0.1.0/24 }\n"
		"  - { prefix: 127.0.1.0/25 }\n"
		"  - { prefix: 0.0.0.0/0, role: ibgp }\n"
		"  - { prefix: \"2001:db8::/32\" }\n"
		"  - { prefix: \"2001:db8:1::/48\" }\n");
	static const struct {
		const char *addr;
		int range;       /* -1 explicit, else index in ranges[] */
		int index;
	} cases[] = {
		{ "127.0.1.1", -1, 0 },          /* explicit beats every range */
		{ "2001:db8::1", -1, 1 },
		{ "10.1.2.3", -1, 2 },
		{ "::ffff:127.0.1.1", -1, 0 },   /* v4-mapped from a dual-stack socket */
		{ "127.0.1.2", 1, 2 },           /* /25 beats /24 beats /8 */
		{ "127.0.1.200", 1, 1 },         /* /24 */
		{ "127.9.9.9", 1, 0 },           /* /8 */
		{ "10.1.2.4", 1, 3 },            /* 0/0 catches the rest of IPv4 */
		{ "2001:db8:1::5", 1, 5 },
		{ "2001:db8:2::5", 1, 4 },
		{ "2001:db9::1", 0, -1 },        /* no match */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bgp_addr a = A(cases[i].addr);
		const struct cfg_peer *p = cfg_match_peer(c, &a);
		if (cases[i].index < 0) {
			if (p)
				fail_msg("%s: expected no match", cases[i].addr);
			continue;
		}
		const struct cfg_peer *want = cases[i].range < 0 ? &c->peers[cases[i].index]
								 : &c->ranges[cases[i].index];
		if (p != want)
			fail_msg("%s: matched %p, want %s[%d]", cases[i].addr, (const void *)p,
				 cases[i].range < 0 ? "peers" : "ranges", cases[i].index);
	}
	cfg_free(c);
}

/* ------------------------------------------------------------ reload diff */

static const char *const reload_base =
	RID "asn: 65000\n"
	"peers:\n"
	"  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
	"  - { address: 10.0.0.2 }\n"
	"peer-ranges:\n"
	"  - { prefix: 10.9.0.0/16 }\n";

static void test_reload_diff(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		const char *yaml;
		unsigned peer0;    /* cfg_peer_diff(old peers[0], new match for 10.0.0.1) */
		unsigned global;   /* cfg_diff */
	} cases[] = {
		{ "same file", NULL, 0, 0 },
		{ "description only",
		  RID "asn: 65000\npeers:\n  - { address: 10.0.0.1, description: uno, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  CFG_PCHG_DESCR, CFG_CHG_PEERS },
		{ "max-prefixes",
		  RID "asn: 65000\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 200 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  CFG_PCHG_LIMITS, CFG_CHG_PEERS },
		{ "hold time",
		  RID "asn: 65000\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100,"
		  " timers: {hold: 30} }\n  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  CFG_PCHG_SESSION, CFG_CHG_PEERS },
		{ "global hold reaches the peer",
		  RID "asn: 65000\ntimers: {hold: 60}\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  CFG_PCHG_SESSION, CFG_CHG_PEERS | CFG_CHG_TIMERS },
		{ "role",
		  RID "asn: 65000\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100, role: ibgp }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  CFG_PCHG_ROLE, CFG_CHG_PEERS },
		{ "add a range, log level",
		  RID "asn: 65000\nlog-level: debug\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n  - { prefix: 10.8.0.0/16 }\n",
		  0, CFG_CHG_PEERS | CFG_CHG_LOG },
		{ "router-id",
		  "router-id: 127.0.0.9\nasn: 65000\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  0, CFG_CHG_IDENTITY },
		{ "listen and metrics",
		  RID "asn: 65000\nlisten: [{address: 127.0.0.1}]\nmetrics: {listen: 127.0.0.1:9100}\n"
		  "peers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  0, CFG_CHG_LISTEN | CFG_CHG_EXPORT },
		{ "hugepages off",
		  RID "asn: 65000\nhugepages: off\npeers:\n  - { address: 10.0.0.1, description: one, max-prefixes: 100 }\n"
		  "  - { address: 10.0.0.2 }\npeer-ranges:\n  - { prefix: 10.9.0.0/16 }\n",
		  0, CFG_CHG_MEMORY },
	};
	struct cfg *old = load_ok(reload_base);
	struct bgp_addr a = A("10.0.0.1");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *nw = load_ok(cases[i].yaml ? cases[i].yaml : reload_base);
		const struct cfg_peer *op = cfg_match_peer(old, &a), *np = cfg_match_peer(nw, &a);
		assert_non_null(op);
		assert_non_null(np);
		unsigned d = cfg_peer_diff(op, np);
		if (d != cases[i].peer0)
			fail_msg("%s: peer diff 0x%x, want 0x%x", cases[i].what, d, cases[i].peer0);
		assert_int_equal(cfg_peer_needs_reset(op, np), (d & CFG_PCHG_RESET) != 0);
		unsigned g = cfg_diff(old, nw);
		if (g != cases[i].global)
			fail_msg("%s: global diff 0x%x, want 0x%x", cases[i].what, g, cases[i].global);
		cfg_free(nw);
	}
	/* a deconfigured peer has no match in the new file */
	struct cfg *nw = load_ok(RID "asn: 65000\npeers:\n  - { address: 10.0.0.2 }\n");
	assert_null(cfg_match_peer(nw, &a));
	cfg_free(nw);
	cfg_free(old);
}

/* ------------------------------------------------------------ dump */

/* The effective configuration reads back to an equal one. */
static void test_dump_roundtrip(void **state)
{
	(void)state;
	const char *srcs[] = { NULL, cfg_default_yaml, reload_base,
		RID "listen: []\npeers: [{address: 10.0.0.1, description: \"a \\\"quoted\\\" name\"}]\n",
		RID "hugepages: off\n" };
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		struct cfg *a = srcs[i] ? load_ok(srcs[i])
					: cfg_load(cfg_file("example.yaml"), errbuf, sizeof(errbuf));
		if (!a)
			fail_msg("%s", errbuf);
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		assert_non_null(f);
		assert_int_equal(cfg_dump(a, f, false), 0);
		fclose(f);
		struct cfg *b = cfg_load_string(text, "dump.yaml", errbuf, sizeof(errbuf));
		if (!b)
			fail_msg("case %zu: dump does not load: %s\n%s", i, errbuf, text);
		unsigned d = cfg_diff(a, b);
		if (d)
			fail_msg("case %zu: dump differs (0x%x):\n%s", i, d, text);
		assert_int_equal(a->n_peers, b->n_peers);
		for (size_t j = 0; j < a->n_peers; j++)
			assert_int_equal(cfg_peer_diff(&a->peers[j], &b->peers[j]), 0);
		cfg_free(b);
		free(text);
		cfg_free(a);
	}
	/* redaction hides passwords */
	struct cfg *a = cfg_load(cfg_file("example.yaml"), errbuf, sizeof(errbuf));
	assert_non_null(a);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(cfg_dump(a, f, true), 0);
	fclose(f);
	assert_null(strstr(text, "s3cret"));
	assert_non_null(strstr(text, "md5-password: \"<redacted>\""));
	free(text);
	cfg_free(a);
}

/* ------------------------------------------------------------ helpers */

static void test_names(void **state)
{
	(void)state;
	char buf[64];
	uint32_t asn;
	assert_int_equal(cfg_asn_parse("1.10", &asn), 0);
	assert_int_equal(asn, 65546);
	assert_int_equal(cfg_asn_parse("4294967295", &asn), 0);
	assert_int_equal(asn, 4294967295u);
	assert_int_equal(cfg_asn_parse("65535.65535", &asn), 0);
	assert_int_equal(asn, 4294967295u);
	assert_int_not_equal(cfg_asn_parse("1.", &asn), 0);
	assert_int_not_equal(cfg_asn_parse(".1", &asn), 0);
	assert_int_not_equal(cfg_asn_parse("1.2.3", &asn), 0);
	assert_int_not_equal(cfg_asn_parse("-1", &asn), 0);
	assert_string_equal(cfg_asn_fmt(buf, sizeof(buf), 65546, true), "1.10");
	assert_string_equal(cfg_asn_fmt(buf, sizeof(buf), 65546, false), "65546");
	assert_string_equal(cfg_asn_fmt(buf, sizeof(buf), 65000, true), "65000");
	assert_string_equal(cfg_role_name(CFG_ROLE_RS_CLIENT), "rs-client");
	assert_string_equal(cfg_families_fmt(buf, sizeof(buf), CFG_FAM_ALL),
			    "ipv4-unicast ipv6-unicast");
	assert_string_equal(cfg_families_fmt(buf, sizeof(buf), CFG_FAM_BIT(BGP_FAM_IPV6)),
			    "ipv6-unicast");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_embedded_default),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_bad_file),
		cmocka_unit_test(test_small_errbuf),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_reload_diff),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
