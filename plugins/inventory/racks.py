# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rack groups ``rack_<id>`` from each host's ``ocs_rack``, without a template per host."""

from __future__ import annotations

DOCUMENTATION = r"""
name: racks
short_description: Rack groups C(rack_<id>) from each host's C(ocs_rack)
version_added: 0.6.0
description:
  - Adds every host that has an C(ocs_rack) to the group C(rack_<ocs_rack>) (the name made safe the way
    Ansible makes group names safe), so that C(--limit rack_r07) converges one rack.
  - >-
    The groups are the same as those of the built-in C(ansible.builtin.constructed) plugin with
    C(keyed_groups) C([{key: ocs_rack, prefix: rack}]), C(strict=false) and C(use_vars_plugins=true); this
    plugin reads the variable instead of compiling and evaluating a template for every host, which is most
    of what loading a fleet's inventory costs (docs/performance.md).
  - C(ocs_rack) is looked up the way Ansible resolves a host's variables (C(host_vars) files through the vars
    plugins over the inventory's own variables, the host's over its groups'); a value that is not a
    non-empty string makes no group (the fabric's validation reports it).
  - Like C(constructed), the file must sort after the sources that define the hosts (C(zz-racks.yml)), and the
    plugin must be listed in C([inventory] enable_plugins).
options:
  plugin:
    description: The name of this plugin; the file is a configuration of it.
    type: str
    required: true
    choices: [ocs.l3.racks]
  prefix:
    description: The group name's prefix (C(<prefix>_<ocs_rack>)).
    type: str
    default: rack
"""

EXAMPLES = r"""
# zz-racks.yml, beside hosts.yml in the inventory directory
plugin: ocs.l3.racks
"""

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.vars import combine_vars
from ansible.vars.plugins import get_vars_from_inventory_sources

VARIABLE = "ocs_rack"


def rack_of(host_vars, group_vars):
    """The host's rack: its own ``ocs_rack`` over its groups', or None when it has none that can
    name a group (absent, empty, not a string)."""
    value = host_vars[VARIABLE] if VARIABLE in host_vars else group_vars.get(VARIABLE)
    return value if isinstance(value, str) and value else None


class InventoryModule(BaseInventoryPlugin):
    NAME = "ocs.l3.racks"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=False):
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        prefix = self.get_option("prefix")
        sources = inventory.processed_sources
        groups_seen = {}
        for name, host in list(inventory.hosts.items()):
            own = combine_vars(host.get_vars(), get_vars_from_inventory_sources(loader, sources, [host], "all"))
            if VARIABLE in own:
                rack = rack_of(own, {})
            else:
                # Rare (a rack set on a group): the groups' variables, once per set of groups.
                key = tuple(g.name for g in host.get_groups())
                if key not in groups_seen:
                    gvars = combine_vars(get_group_vars(host.get_groups()),
                                         get_vars_from_inventory_sources(loader, sources, host.get_groups(), "all"))
                    groups_seen[key] = rack_of({}, gvars)
                rack = groups_seen[key]
            if rack is None:
                continue
            group = self._sanitize_group_name("%s_%s" % (prefix, rack))
            try:
                inventory.add_group(group)
                inventory.add_child(group, name)
            except AnsibleError as exc:  # a group name clashing with a host's
                raise AnsibleParserError("%s: cannot add host %s to group %s: %s" % (path, name, group, exc)) from exc
