"""The page upload reads CSV as strictly as the import: each malformed file
is refused, or each bad row rejected, with the same message and line."""

from __future__ import annotations

import io

import pytest

from detection.importer import (
    ImportFileError,
    RejectedRow,
    import_transactions_csv,
    read_transactions_csv,
)
from detection.models import Transaction
from detection.schema import FIELDS
from detection.synthetic import HEADER
from tests.factories import transaction_data

pytestmark = pytest.mark.django_db

HEAD = ",".join(HEADER)


def row(transaction_id: str, **changes: str) -> str:
    data = transaction_data(transaction_id=transaction_id, **changes)
    return ",".join("" if data.get(name) is None else str(data[name]) for name in FIELDS)


def csv_text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def read(content: bytes, name: str) -> tuple[list, list[RejectedRow]]:
    return read_transactions_csv(io.BytesIO(content), name=name, max_bytes=1 << 20, max_rows=1_000)


def test_the_upload_refuses_an_unclosed_quote_naming_its_line():
    content = csv_text(HEAD, row("TX1"), row("TX2"), row("TX3"), 'TX9,"AC1', row("TX4"), row("TX5"))

    with pytest.raises(ImportFileError) as excinfo:
        read(content, "batch.csv")

    assert str(excinfo.value) == (
        "batch.csv: line 5: unexpected end of data (a quoted field is never closed)"
    )


def test_the_upload_refuses_an_unclosed_quote_after_a_record_spanning_lines():
    # The record on lines 3-4 is well formed; the broken one starts on line 5.
    content = csv_text(HEAD, row("TX1"), row("TX2", location='"two'), 'lines"', 'TX9,"AC1')

    with pytest.raises(ImportFileError, match=r"^batch\.csv: line 5: unexpected end of data"):
        read(content, "batch.csv")


QUOTE_ERROR = "unexpected end of data (a quoted field is never closed)"
AFTER_QUOTE = (
    "',' expected after '\"' (text after a field's closing quote"
    " (a quote inside a quoted field is written twice))"
)
LATIN_1 = csv_text(HEAD, row("TX1", location="São Paulo")).decode()
BAD_FILES = {
    "unclosed-quote": (
        csv_text(HEAD, row("TX1"), row("TX2"), row("TX3"), 'TX9,"AC1', row("TX4")),
        f"line 5: {QUOTE_ERROR}",
    ),
    "unclosed-quote-on-the-last-line": (
        csv_text(HEAD, row("TX1"), row("TX2", location='"Houston')).rstrip(b"\n"),
        f"line 3: {QUOTE_ERROR}",
    ),
    "unclosed-quote-in-the-header": (
        csv_text('"' + HEAD, row("TX1")),
        f"line 1 (the header): {QUOTE_ERROR}",
    ),
    "text-after-a-closing-quote": (
        csv_text(HEAD, row("TX1"), row("TX2", account_id='"AC1"x'), row("TX3")),
        f"line 3: {AFTER_QUOTE}",
    ),
    "field-over-the-csv-limit": (
        csv_text(HEAD, row("TX1"), row("TX2", location='"' + "x" * 131_073 + '"')),
        "line 3: field larger than field limit (131072)",
    ),
    "nul-byte": (
        csv_text(HEAD, row("TX1")) + b"TX9\x00,AC1\n",
        "binary data, not a CSV text file",
    ),
    "latin-1": (
        LATIN_1.encode("latin-1"),
        f"not UTF-8 text (invalid byte at offset {LATIN_1.index('ã')})",
    ),
    "cut-character": (
        csv_text(HEAD, row("TX1", location="Zürich"))[:-1].rsplit(b"\xbc", 1)[0],
        "not UTF-8 text (truncated character at the end)",
    ),
    "empty": (b"", "the file is empty"),
    "missing-column": (
        csv_text(HEAD.replace(",LoginAttempts", ""), row("TX1")),
        "missing column(s): login_attempts",
    ),
    "extra-column": (
        csv_text(HEAD + ",IsFraud", row("TX1") + ",0"),
        "unexpected column(s): IsFraud",
    ),
    "repeated-column": (
        csv_text(HEAD.replace("PreviousTransactionDate", "amount"), row("TX1")),
        "repeated column(s): amount",
    ),
    "no-header": (csv_text(row("TX1"), row("TX2")), "unexpected column(s): TX1, AC00001"),
}


@pytest.mark.parametrize(("content", "problem"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_the_upload_refuses_each_file_the_import_refuses_with_the_same_message(
    tmp_path, content, problem
):
    path = tmp_path / "batch.csv"
    path.write_bytes(content)

    with pytest.raises(ImportFileError) as imported:
        import_transactions_csv(path=path, chunk_size=1)
    with pytest.raises(ImportFileError) as uploaded:
        read(content, str(path))

    assert str(imported.value).startswith(f"{path}: {problem}")
    assert str(uploaded.value) == str(imported.value)
    assert not Transaction.objects.exists()


BAD_ROWS = {
    "too-many-columns": (
        csv_text(HEAD, row("TX1"), row("TX2") + ",extra", row("TX3")),
        [RejectedRow(3, "__all__", "expected 16 fields, found 17")],
    ),
    "too-few-columns": (
        csv_text(HEAD, row("TX1"), row("TX2").rsplit(",", 2)[0], row("TX3")),
        [RejectedRow(3, "__all__", "expected 16 fields, found 14")],
    ),
    "repeated-id-after-a-record-spanning-lines": (
        csv_text(HEAD, row("TX1"), row("TX2") + '"2024-02-01', '10:00:00"', row("TX1")),
        [
            RejectedRow(
                3,
                "previous_transaction_at",
                "input should be a valid datetime or date, "
                "unexpected extra characters at the end of the input",
            ),
            RejectedRow(5, "transaction_id", "duplicate of line 2 in this file"),
        ],
    ),
    "blank-lines-and-a-byte-order-mark": (
        "\ufeff".encode() + csv_text(HEAD, "", row("TX1"), "   ", row("TX2")),
        [],
    ),
}


@pytest.mark.parametrize(("content", "expected"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_the_upload_rejects_the_rows_the_import_rejects_on_the_same_lines(
    tmp_path, content, expected
):
    path = tmp_path / "batch.csv"
    path.write_bytes(content)

    summary = import_transactions_csv(path=path, chunk_size=1)
    items, rejected = read(content, str(path))

    assert summary.rejected == expected
    assert rejected == summary.rejected
    stored = set(Transaction.objects.values_list("transaction_id", flat=True))
    assert {item.transaction_id for item in items} == stored


def test_a_stray_quote_inside_an_unquoted_field_is_a_character_of_its_value(tmp_path):
    # Not a CSV error in either reader; the value itself is then checked.
    content = csv_text(HEAD, row("TX1", location='San "Diego'))
    path = tmp_path / "batch.csv"
    path.write_bytes(content)

    import_transactions_csv(path=path)
    [item], rejected = read(content, "batch.csv")

    assert rejected == []
    assert item.location == 'San "Diego' == Transaction.objects.get().location
