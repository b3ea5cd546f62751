"""What a brief or a periodic report says, as JSON-ready data (stored in `report_runs.content`).

Nothing here is in one language: names are kept in both (`{"vi": …, "en": …}`), numbers as numbers, moments as ISO
text, statuses and reasons as translation keys. The phone page, the e-mail, the XLSX and the PDF render the same
content in their reader's language.

Who a report is made for decides what it holds (see docs/reports.md): the daily brief and the province-wide reports
are made as a province-wide reader (restricted indicators included; only province-wide roles may read them); a
report scoped to one domain is made as a reader of no agency (public and internal indicators only; every role that
reads data may read it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.catalog.judging import judge, target_for
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.pages import units
from cityops.feedback.models import OPEN as REPORT_OPEN
from cityops.feedback.models import Report
from cityops.feeds.models import LATE, Feed, FeedExpectation, FeedRun
from cityops.geo.models import Subject
from cityops.i18n import both
from cityops.incidents import service as incidents
from cityops.incidents.models import Incident
from cityops.observations.models import Observation
from cityops.observations.periods import period_of
from cityops.reports.templates import Template, local_start

log = logging.getLogger(__name__)

CHANGE_SHARE = 0.10  # a headline value that moved by at least this share of the previous one is a notable change
CHANGE_WINDOW = timedelta(days=1)  # … when it arrived in the day before the brief
FAILED_WINDOW = timedelta(days=1)  # a feed whose last run failed within this time before the brief
MAX_ROWS = 200  # rows of one section (a report stays readable)
MAX_CHARTS = 6
RANKED_INDICATORS = 5
ANOMALY_SINCE = timedelta(days=35)  # insights' default window

PROVINCE_READER = Principal(role="leader", label="scheduler")
DOMAIN_READER = Principal(role="officer", label="scheduler")  # no agency: no restricted indicator


def reader_for(scope: str) -> Principal:
    """The principal a report of this scope is made as."""
    return PROVINCE_READER if scope == "province" else DOMAIN_READER


def may_read(principal: Principal, scope: str) -> bool:
    """Who may read a made report: province-wide roles every one; others those scoped to a domain."""
    if not principal.can("read_data"):
        return False
    return principal.province_wide or scope != "province"


def _both(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en or vi}


def _key(message_id: str, **params: Any) -> dict[str, str]:
    vi, en = both(message_id, **params)
    return {"vi": vi, "en": en}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _insights() -> Any:
    """The decision-support service (plan vs actual, rankings, anomalies)."""
    from cityops.insights import service

    return service


def _safe(what: str, call: Callable[[], Any]) -> Any:
    """A call into insights; None (and a log line with the traceback) when it fails, so that the rest of a report is
    still made at its hour and the failed section says it could not be made."""
    try:
        return call()
    except Exception:
        log.exception("reports: %s failed", what)
        return None


def _last_month_start(now: datetime) -> datetime:
    this_month = period_of("month", now)
    return period_of("month", this_month.start - timedelta(days=1)).start


def _province(session: Session) -> Subject | None:
    return session.scalars(select(Subject).where(Subject.kind == "province")).first()


def _indicators(session: Session, principal: Principal, domains: tuple[str, ...] = ()) -> list[tuple[Indicator, str]]:
    rows, _ = catalog.list_indicators(session, principal, limit=1000)
    return [(ind, dom) for ind, dom, _owner in rows if not domains or dom in domains]


def _units() -> Callable[[str], dict[str, str]]:
    known = units()

    def unit(code: str) -> dict[str, str]:
        found = known.get(code)
        return _both(found.symbol_vi, found.symbol_en) if found else _both(code, code)

    return unit


def _subject_names(session: Session, codes: set[str]) -> dict[str, dict[str, str]]:
    if not codes:
        return {}
    return {
        code: _both(vi, en)
        for code, vi, en in session.execute(
            select(Subject.code, Subject.name_vi, Subject.name_en).where(Subject.code.in_(sorted(codes)))
        )
    }


def _agency_names(session: Session, ids: set[int]) -> dict[int, dict[str, str]]:
    if not ids:
        return {}
    return {
        agency_id: _both(vi, en)
        for agency_id, vi, en in session.execute(
            select(Agency.id, Agency.name_vi, Agency.name_en).where(Agency.id.in_(sorted(ids)))
        )
    }


# --- the daily brief ------------------------------------------------------------------------------------------


def _changes(session: Session, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """Province values that arrived in the day before `now` and moved by CHANGE_SHARE or more from the period
    before."""
    province = _province(session)
    if province is None:
        return []
    chosen = {ind.id: (ind, dom) for ind, dom in _indicators(session, principal)}
    if not chosen:
        return []
    ranked = (
        select(
            Observation.indicator_id,
            Observation.value,
            Observation.period_key,
            Observation.period_type,
            Observation.received_at,
            func.row_number()
            .over(
                partition_by=Observation.indicator_id,
                order_by=(Observation.period_start.desc(), Observation.received_at.desc()),
            )
            .label("rank"),
        )
        .where(
            Observation.subject_id == province.id,
            Observation.dims_key == "",
            Observation.indicator_id.in_(sorted(chosen)),
            Observation.received_at <= now,
        )
        .subquery()
    )
    rows = session.execute(select(ranked).where(ranked.c.rank <= 2).order_by(ranked.c.indicator_id, ranked.c.rank))
    pairs: dict[int, list[Any]] = {}
    for row in rows:
        pairs.setdefault(row.indicator_id, []).append(row)
    unit = _units()
    out = []
    for indicator_id, found in pairs.items():
        if len(found) < 2:
            continue
        new, old = found
        if new.value is None or old.value is None or new.received_at < now - CHANGE_WINDOW:
            continue
        if old.value == 0:
            if new.value == 0:
                continue
            share = None
        else:
            share = (new.value - old.value) / abs(old.value)
            if abs(share) < CHANGE_SHARE:
                continue
        indicator, domain = chosen[indicator_id]
        out.append(
            {
                "indicator": indicator.code,
                "name": _both(indicator.name_vi, indicator.name_en),
                "domain": domain,
                "unit": unit(indicator.unit),
                "period": new.period_key,
                "period_type": new.period_type,
                "previous_period": old.period_key,
                "value": new.value,
                "previous": old.value,
                "change_pct": round(100 * share, 1) if share is not None else None,
                "better": None
                if indicator.direction == "neutral"
                else ((new.value > old.value) == (indicator.direction == "higher_better")),
                "link": f"/boards/{domain}",
            }
        )
    out.sort(key=lambda item: -abs(item["change_pct"] or 1000.0))
    return out


def _progress_rows(
    session: Session, principal: Principal, now: datetime, domains: tuple[str, ...], statuses: tuple[str, ...] = ()
) -> list[dict[str, Any]] | None:
    service = _insights()
    if service is None:
        return None
    names = {ind.code: (ind, dom) for ind, dom in _indicators(session, principal)}
    found: list[Any] = []
    for domain in domains or (None,):
        got = _safe("plan_vs_actual", partial(service.plan_vs_actual, session, principal, now, domain=domain))
        if got is None:
            return None
        found.extend(got)
    subjects = _subject_names(session, {p.subject for p in found})
    unit = _units()
    rows = []
    for progress in found:
        if statuses and progress.status not in statuses:
            continue
        known = names.get(progress.indicator)
        if known is None:
            continue
        indicator, domain = known
        rows.append(
            {
                "indicator": progress.indicator,
                "name": _both(indicator.name_vi, indicator.name_en),
                "domain": domain,
                "subject": progress.subject,
                "subject_name": subjects.get(progress.subject, _both(progress.subject, progress.subject)),
                "year": progress.year,
                "unit": unit(progress.unit or indicator.unit),
                "actual": progress.actual,
                "target": progress.target,
                "progress_pct": progress.progress_pct,
                "projected": progress.projected,
                "status": progress.status,
                "status_text": _key(f"reports.progress.{progress.status}"),
                "reason": _reason(service, progress.reason, dict(progress.params or {})),
                "link": f"/boards/{domain}",
            }
        )
    order = {"off_track": 0, "at_risk": 1, "on_track": 2, "no_data": 3}
    rows.sort(key=lambda row: (order.get(row["status"], 9), row["indicator"], row["subject"]))
    return rows[:MAX_ROWS]


def _reason(service: Any, reason: str, params: dict[str, Any]) -> dict[str, str]:
    """Why a status, in both languages: insights says it (numbers the reader's way) when it can."""
    if not reason:
        return _both("", "")
    describe = getattr(service, "describe", None)
    if describe is not None:
        try:
            return _both(describe(reason, params, "vi"), describe(reason, params, "en"))
        except Exception:  # a reason it cannot say: the catalog's words with the raw numbers
            log.exception("reports: insights.describe(%s) failed", reason)
    return _key(f"insights.reason.{reason}", **params)


def _anomaly_rows(
    session: Session,
    principal: Principal,
    now: datetime,
    domains: tuple[str, ...],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]] | None:
    service = _insights()
    if service is None:
        return None
    names = {ind.code: (ind, dom) for ind, dom in _indicators(session, principal)}
    # Only the series with values in the window can hold an anomaly there (a ratio: when its parts have values).
    # Monthly series: last month started before a fixed 35-day window would begin, so look from its start.
    start = since if since is not None else min(now - ANOMALY_SINCE, _last_month_start(now))
    fresh = set(
        session.scalars(
            select(Indicator.code)
            .join(Observation, Observation.indicator_id == Indicator.id)
            .where(Observation.period_start >= start, Observation.period_start <= now)
            .distinct()
        )
    )
    codes = sorted(
        code
        for code, (ind, dom) in names.items()
        if (not domains or dom in domains)
        and (code in fresh or ind.numerator_code in fresh or ind.denominator_code in fresh)
    )
    if not codes:
        return []
    found = _safe("anomalies", lambda: service.anomalies(session, principal, now, since=start, indicators=codes))
    if found is None:
        return None
    subjects = _subject_names(session, {a.subject for a in found})
    unit = _units()
    rows = []
    for anomaly in found:
        known = names.get(anomaly.indicator)
        if known is None or (until is not None and anomaly.period_start >= until):
            continue
        indicator, domain = known
        rows.append(
            {
                "indicator": anomaly.indicator,
                "name": _both(indicator.name_vi, indicator.name_en),
                "domain": domain,
                "subject": anomaly.subject,
                "subject_name": subjects.get(anomaly.subject, _both(anomaly.subject, anomaly.subject)),
                "period_start": _iso(anomaly.period_start),
                "value": anomaly.value,
                "expected": anomaly.expected,
                "score": round(anomaly.score, 2),
                "kind": anomaly.kind,
                "kind_text": _key(f"reports.anomaly.{anomaly.kind}"),
                "unit": unit(indicator.unit),
                "link": f"/boards/{domain}",
            }
        )
    rows.sort(key=lambda row: -abs(row["score"]))
    return rows[:MAX_ROWS]


