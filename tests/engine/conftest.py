"""Engine test fixtures (helpers live in enginetest.py, importable by name)."""

from tests.engine.enginetest import loopback  # noqa: F401  (fixture)
