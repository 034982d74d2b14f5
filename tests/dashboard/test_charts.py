"""The SVG chart helper: well-formed, accessible, escaped, and drawing what it says."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.charts import Bar, Point, bar_chart, histogram, nice_ticks, timeline

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_it_draws_one_bar_per_value_with_its_tooltip():
    svg = bar_chart(
        [Bar("Mon", 1, "Monday: 1"), Bar("Tue", 3, "Tuesday: 3"), Bar("Wed", 0, "Wednesday: 0")],
        title="Per day",
        description="Counts per day.",
        y_label="count",
    )
    root = parse(svg)
    bars = root.findall(f".//{SVG}rect")
    assert len(bars) == 3
    assert [bar.find(f"{SVG}title").text for bar in bars] == [
        "Monday: 1",
        "Tuesday: 3",
        "Wednesday: 0",
    ]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] > heights[0] > heights[2] == 0


def test_it_names_the_chart_for_screen_readers():
    root = parse(bar_chart([Bar("a", 1, "a")], title="Flagged", description="Share.", y_label="%"))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}title").text == "Flagged"
    assert root.find(f"{SVG}desc").get("id") == desc_id
    assert root.find(f"{SVG}desc").text == "Share."


def test_it_gives_different_charts_on_one_page_different_ids():
    first = parse(bar_chart([Bar("a", 1, "a")], title="One", description="", y_label=""))
    second = parse(bar_chart([Bar("a", 1, "a")], title="Two", description="", y_label=""))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")


def test_it_escapes_every_text_it_is_given():
    svg = bar_chart(
        [Bar("<b>", 1, 'M1 & "x" <script>alert(1)</script>')],
        title="</svg><script>",
        description="a & b",
        y_label="<y>",
    )
    assert "<script>" not in svg
    root = parse(svg)  # still well-formed
    assert root.find(f"{SVG}title").text == "</svg><script>"
    assert root.find(f".//{SVG}rect/{SVG}title").text == 'M1 & "x" <script>alert(1)</script>'


def test_it_highlights_histogram_bins_above_the_threshold_and_draws_the_threshold():
    svg = histogram(
        counts=[5, 10, 3, 1],
        edges=[0.0, 0.25, 0.5, 0.75, 1.0],
        threshold=0.6,
        title="Scores",
        description="",
    )
    root = parse(svg)
    classes = [rect.get("class") for rect in root.findall(f".//{SVG}rect")]
    # The third bin (0.5 to 0.75) holds scores on both sides of 0.6: it is highlighted.
    assert classes == [
        "chart-bar",
        "chart-bar",
        "chart-bar chart-bar-highlight",
        "chart-bar chart-bar-highlight",
    ]
    marker = root.find(f".//{SVG}g[@class='chart-marker']")
    assert marker.find(f"{SVG}text").text == "threshold 0.6"
    # 0.6 is 2.4 bins from the left edge: between the third bar's start and end.
    x = float(marker.find(f"{SVG}line").get("x1"))
    third = root.findall(f".//{SVG}rect")[2]
    assert float(third.get("x")) < x < float(third.get("x")) + float(third.get("width")) + 2


def test_it_labels_the_last_histogram_bin_as_open_ended():
    root = parse(
        histogram(counts=[1, 2], edges=[0, 1, 2], threshold=None, title="", description="")
    )
    tooltips = [t.text for t in root.findall(f".//{SVG}rect/{SVG}title")]
    assert tooltips == ["score 0 to 1: 1", "score ≥ 1: 2"]


def test_it_refuses_mismatched_histogram_edges_with_a_note_instead_of_bars():
    root = parse(histogram(counts=[1, 2], edges=[0, 1], threshold=0.5, title="", description=""))
    assert root.findall(f".//{SVG}rect") == []
    assert root.find(f"{SVG}text").text == "No scores yet"


@pytest.mark.parametrize("draw", ["bars", "timeline"])
def test_it_says_so_when_there_is_nothing_to_draw(draw):
    if draw == "bars":
        svg = bar_chart([], title="t", description="d", y_label="y", empty_message="Nothing yet")
        expected = "Nothing yet"
    else:
        svg = timeline([], title="t", description="d", y_label="y")
        expected = "No transactions"
    assert parse(svg).find(f"{SVG}text").text == expected


def _points() -> list[Point]:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    return [
        Point(start, 20, "TX1: 20"),
        Point(start + timedelta(days=1), 30, "TX2: 30"),
        Point(start + timedelta(days=2), 9500, "TX3: 9,500", highlight=True, href="/t/TX3/"),
        Point(start + timedelta(days=3), 25, "TX4: 25", highlight=True),
    ]


def test_it_draws_flagged_points_as_diamonds_that_link_to_the_transaction():
    root = parse(timeline(_points(), title="Account", description="", y_label="amount"))
    circles = root.findall(f".//{SVG}circle")
    diamonds = root.findall(f".//{SVG}path")
    assert [c.find(f"{SVG}title").text for c in circles] == ["TX1: 20", "TX2: 30"]
    assert sorted(d.find(f"{SVG}title").text for d in diamonds) == ["TX3: 9,500", "TX4: 25"]
    links = root.findall(f".//{SVG}a")
    assert [a.get("href") for a in links] == ["/t/TX3/"]
    assert links[0].get("aria-label") == "TX3: 9,500"


def test_it_puts_larger_amounts_higher_on_a_log_scale():
    root = parse(timeline(_points(), title="", description="", y_label=""))
    ys = {c.find(f"{SVG}title").text: float(c.get("cy")) for c in root.findall(f".//{SVG}circle")}
    assert ys["TX2: 30"] < ys["TX1: 20"]  # SVG y grows downwards
    ticks = [t.text for t in root.findall(f".//{SVG}g[@class='chart-axis']/{SVG}text")]
    assert {"1", "10", "100", "1k", "10k"} <= set(ticks)


def test_it_draws_a_single_transaction_in_the_middle():
    point = Point(datetime(2024, 3, 1, tzinfo=UTC), 42, "only")
    root = parse(timeline([point], title="", description="", y_label="", log_scale=False))
    circle = root.find(f".//{SVG}circle")
    assert float(circle.get("cx")) == pytest.approx((56 + 720 - 16) / 2)


def test_it_makes_the_chart_as_wide_as_asked():
    svg = bar_chart([Bar("a", 1, "a")], title="", description="", y_label="", width=1120)
    assert parse(svg).get("viewBox") == "0 0 1120 260"
    # Marked wide, so a narrow screen scrolls it instead of shrinking its text.
    assert parse(svg).get("class") == "chart chart-bars chart-wide"
    normal = bar_chart([Bar("a", 1, "a")], title="", description="", y_label="")
    assert parse(normal).get("class") == "chart chart-bars"


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1, [0, 0.5, 1.0]),
        (0, 7, [0, 2, 4, 6, 8]),
        (0, 14.9, [0, 5, 10, 15]),
        (0, 160, [0, 50, 100, 150, 200]),
        (0.3, 0.72, [0.2, 0.4, 0.6, 0.8]),
        (0, 0, [0]),
    ],
)
def test_it_chooses_round_ticks_that_cover_the_values(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_it_keeps_coordinates_short():
    svg = bar_chart(
        [Bar(str(i), i / 3, "") for i in range(30)], title="", description="", y_label=""
    )
    assert not re.search(r"\d\.\d{3,}", svg)


def test_it_keeps_the_tallest_bar_inside_the_axis():
    root = parse(
        bar_chart([Bar("a", 14.9, ""), Bar("b", 3, "")], title="", description="", y_label="")
    )
    tallest = root.findall(f".//{SVG}rect")[0]
    top_tick = min(
        float(line.get("y1")) for line in root.findall(f".//{SVG}line[@class='chart-grid']")
    )
    assert float(tallest.get("y")) >= top_tick
