"""The rules of feeds: create and change a feed (its connector's settings validated, secrets encrypted and never
shown back), what it must cover, the identity its connector ingests under, and its run log."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import SYSTEM, Actor, audit, get_agency
from cityops.catalog.models import Indicator
from cityops.crypto import SecretsUnreadable, decrypt_json, encrypt_json
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.feeds.models import COVERAGES, Feed, FeedRun, feed_indicators
from cityops.geo.models import Subject
from cityops.i18n import both

if TYPE_CHECKING:
    from cityops.observations.service import IngestResult

SECRET_MASK = "••••••"  # noqa: S105 - what a set secret shows as, never a secret
# A feed's code: lower-case ASCII, digits and underscores, as in URLs and keys; "new" names the creation page.
FEED_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}", re.ASCII)
RESERVED_CODES = frozenset({"new"})
MAX_POLL_SECONDS = 7 * 86_400


class FeedError(ValueError):
    """A feed cannot be created or changed as asked; code and message in Vietnamese and English."""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        self.message_vi, self.message_en = both(f"feeds.error.{code}", **params)
        super().__init__(self.message_en)


def _settings_model(kind: str) -> type[BaseModel]:
    from cityops.connectors import connector_class

    try:
        return connector_class(kind).settings_model
    except KeyError:
        from cityops.connectors import kinds

        raise FeedError("unknown_kind", kind=kind[:32], kinds=", ".join(kinds())) from None


def _secret_names(model: type[BaseModel]) -> list[str]:
    from cityops.connectors.base import secret_fields

    return secret_fields(model)


def validate_settings(
    kind: str, given: dict[str, Any], stored_secrets: dict[str, Any] | None = None
) -> tuple[BaseModel, dict[str, Any], dict[str, Any]]:
    """Check a kind's settings; a secret left empty (or given as the mask) keeps the stored one.

    Returns the validated model, the plain settings to store, and the secrets to encrypt.
    """
    model = _settings_model(kind)
    secret_names = _secret_names(model)
    merged = dict(given)
    for name in secret_names:
        if merged.get(name) in (None, "", SECRET_MASK):
            # Left empty or sent back masked: keep the stored secret; with none stored, it is simply not set
            # (the mask itself must never be stored as a password).
            if stored_secrets and stored_secrets.get(name):
                merged[name] = stored_secrets[name]
            else:
                merged.pop(name, None)
    try:
        validated = model.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or kind
        if first.get("type") == "missing":
            raise FeedError("settings_missing", field=where) from exc
        if first.get("type") == "extra_forbidden":
            raise FeedError("settings_unknown_field", field=where) from exc
        raise FeedError("invalid_settings", field=where, reason=str(first.get("msg", ""))[:200]) from exc
    plain = validated.model_dump(mode="json", exclude=set(secret_names))
    secrets: dict[str, Any] = {}
    for name in secret_names:
        value = getattr(validated, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            secrets[name] = value.get_secret_value()
    return validated, plain, secrets


def settings_of(feed: Feed, secret_key: str) -> BaseModel:
    """A feed's settings with its secrets decrypted, validated by its kind's model."""
    try:
        secrets = decrypt_json(secret_key, feed.secrets)
    except SecretsUnreadable:
        secrets = {}
    return _settings_model(feed.kind).model_validate({**(feed.settings or {}), **secrets})


def _check_schedule(cadence: str, grace_minutes: int, coverage: str) -> str:
    canonical = ""
    if cadence.strip():
        try:
            canonical = parse_cadence(cadence).text
        except CadenceError:
            raise FeedError("invalid_cadence", cadence=cadence[:60]) from None
    if not 0 <= grace_minutes <= 60 * 24 * 92:
        raise FeedError("invalid_grace", value=grace_minutes)
    if coverage not in COVERAGES:
        raise FeedError("invalid_coverage", value=coverage[:20], allowed=", ".join(COVERAGES))
    return canonical


def _check_poll(poll_seconds: int) -> int:
    if not 0 <= poll_seconds <= MAX_POLL_SECONDS:
        raise FeedError("invalid_poll", value=poll_seconds)
    return poll_seconds


def _indicator_ids(session: Session, codes: Sequence[str]) -> dict[str, int]:
    found = dict(session.execute(select(Indicator.code, Indicator.id).where(Indicator.code.in_(list(codes)))).all())
    missing = sorted(set(codes) - set(found))
    if missing:
        raise FeedError("unknown_indicators", codes=", ".join(missing[:10]))
    return found


def _check_subjects(session: Session, codes: Sequence[str]) -> list[str]:
    found = set(session.scalars(select(Subject.code).where(Subject.code.in_(list(codes)))))
    missing = sorted(set(codes) - found)
    if missing:
        raise FeedError("unknown_subjects", codes=", ".join(missing[:10]))
    return sorted(set(codes))


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
    description: str = "",
    settings: dict[str, Any] | None = None,
    secret_key: str = "",
    cadence: str = "",
    grace_minutes: int = 0,
    coverage: str = "province",
    subject_codes: list[str] | None = None,
    poll_seconds: int = 0,
    paused: bool = False,
) -> Feed:
    """Create a feed that an agency supplies, bound to the indicators it may write."""
    if not FEED_CODE.fullmatch(code) or code in RESERVED_CODES:
        raise FeedError("invalid_code", code=code[:64])
    if session.scalar(select(Feed.id).where(Feed.code == code)) is not None:
        raise FeedError("exists", feed=code)
    agency = get_agency(session, agency_code)
    indicators = _indicator_ids(session, indicator_codes)
    canonical = _check_schedule(cadence, grace_minutes, coverage)
    subjects = _check_subjects(session, subject_codes or [])
    if coverage == "list" and not subjects:
        raise FeedError("no_subjects")
    _check_poll(poll_seconds)
    _validated, plain, secrets = validate_settings(kind, settings or {})
    if secrets and not secret_key:
        raise FeedError("no_secret_key")
    feed = Feed(
        code=code,
        name=name or code,
        description=description,
        agency_id=agency.id,
        kind=kind,
        settings=plain,
        secrets=encrypt_json(secret_key, secrets) if secrets else "",
        secret_names=sorted(secrets),
        cadence=canonical,
        grace_minutes=grace_minutes,
        coverage=coverage,
        subject_codes=subjects,
        poll_seconds=poll_seconds,
        next_run_at=now if poll_seconds else None,
        paused=paused,
        created_at=now,
        updated_at=now,
    )
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
        {
            "code": code,
            "agency": agency_code,
            "kind": kind,
            "indicators": sorted(indicator_codes),
            "cadence": canonical,
            "settings": plain,
            "secrets_set": sorted(secrets),
        },
    )
    return feed


UPDATABLE = (
    "name",
    "description",
    "settings",
    "cadence",
    "grace_minutes",
    "coverage",
    "subject_codes",
    "poll_seconds",
    "paused",
    "indicator_codes",
)


def update_feed(
    session: Session, actor: Actor, now: datetime, code: str, changes: dict[str, Any], *, secret_key: str = ""
) -> Feed:
    """Change a feed; settings' secrets left empty keep their stored values. Every change goes to the audit log."""
    feed = get_feed(session, code)
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise FeedError("not_updatable", field=unknown[0])
    before = {"cadence": feed.cadence, "grace_minutes": feed.grace_minutes, "paused": feed.paused}
    recorded: dict[str, Any] = {}
    if "settings" in changes:
        try:
            stored = decrypt_json(secret_key, feed.secrets) if feed.secrets else {}
        except SecretsUnreadable:
            stored = {}
        _validated, plain, secrets = validate_settings(feed.kind, changes["settings"] or {}, stored)
        feed.settings = plain
        if secrets and not secret_key:
            raise FeedError("no_secret_key")
        feed.secrets = encrypt_json(secret_key, secrets) if secrets else ""
        feed.secret_names = sorted(secrets)
        recorded["settings"] = plain
        recorded["secrets_set"] = sorted(secrets)
    cadence = changes.get("cadence", feed.cadence)
    grace = int(changes.get("grace_minutes", feed.grace_minutes))
    coverage = changes.get("coverage", feed.coverage)
    canonical = _check_schedule(cadence or "", grace, coverage)
    if "subject_codes" in changes:
        feed.subject_codes = _check_subjects(session, changes["subject_codes"] or [])
        recorded["subject_codes"] = feed.subject_codes
    if coverage == "list" and not feed.subject_codes:
        raise FeedError("no_subjects")
    schedule_changed = canonical != feed.cadence or grace != feed.grace_minutes
    feed.cadence, feed.grace_minutes, feed.coverage = canonical, grace, coverage
    for name in ("name", "description"):
        if name in changes:
            setattr(feed, name, str(changes[name] or "")[: 255 if name == "name" else 5000])
            recorded[name] = getattr(feed, name)
    if "poll_seconds" in changes:
        feed.poll_seconds = _check_poll(int(changes["poll_seconds"] or 0))
        feed.next_run_at = now if feed.poll_seconds else None
        recorded["poll_seconds"] = feed.poll_seconds
    if "paused" in changes:
        feed.paused = bool(changes["paused"])
        recorded["paused"] = feed.paused
    if "indicator_codes" in changes:
        indicators = _indicator_ids(session, changes["indicator_codes"] or [])
        session.execute(delete(feed_indicators).where(feed_indicators.c.feed_id == feed.id))
        if indicators:
            session.execute(
                insert(feed_indicators), [{"feed_id": feed.id, "indicator_id": id_} for id_ in indicators.values()]
            )
        recorded["indicators"] = sorted(indicators)
    if schedule_changed:
        # Periods not yet received are planned again under the new schedule.
        from cityops.feeds.models import EXPECTED, FeedExpectation

        session.execute(
            delete(FeedExpectation).where(FeedExpectation.feed_id == feed.id, FeedExpectation.state == EXPECTED)
        )
        recorded.update(cadence=canonical, grace_minutes=grace)
    feed.updated_at = now
    audit(session, actor, "feed.update", "feed", feed.id, now, {"code": code, "before": before, "changes": recorded})
    return feed


