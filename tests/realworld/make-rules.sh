#!/usr/bin/env bash
# Rebuilds the rule sets of the real-world cases that no bundled file holds. Each is a bundled
# Istio rule set (scenarios/, tests/fixtures/mesh/) with the change an Istio setting makes,
# written where istio-iptables writes it, then loaded into an empty network namespace and read
# back with iptables-save / ip6tables-save, so every file is what a node prints. Needs root,
# iptables and ip6tables. Run from the repository root: tests/realworld/make-rules.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# roundtrip v4|v6 OUT: restore standard input into a new empty network namespace, save it to
# OUT (without the timestamp comments).
roundtrip() {
  local ns="meshpath-realworld-$$" save restore
  if [ "$1" = v6 ]; then save=ip6tables-save; restore=ip6tables-restore; else save=iptables-save; restore=iptables-restore; fi
  ip netns add "$ns"
  ip netns exec "$ns" "$restore"
  ip netns exec "$ns" "$save" | grep -v '^#' > "$2"
  ip netns del "$ns"
}

redirect="$root/scenarios/istio-1.25-redirect.v4.iptables-save"
dns="$root/scenarios/istio-1.25-dns.v4.iptables-save"
tproxy="$root/tests/fixtures/mesh/istio-1.25-tproxy.v4.iptables-save"

# Proxy uid and gid 64535 (istio-iptables -u 64535 -g 64535; the Deckhouse sidecar's identity).
sed 's/owner 1337/owner 64535/' "$redirect" | roundtrip v4 "$here/shared/istio-1.25-uid-64535.v4.iptables-save"

# traffic.sidecar.istio.io/excludeOutboundPorts: "443": RETURN rules for tcp and udp at the top
# of ISTIO_OUTPUT, before the 15020 exemptions (the shape of Istio's
# cni/pkg/plugin/testdata/include-exclude-ports.txt.golden).
sed '/^-A ISTIO_OUTPUT -p tcp -m tcp --dport 15020 -j RETURN$/i\
-A ISTIO_OUTPUT -p tcp -m tcp --dport 443 -j RETURN\
-A ISTIO_OUTPUT -p udp -m udp --dport 443 -j RETURN' "$redirect" \
  | roundtrip v4 "$here/shared/istio-1.25-exclude-outbound-port-443.v4.iptables-save"

# traffic.sidecar.istio.io/includeOutboundPorts: "8443" with the default includeOutboundIPRanges
# "*": the port rule comes before the catch-all ISTIO_REDIRECT.
sed '/^-A ISTIO_OUTPUT -j ISTIO_REDIRECT$/i\
-A ISTIO_OUTPUT -p tcp -m tcp --dport 8443 -j ISTIO_REDIRECT' "$redirect" \
  | roundtrip v4 "$here/shared/istio-1.25-include-outbound-port-8443.v4.iptables-save"

# The same plus includeOutboundIPRanges "10.96.0.0/12" (the Service range): only that range is
# redirected, everything else RETURNs.
sed -e '/^-A ISTIO_OUTPUT -j ISTIO_REDIRECT$/i\
-A ISTIO_OUTPUT -p tcp -m tcp --dport 8443 -j ISTIO_REDIRECT\
-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT' \
    -e 's/^-A ISTIO_OUTPUT -j ISTIO_REDIRECT$/-A ISTIO_OUTPUT -j RETURN/' "$redirect" \
  | roundtrip v4 "$here/shared/istio-1.25-include-port-8443-ranges-10.96.0.0-12.v4.iptables-save"

# DNS capture restricted to the nameserver of /etc/resolv.conf (127.0.0.53, systemd-resolved):
# what istio-iptables writes since the fix of istio/istio#30309 when resolv.conf names a server.
sed -e 's/^-A ISTIO_OUTPUT_DNS -p tcp -m tcp --dport 53 -j REDIRECT/-A ISTIO_OUTPUT_DNS -d 127.0.0.53\/32 -p tcp -m tcp --dport 53 -j REDIRECT/' \
    -e 's/^-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT/-A ISTIO_OUTPUT_DNS -d 127.0.0.53\/32 -p udp -m udp --dport 53 -j REDIRECT/' "$dns" \
  | roundtrip v4 "$here/shared/istio-1.25-dns-nameserver-127.0.0.53.v4.iptables-save"

# DNS capture plus traffic.sidecar.istio.io/excludeOutboundIPRanges "198.51.100.30/32": the
# exclusion RETURN comes after the local-address RETURN, before the catch-all ISTIO_REDIRECT
# (the shape of Istio's cni/pkg/plugin/testdata/include-exclude-ip.txt.golden), so after the
# jump to ISTIO_OUTPUT_DNS.
sed '/^-A ISTIO_OUTPUT -j ISTIO_REDIRECT$/i\
-A ISTIO_OUTPUT -d 198.51.100.30/32 -j RETURN' "$dns" \
  | roundtrip v4 "$here/shared/istio-1.25-dns-exclude-198.51.100.30.v4.iptables-save"

# TPROXY rules as they were before istio/istio#31165 (the fix of istio/istio#31095): without the
# mangle OUTPUT rules that let Envoy's marked packets go and mark Envoy's connections to the pod
# IP with 0x53a, and without the ISTIO_INBOUND return of loopback packets not so marked.
grep -v -e '^-A ISTIO_INBOUND -i lo -p tcp -m mark ! --mark 0x53a -j RETURN$' \
        -e '^-A OUTPUT -o lo -p tcp -m mark --mark 0x539 -j RETURN$' \
        -e '^-A OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --[ug]id-owner 1337 -j MARK --set-xmark 0x53a/0xffffffff$' \
        "$tproxy" | roundtrip v4 "$here/shared/istio-1.25-tproxy-before-31165.v4.iptables-save"

# The IPv6 half of istio-iptables.sh (Istio 1.2/1.3) without ENABLE_INBOUND_IPV6, as quoted in
# istio/istio#18956: "Drop all inbound traffic except established connections".
roundtrip v6 "$here/shared/istio-1.3-ipv6-input-reject.v6.ip6tables-save" <<'RULES'
*filter
-A INPUT -m state --state ESTABLISHED -j ACCEPT
-A INPUT -d ::1/128 -i lo -j ACCEPT
-A INPUT -j REJECT
COMMIT
RULES
