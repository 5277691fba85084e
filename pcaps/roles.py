#!/usr/bin/env python3
"""The processes of pcaps/make-pcaps.sh: a stand-in for Envoy (uid 1337) on 15001/15006, the
app on 9080 (uid 1000), pilot-agent's DNS proxy on 127.0.0.1:15053 (uid 1337), the servers
outside the pod, and the clients. Standard library only.

    roles.py envoy | app | dns | upstream CERT KEY        (servers, run until killed)
    roles.py http | tls | dns-then-vip | inbound          (one client call, then exit)
"""

import socket
import ssl
import struct
import sys
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h: the destination before REDIRECT


def original_dst(conn):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack("!H", raw[2:4])[0]
    return socket.inet_ntoa(raw[4:8]), port


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def proxy(conn, dst, source=None):
    """Connects to dst (from source when given) and copies bytes both ways, as Envoy's
    tcp_proxy to the original destination (PassthroughCluster / inbound ORIGINAL_DST) does."""
    up = socket.socket()
    if source:
        up.bind((source, 0))
    try:
        up.settimeout(3)
        up.connect(dst)
        up.settimeout(None)
    except OSError:
        conn.close()  # Envoy resets the downstream when the upstream fails (UF)
        return
    t = threading.Thread(target=pipe, args=(up, conn), daemon=True)
    t.start()
    pipe(conn, up)
    t.join(5)
    up.close()
    conn.close()


def serve(port, handler, addr="0.0.0.0"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)

    def loop():
        while True:
            conn, _ = s.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def http_answer(body):
    def handle(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        conn.close()

    return handle


def envoy():
    # Outbound: the app's connections, REDIRECTed to 15001, go to their original destination.
    serve(15001, lambda c: proxy(c, original_dst(c)))
    # Inbound: connections REDIRECTed to 15006 go to the app from 127.0.0.6 (Istio 1.10+).
    serve(15006, lambda c: proxy(c, original_dst(c), source="127.0.0.6"))
    threading.Event().wait()


def app():
    serve(9080, http_answer(b"app\n"))
    threading.Event().wait()


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 15053))
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        qid = q[:2]
        end = 12
        labels = []
        while end < len(q) and q[end] != 0:
            labels.append(q[end + 1 : end + 1 + q[end]].decode("ascii", "replace"))
            end += 1 + q[end]
        question = q[12 : end + 5]
        name = ".".join(labels).lower()
        if name == "vm.example.com":
            answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04" + socket.inet_aton("240.240.0.5")
            s.sendto(qid + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + answer, peer)
        else:
            s.sendto(qid + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question, peer)


def upstream(cert, key):
    serve(9080, http_answer(b"reviews\n"))
    serve(80, http_answer(b"vm\n"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def tls(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as t:
                t.recv(4096)
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ntls\n")
        except (OSError, ssl.SSLError):
            conn.close()

    serve(443, tls)
    threading.Event().wait()


def call(dst, request, source=None):
    c = socket.create_connection(dst, timeout=5, source_address=(source, 0) if source else None)
    c.sendall(request)
    reply = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        reply += chunk
    c.close()
    return reply


def main():
    role = sys.argv[1]
    if role == "envoy":
        envoy()
    elif role == "app":
        app()
    elif role == "dns":
        dns()
    elif role == "upstream":
        upstream(sys.argv[2], sys.argv[3])
    elif role == "http":
        print(call(("10.96.0.20", 9080), b"GET /reviews/1 HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n"))
    elif role == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("93.184.216.34", 443), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="example.com") as t:
                t.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
                print(t.recv(4096))
    elif role == "dns-then-vip":
        q = b"\x4d\x50\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02vm\x07example\x03com\x00\x00\x01\x00\x01"
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.connect(("10.96.0.10", 53))
        u.send(q)
        a = u.recv(512)
        ip = socket.inet_ntoa(a[-4:])
        print("vm.example.com", ip)
        # An HTTP/1.0 request without Host: only the DNS answer names this destination.
        print(call((ip, 80), b"GET /vm HTTP/1.0\r\n\r\n"))
    elif role == "inbound":
        print(call(("10.244.0.5", 9080), b"GET /productpage HTTP/1.1\r\nHost: productpage:9080\r\nConnection: close\r\n\r\n", source="10.244.1.9"))
    else:
        sys.exit("unknown role " + role)


if __name__ == "__main__":
    main()
