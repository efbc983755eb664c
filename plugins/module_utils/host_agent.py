# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ocs-l3-agent: serve each instance tap its share of the installed state as soon as it comes up.

A VM restart recreates its tap; taking a tap down deletes its routes and
bringing it up does not restore them; a ``/32 dev tap`` route cannot be added
while the tap is down. Without this agent such a tap stays dark (no gateway
address, no /32, no proxy ARP) until the next converge. udev does not see
link up/down (and does not run in containers), so the agent listens to the
kernel: a raw ``NETLINK_ROUTE`` socket bound to ``RTMGRP_LINK``, messages
``RTM_NEWLINK``/``RTM_DELLINK`` parsed here (ifindex, ``IFF_UP``,
``IFLA_IFNAME``). Standard library only: installed on the hosts with the
module_utils it imports (``constants.HOST_LIBRARY``).

When an interface whose name starts with the fabric's instance prefix
(``agent.conf``) appears UP or comes UP again, the agent applies that tap's
lines of ``routes.batch`` (those naming ``dev <tap>``: gateway address, the
instance /32, floating /32s; on a dual-stack fabric the router's link-local
``fe80::1/64``, the subnet's IPv6 gateway address and the instance /128 too:
taking a tap down flushes its IPv6 addresses as well), with the same planner as
the ``ocs_route_table`` module (only what is missing, one ``ip -force -batch``
for every tap of a batch), sets ``proxy_arp`` on it (and on a tap with IPv6
lines, first, ``accept_ra=0``, ``autoconf=0`` and ``disable_ipv6=0``:
``route_table.tap_ipv6``), and checks that the jumps from the built-in
chains into ours exist (the filter and NAT rules match taps by name, so they
apply by themselves). Events are gathered for ``window`` seconds from the
first one, so 1,000 taps appearing at once cost a few batches, not 1,000.
On a dual-stack hypervisor (``agent.conf`` has ``ra_mtu``) the agent also sends
each UP tap with IPv6 lines a router advertisement when it serves it and every
``constants.RA_INTERVAL`` (3/4 to 1 times), the same as dnsmasq's: dnsmasq's
periodic RAs reach one tap per subnet only (module_utils/agent.py says why),
and without them a guest's default route expires after the router lifetime.
A tap with the prefix and no lines is logged and left alone. Before each
batch the state files are checked (inode, mtime, size): a converge's new
version is read then; a corrupt or missing file changes nothing, logged.
On start (and after lost events) every UP tap is served: a restarted agent heals.

