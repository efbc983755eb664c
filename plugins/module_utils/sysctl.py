# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel settings a module sets (and keeps for the next boot) or checks before it applies anything (routing,
the NAT tier)."""

from __future__ import annotations


from ansible_collections.ocs.l3.plugins.module_utils.files import write_if_different


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


def write_sysctl(key, value):
    """Set a kernel setting through /proc/sys (as `sysctl -w` does); OSError when it cannot be set."""
    path = key if "/" in key else key.replace(".", "/")
    with open("/proc/sys/" + path.lstrip("/"), "w") as fh:
        fh.write(str(value))


def conf_text(wanted, owner):
    """Pure: the sysctl.d file that sets ``wanted`` at boot, sorted, one ``key = value`` line each."""
    lines = ["# Managed by ocs-l3 (%s): the kernel settings it needs, set again at each boot." % owner]
    lines += ["%s = %s" % (key, wanted[key]) for key in sorted(wanted)]
    return "\n".join(lines) + "\n"


def settle(wanted, conf_file, owner, check=False, read=read_sysctl, write=write_sysctl):
    """Set each setting of ``wanted`` that does not read as given, and keep them all in ``conf_file``
    (written whole, atomically, when its content differs). Returns what it changed (check mode:
    would change): ``["key=value", ..., conf_file]``. ValueError naming the setting that cannot be set
    (a read-only /proc/sys: a container's), nothing written to ``conf_file`` then."""
    changed = []
    if not wanted:
        return changed
    for key, want, dummy in sysctl_problems(wanted, read):
        changed.append("%s=%s" % (key, want))
        if not check:
            try:
                write(key, want)
            except OSError as exc:
                raise ValueError("cannot set %s to %s: %s" % (key, want, exc.strerror or exc)) from None
    if write_if_different(conf_file, conf_text(wanted, owner), check=check):
        changed.append(conf_file)
    return changed


def options():
    """The argument spec of the options :func:`settle_or_fail` acts on (documented once, in the
    doc fragment ``ocs.l3.sysctl``)."""
    return dict(sysctls=dict(type="dict", default={}), sysctl_hint=dict(type="str", default=""),
                sysctl_file=dict(type="path"))


def settle_or_fail(module, owner):
    """An apply module's first step (its ``sysctls``, ``sysctl_file`` and ``sysctl_hint``): with a
    ``sysctl_file``, set and keep what differs (:func:`settle`); then each setting must read as given
    (check mode: unless this run would set it). Fails the module, nothing applied, otherwise.
    Returns what was set (check mode: would be)."""
    p = module.params
    done = []
    if p["sysctl_file"]:
        try:
            done = settle(p["sysctls"], p["sysctl_file"], owner, check=module.check_mode)
        except (OSError, ValueError) as exc:
            module.fail_json(msg="%s (nothing applied)" % exc)
    wrong = None if module.check_mode and done else problem(p["sysctls"], p["sysctl_hint"])
    if wrong:
        module.fail_json(msg=wrong)
    return done
