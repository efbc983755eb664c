"""Hypervisor NAT with real packets, in a topology of scratch network namespaces.

::

    ext 192.0.2.10 --- core (plays the ToRs and the border) --- meta 198.18.0.100:8775
                        |                          |
          hv1 (hv-r01-01, rack r01)       hv2 (hv-r02-01, rack r02)
          tap-a vm-a 198.19.1.10 F .101    tap-d vm-d 198.19.2.13
          tap-b vm-b 198.19.1.11           tap-f vm-f 198.19.2.15 F .105
          tap-e vm-e 198.19.1.14

The fabric is a real inventory rendered by playbooks/render.yml; each
hypervisor gets its rendered routes (ocs_route_table) and NAT rules
(ocs_iptables_chains, the module under test). ``ext`` has a route to the
floating range only, so an un-NATed instance source cannot get an answer
from it. Every server reports the source address it saw.
"""

import os
import subprocess

import pytest

from helpers import NetnsLab, render, run_module, sh, write_inventory_dir

JUMPS = [{"chain": c, "target": "OCS-" + c} for c in ("PREROUTING", "OUTPUT", "POSTROUTING")]

F_A, F_F, PUB1, PUB2 = "203.0.113.101", "203.0.113.105", "203.0.113.11", "203.0.113.21"
EXT, META = "192.0.2.10", "198.18.0.100"
VMS = {  # name: (hypervisor netns key, tap, fixed ip, gateway)
    "vm-a": ("hv1", "tap-a", "198.19.1.10", "198.19.1.1"),
    "vm-b": ("hv1", "tap-b", "198.19.1.11", "198.19.1.1"),
    "vm-e": ("hv1", "tap-e", "198.19.1.14", "198.19.1.1"),
    "vm-d": ("hv2", "tap-d", "198.19.2.13", "198.19.2.1"),
    "vm-f": ("hv2", "tap-f", "198.19.2.15", "198.19.2.1"),
}

def fabric(moved=False):
    """Inventory content; ``moved``: floating IP .101 moved from vm-a to vm-e."""
    inst = {
        "hv-r01-01": [
            {"name": "vm-a", "mac": "02:00:00:00:01:0a", "ip": "198.19.1.10", "interface": "tap-a"},
            {"name": "vm-b", "mac": "02:00:00:00:01:0b", "ip": "198.19.1.11", "interface": "tap-b"},
            {"name": "vm-e", "mac": "02:00:00:00:01:0e", "ip": "198.19.1.14", "interface": "tap-e"},
        ],
        "hv-r02-01": [
            {"name": "vm-d", "mac": "02:00:00:00:02:0d", "ip": "198.19.2.13", "interface": "tap-d"},
            {"name": "vm-f", "mac": "02:00:00:00:02:0f", "ip": "198.19.2.15", "interface": "tap-f",
             "floating_ip": F_F},
        ],
    }
    inst["hv-r01-01"][2 if moved else 0]["floating_ip"] = F_A
    hosts = {
        "tor-r01": {"ocs_address": "198.18.1.1", "ocs_rack": "r01"},
        "tor-r02": {"ocs_address": "198.18.2.1", "ocs_rack": "r02"},
        "hv-r01-01": {"ocs_address": "198.18.1.11", "ocs_rack": "r01", "ocs_public_address": PUB1,
                      "ocs_uplinks": [{"interface": "eth0", "address": "198.18.1.11/25", "peer": "198.18.1.1"}],
                      "ocs_instances": inst["hv-r01-01"]},
        "hv-r02-01": {"ocs_address": "198.18.2.11", "ocs_rack": "r02", "ocs_public_address": PUB2,
                      "ocs_uplinks": [{"interface": "eth0", "address": "198.18.2.11/25", "peer": "198.18.2.1"}],
                      "ocs_instances": inst["hv-r02-01"]},
    }
    groups = {"all": {"children": {"tors": {"hosts": {"tor-r01": None, "tor-r02": None}},
                                   "hypervisors": {"hosts": {"hv-r01-01": None, "hv-r02-01": None}}}}}
    settings = {
        "ocs_racks": {"r01": {"asn": 65101, "host_subnet": "198.18.1.0/24", "instance_subnets": ["198.19.1.0/24"]},
                      "r02": {"asn": 65102, "host_subnet": "198.18.2.0/24", "instance_subnets": ["198.19.2.0/24"]}},
        "ocs_fabric": {"floating_ranges": ["203.0.113.0/24"], "internal_ranges": ["198.18.0.0/15"],
                       "metadata": {"target": META, "target_port": 8775}, "nat_mode": "host",
                       "routing_mode": "static", "management_ranges": ["198.18.0.0/16"]},
    }
    return groups, hosts, settings


