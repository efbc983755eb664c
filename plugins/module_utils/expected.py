# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each host must show when the fabric is converged: ``/etc/ocs-l3/expected.json``.

Computed on the controller from the model and the BGP policy (:func:`frr.policy`),
read on the host by ``host_status`` (``ocs-l3-status``), which compares it with
the running state. Size is linear in the host's own instances (a ToR: its
rack's); spines and gateways carry only their sessions.

Schema (``version`` 1; prefixes are texts ``a.b.c.d/len``)::

    {"version": 1, "host": NAME, "role": ROLE, "rack": ID | null,
     "sessions": [{"peer": ADDRESS | INTERFACE, "interface": BOOL, "remote_as": ASN,
                   "peer_host": NAME | null (border), "group": PEER-GROUP,
                   "receive_required": [PREFIX], "advertise_required": [PREFIX],
                   "receive_max": INT | null, "advertise_max": INT | null,
                   "advertise_instances": BOOL}],
     "instances": [{"name", "ip", "interface", "prefixes": [PREFIX]}],   (hypervisors)
     "rack_instances": [{"prefix", "hypervisor"}],                       (ToRs, BGP mode)
     "chains": {TABLE: [CHAIN]}, "nft_table": "FAMILY NAME" | null,
     "dhcp_hosts": INT,
     "conntrack": {"max": INT, "buckets": INT} | null}                   (hypervisors: the sizing rule)

``*_required`` are lower bounds: the prefixes the sending end originates
itself (its loopback and link networks, a ToR's rack host_subnet aggregate, a
host-NAT public /32), which exist whatever the rest of the fabric does and
pass both ends' route-maps. Prefixes that depend on other hosts (other racks'
subnets, the default from the border, what a ToR relays to its hypervisors)
are not counted: a ToR's relay to a hypervisor is checked against this lower
bound only. ``*_max`` is an exact upper bound where the sender exports only
what it owns (hypervisor sessions), else null. On a hypervisor
``advertise_instances`` says that each running instance's ``prefixes`` (its
/32 and, host NAT, its floating /32) are announced too: an instance whose tap
does not exist is a stopped VM, expected absent.
"""

from . import jsontext
from .addr import ntoa
from .announce import origin
from .artifact import Artifact
from .constants import EXPECTED_PATH, NFT_FAMILY, NFT_TABLE
from .dhcp import host_lines as dhcp_host_lines
from .conntrack import buckets_for
from .firewall import conntrack_max, filter_lines
from .frr import hypervisor_import, owned, policy, rack_hosts
from .iptables import declared_chains
from .nat import hypervisor_lines as nat_lines

VERSION = 1


def _h(ip):
    return "%s/32" % ntoa(ip)


def instance_prefixes(fab, inst):
    """The /32s a running instance brings: its IP and, host NAT mode, its floating IP."""
    out = [_h(inst.ip)]
    if fab.nat_mode == "host" and inst.floating_ip is not None:
        out.append(_h(inst.floating_ip))
    return out


def _public(fab, host):
    """The public /32 a host has on lo and announces (a NAT gateway's; a hypervisor's in host NAT), or []."""
    if host.public_address is None:
        return []
    if host.role == "nat_gateway" or (host.role == "hypervisor" and fab.nat_mode == "host"):
        return [_h(host.public_address)]
    return []


def sent_by(fab, sender, receiver):
    """The prefixes ``sender`` originates itself and ``receiver`` must hold from it (texts, sorted):
    what exists whatever the rest of the fabric does, accepted by both ends' route-maps."""
    own = origin(fab, sender)
    if sender.role in ("hypervisor", "nat_gateway"):
        return sorted(set(own + _public(fab, sender)))
    if sender.role == "tor" and receiver.role == "hypervisor":
        host_subnet = sender.rack.host_subnet.text
        return [host_subnet] if own and host_subnet in hypervisor_import(fab) else []
    if sender.role == "tor":
        allowed = set(rack_hosts(fab, sender.rack))
        return sorted(set([sender.rack.host_subnet.text] + [p for p in own if p in allowed]))
    return own


def _session(fab, host, neighbor):
    peer = fab.hosts.get(neighbor.host) if neighbor.host else None
    out = dict(peer=neighbor.key, interface=bool(neighbor.interface), remote_as=neighbor.remote_as,
               peer_host=neighbor.host, group=neighbor.group, receive_required=[], advertise_required=[],
               receive_max=None, advertise_max=None, advertise_instances=host.role == "hypervisor")
    if peer is None:
        return out
    out["receive_required"] = sent_by(fab, peer, host)
    out["advertise_required"] = sent_by(fab, host, peer)
    if peer.role == "hypervisor":
        out["receive_max"] = len(set(owned(fab, peer) + origin(fab, peer)))
    if host.role == "hypervisor":
        out["advertise_max"] = len(set(owned(fab, host) + origin(fab, host)))
    return out


def sessions(fab, host):
    """The BGP sessions ``host`` must have established, in the policy's order."""
    return [_session(fab, host, n) for n in policy(fab, host).neighbors]


def instances(fab, host):
    """A hypervisor's instances: name, IP, tap, the /32s it announces while running."""
    return [dict(name=i.name, ip=ntoa(i.ip), interface=i.interface, prefixes=instance_prefixes(fab, i))
            for i in host.instances]


def rack_instances(fab, host):
    """A ToR (BGP mode): every instance /32 of its rack and the hypervisor announcing it."""
    if host.role != "tor" or fab.routing_mode != "bgp":
        return []
    return [dict(prefix=_h(i.ip), hypervisor=hv.name) for hv in host.rack.hypervisors for i in hv.instances]


def chains(fab, host):
    """{table: [our chains]} the host's iptables files declare (IPv4)."""
    lines = filter_lines(fab, host) + (nat_lines(fab, host) if host.role == "hypervisor" else [])
    return {table: sorted(chains) for table, chains in sorted(declared_chains(lines).items())}


def conntrack(fab, host):
    """The conntrack table a hypervisor must have (ocs_firewall sizes it to this unless
    ``ocs_firewall_conntrack_max`` overrides it), or None."""
    maximum = conntrack_max(fab, host)
    return None if maximum is None else dict(max=maximum, buckets=buckets_for(maximum))


def expected(fab, host):
    """The whole expected state of ``host`` as plain data (the schema above)."""
    gateway_table = host.role == "nat_gateway" and fab.nat_mode == "gateway"
    return dict(
        version=VERSION, host=host.name, role=host.role, rack=host.rack.id if host.rack else None,
        sessions=sessions(fab, host),
        instances=instances(fab, host) if host.role == "hypervisor" else [],
        rack_instances=rack_instances(fab, host),
        chains=chains(fab, host),
        nft_table="%s %s" % (NFT_FAMILY, NFT_TABLE) if gateway_table else None,
        dhcp_hosts=len(dhcp_host_lines(fab, host)) if host.role == "hypervisor" else 0,
        conntrack=conntrack(fab, host),
    )


def expected_text(fab, host):
    """expected.json's ``expected`` member as JSON text (the template adds the managed notice)."""
    return jsontext.dumps(expected(fab, host))


def artifacts(fab, host):
    """expected.json of every fabric host (installed by ocs_agent, read by ocs-l3-status)."""
    return [Artifact(EXPECTED_PATH, "expected", "ocs_agent", "etc/ocs-l3/expected.json.j2",
                     {"_ocs_agent_expected_text": expected_text(fab, host)})]
