"""Escalation of incidents whose deadline nears or passes (three stages, each told once to the right people, even
with two workers at the same moment), and incidents made from alerts and citizen reports exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from incidents_support import principal, told_about, trail
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import Agency, AuditEntry
from cityops.alerts import service as alerts
from cityops.alerts.models import Alert
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.incidents import escalation, service
from cityops.incidents.models import Incident, IncidentEvent
from conftest import Backend, count_rows

T = TypeVar("T")
OPERATORS = [("admin", "incident.escalated"), ("operator", "incident.escalated")]


def make(database: Database, clock: FrozenClock, *, severity: str = "critical", assignees: tuple[str, ...] = ()) -> int:
    """An incident of category y_te (Sở Y tế), made by the operator, assigned when asked."""
    operator = principal(database, "operator")
    actor = accounts.Actor.of(operator)
    with database.writing() as session:
        incident = service.create_incident(
            session, operator, actor, clock(), title="Ổ dịch sốt xuất huyết", category_code="y_te", severity=severity
        )
        if assignees:
            service.assign(session, operator, actor, clock(), incident.id, usernames=assignees)
        return incident.id


def stages(database: Database, incident_id: int) -> list[int]:
    with database.reading() as session:
        return [
            event.details["stage"]
            for event in session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id, IncidentEvent.action == "escalated")
                .order_by(IncidentEvent.id)
            )
        ]


def test_escalation_goes_through_three_stages_telling_the_right_people_once(
    database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with database.writing() as session:
        accounts.update_user(session, accounts.SYSTEM, clock(), "officer_a", is_agency_head=True)
    assigned = make(database, clock, assignees=("handler_a",))  # critical: 4 hours
    unassigned = make(database, clock)
    quiet = make(database, clock, severity="low")  # 72 hours: nothing happens to it for a long time
    done = make(database, clock, assignees=("handler_a",))
    operator = principal(database, "operator")
    with database.writing() as session:
        for status in ("in_progress", "resolved"):
            service.change_status(session, operator, accounts.Actor.of(operator), clock(), done, status=status)
    before = {number: told_about(database, number) for number in (assigned, unassigned)}

    clock.advance(timedelta(hours=2, minutes=59))  # more than a quarter of the 4 hours left
    assert escalation.escalate(database, clock) == 0
    clock.advance(timedelta(minutes=1))  # one hour (25 %) left: the handlers hear
    assert escalation.escalate(database, clock) == 2
    assert escalation.escalate(database, clock) == 0
    assert told_about(database, assigned) == sorted([*before[assigned], ("handler_a", "incident.deadline_soon")])
    assert told_about(database, unassigned) == sorted(
        [*before[unassigned], ("handler_a", "incident.deadline_soon"), ("officer_a", "incident.deadline_soon")]
    )

    clock.advance(timedelta(hours=1))  # the deadline: handlers and the agency's head
    assert escalation.escalate(database, clock) == 2
    overdue = [(name, kind) for name, kind in told_about(database, assigned) if kind == "incident.overdue"]
    assert overdue == [("handler_a", "incident.overdue"), ("officer_a", "incident.overdue")]
    overdue = [(name, kind) for name, kind in told_about(database, unassigned) if kind == "incident.overdue"]
    assert overdue == [("handler_a", "incident.overdue"), ("officer_a", "incident.overdue")]

    clock.advance(timedelta(hours=1, minutes=59))
    assert escalation.escalate(database, clock) == 0
    clock.advance(timedelta(minutes=1))  # overdue by half the allowed time (2 hours): the center's operators
    assert escalation.escalate(database, clock) == 2
    assert escalation.escalate(database, clock) == 0
    for number in (assigned, unassigned):
        escalated = [(name, kind) for name, kind in told_about(database, number) if kind == "incident.escalated"]
        assert escalated == OPERATORS
        assert stages(database, number) == [1, 2, 3]
        assert trail(database, number)[-3:] == ["escalated"] * 3
    assert stages(database, quiet) == [] and stages(database, done) == []
    with database.reading() as session:
        assert session.scalar(select(Incident.escalation_stage).where(Incident.id == quiet)) == 0
        audit = session.scalars(select(AuditEntry.action).where(AuditEntry.action == "incident.escalated")).all()
        assert len(audit) == 6
        message = session.scalars(select(AuditEntry.details).where(AuditEntry.action == "incident.escalated")).first()
        assert message is not None and message["kind"] == "incident.deadline_soon"

    # A worker that was down for days: the low incident passes its deadline and 24 hours more at once. It is
    # recorded through every stage, but "deadline approaching" is not sent for an incident already overdue.
    clock.advance(timedelta(hours=72 + 24))
    assert escalation.escalate(database, clock) == 3
    assert stages(database, quiet) == [1, 2, 3]
    kinds = [kind for _name, kind in told_about(database, quiet) if kind != "incident.assigned"]
    assert "incident.deadline_soon" not in kinds
    assert sorted(kinds) == sorted(["incident.overdue", "incident.overdue", "incident.escalated", "incident.escalated"])

    # A new deadline starts escalation again.
    with database.writing() as session:
        service.update_incident(
            session,
            operator,
            accounts.Actor.of(operator),
            clock(),
            quiet,
            {"deadline_at": clock() + timedelta(hours=48)},
        )
    assert escalation.escalate(database, clock) == 0
    clock.advance(timedelta(hours=11))  # 37 hours left of the 150 allowed since its creation: under a quarter
    assert escalation.escalate(database, clock) == 1 and stages(database, quiet)[-1] == 1


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls, timeout=120))


def test_two_workers_escalating_at_once_tell_no_one_twice(
    backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    """On PostgreSQL the two runs really overlap; on SQLite the write lock puts one after the other."""
    numbers = [make(database, clock, assignees=("handler_a",)) for _ in range(6)]
    second = Database(backend.settings.resolved_database_url)  # another process's engine, as a second worker has
    try:
        for step in (timedelta(hours=3), timedelta(hours=1, minutes=1), timedelta(hours=2)):
            clock.advance(step)
            taken = race([lambda: escalation.escalate(database, clock), lambda: escalation.escalate(second, clock)])
            assert sum(taken) == len(numbers)
    finally:
        second.dispose()
    for number in numbers:
        assert stages(database, number) == [1, 2, 3]
        escalations = [pair for pair in told_about(database, number) if pair[1] != "incident.assigned"]
        assert escalations == sorted(
            [
                ("handler_a", "incident.deadline_soon"),
                ("handler_a", "incident.overdue"),
                *OPERATORS,
            ]
        )
    assert count_rows(database, "incident_events") == len(numbers) * (2 + 3)  # created, assigned, 3 stages


def fire(database: Database, clock: FrozenClock, key: str, **values: Any) -> int:
    with database.writing() as session:
        alerts.fire(session, key, clock(), **values)
        alert_id = session.scalar(select(Alert.id).where(Alert.key == key))
        assert alert_id is not None
        return alert_id


def test_an_alert_or_a_citizen_report_makes_one_incident_however_often_asked(
    backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with database.reading() as session:
        so_y_te = accounts.get_agency(session, "so_y_te").id
    alert_id = fire(
        database,
        clock,
        "rule:7:subject:16681",
        kind="threshold",
        severity="critical",
        agency_id=so_y_te,
        title_vi="Số ca sốt xuất huyết vượt ngưỡng tại Thành Vinh",
        title_en="Dengue cases over the threshold in Thanh Vinh",
    )
    with database.writing() as session:
        made = service.create_from_alert(session, accounts.SYSTEM, clock(), alert_id, category_code="y_te")
        first = made.id
    with database.writing() as session:
        again = service.create_from_alert(session, accounts.SYSTEM, clock(), alert_id)
        assert again.id == first
    with database.reading() as session:
        incident = session.get(Incident, first)
        assert incident is not None and session.get(Alert, alert_id).incident_id == first  # type: ignore[union-attr]
        assert incident.severity == "high" and incident.source == "alert" and incident.alert_id == alert_id
        assert incident.title == "Số ca sốt xuất huyết vượt ngưỡng tại Thành Vinh"
        assert incident.deadline_at == clock() + timedelta(hours=8)
    assert count_rows(database, "incidents") == 1 and count_rows(database, "incident_tasks") == 5
    assert told_about(database, first) == [("handler_a", "incident.assigned"), ("officer_a", "incident.assigned")]

    # Two workers asking at the same moment: one incident, both answered with it.
    late_feed = fire(
        database,
        clock,
        "feed_late:99",
        kind="feed_late",
        severity="warning",
        title_vi="Nguồn dữ liệu trễ hạn",
        title_en="Feed late",
    )
    second = Database(backend.settings.resolved_database_url)

    def make_with(db: Database) -> Callable[[], int]:
        def call() -> int:
            with db.writing() as session:
                return service.create_from_alert(session, accounts.SYSTEM, clock(), late_feed).id

        return call

    try:
        answers = race([make_with(database), make_with(second)])
    finally:
        second.dispose()
    assert answers[0] == answers[1]
    with database.reading() as session:
        made_for_feed = session.scalars(select(Incident).where(Incident.alert_id == late_feed)).all()
        assert [incident.id for incident in made_for_feed] == [answers[0]]
        assert made_for_feed[0].severity == "medium"
        agency = session.get(Agency, made_for_feed[0].agency_id)
        assert agency is not None and agency.code == "trung_tam_giam_sat_dieu_hanh"  # the du_lieu category's
    assert trail(database, answers[0]) == ["created"]

    with database.writing() as session:
        report = service.create_from_report(
            session,
            accounts.SYSTEM,
            clock(),
            source_ref="PAKN-2026-0042",
            title="Rác thải ùn ứ đường Lê Lợi",
            subject_code="16681",
        )
    with database.writing() as session:
        assert (
            service.create_from_report(session, accounts.SYSTEM, clock(), source_ref="PAKN-2026-0042", title="x").id
            == report.id
        )
    with database.reading() as session:
        found = session.get(Incident, report.id)
        assert found is not None and found.source == "citizen" and found.source_ref == "PAKN-2026-0042"
    assert count_rows(database, "incidents") == 3
