"""`cityops demo`: provision demo users, feeds and keys, then serve the app while the simulator plays the agencies.

1. create the demo users (once) and one feed per agency that owns indicators (once);
2. revoke the previous run's simulator keys and create fresh ones (a key's secret is shown only once);
3. start the web server, wait until it answers, backfill the recent past, then send the current period
   every `interval` seconds until stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts import service as accounts
from cityops.accounts.models import Agency, ApiKey, User
from cityops.catalog.models import Indicator
from cityops.clock import system_clock
from cityops.db.engine import Database
from cityops.demo.simulator import IndicatorPlan, Simulator
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.geo.service import load_sample_places
from cityops.settings import Settings
from cityops.web.app import create_app

DEMO_KEY_NAME = "demo simulator"
DEMO_ACTOR = accounts.Actor("demo")


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    agency: str
    full_name: str


DEMO_USERS = (
    DemoUser("admin", "admin-demo-2026", "admin", "", "Quản trị hệ thống"),
    DemoUser("vanhanh", "vanhanh-demo-2026", "operator", "trung_tam_giam_sat_dieu_hanh", "Nguyễn Thị Vận Hành"),
    DemoUser("lanhdao", "lanhdao-demo-2026", "leader", "ubnd_tinh", "Trần Văn Lãnh Đạo"),
    DemoUser("soyte", "soyte-demo-2026", "officer", "so_y_te", "Lê Thị Y Tế"),
)


def provision(session: Session) -> tuple[dict[str, str], list[IndicatorPlan]]:
    """Demo users and one feed per indicator-owning agency; fresh simulator keys. Returns keys and plans."""
    now = system_clock()
    agency_codes = dict(session.execute(select(Agency.id, Agency.code)).all())
    for user in DEMO_USERS:
        if session.scalar(select(User.id).where(User.username == user.username)) is None:
            accounts.create_user(
                session,
                DEMO_ACTOR,
                now,
                username=user.username,
                password=user.password,
                role=user.role,
                agency_code=user.agency,
                full_name=user.full_name,
            )
    plans: list[IndicatorPlan] = []
    owned: dict[str, list[str]] = {}
    for indicator in session.scalars(select(Indicator).order_by(Indicator.code)):
        owner = agency_codes.get(indicator.owner_agency_id or -1)
        if owner is None:
            continue
        owned.setdefault(owner, []).append(indicator.code)
        plans.append(
            IndicatorPlan(
                indicator.code,
                owner,
                indicator.period_type,
                indicator.aggregation,
                indicator.subject_level,
                indicator.unit,
                indicator.numerator_code,
                indicator.denominator_code,
                indicator.min_value,
                indicator.max_value,
            )
        )
    for old in session.scalars(select(ApiKey).where(ApiKey.name == DEMO_KEY_NAME, ApiKey.revoked_at.is_(None))):
        accounts.revoke_api_key(session, DEMO_ACTOR, now, old.prefix)
    keys: dict[str, str] = {}
    for agency, codes in owned.items():
        feed_code = f"demo_{agency}"
        if session.scalar(select(Feed.id).where(Feed.code == feed_code)) is None:
            create_feed(
                session,
                DEMO_ACTOR,
                now,
                code=feed_code,
                agency_code=agency,
                indicator_codes=codes,
                name=f"Demo: {agency}",
            )
        _key, secret = accounts.create_api_key(
            session, DEMO_ACTOR, now, agency_code=agency, feed_codes=[feed_code], name=DEMO_KEY_NAME
        )
        keys[agency] = secret
    load_sample_places(session, DEMO_ACTOR, now)  # the tourist sites of the map
    return keys, plans


def _wait_until_up(base_url: str, stop: threading.Event, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            if httpx.get(f"{base_url}/login", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _simulate(simulator: Simulator, interval: float, stop: threading.Event, echo: Callable[[str], None]) -> None:
    try:
        if not _wait_until_up(simulator.base_url, stop):
            echo("simulator: the server did not start")
            return
        echo(f"simulator: sent the recent past, {simulator.backfill():,} values")
        while not stop.wait(interval):
            accepted = simulator.tick()
            echo(f"simulator: round {simulator.ticks}, {accepted} values accepted")
    except httpx.HTTPError as exc:
        if not stop.is_set():
            echo(f"simulator stopped: {exc}")
    finally:
        simulator.close()


def run_demo(
    settings: Settings,
    database: Database,
    *,
    host: str,
    port: int,
    interval: float,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the app and run the simulator beside it until interrupted."""
    with database.writing() as session:
        keys, plans = provision(session)
    with database.reading() as session:
        province = session.scalar(select(Subject.code).where(Subject.kind == "province"))
        communes = list(session.scalars(select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code)))
    assert province is not None
    base_url = f"http://{host}:{port}"
    simulator = Simulator(base_url, keys, plans, province, communes, system_clock)
    stop = threading.Event()
    worker = threading.Thread(
        target=_simulate, args=(simulator, interval, stop, echo), daemon=True, name="cityops-simulator"
    )
    echo(f"cityops demo: {base_url}/")
    echo("Đăng nhập / log in:")
    for user in DEMO_USERS:
        echo(f"  {user.username:10s} {user.password:20s} {user.role}")
    echo(f"Data: {settings.data_dir.resolve()}  ·  API: {base_url}/api/docs  ·  Ctrl+C to stop")
    worker.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, database=database), host=host, port=port, log_level="warning")
    )
    try:
        server.run()
    finally:
        stop.set()
        worker.join(timeout=10)
