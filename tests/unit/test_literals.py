"""The shared library is the only place that spells out our names.

The route protocol number, an ``OCS-`` chain name and ``/etc/ocs-l3`` are
defined once, in ``plugins/module_utils`` (constants.py); the roles get them
from the render result (``_ocs_render_result.contract``) and the host modules
import them. This test fails when one appears as a literal in the code that
ships anywhere else: the other plugins, the roles' tasks, handlers, vars and
defaults, the playbooks, the shipped tools and the roles' files (the host agent's executables).

Exempt, on purpose:
- templates (``roles/*/templates``): they print what the computation hands them;
- documentation: docstrings, modules' DOCUMENTATION/EXAMPLES/RETURN, READMEs,
  task names and argument-spec descriptions, comments;
- tests and the molecule harness: they state expected outcomes (a restated
  expectation is a check, not a copy the product reads).
"""

import ast
import glob
import os
import re

import pytest
import yaml

from fabric_data import ROOT
from ansible_collections.ocs.l3.plugins.module_utils import constants

CHAIN_RE = re.compile(r"\b%s[A-Z]" % re.escape(constants.CHAIN_PREFIX))
STATE_DIR = constants.STATE_DIR
PROTOCOL = constants.ROUTE_PROTOCOL
DOC_NAMES = {"DOCUMENTATION", "EXAMPLES", "RETURN"}
DOC_KEYS = {"name", "description", "short_description"}


def offending_string(text):
    """What is wrong with a string literal, or None."""
    if STATE_DIR in text:
        return "contains %s" % STATE_DIR
    if CHAIN_RE.search(text):
        return "names a chain %s" % CHAIN_RE.search(text).group(0)
    if re.search(r"\bproto(col)?\s+%d\b" % PROTOCOL, text):
        return "names route protocol %d" % PROTOCOL
    return None


def python_literals(source):
    """[(line, problem)] of one Python file, docs excluded."""
    tree = ast.parse(source)
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in DOC_NAMES for t in node.targets):
            docs.add(id(node.value))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        if isinstance(node.value, bool):
            continue
        if isinstance(node.value, int) and node.value == PROTOCOL:
            out.append((node.lineno, "the route protocol number %d" % PROTOCOL))
        elif isinstance(node.value, str):
            problem = offending_string(node.value)
            if problem:
                out.append((node.lineno, problem))
    return out


def yaml_literals(data, where=""):
    """[(path, problem)] of a YAML document, names and descriptions excluded."""
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in DOC_KEYS and isinstance(value, (str, list)):
                continue
            out += yaml_literals(value, "%s.%s" % (where, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += yaml_literals(value, "%s[%d]" % (where, i))
    elif isinstance(data, int) and not isinstance(data, bool) and data == PROTOCOL:
        out.append((where, "the route protocol number %d" % PROTOCOL))
    elif isinstance(data, str):
        problem = offending_string(data)
        if problem:
            out.append((where, problem))
    return out


def shell_literals(source):
    out = []
    for n, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
        problem = offending_string(code)
        if problem:
            out.append((n, problem))
    return out


def shipped_files():
    """Every file that ships and is code, outside the shared library."""
    py = [p for p in glob.glob(os.path.join(ROOT, "plugins", "*", "*.py"))
          if os.sep + "module_utils" + os.sep not in p]
    yml = glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))
    for part in ("tasks", "handlers", "vars", "defaults", "meta"):
        yml += glob.glob(os.path.join(ROOT, "roles", "*", part, "*.yml"))
    names = ("ocs-reconcile", "ocs-drift", "ocs-plan", "ocs-status", "ocs-rollout")
    tools = [os.path.join(ROOT, "tools", name) for name in names]
    tools += sorted(glob.glob(os.path.join(ROOT, "roles", "*", "files", "*")))  # the host agent's executables
    return py, yml, tools


def scan():
    py, yml, tools = shipped_files()
    problems = []
    for path in py:
        with open(path) as fh:
            problems += ["%s:%s: %s" % (os.path.relpath(path, ROOT), n, p) for n, p in python_literals(fh.read())]
    for path in yml:
        with open(path) as fh:
            problems += ["%s:%s: %s" % (os.path.relpath(path, ROOT), w, p) for w, p in yaml_literals(yaml.safe_load(fh))]
    for path in tools:
        with open(path) as fh:
            text = fh.read()
        python = text.startswith("#!/usr/bin/env python") or os.sep + "files" + os.sep in path
        found = python_literals(text) if python else shell_literals(text)
        problems += ["%s:%s: %s" % (os.path.relpath(path, ROOT), n, p) for n, p in found]
    return problems


def test_no_shared_name_outside_the_library():
    py, yml, tools = shipped_files()
    assert len(py) >= 9 and len(yml) >= 30 and all(os.path.isfile(t) for t in tools)
    assert scan() == []


@pytest.mark.parametrize("source, expected", [
    ('X = "/etc/ocs-l3/routes.batch"\n', "contains /etc/ocs-l3"),
    ('ARGS = dict(protocol=dict(type="int", default=211))\n', "the route protocol number 211"),
    ('J = [{"target": "OCS-INPUT"}]\n', "names a chain OCS-I"),
    ('CMD = "ip route show proto 211"\n', "names route protocol 211"),
])
def test_the_scan_finds_a_copy(source, expected):
    """The check can fail: a copy of each kind is found, in code."""
    assert [p for _, p in python_literals(source)] == [expected]


def test_docs_are_exempt():
    source = ('"""Routes of protocol 211 under /etc/ocs-l3, chain OCS-INPUT."""\n'
              'DOCUMENTATION = "default: /etc/ocs-l3/routes.batch"\n'
              'def f():\n    """OCS-FORWARD"""\n    return 1\n')
    assert python_literals(source) == []


def test_yaml_scan():
    doc = [{"name": "Create /etc/ocs-l3", "ansible.builtin.file": {"path": "/etc/ocs-l3"}},
           {"vars": {"_jumps": [{"target": "OCS-PREROUTING"}]}}]
    assert [p for _, p in yaml_literals(doc)] == ["contains /etc/ocs-l3", "names a chain OCS-P"]
