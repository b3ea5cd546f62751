"""Evaluating alert rules: when data arrives (ingest marks the rules on its indicators due) and on schedule.

A rule is *due* when its `due_at` has come. Ingest sets `due_at = now` on the enabled rules of the indicators it
stored (one UPDATE in its transaction, `mark_due`); an event makes the event rules due; after each evaluation a rule
is due again after its kind's interval (indicator rules every minute, feed lateness/down and event rules every tick,
trust scores every five minutes).

`evaluate_due` (called by every worker's tick) claims due rules with one conditional UPDATE — the owner and a lease
(`eval_owner`, `eval_until`): a rule claimed by one worker is skipped by the others until released or the lease
expires (on PostgreSQL the candidates are picked FOR UPDATE SKIP LOCKED). Each rule is evaluated in its own
transaction, which applies the findings (service.apply_findings) and releases the claim. A mark made while the rule
was being evaluated is kept, so data that arrived meanwhile is judged at the next tick.

What each kind finds (values with dimensions are not judged: the totals are):

- threshold: the latest value of each subject (or the rule's subject) compared with `value` by `op`;
- off_target: the latest value against the indicator's target for the year of its period (the subject's own
  target, else the general one): below target × (1 − tolerance %) when higher is better, above target × (1 +
  tolerance %) when lower is better, off by more than tolerance % either way when neutral;
- change: the latest value against the one `periods` stored periods before: the change (`pct` % of the earlier
  value, or `abs`) compared by `op` with the amount;
- feed_health: for each feed (or the rule's feed) not paused: `late` — a period past its deadline plus grace and
  not received; `down` — its last 3 finished runs failed; `trust_below` — its overall trust score over the last 7
  days below `level` (0–100);
- events: the events of the category (type, at or above min_severity, of the rule's subject when it names one) in
  the last `window_minutes` number at least `count`.

Values older than a look-back window (2 days for instants, 45 days for days, about a year and a half for months …)
are not judged: a subject whose latest value is that old has no alert.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from cityops.alerts import service
from cityops.alerts.models import SEVERITIES, AlertRule, Event
from cityops.alerts.rules import addressed_agency
from cityops.alerts.service import Finding, rule_key
from cityops.catalog.judging import target_of
from cityops.catalog.models import Indicator
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.feeds.models import LATE, Feed, FeedExpectation, FeedRun
from cityops.geo.models import Subject
from cityops.i18n import format_number, format_period, translate
from cityops.observations.models import Observation

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
CLAIM_BATCH = 200
# How long after an evaluation a rule is due again, by kind (feed_health: by condition).
INTERVALS = {
    "threshold": timedelta(seconds=60),
    "off_target": timedelta(seconds=60),
    "change": timedelta(seconds=60),
    "events": timedelta(0),
    "late": timedelta(0),
    "down": timedelta(0),
    "trust_below": timedelta(minutes=5),
}
LOOKBACK = {
    "instant": timedelta(days=2),
    "day": timedelta(days=45),
    "month": timedelta(days=550),
    "quarter": timedelta(days=1000),
    "year": timedelta(days=366 * 6),
    "school_year": timedelta(days=366 * 6),
}
TRUST_WINDOW = timedelta(days=7)
DOWN_AFTER = 3
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def mark_due(session: Session, indicator_ids: Iterable[int], now: datetime) -> None:
    """Make the enabled rules on these indicators due now (called by ingest, in its transaction).

    Rules already due are left alone (no write, no lock); a rule being evaluated is marked again, so what arrived
    meanwhile is judged at the next tick.
    """
    ids = sorted(set(indicator_ids))
    if not ids:
        return
    session.execute(
        update(AlertRule)
        .where(
            AlertRule.indicator_id.in_(ids),
            AlertRule.enabled.is_(True),
            or_(AlertRule.due_at.is_(None), AlertRule.due_at > now, AlertRule.eval_owner != ""),
        )
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    )


def interval_of(rule: AlertRule) -> timedelta:
    """How long after an evaluation the rule is due again."""
    if rule.kind == "feed_health":
        return INTERVALS.get(str((rule.params or {}).get("condition")), timedelta(seconds=60))
    return INTERVALS.get(rule.kind, timedelta(seconds=60))


def claim(db: Database, now: datetime, owner: str, limit: int = CLAIM_BATCH) -> list[tuple[int, datetime | None]]:
    """Claim the due rules no one holds: (rule id, due_at as claimed)."""
    free = or_(AlertRule.eval_until.is_(None), AlertRule.eval_until < now)
    with db.writing() as session:
        candidates = (
            select(AlertRule.id)
            .where(AlertRule.enabled.is_(True), AlertRule.due_at <= now, free)
            .order_by(AlertRule.due_at, AlertRule.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = session.execute(
            update(AlertRule)
            .where(AlertRule.id.in_(candidates), AlertRule.enabled.is_(True), AlertRule.due_at <= now, free)
            .values(eval_owner=owner[:64], eval_until=now + LEASE)
            .returning(AlertRule.id, AlertRule.due_at)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted((row[0], row[1]) for row in rows)


def _release(
    session: Session, rule_id: int, owner: str, claimed_due: datetime | None, next_due: datetime, now: datetime
) -> None:
    kept = AlertRule.due_at > claimed_due if claimed_due is not None else AlertRule.due_at.is_not(None)
    session.execute(
        update(AlertRule)
        .where(AlertRule.id == rule_id, AlertRule.eval_owner == owner[:64])
        .values(
            eval_owner="",
            eval_until=None,
            last_evaluated_at=now,
            due_at=case((kept, AlertRule.due_at), else_=next_due),
        )
        .execution_options(synchronize_session=False)
    )


def evaluate_due(db: Database, clock: Clock, *, owner: str) -> int:
    """Claim the rules that are due and evaluate them; the number of rules evaluated."""
    now = clock()
    evaluated = 0
    for rule_id, claimed_due in claim(db, now, owner):
        try:
            with db.writing() as session:
                rule = session.get(AlertRule, rule_id)
                if rule is None or rule.eval_owner != owner[:64]:
                    continue
                findings = find(session, rule, now)
                service.apply_findings(session, now, rule, findings)
                _release(session, rule_id, owner, claimed_due, now + interval_of(rule), now)
            evaluated += 1
        except Exception:
            log.exception("alert rule %s could not be evaluated", rule_id)
            with db.writing() as session:
                _release(session, rule_id, owner, claimed_due, now + timedelta(seconds=60), now)
    return evaluated


# --- what each kind finds -----------------------------------------------------------------------------------


def find(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    """The subjects (feeds, the whole) for which the rule's condition holds now."""
    if rule.kind in ("threshold", "off_target", "change"):
        return _indicator_findings(session, rule, now)
    if rule.kind == "feed_health":
        return _feed_findings(session, rule, now)
    if rule.kind == "events":
        return _event_findings(session, rule, now)
    return []


