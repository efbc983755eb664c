"""IPv6 on the hypervisors of the dual-stack fabric (issue 20, part 1): each instance's real
``dhclient -6`` gets its fixed address and its default route from router advertisements, two
instances of one hypervisor talk over IPv6, an instance without an ip6 gets none, and each guard's
drop counter rises when an instance sends what the guard forbids (whole frames built by
tests/frames6.py, sent from the instance's eth0), next to a control that passes. Once, the harm
of a router advertisement is shown with the guard removed, on a tap that would accept it."""

import re
import time

import pytest

from fabric import (ECHO_PORT, FAB, INSTANCES, arrived6, count6, global6, in_ns, ip6, json_of, ping, run, wait_for,
                    wait_for_dhcpv6)
from frames6 import ALL_NODES, BAD_PREFIX, SEND, frame, ra, udp
from ansible_collections.ocs.l3.plugins.module_utils.constants import GATEWAY6_LINK_LOCAL, RA_ROUTER_LIFETIME

V6 = [i for i in INSTANCES if i.ip6 is not None]
NO_V6 = [i for i in INSTANCES if i.ip6 is None]
# Two IPv6 instances on one hypervisor: the same-host pair and the guards' sender and receiver.
PAIR = next([a, b] for a in V6 for b in V6 if a.hypervisor is b.hypervisor and a.name < b.name)
SENDER, RECEIVER = PAIR
HV = SENDER.hypervisor.name
COUNT_PORT = 7002  # the receiver counts UDP to this port in its raw PREROUTING (before any filter)


def link_local(inst):
    data = json_of(inst.hypervisor.name, "ip -n %s -6 -j addr show dev eth0 scope link" % inst.name)
    return [a["local"] for d in data for a in d.get("addr_info", []) if "local" in a][0]


def tap_mac(inst):
    return json_of(inst.hypervisor.name, "ip -j link show dev %s" % inst.interface)[0]["address"]


def send(inst, dst, payload, nh=58, src=None, eth_dst=None, hl=64):
    """One frame out of ``inst``'s eth0: its own MAC, to its tap's MAC (or ``eth_dst``)."""
    data = frame(inst.mac, eth_dst or tap_mac(inst), src or ip6(inst), dst, nh, payload, hl)
    res = in_ns(inst, "python3 -c", SEND, data.hex())
    assert res.rc == 0, res.stderr


@pytest.fixture(scope="module")
def served(leases):
    """Every IPv6 instance holds its DHCPv6 address (dhclient -6 retries until dnsmasq answers)."""
    wait_for_dhcpv6(V6)
    for inst in PAIR:  # the receiver's counter of arrivals (test-only, in the instance itself)
        if "ocs-test-arrived" not in in_ns(inst, "ip6tables -t raw -S PREROUTING").stdout:
            res = in_ns(inst, "ip6tables -t raw -A PREROUTING -p udp --dport %d -m comment "
                              "--comment ocs-test-arrived" % COUNT_PORT)
            assert res.rc == 0, res.stderr
    return True


def test_the_fabric_is_dual_stack():
    """What the rest needs: IPv6 instances, one without, and two IPv6 instances on one hypervisor."""
    assert FAB.dual_stack and V6 and NO_V6 and PAIR


@pytest.mark.parametrize("inst", V6, ids=lambda i: i.name)
def test_dhcpv6_address_and_default_route_from_router_advertisements(inst, served):
    assert global6(inst) == ["%s/128" % ip6(inst)]
    route = wait_for("%s's default route from an RA" % inst.name,
                     lambda: run(inst.hypervisor.name, "ip -n %s -6 route show default" % inst.name).stdout.strip())
    assert route.startswith("default via %s dev eth0 proto ra" % GATEWAY6_LINK_LOCAL), route
    # the RA's MTU option (or the DHCPv4 one, both the fabric's) on the link's IPv6 side
    mtu = run(inst.hypervisor.name, "ip netns exec %s sysctl -n net.ipv6.conf.eth0.mtu" % inst.name).stdout.strip()
    assert mtu == str(FAB.mtu)
    # off-link prefix: no on-link route for the rack's subnet, everything goes through the router
    routes = run(inst.hypervisor.name, "ip -n %s -6 route show" % inst.name).stdout
    assert not [n.text for n in inst.hypervisor.rack.instance_subnets6 if n.text in routes], routes


