"""Ingress anti-spoofing at the edge (issue 15) with real packets.

::

    ext (the border) 198.18.0.254/30, own source 192.0.2.10 (on lo)
      | eth0 -- eth9 (the edge host's border link, 198.18.0.253/30)
    edge: spine1 (host mode: routes the floating /32 to the instance's host; spine1's rendered
          filter file, raw table included, applied by ocs_iptables_chains)
       or gw-01 (gateway mode: gw-01's rendered ocs_natgw table applied by ocs_nft_table)
      | down0 198.19.1.1/24
    vm-a 198.19.1.10 (floating 203.0.113.101), a UDP listener; in host mode the namespace is its
          hypervisor too (a minimal DNAT 203.0.113.101 -> 198.19.1.10: spines never track transit,
          so the floating IP is translated below them, as the hypervisors' OCS-FLOAT-DNAT does)

ext sends UDP to the floating IP with a forged source (198.19.1.11, vm-b's fixed IP, set on ext's
lo so the kernel sends from it) and with its own source: the forged one never reaches vm-a and
``ocs-edge-spoof`` counts it, the genuine one arrives. Without the edge rules the forged datagram
IS delivered (the problem, measured).
"""

import copy
import json
import os
import subprocess
import sys
import time

import pytest

from helpers import PROBE, NetnsLab, run_module, sh

from fabric_data import BASE, gateway_mode
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.firewall import filter_lines
from ansible_collections.ocs.l3.plugins.module_utils.natgw import gateway_lines

FIP, FIXED, FORGED, OWN, PORT = "203.0.113.101", "198.19.1.10", "198.19.1.11", "192.0.2.10", 7100
JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
HEADER = "#\n# Managed by ocs-l3 (Ansible)\n#\n"


