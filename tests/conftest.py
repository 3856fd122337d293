"""Shared test settings: hypothesis profiles and the switch for long runs.

``SOMNODE_LONG=1`` selects the ``long`` hypothesis profile (many more examples)
and enables tests marked ``long``; the default run stays within CI's budget.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("SOMNODE_LONG") == "1"

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=5_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("long" if LONG else "default")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if LONG:
        return
    skip_long = pytest.mark.skip(reason="long run: set SOMNODE_LONG=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip_long)
