"""Alert rules as data: check a definition, create, change, delete and list rules, load them from a TOML file.

A rule says what condition to watch (its kind and `params`), on what (an indicator, a feed, events), for which
subject (one, or every subject when none is named), how bad it is (severity), how long the condition must hold
before the alert fires (`for_minutes`), whom its alerts address (its agency, else the indicator's or feed's owner)
and what a firing alert does about an incident (`incident_mode`: none, manual — a button — or auto).

Every refusal is a `RuleInvalid` holding one `RuleProblem` per wrong field, each with a message in Vietnamese and
English (translations `alerts.rule_error.<code>`); nothing is stored then. Every change is audited.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.alerts.models import EVENT_CATEGORIES, INCIDENT_MODES, RULE_KINDS, SEVERITIES, AlertRule
from cityops.catalog.models import Indicator
from cityops.feeds.models import Feed
from cityops.geo.models import Subject
from cityops.i18n import both
from cityops.incidents.models import IncidentCategory

RULES_FILE = Path(__file__).parent / "data" / "rules.toml"
CODE = re.compile(r"[a-z0-9][a-z0-9_]{1,63}", re.ASCII)
OPERATORS = (">", ">=", "<", "<=")
FEED_CONDITIONS = ("late", "down", "trust_below")
INDICATOR_KINDS = ("threshold", "off_target", "change")
MAX_FOR_MINUTES = 7 * 24 * 60
MAX_WINDOW_MINUTES = 30 * 24 * 60
MAX_PERIODS = 100
MAX_NAME = 255
MAX_DESCRIPTION = 5000
# The parameters each kind takes: name → required.
KIND_PARAMS: dict[str, dict[str, bool]] = {
    "threshold": {"op": True, "value": True},
    "off_target": {"tolerance_pct": False},
    "change": {"periods": False, "op": True, "pct": False, "abs": False},
    "feed_health": {"condition": True, "level": False},
    "events": {
        "category": True,
        "type": False,
        "min_severity": False,
        "count": False,
        "window_minutes": False,
        "per_subject": False,
    },
}
# The fields of a rule a person sets (API and form names); `code` is fixed once created.
FIELDS = (
    "code",
    "name_vi",
    "name_en",
    "description",
    "kind",
    "indicator",
    "feed",
    "subject",
    "params",
    "severity",
    "for_minutes",
    "incident_mode",
    "incident_category",
    "agency",
    "enabled",
)


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rule: a code, the field it is about, and what to say."""

    code: str
    field: str
    params: dict[str, Any]

    @property
    def messages(self) -> tuple[str, str]:
        return both(f"alerts.rule_error.{self.code}", **self.params)

    @property
    def message_vi(self) -> str:
        return self.messages[0]

    @property
    def message_en(self) -> str:
        return self.messages[1]


