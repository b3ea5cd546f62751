"""The camera registry: API and no-JS forms, CSV import with bad rows, who sees which camera, the audit log, secrets."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops import crypto
from cityops.accounts import service as accounts
from cityops.accounts.models import AuditEntry
from cityops.cameras.models import Camera
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.models import Subject
from conftest import PASSWORD, csrf_header, login

VINH = {"latitude": 18.6796, "longitude": 105.6813}


def camera_body(code: str = "nga_tu_ga", **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name_vi": "Ngã tư Ga Vinh",
        "name_en": "Vinh Station crossroads",
        **VINH,
        "commune": "16681",
        "owner": "cong_an_tinh",
        "stream_url": "rtsp://10.0.0.5:554/stream1",
        "snapshot_url": "http://10.0.0.5/snapshot.jpg",
        "username": "admin",
        "password": "mật-khẩu-camera",
        "tags": ["giao_thong", "analyze"],
        **extra,
    }


def police_officer(database: Database, clock: FrozenClock) -> None:
    with database.writing() as session:
        accounts.create_user(
            session, accounts.SYSTEM, clock(), username="canbo_ca", password=PASSWORD, role="officer",
            agency_code="cong_an_tinh",
        )  # fmt: skip


def test_register_by_api_keeps_secrets_and_checks_every_field(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    login(client, "operator")
    headers = csrf_header(client, app)
    created = client.post("/api/v1/cameras", json=camera_body(), headers=headers)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["credentials_set"] is True and answer["stream_kind"] == "rtsp" and answer["commune"] == "16681"
    assert "mật-khẩu-camera" not in created.text and "password" not in answer
    with database.reading() as session:
        camera = session.scalar(select(Camera).where(Camera.code == "nga_tu_ga"))
        assert camera is not None
        assert "mật-khẩu-camera" not in camera.credentials
        key = app.state.parts.settings.resolved_secret_key
        assert crypto.decrypt_json(key, camera.credentials)["password"] == "mật-khẩu-camera"
        subject = session.get(Subject, camera.subject_id)
        assert subject is not None and subject.code == "camera.nga_tu_ga" and subject.kind == "entity"
        actions = [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "camera"))]
        assert actions == ["camera.create"]
        assert "mật-khẩu-camera" not in str(session.scalars(select(AuditEntry.details)).all())

    bad = client.post(
        "/api/v1/cameras",
        json=camera_body(
            "nga_tu_ga", latitude=21.03, longitude=105.85, stream_url="ftp://x/y", owner="khong_co", tags="Bad Tag!"
        ),
        headers=headers,
    )
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["code"] == "camera_invalid"
    fields = {e["field"]: e for e in problem["errors"]}
    assert {"latitude", "stream_url", "owner", "tags"} <= set(fields)
    assert (
        "ngoài tỉnh" in fields["latitude"]["message_vi"] and "outside the province" in fields["latitude"]["message_en"]
    )
    taken = client.post("/api/v1/cameras", json=camera_body(), headers=headers)
    assert taken.status_code == 422 and taken.json()["errors"][0]["code"] == "code_taken"
    in_url = client.post(
        "/api/v1/cameras", json=camera_body("b", stream_url="rtsp://u:p@10.0.0.6/s", password=""), headers=headers
    )
    assert in_url.json()["errors"][0]["code"] == "credentials_in_url"

    disabled = client.patch("/api/v1/cameras/nga_tu_ga", json={"enabled": False}, headers=headers)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert client.get("/api/v1/cameras/nga_tu_ga").json()["uptime_24h"] is None
    with database.reading() as session:
        actions = [
            e.action
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.entity_type == "camera").order_by(AuditEntry.id)
            )
        ]
    assert actions == ["camera.create", "camera.disable"]


def test_who_sees_which_camera(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    police_officer(database, clock)
    login(client, "operator")
    assert client.post("/api/v1/cameras", json=camera_body(), headers=csrf_header(client, app)).status_code == 201
    client.cookies.clear()

    login(client, "officer_b")  # education: not theirs
    assert client.get("/api/v1/cameras").json()["cameras"] == []
    assert client.get("/api/v1/cameras/nga_tu_ga").status_code == 404
    assert client.get("/cameras/nga_tu_ga/snapshot.jpg").status_code == 404
    assert client.get("/cameras/nga_tu_ga/live").status_code == 404
    assert client.get("/cameras/nga_tu_ga").status_code == 404
    client.cookies.clear()

    login(client, "leader")  # reads the registry, never the video
    assert [c["code"] for c in client.get("/api/v1/cameras").json()["cameras"]] == ["nga_tu_ga"]
    assert client.get("/cameras/nga_tu_ga/snapshot.jpg").status_code == 403
    assert client.get("/cameras/nga_tu_ga/live").status_code == 403
    page = client.get("/cameras")
    assert page.status_code == 200 and "data-camera-thumb" not in page.text
    assert client.post("/api/v1/cameras", json=camera_body("x"), headers=csrf_header(client, app)).status_code == 403
    client.cookies.clear()

    login(client, "canbo_ca")  # the police's own officer
    assert client.get("/api/v1/cameras/nga_tu_ga").status_code == 200
    page = client.get("/cameras")
    assert "data-camera-thumb" in page.text and 'id="camera-new"' not in page.text
    assert client.patch("/api/v1/cameras/nga_tu_ga", json={"enabled": False}).status_code == 403


CSV = (
    "Mã,Tên,Vĩ độ,Kinh độ,Xã/Phường,Cơ quan quản lý,Luồng video,Ảnh chụp,Tên đăng nhập,Mật khẩu,Nhãn\n"
    "cam_01,Cầu Bến Thủy,18.6555,105.7034,,cong_an_tinh,rtsp://10.1.1.1/s,,admin,bí-mật,giao_thong\n"
    'cam_02,Quảng trường,"18,6740",105.6920,16681,,http://10.1.1.2/video.mjpg,http://10.1.1.2/snap.jpg,,,\n'
    "cam_03,Ở Hà Nội,21.03,105.85,,cong_an_tinh,rtsp://10.1.1.3/s,,,,\n"
    "CAM 04,Mã sai,18.67,105.69,,cong_an_tinh,rtsp://10.1.1.4/s,,,,\n"
    "cam_05,Không có nguồn,18.67,105.69,,cong_an_tinh,,,,,\n"
    "cam_06,Xã lạ,18.67,105.69,Xã Không Có,cong_an_tinh,rtsp://10.1.1.6/s,,,,\n"
)


def test_csv_import_keeps_good_rows_and_explains_bad_ones(
    client: TestClient, app: Any, personas: dict[str, str], database: Database
) -> None:
    login(client, "operator")
    headers = {**csrf_header(client, app), "Content-Type": "text/csv"}
    answer = client.post("/api/v1/cameras/import", content=CSV.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["received"] == 6 and sorted(report["created"]) == ["cam_01", "cam_02"]
    rejected = {(r["row"], r["field"], r["code"]) for r in report["rejected"]}
    assert (4, "latitude", "outside_province") in rejected
    assert (5, "code", "bad_code") in rejected
    assert (6, "stream_url", "no_source") in rejected
    assert (7, "commune", "unknown_commune") in rejected
    assert all(r["message_vi"] and r["message_en"] for r in report["rejected"])
    cameras = {c["code"]: c for c in client.get("/api/v1/cameras").json()["cameras"]}
    assert cameras["cam_01"]["credentials_set"] and cameras["cam_02"]["stream_kind"] == "mjpeg"
    assert cameras["cam_02"]["commune"] == "16681" and cameras["cam_01"]["commune"]  # nearest commune

    again = client.post(
        "/api/v1/cameras/import",
        content=b"code;name;latitude;longitude;tags\ncam_01;Cau Ben Thuy moi;18.6555;105.7034;giao_thong analyze\n",
        headers=headers,
    ).json()
    assert again["updated"] == ["cam_01"]
    assert client.get("/api/v1/cameras/cam_01").json()["tags"] == ["giao_thong", "analyze"]
    assert client.get("/api/v1/cameras/cam_01").json()["credentials_set"] is True  # not cleared by omission
    bad_file = client.post("/api/v1/cameras/import", content="x".encode("utf-16"), headers=headers)
    assert bad_file.status_code == 422 and bad_file.json()["code"] == "camera_csv_unreadable"
    no_header = client.post("/api/v1/cameras/import", content=b"a,b\n1,2\n", headers=headers)
    assert no_header.json()["code"] == "camera_csv_no_header"

    # The same file through the page's form.
    page = client.get("/cameras")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    shown = client.post(
        "/cameras/import", data={"csrf_token": token[1]}, files={"file": ("cameras.csv", CSV.encode(), "text/csv")}
    )
    assert shown.status_code == 200 and 'id="import-result"' in shown.text
    assert "ngoài tỉnh" in shown.text


def test_forms_show_errors_beside_what_was_typed(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    login(client, "operator")
    form = client.get("/cameras/new")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    typed = {
        "csrf_token": token[1], "code": "cam_form", "name_vi": "Chợ Vinh", "latitude": "abc", "longitude": "105.68",
        "owner": "cong_an_tinh", "stream_url": "http://10.2.2.2/video.mjpg", "password": "p", "enabled": "on",
    }  # fmt: skip
    bad = client.post("/cameras/new", data=typed, follow_redirects=False)
    assert bad.status_code == 422
    assert 'value="Chợ Vinh"' in bad.text and 'value="abc"' in bad.text and 'aria-invalid="true"' in bad.text
    assert "không phải là số" in bad.text and "Có mật khẩu thì phải có tên đăng nhập" in bad.text
    good = client.post("/cameras/new", data={**typed, "latitude": "18.676", "username": "u"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/cameras/cam_form?done=created"
    page = client.get("/cameras/cam_form")
    assert page.status_code == 200 and 'src="/cameras/cam_form/live"' in page.text
    assert "Đã lưu tài khoản truy cập camera" in page.text and 'value="p"' not in page.text
    edited = client.post(
        "/cameras/cam_form",
        data={**typed, "latitude": "18.676", "name_vi": "Chợ Vinh mới", "password": ""},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    assert client.get("/api/v1/cameras/cam_form").json()["name_vi"] == "Chợ Vinh mới"
    assert client.get("/api/v1/cameras/cam_form").json()["credentials_set"] is True
    assert client.get("/cameras/khong_co").status_code == 404


def test_wall_view_and_map_layer_show_the_cameras(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    from cityops.wall import service as wall

    login(client, "operator")
    headers = csrf_header(client, app)
    assert client.post("/api/v1/cameras", json=camera_body(), headers=headers).status_code == 201
    with database.writing() as session:
        wall.update_layout(session, accounts.SYSTEM, clock(), [{"position": 1, "views": [{"kind": "cameras"}]}])
    tile = client.get("/wall/tile/1/content")
    assert tile.status_code == 200 and "kind-cameras" in tile.text
    assert 'src="/cameras/nga_tu_ga/snapshot.jpg"' in tile.text and "Chưa kiểm tra" in tile.text
    layer = client.get("/map/layers/cameras.geojson").json()
    feature = layer["features"][0]
    assert feature["properties"]["code"] == "nga_tu_ga" and feature["properties"]["thumbnail"]
    assert feature["geometry"]["coordinates"] == [VINH["longitude"], VINH["latitude"]]
    client.cookies.clear()
    login(client, "leader")
    tile = client.get("/wall/tile/1/content")
    assert "kind-cameras" in tile.text and "snapshot.jpg" not in tile.text
    assert "thumbnail" not in client.get("/map/layers/cameras.geojson").json()["features"][0]["properties"]
