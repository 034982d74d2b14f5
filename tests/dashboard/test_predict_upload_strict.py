"""An uploaded file that is not well-formed CSV is refused as the import
refuses it, with the line it breaks on; nothing is scored or stored."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from detection.models import Prediction, Transaction
from tests.dashboard.factories import csv_bytes, takeover_data

pytestmark = pytest.mark.django_db


def good_file(count: int) -> list[bytes]:
    """The lines of a valid file with ``count`` transactions, header first."""
    rows = [takeover_data(transaction_id=f"OK{i}", amount=f"{10 + i}.00") for i in range(count)]
    return csv_bytes(rows).splitlines(keepends=True)


def upload(client, content: bytes):
    return client.post(
        "/predict/upload/",
        {
            "upload-file": SimpleUploadedFile("batch.csv", content, content_type="text/csv"),
            "upload-algorithms": "both",
            "upload-store": "on",
            "output": "page",
        },
    )


def assert_nothing_scored(response, before: tuple[int, int]) -> None:
    assert response.context["results"] is None
    assert (Transaction.objects.count(), Prediction.objects.count()) == before
    assert not Transaction.objects.filter(transaction_id__startswith="OK").exists()


def counts() -> tuple[int, int]:
    return Transaction.objects.count(), Prediction.objects.count()


def test_an_unclosed_quote_is_refused_naming_its_line(client, user, scored):
    lines = good_file(5)
    # Line 4 opens a quote that never closes: read leniently, it would swallow
    # lines 5 and 6 into one field and the other rows would be scored.
    lines[3] = lines[3].replace(b",AC00003,", b',"AC00003,', 1)
    before = counts()
    client.force_login(user)

    response = upload(client, b"".join(lines))

    assert response.status_code == 200
    message = "batch.csv: line 4: unexpected end of data (a quoted field is never closed)"
    assert response.context["upload"].errors == {"file": [message]}
    html = response.content.decode()
    assert 'id="id_upload-file_error"' in html
    assert message in html
    assert_nothing_scored(response, before)


def _unclosed_header(lines):
    lines[0] = b'"' + lines[0]


def _closed_then_text(lines):
    lines[2] = lines[2].replace(b",AC00003,", b',"AC00003"x,', 1)


def _nul(lines):
    lines[3] = lines[3].replace(b"OK2", b"OK\x002")


def _over_limit(lines):
    lines[2] = lines[2].replace(b",AC00003,", b',"' + b"A" * 131_073 + b'",', 1)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            _unclosed_header,
            "batch.csv: line 1 (the header): unexpected end of data"
            " (a quoted field is never closed)",
        ),
        (
            _closed_then_text,
            "batch.csv: line 3: ',' expected after '\"' (text after a field's closing quote"
            " (a quote inside a quoted field is written twice))",
        ),
        (_nul, "batch.csv: binary data, not a CSV text file"),
        (_over_limit, "batch.csv: line 3: field larger than field limit (131072)"),
    ],
    ids=["unclosed-quote-in-the-header", "text-after-a-closing-quote", "nul-byte", "huge-field"],
)
def test_a_file_that_is_not_well_formed_csv_is_refused_with_its_line(
    client, user, scored, spoil, message
):
    lines = good_file(4)
    spoil(lines)
    before = counts()
    client.force_login(user)

    response = upload(client, b"".join(lines))

    assert response.status_code == 200
    assert response.context["upload"].errors == {"file": [message]}
    assert_nothing_scored(response, before)


@pytest.mark.parametrize(
    ("spoil", "found"),
    [
        (lambda line: line.rstrip(b"\r\n") + b",extra\r\n", 17),
        (lambda line: line.rstrip(b"\r\n").rsplit(b",", 2)[0] + b"\r\n", 14),
    ],
    ids=["too-many-columns", "too-few-columns"],
)
def test_a_row_with_the_wrong_number_of_columns_is_listed_with_its_line(
    client, user, scored, spoil, found
):
    lines = good_file(4)
    lines[3] = spoil(lines[3])
    before = counts()
    client.force_login(user)

    response = upload(client, b"".join(lines))

    assert [(r.line, r.field, r.message) for r in response.context["rejected"]] == [
        (4, "__all__", f"expected 16 fields, found {found}")
    ]
    assert "batch.csv: nothing was scored" in response.content.decode()
    assert_nothing_scored(response, before)


def test_the_same_file_well_formed_is_scored(client, user, scored):
    # The control for the tests above: the same file, well formed, is scored and stored.
    before = counts()
    client.force_login(user)

    response = upload(client, b"".join(good_file(5)))

    assert len(response.context["results"]) == 5
    assert Transaction.objects.filter(transaction_id__startswith="OK").count() == 5
    assert counts()[0] == before[0] + 5