def get_feed(session: Session, code: str) -> Feed:
    """The feed with this code; FeedError when there is none."""
    feed = session.scalar(select(Feed).where(Feed.code == code))
    if feed is None:
        raise FeedError("unknown_feed", feed=code[:64])
    return feed


def may_see(principal: Principal, feed: Feed) -> bool:
    """Whether a principal may see a feed: province-wide roles see all, others their agency subtree's."""
    return principal.province_wide or feed.agency_id in principal.agency_ids


def visible_feeds(session: Session, principal: Principal) -> list[Feed]:
    """The feeds a principal may see, by code."""
    query = select(Feed).order_by(Feed.code)
    if not principal.province_wide:
        query = query.where(Feed.agency_id.in_(sorted(principal.agency_ids)))
    return list(session.scalars(query))


def visible_feed(session: Session, principal: Principal, code: str) -> Feed:
    """The feed with this code if the principal may see it; FeedError("unknown_feed") otherwise (whether it
    exists elsewhere is not told)."""
    feed = get_feed(session, code)
    if not may_see(principal, feed):
        raise FeedError("unknown_feed", feed=code[:64])
    return feed


def last_runs(session: Session, feed_ids: Sequence[int]) -> dict[int, FeedRun]:
    """Each feed's latest run (by start), for the feeds that have one."""
    if not feed_ids:
        return {}
    ranked = (
        select(
            FeedRun.id,
            func.row_number()
            .over(partition_by=FeedRun.feed_id, order_by=(FeedRun.started_at.desc(), FeedRun.id.desc()))
            .label("rank"),
        )
        .where(FeedRun.feed_id.in_(list(feed_ids)))
        .subquery()
    )
    latest = select(ranked.c.id).where(ranked.c.rank == 1)
    return {run.feed_id: run for run in session.scalars(select(FeedRun).where(FeedRun.id.in_(latest)))}


