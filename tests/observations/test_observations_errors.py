"""Errors of the data-sharing API: one problem-details shape (RFC 9457), the right status, and never a 500."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from observations_support import OBSERVATIONS, assert_problem, item, send, send_raw

from cityops.accounts import service as accounts
from cityops.web.app import create_app
from conftest import AgencyKey, count_rows, csrf_header, login


@pytest.fixture
def tolerant_client(app) -> Iterator[TestClient]:
    """A client that shows a server error as its 500 answer instead of raising it."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_malformed_json_is_a_400_problem(client, hcc_key: AgencyKey, database) -> None:
    answer = send_raw(client, hcc_key, '{"observations": [')

    problem = assert_problem(answer, 400, "invalid_json")
    assert problem["instance"] == OBSERVATIONS
    assert count_rows(database, "ingest_batches") == 0


def test_a_problem_is_in_vietnamese_by_default_and_in_english_with_lang_en(client, hcc_key: AgencyKey) -> None:
    vietnamese = send_raw(client, hcc_key, "{")
    english = client.post(
        OBSERVATIONS + "?lang=en", headers={**hcc_key.headers, "Content-Type": "application/json"}, content="{"
    )

    assert assert_problem(vietnamese, 400, "invalid_json")["title"] == "Nội dung không phải JSON hợp lệ"
    problem = assert_problem(english, 400, "invalid_json")
    assert problem["title"] == "The body is not valid JSON"
    assert problem["detail"] == problem["message_en"]


@pytest.mark.parametrize(
    "body",
    ["[]", '"observations"', "42", "null", '{"observations": null}', '{"observations": {"0": {}}}', "{}"],
)
def test_a_body_of_the_wrong_shape_is_a_422_problem(client, hcc_key: AgencyKey, database, body: str) -> None:
    answer = send_raw(client, hcc_key, body)

    assert_problem(answer, 422, "invalid_body")
    assert count_rows(database, "ingest_batches") == 0


def test_an_unknown_top_level_field_is_a_422_problem_naming_it(client, hcc_key: AgencyKey, database) -> None:
    answer = send_raw(client, hcc_key, json.dumps({"observations": [item()], "agency": "hcc"}))

    problem = assert_problem(answer, 422, "invalid_body")
    assert "agency" in problem["message_en"]
    assert count_rows(database, "observations") == 0


def test_more_than_10000_observations_is_a_413_and_nothing_is_stored(client, hcc_key: AgencyKey, database) -> None:
    answer = send(client, hcc_key, *[item()] * 10_001)

    problem = assert_problem(answer, 413, "batch_too_large")
    assert problem["message_vi"] == "Một lô chỉ được tối đa 10000 quan sát; lô này có 10001."
    assert count_rows(database, "ingest_batches") == 0
    assert count_rows(database, "observations") == 0


@pytest.fixture
def small_client(backend, clock) -> Iterator[TestClient]:
    """The app with a body limit of 2,000 bytes."""
    settings = backend.settings.model_copy(update={"max_body_bytes": 2000})
    with TestClient(create_app(settings, clock=clock, database=backend.database)) as test_client:
        yield test_client


def big_batch() -> bytes:
    body = json.dumps({"observations": [item(period=f"2026-{month:02d}") for month in range(1, 12)] * 3}).encode()
    assert len(body) > 2000
    return body


def test_a_body_over_the_size_limit_is_a_413_problem(small_client: TestClient, hcc_key: AgencyKey, database) -> None:
    answer = small_client.post(
        OBSERVATIONS, headers={**hcc_key.headers, "Content-Type": "application/json"}, content=big_batch()
    )

    problem = assert_problem(answer, 413, "body_too_large")
    assert problem["message_en"] == "The request body is larger than 2000 bytes."
    assert count_rows(database, "observations") == 0


def test_a_streamed_body_over_the_size_limit_is_a_413_problem_too(
    small_client: TestClient, hcc_key: AgencyKey, database
) -> None:
    body = big_batch()
    chunks = iter([body[:1500], body[1500:]])  # no Content-Length: sent chunked

    answer = small_client.post(
        OBSERVATIONS, headers={**hcc_key.headers, "Content-Type": "application/json"}, content=chunks
    )

    assert_problem(answer, 413, "body_too_large")
    assert count_rows(database, "observations") == 0


