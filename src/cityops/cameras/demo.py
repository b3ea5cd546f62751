"""The demo's 19 police cameras: one small in-process camera server on 127.0.0.1 (no ffmpeg) and what plays them.

- `CameraServer` serves, for each camera, `/cam/<code>/snapshot.jpg` and `/cam/<code>/stream.mjpg` (multipart MJPEG,
  5 frames/s): frames drawn with Pillow — a shape moving across, the camera's name and the local time. A camera put
  "down" answers 503 and ends its streams, as a dead camera would.
- `CameraDemo` registers the cameras (`demo_cam_01` … `demo_cam_19`, owner `cong_an_tinh`, spread over the province's
  communes at their centres), points them at the server, and every few seconds: now and then takes two cameras
  down for a while and brings them back (the worker's probes see them go offline and the alert fire and clear),
  and posts an analytics event (accident or congestion) through `POST /api/v1/cameras/events` with a real key.
"""

from __future__ import annotations

import base64
import io
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from PIL import Image, ImageDraw
from sqlalchemy import select

from cityops.accounts.service import Actor, create_api_key
from cityops.cameras import service
from cityops.cameras.models import Camera
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.geo.models import Subject

COUNT = 19
OWNER = "cong_an_tinh"
ACTOR = Actor("demo")
FRAME_SECONDS = 0.2
SIZE = (480, 270)
PLACES = (
    "Ngã tư", "Cầu", "Chợ", "Quảng trường", "Bến xe", "Trường học", "Nút giao", "Cổng khu công nghiệp", "Bệnh viện",
    "Công viên",
)  # fmt: skip


