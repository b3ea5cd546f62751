"""Availability checks of the registered government websites (called by every worker tick).

Each system with a `website_url` is checked every `EVERY` (5 minutes). A worker claims the due systems with one
conditional UPDATE on `next_check_at` / `check_owner` / `check_until` (a system claimed by one worker is skipped by
the others until released or the lease ends), fetches each page (GET, redirects followed, `TIMEOUT` seconds), and
writes one `website_checks` row per check:

- **down**: no answer (connection refused, timeout, TLS error) or an HTTP status of 400 or more (5xx included);
- **changed**: the expected text (`website_expected_text`) is missing, or the page's content hash differs from the
  one recorded when the site was last accepted — after a normalisation that ignores dates, times and whitespace
  (see `normalise`): a defacement changes the hash, a clock on the page does not. The first check records the
  hash; `accept_content` takes the current page as the new reference;
- **up**: otherwise.

A status change is stored on the system (`website_status`, `_since`) and announced with `live.publish`; each check
that is down or changed records a `security` event (type `website_down` / `website_changed`, severity critical /
warning) for the system, which the default rule "website down" counts.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from cityops import live
from cityops.accounts.service import Actor, audit
from cityops.alerts.service import record_event
from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.soc.models import InformationSystem, WebsiteCheck

log = logging.getLogger(__name__)
EVERY = timedelta(minutes=5)
LEASE = timedelta(minutes=2)
TIMEOUT = 10.0
MAX_BODY = 2_000_000
CLAIM_BATCH = 20

_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")
_DATES = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"  # ISO dates and stamps
    r"|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"  # 27/11/2026, 27-11-26
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?"  # 10:05, 10:05:33 PM
    r"|(?:ngày|tháng|năm)\s+\d{1,4}"  # ngày 27 tháng 11 năm 2026
)
_SPACE = re.compile(r"\s+")


def normalise(body: str) -> str:
    """The text of a page that should not change: scripts and styles, tags, dates and times, and whitespace
    removed (so a clock or a 'last updated' on the page does not count as a change)."""
    text = _SCRIPT.sub(" ", body)
    text = _TAGS.sub(" ", text)
    text = html.unescape(text)
    text = _DATES.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def content_hash(body: str) -> str:
    return hashlib.sha256(normalise(body).encode()).hexdigest()


@dataclass(frozen=True)
class Result:
    status: str
    http_status: int | None
    latency_ms: int | None
    content_hash: str
    error: str
    expected_missing: bool = False


def fetch(url: str, expected_text: str, known_hash: str, timeout: float = TIMEOUT) -> Result:
    """Check one website (blocking)."""
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5, trust_env=False) as client:
            answer = client.get(url, headers={"User-Agent": "cityops-website-check"})
            body = answer.content[:MAX_BODY].decode(answer.encoding or "utf-8", "replace")
    except httpx.TimeoutException:
        return Result("down", None, int((time.monotonic() - started) * 1000), "", "timeout")
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return Result("down", None, int((time.monotonic() - started) * 1000), "", f"{type(exc).__name__}: {exc}"[:500])
    latency = int((time.monotonic() - started) * 1000)
    if answer.status_code >= 400:
        return Result("down", answer.status_code, latency, "", f"HTTP {answer.status_code}")
    digest = content_hash(body)
    if expected_text and expected_text not in body and expected_text not in html.unescape(body):
        return Result("changed", answer.status_code, latency, digest, "expected_text_missing", expected_missing=True)
    if known_hash and digest != known_hash:
        return Result("changed", answer.status_code, latency, digest, "content_changed")
    return Result("up", answer.status_code, latency, digest, "")


def claim(db: Database, now: datetime, owner: str, limit: int = CLAIM_BATCH) -> list[int]:
    """Claim the systems whose website check is due and that no one holds."""
    free = or_(InformationSystem.check_until.is_(None), InformationSystem.check_until < now)
    due = or_(InformationSystem.next_check_at.is_(None), InformationSystem.next_check_at <= now)
    with db.writing() as session:
        candidates = (
            select(InformationSystem.id)
            .where(InformationSystem.website_url != "", due, free)
            .order_by(InformationSystem.next_check_at, InformationSystem.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = session.execute(
            update(InformationSystem)
            .where(InformationSystem.id.in_(candidates), InformationSystem.website_url != "", due, free)
            .values(check_owner=owner[:64], check_until=now + LEASE)
            .returning(InformationSystem.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        return sorted(rows)


def record(db: Database, system_id: int, owner: str, result: Result, now: datetime) -> str | None:
    """Store one check and release the claim; the new status when it changed."""
    with db.writing() as session:
        system = session.get(InformationSystem, system_id)
        if system is None or system.check_owner != owner[:64]:
            return None
        session.add(
            WebsiteCheck(
                system_id=system.id,
                checked_at=now,
                status=result.status,
                http_status=result.http_status,
                latency_ms=result.latency_ms,
                content_hash=result.content_hash,
                error=result.error,
            )
        )
        changed = None
        if result.status != system.website_status:
            changed = result.status
            previous = system.website_status
            system.website_status, system.website_status_since = result.status, now
            live.publish(
                session,
                "security",
                {
                    "kind": "website",
                    "system": system.code,
                    "from": previous,
                    "status": result.status,
                    "at": now.isoformat(),
                },
            )
        if not system.website_content_hash and result.status == "up":
            system.website_content_hash = result.content_hash  # the first page seen is the reference
        if result.status in ("down", "changed"):
            record_event(
                session,
                now,
                category="security",
                type=f"website_{result.status}",
                severity="critical" if result.status == "down" else "warning",
                source="soc",
                title=f"{system.website_url} — {result.error}"[:500],
                subject_id=system.subject_id,
                agency_id=system.owner_agency_id,
                details={"http_status": result.http_status, "error": result.error[:200]},
            )
        system.website_checked_at = now
        system.check_owner, system.check_until = "", None
        system.next_check_at = now + EVERY
        return changed


def check_due(db: Database, clock: Clock, *, owner: str, timeout: float = TIMEOUT) -> int:
    """Claim and check the due websites (in parallel threads); how many were checked."""
    now = clock()
    ids = claim(db, now, owner)
    if not ids:
        return 0
    with db.reading() as session:
        targets = [
            (row.id, row.website_url, row.website_expected_text, row.website_content_hash)
            for row in session.scalars(select(InformationSystem).where(InformationSystem.id.in_(ids)))
        ]
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        results = list(pool.map(lambda t: (t[0], fetch(t[1], t[2], t[3], timeout)), targets))
    for system_id, result in results:
        try:
            record(db, system_id, owner, result, clock())
        except Exception:
            log.exception("website check of system %s could not be stored", system_id)
    return len(results)


def accept_content(db: Database, actor: Actor, system_id: int, now: datetime) -> None:
    """Take the page as last checked as the new reference (after a wanted change of the site)."""
    with db.writing() as session:
        system = session.get(InformationSystem, system_id)
        if system is None:
            return
        last = session.scalar(
            select(WebsiteCheck.content_hash)
            .where(WebsiteCheck.system_id == system_id, WebsiteCheck.content_hash != "")
            .order_by(WebsiteCheck.checked_at.desc(), WebsiteCheck.id.desc())
            .limit(1)
        )
        system.website_content_hash = last or ""
        system.next_check_at = now
        audit(session, actor, "soc.website.accept", "information_system", system.id, now, {"hash": last or ""})
