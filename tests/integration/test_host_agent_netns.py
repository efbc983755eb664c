"""The host agent and the boot restore against a real kernel, in scratch network namespaces.

Both run as they run on a host: the archive the role installs
(``ocs-l3.pyz``: ``constants.HOST_LIBRARY`` and the programs), with the system
Python without site-packages (``python3 -S``: standard library only), on a
temporary state directory (``--state-dir``). Taps are veth devices created with ``ip`` only.
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid

import pytest


from helpers import ROOT, example_in_mode, render, run_module, sh
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.plugin_utils import host_library

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
BOUND = 2.0  # seconds a tap may take to be served (measured: well under 0.2 s)
HV = "hv-r01-01"
TAP = "tap7a6020f1b76"  # vm-r01-01-a: gateway address, its /32 and a floating /32; fe80::1, gateway6, its /128
TAP_SERVED = 6  # the addresses and routes of those (the agent's log)
TAP_LINES = {"198.19.1.30", "203.0.113.101"}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The host programs and library as the role installs them: the render's one archive."""
    return host_library.write_archive(str(tmp_path_factory.mktemp("hostlib")))


def host_env(library):
    return dict(PATH=os.environ["PATH"], LANG="C.UTF-8")


def install(state, files):
    """Write state files the way Ansible's copy does: a new file renamed over the old one."""
    state.mkdir(exist_ok=True)
    for name, text in files.items():
        tmp = state / (name + ".new")
        tmp.write_text(text)
        os.replace(tmp, state / name)


def hv_files(rendered, host=HV):
    base = rendered / host / "etc" / "ocs-l3"
    return {p.name: p.read_text() for p in base.iterdir() if p.is_file()}


class Agent:
    """ocs-l3-agent running inside a namespace; its log lines collected as they come."""

    def __init__(self, netns, library, state, *args):
        self.lines = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, PYTHON, "-S", library, "agent",
             "--state-dir", str(state), *args],
            env=host_env(library), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_log(r"^started: ")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, ln) for ln in self.lines):
                return
            assert self.proc.poll() is None, "agent died:\n" + "\n".join(self.lines)
            time.sleep(0.02)
        raise AssertionError("no log line %r in:\n%s" % (pattern, "\n".join(self.lines)))

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def agents():
    started = []
    yield started
    for agent in started:
        agent.stop()


def routes(ns, dev=None):
    """Destinations of our routes (on ``dev``)."""
    args = ["ip", "-n", ns, "-j", "-4", "route", "show", "proto", str(constants.ROUTE_PROTOCOL)]
    if dev:
        args += ["dev", dev]
    proc = sh(*args, check=False)
    return {r["dst"] for r in json.loads(proc.stdout or "[]")} if proc.returncode == 0 else set()


def addresses(ns, dev):
    proc = sh("ip", "-n", ns, "-j", "-4", "addr", "show", "dev", dev, check=False)
    if proc.returncode != 0:
        return set()
    return {"%s/%s%s" % (a["local"], a["prefixlen"], " noprefixroute" if a.get("noprefixroute") else "")
            for link in json.loads(proc.stdout) for a in link["addr_info"]}


def add_taps(ns, names, up=True):
    batch = "".join("link add %s type veth peer name p%s\n" % (n, n[-11:]) for n in names)
    if up:
        batch += "".join("link set %s up\n" % n for n in names)
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)


