"""Page forms: they collect input and hand it to the shared schema and services.

Transaction values are judged by ``detection.schema`` only (no Django field
checks run on them), so a field shows exactly the message the API gives for
the same value; review values are judged by ``detection.reviews``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from detection.models import Algorithm, Channel, ModelVersion, Occupation, TransactionType
from detection.schema import InvalidTransactions, TransactionIn, validate_batch
from detection.selectors import TransactionFilters

MAX_FORM_TRANSACTIONS = 10
BOTH = "both"
ALGORITHM_CHOICES = [
    (BOTH, "Both models (Isolation Forest and LOF)"),
    (Algorithm.ISOLATION_FOREST.value, "Isolation Forest only"),
    (Algorithm.LOCAL_OUTLIER_FACTOR.value, "Local Outlier Factor only"),
]


def algorithms_of(choice: str) -> tuple[str, ...] | None:
    """The ``algorithms`` argument of transactions_score for a form choice."""
    return None if choice == BOTH else (choice,)


class PageForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignInForm(AuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class RawField(forms.CharField):
    """Text passed through untouched: the schema judges it, and its message
    (not Django's, not even for a null character) is the one shown."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)
        self.validators = []


def _text(**attrs: str) -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", **attrs})


def _number(**attrs: str) -> forms.NumberInput:
    return forms.NumberInput(attrs=attrs)


def _when() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})


def _select(values: list[str]) -> forms.Select:
    # The values themselves are the labels: "ATM", not Django's "Atm".
    return forms.Select(choices=[(value, value) for value in values])


