"""The host agent without root: netlink bytes built by hand, a fake kernel, a fake clock.

The fake kernel (``FakeKernel``) answers the ``ip -j`` reads from its own
tables and applies the agent's ``ip -force -batch`` lines to them, so a test
sees what the agent would leave in a real kernel, not only which commands ran.
"""

import collections
import copy
import errno
import json
import logging
import os
import re
import socket
import struct

import pytest

from ansible_collections.ocs.l3.plugins.module_utils import constants, host_agent
from ansible_collections.ocs.l3.plugins.module_utils.host_agent import Agent, Link, NetlinkError, parse
from ansible_collections.ocs.l3.plugins.module_utils.host_state import Paths

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR = 16, 17, 20
IFF_UP, IFF_BROADCAST, IFF_LOWER_UP = 0x1, 0x2, 0x10000


# --- netlink messages, by hand (struct layouts of linux/netlink.h, rtnetlink.h) --

def attr(atype, payload):
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nlmsg(mtype, body, flags=0, seq=0):
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 0) + body


def link_msg(index, name, up, mtype=RTM_NEWLINK, extra=b""):
    flags = (IFF_UP | IFF_LOWER_UP if up else 0) | IFF_BROADCAST
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0xFFFFFFFF)
    body += attr(4, struct.pack("=I", 1500))  # IFLA_MTU first: the name is not the first attribute
    if name is not None:
        body += attr(3, name.encode() + b"\0")  # IFLA_IFNAME, NUL-terminated
    return nlmsg(mtype, body + extra)


def test_parse_new_and_del_link_messages():
    data = link_msg(7, "tap-a", True) + link_msg(8, "tap-b", False) + link_msg(7, "tap-a", True, RTM_DELLINK)
    links, done = parse(data)
    assert links == [Link("new", 7, "tap-a", True), Link("new", 8, "tap-b", False), Link("del", 7, "tap-a", True)]
    assert not done


def test_parse_skips_other_messages_and_sees_the_end_of_a_dump():
    addr = nlmsg(RTM_NEWADDR, struct.pack("=BBBBI", 2, 32, 0, 0, 7) + attr(1, bytes([10, 0, 0, 1])))
    done = nlmsg(3, struct.pack("=i", 0))
    links, finished = parse(addr + link_msg(9, "eth0", True) + done)
    assert links == [Link("new", 9, "eth0", True)] and finished


def test_parse_name_padding_nested_flag_and_missing_name():
    # a 3-character name: 4 + 4 bytes, no padding; NLA_F_NESTED set on an unrelated attribute
    nested = struct.pack("=HH", 8, 0x8000 | 18) + struct.pack("=I", 0)
    links, dummy = parse(link_msg(3, "abc", True, extra=nested) + link_msg(4, None, True))
    assert links == [Link("new", 3, "abc", True), Link("new", 4, None, True)]


@pytest.mark.parametrize("data, message", [
    (link_msg(7, "tap-a", True)[:-3], "truncated netlink message at offset 0"),
    (nlmsg(RTM_NEWLINK, b"\0" * 8), "shorter than ifinfomsg"),
    (nlmsg(RTM_NEWLINK, struct.pack("=BxHiII", 0, 1, 5, 1, 0) + struct.pack("=HH", 40, 3) + b"tap\0"),
     "attribute of length 40 at offset 16 overruns"),
    (nlmsg(2, struct.pack("=i", -errno.EPERM) + b"\0" * 16), "netlink error: Operation not permitted"),
])
def test_parse_refuses_broken_messages(data, message):
    with pytest.raises(NetlinkError, match=message):
        parse(data)


def test_dump_request_is_a_getlink_dump():
    req = host_agent.dump_request(5)
    length, mtype, flags, seq, dummy = struct.unpack_from("=IHHII", req)
    assert (length, mtype, flags, seq) == (32, 18, 0x301, 5) and len(req) == 32


# --- fakes -----------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Idle(Exception):
    """The fake source has nothing more: a blocking recv would wait forever."""


class Source:
    """Datagrams at given times; recv(timeout) moves the fake clock like a blocking socket would."""

    def __init__(self, clock, links=()):
        self.clock, self.links, self.queue, self.dumps = clock, list(links), collections.deque(), 0

    def push(self, data, at=None):
        self.queue.append((self.clock.now if at is None else at, data))

    def recv(self, timeout=None):
        if not self.queue or (timeout is not None and self.queue[0][0] > self.clock.now + timeout):
            if timeout is None:
                raise Idle()
            self.clock.now += timeout
            return None
        at, data = self.queue.popleft()
        self.clock.now = max(self.clock.now, at)
        if isinstance(data, Exception):
            raise data
        return data

    def dump(self):
        self.dumps += 1
        return list(self.links)


