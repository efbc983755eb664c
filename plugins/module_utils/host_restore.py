# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ocs-l3-restore: put the installed desired state back into the kernel at boot, before FRR and DHCP.

After a reboot nothing of ours is in the kernel: routes, our iptables chains
and the NAT tier's nft table would come back only with the next converge,
while FRR would already announce. This oneshot (``ocs-l3-restore.service``,
ordered before ``frr.service``, which requires it) applies the files the last
converge installed, with the same planners as the modules:

1. every file present is read and checked first (route lines, our chains
   only, the one nft table); one corrupt file: nothing at all is applied,
   exit 2, the message names the file (and line);
2. routes (``route_table``): what is missing, in one ``ip -force -batch``;
   lines of instance taps that do not exist yet are left to the agent (normal
   at boot); other missing interfaces are reported; nothing is deleted. An
   instance tap that exists already and has IPv6 lines first gets
   ``accept_ra=0``, ``autoconf=0``, ``disable_ipv6=0`` (``route_table.tap_ipv6``,
   as the module and the agent do: its IPv6 addresses need IPv6 on);
3. iptables (``iptables``): each file tested in a scratch namespace, compared
   with the live chains, one ``iptables-restore -w --noflush`` transaction of
   the difference, jumps made to exist once (nat, filter, ip6 filter);
4. the nft table (``nft``): created, replaced or its elements updated.