def _name(rule: AlertRule, language: str) -> str:
    return rule.name_vi if language == "vi" else rule.name_en or rule.name_vi


def _latest_values(
    session: Session, rule: AlertRule, indicator: Indicator, depth: int, now: datetime
) -> dict[int, list[tuple[str, datetime, float]]]:
    """Per subject, the values of its `depth` latest stored periods (newest first), totals only."""
    since = now - LOOKBACK.get(indicator.period_type, timedelta(days=400)) * max(1, depth - 1)
    ranked = select(
        Observation.subject_id,
        Observation.period_key,
        Observation.period_start,
        Observation.value,
        Observation.received_at,
        func.dense_rank()
        .over(partition_by=Observation.subject_id, order_by=Observation.period_start.desc())
        .label("rank"),
    ).where(
        Observation.indicator_id == indicator.id,
        Observation.dims_key == "",
        Observation.period_start >= since,
    )
    if rule.subject_id is not None:
        ranked = ranked.where(Observation.subject_id == rule.subject_id)
    sub = ranked.subquery()
    rows = session.execute(
        select(sub.c.subject_id, sub.c.period_key, sub.c.period_start, sub.c.value, sub.c.received_at, sub.c.rank)
        .where(sub.c.rank <= depth)
        .order_by(sub.c.subject_id, sub.c.rank, sub.c.received_at.desc())
    ).all()
    result: dict[int, list[tuple[str, datetime, float]]] = {}
    seen: set[tuple[int, int]] = set()
    for subject_id, period_key, period_start, value, _received, rank in rows:
        if (subject_id, rank) in seen:
            continue  # several feeds sent the period: the last received counts
        seen.add((subject_id, rank))
        if value is None:
            result.setdefault(subject_id, [])
            continue
        values = result.setdefault(subject_id, [])
        if len(values) == rank - 1:
            values.append((period_key, period_start, float(value)))
    return result


