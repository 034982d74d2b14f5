"""Migrations can be rolled back: a deployment that has to return to the
previous release can take its schema back with it, keeping the data."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from detection.models import Transaction
from tests.factories import habitual_items, store

PROJECT_APPS = ("detection", "dashboard")


def detection_tables() -> set[str]:
    return {
        name for name in connection.introspection.table_names() if name.startswith("detection_")
    }


def detection_migrations() -> list[tuple[str, str]]:
    """Every migration of the detection app, oldest first."""
    graph = MigrationExecutor(connection).loader.graph
    leaf = graph.leaf_nodes("detection")[0]
    return [node for node in graph.forwards_plan(leaf) if node[0] == "detection"]


@pytest.fixture
def migrated_back_afterwards(transactional_db):
    yield
    # Whatever the test did, the next test finds the schema complete.
    call_command("migrate", verbosity=0)


def test_it_declares_a_reverse_for_every_operation():
    # Read from disk: this also covers migrations no test database ran yet.
    irreversible = [
        f"{app}.{name}: {operation.describe()}"
        for (app, name), migration in MigrationLoader(None).disk_migrations.items()
        if app in PROJECT_APPS
        for operation in migration.operations
        if not operation.reversible
    ]
    assert irreversible == []


def test_it_unapplies_every_detection_migration_and_applies_them_again(
    migrated_back_afterwards,
):
    models = {m._meta.db_table for m in apps.get_app_config("detection").get_models()}
    assert models <= detection_tables()

    call_command("migrate", "detection", "zero", verbosity=0)
    assert detection_tables() == set()

    call_command("migrate", "detection", verbosity=0)
    assert models <= detection_tables()


def test_it_steps_each_migration_back_and_forward_keeping_the_rows(migrated_back_afterwards):
    store(habitual_items(accounts=3, per_account=4))
    plan = detection_migrations()

    for newer, older in reversed(list(zip(plan[1:], plan, strict=False))):
        executor = MigrationExecutor(connection)
        executor.migrate([older])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM detection_transaction")
            assert cursor.fetchone() == (12,), f"rows lost unapplying {newer[1]}"
        executor = MigrationExecutor(connection)
        executor.migrate([newer])
        executor = MigrationExecutor(connection)
        executor.migrate([older])

    MigrationExecutor(connection).migrate([plan[-1]])
    assert Transaction.objects.count() == 12
    assert set(Transaction.objects.values_list("account_id", flat=True)) == {
        "AC00000",
        "AC00001",
        "AC00002",
    }