def frame(name: str, moment: datetime, seed: int) -> bytes:
    """One JPEG: a moving shape, the camera's name and the local time."""
    image = Image.new("RGB", SIZE, (24 + seed * 5 % 40, 32, 48))
    draw = ImageDraw.Draw(image)
    step = (moment.timestamp() * 40 + seed * 37) % (SIZE[0] + 80) - 80
    draw.rectangle((step, 150, step + 70, 200), fill=(230, 190, 40))
    draw.rectangle((0, 0, SIZE[0], 28), fill=(0, 0, 0))
    draw.text((8, 8), name.encode("ascii", "replace").decode()[:60], fill=(255, 255, 255))
    draw.text((8, SIZE[1] - 20), moment.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M:%S"), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


class CameraServer:
    """The simulated cameras' HTTP server."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.names: dict[str, str] = {}
        self.down: set[str] = set()
        self.running = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) != 3 or parts[0] != "cam" or parts[1] not in server.names:
                    self.send_error(404)
                    return
                code, what = parts[1], parts[2]
                if code in server.down:
                    self.send_error(503)
                    return
                seed = sum(code.encode())
                if what == "snapshot.jpg":
                    picture = frame(server.names[code], server.clock(), seed)
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(picture)))
                    self.end_headers()
                    self.wfile.write(picture)
                elif what == "stream.mjpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    try:
                        while server.running and code not in server.down:
                            picture = frame(server.names[code], server.clock(), seed)
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + picture + b"\r\n")
                            time.sleep(FRAME_SECONDS)
                    except OSError:
                        return
                else:
                    self.send_error(404)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def start(self) -> CameraServer:
        threading.Thread(target=self.http.serve_forever, daemon=True, name="demo-cameras").start()
        return self

    def stop(self) -> None:
        self.running = False
        self.http.shutdown()
        self.http.server_close()


def provision(
    database: Database, now: datetime, secret_key: str, province_code: str, base_url: str
) -> tuple[list[str], str]:
    """Register (or re-point) the demo's cameras; a fresh key of the police for analytics events."""
    with database.writing() as session:
        communes = session.execute(
            select(Subject.code, Subject.name_vi, Subject.latitude, Subject.longitude)
            .where(Subject.kind == "commune", Subject.latitude.is_not(None))
            .order_by(Subject.code)
        ).all()
        step = max(1, len(communes) // COUNT)
        chosen = communes[::step][:COUNT]
        checker = service.Checker(session, province_code)
        codes = []
        for number, (commune, commune_name, latitude, longitude) in enumerate(chosen, start=1):
            code = f"demo_cam_{number:02d}"
            place = PLACES[number % len(PLACES)]
            raw = {
                "name_vi": f"{place} — {commune_name}",
                "name_en": f"{place} — {commune_name}",
                "latitude": latitude,
                "longitude": longitude,
                "commune": commune,
                "owner": OWNER,
                "stream_url": f"{base_url}/cam/{code}/stream.mjpg",
                "snapshot_url": f"{base_url}/cam/{code}/snapshot.jpg",
                "tags": ["demo", "giao_thong"] + (["analyze"] if number in (1, 2) else []),
                "probe_seconds": 30,
                "offline_alert_minutes": 2,
            }
            camera = session.scalar(select(Camera).where(Camera.code == code))
            if camera is None:
                service.create_camera(
                    session, ACTOR, now, secret_key, checker.check({"code": code, **raw}, creating=True)
                )
            else:
                service.update_camera(session, ACTOR, now, secret_key, camera, checker.check(raw, creating=False))
            codes.append(code)
        _, key = create_api_key(session, ACTOR, now, agency_code=OWNER, feed_codes=[], name="demo video analytics")
    return codes, key


class CameraDemo:
    """Plays the cameras beside the demo: outages now and then, analytics events through the real API."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        secret_key: str,
        province_code: str,
        app_url: str,
        echo: Callable[[str], None],
        interval: float = 10.0,
    ) -> None:
        self.server = CameraServer(clock).start()
        self.codes, self.key = provision(database, clock(), secret_key, province_code, self.server.base_url)
        with database.reading() as session:
            self.server.names = dict(
                session.execute(select(Camera.code, Camera.name_vi).where(Camera.code.in_(self.codes))).all()
            )
        self.app_url, self.echo, self.interval, self.clock = app_url, echo, interval, clock
        self.stopping = threading.Event()
        self.random = random.Random(19)
        self.thread = threading.Thread(target=self._run, daemon=True, name="demo-camera-play")
        self.thread.start()
        echo(
            f"  cameras     {len(self.codes)} police cameras served by {self.server.base_url}/cam/<code>/… "
            f"(MJPEG, snapshots); some go offline now and then; analytics events → {app_url}/cameras"
        )

    def _run(self) -> None:
        rounds = 0
        down_until = 0
        while not self.stopping.wait(self.interval):
            rounds += 1
            try:
                self._round(rounds)
            except httpx.HTTPError as exc:
                self.echo(f"cameras: {type(exc).__name__} posting events")
            if rounds % 30 == 5 and not self.server.down:
                self.server.down = set(self.random.sample(self.codes, 2))
                down_until = rounds + 18
                self.echo(f"cameras: {', '.join(sorted(self.server.down))} go offline")
            elif self.server.down and rounds >= down_until:
                self.echo(f"cameras: {', '.join(sorted(self.server.down))} are back")
                self.server.down = set()

    def _round(self, rounds: int) -> None:
        if rounds % 6 != 3:
            return
        kind = "accident" if rounds % 24 == 3 else "congestion"
        up = [code for code in self.codes if code not in self.server.down]
        code = self.random.choice(up)
        event = {
            "type": kind,
            "camera": code,
            "time": self.clock().astimezone(LOCAL_TZ).isoformat(timespec="seconds"),
            "confidence": round(self.random.uniform(0.7, 0.98), 2),
        }
        with httpx.Client(base_url=self.app_url, timeout=10, trust_env=False) as client:
            snapshot = client.get(f"{self.server.base_url}/cam/{code}/snapshot.jpg")
            if snapshot.status_code == 200:
                event["snapshot"] = base64.b64encode(snapshot.content).decode()
            answer = client.post(
                "/api/v1/cameras/events", json={"events": [event]}, headers={"Authorization": f"Bearer {self.key}"}
            )
        if answer.status_code == 200:
            self.echo(f"cameras: {kind} event from {code}")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.server.stop()
