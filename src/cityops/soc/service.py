"""Information systems, storing security events, the security overview and vulnerabilities.

- A system (`information_systems`) is registered with its owner agency, security level 1–5 (Decree 85/2016/NĐ-CP),
  hosts (names, addresses or networks such as `10.1.2.0/24`) and website; it is also a subject of kind "entity",
  code `system.<code>`, under the province.
- `store_events` writes a batch of normalised events with one executemany, matching each to a system by its host
  name, the other names it carries (CEF `dvchost`, Wazuh `agent.ip`, the parts of `host/address`), then the
  sender's address. Events at band `high` or above of a known system are mirrored into `events` (category
  "security", severity high → warning, critical → critical, subject = the system's, agency = its owner), so the
  `events` alert rules count them; the event rules are made due once per batch.
- Agencies see only their own systems (and their events, vulnerabilities, checks); province-wide roles see all.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from cityops import live
from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.alerts.models import Event
from cityops.alerts.rules import mark_all_due
from cityops.clock import LOCAL_TZ
from cityops.geo.models import Subject
from cityops.i18n import both
from cityops.soc.models import (
    SEVERITY_LEVELS,
    VULN_STATUSES,
    InformationSystem,
    SecurityEvent,
    Vulnerability,
    WebsiteCheck,
)
from cityops.soc.normal import Normalized, band_rank

SECURITY_EVENTS = cast(Table, SecurityEvent.__table__)
EVENTS = cast(Table, Event.__table__)
SUBJECT_PREFIX = "system."
CODE = re.compile(r"^[a-z0-9][a-z0-9_]{1,63}$")
HOST = re.compile(r"^[A-Za-z0-9._:/-]{1,255}$")
MAX_HOSTS = 50
MIRROR_FROM = "high"  # events at this band or above become `events` rows
MIRROR_SEVERITY = {"high": "warning", "critical": "critical"}
SOC_AGENCY = "so_khcn"  # the provincial SOC's agency: its keys may report events of every system
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


class SocError(ValueError):
    """A refused change: code (a problem code) with parameters; `problems` lists each wrong field."""

    def __init__(self, code: str, problems: list[dict[str, Any]] | None = None, **params: Any) -> None:
        super().__init__(code)
        self.code, self.params, self.problems = code, params, problems or []


def field_problem(code: str, where: str, /, **params: Any) -> dict[str, Any]:
    """One wrong field: its code, the field, and the message in both languages."""
    message_vi, message_en = both(f"soc.error.{code}", **params)
    return {"code": code, "field": where, "message_vi": message_vi, "message_en": message_en}


# --- systems ------------------------------------------------------------------------------------------------


def visible_systems(session: Session, principal: Principal) -> list[InformationSystem]:
    query = select(InformationSystem).order_by(InformationSystem.code)
    if not principal.province_wide:
        query = query.where(InformationSystem.owner_agency_id.in_(sorted(principal.agency_ids) or [0]))
    return list(session.scalars(query))


def may_see(principal: Principal, system: InformationSystem) -> bool:
    return principal.province_wide or (
        system.owner_agency_id is not None and system.owner_agency_id in principal.agency_ids
    )


def get_system(session: Session, principal: Principal, code: str) -> InformationSystem:
    system = session.scalar(select(InformationSystem).where(InformationSystem.code == code[:64]))
    if system is None or not may_see(principal, system):
        raise SocError("soc_system_not_found", system=code[:64])
    return system


def _check_hosts(raw: Any, problems: list[dict[str, Any]]) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[\s,;]+", raw) if part]
    if not isinstance(raw, list) or len(raw) > MAX_HOSTS:
        problems.append(field_problem("bad_hosts", "hosts", limit=MAX_HOSTS))
        return []
    hosts: list[str] = []
    for item in raw:
        text = item.strip() if isinstance(item, str) else ""
        if not HOST.match(text):
            problems.append(field_problem("bad_host", "hosts", host=str(item)[:64]))
            continue
        if "/" in text:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                problems.append(field_problem("bad_host", "hosts", host=text[:64]))
                continue
        if text.lower() not in hosts:
            hosts.append(text.lower())
    return hosts


def _system_values(session: Session, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    problems: list[dict[str, Any]] = []
    values: dict[str, Any] = {}

    def text(name: str, limit: int, required: bool = False) -> None:
        if name not in data and not creating:
            return
        value = data.get(name)
        value = "" if value is None else value
        if not isinstance(value, str) or "\x00" in value or len(value.strip()) > limit:
            problems.append(field_problem("bad_text", name, field=name, limit=limit))
        elif required and not value.strip():
            problems.append(field_problem("missing", name, field=name))
        else:
            values[name] = value.strip()

    if creating:
        code = data.get("code")
        if not isinstance(code, str) or not CODE.match(code.strip()):
            problems.append(field_problem("bad_code", "code", code=str(code or "")[:64]))
        else:
            values["code"] = code.strip()
    text("name_vi", 255, required=True)
    text("name_en", 255)
    text("description", 5000)
    text("website_expected_text", 255)
    if "website_url" in data or creating:
        url = data.get("website_url") or ""
        if (
            not isinstance(url, str)
            or len(url) > 2000
            or (url.strip() and not re.match(r"^https?://[^\s/]+", url.strip()))
        ):
            problems.append(field_problem("bad_url", "website_url", url=str(url)[:80]))
        else:
            values["website_url"] = url.strip()
    if "security_level" in data or creating:
        level = data.get("security_level", 2)
        if isinstance(level, str) and level.strip().isdigit():
            level = int(level.strip())
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
            problems.append(field_problem("bad_level", "security_level", value=str(level)[:10]))
        else:
            values["security_level"] = level
    if "hosts" in data or creating:
        values["hosts"] = _check_hosts(data.get("hosts"), problems)
    if "owner_agency" in data or creating:
        agency_code = data.get("owner_agency") or ""
        if not isinstance(agency_code, str) or not agency_code.strip():
            problems.append(field_problem("missing", "owner_agency", field="owner_agency"))
        else:
            agency_id = session.scalar(select(Agency.id).where(Agency.code == agency_code.strip()[:64]))
            if agency_id is None:
                problems.append(field_problem("unknown_agency", "owner_agency", agency=agency_code[:64]))
            else:
                values["owner_agency_id"] = agency_id
    if problems:
        raise SocError(
            "soc_system_invalid", problems, reason_vi=problems[0]["message_vi"], reason_en=problems[0]["message_en"]
        )
    return values


def _subject_for(session: Session, code: str, name_vi: str, name_en: str) -> int:
    subject = session.scalar(select(Subject).where(Subject.code == SUBJECT_PREFIX + code))
    if subject is None:
        province = session.scalar(select(Subject.id).where(Subject.kind == "province"))
        subject = Subject(
            code=SUBJECT_PREFIX + code,
            kind="entity",
            name_vi=name_vi,
            name_en=name_en or name_vi,
            search_key=code,
            parent_id=province,
        )
        session.add(subject)
        session.flush()
    else:
        subject.name_vi, subject.name_en = name_vi, name_en or name_vi
    return subject.id


def create_system(session: Session, actor: Actor, now: datetime, data: dict[str, Any]) -> InformationSystem:
    values = _system_values(session, data, creating=True)
    if session.scalar(select(InformationSystem.id).where(InformationSystem.code == values["code"])) is not None:
        raise SocError("soc_system_exists", system=values["code"])
    subject_id = _subject_for(session, values["code"], values["name_vi"], values.get("name_en", ""))
    system = InformationSystem(
        **values,
        subject_id=subject_id,
        created_at=now,
        updated_at=now,
        next_check_at=now if values.get("website_url") else None,
    )
    session.add(system)
    session.flush()
    audit(session, actor, "soc.system.create", "information_system", system.id, now, {"code": system.code})
    return system


def update_system(
    session: Session, actor: Actor, principal: Principal, now: datetime, code: str, data: dict[str, Any]
) -> InformationSystem:
    system = get_system(session, principal, code)
    values = _system_values(session, data, creating=False)
    changed = {name: value for name, value in values.items() if getattr(system, name) != value}
    for name, value in changed.items():
        setattr(system, name, value)
    if "website_url" in changed or "website_expected_text" in changed:
        system.website_content_hash, system.website_status = "", "unknown"
        system.next_check_at = now if system.website_url else None
    if "name_vi" in changed or "name_en" in changed:
        _subject_for(session, system.code, system.name_vi, system.name_en)
    system.updated_at = now
    session.flush()
    if changed:
        audit(
            session,
            actor,
            "soc.system.update",
            "information_system",
            system.id,
            now,
            {"code": system.code, "fields": sorted(changed)},
        )
    return system


def system_out(system: InformationSystem, agencies: dict[int, str]) -> dict[str, Any]:
    return {
        "code": system.code,
        "name_vi": system.name_vi,
        "name_en": system.name_en,
        "owner_agency": agencies.get(system.owner_agency_id or 0, ""),
        "security_level": system.security_level,
        "hosts": list(system.hosts or []),
        "description": system.description,
        "website_url": system.website_url,
        "website_expected_text": system.website_expected_text,
        "website_status": system.website_status,
        "website_status_since": system.website_status_since.isoformat() if system.website_status_since else None,
        "website_checked_at": system.website_checked_at.isoformat() if system.website_checked_at else None,
        "subject": SUBJECT_PREFIX + system.code,
    }


def agency_codes(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Agency.id, Agency.code)).all())


# --- matching events to systems -------------------------------------------------------------------------------


@dataclass
class SystemIndex:
    """Host names and addresses → system, for one batch (rebuilt per batch: systems are few)."""

    names: dict[str, tuple[int, int | None, int | None]]  # → (system id, subject id, owner agency id)
    networks: list[tuple[Any, tuple[int, int | None, int | None]]]

    @classmethod
    def load(cls, session: Session, owners: frozenset[int] | None = None) -> SystemIndex:
        names: dict[str, tuple[int, int | None, int | None]] = {}
        networks: list[tuple[Any, tuple[int, int | None, int | None]]] = []
        rows = session.execute(
            select(
                InformationSystem.id,
                InformationSystem.subject_id,
                InformationSystem.owner_agency_id,
                InformationSystem.hosts,
            ).order_by(InformationSystem.id)
        )
        for system_id, subject_id, owner_id, hosts in rows:
            if owners is not None and owner_id not in owners:
                continue
            entry = (system_id, subject_id, owner_id)
            for host in hosts or []:
                text = str(host).lower()
                if "/" in text:
                    try:
                        networks.append((ipaddress.ip_network(text, strict=False), entry))
                    except ValueError:
                        continue
                else:
                    names.setdefault(text, entry)
        return cls(names, networks)

    def match(self, *candidates: str) -> tuple[int, int | None, int | None] | None:
        for candidate in candidates:
            if not candidate:
                continue
            found = self.names.get(candidate.lower())
            if found is not None:
                return found
        if self.networks:
            for candidate in candidates:
                try:
                    ip = ipaddress.ip_address(candidate)
                except ValueError:
                    continue
                for network, entry in self.networks:
                    if ip.version == network.version and ip in network:
                        return entry
        return None


@dataclass
class Incoming:
    """An event to store: the normalised event, how it came and from whom."""

    event: Normalized
    transport: str
    peer: str = ""


def peer_host(peer: str) -> str:
    """The address of `host:port` or `[v6]:port` (an address without a port as it is)."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    return peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer


