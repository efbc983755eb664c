"""Verify of the molecule fabric: behaviour, checked with real packets."""

import os

import pytest

from fabric import leases  # noqa: F401  (the fixture, shared with ../rounds)


def pytest_configure(config):
    config.addinivalue_line("markers", "ocs_landed: the part this test needs has landed (no-op marker)")
    if not os.environ.get("CONTAINERS_CONF"):
        raise pytest.UsageError("export CONTAINERS_CONF first: . tools/podman-env.sh")
