/*
 * gen_pcap.c - write a pcap of every BGP message Ricochet encodes, for the
 * tshark cross-check in test_tshark.sh.
 *
 * Usage: gen_pcap FILE.pcap   -> prints the number of BGP messages written.
 * Single-threaded test helper.  The pcap format (classic, Ethernet link type)
 * and the Ethernet/IPv4/TCP headers are written by hand so the test needs no
 * capture library; TCP checksums are left 0 (tshark does not verify them by
 * default).  Each message batch goes in one TCP segment to port 179 with
 * consistent sequence numbers, so tshark's reassembly sees a clean stream.
 * UPDATEs come from h2's encoder (core/encode.c) when the build has it
 * (RICOCHET_HAVE_ENCODE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

static FILE *out;
static uint32_t seq[2] = { 1000, 5000 };
static unsigned n_msgs;
static unsigned n_pkts;

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static void write_le32(uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	fwrite(b, 1, 4, out);
}

static void write_le16(uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	fwrite(b, 1, 2, out);
}

/* dir 0: speaker 10.0.0.1:40000 -> 10.0.0.2:179; dir 1 the reverse */
static void segment(int dir, const uint8_t *payload, size_t len, unsigned msgs)
{
	static uint8_t pkt[14 + 20 + 20 + 65536];
	uint8_t *eth = pkt, *ip = pkt + 14, *tcp = ip + 20;
	size_t iplen = 20 + 20 + len;

	if (iplen > 65535) {
		fprintf(stderr, "gen_pcap: segment too large\n");
		exit(1);
	}
	memset(pkt, 0, 54);
	static const uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 1 }, mac_b[6] = { 2, 0, 0, 0, 0, 2 };
	memcpy(eth, dir ? mac_a : mac_b, 6);
	memcpy(eth + 6, dir ? mac_b : mac_a, 6);
	put16(eth + 12, 0x0800);

	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)iplen);
	put16(ip + 4, (uint16_t)n_pkts);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, dir ? 0x0a000002 : 0x0a000001);
	put32(ip + 16, dir ? 0x0a000001 : 0x0a000002);
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (uint16_t)~sum);

	put16(tcp, dir ? 179 : 40000);
	put16(tcp + 2, dir ? 40000 : 179);
	put32(tcp + 4, seq[dir]);
	put32(tcp + 8, seq[!dir]);
	tcp[12] = 0x50;
	tcp[13] = 0x18;             /* PSH ACK */
	put16(tcp + 14, 65535);
	memcpy(tcp + 20, payload, len);
	seq[dir] += (uint32_t)len;

	size_t caplen = 14 + iplen;
	write_le32(1700000000u + n_pkts);
	write_le32(0);
	write_le32((uint32_t)caplen);
	write_le32((uint32_t)caplen);
	fwrite(pkt, 1, caplen, out);
	n_pkts++;
	n_msgs += msgs;
}

/* Count framed messages in a buffer (and check our own framing on the way). */
static unsigned count_msgs(const uint8_t *b, size_t len, size_t max)
{
	unsigned n = 0;
	size_t off = 0;
	while (off < len) {
		struct msg_error err;
		int m = msg_frame(b + off, len - off, max, &err);
		if (m <= 0) {
			fprintf(stderr, "gen_pcap: our own output does not frame at %zu\n", off);
			exit(1);
		}
		off += (size_t)m;
		n++;
	}
	return n;
}

static void emit(int dir, const uint8_t *b, size_t len)
{
	if (len == 0) {
		fprintf(stderr, "gen_pcap: encoder returned 0\n");
		exit(1);
	}
	segment(dir, b, len, count_msgs(b, len, BGP_MAX_EXT_MSG));
}

static uint8_t unk[8][255];

