"""Rules through the API, the pages and the TOML file (validated in Vietnamese and English, audited); alerts through
the API and pages: agency visibility, acknowledge once, silence with a reason and an expiry; events."""

from __future__ import annotations

import re
from datetime import timedelta

from alerts_support import CASES, CDC, PROVINCE, WARD, alerts, evaluate, history, make_rule, only_alert, send, value
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.accounts.service import SYSTEM
from cityops.alerts import rules
from cityops.alerts.models import AlertRule, Event
from conftest import count_rows, csrf_header, login, make_key
from observations.observations_support import assert_problem

RULES = "/api/v1/alert-rules"


def test_rules_are_checked_field_by_field_created_changed_deleted_and_audited(client, app, database, personas) -> None:
    login(client, "officer_a")
    client.get("/alerts")
    assert (
        client.post(RULES, headers=csrf_header(client, app), json={"code": "x1", "kind": "events"}).status_code == 403
    )
    client.post("/logout", data={"csrf_token": ""})
    client.cookies.clear()
    login(client, "operator")
    client.get("/alerts")
    headers = csrf_header(client, app)
    bad = {
        "code": "sxh",
        "name_vi": "Sốt xuất huyết",
        "kind": "threshold",
        "indicator": "yte.khong_co",
        "params": {"op": "=>"},
    }
    problem = assert_problem(client.post(RULES, headers=headers, json=bad), 422, "alert_rule_invalid")
    assert {e["field"]: e["code"] for e in problem["errors"]} == {
        "indicator": "unknown_indicator",
        "params.op": "bad_operator",
        "params.value": "value_missing",
    }
    assert "yte.khong_co" in problem["message_vi"] and "yte.khong_co" in problem["message_en"]
    assert count_rows(database, "alert_rules") == 0

    good = {**bad, "indicator": CASES, "params": {"op": ">", "value": 20}, "for_minutes": 5}
    created = client.post(RULES, headers=headers, json=good)
    assert created.status_code == 201, created.text
    assert created.json()["indicator"] == CASES and created.json()["created_by"] == "operator"
    assert_problem(client.post(RULES, headers=headers, json=good), 409, "alert_rule_exists")
    changed = client.patch(
        f"{RULES}/sxh", headers=headers, json={"params": {"op": ">=", "value": 30}, "severity": "critical"}
    )
    assert changed.status_code == 200 and changed.json()["params"] == {"op": ">=", "value": 30}
    assert_problem(client.patch(f"{RULES}/sxh", headers=headers, json={"kind": "events"}), 422, "alert_rule_invalid")
    assert client.get(f"{RULES}/sxh").json()["kind"] == "threshold"
    assert [r["code"] for r in client.get(RULES).json()["items"]] == ["sxh"]
    assert client.delete(f"{RULES}/sxh", headers=headers).status_code == 204
    assert_problem(client.get(f"{RULES}/sxh"), 404, "alert_rule_not_found")
    with database.reading() as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.entity_type == "alert_rule").order_by(AuditEntry.id)
            )
        )
    assert actions == ["alert_rule.create", "alert_rule.update", "alert_rule.delete"]


