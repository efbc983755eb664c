"""Failover with real FRR: a rack with two ToRs, two spines, a border.

Rack r01 has two ToRs (tor-r01, tor-r01b, the rack's ASN), each on its own
point-to-point links (/31) to both hypervisors and to both spines; each
spine has a link of its own to a border router (a plain bgpd of its own
config, nat_mode host: it sends the spines a default and takes the
floating range). Every host runs zebra, staticd and bgpd in its own network
namespace; the fabric hosts run exactly what ``ocs_l3.frr`` computes,
applied by the role's module, and the hypervisors' instance routes come from
the routes concern (each instance in a namespace of its own behind its tap).

Each fault takes interfaces down at one end of a set of links (the other
end sees no carrier, as with a pulled cable) and measures, polling every
0.2 s, the time until the fabric shows the new state:

1. tor-r01 loses every hypervisor link: both spines drop its path to the
   rack's instance subnet (the aggregate has no contributor left) and an
   instance still answers a spine, through tor-r01b;
2. tor-r01 loses its uplinks: the hypervisors stop sending anything beyond
   the rack through it (it relays only what the spines send it), and a
   hypervisor still reaches both spines;
3. spine1 loses every downlink: the border stops receiving the floating
   range from spine1 (its aggregate has no contributor left) and keeps it
   from spine2; the border still reaches a public address.

The control (4): a ToR that originates the rack subnet unconditionally
(``network`` and a blackhole, as the project did before) stays a spine's
path after it lost every hypervisor.

Every bound below is the one the issue demands (10 s), asserted by waiting
at most that long; the measured times are printed (``pytest -s``) as
``failover: ...`` lines. Each fault gets a fresh lab: FRR 8.4's zebra
loses the flapped member of a kernel nexthop group when the link comes back
within its 180 s keep time (FRRouting/frr#13413, merged after 8.4), so a lab
restored after a fault no longer has kernel ECMP to show. Every process and
namespace is removed afterwards.
"""

import copy
import json
import os
import shutil
import subprocess
import time

import pytest

from helpers import sh
from test_frr_netns import HEADER, Lab, reload_module, wait_for

from fabric_data import BASE  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines, hypervisor_import  # noqa: E402

BOUND = 10  # seconds: what the issue demands from the fault to the new state
POLL = 0.2  # seconds between two looks at the state

SPINES, TORS, HVS = ("spine1", "spine2"), ("tor-r01", "tor-r01b"), ("hv-r01-01", "hv-r01-02")
FABRIC = SPINES + TORS + HVS
HOSTS = ("border",) + FABRIC
BORDER_ASN = 65530
RACK_NET, HOST_NET, FLOATING = "198.19.1.0/24", "198.18.1.0/24", "203.0.113.0/24"
LOOPBACK = {"spine1": "198.18.0.1", "spine2": "198.18.0.2", "tor-r01": "198.18.1.1", "tor-r01b": "198.18.1.2",
            "hv-r01-01": "198.18.1.11", "hv-r01-02": "198.18.1.12"}

# Point-to-point links: (upper host, interface, address, lower host, interface, address), /31
# in the fabric, /30 to the border (not fabric infrastructure: documentation space).
LINKS = [
    ("spine1", "tor-a", "198.18.0.16/31", "tor-r01", "sp1", "198.18.0.17/31"),
    ("spine1", "tor-b", "198.18.0.18/31", "tor-r01b", "sp1", "198.18.0.19/31"),
    ("spine2", "tor-a", "198.18.0.20/31", "tor-r01", "sp2", "198.18.0.21/31"),
    ("spine2", "tor-b", "198.18.0.22/31", "tor-r01b", "sp2", "198.18.0.23/31"),
    ("tor-r01", "hv1", "198.18.1.32/31", "hv-r01-01", "tor-a", "198.18.1.33/31"),
    ("tor-r01", "hv2", "198.18.1.34/31", "hv-r01-02", "tor-a", "198.18.1.35/31"),
    ("tor-r01b", "hv1", "198.18.1.36/31", "hv-r01-01", "tor-b", "198.18.1.37/31"),
    ("tor-r01b", "hv2", "198.18.1.38/31", "hv-r01-02", "tor-b", "198.18.1.39/31"),
]
BORDER_LINKS = [
    ("border", "sp1", "198.51.100.1/30", "spine1", "border", "198.51.100.2/30"),
    ("border", "sp2", "198.51.100.5/30", "spine2", "border", "198.51.100.6/30"),
]


