"""Wazuh-style JSON alerts (its integrations and webhooks), a pure parser (no I/O), so that it can be fuzzed.

The body of `POST /api/v1/soc/wazuh` is one alert (an object), a list of alerts, `{"alerts": [...]}`, or one alert
per line (NDJSON). An alert as stored by the indexer (`{"_source": {...}}`) is unwrapped. The fields read:

| Wazuh field | security_events |
|---|---|
| `timestamp` (`2024-02-08T11:35:14.334-0300`, ISO 8601 with offset; without: local time) | occurred_at |
| `rule.level` 0–15 | severity round(level × 2 / 3), band |
| `rule.id`, `rule.description` | rule |
| `rule.groups` | category (by its words), extra.groups |
| `agent.name`, `agent.ip` | host (system matched by either) |
| `data.srcip`, `data.srcport`, `data.dstip`, `data.dstport` | source and destination |
| `full_log` (else the description) | message |
| `location`, `decoder.name`, `rule.mitre.id`, `data.vulnerability.cve` | extra |

Each alert becomes one event, or one `WazuhProblem` (index, code, field) saying why it was not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from cityops.clock import LOCAL_TZ
from cityops.soc.normal import MAX_MESSAGE, MAX_RAW, Normalized, address, categorise, clean, port, wazuh_severity

MAX_ALERTS = 1000
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}:?\d{2})?$")


class WazuhBodyError(ValueError):
    """A body that is not JSON alerts at all (code: the problem's code)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class WazuhProblem:
    """Why one alert was not kept."""

    index: int
    code: str
    field: str
    params: dict[str, Any]


def split_body(body: bytes) -> list[Any]:
    """The alerts of a body: one object, a list, {"alerts": [...]}, or NDJSON; WazuhBodyError when none."""
    text = body.strip()
    if not text:
        raise WazuhBodyError("soc_wazuh_invalid", "empty body")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        items: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                if number == 1:
                    raise WazuhBodyError("invalid_json", f"line {number}") from None
                items.append(_BadLine(number))
        document = items
    if isinstance(document, dict) and isinstance(document.get("alerts"), list):
        document = document["alerts"]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise WazuhBodyError("soc_wazuh_invalid", 'an alert, a list of alerts or {"alerts": [...]}')
    if len(document) > MAX_ALERTS:
        raise WazuhBodyError("soc_wazuh_invalid", f"at most {MAX_ALERTS} alerts")
    return document


@dataclass(frozen=True)
class _BadLine:
    number: int


def _moment(value: Any, received: datetime) -> datetime | None:
    if value in (None, ""):
        return received
    if not isinstance(value, str):
        return None
    match = _STAMP.match(value.strip())
    if not match:
        return None
    base, zone = match.group(1), match.group(2)
    if "." in base:
        whole, fraction = base.split(".")
        base = f"{whole}.{(fraction + '000000')[:6]}"
    try:
        if zone is None:
            return datetime.fromisoformat(base).replace(tzinfo=LOCAL_TZ)
        offset = "+00:00" if zone == "Z" else (zone if ":" in zone else zone[:3] + ":" + zone[3:])
        return datetime.fromisoformat(base + offset)
    except ValueError:
        return None


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return clean(value, limit) if isinstance(value, str) else ""


def parse_alert(item: Any, received: datetime, index: int = 0) -> Normalized | WazuhProblem:
    """One alert as a normalised event, or why it is not kept."""
    if isinstance(item, _BadLine):
        return WazuhProblem(index, "invalid_json", "", {"line": item.number})
    if not isinstance(item, dict):
        return WazuhProblem(index, "not_object", "", {})
    source = item.get("_source")
    alert: dict[str, Any] = source if isinstance(source, dict) else item
    rule = alert.get("rule")
    if not isinstance(rule, dict):
        return WazuhProblem(index, "missing", "rule", {"field": "rule"})
    level = rule.get("level")
    if isinstance(level, str) and level.strip().isdigit():
        level = int(level.strip())
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 15:
        return WazuhProblem(index, "bad_level", "rule.level", {"value": str(level)[:20]})
    occurred = _moment(alert.get("timestamp"), received)
    if occurred is None:
        return WazuhProblem(index, "bad_moment", "timestamp", {"text": str(alert.get("timestamp"))[:40]})
    agent: dict[str, Any] = alert["agent"] if isinstance(alert.get("agent"), dict) else {}
    data: dict[str, Any] = alert["data"] if isinstance(alert.get("data"), dict) else {}
    groups = (
        [g for g in rule.get("groups") or [] if isinstance(g, str)][:20] if isinstance(rule.get("groups"), list) else []
    )
    description = _text(rule.get("description"), 1000)
    full_log = _text(alert.get("full_log"), MAX_MESSAGE)
    agent_name, agent_ip = _text(agent.get("name"), 255), address(agent.get("ip"))
    extra: dict[str, Any] = {"groups": groups, "level": level}
    for name, value in (
        ("location", alert.get("location")),
        ("decoder", (alert.get("decoder") or {}).get("name") if isinstance(alert.get("decoder"), dict) else None),
        ("agent_id", agent.get("id")),
        ("manager", (alert.get("manager") or {}).get("name") if isinstance(alert.get("manager"), dict) else None),
    ):
        if _text(value, 255):
            extra[name] = _text(value, 255)
    mitre = rule.get("mitre")
    if isinstance(mitre, dict) and isinstance(mitre.get("id"), list):
        extra["mitre"] = [str(m)[:16] for m in mitre["id"][:10]]
    vulnerability = data.get("vulnerability")
    if isinstance(vulnerability, dict) and _text(vulnerability.get("cve"), 64):
        extra["cve"] = _text(vulnerability.get("cve"), 64)
    rule_text = " ".join(p for p in (_text(rule.get("id"), 32), description) if p)
    try:
        raw = orjson.dumps(item).decode()
    except TypeError:
        raw = ""
    return Normalized(
        occurred_at=occurred,
        source_format="wazuh",
        raw=clean(raw, MAX_RAW),
        host=agent_name or agent_ip,
        app=_text((alert.get("decoder") or {}).get("name") if isinstance(alert.get("decoder"), dict) else "", 128),
        severity=wazuh_severity(level),
        category=categorise(" ".join(groups), description),
        rule=clean(rule_text, 255),
        src_ip=address(data.get("srcip")),
        src_port=port(data.get("srcport")),
        dst_ip=address(data.get("dstip")),
        dst_port=port(data.get("dstport")),
        message=full_log or description,
        extra=extra,
        hosts=tuple(h for h in (agent_name, agent_ip) if h),
    )
