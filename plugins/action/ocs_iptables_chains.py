# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module ocs_iptables_chains, with ``install``: its files installed and applied in one module run
(plugins/plugin_utils/install_action.py)."""

from __future__ import annotations

from ansible_collections.ocs.l3.plugins.plugin_utils.install_action import ApplyAction


class ActionModule(ApplyAction):
    MODULE = "ocs.l3.ocs_iptables_chains"
