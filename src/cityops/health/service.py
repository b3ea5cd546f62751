"""Trust scores of data feeds, indicators and agencies over a window — đúng, đủ, sạch, sống — with the rows that
lowered each. A score is a share from 0 to 100 %, or None when there is nothing to judge.

- **đúng** (correct) = (accepted − violations) / (accepted + rejected), over the items received in the window.
  *Accepted* = values written (current rows and replaced versions received in the window) + identical re-sends
  (`ingest_batches.unchanged` of the feed's batches); *rejected* = the feed's `ingest_rejections`; a *violation* is
  "a part above its whole": for a ratio indicator of the catalog, a current numerator value greater than the
  denominator value of the same feed, subject, period and dimensions, the later of the two received in the window.
  A violation counts once (the part); both rows are listed.
- **đủ** (complete) = received / expected cells. Expected: the feed's expected periods (`feed_expectations`) due in
  the window whose deadline plus grace has passed × the subjects it must cover × its indicators of the cadence's
  period type. A cell is received when the feed holds a value (or an explained null) of that indicator and subject
  for the period — for an interval cadence, an instant inside the slot — whenever it arrived.
- **sạch** (clean) = 1 − flagged / accepted. Flagged: *duplicates* (identical re-sends; a value re-sent unchanged
  with only its note or reference changed), *conflicting re-sends* (a value replaced in the window for a period that
  had already ended — a final figure changed; a running period's figure such as month-to-date may still grow) and
  *outliers*. Outliers are judged per series (feed, indicator, subject, dimensions) over time: modified
  z = |x − median| / (1.4826 · MAD) > 5, over the series' values of ended periods from the window and a span before
  it (CONTEXT_SPAN), when there are at least MIN_SERIES of them. When MAD is 0 the mean absolute deviation × 1.2533
  stands in (Iglewicz and Hoaglin); when that is 0 too every value is equal and none is flagged. An item flagged for
  two reasons counts once. Flagged values stay stored: nothing is dropped.
- **sống** (alive) = periods delivered on time / periods judged (as for đủ). The state now: *paused*; *down* (its
  last 3 judged periods all not on time, or its last 3 finished runs failed); *late* (a period past its deadline plus
  grace and not received); *on time*; *unscheduled* (no cadence: neither đủ nor sống applies).
- **overall** = the mean of the scores available.

An agency's score per dimension is the mean of its feeds' scores (each agreed flow of data weighs the same). An
indicator pools the counts of the feeds that carry it; identical re-sends are recorded per batch, not per indicator,
so they count for feeds only, and an indicator's sống is that of its feeds' periods.

Every score is computed for all the feeds asked for at once, with a few set-based queries per score — never one per
feed, subject or period.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true, union_all
from sqlalchemy.orm import Session, aliased

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.catalog.models import Indicator
from cityops.feeds import service as feeds_service
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.feeds.models import EXPECTED, LATE, RECEIVED, Feed, FeedExpectation, FeedRun, feed_indicators
from cityops.geo.models import Subject
from cityops.observations.models import IngestBatch, IngestRejection, Observation, ObservationHistory
from cityops.observations.periods import PeriodError, parse_period

SCORES = ("correct", "complete", "clean", "alive")
DEFAULT_DAYS = 30
WINDOW_CHOICES = (7, 30, 90)
MAX_WINDOW = timedelta(days=400)
ROW_LIMIT = 100  # rows listed per kind; the counts are always exact
OUTLIER_LIMIT = 5.0
MAD_SCALE = 1.4826  # MAD × this estimates the standard deviation of normal data
MEAN_AD_SCALE = 1.2533  # the same for the mean absolute deviation (√(π/2))
MIN_SERIES = 6
# How far before the window a series' values are read to judge the values received in it.
CONTEXT_SPAN = {
    "instant": timedelta(days=1),
    "day": timedelta(days=28),
    "month": timedelta(days=366),
    "quarter": timedelta(days=731),
    "year": timedelta(days=366 * 6),
    "school_year": timedelta(days=366 * 6),
}
DOWN_AFTER = 3  # judged periods all late, or finished runs all failed, in a row

PAUSED, DOWN, LATE_NOW, ON_TIME, UNSCHEDULED = "paused", "down", "late", "on_time", "unscheduled"
STATES = (PAUSED, DOWN, LATE_NOW, ON_TIME, UNSCHEDULED)
# Which state an agency shows when its feeds differ: the most alarming.
_SEVERITY = {DOWN: 4, LATE_NOW: 3, PAUSED: 2, ON_TIME: 1, UNSCHEDULED: 0}
# Fields of listed rows that carry values (blanked for whoever may not see the indicator); a rejection's message
# may quote the value, so it goes too (its code stays).
VALUE_FIELDS = (
    "item",
    "message_vi",
    "message_en",
    "value",
    "numerator_value",
    "denominator_value",
    "old_value",
    "new_value",
    "median",
    "scale",
    "deviation",
)


class WindowError(ValueError):
    """The window asked for is not one (not a date or period, reversed, or too long)."""

    def __init__(self, start: str, end: str) -> None:
        super().__init__(f"invalid window {start!r} – {end!r}")
        self.start, self.end = start, end


class FeedUnknown(LookupError):
    """No feed has this code."""


class FeedNotYours(PermissionError):
    """The feed belongs to an agency whose detail rows the principal may not see."""


class IndicatorUnknown(LookupError):
    """No indicator with this code that the principal may see."""


@dataclass(frozen=True, slots=True)
class Window:
    """The moments judged: [start, end], both included; and the time now (nothing later is due)."""

    start: datetime
    end: datetime
    now: datetime


def window_of(now: datetime, days: int = DEFAULT_DAYS) -> Window:
    """The last `days` days up to now."""
    return Window(now - timedelta(days=days), now, now)


def parse_window(start_text: str | None, end_text: str | None, now: datetime) -> Window:
    """A window from the API's `from` and `to` (a day, month, … or instant; `to` includes its whole period).

    Without `to` it ends now; without `from` it starts DEFAULT_DAYS before its end. WindowError otherwise.
    """
    start_given, end_given = (start_text or "").strip(), (end_text or "").strip()
    try:
        if end_given:
            period = parse_period(end_given)
            end = period.end if period.type == "instant" else period.end - timedelta(microseconds=1)
        else:
            end = now
        start = parse_period(start_given).start if start_given else end - timedelta(days=DEFAULT_DAYS)
    except PeriodError:
        raise WindowError(start_given[:40], end_given[:40]) from None
    if start >= end or end - start > MAX_WINDOW:
        raise WindowError(start_given[:40] or start.isoformat(), end_given[:40] or end.isoformat())
    return Window(start, end, now)


# --- results ---------------------------------------------------------------------------------------------


def _share(part: float, whole: float) -> float | None:
    return None if whole <= 0 else 100.0 * max(part, 0.0) / whole


@dataclass
class Correct:
    """đúng: accepted, rejected and rule-breaking items."""

    accepted: int = 0
    rejected: int = 0
    violations: int = 0
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    violation_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return _share(self.accepted - self.violations, self.accepted + self.rejected)


@dataclass
class Complete:
    """đủ: expected and received cells (indicator × subject × period)."""

    applicable: bool = False
    periods: int = 0
    subjects: int = 0
    indicators: int = 0
    expected: int = 0
    received: int = 0
    missing_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def score(self) -> float | None:
        return _share(self.received, self.expected) if self.applicable else None


@dataclass
class Clean:
    """sạch: accepted items, and those flagged as duplicates, conflicting re-sends or outliers."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    outliers: int = 0
    flagged: int = 0
    duplicate_rows: list[dict[str, Any]] = field(default_factory=list)
    conflict_rows: list[dict[str, Any]] = field(default_factory=list)
    outlier_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return _share(self.accepted - self.flagged, self.accepted)


