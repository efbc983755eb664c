"""What ocs-l3 owns on a host and removes when the route file no longer lists it (issue 15).

Pure Python: the planner (route_table.plan), the route file's owned ranges
(``#owned RANGE dev lo``), the module's whole step (route_table.reconcile) against
a fake kernel that applies ``ip -batch`` lines as Linux does (a deleted primary
address takes the secondaries of its subnet with it), and proxy ARP on taps.
"""

import errno
import json

import pytest

from fabric_data import gateway_mode

from ansible_collections.ocs.l3.plugins.module_utils import route_table
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines, owned_lines

P = 211
TAP = "tap-a"
FILE = """# Managed by ocs-l3
# /32 addresses on lo inside these ranges are ocs-l3's: removed when not listed below
#owned 203.0.113.0/24 dev lo
#owned 192.0.2.0/25 dev lo
address replace 198.19.1.1/24 dev tap-a noprefixroute
address replace 203.0.113.11/32 dev lo
route replace 198.19.1.10/32 dev tap-a proto 211 scope link
"""


def desired(text=FILE):
    return route_table.parse_file(text, "routes.batch", P)


# --- the file ----------------------------------------------------------------

def test_the_file_declares_its_owned_ranges_as_comments_to_ip_batch():
    d = desired()
    assert d.owned == [("203.0.113.0/24", "lo"), ("192.0.2.0/25", "lo")]
    assert d.lines == FILE.splitlines()[4:]
    assert route_table.parse_lines(FILE, "f", P) == d.lines  # the agent's and the restore's reader


@pytest.mark.parametrize("line", ["#owned 203.0.113.0/33 dev lo", "#owned 203.0.113.0/24", "#owned 203.0.113.0/24 lo",
                                  "#owned 203.0.113.0/24 dev lo; reboot", "#owned 0203.0.113.0/24 dev lo"])
def test_a_malformed_owned_line_is_named_with_file_and_number(line):
    with pytest.raises(ValueError) as err:
        route_table.parse_file("# managed\n%s\n" % line, "/x/routes.batch", P)
    assert str(err.value).startswith("/x/routes.batch:2: not an owned-range line as ocs-l3 renders them"), err.value


def _routes_text(fab, name):
    art = [a for a in host_artifacts(fab, fab.hosts[name]) if a.kind == "routes"][0]
    return art.vars["_ocs_routes_text"]


def test_every_route_file_carries_the_floating_ranges(data):
    data["fabric"]["floating_ranges"] = ["203.0.113.0/24", "198.51.100.0/25"]
    fab = build(data)
    for name in ("hv-r01-01", "tor-r01", "gw-01"):
        text = _routes_text(fab, name)
        assert route_table.parse_file(text, name, P).owned == [("203.0.113.0/24", "lo"), ("198.51.100.0/25", "lo")]
        assert route_table.parse_lines(text, name, P) == host_lines(fab, fab.hosts[name])
    assert _routes_text_or_none(fab, "spine1") is None  # spines have no route file


def _routes_text_or_none(fab, name):
    arts = [a for a in host_artifacts(fab, fab.hosts[name]) if a.kind == "routes"]
    return arts[0].vars["_ocs_routes_text"] if arts else None


def test_a_hypervisor_in_gateway_mode_lists_no_public_address_but_still_owns_the_ranges(data):
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    d = route_table.parse_file(_routes_text(build(data), "hv-r01-01"), "f", P)
    assert d.owned == [("203.0.113.0/24", "lo")]
    assert not [ln for ln in d.lines if " dev lo" in ln]
    # the public /32 the host NAT mode left on lo goes
    commands = _plan(d, addrs={"lo": [("127.0.0.1", 8), ("203.0.113.11", 32)]})[0]
    assert commands == ["address del 203.0.113.11/32 dev lo"]


def test_no_floating_ranges_no_owned_lines(data):
    fab = build(data)
    fab.floating_ranges = []  # a fabric without hypervisors or gateways
    assert owned_lines(fab, fab.hosts["tor-r01"]) == []
    assert "#owned" not in _routes_text(fab, "tor-r01")


