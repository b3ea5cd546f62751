"""Decision support (issue 9, points 1–3): plan vs actual with a projection to year end, rankings of communes and
agencies with the change of rank, composite indices, and anomalies found with robust statistics.

Implements the three functions of `insights.contract` with exactly their shapes. Everything is computed from
`observations` (aggregated per bucket in SQL by `insights.series`) and the catalog's targets, direction,
aggregation and period; nothing is written. The methods and their limits are in docs/insights.md.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.catalog.judging import target_of
from cityops.catalog.models import Domain, Indicator
from cityops.clock import LOCAL_TZ
from cityops.i18n import format_number, format_period, translate
from cityops.insights import stats
from cityops.insights.contract import Anomaly, Progress, Ranking, RankRow
from cityops.insights.series import Values, bucket_type, buckets, is_stock, load_values
from cityops.observations import derived
from cityops.observations.periods import Period, parse_period

__all__ = [
    "Anomaly",
    "IndexDef",
    "Progress",
    "RankRow",
    "Ranking",
    "UnknownCode",
    "anomalies",
    "describe",
    "indices",
    "plan_vs_actual",
    "ranking",
]

INDICES_FILE = Path(__file__).parent / "data" / "indices.toml"
PLAN_CODE = "plan.on_track"  # the agencies' ranking by the share of their targets on track
AT_RISK_LEVEL = 0.95  # a level (mean, last, ratio) projected within 5 % of its target is at risk, not off track
AT_RISK_SUM = 0.90  # a year total projected within 10 %
NEUTRAL_ON = 0.05
NEUTRAL_AT_RISK = 0.10
NO_DATA_PERIODS = {"month": 3, "quarter": 2}  # complete periods without a value before the status is no_data
SEASONS = {"month": 12, "quarter": 4}
DAILY_HISTORY_DAYS = 70
SEASONAL_YEARS = 4
DEFAULT_SINCE = timedelta(days=35)


class UnknownCode(LookupError):
    """No indicator the principal may see, nor composite index, has this code."""


# --- common -------------------------------------------------------------------------------------------------


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


@dataclass(frozen=True)
class _Context:
    geography: derived.Geography
    province: derived.Place


def _context(session: Session, province: str | None) -> _Context | None:
    geography = derived.load_geography(session)
    chosen: int | None = None
    if province is not None:
        code = f"{int(province):02d}" if province.isdigit() else province
        chosen = next((p.id for p in geography.places.values() if p.kind == "province" and p.code == code), None)
    else:  # the province watched: the one whose communes are loaded
        with_communes = sorted(geography.communes.items(), key=lambda entry: -len(entry[1]))
        chosen = with_communes[0][0] if with_communes else None
    if chosen is None:
        return None
    return _Context(geography, geography.places[chosen])


def _indicators(
    session: Session, principal: Principal, *, domain: str | None = None, codes: Sequence[str] | None = None
) -> list[tuple[Indicator, str]]:
    """Indicators the principal may see (restricted ones only to their agency and province-wide roles)."""
    query = catalog.visible(select(Indicator, Domain.code).join(Domain, Domain.id == Indicator.domain_id), principal)
    if domain:
        query = query.where(Domain.code == domain)
    if codes is not None:
        query = query.where(Indicator.code.in_(list(codes)))
    rows = session.execute(query.order_by(Domain.sort_order, Indicator.monitored_item, Indicator.code)).all()
    return [(row[0], row[1]) for row in rows]


def _rules(session: Session, indicators: Sequence[Indicator]) -> dict[str, derived.Rule]:
    rules = {indicator.code: derived.Rule.of(indicator) for indicator in indicators}
    missing = {code for rule in rules.values() for code in rule.parts if code not in rules}
    return {**derived.load_rules(session, missing), **rules}


def _local_year(moment: datetime) -> int:
    return moment.astimezone(LOCAL_TZ).year


def describe(reason: str, params: dict[str, Any], language: str) -> str:
    """A reason (insights.reason.<code>) in a language, its numbers written the Vietnamese or English way."""
    shown: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, bool) or value is None or name == "year":
            shown[name] = value
        elif isinstance(value, int):
            shown[name] = format_number(value, language, 0)
        elif isinstance(value, float):
            shown[name] = format_number(value, language, 1 if name == "pct" else 2)
        else:
            shown[name] = value
    if "period" in params and "period_type" in params:
        shown["period"] = format_period(str(params["period_type"]), str(params["period"]), language)
    return translate(f"insights.reason.{reason}", language, **shown)


# --- 1. plan vs actual --------------------------------------------------------------------------------------


def _year_periods(period_type: str, year: int) -> list[Period]:
    if period_type == "quarter":
        return [parse_period(f"{year:04d}-Q{q}") for q in range(1, 5)]
    return [parse_period(f"{year:04d}-{m:02d}") for m in range(1, 13)]


def _aggregate(rule: derived.Rule, values: list[float], nums: list[float | None], dens: list[float | None]) -> float:
    """The year to date of an indicator from its periods' values (and a ratio's parts)."""
    if rule.aggregation == "sum":
        return float(sum(values))
    if rule.aggregation == "mean":
        return float(sum(values) / len(values))
    if rule.is_ratio and rule.period_type != "instant":
        pairs = [(n, d) for n, d in zip(nums, dens, strict=True) if n is not None and d is not None]
        total = sum(d for _, d in pairs)
        if pairs and total:
            return (100.0 if rule.unit == "percent" else 1.0) * sum(n for n, _ in pairs) / total
        return float(sum(values) / len(values))
    return float(values[-1])  # a stock: the latest value


def _forecast(
    rule: derived.Rule, series: list[float | None], complete: list[bool], first: int, count: int
) -> tuple[list[float], str] | None:
    """Forecasts of the year's periods (indices first … first+count−1 of the series, which starts a year before):
    the same periods last year scaled by this year's ratio to them when that fits this year better than a line,
    else the Theil–Sen line. None with fewer than two usable values."""
    known = [(i, float(v)) for i, v in enumerate(series) if v is not None and complete[i]]
    this_year = [(i, v) for i, v in known if i >= first]
    points = (
        this_year if len(this_year) >= 3 else [p for p in known if p[0] < first][-(6 - len(this_year)) :] + this_year
    )
    line = stats.theil_sen(points) if len(points) >= 2 else None
    seasonal: list[float] | None = None
    last_year = [series[i - count] if i - count >= 0 else None for i in range(first, first + count)]
    if all(v is not None for v in last_year) and this_year:
        same = [(v, series[i - count]) for i, v in this_year if series[i - count] is not None]
        base = sum(float(b) for _, b in same if b is not None)
        if same and base:
            scale = sum(v for v, _ in same) / base
            seasonal = [scale * float(v) for v in last_year if v is not None]
    if seasonal is not None and line is not None and len(this_year) >= 3:
        slope, intercept = line
        err_line = sum(abs(v - (intercept + slope * i)) for i, v in this_year) / len(this_year)
        err_season = sum(abs(v - seasonal[i - first]) for i, v in this_year) / len(this_year)
        if err_season <= err_line * (1 + 1e-9):
            return seasonal, "seasonal"
        return [intercept + slope * i for i in range(first, first + count)], "trend"
    if seasonal is not None:
        return seasonal, "seasonal"
    if line is not None:
        slope, intercept = line
        return [intercept + slope * i for i in range(first, first + count)], "trend"
    return None


def _clip(indicator: Indicator, value: float | None) -> float | None:
    if value is None:
        return None
    if indicator.min_value is not None:
        value = max(value, float(indicator.min_value))
    if indicator.max_value is not None:
        value = min(value, float(indicator.max_value))
    return value


def _status(
    indicator: Indicator, actual: float, projected: float | None, target: float
) -> tuple[str, str, dict[str, Any]]:
    """on_track / at_risk / off_track with the reason, by direction (lower_better targets are ceilings)."""
    is_sum = indicator.aggregation == "sum"
    basis = projected if projected is not None else actual
    pct = 100.0 * basis / target if target else None
    params: dict[str, Any] = {"pct": pct, "target": target, "projected": projected, "actual": actual}
    if indicator.direction == "lower_better":
        if is_sum and actual > target:
            return "off_track", "already_past_limit", params
        if basis <= target:
            if actual > target:
                return "at_risk", "currently_over", params
            return "on_track", "projected_within" if projected is not None else "within_limit", params
        margin = (1 / AT_RISK_SUM) if is_sum else (2 - AT_RISK_LEVEL)
        status = "at_risk" if basis <= target * margin else "off_track"
        return status, "projected_over" if projected is not None else "over_limit", params
    if indicator.direction == "neutral":
        gap = abs(basis - target) / abs(target) if target else 0.0
        if gap <= NEUTRAL_ON:
            return "on_track", "near_target", params
        return ("at_risk" if gap <= NEUTRAL_AT_RISK else "off_track"), "away_from_target", params
    if is_sum and actual >= target:
        return "on_track", "already_met", params
    if basis >= target:
        return "on_track", "projected_meets" if projected is not None else "meets", params
    floor = AT_RISK_SUM if is_sum else AT_RISK_LEVEL
    status = "at_risk" if basis >= target * floor else "off_track"
    return status, "projected_short" if projected is not None else "short", params


def _progress_of(
    indicator: Indicator,
    rule: derived.Rule,
    place: derived.Place,
    year: int,
    target: float,
    values: Values,
    subject_id: int,
    now: datetime,
) -> Progress:
    series = values.by_subject.get(subject_id, [])
    periods = values.periods
    end = f"31/12/{year}"
    common: dict[str, Any] = {"indicator": indicator.code, "subject": place.code, "year": year, "target": target}
    common |= {"unit": indicator.unit, "direction": indicator.direction}
    if indicator.period_type in ("year", "school_year"):
        return _yearly_progress(indicator, common, periods, series, year, target, end)
    in_year = [i for i, p in enumerate(periods) if _local_year(p.start) == year]
    count = len(in_year)
    first = in_year[0] if in_year else len(periods)
    counted = [i for i in in_year if series[i] is not None]
    if not counted:
        return Progress(
            **common,
            actual=None,
            as_of=None,
            periods_counted=0,
            periods_in_year=count or 12,
            progress_pct=None,
            projected=None,
            status="no_data",
            reason="no_data_year",
            params={"year": year},
        )
    nums = values.numerators.get(subject_id, [None] * len(periods))
    dens = values.denominators.get(subject_id, [None] * len(periods))
    actual = _aggregate(
        rule,
        [float(v) for i in counted if (v := series[i]) is not None],
        [nums[i] for i in counted],
        [dens[i] for i in counted],
    )
    latest = counted[-1]
    as_of = periods[latest].start
    silent = sum(1 for i in in_year if i > latest and periods[i].end <= now and values.complete[i])
    silent_limit = NO_DATA_PERIODS.get(periods[0].type, 3)
    forecast = None
    if len(in_year) == count:
        forecast = _forecast(rule, series, values.complete, first, count)
    projected: float | None = None
    method = ""
    if forecast is not None:
        predicted, method = forecast
        observed = {i: float(series[i]) for i in counted if series[i] is not None}  # type: ignore[arg-type]
        remaining = [i for i in in_year if i not in observed or not values.complete[i]]
        if rule.aggregation == "sum":
            extra = 0.0
            for i in remaining:
                expected = max(0.0, predicted[i - first])
                extra += max(0.0, expected - observed.get(i, 0.0))
            projected = actual + extra
        elif rule.aggregation == "mean":
            projected = (
                sum(observed.values()) + sum(predicted[i - first] for i in remaining if i not in observed)
            ) / count
        elif is_stock(rule):
            projected = observed[in_year[-1]] if in_year[-1] in observed else predicted[-1]
        else:  # a ratio of flows: the year to date weighted as the periods still to come
            future = [predicted[i - first] for i in remaining if i not in observed]
            projected = (actual * len(observed) + sum(future)) / (len(observed) + len(future))
        projected = _clip(indicator, projected)
    elapsed = latest - first + 1
    if rule.aggregation == "sum":
        to_date = target * elapsed / count if count else target
        pct = 100.0 * actual / to_date if to_date else None
    else:
        pct = 100.0 * actual / target if target else None
    if silent >= silent_limit:
        return Progress(
            **common,
            actual=actual,
            as_of=as_of,
            periods_counted=len(counted),
            periods_in_year=count,
            progress_pct=pct,
            projected=projected,
            status="no_data",
            reason="no_data_periods",
            params={"count": silent, "period_type": periods[0].type, "period": periods[latest].key},
        )
    status, reason, params = _status(indicator, actual, projected, target)
    params |= {"end": end, "method": method, "unit": indicator.unit}
    return Progress(
        **common,
        actual=actual,
        as_of=as_of,
        periods_counted=len(counted),
        periods_in_year=count,
        progress_pct=pct,
        projected=projected,
        status=status,
        reason=reason,
        params=params,
    )


def _yearly_progress(
    indicator: Indicator,
    common: dict[str, Any],
    periods: list[Period],
    series: list[float | None],
    year: int,
    target: float,
    end: str,
) -> Progress:
    """A yearly (or school-year) indicator: the year's value when sent, else the Theil–Sen line of earlier years."""
    index = next((i for i, p in enumerate(periods) if _local_year(p.start) == year), None)
    actual = series[index] if index is not None else None
    earlier = [(float(i), float(v)) for i, v in enumerate(series) if v is not None and (index is None or i < index)]
    projected: float | None = actual
    if projected is None and index is not None and len(earlier) >= 2:
        line = stats.theil_sen(earlier[-5:])
        if line is not None:
            projected = _clip(indicator, line[1] + line[0] * index)
    if actual is None and projected is None:
        return Progress(
            **common,
            actual=None,
            as_of=None,
            periods_counted=0,
            periods_in_year=1,
            progress_pct=None,
            projected=None,
            status="no_data",
            reason="no_data_year",
            params={"year": year},
        )
    basis = actual if actual is not None else projected
    assert basis is not None
    status, reason, params = _status(indicator, basis, projected, target)
    params |= {"end": end, "method": "trend", "unit": indicator.unit}
    return Progress(
        **common,
        actual=actual,
        as_of=periods[index].start if actual is not None and index is not None else None,
        periods_counted=1 if actual is not None else 0,
        periods_in_year=1,
        progress_pct=100.0 * actual / target if actual is not None and target else None,
        projected=projected,
        status=status,
        reason=reason,
        params=params,
    )