def _off_target(direction: str, value: float, target: float, tolerance: float) -> bool:
    margin = abs(target) * tolerance / 100
    if direction == "higher_better":
        return value < target - margin
    if direction == "lower_better":
        return value > target + margin
    return abs(value - target) > margin


def _indicator_findings(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    indicator = session.get(Indicator, rule.indicator_id) if rule.indicator_id is not None else None
    if indicator is None:
        return []
    params = rule.params or {}
    depth = int(params.get("periods", 1)) + 1 if rule.kind == "change" else 1
    values = _latest_values(session, rule, indicator, depth, now)
    subjects = {s.id: s for s in session.scalars(select(Subject).where(Subject.id.in_(sorted(values) or [0])))}
    agency_id = addressed_agency(session, rule)
    findings: list[Finding] = []
    for subject_id, series in sorted(values.items()):
        subject = subjects.get(subject_id)
        if not series or subject is None or len(series) < depth:
            continue
        period_key, period_start, value = series[0]
        texts: dict[str, dict[str, str]] = {}
        details: dict[str, Any] = {"value": value, "period": period_key, "indicator": indicator.code}
        if rule.kind == "threshold":
            limit = float(params["value"])
            if not OPERATORS[params["op"]](value, limit):
                continue
            details.update(op=params["op"], limit=limit)
            for lang in ("vi", "en"):
                texts[lang] = {"condition": f"{format_number(value, lang)} {params['op']} {format_number(limit, lang)}"}
        elif rule.kind == "off_target":
            year = period_start.astimezone(LOCAL_TZ).year
            found = target_of(indicator, subject.code, year)
            tolerance = float(params.get("tolerance_pct", 0))
            if found is None or not _off_target(indicator.direction, value, found[0], tolerance):
                continue
            target, year = found
            details.update(target=target, tolerance_pct=tolerance, year=year)
            for lang in ("vi", "en"):
                texts[lang] = {
                    "condition": translate(
                        "alerts.condition.off_target",
                        lang,
                        value=format_number(value, lang),
                        target=format_number(target, lang),
                        year=year,
                    )
                }
        else:  # change
            earlier_key, _start, earlier = series[depth - 1]
            if "pct" in params:
                if earlier == 0:
                    continue
                change = (value - earlier) / abs(earlier) * 100
                amount = float(params["pct"])
            else:
                change = value - earlier
                amount = float(params["abs"])
            if not OPERATORS[params["op"]](change, amount):
                continue
            details.update(earlier=earlier, earlier_period=earlier_key, change=round(change, 4), op=params["op"])
            for lang in ("vi", "en"):
                unit = " %" if "pct" in params else ""
                texts[lang] = {
                    "condition": translate(
                        "alerts.condition.change",
                        lang,
                        earlier=format_number(earlier, lang),
                        value=format_number(value, lang),
                        change=format_number(round(change, 2), lang) + unit,
                        period=format_period(indicator.period_type, earlier_key, lang),
                    )
                }
        titles = {
            lang: translate(
                "alerts.title.indicator",
                lang,
                rule=_name(rule, lang),
                subject=subject.name_vi if lang == "vi" else subject.name_en or subject.name_vi,
                period=format_period(indicator.period_type, period_key, lang),
                condition=texts[lang]["condition"],
            )
            for lang in ("vi", "en")
        }
        findings.append(
            Finding(
                key=rule_key(rule.id, subject_id=subject_id),
                title_vi=titles["vi"],
                title_en=titles["en"],
                subject_id=subject_id,
                agency_id=agency_id,
                details=details,
            )
        )
    return findings


def _feed_findings(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    params = rule.params or {}
    condition = str(params.get("condition", ""))
    query = select(Feed).where(Feed.paused.is_(False)).order_by(Feed.id)
    if rule.feed_id is not None:
        query = query.where(Feed.id == rule.feed_id)
    feeds = list(session.scalars(query))
    if not feeds:
        return []
    ids = [feed.id for feed in feeds]
    facts: dict[int, dict[str, Any]] = {}
    if condition == "late":
        late = session.execute(
            select(FeedExpectation.feed_id, func.count())
            .where(FeedExpectation.feed_id.in_(ids), FeedExpectation.state == LATE)
            .group_by(FeedExpectation.feed_id)
        ).all()
        facts = {feed_id: {"late_periods": int(count)} for feed_id, count in late if count}
    elif condition == "down":
        ranked = (
            select(
                FeedRun.feed_id,
                FeedRun.status,
                func.row_number()
                .over(partition_by=FeedRun.feed_id, order_by=(FeedRun.started_at.desc(), FeedRun.id.desc()))
                .label("rank"),
            )
            .where(FeedRun.feed_id.in_(ids), FeedRun.status != "running")
            .subquery()
        )
        runs: dict[int, list[str]] = {}
        for feed_id, status, _rank in session.execute(select(ranked).where(ranked.c.rank <= DOWN_AFTER)):
            runs.setdefault(feed_id, []).append(status)
        facts = {
            feed_id: {"failed_runs": len(statuses)}
            for feed_id, statuses in runs.items()
            if len(statuses) >= DOWN_AFTER and all(status == "failed" for status in statuses)
        }
    elif condition == "trust_below":
        from cityops.health import service as health  # heavy; only for the rules that need it

        province = session.scalar(select(Subject.code).where(Subject.kind == "province")) or ""
        level = float(params.get("level", 0))
        for agency in health.ranking(session, now - TRUST_WINDOW, now, now, province):
            for trust in agency.feeds:
                overall = trust.overall
                if trust.feed.id in ids and overall is not None and overall < level:
                    facts[trust.feed.id] = {"trust": round(overall, 1), "level": level}
    findings: list[Finding] = []
    for feed in feeds:
        fact = facts.get(feed.id)
        if fact is None:
            continue
        titles = {
            lang: translate(
                f"alerts.title.feed_{condition}",
                lang,
                rule=_name(rule, lang),
                feed=feed.name or feed.code,
                count=fact.get("late_periods", fact.get("failed_runs", 0)),
                trust=format_number(fact.get("trust"), lang),
                level=format_number(fact.get("level"), lang),
            )
            for lang in ("vi", "en")
        }
        findings.append(
            Finding(
                key=rule_key(rule.id, feed_id=feed.id),
                title_vi=titles["vi"],
                title_en=titles["en"],
                feed_id=feed.id,
                agency_id=rule.agency_id if rule.agency_id is not None else feed.agency_id,
                details={"feed": feed.code, "condition": condition, **fact},
            )
        )
    return findings


def _event_findings(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    params = rule.params or {}
    window = int(params.get("window_minutes", 60))
    needed = int(params.get("count", 1))
    if params.get("per_subject") and rule.subject_id is None:
        return _events_per_subject(session, rule, now, window, needed)
    count = service.count_events(
        session,
        category=str(params.get("category", "")),
        event_type=str(params.get("type", "")),
        min_severity=str(params.get("min_severity", "info")),
        start=now - timedelta(minutes=window),
        end=now,
        subject_id=rule.subject_id,
    )
    if count < needed:
        return []
    subject = session.get(Subject, rule.subject_id) if rule.subject_id is not None else None
    title_vi, title_en = (
        translate(
            "alerts.title.events",
            lang,
            rule=_name(rule, lang),
            count=count,
            minutes=window,
            category=translate(f"alerts.event_category.{params.get('category')}", lang),
        )
        + (f" — {subject.name_vi if lang == 'vi' else subject.name_en}" if subject is not None else "")
        for lang in ("vi", "en")
    )
    return [
        Finding(
            key=rule_key(rule.id, subject_id=rule.subject_id),
            title_vi=title_vi,
            title_en=title_en,
            subject_id=rule.subject_id,
            agency_id=rule.agency_id,
            details={"count": count, "window_minutes": window, "needed": needed},
        )
    ]


def _events_per_subject(session: Session, rule: AlertRule, now: datetime, window: int, needed: int) -> list[Finding]:
    """`per_subject`: one finding per subject (e.g. one information system) with at least `count` events in the
    window, addressed to the rule's agency or else the agency the events name (the system's owner)."""
    params = rule.params or {}
    counts = count_events_by_subject(
        session,
        category=str(params.get("category", "")),
        event_type=str(params.get("type", "")),
        min_severity=str(params.get("min_severity", "info")),
        start=now - timedelta(minutes=window),
        end=now,
    )
    wanted = {subject_id: facts for subject_id, facts in counts.items() if facts[0] >= needed}
    subjects = {s.id: s for s in session.scalars(select(Subject).where(Subject.id.in_(sorted(wanted) or [0])))}
    findings: list[Finding] = []
    for subject_id, (count, agency_id) in sorted(wanted.items()):
        subject = subjects.get(subject_id)
        if subject is None:
            continue
        title_vi, title_en = (
            translate(
                "alerts.title.events",
                lang,
                rule=_name(rule, lang),
                count=count,
                minutes=window,
                category=translate(f"alerts.event_category.{params.get('category')}", lang),
            )
            + f" — {subject.name_vi if lang == 'vi' else subject.name_en or subject.name_vi}"
            for lang in ("vi", "en")
        )
        findings.append(
            Finding(
                key=rule_key(rule.id, subject_id=subject_id),
                title_vi=title_vi,
                title_en=title_en,
                subject_id=subject_id,
                agency_id=rule.agency_id if rule.agency_id is not None else agency_id,
                details={"count": count, "window_minutes": window, "needed": needed, "subject": subject.code},
            )
        )
    return findings


def count_events_by_subject(
    session: Session, *, category: str, event_type: str, min_severity: str, start: datetime, end: datetime
) -> dict[int, tuple[int, int | None]]:
    """Per subject, how many events of a category (and type) at or above a severity occurred in [start, end], and
    the agency of the latest of them."""
    wanted = SEVERITIES[SEVERITIES.index(min_severity) :] if min_severity in SEVERITIES else SEVERITIES
    query = (
        select(Event.subject_id, func.count(), func.max(Event.agency_id))
        .where(
            Event.category == category,
            Event.severity.in_(wanted),
            Event.occurred_at >= start,
            Event.occurred_at <= end,
            Event.subject_id.is_not(None),
        )
        .group_by(Event.subject_id)
    )
    if event_type:
        query = query.where(Event.type == event_type)
    return {
        int(subject_id): (int(count), agency_id)
        for subject_id, count, agency_id in session.execute(query)
        if subject_id is not None
    }
