"""Reviewing a transaction from its page: analysts and staff record a verdict
with a note, the history is kept, and the verdict feeds the models page."""

from __future__ import annotations

import pytest

from detection.models import Review, ReviewEvent

pytestmark = pytest.mark.django_db


def review(client, tx, **data):
    return client.post(f"/transactions/{tx.transaction_id}/review/", data)


def test_it_records_an_analysts_verdict_with_who_and_when(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    response = review(
        client, tx, status="confirmed_fraud", note="Customer confirmed the card was stolen."
    )
    assert response.status_code == 302
    assert response["Location"] == f"/transactions/{tx.transaction_id}/"
    saved = Review.objects.get(transaction=tx)
    assert saved.status == "confirmed_fraud"
    assert saved.note == "Customer confirmed the card was stolen."
    assert saved.reviewer == analyst
    assert saved.updated_at is not None
    [event] = saved.events.all()
    assert (event.status, event.reviewer) == ("confirmed_fraud", analyst)


def test_it_confirms_the_review_and_shows_it_on_the_page(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    response = client.post(
        f"/transactions/{tx.transaction_id}/review/",
        {"status": "false_positive", "note": "Known traveller"},
        follow=True,
    )
    html = response.content.decode()
    assert f"{tx.transaction_id} marked false positive." in html
    assert '<span class="badge badge-false_positive">False positive</span>' in html
    assert "by analyst on" in html
    assert "Known traveller" in html
    # The form starts from the recorded verdict.
    assert 'value="false_positive" id="id_status_1" checked' in html


def test_it_lets_staff_review(client, staff, scored):
    tx = scored.flagged()
    client.force_login(staff)
    assert review(client, tx, status="confirmed_fraud").status_code == 302
    assert Review.objects.get(transaction=tx).reviewer == staff


def test_it_forbids_a_viewer_to_review(client, user, scored):
    tx = scored.flagged()
    client.force_login(user)
    assert review(client, tx, status="confirmed_fraud").status_code == 403
    assert not Review.objects.exists()


def test_it_keeps_every_earlier_verdict_in_the_history(client, analyst, staff, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    review(client, tx, status="confirmed_fraud", note="first look")
    client.force_login(staff)
    review(client, tx, status="false_positive", note="refund was legitimate")
    saved = Review.objects.get(transaction=tx)
    assert (saved.status, saved.reviewer) == ("false_positive", staff)
    events = list(saved.events.order_by("created_at", "id"))
    assert [(e.status, e.reviewer, e.note) for e in events] == [
        ("confirmed_fraud", analyst, "first look"),
        ("false_positive", staff, "refund was legitimate"),
    ]
    html = client.get(f"/transactions/{tx.transaction_id}/").content.decode()
    assert "“first look”" in html
    assert "“refund was legitimate”" in html


def test_it_shows_the_services_message_for_an_unknown_verdict(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    response = review(client, tx, status="maybe")
    assert response.status_code == 200
    form = response.context["review_form"]
    assert form.errors == {
        "status": ["'maybe' is not one of pending, confirmed_fraud, false_positive"]
    }
    html = response.content.decode()
    assert 'id="id_status_error"' in html
    assert "The review was not saved" in html
    assert not ReviewEvent.objects.exists()


def test_it_asks_for_a_verdict(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    response = review(client, tx, note="forgot to choose")
    assert list(response.context["review_form"].errors) == ["status"]
    assert not Review.objects.exists()


def test_it_refuses_a_note_longer_than_the_service_allows(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    response = review(client, tx, status="confirmed_fraud", note="x" * 2001)
    assert response.context["review_form"].errors == {"note": ["at most 2000 characters"]}
    assert response.context["review_form"]["note"].value() == "x" * 2001
    assert not Review.objects.exists()


def test_it_answers_404_for_an_unknown_transaction(client, analyst, scored):
    client.force_login(analyst)
    response = client.post("/transactions/NOPE/review/", {"status": "confirmed_fraud"})
    assert response.status_code == 404


def test_it_accepts_review_by_post_only(client, analyst, scored):
    tx = scored.flagged()
    client.force_login(analyst)
    assert client.get(f"/transactions/{tx.transaction_id}/review/").status_code == 405


def test_it_feeds_the_precision_on_the_models_page(client, analyst, scored):
    flagged = scored.flagged()
    client.force_login(analyst)
    review(client, flagged, status="confirmed_fraud")
    counts = client.get("/models/").context["counts"]
    assert counts.flagged_confirmed_fraud == 1
    assert counts.flag_precision == 1.0
