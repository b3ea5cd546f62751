"""The rules of the subsystem boards: which items a domain monitors, each one's latest value against its target,
its trend over a range, and the communes' latest values.

Values come from `observations`: stored values as `observations.service` reads them, and what is missing at the
province (a ratio from its parts, communes rolled up) from `observations.derived`. A trend reads the rows of the
range once per indicator (with a ratio's parts, and at the province its communes' rows) and lets `derived.Deriver`
choose or compute each period's value in memory: no query per period or per subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.catalog.judging import judge, target_for
from cityops.catalog.models import Domain, Indicator
from cityops.clock import LOCAL_TZ
from cityops.geo.models import Subject
from cityops.geo.service import province_subject
from cityops.observations import derived
from cityops.observations import service as observations
from cityops.observations.models import Observation, ObservationDay
from cityops.observations.periods import SCHOOL_YEAR_START_MONTH, Period, PeriodError, parse_period, period_of

# The ranges a board offers, in the order shown: (kind, how many).
RANGES: dict[str, tuple[str, int]] = {
    "7d": ("days", 7),
    "30d": ("days", 30),
    "90d": ("days", 90),
    "12m": ("months", 12),
    "24m": ("months", 24),
    "5y": ("years", 5),
    "3sy": ("school_years", 3),
    "5sy": ("school_years", 5),
}
# Which ranges suit an indicator's period type, and the shortest window its trend shows whatever the range.
RANGES_OF_TYPE = {
    "instant": ("7d", "30d", "90d", "12m"),
    "day": ("7d", "30d", "90d", "12m"),
    "month": ("12m", "24m"),
    "quarter": ("24m", "5y"),
    "year": ("5y",),
    "school_year": ("3sy", "5sy"),
}
SHORTEST_WINDOW = {"month": "12m", "quarter": "24m", "year": "5y", "school_year": "3sy"}
DEFAULT_RANGE_OF_TYPE = {
    "instant": "30d",
    "day": "30d",
    "month": "12m",
    "quarter": "24m",
    "year": "5y",
    "school_year": "5sy",
}
# A value older than this after the end of its period looks stale.
STALE_AFTER = {
    "instant": timedelta(days=2),
    "day": timedelta(days=2),
    "month": timedelta(days=45),
    "quarter": timedelta(days=120),
    "year": timedelta(days=400),
    "school_year": timedelta(days=500),
}
STATUSES = ("good", "watch", "bad", "nodata", "none")
COMMUNES_SHOWN = 5  # the best and the worst five; the full list is one click away
MAX_TREND_ROWS = 200_000


class UnknownDomain(LookupError):
    """No subsystem has this code."""


class UnknownSubject(LookupError):
    """The subject asked is neither the province nor one of its communes."""


# --- ranges ---------------------------------------------------------------------------------------------------


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def range_start(code: str, now: datetime) -> datetime:
    """The first moment a range shows: the start of its first day, month, year or school year (local time)."""
    kind, count = RANGES[code]
    today = now.astimezone(LOCAL_TZ).date()
    if kind == "days":
        return _local_midnight(today - timedelta(days=count - 1))
    if kind == "months":
        months = today.year * 12 + today.month - 1 - (count - 1)
        return _local_midnight(date(months // 12, months % 12 + 1, 1))
    if kind == "years":
        return _local_midnight(date(today.year - count + 1, 1, 1))
    first = today.year if today.month >= SCHOOL_YEAR_START_MONTH else today.year - 1
    return _local_midnight(date(first - count + 1, SCHOOL_YEAR_START_MONTH, 1))


def ranges_for(period_types: Sequence[str]) -> list[str]:
    """The ranges that suit a board's indicators, in the order shown."""
    wanted = {code for period_type in period_types for code in RANGES_OF_TYPE.get(period_type, ())}
    return [code for code in RANGES if code in wanted] or list(RANGES)


def default_range(period_types: Sequence[str]) -> str:
    """The range a board opens with: that of its fastest indicators."""
    order = ("instant", "day", "month", "quarter", "year", "school_year")
    for period_type in order:
        if period_type in period_types:
            return DEFAULT_RANGE_OF_TYPE[period_type]
    return "30d"


def window_start(range_code: str, period_type: str, now: datetime) -> datetime:
    """Where an indicator's trend starts: the range's start, or earlier when its periods are longer."""
    start = range_start(range_code, now)
    shortest = SHORTEST_WINDOW.get(period_type)
    return min(start, range_start(shortest, now)) if shortest else start


# --- targets and status ---------------------------------------------------------------------------------------


