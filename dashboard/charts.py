"""Server-side SVG charts: no JavaScript, nothing fetched from elsewhere.

Each function returns one self-contained ``<svg>`` element as safe markup.
Every piece of text put into it is escaped here, so callers may pass
transaction ids, merchant names and the like straight through. Charts carry a
``<title>`` and ``<desc>`` for screen readers, and each bar or point a
``<title>`` that browsers show as a tooltip on hover.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 260
# Room for axis labels: left, right, top, bottom.
MARGIN = (56, 16, 16, 40)


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (only some are shown when there are many)
    value: float
    tooltip: str
    highlight: bool = False


@dataclass(frozen=True)
class Point:
    when: datetime
    value: float
    tooltip: str
    highlight: bool = False
    href: str | None = None  # highlighted points link here; others do not


def _number(value: float) -> str:
    # Short coordinates keep the markup small; two decimals are sub-pixel.
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) from the
    last one at or below ``low`` to the first one at or above ``high``, so the
    axis covers every value."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(index * step, 10) for index in range(first, last + 1)]


def _short(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if magnitude >= 1_000:
        return f"{value / 1_000:g}k"
    if magnitude >= 10 or value == int(value):
        return f"{value:g}"
    return f"{value:.2g}" if magnitude < 0.1 else f"{value:.2f}".rstrip("0")


def _chart_id(title: str, salt: str) -> str:
    digest = hashlib.blake2s(f"{title}|{salt}".encode(), digest_size=4).hexdigest()
    return f"chart-{digest}"


def _open(title: str, description: str, salt: str, css_class: str, width: int) -> list[str]:
    chart_id = _chart_id(title, salt)
    if width > WIDTH:
        css_class += " chart-wide"  # lets a phone scroll it rather than shrink its text
    return [
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _empty(title: str, description: str, message: str, width: int) -> SafeString:
    parts = _open(title, description, message, "chart-empty", width)
    parts.append(
        f'<text class="chart-note" x="{width / 2}" y="{HEIGHT / 2}" '
        f'text-anchor="middle">{escape(message)}</text></svg>'
    )
    return mark_safe("".join(parts))  # all text in it was escaped above


def _y_axis(
    ticks: Sequence[float],
    to_y: Callable[[float], float],
    label: str,
    fmt: Callable[[float], str],
    width: int,
) -> list[str]:
    left, right, top, bottom = MARGIN
    parts = ['<g class="chart-axis" aria-hidden="true">']
    for tick in ticks:
        y = _number(to_y(tick))
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y}" y2="{y}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(fmt(tick))}</text>"
        )
    middle = _number((top + HEIGHT - bottom) / 2)
    parts.append(
        f'<text class="chart-axis-label" x="12" y="{middle}" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle})">{escape(label)}</text>'
    )
    parts.append("</g>")
    return parts


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    description: str,
    y_label: str,
    y_format: Callable[[float], str] = _short,
    marker: tuple[float, str] | None = None,
    empty_message: str = "No data yet",
    width: int = WIDTH,
) -> SafeString:
    """Vertical bars; ``marker`` is (position in bar units from the left edge,
    label) for a dashed vertical line such as a threshold."""
    if not bars:
        return _empty(title, description, empty_message, width)
    left, right, top, bottom = MARGIN
    plot_width = width - left - right
    plot_height = HEIGHT - top - bottom
    peak = max(max(bar.value for bar in bars), 0.0)
    ticks = nice_ticks(0.0, peak if peak > 0 else 1.0)
    y_max = ticks[-1] or 1.0

    def to_y(value: float) -> float:
        return top + plot_height * (1 - value / y_max)

    slot = plot_width / len(bars)
    gap = min(2.0, slot * 0.15)
    parts = _open(title, description, f"{len(bars)}|{peak}", "chart-bars", width)
    parts.extend(_y_axis(ticks, to_y, y_label, y_format, width))
    parts.append('<g class="chart-data">')
    for index, bar in enumerate(bars):
        x = left + index * slot + gap / 2
        y = to_y(max(bar.value, 0.0))
        height = max(top + plot_height - y, 0.0)
        css = "chart-bar chart-bar-highlight" if bar.highlight else "chart-bar"
        parts.append(
            f'<rect class="{css}" x="{_number(x)}" y="{_number(y)}" '
            f'width="{_number(max(slot - gap, 0.5))}" height="{_number(height)}">'
            f"<title>{escape(bar.tooltip)}</title></rect>"
        )
    parts.append("</g>")
    # Label a bar every ~80 units so the text never overlaps.
    every = max(1, math.ceil(len(bars) / max(plot_width // 80, 1)))
    parts.append('<g class="chart-axis" aria-hidden="true">')
    baseline = HEIGHT - bottom
    parts.append(
        f'<line class="chart-baseline" x1="{left}" x2="{width - right}" '
        f'y1="{baseline}" y2="{baseline}"/>'
    )
    for index in range(0, len(bars), every):
        x = _number(left + (index + 0.5) * slot)
        parts.append(
            f'<text x="{x}" y="{baseline + 16}" text-anchor="middle">'
            f"{escape(bars[index].label)}</text>"
        )
    parts.append("</g>")
    if marker is not None:
        position, label = marker
        x = left + min(max(position, 0.0), len(bars)) * slot
        anchor = "end" if x > left + plot_width * 0.8 else "start"
        offset = -4 if anchor == "end" else 4
        parts.append(
            f'<g class="chart-marker"><line x1="{_number(x)}" x2="{_number(x)}" y1="{top}" '
            f'y2="{baseline}"/><text x="{_number(x + offset)}" y="{top + 12}" '
            f'text-anchor="{anchor}">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # all text in it was escaped above


def histogram(
    *,
    counts: Sequence[int],
    edges: Sequence[float],
    threshold: float | None,
    title: str,
    description: str,
    y_label: str = "transactions",
    width: int = WIDTH,
) -> SafeString:
    """Counts per score bin; bins at or above the threshold are highlighted and
    the threshold drawn as a dashed line."""
    if not counts or len(edges) != len(counts) + 1:
        return _empty(title, description, "No scores yet", width)
    bars = []
    last = len(counts) - 1
    for index, count in enumerate(counts):
        low, high = edges[index], edges[index + 1]
        span = f"≥ {low:.3g}" if index == last else f"{low:.3g} to {high:.3g}"
        bars.append(
            Bar(
                label=f"{low:.3g}",
                value=float(count),
                tooltip=f"score {span}: {count:,}",
                highlight=threshold is not None and high > threshold,
            )
        )
    marker = None
    if threshold is not None:
        width = (edges[-1] - edges[0]) / len(counts) or 1.0
        marker = ((threshold - edges[0]) / width, f"threshold {threshold:.3g}")
    return bar_chart(bars, title=title, description=description, y_label=y_label, marker=marker)


def timeline(
    points: Sequence[Point],
    *,
    title: str,
    description: str,
    y_label: str,
    log_scale: bool = True,
    width: int = WIDTH,
) -> SafeString:
    """Values over time; highlighted points are drawn as larger diamonds (so
    they differ by shape, not only colour) and link to ``href``."""
    if not points:
        return _empty(title, description, "No transactions", width)
    left, right, top, bottom = MARGIN
    plot_width = width - left - right
    plot_height = HEIGHT - top - bottom
    times = [point.when.timestamp() for point in points]
    start, end = min(times), max(times)
    span = (end - start) or 1.0

    def scale(value: float) -> float:
        return math.log10(max(value, 0.0) + 1.0) if log_scale else value

    peak = max(point.value for point in points)
    if log_scale:
        decades = max(1, math.ceil(math.log10(max(peak, 1.0) + 1.0)))
        ticks = [10.0**power for power in range(decades + 1)]
        y_max = scale(ticks[-1])
    else:
        ticks = nice_ticks(0.0, peak if peak > 0 else 1.0)
        y_max = ticks[-1] or 1.0

    def to_y(value: float) -> float:
        return top + plot_height * (1 - scale(value) / y_max)

    def to_x(seconds: float) -> float:
        return left + plot_width * ((seconds - start) / span if end > start else 0.5)

    parts = _open(title, description, f"{len(points)}|{start}|{end}", "chart-timeline", width)
    parts.extend(_y_axis(ticks, to_y, y_label, _short, width))
    baseline = HEIGHT - bottom
    parts.append(
        f'<g class="chart-axis" aria-hidden="true"><line class="chart-baseline" '
        f'x1="{left}" x2="{width - right}" y1="{baseline}" y2="{baseline}"/>'
    )
    first, last = points[times.index(start)].when, points[times.index(end)].when
    parts.append(f'<text x="{left}" y="{baseline + 16}">{first:%Y-%m-%d}</text>')
    if end > start:
        parts.append(
            f'<text x="{width - right}" y="{baseline + 16}" text-anchor="end">'
            f"{last:%Y-%m-%d}</text>"
        )
    parts.append("</g>")
    ordered = sorted(zip(times, points, strict=True), key=lambda pair: pair[0])
    line = " ".join(
        f"{_number(to_x(seconds))},{_number(to_y(point.value))}" for seconds, point in ordered
    )
    parts.append(f'<polyline class="chart-line" points="{line}" aria-hidden="true"/>')
    parts.append('<g class="chart-data">')
    # Plain points first so highlighted ones are drawn on top.
    for seconds, point in sorted(ordered, key=lambda pair: pair[1].highlight):
        x, y = to_x(seconds), to_y(point.value)
        if point.highlight:
            size = 6.5
            shape = (
                f'<path class="chart-point chart-point-highlight" d="M{_number(x)} '
                f"{_number(y - size)} L{_number(x + size)} {_number(y)} L{_number(x)} "
                f'{_number(y + size)} L{_number(x - size)} {_number(y)} Z">'
                f"<title>{escape(point.tooltip)}</title></path>"
            )
            if point.href:
                shape = (
                    f'<a href="{escape(point.href)}" aria-label="{escape(point.tooltip)}">'
                    f"{shape}</a>"
                )
        else:
            shape = (
                f'<circle class="chart-point" cx="{_number(x)}" cy="{_number(y)}" r="3">'
                f"<title>{escape(point.tooltip)}</title></circle>"
            )
        parts.append(shape)
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # all text in it was escaped above
