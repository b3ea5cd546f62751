"""Connectors: one sub-package per kind (push, http_pull, spreadsheet, mqtt), each with the same files —
`connector.py` (the class, registered by kind) and `schema.py` (its settings, secrets as SecretStr).

The registry maps a kind to its class. Built-in kinds register exactly as a third-party one would: a package that
declares an entry point in the group "cityops.connectors" is imported by `load_connectors`, and its module calls
`register` on import.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cityops.connectors.base import Connector

BUILTIN_KINDS = ("push", "http_pull", "spreadsheet", "mqtt")
_REGISTRY: dict[str, type[Connector]] = {}
_loaded = False


def register(cls: type[Connector]) -> type[Connector]:
    """Register a connector class under its kind (a class decorator)."""
    existing = _REGISTRY.get(cls.kind)
    if existing is not None and existing is not cls:
        raise ValueError(f"connector kind {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def load_connectors() -> None:
    """Import the built-in kinds and those of installed packages (entry point group "cityops.connectors")."""
    global _loaded
    if _loaded:
        return
    for kind in BUILTIN_KINDS:
        importlib.import_module(f"cityops.connectors.{kind}.connector")
    for entry in entry_points(group="cityops.connectors"):
        entry.load()
    _loaded = True


def connector_class(kind: str) -> type[Connector]:
    """The class of a kind; KeyError when no such kind is registered."""
    load_connectors()
    return _REGISTRY[kind]


def kinds() -> list[str]:
    """Every registered kind, built-in first."""
    load_connectors()
    return [*[kind for kind in BUILTIN_KINDS if kind in _REGISTRY], *sorted(set(_REGISTRY) - set(BUILTIN_KINDS))]
