from __future__ import annotations

import math

import numpy as np
import pytest

from detection.evaluation import LabelsError, models_evaluate, read_labels, verdict_quality
from detection.models import Transaction

pytestmark = pytest.mark.django_db


def test_it_computes_precision_recall_and_false_positive_rate_by_hand():
    is_fraud = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    flagged = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    scenarios = np.array(["ato", "ato", "drain", "drain", "", "", "", "", "", ""], dtype=object)
    quality = verdict_quality(is_fraud, flagged, scenarios)
    assert quality.precision == pytest.approx(3 / 4)
    assert quality.recall == pytest.approx(3 / 4)
    assert quality.false_positive_rate == pytest.approx(1 / 6)
    assert quality.flagged == 4
    assert quality.recall_by_scenario == {"ato": 1.0, "drain": 0.5}


def test_it_reports_zero_precision_when_nothing_is_flagged():
    quality = verdict_quality(
        np.array([True, False]), np.array([False, False]), np.array(["x", ""])
    )
    assert (quality.precision, quality.recall, quality.false_positive_rate) == (0.0, 0.0, 0.0)


def write_labels(path, frauds, normals):
    lines = ["transaction_id,is_fraud,scenario"]
    lines += [f"{t},1,attack" for t in frauds] + [f"{t},0," for t in normals]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_it_measures_the_active_models_on_labelled_stored_transactions(trained, tmp_path):
    from detection.scoring import transactions_score
    from tests.detection.test_scoring import takeover

    transactions_score(
        items=[takeover(f"ATO{i}", timestamp=f"2024-04-2{i}T03:00:00Z") for i in range(3)]
    )
    normals = list(
        Transaction.objects.exclude(transaction_id__startswith="ATO").values_list(
            "transaction_id", flat=True
        )
    )
    labels = write_labels(tmp_path / "labels.csv", [f"ATO{i}" for i in range(3)], normals)
    report = models_evaluate(labels_path=labels)
    assert report.rows == len(normals) + 3
    assert report.frauds == 3
    assert report.scenarios == {"attack": 3}
    for quality in report.models.values():
        assert quality.roc_auc > 0.95
        assert 0 < quality.pr_auc <= 1
    assert report.rules["either"].recall >= report.rules["both"].recall
    assert report.rules["both"].recall_by_scenario["attack"] == report.rules["both"].recall


def test_it_evaluates_only_transactions_from_the_split_date(trained, tmp_path):
    from detection.dates import parse_when

    ids = list(Transaction.objects.values_list("transaction_id", flat=True))
    labels = write_labels(tmp_path / "labels.csv", [], ids)
    split = parse_when("2024-03-15")
    report = models_evaluate(labels_path=labels, split_date=split)
    assert report.rows == Transaction.objects.filter(timestamp__gte=split).count()
    # One class only: ranking metrics are undefined, not a crash.
    assert math.isnan(report.models["isolation_forest"].roc_auc)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,label\nTX1,1\n", "transaction_id and is_fraud"),
        ("transaction_id,is_fraud,scenario\nTX1,yes,\n", "line 2: is_fraud must be 0 or 1"),
    ],
)
def test_it_refuses_a_malformed_labels_file(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        read_labels(path)


def test_it_refuses_a_missing_labels_file(tmp_path):
    with pytest.raises(LabelsError, match="no such file"):
        read_labels(tmp_path / "nope.csv")
