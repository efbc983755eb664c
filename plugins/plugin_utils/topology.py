# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Topology picture: the fabric as a Graphviz DOT text.

    ocs-topology -i INVENTORY [--status FILE.json] [--aggregate auto|racks|hosts] [-o OUT.svg -o OUT.png ...]

:func:`dot` is pure: a built :class:`~ocs_l3.fabric.Fabric` (and an optional
status) in, DOT text out; no Graphviz needed. :func:`main` reads the
inventory with :func:`~ocs_l3.plugin_utils.inventory.load_fabric_input`,
validates it, and writes each output by its suffix: ``.dot``/``.gv`` as text,
``.svg``/``.png``/``.pdf`` through Graphviz's ``dot``.

What is drawn:

- nodes: spines, NAT gateways, border peers, and per rack a cluster with its
  ToRs and hypervisors; fill colour by role (or by status severity);
- links: one edge per uplink (the lower host's view), from the tier above to
  the tier below: label the link network (``unnumbered`` without one),
  interface names at each end; a link carrying a BGP session is solid, one
  without (static routing) dotted;
- BGP sessions: every neighbor of :func:`~ocs_l3.frr.policy`. A session
  riding an uplink is merged into that link's edge; the others (border
  sessions of spines without an uplink, the NAT gateways' border sessions in
  gateway mode) are dashed edges. Each edge's tooltip lists its session ends
  as ``host|key`` (key = the neighbor address or, unnumbered, the
  interface), the same keys as the status file.

Above :data:`MAX_RACKS` racks or :data:`MAX_HOSTS` hosts (``--aggregate
auto``) each rack is one node, as netlab does: "r07: 2 ToRs, 20 hypervisors,
1,000 instances", its subnets, and its hypervisor sessions counted; edges
join racks to the spines (one per rack and spine, tooltips list the links).

Status file (optional, JSON; every key optional)::

    {"hosts": {"hv-r01-01": {"severity": "ok"}},           # ok | warning | critical
     "sessions": {"tor-r01|198.18.1.11": "down"}}          # ok | down

A host's fill becomes its severity (hosts not listed: grey, unknown); a
session edge is red when an end is down, green when an end is ok, grey when
no end is listed. Names the fabric does not know are reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from ansible_collections.ocs.l3.plugins.module_utils.frr import policy

MAX_RACKS = 12
"""--aggregate auto draws one node per rack above this many racks ..."""
MAX_HOSTS = 150
"""... or above this many fabric hosts."""
RACKS_PER_ROW = 10
"""Aggregated racks are laid out in rows of this many."""

SEVERITIES = ("ok", "warning", "critical")
SESSION_STATES = ("ok", "down")

# Role colours (fill, outline): ColorBrewer "Paired", light and dark.
ROLE_COLOURS = {
    "spine": ("#cab2d6", "#6a3d9a"),
    "tor": ("#a6cee3", "#1f78b4"),
    "hypervisor": ("#b2df8a", "#33a02c"),
    "nat_gateway": ("#fdbf6f", "#ff7f00"),
    "border": ("#d9d9d9", "#525252"),
    "rack": ("#e6eef5", "#1f78b4"),
}
ROLE_NAMES = {"spine": "spine", "tor": "ToR", "hypervisor": "hypervisor", "nat_gateway": "NAT gateway",
              "border": "border peer"}
SEVERITY_FILL = {"ok": "#c7e9c0", "warning": "#fed976", "critical": "#fc9272", None: "#f0f0f0"}
SESSION_COLOUR = {"ok": "#238b45", "down": "#cb181d", None: "#969696"}
LINK_COLOUR = "#404040"


