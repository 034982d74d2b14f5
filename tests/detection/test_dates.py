from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from detection.dates import parse_when


def test_it_reads_a_plain_date_as_midnight_utc():
    assert parse_when("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)


def test_it_converts_an_offset_to_utc():
    expected = datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=2))).astimezone(UTC)
    assert parse_when("2024-03-01T12:00:00+02:00") == expected


@pytest.mark.parametrize("value", ["20240301", "1709251200", "yesterday", "2024-13-01", ""])
def test_it_refuses_what_is_not_a_date(value):
    with pytest.raises(ValueError, match="is not a date"):
        parse_when(value)