int main(int argc, char **argv)
{
	static uint8_t buf[65536];
	struct msg_capa c;
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
		return 2;
	}
	out = fopen(argv[1], "wb");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	write_le32(0xa1b2c3d4u);
	write_le16(2);
	write_le16(4);
	write_le32(0);
	write_le32(0);
	write_le32(65535);
	write_le32(1);              /* LINKTYPE_ETHERNET */

	/* OPEN with every capability we know */
	memset(&c, 0, sizeof(c));
	c.mp[BGP_FAM_IPV4] = c.mp[BGP_FAM_IPV6] = true;
	c.route_refresh = c.enhanced_rr = c.ext_msg = c.as4 = true;
	c.add_path[BGP_FAM_IPV4] = MSG_ADDPATH_RECV | MSG_ADDPATH_SEND;
	c.add_path[BGP_FAM_IPV6] = MSG_ADDPATH_RECV;
	c.gr = true;
	c.gr_restarting = true;
	c.gr_time = 120;
	c.gr_family[BGP_FAM_IPV4] = c.gr_family[BGP_FAM_IPV6] = true;
	c.gr_fwd[BGP_FAM_IPV6] = true;
	c.n_unknown = 2;
	static const uint8_t priv[] = { 1, 2, 3 };
	c.unknown[0] = (struct msg_unknown_capa){ 200, sizeof(priv), priv };
	static const uint8_t llgr[] = { 0, 1, 1, 0x80, 0, 0, 0x0e };
	c.unknown[1] = (struct msg_unknown_capa){ 71, sizeof(llgr), llgr };
	n = msg_open_encode(buf, sizeof(buf), 4200000001u, 90, 0x0a000001, &c);
	emit(0, buf, n);

	/* the peer's OPEN: 2-octet AS, IPv4 only */
	memset(&c, 0, sizeof(c));
	c.mp[BGP_FAM_IPV4] = true;
	c.route_refresh = c.as4 = true;
	n = msg_open_encode(buf, sizeof(buf), 65002, 180, 0x0a000002, &c);
	emit(1, buf, n);

	/* KEEPALIVEs both ways */
	n = msg_keepalive_encode(buf, sizeof(buf));
	emit(0, buf, n);
	emit(1, buf, n);

	/* ROUTE-REFRESH normal, BoRR, EoRR for both families */
	for (unsigned fam = 0; fam < BGP_FAM_COUNT; fam++)
		for (uint8_t st = BGP_RR_NORMAL; st <= BGP_RR_EORR; st++) {
			n = msg_route_refresh_encode(buf, sizeof(buf), fam, st);
			emit(0, buf, n);
		}

