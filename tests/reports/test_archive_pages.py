"""The archive page: make a report now for a chosen period and subscribe, with CSRF; clear errors in both
languages; agencies' officers see only what is theirs to read."""

from __future__ import annotations

import re
from typing import Any

from reports_support import settings_for
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.clock import FrozenClock
from cityops.reports.models import ReportRun, ReportSubscription
from conftest import login


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def test_make_and_subscribe_on_the_archive_page(
    client: Any, app: Any, database: Any, backend: Any, clock: FrozenClock, personas: Any, tmp_path: Any
) -> None:
    app.state.parts.settings = settings_for(backend.settings, tmp_path)
    login(client, "operator")
    page = client.get("/reports")
    assert page.status_code == 200 and 'id="make-report"' in page.text and "Báo cáo định kỳ" in page.text
    token = _token(page.text)
    forged = client.post("/reports/make", data={"template": "weekly_province", "period": "", "csrf_token": "x"})
    assert forged.status_code == 422 and "Biểu mẫu đã hết hạn" in forged.text
    made = client.post(
        "/reports/make",
        data={"template": "quarterly_province", "period": "2026-Q3", "csrf_token": token},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/reports?done=made"
    wrong = client.post(
        "/reports/make", data={"template": "monthly_province", "period": "32/13/2026", "csrf_token": token}
    )
    assert wrong.status_code == 422 and "Không đọc được kỳ" in wrong.text
    listed = client.get("/reports?done=made")
    assert "Đã lập báo cáo." in listed.text and "Quý 3/2026" in listed.text
    saved = client.post(
        "/reports/subscriptions",
        data={"template": "quarterly_province", "subscribed": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with database.reading() as session:
        runs = list(session.scalars(select(ReportRun)))
        assert [(run.template, run.state, run.made_by) for run in runs] == [("quarterly_province", "done", "operator")]
        assert [s.template for s in session.scalars(select(ReportSubscription))] == ["quarterly_province"]
        actions = {entry.action for entry in session.scalars(select(AuditEntry))}
        assert {"report.make", "report.subscribe"} <= actions
    client.cookies.clear()
    login(client, "officer_a")
    officer = client.get("/reports")
    assert officer.status_code == 200 and 'id="make-report"' not in officer.text and "Quý 3/2026" not in officer.text
    refused = client.post(
        "/reports/subscriptions",
        data={"template": "quarterly_province", "subscribed": "1", "csrf_token": _token(officer.text)},
    )
    assert refused.status_code == 422 and "Không có báo cáo" in refused.text
    assert client.post("/reports/make", data={"template": "monthly_yte"}).status_code == 403
