from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import views
from dashboard.forms import SignInForm

app_name = "dashboard"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=SignInForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.overview, name="overview"),
    path("models/", views.models_list, name="models_list"),
    path("models/<int:model_version_id>/", views.model_detail, name="model_detail"),
    path("models/<int:model_version_id>/activate/", views.model_activate, name="model_activate"),
    path("predict/", views.predict, name="predict"),
    path("predict/upload/", views.predict_upload, name="predict_upload"),
    path("transactions/", views.transactions_list, name="transactions_list"),
    path(
        "transactions/<str:transaction_id>/",
        views.transaction_detail,
        name="transaction_detail",
    ),
    path(
        "transactions/<str:transaction_id>/review/",
        views.transaction_review,
        name="transaction_review",
    ),
    path("accounts/<str:account_id>/", views.account_detail, name="account_detail"),
]
