"""Output shapes of stored transactions, shared by the listings and the
detail view. They read only prefetched rows (see ``transactions_list``), so a
page costs the same few queries whatever its size."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import Prediction, Review, ReviewEvent, Transaction
from detection.schema import FIELDS
from detection.selectors import latest_predictions


class PredictionOutput(serializers.ModelSerializer):
    algorithm = serializers.CharField(source="model_version.algorithm")
    model_version = serializers.IntegerField(
        source="model_version.version", help_text="the version number"
    )
    model_version_id = serializers.IntegerField()

    class Meta:
        model = Prediction
        fields = (
            "algorithm",
            "model_version",
            "model_version_id",
            "score",
            "threshold",
            "is_anomaly",
            "scored_at",
        )


class LatestPredictionsOutput(serializers.Serializer):
    isolation_forest = PredictionOutput(required=False)
    local_outlier_factor = PredictionOutput(required=False)


class ReviewSummaryOutput(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = ("status", "updated_at")


class TransactionOutput(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    account_balance = serializers.DecimalField(
        max_digits=14, decimal_places=2, coerce_to_string=False
    )
    ip_address = serializers.CharField()
    predictions = serializers.SerializerMethodField(
        help_text="per model, the active version's prediction, else the newest"
    )
    reasons = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = (
            *FIELDS,
            "received_at",
            "flagged",
            "predictions",
            "reasons",
            "review",
        )

    def _latest(self, transaction: Transaction) -> dict[str, Prediction]:
        cache = self.context.setdefault("_latest", {})
        if transaction.pk not in cache:
            cache[transaction.pk] = latest_predictions(transaction)
        return cache[transaction.pk]

    @extend_schema_field(LatestPredictionsOutput)
    def get_predictions(self, transaction: Transaction) -> dict[str, Any]:
        return {
            algorithm: PredictionOutput(prediction).data
            for algorithm, prediction in self._latest(transaction).items()
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reasons(self, transaction: Transaction) -> list[str]:
        latest = self._latest(transaction)
        newest = max(latest.values(), key=lambda p: p.scored_at, default=None)
        return list(newest.reasons) if newest is not None else []

    @extend_schema_field(ReviewSummaryOutput(allow_null=True))
    def get_review(self, transaction: Transaction) -> dict[str, Any] | None:
        review = getattr(transaction, "review", None)
        return ReviewSummaryOutput(review).data if review is not None else None


class ReviewEventOutput(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)

    class Meta:
        model = ReviewEvent
        fields = ("status", "note", "reviewer", "created_at")


class ReviewOutput(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    history = ReviewEventOutput(source="events", many=True, help_text="newest first")

    class Meta:
        model = Review
        fields = ("status", "note", "reviewer", "created_at", "updated_at", "history")


class TransactionDetailOutput(TransactionOutput):
    prediction_history = PredictionOutput(
        source="predictions", many=True, help_text="every stored prediction, by every version"
    )

    class Meta(TransactionOutput.Meta):
        fields = (*TransactionOutput.Meta.fields, "prediction_history")

    @extend_schema_field(ReviewOutput(allow_null=True))
    def get_review(self, transaction: Transaction) -> dict[str, Any] | None:
        review = getattr(transaction, "review", None)
        return ReviewOutput(review).data if review is not None else None
