# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values that depend on a built fabric alone, or on it and one of its hosts,
computed once and kept on the fabric (``Fabric.memo``).

A fabric is not changed once :func:`fabric.build` returns it, and several
concerns of one host ask for the same value (its BGP policy, its filter and NAT
lines, the fabric-wide prefix lists): the frr, firewall, expected-state and
drain files of a host each need its policy; every ToR and hypervisor needs the
same fabric-wide lists. Callers only read what they get.

``artifacts.fabric_artifacts`` calls :func:`forget` once it has a host's
files (a ToR asks for its hypervisors' owned prefixes after them: those are
dropped at the end), so what is kept per host does not outlive the run.
An object without a ``memo`` (a test's stand-in fabric) is computed every time.
"""

import functools

_FABRIC = None  # the key of the fabric-wide values in Fabric.memo (host names are strings)


def _name(fn):
    return "%s.%s" % (fn.__module__, fn.__qualname__)


def per_fabric(fn):
    """``fn(fab)``, computed once per fabric."""
    key = _name(fn)

    @functools.wraps(fn)
    def once(fab):
        memo = getattr(fab, "memo", None)
        if memo is None:
            return fn(fab)
        values = memo.get(_FABRIC)
        if values is None:
            values = memo[_FABRIC] = {}
        if key not in values:
            values[key] = fn(fab)
        return values[key]

    return once


def per_host(fn):
    """``fn(fab, host)``, computed once per host of a fabric (until :func:`forget`)."""
    key = _name(fn)

    @functools.wraps(fn)
    def once(fab, host):
        memo = getattr(fab, "memo", None)
        if memo is None:
            return fn(fab, host)
        values = memo.get(host.name)
        if values is None:
            values = memo[host.name] = {}
        if key not in values:
            values[key] = fn(fab, host)
        return values[key]

    return once


def forget(fab, host=None):
    """Drop what is kept for ``host`` (its files are done), or for every host."""
    memo = getattr(fab, "memo", None)
    if memo is None:
        return
    if host is not None:
        memo.pop(host.name, None)
        return
    for name in [k for k in memo if k is not _FABRIC]:
        del memo[name]
