"""`cityops demo`: provision demo users, feeds and keys, then serve the app while the simulator plays the agencies.

1. start the simulated iGate / LGSP endpoint (127.0.0.1, a free port) and look for an MQTT broker (a short
   connection to CITYOPS_DEMO_MQTT_BROKER; without one the MQTT part is skipped and the cameras are pushed);
2. create the demo users (once) and the demo's feeds — every connector kind, one agency late on purpose
   (cityops.demo.feeds) — or bring existing ones in line with this run (the endpoint's address and token, MQTT on
   or off);
3. revoke the previous run's simulator keys and create fresh ones (a key's secret is shown only once);
4. put the recent past on the LGSP endpoint, start the web server — whose embedded worker pulls the LGSP feeds,
   listens to MQTT, watches lateness and computes the feedback indicators from the reports —, wait until it
   answers, backfill the recent past, then send the current period every `interval` seconds until stopped; each
   round the citizens file a few reports (cityops.demo.reports: over Open311 with the citizen app's key, some with
   photos through the public form) and the desk works the incidents.

The citizen-feedback indicators (pakn.*) are not simulated: cityops computes them from the reports filed. Every
simulated citizen comes from 127.0.0.1, so the demo process raises the public POSTs' rate limit per client
(CITYOPS_FEEDBACK_RATE_LIMIT) to at least DEMO_RATE_LIMIT.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops import outbound
from cityops.accounts import service as accounts
from cityops.accounts.models import Agency, ApiKey, User
from cityops.alerts.models import AlertRule
from cityops.alerts.rules import load_rules
from cityops.cameras.demo import CameraDemo
from cityops.catalog.models import Indicator
from cityops.clock import LOCAL_TZ, system_clock
from cityops.db.engine import Database
from cityops.demo import lgsp, sensors
from cityops.demo.desk import Desk, DeskError, Person
from cityops.demo.feeds import FeedPlan, plan_feeds, provision_feeds, simulated, with_feeds
from cityops.demo.lgsp import LgspEndpoint
from cityops.demo.reports import Citizens, FilingError
from cityops.demo.sensors import CameraSensors
from cityops.demo.simulator import UPLOAD_ROUNDS, IndicatorPlan, Simulator
from cityops.geo.models import Subject
from cityops.geo.service import load_sample_places
from cityops.settings import Settings
from cityops.soc.demo import SocDemo
from cityops.web.app import create_app

DEMO_KEY_NAME = "demo simulator"
CITIZEN_KEY_NAME = "demo citizen app"  # the key a citizens' app files reports with over Open311
CITIZEN_APP = "citizen_app"  # its entry among the provisioned keys
CITIZEN_APP_AGENCY = "trung_tam_giam_sat_dieu_hanh"  # the IOC runs the citizens' app
DEMO_RATE_LIMIT = 10_000  # public report POSTs per client and window, in the demo (every citizen is 127.0.0.1)
DEMO_ACTOR = accounts.Actor("demo")
WRITING_KINDS = ("push", "spreadsheet")  # the kinds the simulator sends through the API with an agency's key


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    agency: str
    full_name: str
    head: bool = False  # the head of their agency: escalations reach them


DEMO_USERS = (
    DemoUser("admin", "admin-demo-2026", "admin", "", "Quản trị hệ thống"),
    DemoUser("vanhanh", "vanhanh-demo-2026", "operator", "trung_tam_giam_sat_dieu_hanh", "Nguyễn Thị Vận Hành"),
    DemoUser("lanhdao", "lanhdao-demo-2026", "leader", "ubnd_tinh", "Trần Văn Lãnh Đạo"),
    DemoUser("soyte", "soyte-demo-2026", "officer", "so_y_te", "Lê Thị Y Tế", head=True),
    DemoUser("xuly", "xuly-demo-2026", "handler", "so_y_te", "Phạm Văn Xử Lý"),
)
DESK_OPERATOR, DESK_HANDLER = "vanhanh", "xuly"  # who the simulator plays on incidents


@dataclass(frozen=True)
class Connections:
    """Where this run's simulated systems are: the LGSP endpoint, and the MQTT broker when there is one."""

    lgsp_url: str
    lgsp_token: str
    mqtt: tuple[str, int] | None
    install: str  # tells this installation's MQTT topics and client ids from another's on the same broker


