"""Tenant limits on a hypervisor (issue 18) with real packets: the DHCP chaddr check in front of the
real dnsmasq, the per-instance connection cap, and the conntrack table's check where the kernel
keeps it read-only.

The topology and inventory of test_firewall_netns (hv1 = hv-r01-01 with vm-a and vm-b, ext
behind core), with ``ocs_fabric.conn_limit`` 6 and vm-b's own ``conn_limit`` 3. hv1 gets its
rendered routes, NAT and filter rules through the real modules, runs the rendered dnsmasq (paths
moved to a scratch directory); the instances get leases with the real dhclient. Forged DHCP
messages are crafted in vm-b's namespace with a raw AF_PACKET socket (Ethernet source: vm-b's
own MAC, so that only the BOOTP ``chaddr`` lies).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from helpers import render, stop_daemonized, write_inventory_dir
from ansible_collections.ocs.l3.plugins.module_utils.dhcp import HOSTS_PATH, LEASE_PATH
from test_firewall_netns import DHCLIENT_CONF, EXT, HOOK, NAT_JUMPS, VMS, Lab, fabric
from test_nat_netns import counter, run_module

DHCP_DROP = "-A OCS-DHCP-MAC -m comment --comment ocs-dhcp-spoof -j DROP"
CAP_RULE = ("-m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr -m comment --comment "
            "ocs-connlimit -j REJECT --reject-with icmp-admin-prohibited")
GATEWAY = "198.19.1.1"
FABRIC_LIMIT, VM_B_LIMIT = 6, 3

# A DHCP client message (RFC 2131) from this namespace's eth0, Ethernet source = its own MAC:
# argv: type (release|decline), chaddr, ciaddr, IP source, IP destination, Ethernet destination,
# requested IP (option 50; "-" none), server identifier (option 54)[, client identifier 01:MAC (option 61)].
FORGE = r"""
import socket, struct, sys
kind, chaddr, ciaddr, src, dst, eth_dst, requested, server = sys.argv[1:9]
mac = lambda text: bytes.fromhex(text.replace(":", ""))
ip = socket.inet_aton
opts = bytes([53, 1, {"release": 7, "decline": 4}[kind], 54, 4]) + ip(server)
if len(sys.argv) > 9:
    opts += bytes([61, 7, 1]) + mac(sys.argv[9])
if requested != "-":
    opts += bytes([50, 4]) + ip(requested)
bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x0c5e1800, 0, 0, ip(ciaddr), bytes(4), bytes(4),
                    bytes(4), mac(chaddr), b"", b"") + bytes([99, 130, 83, 99]) + opts + bytes([255])
udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip(src), ip(dst))
words = sum(struct.unpack("!10H", head))
words = (words & 0xffff) + (words >> 16)
head = head[:10] + struct.pack("!H", ~(words + (words >> 16)) & 0xffff) + head[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
own = s.getsockname()[4]
s.send(mac(eth_dst) + own + b"\x08\x00" + head + udp)
"""
# Opens argv[3] TCP connections to argv[1]:argv[2] one after the other and keeps them open;
# prints "ok" or the error of each, then waits for stdin to close.
HOLD = r"""
import socket, sys
dst, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(count):
    try:
        held.append(socket.create_connection((dst, port), timeout=2))
        print("ok", flush=True)
    except OSError as exc:
        print(type(exc).__name__, exc.errno, flush=True)
print("done", flush=True)
sys.stdin.read()
"""


def write_inventory(path):
    groups, hosts, settings = fabric()
    settings["ocs_fabric"]["conn_limit"] = FABRIC_LIMIT
    for inst in hosts["hv-r01-01"]["ocs_instances"]:
        if inst["name"] == "vm-b":
            inst["conn_limit"] = VM_B_LIMIT
    write_inventory_dir(path, groups, hosts, settings)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("dnsmasq", "dhclient")):
        pytest.fail("this test needs root, dnsmasq and dhclient (make validate installs them)")
    tmp = tmp_path_factory.mktemp("limits")
    write_inventory(tmp / "inv")
    proc = render(str(tmp / "build"), str(tmp / "inv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    t = Lab(tmp)
    t.build = tmp / "build"
    for name, text in (("forge.py", FORGE), ("hold.py", HOLD)):
        (tmp / name).write_text(text)
    try:
        for key in ("core", "ext", "hv1", "vm-a", "vm-b"):
            t.add(key)
        t.x("core", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        t.x("hv1", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        t.x("hv1", "sysctl", "-qw", "net.ipv4.conf.default.proxy_arp=1")
        t.link("core", "c-hv1", "198.18.1.1/25", "hv1", "eth0", "198.18.1.11/25")
        t.link("core", "c-ext", "192.0.2.1/24", "ext", "eth0", EXT + "/24")
        t.ip("ext", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")
        for dst in ("198.19.1.0/24", "203.0.113.0/24"):
            t.ip("core", "route", "add", dst, "via", "198.18.1.11")
        for vm in ("vm-a", "vm-b"):
            t.vm_link(vm)
        res = run_module(t.ns["hv1"], "ocs.l3.ocs_route_table", {"src": str(t.file("hv1", "/etc/ocs-l3/routes.batch"))})
        assert not res.get("failed"), res
        res = run_module(t.ns["hv1"], "ocs.l3.ocs_iptables_chains",
                         {"src": str(t.file("hv1", "/etc/ocs-l3/iptables-nat.rules")), "jumps": NAT_JUMPS})
        assert not res.get("failed"), res
        t.chains("hv1", "/etc/ocs-l3/iptables-filter.rules")
        t.probe_server("ext", 7100)  # keeps each connection open until its client closes it
        yield t
    finally:
        t.close()


class Dhcp:
    """The rendered dnsmasq of hv1 (log and leases in a scratch directory) and dhclient runs."""

    def __init__(self, lab):
        self.lab = lab
        self.work = tempfile.mkdtemp(prefix="ocs-limits-dhcp-")
        os.chmod(self.work, 0o755)  # dnsmasq drops root for nobody
        conf = lab.file("hv1", "/etc/ocs-l3/dnsmasq.conf").read_text()
        for prod, name in ((HOSTS_PATH, "dhcp-hosts"), (LEASE_PATH, "leases")):
            conf = conf.replace(prod, self.path(name))
        shutil.copyfile(lab.file("hv1", HOSTS_PATH), self.path("dhcp-hosts"))
        for name, text, mode in (("dnsmasq.conf", conf, 0o644), ("dhclient.conf", DHCLIENT_CONF, 0o644),
                                 ("hook.sh", HOOK, 0o755)):
            with open(self.path(name), "w") as fh:
                fh.write(text)
            os.chmod(self.path(name), mode)
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.ns["hv1"], "dnsmasq", "-k", "--log-dhcp",
                                      "--log-facility=" + self.path("dnsmasq.log"), "-C", self.path("dnsmasq.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while ":67 " not in lab.x("hv1", "ss", "-H", "-lun").stdout:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "dnsmasq does not listen on 67"
            time.sleep(0.1)

    def path(self, name):
        return os.path.join(self.work, name)

    def log(self):
        try:
            with open(self.path("dnsmasq.log")) as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def leases(self):
        """{mac: ip} of dnsmasq's lease file."""
        try:
            with open(self.path("leases")) as fh:
                return {p[1]: p[2] for p in (ln.split() for ln in fh) if len(p) >= 3}
        except FileNotFoundError:
            return {}

    def settled(self, want, timeout=5):
        """The leases once they are ``want``, or the last read after ``timeout`` (dnsmasq rewrites the file
        after it logs, in place: a read may catch it half-written)."""
        deadline = time.monotonic() + timeout
        while True:
            leases = self.leases()
            if leases == want or time.monotonic() > deadline:
                return leases
            time.sleep(0.05)

    def wait_log(self, text, timeout=5):
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def dhclient(self, vm, client_id=None):
        """One dhclient run in ``vm`` (keeping its lease file): the bound IP, or None. ``client_id``: a MAC
        sent as client identifier ``01:<mac>`` (as NetworkManager and others do)."""
        conf = self.path("dhclient.conf")
        if client_id:
            conf = self.path(vm + "-dhclient.conf")
            with open(conf, "w") as fh:
                fh.write(DHCLIENT_CONF + "send dhcp-client-identifier 1:%s;\n" % client_id)
        out, pidfile = self.path(vm + ".env"), self.path(vm + ".pid")
        if os.path.exists(out):
            os.unlink(out)
        self.lab.x(vm, "dhclient", "-1", "-cf", conf, "-lf", self.path(vm + ".lease"),
                   "-pf", pidfile, "-sf", self.path("hook.sh"), "-e", "OUT=" + out, "eth0", check=False, timeout=60)
        stop_daemonized(pidfile)  # bound: it daemonized to renew
        if not os.path.exists(out):
            return None
        with open(out) as fh:
            return dict(ln.rstrip("\n").split("=", 1) for ln in fh if "=" in ln).get("new_ip_address")

    def forge(self, kind, chaddr, ciaddr="0.0.0.0", src="0.0.0.0", dst="255.255.255.255",
              eth_dst="ff:ff:ff:ff:ff:ff", requested="-", client_id=None):
        """A DHCP message from vm-b's eth0 (its own Ethernet source) claiming ``chaddr``."""
        self.lab.x("vm-b", sys.executable, str(self.lab.tmp / "forge.py"), kind, chaddr, ciaddr, src, dst, eth_dst,
                   requested, GATEWAY, *([client_id] if client_id else []))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def dhcp(lab):
    server = Dhcp(lab)
    yield server
    server.close()


def _tap_mac(lab, tap):
    return lab.ip("hv1", "-o", "link", "show", tap).stdout.split("link/ether ")[1].split()[0]


def test_forged_chaddr_is_dropped_own_dhcp_works_and_without_the_check_it_harms(lab, dhcp, capsys):
    vm_a, vm_b = VMS["vm-a"], VMS["vm-b"]
    mac_a, ip_a, mac_b, ip_b = vm_a[4], vm_a[2], vm_b[4], vm_b[2]
    tap_b_mac = _tap_mac(lab, "tap-b")
    # positive control: both instances get their leases through the chaddr check (broadcast from 0.0.0.0)
    assert dhcp.dhclient("vm-a") == ip_a
    assert dhcp.dhclient("vm-b") == ip_b
    assert dhcp.settled({mac_a: ip_a, mac_b: ip_b}) == {mac_a: ip_a, mac_b: ip_b}

    # vm-b, with its own Ethernet source, claims vm-a's chaddr: a DECLINE (broadcast, from 0.0.0.0) and a
    # RELEASE (unicast from its own fixed IP, ciaddr vm-a's IP): both dropped before dnsmasq, counted
    dropped = counter(lab.save("hv1", "-c", "-t", "filter"), DHCP_DROP)
    dhcp.forge("decline", mac_a, requested=ip_a)
    dhcp.forge("release", mac_a, ciaddr=ip_a, src=ip_b, dst=GATEWAY, eth_dst=tap_b_mac)
    # and a message with vm-b's own chaddr, unicast from its own IP, passes (the renew/release path):
    # dnsmasq logs it, so the two before had their chance to reach it
    dhcp.forge("release", mac_b, ciaddr=ip_b, src=ip_b, dst=GATEWAY, eth_dst=tap_b_mac)
    assert dhcp.wait_log("DHCPRELEASE(tap-b) %s %s" % (ip_b, mac_b)), dhcp.log()
    assert counter(lab.save("hv1", "-c", "-t", "filter"), DHCP_DROP) == dropped + 2
    assert mac_a not in dhcp.log().split("DHCPRELEASE")[-1] and "DHCPDECLINE" not in dhcp.log(), dhcp.log()
    assert dhcp.settled({mac_a: ip_a}) == {mac_a: ip_a}  # vm-a's lease intact; vm-b released its own
    assert dhcp.dhclient("vm-a") == ip_a and dhcp.dhclient("vm-b") == ip_b  # both still served

    # vm-a's lease carries a client identifier 01:<its MAC>; vm-b sends its own chaddr (passes the check)
    # with vm-a's client id: dnsmasq (dhcp-ignore-clid) knows clients by chaddr only, vm-a's lease stays
    assert dhcp.dhclient("vm-a", client_id=mac_a) == ip_a
    dhcp.forge("release", mac_b, ciaddr=ip_a, src=ip_b, dst=GATEWAY, eth_dst=tap_b_mac, client_id=mac_a)
    assert dhcp.wait_log("DHCPRELEASE(tap-b) %s %s" % (ip_a, mac_b)), dhcp.log()  # it reached dnsmasq
    dhcp.forge("decline", mac_b, requested=ip_a, client_id=mac_a)
    assert dhcp.wait_log("DHCPDECLINE(tap-b) %s %s" % (ip_a, mac_b)), dhcp.log()
    time.sleep(0.5)  # a lease dropped now would be written by then
    both = {mac_a: ip_a, mac_b: ip_b}
    assert dhcp.settled(both) == both and "disabling" not in dhcp.log(), dhcp.log()
    assert dhcp.dhclient("vm-b") == ip_b  # vm-b's own DECLINE of a foreign address cost it nothing

    # negative control, once: the check bypassed for vm-b's tap (what OCS-DHCP-MAC checked before: the
    # Ethernet source only). The same forged messages reach dnsmasq and take vm-a's lease and address away.
    bypass = ["OCS-DHCP-MAC", "-i", "tap-b", "-m", "mac", "--mac-source", mac_b, "-j", "RETURN"]
    lab.x("hv1", "iptables", "-w", "-I", bypass[0], "1", *bypass[1:])
    try:
        dhcp.forge("release", mac_a, ciaddr=ip_a, src=ip_b, dst=GATEWAY, eth_dst=tap_b_mac)
        assert dhcp.wait_log("DHCPRELEASE(tap-b) %s %s" % (ip_a, mac_a)), dhcp.log()
        released = dhcp.settled({mac_b: ip_b})
        dhcp.forge("decline", mac_a, requested=ip_a)
        assert dhcp.wait_log("DHCPDECLINE(tap-b) %s %s" % (ip_a, mac_a)), dhcp.log()
        assert dhcp.wait_log("disabling DHCP static address %s" % ip_a), dhcp.log()
        os.unlink(dhcp.path("vm-a.lease"))  # vm-a reboots with no lease: DISCOVER
        denied = dhcp.dhclient("vm-a")
    finally:
        lab.x("hv1", "iptables", "-w", "-D", *bypass)
    with capsys.disabled():
        print("\nnegative control (chaddr check bypassed): leases after forged RELEASE %s; dnsmasq: %s; vm-a's "
              "dhclient then got %s" % (released, [ln.split("dnsmasq", 1)[-1] for ln in dhcp.log().splitlines()
                                                    if "disabling" in ln], denied))
    assert mac_a not in released  # the forged RELEASE dropped vm-a's lease
    assert denied is None, dhcp.log()  # and the forged DECLINE took its address away (dnsmasq: 10 minutes)


def _hold(lab, vm, count):
    """(process, [result per connection]) of ``count`` connections from ``vm`` to ext, kept open."""
    proc = subprocess.Popen(["ip", "netns", "exec", lab.ns[vm], sys.executable, str(lab.tmp / "hold.py"), EXT,
                             "7100", str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = proc.stdout.readline().strip()
        if line in ("done", ""):
            return proc, lines
        lines.append(line)


def _release(proc):
    proc.stdin.close()
    proc.wait(10)


def test_connection_cap_per_instance_and_fabric_wide(lab):
    capped = lambda: counter(lab.save("hv1", "-c", "-t", "filter"),
                             "-A OCS-CONNLIMIT -s 198.19.1.11/32 -i tap-b " + CAP_RULE % VM_B_LIMIT)
    default = lambda: counter(lab.save("hv1", "-c", "-t", "filter"), "-A OCS-CONNLIMIT " + CAP_RULE % FABRIC_LIMIT)
    before, before_default = capped(), default()
    b_proc, b = _hold(lab, "vm-b", VM_B_LIMIT + 3)
    try:
        # vm-b's own cap (3): three connections stand, the rest fail at once (ICMP admin-prohibited)
        assert b[:VM_B_LIMIT] == ["ok"] * VM_B_LIMIT and all(r.startswith("OSError 113") for r in b[VM_B_LIMIT:]), b
        assert capped() >= before + 3
        # the neighbour, meanwhile: new connections succeed, up to the fabric's cap (6), then it is capped too
        a_proc, a = _hold(lab, "vm-a", FABRIC_LIMIT + 2)
        try:
            assert a[:FABRIC_LIMIT] == ["ok"] * FABRIC_LIMIT and len(a) == FABRIC_LIMIT + 2, a
            assert all(r.startswith("OSError 113") for r in a[FABRIC_LIMIT:]), a
            assert default() >= before_default + 2
        finally:
            _release(a_proc)
    finally:
        _release(b_proc)
    # closed connections (TIME_WAIT) no longer count: vm-b opens its three again
    time.sleep(0.5)
    b_proc, b = _hold(lab, "vm-b", VM_B_LIMIT)
    _release(b_proc)
    assert b == ["ok"] * VM_B_LIMIT, b


def test_conntrack_size_is_only_checked_where_the_kernel_keeps_it(lab):
    """In a non-init network namespace nf_conntrack_max is read-only (mode 0444: writing fails with
    EACCES): the module reports, warns or fails (readonly), and never writes."""
    path = "/proc/sys/net/netfilter/nf_conntrack_max"
    write = lab.x("hv1", "sh", "-c", "echo 1000 > " + path, check=False)
    assert write.returncode != 0 and "Permission denied" in write.stderr, write
    current = int(lab.x("hv1", "cat", path).stdout)
    rendered = yaml.safe_load(lab.file("hv1", "/etc/ocs-l3/expected.json").read_text())["expected"]["conntrack"]
    assert rendered == {"max": 262144, "buckets": 65536}  # the floor: 65536 + 6 + 3 is below it
    fits = run_module(lab.ns["hv1"], "ocs.l3.ocs_conntrack", {"max": current})
    assert not fits.get("failed") and not fits["changed"] and not fits["settable"] and fits["short"] == [], fits
    big = run_module(lab.ns["hv1"], "ocs.l3.ocs_conntrack", {"max": current + 1})
    assert not big.get("failed") and not big["changed"], big
    assert big["short"] == ["nf_conntrack_max %d < %d" % (current, current + 1)]
    assert any("smaller than wanted" in w for w in big.get("warnings", [])), big
    strict = run_module(lab.ns["hv1"], "ocs.l3.ocs_conntrack", {"max": current + 1, "readonly": "fail"})
    assert strict.get("failed") and "may not set them" in strict["msg"], strict
    assert int(lab.x("hv1", "cat", path).stdout) == current