def quote(text):
    """A DOT string: double-quoted, backslashes and quotes escaped, one line."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % text.replace("\r", " ").replace("\n", " ")


def lines(*items):
    """A multi-line DOT label (centred lines) from plain strings, each escaped."""
    return '"%s"' % "\\n".join(quote(i)[1:-1] for i in items if i)


def attrs(**kv):
    """``[k=v, ...]``; values already quoted (``lines``) are kept, others quoted."""
    out = []
    for key, val in kv.items():
        if val is None:
            continue
        if not (isinstance(val, str) and val.startswith('"')):
            val = quote(val)
        out.append("%s=%s" % (key, val))
    return "[%s]" % ", ".join(out)


def border_id(address):
    return "border %s" % address


def end_text(end):
    return "%s|%s" % end


# -- status ---------------------------------------------------------------------------------------

def parse_status(data):
    """The status JSON (already decoded) -> ``{"hosts": {name: severity}, "sessions": {key: state}}``.

    Raises ValueError naming the first bad entry."""
    if not isinstance(data, dict):
        raise ValueError("status must be a JSON object {hosts, sessions}")
    unknown = sorted(set(data) - {"hosts", "sessions"})
    if unknown:
        raise ValueError("status: unknown key(s) %s (known: hosts, sessions)" % ", ".join(map(str, unknown)))
    hosts, sessions = data.get("hosts") or {}, data.get("sessions") or {}
    if not isinstance(hosts, dict) or not isinstance(sessions, dict):
        raise ValueError("status: hosts and sessions must be objects")
    out = {"hosts": {}, "sessions": {}}
    for name, entry in hosts.items():
        sev = entry.get("severity") if isinstance(entry, dict) else None
        if sev not in SEVERITIES:
            raise ValueError("status: hosts.%s.severity must be one of %s" % (name, ", ".join(SEVERITIES)))
        out["hosts"][str(name)] = sev
    for key, state in sessions.items():
        if state not in SESSION_STATES:
            raise ValueError("status: sessions.%s must be one of %s" % (key, ", ".join(SESSION_STATES)))
        if "|" not in str(key):
            raise ValueError("status: sessions.%s: a session key is HOST|NEIGHBOR (address or interface)" % key)
        out["sessions"][str(key)] = state
    return out


def load_status(path):
    with open(path, encoding="utf-8") as fh:
        return parse_status(json.load(fh))


def status_warnings(fab, status):
    """Hosts and sessions of the status that the fabric does not have."""
    out = ["status: host %s is not a fabric host" % h for h in sorted(status["hosts"]) if h not in fab.hosts]
    known = {end_text(e) for e in session_ends(fab)}
    out += ["status: session %s is not a BGP session of the fabric" % k for k in sorted(status["sessions"])
            if k not in known]
    return out


# -- the model: links and sessions ---------------------------------------------------------------

class Link:
    """One uplink of ``lower``: the edge ``upper`` (a host or a border node) -> ``lower``."""

    __slots__ = ("lower", "upper", "interface", "upper_interface", "net", "numbered", "ends")

    def __init__(self, lower, upper, interface, upper_interface, net, numbered=True):
        self.numbered = numbered  # False: BGP unnumbered (no peer address)
        self.lower = lower
        self.upper = upper
        self.interface = interface
        self.upper_interface = upper_interface
        self.net = net  # link network text, or None (unnumbered or no address)
        self.ends = []  # BGP session ends riding this link: [(host, key)]


class Session:
    """A BGP session not on a modelled uplink: ``a`` and ``b`` are node ids."""

    __slots__ = ("a", "b", "ends")

    def __init__(self, a, b, ends):
        self.a = a
        self.b = b
        self.ends = ends


def session_ends(fab):
    """Every BGP session end of the fabric, as frr.policy builds them: {(host, key): Neighbor}."""
    out = {}
    for name in sorted(fab.hosts):
        for n in policy(fab, fab.hosts[name]).neighbors:
            out[(name, n.key)] = n
    return out


def _unnumbered_uppers(fab):
    """{lower host: [(upper host, downlink interface)]}: downlinks naming a host, by upper name."""
    out = {}
    for name in sorted(fab.hosts):
        for down in fab.hosts[name].downlinks:
            if down.host is not None:
                out.setdefault(down.host, []).append((name, down.interface))
    return out


def topology(fab):
    """(links, sessions): every uplink with the session ends riding it, and the other sessions."""
    ends = session_ends(fab)
    border = {ip for ip, asn in fab.border_peers}
    uppers = _unnumbered_uppers(fab)
    links = []
    for name in sorted(fab.hosts):
        host = fab.hosts[name]
        free = list(uppers.get(name, []))  # unnumbered uplinks pair with these in order
        for up in host.uplinks:
            net = up.net.text if up.net is not None else None
            if up.numbered:
                if up.peer_host is not None:
                    other = fab.hosts[up.peer_host]
                    upper_if = next((d.interface for d in other.downlinks if d.address == up.peer), None)
                    link = Link(name, other.name, up.interface, upper_if, net)
                    expected = [(name, ntoa(up.peer)),
                                (other.name, ntoa(up.address if up.address is not None else host.address))]
                elif up.peer in border:
                    link = Link(name, border_id(ntoa(up.peer)), up.interface, None, net)
                    expected = [(name, ntoa(up.peer))]
                else:
                    continue  # not a valid fabric (build refuses it)
            else:
                if not free:
                    continue  # not a valid fabric (build refuses it)
                upper, upper_if = free.pop(0)
                link = Link(name, upper, up.interface, upper_if, net, numbered=False)
                expected = [(name, up.interface), (upper, upper_if)]
            link.ends = [e for e in expected if e in ends]
            for e in link.ends:
                del ends[e]
            links.append(link)
    sessions = []
    left = list(ends.items())
    paired = set()
    for i, (end, n) in enumerate(left):
        if end in paired:
            continue
        other = n.host if n.host is not None else border_id(n.key) if _is_border(fab, n.key) else None
        if other is None:
            other = "peer %s" % n.key
        mate = next((e for e, m in left[i + 1:] if e not in paired and e[0] == other and m.host == end[0]), None)
        paired.add(end)
        if mate is not None:
            paired.add(mate)
        sessions.append(Session(other, end[0], [end] + ([mate] if mate else [])))
    return links, sessions


def _is_border(fab, key):
    return any(ntoa(ip) == key for ip, asn in fab.border_peers)


def aggregated(fab, mode="auto"):
    """True when racks are drawn as one node each."""
    if mode not in ("auto", "racks", "hosts"):
        raise ValueError("aggregate must be auto, racks or hosts, not %r" % (mode,))
    if mode == "auto":
        return len(fab.racks) > MAX_RACKS or len(fab.hosts) > MAX_HOSTS
    return mode == "racks"


# -- drawing -------------------------------------------------------------------------------------

def _session_state(ends, status):
    if status is None:
        return "none"
    states = {status["sessions"].get(end_text(e)) for e in ends}
    return "down" if "down" in states else "ok" if "ok" in states else None


def _edge_colour(state, carries):
    if state == "none":
        return LINK_COLOUR
    if not carries:
        return LINK_COLOUR
    return SESSION_COLOUR[state]


def _host_node(fab, host, status):
    fill, line = ROLE_COLOURS[host.role]
    text = [host.name, "%s · AS %s" % (ntoa(host.address), host.asn)]
    if host.public_address is not None:
        text.append("public %s" % ntoa(host.public_address))
    if host.role == "hypervisor":
        text.append("%s instance%s" % (format(len(host.instances), ","), "" if len(host.instances) == 1 else "s"))
    tip = "%s %s" % (ROLE_NAMES[host.role], host.name)
    penwidth = None
    if status is not None:
        sev = status["hosts"].get(host.name)
        fill, penwidth = SEVERITY_FILL[sev], "2"
        text.append("status: %s" % (sev or "unknown"))
        tip += ": %s" % (sev or "no status")
    node = attrs(label=lines(*text), fillcolor=fill, color=line, penwidth=penwidth, tooltip=tip)
    return "  %s %s;" % (quote(host.name), node)


def _border_nodes(fab):
    fill, line = ROLE_COLOURS["border"]
    out = []
    for ip, asn in sorted(fab.border_peers):
        out.append("  %s %s;" % (quote(border_id(ntoa(ip))), attrs(
            label=lines("border %s" % ntoa(ip), "AS %s" % asn), fillcolor=fill, color=line, shape="box",
            style="filled", tooltip="border peer %s (AS %s)" % (ntoa(ip), asn))))
    return out


def _plural(count, word, words=None):
    return "%s %s" % (format(count, ","), word if count == 1 else (words or word + "s"))


def _subnets(nets, room=3):
    texts = [n.text for n in nets]
    more = " (+%d more)" % (len(texts) - room) if len(texts) > room else ""
    return ", ".join(texts[:room]) + more


def _rack_label_lines(fab, rack):
    instances = sum(len(h.instances) for h in rack.hypervisors)
    return ["%s: %s, %s, %s" % (rack.id, _plural(len(rack.tors), "ToR"), _plural(len(rack.hypervisors), "hypervisor"),
                                _plural(instances, "instance")),
            "AS %s · hosts %s" % (rack.asn, rack.host_subnet.text),
            "instances %s" % _subnets(rack.instance_subnets)]


def _worst(sevs):
    for sev in ("critical", "warning", "ok"):
        if sev in sevs:
            return sev
    return None


def _link_text(link):
    upper = "%s %s" % (link.upper, link.upper_interface) if link.upper_interface else link.upper
    return "%s — %s %s (%s)" % (upper, link.lower, link.interface,
                                link.net or ("unnumbered" if not link.numbered else "no address"))


def _link_edge(link, status):
    state = _session_state(link.ends, status)
    carries = bool(link.ends)
    label = link.net or (None if link.numbered else "unnumbered")
    tip = "link " + _link_text(link)
    if carries:
        tip += "; BGP %s" % " ~ ".join(end_text(e) for e in link.ends)
        if state not in ("none", None):
            tip += " (%s)" % state
    return "  %s -> %s %s;" % (quote(link.upper), quote(link.lower), attrs(
        label=label, taillabel=link.upper_interface, headlabel=link.interface,
        style="solid" if carries else "dotted", penwidth="2" if carries else "1",
        color=_edge_colour(state, carries), tooltip=tip))


def _session_edge(a, b, ends, status, extra=""):
    state = _session_state(ends, status)
    tip = "BGP %s%s" % (" ~ ".join(end_text(e) for e in ends), extra)
    if state not in ("none", None):
        tip += " (%s)" % state
    colour = SESSION_COLOUR[state] if state != "none" else LINK_COLOUR
    # a border peer sits above its peer; a session between two fabric hosts does not rank them
    constraint = None if a.startswith("border ") else "false"
    edge = attrs(style="dashed", color=colour, constraint=constraint, tooltip=tip)
    return "  %s -> %s %s;" % (quote(a), quote(b), edge)


def _header(fab, agg, status):
    counts = ", ".join(_plural(len(fab.by_role[r]), ROLE_NAMES[r], "NAT gateways" if r == "nat_gateway" else None)
                       for r in ("spine", "tor", "hypervisor", "nat_gateway"))
    title = "ocs-l3 fabric: %s, %s; %s; %s, %s NAT, %s routing" % (
        _plural(len(fab.racks), "rack"), counts, _plural(fab.instance_count, "instance"),
        _plural(len(fab.border_peers), "border peer"), fab.nat_mode, fab.routing_mode)
    key = ("solid: link with BGP · dotted: link without BGP · dashed: BGP session only · "
           "fill: spine purple, ToR blue, hypervisor green, NAT gateway orange, border grey")
    if status is not None:
        key = ("fill: host status ok green, warning yellow, critical red, unknown grey · "
               "edges: BGP ok green, down red, unknown grey · dotted: link without BGP · dashed: BGP session only")
    if agg:
        key += " · racks aggregated (one node each)"
    return ["digraph fabric {",
            "  graph %s;" % attrs(label=lines(title, key), labelloc="t", fontname="Helvetica", fontsize="12",
                                  newrank="true", nodesep="0.25", ranksep="0.9", rankdir="TB"),
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize="10"];',
            '  edge [dir=none, fontname="Helvetica", fontsize="8", labelfontsize="8", arrowhead=none];']


def dot(fab, status=None, aggregate="auto"):
    """The fabric ``fab`` as a Graphviz DOT text (see the module docstring).

    ``status``: the result of :func:`parse_status` or None; ``aggregate``:
    auto, racks (one node per rack) or hosts (every host)."""
    agg = aggregated(fab, aggregate)
    links, sessions = topology(fab)
    out = _header(fab, agg, status)
    out += _border_nodes(fab)
    if fab.border_peers:
        out.append("  {rank=min; %s}" % " ".join(quote(border_id(ntoa(ip))) for ip, asn in sorted(fab.border_peers)))
    for host in sorted(fab.by_role["spine"], key=lambda h: h.name):
        out.append(_host_node(fab, host, status))
    if fab.by_role["spine"]:
        spines = sorted(h.name for h in fab.by_role["spine"])
        out.append("  {rank=same; %s}" % " ".join(quote(name) for name in spines))
    for host in sorted(fab.by_role["nat_gateway"], key=lambda h: h.name):
        out.append(_host_node(fab, host, status))
    if agg:
        out += _racks_aggregated(fab, links, sessions, status)
        out.append("}")
        return "\n".join(out) + "\n"
    for rack in sorted(fab.racks.values(), key=lambda r: r.id):
        fill, line = ROLE_COLOURS["rack"]
        out.append("  subgraph %s {" % quote("cluster_rack_%s" % rack.id))
        out.append("    graph %s;" % attrs(label=lines("rack " + rack.id, *_rack_label_lines(fab, rack)[1:]),
                                           style="rounded,filled", fillcolor=fill, color=line, fontsize="10"))
        for host in sorted(rack.tors + rack.hypervisors, key=lambda h: (h.role != "tor", h.name)):
            out.append("  " + _host_node(fab, host, status))
        out.append("  }")
    for link in links:
        out.append(_link_edge(link, status))
    for s in sessions:
        out.append(_session_edge(s.a, s.b, s.ends, status))
    out.append("}")
    return "\n".join(out) + "\n"


def _racks_aggregated(fab, links, sessions, status):
    """One node per rack; edges grouped per (upper node, rack node); hypervisor sessions counted."""
    node = {}
    for rack in fab.racks.values():
        for host in rack.tors + rack.hypervisors:
            node[host.name] = "rack %s" % rack.id
    inside = {}  # rack node -> [session ends] inside the rack
    groups = {}  # (a, b) -> [links], [sessions]
    for link in links:
        a, b = node.get(link.upper, link.upper), node.get(link.lower, link.lower)
        if a == b:
            inside.setdefault(a, []).append(link.ends)
            continue
        groups.setdefault((a, b), ([], []))[0].append(link)
    for s in sessions:
        a, b = node.get(s.a, s.a), node.get(s.b, s.b)
        if a == b:
            inside.setdefault(a, []).append(s.ends)
            continue
        groups.setdefault((a, b), ([], []))[1].append(s)
    out = [_rack_node(fab, rack, inside, status) for rack in sorted(fab.racks.values(), key=lambda r: r.id)]
    row_lines, row_of = _rack_rows(fab)
    return out + row_lines + _aggregated_edges(fab, groups, row_of, status)


def _rack_node(fab, rack, inside, status):
    """The node line of one rack: its label, and its colour from the status when given."""
    rid = "rack %s" % rack.id
    fill, line = ROLE_COLOURS["rack"]
    text = _rack_label_lines(fab, rack)
    bgp = [ends for ends in inside.get(rid, []) if ends]
    if bgp:
        text.append("%s inside" % _plural(len(bgp), "BGP session"))
    tip = "rack %s: %s" % (rack.id, ", ".join(h.name for h in sorted(rack.tors, key=lambda h: h.name)))
    penwidth = None
    if status is not None:
        sevs = [status["hosts"].get(h.name) for h in rack.tors + rack.hypervisors]
        counts = [(s, sum(1 for v in sevs if v == s)) for s in SEVERITIES + (None,)]
        text.append("status: " + ", ".join("%d %s" % (c, s or "unknown") for s, c in counts if c))
        down = sum(1 for ends in bgp if _session_state(ends, status) == "down")
        if bgp:
            text.append("%d session%s down" % (down, "" if down == 1 else "s"))
        fill, penwidth = SEVERITY_FILL[_worst(sevs)], "2"
        if down and _worst(sevs) != "critical":
            fill = SEVERITY_FILL["warning"]
    return "  %s %s;" % (quote(rid), attrs(label=lines(*text), fillcolor=fill, color=line, penwidth=penwidth,
                                           tooltip=tip))


def _rack_rows(fab):
    """Many racks: rows of RACKS_PER_ROW, each behind a row node (spine -> row -> rack), rows stacked by
    invisible edges: a page of edges that can be followed, not a 30,000-pixel strip of 200 crossing lines.
    Returns (node and edge lines, {rack node: row node})."""
    order = ["rack %s" % r for r in sorted(fab.racks)]
    rows = [order[i:i + RACKS_PER_ROW] for i in range(0, len(order), RACKS_PER_ROW)]
    out, row_of = [], {}
    if len(rows) > 1:
        for k, row in enumerate(rows):
            rid = "racks %s-%s" % (row[0][5:], row[-1][5:])
            row_of.update((r, rid) for r in row)
            out.append("  %s %s;" % (quote(rid), attrs(label=rid, shape="box", style="rounded", fontsize="8",
                                                       height="0.2", color=ROLE_COLOURS["rack"][1], ordering="out",
                                                       tooltip="row of %s" % _plural(len(row), "rack"))))
            if k:
                middle = rows[k - 1][len(rows[k - 1]) // 2]
                out.append("  %s -> %s [style=invis];" % (quote(middle), quote(rid)))
    return out, row_of


def _aggregated_edges(fab, groups, row_of, status):
    """Edge lines between the aggregated nodes, through the row nodes when there are rows."""
    rack_ids = {"rack %s" % r for r in fab.racks}
    edges = {}  # (a, b) -> ([links], [sessions])
    for (a, b), (glinks, gsessions) in groups.items():
        hops = [(a, row_of[b]), (row_of[b], b)] if b in row_of and a not in row_of and a not in rack_ids else [(a, b)]
        for hop in hops:
            edges.setdefault(hop, ([], []))
            edges[hop][0].extend(glinks)
            edges[hop][1].extend(gsessions)
    # the row node's edges from above only summarise: each link and session is listed once, into its rack
    return [_group_edge(a, b, glinks, gsessions, status, summary=b.startswith("racks "))
            for (a, b), (glinks, gsessions) in sorted(edges.items())]


def _group_edge(a, b, glinks, gsessions, status, summary=False):
    """One edge standing for links and sessions (aggregated racks)."""
    ends = [e for lk in glinks for e in lk.ends] + [e for s in gsessions for e in s.ends]
    state = _session_state(ends, status)
    if summary:
        tip = "%s to %s: %s, %s" % (a, b, _plural(len(glinks), "link"), _plural(len(ends), "session end"))
        if state not in ("none", None):
            down = sum(1 for e in ends if status["sessions"].get(end_text(e)) == "down")
            tip += " (%d down)" % down
    else:
        if not glinks:
            return _session_edge(a, b, ends, status, " (%s)" % _plural(len(gsessions), "session"))
        tip = "%s: %s" % (_plural(len(glinks), "link"), "; ".join(_link_text(lk) for lk in glinks))
        if ends:
            tip += "; BGP %s" % ", ".join(end_text(e) for e in ends)
            if state not in ("none", None):
                tip += " (%s)" % state
    carries = bool(ends)
    return "  %s -> %s %s;" % (quote(a), quote(b), attrs(
        label="×%d" % len(glinks) if len(glinks) > 1 else None, style="solid" if carries else "dotted",
        penwidth="2" if carries else "1", color=_edge_colour(state, carries), tooltip=tip))


# -- command line --------------------------------------------------------------------------------

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def render(text, path, dot_bin="dot"):
    """Write DOT ``text`` to ``path`` by its suffix (.dot/.gv as is; .svg, .png, .pdf through Graphviz)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".dot", ".gv"):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    if suffix not in FORMATS:
        raise ValueError("%s: unknown output format (use .dot, .gv, .svg, .png or .pdf)" % path)
    exe = shutil.which(dot_bin)
    if exe is None:
        raise RuntimeError("Graphviz's dot is not installed (Debian: apt-get install graphviz)")
    proc = subprocess.run([exe, "-T" + FORMATS[suffix], "-o", path], input=text.encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError("dot -T%s failed: %s" % (FORMATS[suffix], proc.stderr.decode(errors="replace").strip()))


def main(argv, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(prog="ocs-topology", description="Draw the fabric of an inventory (Graphviz).")
    parser.add_argument("-i", "--inventory", required=True, help="inventory directory or file")
    parser.add_argument("-o", "--output", action="append", default=[],
                        help="output file, format by suffix: .dot .gv .svg .png .pdf (repeat; none: DOT on stdout)")
    parser.add_argument("--status", help="status JSON colouring hosts and sessions (format: README)")
    parser.add_argument("--aggregate", choices=("auto", "racks", "hosts"), default="auto",
                        help="one node per rack (racks), every host (hosts), or racks above %d racks or %d hosts"
                        % (MAX_RACKS, MAX_HOSTS))
    parser.add_argument("--vault-password-file", action="append", default=[])
    args = parser.parse_args(argv)
    # Imported here: the pure functions above need neither Ansible's inventory nor the validator's errors.
    from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
    from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
    try:
        status = load_status(args.status) if args.status else None
    except (OSError, ValueError) as exc:
        print("ocs-topology: %s" % exc, file=err)
        return 1
    try:
        fab = build(load_fabric_input(args.inventory, vault_password_files=args.vault_password_file))
    except FabricError as exc:
        print("ocs-topology: the fabric of %s is not valid:" % args.inventory, file=err)
        for problem in exc.problems:
            print("  - %s" % problem, file=err)
        return 1
    if status is not None:
        for warning in status_warnings(fab, status):
            print("ocs-topology: warning: %s" % warning, file=err)
    text = dot(fab, status, args.aggregate)
    if not args.output:
        out.write(text)
        return 0
    for path in args.output:
        try:
            render(text, path)
        except (OSError, ValueError, RuntimeError) as exc:
            print("ocs-topology: %s" % exc, file=err)
            return 1
    return 0
