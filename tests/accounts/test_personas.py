"""Who may and may not: /api/v1/me and /api/v1/audit for every persona, logged in through the form."""

from __future__ import annotations

import pytest
from account_helpers import add_user, problem_code
from sqlalchemy import select

from cityops.accounts.models import Agency
from conftest import PERSONAS, login

# persona, path, status, problem code when refused
TABLE = [
    ("admin", "/api/v1/me", 200, None),
    ("operator", "/api/v1/me", 200, None),
    ("leader", "/api/v1/me", 200, None),
    ("officer_a", "/api/v1/me", 200, None),
    ("officer_b", "/api/v1/me", 200, None),
    ("citizen", "/api/v1/me", 200, None),
    ("anonymous", "/api/v1/me", 401, "unauthenticated"),
    ("admin", "/api/v1/audit", 200, None),
    ("operator", "/api/v1/audit", 403, "forbidden"),
    ("leader", "/api/v1/audit", 403, "forbidden"),
    ("officer_a", "/api/v1/audit", 403, "forbidden"),
    ("officer_b", "/api/v1/audit", 403, "forbidden"),
    ("citizen", "/api/v1/audit", 403, "forbidden"),
    ("anonymous", "/api/v1/audit", 401, "unauthenticated"),
]


def as_persona(client, database, clock, persona: str) -> None:
    """Create just this persona (as conftest.PERSONAS defines it) and log in, or stay anonymous."""
    if persona == "anonymous":
        return
    role, agency = PERSONAS[persona]
    add_user(database, clock(), persona, role, agency)
    login(client, persona)


@pytest.mark.parametrize(("persona", "path", "status", "code"), TABLE, ids=[f"{p}-{u}" for p, u, _, _ in TABLE])
def test_who_may_call(client, database, clock, persona: str, path: str, status: int, code: str | None) -> None:
    as_persona(client, database, clock, persona)
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert problem_code(answer) == code


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_me_names_the_persona_role_and_agency(client, database, clock, persona: str) -> None:
    as_persona(client, database, clock, persona)
    role, agency = PERSONAS[persona]
    with database.reading() as session:
        agency_id = session.scalar(select(Agency.id).where(Agency.code == agency)) if agency else None
    me = client.get("/api/v1/me").json()
    assert (me["label"], me["role"], me["agency_id"]) == (persona, role, agency_id)
