"""DHCP with the real dnsmasq and a real dhclient, in network namespaces.

A "hypervisor" namespace runs dnsmasq with the rendered configuration (only
its file paths moved to a scratch directory); each instance is a namespace
joined by a veth pair: the host end is named like the inventory's interface,
the inner end carries the inventory MAC. The rendered routes.batch is applied
with the real ocs_route_table module (gateway address with noprefixroute on
every tap, instance /32s). Nothing is bound in the root namespace.
"""

import json
import os
import re
import shutil

import pytest

from helpers import DnsmasqLab, inventory_copy, render, run_module, sh, stop_daemonized
from ansible_collections.ocs.l3.plugins.module_utils.dhcp import HOSTS_PATH

HV = "hv-r01-01"
DHCLIENT_CONF = """timeout 5;
initial-interval 1;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu;
"""
# dhclient's hook: record what a bound lease carries (and how it was bound).
HOOK = """#!/bin/sh
case "$reason" in BOUND|REBOOT|RENEW|REBIND) env | grep -E '^(reason|new_[a-z_]+)=' | sort > "$OUT" ;; esac
exit 0
"""
NEW = {"name": "vm-r01-01-e", "mac": "02:00:c6:13:01:2e", "ip": "198.19.1.34"}
# Takes the IP of vm-r01-01-b, which is removed in the same change.
REUSE = {"name": "vm-r01-01-f", "mac": "02:00:c6:13:01:2f", "ip": "198.19.1.31"}


def _variant(tmp, name, mutate):
    """Render a copy of the example whose hv-r01-01 instances ``mutate`` changed."""
    inv = inventory_copy(tmp, HV, lambda data: mutate(data["ocs_instances"]), "inv-" + name)
    out = tmp / ("build-" + name)
    proc = render(str(out), str(inv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / HV


def _swap(insts):
    """vm-r01-01-b removed, its IP given to a new instance; NEW stays."""
    insts[:] = [i for i in insts if i["name"] != "vm-r01-01-b"] + [dict(NEW), dict(REUSE)]


def _instances(build):
    """[(name, mac, ip)] of the rendered host file (``mac,ip,[ip6],name,lease``: the IPv6 field skipped)."""
    lines = (build / HOSTS_PATH.lstrip("/")).read_text().splitlines()
    fields = ([f for f in ln.split(",") if not f.startswith("[")] for ln in lines if ln and not ln.startswith("#"))
    return [(f[2], f[0], f[1]) for f in fields]


def _ifnames(build):
    """{ip: tap} from the rendered routes.batch (the inventory's interface names)."""
    text = (build / "etc/ocs-l3/routes.batch").read_text()
    return dict(re.findall(r"route replace ([0-9.]+)/32 dev (\S+) proto", text))


class Lab(DnsmasqLab):
    """The hypervisor namespace with dnsmasq on a rendered build, instance namespaces, dhclients."""

    def __init__(self):
        super().__init__("ocs-dhcp", "ocs-dh-%s", [("dhclient.conf", DHCLIENT_CONF, 0o644),
                                                   ("hook.sh", HOOK, 0o755)])

    def files(self, build):
        return ((build / "etc/ocs-l3/dnsmasq.conf").read_text(), (build / HOSTS_PATH.lstrip("/")).read_text())

    def leases(self):
        """{mac: ip} of dnsmasq's lease file."""
        with open(self.path("leases")) as fh:
            return {p[1]: p[2] for p in (ln.split() for ln in fh) if len(p) >= 3}

    def add_instance(self, name, ifname, mac):
        ns = "ocs-di-%s-%s" % (self.id, name[-1])
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.hv, "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.hv, "link", "set", ifname, "up")
        return ns

    def remove_instance(self, ns):
        """The instance is gone: its namespace, and with it both ends of its veth (its tap)."""
        self.kill_dhclient(ns)
        sh("ip", "netns", "del", ns)
        self.namespaces.remove(ns)

    def apply_routes(self, build):
        res = run_module(self.hv, "ocs.l3.ocs_route_table", "src=%s" % (build / "etc/ocs-l3/routes.batch"))
        assert not res.get("failed"), res
        return res

    def dhclient(self, ns):
        """Run dhclient once in ``ns`` (reusing its lease file); return (rc, verbose output, lease vars)."""
        out = self.path(ns + ".env")
        if os.path.exists(out):
            os.unlink(out)
        proc = sh("ip", "netns", "exec", ns, "dhclient", "-1", "-v", "-cf", self.path("dhclient.conf"),
                  "-lf", self.path(ns + ".lease"), "-pf", self.path(ns + ".pid"), "-sf", self.path("hook.sh"),
                  "-e", "OUT=" + out, "eth0", check=False, timeout=60)
        self.kill_dhclient(ns)  # once bound it daemonizes to renew: not here
        lease = {}
        if os.path.exists(out):
            with open(out) as fh:
                lease = dict(ln.rstrip("\n").split("=", 1) for ln in fh if "=" in ln)
        return proc.returncode, proc.stderr + proc.stdout, lease

    def kill_dhclient(self, ns):
        stop_daemonized(self.path(ns + ".pid"))

    def close(self):
        for ns in list(self.namespaces[1:]):
            self.kill_dhclient(ns)
        super().close()


@pytest.fixture
def lab(request):
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "dnsmasq", "dhclient", "dhcp_release")):
        pytest.fail("this test needs root, iproute2, dnsmasq, dhclient and dhcp_release (make validate installs them)")
    lab = Lab()
    request.addfinalizer(lab.close)
    return lab


