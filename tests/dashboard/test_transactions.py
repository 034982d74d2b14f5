"""The transactions list (filters, sorting, pagination, flagged rows
highlighted) and one transaction's page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from detection.models import Transaction
from detection.reviews import review_set
from tests.dashboard.factories import takeover
from tests.factories import store

pytestmark = pytest.mark.django_db


def listed(client, query: str = "") -> list[Transaction]:
    response = client.get(f"/transactions/{query}")
    assert response.status_code == 200
    return [row.transaction for row in response.context["rows"]]


def test_it_lists_the_newest_first_fifty_to_a_page(client, user, scored):
    client.force_login(user)
    response = client.get("/transactions/")
    page = response.context["page"]
    assert page.paginator.count == 750
    assert len(page.object_list) == 50
    expected = list(Transaction.objects.order_by("-timestamp", "-id")[:50])
    assert [row.transaction for row in response.context["rows"]] == expected
    assert "1\N{EN DASH}50 of 750" in response.content.decode()


def test_it_pages_through_keeping_the_filters(client, user, scored):
    client.force_login(user)
    response = client.get("/transactions/?sort=oldest&page=2")
    expected = list(Transaction.objects.order_by("timestamp", "id")[50:100])
    assert [row.transaction for row in response.context["rows"]] == expected
    html = response.content.decode()
    assert 'href="?sort=oldest&amp;page=3" rel="next"' in html
    assert 'href="?sort=oldest&amp;page=1" rel="prev"' in html


def test_it_answers_a_page_past_the_end_with_the_last_page(client, user, scored):
    client.force_login(user)
    assert client.get("/transactions/?page=999").context["page"].number == 15
    assert client.get("/transactions/?page=abc").context["page"].number == 1


def test_it_highlights_flagged_rows(client, user, scored):
    client.force_login(user)
    html = client.get("/transactions/?flagged=yes").content.decode()
    flagged = Transaction.objects.filter(flagged=True).count()
    assert html.count('<tr class="is-flagged">') == min(flagged, 50)
    assert html.count('<span class="badge badge-flagged">Flagged</span>') == min(flagged, 50)


def test_it_filters_by_account(client, user, scored):
    client.force_login(user)
    rows = listed(client, "?account_id=AC00003")
    assert len(rows) == 25
    assert {tx.account_id for tx in rows} == {"AC00003"}


@pytest.mark.parametrize(("value", "flagged"), [("yes", True), ("no", False)])
def test_it_filters_by_flag(client, user, scored, value, flagged):
    client.force_login(user)
    response = client.get(f"/transactions/?flagged={value}")
    assert (
        response.context["page"].paginator.count
        == Transaction.objects.filter(flagged=flagged).count()
    )
    assert {row.transaction.flagged for row in response.context["rows"]} == {flagged}


def test_it_filters_by_review_status(client, user, analyst, scored):
    flagged = list(Transaction.objects.filter(flagged=True).order_by("id")[:3])
    review_set(transaction=flagged[0], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=flagged[1], status="false_positive", reviewer=analyst)
    review_set(transaction=flagged[2], status="pending", reviewer=analyst)
    client.force_login(user)
    assert listed(client, "?review_status=confirmed_fraud") == [flagged[0]]
    assert listed(client, "?review_status=false_positive") == [flagged[1]]
    assert listed(client, "?review_status=pending") == [flagged[2]]
    awaiting = listed(client, "?flagged=yes&review_status=awaiting")
    assert flagged[2] in awaiting
    assert flagged[0] not in awaiting and flagged[1] not in awaiting
    unreviewed = client.get("/transactions/?review_status=unreviewed").context["page"]
    assert unreviewed.paginator.count == 747


def test_it_filters_by_the_model_version_that_called_it_anomalous(client, user, scored):
    version = scored.models["local_outlier_factor"]
    client.force_login(user)
    response = client.get(f"/transactions/?model_version={version.pk}")
    expected = Transaction.objects.filter(
        predictions__model_version=version, predictions__is_anomaly=True
    ).count()
    assert response.context["page"].paginator.count == expected > 0
    html = response.content.decode()
    assert (
        f'<option value="{version.pk}" selected>Local Outlier Factor v1 (active)</option>' in html
    )


def test_it_filters_by_an_inclusive_date_range(client, user, scored):
    day = Transaction.objects.order_by("timestamp")[100].timestamp.date()
    client.force_login(user)
    response = client.get(f"/transactions/?since={day}&until={day}")
    rows = [row.transaction for row in response.context["rows"]]
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    expected = Transaction.objects.filter(
        timestamp__gte=start, timestamp__lt=start + timedelta(days=1)
    ).count()
    assert response.context["page"].paginator.count == expected > 0
    assert {tx.timestamp.date() for tx in rows} == {day}


def test_it_explains_a_bad_filter_and_ignores_it(client, user, scored):
    client.force_login(user)
    response = client.get("/transactions/?since=2024-13-01&flagged=maybe&model_version=x")
    form = response.context["form"]
    assert set(form.errors) == {"since", "flagged", "model_version"}
    assert response.context["page"].paginator.count == 750
    assert 'id="id_since_error"' in response.content.decode()


def test_it_refuses_a_range_that_ends_before_it_starts(client, user, scored):
    client.force_login(user)
    response = client.get("/transactions/?since=2024-03-10&until=2024-03-01")
    assert response.context["form"].errors == {"until": ["must not be before the start date"]}


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("amount_desc", lambda tx: (-tx.amount, -tx.pk)),
        ("amount_asc", lambda tx: (tx.amount, tx.pk)),
        ("oldest", lambda tx: (tx.timestamp, tx.pk)),
    ],
)
def test_it_sorts(client, user, scored, sort, key):
    client.force_login(user)
    rows = listed(client, f"?sort={sort}")
    assert rows == sorted(Transaction.objects.all(), key=key)[:50]


def test_it_sorts_from_the_column_headers(client, user, scored):
    client.force_login(user)
    html = client.get("/transactions/?account_id=AC00003").content.decode()
    assert 'href="?account_id=AC00003&amp;sort=amount_desc">Amount</a>' in html
    html = client.get("/transactions/?account_id=AC00003&sort=amount_desc").content.decode()
    assert 'href="?account_id=AC00003&amp;sort=amount_asc" aria-current="true">Amount ↓</a>' in html


def test_it_lists_a_page_in_a_bounded_number_of_queries(
    client, user, scored, django_assert_max_num_queries
):
    client.force_login(user)
    with django_assert_max_num_queries(8):
        assert client.get("/transactions/?flagged=no&sort=amount_desc").status_code == 200


# --- one transaction ---------------------------------------------------------


def test_it_shows_every_field_of_a_transaction(client, user, scored):
    tx = scored.flagged()
    client.force_login(user)
    html = client.get(f"/transactions/{tx.transaction_id}/").content.decode()
    for value in (
        tx.transaction_id,
        tx.account_id,
        f"{tx.amount:,.2f}",
        f"{tx.timestamp:%Y-%m-%d %H:%M:%S}",
        f"<dd>{tx.transaction_type}</dd>",
        f"<dd>{tx.channel}</dd>",
        tx.location,
        tx.device_id,
        tx.ip_address,
        tx.merchant_id,
        f"<dd>{tx.customer_age}</dd>",
        f"<dd>{tx.customer_occupation}</dd>",
        f"<dd>{tx.duration_seconds} s</dd>",
        f"<dd>{tx.login_attempts}</dd>",
        f"{tx.account_balance:,.2f}",
    ):
        assert str(value) in html, value


def test_it_shows_a_channel_as_the_data_spells_it(client, user, scored):
    store([takeover(transaction_id="ATMTX", channel="ATM")])
    client.force_login(user)
    html = client.get("/transactions/ATMTX/").content.decode()
    assert "<dd>ATM</dd>" in html  # not Django's derived label "Atm"


def test_it_shows_each_models_score_against_its_threshold_and_the_reasons(client, user, scored):
    tx = scored.flagged()
    client.force_login(user)
    response = client.get(f"/transactions/{tx.transaction_id}/")
    scores = dict(response.context["scores"])
    html = response.content.decode()
    for name in ("Isolation Forest", "Local Outlier Factor"):
        prediction = scores[name]
        assert prediction.model_version.is_active
        assert f"{prediction.score:.3f}" in html
        assert f"{prediction.threshold:.3f}" in html
    assert response.context["reasons"] == scores["Isolation Forest"].reasons
    for reason in response.context["reasons"]:
        assert f"<li>{reason}</li>" in html.replace("&#x27;", "'")


def test_it_shows_the_accounts_transactions_before_this_one(client, user, scored):
    tx = Transaction.objects.filter(account_id="AC00005").order_by("timestamp")[15]
    client.force_login(user)
    history = client.get(f"/transactions/{tx.transaction_id}/").context["history"]
    expected = list(
        Transaction.objects.filter(account_id="AC00005", timestamp__lt=tx.timestamp).order_by(
            "-timestamp"
        )[:10]
    )
    assert history == expected


def test_it_says_when_a_transaction_is_the_accounts_first(client, user, scored):
    first = Transaction.objects.filter(account_id="AC00005").order_by("timestamp").first()
    client.force_login(user)
    html = client.get(f"/transactions/{first.transaction_id}/").content.decode()
    assert "No earlier transactions: this is the account's first." in html


def test_it_shows_the_review_form_to_analysts_and_staff_only(client, user, analyst, staff, scored):
    tx = scored.flagged()
    path = f"/transactions/{tx.transaction_id}/"
    client.force_login(user)
    html = client.get(path).content.decode()
    assert "Save review" not in html
    assert "Analysts and staff can record a verdict here." in html
    for who in (analyst, staff):
        client.force_login(who)
        html = client.get(path).content.decode()
        assert f'action="/transactions/{tx.transaction_id}/review/"' in html
        assert '<input type="radio" name="status" value="confirmed_fraud"' in html
        assert '<label for="id_note">Note</label>' in html


def test_it_shows_an_unscored_transaction(client, user, scored):
    store([takeover(transaction_id="UNSCORED")])
    client.force_login(user)
    html = client.get("/transactions/UNSCORED/").content.decode()
    assert html.count("not scored") == 2
    assert '<span class="badge badge-unscored">Not scored</span>' in html


def test_it_shows_a_transaction_in_a_bounded_number_of_queries(
    client, analyst, scored, django_assert_max_num_queries
):
    tx = scored.flagged()
    review_set(transaction=tx, status="confirmed_fraud", note="card stolen", reviewer=analyst)
    client.force_login(analyst)
    with django_assert_max_num_queries(12):
        assert client.get(f"/transactions/{tx.transaction_id}/").status_code == 200


def test_it_treats_dates_in_utc(client, user, scored):
    tx = Transaction.objects.order_by("timestamp").first()
    client.force_login(user)
    html = client.get(f"/transactions/{tx.transaction_id}/").content.decode()
    assert f"{tx.timestamp:%Y-%m-%d %H:%M:%S} UTC" in html
    assert isinstance(tx.timestamp.date(), date)
