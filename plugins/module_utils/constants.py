# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names and paths shared by the controller (render) and the hosts (modules, agent).

The one place where the route protocol number, our chain and table names and
the files under ``/etc/ocs-l3`` are spelled out. Standard library only: host
modules import this file, and hosts need not have netaddr. Everything a role
needs from here reaches it through the render result (:func:`contract`), never
as a copy in YAML (tests/unit/test_literals.py fails on a copy).
"""

from __future__ import annotations

STATE_DIR = "/etc/ocs-l3"
"""Desired state installed on every host (rendered files, the generation)."""
VAR_DIR = "/var/lib/ocs-l3"
RUN_DIR = "/run/ocs-l3"

ROUTE_PROTOCOL = 211
"""Route protocol number that tags every route this project installs."""
ROUTE_PROTOCOL_NAME = "ocs"
ROUTES_PATH = STATE_DIR + "/routes.batch"
GATEWAY6_LINK_LOCAL = "fe80::1"
"""The instances' IPv6 router: the same link-local address on every instance tap (what the router
advertisements come from and what the guests' default route points to)."""
RA_INTERVAL = 600
"""Seconds between the unsolicited router advertisements on an instance tap (dnsmasq's ``ra-param``
and the agent's refresh, each 3/4 to 1 times this)."""
RA_ROUTER_LIFETIME = 3 * RA_INTERVAL
"""The router lifetime of every RA to an instance: a guest keeps its default route through three
missed advertisements."""
RT_PROTOS_PATH = "/etc/iproute2/rt_protos.d/ocs-l3.conf"

GENERATION_PATH = STATE_DIR + "/generation"
RECONCILED_PATH = STATE_DIR + "/reconciled"
"""Touched by the last play of a successful converge (ocs_guard finish): its mtime is the time of
the host's last successful reconcile (ocs-l3-status reports it)."""
EXPECTED_PATH = STATE_DIR + "/expected.json"
"""What the host must show when converged (expected.py renders it, host_status reads it)."""
DRAIN_PATH = STATE_DIR + "/drain.json"
"""The drain flag: present while the host is drained (playbooks/drain.yml; drain.py); ocs-l3-status
reports it as info."""
LEASE_PATH = RUN_DIR + "/run.lease"

# Pull mode from signed per-host bundles (module_utils/bundle.py, tools/ocs-pull).
BUNDLE_KEY_PATH = STATE_DIR + "/bundle.key"
"""The host's X25519 private key (made on the host by ``ocs-pull keygen``, mode 0600): only it opens the host's bundles."""
BUNDLE_SIGNER_PATH = STATE_DIR + "/bundle-signer.pub"
"""The pinned controller public key (Ed25519) every bundle's signature is verified against."""
BUNDLE_WORK_DIR = VAR_DIR + "/pull"
"""Where ``ocs-pull`` unpacks the host's verified bundle (mode 0700) and keeps its lock and git cache."""

# The host agent (instance taps served as they appear) and the boot restore.
AGENT_CONFIG_PATH = STATE_DIR + "/agent.conf"
"""The agent's fabric settings (the instance interface prefix), rendered for hypervisors."""
STATE_DIR_ENV = "OCS_STATE_DIR"
"""Environment variable that moves the state directory (tests; the units never set it)."""
HOST_LIBRARY = ("constants.py", "files.py", "netns.py", "route_table.py", "iptables.py", "nft.py", "host_state.py",
                "host_agent.py", "host_restore.py", "host_status.py")
"""The files of this directory the agent, the restore and the status collector import, installed on each host by
the ocs_agent role from the collection it runs from (standard library only, no netaddr)."""
HOST_LIBRARY_PACKAGE = "ansible_collections/ocs/l3/plugins/module_utils"
"""Their path inside the host archive: the same import path as on the controller."""
HOST_PROGRAMS = (("agent", "host_agent"), ("restore", "host_restore"), ("status", "host_status"))
"""The host programs by name, each the ``main`` of one of these modules (``ocs-l3.pyz NAME ARGS``)."""
HOST_ARCHIVE_PATH = "/usr/lib/ocs-l3/ocs-l3.pyz"
"""The host library and its programs as one zip application (plugin_utils/host_library.py builds it)."""

# DHCP (dnsmasq, one instance per hypervisor, our own unit and files).
DHCP_CONFIG_PATH = STATE_DIR + "/dnsmasq.conf"
DHCP_HOSTS_PATH = STATE_DIR + "/dhcp-hosts"
DHCP_LEASE_PATH = VAR_DIR + "/dnsmasq.leases"
DHCP_UNIT_NAME = "ocs-dhcp.service"
DHCP_UNIT_PATH = "/etc/systemd/system/" + DHCP_UNIT_NAME
DNSMASQ = "/usr/sbin/dnsmasq"

# iptables: every chain we own starts with CHAIN_PREFIX; the built-in chains
# only carry our jumps.
CHAIN_PREFIX = "OCS-"