@dataclass
class Alive:
    """sống: judged periods and those delivered on time; the failed runs when they make the feed down."""

    applicable: bool = False
    periods: int = 0
    on_time: int = 0
    late_rows: list[dict[str, Any]] = field(default_factory=list)
    failed_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return _share(self.on_time, self.periods) if self.applicable else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True, slots=True)
class FeedRef:
    """What the scores need of a feed."""

    id: int
    code: str
    name: str
    agency_id: int
    kind: str
    cadence: str
    period_type: str | None  # of its cadence; None without one
    grace_minutes: int
    coverage: str
    paused: bool


@dataclass
class FeedTrust:
    """The four scores of one feed (or of one indicator within it), its state now and the rows that lowered them."""

    feed: FeedRef
    correct: Correct = field(default_factory=Correct)
    complete: Complete = field(default_factory=Complete)
    clean: Clean = field(default_factory=Clean)
    alive: Alive = field(default_factory=Alive)
    state: str = ON_TIME
    late_now: int = 0
    last_received_at: datetime | None = None

    @property
    def scores(self) -> dict[str, float | None]:
        return {
            "correct": self.correct.score,
            "complete": self.complete.score,
            "clean": self.clean.score,
            "alive": self.alive.score,
        }

    @property
    def overall(self) -> float | None:
        return _mean(self.scores.values())


@dataclass
class AgencyTrust:
    """An agency's feeds and the mean of their scores."""

    id: int
    code: str
    name_vi: str
    name_en: str
    feeds: list[FeedTrust]

    @property
    def scores(self) -> dict[str, float | None]:
        return {name: _mean(feed.scores[name] for feed in self.feeds) for name in SCORES}

    @property
    def overall(self) -> float | None:
        return _mean(self.scores.values())

    @property
    def state(self) -> str:
        return worst_state(feed.state for feed in self.feeds)


@dataclass
class IndicatorTrust:
    """One indicator's scores pooled over the feeds that carry it, with each feed's share."""

    id: int
    code: str
    name_vi: str
    name_en: str
    total: FeedTrust | None
    feeds: list[FeedTrust]

    @property
    def state(self) -> str:
        return worst_state(feed.state for feed in self.feeds)


def worst_state(states: Iterable[str]) -> str:
    """The most alarming of some states (unscheduled when there are none)."""
    return max(states, key=lambda state: _SEVERITY[state], default=UNSCHEDULED)


# --- the assessment ----------------------------------------------------------------------------------------


def _feed_ref(feed: Feed) -> FeedRef:
    period_type = None
    if feed.cadence:
        try:
            period_type = parse_cadence(feed.cadence).period_type
        except CadenceError:
            period_type = None
    return FeedRef(
        feed.id,
        feed.code,
        feed.name or feed.code,
        feed.agency_id,
        feed.kind,
        feed.cadence,
        period_type,
        feed.grace_minutes,
        feed.coverage,
        feed.paused,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True, slots=True)
class _IndicatorInfo:
    id: int
    code: str
    name_vi: str
    name_en: str
    period_type: str


