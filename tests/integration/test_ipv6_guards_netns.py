"""IPv6 guards and inbound policy on a hypervisor (issue 20) with real packets.

::

    ext fd00:e::10, 2001:db8:ffff::1 (lo: spine1's ocs_address6, a fabric host)
     |
     +--- hv (hv-r01-01; forwarding; eth-ext fd00:e::1)
                        |  tap-a: fe80::1, 2001:db8:0:1::1 noprefixroute; 2001:db8:0:1::c613:10a/128 dev tap-a
                        |  tap-b: the same;                              2001:db8:0:1::b/128 dev tap-b
                 vm-a 2001:db8:0:1::c613:10a (floating IP)    vm-b 2001:db8:0:1::b (none)

The fabric is the unit tests' dual-stack base (tests/fabric_data.py) with vm-a on tap-a; ext is
outside its internal_ranges6. The IPv6 addresses and routes are set by hand (what the routes and
DHCP parts of issue 20 install); the hypervisor's IPv6 filter rules are the rendered ones
(firewall.ipv6_lines), applied by the real ocs_iptables_chains module. Each instance's inner veth
end carries its inventory MAC. Forged packets are whole Ethernet frames sent from an instance's
eth0 with a raw AF_PACKET socket (tests/frames6.py; Ethernet source: the instance's own MAC unless said otherwise);
receivers count them in raw PREROUTING, before anything could drop them; each guard's counter is
read from its rule (comments as in firewall.py).
"""

import copy
import ipaddress
import json
import os
import sys
import time

import pytest

from fabric_data import BASE, dual_stack
from frames6 import ALL_NODES, ALL_ROUTERS, BAD_PREFIX, SEND, frame, icmp6, na, ns, ptb, ra, udp
from helpers import NetnsLab, run_module, sh
from ansible_collections.ocs.l3.plugins.module_utils import constants, firewall
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from test_nat_netns import counter

JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
EXT, HV_EXT = "fd00:e::10", "fd00:e::1"
HOST6 = "2001:db8:ffff::1"  # spine1's ocs_address6 in fabric_data.dual_stack: infrastructure
GW_LL, GW = "fe80::1", "2001:db8:0:1::1"
VMS = {  # key: (name, tap, ip6, mac)
    "vm-a": ("vm-a", "tap-a", "2001:db8:0:1::c613:10a", "02:00:00:00:01:0a"),
    "vm-b": ("vm-b", "tap-b", "2001:db8:0:1::b", "02:00:00:00:01:0b"),
}
IP6_A, IP6_B = VMS["vm-a"][2], VMS["vm-b"][2]


def _drop(word, chain):
    return "-A %s -m comment --comment %s -j DROP" % (chain, word)


SPOOF6 = _drop("ocs-spoof6", "OCS-ANTISPOOF")
RA6 = "-A OCS-GUARD6 -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m comment --comment ocs-ra6 -j DROP"
REDIRECT6 = "-A OCS-GUARD6 -p ipv6-icmp -m icmp6 --icmpv6-type 137 -m comment --comment ocs-redirect6 -j DROP"
RENUMBER6 = "-A OCS-GUARD6 -p ipv6-icmp -m icmp6 --icmpv6-type 138 -m comment --comment ocs-renumbering6 -j DROP"
DHCP6_SERVER = "-A OCS-GUARD6 -p udp -m udp --sport 547 -m comment --comment ocs-dhcp6-server -j DROP"
NA_SPOOF6 = _drop("ocs-na-spoof6", "OCS-NA6")
NA_LL = "-m comment --comment ocs-na-link-local -j RETURN"
INBOUND_DROP = _drop("ocs-inbound6", "OCS-INBOUND6")
INFRA6 = "-A OCS-TENANT -d %s/128 -m comment --comment ocs-infra -j DROP" % HOST6
TENANT_JUMP = ("OCS-FORWARD", "-i", "tap+", "-j", "OCS-TENANT")
PROTECT = "-A OCS-INPUT -i tap+ -m comment --comment ocs-protect-host -j DROP"
COUNT_UDP = ["-p", "udp", "--dport", "7002"]
COUNT_PTB = ["-p", "ipv6-icmp", "--icmpv6-type", "2"]


# --- the lab ---------------------------------------------------------------------------------