def test_a_body_under_the_size_limit_is_accepted(small_client: TestClient, hcc_key: AgencyKey) -> None:
    answer = send(small_client, hcc_key, item())

    assert answer.status_code == 200, answer.text


def test_no_key_is_a_401_asking_for_a_bearer_key(client, database) -> None:
    answer = client.post(OBSERVATIONS, json={"observations": [item()]})

    assert_problem(answer, 401, "unauthenticated")
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert count_rows(database, "ingest_batches") == 0


@pytest.mark.parametrize(
    "authorization",
    ["Bearer cok_000000000000_khong-phai-khoa-that", "Bearer khong-dung-dinh-dang", "Bearer ", "Basic dXNlcjpwYXNz"],
)
def test_a_wrong_key_is_a_401(client, hcc_key: AgencyKey, authorization: str) -> None:
    answer = client.post(OBSERVATIONS, headers={"Authorization": authorization}, json={"observations": [item()]})

    assert_problem(answer, 401, "invalid_api_key")
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_key_with_a_wrong_secret_is_a_401(client, hcc_key: AgencyKey) -> None:
    forged = f"cok_{hcc_key.prefix}_{'A' * 43}"

    answer = client.post(OBSERVATIONS, headers={"Authorization": f"Bearer {forged}"}, json={"observations": [item()]})

    assert_problem(answer, 401, "invalid_api_key")


def test_a_revoked_key_is_a_401_at_once(client, hcc_key: AgencyKey, database, clock) -> None:
    assert send(client, hcc_key, item()).status_code == 200
    with database.writing() as session:
        accounts.revoke_api_key(session, accounts.SYSTEM, clock(), hcc_key.prefix)

    answer = send(client, hcc_key, item(value=1))

    assert_problem(answer, 401, "invalid_api_key")
    assert client.get("/api/v1/indicators", headers=hcc_key.headers).status_code == 401


def test_a_logged_in_user_may_not_post_observations_whatever_the_role(client, app, personas, database) -> None:
    for username in ("officer_a", "leader", "operator", "admin"):
        login(client, username)

        answer = client.post(OBSERVATIONS, headers=csrf_header(client, app), json={"observations": [item()]})

        assert_problem(answer, 403, "forbidden")
    assert count_rows(database, "ingest_batches") == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415(
    client, hcc_key: AgencyKey, database, content_type: str
) -> None:
    answer = send_raw(client, hcc_key, json.dumps({"observations": [item()]}), **{"Content-Type": content_type})

    assert_problem(answer, 415, "unsupported_media_type")
    assert count_rows(database, "observations") == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.cityops+json"])
def test_json_content_types_with_parameters_or_suffix_are_accepted(
    client, hcc_key: AgencyKey, content_type: str
) -> None:
    answer = send_raw(client, hcc_key, json.dumps({"observations": [item()]}), **{"Content-Type": content_type})

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/api/v1/khong-co", "/api/v2/observations", "/api/v1/indicators/hcc.x/khac"])
def test_an_unknown_path_under_api_is_a_404_problem(client, hcc_key: AgencyKey, path: str) -> None:
    answer = client.get(path, headers=hcc_key.headers)

    problem = assert_problem(answer, 404, "not_found")
    assert problem["instance"] == path


@pytest.mark.parametrize(("method", "path"), [("GET", OBSERVATIONS), ("PUT", OBSERVATIONS), ("DELETE", OBSERVATIONS)])
def test_a_wrong_method_is_a_405_problem_saying_what_is_allowed(
    client, hcc_key: AgencyKey, method: str, path: str
) -> None:
    answer = client.request(method, path, headers=hcc_key.headers)

    problem = assert_problem(answer, 405, "method_not_allowed")
    assert method in problem["message_en"]
    assert answer.headers["Allow"] == "POST"


