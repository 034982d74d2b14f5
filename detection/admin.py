"""The Django admin over the detection store.

Transactions, model versions and predictions are records of what happened:
they are shown, filtered and searched here but not edited (scores come from
the detectors, transactions from the validated ways in). Reviews are the one
thing an admin user changes, and every change goes through
``detection.reviews.review_set``, so who decided and when is recorded and the
earlier verdicts stay in the history. Activation goes through
``model_version_activate``, which verifies the artifact first.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from detection.models import (
    ModelVersion,
    Prediction,
    Review,
    ReviewEvent,
    ReviewStatus,
    Transaction,
)
from detection.registry import ArtifactError, model_version_activate
from detection.reviews import ReviewError, review_set, user_can_review

admin.site.site_header = "Transaction anomalies admin"
admin.site.site_title = "Transaction anomalies"
admin.site.index_title = "Transactions, reviews and models"

BULK_NOTE = "Set for several transactions at once in the admin."


def _is_staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class StaffReadableAdmin(admin.ModelAdmin):
    """Every staff member may look at the detection data; nobody deletes it
    (predictions are protected, reviews are history) and nothing is added by
    hand (transactions arrive validated through the API, pages or import)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return user_can_review(request.user)


# --- filters ---------------------------------------------------------------


class ReviewStatusFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("none", "Not reviewed"), *ReviewStatus.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "none":
            return queryset.filter(review__isnull=True)
        if value in ReviewStatus.values:
            return queryset.filter(review__status=value)
        return queryset


class AnomalousByFilter(admin.SimpleListFilter):
    """Transactions a given model version called anomalous."""

    title = "called anomalous by"
    parameter_name = "anomalous_by"
    path = ""  # from the listed model to Transaction

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (str(mv.pk), f"{mv.get_algorithm_display()} v{mv.version}")
            for mv in ModelVersion.objects.order_by("algorithm", "-version")
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        try:
            model_version_id = int(self.value())
        except ValueError:
            return queryset.none()
        # One filter() call: both conditions apply to the same prediction row.
        return queryset.filter(
            **{
                f"{self.path}predictions__model_version_id": model_version_id,
                f"{self.path}predictions__is_anomaly": True,
            }
        )


class ReviewAnomalousByFilter(AnomalousByFilter):
    path = "transaction__"


# --- review actions, shared by the transaction and review lists -----------


def _review_all(
    request: HttpRequest, transactions: list[Transaction], status: str, model_admin: Any
) -> None:
    try:
        for transaction in transactions:
            review_set(
                transaction=transaction, status=status, note=BULK_NOTE, reviewer=request.user
            )
    except ReviewError as exc:
        model_admin.message_user(request, f"Not saved: {exc}", messages.ERROR)
        return
    label = ReviewStatus(status).label.lower()
    count = len(transactions)
    model_admin.message_user(
        request,
        f"{count} transaction{'s' if count != 1 else ''} marked {label}.",
        messages.SUCCESS,
    )


