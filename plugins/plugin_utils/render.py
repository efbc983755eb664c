# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The final text of a host's files: each Artifact printed by its role's template.

One code path prints every file: the ``ocs_render`` action (with its task's
templar) and the controller tools (``ocs-plan``, with :func:`offline_templar`)
both call :func:`render_host`.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import yaml
from ansible.template import trust_as_template

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(COLLECTION_ROOT, "roles")


def collection_version(root=COLLECTION_ROOT):
    """The version of the collection at ``root``: MANIFEST.json when installed, galaxy.yml in a clone."""
    manifest = os.path.join(root, "MANIFEST.json")
    if os.path.isfile(manifest):
        with open(manifest) as fh:
            return json.load(fh)["collection_info"]["version"]
    with open(os.path.join(root, "galaxy.yml")) as fh:
        return str(yaml.safe_load(fh)["version"])


MANAGED = "Managed by ocs-l3 (Ansible); local changes are overwritten"
"""The default ``ansible_managed`` text of every rendered file."""


def render_host(templar, host, artifacts, managed=None, cache=None):
    """[(Artifact, text)] of ``host``: each artifact's template printed with its
    variables. ``cache`` (template sources and skeletons) may be shared across hosts.

    A template that only prints its variables as they are (no ``{%``, every
    ``{{ }}`` a bare name, or ``ansible_managed`` through a filter) is printed
    through the templar once per run and variable set, with a placeholder for
    each variable: its *skeleton*. Each file is then the skeleton with the
    values put in place: the same text as printing it (tests compare both on
    whole fabrics), without compiling the same template for every file (~2.5 ms
    a file: most of ``render.yml``'s time at 500k instances)."""
    cache = {} if cache is None else cache
    managed = managed or MANAGED
    files = []
    for art in artifacts:
        path = os.path.join(ROLES_DIR, art.role, "templates", art.template)
        if path not in cache:
            with open(path) as fh:
                cache[path] = trust_as_template(fh.read())
        key = (path, tuple(sorted(art.vars)))
        if key not in cache:
            cache[key] = _skeleton(templar, path, cache[path], key[1], managed) if _opaque(cache[path], key[1]) else None
        parts = cache[key]
        if parts is not None and all(isinstance(art.vars[n], str) for n in key[1]):
            text = "".join(art.vars[p[1]] if isinstance(p, tuple) else p for p in parts)
            files.append((art, text + "\n" * max(0, _trailing(cache[path]) - _trailing(text))))
        else:
            files.append((art, _print(templar, path, cache[path], dict(art.vars), managed, host)))
    return files


_EXPR = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


def _opaque(source, names):
    """Whether the template prints its variables (``names``) only as they are: no
    statement (``{%``), and every expression one of them or ``ansible_managed | ...``
    (the same value in every file of a run)."""
    if "{%" in source:
        return False
    return all(e in names or e.startswith("ansible_managed") for e in _EXPR.findall(source))


def _print(templar, path, source, variables, managed, host, preserve=True):
    variables.update(ansible_managed=managed, inventory_hostname=host)
    env = templar.copy_with_new_env(searchpath=[os.path.dirname(path)], available_variables=variables)
    return str(env.template(source, escape_backslashes=False, overrides=dict(trim_blocks=True),
                            preserve_trailing_newlines=preserve))


def _trailing(text):
    return len(text) - len(text.rstrip("\n"))


def _skeleton(templar, path, source, names, managed):
    """The template printed with a placeholder per variable, as [literal text or
    (None, name)]; None when the placeholders do not come back whole (then every
    file is printed)."""
    tag = uuid.uuid4().hex
    marks = {name: "@@ocs-%s-%d@@" % (tag, i) for i, name in enumerate(names)}
    # Ansible gives the output at least the template's trailing newlines, after the values
    # are in: render_host does that per file (the placeholders end in none).
    text = _print(templar, path, source, dict(marks), managed, None, preserve=False)
    back = {mark: name for name, mark in marks.items()}
    pieces = re.split("(@@ocs-%s-[0-9]+@@)" % tag, text)
    if "@@ocs-%s" % tag in "".join(pieces[0::2]):
        return None
    return [(None, back[p]) if i % 2 else p for i, p in enumerate(pieces) if p or i % 2]


def offline_templar():
    """A templar outside a playbook run (tools, tests), with Ansible's filters loaded."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import init_loaders

    init_loaders()
    return Templar(loader=DataLoader())
