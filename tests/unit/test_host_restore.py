"""The boot restore without root: a fake command runner standing for ip, iptables and nft."""

import json
import logging

import pytest

from ansible_collections.ocs.l3.plugins.module_utils import constants, host_restore
from ansible_collections.ocs.l3.plugins.module_utils.host_restore import EXIT_APPLY_FAILED, EXIT_CORRUPT, EXIT_OK
from ansible_collections.ocs.l3.plugins.module_utils.host_state import Paths

ROUTES = """# managed
address replace 198.19.1.1/24 dev tap-a noprefixroute
address replace 203.0.113.11/32 dev lo
route replace blackhole 198.19.1.0/24 proto 211
route replace 198.19.1.10/32 dev tap-a proto 211 scope link
route replace 198.19.1.11/32 dev tap-b proto 211 scope link
route replace 10.9.0.0/16 dev eth9 proto 211 scope link
route replace default via 198.18.1.1 proto 211
"""

FILTER = """# managed
*filter
:{inp} - [0:0]
:{fwd} - [0:0]
-A {inp} -i tap+ -j DROP
-A {fwd} -i tap+ -j DROP
COMMIT
*raw
:{notrack} - [0:0]
COMMIT
""".format(inp=constants.FILTER_INPUT, fwd=constants.FILTER_FORWARD, notrack=constants.RAW_NOTRACK)

NFT = "table ip %s {\n}\n" % constants.NFT_TABLE


class Runner:
    """ip -j reads from fixed tables; scratch namespaces and *-save give the candidate back;
    every call recorded; ``fail``: argv[0] whose apply fails."""

    def __init__(self, links=("lo", "tap-a", "eth0"), live_save="", fail=None, after=None):
        self.calls, self.links, self.live_save, self.fail = [], list(links), live_save, fail
        self.netns_text, self.after = None, after

    def __call__(self, argv, data=None):
        self.calls.append((list(argv), data))
        if argv[:2] == ["ip", "-j"]:
            if argv[2:4] == ["link", "show"]:
                return 0, json.dumps([{"ifname": n} for n in self.links]), ""
            return 0, "[]", ""
        if argv[:3] in (["ip", "netns", "add"], ["ip", "netns", "del"]):
            return 0, "", ""
        if argv[:3] == ["ip", "netns", "exec"]:
            tool = argv[4]
            if tool.endswith("-restore"):
                self.netns_text = data
                return 0, "", ""
            if tool.endswith("-save"):
                return 0, self.netns_text, ""
            return 0, "", ""
        if argv[0] == self.fail:
            return 1, "", "boom"
        if argv[0].endswith("-save"):
            return 0, self.live_save, ""
        if argv[0].endswith("-restore") and self.after is not None:
            self.live_save = self.after  # what the kernel holds after the transaction
        return 0, "", ""

    def applied(self):
        return [(argv, data) for argv, data in self.calls
                if argv[:2] not in (["ip", "-j"], ["ip", "netns"]) and not argv[0].endswith("-save")
                and "list" not in argv]


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    (d / "routes.batch").write_text(ROUTES)
    (d / "agent.conf").write_text("instance_ifname_prefix=tap\n")
    (d / "generation").write_text("1765000000\n")
    return d


def test_routes_of_present_devices_are_applied_absent_taps_left_to_the_agent(state, caplog):
    caplog.set_level(logging.INFO)
    run = Runner()
    assert host_restore.restore(Paths(str(state)), run) == EXIT_OK
    (argv, data), = run.applied()
    assert argv == ["ip", "-force", "-batch", "-"]
    assert data.splitlines() == [
        "address replace 198.19.1.1/24 dev tap-a noprefixroute",
        "address replace 203.0.113.11/32 dev lo",
        "route replace blackhole 198.19.1.0/24 proto 211",
        "route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
        "route replace default via 198.18.1.1 proto 211",
    ]  # not tap-b (absent: the agent's), not eth9 (absent: reported)
    assert "routes: 1 instance taps not present yet, left to ocs-l3-agent" in caplog.messages
    assert "warning: routes: interfaces not present, their lines skipped: eth9" in caplog.messages
    assert "restore: generation 1765000000 from %s" % state in caplog.messages


def test_missing_parts_are_skipped(tmp_path):
    run = Runner()
    assert host_restore.restore(Paths(str(tmp_path)), run) == EXIT_OK
    assert run.calls == []


