"""The pages' charts: selector results turned into ``dashboard.charts`` SVG."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.safestring import SafeString

from dashboard.charts import Bar, Point, bar_chart, histogram, timeline
from detection.models import ModelVersion
from detection.selectors import DayCount, ScoreDistribution, TimelinePoint

# viewBox widths: about one unit per pixel in a full-width and a half-width card,
# so the 12-unit text stays readable.
WIDE = 1120
HALF = 560


def flagged_rate_chart(days: Sequence[DayCount]) -> SafeString:
    bars = [
        Bar(
            label=f"{day.day:%b %d}",
            value=day.flagged_rate * 100,
            tooltip=(
                f"{day.day:%Y-%m-%d}: {day.flagged:,} of {day.total:,} flagged "
                f"({day.flagged_rate:.1%})"
            ),
        )
        for day in days
    ]
    first, last = (days[0].day, days[-1].day) if days else (None, None)
    return bar_chart(
        bars,
        title="Flagged rate per day",
        description=(
            f"Share of each day's transactions that were flagged, {first} to {last}."
            if days
            else "No transactions yet."
        ),
        y_label="% flagged",
        y_format=lambda value: f"{value:g}%",
        empty_message="No transactions yet",
        width=WIDE,
    )


def score_distribution_chart(distribution: ScoreDistribution) -> SafeString:
    version = distribution.model_version
    return histogram(
        counts=distribution.counts,
        edges=distribution.edges,
        threshold=version.threshold,
        title=f"{version.get_algorithm_display()} v{version.version}: stored scores",
        description=(
            f"{distribution.total:,} scores in {len(distribution.counts)} bins; "
            f"the threshold is {version.threshold:.3g} and bins above it are highlighted."
        ),
        width=HALF,
    )


def training_histogram_chart(version: ModelVersion) -> SafeString:
    histogram_data = (version.metrics or {}).get("score_histogram") or {}
    counts = histogram_data.get("counts") or []
    return histogram(
        counts=counts,
        edges=histogram_data.get("edges") or [],
        threshold=version.threshold,
        title=f"{version.get_algorithm_display()} v{version.version}: training scores",
        description=(
            f"Scores of {sum(counts):,} training transactions; the threshold "
            f"{version.threshold:.3g} marks the top {_rate(version)} as anomalous."
        ),
        width=HALF,
    )


def _rate(version: ModelVersion) -> str:
    rate = (version.metrics or {}).get("training_anomaly_rate")
    return f"{rate:.1%}" if isinstance(rate, int | float) else "share"


def account_timeline_chart(
    account_id: str, points: Sequence[TimelinePoint], url_for: Callable[[str], str]
) -> SafeString:
    flagged = sum(1 for point in points if point.flagged)
    return timeline(
        [
            Point(
                when=point.timestamp,
                value=float(point.amount),
                tooltip=(
                    f"{point.transaction_id}: {point.amount:,.2f} on "
                    f"{point.timestamp:%Y-%m-%d %H:%M}{' (flagged)' if point.flagged else ''}"
                ),
                highlight=bool(point.flagged),
                href=url_for(point.transaction_id) if point.flagged else None,
            )
            for point in points
        ],
        title=f"Amounts of account {account_id} over time",
        description=(
            f"{len(points):,} transactions on a logarithmic amount scale; "
            f"{flagged:,} flagged, drawn as red diamonds that link to the transaction."
        ),
        y_label="amount",
        width=WIDE,
    )
