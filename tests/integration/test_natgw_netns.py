"""The scale-out NAT tier with real packets: two gateways, ECMP in both directions.

::

                     ext 192.0.2.10
                          |
      spine (edge side): 203.0.113.0/24 ECMP via gw1, gw2 (L4 hash); each public /32 via its gateway
          |                         |
        gw1 (gw-01, pub .251)     gw2 (gw-02, pub .252)     ocs_natgw table applied by ocs_nft_table
          |                         |
      fab (fabric side): default ECMP via gw1, gw2 (L4 hash); instance subnets local
          |                         |
       br1 198.19.1.1/24         br2 198.19.2.1/24
       vm-a .10 F .101           vm-d .13 (no floating IP)
       vm-b .11 F .102
       vm-c .12 F .103

The gateways' tables are the ones ``ocs_l3.natgw`` computes for a test fabric,
applied by the role's module. Each gateway also gets a test-only table that
records, per client port, which gateway carried the request and which one
carried the reply: with L4 ECMP hashing on both sides, some flows must enter
through one gateway and leave through the other.
"""

import copy
import json
import os
import subprocess
import sys
import uuid

import pytest

from helpers import NetnsLab, example_in_mode, render, run_module, sh


from fabric_data import BASE, gateway_mode  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.natgw import gateway_lines  # noqa: E402

HEADER = "#\n# Managed by ocs-l3 (Ansible)\n#\n"
EXT = "192.0.2.10"
PUB = {"gw1": "203.0.113.251", "gw2": "203.0.113.252"}
FIP = {"vm-a": "203.0.113.101", "vm-b": "203.0.113.102", "vm-c": "203.0.113.103"}
VMS = {"vm-a": ("br1", "198.19.1.10"), "vm-b": ("br1", "198.19.1.11"), "vm-c": ("br1", "198.19.1.12"),
       "vm-d": ("br2", "198.19.2.13")}
PORT = 7000

# Opens every connection at once (threads), prints one JSON line per phase:
# the greeting of each connection, then (after a line on stdin) whether each
# still echoes. Holds the connections open in between.
CLIENT = r"""
import json, signal, socket, sys, threading
signal.alarm(120)
targets = sys.argv[1:]
conns, out = [None] * len(targets), [None] * len(targets)
def connect(i, dst):
    try:
        s = socket.create_connection((dst, 7000), timeout=10)
        line = s.makefile().readline().split()
        conns[i], out[i] = s, [dst, s.getsockname()[1], s.getpeername()[0]] + line
    except OSError as exc:
        out[i] = [dst, None, None, "error", str(exc)]
threads = [threading.Thread(target=connect, args=(i, d)) for i, d in enumerate(targets)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(out), flush=True)
if sys.stdin.readline():
    echo = []
    for s in conns:
        try:
            s.sendall(b"ping\n")
            echo.append(s.recv(100) == b"ping\n")
        except (OSError, AttributeError):
            echo.append(False)
    print(json.dumps(echo), flush=True)
"""

TRACE = """table ip ocs_test {
    set req { type inet_service; flags dynamic; }
    set rep { type inet_service; flags dynamic; }
    chain trace {
        type filter hook forward priority 0; policy accept;
        ip saddr 192.0.2.10 tcp dport 7000 add @req { tcp sport }
        ip daddr 192.0.2.10 tcp sport 7000 add @rep { tcp dport }
    }
}
"""


def fabric_data(mode):
    """The test fabric with two gateways (gw-01, gw-02) and four instances, in ``mode``."""
    data = copy.deepcopy(BASE)
    data["groups"]["nat_gateways"] = ["gw-01", "gw-02"]
    hv = data["hostvars"]
    hv["gw-01"]["ocs_public_address"] = PUB["gw1"]
    hv["gw-02"] = {"ocs_address": "198.18.0.22", "ocs_public_address": PUB["gw2"],
                   "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.22/24", "peer": "198.18.0.1"}]}
    hv["hv-r01-01"]["ocs_instances"] = [
        {"name": name, "mac": "02:00:00:00:01:%02x" % i, "ip": VMS[name][1], "floating_ip": FIP[name]}
        for i, name in enumerate(("vm-a", "vm-b", "vm-c"), 10)]
    hv["hv-r01-02"]["ocs_instances"] = []
    if mode == "gateway":
        gateway_mode(data)  # after gw-02 exists: each gateway gets its border link
    else:
        data["fabric"]["nat_mode"] = mode
    hv["hv-r02-01"]["ocs_instances"] = [{"name": "vm-d", "mac": "02:00:00:00:02:0d", "ip": VMS["vm-d"][1]}]
    return data