class Lab(NetnsLab):
    def __init__(self, tmp, mode):
        super().__init__(tmp, "ocs-e", {})
        self.mode = mode
        for key in ("ext", "edge", "vm"):
            self.add(key)
        self.x("edge", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for conf in ("all", "default"):
            self.x("edge", "sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % conf)
        self.link("ext", "eth0", "198.18.0.254/30", "edge", "eth9", None)
        self.ip("edge", "addr", "add", "198.18.0.253/30" if mode == "host" else "198.18.0.250/29", "dev", "eth9")
        if mode == "gateway":  # the border peer on the gateway's link
            self.ip("ext", "addr", "flush", "dev", "eth0")
            self.ip("ext", "addr", "add", "198.18.0.254/29", "dev", "eth0")
        self.link("edge", "down0", "198.19.1.1/24", "vm", "eth0", FIXED + "/24")
        self.ip("vm", "route", "add", "default", "via", "198.19.1.1")
        for addr in (OWN, FORGED):  # ext's own internet address, and the instance address it forges
            self.ip("ext", "addr", "add", addr + "/32", "dev", "lo")
        self.ip("ext", "route", "add", FIP, "via", "198.18.0.250" if mode == "gateway" else "198.18.0.253")
        self.ip("edge", "route", "add", "192.0.2.0/24", "via", "198.18.0.254")

    def send_both(self):
        """Start vm-a's listener, send the forged then the genuine datagram; what vm-a received."""
        lis = subprocess.Popen(["ip", "netns", "exec", self.ns["vm"], sys.executable, PROBE, "listen-udp",
                                str(PORT), "2"], stdout=subprocess.PIPE, text=True)
        self.procs.append(lis)
        time.sleep(0.3)
        for src, word in ((FORGED, "forged"), (OWN, "genuine")):
            self.run_probe("ext", "send-udp", src, FIP, PORT, word, check=True)
        out, dummy = lis.communicate(timeout=20)
        return json.loads(out)


def host_fabric():
    return build(copy.deepcopy(BASE))


def gateway_fabric():
    data = gateway_mode(copy.deepcopy(BASE))
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    data["hostvars"]["gw-01"]["ocs_uplinks"][1].update(address="198.18.0.250/29")
    return build(data)


def text(lines):
    return HEADER + "".join(line + "\n" for line in lines)


@pytest.fixture
def lab(tmp_path, request):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, iptables, nftables)")
    lab = Lab(tmp_path, request.param)
    try:
        yield lab
    finally:
        lab.close()


def apply_host_mode(lab, with_edge=True):
    """spine1's rendered filter file through ocs_iptables_chains; the floating IP routed to vm-a's
    namespace, which translates it (a minimal DNAT, the hypervisor's part)."""
    fab = host_fabric()
    lines = filter_lines(fab, fab.hosts["spine1"])
    if not with_edge:
        lines = [ln for ln in lines if constants.RAW_EDGE not in ln or ln.startswith(":")]
    path = lab.tmp / "filter.rules"
    path.write_text(text(lines))
    res = run_module(lab.ns["edge"], "ocs.l3.ocs_iptables_chains",
                     {"src": str(path), "family": "ipv4", "jumps": JUMPS, "conntrack": False})
    assert not res.get("failed"), res
    lab.ip("edge", "route", "add", FIP, "via", FIXED)
    lab.x("vm", "iptables", "-t", "nat", "-A", "PREROUTING", "-d", FIP, "-j", "DNAT", "--to-destination", FIXED)


def apply_gateway_mode(lab, with_edge=True):
    """gw-01's rendered ocs_natgw table through ocs_nft_table."""
    fab = gateway_fabric()
    lines = gateway_lines(fab, fab.hosts["gw-01"])
    if not with_edge:
        lines = [ln for ln in lines if "ocs-edge-spoof" not in ln]
    path = lab.tmp / "natgw.nft"
    path.write_text(text(lines))
    sh("nft", "-c", "-f", str(path))
    res = run_module(lab.ns["edge"], "ocs.l3.ocs_nft_table", {"src": str(path)})
    assert not res.get("failed"), res
    # gw-01's public address (the SNAT source of the hairpin path) is local to it
    lab.ip("edge", "addr", "add", "203.0.113.250/32", "dev", "lo")


def spoof_counter(lab):
    if lab.mode == "host":
        save = lab.x("edge", "iptables-save", "-c", "-t", "raw").stdout
        return sum(int(line.split("]")[0].split(":")[0].lstrip("["))
                   for line in save.splitlines() if "ocs-edge-spoof" in line), save
    doc = json.loads(lab.x("edge", "nft", "-j", "list", "table", "ip", constants.NFT_TABLE).stdout)
    return sum(e["counter"]["packets"] for item in doc["nftables"] if item.get("rule", {}).get("comment")
               == "ocs-edge-spoof" for e in item["rule"]["expr"] if "counter" in e), doc


APPLY = {"host": apply_host_mode, "gateway": apply_gateway_mode}


@pytest.mark.parametrize("lab", ["host", "gateway"], indirect=True)
def test_forged_instance_source_is_dropped_at_the_edge_and_counted(lab):
    APPLY[lab.mode](lab)
    got = lab.send_both()
    assert [word for dummy, word in got] == ["genuine"], got  # the forged datagram never arrives
    assert got[0][0] == OWN
    count, dump = spoof_counter(lab)
    assert count == 1, dump


@pytest.mark.parametrize("lab", ["host", "gateway"], indirect=True)
def test_without_the_edge_rules_the_forged_datagram_is_delivered(lab):
    """The problem as measured: the same lab, the edge rules left out."""
    APPLY[lab.mode](lab, with_edge=False)
    got = lab.send_both()
    assert sorted(word for dummy, word in got) == ["forged", "genuine"], got


def test_spine_edge_rules_apply_in_a_scratch_namespace(tmp_path, netns):
    """iptables-restore --test and a real apply of spine1's rendered raw table."""
    fab = host_fabric()
    path = tmp_path / "f.rules"
    path.write_text(text(filter_lines(fab, fab.hosts["spine1"])))
    sh("ip", "netns", "exec", netns, "iptables-restore", "--test", str(path))
    sh("ip", "netns", "exec", netns, "iptables-restore", str(path))
    assert "ocs-edge-spoof" in sh("ip", "netns", "exec", netns, "iptables-save", "-t", "raw").stdout
