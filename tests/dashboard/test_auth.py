"""Sign-in and who may do what: anonymous visitors are sent to sign in,
viewers read, analysts review, staff activate models."""

from __future__ import annotations

import pytest
from django.urls import reverse

from detection.models import ModelVersion, Review

pytestmark = pytest.mark.django_db

READ_PAGES = [
    "/",
    "/models/",
    "/models/1/",
    "/predict/",
    "/transactions/",
    "/transactions/TX000001/",
    "/accounts/AC00001/",
]
POSTS = [
    "/predict/",
    "/predict/upload/",
    "/models/1/activate/",
    "/transactions/TX000001/review/",
]


@pytest.mark.parametrize("path", [*READ_PAGES, "/models/1/activate/"])
def test_it_sends_anonymous_visitors_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('dashboard:login')}?next={path}"


@pytest.mark.parametrize("path", POSTS)
def test_it_sends_anonymous_posts_to_sign_in_without_acting(client, path):
    response = client.post(path, {"status": "confirmed_fraud"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("dashboard:login"))
    assert not Review.objects.exists()


def test_it_shows_the_sign_in_form_with_labelled_fields(client):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'href="/static/css/dashboard.css"' in html
    # No navigation for someone not signed in.
    assert "Sign out" not in html


def test_it_signs_in_and_goes_where_it_was_asked(client, user):
    response = client.post(
        "/login/?next=/models/",
        {"username": "viewer", "password": "viewer-pass-123", "next": "/models/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/models/"


def test_it_signs_in_to_the_overview_by_default(client, user):
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"})
    assert response["Location"] == "/"


def test_it_refuses_a_wrong_password_with_a_message(client, user):
    response = client.post("/login/", {"username": "viewer", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_locks_sign_in_after_repeated_failures(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "viewer", "password": "wrong"})
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_signs_out_only_by_post(client, user):
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_it_offers_sign_out_as_a_form_with_csrf_protection(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert '<form class="signout" method="post" action="/logout/">' in html
    assert "csrfmiddlewaretoken" in html


def test_it_shows_the_admin_link_to_staff_only(client, user, staff):
    client.force_login(user)
    assert 'href="/admin/"' not in client.get("/").content.decode()
    client.force_login(staff)
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_it_forbids_viewers_and_analysts_to_activate_models(client, user, analyst):
    version = ModelVersion.objects.create(
        algorithm="isolation_forest",
        version=1,
        threshold=0.5,
        training_rows=100,
        artifact_path="x",
        sha256="0" * 64,
        format_version=1,
        sklearn_version="1",
    )
    for who in (user, analyst):
        client.force_login(who)
        assert client.get(f"/models/{version.pk}/activate/").status_code == 403
        response = client.post(f"/models/{version.pk}/activate/")
        assert response.status_code == 403
        assert "Only staff can activate a model version." in response.content.decode()
    version.refresh_from_db()
    assert not version.is_active


def test_it_forbids_viewers_to_review(client, user):
    client.force_login(user)
    response = client.post("/transactions/TX000001/review/", {"status": "confirmed_fraud"})
    assert response.status_code == 403
    assert "Only analysts and staff can review transactions." in response.content.decode()
