"""The incidents API: a whole life by API with its trail and audit, deadlines from category and severity, the SOP
copied, refused moves, agency boundaries, links and merges. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from incidents_support import audited, notified, signed_in, told_about, trail
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import User
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.incidents.categories import load_categories, read_categories
from cityops.incidents.models import Incident, IncidentCategory, IncidentLink
from cityops.incidents.service import IncidentError, merge
from conftest import count_rows

HEALTH = {
    "title": "Ổ dịch sốt xuất huyết tại phường Thành Vinh",
    "description": "12 ca mắc trong 7 ngày tại khối 5.",
    "category": "y_te",
    "severity": "high",
    "subject": "16681",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_an_incident_lives_its_whole_life_by_api_with_its_trail_and_audit(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "handler_a", "officer_a") as (operator, handler, officer):
        created = operator.post("/api/v1/incidents", json=HEALTH)
        assert created.status_code == 201, created.text
        incident = created.json()
        number = incident["id"]
        assert incident["status"] == "new" and incident["agency"] == "so_y_te"  # the category's owner
        assert incident["category"] == "y_te" and incident["domain"] == "yte"
        assert incident["subject"] == "16681" and incident["place_text"]
        assert at(incident["deadline_at"]) == clock() + timedelta(hours=8)  # y_te, high: 8 hours
        sop = read_categories()[0]
        assert sop.code == "y_te"
        assert [task["text_vi"] for task in incident["tasks"]] == [step.vi for step in sop.sop]
        assert [task["text_en"] for task in incident["tasks"]] == [step.en for step in sop.sop]
        # The owner agency's users hear of it.
        assert told_about(database, number) == [
            ("handler_a", "incident.assigned"),
            ("officer_a", "incident.assigned"),
        ]

        clock.advance(timedelta(minutes=5))
        assigned = operator.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["handler_a"]})
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["status"] == "assigned" and assigned.json()["assignees"] == ["handler_a"]
        assert told_about(database, number) == [
            ("handler_a", "incident.assigned"),
            ("handler_a", "incident.assigned"),  # now personally
            ("officer_a", "incident.assigned"),
        ]

        # The handler sees it in their work and on the board filtered for them.
        mine = handler.get("/api/v1/incidents", params={"assigned_to_me": "true", "status": "assigned"}).json()
        assert [item["id"] for item in mine["items"]] == [number]

        started = handler.post(f"/api/v1/incidents/{number}/status", json={"status": "in_progress"})
        assert started.status_code == 200 and started.json()["status"] == "in_progress"
        first_task = started.json()["tasks"][0]["id"]
        ticked = handler.post(f"/api/v1/incidents/{number}/tasks/{first_task}", json={"done": True})
        assert ticked.json()["tasks"][0]["done"] is True and ticked.json()["tasks"][0]["done_by"] == "handler_a"
        commented = officer.post(f"/api/v1/incidents/{number}/comments", json={"body": "Đã phun hóa chất khối 5."})
        assert commented.status_code == 201
        assert [c["body"] for c in commented.json()["comments"]] == ["Đã phun hóa chất khối 5."]
        assert notified(database, "incident.comment") == [("handler_a", "incident.comment")]  # not the author

        resolved = handler.post(
            f"/api/v1/incidents/{number}/status", json={"status": "resolved", "reason": "Ổ dịch đã được xử lý."}
        )
        assert resolved.json()["status"] == "resolved" and resolved.json()["resolution"] == "Ổ dịch đã được xử lý."
        assert ("operator", "incident.status") in notified(database, "incident.status")  # the creator hears
        closed = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "closed"})
        assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
        reopened = operator.post(
            f"/api/v1/incidents/{number}/status", json={"status": "reopened", "reason": "Có ca mắc mới."}
        )
        body = reopened.json()
        assert body["status"] == "in_progress" and body["closed_at"] is None and body["resolved_at"] is None

        expected = ["created", "assigned", "status", "task_done", "comment", "status", "status", "reopened"]
        assert trail(database, number) == expected
        assert [event["action"] for event in body["events"]] == expected
        assert body["events"][1]["actor"] == "operator" and body["events"][1]["details"]["assignees"] == ["handler_a"]
        assert body["events"][-1]["details"] == {"from": "closed", "to": "in_progress", "reason": "Có ca mắc mới."}
        assert audited(database, number) == [f"incident.{action}" for action in expected]
        assert body["can"]["work"] is True and body["can"]["moves"] == ["resolved", "rejected"]

        # Changes: title by the handler; severity and deadline only by the center.
        renamed = handler.patch(f"/api/v1/incidents/{number}", json={"title": "Ổ dịch SXH khối 5"})
        assert renamed.status_code == 200 and renamed.json()["title"] == "Ổ dịch SXH khối 5"
        refused = handler.patch(f"/api/v1/incidents/{number}", json={"severity": "low"})
        assert refused.status_code == 403 and refused.json()["code"] == "incident_forbidden"
        assert "điều hành viên" in refused.json()["message_vi"] and "operators" in refused.json()["message_en"]
        lowered = operator.patch(f"/api/v1/incidents/{number}", json={"severity": "low"})
        assert at(lowered.json()["deadline_at"]) == at(incident["created_at"]) + timedelta(hours=72)
        moved = operator.patch(f"/api/v1/incidents/{number}", json={"deadline": "2026-11-30T17:00:00+07:00"})
        assert at(moved.json()["deadline_at"]) == at("2026-11-30T10:00:00+00:00")
        assert trail(database, number)[-3:] == ["updated", "updated", "updated"]
        assert audited(database, number)[-1] == "incident.updated"


def test_deadlines_follow_the_category_and_severity_and_the_categories_are_served(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator") as (operator,):
        categories = operator.get("/api/v1/incident-categories").json()["items"]
        codes = {category["code"] for category in categories}
        assert len(categories) >= 12 and {"y_te", "du_lieu", "ho_so_tre_han", "an_ninh_mang"} <= codes
        for category in categories:
            assert category["agency"], category["code"]
            assert 3 <= len(category["sop"]) <= 6 and all(step["vi"] and step["en"] for step in category["sop"])
            assert set(category["deadline_hours"]) == {"low", "medium", "high", "critical"}
        hours = {category["code"]: category["deadline_hours"] for category in categories}
        for code, severity in (("y_te", "critical"), ("du_lieu", "low"), ("tai_nan_giao_thong", "medium")):
            made = operator.post(
                "/api/v1/incidents", json={"title": f"{code} {severity}", "category": code, "severity": severity}
            ).json()
            assert at(made["deadline_at"]) == clock() + timedelta(hours=hours[code][severity])
        without = operator.post(
            "/api/v1/incidents", json={"title": "Việc khác", "severity": "critical", "agency": "so_gd_dt"}
        ).json()
        assert at(without["deadline_at"]) == clock() + timedelta(hours=4) and without["tasks"] == []
        no_owner = operator.post("/api/v1/incidents", json={"title": "Không rõ cơ quan"})
        assert no_owner.status_code == 422 and no_owner.json()["field"] == "agency"
        wrong = operator.post("/api/v1/incidents", json={"title": "x", "category": "khong_co", "severity": "cao"})
        assert wrong.status_code == 422 and "khong_co" in wrong.json()["message_vi"]
        english = operator.get("/api/v1/incident-categories?lang=en").json()["items"]
        assert {c["code"]: c["name"] for c in english}["y_te"] == "Disease outbreak or public-health event"

    # Loading again updates by code and creates nothing; an edited category is brought back.
    with database.writing() as session:
        category = session.scalar(select(IncidentCategory).where(IncidentCategory.code == "y_te"))
        assert category is not None
        category.deadline_hours = {"low": 1, "medium": 1, "high": 1, "critical": 1}
    with database.writing() as session:
        assert load_categories(session) == 0
    with database.reading() as session:
        category = session.scalar(select(IncidentCategory).where(IncidentCategory.code == "y_te"))
        assert category is not None and category.deadline_hours["high"] == 8


def test_impossible_moves_are_refused_with_a_reason_and_nothing_changes(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "leader") as (operator, leader):
        number = operator.post("/api/v1/incidents", json=HEALTH).json()["id"]
        before = trail(database, number)

        jump = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "resolved"})
        assert jump.status_code == 409 and jump.json()["code"] == "incident_conflict"
        assert jump.json()["message_vi"] == "Không thể chuyển sự vụ từ trạng thái “Mới” sang “Đã xử lý”."
        assert jump.json()["message_en"] == "An incident cannot move from “New” to “Resolved”."
        to_assigned = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "assigned"})
        assert to_assigned.status_code == 409 and to_assigned.json()["reason"] == "use_assign"
        unknown = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "xong"})
        assert unknown.status_code == 422 and unknown.json()["field"] == "status"
        no_reason = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "rejected", "reason": "  "})
        assert no_reason.status_code == 422 and no_reason.json()["reason"] == "reason_required"
        assert "lý do" in no_reason.json()["message_vi"]
        reader = leader.post(f"/api/v1/incidents/{number}/status", json={"status": "in_progress"})
        assert reader.status_code == 403 and reader.json()["code"] == "forbidden"
        assert leader.get(f"/api/v1/incidents/{number}").json()["can"]["work"] is False
        empty = operator.post(f"/api/v1/incidents/{number}/comments", json={"body": "   "})
        assert empty.status_code == 422 and empty.json()["field"] == "body"
        foreign_task = operator.post(f"/api/v1/incidents/{number}/tasks/999999", json={"done": True})
        assert foreign_task.status_code == 422 and foreign_task.json()["reason"] == "task_not_found"
        assert operator.get("/api/v1/incidents/0").status_code == 422
        assert operator.get("/api/v1/incidents/99999999999").status_code == 422
        assert operator.get("/api/v1/incidents/424242").status_code == 404
        assert operator.patch(f"/api/v1/incidents/{number}", json={"status": "closed"}).status_code == 422
        assert trail(database, number) == before
        assert operator.get(f"/api/v1/incidents/{number}").json()["status"] == "new"

        rejected = operator.post(
            f"/api/v1/incidents/{number}/status", json={"status": "rejected", "reason": "Trùng với tin đã xử lý."}
        )
        assert rejected.json()["status"] == "rejected" and rejected.json()["reject_reason"] == "Trùng với tin đã xử lý."
        assert trail(database, number)[-1] == "rejected"
        again = operator.post(f"/api/v1/incidents/{number}/status", json={"status": "in_progress"})
        assert again.status_code == 409
        late_assign = operator.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["handler_a"]})
        assert late_assign.status_code == 409 and late_assign.json()["reason"] == "not_open"


def test_agencies_see_and_work_only_on_their_own_incidents(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "officer_a", "officer_b", "handler_a", "leader") as people:
        operator, officer_a, officer_b, handler_a, leader = people
        number = operator.post("/api/v1/incidents", json=HEALTH).json()["id"]
        school = operator.post(
            "/api/v1/incidents", json={"title": "Sự cố bếp ăn trường", "category": "giao_duc", "severity": "medium"}
        ).json()["id"]

        # Another agency's incident does not exist for officer_b, whatever they try.
        assert officer_b.get(f"/api/v1/incidents/{number}").status_code == 404
        hidden = officer_b.post(f"/api/v1/incidents/{number}/comments", json={"body": "xem thử"})
        assert hidden.status_code == 404 and hidden.json()["code"] == "incident_not_found"
        assert officer_b.post(f"/api/v1/incidents/{number}/status", json={"status": "in_progress"}).status_code == 404
        assert [item["id"] for item in officer_b.get("/api/v1/incidents").json()["items"]] == [school]
        assert {item["id"] for item in leader.get("/api/v1/incidents").json()["items"]} == {number, school}
        assert [item["id"] for item in officer_a.get("/api/v1/incidents").json()["items"]] == [number]

        # Assignees must belong to the owner agency's subtree.
        outside = operator.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["officer_b"]})
        assert outside.status_code == 422 and outside.json()["reason"] == "assignee_outside"
        assert "officer_b" in outside.json()["message_vi"] and "so_y_te" in outside.json()["message_en"]
        nobody = operator.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["khong_ai"]})
        assert nobody.status_code == 422 and nobody.json()["reason"] == "unknown_user"
        # An officer assigns within the agency, not outside it; a handler does not assign.
        by_handler = handler_a.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["handler_a"]})
        assert by_handler.status_code == 403 and by_handler.json()["reason"] == "may_not_assign"
        away = officer_a.post(f"/api/v1/incidents/{number}/assign", json={"agency": "so_gd_dt"})
        assert away.status_code == 403 and away.json()["reason"] == "may_not_assign_outside"
        within = officer_a.post(f"/api/v1/incidents/{number}/assign", json={"assignees": ["handler_a"]})
        assert within.status_code == 200 and within.json()["assignees"] == ["handler_a"]
        assert officer_b.post("/api/v1/incidents", json={**HEALTH, "agency": "so_y_te"}).status_code == 403
        assert trail(database, number) == ["created", "assigned"]

        # The operator hands it to education: it becomes theirs, and no longer officer_a's.
        handed = operator.post(f"/api/v1/incidents/{number}/assign", json={"agency": "so_gd_dt", "assignees": []})
        assert handed.json()["agency"] == "so_gd_dt" and handed.json()["assignees"] == []
        assert ("officer_b", "incident.assigned") in notified(database, "incident.assigned")
        assert officer_b.get(f"/api/v1/incidents/{number}").status_code == 200
        assert officer_a.get(f"/api/v1/incidents/{number}").status_code == 404

        overdue = officer_b.get("/api/v1/incidents", params={"overdue": "true"}).json()["items"]
        assert overdue == []
        clock.advance(timedelta(hours=9))  # health (high): 8 hours; school (medium): 48 hours
        overdue = officer_b.get("/api/v1/incidents", params={"overdue": "true"}).json()["items"]
        assert [item["id"] for item in overdue] == [number] and overdue[0]["overdue"] is True
        on_time = officer_b.get("/api/v1/incidents", params={"overdue": "false"}).json()["items"]
        assert [item["id"] for item in on_time] == [school] and on_time[0]["overdue"] is False


def test_related_links_and_merging_a_duplicate(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "handler_a") as (operator, handler):
        first = operator.post("/api/v1/incidents", json=HEALTH).json()["id"]
        second = operator.post("/api/v1/incidents", json={**HEALTH, "title": "Sốt xuất huyết khối 5 (tin báo lại)"})
        duplicate = second.json()["id"]
        third = operator.post("/api/v1/incidents", json={**HEALTH, "title": "Ca sốt khối 6"}).json()["id"]
        handler.post(f"/api/v1/incidents/{duplicate}/comments", json={"body": "Người dân báo thêm 3 ca."})

        related = handler.post(f"/api/v1/incidents/{third}/links", json={"to": first})
        assert related.status_code == 201
        assert [(link["kind"], link["incident"]["id"]) for link in related.json()["links"]] == [("related", first)]
        assert handler.post(f"/api/v1/incidents/{first}/links", json={"to": third}).status_code == 409
        assert handler.post(f"/api/v1/incidents/{first}/links", json={"to": first}).status_code == 422
        assert handler.post(f"/api/v1/incidents/{first}/links", json={"to": 999999}).status_code == 404

        assert handler.post(f"/api/v1/incidents/{first}/merge", json={"into": first}).status_code == 422
        merged = handler.post(f"/api/v1/incidents/{duplicate}/merge", json={"into": first})
        assert merged.status_code == 200, merged.text
        target = merged.json()
        assert target["id"] == first and target["duplicates"] == [
            {"id": duplicate, "title": "Sốt xuất huyết khối 5 (tin báo lại)", "link": f"/incidents/{duplicate}"}
        ]
        gone = handler.get(f"/api/v1/incidents/{duplicate}").json()
        assert gone["status"] == "closed" and gone["merged_into_id"] == first
        assert [c["body"] for c in gone["comments"]] == ["Người dân báo thêm 3 ca."]  # still readable
        assert [(link["kind"], link["direction"], link["incident"]["id"]) for link in gone["links"]] == [
            ("duplicate", "to", first)
        ]
        assert trail(database, duplicate)[-1] == "merged" and trail(database, first)[-1] == "merged_from"
        assert audited(database, duplicate)[-1] == "incident.merged"

        back = handler.post(f"/api/v1/incidents/{first}/merge", json={"into": duplicate})
        assert back.status_code == 409 and back.json()["reason"] == "merge_cycle"
        onto_merged = handler.post(f"/api/v1/incidents/{third}/merge", json={"into": duplicate})
        assert onto_merged.status_code == 409 and onto_merged.json()["reason"] == "merge_target_merged"
        assert f"hãy gộp vào sự vụ số {first}" in onto_merged.json()["message_vi"]
        twice = handler.post(f"/api/v1/incidents/{duplicate}/merge", json={"into": third})
        assert twice.status_code == 409 and twice.json()["reason"] == "merge_already"
        reopen = operator.post(f"/api/v1/incidents/{duplicate}/status", json={"status": "reopened"})
        assert reopen.status_code == 409 and reopen.json()["reason"] == "merged_stays_closed"
        with database.reading() as session:
            assert session.scalars(select(IncidentLink.kind).order_by(IncidentLink.id)).all() == [
                "related",
                "duplicate",
            ]
            assert session.get(Incident, first).merged_into_id is None  # type: ignore[union-attr]
        assert count_rows(database, "incident_links") == 2

    # A cycle through the data itself (as an older merge might have left) is refused too.
    with database.writing() as session:
        session.get(Incident, first).merged_into_id = third  # type: ignore[union-attr]
    with database.writing() as session:
        user = session.scalar(select(User).where(User.username == "operator"))
        assert user is not None
        operator_principal = accounts.principal_for_user(session, user)
        try:
            merge(session, operator_principal, accounts.SYSTEM, clock(), third, into_id=first)
        except IncidentError as refused:
            assert refused.code == "merge_cycle"
        else:
            raise AssertionError("a merge in a cycle was accepted")
