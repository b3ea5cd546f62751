"""The rules of spreadsheet uploads: who may use a feed, its template, the preview, commit and discard.

An upload:
1. preview — the file is read (connector.py) and every item checked against the catalog as ingest would
   (observations.service.validate_items), storing nothing but the upload itself: its items, each error with its
   row and column, and how the file was understood;
2. commit — once: the items are checked again (the catalog may have changed), the good ones stored through the same
   ingest as the data-sharing API, every error kept in ingest_rejections with its row; a run of the feed is logged
   and the commit audited, all in one transaction;
3. or discard — the preview is closed and nothing is stored.

An officer or an agency's key uses only its own agency's feeds (a feed of another agency does not exist for it);
administrators and operators use any.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.catalog.exchange import shipped_units
from cityops.catalog.models import Indicator
from cityops.connectors.base import FeedContext
from cityops.connectors.spreadsheet import reader
from cityops.connectors.spreadsheet.connector import (
    MAX_ROWS,
    MAX_VALUES,
    IndicatorTerm,
    LayoutError,
    Parsed,
    RowError,
    SpreadsheetConnector,
    SubjectTerm,
    Vocabulary,
    read_period,
)
from cityops.connectors.spreadsheet.models import COMMITTED, DISCARDED, PREVIEW, SpreadsheetUpload
from cityops.connectors.spreadsheet.schema import SpreadsheetSettings
from cityops.connectors.spreadsheet.template import TemplateSpec, file_name, template_csv, template_xlsx
from cityops.db.engine import Database
from cityops.feeds import lateness
from cityops.feeds import service as feeds
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.feeds.models import Feed, feed_indicators
from cityops.geo.models import Subject
from cityops.geo.service import search_keys
from cityops.i18n import both
from cityops.observations.periods import PeriodError, parse_period, period_of
from cityops.observations.service import Rejection, ingest_items, validate_items

KIND = "spreadsheet"
MAX_ERRORS_SHOWN = 1000
SAMPLE_SIZE = 20
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Why a whole file is refused: the reader's and the layout's codes → (HTTP status, problem code).
_REFUSALS = {
    "not_spreadsheet": (415, "spreadsheet_not_spreadsheet"),
    "empty": (422, "spreadsheet_empty"),
    "unreadable": (422, "spreadsheet_unreadable"),
    "too_many_rows": (413, "spreadsheet_too_many_rows"),
    "too_many_values": (413, "spreadsheet_too_many_values"),
    "no_header": (422, "spreadsheet_no_header"),
    "no_columns": (422, "spreadsheet_no_columns"),
}


class UploadRefused(ValueError):
    """A request about uploads that cannot be done: an HTTP status, a problem code and its parameters."""

    def __init__(self, status: int, code: str, /, **params: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.params = params

    def messages(self) -> tuple[str, str]:
        """The problem's detail in Vietnamese and English."""
        return both(f"problem.{self.code}.detail", **self.params)


# --- the feed and what its sheets may say ---------------------------------------------------------------


def may_use(principal: Principal, feed: Feed) -> bool:
    """Whether a principal may upload to a feed: province-wide roles any, others only their agency's."""
    return principal.province_wide or feed.agency_id in principal.agency_ids


def upload_feed(session: Session, principal: Principal, code: str) -> Feed:
    """The spreadsheet feed with this code that the principal may use (404 for another agency's feed)."""
    feed = session.scalar(select(Feed).where(Feed.code == code))
    if feed is None or not may_use(principal, feed):
        raise UploadRefused(404, "spreadsheet_feed_not_found", feed=code[:64])
    if feed.kind != KIND:
        raise UploadRefused(409, "spreadsheet_wrong_kind", feed=feed.code, kind=feed.kind)
    return feed


def feed_indicator_terms(session: Session, feed_id: int) -> list[IndicatorTerm]:
    """The feed's indicators with their names, units, period types and ranges, in catalog order."""
    units = shipped_units()
    rows = session.scalars(
        select(Indicator)
        .join(feed_indicators, feed_indicators.c.indicator_id == Indicator.id)
        .where(feed_indicators.c.feed_id == feed_id)
        .order_by(Indicator.domain_id, Indicator.monitored_item, Indicator.id)
    )
    terms = []
    for indicator in rows:
        unit = units.get(indicator.unit, {})
        terms.append(
            IndicatorTerm(
                code=indicator.code,
                name_vi=indicator.name_vi,
                name_en=indicator.name_en,
                unit_vi=str(unit.get("symbol_vi") or indicator.unit),
                unit_en=str(unit.get("symbol_en") or indicator.unit),
                period_type=indicator.period_type,
                min_value=indicator.min_value,
                max_value=indicator.max_value,
            )
        )
    return terms