def write_inventory(path, moved=False):
    groups, hosts, settings = fabric(moved)
    write_inventory_dir(path, groups, hosts, settings)


class Topo(NetnsLab):
    def __init__(self, tmp):
        super().__init__(tmp, "ocs-n", {})

    def serve(self, key, name, proto, port):
        self.probe_server(key, port, "--name", name, *(["--udp"] if proto == "udp" else []))

    def call(self, key, proto, dst, port, sport=None):
        """(server name, source the server saw, address that answered) or None when unreachable."""
        args = ["ask", dst, port, "--peer", "--timeout", "5"] + (["--udp"] if proto == "udp" else [])
        res = self.run_probe(key, *(args + (["--sport", sport] if sport else [])), timeout=20)
        return tuple(res.stdout.split()) if res.returncode == 0 else None

    def nat(self, key, src, check=False, **extra):
        args = dict(src=str(src), jumps=JUMPS, **extra)
        return run_module(self.ns[key], "ocs.l3.ocs_iptables_chains", args, check=check)

    def routes(self, key, src):
        res = run_module(self.ns[key], "ocs.l3.ocs_route_table", {"src": str(src)})
        assert not res.get("failed") and res["missing_interfaces"] == [], res

    def save(self, key, *args):
        return self.x(key, "iptables-save", *args).stdout


def counter(save_c, rule):
    """Packet counter of ``rule`` in ``iptables-save -c`` output."""
    for line in save_c.splitlines():
        if line.endswith(rule) and line.startswith("["):
            return int(line[1:].split(":")[0])
    raise AssertionError("rule not found: %s" % rule)


