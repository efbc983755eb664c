# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the topology across hosts: in a rack with more than one ToR every
hypervisor has a link to every ToR (each ToR announces the whole rack, so a
ToR without a path to one of its hypervisors would draw traffic it cannot
deliver); static routing needs numbered uplinks (a static next hop is an
address). Needs the hosts first (peers resolved)."""

from .check import where


def linked_tors(hv):
    """Names of the ToRs ``hv`` has a link to: numbered uplinks' peers and ToR downlinks naming it."""
    names = {up.peer_host for up in hv.uplinks if up.peer_host is not None}
    if hv.rack is not None:
        names.update(tor.name for tor in hv.rack.tors for down in tor.downlinks if down.host == hv.name)
    return names


def rack_tors(chk, fab):
    """Each hypervisor of a rack with two or more ToRs is linked to every one of them."""
    for rack in fab.racks.values():
        if len(rack.tors) < 2:
            continue
        tors = sorted(t.name for t in rack.tors)
        for hv in rack.hypervisors:
            missing = [name for name in tors if name not in linked_tors(hv)]
            if missing:
                chk.add(where(hv.group, hv.name, "ocs_uplinks"),
                        "has no uplink to %s, %s of rack %s (in a rack with %d ToRs every hypervisor needs an "
                        "uplink to each: an ocs_uplinks entry whose peer is the ToR's link address, or an "
                        "ocs_downlinks entry of the ToR naming %s)"
                        % (", ".join(missing), "a ToR" if len(missing) == 1 else "ToRs", rack.id, len(tors),
                           hv.name))


def static_numbered(chk, fab):
    """routing_mode static: every hypervisor uplink names its peer (the next hop of the static default)."""
    if fab.routing_mode != "static":
        return
    for hv in fab.by_role["hypervisor"]:
        for i, up in enumerate(hv.uplinks):
            if up.peer is None:
                chk.add(where(hv.group, hv.name, "ocs_uplinks", i, "peer"),
                        "is not set (BGP unnumbered), but routing_mode static routes by next-hop addresses: "
                        "give the uplink an address and its ToR's address as peer")


def static6(chk, fab):
    """routing_mode static with IPv6: a hypervisor with an IPv6 instance and its rack's ToRs route it
    by each other's ``ocs_address6``, on-link on their shared links (routes.default6_lines,
    routes.static6_lines). So each such hypervisor and each ToR of its rack has an ``ocs_address6``,
    the hypervisor an uplink to each ToR, and the ToR a downlink on that uplink's network: without
    them the instance would get an address and no IPv6 route (named here, as IPv4's next hops are)."""
    if fab.routing_mode != "static":
        return
    needed = {}  # ToR name: (ToR, [hypervisor names needing its ocs_address6])
    for hv in fab.by_role["hypervisor"]:
        v6 = [inst.name for inst in hv.instances if inst.ip6 is not None]
        if not v6 or hv.rack is None:
            continue
        why = "routing_mode static routes the IPv6 of its instances (%s) by ocs_address6 next hops on its rack links" \
            % ", ".join(v6[:3] + (["..."] if len(v6) > 3 else []))
        if hv.address6 is None:
            chk.add(where(hv.group, hv.name, "ocs_address6"), "is not set, but %s" % why)
        for tor in hv.rack.tors:
            needed.setdefault(tor.name, (tor, []))[1].append(hv.name)
            ups = [up for up in hv.uplinks if up.peer_host == tor.name and up.address is not None]
            if not ups:
                chk.add(where(hv.group, hv.name, "ocs_uplinks"),
                        "has no numbered uplink to %s of rack %s, but %s" % (tor.name, hv.rack.id, why))
            elif not any(up.address in d.net for up in ups for d in tor.downlinks if d.net is not None):
                chk.add(where(tor.group, tor.name, "ocs_downlinks"),
                        "has none on the network of %s's uplink %s (%s), but routing_mode static routes the IPv6 "
                        "of %s's instances out of it, on-link" % (hv.name, ups[0].interface,
                                                                  ups[0].net.text if ups[0].net else "?", hv.name))
    for name in sorted(needed):
        tor, hvs = needed[name]
        if tor.address6 is None:
            chk.add(where(tor.group, tor.name, "ocs_address6"),
                    "is not set, but routing_mode static routes the IPv6 of rack %s's instances (on %s) through "
                    "this ToR by its ocs_address6 on its downlinks" % (tor.rack.id, ", ".join(hvs)))
