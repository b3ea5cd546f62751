"""Video-analytics events: a batch with good and bad items through the API with a real key; accidents open an
incident through the default rule; snapshots checked by content and re-encoded. The built-in analyzer (OpenCV)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import select

from cityops.accounts.service import SYSTEM
from cityops.alerts import evaluation
from cityops.alerts.models import FIRING, Alert, Event
from cityops.alerts.rules import load_rules
from cityops.cameras import analyzer, service
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.incidents.models import Incident
from conftest import Backend, make_key


def picture(shift: int = 0, kind: str = "PNG") -> bytes:
    image = Image.new("RGB", (320, 240), (40, 60, 80))
    ImageDraw.Draw(image).rectangle((40 + shift, 60, 120 + shift, 180), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def test_events_batch_keeps_good_items_and_opens_an_incident(
    client: TestClient, database: Database, backend: Backend, clock: FrozenClock
) -> None:
    with database.writing() as session:
        values = service.Checker(session, backend.settings.province_code).check(
            {"code": "cau_ben_thuy", "name_vi": "Cầu Bến Thủy", "latitude": 18.6555, "longitude": 105.7034,
             "stream_url": "rtsp://10.0.0.9/s"},
            creating=True,
        )  # fmt: skip
        service.create_camera(session, SYSTEM, clock(), backend.settings.resolved_secret_key, values)
        load_rules(session, SYSTEM, clock())
    police = make_key(database, clock(), agency="cong_an_tinh", feed="ca_video", indicators=["antt.camera"])
    other = make_key(database, clock(), agency="so_y_te", feed="yte_x", indicators=["yte.cong_suat_giuong"])
    snapshot = base64.b64encode(picture()).decode()
    items: list[Any] = [
        {"type": "accident", "camera": "cau_ben_thuy", "time": "2026-11-27T09:58:00+07:00", "confidence": 0.93,
         "snapshot": snapshot},
        {"type": "congestion", "camera": "cau_ben_thuy", "confidence": 0.7},
        {"type": "earthquake", "camera": "cau_ben_thuy", "confidence": 0.5},
        {"type": "crowd", "camera": "khong_co", "confidence": 0.5},
        {"type": "crowd", "camera": "cau_ben_thuy", "confidence": 1.5},
        {"type": "crowd", "camera": "cau_ben_thuy", "confidence": 0.5, "time": "2026-11-27T09:58:00"},
        {"type": "fire_smoke", "camera": "cau_ben_thuy", "confidence": 0.5,
         "snapshot": base64.b64encode(b"<svg/>").decode()},
        "not an object",
    ]  # fmt: skip
    answer = client.post("/api/v1/cameras/events", json={"events": items}, headers=police.headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 2
    codes = {r["index"]: r["code"] for r in result["rejected"]}
    assert codes == {
        2: "bad_type",
        3: "unknown_camera",
        4: "bad_confidence",
        5: "time_without_offset",
        6: "bad_snapshot",
        7: "not_object",
    }
    assert all(r["message_vi"] and r["message_en"] for r in result["rejected"])
    # Another agency's system may not report on the police's camera.
    refused = client.post("/api/v1/cameras/events", json={"events": items[:1]}, headers=other.headers).json()
    assert refused["accepted"] == 0 and refused["rejected"][0]["code"] == "unknown_camera"
    assert client.post("/api/v1/cameras/events", content=b"{", headers=police.headers).status_code == 400

    with database.reading() as session:
        events = session.scalars(select(Event).where(Event.category == "camera").order_by(Event.id)).all()
        assert [e.type for e in events] == ["accident", "congestion"]
        stored = Path(backend.settings.data_dir) / "camera-events" / events[0].details["snapshot"]
        assert Image.open(stored).format == "JPEG"
        assert events[0].subject_id is not None and events[0].agency_id is not None
    evaluation.evaluate_due(database, clock, owner="test")
    with database.reading() as session:
        alert = session.scalar(select(Alert).where(Alert.state == FIRING, Alert.kind == "events"))
        assert alert is not None
        incident = session.scalar(select(Incident).where(Incident.id == alert.incident_id))
        assert incident is not None


def test_analyzer_sees_motion_and_counts_people() -> None:
    if not analyzer.available():
        pytest.skip("opencv-python-headless (extra `vision`) is not installed")
    still = analyzer.motion(picture(0, "JPEG"), picture(0, "JPEG"))
    moved = analyzer.motion(picture(0, "JPEG"), picture(60, "JPEG"))
    assert still < 0.01 < 0.05 < moved
    count = analyzer.count_people(picture(0, "JPEG"))
    assert isinstance(count, int) and count >= 0
    assert analyzer.crowd_threshold(["analyze", "crowd>=3"]) == 3
    assert analyzer.crowd_threshold(["analyze"]) == analyzer.DEFAULT_CROWD
