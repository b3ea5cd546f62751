"""Statistics of citizen reports, and the catalog's feedback indicators (pakn.*) fed from them.

Two readers of the same table (`feedback_reports`, with each report's incident for its handling status):

- `report_stats()` answers the statistics page and API for a window of request dates: counts by Open311 status, by
  the incident's handling status, by category, responsible agency, commune and result (answered on time, late,
  rejected, still open), the on-time rate, the average and median handling time (requested → answered) and the
  satisfaction rate (ratings 4–5 of all ratings). One grouped query gives every breakdown; one more reads the
  handling times. An agency's users see their subtree's reports only.
- `publish_indicators()` (every worker tick, at most once a minute) counts today's (and yesterday's, so a late
  answer before midnight is not missed) reports per commune and for the province, and stores what changed through
  the ordinary ingest, under the IOC's own feed `cityops_phan_anh`. The ratios (pakn.ty_le_dung_han,
  pakn.ty_le_hai_long) are not stored: observations.derived computes them from their parts.
"""

from __future__ import annotations

import statistics
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, agency_subtree
from cityops.catalog.models import Indicator
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.feedback.models import CLOSED, OPEN, FeedbackCategory, Report
from cityops.feeds.models import Feed
from cityops.feeds.service import feed_principal, own_feed
from cityops.geo.models import Subject
from cityops.incidents.models import REJECTED, Incident
from cityops.observations.models import Observation
from cityops.observations.periods import period_of
from cityops.observations.service import ingest_items

# --- statistics ---------------------------------------------------------------------------------------------

RESULTS = ("on_time", "late", "rejected", "open", "other")  # what became of a report
HANDLING = ("none", "new", "assigned", "in_progress", "resolved", "closed", "rejected")  # its incident's status
SATISFIED_FROM = 4  # ratings 4 and 5 are "satisfied"
DEFAULT_DAYS = 30
MAX_DAYS = 400


class StatsError(ValueError):
    """A window or filter that cannot be read (code: the problem's code)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.params = code, params


@dataclass(frozen=True)
class Window:
    """Reports requested from `first` to `last` (local days, both included)."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=LOCAL_TZ)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=(self.last - self.first).days + 1)


def parse_window(first: str | None, last: str | None, now: datetime) -> Window:
    """A window from `from` and `to` (YYYY-MM-DD or DD/MM/YYYY, local days); by default the 30 days up to today."""
    today = now.astimezone(LOCAL_TZ).date()
    try:
        end = _day(last) if last and last.strip() else today
        start = _day(first) if first and first.strip() else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise StatsError("feedback_invalid_window", start=(first or "")[:40], end=(last or "")[:40]) from None
    if start > end or (end - start).days >= MAX_DAYS:
        raise StatsError("feedback_invalid_window", start=start.isoformat(), end=end.isoformat())
    return Window(start, end)


def _day(text: str) -> date:
    text = text.strip()
    if "/" in text:
        day, month, year = text.split("/")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


@dataclass(frozen=True)
class Filters:
    """What the statistics and the list are narrowed to (codes as given; empty = all)."""

    status: str = ""  # open, closed
    category: str = ""
    agency: str = ""
    commune: str = ""


def visible_agencies(session: Session, principal: Principal, agency_code: str = "") -> frozenset[int] | None:
    """The agencies whose reports the principal may see, narrowed to one agency's subtree; None = every agency.

    An agency outside what the principal may see gives the empty set (its reports do not exist for them)."""
    chosen: frozenset[int] | None = None if principal.province_wide else principal.agency_ids
    if agency_code:
        agency_id = session.scalar(select(Agency.id).where(Agency.code == agency_code))
        if agency_id is None:
            raise StatsError("feedback_unknown_filter", name="agency", value=agency_code[:64])
        subtree = agency_subtree(session, agency_id)
        chosen = subtree if chosen is None else chosen & subtree
    return chosen