class _Assessment:
    """The scores of several feeds over one window, each score with a few queries for all of them at once."""

    def __init__(
        self,
        session: Session,
        feeds: Sequence[Feed],
        window: Window,
        province_code: str,
        *,
        indicator_id: int | None = None,
        detail: bool = False,
    ) -> None:
        self.session = session
        self.orm_feeds = {feed.id: feed for feed in feeds}
        self.window = window
        self.province_code = province_code
        self.indicator_id = indicator_id
        self.detail = detail
        self.ids = sorted(self.orm_feeds)
        self.results = {feed.id: FeedTrust(_feed_ref(feed)) for feed in feeds}
        self.indicators: dict[int, _IndicatorInfo] = {}
        self.feed_indicators: dict[int, list[int]] = defaultdict(list)  # judged (all, or the one asked for)
        self.carried: dict[int, set[int]] = defaultdict(set)  # every indicator each feed may carry
        # Distinct flagged items per feed: (observation id, batch id) of the version flagged.
        self.flagged_versions: dict[int, set[tuple[int, int]]] = defaultdict(set)
        self.unchanged: dict[int, int] = {}  # identical re-sends, per feed (counted per batch)
        self.required: dict[int, list[Subject]] = {}

    def run(self) -> dict[int, FeedTrust]:
        if not self.ids:
            return {}
        self._load_indicators()
        self._correct()
        self._complete_and_alive()
        self._clean()
        self._state()
        self._last_received()
        if self.detail:
            self._describe()
        return self.results

    # -- shared look-ups

    def _load_indicators(self) -> None:
        for row in self.session.execute(
            select(Indicator.id, Indicator.code, Indicator.name_vi, Indicator.name_en, Indicator.period_type)
        ):
            self.indicators[row.id] = _IndicatorInfo(row.id, row.code, row.name_vi, row.name_en, row.period_type)
        for feed_id, indicator_id in self.session.execute(
            select(feed_indicators.c.feed_id, feed_indicators.c.indicator_id).where(
                feed_indicators.c.feed_id.in_(self.ids)
            )
        ):
            self.carried[feed_id].add(indicator_id)
            if self.indicator_id is None or indicator_id == self.indicator_id:
                self.feed_indicators[feed_id].append(indicator_id)
        for indicator_ids in self.feed_indicators.values():
            indicator_ids.sort(key=lambda id_: self.indicators[id_].code)

    def _in_window(self, column: Any) -> Any:
        return and_(column >= self.window.start, column <= self.window.end)

    def _of_indicator(self, column: Any) -> Any:
        return column == self.indicator_id if self.indicator_id is not None else true()

    # -- đúng

    def _correct(self) -> None:
        session, ids = self.session, self.ids
        rejected = session.execute(
            select(IngestRejection.feed_id, func.count())
            .where(
                IngestRejection.feed_id.in_(ids),
                self._in_window(IngestRejection.received_at),
                self._of_indicator(IngestRejection.indicator_id),
            )
            .group_by(IngestRejection.feed_id)
        ).all()
        for feed_id, count in rejected:
            if feed_id is not None:
                self.results[feed_id].correct.rejected = count
        for table in (Observation, ObservationHistory):
            written = session.execute(
                select(table.feed_id, func.count())
                .where(
                    table.feed_id.in_(ids), self._in_window(table.received_at), self._of_indicator(table.indicator_id)
                )
                .group_by(table.feed_id)
            ).all()
            for feed_id, count in written:
                self.results[feed_id].correct.accepted += count
        if self.indicator_id is None:
            unchanged = session.execute(
                select(IngestBatch.feed_id, func.sum(IngestBatch.unchanged))
                .where(IngestBatch.feed_id.in_(ids), self._in_window(IngestBatch.received_at))
                .group_by(IngestBatch.feed_id)
            ).all()
            for feed_id, count in unchanged:
                if feed_id is not None:
                    self.unchanged[feed_id] = int(count or 0)
                    self.results[feed_id].correct.accepted += int(count or 0)
                    self.results[feed_id].clean.duplicates += int(count or 0)
        for result in self.results.values():
            result.clean.accepted = result.correct.accepted
        self._violations()
        if self.detail:
            self._rejected_rows()

    def _rejected_rows(self) -> None:
        rows = self.session.execute(
            select(
                IngestRejection.feed_id,
                IngestRejection.indicator_id,
                IngestRejection.batch_id,
                IngestRejection.item_index,
                IngestRejection.code,
                IngestRejection.field,
                IngestRejection.message_vi,
                IngestRejection.message_en,
                IngestRejection.item,
                IngestRejection.received_at,
            )
            .where(
                IngestRejection.feed_id.in_(self.ids),
                self._in_window(IngestRejection.received_at),
                self._of_indicator(IngestRejection.indicator_id),
            )
            .order_by(IngestRejection.received_at.desc(), IngestRejection.id.desc())
            .limit(ROW_LIMIT)
        )
        for row in rows:
            self.results[row.feed_id].correct.rejected_rows.append(
                {
                    "received_at": _iso(row.received_at),
                    "indicator_id": row.indicator_id,
                    "batch_id": row.batch_id,
                    "index": row.item_index,
                    "code": row.code,
                    "field": row.field or None,
                    "message_vi": row.message_vi,
                    "message_en": row.message_en,
                    "item": row.item or None,
                }
            )

    def _ratio_pairs(self) -> dict[tuple[int, int], list[int]]:
        """(numerator id, denominator id) of the catalog's ratios → the feeds that carry both parts."""
        by_code = {info.code: info.id for info in self.indicators.values()}
        pairs: dict[tuple[int, int], list[int]] = {}
        for numerator, denominator in self.session.execute(
            select(Indicator.numerator_code, Indicator.denominator_code).where(
                Indicator.aggregation == "ratio", Indicator.numerator_code != "", Indicator.denominator_code != ""
            )
        ):
            if numerator not in by_code or denominator not in by_code:
                continue
            pair = (by_code[numerator], by_code[denominator])
            if self.indicator_id is not None and self.indicator_id not in pair:
                continue
            feeds = [feed_id for feed_id in self.ids if set(pair) <= self.carried.get(feed_id, set())]
            if feeds:
                pairs[pair] = feeds
        return dict(sorted(pairs.items()))

    def _violations(self) -> None:
        """Parts above their whole: one arm per ratio (its part and whole fixed, so each arm uses the unique index)."""
        pairs = self._ratio_pairs()
        if not pairs:
            return
        arms = []
        for (numerator, denominator), feed_ids in pairs.items():
            part, whole = aliased(Observation), aliased(Observation)
            arms.append(
                select(
                    part.feed_id.label("feed_id"),
                    part.indicator_id.label("numerator_id"),
                    whole.indicator_id.label("denominator_id"),
                    part.subject_id.label("subject_id"),
                    part.period_key.label("period_key"),
                    part.period_type.label("period_type"),
                    part.period_start.label("period_start"),
                    part.dims_key.label("dims_key"),
                    part.value.label("numerator_value"),
                    whole.value.label("denominator_value"),
                    part.received_at.label("numerator_received_at"),
                    whole.received_at.label("denominator_received_at"),
                )
                .select_from(part)
                .join(
                    whole,
                    and_(
                        whole.indicator_id == denominator,
                        whole.subject_id == part.subject_id,
                        whole.period_key == part.period_key,
                        whole.dims_key == part.dims_key,
                        whole.feed_id == part.feed_id,
                    ),
                )
                .where(
                    part.indicator_id == numerator,
                    part.feed_id.in_(feed_ids),
                    part.value > whole.value,
                    or_(part.received_at >= self.window.start, whole.received_at >= self.window.start),
                    part.received_at <= self.window.end,
                    whole.received_at <= self.window.end,
                )
            )
        found = union_all(*arms).subquery() if len(arms) > 1 else arms[0].subquery()
        for feed_id, count in self.session.execute(select(found.c.feed_id, func.count()).group_by(found.c.feed_id)):
            self.results[feed_id].correct.violations = count
        if not self.detail:
            return
        rows = self.session.execute(
            select(found)
            .order_by(found.c.period_start.desc(), found.c.subject_id, found.c.numerator_id)
            .limit(ROW_LIMIT)
        )
        for row in rows:
            self.results[row.feed_id].correct.violation_rows.append(
                {
                    "numerator_id": row.numerator_id,
                    "denominator_id": row.denominator_id,
                    "subject_id": row.subject_id,
                    "period": row.period_key,
                    "period_type": row.period_type,
                    "dimensions": row.dims_key,
                    "numerator_value": row.numerator_value,
                    "denominator_value": row.denominator_value,
                    "numerator_received_at": _iso(_as_moment(row.numerator_received_at)),
                    "denominator_received_at": _iso(_as_moment(row.denominator_received_at)),
                }
            )

    # -- đủ and sống

    def _required_subjects(self, feed_ids: Iterable[int]) -> dict[int, list[Subject]]:
        """The subjects each feed must cover (looked up once per distinct coverage)."""
        memo: dict[tuple[str, tuple[str, ...]], list[Subject]] = {}
        found: dict[int, list[Subject]] = {}
        for feed_id in feed_ids:
            feed = self.orm_feeds[feed_id]
            key = (feed.coverage, tuple(feed.subject_codes or ()) if feed.coverage == "list" else ())
            if key not in memo:
                memo[key] = feeds_service.required_subjects(self.session, feed, self.province_code)
            found[feed_id] = memo[key]
        return found

    def _complete_and_alive(self) -> None:
        scheduled = [feed_id for feed_id in self.ids if self.results[feed_id].feed.period_type is not None]
        if not scheduled:
            return
        self.required = self._required_subjects(scheduled)
        expected_indicators = {
            feed_id: [
                indicator_id
                for indicator_id in self.feed_indicators.get(feed_id, [])
                if self.indicators[indicator_id].period_type == self.results[feed_id].feed.period_type
            ]
            for feed_id in scheduled
        }
        expectation = FeedExpectation
        judged_filter = and_(
            expectation.feed_id.in_(scheduled),
            self._in_window(expectation.due_at),
            expectation.late_at <= self.window.now,
        )
        judged: dict[int, list[Any]] = defaultdict(list)
        for row in self.session.execute(
            select(
                expectation.id,
                expectation.feed_id,
                expectation.period_type,
                expectation.period_key,
                expectation.period_start,
                expectation.period_end,
                expectation.due_at,
                expectation.late_at,
                expectation.state,
                expectation.on_time,
                expectation.received_at,
            )
            .where(judged_filter)
            .order_by(expectation.feed_id, expectation.period_start.desc())
        ):
            judged[row.feed_id].append(row)
        counts = self._received_counts(judged_filter, judged, expected_indicators)
        chosen: dict[int, list[tuple[Any, int, int]]] = {}
        for feed_id in scheduled:
            result, periods = self.results[feed_id], judged.get(feed_id, [])
            indicators, subjects = expected_indicators[feed_id], self.required[feed_id]
            expected = len(periods) * len(subjects) * len(indicators)
            received = sum(counts.get((row.id, indicator_id), 0) for row in periods for indicator_id in indicators)
            result.complete = Complete(
                applicable=expected > 0,
                periods=len(periods),
                subjects=len(subjects),
                indicators=len(indicators),
                expected=expected,
                received=received,
            )
            # Under an indicator, only the feeds expected to deliver it speak for its timeliness.
            if periods and (self.indicator_id is None or indicators):
                on_time = sum(1 for row in periods if row.state == RECEIVED and row.on_time)
                result.alive = Alive(applicable=True, periods=len(periods), on_time=on_time)
                if self.detail:
                    result.alive.late_rows = [
                        _late_row(row) for row in periods if not (row.state == RECEIVED and row.on_time)
                    ][:ROW_LIMIT]
            if self.detail and expected > received:
                chosen[feed_id] = _first_missing(periods, indicators, len(subjects), counts)
        if chosen:
            self._missing_rows(judged_filter, chosen)

    def _subject_cover(self, feed_ids: Iterable[int]) -> Any:
        """Observations of a subject the feed must cover (feeds grouped by the same subjects)."""
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for feed_id in feed_ids:
            subject_ids = tuple(subject.id for subject in self.required.get(feed_id, []))
            if subject_ids:
                groups[subject_ids].append(feed_id)
        if not groups:
            return None
        return or_(
            *(
                and_(FeedExpectation.feed_id.in_(feed_ids), Observation.subject_id.in_(list(subject_ids)))
                for subject_ids, feed_ids in groups.items()
            )
        )

    def _cells_query(self, judged_filter: Any, feed_ids: Sequence[int], rows: Sequence[Any], *, instant: bool) -> Any:
        """Observations joined to the expected period they fall in, for the feed's indicators of its period type.

        A calendar period is matched by its key (an index look-up); an interval slot by the instants inside it.
        """
        expectation, observation = FeedExpectation, Observation
        if instant:
            inside = and_(
                observation.period_start >= expectation.period_start,
                observation.period_start < expectation.period_end,
            )
        else:
            # Same key, so same start: stating both lets either index (feed, or indicator and start) serve it.
            inside = and_(
                observation.period_key == expectation.period_key,
                observation.period_start == expectation.period_start,
            )
        return (
            select(expectation.id)
            .select_from(expectation)
            .join(observation, and_(observation.feed_id == expectation.feed_id, inside))
            .join(
                Indicator,
                and_(Indicator.id == observation.indicator_id, Indicator.period_type == expectation.period_type),
            )
            .join(
                feed_indicators,
                and_(
                    feed_indicators.c.feed_id == expectation.feed_id,
                    feed_indicators.c.indicator_id == observation.indicator_id,
                ),
            )
            .where(
                judged_filter,
                self._subject_cover(feed_ids),
                observation.period_start >= min(row.period_start for row in rows),
                observation.period_start < max(row.period_end for row in rows),
                self._of_indicator(observation.indicator_id),
            )
        )

    def _by_cadence(
        self, feed_ids: Iterable[int], judged: dict[int, list[Any]]
    ) -> Iterable[tuple[bool, list[int], list[Any]]]:
        """The feeds (with periods judged and subjects to cover) split into interval and calendar ones."""
        for instant in (False, True):
            arm = [
                feed_id
                for feed_id in feed_ids
                if (self.results[feed_id].feed.period_type == "instant") == instant
                and judged.get(feed_id)
                and self.required.get(feed_id)
            ]
            if arm:
                yield instant, arm, [row for feed_id in arm for row in judged[feed_id]]

    def _received_counts(
        self, judged_filter: Any, judged: dict[int, list[Any]], expected_indicators: dict[int, list[int]]
    ) -> dict[tuple[int, int], int]:
        """(expected period id, indicator id) → how many of the required subjects the feed delivered."""
        counts: dict[tuple[int, int], int] = {}
        feed_ids = [feed_id for feed_id in judged if expected_indicators.get(feed_id)]
        for instant, arm, rows in self._by_cadence(feed_ids, judged):
            query = (
                self._cells_query(judged_filter, arm, rows, instant=instant)
                .with_only_columns(
                    FeedExpectation.id, Observation.indicator_id, func.count(Observation.subject_id.distinct())
                )
                .group_by(FeedExpectation.id, Observation.indicator_id)
            )
            counts.update(((row[0], row[1]), row[2]) for row in self.session.execute(query))
        return counts

    def _missing_rows(self, judged_filter: Any, chosen: dict[int, list[tuple[Any, int, int]]]) -> None:
        """List the cells not received of the periods chosen (newest first, up to ROW_LIMIT per feed)."""
        periods = {feed_id: [row for row, _, _ in cells] for feed_id, cells in chosen.items()}
        received: set[tuple[int, int, int]] = set()
        for instant, arm, rows in self._by_cadence(chosen, periods):
            query = (
                self._cells_query(judged_filter, arm, rows, instant=instant)
                .with_only_columns(FeedExpectation.id, Observation.indicator_id, Observation.subject_id)
                .where(FeedExpectation.id.in_(sorted({row.id for row in rows})))
                .distinct()
            )
            received.update((row[0], row[1], row[2]) for row in self.session.execute(query))
        for feed_id, cells in chosen.items():
            listed = self.results[feed_id].complete.missing_rows
            for row, indicator_id, _ in cells:
                for subject in self.required[feed_id]:
                    if len(listed) >= ROW_LIMIT:
                        break
                    if (row.id, indicator_id, subject.id) not in received:
                        listed.append(
                            {
                                "indicator_id": indicator_id,
                                "subject": subject.code,
                                "subject_name_vi": subject.name_vi,
                                "subject_name_en": subject.name_en,
                                "period": row.period_key,
                                "period_type": row.period_type,
                                "due_at": _iso(row.due_at),
                                "late_at": _iso(row.late_at),
                            }
                        )

    # -- sạch

    def _clean(self) -> None:
        self._resends()
        self._outliers()
        for feed_id, result in self.results.items():
            result.clean.flagged = self.unchanged.get(feed_id, 0) + len(self.flagged_versions[feed_id])

    def _resends(self) -> None:
        """Values replaced in the window: the same value again (a duplicate) or a final figure changed (a conflict)."""
        old, newer, current = ObservationHistory, aliased(ObservationHistory), Observation
        replaced_by_current = current.batch_id == old.replaced_by_batch_id
        new_value = case((replaced_by_current, current.value), else_=newer.value)
        new_null_reason = case((replaced_by_current, current.null_reason), else_=newer.null_reason)
        rows = self.session.execute(
            select(
                old.feed_id,
                old.observation_id,
                old.replaced_by_batch_id,
                old.indicator_id,
                old.subject_id,
                old.period_key,
                old.dims_key,
                old.value,
                old.null_reason,
                old.received_at,
                old.replaced_at,
                current.period_type,
                new_value.label("new_value"),
                new_null_reason.label("new_null_reason"),
            )
            .select_from(old)
            .join(current, current.id == old.observation_id)
            .outerjoin(
                newer, and_(newer.observation_id == old.observation_id, newer.batch_id == old.replaced_by_batch_id)
            )
            .where(
                old.feed_id.in_(self.ids),
                self._in_window(old.replaced_at),
                self._of_indicator(old.indicator_id),
                or_(current.period_end <= old.replaced_at, new_value.is_not_distinct_from(old.value)),
            )
            .order_by(old.replaced_at.desc(), old.id.desc())
        )
        for row in rows:
            clean = self.results[row.feed_id].clean
            self.flagged_versions[row.feed_id].add((row.observation_id, row.replaced_by_batch_id))
            same = row.new_value == row.value
            common = {
                "indicator_id": row.indicator_id,
                "subject_id": row.subject_id,
                "period": row.period_key,
                "period_type": row.period_type,
                "dimensions": row.dims_key,
            }
            if same:
                clean.duplicates += 1
                if self.detail and len(clean.duplicate_rows) < ROW_LIMIT:
                    clean.duplicate_rows.append(
                        {
                            "kind": "same_value",
                            **common,
                            "value": row.value,
                            "received_at": _iso(row.replaced_at),
                            "count": 1,
                        }
                    )
            else:
                clean.conflicts += 1
                if self.detail and len(clean.conflict_rows) < ROW_LIMIT:
                    clean.conflict_rows.append(
                        {
                            **common,
                            "old_value": row.value,
                            "new_value": row.new_value,
                            "old_null_reason": row.null_reason or None,
                            "new_null_reason": row.new_null_reason or None,
                            "old_received_at": _iso(row.received_at),
                            "replaced_at": _iso(row.replaced_at),
                        }
                    )
        if self.detail and self.indicator_id is None:
            batches = self.session.execute(
                select(
                    IngestBatch.id,
                    IngestBatch.feed_id,
                    IngestBatch.received_at,
                    IngestBatch.unchanged,
                    IngestBatch.source,
                )
                .where(
                    IngestBatch.feed_id.in_(self.ids),
                    self._in_window(IngestBatch.received_at),
                    IngestBatch.unchanged > 0,
                )
                .order_by(IngestBatch.received_at.desc(), IngestBatch.id.desc())
                .limit(ROW_LIMIT)
            )
            for batch in batches:
                rows_of_feed = self.results[batch.feed_id].clean.duplicate_rows
                rows_of_feed.append(
                    {
                        "kind": "identical",
                        "batch_id": batch.id,
                        "source": batch.source,
                        "received_at": _iso(batch.received_at),
                        "count": batch.unchanged,
                    }
                )

    def _outliers(self) -> None:
        """Values received in the window far from their series' median (robust z above OUTLIER_LIMIT).

        The scan reads plain numbers only (whether a value was received in the window is decided in SQL); the
        few flagged values are then read in full.
        """
        observation = Observation
        spans = or_(
            *(
                and_(observation.period_type == period_type, observation.period_start >= self.window.start - span)
                for period_type, span in CONTEXT_SPAN.items()
            )
        )
        received_in_window = case((self._in_window(observation.received_at), 1), else_=0)
        rows = self.session.execute(
            select(
                observation.feed_id,
                observation.indicator_id,
                observation.subject_id,
                observation.dims_key,
                observation.id,
                observation.batch_id,
                observation.value,
                received_in_window,
            ).where(
                observation.feed_id.in_(self.ids),
                observation.value.is_not(None),
                observation.period_end <= self.window.now,  # a running period's figure is provisional
                observation.period_start <= self.window.end,
                spans,
                self._of_indicator(observation.indicator_id),
            )
        )
        series: dict[tuple[int, int, int, str], list[tuple[int, int, float, int]]] = defaultdict(list)
        for feed_id, indicator_id, subject_id, dims_key, id_, batch_id, value, judged in rows:
            series[(feed_id, indicator_id, subject_id, dims_key)].append((id_, batch_id, value, judged))
        flagged: dict[int, tuple[int, float, float, float, int]] = {}  # observation id → feed, median, scale, z, size
        for (feed_id, _indicator, _subject, _dims), values in series.items():
            if len(values) < MIN_SERIES or not any(judged for *_, judged in values):
                continue
            median, scale = robust_centre([value for _, _, value, _ in values])
            if scale <= 0:
                continue
            for id_, batch_id, value, judged in values:
                deviation = abs(value - median) / scale
                if judged and deviation > OUTLIER_LIMIT:
                    self.flagged_versions[feed_id].add((id_, batch_id))
                    self.results[feed_id].clean.outliers += 1
                    flagged[id_] = (feed_id, median, scale, deviation, len(values))
        if self.detail and flagged:
            self._outlier_rows(flagged)

    def _outlier_rows(self, flagged: dict[int, tuple[int, float, float, float, int]]) -> None:
        found: dict[int, list[tuple[Any, dict[str, Any]]]] = defaultdict(list)
        ids = sorted(flagged)
        for chunk in (ids[index : index + 500] for index in range(0, len(ids), 500)):
            for row in self.session.execute(
                select(
                    Observation.id,
                    Observation.indicator_id,
                    Observation.subject_id,
                    Observation.period_key,
                    Observation.period_type,
                    Observation.period_start,
                    Observation.dims_key,
                    Observation.value,
                    Observation.received_at,
                ).where(Observation.id.in_(chunk))
            ):
                feed_id, median, scale, deviation, size = flagged[row.id]
                found[feed_id].append(
                    (
                        (row.period_start, deviation),
                        {
                            "indicator_id": row.indicator_id,
                            "subject_id": row.subject_id,
                            "period": row.period_key,
                            "period_type": row.period_type,
                            "dimensions": row.dims_key,
                            "value": row.value,
                            "median": median,
                            "scale": scale,
                            "deviation": deviation,
                            "series_size": size,
                            "received_at": _iso(row.received_at),
                        },
                    )
                )
        for feed_id, outliers in found.items():
            outliers.sort(key=lambda pair: pair[0], reverse=True)  # newest period first, the farthest first
            self.results[feed_id].clean.outlier_rows = [row for _, row in outliers[:ROW_LIMIT]]

    # -- the state now

    def _state(self) -> None:
        expectation, now = FeedExpectation, self.window.now
        late_now: dict[int, int] = {
            feed_id: count
            for feed_id, count in self.session.execute(
                select(expectation.feed_id, func.count())
                .where(
                    expectation.feed_id.in_(self.ids),
                    expectation.state.in_((EXPECTED, LATE)),
                    expectation.late_at <= now,
                )
                .group_by(expectation.feed_id)
            )
        }
        ranked = (
            select(
                expectation.feed_id,
                expectation.state,
                expectation.on_time,
                func.row_number()
                .over(partition_by=expectation.feed_id, order_by=expectation.period_start.desc())
                .label("rank"),
            )
            .where(expectation.feed_id.in_(self.ids), expectation.late_at <= now)
            .subquery()
        )
        last_periods: dict[int, list[bool]] = defaultdict(list)
        for feed_id, state, on_time in self.session.execute(
            select(ranked.c.feed_id, ranked.c.state, ranked.c.on_time).where(ranked.c.rank <= DOWN_AFTER)
        ):
            last_periods[feed_id].append(state == RECEIVED and bool(on_time))
        runs_ranked = (
            select(
                FeedRun.feed_id,
                FeedRun.trigger,
                FeedRun.status,
                FeedRun.started_at,
                FeedRun.error_code,
                FeedRun.message_vi,
                FeedRun.message_en,
                func.row_number()
                .over(partition_by=FeedRun.feed_id, order_by=(FeedRun.started_at.desc(), FeedRun.id.desc()))
                .label("rank"),
            )
            .where(FeedRun.feed_id.in_(self.ids), FeedRun.status != "running")
            .subquery()
        )
        last_runs: dict[int, list[Any]] = defaultdict(list)
        for run in self.session.execute(
            select(runs_ranked).where(runs_ranked.c.rank <= DOWN_AFTER).order_by(runs_ranked.c.rank)
        ):
            last_runs[run.feed_id].append(run)
        for feed_id, result in self.results.items():
            feed = result.feed
            result.late_now = int(late_now.get(feed_id, 0))
            periods, runs = last_periods.get(feed_id, []), last_runs.get(feed_id, [])
            periods_down = len(periods) >= DOWN_AFTER and not any(periods)
            runs_down = len(runs) >= DOWN_AFTER and all(run.status == "failed" for run in runs)
            if feed.paused:
                result.state = PAUSED
            elif periods_down or runs_down:
                result.state = DOWN
            elif feed.period_type is None:
                result.state = UNSCHEDULED
            elif result.late_now:
                result.state = LATE_NOW
            else:
                result.state = ON_TIME
            if runs_down and self.detail:
                result.alive.failed_runs = [
                    {
                        "started_at": _iso(run.started_at),
                        "trigger": run.trigger,
                        "error_code": run.error_code or None,
                        "message_vi": run.message_vi,
                        "message_en": run.message_en,
                    }
                    for run in runs
                ]

    def _last_received(self) -> None:
        latest: dict[int, datetime] = {}
        queries: list[Any] = [
            select(Observation.feed_id, func.max(Observation.received_at))
            .where(Observation.feed_id.in_(self.ids), self._of_indicator(Observation.indicator_id))
            .group_by(Observation.feed_id)
        ]
        if self.indicator_id is None:  # an identical re-send is an arrival too
            queries.append(
                select(IngestBatch.feed_id, func.max(IngestBatch.received_at))
                .where(IngestBatch.feed_id.in_(self.ids), IngestBatch.accepted > 0)
                .group_by(IngestBatch.feed_id)
            )
        for query in queries:
            for feed_id, moment in self.session.execute(query):
                if moment is not None and (feed_id not in latest or moment > latest[feed_id]):
                    latest[feed_id] = moment
        for feed_id, moment in latest.items():
            # max() over a UTCDateTime column comes back as text on SQLite: read it through the column type.
            self.results[feed_id].last_received_at = _as_moment(moment)

    # -- names for the rows listed

    def _describe(self) -> None:
        subject_ids: set[int] = set()
        for result in self.results.values():
            for row in _all_rows(result):
                if "subject_id" in row:
                    subject_ids.add(row["subject_id"])
        subjects: dict[int, Any] = {}
        if subject_ids:
            subjects = {
                row.id: row
                for row in self.session.execute(
                    select(Subject.id, Subject.code, Subject.name_vi, Subject.name_en).where(
                        Subject.id.in_(sorted(subject_ids))
                    )
                )
            }
        for result in self.results.values():
            for row in _all_rows(result):
                for prefix in ("", "numerator_", "denominator_"):
                    key = f"{prefix}id" if prefix else "indicator_id"
                    if key in row:
                        info = self.indicators.get(row.pop(key))
                        name = prefix.rstrip("_") or "indicator"
                        row[name] = info.code if info else None
                        row[f"{name}_name_vi"] = info.name_vi if info else None
                        row[f"{name}_name_en"] = info.name_en if info else None
                if "subject_id" in row:
                    subject = subjects.get(row.pop("subject_id"))
                    row["subject"] = subject.code if subject else None
                    row["subject_name_vi"] = subject.name_vi if subject else None
                    row["subject_name_en"] = subject.name_en if subject else None


