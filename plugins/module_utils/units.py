# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd units enabled and started where they are not (ocs_units; ocs_install's ``units``)."""

from __future__ import annotations

ENABLED = ("enabled", "enabled-runtime", "static", "indirect", "generated", "alias", "linked", "linked-runtime")
"""`systemctl is-enabled` answers of a unit that starts at boot (by itself or by other means)."""
RUNNING = ("active", "activating", "reloading")
"""`systemctl is-active` answers of a unit that needs no start."""
UNIT_DIRS = ("/etc/systemd/", "/run/systemd/system/", "/lib/systemd/", "/usr/lib/systemd/")
"""A changed file under these needs `systemctl daemon-reload` before systemd acts on it."""


def unit_options():
    """The suboptions of a ``units`` list (ocs_units, and ocs_install's module and action): one spec."""
    return dict(
        name=dict(type="str", required=True),
        enabled=dict(type="bool", default=True),
        started=dict(type="bool", default=True),
        manage=dict(type="bool", default=True),
    )


def plan(units, query):
    """Pure: the (verb, unit) actions that bring ``units`` to their wanted state, in their order.
    ``query(verb, name)`` returns `systemctl VERB NAME`'s one-word answer (is-enabled, is-active)."""
    actions = []
    for unit in units:
        if not unit.get("manage", True):
            continue
        name = unit["name"]
        if unit.get("enabled", True) and query("is-enabled", name) not in ENABLED:
            actions.append(("enable", name))
        if unit.get("started", True) and query("is-active", name) not in RUNNING:
            actions.append(("start", name))
    return actions


def needs_daemon_reload(changed_paths):
    """Pure: whether a changed path is a unit file or drop-in systemd must re-read."""
    return any(path.startswith(UNIT_DIRS) for path in changed_paths)


def converge(module, units, changed_paths=()):
    """Run by a module: `systemctl daemon-reload` when ``changed_paths`` holds a unit file (and a
    unit is managed), then the actions of :func:`plan`. Returns the actions as strings (check mode:
    those it would take, nothing done); fails the module on the first systemctl that fails."""
    managed = [u for u in units if u.get("manage", True)]
    if not managed:
        return []
    systemctl = module.get_bin_path("systemctl", required=True)
    done = []
    if needs_daemon_reload(changed_paths):
        done.append("daemon-reload")
        if not module.check_mode:
            _run(module, systemctl, ["daemon-reload"], done)

    def query(verb, name):
        dummy, out, dummy = module.run_command([systemctl, verb, name])
        return (out.strip().splitlines() or [""])[-1]

    actions = plan(managed, query)
    done += ["%s %s" % action for action in actions]
    if not module.check_mode:
        for verb, name in actions:
            _run(module, systemctl, [verb, name], done)
    return done


def _run(module, systemctl, args, done):
    rc, out, err = module.run_command([systemctl] + args)
    if rc != 0:
        module.fail_json(msg="systemctl %s failed (rc %d): %s" % (" ".join(args), rc, (err or out).strip()),
                         unit_actions=done)
