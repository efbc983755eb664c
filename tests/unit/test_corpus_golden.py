"""Golden: the validator's every message over the whole bad-input corpus, byte
for byte, and what valid fabrics render (a digest of every host's files).

The corpus: the rules of test_fabric_validation (and its injection names), the
BGP knobs of test_frr, the session settings of test_bgp_sessions, the instances-file cases, a deterministic random corpus
in the manner of test_property (fields of the base fabric replaced by valid
values, near-misses and injection attempts), two generated fabrics, then the
IPv6 cases (the dual-stack base, instances files with ip6, and a random corpus
of its IPv6 fields; appended, so that the cases before them keep their lines).

A change of message or behaviour shows as a diff against
tests/unit/golden/validation-messages.txt. When a change is meant, rewrite the
file and review its diff::

    .venv/bin/python tests/unit/test_corpus_golden.py --update
"""

import copy
import hashlib
import os
import random
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import test_bgp_sessions  # noqa: E402
import test_fabric_validation  # noqa: E402
import test_frr  # noqa: E402
from fabric_data import BASE, dual_stack, gateway_mode, set_at  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.inventory import parse_instances  # noqa: E402

GOLDEN = os.path.join(HERE, "golden", "validation-messages.txt")
RANDOM_EXAMPLES = 1500
VALID_LEANING_EXAMPLES = 150
WIDE6_EXAMPLES = 16
RANDOM6_EXAMPLES = 300

# The random corpus: test_property's fields and values (copied, so that the
# corpus changes only when this file does).
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
    ("hostvars", "hv-r01-02", "ocs_uplinks", 1),
    ("hostvars", "tor-r01", "ocs_downlinks", 1, "address"),
    ("hostvars", "tor-r01", "ocs_downlinks", 1, "host"),
    ("hostvars", "tor-r01", "ocs_uplinks", 0, "peer"),
    ("hostvars", "tor-r02", "ocs_rack"),
    ("hostvars", "gw-01", "ocs_asn"),
    ("hostvars", "gw-01", "ocs_rack"),
    ("hostvars", "spine1", "ocs_uplinks"),
    ("racks", "r01", "asn"),
    ("racks", "r01", "instance_subnets", 0),
    ("racks", "r02", "instance_gateway"),
    ("racks", "r02", "host_subnet"),
    ("racks", "r03"),
    ("fabric", "floating_ranges", 0),
    ("fabric", "internal_ranges", 0),
    ("fabric", "mtu"),
    ("fabric", "domain"),
    ("fabric", "dns_servers", 0),
    ("fabric", "instance_ifname_prefix"),
    ("fabric", "routing_mode"),
    ("fabric", "nat_mode"),
    ("fabric", "metadata", "target"),
    ("fabric", "metadata", "port"),
    ("fabric", "border_peers", 0, "address"),
    ("fabric", "border_peers", 0, "asn"),
    ("fabric", "dhcp_lease_time"),
    ("fabric", "host_policy"),
    ("fabric", "management_ranges", 0),
    ("fabric", "host_services"),
    ("fabric", "instance_services"),
    ("fabric", "bgp"),
    ("fabric", "spine_asn"),
    ("groups", "tors", 1),
]
NEAR = ["198.19.1.10", "198.19.1.1", "198.19.1.255", "203.0.113.101", "198.18.1.1", "0.0.0.0/0", "198.18.0.0/15",
        "198.19.1.0/24", "203.0.113.0/24", "198.19.3.0/24", "01:00:5e:00:00:01", "02:00:00:00:01:0b", "vm-a",
        "tap-b", "eth0", "r01", "r09", 65000, 65101, 23456, 0, 64500, "static", "gateway", "tap", "host", "bgp",
        "12h", "1m", "hv-r01-01", "tor-r01", "2001:db8::/32", "198.18.0.254", "198.18.1.140/25", "198.18.1.129",
        {"interface": "eth1", "address": "198.18.1.140/25"}, {"interface": "eth7"},
        {"asn": 65103, "host_subnet": "198.18.3.0/24", "instance_subnets": ["198.19.3.0/24"]},
        [{"proto": "tcp", "port": 9100, "from": ["192.0.2.0/24", "2001:db8::/32"]}],
        [{"address": "198.18.0.9", "proto": "udp", "port": 123}], {"bfd": True, "keepalive": 5, "holdtime": 15},
        [{"interface": "eth0", "peer": "198.18.0.254"}], "hv-r02-01"]
