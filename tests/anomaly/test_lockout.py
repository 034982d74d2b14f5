"""Brute-force protection on sign-in (django-axes): after AXES_FAILURE_LIMIT
wrong passwords for one username from one address, that pair is locked out
for AXES_COOLOFF_TIME, on the analysts' sign-in page and the admin's alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
ADMIN_LOGIN = "/admin/login/"
LOCKED = "Too many failed sign-in attempts"


def sign_in(client, username, password, *, path=LOGIN, **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def fail(client, username, times, *, path=LOGIN, **extra):
    return [sign_in(client, username, "wrong-password", path=path, **extra) for _ in range(times)]


def is_locked_out(response) -> bool:
    return response.status_code == settings.AXES_HTTP_RESPONSE_CODE and LOCKED in (
        response.content.decode()
    )


def test_it_answers_wrong_passwords_with_the_form_until_the_limit(client, user):
    responses = fail(client, "viewer", settings.AXES_FAILURE_LIMIT - 1)

    assert [r.status_code for r in responses] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert not any(is_locked_out(r) for r in responses)


def test_it_locks_out_the_sign_in_page_at_the_failure_limit(client, user):
    *_, last = fail(client, "viewer", settings.AXES_FAILURE_LIMIT)

    assert is_locked_out(last)
    assert last.status_code == 429


def test_it_refuses_even_the_right_password_while_locked_out(client, user):
    fail(client, "viewer", settings.AXES_FAILURE_LIMIT)

    response = sign_in(client, "viewer", "viewer-pass-123")

    assert is_locked_out(response)
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert client.get("/").status_code == 302, "nobody is signed in"


def test_it_locks_out_the_admin_sign_in_too(client, staff):
    fail(client, "staff", settings.AXES_FAILURE_LIMIT, path=ADMIN_LOGIN)

    response = sign_in(client, "staff", "staff-pass-123", path=ADMIN_LOGIN)

    assert is_locked_out(response)
    assert client.get("/admin/").status_code == 302


def test_it_counts_failures_on_both_sign_in_pages_together(client, staff):
    half = settings.AXES_FAILURE_LIMIT // 2
    fail(client, "staff", half, path=ADMIN_LOGIN)
    fail(client, "staff", settings.AXES_FAILURE_LIMIT - half - 1, path=LOGIN)

    response = sign_in(client, "staff", "wrong-password", path=ADMIN_LOGIN)

    assert is_locked_out(response)


def test_it_locks_the_username_and_address_pair_only(client, user, analyst):
    fail(client, "viewer", settings.AXES_FAILURE_LIMIT)

    # Another user from the same address, and the same user from elsewhere.
    other_user = sign_in(client, "analyst", "analyst-pass-123")
    client.logout()
    other_address = sign_in(client, "viewer", "viewer-pass-123", REMOTE_ADDR="203.0.113.7")

    assert other_user.status_code == 302
    assert other_address.status_code == 302


def test_it_tells_clients_apart_behind_the_trusted_proxy(client, user, settings):
    # In production Traefik is the one trusted proxy (TRUSTED_PROXY_COUNT=1):
    # every request comes from its address, the client's is in X-Forwarded-For.
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    attacker = {"REMOTE_ADDR": "172.18.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.66"}
    owner = {"REMOTE_ADDR": "172.18.0.2", "HTTP_X_FORWARDED_FOR": "192.0.2.10"}
    fail(client, "viewer", settings.AXES_FAILURE_LIMIT, **attacker)

    assert is_locked_out(sign_in(client, "viewer", "viewer-pass-123", **attacker))
    assert sign_in(client, "viewer", "viewer-pass-123", **owner).status_code == 302


def test_it_lets_the_user_in_again_after_the_cool_off(client, user):
    fail(client, "viewer", settings.AXES_FAILURE_LIMIT)
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    # The failures happened one cool-off period (and a second) ago.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - cool_off - timedelta(seconds=1))

    response = sign_in(client, "viewer", "viewer-pass-123")

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_it_stays_locked_just_before_the_cool_off_ends(client, user):
    fail(client, "viewer", settings.AXES_FAILURE_LIMIT)
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - cool_off + timedelta(seconds=30))

    assert is_locked_out(sign_in(client, "viewer", "viewer-pass-123"))


def test_it_forgets_earlier_failures_after_a_successful_sign_in(client, user):
    below_limit = settings.AXES_FAILURE_LIMIT - 1
    fail(client, "viewer", below_limit)
    assert sign_in(client, "viewer", "viewer-pass-123").status_code == 302
    client.logout()

    responses = fail(client, "viewer", below_limit)

    assert not any(is_locked_out(r) for r in responses)
    assert sign_in(client, "viewer", "viewer-pass-123").status_code == 302


def test_it_unlocks_when_an_administrator_resets_the_attempts(client, user):
    from axes.utils import reset

    fail(client, "viewer", settings.AXES_FAILURE_LIMIT)

    reset(username="viewer")

    assert sign_in(client, "viewer", "viewer-pass-123").status_code == 302
