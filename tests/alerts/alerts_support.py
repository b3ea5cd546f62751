"""What the alert tests share: rules made through the service, values sent through the real API, one evaluation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.service import SYSTEM
from cityops.alerts import evaluation, rules
from cityops.alerts.models import Alert, AlertEvent
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.notifications.models import Notification
from conftest import AgencyKey

OBSERVATIONS = "/api/v1/observations"
CASES = "yte.ca_sot_xuat_huyet"  # dengue cases per day and commune, owned by the CDC (under Sở Y tế)
CDC = "trung_tam_kiem_soat_benh_tat"
PROVINCE = "40"
WARD = "16681"  # Phường Thành Vinh


def make_rule(database: Database, clock: FrozenClock, **definition: Any) -> None:
    with database.writing() as session:
        rules.create_rule(session, SYSTEM, clock(), definition)


def send(client: TestClient, key: AgencyKey, *items: dict[str, Any]) -> None:
    answer = client.post(OBSERVATIONS, headers=key.headers, json={"observations": list(items)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(items), answer.text


def value(indicator: str, subject: str, period: str, number: float) -> dict[str, Any]:
    return {"indicator": indicator, "subject": subject, "period": period, "value": number}


def evaluate(database: Database, clock: FrozenClock, owner: str = "test-worker") -> int:
    return evaluation.evaluate_due(database, clock, owner=owner)


def alerts(database: Database) -> list[Alert]:
    with database.reading() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def only_alert(database: Database) -> Alert:
    found = alerts(database)
    assert len(found) == 1, [(a.key, a.state) for a in found]
    return found[0]


def history(database: Database, alert_id: int) -> list[str]:
    with database.reading() as session:
        return list(
            session.scalars(select(AlertEvent.event).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id))
        )


def notification_keys(database: Database) -> list[tuple[int, str]]:
    with database.reading() as session:
        return sorted(tuple(row) for row in session.execute(select(Notification.user_id, Notification.key)))
