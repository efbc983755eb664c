#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile the kernel's routes of one protocol with a desired ip-batch file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_route_table
version_added: 0.4.0
short_description: Make the kernel's ocs-l3 routes equal a desired ip-batch file
description:
  - Reads the desired routes (canonical C(ip -batch) lines rendered by ocs-l3) from O(src).
  - Reads the kernel's IPv4 routes of protocol O(protocol) from the main table, and the addresses
    on the interfaces the file names.
  - >-
    Adds or replaces what differs and (with O(prune)) deletes routes of O(protocol) that the file
    no longer lists, in one C(ip -force -batch) call. Routes of any other protocol are never
    touched. A desired route goes in at metric 0: a route of another protocol for the same prefix
    at another metric (zebra's BGP routes: 20) stays beside it and loses to it; one at metric 0
    (the same kernel slot) is reported and skipped.
  - >-
    Every line must be one of the canonical forms ocs-l3 renders, with protocol O(protocol); a line
    that is not fails the task, naming the file and the line, before anything is applied.
  - Lines for interfaces that do not exist (an instance not started yet) are reported, not applied,
    and do not fail the task.
  - Addresses are added, never removed (an instance's tap disappears with the instance).
  - Supports check mode and diff mode.
options:
  src:
    description: Path of the desired ip-batch file on the host.
    type: path
    required: true
  protocol:
    description: Route protocol number that marks routes as ours.
    type: int
    default: 211
  prune:
    description:
      - >-
        Delete our routes that the file no longer lists. False adds and replaces only
        (make before break: C(playbooks/site.yml) prunes after FRR, so a prefix moving from a
        static route to BGP, or back, is never without a route).
    type: bool
    default: true
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Reconcile instance and rack routes
  ocs_route_table:
    src: /etc/ocs-l3/routes.batch
"""

RETURN = r"""
commands:
  description: ip-batch commands applied (or that would be, in check mode).
  type: list
  returned: always
missing_interfaces:
  description: Interfaces named by the file that do not exist; their lines were skipped.
  type: list
  returned: always
conflicts:
  description: Desired prefixes held by a route of another protocol; skipped.
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import ROUTE_PROTOCOL
from ansible_collections.ocs.l3.plugins.module_utils.netns import module_runner
from ansible_collections.ocs.l3.plugins.module_utils.route_table import BATCH_ARGV, KernelError, kernel_state, plan, read_lines


def main():
    module = AnsibleModule(
        argument_spec=dict(src=dict(type="path", required=True), protocol=dict(type="int", default=ROUTE_PROTOCOL),
                           prune=dict(type="bool", default=True)),
        supports_check_mode=True,
    )
    src, protocol = module.params["src"], module.params["protocol"]
    try:
        desired = read_lines(src, protocol)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (src, exc))
    except ValueError as exc:
        module.fail_json(msg="%s (nothing applied)" % exc)
    try:
        ours, every, addresses, links = kernel_state(module_runner(module), protocol)
    except KernelError as exc:
        module.fail_json(msg=str(exc))
    commands, missing, conflicts, before, after = plan(desired, ours, every, addresses, links, protocol,
                                                       module.params["prune"])
    result = dict(changed=bool(commands), commands=commands, missing_interfaces=missing, conflicts=conflicts)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header="kernel routes (proto %d)" % protocol,
                              after_header=src)
    warnings = []
    if missing:
        warnings.append("interfaces not present, their lines skipped: %s" % ", ".join(missing))
    warnings.extend(conflicts)
    for w in warnings:
        module.warn(w)
    if module.check_mode or not commands:
        module.exit_json(**result)
    rc, out, err = module.run_command(BATCH_ARGV, data="\n".join(commands) + "\n",
                                      binary_data=True)
    if rc != 0:
        module.fail_json(msg="ip -batch failed: %s" % err.strip(), rc=rc, stderr=err, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
