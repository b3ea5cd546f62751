"""Issue 5, point 6: two whole workers ticking at the same moment, round after round, on one database — rules
evaluated, alerts fired, incidents opened by an auto rule, deadlines escalated — and nothing happens twice."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from alerts.alerts_support import CASES, CDC, PROVINCE, WARD, make_rule, send, value
from cityops.alerts.models import Alert, AlertEvent
from cityops.db.engine import Database
from cityops.incidents.models import Incident, IncidentEvent
from cityops.notifications.models import Notification
from cityops.worker import Worker
from conftest import make_key


def test_two_workers_at_once_make_each_alert_incident_and_notification_once(
    backend, client, database, clock, personas
) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh_cao",
        name_vi="Sốt xuất huyết tăng cao",
        kind="threshold",
        indicator=CASES,
        params={"op": ">", "value": 20},
        severity="critical",
        incident_mode="auto",
        incident_category="y_te",
        agency="so_y_te",  # its alerts and incidents go to the health department (officer_a, handler_a)
    )
    send(client, key, *(value(CASES, code, "2026-11-27", 50) for code in (PROVINCE, WARD)))
    second = Database(backend.settings.resolved_database_url)
    secret = backend.settings.resolved_secret_key
    workers = [Worker(database, clock, secret, name="worker-a"), Worker(second, clock, secret, name="worker-b")]
    try:
        with ThreadPoolExecutor(2) as pool:
            # The rule fires and opens its incidents (high: 8 hours); then the deadlines come near, pass, pass far.
            for step in (
                timedelta(0),
                timedelta(minutes=1),
                timedelta(hours=6, minutes=30),
                timedelta(hours=2),
                timedelta(hours=5),
            ):
                clock.advance(step)
                barrier = threading.Barrier(2)

                def tick(worker: Worker, barrier: threading.Barrier = barrier) -> dict[str, object]:
                    barrier.wait(timeout=30)
                    return worker.tick()

                list(pool.map(tick, workers, timeout=300))
    finally:
        second.dispose()

    with database.reading() as session:
        alerts = list(session.scalars(select(Alert).where(Alert.rule_id.is_not(None))))
        incidents = list(session.scalars(select(Incident)))
        fired = Counter(session.scalars(select(AlertEvent.alert_id).where(AlertEvent.event == "fired")))
        stages = Counter(
            (row.incident_id, row.action, str(row.details.get("stage", "")))
            for row in session.execute(select(IncidentEvent.incident_id, IncidentEvent.action, IncidentEvent.details))
        )
        told = Counter(
            (row.user_id, row.kind, row.link)
            for row in session.execute(select(Notification.user_id, Notification.kind, Notification.link))
        )
    assert len(alerts) == 2 and {alert.state for alert in alerts} == {"firing"}
    assert all(count == 1 for count in fired.values()) and len(fired) == 2
    # One incident per alert, however many workers saw it fire; each escalated through every stage once.
    assert sorted(incident.alert_id for incident in incidents) == sorted(alert.id for alert in alerts)
    assert {incident.escalation_stage for incident in incidents} == {3}
    assert all(count == 1 for count in stages.values()), stages
    # Nobody is told the same thing twice: each person, kind and subject once.
    kinds = {kind for _user, kind, _link in told}
    assert {"alert.fired", "incident.deadline_soon", "incident.overdue", "incident.escalated"} <= kinds, kinds
    assert all(count == 1 for count in told.values()), [item for item, count in told.items() if count > 1]
