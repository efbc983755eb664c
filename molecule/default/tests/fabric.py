"""The molecule fabric as the tests see it, and probes that run in it.

The fabric comes from the scenario's own inventory (or $OCS_TEST_INVENTORY)
through the project's model (the collection's module_utils, read by Ansible's inventory API), so the tests expect exactly what
the inventory says, in whichever nat_mode and routing_mode it sets.
Hosts are reached with testinfra's podman backend (`podman exec`), which
needs CONTAINERS_CONF exported (tools/podman-env.sh).

Markers for parts that other issues build: each test file sets one constant
per concern at its top, e.g. ``DHCP = pytest.mark.xfail(reason=fabric.DHCP, strict=False)``;
when that part lands, flip it to ``DHCP = fabric.LANDED``.
"""

import ipaddress
import json
import re
import os
import shlex
import time

import pytest
import testinfra
import yaml

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(SCENARIO))
# OCS_TEST_INVENTORY: another inventory of the same containers, one or more
# sources separated by ":" (the rounds run these tests again after converging
# the fabric in other modes: the scenario's inventory and an override inventory).
SOURCES = (os.environ.get("OCS_TEST_INVENTORY") or os.path.join(SCENARIO, "inventory")).split(os.pathsep)
INVENTORY = SOURCES[0]  # the base: the test settings below come from it

from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa, ntoa6  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.routes import rack_table  # noqa: E402

# Titles of the issues whose parts are not built yet (xfail reasons).
DHCP = "DHCP: dnsmasq on every hypervisor serves its instances (role ocs_dhcp)"
NAT = "NAT on hypervisors: floating 1:1, SNAT to the public address, metadata DNAT (role ocs_nat)"
FRR = "FRR: eBGP hypervisor -> ToR -> spine, spine <-> border peers and NAT gateways (role ocs_frr)"
# A no-op marker (registered in conftest.py): what a constant becomes when its part lands.
LANDED = pytest.mark.ocs_landed

FAB = build(load_fabric_input(SOURCES))
with open(os.path.join(INVENTORY, "group_vars", "all", "molecule.yml")) as _fh:
    _TEST_VARS = yaml.safe_load(_fh)
with open(os.path.join(INVENTORY, "host_vars", "ext.yml")) as _fh:
    EXT_VARS = yaml.safe_load(_fh)

ECHO_PORT = _TEST_VARS["ocs_test_echo_port"]
EXT = "ext"
EXT_PUBLIC = EXT_VARS["ocs_test_ext_public"]
EXT_PUBLIC6 = EXT_VARS.get("ocs_test_ext_public6")
INTERNAL = [ipaddress.ip_network(n.text) for n in FAB.internal_ranges]
FLOATING = [ipaddress.ip_network(n.text) for n in FAB.floating_ranges]

INSTANCES = sorted(FAB.instances(), key=lambda i: i.name)
HYPERVISORS = FAB.by_role["hypervisor"]
TORS = FAB.by_role["tor"]


def ip(value):
    return ntoa(value)


_HOSTS = {}


def host(name):
    """testinfra host for a container of the fabric."""
    if name not in _HOSTS:
        _HOSTS[name] = testinfra.get_host("podman://%s" % name)
    return _HOSTS[name]


def run(name, cmd, *args):
    """Run cmd (with args shell-quoted) on a container; return the CommandResult."""
    line = cmd if not args else cmd + " " + " ".join(shlex.quote(str(a)) for a in args)
    return host(name).run(line)


def in_ns(inst, cmd, *args):
    """Run a command inside an instance (its netns in its hypervisor)."""
    return run(inst.hypervisor.name, "ip netns exec %s %s" % (shlex.quote(inst.name), cmd), *args)


def _counters(text, pattern):
    """The packet counters of the ``ip6tables-save -c`` lines of ``text`` matching ``pattern``."""
    rx = re.compile(r"\[(\d+):\d+\] " + pattern)
    return [int(m.group(1)) for m in map(rx.match, text.splitlines()) if m]


