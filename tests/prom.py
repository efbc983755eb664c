"""A strict parser of the Prometheus text exposition format (the ocs_l3.prom textfile tests)."""

import re

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? '
                  r'(-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prom(text):
    """Exposition format -> {(name, ((label, value), ...)): float}; fails on any malformed line,
    a sample before its TYPE, a duplicate series or a missing final newline."""
    assert text.endswith("\n")
    typed, helped, out = set(), set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter") and name in helped
            typed.add(name)
        else:
            m = LINE.match(line)
            assert m, "malformed sample line: %r" % line
            assert m.group(1) in typed, "sample before its TYPE: %r" % line
            key = (m.group(1), tuple(sorted(LABEL.findall(m.group(3) or ""))))
            assert key not in out, "duplicate series %r" % (key,)
            out[key] = float(m.group(4))
    return out


def metric(parsed, name, **labels):
    return parsed[(name, tuple(sorted(labels.items())))]
