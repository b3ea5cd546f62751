"""Series of an indicator per period bucket (month, quarter, …) for the province and its communes, aggregated in SQL.

One query per indicator group (the indicator and a ratio's parts): rows of totals (dims_key '') in the window are
numbered by a window function so that each (indicator, subject, period) keeps its newest reception (several feeds),
or, for a stock (instant, or aggregation `last`), each bucket keeps its newest instant (an instant indicator's from
the daily roll-up, observations/rollup.py, not from every reading); then grouped by bucket:
the sum (sum), the mean (mean, a ratio's own rows) or the one kept value. The answer has at most
indicators × subjects × buckets rows whatever the table holds. `derived.Deriver` then chooses or computes each
subject's value per bucket (a ratio from its parts, the province from its communes) in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from cityops.observations import derived
from cityops.observations.models import Observation, ObservationDay
from cityops.observations.periods import Period, parse_period, period_of

# The bucket an indicator's own period type is read in, when a finer one is asked (instant and day fold into it).
COARSER = {"month": 1, "quarter": 2, "year": 3, "school_year": 3}
FINE = ("instant", "day")


def bucket_type(period_type: str, wanted: str) -> str:
    """The bucket an indicator is read in: its own period type, unless that is finer than the one wanted."""
    if period_type in FINE:
        return wanted
    return period_type


def buckets(period_type: str, start: datetime, end: datetime) -> list[Period]:
    """The periods of a type from the one holding `start` to the one holding `end`, oldest first."""
    out: list[Period] = []
    current = period_of(period_type, start)
    while current.start <= end and len(out) < 5000:
        out.append(current)
        if period_type == "school_year":
            first = int(current.key[:4]) + 1
            current = parse_period(f"{first:04d}-{first + 1:04d}")
        else:
            current = period_of(period_type, current.end)
    return out


def is_stock(rule: derived.Rule) -> bool:
    """A value at a moment (cameras online, coverage): a bucket keeps its newest one."""
    return rule.period_type == "instant" or rule.aggregation == "last"


@dataclass
class Values:
    """An indicator's value per bucket for each subject (None: nothing stored nor computable), with a ratio's parts
    per bucket (for a year-to-date ratio of sums)."""

    periods: list[Period]
    by_subject: dict[int, list[float | None]] = field(default_factory=dict)
    numerators: dict[int, list[float | None]] = field(default_factory=dict)
    denominators: dict[int, list[float | None]] = field(default_factory=dict)
    # Whether a bucket holds every period it can (False: the current month of a daily indicator).
    complete: list[bool] = field(default_factory=list)


def _load(
    session: Session,
    rules: Sequence[derived.Rule],
    periods: Sequence[Period],
    subject_ids: Sequence[int],
    now: datetime,
    dims_key: str = "",
) -> dict[tuple[int, int, int], float | None]:
    """(indicator id, subject id, bucket index) → the bucket's value, for every rule; one query per kind of rule."""
    if not rules or not periods:
        return {}
    first, last = periods[0].start, min(periods[-1].end, now)
    bucket = case(
        *[
            (and_(Observation.period_start >= p.start, Observation.period_start < p.end), index)
            for index, p in enumerate(periods)
        ],
        else_=-1,
    ).label("bucket")
    out: dict[tuple[int, int, int], float | None] = {}
    stocks = [rule for rule in rules if is_stock(rule)]
    flows = [rule for rule in rules if not is_stock(rule)]
    base = and_(
        Observation.dims_key == dims_key,
        Observation.period_start >= first,
        Observation.period_start <= last,
        Observation.subject_id.in_(list(subject_ids)),
    )
    # Instant stocks (readings every few minutes) come from the daily roll-up: one row per subject and day.
    from_days = [rule for rule in stocks if rule.period_type == "instant" and dims_key == ""]
    from_rows = [rule for rule in stocks if rule not in from_days]
    if from_days:
        day_bucket = case(
            *[
                (and_(ObservationDay.day_start >= p.start, ObservationDay.day_start < p.end), index)
                for index, p in enumerate(periods)
            ],
            else_=-1,
        ).label("bucket")
        ranked = (
            select(
                ObservationDay.indicator_id,
                ObservationDay.subject_id,
                ObservationDay.value,
                day_bucket,
                func.row_number()
                .over(
                    partition_by=(ObservationDay.indicator_id, ObservationDay.subject_id, day_bucket),
                    order_by=(ObservationDay.day_start.desc(),),
                )
                .label("rank"),
            )
            .where(
                ObservationDay.indicator_id.in_([rule.id for rule in from_days]),
                ObservationDay.day_start >= period_of("day", first).start,
                ObservationDay.period_start <= last,
                ObservationDay.subject_id.in_(list(subject_ids)),
            )
            .subquery()
        )
        _keep_first(session, ranked, out)
    if from_rows:
        ranked = (
            select(
                Observation.indicator_id,
                Observation.subject_id,
                Observation.value,
                bucket,
                func.row_number()
                .over(
                    partition_by=(Observation.indicator_id, Observation.subject_id, bucket),
                    order_by=(Observation.period_start.desc(), Observation.received_at.desc(), Observation.id.desc()),
                )
                .label("rank"),
            )
            .where(base, Observation.indicator_id.in_([rule.id for rule in from_rows]))
            .subquery()
        )
        _keep_first(session, ranked, out)
    if flows:
        ranked = (
            select(
                Observation.indicator_id,
                Observation.subject_id,
                Observation.value,
                bucket,
                func.row_number()
                .over(
                    partition_by=(Observation.indicator_id, Observation.subject_id, Observation.period_key),
                    order_by=(Observation.received_at.desc(), Observation.id.desc()),
                )
                .label("rank"),
            )
            .where(base, Observation.indicator_id.in_([rule.id for rule in flows]))
            .subquery()
        )
        grouped = (
            select(
                ranked.c.indicator_id,
                ranked.c.subject_id,
                ranked.c.bucket,
                func.sum(ranked.c.value).label("total"),
                func.avg(ranked.c.value).label("mean"),
                func.count(ranked.c.value).label("counted"),
            )
            .where(ranked.c.rank == 1, ranked.c.bucket >= 0)
            .group_by(ranked.c.indicator_id, ranked.c.subject_id, ranked.c.bucket)
        )
        means = {rule.id for rule in flows if rule.aggregation in ("mean", "ratio")}
        for row in session.execute(grouped):
            value = None
            if row.counted:
                value = float(row.mean if row.indicator_id in means else row.total)
            out[(row.indicator_id, row.subject_id, int(row.bucket))] = value
    return out