class RuleInvalid(ValueError):
    """A rule that cannot be stored, with every problem found."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__(", ".join(f"{p.field}: {p.code}" for p in problems))
        self.problems = problems


class RuleNotFound(LookupError):
    """No rule with this code (that the caller may see)."""


class RuleExists(ValueError):
    """A rule with this code exists already."""


@dataclass
class _Check:
    problems: list[RuleProblem] = field(default_factory=list)

    def add(self, code: str, field_name: str, /, **params: Any) -> None:
        self.problems.append(RuleProblem(code, field_name, {k: _short(v) for k, v in params.items()}))


def _short(value: Any) -> Any:
    return value[:80] if isinstance(value, str) else value


def _text(value: Any) -> str:
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _number(check: _Check, params: dict[str, Any], name: str, *, low: float, high: float) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        check.add("not_a_number", f"params.{name}", param=name, text=str(raw))
        return None
    value = float(raw)
    if not math.isfinite(value) or not low <= value <= high:
        check.add("out_of_range", f"params.{name}", param=name, low=_plain(low), high=_plain(high))
        return None
    return value


def _integer(check: _Check, params: dict[str, Any], name: str, *, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        check.add("not_an_integer", f"params.{name}", param=name, text=str(raw))
        return None
    if not low <= raw <= high:
        check.add("out_of_range", f"params.{name}", param=name, low=low, high=high)
        return None
    return raw


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def check_params(kind: str, raw: Any) -> tuple[dict[str, Any], list[RuleProblem]]:
    """The kind's parameters, checked and normalised; the problems found."""
    check = _Check()
    if not isinstance(raw, dict):
        check.add("params_not_object", "params")
        return {}, check.problems
    allowed = KIND_PARAMS.get(kind, {})
    for name in sorted(raw):
        if name not in allowed:
            check.add("unknown_param", f"params.{str(name)[:40]}", param=str(name)[:40], kind=kind)
    params: dict[str, Any] = {}
    if kind in ("threshold", "change"):
        op = raw.get("op")
        if op is None or op == "":
            check.add("op_missing", "params.op")
        elif op not in OPERATORS:
            check.add("bad_operator", "params.op", op=str(op), allowed=" ".join(OPERATORS))
        else:
            params["op"] = op
    if kind == "threshold":
        value = _number(check, raw, "value", low=-1e15, high=1e15)
        if value is None and not any(p.field == "params.value" for p in check.problems):
            check.add("value_missing", "params.value")
        elif value is not None:
            params["value"] = _plain(value)
    elif kind == "off_target":
        tolerance = _number(check, raw, "tolerance_pct", low=0, high=1000)
        params["tolerance_pct"] = _plain(tolerance) if tolerance is not None else 0
    elif kind == "change":
        periods = _integer(check, raw, "periods", low=1, high=MAX_PERIODS)
        params["periods"] = periods if periods is not None else 1
        given = [name for name in ("pct", "abs") if raw.get(name) not in (None, "")]
        if len(given) != 1:
            check.add("pct_or_abs", "params.pct")
        else:
            amount = _number(check, raw, given[0], low=-1e15, high=1e15)
            if amount is not None:
                params[given[0]] = _plain(amount)
    elif kind == "feed_health":
        condition = raw.get("condition")
        if condition not in FEED_CONDITIONS:
            check.add(
                "bad_condition", "params.condition", condition=str(condition or ""), allowed=", ".join(FEED_CONDITIONS)
            )
        else:
            params["condition"] = condition
        level = _number(check, raw, "level", low=0, high=100)
        if condition == "trust_below":
            if level is None and not any(p.field == "params.level" for p in check.problems):
                check.add("level_missing", "params.level")
            elif level is not None:
                params["level"] = _plain(level)
    elif kind == "events":
        category = raw.get("category")
        if category not in EVENT_CATEGORIES:
            check.add(
                "bad_event_category",
                "params.category",
                category=str(category or ""),
                allowed=", ".join(EVENT_CATEGORIES),
            )
        else:
            params["category"] = category
        event_type = raw.get("type", "")
        if not isinstance(event_type, str) or len(event_type) > 64 or "\x00" in event_type:
            check.add("bad_event_type", "params.type")
        elif event_type.strip():
            params["type"] = event_type.strip()
        min_severity = raw.get("min_severity") or "info"
        if min_severity not in SEVERITIES:
            check.add("bad_severity", "params.min_severity", severity=str(min_severity), allowed=", ".join(SEVERITIES))
        else:
            params["min_severity"] = min_severity
        count = _integer(check, raw, "count", low=1, high=1_000_000)
        params["count"] = count if count is not None else 1
        window = _integer(check, raw, "window_minutes", low=1, high=MAX_WINDOW_MINUTES)
        params["window_minutes"] = window if window is not None else 60
        per_subject = raw.get("per_subject", False)
        if not isinstance(per_subject, bool):
            check.add("bad_event_type", "params.per_subject")
        elif per_subject:
            params["per_subject"] = True
    return params, check.problems


def _lookup(session: Session, model: Any, code: str) -> Any:
    return session.scalar(select(model).where(model.code == code))