def wait(pred, timeout=BOUND):
    """Seconds until pred() holds; AssertionError after ``timeout``."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("not within %.1f s" % timeout)
        time.sleep(0.005)
    return time.monotonic() - t0


def served(ns, tap=TAP, dsts=frozenset(TAP_LINES)):
    return routes(ns, tap) == set(dsts) and "198.19.1.1/24 noprefixroute" in addresses(ns, tap)


def proxy_arp(ns, tap):
    return sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/%s/proxy_arp" % tap).stdout.strip()


# --- the agent -----------------------------------------------------------------

def test_tap_created_recreated_and_bounced_is_served(netns, rendered, library, tmp_path, agents):
    state = tmp_path / "state"
    install(state, {k: v for k, v in hv_files(rendered).items() if k in ("routes.batch", "agent.conf")})
    sh("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.conf.default.proxy_arp=0")  # the agent sets it
    agent = Agent(netns, library, state)
    agents.append(agent)
    times = []
    add_taps(netns, [TAP])
    times.append(wait(lambda: served(netns)))
    assert proxy_arp(netns, TAP) == "1"
    agent.wait_log(r"^served %s: %d addresses/routes, proxy_arp on$" % (TAP, TAP_SERVED))

    sh("ip", "-n", netns, "link", "del", TAP)
    assert routes(netns) == set()
    add_taps(netns, [TAP])  # the VM restarted: a new tap of the same name
    times.append(wait(lambda: served(netns)))

    sh("ip", "-n", netns, "link", "set", TAP, "down")
    assert routes(netns, TAP) == set()  # the kernel dropped them
    sh("ip", "-n", netns, "link", "set", TAP, "up")
    times.append(wait(lambda: served(netns)))
    print("\ntap served after creation / recreation / down-up: %s s" % " / ".join("%.3f" % t for t in times))


def test_unknown_tap_is_left_alone_and_logged(netns, rendered, library, tmp_path, agents):
    state = tmp_path / "state"
    install(state, {k: v for k, v in hv_files(rendered).items() if k in ("routes.batch", "agent.conf")})
    agent = Agent(netns, library, state)
    agents.append(agent)
    add_taps(netns, ["tapdeadbeef00", "eth5"])
    add_taps(netns, [TAP])  # a known one after them: once it is served, the others were seen
    wait(lambda: served(netns))
    agent.wait_log(r"^unknown tap tapdeadbeef00: left alone")
    assert addresses(netns, "tapdeadbeef00") == set() and routes(netns, "tapdeadbeef00") == set()
    assert not any("eth5" in ln for ln in agent.lines)


def test_200_taps_at_once_are_all_served(netns, library, tmp_path, agents):
    taps = ["tapb%010d" % i for i in range(200)]
    lines = ["instance_ifname_prefix=tap"]
    batch = []
    for i, tap in enumerate(taps):
        batch.append("address replace 198.19.%d.1/24 dev %s noprefixroute" % (i // 200 + 1, tap))
        batch.append("route replace 198.19.%d.%d/32 dev %s proto 211 scope link" % (i // 200 + 1, 10 + i, tap))
    state = tmp_path / "state"
    install(state, {"agent.conf": "\n".join(lines) + "\n", "routes.batch": "\n".join(batch) + "\n"})
    agent = Agent(netns, library, state)
    agents.append(agent)
    t0 = time.monotonic()
    add_taps(netns, taps)
    created = time.monotonic() - t0
    took = wait(lambda: len(routes(netns)) == 200, timeout=30) + created
    assert all("198.19.1.1/24 noprefixroute" in addresses(netns, t) for t in taps[::37])
    # the agent logs a batch after applying it: its line may trail the routes by a moment
    # (under two pytest workers it did)
    agent.wait_log("^batch: ", timeout=5)
    batches = [ln for ln in agent.lines if ln.startswith("batch: ")]
    assert 1 <= len(batches) <= 20, batches  # gathered, not one ip call per tap
    assert sum(int(re.search(r"(\d+) served", b).group(1)) for b in batches) == 200
    print("\n200 taps: created in %.3f s, all served %.3f s after the first was created, in %d batches: %s"
          % (created, took, len(batches), "; ".join(batches)))


def test_a_new_state_version_is_used_by_the_next_event(netns, rendered, library, tmp_path, agents):
    files = {k: v for k, v in hv_files(rendered).items() if k in ("routes.batch", "agent.conf")}
    state = tmp_path / "state"
    install(state, files)
    agent = Agent(netns, library, state)
    agents.append(agent)
    add_taps(netns, [TAP])
    wait(lambda: served(netns))
    # a converge moves the instance's floating IP: a new file, renamed over the old one
    install(state, {"routes.batch": files["routes.batch"].replace("203.0.113.101/32 dev " + TAP,
                                                                   "203.0.113.199/32 dev " + TAP)})
    sh("ip", "-n", netns, "link", "set", TAP, "down")
    sh("ip", "-n", netns, "link", "set", TAP, "up")
    wait(lambda: served(netns, dsts={"198.19.1.30", "203.0.113.199"}))
    # a corrupt version: logged, nothing changes (the tap stays as the kernel left it)
    install(state, {"routes.batch": files["routes.batch"] + "route replace 198.19.1.99/32 dev %s proto 7 scope link\n" % TAP})
    sh("ip", "-n", netns, "link", "set", TAP, "down")
    sh("ip", "-n", netns, "link", "set", TAP, "up")
    agent.wait_log(r"^error: %s:\d+: route protocol 7 is not 211" % re.escape(str(state / "routes.batch")))
    agent.wait_log(r"not served: %s" % TAP)
    assert routes(netns, TAP) == set()


def test_without_the_agent_a_recreated_tap_stays_dark(netns, rendered, library, tmp_path, agents):
    """Negative control first (a converge serves the tap, a VM restart leaves it dark), then
    the positive one: the agent, started on that host, heals it in its start pass."""
    state = tmp_path / "state"
    install(state, {k: v for k, v in hv_files(rendered).items() if k in ("routes.batch", "agent.conf")})
    add_taps(netns, [TAP])
    res = run_module(netns, "ocs.l3.ocs_route_table", {"src": str(state / "routes.batch"), "prune": False})
    assert res.get("changed") and not res.get("failed"), res
    assert served(netns)
    sh("ip", "-n", netns, "link", "del", TAP)
    add_taps(netns, [TAP])
    time.sleep(1.5)
    assert routes(netns, TAP) == set() and addresses(netns, TAP) == set()  # dark until the next converge
    agent = Agent(netns, library, state)
    agents.append(agent)
    wait(lambda: served(netns))
    agent.wait_log(r"^served %s: %d addresses/routes" % (TAP, TAP_SERVED))


def test_lost_jump_is_put_back_on_the_next_tap_event(netns, rendered, library, tmp_path, agents):
    files = hv_files(rendered)
    state = tmp_path / "state"
    install(state, {k: files[k] for k in ("routes.batch", "agent.conf", "iptables-filter.rules")})
    restore = run_restore(netns, library, state)
    assert restore.returncode == 0, restore.stdout
    sh("ip", "netns", "exec", netns, "iptables", "-F", "INPUT")  # some tool flushes INPUT
    agent = Agent(netns, library, state)
    agents.append(agent)
    add_taps(netns, [TAP])
    wait(lambda: served(netns))
    agent.wait_log(r"^warning: jumps into our chains restored \(ipv4\): -I INPUT 1 -j " + constants.FILTER_INPUT)
    save = sh("ip", "netns", "exec", netns, "iptables-save", "-t", "filter").stdout
    assert save.count("-A INPUT -j %s\n" % constants.FILTER_INPUT) == 1


# --- the boot restore ----------------------------------------------------------------

def run_restore(ns, library, state, *args):
    return subprocess.run(["ip", "netns", "exec", ns, PYTHON, "-S", library, "restore",
                           "--state-dir", str(state), *args],
                          env=host_env(library), capture_output=True, text=True, timeout=120)


def kernel(ns):
    """What the restore and the modules leave: our routes, addresses, iptables, nft (no counters)."""
    def x(*cmd):
        return sh("ip", "netns", "exec", ns, *cmd, check=False).stdout

    def clean(text):
        return [re.sub(r"\[\d+:\d+\]", "", ln) for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(
        routes=x("ip", "-4", "route", "show", "proto", str(constants.ROUTE_PROTOCOL)),
        addrs=x("ip", "-4", "-o", "addr", "show"),
        nat=clean(x("iptables-save", "-t", "nat")), filter=clean(x("iptables-save", "-t", "filter")),
        filter6=clean(x("ip6tables-save", "-t", "filter")),
        nft=x("nft", "list", "table", constants.NFT_FAMILY, constants.NFT_TABLE))


@pytest.fixture
def namespaces():
    made = []

    def make(tag):
        name = "ocs-ag-%s-%s" % (tag, uuid.uuid4().hex[:6])
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        made.append(name)
        return name
    yield make
    for name in made:
        sh("ip", "netns", "del", name, check=False)


def modules(ns, state, files):
    """What a converge's modules do with the same files."""
    contract = constants.contract()
    res = [run_module(ns, "ocs.l3.ocs_route_table", {"src": str(state / "routes.batch"), "prune": False})]
    for name, family, jumps in (("iptables-nat.rules", "ipv4", contract["nat_jumps"]),
                                ("iptables-filter.rules", "ipv4", contract["filter_jumps"]),
                                ("ip6tables-filter.rules", "ipv6", contract["filter_jumps"])):
        if name in files:
            res.append(run_module(ns, "ocs.l3.ocs_iptables_chains", {"src": str(state / name), "family": family,
                                                                      "jumps": jumps, "conntrack": False}))
    if "natgw.nft" in files:
        res.append(run_module(ns, "ocs.l3.ocs_nft_table", {"src": str(state / "natgw.nft")}))
    for r in res:
        assert not r.get("failed"), r
    return res


