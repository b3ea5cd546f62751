"""Open311 GeoReport v2 through the real HTTP stack: discovery, services and definitions, POST with a key, tokens,
GET of requests with filters, errors in the specification's shape, the rate limit — every JSON answer validated
against the GeoReport v2 schemas, every XML answer parsed for the specification's elements, and none holding the
citizen's personal data."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from open311_support import (
    EMAIL,
    EXACT_ADDRESS,
    NAME_FIRST,
    NAME_LAST,
    PHONE,
    a_commune,
    app_key,
    check_moment,
    no_personal_data,
    valid,
    xml,
)
from PIL import Image
from sqlalchemy import select, update

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feedback import service
from cityops.feedback.models import CLOSED, FeedbackCategory, Report, ReportPhoto
from cityops.web.app import create_app
from conftest import Backend, count_rows

BASE = "/open311/v2"
POTHOLE = "o_ga_hu_hong_duong"  # has attributes: muc_do (required list) and so_nha
RUBBISH = "rac_thai_ve_sinh"


def _client(backend: Backend, clock: FrozenClock, **settings: Any) -> TestClient:
    app = create_app(backend.settings.model_copy(update=settings), clock=clock, database=backend.database)
    return TestClient(app, base_url="http://testserver")


def _errors(answer: Any, status: int) -> list[str]:
    """The descriptions of an error answer in the specification's JSON shape, after checking it."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, list) and body, body
    assert all(set(item) == {"code", "description"} and item["code"] == status for item in body), body
    return [item["description"] for item in body]


def _xml_errors(answer: Any, status: int) -> list[str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    root = xml(answer.content, "errors")
    errors = root.findall("error")
    assert errors and all(error.findtext("code") == str(status) for error in errors)
    return [error.findtext("description") or "" for error in errors]


def test_discovery_services_and_definitions_follow_the_specification(backend: Backend, clock: FrozenClock) -> None:
    with _client(backend, clock) as client:
        discovery = client.get(f"{BASE}/discovery.json").json()
        endpoint = discovery["endpoints"][0]
        assert endpoint["url"] == f"{backend.settings.public_url.rstrip('/')}/open311/v2"
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        check_moment(discovery["changeset"])
        assert discovery["contact"] and discovery["key_service"]
        root = xml(client.get(f"{BASE}/discovery.xml").content, "discovery")
        assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]

        # The service list: every active category, Vietnamese names by default, English with ?lang=en.
        services = valid("services.json", client.get(f"{BASE}/services.json").json())
        with backend.database.reading() as session:
            categories = {c.code: c for c in session.scalars(select(FeedbackCategory).where(FeedbackCategory.active))}
        assert {item["service_code"] for item in services} == set(categories)
        by_code = {item["service_code"]: item for item in services}
        pothole = by_code[POTHOLE]
        assert pothole["service_name"] == "Ổ gà, hư hỏng mặt đường" and pothole["type"] == "realtime"
        assert pothole["metadata"] is True and "ổ gà" in pothole["keywords"] and pothole["group"]
        assert all(item["metadata"] == bool(categories[item["service_code"]].attributes) for item in services)
        english = {item["service_code"]: item for item in client.get(f"{BASE}/services.json?lang=en").json()}
        assert english[POTHOLE]["service_name"] == "Potholes and road damage"
        answer = client.get(f"{BASE}/services.xml")
        assert answer.headers["content-type"].startswith("text/xml")
        listed = xml(answer.content, "services").findall("service")
        assert [s.findtext("service_code") for s in listed] == [item["service_code"] for item in services]
        first = listed[0]
        assert [child.tag for child in first] == [
            "service_code", "service_name", "description", "metadata", "type", "keywords", "group"
        ]  # fmt: skip
        assert first.findtext("metadata") in ("true", "false")

        # A service definition: attributes with their values, in order; XML nests attributes/attribute/values/value.
        definition = valid("service-definition.json", client.get(f"{BASE}/services/{POTHOLE}.json").json())
        assert definition["service_code"] == POTHOLE
        danger = next(attribute for attribute in definition["attributes"] if attribute["code"] == "muc_do")
        assert danger["datatype"] == "singlevaluelist" and danger["required"] is True and danger["variable"] is True
        assert danger["description"] == "Mức độ nguy hiểm" and danger["order"] == 1
        assert [value["key"] for value in danger["values"]] == ["low", "medium", "high"]
        assert danger["values"][2]["name"] == "Nguy hiểm, dễ gây tai nạn"
        english_definition = client.get(f"{BASE}/services/{POTHOLE}.json?lang=en").json()
        assert english_definition["attributes"][0]["description"] == "How dangerous it is"
        root = xml(client.get(f"{BASE}/services/{POTHOLE}.xml").content, "service_definition")
        assert root.findtext("service_code") == POTHOLE
        attribute = root.find("attributes/attribute")
        assert attribute is not None and attribute.findtext("code") == "muc_do"
        assert attribute.findtext("required") == "true" and attribute.findtext("order") == "1"
        assert [v.findtext("key") for v in attribute.findall("values/value")] == ["low", "medium", "high"]

        # Errors: unknown service, jurisdiction, format and path; the right jurisdiction is accepted.
        (description,) = _errors(client.get(f"{BASE}/services/khong_co.json"), 404)
        assert "khong_co" in description and " / " in description  # Vietnamese / English
        assert _xml_errors(client.get(f"{BASE}/services/khong_co.xml?lang=en"), 404) == [
            "There is no service_code “khong_co”."
        ]
        jurisdiction = backend.settings.open311_jurisdiction
        assert client.get(f"{BASE}/services.json", params={"jurisdiction_id": jurisdiction}).status_code == 200
        (description,) = _errors(client.get(f"{BASE}/services.json?jurisdiction_id=hanoi.gov.vn"), 404)
        assert "hanoi.gov.vn" in description and jurisdiction in description
        _xml_errors(client.get(f"{BASE}/requests.xml?jurisdiction_id=hanoi.gov.vn"), 404)
        _errors(client.get(f"{BASE}/services.csv"), 404)
        _errors(client.get(f"{BASE}/services/{POTHOLE}.html"), 404)
        _errors(client.get(f"{BASE}/khong-co.json"), 404)
        _errors(client.get(f"{BASE}/services/{'x' * 5000}.json"), 404)
        _errors(client.get(f"{BASE}/services/a%00b.json"), 404)
        _errors(client.get(f"{BASE}/services.json?lang=%00"), 400)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _post(client: TestClient, fmt: str = "json", **fields: Any) -> Any:
    return client.post(f"{BASE}/requests.{fmt}", data=fields)