def _subject_term(subject: Subject) -> SubjectTerm:
    keys = set(search_keys(subject.name_vi))
    if subject.kind == "province":
        keys |= {"toantinh", "tinh"}  # "Toàn tỉnh": the province as a whole
    return SubjectTerm(subject.code, subject.name_vi, frozenset(keys))


def vocabulary(session: Session, feed: Feed, province_code: str, settings: SpreadsheetSettings) -> Vocabulary:
    """What a sheet of this feed may name: its indicators, and the province with its communes."""
    province = session.scalar(select(Subject).where(Subject.code == f"{int(province_code):02d}"))
    subjects: list[Subject] = []
    if province is not None:
        subjects = [province, *session.scalars(select(Subject).where(Subject.parent_id == province.id))]
    listed = set(feed.subject_codes or []) - {subject.code for subject in subjects}
    if listed:
        subjects += list(session.scalars(select(Subject).where(Subject.code.in_(sorted(listed)))))
    return Vocabulary(
        feed_indicator_terms(session, feed.id),
        [_subject_term(subject) for subject in subjects],
        search_keys,
        settings.aliases,
    )


def _settings(feed: Feed, secret_key: str) -> SpreadsheetSettings:
    """The feed's settings; the defaults when the stored ones no longer validate (the file is still read, and what
    it lacks is said in the preview, rather than failing the upload)."""
    try:
        settings = feeds.settings_of(feed, secret_key)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return SpreadsheetSettings()
    return settings if isinstance(settings, SpreadsheetSettings) else SpreadsheetSettings()


# --- the template ----------------------------------------------------------------------------------------


def parse_period_text(text: str) -> str:
    """A period as an officer may write it (11/2026, Tháng 11/2026, 2026-11 …) as its cityops key."""
    try:
        key, _as_date = read_period(text.strip()[:40])
        return parse_period(key).key
    except (ValueError, PeriodError):
        raise UploadRefused(422, "spreadsheet_invalid_period", value=text[:40]) from None


def default_period(session: Session, feed: Feed, terms: list[IndicatorTerm], now: datetime) -> str:
    """The period a template is most likely filled for: the oldest late one, else the one whose deadline comes
    next (on 2 December, November's data due on the 5th), else the period of now."""
    late = lateness.late_periods(session, feed.id)
    if late:
        return late[0]
    cadence = None
    if feed.cadence:
        try:
            cadence = parse_cadence(feed.cadence)
        except CadenceError:
            cadence = None
    if cadence is not None and cadence.kind != "interval":
        chosen = cadence.slot(now)
        for _ in range(3):
            earlier = period_of(cadence.period_type, chosen.start - timedelta(seconds=1))
            if cadence.due(earlier) < now:
                break
            chosen = earlier
        return chosen.key
    types = Counter(term.period_type for term in terms if term.period_type != "instant")
    return period_of(types.most_common(1)[0][0] if types else "month", now).key


def template(
    session: Session,
    principal: Principal,
    code: str,
    now: datetime,
    *,
    province_code: str,
    fmt: str,
    period: str | None = None,
) -> tuple[bytes, str, str]:
    """The feed's template as (content, file name, media type); fmt is xlsx or csv."""
    feed = upload_feed(session, principal, code)
    terms = feed_indicator_terms(session, feed.id)
    key = parse_period_text(period) if period else default_period(session, feed, terms, now)
    agency = session.get(Agency, feed.agency_id)
    spec = TemplateSpec(
        feed_code=feed.code,
        feed_name=feed.name or feed.code,
        agency_name=agency.name_vi if agency else "",
        indicators=terms,
        subjects=[_subject_term(subject) for subject in feeds.required_subjects(session, feed, province_code)],
        period=key,
        made_at=now,
    )
    if fmt == "csv":
        return template_csv(spec), file_name(spec, "csv"), CSV_MEDIA_TYPE
    return template_xlsx(spec), file_name(spec, "xlsx"), XLSX_MEDIA_TYPE


# --- preview ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    """A file as received."""

    content: bytes
    file_name: str


