"""Verify of the molecule fabric: behaviour, checked with real packets."""

import os

import pytest


import fabric  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "ocs_landed: the part this test needs has landed (no-op marker)")
    if not os.environ.get("CONTAINERS_CONF"):
        raise pytest.UsageError("export CONTAINERS_CONF first: . tools/podman-env.sh")


@pytest.fixture(scope="session")
def leases():
    """Instances have had their chance to get a DHCP lease (waits at most once)."""
    return fabric.wait_for_leases()
