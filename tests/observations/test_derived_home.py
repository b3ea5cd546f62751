"""The home page shows the province's computed value where the province sent none, marked as computed."""

from __future__ import annotations

import re

import pytest
from derived_support import ON_TIME, PROVINCE, RATE, RECEIVED, RESOLVED, communes, observation, seed, seed_rates

from conftest import AgencyKey, login, make_key


@pytest.fixture
def igate(database, clock) -> AgencyKey:
    return make_key(
        database,
        clock(),
        agency="trung_tam_phuc_vu_hcc",
        feed="igate_home",
        indicators=[RATE, ON_TIME, RESOLVED, RECEIVED],
    )


def row(html: str, indicator: str) -> str:
    """The table row of one indicator, tags removed and spaces collapsed."""
    found = re.search(rf'<tr data-indicator="{re.escape(indicator)}">(.*?)</tr>', html, flags=re.S)
    assert found is not None, indicator
    return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())


def test_a_ratio_with_only_its_parts_shows_the_computed_province_value(
    client, database, personas, igate: AgencyKey
) -> None:
    a, b, c = communes(database, 3)
    seed_rates(client, igate, {a: (90, 100), b: (40, 50), c: (5, 10)})
    login(client, "leader")

    page = client.get("/").text
    english = client.get("/partials/home-values", params={"lang": "en"}).text

    # 135 of 160 dossiers on time: 84.38 %, computed from 3 of the 130 communes.
    assert row(page, RATE).endswith("84,38 tính toán 2026-10 3/130 xã, phường")
    assert row(english, RATE).endswith("84.38 computed 2026-10 3 of 130 communes")
    assert row(page, RESOLVED).endswith("160 tính toán 2026-10 3/130 xã, phường")  # a sum rolled up
    assert "Chưa có dữ liệu" in row(page, RECEIVED)


def test_a_stored_province_value_is_shown_as_before(client, database, personas, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    seed_rates(client, igate, {a: (90, 100)})
    seed(client, igate, observation(RATE, PROVINCE, 97.6))
    login(client, "leader")

    shown = row(client.get("/").text, RATE)

    assert "97,6 2026-10" in shown
    assert "tính toán" not in shown


def test_a_zero_denominator_shows_no_value_on_the_home_page(client, database, personas, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    seed_rates(client, igate, {a: (0, 0)})
    login(client, "operator")

    page = client.get("/")

    assert page.status_code == 200
    assert "Chưa có dữ liệu" in row(page.text, RATE)
    assert row(page.text, RESOLVED).endswith("0 tính toán 2026-10 1/130 xã, phường")
