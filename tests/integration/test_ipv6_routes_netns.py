"""A dual-stack hypervisor's IPv6 routes (issue 20) against a real kernel, in scratch namespaces.

A hypervisor namespace with two veth "taps" whose other ends are two
instances' namespaces; routes.batch computed from the dual-stack example
(``fabric_data.dual_stack``) by routes.py, applied by the real
``ocs_route_table`` module (``ansible localhost`` inside the namespace) and by
the real host agent (the archive the role installs, system Python ``-S``).
The instances are configured by hand as the guests' DHCPv6/RA would: their
``ip6``/128 and a default route via ``fe80::1`` on their interface.
"""

import copy
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from fabric_data import BASE, dual_stack, static6
from helpers import NetnsLab, run_module
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.artifact import text
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build, default_ifname
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines, owned_lines
from ansible_collections.ocs.l3.plugins.plugin_utils import host_library

HV = "hv-r01-01"
TAP_A = default_ifname("vm-a", "tap")
TAP_B = "tap-b"
IP6_A, IP6_B = "2001:db8:0:1::c613:10a", "2001:db8:0:1::b"  # vm-a derived from 198.19.1.10, vm-b its own
V6_LINES = [  # what routes.py renders for the hypervisor's two instances, exactly
    "address replace 2001:db8:0:1::1/64 dev tap-b nodad noprefixroute",
    "address replace 2001:db8:0:1::1/64 dev %s nodad noprefixroute" % TAP_A,
    "address replace fe80::1/64 dev tap-b nodad",
    "address replace fe80::1/64 dev %s nodad" % TAP_A,
    "route replace 2001:db8:0:1::b/128 dev tap-b proto 211 metric 1024",
    "route replace 2001:db8:0:1::c613:10a/128 dev %s proto 211 metric 1024" % TAP_A,
]
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


def routes_batch(drop_b=False):
    data = dual_stack(copy.deepcopy(BASE))
    if drop_b:
        data["hostvars"][HV]["ocs_instances"].pop(1)
    fab = build(data)
    host = fab.hosts[HV]
    return text(owned_lines(fab, host) + host_lines(fab, host))


