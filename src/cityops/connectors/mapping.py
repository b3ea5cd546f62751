"""A declarative mapping from a JSON document (an API's answer, an MQTT message) to observation items.

    {
      "records": "data.items",                       dotted path to the list of records ("" = the document)
      "subject": "ma_don_vi",                         a field: a dotted path in the record …
      "period": {"path": "ngay", "format": "dd/mm/yyyy"},
      "dimensions": {"channel": {"value": "online"}},  … or a constant, or a level of the MQTT topic
      "source_ref": "id",
      "observations": [                               one record may give several observations
        {"indicator": {"value": "hcc.ho_so_tiep_nhan"}, "value": "so_tiep_nhan"},
        {"indicator": {"value": "hcc.ho_so_dung_han"}, "value": {"path": "so_dung_han", "scale": 1}}
      ]
    }

A field may also translate codes ("map": {"NA01": "40001"}), scale a number ("scale": 0.001) and read numbers
written as text (Vietnamese or English style, see cityops.connectors.values). A period's "format" is "auto" (any
form of cityops.connectors.values.period_text), "dd/mm/yyyy" (only that, optionally with a local time), "epoch_s"
or "epoch_ms" (seconds or milliseconds since 1970, an instant).

A record whose field is missing or unreadable becomes one rejection (which record, which field, why) and the other
records are kept. A document without its list of records is MappingFailed: the source changed its structure.
A records path holding null is read as no records (some systems answer null rather than [] when nothing is new).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityops.connectors.values import parse_date_text, parse_number, period_text
from cityops.i18n import both
from cityops.observations.service import Rejection

PERIOD_FORMATS = ("auto", "dd/mm/yyyy", "epoch_s", "epoch_ms")
VALUE_FORMATS = ("auto", "number")
_MISSING = object()
MISSING = _MISSING  # what dig answers when there is nothing at the path
_DAY_FIRST = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$", re.ASCII)


class FieldRule(BaseModel):
    """Where one field's value comes from: a path in the record, a constant, or a level of the MQTT topic."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    value: Any = None
    topic: int | None = Field(default=None, ge=0, le=20)
    format: str = "auto"
    map: dict[str, str] | None = None
    scale: float | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldRule:
        sources = [self.path is not None, self.value is not None, self.topic is not None]
        if sum(sources) != 1:
            raise ValueError("a field takes exactly one of path, value or topic")
        if self.format not in PERIOD_FORMATS + VALUE_FORMATS:
            raise ValueError(f"format is one of {', '.join(PERIOD_FORMATS + VALUE_FORMATS)}")
        return self