def test_a_wrong_method_on_the_read_api_is_a_405_problem(client, hcc_key: AgencyKey) -> None:
    answer = client.post("/api/v1/indicators", headers=hcc_key.headers, json={})

    assert_problem(answer, 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/indicators", {"limit": "0"}),
        ("/api/v1/indicators", {"limit": "1001"}),
        ("/api/v1/indicators", {"limit": "nhiều"}),
        ("/api/v1/indicators", {"offset": "-1"}),
        ("/api/v1/indicators", {"q": "x" * 101}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "from": "October"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "to": "2026-13"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "from": "0001-01-01"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "dimensions": "kenh"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "limit": "5001"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "4" * 65}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", {"subject_kind": "huyen"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", {"offset": "đầu"}),
        ("/api/v1/indicators", {"q": "ho\u0000so"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40\u0000"}),
    ],
)
def test_bad_query_parameters_on_the_read_api_are_a_422_problem(client, hcc_key: AgencyKey, path: str, params) -> None:
    answer = client.get(path, headers=hcc_key.headers, params=params)

    assert_problem(answer, 422, "validation_failed")


def test_a_nul_in_an_api_path_is_a_404_problem(client, hcc_key: AgencyKey) -> None:
    answer = client.get("/api/v1/indicators/hcc.ho_so_tiep_nhan%00", headers=hcc_key.headers)

    assert_problem(answer, 404, "not_found")


ODD_BODIES: list[bytes] = [
    b"",
    b" ",
    b"\xef\xbb\xbf" + json.dumps({"observations": [item()]}).encode(),
    b"\xff\xfe\x00{",
    b"{",
    b"}",
    b"nul",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"observations": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    json.dumps({"observations": [{"dimensions": {"kenh": {"a": [[[[[]]]]]}}}]}).encode(),
    b'{"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 1e400}]}',
    b'{"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 1e-400}]}',
    b'{"observations": [{"indicator": "hcc.ty_le_dung_han", "subject": "40", "period": "2026-10", "value": 1e308}]}',
    b'{"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": '
    + b"9" * 400
    + b"}]}",
    b'{"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": -0}]}',
    b'{"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": NaN}]}',
    b'{"observations": [{"indicator": "\\ud800", "subject": "40", "period": "2026-10", "value": 1}]}',
    b'{"observations": [], "observations": {}}',
    b'{"observations": [1, 2, 3], "observations": []}',
    json.dumps({"observations": None}).encode(),
    json.dumps({"observations": [None] * 50}).encode(),
    json.dumps(
        {
            "observations": [
                {
                    "indicator": None,
                    "subject": None,
                    "period": None,
                    "value": None,
                    "null_reason": None,
                    "dimensions": None,
                    "source_ref": None,
                    "feed": None,
                }
            ]
        }
    ).encode(),
    json.dumps({"observations": [item(indicator=None, subject=None, period=None)]}).encode(),
    json.dumps({"observations": [[item()]]}).encode(),
    json.dumps({"observations": [item(dimensions=[["kenh", "truc_tuyen"]])]}).encode(),
    json.dumps(
        {"observations": [item(indicator=["hcc.ho_so_tiep_nhan"], subject=["40"], period=["2026-10"])]}
    ).encode(),
    json.dumps({"observations": [item(indicator={"a": 1}, subject={"b": 2}, feed={"c": 3})]}).encode(),
    json.dumps({"observations": [item(feed=["hcc_igate"])]}).encode(),
    json.dumps({"observations": [item(feed=0)]}).encode(),
    json.dumps({"observations": [item(indicator="chỉ tiêu 😀", subject="Nghệ An", period="năm 2026")]}).encode(),
    json.dumps({"observations": [item(source_ref="\u202eRTL \u200b zero-width \U0001f1fb\U0001f1f3")]}).encode(),
    json.dumps({"observations": [item(null_reason="😀" * 400, value=None)]}, ensure_ascii=False).encode(),
    json.dumps({"observations": [item(dimensions={"kenh": "trực tuyến 😀"})]}, ensure_ascii=False).encode(),
    json.dumps({"observations": [item(dimensions={"kênh": "x", "": "y"})]}).encode(),
    json.dumps({"observations": [item(indicator="x" * 100_000, subject="4" * 10_000, period="2" * 10_000)]}).encode(),
    json.dumps({"observations": [item(dimensions={"a" * 10_000: "x" * 10_000})]}).encode(),
    json.dumps({"observations": [item(dimensions={f"d{n}": "x" for n in range(5000)})]}).encode(),
    json.dumps({"observations": [item(indicator="a\u0000", subject="4\u00000", period="2026\u0000")]}).encode(),
    json.dumps({"observations": [item(source_ref="\u0000", dimensions={"kenh": "\u0000"}, feed="\u0000")]}).encode(),
    json.dumps({"observations": [item(**{"\u0000": 1})]}).encode(),
    json.dumps({"observations": [item(value=None, null_reason="\u0000")]}).encode(),
    json.dumps({"observations": [item(period=p) for p in ("0001-01-01", "0001", "0001-Q1", "0000", "9999")]}).encode(),
    json.dumps({"observations": [item(indicator="hcc.ho_so_qua_han", period="0001-01-01T00:00:00+07:00")]}).encode(),
    json.dumps({"observations": [item(indicator="hcc.ho_so_qua_han", period="9999-12-31T23:59:59-07:00")]}).encode(),
    json.dumps(
        {"observations": [item(period=p) for p in ("2026-00", "2026-Q0", "2026-Q5", "2026-02-30", "-2026")]}
    ).encode(),
    json.dumps({"observations": [item(indicator="giaoduc.so_truong", period="0001-0002")]}).encode(),
    json.dumps({"observations": [item(value=2**63), item(period="2026-09", value=-(2**63))]}).encode(),
    json.dumps({"observations": [item(value=10**30)]}).encode(),
    json.dumps({"observations": [item(period=f"2026-{m:02d}") for m in range(1, 13)] * 2}).encode(),
    json.dumps({"observations": [item()] * 10_001}).encode(),
]


