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
    assert closure(["host_agent.py", "host_restore.py", "host_status.py"]) == set(constants.HOST_LIBRARY)


def test_the_host_library_needs_only_the_standard_library():
    for name in constants.HOST_LIBRARY:
        other = imports(name)[1] - {"__future__"}
        assert other <= set(sys.stdlib_module_names), (name, other - set(sys.stdlib_module_names))


def test_the_check_can_fail():
    assert "netaddr" in imports("addr.py")[1]
    assert "addr.py" in closure(["routes.py"])


def test_the_executables_only_call_the_library():
    for name, module in (("ocs-l3-agent", "host_agent"), ("ocs-l3-restore", "host_restore"),
                         ("ocs-l3-status", "host_status")):
        text = open(os.path.join(ROOT, "roles", "ocs_agent", "files", name)).read()
        assert not text.startswith("#!")  # ansible-test sanity allows no python3 shebang: the units name it
        assert "from ansible_collections.ocs.l3.plugins.module_utils.%s import main" % module in text
        assert len([ln for ln in text.splitlines() if ln and not ln.startswith("#")]) < 15
