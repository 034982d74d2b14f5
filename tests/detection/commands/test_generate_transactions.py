"""The generate_transactions command: options in, files and a summary out."""

from __future__ import annotations

import csv
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _run(*args: str) -> str:
    out = StringIO()
    call_command("generate_transactions", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_writes_transactions_and_labels_and_reports_what_it_wrote(tmp_path):
    out, labels = tmp_path / "tx.csv", tmp_path / "labels.csv"
    printed = _run(
        "--out", str(out), "--labels", str(labels), "--accounts", "25", "--months", "2",
        "--seed", "3", "--fraud-rate", "0.05", "--start", "2023-03-15",
    )  # fmt: skip
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with labels.open(newline="") as handle:
        fraud = [r for r in csv.DictReader(handle) if r["is_fraud"] == "1"]
    assert f"wrote {len(rows)} transactions of 25 accounts" in printed
    assert f"{len(fraud)} fraud" in printed
    assert "from 2023-03-15 to 2023-05-15" in printed
    assert rows[0]["TransactionDate"].startswith("2023-03-")
    assert rows[-1]["TransactionDate"] < "2023-05-15"
    assert {r["AccountID"] for r in rows} <= {f"AC{i:05d}" for i in range(1, 26)}
    assert 0.03 < len(fraud) / len(rows) < 0.07


def test_it_puts_the_labels_next_to_the_output_by_default(tmp_path):
    printed = _run("--out", str(tmp_path / "june.csv"), "--accounts", "5", "--months", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["june.csv", "june_labels.csv"]
    assert str(tmp_path / "june_labels.csv") in printed


def test_it_writes_the_same_files_for_the_same_seed(tmp_path):
    for name in ("a", "b"):
        _run("--out", str(tmp_path / f"{name}.csv"), "--accounts", "10", "--seed", "9")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a_labels.csv").read_bytes() == (tmp_path / "b_labels.csv").read_bytes()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--accounts", "-5"], "--accounts must be at least 1, not -5"),
        (["--accounts", "0"], "--accounts must be at least 1"),
        (["--months", "-1"], "--months must be at least 1, not -1"),
        (["--fraud-rate", "0.51"], "--fraud-rate must be between 0 and 0.5, not 0.51"),
        (["--fraud-rate", "-0.1"], "--fraud-rate must be between 0 and 0.5"),
        (["--fraud-rate", "nan"], "--fraud-rate must be between 0 and 0.5, not nan"),
        (["--seed", "-2"], "--seed must be zero or positive"),
        (["--start", "2024-02-30"], "--start must be a date as YYYY-MM-DD, not '2024-02-30'"),
        (["--start", "yesterday"], "--start must be a date as YYYY-MM-DD"),
        (["--accounts", "many"], "invalid int value: 'many'"),
    ],
)
def test_it_refuses_bad_options_with_a_clear_message(tmp_path, options, message):
    with pytest.raises(CommandError) as error:
        _run("--out", str(tmp_path / "tx.csv"), *options)
    assert message in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_paths_it_cannot_write(tmp_path):
    with pytest.raises(CommandError, match="no such directory"):
        _run("--out", str(tmp_path / "missing" / "tx.csv"))
    with pytest.raises(CommandError, match="is a directory"):
        _run("--out", str(tmp_path))
    with pytest.raises(CommandError, match="both be written"):
        _run("--out", str(tmp_path / "tx.csv"), "--labels", str(tmp_path / "tx.csv"))
    with pytest.raises(CommandError, match="--out"):
        _run("--accounts", "3")
    assert list(tmp_path.iterdir()) == []