def _assert_lease(lease, name, ip, reason):
    assert lease.get("reason") == reason, (name, lease)
    assert lease["new_ip_address"] == ip, (name, lease)
    assert lease["new_subnet_mask"] == "255.255.255.0"
    assert lease["new_routers"] == "198.19.1.1"
    assert lease["new_domain_name_servers"] == "198.18.0.53"
    assert lease["new_domain_name"] == "cloud.ocs.example"
    assert lease["new_interface_mtu"] == "1450"
    assert lease["new_host_name"] == name
    assert lease["new_dhcp_lease_time"] == "43200"


def test_rendered_dnsmasq_configs_pass_dnsmasq_test(rendered):
    manifest = json.loads((rendered / "manifest.json").read_text())
    checked = 0
    for host, entry in manifest["hosts"].items():
        for f in entry["files"]:
            if f["kind"] == "dnsmasq":
                proc = sh("dnsmasq", "--test", "-C", str(rendered / host / f["path"].lstrip("/")), check=False)
                assert proc.returncode == 0, (host, proc.stderr)
                checked += 1
    assert checked == len([e for e in manifest["hosts"].values() if e["role"] == "hypervisor"]) == 4


def test_leases_survive_reload_and_removed_leases_are_released(lab, rendered, tmp_path):
    base = rendered / HV
    added = _variant(tmp_path, "added", lambda insts: insts.append(dict(NEW)))
    swapped = _variant(tmp_path, "swapped", _swap)
    assert (added / "etc/ocs-l3/dnsmasq.conf").read_text() == (base / "etc/ocs-l3/dnsmasq.conf").read_text()
    assert (swapped / "etc/ocs-l3/dnsmasq.conf").read_text() == (base / "etc/ocs-l3/dnsmasq.conf").read_text()

    # --- every instance gets exactly its inventory lease; an unknown MAC gets nothing
    ifnames = _ifnames(base)
    spaces = {}
    for name, mac, ip in _instances(base):
        spaces[name] = lab.add_instance(name, ifnames[ip], mac)
    stranger = lab.add_instance("vm-x", "tapstranger", "02:00:c6:13:01:99")
    sh("ip", "-n", lab.hv, "addr", "add", "198.19.1.1/24", "dev", "tapstranger", "noprefixroute")
    assert lab.apply_routes(base)["missing_interfaces"] == []
    pid = lab.start_dnsmasq(base)

    for name, mac, ip in _instances(base):
        rc, out, lease = lab.dhclient(spaces[name])
        assert rc == 0, out
        _assert_lease(lease, name, ip, "BOUND")
    rc, out, lease = lab.dhclient(stranger)
    assert rc != 0 and lease == {} and "DHCPOFFER of" not in out, out
    assert "DHCPDISCOVER(tapstranger) 02:00:c6:13:01:99 ignored" in lab.log()
    assert lab.leases() == {mac: ip for _, mac, ip in _instances(base)}
    assert not re.search(r"bad|error|fail", lab.log(), re.I), lab.log()  # the host file parsed cleanly

    # --- add an instance: SIGHUP; same PID; it gets its lease; the others' INIT-REBOOT is ACKed
    spaces[NEW["name"]] = lab.add_instance(NEW["name"], _ifnames(added)[NEW["ip"]], NEW["mac"])
    lab.apply_routes(added)
    lab.sighup(added)
    assert lab.dnsmasq.poll() is None and lab.dnsmasq.pid == pid
    assert pid in [int(p) for p in sh("ip", "netns", "pids", lab.hv).stdout.split()]
    rc, out, lease = lab.dhclient(spaces[NEW["name"]])
    assert rc == 0, out
    _assert_lease(lease, NEW["name"], NEW["ip"], "BOUND")
    for name, mac, ip in _instances(base):
        rc, out, lease = lab.dhclient(spaces[name])
        assert rc == 0 and "DHCPREQUEST for %s" % ip in out and "DHCPDISCOVER" not in out, out
        _assert_lease(lease, name, ip, "REBOOT")  # INIT-REBOOT with the old lease: ACKed
    assert lab.leases() == {mac: ip for _, mac, ip in _instances(added)}

    # --- remove vm-r01-01-b (its tap is gone) and give its IP to a new instance in the same change
    gone = next(i for i in _instances(base) if i[0] == "vm-r01-01-b")
    lab.remove_instance(spaces.pop(gone[0]))
    spaces[REUSE["name"]] = lab.add_instance(REUSE["name"], _ifnames(swapped)[REUSE["ip"]], REUSE["mac"])
    lab.apply_routes(swapped)
    lab.sighup(swapped)
    with open(lab.path("dhcp-hosts")) as fh:
        assert gone[1] not in fh.read()
    rc, out, lease = lab.dhclient(spaces[REUSE["name"]])
    assert rc != 0 and lease == {}, out  # the dead lease still holds the IP: this is what the release is for

    hosts = (swapped / HOSTS_PATH.lstrip("/")).read_text()
    args = json.dumps({"content": hosts, "leasefile": lab.path("leases"), "prefix": "tap"})
    dry = run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args, check=True)
    assert dry["changed"] and len(dry["released"]) == 1, dry
    assert dry["released"][0].startswith("%s %s tap" % (gone[2], gone[1])), dry  # sent on another tap of the subnet
    assert lab.leases()[gone[1]] == gone[2]  # check mode released nothing
    res = run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args)
    assert res["changed"] and res["released"] == dry["released"] and res["not_released"] == [], res
    assert gone[1] not in lab.leases()
    assert not run_module(lab.hv, "ocs.l3.ocs_dhcp_release", args)["changed"]

    rc, out, lease = lab.dhclient(spaces[REUSE["name"]])  # the reused IP works at once
    assert rc == 0, out
    _assert_lease(lease, REUSE["name"], REUSE["ip"], "BOUND")
    assert lab.leases() == {mac: ip for _, mac, ip in _instances(swapped)}
    assert lab.dnsmasq.pid == pid and lab.dnsmasq.poll() is None
