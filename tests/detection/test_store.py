"""The bulk insert: new rows only, exact values, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from detection.models import Transaction
from detection.schema import TransactionIn
from detection.store import (
    transaction_received_at,
    transaction_rows,
    transactions_bulk_session,
    transactions_insert,
    transactions_insert_values,
)
from tests.factories import item

pytestmark = pytest.mark.django_db


def _item(transaction_id: str = "TX000001", **overrides: Any) -> TransactionIn:
    """A valid transaction that also has a previous transaction date."""
    overrides.setdefault("previous_transaction_at", "2024-11-04 08:08:08")
    return item(transaction_id=transaction_id, **overrides)


def test_it_inserts_and_returns_the_primary_key_of_each_new_row():
    inserted = transactions_insert(items=[_item("TX1"), _item("TX2"), _item("TX3")])

    stored = dict(Transaction.objects.values_list("transaction_id", "pk"))
    assert inserted == stored
    assert set(inserted) == {"TX1", "TX2", "TX3"}


def test_it_stores_every_field_as_validated():
    item = _item()

    transactions_insert(items=[item])

    tx = Transaction.objects.get()
    assert {field: getattr(tx, field) for field in item.as_row()} == item.as_row()
    assert tx.flagged is None


def test_it_stamps_the_time_of_receipt():
    before = timezone.now().replace(microsecond=0)

    transactions_insert(items=[_item()])

    received_at = Transaction.objects.get().received_at
    assert before <= received_at <= timezone.now()


def test_it_returns_nothing_for_an_empty_list():
    assert transactions_insert(items=[]) == {}


def test_it_stores_nothing_on_a_second_insert_of_the_same_ids():
    first = transactions_insert(items=[_item("TX1", amount="14.09"), _item("TX2")])

    second = transactions_insert(items=[_item("TX1", amount="99.99"), _item("TX2")])

    assert second == {}
    assert Transaction.objects.count() == 2
    # The stored row is the first one; a retry never overwrites it.
    assert Transaction.objects.get(transaction_id="TX1").amount == Decimal("14.09")
    assert dict(Transaction.objects.values_list("transaction_id", "pk")) == first


# A few rows go in one statement; many, on SQLite, one prepared row at a time.
BATCH_SIZES = pytest.mark.parametrize("size", [5, 300], ids=["few", "many"])


@BATCH_SIZES
def test_it_returns_only_the_rows_it_inserted_each_with_its_key(size):
    existing = transactions_insert(items=[_item("TX1"), _item("TX3")])

    inserted = transactions_insert(items=[_item(f"TX{n}") for n in range(1, size + 1)])

    assert set(inserted) == {f"TX{n}" for n in range(1, size + 1)} - {"TX1", "TX3"}
    assert set(inserted.values()).isdisjoint(existing.values())
    assert dict(Transaction.objects.values_list("transaction_id", "pk")) == existing | inserted


@BATCH_SIZES
def test_each_new_id_maps_to_the_key_it_was_stored_under(size):
    old = transactions_insert(items=[_item(f"OLD{n}") for n in range(3)])
    # The highest key goes: the next row's key is not simply the highest
    # stored plus one (SQLite's AUTOINCREMENT never gives a key twice).
    Transaction.objects.filter(pk=max(old.values())).delete()
    # Not in id order: each key must follow its own row.
    ids = [f"TX{n:03d}" for n in range(size, 0, -1)]

    inserted = transactions_insert(items=[_item(tx_id) for tx_id in ids])

    stored = dict(Transaction.objects.values_list("transaction_id", "pk"))
    assert inserted == {tx_id: stored[tx_id] for tx_id in ids}
    assert min(inserted.values()) > max(old.values())


@BATCH_SIZES
def test_it_keeps_the_first_of_two_items_with_one_id_in_one_call(size):
    fillers = [_item(f"TX{n}") for n in range(2, size)]
    inserted = transactions_insert(
        items=[_item("TX1", amount="14.09"), *fillers, _item("TX1", amount="99.99")]
    )

    assert len(inserted) == size - 1 and "TX1" in inserted
    assert Transaction.objects.get(transaction_id="TX1").amount == Decimal("14.09")


def test_it_inserts_more_rows_than_fit_in_one_statement():
    # SQLite allows 32,766 bound parameters per statement; 17 columns per row.
    items = [_item(f"TX{n:05d}") for n in range(4_000)]

    inserted = transactions_insert(items=items)

    assert len(inserted) == 4_000
    assert Transaction.objects.count() == 4_000
    assert len(set(inserted.values())) == 4_000


@pytest.mark.parametrize(
    ("amount", "balance"),
    [
        ("0", "0"),
        ("0.01", "0.01"),
        ("0.1", "0.10"),
        ("14.09", "5112.21"),
        ("999999.99", "9999999.99"),
        ("1000000.00", "10000000.00"),
        ("123456.78", "8765432.19"),
        ("1E+3", "1.5E+2"),
    ],
)
def test_it_round_trips_money_exactly(amount, balance):
    transactions_insert(items=[_item(amount=amount, account_balance=balance)])

    tx = Transaction.objects.get()
    assert isinstance(tx.amount, Decimal)
    assert tx.amount == Decimal(amount)
    assert tx.account_balance == Decimal(balance)
    # Two places, as the model declares, whatever the database stored.
    assert tx.amount.as_tuple().exponent == -2
    assert tx.account_balance.as_tuple().exponent == -2


def test_it_round_trips_money_given_as_floats_exactly():
    transactions_insert(items=[_item(amount=0.1, account_balance=9999999.99)])

    tx = Transaction.objects.get()
    assert tx.amount == Decimal("0.10")
    assert tx.account_balance == Decimal("9999999.99")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-04-11 16:29:14", datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC)),
        ("2023-04-11T16:29:14.123456", datetime(2023, 4, 11, 16, 29, 14, 123456, tzinfo=UTC)),
        ("2023-04-11T16:29:14.000001+02:00", datetime(2023, 4, 11, 14, 29, 14, 1, tzinfo=UTC)),
        ("2023-12-31T23:30:00-01:00", datetime(2024, 1, 1, 0, 30, tzinfo=UTC)),
        ("1970-01-01 00:00:00", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2100-12-31 23:59:59.999999", datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_it_round_trips_times_exactly_in_utc(given, expected):
    transactions_insert(items=[_item(timestamp=given, previous_transaction_at=given)])

    tx = Transaction.objects.get()
    assert tx.timestamp == expected
    assert tx.previous_transaction_at == expected
    assert tx.timestamp.utcoffset().total_seconds() == 0


def test_it_stores_a_missing_previous_transaction_date_as_null():
    transactions_insert(items=[_item(previous_transaction_at="")])

    assert Transaction.objects.get().previous_transaction_at is None
    assert Transaction.objects.filter(previous_transaction_at__isnull=True).count() == 1


def test_it_finds_stored_times_with_orm_lookups():
    # Stored in the same format the ORM writes, or range filters miss rows.
    transactions_insert(items=[_item("TX1", timestamp="2023-04-11T16:29:14.5+00:00")])
    moment = datetime(2023, 4, 11, 16, 29, 14, 500000, tzinfo=UTC)

    assert Transaction.objects.filter(timestamp=moment).count() == 1
    assert Transaction.objects.filter(timestamp__gte=moment).count() == 1
    assert Transaction.objects.filter(timestamp__lt=moment).count() == 0
    assert Transaction.objects.filter(timestamp__date="2023-04-11").count() == 1


def test_it_stores_ipv6_addresses_in_their_canonical_form():
    transactions_insert(items=[_item(ip_address="2001:DB8:0:0::1")])

    assert Transaction.objects.get().ip_address == "2001:db8::1"


def test_it_stores_unicode_labels_intact():
    transactions_insert(items=[_item(location="São Paulo / Zürich 東京")])

    assert Transaction.objects.get().location == "São Paulo / Zürich 東京"


def test_it_leaves_rows_written_through_the_orm_alone():
    orm_row = Transaction.objects.create(**_item("TX1").as_row())

    inserted = transactions_insert(items=[_item("TX1"), _item("TX2")])

    assert list(inserted) == ["TX2"]
    assert Transaction.objects.get(transaction_id="TX1").pk == orm_row.pk


def test_it_writes_in_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        transactions_insert(items=[_item("TX1")])
        raise RuntimeError("rolled back")

    assert not Transaction.objects.exists()


# --- the bulk path of CSV import ----------------------------------------------


def _values(*items: TransactionIn) -> list[tuple[Any, ...]]:
    vendor = connection.vendor
    now = transaction_received_at(vendor=vendor)
    return transaction_rows(items, vendor=vendor, received_at=now)


def test_it_bulk_inserts_and_counts_only_new_rows():
    transactions_insert(items=[_item("TX2")])

    with transaction.atomic():
        stored = transactions_insert_values(rows=_values(_item("TX1"), _item("TX2"), _item("TX3")))

    assert stored == 2
    assert Transaction.objects.count() == 3
    assert transactions_insert_values(rows=[]) == 0


def test_it_bulk_inserts_the_same_values_as_the_single_path():
    transactions_insert(items=[_item("TX1", amount="0.1", timestamp="2023-04-11T16:29:14.5+02:00")])
    transactions_insert_values(
        rows=_values(_item("TX2", amount="0.1", timestamp="2023-04-11T16:29:14.5+02:00"))
    )

    one, two = (
        Transaction.objects.filter(transaction_id=tx_id).values().get() for tx_id in ("TX1", "TX2")
    )
    for row in (one, two):
        del row["id"], row["transaction_id"], row["received_at"]
    assert one == two
    assert one["amount"] == Decimal("0.10")
    assert one["timestamp"] == datetime(2023, 4, 11, 14, 29, 14, 500000, tzinfo=UTC)


def test_it_keeps_the_database_check_constraints_on_the_bulk_path():
    row = list(_values(_item("TX1"))[0])
    row[10] = 7  # customer_age, under the 18 the database allows

    with pytest.raises(IntegrityError), transaction.atomic():
        transactions_insert_values(rows=[tuple(row)])

    assert not Transaction.objects.exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite page-cache setting")
def test_it_enlarges_the_sqlite_cache_for_a_bulk_session_only():
    def cache_size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = cache_size()
    with transactions_bulk_session():
        during = cache_size()

    assert during == -256 * 1024
    assert cache_size() == before != during