def read_file(
    feed: Feed, settings: SpreadsheetSettings, words: Vocabulary, content: bytes, *, max_rows: int = MAX_ROWS
) -> Parsed:
    """Read a file with the feed's connector; UploadRefused when the file as a whole cannot be read."""
    context = FeedContext(id=feed.id, code=feed.code, agency_id=feed.agency_id, kind=feed.kind, settings=settings)
    try:
        return SpreadsheetConnector(context).read(content, words, max_rows=max_rows, max_values=MAX_VALUES)
    except reader.ReadError as exc:
        status, code = _REFUSALS[exc.code]
        raise UploadRefused(status, code, **_refusal_params(exc.reason, exc.params)) from exc
    except LayoutError as exc:
        status, code = _REFUSALS[exc.code]
        raise UploadRefused(status, code, **exc.params) from exc


def _refusal_params(reason: str, params: dict[str, Any]) -> dict[str, Any]:
    shown = dict(params)
    if reason:
        shown.setdefault("detail", "")
        shown.setdefault("sheet", "")
        shown.setdefault("limit", "")
        vi, en = both(f"spreadsheet.reason.{reason}", **shown)
        return {**params, "reason_vi": vi, "reason_en": en}
    return params


def _check_errors(sourced: list[dict[str, Any]], outcomes: list[Rejection | None]) -> list[RowError]:
    """The catalog's refusals of items, placed at the cells they came from."""
    errors = []
    for source, outcome in zip(sourced, outcomes, strict=True):
        if outcome is None:
            continue
        value = source["item"].get("value")
        shown = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
        errors.append(
            RowError.placed(
                source["row"],
                source["column"],
                source["header"],
                outcome.code,
                outcome.message_vi,
                outcome.message_en,
                value=shown,
                indicator=str(source["item"].get("indicator", "")),
            )
        )
    return errors


def _error_rows(errors: list[RowError], stage: str) -> list[dict[str, Any]]:
    return [{**error.out(), "stage": stage} for error in errors]


def _sorted_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(errors, key=lambda error: (error["row"], len(error["column"]), error["column"]))


