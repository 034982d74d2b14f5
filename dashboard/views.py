"""The analyst pages. Each view parses the request, calls selectors or one
service from ``detection``, and renders; nothing here decides anything."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import figures
from dashboard.forms import (
    ReviewForm,
    ScoreOptionsForm,
    TransactionFilterForm,
    TransactionFormSet,
    UploadForm,
    algorithms_of,
    transaction_defaults,
)
from detection import selectors
from detection.importer import ImportFileError, RejectedRow, read_transactions_csv
from detection.models import Algorithm, ModelVersion, Prediction, Review, Transaction
from detection.registry import ArtifactError, NoActiveModel, model_version_activate
from detection.reviews import ReviewError, review_set, user_can_review
from detection.schema import TransactionIn
from detection.scoring import ScoredTransaction, transactions_score

ALGORITHMS: tuple[str, ...] = tuple(Algorithm.values)
TRANSACTIONS_PER_PAGE = 50
ACCOUNT_TRANSACTIONS_PER_PAGE = 25
OVERVIEW_DAYS = 30
SHOWN_REJECTED_ROWS = 50


# --- object lookups, each with its permission check ----------------------


def _get_model_version_for_user(
    request: HttpRequest, model_version_id: int, *, to_activate: bool = False
) -> ModelVersion:
    if to_activate and not request.user.is_staff:
        raise PermissionDenied("Only staff can activate a model version.")
    model_version = selectors.model_version_get(model_version_id=model_version_id)
    if model_version is None:
        raise Http404("No such model version.")
    return model_version


def _get_transaction_for_user(
    request: HttpRequest, transaction_id: str, *, to_review: bool = False
) -> Transaction:
    if to_review and not user_can_review(request.user):
        raise PermissionDenied("Only analysts and staff can review transactions.")
    transaction = selectors.transaction_get(transaction_id=transaction_id)
    if transaction is None:
        raise Http404("No such transaction.")
    return transaction


def _get_account_for_user(request: HttpRequest, account_id: str) -> selectors.AccountProfile:
    profile = selectors.account_profile(account_id=account_id)
    if profile is None:
        raise Http404("No such account.")
    return profile


# --- rows for tables -----------------------------------------------------


@dataclass(frozen=True)
class TransactionRow:
    transaction: Transaction
    scores: list[Prediction | None]  # one per algorithm, in ALGORITHMS order

    @property
    def review_status(self) -> str | None:
        review = _review_of(self.transaction)
        return review.status if review is not None else None


def _review_of(transaction: Transaction) -> Review | None:
    try:
        return transaction.review
    except Review.DoesNotExist:
        return None


def _rows(transactions: Sequence[Transaction] | Page) -> list[TransactionRow]:
    rows = []
    for transaction in transactions:
        latest = selectors.latest_predictions(transaction)
        rows.append(TransactionRow(transaction, [latest.get(a) for a in ALGORITHMS]))
    return rows


SHORT_NAMES = {Algorithm.ISOLATION_FOREST: "IF", Algorithm.LOCAL_OUTLIER_FACTOR: "LOF"}


def _algorithm_names() -> list[tuple[str, str]]:
    """(short, full) name of each algorithm, in ALGORITHMS order."""
    return [(SHORT_NAMES[Algorithm(a)], Algorithm(a).label) for a in ALGORITHMS]


# --- overview ------------------------------------------------------------


@require_GET
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    days = selectors.transactions_by_day(days=OVERVIEW_DAYS)
    since = datetime.combine(days[0].day, time.min, tzinfo=UTC) if days else None
    active = selectors.active_model_versions()
    distributions = [
        distribution
        for algorithm in ALGORITHMS
        if algorithm in active
        and (
            distribution := selectors.score_distribution(
                model_version=active[algorithm], since=since
            )
        )
        is not None
    ]
    return render(
        request,
        "dashboard/overview.html",
        {
            "counts": selectors.transaction_counts(),
            "days": days,
            "flagged_rate_chart": figures.flagged_rate_chart(days),
            "score_charts": [
                (d.model_version, figures.score_distribution_chart(d)) for d in distributions
            ],
            "awaiting": _rows(selectors.transactions_awaiting_review(limit=10)),
            "algorithm_names": _algorithm_names(),
            "missing_models": [Algorithm(a).label for a in ALGORITHMS if a not in active],
        },
    )


# --- models --------------------------------------------------------------


@require_GET
@login_required
def models_list(request: HttpRequest) -> HttpResponse:
    versions = list(selectors.model_versions_list())
    quality = selectors.model_versions_review_quality()
    groups = [
        {
            "algorithm": Algorithm(algorithm).label,
            "versions": [
                (version, quality.get(version.pk, selectors.ReviewedPredictions()))
                for version in sorted(
                    (v for v in versions if v.algorithm == algorithm), key=lambda v: -v.version
                )
            ],
        }
        for algorithm in ALGORITHMS
    ]
    return render(
        request,
        "dashboard/models_list.html",
        {
            "groups": groups,
            "counts": selectors.transaction_counts(),
            "flag_rule": settings.ML_FLAG_RULE,
        },
    )


@require_GET
@login_required
def model_detail(request: HttpRequest, model_version_id: int) -> HttpResponse:
    version = _get_model_version_for_user(request, model_version_id)
    quality = selectors.model_versions_review_quality(model_version_ids=[version.pk]).get(
        version.pk, selectors.ReviewedPredictions()
    )
    active = selectors.active_model_versions().get(version.algorithm)
    metrics = dict(version.metrics or {})
    return render(
        request,
        "dashboard/model_detail.html",
        {
            "version": version,
            "active": active,
            "quality": quality,
            "predictions": selectors.model_version_prediction_counts(model_version=version),
            "histogram_chart": figures.training_histogram_chart(version),
            "quantiles": sorted((metrics.pop("score_quantiles", None) or {}).items()),
            "other_metrics": sorted(
                (k, v)
                for k, v in metrics.items()
                if k != "score_histogram" and not isinstance(v, dict | list)
            ),
            "params": sorted((version.params or {}).items()),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def model_activate(request: HttpRequest, model_version_id: int) -> HttpResponse:
    version = _get_model_version_for_user(request, model_version_id, to_activate=True)
    active = selectors.active_model_versions().get(version.algorithm)
    if request.method == "POST":
        if version.is_active:
            messages.info(request, f"{_label(version)} is already the active version.")
            return redirect("dashboard:model_detail", model_version_id=version.pk)
        try:
            model_version_activate(model_version=version)
        except ArtifactError as exc:
            messages.error(
                request, f"{_label(version)} was not activated: its artifact {exc.detail}."
            )
            return redirect("dashboard:model_detail", model_version_id=version.pk)
        before = f" (was v{active.version})" if active is not None else ""
        messages.success(request, f"{_label(version)} is now the active version{before}.")
        return redirect("dashboard:model_detail", model_version_id=version.pk)
    return render(
        request,
        "dashboard/model_activate.html",
        {
            "version": version,
            "active": active,
            "is_rollback": active is not None and version.version < active.version,
        },
    )


def _label(version: ModelVersion) -> str:
    return f"{version.get_algorithm_display()} v{version.version}"


# --- predict -------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    item: TransactionIn
    result: ScoredTransaction
    scores: list[Any]  # ModelScore or None, one per algorithm in ALGORITHMS order


def _result_rows(
    items: Sequence[TransactionIn], results: Sequence[ScoredTransaction]
) -> list[ResultRow]:
    return [
        ResultRow(item, result, [result.predictions.get(a) for a in ALGORITHMS])
        for item, result in zip(items, results, strict=True)
    ]


def _predict_page(
    request: HttpRequest,
    *,
    formset: Any = None,
    options: ScoreOptionsForm | None = None,
    upload: UploadForm | None = None,
    results: list[ResultRow] | None = None,
    rejected: list[RejectedRow] | None = None,
    status: int = 200,
) -> HttpResponse:
    if formset is None:
        formset = TransactionFormSet(prefix="tx", initial=[transaction_defaults()])
    return render(
        request,
        "dashboard/predict.html",
        {
            "formset": formset,
            "options": options or ScoreOptionsForm(prefix="options"),
            "upload": upload or UploadForm(prefix="upload"),
            "results": results,
            "result_models": [
                Algorithm(a).label
                for a in ALGORITHMS
                if results and any(r.result.predictions.get(a) for r in results)
            ],
            "rejected": (rejected or [])[:SHOWN_REJECTED_ROWS],
            "rejected_more": max(len(rejected or []) - SHOWN_REJECTED_ROWS, 0),
            "rejected_lines": len({row.line for row in rejected or []}),
            "flag_rule": settings.ML_FLAG_RULE,
            "max_transactions": TransactionFormSet.max_num,
        },
        status=status,
    )


def _score(
    request: HttpRequest, items: list[TransactionIn], *, algorithms: str, store: bool
) -> list[ScoredTransaction] | None:
    """Score through the shared service; a missing or broken model becomes a
    message instead of an error page."""
    try:
        return transactions_score(items=items, algorithms=algorithms_of(algorithms), persist=store)
    except NoActiveModel as exc:
        messages.error(
            request,
            f"No active {Algorithm(exc.algorithm).label} version: train the models first "
            "(manage.py train_models).",
        )
    except ArtifactError as exc:
        messages.error(request, f"The model could not be loaded: {exc}.")
    return None


@require_http_methods(["GET", "POST"])
@login_required
def predict(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _predict_page(request)
    formset = TransactionFormSet(request.POST, prefix="tx")
    options = ScoreOptionsForm(request.POST, prefix="options")
    if not formset.management_form.is_valid():
        # Not something a person can fix in the page: start again.
        messages.error(request, "The form arrived incomplete; please enter the transactions again.")
        return _predict_page(request)
    if "add" in request.POST:
        # Without JavaScript another form is added by sending the page back.
        kept = (
            [
                {k: v for k, v in form.cleaned_data.items() if k != "DELETE"}
                for form in formset.kept_forms()
            ]
            if formset.is_valid()
            else []
        )
        if len(kept) < TransactionFormSet.max_num:
            kept.append(transaction_defaults())
        else:
            messages.warning(request, f"At most {TransactionFormSet.max_num} transactions at once.")
        options.is_valid()
        return _predict_page(
            request, formset=TransactionFormSet(prefix="tx", initial=kept), options=options
        )
    items = formset.validated_items()
    if items is None or not options.is_valid():
        messages.error(request, "Some values need correcting; see the messages beside them.")
        return _predict_page(request, formset=formset, options=options)
    store = options.cleaned_data["store"]
    scored = _score(request, items, algorithms=options.cleaned_data["algorithms"], store=store)
    if scored is None:
        return _predict_page(request, formset=formset, options=options, status=503)
    flagged = sum(result.flagged for result in scored)
    messages.success(
        request,
        f"Scored {len(scored)} transaction{'s' if len(scored) != 1 else ''}: {flagged} flagged"
        + ("; stored." if store else "; nothing stored."),
    )
    if store:
        # The form comes back with fresh ids so a changed value is scored as a
        # new transaction, not answered with the stored one.
        initial = [
            {**form.cleaned_data, "transaction_id": transaction_defaults()["transaction_id"]}
            for form in formset.kept_forms()
        ]
        for row in initial:
            row.pop("DELETE", None)
        formset = TransactionFormSet(prefix="tx", initial=initial)
    return _predict_page(
        request, formset=formset, options=options, results=_result_rows(items, scored)
    )


@require_http_methods(["GET", "POST"])
@login_required
def predict_upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return redirect("dashboard:predict")
    upload = UploadForm(request.POST, request.FILES, prefix="upload")
    if not upload.is_valid():
        return _predict_page(request, upload=upload)
    file = upload.cleaned_data["file"]
    try:
        items, rejected = read_transactions_csv(
            file,
            name=file.name,
            max_bytes=settings.UPLOAD_MAX_CSV_BYTES,
            max_rows=settings.API_MAX_BATCH,
        )
    except ImportFileError as exc:
        upload.add_error("file", str(exc))
        return _predict_page(request, upload=upload)
    if rejected:
        messages.error(
            request,
            f"{file.name}: nothing was scored; fix the rows listed below and upload it again.",
        )
        return _predict_page(request, upload=upload, rejected=rejected)
    if not items:
        upload.add_error("file", f"{file.name}: the file has no transactions")
        return _predict_page(request, upload=upload)
    store = upload.cleaned_data["store"]
    scored = _score(request, items, algorithms=upload.cleaned_data["algorithms"], store=store)
    if scored is None:
        return _predict_page(request, upload=upload, status=503)
    if request.POST.get("output") == "csv":
        return _results_csv(
            items,
            scored,
            filename=f"{slugify(file.name.rsplit('.', 1)[0]) or 'transactions'}-scored.csv",
        )
    flagged = sum(result.flagged for result in scored)
    messages.success(
        request,
        f"{file.name}: scored {len(scored)} transactions, {flagged} flagged"
        + ("; stored." if store else "; nothing stored."),
    )
    return _predict_page(request, upload=upload, results=_result_rows(items, scored))


def _results_csv(
    items: Sequence[TransactionIn], results: Sequence[ScoredTransaction], *, filename: str
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    header = ["transaction_id", "account_id", "amount", "timestamp", "flagged"]
    for algorithm in ALGORITHMS:
        header += [
            f"{algorithm}_model_version",
            f"{algorithm}_score",
            f"{algorithm}_threshold",
            f"{algorithm}_is_anomaly",
        ]
    writer.writerow([*header, "reasons", "stored"])
    for item, result in zip(items, results, strict=True):
        row: list[Any] = [
            item.transaction_id,
            item.account_id,
            item.amount,
            item.timestamp.isoformat(),
            result.flagged,
        ]
        for algorithm in ALGORITHMS:
            score = result.predictions.get(algorithm)
            row += (
                [score.model_version, score.score, score.threshold, score.is_anomaly]
                if score is not None
                else ["", "", "", ""]
            )
        writer.writerow([*row, _cell("; ".join(result.reasons)), result.stored])
    return response


def _cell(text: str) -> str:
    # A spreadsheet would run a cell starting with one of these as a formula.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- transactions --------------------------------------------------------


@require_GET
@login_required
def transactions_list(request: HttpRequest) -> HttpResponse:
    form = TransactionFilterForm(
        request.GET or None, model_versions=list(selectors.model_versions_list())
    )
    if form.is_bound:
        form.is_valid()
    queryset = selectors.transactions_list(filters=form.filters(), ordering=form.ordering())
    page = Paginator(queryset, TRANSACTIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/transactions_list.html",
        {
            "form": form,
            "page": page,
            "rows": _rows(page),
            "algorithm_names": _algorithm_names(),
            "ordering": form.ordering(),
        },
    )


def _transaction_page(
    request: HttpRequest, transaction: Transaction, *, review_form: ReviewForm | None = None
) -> HttpResponse:
    latest = selectors.latest_predictions(transaction)
    review = _review_of(transaction)
    can_review = user_can_review(request.user)
    if can_review and review_form is None:
        review_form = ReviewForm(
            initial={
                "status": review.status if review else "",
                "note": review.note if review else "",
            }
        )
    primary = next((latest[a] for a in ALGORITHMS if a in latest), None)
    return render(
        request,
        "dashboard/transaction_detail.html",
        {
            "transaction": transaction,
            "scores": [(Algorithm(a).label, latest.get(a)) for a in ALGORITHMS],
            "reasons": primary.reasons if primary is not None else [],
            "older_predictions": [
                p for p in transaction.predictions.all() if p not in latest.values()
            ],
            "history": selectors.account_recent_history(transaction=transaction),
            "review": review,
            "events": list(review.events.all()) if review is not None else [],
            "can_review": can_review,
            "review_form": review_form,
        },
    )


@require_GET
@login_required
def transaction_detail(request: HttpRequest, transaction_id: str) -> HttpResponse:
    transaction = _get_transaction_for_user(request, transaction_id)
    return _transaction_page(request, transaction)


@require_POST
@login_required
def transaction_review(request: HttpRequest, transaction_id: str) -> HttpResponse:
    transaction = _get_transaction_for_user(request, transaction_id, to_review=True)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            review = review_set(
                transaction=transaction,
                status=form.cleaned_data["status"],
                note=form.cleaned_data["note"],
                reviewer=request.user,
            )
        except ReviewError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                f"{transaction.transaction_id} marked {review.get_status_display().lower()}.",
            )
            return redirect(
                "dashboard:transaction_detail", transaction_id=transaction.transaction_id
            )
    messages.error(request, "The review was not saved; see the message beside the field.")
    return _transaction_page(request, transaction, review_form=form)


# --- accounts ------------------------------------------------------------


@require_GET
@login_required
def account_detail(request: HttpRequest, account_id: str) -> HttpResponse:
    profile = _get_account_for_user(request, account_id)
    points = selectors.account_timeline(account_id=account_id)
    queryset = selectors.transactions_list(
        filters=selectors.TransactionFilters(account_id=account_id)
    )
    page = Paginator(queryset, ACCOUNT_TRANSACTIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/account_detail.html",
        {
            "profile": profile,
            "facts": [
                ("Devices", profile.distinct["device_id"], profile.known["device_id"]),
                ("Locations", profile.distinct["location"], profile.known["location"]),
                ("Merchants", profile.distinct["merchant_id"], profile.known["merchant_id"]),
                ("IP addresses", profile.distinct["ip_address"], profile.known["ip_address"]),
            ],
            "timeline_chart": figures.account_timeline_chart(
                account_id,
                points,
                lambda tx_id: reverse("dashboard:transaction_detail", args=[tx_id]),
            ),
            "timeline_size": len(points),
            "page": page,
            "rows": _rows(page),
            "algorithm_names": _algorithm_names(),
        },
    )
