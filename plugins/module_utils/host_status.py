# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ocs-l3-status: compare what a host runs with what the controller rendered for it.

Standard library only (installed on every host by the ocs_agent role, see
``constants.HOST_LIBRARY``). Reads ``expected.json`` (``expected.py`` renders
it) and the running state: BGP sessions and prefix counts (``vtysh ... summary
json``; the received routes of a session only when its count is short, to name
what is missing), kernel routes of protocol ``ROUTE_PROTOCOL`` and the taps,
on a ToR its BGP routes, iptables counters of our chains (``iptables-save
-c``), the NAT tier's nft counters, dnsmasq and its leases, conntrack fill,
the drain file, the generation and the last successful reconcile (the mtime of
``constants.RECONCILED_PATH``, touched by the last play of ``site.yml``).

The report: ``deviations`` (each ``{severity, host, what, detail}``) and the
measured values; the exit code is the worst severity (0 ok or info, 1
warning, 2 critical). The same report becomes a node_exporter textfile
(``ocs_l3.prom``, written atomically) whose labels are bounded: per host, per
session, per chain and rule comment, per severity; never per instance
(per-instance rules are summed under ``rule="instance"``).

``run(argv, data=None) -> (rc, stdout, stderr)`` is injected (tests replace it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from . import constants
from .files import write_atomic
from .host_state import path_in, process_runner, read_generation, state_dir

CONNTRACK_WARNING = 0.80
"""conntrack fill (count / max) above which a warning is raised."""
CONNTRACK_CRITICAL = 0.95
"""... and above which it is critical (new flows are about to be dropped)."""
SEVERITIES = ("ok", "info", "warning", "critical")
EXIT_CODES = {"ok": 0, "info": 0, "warning": 1, "critical": 2}
ESTABLISHED = "Established"
PROM_FILE = "ocs_l3.prom"
PROM_DIR = "/var/lib/prometheus/node-exporter"
"""node_exporter's textfile collector directory (Debian's prometheus-node-exporter default)."""
VTYSH = ("vtysh",)
SUMMARY = "show bgp vrf default ipv4 unicast summary json"
SUMMARY6 = "show bgp vrf default ipv6 unicast summary json"
"""Read only when an expected session is not in the IPv4 summary: an IPv6-only session (a spine's
IPv6 border session, docs/ipv6.md) shows in the IPv6 family alone."""
RULE_COMMENT_PREFIX = "ocs-"
"""Rules whose comment starts with this are counted under their comment; other commented rules
of our chains are per instance and counted together as ``rule="instance"``."""


class Report:
    """The deviations found and the measured values of one host."""

    def __init__(self, host):
        self.host = host
        self.deviations = []
        self.values = {}

    def add(self, severity, what, detail):
        self.deviations.append(dict(severity=severity, host=self.host, what=what, detail=detail))

    def worst(self):
        return worst([d["severity"] for d in self.deviations])

    def as_dict(self):
        return dict(host=self.host, worst=self.worst(), exit_code=EXIT_CODES[self.worst()],
                    deviations=self.deviations, values=self.values)


def worst(severities):
    """The worst of ``severities`` ('ok' when none)."""
    return max(severities, key=SEVERITIES.index, default="ok")


class Sources:
    """Where the collector looks: the state directory, /proc, the drain file, vtysh's argv."""

    def __init__(self, base=None, proc="/proc", vtysh=VTYSH):
        self.base = state_dir(base)
        self.expected = path_in(self.base, constants.EXPECTED_PATH)
        self.generation = path_in(self.base, constants.GENERATION_PATH)
        self.reconciled = path_in(self.base, constants.RECONCILED_PATH)
        self.drain = path_in(self.base, constants.DRAIN_PATH)
        self.proc = proc
        self.vtysh = list(vtysh)
        self.leases = constants.DHCP_LEASE_PATH


# --- reading ----------------------------------------------------------------------------------


def load_expected(path):
    """expected.json's ``expected`` member, or raise ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError("cannot read %s: %s" % (path, exc))
    exp = doc.get("expected") if isinstance(doc, dict) else None
    if not isinstance(exp, dict) or exp.get("version") != 1:
        raise ValueError("%s: no 'expected' member of version 1 (render and host library differ?)" % path)
    return exp


def run_json(run, argv, what):
    """Parsed JSON output of ``argv``; ValueError naming ``what`` when it fails."""
    rc, out, err = run(argv)
    if rc != 0:
        raise ValueError("%s failed (rc %d): %s" % (what, rc, (err or out).strip()[:300]))
    try:
        return json.loads(out or "null")
    except ValueError as exc:
        raise ValueError("%s: not JSON: %s" % (what, exc))


def _summary_peers(run, vtysh, command):
    doc = run_json(run, list(vtysh) + ["-c", command], "vtysh summary") or {}
    peers = doc.get("peers") or {}
    return {key: dict(state=p.get("state", "?"), received=int(p.get("pfxRcd", 0) or 0),
                      advertised=int(p.get("pfxSnt", 0) or 0)) for key, p in peers.items()}


def bgp_peers(run, vtysh, expected=()):
    """{peer: {state, received, advertised}} from FRR's IPv4 summary; an ``expected`` peer absent
    there is looked up in the IPv6 summary (a session of the IPv6 family only)."""
    peers = _summary_peers(run, vtysh, SUMMARY)
    if any(peer not in peers for peer in expected):
        for key, value in _summary_peers(run, vtysh, SUMMARY6).items():
            peers.setdefault(key, value)
    return peers


def received_routes(run, vtysh, peer):
    """Prefixes FRR received from ``peer`` (soft-reconfiguration inbound keeps them)."""
    cmd = "show bgp ipv4 unicast neighbors %s received-routes json" % peer
    doc = run_json(run, list(vtysh) + ["-c", cmd], "vtysh received-routes of %s" % peer) or {}
    return set((doc.get("receivedRoutes") or {}).keys())


def _dst(route):
    dst = route.get("dst", "")
    return dst if "/" in dst or dst == "default" else dst + "/32"


def kernel_routes(run, proto):
    """{destination: device or None} of the IPv4 routes of ``proto``."""
    doc = run_json(run, ["ip", "-4", "-j", "route", "show", "proto", str(proto)], "ip route proto %s" % proto)
    return {_dst(r): r.get("dev") for r in doc or []}


def links(run):
    """Names of the host's network interfaces."""
    return {link.get("ifname") for link in run_json(run, ["ip", "-j", "link", "show"], "ip link") or []}


def read_number(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _comment(tokens):
    for i, tok in enumerate(tokens[:-1]):
        if tok == "--comment":
            return tokens[i + 1].strip('"')
    return None


def rule_label(comment):
    """The bounded ``rule`` label of a commented rule (None: not counted)."""
    if comment is None:
        return None
    return comment if comment.startswith(RULE_COMMENT_PREFIX) else "instance"


def parse_iptables_counters(text):
    """``iptables-save -c`` -> ({table: {our chains}}, {(table, chain, rule): packets}), our chains only."""
    chains, counters, table = {}, {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            chains.setdefault(table, set())
        elif line.startswith(":" + constants.CHAIN_PREFIX):
            chains[table].add(line[1:].split()[0])
        elif line.startswith("[") and "] -A " + constants.CHAIN_PREFIX in line:
            count, rest = line[1:].split("]", 1)
            tokens = rest.split()
            rule = rule_label(_comment(tokens))
            if rule is not None:
                key = (table, tokens[1], rule)
                counters[key] = counters.get(key, 0) + int(count.split(":")[0])
    return chains, counters


def parse_nft_counters(doc):
    """``nft -j list table`` -> {(table, chain, comment): packets} of its counted, commented rules."""
    counters = {}
    for item in (doc or {}).get("nftables", []):
        rule = item.get("rule")
        if not rule or not rule.get("comment"):
            continue
        packets = sum(e["counter"].get("packets", 0) for e in rule.get("expr", []) if "counter" in e)
        key = (rule.get("table"), rule.get("chain"), rule["comment"])
        counters[key] = counters.get(key, 0) + packets
    return counters


# --- checks -------------------------------------------------------------------------------------


def _session_name(s):
    return "%s (%s, AS %s)" % (s["peer"], s.get("peer_host") or "border", s["remote_as"])


def stopped_prefixes(exp, present_links):
    """How many announced /32s the instances whose tap does not exist (stopped VMs) take away."""
    return sum(len(i["prefixes"]) for i in exp.get("instances", []) if i["interface"] not in present_links)


def check_prefixes(rep, s, have, want_sent, missing=None):
    """Prefix counts of one Established session against the expected lower bounds."""
    need = len(s["receive_required"])
    name = _session_name(s)
    if have["received"] < need:
        severity = "critical" if have["received"] == 0 else "warning"
        rep.add(severity, "bgp-prefixes-received", "%s: %d prefixes received, at least %d expected%s"
                % (name, have["received"], need, ("; missing " + ", ".join(missing)) if missing else ""))
    if s.get("receive_max") is not None and have["received"] > s["receive_max"]:
        rep.add("warning", "bgp-prefixes-received", "%s: %d prefixes received, at most %d expected"
                % (name, have["received"], s["receive_max"]))
    if have["advertised"] < want_sent:
        severity = "critical" if have["advertised"] == 0 else "warning"
        rep.add(severity, "bgp-prefixes-advertised", "%s: %d prefixes advertised, %d expected"
                % (name, have["advertised"], want_sent))


def expected_sent(s, stopped):
    """Prefixes this host must send on session ``s`` (exact on hypervisors, else a lower bound)."""
    if s.get("advertise_max") is not None:
        return s["advertise_max"] - (stopped if s.get("advertise_instances") else 0)
    return len(s["advertise_required"])


def check_sessions(rep, exp, peers, stopped, missing_of):
    """Each expected session Established with its prefixes; no session the render did not ask for."""
    rows = []
    for s in exp["sessions"]:
        have = peers.get(s["peer"], dict(state="absent", received=0, advertised=0))
        sent = expected_sent(s, stopped)
        rows.append(dict(peer=s["peer"], peer_host=s.get("peer_host"), state=have["state"],
                         received=have["received"], advertised=have["advertised"],
                         expected_received=len(s["receive_required"]), expected_advertised=sent))
        if have["state"] != ESTABLISHED:
            rep.add("critical", "bgp-session", "%s is %s, expected %s" % (_session_name(s), have["state"], ESTABLISHED))
            continue
        short = have["received"] < len(s["receive_required"])
        check_prefixes(rep, s, have, sent, missing_of(s) if short else None)
    known = {s["peer"] for s in exp["sessions"]}
    for peer in sorted(set(peers) - known):
        rep.add("warning", "bgp-session", "unexpected session %s (%s), not in the rendered configuration"
                % (peer, peers[peer]["state"]))
    rep.values["sessions"] = rows
    rep.values["sessions_expected"] = len(exp["sessions"])
    rep.values["sessions_established"] = sum(1 for r in rows if r["state"] == ESTABLISHED)


def check_instances(rep, exp, routes, present_links):
    """Each instance with an existing tap has its /32 on that tap; a missing tap is a stopped VM."""
    running = routed = 0
    for inst in exp.get("instances", []):
        if inst["interface"] not in present_links:
            continue
        running += 1
        prefix = inst["ip"] + "/32"
        if routes.get(prefix) == inst["interface"]:
            routed += 1
        else:
            rep.add("critical", "instance-route", "instance %s: tap %s exists but %s is %s" % (
                inst["name"], inst["interface"], prefix,
                "missing" if prefix not in routes else "on %s" % routes[prefix]))
    rep.values.update(instances_expected=len(exp.get("instances", [])), instances_running=running,
                      instances_routed=routed)


def check_rack_instances(rep, exp, bgp_routes):
    """A ToR holds its rack's instance /32s (info only: a stopped VM is not announced)."""
    want = exp.get("rack_instances", [])
    missing = [r for r in want if r["prefix"] not in bgp_routes]
    rep.values.update(rack_instances_expected=len(want), rack_instances_learned=len(want) - len(missing))
    if missing:
        rep.add("info", "rack-instances", "%d of %d rack instance /32s not learned (stopped VMs or their hypervisor "
                "down): %s" % (len(missing), len(want), ", ".join(
                    "%s from %s" % (r["prefix"], r["hypervisor"]) for r in missing[:5])))


def check_chains(rep, exp, chains):
    """Every chain of ours the rendered files declare exists."""
    for table, names in sorted(exp.get("chains", {}).items()):
        for chain in names:
            if chain not in chains.get(table, set()):
                rep.add("critical", "iptables-chain", "chain %s of table %s is missing" % (chain, table))


def check_conntrack(rep, count, limit):
    rep.values.update(conntrack_entries=count, conntrack_max=limit)
    if not count or not limit:
        return
    fill = float(count) / limit
    if fill > CONNTRACK_CRITICAL:
        rep.add("critical", "conntrack", "conntrack table %.0f%% full (%d of %d)" % (100 * fill, count, limit))
    elif fill > CONNTRACK_WARNING:
        rep.add("warning", "conntrack", "conntrack table %.0f%% full (%d of %d)" % (100 * fill, count, limit))


def check_dhcp(rep, exp, run, leases_path):
    """dnsmasq (our unit) runs on a hypervisor with instances; its lease count."""
    if exp["role"] != "hypervisor":
        return
    rc, dummy, dummy2 = run(["systemctl", "is-active", "--quiet", constants.DHCP_UNIT_NAME])
    leases = None
    try:
        with open(leases_path) as fh:
            leases = sum(1 for line in fh if line.strip())
    except OSError:
        pass
    rep.values.update(dhcp_running=rc == 0, dhcp_leases=leases, dhcp_hosts=exp.get("dhcp_hosts", 0))
    if rc != 0 and exp.get("dhcp_hosts", 0) > 0:
        rep.add("critical", "dhcp", "%s is not running: %d instances get no address"
                % (constants.DHCP_UNIT_NAME, exp["dhcp_hosts"]))


def check_state(rep, src, controller_generation=None):
    """Drain, generation (drift against the controller's when given), the last successful reconcile."""
    drained = os.path.exists(src.drain)
    generation = read_generation(src.generation)
    rep.values.update(drained=drained, generation=generation, last_reconcile=mtime(src.reconciled))
    if drained:
        rep.add("info", "drain", "host is drained (%s exists)" % src.drain)
    if controller_generation is not None and str(controller_generation) != str(generation):
        rep.add("warning", "drift", "host has generation %s, the controller rendered %s (run site.yml)"
                % (generation, controller_generation))
    if rep.values["last_reconcile"] is None:
        rep.add("info", "reconcile", "no successful reconcile recorded (%s absent)" % src.reconciled)


def _guard(rep, what, func, *args):
    """Run one probe; a failure is a warning naming it, never a crash of the whole report."""
    try:
        return func(*args)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        rep.add("warning", what, "cannot measure: %s" % exc)
        return None


def collect_bgp(rep, exp, run, src, present_links):
    expected = [s["peer"] for s in exp["sessions"]]
    peers = _guard(rep, "bgp-session", bgp_peers, run, src.vtysh, expected) if expected else {}
    if peers is None:
        peers = {}

    def missing_of(s):
        got = _guard(rep, "bgp-prefixes-received", received_routes, run, src.vtysh, s["peer"])
        return [p for p in s["receive_required"] if got is not None and p not in got]
    check_sessions(rep, exp, peers, stopped_prefixes(exp, present_links), missing_of)


def collect_filters(rep, exp, run):
    rc, out, err = run(["iptables-save", "-c"])
    if rc != 0:
        rep.add("warning", "iptables", "iptables-save -c failed (rc %d): %s" % (rc, err.strip()[:300]))
        out = ""
    chains, counters = parse_iptables_counters(out)
    check_chains(rep, exp, chains)
    if exp.get("nft_table"):
        family, name = exp["nft_table"].split()
        doc = _guard(rep, "nft-table", run_json, run, ["nft", "-j", "list", "table", family, name],
                     "nft table %s" % exp["nft_table"])
        if doc is None:
            rep.add("critical", "nft-table", "table %s is missing or unreadable" % exp["nft_table"])
        counters.update(parse_nft_counters(doc))
    rep.values["counters"] = [dict(table=t, chain=c, rule=r, packets=n) for (t, c, r), n in sorted(counters.items())]


def collect(run, src, host=None, controller_generation=None):
    """The whole report of this host."""
    rep = Report(host or socket.gethostname())
    rep.values["timestamp"] = time.time()
    try:
        exp = load_expected(src.expected)
    except ValueError as exc:
        rep.add("critical", "expected", str(exc))
        check_state(rep, src, controller_generation)
        return rep
    rep.host = host or exp["host"]
    present = _guard(rep, "links", links, run) or set()
    collect_bgp(rep, exp, run, src, present)
    if exp["role"] == "hypervisor":
        routes = _guard(rep, "instance-route", kernel_routes, run, constants.ROUTE_PROTOCOL) or {}
        check_instances(rep, exp, routes, present)
    if exp.get("rack_instances"):
        check_rack_instances(rep, exp, _guard(rep, "rack-instances", kernel_routes, run, "bgp") or {})
    collect_filters(rep, exp, run)
    check_dhcp(rep, exp, run, src.leases)
    netfilter = os.path.join(src.proc, "sys", "net", "netfilter")
    check_conntrack(rep, read_number(os.path.join(netfilter, "nf_conntrack_count")),
                    read_number(os.path.join(netfilter, "nf_conntrack_max")))
    check_state(rep, src, controller_generation)
    return rep


# --- output -------------------------------------------------------------------------------------

METRICS = (
    ("ocs_l3_status_timestamp_seconds", "gauge", "When ocs-l3-status last measured this host."),
    ("ocs_l3_bgp_sessions_expected", "gauge", "BGP sessions the rendered configuration asks for."),
    ("ocs_l3_bgp_sessions_established", "gauge", "Expected BGP sessions that are Established."),
    ("ocs_l3_bgp_session_established", "gauge", "1 when the session to peer is Established."),
    ("ocs_l3_bgp_prefixes_received", "gauge", "Prefixes accepted from the peer."),
    ("ocs_l3_bgp_prefixes_expected", "gauge", "Prefixes the peer must send at least (its own)."),
    ("ocs_l3_bgp_prefixes_advertised", "gauge", "Prefixes sent to the peer."),
    ("ocs_l3_bgp_prefixes_advertised_expected", "gauge", "Prefixes this host must send to the peer."),
    ("ocs_l3_instances_expected", "gauge", "Instances of this hypervisor in the inventory."),
    ("ocs_l3_instances_running", "gauge", "Instances whose tap exists."),
    ("ocs_l3_instances_routed", "gauge", "Running instances whose /32 is on their tap."),
    ("ocs_l3_rack_instances_expected", "gauge", "Instance /32s of the rack (ToR)."),
    ("ocs_l3_rack_instances_learned", "gauge", "Instance /32s of the rack in the kernel by BGP (ToR)."),
    ("ocs_l3_packets_total", "counter", "Packets matched by the rules of ocs-l3's chains, per rule comment."),
    ("ocs_l3_dhcp_running", "gauge", "1 when the DHCP unit is active (hypervisors)."),
    ("ocs_l3_dhcp_leases", "gauge", "Leases in the DHCP lease file (hypervisors)."),
    ("ocs_l3_conntrack_entries", "gauge", "Entries in the conntrack table."),
    ("ocs_l3_conntrack_max", "gauge", "Size of the conntrack table."),
    ("ocs_l3_drained", "gauge", "1 when the host is drained."),
    ("ocs_l3_generation_info", "gauge", "The inventory generation the host applied last."),
    ("ocs_l3_last_reconcile_timestamp_seconds", "gauge", "End of the last successful converge."),
    ("ocs_l3_deviations", "gauge", "Deviations from the expected state, per severity."),
)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _sample(name, value, **labels):
    if value is None:
        return None
    if isinstance(value, bool):
        value = int(value)
    text = ",".join('%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items()))
    return "%s%s %s" % (name, "{%s}" % text if text else "", repr(float(value)) if isinstance(value, float) else value)


def samples(rep):
    """{metric name: [sample lines]} of a report."""
    v = rep.values
    out = {name: [] for name, dummy, dummy2 in METRICS}
    for name in ("status_timestamp_seconds", "bgp_sessions_expected", "bgp_sessions_established",
                 "instances_expected", "instances_running", "instances_routed", "rack_instances_expected",
                 "rack_instances_learned", "dhcp_running", "dhcp_leases", "conntrack_entries", "conntrack_max",
                 "drained", "last_reconcile_timestamp_seconds"):
        key = {"status_timestamp_seconds": "timestamp", "last_reconcile_timestamp_seconds": "last_reconcile"}.get(
            name, name[4:] if name.startswith("bgp_") else name)
        out["ocs_l3_" + name].append(_sample("ocs_l3_" + name, v.get(key)))
    for row in v.get("sessions", []):
        labels = dict(peer=row["peer"], peer_host=row["peer_host"] or "border")
        out["ocs_l3_bgp_session_established"].append(_sample(
            "ocs_l3_bgp_session_established", row["state"] == ESTABLISHED, **labels))
        for metric, key in (("received", "received"), ("expected", "expected_received"),
                            ("advertised", "advertised"), ("advertised_expected", "expected_advertised")):
            name = "ocs_l3_bgp_prefixes_" + metric
            out[name].append(_sample(name, row[key], **labels))
    for c in v.get("counters", []):
        out["ocs_l3_packets_total"].append(_sample("ocs_l3_packets_total", c["packets"], table=c["table"],
                                                   chain=c["chain"], rule=c["rule"]))
    if v.get("generation") is not None:
        out["ocs_l3_generation_info"].append(_sample("ocs_l3_generation_info", 1, generation=v["generation"]))
    for severity in SEVERITIES[1:]:
        count = sum(1 for d in rep.deviations if d["severity"] == severity)
        out["ocs_l3_deviations"].append(_sample("ocs_l3_deviations", count, severity=severity))
    return out


def prom_text(rep):
    """The node_exporter textfile of a report (exposition format 0.0.4)."""
    lines = []
    by_name = samples(rep)
    for name, kind, help_text in METRICS:
        present = [s for s in by_name[name] if s is not None]
        if present:
            lines += ["# HELP %s %s" % (name, help_text), "# TYPE %s %s" % (name, kind)] + present
    return "\n".join(lines) + "\n"


def write_prom(directory, text):
    """Write ``directory/ocs_l3.prom`` atomically (node_exporter never reads half a file)."""
    return write_atomic(os.path.join(directory, PROM_FILE), text)


def table(reports):
    """The human summary: one line per deviation (host, severity, what, detail), worst first."""
    rows = [(d["host"], d["severity"], d["what"], d["detail"]) for r in reports for d in r["deviations"]]
    rows.sort(key=lambda row: (-SEVERITIES.index(row[1]), row[0], row[2]))
    rows += [(r["host"], "ok", "-", "as expected") for r in reports if not r["deviations"]]
    head = ("HOST", "SEVERITY", "WHAT", "DETAIL")
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(3)]
    fmt = "  ".join("%%-%ds" % w for w in widths) + "  %s"
    return "\n".join(fmt % row for row in [head] + rows) + "\n"


def summary(reports, targeted=()):
    """Reports of several hosts as one document: {reports, worst, exit_code, counts}. A host of
    ``targeted`` without a report (unreachable, the collector failed) gets a critical one."""
    reports = list(reports)
    seen = {r["host"] for r in reports}
    for host in sorted(set(targeted) - seen):
        rep = Report(host)
        rep.add("critical", "unreachable", "no status from the host (unreachable, or the collector failed)")
        reports.append(rep.as_dict())
    reports.sort(key=lambda r: r["host"])
    top = worst([r["worst"] for r in reports])
    counts = {s: sum(1 for r in reports for d in r["deviations"] if d["severity"] == s) for s in SEVERITIES[1:]}
    return dict(reports=reports, worst=top, exit_code=EXIT_CODES[top], counts=counts)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocs-l3-status", description="Compare this host's running state with "
                                "the state the controller rendered for it (exit 0 ok, 1 warning, 2 critical).")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: a table)")
    p.add_argument("--prom", metavar="DIR", help="also write DIR/%s for node_exporter's textfile collector"
                   % PROM_FILE)
    p.add_argument("--quiet", action="store_true", help="print nothing (with --prom: a timer's run)")
    p.add_argument("--state-dir", help="the installed state (default $%s or the fabric's)" % constants.STATE_DIR_ENV)
    p.add_argument("--vtysh", default=" ".join(VTYSH), help="vtysh command (e.g. 'vtysh --vty_socket DIR')")
    p.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    p.add_argument("--host", help="host name in the report (default: expected.json's)")
    return p.parse_args(argv)


def main(argv=None, run=None, out=sys.stdout):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    src = Sources(args.state_dir, proc=args.proc, vtysh=args.vtysh.split())
    rep = collect(run or process_runner(timeout=60), src, host=args.host)
    if args.prom:
        write_prom(args.prom, prom_text(rep))
    report = rep.as_dict()
    if not args.quiet:
        out.write(json.dumps(report, indent=1, sort_keys=True) + "\n" if args.json else table([report]))
    return report["exit_code"]
