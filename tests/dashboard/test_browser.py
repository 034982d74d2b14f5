"""The pages in a real browser: Debian's Chromium driven by Playwright against
a live server. A journey signs in, scores a suspicious transaction, sees it
flagged with reasons, reviews it and finds the review in the admin, saving a
screenshot of every page on the way (tests/screenshots/, git-ignored). Any
console error, page error, failed request or HTTP error fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from detection.models import Review
from detection.training import models_train
from tests.dashboard.factories import build_scored_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "tests" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "staff-pass-123"


@dataclass
class Browser:
    page: object
    base_url: str
    problems: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def follow(self, locator) -> None:
        """Click a link or submit button and wait for the page it leads to
        (even when it comes back to the same address, as after a review)."""
        with self.page.expect_navigation():
            locator.click()

    def sign_in(self, username: str, password: str) -> None:
        self.go("/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.follow(self.page.get_by_role("button", name="Sign in"))
        assert self.page.url == self.base_url + "/"


@pytest.fixture
def launch(live_server, monkeypatch) -> Iterator:
    if not CHROMIUM.exists():
        # CI installs it (.ci/install-tools): there a missing browser is a failure.
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; .ci/install-tools should have installed it")
        pytest.skip("Chromium is not installed here (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes around it are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        contexts = []

        def open_browser(*, javascript: bool = True) -> Browser:
            context = chromium.new_context(viewport=VIEWPORT, java_script_enabled=javascript)
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(15_000)
            browser = Browser(page=page, base_url=live_server.url)
            page.on(
                "console",
                lambda m: (
                    browser.problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: browser.problems.append(f"page error: {e}"))
            page.on(
                "requestfailed",
                lambda r: (
                    browser.problems.append(f"request failed: {r.url} ({r.failure})")
                    # Chromium cancels what a page still fetches (its favicon,
                    # say) when the test clicks on to the next page: that is
                    # the browser's doing, not a failure of the server, whose
                    # errors show as refused or reset connections or as the
                    # HTTP statuses below.
                    if r.failure != "net::ERR_ABORTED"
                    else None
                ),
            )
            page.on(
                "response",
                lambda r: (
                    browser.problems.append(f"HTTP {r.status}: {r.url}")
                    if r.status >= 400
                    else None
                ),
            )
            return browser

        yield open_browser
        for context in contexts:
            context.close()
        chromium.close()
        # Inside sync_playwright() an event loop runs in this thread, so the
        # ORM calls of the test and its data fixture get connections of their
        # own, not the ones pytest-django closes: left open, one held the test
        # database on PostgreSQL past the end of the run ("being accessed by
        # other users" when pytest-django dropped it).
        connections.close_all()


@pytest.fixture
def data(settings, staff):
    settings.ML_IF_N_ESTIMATORS = 60
    return build_scored_history()


def fill_suspicious_transaction(page, transaction_id: str) -> None:
    values = {
        "Transaction ID": transaction_id,
        "Account ID": "AC00003",
        "Amount": "9500.00",
        "Date and time (UTC)": "2024-04-20T03:12:00",
        "Location": "Anchorage",
        "Device ID": "D999999",
        "IP address": "203.0.113.9",
        "Merchant ID": "M077",
        "Login attempts": "5",
        "Balance after": "120.00",
    }
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def test_it_scores_reviews_and_finds_the_review_in_the_admin(launch, data, staff):
    browser = launch()
    page = browser.page

    browser.go("/login/")
    browser.shot("01-login")
    browser.sign_in("staff", PASSWORD)
    expect(page.get_by_role("heading", name="Flagged rate per day")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(3)
    browser.shot("02-overview")

    # Keyboard users reach the content first.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    browser.go("/predict/")
    browser.shot("03-predict")
    fill_suspicious_transaction(page, "BROWSER1")
    browser.follow(page.get_by_role("button", name="Score transactions"))
    row = page.locator("#results tbody tr").first
    expect(row).to_contain_text("Flagged")
    expect(row).to_contain_text("first use of this device by the account")
    expect(page.get_by_text("Scored 1 transaction: 1 flagged; stored.")).to_be_visible()
    browser.shot("04-predict-results")

    browser.follow(row.get_by_role("link", name="BROWSER1"))
    expect(page.locator("h1 .badge-flagged")).to_have_text("Flagged")
    page.get_by_label("Confirmed fraud").check()
    page.get_by_label("Note").fill("Customer confirmed the card was stolen.")
    browser.follow(page.get_by_role("button", name="Save review"))
    expect(page.get_by_text("BROWSER1 marked confirmed fraud.")).to_be_visible()
    browser.shot("05-transaction-reviewed")
    review = Review.objects.get(transaction__transaction_id="BROWSER1")
    assert (review.status, review.reviewer) == ("confirmed_fraud", staff)

    browser.follow(page.get_by_role("link", name="AC00003", exact=True).first)
    assert page.url.endswith("/accounts/AC00003/")
    expect(page.locator("svg.chart-timeline a").first).to_be_attached()
    browser.shot("06-account")

    browser.go("/transactions/?flagged=yes")
    expect(page.locator("tr.is-flagged").first).to_be_visible()
    browser.shot("07-transactions")

    browser.go("/models/")
    browser.shot("08-models")
    browser.follow(page.get_by_role("link", name="v1").first)
    expect(page.get_by_role("heading", name="Score histogram (training)")).to_be_visible()
    browser.shot("09-model")

    browser.go("/admin/detection/review/?q=BROWSER1")
    listed = page.locator("#result_list tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("Confirmed fraud")
    expect(listed.first).to_contain_text("staff")
    browser.shot("10-admin-reviews")
    browser.follow(listed.first.get_by_role("link", name="BROWSER1"))
    expect(page.get_by_text("Customer confirmed the card was stolen.").first).to_be_visible()
    browser.shot("11-admin-transaction")

    assert browser.problems == []


def test_it_lets_staff_roll_back_a_model_after_confirming(launch, data, settings):
    models_train(algorithms=["isolation_forest"])
    older = data.models["isolation_forest"]
    browser = launch()
    page = browser.page
    browser.sign_in("staff", PASSWORD)
    browser.go(f"/models/{older.pk}/")
    browser.follow(page.get_by_role("link", name="Roll back to this version"))
    expect(page.get_by_role("heading", name="Roll back Isolation Forest v1?")).to_be_visible()
    browser.shot("12-model-rollback-confirm")
    browser.follow(page.get_by_role("button", name="Yes, roll back to v1"))
    expect(
        page.get_by_text("Isolation Forest v1 is now the active version (was v2).")
    ).to_be_visible()
    older.refresh_from_db()
    assert older.is_active
    assert browser.problems == []


def test_it_works_without_javascript(launch, data, staff):
    browser = launch(javascript=False)
    page = browser.page
    browser.sign_in("staff", PASSWORD)
    browser.go("/predict/")
    browser.follow(page.get_by_role("button", name="Add another transaction"))
    expect(page.get_by_role("group", name="Transaction 2")).to_be_visible()
    page.get_by_label("Leave this transaction out").nth(1).check()
    fill_suspicious_transaction(page.get_by_role("group", name="Transaction 1"), "NOJS1")
    browser.follow(page.get_by_role("button", name="Score transactions"))
    expect(page.locator("#results tbody tr")).to_have_count(1)
    browser.follow(page.get_by_role("link", name="NOJS1"))
    page.get_by_label("False positive").check()
    browser.follow(page.get_by_role("button", name="Save review"))
    expect(page.get_by_text("NOJS1 marked false positive.")).to_be_visible()
    browser.follow(page.get_by_role("button", name="Sign out"))
    assert page.url.endswith("/login/")
    assert browser.problems == []