@pytest.fixture(scope="module")
def gateway_rendered(tmp_path_factory):
    """The example inventory rendered in nat_mode gateway (the gateways get the nft table)."""
    tmp = tmp_path_factory.mktemp("gwmode")
    inv = example_in_mode(tmp / "inv", "gateway")
    proc = render(str(tmp / "build"), str(inv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "build"


@pytest.mark.parametrize("host", ["hv-r01-01", "tor-r01", "gw-01"])
def test_restore_equals_the_modules_and_is_idempotent(rendered, gateway_rendered, library, tmp_path, namespaces,
                                                      host):
    build = gateway_rendered if host == "gw-01" else rendered
    files = {k: v for k, v in hv_files(build, host).items() if k != "dhcp-hosts" and k != "dnsmasq.conf"}
    state = tmp_path / "state"
    install(state, files)
    booted, converged = namespaces("boot"), namespaces("conv")
    taps = sorted(set(re.findall(r" dev (tap\w+)", files["routes.batch"])))
    for ns in (booted, converged):
        add_taps(ns, taps[:2])  # two instances started before the restore; the others later
    first = run_restore(booted, library, state)
    assert first.returncode == 0, first.stdout + first.stderr
    modules(converged, state, files)
    assert kernel(booted) == kernel(converged)
    after = kernel(booted)
    present = {  # something of each part is there (not two empty kernels compared)
        "hv-r01-01": "198.19.1.30 dev " in after["routes"] and "203.0.113.11/32" in after["addrs"]
        and len(after["filter"]) > 10 and len(after["nat"]) > 10 and len(after["filter6"]) > 4,
        "tor-r01": "blackhole 198.19.1.0/24" in after["routes"],
        "gw-01": "203.0.113.251/32" in after["addrs"] and "fip_to_fixed" in after["nft"],
    }
    assert present[host], after
    if taps[2:]:
        assert "instance taps not present yet, left to ocs-l3-agent" in first.stdout
    assert "warning" not in first.stdout and "error" not in first.stdout, first.stdout

    second = run_restore(booted, library, state)
    assert second.returncode == 0 and second.stdout.splitlines()[-1] == "restore: nothing to change", second.stdout
    assert kernel(booted) == after


def test_a_corrupt_file_applies_nothing(rendered, library, tmp_path, namespaces):
    files = hv_files(rendered)
    files["iptables-nat.rules"] = files["iptables-nat.rules"].replace("*nat", "*nat\n:PREROUTING ACCEPT [0:0]", 1)
    state = tmp_path / "state"
    install(state, files)
    ns = namespaces("bad")
    empty = kernel(ns)
    res = run_restore(ns, library, state)
    assert res.returncode == 2
    assert res.stdout.startswith("error: %s would touch chains that are not ours: nat: chain PREROUTING"
                                 % (state / "iptables-nat.rules")), res.stdout
    assert res.stdout.rstrip().endswith("nothing applied")
    assert kernel(ns) == empty  # not even the routes, which were fine


def _sysctls6(ns, tap):
    return [sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv6/conf/%s/%s" % (tap, key)).stdout.strip()
            for key in ("accept_ra", "autoconf", "disable_ipv6")]


def test_restore_sets_an_existing_taps_ipv6_sysctls_before_its_addresses(library, tmp_path, namespaces):
    """A dual-stack hypervisor's routes.batch (routes.py on the unit tests' dual-stack fabric); a tap
    already there at boot, made while conf.default.disable_ipv6 was 1 and accepting RAs: the restore
    turns RAs and autoconf off and IPv6 on, then its IPv6 addresses and /128 go in."""
    import copy
    from fabric_data import BASE, dual_stack
    from ansible_collections.ocs.l3.plugins.module_utils import routes
    from ansible_collections.ocs.l3.plugins.module_utils.artifact import text
    from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
    fab = build(dual_stack(copy.deepcopy(BASE)))
    hv = fab.hosts[HV]
    vm_b = next(i for i in hv.instances if i.name == "vm-b")  # tap-b, ip6 2001:db8:0:1::b
    state = tmp_path / "state"
    install(state, {"routes.batch": text(routes.host_lines(fab, hv)),
                    "agent.conf": "instance_ifname_prefix=%s\n" % fab.instance_ifname_prefix})
    ns = namespaces("six")
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1",
       "net.ipv6.conf.default.accept_ra=2")
    add_taps(ns, [vm_b.interface])
    assert _sysctls6(ns, vm_b.interface) == ["2", "1", "1"]
    res = run_restore(ns, library, state)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _sysctls6(ns, vm_b.interface) == ["0", "0", "0"]
    assert "%s: net.ipv6.conf.%s.accept_ra=0" % (vm_b.interface, vm_b.interface) in res.stdout, res.stdout
    v6 = sh("ip", "-n", ns, "-6", "route", "show", "dev", vm_b.interface).stdout
    assert "2001:db8:0:1::b proto 211" in v6, v6
    addrs = sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", vm_b.interface).stdout
    assert "fe80::1/64" in addrs and "2001:db8:0:1::1/64" in addrs, addrs
    again = run_restore(ns, library, state)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "restore: nothing to change", again.stdout