def _keep_first(session: Session, ranked: Any, out: dict[tuple[int, int, int], float | None]) -> None:
    """The value ranked first in each (indicator, subject, bucket)."""
    for row in session.execute(
        select(ranked.c.indicator_id, ranked.c.subject_id, ranked.c.bucket, ranked.c.value).where(
            ranked.c.rank == 1, ranked.c.bucket >= 0
        )
    ):
        out[(row.indicator_id, row.subject_id, int(row.bucket))] = row.value


def load_values(
    session: Session,
    rule: derived.Rule,
    rules: dict[str, derived.Rule],
    geography: derived.Geography,
    province_id: int,
    periods: Sequence[Period],
    now: datetime,
    *,
    subjects: Iterable[int] | None = None,
    dims_key: str = "",
) -> Values:
    """The rule's value per bucket for the province and each of its communes (or only `subjects`)."""
    wanted = [rule, *(rules[code] for code in rule.parts if code in rules)]
    communes = geography.communes.get(province_id, ())
    subject_ids = [province_id, *communes]
    loaded = _load(session, wanted, periods, subject_ids, now, dims_key)
    own_type = rule.period_type
    mixed = bool(periods) and periods[0].type != own_type
    if rule.is_ratio and mixed and any(key[0] != rule.id for key in loaded):
        # A ratio over a longer bucket is computed from its parts' sums, never an average of ratios.
        loaded = {key: value for key, value in loaded.items() if key[0] != rule.id}
    result = Values(list(periods))
    result.complete = [not mixed or own_type == "instant" or p.end <= now for p in periods]
    chosen = list(subjects) if subjects is not None else subject_ids
    for subject in chosen:
        result.by_subject[subject] = [None] * len(periods)
        if rule.is_ratio:
            result.numerators[subject] = [None] * len(periods)
            result.denominators[subject] = [None] * len(periods)
    # Only the province and the subjects with rows need deriving: most communes of most indicators have none.
    touched = {subject_id for _, subject_id, _ in loaded} | {province_id}
    chosen = [subject for subject in chosen if subject in touched]
    by_bucket: dict[int, dict[tuple[int, int], derived.StoredRow]] = {}
    for (indicator_id, subject_id, index), value in loaded.items():
        by_bucket.setdefault(index, {})[(indicator_id, subject_id)] = derived.StoredRow(
            value, "", periods[index].key, periods[index].start
        )
    for index, rows in by_bucket.items():
        deriver = derived.Deriver(rules, rows, geography)
        for subject in chosen:
            place = geography.places.get(subject)
            if place is None:
                continue
            got = deriver.derive(rule, place, periods[index].key)
            result.by_subject[subject][index] = got.value
            if rule.is_ratio and len(got.parts) == 2:
                result.numerators[subject][index] = got.parts[0].value
                result.denominators[subject][index] = got.parts[1].value
    return result
