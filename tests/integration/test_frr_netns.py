"""Real FRR (zebra, staticd, bgpd) per host in network namespaces.

A spine, a ToR and two hypervisors of the test fabric (hv-r01-02 dual-homed),
wired with veth pairs and a bridge, each running its own daemons with private
vty and zebra sockets. Configurations are the ones ``ocs_l3.frr`` computes,
applied by the role's own module (``ocs_frr_reload``: frr-reload.py, then
soft-in clears). Shows: sessions Established, exactly the owned prefixes at
each tier, a prefix a hypervisor does not own stopped at its ToR, and an
added instance reaching the spine with no session reset. Every process and
namespace is removed afterwards.
"""

import copy
import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from helpers import BIN, ROOT, sh


from fabric_data import BASE  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines  # noqa: E402

MODULE = os.path.join(ROOT, "plugins", "modules", "ocs_frr_reload.py")
LAB = ("spine1", "tor-r01", "hv-r01-01", "hv-r01-02")
DAEMONS = ("zebra", "staticd", "bgpd")
HEADER = "#\n# Managed by ocs-l3 (Ansible)\n#\n"  # as the template prints it


def lab_data():
    """The test fabric without the hosts the lab does not run."""
    data = copy.deepcopy(BASE)
    data["groups"] = {"spines": ["spine1"], "tors": ["tor-r01"], "hypervisors": ["hv-r01-01", "hv-r01-02"],
                      "nat_gateways": []}
    data["racks"].pop("r02")
    data["fabric"]["border_peers"] = []
    data["hostvars"]["spine1"].pop("ocs_uplinks", None)  # its border link: no border here
    for name in ("tor-r02", "hv-r02-01", "gw-01"):
        data["hostvars"].pop(name)
    return data


