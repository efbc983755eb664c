"""plugins/plugin_utils/topology.py: the DOT text of the topology picture (no Graphviz needed)."""

import copy
import io
import json
import os
import re

import pytest

from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import policy
from ansible_collections.ocs.l3.plugins.plugin_utils import topology as topo
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools import gen_fabric as gen

from fabric_data import BASE, ROOT, gateway_mode

EXAMPLE = os.path.join(ROOT, "inventory", "example")

_NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" \[(.*)\];$')
_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)" \[(.*)\];$')
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\]]+)')


def _attrs(text):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _ATTR.findall(text)}


def parse(text):
    """(nodes {id: attrs}, node ids in order, edges [(a, b, attrs)], clusters {name: [node ids]})."""
    nodes, order, edges, clusters, cluster = {}, [], [], {}, None
    for line in text.splitlines():
        m = re.match(r'^\s*subgraph "(cluster_[^"]+)" \{$', line)
        if m:
            cluster = clusters.setdefault(m.group(1), [])
            continue
        if line.strip() == "}":
            cluster = None
            continue
        m = _EDGE.match(line)
        if m:
            edges.append((m.group(1), m.group(2), _attrs(m.group(3))))
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            order.append(m.group(1))
            nodes[m.group(1)] = _attrs(m.group(2))
            if cluster is not None:
                cluster.append(m.group(1))
    return nodes, order, edges, clusters


def session_tokens(edges):
    """Every ``host|key`` token of the edges' BGP tooltips, with its edge."""
    out = []
    for a, b, at in edges:
        tip = at.get("tooltip", "")
        if "BGP " in tip:
            bgp = tip.split("BGP ", 1)[1].split(" (")[0]
            out += [(t, (a, b, at)) for t in re.split(r" ~ |, ", bgp)]
    return out


def all_ends(fab):
    return {"%s|%s" % (name, n.key) for name, host in fab.hosts.items() for n in policy(fab, host).neighbors}


@pytest.fixture(scope="module")
def example():
    return build(load_fabric_input(EXAMPLE))


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "inv"
    gen.generate(str(out), 100, 2, 1, 0.5)
    return build(load_fabric_input(str(out)))


def test_every_host_of_the_example_appears_once_in_its_rack(example):
    text = topo.dot(example)
    nodes, order, edges, clusters = parse(text)
    assert sorted(h for h in order if not h.startswith("border ")) == sorted(example.hosts)
    assert len(order) == len(set(order)) == len(example.hosts) + len(example.border_peers)
    assert set(clusters) == {"cluster_rack_r01", "cluster_rack_r02"}
    for rack in example.racks.values():
        assert sorted(clusters["cluster_rack_%s" % rack.id]) == sorted(h.name for h in rack.tors + rack.hypervisors)
    for name, host in example.hosts.items():
        assert nodes[name]["fillcolor"] == topo.ROLE_COLOURS[host.role][0]
        assert nodes[name]["label"].startswith(name + "\\n" + ntoa(host.address))
    assert "border 198.18.0.254" in nodes
    assert "4 instances" in nodes["hv-r01-01"]["label"]


def test_every_uplink_is_an_edge_labelled_with_its_interfaces_and_network(example):
    nodes, order, edges, clusters = parse(topo.dot(example))
    links = [(a, b, at) for a, b, at in edges if at.get("style") != "dashed"]
    want = sorted((up.peer_host or "border %s" % ntoa(up.peer), h.name, up.interface, up.net.text)
                  for h in example.hosts.values() for up in h.uplinks)
    assert sorted((a, b, at["headlabel"], at["label"]) for a, b, at in links) == want
    dual = [(a, at) for a, b, at in links if b == "hv-r01-02"]  # rack r01 has two ToRs
    assert sorted((a, at["taillabel"], at["headlabel"], at["label"]) for a, at in dual) == [
        ("tor-r01", "eth1", "eth0", "198.18.1.0/25"), ("tor-r01b", "eth1", "eth1", "198.18.1.128/25")]


def test_every_bgp_session_of_frr_policy_appears_once(example):
    nodes, order, edges, clusters = parse(topo.dot(example))
    tokens = session_tokens(edges)
    assert sorted(t for t, e in tokens) == sorted(all_ends(example))
    by_token = dict(tokens)
    # both ends of a hypervisor's session ride its link edge (merged), solid
    edge = by_token["hv-r01-02|198.18.1.129"]
    assert by_token["tor-r01b|198.18.1.142"] == edge and edge[2]["style"] == "solid"
    # the spine's border session rides its border link (issue 15): solid, border above the spine
    a, b, at = by_token["spine1|198.18.0.254"]
    assert (a, b, at["style"]) == ("border 198.18.0.254", "spine1", "solid")


