"""Seeded data for the reports tests: one of each thing the brief must report, and things it must not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from cityops.accounts import service as accounts
from cityops.accounts.models import Agency
from cityops.db.engine import Database
from cityops.feedback.models import FeedbackCategory, Report, ReportContact
from cityops.feeds import service as feeds
from cityops.feeds.models import Feed
from cityops.geo.models import Subject
from cityops.incidents import service as incidents
from cityops.incidents.models import Incident
from cityops.observations.service import ingest_items
from cityops.settings import Settings

COMMUNE = "16681"  # Phường Thành Vinh
CITIZEN_TEXT = "Ống nước vỡ trước nhà ông Nguyễn Văn Bí Mật"
CITIZEN_PHONE = "0912345678"


@dataclass
class Seeded:
    overdue_incident: int
    on_time_incident: int
    failed_feed: str
    healthy_feed: str


def _feed(database: Database, now: datetime, code: str, indicators: list[str]) -> tuple[Any, int]:
    with database.writing() as session:
        feed = feeds.create_feed(
            session, accounts.SYSTEM, now, code=code, agency_code="trung_tam_phuc_vu_hcc", indicator_codes=indicators
        )
        return feeds.feed_principal(feed), feed.id


def send(database: Database, principal: Any, feed_id: int, at: datetime, *items: tuple[str, str, str, float]) -> None:
    rows = [{"indicator": i, "subject": s, "period": p, "value": v} for i, s, p, v in items]
    result = ingest_items(database, principal, rows, at, source="push", feed_id=feed_id)
    assert result.accepted == len(rows), result


def seed(database: Database, now: datetime) -> Seeded:
    """- hcc.ty_le_dung_han at 90 % all year against a target of 98: off target, steady (no anomaly, no change);
    - hcc.ho_so_tiep_nhan of one ward about 100 a month for a year, then 400 in November: an anomaly;
    - hcc.ho_so_giai_quyet of the province 1.000 in September, 1.300 in October received two hours ago: a change;
      hcc.ho_so_tre_han moved by 2 % only: no change;
    - one incident past its deadline, one not; one feed whose last run failed an hour ago, one that ran well;
    - one citizen report from yesterday, open and past its expected answer."""
    principal, feed_id = _feed(
        database,
        now - timedelta(days=400),
        "rp_igate",
        ["hcc.ty_le_dung_han", "hcc.ho_so_tiep_nhan", "hcc.ho_so_giai_quyet", "hcc.ho_so_tre_han"],
    )
    long_ago = now - timedelta(days=20)
    send(
        database,
        principal,
        feed_id,
        long_ago,
        *[("hcc.ty_le_dung_han", "40", f"2026-{m:02d}", 90.0) for m in range(1, 11)],
    )
    months = [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]
    base = [100, 103, 98, 101, 99, 102, 97, 100, 104, 99, 101, 98]
    send(
        database,
        principal,
        feed_id,
        long_ago,
        *[("hcc.ho_so_tiep_nhan", COMMUNE, month, float(v)) for month, v in zip(months, base, strict=True)],
    )
    send(database, principal, feed_id, now - timedelta(hours=3), ("hcc.ho_so_tiep_nhan", COMMUNE, "2026-11", 400.0))
    send(database, principal, feed_id, long_ago, ("hcc.ho_so_giai_quyet", "40", "2026-09", 1000.0))
    send(database, principal, feed_id, long_ago, ("hcc.ho_so_tre_han", "40", "2026-09", 50.0))
    send(
        database,
        principal,
        feed_id,
        now - timedelta(hours=2),
        ("hcc.ho_so_giai_quyet", "40", "2026-10", 1300.0),
        ("hcc.ho_so_tre_han", "40", "2026-10", 51.0),
    )
    _, failed_id = _feed(database, now - timedelta(days=30), "rp_broken", ["hcc.ho_so_co_phi"])
    _, healthy_id = _feed(database, now - timedelta(days=30), "rp_fine", ["hcc.ho_so_so_hoa"])
    with database.writing() as session:
        run = feeds.start_run(session, failed_id, "schedule", now - timedelta(hours=1))
        feeds.finish_run(
            session,
            run.id,
            now - timedelta(hours=1),
            status="failed",
            error_code="http_status",
            message_vi="Máy chủ trả lỗi 503",
            message_en="The server answered 503",
        )
        run = feeds.start_run(session, healthy_id, "schedule", now - timedelta(hours=1))
        feeds.finish_run(session, run.id, now - timedelta(hours=1), status="ok", received=1, accepted=1)
        system = incidents_principal()
        late = incidents.create_incident(
            session,
            system,
            accounts.SYSTEM,
            now - timedelta(days=3),
            title="Mất điện trạm bơm Hưng Dũng",
            agency_code="so_y_te",
            domain="yte",
        )
        fine = incidents.create_incident(
            session,
            system,
            accounts.SYSTEM,
            now - timedelta(hours=1),
            title="Đèn tín hiệu hỏng",
            agency_code="so_y_te",
            domain="antt",
        )
        session.flush()
        session.execute(update(Incident).where(Incident.id == late.id).values(deadline_at=now - timedelta(hours=5)))
        session.execute(update(Incident).where(Incident.id == fine.id).values(deadline_at=now + timedelta(days=2)))
        add_citizen_report(session, now - timedelta(days=1), now - timedelta(hours=1))
        return Seeded(late.id, fine.id, "rp_broken", "rp_fine")


def incidents_principal() -> Any:
    from cityops.accounts.roles import Principal

    return Principal(role="operator", label="system")


def add_citizen_report(session: Any, requested: datetime, expected: datetime) -> None:
    category = session.scalars(select(FeedbackCategory).order_by(FeedbackCategory.id)).first()
    agency = session.scalars(select(Agency).where(Agency.code == "so_y_te")).one()
    subject = session.scalars(select(Subject).where(Subject.code == COMMUNE)).one()
    report = Report(
        tracking_code="PA-TEST-0001",
        token="tok-test-0001",
        category_id=category.id,
        description=CITIZEN_TEXT,
        subject_id=subject.id,
        agency_id=agency.id,
        requested_at=requested,
        updated_at=requested,
        expected_at=expected,
    )
    session.add(report)
    session.flush()
    session.add(
        ReportContact(
            report_id=report.id,
            name="Nguyễn Văn Bí Mật",
            phone=CITIZEN_PHONE,
            email="bimat@example.vn",
            consent_at=requested,
        )
    )


def settings_for(settings: Settings, tmp_path: Any, **extra: Any) -> Settings:
    """The backend's settings with a data directory of the test's own (the report files)."""
    return settings.model_copy(update={"data_dir": tmp_path, **extra})


def feed_of(database: Database, code: str) -> Feed:
    with database.reading() as session:
        return session.scalars(select(Feed).where(Feed.code == code)).one()
