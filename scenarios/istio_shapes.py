"""Builders of Envoy /config_dump objects in the shapes Istio generated, per release.

Used by make-dumps.py (see there) and by tests/fixtures/mesh/make-dumps.py. The shapes, not the content, come from the Envoy corpus
dumps and from Istio's builders in pilot/pkg/networking/core: admin v3 snake_case with `@type`
wrappers for Istio 1.10 and later. Only what a trace can reach is built: no telemetry filters,
access logs, certificates or xDS bootstrap clusters. mTLS is off for the services (no `tlsMode`
endpoint metadata), so pod-to-pod traffic is plaintext, unless a builder is given `mtls` (the
mTLS-on variants: Istio's auto mTLS and PERMISSIVE or STRICT inbound chains).
"""

V3 = "type.googleapis.com/envoy."
HCM = V3 + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP = V3 + "extensions.filters.network.tcp_proxy.v3.TcpProxy"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": V3 + "extensions.filters.http.router.v3.Router"}}


class Era:
    """What changed between the Istio releases these dumps stand for."""

    def __init__(self, version, ts):
        self.version = version
        self.ts = ts
        self.ver = ts[:19] + "Z/23"
        minor = int(version.split(".")[1])
        # Per-port outbound listeners were not bound with deprecated_v1 until 1.12 replaced it
        # with the top-level bind_to_port (corpus: istio-1.10.0 vs istio-2022-01 dumps).
        self.deprecated_v1 = minor < 12
        # Virtual hosts list each domain with and without the port until 1.15 set
        # ignore_port_in_host_matching (corpus: istio-1.10.0 route "9080").
        self.ports_in_domains = minor < 15


ERA_1_10 = Era("1.10.3", "2021-08-12T09:14:02.310Z")
ERA_1_11 = Era("1.11.4", "2021-11-03T14:20:41.118Z")
ERA_1_25 = Era("1.25.2", "2026-03-02T10:00:00.000Z")


def sock(ip, port):
    return {"socket_address": {"address": ip, "port_value": port}}


def istio_config(kind, ns, name, version="v1alpha3"):
    """`filter_metadata.istio.config`: the Istio resource behind an Envoy object."""
    return "/apis/networking.istio.io/%s/namespaces/%s/%s/%s" % (version, ns, kind, name)


def tcp_proxy(cluster, stat=None):
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": TCP, "stat_prefix": stat or cluster, "cluster": cluster}}


def hcm_rds(stat, name):
    return {"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": stat,
                             "rds": {"config_source": {"ads": {}, "initial_fetch_timeout": "0s",
                                                       "resource_api_version": "V3"},
                                     "route_config_name": name},
                             "http_filters": [ROUTER], "use_remote_address": False,
                             "normalize_path": True}}


def hcm_inline(stat, route_config):
    return {"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": stat, "route_config": route_config,
                             "http_filters": [ROUTER], "use_remote_address": False,
                             "normalize_path": True}}


def listener_filter(kind, extra=None):
    names = {"original_dst": "original_dst.v3.OriginalDst",
             "original_src": "original_src.v3.OriginalSrc",
             "tls_inspector": "tls_inspector.v3.TlsInspector",
             "http_inspector": "http_inspector.v3.HttpInspector"}
    tc = {"@type": V3 + "extensions.filters.listener." + names[kind]}
    tc.update(extra or {})
    return {"name": "envoy.filters.listener." + kind, "typed_config": tc}


def typed(kind, res):
    out = {"@type": V3 + kind}
    out.update(res)
    return out


def not_bound(era, listener):
    if era.deprecated_v1:
        listener["deprecated_v1"] = {"bind_to_port": False}
    else:
        listener["bind_to_port"] = False
    return listener


# --- listeners ---------------------------------------------------------------------------------

def virtual_outbound():
    return typed("config.listener.v3.Listener", {
        "name": "virtualOutbound", "address": sock("0.0.0.0", 15001),
        "filter_chains": [
            {"filter_chain_match": {"destination_port": 15001},
             "filters": [tcp_proxy("BlackHoleCluster")], "name": "virtualOutbound-blackhole"},
            {"filters": [tcp_proxy("PassthroughCluster")], "name": "virtualOutbound-catchall-tcp"}],
        "use_original_dst": True, "traffic_direction": "OUTBOUND"})


