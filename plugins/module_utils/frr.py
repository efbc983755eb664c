# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""FRR BGP configuration per host: exactly the prefixes each host owns.

Pure computation from the validated fabric; the ``ocs_frr`` role's templates
only print the text built here. Every session has an explicit import and
export route-map (FRR's ``bgp ebgp-requires-policy`` stays on); every
route-map matches prefix-lists computed from the inventory and ends in an
explicit ``deny``.

Tiers and policies (``host`` = nat_mode host, ``gw`` = nat_mode gateway)::

    hypervisor --TOR--> ToR --SPINE--> spine --BORDER--> border   (host)
    exports: own instance /32s      rack instance subnets     floating ranges
             (+ floating /32s,      (network + blackhole)
              public /32: host)     (+ rack floating/public
                                      /32s: host)
    imports: default only          its hypervisors' own /32s  default
                                   (per hypervisor), from the
                                   spines: default, rack
                                   subnets, floating le 32

    nat_gateway --SPINE--> spine: the gateway exports its public /32; the
    spine accepts exactly that (host mode).

In gateway mode the NAT gateways, not the spines, are the edge: they peer
with ``border_peers`` (the spines have no border session)::

    spine <--SPINE-- nat_gateway --BORDER--> border
    to the spines: its public /32, the floating ranges and, by
        ``default-originate route-map OCS-HAS-BORDER-DEFAULT``, a default
        only while it holds a default learned from a border peer
    from the spines: rack subnets, floating le 32 (never the default)
    to the border: the floating ranges (exact) and its public /32
    from the border: the default only

The spines accept from each gateway its public /32, the floating ranges and
the default (ECMP over the gateways), relay that default to the ToRs as they
relay the border's in host mode, and send the gateways everything but the
default.

Prefix-lists carry no ``seq``: FRR numbers them and ``frr-reload.py``
matches entries without it, so adding an instance adds one line and never
renumbers a list. Names: ``OCS-<WHAT>`` prefix-lists, ``OCS-IN-*`` /
``OCS-OUT-*`` route-maps, peer-groups ``TOR``, ``HV``, ``SPINE``, ``GW``,
``BORDER`` named after the tier at the other end.
"""

from .addr import Net, aton, host_blocks, ntoa, parse_net
from .announce import fabric_infra, fabric_space, loopback, origin, own_link_nets
from .artifact import Artifact, text

from .constants import FRR_CONF_PATH, FRR_DAEMONS_PATH as DAEMONS_PATH  # noqa: F401
from .validate_bgp import BORDER_DEFAULTS
from .memo import per_fabric, per_host
from . import frr6
MAX_PATHS = 64  # FRR's MULTIPATH_NUM in Debian's build
DENY_SEQ = 1000  # the explicit final deny of every route-map
CONDITIONAL_TIMER = 5  # seconds between FRR's conditional-advertisement scans (FRR: 5-240, default 60)
FLOATING_BLACKHOLE_DISTANCE = 250  # below any BGP route: unassigned floating IPs go nowhere
GSHUT_LIST = "OCS-GSHUT"  # community-list of RFC 8326's GRACEFUL_SHUTDOWN (65535:0)
GSHUT_SEQ = 5  # the first entry of every import route-map: a drained peer's routes get local preference 0
INTERNAL_REJECT_DISTANCE = 250  # below any BGP route: unassigned internal addresses never take the default

BGP_DEFAULTS = {"bfd": False, "graceful_restart": False, "keepalive": 3, "holdtime": 9, "password": None}


def _h(ip):
    return "%s/32" % ntoa(ip)


@per_host
def owned(fab, hv):
    """The /32s hypervisor ``hv`` may announce, sorted: its instance IPs and,
    in host NAT mode, their floating IPs and its public address."""
    ips = {inst.ip for inst in hv.instances}
    if fab.nat_mode == "host":
        ips.update(inst.floating_ip for inst in hv.instances if inst.floating_ip is not None)
        if hv.public_address is not None:
            ips.add(hv.public_address)
    return [_h(ip) for ip in sorted(ips)]


def rack_public(fab, rack):
    """Floating and public /32s of a rack's hypervisors (host NAT mode), sorted."""
    if fab.nat_mode != "host":
        return []
    ips = set()
    for hv in rack.hypervisors:
        ips.update(inst.floating_ip for inst in hv.instances if inst.floating_ip is not None)
        if hv.public_address is not None:
            ips.add(hv.public_address)
    return [_h(ip) for ip in sorted(ips)]


def rack_nets(rack):
    return [net.text for net in rack.instance_subnets]


@per_fabric
def fabric_routes(fab):
    """What the spines hand down (and ToRs and gateways accept): the default
    route, every rack's instance subnets, anything inside a floating range."""
    nets = [n for rack in sorted(fab.racks.values(), key=lambda r: r.id) for n in rack.instance_subnets]
    return (["0.0.0.0/0"] + [n.text for n in sorted(nets, key=lambda n: (n.first, n.prefixlen))]
            + ["%s le 32" % f.text for f in fab.floating_ranges])


def fabric_nets(fab):
    """``fabric_routes`` without the default: what the spines and the NAT
    gateways exchange in gateway mode (the default flows only upward there)."""
    return fabric_routes(fab)[1:]


class Neighbor:
    """One BGP session: ``key`` is an address or, unnumbered, an interface."""

    __slots__ = ("key", "interface", "remote_as", "group", "rmap_in", "host", "password", "session", "rmap_in6")

    def __init__(self, key, interface, remote_as, group, rmap_in=None, host=None, password=None, session=None):
        self.key = key
        self.interface = interface
        self.remote_as = remote_as
        self.group = group
        self.rmap_in = rmap_in  # per-neighbor import route-map (None: the group's)
        self.host = host  # name of the host at the other end (None: border)
        # A fabric session: its link's own password (ocs_uplinks[].password; None: the group's, i.e.
        # ocs_fabric.bgp.password). A border session: None; ``session`` holds its settings
        # {keepalive, holdtime, bfd, password} (the border peer's over ocs_fabric.border).
        self.password = password
        self.session = session
        self.rmap_in6 = None  # dual stack: per-neighbor IPv6 import route-map (None: the group's)

    def __repr__(self):
        return "Neighbor(%s, %s, %s)" % (self.key, self.remote_as, self.group)


class Group:
    """A peer-group: shared session settings and policies."""

    __slots__ = ("name", "rmap_in", "rmap_out", "default_originate", "fabric", "next_hop_self", "advertise",
                 "rmap_in6", "rmap_out6")

    def __init__(self, name, rmap_in, rmap_out, default_originate=False, fabric=True, next_hop_self=False):
        self.name = name
        self.next_hop_self = next_hop_self
        self.rmap_in = rmap_in
        self.rmap_out = rmap_out
        # False, True, or a route-map name: originate a default only while a
        # route in the BGP table matches that route-map
        self.default_originate = default_originate
        self.fabric = fabric  # fabric-internal: BFD, password, timers and soft-reconfiguration apply
        self.advertise = None  # (advertise-map, exist-map): conditional advertisement
        # Dual stack (frr6): the group's IPv6 policies; rmap_out6 set: the group is active in the IPv6
        # family. A group without rmap_out (BORDER6) is IPv6 only: not active in the IPv4 family.
        self.rmap_in6 = None
        self.rmap_out6 = None


class Policy:
    """Everything one host's BGP needs, as data (unit tests look at this)."""

    def __init__(self):
        self.prefix_lists = {}  # name -> [entry text], entries permit
        self.route_maps = {}  # name -> [(seq, prefix-list, [further match/set lines])], then deny DENY_SEQ
        self.groups = []
        self.neighbors = []
        self.networks = []
        self.aggregates = []  # aggregate-address: announced only while a more specific is in the BGP table
        self.redistribute = []  # "redistribute ..." lines (address family)
        self.statics = []  # "ip route ..." lines (staticd)
        self.bgp_lines = []  # extra "router bgp" lines (before the neighbors)
        # Dual stack (frr6): the IPv6 family's prefix-lists, route-maps, networks, aggregates,
        # redistribution and static routes ("ipv6 route ...")
        self.prefix_lists6 = {}
        self.route_maps6 = {}
        self.networks6 = []
        self.aggregates6 = []
        self.redistribute6 = []
        self.statics6 = []

    def plist(self, name, entries):
        self.prefix_lists[name] = list(entries)
        return name

    def rmap(self, name, *entries):
        """entries: prefix-list names or (prefix-list, [further match and set
        lines]); entries with an empty prefix-list are skipped."""
        out = []
        for entry in entries:
            plist, sets = (entry, []) if isinstance(entry, str) else entry
            if self.prefix_lists.get(plist):
                out.append((10 * (len(out) + 1), plist, sets))
        self.route_maps[name] = out
        return name

    def plist6(self, name, entries):
        self.prefix_lists6[name] = list(entries)
        return name

    def rmap6(self, name, *plists):
        """An IPv6 route-map: a permit entry per non-empty IPv6 prefix-list, then deny."""
        self.route_maps6[name] = [(10 * (i + 1), p, []) for i, p in
                                  enumerate(p for p in plists if self.prefix_lists6.get(p))]
        return name


def _floating_blackholes(fab):
    return ["ip route %s blackhole %d" % (f.text, FLOATING_BLACKHOLE_DISTANCE) for f in fab.floating_ranges]


def _internal_rejects(fab):
    """The internal ranges as ``reject`` routes on the spines and NAT gateways,
    the tiers that hold the border's default: an internal destination that no
    more specific route serves (an unassigned address, a link that just went
    down, a peer's address while its session closes) is refused here with an
    ICMP unreachable instead of following the default to the internet, with
    an internal source address."""
    return ["ip route %s reject %d" % (r.text, INTERNAL_REJECT_DISTANCE) for r in fab.internal_ranges]


def _static_order(line):
    net = parse_net(line.split()[2])
    return (net.first, net.prefixlen)


def _border_neighbors(fab, host):
    """Sessions with the border peers on the host's uplinks (their peer, or
    inside their network); every border peer when none is (the links are not
    in the inventory)."""
    def on_link(ip):
        return any(up.peer == ip or (up.net is not None and ip in up.net) for up in host.uplinks)
    peers = sorted(p for p in fab.border_peers if on_link(p[0])) or sorted(fab.border_peers)
    return [Neighbor(ntoa(ip), False, asn, "BORDER", session=border_session(fab, ip)) for ip, asn in peers]


def border_session(fab, ip):
    """The settings of the border session with border peer ``ip``: {keepalive, holdtime, bfd,
    password}, the peer's own over ``ocs_fabric.border`` over BORDER_DEFAULTS."""
    out = dict(BORDER_DEFAULTS)
    out.update(getattr(fab, "border", None) or {})
    out.update((getattr(fab, "border_sessions", None) or {}).get(ip, {}))
    return out


def _border_multipath(pol, border):
    """ECMP over border peers of different ASNs: FRR's multipath wants equal AS paths unless
    relaxed. Only where this host's border sessions span more than one ASN (one upstream ASN, the
    usual case, needs nothing)."""
    line = "bgp bestpath as-path multipath-relax"
    if len({n.remote_as for n in border}) > 1 and line not in pol.bgp_lines:
        pol.bgp_lines.insert(0, line)


def _uplink_neighbors(fab, host, group, remote_as):
    border = {ip for ip, dummy in fab.border_peers}
    out = []
    for up in host.uplinks:
        if up.numbered:
            if up.peer not in border:
                out.append(Neighbor(ntoa(up.peer), False, remote_as, group, host=up.peer_host,
                                    password=up.password))
        else:
            out.append(Neighbor(up.interface, True, remote_as, group, password=up.password))
    return out


def _lower_neighbors(fab, upper, lower, group, rmap_in):
    """Sessions of ``upper`` (ToR or spine) with host ``lower``: one per numbered
    uplink of ``lower`` that peers with ``upper``, one per downlink of ``upper``
    naming ``lower`` when ``lower`` has unnumbered uplinks."""
    out = []
    for up in lower.uplinks:
        if up.numbered and up.peer_host == upper.name:
            addr = up.address if up.address is not None else lower.address
            out.append(Neighbor(ntoa(addr), False, lower.asn, group, rmap_in, lower.name, up.password))
    unnumbered = [up for up in lower.uplinks if not up.numbered]
    if unnumbered:
        # validated: a host's unnumbered uplinks carry one password or none
        for down in upper.downlinks:
            if down.host == lower.name:
                out.append(Neighbor(down.interface, True, lower.asn, group, rmap_in, lower.name,
                                    unnumbered[0].password))
    return out


@per_fabric
def hypervisor_import(fab):
    """What a ToR relays to its hypervisors, exactly: the default, every
    rack's instance subnets, the infrastructure and the floating ranges. The
    ToR relays what it holds from its spines (and its own rack's aggregate),
    so a ToR that lost its uplinks stops drawing its hypervisors' traffic to
    anything beyond the rack."""
    return ["0.0.0.0/0"] + rack_subnets(fab) + fabric_infra(fab) + [f.text for f in fab.floating_ranges]


@per_fabric
def hypervisor_accept(fab):
    """What a hypervisor accepts from its ToRs: the default and, collapsed,
    the space of ``hypervisor_import`` (``le 32`` inside it). The ToR's
    export is the exact list; repeating it on every hypervisor would cost
    hypervisors x racks lines (1.6 GB of configuration for 10,000
    hypervisors in 500 racks), for no more safety than this."""
    return ["0.0.0.0/0"] + ["%s le 32" % text for text in fabric_space(fab)]


@per_fabric
def rack_subnets(fab):
    nets = [n for rack in fab.racks.values() for n in rack.instance_subnets]
    return [n.text for n in sorted(nets, key=lambda n: (n.first, n.prefixlen))]


def hypervisor_policy(fab, host):
    pol = Policy()
    if fab.routing_mode != "bgp":
        return pol
    own = pol.plist("OCS-OWN", owned(fab, host) + origin(fab, host))
    accept = pol.plist("OCS-FROM-TOR", hypervisor_accept(fab))
    pol.groups.append(Group("TOR", pol.rmap("OCS-IN-TOR", accept), pol.rmap("OCS-OUT-TOR", own)))
    pol.neighbors = _uplink_neighbors(fab, host, "TOR", host.rack.asn if host.rack else None)
    pol.networks = pol.prefix_lists[own]
    return pol


def tor_policy(fab, host):
    """Aggregates only while they can be served: the rack's instance subnets
    from the hypervisors' /32s (BGP mode) or the kernel's (static mode), its
    host_subnet from its downlinks and the hypervisors' loopbacks."""
    pol = Policy()
    rack = host.rack
    nets = pol.plist("OCS-RACK-NETS", rack_nets(rack))
    public = pol.plist("OCS-RACK-PUBLIC", rack_public(fab, rack))
    hosts = pol.plist("OCS-RACK-HOSTS", rack_hosts(fab, rack))
    inst = pol.plist("OCS-RACK-INSTANCES", rack_instances(rack))
    pol.plist("OCS-FABRIC", fabric_routes(fab))
    infra = pol.plist("OCS-INFRA", fabric_infra(fab))
    pol.groups.append(Group("SPINE", pol.rmap("OCS-IN-SPINE", "OCS-FABRIC", infra),
                            pol.rmap("OCS-OUT-SPINE", nets, public, hosts, inst)))
    pol.neighbors = _uplink_neighbors(fab, host, "SPINE", fab.spine_asn)
    pol.networks = origin(fab, host)
    pol.aggregates = pol.prefix_lists[nets] + [rack.host_subnet.text]
    if fab.routing_mode == "static":
        # The rack's table (routes concern) holds every /32 via its hypervisor
        # as a kernel route: the aggregates' contributors, and the floating
        # and public /32s announced as they are.
        kernel = pol.plist("OCS-RACK-KERNEL", rack_kernel(fab, rack))
        pol.redistribute.append("redistribute kernel route-map %s" % pol.rmap("OCS-IN-KERNEL", kernel))
        return pol
    relay = pol.plist("OCS-TO-HV", hypervisor_import(fab))
    pol.groups.append(Group("HV", None, pol.rmap("OCS-OUT-HV", relay)))
    for hv in rack.hypervisors:
        plist = pol.plist("OCS-HV-%s" % hv.name, owned(fab, hv) + origin(fab, hv))
        rmap = pol.rmap("OCS-IN-HV-%s" % hv.name, plist)
        pol.neighbors += _lower_neighbors(fab, host, hv, "HV", rmap)
    return pol


def rack_instances(rack):
    """A rack with two or more ToRs: its instance /32s go to the spines too
    (``ge 32`` inside the rack's own instance subnets; each ToR already
    accepts from each hypervisor exactly what it owns). A hypervisor that
    lost its link to one ToR leaves that ToR announcing the rack's aggregate;
    by the /32s the spines send that hypervisor's traffic to the ToR that
    still reaches it. The /32s stop at the spines (``OCS-FABRIC`` is exact).
    One ToR: nothing (the aggregate says it all)."""
    if len(rack.tors) < 2:
        return []
    return ["%s ge 32" % net.text for net in rack.instance_subnets]


def rack_hosts(fab, rack):
    """What a rack's ToRs announce of its host addresses: the host_subnet (an
    aggregate, for the rest of the fabric) and, exactly, each ToR's downlink
    networks and the loopback /32s of the rack's ToRs and hypervisors. The
    spines forward by these: in a rack with two ToRs each reaches only its
    own links and loopback, and a ToR that lost its hypervisors keeps its
    aggregate alive with its own addresses but no longer announces theirs."""
    nets = {d.net for tor in rack.tors for d in tor.downlinks if d.net is not None and d.net != rack.host_subnet}
    nets.update(Net(ip, 32) for ip in (origin_loopbacks(fab, rack)))
    return [rack.host_subnet.text] + [n.text for n in sorted(nets, key=lambda n: (n.first, n.prefixlen))]


def origin_loopbacks(fab, rack):
    """Addresses (ints) of the rack's ToRs and hypervisors that are loopbacks (on none of their links)."""
    out = []
    for host in list(rack.tors) + list(rack.hypervisors):
        lo = loopback(host, own_link_nets(host))
        if lo is not None:
            out.append(lo.first)
    return out


def rack_kernel(fab, rack):
    """Static mode: the /32s of a rack's table (instances and, host NAT mode, floating and public)."""
    ips = {inst.ip for hv in rack.hypervisors for inst in hv.instances}
    return sorted(set(_h(ip) for ip in ips) | set(rack_public(fab, rack)),
                  key=lambda t: tuple(int(x) for x in t[:-3].split(".")))


def _spine_racks(fab, host, pol):
    for rack in sorted(fab.racks.values(), key=lambda r: r.id):
        nets = pol.plist("OCS-RACK-%s-NETS" % rack.id, rack_nets(rack))
        public = pol.plist("OCS-RACK-%s-PUBLIC" % rack.id, rack_public(fab, rack))
        hosts = pol.plist("OCS-RACK-%s-HOSTS" % rack.id, rack_hosts(fab, rack))
        inst = pol.plist("OCS-RACK-%s-INSTANCES" % rack.id, rack_instances(rack))
        rmap = pol.rmap("OCS-IN-RACK-%s" % rack.id, nets, public, hosts, inst)
        for tor in rack.tors:
            pol.neighbors += _lower_neighbors(fab, host, tor, "TOR", rmap)


def spine_policy(fab, host):
    pol = Policy()
    default = pol.plist("OCS-DEFAULT", ["0.0.0.0/0"])
    floating = pol.plist("OCS-FLOATING", [f.text for f in fab.floating_ranges])
    pol.plist("OCS-FABRIC", fabric_routes(fab))
    infra = pol.plist("OCS-INFRA", fabric_infra(fab))
    out_fabric = pol.rmap("OCS-OUT-FABRIC", "OCS-FABRIC", infra)
    gw_mode = fab.nat_mode == "gateway"
    # gateway mode: ToRs and gateways send through the spine, which spreads
    # over all gateways (and ToRs), not straight to the one next hop of its
    # best path when they share a link with it (eBGP third-party next hop)
    pol.groups.append(Group("TOR", None, out_fabric, next_hop_self=gw_mode))
    _spine_racks(fab, host, pol)
    gateways = sorted(fab.by_role["nat_gateway"], key=lambda h: h.name)
    if gateways:
        # gateway mode: the default comes from the gateways, never goes back to them
        out_gw = out_fabric
        if gw_mode:
            out_gw = pol.rmap("OCS-OUT-GW", pol.plist("OCS-FABRIC-NETS", fabric_nets(fab)), infra)
        pol.groups.append(Group("GW", None, out_gw, next_hop_self=gw_mode))
        for gw in gateways:
            own = pol.plist("OCS-GW-%s" % gw.name, ([_h(gw.public_address)] if gw.public_address else [])
                            + origin(fab, gw))
            rmap = pol.rmap("OCS-IN-GW-%s" % gw.name, own, *([floating, default] if gw_mode else []))
            pol.neighbors += _lower_neighbors(fab, host, gw, "GW", rmap)
        if gw_mode:
            # ECMP over the gateways' defaults and ranges even when their ASNs differ (ocs_asn)
            pol.bgp_lines.append("bgp bestpath as-path multipath-relax")
    if fab.border_peers and not gw_mode:
        pol.groups.append(Group("BORDER", pol.rmap("OCS-IN-BORDER", default), pol.rmap("OCS-OUT-BORDER", floating),
                                fabric=False))
        border = _border_neighbors(fab, host)
        _border_multipath(pol, border)
        pol.neighbors += border
    # Unassigned floating addresses end here instead of looping to the border:
    # a blackhole below any BGP route. In host NAT mode the spine announces
    # each range as an aggregate of the floating and public /32s its racks
    # announce: a spine that lost every downlink stops drawing the traffic.
    # (In gateway mode the gateways announce the ranges.)
    pol.statics = _floating_blackholes(fab) + _internal_rejects(fab)
    pol.networks = origin(fab, host)
    if fab.nat_mode == "host":
        pol.aggregates = [f.text for f in fab.floating_ranges]
    return pol


def gateway_policy(fab, host):
    pol = Policy()
    own = pol.plist("OCS-OWN", ([_h(host.public_address)] if host.public_address else []) + origin(fab, host))
    spines = _uplink_neighbors(fab, host, "SPINE", fab.spine_asn)
    pol.networks = list(pol.prefix_lists[own])
    infra = pol.plist("OCS-INFRA", fabric_infra(fab))
    pol.statics = _internal_rejects(fab)
    if fab.nat_mode != "gateway":
        pol.plist("OCS-FABRIC", fabric_routes(fab))
        pol.groups.append(Group("SPINE", pol.rmap("OCS-IN-SPINE", "OCS-FABRIC", infra),
                                pol.rmap("OCS-OUT-SPINE", own)))
        pol.neighbors = spines
        return pol
    # Gateway mode: the edge. Default from the border only; toward the spines
    # a default only while this gateway holds one from a border peer; toward
    # the border the floating ranges only while it holds a rack's instance
    # subnets from the spines (conditional advertisement, every
    # CONDITIONAL_TIMER seconds).
    floating = pol.plist("OCS-FLOATING", [f.text for f in fab.floating_ranges])
    default = pol.plist("OCS-DEFAULT", ["0.0.0.0/0"])
    nets = pol.plist("OCS-FABRIC-NETS", fabric_nets(fab))
    racks = pol.plist("OCS-RACKS", rack_subnets(fab))
    border = _border_neighbors(fab, host)
    has_default = pol.rmap("OCS-HAS-BORDER-DEFAULT", *[(default, ["match peer %s" % n.key]) for n in border])
    pol.groups.append(Group("SPINE", pol.rmap("OCS-IN-SPINE", nets, infra),
                            pol.rmap("OCS-OUT-SPINE", own, floating, default), default_originate=has_default))
    group = Group("BORDER", pol.rmap("OCS-IN-BORDER", default), pol.rmap("OCS-OUT-BORDER", floating, own),
                  fabric=False)
    group.advertise = (pol.rmap("OCS-ADV-FLOATING", floating), pol.rmap("OCS-HAS-RACKS", racks))
    pol.groups.append(group)
    pol.bgp_lines.append("bgp conditional-advertisement timer %d" % CONDITIONAL_TIMER)
    _border_multipath(pol, border)
    pol.neighbors = spines + border
    pol.networks += [f.text for f in fab.floating_ranges]
    pol.statics = _floating_blackholes(fab) + _internal_rejects(fab)
    return pol


POLICIES = {"hypervisor": hypervisor_policy, "tor": tor_policy, "spine": spine_policy, "nat_gateway": gateway_policy}


@per_host
def policy(fab, host):
    """The BGP policy of ``host`` (both families on a dual-stack fabric), computed once per host
    (memo.py): the frr, firewall, expected-state and drain concerns of a host each ask for it (a
    dual-stack ToR's takes 10-100 ms). Callers only read it."""
    pol = POLICIES[host.role](fab, host)
    if fab.dual_stack:
        frr6.add(fab, host, pol)
    return pol


def has_secret(fab):
    """Whether the fabric configures any BGP password: ocs_fabric.bgp's, ocs_fabric.border's, a
    border peer's or a link's own (some host's frr.conf then holds it)."""
    return bool((getattr(fab, "bgp", None) or {}).get("password") or (fab.border or {}).get("password")
                or any(s.get("password") for s in fab.border_sessions.values())
                or any(up.password for host in fab.hosts.values() for up in host.uplinks))


def bgp_settings(fab):
    return dict(BGP_DEFAULTS, **(getattr(fab, "bgp", None) or {}))


def config_lines(fab, host):
    """frr.conf of ``host`` as lines, in the shape of FRR's running-config
    (so that ``frr-reload.py`` finds nothing to do after a reload)."""
    pol = policy(fab, host)
    bgp = bgp_settings(fab)
    # No hostname: FRR takes the system's, and the reload module keeps it.
    # FRR 8.4's zebra loses members of a kernel nexthop group when a path comes back (an
    # undrain, a link that flapped: FRRouting/frr#12239, #13413): routes keep one of their
    # ECMP paths until FRR restarts. Without kernel nexthop groups each route carries its
    # next hops itself and ECMP comes back (rounds/test_drain.py checks the kernel's routes).
    lines = ["log syslog informational", "no zebra nexthop kernel enable", "!"]
    if pol.statics or pol.statics6:
        # in FRR's running-config order: by prefix, IPv4 first
        lines += sorted(pol.statics, key=_static_order) + pol.statics6 + ["!"]
    if pol.neighbors:
        lines += _router_bgp(fab, host, pol, bgp, host.asn)
    for name, entries in pol.prefix_lists.items():
        lines += ["ip prefix-list %s permit %s" % (name, e) for e in compact(entries)]
    if pol.prefix_lists:
        lines.append("!")
    for name, entries in pol.prefix_lists6.items():
        lines += ["ipv6 prefix-list %s permit %s" % (name, e) for e in frr6.compact6(entries)]
    if pol.prefix_lists6:
        lines.append("!")
    inbound = _import_maps(pol)
    if inbound:
        lines += ["bgp community-list standard %s seq 5 permit graceful-shutdown" % GSHUT_LIST, "!"]
    lines += _route_maps(pol.route_maps, inbound, "ip")
    lines += _route_maps(pol.route_maps6, inbound, "ipv6")
    return lines


def _route_maps(route_maps, inbound, family):
    lines = []
    for name, entries in route_maps.items():
        if name in inbound:
            # RFC 8326: a drained peer (bgp graceful-shutdown) tags its routes;
            # they stay usable but lose to any other path. on-match next: the
            # entries below still decide whether the route is accepted at all.
            lines += ["route-map %s permit %d" % (name, GSHUT_SEQ), " match community %s" % GSHUT_LIST,
                      " on-match next", " set local-preference 0", "exit", "!"]
        for seq, plist, sets in entries:
            lines += ["route-map %s permit %d" % (name, seq), " match %s address prefix-list %s" % (family, plist)]
            lines += [" " + s for s in sets]
            lines += ["exit", "!"]
        lines += ["route-map %s deny %d" % (name, DENY_SEQ), "exit", "!"]
    return lines


def compact(entries):
    """The entries of a permit-only prefix-list with its exact /32s merged into
    aligned blocks written ``B ge 32``: exactly the same set of prefixes in the
    fewest entries (FRR loads prefix-list lines at ~15 ms each: a dense ToR's
    per-hypervisor lists of /32s took minutes; issue 19). Other entries keep
    their order, first."""
    hosts, other = [], []
    for e in entries:
        if e.endswith("/32"):
            hosts.append(aton(e[:-3]))
        else:
            other.append(e)
    blocks = host_blocks(sorted(set(hosts)))
    return other + ["%s/%d" % (ntoa(ip), plen) + ("" if plen == 32 else " ge 32") for ip, plen in blocks]


def _import_maps(pol):
    """Names of the route-maps used as import policy (of a group or a neighbor)."""
    names = {g.rmap_in for g in pol.groups if g.rmap_in} | {n.rmap_in for n in pol.neighbors if n.rmap_in}
    names6 = {g.rmap_in6 for g in pol.groups if g.rmap_in6} | {n.rmap_in6 for n in pol.neighbors if n.rmap_in6}
    return {name for name in names if name in pol.route_maps} | {name for name in names6 if name in pol.route_maps6}


def _by_prefix(texts):
    """Prefixes in FRR's table order (as its running-config prints them)."""
    def key(t):
        ip, dummy, plen = t.partition("/")
        return tuple(int(x) for x in ip.split(".")) + (int(plen),)
    return sorted(set(texts), key=key)


def _router_bgp(fab, host, pol, bgp, asn):
    lines = ["router bgp %d" % asn, " bgp router-id %s" % ntoa(host.address), " bgp log-neighbor-changes"]
    if bgp["graceful_restart"]:
        # F bit (RFC 4724): our forwarding state survives a bgpd restart (zebra keeps a
        # restarting bgpd's routes as stale); without it the neighbours drop our routes at
        # once when the restarted bgpd reconnects (tests/integration/test_gr_bfd_netns.py)
        lines += [" bgp graceful-restart", " bgp graceful-restart preserve-fw-state"]
    lines += [" " + ln for ln in pol.bgp_lines]
    groups = {g.name: g for g in pol.groups}
    used = [g for g in pol.groups if any(n.group == g.name for n in pol.neighbors)]
    for g in used:
        lines.append(" neighbor %s peer-group" % g.name)
        if g.fabric:
            # Fabric sessions are on directly connected links and both ends are
            # ours: GTSM (RFC 5082) drops BGP packets from farther than one hop.
            # Not toward the border: GTSM needs the other end configured too.
            lines.append(" neighbor %s ttl-security hops 1" % g.name)
            if bgp["bfd"]:
                lines.append(" neighbor %s bfd" % g.name)
            # The fabric-wide password only where a session of the group uses it: a
            # host whose links all carry their own never holds it.
            if bgp["password"] and any(n.password is None for n in pol.neighbors if n.group == g.name):
                lines.append(" neighbor %s password %s" % (g.name, bgp["password"]))
            lines.append(" neighbor %s timers %d %d" % (g.name, bgp["keepalive"], bgp["holdtime"]))
    for n in pol.neighbors:
        if n.interface:
            lines += [" neighbor %s interface peer-group %s" % (n.key, n.group),
                      " neighbor %s remote-as %d" % (n.key, n.remote_as)]
        else:
            lines += [" neighbor %s remote-as %d" % (n.key, n.remote_as),
                      " neighbor %s peer-group %s" % (n.key, n.group)]
        lines += _neighbor_settings(n)
    lines += _family4(pol, used, groups)
    if fab.dual_stack:
        lines += _family6(pol, used)
    lines += ["exit", "!"]
    return lines


def _family4(pol, used, groups):
    """The IPv4 family: networks, aggregates, redistribution and each group's policies."""
    lines = [" !", " address-family ipv4 unicast"]
    lines += ["  network %s" % net for net in _by_prefix(pol.networks)]
    lines += ["  aggregate-address %s" % net for net in _by_prefix(pol.aggregates)]
    lines += ["  " + ln for ln in pol.redistribute]
    for g in used:
        if g.rmap_out is None:  # an IPv6-only group (BORDER6)
            lines.append("  no neighbor %s activate" % g.name)
            continue
        if g.next_hop_self:
            lines.append("  neighbor %s next-hop-self" % g.name)
        if g.default_originate is True:
            lines.append("  neighbor %s default-originate" % g.name)
        elif g.default_originate:
            lines.append("  neighbor %s default-originate route-map %s" % (g.name, g.default_originate))
        if g.fabric:
            lines.append("  neighbor %s soft-reconfiguration inbound" % g.name)
        if g.rmap_in:
            lines.append("  neighbor %s route-map %s in" % (g.name, g.rmap_in))
        lines.append("  neighbor %s route-map %s out" % (g.name, g.rmap_out))
        if g.advertise:
            lines.append("  neighbor %s advertise-map %s exist-map %s" % ((g.name,) + g.advertise))
    for n in pol.neighbors:
        if n.rmap_in and not groups[n.group].rmap_in:
            lines.append("  neighbor %s route-map %s in" % (n.key, n.rmap_in))
    paths = min(MAX_PATHS, len([n for n in pol.neighbors if groups[n.group].rmap_out is not None]))
    if paths > 1:
        lines.append("  maximum-paths %d" % paths)
    lines.append(" exit-address-family")
    return lines


def _family6(pol, used):
    """The IPv6 family (frr6): its networks, aggregates and redistribution, each group that carries
    IPv6 activated with its IPv6 policies, and per-neighbor IPv6 import maps."""
    lines = [" !", " address-family ipv6 unicast"]
    lines += ["  network %s" % net for net in frr6._order(pol.networks6)]
    lines += ["  aggregate-address %s" % net for net in frr6._order(pol.aggregates6)]
    lines += ["  " + ln for ln in pol.redistribute6]
    active = [g for g in used if g.rmap_out6]
    for g in active:
        lines.append("  neighbor %s activate" % g.name)
        if g.fabric:
            lines.append("  neighbor %s soft-reconfiguration inbound" % g.name)
        if g.rmap_in6:
            lines.append("  neighbor %s route-map %s in" % (g.name, g.rmap_in6))
        lines.append("  neighbor %s route-map %s out" % (g.name, g.rmap_out6))
    names = {g.name for g in active}
    for n in pol.neighbors:
        if n.group in names and n.rmap_in6 and not next(g for g in active if g.name == n.group).rmap_in6:
            lines.append("  neighbor %s route-map %s in" % (n.key, n.rmap_in6))
    paths = min(MAX_PATHS, len([n for n in pol.neighbors if n.group in names]))
    if paths > 1:
        lines.append("  maximum-paths %d" % paths)
    lines.append(" exit-address-family")
    return lines


def _neighbor_settings(n):
    """A session's own lines, in FRR's running-config order (bfd, password, timers): a fabric
    session's per-link password (it overrides the group's); a border session's settings, all
    per neighbor (each border peer may differ, and a peer-group member cannot turn off a group's
    BFD in FRR's running-config)."""
    s = n.session or {}
    out = []
    if s.get("bfd"):
        out.append(" neighbor %s bfd" % n.key)
    secret = n.password or s.get("password")
    if secret:
        out.append(" neighbor %s password %s" % (n.key, secret))
    if s:
        out.append(" neighbor %s timers %d %d" % (n.key, s["keepalive"], s["holdtime"]))
    return out


DAEMONS = ("bgpd", "bfdd", "staticd")
_ALL_DAEMONS = ("bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd", "nhrpd", "eigrpd",
                "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd", "staticd")


def daemons_lines():
    """The daemons file: the same on every host (no fabric input on purpose)."""
    lines = ["%s=%s" % (d, "yes" if d in DAEMONS else "no") for d in _ALL_DAEMONS]
    return lines + ["vtysh_enable=yes", 'zebra_options="  -A 127.0.0.1 -s 90000000"',
                    'bgpd_options="   -A 127.0.0.1"', 'staticd_options="-A 127.0.0.1"',
                    'bfdd_options="   -A 127.0.0.1"']


def artifacts(fab, host):
    """frr.conf and the (fixed) daemons file of every fabric host."""
    return [
        Artifact(DAEMONS_PATH, "frr-daemons", "ocs_frr", "etc/frr/daemons.j2",
                 {"_ocs_frr_daemons_text": text(daemons_lines())}),
        Artifact(FRR_CONF_PATH, "frr", "ocs_frr", "etc/frr/frr.conf.j2",
                 {"_ocs_frr_conf_text": text(config_lines(fab, host))}, mode="0640"),
    ]
