#!/usr/bin/env bash
# Side-by-side run for docs/performance.md ("Capture reading"): the generated 1M-packet capture
# read by meshpath (read-only, and read + flows + sniffing), tcpdump and tshark, one after the
# other on the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-/tmp/meshpath-capture-1M.pcap}
cargo build --release --example capture_generate --example capture_throughput
target/release/examples/capture_generate "$FILE"
ls -l "$FILE"
uptime
for i in 1 2 3; do target/release/examples/capture_throughput "$FILE"; done
/usr/bin/time -f "tcpdump -nr: %e s wall, %U s user" tcpdump -nr "$FILE" > /dev/null 2>/tmp/capture-compare.tcpdump
tail -1 /tmp/capture-compare.tcpdump
/usr/bin/time -f "tshark -z conv,tcp: %e s wall, %U s user" tshark -r "$FILE" -q -z conv,tcp > /dev/null
uptime
