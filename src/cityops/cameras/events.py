"""Video-analytics events (`POST /api/v1/cameras/events`): each good event becomes an `events` row of category
"camera" (type accident, congestion, violation, crowd or fire_smoke) with the camera's subject and owner agency, so
that the `events` rules (alerts/data/rules.toml: accidents and fire or smoke open incidents by themselves) see it.
A snapshot, if sent (base64), must be a picture by its content; it is re-encoded as JPEG without metadata and kept
under `<data dir>/camera-events`. Bad events are answered one by one (vi and en); good ones are kept.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.roles import Principal
from cityops.alerts.service import record_event
from cityops.cameras.models import Camera
from cityops.cameras.service import may_see
from cityops.i18n import both

TYPES = ("accident", "congestion", "violation", "crowd", "fire_smoke")
SEVERITY = {"accident": "critical", "fire_smoke": "critical", "crowd": "warning", "congestion": "warning"}
FIELDS = frozenset({"type", "camera", "time", "occurred_at", "confidence", "snapshot", "details"})
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 40_000_000
FUTURE_TOLERANCE = timedelta(minutes=5)
PAST_LIMIT = timedelta(days=7)


class EventRefused(ValueError):
    def __init__(self, code: str, field_name: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.field, self.params = code, field_name, params

    def out(self, index: int) -> dict[str, Any]:
        message_vi, message_en = both(f"cameras.event_error.{self.code}", **self.params)
        return {
            "index": index,
            "code": self.code,
            "field": self.field,
            "message_vi": message_vi,
            "message_en": message_en,
        }


def clean_snapshot(text: Any) -> bytes:
    """The snapshot re-encoded as JPEG without metadata; EventRefused when it is not a picture."""
    if not isinstance(text, str):
        raise EventRefused("bad_snapshot", "snapshot")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > MAX_SNAPSHOT_BYTES * 4 // 3 + 8:
        raise EventRefused("snapshot_too_large", "snapshot", limit=MAX_SNAPSHOT_BYTES // 1024 // 1024)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventRefused("bad_snapshot", "snapshot") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ("JPEG", "PNG", "WEBP") or image.width * image.height > MAX_PIXELS:
                    raise EventRefused("bad_snapshot", "snapshot")
                image.load()
                picture = image.convert("RGB")
    except EventRefused:
        raise
    except Exception:  # Pillow raises many kinds for a broken picture
        raise EventRefused("bad_snapshot", "snapshot") from None
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def _moment(raw: Any, now: datetime) -> datetime:
    if raw in (None, ""):
        return now
    if not isinstance(raw, str):
        raise EventRefused("bad_time", "time", text=str(raw)[:40])
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise EventRefused("bad_time", "time", text=raw[:40]) from None
    if moment.tzinfo is None:
        raise EventRefused("time_without_offset", "time", text=raw[:40])
    if moment > now + FUTURE_TOLERANCE or moment < now - PAST_LIMIT:
        raise EventRefused("time_out_of_range", "time", text=raw[:40])
    return moment


def _check(session: Session, principal: Principal, now: datetime, item: Any) -> tuple[Camera, dict[str, Any]]:
    if not isinstance(item, dict):
        raise EventRefused("not_object", "")
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise EventRefused("unknown_field", str(unknown[0])[:40], field=str(unknown[0])[:40])
    event_type = item.get("type")
    if event_type not in TYPES:
        raise EventRefused("bad_type", "type", type=str(event_type)[:40], allowed=", ".join(TYPES))
    code = item.get("camera")
    if not isinstance(code, str) or not code.strip():
        raise EventRefused("missing", "camera", field="camera")
    camera = session.scalar(select(Camera).where(Camera.code == code.strip().lower()[:64]))
    if camera is None or not may_see(principal, camera):
        raise EventRefused("unknown_camera", "camera", camera=code[:64])
    confidence = item.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise EventRefused("bad_confidence", "confidence")
    occurred_at = _moment(item.get("time", item.get("occurred_at")), now)
    details = item.get("details") or {}
    if not isinstance(details, dict) or len(repr(details)) > 5000 or "\x00" in repr(details):
        raise EventRefused("bad_details", "details")
    values = {
        "type": event_type,
        "occurred_at": occurred_at,
        "confidence": float(confidence),
        "details": details,
        "snapshot": clean_snapshot(item["snapshot"]) if item.get("snapshot") not in (None, "") else None,
    }
    return camera, values


def _store(data_dir: Path, now: datetime, picture: bytes) -> str:
    folder = data_dir / "camera-events" / now.strftime("%Y-%m")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(8)}.jpg"
    (folder / name).write_bytes(picture)
    return f"{now.strftime('%Y-%m')}/{name}"


def record_camera_events(
    session: Session, principal: Principal, now: datetime, data_dir: Path, items: list[Any]
) -> dict[str, Any]:
    """Keep every good event; say why each bad one was not kept."""
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            camera, values = _check(session, principal, now, item)
        except EventRefused as exc:
            rejected.append(exc.out(index))
            continue
        details = {"camera": camera.code, "confidence": values["confidence"], **values["details"]}
        if values["snapshot"] is not None:
            details["snapshot"] = _store(data_dir, now, values["snapshot"])
        title_vi, title_en = both(f"cameras.event_type.{values['type']}")
        event = record_event(
            session,
            now,
            category="camera",
            type=values["type"],
            severity=SEVERITY.get(values["type"], "info"),
            source=principal.label[:64],
            title=f"{title_vi} — {camera.name_vi} / {title_en} — {camera.name_en or camera.name_vi}",
            subject_id=camera.subject_id,
            agency_id=camera.owner_agency_id,
            details=details,
            occurred_at=values["occurred_at"],
        )
        kept.append({"index": index, "id": event.id, "camera": camera.code})
    return {"received": len(items), "accepted": len(kept), "items": kept, "rejected": rejected}
