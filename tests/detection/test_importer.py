"""CSV import: the whole file checked first, every bad row reported, reruns safe."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from detection.importer import ImportFileError, RejectedRow, import_transactions_csv
from detection.models import Transaction
from detection.schema import FIELDS
from tests.factories import CSV_HEADER, csv_row, csv_write, transaction_data

pytestmark = pytest.mark.django_db

# The values the tests below look for, and the optional previous date, given.
ROW = csv_row(
    transaction_data(
        amount="14.09",
        ip_address="162.198.218.92",
        previous_transaction_at="2024-11-04 08:08:08",
    )
)


def _row(transaction_id: str, **changes: str) -> list[str]:
    values = dict(zip(CSV_HEADER, ROW, strict=True))
    values["TransactionID"] = transaction_id
    values.update(changes)
    return [values[name] for name in CSV_HEADER]


def _write(path: Path, rows: list[list[str]], header: list[str] = CSV_HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv_write(handle, rows, header)
    return path


def _good_rows(count: int, prefix: str = "TX") -> list[list[str]]:
    return [_row(f"{prefix}{n:06d}") for n in range(1, count + 1)]


# --- the public data set -----------------------------------------------------


def test_it_imports_the_public_data_set_completely(public_data):
    summary = import_transactions_csv(path=public_data)

    assert (summary.read, summary.stored, summary.already_present) == (2512, 2512, 0)
    assert summary.rejected == []
    assert Transaction.objects.count() == 2512


def test_it_stores_the_public_rows_exactly(public_data):
    import_transactions_csv(path=public_data)

    first = Transaction.objects.get(transaction_id="TX000001")
    assert first.account_id == "AC00128"
    assert first.amount == Decimal("14.09")
    assert first.timestamp == datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC)
    assert first.transaction_type == "Debit"
    assert first.location == "San Diego"
    assert first.device_id == "D000380"
    assert first.ip_address == "162.198.218.92"
    assert first.merchant_id == "M015"
    assert first.channel == "ATM"
    assert first.customer_age == 70
    assert first.customer_occupation == "Doctor"
    assert first.duration_seconds == 81
    assert first.login_attempts == 1
    assert first.account_balance == Decimal("5112.21")
    assert first.previous_transaction_at == datetime(2024, 11, 4, 8, 8, 8, tzinfo=UTC)

    middle = Transaction.objects.get(transaction_id="TX001000")
    assert (middle.account_id, middle.amount, middle.channel, middle.location) == (
        "AC00297",
        Decimal("127.80"),
        "Branch",
        "Virginia Beach",
    )
    assert middle.timestamp == datetime(2023, 3, 2, 16, 5, 52, tzinfo=UTC)

    last = Transaction.objects.get(transaction_id="TX002512")
    assert (last.account_id, last.amount, last.account_balance, last.customer_occupation) == (
        "AC00009",
        Decimal("243.08"),
        Decimal("131.25"),
        "Student",
    )


def test_it_skips_every_row_on_a_second_import(public_data):
    import_transactions_csv(path=public_data)
    ids_before = dict(Transaction.objects.values_list("transaction_id", "pk"))

    summary = import_transactions_csv(path=public_data)

    assert (summary.read, summary.stored, summary.already_present) == (2512, 0, 2512)
    assert summary.rejected == []
    assert dict(Transaction.objects.values_list("transaction_id", "pk")) == ids_before


def test_it_resumes_an_interrupted_import_without_duplicates(public_data, tmp_path):
    # An import stopped after its first chunk left those rows committed;
    # running it again over the whole file stores exactly the rest.
    lines = public_data.read_text(encoding="utf-8").splitlines(keepends=True)
    first_chunk = tmp_path / "first_chunk.csv"
    first_chunk.write_text("".join(lines[:501]), encoding="utf-8")
    import_transactions_csv(path=first_chunk, chunk_size=500)

    summary = import_transactions_csv(path=public_data, chunk_size=500)

    assert (summary.stored, summary.already_present) == (2012, 500)
    assert Transaction.objects.count() == 2512
    assert Transaction.objects.values("transaction_id").distinct().count() == 2512


def test_it_reports_progress_after_each_chunk(public_data):
    seen: list[int] = []

    import_transactions_csv(path=public_data, chunk_size=1000, progress=seen.append)

    assert seen == [1000, 1000, 512]


def test_it_counts_rejected_rows_in_the_progress(tmp_path):
    rows = [_row("TX1"), _row("TX2", CustomerAge="1"), _row("TX3")]
    seen: list[int] = []

    import_transactions_csv(path=_write(tmp_path / "p.csv", rows), progress=seen.append)

    assert seen == [3]


# --- normal data that looks odd ----------------------------------------------


def test_it_accepts_unsorted_rows_duplicate_times_and_one_off_accounts(tmp_path):
    rows = [
        _row("TX3", TransactionDate="2023-05-01 10:00:00", AccountID="AC1"),
        _row("TX1", TransactionDate="2023-01-01 10:00:00", AccountID="AC1"),
        _row("TX2", TransactionDate="2023-05-01 10:00:00", AccountID="AC1"),
        _row("TX4", TransactionDate="2023-05-01 10:00:00", AccountID="AC2"),
        _row("TX5", TransactionDate="2022-12-31 23:59:59", AccountID="AC3"),
    ]

    summary = import_transactions_csv(path=_write(tmp_path / "odd.csv", rows))

    assert (summary.stored, summary.rejected) == (5, [])
    assert Transaction.objects.filter(account_id="AC3").count() == 1
    assert Transaction.objects.filter(timestamp=datetime(2023, 5, 1, 10, tzinfo=UTC)).count() == 3


def test_it_accepts_columns_in_any_order_and_the_new_names(tmp_path):
    order = list(reversed(range(len(CSV_HEADER))))
    path = tmp_path / "reordered.csv"
    _write(path, [[ROW[i] for i in order]], header=[FIELDS[i] for i in order])

    import_transactions_csv(path=path)

    tx = Transaction.objects.get()
    assert (tx.transaction_id, tx.amount, tx.ip_address) == (
        "TX000001",
        Decimal("14.09"),
        "162.198.218.92",
    )


def test_it_accepts_a_file_without_the_optional_previous_date_column(tmp_path):
    path = _write(tmp_path / "short.csv", [ROW[:-1]], header=CSV_HEADER[:-1])

    summary = import_transactions_csv(path=path)

    assert summary.stored == 1
    assert Transaction.objects.get().previous_transaction_at is None


def test_it_accepts_a_byte_order_mark_and_windows_line_endings(tmp_path):
    path = tmp_path / "excel.csv"
    lines = [",".join(CSV_HEADER), ",".join(_row("TX1")), ",".join(_row("TX2"))]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))

    summary = import_transactions_csv(path=path)

    assert (summary.stored, summary.rejected) == (2, [])


def test_it_skips_blank_lines(tmp_path):
    path = tmp_path / "blanks.csv"
    path.write_text(
        ",".join(CSV_HEADER)
        + "\n\n"
        + ",".join(_row("TX1"))
        + "\n\n\n"
        + ",".join(_row("TX2"))
        + "\n"
    )

    summary = import_transactions_csv(path=path)

    assert (summary.read, summary.stored, summary.rejected) == (2, 2, [])


def test_it_accepts_a_file_with_only_the_header(tmp_path):
    summary = import_transactions_csv(path=_write(tmp_path / "header.csv", []))

    assert (summary.read, summary.stored, summary.rejected) == (0, 0, [])


def test_it_reads_quoted_fields(tmp_path):
    path = tmp_path / "quoted.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(
            [CSV_HEADER, _row("TX1", Location="Washington, D.C.")]
        )

    import_transactions_csv(path=path)

    assert Transaction.objects.get().location == "Washington, D.C."


# --- row errors: good rows stored, each bad one reported ---------------------


def test_it_stores_the_good_rows_and_reports_each_bad_one(tmp_path):
    rows = [
        _row("TX1"),
        _row("TX2", TransactionAmount="NaN"),
        _row("TX3"),
        _row("TX4", CustomerAge="17", Channel="Fax"),
        _row("TX5", TransactionDate="not a date"),
        _row("TX6"),
        _row("TX7", **{"IP Address": "300.1.1.1"}),
    ]

    summary = import_transactions_csv(path=_write(tmp_path / "mixed.csv", rows), chunk_size=2)

    assert (summary.read, summary.stored, summary.rejected_rows) == (7, 3, 4)
    assert set(Transaction.objects.values_list("transaction_id", flat=True)) == {
        "TX1",
        "TX3",
        "TX6",
    }
    reported = sorted((r.line, r.field) for r in summary.rejected)
    assert reported == [
        (3, "amount"),
        (5, "channel"),
        (5, "customer_age"),
        (6, "timestamp"),
        (8, "ip_address"),
    ]
    by_field = {r.field: r for r in summary.rejected}
    assert by_field["amount"].message == "input should be a finite number"
    assert by_field["customer_age"].message == "input should be greater than or equal to 18"
    assert by_field["channel"].message == "'Fax' is not one of 'Online', 'ATM' or 'Branch'"
    assert by_field["ip_address"].message == "must be an IPv4 or IPv6 address"
    assert str(by_field["amount"]) == "line 3: amount: input should be a finite number"


def test_it_reports_a_row_with_the_wrong_number_of_fields_as_a_row_error(tmp_path):
    rows = [_row("TX1"), _row("TX2")[:-3], [*_row("TX3"), "surplus"], _row("TX4")]

    summary = import_transactions_csv(path=_write(tmp_path / "arity.csv", rows))

    assert summary.stored == 2
    assert summary.rejected == [
        RejectedRow(3, "__all__", "expected 16 fields, found 13"),
        RejectedRow(4, "__all__", "expected 16 fields, found 17"),
    ]


def test_it_refuses_an_id_repeated_within_the_file(tmp_path):
    rows = [_row("TX1"), _row("TX2"), _row("TX1", TransactionAmount="99.99"), _row("TX2")]

    summary = import_transactions_csv(path=_write(tmp_path / "dupes.csv", rows), chunk_size=1)

    assert summary.stored == 2
    assert summary.rejected == [
        RejectedRow(4, "transaction_id", "duplicate of line 2 in this file"),
        RejectedRow(5, "transaction_id", "duplicate of line 3 in this file"),
    ]
    assert Transaction.objects.get(transaction_id="TX1").amount == Decimal("14.09")


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
def test_it_reports_bad_rows_and_repeats_across_chunks_alike_with_workers(tmp_path, workers):
    # With a worker, chunks are validated in another process, ahead of the
    # one being stored; results, repeats and their order must not change.
    rows = [
        _row("TX1"),
        _row("TX2", LoginAttempts="11"),
        _row("TX3"),
        _row("TX1"),  # a repeat of a row in an earlier chunk
        _row("TX4", TransactionType="Refund"),
        _row("TX3", TransactionAmount="1.00"),
        _row("TX5"),
    ]
    path = _write(tmp_path / "chunks.csv", rows)

    summary = import_transactions_csv(path=path, chunk_size=2, workers=workers)

    assert (summary.read, summary.stored, summary.rejected_rows) == (7, 3, 4)
    assert summary.rejected == [
        RejectedRow(3, "login_attempts", "input should be less than or equal to 10"),
        RejectedRow(5, "transaction_id", "duplicate of line 2 in this file"),
        RejectedRow(6, "transaction_type", "'Refund' is not one of 'Credit' or 'Debit'"),
        RejectedRow(7, "transaction_id", "duplicate of line 4 in this file"),
    ]
    assert Transaction.objects.get(transaction_id="TX3").amount == Decimal("14.09")


@pytest.mark.parametrize("chunk_size", [1, 10])
def test_it_keeps_the_first_line_of_an_id_even_if_a_later_one_is_earlier_in_time(
    tmp_path, chunk_size
):
    rows = [
        _row("TX1", TransactionDate="2023-06-01 10:00:00", TransactionAmount="1.00"),
        _row("TX2", TransactionDate="2023-03-01 10:00:00"),
        _row("TX1", TransactionDate="2023-01-01 10:00:00", TransactionAmount="2.00"),
    ]

    summary = import_transactions_csv(path=_write(tmp_path / "t.csv", rows), chunk_size=chunk_size)

    assert summary.rejected == [
        RejectedRow(4, "transaction_id", "duplicate of line 2 in this file")
    ]
    assert Transaction.objects.get(transaction_id="TX1").amount == Decimal("1.00")


def test_it_keeps_file_order_among_rows_with_equal_times(tmp_path):
    # Rows are stored in time order; among equal times, in file order, so
    # ordering by (timestamp, id) gives what the file said.
    rows = [
        _row("TXc", TransactionDate="2023-05-01 10:00:00"),
        _row("TXz", TransactionDate="2023-02-01 10:00:00"),
        _row("TXa", TransactionDate="2023-05-01 10:00:00"),
        _row("TXb", TransactionDate="2023-05-01 10:00:00"),
    ]

    import_transactions_csv(path=_write(tmp_path / "ties.csv", rows))

    ordered = Transaction.objects.order_by("timestamp", "id")
    assert [tx.transaction_id for tx in ordered] == ["TXz", "TXc", "TXa", "TXb"]


def test_it_does_not_count_a_rejected_row_as_the_first_of_an_id(tmp_path):
    rows = [_row("TX1", TransactionAmount="bad"), _row("TX1")]

    summary = import_transactions_csv(path=_write(tmp_path / "retry.csv", rows))

    assert summary.stored == 1
    assert [r.line for r in summary.rejected] == [2]


def test_it_counts_ids_already_stored_separately_from_new_ones(tmp_path):
    import_transactions_csv(path=_write(tmp_path / "first.csv", _good_rows(3)))

    summary = import_transactions_csv(path=_write(tmp_path / "second.csv", _good_rows(5)))

    assert (summary.read, summary.stored, summary.already_present) == (5, 2, 3)


def test_it_reports_the_first_line_of_a_record_that_spans_lines(tmp_path):
    path = tmp_path / "multiline.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [CSV_HEADER, _row("TX1"), _row("TX2", Location="two\nlines"), _row("TX3")]
        )

    summary = import_transactions_csv(path=path)

    assert summary.stored == 2
    assert [(r.line, r.field) for r in summary.rejected] == [(3, "location")]


# --- file errors: a clear message and nothing stored --------------------------


def _refused(path: Path, match: str, chunk_size: int = 1) -> None:
    with pytest.raises(ImportFileError, match=match):
        import_transactions_csv(path=path, chunk_size=chunk_size)
    assert not Transaction.objects.exists()


def test_it_refuses_a_missing_file(tmp_path):
    _refused(tmp_path / "nowhere.csv", "nowhere.csv: no such file")


def test_it_refuses_a_directory(tmp_path):
    _refused(tmp_path, "not a regular file")


def test_it_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    _refused(path, "the file is empty")


def test_it_refuses_a_latin1_file_and_stores_none_of_its_good_rows(tmp_path):
    path = tmp_path / "latin1.csv"
    lines = [",".join(CSV_HEADER)] + [",".join(row) for row in _good_rows(50)]
    lines.append(",".join(_row("TX999999", Location="São Paulo")))
    path.write_bytes("\n".join(lines).encode("latin-1"))

    _refused(path, r"not UTF-8 text \(invalid byte at offset \d+\)")


def test_it_refuses_a_file_cut_in_the_middle_of_a_character(tmp_path):
    path = tmp_path / "cut.csv"
    text = ",".join(CSV_HEADER) + "\n" + ",".join(_row("TX1", Location="Zürich"))
    data = text.encode("utf-8")
    path.write_bytes(data[: data.index("ü".encode()) + 1])

    _refused(path, "not UTF-8 text")


def test_it_refuses_binary_data(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))

    _refused(path, "image.png: (binary data|not UTF-8)")


def test_it_refuses_a_utf8_file_with_nul_bytes(tmp_path):
    path = tmp_path / "nul.csv"
    lines = [",".join(CSV_HEADER)] + [",".join(row) for row in _good_rows(5)]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"TX9\x00,AC1\n")

    _refused(path, "binary data, not a CSV text file")


@pytest.mark.parametrize("missing", ["TransactionID", "TransactionAmount", "IP Address"])
def test_it_refuses_a_file_missing_a_required_column(tmp_path, missing):
    keep = [i for i, name in enumerate(CSV_HEADER) if name != missing]
    rows = [[row[i] for i in keep] for row in _good_rows(3)]
    path = _write(tmp_path / "missing.csv", rows, header=[CSV_HEADER[i] for i in keep])

    with pytest.raises(ImportFileError) as excinfo:
        import_transactions_csv(path=path, chunk_size=1)

    canonical = {"TransactionID": "transaction_id", "TransactionAmount": "amount"}
    assert "missing column(s): " + canonical.get(missing, "ip_address") in str(excinfo.value)
    assert not Transaction.objects.exists()


def test_it_refuses_a_file_with_an_extra_column(tmp_path):
    rows = [[*row, "1"] for row in _good_rows(3)]

    _refused(_write(tmp_path / "extra.csv", rows, header=[*CSV_HEADER, "IsFraud"]), "IsFraud")


def test_it_names_the_unexpected_column(tmp_path):
    rows = [[*row, "1"] for row in _good_rows(1)]
    path = _write(tmp_path / "extra.csv", rows, header=[*CSV_HEADER, "IsFraud"])

    with pytest.raises(ImportFileError, match=r"extra\.csv: unexpected column\(s\): IsFraud$"):
        import_transactions_csv(path=path)


def test_it_refuses_a_repeated_column(tmp_path):
    header = [*CSV_HEADER[:-1], "TransactionAmount"]

    _refused(_write(tmp_path / "twice.csv", _good_rows(2), header=header), "repeated column")


def test_it_refuses_a_column_given_under_both_names(tmp_path):
    header = [*CSV_HEADER[:-1], "amount"]

    _refused(_write(tmp_path / "both.csv", _good_rows(2), header=header), "repeated column")


def test_it_refuses_a_file_without_a_header(tmp_path):
    path = tmp_path / "headless.csv"
    path.write_text("\n".join(",".join(row) for row in _good_rows(3)) + "\n")

    _refused(path, "unexpected column")


def test_it_refuses_a_file_that_is_not_csv(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[{"TransactionID": "TX1", "AccountID": "AC1"}]\n')

    _refused(path, "unexpected column")


def test_it_stores_nothing_when_a_broken_quote_appears_after_the_first_chunks(tmp_path):
    # An opening quote that never closes swallows the rest of the file into one
    # field. That makes the file unreadable as CSV, which must be found before
    # the good rows above it are committed.
    path = tmp_path / "open_quote.csv"
    rows = [",".join(row) for row in _good_rows(20)]
    tail = [",".join(row) for row in _good_rows(3_000, prefix="TY")]
    path.write_text(
        ",".join(CSV_HEADER) + "\n" + "\n".join(rows) + '\nTX9,"AC1\n' + "\n".join(tail) + "\n"
    )

    _refused(path, r"line 22", chunk_size=5)


# --- options -----------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_it_refuses_a_chunk_size_below_one(tmp_path, chunk_size):
    path = _write(tmp_path / "ok.csv", _good_rows(2))

    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        import_transactions_csv(path=path, chunk_size=chunk_size)
    assert not Transaction.objects.exists()


def test_it_refuses_a_negative_number_of_workers(tmp_path):
    path = _write(tmp_path / "ok.csv", _good_rows(2))

    with pytest.raises(ValueError, match="workers must be at least 0"):
        import_transactions_csv(path=path, workers=-1)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 10_000])
def test_it_stores_the_same_whatever_the_chunk_size(tmp_path, chunk_size):
    rows = _good_rows(7)
    rows[3] = _row("TX000004", CustomerAge="7")

    summary = import_transactions_csv(path=_write(tmp_path / "c.csv", rows), chunk_size=chunk_size)

    assert (summary.stored, summary.rejected_rows) == (6, 1)
    assert Transaction.objects.count() == 6