def report_conditions(session: Session, principal: Principal, filters: Filters) -> list[Any]:
    """WHERE conditions on `feedback_reports` for a principal and filters (StatsError for an unknown code)."""
    conditions: list[Any] = []
    agencies = visible_agencies(session, principal, filters.agency)
    if agencies is not None:
        conditions.append(Report.agency_id.in_(sorted(agencies)) if agencies else Report.id.is_(None))
    if filters.status:
        if filters.status not in (OPEN, CLOSED):
            raise StatsError("feedback_unknown_filter", name="status", value=filters.status[:64])
        conditions.append(Report.status == filters.status)
    if filters.category:
        category_id = session.scalar(select(FeedbackCategory.id).where(FeedbackCategory.code == filters.category))
        if category_id is None:
            raise StatsError("feedback_unknown_filter", name="category", value=filters.category[:64])
        conditions.append(Report.category_id == category_id)
    if filters.commune:
        subject_id = session.scalar(
            select(Subject.id).where(Subject.code == filters.commune, Subject.kind == "commune")
        )
        if subject_id is None:
            raise StatsError("feedback_unknown_filter", name="commune", value=filters.commune[:64])
        conditions.append(Report.subject_id == subject_id)
    return conditions


@dataclass
class Tally:
    """Counts of one group of reports (a category, an agency, a commune, or all)."""

    total: int = 0
    open: int = 0
    closed: int = 0
    results: Counter[str] = field(default_factory=Counter)
    rated: int = 0
    satisfied: int = 0

    def add(self, count: int, status: str, result: str, rating: int | None) -> None:
        self.total += count
        if status == OPEN:
            self.open += count
        else:
            self.closed += count
        self.results[result] += count
        if rating is not None:
            self.rated += count
            self.satisfied += count if rating >= SATISFIED_FROM else 0

    @property
    def answered(self) -> int:
        return self.results["on_time"] + self.results["late"]

    @property
    def on_time_rate(self) -> float | None:
        return _percent(self.results["on_time"], self.answered)

    @property
    def satisfaction_rate(self) -> float | None:
        return _percent(self.satisfied, self.rated)

    def out(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "open": self.open,
            "closed": self.closed,
            "results": {name: self.results[name] for name in RESULTS},
            "answered": self.answered,
            "on_time_rate": self.on_time_rate,
            "rated": self.rated,
            "satisfied": self.satisfied,
            "not_satisfied": self.rated - self.satisfied,
            "satisfaction_rate": self.satisfaction_rate,
        }


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def result_of(status: str, incident_status: str | None, answered: bool, on_time: bool | None) -> str:
    """What became of a report: on_time, late, rejected, open or other (closed without an answer, e.g. merged)."""
    if incident_status == REJECTED:
        return "rejected"
    if answered:
        return "on_time" if on_time else "late"
    return "open" if status == OPEN else "other"


def report_stats(session: Session, principal: Principal, window: Window, filters: Filters) -> dict[str, Any]:
    """Every count, rate and time of the reports requested in the window that the principal may see."""
    conditions = [
        *report_conditions(session, principal, filters),
        Report.requested_at >= window.start,
        Report.requested_at < window.end,
    ]
    answered = Report.answered_at.is_not(None)
    rows = session.execute(
        select(
            Report.category_id,
            Report.agency_id,
            Report.subject_id,
            Report.status,
            Incident.status,
            answered,
            Report.on_time,
            Report.rating,
            func.count(),
        )
        .outerjoin(Incident, Incident.id == Report.incident_id)
        .where(*conditions)
        .group_by(
            Report.category_id,
            Report.agency_id,
            Report.subject_id,
            Report.status,
            Incident.status,
            answered,
            Report.on_time,
            Report.rating,
        )
    ).all()
    overall = Tally()
    handling: Counter[str] = Counter()
    groups: dict[str, dict[int | None, Tally]] = {"category": {}, "agency": {}, "commune": {}}
    for category_id, agency_id, subject_id, status, incident_status, is_answered, on_time, rating, count in rows:
        result = result_of(status, incident_status, bool(is_answered), on_time)
        overall.add(count, status, result, rating)
        handling[incident_status or "none"] += count
        for name, key in (("category", category_id), ("agency", agency_id), ("commune", subject_id)):
            groups[name].setdefault(key, Tally()).add(count, status, result, rating)
    hours = sorted(
        (answered_at - requested_at).total_seconds() / 3600
        for requested_at, answered_at in session.execute(
            select(Report.requested_at, Report.answered_at).where(*conditions, answered)
        )
        if answered_at is not None
    )
    names = _names(session, groups)
    return {
        "from": window.first.isoformat(),
        "to": window.last.isoformat(),
        **overall.out(),
        "handling": {name: handling[name] for name in HANDLING},
        "average_hours": round(sum(hours) / len(hours), 1) if hours else None,
        "median_hours": round(statistics.median(hours), 1) if hours else None,
        "by_category": _group_out(groups["category"], names["category"]),
        "by_agency": _group_out(groups["agency"], names["agency"]),
        "by_commune": _group_out(groups["commune"], names["commune"]),
    }


