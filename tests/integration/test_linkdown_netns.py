"""Issue 15 on a real kernel: carrier loss under ECMP, proxy ARP on old taps, stale owned addresses.

Scratch network namespaces and veth pairs (root). The route files are applied
through ``route_table.reconcile``, the function the ``ocs_route_table`` module
calls, run by a Python process inside the namespace (so ``/proc/sys/net`` is
the namespace's); the second apply of the stale-address lab goes through the
real module (``ansible -m ocs.l3.ocs_route_table``).

- linkdown: a hypervisor with the static-mode ECMP default via two ToRs, one
  veth pair each; a ToR takes its end down, so ours loses carrier (the kernel
  marks the next hop ``linkdown`` but keeps it). With
  ``ignore_routes_with_linkdown=1`` (what ocs_routes sets) every flow still
  reaches the target through the other ToR; the control without it loses the
  flows the hash puts on the dead link.
- proxy ARP: ``conf.all`` and ``conf.default.proxy_arp`` off, the taps made
  before the apply; an instance's ARP for another address of its subnet is not
  answered with the routes alone, and is (by the tap) after the apply.
- stale addresses: a floating /32 the file no longer lists goes from ``lo``, an
  operator's loopback stays, an old gateway address goes from the tap; the
  second apply changes nothing.

Addresses: 198.18.0.0/15 and documentation ranges only.
"""

import json
import os
import subprocess
import time

import pytest

from helpers import BIN, NetnsLab, run_module, sh

P = 211
PORT = 9000
TARGETS = ["198.18.10.%d" % i for i in range(1, 9)]
SPORTS = [40001, 40002, 40003, 40004, 40005, 40006]
SOURCE = "198.18.11.1"
DEFAULT = "route replace default proto 211 nexthop via 198.18.8.1 nexthop via 198.18.8.5"

APPLY = """
import json, sys
from ansible_collections.ocs.l3.plugins.module_utils import route_table
from ansible_collections.ocs.l3.plugins.module_utils.host_state import process_runner
desired = route_table.read_file(sys.argv[1], 211)
print(json.dumps(route_table.reconcile(process_runner(), desired, 211)))
"""

RECEIVE = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
s.settimeout(0.5)
print("ready", flush=True)
got, end = set(), time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        data, peer = s.recvfrom(100)
    except socket.timeout:
        continue
    got.add(data.decode())
print(" ".join(sorted(got)), flush=True)
""" % PORT

SEND = """
import socket, sys, time
for rnd in range(3):
    for dst in sys.argv[2].split(","):
        for sport in sys.argv[3].split(","):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((sys.argv[1], int(sport)))
            s.sendto(("%%s:%%s" %% (dst, sport)).encode(), (dst, %d))
            s.close()
    time.sleep(0.2)
