"""Systems, Wazuh alerts over HTTP, vulnerabilities, the security page, the burst rule opening an incident, and
website checks against a real local HTTP server (up, 500, timeout, content changed)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.service import SYSTEM
from cityops.alerts import evaluation
from cityops.alerts import rules as alert_rules
from cityops.alerts.models import Alert, AlertRule
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.incidents.models import Incident
from cityops.soc import service, tick, websites
from cityops.soc.models import InformationSystem, SecurityEvent, WebsiteCheck
from conftest import csrf_header, login, make_key

DATA = Path(__file__).parent.parent / "data" / "soc"
PORTAL = {
    "code": "cong_thong_tin",
    "name_vi": "Cổng thông tin điện tử tỉnh",
    "name_en": "Provincial web portal",
    "owner_agency": "so_khcn",
    "security_level": 3,
    "hosts": ["redacted.com", "ubuntu2204", "10.20.0.0/16"],
}
HEALTH = {
    "code": "his_benh_vien",
    "name_vi": "Hệ thống thông tin bệnh viện",
    "owner_agency": "so_y_te",
    "security_level": 2,
    "hosts": ["his.soyte.local"],
}


def _register(database: Database, clock: FrozenClock, *systems: dict[str, Any]) -> None:
    with database.writing() as session:
        for data in systems:
            service.create_system(session, SYSTEM, clock(), data)


def test_systems_registry_api_and_agency_visibility(client: TestClient, app: Any, personas: dict[str, str]) -> None:
    login(client, "operator")
    headers = csrf_header(client, app)
    created = client.post("/api/v1/soc/systems", json=PORTAL, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["subject"] == "system.cong_thong_tin"
    assert client.post("/api/v1/soc/systems", json=HEALTH, headers=headers).status_code == 201
    again = client.post("/api/v1/soc/systems", json=PORTAL, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "soc_system_exists"
    bad = client.post(
        "/api/v1/soc/systems",
        json={"code": "X!", "name_vi": "", "owner_agency": "khong_co", "security_level": 7, "hosts": ["a b"]},
        headers=headers,
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"code", "name_vi", "owner_agency", "security_level", "hosts"} <= fields
    assert all(e["message_vi"] and e["message_en"] for e in bad.json()["errors"])
    patched = client.patch("/api/v1/soc/systems/cong_thong_tin", json={"security_level": 4}, headers=headers)
    assert patched.json()["security_level"] == 4
    client.post("/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    login(client, "officer_a")  # Sở Y tế sees only its own system
    assert [s["code"] for s in client.get("/api/v1/soc/systems").json()["items"]] == ["his_benh_vien"]
    assert client.get("/api/v1/soc/systems/cong_thong_tin").status_code == 404
    page = client.get("/security")
    assert page.status_code == 200 and "his_benh_vien" in page.text and "cong_thong_tin" not in page.text
    refused = client.post("/api/v1/soc/systems", json={**HEALTH, "code": "khac"}, headers=csrf_header(client, app))
    assert refused.status_code == 403


def test_wazuh_samples_over_http_with_a_key(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    _register(database, clock, PORTAL)
    key = make_key(database, clock(), agency="so_khcn", feed="soc_wazuh", indicators=["attt.su_kien"])
    ndjson = (DATA / "wazuh-indexer_sl_integration_test.head6.ndjson").read_bytes()
    answer = client.post("/api/v1/soc/wazuh", content=ndjson, headers=key.headers)
    assert answer.status_code == 200, answer.text
    # the two vulnerability-detector alerts come from agent "localhost": stored, not matched to a system
    assert answer.json()["accepted"] == 6 and answer.json()["matched"] == 4
    one = client.post(
        "/api/v1/soc/wazuh",
        content=(DATA / "wazuh-indexer_wazuh-event.sample.json").read_bytes(),
        headers=key.headers,
    )
    assert one.json()["accepted"] == 1
    mixed = client.post(
        "/api/v1/soc/wazuh",
        json=[
            {"rule": {"level": 99}},
            "text",
            {"rule": {"level": 12, "description": "x"}, "timestamp": "hôm qua"},
            {
                "rule": {
                    "level": 13,
                    "description": "Multiple authentication failures",
                    "groups": ["authentication_failures"],
                },
                "agent": {"name": "khong-ro", "ip": "10.20.3.4"},
                "data": {"srcip": "198.51.100.9"},
            },
        ],
        headers=key.headers,
    )
    body = mixed.json()
    assert body["accepted"] == 1 and [r["code"] for r in body["rejected"]] == ["bad_level", "not_object", "bad_moment"]
    assert all(r["message_vi"] and r["message_en"] for r in body["rejected"])
    assert client.post("/api/v1/soc/wazuh", content=b"{not json", headers=key.headers).status_code == 400
    assert client.post("/api/v1/soc/wazuh", content=b"42", headers=key.headers).json()["code"] == "soc_wazuh_invalid"
    assert client.post("/api/v1/soc/wazuh", json={"rule": {"level": 3}}).status_code == 401
    with database.reading() as session:
        rows = list(session.scalars(select(SecurityEvent).order_by(SecurityEvent.id)))
    shellshock = rows[6]
    assert (shellshock.source_format, shellshock.transport, shellshock.level, shellshock.severity) == (
        "wazuh",
        "http",
        "medium",
        4,
    )
    assert shellshock.rule == "31166 Shellshock attack attempt" and shellshock.category == "web_attack"
    assert shellshock.src_ip == "000.111.222.10" and '"31166"' in shellshock.raw
    assert shellshock.occurred_at.isoformat() == "2024-02-08T14:35:14.334000+00:00"
    network = rows[7]  # matched by agent.ip inside 10.20.0.0/16
    assert network.system_id is not None and network.level == "critical" and network.src_ip == "198.51.100.9"
    login(client, "operator")
    overview = client.get("/api/v1/soc/overview?window=7d").json()
    assert overview["total"] >= 1 and overview["systems"][0]["code"] == "cong_thong_tin"


def test_burst_on_one_system_opens_an_incident(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    _register(database, clock, PORTAL, HEALTH)
    with database.writing() as session:
        alert_rules.load_rules(session, SYSTEM, clock())
    key = make_key(database, clock(), agency="so_khcn", feed="soc_wazuh", indicators=["attt.su_kien"])
    alert = {
        "rule": {"level": 12, "description": "sshd: brute force", "groups": ["authentication_failures"]},
        "agent": {"name": "his.soyte.local"},
        "data": {"srcip": "203.0.113.50"},
    }
    assert client.post("/api/v1/soc/wazuh", json=[alert] * 4, headers=key.headers).json()["accepted"] == 4
    evaluation.evaluate_due(database, clock, owner="w1")
    with database.reading() as session:
        assert session.scalar(select(Incident.id)) is None  # 4 < 5
    client.post("/api/v1/soc/wazuh", json=[alert], headers=key.headers)
    evaluation.evaluate_due(database, clock, owner="w1")
    with database.reading() as session:
        fired = list(session.scalars(select(Alert).where(Alert.state == "firing")))
        incidents = list(session.scalars(select(Incident)))
    burst = [a for a in fired if "his_benh_vien" in a.key or a.subject_id is not None]
    assert burst, [a.key for a in fired]
    assert len(incidents) == 1 and incidents[0].source == "alert"


def test_vulnerabilities_entered_and_imported(
    client: TestClient, app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    _register(database, clock, PORTAL, HEALTH)
    login(client, "operator")
    headers = csrf_header(client, app)
    one = client.post(
        "/api/v1/soc/vulnerabilities",
        json={"system": "cong_thong_tin", "reference": "CVE-2024-3400", "title": "PAN-OS", "cvss": 10},
        headers=headers,
    )
    assert one.json()["created"] == 1
    csv_text = (
        "system,reference,title,level,cvss,status,found_at\n"
        "cong_thong_tin,CVE-2024-3400,PAN-OS GlobalProtect,,10,mitigated,20/11/2026\n"
        "his_benh_vien,CVE-2023-4966,Citrix Bleed,high,9.4,open,2026-11-01\n"
        "khong_co,CVE-1,x,,,,\n"
        "his_benh_vien,CVE-2,x,rat_cao,,,\n"
        "his_benh_vien,CVE-3,x,,11,,\n"
    )
    imported = client.post(
        "/api/v1/soc/vulnerabilities/import", content=csv_text.encode(), headers={**headers, "Content-Type": "text/csv"}
    ).json()
    assert (imported["created"], imported["updated"]) == (1, 1)
    assert [(r["index"], r["code"]) for r in imported["rejected"]] == [
        (2, "unknown_system"),
        (3, "bad_vuln_level"),
        (4, "bad_cvss"),
    ]
    findings = {"findings": [{"system": "his_benh_vien", "reference": "NESSUS-1", "severity": "Low", "status": "open"}]}
    assert client.post("/api/v1/soc/vulnerabilities/import", json=findings, headers=headers).json()["created"] == 1
    items = client.get("/api/v1/soc/vulnerabilities").json()["items"]
    by_ref = {item["reference"]: item for item in items}
    assert by_ref["CVE-2024-3400"]["status"] == "mitigated" and by_ref["CVE-2024-3400"]["level"] == "critical"
    fixed = client.patch(
        f"/api/v1/soc/vulnerabilities/{by_ref['CVE-2023-4966']['id']}", json={"status": "fixed"}, headers=headers
    )
    assert fixed.json()["status"] == "fixed" and fixed.json()["fixed_at"]
    assert (
        client.patch("/api/v1/soc/vulnerabilities/999999", json={"status": "fixed"}, headers=headers).status_code == 404
    )
    page = client.get("/security/vulnerabilities")
    assert page.status_code == 200 and "CVE-2024-3400" in page.text and "Đã giảm thiểu" in page.text


# --- website checks against a real local HTTP server ----------------------------------------------------------


class _Site:
    def __init__(self) -> None:
        self.status = 200
        self.body = "<html><body><h1>Cổng thông tin Nghệ An</h1><p>Cập nhật 27/11/2026 10:05</p></body></html>"
        self.delay = threading.Event()


@pytest.fixture
def site() -> Iterator[tuple[_Site, str]]:
    state = _Site()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if state.status == 0:
                state.delay.wait(5)  # slower than the check's timeout
            code = state.status or 200
            data = state.body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/"
    state.delay.set()
    server.shutdown()
    server.server_close()


def test_website_checks_up_down_timeout_and_changed(
    database: Database, clock: FrozenClock, site: tuple[_Site, str]
) -> None:
    state, url = site
    _register(database, clock, {**PORTAL, "website_url": url, "website_expected_text": "Nghệ An"})

    def check() -> str:
        assert websites.check_due(database, clock, owner="w1", timeout=1.0) == 1
        assert websites.check_due(database, clock, owner="w2", timeout=1.0) == 0  # not due again yet
        with database.reading() as session:
            system = session.scalar(select(InformationSystem))
            assert system is not None
            return system.website_status

    assert check() == "up"
    clock.advance(timedelta(minutes=5))
    state.body = state.body.replace("10:05", "10:10").replace("27/11/2026", "28/11/2026")  # a clock on the page
    assert check() == "up"
    clock.advance(timedelta(minutes=5))
    state.status = 500
    assert check() == "down"
    clock.advance(timedelta(minutes=5))
    state.status = 0  # never answers in time
    assert check() == "down"
    with database.writing() as session:  # two failed checks in a row: the default rule fires for this system
        alert_rules.load_rules(session, SYSTEM, clock())
    evaluation.evaluate_due(database, clock, owner="w1")
    with database.reading() as session:
        rule_id = session.scalar(select(AlertRule.id).where(AlertRule.code == "attt_website_ngung"))
        down = session.scalar(select(Alert).where(Alert.rule_id == rule_id, Alert.state == "firing"))
    assert down is not None and down.subject_id is not None and "Cổng thông tin" in down.title_vi
    clock.advance(timedelta(minutes=5))
    state.status, state.body = 200, state.body.replace("<h1>", "<h1>HACKED BY x — ")
    assert check() == "changed"
    clock.advance(timedelta(minutes=5))
    state.body = "<html><body>Trang bảo trì</body></html>"  # the expected text is gone
    assert check() == "changed"
    with database.reading() as session:
        checks = list(session.scalars(select(WebsiteCheck).order_by(WebsiteCheck.id)))
    assert [(c.status, c.http_status, c.error) for c in checks] == [
        ("up", 200, ""),
        ("up", 200, ""),
        ("down", 500, "HTTP 500"),
        ("down", None, "timeout"),
        ("changed", 200, "content_changed"),
        ("changed", 200, "expected_text_missing"),
    ]
    tick.reset(database)
    assert tick.publish_indicators(database, clock) > 0


def test_normalisation_ignores_dates_times_and_whitespace() -> None:
    a = "<p>Hôm nay 27/11/2026, 10:05:33</p>\n<p>Tin  mới</p><script>var t=1</script>"
    b = "<p>Hôm nay 28/11/2026, 23:59:01</p> <p>Tin mới</p><script>var t=2</script>"
    assert websites.content_hash(a) == websites.content_hash(b)
    assert websites.content_hash(a) != websites.content_hash(a.replace("Tin", "Tin giả"))
