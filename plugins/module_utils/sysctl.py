# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel settings a module checks before it applies anything (routing, the NAT tier)."""

from __future__ import annotations


def read_sysctl(key):
    """A kernel setting's value as `sysctl -n` prints it, or None when it does not exist. A key
    written with slashes (``net/ipv4/conf/eth0.100/rp_filter``: an interface name with a dot)
    is a path under /proc/sys as it stands, as sysctl(8) reads it."""
    path = key if "/" in key else key.replace(".", "/")
    try:
        with open("/proc/sys/" + path.lstrip("/")) as fh:
            return " ".join(fh.read().split())
    except OSError:
        return None


def sysctl_problems(wanted, read):
    """Pure: [(key, wanted, found)] for each setting of ``wanted`` that ``read(key)`` does not return."""
    out = []
    for key in sorted(wanted):
        found = read(key)
        if found != str(wanted[key]):
            out.append((key, str(wanted[key]), "(none)" if found is None else found))
    return out


def problem(wanted, hint="", read=read_sysctl):
    """The failure message for the settings of ``wanted`` that do not read as given, or None."""
    wrong = sysctl_problems(wanted, read)
    if not wrong:
        return None
    return "%s must be %s, found %s%s" % (
        ", ".join(k for k, dummy, dummy in wrong), ", ".join(w for dummy, w, dummy in wrong),
        ", ".join(f for dummy, dummy, f in wrong), " (%s)" % hint if hint else "")