@dataclass
class Provisioned:
    """What provisioning made: each agency's key (and the citizen app's, under CITIZEN_APP), the indicators with
    their feeds, the feeds."""

    keys: dict[str, str]
    plans: list[IndicatorPlan]
    feeds: list[FeedPlan]


def install_id(settings: Settings) -> str:
    """A short name of this installation (its data directory), stable from one run to the next."""
    return hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]


def indicator_plans(session: Session) -> list[IndicatorPlan]:
    """What the simulator needs of every indicator that an agency owns."""
    agency_codes = dict(session.execute(select(Agency.id, Agency.code)).all())
    plans = []
    for indicator in session.scalars(select(Indicator).order_by(Indicator.code)):
        owner = agency_codes.get(indicator.owner_agency_id or -1)
        if owner is None:
            continue
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
    return plans


def provision(
    session: Session, now: datetime, *, interval: float, connections: Connections, secret_key: str
) -> Provisioned:
    """Demo users, the demo's feeds and fresh simulator keys; the sample places. Idempotent."""
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
                is_agency_head=user.head,
            )
    indicators = simulated(indicator_plans(session))
    feeds = plan_feeds(indicators, interval=interval, mqtt=connections.mqtt is not None)

    def settings_of(feed: FeedPlan) -> dict[str, Any]:
        if feed.kind == "http_pull":
            return lgsp.feed_settings(connections.lgsp_url, connections.lgsp_token, feed.period_type, feed.indicators)
        if feed.kind == "mqtt":
            assert connections.mqtt is not None
            host, port = connections.mqtt
            return sensors.feed_settings(host, port, connections.install, feed.indicators)
        if feed.kind == "spreadsheet":
            return {"empty_cells": "skip"}  # a rate with nothing to divide by is left empty
        return {}

    provision_feeds(session, DEMO_ACTOR, now, feeds, settings_of, secret_key)
    demo_keys = select(ApiKey).where(ApiKey.name.in_([DEMO_KEY_NAME, CITIZEN_KEY_NAME]), ApiKey.revoked_at.is_(None))
    for old in session.scalars(demo_keys):
        accounts.revoke_api_key(session, DEMO_ACTOR, now, old.prefix)
    writes: dict[str, list[str]] = {}
    for feed in feeds:
        if feed.kind in WRITING_KINDS:
            writes.setdefault(feed.agency, []).append(feed.code)
    keys: dict[str, str] = {}
    for agency, codes in sorted(writes.items()):
        _key, secret = accounts.create_api_key(
            session, DEMO_ACTOR, now, agency_code=agency, feed_codes=codes, name=DEMO_KEY_NAME
        )
        keys[agency] = secret
    _key, keys[CITIZEN_APP] = accounts.create_api_key(
        session, DEMO_ACTOR, now, agency_code=CITIZEN_APP_AGENCY, feed_codes=[], name=CITIZEN_KEY_NAME
    )
    load_sample_places(session, DEMO_ACTOR, now)  # the tourist sites of the map
    if not session.scalar(select(func.count()).select_from(AlertRule)):  # an operator's later changes are kept
        load_rules(session, DEMO_ACTOR, now)  # the default rules: they fire on the simulated data
    return Provisioned(keys, with_feeds(indicators, feeds), feeds)


def find_broker(settings: Settings) -> tuple[tuple[str, int] | None, str]:
    """The MQTT broker to use, or None with why not."""
    try:
        address = sensors.parse_address(settings.demo_mqtt_broker)
    except ValueError as exc:
        return None, str(exc)
    if address is None:
        return None, "CITYOPS_DEMO_MQTT_BROKER is empty"
    problem = sensors.broker_problem(*address)
    if problem is not None:
        return None, f"no broker at {address[0]}:{address[1]} ({problem})"
    return address, ""


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


def _desk_round(desk: Desk | None, echo: Callable[[str], None]) -> None:
    """The demo's operator and handler act on the incidents once; a failure is said, not fatal."""
    if desk is None:
        return
    try:
        for line in desk.round():
            echo(f"desk: incident {line}")
    except (httpx.HTTPError, DeskError) as exc:
        echo(f"desk: {exc}")