def robust_centre(values: Sequence[float]) -> tuple[float, float]:
    """The median of some values and the robust scale of their spread (1.4826·MAD, or 1.2533·mean deviation)."""
    median = statistics.median(values)
    deviations = [abs(value - median) for value in values]
    mad = statistics.median(deviations)
    if mad > 0:
        return median, MAD_SCALE * mad
    return median, MEAN_AD_SCALE * statistics.fmean(deviations)


def _as_moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _late_row(row: Any) -> dict[str, Any]:
    return {
        "period": row.period_key,
        "period_type": row.period_type,
        "due_at": _iso(row.due_at),
        "late_at": _iso(row.late_at),
        "received_at": _iso(row.received_at),
        "state": "received_late" if row.state == RECEIVED else "missing",
    }


def _first_missing(
    periods: Sequence[Any], indicators: Sequence[int], subjects: int, counts: dict[tuple[int, int], int]
) -> list[tuple[Any, int, int]]:
    """The newest (period, indicator) cells short of subjects, until they hold ROW_LIMIT missing ones."""
    chosen: list[tuple[Any, int, int]] = []
    total = 0
    for row in periods:  # newest first
        for indicator_id in indicators:
            short = subjects - counts.get((row.id, indicator_id), 0)
            if short > 0:
                chosen.append((row, indicator_id, short))
                total += short
                if total >= ROW_LIMIT:
                    return chosen
    return chosen


