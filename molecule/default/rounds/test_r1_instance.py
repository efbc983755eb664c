"""Rounds 1 and 2, ADD and REMOVE an instance, with --limited re-converges of
rack r01 (tor-r01, tor-r01b, hv-r01-01, hv-r01-02) instead of whole ones.

Round 1: an instance is added to hv-r01-01 by an override inventory (the
scenario's inventory stays as it is). Before the run an operator deletes an
instance route and adds foreign iptables rules, the new VM's tap already
exists (as when a VM boots before the run), and hv-r01-01 announces a prefix
it does not own (its ToR must filter it). The run must: keep dnsmasq's PID,
the foreign rules, our NAT counters on the other hypervisor and every BGP
session; put the route back; remove the stray announcement; serve the new
instance (lease; /32 at both ToRs via hv-r01-01). The host agent left the early
tap alone before the run, and serves it when it is recreated afterwards.
Round 2: the VM is deleted and the base inventory re-converged: its DHCP
entry, lease and /32 are gone.

The tests of this module are steps of one story and run in order."""

import json
import re

import pytest

from fabric import EXT_PUBLIC, FAB, ip, wait_for
from harness import (BASE, BUILD, FABRIC_HOSTS, Vm, base_yaml, bgp_peers, main_pid, messages, ok,
                     our_nat_counters, overlay, playbook, routes, rules, sessions_reset)

HV, OTHER = "hv-r01-01", "hv-r01-02"
TORS = ["tor-r01", "tor-r01b"]
LIMIT = ",".join(TORS + [HV, OTHER])
SPINE = FAB.by_role["spine"][0].name
NEW = Vm(HV, "vm-r01-01-c", "tap-r0101c", "02:00:c6:13:01:20", "198.19.1.32")
STRAY = "203.0.113.200/32"
FIRST = Vm.of(FAB.hosts[HV].instances[0])
SECOND = Vm.of(FAB.hosts[HV].instances[1])
STATE = {}

pytestmark = pytest.mark.usefixtures("leases")


def site(inventories, *args):
    return playbook("ocs.l3.site", "--limit", LIMIT, "-e", "ocs_render_build_dir=%s" % BUILD, *args,
                    inventories=inventories)


def test_round1_traffic_through_our_nat_rules_so_that_counters_count():
    for hv in (HV, OTHER):
        for inst in FAB.hosts[hv].instances:
            vm = Vm.of(inst)
            # right after a converge an instance may still wait for its lease (dhclient retries every 1-2 s)
            wait_for("%s to reach ext" % vm.name, lambda: vm.ask(EXT_PUBLIC)[0] == 0, 60)


def test_round1_faults_and_the_early_tap():
    ok(HV, "ip route del %s/32" % FIRST.address)
    for hv in (HV, OTHER):
        ok(hv, "iptables -w -C INPUT -p tcp --dport 22 -j ACCEPT 2>/dev/null || "
               "iptables -w -I INPUT 1 -p tcp --dport 22 -j ACCEPT")
        ok(hv, "iptables -w -S DOCKER >/dev/null 2>&1 || iptables -w -N DOCKER")
        ok(hv, "iptables -w -C FORWARD -j DOCKER 2>/dev/null || iptables -w -A FORWARD -j DOCKER")
    NEW.up(fresh=True)
    for hv in (HV, OTHER):
        STATE[hv] = {"dnsmasq": main_pid(hv, "ocs-dhcp"), "nat": our_nat_counters(hv)}


def test_round1_a_stray_announcement_is_received_but_filtered_at_the_tor():
    ok(HV, "ip route replace blackhole %s" % STRAY)
    ok(HV, "vtysh -c 'conf t' -c 'ip prefix-list OCS-OWN permit %s' -c 'router bgp %d' "
           "-c 'address-family ipv4 unicast' -c 'network %s'" % (STRAY, FAB.hosts[HV].asn or FAB.hypervisor_asn, STRAY))
    address = ip(FAB.hosts[HV].address)
    wait_for("tor-r01 to receive %s from %s" % (STRAY, HV), lambda: STRAY in json.loads(ok(
        "tor-r01", "vtysh -c 'show bgp ipv4 unicast neighbors %s received-routes json'" % address)).get(
        "receivedRoutes", {}), 20)
    assert routes("tor-r01", STRAY) == [] and routes(SPINE, STRAY) == [], "%s was accepted" % STRAY


