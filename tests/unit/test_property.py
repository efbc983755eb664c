"""Property: any fabric either fails validation with clear, one-line messages
that name an object, or renders files whose every line is well-formed.

Random fabrics are the valid base with random fields replaced by random
values (valid addresses, near-misses and injection attempts alike).
"""

import copy
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabric_data import BASE
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils import route_table
from ansible_collections.ocs.l3.plugins.module_utils.routes import OWNED_COMMENT

PATHS = [
    ("hostvars", "hv-r01-01", "ocs_instances", 0, "name"),
    ("hostvars", "hv-r01-01", "ocs_instances", 0, "mac"),
    ("hostvars", "hv-r01-01", "ocs_instances", 0, "ip"),
    ("hostvars", "hv-r01-01", "ocs_instances", 0, "floating_ip"),
    ("hostvars", "hv-r01-01", "ocs_instances", 1, "interface"),
    ("hostvars", "hv-r01-02", "ocs_instances", 0, "ip"),
    ("hostvars", "hv-r01-02", "ocs_address"),
    ("hostvars", "hv-r01-02", "ocs_public_address"),
    ("hostvars", "hv-r01-02", "ocs_uplinks", 1, "interface"),
    ("hostvars", "hv-r01-02", "ocs_uplinks", 1, "address"),
    ("hostvars", "hv-r01-02", "ocs_uplinks", 1, "peer"),
    ("hostvars", "tor-r01", "ocs_downlinks", 1, "address"),
    ("hostvars", "tor-r02", "ocs_rack"),
    ("hostvars", "gw-01", "ocs_asn"),
    ("racks", "r01", "asn"),
    ("racks", "r01", "instance_subnets", 0),
    ("racks", "r02", "instance_gateway"),
    ("racks", "r02", "host_subnet"),
    ("fabric", "floating_ranges", 0),
    ("fabric", "internal_ranges", 0),
    ("fabric", "mtu"),
    ("fabric", "domain"),
    ("fabric", "dns_servers", 0),
    ("fabric", "instance_ifname_prefix"),
    ("fabric", "routing_mode"),
    ("fabric", "nat_mode"),
    ("fabric", "metadata", "target"),
]

octet = st.integers(0, 255).map(str)
ipv4 = st.tuples(octet, octet, octet, octet).map(".".join)
near = st.sampled_from(["198.19.1.10", "198.19.1.1", "198.19.1.255", "203.0.113.101", "198.18.1.1", "0.0.0.0/0",
                        "198.18.0.0/15", "198.19.1.0/24", "203.0.113.0/24", "198.19.3.0/24", "01:00:5e:00:00:01",
                        "02:00:00:00:01:0b", "vm-a", "tap-b", "eth0", "r01", "r09", 65000, 65101, 23456, 0, 64500,
                        "static", "gateway", "tap"])
nasty = st.sampled_from(["", " ", "a b", "x\ny", "x\rnroute", "a,b", "a=b", "$(id)", "`id`", "a;b", "'", '"', "#",
                         "--", "-x", "x" * 70, "tap\x00", "10.0.0.1\n", "1.2.3", "010.1.1.1", "256.1.1.1",
                         "198.19.1.10/32", "ff:ff:ff:ff:ff:ff", "02:00:00:00:01", "ÿ", None, True, [], {}, 1.5])
values = st.one_of(ipv4, near, nasty, st.text(max_size=20), st.integers(-5, 2 ** 33))

ROUTE_LINE = re.compile(
    r"(address replace \d+\.\d+\.\d+\.\d+/\d+ dev [A-Za-z0-9_.-]{1,15}( noprefixroute)?"
    r"|route replace (blackhole )?(\d+\.\d+\.\d+\.\d+/\d+|default)( dev [A-Za-z0-9_.-]{1,15})?( via [\d.]+)?"
    r" proto 211( scope link)?( nexthop via [\d.]+)*)")
OWNED_LINE = re.compile(r"#owned \d+\.\d+\.\d+\.\d+/\d+ dev lo")
PATH_START = re.compile(r"(ocs_fabric|ocs_racks|spines|tors|hypervisors|nat_gateways|instances)[.\[ ]")


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=4))
def test_random_fabric_fails_clearly_or_renders_clean_lines(changes):
    data = copy.deepcopy(BASE)
    for path, value in changes:
        _set(data, path, copy.deepcopy(value))
    try:
        fab = build(data)
    except FabricError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert "\n" not in problem and "\r" not in problem
            assert PATH_START.match(problem), problem
        return
    for host, arts in fabric_artifacts(fab).items():
        for art in arts:
            for value in art.vars.values():
                text = str(value)
                assert "\x00" not in text and "\r" not in text
                if art.kind == "routes":
                    # the owned ranges: a comment to ip -batch, read by the hosts' reader
                    assert route_table.parse_file(text, host, 211).owned == [
                        (f.text, "lo") for f in fab.floating_ranges], host
                    for line in text.splitlines():
                        if line.startswith("#"):
                            assert line == OWNED_COMMENT or OWNED_LINE.fullmatch(line), (host, line)
                            continue
                        assert ROUTE_LINE.fullmatch(line), (host, line)
                        # ...and the hosts' reader (module, agent, restore) takes it
                        assert route_table.line_problem(line, 211) is None, (host, line)
