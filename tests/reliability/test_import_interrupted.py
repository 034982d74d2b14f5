"""A CSV import killed midway (SIGKILL: no cleanup runs) leaves whole chunks
stored; running it again stores the rest, and no row twice."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import csv_row, csv_write, transaction_data

pytestmark = pytest.mark.slow

ROWS = 12_000
CHUNK = 300


def imported(n: int) -> dict:
    """Row n of the file: 500 accounts, one transaction every 7 minutes."""
    when = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(minutes=7 * n)
    return transaction_data(
        transaction_id=f"IMP{n:07d}",
        account_id=f"AC{n % 500:05d}",
        amount=f"{10 + n % 900}.{n % 100:02d}",
        timestamp=when.strftime("%Y-%m-%d %H:%M:%S"),
        transaction_type="Debit" if n % 3 else "Credit",
        location="Denver",
        device_id=f"D{n % 500:06d}",
        ip_address=f"10.1.{n % 250}.{n % 200 + 1}",
        merchant_id=f"M{n % 97:03d}",
        customer_age=30 + n % 50,
        duration_seconds=20 + n % 300,
        account_balance=f"{5000 + n % 7000}.00",
    )


def write_csv(path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        csv_write(handle, (csv_row(imported(n)) for n in range(rows)))


def stored(deployment) -> tuple[int, int]:
    [(rows, distinct)] = deployment.query(
        "SELECT count(*), count(DISTINCT transaction_id) FROM detection_transaction "
        "WHERE transaction_id LIKE %s",
        ["IMP%"],
    )
    return rows, distinct


def test_it_completes_an_interrupted_import_without_duplicates(deployment, tmp_path):
    path = tmp_path / "transactions.csv"
    write_csv(path, ROWS)

    first = deployment.popen_manage("import_transactions", str(path), "--chunk-size", str(CHUNK))
    deadline = time.monotonic() + 60
    while stored(deployment)[0] == 0 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    partial, _ = stored(deployment)

    assert first.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    assert 0 < partial < ROWS
    assert partial % CHUNK == 0, "a chunk is stored whole or not at all"

    again = deployment.manage("import_transactions", str(path), "--chunk-size", str(CHUNK))

    assert again.returncode == 0, again.stderr[-2000:]
    assert f"read {ROWS}, stored {ROWS - partial}, already present {partial}" in again.stdout
    assert stored(deployment) == (ROWS, ROWS)
    [(amount, account)] = deployment.query(
        "SELECT amount, account_id FROM detection_transaction WHERE transaction_id = %s",
        [f"IMP{ROWS - 1:07d}"],
    )
    assert (f"{float(amount):.2f}", account) == ("309.99", "AC00499")