def _all_rows(result: FeedTrust) -> Iterable[dict[str, Any]]:
    yield from result.correct.rejected_rows
    yield from result.correct.violation_rows
    yield from result.complete.missing_rows
    yield from result.clean.duplicate_rows
    yield from result.clean.conflict_rows
    yield from result.clean.outlier_rows


# --- what the API and pages ask -----------------------------------------------------------------------------


def feed_trust(
    session: Session,
    feed: Feed,
    start: datetime,
    end: datetime,
    now: datetime,
    province_code: str,
    *,
    detail: bool = True,
) -> FeedTrust:
    """One feed's four scores over [start, end], its state now and (with detail) the rows that lowered them."""
    return _Assessment(session, [feed], Window(start, end, now), province_code, detail=detail).run()[feed.id]


def indicator_trust(
    session: Session,
    indicator: Indicator,
    start: datetime,
    end: datetime,
    now: datetime,
    province_code: str,
    *,
    detail: bool = True,
) -> IndicatorTrust:
    """One indicator's scores pooled over the feeds that carry it, with each feed's own."""
    feeds = list(
        session.scalars(
            select(Feed)
            .join(feed_indicators, feed_indicators.c.feed_id == Feed.id)
            .where(feed_indicators.c.indicator_id == indicator.id)
            .order_by(Feed.code)
        )
    )
    results = _Assessment(
        session, feeds, Window(start, end, now), province_code, indicator_id=indicator.id, detail=detail
    ).run()
    per_feed = [results[feed.id] for feed in feeds]
    return IndicatorTrust(
        indicator.id, indicator.code, indicator.name_vi, indicator.name_en, _pooled(per_feed), per_feed
    )


