"""DHCPv6 and router advertisements with the real dnsmasq and a real ``dhclient -6``, in network
namespaces (IPv6 part 1, docs/ipv6.md).

A "hypervisor" namespace runs dnsmasq with the configuration and host file that dhcp.py computes
for hv-r01-01 of the dual-stack test fabric (tests/fabric_data.py; only the file paths moved to a
scratch directory). Each instance is a namespace joined by a veth pair: the host end named like the
instance's interface, the inner end carrying its MAC. The taps get by hand what routes.batch is to
carry: the IPv4 gateway (noprefixroute) and /32, the link-local router address fe80::1, the
subnet's global gateway address (noprefixroute) and the instance's /128. Each client has a
DUID-UUID (type 4, no MAC in it): dnsmasq must find it by the MAC of its packets. Nothing is bound
in the root namespace.
"""

import copy
import os
import sys
import shutil
import time
import uuid

import pytest

from fabric_data import BASE, dual_stack
from helpers import DnsmasqLab, run_module, sh, stop_daemonized
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa, ntoa6
from ansible_collections.ocs.l3.plugins.module_utils.artifact import text
from ansible_collections.ocs.l3.plugins.module_utils import agent
from ansible_collections.ocs.l3.plugins.module_utils.constants import GATEWAY6_LINK_LOCAL, RA_ROUTER_LIFETIME
from ansible_collections.ocs.l3.plugins.module_utils.dhcp import config_lines, host_lines
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.model import gateway6_of

HV = "hv-r01-01"
NEW = {"name": "vm-n", "mac": "02:00:00:00:01:2e", "ip": "198.19.1.30", "ip6": "2001:db8:0:1::1e"}
STRANGER_MAC = "02:00:00:00:01:99"
DHCLIENT_CONF = """timeout 5;
initial-interval 1;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu,
        dhcp6.name-servers, dhcp6.domain-search;
"""
# Solicit a router advertisement from eth0 and print the first one that comes (hex, ICMPv6 message).
RA_CAPTURE = """import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.settimeout(15)
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex("eth0")))
while True:
    data = s.recv(2000)
    if data[0] == 134:
        print(data.hex())
        break
"""
# dhclient's hook: record what a bound lease carries; a DHCPv6 address is also put on the interface
# (as the stock dhclient-script does, which is not run here: it would rewrite the root resolv.conf).
HOOK = """#!/bin/sh
case "$reason" in
BOUND|REBOOT|RENEW|REBIND) env | grep -E '^(reason|new_[a-z0-9_]+)=' | sort > "$OUT" ;;
BOUND6|REBOOT6|RENEW6|REBIND6) env | grep -E '^(reason|new_[a-z0-9_]+)=' | sort > "$OUT"
  ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" ;;
esac
exit 0
"""


def _fabric(extra=(), **fabric):
    """The dual-stack test fabric, hv-r01-01 with the instances ``extra`` added; ``fabric``: more
    ocs_fabric settings."""
    data = dual_stack(copy.deepcopy(BASE))
    data["hostvars"][HV]["ocs_instances"].extend(dict(i) for i in extra)
    data["fabric"].update(fabric)
    return build(data)


def _duid_line(mac):
    """A dhclient lease file line fixing the client's DUID: a DUID-UUID, no MAC in it."""
    duid = b"\x00\x04" + uuid.uuid5(uuid.NAMESPACE_DNS, mac).bytes
    return 'default-duid "%s";\n' % "".join("\\%03o" % b for b in duid), ":".join("%02x" % b for b in duid)


