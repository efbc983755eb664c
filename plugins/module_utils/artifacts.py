# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which files each host gets: one registry for render and apply.

Each concern module (routes, dhcp, nat, frr, ...) has
``artifacts(fab, host) -> [Artifact]`` listing the files it gives one host,
with template variables already computed (templates only print). Cost is
linear in the host's own instances (ToRs print their rack).
"""

from . import agent, dhcp, expected, frr, nat, natgw, routes
from . import firewall
from .memo import forget

CONCERNS = (
    routes.artifacts,
    frr.artifacts,
    nat.artifacts,
    natgw.artifacts,
    firewall.artifacts,
    dhcp.artifacts,
    agent.artifacts,
    expected.artifacts,
)


def host_artifacts(fab, host):
    """Every file ``host`` gets, in a stable order."""
    out = []
    for concern in CONCERNS:
        out.extend(concern(fab, host))
    return out


def fabric_artifacts(fab, hosts=None):
    """{host name: [Artifact]} for ``hosts`` (names; default every fabric host). The memo keeps the
    per-host values of the hosts used last (memo.HOSTS_KEPT) while it runs, none after."""
    names = sorted(fab.hosts) if hosts is None else [h for h in hosts if h in fab.hosts]
    out = {name: host_artifacts(fab, fab.hosts[name]) for name in names}
    forget(fab)
    return out
