"""render_host prints each opaque template once per run (its skeleton) and puts the values in
place: the text must be byte-identical to printing every file through the templar (issue 19, item 6)."""

import pytest

from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils import render
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools import gen_fabric as gen


@pytest.fixture(scope="module")
def templar():
    return render.offline_templar()


def _slow(templar, host, artifacts, managed):
    """Every file printed through the templar, as render_host did before skeletons."""
    out = []
    for art in artifacts:
        path = render.os.path.join(render.ROLES_DIR, art.role, "templates", art.template)
        with open(path) as fh:
            source = render.trust_as_template(fh.read())
        out.append((art, render._print(templar, path, source, dict(art.vars), managed, host)))
    return out


def _inventories(tmp_path):
    yield "example", render.os.path.join(render.COLLECTION_ROOT, "inventory", "example")
    yield "molecule", render.os.path.join(render.COLLECTION_ROOT, "molecule", "default", "inventory")
    for mode in ("host", "gateway"):
        out = str(tmp_path / mode)
        gen.generate(out, racks=2, hypervisors=3, instances=5, floating_share=0.4, nat_mode=mode)
        yield "generated-" + mode, out


def test_skeletons_print_the_same_bytes(templar, tmp_path):
    managed = "Managed by a test (ocs-l3)"
    seen = 0
    for name, inv in _inventories(tmp_path):
        fab = build(load_fabric_input(inv))
        cache = {}
        for host, artifacts in fabric_artifacts(fab).items():
            fast = render.render_host(templar, host, artifacts, managed, cache)
            slow = _slow(templar, host, artifacts, managed)
            for (art, a), (dummy, b) in zip(fast, slow):
                assert a == b, (name, host, art.path)
                seen += 1
        skeletons = [k for k, v in cache.items() if isinstance(k, tuple) and v is not None]
        assert skeletons, name  # the fast path was taken
    assert seen > 100


def test_a_template_with_logic_is_printed_every_time(templar):
    assert not render._opaque("{% if x %}{{ x }}{% endif %}", ("x",))
    assert not render._opaque("{{ x | upper }}", ("x",))
    assert not render._opaque("{{ inventory_hostname }}", ("x",))
    assert render._opaque("{{ ansible_managed | comment }}\n{{ x }}\n", ("x",))