def preview(
    db: Database,
    principal: Principal,
    actor: Actor,
    code: str,
    uploaded: Uploaded,
    now: datetime,
    *,
    province_code: str,
    secret_key: str,
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    """Read an uploaded file and keep it as a preview: its items, and every error with its row and column."""
    with db.reading() as session:
        feed = upload_feed(session, principal, code)
        settings = _settings(feed, secret_key)
        words = vocabulary(session, feed, province_code, settings)
        session.expunge(feed)
    parsed = read_file(feed, settings, words, uploaded.content, max_rows=max_rows)
    sourced = [item.out() for item in parsed.items]
    with db.writing() as session:
        feed = upload_feed(session, principal, code)
        outcomes = validate_items(session, feeds.feed_principal(feed), [source["item"] for source in sourced], now)
        for source, outcome in zip(sourced, outcomes, strict=True):
            source["ok"] = outcome is None
        errors = _sorted_errors(
            _error_rows(parsed.errors, "read") + _error_rows(_check_errors(sourced, outcomes), "check")
        )
        upload = SpreadsheetUpload(
            feed_id=feed.id,
            uploaded_by=principal.label[:128],
            user_id=principal.user_id,
            api_key_id=principal.api_key_id,
            file_name=uploaded.file_name[:255],
            size=len(uploaded.content),
            sha256=hashlib.sha256(uploaded.content).hexdigest(),
            format=parsed.format,
            sheet=parsed.sheet[:100],
            layout=parsed.layout,
            rows_read=parsed.rows_read,
            item_count=len(sourced),
            error_count=len(errors),
            reading={
                "header_rows": parsed.header_rows,
                "columns": [column.out() for column in parsed.columns if column.role != "ignored"],
                "ignored_columns": [column.out() for column in parsed.columns if column.role == "ignored"],
                "notes": [note.out() for note in parsed.notes],
                "skipped_rows": parsed.skipped_rows,
                "encoding": parsed.encoding,
                "delimiter": parsed.delimiter,
            },
            items=sourced,
            errors=errors,
            state=PREVIEW,
            created_at=now,
            result={},
        )
        session.add(upload)
        session.flush()
        audit(
            session,
            actor,
            "spreadsheet.upload",
            "spreadsheet_upload",
            upload.id,
            now,
            {
                "feed": feed.code,
                "file_name": upload.file_name,
                "sha256": upload.sha256,
                "size": upload.size,
                "rows": upload.rows_read,
                "items": upload.item_count,
                "errors": upload.error_count,
            },
        )
        return upload_out(session, upload, feed.code)


# --- reading an upload -------------------------------------------------------------------------------------


def _upload(session: Session, feed: Feed, upload_id: int) -> SpreadsheetUpload:
    upload = session.get(SpreadsheetUpload, upload_id)
    if upload is None or upload.feed_id != feed.id:
        raise UploadRefused(404, "spreadsheet_upload_not_found", upload=upload_id, feed=feed.code)
    return upload


def get_upload(session: Session, principal: Principal, code: str, upload_id: int) -> dict[str, Any]:
    """One upload of a feed, with its errors and a sample of its items."""
    feed = upload_feed(session, principal, code)
    return upload_out(session, _upload(session, feed, upload_id), feed.code)


def list_uploads(session: Session, principal: Principal, code: str, limit: int = 20) -> list[dict[str, Any]]:
    """A feed's latest uploads, newest first (without their items and errors)."""
    feed = upload_feed(session, principal, code)
    uploads = session.scalars(
        select(SpreadsheetUpload)
        .where(SpreadsheetUpload.feed_id == feed.id)
        .order_by(SpreadsheetUpload.created_at.desc(), SpreadsheetUpload.id.desc())
        .limit(limit)
    )
    return [upload_summary(upload, feed.code) for upload in uploads]


def upload_summary(upload: SpreadsheetUpload, feed_code: str) -> dict[str, Any]:
    """An upload without its items and errors."""
    items = upload.items or []
    good_items = sum(1 for source in items if source.get("ok", True))
    error_rows = {error["row"] for error in upload.errors or []}
    return {
        "id": upload.id,
        "feed": feed_code,
        "state": upload.state,
        "file_name": upload.file_name,
        "size": upload.size,
        "sha256": upload.sha256,
        "format": upload.format,
        "sheet": upload.sheet,
        "layout": upload.layout,
        "uploaded_by": upload.uploaded_by,
        "created_at": upload.created_at.isoformat(),
        "committed_at": upload.committed_at.isoformat() if upload.committed_at else None,
        "discarded_at": upload.discarded_at.isoformat() if upload.discarded_at else None,
        "rows_read": upload.rows_read,
        "good_rows": max(upload.rows_read - len(error_rows), 0),
        "rows_with_errors": len(error_rows),
        "items_found": upload.item_count,
        "good_items": good_items,
        "error_count": upload.error_count,
        "batch_id": upload.batch_id,
        "run_id": upload.run_id,
        "result": upload.result or None,
    }


def upload_out(session: Session, upload: SpreadsheetUpload, feed_code: str) -> dict[str, Any]:
    """The API shape of an upload: its summary, how the file was read, its errors and a sample of good items."""
    reading = upload.reading or {}
    errors = upload.errors or []
    same = session.execute(
        select(SpreadsheetUpload.id, SpreadsheetUpload.committed_at)
        .where(
            SpreadsheetUpload.feed_id == upload.feed_id,
            SpreadsheetUpload.sha256 == upload.sha256,
            SpreadsheetUpload.state == COMMITTED,
            SpreadsheetUpload.id != upload.id,
        )
        .order_by(SpreadsheetUpload.id.desc())
        .limit(1)
    ).first()
    return {
        **upload_summary(upload, feed_code),
        "header_rows": reading.get("header_rows", []),
        "columns": reading.get("columns", []),
        "ignored_columns": reading.get("ignored_columns", []),
        "notes": reading.get("notes", []),
        "skipped_rows": reading.get("skipped_rows", 0),
        "encoding": reading.get("encoding", ""),
        "delimiter": reading.get("delimiter", ""),
        "errors": [{key: value for key, value in error.items() if key != "stage"} for error in errors][
            :MAX_ERRORS_SHOWN
        ],
        "errors_truncated": len(errors) > MAX_ERRORS_SHOWN,
        "sample": [
            {"row": source["row"], "column": source["column"], **source["item"]}
            for source in (upload.items or [])
            if source.get("ok", True)
        ][:SAMPLE_SIZE],
        "already_committed": (
            {"id": same.id, "committed_at": same.committed_at.isoformat() if same.committed_at else None}
            if same
            else None
        ),
    }


# --- commit and discard ------------------------------------------------------------------------------------


def _close(session: Session, feed: Feed, upload_id: int, state: str, now: datetime) -> SpreadsheetUpload:
    """Move an upload out of preview, once: a conditional UPDATE, so that two commits never both run."""
    stamp = {"committed_at": now} if state == COMMITTED else {"discarded_at": now}
    claimed = session.execute(
        update(SpreadsheetUpload)
        .where(
            SpreadsheetUpload.id == upload_id,
            SpreadsheetUpload.feed_id == feed.id,
            SpreadsheetUpload.state == PREVIEW,
        )
        .values(state=state, **stamp)
        .returning(SpreadsheetUpload.id)
        .execution_options(synchronize_session=False)
    ).first()
    upload = _upload(session, feed, upload_id)
    if claimed is None:
        state_vi, state_en = both(f"spreadsheet.state.{upload.state}")
        raise UploadRefused(409, "spreadsheet_upload_closed", upload=upload_id, state_vi=state_vi, state_en=state_en)
    session.refresh(upload)
    return upload


def _field(error: dict[str, Any]) -> str | None:
    if not error.get("column"):
        return None
    return f"{error['column']}: {error.get('header', '')}"[:64]


def commit(
    db: Database, principal: Principal, actor: Actor, code: str, upload_id: int, now: datetime
) -> dict[str, Any]:
    """Store an upload's good items (checked again now), keep its errors as rejections, log a run; once."""
    with db.writing() as session:
        feed = upload_feed(session, principal, code)
        upload = _close(session, feed, upload_id, COMMITTED, now)
        ingest_as = feeds.feed_principal(feed)
        sourced = [dict(source) for source in upload.items or []]
        outcomes = validate_items(session, ingest_as, [source["item"] for source in sourced], now)
        for source, outcome in zip(sourced, outcomes, strict=True):
            source["ok"] = outcome is None
        read_errors = [error for error in upload.errors or [] if error.get("stage") == "read"]
        errors = _sorted_errors(read_errors + _error_rows(_check_errors(sourced, outcomes), "check"))
        good = [source["item"] for source in sourced if source["ok"]]
        by_cell = {(source["row"], source["column"]): source["item"] for source in sourced}
        pre_rejected = []
        for error in errors:
            cell_item = by_cell.get((error["row"], error["column"]), {})
            record = {
                **cell_item,
                "row": error["row"],
                "column": error["column"],
                "indicator": error.get("indicator") or cell_item.get("indicator"),
                "cell": error.get("value", ""),
            }
            pre_rejected.append(
                Rejection(
                    error["row"], error["code"], error["message_vi"], error["message_en"], _field(error), record=record
                )
            )
        run = feeds.start_run(session, feed.id, "upload", now)
        result = ingest_items(
            db,
            ingest_as,
            good,
            now,
            source=KIND,
            feed_id=feed.id,
            pre_rejected=pre_rejected,
            session=session,
        )
        feeds.finish_run_stored(
            session,
            run.id,
            now,
            result,
            details={"upload_id": upload.id, "file_name": upload.file_name, "rows": upload.rows_read},
        )
        answer = result.as_dict()
        answer.pop("rejected", None)
        upload.items = sourced
        upload.errors = errors
        upload.error_count = len(errors)
        upload.batch_id = result.batch_id
        upload.run_id = run.id
        upload.result = {**answer, "run_id": run.id}
        audit(
            session,
            actor,
            "spreadsheet.commit",
            "spreadsheet_upload",
            upload.id,
            now,
            {
                "feed": feed.code,
                "file_name": upload.file_name,
                "sha256": upload.sha256,
                "batch_id": result.batch_id,
                "run_id": run.id,
                "accepted": result.accepted,
                "rejected": len(result.rejected),
            },
        )
        session.flush()
        return upload_out(session, upload, feed.code)


def discard(
    db: Database, principal: Principal, actor: Actor, code: str, upload_id: int, now: datetime
) -> dict[str, Any]:
    """Close a preview without storing anything."""
    with db.writing() as session:
        feed = upload_feed(session, principal, code)
        upload = _close(session, feed, upload_id, DISCARDED, now)
        audit(
            session,
            actor,
            "spreadsheet.discard",
            "spreadsheet_upload",
            upload.id,
            now,
            {"feed": feed.code, "file_name": upload.file_name, "sha256": upload.sha256},
        )
        return upload_out(session, upload, feed.code)
