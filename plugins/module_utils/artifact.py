# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One rendered file of one host (what the render writes and a role applies)."""


class Artifact:
    """``path`` on the host; ``kind`` (manifest and apply); ``role`` and
    ``template`` (``roles/<role>/templates/<template>``) that print it;
    ``vars``: template variables, finished text computed in Python."""

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


def text(lines):
    """Lines -> file text, one newline after each line."""
    return "".join(line + "\n" for line in lines)
