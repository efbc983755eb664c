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
  - Reads the kernel's IPv4 and IPv6 routes of protocol O(protocol) from the main table, and the
    addresses on the interfaces the file names.
  - >-
    IPv6 lines (a dual-stack fabric's instance ports: C(address replace fe80::1/64 dev TAP nodad),
    C(address replace GATEWAY6/LEN dev TAP nodad noprefixroute), C(route replace IP6/128 dev TAP proto 211
    metric 1024); a ToR's C(route replace blackhole NET6 proto 211 metric 1024)) are planned like IPv4
    ones; an IPv6 route goes in at the kernel's default IPv6 metric 1024, written in the line, so a
    route of another protocol for the same prefix at metric 1024 is reported and skipped.
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
  - >-
    Addresses ocs-l3 owns that the file no longer lists are deleted with O(prune): every other IPv4
    address on an instance tap the file names (the devices of its C(address replace ... noprefixroute)
    lines, e.g. the old gateway address after a rack's C(instance_gateway) changed), every IPv6 address
    there but the kernel's own link-local ones (C(fe80::1) is ours), and each /32 inside
    a range the file declares owned (C(#owned RANGE dev lo): the fabric's C(floating_ranges), so a
    hypervisor's public address goes when C(nat_mode) becomes C(gateway)). Any other address (an
    operator's own loopbacks) is never touched.
  - >-
    Sets C(net.ipv4.conf.<tap>.proxy_arp=1) on every instance tap the file names that exists (taps
    made before C(conf.default.proxy_arp) was set never inherited it); reports a change only when it
    set one. Where C(/proc/sys) is read-only it only checks (the tap's value or C(conf.all)) and warns.
  - >-
    On every instance tap with IPv6 lines that exists, before the batch, sets C(net.ipv6.conf.<tap>.accept_ra=0)
    and C(autoconf=0) (a tenant's router advertisement never configures the hypervisor), then
    C(disable_ipv6=0) (an IPv6 address cannot be added while IPv6 is off on the tap); reports a change
    only when it set one, warns when one cannot be set.
  - >-
    With O(sysctls), first checks that each kernel setting reads as given (C(/proc/sys)); any that does not
    fails the task, naming each, before anything is applied (the role sets them, or checks them where the
    operator does).
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
        Delete our routes and our addresses that the file no longer lists. False adds and replaces only
        (make before break: C(playbooks/site.yml) prunes after FRR, so a prefix moving from a
        static route to BGP, or back, is never without a route).
    type: bool
    default: true
extends_documentation_fragment:
  - ocs.l3.install
  - ocs.l3.sysctl
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Reconcile instance and rack routes
  ocs_route_table:
    src: /etc/ocs-l3/routes.batch
"""

RETURN = r"""
changed_files:
  description: With O(install), the files it installed (check mode, would install) before applying them.
  type: list
  elements: str
  returned: with O(install)
sysctls_set:
  description: With O(sysctl_file), the settings set (C(key=value)) and the file when it was written (check mode, would be).
  type: list
  elements: str
  returned: when something was set
prune_pending:
  description:
    - >-
      With O(prune=false), how many more commands a run with O(prune=true) would send now (its deletions of routes
      and addresses, and the addresses a deletion takes along, put back); 0 with it. The role's prune step runs
      only when this (or RV(conflicts)) was not empty: make before break, without a second module run on a host
      with nothing to delete.
  type: int
  returned: always
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
proxy_arp:
  description: Instance taps whose proxy_arp was set (in check mode, would be).
  type: list
  returned: always
ipv6_sysctls:
  description: IPv6 settings of instance taps set (in check mode, would be), as C(net.ipv6.conf.TAP.NAME=VALUE).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import ROUTE_PROTOCOL
from ansible_collections.ocs.l3.plugins.module_utils.netns import module_runner
from ansible_collections.ocs.l3.plugins.module_utils import install, sysctl
from ansible_collections.ocs.l3.plugins.module_utils.route_table import KernelError, read_file, reconcile


def main():
    module = AnsibleModule(
        argument_spec=dict(src=dict(type="path", required=True), protocol=dict(type="int", default=ROUTE_PROTOCOL),
                           prune=dict(type="bool", default=True), install=install.install_option(), **sysctl.options()),
        supports_check_mode=True,
    )
    src, protocol = module.params["src"], module.params["protocol"]
    installed = install.installed_first(module, module.params)
    sysctls_set = sysctl.settle_or_fail(module, "routing")
    try:
        desired = read_file(src, protocol)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (src, exc))
    except ValueError as exc:
        module.fail_json(msg="%s (nothing applied)" % exc)
    try:
        res = reconcile(module_runner(module), desired, protocol, module.params["prune"], module.check_mode)
    except KernelError as exc:
        module.fail_json(msg=str(exc))
    for warning in res.pop("warnings"):
        module.warn(warning)
    before, after, error = res.pop("before"), res.pop("after"), res.pop("error")
    if module._diff:
        res["diff"] = dict(before=before, after=after, after_header=src,
                           before_header="kernel routes (proto %d), our addresses, tap sysctls" % protocol)
    if sysctls_set:
        res.update(sysctls_set=sysctls_set, changed=True)
    if module.params["install"]:
        res.update(changed_files=installed, changed=res["changed"] or bool(installed))
    if error:
        module.fail_json(msg=error, **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
