"""The rules of observations.

Ingest of one batch:
1. validate every item in memory against the catalog, subjects and the key's feeds, looked up once per batch;
2. keep every good item, and for each bad one its index, a code and a reason in Vietnamese and English;
3. in one transaction: find the current rows the batch touches, move the ones whose value changes to history,
   upsert the new and changed rows with a few set-based statements, and store the idempotent answer;
4. answer only after commit, so an acknowledged value is durable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

import orjson
from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops import live
from cityops.accounts.roles import Principal
from cityops.alerts import evaluation as alert_evaluation
from cityops.catalog.models import Indicator
from cityops.db.engine import Database
from cityops.feeds import lateness
from cityops.feeds import service as feeds_service
from cityops.feeds.models import Feed
from cityops.feeds.service import feed_indicator_map
from cityops.geo.models import Subject
from cityops.i18n import both, translate
from cityops.observations import rollup
from cityops.observations.models import (
    IdempotencyRecord,
    IngestBatch,
    IngestRejection,
    Observation,
    ObservationDay,
    ObservationHistory,
)
from cityops.observations.periods import Period, PeriodError, parse_period

ITEM_FIELDS = frozenset({"indicator", "subject", "period", "value", "null_reason", "dimensions", "source_ref", "feed"})
REQUIRED_FIELDS = ("indicator", "subject", "period", "value")
_DIMENSION_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_DIMENSION_VALUE = 100
MAX_DIMENSIONS = 8
MAX_SOURCE_REF = 255
MAX_NULL_REASON = 500
FUTURE_TOLERANCE = timedelta(minutes=5)
KEY_COLUMNS = ("indicator_id", "subject_id", "period_key", "dims_key", "feed_id")
_LOOKUP_CHUNK = 400
_OBSERVATIONS_TABLE = cast(Table, Observation.__table__)
_HISTORY_TABLE = cast(Table, ObservationHistory.__table__)
_EXISTING_CHUNK = 2000  # rows per lookup of stored keys: three IN lists stay under SQLite's 32,766 parameters
_ADVISORY_NAMESPACE = 73_110  # pg_advisory_xact_lock(namespace, feed id): one writer per feed at a time
# PostgreSQL text cannot hold NUL, so a text field with one is refused like a wrong type.
_WITHOUT_NUL = {"expected_vi": "chuỗi không chứa ký tự NUL (U+0000)", "expected_en": "a string without NUL (U+0000)"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one item of a batch was not stored."""

    index: int
    code: str
    message_vi: str
    message_en: str
    field: str | None = None
    # What was sent, when a connector refused it before ingest (a record it could not map, a bad message):
    # kept in ingest_rejections beside the reason, so an officer sees the row that failed.
    record: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "field": self.field,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
        }