def test_a_posted_request_is_read_back_by_id_token_and_filters_without_personal_data(
    backend: Backend, database: Database, clock: FrozenClock
) -> None:
    key, _prefix = app_key(database, clock())
    commune = a_commune(database)
    exact = (round(commune.latitude + 0.00123, 6), round(commune.longitude + 0.00077, 6))  # where the citizen stood
    answers: list[str] = []  # every Open311 answer, looked through for personal data at the end
    with _client(backend, clock, feedback_rate_limit=100) as client:
        # POST by an app: the citizen's name, phone and e-mail go in, none comes out.
        answer = _post(
            client,
            api_key=key,
            jurisdiction_id=backend.settings.open311_jurisdiction,
            service_code=POTHOLE,
            lat=str(exact[0]),
            long=str(exact[1]),
            address_string="Đường Nguyễn Du, gần chợ Vinh",
            description="Ổ gà lớn giữa đường, xe máy đi qua rất dễ ngã, nhất là buổi tối.",
            **{"attribute[muc_do]": "high", "attribute[so_nha]": "cột điện số 12"},
            first_name=NAME_FIRST,
            last_name=NAME_LAST,
            phone=PHONE,
            email=EMAIL,
            device_id="android-7f3a",
            account_id="app-user-42",
            media_url="https://example.org/anh-o-ga.jpg",
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.text)
        (created,) = answer.json()
        assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
        request_id, token = created["service_request_id"], created["token"]
        assert created["service_notice"] and created["account_id"] is None
        with database.reading() as session:
            report = session.scalar(select(Report).where(Report.tracking_code == request_id))
            assert report is not None and report.source == "open311" and report.api_key_id is not None
            assert report.attributes["muc_do"] == "high" and report.device_id == "android-7f3a"
        xml_post = _post(
            client,
            "xml",
            api_key=key,
            service_code=RUBBISH,
            address_id=commune.code,
            address_string="Bãi đất trống sau trường tiểu học",
            description="Rác thải sinh hoạt đổ thành đống lớn, bốc mùi suốt một tuần nay chưa ai thu gom.",
            email=EMAIL,
        )
        assert xml_post.status_code == 200, xml_post.text
        answers.append(xml_post.text)
        posted = xml(xml_post.content, "service_requests").find("request")
        assert posted is not None and [child.tag for child in posted] == [
            "service_request_id", "token", "service_notice", "account_id"
        ]  # fmt: skip
        second_id = posted.findtext("service_request_id")

        # A report from the public form carries the exact address too (kept apart, never shown).
        with database.writing() as session:
            from_form = service.submit_report(
                session,
                backend.settings,
                clock(),
                service.Submission(
                    category_code=RUBBISH,
                    description="Điểm tập kết rác tràn ra lòng đường, người đi bộ phải đi xuống lòng đường.",
                    latitude=commune.latitude + 0.001,
                    longitude=commune.longitude,
                    place_text="Ngã ba đường Trường Thi",
                    photos=[service.PhotoIn("bai-rac.jpg", _jpeg(), "image/jpeg")],
                    contact=service.ContactIn(
                        name=f"{NAME_LAST} {NAME_FIRST}", phone=PHONE, email=EMAIL, address=EXACT_ADDRESS
                    ),
                ),
            )
            form_id = from_form.tracking_code

        # GET one request (a list of one), in both formats; through its token too.
        one = valid("requests.json", client.get(f"{BASE}/requests/{request_id}.json").json())
        answers.append(str(one))
        (shown,) = one
        valid("request.json", shown)
        assert shown["service_request_id"] == request_id and shown["status"] == "open"
        assert shown["service_code"] == POTHOLE and shown["service_name"] == "Ổ gà, hư hỏng mặt đường"
        assert shown["agency_responsible"] == "Sở Xây dựng"
        assert shown["description"].startswith("Ổ gà lớn")
        assert shown["address"].startswith("Đường Nguyễn Du") and shown["address"].endswith(commune.name)
        assert shown["address_id"] == commune.code
        for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
            check_moment(shown[field])
        assert shown["requested_datetime"] == "2026-11-27T10:00:00+07:00"
        assert (shown["lat"], shown["long"]) == (report.public_latitude, report.public_longitude)
        assert (shown["lat"], shown["long"]) == (round(exact[0], 3), round(exact[1], 3))  # rounded, not the exact
        assert shown["media_url"] is None  # a media_url is never fetched; photos come by the public form
        root = xml(client.get(f"{BASE}/requests/{request_id}.xml").content, "service_requests")
        assert root.findtext("request/service_request_id") == request_id
        assert root.findtext("request/status") == "open" and root.findtext("request/zipcode") == ""
        tokens = client.get(f"{BASE}/tokens/{token}.json").json()
        assert tokens == [{"service_request_id": request_id, "token": token}]
        assert (
            xml(client.get(f"{BASE}/tokens/{token}.xml").content, "service_requests").findtext(
                "request/service_request_id"
            )
            == request_id
        )
        _errors(client.get(f"{BASE}/tokens/khong-co.json"), 404)
        _xml_errors(client.get(f"{BASE}/requests/PA-KHONG-CO.xml"), 404)

        # The handler answers and closes the form's report: status closed with its public answer as notes.
        clock.advance(timedelta(hours=5))
        with database.writing() as session:
            session.execute(
                update(Report)
                .where(Report.tracking_code == form_id)
                .values(status=CLOSED, answer="Đã thu gom xong.", closed_at=clock(), updated_at=clock())
            )

        # Filters: ids, service code, status, time window; the default window is the last 90 days.
        def ids(query: str, fmt: str = "json") -> list[str]:
            answer = client.get(f"{BASE}/requests.{fmt}?{query}")
            assert answer.status_code == 200, answer.text
            answers.append(answer.text)
            if fmt == "xml":
                return [r.findtext("service_request_id") or "" for r in xml(answer.content, "service_requests")]
            return [item["service_request_id"] for item in valid("requests.json", answer.json())]

        assert ids("") == [form_id, second_id, request_id]  # newest first (same moment: last filed first)
        assert sorted(ids("", "xml")) == sorted([form_id, second_id, request_id])
        # ids override every other filter (status=open does not hide the closed one).
        assert ids(f"service_request_id={request_id},{form_id},PA-KHONG-CO&status=open") == [form_id, request_id]
        assert ids(f"service_code={POTHOLE}") == [request_id]
        assert sorted(ids(f"service_code={POTHOLE},{RUBBISH}")) == sorted([request_id, second_id, form_id])
        assert ids("status=closed") == [form_id]
        assert sorted(ids("status=open")) == sorted([request_id, second_id])
        assert sorted(ids("status=open,closed&service_code=" + RUBBISH)) == sorted([second_id, form_id])
        closed = client.get(f"{BASE}/requests/{form_id}.json").json()[0]
        with database.reading() as session:
            photo_id = session.scalar(select(ReportPhoto.id).where(ReportPhoto.report_id == from_form.id))
        assert closed["media_url"] == f"{backend.settings.public_url.rstrip('/')}/report/{form_id}/photos/{photo_id}"
        assert closed["status"] == "closed" and closed["status_notes"] == "Đã thu gom xong."
        assert closed["updated_datetime"] == "2026-11-27T15:00:00+07:00"
        assert ids("start_date=2026-11-27T11:00:00%2B07:00") == []
        assert len(ids("start_date=2026-11-27T09:59:00%2B07:00&end_date=2026-11-27T10:01:00%2B07:00")) == 3
        assert len(ids("start_date=2026-11-27T02:59:00Z")) == 3
        assert len(ids("end_date=2026-11-26")) == 0
        assert len(ids("start_date=2026-11-27&end_date=2026-11-28")) == 3
        clock.advance(timedelta(days=91))
        assert ids("") == [] and len(ids("start_date=2026-11-01T00:00:00Z")) == 3
        assert len(ids(f"service_request_id={request_id}")) == 1  # ids override the window

        # Every answer of every kind, in both formats: no name, phone, e-mail or exact address anywhere.
        for path in (
            "requests.json?start_date=2026-11-01T00:00:00Z",
            "requests.xml?start_date=2026-11-01T00:00:00Z",
            f"requests/{form_id}.json",
            f"requests/{form_id}.xml",
            f"requests/{second_id}.xml",
            f"tokens/{token}.xml",
            "services.json",
        ):
            answers.append(client.get(f"{BASE}/{path}").text)
    for text in answers:
        no_personal_data(text)