A missing file is a part this host does not have (a ToR has no NAT files):
skipped. On a converged host nothing changes. Exit 1 when an apply failed.
Standard library only; ``run`` injectable (see ``host_state``).
"""

from __future__ import annotations

import argparse
import logging
import os

from . import constants, iptables, nft, route_table
from .host_state import Paths, StateError, parse_config, process_runner, read_generation, read_routes, read_text
from .host_state import setup_logging
from .netns import NetnsError

LOG = logging.getLogger("ocs-l3-restore")

EXIT_OK, EXIT_APPLY_FAILED, EXIT_CORRUPT = 0, 1, 2


def read_state(paths):
    """Every installed file, read and checked; StateError on the first unusable one.
    Returns dict(routes, prefix, iptables=[(path, family, text, candidate, jumps)], nft=(path, text) or None);
    routes None when the file is absent, prefix None without agent config."""
    state = dict(routes=None, prefix=None, iptables=[], nft=None)
    if os.path.exists(paths.routes):
        state["routes"] = read_routes(paths.routes)
    if os.path.exists(paths.agent_config):
        state["prefix"] = parse_config(read_text(paths.agent_config), paths.agent_config)["instance_ifname_prefix"]
    for path, family, jumps in paths.iptables_parts():
        if not os.path.exists(path):
            continue
        text = read_text(path)
        try:
            candidate = iptables.parse_restore(text)
        except ValueError as exc:
            raise StateError("%s: %s" % (path, exc))
        problems = iptables.check_candidate(candidate, constants.CHAIN_PREFIX, jumps)
        if problems:
            raise StateError("%s would touch chains that are not ours: %s" % (path, "; ".join(problems)))
        state["iptables"].append((path, family, text, candidate, jumps))
    if os.path.exists(paths.natgw):
        text = read_text(paths.natgw)
        try:
            tables = nft.declared_tables(text)
        except ValueError as exc:
            raise StateError("%s: %s" % (paths.natgw, exc))
        if tables and tables != [(constants.NFT_FAMILY, constants.NFT_TABLE)]:
            raise StateError("%s must declare only table %s %s, found %s" % (
                paths.natgw, constants.NFT_FAMILY, constants.NFT_TABLE, ", ".join(" ".join(t) for t in tables)))
        state["nft"] = (paths.natgw, text, bool(tables))
    return state


class Restore:
    """The apply steps; ``run(argv, data=None) -> (rc, out, err)``; ``check``: plan and report only."""

    def __init__(self, run=None, check=False, sysctl=None):
        self.run = run or process_runner()
        self.check = check
        self.sysctl = sysctl or route_table.ProcSys()
        self.changes = 0
        self.failures = 0

    def _apply(self, what, argv, data):
        """Run one transaction unless in check mode; False when it failed."""
        self.changes += 1
        if self.check:
            LOG.info("%s: would apply:\n%s", what, data.rstrip())
            return True
        rc, dummy, err = self.run(argv, data)
        if rc != 0:
            self.failures += 1
            LOG.error("error: %s: %s failed: %s", what, " ".join(argv), (err or "").strip())
            return False
        return True

    def routes(self, path, lines, prefix):
        protocol = constants.ROUTE_PROTOCOL
        try:
            ours, every, addresses, links = route_table.kernel_state(self.run, protocol)
        except route_table.KernelError as exc:
            self.failures += 1
            LOG.error("error: routes: %s", exc)
            return
        commands, missing, conflicts, dummy, dummy = route_table.plan(lines, ours, every, addresses, links, protocol,
                                                                      prune=False)
        for tap in route_table.ipv6_taps(lines):
            if tap in links:
                self.tap_ipv6(tap)
        taps = [m for m in missing if prefix and m.startswith(prefix)]
        others = [m for m in missing if m not in taps]
        if taps:
            LOG.info("routes: %d instance taps not present yet, left to ocs-l3-agent", len(taps))
        if others:
            LOG.warning("warning: routes: interfaces not present, their lines skipped: %s", ", ".join(others))
        for conflict in conflicts:
            LOG.warning("warning: routes: %s: skipped", conflict)
        if not commands:
            LOG.info("routes: in place (%s)", path)
        elif self._apply("routes", route_table.BATCH_ARGV, "\n".join(commands) + "\n"):
            LOG.info("routes: %d addresses/routes applied (%s)", len(commands), path)

    def tap_ipv6(self, tap):
        """An existing instance tap with IPv6 lines: router advertisements ignored, IPv6 on (before the batch)."""
        changed, problem = route_table.tap_ipv6(self.sysctl, tap, self.check)
        if changed:
            self.changes += 1
            LOG.info("%s%s", "would set " if self.check else "", route_table.tap_ipv6_text(tap, changed))
        if problem:
            self.failures += 1
            LOG.error("error: %s", problem)

    def chains(self, path, family, text, candidate, jumps):
        restore = iptables.tools(family)[0]
        tables = sorted(set(candidate) | {j["table"] for j in jumps})
        try:
            candidate_save = iptables.scratch_save(self.run, text, family)
            res = iptables.plan(candidate, iptables.live_tables(self.run, family, tables), candidate_save, jumps)
        except (iptables.ApplyError, NetnsError, ValueError) as exc:
            self.failures += 1
            LOG.error("error: %s: %s", path, exc)
            return
        if not res["transaction"]:
            LOG.info("iptables: in place (%s)", path)
            return
        if not self._apply(path, [restore, "-w", "--noflush"], res["transaction"]) or self.check:
            return
        try:
            again = iptables.plan(candidate, iptables.live_tables(self.run, family, tables), candidate_save, jumps)
        except (iptables.ApplyError, ValueError) as exc:
            again = dict(transaction=str(exc))
        if again["transaction"]:
            self.failures += 1
            LOG.error("error: %s: after the apply our chains still differ: %s", path, again["transaction"].strip())
            return
        LOG.info("iptables: %s (tables refilled: %s; jumps: %s)", path, ", ".join(res["tables"]) or "none",
                 "; ".join(res["jumps_fixed"]) or "in place")

    def table(self, path, text, declared):
        family, name = constants.NFT_FAMILY, constants.NFT_TABLE
        try:
            candidate = nft.scratch_table(self.run, text, family, name)[0] if declared else None
            live = nft.list_table(self.run, family, name)[0]
        except (nft.ApplyError, NetnsError, ValueError) as exc:
            self.failures += 1
            LOG.error("error: %s: %s", path, exc)
            return
        res = nft.plan(family, name, text, candidate, live)
        if res["operation"] == "none":
            LOG.info("nft: in place (%s)", path)
        elif self._apply(path, ["nft", "-f", "-"], res["transaction"]):
            LOG.info("nft: table %s %s: %s (%d elements added, %d removed)", family, name, res["operation"],
                     res["elements_added"], res["elements_removed"])


def restore(paths=None, run=None, check=False, sysctl=None):
    """Apply the installed state; the exit status (EXIT_*). ``sysctl``: route_table.ProcSys by default."""
    paths = paths or Paths()
    try:
        state = read_state(paths)
    except StateError as exc:
        LOG.error("error: %s: nothing applied", exc)
        return EXIT_CORRUPT
    LOG.info("restore: generation %s from %s", read_generation(paths.generation) or "unknown", paths.base)
    steps = Restore(run, check, sysctl)
    if state["routes"] is not None:
        steps.routes(paths.routes, state["routes"], state["prefix"])
    for part in state["iptables"]:
        steps.chains(*part)
    if state["nft"] is not None:
        steps.table(*state["nft"])
    if steps.failures:
        LOG.error("error: restore: %d steps failed", steps.failures)
        return EXIT_APPLY_FAILED
    LOG.info("restore: %s", "%d transactions %s" % (steps.changes, "to apply" if check else "applied")
             if steps.changes else "nothing to change")
    return EXIT_OK


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ocs-l3-restore", description="Apply the installed ocs-l3 state "
                                 "(routes, iptables chains, nft table) to the kernel, before FRR starts.")
    ap.add_argument("--state-dir", help="installed state (default: $%s or %s)"
                    % (constants.STATE_DIR_ENV, constants.STATE_DIR))
    ap.add_argument("--check", action="store_true", help="report what would change, change nothing")
    args = ap.parse_args(argv)
    setup_logging()
    return restore(Paths(args.state_dir), check=args.check)
