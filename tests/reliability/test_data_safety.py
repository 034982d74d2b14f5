"""What must never be lost: analysts' verdicts, and the model versions (with
their artifacts) that produced stored predictions."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from detection.models import ModelVersion, Prediction, Review, ReviewEvent, Transaction
from detection.registry import artifacts_dir, model_version_activate
from detection.reviews import review_set
from detection.scoring import stored_transactions_score
from detection.training import models_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(trained):
    stored_transactions_score()
    return trained


def reviews() -> list[tuple]:
    return sorted(
        Review.objects.values_list("transaction__transaction_id", "status", "note", "reviewer")
    )


def test_it_keeps_reviews_and_their_history_through_retraining_and_rescoring(scored, analyst):
    first, second = Transaction.objects.order_by("id")[:2]
    review_set(transaction=first, status="pending", note="looking", reviewer=analyst)
    review_set(transaction=first, status="confirmed_fraud", note="card stolen", reviewer=analyst)
    review_set(transaction=second, status="false_positive", note="", reviewer=analyst)
    before, events = reviews(), ReviewEvent.objects.count()

    models_train()
    stored_transactions_score(rescore=True)

    assert reviews() == before
    assert ReviewEvent.objects.count() == events == 3
    assert Transaction.objects.get(pk=first.pk).review.status == "confirmed_fraud"


def test_it_keeps_the_predictions_of_earlier_versions_after_retraining(scored):
    earlier = set(Prediction.objects.values_list("transaction_id", "model_version_id", "score"))

    models_train()
    stored_transactions_score()

    kept = set(
        Prediction.objects.filter(model_version__version=1).values_list(
            "transaction_id", "model_version_id", "score"
        )
    )
    assert kept == earlier
    assert Prediction.objects.filter(model_version__version=2).count() == len(earlier)


def test_it_refuses_to_delete_a_version_that_scored_transactions(scored):
    version = scored["isolation_forest"]

    with pytest.raises(ProtectedError):
        version.delete()
    with pytest.raises(ProtectedError):
        ModelVersion.objects.all().delete()

    assert ModelVersion.objects.count() == 2


def test_it_refuses_the_deletion_in_the_database_too(scored):
    # Below the ORM (a raw statement, another tool): the foreign key holds.
    table = connection.ops.quote_name(ModelVersion._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [scored["isolation_forest"].pk])
        connection.check_constraints()

    assert ModelVersion.objects.count() == 2


def test_it_keeps_an_earlier_versions_artifact_so_it_can_be_rolled_back_to(scored):
    models_train()
    earlier = ModelVersion.objects.get(algorithm="isolation_forest", version=1)

    model_version_activate(model_version=earlier)

    assert (artifacts_dir() / earlier.artifact_path).exists()
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True) == earlier
