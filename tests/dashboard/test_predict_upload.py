"""Scoring an uploaded CSV file: results on the page or as a CSV download;
a bad file or bad rows are refused with line numbers and nothing is scored."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from detection.models import Transaction
from tests.dashboard.factories import CSV_HEADER, csv_bytes, takeover_data

pytestmark = pytest.mark.django_db


def upload(client, content: bytes, *, name="batch.csv", output="page", store=False, models="both"):
    data = {
        "upload-file": SimpleUploadedFile(name, content, content_type="text/csv"),
        "upload-algorithms": models,
        "output": output,
    }
    if store:
        data["upload-store"] = "on"
    return client.post("/predict/upload/", data)


def rows(count: int = 3) -> list[dict]:
    return [takeover_data(transaction_id=f"UP{i}", amount=f"{10 + i}.00") for i in range(count)]


def test_it_scores_a_file_and_shows_the_results_without_storing_by_default(client, user, scored):
    client.force_login(user)
    response = upload(client, csv_bytes([*rows(2), takeover_data()]))
    assert response.status_code == 200
    results = response.context["results"]
    assert [r.result.transaction_id for r in results] == ["UP0", "UP1", "ATTACK1"]
    assert results[2].result.flagged
    html = response.content.decode()
    assert "batch.csv: scored 3 transactions, " in html
    assert "nothing stored." in html
    assert not Transaction.objects.filter(transaction_id__in=["UP0", "UP1", "ATTACK1"]).exists()


def test_it_stores_the_file_when_asked(client, user, scored):
    client.force_login(user)
    upload(client, csv_bytes(rows(2)), store=True)
    assert Transaction.objects.filter(transaction_id__in=["UP0", "UP1"]).count() == 2


def test_it_accepts_the_snake_case_column_names(client, user, scored):
    client.force_login(user)
    snake = [
        "transaction_id", "account_id", "amount", "timestamp", "transaction_type",
        "location", "device_id", "ip_address", "merchant_id", "channel", "customer_age",
        "customer_occupation", "duration_seconds", "login_attempts", "account_balance",
        "previous_transaction_at",
    ]  # fmt: skip
    response = upload(client, csv_bytes(rows(1), header=snake))
    assert len(response.context["results"]) == 1


def test_it_downloads_the_results_as_csv(client, user, scored):
    client.force_login(user)
    response = upload(
        client, csv_bytes([*rows(2), takeover_data()]), name="May batch.csv", output="csv"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="may-batch-scored.csv"'
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["transaction_id"] for row in table] == ["UP0", "UP1", "ATTACK1"]
    attack = table[2]
    assert attack["flagged"] == "True"
    assert attack["stored"] == "False"
    assert float(attack["isolation_forest_score"]) >= float(attack["isolation_forest_threshold"])
    assert attack["isolation_forest_is_anomaly"] == "True"
    assert attack["local_outlier_factor_model_version"] == str(
        scored.models["local_outlier_factor"].version
    )
    assert "first use of this device by the account" in attack["reasons"].split("; ")


def test_it_leaves_the_columns_of_an_unused_model_empty_in_the_download(client, user, scored):
    client.force_login(user)
    response = upload(client, csv_bytes(rows(1)), output="csv", models="isolation_forest")
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["isolation_forest_score"] != ""
    assert row["local_outlier_factor_score"] == ""


def test_it_lists_every_bad_row_with_its_line_and_scores_nothing(client, user, scored):
    bad = [
        takeover_data(transaction_id="GOOD1"),
        takeover_data(transaction_id="BAD1", amount="-3"),
        takeover_data(transaction_id="BAD2", ip_address="300.1.1.1", customer_age="17"),
        takeover_data(transaction_id="GOOD1"),
    ]
    client.force_login(user)
    response = upload(client, csv_bytes(bad), store=True)
    assert response.context["results"] is None
    found = [(row.line, row.field, row.message) for row in response.context["rejected"]]
    assert found == [
        (3, "amount", "input should be greater than or equal to 0"),
        (4, "ip_address", "must be an IPv4 or IPv6 address"),
        (4, "customer_age", "input should be greater than or equal to 18"),
        (5, "transaction_id", "duplicate of line 2 in this file"),
    ]
    html = response.content.decode()
    assert "3 rows with problems; nothing was scored" in html
    assert '<td class="num">4</td><td><code>ip_address</code></td>' in html
    assert "batch.csv: nothing was scored; fix the rows listed below" in html
    assert not Transaction.objects.filter(transaction_id="GOOD1").exists()


def test_it_shows_at_most_fifty_problems_and_counts_the_rest(client, user, scored):
    bad = [takeover_data(transaction_id=f"B{i}", amount="-1") for i in range(60)]
    client.force_login(user)
    response = upload(client, csv_bytes(bad))
    assert len(response.context["rejected"]) == 50
    assert "… and 10 more problems." in response.content.decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        ("café!".encode("latin-1"), "batch.csv: not UTF-8 text (invalid byte at offset 3)"),
        ("café".encode()[:-1], "batch.csv: not UTF-8 text (truncated character at the end)"),
        (
            b'"TransactionID,AccountID\n',
            "batch.csv: line 1 (the header): unexpected end of data"
            " (a quoted field is never closed)",
        ),
        (b"TransactionID\x00,AccountID\n", "batch.csv: binary data, not a CSV text file"),
        (
            ",".join(name for name in CSV_HEADER if name != "LoginAttempts").encode(),
            "batch.csv: missing column(s): login_attempts",
        ),
        (
            ",".join([*CSV_HEADER, "Extra"]).encode(),
            "batch.csv: unexpected column(s): Extra",
        ),
        (",".join(CSV_HEADER).encode() + b"\n", "batch.csv: the file has no transactions"),
    ],
    ids=[
        "empty",
        "latin-1",
        "cut-character",
        "unclosed-quote",
        "binary",
        "missing-column",
        "extra-column",
        "header-only",
    ],
)
def test_it_refuses_a_file_it_cannot_read_with_the_reason_beside_the_field(
    client, user, scored, content, message
):
    client.force_login(user)
    response = upload(client, content)
    assert response.status_code == 200
    assert response.context["upload"].errors == {"file": [message]}
    assert 'id="id_upload-file_error"' in response.content.decode()


def test_it_refuses_more_rows_than_the_api_accepts(client, user, scored, settings):
    settings.API_MAX_BATCH = 2
    client.force_login(user)
    response = upload(client, csv_bytes(rows(3)))
    assert response.context["upload"].errors == {
        "file": ["batch.csv: more than 2 transactions in one file"]
    }


def test_it_refuses_a_file_that_is_too_large(client, user, scored, settings):
    settings.UPLOAD_MAX_CSV_BYTES = 100
    client.force_login(user)
    response = upload(client, csv_bytes(rows(3)))
    assert response.context["upload"].errors == {
        "file": ["batch.csv: the file is larger than 100 bytes"]
    }


def test_it_asks_for_a_file(client, user, scored):
    client.force_login(user)
    response = client.post("/predict/upload/", {"upload-algorithms": "both", "output": "page"})
    assert response.context["upload"].errors == {"file": ["This field is required."]}


def test_it_sends_a_plain_visit_back_to_the_form(client, user):
    client.force_login(user)
    response = client.get("/predict/upload/")
    assert response.status_code == 302
    assert response["Location"] == "/predict/"