class Lab:
    def __init__(self, hosts=LAB):
        self.tag = uuid.uuid4().hex[:6]
        self.run = "/run/ocs-frr-%s" % self.tag
        self.ns = {h: "ocs-f%s-%s" % (self.tag, h) for h in hosts}
        self.pids = []

    def sock(self, host):
        return os.path.join(self.run, host)

    def ip(self, host, *args):
        return sh("ip", "-n", self.ns[host], *args)

    def veth(self, a, a_if, b, b_if):
        tmp = "v%s" % uuid.uuid4().hex[:8]
        sh("ip", "link", "add", tmp, "type", "veth", "peer", "name", tmp + "b")
        sh("ip", "link", "set", tmp, "netns", self.ns[a], "name", a_if)
        sh("ip", "link", "set", tmp + "b", "netns", self.ns[b], "name", b_if)
        self.ip(a, "link", "set", a_if, "up")
        self.ip(b, "link", "set", b_if, "up")

    def instances_up(self):
        """Each instance of ``self.instances`` ({name: (hypervisor, Instance)}) in its own namespace:
        the tap named as the fabric says, its fixed address in the rack subnet, the gateway as default."""
        for name, (hv, inst) in self.instances.items():
            self.veth(hv, inst.interface, name, "eth0")
            self.ip(name, "addr", "add", "%s/%d" % (ntoa(inst.ip), inst.subnet.prefixlen), "dev", "eth0")
            self.ip(name, "route", "add", "default", "via", ntoa(inst.gateway_ip))

    def namespaces(self):
        """Every host's namespace, and the FRR run and socket directories."""
        os.makedirs(self.run)
        shutil.chown(self.run, "frr", "frr")
        for host, ns in self.ns.items():
            sh("ip", "netns", "add", ns)
            self.ip(host, "link", "set", "lo", "up")
            os.makedirs(self.sock(host))
            shutil.chown(self.sock(host), "frr", "frr")

    def build(self):
        self.namespaces()
        # spine eth0 -- tor eth0 (198.18.0.0/24); tor "eth1" is a bridge for the
        # first /25 (both hypervisors' eth0); tor eth2 -- hv-r01-02 eth1.
        self.veth("spine1", "eth0", "tor-r01", "eth0")
        self.ip("spine1", "addr", "add", "198.18.0.1/24", "dev", "eth0")
        self.ip("tor-r01", "addr", "add", "198.18.0.11/24", "dev", "eth0")
        self.ip("tor-r01", "link", "add", "eth1", "type", "bridge")
        self.ip("tor-r01", "addr", "add", "198.18.1.1/25", "dev", "eth1")
        self.ip("tor-r01", "link", "set", "eth1", "up")
        for i, hv in enumerate(("hv-r01-01", "hv-r01-02")):
            self.veth(hv, "eth0", "tor-r01", "p%d" % i)
            self.ip("tor-r01", "link", "set", "p%d" % i, "master", "eth1")
        self.ip("hv-r01-01", "addr", "add", "198.18.1.11/25", "dev", "eth0")
        self.ip("hv-r01-02", "addr", "add", "198.18.1.12/25", "dev", "eth0")
        self.veth("hv-r01-02", "eth1", "tor-r01", "eth2")
        self.ip("hv-r01-02", "addr", "add", "198.18.1.140/25", "dev", "eth1")
        self.ip("tor-r01", "addr", "add", "198.18.1.129/25", "dev", "eth2")
        for host in LAB:
            self.start(host)

    def start(self, host):
        d = self.sock(host)
        for daemon in DAEMONS:
            conf = os.path.join(d, "%s.conf" % daemon)
            open(conf, "w").close()
            shutil.chown(conf, "frr", "frr")
            pidfile = os.path.join(d, "%s.pid" % daemon)
            sh("ip", "netns", "exec", self.ns[host], "/usr/lib/frr/%s" % daemon, "-d", "-f", conf, "-i", pidfile,
               "-z", os.path.join(d, "zserv.api"), "--vty_socket", d, "-A", "127.0.0.1")
            wait_for(lambda: os.path.exists(pidfile), "%s %s started" % (host, daemon), 20)
            with open(pidfile) as fh:
                self.pids.append(int(fh.read().strip()))

    def stop(self):
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.run, ignore_errors=True)

    # --- state --------------------------------------------------------------
    def routes(self, fab, host):
        """Install the host's kernel routes as the routes concern renders them
        (instance taps as veth pairs): what `network` statements rely on."""
        lines = host_lines(fab, fab.hosts[host])
        have = set(self.ip(host, "-o", "link", "show").stdout.split())
        for ln in lines:
            if " dev tap" in ln:
                tap = ln.split(" dev ")[1].split()[0]
                if tap + ":" not in have and tap + "@" not in " ".join(have):
                    self.ip(host, "link", "add", tap, "type", "veth", "peer", "name", "i" + tap[3:14])
                    self.ip(host, "link", "set", tap, "up")
                    self.ip(host, "link", "set", "i" + tap[3:14], "up")
                    have = set(self.ip(host, "-o", "link", "show").stdout.split())
        subprocess.run(["ip", "-n", self.ns[host], "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       text=True, check=True, capture_output=True)

    def configure(self, fab, host, extra=(), **module_args):
        path = os.path.join(self.sock(host), "frr.conf")
        with open(path, "w") as fh:
            fh.write(HEADER + "\n".join(config_lines(fab, fab.hosts[host]) + list(extra)) + "\n")
        return reload_module(path, self.sock(host), **module_args)

    def vtysh(self, host, cmd):
        return sh("vtysh", "--vty_socket", self.sock(host), "-c", cmd).stdout

    def json(self, host, cmd):
        return json.loads(self.vtysh(host, cmd + " json"))

    def rib(self, host):
        """{prefix: sorted next hops} of BGP best/multipath routes."""
        out = {}
        for prefix, paths in self.json(host, "show bgp ipv4 unicast")["routes"].items():
            hops = sorted(nh["ip"] for p in paths if p.get("bestpath") or p.get("multipath")
                          for nh in p.get("nexthops", []))
            out[prefix] = hops
        return out

    def peers(self, host):
        return self.json(host, "show bgp ipv4 unicast summary")["peers"]

    def established(self, host):
        return {k for k, v in self.peers(host).items() if v["state"] == "Established"}

    def connections(self, host):
        return {k: v["connectionsEstablished"] for k, v in self.json(host, "show bgp neighbors").items()}


def reload_module(src, sock, **extra):
    """Run the role's reload module as Ansible would (args file), return its result."""
    args = os.path.join(os.path.dirname(src), "args.json")
    with open(args, "w") as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(src=src, vty_socket=sock, **extra)}, fh)
    proc = subprocess.run([os.path.join(BIN, "python"), MODULE, args], capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result
    return result


def wait_for(pred, what, timeout=120, interval=0.5):
    """Poll every ``interval`` seconds until ``pred()`` is true (convergence;
    a bound only where a caller says so)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = pred()
            if last:
                return last
        except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(interval)
    pytest.fail("gave up waiting for %s (last: %r)" % (what, last))


@pytest.fixture
def lab():
    if os.geteuid() != 0 or not shutil.which("vtysh") or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr and frr-pythontools (make validate installs them)")
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


def converge(lab, fab):
    want = {"spine1": {"198.18.0.11"}, "tor-r01": {"198.18.0.1", "198.18.1.11", "198.18.1.12", "198.18.1.140"},
            "hv-r01-01": {"198.18.1.1"}, "hv-r01-02": {"198.18.1.1", "198.18.1.129"}}
    for host in LAB:  # top down, as site.yml does
        lab.routes(fab, host) if host != "spine1" else None
        # A hypervisor's uplinks (the ToR, configured just before): the module's own wait, as the role's handler
        # asks for it; the sessions are up the moment it returns (not after a poll of the test's own).
        uplinks = sorted(want[host]) if host.startswith("hv-") else []
        first = lab.configure(fab, host, established=uplinks, wait_established=60 if uplinks else 0)
        assert first["changed"], first
        if uplinks:
            assert first["not_established"] == [] and lab.established(host) == want[host], (host, first)
    for host, peers in want.items():
        wait_for(lambda: lab.established(host) == peers, "%s sessions Established" % host)


def test_fabric_policies_filtering_and_hitless_instance_add(lab):
    data = lab_data()
    fab = build(data)
    converge(lab, fab)

    # Second apply: nothing to do, nothing reloaded.
    for host in LAB:
        again = lab.configure(fab, host)
        assert not again["changed"], (host, again)
    # Unchanged: the module still reports the sessions (FRR may just have restarted with this file).
    same = lab.configure(fab, "hv-r01-01", established=["198.18.1.1", "eth0"], wait_established=5)
    assert not same["changed"] and same["not_established"] == []

    # ToR: each hypervisor's /32s (ECMP over hv-r01-02's two links), nothing else from them.
    hv1 = ["198.19.1.10/32", "198.19.1.11/32", "203.0.113.11/32", "203.0.113.101/32"]
    hv2 = ["198.19.1.12/32", "203.0.113.12/32", "203.0.113.102/32"]
    tor = wait_for(lambda: (lambda r: r if set(hv1 + hv2) <= set(r) else None)(lab.rib("tor-r01")), "ToR routes")
    assert all(tor[p] == ["198.18.1.11"] for p in hv1)
    wait_for(lambda: all(lab.rib("tor-r01")[p] == ["198.18.1.12", "198.18.1.140"] for p in hv2), "ToR ECMP")

    # Spine: the rack's aggregates (instance subnet, host subnet), the rack's
    # floating/public /32s, its own link network and its aggregate of the
    # floating range; no instance /32 left the rack.
    want_spine = {"198.19.1.0/24", "198.18.1.0/24", "198.18.1.0/25", "198.18.1.128/25", "203.0.113.11/32",
                  "203.0.113.12/32", "203.0.113.101/32", "203.0.113.102/32", "198.18.0.0/24", "203.0.113.0/24"}
    spine = wait_for(lambda: (lambda r: r if set(r) == want_spine else None)(lab.rib("spine1")), "spine routes")
    assert spine["198.19.1.0/24"] == ["198.18.0.11"] and spine["198.18.1.0/24"] == ["198.18.0.11"]

    # Hypervisors learn what the ToR relays, exactly: its rack aggregates, the
    # spine's link network and floating range (no border here: no default).
    want_hv = {"198.19.1.0/24", "198.18.1.0/24", "198.18.0.0/24", "203.0.113.0/24"}
    learned = wait_for(lambda: (lambda r: r if set(r) == want_hv else None)(
        lab.json("hv-r01-01", "show bgp ipv4 unicast neighbors 198.18.1.1 routes")["routes"]), "hypervisor routes")
    assert "0.0.0.0/0" not in learned
    # hypervisor to the spine's link network through the fabric (no default route anywhere)
    sh("ip", "netns", "exec", lab.ns["tor-r01"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "netns", "exec", lab.ns["hv-r01-01"], "ping", "-c1", "-W2", "198.18.0.1")

    # A hypervisor announcing what it does not own: another hypervisor's
    # instance and an unassigned address. It leaves hv-r01-01 and stops at the ToR.
    sh("ip", "-n", lab.ns["hv-r01-01"], "route", "add", "blackhole", "198.19.1.99/32", "proto", "211")
    sh("ip", "-n", lab.ns["hv-r01-01"], "route", "add", "blackhole", "198.19.1.12/32", "proto", "211")
    rogue = ["ip prefix-list OCS-OWN permit 198.19.1.99/32", "ip prefix-list OCS-OWN permit 198.19.1.12/32",
             "router bgp 65200", " address-family ipv4 unicast", "  network 198.19.1.99/32",
             "  network 198.19.1.12/32", " exit-address-family", "exit"]
    assert lab.configure(fab, "hv-r01-01", rogue)["changed"]
    adv = wait_for(lambda: (lambda a: a if "198.19.1.99/32" in a else None)(
        lab.json("hv-r01-01", "show bgp ipv4 unicast neighbors 198.18.1.1 advertised-routes")["advertisedRoutes"]),
        "rogue announcement sent")
    assert "198.19.1.12/32" in adv
    received = wait_for(lambda: (lambda r: r if "198.19.1.99/32" in r else None)(
        lab.json("tor-r01", "show bgp ipv4 unicast neighbors 198.18.1.11 received-routes")["receivedRoutes"]),
        "rogue announcement received (Adj-RIB-In)")
    assert "198.19.1.12/32" in received
    tor = lab.rib("tor-r01")
    assert "198.19.1.99/32" not in tor
    assert tor["198.19.1.12/32"] == ["198.18.1.12", "198.18.1.140"]  # still only its owner
    assert "198.19.1.99/32" not in lab.rib("spine1")
    assert lab.configure(fab, "hv-r01-01")["changed"]  # back to the computed config

    # Add an instance with a floating IP on hv-r01-01; apply top down.
    before = {h: lab.connections(h) for h in LAB}
    data["hostvars"]["hv-r01-01"]["ocs_instances"].append(
        {"name": "vm-e", "mac": "02:00:00:00:01:0e", "ip": "198.19.1.20", "floating_ip": "203.0.113.120"})
    fab = build(data)
    for host in LAB:
        if host != "spine1":
            lab.routes(fab, host)
        lab.configure(fab, host)
    wait_for(lambda: lab.rib("tor-r01").get("198.19.1.20/32") == ["198.18.1.11"], "new instance at the ToR")
    wait_for(lambda: lab.rib("spine1").get("203.0.113.120/32") == ["198.18.0.11"], "new floating IP at the spine")
    assert "198.19.1.20/32" not in lab.rib("spine1")
    assert {h: lab.connections(h) for h in LAB} == before  # no session was reset
    assert all(v == 1 for conns in before.values() for v in conns.values())


def test_widened_import_policy_applies_without_reset(lab):
    """Wrong order on purpose: the hypervisor announces a new instance before
    its ToR accepts it. The ToR's reload changes the prefix-list, the module
    sends `soft in` to that hypervisor only, and the route appears with the
    session kept."""
    data = lab_data()
    fab = build(data)
    converge(lab, fab)
    data["hostvars"]["hv-r01-02"]["ocs_instances"].append(
        {"name": "vm-f", "mac": "02:00:00:00:01:0f", "ip": "198.19.1.21"})
    new = build(data)
    lab.routes(new, "hv-r01-02")
    lab.configure(new, "hv-r01-02")
    wait_for(lambda: "198.19.1.21/32" in lab.json(
        "tor-r01", "show bgp ipv4 unicast neighbors 198.18.1.12 received-routes")["receivedRoutes"],
        "announcement held in the ToR's Adj-RIB-In")
    assert "198.19.1.21/32" not in lab.rib("tor-r01")
    before = lab.connections("tor-r01")
    result = lab.configure(new, "tor-r01")
    assert result["soft_in"] == ["clear bgp ipv4 unicast 198.18.1.12 soft in",
                                 "clear bgp ipv4 unicast 198.18.1.140 soft in"]
    wait_for(lambda: lab.rib("tor-r01").get("198.19.1.21/32") == ["198.18.1.12", "198.18.1.140"],
             "accepted after the ToR's reload")
    assert lab.connections("tor-r01") == before


# vtysh that records how it was called: every argument, and the mode of any file it is given.
SPY = """#!/bin/sh
for a in "$@"; do printf '%s\\n' "$a" >> {log}; done
prev=""
for a in "$@"; do
  if [ "$prev" = "-f" ]; then stat -c 'FILE %a %n' "$a" >> {log}; cat "$a" >> {log}.files; fi
  prev="$a"
done
exec /usr/bin/vtysh "$@"
"""


def _spy(tmp_path, name):
    spy = tmp_path / name
    spy.mkdir()
    log = tmp_path / (name + ".log")
    (spy / "vtysh").write_text(SPY.format(log=log))
    (spy / "vtysh").chmod(0o755)
    return spy, log


def _read(path):
    return path.read_text() if path.exists() else ""


def test_bgp_password_change_never_reaches_a_process_argument(lab, tmp_path):
    """Issue 14: frr-reload.py deletes lines with `vtysh -c` (argv, readable in /proc by every
    local user) and writes the lines to add to reload-*.txt under the caller's umask. Password
    changes go through the module with a vtysh that records its arguments and the files it is
    given: no password is ever an argument and every file is mode 0600. The control: frr-reload.py
    alone, rotating the password, hands vtysh a world-readable file that holds it."""
    data = lab_data()
    data["fabric"]["bgp"] = {"password": "0ld-Secret-1"}
    converge(lab, build(data))
    data["fabric"]["bgp"] = {"password": "n3w-Secret-2"}
    new = build(data)

    # Control: frr-reload.py alone (the ToR side of the rotation).
    bare, bare_log = _spy(tmp_path, "bare")
    path = os.path.join(lab.sock("tor-r01"), "frr.conf")
    with open(path, "w") as fh:
        fh.write(HEADER + "\n".join(config_lines(new, new.hosts["tor-r01"])) + "\n")
    sh("/usr/lib/frr/frr-reload.py", "--stdout", "--bindir", str(bare), "--vty_socket", lab.sock("tor-r01"),
       "--reload", path)
    leaked = [line for line in _read(bare_log).splitlines() if line.startswith("FILE ") and "reload-" in line]
    assert leaked and any(line.split()[1] == "644" for line in leaked), leaked
    assert "n3w-Secret-2" in _read(tmp_path / "bare.log.files")
    assert "write" in _read(bare_log).splitlines()  # and rewrote the config dir's frr.conf (vtysh write)

    # The module (the hypervisor side): no secret as an argument, every file 0600.
    spy, log = _spy(tmp_path, "rotate")
    assert lab.configure(new, "hv-r01-01", bindir=str(spy))["changed"]
    argv = _read(log)
    assert "n3w-Secret-2" in _read(tmp_path / "rotate.log.files")  # the new password went through a file
    assert "0ld-Secret-1" not in argv and "n3w-Secret-2" not in argv
    modes = {line.split()[1] for line in argv.splitlines() if line.startswith("FILE ")}
    assert modes == {"600"}, modes
    assert "write" not in argv.splitlines()  # its private --confdir: no vtysh write after the reload
    wait_for(lambda: {"198.18.1.1"} <= lab.established("hv-r01-01"), "session up with the new password")

    # Removing the password: the module deletes the line itself, from a file, with no secret in it.
    data["fabric"]["bgp"] = {}
    plain = build(data)
    spy, log = _spy(tmp_path, "remove")
    for host in ("hv-r01-01", "tor-r01"):
        res = lab.configure(plain, host, bindir=str(spy))
        assert res["changed"]
        assert "password" not in lab.vtysh(host, "show running-config"), (res["lines_to_delete"], _read(log))
    assert "n3w-Secret-2" not in _read(log)
    assert {line.split()[1] for line in _read(log).splitlines() if line.startswith("FILE ")} == {"600"}
    wait_for(lambda: {"198.18.1.1"} <= lab.established("hv-r01-01"), "session up without a password")


def test_per_link_password_both_ends_and_a_mismatch_keeps_the_session_down(lab):
    """Issue 18: hv-r01-01's uplink carries its own password, on both ends (the hypervisor's neighbor,
    the ToR's neighbor for it); the fleet password stays on the other sessions and never reaches
    hv-r01-01. A mismatched key keeps that session down (only that one) until both ends agree."""
    data = lab_data()
    data["fabric"]["bgp"] = {"password": "fleet-Key"}
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"][0]["password"] = "link-Key-1"
    fab = build(data)
    converge(lab, fab)  # every session Established, hv-r01-01's with its own key
    hv1 = lab.vtysh("hv-r01-01", "show running-config")
    assert " neighbor 198.18.1.1 password link-Key-1\n" in hv1 and "fleet-Key" not in hv1
    tor = lab.vtysh("tor-r01", "show running-config")
    assert " neighbor 198.18.1.11 password link-Key-1\n" in tor and " neighbor HV password fleet-Key\n" in tor
    for host in LAB:  # FRR's running shape: nothing to do
        again = lab.configure(fab, host)
        assert not again["changed"], (host, again)

    # One end rekeyed (the hypervisor's, as a converge of that host alone would): down, and only it.
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"][0]["password"] = "link-Key-2"
    new = build(data)
    before = lab.connections("tor-r01")
    start = time.monotonic()
    lab.configure(new, "hv-r01-01")
    wait_for(lambda: "198.18.1.11" not in lab.established("tor-r01"), "the mismatched session down", 30, 0.2)
    time.sleep(12)  # longer than the hold time (9 s) and FRR's reconnect attempts in between
    assert "198.18.1.1" not in lab.established("hv-r01-01")
    assert lab.established("tor-r01") == {"198.18.0.1", "198.18.1.12", "198.18.1.140"}
    now = lab.connections("tor-r01")
    assert {k: v for k, v in now.items() if k != "198.18.1.11"} == \
        {k: v for k, v in before.items() if k != "198.18.1.11"}  # no other session reset
    # The other end follows: the session comes back.
    matched = time.monotonic()
    lab.configure(new, "tor-r01")
    wait_for(lambda: "198.18.1.11" in lab.established("tor-r01"), "the session up with the new key", 60, 0.1)
    end = time.monotonic()
    print("per-link rekey: session down %.1f s in all, up %.1f s after the second end matched"
          % (end - start, end - matched))

    # Moving links from the fleet password to their own, same key first (the rotation procedure of
    # docs/bgp-passwords.md): hv-r01-02's two links; its TOR peer-group loses the fleet password
    # (every session has its own now) and no session resets.
    for up in data["hostvars"]["hv-r01-02"]["ocs_uplinks"]:
        up["password"] = "fleet-Key"
    moved = build(data)
    before = {h: lab.connections(h) for h in ("tor-r01", "hv-r01-02")}
    for host in ("tor-r01", "hv-r01-02"):
        assert lab.configure(moved, host)["changed"]
    assert " neighbor TOR password" not in lab.vtysh("hv-r01-02", "show running-config")
    time.sleep(3)
    assert {h: lab.connections(h) for h in ("tor-r01", "hv-r01-02")} == before
    assert lab.established("hv-r01-02") == {"198.18.1.1", "198.18.1.129"}