@pytest.mark.parametrize("inst", NO_V6, ids=lambda i: i.name)
def test_an_instance_without_ip6_gets_no_ipv6(inst, served):
    assert global6(inst) == []
    assert run(inst.hypervisor.name, "ip -n %s -6 route show default" % inst.name).stdout.strip() == ""


def test_the_agent_refreshes_every_instances_default_route(served):
    """dnsmasq's periodic RAs reach one tap per range (docs/ipv6.md): every other guest's default route
    would expire after the router lifetime. With every IPv6 instance's default route deleted (as
    when it expired) and no solicitation, the agent's RAs (it sends them to each IPv6 tap it serves,
    on start too) give each one back, with the full lifetime, from fe80::1."""
    for inst in V6:
        run(inst.hypervisor.name, "ip -n %s -6 route flush default" % inst.name)
        assert not run(inst.hypervisor.name, "ip -n %s -6 route show default" % inst.name).stdout.strip()
    for host in sorted({inst.hypervisor.name for inst in V6}):
        res = run(host, "systemctl restart ocs-l3-agent")
        assert res.rc == 0, res.stderr
    for inst in V6:
        route = wait_for("%s's default route from the agent's RA" % inst.name, lambda: run(
            inst.hypervisor.name, "ip -n %s -6 route show default" % inst.name).stdout.strip(), 30)
        assert route.startswith("default via %s dev eth0 proto ra" % GATEWAY6_LINK_LOCAL), route
        expires = int(re.search(r" expires (\d+)sec", route).group(1))
        assert RA_ROUTER_LIFETIME - 60 <= expires <= RA_ROUTER_LIFETIME, route


def test_ping6_and_tcp_between_two_instances_of_one_hypervisor(served):
    a, b = PAIR
    for src, dst in ((a, b), (b, a)):
        ok, out = ping(None, ip6(dst), inst=src)
        assert ok, out
        res = in_ns(src, "/usr/local/bin/ocs-probe ask %s %d --peer" % (ip6(dst), ECHO_PORT))
        assert res.rc == 0, res.stderr
        # the probe answers with its name and the source it saw: the sender's own address, not NATed
        assert ip6(src) in res.stdout and res.stdout.split()[-1] == ip6(dst), res.stdout


def test_spoofed_source_is_dropped_own_source_passes(served):
    before, got = count6(HV, "ocs-spoof6"), arrived6(RECEIVER, COUNT_PORT, "ocs-test-arrived")
    send(SENDER, ip6(RECEIVER), udp(5000, COUNT_PORT), nh=17)  # control: its own address
    for forged in (ip6(RECEIVER), "2001:db8:0:1::dead", "2001:db8:bad::1"):
        send(SENDER, ip6(RECEIVER), udp(5000, COUNT_PORT), nh=17, src=forged)
    time.sleep(0.5)
    assert arrived6(RECEIVER, COUNT_PORT, "ocs-test-arrived") == got + 1
    assert count6(HV, "ocs-spoof6") == before + 3


