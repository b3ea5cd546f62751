"""The map's layers (`/map/layers/<name>.geojson`) over the real HTTP stack on both databases: each holds what was
created (a tourist site, cameras per commune, a citizen report at its public point, an incident with a point, a
firing alert on a commune), the communes are shaded by an indicator's latest values, agencies see only theirs, and
no feature carries personal data."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.models import Agency, User
from cityops.accounts.service import SYSTEM, principal_for_user
from cityops.alerts import service as alerts_service
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feedback import service as feedback_service
from cityops.geo.models import Place, Subject
from cityops.incidents import service as incidents_service
from conftest import Backend, login, make_key

NAME, PHONE, EMAIL = "Trần Thị Mai", "0912345678", "mai.tran@example.vn"
PERSONAL = ("name", "phone", "email", "address", "contact", "description", "latitude", "longitude")


def _communes(database: Database) -> list[Subject]:
    with database.reading() as session:
        rows = session.scalars(
            select(Subject).where(Subject.kind == "commune", Subject.latitude.is_not(None)).order_by(Subject.code)
        ).all()
        session.expunge_all()
    return list(rows)[:3]


def _layer(client: TestClient, name: str, **params: str) -> dict[str, Any]:
    answer = client.get(f"/map/layers/{name}.geojson", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    assert document["type"] == "FeatureCollection"
    for feature in document["features"]:  # never personal data, whatever the layer
        assert not set(feature["properties"]) & set(PERSONAL), feature["properties"]
        assert NAME not in str(feature) and PHONE not in str(feature) and EMAIL not in str(feature)
    return document


def _seed(backend: Backend, client: TestClient, clock: FrozenClock, communes: list[Subject]) -> dict[str, Any]:
    database = backend.database
    now = clock()
    first, second, third = communes
    key = make_key(
        database,
        now,
        agency="cong_an_tinh",
        feed="camera_map",
        indicators=["antt.camera", "antt.camera_truc_tuyen"],
    )
    moment = "2026-11-27T09:55:00+07:00"
    values = {first.code: (4, 4), second.code: (5, 2), third.code: (3, 0)}
    batch = [
        {"indicator": code, "subject": commune, "period": moment, "value": value}
        for commune, (total, online) in values.items()
        for code, value in (("antt.camera", total), ("antt.camera_truc_tuyen", online))
    ]
    answer = client.post("/api/v1/observations", headers=key.headers, json={"observations": batch})
    assert answer.status_code == 200, answer.text
    with database.writing() as session:
        session.add(
            Place(
                code="den_cuong",
                kind="tourist_site",
                name_vi="Đền Cuông",
                name_en="Cuong Temple",
                latitude=first.latitude,
                longitude=first.longitude,
                commune_id=first.id,
                address="Xóm 1",
                attributes={"phone": PHONE},
                created_at=now,
                updated_at=now,
            )
        )
        report = feedback_service.submit_report(
            session,
            backend.settings,
            now,
            feedback_service.Submission(
                category_code="o_ga_hu_hong_duong",
                description=f"Ổ gà lớn trước nhà chị {NAME}, gọi {PHONE}.",
                latitude=first.latitude,
                longitude=first.longitude,
                subject_code=first.code,
                place_text="Đường Lê Lợi",
                contact=feedback_service.ContactIn(name=NAME, phone=PHONE, email=EMAIL),
                attributes={"muc_do": "high"},
            ),
        )
        officer = session.scalar(select(User).where(User.username == "officer_a"))
        assert officer is not None
        health = incidents_service.create_incident(
            session,
            principal_for_user(session, officer),
            SYSTEM,
            now,
            title="Ngộ độc thực phẩm tại trường",
            severity="high",
            agency_code="so_y_te",
            latitude=18.68,
            longitude=105.68,
        )
        so_y_te = session.scalar(select(Agency.id).where(Agency.code == "so_y_te"))
        so_gd_dt = session.scalar(select(Agency.id).where(Agency.code == "so_gd_dt"))
        alerts_service.fire(
            session, "map:yte", now, kind="threshold", title_vi="Sốt xuất huyết tăng", title_en="Dengue up",
            severity="critical", agency_id=so_y_te, subject_id=second.id,
        )  # fmt: skip
        alerts_service.fire(
            session, "map:gd", now, kind="threshold", title_vi="Học sinh nghỉ học", title_en="Pupils absent",
            severity="warning", agency_id=so_gd_dt, subject_id=third.id,
        )  # fmt: skip
        return {"report": report.id, "code": report.tracking_code, "citizen_incident": report.incident_id,
                "health": health.id}  # fmt: skip


def test_each_layer_holds_what_was_created_and_only_what_the_user_may_see(
    backend: Backend, client: TestClient, clock: FrozenClock, personas: dict[str, str]
) -> None:
    communes = _communes(backend.database)
    made = _seed(backend, client, clock, communes)
    first, second, third = communes

    login(client, "operator")
    sites = _layer(client, "tourist_sites")["features"]
    assert [(f["properties"]["code"], f["properties"]["name_vi"]) for f in sites] == [("den_cuong", "Đền Cuông")]
    assert sites[0]["geometry"]["coordinates"] == [round(first.longitude or 0, 6), round(first.latitude or 0, 6)]

    cameras = {f["properties"]["code"]: f["properties"] for f in _layer(client, "cameras")["features"]}
    assert {code: (p["online"], p["total"], p["status"]) for code, p in cameras.items()} == {
        first.code: (4, 4, "online"),
        second.code: (2, 5, "partial"),
        third.code: (0, 3, "offline"),
    }
    assert cameras[first.code]["link"] == f"/boards/antt?subject={first.code}"

    shaded = _layer(client, "communes", indicator="antt.ty_le_camera_truc_tuyen")
    by_code = {f["properties"]["code"]: f["properties"] for f in shaded["features"]}
    assert len(by_code) >= 100  # every commune is a point, with or without a value
    assert [by_code[c.code]["value"] for c in communes] == [100.0, 40.0, 0.0]
    assert [by_code[c.code]["value_text"] for c in communes] == ["100", "40", "0"]
    assert by_code[first.code]["shade"] > by_code[second.code]["shade"] > by_code[third.code]["shade"]
    assert [c["label"] for c in shaded["classes"]] == ["0", "40", "100"]
    assert shaded["indicator"]["domain"] == "antt"
    assert by_code[second.code]["link"] == f"/boards/antt?subject={second.code}"
    raw = _layer(client, "communes", indicator="antt.camera")  # a stored value, Vietnamese number format
    assert {f["properties"]["code"]: f["properties"]["value"] for f in raw["features"]}[second.code] == 5.0
    assert _layer(client, "communes")["classes"] == []

    reports = _layer(client, "reports")["features"]
    assert [(f["properties"]["tracking_code"], f["properties"]["status"]) for f in reports] == [(made["code"], "open")]
    assert reports[0]["properties"]["link"] == f"/feedback/reports/{made['report']}"
    assert _layer(client, "reports", status="closed")["features"] == []

    incidents = {f["properties"]["id"]: f for f in _layer(client, "incidents")["features"]}
    assert set(incidents) == {made["health"], made["citizen_incident"]}
    health = incidents[made["health"]]
    assert health["geometry"]["coordinates"] == [105.68, 18.68]
    assert (health["properties"]["status"], health["properties"]["severity"]) == ("new", "high")
    assert health["properties"]["link"] == f"/incidents/{made['health']}"

    alerts = {f["properties"]["subject"]: f["properties"] for f in _layer(client, "alerts")["features"]}
    assert set(alerts) == {second.code, third.code}
    assert alerts[second.code]["severity"] == "critical" and alerts[second.code]["link"].startswith("/alerts/")
    assert set(_layer(client, "alerts", severity="warning")["features"][0]["properties"].items()) >= {
        ("subject", third.code)
    }

    for bad, params, status, code in (
        ("reports", {"status": "lost"}, 422, "map_unknown_filter"),
        ("alerts", {"severity": "fatal"}, 422, "map_unknown_filter"),
        ("communes", {"indicator": "antt.khong_co"}, 404, "unknown_indicator"),
        ("rivers", {}, 404, "not_found"),
    ):
        answer = client.get(f"/map/layers/{bad}.geojson", params={**params, "lang": "vi"})
        assert answer.status_code == status and answer.json()["code"] == code, answer.text

    # An agency's officer (Sở Y tế): its incident and alert only; no citizen report of a commune, no restricted
    # camera indicators of the police.
    client.cookies.clear()
    login(client, "officer_a")
    assert [f["properties"]["id"] for f in _layer(client, "incidents")["features"]] == [made["health"]]
    assert [f["properties"]["subject"] for f in _layer(client, "alerts")["features"]] == [second.code]
    assert _layer(client, "reports")["features"] == []
    assert _layer(client, "cameras")["features"] == []
    assert client.get("/map/layers/communes.geojson", params={"indicator": "antt.camera"}).status_code == 404
    assert len(_layer(client, "tourist_sites")["features"]) == 1

    client.cookies.clear()
    login(client, "citizen")
    assert client.get("/map/layers/reports.geojson").status_code == 403


def test_the_map_page_in_both_languages_with_its_filters(client: TestClient, personas: dict[str, str]) -> None:
    assert client.get("/map", follow_redirects=False).status_code in (303, 307, 302)
    login(client, "leader")
    page = client.get("/map")
    assert page.status_code == 200
    assert "Bản đồ" in page.text and "/static/vendor/leaflet.js" in page.text and "Tô màu xã, phường" in page.text
    english = client.get("/map", params={"lang": "en", "indicator": "antt.khong_co", "severity": "fatal"})
    assert english.status_code == 422
    assert "Shade communes by indicator" in english.text
    assert "There is no commune-level indicator with this code" in english.text
    assert "Unknown severity" in english.text
    assert '<option value="antt.camera"' in english.text  # a leader sees restricted indicators province-wide
