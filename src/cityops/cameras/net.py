"""Talking to cameras: HTTP snapshots and MJPEG streams, ffprobe and ffmpeg for RTSP and HLS.

Outgoing requests never follow a redirect to another host (a camera, or whoever took its address, cannot send the
server elsewhere with the camera's credentials); redirects on the same host are followed up to three times.
Credentials go in the Authorization header (Basic, or Digest when the camera asks for it) or, for RTSP, in the URL
handed to ffmpeg — never in a log line or an error message: errors name the host only.
With `camera_allow_private_addresses` false, a camera whose host resolves to a private, loopback or link-local
address is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "cityops-camera/1"


class CameraUnreachable(Exception):
    """A camera did not answer as it should: a short reason, safe to show (no URL, no credentials)."""


@dataclass(frozen=True)
class Target:
    """What is needed to reach one camera (credentials decrypted, server side only)."""

    code: str
    stream_kind: str
    stream_url: str
    snapshot_url: str
    credentials: tuple[str, str] | None
    allow_private: bool = True


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


def check_address(url: str, allow_private: bool) -> None:
    """Refuse a host on a private network when that is not allowed."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise CameraUnreachable(f"cannot resolve {host}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified:
            raise CameraUnreachable(f"{host} is on a private network (not allowed)")


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _auth(credentials: tuple[str, str] | None, challenge: str) -> httpx.Auth | None:
    if credentials is None:
        return None
    if challenge.lower().startswith("digest"):
        return httpx.DigestAuth(*credentials)
    return httpx.BasicAuth(*credentials)


def _open(client: httpx.Client, url: str, target: Target) -> httpx.Response:
    """A streamed GET, following same-host redirects only; the caller closes the response."""
    current = url
    challenge = ""
    for _ in range(MAX_REDIRECTS + 2):
        check_address(current, target.allow_private)
        request = client.build_request("GET", current, headers={"User-Agent": USER_AGENT})
        auth = _auth(target.credentials, challenge)
        response = client.send(request, stream=True, auth=auth) if auth else client.send(request, stream=True)
        if response.status_code == 401 and target.credentials and not challenge:
            challenge = response.headers.get("www-authenticate", "basic") or "basic"
            response.close()
            continue
        if response.is_redirect:
            location = response.headers.get("location", "")
            response.close()
            following = str(httpx.URL(current).join(location))
            if not _same_origin(current, following):
                raise CameraUnreachable(f"{host_of(current)} redirected to another host ({host_of(following)})")
            current = following
            continue
        if response.status_code >= 400:
            response.close()
            raise CameraUnreachable(f"{host_of(url)} answered HTTP {response.status_code}")
        return response
    raise CameraUnreachable(f"{host_of(url)}: too many redirects")


def _client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


