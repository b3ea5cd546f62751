"""`cityops demo` on a fresh data directory: the app and the simulator, through the real API, over real HTTP —
every connector kind (push, http_pull from the simulated LGSP endpoint, spreadsheet uploads, MQTT when Mosquitto is
there) and the agency that is always late, seen in the database and on the Data health page.

The demo runs in its own process with the real clock: what it does in the background is waited for with a deadline.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from cityops.alerts.models import FIRING, Alert, AlertRule
from cityops.catalog.models import Indicator
from cityops.connectors.spreadsheet.models import COMMITTED, SpreadsheetUpload
from cityops.db.engine import Database
from cityops.demo.runner import DEMO_USERS
from cityops.feeds.models import LATE, Feed, FeedExpectation
from cityops.geo.models import Subject
from cityops.incidents.models import CLOSED, Incident, IncidentEvent, IncidentTask
from cityops.observations.models import IngestBatch, Observation
from conftest import service_missing

BROKER = ("127.0.0.1", 1883)
WAIT_SECONDS = 45.0
LATE_FEED = "demo_trung_tam_kiem_soat_benh_tat_day"
LGSP_FEED = "demo_trung_tam_phuc_vu_hcc_month_lgsp"
T = TypeVar("T")


@dataclass
class Demo:
    base_url: str
    log_path: Path
    db: Database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _broker_problem() -> str | None:
    try:
        with socket.create_connection(BROKER, timeout=3):
            return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log_path = data_dir / "demo.log"
    env = {
        **os.environ,
        "CITYOPS_DATA_DIR": str(data_dir),
        "CITYOPS_DEMO_MQTT_BROKER": f"{BROKER[0]}:{BROKER[1]}",
        "CITYOPS_WORKER_TICK_SECONDS": "1",  # pulls and lateness checked every second, not every ten
    }
    env.pop("CITYOPS_DATABASE_URL", None)
    env.pop("CITYOPS_EMBEDDED_WORKER", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityops.cli", "demo", "--port", str(port), "--interval", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    database = Database(f"sqlite:///{data_dir / 'cityops.db'}")
    try:
        deadline = time.monotonic() + 120
        while "sent the recent past" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield Demo(base_url, log_path, database)
    finally:
        database.dispose()
        process.terminate()
        process.wait(timeout=20)


def _eventually(check: Callable[[], T], what: str, demo: Demo, seconds: float = WAIT_SECONDS) -> T:
    """The first truthy answer of `check`, asked again until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f} s\n{demo.log_path.read_text()[-3000:]}"
        time.sleep(0.5)


def _logged_in(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=True)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": token[1]})
    assert answer.status_code == 200 and "/login" not in str(answer.url), answer.text[:500]
    return client


def _user(role: str) -> tuple[str, str]:
    user = next(user for user in DEMO_USERS if user.role == role)
    return user.username, user.password


def _values(html: str) -> dict[str, str]:
    rows = re.findall(r'data-indicator="([^"]+)".*?class="num[^"]*value">([^<]*)<', html, flags=re.S)
    return dict(rows)


def _accepted_by_source(demo: Demo, source: str, feed_code: str | None = None) -> int:
    with demo.db.reading() as session:
        query = select(func.coalesce(func.sum(IngestBatch.accepted), 0)).where(IngestBatch.source == source)
        if feed_code is not None:
            query = query.where(IngestBatch.feed_id == select(Feed.id).where(Feed.code == feed_code).scalar_subquery())
        return int(session.scalar(query) or 0)


def _stored(demo: Demo, indicator: str, feed_kind: str) -> dict[str, int]:
    """How many observations of an indicator each feed of a kind holds."""
    with demo.db.reading() as session:
        rows = session.execute(
            select(Feed.code, func.count())
            .select_from(Observation)
            .join(Feed, Feed.id == Observation.feed_id)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .where(Indicator.code == indicator, Feed.kind == feed_kind)
            .group_by(Feed.code)
        )
        return {code: count for code, count in rows}