def _citizens_round(citizens: Citizens | None, echo: Callable[[str], None]) -> None:
    """The citizens file this round's reports; a failure is said, not fatal."""
    if citizens is None:
        return
    try:
        filed = citizens.round()
    except (httpx.HTTPError, FilingError) as exc:
        echo(f"citizens: {exc}")
        return
    if filed.open311 or filed.form or filed.refused:
        refused = f", {filed.refused} refused" if filed.refused else ""
        echo(
            f"citizens: {filed.open311} reports over Open311, {filed.form} through the form with {filed.photos} "
            f"photos{refused} ({', '.join(filed.codes)})"
        )


def _simulate(
    simulator: Simulator,
    interval: float,
    stop: threading.Event,
    echo: Callable[[str], None],
    desk: Desk | None = None,
    citizens: Citizens | None = None,
) -> None:
    try:
        if not _wait_until_up(simulator.base_url, stop):
            echo("simulator: the server did not start")
            return
        try:
            sent = simulator.backfill()
        except httpx.HTTPError as exc:
            echo(f"simulator: the recent past could not be sent: {exc}")
        else:
            echo(
                f"simulator: sent the recent past, {sent.accepted:,} values "
                f"({sent.pushed:,} pushed, {sent.uploaded:,} in {sent.uploads} spreadsheets; "
                f"{sent.lgsp_records:,} LGSP records, {sent.mqtt_messages} MQTT messages)"
            )
        while not stop.wait(interval):
            try:
                done = simulator.tick()
            except httpx.HTTPError as exc:  # one failed round does not end the demo
                if not stop.is_set():
                    echo(f"simulator: round {simulator.ticks} failed: {exc}")
                continue
            _citizens_round(citizens, echo)
            _desk_round(desk, echo)
            uploads = f", {done.uploaded} uploaded in {done.uploads} spreadsheets" if done.uploads else ""
            echo(
                f"simulator: round {simulator.ticks}, {done.accepted} values accepted ({done.pushed} pushed{uploads}; "
                f"{done.lgsp_records} LGSP records, {done.mqtt_messages} MQTT messages)"
            )
    finally:
        simulator.close()
        if desk is not None:
            desk.close()
        if citizens is not None:
            citizens.close()


