"""Liveness, readiness, Prometheus metrics behind their token, request ids, and JSON log lines."""

from __future__ import annotations

import io
import json
import logging

from fastapi.testclient import TestClient

from cityops.db.migrate import head_revision
from cityops.web.app import create_app
from cityops.web.observability import REQUEST_ID, JsonFormatter, _RequestIdFilter
from conftest import make_key

CASES = "yte.ca_sot_xuat_huyet"


def test_health_and_readiness_answer_without_log_in(client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema": head_revision()}


def test_metrics_need_their_token_and_count_what_happened(backend, clock) -> None:
    closed = create_app(backend.settings, clock=clock, database=backend.database)
    with TestClient(closed) as client:
        assert client.get("/metrics").status_code == 404  # no token set: no metrics at all

    settings = backend.settings.model_copy(update={"metrics_token": "bi-mat-cua-prometheus"})
    app = create_app(settings, clock=clock, database=backend.database)
    key = make_key(backend.database, clock(), agency="trung_tam_kiem_soat_benh_tat", feed="cdc", indicators=[CASES])
    with TestClient(app) as client:
        items = [
            {"indicator": CASES, "subject": "16681", "period": "2026-11-26", "value": 4},
            {"indicator": CASES, "subject": "16681", "period": "2026-11-26", "value": -1},  # below its minimum
        ]
        sent = client.post("/api/v1/observations", headers=key.headers, json={"observations": items})
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
        assert client.get("/metrics", headers={"Authorization": "Bearer sai"}).status_code == 404
        text = client.get("/metrics", headers={"Authorization": "Bearer bi-mat-cua-prometheus"}).text
    assert 'cityops_observations_total{outcome="accepted"} 1.0' in text
    assert 'cityops_observations_total{outcome="rejected"} 1.0' in text
    assert 'cityops_http_requests_total{method="POST",route="/api/v1/observations",status="2xx"} 1.0' in text
    assert 'cityops_http_request_seconds_count{route="/api/v1/observations"} 1.0' in text
    for gauge in ("cityops_feeds_late", "cityops_deliveries_waiting", "cityops_alert_rules_due"):
        assert f"\n{gauge} " in text, gauge


def test_every_answer_carries_a_request_id(client) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.2"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces/and/slashes"})
    assert made.headers["X-Request-ID"] != "bad id with spaces/and/slashes" and len(made.headers["X-Request-ID"]) == 32


def test_log_lines_are_json_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cityops.test_observability")
    logger.addHandler(handler)
    token = REQUEST_ID.set("yeu-cau-42")
    try:
        logger.warning("Nguồn dữ liệu %s trễ hạn", "hcc_igate")
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "Nguồn dữ liệu hcc_igate trễ hạn"
    assert (line["level"], line["request_id"], line["logger"]) == (
        "warning",
        "yeu-cau-42",
        "cityops.test_observability",
    )