def _review_action(status: str, description: str) -> Any:
    @admin.action(description=description, permissions=["review"])
    def action(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.model is Review:
            transactions = [review.transaction for review in queryset.select_related("transaction")]
        else:
            transactions = list(queryset)
        _review_all(request, transactions, status, model_admin)

    action.__name__ = f"mark_{status}"
    return action


REVIEW_ACTIONS = [
    _review_action(ReviewStatus.CONFIRMED_FRAUD, "Mark selected as confirmed fraud"),
    _review_action(ReviewStatus.FALSE_POSITIVE, "Mark selected as false positive"),
    _review_action(ReviewStatus.PENDING, "Mark selected as pending review"),
]


# --- transactions ----------------------------------------------------------


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    can_delete = False
    fields = ("model_version", "score", "threshold", "is_anomaly", "reasons", "scored_at")
    readonly_fields = fields
    ordering = ("model_version__algorithm", "-model_version__version")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_staff(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("model_version")


class ReviewInline(admin.StackedInline):
    model = Review
    extra = 0
    can_delete = False
    fields = ("status", "note", "reviewer", "updated_at", "history")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_staff(request)

    @admin.display(description="history")
    def history(self, review: Review) -> str:
        url = reverse("admin:detection_review_change", args=[review.pk])
        return format_html('<a href="{}">Change the review and see its history</a>', url)


@admin.register(Transaction)
class TransactionAdmin(StaffReadableAdmin):
    list_display = (
        "transaction_id",
        "account_id",
        "amount",
        "timestamp",
        "channel",
        "location",
        "flagged",
        "review_status",
    )
    list_filter = (
        "flagged",
        ReviewStatusFilter,
        AnomalousByFilter,
        "channel",
        "transaction_type",
    )
    search_fields = ("=transaction_id", "=account_id", "=device_id", "=merchant_id")
    search_help_text = "An exact transaction, account, device or merchant id."
    list_select_related = ("review",)
    date_hierarchy = "timestamp"
    show_full_result_count = False
    actions = REVIEW_ACTIONS
    inlines = (ReviewInline, PredictionInline)
    readonly_fields = [field.name for field in Transaction._meta.fields]

    @admin.display(description="review", ordering="review__status")
    def review_status(self, transaction: Transaction) -> str:
        try:
            return transaction.review.get_status_display()
        except Review.DoesNotExist:
            return "—"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# --- reviews ----------------------------------------------------------------


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    verbose_name = "change"
    verbose_name_plural = "history (newest first)"
    extra = 0
    can_delete = False
    fields = ("created_at", "status", "reviewer", "note")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_staff(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("reviewer")


@admin.register(Review)
class ReviewAdmin(StaffReadableAdmin):
    list_display = (
        "transaction_link",
        "status",
        "reviewer",
        "updated_at",
        "transaction_flagged",
        "account",
    )
    list_filter = ("status", "transaction__flagged", ReviewAnomalousByFilter, "reviewer")
    search_fields = ("=transaction__transaction_id", "=transaction__account_id")
    search_help_text = "An exact transaction or account id."
    list_select_related = ("transaction", "reviewer")
    autocomplete_fields = ("transaction",)
    actions = REVIEW_ACTIONS
    inlines = (ReviewEventInline,)
    date_hierarchy = "updated_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return user_can_review(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_can_review(request.user)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("transaction", "status", "note")
        return ("transaction", "status", "note", "reviewer", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("transaction", "reviewer", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Review, form: Any, change: bool) -> None:
        # Through the service, so the reviewer is whoever saved and the change
        # is kept as a history event, as on the pages and in the API.
        review = review_set(
            transaction=obj.transaction,
            status=form.cleaned_data["status"],
            note=form.cleaned_data.get("note", ""),
            reviewer=request.user,
        )
        obj.pk = review.pk
        obj.reviewer = review.reviewer
        obj.created_at = review.created_at
        obj.updated_at = review.updated_at
        obj._state.adding = False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="transaction", ordering="transaction__transaction_id")
    def transaction_link(self, review: Review) -> str:
        url = reverse("admin:detection_transaction_change", args=[review.transaction_id])
        return format_html('<a href="{}">{}</a>', url, review.transaction.transaction_id)

    @admin.display(description="flagged", boolean=True, ordering="transaction__flagged")
    def transaction_flagged(self, review: Review) -> bool | None:
        return review.transaction.flagged

    @admin.display(description="account", ordering="transaction__account_id")
    def account(self, review: Review) -> str:
        return review.transaction.account_id


@admin.register(ReviewEvent)
class ReviewEventAdmin(StaffReadableAdmin):
    list_display = ("created_at", "transaction", "status", "reviewer", "note")
    list_filter = ("status", "reviewer")
    search_fields = ("=review__transaction__transaction_id",)
    search_help_text = "An exact transaction id."
    list_select_related = ("review__transaction", "reviewer")
    date_hierarchy = "created_at"
    readonly_fields = ("review", "status", "reviewer", "note", "created_at")

    @admin.display(description="transaction", ordering="review__transaction__transaction_id")
    def transaction(self, event: ReviewEvent) -> str:
        return event.review.transaction.transaction_id


# --- models -----------------------------------------------------------------


@admin.register(ModelVersion)
class ModelVersionAdmin(StaffReadableAdmin):
    list_display = (
        "algorithm",
        "version",
        "is_active",
        "threshold",
        "training_rows",
        "trained_at",
        "activated_at",
    )
    list_filter = ("algorithm", "is_active")
    search_fields = ("algorithm", "=sha256")
    search_help_text = "An algorithm name or an artifact checksum."
    ordering = ("algorithm", "-version")
    actions = ("activate",)
    readonly_fields = [field.name for field in ModelVersion._meta.fields]

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request)

    @admin.action(
        description="Activate selected version (one per algorithm)", permissions=["activate"]
    )
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        chosen = list(queryset)
        algorithms = [mv.algorithm for mv in chosen]
        if len(set(algorithms)) != len(algorithms):
            self.message_user(
                request, "Choose at most one version of each algorithm.", messages.ERROR
            )
            return
        for model_version in chosen:
            label = f"{model_version.get_algorithm_display()} v{model_version.version}"
            try:
                model_version_activate(model_version=model_version)
            except ArtifactError as exc:
                self.message_user(
                    request, f"{label} was not activated: {exc.detail}.", messages.ERROR
                )
            else:
                self.message_user(request, f"{label} is now active.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Prediction)
class PredictionAdmin(StaffReadableAdmin):
    list_display = ("transaction", "model_version", "score", "threshold", "is_anomaly", "scored_at")
    list_filter = ("is_anomaly", "model_version__algorithm", "model_version")
    search_fields = ("=transaction__transaction_id", "=transaction__account_id")
    search_help_text = "An exact transaction or account id."
    list_select_related = ("transaction", "model_version")
    show_full_result_count = False
    readonly_fields = [field.name for field in Prediction._meta.fields]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
