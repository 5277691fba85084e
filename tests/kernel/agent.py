#!/usr/bin/env python3
"""Packet side of the kernel conformance test (tests/kernel_conformance.rs).

Runs inside a test network namespace (`ip netns exec`):

  agent.py listen v4|v6 PORT...   transparent TCP listeners (IP_TRANSPARENT / IPV6_TRANSPARENT)
                                  on the wildcard address; prints "ready", exits on stdin EOF.
  agent.py send FILE PACE         sends the first packet of each probe listed in FILE, one per
                                  line: "tcp|udp SRC SPORT DST DPORT UID GID MARK" (MARK = SO_MARK,
                                  0 for none, set while still root). Probes are grouped
                                  by (uid, gid); each group runs in a child that drops to those
                                  credentials, so the sockets belong to them (owner match).
                                  TCP: non-blocking connect (the SYN is the probe), closed at
                                  once so it is never retransmitted. UDP: one datagram.
"""
import os
import socket
import sys
import time

IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75
SOL_IPV6 = 41


def listen(fam, ports):
    socks = []
    for port in ports:
        if fam == "v6":
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            addr = ("::", int(port))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            addr = ("0.0.0.0", int(port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(1024)
        socks.append(s)
    print("ready", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


SO_MARK = 36


def run_group(probes, pace):
    for proto, src, sport, dst, dport, mark in probes:
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mark:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        s.bind((src, int(sport)))
        if proto == "tcp":
            # The SYN leaves during connect(); closing right away means it is never
            # retransmitted, so each probe is traced exactly once.
            s.setblocking(False)
            s.connect_ex((dst, int(dport)))
        else:
            try:
                s.sendto(b"meshpath-probe", (dst, int(dport)))
            except OSError:
                pass
        s.close()
        time.sleep(pace)


def send(path, pace):
    groups = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 8:
                continue
            proto, src, sport, dst, dport, uid, gid, mark = parts
            key = (int(uid), int(gid), int(mark) != 0)
            groups.setdefault(key, []).append((proto, src, sport, dst, dport, int(mark)))
    children = []
    for (uid, gid, marked), probes in sorted(groups.items()):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if marked:
                    # SO_MARK needs CAP_NET_ADMIN, which a real setuid drops. The owner match
                    # reads the socket file's fsuid/fsgid (net/netfilter/xt_owner.c), so stay root and
                    # change only those.
                    import ctypes

                    libc = ctypes.CDLL(None, use_errno=True)
                    os.setgroups([])
                    libc.setfsgid(gid)
                    libc.setfsuid(uid)
                else:
                    os.setgroups([])
                    os.setgid(gid)
                    os.setuid(uid)
                run_group(probes, pace)
            except Exception as e:  # reported by the parent's missing traces
                print(f"agent: uid {uid} gid {gid}: {e}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        children.append(pid)
    failed = False
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed |= status != 0
    if failed:
        sys.exit(1)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "listen":
        listen(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "send":
        send(sys.argv[2], float(sys.argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