def _pooled(results: Sequence[FeedTrust]) -> FeedTrust | None:
    """The counts of several feeds' scores added up (the rows joined, newest first, up to ROW_LIMIT)."""
    if not results:
        return None
    total = FeedTrust(results[0].feed)
    for result in results:
        for name in ("accepted", "rejected", "violations"):
            setattr(total.correct, name, getattr(total.correct, name) + getattr(result.correct, name))
        for name in ("periods", "subjects", "indicators", "expected", "received"):
            setattr(total.complete, name, getattr(total.complete, name) + getattr(result.complete, name))
        total.complete.applicable = total.complete.applicable or result.complete.applicable
        for name in ("accepted", "duplicates", "conflicts", "outliers", "flagged"):
            setattr(total.clean, name, getattr(total.clean, name) + getattr(result.clean, name))
        total.alive.applicable = total.alive.applicable or result.alive.applicable
        total.alive.periods += result.alive.periods
        total.alive.on_time += result.alive.on_time
        total.late_now += result.late_now
        if result.last_received_at is not None and (
            total.last_received_at is None or result.last_received_at > total.last_received_at
        ):
            total.last_received_at = result.last_received_at
    total.state = worst_state(result.state for result in results)
    return total


def ranking(session: Session, start: datetime, end: datetime, now: datetime, province_code: str) -> list[AgencyTrust]:
    """Every agency that supplies a feed, with its feeds' scores: the worst overall first (nothing to judge last)."""
    feeds = list(session.scalars(select(Feed).order_by(Feed.code)))
    results = _Assessment(session, feeds, Window(start, end, now), province_code).run()
    by_agency: dict[int, list[FeedTrust]] = defaultdict(list)
    for feed in feeds:
        by_agency[feed.agency_id].append(results[feed.id])
    agencies = session.execute(
        select(Agency.id, Agency.code, Agency.name_vi, Agency.name_en).where(Agency.id.in_(sorted(by_agency)))
    ).all()
    ranked = [
        AgencyTrust(
            agency.id, agency.code, agency.name_vi, agency.name_en, sorted(by_agency[agency.id], key=_worst_first)
        )
        for agency in agencies
    ]
    ranked.sort(key=lambda agency: (*_score_order(agency.overall), -_SEVERITY[agency.state], agency.code))
    return ranked