class Lab(DnsmasqLab):
    """The hypervisor namespace (forwarding IPv6) with dnsmasq on dhcp.py's files of a fabric,
    instance namespaces, dhclients."""

    def __init__(self):
        super().__init__("o6d", "o6d%s-hv", [("dhclient.conf", DHCLIENT_CONF, 0o644), ("hook.sh", HOOK, 0o755),
                                             ("ra.py", RA_CAPTURE, 0o644)])
        self.clients = []  # pid files of dhclients that may still run
        self.x(self.hv, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

    def files(self, fab):
        return text(config_lines(fab, fab.hosts[HV])), text(host_lines(fab, fab.hosts[HV]))

    @staticmethod
    def x(ns, *cmd, **kw):
        return sh("ip", "netns", "exec", ns, *cmd, **kw)

    def add_instance(self, key, ifname, mac, ip, ip6, gateway_ip, net6):
        """An instance namespace behind tap ``ifname``, the tap set up as routes.batch will."""
        ns = "o6d%s-%s" % (self.id, key)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.x(ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0", "net.ipv6.conf.default.accept_ra=1")
        sh("ip", "-n", self.hv, "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        self.x(ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        hv = ("ip", "-n", self.hv)
        sh(*hv, "link", "set", ifname, "up")
        sh(*hv, "addr", "add", "%s/%d" % (ntoa(gateway_ip), 24), "dev", ifname, "noprefixroute")
        # nodad: usable at once. Otherwise dnsmasq may send the tap's first RA (once the global
        # address below appears) from the tap's EUI-64 link-local, the guest's default route then.
        sh(*hv, "-6", "addr", "add", GATEWAY6_LINK_LOCAL + "/64", "dev", ifname, "nodad")
        sh(*hv, "-6", "addr", "add", "%s/%d" % (ntoa6(gateway6_of(net6)), net6.prefixlen), "dev", ifname,
           "noprefixroute")
        if ip:
            sh(*hv, "route", "add", ip + "/32", "dev", ifname)
        if ip6:
            sh(*hv, "-6", "route", "add", ip6 + "/128", "dev", ifname)
        self.settle(self.hv)
        self.settle(ns)
        return ns

    def settle(self, ns, timeout=10):
        """Wait until duplicate address detection is over in ``ns`` (dhclient -6 binds to the
        link-local address; dnsmasq sends RAs from a non-tentative one)."""
        deadline = time.monotonic() + timeout
        while sh("ip", "-n", ns, "-6", "addr", "show", "tentative").stdout.strip():
            assert time.monotonic() < deadline, sh("ip", "-n", ns, "-6", "addr").stdout
            time.sleep(0.1)

    def dhclient(self, ns, v6, timeout=20):
        """Run dhclient once in ``ns`` (-6 or -4, own lease and pid files); (rc, output, lease vars)."""
        fam = "6" if v6 else "4"
        out, lease_file, pid = (self.path("%s.%s.%s" % (ns, fam, ext)) for ext in ("env", "lease", "pid"))
        if os.path.exists(out):
            os.unlink(out)
        self.clients.append(pid)
        proc = self.x(ns, "timeout", str(timeout), "dhclient", "-" + fam, "-1", "-v", "-cf", self.path("dhclient.conf"),
                      "-lf", lease_file, "-pf", pid, "-sf", self.path("hook.sh"), "-e", "OUT=" + out, "eth0",
                      check=False, timeout=timeout + 10)
        stop_daemonized(pid)  # once bound it daemonizes to renew: not here
        lease = {}
        if os.path.exists(out):
            with open(out) as fh:
                lease = dict(ln.rstrip("\n").split("=", 1) for ln in fh if "=" in ln)
        return proc.returncode, proc.stderr + proc.stdout, lease

    def close(self):
        for pid in self.clients:
            stop_daemonized(pid)
        super().close()


@pytest.fixture
def lab(request):
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "dnsmasq", "dhclient", "timeout")):
        pytest.fail("this test needs root, iproute2, dnsmasq and dhclient (make validate installs them)")
    lab = Lab()
    request.addfinalizer(lab.close)
    return lab


def _start_instance(lab, key, inst, net6):
    """The instance's namespace, its DUID-UUID written into its DHCPv6 lease file; (ns, duid text)."""
    ns = lab.add_instance(key, inst.interface, inst.mac, ntoa(inst.ip), ntoa6(inst.ip6), inst.gateway_ip, net6)
    line, duid = _duid_line(inst.mac)
    lab.path("%s.6.lease" % ns, line)
    return ns, duid


def _global6(lab, ns):
    """The global IPv6 addresses (with prefix length) of the instance's eth0."""
    out = sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global").stdout
    return [ln.split()[3] for ln in out.splitlines()]


def _assert_v6(lab, ns, inst, duid):
    """dhclient -6 gets exactly the instance's address (a /128), found by MAC, not by DUID."""
    rc, out, lease = lab.dhclient(ns, v6=True)
    ip6 = ntoa6(inst.ip6)
    assert rc == 0, out + lab.log()
    assert lease.get("reason") == "BOUND6" and lease["new_ip6_address"] == ip6, lease
    assert lease["new_ip6_prefixlen"] == "128", lease
    assert _global6(lab, ns) == [ip6 + "/128"]
    assert "DHCPREPLY(%s) %s %s %s" % (inst.interface, ip6, duid, inst.name) in lab.log(), lab.log()
    assert "client MAC address: %s" % inst.mac in lab.log()
    lab.settle(ns)


def _wait_default_route(ns, timeout=20):
    """The default route the RA gave the instance, one line (polls: the first RA may come a few
    seconds late); a second router (the tap's EUI-64 link-local) would show as a second line."""
    deadline = time.monotonic() + timeout
    while True:
        route = sh("ip", "-n", ns, "-6", "route", "show", "default").stdout.strip()
        if route or time.monotonic() > deadline:
            assert len(route.splitlines()) <= 1, route
            return route
        time.sleep(0.2)


def test_rendered_ipv6_config_passes_dnsmasq_test(tmp_path):
    fab = _fabric()
    for host in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        path = tmp_path / (host + ".conf")
        path.write_text(text(config_lines(fab, fab.hosts[host])))
        proc = sh("dnsmasq", "--test", "-C", str(path), check=False)
        assert proc.returncode == 0, (host, proc.stderr)
        assert "enable-ra" in path.read_text()


def test_dhcpv6_and_ra_give_each_instance_its_address_and_route(lab):
    fab = _fabric()
    added = _fabric([NEW])
    hv = fab.hosts[HV]
    assert config_lines(added, added.hosts[HV]) == config_lines(fab, hv)  # a new instance: reload only
    net6 = hv.rack.instance_subnets6[0]
    (a, b) = sorted(hv.instances, key=lambda i: i.ip)
    assert all(i.ip6 is not None for i in (a, b))
    ns_a, duid_a = _start_instance(lab, "a", a, net6)
    ns_b, duid_b = _start_instance(lab, "b", b, net6)
    stranger = lab.add_instance("x", "tapstranger", STRANGER_MAC, None, None, a.gateway_ip, net6)
    pid = lab.start_dnsmasq(fab)

    # --- the RA: default route via fe80::1 (the tap's router address), no on-link prefix, the fabric MTU
    for ns in (ns_a, ns_b):
        route = _wait_default_route(ns)
        assert route.startswith("default via %s dev eth0 proto ra" % GATEWAY6_LINK_LOCAL), route + lab.log()
        assert " mtu 1450 " in route, route
        assert sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv6.conf.eth0.forwarding").stdout.strip() == "0"
    assert "RTR-ADVERT" in lab.log()

    # --- DHCPv6: each instance exactly its fixed address; the IPv4 lease in the same run
    for ns, inst, duid in ((ns_a, a, duid_a), (ns_b, b, duid_b)):
        _assert_v6(lab, ns, inst, duid)
        rc, out, lease = lab.dhclient(ns, v6=False)
        assert rc == 0 and lease.get("reason") == "BOUND", out
        assert (lease["new_ip_address"], lease["new_routers"]) == (ntoa(inst.ip), "198.19.1.1"), lease
    routes = sh("ip", "-n", ns_a, "-6", "route").stdout
    assert net6.text not in routes, routes  # off-link: the /64 is not on the link
    assert "option: 23 dns-server" not in lab.log()  # no DNS over DHCPv6 (port=0, no IPv6 servers)

    # --- instance to instance through the hypervisor (routed, never on-link)
    ping = sh("ip", "netns", "exec", ns_a, "ping", "-6", "-c", "2", "-W", "3", ntoa6(b.ip6), check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    neigh = sh("ip", "-n", ns_a, "-6", "neigh", "show", "dev", "eth0").stdout
    assert ntoa6(b.ip6) not in neigh, neigh

    # --- a MAC not in the host file: an RA, but no address
    rc, out, lease = lab.dhclient(stranger, v6=True, timeout=6)
    assert rc != 0 and lease == {} and _global6(lab, stranger) == [], out
    assert "DHCPREPLY(tapstranger)" not in lab.log()

    # --- a new instance: SIGHUP, same PID, served at once
    new = next(i for i in added.hosts[HV].instances if i.name == NEW["name"])
    ns_n, duid_n = _start_instance(lab, "n", new, net6)
    lab.sighup(added)
    assert lab.dnsmasq.poll() is None and lab.dnsmasq.pid == pid
    assert pid in [int(p) for p in sh("ip", "netns", "pids", lab.hv).stdout.split()]
    _assert_v6(lab, ns_n, new, duid_n)
    assert _wait_default_route(ns_n).startswith("default via %s dev eth0 proto ra" % GATEWAY6_LINK_LOCAL)
    ping = sh("ip", "netns", "exec", ns_n, "ping", "-6", "-c", "1", "-W", "3", ntoa6(a.ip6), check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    with open(lab.path("leases")) as fh:
        leases = fh.read()
    for inst in (a, b, new):
        assert " %s %s " % (ntoa6(inst.ip6), inst.name) in leases, leases


def _lease_lines6(lab):
    """The DHCPv6 lease lines of dnsmasq's lease file (``expiry iaid ip6 name duid``), by ip6."""
    with open(lab.path("leases")) as fh:
        lines = [ln.split() for ln in fh if ln.strip()]
    return {parts[2]: parts for parts in lines if len(parts) == 5 and ":" in parts[2]}


def test_a_removed_instances_dhcpv6_lease_is_released(lab):
    """ocs_dhcp_release with dhcp_release6: after the host file loses vm-b (and its tap), its DHCPv6
    lease leaves dnsmasq's lease file; vm-a's stays; a second run changes nothing."""
    fab = _fabric()
    hv = fab.hosts[HV]
    net6 = hv.rack.instance_subnets6[0]
    (a, b) = sorted(hv.instances, key=lambda i: i.ip)
    ns_a, duid_a = _start_instance(lab, "a", a, net6)
    ns_b, duid_b = _start_instance(lab, "b", b, net6)
    lab.start_dnsmasq(fab)
    for ns, inst, duid in ((ns_a, a, duid_a), (ns_b, b, duid_b)):
        _assert_v6(lab, ns, inst, duid)
    leases = _lease_lines6(lab)
    assert set(leases) == {ntoa6(a.ip6), ntoa6(b.ip6)}, leases
    assert leases[ntoa6(b.ip6)][3:] == [b.name, duid_b], leases  # the lease names the client's DUID

    removed = build(_without(b.name))
    content = text(host_lines(removed, removed.hosts[HV]))
    sh("ip", "-n", lab.hv, "link", "del", b.interface)  # the instance is gone, its tap with it: released on
    sh("ip", "netns", "del", ns_b)  # vm-a's tap (deleted here: a namespace's veth goes only once it is freed)
    lab.namespaces.remove(ns_b)
    lab.sighup(removed)
    args = {"content": content, "leasefile": lab.path("leases"), "prefix": "tap", "release6": True}
    dry = run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args, check=True)
    assert dry["changed"] and dry["released"] == ["%s %s %s" % (ntoa6(b.ip6), leases[ntoa6(b.ip6)][1], a.interface)]
    assert ntoa6(b.ip6) in _lease_lines6(lab)  # check mode released nothing
    res = run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args)
    assert res["changed"] and res["released"] == dry["released"] and res["not_released"] == [], res
    assert set(_lease_lines6(lab)) == {ntoa6(a.ip6)}, _lease_lines6(lab)
    assert "DHCPRELEASE(%s) %s" % (a.interface, duid_b) in lab.log() and "release received" in lab.log(), lab.log()
    again = run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args)
    assert not again["changed"] and again["unreachable"] == [], again


