# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway network namespace to test a candidate in before it touches the host.

Used by the host modules (iptables chains, nft table) and by anything else that
applies kernel state on a host. Standard library only. ``run`` is the caller's
command runner, ``run(argv, data=None) -> (rc, stdout, stderr)`` (an
AnsibleModule's ``run_command`` fits through :func:`module_runner`), so this
file needs no Ansible.
"""

from __future__ import annotations

import contextlib
import uuid

from .constants import SCRATCH_NETNS_PREFIX


class NetnsError(Exception):
    """The scratch namespace could not be created."""


def module_runner(module):
    """``run`` for an AnsibleModule: binary-safe stdin, no check_rc."""
    def run(argv, data=None):
        if data is None:
            return module.run_command(argv)
        return module.run_command(argv, data=data, binary_data=True)
    return run


def exec_argv(ns, argv):
    """``argv`` run inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns] + list(argv)


@contextlib.contextmanager
def scratch_netns(run, what="scratch"):
    """Create a uniquely named namespace, yield its name, always delete it."""
    ns = "%s%s-%s" % (SCRATCH_NETNS_PREFIX, what, uuid.uuid4().hex[:8])
    rc, _out, err = run(["ip", "netns", "add", ns])
    if rc != 0:
        raise NetnsError("cannot create a scratch network namespace: %s" % err.strip())
    try:
        yield ns
    finally:
        run(["ip", "netns", "del", ns])
