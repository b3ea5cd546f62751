"""Rules evaluated on real ingested data: each kind fires and resolves; pending → firing after the "for" time;
one alert per rule and subject; notifications once per firing; silences; two workers at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from alerts_support import (
    CASES,
    CDC,
    PROVINCE,
    WARD,
    alerts,
    evaluate,
    history,
    make_rule,
    notification_keys,
    only_alert,
    send,
    value,
)
from sqlalchemy import select

from cityops.accounts.models import User
from cityops.alerts import evaluation
from cityops.alerts.models import Alert, AlertRule
from cityops.db.engine import Database
from cityops.feeds.models import Feed, FeedRun
from conftest import Backend, make_key


def _user_ids(database: Database, *usernames: str) -> dict[str, int]:
    with database.reading() as session:
        return dict(
            tuple(row) for row in session.execute(select(User.username, User.id).where(User.username.in_(usernames)))
        )


def test_a_threshold_waits_for_its_time_fires_once_tells_once_and_resolves(client, database, clock, personas) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh_cao",
        name_vi="Sốt xuất huyết tăng cao",
        name_en="Dengue cases high",
        kind="threshold",
        indicator=CASES,
        params={"op": ">", "value": 20},
        severity="critical",
        for_minutes=10,
    )
    evaluate(database, clock)
    assert alerts(database) == []  # nothing sent yet: nothing to judge

    send(client, key, value(CASES, WARD, "2026-11-27", 25), value(CASES, PROVINCE, "2026-11-27", 12))
    with database.reading() as session:
        assert session.scalar(select(AlertRule.due_at)) == clock()  # ingest made the rule due
    assert evaluate(database, clock) == 1
    alert = only_alert(database)  # the ward only: the province's 12 is below 20
    assert (alert.state, alert.fire_count, alert.fired_at) == ("pending", 0, None)
    assert "Phường Thành Vinh" in alert.title_vi and "25" in alert.title_vi
    assert notification_keys(database) == []

    clock.advance(timedelta(minutes=5))
    evaluate(database, clock)
    assert only_alert(database).state == "pending"  # five minutes of ten
    clock.advance(timedelta(minutes=5))
    evaluate(database, clock)
    alert = only_alert(database)
    assert (alert.state, alert.fire_count, alert.fired_at) == ("firing", 1, clock())
    users = _user_ids(database, "operator", "admin", "officer_a", "officer_b", "handler_a")
    # Told: the operators and the users of the agency the indicator's owner (the CDC) — no one else.
    assert notification_keys(database) == sorted(
        (users[name], f"alert:{alert.id}:fired:1") for name in ("admin", "operator")
    )
    clock.advance(timedelta(minutes=1))
    evaluate(database, clock)
    evaluate(database, clock)  # not due again within the minute: nothing happens
    assert len(alerts(database)) == 1 and len(notification_keys(database)) == 2

    send(client, key, value(CASES, WARD, "2026-11-27", 18))  # corrected below the threshold
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "resolved" and alert.resolved_at == clock()
    assert history(database, alert.id) == ["pending", "fired", "resolved"]

    send(client, key, value(CASES, WARD, "2026-11-27", 30))  # back above: pending again, then fires again
    evaluate(database, clock)
    assert only_alert(database).state == "pending"
    clock.advance(timedelta(minutes=10))
    evaluate(database, clock)
    alert = only_alert(database)
    assert (alert.state, alert.fire_count) == ("firing", 2)
    assert sum(key_.endswith(":fired:2") for _, key_ in notification_keys(database)) == 2  # told again, once each


def test_a_pending_alert_that_never_fires_ends_without_a_word(client, database, clock, personas) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh",
        name_vi="Sốt xuất huyết",
        kind="threshold",
        indicator=CASES,
        subject=WARD,
        params={"op": ">=", "value": 10},
        for_minutes=30,
    )
    send(client, key, value(CASES, WARD, "2026-11-27", 11))
    evaluate(database, clock)
    send(client, key, value(CASES, WARD, "2026-11-27", 9))
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "resolved" and alert.fired_at is None
    assert history(database, alert.id) == ["pending", "resolved"]
    assert notification_keys(database) == []


def test_off_target_follows_the_indicators_direction_and_target(client, database, clock, hcc_key) -> None:
    # hcc.ty_le_dung_han: higher is better, the 2026 target is 99 %.
    make_rule(
        database,
        clock,
        code="dung_han",
        name_vi="Tỷ lệ đúng hạn dưới kế hoạch",
        kind="off_target",
        indicator="hcc.ty_le_dung_han",
        params={"tolerance_pct": 1},
    )
    send(
        client,
        hcc_key,
        value("hcc.ty_le_dung_han", PROVINCE, "2026-10", 97.5),
        value("hcc.ty_le_dung_han", WARD, "2026-10", 98.5),
    )
    evaluate(database, clock)
    alert = only_alert(database)  # 97.5 < 99 × 0.99 = 98.01; the ward's 98.5 is within the tolerance
    assert alert.state == "firing" and alert.details["target"] == 99 and alert.details["value"] == 97.5
    assert "99" in alert.title_vi and "2026" in alert.title_en
    send(client, hcc_key, value("hcc.ty_le_dung_han", PROVINCE, "2026-11", 99.2))  # a newer month on target
    clock.advance(timedelta(minutes=1))
    evaluate(database, clock)
    assert only_alert(database).state == "resolved"


def test_change_compares_the_latest_period_with_one_n_periods_before(client, database, clock) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh_tang",
        name_vi="Sốt xuất huyết tăng nhanh",
        kind="change",
        indicator=CASES,
        subject=PROVINCE,
        params={"periods": 2, "op": ">=", "pct": 50},
    )
    send(
        client,
        key,
        value(CASES, PROVINCE, "2026-11-25", 20),
        value(CASES, PROVINCE, "2026-11-26", 40),
        value(CASES, PROVINCE, "2026-11-27", 29),
    )
    evaluate(database, clock)
    assert alerts(database) == []  # 29 against 20 two days before: +45 %
    send(client, key, value(CASES, PROVINCE, "2026-11-27", 31))
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "firing" and alert.details["earlier"] == 20 and alert.details["change"] == 55
    assert "25/11/2026" in alert.title_vi


def test_feed_health_fires_for_a_late_feed_and_a_feed_that_is_down(client, database, clock) -> None:
    late_key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_key(database, clock(), agency="so_y_te", feed="syt_pull", indicators=["yte.luot_kham_ngoai_tru"])
    with database.writing() as session:
        session.execute(Feed.__table__.update().where(Feed.code == "cdc_ngay").values(cadence="daily by 17:00"))
        feed_ids = dict(tuple(row) for row in session.execute(select(Feed.code, Feed.id)))
        for minutes in (3, 2, 1):
            started = clock() - timedelta(minutes=minutes)
            session.add(
                FeedRun(
                    feed_id=feed_ids["syt_pull"],
                    trigger="schedule",
                    started_at=started,
                    finished_at=started,
                    status="failed",
                    error_code="http_error",
                )
            )
    make_rule(database, clock, code="tre", name_vi="Nguồn trễ hạn", kind="feed_health", params={"condition": "late"})
    make_rule(database, clock, code="ngung", name_vi="Nguồn ngừng", kind="feed_health", params={"condition": "down"})
    from cityops.feeds import lateness

    evaluate(database, clock)
    down = only_alert(database)
    assert down.key.endswith(f":feed:{feed_ids['syt_pull']}") and down.state == "firing"
    clock.current = clock() + timedelta(hours=7, minutes=1)  # 17:01, the day's figures not sent
    with database.writing() as session:
        lateness.tick(session, clock())
        lateness.tick(session, clock())
    evaluate(database, clock)
    late = [a for a in alerts(database) if a.kind == "feed_health" and a.feed_id == feed_ids["cdc_ngay"]]
    assert len(late) == 1 and late[0].state == "firing" and late[0].agency_id is not None
    assert {a.kind for a in alerts(database)} == {"feed_health", "feed_late"}  # the feeds' own alert shows too
    send(client, late_key, value(CASES, PROVINCE, "2026-11-27", 3))
    evaluate(database, clock)
    states = {a.key: a.state for a in alerts(database)}
    assert states[late[0].key] == "resolved" and states[down.key] == "firing"


def test_two_workers_at_once_make_one_alert_and_one_notification(
    backend: Backend, client, database, clock, personas
) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    for number in range(6):
        make_rule(
            database,
            clock,
            code=f"sxh_{number}",
            name_vi=f"Quy tắc {number}",
            kind="threshold",
            indicator=CASES,
            params={"op": ">", "value": number},
        )
    send(client, key, *(value(CASES, code, "2026-11-27", 50) for code in (PROVINCE, WARD)))
    second = Database(backend.settings.resolved_database_url)
    try:
        barrier = threading.Barrier(2)

        def work(db: Database, owner: str) -> int:
            barrier.wait(timeout=30)
            return evaluation.evaluate_due(db, clock, owner=owner)

        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(work, (database, second), ("worker-a", "worker-b"), timeout=120))
    finally:
        second.dispose()
    assert sum(done) == 6  # each rule evaluated by one worker only
    found = alerts(database)
    assert len(found) == 12 and {a.state for a in found} == {"firing"} and {a.fire_count for a in found} == {1}
    keys = notification_keys(database)
    assert len(keys) == len(set(keys)) == 12 * 2  # admin and operator, once per alert
    with database.reading() as session:
        assert set(session.scalars(select(AlertRule.eval_owner))) == {""}  # every claim released


def test_a_silenced_pending_alert_fires_without_telling_and_a_later_firing_tells(
    client, database, clock, personas
) -> None:
    from cityops.accounts.roles import Principal
    from cityops.accounts.service import SYSTEM
    from cityops.alerts import service

    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh",
        name_vi="Sốt xuất huyết",
        kind="threshold",
        indicator=CASES,
        subject=WARD,
        params={"op": ">", "value": 10},
        for_minutes=5,
    )
    send(client, key, value(CASES, WARD, "2026-11-27", 12))
    evaluate(database, clock)
    alert_id = only_alert(database).id
    with database.writing() as session:
        service.silence(
            session,
            SYSTEM,
            Principal(role="operator", label="operator"),
            clock(),
            alert_id,
            until=clock() + timedelta(hours=1),
            reason="Đang bảo trì hệ thống",
        )
    clock.advance(timedelta(minutes=5))
    evaluate(database, clock)
    assert only_alert(database).state == "firing"
    assert notification_keys(database) == []  # silenced: no one told
    send(client, key, value(CASES, WARD, "2026-11-27", 5))
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "resolved" and alert.silenced_until is None  # the silence ended with the episode
    send(client, key, value(CASES, WARD, "2026-11-27", 15))
    evaluate(database, clock)
    clock.advance(timedelta(minutes=5))
    evaluate(database, clock)
    assert only_alert(database).fire_count == 2
    assert [k for _, k in notification_keys(database)] == [f"alert:{alert_id}:fired:2"] * 2
    assert history(database, alert_id) == [
        "pending",
        "silenced",
        "fired",
        "not_notified",
        "resolved",
        "pending",
        "fired",
    ]


def test_a_rule_in_auto_mode_makes_an_incident_when_it_fires(client, database, clock, personas) -> None:
    from cityops.incidents.models import Incident

    key = make_key(database, clock(), agency="so_y_te", feed="syt", indicators=["yte.cong_suat_giuong"])
    make_rule(
        database,
        clock,
        code="giuong",
        name_vi="Giường bệnh quá tải",
        kind="threshold",
        indicator="yte.cong_suat_giuong",
        params={"op": ">", "value": 80},
        severity="critical",
        incident_mode="auto",
        incident_category="qua_tai_benh_vien",
    )
    send(client, key, value("yte.cong_suat_giuong", PROVINCE, clock().isoformat(), 91))
    evaluate(database, clock)
    alert = only_alert(database)
    assert alert.state == "firing" and alert.incident_id is not None
    with database.reading() as session:
        incident = session.get(Incident, alert.incident_id)
        assert incident is not None and incident.alert_id == alert.id
    assert "incident" in history(database, alert.id)
    with database.reading() as session:
        assert session.scalar(select(Alert.incident_id)) == alert.incident_id