def _without(name):
    data = dual_stack(copy.deepcopy(BASE))
    insts = data["hostvars"][HV]["ocs_instances"]
    data["hostvars"][HV]["ocs_instances"] = [i for i in insts if i["name"] != name]
    return data


def _ra_options(hexdata):
    """{option type: [option bodies]} of a router advertisement (ICMPv6 message, hex)."""
    data, found, at = bytes.fromhex(hexdata), {}, 16
    while at + 2 <= len(data) and data[at + 1]:
        end = at + 8 * data[at + 1]
        found.setdefault(data[at], []).append(data[at + 2:end])
        at = end
    return found


def test_ipv6_dns_servers_reach_the_guest_by_dhcpv6_and_ra(lab):
    """dns_servers6 and the domain: in the DHCPv6 reply (options 23, 24) and in the RA (RDNSS 25,
    DNSSL 31), as a guest receives them."""
    servers = ["2001:db8:ffff::53", "2001:db8::35"]
    fab = _fabric(dns_servers6=servers)
    hv = fab.hosts[HV]
    a = sorted(hv.instances, key=lambda i: i.ip)[0]
    ns_a, duid_a = _start_instance(lab, "a", a, hv.rack.instance_subnets6[0])
    lab.start_dnsmasq(fab)
    assert _wait_default_route(ns_a).startswith("default via %s" % GATEWAY6_LINK_LOCAL)
    ra = lab.x(ns_a, sys.executable, lab.path("ra.py"), timeout=30).stdout.strip()
    options = _ra_options(ra)
    rdnss = options[25][0]
    assert [ntoa6(int.from_bytes(rdnss[6 + 16 * i:22 + 16 * i], "big")) for i in range(2)] == servers, ra
    assert int.from_bytes(rdnss[2:6], "big") > 0  # a lifetime: the servers are in use
    assert b"\x05cloud\x03ocs\x07example\x00" in options[31][0], ra  # DNSSL: the domain
    rc, out, lease = lab.dhclient(ns_a, v6=True)
    assert rc == 0 and lease.get("reason") == "BOUND6", out + lab.log()
    assert lease["new_dhcp6_name_servers"].split() == servers, lease
    assert lease["new_dhcp6_domain_search"].split() == ["cloud.ocs.example."], lease