@dataclass
class IngestResult:
    """The answer to a batch."""

    batch_id: int | None
    received: int
    accepted: int
    created: int
    replaced: int
    unchanged: int
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "received": self.received,
            "accepted": self.accepted,
            "created": self.created,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": [r.as_dict() for r in self.rejected],
        }


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different body."""


@dataclass(frozen=True, slots=True)
class _IndicatorInfo:
    id: int
    code: str
    period_type: str
    min_value: float | None
    max_value: float | None
    dimensions: frozenset[str]


def _reject(index: int, error: str, field_name: str | None = None, **params: Any) -> Rejection:
    vi, en = both(f"item.{error}", **params)
    # A message quoting what was sent must not carry NUL on to PostgreSQL (rejections and runs are stored).
    return Rejection(index, error, _no_nul(vi), _no_nul(en), field_name)


def canonical_dimensions(dimensions: dict[str, str]) -> str:
    """A short stable key for a set of dimensions: sorted name=value pairs, hashed when long."""
    if not dimensions:
        return ""
    # Values are percent-encoded so that "&" or "=" inside a value cannot make two sets look alike.
    key = "&".join(f"{name}={quote(dimensions[name], safe='')}" for name in sorted(dimensions))
    return key if len(key) <= 200 else "sha1:" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()


def _format_range_value(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


class _Validator:
    """Checks the items of one batch against lookups made once for the whole batch."""

    def __init__(self, session: Session, principal: Principal, items: Sequence[Any], now: datetime) -> None:
        self.now = now
        codes_list = list(set(_strings(items, "indicator")))
        subjects_list = list(set(_strings(items, "subject")))
        feed_codes = set(_strings(items, "feed"))
        self.indicators: dict[str, _IndicatorInfo] = {}
        for chunk in _chunks(codes_list, _LOOKUP_CHUNK):
            for row in session.execute(
                select(
                    Indicator.id,
                    Indicator.code,
                    Indicator.period_type,
                    Indicator.min_value,
                    Indicator.max_value,
                    Indicator.dimensions,
                ).where(Indicator.code.in_(chunk))
            ):
                self.indicators[row.code] = _IndicatorInfo(
                    row.id, row.code, row.period_type, row.min_value, row.max_value, frozenset(row.dimensions or ())
                )
        self.subjects: dict[str, int] = {}
        for chunk in _chunks(subjects_list, _LOOKUP_CHUNK):
            self.subjects.update(session.execute(select(Subject.code, Subject.id).where(Subject.code.in_(chunk))).all())
        self.feeds_by_indicator = feed_indicator_map(session, principal.feed_ids)
        self.feed_codes: dict[str, int] = {}
        if feed_codes:
            self.feed_codes = dict(
                session.execute(
                    select(Feed.code, Feed.id).where(Feed.code.in_(list(feed_codes)), Feed.id.in_(principal.feed_ids))
                ).all()
            )
        self.seen: dict[tuple[Any, ...], int] = {}
        self.periods: dict[str, Period] = {}

    def check(self, index: int, item: Any) -> dict[str, Any] | Rejection:
        """The row to store for one item, or why it is rejected."""
        if not isinstance(item, dict):
            return _reject(index, "not_an_object")
        unknown = sorted(set(item) - ITEM_FIELDS)
        if unknown:
            return _reject(index, "unknown_field", unknown[0], field=unknown[0])
        for name in REQUIRED_FIELDS:
            if name not in item:
                return _reject(index, "missing_field", name, field=name)
        for name in ("indicator", "subject", "period"):
            if not isinstance(item[name], str):
                return _reject(index, "wrong_type", name, field=name, expected_vi="chuỗi", expected_en="a string")
        indicator = self.indicators.get(item["indicator"])
        if indicator is None:
            return _reject(index, "unknown_indicator", "indicator", code=item["indicator"][:80])
        feed_id = self._feed_for(item, indicator)
        if isinstance(feed_id, Rejection):
            return Rejection(index, feed_id.code, feed_id.message_vi, feed_id.message_en, feed_id.field)
        subject_id = self.subjects.get(item["subject"])
        if subject_id is None:
            return _reject(index, "unknown_subject", "subject", code=item["subject"][:64])
        try:
            period = self._period(item["period"])
        except PeriodError:
            return _reject(index, "invalid_period", "period", value=item["period"][:40])
        if period.type != indicator.period_type:
            return _reject(
                index,
                "period_type_mismatch",
                "period",
                code=indicator.code,
                expected_vi=translate(f"period.{indicator.period_type}", "vi"),
                expected_en=translate(f"period.{indicator.period_type}", "en"),
                given_vi=translate(f"period.{period.type}", "vi"),
                given_en=translate(f"period.{period.type}", "en"),
            )
        if period.start > self.now + FUTURE_TOLERANCE:
            return _reject(index, "period_in_future", "period", period=period.key)
        value_or_rejection = self._value(index, item, indicator)
        if isinstance(value_or_rejection, Rejection):
            return value_or_rejection
        value, null_reason = value_or_rejection
        dimensions = {} if item.get("dimensions") is None else item["dimensions"]
        dims_or_rejection = self._dimensions(index, dimensions, indicator)
        if isinstance(dims_or_rejection, Rejection):
            return dims_or_rejection
        source_ref = "" if item.get("source_ref") is None else item["source_ref"]
        if not isinstance(source_ref, str):
            return _reject(
                index, "wrong_type", "source_ref", field="source_ref", expected_vi="chuỗi", expected_en="a string"
            )
        if "\x00" in source_ref:
            return _reject(index, "wrong_type", "source_ref", field="source_ref", **_WITHOUT_NUL)
        if len(source_ref) > MAX_SOURCE_REF:
            return _reject(index, "text_too_long", "source_ref", field="source_ref", limit=MAX_SOURCE_REF)
        key = (indicator.id, subject_id, period.key, dims_or_rejection, feed_id)
        first = self.seen.get(key)
        if first is not None:
            return _reject(index, "duplicate_in_batch", None, first=first)
        self.seen[key] = index
        return {
            "indicator_id": indicator.id,
            "subject_id": subject_id,
            "period_type": period.type,
            "period_key": period.key,
            "period_start": period.start,
            "period_end": period.end,
            "dims_key": dims_or_rejection,
            "dimensions": dimensions,
            "feed_id": feed_id,
            "value": value,
            "null_reason": null_reason,
            "source_ref": source_ref,
        }

    def feed_of(self, item: Any, default: int | None) -> int | None:
        """The feed an item (kept or rejected) belongs to, as far as can be told."""
        if isinstance(item, dict):
            requested = item.get("feed")
            if isinstance(requested, str) and requested in self.feed_codes:
                return self.feed_codes[requested]
            code = item.get("indicator")
            indicator = self.indicators.get(code) if isinstance(code, str) else None
            if indicator is not None and self.feeds_by_indicator.get(indicator.id):
                return self.feeds_by_indicator[indicator.id][0]
        return default

    def indicator_of(self, item: Any) -> int | None:
        """The indicator id of an item, when it names a known one."""
        if isinstance(item, dict) and isinstance(item.get("indicator"), str):
            indicator = self.indicators.get(item["indicator"])
            return indicator.id if indicator else None
        return None

    def _period(self, text: str) -> Period:
        # A batch holds few distinct periods: parse each once.
        period = self.periods.get(text)
        if period is None:
            period = self.periods[text] = parse_period(text)
        return period

    def _feed_for(self, item: dict[str, Any], indicator: _IndicatorInfo) -> int | Rejection:
        allowed = self.feeds_by_indicator.get(indicator.id, [])
        requested = item.get("feed")
        if requested is not None:
            if not isinstance(requested, str) or requested not in self.feed_codes:
                return _reject(-1, "unknown_feed", "feed", code=str(requested)[:64])
            if self.feed_codes[requested] not in allowed:
                return _reject(-1, "indicator_not_in_feed", "indicator", code=indicator.code)
            return self.feed_codes[requested]
        if not allowed:
            return _reject(-1, "indicator_not_in_feed", "indicator", code=indicator.code)
        return allowed[0]

    def _value(
        self, index: int, item: dict[str, Any], indicator: _IndicatorInfo
    ) -> tuple[float | None, str] | Rejection:
        value = item["value"]
        null_reason = "" if item.get("null_reason") is None else item["null_reason"]
        if not isinstance(null_reason, str):
            return _reject(
                index, "wrong_type", "null_reason", field="null_reason", expected_vi="chuỗi", expected_en="a string"
            )
        if "\x00" in null_reason:
            return _reject(index, "wrong_type", "null_reason", field="null_reason", **_WITHOUT_NUL)
        if len(null_reason) > MAX_NULL_REASON:
            return _reject(index, "text_too_long", "null_reason", field="null_reason", limit=MAX_NULL_REASON)
        if value is None:
            if not null_reason.strip():
                return _reject(index, "null_without_reason", "null_reason")
            return None, null_reason.strip()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _reject(index, "invalid_value", "value")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            return _reject(index, "value_not_finite", "value")
        low, high = indicator.min_value, indicator.max_value
        if (low is not None and number < low) or (high is not None and number > high):
            return _reject(
                index,
                "value_out_of_range",
                "value",
                value=f"{number:g}",
                code=indicator.code,
                min=_format_range_value(low),
                max=_format_range_value(high),
            )
        return number, ""

    def _dimensions(self, index: int, dimensions: Any, indicator: _IndicatorInfo) -> str | Rejection:
        if not isinstance(dimensions, dict):
            return _reject(index, "dimensions_not_object", "dimensions")
        if len(dimensions) > MAX_DIMENSIONS:
            return _reject(index, "too_many_dimensions", "dimensions", limit=MAX_DIMENSIONS)
        for name, value in dimensions.items():
            if not _DIMENSION_NAME.fullmatch(name):
                return _reject(index, "invalid_dimension_name", "dimensions", name=name[:40])
            if name not in indicator.dimensions:
                return _reject(
                    index,
                    "unknown_dimension",
                    "dimensions",
                    code=indicator.code,
                    dimension=name[:40],
                    allowed=", ".join(sorted(indicator.dimensions)) or "—",
                )
            if not isinstance(value, str) or not value or len(value) > MAX_DIMENSION_VALUE or "\x00" in value:
                return _reject(index, "invalid_dimension_value", "dimensions", name=name, limit=MAX_DIMENSION_VALUE)
        return canonical_dimensions(dimensions)


def _strings(items: Sequence[Any], name: str) -> Iterable[str]:
    """The string values of one field across the items, without NUL (which PostgreSQL text cannot hold)."""
    for item in items:
        if isinstance(item, dict) and isinstance(item.get(name), str) and "\x00" not in item[name]:
            yield item[name]


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def parse_body(body: bytes) -> Any:
    """The JSON document of a request; ValueError when it is not JSON.

    orjson refuses numbers that JSON allows but a float cannot hold (1e999, integers past 64 bits) and the
    NaN/Infinity that some systems write; the standard library reads them, so that only the item holding one is
    rejected (value_not_finite) and the good items of the batch are kept.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        try:
            document = json.loads(body)
            # A lone surrogate (\ud800) is valid JSON text but no Unicode string: refuse it as orjson did.
            json.dumps(document, ensure_ascii=False).encode()
        except (ValueError, RecursionError):
            raise ValueError(str(fast_error)) from fast_error
        return document