NASTY = ["", " ", "a b", "x\ny", "x\rnroute", "a,b", "a=b", "$(id)", "`id`", "a;b", "'", '"', "#", "--", "-x",
         "x" * 70, "tap\x00", "10.0.0.1\n", "1.2.3", "010.1.1.1", "256.1.1.1", "198.19.1.10/32", "ff:ff:ff:ff:ff:ff",
         "02:00:00:00:01", "\xff", None, True, [], {}, 1.5]
TEXT = "ab01-_.:/ \n$x"
PATHS6 = [
    ("fabric", "internal_ranges6", 0),
    ("fabric", "internal_ranges6"),
    ("racks", "r01", "instance_subnets6", 0),
    ("racks", "r02", "instance_subnets6", 0),
    ("racks", "r02", "instance_subnets6", 1),
    ("racks", "r01", "instance_ip6_from_ip4"),
    ("racks", "r02", "instance_ip6_from_ip4"),
    ("hostvars", "hv-r01-01", "ocs_instances", 0, "ip6"),
    ("hostvars", "hv-r01-01", "ocs_instances", 1, "ip6"),
    ("hostvars", "hv-r01-02", "ocs_instances", 0, "ip6"),
    ("hostvars", "hv-r02-01", "ocs_instances", 0, "ip6"),
    ("hostvars", "hv-r01-02", "ocs_instances", 0, "ip"),
    ("hostvars", "spine1", "ocs_address6"),
    ("hostvars", "hv-r01-01", "ocs_address6"),
    ("hostvars", "tor-r02", "ocs_address6"),
]
NEAR6 = ["2001:db8::/32", "2001:db8:0:1::/64", "2001:db8:0:1::/96", "2001:db8:0:1::/97", "2001:db8:0:2::/64",
         "2001:db8:0:3::/64", "2001:db8:0:1:8000::/65", "2001:db8::/47", "2001:db8:0:2::/120", "2001:db8:0:2::/121",
         "2001:db8:0:1::b", "2001:db8:0:1::c613:10a", "2001:db8:0:1::c613:10c", "2001:db8:0:2::d", "2001:db8:0:2::",
         "2001:db8:ffff::1", "2001:db8:ffff::11", "2001:db9::1", "fd00::/8", "fd00::1", "ff02::1", "ff00::/8",
         "fe80::1", "fe80::/64", "fe80::1%eth0", "::1", "::", "::/0", "::ffff:198.19.1.10", "2001:DB8:0:1::B",
         "2001:db8::1/32", "198.19.1.10", "198.18.0.0/15", True, False, "yes", [], ["2001:db8:0:1::/64"]]
NASTY6 = ["", " ", "2001:db8::1\n", " 2001:db8::1", "2001:db8::1 ", "1::2::3", "2001:db8::g", "::ffff:01.2.3.4",
          "x\ny", "$(id)", None, {}, 1.5, 2 ** 129, "\xff"]


def _value(rng):
    pick = rng.randrange(5)
    if pick == 0:
        return ".".join(str(rng.randrange(256)) for dummy in range(4))
    if pick == 1:
        return rng.choice(NEAR)
    if pick == 2:
        return rng.choice(NASTY)
    if pick == 3:
        return "".join(rng.choice(TEXT) for dummy in range(rng.randrange(21)))
    return rng.randrange(-5, 2 ** 33)


def _valid_leaning(rng):
    """In the manner of tests/integration/test_property_validators: mostly valid
    fabrics (more instances, both NAT placements, both routing modes, BGP knobs)."""
    data = copy.deepcopy(BASE)
    for dummy in range(rng.randrange(7)):
        inst = {"name": "vm-" + "".join(rng.choice("abcdef0123") for dummy in range(rng.randint(1, 3))),
                "mac": "02:" + ":".join("%02x" % rng.randrange(256) for dummy in range(5)),
                "ip": "198.19.1.%d" % rng.randint(2, 254)}
        if rng.random() < 0.5:
            inst["floating_ip"] = "203.0.113.%d" % rng.randint(1, 254)
        data["hostvars"]["hv-r01-02"]["ocs_instances"].append(inst)
    data["fabric"]["routing_mode"] = rng.choice(["bgp", "static"])
    if rng.random() < 0.5:
        gateway_mode(data)
        for name in data["groups"]["hypervisors"]:
            data["hostvars"][name].pop("ocs_public_address", None)
    if rng.random() < 0.5:
        data["fabric"].pop("metadata")
    bgp = {key: rng.choice([True, False]) for key in ("bfd", "graceful_restart") if rng.random() < 0.5}
    if rng.random() < 0.5:
        bgp.update(keepalive=rng.randint(1, 20))
        bgp.update(holdtime=bgp["keepalive"] * 3)
    if rng.random() < 0.3:
        bgp["password"] = "pw-%d" % rng.randrange(1000)
    data["fabric"]["bgp"] = bgp
    return data


