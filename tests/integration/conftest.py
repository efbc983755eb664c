"""Fixtures of the integration tests; see helpers.py."""



from helpers import netns, rendered  # noqa: E402,F401  (fixtures)
