"""Instance <-> instance on another hypervisor and in another rack: both ways,
and the receiver sees the sender's fixed address (east-west is never NATed)."""

import pytest

import fabric
from fabric import INSTANCES, ip

DHCP = fabric.LANDED
FRR = fabric.LANDED


def _pairs():
    """Per rack, one instance of each hypervisor with one of another hypervisor;
    across racks, every hypervisor (the dual-homed one too) with the other rack."""
    by_hv = {}
    for inst in INSTANCES:
        by_hv.setdefault(inst.hypervisor.name, []).append(inst)
    racks = {}
    for hv in sorted(by_hv):
        racks.setdefault(by_hv[hv][0].hypervisor.rack.id, []).append(by_hv[hv])
    pairs = []
    for hvs in racks.values():
        for a, b in zip(hvs, hvs[1:]):
            pairs.append((a[0], b[0]))
    ids = sorted(racks)
    for r1, r2 in zip(ids, ids[1:]):
        for a, b in zip(racks[r1], racks[r2]):
            pairs.append((a[-1], b[-1]))
    return pairs + [(b, a) for a, b in pairs]


PAIRS = _pairs()


@DHCP
@FRR
@pytest.mark.parametrize("src,dst", PAIRS, ids=["%s->%s" % (a.name, b.name) for a, b in PAIRS])
def test_instance_to_instance(src, dst, leases):
    ok, out = fabric.ping(None, ip(dst.ip), inst=src)
    assert ok, out
    rc, seen = fabric.echo(None, ip(dst.ip), inst=src)
    assert rc == 0, seen
    assert seen == ip(src.ip), "%s saw %s as %s (NATed east-west?)" % (dst.name, src.name, seen)