def _names(session: Session, groups: dict[str, dict[int | None, Tally]]) -> dict[str, dict[int, tuple[str, str, str]]]:
    """(code, name_vi, name_en) of the categories, agencies and communes counted."""
    tables = {"category": FeedbackCategory, "agency": Agency, "commune": Subject}
    names: dict[str, dict[int, tuple[str, str, str]]] = {}
    for name, model in tables.items():
        ids = sorted(key for key in groups[name] if key is not None)
        rows = session.execute(
            select(model.id, model.code, model.name_vi, model.name_en).where(model.id.in_(ids))  # type: ignore[attr-defined]
        ).all()
        names[name] = {row[0]: (row[1], row[2], row[3] or row[2]) for row in rows}
    return names


def _group_out(tallies: dict[int | None, Tally], names: dict[int, tuple[str, str, str]]) -> list[dict[str, Any]]:
    items = []
    for key, tally in tallies.items():
        code, name_vi, name_en = names.get(key, ("", "", "")) if key is not None else ("", "", "")
        items.append({"code": code or None, "name_vi": name_vi, "name_en": name_en, **tally.out()})
    return sorted(items, key=lambda item: (-item["total"], item["code"] or "~"))


# --- the live list ------------------------------------------------------------------------------------------

MAX_LIST = 500


