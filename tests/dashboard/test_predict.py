"""The prediction form: 1 to 10 transactions with defaults, either or both
models, results with score against threshold, verdict and reasons, and the
shared schema's messages beside the fields."""

from __future__ import annotations

import re

import pytest
from django.utils.html import escape

from detection.models import ModelVersion, Prediction, Transaction
from detection.schema import InvalidTransactions, validate_transaction
from tests.dashboard.factories import form_data, takeover_data
from tests.factories import habitual_data

pytestmark = pytest.mark.django_db


def test_it_starts_with_one_transaction_filled_with_defaults(client, user, scored):
    client.force_login(user)
    response = client.get("/predict/")
    formset = response.context["formset"]
    assert len(formset.forms) == 1
    initial = formset.forms[0].initial
    assert initial["account_id"] == "AC00128"
    assert initial["amount"] == "14.09"
    assert re.fullmatch(r"WEB\d{12}[0-9A-F]{4}", initial["transaction_id"])
    # The defaults are valid as they stand.
    validate_transaction({k: v for k, v in initial.items() if v})
    html = response.content.decode()
    assert 'id="id_options-algorithms_0" checked' in html  # both models by default
    assert '<label for="id_tx-0-amount">Amount</label>' in html


def test_it_gives_every_new_page_a_fresh_transaction_id(client, user, scored):
    client.force_login(user)
    first = client.get("/predict/").context["formset"].forms[0].initial["transaction_id"]
    second = client.get("/predict/").context["formset"].forms[0].initial["transaction_id"]
    assert first != second


def test_it_flags_a_suspicious_transaction_with_reasons_and_stores_it(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()]))
    assert response.status_code == 200
    [row] = response.context["results"]
    assert row.result.flagged
    assert row.result.stored
    assert "first use of this device by the account" in row.result.reasons
    for score in row.scores:
        assert score.is_anomaly
        assert score.score >= score.threshold
    html = response.content.decode()
    assert "Scored 1 transaction: 1 flagged; stored." in html
    assert '<span class="badge badge-flagged">Flagged</span>' in html
    assert "<li>first use of this device by the account</li>" in html
    assert 'href="/transactions/ATTACK1/"' in html
    stored = Transaction.objects.get(transaction_id="ATTACK1")
    assert stored.flagged
    assert stored.predictions.count() == 2


def test_it_does_not_flag_a_habitual_transaction(client, user, scored):
    last = Transaction.objects.filter(account_id="AC00003").order_by("-timestamp").first()
    habitual = habitual_data(last, transaction_id="HABIT1", timestamp="2024-04-20T12:00:00")
    client.force_login(user)
    response = client.post("/predict/", form_data([habitual]))
    [row] = response.context["results"]
    assert not row.result.flagged
    assert '<span class="badge badge-clear">Not flagged</span>' in response.content.decode()


def test_it_scores_without_storing_when_asked(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()], store=False))
    [row] = response.context["results"]
    assert row.result.flagged
    assert not row.result.stored
    assert "nothing stored." in response.content.decode()
    assert not Transaction.objects.filter(transaction_id="ATTACK1").exists()
    assert 'href="/transactions/ATTACK1/"' not in response.content.decode()


@pytest.mark.parametrize(
    ("choice", "algorithms"),
    [
        ("isolation_forest", {"isolation_forest"}),
        ("local_outlier_factor", {"local_outlier_factor"}),
        ("both", {"isolation_forest", "local_outlier_factor"}),
    ],
)
def test_it_scores_with_the_chosen_models(client, user, scored, choice, algorithms):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()], algorithms=choice))
    [row] = response.context["results"]
    assert set(row.result.predictions) == algorithms
    stored = Prediction.objects.filter(transaction__transaction_id="ATTACK1")
    assert {p.model_version.algorithm for p in stored} == algorithms


def test_it_scores_up_to_ten_transactions_in_order(client, user, scored):
    rows = [takeover_data(transaction_id=f"MANY{i}") for i in range(10)]
    client.force_login(user)
    response = client.post("/predict/", form_data(rows))
    assert [r.result.transaction_id for r in response.context["results"]] == [
        f"MANY{i}" for i in range(10)
    ]


def test_it_refuses_more_than_ten(client, user, scored):
    rows = [takeover_data(transaction_id=f"MANY{i}") for i in range(11)]
    client.force_login(user)
    response = client.post("/predict/", form_data(rows))
    assert response.context["results"] is None
    assert "At most 10 transactions at once." in response.content.decode()
    assert not Transaction.objects.filter(transaction_id__startswith="MANY").exists()