# --- the planner ---------------------------------------------------------------

def _addr_json(addrs):
    """{dev: [(ip, plen) or (ip, plen, noprefixroute)]} -> ``ip -j -4 addr show``."""
    return [{"ifname": dev, "addr_info": [{"family": "inet", "local": a[0], "prefixlen": a[1],
                                           "noprefixroute": bool(a[2:] and a[2])} for a in lst]}
            for dev, lst in addrs.items()]


def _plan(d, addrs, links=("lo", TAP, "eth0"), prune=True, ours=()):
    return route_table.plan(d.lines, list(ours), list(ours), _addr_json(addrs), set(links), P, prune, d.owned)


ROUTE_A = {"dst": "198.19.1.10", "dev": TAP, "protocol": "211", "scope": "link"}


def test_stale_floating_slash32_on_lo_goes_foreign_addresses_stay():
    addrs = {"lo": [("127.0.0.1", 8), ("203.0.113.11", 32), ("203.0.113.99", 32), ("192.0.2.7", 32),
                    ("192.0.2.200", 32), ("198.51.100.1", 32), ("203.0.113.128", 25)],
             TAP: [("198.19.1.1", 24, True)]}
    commands, missing, conflicts, before, after = _plan(desired(), addrs, ours=[ROUTE_A])
    # 192.0.2.200 is outside the owned 192.0.2.0/25; 203.0.113.128/25 is no /32; 198.51.100.1 is the operator's
    assert commands == ["address del 192.0.2.7/32 dev lo", "address del 203.0.113.99/32 dev lo"]
    assert "address replace 203.0.113.99/32 dev lo" in before and "203.0.113.99" not in after
    assert "198.51.100.1" not in before  # not ours: not even shown


def test_without_prune_nothing_is_deleted():
    addrs = {"lo": [("203.0.113.99", 32)], TAP: [("198.19.1.1", 24, True), ("198.19.1.254", 24, True)]}
    commands = _plan(desired(), addrs, prune=False)[0]
    assert commands == ["address replace 203.0.113.11/32 dev lo",
                        "route replace 198.19.1.10/32 dev tap-a proto 211 scope link"]


def test_other_addresses_on_a_named_tap_go_and_its_own_are_put_back_after():
    """The old gateway (primary) deleted takes the new one (secondary, same /24) with it: re-added."""
    addrs = {"lo": [("203.0.113.11", 32)], TAP: [("198.19.1.254", 24, True), ("198.19.1.1", 24, True),
                                                  ("10.9.9.9", 8)], "eth0": [("198.18.1.11", 25)]}
    commands = _plan(desired(), addrs, ours=[ROUTE_A])[0]
    assert commands == ["address del 10.9.9.9/8 dev tap-a", "address del 198.19.1.254/24 dev tap-a",
                        "address replace 198.19.1.1/24 dev tap-a noprefixroute"]


def test_only_taps_with_a_noprefixroute_address_line_are_owned():
    d = desired("route replace 198.19.1.10/32 dev tap-b proto 211 scope link\n"
                "address replace 198.18.9.1/32 dev eth0\n")
    addrs = {"tap-b": [("198.19.1.77", 24)], "eth0": [("198.18.1.11", 25), ("198.18.9.1", 32)]}
    commands = _plan(d, addrs, links=("tap-b", "eth0"))[0]
    assert commands == ["route replace 198.19.1.10/32 dev tap-b proto 211 scope link"]
    assert route_table.owned_taps(desired().lines) == [TAP]


def test_a_flag_difference_is_a_replace_never_a_delete():
    addrs = {"lo": [("203.0.113.11", 32)], TAP: [("198.19.1.1", 24)]}  # without noprefixroute
    assert _plan(desired(), addrs, ours=[ROUTE_A])[0] == ["address replace 198.19.1.1/24 dev tap-a noprefixroute"]


def test_a_missing_tap_has_nothing_to_delete_and_is_reported():
    commands, missing = _plan(desired(), {"lo": [("203.0.113.11", 32)]}, links=("lo",))[:2]
    assert commands == [] and missing == [TAP]


