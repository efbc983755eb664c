# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT of a hypervisor as an ``iptables-restore`` file that fills only our chains.

The file declares every chain of :data:`CHAINS` (``:OCS-X - [0:0]``) so that
one ``iptables-restore --noflush`` flushes and refills them in a single
transaction; nobody else's chain or rule appears in it. The jumps from the
built-in chains (:data:`JUMPS`) are not in the file: ``--noflush`` would add
them again on every run; the ``ocs_iptables_chains`` module ensures each
exactly once.

Chains of table ``nat`` (host NAT mode; every rule matches the first packet
of a connection only, conntrack translates the rest)::

    PREROUTING  -> OCS-PREROUTING   metadata DNAT (from instance taps), then OCS-FLOAT-DNAT
    OUTPUT      -> OCS-OUTPUT       OCS-FLOAT-DNAT (the hypervisor reaching a floating IP)
    POSTROUTING -> OCS-POSTROUTING  metadata: RETURN (the target sees the fixed IP)
                                    DNATed to one of our floating IPs (hairpin): source NAT
                                    destination internal: RETURN (east-west is never NATed)
                                    anything else: source NAT
    OCS-FLOAT-DNAT  -d F/32 -j DNAT --to-destination FIXED     (per floating IP of this host)
    OCS-FLOAT-SNAT  -s FIXED/32 -j SNAT --to-source F          (per floating IP of this host)
    OCS-SNAT        -s FIXED/32 -j SNAT --to-source PUBLIC     (per instance without one)

Hairpin: an instance reaching a floating IP (its own or another's, on this
hypervisor or another one) is source-NATed as if it went out and came back
in, so the callee sees the caller's floating IP (or its hypervisor's public
address) wherever the two instances run, and an instance reaching its own
floating IP does not receive a packet from itself (the kernel would drop
that as a martian). Answers come back from the floating IP by conntrack.

In ``nat_mode: gateway`` a hypervisor keeps the metadata DNAT (it is the
first hop of every instance) and its floating/SNAT chains are empty: the
module applies that too, which removes stale rules of an earlier host mode.
"""

from .addr import ntoa
from .artifact import Artifact, text
from .memo import per_host
from .constants import NAT_CHAINS as CHAINS, NAT_PATH  # noqa: F401  (the nat module's names)
from .constants import NAT_FLOAT_DNAT as FLOAT_DNAT, NAT_FLOAT_SNAT as FLOAT_SNAT, NAT_OUTPUT as OUTPUT
from .constants import NAT_POSTROUTING as POSTROUTING, NAT_PREROUTING as PREROUTING, NAT_SNAT as SNAT


def _comment(word):
    return "-m comment --comment %s" % word


def metadata_rules(fab):
    """DNAT of the metadata address from instance taps, and its SNAT exemption."""
    meta = fab.metadata
    if meta is None:
        return [], []
    ip, port = ntoa(meta["ip"]), meta["port"]
    dnat = ["-A %s -d %s/32 -i %s+ -p tcp -m tcp --dport %d %s -j DNAT --to-destination %s:%d"
            % (PREROUTING, ip, fab.instance_ifname_prefix, port, _comment("ocs-metadata"),
               ntoa(meta["target"]), meta["target_port"])]
    keep = ["-A %s -m conntrack --ctstate DNAT --ctorigdst %s/32 --ctorigdstport %d %s -j RETURN"
            % (POSTROUTING, ip, port, _comment("ocs-metadata"))]
    return dnat, keep


def host_nat_rules(fab, host):
    """(float_dnat, postrouting, float_snat, snat) rule lists of a host-NAT hypervisor."""
    float_dnat, float_snat, snat = [], [], []
    for inst in sorted(host.instances, key=lambda i: i.ip):
        fixed, note = ntoa(inst.ip), _comment(inst.name)
        if inst.floating_ip is not None:
            fip = ntoa(inst.floating_ip)
            float_dnat.append("-A %s -d %s/32 %s -j DNAT --to-destination %s" % (FLOAT_DNAT, fip, note, fixed))
            float_snat.append("-A %s -s %s/32 %s -j SNAT --to-source %s" % (FLOAT_SNAT, fixed, note, fip))
        elif host.public_address is not None:
            snat.append("-A %s -s %s/32 %s -j SNAT --to-source %s"
                        % (SNAT, fixed, note, ntoa(host.public_address)))
    post = []
    for net in fab.floating_ranges:
        for chain in (FLOAT_SNAT, SNAT):
            post.append("-A %s -m conntrack --ctstate DNAT --ctorigdst %s %s -j %s"
                        % (POSTROUTING, net.text, _comment("ocs-hairpin"), chain))
    for net in fab.internal_ranges:
        post.append("-A %s -d %s %s -j RETURN" % (POSTROUTING, net.text, _comment("ocs-east-west")))
    post.append("-A %s -j %s" % (POSTROUTING, FLOAT_SNAT))
    post.append("-A %s -j %s" % (POSTROUTING, SNAT))
    return float_dnat, post, float_snat, snat


@per_host
def hypervisor_lines(fab, host):
    """The ``iptables-restore`` lines of table nat for one hypervisor."""
    meta_dnat, meta_keep = metadata_rules(fab)
    if fab.nat_mode == "host":
        float_dnat, post, float_snat, snat = host_nat_rules(fab, host)
    else:
        float_dnat, post, float_snat, snat = [], [], [], []
    lines = ["*nat"]
    lines += [":%s - [0:0]" % chain for chain in CHAINS]
    lines += meta_dnat
    lines.append("-A %s -j %s" % (PREROUTING, FLOAT_DNAT))
    lines.append("-A %s -j %s" % (OUTPUT, FLOAT_DNAT))
    lines += meta_keep + post + float_dnat + float_snat + snat
    lines.append("COMMIT")
    return lines


def artifacts(fab, host):
    """The NAT rules file of a hypervisor (other roles get none)."""
    if host.role != "hypervisor":
        return []
    return [Artifact(NAT_PATH, "iptables", "ocs_nat", "etc/ocs-l3/iptables-nat.rules.j2",
                     {"_ocs_nat_rules": text(hypervisor_lines(fab, host))})]
