"""The leader's daily brief: made from seeded data, it reports each known thing and nothing else; made once by two
workers; shown on /brief; as PDF with Vietnamese words intact."""

from __future__ import annotations

import io
import threading
from datetime import date, timedelta
from typing import Any

from pypdf import PdfReader
from reports_support import COMMUNE, seed, settings_for
from sqlalchemy import select

from cityops.clock import FrozenClock
from cityops.reports import service
from cityops.reports.models import ReportRun
from cityops.worker import Worker
from conftest import login

TODAY = date(2026, 11, 27)


def _brief(database: Any, settings: Any, clock: FrozenClock) -> dict[str, Any]:
    run_id = service.make_brief(database, settings, clock(), TODAY)
    assert run_id is not None
    with database.reading() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None and run.state == "done", run.error if run else None
        return {"content": run.content, "pdf": run.pdf_path, "id": run.id}


def test_the_brief_reports_each_seeded_item_and_nothing_else(
    database: Any, backend: Any, clock: FrozenClock, tmp_path: Any
) -> None:
    seeded = seed(database, clock())
    settings = settings_for(backend.settings, tmp_path)
    made = _brief(database, settings, clock)
    content = made["content"]
    assert [row["indicator"] for row in content["changes"]] == ["hcc.ho_so_giai_quyet"]
    change = content["changes"][0]
    assert (change["previous"], change["value"], change["change_pct"]) == (1000.0, 1300.0, 30.0)
    assert {(row["indicator"], row["status"]) for row in content["off_target"]} == {("hcc.ty_le_dung_han", "off_track")}
    # The ward's jump, and the province's total made from its communes (the ward is its only one with values).
    assert {(row["indicator"], row["subject"]) for row in content["anomalies"]} == {
        ("hcc.ho_so_tiep_nhan", COMMUNE),
        ("hcc.ho_so_tiep_nhan", "40"),
    }
    assert {row["value"] for row in content["anomalies"]} == {400.0}
    assert [row["id"] for row in content["overdue_incidents"]] == [seeded.overdue_incident]
    assert content["overdue_incidents"][0]["link"] == f"/incidents/{seeded.overdue_incident}"
    assert [(row["code"], row["failed"], row["late"]) for row in content["feeds"]] == [
        (seeded.failed_feed, True, False)
    ]
    assert content["feeds"][0]["error"]["vi"] == "Máy chủ trả lỗi 503"
    assert content["citizen"] == {"yesterday": 1, "open": 1, "overdue": 1, "link": "/feedback"}
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(tmp_path / "reports" / made["pdf"]).pages).split()
    )
    for words in (
        "Bản tin lãnh đạo",
        "Sự vụ quá hạn",
        "Tỷ lệ hồ sơ giải quyết đúng hạn",
        "Mất điện trạm bơm Hưng Dũng",
    ):
        assert words in text, words


def test_the_brief_is_made_once_by_two_workers_after_its_time(database: Any, backend: Any, tmp_path: Any) -> None:
    clock = FrozenClock(service_time(6, 59))
    settings = settings_for(backend.settings, tmp_path)
    workers = [Worker(database, clock, settings.resolved_secret_key, name=f"w{n}", settings=settings) for n in (1, 2)]
    assert not service.scheduled(database, clock, settings).startswith("daily_brief")  # 06:59: not yet
    clock.advance(timedelta(minutes=1))
    barrier = threading.Barrier(2)
    results: list[str] = []

    def run(worker: Worker) -> None:
        barrier.wait()
        results.append(service.scheduled(worker.db, worker.clock, worker.settings))

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with database.reading() as session:
        briefs = list(session.scalars(select(ReportRun).where(ReportRun.template == "daily_brief")))
    assert [(run.period_start, run.state) for run in briefs] == [(TODAY, "done")]
    assert sorted(results).count("daily_brief:2026-11-27") == 1
    for worker in workers:  # later ticks make the other due reports, never a second brief
        worker.tick()
    with database.reading() as session:
        assert len(list(session.scalars(select(ReportRun).where(ReportRun.template == "daily_brief")))) == 1


def service_time(hour: int, minute: int) -> Any:
    from datetime import datetime

    from cityops.clock import LOCAL_TZ

    return datetime(2026, 11, 27, hour, minute, tzinfo=LOCAL_TZ)


def test_the_brief_page_for_leaders_only(
    client: Any, app: Any, database: Any, backend: Any, clock: FrozenClock, personas: Any, tmp_path: Any
) -> None:
    seeded = seed(database, clock())
    app.state.parts.settings = settings_for(backend.settings, tmp_path)
    service.make_brief(database, app.state.parts.settings, clock(), TODAY)
    login(client, "leader")
    page = client.get("/brief")
    assert page.status_code == 200
    assert "Bản tin lãnh đạo" in page.text and "Sự vụ quá hạn" in page.text
    assert f'href="/incidents/{seeded.overdue_incident}"' in page.text
    assert 'href="/feeds/rp_broken"' in page.text and "rp_fine" not in page.text
    assert "<script" not in page.text.split("</header>")[1]
    english = client.get("/brief/2026-11-27?lang=en")
    assert "Overdue incidents" in english.text
    assert client.get("/brief/2026-11-20").status_code == 404
    pdf = client.get(f"/api/v1/reports/{_brief_id(database)}/pdf?lang=vi")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "Sự vụ quá hạn" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    api = client.get("/api/v1/brief/27/11/2026".replace("27/11/2026", "2026-11-27"))
    assert api.status_code == 200 and api.json()["content"]["citizen"]["open"] == 1
    client.cookies.clear()
    login(client, "officer_a")
    assert client.get("/brief").status_code == 403
    assert client.get("/api/v1/brief").status_code == 404


def _brief_id(database: Any) -> int:
    with database.reading() as session:
        found = session.scalar(select(ReportRun.id).where(ReportRun.template == "daily_brief"))
        assert found is not None
        return int(found)
