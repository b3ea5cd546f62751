"""The worker's security round: website checks that are due, then the `attt.*` indicators (at most once a minute).

Indicators are stored through the ordinary ingest under the IOC's own feed `cityops_attt` (agency so_khcn), per
system (its subject `system.<code>`) and for the province (the sum):

| indicator | period | value |
|---|---|---|
| attt.su_kien | today (local day) | events of the system today |
| attt.su_kien_nghiem_trong | today | high and critical events today |
| attt.he_thong_bi_tan_cong | instant | 1 when the system had ATTACK_EVENTS or more high/critical events in the |
|   |   | last hour (province: how many systems) |
| attt.lo_hong | instant | open vulnerabilities |
| attt.website_giam_sat | instant | 1 per system with a website (province: how many) |
| attt.website_gian_doan | instant | 1 when its website is down or changed (province: how many) |

Only values that changed since the last round of this process are sent.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import feed_principal, own_feed
from cityops.geo.models import Subject
from cityops.observations.periods import period_of
from cityops.observations.service import ingest_items
from cityops.soc import websites
from cityops.soc.models import InformationSystem, SecurityEvent, Vulnerability

FEED_CODE = "cityops_attt"
FEED_AGENCY = "so_khcn"
INDICATORS = (
    "attt.su_kien",
    "attt.su_kien_nghiem_trong",
    "attt.he_thong_bi_tan_cong",
    "attt.lo_hong",
    "attt.website_giam_sat",
    "attt.website_gian_doan",
)
EVERY = timedelta(minutes=1)
ATTACK_EVENTS = 5
_sent: weakref.WeakKeyDictionary[Database, tuple[datetime, dict[tuple[str, str, str], float]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def tick(db: Database, clock: Clock, *, owner: str) -> dict[str, int]:
    """Check the due websites and publish the indicators; what was done."""
    checked = websites.check_due(db, clock, owner=owner)
    return {"websites_checked": checked, "indicator_values": publish_indicators(db, clock)}


def _feed(session: Any, now: datetime) -> Feed | None:
    return own_feed(
        session,
        now,
        code=FEED_CODE,
        agency_code=FEED_AGENCY,
        indicator_codes=list(INDICATORS),
        name="An toàn thông tin (cityops SOC) / Information security (cityops SOC)",
        description="Số liệu tính tự động từ sự kiện, lỗ hổng và kiểm tra trang thông tin. / "
        "Figures computed from security events, vulnerabilities and website checks.",
        wanted=lambda: session.scalar(select(InformationSystem.id).limit(1)) is not None,
    )


def values(session: Any, now: datetime) -> dict[tuple[str, str, str], float]:
    """(indicator, subject code, period key or "now") → value."""
    systems = list(session.scalars(select(InformationSystem).order_by(InformationSystem.id)))
    province = session.scalar(select(Subject.code).where(Subject.kind == "province"))
    today = period_of("day", now)
    subjects = {s.id: f"system.{s.code}" for s in systems}
    result: dict[tuple[str, str, str], float] = {}

    def counts(*conditions: Any) -> dict[int, int]:
        rows = session.execute(
            select(SecurityEvent.system_id, func.count())
            .where(SecurityEvent.system_id.is_not(None), *conditions)
            .group_by(SecurityEvent.system_id)
        )
        return {system_id: int(count) for system_id, count in rows}

    in_day = (SecurityEvent.occurred_at >= today.start, SecurityEvent.occurred_at < today.end)
    serious = SecurityEvent.level.in_(("high", "critical"))
    all_today, serious_today = counts(*in_day), counts(*in_day, serious)
    attacked = counts(serious, SecurityEvent.occurred_at >= now - timedelta(hours=1), SecurityEvent.occurred_at <= now)
    vulns = dict(
        session.execute(
            select(Vulnerability.system_id, func.count())
            .where(Vulnerability.status == "open")
            .group_by(Vulnerability.system_id)
        ).all()
    )
    totals: dict[tuple[str, str], float] = {}
    for system in systems:
        code = subjects[system.id]
        figures: dict[tuple[str, str], float] = {
            ("attt.su_kien", today.key): all_today.get(system.id, 0),
            ("attt.su_kien_nghiem_trong", today.key): serious_today.get(system.id, 0),
            ("attt.he_thong_bi_tan_cong", "now"): 1 if attacked.get(system.id, 0) >= ATTACK_EVENTS else 0,
            ("attt.lo_hong", "now"): int(vulns.get(system.id, 0)),
            ("attt.website_giam_sat", "now"): 1 if system.website_url else 0,
            ("attt.website_gian_doan", "now"): 1 if system.website_status in ("down", "changed") else 0,
        }
        for (indicator, period), value in figures.items():
            result[(indicator, code, period)] = value
            totals[(indicator, period)] = totals.get((indicator, period), 0) + value
    if province:
        for (indicator, period), value in totals.items():
            result[(indicator, province, period)] = value
    return result


def publish_indicators(db: Database, clock: Clock) -> int:
    """Store the attt.* values that changed (at most once a minute per database in this process)."""
    now = clock()
    with _lock:
        last = _sent.get(db)
        if last is not None and timedelta(0) <= now - last[0] < EVERY:
            return 0
        previous = last[1] if last else {}
    with db.writing() as session:
        feed = _feed(session, now)
        if feed is None:
            return 0
        current = values(session, now)
        instant = now.isoformat(timespec="seconds")
        items = [
            {
                "indicator": indicator,
                "subject": subject,
                "period": instant if period == "now" else period,
                "value": value,
                "source_ref": "cityops:soc",
                "feed": FEED_CODE,
            }
            for (indicator, subject, period), value in sorted(current.items())
            if previous.get((indicator, subject, period)) != value
        ]
        accepted = 0
        if items:
            accepted = ingest_items(
                db, feed_principal(feed), items, now, source="soc", feed_id=feed.id, session=session
            ).accepted
    with _lock:
        _sent[db] = (now, current)
    return accepted


def reset(db: Database | None = None) -> None:
    """Forget what was sent (tests)."""
    with _lock:
        if db is None:
            _sent.clear()
        else:
            _sent.pop(db, None)
