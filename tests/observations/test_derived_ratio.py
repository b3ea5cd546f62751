"""Ratios computed from their numerator and denominator, per commune and for the province (Σ numerators over
Σ denominators, never the mean of the communes' rates); a stored value wins and the difference shows."""

from __future__ import annotations

import pytest
from derived_support import (
    ON_TIME,
    PROVINCE,
    RATE,
    RECEIVED,
    RESOLVED,
    by_subject,
    commune_count,
    communes,
    observation,
    seed,
    seed_rates,
    values,
)
from observations_support import assert_english, assert_vietnamese

from conftest import AgencyKey, make_key


@pytest.fixture
def igate(database, clock) -> AgencyKey:
    """iGate's key, carrying the parts of the on-time rate and the rate itself."""
    return make_key(
        database,
        clock(),
        agency="trung_tam_phuc_vu_hcc",
        feed="igate_parts",
        indicators=[RATE, ON_TIME, RESOLVED, RECEIVED],
    )


def test_a_ratio_is_computed_per_commune_and_for_the_province_from_the_summed_parts(
    client, database, igate: AgencyKey
) -> None:
    a, b, c = communes(database, 3)
    seed_rates(client, igate, {a: (90, 100), b: (40, 50), c: (5, 10)})

    page = values(client, igate.headers, RATE, period="2026-10")
    rows = by_subject(page)

    assert (page["aggregation"], page["numerator"], page["denominator"]) == ("ratio", ON_TIME, RESOLVED)
    assert list(rows) == [PROVINCE, a, b, c]  # the province first, then the communes by code
    for code, rate in ((a, 90.0), (b, 80.0), (c, 50.0)):
        assert rows[code]["value"] == pytest.approx(rate)
        assert (rows[code]["source"], rows[code]["stored"], rows[code]["reason"]) == ("computed", None, None)
        assert rows[code]["communes_reported"] is None
    province = rows[PROVINCE]
    # 135 on time of 160 resolved is 84.375 %; the mean of 90, 80 and 50 would be 73.3 %.
    assert province["value"] == pytest.approx(84.375)
    assert province["computed"] == pytest.approx(84.375) and province["source"] == "computed"
    assert (province["communes_reported"], province["communes_expected"]) == (3, commune_count(database))
    parts = {part["role"]: part for part in province["parts"]}
    assert (parts["numerator"]["indicator"], parts["numerator"]["value"]) == (ON_TIME, 135)
    assert (parts["denominator"]["indicator"], parts["denominator"]["value"]) == (RESOLVED, 160)
    assert parts["numerator"]["source"] == parts["denominator"]["source"] == "computed"


def test_stored_commune_rates_do_not_enter_the_province_value(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed_rates(client, igate, {a: (90, 100), b: (10, 100)})
    seed(client, igate, observation(RATE, a, 99.0), observation(RATE, b, 99.0))

    rows = by_subject(values(client, igate.headers, RATE, period="2026-10"))

    assert rows[a]["value"] == 99.0 and rows[a]["source"] == "stored" and rows[a]["computed"] == pytest.approx(90)
    assert rows[PROVINCE]["value"] == pytest.approx(50.0)  # 100 of 200, not 99


def test_a_stored_province_value_wins_and_the_difference_is_visible(client, database, igate: AgencyKey) -> None:
    a, b, c = communes(database, 3)
    seed_rates(client, igate, {a: (90, 100), b: (40, 50), c: (5, 10)})
    seed(client, igate, observation(RATE, PROVINCE, 86.0))

    province = values(client, igate.headers, RATE, period="2026-10", subject=PROVINCE)["items"]

    assert len(province) == 1
    [row] = province
    assert (row["value"], row["source"], row["stored"]) == (86.0, "stored", 86.0)
    assert row["computed"] == pytest.approx(84.375)
    assert row["difference"]["absolute"] == pytest.approx(1.625)
    assert row["difference"]["relative"] == pytest.approx(1.625 / 84.375)
    assert row["reason"] is None and row["stored_version"] == 1


def test_a_stored_province_total_that_differs_from_the_communes_sum_shows_both(
    client, database, igate: AgencyKey
) -> None:
    a, b = communes(database, 2)
    seed(client, igate, observation(RECEIVED, a, 100), observation(RECEIVED, b, 60))
    seed(client, igate, observation(RECEIVED, PROVINCE, 170))

    row = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))[PROVINCE]

    assert (row["value"], row["source"], row["stored"], row["computed"]) == (170, "stored", 170, 160)
    assert row["difference"] == {"absolute": 10.0, "relative": pytest.approx(10 / 160)}
    assert row["communes_reported"] == 2