def test_no_body_of_any_shape_gets_a_500(tolerant_client: TestClient, hcc_key: AgencyKey) -> None:
    failures = []
    for body in ODD_BODIES:
        answer = send_raw(tolerant_client, hcc_key, body)
        if answer.status_code >= 500:
            failures.append((body[:80], answer.status_code, answer.text[:200]))

    assert failures == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": ""},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Content-Type": "application/json, text/plain"},
        {"Content-Type": ";;;"},
        {"Idempotency-Key": " "},
        {"Idempotency-Key": "\t"},
        {"Idempotency-Key": "k" * 10_000},
        {"Authorization": "Bearer cok__"},
        {"Authorization": "Bearer cok_" + "a" * 5000 + "_b"},
        {"Authorization": "bearer"},
        {"Content-Length": "many"},
    ],
)
def test_no_header_of_any_shape_gets_a_500(tolerant_client: TestClient, hcc_key: AgencyKey, headers) -> None:
    answer = send_raw(tolerant_client, hcc_key, json.dumps({"observations": [item()]}), **headers)

    assert answer.status_code < 500, answer.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/indicators", {"q": "%"}),
        ("/api/v1/indicators", {"q": "_'\"; DROP TABLE indicators; --"}),
        ("/api/v1/indicators", {"domain": "😀", "offset": "99999999"}),
        ("/api/v1/indicators", {"limit": "99999999999999999999999"}),
        ("/api/v1/indicators/%F0%9F%98%80", {}),
        ("/api/v1/indicators/" + "x" * 5000, {}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "from": "9999-12-31T23:59:59-07:00"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "from": "2026", "to": "2025"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "dimensions": "=&=&a=b=c&&"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "40", "dimensions": "kenh=" + "x" * 250}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/series", {"subject": "Nghệ An", "offset": "10000000000"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", {"subject_kind": "", "limit": "5000"}),
        ("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", {"lang": "\u0000"}),
    ],
)
def test_no_odd_read_request_gets_a_500(tolerant_client: TestClient, hcc_key: AgencyKey, path: str, params) -> None:
    answer = tolerant_client.get(path, headers=hcc_key.headers, params=params)

    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_citizens_form_has_room_for_five_photos_where_the_api_has_the_body_limit(
    small_client: TestClient, database
) -> None:
    photos = b"\xff" * 3000  # over the 2,000 bytes of the API, under five photos' worth
    api = small_client.post(OBSERVATIONS, headers={"Content-Type": "application/json"}, content=photos)
    assert_problem(api, 413, "body_too_large")
    form = small_client.get("/report")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = small_client.post(
        "/report",
        data={"csrf_token": token[1], "category": "", "description": ""},
        files={"photos": ("a.jpg", photos, "image/jpeg")},
    )
    assert answer.status_code == 422, answer.text[:300]  # read and answered field by field, not refused whole
    assert "Nội dung" in answer.text or "nội dung" in answer.text