def inbound_route(cluster, vhost, operation):
    return {"name": cluster, "virtual_hosts": [{
        "name": vhost, "domains": ["*"],
        "routes": [{"name": "default", "match": {"prefix": "/"},
                    "route": {"cluster": cluster, "timeout": "0s",
                              "max_stream_duration": {"max_stream_duration": "0s",
                                                      "grpc_timeout_header_max": "0s"}},
                    "decorator": {"operation": operation}}]}],
            "validate_clusters": False}


def virtual_inbound(ports, fqdn, mtls=None):
    """virtualInbound 0.0.0.0:15006 with a plaintext and an mTLS chain per HTTP service port;
    with `mtls` ("PERMISSIVE" or "STRICT") Istio's mTLS chains instead (mtls_inbound_chains)."""
    pt_route = inbound_route("InboundPassthroughCluster", "inbound|http|0", ":0/*")
    chains = [
        {"filter_chain_match": {"destination_port": 15006},
         "filters": [tcp_proxy("BlackHoleCluster")], "name": "virtualInbound-blackhole"},
        {"filter_chain_match": {"transport_protocol": "raw_buffer",
                                "application_protocols": ["http/1.1", "h2c"]},
         "filters": [hcm_inline("inbound_0.0.0.0_0", pt_route)],
         "name": "virtualInbound-catchall-http"},
        {"filter_chain_match": {"transport_protocol": "raw_buffer"},
         "filters": [tcp_proxy("InboundPassthroughCluster")], "name": "virtualInbound"}]
    for port in ports:
        route = inbound_route("inbound|%d||" % port, "inbound|http|%d" % port,
                              "%s:%d/*" % (fqdn, port))
        for transport in ("tls", "raw_buffer"):
            chain = {"filter_chain_match": {"destination_port": port, "transport_protocol": transport},
                     "filters": [hcm_inline("inbound_0.0.0.0_%d" % port, route)],
                     "name": "0.0.0.0_%d" % port}
            if transport == "tls":
                chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": V3 + "extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"],
                                           "tls_certificate_sds_secret_configs": [{"name": "default"}]},
                    "require_client_certificate": True}}
            chains.append(chain)
    if mtls:
        chains = mtls_inbound_chains(mtls, pt_route, [
            (p, inbound_route("inbound|%d||" % p, "inbound|http|%d" % p, "%s:%d/*" % (fqdn, p)))
            for p in ports])
    disabled = [listener_filter("http_inspector")]
    if ports:
        # Istio disables the HTTP inspector on ports it already knows to be HTTP.
        disabled[0]["filter_disabled"] = {"or_match": {"rules": [
            {"destination_port_range": {"start": p, "end": p + 1}} for p in ports]}} \
            if len(ports) > 1 else {"destination_port_range": {"start": ports[0], "end": ports[0] + 1}}
    return typed("config.listener.v3.Listener", {
        "name": "virtualInbound", "address": sock("0.0.0.0", 15006), "filter_chains": chains,
        "listener_filters": [listener_filter("original_dst"), listener_filter("tls_inspector")] + disabled,
        "listener_filters_timeout": "0s", "continue_on_listener_filters_timeout": True,
        "traffic_direction": "INBOUND"})


def http_outbound(era, port):
    """0.0.0.0_<port>: every HTTP service on that port, routes from RDS "<port>"."""
    return not_bound(era, typed("config.listener.v3.Listener", {
        "name": "0.0.0.0_%d" % port, "address": sock("0.0.0.0", port),
        "filter_chains": [{
            "filter_chain_match": {"transport_protocol": "raw_buffer",
                                   "application_protocols": ["http/1.1", "h2c"]},
            "filters": [hcm_rds("outbound_0.0.0.0_%d" % port, str(port))]}],
        "default_filter_chain": {"filters": [tcp_proxy("PassthroughCluster")],
                                 "name": "PassthroughFilterChain"},
        "listener_filters": [listener_filter("tls_inspector"), listener_filter("http_inspector")],
        "listener_filters_timeout": "0s", "continue_on_listener_filters_timeout": True,
        "traffic_direction": "OUTBOUND"}))


def tcp_outbound(era, ip, port, chains, default_passthrough=False):
    """<ip>_<port> for a TCP/TLS service: filter chains from ServiceEntries and Services."""
    l = {"name": "%s_%d" % (ip, port), "address": sock(ip, port), "filter_chains": chains,
         "traffic_direction": "OUTBOUND"}
    if any("filter_chain_match" in c for c in chains):
        l["listener_filters"] = [listener_filter("tls_inspector")]
        l["listener_filters_timeout"] = "0s"
        l["continue_on_listener_filters_timeout"] = True
    if default_passthrough:
        l["default_filter_chain"] = {"filters": [tcp_proxy("PassthroughCluster")],
                                     "name": "PassthroughFilterChain"}
    return not_bound(era, typed("config.listener.v3.Listener", l))