class FakeKernel:
    """Routes and addresses of one namespace; answers ip -j reads, applies ip -batch lines."""

    def __init__(self, fail_dev=None):
        self.routes, self.addrs, self.calls, self.batches = {}, {}, [], []
        self.saves = {}
        self.fail_dev = fail_dev

    def __call__(self, argv, data=None):
        self.calls.append(list(argv))
        if argv[:2] == ["ip", "-j"]:
            args = argv[2:]
            family = {"-4": "inet", "-6": "inet6"}.get(args[0])
            if args[1:2] == ["route"]:
                entries = [e for e in self.routes.values() if (":" in e["dst"]) == (family == "inet6")]
                if "proto" in args:
                    entries = [e for e in entries if e["protocol"] == args[args.index("proto") + 1]]
                return 0, json.dumps(entries), ""
            if args[1:2] == ["addr"]:
                return 0, json.dumps([{"ifname": k, "addr_info": [a for a in v if a["family"] == family]}
                                      for k, v in self.addrs.items()]), ""
            raise AssertionError(argv)
        if argv == ["ip", "-force", "-batch", "-"]:
            self.batches.append(data.splitlines())
            failed = False
            for line in data.splitlines():
                p = line.split()
                dev = p[p.index("dev") + 1]
                if dev == self.fail_dev:
                    failed = True
                    continue
                if p[0] == "address":
                    ip, plen = p[2].split("/")
                    self.addrs.setdefault(dev, []).append(
                        {"family": "inet6" if ":" in ip else "inet", "local": ip, "prefixlen": int(plen),
                         "noprefixroute": "noprefixroute" in p, "nodad": "nodad" in p})
                elif ":" in p[2]:  # IPv6: the kernel prints a /128 without its length, its metric always
                    self.routes[p[2]] = {"dst": p[2].replace("/128", ""), "dev": dev, "protocol": p[6],
                                         "metric": int(p[8])}
                else:
                    self.routes[p[2]] = {"dst": p[2].replace("/32", ""), "dev": dev, "protocol": p[5],
                                         "scope": "link"}
            return (1, "", "Error: Nexthop device is not up.") if failed else (0, "", "")
        if argv[0].endswith("tables-save"):
            return 0, self.saves.get((argv[0], argv[2]), ""), ""
        if argv[0].endswith("tables-restore"):
            self.saves["restored"] = data
            return 0, "", ""
        raise AssertionError(argv)

    def drop_dev(self, dev):
        """What the kernel does to a tap's routes when the tap goes down (or is deleted)."""
        self.routes = {k: v for k, v in self.routes.items() if v["dev"] != dev}


class Sysctl:
    def __init__(self, read_only=False, every="0", values=None):
        self.values, self.read_only = {"net/ipv4/conf/all/proxy_arp": every}, read_only
        self.values.update(values or {})
        self.writes = []

    def read(self, key):
        return self.values.get(key, "0")

    def write(self, key, value):
        if self.read_only:
            raise OSError(errno.EROFS, "Read-only file system")
        self.values[key] = value
        self.writes.append(key)


ROUTES = """# Managed by ocs-l3
address replace 198.19.1.1/24 dev tap-a noprefixroute
address replace 198.19.1.1/24 dev tap-b noprefixroute
address replace 203.0.113.11/32 dev lo
route replace blackhole 198.19.9.0/24 proto 211
route replace 198.19.1.10/32 dev tap-a proto 211 scope link
route replace 198.19.1.11/32 dev tap-b proto 211 scope link
route replace 203.0.113.101/32 dev tap-a proto 211 scope link
route replace default via 198.18.1.1 proto 211
"""


def install(state, routes=ROUTES, prefix="tap", replace=True, conf=""):
    """Write the state files the way Ansible's copy does (a new file renamed over the old);
    ``conf``: more agent.conf lines."""
    state.mkdir(exist_ok=True)
    for name, text in (("routes.batch", routes),
                       ("agent.conf", "# managed\ninstance_ifname_prefix=%s\n%s" % (prefix, conf))):
        if text is None:
            continue
        tmp = state / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, state / name)


