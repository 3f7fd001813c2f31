"""time.*, sys.* (on the virtual clock of the rt fixture)."""

from __future__ import annotations

import pytest


def test_time_format_doc_examples(call):
    assert call("time.format", 1720788633, "GMT") == "2024-07-12T12:50:33.000000Z"
    assert call("time.format", 1720788633) == "2024-07-12T12:50:33.000000Z"
    assert call("time.format", 1720788633, "Europe/Paris") == "2024-07-12T14:50:33.000000+02:00"


def test_time_format_microseconds(call):
    assert call("time.format", 1704903354.615087) == "2024-01-10T16:15:54.615087Z"


def test_time_format_empty_timezone_is_utc(call):
    assert call("time.format", seconds=0, timezone="") == "1970-01-01T00:00:00.000000Z"


def test_time_format_negative_offset(call):
    assert call("time.format", 1720788633, "America/New_York") == (
        "2024-07-12T08:50:33.000000-04:00"
    )


def test_time_format_unknown_zone(call, raises_tag):
    with raises_tag("ValueError"):
        call("time.format", 0, "Mars/Olympus")


def test_time_format_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("time.format", "now")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-08T12:01:00.000000Z", 1715169660.0),  # the docs' example
        ("2024-07-12T12:50:33Z", 1720788633.0),
        ("2024-07-12t12:50:33z", 1720788633.0),
        ("2024-07-12T12:50:33.000000Z", 1720788633.0),
        ("2024-07-12T14:50:33+02:00", 1720788633.0),
        ("2024-01-10T16:15:54.615087Z", 1704903354.615087),
        ("1970-01-01T00:00:00Z", 0.0),
    ],
)
def test_time_parse(call, text, expected):
    assert call("time.parse", text) == pytest.approx(expected, abs=1e-6)


def test_time_parse_returns_a_double(call):
    assert isinstance(call("time.parse", "2024-05-08T12:01:00Z"), float)


def test_time_parse_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("time.parse", 1715169660)


def test_time_parse_format_round_trip(call):
    assert call("time.parse", call("time.format", 1720788633, "Asia/Tokyo")) == 1720788633.0


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2024-13-01T00:00:00Z", "2024-07-12T12:50:33", "2024-07-12 12:50:33Z"],
)
def test_time_parse_invalid(call, raises_tag, text):
    with raises_tag("ValueError"):
        call("time.parse", text)


def test_sys_now_is_clock_seconds_as_double(call, rt):
    assert call("sys.now") == 1_720_788_633.0
    assert isinstance(call("sys.now"), float)


def test_sys_sleep_uses_the_clock(call, rt):
    call("sys.sleep", 10)
    call("sys.sleep", seconds=0.5)
    assert rt.clock.slept == [10, 0.5]
    assert call("sys.now") == 1_720_788_643.5


def test_sys_sleep_negative_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("sys.sleep", -1)


def test_sys_sleep_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("sys.sleep", "10")


def test_sys_sleep_until(call, rt):
    call("sys.sleep_until", "2024-07-12T12:51:33Z")
    assert rt.clock.slept == [60.0]
    call("sys.sleep_until", "2000-01-01T00:00:00Z")  # in the past: no sleep
    assert rt.clock.slept == [60.0]


def test_sys_get_env_builtin_and_user(call):
    assert call("sys.get_env", "GOOGLE_CLOUD_PROJECT_ID") == "local-project"
    assert call("sys.get_env", "MY_VAR") == "my value"


def test_sys_get_env_missing(call):
    assert call("sys.get_env", "NOPE") is None
    assert call("sys.get_env", "NOPE", "fallback") == "fallback"


def test_sys_get_env_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("sys.get_env", 1)


def test_sys_log_data_positional(call, rt):
    assert call("sys.log", "Log my error message", "ERROR") is None
    assert rt.log_entries == [{"severity": "ERROR", "data": "Log my error message"}]


def test_sys_log_text_and_json_named(call, rt):
    call("sys.log", text="hello", severity="INFO")
    call("sys.log", json={"Message1": "Log my error message"})
    assert rt.log_entries == [
        {"severity": "INFO", "text": "hello"},
        {"severity": "DEFAULT", "json": {"Message1": "Log my error message"}},
    ]


def test_sys_log_list_args_with_null_data(call, rt):
    call("sys.log", None, "ERROR", "text payload")
    assert rt.log_entries == [{"severity": "ERROR", "text": "text payload"}]


def test_sys_log_needs_exactly_one_payload(call, raises_tag):
    with raises_tag("TypeError"):
        call("sys.log", severity="INFO")
    with raises_tag("TypeError"):
        call("sys.log", data="a", text="b")


def test_sys_log_json_must_be_a_map(call, raises_tag):
    with raises_tag("TypeError"):
        call("sys.log", json=[1, 2])


def test_sys_log_bytes_cannot_be_logged(call, raises_tag):
    with raises_tag("TypeError"):
        call("sys.log", data=b"x")


def test_sys_log_unknown_severity(call, raises_tag):
    with raises_tag("ValueError"):
        call("sys.log", data="x", severity="LOUD")
