"""Fixtures of the VM agent's tests (see agentbed.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agentbed import Bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path)
    b.receiver.start()
    try:
        yield b
    finally:
        b.close()