# --- the module's step against a kernel that behaves like Linux -----------------

class Kernel:
    """Addresses and routes of one namespace; ``ip -batch`` applied line by line like Linux:
    ``address del`` of a primary deletes the secondaries of its subnet (same prefix length)."""

    def __init__(self, addrs, links=("lo", TAP, "eth0")):
        self.addrs = {dev: [dict(local=a[0], prefixlen=a[1], noprefixroute=bool(a[2:] and a[2])) for a in lst]
                      for dev, lst in addrs.items()}
        self.links, self.routes, self.batches = set(links), {}, []

    def __call__(self, argv, data=None):
        if argv[:4] == ["ip", "-j", "-4", "route"]:
            return 0, json.dumps(list(self.routes.values())), ""
        if argv[:4] == ["ip", "-j", "-4", "addr"]:
            return 0, json.dumps([{"ifname": d, "addr_info": [dict(a, family="inet") for a in lst]}
                                  for d, lst in self.addrs.items()]), ""
        if argv[:3] == ["ip", "-j", "link"]:
            return 0, json.dumps([{"ifname": n} for n in sorted(self.links)]), ""
        if argv[:3] == ["ip", "-j", "-6"]:  # an IPv4-only namespace: nothing IPv6 of ours
            return 0, "[]", ""
        assert argv == route_table.BATCH_ARGV, argv
        self.batches.append(data.splitlines())
        for line in data.splitlines():
            self.apply(line.split())
        return 0, "", ""

    @staticmethod
    def _net(a):
        n = int.from_bytes(bytes(int(x) for x in a["local"].split(".")), "big")
        return n >> (32 - a["prefixlen"]), a["prefixlen"]

    def apply(self, p):
        dev = p[p.index("dev") + 1]
        if p[0] == "route":
            self.routes[p[2]] = {"dst": p[2].replace("/32", ""), "dev": dev, "protocol": str(P), "scope": "link"}
            return
        ip, plen = p[2].split("/")
        lst = self.addrs.setdefault(dev, [])
        old = [a for a in lst if (a["local"], a["prefixlen"]) == (ip, int(plen))]
        if p[1] == "replace":
            if old:
                old[0]["noprefixroute"] = "noprefixroute" in p
            else:
                lst.append(dict(local=ip, prefixlen=int(plen), noprefixroute="noprefixroute" in p))
            return
        net = self._net(old[0])
        primary = [a for a in lst if self._net(a) == net][0] is old[0]
        self.addrs[dev] = [a for a in lst if a is not old[0] and not (primary and self._net(a) == net)]


class Sysctl:
    def __init__(self, values=None, read_only=False):
        self.values, self.read_only, self.writes = dict(values or {}), read_only, []

    def read(self, key):
        if key not in self.values:
            raise OSError(errno.ENOENT, "No such file or directory")
        return self.values[key]

    def write(self, key, value):
        if self.read_only:
            raise OSError(errno.EROFS, "Read-only file system")
        self.values[key] = value
        self.writes.append(key)


KEY = "net/ipv4/conf/%s/proxy_arp"


def _sysctl(**kw):
    return Sysctl({KEY % "all": "0", KEY % TAP: "0", KEY % "lo": "0"}, **kw)


def test_reconcile_converges_in_one_run_and_the_second_changes_nothing():
    kernel = Kernel({"lo": [("127.0.0.1", 8), ("203.0.113.99", 32), ("198.51.100.1", 32)],
                     TAP: [("198.19.1.254", 24, True), ("198.19.1.1", 24, True)]})
    sysctl = _sysctl()
    first = route_table.reconcile(kernel, desired(), P, sysctl=sysctl)
    assert first["changed"] and first["error"] is None and first["proxy_arp"] == [TAP]
    assert sorted((d, a["local"]) for d, lst in kernel.addrs.items() for a in lst) == [
        ("lo", "127.0.0.1"), ("lo", "198.51.100.1"), ("lo", "203.0.113.11"), (TAP, "198.19.1.1")]
    assert sysctl.values[KEY % TAP] == "1" and sysctl.writes == [KEY % TAP]  # the named tap only
    assert "net.ipv4.conf.tap-a.proxy_arp = 1" in first["after"]
    second = route_table.reconcile(kernel, desired(), P, sysctl=sysctl)
    assert not second["changed"] and second["commands"] == [] and second["proxy_arp"] == []
    assert second["before"] == second["after"]


