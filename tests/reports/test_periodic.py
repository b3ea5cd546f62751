"""Periodic reports: XLSX cells (Vietnamese headers, numbers as numbers), PDF words and charts, the archive API and
page with who may read what, and the scheduled report e-mailed with its files to a real SMTP server."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import load_workbook
from pypdf import PdfReader
from reports_support import seed, settings_for
from sqlalchemy import select, update

from cityops.accounts.models import User
from cityops.clock import LOCAL_TZ, FrozenClock
from cityops.notifications import delivery
from cityops.reports import service
from cityops.reports.files import FontMissing, pdf_bytes
from cityops.reports.models import ReportRun
from cityops.reports.templates import last_closed, parse_period, period_containing
from conftest import csrf_header, login

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def _made(database: Any, run_id: int | None) -> ReportRun:
    assert run_id is not None
    with database.reading() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None and run.state == "done", run.error if run else None
        session.expunge(run)
        return run


def test_periods() -> None:
    assert period_containing("week", date(2026, 11, 27)) == (date(2026, 11, 23), date(2026, 11, 29))
    assert last_closed("month", date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert last_closed("quarter", date(2026, 11, 27)) == (date(2026, 7, 1), date(2026, 9, 30))
    assert parse_period("quarter", "2026-Q3") == (date(2026, 7, 1), date(2026, 9, 30))
    assert parse_period("month", "15/10/2026") == OCTOBER


def test_the_monthly_report_as_xlsx_and_pdf(database: Any, backend: Any, clock: FrozenClock, tmp_path: Any) -> None:
    seed(database, clock())
    settings = settings_for(backend.settings, tmp_path)
    run = _made(database, service.make_report(database, settings, clock(), "monthly_hcc", *OCTOBER))
    book = load_workbook(tmp_path / "reports" / run.xlsx_path)
    assert book.sheetnames[0] == "Bìa"
    sheet = book["Chỉ tiêu chính so với mục tiêu"]
    headers = [cell.value for cell in sheet[1]]
    assert headers == ["Mã", "Chỉ tiêu", "Đơn vị tính", "Kỳ", "Giá trị", "Mục tiêu", "Đánh giá"]
    assert sheet.freeze_panes == "A2" and sheet[1][0].font.bold
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    rate = rows["hcc.ty_le_dung_han"]
    assert rate[1].value == "Tỷ lệ hồ sơ giải quyết đúng hạn"
    assert rate[4].value == 90 and rate[4].data_type == "n" and rate[4].number_format == "#,##0.0"
    assert rate[5].data_type == "n" and rate[5].value > 90 and rate[6].value == "Cần theo dõi"
    assert sheet.column_dimensions["B"].width >= len("Tỷ lệ hồ sơ giải quyết đúng hạn")
    plan = book["Kế hoạch và thực hiện"]
    assert [cell.value for cell in plan[1]][:3] == ["Mã", "Chỉ tiêu", "Địa bàn"]
    assert [row[0].value for row in plan.iter_rows(min_row=2)] == ["hcc.ty_le_dung_han"]
    anomalies = book["Bất thường"]
    assert (
        anomalies.max_row == 2 and anomalies[2][0].value == "Không có số liệu trong kỳ."
    )  # November's is not October's
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(tmp_path / "reports" / run.pdf_path).pages).split())
    for words in ("Báo cáo tháng hành chính công", "Tháng 10/2026", "Tỷ lệ hồ sơ giải quyết đúng hạn", "Mục tiêu"):
        assert words in text, words
    fonts = {
        str(font.get("/BaseFont"))
        for page in PdfReader(tmp_path / "reports" / run.pdf_path).pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("NotoSans" in name for name in fonts)  # embedded (a subset), not a standard font
    english = load_workbook(io.BytesIO(service.files.xlsx_bytes(run.content, "en")))
    assert [cell.value for cell in english["Headline values vs target"][1]][:2] == ["Code", "Indicator"]


def test_a_missing_font_is_said_clearly(tmp_path: Any) -> None:
    try:
        pdf_bytes({"kind": "brief", "date": "2026-11-27", "changes": []}, tmp_path / "NotoSans-Regular.ttf")
    except FontMissing as exc:
        assert "fonts-noto-core" in str(exc) and "CITYOPS_REPORT_FONT" in str(exc)
    else:
        raise AssertionError("no error")


def test_the_archive_api_and_who_reads_what(
    client: Any, app: Any, database: Any, backend: Any, clock: FrozenClock, personas: Any, tmp_path: Any
) -> None:
    app.state.parts.settings = settings_for(backend.settings, tmp_path)
    login(client, "operator")
    client.get("/reports")
    made = client.post(
        "/api/v1/reports", json={"template": "monthly_province", "period": "2026-10"}, headers=csrf_header(client, app)
    )
    assert made.status_code == 201, made.text
    assert made.json()["period"] == "Tháng 10/2026" and set(made.json()["files"]) == {"pdf", "xlsx"}
    again = client.post(
        "/api/v1/reports",
        json={"template": "monthly_province", "period": "2026-10-15"},
        headers=csrf_header(client, app),
    )
    assert again.status_code == 409 and again.json()["code"] == "report_exists"
    bad = client.post(
        "/api/v1/reports", json={"template": "monthly_province", "period": "2026-11"}, headers=csrf_header(client, app)
    )  # not closed yet
    assert bad.status_code == 422 and bad.json()["code"] == "report_invalid_period"
    unknown = client.post("/api/v1/reports", json={"template": "khong_co"}, headers=csrf_header(client, app))
    assert unknown.status_code == 404 and "message_en" in unknown.json()
    hcc = client.post(
        "/api/v1/reports", json={"template": "monthly_hcc", "period": "2026-10"}, headers=csrf_header(client, app)
    ).json()
    province_id = made.json()["id"]
    xlsx = client.get(f"/api/v1/reports/{province_id}/xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert client.get(f"/api/v1/reports/{province_id}/docx").json()["code"] == "report_no_file"
    page = client.get("/reports?template=monthly_province")
    assert page.status_code == 200 and f'data-run="{province_id}"' in page.text and "Tháng 10/2026" in page.text
    client.cookies.clear()
    login(client, "officer_b")
    listed = [item["template"] for item in client.get("/api/v1/reports").json()["reports"]]
    assert listed == ["monthly_hcc"]  # the province report holds restricted indicators: province-wide readers only
    assert client.get(f"/api/v1/reports/{province_id}/pdf").status_code == 404
    assert client.get(f"/api/v1/reports/{hcc['id']}/pdf").status_code == 200
    refused = client.post("/api/v1/reports", json={"template": "monthly_hcc"}, headers=csrf_header(client, app))
    assert refused.status_code == 403
    client.cookies.clear()
    login(client, "leader")
    content = client.get(f"/api/v1/reports/{province_id}").json()["content"]
    assert content["scope"] == "province"


def test_restricted_indicators_only_in_province_reports(
    database: Any, backend: Any, clock: FrozenClock, tmp_path: Any
) -> None:
    """attt.su_kien_nghiem_trong is restricted (with thresholds): in the province report, never in a domain one."""
    from reports_support import send

    from cityops.accounts import service as accounts
    from cityops.feeds import service as feeds
    from cityops.reports.templates import Template

    with database.writing() as session:
        feed = feeds.create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code="rp_attt",
            agency_code="so_khcn",
            indicator_codes=["attt.su_kien_nghiem_trong"],
        )
        principal, feed_id = feeds.feed_principal(feed), feed.id
    send(database, principal, feed_id, clock(), ("attt.su_kien_nghiem_trong", "40", "2026-10-20", 3.0))
    settings = settings_for(backend.settings, tmp_path)
    province = _made(database, service.make_report(database, settings, clock(), "monthly_province", *OCTOBER))
    codes = {row.get("code") for section in province.content["sections"] for row in section["rows"]}
    assert "attt.su_kien_nghiem_trong" in codes
    every_domain = Template("t", "t", "t", "month", "attt", ("attt",), ("headlines", "anomalies"))
    with database.reading() as session:
        scoped = service.contents.periodic(session, every_domain, *OCTOBER, clock())
    assert "su_kien_nghiem_trong" not in str(scoped)


def test_the_scheduled_report_is_emailed_with_its_files(
    database: Any, backend: Any, personas: Any, tmp_path: Any
) -> None:
    from notifications.notifications_support import smtp_server, with_smtp

    clock = FrozenClock(datetime(2026, 12, 1, 6, 0, tzinfo=LOCAL_TZ))
    with database.writing() as session:
        session.execute(update(User).where(User.username == "operator").values(email="vanhanh@nghean.gov.vn"))
        session.execute(
            update(User).where(User.username == "leader").values(email="lanhdao@nghean.gov.vn", language="en")
        )
        session.execute(update(User).where(User.username == "officer_b").values(email="gd@nghean.gov.vn"))
        operator = session.scalars(select(User).where(User.username == "operator")).one()
        officer = session.scalars(select(User).where(User.username == "officer_b")).one()
        from cityops.accounts.service import principal_for_user

        for user, template in ((operator, "monthly_province"), (officer, "monthly_hcc")):
            service.set_subscription(
                session,
                principal_for_user(session, user),
                service.Actor(user.username, user.id),
                clock(),
                template,
                True,
            )
    with smtp_server() as mailbox:
        settings = settings_for(with_smtp(backend.settings, mailbox), tmp_path)
        made = []
        for _ in range(12):  # one report per step: the due ones of the closed periods (November, the week, Q3)
            step = service.scheduled(database, clock, settings)
            delivery.deliver_due(database, clock, settings, owner="test")
            if not step:
                break
            made.append(step)
        assert "monthly_province:2026-11-01" in made and "monthly_hcc:2026-11-01" in made
        assert not any(step.startswith("daily_brief") for step in made)  # 06:00: the brief waits for 07:00
        mails = mailbox.to("vanhanh@nghean.gov.vn")
        assert len(mails) == 1
        mail = mails[0]
        assert "Báo cáo tháng toàn tỉnh" in str(mail["Subject"]) and "Tháng 11/2026" in str(mail["Subject"])
        names = sorted(part.get_filename() for part in mail.iter_attachments())
        assert names == ["monthly_province_20261101.pdf", "monthly_province_20261101.xlsx"]
        attached = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
        book = load_workbook(io.BytesIO(attached["monthly_province_20261101.xlsx"]))
        assert "Sự vụ" in book.sheetnames
        assert (
            "Báo cáo tháng toàn tỉnh"
            in PdfReader(io.BytesIO(attached["monthly_province_20261101.pdf"])).pages[0].extract_text()
        )
        gd = mailbox.to("gd@nghean.gov.vn")
        assert [len(list(m.iter_attachments())) for m in gd] == [2]
        assert mailbox.to("lanhdao@nghean.gov.vn") == []  # no subscription, and no brief yet
        clock.advance(timedelta(hours=1, minutes=5))  # 07:05: the brief, to the leader by default, in English
        assert service.scheduled(database, clock, settings) == "daily_brief:2026-12-01"
        delivery.deliver_due(database, clock, settings, owner="test")
        brief_mail = mailbox.to("lanhdao@nghean.gov.vn")
        assert len(brief_mail) == 1
        assert "Leader's brief" in str(brief_mail[0]["Subject"])
        html = brief_mail[0].get_body(("html",))
        assert html is not None and "Overdue incidents" in html.get_content()
        assert "https://ioc.nghean.gov.vn/" in html.get_content() or "Nothing to note" in html.get_content()
        assert service.scheduled(database, clock, settings) == ""  # everything made and sent once
        delivery.deliver_due(database, clock, settings, owner="test")
        assert len(mailbox.to("lanhdao@nghean.gov.vn")) == 1 and len(mailbox.to("vanhanh@nghean.gov.vn")) == 1


def test_a_failed_report_says_why_and_is_made_again_later(database: Any, backend: Any, tmp_path: Any) -> None:
    clock = FrozenClock(datetime(2026, 11, 27, 6, 0, tzinfo=LOCAL_TZ))
    broken = settings_for(backend.settings, tmp_path, report_font=tmp_path / "NotoSans-Regular.ttf")
    assert service.scheduled(database, clock, broken) == "weekly_province:2026-11-16"
    with database.reading() as session:
        run = session.scalars(select(ReportRun)).one()
        assert run.state == "failed" and "fonts-noto-core" in run.error
    with database.reading() as session:
        assert service._exists(session, "weekly_province", "province", date(2026, 11, 16), date(2026, 11, 22), clock())
    clock.advance(timedelta(minutes=31))
    fixed = settings_for(backend.settings, tmp_path)
    assert service.scheduled(database, clock, fixed) == "weekly_province:2026-11-16"  # the first in the file
    with database.reading() as session:
        weekly = session.scalars(select(ReportRun).where(ReportRun.template == "weekly_province")).one()
        assert weekly.state == "done" and weekly.error == ""