""" % PORT


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces)")
    lab = NetnsLab(tmp_path, "ocs-ld-", {"apply.py": APPLY, "receive.py": RECEIVE, "send.py": SEND})
    yield lab
    lab.close()


def sysctl(lab, key, *settings):
    lab.x(key, "sysctl", "-q", "-w", *settings)


def apply(lab, key, lines):
    """The routes file applied by route_table.reconcile inside namespace ``key``; its result."""
    src = lab.tmp / ("%s.routes.batch" % key)
    src.write_text("".join(line + "\n" for line in lines))
    proc = lab.x(key, os.path.join(BIN, "python"), str(lab.tmp / "apply.py"), str(src))
    return json.loads(proc.stdout)


# --- linkdown -------------------------------------------------------------------

def ecmp_lab(lab, ignore_linkdown):
    """hv --eth0/eth1-- tor1/tor2 --- dst (the targets on its lo); hv's default is the ECMP line."""
    for key in ("hv", "tor1", "tor2", "dst"):
        lab.add(key)
        sysctl(lab, key, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
    # set at boot, as the role's sysctl.d file does: before any link exists
    sysctl(lab, "hv", "net.ipv4.conf.all.ignore_routes_with_linkdown=%d" % ignore_linkdown,
           "net.ipv4.conf.default.ignore_routes_with_linkdown=%d" % ignore_linkdown,
           "net.ipv4.fib_multipath_hash_policy=1")  # L4 hash: the source ports spread too
    for tor in ("tor1", "tor2"):
        sysctl(lab, tor, "net.ipv4.ip_forward=1")
    lab.link("hv", "eth0", "198.18.8.2/30", "tor1", "down0", "198.18.8.1/30")
    lab.link("hv", "eth1", "198.18.8.6/30", "tor2", "down0", "198.18.8.5/30")
    lab.link("tor1", "up0", "198.18.9.1/30", "dst", "eth0", "198.18.9.2/30")
    lab.link("tor2", "up0", "198.18.9.5/30", "dst", "eth1", "198.18.9.6/30")
    lab.ip("hv", "addr", "add", SOURCE + "/32", "dev", "lo")
    for target in TARGETS:
        lab.ip("dst", "addr", "add", target + "/32", "dev", "lo")
    for tor, hop in (("tor1", "198.18.9.2"), ("tor2", "198.18.9.6")):
        lab.ip(tor, "route", "add", "198.18.10.0/24", "via", hop)
    # one-way UDP: the path back plays no part (it would be the ToR's problem, not the hypervisor's)
    res = apply(lab, "hv", [DEFAULT])
    assert res["commands"] == [DEFAULT] and res["error"] is None, res
    for hop in ("198.18.8.1", "198.18.8.5"):  # neighbours resolved, as on a running host
        lab.x("hv", "ping", "-c", "1", "-W", "2", hop)


def path_of(lab, target, sport):
    out = lab.ip("hv", "route", "get", target, "from", SOURCE, "ipproto", "udp", "sport", str(sport),
                 "dport", str(PORT)).stdout
    return out.split(" dev ")[1].split()[0]


def flows():
    return ["%s:%d" % (t, s) for t in TARGETS for s in SPORTS]


def delivered(lab):
    """The flows (target:sport) that reach dst when hv sends each of them 3 times."""
    recv = subprocess.Popen(["ip", "netns", "exec", lab.ns["dst"], os.path.join(BIN, "python"),
                             str(lab.tmp / "receive.py"), "4"], stdout=subprocess.PIPE, text=True)
    lab.procs.append(recv)
    assert recv.stdout.readline().strip() == "ready"
    lab.x("hv", os.path.join(BIN, "python"), str(lab.tmp / "send.py"), SOURCE, ",".join(TARGETS),
          ",".join(str(s) for s in SPORTS))
    out, dummy = recv.communicate(timeout=20)
    return set(out.split())


def carrier_loss(lab):
    """tor1 takes its end down: hv's eth0 loses carrier (not admin down), its next hop is linkdown."""
    lab.ip("tor1", "link", "set", "down0", "down")
    for dummy in range(50):
        if "NO-CARRIER" in lab.ip("hv", "link", "show", "eth0").stdout:
            break
        time.sleep(0.1)
    link = lab.ip("hv", "link", "show", "eth0").stdout
    assert "NO-CARRIER" in link and ",UP>" in link, link  # carrier lost, still admin up
    assert "linkdown" in lab.ip("hv", "route", "show", "default").stdout


def split_flows(lab):
    by_dev = {}
    for flow in flows():
        target, sport = flow.split(":")
        by_dev.setdefault(path_of(lab, target, sport), set()).add(flow)
    return by_dev


def test_ecmp_default_survives_carrier_loss_with_ignore_routes_with_linkdown(lab):
    ecmp_lab(lab, 1)
    before = split_flows(lab)
    assert set(before) == {"eth0", "eth1"} and len(before["eth0"]) >= 5, before  # the flows do spread
    print("flows via eth0 (tor1) before the carrier loss: %d of %d" % (len(before["eth0"]), len(flows())))
    assert delivered(lab) == set(flows())
    carrier_loss(lab)
    assert set(split_flows(lab)) == {"eth1"}  # the dead next hop is skipped
    assert delivered(lab) == set(flows())  # every flow reaches the target through tor2


def test_control_without_ignore_routes_with_linkdown_flows_on_the_dead_link_are_lost(lab):
    """Fails without protection: the reason ocs_routes sets ignore_routes_with_linkdown."""
    ecmp_lab(lab, 0)
    assert delivered(lab) == set(flows())
    carrier_loss(lab)
    after = split_flows(lab)
    assert set(after) == {"eth0", "eth1"}  # the kernel keeps hashing flows onto the linkdown next hop
    got = delivered(lab)
    print("without ignore_routes_with_linkdown: %d of %d flows lost" % (len(flows()) - len(got), len(flows())))
    assert got == after["eth1"] and not got & after["eth0"], (sorted(got), sorted(after["eth0"]))


# --- proxy ARP on taps that existed before the apply ------------------------------

TAP_LINES = [
    "address replace 198.19.1.1/24 dev tap-vm1 noprefixroute",
    "address replace 198.19.1.1/24 dev tap-vm2 noprefixroute",
    "route replace 198.19.1.10/32 dev tap-vm1 proto 211 scope link",
    "route replace 198.19.1.11/32 dev tap-vm2 proto 211 scope link",
]


def instances_lab(lab):
    lab.add("hv")
    sysctl(lab, "hv", "net.ipv4.conf.all.proxy_arp=0", "net.ipv4.conf.default.proxy_arp=0",
           "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
    for vm, tap, ip in (("vm1", "tap-vm1", "198.19.1.10"), ("vm2", "tap-vm2", "198.19.1.11")):
        lab.add(vm)
        lab.link("hv", tap, None, vm, "eth0", ip + "/24")
        lab.ip(vm, "route", "add", "default", "via", "198.19.1.1")


def proxy_arp_of(lab, tap):
    return lab.x("hv", "cat", "/proc/sys/net/ipv4/conf/%s/proxy_arp" % tap).stdout.strip()


def neighbour_answered(lab):
    """vm1 pings vm2 (same /24: vm1 ARPs for 198.19.1.11 itself); the lladdr vm1 learnt, or None."""
    ok = lab.x("vm1", "ping", "-c", "2", "-W", "1", "198.19.1.11", check=False).returncode == 0
    neigh = lab.ip("vm1", "neigh", "show", "198.19.1.11").stdout.split()
    return (ok, neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else None)


def test_apply_sets_proxy_arp_on_taps_made_before_it(lab):
    instances_lab(lab)
    assert proxy_arp_of(lab, "tap-vm1") == "0"
    # negative control: the same lines without the module's step (routes, gateway address, no proxy ARP)
    sh("ip", "-n", lab.ns["hv"], "-force", "-batch", "-", input="\n".join(TAP_LINES) + "\n")
    assert neighbour_answered(lab) == (False, None)
    lab.ip("vm1", "neigh", "flush", "dev", "eth0")
    res = apply(lab, "hv", TAP_LINES)
    assert res["changed"] and res["commands"] == [] and res["proxy_arp"] == ["tap-vm1", "tap-vm2"], res
    assert proxy_arp_of(lab, "tap-vm1") == proxy_arp_of(lab, "tap-vm2") == "1"
    tap_mac = json.loads(lab.ip("hv", "-j", "link", "show", "tap-vm1").stdout)[0]["address"]
    assert neighbour_answered(lab) == (True, tap_mac)  # answered by the tap: routed, never bridged
    again = apply(lab, "hv", TAP_LINES)
    assert not again["changed"] and again["proxy_arp"] == [], again


# --- stale owned addresses ----------------------------------------------------------

OWNED_FILE = [
    "#owned 203.0.113.0/24 dev lo",
    "address replace 203.0.113.11/32 dev lo",
    "address replace 198.19.1.1/24 dev tap-vm1 noprefixroute",
    "route replace 198.19.1.10/32 dev tap-vm1 proto 211 scope link",
]


def addresses(lab, dev):
    return sorted("%s/%s" % (a["local"], a["prefixlen"]) for link in json.loads(
        lab.ip("hv", "-j", "-4", "addr", "show", "dev", dev).stdout) for a in link["addr_info"])


def test_stale_owned_addresses_go_foreign_ones_stay_second_apply_changes_nothing(lab, tmp_path):
    lab.add("hv")
    lab.add("vm1")
    lab.link("hv", "tap-vm1", None, "vm1", "eth0", "198.19.1.10/24")
    lab.ip("hv", "addr", "add", "203.0.113.77/32", "dev", "lo")  # a floating /32 the file no longer lists
    lab.ip("hv", "addr", "add", "198.51.100.9/32", "dev", "lo")  # the operator's own loopback
    # the old gateway first (primary), ours second (a secondary of the same /24)
    lab.ip("hv", "addr", "add", "198.19.1.254/24", "dev", "tap-vm1", "noprefixroute")
    lab.ip("hv", "addr", "add", "198.19.1.1/24", "dev", "tap-vm1", "noprefixroute")
    src = tmp_path / "routes.batch"
    src.write_text("".join(line + "\n" for line in OWNED_FILE))

    dry = run_module(lab.ns["hv"], "ocs.l3.ocs_route_table", "src=%s" % src, check=True)
    assert dry["changed"] and "address del 203.0.113.77/32 dev lo" in dry["commands"], dry
    assert "203.0.113.77/32" in dry["diff"]["before"] and "203.0.113.77/32" not in dry["diff"]["after"]
    assert "203.0.113.77/32" in addresses(lab, "lo")  # check mode changed nothing

    res = apply(lab, "hv", OWNED_FILE)
    assert res["error"] is None and res["commands"] == [
        "address del 203.0.113.77/32 dev lo", "address del 198.19.1.254/24 dev tap-vm1",
        "address replace 203.0.113.11/32 dev lo",
        "address replace 198.19.1.1/24 dev tap-vm1 noprefixroute",  # the primary took it along: put back
        "route replace 198.19.1.10/32 dev tap-vm1 proto 211 scope link"], res
    assert addresses(lab, "lo") == ["127.0.0.1/8", "198.51.100.9/32", "203.0.113.11/32"]
    assert addresses(lab, "tap-vm1") == ["198.19.1.1/24"]

    second = run_module(lab.ns["hv"], "ocs.l3.ocs_route_table", "src=%s" % src)
    assert not second["changed"] and second["commands"] == [] and second["proxy_arp"] == [], second
