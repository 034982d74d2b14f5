"""The models pages: versions per algorithm, their metrics and review
precision, and activation or rollback by staff after a confirmation step."""

from __future__ import annotations

import pytest

from detection.models import ModelVersion, Prediction, Transaction
from detection.reviews import review_set
from detection.training import models_train
from tests.dashboard.factories import form_data, takeover_data, tampered_copy

pytestmark = pytest.mark.django_db


def test_it_lists_the_versions_of_each_algorithm_with_the_active_one_marked(client, user, scored):
    client.force_login(user)
    response = client.get("/models/")
    groups = response.context["groups"]
    assert [group["algorithm"] for group in groups] == ["Isolation Forest", "Local Outlier Factor"]
    for group, algorithm in zip(groups, ["isolation_forest", "local_outlier_factor"], strict=True):
        [(version, _quality)] = group["versions"]
        assert version == scored.models[algorithm]
    html = response.content.decode()
    assert html.count('<span class="badge badge-active">Active</span>') == 2
    assert f'href="/models/{scored.models["isolation_forest"].pk}/"' in html
    rate = scored.models["isolation_forest"].metrics["training_anomaly_rate"]
    assert f'<td class="num">{rate:.1%}</td>' in html


def test_it_shows_a_versions_parameters_features_threshold_and_histogram(client, user, scored):
    version = scored.models["isolation_forest"]
    client.force_login(user)
    response = client.get(f"/models/{version.pk}/")
    html = response.content.decode()
    assert f"<h1>Isolation Forest v{version.version} " in html
    assert f"{version.threshold:.3f}" in html
    assert "<dt>N estimators</dt><dd><code>60</code></dd>" in html
    for feature in version.features:
        assert f"<code>{feature}</code>" in html
    assert '<svg class="chart chart-bars' in html
    assert "threshold " in html
    assert "<dt>95%</dt>" in html  # score quantiles
    assert response.context["predictions"].scored == Transaction.objects.count()


def test_it_measures_precision_against_analysts_reviews(client, user, analyst, scored):
    version = scored.models["isolation_forest"]
    called = list(
        Transaction.objects.filter(
            predictions__model_version=version, predictions__is_anomaly=True
        )[:3]
    )
    missed = Transaction.objects.filter(
        predictions__model_version=version, predictions__is_anomaly=False
    ).first()
    review_set(transaction=called[0], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=called[1], status="confirmed_fraud", reviewer=analyst)
    review_set(transaction=called[2], status="false_positive", reviewer=analyst)
    review_set(transaction=missed, status="confirmed_fraud", reviewer=analyst)
    client.force_login(user)
    quality = client.get(f"/models/{version.pk}/").context["quality"]
    assert (quality.confirmed_fraud, quality.false_positive, quality.missed) == (2, 1, 1)
    assert quality.precision == pytest.approx(2 / 3)
    assert quality.recall == pytest.approx(2 / 3)
    listed = dict(client.get("/models/").context["groups"][0]["versions"])
    assert listed[version].precision == pytest.approx(2 / 3)


def test_it_offers_activation_to_staff_only(older, client, user, staff, scored):
    client.force_login(user)
    assert "Roll back to this version" not in client.get(f"/models/{older.pk}/").content.decode()
    client.force_login(staff)
    html = client.get(f"/models/{older.pk}/").content.decode()
    assert f'href="/models/{older.pk}/activate/">Roll back to this version</a>' in html


def test_it_asks_for_confirmation_before_activating(older, client, staff, scored):
    client.force_login(staff)
    response = client.get(f"/models/{older.pk}/activate/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Roll back Isolation Forest v1?" in html
    assert "Yes, roll back to v1" in html
    assert "instead of <strong>v2</strong>" in html
    older.refresh_from_db()
    assert not older.is_active


def test_it_rolls_back_to_an_older_version(older, client, staff, scored):
    client.force_login(staff)
    response = client.post(f"/models/{older.pk}/activate/", follow=True)
    assert response.redirect_chain == [(f"/models/{older.pk}/", 302)]
    assert "Isolation Forest v1 is now the active version (was v2)." in response.content.decode()
    active = ModelVersion.objects.get(algorithm="isolation_forest", is_active=True)
    assert active == older


def test_it_scores_with_the_version_activated_from_the_page(older, client, staff, scored):
    client.force_login(staff)
    client.post(f"/models/{older.pk}/activate/")
    client.post("/predict/", form_data([takeover_data(transaction_id="AFTERROLLBACK")]))
    versions = set(
        Prediction.objects.filter(transaction__transaction_id="AFTERROLLBACK").values_list(
            "model_version_id", flat=True
        )
    )
    assert older.pk in versions


def test_it_refuses_to_activate_a_version_whose_artifact_fails_verification(client, staff, scored):
    good = scored.models["local_outlier_factor"]
    tampered = tampered_copy(good)
    client.force_login(staff)
    response = client.post(f"/models/{tampered.pk}/activate/", follow=True)
    html = response.content.decode()
    assert "Local Outlier Factor v2 was not activated: its artifact" in html
    assert "checksum does not match" in html
    good.refresh_from_db()
    assert good.is_active


def test_it_says_when_a_version_is_already_active(client, staff, scored):
    version = scored.models["isolation_forest"]
    client.force_login(staff)
    assert (
        "This version is already active."
        in client.get(f"/models/{version.pk}/activate/").content.decode()
    )
    response = client.post(f"/models/{version.pk}/activate/", follow=True)
    assert "Isolation Forest v1 is already the active version." in response.content.decode()


def test_it_reads_a_bounded_number_of_queries(client, user, scored, django_assert_max_num_queries):
    client.force_login(user)
    with django_assert_max_num_queries(6):
        assert client.get("/models/").status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(f"/models/{scored.models['isolation_forest'].pk}/").status_code == 200


@pytest.fixture
def older(scored, settings) -> ModelVersion:
    """The module's Isolation Forest, made older by training a second one."""
    settings.ML_IF_N_ESTIMATORS = 60
    models_train(algorithms=["isolation_forest"])
    version = scored.models["isolation_forest"]
    version.refresh_from_db()
    return version
