"""execution-environment.yml: ansible-builder creates the EE build context (the image needs a registry: not here)."""

import json
import os
import re
import shutil
import subprocess
import sysconfig
import tarfile

import pytest
import yaml

from helpers import BIN, ROOT

EE_FILES = ("execution-environment.yml", "requirements-ee.txt", "requirements-ee.yml", "bindep.txt")


def pins(path):
    with open(path) as fh:
        return dict(re.match(r"([A-Za-z0-9_.\[\]-]+)==(\S+)", ln).groups() for ln in fh
                    if ln.strip() and not ln.startswith("#"))


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The EE files of the repository beside a freshly built artifact, as `make ee` lays them out."""
    src = tmp_path_factory.mktemp("ee")
    for name in EE_FILES:
        shutil.copy(os.path.join(ROOT, name), src / name)
    out = src / "build" / "collection"
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (artifact,) = out.glob("ocs-l3-*.tar.gz")
    shutil.copy(artifact, out / "ocs-l3.tar.gz")
    ctx = src / "context"
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", str(src / "execution-environment.yml"),
                           "--context", str(ctx)], capture_output=True, text=True, timeout=300, cwd=str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr
    return ctx


def test_context_holds_the_containerfile_and_the_requirements(context):
    containerfile = (context / "Containerfile").read_text()
    definition = yaml.safe_load(open(os.path.join(ROOT, "execution-environment.yml")))
    assert definition["version"] == 3
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in containerfile
    assert "ansible-galaxy collection install" in containerfile
    build = context / "_build"
    for name, ours in (("requirements.txt", "requirements-ee.txt"), ("requirements.yml", "requirements-ee.yml"),
                       ("bindep.txt", "bindep.txt")):
        assert (build / name).read_text() == open(os.path.join(ROOT, ours)).read()


def test_context_holds_the_collection_artifact(context):
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    local = [c["name"] for c in galaxy["collections"] if c.get("type") == "file"]
    assert local == ["collections/ocs-l3.tar.gz"]  # relative to /build, where the Containerfile runs ansible-galaxy
    with tarfile.open(context / "_build" / local[0]) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"]) == ("ocs", "l3")
    assert manifest["collection_info"]["dependencies"] == {"ansible.posix": ">=1.5.0"}


def test_ee_pins_are_the_project_pins():
    """The EE runs what the tests ran: ansible-core and the Python packages at requirements.txt's
    pins, ansible.posix at the version of the pinned ansible bundle."""
    project = pins(os.path.join(ROOT, "requirements.txt"))
    definition = yaml.safe_load(open(os.path.join(ROOT, "execution-environment.yml")))
    core = definition["dependencies"]["ansible_core"]["package_pip"]
    assert core == "ansible-core==%s" % project["ansible-core"]
    for name, version in pins(os.path.join(ROOT, "requirements-ee.txt")).items():
        assert project[name] == version, name
    galaxy = yaml.safe_load(open(os.path.join(ROOT, "requirements-ee.yml")))
    posix = next(c for c in galaxy["collections"] if c["name"] == "ansible.posix")
    site = sysconfig.get_paths()["purelib"]  # the ansible bundle's collections
    with open(os.path.join(site, "ansible_collections", "ansible", "posix", "MANIFEST.json")) as fh:
        assert posix["version"] == json.load(fh)["collection_info"]["version"]