@pytest.fixture
def lab(tmp_path):
    """Namespaces hv, a, b; TAP_A and TAP_B in hv, ``eth0`` of each instance at their other ends."""
    lab = NetnsLab(tmp_path, "o6r", {})
    try:
        for key in ("hv", "a", "b"):
            lab.add(key)
        lab.x("hv", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        lab.ip("hv", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")  # an operator's link
        lab.ip("hv", "link", "set", "eth0", "up")
        lab.ip("hv", "addr", "add", "2001:db8:ffff::99/64", "dev", "eth0", "nodad")
        for key, tap, ip6 in (("a", TAP_A, IP6_A), ("b", TAP_B, IP6_B)):
            lab.link("hv", tap, None, key, "eth0", None)
            lab.ip(key, "addr", "add", ip6 + "/128", "dev", "eth0", "nodad")
            lab.ip(key, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
        yield lab
    finally:
        lab.close()


def v6_routes(lab):
    """Our IPv6 routes in the hypervisor as {(dst, dev, metric)}."""
    out = lab.ip("hv", "-j", "-6", "route", "show", "table", "main", "proto", str(constants.ROUTE_PROTOCOL)).stdout
    return {(r["dst"], r.get("dev"), r.get("metric")) for r in json.loads(out)}


def v6_addrs(lab, dev):
    out = lab.ip("hv", "-j", "-6", "addr", "show", "dev", dev).stdout
    return {"%s/%s%s%s" % (a["local"], a["prefixlen"], " nodad" if a.get("nodad") else "",
                           " noprefixroute" if a.get("noprefixroute") else "")
            for link in json.loads(out) for a in link["addr_info"]}


def sysctl(lab, tap, name):
    return lab.x("hv", "sysctl", "-n", "net.ipv6.conf.%s.%s" % (tap, name)).stdout.strip()


def ping6(lab, src, dst):
    return lab.x(src, "ping", "-6", "-c", "2", "-i", "0.2", "-w", "5", dst, check=False)


def kernel_link_local(lab, dev):
    return {a for a in v6_addrs(lab, dev) if a.startswith("fe80:") and not a.startswith("fe80::1/")}


def test_module_applies_prunes_and_leaves_foreign_state_alone(lab, tmp_path):
    src = tmp_path / "routes.batch"
    src.write_text(routes_batch())
    assert [ln for ln in src.read_text().splitlines() if ":" in ln.split()[2] or "blackhole" in ln] == V6_LINES
    ns = lab.ns["hv"]
    lab.ip("hv", "addr", "add", "fe80::99/64", "dev", TAP_A, "nodad")  # someone's link-local on a tap: stays
    lab.ip("hv", "addr", "add", "2001:db8:0:7::1/64", "dev", TAP_A, "noprefixroute")  # an old gateway6: ours
    lab.ip("hv", "-6", "route", "add", "2001:db8:0:1::99/128", "dev", TAP_A, "proto", "211")  # stale, ours
    lab.ip("hv", "-6", "route", "add", "blackhole", "2001:db8:99::/64", "proto", "static")  # someone else's
    lab.x("hv", "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % TAP_B)  # made with IPv6 off
    kernel_a = kernel_link_local(lab, TAP_A)
    assert kernel_a and sysctl(lab, TAP_A, "accept_ra") == "1"
    assert ping6(lab, "a", IP6_B).returncode != 0  # nothing routes yet

    first = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert first["changed"] and not first.get("failed"), first
    assert {ln for ln in V6_LINES} <= set(first["commands"])
    assert "route del 2001:db8:0:1::99/128 proto 211" in first["commands"]
    assert "address del 2001:db8:0:7::1/64 dev %s" % TAP_A in first["commands"]
    assert "address del fe80::99/64 dev %s" % TAP_A not in first["commands"]
    assert "net.ipv6.conf.%s.disable_ipv6=0" % TAP_B in first["ipv6_sysctls"]
    assert v6_routes(lab) == {(IP6_A, TAP_A, 1024), (IP6_B, TAP_B, 1024)}
    for tap in (TAP_A, TAP_B):
        assert {"fe80::1/64 nodad", "2001:db8:0:1::1/64 nodad noprefixroute"} <= v6_addrs(lab, tap)
        assert [sysctl(lab, tap, k) for k in ("accept_ra", "autoconf", "disable_ipv6")] == ["0", "0", "0"]
    assert kernel_link_local(lab, TAP_A) == kernel_a | {"fe80::99/64 nodad"}  # the kernel's and someone's stay
    assert "2001:db8:0:7::1/64" not in " ".join(v6_addrs(lab, TAP_A))
    assert "2001:db8:ffff::99/64 nodad" in v6_addrs(lab, "eth0")
    assert "blackhole 2001:db8:99::/64" in lab.ip("hv", "-6", "route", "show", "proto", "static").stdout
    assert "2001:db8:0:1::/64" not in lab.ip("hv", "-6", "route", "show").stdout  # noprefixroute

    second = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert not second["changed"] and second["commands"] == [] and second["ipv6_sysctls"] == [], second
    dry = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src, check=True)
    assert dry["diff"]["before"] == dry["diff"]["after"]  # every line reads back as itself

    assert ping6(lab, "a", IP6_B).returncode == 0  # instance to instance through the hypervisor
    assert ping6(lab, "b", IP6_A).returncode == 0

    src.write_text(routes_batch(drop_b=True))  # vm-b is gone: its /128 (and /32) go
    third = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert third["changed"]
    assert "route del 2001:db8:0:1::b/128 proto 211" in third["commands"]
    assert v6_routes(lab) == {(IP6_A, TAP_A, 1024)}
    assert ping6(lab, "a", IP6_B).returncode != 0
    assert not run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)["changed"]


def test_static_mode_ipv6_default_via_the_tors_address6(lab, tmp_path):
    """Issue 21, static routing mode: the hypervisor's ocs_address6 on its uplink and its IPv6 default
    via its ToR's ocs_address6, on-link there (no prefix of the link holds it), applied by the module,
    read back as itself (a second run changes nothing); back in BGP mode the default goes, the
    address stays (BGP announces it)."""
    data = static6(dual_stack(copy.deepcopy(BASE)))
    src = tmp_path / "routes.batch"
    fab = build(data)
    src.write_text(text(owned_lines(fab, fab.hosts[HV]) + host_lines(fab, fab.hosts[HV])))
    lines = src.read_text().splitlines()
    assert "route replace default via 2001:db8:ffff::11 dev eth0 proto 211 metric 1024 onlink" in lines
    assert "address replace 2001:db8:ffff::21/128 dev eth0 nodad" in lines
    ns = lab.ns["hv"]
    lab.ip("hv", "addr", "add", "198.18.1.11/25", "dev", "eth0")  # the IPv4 default's next hop on the link too
    first = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert first["changed"], first
    default6 = json.loads(lab.ip("hv", "-j", "-6", "route", "show", "default").stdout)
    assert [(r.get("gateway"), r.get("dev"), r.get("protocol"), r.get("metric"), "onlink" in r.get("flags", ()))
            for r in default6] == [("2001:db8:ffff::11", "eth0", "211", 1024, True)], default6  # (and linkdown here)
    second = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert not second["changed"] and second["commands"] == [], second
    data["fabric"]["routing_mode"] = "bgp"
    fab = build(data)
    src.write_text(text(owned_lines(fab, fab.hosts[HV]) + host_lines(fab, fab.hosts[HV])))
    third = run_module(ns, "ocs.l3.ocs_route_table", "src=%s" % src)
    assert "route del ::/0 proto 211" in third["commands"], third  # and the IPv4 static default
    assert lab.ip("hv", "-6", "route", "show", "default").stdout.strip() == ""
    assert "2001:db8:ffff::21/128" in lab.ip("hv", "-6", "addr", "show", "dev", "eth0").stdout


class Agent:
    """ocs-l3-agent running inside a namespace, as installed (the archive, ``python3 -S``)."""

    def __init__(self, netns, archive, state):
        self.lines = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, PYTHON, "-S", archive, "agent", "--state-dir", str(state), "--no-jumps"],
            env=dict(PATH=os.environ["PATH"], LANG="C.UTF-8"), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


def wait(pred, agent, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        assert agent.proc.poll() is None, "agent died:\n" + "\n".join(agent.lines)
        time.sleep(0.05)
    raise AssertionError("not served in %.1f s; agent log:\n%s" % (timeout, "\n".join(agent.lines)))


def test_agent_serves_a_taps_ipv6_lines_when_it_comes_up(lab, tmp_path):
    archive = host_library.write_archive(str(tmp_path / "lib"))
    state = tmp_path / "state"
    state.mkdir()
    (state / "routes.batch").write_text(routes_batch())
    (state / "agent.conf").write_text("instance_ifname_prefix=tap\n")
    lab.x("hv", "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % TAP_B)
    served = {(IP6_A, TAP_A, 1024), (IP6_B, TAP_B, 1024)}
    agent = Agent(lab.ns["hv"], archive, state)
    try:
        wait(lambda: v6_routes(lab) == served, agent)  # the start pass serves every UP tap
        assert sysctl(lab, TAP_B, "disable_ipv6") == "0" and sysctl(lab, TAP_B, "accept_ra") == "0"
        lab.ip("hv", "link", "set", TAP_A, "down")  # down flushes the tap's IPv6 addresses and routes
        assert (IP6_A, TAP_A, 1024) not in v6_routes(lab) and not v6_addrs(lab, TAP_A)
        lab.ip("hv", "link", "set", TAP_A, "up")
        wait(lambda: v6_routes(lab) == served and "fe80::1/64 nodad" in v6_addrs(lab, TAP_A), agent)
        assert "2001:db8:0:1::1/64 nodad noprefixroute" in v6_addrs(lab, TAP_A)
        assert ping6(lab, "a", IP6_B).returncode == 0
    finally:
        agent.stop()