def ip_of(cidr):
    return cidr.split("/")[0]


def ends():
    """Every link from both ends: (host, interface, other host, other end's address)."""
    for up, up_if, up_ip, low, low_if, low_ip in LINKS + BORDER_LINKS:
        yield up, up_if, low, ip_of(low_ip)
        yield low, low_if, up, ip_of(up_ip)


def far_end(host, iface):
    """The address at the other end of ``host``'s link ``iface``."""
    return next(ip for h, i, dummy, ip in ends() if (h, i) == (host, iface))


def links_of(host, toward):
    """Interfaces of ``host`` whose other end is one of the hosts ``toward``."""
    return [i for h, i, other, dummy in ends() if h == host and other in toward]


def peers_of(host):
    """The addresses ``host`` has BGP sessions with: the other end of each of its links."""
    return {ip for h, dummy, dummy2, ip in ends() if h == host}


BORDER_CONF = """router bgp %(asn)d
 bgp router-id 198.51.100.1
 neighbor 198.51.100.2 remote-as 65000
 neighbor 198.51.100.6 remote-as 65000
 !
 address-family ipv4 unicast
  neighbor 198.51.100.2 default-originate
  neighbor 198.51.100.2 route-map ANY in
  neighbor 198.51.100.2 route-map ANY out
  neighbor 198.51.100.6 default-originate
  neighbor 198.51.100.6 route-map ANY in
  neighbor 198.51.100.6 route-map ANY out
  maximum-paths 2
 exit-address-family
exit
!
route-map ANY permit 10
exit
!
""" % {"asn": BORDER_ASN}


def failover_data():
    """The test fabric with rack r01 on two ToRs and two spines, every link
    point-to-point, both spines peering with the border (nat_mode host)."""
    data = copy.deepcopy(BASE)
    data["groups"] = {"spines": list(SPINES), "tors": list(TORS), "hypervisors": list(HVS), "nat_gateways": []}
    data["racks"].pop("r02")
    for name in ("tor-r02", "hv-r02-01", "gw-01"):
        data["hostvars"].pop(name)
    hv = data["hostvars"]
    for host in FABRIC:
        hv.setdefault(host, {})
        hv[host]["ocs_address"] = LOOPBACK[host]
        if host in TORS or host in HVS:
            hv[host]["ocs_rack"] = "r01"
        hv[host]["ocs_uplinks"] = []
        if host not in HVS:
            hv[host]["ocs_downlinks"] = []
    for up, up_if, up_ip, low, low_if, low_ip in LINKS + BORDER_LINKS:
        if up != "border":
            hv[up]["ocs_downlinks"].append({"interface": up_if, "address": up_ip})
        hv[low]["ocs_uplinks"].append({"interface": low_if, "address": low_ip, "peer": ip_of(up_ip)})
    data["fabric"]["border_peers"] = [{"address": ip_of(b_ip), "asn": BORDER_ASN}
                                      for dummy, dummy2, b_ip, dummy3, dummy4, dummy5 in BORDER_LINKS]
    return data


