"""The rules of feeds: create a feed for an agency with the indicators it supplies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cityops.accounts.service import AccountError, Actor, audit, get_agency
from cityops.catalog.models import Indicator
from cityops.feeds.models import Feed, feed_indicators


def create_feed(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    code: str,
    agency_code: str,
    indicator_codes: list[str],
    name: str = "",
    kind: str = "push",
) -> Feed:
    """Create a feed that an agency supplies, bound to the indicators it may write."""
    if session.scalar(select(Feed.id).where(Feed.code == code)) is not None:
        raise AccountError(f"feed {code!r} already exists")
    agency = get_agency(session, agency_code)
    indicators = dict(
        session.execute(select(Indicator.code, Indicator.id).where(Indicator.code.in_(indicator_codes))).all()
    )
    missing = sorted(set(indicator_codes) - set(indicators))
    if missing:
        raise AccountError(f"indicators do not exist: {', '.join(missing)}")
    feed = Feed(code=code, name=name or code, agency_id=agency.id, kind=kind, created_at=now)
    session.add(feed)
    session.flush()
    if indicators:
        session.execute(
            insert(feed_indicators), [{"feed_id": feed.id, "indicator_id": id_} for id_ in indicators.values()]
        )
    audit(
        session,
        actor,
        "feed.create",
        "feed",
        feed.id,
        now,
        {"code": code, "agency": agency_code, "indicators": sorted(indicator_codes)},
    )
    return feed


def feed_indicator_map(session: Session, feed_ids: tuple[int, ...]) -> dict[int, list[int]]:
    """For each indicator id, the feeds (of those given, in order) that may write it."""
    mapping: dict[int, list[int]] = {}
    rows = session.execute(
        select(feed_indicators.c.indicator_id, feed_indicators.c.feed_id)
        .where(feed_indicators.c.feed_id.in_(feed_ids))
        .order_by(feed_indicators.c.feed_id)
    )
    for indicator_id, feed_id in rows:
        mapping.setdefault(indicator_id, []).append(feed_id)
    return mapping
