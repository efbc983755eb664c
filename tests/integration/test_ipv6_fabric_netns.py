"""IPv6 across the fabric (issue 21) with real FRR (zebra, staticd, bgpd) in network namespaces.

The lab of test_frr_netns (a spine, a ToR, two hypervisors; hv-r01-01 and hv-r01-02 share one
bridged link segment with the ToR, hv-r01-02 has a second, point-to-point link), dual-stack: the
configurations ocs_l3.frr computes, applied by the role's module. Shows: the IPv6 family comes up
on the existing sessions (the shared segment included) and is applied idempotently, the ToR holds
each instance /128 from its own hypervisor only, the spine the rack's IPv6 aggregate and no
instance /128, IPv6 packets cross the fabric over link-local next hops, and an instance /128
announced by the wrong hypervisor is refused while the right one's is accepted, and a widened
IPv6 import policy taking effect by an IPv6 soft-in, without a session reset.
"""

from helpers import sh
from test_frr_netns import LAB, lab, lab_data, wait_for  # noqa: F401  (lab: fixture)

from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402

VM_A, VM_B, VM_C = "2001:db8:0:1::c613:10a/128", "2001:db8:0:1::b/128", "2001:db8:0:1::c613:10c/128"
ROGUE = "2001:db8:0:1::99/128"
AGGREGATE = "2001:db8:0:1::/64"
SPINE6, TOR6 = "2001:db8:ffff::1", "2001:db8:ffff::11"


def dual_lab_data():
    """The lab's fabric, dual-stack: rack r01's IPv6 subnet (addresses derived from IPv4; vm-b its
    own), the spine's and the ToR's ocs_address6 (on lo in the lab)."""
    data = lab_data()
    data["fabric"]["internal_ranges6"] = ["2001:db8::/32"]
    data["racks"]["r01"].update(instance_subnets6=["2001:db8:0:1::/64"], instance_ip6_from_ip4=True)
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["ip6"] = "2001:db8:0:1::b"
    data["hostvars"]["spine1"]["ocs_address6"] = SPINE6
    data["hostvars"]["tor-r01"]["ocs_address6"] = TOR6
    return data


def rib6(lab, host):
    """{prefix: sorted BGP neighbors (peer ids) of its best/multipath paths} of the IPv6 table."""
    out = {}
    for prefix, paths in lab.json(host, "show bgp ipv6 unicast")["routes"].items():
        out[prefix] = sorted({p["peerId"] for p in paths if p.get("bestpath") or p.get("multipath")})
    return out


def established6(lab, host):
    return {k for k, v in lab.json(host, "show bgp ipv6 unicast summary")["peers"].items()
            if v["state"] == "Established"}


def converge6(lab, fab):
    for host, addr in (("spine1", SPINE6), ("tor-r01", TOR6)):
        lab.ip(host, "-6", "addr", "add", addr + "/128", "dev", "lo")
    for host in LAB:  # top down, as site.yml does
        if host != "spine1":
            lab.routes(fab, host)
        assert lab.configure(fab, host)["changed"]
    want = {"spine1": {"198.18.0.11"}, "tor-r01": {"198.18.0.1", "198.18.1.11", "198.18.1.12", "198.18.1.140"},
            "hv-r01-01": {"198.18.1.1"}, "hv-r01-02": {"198.18.1.1", "198.18.1.129"}}
    for host, peers in want.items():
        wait_for(lambda: established6(lab, host) == peers, "%s IPv6 family Established" % host)