def test_demo_prints_the_url_the_logins_and_what_it_runs(demo: Demo) -> None:
    output = demo.log_path.read_text()
    assert f"{demo.base_url}/" in output
    for user in DEMO_USERS:
        assert user.username in output and user.password in output
    assert re.search(r"simulated iGate/LGSP endpoint http://127\.0\.0\.1:\d+/lgsp/", output)
    assert f"{LGSP_FEED} pulls thong-ke-thang" in output
    assert "spreadsheet XLSX templates" in output
    cdc = "Trung tâm Kiểm soát bệnh tật tỉnh Nghệ An (trung_tam_kiem_soat_benh_tat)"
    assert f"late        on purpose: {cdc}, feed {LATE_FEED}" in output
    assert ("mqtt        on: broker 127.0.0.1:1883" in output) == (_broker_problem() is None), output


def test_home_page_shows_values_that_change_within_a_minute(demo: Demo) -> None:
    client = _logged_in(demo.base_url, *_user("leader"))
    try:
        home = client.get("/")
        assert "Tổng quan" in home.text and "Hồ sơ tiếp nhận" in home.text

        def nearly_all_filled() -> dict[str, str]:
            values = _values(client.get("/partials/home-values").text)
            filled = [value for value in values.values() if value != "Chưa có dữ liệu"]
            return values if len(filled) >= 0.9 * len(values) else {}

        first = _eventually(nearly_all_filled, "the simulator supplies nearly every indicator", demo)
        deadline = time.monotonic() + 60
        changed: set[str] = set()
        while not changed and time.monotonic() < deadline:
            time.sleep(2)
            now = _values(client.get("/partials/home-values").text)
            changed = {code for code, value in now.items() if value != first.get(code)}
        assert changed, "no value on the home page changed within a minute"
    finally:
        client.close()


def test_pushed_values_arrive_through_the_api_with_agency_keys(demo: Demo) -> None:
    client = _logged_in(demo.base_url, *_user("admin"))
    try:
        audit = client.get("/api/v1/audit", params={"entity_type": "api_key", "limit": 200}).json()["items"]
        assert any(entry["action"] == "api_key.create" and entry["actor"] == "demo" for entry in audit)
        latest = client.get("/api/v1/indicators/antt.vi_pham_giao_thong/latest", params={"subject_kind": "commune"})
        assert latest.status_code == 200
        body = latest.json()
        assert body["total"] == 130, "every commune of Nghệ An has a value"
        assert all(item["feed"] == "demo_cong_an_tinh_day" for item in body["items"])
    finally:
        client.close()
    assert _accepted_by_source(demo, "push") > 0


def test_public_service_figures_are_pulled_from_the_lgsp_endpoint(demo: Demo) -> None:
    """The public-service centre pushes nothing: its iGate figures reach cityops by http_pull only."""
    _eventually(lambda: _accepted_by_source(demo, "http_pull", LGSP_FEED), "an http_pull batch of the LGSP feed", demo)

    def every_commune_this_month() -> bool:
        with demo.db.reading() as session:
            communes = session.scalar(
                select(func.count(func.distinct(Observation.subject_id)))
                .join(Subject, Subject.id == Observation.subject_id)
                .join(Indicator, Indicator.id == Observation.indicator_id)
                .join(Feed, Feed.id == Observation.feed_id)
                .where(Indicator.code == "hcc.ho_so_tiep_nhan", Feed.code == LGSP_FEED, Subject.kind == "commune")
            )
        return communes == 130

    _eventually(every_commune_this_month, "hcc.ho_so_tiep_nhan of every commune pulled", demo)
    assert _stored(demo, "hcc.ho_so_tiep_nhan", "push") == {}, "nothing of the centre is pushed"
    client = _logged_in(demo.base_url, *_user("admin"))
    try:
        latest = client.get("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", params={"subject_kind": "commune"})
        assert {item["feed"] for item in latest.json()["items"]} == {LGSP_FEED}
        feed = client.get(f"/api/v1/feeds/{LGSP_FEED}").json()
        assert feed["kind"] == "http_pull" and feed["settings"]["token"] == "••••••"
        assert feed["last_run"]["status"] == "ok", feed["last_run"]
    finally:
        client.close()


