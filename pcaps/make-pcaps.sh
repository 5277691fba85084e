#!/usr/bin/env bash
# Makes the captures of pcaps/ from real traffic (run as root; needs ip, iptables-restore,
# tcpdump, openssl, setpriv and /usr/bin/python3). See pcaps/README.md.
#
# Two network namespaces joined by a veth pair:
#   mp-pod   the pod: eth0 10.244.0.5/24, default route via 10.244.0.1, Istio's rules loaded;
#            a stand-in for Envoy (uid 1337) on 15001/15006, the app (uid 1000) on 9080,
#            pilot-agent's DNS proxy (uid 1337) on 127.0.0.1:15053
#   mp-out   everything outside the pod: 10.244.0.1/24 plus 10.244.1.9 (a client), 10.96.0.20
#            (the reviews ClusterIP), 93.184.216.34 (an external HTTPS server) and 240.240.0.5
#            (a ServiceEntry VIP), with servers on 9080, 443 (self-signed TLS) and 80
# Each capture is `tcpdump -i any` inside mp-pod while one client call runs.
set -euo pipefail
cd "$(dirname "$0")"
OUT=$PWD
PY=/usr/bin/python3
RULES_REDIRECT=../scenarios/istio-1.25-redirect.v4.iptables-save
RULES_DNS=../tests/fixtures/mesh/istio-1.25-dns.v4.iptables-save
WORK=$(mktemp -d)
chmod 755 "$WORK"
cp roles.py "$WORK/"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del mp-pod 2>/dev/null || true
    ip netns del mp-out 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

pod() { ip netns exec mp-pod "$@"; }
out() { ip netns exec mp-out "$@"; }
# A process in namespace NS as uid (and gid) UID: ip and setpriv exec, so $! is the process.
run_as() { local ns=$1 uid=$2; shift 2; ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" --clear-groups "$@"; }

ip netns add mp-pod
ip netns add mp-out
ip link add eth0 netns mp-pod type veth peer name veth-pod netns mp-out
for ns in mp-pod mp-out; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec $ns ip link set lo up
done
pod ip addr add 10.244.0.5/24 dev eth0
pod ip link set eth0 up
pod ip route add default via 10.244.0.1
out ip addr add 10.244.0.1/24 dev veth-pod
for a in 10.244.1.9 10.96.0.20 93.184.216.34 240.240.0.5; do out ip addr add $a/32 dev veth-pod; done
out ip link set veth-pod up
out ip route add 10.244.0.0/16 dev veth-pod

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=example.com \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK"/*.pem

ip netns exec mp-out $PY "$WORK/roles.py" upstream "$WORK/cert.pem" "$WORK/key.pem" & PIDS+=($!)
ip netns exec mp-pod setpriv --reuid 1337 --regid 1337 --clear-groups $PY "$WORK/roles.py" envoy & PIDS+=($!)
ip netns exec mp-pod setpriv --reuid 1000 --regid 1000 --clear-groups $PY "$WORK/roles.py" app & PIDS+=($!)
ip netns exec mp-pod setpriv --reuid 1337 --regid 1337 --clear-groups $PY "$WORK/roles.py" dns & PIDS+=($!)
sleep 1

# capture NAME RULES CLIENT-NS CLIENT-UID ROLE
capture() {
    local name=$1 rules=$2 ns=$3 uid=$4 role=$5
    pod iptables-restore < "$rules"
    ip netns exec mp-pod tcpdump -i any -U -s 0 -w "$WORK/$name.pcap" 'tcp or udp' 2>/dev/null &
    local tp=$!
    sleep 1
    run_as "$ns" "$uid" $PY "$WORK/roles.py" "$role"
    sleep 1
    kill -INT $tp
    wait $tp || true
    cp "$WORK/$name.pcap" "$OUT/$name.pcap"
    echo "$name.pcap: $(stat -c %s "$OUT/$name.pcap") bytes"
}

capture outbound-http  $RULES_REDIRECT mp-pod 1000 http
capture outbound-tls   $RULES_REDIRECT mp-pod 1000 tls
capture inbound-http   $RULES_REDIRECT mp-out 0    inbound
capture dns-then-vip   $RULES_DNS      mp-pod 1000 dns-then-vip