NAT_PATH = STATE_DIR + "/iptables-nat.rules"
NAT_PREROUTING = CHAIN_PREFIX + "PREROUTING"
NAT_OUTPUT = CHAIN_PREFIX + "OUTPUT"
NAT_POSTROUTING = CHAIN_PREFIX + "POSTROUTING"
NAT_FLOAT_DNAT = CHAIN_PREFIX + "FLOAT-DNAT"
NAT_FLOAT_SNAT = CHAIN_PREFIX + "FLOAT-SNAT"
NAT_SNAT = CHAIN_PREFIX + "SNAT"
NAT_CHAINS = (NAT_PREROUTING, NAT_OUTPUT, NAT_POSTROUTING, NAT_FLOAT_DNAT, NAT_FLOAT_SNAT, NAT_SNAT)
"""Our chains of table nat, in the order the file declares them."""
NAT_JUMPS = (("nat", "PREROUTING", NAT_PREROUTING), ("nat", "OUTPUT", NAT_OUTPUT),
             ("nat", "POSTROUTING", NAT_POSTROUTING))
"""(table, built-in chain, our chain): each jump must exist exactly once."""

FILTER_PATH = STATE_DIR + "/iptables-filter.rules"
FILTER6_PATH = STATE_DIR + "/ip6tables-filter.rules"
FILTER_INPUT = CHAIN_PREFIX + "INPUT"
FILTER_FORWARD = CHAIN_PREFIX + "FORWARD"
FILTER_ANTISPOOF = CHAIN_PREFIX + "ANTISPOOF"
FILTER_DHCP_MAC = CHAIN_PREFIX + "DHCP-MAC"
FILTER_HOST = CHAIN_PREFIX + "HOST"
"""The host policy: what may open connections to the host's own addresses (every fabric host)."""
FILTER_TENANT = CHAIN_PREFIX + "TENANT"
"""What instances may reach of the infrastructure (hypervisors, FORWARD from taps)."""
RAW_NOTRACK = CHAIN_PREFIX + "NOTRACK"
"""Table raw: transit traffic of routers is never tracked (spines and ToRs); the one chain of ours
that raw PREROUTING jumps to."""
RAW_EDGE = CHAIN_PREFIX + "EDGE"
"""Table raw: ingress anti-spoofing on border links (spines), entered by OCS-NOTRACK's first rule."""
FILTER_CONNLIMIT = CHAIN_PREFIX + "CONNLIMIT"
"""The per-instance cap on tracked connections (hypervisors: new connections from taps, INPUT and FORWARD)."""
FILTER_CHAINS = (FILTER_INPUT, FILTER_FORWARD, FILTER_ANTISPOOF, FILTER_DHCP_MAC, FILTER_HOST, FILTER_TENANT,
                 FILTER_CONNLIMIT)
FILTER_CHAINS6 = (FILTER_INPUT, FILTER_FORWARD, FILTER_HOST)
FILTER_GUARD6 = CHAIN_PREFIX + "GUARD6"
"""IPv6 from instance taps that no instance may send (router advertisements, redirects, DHCPv6 server)."""
FILTER_NA6 = CHAIN_PREFIX + "NA6"
"""IPv6 neighbour advertisements from instance taps: the target must be the instance's own."""
FILTER_INBOUND6 = CHAIN_PREFIX + "INBOUND6"
"""New IPv6 flows to instances (FORWARD -o tap): who may open them (``inbound6``)."""
FILTER_CHAINS6_HYPERVISOR = FILTER_CHAINS6 + (FILTER_ANTISPOOF, FILTER_GUARD6, FILTER_NA6, FILTER_INBOUND6,
                                              FILTER_TENANT, FILTER_CONNLIMIT)
"""The IPv6 chains of a hypervisor in a dual-stack fabric (firewall.guard6_lines)."""
RAW_CHAINS = (RAW_NOTRACK, RAW_EDGE)
FILTER_JUMPS = (("filter", "INPUT", FILTER_INPUT), ("filter", "FORWARD", FILTER_FORWARD),
                ("raw", "PREROUTING", RAW_NOTRACK))
"""Each must exist exactly once, as the chain's first rule (both families), so that
no earlier ACCEPT lets traffic bypass it. Every host's filter files declare all three."""

CONNTRACK_SYSCTL_PATH = "/etc/sysctl.d/61-ocs-l3-conntrack.conf"
"""Hypervisors that can set it keep the conntrack table's size here (ocs_firewall)."""
CONNTRACK_MODULES_PATH = "/etc/modules-load.d/ocs-l3-conntrack.conf"
"""Loads nf_conntrack at boot before systemd-sysctl (which otherwise finds no net.netfilter keys)."""

# nftables: the NAT tier's table on the gateways.
NATGW_PATH = STATE_DIR + "/natgw.nft"
NFT_FAMILY = "ip"
NFT_TABLE = "ocs_natgw"
NFT_FIP_MAP = "fip_to_fixed"
NFT_FIXED_MAP = "fixed_to_fip"
NFT_INTERNAL_SET = "internal"
NFT_PUBLIC_SET = "gateway_publics"
NFT_EDGE_SET = "edge_spoofed"
"""Sources a border link may never carry (the gateways' ingress anti-spoofing, gateway mode)."""

