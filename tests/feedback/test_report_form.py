"""The public form end to end through the real HTTP stack: a report with a photo carrying GPS, its public page
without personal data, the staff's view by who handles it; refusals with every error; the rate limit."""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi.testclient import TestClient
from feedback_support import COMMUNE, form_token, jpeg_with_gps
from PIL import Image
from sqlalchemy import select

from cityops.feedback.models import Report, ReportContact, ReportPhoto
from cityops.incidents.models import Incident
from conftest import Backend, count_rows, login

NAME, PHONE, EMAIL, ADDRESS = "Trần Văn Bình", "+84 912 345 678", "Binh.Tran@Example.vn", "Số 27 ngõ 14 Lê Hồng Phong"
PERSONAL = ("Trần Văn Bình", "912345678", "912 345 678", "binh.tran", "Example.vn", "Số 27", "ngõ 14")


def _form(token: str, **overrides: Any) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "category": "an_toan_thuc_pham",
        "description": "Quán ăn đầu ngõ bày bán thịt ôi thiu, ruồi bâu, nhiều người ăn xong bị đau bụng.",
        "commune": COMMUNE,
        "place_text": "Chợ Vinh, cổng phía đông",
        "name": NAME,
        "phone": PHONE,
        "email": EMAIL,
        "address": ADDRESS,
        "consent": "1",
        **overrides,
    }


def test_a_citizen_reports_with_a_photo_and_only_its_handlers_see_the_contact(
    backend: Backend, client: TestClient, app: Any, personas: dict[str, str]
) -> None:
    token = form_token(client)
    page = client.get("/report")
    assert "Gửi phản ánh" in page.text and "Luật Bảo vệ dữ liệu cá nhân năm 2025" in page.text
    assert "/static/vendor/echarts.min.js" in page.text and "https://" not in page.text
    assert "Report a problem" in client.get("/report?lang=en").text
    client.get("/report?lang=vi")

    answer = client.post(
        "/report",
        data=_form(token),
        files=[("photos", ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    code = answer.headers["location"].split("/report/")[1].split("?")[0]
    assert re.fullmatch(r"PA-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)

    with backend.database.reading() as session:
        report = session.scalar(select(Report).where(Report.tracking_code == code))
        assert report is not None
        contact = session.get(ReportContact, report.id)
        photo = session.scalar(select(ReportPhoto).where(ReportPhoto.report_id == report.id))
        incident = session.get(Incident, report.incident_id)
    assert contact is not None and (contact.phone, contact.email) == ("0912345678", "binh.tran@example.vn")
    assert incident is not None and incident.source == "citizen" and report.expected_at == incident.deadline_at
    assert NAME not in incident.description and "0912345678" not in incident.description
    # The stored photo was re-encoded: no EXIF at all, so no GPS position and no camera.
    assert photo is not None
    stored = (backend.settings.data_dir / "photos" / photo.storage_key).read_bytes()
    assert b"Exif" not in stored and b"CityopsCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and not image.getexif() and (image.width, image.height) == (64, 48)

    # The public page: the code in big, the status in words, the photo — and no personal data anywhere.
    public = client.get(f"/report/{code}?new=1")
    assert public.status_code == 200
    assert f'id="tracking-code">{code}<' in public.text and "Đã tiếp nhận" in public.text
    assert "Sở Y tế" in public.text and "Chợ Vinh, cổng phía đông" in public.text
    for secret in PERSONAL:
        assert secret not in public.text, secret
    served = client.get(f"/report/{code}/photos/{photo.id}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert b"CityopsCam" not in served.content
    assert client.get("/report/PA-2222-2222").status_code == 404
    assert "PA-2222-2222" in client.get("/report/PA-2222-2222").text

    # The handler of the routed agency (Sở Y tế) sees the contact; another agency's officer gets 404; the leader
    # sees the report without the contact.
    with TestClient(app, base_url="http://testserver") as handler:
        login(handler, "handler_a")
        staff = handler.get(f"/feedback/reports/{report.id}")
        assert staff.status_code == 200
        assert NAME in staff.text and "0912345678" in staff.text and "binh.tran@example.vn" in staff.text
        assert f'href="/incidents/{incident.id}"' in staff.text
        api = handler.get(f"/api/v1/feedback/reports/{report.id}").json()
        assert api["contact"]["phone"] == "0912345678" and api["tracking_code"] == code
        assert f"/feedback/reports/{report.id}" in handler.get(f"/incidents/{incident.id}").text
    with TestClient(app, base_url="http://testserver") as other:
        login(other, "officer_b")
        assert other.get(f"/feedback/reports/{report.id}").status_code == 404
        assert other.get(f"/api/v1/feedback/reports/{report.id}").status_code == 404
    with TestClient(app, base_url="http://testserver") as leader:
        login(leader, "leader")
        seen = leader.get(f"/feedback/reports/{report.id}")
        assert seen.status_code == 200 and code in seen.text
        for secret in PERSONAL:
            assert secret not in seen.text, secret
        assert leader.get(f"/api/v1/feedback/reports/{report.id}").json()["contact"] is None


def test_a_bad_report_shows_every_error_stores_nothing_and_the_sixth_post_is_refused(
    backend: Backend, client: TestClient
) -> None:
    photo_dir = backend.settings.data_dir / "photos"
    files_before = set(photo_dir.rglob("*")) if photo_dir.exists() else set()
    token = form_token(client)
    photos = [("photos", (f"anh{n}.jpg", jpeg_with_gps(), "image/jpeg")) for n in range(5)]
    photos.append(("photos", ("virus.jpg", b"MZ\x90\x00\x03" + b"\x00" * 200, "image/jpeg")))
    refused = client.post(
        "/report",
        data=_form(
            token,
            description="aaaaaaaaaaaaaaaaaaaa!!!",
            commune="",
            latitude="21.0285",  # Hà Nội: outside the province
            longitude="105.8542",
            phone="12345",
            consent="",
        ),
        files=photos,
    )
    assert refused.status_code == 422
    text = refused.text
    for message in (
        "chỉ là các ký tự lặp lại",
        "nằm ngoài địa bàn tỉnh",
        "tối đa 5 ảnh",
        "“virus.jpg” không phải ảnh JPEG, PNG hoặc WebP",
        "Số điện thoại không đúng",
        "hãy đánh dấu đồng ý",
        "hãy chọn lại ảnh (6)",
    ):
        assert message in text, message
    assert "aaaaaaaaaaaaaaaaaaaa!!!" in text and NAME in text and "Chợ Vinh, cổng phía đông" in text
    assert count_rows(backend.database, "feedback_reports") == 0
    assert count_rows(backend.database, "feedback_photos") == 0
    assert count_rows(backend.database, "incidents") == 0
    assert (set(photo_dir.rglob("*")) if photo_dir.exists() else set()) == files_before

    english = client.post("/report?lang=en", data=_form(token, description="", commune=""))
    assert english.status_code == 422
    assert "Describe what you want to report." in english.text and "choose the commune or ward" in english.text

    for _ in range(3):  # posts 3 to 5 still answer
        assert client.post("/report", data=_form(token, description="")).status_code == 422
    limited = client.post("/report", data=_form(token))
    assert limited.status_code == 429
    assert "thử lại sau khoảng 10 phút" in limited.text and "try again in about 10 minutes" in limited.text
    assert int(limited.headers["retry-after"]) == 600
    assert count_rows(backend.database, "feedback_reports") == 0