I/O is injected (netlink source, command runner, sysctl writer, clock) so the
unit tests drive :class:`Agent` without root.
"""

from __future__ import annotations

import argparse
import collections
import errno
import logging
import os
import random
import socket
import struct
import time

from . import constants, iptables, route_table
from .host_state import Paths, StateError, parse_config, process_runner, read_generation, read_routes, read_text
from .host_state import setup_logging, signature

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME = 3
NLA_TYPE_MASK = 0x3FFF
IFF_UP = 0x1
SO_RCVBUFFORCE = 33
NLMSG = struct.Struct("=IHHII")
"""nlmsghdr: length, type, flags, sequence, port id."""
IFINFO = struct.Struct("=BxHiII")
"""ifinfomsg: family, (pad), device type, ifindex, flags, change mask."""
RTATTR = struct.Struct("=HH")
"""rtattr: length, type."""
RECV_SIZE = 1 << 18
RCVBUF = 16 << 20
"""Kernel receive buffer of the event socket: 1,000 taps appearing at once fit;
an overflow (ENOBUFS) makes the agent re-read every link."""

LOG = logging.getLogger("ocs-l3-agent")

Link = collections.namedtuple("Link", "event index name up")
"""One link message: event ``new``/``del``, ifindex, name (None when absent), IFF_UP."""
State = collections.namedtuple("State", "prefix taps generation lines ra taps6")
"""The usable desired state: prefix, {tap: [lines]}, generation, number of lines, the RA settings
(host_state.parse_config's ``ra_*`` keys; None: no RAs), the taps with IPv6 lines."""

ND_ROUTER_ADVERT = 134
RA_FLAGS = 0xC0
"""M and O: addresses and the other settings by DHCPv6 (as dnsmasq's RAs for a ``static`` range)."""
ALL_NODES = "ff02::1"


def _dns_name(name):
    """A domain name in DNS wire format (RFC 1035 labels, the root label last)."""
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def router_advertisement(mac, ra, hop_limit=64):
    """The ICMPv6 router advertisement of an instance tap (checksum 0: the kernel fills it in) as
    dnsmasq builds it for our ranges: hop limit, M and O, router lifetime
    ``constants.RA_ROUTER_LIFETIME``; the source link-layer address ``mac`` (aa:bb:..), the MTU,
    RDNSS and DNSSL (lifetime ``ra_dns_lifetime``) when given. Without dnsmasq's prefix option:
    an off-link prefix without autoconfiguration (L=0, A=0) tells a guest nothing."""
    body = struct.pack("!BBHBBHII", ND_ROUTER_ADVERT, 0, 0, hop_limit, RA_FLAGS,
                       constants.RA_ROUTER_LIFETIME, 0, 0)
    lladdr = bytes.fromhex(mac.replace(":", ""))
    body += struct.pack("!BB", 1, 1) + lladdr
    body += struct.pack("!BBHI", 5, 1, 0, ra["ra_mtu"])
    if ra.get("ra_rdnss"):
        servers = b"".join(socket.inet_pton(socket.AF_INET6, a) for a in ra["ra_rdnss"])
        body += struct.pack("!BBHI", 25, 1 + 2 * len(ra["ra_rdnss"]), 0, ra["ra_dns_lifetime"]) + servers
    if ra.get("ra_dnssl"):
        names = b"".join(_dns_name(n) for n in ra["ra_dnssl"])
        names += b"\0" * (-len(names) % 8)
        body += struct.pack("!BBHI", 31, 1 + len(names) // 8, 0, ra["ra_dns_lifetime"]) + names
    return body


class RaSocket:
    """Sends router advertisements from ``constants.GATEWAY6_LINK_LOCAL`` (on every IPv6 tap,
    without DAD) to all nodes on one tap: a raw ICMPv6 socket, hop limit 255 (RFC 4861)."""

    def __init__(self):
        self.sock = None

    def send(self, tap, payload):
        if self.sock is None:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMPV6)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        index = socket.if_nametoindex(tap)
        info = socket.inet_pton(socket.AF_INET6, constants.GATEWAY6_LINK_LOCAL) + struct.pack("=I", index)
        self.sock.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)], 0, (ALL_NODES, 0, 0, index))

    @staticmethod
    def mac(tap):
        with open("/sys/class/net/%s/address" % tap) as fh:
            return fh.read().strip()


class NetlinkError(Exception):
    """A malformed or error netlink message."""


def _align(n):
    return (n + 3) & ~3


def _link(mtype, body):
    if len(body) < IFINFO.size:
        raise NetlinkError("link message of %d bytes, shorter than ifinfomsg" % len(body))
    dummy, dummy, index, flags, dummy = IFINFO.unpack_from(body)
    name, off = None, IFINFO.size
    while off + RTATTR.size <= len(body):
        alen, atype = RTATTR.unpack_from(body, off)
        if alen < RTATTR.size or off + alen > len(body):
            raise NetlinkError("attribute of length %d at offset %d overruns the message" % (alen, off))
        if atype & NLA_TYPE_MASK == IFLA_IFNAME:
            name = body[off + RTATTR.size:off + alen].split(b"\0", 1)[0].decode("utf-8", "replace")
        off += _align(alen)
    return Link("new" if mtype == RTM_NEWLINK else "del", index, name, bool(flags & IFF_UP))


