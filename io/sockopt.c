/*
 * sockopt.c - who may talk to us at the TCP/IP level: TCP MD5 signatures
 * (RFC 2385, Linux TCP_MD5SIG / TCP_MD5SIG_EXT) and the Generalized TTL
 * Security Mechanism (RFC 5082, IP_MINTTL / IPV6_MINHOPCOUNT), per peer.
 *
 * Threads: sockopt_listener_keys() runs on the main thread (start, reload)
 * with cfg_lock held; sockopt_peer_socket() runs on the thread that owns the
 * socket (the accepting I/O thread, or the peer's I/O thread before
 * connect).  No state of its own: only setsockopt() on the caller's fds.
 *
 * Why it is built this way: an MD5-protected connection is signed from its
 * first SYN, before the daemon knows which peer it is, so the keys live on
 * the listening sockets: one per configured peer (exact address) and one per
 * range (address prefix, TCP_MD5SIG_EXT); the kernel drops unsigned or badly
 * signed segments and accepted sockets inherit the keys.  Outbound sockets
 * get the peer's key before connect().  GTSM is per peer and cannot be
 * decided before the peer is known, so it is set on the accepted socket
 * (segments that arrive with a lower TTL are dropped from then on, which
 * starves a spoofed session of its OPEN) and on outbound sockets before
 * connect; we always send with TTL / hop limit 255 then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "io/daemon.h"

static void fill_addr(struct sockaddr_storage *ss, const struct bgp_addr *a)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == BGP_FAM_IPV6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->addr, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->addr, 4);
	}
}

int sockopt_md5_key(int fd, const struct bgp_addr *addr, uint8_t plen, const char *password)
{
	struct tcp_md5sig m;
	unsigned full = addr->family == BGP_FAM_IPV6 ? 128 : 32;
	size_t kl = password ? strlen(password) : 0;

	if (kl > TCP_MD5SIG_MAXKEYLEN) {
		errno = EINVAL;
		return -1;
	}
	memset(&m, 0, sizeof(m));
	fill_addr(&m.tcpm_addr, addr);
	m.tcpm_keylen = (uint16_t)kl;  /* 0 deletes the key */
	if (kl)
		memcpy(m.tcpm_key, password, kl);
	if (plen < full) {
		m.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
		m.tcpm_prefixlen = plen;
		return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG_EXT, &m, sizeof(m));
	}
	return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &m, sizeof(m));
}

/* Install (or, with del, remove) the key of one peer or range on a listener. */
static void listener_key(int fd, int sfam, const struct cfg_peer *cp, bool del)
{
	char a[64];
	int fam = cp->addr.family == BGP_FAM_IPV6 ? AF_INET6 : AF_INET;

	if (!cp->md5_password || fam != sfam)
		return;
	if (sockopt_md5_key(fd, &cp->addr, cp->plen, del ? NULL : cp->md5_password) < 0 &&
	    !(del && errno == ENOENT)) {
		bgp_addr_fmt(a, sizeof(a), &cp->addr);
		log_err("sockopt: TCP MD5 key for %s/%u: %s", a, cp->plen, strerror(errno));
	}
}

static bool same_key(const struct cfg_peer *a, const struct cfg_peer *b)
{
	return a->plen == b->plen && a->addr.family == b->addr.family &&
	       !memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr)) && b->md5_password &&
	       !strcmp(a->md5_password, b->md5_password);
}

static bool key_in(const struct cfg_peer *cp, const struct cfg *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (same_key(cp, &c->peers[i]))
			return true;
	for (size_t i = 0; i < c->n_ranges; i++)
		if (same_key(cp, &c->ranges[i]))
			return true;
	return false;
}

void sockopt_listener_keys(int fd, const struct cfg *cfg, const struct cfg *old)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (old) {
		for (size_t i = 0; i < old->n_peers; i++)
			if (old->peers[i].md5_password && !key_in(&old->peers[i], cfg))
				listener_key(fd, ss.ss_family, &old->peers[i], true);
		for (size_t i = 0; i < old->n_ranges; i++)
			if (old->ranges[i].md5_password && !key_in(&old->ranges[i], cfg))
				listener_key(fd, ss.ss_family, &old->ranges[i], true);
	}
	for (size_t i = 0; i < cfg->n_peers; i++)
		listener_key(fd, ss.ss_family, &cfg->peers[i], false);
	for (size_t i = 0; i < cfg->n_ranges; i++)
		listener_key(fd, ss.ss_family, &cfg->ranges[i], false);
}

int sockopt_gtsm(int fd, unsigned family, uint8_t hops)
{
	int ttl = 255, min = 256 - (int)hops;

	if (!hops)
		return 0;
	if (family == BGP_FAM_IPV6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, &min, sizeof(min)) < 0)
			return -1;
		return 0;
	}
	if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MINTTL, &min, sizeof(min)) < 0)
		return -1;
	return 0;
}

int sockopt_peer_socket(int fd, const struct cfg_peer *cp, const struct bgp_addr *addr, bool outbound)
{
	char a[64];
	int rc = 0;

	if (outbound && cp->md5_password && sockopt_md5_key(fd, addr, addr->family == BGP_FAM_IPV6 ? 128 : 32,
							       cp->md5_password) < 0) {
		bgp_addr_fmt(a, sizeof(a), addr);
		log_err("sockopt: TCP MD5 key for %s: %s", a, strerror(errno));
		rc = -1;
	}
	if (cp->ttl_security && sockopt_gtsm(fd, addr->family, cp->ttl_security) < 0) {
		bgp_addr_fmt(a, sizeof(a), addr);
		log_err("sockopt: GTSM (%u hops) for %s: %s", cp->ttl_security, a, strerror(errno));
		rc = -1;
	}
	return rc;
}
