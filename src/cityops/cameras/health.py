"""Camera health: each worker tick claims the due cameras, probes them concurrently, and records what it found.

- **Claim**: a conditional UPDATE on `next_probe_at` / `probe_owner` / `probe_until` per camera; only the worker whose
  UPDATE matched probes it, so two workers never probe one camera at once. A claim left by a dead worker expires.
- **Probe** (in a bounded thread pool, each with the probe timeout, so 19 cameras take about one timeout, not 19):
  RTSP and HLS with `ffprobe` (frame rate, size); MJPEG by reading the stream's first frames (size with Pillow,
  frame rate from their arrival); the snapshot URL by an HTTP GET (size with Pillow).
- **Status**: every probe failed → offline; one of two failed, only a snapshot (no stream), slow (over half the
  timeout) or a low frame rate (under 5 frames/s) → degraded; else online. One `camera_checks` row per probe.
- **Alert**: offline for longer than the camera's `offline_alert_minutes` → the alert `camera_offline:<id>` fires to
  the owner agency (alerts.service.fire, as feed lateness does: the condition is the camera's own state, not a count
  of events, so no rule is needed); back online or degraded → resolved.
- **Indicators**: `antt.camera` (enabled cameras) and `antt.camera_truc_tuyen` (online or degraded) per commune and
  for the province, through the ordinary ingest under the IOC's own feed `cityops_camera`, when they change.
- Status changes are published on the live topic `cameras` (the wall and the map refresh).
"""

from __future__ import annotations

import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from PIL import Image
from sqlalchemy import and_, func, or_, select, update

from cityops import live
from cityops.alerts import service as alerts
from cityops.cameras import net
from cityops.cameras.models import DEGRADED, OFFLINE, ONLINE, Camera, CameraCheck
from cityops.cameras.service import credentials_of
from cityops.catalog.models import Indicator
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import feed_principal, own_feed
from cityops.geo.models import Subject
from cityops.observations.models import Observation
from cityops.observations.service import ingest_items
from cityops.settings import Settings

log = logging.getLogger(__name__)
CLAIM = timedelta(minutes=2)
LOW_FRAME_RATE = 5.0
MAX_PER_TICK = 200
FEED_CODE = "cityops_camera"
FEED_AGENCY = "cong_an_tinh"
TOTAL, UP = "antt.camera", "antt.camera_truc_tuyen"
ALERT_KIND = "camera_offline"


@dataclass
class ProbeResult:
    camera_id: int
    status: str
    frame_rate: float | None = None
    width: int | None = None
    height: int | None = None
    latency_ms: int | None = None
    error: str = ""


def alert_key(camera_id: int) -> str:
    return f"{ALERT_KIND}:{camera_id}"


def claim_due(db: Database, now: datetime, owner: str, limit: int = MAX_PER_TICK) -> list[int]:
    """Claim the enabled cameras whose probe is due and unclaimed (or whose claim expired)."""
    due = and_(
        Camera.enabled.is_(True),
        or_(Camera.next_probe_at.is_(None), Camera.next_probe_at <= now),
        or_(Camera.probe_until.is_(None), Camera.probe_until < now),
    )
    with db.reading() as session:
        candidates = list(session.scalars(select(Camera.id).where(due).order_by(Camera.next_probe_at).limit(limit)))
    claimed = []
    for camera_id in candidates:
        with db.writing() as session:
            won = session.execute(
                update(Camera)
                .where(Camera.id == camera_id, due)
                .values(probe_owner=owner[:64], probe_until=now + CLAIM)
                .returning(Camera.id)
            ).scalar()
        if won is not None:
            claimed.append(camera_id)
    return claimed


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception as exc:  # Pillow raises many kinds for a broken picture
        raise net.CameraUnreachable("the camera sent something that is not a picture") from exc