def _overdue_incidents(session: Session, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    found = incidents.board(session, principal, now, overdue=True, limit=MAX_ROWS)
    agencies = _agency_names(session, {incident.agency_id for incident in found})
    return [
        {
            "id": incident.id,
            "title": incident.title,
            "domain": incident.domain,
            "severity": incident.severity,
            "severity_text": _key(f"reports.severity.{incident.severity}"),
            "agency": agencies.get(incident.agency_id, _both("", "")),
            "deadline_at": _iso(incident.deadline_at),
            "hours_overdue": round((now - incident.deadline_at).total_seconds() / 3600, 1)
            if incident.deadline_at
            else None,
            "link": incidents.link_of(incident.id),
        }
        for incident in found
    ]


def _feed_problems(session: Session, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """Feeds (not paused) with a late period, or whose last run failed in the day before."""
    query = select(Feed).where(Feed.paused.is_(False))
    if not principal.province_wide:
        query = query.where(Feed.agency_id.in_(sorted(principal.agency_ids)))
    feeds = {feed.id: feed for feed in session.scalars(query)}
    if not feeds:
        return []
    late = {
        feed_id: (first, count)
        for feed_id, first, count in session.execute(
            select(FeedExpectation.feed_id, func.min(FeedExpectation.period_key), func.count())
            .where(FeedExpectation.state == LATE, FeedExpectation.feed_id.in_(sorted(feeds)))
            .group_by(FeedExpectation.feed_id)
        )
    }
    newest = (
        select(FeedRun.feed_id, func.max(FeedRun.id).label("id"))
        .where(FeedRun.feed_id.in_(sorted(feeds)), FeedRun.finished_at.is_not(None))
        .group_by(FeedRun.feed_id)
        .subquery()
    )
    failed = {
        run.feed_id: run
        for run in session.scalars(
            select(FeedRun)
            .join(newest, and_(newest.c.id == FeedRun.id))
            .where(FeedRun.status == "failed", FeedRun.finished_at >= now - FAILED_WINDOW)
        )
    }
    agencies = _agency_names(session, {feeds[i].agency_id for i in set(late) | set(failed)})
    out = []
    for feed_id in sorted(set(late) | set(failed), key=lambda i: feeds[i].code):
        feed = feeds[feed_id]
        run = failed.get(feed_id)
        first_late, late_count = late.get(feed_id, (None, 0))
        out.append(
            {
                "code": feed.code,
                "name": feed.name or feed.code,
                "agency": agencies.get(feed.agency_id, _both("", "")),
                "late": bool(late_count),
                "late_periods": int(late_count),
                "first_late_period": first_late,
                "failed": run is not None,
                "failed_at": _iso(run.finished_at) if run is not None else None,
                "error": _both(run.message_vi or run.error_code, run.message_en or run.error_code)
                if run is not None
                else _both("", ""),
                "link": f"/feeds/{feed.code}",
            }
        )
    return out


def _citizen(session: Session, principal: Principal, now: datetime, day: date) -> dict[str, Any]:
    """Citizen reports: requested on the day before `day`, open now, open past their expected answer."""
    conditions: list[Any] = []
    if not principal.province_wide:
        conditions.append(Report.agency_id.in_(sorted(principal.agency_ids)))
    start = local_start(day)

    def count(*more: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(Report).where(*conditions, *more)) or 0)

    return {
        "yesterday": count(Report.requested_at >= start - timedelta(days=1), Report.requested_at < start),
        "open": count(Report.status == REPORT_OPEN),
        "overdue": count(Report.status == REPORT_OPEN, Report.expected_at.is_not(None), Report.expected_at < now),
        "link": "/feedback",
    }


def brief(session: Session, now: datetime, day: date) -> dict[str, Any]:
    """The leader's daily brief for a local day, as of `now`."""
    principal = PROVINCE_READER
    off_target = _progress_rows(session, principal, now, (), statuses=("off_track", "at_risk"))
    anomalies = _anomaly_rows(session, principal, now, ())
    return {
        "kind": "brief",
        "date": day.isoformat(),
        "made_at": now.isoformat(),
        "changes": _changes(session, principal, now),
        "off_target": off_target or [],
        "anomalies": anomalies or [],
        "insights_ready": off_target is not None and anomalies is not None,
        "overdue_incidents": _overdue_incidents(session, principal, now),
        "feeds": _feed_problems(session, principal, now),
        "citizen": _citizen(session, principal, now, day),
    }


# --- periodic reports -----------------------------------------------------------------------------------------


def _column(key: str, kind: str = "text", fmt: str = "") -> dict[str, Any]:
    return {"key": key, "type": kind, "format": fmt, "title": _key(f"reports.col.{key}")}


def _headlines(
    session: Session, principal: Principal, template: Template, start: datetime, end: datetime
) -> dict[str, Any]:
    """Each indicator with a target or thresholds: its last province value in the period against its target, and a
    chart of its province series up to the period's end against that target."""
    province = _province(session)
    chosen = [
        (ind, dom) for ind, dom in _indicators(session, principal, template.domains) if ind.targets or ind.thresholds
    ]
    rows: list[dict[str, Any]] = []
    charts: list[dict[str, Any]] = []
    unit = _units()
    year = (end - timedelta(seconds=1)).astimezone(start.tzinfo).year
    for indicator, _domain in chosen:
        series: list[tuple[str, float | None]] = []
        if province is not None:
            series = [
                (key, value)
                for key, value in session.execute(
                    select(Observation.period_key, Observation.value)
                    .where(
                        Observation.indicator_id == indicator.id,
                        Observation.subject_id == province.id,
                        Observation.dims_key == "",
                        Observation.period_start < end,
                        Observation.value.is_not(None),
                    )
                    .order_by(Observation.period_start.desc(), Observation.received_at.desc())
                    .limit(24)
                )
            ]
        seen: dict[str, float] = {}
        for key, point in series:
            if point is not None:
                seen.setdefault(key, point)
        ordered = sorted(seen.items())[-12:]
        target = target_for(indicator, province.code if province else "", year)
        in_period = [
            (key, value)
            for key, value in session.execute(
                select(Observation.period_key, Observation.value)
                .where(
                    Observation.indicator_id == indicator.id,
                    Observation.subject_id == (province.id if province else 0),
                    Observation.dims_key == "",
                    Observation.period_start >= start,
                    Observation.period_start < end,
                )
                .order_by(Observation.period_start.desc(), Observation.received_at.desc())
                .limit(1)
            )
        ]
        value = in_period[0][1] if in_period else None
        if value is None:  # nothing in the period: no row (the section says when none has a value)
            continue
        status = judge(indicator, value, target)
        rows.append(
            {
                "code": indicator.code,
                "name": _both(indicator.name_vi, indicator.name_en),
                "unit": unit(indicator.unit),
                "period": in_period[0][0] if in_period else "",
                "value": value,
                "target": target,
                "status": _key(f"reports.judged.{status}"),
            }
        )
        if len(ordered) >= 2 and len(charts) < MAX_CHARTS:
            charts.append(
                {
                    "title": _both(indicator.name_vi, indicator.name_en),
                    "unit": unit(indicator.unit),
                    "points": [[key, value] for key, value in ordered],
                    "target": target,
                }
            )
    return {
        "code": "headlines",
        "columns": [
            _column("code"),
            _column("name"),
            _column("unit"),
            _column("period"),
            _column("value", "number", "#,##0.0"),
            _column("target", "number", "#,##0.0"),
            _column("status"),
        ],
        "rows": rows[:MAX_ROWS],
        "charts": charts,
    }


def _plan_section(session: Session, principal: Principal, template: Template, end: datetime) -> dict[str, Any]:
    rows = _progress_rows(session, principal, end, template.domains)
    province = _province(session)
    province_codes = {province.code} if province is not None else {row["subject"] for row in rows or []}
    return {
        "code": "plan_vs_actual",
        "ready": rows is not None,
        "columns": [
            _column("code"),
            _column("name"),
            _column("subject_name"),
            _column("actual", "number", "#,##0.0"),
            _column("target", "number", "#,##0.0"),
            _column("progress_pct", "number", "#,##0.0"),
            _column("projected", "number", "#,##0.0"),
            _column("status"),
            _column("reason"),
        ],
        "rows": [
            {**row, "code": row["indicator"], "status": row["status_text"]}
            for row in (rows or [])
            if row["status"] != "no_data"  # indicators without a value yet are left out (data health shows them)
            and row["subject"] in province_codes
        ],
    }


def _rankings_section(session: Session, principal: Principal, template: Template, end: datetime) -> dict[str, Any]:
    service = _insights()
    rows: list[dict[str, Any]] = []
    ready = service is not None
    if service is not None:
        chosen = [
            ind
            for ind, _dom in _indicators(session, principal, template.domains)
            if ind.subject_level == "commune" and ind.targets and ind.direction != "neutral"
        ][:RANKED_INDICATORS]
        for indicator in chosen:
            one = _safe("ranking", partial(service.ranking, session, principal, end, indicator.code))
            ranking = [one] if one is not None else None
            if ranking is None:
                ready = False
                break
            for row in ranking[0].rows[:20]:
                rows.append(
                    {
                        "code": indicator.code,
                        "name": _both(indicator.name_vi, indicator.name_en),
                        "rank": row.rank,
                        "unit_name": _both(row.name_vi, row.name_en),
                        "value": row.value,
                        "previous_rank": row.previous_rank,
                        "change": row.change,
                    }
                )
    return {
        "code": "rankings",
        "ready": ready,
        "columns": [
            _column("code"),
            _column("name"),
            _column("rank", "integer", "0"),
            _column("unit_name"),
            _column("value", "number", "#,##0.0"),
            _column("previous_rank", "integer", "0"),
            _column("change", "integer", "+0;-0;0"),
        ],
        "rows": rows[:MAX_ROWS],
    }


def _anomaly_section(
    session: Session, principal: Principal, template: Template, start: datetime, end: datetime
) -> dict[str, Any]:
    rows = _anomaly_rows(session, principal, end, template.domains, since=start, until=end)
    return {
        "code": "anomalies",
        "ready": rows is not None,
        "columns": [
            _column("code"),
            _column("name"),
            _column("subject_name"),
            _column("period_start", "date", "DD/MM/YYYY"),
            _column("value", "number", "#,##0.0"),
            _column("expected", "number", "#,##0.0"),
            _column("score", "number", "#,##0.0"),
            _column("kind"),
        ],
        "rows": [{**row, "code": row["indicator"], "kind": row["kind_text"]} for row in rows or []],
    }


def _incident_section(
    session: Session, template: Template, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    query = select(Incident).where(
        Incident.created_at >= start, Incident.created_at < end, Incident.merged_into_id.is_(None)
    )
    if template.scope != "province":
        query = query.where(Incident.domain == template.scope)
    found = list(session.scalars(query.order_by(Incident.created_at).limit(MAX_ROWS)))
    agencies = _agency_names(session, {incident.agency_id for incident in found})
    rows = []
    for incident in found:
        overdue = incidents.is_overdue(incident, now)
        row: dict[str, Any] = {
            "id": incident.id,
            "agency": agencies.get(incident.agency_id, _both("", "")),
            "severity": _key(f"reports.severity.{incident.severity}"),
            "state": _key(f"reports.incident_status.{incident.status}"),
            "created_at": _iso(incident.created_at),
            "deadline_at": _iso(incident.deadline_at),
            "overdue": _key("reports.yes" if overdue else "reports.no"),
        }
        # Titles are the handlers' words: only in reports read by province-wide roles.
        row["title"] = incident.title if template.scope == "province" else ""
        rows.append(row)
    return {
        "code": "incidents",
        "columns": [
            _column("id", "integer", "0"),
            _column("title"),
            _column("agency"),
            _column("severity"),
            _column("state"),
            _column("created_at", "datetime", "DD/MM/YYYY HH:MM"),
            _column("deadline_at", "datetime", "DD/MM/YYYY HH:MM"),
            _column("overdue"),
        ],
        "rows": rows,
    }


def _citizen_section(session: Session, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    from cityops.feedback.models import FeedbackCategory

    rows = []
    for code, vi, en, total, still_open, answered, on_time in session.execute(
        select(
            FeedbackCategory.code,
            FeedbackCategory.name_vi,
            FeedbackCategory.name_en,
            func.count(),
            func.sum(case((Report.status == REPORT_OPEN, 1), else_=0)),
            func.count(Report.answered_at),
            func.sum(case((Report.on_time.is_(True), 1), else_=0)),
        )
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .where(Report.requested_at >= start, Report.requested_at < end)
        .group_by(FeedbackCategory.code, FeedbackCategory.name_vi, FeedbackCategory.name_en)
        .order_by(FeedbackCategory.code)
    ):
        rows.append(
            {
                "category": _both(vi, en),
                "code": code,
                "total": int(total or 0),
                "open": int(still_open or 0),
                "answered": int(answered or 0),
                "on_time_pct": round(100 * int(on_time or 0) / int(answered), 1) if answered else None,
            }
        )
    return {
        "code": "citizen_reports",
        "columns": [
            _column("category"),
            _column("total", "integer", "#,##0"),
            _column("open", "integer", "#,##0"),
            _column("answered", "integer", "#,##0"),
            _column("on_time_pct", "number", "#,##0.0"),
        ],
        "rows": rows,
    }


def periodic(session: Session, template: Template, first: date, last: date, now: datetime) -> dict[str, Any]:
    """A periodic report of a template for the local days first … last, as of `now`."""
    principal = reader_for(template.scope)
    start, end = local_start(first), local_start(last + timedelta(days=1))
    as_of = min(now, end)
    sections: list[dict[str, Any]] = []
    for code in template.sections:
        if code == "headlines":
            sections.append(_headlines(session, principal, template, start, end))
        elif code == "plan_vs_actual":
            sections.append(_plan_section(session, principal, template, as_of))
        elif code == "rankings":
            sections.append(_rankings_section(session, principal, template, as_of))
        elif code == "anomalies":
            sections.append(_anomaly_section(session, principal, template, start, as_of))
        elif code == "incidents":
            sections.append(_incident_section(session, template, start, end, as_of))
        elif code == "citizen_reports":
            sections.append(_citizen_section(session, start, end, as_of))
    for section in sections:
        section["title"] = _key(f"reports.section.{section['code']}")
        section.setdefault("ready", True)
    domains = {
        code: _both(vi, en) for code, vi, en in session.execute(select(Domain.code, Domain.name_vi, Domain.name_en))
    }
    return {
        "kind": "periodic",
        "template": template.code,
        "name": _both(template.name_vi, template.name_en),
        "scope": template.scope,
        "scope_name": domains.get(template.scope, _key("reports.scope.province")),
        "period": {"kind": template.period, "first": first.isoformat(), "last": last.isoformat()},
        "made_at": now.isoformat(),
        "sections": sections,
    }
