"""Fixtures for the reliability suite: in-process trained models (the
detection suite's own fixtures), and real deployments in subprocesses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.detection.conftest import history, trained  # noqa: F401  (shared fixtures)
from tests.factories import transaction_data
from tests.reliability.deployment import Deployment, Seed, deployment_of, seed

CITIES = ["Houston", "Austin", "Denver", "Boston", "Seattle", "Miami"]
# The seeded history runs through March 2024; new traffic comes after it.
NEW_TRAFFIC_START = datetime(2024, 5, 1, 9, tzinfo=UTC)


def payload(transaction_id: str, *, account: int, minute: int = 0, **overrides: Any) -> dict:
    """A new transaction of one of the 60 seeded accounts, in its habits."""
    when = NEW_TRAFFIC_START + timedelta(minutes=minute)
    return transaction_data(
        transaction_id=transaction_id,
        account_id=f"AC{account:05d}",
        timestamp=when.isoformat(),
        location=CITIES[account % len(CITIES)],
        device_id=f"D{account:04d}00",
        ip_address=f"10.{account}.0.1",
        amount="61.20",
        **overrides,
    )


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> Seed:
    """The template every deployment of this test process is copied from."""
    template = seed(tmp_path_factory.mktemp("seed"))
    yield template
    template.database.drop()


@pytest.fixture
def deployment(seeded, tmp_path) -> Deployment:
    with deployment_of(seeded, tmp_path) as copy:
        yield copy
