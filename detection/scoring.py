"""The one scoring path: online (API, pages) and batch (commands) alike.

features (transaction + account history) → each requested active detector →
score, threshold, verdict → flagged by the configured rule → reasons →
optionally stored as Prediction rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import compress
from typing import NamedTuple, overload

import numpy as np
import orjson
import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from threadpoolctl import threadpool_limits

from detection import metrics, sql
from detection.detectors import Detector
from detection.features import (
    MERCHANT_BURST_WINDOW,
    Columns,
    columns_concat,
    columns_length,
    columns_take,
    compute_features,
    feature_matrix,
    needs_calendar,
)
from detection.history import (
    frame_from_items,
    frame_from_queryset,
    merchant_recent,
    stored_transactions,
)
from detection.history_cache import hold_stored, recent_history
from detection.models import Algorithm, Prediction, Review, ReviewStatus, Transaction
from detection.reasons import explain
from detection.registry import active_detectors
from detection.schema import TransactionIn
from detection.store import predictions_upsert, transactions_insert, transactions_mark

log = structlog.get_logger("detection")

MERCHANT_FRAUD_DAYS = 30


# Named tuples rather than frozen dataclasses: just as immutable, and cheaper to
# build by the thousand (a frozen dataclass cost four times as much).
class ModelScore(NamedTuple):
    algorithm: str
    model_version_id: int
    model_version: int
    score: float
    threshold: float
    is_anomaly: bool


class ScoredTransaction(NamedTuple):
    transaction_id: str
    flagged: bool
    predictions: dict[str, ModelScore]
    reasons: list[str]
    stored: bool
    pk: int | None = None


class ModelColumn(NamedTuple):
    """One model's version and its scores and verdicts for a whole batch."""

    model_version_id: int
    model_version: int
    threshold: float
    scores: list[float]
    is_anomaly: list[bool]


@dataclass(frozen=True)
class ScoredBatch(Sequence[ScoredTransaction]):
    """A batch's results in input order, kept as columns (plain lists): a
    ScoredTransaction is built only for the item asked for, and the API
    renders a batch of 1,000 straight from the columns, without building
    3,000 tuples first (3.4 ms of a 6 ms answer)."""

    transaction_ids: list[str]
    flagged: list[bool]
    models: dict[str, ModelColumn]
    reasons: list[list[str]]
    stored: bool
    pks: list[int | None]

    def __len__(self) -> int:
        return len(self.transaction_ids)

    @overload
    def __getitem__(self, index: int) -> ScoredTransaction: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScoredTransaction]: ...

    def __getitem__(self, index: int | slice) -> ScoredTransaction | list[ScoredTransaction]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        predictions = {
            algorithm: ModelScore(
                algorithm,
                model.model_version_id,
                model.model_version,
                model.scores[index],
                model.threshold,
                model.is_anomaly[index],
            )
            for algorithm, model in self.models.items()
        }
        return ScoredTransaction(
            self.transaction_ids[index],
            self.flagged[index],
            predictions,
            self.reasons[index],
            self.stored,
            self.pks[index],
        )