def check_rule(session: Session, data: dict[str, Any], *, existing: AlertRule | None = None) -> dict[str, Any]:
    """The column values of a rule whose definition is `data` (on top of `existing` when changing one)."""
    check = _Check()
    current = rule_fields(session, existing) if existing is not None else {}
    merged = {**current, **data}
    values: dict[str, Any] = {}
    if existing is None:
        code = _text(merged.get("code"))
        if not CODE.fullmatch(code):
            check.add("invalid_code", "code", code=code)
        values["code"] = code
    name_vi = _text(merged.get("name_vi"))
    if not name_vi:
        check.add("name_missing", "name_vi")
    elif len(name_vi) > MAX_NAME:
        check.add("too_long", "name_vi", limit=MAX_NAME)
    name_en = _text(merged.get("name_en")) or name_vi
    if len(name_en) > MAX_NAME:
        check.add("too_long", "name_en", limit=MAX_NAME)
    description = merged.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        check.add("too_long", "description", limit=MAX_DESCRIPTION)
        description = ""
    values.update(name_vi=name_vi, name_en=name_en, description=description.replace("\x00", "").strip())
    kind = merged.get("kind")
    if kind not in RULE_KINDS:
        check.add("unknown_kind", "kind", kind=str(kind or ""), allowed=", ".join(RULE_KINDS))
        kind = ""
    values["kind"] = kind
    indicator_code = _text(merged.get("indicator"))
    values["indicator_id"] = None
    if kind in INDICATOR_KINDS:
        if not indicator_code:
            check.add("indicator_missing", "indicator")
        else:
            indicator = _lookup(session, Indicator, indicator_code)
            if indicator is None:
                check.add("unknown_indicator", "indicator", indicator=indicator_code)
            else:
                values["indicator_id"] = indicator.id
    elif indicator_code and kind:
        check.add("indicator_not_used", "indicator", kind=kind)
    feed_code = _text(merged.get("feed"))
    values["feed_id"] = None
    if feed_code:
        if kind != "feed_health":
            check.add("feed_not_used", "feed", kind=kind or "?")
        else:
            feed = _lookup(session, Feed, feed_code)
            if feed is None:
                check.add("unknown_feed", "feed", feed=feed_code)
            else:
                values["feed_id"] = feed.id
    subject_code = _text(merged.get("subject"))
    values["subject_id"] = None
    if subject_code:
        if kind == "feed_health":
            check.add("subject_not_used", "subject", kind=kind)
        else:
            subject = _lookup(session, Subject, subject_code)
            if subject is None:
                check.add("unknown_subject", "subject", subject=subject_code)
            else:
                values["subject_id"] = subject.id
    params, problems = check_params(kind, merged.get("params") or {}) if kind else ({}, [])
    check.problems.extend(problems)
    values["params"] = params
    severity = merged.get("severity") or "warning"
    if severity not in SEVERITIES:
        check.add("bad_severity", "severity", severity=str(severity), allowed=", ".join(SEVERITIES))
    values["severity"] = severity
    for_minutes = merged.get("for_minutes", 0)
    if for_minutes in (None, ""):
        for_minutes = 0
    if isinstance(for_minutes, float) and for_minutes.is_integer():
        for_minutes = int(for_minutes)
    if isinstance(for_minutes, bool) or not isinstance(for_minutes, int) or not 0 <= for_minutes <= MAX_FOR_MINUTES:
        check.add("bad_for_minutes", "for_minutes", high=MAX_FOR_MINUTES)
        for_minutes = 0
    values["for_minutes"] = for_minutes
    mode = merged.get("incident_mode") or "none"
    if mode not in INCIDENT_MODES:
        check.add("bad_incident_mode", "incident_mode", mode=str(mode), allowed=", ".join(INCIDENT_MODES))
    values["incident_mode"] = mode
    category_code = _text(merged.get("incident_category"))
    values["incident_category_id"] = None
    if category_code:
        category = _lookup(session, IncidentCategory, category_code)
        if category is None:
            check.add("unknown_category", "incident_category", category=category_code)
        else:
            values["incident_category_id"] = category.id
    agency_code = _text(merged.get("agency"))
    values["agency_id"] = None
    if agency_code:
        agency = _lookup(session, Agency, agency_code)
        if agency is None:
            check.add("unknown_agency", "agency", agency=agency_code)
        else:
            values["agency_id"] = agency.id
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        check.add("bad_enabled", "enabled")
        enabled = True
    values["enabled"] = enabled
    if check.problems:
        raise RuleInvalid(check.problems)
    return values


