# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install several whole files in one task, in one module run where the files are small.

The work, shared with the apply modules' actions, is in plugins/plugin_utils/install_action.py (its
docstring says how files travel and are written).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.ocs.l3.plugins.plugin_utils.install_action import ARGUMENT_SPEC, install, names_diff


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        done = install(self, args, task_vars)
        result.update(done)
        if done.get("changed_files") and self._task.diff:
            result["diff"] = [names_diff(self, done["changed_files"])]
        return result
