"""Cameras against real streams that ffmpeg makes from its test pattern: an MJPEG camera over HTTP (with Basic auth)
and an HLS stream; probes, a camera that dies in the middle and comes back (offline alert fired and resolved), the
catalog's counts, the snapshot and the live MJPEG view through the real HTTP stack (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from camera_streams import FFMPEG, HlsCamera, MjpegCamera, free_port, wait_for
from PIL import Image
from sqlalchemy import select

from cityops.accounts.service import SYSTEM
from cityops.alerts.models import FIRING, RESOLVED, Alert
from cityops.cameras import health, service
from cityops.cameras.models import Camera, CameraCheck
from cityops.catalog.models import Indicator
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.models import Subject
from cityops.observations.models import Observation
from cityops.web.app import create_app
from conftest import PASSWORD, Backend, service_missing

CREDENTIALS = ("camera", "mật-khẩu")


@pytest.fixture(scope="module")
def mjpeg() -> Iterator[MjpegCamera]:
    if FFMPEG is None:
        service_missing("ffmpeg", "the Debian package ffmpeg is not installed")
    camera = MjpegCamera(CREDENTIALS)
    camera.start()
    yield camera
    camera.stop()


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HlsCamera]:
    if FFMPEG is None:
        service_missing("ffmpeg", "the Debian package ffmpeg is not installed")
    camera = HlsCamera(tmp_path_factory.mktemp("hls"))
    camera.start()
    yield camera
    camera.stop()


def register(database: Database, backend: Backend, clock: FrozenClock, code: str, **fields: Any) -> int:
    raw = {"code": code, "name_vi": f"Camera {code}", "latitude": 18.6796, "longitude": 105.6813, **fields}
    with database.writing() as session:
        values = service.Checker(session, backend.settings.province_code).check(raw, creating=True)
        camera = service.create_camera(session, SYSTEM, clock(), backend.settings.resolved_secret_key, values)
        return camera.id


def state(database: Database, camera_id: int) -> Camera:
    with database.reading() as session:
        camera = session.get(Camera, camera_id)
        assert camera is not None
        session.expunge(camera)
        return camera


def latest_count(database: Database, indicator: str, subject: str) -> float | None:
    with database.reading() as session:
        return session.scalar(
            select(Observation.value)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .join(Subject, Subject.id == Observation.subject_id)
            .where(Indicator.code == indicator, Subject.code == subject)
            .order_by(Observation.period_start.desc())
            .limit(1)
        )


def offline_alert(database: Database, camera_id: int) -> Alert | None:
    with database.reading() as session:
        return session.scalar(select(Alert).where(Alert.key == health.alert_key(camera_id)))


def test_probes_find_status_and_a_dying_camera_raises_then_clears_its_alert(
    database: Database, backend: Backend, clock: FrozenClock, mjpeg: MjpegCamera, hls: HlsCamera
) -> None:
    user, password = CREDENTIALS
    moving = register(
        database, backend, clock, "mjpeg_cam", stream_url=f"{mjpeg.base}/stream.mjpg",
        snapshot_url=f"{mjpeg.base}/snapshot.jpg", username=user, password=password, commune="16681",
    )  # fmt: skip
    hls_id = register(database, backend, clock, "hls_cam", stream_url=hls.url, commune="16681")
    snap = register(
        database, backend, clock, "snap_cam", snapshot_url=f"{mjpeg.base}/snapshot.jpg", username=user,
        password=password,
    )  # fmt: skip
    wrong_password = register(
        database, backend, clock, "wrong_cam", snapshot_url=f"{mjpeg.base}/snapshot.jpg", username=user,
        password="sai",
    )  # fmt: skip

    counts = health.run_probes(database, clock, backend.settings, "worker-1")
    assert counts["probed"] == 4
    found = state(database, moving)
    assert found.status == "online", found.last_error
    assert (found.width, found.height) == (320, 240) and found.frame_rate is not None and found.frame_rate >= 5
    found = state(database, hls_id)
    assert found.status == "online", found.last_error
    assert (found.width, found.height) == (320, 240) and found.frame_rate == pytest.approx(10, abs=0.5)
    assert state(database, snap).status == "degraded"  # a snapshot only
    found = state(database, wrong_password)
    assert found.status == "offline" and "401" in found.last_error and "sai" not in found.last_error
    # Counted for the catalog: three of the four answer.
    assert latest_count(database, "antt.camera", "40") == 4
    assert latest_count(database, "antt.camera_truc_tuyen", "40") == 3
    assert latest_count(database, "antt.camera", "16681") is not None
    # Not due again yet; and a second worker finds nothing to claim.
    assert health.run_probes(database, clock, backend.settings, "worker-2")["probed"] == 0

    mjpeg.stop()  # the camera dies
    try:
        clock.advance(timedelta(seconds=61))
        health.run_probes(database, clock, backend.settings, "worker-1")
        assert state(database, moving).status == "offline"
        alert = offline_alert(database, moving)
        assert alert is None  # not yet: offline for less than offline_alert_minutes
        assert latest_count(database, "antt.camera_truc_tuyen", "40") == 1  # only HLS still answers
        clock.advance(timedelta(minutes=11))
        health.run_probes(database, clock, backend.settings, "worker-1")
        alert = offline_alert(database, moving)
        assert alert is not None and alert.state == FIRING and "mjpeg_cam" in alert.title_vi
        with database.reading() as session:
            assert alert.agency_id == session.get(Camera, moving).owner_agency_id  # type: ignore[union-attr]
    finally:
        mjpeg.start()  # it comes back
    clock.advance(timedelta(seconds=61))
    health.run_probes(database, clock, backend.settings, "worker-1")
    assert state(database, moving).status == "online"
    alert = offline_alert(database, moving)
    assert alert is not None and alert.state == RESOLVED
    with database.reading() as session:
        checks = session.scalars(
            select(CameraCheck.status).where(CameraCheck.camera_id == moving).order_by(CameraCheck.id)
        ).all()
        assert list(checks) == ["online", "offline", "offline", "online"]
        assert service.uptime(session, moving, clock(), 24) == 50.0


def test_claims_are_exclusive(database: Database, backend: Backend, clock: FrozenClock) -> None:
    ids = [
        register(database, backend, clock, f"c{n}", snapshot_url=f"http://127.0.0.1:{free_port()}/s.jpg")
        for n in range(3)
    ]
    first = health.claim_due(database, clock(), "a")
    second = health.claim_due(database, clock(), "b")
    assert sorted(first) == sorted(ids) and second == []


@pytest.fixture
def served(backend: Backend, clock: FrozenClock) -> Iterator[str]:
    settings = backend.settings.model_copy(update={"camera_live_viewers": 1, "camera_snapshot_cache_seconds": 0})
    app = create_app(settings, clock=clock, database=backend.database)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: running.started, 15, "uvicorn")
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    running.should_exit = True
    thread.join(timeout=15)
    sock.close()


def logged_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=15)
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return client


def first_frames(chunks: Iterator[bytes], count: int) -> list[bytes]:
    """The first frames of a live body; the caller keeps `chunks` (closing it closes the connection)."""
    frames: list[bytes] = []
    buffer = b""
    deadline = time.monotonic() + 20
    for chunk in chunks:
        buffer += chunk
        while b"\xff\xd9" in buffer and b"\xff\xd8" in buffer:
            start = buffer.index(b"\xff\xd8")
            end = buffer.index(b"\xff\xd9", start) + 2
            frames.append(buffer[start:end])
            buffer = buffer[end:]
        if len(frames) >= count or time.monotonic() > deadline:
            break
    return frames


def test_snapshot_and_live_view_through_the_app(
    database: Database, backend: Backend, clock: FrozenClock, personas: dict[str, str], mjpeg: MjpegCamera,
    hls: HlsCamera, served: str,
) -> None:  # fmt: skip
    user, password = CREDENTIALS
    register(
        database, backend, clock, "mjpeg_cam", stream_url=f"{mjpeg.base}/stream.mjpg",
        snapshot_url=f"{mjpeg.base}/snapshot.jpg", username=user, password=password,
    )  # fmt: skip
    register(database, backend, clock, "hls_cam", stream_url=hls.url)
    register(database, backend, clock, "away_cam", snapshot_url=f"{mjpeg.base}/elsewhere", username=user, password="x")
    client = logged_in(served, "operator")
    try:
        picture = client.get("/cameras/mjpeg_cam/snapshot.jpg")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(picture.content)).size == (320, 240)
        refused = client.get("/cameras/away_cam/snapshot.jpg")  # redirected to another host: not followed
        assert refused.status_code == 502 and refused.json()["code"] == "camera_unreachable"
        assert "x" not in refused.json()["detail"].split("localhost")[0].split(":")[-1]

        with client.stream("GET", "/cameras/mjpeg_cam/live") as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("multipart/x-mixed-replace")
            chunks = live.iter_bytes()
            frames = first_frames(chunks, 3)
            assert len(frames) == 3 and Image.open(io.BytesIO(frames[0])).size == (320, 240)
            full = client.get("/cameras/mjpeg_cam/live", timeout=5)  # one viewer at a time in this app
            assert full.status_code == 429 and full.json()["code"] == "camera_viewers_full"

        def again() -> bool:
            with client.stream("GET", "/cameras/mjpeg_cam/live") as response:
                return response.status_code == 200 and len(first_frames(response.iter_bytes(), 1)) == 1

        wait_for(again, 15, "the viewer's place given back")

        with client.stream("GET", "/cameras/hls_cam/live") as live:  # ffmpeg transcodes HLS to MJPEG
            assert live.status_code == 200
            frames = first_frames(live.iter_bytes(), 2)
            assert len(frames) == 2 and Image.open(io.BytesIO(frames[0])).size == (320, 240)

    finally:
        client.close()
