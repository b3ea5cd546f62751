"""Routing, duplicates, the answer and the rating, merging, retention and a person's data exported and erased."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feedback_support import COMMUNE, commune_point, form_token, submit
from sqlalchemy import select

from cityops.accounts.models import Agency, AuditEntry, User
from cityops.accounts.service import Actor, principal_for_user
from cityops.clock import FrozenClock
from cityops.feedback import privacy
from cityops.feedback.models import Report, ReportContact
from cityops.feedback.service import FeedbackError, description_errors, rate
from cityops.incidents import service as incidents
from cityops.incidents.models import Incident
from conftest import Backend, csrf_header, login


def _agency(backend: Backend, report: Report) -> str:
    with backend.database.reading() as session:
        agency = session.get(Agency, report.agency_id)
        assert agency is not None
        return agency.code


def _move(backend: Backend, clock: FrozenClock, report: Report, status: str, reason: str = "") -> None:
    with backend.database.writing() as session:
        user = session.scalar(select(User).where(User.username == "operator"))
        assert user is not None and report.incident_id is not None
        principal = principal_for_user(session, user)
        incidents.change_status(
            session, principal, Actor.of(principal), clock(), report.incident_id, status=status, reason=reason
        )


def _report(backend: Backend, report_id: int) -> Report:
    with backend.database.reading() as session:
        found = session.get(Report, report_id)
        assert found is not None
        return found


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "description_required"),
        ("    ", "description_required"),
        ("aaaaaaaaaaaaaaaaaaaa", "description_repeated"),
        ("1234567890 !!! 0987", "description_no_letters"),
        ("https://spam.example/x http://b.vn", "description_links_only"),
        ("ổ gà to", "description_too_short"),
        ("Ổgàtoquáđiqualắmnguyhiểm", "description_no_words"),
    ],
)
def test_junk_descriptions_are_refused_with_a_clear_message(text: str, code: str) -> None:
    errors = description_errors(text)
    assert [error.code for error in errors] == [code]
    assert errors[0].message_vi and errors[0].message_en and errors[0].message_vi != errors[0].message_en
    assert description_errors("Đèn đường hỏng cả tuần nay, tối đi lại rất nguy hiểm.") == []


def test_reports_are_routed_by_category_and_commune_and_refused_as_a_whole(
    backend: Backend, clock: FrozenClock
) -> None:
    settings, database = backend.settings, backend.database
    rubbish = submit(database, settings, clock, category_code="rac_thai_ve_sinh")
    assert _agency(backend, rubbish) == f"ubnd_{COMMUNE}"
    water = submit(database, settings, clock, category_code="cap_nuoc")
    assert _agency(backend, water) == "so_xay_dung"
    # A point alone decides the commune (the nearest ward's centre) and so the People's Committee.
    with database.reading() as session:
        other = session.scalar(select(Agency.code).where(Agency.kind == "commune", Agency.code != f"ubnd_{COMMUNE}"))
    assert other is not None
    latitude, longitude = commune_point(database, other.removeprefix("ubnd_"))
    lights = submit(
        database,
        settings,
        clock,
        category_code="den_chieu_sang",
        subject_code=None,
        latitude=latitude,
        longitude=longitude,
    )
    assert _agency(backend, lights) == other
    assert (lights.public_latitude, lights.public_longitude) == (round(latitude, 3), round(longitude, 3))
    with database.reading() as session:
        incident = session.get(Incident, water.incident_id)
        assert incident is not None and incident.source_ref == f"feedback_report:{water.id}"
        assert incident.title.startswith("Cấp nước sinh hoạt — ")
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "report.create", AuditEntry.entity_id == str(water.id))
        )
        assert entry is not None and entry.details["agency"] == "so_xay_dung"

    with pytest.raises(FeedbackError) as refused:
        submit(
            database,
            settings,
            clock,
            category_code="o_ga_hu_hong_duong",
            subject_code=None,
            attributes={"muc_do": "rat_to", "khong_co": "x"},
            contact={"email": "not-an-email"},
        )
    assert {(e.field, e.code) for e in refused.value.errors} == {
        ("attribute_muc_do", "attribute_value"),
        ("attributes", "attribute_unknown"),
        ("place", "place_required"),
        ("email", "email_invalid"),
    }
    with pytest.raises(FeedbackError) as unknown:
        submit(database, settings, clock, category_code="khong_co_loai", subject_code="99999")
    assert {e.code for e in unknown.value.errors} == {"category_unknown", "commune_unknown"}


def test_duplicates_are_suggested_and_merged_then_the_answer_is_published_and_rated(
    backend: Backend, clock: FrozenClock, app: Any, client: TestClient, personas: dict[str, str]
) -> None:
    settings, database = backend.settings, backend.database
    latitude, longitude = commune_point(database)
    first = submit(
        database,
        settings,
        clock,
        latitude=latitude,
        longitude=longitude,
        subject_code=None,
        attributes={"muc_do": "low"},
    )  # low: 120 hours to answer
    clock.advance(timedelta(hours=3))
    near = submit(database, settings, clock, latitude=latitude + 0.0005, longitude=longitude, subject_code=None)
    far = submit(database, settings, clock, latitude=latitude + 0.01, longitude=longitude, subject_code=None)
    assert near.duplicate_of_id == first.id and far.duplicate_of_id is None
    clock.advance(timedelta(hours=49))
    late = submit(database, settings, clock, latitude=latitude, longitude=longitude, subject_code=None)
    assert late.duplicate_of_id is None

    # The operator sees "có thể trùng với PA-…" and merges the two incidents.
    login(client, "operator")
    page = client.get(f"/feedback/reports/{near.id}")
    assert f"Có thể trùng với {first.tracking_code}" in page.text and 'id="merge-form"' in page.text
    token = form_token(client, f"/feedback/reports/{near.id}")
    merged = client.post(f"/feedback/reports/{near.id}/merge", data={"csrf_token": token}, follow_redirects=False)
    assert merged.status_code == 303
    with database.reading() as session:
        dup_incident = session.get(Incident, near.incident_id)
        assert dup_incident is not None and dup_incident.merged_into_id == first.incident_id
    assert first.tracking_code in client.get(f"/report/{near.tracking_code}").text

    # Resolved → the public answer on both reports, on time; the citizen rates once.
    _move(backend, clock, first, "in_progress")
    _move(backend, clock, first, "resolved", "Đã vá ổ gà bằng bê tông nhựa ngày 29/11.")
    for report_id, on_time in ((first.id, True), (near.id, False)):  # near's own deadline (high: 24 h) has passed
        answered = _report(backend, report_id)
        assert answered.status == "closed" and answered.answer.startswith("Đã vá ổ gà")
        assert answered.answered_at == clock() and answered.on_time is on_time
    public = client.get(f"/report/{first.tracking_code}")
    assert "Đã vá ổ gà bằng bê tông nhựa" in public.text and "Đã trả lời" in public.text and "đúng hạn" in public.text
    token = form_token(client, f"/report/{first.tracking_code}")
    rated = client.post(
        f"/report/{first.tracking_code}/rating",
        data={"csrf_token": token, "rating": "4", "comment": "Sửa nhanh"},
        follow_redirects=False,
    )
    assert rated.status_code == 303
    assert _report(backend, first.id).rating == 4
    again = client.post(f"/report/{first.tracking_code}/rating", data={"csrf_token": token, "rating": "5"})
    assert again.status_code == 422 and "chỉ đánh giá một lần" in again.text
    with database.writing() as session, pytest.raises(FeedbackError) as early:
        rate(session, clock(), far.tracking_code, 5)
    assert early.value.errors[0].code == "rating_not_answered"

    # Reopened → open again; rejected → the reason is the answer, late when past the deadline.
    _move(backend, clock, first, "reopened")
    assert _report(backend, first.id).status == "open" and _report(backend, first.id).on_time is None
    clock.advance(timedelta(days=30))
    _move(backend, clock, far, "rejected", "Tuyến đường thuộc dự án đang thi công, nhà thầu sẽ hoàn trả mặt đường.")
    rejected = _report(backend, far.id)
    assert rejected.status == "closed" and rejected.on_time is False and rejected.answer.startswith("Tuyến đường")


def test_personal_data_expires_and_is_exported_and_erased_by_phone(
    backend: Backend, clock: FrozenClock, app: Any, client: TestClient, personas: dict[str, str]
) -> None:
    settings, database = backend.settings, backend.database
    contact = {"name": "Lê Thị Hoa", "phone": "0912.345.678", "address": "Số 9 ngõ 3"}
    old = submit(database, settings, clock, contact=contact)
    other = submit(database, settings, clock, category_code="cap_nuoc", contact={**contact, "phone": "+84912345678"})
    _move(backend, clock, old, "in_progress")
    _move(backend, clock, old, "resolved", "Đã sửa xong.")

    clock.advance(timedelta(days=settings.feedback_retention_days - 1))
    assert privacy.purge_expired(database, clock, settings) == 0
    clock.advance(timedelta(days=2))
    assert privacy.purge_expired(database, clock, settings) == 1
    assert privacy.purge_expired(database, clock, settings) == 0
    with database.reading() as session:
        assert session.get(ReportContact, old.id) is None and session.get(ReportContact, other.id) is not None
        expired = session.get(Report, old.id)
        assert expired is not None and expired.personal_data_removed_at == clock() and expired.description
        assert session.scalar(select(AuditEntry).where(AuditEntry.action == "report.personal_data_expired"))

    third = submit(database, settings, clock, category_code="tieng_on", contact={"phone": "0912 345 678"})
    login(client, "admin")
    client.get("/")
    exported = client.get("/api/v1/personal-data", params={"phone": "+84 912 345 678"})
    assert exported.status_code == 200
    codes = {item["tracking_code"] for item in exported.json()["reports"]}
    assert codes == {other.tracking_code, third.tracking_code}
    assert exported.json()["reports"][0]["contact"]["phone"] == "0912345678"
    assert client.get("/api/v1/personal-data", params={"phone": "123"}).status_code == 422
    erased = client.delete("/api/v1/personal-data", params={"phone": "0912345678"}, headers=csrf_header(client, app))
    assert erased.status_code == 200 and erased.json()["erased"] == 2
    with database.reading() as session:
        assert session.scalar(select(ReportContact).where(ReportContact.phone == "0912345678")) is None
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action.like("personal_data.%"))))
    assert {entry.action for entry in entries} == {"personal_data.export", "personal_data.erase"}
    for entry in entries:
        assert "912345678" not in str(entry.details) and len(entry.details["phone_hmac"]) == 64
    with TestClient(app, base_url="http://testserver") as leader:
        login(leader, "leader")
        assert leader.get("/api/v1/personal-data", params={"phone": "0912345678"}).status_code == 403