class FailoverLab(Lab):
    def __init__(self, fab):
        self.fab = fab
        self.instances = {i.name: (hv, i) for hv in HVS for i in fab.hosts[hv].instances}
        super().__init__(HOSTS + tuple(self.instances))

    def build(self):
        self.namespaces()
        for host in HOSTS:
            sh("ip", "netns", "exec", self.ns[host], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for up, up_if, up_ip, low, low_if, low_ip in LINKS + BORDER_LINKS:
            self.veth(up, up_if, low, low_if)
            self.ip(up, "addr", "add", up_ip, "dev", up_if)
            self.ip(low, "addr", "add", low_ip, "dev", low_if)
        for host, addr in LOOPBACK.items():  # on no link: each host's address is a loopback /32
            self.ip(host, "addr", "add", addr + "/32", "dev", "lo")
        self.instances_up()
        for host in HOSTS:
            self.start(host)

    def configure_text(self, host, text):
        path = os.path.join(self.sock(host), "frr.conf")
        with open(path, "w") as fh:
            fh.write(HEADER + text)
        return reload_module(path, self.sock(host))

    def links(self, host, ifaces, up):
        """Every interface of ``ifaces`` on ``host`` up or down at once; returns the time just before."""
        batch = "".join("link set %s %s\n" % (i, "up" if up else "down") for i in ifaces)
        start = time.monotonic()
        subprocess.run(["ip", "-n", self.ns[host], "-batch", "-"], input=batch, text=True, check=True)
        return start

    def kernel(self, host, prefix):
        """Sorted gateways of the kernel's route to ``prefix`` (["blackhole"] for one, [] for none)."""
        routes = json.loads(self.ip(host, "-j", "route", "show", "exact", prefix).stdout or "[]")
        if not routes:
            return []
        r = routes[0]
        if r.get("type") == "blackhole":
            return ["blackhole"]
        return sorted(h["gateway"] for h in r.get("nexthops", [r]) if "gateway" in h)

    def learned(self, host, peer):
        return set(self.json(host, "show bgp ipv4 unicast neighbors %s routes" % peer)["routes"])

    def ping(self, host, dst, src, count=3):
        proc = subprocess.run(["ip", "netns", "exec", self.ns[host], "ping", "-n", "-q", "-c", str(count), "-i",
                               "0.2", "-W", "1", "-I", src, dst], capture_output=True, text=True)
        return proc


@pytest.fixture
def flab():
    if os.geteuid() != 0 or not shutil.which("vtysh") or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr and frr-pythontools (make validate installs them)")
    fab = build(failover_data())
    lab = FailoverLab(fab)
    try:
        lab.build()
        assert lab.configure_text("border", BORDER_CONF)["changed"]
        for host in FABRIC:  # top down, as site.yml does
            if host not in SPINES:
                lab.routes(fab, host)
            assert lab.configure(fab, host)["changed"]
        settled(lab)
        yield lab
    finally:
        lab.stop()


def report(line):
    print("\nfailover: " + line)


def settled(lab):
    """Every session Established and every path there twice (the positive control of each step)."""
    for host in HOSTS:
        wait_for(lambda: lab.established(host) == peers_of(host), "%s sessions Established" % host)
    for spine in SPINES:
        tors = sorted(far_end(spine, i) for i in links_of(spine, TORS))
        for prefix in (RACK_NET, HOST_NET, "203.0.113.11/32"):
            wait_for(lambda: lab.rib(spine).get(prefix) == tors, "%s: %s via both ToRs" % (spine, prefix))
        wait_for(lambda: lab.kernel(spine, RACK_NET) == tors, "%s: kernel ECMP to the rack" % spine)
    for hv in HVS:
        tors = sorted(far_end(hv, i) for i in links_of(hv, TORS))
        wait_for(lambda: all(lab.rib(hv).get(p) == tors for p in beyond(lab.fab)),
                 "%s: everything beyond the rack via both ToRs" % hv)
        wait_for(lambda: lab.kernel(hv, "0.0.0.0/0") == tors, "%s: kernel ECMP default" % hv)
    wait_for(lambda: lab.rib("border").get(FLOATING) == ["198.51.100.2", "198.51.100.6"],
             "border: the floating range via both spines")


def beyond(fab):
    """What a hypervisor learns from beyond its rack: the default, the
    spines' loopbacks and links, the floating range (not the rack's own
    aggregates, which either ToR serves)."""
    return [p for p in hypervisor_import(fab) if p not in (RACK_NET, HOST_NET)]


def timed(start, pred, what):
    """Wait for ``pred`` at most BOUND seconds after ``start`` (the fault), polling every POLL s.
    The bound is the issue's requirement: the test fails when the fabric takes longer."""
    wait_for(pred, what, timeout=BOUND - (time.monotonic() - start), interval=POLL)
    return time.monotonic() - start


def test_tor_losing_every_hypervisor_leaves_both_spines_paths(flab):
    lab = flab
    via_b = {"spine1": ["198.18.0.19"], "spine2": ["198.18.0.23"]}
    # positive control (settled): both ToRs are each spine's paths to the rack
    for spine in SPINES:
        assert lab.rib(spine)[RACK_NET] == sorted(via_b[spine] + [far_end(spine, "tor-a")])
    down = links_of("tor-r01", HVS)
    assert down == ["hv1", "hv2"]
    start = lab.links("tor-r01", down, up=False)
    took = timed(start, lambda: all(lab.rib(s).get(RACK_NET) == via_b[s] for s in SPINES),
                 "both spines: %s via tor-r01b only" % RACK_NET)
    report("tor lost downlinks -> spines withdrew its rack path in %.1f s" % took)
    took = timed(start, lambda: all(lab.kernel(s, RACK_NET) == via_b[s] for s in SPINES),
                 "both spines' kernels: %s via tor-r01b only" % RACK_NET)
    report("tor lost downlinks -> spines' kernel routes via the other ToR only in %.1f s" % took)
    # tor-r01 holds none of the rack's /32s, so no aggregate (its kernel keeps
    # the routes concern's blackhole, proto 211, which BGP does not announce)
    assert RACK_NET not in lab.rib("tor-r01")
    assert lab.kernel("tor-r01", RACK_NET) == ["blackhole"]
    # real packets from both spines to instances behind both hypervisors
    for spine in SPINES:
        for dst in ("198.19.1.10", "198.19.1.12"):
            proc = lab.ping(spine, dst, LOOPBACK[spine])
            assert proc.returncode == 0, (spine, dst, proc.stdout + proc.stderr)
    # The host-subnet aggregate may stay (tor-r01's own loopback is in it), but
    # the spines forward by the exact specifics: each hypervisor's loopback
    # only via tor-r01b, and real packets reach it from both spines.
    for spine in SPINES:
        for hv in HVS:
            assert lab.rib(spine).get(LOOPBACK[hv] + "/32") == [far_end(spine, "tor-b")], (spine, hv)
            proc = lab.ping(spine, LOOPBACK[hv], LOOPBACK[spine])
            assert proc.returncode == 0, (spine, hv, proc.stdout + proc.stderr)


def test_tor_losing_its_uplinks_is_no_longer_used_by_the_hypervisors(flab):
    lab = flab
    via_b = {hv: [far_end(hv, "tor-b")] for hv in HVS}
    for hv in HVS:  # positive control
        assert all(lab.rib(hv)[p] == sorted(via_b[hv] + [far_end(hv, "tor-a")]) for p in beyond(lab.fab))
    down = links_of("tor-r01", SPINES)
    assert down == ["sp1", "sp2"]
    start = lab.links("tor-r01", down, up=False)
    # the default, the spines, the floating range and the spines' links to
    # tor-r01b via tor-r01b only; the links of tor-r01's uplinks are gone (down)
    wanted = ("0.0.0.0/0", "198.18.0.1/32", "198.18.0.2/32", FLOATING)
    dead = ("198.18.0.16/31", "198.18.0.20/31")
    assert set(wanted) | set(dead) <= set(beyond(lab.fab))

    def moved(hv):
        rib = lab.rib(hv)
        return all(rib.get(p) == via_b[hv] for p in beyond(lab.fab) if p not in dead) and not set(dead) & set(rib)
    took = timed(start, lambda: all(moved(hv) for hv in HVS),
                 "hypervisors: everything beyond the rack via tor-r01b only")
    report("tor lost uplinks -> hypervisors stopped using it in %.1f s" % took)
    took = timed(start, lambda: all(lab.kernel(hv, p) == via_b[hv] for hv in HVS for p in wanted),
                 "hypervisors' kernels: default, spines and floating range via tor-r01b only")
    report("tor lost uplinks -> hypervisors' kernel routes via the other ToR only in %.1f s" % took)
    for hv in HVS:
        for spine in SPINES:
            proc = lab.ping(hv, LOOPBACK[spine], LOOPBACK[hv])
            assert proc.returncode == 0, (hv, spine, proc.stdout + proc.stderr)


def test_spine_losing_every_downlink_stops_announcing_the_floating_range(flab):
    lab = flab
    assert lab.rib("border")[FLOATING] == ["198.51.100.2", "198.51.100.6"]  # positive control
    assert FLOATING in lab.learned("border", "198.51.100.2")
    down = links_of("spine1", TORS)
    assert down == ["tor-a", "tor-b"]
    start = lab.links("spine1", down, up=False)
    took = timed(start, lambda: lab.rib("border").get(FLOATING) == ["198.51.100.6"],
                 "border: the floating range via spine2 only")
    report("spine lost downlinks -> border stopped receiving the floating range from it in %.1f s" % took)
    assert FLOATING not in lab.learned("border", "198.51.100.2")
    assert FLOATING in lab.learned("border", "198.51.100.6")
    assert lab.established("border") == {"198.51.100.2", "198.51.100.6"}  # the session itself stays
    # a public address still answers the border (through spine2)
    proc = lab.ping("border", "203.0.113.11", "198.51.100.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_control_unconditional_rack_origination_keeps_a_dead_tor(flab):
    """What the aggregate buys: the same fault as step 1 with tor-r01
    originating the rack subnet unconditionally, as the project did before
    (``network`` and a blackhole instead of ``aggregate-address``)."""
    lab = flab
    lines = config_lines(lab.fab, lab.fab.hosts["tor-r01"])
    assert "  aggregate-address %s" % RACK_NET in lines
    old = ["  network %s" % RACK_NET if ln == "  aggregate-address %s" % RACK_NET else ln for ln in lines]
    old = ["ip route %s blackhole" % RACK_NET, "!"] + old
    assert lab.configure_text("tor-r01", "\n".join(old) + "\n")["changed"]
    settled(lab)
    # positive control: both ToRs are both spines' paths before the fault
    both = {s: sorted(far_end(s, i) for i in links_of(s, TORS)) for s in SPINES}
    wait_for(lambda: all(lab.rib(s).get(RACK_NET) == both[s] for s in SPINES), "both ToRs before the fault", 60, POLL)
    down = links_of("tor-r01", HVS)
    start = lab.links("tor-r01", down, up=False)
    hv_peers = {far_end("tor-r01", i) for i in down}
    wait_for(lambda: not lab.established("tor-r01") & hv_peers, "tor-r01 without hypervisor sessions", BOUND, POLL)
    # the sessions are down at once; bgpd drops their routes a moment later (under load: not yet here)
    wait_for(lambda: not {p for p in lab.rib("tor-r01") if p.startswith("198.19.1.") and p.endswith("/32")},
             "tor-r01 without the hypervisors' /32s", BOUND, POLL)
    # three times what step 1 took, and the dead ToR is still both spines' path
    while True:  # at least once, and until 3 s after the fault
        assert all(lab.rib(s)[RACK_NET] == both[s] for s in SPINES)
        if time.monotonic() - start >= 3:
            break
        time.sleep(POLL)
    report("control: tor originating the rack unconditionally lost downlinks -> spines still use it after %.1f s"
           % (time.monotonic() - start))
