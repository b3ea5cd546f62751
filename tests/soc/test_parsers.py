"""The pure parsers (syslog, CEF, Wazuh, TCP framing) on the samples and on hostile bytes: never an exception."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from cityops.soc import cef, syslog, wazuh
from cityops.soc.normal import band, cef_severity, wazuh_severity

DATA = Path(__file__).parent.parent / "data" / "soc"
RECEIVED = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội


def test_rfc3164_samples_year_and_zone_rule() -> None:
    events = [syslog.parse(line, RECEIVED) for line in (DATA / "tenzir_syslog-rfc3164.log").read_bytes().splitlines()]
    assert [e.source_format for e in events].count("cef") == 2
    first = events[0]
    assert (first.host, first.app, first.message[:5]) == ("mymachine/10.1.1.16", "PROGRAM", "Info:")
    assert first.occurred_at.isoformat() == "2026-11-16T12:53:54+07:00"  # Asia/Ho_Chi_Minh, this year
    assert events[5].occurred_at.year == 2025  # "Dec  6" received in November is last December
    assert events[-1].occurred_at.isoformat() == "2024-01-18T11:50:03+07:00"  # a year in the stamp
    assert "10.1.1.16" in first.hosts
    su = events[4]
    assert (su.app, su.level, su.category) == ("su", "high", "authentication")  # <34>: auth.crit


def test_rfc3164_time_just_before_new_year() -> None:
    new_year = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)  # 07:00 on 1 January in Hà Nội
    event = syslog.parse(b"<13>Dec 31 23:59:50 host app: late", new_year)
    assert event.occurred_at.isoformat() == "2026-12-31T23:59:50+07:00"


def test_cef_escapes_and_severity_words() -> None:
    record = cef.parse(r"CEF:0|Vendor\|X|Prod\\uct|1|sig|Name|Very-High|msg=a \= b\nc src=10.0.0.1 cs1=x y z")
    assert (record.vendor, record.product, record.severity) == ("Vendor|X", "Prod\\uct", "Very-High")
    assert record.extension == {"msg": "a = b\nc", "src": "10.0.0.1", "cs1": "x y z"}
    assert [cef_severity(s) for s in ("0", "3", "Low", "Medium", "High", "Very-High", "11", "?")] == [
        0,
        3,
        3,
        5,
        8,
        10,
        10,
        0,
    ]
    pipes = cef.parse((DATA / "tenzir_checkpoint.log").read_text().splitlines()[0])
    assert pipes.extension["originsicname"] == "CN=R80,O=R80_M..6u6bdo"


def test_severity_bands() -> None:
    assert [band(n) for n in (0, 1, 3, 4, 6, 7, 8, 9, 10)] == [
        "info",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]
    assert [wazuh_severity(level) for level in (0, 3, 6, 10, 12, 13, 15)] == [0, 2, 4, 7, 8, 9, 10]


def test_frame_decoder_mixes_and_cuts() -> None:
    decoder = syslog.FrameDecoder(max_frame=16)
    frames = list(decoder.feed(b"5 hello<13>newline\n3 abc"))
    assert frames == [(b"hello", False), (b"<13>newline", False), (b"abc", False)]
    assert decoder.mode == "octet"
    cut = list(decoder.feed(b"40 " + b"x" * 40 + b"ok\n"))
    assert cut == [(b"x" * 16, True), (b"ok", False)]
    assert list(decoder.feed(b"12")) == [] and decoder.pending() == b"12"


def test_wazuh_samples() -> None:
    items = wazuh.split_body((DATA / "wazuh-indexer_sl_integration_test.head6.ndjson").read_bytes())
    events = [wazuh.parse_alert(item, RECEIVED, n) for n, item in enumerate(items)]
    assert all(isinstance(e, wazuh.Normalized) for e in events)
    ssh = events[2]
    assert isinstance(ssh, wazuh.Normalized)
    assert (ssh.src_ip, ssh.rule, ssh.category) == (
        "192.168.83.175",
        "5715 sshd: authentication success.",
        "authentication",
    )


def test_random_bytes_never_raise() -> None:
    pick = random.Random(11)
    decoder = syslog.FrameDecoder(max_frame=512)
    for _ in range(3000):
        data = bytes(pick.randrange(256) for _ in range(pick.randrange(0, 300)))
        for prefix in (b"", b"<13>", b"<13>1 ", b"CEF:0|", b"<13>Nov 27 10:00:00 h a: CEF:0|"):
            event = syslog.parse(prefix + data, RECEIVED)
            assert "\x00" not in event.raw and 0 <= event.severity <= 10
        for frame, _cut in decoder.feed(data):
            assert len(frame) <= 512
        item = {
            "rule": {"level": pick.randrange(-3, 20), "description": data.decode("latin-1")},
            "timestamp": data.hex(),
        }
        wazuh.parse_alert(item, RECEIVED)
