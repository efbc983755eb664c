"""Which files each host gets, and the data its template prints.

One registry for render and apply: ``host_artifacts(fab, host)`` lists, for
one host, every file as an :class:`Artifact` — its path on the host, its kind
(for the manifest and for the role that applies it), the role template that
prints it, and the template variables (finished lines computed here, so the
template only prints). Cost is linear in the host's own instances, apart from
ToRs, which print their rack.
"""

from . import ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, routes


class Artifact:
    __slots__ = ("path", "kind", "role", "template", "vars", "mode")

    def __init__(self, path, kind, role, template, vars_, mode="0644"):
        self.path = path
        self.kind = kind
        self.role = role
        self.template = template
        self.vars = vars_
        self.mode = mode

    def __repr__(self):
        return "Artifact(%s, %s)" % (self.kind, self.path)


ROUTES_PATH = "/etc/ocs-l3/routes.batch"
RT_PROTOS_PATH = "/etc/iproute2/rt_protos.d/ocs-l3.conf"


def _text(lines):
    return "".join(line + "\n" for line in lines)


def host_artifacts(fab, host):
    """Every file ``host`` gets, in a stable order."""
    out = []
    if host.role in ("hypervisor", "tor"):
        out.append(Artifact(RT_PROTOS_PATH, "iproute2", "ocs_routes", "etc/iproute2/rt_protos.d/ocs-l3.conf.j2",
                            {"_ocs_routes_protocol": ROUTE_PROTOCOL, "_ocs_routes_protocol_name": ROUTE_PROTOCOL_NAME}))
        out.append(Artifact(ROUTES_PATH, "routes", "ocs_routes", "etc/ocs-l3/routes.batch.j2",
                            {"_ocs_routes_text": _text(routes.host_lines(fab, host))}))
    return out


def fabric_artifacts(fab, hosts=None):
    """{host name: [Artifact]} for ``hosts`` (names; default every fabric host)."""
    names = sorted(fab.hosts) if hosts is None else [h for h in hosts if h in fab.hosts]
    return {name: host_artifacts(fab, fab.hosts[name]) for name in names}
