"""``ocs_fabric.routing_mode: static`` end to end, with real packets and real bgpd.

Network namespaces for spine1, tor-r01, tor-r02, hv-r01-01, hv-r01-02 (dual-homed:
two links to tor-r01), hv-r02-01, and one namespace per instance behind its
hypervisor's tap (fixed address, the gateway as default route). The ToRs and
hypervisors get the route tables ``ocs_l3.routes`` computes, applied by the
role's module ``ocs_route_table``; the spine and the ToRs run zebra, staticd
and bgpd with the configs ``ocs_l3.frr`` computes, applied by
``ocs_frr_reload`` (lab helpers from test_frr_netns). The hypervisors run no
BGP. Shows: each ToR's kernel table (every rack instance /32 via its
hypervisor, ECMP for the dual-homed one, proto 211), the spine's (the rack
subnets from BGP, no instance /32), the hypervisors' defaults, TCP
between instances of the two racks with their fixed source addresses, and a
second apply that changes nothing. Every process and namespace is removed.
"""

import copy
import json
import os
import shutil
import subprocess

import pytest

from helpers import BIN, run_module, sh
from test_frr_netns import Lab, wait_for


from fabric_data import BASE, dual_stack, static6  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa6  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.constants import ROUTE_PROTOCOL  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.artifact import text  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines  # noqa: E402

FRR_HOSTS = ("spine1", "tor-r01", "tor-r02")
HYPERVISORS = ("hv-r01-01", "hv-r01-02", "hv-r02-01")
ROUTED = ("tor-r01", "tor-r02") + HYPERVISORS  # hosts with a route table
PORT = 8080

SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], %d))
s.listen(4)
s.settimeout(60)
for _ in range(int(sys.argv[2])):
    c, peer = s.accept()
    c.sendall(("%%s %%s" %% (c.getsockname()[0], peer[0])).encode())
    print(peer[0], flush=True)
    c.close()
""" % PORT

CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], %d), timeout=5)
print(c.getsockname()[0], c.recv(100).decode())
""" % PORT


def static_data():
    """The test fabric in static routing mode, without the NAT gateway and border."""
    data = copy.deepcopy(BASE)
    data["fabric"]["routing_mode"] = "static"
    data["fabric"]["border_peers"] = []
    data["hostvars"]["spine1"].pop("ocs_uplinks", None)  # its border link: no border here
    data["groups"]["nat_gateways"] = []
    data["hostvars"].pop("gw-01")
    return data


