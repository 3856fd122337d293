"""Shared test settings: hypothesis profiles and the switch for long runs.

``SOMNODE_LONG=1`` selects the ``long`` hypothesis profile (many more examples)
and enables tests marked ``long``; the default run stays within CI's budget.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from node.verifier.scheduler import BatchVerifier

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


def running_verifier(**settings: Any) -> Iterator[BatchVerifier]:
    """A batch verifier with ``settings`` for a fixture to yield from; closed when the fixture ends."""
    with BatchVerifier(**settings) as verifier:
        yield verifier


@pytest.fixture(scope="module")
def batch_verifier() -> Iterator[BatchVerifier]:
    """The node's batch verifier, one per test module: two threads, no helper processes."""
    yield from running_verifier(threads=2)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory):
    """SoftHSM2 with a token directory of this test session (tests/softhsm.py)."""
    from tests.softhsm import softhsm_session

    return softhsm_session(tmp_path_factory.mktemp("softhsm"))