def hv_file(build, host, path):
    return build / host / path.lstrip("/")


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, iptables)")
    tmp = tmp_path_factory.mktemp("nat")
    builds = {}
    for label, moved in (("first", False), ("moved", True)):
        write_inventory(tmp / ("inv-" + label), moved)
        builds[label] = tmp / ("build-" + label)
        proc = render(str(builds[label]), str(tmp / ("inv-" + label)))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    t = Topo(tmp)
    t.builds = builds
    try:
        for key in ("core", "ext", "meta", "hv1", "hv2", *VMS):
            t.add(key)
        for key in ("core", "hv1", "hv2"):
            t.x(key, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for key in ("hv1", "hv2"):  # what ocs_routes sets on hypervisors
            t.x(key, "sysctl", "-qw", "net.ipv4.conf.default.proxy_arp=1")
        t.link("core", "c-hv1", "198.18.1.1/25", "hv1", "eth0", "198.18.1.11/25")
        t.link("core", "c-hv2", "198.18.2.1/25", "hv2", "eth0", "198.18.2.11/25")
        t.link("core", "c-ext", "192.0.2.1/24", "ext", "eth0", EXT + "/24")
        t.link("core", "c-meta", "198.18.0.1/24", "meta", "eth0", META + "/24")
        t.ip("ext", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")  # the floating range, nothing internal
        t.ip("meta", "route", "add", "default", "via", "198.18.0.1")
        for dst, via in (("198.19.1.0/24", "198.18.1.11"), (F_A, "198.18.1.11"), (PUB1, "198.18.1.11"),
                         ("198.19.2.0/24", "198.18.2.11"), (F_F, "198.18.2.11"), (PUB2, "198.18.2.11")):
            t.ip("core", "route", "add", dst, "via", via)  # what BGP announces in a real fabric
        for vm, (hv, tap, ip, gw) in VMS.items():
            t.link(hv, tap, None, vm, "eth0", ip + "/24")
            t.ip(vm, "route", "add", "default", "via", gw)
        # Someone else's rules, there before the first converge; and our own
        # leftovers: a stale DNAT and a jump that exists twice.
        t.x("hv1", "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
        t.x("hv1", "iptables", "-t", "nat", "-N", "DOCKER")
        t.x("hv1", "iptables", "-t", "nat", "-A", "DOCKER", "-i", "docker0", "-j", "RETURN")
        t.x("hv1", "iptables", "-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL",
            "-j", "DOCKER")
        t.x("hv1", "iptables", "-t", "nat", "-N", "OCS-PREROUTING")
        t.x("hv1", "iptables", "-t", "nat", "-A", "OCS-PREROUTING", "-d", "203.0.113.99/32", "-j", "DNAT",
            "--to-destination", "198.19.1.99")
        for _ in range(2):
            t.x("hv1", "iptables", "-t", "nat", "-A", "PREROUTING", "-j", "OCS-PREROUTING")
        t.foreign_before = t.save("hv1")
        t.first = {}
        for key, host in (("hv1", "hv-r01-01"), ("hv2", "hv-r02-01")):
            t.routes(key, hv_file(builds["first"], host, "/etc/ocs-l3/routes.batch"))
            t.first[key] = t.nat(key, hv_file(builds["first"], host, "/etc/ocs-l3/iptables-nat.rules"))
        for vm in VMS:
            t.serve(vm, vm, "tcp", 7000)
        t.serve("ext", "ext", "tcp", 7000)
        t.serve("meta", "meta", "tcp", 8775)
        for vm in ("vm-a", "vm-e"):
            t.serve(vm, vm, "udp", 7001)
        yield t
    finally:
        t.close()


def test_first_apply_repairs_ours_and_keeps_theirs(topo):
    first = topo.first["hv1"]
    assert first["changed"] and not first.get("failed"), first
    assert "--orig-dst 203.0.113.99" in first["conntrack_deleted"]  # the stale DNAT's flows
    assert first["jumps_fixed"] == ["-D PREROUTING -j OCS-PREROUTING", "-I OUTPUT 1 -j OCS-OUTPUT",
                                    "-I POSTROUTING 1 -j OCS-POSTROUTING"]
    live = topo.save("hv1")
    assert "203.0.113.99" not in live
    for line in ("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", ":DOCKER - [0:0]",
                 "-A DOCKER -i docker0 -j RETURN", "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"):
        assert line in live and line in topo.foreign_before
    for chain in ("PREROUTING", "OUTPUT", "POSTROUTING"):
        assert live.count("-A %s -j OCS-%s\n" % (chain, chain)) == 1


def test_floating_ip_inbound_and_outbound(topo):
    assert topo.call("ext", "tcp", F_A, 7000) == ("vm-a", EXT, F_A)  # reply from the floating IP
    assert topo.call("ext", "tcp", F_F, 7000) == ("vm-f", EXT, F_F)
    assert topo.call("vm-a", "tcp", EXT, 7000) == ("ext", F_A, EXT)
    assert topo.call("vm-f", "tcp", EXT, 7000) == ("ext", F_F, EXT)


def test_snat_to_public_address_without_floating_ip(topo):
    assert topo.call("vm-b", "tcp", EXT, 7000) == ("ext", PUB1, EXT)
    assert topo.call("vm-d", "tcp", EXT, 7000) == ("ext", PUB2, EXT)
    assert topo.call("ext", "tcp", "198.19.1.11", 7000) is None  # no route from outside to a fixed IP


def test_east_west_keeps_the_source(topo):
    assert topo.call("vm-b", "tcp", "198.19.1.10", 7000) == ("vm-a", "198.19.1.11", "198.19.1.10")  # same hv
    assert topo.call("vm-a", "tcp", "198.19.2.13", 7000) == ("vm-d", "198.19.1.10", "198.19.2.13")  # other rack
    assert topo.call("vm-d", "tcp", "198.19.1.11", 7000) == ("vm-b", "198.19.2.13", "198.19.1.11")
    assert topo.call("vm-f", "tcp", "198.19.1.10", 7000) == ("vm-a", "198.19.2.15", "198.19.1.10")


def test_hairpin_answers_from_the_floating_ip(topo):
    # The callee sees the caller as the outside would (its floating IP or its
    # hypervisor's public address); the caller gets answers from the floating IP.
    assert topo.call("vm-a", "tcp", F_A, 7000) == ("vm-a", F_A, F_A)  # its own floating IP
    assert topo.call("vm-b", "tcp", F_A, 7000) == ("vm-a", PUB1, F_A)  # same hypervisor
    assert topo.call("vm-d", "tcp", F_A, 7000) == ("vm-a", PUB2, F_A)  # other hypervisor
    assert topo.call("vm-a", "tcp", F_F, 7000) == ("vm-f", F_A, F_F)
    assert topo.call("vm-f", "tcp", F_F, 7000) == ("vm-f", F_F, F_F)
    name, _, answered = topo.call("hv1", "tcp", F_A, 7000)  # the hypervisor itself (OUTPUT chain)
    assert (name, answered) == ("vm-a", F_A)


def test_metadata_sees_the_fixed_ip(topo):
    assert topo.call("vm-b", "tcp", "169.254.169.254", 80) == ("meta", "198.19.1.11", "169.254.169.254")
    assert topo.call("vm-a", "tcp", "169.254.169.254", 80) == ("meta", "198.19.1.10", "169.254.169.254")
    assert topo.call("vm-d", "tcp", "169.254.169.254", 80) == ("meta", "198.19.2.13", "169.254.169.254")
    assert topo.call("vm-b", "tcp", "169.254.169.254", 8775) is None  # only the metadata port is forwarded


def test_second_apply_is_a_noop_and_counters_keep_counting(topo):
    src = hv_file(topo.builds["first"], "hv-r01-01", "/etc/ocs-l3/iptables-nat.rules")
    rule = "-A OCS-FLOAT-DNAT -d %s/32 -m comment --comment vm-a -j DNAT --to-destination 198.19.1.10" % F_A
    jump = "-A PREROUTING -j OCS-PREROUTING"
    assert topo.call("ext", "tcp", F_A, 7000)
    before = topo.save("hv1", "-c", "-t", "nat")
    assert counter(before, rule) > 0 and counter(before, jump) > 0
    dry = topo.nat("hv1", src, check=True)
    assert not dry["changed"] and dry["diff"]["before"] == dry["diff"]["after"], dry
    again = topo.nat("hv1", src)
    assert not again["changed"] and again["transaction"] == "" and again["conntrack_deleted"] == [], again
    after = topo.save("hv1", "-c", "-t", "nat")
    assert counter(after, rule) == counter(before, rule)  # not reset
    assert topo.call("ext", "tcp", F_A, 7000)
    later = topo.save("hv1", "-c", "-t", "nat")
    assert counter(later, rule) > counter(after, rule) and counter(later, jump) > counter(after, jump)
    for chain in ("PREROUTING", "OUTPUT", "POSTROUTING"):
        assert later.count("-A %s -j OCS-%s\n" % (chain, chain)) == 1
    assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in topo.save("hv1")


def test_bad_candidates_change_nothing(topo, tmp_path):
    live = topo.save("hv1", "-t", "nat")
    unknown = tmp_path / "unknown-target.rules"  # passes iptables-restore --test, fails a real apply
    good = hv_file(topo.builds["moved"], "hv-r01-01", "/etc/ocs-l3/iptables-nat.rules").read_text()
    unknown.write_text(good.replace("COMMIT", "-A OCS-SNAT -j OCS-NOPE\nCOMMIT"))
    assert topo.x("hv1", "iptables-restore", "--test", str(unknown)).returncode == 0
    res = topo.nat("hv1", unknown)
    assert res.get("failed") and "scratch network namespace" in res["msg"], res
    foreign = tmp_path / "foreign.rules"  # must never write into a chain that is not ours
    foreign.write_text("*filter\n:OCS-INPUT - [0:0]\n-A INPUT -j DROP\nCOMMIT\n")
    res = topo.nat("hv1", foreign)
    assert res.get("failed") and "not ours" in res["msg"], res
    # The transaction shape is all or nothing: a failing line anywhere keeps the old rules.
    broken = ("*nat\n:OCS-FLOAT-DNAT - [0:0]\n-A OCS-FLOAT-DNAT -d 203.0.113.7/32 -j DNAT --to-destination "
              "198.19.1.7\n-A OCS-FLOAT-DNAT -j OCS-NOPE\nCOMMIT\n")
    proc = subprocess.run(["ip", "netns", "exec", topo.ns["hv1"], "iptables-restore", "--noflush"], input=broken,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert _strip_dates(topo.save("hv1", "-t", "nat")) == _strip_dates(live)


def _strip_dates(save):
    return [ln for ln in save.splitlines() if not ln.startswith("#")]


def test_moved_floating_ip_takes_new_and_existing_flows(topo):
    first = hv_file(topo.builds["first"], "hv-r01-01", "/etc/ocs-l3/iptables-nat.rules")
    moved = hv_file(topo.builds["moved"], "hv-r01-01", "/etc/ocs-l3/iptables-nat.rules")
    sport = 40001
    assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-a", EXT, F_A)  # an existing flow
    assert topo.x("hv1", "conntrack", "-L", "-d", F_A, "-p", "udp").stdout.count("dport=7001") == 1
    # Control: without the conntrack deletion the existing flow keeps the old translation.
    assert topo.nat("hv1", moved, conntrack=False)["changed"]
    assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-a", EXT, F_A)
    assert topo.nat("hv1", first)["changed"]
    assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-a", EXT, F_A)
    dry = topo.nat("hv1", moved, check=True)
    assert dry["changed"] and dry["conntrack_deleted"] == ["--orig-dst %s" % F_A, "--reply-dst %s" % F_A]
    assert "vm-e -j DNAT --to-destination 198.19.1.14" in dry["diff"]["after"]
    assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-a", EXT, F_A)  # check mode changed nothing
    try:
        topo.routes("hv1", hv_file(topo.builds["moved"], "hv-r01-01", "/etc/ocs-l3/routes.batch"))
        res = topo.nat("hv1", moved)
        assert res["changed"] and not res.get("failed"), res
        assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-e", EXT, F_A)  # same 5-tuple, new instance
        assert topo.call("ext", "tcp", F_A, 7000) == ("vm-e", EXT, F_A)  # a new flow
        assert topo.call("vm-e", "tcp", EXT, 7000) == ("ext", F_A, EXT)
        assert topo.call("vm-a", "tcp", EXT, 7000) == ("ext", PUB1, EXT)
        assert not topo.nat("hv1", moved)["changed"]
    finally:  # back to the first fabric
        topo.routes("hv1", hv_file(topo.builds["first"], "hv-r01-01", "/etc/ocs-l3/routes.batch"))
        assert topo.nat("hv1", first)["changed"]
    assert topo.call("ext", "udp", F_A, 7001, sport) == ("vm-a", EXT, F_A)


def test_rendered_example_rules_apply_in_a_scratch_namespace(rendered, netns):
    files = sorted(rendered.glob("*/etc/ocs-l3/iptables-nat.rules"))
    assert len(files) == 4  # one per hypervisor of the example, none for other roles
    for path in files:
        proc = sh("ip", "netns", "exec", netns, "iptables-restore", str(path), check=False)
        assert proc.returncode == 0, (path, proc.stderr)
        chains = sh("ip", "netns", "exec", netns, "iptables-save", "-t", "nat").stdout
        assert all(":%s - [0:0]" % c in chains for c in
                   ("OCS-PREROUTING", "OCS-OUTPUT", "OCS-POSTROUTING", "OCS-FLOAT-DNAT", "OCS-FLOAT-SNAT", "OCS-SNAT"))
