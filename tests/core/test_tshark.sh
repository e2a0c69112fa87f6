#!/bin/sh
# test_tshark.sh - cross-check our encoders against Wireshark's BGP dissector.
#
# gen_pcap writes every message type we encode into a pcap; tshark must decode
# all of them as BGP without "Malformed" packets or error-level expert info.
# Exit 77 (meson: skipped) when tshark is not installed.
set -u
GEN=${1:?usage: test_tshark.sh path/to/gen_pcap}
command -v tshark >/dev/null 2>&1 || { echo "tshark not found: skipping"; exit 77; }

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
PCAP=$TMP/bgp.pcap

EXPECTED=$("$GEN" "$PCAP") || { echo "FAIL: gen_pcap failed"; exit 1; }
# no sequence analysis: the capture starts mid-stream on purpose
OPTS="-o tcp.analyze_sequence_numbers:FALSE -o tcp.check_checksum:FALSE"

# shellcheck disable=SC2086
timeout 60 tshark -n $OPTS -r "$PCAP" -V > "$TMP/verbose.txt" 2>"$TMP/stderr.txt" || {
	echo "FAIL: tshark -V failed"; cat "$TMP/stderr.txt"; exit 1; }

fail=0
if grep -n -i "malformed" "$TMP/verbose.txt" >/dev/null; then
	echo "FAIL: tshark reports malformed packets:"
	grep -n -i -B3 "malformed" "$TMP/verbose.txt" | head -40
	fail=1
fi
if grep -n -E "Expert Info \((Error|Warning)" "$TMP/verbose.txt" >/dev/null; then
	echo "FAIL: tshark expert info at error/warning level:"
	grep -n -E -A2 "Expert Info \((Error|Warning)" "$TMP/verbose.txt" | head -40
	fail=1
fi

# one bgp.type field per decoded BGP message
# shellcheck disable=SC2086
GOT=$(timeout 60 tshark -n $OPTS -r "$PCAP" -Y bgp -T fields -e bgp.type 2>/dev/null |
	tr ',' '\n' | grep -c '[0-9]')
echo "BGP messages: expected $EXPECTED, tshark decoded $GOT"
[ "$GOT" = "$EXPECTED" ] || fail=1

# every message type must be present
for t in 1 2 3 4 5; do
	# shellcheck disable=SC2086
	timeout 60 tshark -n $OPTS -r "$PCAP" -Y "bgp.type == $t" -T fields -e frame.number 2>/dev/null |
		grep -q . || { [ "$t" = 2 ] && ! grep -q "UPDATE Message" "$TMP/verbose.txt" &&
			echo "note: no UPDATEs (encoder absent)" && continue;
			echo "FAIL: no BGP message of type $t decoded"; fail=1; }
done
[ $fail -eq 0 ] && echo "PASS"
exit $fail
