"""The transaction store, model versions, predictions and analyst reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class TransactionType(models.TextChoices):
    CREDIT = "Credit"
    DEBIT = "Debit"


class Channel(models.TextChoices):
    ONLINE = "Online"
    ATM = "ATM", "ATM"
    BRANCH = "Branch"


class Occupation(models.TextChoices):
    DOCTOR = "Doctor"
    STUDENT = "Student"
    RETIRED = "Retired"
    ENGINEER = "Engineer"
    OTHER = "Other"


class Algorithm(models.TextChoices):
    ISOLATION_FOREST = "isolation_forest", "Isolation Forest"
    LOCAL_OUTLIER_FACTOR = "local_outlier_factor", "Local Outlier Factor"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED_FRAUD = "confirmed_fraud", "Confirmed fraud"
    FALSE_POSITIVE = "false_positive", "False positive"


class Transaction(models.Model):
    """One bank transaction as received: the 16 columns of the original CSV.

    Scoring reads an account's history with one range scan of the
    (account_id, timestamp) index for a whole batch, so no per-account summary
    table has to be kept in step with late-arriving transactions.
    """

    transaction_id = models.CharField(max_length=32, unique=True)
    account_id = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    timestamp = models.DateTimeField()
    transaction_type = models.CharField(max_length=6, choices=TransactionType.choices)
    location = models.CharField(max_length=64)
    device_id = models.CharField(max_length=32)
    ip_address = models.GenericIPAddressField(unpack_ipv4=True)
    merchant_id = models.CharField(max_length=32)
    channel = models.CharField(max_length=6, choices=Channel.choices)
    customer_age = models.PositiveSmallIntegerField()
    customer_occupation = models.CharField(max_length=8, choices=Occupation.choices)
    duration_seconds = models.PositiveIntegerField()
    login_attempts = models.PositiveSmallIntegerField()
    account_balance = models.DecimalField(max_digits=14, decimal_places=2)
    previous_transaction_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # The verdict of the last scoring by the active versions under the default
    # rule, kept here so listings filter on it without joining predictions.
    flagged = models.BooleanField(null=True, blank=True)
    # How far above its own habits this was spent at a merchant new to the
    # account (see features.py). Kept so a merchant's recent first-time big
    # spenders can be counted without reading every customer's history.
    merchant_novelty = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["account_id", "timestamp"], name="tx_account_time"),
            models.Index(fields=["timestamp"], name="tx_time"),
            # Only the flagged few: scoring sets flagged on every transaction,
            # and a full index made each of those writes update it too (a
            # third of the write's cost). Unflagged listings use tx_time.
            models.Index(fields=["timestamp"], name="tx_flagged_only", condition=Q(flagged=True)),
            # Online scoring reads other accounts' recent transactions at a
            # merchant only where they carry novelty (a few in a hundred): the
            # rest add nothing to merchant_burst, and a busy merchant has
            # thousands of them in its window. Nothing reads all of a
            # merchant's transactions (confirmed frauds are found through
            # their reviews), so no full (merchant, time) index is kept up on
            # every insert.
            models.Index(
                fields=["merchant_id", "timestamp"],
                name="tx_merchant_novel",
                condition=Q(merchant_novelty__gt=0),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(amount__lte=1_000_000), name="tx_amount_range"
            ),
            models.CheckConstraint(
                condition=Q(customer_age__gte=18) & Q(customer_age__lte=120), name="tx_age_range"
            ),
            models.CheckConstraint(
                condition=Q(duration_seconds__lte=10_000), name="tx_duration_range"
            ),
            models.CheckConstraint(condition=Q(login_attempts__lte=10), name="tx_login_range"),
            models.CheckConstraint(
                condition=Q(account_balance__gte=0) & Q(account_balance__lte=10_000_000),
                name="tx_balance_range",
            ),
        ]

    def __str__(self) -> str:
        return self.transaction_id


class ModelVersion(models.Model):
    """A trained detector: its metadata here, its pipeline in an artifact file."""

    algorithm = models.CharField(max_length=32, choices=Algorithm.choices)
    version = models.PositiveIntegerField()
    is_active = models.BooleanField(default=False)
    trained_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict)
    features = models.JSONField(default=list)
    threshold = models.FloatField()
    metrics = models.JSONField(default=dict, blank=True)
    training_rows = models.PositiveIntegerField()
    training_since = models.DateTimeField(null=True, blank=True)
    training_until = models.DateTimeField(null=True, blank=True)
    artifact_path = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    format_version = models.PositiveSmallIntegerField()
    sklearn_version = models.CharField(max_length=32)

    class Meta:
        ordering = ["algorithm", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["algorithm", "version"], name="mv_unique_version"),
            models.UniqueConstraint(
                fields=["algorithm"], condition=Q(is_active=True), name="mv_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} v{self.version}"


class Prediction(models.Model):
    # No single-column indexes on the two keys: pred_unique_pair starts with
    # the transaction and pred_mv_anomaly with the version, so both serve
    # those lookups, and every index less is one B-tree less to write when a
    # million predictions are stored.
    transaction = models.ForeignKey(
        Transaction, on_delete=models.CASCADE, related_name="predictions", db_index=False
    )
    # PROTECT: a version that scored something stays, so every stored verdict
    # can be traced to the exact artifact that produced it.
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions", db_index=False
    )
    score = models.FloatField()
    threshold = models.FloatField()
    is_anomaly = models.BooleanField()
    reasons = models.JSONField(default=list)
    scored_at = models.DateTimeField()

    class Meta:
        ordering = ["-scored_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["transaction", "model_version"], name="pred_unique_pair"
            ),
        ]
        indexes = [models.Index(fields=["model_version", "is_anomaly"], name="pred_mv_anomaly")]

    def __str__(self) -> str:
        return f"{self.transaction_id} by {self.model_version_id}: {self.score:.3f}"


class Review(models.Model):
    """An analyst's current verdict on a transaction; each change is kept as a
    ReviewEvent so the history survives later edits."""

    transaction = models.OneToOneField(Transaction, on_delete=models.CASCADE, related_name="review")
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"], name="review_status")]

    def __str__(self) -> str:
        return f"{self.transaction_id}: {self.status}"


class ReviewEvent(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=ReviewStatus.choices)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.review_id}: {self.status} at {self.created_at:%Y-%m-%d %H:%M}"