def owners_for(session: Session, principal: Principal) -> frozenset[int] | None:
    """The owners whose systems a reporting principal may attribute events to (None: every system)."""
    if principal.province_wide or principal.agency_id is None:
        return None
    soc = session.scalar(select(Agency.id).where(Agency.code == SOC_AGENCY))
    if principal.agency_id == soc:
        return None
    return principal.agency_ids


def store_events(
    session: Session, items: Sequence[Incoming], now: datetime, *, owners: frozenset[int] | None = None
) -> dict[str, int]:
    """Write a batch of events (one executemany), mirror the serious ones into `events`; what was done."""
    if not items:
        return {"stored": 0, "mirrored": 0, "matched": 0}
    index = SystemIndex.load(session, owners)
    rows: list[dict[str, Any]] = []
    mirrors: list[dict[str, Any]] = []
    matched = 0
    threshold = band_rank(MIRROR_FROM)
    for item in items:
        event = item.event
        peer = peer_host(item.peer)
        host = event.host
        found = index.match(host, *event.hosts, peer)
        system_id = found[0] if found else None
        matched += found is not None
        level = event.level
        rows.append(
            {
                "system_id": system_id,
                "occurred_at": event.occurred_at,
                "received_at": now,
                "host": host[:255],
                "app": event.app[:128],
                "severity": event.severity,
                "level": level,
                "category": event.category[:64],
                "rule": event.rule[:255],
                "src_ip": event.src_ip[:64],
                "src_port": event.src_port,
                "dst_ip": event.dst_ip[:64],
                "dst_port": event.dst_port,
                "message": event.message,
                "source_format": event.source_format,
                "transport": item.transport[:8],
                "peer": item.peer[:64],
                "raw": event.raw,
                "extra": event.extra,
            }
        )
        if found is not None and band_rank(level) >= threshold:
            mirrors.append(
                {
                    "category": "security",
                    "type": (event.category or "other")[:64],
                    "severity": MIRROR_SEVERITY.get(level, "critical"),
                    "source": "soc",
                    "agency_id": found[2],
                    "subject_id": found[1],
                    "title": (event.rule or event.message)[:500],
                    "details": {"host": host[:255], "src_ip": event.src_ip, "level": level},
                    "occurred_at": min(event.occurred_at, now),
                    "received_at": now,
                }
            )
    session.execute(insert(SECURITY_EVENTS), rows)
    if mirrors:
        session.execute(insert(EVENTS), mirrors)
        mark_all_due(session, now, kind="events")
        live.publish(session, "security", {"kind": "events", "serious": len(mirrors), "at": now.isoformat()})
    return {"stored": len(rows), "mirrored": len(mirrors), "matched": matched}


