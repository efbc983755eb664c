"""nat_mode gateway with real FRR: the NAT gateways are the edge.

A border router (a plain bgpd announcing a default, plus prefixes the
gateways must refuse), a spine, two NAT gateways, a ToR and a hypervisor,
each in its own network namespace with its own zebra, staticd and bgpd. The
spine, the gateways and the border share the spine-layer link 198.18.0.0/24
(a bridge in the spine's namespace). Fabric hosts are configured with what
``ocs_l3.frr`` computes, through the role's module. Shows:

- the gateways, not the spine, peer with the border; each holds the
  border's default and nothing else from it;
- the spine holds a default via both gateways (ECMP, in the kernel too) and
  hands it down to the ToR; the gateways get no default from the spine;
- the border holds the floating range (via both gateways) and each
  gateway's public /32, nothing internal;
- a gateway whose border session goes down withdraws its default from the
  spine (and its /32 from the border) and announces it again when the
  session is back;
- the border sessions' own settings (issue 18: ``ocs_fabric.border`` timers
  and the border peer's password) in FRR's running shape (a second apply
  changes nothing), the timers in force and the session up with the password.

Every process and namespace is removed afterwards.
"""

import copy
import os
import shutil
import time

import pytest

from helpers import sh
from test_frr_netns import HEADER, Lab, reload_module, wait_for


from fabric_data import BASE, gateway_mode  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402

HOSTS = ("border", "spine1", "gw-01", "gw-02", "tor-r01", "hv-r01-01")
FABRIC = HOSTS[1:]
BORDER_IP, BORDER_ASN = "198.18.0.254", 65530
GW = {"gw-01": ("198.18.0.21", "203.0.113.250"), "gw-02": ("198.18.0.22", "203.0.113.251")}
BORDER_KEY = "b0rder-Key.1"  # ocs_fabric.border_peers[0].password, and the border router's
INTERNET = "198.51.100.0/24"  # the border's own prefix: the gateways must refuse it
HIJACK = "198.19.1.0/25"  # inside a rack subnet, announced by the border: refused too

BORDER_CONF = """ip route %(internet)s blackhole
ip route %(hijack)s blackhole
!
router bgp %(asn)d
 bgp router-id %(ip)s
 neighbor 198.18.0.21 remote-as 65300
 neighbor 198.18.0.21 password %(key)s
 neighbor 198.18.0.22 remote-as 65300
 neighbor 198.18.0.22 password %(key)s
 !
 address-family ipv4 unicast
  network %(internet)s
  network %(hijack)s
  neighbor 198.18.0.21 default-originate
  neighbor 198.18.0.21 route-map ANY in
  neighbor 198.18.0.21 route-map ANY out
  neighbor 198.18.0.22 default-originate
  neighbor 198.18.0.22 route-map ANY in
  neighbor 198.18.0.22 route-map ANY out
  maximum-paths 2
 exit-address-family
exit
!
route-map ANY permit 10
exit
!
""" % {"internet": INTERNET, "hijack": HIJACK, "asn": BORDER_ASN, "ip": BORDER_IP, "key": BORDER_KEY}


def gateway_lab_data():
    """The test fabric in gateway mode: one rack, one hypervisor, two gateways."""
    data = copy.deepcopy(BASE)
    data["groups"] = {"spines": ["spine1"], "tors": ["tor-r01"], "hypervisors": ["hv-r01-01"],
                      "nat_gateways": ["gw-01", "gw-02"]}
    data["racks"].pop("r02")
    for name in ("tor-r02", "hv-r01-02", "hv-r02-01"):
        data["hostvars"].pop(name)
    data["hostvars"]["gw-02"] = {"ocs_address": "198.18.0.22", "ocs_public_address": GW["gw-02"][1],
                                 "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.22/24",
                                                  "peer": "198.18.0.1"}]}
    data["hostvars"]["hv-r01-01"].pop("ocs_public_address")
    gateway_mode(data)
    assert data["fabric"]["border_peers"] == [{"address": BORDER_IP, "asn": BORDER_ASN}]
    data["fabric"]["border"] = {"keepalive": 5, "holdtime": 15}
    data["fabric"]["border_peers"][0]["password"] = BORDER_KEY
    return data