def _score_order(score: float | None) -> tuple[bool, float]:
    return (score is None, score if score is not None else 0.0)


def _worst_first(result: FeedTrust) -> tuple[bool, float, int, str]:
    return (*_score_order(result.overall), -_SEVERITY[result.state], result.feed.code)


# --- answers for a principal ---------------------------------------------------------------------------------


def may_see_rows(principal: Principal, agency_id: int) -> bool:
    """Whether a principal may see the rows behind a feed's scores: province-wide roles, or its own agencies."""
    return principal.province_wide or agency_id in principal.agency_ids


def window_out(window: Window) -> dict[str, Any]:
    return {"from": window.start.isoformat(), "to": window.end.isoformat(), "now": window.now.isoformat()}


def _scores_out(scores: dict[str, float | None]) -> dict[str, Any]:
    return {**scores, "overall": _mean(scores.values())}


def _cadence_texts(cadence: str) -> dict[str, str]:
    if not cadence:
        return {"cadence_vi": "", "cadence_en": ""}
    try:
        parsed = parse_cadence(cadence)
    except CadenceError:
        return {"cadence_vi": cadence, "cadence_en": cadence}
    return {"cadence_vi": parsed.describe("vi"), "cadence_en": parsed.describe("en")}


def _feed_summary(result: FeedTrust, details: bool) -> dict[str, Any]:
    feed = result.feed
    return {
        "code": feed.code,
        "name": feed.name,
        "kind": feed.kind,
        "cadence": feed.cadence,
        **_cadence_texts(feed.cadence),
        "scheduled": feed.period_type is not None,
        "paused": feed.paused,
        "state": result.state,
        "late_now": result.late_now,
        "last_received_at": _iso(result.last_received_at),
        "scores": _scores_out(result.scores),
        "details": details,
    }


def _redact(rows: list[dict[str, Any]], visible_codes: set[str]) -> list[dict[str, Any]]:
    """Rows with the values of indicators the reader may not see blanked out (and marked hidden)."""
    shown: list[dict[str, Any]] = []
    for row in rows:
        codes = {row.get(key) for key in ("indicator", "numerator", "denominator")} - {None}
        if codes <= visible_codes:
            shown.append({**row, "hidden": False})
        else:
            shown.append({**row, **{name: None for name in VALUE_FIELDS if name in row}, "hidden": True})
    return shown


