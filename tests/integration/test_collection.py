"""The collection as an operator gets it: built, listed, installed offline, used by full names.

The operator's side lives outside this repository: a scratch folder with its
own inventory and playbook, the collection installed into its own path, no
ansible.cfg of ours. (molecule converges the container fabric from the same
kind of installed copy: molecule/default/molecule.yml.)
"""

import filecmp
import json
import os
import re
import stat
import subprocess
import tarfile

import pytest

from helpers import BIN, EXAMPLE, ROOT, render

# What may ship: roles, playbooks, plugins, docs, metadata, the controller tools (reconcile, drift, plan, change, topology
# picture: they run on an operator's inventory), the agent's two executables.
ALLOWED = re.compile(r"""^(
    MANIFEST\.json | FILES\.json | README\.md | LICENSE | CHANGELOG\.rst | requirements\.yml
  | meta/runtime\.yml
  | changelogs/(config|changelog)\.yaml
  | docs/[\w-]+\.md
  | playbooks/\w+\.yml
  | plugins/(action|callback|doc_fragments|filter|inventory|modules|module_utils|plugin_utils)/\w+\.py
  | roles/ocs_\w+/(README\.md | (defaults|vars|handlers)/main\.yml | meta/(main|argument_specs)\.yml
                   | tasks/\w+\.yml | templates/[\w/.-]+\.j2)
  | tools/(ocs-reconcile|ocs-drift|ocs-topology|ocs-plan|ocs-change|ocs-status|ocs-rollout|ocs-bundle|ocs-pull)
)$""", re.X)
NEVER = re.compile(r"(^|/)(build|\.venv|\.git|tests|molecule|bench|__pycache__|\.pytest_cache|\.hypothesis)(/|$)")


def run(cmd, cwd, **env):
    """Run outside the project: no ANSIBLE_CONFIG of ours, the venv's Ansible on PATH."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    full.update(PATH=BIN + os.pathsep + os.environ["PATH"], ANSIBLE_NOCOLOR="1", **env)
    return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifact")
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT], out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("ocs-l3-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def installed(artifact, tmp_path_factory):
    """An offline install into a fresh path. --force: this venv already holds a clone of
    ocs.l3 (make venv links it); ansible.posix resolves from the ansible pip bundle."""
    dest = tmp_path_factory.mktemp("collections")
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force",
                "-p", str(dest), str(artifact)], dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ansible.posix" in proc.stdout  # the dependency was resolved (already installed)
    assert (dest / "ansible_collections" / "ocs" / "l3" / "MANIFEST.json").is_file()
    return dest


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    """The operator's own folder: a copy of the example inventory."""
    folder = tmp_path_factory.mktemp("operator")
    subprocess.run(["cp", "-r", EXAMPLE, str(folder / "inventory")], check=True)
    return folder


def test_the_artifact_holds_only_what_ships(artifact):
    with tarfile.open(artifact) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert [n for n in names if NEVER.search(n)] == []
    assert [n for n in names if not ALLOWED.match(n)] == []
    for must in ("galaxy.yml",):
        assert must not in names  # galaxy.yml becomes MANIFEST.json
    assert "plugins/module_utils/constants.py" in names and "roles/ocs_frr/templates/etc/frr/frr.conf.j2" in names
    with tarfile.open(artifact) as tar:
        info = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (info["namespace"], info["name"]) == ("ocs", "l3")
    assert info["dependencies"] == {"ansible.posix": ">=1.5.0"}


def test_the_allow_list_can_fail():
    for bad in ("build/hv/etc/frr/frr.conf", ".venv/bin/python", "tests/unit/test_x.py",
                "plugins/module_utils/__pycache__/x.pyc", "inventory/example/hosts.yml", "Makefile"):
        assert NEVER.search(bad) or not ALLOWED.match(bad), bad


def test_operator_renders_by_full_name_outside_the_repository(installed, operator, tmp_path):
    proc = run([os.path.join(BIN, "ansible-playbook"), "-i", "inventory", "ocs.l3.render", "-v"], operator,
               ANSIBLE_COLLECTIONS_PATH=str(installed))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = operator / "build"
    assert stat.S_IMODE(build.stat().st_mode) == 0o700  # the files carry the BGP password
    # The installed copy printed the files, not this clone.
    installed_root = str(installed / "ansible_collections" / "ocs" / "l3")
    assert '"collection": "%s"' % installed_root in proc.stdout, proc.stdout
    # Byte for byte what the clone renders from the same inventory.
    clone = tmp_path / "clone-build"
    assert render(str(clone), str(operator / "inventory")).returncode == 0
    cmp = filecmp.dircmp(str(build), str(clone), ignore=["manifest.json", ".lock"])

    def diffs(d):
        return d.diff_files + d.left_only + d.right_only + [x for sub in d.subdirs.values() for x in diffs(sub)]
    assert diffs(cmp) == []
    assert (build / "hv-r01-01" / "etc" / "ocs-l3" / "routes.batch").is_file()