def test_ipv6_routes_across_the_fabric_and_a_foreign_128_is_refused(lab):
    fab = build(dual_lab_data())
    converge6(lab, fab)
    for host in LAB:  # the running configuration is the rendered one: nothing to do
        again = lab.configure(fab, host)
        assert not again["changed"], (host, again)

    # ToR: each instance /128 from its own hypervisor (hv-r01-02 over both its links), nothing else.
    tor = wait_for(lambda: (lambda r: r if {VM_A, VM_B, VM_C} <= set(r) and len(r[VM_C]) == 2 else None)(
        rib6(lab, "tor-r01")), "ToR IPv6 routes")
    assert tor[VM_A] == tor[VM_B] == ["198.18.1.11"] and tor[VM_C] == ["198.18.1.12", "198.18.1.140"]
    # Spine: the rack's aggregate and the ToR's address, no instance /128.
    spine = wait_for(lambda: (lambda r: r if set(r) == {AGGREGATE, TOR6 + "/128", SPINE6 + "/128"} else None)(
        rib6(lab, "spine1")), "spine IPv6 routes")
    assert spine[AGGREGATE] == ["198.18.0.11"]
    kernel = sh("ip", "-n", lab.ns["spine1"], "-6", "route", "show", AGGREGATE).stdout
    assert "via fe80::" in kernel and "dev eth0" in kernel and "proto bgp" in kernel, kernel
    # Hypervisors: from the ToR the rack's subnet and the infrastructure /128s (no default: no border here).
    learned = wait_for(lambda: (lambda r: r if set(r) == {AGGREGATE, TOR6 + "/128", SPINE6 + "/128"} else None)(
        lab.json("hv-r01-01", "show bgp ipv6 unicast neighbors 198.18.1.1 routes")["routes"]), "hypervisor routes")
    assert VM_C not in learned

    # Packets: the spine reaches vm-a's /128 (held on the hypervisor, as its tap's far end) through
    # the ToR, over link-local next hops on the shared segment, and the reply comes back.
    sh("ip", "netns", "exec", lab.ns["tor-r01"], "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    vm_a = fab.hosts["hv-r01-01"].instances[0]
    lab.ip("hv-r01-01", "-6", "addr", "add", VM_A, "dev", "i" + vm_a.interface[3:14], "nodad")
    # Tried again for up to 30 s: the first echo may be lost while the ToR, just made a router, and the
    # hosts resolve their link-local neighbours (one single-shot ping failed once in CI, routes all in place).
    wait_for(lambda: sh("ip", "netns", "exec", lab.ns["spine1"], "ping", "-6", "-c1", "-W3", "-I", SPINE6, VM_A[:-4]),
             "the spine's echo to vm-a answered", timeout=30)

    # hv-r01-01 announces vm-c's /128 (hv-r01-02's) and an unassigned one: both leave it, both stop at the ToR.
    for prefix in (ROGUE, VM_C):
        lab.ip("hv-r01-01", "-6", "route", "add", "blackhole", prefix, "proto", "211")
    rogue = ["ipv6 prefix-list OCS6-OWN permit %s" % ROGUE, "ipv6 prefix-list OCS6-OWN permit %s" % VM_C,
             "router bgp 65200", " address-family ipv6 unicast", "  network %s" % ROGUE, "  network %s" % VM_C,
             " exit-address-family", "exit"]
    assert lab.configure(fab, "hv-r01-01", rogue)["changed"]
    received = wait_for(lambda: (lambda r: r if {ROGUE, VM_C} <= set(r) else None)(
        lab.json("tor-r01", "show bgp ipv6 unicast neighbors 198.18.1.11 received-routes")["receivedRoutes"]),
        "the foreign /128s received (Adj-RIB-In)")
    assert {ROGUE, VM_C} <= set(received)
    tor = rib6(lab, "tor-r01")
    assert ROGUE not in tor
    assert tor[VM_C] == ["198.18.1.12", "198.18.1.140"]  # the right hypervisor's only: accepted
    assert tor[VM_A] == ["198.18.1.11"]  # hv-r01-01's own still accepted
    assert ROGUE not in rib6(lab, "spine1")
    assert lab.configure(fab, "hv-r01-01")["changed"]  # back to the computed config

    # Wrong order on purpose: hv-r01-02 announces a new instance's /128 before its ToR accepts it.
    # Held in the ToR's Adj-RIB-In; the ToR's reload sends `clear bgp ipv6 unicast ... soft in` to
    # that hypervisor only, and the route is accepted with every session kept.
    before = {h: lab.connections(h) for h in LAB}
    data = dual_lab_data()
    data["hostvars"]["hv-r01-02"]["ocs_instances"].append(
        {"name": "vm-f", "mac": "02:00:00:00:01:0f", "ip": "198.19.1.21"})
    new = build(data)
    vm_f = "2001:db8:0:1::c613:115/128"
    lab.routes(new, "hv-r01-02")
    lab.configure(new, "hv-r01-02")
    wait_for(lambda: vm_f in lab.json(
        "tor-r01", "show bgp ipv6 unicast neighbors 198.18.1.12 received-routes")["receivedRoutes"],
        "announcement held in the ToR's Adj-RIB-In")
    assert vm_f not in rib6(lab, "tor-r01")
    result = lab.configure(new, "tor-r01")
    assert result["soft_in"] == ["clear bgp %s unicast %s soft in" % (family, peer) for family in ("ipv4", "ipv6")
                                 for peer in ("198.18.1.12", "198.18.1.140")], result["soft_in"]
    wait_for(lambda: rib6(lab, "tor-r01").get(vm_f) == ["198.18.1.12", "198.18.1.140"], "accepted after the reload")
    assert vm_f not in rib6(lab, "spine1")  # the aggregate covers it
    assert {h: lab.connections(h) for h in LAB} == before  # no session was reset
