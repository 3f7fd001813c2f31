"""Fixtures of the VM agent's tests (see agentbed.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.agentbed import Bed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: long-running agent checks (still run by default; -m 'not slow' skips)")


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path)
    b.receiver.start()
    try:
        yield b
    finally:
        b.close()
