"""Tests see none of the caller's Driftgate or source variables (tests/conftest.py)."""

import os

from tests.conftest import ENV_PREFIXES


def test_no_caller_configuration_reaches_the_tests():
    leaked = sorted(n for n in os.environ if n.startswith(ENV_PREFIXES))
    assert leaked == []
