"""The reads added to detection.selectors for the pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detection import selectors
from detection.models import Prediction, Transaction
from detection.reviews import review_set
from detection.selectors import TransactionFilters
from tests.dashboard.factories import takeover
from tests.factories import store

pytestmark = pytest.mark.django_db


def test_it_counts_transactions_flags_and_reviews_in_one_query(
    scored, analyst, django_assert_num_queries
):
    flagged = list(Transaction.objects.filter(flagged=True)[:2])
    clear = Transaction.objects.filter(flagged=False).first()
    review_set(transaction=flagged[0], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=flagged[1], status="false_positive", reviewer=analyst)
    review_set(transaction=clear, status="confirmed_fraud", reviewer=analyst)
    with django_assert_num_queries(1):
        counts = selectors.transaction_counts()
    total_flagged = Transaction.objects.filter(flagged=True).count()
    assert counts.total == 750
    assert counts.flagged == total_flagged
    assert counts.awaiting_review == total_flagged - 2
    assert (counts.confirmed_fraud, counts.false_positive) == (2, 1)
    assert (counts.flagged_confirmed_fraud, counts.flagged_false_positive) == (1, 1)
    assert counts.flag_precision == 0.5
    assert counts.flagged_rate == pytest.approx(total_flagged / 750)


def test_it_bins_stored_scores_like_the_training_histogram(scored):
    version = scored.models["isolation_forest"]
    distribution = selectors.score_distribution(model_version=version)
    assert distribution.edges == version.metrics["score_histogram"]["edges"]
    assert distribution.total == Prediction.objects.filter(model_version=version).count()
    # Training and stored scores are the same transactions here: the same bins.
    assert distribution.counts == version.metrics["score_histogram"]["counts"]


def test_it_puts_scores_outside_the_training_range_into_the_end_bins(scored):
    version = scored.models["local_outlier_factor"]
    edges = version.metrics["score_histogram"]["edges"]
    predictions = Prediction.objects.filter(model_version=version)
    low, high = predictions[:2]
    Prediction.objects.filter(pk=low.pk).update(score=edges[0] - 100)
    Prediction.objects.filter(pk=high.pk).update(score=edges[-1] + 100)
    distribution = selectors.score_distribution(model_version=version)
    assert distribution.total == predictions.count()
    assert distribution.counts[0] >= 1 and distribution.counts[-1] >= 1


def test_it_bins_only_the_scores_of_transactions_since_a_date(scored):
    version = scored.models["isolation_forest"]
    since = Transaction.objects.order_by("-timestamp")[99].timestamp
    distribution = selectors.score_distribution(model_version=version, since=since)
    assert distribution.total == 100


def test_it_has_no_distribution_for_a_version_without_a_histogram(scored):
    version = scored.models["isolation_forest"]
    version.metrics = {}
    assert selectors.score_distribution(model_version=version) is None


def test_it_measures_each_version_against_reviews(scored, analyst, django_assert_num_queries):
    version = scored.models["isolation_forest"]
    called = Transaction.objects.filter(
        predictions__model_version=version, predictions__is_anomaly=True
    ).first()
    passed = Transaction.objects.filter(
        predictions__model_version=version, predictions__is_anomaly=False
    ).first()
    review_set(transaction=called, status="false_positive", reviewer=analyst)
    review_set(transaction=passed, status="confirmed_fraud", reviewer=analyst)
    with django_assert_num_queries(1):
        quality = selectors.model_versions_review_quality()
    assert quality[version.pk] == selectors.ReviewedPredictions(
        confirmed_fraud=0, false_positive=1, missed=1
    )
    assert quality[version.pk].precision == 0.0
    assert quality[version.pk].recall == 0.0
    assert selectors.ReviewedPredictions().precision is None
    assert selectors.ReviewedPredictions().recall is None


def test_it_lists_the_newest_flagged_transactions_awaiting_review(scored, analyst):
    newest = list(Transaction.objects.filter(flagged=True).order_by("-timestamp", "-id")[:2])
    review_set(transaction=newest[0], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=newest[1], status="pending", reviewer=analyst)
    awaiting = selectors.transactions_awaiting_review(limit=3)
    assert awaiting[0] == newest[1]
    assert newest[0] not in awaiting
    assert len(awaiting) <= 3


def test_it_describes_an_account(scored):
    store([takeover(transaction_id="NEWDEVICE")])
    profile = selectors.account_profile(account_id="AC00003", limit=1)
    assert profile.transactions == 26
    assert profile.distinct["location"] == 2
    [top_location] = profile.known["location"]
    assert top_location.count == 25
    assert top_location.last_seen < datetime(2024, 4, 20, tzinfo=UTC)
    assert selectors.account_profile(account_id="NOBODY") is None


def test_it_gives_an_accounts_timeline_oldest_first_up_to_a_limit(scored):
    points = selectors.account_timeline(account_id="AC00003", limit=10)
    newest = list(Transaction.objects.filter(account_id="AC00003").order_by("-timestamp")[:10])
    assert [p.transaction_id for p in points] == [tx.transaction_id for tx in reversed(newest)]


@pytest.mark.parametrize("ordering", ["newest", "oldest", "amount_desc", "amount_asc", "account"])
def test_it_orders_listings_stably(scored, ordering):
    listed = list(selectors.transactions_list(filters=TransactionFilters(), ordering=ordering))
    fields = selectors.TRANSACTION_ORDERINGS[ordering]
    assert listed == list(Transaction.objects.order_by(*fields))
    assert fields[-1].lstrip("-") == "id"


def test_it_falls_back_to_newest_first_for_an_unknown_ordering(scored):
    listed = selectors.transactions_list(filters=TransactionFilters(), ordering="nonsense")
    assert list(listed[:5]) == list(Transaction.objects.order_by("-timestamp", "-id")[:5])