def _progress_window(indicator: Indicator, year: int, now: datetime) -> list[Period]:
    if indicator.period_type in ("year", "school_year"):
        return buckets(
            indicator.period_type, _local_midnight(date(year - 6, 1, 1)), _local_midnight(date(year, 12, 31))
        )
    kind = bucket_type(indicator.period_type, "month")
    last_year = _year_periods(kind, year - 1)
    return [*last_year, *_year_periods(kind, year)]


def plan_vs_actual(
    session: Session,
    principal: Principal,
    now: datetime,
    *,
    domain: str | None = None,
    subject: str | None = None,
    year: int | None = None,
    province: str | None = None,
) -> list[Progress]:
    """Every indicator with a target in the year the principal may see, at the province or at one commune (subject
    = its code; "*" for the province and every commune). Unknown subject: an empty list."""
    year = year or _local_year(now)
    context = _context(session, province)
    if context is None:
        return []
    geography, province_place = context.geography, context.province
    if subject in (None, "", province_place.code):
        places = [province_place]
    elif subject == "*":
        places = [province_place, *(geography.places[i] for i in geography.communes.get(province_place.id, ()))]
    else:
        found = next(
            (
                geography.places[i]
                for i in geography.communes.get(province_place.id, ())
                if geography.places[i].code == subject
            ),
            None,
        )
        if found is None:
            return []
        places = [found]
    chosen = [
        (indicator, code) for indicator, code in _indicators(session, principal, domain=domain) if indicator.targets
    ]
    rules = _rules(session, [indicator for indicator, _ in chosen])
    out: list[Progress] = []
    for indicator, _ in chosen:
        targets = [(place, target_of(indicator, place.code, year)) for place in places]
        if all(set_for is None for _, set_for in targets):
            continue
        rule = rules[indicator.code]
        periods = _progress_window(indicator, year, now)
        periods = [p for p in periods if p.start <= now] or periods[:1]
        values = load_values(
            session, rule, rules, geography, province_place.id, periods, now, subjects=[p.id for p in places]
        )
        if len(periods) < len(_progress_window(indicator, year, now)):  # the year's later periods: no values yet
            full = _progress_window(indicator, year, now)
            pad = len(full) - len(periods)
            values.periods = full
            values.complete = values.complete + [False] * pad
            for mapping in (values.by_subject, values.numerators, values.denominators):
                for key in mapping:
                    mapping[key] = mapping[key] + [None] * pad
        for place, set_for in targets:
            if set_for is None:
                continue
            out.append(_progress_of(indicator, rule, place, year, set_for[0], values, place.id, now))
    return out