def test_manual_subsystems_arrive_as_spreadsheet_uploads(demo: Demo) -> None:
    """Socio-economic and tourism figures: templates filled in and uploaded, then committed, with the agency's key."""
    assert _accepted_by_source(demo, "spreadsheet") > 0
    assert _stored(demo, "ktxh.thu_ngan_sach", "spreadsheet") == {"demo_so_tai_chinh_month_province_xlsx": 12}
    assert _stored(demo, "dulich.tong_luot_khach", "spreadsheet") == {"demo_so_vh_tt_dl_month_xlsx": 12}
    assert set(_stored(demo, "dulich.co_so_luu_tru", "spreadsheet")) == {"demo_so_vh_tt_dl_instant_xlsx"}
    assert _stored(demo, "ktxh.thu_ngan_sach", "push") == {}
    with demo.db.reading() as session:
        uploads = session.execute(
            select(SpreadsheetUpload.state, SpreadsheetUpload.uploaded_by, SpreadsheetUpload.error_count)
        ).all()
    assert uploads and {state for state, _by, _errors in uploads} == {COMMITTED}
    assert all(by.startswith("key:") for _state, by, _errors in uploads), "uploaded with the agency's key"
    assert sum(errors for _state, _by, errors in uploads) == 0


def test_the_late_agency_is_late_and_shown_on_the_data_health_page(demo: Demo) -> None:
    def late_periods() -> int:
        with demo.db.reading() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(FeedExpectation)
                    .join(Feed, Feed.id == FeedExpectation.feed_id)
                    .where(Feed.code == LATE_FEED, FeedExpectation.state == LATE)
                )
                or 0
            )

    assert _eventually(late_periods, "late periods of the late feed", demo) >= 2

    def alert_firing() -> bool:
        with demo.db.reading() as session:
            alert = session.scalar(select(Alert).join(Feed, Feed.id == Alert.feed_id).where(Feed.code == LATE_FEED))
            return alert is not None and alert.state == FIRING and alert.kind == "feed_late"

    _eventually(alert_firing, "the late feed's alert firing", demo)
    # Only the late agency's feed is late, every other on time; the health department's officer sees its CDC late.
    seen: dict[str, dict[str, str]] = {}
    for role in ("leader", "officer"):
        client = _logged_in(demo.base_url, *_user(role))
        try:
            page = client.get("/data-health")
            assert page.status_code == 200
            seen[role] = dict(re.findall(r'data-feed="([^"]+)" data-state="([^"]+)"', page.text))
        finally:
            client.close()
    states = seen["leader"]
    assert states[LATE_FEED] in ("late", "down"), states
    # The IOC's own feeds (cityops_*: counts computed from cameras, security events …) have no schedule to keep.
    others = {code: state for code, state in states.items() if code != LATE_FEED and not code.startswith("cityops_")}
    assert len(others) >= 20 and set(others.values()) == {"on_time"}, others
    assert seen["officer"][LATE_FEED] == states[LATE_FEED]


def test_camera_counts_arrive_over_mqtt(demo: Demo) -> None:
    problem = _broker_problem()
    if problem is not None:
        service_missing(f"Mosquitto at {BROKER[0]}:{BROKER[1]}", problem)
    _eventually(lambda: _accepted_by_source(demo, "mqtt"), "an MQTT batch stored", demo)
    stored = _eventually(lambda: _stored(demo, "antt.camera_truc_tuyen", "mqtt"), "camera counts over MQTT", demo)
    assert set(stored) == {"demo_cong_an_tinh_instant_mqtt"}
    # The recorders' counts are not also pushed; the registry's own feed (cityops_camera) counts the 19 cameras.
    assert set(_stored(demo, "antt.camera_truc_tuyen", "push")) <= {"cityops_camera"}


def test_the_nineteen_police_cameras_are_registered_probed_and_viewable(demo: Demo) -> None:
    from cityops.cameras.models import Camera

    def probed() -> list[str]:
        with demo.db.reading() as session:
            rows = session.scalars(select(Camera.status).where(Camera.code.like("demo_cam_%"))).all()
        return list(rows) if len(rows) == 19 and all(status != "unknown" for status in rows) else []

    statuses = _eventually(probed, "19 demo cameras probed", demo)
    assert statuses.count("online") + statuses.count("degraded") >= 15


