#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply frr.conf to running FRR incrementally, then re-apply changed import policies."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_frr_reload
version_added: 0.4.0
short_description: Make running FRR equal frr.conf with frr-reload.py, without restarting anything
description:
  - Runs C(frr-reload.py --test) to compute the difference between O(src) and the running
    configuration; when there is none, nothing is touched (C(changed=false)).
  - Otherwise runs C(frr-reload.py --reload), which sends only the differing commands to the daemons.
    Sessions stay up unless the difference itself resets them (router ASN, router-id, a neighbor's
    remote-as or password).
  - Then, for every changed prefix-list or route-map, sends C(clear bgp ipv4 unicast PEER soft in) to
    the neighbors and peer-groups whose import route-map uses it (a route refresh, not a reset), so
    that a widened or narrowed import policy takes effect at once; C(clear bgp ipv6 unicast PEER soft in)
    for an import route-map of the IPv6 family (a dual-stack fabric).
  - >-
    The host's own lines are kept as they run: C(hostname) (FRR's default is the system's) and the
    kernel forwarding switches (C(ip forwarding), C(ipv6 forwarding)), so a reload never flips a
    host's forwarding sysctls.
  - When C(--reload) fails because a daemon died under it (FRR 8.4's bgpd crashes removing a
    peer-group still in use; watchfrr restarts it), waits until C(show watchfrr) reports every daemon
    Up and the remaining difference is stable, reloads again, at most twice, until C(--test) finds no
    difference; then warns (that daemon's sessions were reset) instead of failing. Otherwise, or
    after 120 s, the task fails with what it saw last.
  - The file loaded is a private copy named C(frr.conf) in a private config directory (C(--confdir)), so
    frr-reload.py does not end with C(vtysh write), which would rewrite C(/etc/frr/frr.conf) from the
    running configuration; if a version still writes it, the module puts the file back as it was, so the
    next run finds nothing changed.
  - >-
    With O(established) and O(wait_established), then waits (also when nothing differed, as FRR may just have
    restarted with this file) until the BGP sessions of those keys are Established, and returns those that
    are not in RV(not_established); the reload and the wait are one module run.
  - Supports check mode (reports the difference; no wait) and diff mode.
options:
  src:
    description: The frr.conf to apply.
    type: path
    default: /etc/frr/frr.conf
  soft_in:
    description: Send C(soft in) clears after a changed import policy.
    type: bool
    default: true
  frr_reload:
    description: Path of frr-reload.py (Debian package frr-pythontools).
    type: path
    default: /usr/lib/frr/frr-reload.py
  established:
    description:
      - Session keys (a peer address, or the interface of an unnumbered session) to wait for, as
        C(show bgp ipv4 unicast summary json) names them; a key it does not list is ignored.
    type: list
    elements: str
    default: []
  wait_established:
    description: Seconds to wait for O(established) to be Established (0 - do not wait).
    type: int
    default: 0
  vty_socket:
    description: Directory of the daemons' vty sockets, when not the default (tests, pathspaces).
    type: path
  bindir:
    description:
      - Directory of the vtysh this module and frr-reload.py run; default the directory of the vtysh on PATH.
      - >-
        Secrets: the BGP password never reaches a process argument. frr-reload.py deletes lines with
        C(vtysh -c) (visible to every local user in /proc), and FRR 8.4's does not delete a removed
        neighbor password at all; so this module removes every running password line the new config
        does not hold, as C(no neighbor X password) from a mode 0600 file through C(vtysh -f), before
        frr-reload.py runs. In the same file, first, it sets the new password lines of neighbors and
        peer-groups that already run without one, so a peer-group losing its password because each
        member now has its own resets no session. Every file frr-reload.py writes is created under
        umask 077.
    type: path
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Reload FRR
  ocs_frr_reload:
    src: /etc/frr/frr.conf
"""

RETURN = r"""
secrets_removed:
  description: Running neighbor password lines removed by this module (rotated or removed; never printed).
  type: int
  returned: always
lines_to_add:
  description: Commands frr-reload.py added (or would add).
  type: list
  returned: always
lines_to_delete:
  description: Commands frr-reload.py removed (or would remove).
  type: list
  returned: always
soft_in:
  description: Neighbors and peer-groups sent C(clear bgp ipv4 unicast ... soft in).
  type: list
  returned: always
recovered:
  description: The first reload failed and FRR converged on a retry (a daemon restarted).
  type: bool
  returned: when true
not_established:
  description:
    - Of O(established), the sessions not Established when the wait ended (C(vtysh ...) with its error when
      vtysh could not be asked). The task does not fail for them (a peer may be down for its own reasons).
  type: list
  elements: str
  returned: when O(wait_established) is above 0 and not in check mode
"""

import json
import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import FRR_CONF_PATH, FRR_RELOAD

_HOST_OWNED_RE = re.compile(r"^(hostname \S+|(no )?ip(v6)? forwarding)$")
_LOG_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def host_owned_lines(running):
    """Lines of a running-config that belong to the host, not to ocs-l3:
    ``hostname`` (the system's) and ``[no] ip[v6] forwarding`` (the sysctls)."""
    return [ln.strip() for ln in running.splitlines() if _HOST_OWNED_RE.match(ln.strip())]


def parse_test_output(out):
    """frr-reload.py --test output -> (lines to delete, lines to add)."""
    sections = {"delete": [], "add": []}
    current = None
    for line in out.splitlines():
        if line.startswith("Lines To Delete"):
            current = "delete"
        elif line.startswith("Lines To Add"):
            current = "add"
        elif current and line.strip() and not set(line.strip()) <= {"="} and not _LOG_RE.match(line):
            sections[current].append(line.rstrip())
    return sections["delete"], sections["add"]


SECRET_UMASK = 0o077
"""frr-reload.py's own files (reload-*.txt, the lines to add) carry the password: owner only."""
_PASSWORD_RE = re.compile(r"^\s*(?:router bgp \S+(?: vrf \S+)?\s+)?neighbor\s+(\S+)\s+password\s")


def _secret_lines(text):
    """{(router bgp context, neighbor): line} of the neighbor password lines of a config."""
    out, ctx = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            ctx = line.strip() if line.startswith("router bgp") else None
        m = _PASSWORD_RE.match(line)
        if m and ctx:
            out[(ctx, m.group(1))] = line.strip()
    return out


def new_secrets(running, conf):
    """vtysh -f text setting, before anything else, the password lines of the new config for
    neighbors and peer-groups that already run and have no password line yet. So a peer-group whose
    password goes because each member now has its own (per-link passwords) loses it only after the
    members hold theirs: measured with FRR 8.4, a member given the password it inherited keeps its
    session, and so does a member with its own when the group's goes; frr-reload.py alone deletes the
    group's first (a reset) and sets the members' after (another)."""
    have = _secret_lines(running)
    known, ctx = set(), None
    for line in running.splitlines():
        if line and not line.startswith(" "):
            ctx = line.strip() if line.startswith("router bgp") else None
        parts = line.split()
        if ctx and parts[:1] == ["neighbor"] and len(parts) > 1:
            known.add((ctx, parts[1]))
    out = []
    for (ctx, neighbor), line in sorted(_secret_lines(conf).items()):
        if (ctx, neighbor) not in have and (ctx, neighbor) in known:
            out += [ctx, " " + line, "exit"]
    return "".join(ln + "\n" for ln in out)


def stale_secrets(running, conf, absent=None):
    """vtysh -f text removing the running password lines the new config does not hold as they are:
    ``no neighbor X password`` in its ``router bgp`` context, with no secret in it; "" when none.
    ``absent`` True: only those whose neighbor has no password line in the new config (removed);
    False: only those the new config gives another value (rotated); None: both.

    Why here and not in frr-reload.py: it would delete such a line with ``vtysh -c`` (a process
    argument, readable by every local user), and FRR 8.4's frr-reload.py does not delete a removed
    neighbor password at all (measured: the old password stays configured)."""
    want = _secret_lines(conf)
    out = []
    for (ctx, neighbor), line in sorted(_secret_lines(running).items()):
        if want.get((ctx, neighbor)) != line and absent in (None, (ctx, neighbor) not in want):
            out += [ctx, " no neighbor %s password" % neighbor, "exit"]
    return "".join(ln + "\n" for ln in out)


def remove_secret_lines(module, vtysh, text):
    """Apply :func:`new_secrets` and :func:`stale_secrets` from a 0600 file (never through argv)."""
    if not text:
        return
    fd, path = tempfile.mkstemp(prefix="ocs-frr-secret-", suffix=".conf")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        rc, out, err = module.run_command(vtysh + ["-f", path])
        if rc != 0:
            module.fail_json(msg="setting or removing a BGP password failed: %s" % (err or out).strip())
    finally:
        os.unlink(path)


def changed_policies(lines):
    """Names of prefix-lists (IPv4 and IPv6) and route-maps touched by diff lines."""
    names = set()
    for line in lines:
        parts = line.strip().split()
        if parts[:1] == ["no"]:
            parts = parts[1:]
        if parts[:2] in (["ip", "prefix-list"], ["ipv6", "prefix-list"]) and len(parts) > 2:
            names.add(parts[2])
        elif parts[:1] == ["route-map"] and len(parts) > 1:
            names.add(parts[1])
    return names


def soft_in_peers(conf, changed, family="ipv4"):
    """Neighbors/peer-groups of ``conf`` (frr.conf text) whose import route-map
    in address family ``family`` (ipv4, ipv6) is in ``changed`` or matches a
    prefix-list in ``changed``, as [(key, is_peer_group)], sorted."""
    rmaps, current = set(changed), None
    groups = set()
    lines = conf.splitlines()
    for line in lines:
        parts = line.split()
        if line.startswith("route-map ") and len(parts) >= 2:
            current = parts[1]
        elif parts[:1] == ["match"] and parts[1:2] in (["ip"], ["ipv6"]) and parts[2:4] == ["address", "prefix-list"] \
                and len(parts) == 5 and current and parts[4] in changed:
            rmaps.add(current)
        elif not line.startswith(" "):
            current = None
        if len(parts) == 3 and parts[0] == "neighbor" and parts[2] == "peer-group":
            groups.add(parts[1])
    peers, af = set(), None
    for line in lines:
        parts = line.split()
        if parts[:1] == ["address-family"]:
            af = parts[1] if len(parts) > 1 else None
        elif parts[:1] == ["exit-address-family"]:
            af = None
        if len(parts) == 5 and parts[0] == "neighbor" and parts[2] == "route-map" and parts[4] == "in" \
                and parts[3] in rmaps and af == family:
            peers.add((parts[1], parts[1] in groups))
    return sorted(peers)


def clear_command(key, is_group, family="ipv4"):
    return "clear bgp %s unicast %s%s soft in" % (family, "peer-group " if is_group else "", key)


TARGET = FRR_CONF_PATH  # what frr-reload.py's closing `vtysh write` would rewrite


def link_vtysh_conf(confdir, real=os.path.dirname(TARGET)):
    """Give frr-reload.py's ``--confdir`` (a private directory holding the file to load, named
    frr.conf) the host's vtysh.conf, which it and vtysh read there. Loading a file named ``<confdir>/frr.conf``,
    frr-reload.py skips its closing ``vtysh write`` (FRR 8.4: only a file other than the config
    dir's frr.conf is "made persistent"), which rewrote every daemon's running configuration into
    /etc/frr/frr.conf (0.3-0.5 s) for the module to put back."""
    src = os.path.join(real, "vtysh.conf")
    if os.path.exists(src):
        os.symlink(src, os.path.join(confdir, "vtysh.conf"))


def read_file(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def restore_file(path, content):
    """Put ``content`` back at ``path`` if it changed (atomic; mode and owner kept)."""
    if content is None or read_file(path) == content:
        return
    st = os.stat(path)
    tmp = "%s.ocs-restore" % path
    with open(tmp, "wb") as fh:
        fh.write(content)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)


DAEMON_DOWN = re.compile(r"is not running|connecting to \S+\.\.\.failed")
WATCHFRR_STATE = re.compile(r"^\s+(zebra|[a-z]+d)\s+(\S+)\s*$", re.M)  # zebra: the one name without a final d


def daemons_down(module, vtysh):
    """Daemons watchfrr does not report Up (or vtysh's complaint); [] when all are up."""
    rc, out, err = module.run_command(vtysh + ["-c", "show watchfrr"])
    states = WATCHFRR_STATE.findall(out) if rc == 0 else []
    if states:
        return ["%s %s" % (d, st) for d, st in states if st != "Up"]
    rc, out, err = module.run_command(vtysh + ["-c", "show running-config"])  # no watchfrr
    down = DAEMON_DOWN.search(out + err)
    return [down.group(0)] if down else ([] if rc == 0 else [(err or out).strip()[-200:]])


def recover(module, base, tmp, vtysh, wait=120, reloads=2):
    """After a failed --reload: wait until watchfrr reports every daemon Up
    again (it restarts one that died, e.g. FRR 8.4's bgpd removing a
    peer-group in use, 5 s later, 60 s or more for a second crash) and the
    remaining difference is the same twice in a row (the restarted daemon has
    loaded its configuration), then reload it, at most ``reloads`` times,
    until --test finds none. Returns (converged, what was seen last)."""
    deadline = time.monotonic() + wait
    last, previous = "no daemon answered", None
    while time.monotonic() < deadline:
        time.sleep(1)
        down = daemons_down(module, vtysh)
        if down:
            last, previous = "not up: %s" % ", ".join(down), None
            continue  # a reload now would only fail again
        rc, out, err = module.run_command(base + ["--test", tmp], umask=SECRET_UMASK)
        if rc != 0:
            last, previous = "frr-reload.py --test: %s" % (err or out).strip()[-200:], None
            continue
        diff = parse_test_output(out)
        if diff == ([], []):
            return True, "converged"
        last = "still different: delete %s, add %s" % (diff[0][:5], diff[1][:5])
        if diff != previous:
            previous = diff
            continue
        if reloads == 0:
            return False, last
        reloads, previous = reloads - 1, None
        module.run_command(base + ["--reload", tmp], umask=SECRET_UMASK)
    return False, last


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", default=FRR_CONF_PATH),
            soft_in=dict(type="bool", default=True),
            frr_reload=dict(type="path", default=FRR_RELOAD),
            vty_socket=dict(type="path"),
            bindir=dict(type="path"),
            established=dict(type="list", elements="str", default=[]),
            wait_established=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    bindir = p["bindir"] or os.path.dirname(module.get_bin_path("vtysh", required=True))
    vtysh = [os.path.join(bindir, "vtysh")]
    sock = ["--vty_socket", p["vty_socket"]] if p["vty_socket"] else []
    try:
        with open(p["src"]) as fh:
            conf = fh.read()
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (p["src"], exc))
    rc, running, err = module.run_command(vtysh + sock + ["-c", "show running-config"])
    if rc != 0:
        module.fail_json(msg="FRR is not running or vtysh cannot reach it: %s" % (err or running).strip())
    confdir = tempfile.mkdtemp(prefix="ocs-frr-")
    tmp = os.path.join(confdir, os.path.basename(TARGET))
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write("".join(ln + "\n" for ln in host_owned_lines(running)) + conf)
        link_vtysh_conf(confdir)
        base = [p["frr_reload"], "--stdout", "--bindir", bindir, "--confdir", confdir] + sock
        rc, out, err = module.run_command(base + ["--test", tmp], umask=SECRET_UMASK)
        if rc != 0:
            module.fail_json(msg="frr-reload.py --test failed: %s" % (err or out).strip())
        delete, add = parse_test_output(out)
        secrets = stale_secrets(running, conf)
        result = dict(changed=bool(delete or add or secrets), lines_to_delete=delete, lines_to_add=add, soft_in=[],
                      secrets_removed=secrets.count(" no neighbor "))
        if module._diff:
            result["diff"] = dict(before="".join(ln + "\n" for ln in delete),
                                  after="".join(ln + "\n" for ln in add),
                                  before_header="running (lines to delete)",
                                  after_header="%s (lines to add)" % p["src"])
        if module.check_mode or not result["changed"]:
            exit_after_wait(module, vtysh + sock, result)
        saved = read_file(TARGET)
        remove_secret_lines(module, vtysh + sock, new_secrets(running, conf) + secrets)
        rc, out, err = module.run_command(base + ["--reload", tmp], umask=SECRET_UMASK)
        # frr-reload.py ends a reload from any file but frr.conf itself with
        # `vtysh write`, which rewrites frr.conf from the running config: put our
        # file back, or the next run would find frr.conf changed (not idempotent).
        restore_file(TARGET, saved)
        if rc != 0:
            first = (err or out).strip()
            converged, last = recover(module, base, tmp, vtysh + sock)
            restore_file(TARGET, saved)
            if not converged:
                module.fail_json(msg="frr-reload.py --reload failed, and FRR did not converge after it (%s): %s"
                                 % (last, first), **result)
            result["recovered"] = True
            module.warn("frr-reload.py --reload failed, then FRR converged to %s: a daemon restarted under it "
                        "(watchfrr reloads frr.conf), so its sessions may have been reset. First error: %s"
                        % (p["src"], first.splitlines()[-1] if first else "?"))
    finally:
        shutil.rmtree(confdir, ignore_errors=True)
    if p["soft_in"]:
        result["soft_in"] = soft_in(module, vtysh + sock, conf, changed_policies(delete + add))
    exit_after_wait(module, vtysh + sock, result)


def exit_after_wait(module, vtysh, result):
    """Exit with ``result``, after the wait for the sessions the task named (not in check mode)."""
    p = module.params
    if p["wait_established"] > 0 and not module.check_mode:
        result["not_established"] = wait_established(module, vtysh, p["established"], p["wait_established"])
    module.exit_json(**result)


def not_established(summary, keys):
    """Pure: of ``keys``, those whose session in ``summary`` (``show bgp ipv4 unicast summary json``)
    is not Established, in the order given. A key the summary does not list is no session of this
    host (the role gives each uplink's peer address and interface; a numbered session is listed by
    its address, an unnumbered one by its interface)."""
    peers = summary.get("peers", {}) if isinstance(summary, dict) else {}
    return [k for k in keys if k in peers and (peers[k] or {}).get("state") != "Established"]


def wait_established(module, vtysh, keys, seconds, interval=1.0):
    """Poll the IPv4 summary until every session of ``keys`` is Established or ``seconds`` pass;
    return those that are not (or the vtysh error)."""
    if not keys:
        return []
    deadline = time.monotonic() + seconds
    while True:
        rc, out, err = module.run_command(vtysh + ["-c", "show bgp ipv4 unicast summary json"])
        try:
            down = not_established(json.loads(out), keys) if rc == 0 else ["vtysh: %s" % (err or out).strip()[-200:]]
        except ValueError:
            down = ["vtysh: %s" % out.strip()[-200:]]
        if not down or time.monotonic() + interval > deadline:
            return down
        time.sleep(interval)


def soft_in(module, vtysh, conf, changed):
    """Send the soft-in clears of the import policies in ``changed`` (IPv4, then IPv6); return them."""
    sent = []
    for family in ("ipv4", "ipv6"):
        for key, is_group in soft_in_peers(conf, changed, family):
            cmd = clear_command(key, is_group, family)
            rc, out, err = module.run_command(vtysh + ["-c", cmd])
            if rc != 0:
                module.warn("%s failed: %s" % (cmd, (err or out).strip()))
            sent.append(cmd)
    return sent


if __name__ == "__main__":
    main()