def list_reports(
    session: Session,
    principal: Principal,
    filters: Filters,
    window: Window | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The reports the principal may see, newest first, without personal data; and how many match in all."""
    conditions = report_conditions(session, principal, filters)
    if window is not None:
        conditions += [Report.requested_at >= window.start, Report.requested_at < window.end]
    total = int(session.scalar(select(func.count()).select_from(Report).where(*conditions)) or 0)
    rows = session.execute(
        select(Report, FeedbackCategory, Agency.code, Agency.name_vi, Agency.name_en, Subject, Incident.status)
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .join(Agency, Agency.id == Report.agency_id)
        .outerjoin(Subject, Subject.id == Report.subject_id)
        .outerjoin(Incident, Incident.id == Report.incident_id)
        .where(*conditions)
        .order_by(Report.requested_at.desc(), Report.id.desc())
        .limit(min(limit, MAX_LIST))
        .offset(offset)
    ).all()
    items = []
    for report, category, agency_code, agency_vi, agency_en, subject, incident_status in rows:
        answered = report.answered_at is not None
        items.append(
            {
                "id": report.id,
                "tracking_code": report.tracking_code,
                "category": category.code,
                "category_name_vi": category.name_vi,
                "category_name_en": category.name_en or category.name_vi,
                "description": report.description,
                "status": report.status,
                "handling_status": incident_status or "none",
                "result": result_of(report.status, incident_status, answered, report.on_time),
                "agency": agency_code,
                "agency_name_vi": agency_vi,
                "agency_name_en": agency_en or agency_vi,
                "commune": subject.code if subject is not None else None,
                "commune_name_vi": subject.name_vi if subject is not None else "",
                "commune_name_en": (subject.name_en or subject.name_vi) if subject is not None else "",
                "place_text": report.place_text,
                "latitude": report.public_latitude,
                "longitude": report.public_longitude,
                "source": report.source,
                "requested_at": report.requested_at,
                "expected_at": report.expected_at,
                "answered_at": report.answered_at,
                "on_time": report.on_time,
                "rating": report.rating,
                "incident_id": report.incident_id,
            }
        )
    return items, total


# --- the feedback indicators ------------------------------------------------------------------------------------

FEED_CODE = "cityops_phan_anh"
FEED_AGENCY = "trung_tam_giam_sat_dieu_hanh"
SOURCE = "feedback"
SYSTEM = Actor("system")
DAY_INDICATORS = ("pakn.tiep_nhan", "pakn.da_xu_ly", "pakn.dung_han", "pakn.danh_gia", "pakn.hai_long")
INSTANT_INDICATORS = ("pakn.dang_xu_ly", "pakn.qua_han")
INDICATORS = DAY_INDICATORS + INSTANT_INDICATORS
EVERY = timedelta(minutes=1)
PROVINCE = None  # the key of the province's count among the communes'

_last_run: weakref.WeakKeyDictionary[Database, datetime] = weakref.WeakKeyDictionary()
_last_lock = threading.Lock()


def _due(db: Database, now: datetime) -> bool:
    """At most once a minute per database (in this process), and again as soon as a new local day starts."""
    with _last_lock:
        last = _last_run.get(db)
        if last is not None and now - last < EVERY and _local_day(last) == _local_day(now) and now >= last:
            return False
        _last_run[db] = now
        return True


def _local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def system_feed(session: Session, now: datetime) -> Feed | None:
    """The IOC's own feed of the feedback indicators, created with the first report (None before, or without the
    catalog)."""
    return own_feed(
        session,
        now,
        code=FEED_CODE,
        agency_code=FEED_AGENCY,
        indicator_codes=list(INDICATORS),
        name="Phản ánh, kiến nghị của người dân (cityops) / Citizen reports (cityops)",
        description=(
            "Số liệu tính tự động từ các phản ánh, kiến nghị tiếp nhận tại cityops (biểu mẫu công khai, Open311). / "
            "Figures computed automatically from the citizen reports received by cityops (public form, Open311)."
        ),
        # Nothing received yet: no feed, no values (and a worker tick stays one query).
        wanted=lambda: session.scalar(select(Report.id).limit(1)) is not None,
        coverage="communes",
    )


def _count_by_subject(session: Session, *conditions: Any) -> dict[int | None, int]:
    rows = session.execute(select(Report.subject_id, func.count()).where(*conditions).group_by(Report.subject_id))
    counts: dict[int | None, int] = {subject: count for subject, count in rows}
    counts[PROVINCE] = sum(counts.values())
    return counts


def indicator_counts(session: Session, now: datetime) -> dict[tuple[str, str], dict[int | None, int]]:
    """(indicator, period) → counts by commune id (and PROVINCE), for today and yesterday and for now.

    A day's period is the local day; "now" (the instant indicators) is keyed "now"."""
    result: dict[tuple[str, str], dict[int | None, int]] = {}
    today = period_of("day", now)
    yesterday = period_of("day", today.start - timedelta(seconds=1))
    for period in (yesterday, today):
        start, end = period.start, period.end
        answered = and_(Report.answered_at >= start, Report.answered_at < end)
        rated = and_(Report.rated_at >= start, Report.rated_at < end, Report.rating.is_not(None))
        key = period.key
        result[("pakn.tiep_nhan", key)] = _count_by_subject(
            session, Report.requested_at >= start, Report.requested_at < end
        )
        result[("pakn.da_xu_ly", key)] = _count_by_subject(session, answered)
        result[("pakn.dung_han", key)] = _count_by_subject(session, answered, Report.on_time.is_(True))
        result[("pakn.danh_gia", key)] = _count_by_subject(session, rated)
        result[("pakn.hai_long", key)] = _count_by_subject(session, rated, Report.rating >= SATISFIED_FROM)
    waiting = and_(Report.status == OPEN, Report.answered_at.is_(None))
    result[("pakn.dang_xu_ly", "now")] = _count_by_subject(session, waiting)
    result[("pakn.qua_han", "now")] = _count_by_subject(session, waiting, Report.expected_at < now)
    return result


