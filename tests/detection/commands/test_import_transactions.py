"""manage.py import_transactions: a summary on success, a clear error and a
non-zero exit (CommandError) with nothing stored on a file it cannot import."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from detection.models import Transaction

pytestmark = pytest.mark.django_db

HEADER = (
    "TransactionID,AccountID,TransactionAmount,TransactionDate,TransactionType,Location,"
    "DeviceID,IP Address,MerchantID,Channel,CustomerAge,CustomerOccupation,"
    "TransactionDuration,LoginAttempts,AccountBalance,PreviousTransactionDate"
)
ROW = (
    "{id},AC00128,14.09,2023-04-11 16:29:14,Debit,San Diego,D000380,162.198.218.92,M015,"
    "ATM,70,Doctor,81,1,5112.21,2024-11-04 08:08:08"
)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_transactions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_it_imports_the_public_data_set_and_prints_a_summary(public_data):
    out, err = run(str(public_data))

    assert out.strip() == "read 2512, stored 2512, already present 0, rejected 0"
    assert err == ""
    assert Transaction.objects.count() == 2512


def test_it_reports_rows_already_present_on_a_second_run(public_data):
    run(str(public_data))

    out, _ = run(str(public_data), "--chunk-size", "1000")

    assert out.strip() == "read 2512, stored 0, already present 2512, rejected 0"
    assert Transaction.objects.count() == 2512


def test_it_prints_each_rejected_row_with_line_field_and_reason(tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        HEADER,
        ROW.format(id="TX1"),
        ROW.format(id="TX2").replace(",70,", ",7,"),
        ROW.format(id="TX3"),
        ROW.format(id="TX4").replace("Debit", "Refund").replace("14.09", "NaN"),
        ROW.format(id="TX1"),
        ROW.format(id="TX5")[:40],
    )

    out, err = run(str(path))

    assert out.strip() == "read 6, stored 2, already present 0, rejected 4"
    assert err.splitlines() == [
        "line 3: customer_age: input should be greater than or equal to 18",
        "line 5: amount: input should be a finite number",
        "line 5: transaction_type: 'Refund' is not one of 'Credit' or 'Debit'",
        "line 6: transaction_id: duplicate of line 2 in this file",
        "line 7: __all__: expected 16 fields, found 5",
    ]
    assert set(Transaction.objects.values_list("transaction_id", flat=True)) == {"TX1", "TX3"}


def test_it_accepts_unsorted_rows_repeated_times_and_one_off_accounts(tmp_path):
    path = write(
        tmp_path / "odd.csv",
        HEADER,
        ROW.format(id="TX2").replace("2023-04-11", "2023-06-01"),
        ROW.format(id="TX1"),
        ROW.format(id="TX3"),
        ROW.format(id="TX4").replace("AC00128", "AC99999"),
    )

    out, err = run(str(path))

    assert out.strip() == "read 4, stored 4, already present 0, rejected 0"
    assert err == ""


def _latin1(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        "\n".join(
            [HEADER, ROW.format(id="TX1"), ROW.format(id="TX2").replace("Diego", "Jos\xe9")]
        ).encode("latin-1")
    )
    return path


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def _missing_column(tmp_path: Path) -> Path:
    header = HEADER.replace(",LoginAttempts", "")
    row = ROW.format(id="TX1").replace(",81,1,", ",81,")
    return write(tmp_path / "missing.csv", header, row)


def _extra_column(tmp_path: Path) -> Path:
    return write(tmp_path / "extra.csv", HEADER + ",Fraud", ROW.format(id="TX1") + ",0")


def _open_quote(tmp_path: Path) -> Path:
    rows = [ROW.format(id=f"TX{n}") for n in range(5)]
    return write(tmp_path / "quote.csv", HEADER, *rows, 'TX9,"AC1', *rows[:2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp_path: tmp_path / "absent.csv", r"absent\.csv: no such file"),
        (lambda tmp_path: tmp_path, r": not a regular file"),
        (_empty, r"empty\.csv: the file is empty"),
        (_latin1, r"latin1\.csv: not UTF-8 text \(invalid byte at offset \d+\)"),
        (_binary, r"export\.xlsx: binary data, not a CSV text file"),
        (_missing_column, r"missing\.csv: missing column\(s\): login_attempts"),
        (_extra_column, r"extra\.csv: unexpected column\(s\): Fraud"),
        (_open_quote, r"quote\.csv: line 7: unexpected end of data"),
    ],
    ids=[
        "missing-file",
        "directory",
        "empty",
        "latin-1",
        "binary",
        "missing-column",
        "extra-column",
        "unclosed-quote",
    ],
)
def test_it_fails_with_a_clear_error_and_stores_nothing(tmp_path, make, message):
    path = make(tmp_path)

    with pytest.raises(CommandError, match=message):
        run(str(path), "--chunk-size", "1")

    assert not Transaction.objects.exists()


def test_it_exits_non_zero_from_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "import_transactions", str(tmp_path / "no.csv")])

    assert excinfo.value.code != 0
    err = capsys.readouterr().err
    assert "no.csv: no such file" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "-5"])
def test_it_refuses_a_chunk_size_below_one(tmp_path, value):
    path = write(tmp_path / "ok.csv", HEADER, ROW.format(id="TX1"))

    with pytest.raises(CommandError, match="--chunk-size must be at least 1"):
        run(str(path), "--chunk-size", value)

    assert not Transaction.objects.exists()


@pytest.mark.parametrize("value", ["many", "1.5", ""])
def test_it_refuses_a_chunk_size_that_is_not_a_number(tmp_path, value):
    path = write(tmp_path / "ok.csv", HEADER, ROW.format(id="TX1"))

    with pytest.raises(CommandError, match="--chunk-size: invalid int value"):
        run(str(path), "--chunk-size", value)


def test_it_requires_a_path():
    with pytest.raises(CommandError, match="the following arguments are required: path"):
        run()


def test_it_completes_an_interrupted_import_without_duplicates(public_data, tmp_path):
    # A run stopped after its first chunk left that chunk committed.
    with public_data.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    first_chunk = tmp_path / "first_chunk.csv"
    with first_chunk.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(lines[:801])
    run(str(first_chunk), "--chunk-size", "800")

    out, _ = run(str(public_data), "--chunk-size", "800")

    assert out.strip() == "read 2512, stored 1712, already present 800, rejected 0"
    assert Transaction.objects.count() == 2512
    assert Transaction.objects.values("transaction_id").distinct().count() == 2512