# --- the overview -------------------------------------------------------------------------------------------


def overview(session: Session, principal: Principal, now: datetime, window: str = "24h") -> dict[str, Any]:
    """What the security page shows: events by band and by system, top sources, open vulnerabilities, websites."""
    span = WINDOWS.get(window, WINDOWS["24h"])
    systems = visible_systems(session, principal)
    ids = [s.id for s in systems]
    conditions: list[Any] = [SecurityEvent.occurred_at >= now - span, SecurityEvent.occurred_at <= now]
    if not principal.province_wide:
        conditions.append(SecurityEvent.system_id.in_(ids or [0]))
    by_level = Counter(
        dict(
            session.execute(
                select(SecurityEvent.level, func.count()).where(*conditions).group_by(SecurityEvent.level)
            ).all()
        )
    )
    per_system: dict[int | None, Counter[str]] = {}
    for system_id, level, count in session.execute(
        select(SecurityEvent.system_id, SecurityEvent.level, func.count())
        .where(*conditions)
        .group_by(SecurityEvent.system_id, SecurityEvent.level)
    ):
        per_system.setdefault(system_id, Counter())[level] = count
    sources = session.execute(
        select(SecurityEvent.src_ip, func.count().label("n"), func.max(SecurityEvent.severity))
        .where(*conditions, SecurityEvent.src_ip != "")
        .group_by(SecurityEvent.src_ip)
        .order_by(func.count().desc(), SecurityEvent.src_ip)
        .limit(10)
    ).all()
    open_vulns: dict[int, Counter[str]] = {}
    for system_id, level, count in session.execute(
        select(Vulnerability.system_id, Vulnerability.level, func.count())
        .where(Vulnerability.status == "open", Vulnerability.system_id.in_(ids or [0]))
        .group_by(Vulnerability.system_id, Vulnerability.level)
    ):
        open_vulns.setdefault(system_id, Counter())[level] = count
    rows: list[dict[str, Any]] = []
    for system in systems:
        levels = per_system.get(system.id, Counter())
        vulns = open_vulns.get(system.id, Counter())
        rows.append(
            {
                "system": system,
                "levels": {level: levels.get(level, 0) for level in SEVERITY_LEVELS},
                "total": sum(levels.values()),
                "serious": levels.get("high", 0) + levels.get("critical", 0),
                "open_vulnerabilities": sum(vulns.values()),
                "vulnerability_levels": dict(vulns),
            }
        )
    rows.sort(key=lambda row: (-int(row["serious"]), -int(row["total"]), str(row["system"].code)))
    unmatched = per_system.get(None, Counter()) if principal.province_wide else Counter()
    return {
        "window": window if window in WINDOWS else "24h",
        "by_level": {level: by_level.get(level, 0) for level in SEVERITY_LEVELS},
        "total": sum(by_level.values()),
        "systems": rows,
        "unmatched": sum(unmatched.values()),
        "top_sources": [{"src_ip": ip, "count": n, "max_severity": sev} for ip, n, sev in sources],
        "open_vulnerabilities": sum(sum(c.values()) for c in open_vulns.values()),
        "websites": [s for s in systems if s.website_url],
    }