BAD_VALUES = [
    {"amount": "-5"},
    {"amount": "1000000.01"},
    {"amount": "12.345"},
    {"amount": "NaN"},
    {"ip_address": "300.1.1.1"},
    {"customer_age": "17"},
    {"customer_age": "forty"},
    {"timestamp": "20230411"},
    {"timestamp": "2023-02-30T10:00:00"},
    {"channel": "Phone"},
    {"transaction_type": "Refund"},
    {"transaction_id": "bad id!"},
    {"location": "x" * 65},
    {"location": "San\x00Diego"},
    {"login_attempts": "11"},
    {"previous_transaction_at": "yesterday"},
    {"amount": "", "device_id": ""},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda bad: ",".join(bad))
def test_it_shows_the_schemas_own_message_beside_each_bad_field(client, user, scored, bad):
    data = takeover_data(**bad)
    api_input = {k: v for k, v in data.items() if v != ""}
    with pytest.raises(InvalidTransactions) as refused:
        validate_transaction(api_input)
    expected = {}
    for error in refused.value.errors:
        expected.setdefault(error.field, []).append(error.message)
    client.force_login(user)
    response = client.post("/predict/", form_data([data]))
    assert response.status_code == 200
    assert response.context["results"] is None
    form = response.context["formset"].forms[0]
    assert form.errors == expected
    html = response.content.decode()
    for field, messages in expected.items():
        # Beside the field, and announced with it.
        assert f'id="id_tx-0-{field}_error"' in html
        assert f'aria-describedby="id_tx-0-{field}_error"' in html
        for message in messages:
            assert escape(message) in html
    assert "Some values need correcting" in html
    assert not Transaction.objects.filter(transaction_id=data["transaction_id"]).exists()


def test_it_says_a_blank_required_field_is_required(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data(merchant_id="  ")]))
    assert response.context["formset"].forms[0].errors == {
        "merchant_id": ["this field is required"]
    }


def test_it_accepts_a_blank_previous_transaction_date(client, user, scored):
    client.force_login(user)
    response = client.post(
        "/predict/", form_data([takeover_data(previous_transaction_at="")], store=False)
    )
    assert response.context["results"] is not None


def test_it_catches_a_transaction_id_given_twice_as_the_api_does(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data(), takeover_data(amount="10.00")]))
    forms = response.context["formset"].forms
    assert forms[0].errors == {}
    assert forms[1].errors == {"transaction_id": ["duplicate of item 0 in this batch"]}


def test_it_leaves_out_the_transactions_marked_so(client, user, scored):
    rows = [takeover_data(transaction_id="KEEP"), takeover_data(transaction_id="bad id!")]
    client.force_login(user)
    response = client.post("/predict/", form_data(rows, deleted=[1]))
    assert [r.result.transaction_id for r in response.context["results"]] == ["KEEP"]


def test_it_refuses_to_leave_out_every_transaction(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()], deleted=[0]))
    assert response.context["results"] is None
    assert "Keep at least 1 transaction." in response.content.decode()


def test_it_adds_another_transaction_without_javascript(client, user, scored):
    client.force_login(user)
    data = form_data([takeover_data(amount="77.00")])
    data["add"] = "1"
    response = client.post("/predict/", data)
    forms = response.context["formset"].forms
    assert len(forms) == 2
    assert forms[0].initial["amount"] == "77.00"  # what was typed is kept
    assert forms[1].initial["account_id"] == "AC00128"  # the new one has defaults
    assert not Transaction.objects.filter(transaction_id="ATTACK1").exists()
    assert "Leave this transaction out" in response.content.decode()


def test_it_stops_adding_at_ten(client, user, scored):
    client.force_login(user)
    data = form_data([takeover_data(transaction_id=f"T{i}") for i in range(10)])
    data["add"] = "1"
    response = client.post("/predict/", data)
    assert len(response.context["formset"].forms) == 10
    html = response.content.decode()
    assert "At most 10 transactions at once." in html
    assert "Add another transaction" not in html


def test_it_offers_fresh_ids_after_storing_so_a_change_is_a_new_transaction(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()]))
    form = response.context["formset"].forms[0]
    assert form.initial["transaction_id"] != "ATTACK1"
    assert form.initial["amount"] == "9500.00"


def test_it_survives_a_tampered_management_form(client, user, scored):
    client.force_login(user)
    data = form_data([takeover_data()])
    data["tx-TOTAL_FORMS"] = "lots"
    response = client.post("/predict/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The form arrived incomplete; please enter the transactions again." in html
    assert len(response.context["formset"].forms) == 1
    assert not Transaction.objects.filter(transaction_id="ATTACK1").exists()


def test_it_reports_a_model_that_cannot_be_loaded(client, user, scored):
    ModelVersion.objects.filter(algorithm="local_outlier_factor").update(sha256="0" * 64)
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()]))
    assert response.status_code == 503
    assert "The model could not be loaded" in response.content.decode()


def test_it_scores_in_a_bounded_number_of_queries(
    client, user, scored, django_assert_max_num_queries
):
    client.force_login(user)
    rows = [takeover_data(transaction_id=f"Q{i}") for i in range(10)]
    with django_assert_max_num_queries(20):
        assert client.post("/predict/", form_data(rows)).status_code == 200