def sni_chain(server_names, cluster, config=None):
    chain = {"filter_chain_match": {"server_names": server_names}, "filters": [tcp_proxy(cluster)]}
    if config:
        chain["metadata"] = {"filter_metadata": {"istio": {"config": config}}}
    return chain


# --- mutual TLS ---------------------------------------------------------------------------------
# The shapes of istio-1.10.0_sidecar_camelCase_admin-v3.json and
# istio-2023_sidecar_listeners-only_admin-v3.json.yaml (Envoy corpus), as Istio builds them in
# pilot/pkg/networking/core (cluster_tls.go: `tlsMode-istio` / `tlsMode-disabled` socket matches
# for auto mTLS; listener_builder.go and the inbound filter chains: a `tls` chain with Istio's
# ALPN and a DownstreamTlsContext, plus plaintext chains only in PERMISSIVE mode).

TLS_UP = V3 + "extensions.transport_sockets.tls.v3.UpstreamTlsContext"
TLS_DOWN = V3 + "extensions.transport_sockets.tls.v3.DownstreamTlsContext"
SDS_ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
# Istio's ALPN on an outbound mTLS connection (cluster_tls.go, util.ALPNInMeshWithMxc).
ALPN_MESH = ["istio-peer-exchange", "istio"]
# What an inbound mTLS chain of a service port accepts (the corpus dumps' `0.0.0.0_<port>`).
ALPN_INBOUND_PORT = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
# Endpoint metadata Istio writes for a workload with a sidecar.
TLS_MODE_ISTIO = {"envoy.transport_socket_match": {"tlsMode": "istio"}}


def upstream_mtls(sni, san):
    """The `tlsMode-istio` transport socket: Istio's certificate by SDS, ALPN for the mesh."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS_UP, "sni": sni,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2",
                           "tls_maximum_protocol_version": "TLSv1_3"},
            "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": SDS_ADS}],
            "combined_validation_context": {
                "default_validation_context": {"match_subject_alt_names": [{"exact": san}]},
                "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": SDS_ADS}},
            "alpn_protocols": ALPN_MESH}}}


def tls_mode_matches(sni, san):
    """`transport_socket_matches` of an outbound cluster with auto mTLS."""
    return [{"name": "tlsMode-istio", "match": {"tlsMode": "istio"},
             "transport_socket": upstream_mtls(sni, san)},
            {"name": "tlsMode-disabled", "match": {},
             "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
                 "@type": V3 + "extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}]


def simple_tls(sni):
    """A DestinationRule `tls.mode: SIMPLE`: TLS without a client certificate."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS_UP, "sni": sni, "common_tls_context": {}}}


