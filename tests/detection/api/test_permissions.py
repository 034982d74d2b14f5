"""Who may do what: anonymous, viewer, analyst, staff, on every operation."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.detection.api.factories import transaction_payload

pytestmark = pytest.mark.django_db

# (method, path, body) for every operation of the API.
OPERATIONS = {
    "health": ("get", "/api/health/", None),
    "ready": ("get", "/api/ready/", None),
    "models": ("get", "/api/models/", None),
    "model": ("get", "/api/models/{if_pk}/", None),
    "activate": ("post", "/api/models/{if_pk}/activate/", None),
    "predict": ("post", "/api/predict/?persist=false", "transaction"),
    "model_predict": ("post", "/api/models/isolation_forest/predict/?persist=false", "transaction"),
    "transactions": ("get", "/api/transactions/", None),
    "transaction": ("get", "/api/transactions/TXH000000/", None),
    "account": ("get", "/api/accounts/AC00000/transactions/", None),
    "review": ("patch", "/api/transactions/TXH000000/review/", {"status": "pending"}),
    "schema": ("get", "/api/schema/", None),
    "docs": ("get", "/api/docs/", None),
    "redoc": ("get", "/api/redoc/", None),
}

# Expected status per role; everything not listed answers 200.
EXPECTED = {
    "anonymous": {name: 401 for name in OPERATIONS} | {"health": 200, "ready": 200},
    "viewer": {"activate": 403, "review": 403},
    "analyst": {"activate": 403},
    "staff": {},
}


def _call(client: Client, operation: str, trained) -> int:
    method, path, body = OPERATIONS[operation]
    path = path.format(if_pk=trained.versions["isolation_forest"].pk)
    if body == "transaction":
        body = transaction_payload()
    if body is None:
        return getattr(client, method)(path).status_code
    return getattr(client, method)(path, body, content_type="application/json").status_code


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", EXPECTED)
def test_it_applies_the_permission_matrix(request, trained, role, operation):
    client = request.getfixturevalue(
        {
            "anonymous": "anon_client",
            "viewer": "user_client",
            "analyst": "analyst_client",
            "staff": "staff_client",
        }[role]
    )

    assert _call(client, operation, trained) == EXPECTED[role].get(operation, 200)


def test_it_refuses_an_invalid_token(trained):
    client = Client(headers={"Authorization": "Token not-a-real-token"})

    response = client.get("/api/transactions/")

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert response.headers["WWW-Authenticate"].startswith("Token")


def test_it_refuses_an_inactive_users_token(user_client, user, trained):
    user.is_active = False
    user.save()

    assert user_client.get("/api/transactions/").status_code == 401


def test_it_refuses_staff_rights_to_an_inactive_staff_token(staff_client, staff, trained):
    staff.is_active = False
    staff.save()

    response = staff_client.post(f"/api/models/{trained.versions['isolation_forest'].pk}/activate/")

    assert response.status_code == 401


def test_it_accepts_a_session_login(client, user, trained):
    client.force_login(user)

    assert client.get("/api/transactions/").status_code == 200


def test_it_requires_the_csrf_token_for_session_writes(analyst, trained):
    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)

    response = client.patch(
        "/api/transactions/TXH000000/review/", {"status": "pending"}, "application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