@pytest.fixture
def lab(tmp_path):
    clock = Clock()
    install(tmp_path / "state")

    def make(links=(), kernel=None, sysctl=None, **kw):
        source = Source(clock, links)
        agent = Agent(source, run=kernel or FakeKernel(), sysctl=sysctl or Sysctl(), clock=clock,
                      paths=Paths(str(tmp_path / "state")), **kw)
        return agent, source, agent.run
    make.clock, make.state = clock, tmp_path / "state"
    return make


def drain(agent, source):
    """Run batches until every queued datagram is taken; the last batch's summary (None: none served)."""
    out = None
    while source.queue:
        out = agent.step() or out
    return out


def batch_calls(kernel):
    return [c for c in kernel.calls if c == ["ip", "-force", "-batch", "-"]]


# --- per-tap selection ------------------------------------------------------

def test_each_tap_gets_only_its_own_lines(lab):
    agent, dummy, dummy = lab(check_jumps=False)
    agent.load_state()
    assert agent.state.prefix == "tap"
    assert agent.state.taps == {
        "tap-a": ["address replace 198.19.1.1/24 dev tap-a noprefixroute",
                  "route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
                  "route replace 203.0.113.101/32 dev tap-a proto 211 scope link"],  # floating /32 too
        "tap-b": ["address replace 198.19.1.1/24 dev tap-b noprefixroute",
                  "route replace 198.19.1.11/32 dev tap-b proto 211 scope link"],
    }  # lo, blackholes, the default: not a tap's


def test_a_tap_that_comes_up_is_served(lab, caplog):
    caplog.set_level(logging.INFO)
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a"] and summary["lines"] == 3
    assert set(kernel.routes) == {"198.19.1.10/32", "203.0.113.101/32"}
    assert kernel.addrs["tap-a"][0]["noprefixroute"]
    assert agent.sysctl.values["net/ipv4/conf/tap-a/proxy_arp"] == "1"
    assert "served tap-a: 3 addresses/routes, proxy_arp on" in caplog.messages


