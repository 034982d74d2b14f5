from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from detection.models import Transaction
from detection.scoring import transactions_score
from tests.detection.test_scoring import takeover

pytestmark = pytest.mark.django_db


def test_it_prints_and_writes_the_quality_report(trained, tmp_path):
    transactions_score(items=[takeover("ATO1"), takeover("ATO2", device_id="D888888")])
    labels = tmp_path / "labels.csv"
    rows = [
        "transaction_id,is_fraud,scenario",
        "ATO1,1,account_takeover",
        "ATO2,1,account_takeover",
    ]
    rows += [
        f"{t},0,"
        for t in Transaction.objects.exclude(transaction_id__startswith="ATO").values_list(
            "transaction_id", flat=True
        )
    ]
    labels.write_text("\n".join(rows) + "\n")
    report_file = tmp_path / "report.json"
    out = StringIO()
    call_command("evaluate_models", "--labels", str(labels), "--json", str(report_file), stdout=out)
    text = out.getvalue()
    assert "752 labelled transactions, 2 fraud" in text
    assert "isolation_forest v1: ROC-AUC" in text
    assert "flagged (both): precision" in text and "account_takeover" in text
    report = json.loads(report_file.read_text())
    assert report["frauds"] == 2
    assert set(report["rules"]) == {"both", "either"}


def test_it_refuses_a_missing_labels_file(trained, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("evaluate_models", "--labels", str(tmp_path / "missing.csv"))


def test_it_refuses_a_bad_split_date(trained, tmp_path):
    with pytest.raises(CommandError, match="not a date"):
        call_command("evaluate_models", "--labels", "x.csv", "--split-date", "soon")
