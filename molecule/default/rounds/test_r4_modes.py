"""Round 4, MODES: the whole fabric is re-converged with nat_mode gateway and
routing_mode static (an override inventory: the scenario's ocs_fabric with
those two keys changed), verify's tests that depend on the modes run again in
those modes (the NAT tier under ECMP with >= 20 parallel flows, a gateway going
down, hairpin, ToR static routes, pings, IPv6 by static routes across racks), a NAT gateway is drained and
undrained under open flows (test_drain_gateway.py), the NAT gateway gw-01 is
rebooted (its nft maps restored before FRR starts, the tier translating again,
nothing leaked), then the base inventory is re-converged and each host must
come back to exactly the state it had before: no stale rule, route, map entry,
address or FRR line. Both modes are switched in one round: each full
re-converge costs about 1.5 minutes."""

import json
import os
import re
import subprocess

import pytest

from fabric import SCENARIO, wait_for
from harness import (BASE, BUILD, FABRIC_HOSTS, all_established, base_yaml, boot_order, host_state, nested_pytest,
                     ok, overlay, playbook, wait_booted)

MODES = []
BEFORE = {}
GATEWAY = "gw-01"
# Not test_firewall.py: tenant isolation does not depend on the modes (and costs ~20 s).
MODE_TESTS = ["test_dhcp.py", "test_routes.py", "test_east_west.py", "test_nat.py", "test_natgw.py",
              "test_zz_leaks.py"]

pytestmark = pytest.mark.usefixtures("leases")


def _tests(*names):
    return [os.path.join(SCENARIO, "tests", n) for n in names]


def test_round4_converge_the_fabric_in_gateway_and_static_mode():
    BEFORE.update({h: host_state(h) for h in FABRIC_HOSTS})
    fabric = base_yaml("group_vars/all/fabric.yml")["ocs_fabric"]
    assert (fabric["nat_mode"], fabric["routing_mode"]) == ("host", "bgp"), "the round starts from the base modes"
    # nat_mode gateway has no IPv6 border session (docs/ipv6.md): the border peers' address6 go
    peers = [{k: v for k, v in p.items() if k != "address6"} for p in fabric["border_peers"]]
    modes = dict(fabric, nat_mode="gateway", routing_mode="static", border_peers=peers)
    MODES[:] = overlay("modes", group_vars={"all": {"ocs_fabric": modes}})
    res = playbook("ocs.l3.site", "-e", "ocs_render_build_dir=%s-modes" % BUILD, inventories=MODES)
    assert res.rc == 0, res.brief()


def test_round4_verify_tests_pass_in_those_modes():
    rc, tail = nested_pytest(*_tests(*MODE_TESTS), env={"OCS_TEST_INVENTORY": os.pathsep.join(MODES)})
    assert rc == 0, tail


def test_round4_ipv6_by_static_routes_on_link():
    """test_ipv6_fabric.py in these modes: the ToRs' instance /128s via each hypervisor's ocs_address6
    and the hypervisors' IPv6 defaults via their ToRs', on-link, exactly the route files'; ping6 and TCP
    across hypervisors and racks. Only its border tests may skip (no IPv6 border in gateway mode)."""
    rc, tail = nested_pytest(*_tests("test_ipv6_fabric.py"), env={"OCS_TEST_INVENTORY": os.pathsep.join(MODES)})
    assert rc == 0, tail
    passed = re.search(r"(\d+) passed", tail.splitlines()[-1])
    assert passed and int(passed.group(1)) >= 10, tail
    skips = [ln for ln in tail.splitlines() if ln.startswith("SKIPPED")]
    assert all("no IPv6 border session" in ln for ln in skips), tail


def test_round4_drain_a_nat_gateway_under_open_flows():
    modes = os.pathsep.join(MODES)
    rc, tail = nested_pytest(os.path.join(SCENARIO, "rounds", "test_drain_gateway.py"),
                             env={"OCS_TEST_INVENTORY": modes, "OCS_SE_INVENTORY": modes})
    assert rc == 0, tail


def test_round4_a_rebooted_gateway_restores_its_maps_before_frr_starts():
    subprocess.run(["podman", "restart", "-t", "2", GATEWAY], check=True, capture_output=True)
    wait_booted(GATEWAY)
    ok(GATEWAY, "systemctl is-active ocs-l3-restore")
    restored, frr_starting = boot_order(GATEWAY, "ocs-l3-restore.service", "frr.service")
    assert restored is not None and frr_starting is not None and restored <= frr_starting, \
        "%s: restore finished at %s us, FRR began starting at %s us" % (GATEWAY, restored, frr_starting)
    table = json.loads(ok(GATEWAY, "nft -j list table ip ocs_natgw"))["nftables"]
    elements = sum(len(o["map"].get("elem", [])) for o in table if "map" in o)
    assert elements > 0, "%s: the restored nft table has no map entries" % GATEWAY
    wait_for("%s's BGP sessions" % GATEWAY, lambda: all_established(GATEWAY), 60)


def test_round4_the_nat_tier_translates_after_the_reboot_and_nothing_leaked():
    rc, tail = nested_pytest(*_tests("test_natgw.py", "test_zz_leaks.py"),
                             env={"OCS_TEST_INVENTORY": os.pathsep.join(MODES)})
    assert rc == 0, tail


def test_round4_back_to_the_base_modes_each_host_as_before():
    res = playbook("ocs.l3.site", "-e", "ocs_render_build_dir=%s" % BUILD, inventories=BASE)
    assert res.rc == 0, res.brief()
    for host in FABRIC_HOSTS:
        try:
            wait_for("%s to come back to its state" % host, lambda: host_state(host) == BEFORE[host], 60)
        except AssertionError:
            now = host_state(host)
            gone = [x for x in BEFORE[host] if x not in now]
            new = [x for x in now if x not in BEFORE[host]]
            raise AssertionError("%s differs from before the switch: gone %s; new %s" % (host, gone, new))
