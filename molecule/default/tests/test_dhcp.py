"""Every instance gets exactly its inventory address, gateway and MTU by DHCP
(a real dhclient in the instance's netns; the test never sets an address)."""

import pytest

import fabric
from fabric import INSTANCES, ip, json_of, run

DHCP = fabric.LANDED


@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.name)
def test_instance_port_as_the_inventory_says(inst):
    """prepare.yml: the tap is named as the inventory says, the instance has its MAC."""
    hv = inst.hypervisor.name
    assert run(hv, "ip link show dev %s" % inst.interface).rc == 0, "no interface %s on %s" % (inst.interface, hv)
    link = json_of(hv, "ip -n %s -j link show dev eth0" % inst.name)
    assert link[0]["address"] == inst.mac


@DHCP
@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.name)
def test_lease_address_gateway_mtu(inst, leases):
    assert fabric.instance_address(inst) == [(ip(inst.ip), inst.subnet.prefixlen)]
    routes = json_of(inst.hypervisor.name, "ip -n %s -4 -j route show default" % inst.name)
    assert [r.get("gateway") for r in routes] == [ip(inst.gateway_ip)]
    link = json_of(inst.hypervisor.name, "ip -n %s -j link show dev eth0" % inst.name)
    assert link[0]["mtu"] == fabric.FAB.mtu
