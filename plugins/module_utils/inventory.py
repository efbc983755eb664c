# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fabric input: the plain mapping :func:`fabric.build` validates.

:func:`fabric_input` assembles it from what Ansible read (groups, host
variables, ``ocs_racks``, ``ocs_fabric``) plus the instances file. Ansible
reads the inventory, always: the render (``plugins/action/ocs_render.py``)
from its task variables, tools, benchmarks and tests through
``plugins/plugin_utils/inventory.py`` (Ansible's inventory API), so both see
the same fabric, vaulted values and group variables included.
"""

import csv
import io
import json
import os

from .fabric import HOST_KEYS, ROLE_GROUPS

CSV_FIELDS = ("hypervisor", "name", "mac", "ip", "floating_ip", "interface", "conn_limit", "ip6", "inbound6")


def load_instances_file(path):
    """Parse a JSON or CSV instances file into [(where, record)].

    JSON: a list of records, or ``{"instances": [...]}``. CSV: a header line
    naming the columns (``hypervisor,name,mac,ip,floating_ip,interface,conn_limit,ip6,inbound6``,
    in any order; the last five may be empty or left out). A record's ``ip6`` (a JSON key,
    a CSV column) is its optional IPv6 address, ``inbound6`` its own IPv6 inbound policy. ``where`` is ``instances.json[12]`` or
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
