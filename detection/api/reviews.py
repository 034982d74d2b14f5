"""``PATCH /api/transactions/{transaction_id}/review/``: an analyst's verdict."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from detection.api.base import ApiView
from detection.api.errors import InvalidInput, error_responses
from detection.api.permissions import CanReview
from detection.api.serializers import ReviewOutput
from detection.models import ReviewStatus
from detection.reviews import NOTE_MAX_LENGTH, ReviewError, review_set
from detection.schema import FieldError
from detection.selectors import transaction_get


class ReviewInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=ReviewStatus.choices)
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH, default=""
    )


class ReviewView(ApiView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        operation_id="transactions_review",
        parameters=[OpenApiParameter("transaction_id", str, OpenApiParameter.PATH)],
        request=ReviewInput,
        responses={200: ReviewOutput, **error_responses(400, 401, 403, 404, 413, 415, 429)},
    )
    def patch(self, request: Request, transaction_id: str) -> Response:
        params = ReviewInput(data=request.data)
        params.is_valid(raise_exception=True)
        transaction = transaction_get(transaction_id=transaction_id)
        if transaction is None:
            raise NotFound(f"no transaction {transaction_id[:40]!r}")
        try:
            review = review_set(
                transaction=transaction,
                status=params.validated_data["status"],
                note=params.validated_data["note"],
                reviewer=request.user,
            )
        except ReviewError as exc:
            raise InvalidInput([FieldError(exc.field, exc.message)]) from None
        return Response(ReviewOutput(review).data)