def test_stored_province_parts_win_over_their_roll_up(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed_rates(client, igate, {a: (90, 100), b: (40, 50)})
    seed(client, igate, observation(ON_TIME, PROVINCE, 141))  # the province's own count of on-time dossiers

    row = by_subject(values(client, igate.headers, RATE, period="2026-10"))[PROVINCE]
    parts = {part["role"]: part for part in row["parts"]}

    assert (parts["numerator"]["value"], parts["numerator"]["source"]) == (141, "stored")
    assert (parts["denominator"]["value"], parts["denominator"]["source"]) == (150, "computed")
    assert row["computed"] == pytest.approx(100 * 141 / 150)
    assert row["communes_reported"] == 2  # the denominator was rolled up from two communes


def test_a_zero_denominator_gives_no_value_and_says_why(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed_rates(client, igate, {a: (0, 0)})

    rows = by_subject(values(client, igate.headers, RATE, period="2026-10"))

    for code in (a, PROVINCE):
        assert (rows[code]["value"], rows[code]["source"], rows[code]["computed"]) == (None, None, None)
        assert rows[code]["reason"]["code"] == "denominator_zero"
        assert RESOLVED in rows[code]["reason"]["message_vi"]
        assert_vietnamese(rows[code]["reason"]["message_vi"])
        assert_english(rows[code]["reason"]["message_en"])
    seed_rates(client, igate, {b: (5, 10)})
    rows = by_subject(values(client, igate.headers, RATE, period="2026-10"))
    assert rows[a]["reason"]["code"] == "denominator_zero"
    assert rows[PROVINCE]["value"] == pytest.approx(50.0)


def test_a_missing_part_says_which_one(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed(client, igate, observation(ON_TIME, a, 5), observation(RESOLVED, b, 10))

    rows = by_subject(values(client, igate.headers, RATE, period="2026-10"))

    assert rows[a]["value"] is None and rows[a]["reason"]["code"] == "denominator_missing"
    assert rows[b]["value"] is None and rows[b]["reason"]["code"] == "numerator_missing"
    # The province rolls up 5 on time over 10 resolved, but from different communes: no commune reported both.
    assert rows[PROVINCE]["computed"] == pytest.approx(50.0)
    assert rows[PROVINCE]["communes_reported"] == 0


def test_one_commune_or_a_subject_without_data_can_be_asked_for(client, database, igate: AgencyKey) -> None:
    a, b = communes(database, 2)
    seed_rates(client, igate, {a: (3, 4)})

    [row] = values(client, igate.headers, RATE, period="2026-10", subject=a)["items"]
    [empty] = values(client, igate.headers, RATE, period="2026-10", subject=b)["items"]
    nothing = values(client, igate.headers, RATE, period="2026-09")

    assert (row["subject"], row["value"]) == (a, pytest.approx(75.0))
    assert (empty["subject"], empty["value"], empty["reason"]["code"]) == (b, None, "parts_missing")
    assert nothing["items"] == []


def test_a_null_stored_value_gives_the_senders_reason(client, database, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    seed(client, igate, observation(RECEIVED, a, None, null_reason="Phường chưa chốt số liệu tháng 10"))

    rows = by_subject(values(client, igate.headers, RECEIVED, period="2026-10"))

    assert rows[a]["value"] is None and rows[a]["reason"]["code"] == "stored_null"
    assert "Phường chưa chốt số liệu tháng 10" in rows[a]["reason"]["message_vi"]
    assert rows[PROVINCE]["reason"]["code"] == "no_commune_values"
    assert rows[PROVINCE]["communes_reported"] == 0