def feed_indicator_codes(session: Session, feed_id: int) -> list[str]:
    """The codes of the indicators a feed supplies."""
    return list(
        session.scalars(
            select(Indicator.code)
            .join(feed_indicators, feed_indicators.c.indicator_id == Indicator.id)
            .where(feed_indicators.c.feed_id == feed_id)
            .order_by(Indicator.code)
        )
    )


def required_subjects(session: Session, feed: Feed, province_code: str) -> list[Subject]:
    """The subjects a feed must cover: the province, each of its communes, or the listed ones."""
    province = session.scalar(select(Subject).where(Subject.code == f"{int(province_code):02d}"))
    if feed.coverage == "communes":
        if province is None:
            return []
        return list(
            session.scalars(
                select(Subject)
                .where(Subject.kind == "commune", Subject.parent_id == province.id)
                .order_by(Subject.code)
            )
        )
    if feed.coverage == "list":
        return list(session.scalars(select(Subject).where(Subject.code.in_(feed.subject_codes)).order_by(Subject.code)))
    return [province] if province is not None else []


def secret_fields_of(kind: str) -> list[str]:
    """The names of a kind's secret settings (passwords, tokens); none for an unknown kind."""
    try:
        return _secret_names(_settings_model(kind))
    except FeedError:
        return []


def is_scheduled(kind: str) -> bool:
    """Whether a kind pulls on a schedule (and so can be run now)."""
    from cityops.connectors import connector_class

    try:
        return bool(connector_class(kind).scheduled)
    except KeyError:
        return False