def _describe(
    echo: Callable[[str], None],
    base_url: str,
    endpoint: LgspEndpoint,
    provisioned: Provisioned,
    silent_since: dict[str, datetime],
    agency_names: dict[str, str],
    mqtt: tuple[str, int] | None,
    mqtt_problem: str,
    install: str,
) -> None:
    """Say what this run simulates: each connector kind, and the agency that is late on purpose."""
    feeds = provisioned.feeds
    counts = Counter(feed.kind for feed in feeds)
    echo(f"Feeds / nguồn dữ liệu: {len(feeds)} ({', '.join(f'{kind} {n}' for kind, n in sorted(counts.items()))})")
    pulled = [feed for feed in feeds if feed.kind == "http_pull"]
    if pulled:
        echo(f"  http_pull   simulated iGate/LGSP endpoint {endpoint.base_url}{lgsp.BASE_PATH}/… (bearer token)")
        for feed in pulled:
            echo(f"              {feed.code} pulls {lgsp.RESOURCES[feed.period_type].name} every {feed.poll_seconds} s")
    uploaded = sorted({feed.code for feed in feeds if feed.kind == "spreadsheet"})
    if uploaded:
        echo(f"  spreadsheet XLSX templates filled and uploaded every {UPLOAD_ROUNDS} rounds: {', '.join(uploaded)}")
    if mqtt is not None:
        topics = f"{sensors.topic_root(install)}/antt/camera/+"
        listened = ", ".join(feed.code for feed in feeds if feed.kind == "mqtt")
        echo(f"  mqtt        on: broker {mqtt[0]}:{mqtt[1]}, topic {topics} → {listened}")
    else:
        echo(f"  mqtt        off: {mqtt_problem}; MQTT skipped, the camera counts are pushed instead")
    echo(f"  push        every other feed, through {base_url}/api/v1/observations with each agency's key")
    echo(
        f"  reports     citizens file reports over Open311 ({base_url}/open311/v2/requests.json, the citizen app's "
        f"key) and with photos through {base_url}/report; pakn.* are computed from them → {base_url}/feedback"
    )
    for feed in feeds:
        if feed.code in silent_since:
            since = silent_since[feed.code].astimezone(LOCAL_TZ).strftime("%d/%m/%Y")
            echo(
                f"  late        on purpose: {agency_names.get(feed.agency, feed.agency)} ({feed.agency}), feed "
                f"{feed.code} ({feed.cadence}) sends nothing from {since} on → {base_url}/data-health"
            )


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
    # The demo's agencies, cameras and webhooks are simulated on this machine: let cityops reach them.
    outbound.configure(settings.outbound_allow or "127.0.0.0/8")
    if settings.feedback_rate_limit < DEMO_RATE_LIMIT:  # every simulated citizen comes from 127.0.0.1
        settings = settings.model_copy(update={"feedback_rate_limit": DEMO_RATE_LIMIT})
    now = system_clock()
    install = install_id(settings)
    mqtt, mqtt_problem = find_broker(settings)
    endpoint = LgspEndpoint(secrets.token_urlsafe(24), system_clock).start()
    connections = Connections(endpoint.base_url, endpoint.token, mqtt, install)
    with database.writing() as session:
        provisioned = provision(
            session, now, interval=interval, connections=connections, secret_key=settings.resolved_secret_key
        )
    with database.reading() as session:
        province = session.scalar(select(Subject.code).where(Subject.kind == "province"))
        names = dict(session.execute(select(Subject.code, Subject.name_vi)).all())
        communes = list(session.scalars(select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code)))
        agency_names = dict(session.execute(select(Agency.code, Agency.name_vi)).all())
    assert province is not None
    base_url = f"http://{host}:{port}"
    silent_since = {feed.code: since for feed in provisioned.feeds if (since := feed.silent_since(now)) is not None}
    camera_sensors = CameraSensors(mqtt[0], mqtt[1], install) if mqtt is not None else None
    simulator = Simulator(
        base_url,
        provisioned.keys,
        provisioned.plans,
        province,
        communes,
        system_clock,
        lgsp=endpoint,
        sensors=camera_sensors,
        silent_since=silent_since,
        names=names,
    )
    simulator.prime()  # the endpoint has the recent past before the first pull
    stop = threading.Event()
    people = {user.username: user for user in DEMO_USERS}
    desk = Desk(
        Person(base_url, DESK_OPERATOR, people[DESK_OPERATOR].password),
        Person(base_url, DESK_HANDLER, people[DESK_HANDLER].password),
        people[DESK_HANDLER].agency,
    )
    citizens = Citizens(base_url, provisioned.keys[CITIZEN_APP], province, system_clock)
    worker = threading.Thread(
        target=_simulate,
        args=(simulator, interval, stop, echo, desk, citizens),
        daemon=True,
        name="cityops-simulator",
    )
    echo(f"cityops demo: {base_url}/")
    echo("Đăng nhập / log in:")
    for user in DEMO_USERS:
        echo(f"  {user.username:10s} {user.password:20s} {user.role}")
    echo(f"Data: {settings.data_dir.resolve()}  ·  API: {base_url}/api/docs  ·  Ctrl+C to stop")
    _describe(echo, base_url, endpoint, provisioned, silent_since, agency_names, mqtt, mqtt_problem, install)
    if not settings.embedded_worker:
        echo("  (CITYOPS_EMBEDDED_WORKER is off: run `cityops worker` beside the demo for pulls, MQTT and lateness)")
    worker.start()
    soc_demo = SocDemo(database, system_clock, echo)
    camera_demo = CameraDemo(
        database, system_clock, settings.resolved_secret_key, settings.province_code, base_url, echo, interval
    )
    app = create_app(settings, database=database, worker=settings.embedded_worker)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    try:
        server.run()
    finally:
        stop.set()
        worker.join(timeout=10)
        soc_demo.stop()
        camera_demo.stop()
        endpoint.stop()
        if camera_sensors is not None:
            camera_sensors.close()
