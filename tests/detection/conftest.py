from __future__ import annotations

import pytest

from detection.training import models_train
from tests.factories import habitual_items, store


@pytest.fixture
def history(db):
    """750 stored transactions of 30 steady accounts."""
    items = habitual_items()
    store(items)
    return items


@pytest.fixture
def trained(history, settings):
    """Both detectors trained and active on the stored history."""
    settings.ML_IF_N_ESTIMATORS = 60
    results = models_train()
    return {r.model_version.algorithm: r.model_version for r in results}