class StaticLab(Lab):
    def __init__(self, fab):
        self.fab = fab
        self.instances = {i.name: (hv, i) for hv in HYPERVISORS for i in fab.hosts[hv].instances}
        super().__init__(FRR_HOSTS + HYPERVISORS + tuple(self.instances))
        self.procs = []

    def sysctl(self, host, *settings):
        sh("ip", "netns", "exec", self.ns[host], "sysctl", "-q", "-w", *settings)

    def bridge(self, host, name, addr, ports):
        self.ip(host, "link", "add", name, "type", "bridge")
        self.ip(host, "addr", "add", addr, "dev", name)
        self.ip(host, "link", "set", name, "up")
        for port in ports:
            self.ip(host, "link", "set", port, "master", name)

    def build(self):
        self.namespaces()
        for host in FRR_HOSTS + HYPERVISORS:
            self.sysctl(host, "net.ipv4.ip_forward=1")  # what ocs_routes sets
        for hv in HYPERVISORS:
            self.sysctl(hv, "net.ipv4.conf.default.proxy_arp=1")
        # spine "eth0": a bridge for 198.18.0.0/24 (both ToRs' uplinks)
        self.veth("tor-r01", "eth0", "spine1", "p1")
        self.veth("tor-r02", "eth0", "spine1", "p2")
        self.bridge("spine1", "eth0", "198.18.0.1/24", ("p1", "p2"))
        self.ip("tor-r01", "addr", "add", "198.18.0.11/24", "dev", "eth0")
        self.ip("tor-r02", "addr", "add", "198.18.0.12/24", "dev", "eth0")
        # rack r01 as the fabric declares it: eth1 (a bridge) 198.18.1.0/25 to
        # both hypervisors' eth0, eth2 198.18.1.128/25 to hv-r01-02's eth1
        self.veth("hv-r01-01", "eth0", "tor-r01", "p1")
        self.veth("hv-r01-02", "eth0", "tor-r01", "p2")
        self.bridge("tor-r01", "eth1", "198.18.1.1/25", ("p1", "p2"))
        self.ip("hv-r01-01", "addr", "add", "198.18.1.11/25", "dev", "eth0")
        self.ip("hv-r01-02", "addr", "add", "198.18.1.12/25", "dev", "eth0")
        self.veth("hv-r01-02", "eth1", "tor-r01", "eth2")
        self.ip("hv-r01-02", "addr", "add", "198.18.1.140/25", "dev", "eth1")
        self.ip("tor-r01", "addr", "add", "198.18.1.129/25", "dev", "eth2")
        # rack r02: no links declared; the hosts' fabric addresses share a link
        self.veth("hv-r02-01", "eth0", "tor-r02", "eth1")
        self.ip("tor-r02", "addr", "add", "198.18.2.1/24", "dev", "eth1")
        self.ip("hv-r02-01", "addr", "add", "198.18.2.11/24", "dev", "eth0")
        self.instances_up()
        for host in FRR_HOSTS:
            self.start(host)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        super().stop()

    def apply_routes(self, host):
        src = os.path.join(self.run, "%s.routes.batch" % host)
        with open(src, "w") as fh:
            fh.write(text(host_lines(self.fab, self.fab.hosts[host])))
        result = run_module(self.ns[host], "ocs.l3.ocs_route_table", "src=%s" % src)
        assert not result.get("failed"), result
        assert result["missing_interfaces"] == [], result
        return result

    def table(self, host, *sel):
        """{destination: sorted gateways ("blackhole" for one)} of the kernel's IPv4 main table."""
        out = {}
        for r in json.loads(self.ip(host, "-j", "-4", "route", "show", *sel).stdout):
            if r.get("type") == "blackhole":
                hops = ["blackhole"]
            else:
                hops = sorted(h["gateway"] for h in r.get("nexthops", [r]) if "gateway" in h)
            out[r["dst"]] = (hops, r.get("protocol"))
        return out

    def exec(self, host, *cmd, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns[host], *cmd], capture_output=True, text=True, **kw)


def _lab(data):
    if os.geteuid() != 0 or not shutil.which("vtysh") or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr and frr-pythontools (make validate installs them)")
    lab = StaticLab(build(data))
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab():
    yield from _lab(static_data())


