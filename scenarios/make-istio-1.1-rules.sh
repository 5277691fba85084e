#!/usr/bin/env bash
# Rebuilds istio-1.1-redirect.v4.iptables-save: the rules istio-iptables.sh (Istio 1.1/1.2)
# installed with its real defaults (outbound and inbound capture to 15001, proxy uid/gid 1337,
# inbound port 9080 captured), loaded into an empty network namespace and read back with
# iptables-save, so the file is exactly what a node prints. Needs root and iptables.
set -euo pipefail
ns="meshpath-rules-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ipt() { ip netns exec "$ns" iptables "$@"; }
ipt -t nat -N ISTIO_REDIRECT
ipt -t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-port 15001
ipt -t nat -N ISTIO_IN_REDIRECT
ipt -t nat -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-port 15001
ipt -t nat -N ISTIO_INBOUND
ipt -t nat -A PREROUTING -p tcp -j ISTIO_INBOUND
ipt -t nat -A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT
ipt -t nat -N ISTIO_OUTPUT
ipt -t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT
ipt -t nat -A ISTIO_OUTPUT -o lo '!' -d 127.0.0.1/32 -j ISTIO_REDIRECT
ipt -t nat -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
ipt -t nat -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
ipt -t nat -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
ipt -t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT
ip netns exec "$ns" iptables-save | grep -v '^#' > "$(dirname "$0")/istio-1.1-redirect.v4.iptables-save"
