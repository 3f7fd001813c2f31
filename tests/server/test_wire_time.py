"""serve's timestamps: RFC 3339 UTC with microseconds and a Z, read back to
the microsecond; anything else is refused rather than read as local time."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfgen.server import wire

SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_a_timestamp_reads_back_to_the_microsecond(t: float) -> None:
    text = wire.timestamp(t)
    assert SHAPE.fullmatch(text)
    assert text == datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(wire.parse_timestamp(text) - t) < 1e-6 + 1e-9 * t


@pytest.mark.parametrize("text", ["2026-12-07T07:35:35.123456", "2026-12-07T07:35:35Z",
                                  "2026-12-07T07:35:35.123456+01:00", "yesterday"])
def test_other_shapes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        wire.parse_timestamp(text)
