from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from detection.api.docs import RedocView
from detection.api.errors import UnknownPathView
from detection.api.health import HealthView, ReadyView
from detection.api.model_versions import (
    ModelVersionActivateView,
    ModelVersionDetailView,
    ModelVersionListView,
)
from detection.api.predict import ModelPredictView, PredictView
from detection.api.reviews import ReviewView
from detection.api.transactions import (
    AccountTransactionListView,
    TransactionDetailView,
    TransactionListView,
)

app_name = "api"
_USER = [IsAuthenticated]

urlpatterns = [
    path("health/", HealthView.as_view(), name="health"),
    path("ready/", ReadyView.as_view(), name="ready"),
    path("models/", ModelVersionListView.as_view(), name="models"),
    path("models/<int:pk>/", ModelVersionDetailView.as_view(), name="model"),
    path("models/<int:pk>/activate/", ModelVersionActivateView.as_view(), name="model-activate"),
    path("models/<str:algorithm>/predict/", ModelPredictView.as_view(), name="model-predict"),
    path("predict/", PredictView.as_view(), name="predict"),
    path("transactions/", TransactionListView.as_view(), name="transactions"),
    path("transactions/<str:transaction_id>/", TransactionDetailView.as_view(), name="transaction"),
    path(
        "transactions/<str:transaction_id>/review/",
        ReviewView.as_view(),
        name="transaction-review",
    ),
    path(
        "accounts/<str:account_id>/transactions/",
        AccountTransactionListView.as_view(),
        name="account-transactions",
    ),
    # Like every other operation but the probes, the schema and its viewers
    # need a user (a token, or a session from the dashboard's login page).
    path("schema/", SpectacularAPIView.as_view(permission_classes=_USER), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=_USER),
        name="docs",
    ),
    path(
        "redoc/",
        RedocView.as_view(url_name="api:schema", permission_classes=_USER),
        name="redoc",
    ),
    re_path(r"^", UnknownPathView.as_view()),
]