def overview_out(data: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in data.items() if k not in ("systems", "websites")},
        "systems": [
            {**{k: v for k, v in row.items() if k != "system"}, "code": row["system"].code} for row in data["systems"]
        ],
        "websites": [
            {
                "system": s.code,
                "url": s.website_url,
                "status": s.website_status,
                "since": s.website_status_since.isoformat() if s.website_status_since else None,
                "checked_at": s.website_checked_at.isoformat() if s.website_checked_at else None,
            }
            for s in data["websites"]
        ],
    }


def list_events(
    session: Session, principal: Principal, *, system: str = "", level: str = "", limit: int = 100, offset: int = 0
) -> list[SecurityEvent]:
    query = select(SecurityEvent).order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc())
    if system:
        query = query.where(SecurityEvent.system_id == get_system(session, principal, system).id)
    elif not principal.province_wide:
        ids = [s.id for s in visible_systems(session, principal)]
        query = query.where(SecurityEvent.system_id.in_(ids or [0]))
    if level in SEVERITY_LEVELS:
        query = query.where(SecurityEvent.level.in_(SEVERITY_LEVELS[SEVERITY_LEVELS.index(level) :]))
    return list(session.scalars(query.limit(limit).offset(offset)))


def event_out(event: SecurityEvent, codes: dict[int, str]) -> dict[str, Any]:
    return {
        "id": event.id,
        "system": codes.get(event.system_id or 0),
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "host": event.host,
        "app": event.app,
        "severity": event.severity,
        "level": event.level,
        "category": event.category,
        "rule": event.rule,
        "src_ip": event.src_ip,
        "src_port": event.src_port,
        "dst_ip": event.dst_ip,
        "dst_port": event.dst_port,
        "message": event.message,
        "format": event.source_format,
        "transport": event.transport,
        "peer": event.peer,
        "raw": event.raw,
    }