def test_bad_requests_answer_the_specification_errors_and_store_nothing(
    backend: Backend, database: Database, clock: FrozenClock
) -> None:
    key, prefix = app_key(database, clock())
    commune = a_commune(database)
    good = {
        "api_key": key,
        "service_code": RUBBISH,
        "lat": str(commune.latitude),
        "long": str(commune.longitude),
        "description": "Rác thải đổ bừa bãi ven đường, bốc mùi hôi thối nhiều ngày nay.",
    }
    with _client(backend, clock, feedback_rate_limit=100) as client:
        # No key, a wrong key, a revoked key: 403 in the specification's shape, in both formats.
        (description,) = _errors(_post(client, **{**good, "api_key": ""}), 403)
        assert "api_key" in description and " / " in description
        assert _xml_errors(_post(client, "xml", **{**good, "api_key": "cok_abc_def"}), 403)
        _errors(_post(client, **{**good, "api_key": key + "x"}), 403)
        _errors(_post(client, **{**good, "api_key": key * 20}), 403)
        _errors(_post(client, **{**good, "api_key": "cok_\x01_x"}), 403)

        # Each bad parameter: 400 with a description that names what is wrong.
        bad: list[tuple[dict[str, Any], str]] = [
            ({"service_code": ""}, "service_code"),
            ({"service_code": "khong_co"}, ""),
            ({"lat": "", "long": ""}, "lat"),
            ({"lat": "95.5"}, "lat"),
            ({"long": "abc"}, "long"),
            ({"lat": "nan"}, "lat"),
            ({"long": ""}, "long"),
            ({"description": "x" * 4001}, "description"),
            ({"description": "Rác\x00 thải"}, "NUL"),
            ({"address_string": "đường " * 100}, "address_string"),
            ({"service_code": POTHOLE}, ""),  # its required attribute muc_do is missing
            ({"service_code": POTHOLE, "attribute[muc_do]": "rat_cao"}, ""),
            ({"description": ""}, ""),
        ]
        for change, named in bad:
            descriptions = _errors(_post(client, **{**good, **change}), 400)
            for description in descriptions:  # "Vietnamese / English", both written out (not a message id)
                vietnamese, _, english = description.partition(" / ")
                assert vietnamese and english and "err." not in description, (change, description)
            assert named in " ".join(descriptions), (change, descriptions)
        two = _errors(_post(client, **{**good, "phone": "không có", "email": "hoa@"}), 400)
        assert len(two) == 2 and two[0] != two[1]  # one item per problem the checks found
        answer = client.post(f"{BASE}/requests.json?lang=en", data={**good, "service_code": ""})
        assert _errors(answer, 400) == ["The service_code parameter is missing."]
        assert _xml_errors(_post(client, "xml", **{**good, "lat": "95.5"}), 400)
        answer = client.post(
            f"{BASE}/requests.json",
            content=b"--b\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert answer.status_code in (400, 403), answer.text
        _errors(_post(client, **{**good, "jurisdiction_id": "hanoi.gov.vn"}), 404)
        _errors(client.put(f"{BASE}/requests.json", data=good), 404)
        assert count_rows(database, "feedback_reports") == 0

        # Bad queries: 400 (dates, status, too many ids), 404 (unknown ids), never 500.
        for query, status in (
            ("start_date=hôm-qua", 400),
            ("start_date=2026-13-45T00:00:00Z", 400),
            ("end_date=0001-01-01T00:00:00Z", 400),
            ("start_date=9999-12-31T23:59:59Z", 400),
            ("start_date=2026-11-27T00:00:00Z&end_date=2026-11-01T00:00:00Z", 400),
            ("start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z", 400),
            ("status=pending", 400),
            ("service_code=khong_co", 400),
            ("service_request_id=" + ",".join(f"PA-{n}" for n in range(1001)), 400),
            ("service_request_id=" + "x" * 10_000, 200),
            ("status=open%00", 400),
        ):
            answer = client.get(f"{BASE}/requests.json?{query}")
            assert answer.status_code == status, (query, answer.text)
            if status != 200:
                _errors(answer, status)
        _errors(client.get(f"{BASE}/requests/{'x' * 5000}.json"), 404)
        _errors(client.get(f"{BASE}/requests/PA%00.json"), 404)
        _errors(client.get(f"{BASE}/tokens/{'t' * 100}.json"), 404)

        # The same good POST now succeeds, and the key's revocation stops it.
        assert _post(client, **good).status_code == 200
        with database.writing() as session:
            accounts.revoke_api_key(session, accounts.SYSTEM, clock(), prefix)
        _errors(_post(client, **good), 403)
    assert count_rows(database, "feedback_reports") == 1


def test_posts_are_limited_per_client_address_and_per_key(
    backend: Backend, database: Database, clock: FrozenClock
) -> None:
    key, _prefix = app_key(database, clock())
    commune = a_commune(database)
    fields = {"api_key": key, "service_code": RUBBISH, "address_id": commune.code}
    settings = backend.settings.model_copy(update={"feedback_rate_limit": 1, "feedback_rate_window_seconds": 600})
    app = create_app(settings, clock=clock, database=backend.database)

    def post(address: str, number: int, fmt: str = "json") -> Any:
        with TestClient(app, base_url="http://testserver", client=(address, 40000)) as client:
            return _post(
                client,
                fmt,
                **fields,
                address_string=f"Chợ đầu mối số {number}",
                description=f"Rác thải tồn đọng ở cổng chợ đầu mối số {number}, bốc mùi khó chịu.",
            )

    # One phone (one address): one POST per window; the second is refused with Retry-After.
    assert post("10.0.0.1", 1).status_code == 200
    limited = post("10.0.0.1", 2)
    (description,) = _errors(limited, 429)
    assert 0 < int(limited.headers["Retry-After"]) <= 600 and "giây" in description and "seconds" in description
    assert _xml_errors(post("10.0.0.1", 3, "xml"), 429)
    # The key (the whole app) may post 20 times the per-client limit, from any addresses; then it is refused too.
    for number in range(2, 21):
        assert post(f"10.0.1.{number}", number).status_code == 200
    _errors(post("10.0.2.1", 21), 429)
    assert count_rows(database, "feedback_reports") == 20
    # The next window: allowed again.
    clock.advance(timedelta(seconds=600))
    assert post("10.0.0.1", 22).status_code == 200
    assert count_rows(database, "feedback_reports") == 21
