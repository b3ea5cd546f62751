"""Requests cityops sends out reach no internal address unless an admin allows it (SSRF): the policy itself, an
http_pull feed pointed at the machine's own network, and a webhook pointed there."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from cityops import outbound
from cityops.notifications.delivery import post_webhook
from connectors.http_pull.source import Reply, SourceServer, answer, make_feed, record, run, settings, stored

NOBODY = outbound.Policy()
ALLOW_LOOPBACK = outbound.parse_policy("127.0.0.0/8, igate.noi-bo.gov.vn")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin",
        "http://localhost/",
        "http://10.20.30.40/api",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(outbound.OutboundRefused, match="→"):
        outbound.check_url(url, NOBODY)


def test_public_addresses_pass_and_an_admin_may_allow_internal_ones() -> None:
    outbound.check_url("https://8.8.8.8/dns-query", NOBODY)  # resolved only: nothing is sent
    outbound.check_url("http://127.0.0.1:9/", ALLOW_LOOPBACK)
    assert ALLOW_LOOPBACK.allows("igate.noi-bo.gov.vn", ipaddress.ip_address("10.1.2.3"))
    assert not ALLOW_LOOPBACK.allows("khac.gov.vn", ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(ValueError, match="not a network or a host name"):
        outbound.parse_policy("10.0.0.0/8, <script>")


def test_an_http_pull_feed_to_an_internal_address_fails_without_retrying(
    database, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ENVIRONMENT, "")  # as in production, with nothing allowed
    monkeypatch.setattr(outbound, "_configured", None)  # nor by the settings of an app built earlier in this process
    with SourceServer() as source:
        source.script(Reply(body=answer(record())))
        feed_id = make_feed(database, clock, settings(source))
        delays: list[float] = []
        result = run(database, feed_id, clock, delays)
        assert source.seen == []  # nothing reached the server
    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    error = result["error"]
    assert error["code"] == "address_refused" and error["retryable"] is False
    assert "địa chỉ này thuộc mạng nội bộ" in error["message_vi"] and "CITYOPS_OUTBOUND_ALLOW" in error["message_en"]
    assert stored(database) == {}


def test_a_webhook_to_an_internal_address_is_not_posted_nor_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbound.ENVIRONMENT, "")
    monkeypatch.setattr(outbound, "_configured", None)
    with SourceServer() as target:
        outcome = post_webhook(target.url("/hook"), "bi-mat", 7, {"kind": "alert.fired"}, datetime.now(UTC))
        assert target.seen == []
    assert (outcome.sent, outcome.error, outcome.retry) == (False, "address_refused", False)
