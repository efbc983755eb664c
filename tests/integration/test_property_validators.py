"""Property, with the real tools: random fabrics either fail validation with
clear one-line messages, or every file they render passes the daemon's own
check (vtysh --dryrun, dnsmasq --test, iptables-restore / ip6tables-restore
applied in a scratch network namespace, nft -c).

The strategy leans towards valid fabrics (random instances inside the rack
subnets, random floating IPs, both NAT placements, both routing modes, BGP
session knobs), so that most examples reach the validators.
"""

import copy
import os
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from fabric_data import BASE, gateway_mode
from helpers import sh
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build

label = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
octet = st.integers(0, 255)
mac = st.tuples(*([st.integers(0, 255)] * 5)).map(lambda t: "02:" + ":".join("%02x" % b for b in t))
instance = st.fixed_dictionaries(
    {"name": label, "mac": mac, "ip": st.integers(2, 254).map(lambda h: "198.19.1.%d" % h)},
    optional={"floating_ip": st.integers(1, 254).map(lambda h: "203.0.113.%d" % h)})
knobs = st.fixed_dictionaries({}, optional={
    "bfd": st.booleans(), "graceful_restart": st.booleans(),
    "keepalive": st.integers(1, 20), "password": st.from_regex(r"[A-Za-z0-9._~+=@%^*-]{1,20}", fullmatch=True)})


@st.composite
def fabrics(draw):
    data = copy.deepcopy(BASE)
    data["hostvars"]["hv-r01-02"]["ocs_instances"] += draw(st.lists(instance, max_size=6))
    data["fabric"]["routing_mode"] = draw(st.sampled_from(["bgp", "static"]))
    if draw(st.booleans()):
        gateway_mode(data)
        for name in data["groups"]["hypervisors"]:
            data["hostvars"][name].pop("ocs_public_address", None)
    if draw(st.booleans()):
        data["fabric"].pop("metadata")
    bgp = draw(knobs)
    if "keepalive" in bgp:
        bgp["holdtime"] = bgp["keepalive"] * 3
    data["fabric"]["bgp"] = bgp
    return data


VALIDATORS = {
    "frr": lambda path, ns: ["vtysh", "--dryrun", "-f", path],
    "dnsmasq": lambda path, ns: ["dnsmasq", "--test", "-C", path],
    "iptables": lambda path, ns: ["ip", "netns", "exec", ns, "iptables-restore", path],
    "ip6tables": lambda path, ns: ["ip", "netns", "exec", ns, "ip6tables-restore", path],
    "nftables": lambda path, ns: ["ip", "netns", "exec", ns, "nft", "-c", "-f", path],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(fabrics())
def test_random_fabrics_render_files_the_daemons_accept(netns, data):
    try:
        fab = build(data)
    except FabricError as exc:
        assert all("\n" not in p for p in exc.problems)
        note("invalid: %s" % exc.problems)
        return
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for host, arts in fabric_artifacts(fab).items():
            for art in arts:
                if art.kind not in VALIDATORS:
                    continue
                text = "".join(str(v) for v in art.vars.values())
                path = os.path.join(tmp, "%s-%s" % (host, os.path.basename(art.path)))
                with open(path, "w") as fh:
                    fh.write(text)
                proc = subprocess.run(VALIDATORS[art.kind](path, netns), capture_output=True, text=True,
                                      timeout=60)
                assert proc.returncode == 0, (host, art.path, proc.stdout[-2000:], proc.stderr[-2000:])
                checked += 1
    assert checked >= len(fab.hosts)  # every host has at least one checked file (its frr.conf)


@pytest.fixture(autouse=True)
def _tools():
    for tool in ("vtysh", "dnsmasq", "iptables-restore", "ip6tables-restore", "nft"):
        sh("which", tool)
