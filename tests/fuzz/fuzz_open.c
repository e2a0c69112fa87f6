/*
 * fuzz_open.c - libFuzzer target for msg_open_parse (OPEN + capabilities,
 * RFC 9072 extended parameters).
 *
 * The input becomes the OPEN body: the header (marker, length, type) is
 * patched in so the fuzzer spends its effort on parameters and capabilities.
 * Every input is copied to an exact-size heap buffer so ASan flags any read
 * past the end.  Accepted OPENs must survive a re-encode/re-parse round trip
 * with the same negotiated values (a property check, not just "no crash").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t enc[BGP_MAX_MSG];
	struct msg_open o, o2;
	struct msg_error err;
	size_t len = size + BGP_HDR_LEN;

	if (len > BGP_MAX_MSG)
		return 0;
	uint8_t *m = malloc(len);
	if (!m)
		return 0;
	msg_put_header(m, (uint16_t)len, BGP_MSG_OPEN);
	if (size)
		memcpy(m + BGP_HDR_LEN, data, size);

	int rc = msg_open_parse(m, len, &o, &err);
	if (rc != 0) {
		CHECK(rc == -1);
		CHECK(err.action == MSG_SESSION_RESET);
		CHECK(err.code == BGP_ERR_OPEN || err.code == BGP_ERR_HEADER);
		CHECK(err.data_len <= MSG_ERR_DATA_MAX);
		CHECK(err.reason != NULL);
		free(m);
		return 0;
	}
	CHECK(o.version == BGP_VERSION && o.bgp_id != 0 && o.my_as != 0);
	CHECK(o.hold_time == 0 || o.hold_time >= 3);
	CHECK(o.capa.n_unknown <= MSG_MAX_UNKNOWN_CAPA);
	for (unsigned i = 0; i < o.capa.n_unknown; i++)
		CHECK(o.capa.unknown[i].value >= m && o.capa.unknown[i].value + o.capa.unknown[i].len <= m + len);

	size_t n = msg_open_encode(enc, sizeof(enc), msg_open_asn(&o), o.hold_time, o.bgp_id, &o.capa);
	if (n) {
		CHECK(msg_open_parse(enc, n, &o2, &err) == 0);
		CHECK(o2.hold_time == o.hold_time && o2.bgp_id == o.bgp_id);
		CHECK(msg_open_asn(&o2) == msg_open_asn(&o) || !o.capa.as4);
		CHECK(o2.capa.as4 == o.capa.as4 && o2.capa.ext_msg == o.capa.ext_msg);
		CHECK(o2.capa.route_refresh == o.capa.route_refresh);
		CHECK(o2.capa.enhanced_rr == o.capa.enhanced_rr);
		CHECK(o2.capa.gr == o.capa.gr && o2.capa.gr_time == o.capa.gr_time);
		for (unsigned f = 0; f < BGP_FAM_COUNT; f++) {
			CHECK(o2.capa.mp[f] == o.capa.mp[f]);
			CHECK(o2.capa.add_path[f] == o.capa.add_path[f]);
			CHECK(o2.capa.gr_family[f] == o.capa.gr_family[f]);
		}
		CHECK(o2.capa.n_unknown == o.capa.n_unknown);
	}
	free(m);
	return 0;
}