def fabric_data(**own):
    """The dual-stack base with vm-a on tap-a; ``own``: instance name -> its own inbound6."""
    data = dual_stack(copy.deepcopy(BASE))
    for rec in data["hostvars"]["hv-r01-01"]["ocs_instances"]:
        if rec["name"] == "vm-a":
            rec["interface"] = "tap-a"
        if rec["name"] in own:
            rec["inbound6"] = own[rec["name"]]
    return data


class Lab(NetnsLab):
    def __init__(self, tmp):
        super().__init__(tmp, "o6g", {"send.py": SEND})

    def save(self, key="hv", *args):
        return self.x(key, "ip6tables-save", "-c", *args).stdout

    def count(self, rule, key="hv"):
        return counter(self.save(key), rule)

    def arrived(self, key, match):
        return counter(self.save(key, "-t", "raw"), "-A PREROUTING " + " ".join(match).replace(
            "ipv6-icmp --", "ipv6-icmp -m icmp6 --").replace("udp --", "udp -m udp --"))

    def send(self, vm, data):
        self.x(vm, sys.executable, str(self.tmp / "send.py"), data.hex())

    def apply(self, fab, label):
        path = self.tmp / ("ip6tables-%s.rules" % label)
        path.write_text("\n".join(firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"])) + "\n")
        res = run_module(self.ns["hv"], "ocs.l3.ocs_iptables_chains",
                         {"src": str(path), "family": "ipv6", "jumps": JUMPS, "conntrack": False})
        assert not res.get("failed"), res
        return res

    def link_local(self, key, ifname):
        """The kernel's link-local address of the interface (it appears shortly after link up)."""
        for dummy in range(50):
            out = json.loads(self.ip(key, "-j", "-6", "addr", "show", "dev", ifname).stdout)
            found = [a["local"] for a in out[0]["addr_info"] if a.get("scope") == "link" and a["local"] != GW_LL]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError("no link-local address on %s in %s" % (ifname, key))

    def ask(self, key, host, port=7000):
        res = self.run_probe(key, "ask", host, port, "--timeout", "1.5", timeout=20)
        return res.stdout.strip() if res.returncode == 0 else None


def _sysctls(lab, key, *pairs):
    for pair in pairs:
        lab.x(key, "sysctl", "-qw", pair)


def _build_lab(t):
    for key in ("hv", "ext", "vm-a", "vm-b"):
        t.add(key)
        _sysctls(t, key, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                 "net.ipv6.conf.default.router_solicitations=0")
    _sysctls(t, "hv", "net.ipv6.conf.all.forwarding=1")
    t.link("hv", "eth-ext", HV_EXT + "/64", "ext", "eth0", EXT + "/64")
    t.ip("ext", "-6", "route", "add", "2001:db8::/32", "via", HV_EXT)
    t.ip("ext", "-6", "addr", "add", HOST6 + "/128", "dev", "lo")
    t.ip("hv", "-6", "route", "add", HOST6 + "/128", "via", EXT)
    for vm, (name, tap, ip6, mac) in VMS.items():
        t.ip("hv", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", t.ns[vm])
        t.ip(vm, "link", "set", "eth0", "address", mac)
        t.ip(vm, "link", "set", "eth0", "up")
        t.ip(vm, "-6", "addr", "add", ip6 + "/128", "dev", "eth0", "nodad")
        t.ip("hv", "link", "set", tap, "up")
        t.ip("hv", "-6", "addr", "add", GW_LL + "/64", "dev", tap, "nodad")
        t.ip("hv", "-6", "addr", "add", GW + "/64", "dev", tap, "nodad", "noprefixroute")
        t.ip("hv", "-6", "route", "add", ip6 + "/128", "dev", tap)
        t.ip(vm, "-6", "route", "add", "default", "via", GW_LL, "dev", "eth0")
    for key in ("ext", "vm-a", "vm-b"):  # count probes before anything can drop them
        for match in (COUNT_UDP, COUNT_PTB):
            t.x(key, "ip6tables", "-t", "raw", "-A", "PREROUTING", *match)
        t.probe_server(key, 7000, "--name", key, "--v6")
    t.hv_mac = {tap: json.loads(t.ip("hv", "-j", "link", "show", tap).stdout)[0]["address"]
                for dummy, tap, dummy2, dummy3 in VMS.values()}
    t.ll = {vm: t.link_local(vm, "eth0") for vm in VMS}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, ip6tables)")
    t = Lab(tmp_path_factory.mktemp("o6g"))
    try:
        _build_lab(t)
        t.first = t.apply(build(fabric_data()), "base")
        time.sleep(0.5)
        yield t
    finally:
        t.close()


def _from(lab, vm, dst, payload, nh=58, eth_dst=None, src=None, eth_src=None, hl=64):
    name, tap, ip6, mac = VMS[vm]
    lab.send(vm, frame(eth_src or mac, eth_dst or lab.hv_mac[tap], src or ip6, dst, nh, payload, hl))


# --- the tests -------------------------------------------------------------------------------

def test_every_rendered_ip6tables_file_passes_restore_test(lab):
    """Every host's IPv6 filter file, dual-stack and IPv4-only, each inbound6 setting, in a scratch netns."""
    scratch = lab.add("scratch")
    variants = [build(copy.deepcopy(BASE)), build(fabric_data(**{"vm-a": "closed", "vm-b": "open"}))]
    for mode in ("floating", "open", "closed"):
        data = fabric_data()
        data["fabric"]["inbound6"] = mode
        variants.append(build(data))
    for i, fab in enumerate(variants):
        for name, host in sorted(fab.hosts.items()):
            path = lab.tmp / ("check-%d-%s.rules" % (i, name))
            path.write_text("\n".join(firewall.ipv6_lines(fab, host)) + "\n")
            res = sh("ip", "netns", "exec", scratch, "ip6tables-restore", "--test", str(path), check=False)
            assert res.returncode == 0, (name, res.stderr)
    assert lab.first["changed"] and lab.first["tables"] == ["filter", "raw"], lab.first
    assert lab.apply(build(fabric_data()), "again")["changed"] is False  # converged: a re-apply changes nothing


def test_own_source_passes_spoofed_source_is_dropped(lab):
    got, dropped = lab.arrived("ext", COUNT_UDP), lab.count(SPOOF6)
    _from(lab, "vm-b", EXT, udp(5000, 7002), nh=17)  # control: its own address
    time.sleep(0.3)
    assert lab.arrived("ext", COUNT_UDP) == got + 1 and lab.count(SPOOF6) == dropped
    for src in (IP6_A, "2001:db8:0:1::99", "fd00:e::77", "2001:db8:0:2::d"):  # vm-a's, unused, outside, rack r02's
        _from(lab, "vm-b", EXT, udp(5000, 7002), nh=17, src=src)
    _from(lab, "vm-b", EXT, udp(5000, 7002), nh=17, eth_src=VMS["vm-a"][3])  # vm-a's MAC, own address
    ll_b = lab.ll["vm-b"]
    _from(lab, "vm-b", GW_LL, icmp6(128, bytes(4)), eth_src="02:00:00:00:01:ee", src=ll_b)  # link-local, other MAC
    time.sleep(0.3)
    assert lab.arrived("ext", COUNT_UDP) == got + 1
    assert lab.count(SPOOF6) == dropped + 6


def test_link_local_and_dad_from_the_unspecified_address(lab):
    name, tap, ip6, mac = VMS["vm-a"]
    dad = "-A OCS-ANTISPOOF -s ::/128 -i tap-a -p ipv6-icmp -m mac --mac-source %s -m icmp6 --icmpv6-type 135 " \
          "-m comment --comment vm-a -j RETURN" % mac
    ll = "-A OCS-ANTISPOOF -s fe80::/10 -i tap-a -m mac --mac-source %s -m comment --comment vm-a -j RETURN" % mac
    before = {rule: lab.count(rule) for rule in (dad, ll, SPOOF6)}
    _from(lab, "vm-a", ALL_NODES[0], ns(ip6), eth_dst=ALL_NODES[1], src="::", hl=255)  # DAD for its address
    _from(lab, "vm-a", GW_LL, icmp6(128, bytes(4)), src=lab.ll["vm-a"])  # ping the router, link-local source
    assert lab.ask("vm-a", "%s%%eth0" % GW_LL, 7000) is None  # nothing listens; and INPUT drops tcp anyway
    time.sleep(0.3)
    assert lab.count(dad) == before[dad] + 1 and lab.count(ll) >= before[ll] + 1
    assert lab.count(SPOOF6) == before[SPOOF6]
    _from(lab, "vm-a", ALL_NODES[0], icmp6(128, bytes(4)), eth_dst=ALL_NODES[1], src="::")  # not DAD: dropped
    time.sleep(0.3)
    assert lab.count(SPOOF6) == before[SPOOF6] + 1


def _routes(lab):
    return lab.ip("hv", "-6", "route", "show", "dev", "tap-a").stdout


def test_router_advertisement_is_dropped_and_would_hijack_the_hypervisor(lab):
    """The harm, once: the hypervisor's tap accepts RAs (accept_ra=2: it forwards); without our
    rules an instance's RA gives it a default route and a prefix route through the instance."""
    _sysctls(lab, "hv", "net.ipv6.conf.tap-a.accept_ra=2")
    ll_a, mac_a = lab.ll["vm-a"], VMS["vm-a"][3]
    try:
        lab.x("hv", "ip6tables", "-D", "INPUT", "-j", "OCS-INPUT")  # no guard
        _from(lab, "vm-a", ALL_NODES[0], ra(mac_a), eth_dst=ALL_NODES[1], src=ll_a, hl=255)
        time.sleep(0.5)
        hijacked = _routes(lab)
        assert "default via %s" % ll_a in hijacked and BAD_PREFIX + "/64" in hijacked, hijacked
        lab.ip("hv", "-6", "route", "flush", "dev", "tap-a", "proto", "ra")
        lab.ip("hv", "-6", "route", "del", BAD_PREFIX + "/64", "dev", "tap-a")
        lab.x("hv", "ip6tables", "-D", "INPUT", "-j", "OCS-INPUT", check=False)
        lab.x("hv", "ip6tables", "-I", "INPUT", "1", "-j", "OCS-INPUT")  # the guard again
        before = lab.count(RA6)
        _from(lab, "vm-a", ALL_NODES[0], ra(mac_a), eth_dst=ALL_NODES[1], src=ll_a, hl=255)
        _from(lab, "vm-a", ALL_NODES[0], ra(mac_a), eth_dst=ALL_NODES[1], src=IP6_A, hl=255)
        time.sleep(0.5)
        assert lab.count(RA6) == before + 2
        routes = _routes(lab)
        assert "default" not in routes and BAD_PREFIX not in routes, routes
    finally:
        _sysctls(lab, "hv", "net.ipv6.conf.tap-a.accept_ra=0")


def test_redirect_renumbering_and_dhcp6_server_messages_are_dropped(lab):
    ll_a = lab.ll["vm-a"]
    target = ipaddress.IPv6Address(IP6_B).packed
    before = {rule: lab.count(rule) for rule in (REDIRECT6, RENUMBER6, DHCP6_SERVER)}
    got = lab.arrived("vm-b", COUNT_UDP)
    _from(lab, "vm-a", GW_LL, icmp6(137, bytes(4) + target + target), src=ll_a, hl=255)
    _from(lab, "vm-a", ALL_ROUTERS[0], icmp6(138, bytes(12)), eth_dst=ALL_ROUTERS[1], src=ll_a, hl=255)
    _from(lab, "vm-a", GW_LL, udp(547, 546), nh=17, src=ll_a)  # a DHCPv6 server's reply to the host...
    _from(lab, "vm-a", IP6_B, udp(547, 7002), nh=17)  # ...and one routed to vm-b
    _from(lab, "vm-a", IP6_B, udp(5470, 7002), nh=17)  # control: another port arrives
    time.sleep(0.3)
    assert {rule: lab.count(rule) - n for rule, n in before.items()} == {REDIRECT6: 1, RENUMBER6: 1, DHCP6_SERVER: 2}
    assert lab.arrived("vm-b", COUNT_UDP) == got + 1


def test_neighbour_advertisement_target_must_be_its_own(lab):
    name, tap, ip6, mac = VMS["vm-a"]
    own = '-A OCS-NA6 -i tap-a -m u32 --u32 "%s" -m comment --comment vm-a -j RETURN' % (
        firewall.target_u32(int(ipaddress.IPv6Address(ip6))).strip('"'))
    before = {rule: lab.count(rule) for rule in (own, NA_SPOOF6)}
    link_local = [ln for ln in lab.save().splitlines() if ln.endswith(NA_LL)][0].split("] ", 1)[1]
    ll_before = lab.count(link_local)
    for target in (ip6, lab.ll["vm-a"]):  # its own addresses: pass
        _from(lab, "vm-a", ALL_NODES[0], na(target, mac), eth_dst=ALL_NODES[1], src=lab.ll["vm-a"], hl=255)
    for target in (IP6_B, GW, "fd00:e::10"):  # vm-b's, the gateway's, ext's: dropped
        _from(lab, "vm-a", ALL_NODES[0], na(target, mac), eth_dst=ALL_NODES[1], src=lab.ll["vm-a"], hl=255)
    time.sleep(0.3)
    assert lab.count(own) == before[own] + 1 and lab.count(link_local) >= ll_before + 1
    assert lab.count(NA_SPOOF6) == before[NA_SPOOF6] + 3


def test_packet_too_big_passes_both_ways(lab):
    """Inbound to vm-b (no floating IP, no flow: only the PTB rule lets it in) and out from it."""
    got_b, got_ext = lab.arrived("vm-b", COUNT_PTB), lab.arrived("ext", COUNT_PTB)
    lab.send("ext", frame(json.loads(lab.ip("ext", "-j", "link", "show", "eth0").stdout)[0]["address"],
                          json.loads(lab.ip("hv", "-j", "link", "show", "eth-ext").stdout)[0]["address"],
                          EXT, IP6_B, 58, ptb(IP6_B, EXT)))
    _from(lab, "vm-b", EXT, ptb(EXT, IP6_B))
    time.sleep(0.3)
    assert lab.arrived("vm-b", COUNT_PTB) == got_b + 1 and lab.arrived("ext", COUNT_PTB) == got_ext + 1


def test_inbound_policy_floating_parity(lab):
    dropped = lab.count(INBOUND_DROP)
    assert lab.ask("ext", IP6_A) == "vm-a %s" % EXT  # a floating IP: reachable on IPv6 too
    assert lab.ask("ext", IP6_B) is None  # none: not from outside the fabric
    assert lab.count(INBOUND_DROP) > dropped
    assert lab.ask("vm-b", EXT) == "ext %s" % IP6_B  # but its own flows get their replies
    assert lab.ask("vm-a", IP6_B) == "vm-b %s" % IP6_A  # and instances reach it (internal_ranges6)
    assert lab.x("ext", "ping", "-6", "-c", "1", "-W", "2", IP6_B, check=False).returncode == 0  # echo: always


def test_inbound_override_per_instance(lab):
    res = lab.apply(build(fabric_data(**{"vm-a": "closed", "vm-b": "open"})), "override")
    assert res["changed"] and res["tables"] == ["filter"], res
    try:
        assert lab.ask("ext", IP6_B) == "vm-b %s" % EXT
        assert lab.ask("ext", IP6_A) is None
        assert lab.ask("vm-b", IP6_A) == "vm-a %s" % IP6_B  # closed to the outside only
    finally:
        lab.apply(build(fabric_data()), "base-again")
    assert lab.ask("ext", IP6_A) == "vm-a %s" % EXT and lab.ask("ext", IP6_B) is None


def test_instances_are_kept_off_the_hosts_ocs_address6(lab):
    """IPv6 OCS-TENANT: a fabric host's ocs_address6 is infrastructure. Without the chain's jump
    an instance reaches it (the harm, once); with it, not, while the outside (EXT) and another
    instance stay reachable; an IPv6 instance service on it opens that port only."""
    dropped = lab.count(INFRA6)
    assert lab.ask("vm-b", HOST6) is None
    assert lab.count(INFRA6) > dropped
    assert lab.ask("vm-b", EXT) == "ext %s" % IP6_B  # control: the internet
    assert lab.ask("vm-b", IP6_A) == "vm-a %s" % IP6_B  # control: another instance
    lab.x("hv", "ip6tables", "-D", *TENANT_JUMP)  # no guard
    try:
        assert lab.ask("vm-b", HOST6) == "ext %s" % IP6_B
    finally:
        lab.x("hv", "ip6tables", "-D", *TENANT_JUMP, check=False)
        lab.x("hv", "ip6tables", "-I", TENANT_JUMP[0], "3", *TENANT_JUMP[1:])
    assert lab.ask("vm-b", HOST6) is None
    data = fabric_data()
    data["fabric"]["instance_services"] = [{"address": HOST6, "proto": "tcp", "port": 7000}]
    assert lab.apply(build(data), "service")["changed"]
    try:
        assert lab.ask("vm-b", HOST6) == "ext %s" % IP6_B  # the service's port
        dropped = lab.count(INFRA6)
        assert lab.ask("vm-b", HOST6, 7001) is None and lab.count(INFRA6) > dropped  # and no other
    finally:
        lab.apply(build(fabric_data()), "base-again")
    assert lab.ask("vm-b", HOST6) is None
