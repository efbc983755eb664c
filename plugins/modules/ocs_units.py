#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several systemd units enabled and started in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_units
version_added: 0.6.0
short_description: Enable and start several systemd units in one module run
description:
  - >-
    For each unit, in the order given, C(systemctl enable) when C(systemctl is-enabled) does not say it is
    enabled (or static, indirect, generated or alias, that is enabled by other means), and C(systemctl start) when
    C(systemctl is-active) says it is neither active nor activating nor reloading. A converged host costs two
    queries per unit and changes nothing.
  - >-
    One task per host where a task per unit costs Ansible's per-task work each (issue 19, push cost). Never
    stops, restarts or reloads a unit (handlers do that).
  - >-
    Supports check mode (reports what it would do); a unit whose file does not exist yet is then reported as
    to be enabled and started.
options:
  units:
    description: The units.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The unit's full name (C(ocs-l3-agent.service), C(ocs-l3-status.timer)).
        type: str
        required: true
      enabled:
        description: Enable it (start at boot).
        type: bool
        default: true
      started:
        description: Start it now when it is not running.
        type: bool
        default: true
      manage:
        description: False leaves this unit alone.
        type: bool
        default: true
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Enable and start the agent and the status timer
  ocs.l3.ocs_units:
    units:
      - name: ocs-l3-agent.service
      - name: ocs-l3-status.timer
"""

RETURN = r"""
actions:
  description: What was done (check mode, what would be), as C(enable NAME) and C(start NAME).
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils import units as units_lib

plan = units_lib.plan


def main():
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(type="list", elements="dict", required=True, options=units_lib.unit_options()),
        ),
        supports_check_mode=True,
    )
    done = units_lib.converge(module, module.params["units"])
    module.exit_json(changed=bool(done), actions=done)


if __name__ == "__main__":
    main()
