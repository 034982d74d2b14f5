"""Measuring the detectors against labelled transactions.

Labels come from a CSV (``transaction_id, is_fraud, scenario``), such as the
one the synthetic generator writes. Scores are computed by the same code path
as production scoring, from the stored transactions, without storing anything.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detection.features import columns_take
from detection.history import frame_from_queryset
from detection.models import Transaction
from detection.registry import active_detectors
from detection.scoring import detector_features, flag_rule, score_rows

RULES = ("both", "either")


class LabelsError(Exception):
    pass


@dataclass(frozen=True)
class VerdictQuality:
    precision: float
    recall: float
    false_positive_rate: float
    flagged: int
    recall_by_scenario: dict[str, float]


@dataclass(frozen=True)
class ModelQuality:
    roc_auc: float
    pr_auc: float
    model_version: int


@dataclass
class EvaluationReport:
    rows: int
    frauds: int
    split_date: str | None
    models: dict[str, ModelQuality] = field(default_factory=dict)
    rules: dict[str, VerdictQuality] = field(default_factory=dict)
    scenarios: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_labels(path: Path) -> dict[str, tuple[int, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"transaction_id", "is_fraud"} <= set(
                reader.fieldnames
            ):
                raise LabelsError(f"{path}: needs the columns transaction_id and is_fraud")
            labels = {}
            for row in reader:
                value = row["is_fraud"].strip()
                if value not in ("0", "1"):
                    raise LabelsError(
                        f"{path}: line {reader.line_num}: is_fraud must be 0 or 1, not {value!r}"
                    )
                labels[row["transaction_id"]] = (int(value), (row.get("scenario") or "").strip())
    except FileNotFoundError:
        raise LabelsError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise LabelsError(f"{path}: not UTF-8 text") from None
    return labels


def verdict_quality(
    is_fraud: np.ndarray, flagged: np.ndarray, scenarios: np.ndarray
) -> VerdictQuality:
    true_positives = int((flagged & is_fraud).sum())
    flagged_count = int(flagged.sum())
    frauds = int(is_fraud.sum())
    normals = int((~is_fraud).sum())
    by_scenario = {}
    for scenario in sorted(set(scenarios[is_fraud])):
        rows = is_fraud & (scenarios == scenario)
        by_scenario[str(scenario)] = float(flagged[rows].mean())
    return VerdictQuality(
        precision=true_positives / flagged_count if flagged_count else 0.0,
        recall=true_positives / frauds if frauds else 0.0,
        false_positive_rate=int((flagged & ~is_fraud).sum()) / normals if normals else 0.0,
        flagged=flagged_count,
        recall_by_scenario=by_scenario,
    )


def models_evaluate(*, labels_path: Path, split_date: datetime | None = None) -> EvaluationReport:
    """Quality of the active versions on the labelled stored transactions
    (those at or after ``split_date`` when given: the ones not trained on)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = read_labels(labels_path)
    detectors = active_detectors()
    frame = frame_from_queryset(Transaction.objects.all())
    wanted = np.fromiter((i in labels for i in frame["transaction_id"]), bool)
    if split_date is not None:
        wanted &= frame["ts"] >= int(split_date.timestamp())
    if not wanted.any():
        raise LabelsError("no stored transaction matches the labels (after the split date)")
    rows = np.flatnonzero(wanted)
    eval_frame = columns_take(frame, rows)
    scores = score_rows(detectors, detector_features(detectors, frame, rows=rows), record=False)
    ids = eval_frame["transaction_id"]
    is_fraud = np.array([labels[i][0] == 1 for i in ids])
    scenarios = np.array([labels[i][1] for i in ids], dtype=object)
    report = EvaluationReport(
        rows=len(ids),
        frauds=int(is_fraud.sum()),
        split_date=split_date.isoformat() if split_date else None,
        scenarios={str(s): int((scenarios == s).sum()) for s in sorted(set(scenarios[is_fraud]))},
    )
    single_class = is_fraud.all() or not is_fraud.any()
    for algorithm, detector in detectors.items():
        report.models[algorithm] = ModelQuality(
            roc_auc=float("nan")
            if single_class
            else float(roc_auc_score(is_fraud, scores[algorithm])),
            pr_auc=(
                float("nan")
                if single_class
                else float(average_precision_score(is_fraud, scores[algorithm]))
            ),
            model_version=detector.version,
        )
    verdicts = np.vstack([detectors[a].is_anomaly(scores[a]) for a in detectors])
    for rule in RULES:
        report.rules[rule] = verdict_quality(is_fraud, flag_rule(rule)(verdicts), scenarios)
    return report