class Lab(NetnsLab):
    def __init__(self, tmp):
        super().__init__(tmp, "ocs-g", {"cli.py": CLIENT})

    def build(self):
        for key in ("ext", "spine", "gw1", "gw2", "fab", *VMS):
            self.add(key)
        for key in ("spine", "gw1", "gw2", "fab"):
            self.x(key, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.x(key, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
        for key in ("gw1", "gw2"):  # what the role sets
            for conf in ("all", "default"):
                self.x(key, "sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % conf)
        self.link("spine", "s-ext", "192.0.2.1/24", "ext", "eth0", EXT + "/24")
        self.ip("ext", "route", "add", "203.0.113.0/24", "via", "192.0.2.1")  # nothing internal
        self.link("spine", "s-gw1", "198.18.10.1/30", "gw1", "up0", "198.18.10.2/30")
        self.link("spine", "s-gw2", "198.18.10.5/30", "gw2", "up0", "198.18.10.6/30")
        self.link("fab", "f-gw1", "198.18.20.1/30", "gw1", "dn0", "198.18.20.2/30")
        self.link("fab", "f-gw2", "198.18.20.5/30", "gw2", "dn0", "198.18.20.6/30")
        for br, addr in (("br1", "198.19.1.1/24"), ("br2", "198.19.2.1/24")):
            self.ip("fab", "link", "add", br, "type", "bridge")
            self.ip("fab", "addr", "add", addr, "dev", br)
            self.ip("fab", "link", "set", br, "up")
        for vm, (br, addr) in VMS.items():
            port = "p-" + vm
            self.link("fab", port, None, vm, "eth0", addr + "/24")
            self.ip("fab", "link", "set", port, "master", br)
            self.ip(vm, "route", "add", "default", "via", "198.19.%s.1" % br[-1])
        # What BGP gives each tier in gateway mode.
        self.ecmp()
        for key, up, down in (("gw1", "198.18.10.1", "198.18.20.1"), ("gw2", "198.18.10.5", "198.18.20.5")):
            self.ip(key, "addr", "add", PUB[key] + "/32", "dev", "lo")  # ocs_routes
            self.ip(key, "route", "add", "blackhole", "203.0.113.0/24", "metric", "250")  # staticd
            self.ip(key, "route", "add", "default", "via", up)  # toward the border
            self.ip(key, "route", "add", "198.19.0.0/16", "via", down)  # the racks
        for key, up, down in (("gw1", "198.18.10.2", "198.18.20.2"), ("gw2", "198.18.10.6", "198.18.20.6")):
            self.ip("spine", "route", "add", PUB[key], "via", up)  # only its owner announces it
            self.ip("fab", "route", "add", PUB[key], "via", down)
        for key in ("gw1", "gw2"):
            self.x(key, "nft", "-f", "-", input=TRACE)
        for vm in VMS:
            self.serve(vm, vm)
        self.serve("ext", "ext")

    def ecmp(self, gateways=("gw1", "gw2")):
        up = {"gw1": "198.18.10.2", "gw2": "198.18.10.6"}
        down = {"gw1": "198.18.20.2", "gw2": "198.18.20.6"}
        hops = lambda via: [w for g in gateways for w in ("nexthop", "via", via[g])]  # noqa: E731
        self.ip("spine", "route", "replace", "203.0.113.0/24", *hops(up))
        self.ip("fab", "route", "replace", "default", *hops(down))

    def serve(self, key, name):
        self.probe_server(key, PORT, "--name", name, alarm=300)

    def flows(self, key, targets):
        """Start a client holding one connection per target; return (process, greetings)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[key], sys.executable, str(self.tmp / "cli.py"),
                                 *targets], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc, json.loads(proc.stdout.readline())

    def call(self, key, dst):
        proc, out = self.flows(key, [dst])
        proc.stdin.close()
        proc.wait(timeout=30)
        return tuple(out[0][2:])

    def apply(self, key, text, check=False):
        path = self.tmp / ("%s-%s.nft" % (key, uuid.uuid4().hex[:6]))
        path.write_text(HEADER + text)
        sh("nft", "-c", "-f", str(path))
        return run_module(self.ns[key], "ocs.l3.ocs_nft_table", {"src": str(path)}, check=check)

    def reset_trace(self):
        for key in ("gw1", "gw2"):
            if key in self.ns:
                for name in ("req", "rep"):
                    self.x(key, "nft", "flush", "set", "ip", "ocs_test", name)

    def traced(self, key):
        out = {}
        for name in ("req", "rep"):
            doc = json.loads(self.x(key, "nft", "-j", "list", "set", "ip", "ocs_test", name).stdout)
            out[name] = {e for item in doc["nftables"] if "set" in item for e in item["set"].get("elem", [])}
        return out

    def counters(self, key):
        """{comment: packets} of the ocs_natgw rules."""
        doc = json.loads(self.x(key, "nft", "-j", "list", "table", "ip", "ocs_natgw").stdout)
        out = {}
        for item in doc["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment"):
                pk = sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
                out[rule["comment"]] = out.get(rule["comment"], 0) + pk
        return out


def text_for(mode, gw):
    fab = build(fabric_data(mode))
    return "".join(line + "\n" for line in gateway_lines(fab, fab.hosts[gw]))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, nftables)")
    lab = Lab(tmp_path_factory.mktemp("natgw"))
    try:
        lab.build()
        lab.first = {g: lab.apply(g, text_for("gateway", name)) for g, name in (("gw1", "gw-01"), ("gw2", "gw-02"))}
        yield lab
    finally:
        lab.close()


def test_apply_is_idempotent(lab):
    for key, name in (("gw1", "gw-01"), ("gw2", "gw-02")):
        assert lab.first[key]["changed"] and lab.first[key]["operation"] == "create", lab.first[key]
        again = lab.apply(key, text_for("gateway", name))
        assert not again["changed"] and again["operation"] == "none", again


def test_parallel_inbound_flows_cross_gateways(lab):
    targets = [FIP[vm] for vm in ("vm-a", "vm-b", "vm-c")] * 8  # 24 parallel flows
    lab.reset_trace()
    proc, out = lab.flows("ext", targets)
    try:
        by_fip = {v: k for k, v in FIP.items()}
        for dst, port, answered, name, seen in out:
            # The handshake completed, so the SYN-ACK came from the floating IP.
            assert (answered, name, seen) == (dst, by_fip[dst], EXT), out
        ports = {o[1] for o in out}
        tr = {g: lab.traced(g) for g in ("gw1", "gw2")}
        for g in ("gw1", "gw2"):
            assert tr[g]["req"] & ports and tr[g]["rep"] & ports, tr  # both gateways carried both directions
        crossed = (tr["gw1"]["req"] & tr["gw2"]["rep"]) | (tr["gw2"]["req"] & tr["gw1"]["rep"])
        assert len(crossed & ports) >= 1, tr
        c = {g: lab.counters(g) for g in ("gw1", "gw2")}
        for g in ("gw1", "gw2"):
            assert c[g]["inbound"] > 0 and c[g]["outbound"] > 0, c
        print("flows=%d crossed=%d counters=%s" % (len(out), len(crossed & ports), c))
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == [True] * len(out)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_outbound_floating_and_snat(lab):
    assert lab.call("vm-a", EXT) == (EXT, "ext", FIP["vm-a"])
    proc, out = lab.flows("vm-d", [EXT] * 12)
    proc.stdin.close()
    proc.wait(timeout=30)
    seen = {o[4] for o in out}
    assert seen <= set(PUB.values()) and all(o[3] == "ext" for o in out), out
    print("vm-d SNAT sources: %s" % sorted(seen))


def test_east_west_keeps_fixed_sources(lab):
    assert lab.call("vm-a", VMS["vm-d"][1]) == (VMS["vm-d"][1], "vm-d", VMS["vm-a"][1])
    assert lab.call("vm-d", VMS["vm-b"][1]) == (VMS["vm-b"][1], "vm-b", VMS["vm-d"][1])


def test_hairpin_replies_from_the_floating_ip(lab):
    assert lab.call("vm-a", FIP["vm-b"]) == (FIP["vm-b"], "vm-b", FIP["vm-a"])  # both floating
    assert lab.call("vm-a", FIP["vm-a"]) == (FIP["vm-a"], "vm-a", FIP["vm-a"])  # its own
    for _ in range(4):  # no floating IP: stateful, via one gateway's public address
        answered, name, seen = lab.call("vm-d", FIP["vm-c"])
        assert (answered, name) == (FIP["vm-c"], "vm-c") and seen in PUB.values()


def test_map_change_is_one_element(lab):
    data = fabric_data("gateway")
    data["hostvars"]["hv-r01-01"]["ocs_instances"][2]["floating_ip"] = "203.0.113.104"
    fab = build(data)
    text = "".join(line + "\n" for line in gateway_lines(fab, fab.hosts["gw-01"]))
    check = lab.apply("gw1", text, check=True)
    assert check["changed"] and check["operation"] == "elements", check
    assert "203.0.113.104" in check["diff"]["after"]
    res = lab.apply("gw1", text)
    assert (res["operation"], res["elements_added"], res["elements_removed"]) == ("elements", 2, 2), res
    assert lab.counters("gw1")["inbound"] > 0  # rules (and their counters) stayed
    res = lab.apply("gw1", text_for("gateway", "gw-01"))
    assert res["operation"] == "elements"


def test_mode_switch_removes_and_restores_the_table(lab):
    res = lab.apply("gw2", text_for("host", "gw-02"))
    assert res["changed"] and res["operation"] == "delete", res
    assert lab.x("gw2", "nft", "list", "table", "ip", "ocs_natgw", check=False).returncode != 0
    assert not lab.apply("gw2", text_for("host", "gw-02"))["changed"]
    res = lab.apply("gw2", text_for("gateway", "gw-02"))
    assert res["operation"] == "create", res
    assert lab.call("ext", FIP["vm-a"]) == (FIP["vm-a"], "vm-a", EXT)


def _far(lab):
    """``far`` (198.51.100.2, MTU 1500) behind ext, and the spine's link to ext
    narrowed to MTU 1280: a hop beyond the border, smaller than the instances'
    MTU and than every link of the gateways (so their route MTU cannot help)."""
    if "far" not in lab.ns:
        lab.add("far")
        lab.link("ext", "e-far", "198.51.100.1/24", "far", "eth0", "198.51.100.2/24")
        lab.x("ext", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        lab.ip("far", "route", "add", "default", "via", "198.51.100.1")
        lab.ip("spine", "route", "add", "198.51.100.0/24", "via", EXT)
        lab.serve("far", "far")
    lab.ip("spine", "link", "set", "s-ext", "mtu", "1280")
    lab.ip("ext", "link", "set", "eth0", "mtu", "1280")


def _bulk(lab, vm, size=300000):
    """Send ``size`` bytes to far's echo server while reading the echo back (gives up after 8 s: a black hole)."""
    return json.loads(lab.run_probe(vm, "bulk", "198.51.100.2", PORT, size, check=True, timeout=30).stdout)


def test_pmtud_floating_ip_through_a_narrow_hop(lab):
    """A TCP transfer larger than the MTU from an instance with a floating IP to a host
    behind a 1280-byte hop beyond the border. The tier cannot translate the hop's
    "fragmentation needed" (its quote holds the floating IP), so it clamps the MSS to
    min(mtu, edge_mtu) - 40. With edge_mtu 1280 the transfer completes; with edge_mtu
    1500 (the clamp no smaller than the gateway's own links) it stalls. SNAT flows
    (vm-d) get the ICMP error translated by conntrack: they complete either way."""
    size = 300000
    _far(lab)
    try:
        results = {}
        for edge_mtu in (1500, 1280):
            for key, name in (("gw1", "gw-01"), ("gw2", "gw-02")):
                data = fabric_data("gateway")
                data["fabric"]["edge_mtu"] = edge_mtu
                fab = build(data)
                lab.apply(key, "".join(line + "\n" for line in gateway_lines(fab, fab.hosts[name])))
            for vm in ("vm-a", "vm-d"):
                lab.ip(vm, "route", "flush", "cache")
                results[(edge_mtu, vm)] = _bulk(lab, vm, size)
        print("transfers of %d bytes: %s" % (size, results))
        # the negative control: no protection that fits the hop, the floating-IP flow stalls
        assert results[(1500, "vm-a")]["greeting"] == ["far", FIP["vm-a"]], results
        assert results[(1500, "vm-a")]["echoed"] < size, results
        # the fix, and SNAT (stateful: conntrack translates the quote) in both cases
        assert results[(1280, "vm-a")]["echoed"] == size, results
        assert results[(1500, "vm-d")]["echoed"] == size and results[(1280, "vm-d")]["echoed"] == size, results
        clamped = sum(lab.counters(g)["mss-clamp"] for g in ("gw1", "gw2"))
        assert clamped >= 2, clamped  # the SYN and the SYN-ACK of each flow at least
    finally:
        lab.ip("spine", "link", "set", "s-ext", "mtu", "1500")
        lab.ip("ext", "link", "set", "eth0", "mtu", "1500")
        for key, name in (("gw1", "gw-01"), ("gw2", "gw-02")):
            lab.apply(key, text_for("gateway", name))


# Listens for ICMP port unreachables and prints, per error, (outer source, quoted destination).
ICMP_SNIFF = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
print("ready", flush=True)
end, seen = time.monotonic() + float(sys.argv[1]), []
while time.monotonic() < end:
    try:
        pkt, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 15) * 4
    if pkt[ihl] == 3 and pkt[ihl + 1] == 3:
        inner = pkt[ihl + 8:]
        seen.append([peer[0], socket.inet_ntoa(inner[16:20])])
print(json.dumps(seen), flush=True)
"""


def test_port_unreachable_from_a_floating_ip_leaks_no_fixed_ip(lab):
    """ext sends UDP to a closed port of vm-a's floating IP; vm-a answers with a port
    unreachable that quotes its fixed IP. The tier drops it (counted
    "icmp-error-fixed"): ext sees none. Without that rule ext sees the fixed IP."""
    (lab.tmp / "sniff.py").write_text(ICMP_SNIFF)

    def probe():
        proc = subprocess.Popen(["ip", "netns", "exec", lab.ns["ext"], sys.executable,
                                 str(lab.tmp / "sniff.py"), "3"], stdout=subprocess.PIPE, text=True)
        lab.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        for port in range(33434, 33444):  # ECMP: some reach each gateway
            lab.x("ext", sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                  ".sendto(b'x', (%r, %d))" % (FIP["vm-a"], port))
        return json.loads(proc.stdout.readline())

    before = sum(lab.counters(g)["icmp-error-fixed"] for g in ("gw1", "gw2"))
    assert probe() == []
    dropped = sum(lab.counters(g)["icmp-error-fixed"] for g in ("gw1", "gw2")) - before
    assert dropped >= 1, dropped  # vm-a rate-limits its ICMP errors (icmp_ratelimit): not all 10
    try:  # the negative control: without the rule, the quote carries vm-a's fixed IP to ext
        for key in ("gw1", "gw2"):
            doc = json.loads(lab.x(key, "nft", "-j", "-a", "list", "chain", "ip", "ocs_natgw", "raw_prerouting").stdout)
            handle = [i["rule"]["handle"] for i in doc["nftables"]
                      if i.get("rule", {}).get("comment") == "icmp-error-fixed"][0]
            lab.x(key, "nft", "delete", "rule", "ip", "ocs_natgw", "raw_prerouting", "handle", str(handle))
        seen = probe()
        assert seen and all(quoted == VMS["vm-a"][1] for dummy, quoted in seen), seen
        print("without the rule ext saw %d port unreachables quoting %s" % (len(seen), VMS["vm-a"][1]))
    finally:
        for key, name in (("gw1", "gw-01"), ("gw2", "gw-02")):
            lab.apply(key, text_for("gateway", name))


def test_one_gateway_stops(lab):
    """Long-lived flows through either gateway survive gw2's death; new ones work."""
    targets = [FIP[vm] for vm in ("vm-a", "vm-b", "vm-c")] * 8
    lab.reset_trace()
    proc, out = lab.flows("ext", targets)
    try:
        assert all(o[3] != "error" for o in out), out
        ports = {o[1] for o in out}
        tr = lab.traced("gw2")
        via_gw2 = (tr["req"] | tr["rep"]) & ports
        assert via_gw2, tr
        sh("ip", "netns", "del", lab.ns.pop("gw2"))  # the gateway is gone ...
        lab.ecmp(("gw1",))  # ... and BGP withdraws its routes
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == [True] * len(out)  # stateless: gw1 carries them on
        print("flows=%d that used gw2 and survived=%d" % (len(out), len(via_gw2)))
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    for dst in FIP.values():
        assert lab.call("ext", dst)[0] == dst
    assert lab.call("vm-d", EXT)[2] == PUB["gw1"]


def test_rendered_example_passes_nft_check(tmp_path):
    """The example inventory in gateway mode: ocs_render prints each gateway's table with the role's
    template, and nft accepts it; in host mode the file declares no table."""
    for mode in ("gateway", "host"):
        inv = example_in_mode(tmp_path / ("inv-" + mode), mode)
        build_dir = tmp_path / ("build-" + mode)
        proc = render(str(build_dir), str(inv))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for gw in ("gw-01", "gw-02"):
            nft = build_dir / gw / "etc" / "ocs-l3" / "natgw.nft"
            assert nft.read_text().startswith("#\n# Managed by ocs-l3")
            sh("nft", "-c", "-f", str(nft))
            assert ("table ip ocs_natgw {" in nft.read_text()) == (mode == "gateway")
