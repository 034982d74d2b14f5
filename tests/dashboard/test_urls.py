"""Every page's URL resolves to its view and back."""

from __future__ import annotations

import pytest
from django.urls import resolve, reverse

from dashboard import views

PAGES = [
    ("dashboard:overview", {}, "/", views.overview),
    ("dashboard:models_list", {}, "/models/", views.models_list),
    ("dashboard:model_detail", {"model_version_id": 3}, "/models/3/", views.model_detail),
    (
        "dashboard:model_activate",
        {"model_version_id": 3},
        "/models/3/activate/",
        views.model_activate,
    ),
    ("dashboard:predict", {}, "/predict/", views.predict),
    ("dashboard:predict_upload", {}, "/predict/upload/", views.predict_upload),
    ("dashboard:transactions_list", {}, "/transactions/", views.transactions_list),
    (
        "dashboard:transaction_detail",
        {"transaction_id": "TX000001"},
        "/transactions/TX000001/",
        views.transaction_detail,
    ),
    (
        "dashboard:transaction_review",
        {"transaction_id": "TX000001"},
        "/transactions/TX000001/review/",
        views.transaction_review,
    ),
    (
        "dashboard:account_detail",
        {"account_id": "AC00128"},
        "/accounts/AC00128/",
        views.account_detail,
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "path", "view"), PAGES)
def test_it_reverses_and_resolves_each_page(name, kwargs, path, view):
    assert reverse(name, kwargs=kwargs) == path
    match = resolve(path)
    assert match.func is view
    assert match.kwargs == kwargs


def test_it_keeps_ids_with_dots_and_colons_in_one_path_segment():
    # The schema allows "." ":" "-" "_" in ids.
    path = reverse("dashboard:transaction_detail", args=["TX-1.a:b_c"])
    assert resolve(path).kwargs == {"transaction_id": "TX-1.a:b_c"}


def test_it_serves_login_and_logout_at_the_top_level():
    assert reverse("dashboard:login") == "/login/"
    assert reverse("dashboard:logout") == "/logout/"
