"""Helpers shared by the tests of the data-sharing API: send a batch, read it back, check a problem answer."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from conftest import AgencyKey

OBSERVATIONS = "/api/v1/observations"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "message_vi", "message_en"}
# Letters only Vietnamese uses: a message in Vietnamese carries some of them, a mojibake one does not.
VIETNAMESE_LETTERS = set("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")
# What a message template leaves when it was not filled in: {name}, or braces still doubled.
UNFILLED = re.compile(r"\{[a-z_]+\}|\{\{|\}\}")


def item(**fields: Any) -> dict[str, Any]:
    """One observation of dossiers received in the province for October 2026, with fields overridden."""
    base: dict[str, Any] = {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 12345}
    base.update(fields)
    return base


def send(client: TestClient, key: AgencyKey, *items: Any, headers: dict[str, str] | None = None) -> Response:
    """POST one batch with an agency key."""
    return client.post(OBSERVATIONS, headers={**key.headers, **(headers or {})}, json={"observations": list(items)})


def send_ok(client: TestClient, key: AgencyKey, *items: Any) -> dict[str, Any]:
    """POST one batch and return its answer, which must be a 200."""
    answer = send(client, key, *items)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def send_raw(client: TestClient, key: AgencyKey, body: bytes | str, **headers: str) -> Response:
    """POST bytes as they are (for bodies that are not a well-formed batch)."""
    content = body.encode() if isinstance(body, str) else body
    return client.post(
        OBSERVATIONS, headers={**key.headers, "Content-Type": "application/json", **headers}, content=content
    )


def series(client: TestClient, headers: dict[str, str], indicator: str, **params: Any) -> dict[str, Any]:
    """GET an indicator's series (params as the query string); must be a 200."""
    answer = client.get(f"/api/v1/indicators/{indicator}/series", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def assert_problem(answer: Response, status: int, code: str) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with this status and code, in Vietnamese and English."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0] == "application/problem+json"
    problem: dict[str, Any] = json.loads(answer.content)
    assert set(problem) >= PROBLEM_FIELDS, problem
    assert problem["status"] == status
    assert problem["code"] == code
    assert isinstance(problem["type"], str) and problem["type"]
    assert problem["title"] and problem["detail"]
    assert_vietnamese(problem["message_vi"])
    assert_english(problem["message_en"])
    return problem


def assert_vietnamese(text: str) -> None:
    """A finished Vietnamese sentence: composed (NFC) diacritics, no placeholder left unfilled."""
    assert text == unicodedata.normalize("NFC", text), text
    assert VIETNAMESE_LETTERS & set(text.lower()), f"no Vietnamese letters in {text!r}"
    assert not UNFILLED.search(text), text


def assert_english(text: str) -> None:
    """A finished English sentence: no Vietnamese letters, no placeholder left unfilled."""
    assert text and not VIETNAMESE_LETTERS & set(text.lower()), text
    assert not UNFILLED.search(text), text
