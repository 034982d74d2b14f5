"""One account: its timeline with flagged points, what it is known to use,
and its transactions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from detection.models import Transaction
from tests.dashboard.factories import takeover
from tests.factories import store

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


def flagged_account(scored) -> str:
    return scored.flagged().account_id


def test_it_summarises_the_account(client, user, scored):
    account = flagged_account(scored)
    transactions = Transaction.objects.filter(account_id=account)
    client.force_login(user)
    response = client.get(f"/accounts/{account}/")
    profile = response.context["profile"]
    assert profile.transactions == transactions.count()
    assert profile.flagged == transactions.filter(flagged=True).count() > 0
    assert profile.total_amount == sum(tx.amount for tx in transactions)
    assert f'<h1>Account <span class="mono">{account}</span></h1>' in response.content.decode()


def test_it_draws_the_timeline_with_flagged_points_linking_to_them(client, user, scored):
    account = flagged_account(scored)
    client.force_login(user)
    html = client.get(f"/accounts/{account}/").content.decode()
    start = html.index('<svg class="chart chart-timeline')
    svg = ET.fromstring(html[start : html.index("</svg>", start) + len("</svg>")])
    transactions = Transaction.objects.filter(account_id=account)
    flagged = transactions.filter(flagged=True)
    assert len(svg.findall(f".//{SVG}circle")) == transactions.count() - flagged.count()
    links = {a.get("href") for a in svg.findall(f".//{SVG}a")}
    assert links == {f"/transactions/{tx.transaction_id}/" for tx in flagged}


def test_it_lists_the_devices_locations_merchants_and_addresses_it_used(client, user, scored):
    account = "AC00003"
    transactions = Transaction.objects.filter(account_id=account)
    client.force_login(user)
    response = client.get(f"/accounts/{account}/")
    facts = {title: (distinct, values) for title, distinct, values in response.context["facts"]}
    for title, field in (
        ("Devices", "device_id"),
        ("Locations", "location"),
        ("Merchants", "merchant_id"),
        ("IP addresses", "ip_address"),
    ):
        distinct, values = facts[title]
        used = {getattr(tx, field) for tx in transactions}
        assert distinct == len(used)
        assert {known.value for known in values} <= used
        counts = [known.count for known in values]
        assert counts == sorted(counts, reverse=True)  # most used first
    [location] = facts["Locations"][1]
    assert location.count == 25


def test_it_lists_its_transactions_with_pagination(client, user, scored):
    store([takeover(transaction_id=f"EXTRA{i}", amount=f"{20 + i}.00") for i in range(3)])
    client.force_login(user)
    first = client.get("/accounts/AC00003/")
    assert first.context["page"].paginator.count == 28
    assert len(first.context["rows"]) == 25
    response = client.get("/accounts/AC00003/?page=2")
    rows = [row.transaction for row in response.context["rows"]]
    ordered = Transaction.objects.filter(account_id="AC00003").order_by("-timestamp", "-id")
    assert rows == list(ordered[25:])
    assert 'href="?page=1" rel="prev"' in response.content.decode()


def test_it_answers_404_for_an_account_with_no_transactions(client, user, scored):
    client.force_login(user)
    assert client.get("/accounts/AC99999/").status_code == 404


def test_it_shows_an_account_in_a_bounded_number_of_queries(
    client, user, scored, django_assert_max_num_queries
):
    client.force_login(user)
    with django_assert_max_num_queries(12):
        assert client.get(f"/accounts/{flagged_account(scored)}/").status_code == 200
