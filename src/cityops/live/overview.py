"""The province at a glance: per subsystem 2–4 headline figures against target with a status, the firing alerts and
overdue incidents of that subsystem; and for the whole province the citizen reports of today and the feeds on time.

A headline figure is an indicator of the domain with thresholds and a target (those the catalog marks to watch),
then with one of them, each group by monitored item; a domain with fewer takes its first other indicators. Status:
- `bad` past the critical threshold, `watch` past the warning one or off its target, `good` otherwise;
- `none` (no judgement) when the indicator has neither target nor threshold; `nodata` when there is no value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops.accounts.roles import Principal
from cityops.alerts.models import FIRING, Alert, AlertRule
from cityops.catalog import service as catalog
from cityops.catalog.judging import judge, target_for
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.pages import units
from cityops.clock import LOCAL_TZ
from cityops.feedback.models import Report
from cityops.feeds.models import LATE, Feed, FeedExpectation, feed_indicators
from cityops.geo.models import Subject
from cityops.incidents import service as incidents
from cityops.incidents.models import OPEN_STATUSES, Incident
from cityops.observations import derived
from cityops.observations import service as observations

MAX_FIGURES, MIN_FIGURES = 4, 2
# A value older than this (since it was received) looks stale: about two periods of its kind.
STALE_AFTER = {
    "hour": timedelta(hours=3),
    "day": timedelta(days=2),
    "week": timedelta(days=15),
    "month": timedelta(days=62),
    "quarter": timedelta(days=190),
    "year": timedelta(days=400),
}
ICONS = {"good": "✓", "watch": "!", "bad": "✕", "nodata": "–", "none": "•"}


@dataclass
class Figure:
    """One headline figure of a card."""

    indicator: Indicator
    value: float | None = None
    period: str = ""
    received_at: datetime | None = None
    computed: bool = False
    target: float | None = None
    status: str = "nodata"
    minutes_ago: int | None = None
    stale: bool = False
    unit_vi: str = ""
    unit_en: str = ""

    @property
    def icon(self) -> str:
        return ICONS[self.status]


@dataclass
class Card:
    """One subsystem."""

    code: str
    name_vi: str
    name_en: str
    figures: list[Figure] = field(default_factory=list)
    alerts: int = 0
    overdue: int = 0
    feeds: int = 0
    feeds_late: int = 0

    @property
    def status(self) -> str:
        """The worst figure's status, for the card's edge."""
        seen = {figure.status for figure in self.figures}
        for status in ("bad", "watch", "good"):
            if status in seen:
                return status
        return "nodata"


@dataclass
class Overview:
    """What the first screen shows."""

    cards: list[Card]
    alerts: int
    critical_alerts: int
    overdue: int
    reports_today: int
    feeds: int
    feeds_late: int
    at: datetime


def _headlines(indicators: list[Indicator]) -> list[Indicator]:
    # Thresholds and a target first (they can be judged), then a direction, then the catalog's order.
    ranked = sorted(
        indicators,
        key=lambda i: (-(bool(i.thresholds) + bool(i.targets)), i.direction == "neutral", i.monitored_item, i.code),
    )
    chosen = [i for i in ranked if i.targets or i.thresholds][:MAX_FIGURES]
    for indicator in ranked:
        if len(chosen) >= MIN_FIGURES:
            break
        if indicator not in chosen:
            chosen.append(indicator)
    return chosen


def _alert_domains(session: Session, principal: Principal) -> tuple[dict[str, int], int, int]:
    """Firing alerts the principal may see, by domain (of the rule's indicator, else of the feed); total, critical."""
    query = (
        select(Alert.id, Alert.severity, Alert.feed_id, Domain.code)
        .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Indicator, Indicator.id == AlertRule.indicator_id)
        .outerjoin(Domain, Domain.id == Indicator.domain_id)
        .where(Alert.state == FIRING)
    )
    if not principal.province_wide:
        query = query.where(Alert.agency_id.in_(sorted(principal.agency_ids)))
    rows = list(session.execute(query))
    feed_domains: dict[int, str] = {}
    feed_ids = {row[2] for row in rows if row[3] is None and row[2] is not None}
    if feed_ids:
        for feed_id, domain in session.execute(
            select(feed_indicators.c.feed_id, func.min(Domain.code))
            .join(Indicator, Indicator.id == feed_indicators.c.indicator_id)
            .join(Domain, Domain.id == Indicator.domain_id)
            .where(feed_indicators.c.feed_id.in_(sorted(feed_ids)))
            .group_by(feed_indicators.c.feed_id)
        ):
            feed_domains[feed_id] = domain
    by_domain: dict[str, int] = {}
    for _id, _severity, feed_id, domain in rows:
        code = domain or feed_domains.get(feed_id or 0)
        if code:
            by_domain[code] = by_domain.get(code, 0) + 1
    return by_domain, len(rows), sum(1 for row in rows if row[1] == "critical")


