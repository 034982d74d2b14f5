from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from detection.reviews import user_can_review


class CanReview(BasePermission):
    message = "reviewing transactions needs the analyst group or staff status"

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_can_review(request.user)


class IsStaff(BasePermission):
    message = "activating a model version needs staff status"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_active and request.user.is_staff)