def count6(host, word, table="filter"):
    """Packets counted by the rules commented ``word`` in ip6tables ``table`` of ``host`` (at least one)."""
    res = run(host, "ip6tables-save -c -t %s" % table)
    assert res.rc == 0, res.stderr
    hits = _counters(res.stdout, r".* --comment %s(?: |$)" % re.escape(word))
    assert hits, "%s: no rule commented %s in ip6tables %s" % (host, word, table)
    return sum(hits)


def arrived6(inst, port, comment):
    """IPv6 packets to ``port`` that reached instance ``inst``: the counter of its own raw PREROUTING
    rule commented ``comment`` (before anything can drop them)."""
    res = in_ns(inst, "ip6tables-save -c -t raw")
    return sum(_counters(res.stdout, r"-A PREROUTING .*--dport %d .*--comment %s(?: |$)" % (port, re.escape(comment))))


def json_of(name, cmd, *args):
    res = run(name, cmd, *args)
    assert res.rc == 0, "%s: %s failed: %s" % (name, cmd, res.stderr)
    return json.loads(res.stdout or "[]")


def echo(where, target, port=ECHO_PORT, source=None, inst=None):
    """Ask the ocs-probe at target:port how it sees us; returns (rc, answer or error)."""
    args = ["ask", target, port] + ([source] if source else [])
    res = in_ns(inst, "/usr/local/bin/ocs-probe", *args) if inst else run(where, "/usr/local/bin/ocs-probe", *args)
    return res.rc, (res.stdout.strip() if res.rc == 0 else res.stderr.strip()[-300:])


def ping(where, target, source=None, inst=None):
    """Ping from a host or an instance; returns (ok, output). Replies must come from target."""
    args = ["-n", "-c", "2", "-i", "0.2", "-W", "2"] + (["-I", source] if source else []) + [target]
    res = in_ns(inst, "ping", *args) if inst else run(where, "ping", *args)
    replies = [line for line in res.stdout.splitlines() if "bytes from" in line]
    ok = res.rc == 0 and bool(replies) and all(("from %s:" % target) in line for line in replies)
    return ok, res.stdout + res.stderr


def instance_address(inst):
    """[(address, prefixlen)] of the instance's eth0."""
    data = json_of(inst.hypervisor.name, "ip -n %s -4 -j addr show dev eth0" % shlex.quote(inst.name))
    return [(a["local"], a["prefixlen"]) for d in data for a in d.get("addr_info", [])]


def wait_for_leases(deadline_s=60):
    """Wait (once per session) until every instance has its address, but only
    while a DHCP server (dnsmasq) runs on every hypervisor: without one there
    is nothing to wait for."""
    servers = all(run(h.name, "pgrep -x dnsmasq").rc == 0 for h in HYPERVISORS)
    if not servers:
        return False
    end = time.monotonic() + deadline_s
    pending = list(INSTANCES)
    while pending and time.monotonic() < end:
        pending = [i for i in pending if not instance_address(i)]
        if pending:
            time.sleep(1)
    return not pending


@pytest.fixture(scope="session")
def leases():
    """Instances have had their chance to get a DHCP lease (waits at most once per session)."""
    return wait_for_leases()


def wait_for(what, check, timeout=60):
    """Poll check() every second until it returns something true (returned);
    fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, "timed out after %d s waiting for %s" % (timeout, what)
        time.sleep(1)


def ip6(inst):
    return ntoa6(inst.ip6)


def global6(inst):
    """The global IPv6 addresses of an instance's eth0 (``addr/len``), sorted."""
    data = json_of(inst.hypervisor.name, "ip -n %s -6 -j addr show dev eth0 scope global" % inst.name)
    return sorted("%s/%s" % (a["local"], a["prefixlen"]) for d in data for a in d.get("addr_info", []) if "local" in a)


def wait_for_dhcpv6(insts, timeout=60):
    """Every one of ``insts`` holds its DHCPv6 address (dhclient -6 retries until dnsmasq answers)."""
    for inst in insts:
        wait_for("%s's DHCPv6 address" % inst.name, lambda: global6(inst) == ["%s/128" % ip6(inst)], timeout)


def rack_routes(rack, tor=None):
    return rack_table(FAB, rack, tor)


def covered(address, prefixes):
    a = ipaddress.ip_address(address)
    return any(a in ipaddress.ip_network(p) for p in prefixes)