def test_reconcile_in_check_mode_applies_nothing_and_says_what_it_would():
    kernel = Kernel({"lo": [("203.0.113.99", 32)], TAP: []})
    sysctl = _sysctl()
    res = route_table.reconcile(kernel, desired(), P, check=True, sysctl=sysctl)
    assert res["changed"] and "address del 203.0.113.99/32 dev lo" in res["commands"] and res["proxy_arp"] == [TAP]
    assert kernel.batches == [] and sysctl.writes == []
    assert "203.0.113.99" in res["before"] and "203.0.113.99" not in res["after"]


def test_reconcile_skips_proxy_arp_of_absent_taps_and_reports_a_failed_batch():
    def failing(argv, data=None):
        if argv == route_table.BATCH_ARGV:
            return 1, "", "Error: boom\n"
        return kernel(argv, data)
    kernel = Kernel({}, links=("lo",))
    sysctl = _sysctl()
    res = route_table.reconcile(failing, desired(), P, sysctl=sysctl)
    assert res["error"] == "ip -batch failed: Error: boom" and res["missing_interfaces"] == [TAP]
    assert res["proxy_arp"] == [] and sysctl.writes == []
    assert res["warnings"] == ["interfaces not present, their lines skipped: tap-a"]


@pytest.mark.parametrize("values, read_only, check, changed, problem", [
    ({KEY % TAP: "1"}, False, False, False, False),
    ({KEY % TAP: "0"}, False, False, True, False),
    ({KEY % TAP: "0"}, False, True, True, False),  # check mode: would set
    ({KEY % TAP: "0", KEY % "all": "1"}, True, False, False, False),  # read-only, conf/all covers it
    ({KEY % TAP: "0", KEY % "all": "0"}, True, False, False, True),
])
def test_proxy_arp_helper(values, read_only, check, changed, problem):
    sysctl = Sysctl(values, read_only)
    got = route_table.proxy_arp(sysctl, TAP, check)
    assert got[0] == changed and bool(got[1]) == problem
    assert sysctl.values[KEY % TAP] == ("1" if changed and not check else values[KEY % TAP])
    if problem:
        assert got[1].startswith("proxy_arp of tap-a is off and cannot be set (Read-only file system)")


def test_the_agent_and_the_module_share_the_helper():
    from ansible_collections.ocs.l3.plugins.module_utils import host_agent
    assert host_agent.ProcSys is route_table.ProcSys


def test_reconcile_without_prune_says_what_the_prune_step_would_delete():
    """prune_pending: the role runs its prune step (after FRR) only where this is not 0."""
    kernel = Kernel({"lo": [("127.0.0.1", 8), ("203.0.113.99", 32), ("198.51.100.1", 32)],
                     TAP: [("198.19.1.254", 24, True), ("198.19.1.1", 24, True)]})
    first = route_table.reconcile(kernel, desired(), P, prune=False, sysctl=_sysctl())
    # the stale 203.0.113.99 (ours, not listed) and the tap's stale gateway address stay for the prune
    # step: two deletions, and the listed address of the same subnet put back after them
    assert first["prune_pending"] == 3 and not any(" del " in c for c in first["commands"])
    pruned = route_table.reconcile(kernel, desired(), P, sysctl=_sysctl())
    assert pruned["prune_pending"] == 0 and len(pruned["commands"]) == 3
    assert sum(" del " in c for c in pruned["commands"]) == 2
    again = route_table.reconcile(kernel, desired(), P, prune=False, sysctl=_sysctl())
    assert again["prune_pending"] == 0 and again["commands"] == []
