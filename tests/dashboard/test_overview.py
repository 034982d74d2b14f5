"""The overview: counts, the daily flagged rate, score distributions and the
latest flagged transactions awaiting review."""

from __future__ import annotations

import pytest

from detection.models import Transaction
from detection.reviews import review_set

pytestmark = pytest.mark.django_db


def test_it_shows_the_counts(client, user, scored):
    client.force_login(user)
    response = client.get("/")
    counts = response.context["counts"]
    assert counts.total == Transaction.objects.count() == 750
    assert counts.flagged == Transaction.objects.filter(flagged=True).count() > 0
    assert counts.awaiting_review == counts.flagged
    html = response.content.decode()
    assert "<dt>Transactions</dt><dd>750</dd>" in html


def test_it_counts_reviews_and_the_precision_of_flags(client, user, analyst, scored):
    flagged = list(Transaction.objects.filter(flagged=True)[:3])
    review_set(transaction=flagged[0], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=flagged[1], status="false_positive", reviewer=analyst)
    review_set(transaction=flagged[2], status="pending", reviewer=analyst)
    client.force_login(user)
    counts = client.get("/").context["counts"]
    assert counts.confirmed_fraud == 1
    assert counts.false_positive == 1
    assert counts.awaiting_review == Transaction.objects.filter(flagged=True).count() - 2
    assert counts.flag_precision == 0.5


def test_it_draws_the_daily_flagged_rate_and_each_models_scores(client, user, scored):
    client.force_login(user)
    response = client.get("/")
    html = response.content.decode()
    assert html.count('<svg class="chart') == 3
    assert "Flagged rate per day" in html
    assert "Isolation Forest scores" in html
    assert "Local Outlier Factor scores" in html
    days = response.context["days"]
    assert len(days) == 30
    assert sum(day.total for day in days) > 0
    # The numbers behind the chart are on the page too, for those who can't see it.
    assert f"<td>{days[-1].day:%Y-%m-%d}</td>" in html


def test_it_lists_the_latest_flagged_transactions_awaiting_review(client, user, analyst, scored):
    newest = scored.flagged()
    review_set(transaction=newest, status="false_positive", reviewer=analyst)
    client.force_login(user)
    response = client.get("/")
    rows = response.context["awaiting"]
    assert 0 < len(rows) <= 10
    assert all(row.transaction.flagged for row in rows)
    assert newest.transaction_id not in [row.transaction.transaction_id for row in rows]
    html = response.content.decode()
    assert 'class="is-flagged"' in html
    assert f'href="/transactions/{rows[0].transaction.transaction_id}/"' in html


def test_it_marks_the_current_page_in_the_navigation(client, user, scored):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert '<a href="/" aria-current="page">Overview</a>' in html


def test_it_reads_a_bounded_number_of_queries(client, user, scored, django_assert_max_num_queries):
    client.force_login(user)
    with django_assert_max_num_queries(12):
        assert client.get("/").status_code == 200
