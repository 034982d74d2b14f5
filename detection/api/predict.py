"""Scoring: ``POST /api/predict/`` and ``POST /api/models/{algorithm}/predict/``.

The body is validated by the one transaction schema (``detection.schema``),
not by a DRF serializer: the same rules and messages as the pages and CSV
import, and a fraction of the cost on a 1,000-item batch. The serializers
below describe the body and the answer for the OpenAPI schema; the answer
itself is built directly from the scoring results for the same reason.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiTypes,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from detection.api.base import ApiView
from detection.api.errors import InvalidInput, ServiceUnavailable, error_responses
from detection.models import Algorithm, Channel, Occupation, TransactionType
from detection.registry import ArtifactError, NoActiveModel
from detection.schema import (
    AMOUNT_MAX,
    BALANCE_MAX,
    ID_PATTERN,
    FieldError,
    InvalidTransactions,
    validate_batch,
)
from detection.scoring import ScoredBatch, transactions_score

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _persist_param(request: Request) -> bool:
    value = request.query_params.get("persist")
    if value is None:
        return True
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise InvalidInput([FieldError("persist", f"{value[:40]!r} is not true or false")])


def _models_param(request: Request) -> tuple[str, ...] | None:
    values = request.query_params.getlist("models")
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise InvalidInput([FieldError("models", "name at least one model")])
    unknown = [name for name in names if name not in Algorithm.values]
    if unknown:
        raise InvalidInput(
            [
                FieldError("models", f"{name[:40]!r} is not one of {', '.join(Algorithm.values)}")
                for name in unknown
            ]
        )
    return tuple(dict.fromkeys(names))


def _rendered(results: ScoredBatch) -> list[dict[str, Any]]:
    """The answer's items, built from the batch's columns: each model's
    predictions first, then one object per transaction."""
    predictions = [
        _model_predictions(model.model_version, model.threshold, model.scores, model.is_anomaly)
        for model in results.models.values()
    ]
    algorithms = list(results.models)
    stored = results.stored
    return [
        {
            "transaction_id": transaction_id,
            "flagged": flagged,
            "predictions": dict(zip(algorithms, each_model, strict=True)),
            "reasons": reasons,
            "stored": stored,
        }
        for transaction_id, flagged, each_model, reasons in zip(
            results.transaction_ids,
            results.flagged,
            zip(*predictions, strict=True),
            results.reasons,
            strict=True,
        )
    ]


def _model_predictions(
    version: int, threshold: float, scores: list[float], is_anomaly: list[bool]
) -> list[dict[str, Any]]:
    return [
        {"model_version": version, "score": score, "threshold": threshold, "is_anomaly": anomaly}
        for score, anomaly in zip(scores, is_anomaly, strict=True)
    ]


def _predict(request: Request, *, algorithms: tuple[str, ...] | None, persist: bool) -> Response:
    if request.stream is None:
        raise InvalidInput(
            [FieldError("__all__", "the request body is empty; send a transaction or a list")]
        )
    try:
        items = validate_batch(request.data, max_items=settings.API_MAX_BATCH)
    except InvalidTransactions as exc:
        raise InvalidInput(exc.errors) from None
    try:
        results = transactions_score(items=items, algorithms=algorithms, persist=persist)
    except NoActiveModel as exc:
        raise ServiceUnavailable(
            f"{exc.algorithm} has no active version: train or activate one",
            algorithm=exc.algorithm,
            reason="no_active_version",
            model_version=None,
        ) from None
    except ArtifactError as exc:
        model_version = exc.model_version
        raise ServiceUnavailable(
            f"{model_version}: the artifact fails verification ({exc.detail}); "
            "retrain or activate another version",
            algorithm=model_version.algorithm if model_version else None,
            reason=exc.reason,
            model_version=model_version.version if model_version else None,
        ) from None
    return Response(_rendered(results))


# --- OpenAPI description -----------------------------------------------------


def _identifier(help_text: str) -> serializers.RegexField:
    return serializers.RegexField(ID_PATTERN, max_length=32, help_text=help_text)


class TransactionInput(serializers.Serializer):
    """One transaction. The earlier system's names (``TransactionID``,
    ``AccountID``, ``TransactionAmount``, ``TransactionDate``, …,
    ``IPAddress``) are accepted in place of these."""

    transaction_id = _identifier("unique id; an id already stored is scored, not stored again")
    account_id = _identifier("the account the transaction belongs to")
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, max_value=AMOUNT_MAX, coerce_to_string=False
    )
    timestamp = serializers.DateTimeField(help_text="ISO 8601; naive times are UTC")
    transaction_type = serializers.ChoiceField(choices=TransactionType.choices)
    location = serializers.CharField(min_length=1, max_length=64)
    device_id = _identifier("the device used")
    ip_address = serializers.IPAddressField()
    merchant_id = _identifier("the merchant paid")
    channel = serializers.ChoiceField(choices=Channel.choices)
    customer_age = serializers.IntegerField(min_value=18, max_value=120)
    customer_occupation = serializers.ChoiceField(choices=Occupation.choices)
    duration_seconds = serializers.IntegerField(min_value=0, max_value=10_000)
    login_attempts = serializers.IntegerField(min_value=0, max_value=10)
    account_balance = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        max_value=BALANCE_MAX,
        coerce_to_string=False,
    )
    previous_transaction_at = serializers.DateTimeField(required=False, allow_null=True)


PREDICT_REQUEST = PolymorphicProxySerializer(
    component_name="PredictRequest",
    serializers=[TransactionInput, TransactionInput(many=True)],
    resource_type_field_name=None,
    many=False,
)


class ModelScoreOutput(serializers.Serializer):
    model_version = serializers.IntegerField(help_text="the version number of the model used")
    score = serializers.FloatField(help_text="higher is more anomalous")
    threshold = serializers.FloatField()
    is_anomaly = serializers.BooleanField(help_text="score >= threshold")


class ModelScoresOutput(serializers.Serializer):
    isolation_forest = ModelScoreOutput(required=False)
    local_outlier_factor = ModelScoreOutput(required=False)


class ScoredTransactionOutput(serializers.Serializer):
    transaction_id = serializers.CharField()
    flagged = serializers.BooleanField(
        help_text="the configured rule over the requested models (default: all say anomaly)"
    )
    predictions = ModelScoresOutput()
    reasons = serializers.ListField(child=serializers.CharField())
    stored = serializers.BooleanField()


PERSIST_PARAMETER = OpenApiParameter(
    "persist",
    OpenApiTypes.BOOL,
    description="false scores without storing anything (default true)",
)
PREDICT_RESPONSES = {
    200: ScoredTransactionOutput(many=True),
    **error_responses(400, 401, 413, 415, 429, 503),
}


class PredictView(ApiView):
    @extend_schema(
        operation_id="predict",
        request=PREDICT_REQUEST,
        parameters=[
            OpenApiParameter(
                "models",
                str,
                many=True,
                explode=False,
                enum=Algorithm.values,
                description="score with these models only (comma-separated); default both",
            ),
            PERSIST_PARAMETER,
        ],
        responses=PREDICT_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return _predict(request, algorithms=_models_param(request), persist=_persist_param(request))


class ModelPredictView(ApiView):
    @extend_schema(
        operation_id="models_predict",
        request=PREDICT_REQUEST,
        parameters=[
            OpenApiParameter("algorithm", str, OpenApiParameter.PATH, enum=Algorithm.values),
            PERSIST_PARAMETER,
        ],
        responses={**PREDICT_RESPONSES, **error_responses(404)},
    )
    def post(self, request: Request, algorithm: str) -> Response:
        if algorithm not in Algorithm.values:
            raise NotFound(f"no model {algorithm[:40]!r}; use one of {', '.join(Algorithm.values)}")
        if "models" in request.query_params:
            raise InvalidInput([FieldError("models", "the path already names the model")])
        return _predict(request, algorithms=(algorithm,), persist=_persist_param(request))