def test_unnumbered_links_and_sessions():
    data = copy.deepcopy(BASE)
    data["hostvars"]["tor-r02"]["ocs_downlinks"] = [{"interface": "swp5", "host": "hv-r02-01"}]
    data["hostvars"]["hv-r02-01"]["ocs_uplinks"] = [{"interface": "eth3"}]
    fab = build(data)
    nodes, order, edges, clusters = parse(topo.dot(fab))
    (edge,) = [e for e in edges if e[1] == "hv-r02-01"]
    assert edge[0] == "tor-r02"
    assert (edge[2]["label"], edge[2]["taillabel"], edge[2]["headlabel"]) == ("unnumbered", "swp5", "eth3")
    assert sorted(t for t, e in session_tokens([edge])) == ["hv-r02-01|eth3", "tor-r02|swp5"]
    assert sorted(t for t, e in session_tokens(edges)) == sorted(all_ends(fab))


def test_static_routing_links_without_sessions_are_dotted():
    data = copy.deepcopy(BASE)
    data["fabric"]["routing_mode"] = "static"
    fab = build(data)
    nodes, order, edges, clusters = parse(topo.dot(fab))
    hv_links = [at for a, b, at in edges if b.startswith("hv-")]
    assert hv_links and all(at["style"] == "dotted" and "BGP" not in at["tooltip"] for at in hv_links)
    assert sorted(t for t, e in session_tokens(edges)) == sorted(all_ends(fab))


def test_gateway_mode_border_sessions_of_the_gateways_ride_their_border_links():
    data = copy.deepcopy(BASE)
    gateway_mode(data)
    for hv in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][hv].pop("ocs_public_address")
    fab = build(data)
    nodes, order, edges, clusters = parse(topo.dot(fab))
    by_token = dict(session_tokens(edges))
    a, b, at = by_token["gw-01|198.18.0.254"]
    assert (a, b, at["style"]) == ("border 198.18.0.254", "gw-01", "solid")
    assert "spine1|198.18.0.254" not in by_token  # gateway mode: the spines have no border session
    assert sorted(by_token) == sorted(all_ends(fab))


def test_aggregation_threshold():
    fab = build(copy.deepcopy(BASE))
    assert not topo.aggregated(fab) and topo.aggregated(fab, "racks") and not topo.aggregated(fab, "hosts")
    with pytest.raises(ValueError):
        topo.aggregated(fab, "everything")
    fab.racks.update({"x%02d" % i: None for i in range(topo.MAX_RACKS - len(fab.racks))})
    assert not topo.aggregated(fab)
    fab.racks["one-more"] = None
    assert topo.aggregated(fab)


def test_small_fabric_aggregated_on_request():
    fab = build(copy.deepcopy(BASE))
    nodes, order, edges, clusters = parse(topo.dot(fab, aggregate="racks"))
    assert sorted(order) == ["border 198.18.0.254", "gw-01", "rack r01", "rack r02", "spine1"]
    assert clusters == {}
    assert nodes["rack r01"]["label"].startswith("r01: 1 ToR, 2 hypervisors, 3 instances\\n")
    assert "3 BGP sessions inside" in nodes["rack r01"]["label"]  # hv-r01-01 once, hv-r01-02 twice
    assert ("spine1", "rack r01") in [(a, b) for a, b, at in edges]


def test_hundred_racks_one_node_per_rack(hundred):
    text = topo.dot(hundred)
    nodes, order, edges, clusters = parse(text)
    assert len(hundred.racks) == 100 and len(hundred.hosts) == 304
    assert len(order) <= 150
    assert sorted(n for n in order if n.startswith("rack ")) == ["rack %s" % r for r in sorted(hundred.racks)]
    assert not any(n in hundred.hosts for n in order if n.startswith(("tor-", "hv-")))
    assert nodes["rack r007"]["label"].startswith("r007: 1 ToR, 2 hypervisors, 2 instances\\n")
    assert "2 BGP sessions inside" in nodes["rack r007"]["label"]
    # every session leaving a rack is on an edge; those inside are counted
    inside = {"%s|%s" % (n, nb.key) for n, h in hundred.hosts.items() if h.role == "hypervisor"
              for nb in policy(hundred, h).neighbors}
    inside |= {"%s|%s" % (t.name, nb.key) for t in hundred.by_role["tor"] for nb in policy(hundred, t).neighbors
               if nb.group == "HV"}
    drawn = [t for t, e in session_tokens(edges)]
    assert sorted(drawn) == sorted(all_ends(hundred) - inside)
    # rows: spine -> row node -> rack, each rack behind exactly one row node
    rows = [n for n in order if n.startswith("racks ")]
    assert len(rows) == 10 and "racks r001-r010" in rows
    into = {}
    for a, b, at in edges:
        if b.startswith("rack ") and at.get("style") != "invis":
            into.setdefault(b, set()).add(a)
    assert all(len(into[r]) == 1 and next(iter(into[r])).startswith("racks ") for r in into)
    assert len(into) == 100