def request_hash(document: Any) -> str:
    """The fingerprint of a parsed request body, to tell a true retry from a reused key.

    Canonical JSON (sorted keys, no spacing), so a retry that only re-formats the JSON is still the same request.
    """
    try:
        canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers past 64 bits, read by the standard library
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def ingest(
    db: Database,
    principal: Principal,
    items: Sequence[Any],
    now: datetime,
    *,
    idempotency_key: str | None = None,
    body_hash: str = "",
    idempotency_hours: int = 24,
) -> tuple[int, bytes, bool]:
    """Validate and store a batch; returns (status, answer body, replayed) — the same answer for a retry."""
    assert principal.agency_id is not None
    if idempotency_key:
        with db.reading() as session:
            stored = _stored_answer(session, principal.agency_id, idempotency_key, body_hash, now)
        if stored is not None:
            return stored[0], stored[1], True
    try:
        with db.writing() as session:
            result = _ingest_in(session, db.dialect, principal, items, now)
            body = orjson.dumps(result.as_dict())
            if idempotency_key:
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.agency_id == principal.agency_id,
                        IdempotencyRecord.key == idempotency_key,
                        IdempotencyRecord.expires_at <= now,
                    )
                )
                session.add(
                    IdempotencyRecord(
                        agency_id=principal.agency_id,
                        key=idempotency_key,
                        request_hash=body_hash,
                        status_code=200,
                        response_body=body.decode(),
                        created_at=now,
                        expires_at=now + timedelta(hours=idempotency_hours),
                    )
                )
                session.flush()
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with the same key committed first: answer as it was answered.
        with db.reading() as session:
            stored = _stored_answer(session, principal.agency_id, idempotency_key, body_hash, now)
        if stored is None:
            raise
        return stored[0], stored[1], True
    return 200, body, False


