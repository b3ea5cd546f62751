"""htmx partial pages."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_partial_refresh_after_log_out_sends_the_browser_to_log_in(client: TestClient) -> None:
    answer = client.get("/partials/home-values", headers={"HX-Request": "true"}, follow_redirects=False)
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/login"
