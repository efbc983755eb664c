# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one inventory reader: fabric input from an inventory, as Ansible reads it.

The render (``ocs_render`` action) gets the same values from its task
variables; tools, benchmarks and tests call :func:`load_fabric_input`, which
uses Ansible's own inventory and variable managers (every inventory plugin,
group and host vars, vaulted values decrypted, templates resolved), then the
same :func:`fabric_input` and :func:`plain` the render uses.
"""

from __future__ import annotations

import importlib
import os
import sys

import yaml

from ansible import constants as C
from ansible.cli import CLI
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from ansible_collections.ocs.l3.plugins.module_utils.fabric import HOST_KEYS, ROLE_GROUPS
from ansible_collections.ocs.l3.plugins.module_utils.inventory import fabric_input

FABRIC_VARS = ("ocs_racks", "ocs_fabric")
"""Fabric-wide variables (group ``all``), besides each host's HOST_KEYS."""


def plain(value):
    """Ansible's tagged or encrypted values -> plain Python (str, int, bool, list, dict)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "_ciphertext") or type(value).__name__ in ("EncryptedString", "AnsibleVaultEncryptedUnicode"):
        return str(value)
    return value


def _import_this_collection():
    """Import every module of this collection's library before Ansible's collection finder goes
    in: outside a run, Python imported ``ansible_collections.ocs.l3`` through site-packages, and
    the finder (first on sys.meta_path once installed) refuses submodules of a collection whose
    metadata it did not load itself ("collection metadata was not loaded for collection ocs.l3")."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    package = __name__.rsplit(".", 2)[0]  # ansible_collections.ocs.l3.plugins
    for sub in ("module_utils", "plugin_utils"):
        for name in sorted(os.listdir(os.path.join(base, sub))):
            if name.endswith(".py") and not name.startswith("_"):
                importlib.import_module("%s.%s.%s" % (package, sub, name[:-3]))


def init_loaders():
    """Outside a run (tools, tests): this collection's library imported, then Ansible's plugin and
    collection loaders started (once; inside a run they already are)."""
    if not any(type(f).__name__ == "_AnsibleCollectionFinder" for f in sys.meta_path):
        _import_this_collection()
        init_plugin_loader()
        _give_metadata()


def _give_metadata():
    """The collection's package, imported before the finder, gets the metadata the finder gives each
    collection it loads (``meta/runtime.yml``; it routes no plugin): Ansible's plugin loader reads it
    before it loads one of the collection's own plugins (the ``ocs.l3.racks`` inventory plugin of an
    inventory's ``zz-racks.yml``), and refuses a collection without it."""
    package = sys.modules.get(__name__.rsplit(".", 3)[0])  # ansible_collections.ocs.l3
    if package is None or getattr(package, "_collection_meta", None) is not None:
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "meta", "runtime.yml")) as fh:
        meta = yaml.safe_load(fh) or {}
    if "plugin_routing" in meta:  # the finder would canonicalize it; this collection has none
        raise RuntimeError("meta/runtime.yml routes plugins: load the collection through Ansible's finder")
    package._collection_meta = meta


def role_hosts(groups):
    """Names of every fabric host (members of the role groups)."""
    names = set()
    for g in ROLE_GROUPS:
        names.update(groups.get(g, []))
    return names


def load_fabric_input(source, vault_password_files=None, extra_vars=None):
    """Fabric input of the inventory ``source`` (a file or directory), read by Ansible; a list
    of sources is read as ``-i`` repeated reads them (later sources win, variable by variable:
    override inventories); relative paths resolve against the first.

    ``vault_password_files`` defaults to Ansible's configuration
    (``ANSIBLE_VAULT_PASSWORD_FILE``); ``extra_vars`` win over everything, as ``-e`` does.
    """
    init_loaders()
    loader = DataLoader()
    files = list(vault_password_files or [])
    if files or C.DEFAULT_VAULT_PASSWORD_FILE or C.DEFAULT_VAULT_IDENTITY_LIST:
        secrets = CLI.setup_vault_secrets(loader, vault_ids=C.DEFAULT_VAULT_IDENTITY_LIST,
                                          vault_password_files=files or None, ask_vault_pass=False)
        loader.set_vault_secrets(secrets)
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    source = sources[0]
    inventory = InventoryManager(loader=loader, sources=sources)
    variables = VariableManager(loader=loader, inventory=inventory)
    if extra_vars:
        variables.extra_vars = dict(extra_vars)
    groups = {g: [h.name for h in inventory.groups[g].get_hosts()] if g in inventory.groups else []
              for g in ROLE_GROUPS}
    hostvars, fabric_vars = {}, None
    for name in sorted(role_hosts(groups)):
        host = inventory.get_host(name)
        vars_ = variables.get_vars(host=host, include_hostvars=False, stage="task")
        templar = Templar(loader=loader, variables=vars_)
        wanted = HOST_KEYS + (FABRIC_VARS if fabric_vars is None else ())
        values = {k: plain(templar.template(vars_[k])) for k in wanted if k in vars_}
        if fabric_vars is None:
            fabric_vars = {k: values.pop(k, None) for k in FABRIC_VARS}
        hostvars[name] = values
    if fabric_vars is None:
        vars_ = variables.get_vars(stage="task")
        templar = Templar(loader=loader, variables=vars_)
        fabric_vars = {k: plain(templar.template(vars_[k])) if k in vars_ else None for k in FABRIC_VARS}
    base = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    return fabric_input(groups, hostvars, fabric_vars["ocs_racks"], fabric_vars["ocs_fabric"], base_dir=base)