def _detail_out(result: FeedTrust, visible_codes: set[str]) -> dict[str, Any]:
    correct, complete, clean, alive = result.correct, result.complete, result.clean, result.alive
    return {
        "correct": {
            "score": correct.score,
            "accepted": correct.accepted,
            "rejected": correct.rejected,
            "violations": correct.violations,
            "rejected_rows": _redact(correct.rejected_rows, visible_codes),
            "violation_rows": _redact(correct.violation_rows, visible_codes),
        },
        "complete": {
            "score": complete.score,
            "applicable": complete.applicable,
            "periods": complete.periods,
            "subjects": complete.subjects,
            "indicators": complete.indicators,
            "expected": complete.expected,
            "received": complete.received,
            "missing": complete.missing,
            "missing_rows": _redact(complete.missing_rows, visible_codes),
        },
        "clean": {
            "score": clean.score,
            "accepted": clean.accepted,
            "flagged": clean.flagged,
            "duplicates": clean.duplicates,
            "conflicts": clean.conflicts,
            "outliers": clean.outliers,
            "duplicate_rows": _redact(clean.duplicate_rows, visible_codes),
            "conflict_rows": _redact(clean.conflict_rows, visible_codes),
            "outlier_rows": _redact(clean.outlier_rows, visible_codes),
        },
        "alive": {
            "score": alive.score,
            "applicable": alive.applicable,
            "periods": alive.periods,
            "on_time": alive.on_time,
            "late": alive.periods - alive.on_time,
            "late_rows": alive.late_rows,
            "failed_runs": alive.failed_runs,
        },
    }


_NO_FEED = FeedRef(0, "", "", 0, "", "", None, 0, "", False)


def _with_rows_of(total: FeedTrust, results: Sequence[FeedTrust]) -> FeedTrust:
    """A copy of pooled counts holding the listed rows of some feeds (newest first, up to ROW_LIMIT each)."""
    combined = FeedTrust(
        total.feed,
        replace(total.correct, rejected_rows=[], violation_rows=[]),
        replace(total.complete, missing_rows=[]),
        replace(total.clean, duplicate_rows=[], conflict_rows=[], outlier_rows=[]),
        replace(total.alive, late_rows=[], failed_runs=[]),
        total.state,
        total.late_now,
        total.last_received_at,
    )
    for result in results:
        feed = {"feed": result.feed.code}
        for source, target in (
            (result.correct.rejected_rows, combined.correct.rejected_rows),
            (result.correct.violation_rows, combined.correct.violation_rows),
            (result.complete.missing_rows, combined.complete.missing_rows),
            (result.clean.duplicate_rows, combined.clean.duplicate_rows),
            (result.clean.conflict_rows, combined.clean.conflict_rows),
            (result.clean.outlier_rows, combined.clean.outlier_rows),
            (result.alive.late_rows, combined.alive.late_rows),
        ):
            target.extend({**row, **feed} for row in source)
    for rows in (
        combined.correct.rejected_rows,
        combined.correct.violation_rows,
        combined.complete.missing_rows,
        combined.clean.duplicate_rows,
        combined.clean.conflict_rows,
        combined.clean.outlier_rows,
        combined.alive.late_rows,
    ):
        del rows[ROW_LIMIT:]
    return combined


def _agency_out(session: Session, agency_id: int) -> dict[str, Any]:
    row = session.execute(select(Agency.code, Agency.name_vi, Agency.name_en).where(Agency.id == agency_id)).one()
    return {"code": row.code, "name_vi": row.name_vi, "name_en": row.name_en}


def visible_indicator_codes(session: Session, principal: Principal) -> set[str]:
    """The codes of the indicators whose values the principal may see."""
    return set(session.scalars(catalog.visible(select(Indicator.code), principal)))


def ranking_report(session: Session, principal: Principal, window: Window, province_code: str) -> dict[str, Any]:
    """The agencies ranked, worst first, with their feeds' scores; which feeds' rows the principal may open."""
    agencies = ranking(session, window.start, window.end, window.now, province_code)
    return {
        "window": window_out(window),
        "row_limit": ROW_LIMIT,
        "agencies": [
            {
                "code": agency.code,
                "name_vi": agency.name_vi,
                "name_en": agency.name_en,
                "state": agency.state,
                "scores": _scores_out(agency.scores),
                "feeds": [_feed_summary(result, may_see_rows(principal, agency.id)) for result in agency.feeds],
            }
            for agency in agencies
        ],
    }


def feed_report(
    session: Session, principal: Principal, code: str, window: Window, province_code: str
) -> dict[str, Any]:
    """One feed's scores, state and the rows that lowered them; FeedUnknown, or FeedNotYours for another agency's."""
    feed = session.scalar(select(Feed).where(Feed.code == code))
    if feed is None:
        raise FeedUnknown(code)
    if not may_see_rows(principal, feed.agency_id):
        raise FeedNotYours(code)
    result = feed_trust(session, feed, window.start, window.end, window.now, province_code)
    return {
        "window": window_out(window),
        "row_limit": ROW_LIMIT,
        "feed": {
            **_feed_summary(result, True),
            "agency": _agency_out(session, feed.agency_id),
            "coverage": feed.coverage,
            "grace_minutes": feed.grace_minutes,
            "indicators": feeds_service.feed_indicator_codes(session, feed.id),
        },
        **_detail_out(result, visible_indicator_codes(session, principal)),
    }


def indicator_report(
    session: Session, principal: Principal, code: str, window: Window, province_code: str
) -> dict[str, Any]:
    """One indicator's scores over its feeds; the rows only of the feeds the principal may open."""
    found = catalog.get_indicator(session, principal, code)
    if found is None:
        raise IndicatorUnknown(code)
    indicator = found[0]
    trust = indicator_trust(session, indicator, window.start, window.end, window.now, province_code)
    allowed = [result for result in trust.feeds if may_see_rows(principal, result.feed.agency_id)]
    total = trust.total or FeedTrust(_NO_FEED, state=UNSCHEDULED)
    # The counts cover every feed; the rows listed only those of the feeds the reader may open.
    detail = _detail_out(_with_rows_of(total, allowed), visible_indicator_codes(session, principal))
    return {
        "window": window_out(window),
        "row_limit": ROW_LIMIT,
        "indicator": {"code": indicator.code, "name_vi": indicator.name_vi, "name_en": indicator.name_en},
        "state": total.state,
        "late_now": total.late_now,
        "last_received_at": _iso(total.last_received_at),
        "scores": _scores_out(total.scores),
        **detail,
        "feeds": [_feed_summary(result, may_see_rows(principal, result.feed.agency_id)) for result in trust.feeds],
    }