def _sessions_valid(data):
    """Border settings, a second border ASN, per-link passwords (numbered and unnumbered) and the
    fleet password together: a valid fabric whose render the digest pins."""
    data["fabric"]["bgp"] = {"password": "fleet-key"}
    data["fabric"]["border"] = {"keepalive": 5, "holdtime": 15, "bfd": True, "password": "b0rder"}
    test_bgp_sessions.second_peer(data, asn=65531, holdtime=45, bfd=False, password="b0rder-2")
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"][0]["password"] = "link-a"
    test_bgp_sessions._unnumbered_pair(data, "link-u", "link-u")


def _value6(rng):
    pick = rng.randrange(4)
    if pick == 0:
        return rng.choice(["2001:db8:0:1::", "2001:db8:0:2::", "2001:db8:ffff::"]) + "%x" % rng.randrange(65536)
    if pick == 1:
        return rng.choice(NEAR6)
    if pick == 2:
        return rng.choice(NASTY6)
    return "".join(rng.choice("0123456789abcdefABCDEF:./% \n") for dummy in range(rng.randrange(25)))


def _corpus6():
    """The IPv6 cases: the dual-stack base, instances files with ip6, random IPv6 fields."""
    yield "dual-stack base", dual_stack(copy.deepcopy(BASE))
    yield "file csv ip6", dual_stack(_from_file("hypervisor,name,mac,ip,ip6\n"
                                                "hv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,\n"
                                                "hv-r01-01,vm-y,02:00:00:00:09:02,198.19.1.41,fe80::1%eth0\n"
                                                "hv-r01-01,vm-z,02:00:00:00:09:03,198.19.1.42,2001:db8:0:1::c613:128\n"
                                                "hv-r02-01,vm-w,02:00:00:00:09:04,198.19.2.42,2001:db8:0:2::2a\n",
                                                "instances.csv"))
    yield "file json ip6", dual_stack(_from_file(
        '[{"hypervisor": "hv-r02-01", "name": "vm-x", "mac": "02:00:00:00:09:01", "ip": "198.19.2.40", '
        '"ip6": "2001:db8:0:1::40"}, {"hypervisor": "hv-r01-01", "name": "vm-y", "mac": "02:00:00:00:09:02", '
        '"ip": "198.19.1.41", "ip6": "2001:db8:0:1::29"}]', "instances.json"))
    rng = random.Random(6)
    for n in range(RANDOM6_EXAMPLES):
        data = dual_stack(copy.deepcopy(BASE))
        for dummy in range(rng.randint(1, 4)):
            set_at(data, rng.choice(PATHS6), copy.deepcopy(_value6(rng)))
        yield "random6 %d" % n, data
    rng = random.Random(64)  # apart: the series above keeps its draws
    for n in range(WIDE6_EXAMPLES):  # a subnet wider than a /64: only its first /64 is served
        data = dual_stack(copy.deepcopy(BASE))
        data["racks"]["r02"]["instance_subnets6"] = [rng.choice(["2001:db8:0:200::/56", "2001:db8:0:200::/63"])]
        set_at(data, ("hostvars", "hv-r02-01", "ocs_instances", 0, "ip6"),
               "2001:db8:0:2%02x::%x" % (rng.choice([0, 0, 1, 0xff]), rng.randrange(2, 65536)))
        yield "wide6 %d" % n, data


def _mutated(mutate):
    data = copy.deepcopy(BASE)
    mutate(data)
    return data


def _from_file(text, name):
    data = copy.deepcopy(BASE)
    for hv in data["hostvars"].values():
        hv.pop("ocs_instances", None)
    data["instances_records"] = parse_instances(text, name, name.endswith(".csv"))
    return data


def _param_args(func):
    return next(m.args[1] for m in func.pytestmark if m.name == "parametrize")


def _generated(tmp):
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
    from ansible_collections.ocs.l3.tools import gen_fabric as gen
    gen.generate(os.path.join(tmp, "host"), 2, 2, 3, 0.5, seed=3)
    gen.generate(os.path.join(tmp, "gw"), 2, 2, 3, 0.5, seed=4, nat_mode="gateway", routing_mode="static")
    yield "generated host/bgp", load_fabric_input(os.path.join(tmp, "host"))
    yield "generated gateway/static", load_fabric_input(os.path.join(tmp, "gw"))


