"""NAT with real packets: floating IPs both ways, SNAT for instances without
one, metadata DNAT. `ext` is the internet; it has routes only to the
floating ranges, so it can only answer public addresses."""

import pytest

import fabric
from fabric import EXT, EXT_PUBLIC, FAB, INSTANCES, ip

DHCP = fabric.LANDED
NAT = fabric.LANDED
FRR = fabric.LANDED

FLOATING = [i for i in INSTANCES if i.floating_ip is not None]
PRIVATE = [i for i in INSTANCES if i.floating_ip is None]


def _snat_sources(inst):
    if FAB.nat_mode == "host":
        return {ip(inst.hypervisor.public_address)}
    return {ip(g.public_address) for g in FAB.by_role["nat_gateway"]}


@DHCP
@NAT
@FRR
@pytest.mark.parametrize("inst", FLOATING, ids=lambda i: i.name)
def test_ext_reaches_instance_by_floating_ip(inst, leases):
    fip = ip(inst.floating_ip)
    ok, out = fabric.ping(EXT, fip, source=EXT_PUBLIC)
    assert ok, "no replies from %s: %s" % (fip, out)
    rc, seen = fabric.echo(EXT, fip, source=EXT_PUBLIC)
    assert rc == 0, seen
    assert seen == EXT_PUBLIC, "%s saw ext as %s" % (inst.name, seen)


@DHCP
@NAT
@FRR
@pytest.mark.parametrize("inst", FLOATING, ids=lambda i: i.name)
def test_instance_with_floating_ip_leaves_as_it(inst, leases):
    rc, seen = fabric.echo(None, EXT_PUBLIC, inst=inst)
    assert rc == 0, seen
    assert seen == ip(inst.floating_ip)


@DHCP
@NAT
@FRR
@pytest.mark.parametrize("inst", PRIVATE, ids=lambda i: i.name)
def test_instance_without_floating_ip_is_snatted(inst, leases):
    ok, out = fabric.ping(None, EXT_PUBLIC, inst=inst)
    assert ok, out
    rc, seen = fabric.echo(None, EXT_PUBLIC, inst=inst)
    assert rc == 0, seen
    assert seen in _snat_sources(inst), "ext saw %s as %s" % (inst.name, seen)


@DHCP
@NAT
@FRR
@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.name)
def test_metadata_sees_fixed_ip(inst, leases):
    meta = FAB.metadata
    rc, seen = fabric.echo(None, ip(meta["ip"]), port=meta["port"], inst=inst)
    assert rc == 0, seen
    assert seen == ip(inst.ip), "metadata target saw %s as %s" % (inst.name, seen)


def _hairpin_pairs():
    """Each instance (with and without a floating IP) calls the floating IP of
    an instance on another hypervisor."""
    pairs = []
    for src in INSTANCES:
        dst = next(i for i in FLOATING if i.hypervisor.name != src.hypervisor.name)
        pairs.append((src, dst))
    return pairs


HAIRPIN = _hairpin_pairs()


@DHCP
@NAT
@FRR
@pytest.mark.parametrize("src,dst", HAIRPIN, ids=["%s->%s" % (a.name, b.name) for a, b in HAIRPIN])
def test_hairpin_to_a_floating_ip(src, dst, leases):
    """The callee sees the caller as the internet would (its floating IP, or
    the SNAT address); the answer comes from the floating IP that was called
    (else the TCP connection would not complete)."""
    rc, seen = fabric.echo(None, ip(dst.floating_ip), inst=src)
    assert rc == 0, seen
    want = {ip(src.floating_ip)} if src.floating_ip is not None else _snat_sources(src)
    assert seen in want, "%s saw %s as %s, want one of %s" % (dst.name, src.name, seen, sorted(want))