class GatewayLab(Lab):
    def build(self):
        self.namespaces()
        # The spine-layer link: bridge br0 in the spine's namespace.
        self.ip("spine1", "link", "add", "br0", "type", "bridge")
        self.ip("spine1", "addr", "add", "198.18.0.1/24", "dev", "br0")
        self.ip("spine1", "link", "set", "br0", "up")
        for i, (host, addr) in enumerate((("tor-r01", "198.18.0.11"), ("gw-01", GW["gw-01"][0]),
                                          ("gw-02", GW["gw-02"][0]), ("border", BORDER_IP))):
            self.veth(host, "eth0", "spine1", "p%d" % i)
            self.ip("spine1", "link", "set", "p%d" % i, "master", "br0")
            self.ip(host, "addr", "add", "%s/24" % addr, "dev", "eth0")
        self.veth("hv-r01-01", "eth0", "tor-r01", "eth1")
        self.ip("tor-r01", "addr", "add", "198.18.1.1/25", "dev", "eth1")
        self.ip("hv-r01-01", "addr", "add", "198.18.1.11/25", "dev", "eth0")
        for host in HOSTS:
            self.start(host)

    def configure_border(self):
        path = os.path.join(self.sock("border"), "frr.conf")
        with open(path, "w") as fh:
            fh.write(HEADER + BORDER_CONF)
        return reload_module(path, self.sock("border"))

    def border_session(self, gw_ip, up):
        sh("vtysh", "--vty_socket", self.sock("border"), "-c", "configure terminal", "-c",
           "router bgp %d" % BORDER_ASN, "-c", "%sneighbor %s shutdown" % ("no " if up else "", gw_ip))

    def learned(self, host, peer):
        return set(self.json(host, "show bgp ipv4 unicast neighbors %s routes" % peer)["routes"])


@pytest.fixture
def gwlab():
    if os.geteuid() != 0 or not shutil.which("vtysh") or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr and frr-pythontools (make validate installs them)")
    lab = GatewayLab(HOSTS)
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


def rib_has(lab, host, prefix, hops):
    return lambda: lab.rib(host).get(prefix) == hops


