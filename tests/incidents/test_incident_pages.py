"""The incident pages through the real HTTP stack, without JavaScript: a handler works an incident from assigned to
resolved with the page forms and the operator closes it from the inbox; refused forms say why next to the form and
change nothing; another agency's incident is a 404 page; the inbox lists what needs a decision and says when
nothing does. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from incidents_support import principal, signed_in, trail
from sqlalchemy import select, update

from cityops.accounts.models import Agency
from cityops.accounts.service import Actor
from cityops.alerts import service as alerts
from cityops.alerts.models import Alert
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.incidents import service
from cityops.incidents.models import Incident, IncidentAttachment, IncidentComment, IncidentTask
from cityops.notifications.models import Delivery
from conftest import Backend

EMPTY = "Không có gì cần quyết định."


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def section(page: str, element_id: str) -> str:
    """The visible text of the element with this id, up to the next section."""
    start = page.index(f'id="{element_id}"')
    return text_of(page[start:].split("</section>")[0].split(">", 1)[1])


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def submit(client: TestClient, page: str, action: str, data: dict[str, Any], **extra: Any) -> Any:
    """Send a form of a page as the browser would: its hidden token, the entries, no redirect followed."""
    token = form_token(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **data}, follow_redirects=False, **extra)


def status_of(database: Database, number: int) -> str:
    with database.reading() as session:
        found = session.get(Incident, number)
        assert found is not None
        return found.status


def new_incident(database: Database, clock: FrozenClock, title: str, **options: Any) -> int:
    who = principal(database, "operator")
    with database.writing() as session:
        return service.create_incident(session, who, Actor("operator", who.user_id), clock(), title=title, **options).id


@pytest.fixture
def files_removed(backend: Backend) -> Iterator[None]:
    """The attachments stored by the test are deleted after it (the data folder outlives the tables)."""
    root = backend.settings.data_dir / "attachments"
    before = set(root.rglob("*")) if root.exists() else set()
    yield
    for path in set(root.rglob("*")) - before if root.exists() else set():
        if path.is_file():
            path.unlink()


@pytest.mark.usefixtures("files_removed")
def test_a_handler_works_an_incident_through_the_pages_and_the_operator_closes_it(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "handler_a", "officer_b") as (operator_, handler_, officer_b_):
        operator, handler, officer_b = operator_.client, handler_.client, officer_b_.client

        # The operator opens it by hand: a mistake first (no title), kept and said next to the field.
        form = {"title": "", "description": "12 ca mắc tại khối 5.", "category": "y_te", "severity": "high"}
        refused = submit(operator, "/incidents/new", "/incidents/new", {**form, "subject": "16681"})
        assert refused.status_code == 422
        assert 'id="f-title-error"' in refused.text and "Hãy nhập tiêu đề sự vụ." in text_of(refused.text)
        assert "12 ca mắc tại khối 5." in refused.text and '<option value="y_te" selected>' in refused.text
        created = submit(
            operator,
            "/incidents/new",
            "/incidents/new",
            {**form, "title": "Ổ dịch sốt xuất huyết", "subject": "16681", "place_text": "Khối 5, phường Thành Vinh"},
        )
        assert created.status_code == 303, created.text
        page_url = created.headers["location"].split("?")[0]
        number = int(page_url.rsplit("/", 1)[1])
        page = operator.get(created.headers["location"]).text
        facts = section(page, "incident-facts")
        assert "Đã tạo sự vụ." in text_of(page)
        assert "Mới" in facts and "Cao" in facts and "Sở Y tế" in facts
        assert "27/11/2026 18:00" in facts and "còn 8 giờ" in facts  # y_te, high: 8 hours from 10:00
        assert "Tạo thủ công" in facts and "Khối 5, phường Thành Vinh" in facts

        # Assigned to the health department and its handler from the incident's page.
        assigned = submit(operator, page_url, f"{page_url}/assign", {"agency": "so_y_te", "assignees": "handler_a"})
        assert assigned.status_code == 303 and status_of(database, number) == "assigned"

        # The handler finds it in "my work", opens it: they may start or reject it, not assign it.
        work = handler.get("/my-work").text
        assert f'data-incident="{number}"' in work and "Giao cho tôi" in section(work, "my-open")
        page = handler.get(page_url).text
        assert "Bắt đầu xử lý" in page and "Từ chối sự vụ" in page and 'id="form-assign"' not in page
        assert page.count('aria-pressed="false"') == 5  # the SOP's five steps, each a button to tick

        # Rejecting without a reason: said in the reject form, nothing changes.
        before = trail(database, number)
        refused = submit(handler, page_url, f"{page_url}/status", {"status": "rejected", "reason": "   "})
        assert refused.status_code == 422
        rejected_form = refused.text.split('id="form-status-rejected"')[1].split("</form>")[0]
        assert "Hãy ghi lý do từ chối sự vụ." in text_of(rejected_form) and 'aria-invalid="true"' in rejected_form
        assert status_of(database, number) == "assigned" and trail(database, number) == before

        # A form without its token changes nothing either.
        no_token = handler.post(f"{page_url}/status", data={"status": "in_progress"}, follow_redirects=False)
        assert no_token.status_code == 403 and "Phiên biểu mẫu đã hết hạn" in text_of(no_token.text)
        assert status_of(database, number) == "assigned" and trail(database, number) == before

        started = submit(handler, page_url, f"{page_url}/status", {"status": "in_progress"})
        assert started.status_code == 303 and started.headers["location"] == f"{page_url}?done=in_progress"
        with database.reading() as session:
            first_task = session.scalars(
                select(IncidentTask).where(IncidentTask.incident_id == number).order_by(IncidentTask.position)
            ).first()
            assert first_task is not None
            task_id, task_text = first_task.id, first_task.text_vi
        ticked = submit(handler, page_url, f"{page_url}/tasks/{task_id}", {"done": "1"})
        assert ticked.status_code == 303 and ticked.headers["location"].endswith(f"#task-{task_id}")
        commented = submit(handler, page_url, f"{page_url}/comments", {"body": "Đã khoanh vùng, phun hóa chất."})
        assert commented.status_code == 303
        upload = {"file": ("biên-bản.txt", "Biên bản kiểm tra ổ dịch".encode(), "text/plain")}
        attached = submit(handler, page_url, f"{page_url}/attachments", {}, files=upload)
        assert attached.status_code == 303, attached.text
        # A link to a number that is not one: the error at the link form, the entry kept.
        wrong = submit(handler, page_url, f"{page_url}/link", {"to": "abc"})
        assert wrong.status_code == 422 and 'id="link-to" name="to" inputmode="numeric" maxlength="12" value="abc"' in (
            wrong.text
        )
        assert "Hãy nhập số của sự vụ, ví dụ 12." in section(wrong.text, "links")

        # Nine hours later it is overdue, and "my work" says so.
        clock.advance(timedelta(hours=9))
        work = handler.get("/my-work").text
        assert "quá hạn 1 giờ" in section(work, "my-open")
        assert "quá hạn 1 giờ" in section(work, "agency-overdue") and "Sở Y tế" in section(work, "agency-overdue")

        resolved = submit(
            handler, page_url, f"{page_url}/status", {"status": "resolved", "reason": "Ổ dịch đã được xử lý."}
        )
        assert resolved.status_code == 303 and status_of(database, number) == "resolved"
        page = handler.get(page_url).text
        checklist = section(page, "checklist")
        assert "xong 1/5" in checklist and "Đã xong — handler_a, 27/11/2026 10:00" in checklist
        assert task_text in checklist
        assert "Đã khoanh vùng, phun hóa chất." in section(page, "comments")
        assert f'href="/api/v1/incidents/{number}/attachments/' in page and "biên-bản.txt" in page
        assert "Ổ dịch đã được xử lý." in section(page, "incident-facts")
        trail_text = section(page, "trail")
        for expected in (
            "operator Tạo sự vụ",
            "Giao xử lý Giao cho Sở Y tế; người xử lý: handler_a",
            "handler_a Đổi trạng thái Đã giao → Đang xử lý",
            f"Hoàn thành đầu việc {task_text}",
            "Bình luận Đã khoanh vùng, phun hóa chất.",
            "Đính kèm tệp biên-bản.txt",
            "Đang xử lý → Đã xử lý — ghi chú: Ổ dịch đã được xử lý.",
        ):
            assert expected in trail_text, expected
        with database.reading() as session:
            assert session.scalar(select(IncidentComment.body).where(IncidentComment.incident_id == number))
            assert session.scalar(select(IncidentAttachment.filename).where(IncidentAttachment.incident_id == number))

        # The operator closes it from the inbox.
        inbox = operator.get("/inbox").text
        assert f'data-incident="{number}"' in inbox.split('id="inbox-resolved"')[1].split("</section>")[0]
        closed = submit(operator, "/inbox", f"{page_url}/status", {"status": "closed", "back": "/inbox"})
        assert closed.status_code == 303 and closed.headers["location"] == f"/inbox?done=closed&incident={number}"
        inbox = operator.get(closed.headers["location"]).text
        assert f"Sự vụ #{number}: Đã đóng sự vụ." in text_of(inbox)
        assert status_of(database, number) == "closed"
        assert section(inbox, "inbox-resolved").endswith(EMPTY)

        # In English, by ?lang=en.
        english = operator.get(f"{page_url}?lang=en").text
        assert "Closed" in section(english, "incident-facts") and "Resolution" in section(english, "incident-facts")
        assert "In progress → Resolved — note: Ổ dịch đã được xử lý." in section(english, "trail")
        assert "1/5 done" in section(english, "checklist")

        # Another agency's officer: the same 404 page as a number that does not exist, and no change goes through.
        hidden = officer_b.get(page_url, params={"lang": "vi"})
        missing = officer_b.get("/incidents/999999")
        assert hidden.status_code == missing.status_code == 404
        assert f"Không có sự vụ số {number} mà bạn được xem." in text_of(hidden.text)
        assert "Ổ dịch" not in hidden.text
        token = form_token(officer_b.get("/incidents").text)
        sneaked = officer_b.post(f"{page_url}/comments", data={"csrf_token": token, "body": "?"})
        assert sneaked.status_code == 404 and trail(database, number)[-1] == "status"
        board = officer_b.get("/incidents").text
        assert f'data-incident="{number}"' not in board


def test_the_inbox_lists_what_needs_a_decision_and_says_when_nothing_does(
    app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with signed_in(app, "operator", "handler_a") as (operator_, handler_):
        operator, handler = operator_.client, handler_.client
        assert handler.get("/inbox").status_code == 403  # the operators' page

        empty = operator.get("/inbox")
        assert empty.status_code == 200
        for part in ("inbox-alerts", "inbox-new", "inbox-resolved", "inbox-overdue", "inbox-deliveries"):
            assert section(empty.text, part).endswith(EMPTY), part
        assert text_of(operator.get("/inbox?lang=en").text).count("Nothing needs a decision.") == 5
        operator.get("/inbox?lang=vi")  # the language chosen is kept in a cookie: back to Vietnamese

        with database.writing() as session:
            health = session.scalar(select(Agency.id).where(Agency.code == "so_y_te"))
            for key, severity, title in (
                ("test:warning", "warning", "Tỷ lệ lấp đầy giường bệnh vượt 90%"),
                ("test:critical", "critical", "Số ca sốt xuất huyết tăng đột biến"),
                ("test:taken", "critical", "Cảnh báo đã có người nhận"),
            ):
                alerts.fire(
                    session,
                    key,
                    clock(),
                    kind="threshold",
                    title_vi=title,
                    title_en=title,
                    severity=severity,
                    agency_id=health,
                )
            session.execute(update(Alert).where(Alert.key == "test:taken").values(acknowledged_at=clock()))
            ids = {key: id_ for key, id_ in session.execute(select(Alert.key, Alert.id))}
            session.add(
                Delivery(
                    key="email:x:1",
                    channel="email",
                    target="a@example.org",
                    payload={},
                    status="dead",
                    attempts=8,
                    created_at=clock(),
                )
            )
        number = new_incident(database, clock, "Ngập sâu đường Lê Lợi", category_code="y_te", severity="medium")

        page = operator.get("/inbox").text
        firing = section(page, "inbox-alerts")
        # The most severe first; an acknowledged one is no longer waiting.
        assert firing.index("Số ca sốt xuất huyết tăng đột biến") < firing.index("Tỷ lệ lấp đầy giường bệnh")
        assert "Cảnh báo đã có người nhận" not in firing and "Nghiêm trọng" in firing and "Sở Y tế" in firing
        assert f'href="/alerts/{ids["test:critical"]}"' in page
        assert f'action="/alerts/{ids["test:critical"]}/incident"' in page
        unassigned = section(page, "inbox-new")
        assert "Ngập sâu đường Lê Lợi" in unassigned and "còn 1 ngày" not in unassigned and "còn 24 giờ" in unassigned
        assert "1 thông báo (e-mail, webhook)" in section(page, "inbox-deliveries")
        assert section(page, "inbox-resolved").endswith(EMPTY) and section(page, "inbox-overdue").endswith(EMPTY)

        # A quick assignment from the inbox: the incident goes to the chosen agency and leaves the list.
        assigned = submit(operator, "/inbox", f"/incidents/{number}/assign", {"agency": "so_y_te", "back": "/inbox"})
        assert assigned.status_code == 303, assigned.text
        assert status_of(database, number) == "assigned"
        assert section(operator.get("/inbox").text, "inbox-new").endswith(EMPTY)
        assert f'data-incident="{number}"' in handler.get("/my-work").text

        # "Tạo sự vụ" on an alert (the alerts pages' route) leads to an incident whose page links back to it.
        made = submit(operator, "/inbox", f"/alerts/{ids['test:critical']}/incident", {})
        assert made.status_code == 303, made.text
        incident_page = operator.get(made.headers["location"]).text
        source = section(incident_page, "incident-facts")
        assert "Từ cảnh báo" in source and f'href="/alerts/{ids["test:critical"]}"' in incident_page
        assert "Số ca sốt xuất huyết tăng đột biến" in source

        # The board: by status, filtered, in English.
        board = operator.get("/incidents").text
        assert f'data-incident="{number}"' in board.split('id="column-assigned"')[1].split("</section>")[0]
        assert "Tạo sự vụ" in board and 'href="/incidents/new"' in board
        assert f'data-incident="{number}"' not in operator.get("/incidents?severity=critical").text
        bad = operator.get("/incidents?severity=rat-cao")
        assert bad.status_code == 422 and "Mức độ “rat-cao” không hợp lệ" in text_of(bad.text)
        english = text_of(operator.get("/incidents?lang=en").text)
        assert "In progress" in english and "Resolved" in english and "New incident" in english
