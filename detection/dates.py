"""Parsing the dates people type into command options and filters."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError

_DATETIME = TypeAdapter(datetime)


def parse_when(value: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 time; naive values are UTC.

    Raises ValueError with a message fit to show a user.
    """
    text = value.strip()
    # pydantic would read a bare number as Unix seconds: 20240301 is not 1970.
    if text.lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time")
    try:
        parsed = _DATETIME.validate_python(text)
    except ValidationError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
