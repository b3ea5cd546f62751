"""Seeding for the board tests: a health feed with a key, values for the province and three communes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.db.engine import Database
from cityops.geo.models import Subject
from conftest import AgencyKey, make_key

PROVINCE = "40"
HEALTH_INDICATORS = [
    "yte.luot_kham_ngoai_tru",  # day, sum: the trend's length follows the range
    "yte.tre_tiem_chung_day_du",
    "yte.tre_tron_1_tuoi",  # … the parts of the immunisation rate (month, ratio; target 95, warning 90, critical 85)
    "yte.ty_le_bao_phu_bhyt",  # instant ratio, target 95: stored 96 at the province → on target
    "yte.giuong_benh",
    "yte.cong_suat_giuong",  # lower is better, warning 85, critical 95: stored 97 → off target
    "yte.co_so_kcb",  # instant, sent ten days ago → stale
]
# (vaccinated, children) per commune, by month: rates 98 %, 88 %, 80 % in November.
IMMUNISED = {0: (98, 100), 1: (88, 100), 2: (80, 100)}


def health_key(database: Database, now: Any) -> AgencyKey:
    return make_key(database, now, agency="so_y_te", feed="yte_portal", indicators=HEALTH_INDICATORS)


def communes(database: Database, how_many: int = 3) -> list[tuple[str, str, str]]:
    """(code, Vietnamese name, English name) of the first communes of the province, in code order."""
    with database.reading() as session:
        query = (
            select(Subject.code, Subject.name_vi, Subject.name_en)
            .where(Subject.kind == "commune")
            .order_by(Subject.code)
            .limit(how_many)
        )
        return [(row.code, row.name_vi, row.name_en) for row in session.execute(query)]


def health_items(commune_codes: list[str], today: date = date(2026, 11, 27)) -> list[dict[str, Any]]:
    """The values the board tests and the browser test show."""

    def item(indicator: str, subject: str, period: str, value: float) -> dict[str, Any]:
        return {"indicator": indicator, "subject": subject, "period": period, "value": value}

    items = [
        item("yte.luot_kham_ngoai_tru", PROVINCE, (today - timedelta(days=n)).isoformat(), 1000 + n) for n in range(40)
    ]
    for index, code in enumerate(commune_codes):
        vaccinated, children = IMMUNISED[index]
        for month, shift in (("2026-10", 5), ("2026-11", 0)):
            items.append(item("yte.tre_tiem_chung_day_du", code, month, vaccinated - shift))
            items.append(item("yte.tre_tron_1_tuoi", code, month, children))
    items += [
        item("yte.ty_le_bao_phu_bhyt", PROVINCE, "2026-11-27T02:00:00Z", 96),
        item("yte.cong_suat_giuong", PROVINCE, "2026-11-27T02:00:00Z", 97),
        item("yte.co_so_kcb", PROVINCE, "2026-11-17T02:00:00Z", 512),
    ]
    return items


def seed(client: TestClient, key: AgencyKey, items: list[dict[str, Any]]) -> None:
    answer = client.post("/api/v1/observations", headers=key.headers, json={"observations": items})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected_count"] == 0, answer.text
