#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare a host's running state with the expected state rendered for it (push side of ocs-l3-status)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_status
version_added: 0.4.0
short_description: Report where a fabric host differs from its rendered expected state
description:
  - Runs the collector of C(ocs-l3-status) (module_utils/host_status.py) on the host, the same code the
    host's timer runs. It compares BGP sessions and prefix counts, instance routes, our chains and counters,
    DHCP, conntrack fill, drain state, the generation and the last successful reconcile with
    C(/etc/ocs-l3/expected.json).
  - Changes nothing (C(changed=false) always); supports check mode.
  - Never fails for a deviation; the caller decides (C(playbooks/status.yml), C(tools/ocs-rollout)).
options:
  state_dir:
    description: The installed state directory (default the fabric's, or $OCS_STATE_DIR).
    type: path
  controller_generation:
    description: The generation the controller rendered; a host that applied another one is reported (drift).
    type: int
  prom_dir:
    description: Also write the node_exporter textfile C(ocs_l3.prom) there.
    type: path
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Read the host's status
  ocs.l3.ocs_status:
  register: status
"""

RETURN = r"""
report:
  description: C({host, worst, exit_code, deviations [{severity, host, what, detail}], values}).
  type: dict
  returned: always
worst:
  description: The worst severity (ok, info, warning, critical).
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.host_status import Sources, collect, prom_text, write_prom
from ansible_collections.ocs.l3.plugins.module_utils.netns import module_runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path"),
            controller_generation=dict(type="int"),
            prom_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    rep = collect(module_runner(module), Sources(p["state_dir"]), controller_generation=p["controller_generation"])
    if p["prom_dir"] and not module.check_mode:
        write_prom(p["prom_dir"], prom_text(rep))
    report = rep.as_dict()
    module.exit_json(changed=False, report=report, worst=report["worst"])


if __name__ == "__main__":
    main()
