"""Pages before anything is imported or trained: they explain, never fail."""

from __future__ import annotations

import pytest

from tests.dashboard.factories import form_data, takeover_data

pytestmark = pytest.mark.django_db


def test_it_shows_an_empty_overview_with_a_hint_to_train(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No transactions yet" in html
    assert "No active Isolation Forest or Local Outlier Factor version yet" in html
    assert "Nothing awaits review." in html


def test_it_shows_no_models_yet(client, user):
    client.force_login(user)
    html = client.get("/models/").content.decode()
    assert html.count("No version trained yet.") == 2


def test_it_shows_an_empty_transaction_list(client, user):
    client.force_login(user)
    html = client.get("/transactions/").content.decode()
    assert "No transactions match." in html


def test_it_explains_that_scoring_needs_trained_models(client, user):
    client.force_login(user)
    response = client.post("/predict/", form_data([takeover_data()]))
    assert response.status_code == 503
    assert "No active Isolation Forest version: train the models first" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    "path", ["/models/999/", "/transactions/NOPE/", "/accounts/NOPE/", "/models/999/activate/"]
)
def test_it_answers_404_for_what_does_not_exist(client, staff, path):
    client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