def parse(data):
    """One datagram -> ([Link], done): its link messages in order; done when it carries
    NLMSG_DONE (end of a dump). Other message types are skipped; NetlinkError on a
    truncated message or an error reply."""
    links, done, off = [], False, 0
    while off + NLMSG.size <= len(data):
        length, mtype, dummy, dummy, dummy = NLMSG.unpack_from(data, off)
        if length < NLMSG.size or off + length > len(data):
            raise NetlinkError("truncated netlink message at offset %d: length %d, %d bytes left"
                               % (off, length, len(data) - off))
        body = data[off + NLMSG.size:off + length]
        if mtype == NLMSG_DONE:
            done = True
        elif mtype == NLMSG_ERROR:
            code = struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
            if code:
                raise NetlinkError("netlink error: %s" % os.strerror(-code))
        elif mtype in (RTM_NEWLINK, RTM_DELLINK):
            links.append(_link(mtype, body))
        off += _align(length)
    return links, done


def dump_request(seq=1):
    """RTM_GETLINK dump request (every link of the namespace)."""
    body = IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return NLMSG.pack(NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def _netlink_socket():
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)


class NetlinkSource:
    """The kernel's link events (``recv``) and its current links (``dump``)."""

    def __init__(self, rcvbuf=RCVBUF):
        self.sock = _netlink_socket()
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:  # not root: as much as net.core.rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, RTMGRP_LINK))

    def recv(self, timeout=None):
        """One datagram, or None when ``timeout`` seconds pass first (None: block until one).
        OSError ENOBUFS: the receive buffer overflowed, events were lost."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(RECV_SIZE)
        except (socket.timeout, BlockingIOError):
            return None

    def dump(self):
        """[Link] of every link now (a separate socket, so no event is mixed in)."""
        with _netlink_socket() as sock:
            sock.settimeout(10)
            sock.bind((0, 0))
            sock.sendto(dump_request(), (0, 0))
            links = []
            while True:
                batch, done = parse(sock.recv(RECV_SIZE))
                links.extend(batch)
                if done:
                    return links


ProcSys = route_table.ProcSys
"""sysctl values through /proc/sys (shared with the ocs_route_table module)."""


class Agent:
    """The event loop. ``source``: ``recv(timeout)`` -> datagram bytes or None, ``dump()`` -> [Link];
    ``run(argv, data=None)`` -> (rc, out, err); ``sysctl``: ``read(key)``/``write(key, value)``;
    ``clock()`` -> seconds; ``paths``: host_state.Paths; ``window``: seconds a batch gathers events."""

    def __init__(self, source, run=None, sysctl=None, clock=time.monotonic, paths=None, window=0.1,
                 check_jumps=True, ra_socket=None, rand=random.random):
        self.source = source
        self.run = run or process_runner()
        self.sysctl = sysctl or ProcSys()
        self.clock = clock
        self.paths = paths or Paths()
        self.window = window
        self.check_jumps = check_jumps
        self.links = {}  # ifindex -> (name, up)
        self.pending = set()  # names that appeared UP or came UP since the last batch
        self.resync = False
        self.state = None
        self.batches = 0
        self._sig = None
        self._error = None
        self._loads = 0
        self.ra_socket = ra_socket or RaSocket()
        self.rand = rand
        self.next_ra = None  # clock() of the next periodic round of RAs
        self.ra_sent = 0

    # --- desired state ---------------------------------------------------

    def load_state(self):
        """Re-read the state files when they changed. True when the state just became usable
        again after being unusable (the taps that came up meanwhile must be served)."""
        p = self.paths
        sig = signature([p.routes, p.agent_config, p.generation])
        if sig == self._sig:
            return False
        self._sig = sig
        before_unusable = self.state is None and self._loads > 0
        self._loads += 1
        try:
            config = parse_config(read_text(p.agent_config), p.agent_config)
            lines = read_routes(p.routes)
        except StateError as exc:
            self.state, self._error = None, str(exc)
            LOG.error("error: %s: changing nothing until a converge installs a usable state", exc)
            return False
        prefix = config["instance_ifname_prefix"]
        taps = {dev: ls for dev, ls in route_table.by_device(lines).items() if dev.startswith(prefix)}
        ra = {k: v for k, v in config.items() if k.startswith("ra_")} if "ra_mtu" in config else None
        taps6 = frozenset(tap for tap in route_table.ipv6_taps(lines) if tap in taps)
        self.state, self._error = State(prefix, taps, read_generation(p.generation), len(lines), ra, taps6), None
        if ra is not None and self.next_ra is None:
            self.schedule_ra()  # the first periodic round; periodic_ra() schedules the next ones
        LOG.info("desired state: generation %s, %d taps, %d lines (%s)",
                 self.state.generation or "unknown", len(taps), len(lines), p.routes)
        return before_unusable

    # --- events ----------------------------------------------------------

    def event(self, link):
        """Track one link message; a link that appears UP or comes UP becomes pending."""
        if link.event == "del":
            self.links.pop(link.index, None)
            return
        prev = self.links.get(link.index)
        name = link.name or (prev[0] if prev else None)
        if name is None:
            return
        self.links[link.index] = (name, link.up)
        if link.up and (prev is None or not prev[1] or prev[0] != name):
            self.pending.add(name)

    def receive(self, timeout):
        """Take one datagram (or an overflow). False when ``timeout`` passed with none."""
        try:
            data = self.source.recv(timeout)
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            self.resync = True
            return True
        if data is None:
            return False
        try:
            links, dummy = parse(data)
        except NetlinkError as exc:
            LOG.error("error: unreadable netlink message (%s): re-reading every link", exc)
            self.resync = True
            return True
        for link in links:
            self.event(link)
        return True

    def relist(self):
        self.links = {ln.index: (ln.name, ln.up) for ln in self.source.dump() if ln.event == "new" and ln.name}

    # --- one batch -------------------------------------------------------

    def flush(self):
        """Serve what is pending. Returns a summary dict (also logged)."""
        names, self.pending = self.pending, set()
        resync, self.resync = self.resync, False
        started = self.clock()
        recovered = self.load_state()
        if resync:
            LOG.warning("warning: netlink events were lost (receive buffer overflow): re-reading every link")
        if resync or recovered:
            self.relist()
            names |= {name for name, up in self.links.values() if up}
        summary = dict(served=[], in_place=[], unknown=[], failed=[], lines=0)
        if self.state is None:
            if names:
                LOG.error("error: desired state unusable (%s): %d interfaces that came up not served: %s",
                          self._error, len(names), " ".join(sorted(names)[:20]))
            return summary
        prefix = self.state.prefix
        up_now = {name for name, up in self.links.values() if up}
        serve = []
        for name in sorted(names):
            if not name.startswith(prefix) or name not in up_now:
                continue
            if name in self.state.taps:
                serve.append(name)
            else:
                summary["unknown"].append(name)
                LOG.info("unknown tap %s: left alone (no line names it in %s)", name, self.paths.routes)
        if serve:
            self._serve(serve, summary)
            self.advertise([tap for tap in serve if tap not in summary["failed"]])
        if self.check_jumps and (serve or summary["unknown"]):
            self.jumps()
        if serve:
            LOG.info("batch: %d taps: %d served (%d addresses/routes), %d in place, %d unknown, %d failed, %.3f s",
                     len(serve) + len(summary["unknown"]), len(summary["served"]), summary["lines"],
                     len(summary["in_place"]), len(summary["unknown"]), len(summary["failed"]),
                     self.clock() - started)
        return summary

    def _plan(self, taps):
        desired = [line for tap in taps for line in self.state.taps[tap]]
        ours, every, addresses, dummy = route_table.kernel_state(self.run, constants.ROUTE_PROTOCOL, links=False,
                                                                 inet6=route_table.has_inet6(desired))
        return route_table.plan(desired, ours, every, addresses, set(taps), constants.ROUTE_PROTOCOL, prune=False)

    def _serve(self, taps, summary):
        for tap in route_table.ipv6_taps([line for tap in taps for line in self.state.taps[tap]]):
            self.tap_ipv6(tap)
        try:
            commands, dummy, conflicts, dummy, dummy = self._plan(taps)
        except route_table.KernelError as exc:
            LOG.error("error: %s: %d taps not served", exc, len(taps))
            summary["failed"].extend(taps)
            return
        for conflict in conflicts:
            LOG.warning("warning: %s: skipped", conflict)
        failed = {}
        if commands:
            self.batches += 1
            rc, dummy, err = self.run(route_table.BATCH_ARGV, "\n".join(commands) + "\n")
            if rc != 0:
                LOG.error("error: ip -batch: %s", " | ".join((err or "").strip().splitlines()[:5]))
                try:
                    left = self._plan(taps)[0]
                except route_table.KernelError as exc:
                    left = commands
                    LOG.error("error: %s", exc)
                for line in left:
                    failed[route_table.line_dev(line)] = failed.get(route_table.line_dev(line), 0) + 1
        per_tap = {}
        for line in commands:
            per_tap[route_table.line_dev(line)] = per_tap.get(route_table.line_dev(line), 0) + 1
        for tap in taps:
            arp = self.proxy_arp(tap)
            done = per_tap.get(tap, 0) - failed.get(tap, 0)
            extra = ", proxy_arp on" if arp else ""
            if tap in failed:
                summary["failed"].append(tap)
                LOG.error("error: tap %s: %d of %d addresses/routes not applied", tap, failed[tap], per_tap[tap])
            elif done:
                summary["served"].append(tap)
                summary["lines"] += done
                LOG.info("served %s: %d addresses/routes%s", tap, done, extra)
            else:
                summary["in_place"].append(tap)
                LOG.debug("%s: in place%s", tap, extra)

    def proxy_arp(self, tap):
        """Make proxy ARP answer on ``tap``, as the ocs_route_table module does (route_table.proxy_arp).
        True when it was set now. Where /proc/sys is read-only a wrong value is logged."""
        changed, problem = route_table.proxy_arp(self.sysctl, tap)
        if problem:
            LOG.error("error: %s", problem)
        return changed

    def tap_ipv6(self, tap):
        """Make an instance tap with IPv6 lines ignore router advertisements and have IPv6 on, before its
        batch (route_table.tap_ipv6, as the ocs_route_table module does). [sysctl keys set now]."""
        changed, problem = route_table.tap_ipv6(self.sysctl, tap)
        if changed:
            LOG.info("%s", route_table.tap_ipv6_text(tap, changed))
        if problem:
            LOG.error("error: %s", problem)
        return [key for key, dummy in changed]

    # --- router advertisements ---------------------------------------------

    def advertise(self, taps):
        """Send the RA to each of ``taps`` with IPv6 lines (when the state has RA settings).
        [taps it went to]; a tap that cannot be sent to (gone meanwhile) is logged."""
        state = self.state
        if state is None or state.ra is None:
            return []
        try:
            hop_limit = int(self.sysctl.read("net/ipv6/conf/default/hop_limit"))
        except (OSError, ValueError):
            hop_limit = 64
        sent = []
        for tap in sorted(t for t in taps if t in state.taps6):
            try:
                self.ra_socket.send(tap, router_advertisement(self.ra_socket.mac(tap), state.ra, hop_limit))
            except OSError as exc:
                LOG.error("error: router advertisement on %s: %s", tap, exc)
                continue
            sent.append(tap)
        self.ra_sent += len(sent)
        return sent

    def schedule_ra(self):
        """Set the next periodic round of RAs RA_INTERVAL x 3/4..1 from now (dnsmasq's spread)."""
        self.next_ra = self.clock() + constants.RA_INTERVAL * (0.75 + 0.25 * self.rand())

    def ra_wait(self):
        """Seconds until the next periodic round of RAs is due (0: now), None when there are none."""
        if self.state is None or self.state.ra is None or self.next_ra is None:
            return None
        return max(0.0, self.next_ra - self.clock())

    def periodic_ra(self):
        """The periodic round when it is due: the RA to every UP tap with IPv6 lines, and the next
        round scheduled. [taps]."""
        if self.ra_wait() != 0:
            return []
        self.schedule_ra()
        self.load_state()
        if self.state is None:
            return []
        sent = self.advertise([name for name, up in self.links.values() if up])
        LOG.info("router advertisements: %d taps", len(sent))
        return sent

    def jumps(self):
        """Make each jump from a built-in chain into ours exist once (first where required), for the
        iptables files installed; the same rule as the ocs_iptables_chains module. [fixed lines]."""
        fixed = []
        for path, family, jumps in self.paths.iptables_parts():
            if not os.path.exists(path):
                continue
            tables = sorted({j["table"] for j in jumps})
            try:
                live = iptables.live_tables(self.run, family, tables)
            except iptables.ApplyError as exc:
                LOG.error("error: %s", exc)
                continue
            blocks = []
            for table in tables:
                body = []
                for jump in (j for j in jumps if j["table"] == table):
                    if jump["target"] not in iptables.saved_chains(live[table], table, [jump["target"]]):
                        LOG.error("error: %s %s: chain %s is missing (run ocs-l3-restore or a converge)",
                                  iptables.tools(family)[1].split("-")[0], table, jump["target"])
                        continue
                    body += iptables.jump_fix(live[table], jump)[1]
                if body:
                    blocks.append("*%s\n%s\nCOMMIT\n" % (table, "\n".join(body)))
                    fixed += body
            if blocks:
                restore = iptables.tools(family)[0]
                rc, dummy, err = self.run([restore, "-w", "--noflush"], "".join(blocks))
                if rc != 0:
                    LOG.error("error: %s --noflush: %s", restore, (err or "").strip())
                else:
                    LOG.warning("warning: jumps into our chains restored (%s): %s", family, "; ".join(fixed))
        return fixed

    # --- loop --------------------------------------------------------------

    def start(self):
        """The full pass: every UP tap gets its share (a restarted agent heals)."""
        self.load_state()
        self.relist()
        self.pending |= {name for name, up in self.links.values() if up}
        LOG.info("started: %d links, window %.3f s", len(self.links), self.window)
        return self.flush()

    def step(self):
        """Block for the next event (or the next periodic round of RAs), gather events for ``window``
        seconds, serve them: one batch."""
        self.receive(self.ra_wait())
        self.periodic_ra()
        if not self.pending and not self.resync:
            return None
        deadline = self.clock() + self.window
        while True:
            left = deadline - self.clock()
            if left <= 0 or not self.receive(left):
                break
        return self.flush()

    def run_forever(self):
        self.start()
        while True:
            self.step()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ocs-l3-agent", description="Serve instance taps their routes, "
                                 "addresses and proxy ARP as they come up (netlink).")
    ap.add_argument("--state-dir", help="installed state (default: $%s or %s)"
                    % (constants.STATE_DIR_ENV, constants.STATE_DIR))
    ap.add_argument("--window", type=float, default=0.1, help="seconds a batch gathers events (default 0.1)")
    ap.add_argument("--no-jumps", action="store_true", help="do not check the iptables jumps into our chains")
    ap.add_argument("--verbose", action="store_true", help="also log taps found in place")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    agent = Agent(NetlinkSource(), paths=Paths(args.state_dir), window=args.window, check_jumps=not args.no_jumps)
    try:
        agent.run_forever()
    except KeyboardInterrupt:
        return 0
    return 0