def downstream_mtls(alpn):
    """The DownstreamTlsContext of an inbound mTLS chain (client certificate required)."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS_DOWN,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "alpn_protocols": alpn,
            "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": SDS_ADS}],
            "combined_validation_context": {
                "default_validation_context": {},
                "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": SDS_ADS}}},
        "require_client_certificate": True}}


def mtls_inbound_chains(mode, pt_route, port_routes):
    """virtualInbound's chains with mTLS on: `mode` PERMISSIVE (mTLS and plaintext) or STRICT
    (mTLS only). port_routes: (port, inline route configuration) per HTTP service port."""
    any4 = [{"address_prefix": "0.0.0.0", "prefix_len": 0}]
    strict = mode == "STRICT"
    chains = [
        {"filter_chain_match": {"destination_port": 15006},
         "filters": [tcp_proxy("BlackHoleCluster")], "name": "virtualInbound-blackhole"},
        {"filter_chain_match": {"prefix_ranges": any4, "transport_protocol": "tls",
                                "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"]},
         "filters": [hcm_inline("inbound_0.0.0.0_0", pt_route)],
         "transport_socket": downstream_mtls(["h2", "http/1.1"]), "name": "virtualInbound-catchall-http"}]
    if not strict:
        chains.append({"filter_chain_match": {"prefix_ranges": any4, "transport_protocol": "raw_buffer",
                                              "application_protocols": ["http/1.1", "h2c"]},
                       "filters": [hcm_inline("inbound_0.0.0.0_0", pt_route)],
                       "name": "virtualInbound-catchall-http"})
    chains.append({"filter_chain_match": {"prefix_ranges": any4, "transport_protocol": "tls",
                                          "application_protocols": ALPN_MESH},
                   "filters": [tcp_proxy("InboundPassthroughCluster")],
                   "transport_socket": downstream_mtls(["istio-peer-exchange", "h2", "http/1.1"]),
                   "name": "virtualInbound"})
    if not strict:
        for tp in ("raw_buffer", "tls"):
            chains.append({"filter_chain_match": {"prefix_ranges": any4, "transport_protocol": tp},
                           "filters": [tcp_proxy("InboundPassthroughCluster")],
                           "name": "virtualInbound"})
    for port, route in port_routes:
        chains.append({"filter_chain_match": {"destination_port": port, "transport_protocol": "tls",
                                              "application_protocols": ALPN_INBOUND_PORT},
                       "filters": [hcm_inline("inbound_0.0.0.0_%d" % port, route)],
                       "transport_socket": downstream_mtls(["h2", "http/1.1"]),
                       "name": "0.0.0.0_%d" % port})
        if not strict:
            chains.append({"filter_chain_match": {"destination_port": port,
                                                  "transport_protocol": "raw_buffer"},
                           "filters": [hcm_inline("inbound_0.0.0.0_%d" % port, route)],
                           "name": "0.0.0.0_%d" % port})
    return chains


# --- clusters ----------------------------------------------------------------------------------

def services_meta(host, name, ns, port, dr=None):
    meta = {"istio": {"default_original_port": port,
                      "services": [{"host": host, "name": name, "namespace": ns}]}}
    if dr:
        meta["istio"]["config"] = dr
    return {"filter_metadata": meta}


def base_clusters():
    return [
        {"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"},
        {"name": "InboundPassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "10s",
         "lb_policy": "CLUSTER_PROVIDED",
         "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}}},
        {"name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "10s",
         "lb_policy": "CLUSTER_PROVIDED"},
    ]


def inbound_cluster(port, host, name, ns):
    return {"name": "inbound|%d||" % port, "type": "ORIGINAL_DST", "connect_timeout": "10s",
            "lb_policy": "CLUSTER_PROVIDED", "cleanup_interval": "60s",
            "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
            "metadata": services_meta(host, name, ns, port)}


def eds_cluster(name, meta):
    return {"name": name, "type": "EDS",
            "eds_cluster_config": {"eds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                                                  "resource_api_version": "V3"},
                                   "service_name": name},
            "connect_timeout": "10s", "metadata": meta}


def dns_cluster(name, host, port, meta):
    """resolution: DNS ServiceEntry: STRICT_DNS on the host name (Istio < 1.22 default)."""
    return {"name": name, "type": "STRICT_DNS", "connect_timeout": "10s",
            "dns_lookup_family": "V4_ONLY", "dns_refresh_rate": "60s", "respect_dns_ttl": True,
            "load_assignment": {"cluster_name": name, "endpoints": [{"locality": {}, "lb_endpoints": [
                {"endpoint": {"address": sock(host, port)}, "load_balancing_weight": 1}]}]},
            "metadata": meta}


def original_dst_cluster(name, meta):
    """resolution: NONE ServiceEntry: the connection goes where the app sent it."""
    return {"name": name, "type": "ORIGINAL_DST", "connect_timeout": "10s",
            "lb_policy": "CLUSTER_PROVIDED", "metadata": meta}


def cla(cluster, endpoints, tls_mode=False):
    """ClusterLoadAssignment; endpoints: (ip, port, workload) with workload
    "name;namespace;app;version;cluster" as Istio writes `filter_metadata.istio.workload`;
    `tls_mode`: the workloads have sidecars, so Istio labels them `tlsMode: istio`."""
    def meta(wl):
        m = {"istio": {"workload": wl}}
        if tls_mode:
            m.update(TLS_MODE_ISTIO)
        return {"filter_metadata": m}
    return {"@type": V3 + "config.endpoint.v3.ClusterLoadAssignment", "cluster_name": cluster,
            "endpoints": [{"locality": {}, "lb_endpoints": [
                {"endpoint": {"address": sock(ip, port), "health_check_config": {}},
                 "health_status": "HEALTHY",
                 "metadata": meta(wl),
                 "load_balancing_weight": 1} for ip, port, wl in endpoints]}],
            "policy": {"overprovisioning_factor": 140}}


# --- routes ------------------------------------------------------------------------------------

def domains(era, names, port):
    out = []
    for n in names:
        out.append(n)
        if era.ports_in_domains:
            out.append("%s:%d" % (n, port))
    return out


def route(era, cluster, operation, name="default", config=None, weighted=None):
    action = {"timeout": "0s",
              "retry_policy": {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                               "num_retries": 2, "host_selection_retry_max_attempts": "5",
                               "retriable_status_codes": [503]},
              "max_grpc_timeout": "0s"}
    if weighted:
        action["weighted_clusters"] = {"clusters": [{"name": c, "weight": w} for c, w in weighted]}
    else:
        action["cluster"] = cluster
    r = {"match": {"prefix": "/"}, "route": action, "decorator": {"operation": operation}}
    if name is not None:
        r = dict({"name": name}, **r)
    if config:
        r["metadata"] = {"filter_metadata": {"istio": {"config": config}}}
    return r


def vhost(era, host, port, names, routes):
    return {"name": "%s:%d" % (host, port), "domains": domains(era, names, port), "routes": routes,
            "include_request_attempt_count": True}


def allow_any():
    return {"name": "allow_any", "domains": ["*"],
            "routes": [{"name": "allow_any", "match": {"prefix": "/"},
                        "route": {"cluster": "PassthroughCluster", "timeout": "0s",
                                  "max_grpc_timeout": "0s"}}],
            "include_request_attempt_count": True}


def route_config(era, port, vhosts):
    rc = {"@type": V3 + "config.route.v3.RouteConfiguration", "name": str(port),
          "virtual_hosts": vhosts + [allow_any()], "validate_clusters": False}
    if not era.ports_in_domains:
        rc["max_direct_response_body_size_bytes"] = 1048576
        rc["ignore_port_in_host_matching"] = True
    return rc


# --- the dump ----------------------------------------------------------------------------------

def dump(era, pod, ns, ip, labels, listeners, clusters, endpoints, routes, static_routes=(),
         mode="REDIRECT"):
    def dyn(kind, res):
        return {"version_info": era.ver, kind: res, "last_updated": era.ts}

    node_id = "sidecar~%s~%s.%s~%s.svc.cluster.local" % (ip, pod, ns, ns)
    configs = [
        {"@type": V3 + "admin.v3.BootstrapConfigDump",
         "bootstrap": {"node": {"id": node_id, "cluster": "%s.%s" % (labels["app"], ns),
                                "metadata": {"ISTIO_VERSION": era.version, "NAMESPACE": ns,
                                             "INSTANCE_IPS": ip, "INTERCEPTION_MODE": mode,
                                             "LABELS": labels}}},
         "last_updated": era.ts},
        {"@type": V3 + "admin.v3.ClustersConfigDump", "version_info": era.ver,
         "dynamic_active_clusters": [dyn("cluster", typed("config.cluster.v3.Cluster", c))
                                     for c in base_clusters() + clusters]}]
    if endpoints:
        configs.append({"@type": V3 + "admin.v3.EndpointsConfigDump",
                        "dynamic_endpoint_configs": [dyn("endpoint_config", e) for e in endpoints]})
    configs.append({"@type": V3 + "admin.v3.ListenersConfigDump", "version_info": era.ver,
                    "dynamic_listeners": [{"name": l["name"], "active_state": {
                        "version_info": era.ver, "listener": l, "last_updated": era.ts}}
                        for l in listeners]})
    rcd = {"@type": V3 + "admin.v3.RoutesConfigDump",
           "dynamic_route_configs": [dyn("route_config", r) for r in routes]}
    if static_routes:
        rcd["static_route_configs"] = [
            {"route_config": dict(r, **{"@type": V3 + "config.route.v3.RouteConfiguration"}),
             "last_updated": era.ts} for r in static_routes]
    configs.append(rcd)
    return {"configs": configs}


def inbound_static_routes(ports, fqdn):
    return [inbound_route("InboundPassthroughCluster", "inbound|http|0", ":0/*")] + [
        inbound_route("inbound|%d||" % p, "inbound|http|%d" % p, "%s:%d/*" % (fqdn, p)) for p in ports]


def fqdn(name, ns="default"):
    return "%s.%s.svc.cluster.local" % (name, ns)


def kube_names(name, ns, vip):
    return [fqdn(name, ns), name, "%s.%s.svc" % (name, ns), "%s.%s" % (name, ns), vip]


def sleep_pod(era, ns, ip, listeners, clusters, endpoints, routes):
    """A client pod (`sleep`) that serves nothing: only outbound configuration matters."""
    return dump(era, "sleep-7b9c6d8f5-k2x4p", ns, ip, {"app": "sleep"},
                [virtual_outbound()] + listeners + [virtual_inbound([], fqdn("sleep", ns))],
                clusters, endpoints, routes, inbound_static_routes([], fqdn("sleep", ns)))


class Svc:
    """A service as the sidecar sees it: its clusters, endpoints and (for HTTP) virtual host."""

    def __init__(self, host, port, names, endpoints, ns="default", name=None, http=True,
                 dr=None, subsets=None, routes=None, cluster=None, sidecars=True):
        self.host, self.port, self.names, self.endpoints = host, port, names, endpoints
        self.sidecars = sidecars  # its workloads run a sidecar (auto mTLS labels them)
        self.ns, self.name, self.http = ns, name or host.split(".")[0], http
        self.dr, self.subsets, self.routes = dr, subsets or {}, routes
        self.cluster_kind = cluster  # None: EDS; ("dns",) STRICT_DNS; ("orig",) ORIGINAL_DST

    def key(self, subset=""):
        return "outbound|%d|%s|%s" % (self.port, subset, self.host)

    def clusters(self, mtls=False):
        """`mtls`: auto mTLS is on, so every EDS cluster gets Istio's `tlsMode` socket matches
        (SNI `outbound_.<port>_.<subset>_.<host>`) and endpoints with sidecars their label."""
        meta = services_meta(self.host, self.name, self.ns, self.port, self.dr)
        if self.cluster_kind == "dns":
            return [dns_cluster(self.key(), self.host, self.port, meta)], []
        if self.cluster_kind == "orig":
            return [original_dst_cluster(self.key(), meta)], []
        tls = mtls and self.sidecars

        def eds(subset=""):
            c = eds_cluster(self.key(subset), meta)
            if mtls:
                c["transport_socket_matches"] = tls_mode_matches(
                    "outbound_.%d_.%s_.%s" % (self.port, subset, self.host),
                    "spiffe://cluster.local/ns/%s/sa/%s" % (self.ns, self.name))
            return c
        out = [eds()]
        eps = [cla(self.key(), [(ip, self.port, wl) for ip, wl in self.endpoints], tls)]
        for subset, members in self.subsets.items():
            out.append(eds(subset))
            eps.append(cla(self.key(subset),
                           [(ip, self.port, wl) for ip, wl in self.endpoints if ip in members], tls))
        return out, eps

    def vhost(self, era):
        routes = self.routes or [route(era, self.key(), "%s:%d/*" % (self.host, self.port))]
        return vhost(era, self.host, self.port, self.names, routes)


def outbound(era, services, extra_vhosts=(), mtls=False):
    """Clusters, endpoints, HTTP listeners and route configurations for these services."""
    clusters, endpoints, vhosts = [], [], {}
    for s in services:
        c, e = s.clusters(mtls)
        clusters += c
        endpoints += e
        if s.http:
            vhosts.setdefault(s.port, []).append(s.vhost(era))
    for port, vh in extra_vhosts:
        vhosts.setdefault(port, []).append(vh)
    listeners = [http_outbound(era, p) for p in sorted(vhosts)]
    routes = [route_config(era, p, vhosts[p]) for p in sorted(vhosts)]
    return clusters, endpoints, listeners, routes


def workload(name, version, ns="default", app=None):
    return "%s-%s;%s;%s;%s;Kubernetes" % (name, version, ns, app or name, version)


def modern_pod(era, pod, app, version, ip, serves, services, ns="default", extra_listeners=(),
               extra_vhosts=(), served_host=None, mtls=None):
    """A sidecar of Istio 1.10+ that serves `serves` (HTTP ports) and sees `services`; `mtls`:
    auto mTLS on, and the pod's PeerAuthentication mode ("PERMISSIVE" or "STRICT")."""
    c, e, l, r = outbound(era, services, extra_vhosts, mtls=bool(mtls))
    host = served_host or fqdn(app, ns)
    c = [inbound_cluster(p, host, host if served_host else app, ns) for p in serves] + c
    return dump(era, pod, ns, ip, {"app": app, "version": version},
                [virtual_outbound()] + l + list(extra_listeners) + [virtual_inbound(serves, host, mtls)],
                c, e, r, inbound_static_routes(serves, host))
