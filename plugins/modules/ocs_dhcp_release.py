#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release the dnsmasq leases that the desired DHCP host file no longer holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_dhcp_release
version_added: 0.4.0
short_description: Release dnsmasq leases of instances that are gone or changed
description:
  - Reads dnsmasq's lease file O(leasefile) and the desired host file text O(content)
    (C(mac,ip,hostname,lease) lines). Every IPv4 lease whose (MAC, IP) pair the content does not
    list (a removed instance, a changed MAC or IP) is released with C(dhcp_release), so that a
    reused IP is served at once instead of waiting for the lease to expire.
  - C(dhcp_release) is sent on an interface named O(prefix)* that carries an address of the
    lease's subnet (the instance's tap or, when it is gone, another tap of the same subnet,
    which holds the same gateway address). Leases with no such interface are reported.
  - >-
    Run it after dnsmasq has re-read the new host file: a removed MAC is then unknown to
    dnsmasq and cannot take its lease back.
  - Waits up to O(timeout) seconds for dnsmasq to drop the released leases from its lease file;
    those still there are reported as a warning (dnsmasq not running?), not a failure.
  - Supports check mode.
options:
  content:
    description: The desired host file text (comments and blank lines are ignored).
    type: str
    required: true
  leasefile:
    description: dnsmasq's lease file (C(dhcp-leasefile)).
    type: path
    default: /var/lib/ocs-l3/dnsmasq.leases
  prefix:
    description: Name prefix of instance interfaces (C(ocs_fabric.instance_ifname_prefix)).
    type: str
    default: tap
  timeout:
    description: Seconds to wait for the lease file to lose the released leases.
    type: float
    default: 3
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Release leases of removed instances
  ocs_dhcp_release:
    content: "{{ lookup('ansible.builtin.file', 'build/hv-r01-01/etc/ocs-l3/dhcp-hosts') }}"
"""

RETURN = r"""
released:
  description: Leases released (or that would be, in check mode), as C(ip mac interface).
  type: list
  returned: always
unreachable:
  description: Stale leases with no instance interface of their subnet to send the release on.
  type: list
  returned: always
not_released:
  description: Released leases still in the lease file after O(timeout).
  type: list
  returned: always
"""

import ipaddress
import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import DHCP_LEASE_PATH


def desired_pairs(content):
    """{(mac, ip)} of a host file text (``mac,ip,hostname,lease`` lines)."""
    pairs = set()
    for line in content.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(",")
        if len(fields) >= 2:
            pairs.add((fields[0].strip().lower(), fields[1].strip()))
    return pairs


def leases(text):
    """[(mac, ip)] of dnsmasq's IPv4 leases (``expiry mac ip name client-id`` lines)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] == "duid" or ":" in parts[2]:
            continue
        out.append((parts[1].lower(), parts[2]))
    return out


def interface_for(ip, addresses, prefix):
    """Name of an interface ``prefix``* whose IPv4 network holds ``ip``, or None.

    ``addresses``: ``ip -j -4 addr show`` entries. Any tap of the subnet does:
    dnsmasq finds the lease by client MAC and address, and the subnet by the
    receiving interface's address (the same gateway on every tap of the subnet).
    """
    addr = ipaddress.IPv4Address(ip)
    for link in sorted(addresses, key=lambda entry: entry.get("ifname", "")):
        name = link.get("ifname", "")
        if not name.startswith(prefix):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            net = ipaddress.IPv4Network("%s/%s" % (info["local"], info["prefixlen"]), strict=False)
            if addr in net:
                return name
    return None


def plan(content, lease_text, addresses, prefix):
    """([(ip, mac, ifname)] to release, [stale leases without an interface])."""
    want = desired_pairs(content)
    release, unreachable = [], []
    for mac, ip in leases(lease_text):
        if (mac, ip) in want:
            continue
        ifname = interface_for(ip, addresses, prefix)
        if ifname is None:
            unreachable.append("%s %s" % (ip, mac))
        else:
            release.append((ip, mac, ifname))
    return release, unreachable


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            content=dict(type="str", required=True),
            leasefile=dict(type="path", default=DHCP_LEASE_PATH),
            prefix=dict(type="str", default="tap"),
            timeout=dict(type="float", default=3),
        ),
        supports_check_mode=True,
    )
    p = module.params
    lease_text = _read(p["leasefile"])
    addresses = []
    if lease_text.strip():
        out = module.run_command(["ip", "-j", "-4", "addr", "show"], check_rc=True)[1]
        addresses = json.loads(out or "[]")
    release, unreachable = plan(p["content"], lease_text, addresses, p["prefix"])
    result = dict(changed=bool(release), released=["%s %s %s" % r for r in release], unreachable=unreachable,
                  not_released=[])
    warnings = []
    if unreachable:
        warnings.append("no %s* interface of their subnet to release on (they expire by themselves): %s"
                        % (p["prefix"], ", ".join(unreachable)))
    if release and not module.check_mode:
        tool = module.get_bin_path("dhcp_release", required=True)
        for ip, mac, ifname in release:
            module.run_command([tool, ifname, ip, mac], check_rc=True)
        gone = {(mac, ip) for ip, mac, dummy in release}
        deadline = time.monotonic() + p["timeout"]
        while True:
            left = [lease for lease in leases(_read(p["leasefile"])) if lease in gone]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        result["not_released"] = ["%s %s" % (ip, mac) for mac, ip in left]
        if left:
            warnings.append("dnsmasq kept these leases (is it running?): %s" % ", ".join(result["not_released"]))
    for w in warnings:
        module.warn(w)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