# --- vulnerabilities -------------------------------------------------------------------------------------------

VULN_LEVELS = ("low", "medium", "high", "critical")
VULN_FIELDS = ("system", "reference", "title", "level", "cvss", "status", "found_at")


def _cvss_level(cvss: float) -> str:
    if cvss >= 9:
        return "critical"
    if cvss >= 7:
        return "high"
    if cvss >= 4:
        return "medium"
    return "low"


def _vuln_values(
    session: Session, principal: Principal, item: Any, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    if not isinstance(item, dict):
        return {}, [field_problem("not_object", "")]
    values: dict[str, Any] = {}
    code = item.get("system")
    system = None
    if not isinstance(code, str) or not code.strip():
        problems.append(field_problem("missing", "system", field="system"))
    else:
        try:
            system = get_system(session, principal, code.strip())
        except SocError:
            problems.append(field_problem("unknown_system", "system", system=code[:64]))
    reference = item.get("reference") or item.get("cve") or item.get("id")
    if not isinstance(reference, str) or not reference.strip() or len(reference.strip()) > 64 or "\x00" in reference:
        problems.append(field_problem("bad_reference", "reference"))
    else:
        values["reference"] = reference.strip()
    title = item.get("title") or item.get("name") or ""
    if not isinstance(title, str) or len(title) > 500 or "\x00" in title:
        problems.append(field_problem("bad_text", "title", field="title", limit=500))
    else:
        values["title"] = title.strip()
    cvss = item.get("cvss")
    if cvss not in (None, ""):
        try:
            cvss_value = float(str(cvss).replace(",", "."))
            if not 0 <= cvss_value <= 10:
                raise ValueError
            values["cvss"] = cvss_value
        except ValueError:
            problems.append(field_problem("bad_cvss", "cvss", value=str(cvss)[:20]))
    level = str(item.get("level") or item.get("severity") or "").strip().lower()
    if level:
        if level not in VULN_LEVELS:
            problems.append(field_problem("bad_vuln_level", "level", value=level[:20], allowed=", ".join(VULN_LEVELS)))
        else:
            values["level"] = level
    elif "cvss" in values:
        values["level"] = _cvss_level(values["cvss"])
    status = str(item.get("status") or "").strip().lower()
    if status:
        if status not in VULN_STATUSES:
            problems.append(field_problem("bad_status", "status", value=status[:20], allowed=", ".join(VULN_STATUSES)))
        else:
            values["status"] = status
    found = item.get("found_at")
    if found not in (None, ""):
        try:
            text = str(found).strip()
            if "/" in text:
                day, month, year = text.split("/")
                moment = datetime(int(year), int(month), int(day), tzinfo=LOCAL_TZ)
            elif len(text) == 10:
                parsed = date.fromisoformat(text)
                moment = datetime(parsed.year, parsed.month, parsed.day, tzinfo=LOCAL_TZ)
            else:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=LOCAL_TZ)
            if moment > now + timedelta(days=1):
                raise ValueError
            values["found_at"] = moment
        except (ValueError, TypeError):
            problems.append(field_problem("bad_date", "found_at", text=str(found)[:40]))
    if system is not None:
        values["system_id"] = system.id
    return values, problems