# The agent's router advertisement on each tap named, as host_agent.Agent.advertise sends it: the
# RA settings of the rendered agent.conf (argv[1]) through the host's parser.
AGENT_RA = """import sys
from ansible_collections.ocs.l3.plugins.module_utils.host_agent import RaSocket, router_advertisement
from ansible_collections.ocs.l3.plugins.module_utils.host_state import parse_config
conf = parse_config(open(sys.argv[1]).read(), sys.argv[1])
ra = {k: v for k, v in conf.items() if k.startswith("ra_")}
sock = RaSocket()
for tap in sys.argv[2:]:
    sock.send(tap, router_advertisement(sock.mac(tap), ra))
"""


def test_dnsmasq_refreshes_one_tap_of_a_range_the_agent_every_tap(lab):
    """The bug the agent's RAs fix: dnsmasq's periodic RAs (interval cut to 4 s here) reach one tap
    per range, so the other guest's default route, once gone (its router lifetime over), never
    comes back; the agent's RA brings both back, with the full router lifetime."""
    fab = _fabric(dns_servers6=["2001:db8:ffff::53"])
    hv = fab.hosts[HV]
    net6 = hv.rack.instance_subnets6[0]
    (a, b) = sorted(hv.instances, key=lambda i: i.ip)
    spaces = [_start_instance(lab, key, inst, net6)[0] for key, inst in (("a", a), ("b", b))]
    files = lab.files
    lab.files = lambda f: (files(f)[0].replace(",600,%d\n" % RA_ROUTER_LIFETIME, ",4,%d\n" % RA_ROUTER_LIFETIME),
                           files(f)[1])
    lab.start_dnsmasq(fab)
    assert ",4,%d\n" % RA_ROUTER_LIFETIME in open(lab.path("dnsmasq.conf")).read()
    for ns in spaces:  # the guests' solicitations at link up: answered on each tap
        assert _wait_default_route(ns).startswith("default via %s" % GATEWAY6_LINK_LOCAL), lab.log()
    for ns in spaces:  # as when the router lifetime ran out
        sh("ip", "-n", ns, "-6", "route", "del", "default")
    time.sleep(25)  # dnsmasq's first minute: an RA every 5-20 s, then every 3-4 s
    back = [ns for ns in spaces if sh("ip", "-n", ns, "-6", "route", "show", "default").stdout.strip()]
    assert len(back) == 1, (back, lab.log())  # one tap of the range got the periodic RAs, the other none
    assert lab.log().count("RTR-ADVERT(%s)" % a.interface) + lab.log().count("RTR-ADVERT(%s)" % b.interface) >= 3

    conf, = agent.artifacts(fab, hv)
    path = lab.path("agent.conf", conf.vars["_ocs_agent_config_text"])
    for ns in spaces:  # and the MTU back to the link's: the agent's RA must set both again
        sh("ip", "-n", ns, "-6", "route", "flush", "default", check=False)
        lab.x(ns, "sysctl", "-qw", "net.ipv6.conf.eth0.mtu=1500")
    res = lab.x(lab.hv, sys.executable, "-c", AGENT_RA, path, a.interface, b.interface,
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)), check=False)
    assert res.returncode == 0, res.stderr
    for ns in spaces:
        route = _wait_default_route(ns, timeout=5)
        assert route.startswith("default via %s dev eth0 proto ra" % GATEWAY6_LINK_LOCAL), route
        assert lab.x(ns, "sysctl", "-n", "net.ipv6.conf.eth0.mtu").stdout.strip() == "1450"
        expires = int(route.split(" expires ")[1].split("sec")[0])
        assert RA_ROUTER_LIFETIME - 10 <= expires <= RA_ROUTER_LIFETIME, route