def _as_rule(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class OutputRule(BaseModel):
    """One observation a record gives: its indicator and its value (and, optionally, its own dimensions)."""

    model_config = ConfigDict(extra="forbid")

    indicator: FieldRule
    value: FieldRule
    dimensions: dict[str, FieldRule] = Field(default_factory=dict)

    _rules = field_validator("indicator", "value", mode="before")(_as_rule)

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimension_rules(cls, value: Any) -> Any:
        return {name: _as_rule(rule) for name, rule in value.items()} if isinstance(value, dict) else value


class Mapping(BaseModel):
    """How the records of a document become observations."""

    model_config = ConfigDict(extra="forbid")

    records: str = ""
    subject: FieldRule
    period: FieldRule
    dimensions: dict[str, FieldRule] = Field(default_factory=dict)
    source_ref: FieldRule | None = None
    observations: list[OutputRule] = Field(min_length=1, max_length=50)

    _rules = field_validator("subject", "period", "source_ref", mode="before")(_as_rule)

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimension_rules(cls, value: Any) -> Any:
        return {name: _as_rule(rule) for name, rule in value.items()} if isinstance(value, dict) else value


class MappingFailed(ValueError):
    """The document itself does not have the shape the mapping expects (no list of records where it should be)."""


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path ("a.b.0.c"); MISSING when there is none."""
    current = document
    if not path:
        return current
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def records_of(mapping: Mapping, document: Any) -> list[Any]:
    """The records of a document; MappingFailed when the path does not lead to a list (or one object)."""
    found = dig(document, mapping.records)
    if found is _MISSING:
        raise MappingFailed(f"no {mapping.records!r} in the document")
    if found is None and mapping.records:
        return []
    if isinstance(found, dict):
        return [found]
    if not isinstance(found, list):
        raise MappingFailed(f"{mapping.records or 'the document'} is not a list of records")
    return found


class _FieldProblem(Exception):
    def __init__(self, code: str, field: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.field, self.params = code, field, params


def _read(rule: FieldRule, record: Any, topic_levels: list[str], name: str) -> Any:
    if rule.value is not None:
        raw = rule.value
    elif rule.topic is not None:
        if rule.topic >= len(topic_levels):
            raise _FieldProblem("mapping_missing", name, path=f"topic[{rule.topic}]")
        raw = topic_levels[rule.topic]
    else:
        assert rule.path is not None
        raw = dig(record, rule.path)
        if raw is _MISSING or (raw is None and name != "value"):
            raise _FieldProblem("mapping_missing", name, path=rule.path)
    if rule.map is not None and raw is not None:
        key = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
        if key not in rule.map:
            raise _FieldProblem("mapping_unmapped", name, value=key[:60])
        raw = rule.map[key]
    return raw


def _period(rule: FieldRule, raw: Any) -> str:
    try:
        if rule.format in ("epoch_s", "epoch_ms"):
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise TypeError("not a number of seconds")
            seconds = float(raw) / (1000 if rule.format == "epoch_ms" else 1)
            return datetime.fromtimestamp(seconds, UTC).isoformat()
        if rule.format == "dd/mm/yyyy":
            if not isinstance(raw, str) or not _DAY_FIRST.match(raw.strip()):
                raise ValueError("not dd/mm/yyyy")
            return parse_date_text(raw)
        return period_text(raw)
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        raise _FieldProblem("mapping_unreadable", "period", value=str(raw)[:60]) from exc


def _value(rule: FieldRule, raw: Any) -> Any:
    if raw is None:
        return None
    number: Any = raw
    if isinstance(raw, str):
        try:
            number = parse_number(raw)
        except ValueError as exc:
            raise _FieldProblem("mapping_unreadable", "value", value=raw[:60]) from exc
    if rule.scale is not None and isinstance(number, int | float) and not isinstance(number, bool):
        # 12 significant digits: 0.1234 × 100 is 12.34, not 12.340000000000002.
        number = float(f"{number * rule.scale:.12g}")
    return number


def apply(
    mapping: Mapping, document: Any, *, topic: str = "", first_index: int = 0
) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """The observation items of a document, and a rejection for each record that cannot be read.

    Rejections carry the record's number (from first_index) so that a report can say which record failed.
    """
    items: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    levels = topic.split("/") if topic else []
    for number, record in enumerate(records_of(mapping, document), start=first_index):
        try:
            subject = str(_read(mapping.subject, record, levels, "subject"))
            period = _period(mapping.period, _read(mapping.period, record, levels, "period"))
            shared = {
                name: str(_read(rule, record, levels, f"dimensions.{name}"))
                for name, rule in mapping.dimensions.items()
            }
            source_ref = (
                str(_read(mapping.source_ref, record, levels, "source_ref"))[:255] if mapping.source_ref else ""
            )
            made = []
            for output in mapping.observations:
                dimensions = {**shared}
                dimensions.update(
                    {
                        name: str(_read(rule, record, levels, f"dimensions.{name}"))
                        for name, rule in output.dimensions.items()
                    }
                )
                item: dict[str, Any] = {
                    "indicator": str(_read(output.indicator, record, levels, "indicator")),
                    "subject": subject,
                    "period": period,
                    "value": _value(output.value, _read(output.value, record, levels, "value")),
                }
                if item["value"] is None:
                    item["null_reason"] = "nguồn gửi giá trị rỗng (null) / null in source"
                if dimensions:
                    item["dimensions"] = dimensions
                if source_ref:
                    item["source_ref"] = source_ref
                made.append(item)
        except _FieldProblem as problem:
            vi, en = both(f"item.{problem.code}", record=number, field=problem.field, **problem.params)
            rejected.append(Rejection(number, problem.code, vi, en, problem.field, record=record))
            continue
        items.extend(made)
    return items, rejected
