"""Fixtures of the integration tests; see helpers.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import netns, rendered  # noqa: E402,F401  (fixtures)