def flag_rule(rule: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``both``: every requested model says anomaly; ``either``: any of them."""
    chosen = rule or settings.ML_FLAG_RULE
    if chosen == "both":
        return lambda verdicts: verdicts.all(axis=0)
    if chosen == "either":
        return lambda verdicts: verdicts.any(axis=0)
    raise ValueError(f"unknown flag rule {chosen!r}")


def lookback_seconds() -> int:
    return settings.ML_HISTORY_DAYS * 86400


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@sql.statement
def _confirmed_fraud_sql() -> str:
    timestamp = sql.quote("t", "timestamp")
    reviewed = sql.quote("r", Review._meta.get_field("transaction").column)
    return (
        f"SELECT {sql.quote('t', 'merchant_id')}, {sql.epoch_seconds(timestamp)} "
        f"FROM {sql.quote(Transaction._meta.db_table)} t "
        f"JOIN {sql.quote(Review._meta.db_table)} r ON {reviewed} = {sql.quote('t', 'id')} "
        f"WHERE {sql.quote('r', 'status')} = %s "
        f"AND {sql.in_list(sql.quote('t', 'merchant_id'))} "
        f"AND {timestamp} >= %s AND {timestamp} < %s"
    )


def merchant_fraud_counts(frame: Columns) -> np.ndarray:
    """Confirmed frauds at each row's merchant in the 30 days before it."""
    ts = frame["ts"]
    counts = np.zeros(len(ts), dtype=int)
    if not len(ts):
        return counts
    window = MERCHANT_FRAUD_DAYS * 86400
    confirmed: dict[str, list[int]] = {}
    for merchant, when in sql.fetch(
        _confirmed_fraud_sql(),
        [
            ReviewStatus.CONFIRMED_FRAUD.value,
            sql.list_param(sorted(set(frame["merchant_id"]))),
            sql.datetime_param(_utc(int(ts.min()) - window)),
            sql.datetime_param(_utc(int(ts.max()))),
        ],
    ):
        confirmed.setdefault(merchant, []).append(int(when))
    for merchant, times in confirmed.items():
        times_sorted = np.sort(np.asarray(times))
        rows = np.flatnonzero(frame["merchant_id"] == merchant)
        counts[rows] = np.searchsorted(times_sorted, ts[rows], "left") - np.searchsorted(
            times_sorted, ts[rows] - window, "left"
        )
    return counts


@dataclass(frozen=True)
class DetectorFeatures:
    """Features of a set of rows as each detector sees them.

    Part of the features depends on the merchant profile a version was trained
    with, so they are computed per profile; detectors trained together share
    one profile and one pass. Reasons and the stored merchant_novelty come
    from the newest version's view.
    """

    by_profile: dict[str, Columns]
    profile_of: dict[str, str]
    newest: str

    def of(self, algorithm: str) -> Columns:
        return self.by_profile[self.profile_of[algorithm]]

    @property
    def for_reasons(self) -> Columns:
        return self.by_profile[self.newest]

    def take(self, rows: np.ndarray | slice) -> DetectorFeatures:
        return DetectorFeatures(
            {key: columns_take(columns, rows) for key, columns in self.by_profile.items()},
            self.profile_of,
            self.newest,
        )


def detector_features(
    detectors: dict[str, Detector],
    frame: Columns,
    *,
    rows: np.ndarray | slice | None = None,
    merchant_recent: Columns | None = None,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> DetectorFeatures:
    """Features of ``frame`` (history and targets together) for each detector:
    of its ``rows`` only when given, every row being history to them. Text
    columns may be codes into ``vocabularies``."""
    by_profile: dict[str, Columns] = {}
    profile_of: dict[str, str] = {}
    for algorithm, detector in detectors.items():
        # A profile without a fingerprint is never shared.
        key = detector.merchant_stats.fingerprint or algorithm
        if key not in by_profile:
            by_profile[key] = compute_features(
                frame,
                lookback=lookback_seconds(),
                merchant_stats=detector.merchant_stats,
                merchant_recent=merchant_recent,
                calendar=needs_calendar(detector.features),
                rows=rows,
                vocabularies=vocabularies,
            )
        profile_of[algorithm] = key
    newest = max(detectors, key=lambda algorithm: detectors[algorithm].version_id)
    return DetectorFeatures(by_profile, profile_of, profile_of[newest])


# From this many rows on, an online batch splits the scoring that runs without
# the GIL (LOF's neighbour search) between this thread and a helper, so both
# cores work on one large request; below it the hand-over costs more. Both
# models, one thread each: 64 rows 1.6 ms whole against 1.7 split, 100 rows
# 2.2 against 2.0, 256 rows 4.4 against 3.0.
SPLIT_ROWS = 100
# The helper's share of a split detector's rows when this thread also scores
# detectors that hold the GIL (Isolation Forest: about a third of LOF's cost
# on a batch), which it does first: both threads then finish together, 8.8 ms
# against 10.2 for halves on a batch of 1,000. Alone, a detector is halved.
_HELPER_SHARE_BESIDE_OTHERS = 2 / 3


@cache
def _helper_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-helper")


class ModelScores(NamedTuple):
    """Each detector's scores for a set of rows, and how long each took."""

    scores: dict[str, np.ndarray]
    seconds: dict[str, float]

    def record(self, detectors: dict[str, Detector]) -> None:
        """Count the verdicts and the time in the prediction metrics."""
        for algorithm, scores in self.scores.items():
            anomalies = int(detectors[algorithm].is_anomaly(scores).sum())
            metrics.record_predictions(
                algorithm, anomalies, len(scores) - anomalies, self.seconds[algorithm]
            )


def score_rows(
    detectors: dict[str, Detector],
    features: DetectorFeatures,
    *,
    record: bool = True,
    split: bool = False,
) -> dict[str, np.ndarray]:
    """Each detector's scores for the rows of ``features``, counted in the
    metrics unless ``record`` is false (see ``timed_scores``)."""
    scored = timed_scores(detectors, features, split=split)
    if record:
        scored.record(detectors)
    return scored.scores


def timed_scores(
    detectors: dict[str, Detector], features: DetectorFeatures, *, split: bool = False
) -> ModelScores:
    """Each detector's scores for the rows of ``features``; with ``split``,
    part of each GIL-free detector's rows are scored in a helper thread
    meanwhile (each part in one thread, as OMP_NUM_THREADS has it)."""
    share = _split_share(detectors) if split else 0.0
    return _ScoresUnderWay(detectors, features, helper_share=share).finish()


def _split_share(detectors: dict[str, Detector]) -> float:
    """The helper's share of each GIL-free detector's rows when both threads
    score them."""
    apart = sum(detector.releases_gil for detector in detectors.values())
    return _HELPER_SHARE_BESIDE_OTHERS if apart < len(detectors) else 1 / 2


def _scored(detector: Detector, X: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    scores = detector.score(X)
    return scores, time.perf_counter() - started


class _ScoresUnderWay:
    """A batch's scores in the making: the first ``helper_share`` of each
    GIL-free detector's rows go to the helper thread at once (from
    ``SPLIT_ROWS`` rows on); this thread scores the other detectors at once
    (``here``), then, in ``finish``, the rest of the shared ones.

    The others hold the GIL between short stretches without it (Isolation
    Forest: one call per tree), and this thread scores them whole. Halved
    between the two threads they took 2.6 against 2.9 ms for a batch of
    1,000, but the helper's half held LOF back by as much, and a stored
    batch then waited 1.7 ms for LOF after its insert; whole, none
    (bench.compare: 1.8 and 3.6 ms a batch faster, in 22 and 25 of 40 pairs).
    """

    def __init__(
        self, detectors: dict[str, Detector], features: DetectorFeatures, *, helper_share: float
    ) -> None:
        self.detectors = detectors
        self.matrices = {
            a: feature_matrix(features.of(a), d.features) for a, d in detectors.items()
        }
        self.cuts = {
            a: int(len(self.matrices[a]) * helper_share)
            for a, d in detectors.items()
            if helper_share and d.releases_gil and len(self.matrices[a]) >= SPLIT_ROWS
        }
        self.helped: dict[str, Future[tuple[np.ndarray, float]]] = {
            a: _helper_thread().submit(_scored, detectors[a], self.matrices[a][:cut])
            for a, cut in self.cuts.items()
        }
        self.here: dict[str, np.ndarray] = {}
        self.seconds: dict[str, float] = {}
        for algorithm, detector in detectors.items():
            if algorithm not in self.cuts:
                self.here[algorithm], self.seconds[algorithm] = _scored(
                    detector, self.matrices[algorithm]
                )

    def finish(self) -> ModelScores:
        """Every detector's scores, once the helper's part is in."""
        scores = dict(self.here)
        for algorithm, cut in self.cuts.items():
            rest, seconds = np.zeros(0), 0.0
            if cut < len(self.matrices[algorithm]):
                rest, seconds = _scored(self.detectors[algorithm], self.matrices[algorithm][cut:])
            helped, helper_seconds = self.helped[algorithm].result()
            scores[algorithm] = np.concatenate([helped, rest])
            # The parts ran side by side: the slower one is how long it took.
            self.seconds[algorithm] = max(seconds, helper_seconds)
        return ModelScores(
            {a: scores[a] for a in self.detectors}, {a: self.seconds[a] for a in self.detectors}
        )


@dataclass(frozen=True)
class _Verdicts:
    """Scores and verdicts of a batch, as arrays aligned with its rows."""

    pks: np.ndarray
    transaction_ids: np.ndarray
    scores: dict[str, np.ndarray]
    is_anomaly: dict[str, np.ndarray]
    flagged: np.ndarray
    reasons: list[list[str]]


def _verdicts(
    detectors: dict[str, Detector],
    scores: dict[str, np.ndarray],
    reasons: list[list[str]],
    targets: Columns,
    rule: str | None,
) -> _Verdicts:
    is_anomaly = {a: detectors[a].is_anomaly(scores[a]) for a in detectors}
    return _Verdicts(
        pks=targets["pk"],
        transaction_ids=targets["transaction_id"],
        scores=scores,
        is_anomaly=is_anomaly,
        flagged=flag_rule(rule)(np.vstack(list(is_anomaly.values()))),
        reasons=reasons,
    )


def _results(detectors: dict[str, Detector], verdicts: _Verdicts, *, stored: bool) -> ScoredBatch:
    return ScoredBatch(
        transaction_ids=verdicts.transaction_ids.tolist(),
        flagged=verdicts.flagged.tolist(),
        models={
            algorithm: ModelColumn(
                detector.version_id,
                detector.version,
                detector.threshold,
                verdicts.scores[algorithm].tolist(),
                verdicts.is_anomaly[algorithm].tolist(),
            )
            for algorithm, detector in detectors.items()
        },
        reasons=verdicts.reasons,
        stored=stored,
        pks=[pk if pk >= 0 else None for pk in verdicts.pks.tolist()],
    )


def _persist(
    detectors: dict[str, Detector],
    verdicts: _Verdicts,
    novelty: np.ndarray,
    *,
    all_models: bool,
    mark: np.ndarray | None = None,
) -> None:
    """Store the predictions of every row and record novelty and verdict on
    the ``mark`` rows (a mask; all when None)."""
    pks = verdicts.pks.tolist()
    # In primary-key order, then by version, like the insert: no deadlock
    # between racing requests. Laid out so, not sorted (0.2 against 0.6 ms).
    by_key = np.argsort(verdicts.pks, kind="stable")
    in_order = by_key.tolist()
    # The reasons column is JSON; orjson encodes a list of sentences 5-10x
    # faster than the json module, which cost 4 ms for a batch of 1,000.
    reasons = [orjson.dumps(verdicts.reasons[i]).decode() for i in in_order]
    keys = verdicts.pks[by_key].tolist()
    per_model = [
        zip(
            keys,
            [detector.version_id] * len(pks),
            verdicts.scores[algorithm][by_key].tolist(),
            [detector.threshold] * len(pks),
            verdicts.is_anomaly[algorithm][by_key].tolist(),
            reasons,
            strict=True,
        )
        for algorithm, detector in sorted(detectors.items(), key=lambda pair: pair[1].version_id)
    ]
    rows = [row for same_key in zip(*per_model, strict=True) for row in same_key]
    predictions_upsert(rows=rows)
    # The same key order for the rows' marks.
    order = in_order if mark is None else by_key[mark[by_key]].tolist()
    novelties, verdicts_flagged = novelty.tolist(), verdicts.flagged.tolist()
    transactions_mark(
        rows=[(pks[i], novelties[i]) for i in order],
        flagged=[verdicts_flagged[i] for i in order] if all_models else None,
    )


# SQLite lets one connection write at a time; a thread that finds the file
# locked sleeps 1, 2, 5, … ms before it tries again. The threads of one process
# queue here instead, each woken the moment the writer before it commits.
_sqlite_writer = threading.Lock()


@contextmanager
def _write_turn() -> Iterator[None]:
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_writer:
        yield


# A second attempt finds every id stored and stores nothing, so it cannot lose
# a race again unless rows are deleted meanwhile.
_ATTEMPTS = 3


def transactions_score(
    *,
    items: Sequence[TransactionIn],
    algorithms: tuple[str, ...] | None = None,
    persist: bool = True,
    rule: str | None = None,
) -> ScoredBatch:
    """Score incoming transactions against their accounts' stored history.

    With ``persist`` the new transactions are stored with their verdicts and
    predictions, in one write after scoring; an id already stored is not
    stored again, its stored record is scored instead. The result is in input
    order. Raises NoActiveModel / ArtifactError when a requested model is
    unusable.
    """
    detectors = active_detectors(algorithms)
    for number in range(_ATTEMPTS):
        # A single transaction is taken for new at first, as nearly every one
        # is: its insert tells otherwise, and the next attempt looks it up.
        # That spares most requests a query (0.1 ms of about 3), and costs a
        # re-sent one a second scoring.
        look_up = number > 0 or len(items) > 1
        attempt = _score_batch(detectors, items, persist=persist, rule=rule, look_up=look_up)
        if attempt is not None:
            break
        # Another request stored some of these ids between this one's look-up
        # and its write. Score the batch again: those ids are stored now, and
        # their stored records are what counts.
    else:
        raise RuntimeError(f"lost {_ATTEMPTS} races to store the same transactions")
    results, new, model_scores = attempt
    # Counted once the attempt stands: a lost race scores the batch again.
    model_scores.record(detectors)
    flagged = sum(results.flagged)
    metrics.record_batch(len(results), flagged)
    if flagged:
        log.info(
            "transactions.flagged",
            count=flagged,
            batch=len(results),
            new=new,
            transaction_ids=list(compress(results.transaction_ids, results.flagged))[:20],
        )
    return results


class _Attempt(NamedTuple):
    """What an attempt at scoring a batch gave: the results, how many
    transactions it stored, and the models' scores."""

    results: ScoredBatch
    stored: int
    scores: ModelScores


def _score_batch(
    detectors: dict[str, Detector],
    items: Sequence[TransactionIn],
    *,
    persist: bool,
    rule: str | None,
    look_up: bool = True,
) -> _Attempt | None:
    """One attempt of ``transactions_score``, or None when some of the ids
    were stored already: by another request meanwhile, or before it when
    not ``look_up``, which takes every id for new."""
    targets = frame_from_items(items)
    ids = [item.transaction_id for item in items]
    if persist and not look_up:
        stored_pks = np.zeros(0, dtype=np.int64)
    elif persist:
        stored = stored_transactions(transaction_ids=ids)
        stored_pks = stored["pk"]
        if len(stored_pks):
            # An id stored before is scored as stored, not as sent this time.
            both = columns_concat([targets, stored])
            position = {tx_id: row for row, tx_id in enumerate(both["transaction_id"])}
            targets = columns_take(both, np.array([position[tx_id] for tx_id in ids]))
    else:
        stored_pks = None
    frame = recent_history(
        targets=targets,
        stored_pks=stored_pks,
        since=_utc(int(targets["ts"].min()) - lookback_seconds()),
        before=_utc(int(targets["ts"].max()) + 1),
    )
    recent = merchant_recent(
        merchant_ids=targets["merchant_id"],
        since=_utc(int(targets["ts"].min()) - MERCHANT_BURST_WINDOW),
        before=_utc(int(targets["ts"].max()) + 1),
        exclude_account_ids=targets["account_id"],
    )
    features = detector_features(
        detectors,
        frame.columns,
        rows=slice(frame.first_target, None),
        merchant_recent=recent,
        vocabularies=frame.vocabularies,
    )
    # When storing, the GIL-free detectors (LOF) score whole in the helper
    # thread while this one scores the others, explains and inserts the new
    # transactions: the insert mostly waits on SQLite without the GIL, and the
    # helper's part is in by the time the predictions are written. A batch of
    # 1,000 no longer waits for LOF before its write. Otherwise both threads
    # share LOF's rows.
    under_way = _ScoresUnderWay(
        detectors, features, helper_share=1.0 if persist else _split_share(detectors)
    )
    reasons = explain(features.for_reasons, targets, merchant_fraud_counts(targets))
    if not persist:
        scored = under_way.finish()
        verdicts = _verdicts(detectors, scored.scores, reasons, targets, rule)
        return _Attempt(_results(detectors, verdicts, stored=False), 0, scored)
    novelty = features.for_reasons["merchant_novelty"]
    all_models = set(detectors) == set(Algorithm.values)
    # The verdict of the detectors scored so far, under the rule, goes in with
    # the new rows; the few rows the others overturn are corrected below.
    early = under_way.here
    provisional = (
        flag_rule(rule)(np.vstack([detectors[a].is_anomaly(early[a]) for a in early])).tolist()
        if all_models and early
        else [None] * len(ids)
    )
    novelties = novelty.tolist()
    # Written in id order whatever the request's order, so requests with
    # overlapping ids take their row locks in one order and cannot deadlock
    # each other (PostgreSQL).
    new = sorted(np.flatnonzero(targets["pk"] < 0).tolist(), key=ids.__getitem__)
    with _write_turn(), transaction.atomic():
        inserted = transactions_insert(
            items=[items[i] for i in new],
            scored=[(novelties[i], provisional[i]) for i in new],
        )
        if len(inserted) < len(new):
            return None
        scored = under_way.finish()
        pks = targets["pk"].copy()
        pks[new] = [inserted[ids[i]] for i in new]
        verdicts = replace(_verdicts(detectors, scored.scores, reasons, targets, rule), pks=pks)
        mark = np.isin(pks, stored_pks)
        if all_models:
            flagged = verdicts.flagged.tolist()
            mark[[i for i in new if flagged[i] != provisional[i]]] = True
        _persist(detectors, verdicts, novelty, all_models=all_models, mark=mark)
    # Committed: the worker's copy can hold them without reading them back.
    hold_stored(frame, np.array(new, dtype=np.int64), pks[new])
    return _Attempt(_results(detectors, verdicts, stored=True), len(inserted), scored)


def _scores_in_one_thread(
    detectors: dict[str, Detector], features: DetectorFeatures
) -> dict[str, np.ndarray]:
    # Each thread of batch scoring has one core: OpenMP and BLAS threads in
    # scikit-learn's neighbour search would compete with the other thread.
    with threadpool_limits(limits=1):
        return score_rows(detectors, features)


@dataclass
class BatchScoreSummary:
    scored: int = 0
    flagged: int = 0
    skipped: int = 0
    seconds: float = 0.0
    per_model_anomalies: dict[str, int] = field(default_factory=dict)


def stored_transactions_score(
    *,
    since: datetime | None = None,
    rescore: bool = False,
    chunk_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> BatchScoreSummary:
    """Score stored transactions with the active versions, chunk by chunk.

    Each chunk commits on its own and, unless ``rescore``, transactions that
    already have a prediction from every active version are skipped, so an
    interrupted run resumes where it stopped.
    """
    started = time.perf_counter()
    detectors = active_detectors()
    lookback = lookback_seconds()
    queryset = Transaction.objects.all()
    if since is not None:
        queryset = queryset.filter(timestamp__gte=since - timedelta(seconds=lookback))
    frame = frame_from_queryset(queryset, features_only=True)
    summary = BatchScoreSummary(per_model_anomalies=dict.fromkeys(detectors, 0))
    if not columns_length(frame):
        return summary
    features = detector_features(detectors, frame)
    wanted = np.ones(columns_length(frame), dtype=bool)
    if since is not None:
        wanted &= frame["ts"] >= int(since.timestamp())
    if not rescore:
        done = np.fromiter(
            Prediction.objects.filter(
                model_version_id__in=[d.version_id for d in detectors.values()]
            )
            .values("transaction_id")
            .annotate(n=Count("id"))
            .filter(n=len(detectors))
            .values_list("transaction_id", flat=True),
            dtype=np.int64,
        )
        already = np.isin(frame["pk"], done) & wanted
        summary.skipped = int(already.sum())
        wanted &= ~already
    positions = np.flatnonzero(wanted)
    chunks = [positions[i : i + chunk_size] for i in range(0, len(positions), chunk_size)]

    # Models whose scoring releases the GIL (LOF's neighbour search, most of
    # the work) score the next chunk in a second thread while this one scores
    # the rest, explains and writes the current chunk: both cores work, and
    # neither thread waits on the other for the GIL.
    apart = {a: d for a, d in detectors.items() if d.releases_gil}
    here = {a: d for a, d in detectors.items() if a not in apart}

    def submit(
        pool: ThreadPoolExecutor, rows: np.ndarray
    ) -> tuple[np.ndarray, DetectorFeatures, Future[dict[str, np.ndarray]]]:
        chunk_features = features.take(rows)
        return rows, chunk_features, pool.submit(_scores_in_one_thread, apart, chunk_features)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score") as pool:
        pending = submit(pool, chunks[0]) if chunks else None
        for index in range(len(chunks)):
            assert pending is not None
            rows, chunk_features, scored = pending
            scores = scored.result()
            if index + 1 < len(chunks):
                pending = submit(pool, chunks[index + 1])
            scores |= _scores_in_one_thread(here, chunk_features)
            scores = {algorithm: scores[algorithm] for algorithm in detectors}
            chunk_frame = columns_take(frame, rows)
            reasons = explain(
                chunk_features.for_reasons, chunk_frame, merchant_fraud_counts(chunk_frame)
            )
            verdicts = _verdicts(detectors, scores, reasons, chunk_frame, rule=None)
            with transaction.atomic():
                _persist(
                    detectors,
                    verdicts,
                    chunk_features.for_reasons["merchant_novelty"],
                    all_models=True,
                )
            summary.scored += len(rows)
            summary.flagged += int(verdicts.flagged.sum())
            for algorithm in detectors:
                summary.per_model_anomalies[algorithm] += int(verdicts.is_anomaly[algorithm].sum())
            if progress is not None:
                progress(len(rows))
    summary.seconds = time.perf_counter() - started
    log.info(
        "transactions.scored",
        scored=summary.scored,
        flagged=summary.flagged,
        skipped=summary.skipped,
        seconds=round(summary.seconds, 3),
    )
    return summary