def test_operator_gets_rack_groups_from_the_installed_plugin(installed, operator):
    """Ansible's default configuration (no ansible.cfg of ours: its ``auto`` plugin) loads the
    example's zz-racks.yml (``plugin: ocs.l3.racks``) from the installed collection."""
    proc = run([os.path.join(BIN, "ansible-inventory"), "-i", "inventory", "--list"], operator,
               ANSIBLE_COLLECTIONS_PATH=str(installed))
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stdout + proc.stderr
    groups = json.loads(proc.stdout)
    assert sorted(groups["rack_r02"]["hosts"]) == ["hv-r02-01", "hv-r02-02", "tor-r02"]


def test_operator_template_asks_the_filters_by_full_name(installed, operator):
    """The filters' purpose: an operator's own play asks the model for a host's routes."""
    (operator / "routes.yml").write_text("""---
- name: Ask the model for a hypervisor's route lines
  hosts: hv-r01-01
  gather_facts: false
  tasks:
    - name: Print the route lines
      ansible.builtin.debug:
        msg: >-
          {{ ocs_racks | ocs.l3.ocs_fabric_input(ocs_fabric, hostvars, groups, inventory_dir)
             | ocs.l3.ocs_route_lines(inventory_hostname) | to_json }}
      delegate_to: localhost
""")
    proc = run([os.path.join(BIN, "ansible-playbook"), "-i", "inventory", "routes.yml"], operator,
               ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_STDOUT_CALLBACK="json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = json.loads(json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["hv-r01-01"]["msg"])
    rendered = (operator / "build" / "hv-r01-01" / "etc" / "ocs-l3" / "routes.batch").read_text()
    assert lines and all(line in rendered for line in lines)


def test_build_dir_inside_the_installed_collection_is_refused(installed, operator):
    inside = installed / "ansible_collections" / "ocs" / "l3" / "build"
    proc = run([os.path.join(BIN, "ansible-playbook"), "-i", "inventory", "ocs.l3.render",
                "-e", "ocs_render_build_dir=%s" % inside], operator, ANSIBLE_COLLECTIONS_PATH=str(installed))
    assert proc.returncode != 0
    assert "is inside the installed collection" in proc.stdout
    assert not inside.exists()


def test_pull_unit_pins_inventory_and_collection_separately(installed, operator):
    role = installed / "ansible_collections" / "ocs" / "l3" / "roles" / "ocs_reconcile"
    (operator / "unit.yml").write_text("""---
- name: Print the pull-mode reconcile unit
  hosts: localhost
  gather_facts: false
  vars_files: [%s/defaults/main.yml, %s/vars/main.yml]
  tasks:
    - name: Render the unit
      ansible.builtin.debug:
        msg: "{{ lookup('ansible.builtin.template', '%s/templates/etc/systemd/system/ocs-l3-reconcile.service.j2') }}"
""" % (role, role, role))
    settings = dict(ocs_reconcile_mode="pull", ocs_reconcile_repo="https://git.example.invalid/fabric-inventory.git",
                    ocs_reconcile_collection="/srv/ocs/ocs-l3-0.4.0.tar.gz")
    proc = run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "unit.yml", "-e", json.dumps(settings)],
               operator,
               ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_STDOUT_CALLBACK="json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unit = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert "git clone -q -b main https://git.example.invalid/fabric-inventory.git /opt/ocs-l3/inventory" in unit
    assert ("ansible-galaxy collection install -p /opt/ocs-l3/collections /srv/ocs/ocs-l3-0.4.0.tar.gz" in unit)
    assert ("ExecStart=/opt/ocs-l3/collections/ansible_collections/ocs/l3/tools/ocs-reconcile "
            "-i /opt/ocs-l3/inventory/inventory -- --limit localhost -c local") in unit
    assert "Environment=ANSIBLE_COLLECTIONS_PATH=/opt/ocs-l3/collections" in unit
