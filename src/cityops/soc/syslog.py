"""Syslog: RFC 5424 and RFC 3164 (BSD) messages, CEF inside them, and TCP framing (RFC 6587). Pure functions and
a pure frame decoder (no I/O), so that they can be fuzzed.

- `parse(data, received)` turns one message (bytes) into a `Normalized` event; it never raises. A message that is
  not valid UTF-8, holds NUL, or has neither a `<PRI>` nor a timestamp is kept as format "unparsed" (raw text kept,
  bytes that are not text shown as `\\xNN`).
- RFC 5424 times carry their offset (`Z`, `+07:00`); `-` (no time) is the time received.
- RFC 3164 times have **no year and no zone**: they are read as Asia/Ho_Chi_Minh time, in the year that puts them
  closest to the time received (a message dated more than a day after it is from the year before: "Dec 31 23:59"
  received on 1 January). `Jan 18 2024 11:50:03` (with a year) and ISO 8601 stamps (with or without an offset;
  without, local time) are also read.
- A message whose text (after the tag) starts with `CEF:` is parsed as CEF (format "cef"), with the syslog
  header's host and time.
- `FrameDecoder` splits a TCP stream into messages: each frame is octet-counted (`LEN SP MSG`, RFC 6587 3.4.1) when
  it starts with digits and a space, else ends at LF (or NUL: non-transparent framing, 3.4.2). The first frame
  decides for the connection; the decoder re-checks at each frame, so a sender mixing both is still read. A frame
  longer than `max_frame` is cut: its first `max_frame` bytes are returned marked as truncated, the rest skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cityops.clock import LOCAL_TZ
from cityops.soc import cef
from cityops.soc.normal import (
    MAX_MESSAGE,
    SYSLOG_SEVERITY,
    Normalized,
    address,
    categorise,
    clean,
    decode_raw,
)

FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "audit",
    "alert",
    "clock",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)
AUTH_FACILITIES = (4, 10)
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number + 1 for number, name in enumerate(MONTH_NAMES)}
_PRI = re.compile(r"^<(\d{1,3})>")
_BSD_TIME = re.compile(
    r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})"
    r"(?:\.\d+)?(?= |$)"
)
_ISO_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?(?= |$)")
_TAG = re.compile(r"^([^\s:\[\]]{1,64})(?:\[([^\]\s]{0,32})\])?:(?: |$)")
FUTURE_SLACK = timedelta(days=1)


class SyslogError(ValueError):
    """Not a syslog message."""


# --- time -----------------------------------------------------------------------------------------------------


def _iso(match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    if zone is None:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=LOCAL_TZ)
    offset = "+00:00" if zone == "Z" else zone if ":" in zone else zone[:3] + ":" + zone[3:]
    return datetime.fromisoformat(
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{offset}"
    ).replace(microsecond=micro)


def bsd_time(
    month: int, day: int, hour: int, minute: int, second: int, received: datetime, year: int | None
) -> datetime:
    """An RFC 3164 time (local, no year) as an aware datetime: the year closest to the time received."""
    if year is not None:
        return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL_TZ)
    local_year = received.astimezone(LOCAL_TZ).year
    for candidate in (local_year, local_year - 1, local_year + 1):
        try:
            moment = datetime(candidate, month, day, hour, minute, second, tzinfo=LOCAL_TZ)
        except ValueError:  # 29 February of another year
            continue
        if candidate == local_year + 1 and moment - received > FUTURE_SLACK:
            continue
        if candidate == local_year and moment - received > FUTURE_SLACK:
            continue
        return moment
    raise SyslogError("bad date")


def _leading_time(text: str, received: datetime) -> tuple[datetime, str] | None:
    """A timestamp at the start of the text (BSD or ISO) and the rest after it; None when there is none."""
    bsd = _BSD_TIME.match(text)
    if bsd:
        month = MONTHS[bsd.group(1)]
        numbers = [int(bsd.group(i)) for i in (2, 4, 5, 6)]
        year = int(bsd.group(3)) if bsd.group(3) else None
        moment = bsd_time(month, numbers[0], numbers[1], numbers[2], numbers[3], received, year)
        return moment, text[bsd.end() :].lstrip(" ")
    iso = _ISO_TIME.match(text)
    if iso:
        return _iso(iso), text[iso.end() :].lstrip(" ")
    return None


# --- messages ---------------------------------------------------------------------------------------------------


@dataclass
class Header:
    facility: int
    severity: int
    occurred_at: datetime
    host: str
    app: str
    procid: str
    msgid: str
    structured: dict[str, dict[str, str]]
    message: str
    fmt: str


def _sd_value(text: str, index: int) -> tuple[str, int]:
    out: list[str] = []
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in '"\\]':
            out.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise SyslogError("unterminated structured data value")


_SD_NAME = re.compile(r"[^\s=\]\"]{1,32}")


def _structured(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """RFC 5424 STRUCTURED-DATA at the start of the text, and the rest (the message)."""
    if text.startswith("-"):
        return {}, text[1:].removeprefix(" ")
    elements: dict[str, dict[str, str]] = {}
    index = 0
    while index < len(text) and text[index] == "[":
        match = _SD_NAME.match(text, index + 1)
        if not match:
            raise SyslogError("bad structured data id")
        params: dict[str, str] = {}
        index = match.end()
        while True:
            while index < len(text) and text[index] == " ":
                index += 1
            if index < len(text) and text[index] == "]":
                index += 1
                break
            name = _SD_NAME.match(text, index)
            if not name or name.end() + 1 >= len(text) or text[name.end() : name.end() + 2] != '="':
                raise SyslogError("bad structured data parameter")
            value, index = _sd_value(text, name.end() + 2)
            params[name.group()] = value
        elements[match.group()] = params
    if not elements:
        raise SyslogError("no structured data")
    return elements, text[index:].removeprefix(" ")


def _nil(value: str) -> str:
    return "" if value == "-" else value


def parse_5424(text: str, facility: int, severity: int, received: datetime) -> Header:
    """RFC 5424 after `<PRI>`: `1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`."""
    parts = text.split(" ", 6)
    if len(parts) < 7 or parts[0] != "1":
        raise SyslogError("not RFC 5424")
    _version, stamp, host, app, procid, msgid, rest = parts
    if stamp == "-":
        occurred = received
    else:
        match = _ISO_TIME.match(stamp)
        if not match or match.end() != len(stamp) or match.group(8) is None:
            raise SyslogError("bad RFC 5424 time")
        occurred = _iso(match)
    structured, message = _structured(rest)
    message = message.removeprefix("\ufeff")
    return Header(
        facility, severity, occurred, _nil(host), _nil(app), _nil(procid), _nil(msgid), structured, message, "rfc5424"
    )


def parse_3164(text: str, facility: int, severity: int, received: datetime) -> Header:
    """RFC 3164 after `<PRI>` (or without it): `TIMESTAMP HOST TAG[pid]: MSG` — a missing tag leaves the app empty."""
    found = _leading_time(text.lstrip(" "), received)
    if found is None:
        raise SyslogError("no timestamp")
    occurred, rest = found
    host, _, rest = rest.partition(" ")
    app = procid = ""
    tag = _TAG.match(rest)
    if tag and not rest.startswith("CEF:"):
        app, procid = tag.group(1), tag.group(2) or ""
        rest = rest[tag.end() :]
    elif rest.startswith(": "):
        rest = rest[2:]
    return Header(facility, severity, occurred, host, app, procid, "", {}, rest, "rfc3164")


def header(text: str, received: datetime) -> Header:
    """The syslog header of one message (RFC 5424 when the version follows the PRI, else RFC 3164)."""
    pri = _PRI.match(text)
    if pri:
        value = int(pri.group(1))
        if value > 191:
            raise SyslogError("bad PRI")
        facility, severity = divmod(value, 8)
        rest = text[pri.end() :]
        if rest.startswith("1 "):
            return parse_5424(rest, facility, severity, received)
        return parse_3164(rest, facility, severity, received)
    # No PRI (RFC 3164 4.3.3: a relay assumes user.notice).
    return parse_3164(text, 1, 5, received)


def _unparsed(raw: str, received: datetime, reason: str) -> Normalized:
    return Normalized(
        occurred_at=received, source_format="unparsed", raw=raw, message=raw[:MAX_MESSAGE], extra={"reason": reason}
    )


def parse(data: bytes, received: datetime, *, truncated: bool = False) -> Normalized:
    """One syslog message (bytes as received) as a normalised event; never raises."""
    raw, text_ok = decode_raw(data.rstrip(b"\r\n\x00"))
    if truncated:
        return _unparsed(raw, received, "too_long")
    if not text_ok:
        return _unparsed(raw, received, "not_text")
    text = raw.strip("\r\n")
    if not text.strip():
        return _unparsed(raw, received, "empty")
    if text.startswith("CEF:"):
        try:
            return cef.normalise(cef.parse(text), raw, received)
        except cef.CefError:
            return _unparsed(raw, received, "bad_cef")
    try:
        head = header(text, received)
    except (SyslogError, ValueError, OverflowError):
        return _unparsed(raw, received, "not_syslog")
    message = head.message
    if message.startswith("CEF:") or " CEF:" in message[:64]:
        try:
            record = cef.parse(message)
        except cef.CefError:
            pass
        else:
            event = cef.normalise(record, raw, head.occurred_at, host=head.host)
            event.extra.update(_extra(head))
            event.hosts = (*event.hosts, *_host_parts(head.host))
            return event
    return _normalise(head, raw)


def _host_parts(host: str) -> tuple[str, ...]:
    """`mymachine/10.1.1.16` names its system by either part."""
    return tuple(part for part in host.split("/") if part) if "/" in host else ()


def _extra(head: Header) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "facility": FACILITIES[head.facility] if head.facility < len(FACILITIES) else str(head.facility),
        "syslog_severity": head.severity,
    }
    if head.procid:
        extra["procid"] = head.procid[:32]
    if head.msgid:
        extra["msgid"] = head.msgid[:32]
    if head.structured:
        extra["structured_data"] = {
            k[:32]: {n[:32]: v[:256] for n, v in p.items()} for k, p in list(head.structured.items())[:10]
        }
    return extra


_IP_IN_TEXT = re.compile(
    r"(?:from|src=|rhost=|SRC=)\s*\[?((?:\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F:]{3,39})\]?(?:\s+port\s+(\d{1,5}))?"
)


def _normalise(head: Header, raw: str) -> Normalized:
    severity = SYSLOG_SEVERITY.get(head.severity, 0)
    message = clean(head.message, MAX_MESSAGE)
    src_ip, src_port = "", None
    found = _IP_IN_TEXT.search(message)
    if found:
        src_ip = address(found.group(1))
        src_port = int(found.group(2)) if found.group(2) and int(found.group(2)) <= 65535 else None
    facility_word = "auth" if head.facility in AUTH_FACILITIES else ""
    category = categorise(head.app, message)
    if category == "other" and facility_word:
        category = "authentication"
    sd_source = next((p.get("src") or p.get("UserHostAddress", "") for p in head.structured.values() if p), "")
    if not src_ip and sd_source:
        src_ip = address(sd_source)
    return Normalized(
        occurred_at=head.occurred_at,
        source_format=head.fmt,
        raw=raw,
        host=clean(head.host, 255),
        app=clean(head.app, 128),
        severity=severity,
        category=category,
        rule=clean(head.msgid, 255),
        src_ip=src_ip,
        src_port=src_port,
        message=message,
        extra=_extra(head),
        hosts=_host_parts(head.host),
    )


# --- framing (TCP) ----------------------------------------------------------------------------------------------


class FrameDecoder:
    """Splits a TCP byte stream into syslog messages (octet counting or LF/NUL framing, per frame)."""

    def __init__(self, max_frame: int = 65_536) -> None:
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.mode = ""  # "octet" or "newline", set by the first frame
        self._skip = 0  # bytes still to skip of a frame that was too long
        self._skip_to_newline = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bool]]:
        """Add received bytes; yield each complete message and whether it was cut (too long)."""
        self.buffer += data
        while self.buffer:
            if self._skip:
                taken = min(self._skip, len(self.buffer))
                del self.buffer[:taken]
                self._skip -= taken
                continue
            if self._skip_to_newline:
                end = _newline(self.buffer)
                if end < 0:
                    self.buffer.clear()
                    return
                del self.buffer[: end + 1]
                self._skip_to_newline = False
                continue
            first = self.buffer[0]
            if first in b"\r\n\x00 ":
                del self.buffer[:1]
                continue
            if 48 <= first <= 57:  # a digit: octet counting when digits then a space follow
                space = self.buffer.find(b" ", 0, 12)
                digits = bytes(self.buffer[:space]) if space > 0 else b""
                if digits.isdigit():
                    self.mode = self.mode or "octet"
                    length = int(digits)
                    body_start = space + 1
                    if length > self.max_frame:
                        if len(self.buffer) < body_start + self.max_frame:
                            return
                        yield bytes(self.buffer[body_start : body_start + self.max_frame]), True
                        self._skip = length - self.max_frame
                        del self.buffer[: body_start + self.max_frame]
                        continue
                    if len(self.buffer) < body_start + length:
                        return
                    yield bytes(self.buffer[body_start : body_start + length]), False
                    del self.buffer[: body_start + length]
                    continue
                if space < 0 and len(self.buffer) < 12 and bytes(self.buffer).isdigit():
                    return  # the length is still arriving
            self.mode = self.mode or "newline"
            end = _newline(self.buffer)
            if end < 0:
                if len(self.buffer) > self.max_frame:
                    yield bytes(self.buffer[: self.max_frame]), True
                    self.buffer.clear()
                    self._skip_to_newline = True
                return
            if end > self.max_frame:
                yield bytes(self.buffer[: self.max_frame]), True
            else:
                yield bytes(self.buffer[:end]), False
            del self.buffer[: end + 1]

    def pending(self) -> bytes:
        """What was received of an unfinished frame (given up when the connection ends or stalls)."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _newline(buffer: bytearray) -> int:
    newline = buffer.find(b"\n")
    nul = buffer.find(b"\x00")
    if newline < 0:
        return nul
    if nul < 0:
        return newline
    return min(newline, nul)
