"""Helpers of the incidents tests: users signed in on their own clients, reading the trail, audit and notifications."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.models import AuditEntry, User
from cityops.db.engine import Database
from cityops.incidents.models import IncidentEvent
from cityops.notifications.models import Notification
from conftest import csrf_header, login


class As:
    """One persona's browser session: its client and the CSRF header its page scripts send."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.client.patch(url, headers=self.headers, **kwargs)


@contextmanager
def signed_in(app: Any, *usernames: str) -> Iterator[list[As]]:
    """Each persona logged in on a client of its own (the same app, database and clock)."""
    clients = [TestClient(app, base_url="http://testserver") for _ in usernames]
    try:
        sessions = []
        for client, username in zip(clients, usernames, strict=True):
            login(client, username)
            sessions.append(As(client, csrf_header(client, app)))
        yield sessions
    finally:
        for client in clients:
            client.close()


def trail(database: Database, incident_id: int) -> list[str]:
    """The actions of an incident's trail, oldest first."""
    with database.reading() as session:
        return list(
            session.scalars(
                select(IncidentEvent.action).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id)
            )
        )


def audited(database: Database, incident_id: int) -> list[str]:
    """The audit log's actions about an incident, oldest first."""
    with database.reading() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_type == "incident", AuditEntry.entity_id == str(incident_id))
                .order_by(AuditEntry.id)
            )
        )


def notified(database: Database, kind: str | None = None) -> list[tuple[str, str]]:
    """(username, kind) of every in-app notification, sorted."""
    with database.reading() as session:
        query = select(User.username, Notification.kind).join(User, User.id == Notification.user_id)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return sorted((name, found) for name, found in session.execute(query))


def user_id(database: Database, username: str) -> int:
    with database.reading() as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


def principal(database: Database, username: str) -> Any:
    """The principal of a persona, as a request of theirs would carry."""
    from cityops.accounts.service import principal_for_user

    with database.reading() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return principal_for_user(session, user)


def told_about(database: Database, incident_id: int) -> list[tuple[str, str]]:
    """(username, kind) of every notification linking to an incident, sorted (repeats kept)."""
    with database.reading() as session:
        query = (
            select(User.username, Notification.kind)
            .join(User, User.id == Notification.user_id)
            .where(Notification.link == f"/incidents/{incident_id}")
        )
        return sorted((name, kind) for name, kind in session.execute(query))