def test_down_deletes_routes_up_brings_them_back_other_events_do_nothing(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    source.push(link_msg(5, "tap-a", True))  # another NEWLINK while up (carrier, mtu): nothing to do
    assert agent.step() is None
    assert len(batch_calls(kernel)) == 1
    kernel.drop_dev("tap-a")
    source.push(link_msg(5, "tap-a", False))
    source.push(link_msg(5, "tap-a", True))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a"] and summary["lines"] == 2  # the address stayed on the tap
    assert set(kernel.routes) == {"198.19.1.10/32", "203.0.113.101/32"}


def test_deleted_and_recreated_tap_is_served_again(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    kernel.drop_dev("tap-a")
    kernel.addrs.pop("tap-a")
    source.push(link_msg(5, "tap-a", False, RTM_DELLINK))
    source.push(link_msg(6, "tap-a", False))  # recreated: appears down, then comes up
    assert drain(agent, source) is None
    source.push(link_msg(6, "tap-a", True))
    assert drain(agent, source)["served"] == ["tap-a"]
    assert len(kernel.routes) == 2 and len(kernel.addrs["tap-a"]) == 1


def test_a_tap_gone_before_its_batch_is_skipped(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    source.push(link_msg(5, "tap-a", True, RTM_DELLINK))
    drain(agent, source)
    assert batch_calls(kernel) == []


# --- batching -----------------------------------------------------------------

def many_taps(n):
    lines = []
    for i in range(n):
        lines.append("address replace 198.19.1.1/24 dev tap%d noprefixroute" % i)
        lines.append("route replace 198.19.%d.%d/32 dev tap%d proto 211 scope link" % (2 + i // 250, 1 + i % 250, i))
    return "\n".join(lines) + "\n"


def test_100_taps_within_the_window_cost_one_ip_call(lab):
    install(lab.state, many_taps(150))
    agent, source, kernel = lab(check_jumps=False, window=0.1)
    agent.start()
    t0 = lab.clock.now
    for i in range(100):
        source.push(link_msg(100 + i, "tap%d" % i, True), at=t0 + i * 0.0009)  # all within 90 ms
    for i in range(100, 110):
        source.push(link_msg(100 + i, "tap%d" % i, True), at=t0 + 0.5)  # later: the next batch
    first = agent.step()
    assert len(first["served"]) == 100 and len(batch_calls(kernel)) == 1
    assert len(kernel.batches[0]) == 200
    assert lab.clock.now == pytest.approx(t0 + 0.1)  # the window counts from the first event
    second = agent.step()
    assert len(second["served"]) == 10 and len(batch_calls(kernel)) == 2
    assert len(kernel.routes) == 110


def test_a_window_does_not_wait_for_unrelated_events(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(2, "eth0", False))  # not a link coming up: no batch, no waiting
    t0 = lab.clock.now
    assert agent.step() is None and lab.clock.now == t0


# --- unknown taps, corrupt state, reloads ----------------------------------------

def test_unknown_tap_is_logged_and_left_alone(lab, caplog):
    caplog.set_level(logging.INFO)
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(9, "tap-zzz", True))
    source.push(link_msg(10, "eth7", True))  # not an instance interface at all: silent
    summary = drain(agent, source)
    assert summary["unknown"] == ["tap-zzz"]
    assert batch_calls(kernel) == [] and "net/ipv4/conf/tap-zzz/proxy_arp" not in agent.sysctl.values
    assert [m for m in caplog.messages if "tap-zzz" in m] == [
        "unknown tap tap-zzz: left alone (no line names it in %s)" % (lab.state / "routes.batch")]
    assert not any("eth7" in m for m in caplog.messages)


def test_corrupt_state_changes_nothing_and_names_file_and_line(lab, caplog):
    install(lab.state, ROUTES.replace("route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
                                      "route replace 198.19.1.10/32 dev tap-a proto 211 scope link; rm -rf /"))
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    assert kernel.calls == [] and "net/ipv4/conf/tap-a/proxy_arp" not in agent.sysctl.values
    path = str(lab.state / "routes.batch")
    assert any(m.startswith("error: %s:6: not an address or route line" % path) and "changing nothing" in m
               for m in caplog.messages), caplog.messages
    assert any("not served: tap-a" in m for m in caplog.messages)


@pytest.mark.parametrize("routes, config, message", [
    (ROUTES, None, "cannot read {state}/agent.conf"),
    (None, "instance_ifname_prefix=tap\n", "cannot read {state}/routes.batch"),
    (ROUTES, "instance_ifname_prefix=TAP+\n", "{state}/agent.conf:1: instance_ifname_prefix 'TAP+' is not"),
    (ROUTES, "prefix=tap\n", "{state}/agent.conf:1: expected KEY=VALUE, KEY one of instance_ifname_prefix, ra_mtu"),
    (ROUTES, "# nothing\n", "{state}/agent.conf: instance_ifname_prefix missing"),
])
def test_missing_or_corrupt_files_are_named(tmp_path, caplog, routes, config, message):
    state = tmp_path / "s"
    state.mkdir()
    if routes is not None:
        (state / "routes.batch").write_text(routes)
    if config is not None:
        (state / "agent.conf").write_text(config)
    agent = Agent(Source(Clock()), run=FakeKernel(), sysctl=Sysctl(), clock=Clock(), paths=Paths(str(state)))
    agent.load_state()
    assert agent.state is None
    assert any(m.startswith("error: " + message.format(state=state)) for m in caplog.messages), caplog.messages


def test_a_new_version_of_the_state_is_used_by_the_next_batch(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    install(lab.state, ROUTES.replace("198.19.1.10/32 dev tap-a", "198.19.1.20/32 dev tap-a")
            .replace("dev tap-b", "dev tap-c"))
    kernel.drop_dev("tap-a")
    source.push(link_msg(5, "tap-a", False))
    source.push(link_msg(5, "tap-a", True))
    source.push(link_msg(6, "tap-c", True))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a", "tap-c"]
    assert "198.19.1.20/32" in kernel.routes and "198.19.1.11/32" in kernel.routes
    assert kernel.routes["198.19.1.11/32"]["dev"] == "tap-c"


def test_the_state_is_read_only_when_it_changed(lab, monkeypatch):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    reads = []
    real = host_agent.read_routes
    monkeypatch.setattr(host_agent, "read_routes", lambda path: reads.append(path) or real(path))
    for i in range(3):
        source.push(link_msg(5, "tap-a", i % 2 == 0))
        agent.step()
    assert reads == []
    install(lab.state)
    source.push(link_msg(7, "tap-b", True))
    drain(agent, source)
    assert len(reads) == 1


def test_taps_that_came_up_while_the_state_was_unusable_are_served_once_it_is_fixed(lab):
    install(lab.state, "garbage\n")
    agent, source, kernel = lab([Link("new", 5, "tap-a", True)], check_jumps=False)
    agent.start()
    source.push(link_msg(6, "tap-b", True))
    drain(agent, source)
    assert kernel.calls == []
    install(lab.state)
    agent.source.links = [Link("new", 5, "tap-a", True), Link("new", 6, "tap-b", True)]
    source.push(link_msg(9, "eth1", True))  # any event makes the next batch look at the state
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a", "tap-b"]


# --- start, overflow, failures, proxy ARP, jumps --------------------------------

def test_start_serves_every_up_tap(lab):
    links = [Link("new", 1, "lo", True), Link("new", 5, "tap-a", True), Link("new", 6, "tap-b", False),
             Link("new", 7, "tap-zzz", True)]
    agent, source, kernel = lab(links, check_jumps=False)
    summary = agent.start()
    assert summary["served"] == ["tap-a"] and summary["unknown"] == ["tap-zzz"]
    again = lab(links, kernel=kernel, check_jumps=False)[0].start()  # a restarted agent: all in place
    assert again["served"] == [] and again["in_place"] == ["tap-a"] and len(batch_calls(kernel)) == 1


def test_lost_events_make_the_agent_read_every_link(lab, caplog):
    agent, source, kernel = lab([Link("new", 5, "tap-a", False)], check_jumps=False)
    agent.start()
    source.links = [Link("new", 5, "tap-a", True), Link("new", 6, "tap-b", True)]
    source.push(OSError(errno.ENOBUFS, "No buffer space available"))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a", "tap-b"] and source.dumps == 2
    assert any("events were lost" in m for m in caplog.messages)


def test_a_failed_line_is_reported_per_tap(lab, caplog):
    agent, source, kernel = lab(kernel=FakeKernel(fail_dev="tap-b"), check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    source.push(link_msg(6, "tap-b", True))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a"] and summary["failed"] == ["tap-b"]
    assert "error: tap tap-b: 2 of 2 addresses/routes not applied" in caplog.messages


@pytest.mark.parametrize("every, logged", [("0", True), ("1", False)])
def test_read_only_proc_sys_is_checked_not_fatal(lab, caplog, every, logged):
    agent, source, kernel = lab(sysctl=Sysctl(read_only=True, every=every), check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    assert drain(agent, source)["served"] == ["tap-a"]  # routes served all the same
    errors = [m for m in caplog.messages if "proxy_arp of tap-a is off and cannot be set (Read-only" in m]
    assert bool(errors) == logged


FILTER_SAVE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:{inp} - [0:0]
:{fwd} - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -j {fwd}
-A {inp} -i tap+ -j DROP
COMMIT
""".format(inp=constants.FILTER_INPUT, fwd=constants.FILTER_FORWARD)


def test_jumps_into_our_chains_are_put_back(lab, caplog):
    (lab.state / "iptables-filter.rules").write_text("# present: the host has the filter part\n")
    kernel = FakeKernel()
    kernel.saves[("iptables-save", "filter")] = FILTER_SAVE
    agent, source, dummy = lab(kernel=kernel)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    # INPUT's jump is missing: inserted on top; FORWARD's is there, first: untouched
    assert kernel.saves["restored"] == "*filter\n-I INPUT 1 -j %s\nCOMMIT\n" % constants.FILTER_INPUT
    assert any(m.startswith("warning: jumps into our chains restored (ipv4)") for m in caplog.messages)
    # no nat file, no ip6tables file: their tables are not read
    assert not [c for c in kernel.calls if c[0] == "ip6tables-save" or c[-1] == "nat"]


def test_a_missing_chain_is_reported_not_jumped_to(lab, caplog):
    (lab.state / "iptables-filter.rules").write_text("#\n")
    kernel = FakeKernel()
    kernel.saves[("iptables-save", "filter")] = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"
    agent, source, dummy = lab(kernel=kernel)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    assert "restored" not in kernel.saves
    assert any("chain %s is missing" % constants.FILTER_INPUT in m for m in caplog.messages)


def test_agent_config_is_rendered_for_hypervisors_and_read_back(data):
    from ansible_collections.ocs.l3.plugins.module_utils import agent
    from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
    from ansible_collections.ocs.l3.plugins.module_utils.host_state import parse_config

    data["fabric"]["instance_ifname_prefix"] = "vnet"
    for hv in data["hostvars"].values():
        for inst in hv.get("ocs_instances", []):
            inst.pop("interface", None)
    fab = build(data)
    assert agent.artifacts(fab, fab.hosts["tor-r01"]) == [] and agent.artifacts(fab, fab.hosts["gw-01"]) == []
    art, = agent.artifacts(fab, fab.hosts["hv-r01-01"])
    assert art.path == constants.AGENT_CONFIG_PATH and art.role == "ocs_agent"
    text = "#\n# Managed by ocs-l3\n#\n" + art.vars["_ocs_agent_config_text"]
    assert parse_config(text, "agent.conf") == {"instance_ifname_prefix": "vnet"}


# --- IPv6 (a dual-stack fabric's instance taps) ----------------------------------

ROUTES6 = ROUTES + """address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute
address replace fe80::1/64 dev tap-a nodad
route replace 2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024
route replace blackhole 2001:db8:0:9::/64 proto 211 metric 1024
"""
V6KEYS = ["net/ipv6/conf/tap-a/%s" % k for k in ("accept_ra", "autoconf", "disable_ipv6")]


def test_a_taps_ipv6_lines_are_served_with_its_ipv4_ones(lab, caplog):
    caplog.set_level(logging.INFO)
    install(lab.state, ROUTES6)
    sysctl = Sysctl(values={V6KEYS[0]: "1", V6KEYS[1]: "1", V6KEYS[2]: "1"})
    agent, source, kernel = lab(check_jumps=False, sysctl=sysctl)
    agent.start()
    assert agent.state.taps["tap-a"][-3:] == [
        "address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute",
        "address replace fe80::1/64 dev tap-a nodad",
        "route replace 2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024"]  # the blackhole is no tap's
    source.push(link_msg(5, "tap-a", True))
    summary = drain(agent, source)
    assert summary["served"] == ["tap-a"] and summary["lines"] == 6
    assert kernel.routes["2001:db8:0:1::a/128"] == {"dst": "2001:db8:0:1::a", "dev": "tap-a", "protocol": "211",
                                                    "metric": 1024}
    assert {(a["local"], a["nodad"]) for a in kernel.addrs["tap-a"] if a["family"] == "inet6"} == {
        ("2001:db8:0:1::1", True), ("fe80::1", True)}
    # RA off first, IPv6 on last: all three before the batch (an address needs IPv6 on)
    assert sysctl.writes[:3] == V6KEYS and all(sysctl.values[k] == "0" for k in V6KEYS)
    assert "tap-a: net.ipv6.conf.tap-a.accept_ra=0, net.ipv6.conf.tap-a.autoconf=0, " \
           "net.ipv6.conf.tap-a.disable_ipv6=0" in caplog.messages
    # down flushes IPv6 addresses as well as routes: up brings all of them back, nothing twice
    kernel.drop_dev("tap-a")
    kernel.addrs["tap-a"] = [a for a in kernel.addrs["tap-a"] if a["family"] == "inet"]
    source.push(link_msg(5, "tap-a", False))
    source.push(link_msg(5, "tap-a", True))
    assert drain(agent, source)["lines"] == 5  # the IPv4 address stayed
    assert len(sysctl.writes) == 4  # proxy_arp once, the IPv6 settings once: already right the second time


def test_an_ipv4_only_file_never_reads_ipv6_nor_touches_its_settings(lab):
    agent, source, kernel = lab(check_jumps=False)
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    drain(agent, source)
    assert not [c for c in kernel.calls if "-6" in c]
    assert agent.sysctl.writes == ["net/ipv4/conf/tap-a/proxy_arp"]


def test_ipv6_settings_that_cannot_be_set_are_logged_and_the_tap_still_served(lab, caplog):
    install(lab.state, ROUTES6)
    agent, source, kernel = lab(check_jumps=False, sysctl=Sysctl(read_only=True, values={V6KEYS[0]: "1"}))
    agent.start()
    source.push(link_msg(5, "tap-a", True))
    assert drain(agent, source)["served"] == ["tap-a"]
    assert any(m.startswith("error: net.ipv6.conf.tap-a.accept_ra is not 0 and cannot be set (Read-only")
               for m in caplog.messages)


# --- router advertisements (dual-stack hypervisors) ---------------------------------

RA_CONF = "ra_mtu=1450\nra_dns_lifetime=43200\nra_rdnss=2001:db8:ffff::53,2001:db8::35\nra_dnssl=cloud.ocs.example\n"
ROUTES6B = ROUTES6 + """address replace 198.19.1.1/24 dev tap-c noprefixroute
address replace 2001:db8:0:1::1/64 dev tap-c nodad noprefixroute
address replace fe80::1/64 dev tap-c nodad
route replace 2001:db8:0:1::c/128 dev tap-c proto 211 metric 1024
"""


class RaSocket:
    """Records the RAs the agent sends; ``fail``: taps whose send fails (gone meanwhile)."""

    def __init__(self, fail=()):
        self.sent, self.fail = [], set(fail)

    def send(self, tap, payload):
        if tap in self.fail:
            raise OSError(errno.ENODEV, "No such device")
        self.sent.append((tap, payload))

    @staticmethod
    def mac(tap):
        return "02:00:00:00:00:%02x" % (ord(tap[-1]) - ord("a") + 1)


def ra_options(payload):
    """{type: [option bodies]} of an RA (ICMPv6 message bytes)."""
    found, at = {}, 16
    while at + 2 <= len(payload):
        assert payload[at + 1], "an option of length 0"
        end = at + 8 * payload[at + 1]
        assert end <= len(payload)
        found.setdefault(payload[at], []).append(payload[at + 2:end])
        at = end
    assert at == len(payload)
    return found


def test_router_advertisement_is_dnsmasqs_for_our_ranges():
    from ansible_collections.ocs.l3.plugins.module_utils.host_state import parse_config
    ra = {k: v for k, v in parse_config("instance_ifname_prefix=tap\n" + RA_CONF, "agent.conf").items()
          if k.startswith("ra_")}
    payload = host_agent.router_advertisement("02:00:c6:13:01:0a", ra, hop_limit=64)
    mtype, code, csum, hop, flags, lifetime, reachable, retrans = struct.unpack_from("!BBHBBHII", payload)
    assert (mtype, code, csum, hop, reachable, retrans) == (134, 0, 0, 64, 0, 0)
    assert flags == 0xC0  # M and O, medium preference
    assert lifetime == constants.RA_ROUTER_LIFETIME == 3 * constants.RA_INTERVAL
    options = ra_options(payload)
    assert options[1] == [bytes.fromhex("0200c613010a")]  # the tap's MAC
    assert options[5] == [struct.pack("!HI", 0, 1450)]
    rdnss, = options[25]
    assert struct.unpack_from("!HI", rdnss) == (0, 43200)
    assert [socket.inet_ntop(socket.AF_INET6, rdnss[6 + 16 * i:22 + 16 * i]) for i in range(2)] == \
        ["2001:db8:ffff::53", "2001:db8::35"]
    dnssl, = options[31]
    assert struct.unpack_from("!HI", dnssl) == (0, 43200)
    assert dnssl[6:].rstrip(b"\0") == b"\x05cloud\x03ocs\x07example" and len(dnssl) % 8 == 6
    # without DNS servers: no RDNSS, no DNSSL
    bare = host_agent.router_advertisement("02:00:00:00:00:01", {"ra_mtu": 1500, "ra_dns_lifetime": 1800})
    assert sorted(ra_options(bare)) == [1, 5]


def test_each_ipv6_tap_gets_an_ra_when_served_and_every_interval(lab, caplog):
    """dnsmasq's periodic RAs reach one tap per range: the agent's reach every UP IPv6 tap, never an
    IPv4-only one, 3/4 to 1 RA interval apart."""
    caplog.set_level(logging.INFO)
    install(lab.state, ROUTES6B, conf=RA_CONF)
    ras = RaSocket()
    agent, source, kernel = lab([Link("new", 5, "tap-a", True), Link("new", 6, "tap-b", True),
                                 Link("new", 7, "tap-c", False)],
                                check_jumps=False, ra_socket=ras, rand=lambda: 0.5)
    agent.start()
    assert [tap for tap, dummy in ras.sent] == ["tap-a"]  # tap-b has no IPv6, tap-c is down
    assert ra_options(ras.sent[0][1])[5] == [struct.pack("!HI", 0, 1450)]
    ras.sent.clear()
    source.push(link_msg(7, "tap-c", True), at=lab.clock.now + 10)
    agent.step()
    assert [tap for tap, dummy in ras.sent] == ["tap-c"]  # served as it came up
    ras.sent.clear()
    began = lab.clock.now
    agent.step()  # nothing happens until the round is due: the wait ends there
    assert sorted(tap for tap, dummy in ras.sent) == ["tap-a", "tap-c"]
    assert lab.clock.now - began <= constants.RA_INTERVAL
    first = lab.clock.now
    ras.sent.clear()
    agent.step()
    assert sorted(tap for tap, dummy in ras.sent) == ["tap-a", "tap-c"]
    assert lab.clock.now - first == pytest.approx(constants.RA_INTERVAL * 0.875)
    assert "router advertisements: 2 taps" in caplog.messages
    # a tap that goes down gets none; one that cannot be sent to is logged, the others still get theirs
    source.push(link_msg(7, "tap-c", False), at=lab.clock.now + 1)
    agent.step()
    ras.sent.clear()
    ras.fail = {"tap-a"}
    agent.step()
    assert ras.sent == []
    assert "error: router advertisement on tap-a: [Errno 19] No such device" in caplog.messages


def test_no_ra_settings_no_ras_and_the_agent_blocks(lab):
    """An IPv4-only (or RA-less) agent.conf: no RA, no timer (the agent waits for events only)."""
    install(lab.state, ROUTES6B)
    ras = RaSocket()
    agent, source, kernel = lab([Link("new", 5, "tap-a", True)], check_jumps=False, ra_socket=ras)
    agent.start()
    assert agent.ra_wait() is None
    with pytest.raises(Idle):
        agent.step()
    assert ras.sent == []


@pytest.mark.parametrize("conf, message", [
    ("ra_mtu=1000\n", "agent.conf:3: ra_mtu: not an IPv6 MTU"),
    ("ra_mtu=15x0\n", "agent.conf:3: ra_mtu: not a number"),
    ("ra_mtu=1500\nra_dns_lifetime=-1\n", "agent.conf:4: ra_dns_lifetime: not a number"),
    ("ra_mtu=1500\nra_rdnss=2001:db8::1,198.51.100.1\n", "agent.conf:4: ra_rdnss: '198.51.100.1' is not an IPv6"),
    ("ra_mtu=1500\nra_dnssl=bad_name\n", "agent.conf:4: ra_dnssl: 'bad_name' is not a domain name"),
    ("ra_dns_lifetime=1800\n", "ra_mtu \\(the other ra_ keys need it\\) missing"),
])
def test_bad_ra_settings_are_named_and_change_nothing(lab, caplog, conf, message):
    install(lab.state, ROUTES6B, conf=conf)
    ras = RaSocket()
    agent, source, kernel = lab([Link("new", 5, "tap-a", True)], check_jumps=False, ra_socket=ras)
    agent.start()
    assert agent.state is None and ras.sent == [] and batch_calls(kernel) == []
    assert any(re.search(message, m) for m in caplog.messages), caplog.messages


def test_agent_config_carries_the_ra_settings_of_a_dual_stack_hypervisor(data):
    from ansible_collections.ocs.l3.plugins.module_utils import agent, dhcp
    from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
    from ansible_collections.ocs.l3.plugins.module_utils.host_state import parse_config
    from fabric_data import dual_stack

    def conf(fab, host):
        art, = agent.artifacts(fab, fab.hosts[host])
        return parse_config(art.vars["_ocs_agent_config_text"], "agent.conf")

    assert "ra_mtu" not in conf(build(copy.deepcopy(data)), "hv-r01-01")  # IPv4 only
    dual = dual_stack(copy.deepcopy(data))
    dual["fabric"].update(dns_servers6=["2001:db8:ffff::53"], domain="cloud.ocs.example", mtu=1450,
                          dhcp_lease_time=600)
    fab = build(dual)
    got = conf(fab, "hv-r01-01")
    assert got == {"instance_ifname_prefix": "tap", "ra_mtu": 1450, "ra_dns_lifetime": 1800,
                   "ra_rdnss": ["2001:db8:ffff::53"], "ra_dnssl": ["cloud.ocs.example"]}
    # dnsmasq's RAs on the same taps: the same MTU, interval and router lifetime
    assert "ra-param=tap*,mtu:1450,%d,%d" % (constants.RA_INTERVAL, constants.RA_ROUTER_LIFETIME) in \
        dhcp.config6_lines(fab, fab.hosts["hv-r01-01"])