@pytest.fixture
def lab6():
    """The lab dual-stack (fabric_data.dual_stack, static6: each hypervisor with an IPv6 instance and
    each ToR an ocs_address6); each instance with an ip6 configured as its guest's DHCPv6/RA would."""
    for lab in _lab(static6(dual_stack(static_data()))):
        for host in FRR_HOSTS + HYPERVISORS:
            lab.sysctl(host, "net.ipv6.conf.all.forwarding=1")  # what ocs_routes sets
        for name, (hv, inst) in lab.instances.items():
            if inst.ip6 is not None:
                lab.ip(name, "-6", "addr", "add", "%s/128" % ntoa6(inst.ip6), "dev", "eth0", "nodad")
                lab.ip(name, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
        yield lab


def apply_all(lab):
    """Top down, as site.yml does: routes, then FRR; {host: (routes result, frr result)}."""
    out = {}
    for host in FRR_HOSTS + HYPERVISORS:
        routes = lab.apply_routes(host) if host in ROUTED else None
        frr = lab.configure(lab.fab, host) if host in FRR_HOSTS else None
        out[host] = (routes, frr)
    return out


def test_static_mode_end_to_end(lab):
    fab = lab.fab
    proto = str(ROUTE_PROTOCOL)
    for hv in HYPERVISORS:  # nothing for FRR to do on a hypervisor in static mode
        assert not any(ln.startswith("router bgp") for ln in config_lines(fab, fab.hosts[hv]))

    first = apply_all(lab)
    assert all(r is None or r["changed"] for r, f in first.values()), first
    assert all(f is None or f["changed"] for r, f in first.values()), first
    wait_for(lambda: lab.established("spine1") == {"198.18.0.11", "198.18.0.12"}, "spine sessions Established")
    assert set(lab.peers("tor-r01")) == {"198.18.0.1"}  # no hypervisor neighbor
    assert set(lab.peers("tor-r02")) == {"198.18.0.1"}

    # ToRs: every rack instance /32 via its hypervisor (ECMP over hv-r01-02's
    # two links), a blackhole per instance subnet, all proto 211.
    tor1 = lab.table("tor-r01", "proto", proto)
    want1 = {"198.19.1.10": ["198.18.1.11"], "198.19.1.11": ["198.18.1.11"],
             "198.19.1.12": ["198.18.1.12", "198.18.1.140"], "198.19.1.0/24": ["blackhole"]}
    assert {d: tor1[d][0] for d in want1} == want1, tor1
    tor2 = lab.table("tor-r02", "proto", proto)
    want2 = {"198.19.2.13": ["198.18.2.11"], "198.19.2.0/25": ["blackhole"], "198.19.2.128/25": ["blackhole"]}
    assert {d: tor2[d][0] for d in want2} == want2, tor2

    # Spine: each rack's instance subnets from BGP, no instance /32. The
    # ToRs aggregate their kernel /32s: a subnet is announced while an
    # instance of it is routed (198.19.2.128/25 has none: not announced).
    want_spine = {"198.19.1.0/24": ["198.18.0.11"], "198.19.2.0/25": ["198.18.0.12"]}
    spine = wait_for(lambda: (lambda t: t if all(t.get(d, (None,))[0] == h for d, h in want_spine.items()) else None)(
        lab.table("spine1")), "rack subnets in the spine's kernel table")
    assert all(spine[d][1] == "bgp" for d in want_spine)
    assert not [d for d in spine if d.startswith("198.19.") and "/" not in d], spine
    assert "198.19.2.128/25" not in spine
    # Each ToR learns the other rack's subnets from the spine (the spine keeps
    # the other ToR as next hop on their shared link: eBGP third-party next hop).
    for tor, dst, hop in (("tor-r01", "198.19.2.0/25", "198.18.0.12"), ("tor-r02", "198.19.1.0/24", "198.18.0.11")):
        wait_for(lambda: lab.table(tor).get(dst, (None,))[0] in ([hop], ["198.18.0.1"]), "%s at %s" % (dst, tor), 60)

    # Hypervisors: a default via the ToR (ECMP on the dual-homed one), no BGP.
    want_default = {"hv-r01-01": ["198.18.1.1"], "hv-r01-02": ["198.18.1.1", "198.18.1.129"],
                    "hv-r02-01": ["198.18.2.1"]}
    for hv, hops in want_default.items():
        assert lab.table(hv, "proto", proto)["default"][0] == hops, hv
        assert lab.exec(hv, "ss", "-Htan", "( sport = :179 or dport = :179 )", check=True).stdout.strip() == ""

    # Real packets between racks, with the instances' fixed addresses at both ends.
    server = subprocess.Popen(["ip", "netns", "exec", lab.ns["vm-d"], os.path.join(BIN, "python"), "-c", SERVER,
                               "198.19.2.13", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lab.procs.append(server)
    # vm-a and vm-b behind hv-r01-01, vm-c behind the dual-homed hv-r01-02
    for client, addr in (("vm-a", "198.19.1.10"), ("vm-b", "198.19.1.11"), ("vm-c", "198.19.1.12")):
        got = wait_for(lambda: (lambda p: p.stdout.split() if p.returncode == 0 else None)(
            lab.exec(client, os.path.join(BIN, "python"), "-c", CLIENT, "198.19.2.13", timeout=20)),
            "TCP %s -> vm-d" % client, 60)
        assert got == [addr, "198.19.2.13", addr], got  # client's source; server's address and its view of the peer
    out, err = server.communicate(timeout=30)
    assert out.split() == ["198.19.1.10", "198.19.1.11", "198.19.1.12"], (out, err)

    # Second apply: nothing to do anywhere.
    before = {h: lab.table(h) for h in ROUTED}
    again = apply_all(lab)
    for host, (routes, frr) in again.items():
        assert routes is None or (not routes["changed"] and routes["commands"] == []), (host, routes)
        assert frr is None or not frr["changed"], (host, frr)
    assert {h: lab.table(h) for h in ROUTED} == before
    assert lab.json("spine1", "show bgp neighbors")["198.18.0.11"]["connectionsEstablished"] == 1



def table6(lab, host, *sel):
    """{destination: (sorted (gateway, device, onlink) next hops, protocol)} of the IPv6 main table."""
    out = {}
    for r in json.loads(lab.ip(host, "-j", "-6", "route", "show", *sel).stdout):
        hops = sorted((h["gateway"], h.get("dev"), "onlink" in h.get("flags", ())) for h in r.get("nexthops", [r])
                      if "gateway" in h)
        out[r["dst"]] = (["blackhole"] if r.get("type") == "blackhole" else hops, r.get("protocol"))
    return out


def test_static_mode_ipv6_end_to_end(lab6):
    """Issue 21, static mode with IPv6: each ToR routes its rack's instance /128s via the hypervisor's
    ocs_address6 on-link out of its downlink(s) (ECMP for the dual-homed hv-r01-02), each hypervisor
    its IPv6 default via its ToR's ocs_address6 out of its uplink(s); each puts its own address on
    those links (and answers neighbour discovery for it there). The spine holds the racks' IPv6
    subnets (the ToRs aggregate their kernel /128s), no instance /128. TCP over IPv6 between the
    racks with the instances' own addresses; a second apply changes nothing."""
    lab, proto = lab6, str(ROUTE_PROTOCOL)
    apply_all(lab)
    tor1 = table6(lab, "tor-r01", "proto", proto)
    hv1, hv2 = "2001:db8:ffff::21", "2001:db8:ffff::22"
    assert {d: tor1[d][0] for d in ("2001:db8:0:1::b", "2001:db8:0:1::c613:10a", "2001:db8:0:1::c613:10c")} == {
        "2001:db8:0:1::b": [(hv1, "eth1", True)], "2001:db8:0:1::c613:10a": [(hv1, "eth1", True)],
        "2001:db8:0:1::c613:10c": [(hv2, "eth1", True), (hv2, "eth2", True)]}, tor1
    assert table6(lab, "tor-r02", "proto", proto)["2001:db8:0:2::d"][0] == [("2001:db8:ffff::31", "eth1", True)]
    want_default = {"hv-r01-01": [("2001:db8:ffff::11", "eth0", True)],
                    "hv-r01-02": [("2001:db8:ffff::11", "eth0", True), ("2001:db8:ffff::11", "eth1", True)],
                    "hv-r02-01": [("2001:db8:ffff::13", "eth0", True)]}
    for hv, hops in want_default.items():
        assert table6(lab, hv, "proto", proto)["default"][0] == hops, hv
    assert "2001:db8:ffff::22/128" in lab.ip("hv-r01-02", "-6", "addr", "show", "dev", "eth1").stdout

    want_spine = ("2001:db8:0:1::/64", "2001:db8:0:2::/64")
    spine = wait_for(lambda: (lambda t: t if all(d in t for d in want_spine) else None)(table6(lab, "spine1")),
                     "the racks' IPv6 subnets in the spine's kernel table", 60)
    assert all(spine[d][1] == "bgp" for d in want_spine), spine
    assert not [d for d in spine if d.startswith("2001:db8:0:") and "/" not in d], spine  # no instance /128

    server = subprocess.Popen(["ip", "netns", "exec", lab.ns["vm-d"], os.path.join(BIN, "python"), "-c", SERVER,
                               "2001:db8:0:2::d", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lab.procs.append(server)
    clients = (("vm-a", "2001:db8:0:1::c613:10a"), ("vm-b", "2001:db8:0:1::b"), ("vm-c", "2001:db8:0:1::c613:10c"))
    for client, addr in clients:
        got = wait_for(lambda: (lambda p: p.stdout.split() if p.returncode == 0 else None)(
            lab.exec(client, os.path.join(BIN, "python"), "-c", CLIENT, "2001:db8:0:2::d", timeout=20)),
            "TCP over IPv6 %s -> vm-d" % client, 60)
        assert got == [addr, "2001:db8:0:2::d", addr], got
    out, err = server.communicate(timeout=30)
    assert out.split() == [addr for dummy, addr in clients], (out, err)

    before = {h: table6(lab, h) for h in ROUTED}
    for host, (routes, frr) in apply_all(lab).items():
        assert routes is None or (not routes["changed"] and routes["commands"] == []), (host, routes)
        assert frr is None or not frr["changed"], (host, frr)
    assert {h: table6(lab, h) for h in ROUTED} == before