def _stored_answer(
    session: Session, agency_id: int, key: str, body_hash: str, now: datetime
) -> tuple[int, bytes] | None:
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key, IdempotencyRecord.expires_at > now
        )
    )
    if record is None:
        return None
    if record.request_hash != body_hash:
        raise IdempotencyConflict(key)
    return record.status_code, record.response_body.encode()


def ingest_items(
    db: Database,
    principal: Principal,
    items: Sequence[Any],
    now: datetime,
    *,
    source: str,
    feed_id: int | None = None,
    pre_rejected: Sequence[Rejection] = (),
    session: Session | None = None,
) -> IngestResult:
    """Validate and store items a connector brought (with the records it could not map); one transaction.

    Each pre-rejected record (Rejection.record) is kept with its reason. With a session, the items are stored in
    that transaction (the caller's, which records its own state with them).
    """
    if session is not None:
        return _ingest_in(
            session,
            db.dialect,
            principal,
            items,
            now,
            source=source,
            feed_id=feed_id,
            pre_rejected=pre_rejected,
        )
    with db.writing() as own_session:
        return _ingest_in(
            own_session,
            db.dialect,
            principal,
            items,
            now,
            source=source,
            feed_id=feed_id,
            pre_rejected=pre_rejected,
        )


def validate_items(
    session: Session, principal: Principal, items: Sequence[Any], now: datetime
) -> list[Rejection | None]:
    """Check items as ingest would, storing nothing: for each item, None when it would be kept, else why not."""
    validator = _Validator(session, principal, items, now)
    outcomes: list[Rejection | None] = []
    for index, item in enumerate(items):
        outcome = validator.check(index, item)
        outcomes.append(outcome if isinstance(outcome, Rejection) else None)
    return outcomes


