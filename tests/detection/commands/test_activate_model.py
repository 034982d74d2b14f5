from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from detection.models import ModelVersion
from detection.registry import artifacts_dir
from detection.training import models_train

pytestmark = pytest.mark.django_db


def test_it_rolls_back_to_an_older_version(trained):
    models_train(algorithms=["isolation_forest"])
    out = StringIO()
    call_command("activate_model", str(trained["isolation_forest"].pk), stdout=out)
    assert "isolation_forest v1 is now active" in out.getvalue()
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True).version == 1


def test_it_refuses_an_unknown_id(trained):
    with pytest.raises(CommandError, match="no model version with id 999"):
        call_command("activate_model", "999")


def test_it_refuses_a_version_whose_artifact_is_broken(trained):
    newer = models_train(algorithms=["isolation_forest"], activate=False)[0].model_version
    (artifacts_dir() / newer.artifact_path).write_bytes(b"not a model")
    with pytest.raises(CommandError, match="not activated"):
        call_command("activate_model", str(newer.pk))
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True).version == 1
