# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The final text of a host's files: each Artifact printed by its role's template.

One code path prints every file: the ``ocs_render`` action (with its task's
templar) and the controller tools (``ocs-plan``, with :func:`offline_templar`)
both call :func:`render_host`.
"""

from __future__ import annotations

import os

from ansible.template import trust_as_template

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(COLLECTION_ROOT, "roles")
MANAGED = "Managed by ocs-l3 (Ansible); local changes are overwritten"
"""The default ``ansible_managed`` text of every rendered file."""


def render_host(templar, host, artifacts, managed=None, cache=None):
    """[(Artifact, text)] of ``host``: each artifact's template printed with its
    variables. ``cache`` ({template path: source}) may be shared across hosts."""
    cache = {} if cache is None else cache
    files = []
    for art in artifacts:
        path = os.path.join(ROLES_DIR, art.role, "templates", art.template)
        if path not in cache:
            with open(path) as fh:
                cache[path] = trust_as_template(fh.read())
        variables = dict(art.vars, ansible_managed=managed or MANAGED, inventory_hostname=host)
        env = templar.copy_with_new_env(searchpath=[os.path.dirname(path)], available_variables=variables)
        text = env.template(cache[path], escape_backslashes=False, overrides=dict(trim_blocks=True))
        files.append((art, str(text)))
    return files


def offline_templar():
    """A templar outside a playbook run (tools, tests), with Ansible's filters loaded."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import init_loaders

    init_loaders()
    return Templar(loader=DataLoader())
