"""What the app serves: only its own files (no internet), Swagger UI, the OpenAPI key scheme, problem pages."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from conftest import login

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "cityops" / "web" / "templates"
ASSET = re.compile(r'(?:src|href)="([^"#?]+)')


def _assets(html: str) -> list[str]:
    return [url for url in ASSET.findall(html) if not url.startswith("?")]


def test_templates_name_no_external_address() -> None:
    for template in TEMPLATES.glob("*.html"):
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", template.read_text()), template.name


def test_api_docs_load_swagger_from_the_app_itself(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assets = [url for url in _assets(page.text) + re.findall(r"url: '([^']+)'", page.text)]
    assert assets and all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_every_asset_of_the_pages_is_served(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "leader")
    page = client.get("/")
    assets = [url for url in _assets(page.text) if url.startswith("/static/")]
    assert "/static/vendor/htmx.min.js" in assets
    css = client.get("/static/app.css")
    fonts = re.findall(r'url\("([^"]+)"\)', css.text)
    assert len(fonts) == 6
    for url in [*assets, *(f"/static/{font}" for font in fonts)]:
        assert client.get(url).status_code == 200, url


def test_the_openapi_description_declares_the_agency_key(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["agencyKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "cok_… key issued by the IOC",
    }


def test_a_problem_type_points_to_a_page_that_explains_it(client: TestClient) -> None:
    problem = client.get("/api/v1/indicators")
    assert problem.json()["type"] == "/docs/problems#unauthenticated"
    page = client.get("/docs/problems")
    assert page.status_code == 200
    assert "id='unauthenticated'" in page.text and "Chưa xác thực" in page.text
    assert "Not authenticated" in client.get("/docs/problems?lang=en").text


def test_no_template_has_an_inline_script_or_handler() -> None:
    # Scripts come from files the app serves; the Content-Security-Policy refuses any other (JSON data blocks are
    # not scripts).
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{template.name}: {tag}"
        assert not re.search(r"\son[a-z]+=\"", text), f"{template.name}: an inline event handler"


def test_every_answer_carries_the_content_security_policy(client: TestClient) -> None:
    for path in ("/login", "/report", "/api/docs", "/healthz", "/api/v1/me"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-eval" not in policy, path
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
