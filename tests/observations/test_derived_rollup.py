"""Commune values rolled up to the province by each indicator's rule, with how complete the roll-up is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from derived_support import PROVINCE, RECEIVED, by_subject, commune_count, communes, observation, seed, values

from conftest import AgencyKey, make_key

POPULATION = "yte.dan_so"  # last, instant: a stock
PRICES = "ktxh.chi_so_gia_tieu_dung"  # mean, month


@pytest.fixture
def statistics(database, clock) -> AgencyKey:
    """The provincial statistics office's key: population and the consumer price index."""
    return make_key(database, clock(), agency="thong_ke_tinh", feed="thong_ke", indicators=[POPULATION, PRICES])


@pytest.fixture
def igate(database, clock) -> AgencyKey:
    return make_key(database, clock(), agency="trung_tam_phuc_vu_hcc", feed="igate_received", indicators=[RECEIVED])


def test_a_sum_rolls_up_and_says_how_many_communes_reported(client, database, igate: AgencyKey) -> None:
    a, b, c = communes(database, 3)
    seed(client, igate, observation(RECEIVED, a, 100), observation(RECEIVED, b, 200), observation(RECEIVED, c, 300))

    rows = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))

    province = rows[PROVINCE]
    assert (province["value"], province["source"], province["stored"]) == (600, "computed", None)
    # 600 from 3 communes of 130 is not a complete province total, and the answer says so.
    assert (province["communes_reported"], province["communes_expected"]) == (3, commune_count(database))
    assert province["communes_expected"] == 130
    assert [rows[code]["value"] for code in (a, b, c)] == [100, 200, 300]
    assert all(rows[code]["source"] == "stored" for code in (a, b, c))


def test_a_commune_without_a_figure_is_not_counted_as_reported(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed(client, igate, observation(RECEIVED, a, 100), observation(RECEIVED, b, None, null_reason="chưa chốt"))

    province = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))[PROVINCE]

    assert (province["value"], province["communes_reported"]) == (100, 1)


def test_values_broken_down_by_dimension_are_not_added_to_the_totals(client, database, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    seed(
        client,
        igate,
        observation(RECEIVED, a, 100),
        observation(RECEIVED, a, 70, dimensions={"kenh": "truc_tuyen"}),
    )

    province = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))[PROVINCE]

    assert province["value"] == 100


def test_last_values_are_each_communes_latest_summed_over_communes(client, database, statistics: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed(
        client,
        statistics,
        observation(POPULATION, a, 1000, "2026-11-27T08:00:00+07:00"),
        observation(POPULATION, a, 1100, "2026-11-27T09:00:00+07:00"),
        observation(POPULATION, b, 2000, "2026-11-27T08:30:00+07:00"),
    )

    day = by_subject(values(client, statistics.headers, POPULATION, period="2026-11-27"))
    month = by_subject(values(client, statistics.headers, POPULATION, period="2026-11"))
    instant = by_subject(values(client, statistics.headers, POPULATION, period="2026-11-27T08:30:00+07:00"))

    # Over a day or a month: each commune's latest figure (1,100 for the first), summed.
    assert (day[PROVINCE]["value"], day[PROVINCE]["communes_reported"]) == (3100, 2)
    assert (day[a]["value"], day[a]["stored_period"]) == (1100, "2026-11-27T02:00:00.000000Z")
    assert month[PROVINCE]["value"] == 3100
    # At one instant: only what was measured then.
    assert (instant[PROVINCE]["value"], instant[PROVINCE]["communes_reported"]) == (2000, 1)
    assert set(instant) == {PROVINCE, b}


def test_a_mean_is_the_unweighted_mean_of_the_communes_that_reported(client, database, statistics: AgencyKey) -> None:
    a, b, c = communes(database, 3)
    seed(client, statistics, observation(PRICES, a, 101), observation(PRICES, b, 102), observation(PRICES, c, 106))

    province = by_subject(values(client, statistics.headers, PRICES, period="2026-10"))[PROVINCE]

    assert province["value"] == pytest.approx(103.0)
    assert (province["source"], province["communes_reported"]) == ("computed", 3)


def test_the_newest_of_two_feeds_is_the_stored_value(client, database, clock, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    other = make_key(database, clock(), agency="trung_tam_phuc_vu_hcc", feed="bao_cao_thang", indicators=[RECEIVED])
    seed(client, igate, observation(RECEIVED, a, 100))
    clock.advance(timedelta(minutes=5))
    seed(client, other, observation(RECEIVED, a, 120))

    rows = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))

    assert rows[a]["value"] == 120 and rows[PROVINCE]["value"] == 120
