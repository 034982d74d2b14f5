"""The review service: analysts' verdicts with who, when and the history."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from detection.models import Review, ReviewEvent, Transaction
from detection.reviews import NOTE_MAX_LENGTH, ReviewError, review_set, user_can_review
from tests.factories import item, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def transaction() -> Transaction:
    store([item(transaction_id="TX1")])
    return Transaction.objects.get(transaction_id="TX1")


def test_it_records_a_verdict_with_its_reviewer_and_note(transaction, analyst):
    review = review_set(
        transaction=transaction,
        status="confirmed_fraud",
        note="card reported stolen",
        reviewer=analyst,
    )
    review.refresh_from_db()
    assert (review.status, review.note, review.reviewer) == (
        "confirmed_fraud",
        "card reported stolen",
        analyst,
    )
    assert review.created_at is not None and review.updated_at is not None
    [event] = review.events.all()
    assert (event.status, event.note, event.reviewer) == (
        "confirmed_fraud",
        "card reported stolen",
        analyst,
    )


def test_it_changes_the_verdict_and_keeps_the_earlier_one(transaction, analyst, staff):
    review_set(transaction=transaction, status="confirmed_fraud", note="first", reviewer=analyst)
    review_set(transaction=transaction, status="false_positive", note="second", reviewer=staff)
    assert Review.objects.count() == 1
    review = Review.objects.get()
    assert (review.status, review.reviewer) == ("false_positive", staff)
    assert [(e.status, e.reviewer) for e in review.events.order_by("created_at", "id")] == [
        ("confirmed_fraud", analyst),
        ("false_positive", staff),
    ]


def test_it_lists_the_history_newest_first(transaction, analyst):
    for status in ("pending", "confirmed_fraud", "false_positive"):
        review_set(transaction=transaction, status=status, reviewer=analyst)
    events = list(Review.objects.get().events.all())
    assert [e.status for e in events] == ["false_positive", "confirmed_fraud", "pending"]


def test_it_strips_the_note(transaction, analyst):
    review = review_set(
        transaction=transaction, status="pending", note="  look again \n", reviewer=analyst
    )
    assert review.note == "look again"


def test_it_refuses_an_unknown_status_and_stores_nothing(transaction, analyst):
    with pytest.raises(ReviewError) as refused:
        review_set(transaction=transaction, status="fraud", reviewer=analyst)
    assert refused.value.field == "status"
    assert refused.value.message == "'fraud' is not one of pending, confirmed_fraud, false_positive"
    assert not Review.objects.exists()
    assert not ReviewEvent.objects.exists()


def test_it_refuses_an_overlong_note_and_stores_nothing(transaction, analyst):
    with pytest.raises(ReviewError) as refused:
        review_set(
            transaction=transaction,
            status="pending",
            note="x" * (NOTE_MAX_LENGTH + 1),
            reviewer=analyst,
        )
    assert (refused.value.field, refused.value.message) == ("note", "at most 2000 characters")
    assert not Review.objects.exists()


def test_it_accepts_a_note_of_exactly_the_limit(transaction, analyst):
    review = review_set(
        transaction=transaction, status="pending", note="x" * NOTE_MAX_LENGTH, reviewer=analyst
    )
    assert len(review.note) == NOTE_MAX_LENGTH


def test_it_keeps_the_verdict_when_the_reviewer_account_is_deleted(transaction, analyst):
    review_set(transaction=transaction, status="confirmed_fraud", reviewer=analyst)
    analyst.delete()
    review = Review.objects.get()
    assert review.status == "confirmed_fraud"
    assert review.reviewer is None
    assert review.events.get().reviewer is None


def test_it_lets_analysts_and_staff_review(analyst, staff):
    assert user_can_review(analyst)
    assert user_can_review(staff)


def test_it_does_not_let_viewers_or_anonymous_visitors_review(user):
    assert not user_can_review(user)
    assert not user_can_review(AnonymousUser())


def test_it_does_not_let_a_deactivated_analyst_review(analyst):
    analyst.is_active = False
    analyst.save(update_fields=["is_active"])
    assert not user_can_review(analyst)