def probe(target: net.Target, camera_id: int, timeout: float) -> ProbeResult:
    """Probe one camera (blocking): its stream and its snapshot, whichever it has."""
    started = time.monotonic()
    outcomes: list[bool] = []
    errors: list[str] = []
    result = ProbeResult(camera_id, OFFLINE)
    if target.stream_kind in ("rtsp", "hls"):
        try:
            found = net.ffprobe(target, timeout)
            result.frame_rate, result.width, result.height = found["frame_rate"], found["width"], found["height"]
            outcomes.append(True)
        except net.CameraUnreachable as exc:
            outcomes.append(False)
            errors.append(str(exc))
    elif target.stream_kind == "mjpeg":
        try:
            frames, seconds = net.mjpeg_frames(target, timeout, count=6, seconds=1.0)
            result.width, result.height = _image_size(frames[0])
            if len(frames) > 1 and seconds > 0:
                result.frame_rate = round((len(frames) - 1) / seconds, 2)
            outcomes.append(True)
        except net.CameraUnreachable as exc:
            outcomes.append(False)
            errors.append(str(exc))
    if target.snapshot_url:
        try:
            width, height = _image_size(net.get_image(target, target.snapshot_url, timeout))
            if result.width is None:
                result.width, result.height = width, height
            outcomes.append(True)
        except net.CameraUnreachable as exc:
            outcomes.append(False)
            errors.append(str(exc))
    elapsed = time.monotonic() - started
    result.latency_ms = int(elapsed * 1000)
    result.error = "; ".join(errors)[:1000]
    if not any(outcomes):
        result.status = OFFLINE
    elif not all(outcomes) or target.stream_kind == "none":
        result.status = DEGRADED
        if target.stream_kind == "none" and not result.error:
            result.error = "snapshot only"
    elif elapsed > timeout / 2 or (result.frame_rate is not None and result.frame_rate < LOW_FRAME_RATE):
        result.status = DEGRADED
    else:
        result.status = ONLINE
    return result


def _targets(db: Database, ids: list[int], settings: Settings) -> list[tuple[int, net.Target]]:
    with db.reading() as session:
        cameras = session.scalars(select(Camera).where(Camera.id.in_(ids or [0]))).all()
        return [(camera.id, target_of(camera, settings)) for camera in cameras]


def target_of(camera: Camera, settings: Settings) -> net.Target:
    return net.Target(
        code=camera.code,
        stream_kind=camera.stream_kind,
        stream_url=camera.stream_url,
        snapshot_url=camera.snapshot_url,
        credentials=credentials_of(camera, settings.resolved_secret_key),
        allow_private=settings.camera_allow_private_addresses,
    )


def record(db: Database, result: ProbeResult, now: datetime) -> bool:
    """Store one probe's result: the check, the camera's state, its alert; True when the status changed."""
    with db.writing() as session:
        camera = session.get(Camera, result.camera_id)
        if camera is None:
            return False
        session.add(
            CameraCheck(
                camera_id=camera.id,
                checked_at=now,
                status=result.status,
                frame_rate=result.frame_rate,
                width=result.width,
                height=result.height,
                latency_ms=result.latency_ms,
                error=result.error,
            )
        )
        changed = camera.status != result.status
        if changed:
            camera.status, camera.status_since = result.status, now
        camera.frame_rate, camera.width, camera.height = result.frame_rate, result.width, result.height
        camera.last_error = result.error
        camera.last_probe_at = now
        if result.status != OFFLINE:
            camera.last_snapshot_at = now
        camera.next_probe_at = now + timedelta(seconds=camera.probe_seconds)
        camera.probe_owner, camera.probe_until = "", None
        _alert(session, camera, now)
        if changed:
            live.publish(session, "cameras", {"camera": camera.code, "status": camera.status})
        return changed


