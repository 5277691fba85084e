#!/usr/bin/env python3
"""Writes every Envoy /config_dump of the bundled incident scenarios (scenarios/*/).

Each dump is authored in the shape the Istio release of its incident generated (the shapes,
not the content, of the Envoy corpus dumps and of Istio's builders in
pilot/pkg/networking/core): admin v3 snake_case with `@type` wrappers for Istio 1.10 and later,
admin v2alpha with plain resources for Istio 1.1. Only what a trace can reach is kept: no
telemetry filters, access logs, certificates or xDS bootstrap clusters. mTLS is off for the
services involved (no `tlsMode` endpoint metadata), so pod-to-pod traffic is plaintext.

Run from anywhere: `python3 scenarios/make-dumps.py`. The output is deterministic.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the scenarios
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from istio_shapes import *  # noqa: E402,F401,F403  (the builders)

HERE = os.path.dirname(os.path.abspath(__file__))


def write(rel, d):
    path = os.path.join(HERE, rel)
    with open(path, "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")


# --- 1. ServiceEntry with two addresses, one route (Istio 1.10) ---------------------------------

def incident_1():
    era = ERA_1_10
    # The ServiceEntry is named by the clusters' `services` metadata; Istio writes `config`
    # only for VirtualServices (routes) and DestinationRules (clusters).
    def legacy(host, addrs):
        return Svc(host, 80, [host] + addrs, [], name=host, cluster="orig")

    # Istio keeps one Service per address, all with the same hostname; the route builder
    # de-duplicates by hostname, so only the last address reaches the virtual host's domains.
    c, e, l, r = outbound(era, [legacy("legacy.example.com", ["172.16.0.2"])])
    write("1-serviceentry-two-addresses/sleep.before.config_dump.json",
          sleep_pod(era, "default", "10.244.0.9", l, c, e, r))
    c, e, l, r = outbound(era, [legacy("legacy-a.example.com", ["172.16.0.1"]),
                                legacy("legacy-b.example.com", ["172.16.0.2"])])
    write("1-serviceentry-two-addresses/sleep.fixed.config_dump.json",
          sleep_pod(era, "default", "10.244.0.9", l, c, e, r))


# --- 2. ServiceEntry without addresses takes over port 443 (Istio 1.11) ------------------------

def incident_2():
    era = ERA_1_11
    internal = Svc("api.internal.corp", 443, [], [], ns="infra", http=False, cluster="dns")
    partners = [Svc("www.googleapis.com", 443, [], [], ns="partner-a", http=False, cluster="dns"),
                Svc("api.stripe.com", 443, [], [], ns="partner-b", http=False, cluster="dns")]
    # A TCP port of a ServiceEntry without addresses: one filter chain with no match at all on
    # 0.0.0.0_443 (pilot/pkg/networking/core/v1alpha3/listener.go,
    # buildSidecarOutboundTCPFilterChainOpts: the service's CIDR is empty). The partners' TLS
    # ServiceEntries come with a VirtualService `tls` route matching their SNI, as in Istio's
    # egress TLS examples: a chain on that SNI, with the VirtualService in its metadata.
    catch_all = {"filters": [tcp_proxy(internal.key())]}
    sni = [sni_chain([s.host], s.key(), istio_config("virtual-service", s.ns, s.host.split(".")[1]))
           for s in partners]

    def write_variant(tag, services, listeners):
        c, e, l, r = outbound(era, services)
        write("2-serviceentry-443-takeover/sleep.%s.config_dump.json" % tag,
              sleep_pod(era, "shop", "10.244.0.9", l + listeners, c, e, r))

    write_variant("before", [internal] + partners,
                  [tcp_outbound(era, "0.0.0.0", 443, sni + [catch_all], default_passthrough=True)])
    # Sidecar egress hosts ["./*", "istio-system/*", "infra/*"]: partner-a and partner-b hidden.
    write_variant("sidecar-scope", [internal],
                  [tcp_outbound(era, "0.0.0.0", 443, [catch_all], default_passthrough=True)])
    # addresses: [10.20.0.15]: the catch-all chain moves to its own listener 10.20.0.15_443.
    write_variant("fixed", [internal] + partners,
                  [tcp_outbound(era, "10.20.0.15", 443, [catch_all]),
                   tcp_outbound(era, "0.0.0.0", 443, sni, default_passthrough=True)])
    write_variant("fixed-sidecar-scope", [internal],
                  [tcp_outbound(era, "10.20.0.15", 443, [catch_all])])



# --- 3. App listening on the pod IP (Istio 1.1, 2019; and Istio 1.25) --------------------------

V2 = "type.googleapis.com/envoy.admin.v2alpha."


def istio_1_1_productpage(inbound_endpoint):
    """An Istio 1.1 productpage sidecar (admin v2alpha), in the shape of the corpus dump
    istio-1.1.1_sidecar_productpage_admin-v2alpha.json: listener `virtual` on 15001 with
    use_original_dst, the inbound listener on the pod IP, outbound 0.0.0.0_9080 on RDS "9080",
    and the inbound cluster STATIC on `inbound_endpoint` (127.0.0.1 was Istio's default)."""
    ip = "10.244.0.5"
    fq = fqdn("productpage")
    in_cluster = "inbound|9080|http|" + fq
    dr = {"filter_metadata": {"istio": {
        "config": "/apis/networking/v1alpha3/namespaces/istio-system/destination-rule/default"}}}
    filters = [{"name": "envoy.cors"}, {"name": "envoy.fault"}, {"name": "envoy.router"}]
    virtual = {"name": "virtual", "address": sock("0.0.0.0", 15001),
               "filter_chains": [{"filters": [{"name": "envoy.tcp_proxy", "config": {
                   "stat_prefix": "PassthroughCluster", "cluster": "PassthroughCluster"}}]}],
               "use_original_dst": True}
    inbound = {"name": "%s_9080" % ip, "address": sock(ip, 9080),
               "filter_chains": [{"filters": [{"name": "envoy.http_connection_manager", "config": {
                   "stat_prefix": "%s_9080" % ip, "use_remote_address": False,
                   "stream_idle_timeout": "0s", "forward_client_cert_details": "APPEND_FORWARD",
                   "server_name": "istio-envoy",
                   "route_config": {"name": in_cluster, "validate_clusters": False,
                                    "virtual_hosts": [{
                                        "name": "inbound|http|9080", "domains": ["*"],
                                        "routes": [{"match": {"prefix": "/"},
                                                    "route": {"cluster": in_cluster, "timeout": "0s",
                                                              "max_grpc_timeout": "0s"},
                                                    "decorator": {"operation": fq + ":9080/*"}}]}]},
                   "http_filters": filters}}]}],
               "deprecated_v1": {"bind_to_port": False},
               "listener_filters": [{"name": "envoy.listener.tls_inspector"}]}
    outbound_9080 = {"name": "0.0.0.0_9080", "address": sock("0.0.0.0", 9080),
                     "filter_chains": [{"filters": [{"name": "envoy.http_connection_manager", "config": {
                         "stat_prefix": "0.0.0.0_9080", "use_remote_address": False,
                         "rds": {"route_config_name": "9080", "config_source": {"ads": {}}},
                         "generate_request_id": True, "stream_idle_timeout": "0s",
                         "http_filters": filters}}]}],
                     "deprecated_v1": {"bind_to_port": False}}
    services = (("productpage", "10.96.0.30", "10.244.0.5"), ("reviews", "10.96.0.20", "10.244.1.7"))
    vh = []
    for name, vip, _ in services:
        f = fqdn(name)
        vh.append({"name": f + ":9080",
                   "domains": [d for n in (f, name, name + ".default.svc", name + ".default", vip)
                               for d in (n, n + ":9080")],
                   "routes": [{"match": {"prefix": "/"},
                               "route": {"cluster": "outbound|9080||" + f, "timeout": "0s",
                                         "max_grpc_timeout": "0s"},
                               "decorator": {"operation": f + ":9080/*"}}]})
    clusters = [
        {"name": "BlackHoleCluster", "connect_timeout": "1s"},
        {"name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "1s",
         "lb_policy": "ORIGINAL_DST_LB"},
        {"name": in_cluster, "connect_timeout": "1s", "circuit_breakers": {"thresholds": [{}]},
         "metadata": dr,
         "load_assignment": {"cluster_name": in_cluster, "endpoints": [{"lb_endpoints": [
             {"endpoint": {"address": sock(inbound_endpoint, 9080)}}]}]}},
    ] + [{"name": "outbound|9080||" + fqdn(n), "type": "EDS",
          "eds_cluster_config": {"eds_config": {"ads": {}}, "service_name": "outbound|9080||" + fqdn(n)},
          "connect_timeout": "1s", "metadata": dr} for n, _, _ in services]
    # Envoy of 2019 had no EndpointsConfigDump; this section holds what `/clusters` listed for
    # the EDS clusters, in the v2 ClusterLoadAssignment shape, so a trace can follow them.
    endpoints = [{"endpoint_config": {
        "@type": "type.googleapis.com/envoy.api.v2.ClusterLoadAssignment",
        "cluster_name": "outbound|9080||" + fqdn(n),
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": sock(ep, 9080)}}]}]}}
        for n, _, ep in services]
    ver = "2019-04-02T19:54:27Z/16"
    return {"configs": [
        {"@type": V2 + "BootstrapConfigDump",
         "bootstrap": {"node": {"id": "sidecar~%s~productpage-v1-5cb458d74f-56sx7.default~default.svc.cluster.local" % ip,
                                "cluster": "productpage.default",
                                "metadata": {"ISTIO_VERSION": "1.1.1", "INTERCEPTION_MODE": "REDIRECT",
                                             "ISTIO_PROXY_VERSION": "1.1.1"}}},
         "last_updated": "2019-04-02T19:54:27.100Z"},
        {"@type": V2 + "ClustersConfigDump", "version_info": ver,
         "dynamic_active_clusters": [{"version_info": ver, "cluster": c,
                                      "last_updated": "2019-04-02T19:54:31.795Z"} for c in clusters]},
        {"@type": V2 + "EndpointsConfigDump", "dynamic_endpoint_configs": endpoints},
        {"@type": V2 + "ListenersConfigDump", "version_info": ver,
         "dynamic_active_listeners": [{"version_info": ver, "listener": l,
                                       "last_updated": "2019-04-02T19:54:31.873Z"}
                                      for l in (inbound, outbound_9080, virtual)]},
        {"@type": V2 + "RoutesConfigDump",
         "dynamic_route_configs": [{"version_info": ver, "route_config": {
             "name": "9080", "virtual_hosts": vh, "validate_clusters": False},
             "last_updated": "2019-04-02T19:54:31.900Z"}]},
    ]}


def incident_3():
    d = "3-app-on-pod-ip/"
    write(d + "productpage.istio-1.1.config_dump.json", istio_1_1_productpage("127.0.0.1"))
    write(d + "productpage.istio-1.1-pod-ip-endpoint.config_dump.json",
          istio_1_1_productpage("10.244.0.5"))
    services = [Svc(fqdn("productpage"), 9080, kube_names("productpage", "default", "10.96.0.30"),
                    [("10.244.0.5", workload("productpage", "v1"))]),
                Svc(fqdn("reviews"), 9080, kube_names("reviews", "default", "10.96.0.20"),
                    [("10.244.1.7", workload("reviews", "v1"))])]
    write(d + "productpage.istio-1.25.config_dump.json",
          modern_pod(ERA_1_25, "productpage-v1-7d4b6c9f8-x2x9q", "productpage", "v1", "10.244.0.5",
                     [9080], services))



# --- 4. Packet life in bookinfo (Istio 1.25) ---------------------------------------------------

def incident_4():
    era = ERA_1_25
    d = "4-bookinfo-packet-life/"
    vs = istio_config("virtual-service", "default", "reviews", "v1")
    dr = istio_config("destination-rule", "default", "reviews", "v1")
    reviews_host = fqdn("reviews")

    def mesh(vs_subset=False, with_dr=False):
        to_v1 = [route(era, "outbound|9080|v1|" + reviews_host, reviews_host + ":9080/*",
                       name=None, config=vs)] if vs_subset else None
        return [
            Svc(fqdn("productpage"), 9080, kube_names("productpage", "default", "10.96.0.30"),
                [("10.244.0.5", workload("productpage", "v1"))]),
            Svc(fqdn("details"), 9080, kube_names("details", "default", "10.96.0.60"),
                [("10.244.2.10", workload("details", "v1"))]),
            Svc(reviews_host, 9080, kube_names("reviews", "default", "10.96.0.20"),
                [("10.244.1.7", workload("reviews", "v1")), ("10.244.1.8", workload("reviews", "v2"))],
                dr=dr if with_dr else None, routes=to_v1,
                subsets={"v1": ["10.244.1.7"], "v2": ["10.244.1.8"]} if with_dr else None),
            Svc(fqdn("ratings"), 9080, kube_names("ratings", "default", "10.96.0.40"),
                [("10.244.2.3", workload("ratings", "v1"))]),
            # kube-dns's TCP port 53 (dns-tcp): a TCP service, its own <ClusterIP>_53 listener.
            Svc(fqdn("kube-dns", "kube-system"), 53, [],
                [("10.244.0.2", "coredns-5d78c9869d-6xqfb;kube-system;kube-dns;;Kubernetes"),
                 ("10.244.0.3", "coredns-5d78c9869d-q8m2c;kube-system;kube-dns;;Kubernetes")],
                ns="kube-system", http=False, sidecars=False),
        ]

    dns_listener = tcp_outbound(era, "10.96.0.10", 53,
                                [{"filters": [tcp_proxy("outbound|53||" + fqdn("kube-dns", "kube-system"))]}])
    for tag, kw in (("", {}), (".vs-subset-v1", {"vs_subset": True}),
                    (".vs-subset-v1-dr", {"vs_subset": True, "with_dr": True})):
        write(d + "productpage%s.config_dump.json" % tag,
              modern_pod(era, "productpage-v1-7d4b6c9f8-x2x9q", "productpage", "v1", "10.244.0.5",
                         [9080], mesh(**kw), extra_listeners=[dns_listener]))
    for version, ip, pod in (("v1", "10.244.1.7", "reviews-v1-5b7f9d4c6-9zq2m"),
                             ("v2", "10.244.1.8", "reviews-v2-6c8d7f5b9-h4w7k")):
        write(d + "reviews-%s.config_dump.json" % version,
              modern_pod(era, pod, "reviews", version, ip, [9080], mesh(),
                         extra_listeners=[dns_listener]))
    # The same mesh with mutual TLS on (Istio's auto mTLS; PeerAuthentication STRICT for the
    # reviews pods, PERMISSIVE for productpage): kube-dns runs without a sidecar, so its
    # endpoints have no `tlsMode` label and stay plaintext.
    for tag, kw in (("", {}), (".vs-subset-v1", {"vs_subset": True}),
                    (".vs-subset-v1-dr", {"vs_subset": True, "with_dr": True})):
        write(d + "mtls/productpage%s.config_dump.json" % tag,
              modern_pod(era, "productpage-v1-7d4b6c9f8-x2x9q", "productpage", "v1", "10.244.0.5",
                         [9080], mesh(**kw), extra_listeners=[dns_listener], mtls="PERMISSIVE"))
    for version, ip, pod in (("v1", "10.244.1.7", "reviews-v1-5b7f9d4c6-9zq2m"),
                             ("v2", "10.244.1.8", "reviews-v2-6c8d7f5b9-h4w7k")):
        write(d + "mtls/reviews-%s.config_dump.json" % version,
              modern_pod(era, pod, "reviews", version, ip, [9080], mesh(),
                         extra_listeners=[dns_listener], mtls="STRICT"))



# --- 5. VM to Kubernetes migration (Istio 1.25, DNS proxy with auto-allocation) ---------------

def incident_5():
    era = ERA_1_25
    d = "5-vm-migration/"
    host = "vm.example.com"
    vs = istio_config("virtual-service", "default", "vm-app", "v1")
    dr = istio_config("destination-rule", "default", "vm-app", "v1")
    vm = ("192.168.0.204", "vm-204;default;vm-app;vm;Kubernetes")        # WorkloadEntry
    pod = ("10.244.3.4", "vm-app-docker;default;vm-app;docker;Kubernetes")  # selected pod

    def service(routes=None):
        # ServiceEntry default/vm-app (MESH_INTERNAL, resolution STATIC, workloadSelector
        # app=vm-app): no addresses, so Istio auto-allocates 240.240.0.1 and serves it by DNS.
        return Svc(host, 80, [host, "240.240.0.1"], [vm, pod], name=host, dr=dr,
                   subsets={"vm": [vm[0]], "docker": [pod[0]]}, routes=routes)

    def to(weighted):
        return [route(era, None, host + ":80/*", name=None, config=vs,
                      weighted=[("outbound|80|%s|%s" % (s, host), w) for s, w in weighted])] \
            if len(weighted) > 1 else \
            [route(era, "outbound|80|%s|%s" % (weighted[0][0], host), host + ":80/*", name=None,
                   config=vs)]

    # The short host `vm` binds to vm.default.svc.cluster.local, which no service has: Istio
    # still builds a virtual host for it on port 80 (the VirtualService's routes, weight 0
    # dropped), and vm.example.com keeps its default route.
    short = vhost(era, fqdn("vm"), 80, [fqdn("vm")], to([("docker", 100)]))
    variants = {"short-host": (service(), [(80, short)]),
                # Istio drops weight-0 destinations and turns a single one into `cluster`
                # (pilot/pkg/networking/core/route/route.go, "Ignore 0 weighted clusters").
                "fixed": (service(to([("docker", 100)])), []),
                "canary": (service(to([("vm", 20), ("docker", 80)])), [])}
    for tag, (svc, extra) in variants.items():
        write(d + "sleep.%s.config_dump.json" % tag,
              modern_pod(era, "sleep-7b9c6d8f5-k2x4p", "sleep", "v1", "10.244.0.9", [], [svc],
                         extra_vhosts=extra))
    write(d + "vm-app-docker.config_dump.json",
          modern_pod(era, "vm-app-docker-6f9c8b7d5-t5r8n", "vm-app", "docker", "10.244.3.4", [80],
                     [service()], served_host=host))
    # Mutual TLS on: the VM's WorkloadEntry and the pod both run a sidecar (tlsMode: istio);
    # sleep is PERMISSIVE, the pod STRICT.
    for tag, (svc, extra) in variants.items():
        write(d + "mtls/sleep.%s.config_dump.json" % tag,
              modern_pod(era, "sleep-7b9c6d8f5-k2x4p", "sleep", "v1", "10.244.0.9", [], [svc],
                         extra_vhosts=extra, mtls="PERMISSIVE"))
    write(d + "mtls/vm-app-docker.config_dump.json",
          modern_pod(era, "vm-app-docker-6f9c8b7d5-t5r8n", "vm-app", "docker", "10.244.3.4", [80],
                     [service()], served_host=host, mtls="STRICT"))


if __name__ == "__main__":
    for incident in (incident_1, incident_2, incident_3, incident_4, incident_5):
        incident()