def save_vulnerabilities(
    session: Session, actor: Actor, principal: Principal, now: datetime, items: Sequence[Any], *, source: str
) -> dict[str, Any]:
    """Create or update (by system and reference) each good finding; say why each bad one was not kept."""
    created = updated = 0
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        values, problems = _vuln_values(session, principal, item, now)
        if problems:
            rejected.extend({"index": index, **p} for p in problems[:1])
            continue
        current = session.scalar(
            select(Vulnerability).where(
                Vulnerability.system_id == values["system_id"], Vulnerability.reference == values["reference"]
            )
        )
        if current is None:
            status = values.get("status", "open")
            current = Vulnerability(
                system_id=values["system_id"],
                reference=values["reference"],
                title=values.get("title", ""),
                level=values.get("level", "medium"),
                cvss=values.get("cvss"),
                status=status,
                found_at=values.get("found_at", now),
                fixed_at=now if status == "fixed" else None,
                source=source,
                created_at=now,
                updated_at=now,
            )
            session.add(current)
            created += 1
        else:
            for name in ("title", "level", "cvss", "found_at"):
                if name in values and values[name] != "":
                    setattr(current, name, values[name])
            if "status" in values and values["status"] != current.status:
                current.status = values["status"]
                current.fixed_at = now if values["status"] == "fixed" else None
            current.updated_at = now
            updated += 1
        session.flush()
        audit(
            session,
            actor,
            "soc.vulnerability.save",
            "vulnerability",
            current.id,
            now,
            {"reference": current.reference, "status": current.status, "source": source},
        )
    return {"created": created, "updated": updated, "accepted": created + updated, "rejected": rejected}