def _year_of(period_start: datetime) -> int:
    return period_start.astimezone(LOCAL_TZ).year


# --- the board ------------------------------------------------------------------------------------------------


@dataclass
class Point:
    """One period of a trend: its key and type, its value (stored or computed) and the target of its year."""

    period: str
    period_type: str
    start: datetime
    value: float | None
    target: float | None
    anomaly: Any = None  # an insights.contract.Anomaly flagged at this period, if any


@dataclass
class CommuneValue:
    code: str
    name_vi: str
    name_en: str
    value: float | None
    period: str
    period_type: str
    status: str


@dataclass
class Item:
    """One indicator on a board."""

    indicator: Indicator
    value: float | None = None
    source: str | None = None  # stored or computed
    period: str = ""
    period_type: str = ""
    received_at: datetime | None = None
    communes_reported: int | None = None
    communes_expected: int | None = None
    target: float | None = None
    status: str = "nodata"
    stale: bool = False
    trend: list[Point] = field(default_factory=list)
    trend_start: datetime | None = None
    communes: list[CommuneValue] = field(default_factory=list)


@dataclass
class Board:
    domain: Domain
    place: derived.Place
    province: derived.Place
    range_code: str
    ranges: list[str]
    items: list[Item]
    anomalies: list[Any] = field(default_factory=list)  # insights.contract.Anomaly at this place, most severe first


def domains(session: Session, principal: Principal) -> list[tuple[Domain, int]]:
    """The nine subsystems in their order, with how many indicators the principal may see in each."""
    counts = dict(
        session.execute(
            catalog.visible(
                select(Indicator.domain_id, func.count()).group_by(Indicator.domain_id),
                principal,
            )
        ).all()
    )
    rows = session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code))
    return [(domain, int(counts.get(domain.id, 0))) for domain in rows]


def _place(subject: Subject) -> derived.Place:
    return derived.Place(subject.id, subject.code, subject.name_vi, subject.name_en, subject.kind, subject.parent_id)


def board(
    session: Session,
    principal: Principal,
    domain_code: str,
    *,
    province_code: str,
    subject_code: str | None,
    range_code: str | None,
    now: datetime,
) -> Board:
    """A subsystem's board for the province or one of its communes, over a range (None: the board's default).

    Raises UnknownDomain, UnknownSubject; a range that does not exist is replaced by the default (KeyError is
    never raised)."""
    domain = session.scalar(select(Domain).where(Domain.code == domain_code))
    if domain is None:
        raise UnknownDomain(domain_code)
    province_row = province_subject(session, province_code)
    if province_row is None:
        raise UnknownSubject(province_code)
    province = _place(province_row)
    place = province
    if subject_code is not None and subject_code != province.code:
        found = session.scalar(
            select(Subject).where(
                Subject.code == subject_code, Subject.kind == "commune", Subject.parent_id == province.id
            )
        )
        if found is None:
            raise UnknownSubject(subject_code)
        place = _place(found)
    rows, _ = catalog.list_indicators(session, principal, domain=domain.code, limit=1000)
    indicators = sorted((row[0] for row in rows), key=lambda i: (i.monitored_item, i.code))
    period_types = sorted({indicator.period_type for indicator in indicators})
    offered = ranges_for(period_types)
    chosen = range_code if range_code in offered else default_range(period_types)
    items = [Item(indicator) for indicator in indicators]
    if items:
        geography = derived.load_geography(session)
        rules = {indicator.code: derived.Rule.of(indicator) for indicator in indicators}
        rules = {**derived.load_rules(session, (c for r in rules.values() for c in r.parts if c not in rules)), **rules}
        _latest(session, items, place, province)
        for item in items:
            item.trend_start = window_start(chosen, item.indicator.period_type, now)
            item.trend = _trend(session, rules, geography, item, place, item.trend_start, now, chosen)
            if item.value is None:  # nothing stored nor computed by the newest period: the trend's last value
                last = next((point for point in reversed(item.trend) if point.value is not None), None)
                if last is not None:
                    item.value, item.source = last.value, derived.COMPUTED
                    item.period, item.period_type = last.period, last.period_type
        if place.id == province.id:
            _communes(session, items, province)
        for item in items:
            _judge(item, place, now)
    flagged = _anomalies(session, principal, domain.code, place, province, items, now) if items else []
    return Board(domain, place, province, chosen, offered, items, flagged)


