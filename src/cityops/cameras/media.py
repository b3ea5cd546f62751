"""Pictures through the app: a camera's snapshot (cached a few seconds in memory) and its live MJPEG stream (a bounded
number of viewers per camera, ffmpeg transcoding RTSP/HLS on demand and killed when the viewer leaves)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cityops.cameras import net

BOUNDARY = "cityopsframe"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
MAX_CACHED = 256


@dataclass
class SnapshotCache:
    """The last picture of each camera, for `seconds`; one fetch at a time per camera."""

    seconds: float
    _pictures: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, target: net.Target, timeout: float) -> bytes:
        with self._guard:
            lock = self._locks.setdefault(target.code, threading.Lock())
        with lock:
            cached = self._pictures.get(target.code)
            if cached is not None and time.monotonic() - cached[0] < self.seconds:
                return cached[1]
            picture = fetch_snapshot(target, timeout)
            with self._guard:
                if len(self._pictures) >= MAX_CACHED:
                    self._pictures.pop(next(iter(self._pictures)))
                self._pictures[target.code] = (time.monotonic(), picture)
            return picture


def fetch_snapshot(target: net.Target, timeout: float) -> bytes:
    """A JPEG of the camera now: its snapshot URL, else the first frame of its stream."""
    if target.snapshot_url:
        data = net.get_image(target, target.snapshot_url, timeout)
        if data.startswith(net.SOI):
            return data
        raise net.CameraUnreachable("the snapshot is not a JPEG")
    if target.stream_kind == "mjpeg":
        frames, _ = net.mjpeg_frames(target, timeout, count=1, seconds=0)
        return frames[0]
    if target.stream_kind in ("rtsp", "hls"):
        return net.ffmpeg_frame(target, timeout)
    raise net.CameraUnreachable("the camera has neither a snapshot nor a stream")


class ViewersFull(Exception):
    """The camera already has as many live viewers as allowed."""


@dataclass
class Viewers:
    """How many live viewers each camera has in this process, with a bound."""

    limit: int
    _count: dict[str, int] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, code: str) -> None:
        with self._guard:
            if self._count.get(code, 0) >= self.limit:
                raise ViewersFull(code)
            self._count[code] = self._count.get(code, 0) + 1

    def leave(self, code: str) -> None:
        with self._guard:
            left = self._count.get(code, 1) - 1
            if left <= 0:
                self._count.pop(code, None)
            else:
                self._count[code] = left

    def now(self, code: str) -> int:
        with self._guard:
            return self._count.get(code, 0)


def part(frame: bytes) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n".encode() + frame + b"\r\n"
    )


async def live(target: net.Target, seconds: float, viewers: Viewers) -> AsyncIterator[bytes]:
    """The multipart MJPEG body of one viewer; the viewer's place is given back however the stream ends."""
    upstream = (
        net.mjpeg_upstream(target, seconds) if target.stream_kind == "mjpeg" else net.ffmpeg_upstream(target, seconds)
    )
    try:
        async for frame in upstream:
            yield part(frame)
    except net.CameraUnreachable:
        return
    finally:
        viewers.leave(target.code)
        await upstream.aclose()  # type: ignore[attr-defined]


__all__ = ["MEDIA_TYPE", "SnapshotCache", "Viewers", "ViewersFull", "fetch_snapshot", "live"]