def _alert(session: Any, camera: Camera, now: datetime) -> None:
    key = alert_key(camera.id)
    since = camera.status_since or now
    if camera.status == OFFLINE and camera.enabled and now - since >= timedelta(minutes=camera.offline_alert_minutes):
        minutes = int((now - since).total_seconds() // 60)
        alerts.fire(
            session,
            key,
            now,
            kind=ALERT_KIND,
            title_vi=f"Camera mất kết nối: {camera.name_vi} ({camera.code}), {minutes} phút",
            title_en=f"Camera offline: {camera.name_en or camera.name_vi} ({camera.code}), {minutes} min",
            severity="warning",
            agency_id=camera.owner_agency_id,
            subject_id=camera.subject_id,
            details={"camera": camera.code, "since": since.isoformat(), "error": camera.last_error[:200]},
        )
    elif camera.status != OFFLINE:
        alerts.resolve(session, key, now, {"camera": camera.code, "status": camera.status})


def run_probes(db: Database, clock: Clock, settings: Settings, owner: str) -> dict[str, int]:
    """One round: claim the due cameras, probe them concurrently (bounded), record each, publish the counts."""
    now = clock()
    claimed = claim_due(db, now, owner)
    counts = {"probed": 0, "changed": 0, "values": 0}
    if claimed:
        timeout = settings.camera_probe_timeout_seconds
        targets = _targets(db, claimed, settings)
        workers = max(1, min(settings.camera_probe_concurrency, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="camera-probe") as pool:
            futures = [pool.submit(probe, target, camera_id, timeout) for camera_id, target in targets]
            results = [future.result() for future in futures]
        done = clock()
        for result in results:
            counts["probed"] += 1
            if record(db, result, done):
                counts["changed"] += 1
    counts["values"] = publish_indicators(db, clock)
    return counts


# --- the catalog's camera indicators -----------------------------------------------------------------------------


def _feed(session: Any, now: datetime) -> Feed | None:
    return own_feed(
        session,
        now,
        code=FEED_CODE,
        agency_code=FEED_AGENCY,
        indicator_codes=[TOTAL, UP],
        name="Camera kết nối và trực tuyến (cityops) / Cameras connected and online (cityops)",
        description=(
            "Đếm từ sổ camera và kết quả kiểm tra của cityops. / Counted from cityops' camera registry and probes."
        ),
        wanted=lambda: session.scalar(select(Camera.id).limit(1)) is not None,
        coverage="communes",
    )


def current_counts(session: Any) -> dict[tuple[str, int], int]:
    """(indicator, subject id) → count now: per commune with cameras, and the province."""
    province = session.scalar(select(Subject.id).where(Subject.kind == "province"))
    counts: dict[tuple[str, int], int] = {}
    rows = session.execute(
        select(Camera.commune_id, Camera.status, func.count())
        .where(Camera.enabled.is_(True), Camera.commune_id.is_not(None))
        .group_by(Camera.commune_id, Camera.status)
    ).all()
    for commune_id, status, count in rows:
        for subject in (commune_id, province):
            if subject is None:
                continue
            counts[(TOTAL, subject)] = counts.get((TOTAL, subject), 0) + count
            counts.setdefault((UP, subject), 0)
            if status in (ONLINE, DEGRADED):
                counts[(UP, subject)] += count
    if province is not None:
        counts.setdefault((TOTAL, province), 0)
        counts.setdefault((UP, province), 0)
    return counts


def _stored(session: Any, feed_id: int) -> dict[tuple[str, int], float | None]:
    ids = dict(session.execute(select(Indicator.id, Indicator.code).where(Indicator.code.in_([TOTAL, UP]))).all())
    newest = (
        select(Observation.indicator_id, Observation.subject_id, func.max(Observation.period_start).label("start"))
        .where(Observation.feed_id == feed_id, Observation.dims_key == "")
        .group_by(Observation.indicator_id, Observation.subject_id)
        .subquery()
    )
    rows = session.execute(
        select(Observation.indicator_id, Observation.subject_id, Observation.value)
        .join(
            newest,
            and_(
                Observation.indicator_id == newest.c.indicator_id,
                Observation.subject_id == newest.c.subject_id,
                Observation.period_start == newest.c.start,
            ),
        )
        .where(Observation.feed_id == feed_id, Observation.dims_key == "")
    )
    return {(ids[indicator_id], subject_id): value for indicator_id, subject_id, value in rows if indicator_id in ids}


def publish_indicators(db: Database, clock: Clock) -> int:
    """Store the camera counts that changed since the feed's last values (communes that lost every camera: 0)."""
    now = clock()
    with db.writing() as session:
        feed = _feed(session, now)
        if feed is None:
            return 0
        counts = current_counts(session)
        stored = _stored(session, feed.id)
        for key in stored:
            counts.setdefault(key, 0)
        changed = {key: value for key, value in counts.items() if stored.get(key) != value}
        if not changed:
            return 0
        wanted = {key[1] for key in changed}
        codes = dict(session.execute(select(Subject.id, Subject.code).where(Subject.id.in_(wanted))).all())
        instant = now.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
        items = [
            {
                "indicator": indicator,
                "subject": codes[subject_id],
                "period": instant,
                "value": value,
                "source_ref": "cityops:cameras",
                "feed": FEED_CODE,
            }
            for (indicator, subject_id), value in sorted(changed.items())
            if subject_id in codes
        ]
        result = ingest_items(db, feed_principal(feed), items, now, source="cameras", feed_id=feed.id, session=session)
        return result.accepted


_analyzer_cache: dict[float, Any] = {}


def tick(db: Database, clock: Clock, settings: Settings | None, secret_key: str, owner: str) -> dict[str, int]:
    """The worker's camera round: probes, the catalog's counts, then the optional analyzer."""
    from cityops.cameras import analyzer, media

    if settings is None:
        settings = Settings(secret_key=secret_key)
    counts = run_probes(db, clock, settings, owner)
    cache = _analyzer_cache.setdefault(settings.camera_snapshot_cache_seconds, media.SnapshotCache(1.0))
    counts["crowd_events"] = analyzer.analyze(db, clock, settings, cache)
    return counts
