"""Small formatting filters for the pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

DASH = "—"


@register.filter
def percent(value: Any, digits: int = 1) -> str:
    """0.1234 → "12.3%"; None → a dash."""
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(digits)}%}"


@register.filter
def score(value: Any) -> str:
    """A detector score with enough digits to compare with its threshold."""
    if value is None or value == "":
        return DASH
    return f"{float(value):.3f}"


@register.filter
def meter_max(prediction: Any) -> float:
    """The upper end of a score meter: room above the larger of score and threshold."""
    return round(max(float(prediction.score), float(prediction.threshold)) * 1.25, 6) or 1.0


@register.filter
def label(value: Any) -> str:
    """snake_case → "Snake case", for parameter and metric names."""
    text = str(value).replace("_", " ")
    return text[:1].upper() + text[1:]
