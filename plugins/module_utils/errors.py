# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the fabric model."""


class FabricError(ValueError):
    """The fabric is invalid. ``problems`` lists every problem found, each a
    sentence that starts with the path of the offending object and field,
    e.g. ``hypervisors.hv-r01-02.ocs_instances[3] (vm-a).ip 198.19.2.7 is
    outside rack r01 instance_subnets [198.19.1.0/24]``."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        head = "fabric is invalid: %d problem%s" % (count, "" if count == 1 else "s")
        super().__init__(head + "\n" + "\n".join("- " + p for p in self.problems))