def test_gateways_are_the_edge(gwlab):
    lab = gwlab
    fab = build(gateway_lab_data())
    gw1, gw2 = GW["gw-01"][0], GW["gw-02"][0]
    assert lab.configure_border()["changed"]
    for host in FABRIC:  # top down, as site.yml does
        if host != "spine1":
            lab.routes(fab, host)
        assert lab.configure(fab, host)["changed"], host
    want = {"border": {gw1, gw2}, "spine1": {"198.18.0.11", gw1, gw2}, "gw-01": {"198.18.0.1", BORDER_IP},
            "gw-02": {"198.18.0.1", BORDER_IP}, "tor-r01": {"198.18.0.1", "198.18.1.11"},
            "hv-r01-01": {"198.18.1.1"}}
    for host, peers in want.items():
        wait_for(lambda: lab.established(host) == peers, "%s sessions Established" % host)
    assert BORDER_IP not in lab.peers("spine1")  # the spine has no border session

    # Second apply: nothing to do (the rendered text is FRR's own running shape).
    for host in FABRIC:
        again = lab.configure(fab, host)
        assert not again["changed"], (host, again)

    # The border sessions: ocs_fabric.border's timers (the border router runs FRR's 60/180: the
    # lower hold time wins), the border peer's password (the session is up with it).
    for gw in GW:
        nb = lab.json(gw, "show bgp neighbors %s" % BORDER_IP)[BORDER_IP]
        assert (nb["bgpTimerConfiguredKeepAliveIntervalMsecs"], nb["bgpTimerConfiguredHoldTimeMsecs"]) == \
            (5000, 15000), nb
        assert (nb["bgpTimerKeepAliveIntervalMsecs"], nb["bgpTimerHoldTimeMsecs"]) == (5000, 15000), nb
        running = lab.vtysh(gw, "show running-config")
        assert " neighbor %s password %s\n" % (BORDER_IP, BORDER_KEY) in running
        assert " neighbor %s timers 5 15\n" % BORDER_IP in running

    # Gateways: the border's default, nothing else from it; no default from the spine.
    for gw in GW:
        wait_for(rib_has(lab, gw, "0.0.0.0/0", [BORDER_IP]), "%s default from the border" % gw)
        sent = lab.json("border", "show bgp ipv4 unicast neighbors %s advertised-routes" % GW[gw][0])
        assert {INTERNET, HIJACK} <= set(sent["advertisedRoutes"])
        assert lab.learned(gw, BORDER_IP) == {"0.0.0.0/0"}
        rib = lab.rib(gw)
        assert INTERNET not in rib and HIJACK not in rib
        assert "0.0.0.0/0" not in lab.learned(gw, "198.18.0.1")
        assert rib["198.19.1.0/24"] == ["198.18.0.1"]  # the rack, through the spine (next-hop-self)

    # Spine: default via both gateways (ECMP, also in the kernel), ranges and publics from them.
    wait_for(rib_has(lab, "spine1", "0.0.0.0/0", [gw1, gw2]), "spine default via both gateways")
    spine = lab.rib("spine1")
    assert spine["203.0.113.0/24"] == [gw1, gw2]
    assert spine["203.0.113.250/32"] == [gw1] and spine["203.0.113.251/32"] == [gw2]
    assert INTERNET not in spine and HIJACK not in spine
    kernel = lab.ip("spine1", "route", "show", "0.0.0.0/0").stdout
    assert "nexthop via %s" % gw1 in kernel and "nexthop via %s" % gw2 in kernel, kernel
    assert lab.learned("spine1", gw1) == {"0.0.0.0/0", "203.0.113.0/24", "203.0.113.250/32"}

    # ToR: the default from the spine, as in host mode; the hypervisor: what
    # the ToR relays (the default, the rack, the infrastructure, the range).
    wait_for(rib_has(lab, "tor-r01", "0.0.0.0/0", ["198.18.0.1"]), "ToR default from the spine")
    assert lab.learned("hv-r01-01", "198.18.1.1") == {"0.0.0.0/0", "198.19.1.0/24", "198.18.1.0/24",
                                                      "198.18.0.0/24", "203.0.113.0/24"}

    # Border: the floating range via both gateways and each gateway's public /32, nothing internal.
    wait_for(rib_has(lab, "border", "203.0.113.0/24", [gw1, gw2]), "floating range at the border")
    for gw, (ip, public) in GW.items():
        assert lab.learned("border", ip) == {"203.0.113.0/24", public + "/32"}, gw
    assert set(lab.rib("border")) == {"203.0.113.0/24", "203.0.113.250/32", "203.0.113.251/32", INTERNET, HIJACK}

    # gw-01 loses its border session: it withdraws its default from the spine;
    # the spine (and the ToR) keep a default through gw-02.
    lab.border_session(gw1, up=False)
    wait_for(lambda: "0.0.0.0/0" not in lab.rib("gw-01"), "gw-01 lost the border's default")
    wait_for(rib_has(lab, "spine1", "0.0.0.0/0", [gw2]), "spine default via gw-02 only")
    assert "0.0.0.0/0" not in lab.learned("spine1", gw1)
    assert lab.learned("spine1", gw1) == {"203.0.113.0/24", "203.0.113.250/32"}  # the session itself stays
    assert lab.rib("tor-r01")["0.0.0.0/0"] == ["198.18.0.1"]
    wait_for(rib_has(lab, "border", "203.0.113.0/24", [gw2]), "floating range at the border via gw-02 only")
    assert "203.0.113.250/32" not in lab.rib("border")

    # The session is back: gw-01 announces its default again.
    lab.border_session(gw1, up=True)
    wait_for(rib_has(lab, "gw-01", "0.0.0.0/0", [BORDER_IP]), "gw-01 default from the border again")
    wait_for(rib_has(lab, "spine1", "0.0.0.0/0", [gw1, gw2]), "spine default via both gateways again")
    wait_for(rib_has(lab, "border", "203.0.113.0/24", [gw1, gw2]), "floating range via both gateways again")

    # gw-01 loses its downlink (the spine shuts the session): it holds no rack
    # any more, so it stops announcing the floating range to the border
    # (conditional advertisement, scanned every 5 s); its public /32 stays.
    spine_cmd = ["vtysh", "--vty_socket", lab.sock("spine1"), "-c", "configure terminal", "-c", "router bgp 65000"]
    start = time.monotonic()
    sh(*spine_cmd, "-c", "neighbor %s shutdown" % gw1)
    wait_for(rib_has(lab, "border", "203.0.113.0/24", [gw2]), "floating range at the border via gw-02 only", 30)
    took = time.monotonic() - start
    print("gw-01 without downlinks: range withdrawn from the border in %.1f s" % took)
    assert "203.0.113.250/32" in lab.rib("border")
    sh(*spine_cmd, "-c", "no neighbor %s shutdown" % gw1)
    wait_for(rib_has(lab, "border", "203.0.113.0/24", [gw1, gw2]), "floating range via gw-01 again", 60)
