"""Seeded series with known shapes for the decision-support tests (frozen now: 27/11/2026 10:00 in Hà Nội)."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.db.engine import Database
from cityops.geo.models import Subject
from conftest import AgencyKey, make_key

PROVINCE = "40"
SPIKE = "hcc.ho_so_tiep_nhan"  # month, sum: one commune's October 2026 is three times its usual
SEASONAL = "dulich.tong_luot_khach"  # month, sum, province: summer doubles every year; target 11,000,000
SHIFT = "hcc.ho_so_tre_han"  # month, sum, lower is better: one commune from 10 to 25 since July 2026
LINEAR = "ktxh.doanh_nghiep_thanh_lap_moi"  # month, sum, target 2,500: 100, 110, … 190 from January to October
CEILING = "ktxh.chi_so_gia_tieu_dung"  # month, mean, lower is better, ceiling 104.5
SILENT = "ktxh.thu_ngan_sach"  # month, sum: January to July only
RATE = "hcc.ty_le_dung_han"  # ratio of the two below; target 99
RATE_PARTS = ("hcc.ho_so_dung_han", "hcc.ho_so_giai_quyet")
ONLINE_PARTS = ("hcc.ho_so_tiep_nhan_truc_tuyen", "hcc.ho_so_tiep_nhan")
SATISFIED_PARTS = ("hcc.danh_gia_hai_long", "hcc.danh_gia")
RESTRICTED = "antt.ty_le_camera_truc_tuyen"
RESTRICTED_PARTS = ("antt.camera_truc_tuyen", "antt.camera")
SEASON = {6: 2.0, 7: 2.2, 8: 2.0}  # summer months' factor on the tourist series

ALL = [
    SPIKE,
    SEASONAL,
    SHIFT,
    LINEAR,
    CEILING,
    SILENT,
    *RATE_PARTS,
    ONLINE_PARTS[0],
    *SATISFIED_PARTS,
    *RESTRICTED_PARTS,
]


def noise(index: int) -> float:
    """A small deterministic wobble in [−3 %, +3 %]."""
    return 0.03 * math.sin(index * 2.1 + 0.4)


def months(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    year, month = first
    out = []
    while (year, month) <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def communes(database: Database, how_many: int = 3) -> list[str]:
    with database.reading() as session:
        query = select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code).limit(how_many)
        return list(session.scalars(query))


def item(indicator: str, subject: str, period: str, value: float) -> dict[str, Any]:
    return {"indicator": indicator, "subject": subject, "period": period, "value": round(value, 3)}


def anomaly_items(places: list[str]) -> list[dict[str, Any]]:
    """Three series with one known anomaly each, 2022-11 to 2026-10."""
    items = []
    span = months((2022, 11), (2026, 10))
    for c, code in enumerate(places):
        base = 200 + 50 * c
        for i, period in enumerate(span):
            value = base * (1 + noise(i + 7 * c))
            if c == 0 and period == "2026-10":
                value = 3 * base
            items.append(item(SPIKE, code, period, value))
            late = 10 * (1 + noise(i + 3 * c))
            if c == 1 and period >= "2026-07":
                late = 25 * (1 + noise(i))
            items.append(item(SHIFT, code, period, late))
    for i, period in enumerate(span):
        month = int(period[5:])
        items.append(item(SEASONAL, PROVINCE, period, 500_000 * SEASON.get(month, 1.0) * (1 + noise(i))))
    return items


def seasonal_projection_items() -> list[dict[str, Any]]:
    """The tourist series for 2025 (whole year) and 2026 (January to October), 10 % up on 2025, no noise."""
    items = []
    for period in months((2025, 1), (2026, 10)):
        month, year = int(period[5:]), int(period[:4])
        factor = 1.1 if year == 2026 else 1.0
        items.append(item(SEASONAL, PROVINCE, period, 800_000 * SEASON.get(month, 1.0) * factor))
    return items


def progress_items() -> list[dict[str, Any]]:
    items = []
    for i, period in enumerate(months((2026, 1), (2026, 10))):
        items.append(item(LINEAR, PROVINCE, period, 100 + 10 * i))
        items.append(item(CEILING, PROVINCE, period, 103 + 0.1 * (i % 2)))
    for period in months((2026, 1), (2026, 7)):
        items.append(item(SILENT, PROVINCE, period, 2000))
    return items


def rate_items(places: list[str]) -> list[dict[str, Any]]:
    """On-time, online and satisfaction parts per commune for September and October 2026.

    On-time rates: September 95, 97, 99; October 99, 95, 97 (communes 0, 1, 2)."""
    on_time = {"2026-09": (95, 97, 99), "2026-10": (99, 95, 97)}
    online = (80, 60, 70)
    satisfied = (90, 100, 80)
    items = []
    for period, rates in on_time.items():
        for c, code in enumerate(places):
            items.append(item(RATE_PARTS[0], code, period, rates[c]))
            items.append(item(RATE_PARTS[1], code, period, 100))
            items.append(item(ONLINE_PARTS[0], code, period, online[c]))
            items.append(item(ONLINE_PARTS[1], code, period, 100))
            items.append(item(SATISFIED_PARTS[0], code, period, satisfied[c]))
            items.append(item(SATISFIED_PARTS[1], code, period, 100))
    return items


def key(database: Database, now: Any, feed: str = "insights_seed") -> AgencyKey:
    return make_key(database, now, agency="ubnd_tinh", feed=feed, indicators=ALL)


def seed(client: TestClient, agency_key: AgencyKey, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 5000):
        answer = client.post(
            "/api/v1/observations", headers=agency_key.headers, json={"observations": items[start : start + 5000]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected_count"] == 0, answer.text