def _ingest_in(
    session: Session,
    dialect: str,
    principal: Principal,
    items: Sequence[Any],
    now: datetime,
    *,
    source: str = "push",
    feed_id: int | None = None,
    pre_rejected: Sequence[Rejection] = (),
) -> IngestResult:
    validator = _Validator(session, principal, items, now)
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = list(pre_rejected)
    rejected_items: list[Any] = [rejection.record for rejection in pre_rejected]
    for index, item in enumerate(items):
        outcome = validator.check(index, item)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
            rejected_items.append(item)
        else:
            rows.append(outcome)
    if feed_id is None and len(principal.feed_ids) == 1:
        feed_id = principal.feed_ids[0]
    batch = IngestBatch(
        agency_id=principal.agency_id,
        api_key_id=principal.api_key_id,
        feed_id=feed_id,
        source=source,
        received_at=now,
        item_count=len(items) + len(pre_rejected),
        accepted=len(rows),
        rejected=len(rejected),
    )
    session.add(batch)
    session.flush()
    created = replaced = unchanged = 0
    if rows:
        if dialect == "postgresql":
            for row_feed in sorted({row["feed_id"] for row in rows}):
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:namespace, :feed)"),
                    {"namespace": _ADVISORY_NAMESPACE, "feed": row_feed},
                )
        created, replaced, unchanged = _write_rows(session, dialect, rows, batch.id, now)
    batch.created, batch.replaced, batch.unchanged = created, replaced, unchanged
    if rejected:
        session.execute(
            insert(IngestRejection),
            [
                {
                    "batch_id": batch.id,
                    "feed_id": validator.feed_of(item, feed_id),
                    "indicator_id": validator.indicator_of(item),
                    "item_index": rejection.index,
                    "code": rejection.code,
                    "field": _no_nul(rejection.field or "")[:64],
                    "message_vi": _no_nul(rejection.message_vi),
                    "message_en": _no_nul(rejection.message_en),
                    "item": _item_text(item),
                    "received_at": now,
                }
                for rejection, item in zip(rejected, rejected_items, strict=True)
            ],
        )
    arrivals: dict[int, set[tuple[str, datetime]]] = {}
    for row in rows:
        arrivals.setdefault(row["feed_id"], set()).add((row["period_type"], row["period_start"]))
    lateness.mark_received(session, arrivals, now)
    if rows:
        alert_evaluation.mark_due(session, {row["indicator_id"] for row in rows}, now)
        live.values_changed(session, {row["indicator_id"] for row in rows}, now)
    if source == "push":
        feeds_service.log_push_runs(
            session, batch.id, rows, rejected, [validator.feed_of(i, feed_id) for i in rejected_items], now
        )
    return IngestResult(batch.id, len(items) + len(pre_rejected), len(rows), created, replaced, unchanged, rejected)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL: shown as U+FFFD in what is kept of a rejected item."""
    return text.replace("\x00", "\ufffd")


def _item_text(item: Any) -> str:
    if item is None:
        return ""
    try:
        return _no_nul(orjson.dumps(item, default=str).decode()[:1000])
    except TypeError:
        return _no_nul(json.dumps(item, default=str, ensure_ascii=False)[:1000])


def _current_rows(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
    """The stored rows with the same keys as the batch's rows.

    Filters on IN lists of the unique index's leading columns (indicator, subject, period), which both SQLite and
    PostgreSQL answer with an index search, then keeps the exact keys in Python. A tuple IN looked simpler but
    made SQLite scan the index and PostgreSQL plan a many-way OR: ingest slowed as the table grew.
    """
    wanted = {tuple(row[column] for column in KEY_COLUMNS) for row in rows}
    found: dict[tuple[Any, ...], Any] = {}
    columns = (
        Observation.id,
        *(getattr(Observation, column) for column in KEY_COLUMNS),
        Observation.value,
        Observation.null_reason,
        Observation.source_ref,
        Observation.batch_id,
        Observation.received_at,
    )
    for chunk in _chunks(rows, _EXISTING_CHUNK):
        query = select(*columns).where(
            Observation.indicator_id.in_({row["indicator_id"] for row in chunk}),
            Observation.subject_id.in_({row["subject_id"] for row in chunk}),
            Observation.period_key.in_({row["period_key"] for row in chunk}),
        )
        for current in session.execute(query):
            key = tuple(getattr(current, column) for column in KEY_COLUMNS)
            if key in wanted:
                found[key] = current
    return found


def _write_rows(
    session: Session, dialect: str, rows: list[dict[str, Any]], batch_id: int, now: datetime
) -> tuple[int, int, int]:
    existing = _current_rows(session, rows)
    current: Any
    keys = [tuple(row[column] for column in KEY_COLUMNS) for row in rows]
    history: list[dict[str, Any]] = []
    to_write: list[dict[str, Any]] = []
    unchanged = 0
    for key, row in zip(keys, rows, strict=True):
        current = existing.get(key)
        if current is not None:
            if (
                current.value == row["value"]
                and current.null_reason == row["null_reason"]
                and current.source_ref == row["source_ref"]
            ):
                unchanged += 1
                continue
            history.append(
                {
                    "observation_id": current.id,
                    "indicator_id": current.indicator_id,
                    "subject_id": current.subject_id,
                    "period_key": current.period_key,
                    "dims_key": current.dims_key,
                    "feed_id": current.feed_id,
                    "value": current.value,
                    "null_reason": current.null_reason,
                    "source_ref": current.source_ref,
                    "batch_id": current.batch_id,
                    "received_at": current.received_at,
                    "replaced_at": now,
                    "replaced_by_batch_id": batch_id,
                }
            )
        row["batch_id"] = batch_id
        row["received_at"] = now
        to_write.append(row)
    if history:
        session.execute(insert(_HISTORY_TABLE), history)
    if to_write:
        # Core table, not the ORM entity: no per-row ORM bookkeeping on the hot path.
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(_OBSERVATIONS_TABLE)
        statement = statement.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={
                column: getattr(statement.excluded, column)
                for column in (
                    "value",
                    "null_reason",
                    "source_ref",
                    "batch_id",
                    "received_at",
                    "dimensions",
                    "period_start",
                    "period_end",
                )
            },
        )
        session.execute(statement, to_write)
        rollup.keep_days(session, dialect, to_write)
    return len(to_write) - len(history), len(history), unchanged


# --- reading ----------------------------------------------------------------------------------------


def observation_out(row: Any) -> dict[str, Any]:
    """The API shape of a stored observation row (joined with subject and feed codes)."""
    return {
        "indicator": row.indicator_code,
        "subject": row.subject_code,
        "subject_name": row.subject_name,
        "period": row.period_key,
        "period_type": row.period_type,
        "period_start": row.period_start.isoformat(),
        "value": row.value,
        "null_reason": row.null_reason or None,
        "dimensions": row.dimensions or {},
        "feed": row.feed_code,
        "source_ref": row.source_ref or None,
        "received_at": row.received_at.isoformat(),
    }


def _observation_columns() -> tuple[Any, ...]:
    return (
        Indicator.code.label("indicator_code"),
        Subject.code.label("subject_code"),
        Subject.name_vi.label("subject_name"),
        Observation.period_key,
        Observation.period_type,
        Observation.period_start,
        Observation.value,
        Observation.null_reason,
        Observation.dimensions,
        Feed.code.label("feed_code"),
        Observation.source_ref,
        Observation.received_at,
    )


def series(
    session: Session,
    indicator_id: int,
    subject_id: int,
    *,
    start: datetime | None,
    end: datetime | None,
    dims_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The values of one indicator for one subject over time, oldest first; and the total count."""
    query = (
        select(*_observation_columns())
        .join(Indicator, Indicator.id == Observation.indicator_id)
        .join(Subject, Subject.id == Observation.subject_id)
        .join(Feed, Feed.id == Observation.feed_id)
        .where(Observation.indicator_id == indicator_id, Observation.subject_id == subject_id)
    )
    if start is not None:
        query = query.where(Observation.period_start >= start)
    if end is not None:
        query = query.where(Observation.period_start < end)
    if dims_key is not None:
        query = query.where(Observation.dims_key == dims_key)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Observation.period_start, Observation.dims_key).limit(limit).offset(offset))
    return [observation_out(row) for row in rows], total


