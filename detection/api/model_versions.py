"""Model versions: list, one, activate (staff)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from detection.api.base import ApiView
from detection.api.errors import Conflict, error_responses
from detection.api.permissions import IsStaff
from detection.models import ModelVersion
from detection.registry import ArtifactError, model_version_activate
from detection.selectors import model_versions_list


class ModelVersionOutput(serializers.ModelSerializer):
    params = serializers.DictField(help_text="the training parameters")
    features = serializers.ListField(
        child=serializers.CharField(), help_text="model input features"
    )
    metrics = serializers.DictField(help_text="training statistics: anomaly rate, score quantiles")

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "algorithm",
            "version",
            "is_active",
            "trained_at",
            "activated_at",
            "training_rows",
            "params",
            "features",
            "threshold",
            "metrics",
        )


class ModelVersionListView(ApiView):
    @extend_schema(
        operation_id="models_list",
        responses={200: ModelVersionOutput(many=True), **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(ModelVersionOutput(model_versions_list(), many=True).data)


class ModelVersionDetailView(ApiView):
    @extend_schema(
        operation_id="models_retrieve",
        responses={200: ModelVersionOutput, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ModelVersionOutput(get_object_or_404(ModelVersion, pk=pk)).data)


class ModelVersionActivateView(ApiView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="models_activate",
        request=None,
        responses={200: ModelVersionOutput, **error_responses(401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, pk: int) -> Response:
        model_version = get_object_or_404(ModelVersion, pk=pk)
        try:
            model_version = model_version_activate(model_version=model_version)
        except ArtifactError as exc:
            raise Conflict(
                f"{model_version} was not activated: its artifact fails verification: {exc.detail}",
                reason=exc.reason,
            ) from None
        return Response(ModelVersionOutput(model_version).data)
