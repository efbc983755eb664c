# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conntrack table of a host: its sizing rule, and reading, planning and setting
``net.netfilter.nf_conntrack_max`` / ``nf_conntrack_buckets`` (standard library only).

**The rule** (:func:`firewall.conntrack_max` applies it to a hypervisor):
``max(CONNTRACK_FLOOR, CONNTRACK_BASE + sum of the local instances' conn_limit)``, so the
instances together, each at its cap, still leave ``CONNTRACK_BASE`` entries for the host's own
flows and inbound floating-IP connections (which no per-instance cap counts). Buckets: a power of
two holding at most ``CONNTRACK_PER_BUCKET`` entries each when the table is full; only ever raised
(a larger hash table costs 8 bytes a bucket, a rehash to a smaller one gains nothing).

**Where it cannot be set.** ``nf_conntrack_max`` is one value per host: in a non-init network
namespace (a container) the kernel shows it mode 0444 (writing fails with EACCES: "Permission
denied"; ``sysctl -w`` says "Invalid argument"), and a container's ``/proc/sys`` is often mounted
read-only (EROFS). :func:`writable` asks the kernel (``access(W_OK)``, which applies both), so
such a host is only checked: the current value against the wanted one.
"""

from __future__ import annotations

import os

from ansible_collections.ocs.l3.plugins.module_utils.files import write_if_different

CONNTRACK_BASE = 65536
"""Entries a hypervisor keeps beyond its instances' caps: its own flows, inbound connections to
floating IPs (not capped per instance), replies in flight."""
CONNTRACK_FLOOR = 262144
"""nf_conntrack_max is never sized below this (the kernel's own default on a host with more than 4 GiB of memory)."""
CONNTRACK_PER_BUCKET = 4
"""Entries per hash bucket of a full table."""

MAX, BUCKETS = "nf_conntrack_max", "nf_conntrack_buckets"
KEYS = (MAX, BUCKETS)


def sized_max(limits):
    """The table for instances whose caps are ``limits`` (the rule above)."""
    return max(CONNTRACK_FLOOR, CONNTRACK_BASE + sum(limits))


def buckets_for(maximum):
    """Hash buckets for a table of ``maximum`` entries: the smallest power of two with at most
    :data:`CONNTRACK_PER_BUCKET` entries per bucket."""
    buckets = 1
    while buckets * CONNTRACK_PER_BUCKET < maximum:
        buckets *= 2
    return buckets


def sysctl_path(key, proc="/proc"):
    return os.path.join(proc, "sys", "net", "netfilter", key)


def writable(path):
    """Whether this process may set the sysctl at ``path``: False where it is missing, where the
    kernel keeps it per host (mode 0444 in a non-init network namespace), or where /proc/sys is
    mounted read-only (access(2) honours both, for root too)."""
    return os.path.exists(path) and os.access(path, os.W_OK)


def read(proc="/proc"):
    """{key: {"value": int or None (missing: nf_conntrack not loaded), "writable": bool}}."""
    state = {}
    for key in KEYS:
        path = sysctl_path(key, proc)
        try:
            with open(path) as fh:
                value = int(fh.read().strip())
        except (OSError, ValueError):
            value = None
        state[key] = {"value": value, "writable": writable(path)}
    return state


def wanted(maximum, buckets=0):
    """{key: wanted value}; ``buckets`` 0: :func:`buckets_for` ``maximum``."""
    if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 1:
        raise ValueError("nf_conntrack_max must be a positive integer, got %r" % (maximum,))
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 0:
        raise ValueError("nf_conntrack_buckets must be a positive integer (0: from the maximum), got %r"
                         % (buckets,))
    return {MAX: maximum, BUCKETS: buckets or buckets_for(maximum)}


def plan(state, want):
    """[(key, current, wanted)] to set: the maximum when it differs, the buckets when fewer."""
    out = []
    for key in KEYS:
        current = state[key]["value"]
        if current is None or (current != want[key] if key == MAX else current < want[key]):
            out.append((key, current, want[key]))
    return out


def shortfall(state, want):
    """What a host that cannot set the values lacks: [(key, current, wanted)] where the current
    value is missing or smaller (a larger table than wanted is fine)."""
    return [(k, state[k]["value"], want[k]) for k in KEYS if state[k]["value"] is None or state[k]["value"] < want[k]]


def apply(changes, proc="/proc"):
    """Write each (key, current, wanted); OSError names the key."""
    for key, dummy, value in changes:
        path = sysctl_path(key, proc)
        try:
            with open(path, "w") as fh:
                fh.write("%d\n" % value)
        except OSError as exc:
            raise OSError(exc.errno, "cannot set net.netfilter.%s to %d: %s" % (key, value, exc.strerror))


HEADER = "# ocs-l3 (ocs_firewall): the conntrack table of this hypervisor; rewritten on every run\n"


def sysctl_conf(want):
    """The text of ``constants.CONNTRACK_SYSCTL_PATH`` for ``want``."""
    return HEADER + "".join("net.netfilter.%s = %d\n" % (k, want[k]) for k in KEYS)


MODULES_LOAD = "nf_conntrack\n"
"""The modules-load.d file's content: nf_conntrack loaded at boot, before sysctl.d sets its table."""


def converge(module, maximum, buckets=0, manage=True, readonly="warn", sysctl_file=None, modules_file=None,
             proc="/proc"):
    """Run by a module (ocs_conntrack; ocs_iptables_chains' ``conntrack_table``): set the table's size
    where this host may (the maximum exactly, the buckets only raised) and, with the two paths, keep
    it for the next boot (``sysctl_file``, ``modules_file``: written whole when they differ); where it
    may not, report what is smaller than wanted (``module.warn``, or fail with ``readonly='fail'``).
    Returns the result dict (``changed`` among it); fails the module on bad input or a failed write."""
    try:
        want = wanted(maximum, buckets)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    state = read(proc)
    current = {k: v["value"] for k, v in state.items()}
    settable = manage and state[MAX]["writable"]
    keep = dict(want, **{BUCKETS: max(current[BUCKETS] or 0, want[BUCKETS])})
    out = dict(current=current, wanted=want, settable=settable, set=[], short=[], persisted=[],
               sysctl_conf=sysctl_conf(keep))
    if settable:
        # the buckets may stay read-only where the maximum is not (older kernels): leave them then
        changes = [c for c in plan(state, want) if state[c[0]]["writable"]]
        out["set"] = ["%s %s -> %d" % (k, old, new) for k, old, new in changes]
        try:
            if changes and not module.check_mode:
                apply(changes, proc)
            out["persisted"] = _persist([(sysctl_file, out["sysctl_conf"]), (modules_file, MODULES_LOAD)],
                                        module.check_mode)
        except OSError as exc:
            module.fail_json(msg=str(exc), **out)
        out["changed"] = bool(changes or out["persisted"])
        return out
    out["changed"] = False
    out["short"] = ["%s %s < %d" % (k, "missing" if v is None else v, w) for k, v, w in shortfall(state, want)]
    if out["short"]:
        why = ("this host may not set them (a container, or a non-init network namespace: the kernel keeps them "
               "per host)" if manage else "ocs_firewall_conntrack_manage is false")
        msg = "conntrack table smaller than wanted: %s; %s. Set them on the host that owns the kernel." % (
            ", ".join(out["short"]), why)
        if readonly == "fail":
            module.fail_json(msg=msg, **out)
        module.warn(msg)
    return out


def _persist(files, check):
    """Write each (path, text) whose content differs (paths None are skipped); the paths written."""
    return [path for path, text in files if path and write_if_different(path, text, check=check)]
