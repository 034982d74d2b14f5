from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from detection.models import ModelVersion, Prediction, Transaction

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("train_models", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_trains_activates_and_scores_the_stored_transactions(history):
    output = run()
    assert "isolation_forest v1 (active): 750 rows" in output
    assert "local_outlier_factor v1 (active)" in output
    assert "threshold" in output and "anomaly rate" in output
    assert "scored 750 stored transactions" in output
    assert Prediction.objects.count() == 1500
    assert not Transaction.objects.filter(flagged__isnull=True).exists()


def test_it_trains_one_algorithm_without_activating(history):
    output = run("--algorithm", "local_outlier_factor", "--no-activate", "--contamination", "0.1")
    assert "local_outlier_factor v1:" in output
    mv = ModelVersion.objects.get()
    assert not mv.is_active
    assert mv.params["contamination"] == 0.1
    assert not Prediction.objects.exists()


def test_it_trains_on_a_date_window(history):
    run("--since", "2024-03-10", "--until", "2024-03-20", "--no-score")
    mv = ModelVersion.objects.get(algorithm="isolation_forest")
    expected = Transaction.objects.filter(
        timestamp__gte="2024-03-10T00:00:00Z", timestamp__lt="2024-03-20T00:00:00Z"
    ).count()
    assert mv.training_rows == expected
    assert mv.training_since.isoformat() == "2024-03-10T00:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--contamination", "0.9"], "--contamination must be in"),
        (["--since", "yesterday"], "not a date"),
        (["--since", "2024-03-20", "--until", "2024-03-10"], "--since must be before --until"),
    ],
)
def test_it_refuses_bad_options(history, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ModelVersion.objects.exists()


def test_it_explains_that_there_is_too_little_data(db):
    with pytest.raises(CommandError, match="at least 50"):
        run()