def set_vulnerability_status(
    session: Session, actor: Actor, principal: Principal, now: datetime, vuln_id: int, status: str
) -> Vulnerability:
    vuln = session.get(Vulnerability, vuln_id) if 0 < vuln_id < 2**31 else None
    system = session.get(InformationSystem, vuln.system_id) if vuln is not None else None
    if vuln is None or system is None or not may_see(principal, system):
        raise SocError("soc_vulnerability_not_found", vulnerability=str(vuln_id)[:20])
    if status not in VULN_STATUSES:
        raise SocError("soc_vulnerability_invalid", reason_vi=status[:20], reason_en=status[:20])
    if vuln.status != status:
        audit(
            session,
            actor,
            "soc.vulnerability.status",
            "vulnerability",
            vuln.id,
            now,
            {"from": vuln.status, "to": status},
        )
        vuln.status, vuln.updated_at = status, now
        vuln.fixed_at = now if status == "fixed" else None
    return vuln


def read_findings(data: bytes, filename: str = "") -> list[Any]:
    """Findings from an uploaded file: CSV (header row with the VULN_FIELDS names) or JSON
    (`{"findings": [...]}` or a list); SocError when it is neither."""
    text = data.decode("utf-8-sig", "replace")
    stripped = text.lstrip()
    if filename.lower().endswith(".json") or stripped.startswith(("{", "[")):
        try:
            document = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise SocError("soc_import_invalid", reason=str(exc)[:120]) from exc
        if isinstance(document, dict):
            document = document.get("findings")
        if not isinstance(document, list):
            raise SocError("soc_import_invalid", reason='{"findings": [...]}')
        return document
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "system" not in [f.strip().lower() for f in reader.fieldnames]:
        raise SocError("soc_import_invalid", reason="CSV: " + ",".join(VULN_FIELDS))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def list_vulnerabilities(
    session: Session, principal: Principal, *, status: str = "", system: str = ""
) -> list[tuple[Vulnerability, str]]:
    query = (
        select(Vulnerability, InformationSystem.code)
        .join(InformationSystem, InformationSystem.id == Vulnerability.system_id)
        .order_by(Vulnerability.status, Vulnerability.found_at.desc(), Vulnerability.id)
    )
    if not principal.province_wide:
        query = query.where(InformationSystem.owner_agency_id.in_(sorted(principal.agency_ids) or [0]))
    if status:
        query = query.where(Vulnerability.status == status)
    if system:
        query = query.where(InformationSystem.code == system)
    return [(v, code) for v, code in session.execute(query.limit(1000)).all()]


def vulnerability_out(vuln: Vulnerability, system_code: str) -> dict[str, Any]:
    return {
        "id": vuln.id,
        "system": system_code,
        "reference": vuln.reference,
        "title": vuln.title,
        "level": vuln.level,
        "cvss": vuln.cvss,
        "status": vuln.status,
        "found_at": vuln.found_at.isoformat(),
        "fixed_at": vuln.fixed_at.isoformat() if vuln.fixed_at else None,
        "source": vuln.source,
    }


def recent_checks(session: Session, system_id: int, limit: int = 20) -> list[WebsiteCheck]:
    return list(
        session.scalars(
            select(WebsiteCheck)
            .where(WebsiteCheck.system_id == system_id)
            .order_by(WebsiteCheck.checked_at.desc(), WebsiteCheck.id.desc())
            .limit(limit)
        )
    )
