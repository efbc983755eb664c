"""Side-effect rounds written as pytest (side_effect.yml runs them): the
fabric helpers of ../tests, and the inventory molecule gave the round."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from fabric import leases  # noqa: E402,F401  (the fixture)


def pytest_configure(config):
    for name in ("CONTAINERS_CONF", "OCS_SE_INVENTORY"):
        if not os.environ.get(name):
            raise pytest.UsageError("%s is not set: these tests run from molecule's side_effect.yml" % name)
