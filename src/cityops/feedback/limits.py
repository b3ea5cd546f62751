"""Rate limits of public POSTs: fixed windows counted in the database (`rate_counters`), so every process of the
server shares them. `hit` counts one request and says how long to wait when the client is over its limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cityops.feedback.models import RateCounter

MAX_KEY = 160  # leaves room for ":<window start>" within the column's 200 characters


def hit(session: Session, key: str, now: datetime, limit: int, window_seconds: int) -> int | None:
    """Count one request of `key` (e.g. "report:<client ip>") in the current window; None while within `limit`,
    else the seconds to wait until the window ends. Expired counters are deleted on the way."""
    window = max(int(window_seconds), 1)
    epoch = int(now.timestamp())
    start = epoch - epoch % window
    ends = datetime.fromtimestamp(start + window, tz=now.tzinfo)
    full_key = f"{key.replace(chr(0), '')[:MAX_KEY]}:{start}"
    session.execute(delete(RateCounter).where(RateCounter.expires_at < now - timedelta(seconds=1)))
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(RateCounter).values(key=full_key, count=1, expires_at=ends)
    statement = statement.on_conflict_do_update(
        index_elements=[RateCounter.key], set_={"count": RateCounter.count + 1}
    ).returning(RateCounter.count)
    count = session.execute(statement).scalar_one()
    if count <= limit:
        return None
    return max(int((ends - now).total_seconds()), 1)


def current(session: Session, key: str, now: datetime, window_seconds: int) -> int:
    """How many requests `key` made in the current window (for tests and diagnostics)."""
    window = max(int(window_seconds), 1)
    epoch = int(now.timestamp())
    full_key = f"{key[:MAX_KEY]}:{epoch - epoch % window}"
    return int(session.scalar(select(RateCounter.count).where(RateCounter.key == full_key)) or 0)