def _instant_floors(
    session: Session, indicator_ids: Sequence[int], subject_kind: str | None, subject_ids: Sequence[int] | None
) -> dict[int, datetime]:
    """Per instant indicator, the oldest of its subjects' newest days in the daily roll-up: every subject's newest
    reading starts on or after it, so the newest values need not rank every reading ever stored."""
    newest = (
        select(ObservationDay.indicator_id, func.max(ObservationDay.day_start).label("day"))
        .join(Indicator, Indicator.id == ObservationDay.indicator_id)
        .where(ObservationDay.indicator_id.in_(list(indicator_ids)), Indicator.period_type == "instant")
        .group_by(ObservationDay.indicator_id, ObservationDay.subject_id)
    )
    if subject_ids is not None:
        newest = newest.where(ObservationDay.subject_id.in_(list(subject_ids)))
    if subject_kind:
        newest = newest.join(Subject, Subject.id == ObservationDay.subject_id).where(Subject.kind == subject_kind)
    days = newest.subquery()
    rows = session.execute(select(days.c.indicator_id, func.min(days.c.day)).group_by(days.c.indicator_id))
    return {indicator_id: floor for indicator_id, floor in rows if floor is not None}


def latest(
    session: Session,
    indicator_ids: Sequence[int],
    *,
    subject_kind: str | None = None,
    subject_ids: Sequence[int] | None = None,
    dims_key: str | None = "",
    limit: int = 1000,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The newest value per indicator, subject and dimensions; and the total count."""
    ranked = select(
        Observation.id,
        func.row_number()
        .over(
            partition_by=(Observation.indicator_id, Observation.subject_id, Observation.dims_key),
            order_by=(Observation.period_start.desc(), Observation.received_at.desc()),
        )
        .label("rank"),
    ).where(Observation.indicator_id.in_(bindparam("indicator_ids", expanding=True)))
    if dims_key is not None:
        ranked = ranked.where(Observation.dims_key == dims_key)
    if subject_ids is not None:
        ranked = ranked.where(Observation.subject_id.in_(list(subject_ids)))
    if dims_key == "":
        floors = _instant_floors(session, indicator_ids, subject_kind, subject_ids)
        if floors:
            ranked = ranked.where(
                or_(
                    Observation.indicator_id.not_in(list(floors)),
                    *(
                        and_(Observation.indicator_id == indicator_id, Observation.period_start >= floor)
                        for indicator_id, floor in floors.items()
                    ),
                )
            )
    ranked_sub = ranked.subquery()
    query = (
        select(*_observation_columns())
        .join(ranked_sub, ranked_sub.c.id == Observation.id)
        .join(Indicator, Indicator.id == Observation.indicator_id)
        .join(Subject, Subject.id == Observation.subject_id)
        .join(Feed, Feed.id == Observation.feed_id)
        .where(ranked_sub.c.rank == 1)
    )
    if subject_kind:
        query = query.where(Subject.kind == subject_kind)
    params = {"indicator_ids": list(indicator_ids)}
    total = session.scalar(select(func.count()).select_from(query.subquery()), params) or 0
    rows = session.execute(query.order_by(Indicator.code, Subject.code).limit(limit).offset(offset), params)
    return [observation_out(row) for row in rows], total