class TransactionForm(PageForm):
    transaction_id = RawField(label="Transaction ID", widget=_text(maxlength="32"))
    account_id = RawField(label="Account ID", widget=_text(maxlength="32"))
    amount = RawField(
        label="Amount", widget=_number(min="0", max="1000000", step="0.01", inputmode="decimal")
    )
    timestamp = RawField(label="Date and time (UTC)", widget=_when())
    transaction_type = RawField(label="Type", widget=_select(TransactionType.values))
    channel = RawField(label="Channel", widget=_select(Channel.values))
    location = RawField(label="Location", widget=_text(maxlength="64"))
    device_id = RawField(label="Device ID", widget=_text(maxlength="32"))
    ip_address = RawField(label="IP address", widget=_text(maxlength="45"))
    merchant_id = RawField(label="Merchant ID", widget=_text(maxlength="32"))
    customer_age = RawField(label="Customer age", widget=_number(min="18", max="120", step="1"))
    customer_occupation = RawField(label="Occupation", widget=_select(Occupation.values))
    duration_seconds = RawField(
        label="Duration (seconds)", widget=_number(min="0", max="10000", step="1")
    )
    login_attempts = RawField(label="Login attempts", widget=_number(min="0", max="10", step="1"))
    account_balance = RawField(
        label="Balance after",
        widget=_number(min="0", max="10000000", step="0.01", inputmode="decimal"),
    )
    previous_transaction_at = RawField(label="Previous transaction (UTC, optional)", widget=_when())

    def schema_data(self) -> dict[str, str]:
        """The values given, as the schema's input; a blank field is a missing one."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name in self.fields and name != "DELETE" and isinstance(value, str) and value.strip()
        }


def transaction_defaults(*, now: datetime | None = None) -> dict[str, str]:
    """Values to start from: the public data set's first row (as the earlier
    UI offered) at the current time, under a fresh transaction id."""
    now = (now or datetime.now(tz=UTC)).replace(microsecond=0)
    return {
        "transaction_id": f"WEB{now:%y%m%d%H%M%S}{secrets.token_hex(2).upper()}",
        "account_id": "AC00128",
        "amount": "14.09",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "transaction_type": TransactionType.DEBIT.value,
        "channel": Channel.ATM.value,
        "location": "San Diego",
        "device_id": "D000380",
        "ip_address": "162.198.218.92",
        "merchant_id": "M015",
        "customer_age": "70",
        "customer_occupation": Occupation.DOCTOR.value,
        "duration_seconds": "81",
        "login_attempts": "1",
        "account_balance": "5112.21",
        "previous_transaction_at": "",
    }


class BaseTransactionFormSet(forms.BaseFormSet):
    default_error_messages = {
        **forms.BaseFormSet.default_error_messages,
        "too_few_forms": "Keep at least %(num)d transaction.",
        "too_many_forms": "At most %(num)d transactions at once.",
    }

    def kept_forms(self) -> list[TransactionForm]:
        """The forms not marked to be left out (call after is_valid)."""
        return [form for form in self.forms if not self._should_delete_form(form)]

    def validated_items(self) -> list[TransactionIn] | None:
        """The kept transactions through the shared schema, as one batch (so a
        repeated id is caught too). On failure each message is put beside its
        field and None returned."""
        if not self.is_valid():
            return None
        kept = self.kept_forms()
        try:
            return validate_batch(
                [form.schema_data() for form in kept], max_items=MAX_FORM_TRANSACTIONS
            )
        except InvalidTransactions as exc:
            for error in exc.errors:
                if error.index is None:
                    self.batch_errors.append(error.message)
                    continue
                form = kept[error.index]
                field = error.field if error.field in form.fields else None
                message = error.message if field or error.field == "__all__" else str(error)
                form.add_error(field, message)
            return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_errors: list[str] = []


TransactionFormSet = forms.formset_factory(
    TransactionForm,
    formset=BaseTransactionFormSet,
    extra=0,
    min_num=1,
    max_num=MAX_FORM_TRANSACTIONS,
    absolute_max=MAX_FORM_TRANSACTIONS,
    validate_min=True,
    validate_max=True,
    can_delete=True,
)


class ScoreOptionsForm(PageForm):
    algorithms = forms.ChoiceField(
        label="Models", choices=ALGORITHM_CHOICES, initial=BOTH, widget=forms.RadioSelect
    )
    store = forms.BooleanField(
        label="Store the transactions and their scores",
        required=False,
        initial=True,
        help_text="Stored transactions appear in the lists and can be reviewed.",
    )


class UploadForm(PageForm):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "The columns of the bank-transactions CSV (TransactionID, AccountID, …) or "
            "their snake_case names; at most 1,000 rows."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    algorithms = forms.ChoiceField(
        label="Models", choices=ALGORITHM_CHOICES, initial=BOTH, widget=forms.RadioSelect
    )
    store = forms.BooleanField(
        label="Store the transactions and their scores",
        required=False,
        initial=False,
        help_text="Leave unticked to score the file without keeping anything.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.UPLOAD_MAX_CSV_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"{upload.name}: the file is larger than {limit:,} bytes", code="too_large"
            )
        return upload


REVIEW_CHOICES = [
    ("confirmed_fraud", "Confirmed fraud"),
    ("false_positive", "False positive"),
    ("pending", "Pending (undecided)"),
]


class ReviewForm(PageForm):
    status = RawField(label="Verdict", widget=forms.RadioSelect(choices=REVIEW_CHOICES))
    note = RawField(
        label="Note",
        widget=forms.Textarea(attrs={"rows": "3", "maxlength": "2000"}),
        help_text="What you checked and why; kept in the review history.",
    )


FLAGGED_CHOICES = [("", "Any"), ("yes", "Flagged"), ("no", "Not flagged")]
REVIEW_FILTER_CHOICES = [
    ("", "Any"),
    ("awaiting", "Awaiting review"),
    ("unreviewed", "Never reviewed"),
    ("pending", "Pending"),
    ("confirmed_fraud", "Confirmed fraud"),
    ("false_positive", "False positive"),
]
SORT_CHOICES = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("amount_desc", "Largest amount first"),
    ("amount_asc", "Smallest amount first"),
    ("account", "Account"),
]


class TransactionFilterForm(PageForm):
    account_id = forms.CharField(label="Account", required=False, max_length=32)
    flagged = forms.ChoiceField(label="Flagged", choices=FLAGGED_CHOICES, required=False)
    review_status = forms.ChoiceField(label="Review", choices=REVIEW_FILTER_CHOICES, required=False)
    model_version = forms.TypedChoiceField(
        label="Called anomalous by", coerce=int, required=False, empty_value=None
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(label="Sort", choices=SORT_CHOICES, required=False)

    def __init__(self, *args: Any, model_versions: list[ModelVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].choices = [
            ("", "Any model"),
            *(
                (
                    mv.pk,
                    f"{mv.get_algorithm_display()} v{mv.version}"
                    f"{' (active)' if mv.is_active else ''}",
                )
                for mv in model_versions
            ),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "must not be before the start date")
        return cleaned

    def filters(self) -> TransactionFilters:
        """The filters asked for; a value that did not validate is left out."""
        data = self.cleaned_data if self.is_bound else {}
        flagged = {"yes": True, "no": False}.get(data.get("flagged") or "")
        return TransactionFilters(
            account_id=(data.get("account_id") or "").strip() or None,
            flagged=flagged,
            review_status=data.get("review_status") or None,
            model_version_id=data.get("model_version"),
            since=_day_start(data.get("since")),
            until=_day_start(data["until"] + timedelta(days=1)) if data.get("until") else None,
        )

    def ordering(self) -> str:
        data = self.cleaned_data if self.is_bound else {}
        return data.get("sort") or "newest"


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)
