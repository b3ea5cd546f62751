"""The demo's simulated iGate / LGSP endpoint: a real HTTP server on 127.0.0.1 answering pages the LGSP way, with a
bearer token and an updated-since cursor — and the real http_pull connector reading it with the demo's settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from cityops.catalog.service import read_catalog
from cityops.clock import FrozenClock
from cityops.connectors.base import FeedContext
from cityops.connectors.http_pull.connector import HttpPullConnector
from cityops.connectors.http_pull.schema import HttpPullSettings
from cityops.demo import lgsp
from cityops.demo.lgsp import LgspEndpoint
from cityops.demo.simulator import IndicatorPlan, Simulator
from cityops.geo.service import province_units
from cityops.observations.periods import parse_period
from conftest import START

TOKEN = "demo-lgsp-token-2026"


def _record(unit: str, month: str, received: int) -> dict[str, object]:
    return {"maDonVi": unit, "tenDonVi": f"Đơn vị {unit}", "kyBaoCao": month, "soHoSoTiepNhan": received}


@pytest.fixture
def endpoint(clock: FrozenClock) -> Iterator[LgspEndpoint]:
    server = LgspEndpoint(TOKEN, clock).start()
    yield server
    server.stop()


def _get(endpoint: LgspEndpoint, token: str | None = TOKEN, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{endpoint.base_url}{lgsp.RESOURCES['month'].path}", params=params, headers=headers, timeout=10)


def test_the_endpoint_answers_pages_with_the_token(endpoint: LgspEndpoint) -> None:
    endpoint.publish("month", [_record(f"1668{index}", "11/2026", 100 + index) for index in range(5)])
    pages = [_get(endpoint, page=str(number), size="2") for number in (1, 2, 3)]
    assert [page.status_code for page in pages] == [200, 200, 200]
    bodies = [page.json() for page in pages]
    assert all(body["status"] == "success" for body in bodies)
    assert [len(body["data"]["items"]) for body in bodies] == [2, 2, 1]
    assert [body["data"]["nextPage"] for body in bodies] == [2, 3, None]
    assert {body["data"]["total"] for body in bodies} == {5}
    units = [item["maDonVi"] for body in bodies for item in body["data"]["items"]]
    assert units == ["16680", "16681", "16682", "16683", "16684"]  # each record once, in the order they changed
    first = bodies[0]["data"]["items"][0]
    assert first["kyBaoCao"] == "11/2026" and first["soHoSoTiepNhan"] == 100 and first["ngayCapNhat"]


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN.upper()])
def test_without_the_right_token_the_answer_is_401(endpoint: LgspEndpoint, token: str | None) -> None:
    endpoint.publish("month", [_record("16681", "11/2026", 1)])
    answer = _get(endpoint, token=token)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["status"] == "error" and answer.json()["data"] is None


def test_updated_since_returns_only_what_changed(endpoint: LgspEndpoint, clock: FrozenClock) -> None:
    endpoint.publish("month", [_record(unit, "11/2026", 10) for unit in ("16681", "16684", "16687")])
    everything = _get(endpoint).json()["data"]["items"]
    cursor = everything[-1]["ngayCapNhat"]
    assert _get(endpoint, tuNgay=cursor).json()["data"]["items"] == []
    clock.advance(timedelta(minutes=1))
    endpoint.publish("month", [_record("16684", "11/2026", 11)])
    changed = _get(endpoint, tuNgay=cursor).json()["data"]["items"]
    assert [(item["maDonVi"], item["soHoSoTiepNhan"]) for item in changed] == [("16684", 11)]
    assert _get(endpoint).json()["data"]["total"] == 3, "a changed record replaces the old one"
    assert _get(endpoint, tuNgay="hôm qua").status_code == 400


def test_an_unknown_resource_is_404(endpoint: LgspEndpoint) -> None:
    answer = httpx.get(f"{endpoint.base_url}/lgsp/igate/v1/khong-co", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404


def test_the_http_pull_connector_reads_the_simulators_figures(endpoint: LgspEndpoint, clock: FrozenClock) -> None:
    """The demo's feed settings against the endpoint filled by the simulator: every figure arrives, once."""
    plans = [
        replace(
            IndicatorPlan(
                i.code,
                i.owner,
                i.period,
                i.aggregation,
                i.subject_level,
                i.unit,
                i.numerator,
                i.denominator,
                i.min,
                i.max,
            ),
            feed="hcc_igate",
            kind="http_pull" if i.owner == "trung_tam_phuc_vu_hcc" else "push",
        )
        for file in read_catalog().domains
        for i in file.indicators
    ]
    communes = [unit.code for unit in province_units("40") if unit.kind == "commune"]
    simulator = Simulator("http://127.0.0.1:9", {}, plans, "40", communes, clock, lgsp=endpoint)
    records = simulator.prime()
    monthly = sorted(plan.code for plan in plans if plan.kind == "http_pull" and plan.period_type == "month")
    assert records == 12 * 131 + 131  # a year of months and the state now, for the province and its 130 communes

    settings = HttpPullSettings.model_validate(lgsp.feed_settings(endpoint.base_url, TOKEN, "month", monthly))
    context = FeedContext(id=1, code="hcc_igate", agency_id=1, kind="http_pull", settings=settings)
    fetched = HttpPullConnector(context).fetch()
    assert fetched.rejected == []
    assert fetched.details["pages"] == 12 * 131 // lgsp.FEED_PAGE_SIZE + 1
    assert len(fetched.items) == 12 * 131 * len(monthly)
    november = {
        item["subject"]: item["value"]
        for item in fetched.items
        if item["indicator"] == "hcc.ho_so_tiep_nhan" and item["period"] == "2026-11"
    }
    expected = simulator.values(simulator.by_code["hcc.ho_so_tiep_nhan"], parse_period("2026-11"), START, communes=True)
    assert november == expected

    context.cursor = fetched.cursor or ""
    assert context.cursor, "the connector keeps the newest ngayCapNhat as its cursor"
    assert HttpPullConnector(context).fetch().items == [], "nothing changed since the cursor"
    clock.advance(timedelta(seconds=10))
    simulator.tick()  # province figures of the current period change every round
    again = HttpPullConnector(context).fetch()
    assert {item["subject"] for item in again.items} <= {"40", *communes}
    assert {item["period"] for item in again.items if item["indicator"] in monthly} == {"2026-11"}
