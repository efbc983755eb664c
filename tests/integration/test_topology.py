"""tools/ocs-topology for real: Graphviz's dot renders the example, the molecule fabric and 100 racks."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from helpers import EXAMPLE, ROOT

from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools import gen_fabric as gen

TOOL = os.path.join(ROOT, "tools", "ocs-topology")
MOLECULE = os.path.join(ROOT, "molecule", "default", "inventory")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed (make apt)")


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    """100 racks: past 508 public addresses (the generator's third floating range), aggregated by rack."""
    out = tmp_path_factory.mktemp("gen") / "inv"
    gen.generate(str(out), 100, 4, 2, 0.2)
    return str(out)


def draw(inventory, out, *extra):
    svg, png, dot = (str(out / ("topology." + s)) for s in ("svg", "png", "dot"))
    proc = subprocess.run([sys.executable, TOOL, "-i", inventory, "-o", dot, "-o", svg, "-o", png, *extra],
                          capture_output=True, text=True, timeout=300, cwd=str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return svg, png, open(dot).read()


def check_images(svg, png):
    assert os.path.getsize(svg) > 0 and os.path.getsize(png) > 0
    root = ET.parse(svg).getroot()  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    with open(png, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    return root


@pytest.mark.parametrize("inventory", [EXAMPLE, MOLECULE], ids=["example", "molecule"])
def test_every_host_drawn(inventory, tmp_path):
    svg, png, dot = draw(inventory, tmp_path)
    root = check_images(svg, png)
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    fab = build(load_fabric_input(inventory))
    assert set(fab.hosts) <= titles  # dot names each node's <g> by its id
    assert "cluster_rack_r01" in titles


def test_hundred_racks(hundred, tmp_path):
    svg, png, dot = draw(hundred, tmp_path)
    root = check_images(svg, png)
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert 100 < len(nodes) <= 150
    assert "r042: 1 ToR, 4 hypervisors, 8 instances" in dot


def test_status_colours_reach_the_svg(tmp_path):
    status = tmp_path / "status.json"
    status.write_text('{"hosts": {"hv-r01-01": {"severity": "critical"}}, "sessions": {"tor-r01|198.18.1.11": "down"}}')
    svg, png, dot = draw(EXAMPLE, tmp_path, "--status", str(status))
    text = open(svg).read()
    assert "#fc9272" in text and "#cb181d" in text  # critical fill, session down
    check_images(svg, png)


def test_the_committed_picture_shows_the_example():
    """docs/topology.svg (make topology) names every host of the example: redraw it when the example changes."""
    root = ET.parse(os.path.join(ROOT, "docs", "topology.svg")).getroot()
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    fab = build(load_fabric_input(EXAMPLE))
    assert set(fab.hosts) <= titles
    with open(os.path.join(ROOT, "docs", "topology.png"), "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