def _anomalies(
    session: Session,
    principal: Principal,
    domain_code: str,
    place: derived.Place,
    province: derived.Place,
    items: list[Item],
    now: datetime,
) -> list[Any]:
    """The anomalies of the board's items at its place since the start of the previous month, each also marked on
    its trend point (insights.service: robust statistics with seasons)."""
    from cityops.insights import service as insights

    local = now.astimezone(LOCAL_TZ).date().replace(day=1)
    previous_month = _local_midnight((local - timedelta(days=1)).replace(day=1))
    since = min(previous_month, now - insights.DEFAULT_SINCE)
    found = insights.anomalies(
        session,
        principal,
        now,
        domain=domain_code,
        since=since,
        indicators=[item.indicator.code for item in items],
        subject=place.code,
        province=province.code,
    )
    by_code = {item.indicator.code: item for item in items}
    for anomaly in found:
        item = by_code.get(anomaly.indicator)
        if item is None:
            continue
        for point in item.trend:
            try:
                if period_of(point.period_type, anomaly.period_start).key == point.period:
                    point.anomaly = anomaly
            except PeriodError:
                continue
    return found


def _latest(session: Session, items: list[Item], place: derived.Place, province: derived.Place) -> None:
    """Each item's newest stored value at the place; at the province, what is missing computed by `derived`."""
    by_code = {item.indicator.code: item for item in items}
    stored, _ = observations.latest(
        session, [item.indicator.id for item in items], subject_ids=[place.id], limit=len(items) + 1
    )
    for row in stored:
        item = by_code.get(row["indicator"])
        if item is None or row["value"] is None:
            continue
        item.value, item.source = row["value"], derived.STORED
        item.period, item.period_type = row["period"], row["period_type"]
        item.received_at = datetime.fromisoformat(row["received_at"])
    if place.id != province.id:
        return
    missing = [item.indicator for item in items if item.value is None]
    for code, value in derived.province_values(session, missing, province.id).items():
        item = by_code[code]
        item.value, item.source, item.period = value.value, derived.COMPUTED, value.period
        item.period_type = parse_period(value.period).type
        item.communes_reported, item.communes_expected = value.communes_reported, value.communes_expected


def _bucket(period_type: str, range_code: str) -> str:
    """How an instant indicator's trend groups its instants: by day, or by month over a year and more."""
    if period_type != "instant":
        return period_type
    return "day" if RANGES[range_code][0] == "days" else "month"


def _trend(
    session: Session,
    rules: dict[str, derived.Rule],
    geography: derived.Geography,
    item: Item,
    place: derived.Place,
    start: datetime,
    now: datetime,
    range_code: str,
) -> list[Point]:
    """The item's value per period from `start` on: stored, or computed from its parts and communes."""
    indicator = item.indicator
    rule = rules[indicator.code]
    ids = {rule.id} | {rules[code].id for code in rule.parts if code in rules}
    subject_ids = [place.id, *geography.communes.get(place.id, ())]
    bucket = _bucket(indicator.period_type, range_code)
    periods: dict[str, tuple[datetime, dict[tuple[int, int], derived.StoredRow]]] = {}
    if indicator.period_type == "instant":
        # Readings every few minutes: the daily roll-up (newest reading of each day) instead of every reading.
        days = (
            select(
                ObservationDay.indicator_id,
                ObservationDay.subject_id,
                ObservationDay.value,
                ObservationDay.null_reason,
                ObservationDay.period_key,
                ObservationDay.day_start,
                ObservationDay.received_at,
            )
            .where(
                ObservationDay.indicator_id.in_(sorted(ids)),
                ObservationDay.day_start >= period_of("day", start).start,
                ObservationDay.period_start <= now,
                ObservationDay.subject_id.in_(subject_ids),
            )
            .order_by(ObservationDay.day_start)
        )
        buckets: dict[datetime, Period] = {}
        for row in session.execute(days):
            period = buckets.get(row.day_start) or buckets.setdefault(row.day_start, period_of(bucket, row.day_start))
            _, stored = periods.setdefault(period.key, (period.start, {}))
            # Ordered by day: each bucket keeps its newest day's reading.
            stored[(row.indicator_id, row.subject_id)] = derived.StoredRow(
                row.value, row.null_reason or "", row.period_key, row.received_at
            )
    else:
        query = (
            select(
                Observation.indicator_id,
                Observation.subject_id,
                Observation.value,
                Observation.null_reason,
                Observation.period_key,
                Observation.period_start,
                Observation.received_at,
            )
            .where(
                Observation.indicator_id.in_(sorted(ids)),
                Observation.dims_key == "",
                Observation.period_start >= start,
                Observation.period_start <= now,
                Observation.subject_id.in_(subject_ids),
            )
            .order_by(Observation.period_start, Observation.received_at)
            .limit(MAX_TREND_ROWS)
        )
        parsed: dict[str, Period] = {}
        for row in session.execute(query):
            try:
                period = parsed.get(row.period_key) or parsed.setdefault(row.period_key, parse_period(row.period_key))
            except PeriodError:
                continue
            if period.type != bucket:  # a ratio's part of another period type: not comparable period by period
                continue
            _, stored = periods.setdefault(period.key, (period.start, {}))
            # Ordered by start then reception: the latest received feed wins.
            stored[(row.indicator_id, row.subject_id)] = derived.StoredRow(
                row.value, row.null_reason or "", row.period_key, row.received_at
            )
    points = []
    for key, (period_start, stored) in sorted(periods.items(), key=lambda entry: entry[1][0]):
        value = derived.Deriver(rules, stored, geography).derive(rule, place, key).value
        target = target_for(indicator, place.code, _year_of(period_start))
        points.append(Point(key, bucket, period_start, value, target))
    return points


