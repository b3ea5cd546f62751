"""The shapes of Open311 GeoReport v2 answers: the JSON documents and the same in XML (the specification's element
names: <services>/<service>, <service_definition>, <service_requests>/<request>, <errors>/<error>, <discovery>).

Pure functions: they take what the queries found and give the documents; nothing here reads the database.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import orjson

from cityops.clock import LOCAL_TZ

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# The element each item of a list is written as, in XML.
LIST_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 cannot hold (control characters other than tab, line feed, carriage return).
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def moment(value: datetime | None) -> str | None:
    """A W3C date-time in the province's time: 2026-11-27T10:00:00+07:00."""
    if value is None:
        return None
    return value.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return XML_INVALID.sub("", str(value))


def _fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in value.items():
            _append(element, name, child)
    else:
        element.text = _text(value)


def _append(parent: ElementTree.Element, name: str, value: Any) -> None:
    element = ElementTree.SubElement(parent, name)
    if isinstance(value, list):
        item_name = LIST_ITEMS.get(name, "item")
        for item in value:
            _fill(ElementTree.SubElement(element, item_name), item)
    else:
        _fill(element, value)


def to_xml(root: str, document: Any) -> bytes:
    """The document as XML under the root element: a list becomes one child per item (LIST_ITEMS names them), a
    dict one child per key, true/false in lower case, None an empty element."""
    element = ElementTree.Element(root)
    if isinstance(document, list):
        item_name = LIST_ITEMS[root]
        for item in document:
            _fill(ElementTree.SubElement(element, item_name), item)
    else:
        _fill(element, document)
    body: bytes = ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)
    return body


def render(fmt: str, root: str, document: Any) -> bytes:
    """The document in the format: JSON as it is, XML under the root element."""
    if fmt == "xml":
        return to_xml(root, document)
    return orjson.dumps(document)


def errors_document(errors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The specification's error list: [{"code": 400, "description": "…"}]."""
    return [{"code": code, "description": description} for code, description in errors]


def name_of(row: Any, field: str, lang: str) -> str:
    """A row's field in the language (name_vi / name_en), Vietnamese when the English one is empty."""
    vietnamese = str(getattr(row, f"{field}_vi", "") or "")
    english = str(getattr(row, f"{field}_en", "") or "")
    return (english or vietnamese) if lang == "en" else vietnamese


def _localised(item: dict[str, Any], field: str, lang: str) -> str:
    vietnamese = str(item.get(f"{field}_vi") or item.get(field) or "")
    english = str(item.get(f"{field}_en") or "")
    return (english or vietnamese) if lang == "en" else vietnamese


def service_out(category: Any, lang: str) -> dict[str, Any]:
    """One entry of GET services: an active feedback category."""
    return {
        "service_code": category.code,
        "service_name": name_of(category, "name", lang),
        "description": name_of(category, "description", lang),
        "metadata": bool(category.attributes),
        "type": "realtime",
        "keywords": category.keywords or "",
        "group": category.group or "",
    }


def definition_out(category: Any, lang: str) -> dict[str, Any]:
    """GET services/{code}: the category's attributes, in their order (1 first)."""
    attributes = []
    for index, attribute in enumerate(category.attributes or [], start=1):
        if not isinstance(attribute, dict):
            continue
        values = [
            {"key": str(value.get("key", "")), "name": _localised(value, "name", lang)}
            for value in attribute.get("values") or []
            if isinstance(value, dict)
        ]
        out: dict[str, Any] = {
            "variable": bool(attribute.get("variable", True)),
            "code": str(attribute.get("code", "")),
            "datatype": str(attribute.get("datatype", "string")),
            "required": bool(attribute.get("required", False)),
            "datatype_description": _localised(attribute, "datatype_description", lang),
            "order": int(attribute.get("order") or index),
            "description": _localised(attribute, "description", lang),
        }
        if values:
            out["values"] = values
        attributes.append(out)
    attributes.sort(key=lambda item: item["order"])
    return {"service_code": category.code, "attributes": attributes}


def address_of(place_text: str, commune: str) -> str:
    """The public address: the place text the citizen gave (street or landmark, no house number) and the commune."""
    return ", ".join(part for part in (place_text.strip(), commune.strip()) if part)
