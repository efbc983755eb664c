"""IPv6 ingress anti-spoofing at the spine's border link (issue 21) with real packets.

::

    ext (the border) 2001:db8:ff::2/64 (the border peer's address6), own source 3fff::10 (on lo,
        outside internal_ranges6 2001:db8::/32: the internet)
      | eth0 -- eth9 (spine1's IPv6 border link, 2001:db8:ff::1/64)
    edge: spine1's rendered IPv6 filter file (raw OCS-EDGE included) applied by ocs_iptables_chains
      | down0 2001:db8:0:1::1/64
    vm-a 2001:db8:0:1::c613:10a, counting the echo requests it gets from each source

ext pings vm-a from a forged source (vm-b's 2001:db8:0:1::b, set on ext's lo), from its own
internet address and from the border peer's address: the forged one never reaches vm-a and
``ocs-edge-spoof`` counts it; the others arrive. Without the IPv6 edge rules the forged one IS
delivered (the problem, measured).
"""

import copy
import os

import pytest

from helpers import NetnsLab, run_module
from fabric_data import BASE, dual_stack_border
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.firewall import ipv6_lines

VM, FORGED, OWN, PEER = "2001:db8:0:1::c613:10a", "2001:db8:0:1::b", "3fff::10", "2001:db8:ff::2"
JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
HEADER = "#\n# Managed by ocs-l3 (Ansible)\n#\n"


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, ip6tables)")
    lab = NetnsLab(tmp_path, "ocs-e6", {})
    try:
        for key in ("ext", "edge", "vm"):
            lab.add(key)
        lab.x("edge", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        lab.link("ext", "eth0", None, "edge", "eth9", None)
        lab.link("edge", "down0", None, "vm", "eth0", None)
        for key, dev, addr in (("ext", "eth0", PEER + "/64"), ("edge", "eth9", "2001:db8:ff::1/64"),
                               ("edge", "down0", "2001:db8:0:1::1/64"), ("vm", "eth0", VM + "/64"),
                               ("ext", "lo", OWN + "/128"), ("ext", "lo", FORGED + "/128")):
            lab.ip(key, "-6", "addr", "add", addr, "dev", dev, "nodad")
        lab.ip("ext", "-6", "route", "add", "2001:db8:0:1::/64", "via", "2001:db8:ff::1")
        lab.ip("vm", "-6", "route", "add", "default", "via", "2001:db8:0:1::1")
        lab.ip("edge", "-6", "route", "add", "3fff::/20", "via", PEER)
        for src in (FORGED, OWN, PEER):  # what reaches vm-a, per source
            lab.x("vm", "ip6tables", "-A", "INPUT", "-s", src, "-p", "ipv6-icmp", "--icmpv6-type", "128",
                  "-j", "ACCEPT")
        yield lab
    finally:
        lab.close()


def apply_edge(lab, with_edge=True):
    fab = build(dual_stack_border(copy.deepcopy(BASE)))
    lines = ipv6_lines(fab, fab.hosts["spine1"])
    if not with_edge:
        lines = [ln for ln in lines if constants.RAW_EDGE not in ln or ln.startswith(":")]
    path = lab.tmp / "filter6.rules"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    res = run_module(lab.ns["edge"], "ocs.l3.ocs_iptables_chains",
                     {"src": str(path), "family": "ipv6", "jumps": JUMPS, "conntrack": False})
    assert not res.get("failed"), res


def ping_all(lab):
    for src in (FORGED, OWN, PEER):
        lab.x("ext", "ping", "-6", "-c1", "-W1", "-I", src, VM, check=False)


def counts(lab, ns, table, match):
    """{source: packets} of the rules of ``table`` in namespace ``ns`` whose line holds ``match``."""
    out = {}
    for line in lab.x(ns, "ip6tables-save", "-c", "-t", table).stdout.splitlines():
        if match in line and line.startswith("["):
            src = line.split(" -s ")[1].split()[0].split("/")[0] if " -s " in line else "*"
            out[src] = out.get(src, 0) + int(line[1:].split(":")[0])
    return out


def test_forged_ipv6_source_is_dropped_at_the_edge_and_counted(lab):
    apply_edge(lab)
    ping_all(lab)
    assert counts(lab, "vm", "filter", "icmpv6-type 128") == {FORGED: 0, OWN: 1, PEER: 1}
    assert sum(counts(lab, "edge", "raw", "ocs-edge-spoof").values()) == 1
    assert counts(lab, "edge", "raw", "ocs-edge-peer")[PEER] >= 1  # its echo request (and neighbour discovery)


def test_without_the_ipv6_edge_rules_the_forged_packet_is_delivered(lab):
    apply_edge(lab, with_edge=False)
    ping_all(lab)
    assert counts(lab, "vm", "filter", "icmpv6-type 128") == {FORGED: 1, OWN: 1, PEER: 1}
