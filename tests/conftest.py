"""Fixtures shared by the unit tests (helpers live in fabric_data.py)."""

import copy

import pytest


from fabric_data import BASE  # noqa: E402


@pytest.fixture
def data():
    """A fresh deep copy of the valid base fabric input."""
    return copy.deepcopy(BASE)