# --- 2. rankings and composite indices ---------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    indicator: str
    weight: float
    best: float = 100.0
    worst: float = 0.0


@dataclass(frozen=True)
class IndexDef:
    code: str
    name_vi: str
    name_en: str
    description_vi: str
    description_en: str
    period: str
    components: tuple[Component, ...]
    min_weight_share: float = 0.5
    references: tuple[str, ...] = ()


@cache
def _indices_from(path: Path) -> dict[str, IndexDef]:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    found: dict[str, IndexDef] = {}
    for entry in raw.get("indices", []):
        components = tuple(
            Component(
                str(part["indicator"]),
                float(part["weight"]),
                float(part.get("best", 100.0)),
                float(part.get("worst", 0.0)),
            )
            for part in entry.get("components", [])
        )
        if not components or any(part.weight <= 0 or part.best == part.worst for part in components):
            raise ValueError(f"{path.name}: index {entry.get('code')!r} needs components with weight > 0, best ≠ worst")
        found[str(entry["code"])] = IndexDef(
            str(entry["code"]),
            str(entry["name_vi"]),
            str(entry["name_en"]),
            str(entry.get("description_vi", "")),
            str(entry.get("description_en", "")),
            str(entry.get("period", "month")),
            components,
            float(entry.get("min_weight_share", 0.5)),
            tuple(entry.get("references", [])),
        )
    return found