def test_router_advertisement_and_dhcpv6_server_messages_are_dropped(served):
    ll = link_local(SENDER)
    ra_before, dhcp_before, got = count6(HV, "ocs-ra6"), count6(HV, "ocs-dhcp6-server"), arrived6(RECEIVER, COUNT_PORT, "ocs-test-arrived")
    send(SENDER, ALL_NODES[0], ra(SENDER.mac), src=ll, eth_dst=ALL_NODES[1], hl=255)
    send(SENDER, GATEWAY6_LINK_LOCAL, udp(547, 546), nh=17, src=ll)  # a DHCPv6 server's reply to the host
    send(SENDER, ip6(RECEIVER), udp(547, COUNT_PORT), nh=17)  # and one routed to another instance
    send(SENDER, ip6(RECEIVER), udp(5470, COUNT_PORT), nh=17)  # control: another source port arrives
    time.sleep(0.5)
    assert count6(HV, "ocs-ra6") == ra_before + 1
    assert count6(HV, "ocs-dhcp6-server") == dhcp_before + 2
    assert arrived6(RECEIVER, COUNT_PORT, "ocs-test-arrived") == got + 1
    # the other instances still have their default route through fe80::1 only
    route = run(HV, "ip -n %s -6 route show default" % RECEIVER.name).stdout
    assert route.count("default") == 1 and GATEWAY6_LINK_LOCAL in route, route


def test_without_its_guard_an_instances_router_advertisement_hijacks_the_hypervisor(served):
    """The harm, once: the sender's tap accepts RAs (accept_ra=2: it forwards). Without the host
    policy's jump an RA from the instance gives the hypervisor a default route and a prefix through
    the instance; with it, nothing. Everything is put back as it was. The agent is stopped meanwhile:
    it is a second protection (serving a tap sets accept_ra=0 and puts the jump back), and a batch of
    it landing in this window (a CI run on a loaded machine) made the control fail once."""
    tap, ll = SENDER.interface, link_local(SENDER)
    jumps, defaults = run(HV, "ip6tables -S INPUT").stdout, run(HV, "ip -6 route show default").stdout
    ra_from_instance = (ALL_NODES[0], ra(SENDER.mac))

    def hijacked():
        routes = run(HV, "ip -6 route show dev %s" % tap).stdout
        if "default via %s" % ll in routes and BAD_PREFIX + "/64" in routes:
            return routes
        send(SENDER, ra_from_instance[0], ra_from_instance[1], src=ll, eth_dst=ALL_NODES[1], hl=255)  # again
        return ""

    assert "-A INPUT -j OCS-INPUT" in jumps, jumps
    assert run(HV, "systemctl stop ocs-l3-agent").rc == 0
    try:
        _harm_and_guard(tap, ll, ra_from_instance, hijacked)
    finally:
        assert run(HV, "systemctl start ocs-l3-agent").rc == 0
    assert run(HV, "ip6tables -S INPUT").stdout == jumps
    assert run(HV, "ip -6 route show default").stdout == defaults


def _harm_and_guard(tap, ll, ra_from_instance, hijacked):
    try:
        assert run(HV, "sysctl -qw net.ipv6.conf.%s.accept_ra=2" % tap).rc == 0
        assert run(HV, "ip6tables -D INPUT -j OCS-INPUT").rc == 0
        send(SENDER, ra_from_instance[0], ra_from_instance[1], src=ll, eth_dst=ALL_NODES[1], hl=255)
        wait_for("the instance's RA to give %s a default route and a prefix through it" % HV, hijacked, 5)
    finally:
        run(HV, "ip -6 route flush dev %s proto ra" % tap)
        run(HV, "ip -6 route del %s/64 dev %s" % (BAD_PREFIX, tap))
        if "-A INPUT -j OCS-INPUT" not in run(HV, "ip6tables -S INPUT").stdout:
            assert run(HV, "ip6tables -I INPUT 1 -j OCS-INPUT").rc == 0
    try:
        before = count6(HV, "ocs-ra6")
        send(SENDER, ra_from_instance[0], ra_from_instance[1], src=ll, eth_dst=ALL_NODES[1], hl=255)
        time.sleep(1)
        assert count6(HV, "ocs-ra6") == before + 1
        routes = run(HV, "ip -6 route show dev %s" % tap).stdout
        assert "default" not in routes and BAD_PREFIX not in routes, routes
    finally:
        run(HV, "sysctl -qw net.ipv6.conf.%s.accept_ra=0" % tap)
