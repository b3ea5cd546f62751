"""ArcSight Common Event Format (CEF), a pure parser (no I/O), so that it can be fuzzed.

`CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`

- Header fields are split on the first seven pipes not escaped by a backslash; in a header `\\|` is a pipe and
  `\\\\` a backslash. Whatever follows the seventh pipe is the extension, pipes included.
- The extension is `key=value` pairs separated by spaces; a value runs until the next ` key=` (keys are letters,
  digits, `_`, `.`, `[`, `]`, `-`), so values may hold spaces. In a value `\\=` is `=`, `\\\\` a backslash,
  `\\n` and `\\r` a line break.
- Severity is 0–10 or Low / Medium / High / Very-High (normal.cef_severity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cityops.soc.normal import MAX_MESSAGE, Normalized, address, categorise, cef_severity, clean, port

PREFIX = "CEF:"
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")


class CefError(ValueError):
    """Not a CEF record."""


@dataclass(frozen=True)
class CefRecord:
    version: str
    vendor: str
    product: str
    device_version: str
    signature: str
    name: str
    severity: str
    extension: dict[str, str]


def _split_header(text: str) -> list[str]:
    fields: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text) and len(fields) < 7:
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "|\\":
            current.append(text[index + 1])
            index += 2
            continue
        if char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if len(fields) < 7:
        raise CefError("fewer than 8 fields")
    fields.append(text[index:])
    return fields


def _unescape_value(value: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            following = value[index + 1]
            mapped = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}.get(following)
            if mapped is not None:
                out.append(mapped)
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out)


def parse_extension(text: str) -> dict[str, str]:
    """The extension's pairs; a key given twice keeps its last value."""
    matches = [m for m in _KEY.finditer(text) if not _escaped(text, m.end() - 1)]
    pairs: dict[str, str] = {}
    for position, match in enumerate(matches):
        end = matches[position + 1].start() if position + 1 < len(matches) else len(text)
        pairs[match.group(1)] = _unescape_value(text[match.end() : end].rstrip())
    return pairs


def _escaped(text: str, index: int) -> bool:
    """Whether the character at index is escaped by an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def parse(text: str) -> CefRecord:
    """One CEF record (starting at `CEF:`); CefError when it is not one."""
    start = text.find(PREFIX)
    if start < 0:
        raise CefError("no CEF: prefix")
    fields = _split_header(text[start + len(PREFIX) :])
    version = fields[0].strip()
    if not version.isdigit():
        raise CefError("bad version")
    return CefRecord(
        version=version,
        vendor=fields[1],
        product=fields[2],
        device_version=fields[3],
        signature=fields[4],
        name=fields[5],
        severity=fields[6],
        extension=parse_extension(fields[7].strip()),
    )


def _moment(value: str) -> datetime | None:
    """CEF's `rt`/`end`: milliseconds since the epoch (the common form), else None."""
    value = value.strip()
    if value.isascii() and value.isdigit() and 9 <= len(value) <= 14:
        number = int(value)
        seconds = number / 1000 if len(value) >= 12 else number
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def normalise(record: CefRecord, raw: str, received: datetime, *, host: str = "", app: str = "") -> Normalized:
    """A CEF record in the one shape (time from `rt` when it is epoch milliseconds, else the syslog header's)."""
    ext = record.extension
    occurred = _moment(ext.get("rt", "") or ext.get("end", "")) or received
    severity_text = record.severity
    if severity_text.strip().lower() in ("", "unknown") and ext.get("cp_severity"):
        severity_text = ext["cp_severity"]
    message = ext.get("msg", "") or record.name
    names = tuple(n for n in (ext.get("dvchost", ""), ext.get("dvc", ""), ext.get("shost", "")) if n)
    return Normalized(
        occurred_at=occurred,
        source_format="cef",
        raw=raw,
        host=clean(host or ext.get("dvchost", "") or ext.get("dvc", ""), 255),
        app=clean(app or f"{record.vendor} {record.product}".strip(), 128),
        severity=cef_severity(severity_text),
        category=categorise(ext.get("cat", ""), record.name, message, ext.get("act", "")),
        rule=clean(f"{record.signature} {record.name}".strip(), 255),
        src_ip=address(ext.get("src", "") or ext.get("c6a2", "")),
        src_port=port(ext.get("spt")),
        dst_ip=address(ext.get("dst", "") or ext.get("c6a3", "")),
        dst_port=port(ext.get("dpt")),
        message=clean(message, MAX_MESSAGE),
        extra={
            "vendor": clean(record.vendor, 128),
            "product": clean(record.product, 128),
            "action": clean(ext.get("act", ""), 64),
            "cef_category": clean(ext.get("cat", ""), 64),
        },
        hosts=names,
    )