def corpus(tmp):
    """(label, fabric input) of every case, in a fixed order."""
    yield "base", copy.deepcopy(BASE)
    for rule in test_fabric_validation.RULES:
        yield "rule " + rule[0], _mutated(rule[1])
    for name in _param_args(test_fabric_validation.test_instance_names_cannot_inject):
        yield "name %r" % name, _mutated(lambda d: d["hostvars"]["hv-r01-02"]["ocs_instances"][0].update(name=name))
    for bgp, dummy in _param_args(test_frr.test_bgp_knob_validation):
        yield "bgp %r" % (bgp,), _mutated(lambda d: d["fabric"].update(bgp=bgp))
    for rule in test_bgp_sessions.RULES:
        yield "session " + rule[0], _mutated(rule[1])
    yield "session settings valid", _mutated(_sessions_valid)
    yield "file csv", _from_file("hypervisor,name,mac,ip,floating_ip\n"
                                 "hv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,\n"
                                 "hv-r09-01,vm-y,02:00:00:00:09:02,198.19.1.41,\n"
                                 "hv-r01-01,vm-z,02:00:00:00:09:03,198.19.2.41,\n"
                                 "hv-r01-01,vm-w\n", "instances.csv")
    yield "file json", _from_file('[{"hypervisor": "hv-r01-01", "name": "vm-x", "mac": "02:00:00:00:09:01", '
                                  '"ip": "198.19.1.40", "floating_ip": "203.0.113.140", "extra": 1}, 7, '
                                  '{"hypervisor": "spine1", "name": "vm-y"}]', "instances.json")
    exclusive = copy.deepcopy(BASE)
    exclusive["instances_records"] = parse_instances("[]")
    yield "file and host_vars", exclusive
    rng = random.Random(22)
    for n in range(RANDOM_EXAMPLES):
        data = copy.deepcopy(BASE)
        for dummy in range(rng.randint(1, 4)):
            set_at(data, rng.choice(PATHS), copy.deepcopy(_value(rng)))
        yield "random %d" % n, data
    for n in range(VALID_LEANING_EXAMPLES):
        yield "valid-leaning %d" % n, _valid_leaning(rng)
    yield from _generated(tmp)
    yield from _corpus6()


def _digest(fab):
    h = hashlib.sha256()
    for host, arts in sorted(fabric_artifacts(fab).items()):
        for art in arts:
            h.update(repr((host, art.path, art.kind, art.role, art.template, art.mode,
                           sorted((k, str(v)) for k, v in art.vars.items()))).encode())
    return h.hexdigest()[:16]


def _escape(text):
    """Control characters (and the backslash) escaped, so that the golden file stays text."""
    return "".join("\\x%02x" % ord(c) if ord(c) < 32 or ord(c) == 127 or c == "\\" else c for c in text)


def render():
    """The golden text: each case's label, then its problems or its digest."""
    out = []
    with tempfile.TemporaryDirectory(prefix="ocs-golden-") as tmp:
        for label, data in corpus(tmp):
            out.append("== %s" % label)
            try:
                fab = build(data)
            except FabricError as exc:
                out.extend("  " + _escape(problem) for problem in exc.problems)
            except Exception as exc:  # pylint: disable=broad-except  # a crash is behaviour too: keep it visible
                out.append("  CRASH %s: %s" % (type(exc).__name__, _escape(str(exc))))
            else:
                out.append("  valid, files %s" % _digest(fab))
    return "".join(line + "\n" for line in out)


def _crashes(text):
    """Each case whose input crashed the validator, with its CRASH line."""
    label, out = None, []
    for line in text.splitlines():
        if line.startswith("== "):
            label = line[3:]
        elif "CRASH" in line:
            out.append("%s: %s" % (label, line.strip()))
    return out


def test_messages_and_renders_match_the_golden_file():
    with open(GOLDEN, encoding="utf-8") as fh:
        golden = fh.read()
    text = render()
    # The validator never crashes: bad input gets a named problem. A crash is never golden.
    crashes = _crashes(text)
    assert not crashes, "the validator crashed on %d case(s):\n%s" % (len(crashes), "\n".join(crashes[:20]))
    assert not _crashes(golden), "%s records crashes as expected: %s" % (GOLDEN, _crashes(golden)[:5])
    if text != golden:
        import difflib
        diff = difflib.unified_diff(golden.splitlines(), text.splitlines(), "golden", "now", lineterm="", n=1)
        raise AssertionError("validation output differs from %s:\n%s" % (GOLDEN, "\n".join(list(diff)[:80])))


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: %s --update  (rewrites %s)" % (sys.argv[0], GOLDEN))
    golden_text = render()
    if _crashes(golden_text):
        raise SystemExit("not written: the validator crashed (fix it, do not record it):\n%s"
                         % "\n".join(_crashes(golden_text)))
    with open(GOLDEN, "w", encoding="utf-8") as fh:
        fh.write(golden_text)