def get_image(target: Target, url: str, timeout: float, limit: int = MAX_FRAME_BYTES) -> bytes:
    """The body of a snapshot URL (at most `limit` bytes)."""
    deadline = time.monotonic() + timeout
    try:
        with _client(timeout) as client:
            response = _open(client, url, target)
            try:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise CameraUnreachable(f"{host_of(url)}: snapshot larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise CameraUnreachable(f"{host_of(url)}: timed out")
                return bytes(body)
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise CameraUnreachable(f"{host_of(url)}: {type(exc).__name__}") from None


def split_frames(buffer: bytearray) -> Iterator[bytes]:
    """Take every whole JPEG (SOI … EOI) out of the front of the buffer, dropping what lies between them."""
    while True:
        start = buffer.find(SOI)
        if start < 0:
            del buffer[: max(0, len(buffer) - 1)]
            return
        end = buffer.find(EOI, start + 2)
        if end < 0:
            del buffer[:start]
            if len(buffer) > MAX_FRAME_BYTES:
                buffer.clear()
            return
        frame = bytes(buffer[start : end + 2])
        del buffer[: end + 2]
        yield frame


def mjpeg_frames(target: Target, timeout: float, count: int, seconds: float) -> tuple[list[bytes], float]:
    """Read up to `count` frames (or for `seconds`) of an MJPEG stream: the frames and the seconds it took from
    the first frame to the last."""
    frames: list[bytes] = []
    first_at = last_at = 0.0
    deadline = time.monotonic() + timeout
    try:
        with _client(timeout) as client:
            response = _open(client, target.stream_url, target)
            try:
                buffer = bytearray()
                for chunk in response.iter_bytes():
                    buffer.extend(chunk)
                    for frame in split_frames(buffer):
                        moment = time.monotonic()
                        if not frames:
                            first_at = moment
                        frames.append(frame)
                        last_at = moment
                    if frames and (len(frames) >= count or time.monotonic() - first_at >= seconds):
                        break
                    if time.monotonic() > deadline:
                        break
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: {type(exc).__name__}") from None
    if not frames:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: no JPEG frame in the stream")
    return frames, last_at - first_at


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """The URL with user:password for ffmpeg (RTSP has no other way); never logged."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    userinfo = f"{quote(credentials[0], safe='')}:{quote(credentials[1], safe='')}@"
    netloc = userinfo + (parts.netloc.rpartition("@")[2])
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _input_options(target: Target, timeout: float, *, probe: bool = False) -> list[str]:
    options = ["-hide_banner", "-loglevel", "error"] if probe else ["-nostdin", "-hide_banner", "-loglevel", "error"]
    if target.stream_kind == "rtsp":
        options += ["-rtsp_transport", "tcp", "-timeout", str(int(timeout * 1_000_000))]
    else:
        options += ["-rw_timeout", str(int(timeout * 1_000_000))]
    return options


def _input_url(target: Target) -> str:
    if target.stream_kind == "rtsp":
        return with_credentials(target.stream_url, target.credentials)
    return target.stream_url


def _headers_option(target: Target) -> list[str]:
    if target.stream_kind == "hls" and target.credentials is not None:
        import base64

        token = base64.b64encode(f"{target.credentials[0]}:{target.credentials[1]}".encode()).decode()
        return ["-headers", f"Authorization: Basic {token}\r\n"]
    return []


def ffprobe(target: Target, timeout: float) -> dict[str, Any]:
    """Frame rate and size of the stream's first video track (ffprobe), or CameraUnreachable."""
    program = shutil.which("ffprobe")
    if program is None:
        raise CameraUnreachable("ffprobe is not installed (Debian package ffmpeg)")
    check_address(target.stream_url, target.allow_private)
    command = [
        program,
        *_input_options(target, timeout, probe=True),
        *_headers_option(target),
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height,avg_frame_rate,r_frame_rate",
        "-of",
        "json",
        "-i",
        _input_url(target),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: no answer within {timeout:g} s") from None
    if done.returncode != 0:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: the stream cannot be read")
    try:
        streams = json.loads(done.stdout or b"{}").get("streams") or []
    except ValueError:
        streams = []
    if not streams:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: no video in the stream")
    stream = streams[0]
    return {"width": stream.get("width"), "height": stream.get("height"), "frame_rate": _rate(stream)}


def _rate(stream: dict[str, Any]) -> float | None:
    for name in ("avg_frame_rate", "r_frame_rate"):
        text = str(stream.get(name) or "")
        top, _, bottom = text.partition("/")
        try:
            value = float(top) / float(bottom or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if value > 0:
            return round(value, 2)
    return None


def ffmpeg_frame(target: Target, timeout: float) -> bytes:
    """One JPEG frame of an RTSP or HLS stream (ffmpeg)."""
    program = shutil.which("ffmpeg")
    if program is None:
        raise CameraUnreachable("ffmpeg is not installed (Debian package ffmpeg)")
    check_address(target.stream_url, target.allow_private)
    command = [
        program,
        *_input_options(target, timeout),
        *_headers_option(target),
        "-i",
        _input_url(target),
        "-frames:v",
        "1",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-",
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise CameraUnreachable(f"{host_of(target.stream_url)}: no answer within {timeout:g} s") from None
    if done.returncode != 0 or not done.stdout.startswith(SOI):
        raise CameraUnreachable(f"{host_of(target.stream_url)}: no frame from the stream")
    return bytes(done.stdout)


# --- live streams (async) ---------------------------------------------------------------------------------------


async def mjpeg_upstream(target: Target, seconds: float) -> AsyncIterator[bytes]:
    """The JPEG frames of an MJPEG camera, as they come (same-host redirects only; Basic or Digest auth)."""
    await asyncio.to_thread(check_address, target.stream_url, target.allow_private)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(seconds, read=seconds * 2), follow_redirects=False, trust_env=False
    ) as client:
        url = target.stream_url
        challenge = ""
        for _ in range(MAX_REDIRECTS + 2):
            request = client.build_request("GET", url, headers={"User-Agent": USER_AGENT})
            auth = _auth(target.credentials, challenge)
            try:
                response = await (
                    client.send(request, stream=True, auth=auth) if auth else client.send(request, stream=True)
                )
            except httpx.HTTPError:
                raise CameraUnreachable(f"{host_of(url)}: no answer") from None
            if response.status_code == 401 and target.credentials and not challenge:
                challenge = response.headers.get("www-authenticate", "basic") or "basic"
                await response.aclose()
                continue
            if response.is_redirect:
                following = str(httpx.URL(url).join(response.headers.get("location", "")))
                await response.aclose()
                if not _same_origin(url, following):
                    raise CameraUnreachable(f"{host_of(url)} redirected to another host")
                url = following
                continue
            if response.status_code >= 400:
                await response.aclose()
                raise CameraUnreachable(f"{host_of(url)} answered HTTP {response.status_code}")
            try:
                buffer = bytearray()
                async for chunk in response.aiter_bytes():
                    buffer.extend(chunk)
                    for frame in split_frames(buffer):
                        yield frame
            except httpx.HTTPError:
                return
            finally:
                await response.aclose()
            return


async def ffmpeg_upstream(target: Target, seconds: float, frame_rate: int = 5) -> AsyncIterator[bytes]:
    """JPEG frames transcoded by ffmpeg from an RTSP or HLS stream; ffmpeg is killed when the caller stops."""
    program = shutil.which("ffmpeg")
    if program is None:
        raise CameraUnreachable("ffmpeg is not installed (Debian package ffmpeg)")
    await asyncio.to_thread(check_address, target.stream_url, target.allow_private)
    process = await asyncio.create_subprocess_exec(
        program,
        *_input_options(target, seconds),
        *_headers_option(target),
        "-i",
        _input_url(target),
        "-an",
        "-r",
        str(frame_rate),
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-q:v",
        "6",
        "-",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        buffer = bytearray()
        while True:
            chunk = await process.stdout.read(65536)
            if not chunk:
                return
            buffer.extend(chunk)
            for frame in split_frames(buffer):
                yield frame
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