def _communes(session: Session, items: list[Item], province: derived.Place) -> None:
    """Each item's newest commune values (stored; a ratio computed from its parts where communes send parts)."""
    by_id = {item.indicator.id: item for item in items}
    stored, _ = observations.latest(session, list(by_id), subject_kind="commune", limit=len(items) * 1000)
    names = {
        row.code: (row.name_vi, row.name_en)
        for row in session.execute(
            select(Subject.code, Subject.name_vi, Subject.name_en).where(Subject.parent_id == province.id)
        )
    }
    by_code = {item.indicator.code: item for item in items}
    for row in stored:
        item = by_code.get(row["indicator"])
        if item is None or row["subject"] not in names:
            continue
        name_vi, name_en = names[row["subject"]]
        item.communes.append(
            CommuneValue(row["subject"], name_vi, name_en, row["value"], row["period"], row["period_type"], "")
        )
    for item in items:
        rule = derived.Rule.of(item.indicator)
        if item.communes or not rule.is_ratio or not item.period:
            continue
        try:
            period = parse_period(item.period)
            if period.type == "instant":
                period = period_of("day", period.start)
            answer = derived.indicator_values(session, item.indicator, period)
        except (PeriodError, derived.PeriodMismatch):
            continue
        for value in answer["items"]:
            if value["subject_kind"] == "commune" and value["value"] is not None:
                item.communes.append(
                    CommuneValue(
                        value["subject"],
                        value["subject_name"],
                        value["subject_name_en"],
                        value["value"],
                        value["period"],
                        period.type,
                        "",
                    )
                )


def _judge(item: Item, place: derived.Place, now: datetime) -> None:
    """Status against the target, staleness, and the communes' order (best first)."""
    indicator = item.indicator
    if item.period:
        period = parse_period(item.period)
        item.target = target_for(indicator, place.code, _year_of(period.start))
        item.stale = now - period.end > STALE_AFTER.get(item.period_type or indicator.period_type, timedelta(days=2))
    else:
        item.target = target_for(indicator, place.code, now.astimezone(LOCAL_TZ).year)
    item.status = judge(indicator, item.value, item.target)
    for commune in item.communes:
        year = _year_of(parse_period(commune.period).start)
        commune.status = judge(indicator, commune.value, target_for(indicator, commune.code, year))
    present = [c for c in item.communes if c.value is not None]
    missing = [c for c in item.communes if c.value is None]
    ascending = indicator.direction == "lower_better"
    present.sort(key=lambda c: (c.value if ascending else -(c.value or 0.0), c.code))
    item.communes = present + missing


def shown_communes(communes: list[CommuneValue]) -> tuple[list[CommuneValue], list[CommuneValue]]:
    """The best and the worst few communes (both empty lists' parts when there are few: all in the first)."""
    if len(communes) <= 2 * COMMUNES_SHOWN:
        return communes, []
    return communes[:COMMUNES_SHOWN], communes[-COMMUNES_SHOWN:]


def indicator_codes(board_: Board) -> list[str]:
    """The codes of the board's indicators and of their parts: a new value of any of them changes the board."""
    codes = {item.indicator.code for item in board_.items}
    for item in board_.items:
        codes |= {code for code in (item.indicator.numerator_code, item.indicator.denominator_code) if code}
    return sorted(codes)


def as_json_points(points: list[Point]) -> list[dict[str, Any]]:
    return [
        {"period": p.period, "type": p.period_type, "start": p.start.isoformat(), "value": p.value, "target": p.target}
        for p in points
    ]
