"""The simulator's values: every default indicator, realistic sizes for Nghệ An, consistent parts and wholes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityops.catalog.service import read_catalog
from cityops.demo.simulator import IndicatorPlan, Simulator, _recent_periods
from cityops.geo.service import province_units
from cityops.observations.periods import parse_period, period_of

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    plans = [
        IndicatorPlan(
            i.code, i.owner, i.period, i.aggregation, i.subject_level, i.unit, i.numerator, i.denominator, i.min, i.max
        )
        for file in read_catalog().domains
        for i in file.indicators
    ]
    communes = [unit.code for unit in province_units("40") if unit.kind == "commune"]
    return Simulator("http://127.0.0.1:9", {}, plans, "40", communes, lambda: NOW)


def _province(simulator: Simulator, code: str, period_key: str | None = None) -> float:
    plan = simulator.by_code[code]
    period = period_of(plan.period_type, NOW) if period_key is None else parse_period(period_key)
    return simulator.values(plan, period, NOW, communes=True)["40"]


def test_every_default_indicator_gets_a_province_value_within_its_range(simulator: Simulator) -> None:
    for plan in simulator.plans:
        values = simulator.values(plan, period_of(plan.period_type, NOW), NOW, communes=True)
        assert "40" in values, plan.code
        for value in values.values():
            assert plan.min_value is None or value >= plan.min_value, plan.code
            assert plan.max_value is None or value <= plan.max_value, plan.code


def test_commune_values_add_up_to_the_province_for_sums(simulator: Simulator) -> None:
    plan = simulator.by_code["hcc.ho_so_tiep_nhan"]
    values = simulator.values(plan, period_of("month", NOW), NOW, communes=True)
    communes = [value for code, value in values.items() if code != "40"]
    assert len(communes) == 130
    assert sum(communes) == values["40"]


def test_sizes_are_realistic_for_nghe_an(simulator: Simulator) -> None:
    october = "2026-10"
    assert 40_000 < _province(simulator, "hcc.ho_so_tiep_nhan", october) < 90_000  # dossiers a month
    assert 93 < _province(simulator, "hcc.ty_le_dung_han", october) <= 100  # resolved on time, %
    assert 3_000_000 < _province(simulator, "yte.dan_so") < 3_800_000  # people
    assert 1_400 < _province(simulator, "giaoduc.so_truong", "2025-2026") < 1_800  # schools
    assert 85 < _province(simulator, "yte.ty_le_bao_phu_bhyt") <= 100  # health-insurance coverage, %
    assert _province(simulator, "antt.camera") == 19


def test_tourism_peaks_in_summer(simulator: Simulator) -> None:
    assert _province(simulator, "dulich.tong_luot_khach", "2026-07") > 2 * _province(
        simulator, "dulich.tong_luot_khach", "2026-01"
    )


def test_a_past_period_always_gets_the_same_value(simulator: Simulator) -> None:
    assert _province(simulator, "ktxh.thu_ngan_sach", "2026-03") == _province(
        simulator, "ktxh.thu_ngan_sach", "2026-03"
    )


def test_the_backfill_covers_a_year_of_months_and_three_school_years() -> None:
    assert [period.key for period in _recent_periods("month", NOW, 12)][-2:] == ["2026-10", "2026-11"]
    assert len(_recent_periods("month", NOW, 12)) == 12
    assert [period.key for period in _recent_periods("school_year", NOW, 3)] == ["2024-2025", "2025-2026", "2026-2027"]


@pytest.mark.parametrize("period_key", ["2026-10", "2026-11", "2026-11-26"])
def test_a_part_never_exceeds_its_whole_in_any_commune(simulator: Simulator, period_key: str) -> None:
    """On-time dossiers ≤ dossiers resolved, online cameras ≤ cameras …: else the trust score "đúng" drops."""
    period = parse_period(period_key)
    checked = 0
    for plan in simulator.plans:
        if plan.aggregation != "ratio" or simulator.by_code[plan.numerator].period_type != period.type:
            continue
        parts = simulator.values(simulator.by_code[plan.numerator], period, NOW, communes=True)
        wholes = simulator.values(simulator.by_code[plan.denominator], period, NOW, communes=True)
        for subject, part in parts.items():
            assert part <= wholes[subject], (plan.code, subject, part, wholes[subject])
            checked += 1
    assert checked > 130