#ifdef RICOCHET_HAVE_ENCODE
	{
		/* canonical blob -> outbound attributes -> packed UPDATEs */
		static const uint8_t blob[] = {
			0x40, 1, 1, 0,                                     /* ORIGIN IGP */
			0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xea, 0xfa, 0x56, 0xea, 0x01, /* AS_PATH */
			0x80, 4, 4, 0, 0, 0, 50,                           /* MED */
			0x40, 5, 4, 0, 0, 0, 100,                          /* LOCAL_PREF */
			0xc0, 8, 8, 0xfd, 0xea, 0, 1, 0xff, 0xff, 0xff, 0x01, /* COMMUNITIES */
			0xc0, 32, 12, 0xfa, 0x56, 0xea, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, /* LARGE_COMMUNITY */
		};
		static uint8_t attrs[1024];
		struct msg_out_params op = { .reflect = true, .originator_id = 0x0a000003,
					     .cluster_id = 0x0a000001, .as4 = true };
		size_t alen = msg_attrs_out(attrs, sizeof(attrs), blob, sizeof(blob), &op);
		if (alen == 0) {
			fprintf(stderr, "gen_pcap: msg_attrs_out failed\n");
			return 1;
		}
		static struct bgp_prefix p4[2000], p6[1000];
		for (unsigned i = 0; i < 2000; i++) {
			memset(&p4[i], 0, sizeof(p4[i]));
			p4[i].family = BGP_FAM_IPV4;
			p4[i].len = (uint8_t)(16 + i % 17);
			uint32_t a = (0x0a000000u | (i << 8)) & (p4[i].len ? ~0u << (32 - p4[i].len) : 0);
			put32(p4[i].addr, a);
		}
		for (unsigned i = 0; i < 1000; i++) {
			memset(&p6[i], 0, sizeof(p6[i]));
			p6[i].family = BGP_FAM_IPV6;
			p6[i].len = 48;
			p6[i].addr[0] = 0x20;
			p6[i].addr[1] = 0x01;
			p6[i].addr[2] = 0x0d;
			p6[i].addr[3] = 0xb8;
			p6[i].addr[4] = (uint8_t)(i >> 8);
			p6[i].addr[5] = (uint8_t)i;
		}
		struct bgp_nexthop nh4 = { .len = 4, .addr = { 192, 0, 2, 1 } };
		struct bgp_nexthop nh6 = { .len = 16, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
		size_t used;
		n = msg_update_pack(buf, sizeof(buf), BGP_MAX_MSG, BGP_FAM_IPV4, false, attrs, alen,
				    &nh4, p4, 2000, &used);
		emit(0, buf, n);
		n = msg_update_pack(buf, sizeof(buf), BGP_MAX_MSG, BGP_FAM_IPV6, false, attrs, alen,
				    &nh6, p6, 1000, &used);
		emit(0, buf, n);
		n = msg_withdraw_pack(buf, sizeof(buf), BGP_MAX_MSG, BGP_FAM_IPV4, false, p4, 2000, &used);
		emit(0, buf, n);
		n = msg_withdraw_pack(buf, sizeof(buf), BGP_MAX_MSG, BGP_FAM_IPV6, false, p6, 1000, &used);
		emit(0, buf, n);
		n = msg_eor_encode(buf, sizeof(buf), BGP_FAM_IPV4);
		emit(0, buf, n);
		n = msg_eor_encode(buf, sizeof(buf), BGP_FAM_IPV6);
		emit(0, buf, n);
		/* 2-octet AS peer: AS_PATH with AS_TRANS plus AS4_PATH */
		op.as4 = false;
		alen = msg_attrs_out(attrs, sizeof(attrs), blob, sizeof(blob), &op);
		n = msg_update_pack(buf, sizeof(buf), BGP_MAX_MSG, BGP_FAM_IPV4, false, attrs, alen,
				    &nh4, p4, 10, &used);
		emit(1, buf, n);
	}
#endif

	/* NOTIFICATIONs last: they end the session */
	static const char shut[] = "maintenance window";
	uint8_t sdata[1 + sizeof(shut)];
	sdata[0] = (uint8_t)(sizeof(shut) - 1);
	memcpy(sdata + 1, shut, sizeof(shut) - 1);
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_CEASE, BGP_CEASE_ADMIN_SHUTDOWN, sdata,
				    sizeof(shut));
	emit(0, buf, n);
	static const uint8_t len18[2] = { 0, 18 }, ver[2] = { 0, 4 };
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_HEADER, BGP_ERR_HDR_LEN, len18, 2);
	emit(1, buf, n);
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_OPEN, BGP_ERR_OPEN_VERSION, ver, 2);
	emit(1, buf, n);
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_HOLD, 0, NULL, 0);
	emit(1, buf, n);
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_CEASE, BGP_CEASE_COLLISION, NULL, 0);
	emit(1, buf, n);
	n = msg_notification_encode(buf, sizeof(buf), BGP_ERR_FSM, BGP_ERR_FSM_OPENCONFIRM, NULL, 0);
	emit(1, buf, n);

	/*
	 * A second TCP stream: OPEN in the RFC 9072 extended form.  Off by
	 * default: tshark 4.0 (Debian 12) predates RFC 9072 support and reports
	 * it malformed.  GEN_PCAP_EXT_OPEN=1 adds it for newer dissectors.
	 */
	seq[0] = 9000;
	seq[1] = 19000;
	memset(&c, 0, sizeof(c));
	c.mp[BGP_FAM_IPV4] = true;
	c.as4 = true;
	c.n_unknown = 4;
	for (unsigned i = 0; i < 4; i++) {
		memset(unk[i], (int)i, sizeof(unk[i]));
		c.unknown[i] = (struct msg_unknown_capa){ (uint8_t)(230 + i), 100, unk[i] };
	}
	n = msg_open_encode(buf, sizeof(buf), 65001, 90, 0x0a000001, &c);
	if (getenv("GEN_PCAP_EXT_OPEN"))
		emit(0, buf, n);

	if (fclose(out) != 0) {
		perror("fclose");
		return 1;
	}
	printf("%u\n", n_msgs);
	return 0;
}
