"""Helpers for the tests of derived values: seed commune and province values, read them back per subject."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.db.engine import Database
from cityops.geo.models import Subject
from conftest import AgencyKey

PROVINCE = "40"
RATE = "hcc.ty_le_dung_han"  # ratio: 100 × on time / resolved
ON_TIME = "hcc.ho_so_dung_han"
RESOLVED = "hcc.ho_so_giai_quyet"
RECEIVED = "hcc.ho_so_tiep_nhan"  # sum


def communes(database: Database, how_many: int) -> list[str]:
    """The codes of the first communes of the province, in code order."""
    with database.reading() as session:
        query = select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code).limit(how_many)
        return list(session.scalars(query))


def commune_count(database: Database) -> int:
    """How many communes and wards the province has (130 for Nghệ An)."""
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Subject).where(Subject.kind == "commune")) or 0)


def observation(indicator: str, subject: str, value: float | None, period: str = "2026-10", **extra: Any) -> dict:
    return {"indicator": indicator, "subject": subject, "period": period, "value": value, **extra}


def seed(client: TestClient, key: AgencyKey, *items: dict[str, Any]) -> None:
    """Send a batch; every item must be stored."""
    answer = client.post("/api/v1/observations", headers=key.headers, json={"observations": list(items)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected_count"] == 0, answer.text


def seed_rates(
    client: TestClient, key: AgencyKey, parts: dict[str, tuple[float, float]], period: str = "2026-10"
) -> None:
    """On-time and resolved dossiers per subject: {subject: (on time, resolved)}."""
    items = []
    for subject, (on_time, resolved) in parts.items():
        items.append(observation(ON_TIME, subject, on_time, period))
        items.append(observation(RESOLVED, subject, resolved, period))
    seed(client, key, *items)


def values(client: TestClient, headers: dict[str, str], indicator: str, **params: Any) -> dict[str, Any]:
    """GET an indicator's values for a period; must be a 200."""
    answer = client.get(f"/api/v1/indicators/{indicator}/values", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    assert page["total"] == len(page["items"])
    return page


def by_subject(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["subject"]: item for item in page["items"]}
