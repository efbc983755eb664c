# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON text of the large documents the render writes (a host's expected.json, the build's
manifest.json): keys sorted, one member a line and, for a member that is a list or an object,
one item a line, each item compact. A change of one instance or one file is one line of a
diff, and the text is printed by json's C encoder: ``indent=`` takes json's pure-Python path,
about five times slower (2.3 s of 4 for 2,104 hosts' expected.json at 100k instances).
"""

import json

_ENCODE = json.JSONEncoder(sort_keys=True).encode


def dumps(doc):
    """``doc`` (a dict with string keys) as text, without a trailing newline."""
    members = []
    for key in sorted(doc):
        value = doc[key]
        name = _ENCODE(key)
        if isinstance(value, list) and value:
            items = ",\n".join("  " + _ENCODE(item) for item in value)
            members.append(" %s: [\n%s\n ]" % (name, items))
        elif isinstance(value, dict) and value:
            items = ",\n".join("  %s: %s" % (_ENCODE(k), _ENCODE(value[k])) for k in sorted(value))
            members.append(" %s: {\n%s\n }" % (name, items))
        else:
            members.append(" %s: %s" % (name, _ENCODE(value)))
    return "{\n%s\n}" % ",\n".join(members) if members else "{}"
