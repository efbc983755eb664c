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

Per-host values are kept for the :data:`HOSTS_KEPT` hosts used last (a ToR
asks for each of its hypervisors' owned prefixes while its own files are
computed), so a walk over the whole fleet (a render, ``ocs-plan``) holds a
bounded number of hosts' values whatever its size;
``artifacts.fabric_artifacts`` also drops each host's once its files are done
(:func:`forget`). An object without a ``memo`` (a test's stand-in fabric) is
computed every time.
"""

import collections
import functools

HOSTS_KEPT = 64
"""How many hosts' values are kept (the least recently used go first)."""

_FABRIC, _HOSTS = "fabric", "hosts"


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
    """``fn(fab, host)``, computed once per host of a fabric while the host is among the
    :data:`HOSTS_KEPT` used last (until :func:`forget`)."""
    key = _name(fn)

    @functools.wraps(fn)
    def once(fab, host):
        memo = getattr(fab, "memo", None)
        if memo is None:
            return fn(fab, host)
        hosts = memo.get(_HOSTS)
        if hosts is None:
            hosts = memo[_HOSTS] = collections.OrderedDict()
        values = hosts.get(host.name)
        if values is None:
            values = hosts[host.name] = {}
            if len(hosts) > HOSTS_KEPT:
                hosts.popitem(last=False)
        else:
            hosts.move_to_end(host.name)
        if key not in values:
            values[key] = fn(fab, host)
        return values[key]

    return once


def kept_hosts(fab):
    """The names of the hosts whose values are kept, least recently used first."""
    return list((getattr(fab, "memo", None) or {}).get(_HOSTS) or [])


def forget(fab, host=None):
    """Drop what is kept for ``host`` (its files are done), or for every host."""
    hosts = (getattr(fab, "memo", None) or {}).get(_HOSTS)
    if hosts is None:
        return
    if host is None:
        hosts.clear()
    else:
        hosts.pop(host.name, None)