def _overdue(session: Session, principal: Principal, now: datetime) -> tuple[dict[str, int], int]:
    query = (
        select(Incident.domain, func.count())
        .where(
            Incident.status.in_(OPEN_STATUSES),
            Incident.deadline_at.is_not(None),
            Incident.deadline_at < now,
            Incident.merged_into_id.is_(None),
            incidents._visible(principal),
        )
        .group_by(Incident.domain)
    )
    by_domain = {domain or "": int(count) for domain, count in session.execute(query)}
    return by_domain, sum(by_domain.values())


def _feeds(session: Session, principal: Principal) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Feeds not paused (those of the principal's agencies unless province-wide) and those with a late period."""
    query = select(Feed.id).where(Feed.paused.is_(False))
    if not principal.province_wide:
        query = query.where(Feed.agency_id.in_(sorted(principal.agency_ids)))
    feed_ids = set(session.scalars(query))
    if not feed_ids:
        return {}, 0, 0
    late = set(
        session.scalars(
            select(FeedExpectation.feed_id)
            .where(FeedExpectation.state == LATE, FeedExpectation.feed_id.in_(sorted(feed_ids)))
            .distinct()
        )
    )
    by_domain: dict[str, set[int]] = {}
    for feed_id, domain in session.execute(
        select(feed_indicators.c.feed_id, Domain.code)
        .join(Indicator, Indicator.id == feed_indicators.c.indicator_id)
        .join(Domain, Domain.id == Indicator.domain_id)
        .where(feed_indicators.c.feed_id.in_(sorted(feed_ids)))
        .distinct()
    ):
        by_domain.setdefault(domain, set()).add(feed_id)
    counts = {domain: (len(ids), len(ids & late)) for domain, ids in by_domain.items()}
    return counts, len(feed_ids), len(late)


def _reports_today(session: Session, principal: Principal, now: datetime) -> int:
    local = now.astimezone(LOCAL_TZ)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    query = select(func.count()).select_from(Report).where(Report.requested_at >= start, Report.requested_at <= now)
    if not principal.province_wide:
        query = query.where(Report.agency_id.in_(sorted(principal.agency_ids)))
    return int(session.scalar(query) or 0)


def build(session: Session, principal: Principal, now: datetime) -> Overview:
    """The overview for this principal at this moment."""
    rows, _ = catalog.list_indicators(session, principal, limit=1000)
    domains = list(session.execute(select(Domain.code, Domain.name_vi, Domain.name_en).order_by(Domain.sort_order)))
    by_domain: dict[str, list[Indicator]] = {}
    for indicator, domain_code, _owner in rows:
        by_domain.setdefault(domain_code, []).append(indicator)
    chosen = {code: _headlines(items) for code, items in by_domain.items()}
    every = [indicator for items in chosen.values() for indicator in items]
    province = session.execute(select(Subject.id, Subject.code).where(Subject.kind == "province")).first()
    values: dict[str, dict[str, Any]] = {}
    computed: dict[str, derived.DerivedValue] = {}
    if province is not None and every:
        latest, _ = observations.latest(session, [i.id for i in every], subject_ids=[province[0]])
        values = {item["indicator"]: item for item in latest}
        computed = derived.province_values(session, [i for i in every if i.code not in values], province[0])
    year = now.astimezone(LOCAL_TZ).year
    alerts_by, alerts_total, critical = _alert_domains(session, principal)
    overdue_by, overdue_total = _overdue(session, principal, now)
    feeds_by, feeds_total, feeds_late = _feeds(session, principal)
    unit_defs = units()
    cards = []
    for code, name_vi, name_en in domains:
        card = Card(code, name_vi, name_en, alerts=alerts_by.get(code, 0), overdue=overdue_by.get(code, 0))
        card.feeds, card.feeds_late = feeds_by.get(code, (0, 0))
        for indicator in chosen.get(code, []):
            figure = Figure(indicator, target=target_for(indicator, province[1] if province else "", year))
            known = unit_defs.get(indicator.unit)
            figure.unit_vi = known.symbol_vi if known else indicator.unit
            figure.unit_en = known.symbol_en if known else indicator.unit
            stored, made = values.get(indicator.code), computed.get(indicator.code)
            if stored is not None:
                figure.value, figure.period = stored["value"], stored["period"]
                figure.received_at = stored["received_at"]
            elif made is not None and made.value is not None:
                figure.value, figure.period, figure.computed = made.value, made.period, True
            figure.status = judge(indicator, figure.value, figure.target)
            if figure.received_at is not None:
                received = figure.received_at
                if isinstance(received, str):
                    received = datetime.fromisoformat(received)
                figure.minutes_ago = max(0, int((now - received).total_seconds() // 60))
                figure.stale = now - received > STALE_AFTER.get(indicator.period_type, timedelta(days=2))
            card.figures.append(figure)
        cards.append(card)
    return Overview(
        cards=cards,
        alerts=alerts_total,
        critical_alerts=critical,
        overdue=overdue_total,
        reports_today=_reports_today(session, principal, now),
        feeds=feeds_total,
        feeds_late=feeds_late,
        at=now,
    )