def indices(path: Path = INDICES_FILE) -> dict[str, IndexDef]:
    """The composite indices defined in insights/data/indices.toml."""
    return _indices_from(path)


def score(component: Component, value: float) -> float:
    """A component's value on 0–100 by its direction (best → 100, worst → 0), clipped."""
    scaled = 100.0 * (value - component.worst) / (component.best - component.worst)
    return max(0.0, min(100.0, scaled))


def combine(definition: IndexDef, values: dict[str, float | None]) -> float | None:
    """The index from its components' values: the weighted mean of the scores present, or None when they weigh
    less than min_weight_share of the whole."""
    total = sum(part.weight for part in definition.components)
    present = [(part, values.get(part.indicator)) for part in definition.components]
    used = [(part, value) for part, value in present if value is not None]
    weight = sum(part.weight for part, _ in used)
    if not used or weight < definition.min_weight_share * total:
        return None
    return sum(part.weight * score(part, value) for part, value in used) / weight


def _rank(entries: list[tuple[str, float]], direction: str) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4), best first by direction."""
    reverse = direction != "lower_better"
    ordered = sorted(entries, key=lambda e: (-e[1] if reverse else e[1], e[0]))
    ranks: dict[str, int] = {}
    previous: float | None = None
    for position, (unit, value) in enumerate(ordered, start=1):
        if previous is None or value != previous:
            rank = position
        previous = value
        ranks[unit] = rank
    return ranks


def _ranking_rows(
    current: dict[str, float],
    previous: dict[str, float],
    names: dict[str, tuple[str, str]],
    direction: str,
) -> list[RankRow]:
    ranks = _rank(list(current.items()), direction)
    before = _rank(list(previous.items()), direction)
    rows = [
        RankRow(
            rank,
            unit,
            names.get(unit, (unit, unit))[0],
            names.get(unit, (unit, unit))[1],
            current[unit],
            before.get(unit),
            previous.get(unit),
            (before[unit] - rank) if unit in before else None,
        )
        for unit, rank in ranks.items()
    ]
    return sorted(rows, key=lambda row: (row.rank, row.unit))


def _latest_two(
    periods: list[Period], columns: list[dict[str, float]], complete: list[bool]
) -> tuple[int | None, int | None]:
    filled = [i for i, column in enumerate(columns) if column and complete[i]]
    if not filled:
        return None, None
    latest = filled[-1]
    return latest, latest - 1 if latest >= 1 else None


def _commune_columns(values: Values, geography: derived.Geography) -> list[dict[str, float]]:
    columns: list[dict[str, float]] = [{} for _ in values.periods]
    for subject_id, series in values.by_subject.items():
        place = geography.places.get(subject_id)
        if place is None or place.kind != "commune":
            continue
        for index, value in enumerate(series):
            if value is not None:
                columns[index][place.code] = value
    return columns


def _ranking_window(period_type: str, now: datetime) -> list[Period]:
    kind = bucket_type(period_type, "month")
    start = {"month": 3, "quarter": 9}.get(kind)
    if start is not None:
        return buckets(kind, now - timedelta(days=31 * start), now)
    return buckets(kind, _local_midnight(date(_local_year(now) - 3, 1, 1)), now)


def ranking(
    session: Session,
    principal: Principal,
    now: datetime,
    code: str,
    *,
    by: str = "commune",
    province: str | None = None,
) -> Ranking:
    """Communes (or agencies) best first for an indicator or a composite index, in the latest complete period with
    values, with their rank in the period before. Raises UnknownCode; `by` is "commune" or "agency"."""
    context = _context(session, province)
    if context is None:
        raise UnknownCode(code)
    if by == "agency":
        return _agency_ranking(session, principal, now, code, context)
    definition = indices().get(code)
    geography = context.geography
    names = {
        place.code: (place.name_vi, place.name_en)
        for place in geography.places.values()
        if place.kind == "commune" and place.parent_id == context.province.id
    }
    if definition is not None:
        visible = {
            i.code: i for i, _ in _indicators(session, principal, codes=[c.indicator for c in definition.components])
        }
        rules = _rules(session, list(visible.values()))
        periods = buckets(definition.period, now - timedelta(days=95), now)
        per_component: dict[str, list[dict[str, float]]] = {}
        complete = [p.end <= now for p in periods]
        for component in definition.components:
            indicator = visible.get(component.indicator)
            if indicator is None:
                continue
            values = load_values(session, rules[indicator.code], rules, geography, context.province.id, periods, now)
            per_component[component.indicator] = _commune_columns(values, geography)
        columns: list[dict[str, float]] = []
        for index in range(len(periods)):
            column: dict[str, float] = {}
            for unit in names:
                combined = combine(definition, {c: per_component[c][index].get(unit) for c in per_component})
                if combined is not None:
                    column[unit] = combined
            columns.append(column)
        direction = "higher_better"
    else:
        found = _indicators(session, principal, codes=[code])
        if not found:
            raise UnknownCode(code)
        indicator = found[0][0]
        rules = _rules(session, [indicator])
        periods = _ranking_window(indicator.period_type, now)
        values = load_values(session, rules[indicator.code], rules, geography, context.province.id, periods, now)
        columns = _commune_columns(values, geography)
        complete = [c or indicator.period_type not in ("day",) for c in values.complete]
        direction = indicator.direction
        if direction == "neutral":
            direction = "higher_better"
    latest, before = _latest_two(periods, columns, complete)
    if latest is None:
        return Ranking(code, "commune", None, None, [])
    previous = columns[before] if before is not None else {}
    rows = _ranking_rows(columns[latest], previous, names, direction)
    return Ranking(code, "commune", periods[latest].start, periods[before].start if before is not None else None, rows)


def _agency_ranking(session: Session, principal: Principal, now: datetime, code: str, context: _Context) -> Ranking:
    """Agencies by the share of their indicators with a target (at the province) that are on track, now and at the
    end of the previous month. Only `plan.on_track`: no indicator is stored per agency (see docs/insights.md)."""
    if code != PLAN_CODE:
        raise UnknownCode(code)
    month_start = _local_midnight(now.astimezone(LOCAL_TZ).date().replace(day=1))
    owners = dict(
        session.execute(
            catalog.visible(select(Indicator.code, Indicator.owner_agency_id), principal).where(
                Indicator.owner_agency_id.is_not(None)
            )
        ).all()
    )
    agencies = {
        row.id: (row.code, row.name_vi, row.name_en)
        for row in session.execute(select(Agency.id, Agency.code, Agency.name_vi, Agency.name_en))
    }

    def shares(moment: datetime) -> dict[str, float]:
        counts: dict[str, list[int]] = {}
        for progress in plan_vs_actual(session, principal, moment, province=context.province.code):
            if progress.status == "no_data":
                continue
            agency = agencies.get(owners.get(progress.indicator, -1))
            if agency is None:
                continue
            tally = counts.setdefault(agency[0], [0, 0])
            tally[0] += progress.status == "on_track"
            tally[1] += 1
        return {unit: 100.0 * on / total for unit, (on, total) in counts.items() if total}

    current, previous = shares(now), shares(month_start - timedelta(seconds=1))
    names = {a[0]: (a[1], a[2]) for a in agencies.values()}
    rows = _ranking_rows(current, previous, names, "higher_better")
    return Ranking(
        code, "agency", month_start, _local_midnight((month_start - timedelta(days=1)).date().replace(day=1)), rows
    )


# --- 3. anomalies ------------------------------------------------------------------------------------------


def _anomaly_window(period_type: str, now: datetime) -> tuple[list[Period], int]:
    """The buckets an indicator's series is judged in, and its season's length (0: a rolling window)."""
    if period_type in ("instant", "day"):
        return buckets("day", now - timedelta(days=DAILY_HISTORY_DAYS), now), 0
    start_year = _local_year(now) - SEASONAL_YEARS
    if period_type in ("month", "quarter"):
        return buckets(period_type, _local_midnight(date(start_year, 1, 1)), now), SEASONS[period_type]
    return buckets(period_type, _local_midnight(date(start_year - 8, 1, 1)), now), 0


def find_anomalies(
    series: list[float | None], periods: list[Period], season: int, since: datetime
) -> list[tuple[int, stats.Judged | stats.Shift, str]]:
    """(index, judgement, kind) for the periods of a series from `since` on: a level shift (once, at the latest
    period, with its start), and spikes, drops and outliers before it."""
    found: list[tuple[int, stats.Judged | stats.Shift, str]] = []
    shift = stats.level_shift(series, season)
    stop = shift.start if shift is not None else None
    flagged_before = False
    centres = stats.seasonal_centres(series, season) if season else None
    first = next((i for i, period in enumerate(periods) if period.start >= since), len(periods))
    for index in range(max(0, first - 1), len(periods)):
        period = periods[index]
        if stop is not None and index >= stop:
            break
        judged = stats.judge_point(series, index, season, centres=centres)
        is_flag = stats.flag(judged)
        if is_flag and judged is not None and period.start >= since:
            kind = "outlier" if flagged_before else ("spike" if judged.score > 0 else "drop")
            found.append((index, judged, kind))
        flagged_before = is_flag
    if shift is not None:
        last = max(i for i, v in enumerate(series) if v is not None)
        if periods[last].start >= since:
            found.append((last, shift, "level_shift"))
    return found


def anomalies(
    session: Session,
    principal: Principal,
    now: datetime,
    *,
    domain: str | None = None,
    since: datetime | None = None,
    indicators: list[str] | None = None,
    province: str | None = None,
    subject: str | None = None,
) -> list[Anomaly]:
    """Flagged values of the province and its communes whose period starts at or after `since` (default: 35 days
    before now), most severe first. `subject` limits them to one place (the province or a commune)."""
    since = since if since is not None else now - DEFAULT_SINCE
    context = _context(session, province)
    if context is None:
        return []
    geography = context.geography
    chosen = _indicators(session, principal, domain=domain, codes=indicators)
    rules = _rules(session, [indicator for indicator, _ in chosen])
    subjects: list[int] | None = None
    if subject is not None:
        match = [p.id for p in geography.places.values() if p.code == subject]
        if not match:
            return []
        subjects = match
    found: list[Anomaly] = []
    for indicator, _ in chosen:
        if indicator.period_type == "instant" and indicator.aggregation not in ("last", "ratio"):
            continue
        periods, season = _anomaly_window(indicator.period_type, now)
        if not periods:
            continue
        values = load_values(
            session, rules[indicator.code], rules, geography, context.province.id, periods, now, subjects=subjects
        )
        for subject_id, series in values.by_subject.items():
            judged_series = [v if values.complete[i] else None for i, v in enumerate(series)]
            place = geography.places.get(subject_id)
            if place is None or sum(v is not None for v in judged_series) < stats.MIN_HISTORY + 1:
                continue
            for index, judgement, kind in find_anomalies(judged_series, periods, season, since):
                value = judged_series[index]
                assert value is not None
                if isinstance(judgement, stats.Shift):
                    found.append(
                        Anomaly(
                            indicator.code,
                            place.code,
                            periods[index].start,
                            float(value),
                            float(value) - (judgement.after - judgement.before),
                            judgement.score,
                            kind,
                            since=periods[judgement.start].start,
                        )
                    )
                else:
                    found.append(
                        Anomaly(
                            indicator.code,
                            place.code,
                            periods[index].start,
                            judgement.value,
                            judgement.expected,
                            judgement.score,
                            kind,
                        )
                    )
    found.sort(key=lambda a: (-abs(a.score), a.indicator, a.subject, a.period_start))
    return found


def anomaly_reason(anomaly: Anomaly) -> tuple[str, dict[str, Any]]:
    """The reason of an anomaly (insights.reason.anomaly_<kind>) and its params, for describe()."""
    params: dict[str, Any] = {
        "value": anomaly.value,
        "expected": anomaly.expected,
        "score": round(abs(anomaly.score), 1),
    }
    if anomaly.since is not None:
        params["since_date"] = anomaly.since.astimezone(LOCAL_TZ).strftime("%d/%m/%Y")
    return f"anomaly_{anomaly.kind}", params
