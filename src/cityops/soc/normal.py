"""The one shape every security event is normalised into, and the one severity scale.

Severity is 0–10 (CEF's scale) for every source, named by a band:

| 0–10  | band     | syslog severity (RFC 5424)          | CEF (number or word)     | Wazuh rule.level |
|-------|----------|-------------------------------------|--------------------------|------------------|
| 0     | info     | 6 informational, 7 debug → 0        | 0, Unknown               | 0–1              |
| 1–3   | low      | 5 notice → 2                        | 1–3, Low → 3             | 2–5              |
| 4–6   | medium   | 4 warning → 4, 3 error → 5          | 4–6, Medium → 5          | 6–10             |
| 7–8   | high     | 2 critical → 7                      | 7–8, High → 8            | 11–12            |
| 9–10  | critical | 1 alert → 9, 0 emergency → 10       | 9–10, Very-High → 10     | 13–15            |

Wazuh's level becomes round(level × 2 / 3): 3 → 2, 6 → 4, 10 → 7, 12 → 8, 13 → 9, 15 → 10.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BANDS = ("info", "low", "medium", "high", "critical")
SYSLOG_SEVERITY = {0: 10, 1: 9, 2: 7, 3: 5, 4: 4, 5: 2, 6: 0, 7: 0}
CEF_WORDS = {"unknown": 0, "low": 3, "medium": 5, "high": 8, "very-high": 10, "veryhigh": 10, "very high": 10}
MAX_RAW = 65_536  # characters of raw text kept
MAX_MESSAGE = 8_192
FORMATS = ("rfc5424", "rfc3164", "cef", "wazuh", "unparsed")


def band(severity: int) -> str:
    """The band of a 0–10 severity."""
    if severity <= 0:
        return "info"
    if severity <= 3:
        return "low"
    if severity <= 6:
        return "medium"
    if severity <= 8:
        return "high"
    return "critical"


def band_rank(name: str) -> int:
    """The order of a band (info 0 … critical 4); an unknown name ranks as info."""
    return BANDS.index(name) if name in BANDS else 0


def clamp(value: int) -> int:
    return max(0, min(10, value))


def wazuh_severity(level: int) -> int:
    """A Wazuh rule level (0–15) on the 0–10 scale."""
    return clamp(round(max(0, min(15, level)) * 2 / 3))


def cef_severity(text: str) -> int:
    """CEF's severity: a number 0–10 or Low/Medium/High/Very-High; anything else is 0."""
    cleaned = text.strip()
    if cleaned.isascii() and cleaned.isdigit():
        return clamp(int(cleaned[:3]))
    return CEF_WORDS.get(cleaned.lower(), 0)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str, limit: int) -> str:
    """Text fit to store: no NUL or other control characters (shown as \\xNN), at most `limit` characters."""
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text[:limit]


def decode_raw(data: bytes) -> tuple[str, bool]:
    """Bytes as text to keep: UTF-8 when valid (else bytes as \\xNN), control characters escaped; and whether the
    bytes were clean text (valid UTF-8 without NUL)."""
    try:
        text = data.decode("utf-8")
        ok = "\x00" not in text
    except UnicodeDecodeError:
        text = data.decode("utf-8", "backslashreplace")
        ok = False
    return clean(text, MAX_RAW), ok


@dataclass
class Normalized:
    """A security event in the one shape of `security_events` (without the system, matched when stored)."""

    occurred_at: datetime
    source_format: str
    raw: str
    host: str = ""
    app: str = ""
    severity: int = 0
    category: str = ""
    rule: str = ""
    src_ip: str = ""
    src_port: int | None = None
    dst_ip: str = ""
    dst_port: int | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()  # other names or addresses the event names for its system (CEF dvchost, agent.ip)

    @property
    def level(self) -> str:
        return band(self.severity)


def port(value: Any) -> int | None:
    """A port number 0–65535, or None."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 65535 else None


_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")


def address(value: Any) -> str:
    """An IPv4 or IPv6 address as sent (trimmed), or "" when it does not look like one."""
    text = str(value or "").strip()
    return text if _ADDRESS.match(text) and any(c.isdigit() for c in text) else ""


# Categories: what the event is about, from words of the rule, name, facility or groups.
CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("malware", ("malware", "virus", "trojan", "ransom", "rootcheck", "cobalt", "beacon", "threat found")),
    ("web_attack", ("sql injection", "sqli", "xss", "shellshock", "web attack", "path traversal", "web_attack")),
    ("intrusion", ("intrusion", "attack", "exploit", "scan", "ids", "ips", "brute")),
    (
        "authentication",
        ("authentication", "login", "logon", "password", "pam", "sshd", "su:", "'su ", "sudo", "auth"),
    ),
    ("vulnerability", ("vulnerab", "cve-")),
    ("firewall", ("firewall", "drop", "deny", "denied", "blocked", "accept")),
    ("availability", ("shutdown", "halt", "reboot", "down", "unreachable")),
)


def categorise(*texts: str) -> str:
    """The first category whose words appear in the texts (lower-cased), else "other"."""
    joined = " ".join(texts).lower()
    for name, words in CATEGORY_WORDS:
        if any(word in joined for word in words):
            return name
    return "other"