def _stored_values(session: Session, feed_id: int, now: datetime) -> dict[tuple[str, str, int], float | None]:
    """What the feed holds now: today's and yesterday's day values, and the latest instant value per subject."""
    indicator_ids = dict(
        session.execute(select(Indicator.id, Indicator.code).where(Indicator.code.in_(INDICATORS))).all()
    )
    today = period_of("day", now)
    yesterday = period_of("day", today.start - timedelta(seconds=1))
    stored: dict[tuple[str, str, int], float | None] = {}
    day_rows = session.execute(
        select(Observation.indicator_id, Observation.period_key, Observation.subject_id, Observation.value).where(
            Observation.feed_id == feed_id,
            Observation.dims_key == "",
            Observation.period_key.in_([yesterday.key, today.key]),
            Observation.indicator_id.in_([id_ for id_, code in indicator_ids.items() if code in DAY_INDICATORS]),
        )
    )
    for indicator_id, period_key, subject_id, value in day_rows:
        stored[(indicator_ids[indicator_id], period_key, subject_id)] = value
    newest = (
        select(Observation.indicator_id, Observation.subject_id, func.max(Observation.period_start).label("start"))
        .where(
            Observation.feed_id == feed_id,
            Observation.dims_key == "",
            Observation.indicator_id.in_([id_ for id_, code in indicator_ids.items() if code in INSTANT_INDICATORS]),
        )
        .group_by(Observation.indicator_id, Observation.subject_id)
        .subquery()
    )
    instant_rows = session.execute(
        select(Observation.indicator_id, Observation.subject_id, Observation.value)
        .join(
            newest,
            and_(
                Observation.indicator_id == newest.c.indicator_id,
                Observation.subject_id == newest.c.subject_id,
                Observation.period_start == newest.c.start,
            ),
        )
        .where(Observation.feed_id == feed_id, Observation.dims_key == "")
    )
    for indicator_id, subject_id, value in instant_rows:
        stored[(indicator_ids[indicator_id], "now", subject_id)] = value
    return stored


def changed_items(
    counts: dict[tuple[str, str], dict[int | None, int]],
    stored: dict[tuple[str, str, int], float | None],
    subjects: dict[int, str],
    province: tuple[int, str],
    now: datetime,
) -> list[dict[str, Any]]:
    """Observation items for every (indicator, period, subject) whose count differs from what is stored."""
    instant = now.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
    items = []
    everywhere: Sequence[tuple[int | None, int, str]] = [
        (PROVINCE, province[0], province[1]),
        *((subject_id, subject_id, code) for subject_id, code in subjects.items()),
    ]
    for (code, period_key), by_subject in counts.items():
        for key, subject_id, subject_code in everywhere:
            value = by_subject.get(key, 0)
            if stored.get((code, period_key, subject_id), -1) == value:
                continue
            items.append(
                {
                    "indicator": code,
                    "subject": subject_code,
                    "period": instant if period_key == "now" else period_key,
                    "value": value,
                    "source_ref": "cityops:feedback",
                    "feed": FEED_CODE,
                }
            )
    return items


def publish_indicators(db: Database, clock: Clock) -> int:
    """Store the feedback indicators (pakn.*) computed from the reports, when due; how many values stored."""
    now = clock()
    if not _due(db, now):
        return 0
    with db.writing() as session:
        feed = system_feed(session, now)
        if feed is None:
            return 0
        province = session.execute(select(Subject.id, Subject.code).where(Subject.kind == "province")).first()
        if province is None:
            return 0
        subjects = dict(
            session.execute(
                select(Subject.id, Subject.code).where(Subject.kind == "commune", Subject.parent_id == province[0])
            ).all()
        )
        items = changed_items(
            indicator_counts(session, now),
            _stored_values(session, feed.id, now),
            subjects,
            (province[0], province[1]),
            now,
        )
        if not items:
            return 0
        result = ingest_items(db, feed_principal(feed), items, now, source=SOURCE, feed_id=feed.id, session=session)
        return result.accepted


def reset_schedule(databases: Iterable[Database] = ()) -> None:
    """Forget when the indicators were last published (all databases, or these): the next tick publishes."""
    with _last_lock:
        if not databases:
            _last_run.clear()
        for db in databases:
            _last_run.pop(db, None)
