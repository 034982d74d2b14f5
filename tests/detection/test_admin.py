"""The Django admin: staff find transactions by id, filter by flag, review
status and model version, review in bulk through the review service, and
activate model versions; stored records stay read-only."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from detection.models import ModelVersion, Prediction, Review, ReviewEvent, Transaction
from detection.reviews import review_set
from detection.training import models_train
from tests.dashboard.factories import module_scored_history, tampered_copy

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/detection/transaction/",
    "/admin/detection/review/",
    "/admin/detection/reviewevent/",
    "/admin/detection/prediction/",
    "/admin/detection/modelversion/",
]


@pytest.fixture(scope="module")
def module_artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("admin-artifacts")


@pytest.fixture(autouse=True)
def _artifacts_dir(settings, module_artifacts):
    settings.ML_ARTIFACTS_DIR = module_artifacts


@pytest.fixture(scope="module")
def scored(django_db_setup, django_db_blocker, module_artifacts):
    """A scored history for the whole module, rolled back at its end."""
    with module_scored_history(django_db_blocker, module_artifacts) as history:
        yield history


def ids(response) -> list[str]:
    return [tx.transaction_id for tx in response.context["cl"].result_list]


@pytest.mark.parametrize("path", CHANGELISTS)
def test_it_shows_staff_every_list_in_a_bounded_number_of_queries(
    client, staff, scored, path, django_assert_max_num_queries
):
    client.force_login(staff)
    with django_assert_max_num_queries(14):
        response = client.get(path)
    assert response.status_code == 200


@pytest.mark.parametrize("who", ["user", "analyst"])
def test_it_keeps_people_who_are_not_staff_out(client, request, who, scored):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/admin/detection/transaction/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_finds_a_transaction_by_its_exact_id(client, staff, scored):
    target = Transaction.objects.order_by("id")[10]
    client.force_login(staff)
    response = client.get(f"/admin/detection/transaction/?q={target.transaction_id}")
    assert ids(response) == [target.transaction_id]


def test_it_finds_an_accounts_transactions(client, staff, scored):
    client.force_login(staff)
    response = client.get("/admin/detection/transaction/?q=AC00003")
    assert len(ids(response)) == 25


def test_it_filters_transactions_by_flag(client, staff, scored):
    client.force_login(staff)
    response = client.get("/admin/detection/transaction/?flagged__exact=1")
    assert set(ids(response)) == set(
        Transaction.objects.filter(flagged=True).values_list("transaction_id", flat=True)
    )


def test_it_filters_transactions_by_review_status(client, staff, analyst, scored):
    confirmed, other = Transaction.objects.filter(flagged=True)[:2]
    review_set(transaction=confirmed, status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=other, status="pending", reviewer=analyst)
    client.force_login(staff)
    assert ids(client.get("/admin/detection/transaction/?review=confirmed_fraud")) == [
        confirmed.transaction_id
    ]
    unreviewed = client.get("/admin/detection/transaction/?review=none").context["cl"]
    assert unreviewed.result_count == 748


def test_it_filters_transactions_by_the_version_that_called_them_anomalous(client, staff, scored):
    version = scored.models["isolation_forest"]
    client.force_login(staff)
    response = client.get(f"/admin/detection/transaction/?anomalous_by={version.pk}")
    assert len(ids(response)) < 100
    assert set(ids(response)) == set(
        Prediction.objects.filter(model_version=version, is_anomaly=True).values_list(
            "transaction__transaction_id", flat=True
        )
    )
    assert "Isolation Forest v1" in response.content.decode()
    assert ids(client.get("/admin/detection/transaction/?anomalous_by=x")) == []


def test_it_filters_reviews_by_status_flag_and_model_version(client, staff, analyst, scored):
    version = scored.models["local_outlier_factor"]
    called = Transaction.objects.filter(
        predictions__model_version=version, predictions__is_anomaly=True
    ).first()
    passed = Transaction.objects.filter(flagged=False).first()
    review_set(transaction=called, status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=passed, status="false_positive", reviewer=analyst)
    client.force_login(staff)

    def reviewed(query: str) -> list[str]:
        response = client.get(f"/admin/detection/review/?{query}")
        return [review.transaction.transaction_id for review in response.context["cl"].result_list]

    assert reviewed("status__exact=false_positive") == [passed.transaction_id]
    assert reviewed("transaction__flagged__exact=0") == [passed.transaction_id]
    assert reviewed(f"anomalous_by={version.pk}") == [called.transaction_id]
    assert reviewed(f"q={called.transaction_id}") == [called.transaction_id]


def test_it_marks_selected_transactions_in_bulk_through_the_review_service(client, staff, scored):
    chosen = list(Transaction.objects.filter(flagged=True)[:3])
    client.force_login(staff)
    response = client.post(
        "/admin/detection/transaction/",
        {"action": "mark_confirmed_fraud", ACTION_CHECKBOX_NAME: [tx.pk for tx in chosen]},
        follow=True,
    )
    assert "3 transactions marked confirmed fraud." in response.content.decode()
    for tx in chosen:
        review = Review.objects.get(transaction=tx)
        assert (review.status, review.reviewer) == ("confirmed_fraud", staff)
        assert review.events.get().reviewer == staff


def test_it_changes_reviews_in_bulk_and_keeps_the_history(client, staff, analyst, scored):
    tx = scored.flagged()
    review = review_set(transaction=tx, status="confirmed_fraud", reviewer=analyst)
    client.force_login(staff)
    client.post(
        "/admin/detection/review/",
        {"action": "mark_false_positive", ACTION_CHECKBOX_NAME: [review.pk]},
    )
    review.refresh_from_db()
    assert (review.status, review.reviewer) == ("false_positive", staff)
    assert review.events.count() == 2


def test_it_offers_no_delete_action(client, staff, scored):
    client.force_login(staff)
    for path in CHANGELISTS:
        html = client.get(path).content.decode()
        assert 'value="delete_selected"' not in html, path


def test_it_shows_a_transaction_read_only_with_its_predictions_and_review(
    client, staff, analyst, scored
):
    tx = scored.flagged()
    review_set(transaction=tx, status="confirmed_fraud", note="stolen card", reviewer=analyst)
    client.force_login(staff)
    response = client.get(f"/admin/detection/transaction/{tx.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="amount"' not in html
    assert 'name="flagged"' not in html
    assert "stolen card" in html
    assert html.count("isolation_forest v1") + html.count("local_outlier_factor v1") >= 2
    edited = client.post(f"/admin/detection/transaction/{tx.pk}/change/", {"amount": "1.00"})
    assert edited.status_code == 403
    tx.refresh_from_db()
    assert tx.amount != 1


def test_it_refuses_to_add_or_delete_stored_records(client, staff, scored):
    tx = scored.flagged()
    version = scored.models["isolation_forest"]
    client.force_login(staff)
    assert client.get("/admin/detection/transaction/add/").status_code == 403
    assert client.get("/admin/detection/modelversion/add/").status_code == 403
    assert client.post(f"/admin/detection/transaction/{tx.pk}/delete/").status_code == 403
    assert client.post(f"/admin/detection/modelversion/{version.pk}/delete/").status_code == 403
    assert Transaction.objects.filter(pk=tx.pk).exists()


def test_it_saves_a_review_edited_in_the_admin_through_the_service(client, staff, analyst, scored):
    tx = scored.flagged()
    review = review_set(transaction=tx, status="confirmed_fraud", reviewer=analyst)
    client.force_login(staff)
    page = client.get(f"/admin/detection/review/{review.pk}/change/")
    html = page.content.decode()
    assert 'name="status"' in html
    assert 'name="reviewer"' not in html  # recorded, not chosen
    response = client.post(
        f"/admin/detection/review/{review.pk}/change/",
        {
            "status": "false_positive",
            "note": "travel notice on file",
            "events-TOTAL_FORMS": "1",
            "events-INITIAL_FORMS": "1",
            "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    review.refresh_from_db()
    assert (review.status, review.note, review.reviewer) == (
        "false_positive",
        "travel notice on file",
        staff,
    )
    latest = review.events.first()
    assert (latest.status, latest.reviewer) == ("false_positive", staff)
    assert review.events.count() == 2


def test_it_adds_a_review_in_the_admin_through_the_service(client, staff, scored):
    tx = scored.flagged()
    client.force_login(staff)
    response = client.post(
        "/admin/detection/review/add/",
        {
            "transaction": tx.pk,
            "status": "confirmed_fraud",
            "note": "",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    review = Review.objects.get(transaction=tx)
    assert review.reviewer == staff
    assert ReviewEvent.objects.get(review=review).reviewer == staff


def test_it_shows_the_review_history_inline(client, staff, analyst, scored):
    tx = scored.flagged()
    review_set(transaction=tx, status="pending", note="need the statement", reviewer=analyst)
    review = review_set(transaction=tx, status="confirmed_fraud", reviewer=staff)
    client.force_login(staff)
    html = client.get(f"/admin/detection/review/{review.pk}/change/").content.decode()
    assert "need the statement" in html
    assert "history (newest first)" in html.lower()


def test_it_activates_a_model_version_from_the_list(client, staff, scored, settings):
    settings.ML_IF_N_ESTIMATORS = 60
    models_train(algorithms=["isolation_forest"])
    older = scored.models["isolation_forest"]
    client.force_login(staff)
    response = client.post(
        "/admin/detection/modelversion/",
        {"action": "activate", ACTION_CHECKBOX_NAME: [older.pk]},
        follow=True,
    )
    assert "Isolation Forest v1 is now active." in response.content.decode()
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True) == older


def test_it_refuses_two_versions_of_one_algorithm_at_once(client, staff, scored, settings):
    settings.ML_IF_N_ESTIMATORS = 60
    newer = models_train(algorithms=["isolation_forest"])[0].model_version
    older = scored.models["isolation_forest"]
    client.force_login(staff)
    response = client.post(
        "/admin/detection/modelversion/",
        {"action": "activate", ACTION_CHECKBOX_NAME: [older.pk, newer.pk]},
        follow=True,
    )
    assert "Choose at most one version of each algorithm." in response.content.decode()
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True) == newer


def test_it_reports_an_artifact_that_fails_verification(client, staff, scored):
    version = scored.models["local_outlier_factor"]
    broken = tampered_copy(version)
    client.force_login(staff)
    response = client.post(
        "/admin/detection/modelversion/",
        {"action": "activate", ACTION_CHECKBOX_NAME: [broken.pk]},
        follow=True,
    )
    assert (
        "Local Outlier Factor v2 was not activated: artifact checksum does not match the database."
        in response.content.decode()
    )
    version.refresh_from_db()
    assert version.is_active


def test_it_filters_predictions_by_model_version_and_verdict(client, staff, scored):
    version = scored.models["isolation_forest"]
    client.force_login(staff)
    response = client.get(
        f"/admin/detection/prediction/?model_version__id__exact={version.pk}&is_anomaly__exact=1"
    )
    changelist = response.context["cl"]
    expected = Prediction.objects.filter(model_version=version, is_anomaly=True).count()
    assert changelist.result_count == expected
    assert {p.model_version_id for p in changelist.result_list} == {version.pk}
    assert all(p.is_anomaly for p in changelist.result_list)