def test_status_colours_hosts_and_sessions(example):
    status = topo.parse_status({"hosts": {"hv-r01-01": {"severity": "critical"}, "tor-r01": {"severity": "ok"},
                                          "hv-r02-01": {"severity": "warning"}},
                                "sessions": {"tor-r01|198.18.1.11": "down", "spine1|198.18.0.11": "ok"}})
    nodes, order, edges, clusters = parse(topo.dot(example, status))
    assert nodes["hv-r01-01"]["fillcolor"] == topo.SEVERITY_FILL["critical"]
    assert nodes["hv-r02-01"]["fillcolor"] == topo.SEVERITY_FILL["warning"]
    assert nodes["tor-r01"]["fillcolor"] == topo.SEVERITY_FILL["ok"]
    assert nodes["tor-r01"]["color"] == topo.ROLE_COLOURS["tor"][1]  # the role stays as the outline
    assert nodes["spine1"]["fillcolor"] == topo.SEVERITY_FILL[None] and "status: unknown" in nodes["spine1"]["label"]
    by_token = dict(session_tokens(edges))
    assert by_token["tor-r01|198.18.1.11"][2]["color"] == topo.SESSION_COLOUR["down"]
    assert by_token["hv-r01-01|198.18.1.1"][2]["color"] == topo.SESSION_COLOUR["down"]  # the same session
    assert by_token["tor-r01|198.18.0.1"][2]["color"] == topo.SESSION_COLOUR["ok"]
    assert by_token["spine1|198.18.0.254"][2]["color"] == topo.SESSION_COLOUR[None]
    assert "(down)" in by_token["tor-r01|198.18.1.11"][2]["tooltip"]


def test_status_aggregated_rack_takes_the_worst(example):
    status = topo.parse_status({"hosts": {"hv-r01-01": {"severity": "critical"}, "hv-r02-01": {"severity": "ok"}},
                                "sessions": {"tor-r02|198.18.2.12": "down"}})
    nodes, order, edges, clusters = parse(topo.dot(example, status, aggregate="racks"))
    assert nodes["rack r01"]["fillcolor"] == topo.SEVERITY_FILL["critical"]
    assert nodes["rack r02"]["fillcolor"] == topo.SEVERITY_FILL["warning"]  # a session down inside
    assert "status: 1 ok, 2 unknown" in nodes["rack r02"]["label"]
    assert "1 session down" in nodes["rack r02"]["label"]


@pytest.mark.parametrize("bad,message", [
    ([], "JSON object"),
    ({"host": {}}, "unknown key"),
    ({"hosts": {"hv-r01-01": {"severity": "bad"}}}, "hosts.hv-r01-01.severity"),
    ({"hosts": {"hv-r01-01": "ok"}}, "hosts.hv-r01-01.severity"),
    ({"sessions": {"tor-r01|198.18.1.11": "up"}}, "ok, down"),
    ({"sessions": {"tor-r01": "ok"}}, "HOST|NEIGHBOR"),
])
def test_bad_status_is_refused(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        topo.parse_status(bad)


def test_status_names_the_fabric_does_not_know(example):
    status = topo.parse_status({"hosts": {"nope": {"severity": "ok"}, "spine1": {"severity": "ok"}},
                                "sessions": {"spine1|10.0.0.1": "down", "spine1|198.18.0.254": "ok"}})
    assert topo.status_warnings(example, status) == [
        "status: host nope is not a fabric host",
        "status: session spine1|10.0.0.1 is not a BGP session of the fabric"]


def test_quoting():
    assert topo.quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c d"'
    assert topo.lines("a", "", 'b"') == '"a\\nb\\""'
    assert topo.attrs(label=topo.lines("x", "y"), color="#fff", skip=None) == '[label="x\\ny", color="#fff"]'


def test_main_writes_dot_and_refuses_bad_input(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert topo.main(["-i", EXAMPLE], out=out, err=err) == 0
    assert out.getvalue().startswith("digraph fabric {") and out.getvalue().endswith("}\n")
    path = tmp_path / "x.dot"
    assert topo.main(["-i", EXAMPLE, "-o", str(path)], out=out, err=err) == 0
    assert path.read_text() == out.getvalue()
    assert topo.main(["-i", EXAMPLE, "-o", str(tmp_path / "x.jpg")], out=out, err=err) == 1
    assert "unknown output format" in err.getvalue()
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"hosts": {"gone": {"severity": "ok"}}}))
    assert topo.main(["-i", EXAMPLE, "--status", str(status)], out=out, err=err) == 0
    assert "host gone is not a fabric host" in err.getvalue()
    status.write_text(json.dumps({"hosts": {"spine1": {"severity": "fine"}}}))
    assert topo.main(["-i", EXAMPLE, "--status", str(status)], out=out, err=err) == 1
    bad = tmp_path / "inv"
    bad.mkdir()
    (bad / "hosts.yml").write_text("all:\n  children:\n    spines:\n      hosts:\n        s1:\n")
    assert topo.main(["-i", str(bad)], out=out, err=err) == 1
    assert "is not valid" in err.getvalue()
