#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make one live nftables table equal a rendered file; map changes go element by element."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_nft_table
version_added: 0.4.0
short_description: Apply a rendered nftables table, sending only the map elements that differ
description:
  - O(src) is an C(nft -f) file that declares exactly one table, O(family) O(name), and nothing else
    (or declares no table at all, which means the table must not exist).
  - >-
    The file is loaded in a throwaway network namespace and listed back with C(nft -j -s list table): the
    normalized candidate. The live table is listed the same way; counters and handles are ignored.
  - When sets, chains or rules differ (or the table is missing), one C(nft -f) transaction deletes and
    recreates the table. When only the elements of maps differ, one transaction deletes and adds exactly
    those elements (a moved floating IP is one element), and rules, counters and other elements stay
    untouched. When nothing differs nothing is sent. When the file declares no table, a live table is deleted.
  - No other table is read or touched.
  - Supports check mode and diff mode.
options:
  src:
    description: Path of the nft file on the host.
    type: path
    required: true
  family:
    description: Family of the table.
    type: str
    default: ip
  name:
    description: Name of the table.
    type: str
    default: ocs_natgw
extends_documentation_fragment:
  - ocs.l3.sysctl
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Apply the NAT gateway table
  ocs_nft_table:
    src: /etc/ocs-l3/natgw.nft
"""

RETURN = r"""
sysctls_set:
  description: With O(sysctl_file), the settings set (C(key=value)) and the file when it was written (check mode, would be).
  type: list
  elements: str
  returned: when something was set
operation:
  description: C(none), C(create), C(replace), C(elements) or C(delete).
  returned: always
  type: str
transaction:
  description: The C(nft -f) text sent (or, in check mode, that would be sent).
  returned: always
  type: str
elements_added:
  description: Map elements added (a changed mapping counts as one removed and one added).
  returned: always
  type: int
elements_removed:
  description: Map elements removed.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils import sysctl
from ansible_collections.ocs.l3.plugins.module_utils.constants import NFT_FAMILY, NFT_TABLE
from ansible_collections.ocs.l3.plugins.module_utils.netns import NetnsError, module_runner
from ansible_collections.ocs.l3.plugins.module_utils.nft import ApplyError, declared_tables, list_table, plan, scratch_table


def _list(module, family, name):
    try:
        return list_table(module_runner(module), family, name)
    except ApplyError as exc:
        module.fail_json(msg=str(exc))


def _scratch(module, text, family, name):
    """Load ``text`` in a throwaway netns; return the table as the kernel lists it there."""
    try:
        return scratch_table(module_runner(module), text, family, name)
    except ApplyError as exc:
        module.fail_json(msg=str(exc))
    except NetnsError as exc:
        module.fail_json(msg="%s to test the table" % exc)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            family=dict(type="str", default=NFT_FAMILY),
            name=dict(type="str", default=NFT_TABLE),
            **sysctl.options()
        ),
        supports_check_mode=True,
    )
    p = module.params
    sysctls_set = sysctl.settle_or_fail(module, "the NAT tier")
    family, name = p["family"], p["name"]
    try:
        with open(p["src"]) as fh:
            text = fh.read()
        tables = declared_tables(text)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot use %s: %s" % (p["src"], exc))
    if tables and tables != [(family, name)]:
        module.fail_json(msg="%s must declare only table %s %s, found %s"
                         % (p["src"], family, name, ", ".join(" ".join(t) for t in tables)))
    module.get_bin_path("nft", required=True)
    candidate, after = _scratch(module, text, family, name) if tables else (None, "")
    live, before = _list(module, family, name)
    res = plan(family, name, text, candidate, live)
    result = dict(changed=res["operation"] != "none", **res)
    if sysctls_set:
        result["sysctls_set"] = sysctls_set
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header="live table %s %s" % (family, name),
                              after_header=p["src"])
    if module.check_mode or not result["changed"]:
        result["changed"] = result["changed"] or bool(sysctls_set)
        module.exit_json(**result)
    rc, out, err = module.run_command(["nft", "-f", "-"], data=res["transaction"], binary_data=True)
    if rc != 0:
        module.fail_json(msg="nft -f failed; the previous table is still in place: %s" % err.strip(),
                         rc=rc, stderr=err, **result)
    again = plan(family, name, text, candidate, _list(module, family, name)[0])
    if again["operation"] != "none":
        module.fail_json(msg="after the apply the table still differs (another tool changing it?)",
                         remaining=again["transaction"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
