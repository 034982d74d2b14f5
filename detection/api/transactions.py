"""Stored transactions: the paginated listing, one account's listing, one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from detection.api.base import ApiListView, ApiView
from detection.api.errors import error_responses
from detection.api.pagination import TransactionPagination
from detection.api.serializers import TransactionDetailOutput, TransactionOutput
from detection.dates import parse_when
from detection.models import ReviewStatus, Transaction
from detection.selectors import (
    TransactionFilters,
    account_exists,
    transaction_get,
    transactions_list,
)

ORDERINGS = {"-timestamp": ("-timestamp", "-id"), "timestamp": ("timestamp", "id")}


@extend_schema_field(OpenApiTypes.DATETIME)
class WhenField(serializers.Field):
    """``YYYY-MM-DD`` or ISO 8601, read by the project's one date parser."""

    def to_internal_value(self, data: Any) -> datetime:
        try:
            return parse_when(str(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class AccountFiltersInput(serializers.Serializer):
    flagged = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="the default rule's verdict"
    )
    review_status = serializers.ChoiceField(
        choices=[*ReviewStatus.values, "unreviewed"], required=False
    )
    since = WhenField(required=False, help_text="at or after this time")
    until = WhenField(required=False, help_text="before this time")
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS), default="-timestamp", help_text="by time, newest first by default"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError({"until": "must be later than since"})
        return data


class TransactionFiltersInput(AccountFiltersInput):
    account_id = serializers.CharField(required=False, max_length=32)


def _filtered(request: Request, serializer_class: type[AccountFiltersInput], **fixed: Any) -> Any:
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    data = dict(params.validated_data)
    ordering = ORDERINGS[data.pop("ordering")]
    queryset = transactions_list(filters=TransactionFilters(**data, **fixed))
    return queryset.order_by(*ordering)


class _TransactionListBase(ApiListView):
    pagination_class = TransactionPagination
    serializer_class = TransactionOutput
    queryset = Transaction.objects.none()  # for the schema; rows come from the selector

    def page(self, queryset: QuerySet[Transaction]) -> Response:
        rows = self.paginate_queryset(queryset)
        return self.get_paginated_response(TransactionOutput(rows, many=True).data)


class TransactionListView(_TransactionListBase):
    @extend_schema(
        operation_id="transactions_list",
        parameters=[TransactionFiltersInput],
        responses={200: TransactionOutput(many=True), **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request) -> Response:
        return self.page(_filtered(request, TransactionFiltersInput))


class AccountTransactionListView(_TransactionListBase):
    @extend_schema(
        operation_id="accounts_transactions_list",
        parameters=[
            OpenApiParameter("account_id", str, OpenApiParameter.PATH),
            AccountFiltersInput,
        ],
        responses={200: TransactionOutput(many=True), **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, account_id: str) -> Response:
        if not account_exists(account_id=account_id):
            raise NotFound(f"no account {account_id[:40]!r}")
        return self.page(_filtered(request, AccountFiltersInput, account_id=account_id))


class TransactionDetailView(ApiView):
    @extend_schema(
        operation_id="transactions_retrieve",
        parameters=[OpenApiParameter("transaction_id", str, OpenApiParameter.PATH)],
        responses={200: TransactionDetailOutput, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, transaction_id: str) -> Response:
        transaction = transaction_get(transaction_id=transaction_id)
        if transaction is None:
            raise NotFound(f"no transaction {transaction_id[:40]!r}")
        return Response(TransactionDetailOutput(transaction).data)
