#!/usr/bin/env bash
# Builds the seed corpus of every fuzz target under fuzz/corpus/TARGET/ (not in the
# repository: fuzz/.gitignore) from the repository's fixtures and, when it can be found, the
# shared conformance corpus ($MESHPATH_CORPUS, else ../shared/corpus beside the checkout).
# Files are copied into the scratch folder only; nothing is written back to the repository.
set -euo pipefail
cd "$(dirname "$0")"
repo=..
corpus=${MESHPATH_CORPUS:-$repo/../shared/corpus}
[ -d "$corpus" ] || corpus=
rm -rf corpus
seed() { # seed TARGET FILE...: copies each regular file under 1 MiB
  local t=$1; shift
  mkdir -p "corpus/$t"
  for f in "$@"; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -lt 1048576 ] || continue
    local name=${f#"$repo"/}
    cp "$f" "corpus/$t/$(echo "${name#../}" | tr '/@' '__')"
  done
}
shopt -s nullglob
rules=("$repo"/scenarios/*.iptables-save "$repo"/tests/fixtures/mesh/*tables-save "$repo"/tests/fixtures/netfilter/*)
[ -n "$corpus" ] && rules+=("$corpus"/iptables/*tables-save)
seed iptables_save "${rules[@]}"
seed iptables_restore "${rules[@]}"
dumps=("$repo"/tests/fixtures/mesh/*.json "$repo"/tests/fixtures/envoy/* "$repo"/scenarios/*/*.json)
[ -n "$corpus" ] && dumps+=("$corpus"/envoy/*.json "$corpus"/envoy/*.yaml)
seed config_dump_json "${dumps[@]}"
seed config_dump_yaml "$repo"/tests/fixtures/envoy/*.yaml "$repo"/scenarios/*/*.yaml ${corpus:+"$corpus"/envoy/*.yaml}
caps=("$repo"/pcaps/*.pcap)
[ -n "$corpus" ] && caps+=("$corpus"/pcap/*.pcap "$corpus"/pcap/*.pcapng)
seed pcap "${caps[@]}"
seed pcapng ${corpus:+"$corpus"/pcap/*.pcapng} "${caps[@]}"
seed scenario_file "$repo"/scenarios/*/*.scenario.yaml "$repo"/tests/fixtures/scenarios/*/*.scenario.yaml
rc=("$repo"/tests/fixtures/route-check/*)
[ -n "$corpus" ] && while IFS= read -r f; do rc+=("$f"); done < <(find "$corpus/router-check" -type f \( -name '*.json' -o -name '*.yaml' -o -name '*.pb_text' -o -name '*.pbtxt' \))
for t in route_check_config_json route_check_config_yaml route_check_tests_json route_check_tests_yaml route_check_tests_pbtext; do
  seed "$t" "${rc[@]}"
done
# `ss`, `ip rule` and `ip route` output as the tools print it.
mkdir -p corpus/ss_sockets corpus/ip_rule corpus/ip_route
printf 'Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\ntcp   LISTEN 0      4096         0.0.0.0:15001      0.0.0.0:*     users:(("envoy",pid=17,fd=40))\ntcp   LISTEN 0      128        10.244.0.5:9080      0.0.0.0:*\nudp   UNCONN 0      0               [::]:53           [::]:*\n' > corpus/ss_sockets/ss
printf 'Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name\ntcp        0      0 0.0.0.0:15001           0.0.0.0:*               LISTEN      17/envoy\n' > corpus/ss_sockets/netstat
printf '0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x539/0xfff lookup 133\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n' > corpus/ip_rule/rules
printf 'default via 10.244.0.1 dev eth0\n10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.5\nlocal default dev lo table 133 scope host\nlocal 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1\nfe80::/64 dev eth0 proto kernel metric 256 pref medium\n' > corpus/ip_route/routes
# The sniffers read a client's first payload bytes: taken from the captures' TCP and UDP
# payloads (a ClientHello starts with 0x16 0x03, an HTTP request with a method, DNS over UDP
# port 53), plus a hand-written minimum each.
mkdir -p corpus/tls_client_hello corpus/http_request corpus/dns_message
printf 'GET /productpage HTTP/1.1\r\nHost: productpage:9080\r\nUser-Agent: curl\r\n\r\n' > corpus/http_request/get
printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07reviews\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01' > corpus/dns_message/query
python3 - "${caps[@]}" <<'PY'
import sys
n = 0
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    for i in range(len(data) - 6):
        if data[i] == 0x16 and data[i+1] == 0x03 and data[i+5] == 0x01:
            open(f'corpus/tls_client_hello/{n}', 'wb').write(data[i:i+2048]); n += 1
        for m in (b'GET ', b'POST ', b'CONNECT ', b'PRI * '):
            if data.startswith(m, i):
                open(f'corpus/http_request/{n}', 'wb').write(data[i:i+1024]); n += 1
PY
for d in corpus/*; do echo "$(ls "$d" | wc -l) seeds  $d"; done