def test_rules_fire_on_simulated_data_and_an_incident_goes_from_assignment_to_closure(demo: Demo) -> None:
    """The default rules fire on the simulated values; the auto rule opens an incident; the simulator, as the
    operator and the health department's handler, takes it through its checklist to closure over the API."""

    def rule_alerts() -> list[tuple[str, str]]:
        with demo.db.reading() as session:
            return list(
                session.execute(
                    select(AlertRule.code, Alert.state).join(AlertRule, AlertRule.id == Alert.rule_id)
                ).all()
            )

    fired = _eventually(lambda: [code for code, state in rule_alerts() if state == FIRING], "a rule firing", demo)
    assert fired

    def closed() -> Incident | None:
        with demo.db.reading() as session:
            return session.scalar(select(Incident).where(Incident.status == CLOSED, Incident.source == "alert"))

    incident = _eventually(closed, "an incident from an alert closed", demo, seconds=150)
    with demo.db.reading() as session:
        trail = list(
            session.execute(
                select(IncidentEvent.actor, IncidentEvent.action, IncidentEvent.details)
                .where(IncidentEvent.incident_id == incident.id)
                .order_by(IncidentEvent.id)
            ).all()
        )
        tasks = list(session.scalars(select(IncidentTask).where(IncidentTask.incident_id == incident.id)))
    moves = [(actor, details.get("to")) for actor, action, details in trail if action == "status"]
    assert ("xuly", "in_progress") in moves and ("xuly", "resolved") in moves and ("vanhanh", "closed") in moves
    assert any(action == "assigned" and actor == "vanhanh" for actor, action, _details in trail), trail
    assert tasks and all(task.done_by == "xuly" for task in tasks)
    assert "desk: incident #" in demo.log_path.read_text()


def test_citizens_file_reports_over_open311_and_with_photos_through_the_form(demo: Demo) -> None:
    """The demo's citizens file reports over Open311 (the citizen app's key) and, with photos, through the public
    form; the photos are served without their location; the staff list shows the reports (no contact) and the
    feedback indicators are computed from them."""
    import io

    from PIL import Image

    from cityops.feedback.models import Report, ReportPhoto
    from cityops.feedback.stats import FEED_CODE

    def filed() -> dict[str, int]:
        with demo.db.reading() as session:
            counts = dict(session.execute(select(Report.source, func.count()).group_by(Report.source)).all())
            photos = int(session.scalar(select(func.count()).select_from(ReportPhoto)) or 0)
        return counts if counts.get("open311") and counts.get("web") and photos else {}

    _eventually(filed, "reports over Open311 and with photos through the form", demo)
    with demo.db.reading() as session:
        code, photo_id, key_id = session.execute(
            select(Report.tracking_code, ReportPhoto.id, Report.api_key_id)
            .join(ReportPhoto, ReportPhoto.report_id == Report.id)
            .limit(1)
        ).one()
        keyed = session.scalar(select(func.count()).where(Report.source == "open311", Report.api_key_id.is_not(None)))
    assert key_id is None and keyed, "Open311 reports carry the citizen app's key; form reports none"
    served = httpx.get(f"{demo.base_url}/report/{code}/photos/{photo_id}", timeout=30)
    assert served.status_code == 200
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "JPEG" and not image.getexif().get_ifd(0x8825), "the location was stripped"

    client = _logged_in(demo.base_url, *_user("leader"))
    try:
        page = client.get("/feedback")
        assert page.status_code == 200 and code in page.text
        assert "Phản ánh" in page.text and "/feedback/reports/" in page.text
        stats = client.get("/api/v1/feedback/stats").json()
        assert stats["total"] >= 2

        def received_today() -> float:
            latest = client.get("/api/v1/indicators/pakn.tiep_nhan/latest", params={"subject_kind": "province"})
            items = [item for item in latest.json()["items"] if item["feed"] == FEED_CODE]
            return items[0]["value"] if items else 0

        assert _eventually(received_today, "pakn.tiep_nhan computed from the reports", demo, seconds=90) >= 1
    finally:
        client.close()
    assert "citizens: " in demo.log_path.read_text()
