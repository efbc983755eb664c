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
    IPv6: every DHCPv6 lease whose (address, hostname) pair the content does not list
    (the C([ip6]) field and the name of C(mac,ip,[ip6],hostname,lease) lines: a removed instance, a
    changed ip6 or name) is released with C(dhcp_release6), with the lease's IAID and client DUID and
    the server DUID of the lease file's C(duid) line, on an interface O(prefix)* holding a global
    address whose network holds the lease's address (the gateway address of its subnet).
    A DHCPv6 lease names no MAC, so a new instance taking a removed one's name and ip6 keeps the old
    lease until it expires. Temporary (IA_TA) leases and leases without a client DUID are left.
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
  release6:
    description:
      - Also release stale DHCPv6 leases (C(dhcp_release6)). Off by default, and the role leaves it off.
        On a hypervisor with the instance guards dnsmasq did not answer the release (seen on the molecule
        fabric), so the stale lease stayed and every run, and the drift report, showed a change.
      - Without it stale DHCPv6 leases expire by themselves. The netns lab proves the release itself.
    type: bool
    default: false
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Release leases of removed instances
  ocs_dhcp_release:
    content: "{{ lookup('ansible.builtin.file', 'build/hv-r01-01/etc/ocs-l3/dhcp-hosts') }}"
"""

RETURN = r"""
released:
  description: Leases released (or that would be, in check mode), as C(ip mac interface) (IPv6 C(ip6 iaid interface)).
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


def desired6(content):
    """{(ip6, hostname)} of a host file text (the ``[ip6]`` field of ``mac,ip,[ip6],hostname,lease``
    lines), the address in its canonical text."""
    pairs = set()
    for line in content.splitlines():
        fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
        if len(fields) >= 4 and fields[2].startswith("[") and fields[2].endswith("]"):
            pairs.add((str(ipaddress.IPv6Address(fields[2][1:-1])), fields[3]))
    return pairs


def leases6(text):
    """(server DUID or None, [(ip6, hostname, iaid, client DUID)]) of dnsmasq's DHCPv6 leases
    (``expiry iaid ip6 hostname client-duid`` lines after the ``duid SERVER`` line). Temporary
    (IA_TA, iaid ``T<n>``) leases are left out: dnsmasq hands out none with static ranges."""
    server, out = None, []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "duid":
            server = parts[1]
        elif len(parts) >= 5 and ":" in parts[2] and parts[1].isdigit():
            out.append((str(ipaddress.IPv6Address(parts[2])), parts[3], parts[1], parts[4]))
    return server, out


def interface_for(ip, addresses, prefix):
    """Name of an interface ``prefix``* whose IPv4 network holds ``ip``, or None.

    ``addresses``: ``ip -j addr show`` entries. Any tap of the subnet does:
    dnsmasq finds the lease by client MAC and address, and the subnet by the
    receiving interface's address (the same gateway on every tap of the subnet).
    An IPv6 ``ip`` is looked up among the global IPv6 addresses (each tap's
    gateway address, its subnet's prefix length; never the link-local ones).
    """
    addr = ipaddress.ip_address(ip)
    family = "inet" if addr.version == 4 else "inet6"
    for link in sorted(addresses, key=lambda entry: entry.get("ifname", "")):
        name = link.get("ifname", "")
        if not name.startswith(prefix):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != family or info.get("scope", "global") != "global":
                continue
            net = ipaddress.ip_network("%s/%s" % (info["local"], info["prefixlen"]), strict=False)
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


def plan6(content, lease_text, addresses, prefix):
    """([(ip6, iaid, client DUID, ifname)] to release, [stale leases that cannot be], server DUID)."""
    want = desired6(content)
    server, found = leases6(lease_text)
    release, unreachable = [], []
    for ip6, name, iaid, client in found:
        if (ip6, name) in want:
            continue
        ifname = interface_for(ip6, addresses, prefix)
        if ifname is None or server is None or client == "*":
            unreachable.append("%s %s" % (ip6, name))
        else:
            release.append((ip6, iaid, client, ifname))
    return release, unreachable, server


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def _send(module, release, release6, server):
    """Send every release; the tools are looked up only when there is something to send. Returns
    the IPv6 releases that got no answer (texts)."""
    if release:
        tool = module.get_bin_path("dhcp_release", required=True)
        for ip, mac, ifname in release:
            module.run_command([tool, ifname, ip, mac], check_rc=True)
    failed = []
    if release6:
        # dhcp_release6 waits for dnsmasq's reply: one that does not come (its release, looped back on
        # the tap, is an IPv6 packet from the tap that the instance guards may drop) must not fail
        # the run; the lease stays (listed, with a warning) and expires by itself.
        tool6 = module.get_bin_path("dhcp_release6", required=True)
        for ip6, iaid, client, ifname in release6:
            rc, out, err = module.run_command([tool6, "--iface", ifname, "--client-id", client, "--server-id", server,
                                               "--iaid", iaid, "--ip", ip6])
            if rc != 0:
                failed.append("%s %s (%s)" % (ip6, iaid, (err or out).strip() or "rc %d" % rc))
    return failed


def _left(path, release, release6, timeout):
    """The released leases still in the lease file after ``timeout`` seconds (texts)."""
    gone = {(mac, ip) for ip, mac, dummy in release}
    gone6 = {(ip6, iaid) for ip6, iaid, dummy, dummy2 in release6}
    deadline = time.monotonic() + timeout
    while True:
        text = _read(path)
        left = ["%s %s" % (ip, mac) for mac, ip in leases(text) if (mac, ip) in gone]
        left += ["%s %s" % (ip6, iaid) for ip6, dummy, iaid, dummy2 in leases6(text)[1] if (ip6, iaid) in gone6]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            content=dict(type="str", required=True),
            leasefile=dict(type="path", default=DHCP_LEASE_PATH),
            prefix=dict(type="str", default="tap"),
            timeout=dict(type="float", default=3),
            release6=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    lease_text = _read(p["leasefile"])
    addresses = []
    if lease_text.strip():
        out = module.run_command(["ip", "-j", "addr", "show"], check_rc=True)[1]
        addresses = json.loads(out or "[]")
    release, unreachable = plan(p["content"], lease_text, addresses, p["prefix"])
    release6, unreachable6, server = plan6(p["content"], lease_text, addresses, p["prefix"])
    if not p["release6"]:  # off by default: see the option's description
        release6, unreachable6 = [], []
    unreachable += unreachable6
    result = dict(changed=bool(release or release6), unreachable=unreachable, not_released=[],
                  released=["%s %s %s" % r for r in release] + ["%s %s %s" % (r[0], r[1], r[3]) for r in release6])
    warnings = []
    if unreachable:
        warnings.append("no %s* interface of their subnet to release on, or no DUID (they expire by themselves): %s"
                        % (p["prefix"], ", ".join(unreachable)))
    if result["changed"] and not module.check_mode:
        failed6 = _send(module, release, release6, server)
        if failed6:
            warnings.append("dhcp_release6 got no answer (the leases expire by themselves): %s" % ", ".join(failed6))
        result["not_released"] = _left(p["leasefile"], release, release6, p["timeout"])
        if result["not_released"]:
            warnings.append("dnsmasq kept these leases (is it running?): %s" % ", ".join(result["not_released"]))
    for w in warnings:
        module.warn(w)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