def _codes(session: Session, model: Any, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(tuple(row) for row in session.execute(select(model.id, model.code).where(model.id.in_(wanted))))


def rule_fields(session: Session, rule: AlertRule) -> dict[str, Any]:
    """A rule as its definition reads (codes, not ids): what check_rule takes back."""
    return rules_fields(session, [rule])[0]


def rules_fields(session: Session, rules: list[AlertRule]) -> list[dict[str, Any]]:
    """Several rules as their definitions read."""
    indicators = _codes(session, Indicator, (r.indicator_id for r in rules))
    feeds = _codes(session, Feed, (r.feed_id for r in rules))
    subjects = _codes(session, Subject, (r.subject_id for r in rules))
    categories = _codes(session, IncidentCategory, (r.incident_category_id for r in rules))
    agencies = _codes(session, Agency, (r.agency_id for r in rules))
    return [
        {
            "code": rule.code,
            "name_vi": rule.name_vi,
            "name_en": rule.name_en,
            "description": rule.description,
            "kind": rule.kind,
            "indicator": indicators.get(rule.indicator_id or 0, ""),
            "feed": feeds.get(rule.feed_id or 0, ""),
            "subject": subjects.get(rule.subject_id or 0, ""),
            "params": dict(rule.params or {}),
            "severity": rule.severity,
            "for_minutes": rule.for_minutes,
            "incident_mode": rule.incident_mode,
            "incident_category": categories.get(rule.incident_category_id or 0, ""),
            "agency": agencies.get(rule.agency_id or 0, ""),
            "enabled": rule.enabled,
        }
        for rule in rules
    ]


def rule_out(session: Session, rule: AlertRule) -> dict[str, Any]:
    """A rule for the API."""
    return rules_out(session, [rule])[0]


def rules_out(session: Session, rules: list[AlertRule]) -> list[dict[str, Any]]:
    """Rules for the API: the definition, and when each was made, changed and last evaluated."""
    return [
        {
            **fields,
            "created_by": rule.created_by,
            "created_at": rule.created_at.isoformat(),
            "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
            "last_evaluated_at": rule.last_evaluated_at.isoformat() if rule.last_evaluated_at else None,
        }
        for rule, fields in zip(rules, rules_fields(session, rules), strict=True)
    ]


def addressed_agency(session: Session, rule: AlertRule) -> int | None:
    """Whom a rule's alerts address when it names no feed: its agency, else its indicator's owner."""
    if rule.agency_id is not None:
        return rule.agency_id
    if rule.indicator_id is not None:
        return session.scalar(select(Indicator.owner_agency_id).where(Indicator.id == rule.indicator_id))
    if rule.feed_id is not None:
        return session.scalar(select(Feed.agency_id).where(Feed.id == rule.feed_id))
    return None


def may_see(session: Session, principal: Principal, rule: AlertRule) -> bool:
    """Province-wide roles see every rule; an agency sees the rules whose alerts address its subtree."""
    if principal.province_wide:
        return True
    agency_id = addressed_agency(session, rule)
    return agency_id is not None and agency_id in principal.agency_ids


def visible_rules(session: Session, principal: Principal) -> list[AlertRule]:
    """The rules the principal may see, by code."""
    rules = list(session.scalars(select(AlertRule).order_by(AlertRule.code)))
    return [rule for rule in rules if may_see(session, principal, rule)]


def get_rule(session: Session, code: str, principal: Principal | None = None) -> AlertRule:
    """The rule with this code (that the principal may see), or RuleNotFound."""
    rule = session.scalar(select(AlertRule).where(AlertRule.code == code[:64]))
    if rule is None or (principal is not None and not may_see(session, principal, rule)):
        raise RuleNotFound(code)
    return rule


def _audit_details(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in ("due_at",)}


def create_rule(session: Session, actor: Actor, now: datetime, data: dict[str, Any]) -> AlertRule:
    """Create a rule from its definition (checked); due at once."""
    values = check_rule(session, data)
    if session.scalar(select(AlertRule.id).where(AlertRule.code == values["code"])) is not None:
        raise RuleExists(values["code"])
    rule = AlertRule(**values, created_by=actor.label, created_at=now, updated_at=None, due_at=now, eval_owner="")
    session.add(rule)
    session.flush()
    audit(session, actor, "alert_rule.create", "alert_rule", rule.id, now, rule_fields(session, rule))
    return rule


def update_rule(session: Session, actor: Actor, now: datetime, code: str, changes: dict[str, Any]) -> bool:
    """Change the fields given; True when something changed (audited, the rule due at once)."""
    rule = get_rule(session, code)
    if "code" in changes and changes["code"] != rule.code:
        raise RuleInvalid([RuleProblem("code_fixed", "code", {})])
    before = rule_fields(session, rule)
    values = check_rule(session, {k: v for k, v in changes.items() if k != "code"}, existing=rule)
    changed = {name: value for name, value in values.items() if getattr(rule, name) != value}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(rule, name, value)
    rule.updated_at = now
    rule.due_at = now
    session.flush()
    after = rule_fields(session, rule)
    audit(
        session,
        actor,
        "alert_rule.update",
        "alert_rule",
        rule.id,
        now,
        {"code": rule.code, **{k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}},
    )
    return True


def delete_rule(session: Session, actor: Actor, now: datetime, code: str) -> None:
    """Delete a rule; its alerts go with it (their history too)."""
    rule = get_rule(session, code)
    details = rule_fields(session, rule)
    session.execute(delete(AlertRule).where(AlertRule.id == rule.id))
    audit(session, actor, "alert_rule.delete", "alert_rule", rule.id, now, details)


# --- the rules file -----------------------------------------------------------------------------------------


class RulesFileError(ValueError):
    """A rules file that cannot be read or holds a rule that is not valid; nothing was loaded."""


def read_rules_file(path: Path) -> list[dict[str, Any]]:
    """The rules of a TOML file: [[rule]] tables with the fields of a rule."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesFileError(f"{path.name}: {exc}") from exc
    rules = document.get("rule", [])
    if not isinstance(rules, list) or not all(isinstance(item, dict) for item in rules):
        raise RulesFileError(f"{path.name}: expected [[rule]] tables")
    return rules


def load_rules(session: Session, actor: Actor, now: datetime, path: Path | None = None) -> int:
    """Create or update (by code) the rules of a TOML file (the default rules when none); how many changed.

    Every rule is checked before any is stored: one bad rule refuses the file with the rule's code and problems.
    """
    path = path or RULES_FILE
    items = read_rules_file(path)
    unknown_fields = [(i, sorted(set(item) - set(FIELDS))) for i, item in enumerate(items)]
    for index, extra in unknown_fields:
        if extra:
            raise RulesFileError(f"{path.name}: rule {index + 1}: unknown field {extra[0]!r}")
    for index, item in enumerate(items):
        existing = session.scalar(select(AlertRule).where(AlertRule.code == str(item.get("code", ""))))
        try:
            check_rule(session, {k: v for k, v in item.items() if k != "code" or existing is None}, existing=existing)
        except RuleInvalid as exc:
            detail = "; ".join(f"{p.field}: {p.message_en}" for p in exc.problems)
            raise RulesFileError(f"{path.name}: rule {index + 1} ({item.get('code', '?')}): {detail}") from exc
    changed = 0
    for item in items:
        existing = session.scalar(select(AlertRule).where(AlertRule.code == str(item.get("code", ""))))
        if existing is None:
            create_rule(session, actor, now, item)
            changed += 1
        elif update_rule(session, actor, now, existing.code, {k: v for k, v in item.items() if k != "code"}):
            changed += 1
    return changed


def mark_all_due(session: Session, now: datetime, *, kind: str | None = None) -> None:
    """Make every enabled rule (of a kind) due now."""
    query = update(AlertRule).where(AlertRule.enabled.is_(True))
    if kind is not None:
        query = query.where(AlertRule.kind == kind)
    session.execute(query.values(due_at=now).execution_options(synchronize_session=False))
