"""The shape of the shipped Python: no function under plugins/ longer than
MAX_LINES (a function one can read at once), and module_utils free of what
ansible-test's pylint rejects (assert statements, ``_`` as a throwaway name)."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")
MAX_LINES = 60

# Longer functions still there, with their length when this list was written:
# one may shrink (then lower or drop its entry), none may grow. Both are a
# module's main(): its argument spec and the plumbing of one apply. They are
# exercised only on real hosts (molecule, the namespace tests), so they were
# left whole when the validator was split (issue 22).
ALLOWED = {
    "modules/ocs_frr_reload.py:main": 70,
}


def _sources():
    for base, dirs, files in os.walk(PLUGINS):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(base, name)
                with open(path, encoding="utf-8") as fh:
                    yield os.path.relpath(path, PLUGINS), ast.parse(fh.read(), path)


def _functions(tree):
    """(qualified name, lines) of every function and method, nested ones too."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + child.name, child.end_lineno - child.lineno + 1
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)
    return walk(tree, "")


def test_no_function_is_longer_than_max_lines():
    long_ones = {}
    for path, tree in _sources():
        for name, lines in _functions(tree):
            if lines > MAX_LINES:
                long_ones["%s:%s" % (path, name)] = lines
    grown = ["%s has %d lines (allowed: %s)" % (key, lines, ALLOWED.get(key, MAX_LINES))
             for key, lines in sorted(long_ones.items()) if lines > ALLOWED.get(key, MAX_LINES)]
    assert not grown, "functions longer than %d lines, split them: %s" % (MAX_LINES, "; ".join(grown))
    stale = sorted(set(ALLOWED) - set(long_ones))
    assert not stale, "no longer over %d lines, drop from ALLOWED: %s" % (MAX_LINES, ", ".join(stale))


def test_module_utils_functions_are_all_short():
    assert not [key for key in ALLOWED if key.startswith("module_utils/")]


def test_module_utils_have_no_assert_and_no_underscore_name():
    found = []
    for path, tree in _sources():
        if not path.startswith("module_utils" + os.sep):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                found.append("%s:%d assert" % (path, node.lineno))
            elif isinstance(node, ast.Name) and node.id == "_":
                found.append("%s:%d the name _" % (path, node.lineno))
    assert not found, found
