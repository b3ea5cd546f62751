"""Real camera streams for the tests, made by ffmpeg from its test pattern.

- `MjpegCamera`: ffmpeg encodes `testsrc` (320×240, 10 frames/s) to JPEG frames on its standard output; a threaded
  `http.server` on 127.0.0.1 serves them as an MJPEG stream (`/stream.mjpg`, multipart/x-mixed-replace) to any number
  of clients and the newest one at `/snapshot.jpg` (Basic auth when credentials are given). `stop()` kills ffmpeg
  and the server (the camera dies); `start()` brings it back on the same port.
- `HlsCamera`: ffmpeg writes an HLS playlist and its segments to a temporary folder, served by `http.server`.
"""

from __future__ import annotations

import base64
import functools
import shutil
import socket
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FFMPEG = shutil.which("ffmpeg")
PATTERN = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Any, seconds: float = 20.0, what: str = "") -> None:
    """Poll (bounded) until the condition holds: real network I/O, not time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class MjpegCamera:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.credentials = credentials
        self.frame: bytes = b""
        self.frames = 0
        self.changed = threading.Condition()
        self.process: subprocess.Popen[bytes] | None = None
        self.server: ThreadingHTTPServer | None = None
        self.running = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert FFMPEG is not None
        self.running = True
        self.process = subprocess.Popen(
            [
                FFMPEG,
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                *PATTERN,
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "-q:v",
                "5",
                "-",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        camera = self

        class Handler(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if camera.credentials is not None:
                    token = base64.b64encode(":".join(camera.credentials).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                        self.end_headers()
                        return
                if self.path.startswith("/snapshot.jpg"):
                    frame = camera.latest()
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(frame)))
                    self.end_headers()
                    self.wfile.write(frame)
                elif self.path.startswith("/stream.mjpg"):
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    seen = -1
                    try:
                        while camera.running:
                            with camera.changed:
                                camera.changed.wait_for(lambda n=seen: camera.frames != n or not camera.running, 2)
                                frame, seen = camera.frame, camera.frames
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + frame + b"\r\n")
                    except OSError:
                        return
                elif self.path.startswith("/elsewhere"):
                    self.send_response(302)
                    self.send_header("Location", "http://localhost:1/snapshot.jpg")
                    self.end_headers()
                else:
                    self.send_response(404)
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        wait_for(lambda: self.frames > 0, what="the first MJPEG frame")

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        buffer = bytearray()
        assert process.stdout is not None
        while True:
            chunk = process.stdout.read1(65536)
            if not chunk:
                return
            buffer.extend(chunk)
            while True:
                start = buffer.find(b"\xff\xd8")
                end = buffer.find(b"\xff\xd9", start + 2) if start >= 0 else -1
                if end < 0:
                    break
                with self.changed:
                    self.frame = bytes(buffer[start : end + 2])
                    self.frames += 1
                    self.changed.notify_all()
                del buffer[: end + 2]

    def latest(self) -> bytes:
        with self.changed:
            return self.frame

    def stop(self) -> None:
        self.running = False
        with self.changed:
            self.changed.notify_all()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.frames = 0


class HlsCamera:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def start(self) -> None:
        assert FFMPEG is not None
        self.process = subprocess.Popen(
            [
                FFMPEG, "-nostdin", "-loglevel", "error", "-re", *PATTERN,
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-pix_fmt", "yuv420p",
                "-f", "hls", "-hls_time", "1", "-hls_list_size", "4", "-hls_flags", "delete_segments",
                str(self.folder / "live.m3u8"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        handler = functools.partial(_QuietFiles, directory=str(self.folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        wait_for(lambda: (self.folder / "live.m3u8").exists() and len(list(self.folder.glob("*.ts"))) >= 2, what="HLS")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass
