"""The security part of `cityops demo`: four registered systems, a syslog listener on 127.0.0.1, a generator of
syslog and CEF traffic (UDP and TCP) with a burst of high-severity events every BURST_EVERY rounds (which fires
the rule "attt_tan_cong_mot_he_thong" and opens an incident), a simulated provincial website that goes down for a
while now and then, and a few vulnerabilities."""

from __future__ import annotations

import http.server
import random
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.soc import service
from cityops.soc.listener import Background, Listener
from cityops.soc.models import InformationSystem

DEMO = Actor("demo")
BURST_EVERY = 20  # rounds (of ROUND_SECONDS)
ROUND_SECONDS = 3.0
DOWN_EVERY = 60  # rounds: the site is down for DOWN_ROUNDS of every DOWN_EVERY
DOWN_ROUNDS = 8
SYSTEMS = (
    {
        "code": "cong_thong_tin_tinh",
        "name_vi": "Cổng thông tin điện tử tỉnh",
        "name_en": "Provincial web portal",
        "owner_agency": "so_khcn",
        "security_level": 3,
        "hosts": ["portal.nghean.gov.vn", "10.10.1.10"],
        "website_expected_text": "Cổng thông tin điện tử",
    },
    {
        "code": "dich_vu_cong",
        "name_vi": "Cổng dịch vụ công tỉnh",
        "name_en": "Public-service portal",
        "owner_agency": "trung_tam_phuc_vu_hcc",
        "security_level": 3,
        "hosts": ["dichvucong.nghean.gov.vn", "10.10.2.20"],
    },
    {
        "code": "thu_dien_tu",
        "name_vi": "Hệ thống thư điện tử công vụ",
        "name_en": "Government e-mail system",
        "owner_agency": "so_khcn",
        "security_level": 2,
        "hosts": ["mail.nghean.gov.vn", "10.10.3.30"],
    },
    {
        "code": "quan_ly_van_ban",
        "name_vi": "Hệ thống quản lý văn bản và điều hành",
        "name_en": "Document management system",
        "owner_agency": "so_khcn",
        "security_level": 2,
        "hosts": ["qlvb.nghean.gov.vn", "10.10.4.40"],
    },
)
VULNERABILITIES = (
    {"system": "cong_thong_tin_tinh", "reference": "CVE-2024-4577", "title": "PHP-CGI argument injection", "cvss": 9.8},
    {
        "system": "thu_dien_tu",
        "reference": "CVE-2023-4966",
        "title": "Citrix Bleed",
        "cvss": 9.4,
        "status": "mitigated",
    },
    {"system": "quan_ly_van_ban", "reference": "CVE-2021-44228", "title": "Log4Shell", "cvss": 10.0, "status": "fixed"},
    {"system": "dich_vu_cong", "reference": "NESSUS-10107", "title": "HTTP server type and version", "level": "low"},
)
ADMIN = Principal(role="admin", label="demo", csrf_exempt=True)


class _Site:
    """A simulated provincial website on 127.0.0.1; down (503) while `down` is set."""

    def __init__(self) -> None:
        self.down = False
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now = datetime.now(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")
                body = (
                    f"<html><body><h1>Cổng thông tin điện tử tỉnh Nghệ An</h1><p>Cập nhật lúc {now}</p></body></html>"
                ).encode()
                self.send_response(503 if site.down else 200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="soc-demo-site").start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def provision(database: Database, now: datetime, site_url: str) -> None:
    """The demo's systems (their website pointed at the simulated site) and vulnerabilities, idempotently."""
    with database.writing() as session:
        for data in SYSTEMS:
            values = dict(data)
            if values["code"] == "cong_thong_tin_tinh":
                values["website_url"] = site_url
            existing = session.scalar(select(InformationSystem).where(InformationSystem.code == values["code"]))
            if existing is None:
                service.create_system(session, DEMO, now, values)
            elif existing.website_url and values.get("website_url") and existing.website_url != values["website_url"]:
                service.update_system(session, DEMO, ADMIN, now, str(values["code"]), {"website_url": site_url})
        service.save_vulnerabilities(session, DEMO, ADMIN, now, list(VULNERABILITIES), source="demo")


class Traffic:
    """Sends syslog and CEF like the systems' devices would."""

    def __init__(self, udp: tuple[str, int], tcp: tuple[str, int], seed: int = 8) -> None:
        self.udp, self.tcp = udp, tcp
        self.random = random.Random(seed)
        self.udp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rounds = 0

    def _lines(self, burst: bool) -> list[bytes]:
        pick = self.random
        stamp = datetime.now(LOCAL_TZ)
        bsd = (
            stamp.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
            if stamp.day < 10
            else stamp.strftime("%b %d %H:%M:%S")
        )
        iso = stamp.isoformat(timespec="milliseconds")
        attacker = f"203.0.113.{pick.randint(2, 250)}"
        lines = [
            f"<86>{bsd} mail.nghean.gov.vn postfix/smtpd[{pick.randint(100, 999)}]: connect from unknown[{attacker}]",
            f"<134>1 {iso} qlvb.nghean.gov.vn tomcat - ACCESS - GET /van-ban/{pick.randint(1, 9999)} 200",
            f"<38>{bsd} dichvucong.nghean.gov.vn sshd[{pick.randint(100, 999)}]: Accepted publickey for vanhanh",
        ]
        if pick.random() < 0.3:
            lines.append(
                f"<132>{bsd} fw01 CEF:0|Fortinet|FortiGate|7.2|13|Port scan detected|5|src={attacker} "
                f"spt={pick.randint(1024, 65535)} dst=10.10.2.20 dpt=443 act=deny dvchost=dichvucong.nghean.gov.vn"
            )
        if burst:
            for _ in range(6):
                lines.append(
                    f"<132>{bsd} portal.nghean.gov.vn CEF:0|ModSecurity|WAF|3.0|942100|SQL injection attack|8|"
                    f"src={attacker} spt={pick.randint(1024, 65535)} dst=10.10.1.10 dpt=443 act=block "
                    f"msg=SQL injection in /tim-kiem?q\\=1' OR 1\\=1"
                )
        return [line.encode() for line in lines]

    def round(self) -> int:
        self.rounds += 1
        lines = self._lines(burst=self.rounds % BURST_EVERY == 0)
        udp_lines, tcp_lines = lines[::2], lines[1::2]
        for line in udp_lines:
            self.udp_socket.sendto(line, self.udp)
        with socket.create_connection(self.tcp, timeout=5) as conn:
            conn.sendall(b"".join(b"%d %s" % (len(line), line) for line in tcp_lines))  # octet counting
        return len(lines)

    def close(self) -> None:
        self.udp_socket.close()


class SocDemo:
    """The listener, the traffic and the simulated site of the demo."""

    def __init__(self, database: Database, clock: Clock, echo: Callable[[str], None]) -> None:
        self.stop_event = threading.Event()
        self.site = _Site()
        provision(database, clock(), self.site.url)
        self.listener = Listener(database, clock)
        self.background = Background(self.listener, ("127.0.0.1", 0), ("127.0.0.1", 0))
        assert self.listener.udp_address and self.listener.tcp_address
        self.traffic = Traffic(self.listener.udp_address, self.listener.tcp_address)
        self.echo = echo
        echo(
            f"soc: syslog listener udp {self.listener.udp_address[0]}:{self.listener.udp_address[1]}, "
            f"tcp {self.listener.tcp_address[0]}:{self.listener.tcp_address[1]}; simulated website {self.site.url}; "
            f"a burst of attacks every {BURST_EVERY * ROUND_SECONDS:.0f} s"
        )
        self.thread = threading.Thread(target=self._run, daemon=True, name="soc-demo")
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.wait(ROUND_SECONDS):
            try:
                self.traffic.round()
            except OSError as exc:
                self.echo(f"soc: traffic round failed: {exc}")
            self.site.down = self.traffic.rounds % DOWN_EVERY >= DOWN_EVERY - DOWN_ROUNDS
            if self.traffic.rounds % BURST_EVERY == 0:
                self.echo(f"soc: burst of attacks sent; listener {self.listener.stats.snapshot()}")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        self.traffic.close()
        self.background.stop()
        self.site.stop()
