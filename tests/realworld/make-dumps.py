#!/usr/bin/env python3
"""Writes the Envoy /config_dump files of the real-world cases (tests/realworld/*/).

Each dump is reconstructed from what its thread says, in the shape Istio generated (the
builders of scenarios/istio_shapes.py, shared with the bundled incidents: admin v3, snake_case,
`@type` wrappers; only what a trace can reach). mTLS is off for the services involved.

Run from anywhere: `python3 tests/realworld/make-dumps.py`. The output is deterministic.
"""
import copy
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the scenarios
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scenarios"))
from istio_shapes import *  # noqa: E402,F401,F403  (the builders)

ERA_1_12 = Era("1.12.6", "2022-04-07T08:31:12.402Z")


def write(rel, d):
    with open(os.path.join(HERE, rel), "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")


def backend():
    """An HTTP service on port 80 the client pods call: backend.default, one pod."""
    return Svc(fqdn("backend"), 80, kube_names("backend", "default", "10.96.0.50"),
               [("10.244.2.7", workload("backend", "v1"))])


# --- the client pod most cases use (Istio 1.25) -------------------------------------------------

def sleep_1_25():
    write("shared/sleep.istio-1.25.config_dump.json",
          modern_pod(ERA_1_25, "sleep-7b9c6d8f5-k2x4p", "sleep", "v1", "10.244.0.9", [], [backend()]))


# --- 09: a MySQL proxy on an unnamed port: protocol sniffing (Istio 1.12) -----------------------

def mysql():
    era = ERA_1_12
    host = "proxysql-mysql.namespace2.svc.cluster.local"
    vip, port, ep = "10.96.0.70", 6033, "10.244.5.12"
    svc = Svc(host, port, [], [(ep, "proxysql-mysql-7c9d8b6f4-m2kq8;namespace2;proxysql-mysql;;Kubernetes")],
              ns="namespace2", name="proxysql-mysql", http=False)
    c, e, _, _ = outbound(era, [svc])
    # A port without name or appProtocol is "auto": Istio builds <VIP>_<port> with an HTTP chain
    # (raw_buffer + http/1.x, h2c; RDS "<host>:<port>") and the TCP route as the default chain,
    # behind the TLS and HTTP inspectors; listener_filters_timeout 0s is
    # meshConfig.protocolDetectionTimeout's default since Istio 1.8 (no time-out). Shape: corpus
    # istio-1.10.0_sidecar_camelCase_admin-v3.json, listener 10.96.132.134_15021.
    sniffed = not_bound(era, typed("config.listener.v3.Listener", {
        "name": "%s_%d" % (vip, port), "address": sock(vip, port),
        "filter_chains": [{
            "filter_chain_match": {"transport_protocol": "raw_buffer",
                                   "application_protocols": ["http/1.1", "h2c"]},
            "filters": [hcm_rds("outbound_%s_%d" % (vip, port), "%s:%d" % (host, port))]}],
        "default_filter_chain": {"filters": [tcp_proxy(svc.key(), "outbound|%d||%s" % (port, host))]},
        "listener_filters": [listener_filter("tls_inspector"), listener_filter("http_inspector")],
        "listener_filters_timeout": "0s", "continue_on_listener_filters_timeout": True,
        "traffic_direction": "OUTBOUND"}))
    rc = typed("config.route.v3.RouteConfiguration", {
        "name": "%s:%d" % (host, port), "validate_clusters": False,
        "virtual_hosts": [vhost(era, host, port, [host, vip], [route(era, svc.key(), "%s:%d/*" % (host, port))]),
                          allow_any()]})
    # appProtocol: tcp: a plain TCP listener, no listener filter waits for the client.
    plain = tcp_outbound(era, vip, port, [{"filters": [tcp_proxy(svc.key())]}])
    for tag, listeners, routes in (("sniffed", [sniffed], [rc]), ("app-protocol-tcp", [plain], [])):
        write("09-server-first-mysql-sniffing/app.%s.config_dump.json" % tag,
              dump(era, "app-5d8f7c9b6-xq2lp", "namespace1", "10.244.0.9", {"app": "app"},
                   [virtual_outbound()] + listeners + [virtual_inbound([], fqdn("app", "namespace1"))],
                   c, e, routes, inbound_static_routes([], fqdn("app", "namespace1"))))


# --- 10: two headless TCP Services on 9100 without pods: the listener Envoy rejects (1.10 shape)

def rejected_listener():
    era = ERA_1_10
    d = modern_pod(era, "sleep-7b9c6d8f5-k2x4p", "sleep", "v1", "10.244.0.9", [], [backend()])
    # Each headless TCP Service gets filter chains on 0.0.0.0_<port>, one per endpoint address;
    # a Service without pods gets one chain without match criteria. Two of them (node-exporter
    # in knative-monitoring and in monitoring) make two chains with the same (empty) match.
    chains = [{"filters": [tcp_proxy("outbound|9100||node-exporter.%s.svc.cluster.local" % ns)]}
              for ns in ("knative-monitoring", "monitoring")]
    bad = tcp_outbound(era, "0.0.0.0", 9100, chains)
    for c in d["configs"]:
        if c["@type"].endswith("ListenersConfigDump"):
            c["dynamic_listeners"].append({"name": "0.0.0.0_9100", "error_state": {
                "failed_configuration": copy.deepcopy(bad),
                "last_update_attempt": era.ts,
                "details": "error adding listener '0.0.0.0:9100': multiple filter chains with the same matching rules are defined"}})
    write("10-rejected-listener-duplicate-chains/sleep.config_dump.json", d)


# --- 12: a TCP ServiceEntry on 443 without addresses (Istio 1.10 shape) -------------------------

def serviceentry_443():
    era = ERA_1_10
    google = Svc("google.com", 443, [], [], ns="myNS", http=False, cluster="dns")
    c, e, l, r = outbound(era, [google])
    # protocol TCP, no addresses: one chain with no match at all on 0.0.0.0_443
    # (pilot/pkg/networking/core/v1alpha3/listener.go, buildSidecarOutboundTCPFilterChainOpts).
    catch_all = [{"filters": [tcp_proxy(google.key())]}]
    # protocol TLS: the chain matches the SNI google.com; anything else takes the passthrough.
    sni = [sni_chain(["google.com"], google.key())]
    for tag, chains in (("tcp", catch_all), ("tls", sni)):
        write("12-serviceentry-tcp-443-no-addresses/sleep.%s.config_dump.json" % tag,
              sleep_pod(era, "myNS", "10.244.0.9", l + [tcp_outbound(era, "0.0.0.0", 443, chains,
                                                                     default_passthrough=True)],
                        c, e, r))


if __name__ == "__main__":
    for d in ("09-server-first-mysql-sniffing", "10-rejected-listener-duplicate-chains",
              "12-serviceentry-tcp-443-no-addresses"):
        os.makedirs(os.path.join(HERE, d), exist_ok=True)
    for f in (sleep_1_25, mysql, rejected_listener, serviceentry_443):
        f()
