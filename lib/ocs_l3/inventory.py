"""Read fabric input without Ansible: the instances file, and (for tools,
benchmarks and tests) a YAML inventory directory in the layout documented in
the README (``hosts.yml``, ``group_vars/all/``, ``host_vars/``).

Ansible runs read the inventory with Ansible's own plugins and pass the same
plain data to :func:`fabric_input`.
"""

import csv
import io
import json
import os

import yaml

from .fabric import HOST_KEYS, ROLE_GROUPS

CSV_FIELDS = ("hypervisor", "name", "mac", "ip", "floating_ip", "interface")


class _SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader (libyaml's when PyYAML has it: ~10x faster on thousands of
    host_vars files) that also understands ``!vault`` tags as opaque strings."""


_SafeLoader.add_constructor("!vault", lambda loader, node: "<vaulted>")


def load_instances_file(path):
    """Parse a JSON or CSV instances file into [(where, record)].

    JSON: a list of records, or ``{"instances": [...]}``. CSV: a header line
    naming the columns (``hypervisor,name,mac,ip,floating_ip,interface``;
    the last two may be empty). ``where`` is ``instances.json[12]`` or
    ``instances.csv:13`` (line number), for error messages.
    """
    base = os.path.basename(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    text = raw.decode("utf-8")
    return parse_instances(text, base, csv_format=path.lower().endswith(".csv"))


def parse_instances(text, base="instances", csv_format=False):
    if csv_format:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return []
        unknown = [h for h in header if h not in CSV_FIELDS]
        if unknown:
            raise ValueError("%s:1 unknown column(s) %s (known: %s)" % (base, ", ".join(unknown), ", ".join(CSV_FIELDS)))
        out = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            line = reader.line_num
            if len(row) != len(header):
                out.append(("%s:%d" % (base, line), "has %d fields, the header has %d" % (len(row), len(header))))
                continue
            rec = {k: (v if v != "" else None) for k, v in zip(header, row)}
            out.append(("%s:%d" % (base, line), rec))
        return out
    data = json.loads(text)
    if isinstance(data, dict) and set(data) == {"instances"}:
        data = data["instances"]
    if not isinstance(data, list):
        raise ValueError("%s must hold a list of instance records or {\"instances\": [...]}" % base)
    return [("%s[%d]" % (base, i), rec) for i, rec in enumerate(data)]


def fabric_input(groups, hostvars, racks, fabric, base_dir=None, instances_text=None):
    """Assemble the input of :func:`ocs_l3.fabric.build`.

    ``ocs_fabric.instances_file`` is resolved against ``base_dir`` (the
    inventory directory) unless absolute. ``instances_text`` may carry the
    file's content instead (already read by the caller).
    """
    records = None
    if isinstance(fabric, dict) and fabric.get("instances_file"):
        path = fabric["instances_file"]
        if not os.path.isabs(path) and base_dir:
            path = os.path.join(base_dir, path)
        if instances_text is not None:
            records = parse_instances(instances_text, os.path.basename(path), path.lower().endswith(".csv"))
        else:
            records = load_instances_file(path)
    hv = {}
    for name, vars_ in hostvars.items():
        hv[name] = {k: vars_[k] for k in HOST_KEYS if k in vars_}
    return {"groups": {g: list(groups.get(g, [])) for g in ROLE_GROUPS}, "hostvars": hv,
            "racks": racks, "fabric": fabric, "instances_records": records}


def _load_yaml(path):
    with open(path) as fh:
        return yaml.load(fh, Loader=_SafeLoader) or {}


def _vars_from(path):
    """A vars file, or every *.yml/*.yaml/*.json file of a vars directory."""
    out = {}
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith((".yml", ".yaml", ".json")):
                out.update(_load_yaml(os.path.join(path, name)))
        return out
    for ext in ("", ".yml", ".yaml", ".json"):
        if os.path.isfile(path + ext):
            return _load_yaml(path + ext)
    return out


def _walk_group(name, node, groups, hostvars):
    node = node or {}
    members = groups.setdefault(name, [])
    for host, hvars in (node.get("hosts") or {}).items():
        members.append(host)
        hostvars.setdefault(host, {}).update(hvars or {})
    seen = set(members)  # `h not in members` (a list) was O(hosts^2): 0.55 s for 10k hosts
    for child, cnode in (node.get("children") or {}).items():
        _walk_group(child, cnode, groups, hostvars)
        members.extend(h for h in groups[child] if h not in seen and not seen.add(h))


def load_inventory_dir(path):
    """Read a YAML inventory directory into fabric input (no Ansible needed)."""
    groups, hostvars = {}, {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not name.endswith((".yml", ".yaml")) or not os.path.isfile(full):
            continue
        data = _load_yaml(full)
        if not isinstance(data, dict) or "plugin" in data:
            continue  # an inventory plugin configuration (e.g. constructed)
        for top, node in data.items():
            _walk_group(top, node, groups, hostvars)
    allvars = _vars_from(os.path.join(path, "group_vars", "all"))
    for host in list(hostvars):
        hostvars[host].update(_vars_from(os.path.join(path, "host_vars", host)))
    return fabric_input(groups, hostvars, allvars.get("ocs_racks"), allvars.get("ocs_fabric"), base_dir=path)
