"""Decision support on seeded series with known shapes: anomalies (a spike in one commune, a seasonal high month
that is not one, a level shift), projections (linear, seasonal), statuses and reasons, rankings with the change of
rank, the composite index by hand, and the access rule — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from insights_support import (
    CEILING,
    LINEAR,
    PROVINCE,
    RATE,
    SEASON,
    SEASONAL,
    SHIFT,
    SILENT,
    SPIKE,
    anomaly_items,
    communes,
    key,
    progress_items,
    rate_items,
    seasonal_projection_items,
    seed,
)

from cityops.accounts.roles import Principal
from cityops.clock import LOCAL_TZ, FrozenClock
from cityops.db.engine import Database
from cityops.insights import service

LEADER = Principal(role="leader", label="leader")


def local(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=LOCAL_TZ).astimezone(UTC)


def test_known_anomalies_are_found_and_nothing_else(client: TestClient, database: Database, clock: FrozenClock) -> None:
    places = communes(database)
    seed(client, key(database, clock()), anomaly_items(places))
    with database.reading() as session:
        found = service.anomalies(
            session, LEADER, clock(), since=local(2026, 1), indicators=[SPIKE, SEASONAL, SHIFT], province=PROVINCE
        )
    got = {(a.indicator, a.subject, a.kind, a.period_start.astimezone(LOCAL_TZ).strftime("%Y-%m")) for a in found}
    # The spike in the first commune, also seen in the province's total (the sum of its communes); the shift in
    # the second commune and in the province's total; the summer months of the tourist series are not anomalies.
    assert got == {
        (SPIKE, places[0], "spike", "2026-10"),
        (SPIKE, PROVINCE, "spike", "2026-10"),
        (SHIFT, places[1], "level_shift", "2026-10"),
        (SHIFT, PROVINCE, "level_shift", "2026-10"),
    }
    shift = next(a for a in found if a.subject == places[1])
    assert shift.since == local(2026, 7)
    spike = next(a for a in found if a.subject == places[0])
    assert spike.value == 600 and 190 < spike.expected < 210 and spike.score > 3.5
    reason, params = service.anomaly_reason(shift)
    assert "01/07/2026" in service.describe(reason, params, "vi")
    assert "Thay đổi mức kéo dài từ 01/07/2026" in service.describe(reason, params, "vi")
    assert "Sustained change of level since 01/07/2026" in service.describe(reason, params, "en")
    # Short series flag nothing: with only the last six months, no judgement is made.
    with database.reading() as session:
        assert service.anomalies(session, LEADER, clock(), since=local(2026, 1), indicators=["yte.giuong_benh"]) == []


def by_code(items: list[service.Progress]) -> dict[str, service.Progress]:
    return {item.indicator: item for item in items}


def test_projections_statuses_and_reasons(client: TestClient, database: Database, clock: FrozenClock) -> None:
    seed(client, key(database, clock()), progress_items() + seasonal_projection_items())
    with database.reading() as session:
        found = by_code(service.plan_vs_actual(session, LEADER, clock(), province=PROVINCE))
    # A linear series (100, 110, … 190 from January to October): the Theil–Sen line gives 200 and 210 for November
    # and December, so the year's total is projected at 1,860 of 2,500 — off track.
    linear = found[LINEAR]
    assert linear.actual == 1450 and linear.periods_counted == 10 and linear.periods_in_year == 12
    assert linear.projected == pytest.approx(1860)
    assert linear.progress_pct == pytest.approx(100 * 1450 / (2500 * 10 / 12))
    assert (linear.status, linear.reason, linear.params["method"]) == ("off_track", "projected_short", "trend")
    assert linear.as_of == local(2026, 10)
    assert service.describe(linear.reason, linear.params, "vi") == (
        "Dự báo chỉ đạt 74,4% kế hoạch vào 31/12/2026 (1.860 so với 2.500)."
    )
    assert service.describe(linear.reason, linear.params, "en") == (
        "Projected only 74.4% of the target by 31/12/2026 (1,860 against 2,500)."
    )
    # A seasonal series, 10 % above last year each month: November and December are last year's times 1.1.
    seasonal = found[SEASONAL]
    this_year = 880_000 * (7 + sum(SEASON.values()))
    assert seasonal.actual == pytest.approx(this_year)
    assert seasonal.projected == pytest.approx(this_year + 2 * 880_000)
    assert seasonal.params["method"] == "seasonal"
    assert (seasonal.status, seasonal.reason) == ("on_track", "already_met")
    # A ceiling (lower is better): the mean of 103 and 103.1 stays under 104.5.
    ceiling = found[CEILING]
    assert ceiling.actual == pytest.approx(103.05) and (ceiling.status, ceiling.reason) == (
        "on_track",
        "projected_within",
    )
    # Nothing since July: three complete months without data.
    silent = found[SILENT]
    assert (silent.status, silent.reason, silent.params["count"]) == ("no_data", "no_data_periods", 3)
    assert service.describe(silent.reason, silent.params, "vi") == "Không có số liệu 3 kỳ liền, từ sau tháng 07/2026."
    assert service.describe(silent.reason, silent.params, "en") == "No data for 3 periods in a row, since 07/2026."

    # No value at all this year.
    online = found["hcc.ty_le_truc_tuyen"]
    assert (online.status, online.reason, online.actual) == ("no_data", "no_data_year", None)
    assert service.describe(online.reason, online.params, "en") == "No value yet for 2026."


def test_a_ceiling_already_passed_and_a_commune(client: TestClient, database: Database, clock: FrozenClock) -> None:
    places = communes(database, 1)
    items = [
        {"indicator": CEILING, "subject": PROVINCE, "period": f"2026-{m:02d}", "value": 110.0} for m in range(1, 11)
    ]
    items += [
        {"indicator": LINEAR, "subject": places[0], "period": f"2026-{m:02d}", "value": 300} for m in range(1, 11)
    ]
    seed(client, key(database, clock()), items)
    with database.reading() as session:
        province = by_code(service.plan_vs_actual(session, LEADER, clock(), province=PROVINCE, domain="ktxh"))
        commune = by_code(service.plan_vs_actual(session, LEADER, clock(), subject=places[0], domain="ktxh"))
    assert (province[CEILING].status, province[CEILING].reason) == ("off_track", "projected_over")
    assert "vượt mức trần" in service.describe(province[CEILING].reason, province[CEILING].params, "vi")
    # The commune's own series: ten months of 300 — a flat line, 3,600 projected; 3,000 already past 2,500.
    assert commune[LINEAR].subject == places[0] and commune[LINEAR].projected == pytest.approx(3600)
    assert (commune[LINEAR].status, commune[LINEAR].reason) == ("on_track", "already_met")
    assert set(commune) <= set(province)


def test_rankings_with_change_of_rank_and_the_766_index(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    places = communes(database)
    seed(client, key(database, clock()), rate_items(places))
    with database.reading() as session:
        rates = service.ranking(session, LEADER, clock(), RATE, province=PROVINCE)
        index = service.ranking(session, LEADER, clock(), "index.dich_vu_cong", province=PROVINCE)
        with pytest.raises(service.UnknownCode):
            service.ranking(session, LEADER, clock(), "hcc.khong_co", province=PROVINCE)
    assert rates.period_start == local(2026, 10) and rates.previous_period_start == local(2026, 9)
    assert [(r.rank, r.unit, r.value, r.previous_rank, r.change) for r in rates.rows] == [
        (1, places[0], pytest.approx(99), 3, 2),
        (2, places[2], pytest.approx(97), 1, -1),
        (3, places[1], pytest.approx(95), 2, -1),
    ]
    # By hand: on time (20 points), online (12) and satisfaction (18) are present, 50 of 100 points: enough.
    # Commune 0 in October: (20·99 + 12·80 + 18·90) / 50 = 91.2.
    assert [(r.rank, r.unit) for r in index.rows] == [(1, places[0]), (2, places[1]), (3, places[2])]
    assert [r.value for r in index.rows] == [pytest.approx(91.2), pytest.approx(88.4), pytest.approx(84.4)]
    assert [r.previous_value for r in index.rows] == [pytest.approx(89.6), pytest.approx(89.2), pytest.approx(85.2)]
    assert all(r.change == 0 for r in index.rows)


def test_index_arithmetic() -> None:
    definition = service.indices()["index.dich_vu_cong"]
    assert sum(part.weight for part in definition.components) == 100
    assert service.combine(definition, {"hcc.ty_le_dung_han": 50.0}) is None  # 20 of 100 points: too few
    everything = {part.indicator: 100.0 for part in definition.components}
    assert service.combine(definition, everything) == 100
    lower = service.Component("x", 1, best=0, worst=10)
    assert service.score(lower, 2.5) == 75 and service.score(lower, 12) == 0
