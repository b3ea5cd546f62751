"""The built-in, optional analyzer (extra `vision`: opencv-python-headless below 5): counts people on a snapshot with
OpenCV's built-in HOG people detector (no download) and measures motion between two consecutive snapshots.

The worker runs it for cameras tagged `analyze`: a count above the camera's threshold (tag `crowd>=N`, default 10)
records a `crowd` camera event (alerts.service.record_event), at most once per camera every few minutes. Without
OpenCV the analyzer says so once and does nothing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from cityops.alerts.service import record_event
from cityops.cameras import health, media
from cityops.cameras.models import DEGRADED, ONLINE, Camera
from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.settings import Settings

log = logging.getLogger(__name__)
TAG = "analyze"
DEFAULT_CROWD = 10
EVENT_EVERY = timedelta(minutes=5)
_previous: dict[str, Any] = {}
_last_event: dict[str, datetime] = {}
_lock = threading.Lock()


def available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _decode(jpeg: bytes) -> Any:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a picture")
    return image


def count_people(jpeg: bytes) -> int:
    """How many people the HOG detector finds on the picture (scaled to at most 800 pixels wide)."""
    import cv2

    image = _decode(jpeg)
    height, width = image.shape[:2]
    if width > 800:
        image = cv2.resize(image, (800, int(height * 800 / width)))
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
    boxes, _ = hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
    return len(boxes)


def motion(previous: bytes | Any, current: bytes | Any, threshold: int = 25) -> float:
    """The share (0–1) of pixels that changed between two pictures (grey, blurred, absolute difference)."""
    import cv2

    def grey(picture: bytes | Any) -> Any:
        image = _decode(picture) if isinstance(picture, bytes) else picture
        return cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (5, 5), 0)

    first, second = grey(previous), grey(current)
    if first.shape != second.shape:
        second = cv2.resize(second, (first.shape[1], first.shape[0]))
    difference = cv2.absdiff(first, second)
    _, changed = cv2.threshold(difference, threshold, 255, cv2.THRESH_BINARY)
    return float(cv2.countNonZero(changed)) / float(changed.size)


def crowd_threshold(tags: list[str]) -> int:
    for tag in tags:
        for prefix in ("crowd>=", "crowd:", "crowd="):
            if tag.startswith(prefix) and tag[len(prefix) :].isdigit():
                return int(tag[len(prefix) :])
    return DEFAULT_CROWD


def analyze(db: Database, clock: Clock, settings: Settings, cache: media.SnapshotCache) -> int:
    """One round over the cameras that opt in (tag `analyze`) and answer: how many crowd events it recorded."""
    with db.reading() as session:
        cameras = [
            camera
            for camera in session.scalars(
                select(Camera).where(Camera.enabled.is_(True), Camera.status.in_((ONLINE, DEGRADED)))
            )
            if TAG in (camera.tags or [])
        ]
        targets = [(camera, health.target_of(camera, settings)) for camera in cameras]
    if not targets or not available():
        return 0
    recorded = 0
    for camera, target in targets:
        try:
            picture = cache.get(target, settings.camera_probe_timeout_seconds)
            people = count_people(picture)
            with _lock:
                previous = _previous.get(camera.code)
                _previous[camera.code] = picture
            moved = motion(previous, picture) if previous is not None else None
        except Exception as exc:  # a camera that fails here is the probe's business, not the analyzer's
            log.info("analyzer: %s skipped (%s)", camera.code, type(exc).__name__)
            continue
        now = clock()
        if people < crowd_threshold(list(camera.tags or [])):
            continue
        with _lock:
            last = _last_event.get(camera.code)
            if last is not None and now - last < EVENT_EVERY:
                continue
            _last_event[camera.code] = now
        with db.writing() as session:
            record_event(
                session,
                now,
                category="camera",
                type="crowd",
                severity="warning",
                source="cityops:analyzer",
                title=f"Tụ tập đông người — {camera.name_vi} / Crowd — {camera.name_en or camera.name_vi}",
                subject_id=camera.subject_id,
                agency_id=camera.owner_agency_id,
                details={"camera": camera.code, "people": people, "motion": moved, "confidence": 0.5},
            )
        recorded += 1
    return recorded