def test_round1_converge_rack_r01_with_the_new_instance():
    base_instances = base_yaml("host_vars/%s.yml" % HV)["ocs_instances"]
    new = {"name": NEW.name, "mac": NEW.mac, "ip": NEW.address, "interface": NEW.interface}
    STATE["overlay"] = overlay("instance-added", host_vars={HV: {"ocs_instances": base_instances + [new]}})
    STATE["bgp"] = {h: bgp_peers(h) for h in FABRIC_HOSTS}
    res = site(STATE["overlay"])
    assert res.rc == 0, res.brief()


def test_round1_dnsmasq_kept_its_pid_foreign_rules_kept_our_jumps_once():
    for hv in (HV, OTHER):
        assert main_pid(hv, "ocs-dhcp") == STATE[hv]["dnsmasq"], "%s: dnsmasq was restarted" % hv
        lines = rules(hv, "filter", "nat")
        assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in lines and ":DOCKER - [0:0]" in lines
        assert "-A FORWARD -j DOCKER" in lines, "%s: a foreign rule was removed" % hv
        assert [x for x in lines if x.startswith("-A INPUT ")][0] == "-A INPUT -j OCS-INPUT"
        jumps = [x for x in lines if re.match(r"-A (INPUT|FORWARD|PREROUTING|OUTPUT|POSTROUTING) -j OCS-", x)]
        assert len(jumps) == 5 and len(set(jumps)) == 5, "%s: our jumps: %s" % (hv, jumps)


def test_round1_nat_counters_kept_counting_where_nat_did_not_change():
    before, after = STATE[OTHER]["nat"], our_nat_counters(OTHER)
    assert before and sum(n for _r, n in before) > 0, "no traffic went through %s's NAT rules" % OTHER
    assert [r for r, _n in after] == [r for r, _n in before], "%s: NAT rules changed" % OTHER
    dropped = [(r, b, a) for (r, b), (_r, a) in zip(before, after) if a < b]
    assert dropped == [], "%s: NAT counters reset: %s" % (OTHER, dropped)


def test_round1_deleted_route_is_back_and_the_stray_announcement_removed():
    assert [r.get("dev") for r in routes(HV, "%s/32" % FIRST.address)] == [FIRST.interface]
    assert "203.0.113.200" not in ok(HV, "vtysh -c 'show running-config'")
    ok(HV, "ip route del blackhole %s" % STRAY)


def test_round1_the_new_instance_has_its_lease_and_an_old_one_renews_from_its_lease_file():
    wait_for("%s's lease" % NEW.name, NEW.leased, 30)
    SECOND.renew_from_lease_file()


def test_round1_the_new_32_at_both_tors_via_hv_r01_01_and_no_session_reset():
    for tor in TORS:
        hop = [ip(up.address) for up in FAB.hosts[HV].uplinks if up.peer_host == tor][0]
        wait_for("%s's /32 at %s via %s" % (NEW.name, tor, hop), lambda: any(
            r.get("gateway") == hop or hop in [n.get("gateway") for n in r.get("nexthops", [])]
            for r in routes(tor, "%s/32" % NEW.address)), 20)
    after = {h: bgp_peers(h) for h in FABRIC_HOSTS}
    reset = {h: sessions_reset(STATE["bgp"][h], after[h]) for h in FABRIC_HOSTS}
    assert all(STATE["bgp"][h] for h in FABRIC_HOSTS) and {h: p for h, p in reset.items() if p} == {}


def test_round1_the_agent_left_the_early_tap_alone_then_serves_it_recreated():
    assert any(m.startswith("unknown tap %s: left alone" % NEW.interface) for m in messages(HV, "ocs-l3-agent")), \
        "the agent did not log that it left %s alone before the converge" % NEW.interface
    NEW.up(fresh=True)  # a VM restart; no playbook runs
    wait_for("%s served again" % NEW.name, lambda: NEW.routed() and NEW.leased(), 60)


def test_round2_delete_the_vm_and_converge_the_base_inventory():
    NEW.down()
    leases = ok(HV, "cat /var/lib/ocs-l3/dnsmasq.leases")
    assert sum(1 for line in leases.splitlines() if line.split()[2:3] == [NEW.address]) == 1
    res = site(BASE)
    assert res.rc == 0, res.brief()


def test_round2_its_dhcp_entry_lease_and_32_are_gone():
    hosts_file = ok(HV, "cat /etc/ocs-l3/dhcp-hosts")
    leases = ok(HV, "cat /var/lib/ocs-l3/dnsmasq.leases")
    assert NEW.mac not in hosts_file and (NEW.address + ",") not in hosts_file
    assert [line for line in leases.splitlines() if line.split()[2:3] == [NEW.address]] == []
    for host in [HV] + TORS:
        wait_for("%s's /32 gone at %s" % (NEW.name, host), lambda: routes(host, "%s/32" % NEW.address) == [], 20)