# FRR
FRR_CONF_PATH = "/etc/frr/frr.conf"
FRR_DAEMONS_PATH = "/etc/frr/daemons"
FRR_RELOAD = "/usr/lib/frr/frr-reload.py"

SCRATCH_NETNS_PREFIX = "ocs-chk-"
"""Name prefix of the throwaway network namespaces candidates are tested in."""


PACKAGES = {
    "ocs_dhcp": ("dnsmasq-base", "dnsmasq-utils"),
    "ocs_firewall": ("iptables",),
    "ocs_frr": ("frr", "frr-pythontools"),
    "ocs_nat": ("iptables", "conntrack"),
    "ocs_natgw": ("nftables", "conntrack"),
}
"""The Debian packages each role installs (when its ``ocs_<role>_manage_packages`` is on)."""

FABRIC_GROUPS = ("spines", "tors", "hypervisors", "nat_gateways")

SITE_ROLE_GROUPS = {
    "ocs_dhcp": ("hypervisors",),
    "ocs_firewall": FABRIC_GROUPS,
    "ocs_frr": FABRIC_GROUPS,
    "ocs_nat": ("hypervisors",),
    "ocs_natgw": ("nat_gateways",),
}
"""The inventory groups ``playbooks/site.yml`` applies each role of PACKAGES to
(``tests/unit/test_site_packages.py`` reads site.yml's plays and checks it)."""


def site_packages(group_names, manage):
    """The packages site.yml's roles need on a host of ``group_names``, sorted, each once.
    ``manage``: {role: bool} for every role of PACKAGES (False: that role's packages are
    the operator's business). ValueError naming the role on a missing or unknown one."""
    unknown = sorted(set(manage) - set(PACKAGES))
    missing = sorted(set(PACKAGES) - set(manage))
    if unknown or missing:
        raise ValueError("manage must name exactly the roles %s (unknown: %s, missing: %s)"
                         % (", ".join(sorted(PACKAGES)), ", ".join(unknown) or "none", ", ".join(missing) or "none"))
    groups = set(group_names)
    out = set()
    for role, packages in PACKAGES.items():
        if manage[role] and groups & set(SITE_ROLE_GROUPS[role]):
            out.update(packages)
    return sorted(out)


DPKG_STATUS_FORMAT = "${Package} ${db:Status-Abbrev}\\n"
"""The ``dpkg-query -W -f`` format site.yml reads installed packages with (one line per package:
its name and dpkg's three-letter status, e.g. ``frr ii ``); :func:`missing_packages` parses it."""


def missing_packages(output, wanted):
    """The packages of ``wanted`` that ``output`` (``dpkg-query -W -f DPKG_STATUS_FORMAT`` of them)
    does not show installed, in ``wanted``'s order. Installed: status ``?i`` with no error flag
    (``ii``, or ``hi`` for a held package). A package dpkg does not know prints no line (dpkg-query
    says so on stderr); a line this parser does not understand (a connection's banner, a carriage
    return) counts for nothing: the package is then missing, and apt, which is idempotent, runs."""
    installed = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 2 and len(fields[1]) == 2 and fields[1][1] == "i":
            installed.add(fields[0])
    return [name for name in wanted if name not in installed]


def _jumps(jumps, first):
    return [dict(table=t, chain=c, target=target, first=first) for t, c, target in jumps]


def contract():
    """What the roles need from here, as plain data (the render result carries it)."""
    return dict(
        state_dir=STATE_DIR,
        var_dir=VAR_DIR,
        run_dir=RUN_DIR,
        route_protocol=ROUTE_PROTOCOL,
        paths=dict(
            routes=ROUTES_PATH, rt_protos=RT_PROTOS_PATH, generation=GENERATION_PATH, lease=LEASE_PATH,
            reconciled=RECONCILED_PATH, expected=EXPECTED_PATH, drain=DRAIN_PATH,
            agent_config=AGENT_CONFIG_PATH,
            dhcp_config=DHCP_CONFIG_PATH, dhcp_hosts=DHCP_HOSTS_PATH, dhcp_leases=DHCP_LEASE_PATH,
            dhcp_unit=DHCP_UNIT_PATH, nat=NAT_PATH, filter=FILTER_PATH, filter6=FILTER6_PATH, natgw=NATGW_PATH,
            conntrack_sysctl=CONNTRACK_SYSCTL_PATH, conntrack_modules=CONNTRACK_MODULES_PATH,
            frr_conf=FRR_CONF_PATH, frr_daemons=FRR_DAEMONS_PATH, frr_reload=FRR_RELOAD,
        ),
        dhcp_unit=DHCP_UNIT_NAME,
        host_library=dict(files=list(HOST_LIBRARY), package=HOST_LIBRARY_PACKAGE, archive=HOST_ARCHIVE_PATH,
                          programs=[name for name, dummy in HOST_PROGRAMS]),
        chain_prefix=CHAIN_PREFIX,
        nat_jumps=_jumps(NAT_JUMPS, False),
        filter_jumps=_jumps(FILTER_JUMPS, True),
        nft_family=NFT_FAMILY,
        nft_table=NFT_TABLE,
        packages={role: list(names) for role, names in PACKAGES.items()},
    )
