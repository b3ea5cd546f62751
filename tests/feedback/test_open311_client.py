"""An existing Open311 client library (georeport 0.3.1, from the package registry) reads services, a service
definition and requests from the real app served by uvicorn on 127.0.0.1, in JSON and in XML. georeport has no
call to create requests, so the app posts them with `requests`, the HTTP library georeport itself uses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import georeport
import pytest
import requests
import uvicorn
from open311_support import EMAIL, NAME_FIRST, NAME_LAST, PHONE, a_commune, app_key, no_personal_data, valid

from cityops.clock import FrozenClock
from cityops.web.app import create_app
from conftest import Backend

POTHOLE = "o_ga_hu_hong_duong"


@contextmanager
def live_app(backend: Backend, clock: FrozenClock) -> Iterator[str]:
    """The app on a free port of 127.0.0.1 in a background thread, until the block ends; its base URL."""
    app = create_app(
        backend.settings.model_copy(update={"feedback_rate_limit": 100}), clock=clock, database=backend.database
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-open311", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the live server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the live server did not stop"


def test_the_georeport_client_reads_services_definitions_and_requests(
    backend: Backend, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # requests would send 127.0.0.1 through a configured proxy
    key, _prefix = app_key(backend.database, clock())
    commune = a_commune(backend.database)
    with live_app(backend, clock) as url:
        root = f"{url}/open311/v2"
        posted = []
        for danger, place in (("high", "Đường Lê Lợi, trước cổng trường"), ("medium", "Đường Phan Đình Phùng")):
            answer = requests.post(
                f"{root}/requests.json",
                data={
                    "api_key": key,
                    "service_code": POTHOLE,
                    "address_id": commune.code,
                    "address_string": place,
                    "description": f"Mặt đường sụt lún thành ổ gà sâu ở {place}, xe máy dễ ngã.",
                    "attribute[muc_do]": danger,
                    "first_name": NAME_FIRST,
                    "last_name": NAME_LAST,
                    "phone": PHONE,
                    "email": EMAIL,
                },
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            posted.append(answer.json()[0]["service_request_id"])

        for output_format in ("json", "xml"):
            client = georeport.GeoReport(root_address=root, jurisdiction=None, api_key=key, output_format=output_format)
            services = client.get_service_list()
            codes = [service["service_code"] for service in services]
            assert POTHOLE in codes and len(codes) == len(set(codes)) > 5
            pothole = next(service for service in services if service["service_code"] == POTHOLE)
            assert pothole["service_name"] == "Ổ gà, hư hỏng mặt đường"
            assert str(pothole["metadata"]).lower() == "true"

            definition = client.get_service_definition(POTHOLE)
            attributes = definition["attributes"]
            # xmltodict reads <attributes><attribute>…</attribute></attributes> as {"attribute": [...]}.
            listed = attributes if output_format == "json" else attributes["attribute"]
            danger = next(attribute for attribute in listed if attribute["code"] == "muc_do")
            values = danger["values"] if output_format == "json" else danger["values"]["value"]
            assert [value["key"] for value in values] == ["low", "medium", "high"]

            found = client.get_service_requests(service_code=POTHOLE, status="open")
            assert sorted(request["service_request_id"] for request in found) == sorted(posted)
            one = client.get_service_request(posted[0])
            assert one["service_request_id"] == posted[0] and one["status"] == "open"
            assert one["agency_responsible"] and one["address"].startswith("Đường Lê Lợi")
            assert client.get_service_requests(service_request_id=posted[1], status="closed")  # ids override
            with pytest.raises(requests.HTTPError) as refused:
                client.get_service_request("PA-2222-2222")
            assert refused.value.response.status_code == 404

        # The same answers as JSON documents: valid, and without the citizen's personal data.
        everything = requests.get(f"{root}/requests.json", timeout=10)
        valid("requests.json", everything.json())
        for answer in (everything, requests.get(f"{root}/requests.xml", timeout=10)):
            no_personal_data(answer.text)
