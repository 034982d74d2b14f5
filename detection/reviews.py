"""Analyst reviews: the verdicts that label transactions."""

from __future__ import annotations

import structlog
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction as db_transaction

from detection import metrics
from detection.bootstrap import ANALYST_GROUP
from detection.models import Review, ReviewEvent, ReviewStatus, Transaction

log = structlog.get_logger("detection")

NOTE_MAX_LENGTH = 2000


class ReviewError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def user_can_review(user: AbstractBaseUser) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.groups.filter(name=ANALYST_GROUP).exists())


def review_set(
    *,
    transaction: Transaction,
    status: str,
    note: str = "",
    reviewer: AbstractBaseUser | None,
) -> Review:
    """Record an analyst's verdict; the previous one stays in the history."""
    if status not in ReviewStatus.values:
        raise ReviewError("status", f"{status!r} is not one of {', '.join(ReviewStatus.values)}")
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ReviewError("note", f"at most {NOTE_MAX_LENGTH} characters")
    with db_transaction.atomic():
        review, _ = Review.objects.select_for_update().get_or_create(transaction=transaction)
        review.status = status
        review.note = note
        review.reviewer = reviewer
        review.save()
        ReviewEvent.objects.create(review=review, status=status, note=note, reviewer=reviewer)
    metrics.record_review(status)
    log.info(
        "review.recorded",
        transaction_id=transaction.transaction_id,
        status=status,
        reviewer=getattr(reviewer, "username", None),
    )
    return review