def feed_out(session: Session, feed: Feed, language: str = "vi", last_run: FeedRun | None = None) -> dict[str, Any]:
    """The API shape of a feed: settings with every secret masked (whether one is set, never its value)."""
    agency = session.scalar(select(Agency).where(Agency.id == feed.agency_id))
    try:
        secret_names = _secret_names(_settings_model(feed.kind))
    except FeedError:  # a kind whose package is gone: mask what is known to be set
        secret_names = list(feed.secret_names or [])
    settings = dict(feed.settings or {})
    for name in secret_names:
        settings[name] = SECRET_MASK if name in (feed.secret_names or []) else None
    cadence_text = ""
    if feed.cadence:
        try:
            cadence_text = parse_cadence(feed.cadence).describe(language)
        except CadenceError:
            cadence_text = feed.cadence
    agency_name = ""
    if agency is not None:
        agency_name = agency.name_vi if language == "vi" else agency.name_en or agency.name_vi
    return {
        "code": feed.code,
        "name": feed.name,
        "description": feed.description,
        "agency": agency.code if agency is not None else None,
        "agency_name": agency_name,
        "kind": feed.kind,
        "scheduled": is_scheduled(feed.kind),
        "settings": settings,
        "secrets_set": sorted(feed.secret_names or []),
        "cadence": feed.cadence,
        "cadence_text": cadence_text,
        "grace_minutes": feed.grace_minutes,
        "coverage": feed.coverage,
        "subjects": list(feed.subject_codes or []),
        "indicators": feed_indicator_codes(session, feed.id),
        "poll_seconds": feed.poll_seconds,
        "next_run_at": feed.next_run_at.isoformat() if feed.next_run_at else None,
        "paused": feed.paused,
        "last_run": (
            {
                "trigger": last_run.trigger,
                "status": last_run.status,
                "started_at": last_run.started_at.isoformat(),
                "finished_at": last_run.finished_at.isoformat() if last_run.finished_at else None,
                "error_code": last_run.error_code,
            }
            if last_run is not None
            else None
        ),
        "created_at": feed.created_at.isoformat(),
        "updated_at": feed.updated_at.isoformat() if feed.updated_at else None,
    }


def audit_manual_run(session: Session, actor: Actor, now: datetime, feed: Feed, run: dict[str, Any]) -> None:
    """Who ran a feed by hand, and what came of it, goes to the audit log."""
    audit(
        session,
        actor,
        "feed.run",
        "feed",
        feed.id,
        now,
        {"code": feed.code, "run": run["id"], "status": run["status"]},
    )


def feed_principal(feed: Feed) -> Principal:
    """Who a connector ingests as: the feed's agency, writing through this feed only."""
    return Principal(
        role="api_key",
        label=f"feed {feed.code}",
        agency_id=feed.agency_id,
        agency_ids=frozenset({feed.agency_id}),
        feed_ids=(feed.id,),
        csrf_exempt=True,
    )


# --- runs -------------------------------------------------------------------------------------------


def start_run(session: Session, feed_id: int, trigger: str, now: datetime) -> FeedRun:
    """Open a run of a feed (finished by finish_run)."""
    run = FeedRun(feed_id=feed_id, trigger=trigger, started_at=now, status="running")
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session,
    run_id: int,
    now: datetime,
    *,
    status: str,
    attempts: int = 1,
    received: int = 0,
    accepted: int = 0,
    rejected: int = 0,
    batch_id: int | None = None,
    error_code: str = "",
    retryable: bool | None = None,
    message_vi: str = "",
    message_en: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Close a run with what it brought and what failed."""
    session.execute(
        update(FeedRun)
        .where(FeedRun.id == run_id)
        .values(
            finished_at=now,
            status=status,
            attempts=attempts,
            received=received,
            accepted=accepted,
            rejected=rejected,
            batch_id=batch_id,
            error_code=error_code,
            retryable=retryable,
            message_vi=message_vi,
            message_en=message_en,
            details=details or {},
        )
    )


def finish_run_stored(
    session: Session,
    run_id: int,
    now: datetime,
    result: IngestResult,
    *,
    attempts: int = 1,
    details: dict[str, Any] | None = None,
) -> None:
    """Close a run that stored a batch: ok, partial (some items refused) or failed (all refused), with the first
    refusal's reason."""
    first = result.rejected[0] if result.rejected else None
    finish_run(
        session,
        run_id,
        now,
        status="ok" if not result.rejected else ("partial" if result.accepted else "failed"),
        attempts=attempts,
        received=result.received,
        accepted=result.accepted,
        rejected=len(result.rejected),
        batch_id=result.batch_id,
        error_code=first.code if first else "",
        retryable=False if first else None,
        message_vi=first.message_vi if first else "",
        message_en=first.message_en if first else "",
        details=details,
    )


