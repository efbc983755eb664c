"""Tenant isolation with real packets, in a topology of scratch network namespaces.

::

    ext 192.0.2.10 --- core (plays the ToRs and the border)
                        |                          |
          hv1 (hv-r01-01, rack r01)       hv2 (hv-r02-01, rack r02)
          lo: 198.18.0.100 (metadata)      tap-d vm-d 198.19.2.13
          tap-a vm-a 198.19.1.10 F .101
          tap-b vm-b 198.19.1.11

A real inventory is rendered by playbooks/render.yml; each hypervisor gets its
rendered routes, NAT rules and filter rules, applied by the real modules
(ocs_route_table, ocs_iptables_chains). Each instance's inner veth end carries
its inventory MAC. The metadata target is an address of the hypervisor itself
(the DNATed connection arrives in INPUT). hv1 runs listeners on 22 and 179
(its sshd and bgpd) and, for the DHCP test, the rendered dnsmasq. Receivers
count probe packets in raw PREROUTING, before anything could drop them.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import render, sh, stop_daemonized, write_inventory_dir
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.dhcp import HOSTS_PATH, LEASE_PATH
from test_nat_netns import Topo, counter, run_module

FILTER_JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
NAT_JUMPS = [{"table": "nat", "chain": c, "target": "OCS-" + c} for c in ("PREROUTING", "OUTPUT", "POSTROUTING")]

F_A, PUB1, PUB2 = "203.0.113.101", "203.0.113.11", "203.0.113.21"
EXT, META, HV1 = "192.0.2.10", "198.18.0.100", "198.18.1.11"
VMS = {  # name: (hypervisor key, tap, fixed ip, gateway, mac)
    "vm-a": ("hv1", "tap-a", "198.19.1.10", "198.19.1.1", "02:00:00:00:01:0a"),
    "vm-b": ("hv1", "tap-b", "198.19.1.11", "198.19.1.1", "02:00:00:00:01:0b"),
    "vm-d": ("hv2", "tap-d", "198.19.2.13", "198.19.2.1", "02:00:00:00:02:0d"),
}
SPOOF_DROP = "-A OCS-ANTISPOOF -m comment --comment ocs-spoof -j DROP"
DHCP_DROP = "-A OCS-DHCP-MAC -m comment --comment ocs-dhcp-spoof -j DROP"
HOST_DROP = "-A OCS-INPUT -i tap+ -m comment --comment ocs-protect-host -j DROP"
VM_B_PASS = ("-A OCS-ANTISPOOF -s 198.19.1.11/32 -i tap-b -m mac --mac-source 02:00:00:00:01:0b "
             "-m comment --comment vm-b -j RETURN")
PROBE_COUNT = "-A PREROUTING -p udp -m udp --dport 7002"

DHCLIENT_CONF = "timeout 5;\ninitial-interval 1;\nrequest subnet-mask, routers;\n"
HOOK = """#!/bin/sh
case "$reason" in BOUND|REBOOT|RENEW|REBIND) env | grep -E '^(reason|new_ip_address)=' | sort > "$OUT" ;; esac
exit 0
"""


def fabric():
    inst = {"hv-r01-01": [], "hv-r02-01": []}
    for name, (hv, tap, ip, _, mac) in VMS.items():
        rec = {"name": name, "mac": mac, "ip": ip, "interface": tap}
        if name == "vm-a":
            rec["floating_ip"] = F_A
        inst["hv-r01-01" if hv == "hv1" else "hv-r02-01"].append(rec)
    hosts = {
        "tor-r01": {"ocs_address": "198.18.1.1", "ocs_rack": "r01"},
        "tor-r02": {"ocs_address": "198.18.2.1", "ocs_rack": "r02"},
        "hv-r01-01": {"ocs_address": HV1, "ocs_rack": "r01", "ocs_public_address": PUB1,
                      "ocs_uplinks": [{"interface": "eth0", "address": HV1 + "/25", "peer": "198.18.1.1"}],
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
                       "routing_mode": "static",
                       # the lab's management: the fabric's own hosts (IPv4) and core's IPv6 link
                       "management_ranges": ["198.18.0.0/16", "2001:db8:1::/64"]},
    }
    return groups, hosts, settings


def write_inventory(path):
    groups, hosts, settings = fabric()
    write_inventory_dir(path, groups, hosts, settings)


class Lab(Topo):
    HOSTS = {"hv1": "hv-r01-01", "hv2": "hv-r02-01"}

    def file(self, key, path):
        return self.build / self.HOSTS[key] / path.lstrip("/")

    def chains(self, key, path, family="ipv4", jumps=FILTER_JUMPS, check=False):
        args = {"src": str(self.file(key, path)), "family": family, "jumps": jumps, "conntrack": False}
        res = run_module(self.ns[key], "ocs.l3.ocs_iptables_chains", args, check=check)
        assert not res.get("failed"), res
        return res

    def probe(self, key, proto, src, dst, port):
        """From any source address (IP_TRANSPARENT: none needs to be configured). UDP: sent (True);
        TCP: the answer, or None when no connection (0.6 s: in local namespaces a dropped SYN is the
        only reason to wait)."""
        args = ["ask", dst, port, src, "--transparent", "--timeout", "0.6"]
        res = self.run_probe(key, *(args + (["--udp", "--no-reply"] if proto == "udp" else [])), timeout=20)
        if proto == "udp":
            assert res.returncode == 0, res.stderr
            return True
        return res.stdout.strip() if res.returncode == 0 else None

    def arrived(self, key):
        return counter(self.save(key, "-c", "-t", "raw"), PROBE_COUNT)

    def dropped(self, rule, key="hv1"):
        return counter(self.save(key, "-c", "-t", "filter"), rule)

    def vm_link(self, vm):
        hv, tap, ip, gw, mac = VMS[vm]
        self.ip(hv, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", self.ns[vm])
        self.ip(vm, "link", "set", "eth0", "address", mac)
        self.ip(vm, "addr", "add", ip + "/24", "dev", "eth0")
        self.ip(vm, "link", "set", "eth0", "up")
        self.ip(hv, "link", "set", tap, "up")
        self.ip(vm, "route", "add", "default", "via", gw)

    def set_mac(self, vm, mac):
        self.ip(vm, "link", "set", "eth0", "address", mac)
        hv, tap = VMS[vm][:2]
        self.ip(hv, "neigh", "flush", "dev", tap)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, iptables)")
    tmp = tmp_path_factory.mktemp("fw")
    write_inventory(tmp / "inv")
    proc = render(str(tmp / "build"), str(tmp / "inv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    t = Lab(tmp)
    t.build = tmp / "build"
    try:
        for key in ("core", "ext", "hv1", "hv2", *VMS):
            t.add(key)
        for key in ("core", "hv1", "hv2"):
            t.x(key, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for key in ("hv1", "hv2"):
            t.x(key, "sysctl", "-qw", "net.ipv4.conf.default.proxy_arp=1")
        t.link("core", "c-hv1", "198.18.1.1/25", "hv1", "eth0", HV1 + "/25")
        t.link("core", "c-hv2", "198.18.2.1/25", "hv2", "eth0", "198.18.2.11/25")
        t.link("core", "c-ext", "192.0.2.1/24", "ext", "eth0", EXT + "/24")
        t.ip("ext", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")
        for dst, via in (("198.19.1.0/24", HV1), (F_A, HV1), (PUB1, HV1), ("198.19.2.0/24", "198.18.2.11"),
                         (PUB2, "198.18.2.11")):
            t.ip("core", "route", "add", dst, "via", via)
        for key in ("hv1", "hv2"):  # the metadata service runs on every hypervisor (anycast)
            t.ip(key, "addr", "add", META + "/32", "dev", "lo")
        for vm in VMS:
            t.vm_link(vm)
        for key in ("ext", "vm-d", "vm-a"):  # count probes before anything can drop them
            t.x(key, "iptables", "-t", "raw", "-A", "PREROUTING", "-p", "udp", "--dport", "7002")
        # Someone else's filter rules, there before the first converge; and a jump of ours twice.
        t.x("hv1", "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
        t.x("hv1", "iptables", "-N", "DOCKER-USER")
        t.x("hv1", "iptables", "-A", "DOCKER-USER", "-j", "RETURN")
        t.x("hv1", "iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
        t.x("hv1", "iptables", "-N", "OCS-INPUT")
        for _ in range(2):
            t.x("hv1", "iptables", "-A", "INPUT", "-j", "OCS-INPUT")
        t.foreign_before = t.save("hv1", "-t", "filter")
        t.first = {}
        for key in ("hv1", "hv2"):
            res = run_module(t.ns[key], "ocs.l3.ocs_route_table",
                             {"src": str(t.file(key, "/etc/ocs-l3/routes.batch"))})
            assert not res.get("failed") and res["missing_interfaces"] == [], res
            res = run_module(t.ns[key], "ocs.l3.ocs_iptables_chains",
                             {"src": str(t.file(key, "/etc/ocs-l3/iptables-nat.rules")), "jumps": NAT_JUMPS})
            assert not res.get("failed"), res
            t.first[key] = t.chains(key, "/etc/ocs-l3/iptables-filter.rules")
        for vm in VMS:
            t.serve(vm, vm, "tcp", 7000)
        t.serve("ext", "ext", "tcp", 7000)
        t.serve("hv1", "hv-sshd", "tcp", 22)
        t.serve("hv1", "hv-bgpd", "tcp", 179)
        t.serve("hv1", "meta", "tcp", 8775)
        yield t
    finally:
        t.close()


def test_first_apply_keeps_foreign_rules_and_jumps_once(lab):
    first = lab.first["hv1"]
    assert first["changed"] and first["tables"] == ["filter", "raw"], first
    # both copies of the jump sat below the operator's ACCEPT: moved to the top, once
    assert first["jumps_fixed"] == ["-D INPUT -j OCS-INPUT", "-D INPUT -j OCS-INPUT", "-I INPUT 1 -j OCS-INPUT",
                                    "-I FORWARD 1 -j OCS-FORWARD", "-I PREROUTING 1 -j OCS-NOTRACK"]
    live = lab.save("hv1", "-t", "filter")
    for line in (":INPUT ACCEPT", ":FORWARD ACCEPT", ":OUTPUT ACCEPT", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
                 ":DOCKER-USER - [0:0]", "-A DOCKER-USER -j RETURN", "-A FORWARD -j DOCKER-USER"):
        assert line in live and line in lab.foreign_before
    assert live.count("-A INPUT -j OCS-INPUT\n") == 1 and live.count("-A FORWARD -j OCS-FORWARD\n") == 1
    # our jumps come first: the operator's "ACCEPT 22" cannot open sshd to instances
    assert live.index("-A FORWARD -j OCS-FORWARD") < live.index("-A FORWARD -j DOCKER-USER")
    assert live.index("-A INPUT -j OCS-INPUT") < live.index("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")


def test_own_address_works_east_west_and_out(lab):
    assert lab.call("vm-b", "tcp", "198.19.1.10", 7000) == ("vm-a", "198.19.1.11", "198.19.1.10")  # same hv
    assert lab.call("vm-b", "tcp", "198.19.2.13", 7000) == ("vm-d", "198.19.1.11", "198.19.2.13")  # other hv
    assert lab.call("vm-d", "tcp", "198.19.1.11", 7000) == ("vm-b", "198.19.2.13", "198.19.1.11")
    assert lab.call("vm-b", "tcp", EXT, 7000) == ("ext", PUB1, EXT)  # SNAT after the anti-spoof check


def test_floating_ip_inbound_and_outbound(lab):
    # inbound: DNATed to the fixed IP, leaves via the tap (-o tap: not an anti-spoof match)
    assert lab.call("ext", "tcp", F_A, 7000) == ("vm-a", EXT, F_A)
    # outbound: FORWARD sees the fixed IP (SNAT to the floating IP comes later, in POSTROUTING)
    before = lab.dropped(SPOOF_DROP)
    assert lab.call("vm-a", "tcp", EXT, 7000) == ("ext", F_A, EXT)
    assert lab.call("vm-a", "tcp", F_A, 7000) == ("vm-a", F_A, F_A)  # hairpin to its own floating IP
    assert lab.dropped(SPOOF_DROP) == before


@pytest.mark.parametrize("src", ["198.19.1.10", F_A, "198.19.1.99", "192.0.2.99"])
def test_spoofed_source_ip_gets_nothing_through(lab, src):
    """vm-b, with its own MAC, claims vm-a's fixed IP, vm-a's floating IP, an unused one, an outside one."""
    got = {key: lab.arrived(key) for key in ("vm-d", "ext", "vm-a")}
    dropped = lab.dropped(SPOOF_DROP)
    for dst in ("198.19.2.13", EXT, "198.19.1.10"):
        lab.probe("vm-b", "udp", src, dst, 7002)
    assert lab.probe("vm-b", "tcp", src, "198.19.2.13", 7000) is None
    assert lab.probe("vm-b", "tcp", src, EXT, 7000) is None
    time.sleep(0.3)
    assert {key: lab.arrived(key) for key in got} == got  # nothing arrived anywhere
    assert lab.dropped(SPOOF_DROP) >= dropped + 5  # 3 datagrams + at least one SYN each
    # control: the same probes from its own address arrive
    for dst in ("198.19.2.13", EXT, "198.19.1.10"):
        lab.probe("vm-b", "udp", "198.19.1.11", dst, 7002)
    time.sleep(0.3)
    assert all(lab.arrived(key) == got[key] + 1 for key in got)


def test_spoofed_mac_gets_nothing_through(lab):
    dropped, passed = lab.dropped(SPOOF_DROP), lab.dropped(VM_B_PASS)
    got = {key: lab.arrived(key) for key in ("vm-d", "ext")}
    try:
        lab.set_mac("vm-b", "02:00:00:00:01:0a")  # vm-a's MAC with its own IP, then vm-a's IP too
        for src in ("198.19.1.11", "198.19.1.10"):
            for dst in ("198.19.2.13", EXT):
                lab.probe("vm-b", "udp", src, dst, 7002)
        lab.set_mac("vm-b", "02:00:00:00:01:ee")  # a MAC nobody has
        lab.probe("vm-b", "udp", "198.19.1.11", "198.19.2.13", 7002)
        assert lab.call("vm-b", "tcp", "198.19.2.13", 7000) is None
    finally:
        lab.set_mac("vm-b", VMS["vm-b"][4])
    time.sleep(0.3)
    assert {key: lab.arrived(key) for key in got} == got
    assert lab.dropped(SPOOF_DROP) >= dropped + 6
    assert lab.dropped(VM_B_PASS) == passed
    assert lab.call("vm-b", "tcp", "198.19.2.13", 7000) == ("vm-d", "198.19.1.11", "198.19.2.13")


def test_instance_cannot_reach_the_hypervisors_daemons(lab):
    dropped = lab.dropped(HOST_DROP)
    for dst in ("198.19.1.1", HV1, META, PUB1):  # its gateway, the uplink, the metadata target, the public address
        for port in (22, 179, 8775):
            assert lab.probe("vm-b", "tcp", "198.19.1.11", dst, port) is None, (dst, port)
    assert lab.dropped(HOST_DROP) >= dropped + 12
    assert lab.probe("vm-a", "tcp", "198.19.1.10", "198.19.1.1", 22) is None  # with a floating IP too
    # the management side still works (uplink, and through the fabric from the other rack)
    assert lab.call("core", "tcp", HV1, 22) == ("hv-sshd", "198.18.1.1", HV1)
    assert lab.call("core", "tcp", HV1, 179) == ("hv-bgpd", "198.18.1.1", HV1)
    assert lab.call("hv2", "tcp", HV1, 22) == ("hv-sshd", "198.18.2.11", HV1)


def test_the_internet_reaches_no_hypervisor_service(lab):
    """Issue 14: the public address serves translations only; management reaches the host's own
    address; the control bypasses the host policy for one flow and the same sshd answers."""
    assert lab.call("ext", "tcp", PUB1, 22) is None  # the internet -> the public address
    assert lab.call("core", "tcp", PUB1, 22) is None  # management too: not on the public address
    assert lab.call("core", "tcp", HV1, 22) == ("hv-sshd", "198.18.1.1", HV1)  # management -> its own address
    rule = ["OCS-HOST", "-s", EXT, "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]
    lab.x("hv1", "iptables", "-w", "-I", rule[0], "1", *rule[1:])
    try:
        assert lab.call("ext", "tcp", PUB1, 22) == ("hv-sshd", EXT, PUB1)  # the listener is there
    finally:
        lab.x("hv1", "iptables", "-w", "-D", *rule)
    assert lab.call("ext", "tcp", PUB1, 22) is None
    # floating-IP traffic is not a host service: it still flows (translated in PREROUTING, never INPUT)
    assert lab.call("ext", "tcp", F_A, 7000) == ("vm-a", EXT, F_A)


def test_icmp_and_metadata_reach_the_hypervisor(lab):
    for dst in ("198.19.1.1", HV1):
        res = lab.run_probe("vm-b", "ping", dst, timeout=20)
        assert res.stdout.split() == ["reply", dst], (dst, res.stdout, res.stderr)
    # the metadata DNAT lands in INPUT of the hypervisor itself (ctstate DNAT)
    assert lab.call("vm-b", "tcp", "169.254.169.254", 80) == ("meta", "198.19.1.11", "169.254.169.254")
    assert lab.call("vm-a", "tcp", "169.254.169.254", 80) == ("meta", "198.19.1.10", "169.254.169.254")
    assert lab.call("vm-b", "tcp", "169.254.169.254", 8775) is None  # only the metadata port
    # spoofed, even ICMP and metadata get nothing
    assert lab.probe("vm-b", "tcp", "198.19.1.10", "169.254.169.254", 80) is None


def test_dhcp_with_real_dnsmasq_and_dhclient(lab):
    if not all(shutil.which(t) for t in ("dnsmasq", "dhclient", "ss")):
        pytest.fail("this test needs dnsmasq, dhclient and ss (make validate installs them)")
    work = tempfile.mkdtemp(prefix="ocs-fw-dhcp-")
    os.chmod(work, 0o755)  # dnsmasq drops root for nobody
    conf = lab.file("hv1", "/etc/ocs-l3/dnsmasq.conf").read_text()
    assert "\nport=0\n" in conf  # DHCP only: no DNS
    for prod, name in ((HOSTS_PATH, "dhcp-hosts"), (LEASE_PATH, "leases")):
        conf = conf.replace(prod, os.path.join(work, name))
    shutil.copyfile(lab.file("hv1", HOSTS_PATH), os.path.join(work, "dhcp-hosts"))
    for name, text, mode in (("dnsmasq.conf", conf, 0o644), ("dhclient.conf", DHCLIENT_CONF, 0o644),
                             ("hook.sh", HOOK, 0o755)):
        with open(os.path.join(work, name), "w") as fh:
            fh.write(text)
        os.chmod(os.path.join(work, name), mode)
    dnsmasq = subprocess.Popen(["ip", "netns", "exec", lab.ns["hv1"], "dnsmasq", "-k", "-C",
                                os.path.join(work, "dnsmasq.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)

    def dhclient(vm):
        out, pidfile = os.path.join(work, vm + ".env"), os.path.join(work, vm + ".pid")
        for path in (out, os.path.join(work, vm + ".lease")):
            if os.path.exists(path):
                os.unlink(path)
        lab.x(vm, "dhclient", "-1", "-cf", os.path.join(work, "dhclient.conf"), "-lf",
              os.path.join(work, vm + ".lease"), "-pf", pidfile, "-sf", os.path.join(work, "hook.sh"),
              "-e", "OUT=" + out, "eth0", check=False, timeout=60)
        stop_daemonized(pidfile)  # bound: it daemonized to renew
        if not os.path.exists(out):
            return {}
        with open(out) as fh:
            return dict(ln.rstrip("\n").split("=", 1) for ln in fh if "=" in ln)

    try:
        deadline = time.monotonic() + 10
        while ":67 " not in lab.x("hv1", "ss", "-H", "-lun").stdout:
            assert dnsmasq.poll() is None, dnsmasq.stderr.read().decode()
            assert time.monotonic() < deadline, "dnsmasq does not listen on 67"
            time.sleep(0.1)
        assert ":53 " not in lab.x("hv1", "ss", "-H", "-lntu").stdout  # not a resolver
        lease = dhclient("vm-b")
        assert lease.get("new_ip_address") == "198.19.1.11", lease
        assert dhclient("vm-a").get("new_ip_address") == "198.19.1.10"
        # vm-b claims vm-a's MAC to get vm-a's lease: dropped before dnsmasq sees it
        dropped = lab.dropped(DHCP_DROP)
        try:
            lab.set_mac("vm-b", "02:00:00:00:01:0a")
            assert dhclient("vm-b") == {}
        finally:
            lab.set_mac("vm-b", VMS["vm-b"][4])
        assert lab.dropped(DHCP_DROP) > dropped
    finally:
        dnsmasq.terminate()
        try:
            dnsmasq.wait(5)
        except subprocess.TimeoutExpired:
            dnsmasq.kill()
            dnsmasq.wait()
        shutil.rmtree(work, ignore_errors=True)


def _link_local(lab, key, ifname):
    deadline = time.monotonic() + 10
    while True:
        out = lab.ip(key, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link").stdout
        if "fe80::" in out and "tentative" not in out:
            return out.split()[3].split("/")[0]
        assert time.monotonic() < deadline, out
        time.sleep(0.2)


def test_ipv6_from_taps_is_dropped(lab):
    lab.ip("hv1", "-6", "addr", "add", "2001:db8:1::11/64", "dev", "eth0", "nodad")
    lab.ip("core", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "c-hv1", "nodad")
    lab.probe_server("hv1", 22, "--v6", "--name", "hv-sshd6")
    tap_ll = _link_local(lab, "hv1", "tap-b")
    _link_local(lab, "vm-b", "eth0")

    def ssh6(key, dst):
        res = lab.run_probe(key, "ask", dst, 22, timeout=20)
        return res.stdout.split()[0] if res.returncode == 0 else None

    assert ssh6("vm-b", tap_ll + "%eth0") == "hv-sshd6"  # control: open before the IPv6 rules
    # as the role applies them: both families in one module run (IPv4 first, IPv6 returned as `ipv6`)
    both = {"src": str(lab.file("hv1", "/etc/ocs-l3/iptables-filter.rules")), "family": "ipv4",
            "ipv6_src": str(lab.file("hv1", "/etc/ocs-l3/ip6tables-filter.rules")), "jumps": FILTER_JUMPS,
            "conntrack": False,
            # and the conntrack table, checked only here (a non-init namespace: the kernel's, read-only)
            "conntrack_table": {"max": 1, "sysctl_file": str(lab.file("hv1", "/etc/sysctl.d/61-ocs-l3-conntrack.conf"))}}
    res = run_module(lab.ns["hv1"], "ocs.l3.ocs_iptables_chains", both)
    assert not res.get("failed"), res
    assert res["conntrack_table"]["settable"] is False and res["conntrack_table"]["short"] == [], res
    assert not lab.file("hv1", "/etc/sysctl.d/61-ocs-l3-conntrack.conf").exists()  # nothing persisted there
    assert res["changed"] and res["ipv6"]["jumps_fixed"] == ["-I INPUT 1 -j OCS-INPUT", "-I FORWARD 1 -j OCS-FORWARD",
                                                             "-I PREROUTING 1 -j OCS-NOTRACK"]
    assert ssh6("vm-b", tap_ll + "%eth0") is None
    assert ssh6("core", "2001:db8:1::11") == "hv-sshd6"  # management over IPv6 (a management range) works
    lab.ip("core", "-6", "addr", "add", "2001:db8:2::1/64", "dev", "c-hv1", "nodad")
    lab.ip("hv1", "-6", "route", "add", "2001:db8:2::/64", "dev", "eth0")
    script = "import socket; s = socket.socket(socket.AF_INET6); s.settimeout(3); s.bind(('2001:db8:2::1', 0)); " \
             "s.connect(('2001:db8:1::11', 22)); print(s.recv(64).decode().split()[0])"
    res = lab.x("core", sys.executable, "-c", script, check=False, timeout=20)
    assert res.returncode != 0, res.stdout  # the same host's sshd from outside the ranges: dropped
    assert not lab.chains("hv1", "/etc/ocs-l3/ip6tables-filter.rules", family="ipv6")["changed"]
    again = run_module(lab.ns["hv1"], "ocs.l3.ocs_iptables_chains", both)
    assert not again["changed"] and again["ipv6"]["transaction"] == "" and again["transaction"] == ""


def test_second_apply_is_a_noop_and_counters_keep_counting(lab):
    path = "/etc/ocs-l3/iptables-filter.rules"
    assert lab.call("vm-b", "tcp", "198.19.2.13", 7000)
    before = lab.dropped(VM_B_PASS)
    assert before > 0
    dry = lab.chains("hv1", path, check=True)
    assert not dry["changed"] and dry["diff"]["before"] == dry["diff"]["after"], dry
    again = lab.chains("hv1", path)
    assert not again["changed"] and again["transaction"] == "" and again["jumps_fixed"] == [], again
    assert lab.dropped(VM_B_PASS) == before  # not reset
    assert lab.call("vm-b", "tcp", "198.19.2.13", 7000)
    assert lab.dropped(VM_B_PASS) > before
    live = lab.save("hv1", "-t", "filter")
    assert live.count("-A INPUT -j OCS-INPUT\n") == 1 and live.count("-A FORWARD -j OCS-FORWARD\n") == 1
    assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in live and "-A FORWARD -j DOCKER-USER" in live
    assert not lab.chains("hv2", path)["changed"]


def test_rendered_example_rules_apply_in_a_scratch_namespace(rendered, netns):
    for name, restore, save in (("iptables-filter.rules", "iptables-restore", "iptables-save"),
                                ("ip6tables-filter.rules", "ip6tables-restore", "ip6tables-save")):
        files = sorted(rendered.glob("*/etc/ocs-l3/" + name))
        assert len(files) == 10  # every host of the example: the host policy is on every tier
        for path in files:
            proc = sh("ip", "netns", "exec", netns, restore, str(path), check=False)
            assert proc.returncode == 0, (path, proc.stderr)
            chains = sh("ip", "netns", "exec", netns, save, "-t", "filter").stdout
            assert ":OCS-INPUT - [0:0]" in chains and ":OCS-HOST - [0:0]" in chains
            assert "-A OCS-HOST -m comment --comment ocs-host-drop -j DROP" in chains
            assert ":INPUT ACCEPT" in chains  # the file never sets a policy
            raw = sh("ip", "netns", "exec", netns, save, "-t", "raw").stdout
            router = path.parts[-4].startswith(("spine", "tor"))
            assert ("--notrack" in raw) == router, (path, raw)

