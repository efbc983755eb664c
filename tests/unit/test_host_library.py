"""The files the ocs_agent role installs on hosts are the whole import closure, standard library only."""

import ast
import os
import sys

from fabric_data import ROOT
from ansible_collections.ocs.l3.plugins.module_utils import constants

MU = os.path.join(ROOT, "plugins", "module_utils")


def imports(name):
    """(module_utils files, other top-level modules) imported by module_utils/<name>."""
    tree = ast.parse(open(os.path.join(MU, name)).read())
    local, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                local.add(node.module + ".py")
            else:
                local.update(alias.name + ".py" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            other.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            other.update(alias.name.split(".")[0] for alias in node.names)
    return local, other


def closure(roots):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imports(name)[0])
    return seen


def test_the_host_library_is_the_closure_of_the_agent_the_restore_and_the_status_collector():
    assert closure([module + ".py" for dummy, module in constants.HOST_PROGRAMS]) == set(constants.HOST_LIBRARY)


def test_the_host_library_needs_only_the_standard_library():
    for name in constants.HOST_LIBRARY:
        other = imports(name)[1] - {"__future__"}
        assert other <= set(sys.stdlib_module_names), (name, other - set(sys.stdlib_module_names))


def test_the_check_can_fail():
    assert "netaddr" in imports("addr.py")[1]
    assert "addr.py" in closure(["routes.py"])


def test_each_host_program_is_the_main_of_a_library_module():
    for name, module in constants.HOST_PROGRAMS:
        assert module + ".py" in constants.HOST_LIBRARY
        assert "\ndef main(argv=None" in open(os.path.join(MU, module + ".py")).read(), name