def test_the_rule_form_shows_each_error_keeps_what_was_typed_and_then_creates(client, database, personas) -> None:
    login(client, "operator")
    page = client.get("/alerts/rules/new")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    form = {
        "csrf_token": token,
        "code": "giuong_cao",
        "name_vi": "Giường bệnh quá tải",
        "kind": "threshold",
        "indicator": "yte.cong_suat_giuong",
        "p_op": ">",
        "p_value": "tám mươi",
        "severity": "critical",
        "for_minutes": "abc",
        "incident_mode": "none",
        "enabled": "on",
    }
    answer = client.post("/alerts/rules/new", data=form)
    assert answer.status_code == 422
    assert "“tám mươi” không phải là số" in answer.text and "Thời gian chờ phải là số phút nguyên" in answer.text
    assert 'value="giuong_cao"' in answer.text and 'value="tám mươi"' in answer.text
    assert count_rows(database, "alert_rules") == 0
    answer = client.post(
        "/alerts/rules/new", data={**form, "p_value": "80,5", "for_minutes": "0"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/alerts/rules/giuong_cao")
    with database.reading() as session:
        rule = session.scalar(select(AlertRule))
        assert rule is not None and rule.params == {"op": ">", "value": 80.5}
    page = client.get(answer.headers["location"] + "&lang=en")
    assert page.status_code == 200 and "The rule is created" in page.text
    edit = client.post("/alerts/rules/giuong_cao", data={**form, "p_value": "85", "for_minutes": "0", "p_op": "=="})
    assert edit.status_code == 422 and "==" in edit.text


def test_the_default_rules_file_loads_and_reloads_without_change(database, clock) -> None:
    with database.writing() as session:
        created = rules.load_rules(session, SYSTEM, clock())
    with database.writing() as session:
        again = rules.load_rules(session, SYSTEM, clock())
    assert created >= 7 and again == 0
    with database.reading() as session:
        modes = dict(tuple(row) for row in session.execute(select(AlertRule.code, AlertRule.incident_mode)))
    assert modes["yte_cong_suat_giuong_cao"] == "auto"
    with database.reading() as session:
        assert set(session.scalars(select(AlertRule.kind))) == {
            "threshold",
            "off_target",
            "change",
            "feed_health",
            "events",
        }


def test_agencies_see_their_alerts_only_and_handlers_ack_once_and_silence_with_a_reason(
    client, app, database, clock, personas
) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh",
        name_vi="Sốt xuất huyết",
        kind="threshold",
        indicator=CASES,
        params={"op": ">", "value": 20},
    )
    send(client, key, value(CASES, WARD, "2026-11-27", 25))
    evaluate(database, clock)
    alert_id = only_alert(database).id

    login(client, "officer_b")  # education: not theirs
    assert client.get("/api/v1/alerts").json()["items"] == []
    assert_problem(client.get(f"/api/v1/alerts/{alert_id}"), 404, "alert_not_found")
    assert client.get(f"/alerts/{alert_id}").status_code == 404
    client.cookies.clear()
    login(client, "officer_a")  # health: the CDC is under it
    assert [a["id"] for a in client.get("/api/v1/alerts").json()["items"]] == [alert_id]
    page = client.get("/alerts")
    assert '<span class="sev sev-warning">Cảnh báo</span>' in page.text and "Phường Thành Vinh" in page.text
    assert 'id="ack-' not in page.text  # an officer sees, but does not handle alerts
    assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers=csrf_header(client, app)).status_code == 403
    client.cookies.clear()

    login(client, "operator")
    client.get("/alerts")
    headers = csrf_header(client, app)
    acked = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=headers)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "operator"
    problem = assert_problem(
        client.post(f"/api/v1/alerts/{alert_id}/ack", headers=headers), 409, "alert_already_acknowledged"
    )
    assert "operator" in problem["message_vi"]
    assert_problem(
        client.post(f"/api/v1/alerts/{alert_id}/silence", headers=headers, json={"minutes": 60}),
        422,
        "alert_silence_invalid",
    )
    assert_problem(
        client.post(
            f"/api/v1/alerts/{alert_id}/silence", headers=headers, json={"minutes": 60 * 24 * 31, "reason": "x"}
        ),
        422,
        "alert_silence_invalid",
    )
    silenced = client.post(
        f"/api/v1/alerts/{alert_id}/silence", headers=headers, json={"minutes": 30, "reason": "Đã báo Sở Y tế"}
    )
    assert silenced.status_code == 200 and silenced.json()["silence_reason"] == "Đã báo Sở Y tế"
    clock.advance(timedelta(minutes=31))
    assert client.get(f"/api/v1/alerts/{alert_id}").json()["silenced_until"] is None  # expired
    one = client.get(f"/api/v1/alerts/{alert_id}").json()
    assert [(h["event"], h["actor"]) for h in one["history"]] == [
        ("fired", None),
        ("acknowledged", "operator"),
        ("silenced", "operator"),
    ]
    with database.reading() as session:
        actions = list(
            session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "alert").order_by(AuditEntry.id))
        )
    assert actions == ["alert.acknowledge", "alert.silence"]

    # The page's silence form: a missing reason is said in the form, with the minutes chosen kept.
    page = client.get(f"/alerts/{alert_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    refused = client.post(
        f"/alerts/{alert_id}/silence",
        data={"csrf_token": token, "minutes": "240", "reason": "", "back": f"/alerts/{alert_id}"},
    )
    assert refused.status_code == 422 and "Hãy nhập lý do tắt thông báo" in refused.text
    assert '<option value="240" selected>' in refused.text
    done = client.post(
        f"/alerts/{alert_id}/silence",
        data={"csrf_token": token, "minutes": "240", "reason": "Chờ số liệu mới", "back": "/alerts"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/alerts?done=silenced"
    listing = client.get("/alerts")
    assert "Chờ số liệu mới" in listing.text and "Đã xác nhận: operator" in listing.text
    assert history(database, alert_id)[-1] == "silenced"


def test_events_keep_the_good_items_answer_the_bad_ones_and_fire_event_rules(client, app, database, clock) -> None:
    key = make_key(database, clock(), agency="so_khcn", feed="soc", indicators=["attt.su_kien"])
    make_rule(
        database,
        clock,
        code="attt",
        name_vi="Tấn công mạng",
        kind="events",
        agency="so_khcn",
        params={"category": "security", "min_severity": "warning", "count": 2, "window_minutes": 10},
    )
    good = {"category": "security", "type": "ddos", "severity": "critical", "title": "Tấn công DDoS cổng dịch vụ công"}
    answer = client.post(
        "/api/v1/events",
        headers=key.headers,
        json={
            "events": [
                good,
                {"category": "weather", "type": "mưa"},
                {**good, "occurred_at": "2026-11-27 10:00"},
                {**good, "severity": "info"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 2 and [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["code"] == "bad_category" and "weather" in body["rejected"][0]["message_vi"]
    assert body["rejected"][1]["code"] == "moment_without_offset"
    assert count_rows(database, "events") == 2
    evaluate(database, clock)
    assert alerts(database) == []  # one warning or worse in the window: two needed
    client.post("/api/v1/events", headers=key.headers, json=[{**good, "type": "brute_force", "subject": PROVINCE}])
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "firing" and alert.details["count"] == 2
    clock.advance(timedelta(minutes=11))
    evaluate(database, clock)
    assert only_alert(database).state == "resolved"
    with database.reading() as session:
        assert session.scalar(select(Event.source)).startswith("key:")
    assert_problem(client.post("/api/v1/events", headers=key.headers, json={"events": "x"}), 422, "events_invalid")