def log_push_runs(
    session: Session,
    batch_id: int,
    rows: Sequence[dict[str, Any]],
    rejections: Sequence[Any],
    rejection_feeds: Sequence[int | None],
    now: datetime,
) -> None:
    """One run per feed a pushed batch touched: how many of its items were kept and rejected."""
    accepted: dict[int, int] = {}
    for row in rows:
        accepted[row["feed_id"]] = accepted.get(row["feed_id"], 0) + 1
    rejected: dict[int, list[Any]] = {}
    for rejection, feed_id in zip(rejections, rejection_feeds, strict=True):
        if feed_id is not None:
            rejected.setdefault(feed_id, []).append(rejection)
    runs: list[dict[str, Any]] = []
    for feed_id in sorted(set(accepted) | set(rejected)):
        kept, refused = accepted.get(feed_id, 0), rejected.get(feed_id, [])
        status = "ok" if not refused else ("partial" if kept else "failed")
        first = refused[0] if refused else None
        runs.append(
            {
                "feed_id": feed_id,
                "trigger": "push",
                "started_at": now,
                "finished_at": now,
                "status": status,
                "attempts": 1,
                "received": kept + len(refused),
                "accepted": kept,
                "rejected": len(refused),
                "batch_id": batch_id,
                "error_code": first.code if first else "",
                "retryable": False if first else None,
                "message_vi": first.message_vi if first else "",
                "message_en": first.message_en if first else "",
                "details": {},
            }
        )
    if runs:
        session.execute(insert(FeedRun), runs)


def recent_runs(session: Session, feed_id: int, limit: int = 50) -> list[FeedRun]:
    """A feed's latest runs, newest first."""
    return list(
        session.scalars(
            select(FeedRun)
            .where(FeedRun.feed_id == feed_id)
            .order_by(FeedRun.started_at.desc(), FeedRun.id.desc())
            .limit(limit)
        )
    )


def run_out(run: FeedRun) -> dict[str, Any]:
    """The API shape of a run."""
    return {
        "id": run.id,
        "trigger": run.trigger,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": run.status,
        "attempts": run.attempts,
        "received": run.received,
        "accepted": run.accepted,
        "rejected": run.rejected,
        "batch_id": run.batch_id,
        "error": (
            {
                "code": run.error_code,
                "retryable": run.retryable,
                "message_vi": run.message_vi,
                "message_en": run.message_en,
            }
            if run.error_code
            else None
        ),
        "details": run.details or {},
    }


def claim_due_pulls(session: Session, now: datetime, kinds: Sequence[str]) -> list[int]:
    """Claim the scheduled feeds whose next run is due (a conditional UPDATE: one worker wins each)."""
    claimed = session.execute(
        update(Feed)
        .where(
            Feed.kind.in_(list(kinds)),
            Feed.paused.is_(False),
            Feed.poll_seconds > 0,
            Feed.next_run_at.is_not(None),
            Feed.next_run_at <= now,
        )
        .values(next_run_at=now + timedelta(days=3650))  # pushed back below, per feed, once claimed
        .returning(Feed.id, Feed.poll_seconds)
        .execution_options(synchronize_session=False)
    ).all()
    for feed_id, poll_seconds in claimed:
        session.execute(
            update(Feed).where(Feed.id == feed_id).values(next_run_at=now + timedelta(seconds=poll_seconds))
        )
    return [feed_id for feed_id, _ in claimed]


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


def own_feed(
    session: Session,
    now: datetime,
    *,
    code: str,
    agency_code: str,
    indicator_codes: Sequence[str],
    name: str,
    description: str,
    wanted: Callable[[], bool],
    coverage: str = "province",
) -> Feed | None:
    """The IOC's own feed of values it computes itself (citizen reports, cameras, security), found by its code or made
    the first time `wanted()` says there is something to publish, when the catalog has its indicators and its agency;
    None otherwise (and a worker round stays a query or two)."""
    feed = session.scalar(select(Feed).where(Feed.code == code))
    if feed is not None:
        return feed
    if not wanted():
        return None
    present = set(session.scalars(select(Indicator.code).where(Indicator.code.in_(list(indicator_codes)))))
    if present != set(indicator_codes) or session.scalar(select(Agency.id).where(Agency.code == agency_code)) is None:
        return None
    return create_feed(
        session,
        SYSTEM,
        now,
        code=code,
        agency_code=agency_code,
        indicator_codes=list(indicator_codes),
        name=name,
        description=description,
        kind="push",
        coverage=coverage,
    )
