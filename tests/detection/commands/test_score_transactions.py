from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from detection.models import Prediction

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("score_transactions", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_scores_then_skips_what_is_already_scored(trained):
    assert "scored 750, skipped 0" in run("--chunk-size", "100")
    assert Prediction.objects.count() == 1500
    assert "scored 0, skipped 750" in run()
    assert "scored 750, skipped 0" in run("--rescore")
    assert Prediction.objects.count() == 1500


def test_it_scores_only_transactions_since_a_date(trained):
    output = run("--since", "2024-03-20")
    scored = int(output.split("scored ")[1].split(",")[0])
    assert 0 < scored < 750


def test_it_says_which_model_is_missing(history):
    with pytest.raises(CommandError, match="isolation_forest: no active version"):
        run()


def test_it_refuses_a_bad_chunk_size(trained):
    with pytest.raises(CommandError, match="--chunk-size"):
        run("--chunk-size", "0")