@pytest.mark.parametrize("name, text, message", [
    ("routes.batch", ROUTES + "route replace 198.19.1.12/32 dev tap-c proto 12 scope link\n",
     "{state}/routes.batch:9: route protocol 12 is not 211"),
    ("iptables-filter.rules", FILTER.replace(":" + constants.FILTER_FORWARD, ":FORWARD"),
     "{state}/iptables-filter.rules would touch chains that are not ours: filter: chain FORWARD does not start"),
    ("iptables-nat.rules", "-A PREROUTING -j ACCEPT\n", "{state}/iptables-nat.rules: line outside a *table"),
    ("natgw.nft", "table ip other {\n}\n", "{state}/natgw.nft must declare only table ip %s" % constants.NFT_TABLE),
    ("natgw.nft", NFT + "flush ruleset\n", "{state}/natgw.nft: the file may only declare a table"),
    ("agent.conf", "instance_ifname_prefix=tap\ninstance_ifname_prefix=vm\n", "{state}/agent.conf:2: "),
])
def test_a_corrupt_file_applies_nothing_at_all(state, caplog, name, text, message):
    (state / "iptables-filter.rules").write_text(FILTER)
    (state / name).write_text(text)
    run = Runner()
    assert host_restore.restore(Paths(str(state)), run) == EXIT_CORRUPT
    assert run.calls == []  # not even the routes, which were fine
    errors = [m for m in caplog.messages if m.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: " + message.format(state=state)), errors
    assert errors[0].endswith(": nothing applied")


def converged(rules):
    return rules.replace("*filter\n", "*filter\n-A INPUT -j %s\n-A FORWARD -j %s\n"
                         % (constants.FILTER_INPUT, constants.FILTER_FORWARD)).replace(
        "*raw\n", "*raw\n-A PREROUTING -j %s\n" % constants.RAW_NOTRACK)


def test_chains_are_restored_with_their_jumps_in_one_transaction(state):
    (state / "routes.batch").unlink()
    (state / "iptables-filter.rules").write_text(FILTER)
    run = Runner(after=converged(FILTER))
    assert host_restore.restore(Paths(str(state)), run) == EXIT_OK
    (argv, data), = run.applied()
    assert argv == ["iptables-restore", "-w", "--noflush"]
    assert data.splitlines() == [
        "*filter", ":%s - [0:0]" % constants.FILTER_INPUT, ":%s - [0:0]" % constants.FILTER_FORWARD,
        "-A %s -i tap+ -j DROP" % constants.FILTER_INPUT, "-A %s -i tap+ -j DROP" % constants.FILTER_FORWARD,
        "-I INPUT 1 -j %s" % constants.FILTER_INPUT, "-I FORWARD 1 -j %s" % constants.FILTER_FORWARD, "COMMIT",
        "*raw", ":%s - [0:0]" % constants.RAW_NOTRACK, "-I PREROUTING 1 -j %s" % constants.RAW_NOTRACK, "COMMIT"]


def test_chains_in_place_change_nothing(state, caplog):
    caplog.set_level(logging.INFO)
    (state / "routes.batch").unlink()
    (state / "iptables-filter.rules").write_text(FILTER)
    run = Runner(live_save=converged(FILTER))
    assert host_restore.restore(Paths(str(state)), run) == EXIT_OK
    assert run.applied() == []
    assert "restore: nothing to change" in caplog.messages


def test_check_mode_reports_and_changes_nothing(state, caplog):
    caplog.set_level(logging.INFO)
    run = Runner()
    assert host_restore.restore(Paths(str(state)), run, check=True) == EXIT_OK
    assert run.applied() == []
    assert "restore: 1 transactions to apply" in caplog.messages


def test_a_failed_apply_is_exit_1_and_the_other_parts_still_run(state, caplog):
    (state / "iptables-filter.rules").write_text(FILTER)
    run = Runner(fail="ip", after=converged(FILTER))
    assert host_restore.restore(Paths(str(state)), run) == EXIT_APPLY_FAILED
    assert [argv[0] for argv, dummy in run.applied()] == ["ip", "iptables-restore"]
    assert any(m.startswith("error: routes: ip -force -batch - failed: boom") for m in caplog.messages)


def test_chains_that_still_differ_after_the_apply_fail(state, caplog):
    (state / "routes.batch").unlink()
    (state / "iptables-filter.rules").write_text(FILTER)
    run = Runner()  # the kernel keeps its old chains (another tool fighting us)
    assert host_restore.restore(Paths(str(state)), run) == EXIT_APPLY_FAILED
    assert any("after the apply our chains still differ" in m for m in caplog.messages)


def test_nft_table_is_created_when_absent(state):
    (state / "routes.batch").unlink()
    (state / "natgw.nft").write_text(NFT)

    class NftRunner(Runner):
        def __call__(self, argv, data=None):
            if "list" in argv:
                self.calls.append((list(argv), data))
                inside = argv[:3] == ["ip", "netns", "exec"]
                if not inside:
                    return 1, "", "Error: No such file or directory"
                doc = {"nftables": [{"table": {"family": "ip", "name": constants.NFT_TABLE}}]}
                return 0, json.dumps(doc) if "-j" in argv else NFT, ""
            return Runner.__call__(self, argv, data)

    run = NftRunner()
    assert host_restore.restore(Paths(str(state)), run) == EXIT_OK
    assert run.applied() == [(["nft", "-f", "-"], NFT)]


# --- IPv6: an instance tap present at restore time gets its sysctls first ---------------------

ROUTES6 = ROUTES + """address replace fe80::1/64 dev tap-a nodad
address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute
route replace 2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024
address replace fe80::1/64 dev tap-b nodad
route replace 2001:db8:0:1::b/128 dev tap-b proto 211 metric 1024
"""
V6KEYS = ["net/ipv6/conf/tap-a/%s" % k for k in ("accept_ra", "autoconf", "disable_ipv6")]


class Sysctl:
    """/proc/sys as a dict (every value "1" at first: a fresh tap of a host whose defaults are off);
    each write recorded in the runner's calls, so its order against the batch shows."""

    def __init__(self, calls, read_only=False):
        self.values, self.calls, self.read_only = {}, calls, read_only

    def read(self, key):
        return self.values.get(key, "1")

    def write(self, key, value):
        if self.read_only:
            raise OSError(30, "Read-only file system")
        self.values[key] = value
        self.calls.append((["sysctl", key], value))


def test_an_existing_taps_ipv6_sysctls_are_set_before_its_addresses(state, caplog):
    caplog.set_level(logging.INFO)
    (state / "routes.batch").write_text(ROUTES6)
    run = Runner()
    sysctl = Sysctl(run.calls)
    assert host_restore.restore(Paths(str(state)), run, sysctl=sysctl) == EXIT_OK
    writes = [argv[1] for argv, dummy in run.calls if argv[0] == "sysctl"]
    assert writes == V6KEYS and all(sysctl.values[k] == "0" for k in V6KEYS)  # tap-a only: tap-b is absent
    batch = next(i for i, (argv, dummy) in enumerate(run.calls) if argv == ["ip", "-force", "-batch", "-"])
    assert max(i for i, (argv, dummy) in enumerate(run.calls) if argv[0] == "sysctl") < batch
    assert "address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute" in run.calls[batch][1]
    assert "tap-a: net.ipv6.conf.tap-a.accept_ra=0, net.ipv6.conf.tap-a.autoconf=0, " \
           "net.ipv6.conf.tap-a.disable_ipv6=0" in caplog.messages
    caplog.clear()
    again = Runner()
    sysctl.calls = again.calls
    assert host_restore.restore(Paths(str(state)), again, sysctl=sysctl) == EXIT_OK
    assert [c for c in again.calls if c[0][0] == "sysctl"] == []  # already right: nothing written


def test_ipv6_sysctls_in_check_mode_and_read_only(state, caplog):
    caplog.set_level(logging.INFO)
    (state / "routes.batch").write_text(ROUTES6)
    run = Runner()
    sysctl = Sysctl(run.calls)
    assert host_restore.restore(Paths(str(state)), run, check=True, sysctl=sysctl) == EXIT_OK
    assert sysctl.values == {} and "would set tap-a: net.ipv6.conf.tap-a.accept_ra=0, " \
        "net.ipv6.conf.tap-a.autoconf=0, net.ipv6.conf.tap-a.disable_ipv6=0" in caplog.messages
    run = Runner()
    assert host_restore.restore(Paths(str(state)), run, sysctl=Sysctl(run.calls, read_only=True)) == EXIT_APPLY_FAILED
    assert any(m.startswith("error: net.ipv6.conf.tap-a.accept_ra is not 0 and cannot be set") for m in caplog.messages)
